/*
 * crt0.S — reset entry and trap entry for samsara guests.
 *
 * The boot ROM (QEMU virt and samsara alike) starts EVERY hart here at the
 * same time, in M-mode, with a0 = mhartid and a1 = device-tree address.
 *
 *   hart 0:  clear .bss, rt_init_primary(a1) (FDT, UART), publish
 *            rt_boot_flag, wake the others with an IPI.
 *   others:  wait (wfi, woken by msip) until rt_boot_flag is set.  They touch
 *            nothing but their own stack region and rt_boot_flag, which
 *            lives in .data precisely so hart 0's .bss clear cannot race it.
 *   all:     rt_hart_entry(hartid) -> guest_main().
 *
 * Memory per hart (in the NOLOAD .stacks section, never cleared):
 *   STACK_SIZE bytes of normal stack and TRAP_STACK_SIZE bytes of trap
 *   stack.  mscratch holds the top of the trap stack while the hart runs
 *   normal code, so a trap taken with a corrupt sp still gets a good stack
 *   and can report itself instead of hanging.
 */

#define STACK_SIZE       16384
#define TRAP_STACK_SIZE  4096
#define MAX_HARTS        8

/* trap_frame_t layout (runtime.h) */
#define F_X(n)     ((n) * 8)
#define F_MEPC     256
#define F_MCAUSE   264
#define F_MTVAL    272
#define F_MSTATUS  280
#define F_FP(i)    (288 + (i) * 8)      /* 20 caller-saved FP registers */
#define F_FCSR     448
#define FRAME_SIZE 464                  /* multiple of 16 */

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    csrw    mie, zero                   /* no interrupt sources until asked */
    la      t0, trap_entry
    csrw    mtvec, t0                   /* direct mode */

    /* Enable the FPU (mstatus.FS = Initial): with -bios none nothing else
     * does, and FP instructions trap while FS is Off. */
    li      t0, (1 << 13)
    csrs    mstatus, t0
    csrw    fcsr, zero

    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      tp, zero

    /* Harts beyond what the kit supports park for good. */
    li      t0, MAX_HARTS
    bgeu    a0, t0, .Lpark

    /* sp = top of this hart's stack; mscratch = top of its trap stack. */
    la      t0, __stacks_start
    li      t1, STACK_SIZE + TRAP_STACK_SIZE
    addi    t2, a0, 1
    mul     t1, t1, t2
    add     t0, t0, t1                  /* end of this hart's slot */
    csrw    mscratch, t0                /* trap stack: upper TRAP_STACK_SIZE */
    li      t1, TRAP_STACK_SIZE
    sub     sp, t0, t1                  /* normal stack below it */

    bnez    a0, .Lsecondary

    /* ---- hart 0: clear .bss (a0/a1 live in s0/s1 meanwhile) */
    mv      s0, a0
    mv      s1, a1
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  mv      a0, s1
    call    rt_init_primary             /* sets rt_boot_flag, sends IPIs */
    mv      a0, s0
    j       .Lenter

.Lsecondary:
    /* Sleep until hart 0 publishes rt_boot_flag.  msip stays pending until
     * cleared, so an IPI sent before we reach wfi is not lost; the flag
     * check makes a spurious wakeup (or a wfi that is a no-op) harmless. */
    li      t0, (1 << 3)                /* mie.MSIE so wfi wakes on msip */
    csrw    mie, t0
    la      t1, rt_boot_flag
1:  lw      t0, 0(t1)
    bnez    t0, 2f
    wfi
    j       1b
2:  fence   r, rw                       /* acquire: see hart 0's init */
    csrw    mie, zero
    li      t0, 0x02000000              /* CLINT msip[hart] = 0 */
    slli    t1, a0, 2
    add     t0, t0, t1
    sw      zero, 0(t0)

.Lenter:
    call    rt_hart_entry               /* never returns */
.Lpark:
    csrw    mie, zero
1:  wfi
    j       1b

/*
 * trap_entry — every trap (interrupt or exception) lands here.
 * Switch to the per-hart trap stack, save all integer registers and the
 * caller-saved FP registers (interrupted code may be mid-FP computation
 * and handlers are plain C), call rt_trap(frame), restore, mret.
 */
    .text
    .balign 4
    .globl trap_entry
