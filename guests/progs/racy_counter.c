/*
 * racy_counter — lost updates on purpose.
 *
 * Every hart adds 1 to `racy` RACY_ITERS times with a plain load / add /
 * store (volatile, so the compiler keeps the load and the store separate
 * and does not collapse the loop), and adds 1 to `atomic_total` the same
 * number of times with amoadd.  With more than one hart the racy total
 * depends on the interleaving (updates are lost when two harts load the
 * same value); the atomic total must be exactly nharts * RACY_ITERS.
 *
 * NOT deterministic across runs for nharts > 1 (the racy total varies);
 * under samsara record/replay the replayed total must equal the recorded.
 * Exit 0 unless the atomic total is wrong or the racy total is impossible.
 */
#include "runtime.h"

#ifndef RACY_ITERS
#define RACY_ITERS 1000000u
#endif

static volatile uint64_t racy CACHE_ALIGNED;
static volatile uint64_t atomic_total CACHE_ALIGNED;
static barrier_t bar;

int guest_main(unsigned hart, unsigned nharts)
{
    barrier_wait(&bar);                 /* start together: maximise overlap */
    for (uint32_t i = 0; i < RACY_ITERS; i++) {
        uint64_t v = racy;              /* ld */
        racy = v + 1;                   /* sd: a window for lost updates */
        atomic_fetch_add64(&atomic_total, 1);
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint64_t expect = (uint64_t)nharts * RACY_ITERS;
    uint64_t r = racy, a = atomic_total;
    printf("racy_counter: harts=%u iters=%u racy=%llu atomic=%llu expected=%llu lost=%llu\n",
           nharts, (unsigned)RACY_ITERS, (unsigned long long)r, (unsigned long long)a,
           (unsigned long long)expect, (unsigned long long)(expect - r));
    /* Lost updates can only lower the racy total, never raise it.  No useful
     * lower bound holds in theory (a stale store can win at the very end),
     * so only the upper bound and non-zero are checked. */
    if (a != expect || r > expect || r == 0) {
        printf("racy_counter: FAIL\n");
        return 1;
    }
    printf("racy_counter: PASS\n");
    return 0;
}
