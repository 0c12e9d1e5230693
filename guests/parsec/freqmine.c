/*
 * freqmine — PARSEC 3.0-style frequent itemset mining with FP-growth (our
 * own implementation from the algorithm description; no PARSEC code).
 *
 * Algorithm
 *   Input: NTRANS market-basket transactions over NITEMS items from a
 *   deterministic Quest-like generator: NPAT "potential patterns" (2-6
 *   items, skewed towards low item ids); transaction t (its own splitmix64
 *   stream, so it is the same whoever makes it) takes 1-3 patterns (skewed
 *   choice, each item kept with 90% probability) plus 2-7 noise items,
 *   deduplicated and sorted, at most MAXLEN items.
 *   FP-growth (Han, Pei, Yin):
 *     1. count item supports; items with support >= MINSUP are frequent,
 *        ranked by descending support (ties: item id);
 *     2. FP-tree: every transaction, reduced to its frequent items sorted
 *        by rank, is inserted as a path from the root (shared prefixes add
 *        counts); a header table links all nodes of each item;
 *     3. mining item y of a tree: emit prefix+{y} with support = sum of y's
 *        node counts; its conditional pattern base is the root paths above
 *        y's nodes (each with that node's count); the items frequent in it
 *        form the conditional FP-tree, mined recursively with prefix+{y}.
 *   Each itemset's fingerprint is the sum of per-item hashes (independent
 *   of the order items were added), so the result is canonical: the number
 *   of frequent itemsets, the support sum and a commutative checksum
 *   (sum of mix(fingerprint, support, length)).
 *
 * Parallel structure
 *   Generation and item counting: static slices of transactions, per-hart
 *   counts merged by hart 0, which ranks the items.  Tree construction in
 *   parallel: batches of BATCH transactions handed out from an atomic
 *   counter; a hart filters and sorts its batch privately, then inserts it
 *   into the one shared FP-tree under a global lock.  Mining: the frequent
 *   items of the global tree are handed out dynamically (least frequent
 *   first); each hart builds its conditional trees in a private arena and
 *   accumulates integer totals (order-independent), summed by hart 0.
 *   Self-checks, also in parallel: per-item transaction bitsets (static
 *   word slices) and pair counts (per-hart triangular matrices over static
 *   transaction slices, reduced by row slices).
 *
 * Sharing pattern
 *   High sharing: the FP-tree and its header table are written by every
 *   hart under one lock, then read by every hart during mining (random
 *   walks up parent pointers and along node links); the transaction
 *   database and bitsets are read by all.  Private conditional trees.
 *
 * Self-checks
 *   - every frequent 2-itemset found by FP-growth against an independent
 *     pair count of the database (number of frequent pairs and their
 *     support sum);
 *   - a canonical sample (1 in VSAMPLE by hash) of all frequent itemsets
 *     has its support recomputed by AND-ing the items' transaction bitsets;
 *   - the number of frequent 1-itemsets equals the number of frequent items.
 *
 * Sizes (instructions at 1 hart)
 *   SIZE_TEST   6000 transactions, 400 items, 30 patterns, minsup 0.67% (~67M)
 *   SIZE_BENCH  80000 transactions, 800 items, 40 patterns, minsup 0.1%  (~2.2G)
 *   (generation ~5%, tree ~7%, checks ~7%, mining the rest at bench size)
 *
 * Output
 *   freqmine: transactions=N items=I minsup=S frequent_items=F itemsets=K
 *             maxlen=L support_sum=X checksum=<commutative hash> PASS
 *   identical for every hart count; exit 0, 1 on a failed self-check, 2 if
 *   a node pool overflows.  -DFM_DEBUG adds the tree size and the peak
 *   arena use of hart 0 (tuning aid for GNODES / ARENA_WORDS).
 */
#include "runtime.h"
#include <string.h>

