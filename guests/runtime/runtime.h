/*
 * runtime.h — samsara guest kit: a bare-metal SMP runtime for RV64 machines
 * that follow QEMU's `virt` board (see /work/shared/DESIGN.md, section 2).
 *
 * Execution model
 *   - Every hart enters _start (crt0.S) at the same time, in M-mode, with
 *     a0 = hartid and a1 = device-tree address; there is no firmware.
 *   - Hart 0 clears .bss, reads the hart count from the device tree, sets up
 *     the UART and then releases the other harts.
 *   - Every hart then calls the program's
 *         int guest_main(unsigned hart, unsigned nharts);
 *     When hart 0 returns, the machine powers off through the test device
 *     with the returned value as exit code (0 = pass).  When another hart
 *     returns it parks (wfi forever).
 *   - Any trap without a registered handler is fatal: the runtime prints
 *     cause/epc/tval and powers off with exit code RT_EXIT_FAULT_BASE+cause
 *     (exceptions) or RT_EXIT_BAD_IRQ (interrupts), so a guest never hangs.
 *
 * Everything here is deterministic given the same interleaving: nothing
 * reads time unless the program asks for it.
 */
#ifndef SAMSARA_RUNTIME_H
#define SAMSARA_RUNTIME_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* ---------------------------------------------------------------- limits */

#define RT_MAX_HARTS 8u             /* harts with a larger id park at boot */
#define RT_CACHELINE 64u            /* pad per-hart data to avoid false sharing */

/* Exit codes chosen by the runtime itself (programs use 1..63). */
#define RT_EXIT_FAULT_BASE 100      /* fatal exception: 100 + mcause (100..115) */
#define RT_EXIT_BAD_IRQ    99       /* interrupt with no registered handler */
#define RT_EXIT_NO_FDT     98       /* a1 did not point at a device tree */
#define RT_EXIT_BAD_HARTS  97       /* device tree lists no usable harts */

/* ----------------------------------------------------- memory-map (virt) */

#define TEST_DEV_BASE   0x00100000ul
#define CLINT_BASE      0x02000000ul
#define CLINT_MSIP(h)       (CLINT_BASE + 4ul * (h))
#define CLINT_MTIMECMP(h)   (CLINT_BASE + 0x4000ul + 8ul * (h))
#define CLINT_MTIME         (CLINT_BASE + 0xBFF8ul)
#define MTIME_HZ        10000000ul  /* 10 MHz on QEMU virt and on samsara */
#define PLIC_BASE       0x0C000000ul
#define UART_BASE       0x10000000ul
#define UART_IRQ        10u
#define VIRTIO_MMIO_BASE(i) (0x10001000ul + 0x1000ul * (i))
#define VIRTIO_MMIO_SLOTS   8u
#define VIRTIO_IRQ(i)       (1u + (i))
#define RAM_BASE        0x80000000ul

/* Big arrays that the program initialises itself go here so hart 0 does not
 * spend time zeroing them at boot (the section is NOLOAD and not cleared). */
#define NOINIT __attribute__((section(".noinit"), aligned(64)))
#define CACHE_ALIGNED __attribute__((aligned(RT_CACHELINE)))

/* ------------------------------------------------------------- MMIO/CSR */

static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write64(uintptr_t a, uint64_t v) { *(volatile uint64_t *)a = v; }
static inline uint64_t mmio_read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline uint8_t mmio_read8(uintptr_t a) { return *(volatile uint8_t *)a; }

