/*
 * parsum — parallel sum, the scaling benchmark (run at 1, 2, 4 harts).
 *
 * Each hart fills its slice of a[i] = 7*i + 3, then makes PARSUM_PASSES
 * passes over the slice summing a[i] + pass.  Partial sums go to padded
 * per-hart slots; after a barrier hart 0 adds them and checks against the
 * closed form.  The printed checksum is the same for every hart count.
 *
 * Work: PARSUM_SIZE * (PASSES + 1) element operations, ~5 instructions
 * each: the defaults give ~64M additions (~350M instructions, ~1.5-2 s at
 * 200 MIPS single hart).  Both sizes are compile-time constants
 * (-DPARSUM_SIZE=... -DPARSUM_PASSES=...).
 */
#include "runtime.h"

#ifndef PARSUM_SIZE
#define PARSUM_SIZE (4u * 1024 * 1024)      /* elements (uint32_t): 16 MiB */
#endif
#ifndef PARSUM_PASSES
#define PARSUM_PASSES 16u
#endif

static NOINIT uint32_t a[PARSUM_SIZE];

static struct { uint64_t sum; } CACHE_ALIGNED partial[RT_MAX_HARTS];
static barrier_t bar;

int guest_main(unsigned hart, unsigned nharts)
{
    /* Contiguous slices; the last hart takes the remainder. */
    size_t per = PARSUM_SIZE / nharts;
    size_t lo = per * hart;
    size_t hi = hart == nharts - 1 ? PARSUM_SIZE : lo + per;

    for (size_t i = lo; i < hi; i++)
        a[i] = (uint32_t)(7 * i + 3);

    uint64_t sum = 0;
    for (uint32_t p = 0; p < PARSUM_PASSES; p++)
        for (size_t i = lo; i < hi; i++)
            sum += (uint64_t)a[i] + p;     /* 64-bit add: no zext per element */
    partial[hart].sum = sum;

    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint64_t total = 0;
    for (unsigned h = 0; h < nharts; h++)
        total += partial[h].sum;

    /* sum_i (7i+3) = 7*S(S-1)/2 + 3S, once per pass, plus S*sum_p p. */
    const uint64_t S = PARSUM_SIZE, P = PARSUM_PASSES;
    uint64_t expect = P * (7 * S * (S - 1) / 2 + 3 * S) + S * (P * (P - 1) / 2);

    printf("parsum: size=%u passes=%u checksum=0x%016llx expect=0x%016llx %s\n",
           (unsigned)PARSUM_SIZE, (unsigned)PARSUM_PASSES,
           (unsigned long long)total, (unsigned long long)expect,
           total == expect ? "PASS" : "FAIL");
    return total == expect ? 0 : 1;
}
