/*
 * soak — a guest that runs until it is stopped (scripts/long-recording.sh
 * records it for ten minutes and more, then stops it with SIGINT).
 *
 * Every hart loops over rounds.  A round stirs a private 64 KiB buffer
 * (pages written every round), takes a spinlock to fold its result into a
 * shared table (chunks of different harts touch the same pages: conflicts,
 * lock hand-offs) and reads the time CSR (logged inputs).  Hart 0 prints a
 * heartbeat line every SOAK_BEAT rounds (device accesses, guest output).
 * With SOAK_ROUNDS set (a build-time count) every hart stops after that
 * many rounds and hart 0 prints the table's checksum; the default 0 runs
 * for ever.
 */
#include "runtime.h"

#ifndef SOAK_ROUNDS
#define SOAK_ROUNDS 0u
#endif
#ifndef SOAK_BEAT
#define SOAK_BEAT 2000u
#endif

#define PRIV_WORDS (64u * 1024u / 8u)
#define SHARED_WORDS 2048u

static uint64_t priv[RT_MAX_HARTS][PRIV_WORDS] __attribute__((aligned(4096)));
static volatile uint64_t shared[SHARED_WORDS] __attribute__((aligned(4096)));
static spinlock_t lock = SPINLOCK_INIT;
static volatile uint64_t rounds_done CACHE_ALIGNED;
static barrier_t bar;

static inline int soak_done(uint64_t r)
{
#if SOAK_ROUNDS == 0
    (void)r;
    return 0;
#else
    return r >= SOAK_ROUNDS;
#endif
}

static uint64_t stir(uint64_t *buf, uint64_t seed)
{
    uint64_t h = seed;
    for (unsigned i = 0; i < PRIV_WORDS; i += 7) {
        h ^= buf[i] + i;
        h *= 0x100000001b3ull;
        buf[i] = h ^ (h >> 31);
    }
    return h;
}

int guest_main(unsigned hart, unsigned nharts)
{
    uint64_t h = 0x9e3779b97f4a7c15ull * (hart + 1);
    barrier_wait(&bar);
    for (uint64_t r = 0; !soak_done(r); r++) {
        h = stir(priv[hart], h);
        spin_lock(&lock);
        for (unsigned k = 0; k < 8; k++) {
            unsigned slot = (unsigned)((h >> (8 * k)) % SHARED_WORDS);
            shared[slot] += h + k;
        }
        rounds_done++;
        spin_unlock(&lock);
        h ^= csr_read(time) & 1;
        if (hart == 0 && r % SOAK_BEAT == 0)
            printf("soak: round %llu, %llu rounds on %u harts\n",
                   (unsigned long long)r, (unsigned long long)rounds_done, nharts);
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;
    uint64_t sum = 0;
    for (unsigned i = 0; i < SHARED_WORDS; i++)
        sum = sum * 31 + shared[i];
    printf("soak: done, %llu rounds, table %016llx\n",
           (unsigned long long)rounds_done, (unsigned long long)sum);
    return 0;
}
