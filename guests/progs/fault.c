/*
 * fault — guest faults are reported and end the run, never hang it.
 *
 * Step 1 (recoverable): with an exception hook installed, load from an
 *   unmapped address (0x0: nothing is mapped below the boot ROM on virt);
 *   the hook sees a load access fault, skips the instruction and the
 *   program checks that it did.
 * Step 2 (fatal): remove the hook and
 *   - fault.elf:      execute an illegal instruction (csrrw zero, cycle,
 *                     zero: a write to a read-only CSR)  -> exit 102
 *   - fault_load.elf: load from the unmapped address again -> exit 105
 *   The runtime prints "*** guest trap on hart 0: exception N (...)" and
 *   powers off with exit code 100 + mcause.
 * Only hart 0 runs; the others park.  A run that exits 0 or with any other
 * code is a failure of the emulator (or of the runtime).
 * Note: for the illegal instruction, mtval may legally be 0 or the
 * instruction bits (QEMU reports the bits), so the report line may differ
 * in tval between machines.
 */
#include "runtime.h"

#define UNMAPPED_ADDR 0x0ul

/* The load is written in asm: a C dereference of address 0 is undefined
 * behaviour, and GCC replaces what follows it with a trap (ebreak). */
static inline uint64_t load_from(uintptr_t addr)
{
    uint64_t v;
    __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(addr) : "memory");
    return v;
}

static volatile uint32_t hook_calls;
static volatile uint64_t hook_tval, hook_cause;

static int skip_fault(unsigned hart, trap_frame_t *f)
{
    (void)hart;
    hook_calls = hook_calls + 1;
    hook_cause = f->mcause;
    hook_tval = f->mtval;
    /* Skip the faulting instruction: 2 bytes if compressed, else 4. */
    uint16_t first = *(const uint16_t *)f->mepc;
    f->mepc += (first & 3u) == 3u ? 4 : 2;
    return 1;
}

int guest_main(unsigned hart, unsigned nharts)
{
    (void)nharts;
    if (hart != 0)
        return 0;

    rt_set_exception_hook(skip_fault);
    (void)load_from(UNMAPPED_ADDR);
    rt_set_exception_hook(0);
    printf("fault: recoverable load fault: calls=%u cause=%llu tval=0x%llx\n",
           (unsigned)hook_calls, (unsigned long long)hook_cause,
           (unsigned long long)hook_tval);
    if (hook_calls != 1 || hook_cause != 5 || hook_tval != UNMAPPED_ADDR) {
        printf("fault: FAIL (exception hook did not see the load access fault)\n");
        return 1;
    }

#ifdef FAULT_KIND_LOAD
    printf("fault: now loading from 0x%lx without a hook, expect exit 105\n", UNMAPPED_ADDR);
    (void)load_from(UNMAPPED_ADDR);
#else
    printf("fault: now executing an illegal instruction, expect exit 102\n");
    __asm__ volatile(".4byte 0xc0001073");      /* csrrw zero, cycle, zero */
#endif
    printf("fault: FAIL (execution continued past the fault)\n");
    return 1;
}
