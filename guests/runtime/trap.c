/*
 * trap.c — machine-mode trap dispatch and PLIC helpers.
 *
 * crt0.S saves the interrupted context in a trap_frame_t on the hart's trap
 * stack and calls rt_trap().  Interrupts go to the registered handlers
 * (MSI, MTI) or, for MEI, through a PLIC claim/complete cycle to the
 * per-source handler.  Exceptions go to the optional hook; anything not
 * handled is fatal: print a report and power off with a failure code,
 * because a guest that faults must never hang the emulator under test.
 */
#include "runtime.h"

#define MCAUSE_INT (1ul << 63)
#define PLIC_MAX_IRQ 64u

static irq_handler_t irq_handlers[16];
static irq_handler_t plic_handlers[PLIC_MAX_IRQ];
static exc_hook_t exception_hook;

int rt_print_lock_try(unsigned spins);

void rt_set_irq_handler(unsigned cause, irq_handler_t h)
{
    if (cause < 16)
        irq_handlers[cause] = h;
    fence();
}

void rt_set_exception_hook(exc_hook_t h)
{
    exception_hook = h;
    fence();
}

void plic_set_handler(unsigned irq, irq_handler_t h)
{
    if (irq < PLIC_MAX_IRQ)
        plic_handlers[irq] = h;
    fence();
}

static const char *exc_name(unsigned long cause)
{
    static const char *const names[] = {
        "instruction address misaligned", "instruction access fault",
        "illegal instruction", "breakpoint", "load address misaligned",
        "load access fault", "store/AMO address misaligned",
        "store/AMO access fault", "ecall from U-mode", "ecall from S-mode",
        "reserved", "ecall from M-mode", "instruction page fault",
        "load page fault", "reserved", "store/AMO page fault",
    };
    return cause < 16 ? names[cause] : "unknown";
}

__attribute__((noreturn)) static void fatal(unsigned hart, trap_frame_t *f, int code)
{
    /* Take the print lock if we can get it quickly, but print regardless:
     * the faulting hart may itself be the holder. */
    (void)rt_print_lock_try(1u << 20);
    char buf[160];
    int interrupt = (f->mcause & MCAUSE_INT) != 0;
    unsigned long cause = f->mcause & ~MCAUSE_INT;
    snprintf(buf, sizeof buf,
             "\n*** guest trap on hart %u: %s %lu (%s) epc=0x%lx tval=0x%lx -> exit %d\n",
             hart, interrupt ? "interrupt" : "exception", cause,
             interrupt ? "no handler" : exc_name(cause),
             (unsigned long)f->mepc, (unsigned long)f->mtval, code);
    rt_puts_raw(buf);
    rt_exit(code);
}

static void handle_external(unsigned hart)
{
    /* Drain every pending source for this context. */
    for (;;) {
        uint32_t irq = plic_claim(hart);
        if (irq == 0)
            break;
        if (irq < PLIC_MAX_IRQ && plic_handlers[irq])
            plic_handlers[irq](hart);
        plic_complete(hart, irq);
    }
}

void rt_trap(trap_frame_t *f)
{
    unsigned hart = hart_id();
    if (f->mcause & MCAUSE_INT) {
        unsigned cause = (unsigned)(f->mcause & 0xff);
        if (cause == IRQ_M_EXT) {
            handle_external(hart);
            return;
        }
        if (cause < 16 && irq_handlers[cause]) {
            irq_handlers[cause](hart);
            return;
        }
        fatal(hart, f, RT_EXIT_BAD_IRQ);
    }
    if (exception_hook && exception_hook(hart, f))
        return;
    fatal(hart, f, RT_EXIT_FAULT_BASE + (int)(f->mcause & 0xf));
}

void rt_wait_flag(volatile uint32_t *flag)
{
    /* Check and sleep with interrupts masked: a pending enabled interrupt
     * still wakes wfi, and the interrupt is then taken in the short window
     * where MIE is set.  Checking with MIE set would race: the handler
     * could set the flag between the check and the wfi, and we would
     * sleep past it.  The caller's mstatus.MIE is restored on return. */
    unsigned long s = irq_save();
    while (!atomic_load32(flag)) {
        wfi();
        irq_global_enable();
        irq_global_disable();
    }
    irq_restore(s);
}

void rt_wait_until_ge(volatile uint32_t *counter, uint32_t target)
{
    unsigned long s = irq_save();
    while ((int32_t)(atomic_load32(counter) - target) < 0) {
        wfi();
        irq_global_enable();
        irq_global_disable();
    }
    irq_restore(s);
}

/* ------------------------------------------------------------------ PLIC */

void plic_set_priority(unsigned irq, uint32_t prio) { mmio_write32(PLIC_PRIORITY(irq), prio); }

void plic_enable(unsigned hart, unsigned irq)
{
    uintptr_t a = PLIC_ENABLE(plic_mctx(hart)) + 4ul * (irq / 32);
    mmio_write32(a, mmio_read32(a) | (1u << (irq % 32)));
}

void plic_disable(unsigned hart, unsigned irq)
{
    uintptr_t a = PLIC_ENABLE(plic_mctx(hart)) + 4ul * (irq / 32);
    mmio_write32(a, mmio_read32(a) & ~(1u << (irq % 32)));
}

void plic_set_threshold(unsigned hart, uint32_t t) { mmio_write32(PLIC_THRESHOLD(plic_mctx(hart)), t); }
uint32_t plic_claim(unsigned hart) { return mmio_read32(PLIC_CLAIM(plic_mctx(hart))); }
void plic_complete(unsigned hart, uint32_t irq) { mmio_write32(PLIC_CLAIM(plic_mctx(hart)), irq); }