#if defined(SIZE_BENCH)
#define NTRANS   80000
#define NITEMS   800
#define NPAT     40
#define MINSUP   80             /* 0.1% */
#define GNODES   (640 * 1024)
#define ARENA_WORDS (640 * 1024)
#elif defined(SIZE_TEST)
#define NTRANS   6000
#define NITEMS   400
#define NPAT     30
#define MINSUP   40             /* 0.67% */
#define GNODES   (64 * 1024)
#define ARENA_WORDS (64 * 1024)
#else
#error "build with -DSIZE_TEST or -DSIZE_BENCH"
#endif

#define KEEP_PCT 90             /* pattern items kept */
#define MAXLEN   32             /* items per transaction */
#define MAXFREQ  NITEMS         /* frequent items at most */
#define BATCH    32             /* transactions per tree-insertion batch */
#define NWORDS   ((NTRANS + 63) / 64)
#define VSAMPLE  64             /* verify 1 in VSAMPLE itemsets */
#define SEED     0xf4e9a11e5eedull

/* ------------------------------------------------------------- database */

static uint16_t pat[NPAT][8];
static uint8_t patlen[NPAT];
static NOINIT uint16_t trans[NTRANS][MAXLEN];
static NOINIT uint8_t tlen[NTRANS];

static struct { uint32_t c[NITEMS]; } CACHE_ALIGNED cnt_h[RT_MAX_HARTS];
static int32_t rank_of[NITEMS];         /* -1 if not frequent */
static int32_t item_of[MAXFREQ];        /* rank -> item */
static uint64_t item_hash[MAXFREQ];     /* per-rank item hash */
static int32_t nfreq;

/* ------------------------------------------------------------ FP-trees */

typedef struct {
    int32_t item, count, parent, child, sibling, link;
} node_t;

typedef struct {
    node_t *n;
    int32_t nn, cap;
    int32_t *head, *hcount, *rootch;  /* indexed by rank < nitems */
    int32_t nitems;
} tree_t;

static NOINIT node_t gnodes[GNODES];
static int32_t ghead[MAXFREQ], ghcount[MAXFREQ], grootch[MAXFREQ];
static tree_t gtree;
static spinlock_t tree_lock;

/* Per-hart arenas for conditional trees. */
static NOINIT int32_t arena[RT_MAX_HARTS][ARENA_WORDS];

/* Self-check data. */
static NOINIT uint64_t bits[MAXFREQ][NWORDS];
static NOINIT uint32_t pairs[RT_MAX_HARTS][MAXFREQ * (MAXFREQ - 1) / 2];

typedef struct {
    uint64_t itemsets, support_sum, checksum;
    uint64_t n1, n2, s2;                /* 1- and 2-itemsets */
    uint64_t verified, bad;
    uint64_t pairs_freq, pairs_sum;     /* from the independent pair count */
    uint32_t maxlen, overflow;
    /* mining state */
    int32_t *arena;
    uint32_t top, peak;
    int32_t prefix[MAXLEN + 1];
    int32_t path[MAXLEN + 1];
} CACHE_ALIGNED hctx_t;
static hctx_t hc[RT_MAX_HARTS];

static barrier_t bar;
static volatile uint32_t next_batch CACHE_ALIGNED;
static volatile uint32_t next_item CACHE_ALIGNED;

/* ------------------------------------------------------------ generator */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t rnd(uint64_t *s, uint32_t n) { return (uint32_t)(splitmix64(s) % n); }
static inline uint32_t skewed(uint64_t *s, uint32_t n)
{
    uint32_t a = rnd(s, n), b = rnd(s, n);
    return a < b ? a : b;
}

static void gen_patterns(void)
{
    for (int p = 0; p < NPAT; p++) {
        uint64_t s = SEED ^ mix64(0x1000000ull + (uint64_t)p);
        patlen[p] = (uint8_t)(2 + rnd(&s, 5));
        for (int k = 0; k < patlen[p]; k++)
            pat[p][k] = (uint16_t)skewed(&s, NITEMS);
    }
}

