/*
 * racy_mp — racy message passing and a "who got there first" race.
 *
 * Test 1, message passing without fences (the classic MP litmus shape):
 *   hart 0 (producer), each round r:  data[0..3] = f(r); flag = r;
 *   other harts (consumers):          wait for flag == r; read data[0..3]
 * All accesses are plain volatile loads/stores, no fences, so RVWMO allows
 * a consumer to see the new flag with old data.  Each consumer counts
 * rounds where it saw stale (or torn) data.  On a TSO host (QEMU on x86)
 * the count is usually 0; on a weak host or a chunked emulator it may not
 * be.  Either way it is an interleaving outcome that replay must reproduce.
 *
 * Test 2, first-come race: each round every hart does a non-atomic
 * check-then-write on a shared slot ("if empty, claim it"), and separately
 * an amoswap on a second slot.  Per hart we count the racy "I won" claims
 * (several harts may think they won the same round: the check and the
 * write are separate) and the atomic wins (exactly one per round).
 *
 * Output depends on the interleaving for nharts > 1.  Exit 0 unless an
 * invariant that holds under any interleaving breaks (atomic wins must sum
 * to the number of rounds; racy winners >= rounds).
 */
#include "runtime.h"

#ifndef MP_ROUNDS
#define MP_ROUNDS 1000u
#endif
#ifndef RACE_ROUNDS
#define RACE_ROUNDS 1000u
#endif

static volatile uint64_t data[4] CACHE_ALIGNED;
static volatile uint64_t flag CACHE_ALIGNED;
static volatile uint32_t racy_slot CACHE_ALIGNED;
static volatile uint32_t atomic_slot CACHE_ALIGNED;

static struct {
    uint32_t stale;          /* MP rounds where data did not match the flag */
    uint32_t racy_wins;      /* rounds this hart believed it claimed racy_slot */
    uint32_t atomic_wins;    /* rounds this hart won the amoswap */
} CACHE_ALIGNED stats[RT_MAX_HARTS];

static barrier_t bar;

static uint64_t payload(uint64_t r, unsigned k) { return r * 0x100000001ull + k; }

static void message_passing(unsigned hart)
{
    for (uint64_t r = 1; r <= MP_ROUNDS; r++) {
        if (hart == 0) {
            for (unsigned k = 0; k < 4; k++)
                data[k] = payload(r, k);
            flag = r;                           /* no fence: racy on purpose */
        } else {
            while (flag < r)
                cpu_relax();
            int ok = 1;
            for (unsigned k = 0; k < 4; k++) {
                uint64_t d = data[k];
                /* Data must be at least as new as the flag we waited for. */
                if (d < payload(r, k))
                    ok = 0;
            }
            if (!ok)
                stats[hart].stale++;
        }
        /* Keep the producer from running ahead by more than one round so
         * each round is a real handoff. */
        barrier_wait(&bar);
    }
}

static void first_come(unsigned hart)
{
    for (uint32_t r = 0; r < RACE_ROUNDS; r++) {
        if (hart == 0) {
            racy_slot = 0;
            atomic_slot = 0;
        }
        barrier_wait(&bar);
        /* Racy claim: separate load and store. */
        if (racy_slot == 0) {
            racy_slot = hart + 1;
            stats[hart].racy_wins++;
        }
        /* Atomic claim: exactly one winner. */
        if (atomic_swap32(&atomic_slot, hart + 1) == 0)
            stats[hart].atomic_wins++;
        barrier_wait(&bar);
    }
}

int guest_main(unsigned hart, unsigned nharts)
{
    barrier_wait(&bar);
    message_passing(hart);
    first_come(hart);
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint32_t stale = 0, racy = 0, atomic = 0;
    printf("racy_mp: harts=%u mp_rounds=%u race_rounds=%u\n",
           nharts, (unsigned)MP_ROUNDS, (unsigned)RACE_ROUNDS);
    for (unsigned h = 0; h < nharts; h++) {
        printf("racy_mp: hart %u: mp_stale=%u racy_wins=%u atomic_wins=%u\n", h,
               (unsigned)stats[h].stale, (unsigned)stats[h].racy_wins,
               (unsigned)stats[h].atomic_wins);
        stale += stats[h].stale;
        racy += stats[h].racy_wins;
        atomic += stats[h].atomic_wins;
    }
    printf("racy_mp: total mp_stale=%u racy_wins=%u (double claims %u) atomic_wins=%u\n",
           (unsigned)stale, (unsigned)racy, (unsigned)(racy - RACE_ROUNDS), (unsigned)atomic);
    if (atomic != RACE_ROUNDS || racy < RACE_ROUNDS) {
        printf("racy_mp: FAIL\n");
        return 1;
    }
    printf("racy_mp: PASS\n");
    return 0;
}
