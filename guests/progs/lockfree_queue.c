/*
 * lockfree_queue — a bounded multi-producer/multi-consumer ring (Vyukov's
 * design: per-cell sequence numbers, positions advanced with CAS built
 * from lr/sc).
 *
 * QUEUE_ITEMS item ids 0..T-1 are split among the harts; every hart both
 * produces its share and consumes whatever it can dequeue until all T
 * have been consumed.  Checks: every id consumed exactly once (count and
 * sum), and FIFO order per producer as seen by each consumer.  Who
 * dequeues what depends on the interleaving, but nothing printed does:
 * the output is the same on every run and for every hart count.
 */
#include "runtime.h"

#ifndef QUEUE_ITEMS
#define QUEUE_ITEMS 200000u
#endif
#define QCAP 64u                        /* power of two, small: lots of full/empty */

struct cell { volatile uint64_t seq; volatile uint64_t val; };

static struct cell cells[QCAP] CACHE_ALIGNED;
static volatile uint64_t enq_pos CACHE_ALIGNED;
static volatile uint64_t deq_pos CACHE_ALIGNED;
static volatile uint64_t consumed CACHE_ALIGNED;    /* items dequeued so far */

static struct {
    uint64_t count, sum, order_errors, dup_or_range;
    uint64_t last[RT_MAX_HARTS];                    /* last id seen per producer, +1 */
} CACHE_ALIGNED st[RT_MAX_HARTS];

static barrier_t bar;
static unsigned g_nharts;

static int enqueue(uint64_t v)
{
    uint64_t pos = enq_pos;
    for (;;) {
        struct cell *c = &cells[pos & (QCAP - 1)];
        int64_t dif = (int64_t)(atomic_load64(&c->seq) - pos);
        if (dif == 0) {
            uint64_t found = atomic_cas64(&enq_pos, pos, pos + 1);
            if (found == pos) {
                c->val = v;
                atomic_store64(&c->seq, pos + 1);   /* publish to consumers */
                return 1;
            }
            pos = found;
        } else if (dif < 0) {
            return 0;                               /* full */
        } else {
            pos = enq_pos;                          /* someone got ahead */
        }
    }
}

static int dequeue(uint64_t *v)
{
    uint64_t pos = deq_pos;
    for (;;) {
        struct cell *c = &cells[pos & (QCAP - 1)];
        int64_t dif = (int64_t)(atomic_load64(&c->seq) - (pos + 1));
        if (dif == 0) {
            uint64_t found = atomic_cas64(&deq_pos, pos, pos + 1);
            if (found == pos) {
                *v = c->val;
                atomic_store64(&c->seq, pos + QCAP);  /* free for lap + 1 */
                return 1;
            }
            pos = found;
        } else if (dif < 0) {
            return 0;                               /* empty */
        } else {
            pos = deq_pos;
        }
    }
}

/* Producer of an id: ids are handed out in contiguous ranges. */
static unsigned producer_of(uint64_t id)
{
    unsigned n = g_nharts, per = QUEUE_ITEMS / n;
    unsigned p = (unsigned)(id / per);
    return p >= n ? n - 1 : p;
}

static void consume(unsigned hart, uint64_t id)
{
    atomic_fetch_add64(&consumed, 1);
    st[hart].count++;
    st[hart].sum += id;
    if (id >= QUEUE_ITEMS) {
        st[hart].dup_or_range++;
        return;
    }
    unsigned p = producer_of(id);
    if (id + 1 <= st[hart].last[p])                 /* not strictly increasing */
        st[hart].order_errors++;
    st[hart].last[p] = id + 1;
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        g_nharts = nharts;
        for (unsigned i = 0; i < QCAP; i++)
            cells[i].seq = i;
    }
    barrier_wait(&bar);

    unsigned per = QUEUE_ITEMS / nharts;
    uint64_t next = (uint64_t)per * hart;
    uint64_t end = hart == nharts - 1 ? QUEUE_ITEMS : next + per;
    uint64_t v;
    while (next < end || atomic_load64(&consumed) < QUEUE_ITEMS) {
        if (next < end && enqueue(next))
            next++;
        if (dequeue(&v))
            consume(hart, v);
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint64_t count = 0, sum = 0, order = 0, bad = 0;
    for (unsigned h = 0; h < nharts; h++) {
        count += st[h].count;
        sum += st[h].sum;
        order += st[h].order_errors;
        bad += st[h].dup_or_range;
    }
    uint64_t expect_sum = (uint64_t)QUEUE_ITEMS * (QUEUE_ITEMS - 1) / 2;
    int ok = count == QUEUE_ITEMS && sum == expect_sum && order == 0 && bad == 0;
    printf("lockfree_queue: items=%u capacity=%u consumed=%llu sum=%llu (expect %llu) "
           "order_errors=%llu bad=%llu\n", (unsigned)QUEUE_ITEMS, (unsigned)QCAP,
           (unsigned long long)count, (unsigned long long)sum,
           (unsigned long long)expect_sum, (unsigned long long)order,
           (unsigned long long)bad);
    printf("lockfree_queue: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
