/*
 * hammer — every hart hammers the same 4 KiB page; forward-progress test.
 *
 * Exercises: a chunk-based recorder in the worst case, where every chunk of
 * every hart touches (and writes) one shared page, so every chunk conflicts
 * with every concurrent chunk.  Each hart runs HAMMER_ITERS iterations; one
 * iteration does, all on the one page `pg`:
 *   - amoadd.d on `atomic_ctr`                       (exact)
 *   - an lr.d/sc.d increment loop on `lrsc_ctr`       (exact; sc failures counted)
 *   - a plain ld/add/sd on `racy_ctr`                 (lost updates)
 *   - a plain store of its id to `last_writer`        (last one wins)
 *   - amoor.w of (1 << hart) into `seen`, amomax.d of a per-hart sequence
 *     into `max_seq`                                   (exact)
 *   - a plain increment of its own slot `mine[hart]`  (exact; false sharing)
 * plus, every 64th iteration, a plain read-modify-write of a word of the
 * `scratch` area chosen by the iteration number, so the page content at the
 * end depends on who overwrote whom.
 *
 * Prints (hart 0, after all harts finish):
 *   hammer: harts=N iters=I atomic=A lrsc=L racy=R lost=X sc_fail=F last=W page=HASH
 * atomic, lrsc, the slots, seen and max_seq are exact and checked; racy
 * (and so lost), sc_fail, last (the last writer) and the page hash (FNV over
 * the whole page) depend on the interleaving for N > 1.  Exit 0 when every
 * exact value is right and racy <= expected, 1 otherwise.
 */
#include "runtime.h"

#ifndef HAMMER_ITERS
#define HAMMER_ITERS 100000u
#endif
#define SCRATCH_WORDS 456u

static struct {
    volatile uint64_t atomic_ctr;
    volatile uint64_t lrsc_ctr;
    volatile uint64_t racy_ctr;
    volatile uint64_t last_writer;
    volatile uint32_t seen;
    volatile uint32_t pad0;
    volatile uint64_t max_seq;
    volatile uint64_t pad1[2];
    volatile uint64_t mine[RT_MAX_HARTS];       /* same page, adjacent words */
    volatile uint64_t pad2[40];
    volatile uint64_t scratch[SCRATCH_WORDS];
} pg __attribute__((aligned(4096)));

_Static_assert(sizeof(pg) == 4096, "hammer: everything on exactly one page");

static struct { uint64_t sc_fail; } CACHE_ALIGNED st[RT_MAX_HARTS];
static barrier_t bar;

/* lr/sc increment; returns the number of failed sc attempts. */
static inline uint64_t lrsc_inc(volatile uint64_t *p)
{
    uint64_t v, fail, fails = 0;
    for (;;) {
        __asm__ volatile(
            "lr.d %0, %2\n"
            "addi %0, %0, 1\n"
            "sc.d %1, %0, %2\n"
            : "=&r"(v), "=&r"(fail), "+A"(*p) :: "memory");
        if (fail == 0)
            return fails;
        fails++;
    }
}

static inline uint64_t amomax64(volatile uint64_t *p, uint64_t v)
{
    uint64_t old;
    __asm__ volatile("amomaxu.d %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

int guest_main(unsigned hart, unsigned nharts)
{
    barrier_wait(&bar);
    uint64_t fails = 0;
    for (uint32_t i = 0; i < HAMMER_ITERS; i++) {
        atomic_fetch_add64(&pg.atomic_ctr, 1);
        fails += lrsc_inc(&pg.lrsc_ctr);
        uint64_t r = pg.racy_ctr;
        pg.racy_ctr = r + 1;
        pg.last_writer = hart;
        atomic_or32(&pg.seen, 1u << hart);
        amomax64(&pg.max_seq, ((uint64_t)i << 3) | hart);
        pg.mine[hart] = pg.mine[hart] + 1;
        if ((i & 63) == 0) {
            unsigned w = (i / 64 + hart * 7) % SCRATCH_WORDS;
            pg.scratch[w] = pg.scratch[w] * 31 + hart + 1;
        }
    }
    st[hart].sc_fail = fails;
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint64_t expect = (uint64_t)nharts * HAMMER_ITERS;
    uint64_t fail_total = 0;
    int ok = 1;
    for (unsigned h = 0; h < nharts; h++) {
        fail_total += st[h].sc_fail;
        if (pg.mine[h] != HAMMER_ITERS)
            ok = 0;
    }
    uint64_t top = ((uint64_t)(HAMMER_ITERS - 1) << 3) | (nharts - 1);
    if (pg.atomic_ctr != expect || pg.lrsc_ctr != expect || pg.racy_ctr > expect ||
        pg.racy_ctr == 0 || pg.seen != (uint32_t)((1ull << nharts) - 1) ||
        pg.max_seq != top || pg.last_writer >= nharts)
        ok = 0;

    uint64_t h = 0xcbf29ce484222325ull;             /* FNV-1a over the page */
    const volatile uint8_t *b = (const volatile uint8_t *)&pg;
    for (unsigned k = 0; k < sizeof pg; k++)
        h = (h ^ b[k]) * 0x100000001b3ull;

    printf("hammer: harts=%u iters=%u atomic=%llu lrsc=%llu racy=%llu lost=%llu "
           "sc_fail=%llu last=%llu page=%016llx\n",
           nharts, (unsigned)HAMMER_ITERS, (unsigned long long)pg.atomic_ctr,
           (unsigned long long)pg.lrsc_ctr, (unsigned long long)pg.racy_ctr,
           (unsigned long long)(expect - pg.racy_ctr), (unsigned long long)fail_total,
           (unsigned long long)pg.last_writer, (unsigned long long)h);
    printf("hammer: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
