/*
 * timer_irq — machine timer interrupts and inter-processor interrupts.
 *
 * Phase 1: every hart programs its own mtimecmp TIMER_PERIOD ticks ahead
 *   and sleeps (wfi) until it has taken TIMER_TICKS timer interrupts; the
 *   handler counts and re-arms (or disarms after the last one).  It also
 *   checks that rdtime (the time CSR) and the CLINT mtime register agree
 *   on the direction of time.
 * Phase 2: a token ring of IPIs: hart 0 pokes hart 1's msip, hart 1 pokes
 *   hart 2, ..., the last pokes hart 0, IPI_ROUNDS times around.  With one
 *   hart, hart 0 pokes itself.
 *
 * The printed counts are deterministic (identical on every run for a given
 * hart count); when the interrupts arrive is not.  Barriers here are the
 * spinning kind: the sleeping barrier uses msip, which this program owns.
 */
#include "runtime.h"

#ifndef TIMER_TICKS
#define TIMER_TICKS 20u
#endif
#ifndef TIMER_PERIOD
#define TIMER_PERIOD 10000u          /* 1 ms at 10 MHz */
#endif
#ifndef IPI_ROUNDS
#define IPI_ROUNDS 50u
#endif

static struct {
    volatile uint32_t timer_irqs;
    volatile uint32_t ipis;
    uint32_t time_errors;
} CACHE_ALIGNED st[RT_MAX_HARTS];

static barrier_t bar;

static void on_timer(unsigned hart)
{
    uint32_t n = st[hart].timer_irqs + 1;
    st[hart].timer_irqs = n;
    if (n < TIMER_TICKS)
        clint_set_mtimecmp(hart, clint_mtime() + TIMER_PERIOD);
    else
        clint_set_mtimecmp(hart, UINT64_MAX);      /* done: never again */
}

static void on_ipi(unsigned hart)
{
    clint_clear_ipi(hart);                          /* msip is level: clear first */
    st[hart].ipis = st[hart].ipis + 1;
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        rt_set_irq_handler(IRQ_M_TIMER, on_timer);
        rt_set_irq_handler(IRQ_M_SOFT, on_ipi);
    }
    barrier_wait_spin(&bar);

    /* ---- phase 1: timer */
    uint64_t t0 = clint_mtime(), r0 = rdtime();
    clint_set_mtimecmp(hart, t0 + TIMER_PERIOD);
    csr_set(mie, MIE_MTIE);
    irq_global_enable();
    rt_wait_until_ge(&st[hart].timer_irqs, TIMER_TICKS);
    csr_clear(mie, MIE_MTIE);
    uint64_t t1 = clint_mtime(), r1 = rdtime();
    /* At least TIMER_TICKS periods must have elapsed on both clocks. */
    if (t1 - t0 < (uint64_t)TIMER_TICKS * TIMER_PERIOD || r1 < r0 ||
        r1 - r0 < (uint64_t)TIMER_TICKS * TIMER_PERIOD)
        st[hart].time_errors++;
    barrier_wait_spin(&bar);

    /* ---- phase 2: IPI token ring */
    /* The sleeping start-up barrier can leave a stale msip behind (its last
     * arriver may IPI a waiter that had already stopped waiting); every such
     * IPI was sent before the barrier above, so clearing now is final. A
     * stale IPI counted as a token would break the ring. */
    clint_clear_ipi(hart);
    csr_set(mie, MIE_MSIE);
    barrier_wait_spin(&bar);            /* everyone can take IPIs now */
    unsigned next = (hart + 1) % nharts;
    for (uint32_t r = 0; r < IPI_ROUNDS; r++) {
        if (hart == 0) {
            clint_send_ipi(next);
            rt_wait_until_ge(&st[hart].ipis, r + 1);
        } else {
            rt_wait_until_ge(&st[hart].ipis, r + 1);
            clint_send_ipi(next);
        }
    }
    barrier_wait_spin(&bar);
    csr_clear(mie, MIE_MSIE);
    irq_global_disable();

    if (hart != 0)
        return 0;
    int ok = 1;
    printf("timer_irq: harts=%u ticks=%u period=%u ipi_rounds=%u\n",
           nharts, (unsigned)TIMER_TICKS, (unsigned)TIMER_PERIOD, (unsigned)IPI_ROUNDS);
    for (unsigned h = 0; h < nharts; h++) {
        printf("timer_irq: hart %u: timer interrupts %u, ipis received %u, time %s\n", h,
               (unsigned)st[h].timer_irqs, (unsigned)st[h].ipis,
               st[h].time_errors ? "BAD" : "ok");
        ok &= st[h].timer_irqs == TIMER_TICKS && st[h].ipis == IPI_ROUNDS && !st[h].time_errors;
    }
    printf("timer_irq: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