static void add_item(uint16_t *t, int *n, uint16_t it)
{
    for (int i = 0; i < *n; i++)
        if (t[i] == it)
            return;
    if (*n < MAXLEN)
        t[(*n)++] = it;
}

static void gen_trans(int i)
{
    uint64_t s = SEED ^ mix64((uint64_t)i + 1);
    uint16_t *t = trans[i];
    int n = 0;
    int np = 1 + (int)rnd(&s, 3);
    for (int k = 0; k < np; k++) {
        int p = (int)skewed(&s, NPAT);
        for (int j = 0; j < patlen[p]; j++)
            if (rnd(&s, 100) < KEEP_PCT)
                add_item(t, &n, pat[p][j]);
    }
    int nn = 2 + (int)rnd(&s, 6);
    for (int k = 0; k < nn; k++)
        add_item(t, &n, (uint16_t)skewed(&s, NITEMS));
    for (int a = 1; a < n; a++) {               /* insertion sort */
        uint16_t v = t[a];
        int b = a - 1;
        while (b >= 0 && t[b] > v) { t[b + 1] = t[b]; b--; }
        t[b + 1] = v;
    }
    tlen[i] = (uint8_t)n;
}

/* ------------------------------------------------------------- ranking */

static void rank_items(unsigned nharts)
{
    static uint32_t tot[NITEMS];
    static int32_t order[NITEMS];
    int m = 0;
    for (int it = 0; it < NITEMS; it++) {
        tot[it] = 0;
        for (unsigned h = 0; h < nharts; h++)
            tot[it] += cnt_h[h].c[it];
        rank_of[it] = -1;
        if (tot[it] >= MINSUP)
            order[m++] = it;
    }
    /* descending support, ascending id (insertion sort; m is small) */
    for (int a = 1; a < m; a++) {
        int32_t v = order[a];
        int b = a - 1;
        while (b >= 0 && (tot[order[b]] < tot[v] ||
                          (tot[order[b]] == tot[v] && order[b] > v))) {
            order[b + 1] = order[b];
            b--;
        }
        order[b + 1] = v;
    }
    nfreq = m;
    for (int r = 0; r < m; r++) {
        rank_of[order[r]] = r;
        item_of[r] = order[r];
        item_hash[r] = mix64(SEED + 0x51ull * (uint64_t)(order[r] + 1));
    }
}

/* ------------------------------------------------------------ tree ops */

/* Insert a path of ascending ranks with count c; returns 0 on overflow. */
static int tree_insert(tree_t *T, const int32_t *items, int n, int32_t c)
{
    int32_t cur = 0;
    for (int k = 0; k < n; k++) {
        int32_t it = items[k], ch;
        if (cur == 0) {
            ch = T->rootch[it];
        } else {
            ch = T->n[cur].child;
            while (ch >= 0 && T->n[ch].item != it)
                ch = T->n[ch].sibling;
        }
        if (ch < 0) {
            if (T->nn >= T->cap)
                return 0;
            ch = T->nn++;
            node_t *x = &T->n[ch];
            x->item = it;
            x->count = 0;
            x->parent = cur;
            x->child = -1;
            x->sibling = T->n[cur].child;
            x->link = T->head[it];
            T->n[cur].child = ch;
            T->head[it] = ch;
            if (cur == 0)
                T->rootch[it] = ch;
        }
        T->n[ch].count += c;
        T->hcount[it] += c;
        cur = ch;
    }
    return 1;
}