#define csr_read(csr) ({ unsigned long __v; \
    __asm__ volatile("csrr %0, " #csr : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" :: "rK"(val) : "memory")
#define csr_set(csr, val)   __asm__ volatile("csrs " #csr ", %0" :: "rK"(val) : "memory")
#define csr_clear(csr, val) __asm__ volatile("csrc " #csr ", %0" :: "rK"(val) : "memory")

#define MSTATUS_MIE  (1ul << 3)
#define MIE_MSIE     (1ul << 3)
#define MIE_MTIE     (1ul << 7)
#define MIE_MEIE     (1ul << 11)

/* Interrupt cause numbers (mcause without the top bit). */
#define IRQ_M_SOFT  3u
#define IRQ_M_TIMER 7u
#define IRQ_M_EXT   11u

static inline unsigned hart_id(void) { return (unsigned)csr_read(mhartid); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
/* Spin-wait hint: `pause` (Zihintpause, encoded as `fence w, 0`, so any
 * RV64 core runs it as a fence).  samsara's recorder ends a chunk there
 * instead of letting a spinning hart spin through a whole chunk. */
static inline void cpu_relax(void) { __asm__ volatile(".insn i 0x0f, 0, x0, x0, 0x010" ::: "memory"); }
static inline void fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

/* Global interrupt enable (mstatus.MIE); irq_save/restore nest. */
static inline unsigned long irq_save(void) {
    unsigned long s;
    __asm__ volatile("csrrc %0, mstatus, %1" : "=r"(s) : "i"(MSTATUS_MIE) : "memory");
    return s & MSTATUS_MIE;
}
static inline void irq_restore(unsigned long s) { if (s) csr_set(mstatus, MSTATUS_MIE); }
static inline void irq_global_enable(void) { csr_set(mstatus, MSTATUS_MIE); }
static inline void irq_global_disable(void) { csr_clear(mstatus, MSTATUS_MIE); }

/* ----------------------------------------------------------- atomics */
/* Thin wrappers so programs say which instruction they mean.  The AMO forms
 * compile to a single amoXXX; cas uses an explicit lr/sc loop because the
 * point of several guests is to exercise LR/SC in the emulator. */

static inline uint64_t atomic_fetch_add64(volatile uint64_t *p, uint64_t v) {
    uint64_t old;
    __asm__ volatile("amoadd.d.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint32_t atomic_fetch_add32(volatile uint32_t *p, uint32_t v) {
    uint32_t old;
    __asm__ volatile("amoadd.w.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
static inline uint32_t atomic_swap32(volatile uint32_t *p, uint32_t v) {
    uint32_t old;
    __asm__ volatile("amoswap.w.aqrl %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}
/* Compare-and-swap via lr/sc; returns the value found (== expect on success). */
static inline uint64_t atomic_cas64(volatile uint64_t *p, uint64_t expect, uint64_t desired) {
    uint64_t found, fail;
    __asm__ volatile(
        "1: lr.d.aqrl %0, %2\n"
        "   bne %0, %3, 2f\n"
        "   sc.d.rl %1, %4, %2\n"
        "   bnez %1, 1b\n"
        "2:"
        : "=&r"(found), "=&r"(fail), "+A"(*p)
        : "r"(expect), "r"(desired)
        : "memory");
    return found;
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
static inline uint32_t atomic_cas32(volatile uint32_t *p, uint32_t expect, uint32_t desired) {
    uint32_t found, fail;
    /* lr.w sign-extends; compare against the sign-extended expectation. */
    int64_t e = (int32_t)expect;
    __asm__ volatile(
        "1: lr.w.aqrl %0, %2\n"
        "   bne %0, %3, 2f\n"
        "   sc.w.rl %1, %4, %2\n"
        "   bnez %1, 1b\n"
        "2:"
        : "=&r"(found), "=&r"(fail), "+A"(*p)
        : "r"(e), "r"(desired)
        : "memory");
    return found;
}
static inline uint64_t atomic_load64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline uint32_t atomic_load32(const volatile uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void atomic_store32(volatile uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ----------------------------------------------------------- locks */

/* Test-and-test-and-set spinlock: amoswap.w.aq to take, sw with .rl
 * semantics (fence rw,w; sw) to release. */
typedef struct { volatile uint32_t v; } spinlock_t;
#define SPINLOCK_INIT { 0 }

static inline void spin_lock(spinlock_t *l) {
    for (;;) {
        uint32_t old;
        __asm__ volatile("amoswap.w.aq %0, %2, %1" : "=r"(old), "+A"(l->v) : "r"(1u) : "memory");
        if (old == 0) return;
        while (l->v) cpu_relax();      /* spin on a plain load, not on the AMO */
    }
}
static inline int spin_trylock(spinlock_t *l) {
    uint32_t old;
    __asm__ volatile("amoswap.w.aq %0, %2, %1" : "=r"(old), "+A"(l->v) : "r"(1u) : "memory");
    return old == 0;
}
static inline void spin_unlock(spinlock_t *l) {
    __asm__ volatile("fence rw, w\n\tsw zero, %0" : "=m"(l->v) :: "memory");
}

/* Ticket lock: FIFO-fair, so every hart gets through under contention. */
typedef struct { volatile uint32_t next; volatile uint32_t serving; } ticketlock_t;
#define TICKETLOCK_INIT { 0, 0 }

static inline void ticket_lock(ticketlock_t *l) {
    uint32_t me = atomic_fetch_add32(&l->next, 1);
    while (atomic_load32(&l->serving) != me) cpu_relax();
}
static inline void ticket_unlock(ticketlock_t *l) {
    atomic_store32(&l->serving, l->serving + 1);
}

/* Sense-reversing barrier over `nharts` harts.  Each hart keeps its own
 * sense in the struct (indexed by hart id), so one barrier object can be
 * reused any number of times.  BARRIER_INIT is all-zero, so a barrier in
 * .bss needs no initialisation.
 *
 * barrier_wait: spins for a while, then sleeps in wfi and is woken by an
 *   IPI from the last arriver.  Sleeping matters when harts outnumber host
 *   CPUs (QEMU -smp 4 on a 2-core host): a pure spinner burns the time
 *   slice the late hart needs.  It uses msip, so a program that handles
 *   machine software interrupts itself should use barrier_wait_spin (a
 *   late IPI can leave msip set after the barrier).
 * barrier_wait_spin: pure spinning on a plain load (no MMIO at all). */
typedef struct {
    volatile uint32_t count;        /* harts arrived in this episode */
    volatile uint32_t sense;        /* flips when the last hart arrives */
    volatile uint32_t sleepers;     /* bit h: hart h may be in wfi */
    uint8_t local[RT_MAX_HARTS];    /* each hart's private sense */
} barrier_t;
#define BARRIER_INIT { 0, 0, 0, { 0 } }
void barrier_wait(barrier_t *b);    /* waits for rt_nharts harts */
void barrier_wait_n(barrier_t *b, unsigned n);
void barrier_wait_spin(barrier_t *b);

/* Turn-taking helper: hart h waits until *turn == h, does its thing, then
 * calls turn_pass.  Gives a deterministic per-hart order for output. */
static inline void turn_wait(volatile uint32_t *turn, unsigned me) {
    while (atomic_load32(turn) != me) cpu_relax();
}
static inline void turn_pass(volatile uint32_t *turn) {
    atomic_store32(turn, *turn + 1);
}

/* ----------------------------------------------------------- runtime */

extern unsigned rt_nharts;          /* harts in the device tree (<= RT_MAX_HARTS) */
extern uintptr_t rt_fdt;            /* device tree address from a1 */

int guest_main(unsigned hart, unsigned nharts);   /* provided by each program */

/* Power off through the SiFive test device: 0 = pass, else fail(code). */
__attribute__((noreturn)) void rt_exit(int code);
/* Park this hart for good (interrupts masked, wfi loop). */
__attribute__((noreturn)) void rt_park(void);

/* Printing: printf/puts/putchar are the locked versions from uart.c, so a
 * line from one hart is never interleaved with another's.  rt_puts_raw
 * bypasses the lock (used by the fatal-trap path). */
void uart_putc(char c);
void rt_puts_raw(const char *s);

/* Console input.  uart_init leaves every UART interrupt off (IER = 0);
 * uart_enable_rx_irq turns on "received data available" (IER bit 0, raised
 * on PLIC source UART_IRQ while a byte waits), uart_disable_rx_irq turns it
 * off again.  uart_getc_nowait returns the next received byte, or -1 if
 * none is waiting (it reads LSR, then RBR only when LSR says data ready). */
void uart_enable_rx_irq(void);
void uart_disable_rx_irq(void);
int uart_getc_nowait(void);

/* ----------------------------------------------------------- FDT */
/* Count /cpus/cpu@* nodes (status not "disabled"); -1 if no valid FDT. */
int fdt_count_cpus(const void *fdt);
/* Size of the first /memory node's first reg range, 0 if unknown. */
uint64_t fdt_memory_size(const void *fdt);

/* ----------------------------------------------------------- traps */

/* Saved state of the interrupted context (layout matches crt0.S). */
typedef struct trap_frame {
    uint64_t x[32];                 /* x[0] unused; x[2] is the interrupted sp */
    uint64_t mepc, mcause, mtval, mstatus;
} trap_frame_t;

typedef void (*irq_handler_t)(unsigned hart);
/* Exception hook: return 1 if handled (adjust f->mepc as needed), 0 to let
 * the runtime treat it as fatal. */
typedef int (*exc_hook_t)(unsigned hart, trap_frame_t *f);

/* Register a handler for IRQ_M_SOFT / IRQ_M_TIMER (global, all harts).
 * IRQ_M_EXT is handled by the runtime: it claims from the PLIC and calls
 * the handler registered with plic_set_handler. */
void rt_set_irq_handler(unsigned cause, irq_handler_t h);
void rt_set_exception_hook(exc_hook_t h);

/* Sleep until *flag != 0 without the lost-wakeup race: checks with
 * interrupts masked, wfi (wakes on any pending enabled interrupt), then
 * opens the window to take it.  Interrupts of interest must be enabled in
 * mie by the caller. */
void rt_wait_flag(volatile uint32_t *flag);
void rt_wait_until_ge(volatile uint32_t *counter, uint32_t target);

/* ----------------------------------------------------------- CLINT */

static inline uint64_t clint_mtime(void) { return mmio_read64(CLINT_MTIME); }
static inline uint64_t rdtime(void) {
    uint64_t t; __asm__ volatile("rdtime %0" : "=r"(t)); return t;
}
static inline void clint_set_mtimecmp(unsigned hart, uint64_t v) {
    mmio_write64(CLINT_MTIMECMP(hart), v);
}
static inline void clint_send_ipi(unsigned hart) { mmio_write32(CLINT_MSIP(hart), 1); }
static inline void clint_clear_ipi(unsigned hart) { mmio_write32(CLINT_MSIP(hart), 0); }

/* ----------------------------------------------------------- PLIC */
/* QEMU virt wiring: hart h's M-mode context is 2h (2h+1 is S-mode). */
#define PLIC_PRIORITY(irq)      (PLIC_BASE + 4ul * (irq))
#define PLIC_PENDING            (PLIC_BASE + 0x1000ul)
#define PLIC_ENABLE(ctx)        (PLIC_BASE + 0x2000ul + 0x80ul * (ctx))
#define PLIC_THRESHOLD(ctx)     (PLIC_BASE + 0x200000ul + 0x1000ul * (ctx))
#define PLIC_CLAIM(ctx)         (PLIC_BASE + 0x200004ul + 0x1000ul * (ctx))
static inline unsigned plic_mctx(unsigned hart) { return 2u * hart; }

void plic_set_priority(unsigned irq, uint32_t prio);
void plic_enable(unsigned hart, unsigned irq);      /* for hart's M context */
void plic_disable(unsigned hart, unsigned irq);
void plic_set_threshold(unsigned hart, uint32_t t);
uint32_t plic_claim(unsigned hart);
void plic_complete(unsigned hart, uint32_t irq);
void plic_set_handler(unsigned irq, irq_handler_t h);

/* ----------------------------------------------------------- misc */

/* CRC-32 (IEEE, reflected), table-free bitwise form: slow but tiny. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* Deterministic 64-bit PRNG (splitmix64) for generated inputs. */
static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif /* SAMSARA_RUNTIME_H */
