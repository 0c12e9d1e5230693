/*
 * runtime.h for Linux user space — the subset of the bare-metal guest
 * runtime's API (guests/runtime/runtime.h) that the PARSEC-like programs
 * (guests/parsec/NAME.c) use, on POSIX threads, so that the very same
 * algorithm sources build as static Linux programs.  `make -C guests linux`
 * compiles every guests/parsec/NAME.c with guest_main renamed NAME_main
 * and links them with guests/linux/shim.c into one static multi-call
 * program per size: build/linux/parsec-test and build/linux/parsec-bench.
 *
 * A "hart" is a thread: `parsec-test NAME N` runs NAME's guest_main(h, N)
 * on N threads (default: the online CPUs) and exits with hart 0's return
 * value, as the bare-metal runtime powers off when hart 0 returns.  Atomics, spinlocks
 * and the barrier's arrival protocol are the runtime's own; where the
 * bare-metal code sleeps in wfi until an IPI, this one sleeps on a futex.
 * M-mode interrupt control (mie, mstatus.MIE) has no user-space meaning:
 * those calls do nothing.
 */
#ifndef SAMSARA_LINUX_RUNTIME_H
#define SAMSARA_LINUX_RUNTIME_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#define RT_MAX_HARTS 8u
#define RT_CACHELINE 64u

/* No boot-time clearing to skip in user space: plain (zeroed) .bss. */
#define NOINIT __attribute__((aligned(64)))
#define CACHE_ALIGNED __attribute__((aligned(RT_CACHELINE)))

#define MIE_MSIE (1ul << 3)
#define csr_read(csr) (0ul)
#define csr_write(csr, val) ((void)(val))
#define csr_set(csr, val) ((void)(val))
#define csr_clear(csr, val) ((void)(val))
static inline unsigned long irq_save(void) { return 0; }
static inline void irq_restore(unsigned long s) { (void)s; }

/* Spin-wait hint (Zihintpause), as in the bare-metal runtime. */
static inline void cpu_relax(void) { __asm__ volatile(".insn i 0x0f, 0, x0, x0, 0x010" ::: "memory"); }
static inline void fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

/* wfi: sleep until another thread "sends an IPI" (clint_send_ipi), or
 * 1 ms at most (the bare-metal wfi also may return spuriously). */
void wfi(void);
void clint_send_ipi(unsigned hart);
static inline void clint_clear_ipi(unsigned hart) { (void)hart; }

static inline uint32_t atomic_fetch_add32(volatile uint32_t *p, uint32_t v) {
    uint32_t old;
    __asm__ volatile("amoadd.w.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint64_t atomic_fetch_add64(volatile uint64_t *p, uint64_t v) {
    uint64_t old;
    __asm__ volatile("amoadd.d.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint32_t atomic_or32(volatile uint32_t *p, uint32_t v) {
    uint32_t old;
    __asm__ volatile("amoor.w.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint32_t atomic_and32(volatile uint32_t *p, uint32_t v) {
    uint32_t old;
    __asm__ volatile("amoand.w.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint32_t atomic_load32(const volatile uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store32(volatile uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

typedef struct { volatile uint32_t v; } spinlock_t;
#define SPINLOCK_INIT { 0 }
static inline void spin_lock(spinlock_t *l) {
    for (;;) {
        uint32_t old;
        __asm__ volatile("amoswap.w.aq %0, %2, %1" : "=r"(old), "+A"(l->v) : "r"(1u) : "memory");
        if (old == 0) return;
        while (l->v) cpu_relax();
    }
}
static inline void spin_unlock(spinlock_t *l) {
    __asm__ volatile("fence rw, w\n\tsw zero, %0" : "=m"(l->v) :: "memory");
}

/* Sense-reversing barrier over rt_nharts threads; waiters spin briefly,
 * then sleep on a futex on `sense`. */
typedef struct {
    volatile uint32_t count;
    volatile uint32_t sense;
    volatile uint32_t sleepers;
    uint8_t local[RT_MAX_HARTS];
} barrier_t;
#define BARRIER_INIT { 0, 0, 0, { 0 } }
void barrier_wait(barrier_t *b);

extern unsigned rt_nharts;
/* Each program's guest_main is compiled as NAME_main (-Dguest_main=...). */
int guest_main(unsigned hart, unsigned nharts);

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif /* SAMSARA_LINUX_RUNTIME_H */
