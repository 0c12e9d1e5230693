/*
 * smc — self-modifying code on every hart, beside a racy counter.
 *
 * Each hart owns a page of code, `addi a0, zero, K; ret`. Every round it
 * calls it as it is (a fetch, no store), reads the CLINT's mtime (a device
 * access: a recording's chunk ends there, so the next chunk's first touch
 * of the page is the store that rewrites it), rewrites K, runs `fence.i`,
 * calls it again, and reads mtime again. Every call must return the K last
 * written: a stale instruction (decoded or translated before the rewrite)
 * shows. Every round also adds to a shared counter without atomics, reading
 * it before the second mtime read and writing it after, so the total
 * depends on the interleaving.
 */
#include "runtime.h"

#ifndef SMC_ROUNDS
#define SMC_ROUNDS 3000u
#endif

static uint32_t code[RT_MAX_HARTS][1024] __attribute__((aligned(4096)));
static volatile uint64_t racy_total;
static volatile uint32_t stale_harts;
static barrier_t bar;

static inline uint32_t addi_a0_zero(uint32_t k) { return ((k & 0x7ff) << 20) | (10u << 7) | 0x13; }
#define RET 0x00008067u

int guest_main(unsigned hart, unsigned nharts)
{
    uint32_t *page = code[hart];
    uint64_t (*fn)(void) = (uint64_t (*)(void))(uintptr_t)page;
    uint64_t sum = 0, expect = 0;
    uint32_t k = hart;
    page[0] = addi_a0_zero(k);
    page[1] = RET;
    __asm__ volatile("fence.i" ::: "memory");
    barrier_wait(&bar);
    for (uint32_t round = 0; round < SMC_ROUNDS; round++) {
        sum += fn();
        expect += k;
        k = (uint32_t)(clint_mtime() + round * 7u + hart) & 0x3ff;
        page[0] = addi_a0_zero(k);
        __asm__ volatile("fence.i" ::: "memory");
        sum += fn();
        expect += k;
        uint64_t seen = racy_total;
        (void)clint_mtime();
        racy_total = seen + 1;
    }
    if (sum != expect) {
        atomic_or32(&stale_harts, 1u << hart);
        printf("hart %u: STALE CODE RAN\n", hart);
    }
    barrier_wait(&bar);
    if (hart == 0)
        printf("smc: racy total %llu of %u, %s\n", (unsigned long long)racy_total,
               SMC_ROUNDS * nharts, stale_harts ? "FAIL" : "PASS");
    return stale_harts ? 1 : 0;
}
