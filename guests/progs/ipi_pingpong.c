/*
 * ipi_pingpong — inter-processor interrupts through CLINT msip, with a
 * token ring and a free-for-all, logging the order of reception.
 *
 * Exercises: msip writes to other harts (0x0200_0000 + 4*hart), machine
 * software interrupts taken in a handler (rt_set_irq_handler(IRQ_M_SOFT)),
 * wfi wake-ups, and an AMO-ordered global log written from interrupt
 * handlers on all harts at once.
 *
 * An IPI carries no payload, and msip is a level (several raises before
 * the receiver clears it make one interrupt), so every message goes through
 * the receiver's mailbox: the sender reserves a slot with amoadd on the
 * mailbox tail, stores its id+1 in the slot, fences, then raises msip.  The
 * handler first clears its msip, fences, then consumes slots in order until
 * it meets one not yet written.  A slot written after that scan began is
 * always followed by a new msip raise after the clear, so nothing is lost
 * and the program cannot hang on a coalesced IPI; an interrupt that finds
 * nothing new is harmless (counted as "empty").  For every message consumed
 * the handler appends (receiver, sender) to a global log (slot taken with
 * amoadd, so the log order is the global order of reception).
 *
 * Phase 1, token ring: IPI_LAPS laps of a token hart 0 -> 1 -> ... -> N-1
 *   -> 0, each holder incrementing `token` before passing it on.
 * A barrier between the phases: `received` counts messages from anyone.
 * Phase 2, race: every hart sends IPI_RACE messages to every other hart
 *   (to itself with one hart), round robin with random small delays, while
 *   receiving everyone else's.
 * Barriers spin (barrier_wait_spin): this program owns msip.
 *
 * Prints one line per hart (messages received, interrupts taken, empty
 * interrupts, hash of its own reception order) and a result line:
 *   ipi_pingpong: result harts=N msgs=M irqs=I log=HASH
 * The per-hart hashes, irqs/empty counts and the log hash depend on the
 * interleaving (for N > 1); msgs is fixed.  Checked: token == IPI_LAPS * N,
 * each hart got exactly the expected number of messages from each sender
 * (IPI_RACE, plus IPI_LAPS from its ring predecessor), the log holds every
 * message once.  Exit 0 if so, 1 otherwise.
 */
#include "runtime.h"

#ifndef IPI_LAPS
#define IPI_LAPS 50u
#endif
#ifndef IPI_RACE
#define IPI_RACE 128u
#endif
/* Mailbox slots are never reused, so one mailbox holds everything one hart
 * can ever receive. */
#define QCAP 1024u
#define LOG_CAP (RT_MAX_HARTS * QCAP)
_Static_assert(IPI_LAPS + (RT_MAX_HARTS - 1) * IPI_RACE <= QCAP, "mailbox too small");

static struct mbox {
    volatile uint32_t tail;             /* slots reserved by senders (amoadd) */
    volatile uint32_t received;         /* slots consumed; written by the handler */
    uint32_t head;                      /* next slot to consume (handler only) */
    uint32_t irqs, empty;               /* handler statistics */
    uint32_t overflow;
    uint64_t order_hash;                /* hash of this hart's reception order */
    volatile uint8_t from[QCAP];        /* sender + 1; 0 = not written yet */
} CACHE_ALIGNED mbox[RT_MAX_HARTS];

static volatile uint32_t log_n CACHE_ALIGNED;
static volatile uint16_t glog[LOG_CAP];
static volatile uint32_t log_overflow;
static volatile uint64_t token CACHE_ALIGNED;
static barrier_t bar;

