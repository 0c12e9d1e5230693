/*
 * spin_contend — N harts hammering one lock and one page.
 *
 * phase 1: CONTEND_ROUNDS critical sections per hart under a test-and-set
 *          spinlock (amoswap.w.aq / sw with release); each one increments
 *          8 counters spread over the shared page non-atomically and checks
 *          an owner word for mutual exclusion.
 * phase 2: the same under a ticket lock (FIFO; amoadd).
 * phase 3: seqlock reader/writer race on the same page: hart 0 rewrites a
 *          64-word record SEQ_WRITES times (sequence odd while writing);
 *          the other harts take snapshots and retry on a torn read.  Torn
 *          snapshots that get past the check would be a memory-model bug.
 * The counters' totals are deterministic for a given hart count; how often
 * anyone spun or retried is not, and is not printed.
 */
#include "runtime.h"

#ifndef CONTEND_ROUNDS
#define CONTEND_ROUNDS 5000u
#endif
#ifndef SEQ_WRITES
#define SEQ_WRITES 5000u
#endif
#define PAGE_WORDS 512u

static volatile uint64_t page[PAGE_WORDS] __attribute__((aligned(4096)));
static volatile uint32_t owner;
static spinlock_t spin = SPINLOCK_INIT;
static ticketlock_t ticket = TICKETLOCK_INIT;
static volatile uint32_t seq CACHE_ALIGNED;
static volatile uint32_t writer_done CACHE_ALIGNED;
static struct { uint32_t excl_errors, torn, snapshots; } CACHE_ALIGNED st[RT_MAX_HARTS];
static barrier_t bar;

static void critical(unsigned hart, uint32_t i)
{
    if (owner != 0)
        st[hart].excl_errors++;
    owner = hart + 1;
    for (unsigned k = 0; k < 8; k++) {
        unsigned w = (i * 8 + k * 64 + hart) % PAGE_WORDS;
        page[w] = page[w] + 1;
    }
    if (owner != hart + 1)
        st[hart].excl_errors++;
    owner = 0;
}

static void seqlock_phase(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        for (uint32_t v = 1; v <= SEQ_WRITES; v++) {
            atomic_store32(&seq, seq + 1);          /* odd: write in progress */
            fence();
            for (unsigned k = 0; k < 64; k++)
                page[k] = v;
            atomic_store32(&seq, seq + 1);          /* even: stable (release) */
        }
        atomic_store32(&writer_done, 1);
        return;
    }
    (void)nharts;
    uint64_t snap[64];
    while (!atomic_load32(&writer_done)) {
        uint32_t s1 = atomic_load32(&seq);
        if (s1 & 1)
            continue;
        for (unsigned k = 0; k < 64; k++)
            snap[k] = page[k];
        fence();
        if (atomic_load32(&seq) != s1)
            continue;                               /* raced with the writer */
        st[hart].snapshots++;
        for (unsigned k = 1; k < 64; k++)
            if (snap[k] != snap[0]) {
                st[hart].torn++;
                break;
            }
    }
}

int guest_main(unsigned hart, unsigned nharts)
{
    barrier_wait(&bar);
    for (uint32_t i = 0; i < CONTEND_ROUNDS; i++) {
        spin_lock(&spin);
        critical(hart, i);
        spin_unlock(&spin);
    }
    barrier_wait(&bar);
    for (uint32_t i = 0; i < CONTEND_ROUNDS; i++) {
        ticket_lock(&ticket);
        critical(hart, i);
        ticket_unlock(&ticket);
    }
    barrier_wait(&bar);

    uint64_t total = 0;
    if (hart == 0) {
        for (unsigned w = 0; w < PAGE_WORDS; w++)
            total += page[w];
        for (unsigned w = 0; w < 64; w++)
            page[w] = 0;
    }
    barrier_wait(&bar);
    seqlock_phase(hart, nharts);
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint32_t excl = 0, torn = 0;
    for (unsigned h = 0; h < nharts; h++) {
        excl += st[h].excl_errors;
        torn += st[h].torn;
    }
    uint64_t expect = 2ull * nharts * CONTEND_ROUNDS * 8;
    int final_ok = page[0] == SEQ_WRITES && page[63] == SEQ_WRITES;
    printf("spin_contend: harts=%u rounds=%u increments=%llu (expect %llu) "
           "exclusion_errors=%u\n", nharts, (unsigned)CONTEND_ROUNDS,
           (unsigned long long)total, (unsigned long long)expect, (unsigned)excl);
    printf("spin_contend: seqlock writes=%u torn_snapshots=%u final=%s\n",
           (unsigned)SEQ_WRITES, (unsigned)torn, final_ok ? "ok" : "BAD");
    int ok = total == expect && excl == 0 && torn == 0 && final_ok;
    printf("spin_contend: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
