//! gdb's RISC-V single step, recognised.
//!
//! gdb steps a RISC-V thread in software: a temporary breakpoint at each
//! pc its next instruction can go to, then a resume of *all* threads. In a
//! replay the stepped hart's next instruction may come only after other
//! harts' whole entries (the recorded order), and every time one of them
//! passes such a pc gdb is told, steps that hart over it and resumes the
//! step again: a hart spinning on that pc made one `stepi` take thousands
//! of round trips (seconds). So a resume of all harts with a breakpoint
//! at a possible next pc of gdb's current thread is taken for its step:
//! the other harts' hits of those pcs are passed — they run only as far
//! as the recorded order requires, as for any step — and their hits of
//! any other breakpoint still stop them.

use samsara_cpu::Hart;
use samsara_isa::{Format, Op, decode};

/// gdb looks this far past a `lr` for the end of an atomic sequence
/// (`riscv_next_pc_atomic_sequence`: 16 instructions), where it puts the
/// step's breakpoint instead.
const ATOMIC_SEQUENCE_BYTES: u64 = 16 * 4;

/// Every pc `hart`'s next instruction, `word` (as read at its pc), can
/// lead to as gdb computes it.
pub fn next_pcs(hart: &Hart, word: u32) -> Vec<u64> {
    let pc = hart.pc().0;
    let inst = decode(word);
    let after = pc.wrapping_add(u64::from(inst.len));
    let offset = |imm: i32| pc.wrapping_add(imm as i64 as u64);
    let mut pcs = vec![after];
    match inst.op {
        Op::Jal => pcs.push(offset(inst.imm)),
        Op::Jalr => pcs.push(
            hart.xreg(usize::from(inst.rs1))
                .wrapping_add(inst.imm as i64 as u64)
                & !1,
        ),
        op if op.format() == Format::Branch => pcs.push(offset(inst.imm)),
        Op::LrW | Op::LrD => pcs.extend((1..=ATOMIC_SEQUENCE_BYTES / 2).map(|k| pc + 2 * k)),
        _ => {}
    }
    pcs
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsara_types::{GuestVirtAddr, HartId};

    fn hart_at(pc: u64) -> Hart {
        Hart::new(HartId(0), GuestVirtAddr(pc))
    }

    #[test]
    fn a_plain_instruction_goes_to_the_next_one() {
        // addi a0, a0, 1 and c.addi a0, 1
        assert_eq!(next_pcs(&hart_at(0x1000), 0x0015_0513), vec![0x1004]);
        assert_eq!(next_pcs(&hart_at(0x1000), 0x0505), vec![0x1002]);
    }

    #[test]
    fn branches_and_jumps_also_go_to_their_targets() {
        // beq a0, a1, -8; jal x0, 16; c.j -4
        assert_eq!(next_pcs(&hart_at(0x1000), 0xfeb5_0ce3), vec![0x1004, 0xff8]);
        assert_eq!(
            next_pcs(&hart_at(0x1000), 0x0100_006f),
            vec![0x1004, 0x1010]
        );
        assert_eq!(next_pcs(&hart_at(0x1000), 0xbff5), vec![0x1002, 0xffc]);
    }

    #[test]
    fn an_indirect_jump_goes_where_its_register_says() {
        let mut hart = hart_at(0x1000);
        hart.set_xreg(1, 0x2001);
        // jalr x0, 4(ra): the target's low bit is cleared
        assert_eq!(next_pcs(&hart, 0x0040_8067), vec![0x1004, 0x2004]);
    }
}
