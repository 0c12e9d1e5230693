//! Property tests on the hart: a compressed instruction executes exactly
//! like its 32-bit expansion, and random instruction streams run
//! deterministically (and never panic) in every privilege mode.

mod common;

use common::{RAM_BASE, TestBus, pmp_allow_all};
use proptest::prelude::*;
use samsara_cpu::{Hart, Privilege};
use samsara_isa::{Op, decode, expand};
use samsara_types::{GuestVirtAddr, HartId};

const RAM: u64 = 64 << 10;
/// Data area the random pointers aim into.
const DATA: u64 = RAM_BASE + 0x4000;
/// Trap vector (a `j .`).
const TRAP: u64 = RAM_BASE + 0x100;

/// A hart at `RAM_BASE` running `code`, in `privilege`, with registers
/// from `regs` (odd entries turned into pointers into the data area).
fn machine(code: &[u8], regs: &[u64; 64], privilege: Privilege) -> (Hart, TestBus) {
    let mut bus = TestBus::new(RAM);
    bus.write_bytes(RAM_BASE, code);
    bus.write_u32(TRAP, 0x0000_006f);
    // A recognisable pattern in the data area.
    for k in 0..0x1000u64 {
        bus.write_u64(DATA + 8 * k, k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(RAM_BASE));
    let mut s = hart.snapshot();
    for r in 1..32 {
        let v = regs[r];
        s.x[r] = if r % 2 == 1 { DATA + (v & 0x1fff) } else { v };
        s.f[r] = regs[32 + r];
    }
    s.privilege = privilege;
    s.csr.mtvec = TRAP;
    s.csr.mstatus |= 1 << 13; // FS = Initial
    pmp_allow_all(&mut s);
    hart.restore(&s);
    (hart, bus)
}

fn is_control_flow(op: Op) -> bool {
    matches!(
        op,
        Op::Jal | Op::Jalr | Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn compressed_executes_like_its_expansion(half in any::<u16>(), regs in any::<[u64; 64]>()) {
        let Some(full) = expand(half) else { return Ok(()) };
        if is_control_flow(decode(full).op) {
            return Ok(());
        }
        let (mut short, mut bus_s) = machine(&half.to_le_bytes(), &regs, Privilege::Machine);
        let (mut long, mut bus_l) = machine(&full.to_le_bytes(), &regs, Privilege::Machine);
        short.run(&mut bus_s, 1);
        long.run(&mut bus_l, 1);
        let (mut a, b) = (short.snapshot(), long.snapshot());
        if a.pc == TRAP {
            prop_assert_eq!(b.pc, TRAP);
        } else {
            prop_assert_eq!((a.pc, b.pc), (RAM_BASE + 2, RAM_BASE + 4));
            a.pc = b.pc;
        }
        prop_assert_eq!(a, b, "{:#06x} vs {:#010x}", half, full);
        prop_assert_eq!(bus_s.read_bytes(DATA, 0x8000), bus_l.read_bytes(DATA, 0x8000));
    }

    #[test]
    fn random_code_runs_deterministically(
        words in proptest::collection::vec(any::<u32>(), 64),
        opcodes in proptest::collection::vec(0usize..22, 64),
        regs in any::<[u64; 64]>(),
        p in 0usize..3,
    ) {
        // Mostly valid major opcodes (index 21 keeps the random word).
        const OPC: [u32; 21] = [
            0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b, 0x43,
            0x47, 0x4b, 0x4f, 0x53, 0x63, 0x67, 0x6f, 0x73,
        ];
        let code: Vec<u8> = words
            .iter()
            .zip(&opcodes)
            .flat_map(|(&w, &k)| {
                let w = if k < OPC.len() { (w & !0x7f) | OPC[k] } else { w };
                w.to_le_bytes()
            })
            .collect();
        let privilege = [Privilege::User, Privilege::Supervisor, Privilege::Machine][p];
        let run = || {
            let (mut hart, mut bus) = machine(&code, &regs, privilege);
            while hart.steps().0 < 400 {
                let left = 400 - hart.steps().0;
                hart.run(&mut bus, left);
                assert_eq!(hart.xreg(0), 0);
            }
            (hart.digest(), hart.snapshot(), bus.read_bytes(RAM_BASE, RAM as usize))
        };
        let (d1, s1, m1) = run();
        let (d2, s2, m2) = run();
        prop_assert_eq!(d1, d2);
        prop_assert_eq!(s1.steps, 400);
        prop_assert_eq!(s1, s2);
        prop_assert!(m1 == m2, "memory differs");
    }
}