static void build_global(unsigned hart)
{
    int32_t buf[BATCH][MAXLEN];
    int len[BATCH];
    for (;;) {
        uint32_t b0 = atomic_fetch_add32(&next_batch, BATCH);
        if (b0 >= NTRANS)
            break;
        uint32_t b1 = b0 + BATCH > NTRANS ? NTRANS : b0 + BATCH;
        for (uint32_t t = b0; t < b1; t++) {
            int32_t *p = buf[t - b0];
            int n = 0;
            for (int k = 0; k < tlen[t]; k++) {
                int32_t r = rank_of[trans[t][k]];
                if (r < 0)
                    continue;
                int b = n - 1;                       /* insertion by rank */
                while (b >= 0 && p[b] > r) { p[b + 1] = p[b]; b--; }
                p[b + 1] = r;
                n++;
            }
            len[t - b0] = n;
        }
        spin_lock(&tree_lock);
        for (uint32_t t = b0; t < b1; t++)
            if (!tree_insert(&gtree, buf[t - b0], len[t - b0], 1))
                hc[hart].overflow = 1;
        spin_unlock(&tree_lock);
    }
}

/* ------------------------------------------------------------- mining */

static int32_t *arena_alloc(hctx_t *c, uint32_t words)
{
    if (c->top + words > ARENA_WORDS) {
        c->overflow = 1;
        return NULL;
    }
    int32_t *p = c->arena + c->top;
    c->top += words;
    return p;
}

static uint64_t support_by_bits(const int32_t *items, int n)
{
    uint64_t s = 0;
    for (int w = 0; w < NWORDS; w++) {
        uint64_t x = ~0ull;
        for (int k = 0; k < n; k++)
            x &= bits[items[k]][w];
        s += (uint64_t)__builtin_popcountll(x);
    }
    return s;
}

static void emit(hctx_t *c, uint64_t fp, int len, int32_t sup)
{
    uint64_t e = mix64(fp ^ ((uint64_t)sup << 32) ^ (uint64_t)len);
    c->itemsets++;
    c->support_sum += (uint64_t)sup;
    c->checksum += e;
    if (len == 1) c->n1++;
    if (len == 2) { c->n2++; c->s2 += (uint64_t)sup; }
    if ((uint32_t)len > c->maxlen) c->maxlen = (uint32_t)len;
    if ((e >> 40) % VSAMPLE == 0) {
        c->verified++;
        if (support_by_bits(c->prefix, len) != (uint64_t)sup)
            c->bad++;
    }
}

/* Mine item y of tree T: emit prefix+{y}, then mine its conditional tree. */
static void mine_item(hctx_t *c, const tree_t *T, int32_t y, uint64_t fp, int depth)
{
    fp += item_hash[y];
    c->prefix[depth] = y;
    emit(c, fp, depth + 1, T->hcount[y]);
    if (y == 0 || depth + 1 >= MAXLEN)
        return;

    uint32_t mark = c->top;
    int32_t *cnt = arena_alloc(c, (uint32_t)y);
    if (!cnt)
        return;
    memset(cnt, 0, (size_t)y * sizeof *cnt);
    for (int32_t n = T->head[y]; n >= 0; n = T->n[n].link) {
        int32_t k = T->n[n].count;
        for (int32_t p = T->n[n].parent; p != 0; p = T->n[p].parent)
            cnt[T->n[p].item] += k;
    }
    int32_t top_item = -1;
    for (int32_t i = 0; i < y; i++)
        if (cnt[i] >= MINSUP)
            top_item = i;
    if (top_item >= 0) {
        tree_t C;
        C.nitems = top_item + 1;
        C.head = arena_alloc(c, 3u * (uint32_t)C.nitems);
        if (!C.head)
            goto out;
        C.hcount = C.head + C.nitems;
        C.rootch = C.hcount + C.nitems;
        for (int32_t i = 0; i < C.nitems; i++) {
            C.head[i] = -1;
            C.hcount[i] = 0;
            C.rootch[i] = -1;
        }
        /* the node array grows at the arena top while the tree is built */
        C.n = (node_t *)(void *)(c->arena + c->top);
        C.cap = (int32_t)((ARENA_WORDS - c->top) / (sizeof(node_t) / 4));
        C.nn = 1;
        if (C.cap < 1) {
            c->overflow = 1;
            goto out;
        }
        C.n[0].item = -1;
        C.n[0].child = -1;
        for (int32_t n = T->head[y]; n >= 0; n = T->n[n].link) {
            int len = 0;
            for (int32_t p = T->n[n].parent; p != 0; p = T->n[p].parent) {
                int32_t it = T->n[p].item;
                if (it < C.nitems && cnt[it] >= MINSUP)
                    c->path[len++] = it;
            }
            /* walked upwards = descending rank; reverse */
            for (int a = 0, b = len - 1; a < b; a++, b--) {
                int32_t v = c->path[a];
                c->path[a] = c->path[b];
                c->path[b] = v;
            }
            if (len && !tree_insert(&C, c->path, len, T->n[n].count)) {
                c->overflow = 1;
                goto out;
            }
        }
        c->top += (uint32_t)C.nn * (sizeof(node_t) / 4);
        if (c->top > c->peak)
            c->peak = c->top;
        for (int32_t z = C.nitems - 1; z >= 0; z--)
            if (C.hcount[z] > 0)
                mine_item(c, &C, z, fp, depth + 1);
    }
out:
    c->top = mark;
}