trap_entry:
    csrrw   sp, mscratch, sp            /* sp = trap stack, mscratch = old sp */
    addi    sp, sp, -FRAME_SIZE
    sd      x1,  F_X(1)(sp)
    sd      x3,  F_X(3)(sp)
    sd      x4,  F_X(4)(sp)
    sd      x5,  F_X(5)(sp)
    sd      x6,  F_X(6)(sp)
    sd      x7,  F_X(7)(sp)
    sd      x8,  F_X(8)(sp)
    sd      x9,  F_X(9)(sp)
    sd      x10, F_X(10)(sp)
    sd      x11, F_X(11)(sp)
    sd      x12, F_X(12)(sp)
    sd      x13, F_X(13)(sp)
    sd      x14, F_X(14)(sp)
    sd      x15, F_X(15)(sp)
    sd      x16, F_X(16)(sp)
    sd      x17, F_X(17)(sp)
    sd      x18, F_X(18)(sp)
    sd      x19, F_X(19)(sp)
    sd      x20, F_X(20)(sp)
    sd      x21, F_X(21)(sp)
    sd      x22, F_X(22)(sp)
    sd      x23, F_X(23)(sp)
    sd      x24, F_X(24)(sp)
    sd      x25, F_X(25)(sp)
    sd      x26, F_X(26)(sp)
    sd      x27, F_X(27)(sp)
    sd      x28, F_X(28)(sp)
    sd      x29, F_X(29)(sp)
    sd      x30, F_X(30)(sp)
    sd      x31, F_X(31)(sp)
    csrr    t0, mscratch
    sd      t0, F_X(2)(sp)              /* interrupted sp */
    csrw    mscratch, sp                /* a nested trap stacks below us */
    csrr    t0, mepc
    sd      t0, F_MEPC(sp)
    csrr    t0, mcause
    sd      t0, F_MCAUSE(sp)
    csrr    t0, mtval
    sd      t0, F_MTVAL(sp)
    csrr    t0, mstatus
    sd      t0, F_MSTATUS(sp)
    fsd     f0,  F_FP(0)(sp)
    fsd     f1,  F_FP(1)(sp)
    fsd     f2,  F_FP(2)(sp)
    fsd     f3,  F_FP(3)(sp)
    fsd     f4,  F_FP(4)(sp)
    fsd     f5,  F_FP(5)(sp)
    fsd     f6,  F_FP(6)(sp)
    fsd     f7,  F_FP(7)(sp)
    fsd     f10, F_FP(8)(sp)
    fsd     f11, F_FP(9)(sp)
    fsd     f12, F_FP(10)(sp)
    fsd     f13, F_FP(11)(sp)
    fsd     f14, F_FP(12)(sp)
    fsd     f15, F_FP(13)(sp)
    fsd     f16, F_FP(14)(sp)
    fsd     f17, F_FP(15)(sp)
    fsd     f28, F_FP(16)(sp)
    fsd     f29, F_FP(17)(sp)
    fsd     f30, F_FP(18)(sp)
    fsd     f31, F_FP(19)(sp)
    frcsr   t0
    sd      t0, F_FCSR(sp)

    mv      a0, sp
    call    rt_trap

    ld      t0, F_FCSR(sp)
    fscsr   t0
    fld     f0,  F_FP(0)(sp)
    fld     f1,  F_FP(1)(sp)
    fld     f2,  F_FP(2)(sp)
    fld     f3,  F_FP(3)(sp)
    fld     f4,  F_FP(4)(sp)
    fld     f5,  F_FP(5)(sp)
    fld     f6,  F_FP(6)(sp)
    fld     f7,  F_FP(7)(sp)
    fld     f10, F_FP(8)(sp)
    fld     f11, F_FP(9)(sp)
    fld     f12, F_FP(10)(sp)
    fld     f13, F_FP(11)(sp)
    fld     f14, F_FP(12)(sp)
    fld     f15, F_FP(13)(sp)
    fld     f16, F_FP(14)(sp)
    fld     f17, F_FP(15)(sp)
    fld     f28, F_FP(16)(sp)
    fld     f29, F_FP(17)(sp)
    fld     f30, F_FP(18)(sp)
    fld     f31, F_FP(19)(sp)
    ld      t0, F_MEPC(sp)              /* a hook may have moved mepc */
    csrw    mepc, t0
    addi    t0, sp, FRAME_SIZE
    csrw    mscratch, t0                /* re-arm the trap stack */
    ld      x1,  F_X(1)(sp)
    ld      x3,  F_X(3)(sp)
    ld      x4,  F_X(4)(sp)
    ld      x5,  F_X(5)(sp)
    ld      x6,  F_X(6)(sp)
    ld      x7,  F_X(7)(sp)
    ld      x8,  F_X(8)(sp)
    ld      x9,  F_X(9)(sp)
    ld      x10, F_X(10)(sp)
    ld      x11, F_X(11)(sp)
    ld      x12, F_X(12)(sp)
    ld      x13, F_X(13)(sp)
    ld      x14, F_X(14)(sp)
    ld      x15, F_X(15)(sp)
    ld      x16, F_X(16)(sp)
    ld      x17, F_X(17)(sp)
    ld      x18, F_X(18)(sp)
    ld      x19, F_X(19)(sp)
    ld      x20, F_X(20)(sp)
    ld      x21, F_X(21)(sp)
    ld      x22, F_X(22)(sp)
    ld      x23, F_X(23)(sp)
    ld      x24, F_X(24)(sp)
    ld      x25, F_X(25)(sp)
    ld      x26, F_X(26)(sp)
    ld      x27, F_X(27)(sp)
    ld      x28, F_X(28)(sp)
    ld      x29, F_X(29)(sp)
    ld      x30, F_X(30)(sp)
    ld      x31, F_X(31)(sp)
    ld      sp,  F_X(2)(sp)
    mret
