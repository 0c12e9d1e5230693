/*
 * start.c — boot-time initialisation, per-hart entry, exit, and the few
 * synchronisation helpers that are too big to inline.
 */
#include "runtime.h"

unsigned rt_nharts = 1;
uintptr_t rt_fdt;

/* Read by the secondary harts while hart 0 clears .bss, so it must live in
 * .data (initialised, never cleared). */
__attribute__((section(".data"))) volatile uint32_t rt_boot_flag = 0;

void uart_init(void);

/* Called by hart 0 only, with .bss already zeroed. */
void rt_init_primary(uintptr_t fdt)
{
    rt_fdt = fdt;
    uart_init();

    int n = fdt_count_cpus((const void *)fdt);
    if (n < 0) {
        rt_puts_raw("samsara-rt: no device tree at a1\n");
        rt_exit(RT_EXIT_NO_FDT);
    }
    if (n == 0) {
        rt_puts_raw("samsara-rt: device tree lists no harts\n");
        rt_exit(RT_EXIT_BAD_HARTS);
    }
    rt_nharts = (unsigned)n > RT_MAX_HARTS ? RT_MAX_HARTS : (unsigned)n;

    /* Publish, then wake everybody.  The release fence orders all of the
     * initialisation above (and the .bss clear) before the flag. */
    fence();
    rt_boot_flag = 1;
    fence();
    for (unsigned h = 1; h < rt_nharts; h++)
        clint_send_ipi(h);
}

__attribute__((noreturn)) void rt_hart_entry(unsigned hart)
{
    int rc = guest_main(hart, rt_nharts);
    if (hart == 0)
        rt_exit(rc);
    rt_park();
}

__attribute__((noreturn)) void rt_exit(int code)
{
#ifdef RT_STATS
    /* Tuning aid (make STATS=1): run QEMU with -icount shift=0 and mcycle
     * and minstret count instructions; mtime ticks are 100 instructions. */
    printf("rt-stats: hart %u minstret=%lu mtime=%llu\n", hart_id(),
           csr_read(minstret), (unsigned long long)clint_mtime());
#endif
    /* SiFive test device ("sifive,test0"): FINISHER_PASS = 0x5555 powers
     * off with status 0, FINISHER_FAIL = 0x3333 with the code in bits
     * 31:16 becomes the emulator's exit status. */
    uint32_t v = code == 0 ? 0x5555u : (((uint32_t)code & 0xffffu) << 16) | 0x3333u;
    fence();
    mmio_write32(TEST_DEV_BASE, v);
    for (;;)
        wfi();   /* the write powers off; never spin hot if it is slow */
}

__attribute__((noreturn)) void rt_park(void)
{
    irq_global_disable();
    csr_write(mie, 0);
    for (;;)
        wfi();
}

/* Spin iterations before a barrier waiter goes to sleep.  Long enough that
 * a barrier among harts that all have a host CPU completes spinning. */
#define BARRIER_SPINS 2000u

static void barrier_episode(barrier_t *b, unsigned n, int may_sleep)
{
    unsigned me = hart_id();
    uint8_t s = (uint8_t)!b->local[me];     /* the sense of this episode */
    b->local[me] = s;
    if (atomic_fetch_add32(&b->count, 1) == n - 1) {
        /* Last to arrive: reset the count for the next episode *before*
         * releasing the others, then flip the shared sense. */
        b->count = 0;
        atomic_store32(&b->sense, s);
        if (may_sleep) {
            /* Full fence between the sense store and the sleepers load,
             * mirrored by the waiter's amoor before its sense re-check:
             * either we see its bit or it sees the new sense. */
            fence();
            uint32_t m = atomic_load32(&b->sleepers);
            for (unsigned h = 0; m; h++, m >>= 1)
                if (m & 1)
                    clint_send_ipi(h);
        }
        return;
    }
    for (unsigned i = 0; i < BARRIER_SPINS || !may_sleep; i++) {
        if (atomic_load32(&b->sense) == s)
            return;
        cpu_relax();
    }

    /* Sleep.  Interrupts stay globally masked; mie.MSIE alone makes wfi
     * return when msip is raised. */
    unsigned long st = irq_save();
    unsigned long old_mie = csr_read(mie);
    csr_set(mie, MIE_MSIE);
    atomic_or32(&b->sleepers, 1u << me);
    while (atomic_load32(&b->sense) != s)
        wfi();
    atomic_and32(&b->sleepers, ~(1u << me));
    clint_clear_ipi(me);
    csr_write(mie, old_mie);
    irq_restore(st);
}

void barrier_wait_n(barrier_t *b, unsigned n) { barrier_episode(b, n, 1); }
void barrier_wait(barrier_t *b) { barrier_episode(b, rt_nharts, 1); }
void barrier_wait_spin(barrier_t *b) { barrier_episode(b, rt_nharts, 0); }

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}