static inline void fence_io(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void send(unsigned to, unsigned me)
{
    struct mbox *m = &mbox[to];
    uint32_t slot = atomic_fetch_add32(&m->tail, 1);
    if (slot >= QCAP) {                 /* cannot happen: see the static assert */
        atomic_fetch_add32(&m->overflow, 1);
        return;
    }
    m->from[slot] = (uint8_t)(me + 1);
    fence_io();                         /* the slot before the msip raise */
    clint_send_ipi(to);
}

static void on_ipi(unsigned me)
{
    struct mbox *m = &mbox[me];
    clint_clear_ipi(me);                /* level: clear first, then look */
    fence_io();
    m->irqs++;
    uint32_t got = 0;
    uint64_t h = m->order_hash;
    while (m->head < QCAP) {
        uint8_t f = m->from[m->head];
        if (f == 0)
            break;                      /* reserved, not written: its IPI follows */
        uint32_t i = atomic_fetch_add32(&log_n, 1);
        if (i < LOG_CAP)
            glog[i] = (uint16_t)((me << 8) | (f - 1u));
        else
            log_overflow = 1;
        h = mix(h, f);
        m->head++;
        got++;
    }
    m->order_hash = h;
    if (got == 0)
        m->empty++;
    atomic_store32(&m->received, m->head);   /* release to the main loop */
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0)
        rt_set_irq_handler(IRQ_M_SOFT, on_ipi);
    mbox[hart].order_hash = 0xcbf29ce484222325ull;
    barrier_wait_spin(&bar);
    csr_set(mie, MIE_MSIE);
    irq_global_enable();
    barrier_wait_spin(&bar);            /* every hart takes IPIs from here on */

    /* ---- phase 1: token ring */
    unsigned next = (hart + 1) % nharts;
    for (uint32_t lap = 0; lap < IPI_LAPS; lap++) {
        if (hart != 0) {
            rt_wait_until_ge(&mbox[hart].received, lap + 1);
            fence();                    /* the message before the token */
        }
        token = token + 1;              /* we hold the token: no race */
        send(next, hart);
        if (hart == 0)
            rt_wait_until_ge(&mbox[hart].received, lap + 1);
    }

    /* Everyone leaves the ring before anyone races: a phase-2 message
     * counts in `received` like a ring message, so one that overtook the
     * last token would let its receiver take the token early and race its
     * holder on `token` (a lost increment, seen about once in 60 runs). */
    barrier_wait_spin(&bar);

    /* ---- phase 2: everybody sends to everybody */
    uint64_t seed = 0x1b1b0000u + hart;
    unsigned others = nharts > 1 ? nharts - 1 : 1;
    for (uint32_t r = 0; r < IPI_RACE; r++) {
        for (unsigned k = 1; k <= others; k++) {
            send((hart + k) % nharts, hart);
            for (unsigned d = splitmix64(&seed) & 255; d; d--)
                cpu_relax();
        }
    }
    rt_wait_until_ge(&mbox[hart].received, IPI_LAPS + others * IPI_RACE);
    barrier_wait_spin(&bar);
    csr_clear(mie, MIE_MSIE);
    irq_global_disable();
    clint_clear_ipi(hart);
    barrier_wait_spin(&bar);
    if (hart != 0)
        return 0;

    /* ---- check and report */
    int ok = token == (uint64_t)IPI_LAPS * nharts && !log_overflow;
    uint32_t total = 0, irqs = 0;
    for (unsigned h = 0; h < nharts; h++) {
        struct mbox *m = &mbox[h];
        printf("ipi_pingpong: hart %u: received=%u irqs=%u empty=%u order=%016llx\n", h,
               (unsigned)m->received, (unsigned)m->irqs, (unsigned)m->empty,
               (unsigned long long)m->order_hash);
        total += m->received;
        irqs += m->irqs;
        if (m->received != IPI_LAPS + others * IPI_RACE || m->tail != m->received ||
            m->overflow)
            ok = 0;
    }
    uint32_t n = log_n;
    if (n != total)
        ok = 0;
    static uint32_t cnt[RT_MAX_HARTS][RT_MAX_HARTS];
    uint64_t lh = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n && i < LOG_CAP; i++) {
        unsigned rcv = glog[i] >> 8, snd = glog[i] & 0xff;
        if (rcv >= nharts || snd >= nharts)
            ok = 0;
        else
            cnt[rcv][snd]++;
        lh = mix(lh, glog[i]);
    }
    for (unsigned r = 0; r < nharts; r++)
        for (unsigned s = 0; s < nharts; s++) {
            uint32_t want = (nharts == 1 || s != r) ? IPI_RACE : 0;
            if (s == (r + nharts - 1) % nharts)
                want += IPI_LAPS;
            if (cnt[r][s] != want)
                ok = 0;
        }
    printf("ipi_pingpong: result harts=%u msgs=%u irqs=%u log=%016llx\n", nharts,
           (unsigned)n, (unsigned)irqs, (unsigned long long)lh);
    printf("ipi_pingpong: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