/* ------------------------------------------------------------ self-checks */

static void build_bits(unsigned hart, unsigned nharts)
{
    unsigned lo = NWORDS * hart / nharts, hi = NWORDS * (hart + 1) / nharts;
    for (int r = 0; r < nfreq; r++)
        for (unsigned w = lo; w < hi; w++)
            bits[r][w] = 0;
    for (unsigned w = lo; w < hi; w++)
        for (unsigned t = w * 64; t < w * 64 + 64 && t < NTRANS; t++)
            for (int k = 0; k < tlen[t]; k++) {
                int32_t r = rank_of[trans[t][k]];
                if (r >= 0)
                    bits[r][w] |= 1ull << (t % 64);
            }
}

static inline uint32_t pair_index(int a, int b)    /* a < b */
{
    return (uint32_t)(b * (b - 1) / 2 + a);
}

static void count_pairs(unsigned hart, unsigned nharts)
{
    uint32_t *m = pairs[hart];
    uint32_t np = (uint32_t)(nfreq * (nfreq - 1) / 2);
    memset(m, 0, np * sizeof *m);
    unsigned lo = NTRANS * hart / nharts, hi = NTRANS * (hart + 1) / nharts;
    int32_t r[MAXLEN];
    for (unsigned t = lo; t < hi; t++) {
        int n = 0;
        for (int k = 0; k < tlen[t]; k++)
            if (rank_of[trans[t][k]] >= 0)
                r[n++] = rank_of[trans[t][k]];
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++)
                m[r[a] < r[b] ? pair_index(r[a], r[b]) : pair_index(r[b], r[a])]++;
    }
}

/* Sum the per-hart matrices over rows b in a static slice. */
static void reduce_pairs(unsigned hart, unsigned nharts)
{
    unsigned lo = (unsigned)nfreq * hart / nharts, hi = (unsigned)nfreq * (hart + 1) / nharts;
    uint64_t nf = 0, sum = 0;
    for (unsigned b = lo; b < hi; b++)
        for (unsigned a = 0; a < b; a++) {
            uint32_t i = pair_index((int)a, (int)b), s = 0;
            for (unsigned h = 0; h < nharts; h++)
                s += pairs[h][i];
            if (s >= MINSUP) {
                nf++;
                sum += s;
            }
        }
    hc[hart].pairs_freq = nf;
    hc[hart].pairs_sum = sum;
}

/* ---------------------------------------------------------------- main */

