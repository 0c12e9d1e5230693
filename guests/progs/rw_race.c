/*
 * rw_race — one writer, many readers, no lock: torn reads on purpose.
 *
 * Exercises: plain loads racing plain stores on one shared 4 KiB page.
 * Hart 0 (the writer) performs RW_WRITES updates v = 1..RW_WRITES of
 *     x = v; rec[0..3] = f(v, k); rec_sum = sum; y = v;
 * The invariants x == y and "rec is one consistent version" would hold only
 * under a lock that neither side takes, so a reader can see them broken.
 * The x/y pair and rec live on different cache lines of the same page.
 * Every other hart is a reader: until the writer's `done` flag is set it
 * reads x, y and the record, counts torn pairs (x != y) and torn records,
 * and folds every observed (x, y) into a hash.  With one hart there are no
 * readers (the writer runs alone).
 *
 * Prints one line per reader and a result line:
 *   rw_race: result harts=N writes=W reads=R torn_pairs=P torn_recs=Q hash=H
 * reads, the torn counts and the hash depend on the interleaving.
 *
 * Checked (true under any interleaving, RVWMO included): every observed
 * value is one the writer wrote (<= W, record words well formed); each
 * reader's successive x values and y values never decrease (coherence);
 * after seeing `done` (acquire) a reader sees the final x == y == W and a
 * consistent record.  Exit 0 if so, 1 otherwise.
 */
#include "runtime.h"

#ifndef RW_WRITES
#define RW_WRITES 200000u
#endif

static struct {
    volatile uint64_t x;                /* line 0: the pair */
    volatile uint64_t y;
    volatile uint64_t pad0[6];
    volatile uint64_t rec[4];           /* line 1: the record + checksum */
    volatile uint64_t rec_sum;
    volatile uint64_t pad1[3];
    volatile uint32_t done;             /* line 2: the writer is finished */
    volatile uint32_t pad2[15];
} shared __attribute__((aligned(4096)));

static struct {
    uint64_t reads, torn_pairs, torn_recs, hash, errors;
} CACHE_ALIGNED st[RT_MAX_HARTS];

static barrier_t bar;

static inline uint64_t rec_word(uint64_t v, unsigned k) { return (v << 2) | k; }

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void writer(void)
{
    for (uint64_t v = 1; v <= RW_WRITES; v++) {
        shared.x = v;
        uint64_t sum = 0;
        for (unsigned k = 0; k < 4; k++) {
            shared.rec[k] = rec_word(v, k);
            sum += rec_word(v, k);
        }
        shared.rec_sum = sum;
        shared.y = v;
    }
    atomic_store32(&shared.done, 1);    /* release: everything above first */
}

/* Reads the record; returns 1 if consistent (one version), 0 if torn, and
 * counts malformed words (which no interleaving can produce) as errors. */
static int read_rec(unsigned hart, uint64_t *version)
{
    uint64_t r[4], sum = 0;
    for (unsigned k = 0; k < 4; k++) {
        r[k] = shared.rec[k];
        sum += r[k];
        if (r[k] != 0 && ((r[k] & 3) != k || (r[k] >> 2) > RW_WRITES))
            st[hart].errors++;
    }
    uint64_t s = shared.rec_sum;
    *version = r[0] >> 2;
    for (unsigned k = 1; k < 4; k++)
        if (r[k] != r[0] + k && !(r[0] == 0 && r[k] == 0))
            return 0;
    return s == sum;
}

static void reader(unsigned hart)
{
    uint64_t last_x = 0, last_y = 0, h = 0xcbf29ce484222325ull ^ hart;
    uint64_t reads = 0, torn_pairs = 0, torn_recs = 0, version;
    while (!atomic_load32(&shared.done)) {
        uint64_t a = shared.x;
        uint64_t b = shared.y;
        if (a != b)
            torn_pairs++;
        if (a < last_x || b < last_y || a > RW_WRITES || b > RW_WRITES)
            st[hart].errors++;
        last_x = a;
        last_y = b;
        if (!read_rec(hart, &version))
            torn_recs++;
        h = mix(h, (a << 32) ^ b);
        reads++;
    }
    /* After the acquire of done, the final state must be visible. */
    if (shared.x != RW_WRITES || shared.y != RW_WRITES || !read_rec(hart, &version) ||
        version != RW_WRITES)
        st[hart].errors++;
    st[hart].reads = reads;
    st[hart].torn_pairs = torn_pairs;
    st[hart].torn_recs = torn_recs;
    st[hart].hash = h;
}

int guest_main(unsigned hart, unsigned nharts)
{
    barrier_wait(&bar);
    if (hart == 0)
        writer();
    else
        reader(hart);
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint64_t reads = 0, tp = 0, tr = 0, errors = 0, h = 0xcbf29ce484222325ull;
    for (unsigned r = 1; r < nharts; r++) {
        printf("rw_race: reader %u: reads=%llu torn_pairs=%llu torn_recs=%llu hash=%016llx\n",
               r, (unsigned long long)st[r].reads, (unsigned long long)st[r].torn_pairs,
               (unsigned long long)st[r].torn_recs, (unsigned long long)st[r].hash);
        reads += st[r].reads;
        tp += st[r].torn_pairs;
        tr += st[r].torn_recs;
        errors += st[r].errors;
        h = mix(h, st[r].hash);
    }
    printf("rw_race: result harts=%u writes=%u reads=%llu torn_pairs=%llu torn_recs=%llu "
           "hash=%016llx\n", nharts, (unsigned)RW_WRITES, (unsigned long long)reads,
           (unsigned long long)tp, (unsigned long long)tr, (unsigned long long)h);
    int ok = errors == 0 && shared.x == RW_WRITES && shared.y == RW_WRITES;
    if (errors)
        printf("rw_race: %llu invariant violations\n", (unsigned long long)errors);
    printf("rw_race: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
