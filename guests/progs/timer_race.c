/*
 * timer_race — per-hart timer interrupts whose handlers race each other,
 * and a computation fed by the time CSR.
 *
 * Exercises: mtimecmp programming, machine timer interrupts arriving in the
 * middle of computation, rdtime (the time CSR) read in a hot loop, and
 * unsynchronised shared updates made from interrupt handlers on all harts.
 *
 * Hart 0 picks a start time T0; every hart arms its own mtimecmp on the
 * same absolute grid T0 + k * TR_PERIOD (always the next grid point in the
 * future), so all harts' timers fall due together and their handlers
 * overlap.  The handler
 *   - checks that the time CSR has reached the deadline it armed,
 *   - increments `racy` with a plain load ... store (a few hundred
 *     instructions apart: a wide window for lost updates) and `exact` with
 *     amoadd,
 *   - appends its hart id to a shared ring through a plain (unsynchronised)
 *     index, so entries can be overwritten and the index can lose steps,
 *   - re-arms for the next grid point, or disarms after TR_TICKS.
 * Meanwhile each hart's main loop computes until its own tick count reaches
 * TR_TICKS, reading rdtime on every iteration and folding the value into
 * its result (so the result depends on time, not only on the interleaving).
 *
 * Prints one line per hart (loop iterations, time-fed hash) and a result:
 *   timer_race: result harts=N ticks=T racy=R ring_idx=I ring=HASH time=HASH
 * racy, ring_idx, the ring hash and the time hash vary from run to run
 * (the time hash always does; racy and the ring need N > 1).  Checked:
 * each hart took exactly TR_TICKS interrupts, `exact` == N * TR_TICKS,
 * 1 <= racy <= N * TR_TICKS, ring_idx <= N * TR_TICKS, every ring entry is
 * empty or a valid hart, rdtime never goes backwards on a hart and no
 * interrupt came before its deadline, and at least TR_TICKS periods
 * elapsed.  Exit 0 if so, 1 otherwise.
 */
#include "runtime.h"

#ifndef TR_TICKS
#define TR_TICKS 40u
#endif
#ifndef TR_PERIOD
#define TR_PERIOD 2500u                 /* 250 us at 10 MHz */
#endif
#define RING 64u
#define HANDLER_WORK 1024u               /* loop iterations inside the window */

static volatile uint64_t t0 CACHE_ALIGNED;
static volatile uint32_t racy CACHE_ALIGNED;
static volatile uint32_t exact CACHE_ALIGNED;
static volatile uint32_t ring_idx CACHE_ALIGNED;
static volatile uint8_t ring[RING] CACHE_ALIGNED;

static struct {
    volatile uint32_t ticks;
    uint32_t early;                     /* interrupts taken before the deadline */
    uint32_t backwards;                 /* rdtime went backwards */
    uint64_t deadline;                  /* currently armed mtimecmp */
    uint64_t handler_hash;
    uint64_t iters, hash, start, end;
} CACHE_ALIGNED st[RT_MAX_HARTS];

static barrier_t bar;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* T0 + k * TR_PERIOD for the smallest k >= 1 that is still in the future. */
static uint64_t next_grid_point(void)
{
    uint64_t now = rdtime();
    uint64_t k = now < t0 ? 1 : (now - t0) / TR_PERIOD + 1;
    return t0 + k * TR_PERIOD;
}

static void on_timer(unsigned hart)
{
    uint64_t now = rdtime();
    if (now < st[hart].deadline)
        st[hart].early++;

    uint32_t v = racy;                  /* plain load ... */
    uint32_t i = ring_idx;
    uint64_t h = st[hart].handler_hash;
    for (unsigned k = 0; k < HANDLER_WORK; k++)
        h = mix(h, k + v);
    st[hart].handler_hash = h;
    racy = v + 1;                       /* ... plain store: racy */
    ring[i % RING] = (uint8_t)(hart + 1);
    ring_idx = i + 1;
    atomic_fetch_add32(&exact, 1);

    uint32_t n = st[hart].ticks + 1;
    if (n < TR_TICKS) {
        /* The next grid point still in the future: a hart that lost its
         * host CPU for a while skips grid points instead of taking a burst
         * of back-to-back interrupts, and stays aligned with the others. */
        st[hart].deadline = next_grid_point();
        clint_set_mtimecmp(hart, st[hart].deadline);
    } else {
        clint_set_mtimecmp(hart, UINT64_MAX);
    }
    atomic_store32(&st[hart].ticks, n);
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0)
        rt_set_irq_handler(IRQ_M_TIMER, on_timer);
    clint_set_mtimecmp(hart, UINT64_MAX);
    barrier_wait(&bar);
    if (hart == 0)
        t0 = rdtime() + TR_PERIOD;      /* leave time for the others to arm */
    barrier_wait(&bar);

    st[hart].handler_hash = 0xcbf29ce484222325ull ^ hart;
    st[hart].deadline = next_grid_point();
    clint_set_mtimecmp(hart, st[hart].deadline);
    csr_set(mie, MIE_MTIE);
    irq_global_enable();

    uint64_t last = rdtime(), x = 0x7133ull + hart, iters = 0;
    st[hart].start = last;
    while (atomic_load32(&st[hart].ticks) < TR_TICKS) {
        uint64_t t = rdtime();
        if (t < last)
            st[hart].backwards++;
        last = t;
        x = x * 6364136223846793005ull + (t | 1);
        x ^= x >> 31;
        iters++;
    }
    irq_global_disable();
    csr_clear(mie, MIE_MTIE);
    st[hart].end = rdtime();
    st[hart].iters = iters;
    st[hart].hash = x;
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    int ok = 1;
    uint64_t th = 0xcbf29ce484222325ull;
    for (unsigned h = 0; h < nharts; h++) {
        printf("timer_race: hart %u: ticks=%u iters=%llu hash=%016llx\n", h,
               (unsigned)st[h].ticks, (unsigned long long)st[h].iters,
               (unsigned long long)st[h].hash);
        th = mix(mix(th, st[h].hash), st[h].handler_hash);
        if (st[h].ticks != TR_TICKS || st[h].early || st[h].backwards ||
            st[h].end < t0 + (uint64_t)TR_TICKS * TR_PERIOD) {
            printf("timer_race: hart %u: early=%u backwards=%u elapsed=%llu\n", h,
                   (unsigned)st[h].early, (unsigned)st[h].backwards,
                   (unsigned long long)(st[h].end - t0));
            ok = 0;
        }
    }
    uint64_t rh = 0xcbf29ce484222325ull;
    for (unsigned k = 0; k < RING; k++) {
        rh = mix(rh, ring[k]);
        if (ring[k] > nharts)
            ok = 0;
    }
    uint32_t total = nharts * TR_TICKS;
    if (exact != total || racy == 0 || racy > total || ring_idx > total)
        ok = 0;
    printf("timer_race: result harts=%u ticks=%u racy=%u ring_idx=%u ring=%016llx time=%016llx\n",
           nharts, (unsigned)exact, (unsigned)racy, (unsigned)ring_idx,
           (unsigned long long)rh, (unsigned long long)th);
    printf("timer_race: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