int guest_main(unsigned hart, unsigned nharts)
{
    hctx_t *c = &hc[hart];
    if (hart == 0)
        gen_patterns();
    barrier_wait(&bar);

    /* 1. generate and count */
    unsigned lo = NTRANS * hart / nharts, hi = NTRANS * (hart + 1) / nharts;
    for (unsigned t = lo; t < hi; t++) {
        gen_trans((int)t);
        for (int k = 0; k < tlen[t]; k++)
            cnt_h[hart].c[trans[t][k]]++;
    }
    barrier_wait(&bar);

    /* 2. rank (hart 0) */
    if (hart == 0) {
        rank_items(nharts);
        gtree.n = gnodes;
        gtree.cap = GNODES;
        gtree.nn = 1;
        gtree.head = ghead;
        gtree.hcount = ghcount;
        gtree.rootch = grootch;
        gtree.nitems = nfreq;
        for (int r = 0; r < nfreq; r++) {
            ghead[r] = -1;
            ghcount[r] = 0;
            grootch[r] = -1;
        }
        gnodes[0].item = -1;
        gnodes[0].child = -1;
        gnodes[0].parent = -1;
        next_batch = 0;
        next_item = 0;
    }
    barrier_wait(&bar);

    /* 3. global FP-tree (shared, locked) and check structures */
    build_global(hart);
    build_bits(hart, nharts);
    count_pairs(hart, nharts);
    barrier_wait(&bar);
    reduce_pairs(hart, nharts);

    /* 4. mining, items handed out dynamically, least frequent first */
    c->arena = arena[hart];
    c->top = 0;
    for (;;) {
        uint32_t k = atomic_fetch_add32(&next_item, 1);
        if (k >= (uint32_t)nfreq)
            break;
        int32_t y = nfreq - 1 - (int32_t)k;
        mine_item(c, &gtree, y, 0, 0);
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    hctx_t t;
    memset(&t, 0, sizeof t);
    for (unsigned h = 0; h < nharts; h++) {
        t.itemsets += hc[h].itemsets;
        t.support_sum += hc[h].support_sum;
        t.checksum += hc[h].checksum;
        t.n1 += hc[h].n1;
        t.n2 += hc[h].n2;
        t.s2 += hc[h].s2;
        t.verified += hc[h].verified;
        t.bad += hc[h].bad;
        t.pairs_freq += hc[h].pairs_freq;
        t.pairs_sum += hc[h].pairs_sum;
        t.overflow |= hc[h].overflow;
        if (hc[h].maxlen > t.maxlen)
            t.maxlen = hc[h].maxlen;
    }
    if (t.overflow) {
        printf("freqmine: node pool overflow (GNODES/ARENA_WORDS too small)\n");
        return 2;
    }
    int ok = t.bad == 0 && t.n1 == (uint64_t)nfreq && t.n2 == t.pairs_freq &&
             t.s2 == t.pairs_sum && t.verified > 0;
    if (!ok)
        printf("freqmine: check failed: n1=%llu/%d pairs=%llu/%llu sums=%llu/%llu "
               "sampled=%llu bad=%llu\n", (unsigned long long)t.n1, (int)nfreq,
               (unsigned long long)t.n2, (unsigned long long)t.pairs_freq,
               (unsigned long long)t.s2, (unsigned long long)t.pairs_sum,
               (unsigned long long)t.verified, (unsigned long long)t.bad);
#ifdef FM_DEBUG
    printf("tree nodes %d, sampled %llu, arena peak %u words\n", (int)gtree.nn,
           (unsigned long long)t.verified, (unsigned)hc[0].peak);
#endif
    printf("freqmine: transactions=%d items=%d minsup=%d frequent_items=%d itemsets=%llu "
           "maxlen=%u support_sum=%llu checksum=0x%016llx %s\n",
           NTRANS, NITEMS, MINSUP, (int)nfreq, (unsigned long long)t.itemsets,
           (unsigned)t.maxlen, (unsigned long long)t.support_sum,
           (unsigned long long)t.checksum, ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
