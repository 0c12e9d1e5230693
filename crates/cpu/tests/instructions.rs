//! Instruction semantics, class by class, on small programs assembled in
//! Rust: integer ALU and M corner cases, loads/stores (misaligned, MMIO,
//! deferred), compressed forms, LR/SC and every AMO, F/D arithmetic with
//! rounding modes, fflags, NaN-boxing and FS tracking.

mod common;

use common::asm::*;
use common::{MMIO_BASE, RAM_BASE, Vm};
use samsara_cpu::StopReason;

const SMALL_RAM: u64 = 64 << 10;
/// A scratch data area inside `SMALL_RAM`.
const DATA: u64 = RAM_BASE + 0x8000;

/// Assembles `body`, then `halt`, and a trap handler `trap` (also a halt);
/// runs with FS enabled until one of them. Returns the Vm and whether it trapped.
fn exec(body: impl FnOnce(&mut Asm)) -> (Vm, bool) {
    let mut a = Asm::new(RAM_BASE);
    body(&mut a);
    a.halt("halt");
    a.align(4);
    a.halt("trap");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    let trap = a.addr("trap");
    vm.edit(|s| {
        s.csr.mtvec = trap;
        s.csr.mstatus |= 1 << 13; // FS = Initial
    });
    let k = vm.run_to_any(&[a.addr("halt"), trap], 100_000);
    (vm, k == 1)
}

/// [`exec`], expecting no trap.
fn run(body: impl FnOnce(&mut Asm)) -> Vm {
    let (vm, trapped) = exec(body);
    assert!(
        !trapped,
        "unexpected trap: mcause={:#x} mepc={:#x} mtval={:#x}",
        vm.csr().mcause,
        vm.csr().mepc,
        vm.csr().mtval
    );
    vm
}

/// [`exec`], expecting a trap.
fn trap(body: impl FnOnce(&mut Asm)) -> Vm {
    let (vm, trapped) = exec(body);
    assert!(trapped, "expected a trap");
    vm
}

/// Executes the single instruction `w` with `a1 = a`, `a2 = b`; returns `a0`.
fn op(w: u32, a: u64, b: u64) -> u64 {
    let vm = run(|asm| {
        asm.li(A1, a).li(A2, b).w(w);
    });
    vm.x(A0)
}

#[test]
fn li_builds_any_constant() {
    let values = [
        0u64,
        1,
        0x7ff,
        0x800,
        0xfff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0xffff_ffff_8000_0000,
        0x1234_5678_9abc_def0,
        0x8000_0000_0000_0000,
        0x7fff_ffff_ffff_ffff,
        u64::MAX,
        0xdead_beef_0000_0800,
        0x0000_0001_0000_0000,
    ];
    for v in values {
        let vm = run(|a| {
            a.li(A0, v);
        });
        assert_eq!(vm.x(A0), v, "li {v:#x}");
    }
}

#[test]
fn integer_register_register() {
    const MIN: u64 = 0x8000_0000_0000_0000;
    const MAX: u64 = 0x7fff_ffff_ffff_ffff;
    let cases: &[(u32, u64, u64, u64)] = &[
        (add(A0, A1, A2), MAX, 1, MIN),
        (add(A0, A1, A2), u64::MAX, 2, 1),
        (sub(A0, A1, A2), 0, 1, u64::MAX),
        (sub(A0, A1, A2), MIN, 1, MAX),
        (sll(A0, A1, A2), 1, 63, MIN),
        (sll(A0, A1, A2), 1, 65, 2), // only the low 6 bits count
        (srl(A0, A1, A2), MIN, 63, 1),
        (srl(A0, A1, A2), MIN, 64, MIN),
        (sra(A0, A1, A2), MIN, 63, u64::MAX),
        (sra(A0, A1, A2), MIN, 4, 0xf800_0000_0000_0000),
        (slt(A0, A1, A2), u64::MAX, 0, 1),
        (slt(A0, A1, A2), 0, u64::MAX, 0),
        (slt(A0, A1, A2), 5, 5, 0),
        (sltu(A0, A1, A2), u64::MAX, 0, 0),
        (sltu(A0, A1, A2), 0, u64::MAX, 1),
        (xor(A0, A1, A2), 0xff00, 0x0ff0, 0xf0f0),
        (or(A0, A1, A2), 0xff00, 0x0ff0, 0xfff0),
        (and(A0, A1, A2), 0xff00, 0x0ff0, 0x0f00),
        (addw(A0, A1, A2), 0x7fff_ffff, 1, 0xffff_ffff_8000_0000),
        (addw(A0, A1, A2), 0x1_0000_0005, 0x2_0000_0003, 8),
        (subw(A0, A1, A2), 0, 1, u64::MAX),
        (subw(A0, A1, A2), 0x8000_0000, 1, 0x7fff_ffff),
        (sllw(A0, A1, A2), 1, 31, 0xffff_ffff_8000_0000),
        (sllw(A0, A1, A2), 1, 33, 2), // low 5 bits
        (
            srlw(A0, A1, A2),
            0xffff_ffff_8000_0000,
            0,
            0xffff_ffff_8000_0000,
        ),
        (srlw(A0, A1, A2), 0xffff_ffff_8000_0000, 1, 0x4000_0000),
        (sraw(A0, A1, A2), 0x8000_0000, 31, u64::MAX),
        (sraw(A0, A1, A2), 0x1_7fff_ffff, 4, 0x07ff_ffff),
    ];
    for &(w, a, b, want) in cases {
        assert_eq!(
            op(w, a, b),
            want,
            "{} with {a:#x}, {b:#x}",
            samsara_isa::decode(w)
        );
    }
}

#[test]
fn integer_immediates() {
    let cases: &[(u32, u64, u64)] = &[
        (addi(A0, A1, -2048), 0, (-2048i64) as u64),
        (addi(A0, A1, 2047), 1, 2048),
        (slti(A0, A1, -1), (-2i64) as u64, 1),
        (slti(A0, A1, -1), 0, 0),
        (sltiu(A0, A1, -1), 5, 1), // the immediate is sign-extended, then unsigned
        (sltiu(A0, A1, -1), u64::MAX, 0),
        (sltiu(A0, A1, 1), 0, 1), // seqz
        (xori(A0, A1, -1), 0x1234, !0x1234),
        (ori(A0, A1, -2048), 1, 0xffff_ffff_ffff_f801),
        (andi(A0, A1, -16), 0xffff, 0xfff0),
        (slli(A0, A1, 63), 3, 0x8000_0000_0000_0000),
        (srli(A0, A1, 63), u64::MAX, 1),
        (srai(A0, A1, 63), 0x8000_0000_0000_0000, u64::MAX),
        (
            srai(A0, A1, 0),
            0x8000_0000_0000_0000,
            0x8000_0000_0000_0000,
        ),
        (addiw(A0, A1, 1), 0x7fff_ffff, 0xffff_ffff_8000_0000),
        (addiw(A0, A1, 0), 0xffff_ffff_0000_0001, 1), // sext.w
        (slliw(A0, A1, 31), 1, 0xffff_ffff_8000_0000),
        (srliw(A0, A1, 31), 0xffff_ffff_8000_0000, 1),
        (
            srliw(A0, A1, 0),
            0x0000_0000_8000_0000,
            0xffff_ffff_8000_0000,
        ),
        (sraiw(A0, A1, 31), 0x8000_0000, u64::MAX),
        (sraiw(A0, A1, 1), 0xffff_ffff_7fff_fffe, 0x3fff_ffff),
        (lui(A0, 0x80000), 0, 0xffff_ffff_8000_0000),
        (lui(A0, 0x7ffff), 0, 0x7fff_f000),
    ];
    for &(w, a, want) in cases {
        assert_eq!(op(w, a, 0), want, "{} with {a:#x}", samsara_isa::decode(w));
    }
}

#[test]
fn x0_is_hardwired_and_auipc_is_pc_relative() {
    let vm = run(|a| {
        a.w(addi(ZERO, ZERO, 5))
            .w(add(A0, ZERO, ZERO))
            .w(lui(ZERO, 1))
            .w(auipc(A1, 0))
            .w(auipc(A2, 0xfffff)) // -4096
            .w(jal(ZERO, 4)) // j +4 with rd = x0
            .w(add(A3, ZERO, ZERO));
    });
    assert_eq!(vm.x(ZERO), 0);
    assert_eq!(vm.x(A0), 0);
    assert_eq!(vm.x(A1), RAM_BASE + 12);
    assert_eq!(vm.x(A2), RAM_BASE + 16 - 4096);
}

#[test]
fn multiply_divide_corner_cases() {
    const MIN: u64 = 0x8000_0000_0000_0000;
    const MAX: u64 = 0x7fff_ffff_ffff_ffff;
    let m1 = u64::MAX; // -1
    let cases: &[(u32, u64, u64, u64)] = &[
        (mul(A0, A1, A2), MAX, 2, (-2i64) as u64),
        (mul(A0, A1, A2), MIN, m1, MIN),
        (mulh(A0, A1, A2), m1, m1, 0),
        (mulh(A0, A1, A2), MIN, MIN, 0x4000_0000_0000_0000),
        (mulh(A0, A1, A2), MIN, 2, m1),
        (mulhsu(A0, A1, A2), m1, u64::MAX, m1),
        (mulhsu(A0, A1, A2), 2, u64::MAX, 1),
        (mulhu(A0, A1, A2), u64::MAX, u64::MAX, u64::MAX - 1),
        (mulhu(A0, A1, A2), 1 << 32, 1 << 32, 1),
        (div(A0, A1, A2), (-7i64) as u64, 2, (-3i64) as u64), // truncates
        (div(A0, A1, A2), 7, 0, m1),
        (div(A0, A1, A2), MIN, m1, MIN),
        (divu(A0, A1, A2), 7, 0, u64::MAX),
        (divu(A0, A1, A2), u64::MAX, 2, MAX),
        (rem(A0, A1, A2), (-7i64) as u64, 2, m1),
        (rem(A0, A1, A2), 7, 0, 7),
        (rem(A0, A1, A2), MIN, m1, 0),
        (remu(A0, A1, A2), 7, 0, 7),
        (remu(A0, A1, A2), u64::MAX, 10, 5),
        (mulw(A0, A1, A2), 0x7fff_ffff, 2, (-2i64) as u64),
        (mulw(A0, A1, A2), 0x1_0000_0003, 0x5_0000_0002, 6),
        (divw(A0, A1, A2), 0x8000_0000, m1, 0xffff_ffff_8000_0000),
        (divw(A0, A1, A2), 0x1_0000_0006, 3, 2), // upper bits ignored
        (divw(A0, A1, A2), 5, 0, m1),
        (divuw(A0, A1, A2), 0x8000_0000, 0, m1),
        (divuw(A0, A1, A2), 0xffff_ffff, 1, m1), // result sign-extended
        (divuw(A0, A1, A2), 0xffff_ffff, 2, 0x7fff_ffff),
        (remw(A0, A1, A2), (-7i64) as u64, 2, m1),
        (remw(A0, A1, A2), 0x8000_0000, m1, 0),
        (remw(A0, A1, A2), 0x1_8000_0001, 0, 0xffff_ffff_8000_0001),
        (remuw(A0, A1, A2), 0x8000_0001, 0, 0xffff_ffff_8000_0001),
        (remuw(A0, A1, A2), 0xffff_ffff, 0x10, 0xf),
    ];
    for &(w, a, b, want) in cases {
        assert_eq!(
            op(w, a, b),
            want,
            "{} with {a:#x}, {b:#x}",
            samsara_isa::decode(w)
        );
    }
}

#[test]
fn branches_and_jumps() {
    let mut a = Asm::new(RAM_BASE);
    // a0 counts the branches that went the right way.
    a.li(A1, u64::MAX).li(A2, 1).li(A0, 0);
    let mut n = 0;
    let mut check = |a: &mut Asm, f3: u32, x: u32, y: u32, taken: bool| {
        let (t, skip) = (format!("t{n}"), format!("n{n}"));
        a.branch(f3, x, y, &t);
        if !taken {
            a.w(addi(A0, A0, 1));
        }
        a.j(&skip);
        a.label(&t);
        if taken {
            a.w(addi(A0, A0, 1));
        }
        a.label(&skip);
        n += 1;
    };
    check(&mut a, 0, A1, A1, true); // beq
    check(&mut a, 0, A1, A2, false);
    check(&mut a, 1, A1, A2, true); // bne
    check(&mut a, 1, A2, A2, false);
    check(&mut a, 4, A1, A2, true); // blt: -1 < 1
    check(&mut a, 4, A2, A1, false);
    check(&mut a, 5, A2, A1, true); // bge
    check(&mut a, 5, A1, A1, true);
    check(&mut a, 5, A1, A2, false);
    check(&mut a, 6, A2, A1, true); // bltu: 1 < MAX
    check(&mut a, 6, A1, A2, false);
    check(&mut a, 7, A1, A2, true); // bgeu
    check(&mut a, 7, A2, A1, false);
    // jal/jalr link pc + 4, and jalr clears bit 0 of the target.
    a.jal(RA, "func");
    a.label("ret");
    a.la(T0, "func2");
    a.w(addi(T0, T0, 1)); // odd target
    a.w(jalr(T1, T0, 0));
    a.label("ret2");
    a.j("done");
    a.label("func");
    a.w(jalr(ZERO, RA, 0));
    a.label("func2");
    a.w(jalr(T2, T1, 0)); // return via t1, link into t2
    a.label("done");
    // jalr with rd == rs1 uses the old rs1.
    a.la(S0, "jr");
    a.label("jr");
    a.w(jalr(S0, S0, 8));
    a.w(addi(A3, ZERO, 1)); // skipped
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.run_to(a.addr("halt"), 1000);
    assert_eq!(vm.x(A0), 13);
    assert_eq!(vm.x(RA), a.addr("ret"));
    assert_eq!(vm.x(T1), a.addr("ret2"));
    assert_eq!(vm.x(T2), a.addr("func2") + 4);
    assert_eq!(vm.x(S0), a.addr("jr") + 4);
    assert_eq!(vm.x(A3), 0);
}

#[test]
fn loads_sign_and_zero_extend() {
    let vm = run(|a| {
        a.li(S0, DATA)
            .li(T0, 0x8899_aabb_ccdd_eeff)
            .w(sd(T0, S0, 0));
        a.w(lb(A0, S0, 0))
            .w(lbu(A1, S0, 0))
            .w(lh(A2, S0, 0))
            .w(lhu(A3, S0, 0))
            .w(lw(A4, S0, 0))
            .w(lwu(A5, S0, 0))
            .w(ld(A6, S0, 0))
            .w(lb(A7, S0, 7))
            .w(lh(S2, S0, 6))
            .w(lw(S3, S0, 4))
            .w(lbu(S4, S0, 1))
            .w(lw(S5, S0, -0)); // same as a4
    });
    assert_eq!(vm.x(A0), 0xffff_ffff_ffff_ffff);
    assert_eq!(vm.x(A1), 0xff);
    assert_eq!(vm.x(A2), 0xffff_ffff_ffff_eeff);
    assert_eq!(vm.x(A3), 0xeeff);
    assert_eq!(vm.x(A4), 0xffff_ffff_ccdd_eeff);
    assert_eq!(vm.x(A5), 0xccdd_eeff);
    assert_eq!(vm.x(A6), 0x8899_aabb_ccdd_eeff);
    assert_eq!(vm.x(A7), 0xffff_ffff_ffff_ff88);
    assert_eq!(vm.x(S2), 0xffff_ffff_ffff_8899);
    assert_eq!(vm.x(S3), 0xffff_ffff_8899_aabb);
    assert_eq!(vm.x(S4), 0xee);
    assert_eq!(vm.x(S5), vm.x(A4));
}

#[test]
fn stores_write_exactly_their_width() {
    let vm = run(|a| {
        a.li(S0, DATA).li(T0, -1i64 as u64);
        a.w(sd(T0, S0, 0)).w(sd(T0, S0, 8));
        a.li(T1, 0x1122_3344_5566_7788);
        a.w(sb(T1, S0, 0))
            .w(sh(T1, S0, 2))
            .w(sw(T1, S0, 4))
            .w(sd(T1, S0, 8));
    });
    assert_eq!(vm.bus.read_u64(DATA), 0x5566_7788_7788_ff88);
    assert_eq!(vm.bus.read_u64(DATA + 8), 0x1122_3344_5566_7788);
}

#[test]
fn misaligned_loads_and_stores_within_and_across_pages() {
    let page_end = DATA + 0x1000; // a page boundary
    let vm = run(|a| {
        a.li(S0, DATA).li(S1, page_end);
        a.li(T0, 0x0102_0304_0506_0708);
        a.w(sd(T0, S0, 1)) // misaligned, same page
            .w(ld(A0, S0, 1))
            .w(lw(A1, S0, 3))
            .w(lhu(A2, S0, 5))
            .w(sd(T0, S1, -3)) // straddles the page boundary
            .w(ld(A3, S1, -3))
            .w(lh(A4, S1, -1))
            .w(lwu(A5, S1, -2));
    });
    assert_eq!(vm.x(A0), 0x0102_0304_0506_0708);
    assert_eq!(vm.x(A1), 0x0304_0506);
    assert_eq!(vm.x(A2), 0x0304);
    assert_eq!(
        vm.bus.read_bytes(DATA + 1, 8),
        0x0102_0304_0506_0708u64.to_le_bytes()
    );
    assert_eq!(vm.x(A3), 0x0102_0304_0506_0708);
    assert_eq!(vm.x(A4), 0x0506);
    assert_eq!(vm.x(A5), 0x0405_0607);
    assert_eq!(
        vm.bus.read_bytes(page_end - 3, 8),
        0x0102_0304_0506_0708u64.to_le_bytes()
    );
}

#[test]
fn misaligned_store_straddling_the_end_of_ram_faults_and_writes_nothing() {
    let end = RAM_BASE + SMALL_RAM;
    let vm = trap(|a| {
        a.li(S0, end).li(T0, u64::MAX).w(sw(T0, S0, -2));
    });
    let c = vm.csr();
    assert_eq!(c.mcause, 7, "store access fault");
    assert_eq!(c.mtval, end, "the faulting part's address");
    assert_eq!(vm.bus.read_bytes(end - 2, 2), [0, 0]);
}

#[test]
fn mmio_loads_are_truncated_to_their_width_and_stores_logged() {
    let mut a = Asm::new(RAM_BASE);
    a.li(S0, MMIO_BASE);
    a.w(lbu(A0, S0, 1))
        .w(lb(A1, S0, 0))
        .w(lhu(A2, S0, 2))
        .w(lh(A3, S0, 2))
        .w(lwu(A4, S0, 4))
        .w(lw(A5, S0, 4))
        .w(ld(A6, S0, 8));
    a.li(T0, 0xaabb_ccdd_eeff_0011);
    a.w(sb(T0, S0, 3))
        .w(sh(T0, S0, 6))
        .w(sw(T0, S0, 12))
        .w(sd(T0, S0, 16));
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.bus.mmio_value = 0x1234_5678_9abc_def0;
    vm.run_to(a.addr("halt"), 1000);
    assert_eq!(vm.x(A0), 0xf0);
    assert_eq!(vm.x(A1), 0xffff_ffff_ffff_fff0);
    assert_eq!(vm.x(A2), 0xdef0);
    assert_eq!(vm.x(A3), 0xffff_ffff_ffff_def0);
    assert_eq!(vm.x(A4), 0x9abc_def0);
    assert_eq!(vm.x(A5), 0xffff_ffff_9abc_def0);
    assert_eq!(vm.x(A6), 0x1234_5678_9abc_def0);
    assert_eq!(
        vm.bus.mmio_reads,
        [
            (MMIO_BASE + 1, 1),
            (MMIO_BASE, 1),
            (MMIO_BASE + 2, 2),
            (MMIO_BASE + 2, 2),
            (MMIO_BASE + 4, 4),
            (MMIO_BASE + 4, 4),
            (MMIO_BASE + 8, 8)
        ]
    );
    assert_eq!(
        vm.bus.mmio_writes,
        [
            (MMIO_BASE + 3, 1, 0x11),
            (MMIO_BASE + 6, 2, 0x0011),
            (MMIO_BASE + 12, 4, 0xeeff_0011),
            (MMIO_BASE + 16, 8, 0xaabb_ccdd_eeff_0011)
        ]
    );
}

#[test]
fn misaligned_and_atomic_mmio_accesses_fault() {
    let vm = trap(|a| {
        a.li(S0, MMIO_BASE + 1).w(lw(A0, S0, 0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (5, MMIO_BASE + 1));
    let vm = trap(|a| {
        a.li(S0, MMIO_BASE).w(amo(amo_op::ADD, false, A0, S0, S0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (7, MMIO_BASE));
    let vm = trap(|a| {
        a.li(S0, MMIO_BASE).w(lr_d(A0, S0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (5, MMIO_BASE));
}

#[test]
fn deferred_device_access_has_no_effect_until_allowed() {
    let mut a = Asm::new(RAM_BASE);
    a.li(S0, MMIO_BASE).li(A0, 7);
    a.label("load");
    a.w(ld(A0, S0, 0)).w(sd(A0, S0, 8));
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.run_to(a.addr("load"), 100);
    vm.bus.defer = true;
    vm.bus.mmio_value = 42;
    let steps = vm.hart.steps();
    assert_eq!(vm.hart.run(&mut vm.bus, 10), StopReason::DeviceAccess);
    assert_eq!(vm.hart.pc().raw(), a.addr("load"));
    assert_eq!(vm.hart.steps(), steps, "a deferred access is not a step");
    assert_eq!(vm.x(A0), 7);
    vm.bus.defer = false;
    vm.run_to(a.addr("halt"), 10);
    assert_eq!(vm.x(A0), 42);
    assert_eq!(vm.bus.mmio_writes, [(MMIO_BASE + 8, 8, 42)]);
}

#[test]
fn compressed_instructions_execute_like_their_expansions() {
    let vm = run(|a| {
        a.li(SP, DATA + 0x100).li(A1, DATA);
        a.h(0x4505) // c.li a0,1
            .h(0x0505) // c.addi a0,1       -> 2
            .h(0x0506) // c.slli a0,1       -> 4
            .h(0x357d) // c.addiw a0,-1     -> 3
            .h(0x852a) // c.mv a0,a0 (no-op move)
            .h(0x862a) // c.mv a2,a0        -> a2 = 3
            .h(0x9532) // c.add a0,a2       -> 6
            .h(0x8d11) // c.sub a0,a2       -> 3
            .h(0xe188) // c.sd a0,0(a1)
            .h(0x6194) // c.ld a3,0(a1)     -> 3
            .h(0xe42a) // c.sdsp a0,8(sp)
            .h(0x6722) // c.ldsp a4,8(sp)   -> 3
            .h(0x1141) // c.addi16sp sp,-16
            .h(0x0030) // c.addi4spn a2,sp,8 -> sp + 8
            .h(0x6785) // c.lui a5,1         -> 0x1000
            .h(0x87a9) // c.srai a5,10       -> 4
            .h(0x8b85) // c.andi a5,1        -> 0
            .h(0x4801); // c.li a6,0
        // A 32-bit instruction at a 2-byte aligned address.
        a.w(addi(A7, ZERO, 77));
        // c.jal is RV32-only; c.jalr links pc + 2.
        a.la(T0, "target");
        a.h(0x9282); // c.jalr t0
        a.label("after_jalr");
        a.h(0x0001); // c.nop
        a.j("end");
        a.align(4);
        a.label("target");
        a.h(0x8082); // c.jr ra
        a.label("end");
        a.h(0x0001);
    });
    assert_eq!(vm.x(A0), 3);
    assert_eq!(vm.x(A2), DATA + 0x100 - 16 + 8);
    assert_eq!(vm.x(A3), 3);
    assert_eq!(vm.x(A4), 3);
    assert_eq!(vm.x(SP), DATA + 0x100 - 16);
    assert_eq!(vm.x(A5), 0);
    assert_eq!(vm.x(A7), 77);
    assert_eq!(vm.bus.read_u64(DATA), 3);
    assert_eq!(vm.bus.read_u64(DATA + 0x108), 3);
}

#[test]
fn c_jalr_links_the_next_parcel() {
    let mut a = Asm::new(RAM_BASE);
    a.la(T0, "target");
    a.label("call");
    a.h(0x9282); // c.jalr t0
    a.h(0x0001);
    a.halt("halt");
    a.label("target");
    a.w(jalr(ZERO, RA, 0));
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.run_to(a.addr("halt"), 100);
    assert_eq!(vm.x(RA), a.addr("call") + 2);
}

#[test]
fn instruction_straddling_a_page_boundary() {
    // A 32-bit instruction whose halves sit on two pages.
    let mut a = Asm::new(RAM_BASE);
    a.li(A0, 0);
    while a.pc() % 4096 != 4094 {
        a.h(0x0001);
    }
    a.w(addi(A0, A0, 123));
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.run_to(a.addr("halt"), 10_000);
    assert_eq!(vm.x(A0), 123);
}

#[test]
fn illegal_compressed_and_ebreak() {
    let vm = trap(|a| {
        a.h(0x0000); // all-zero parcel: illegal
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (2, 0));
    assert_eq!(vm.csr().mepc, RAM_BASE);
    let vm = trap(|a| {
        a.w(NOP).h(0x9002); // c.ebreak
    });
    assert_eq!(vm.csr().mcause, 3);
    assert_eq!(vm.csr().mepc, RAM_BASE + 4);
    assert_eq!(vm.csr().mtval, RAM_BASE + 4);
    let vm = trap(|a| {
        a.h(0x6101); // c.addi16sp sp,0: reserved
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (2, 0x6101));
}

#[test]
fn lr_sc_success_and_failure() {
    let vm = run(|a| {
        a.li(S0, DATA)
            .li(T0, 0xffff_ffff_8000_0001)
            .w(sd(T0, S0, 0));
        a.li(T1, 5);
        // Success: lr.w sign-extends, sc.w writes 32 bits and returns 0.
        a.w(lr_w(A0, S0)).w(sc_w(A1, S0, T1));
        // A second sc without a reservation fails and writes nothing.
        a.li(T2, 9).w(sc_w(A2, S0, T2));
        // A store by this hart to the reserved address breaks the reservation.
        a.w(lr_d(A3, S0)).w(sw(T1, S0, 0)).w(sc_d(A4, S0, T2));
        // A store elsewhere in the same page does not.
        a.w(lr_d(A5, S0)).w(sd(T2, S0, 64)).w(sc_d(A6, S0, T2));
        // sc to another address than the reserved one fails.
        a.w(lr_d(A7, S0)).w(sc_d(S2, S0, ZERO));
        a.w(addi(S1, S0, 8)).w(lr_d(S3, S0)).w(sc_d(S4, S1, T2));
    });
    assert_eq!(vm.x(A0), 0xffff_ffff_8000_0001);
    assert_eq!(vm.x(A1), 0);
    assert_eq!(vm.x(A2), 1);
    assert_eq!(vm.x(A3), 0xffff_ffff_0000_0005);
    assert_eq!(
        vm.x(A4),
        1,
        "own store to the reserved word ends the reservation"
    );
    assert_eq!(vm.x(A5), 0xffff_ffff_0000_0005);
    assert_eq!(vm.x(A6), 0, "a store elsewhere keeps the reservation");
    assert_eq!(vm.x(S2), 0);
    assert_eq!(vm.x(S4), 1);
    assert_eq!(vm.bus.read_u64(DATA), 0, "sc.d of x0 succeeded");
    assert_eq!(vm.bus.read_u64(DATA + 8), 0, "failed sc wrote nothing");
    assert_eq!(vm.bus.read_u64(DATA + 64), 9);
}

#[test]
fn a_trap_clears_the_reservation() {
    let mut a = Asm::new(RAM_BASE);
    a.la(T0, "handler").w(csrw(csr::MTVEC, T0));
    a.li(S0, DATA).li(T1, 3);
    a.w(lr_d(A0, S0)).w(ECALL).w(sc_d(A1, S0, T1));
    a.halt("halt");
    a.label("handler");
    a.w(csrr(T0, csr::MEPC))
        .w(addi(T0, T0, 4))
        .w(csrw(csr::MEPC, T0))
        .w(MRET);
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.run_to(a.addr("halt"), 100);
    assert_eq!(vm.x(A1), 1);
    assert_eq!(vm.bus.read_u64(DATA), 0);
}

#[test]
fn lr_sc_amo_misaligned_causes() {
    let vm = trap(|a| {
        a.li(S0, DATA + 4).w(lr_d(A0, S0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (4, DATA + 4));
    let vm = trap(|a| {
        a.li(S0, DATA + 2).w(sc_w(A0, S0, S0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (6, DATA + 2));
    let vm = trap(|a| {
        a.li(S0, DATA + 1).w(amo(amo_op::SWAP, true, A0, S0, S0));
    });
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (6, DATA + 1));
}

/// The value an AMO stores, per the spec.
fn amo_reference(f5: u32, word: bool, mem: u64, src: u64) -> u64 {
    if word {
        let (m, s) = (mem as u32, src as u32);
        u64::from(match f5 {
            amo_op::ADD => m.wrapping_add(s),
            amo_op::SWAP => s,
            amo_op::XOR => m ^ s,
            amo_op::OR => m | s,
            amo_op::AND => m & s,
            amo_op::MIN => (m as i32).min(s as i32) as u32,
            amo_op::MAX => (m as i32).max(s as i32) as u32,
            amo_op::MINU => m.min(s),
            amo_op::MAXU => m.max(s),
            _ => unreachable!(),
        })
    } else {
        match f5 {
            amo_op::ADD => mem.wrapping_add(src),
            amo_op::SWAP => src,
            amo_op::XOR => mem ^ src,
            amo_op::OR => mem | src,
            amo_op::AND => mem & src,
            amo_op::MIN => (mem as i64).min(src as i64) as u64,
            amo_op::MAX => (mem as i64).max(src as i64) as u64,
            amo_op::MINU => mem.min(src),
            amo_op::MAXU => mem.max(src),
            _ => unreachable!(),
        }
    }
}

#[test]
fn every_amo() {
    use amo_op::*;
    let pairs: &[(u64, u64)] = &[
        (0x8000_0000_7fff_fffe, 0x0000_0001_8000_0001),
        (0x0000_0000_0000_0005, 0xffff_ffff_ffff_fffb),
        (0xffff_ffff_ffff_ffff, 0x0000_0000_0000_0001),
    ];
    for f5 in [ADD, SWAP, XOR, OR, AND, MIN, MAX, MINU, MAXU] {
        for word in [true, false] {
            for &(mem, src) in pairs {
                // The word form works on the low word and leaves the high one.
                let vm = run(|a| {
                    a.li(S0, DATA).li(T0, mem).w(sd(T0, S0, 0)).li(A1, src);
                    a.w(amo(f5, word, A0, S0, A1));
                    // rd == rs2: the source is read before rd is written.
                    a.li(S1, DATA + 8).w(sd(T0, S1, 0)).li(A2, src);
                    a.w(amo(f5, word, A2, S1, A2));
                });
                let name = samsara_isa::decode(amo(f5, word, A0, S0, A1)).to_string();
                let (old, new) = if word {
                    let stored = amo_reference(f5, true, mem, src);
                    (
                        mem as u32 as i32 as i64 as u64,
                        (mem & 0xffff_ffff_0000_0000) | stored,
                    )
                } else {
                    (mem, amo_reference(f5, false, mem, src))
                };
                assert_eq!(vm.x(A0), old, "{name} {mem:#x} {src:#x}: rd");
                assert_eq!(vm.bus.read_u64(DATA), new, "{name} {mem:#x} {src:#x}: mem");
                assert_eq!(vm.x(A2), old, "{name} rd == rs2");
                assert_eq!(vm.bus.read_u64(DATA + 8), new, "{name} rd == rs2");
            }
        }
    }
    // A few literal results.
    assert_eq!(amo_reference(MIN, true, 0x8000_0000, 1), 0x8000_0000);
    assert_eq!(amo_reference(MINU, true, 0x8000_0000, 1), 1);
    assert_eq!(amo_reference(MAX, false, u64::MAX, 1), 1);
}

// ---------------------------------------------------------------------------
// F and D
// ---------------------------------------------------------------------------

const NX: u8 = 1;
const UF: u8 = 2;
const OF: u8 = 4;
const DZ: u8 = 8;
const NV: u8 = 16;
const BOX: u64 = 0xffff_ffff_0000_0000;
const QNAN_S: u64 = BOX | 0x7fc0_0000;
const QNAN_D: u64 = 0x7ff8_0000_0000_0000;

fn boxed(v: u32) -> u64 {
    BOX | u64::from(v)
}

/// Runs one FP instruction with f registers / x registers preset and
/// `frm`; returns the Vm (fa0/a0 hold the result, fflags the flags).
fn fexec(w: u32, f: &[(u32, u64)], x: &[(u32, u64)], frm: u8) -> Vm {
    let mut a = Asm::new(RAM_BASE);
    a.w(w);
    a.halt("halt");
    a.halt("trap");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    let trap = a.addr("trap");
    vm.edit(|s| {
        s.csr.mtvec = trap;
        s.csr.mstatus |= 1 << 13;
        s.csr.frm = frm;
        for &(r, v) in f {
            s.f[r as usize] = v;
        }
        for &(r, v) in x {
            s.x[r as usize] = v;
        }
    });
    vm.hart.run(&mut vm.bus, 1);
    vm
}

/// `fa0 = op(fa1, fa2[, fa3])`: (result, fflags).
fn f3op(w: u32, a: u64, b: u64, c: u64) -> (u64, u8) {
    let vm = fexec(w, &[(A1, a), (A2, b), (A3, c)], &[], 0);
    assert_eq!(vm.csr().mcause, 0, "{} trapped", samsara_isa::decode(w));
    (vm.f(A0), vm.csr().fflags)
}

#[test]
fn fp_rounding_modes_static_and_dynamic() {
    let one = boxed(0x3f80_0000);
    let three = boxed(0x4040_0000);
    let m_one = boxed(0xbf80_0000);
    let want_pos = [
        0x3eaa_aaab,
        0x3eaa_aaaa,
        0x3eaa_aaaa,
        0x3eaa_aaab,
        0x3eaa_aaab,
    ];
    let want_neg = [
        0xbeaa_aaab,
        0xbeaa_aaaa,
        0xbeaa_aaab,
        0xbeaa_aaaa,
        0xbeaa_aaab,
    ];
    for mode in 0..5u32 {
        let (r, fl) = f3op(fdiv_s(A0, A1, A2, mode), one, three, 0);
        assert_eq!(
            (r, fl),
            (boxed(want_pos[mode as usize]), NX),
            "1/3 rm={mode}"
        );
        let (r, _) = f3op(fdiv_s(A0, A1, A2, mode), m_one, three, 0);
        assert_eq!(r, boxed(want_neg[mode as usize]), "-1/3 rm={mode}");
        // Dynamic: the same results through frm.
        let vm = fexec(
            fdiv_s(A0, A1, A2, rm::DYN),
            &[(A1, m_one), (A2, three)],
            &[],
            mode as u8,
        );
        assert_eq!(vm.f(A0), boxed(want_neg[mode as usize]), "-1/3 frm={mode}");
    }
    let d_one = 0x3ff0_0000_0000_0000;
    let d_three = 0x4008_0000_0000_0000;
    let want_d = [
        0x3fd5_5555_5555_5555,
        0x3fd5_5555_5555_5555,
        0x3fd5_5555_5555_5555,
        0x3fd5_5555_5555_5556,
        0x3fd5_5555_5555_5555,
    ];
    for mode in 0..5u32 {
        let (r, fl) = f3op(fdiv_d(A0, A1, A2, mode), d_one, d_three, 0);
        assert_eq!((r, fl), (want_d[mode as usize], NX), "1/3 (d) rm={mode}");
    }
    // Ties: 2^24 + 1 is halfway between two singles.
    let tie_pos = [
        0x4b80_0000,
        0x4b80_0000,
        0x4b80_0000,
        0x4b80_0001,
        0x4b80_0001,
    ];
    let tie_neg = [
        0xcb80_0000,
        0xcb80_0000,
        0xcb80_0001,
        0xcb80_0000,
        0xcb80_0001,
    ];
    for mode in 0..5u32 {
        let vm = fexec(fcvt_s_x(0, A0, A1, mode), &[], &[(A1, 16_777_217)], 0);
        assert_eq!(
            (vm.f(A0), vm.csr().fflags),
            (boxed(tie_pos[mode as usize]), NX)
        );
        let vm = fexec(
            fcvt_s_x(2, A0, A1, mode),
            &[],
            &[(A1, (-16_777_217i64) as u64)],
            0,
        );
        assert_eq!(vm.f(A0), boxed(tie_neg[mode as usize]), "rm={mode}");
    }
    // float -> int: 2.5 and -2.5 in every mode.
    let pos = [2u64, 2, 2, 3, 3];
    let neg = [-2i64, -2, -3, -2, -3];
    for mode in 0..5u32 {
        let vm = fexec(
            fcvt_x_s(0, A0, A1, mode),
            &[(A1, boxed(0x4020_0000))],
            &[],
            0,
        );
        assert_eq!(
            (vm.x(A0), vm.csr().fflags),
            (pos[mode as usize], NX),
            "2.5 rm={mode}"
        );
        let vm = fexec(
            fcvt_x_d(2, A0, A1, mode),
            &[(A1, 0xc004_0000_0000_0000)],
            &[],
            0,
        );
        assert_eq!(vm.x(A0), neg[mode as usize] as u64, "-2.5 rm={mode}");
    }
}

#[test]
fn fp_reserved_rounding_modes_are_illegal() {
    // rm = 5 in the instruction.
    let vm = fexec(fadd_d(A0, A1, A2, 5), &[], &[], 0);
    assert_eq!(vm.csr().mcause, 2);
    // Dynamic with frm = 5, 6, 7.
    for frm in 5..8 {
        let w = fadd_d(A0, A1, A2, rm::DYN);
        let vm = fexec(w, &[], &[], frm);
        assert_eq!(
            (vm.csr().mcause, vm.csr().mtval),
            (2, u64::from(w)),
            "frm={frm}"
        );
    }
    // Instructions without a rounding mode do not care about frm.
    let vm = fexec(fsgnj_d(A0, A1, A2), &[(A1, 5)], &[], 7);
    assert_eq!((vm.csr().mcause, vm.f(A0)), (0, 5));
}

#[test]
fn fp_exception_flags() {
    let s = boxed;
    // DZ: 1/0 = +inf.
    assert_eq!(
        f3op(fdiv_s(A0, A1, A2, 0), s(0x3f80_0000), s(0), 0),
        (s(0x7f80_0000), DZ)
    );
    // NV: sqrt(-1) = canonical NaN.
    assert_eq!(f3op(fsqrt_s(A0, A1, 0), s(0xbf80_0000), 0, 0), (QNAN_S, NV));
    assert_eq!(
        f3op(fsqrt_d(A0, A1, 0), 0xbff0_0000_0000_0000, 0, 0),
        (QNAN_D, NV)
    );
    // NV: inf - inf; 0 * inf.
    assert_eq!(
        f3op(fsub_s(A0, A1, A2, 0), s(0x7f80_0000), s(0x7f80_0000), 0),
        (QNAN_S, NV)
    );
    assert_eq!(
        f3op(fmul_d(A0, A1, A2, 0), 0, 0x7ff0_0000_0000_0000, 0),
        (QNAN_D, NV)
    );
    // OF: max * 2 = inf, with NX.
    assert_eq!(
        f3op(fmul_s(A0, A1, A2, 0), s(0x7f7f_ffff), s(0x4000_0000), 0),
        (s(0x7f80_0000), OF | NX)
    );
    // ... but RTZ rounds an overflow to the largest finite value.
    assert_eq!(
        f3op(fmul_s(A0, A1, A2, 1), s(0x7f7f_ffff), s(0x4000_0000), 0),
        (s(0x7f7f_ffff), OF | NX)
    );
    // UF: a tiny inexact result; an exact tiny result raises nothing.
    assert_eq!(
        f3op(fmul_s(A0, A1, A2, 0), s(0x0080_0001), s(0x3f00_0000), 0),
        (s(0x0040_0000), UF | NX)
    );
    assert_eq!(
        f3op(fmul_s(A0, A1, A2, 0), s(0x0080_0002), s(0x3f00_0000), 0),
        (s(0x0040_0001), 0)
    );
    assert_eq!(
        f3op(
            fmul_d(A0, A1, A2, 0),
            0x0010_0000_0000_0001,
            0x3fe0_0000_0000_0000,
            0
        ),
        (0x0008_0000_0000_0000, UF | NX)
    );
    // Exact operations raise nothing.
    assert_eq!(
        f3op(
            fadd_d(A0, A1, A2, 0),
            0x3ff0_0000_0000_0000,
            0x3ff0_0000_0000_0000,
            0
        ),
        (0x4000_0000_0000_0000, 0)
    );
    // Flags accumulate and csrrw fflags reads and clears them.
    let mut a = Asm::new(RAM_BASE);
    a.w(fdiv_s(A0, A1, A2, 0)) // DZ
        .w(fdiv_s(A0, A1, A3, 0)) // NX (1/3)
        .w(csrrw(A0, csr::FFLAGS, ZERO))
        .w(csrr(A1, csr::FFLAGS))
        .w(csrrwi(ZERO, csr::FRM, 3))
        .w(csrrsi(ZERO, csr::FFLAGS, NV as u32))
        .w(csrr(A2, csr::FCSR))
        .w(csrrw(A3, csr::FCSR, ZERO)) // swap fcsr with 0
        .w(csrr(A4, csr::FRM));
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    vm.edit(|s| {
        s.csr.mstatus |= 1 << 13;
        s.f[A1 as usize] = boxed(0x3f80_0000);
        s.f[A2 as usize] = boxed(0);
        s.f[A3 as usize] = boxed(0x4040_0000);
    });
    vm.run_to(a.addr("halt"), 20);
    assert_eq!(vm.x(A0), u64::from(DZ | NX), "fflags before clear");
    assert_eq!(vm.x(A1), 0);
    assert_eq!(vm.x(A2), (3 << 5) | u64::from(NV));
    assert_eq!(vm.x(A3), (3 << 5) | u64::from(NV));
    assert_eq!(vm.x(A4), 0);
}

#[test]
fn fp_nan_propagation_min_max_and_compares() {
    let snan_d = 0x7ff0_0000_0000_0001;
    let qnan_d = 0x7ff8_0000_0000_1234; // non-canonical quiet NaN
    let one_d = 0x3ff0_0000_0000_0000;
    let neg0_d = 0x8000_0000_0000_0000;
    // Arithmetic returns the canonical NaN; NV only for signaling inputs.
    assert_eq!(f3op(fadd_d(A0, A1, A2, 0), snan_d, one_d, 0), (QNAN_D, NV));
    assert_eq!(f3op(fadd_d(A0, A1, A2, 0), qnan_d, one_d, 0), (QNAN_D, 0));
    assert_eq!(
        f3op(fmadd_d(A0, A1, A2, A3, 0), one_d, one_d, qnan_d),
        (QNAN_D, 0)
    );
    // fmin/fmax: one NaN -> the other operand; two -> canonical; -0 < +0.
    assert_eq!(f3op(fmin_d(A0, A1, A2), qnan_d, one_d, 0), (one_d, 0));
    assert_eq!(f3op(fmax_d(A0, A1, A2), one_d, snan_d, 0), (one_d, NV));
    assert_eq!(f3op(fmin_d(A0, A1, A2), qnan_d, snan_d, 0), (QNAN_D, NV));
    assert_eq!(f3op(fmin_d(A0, A1, A2), 0, neg0_d, 0), (neg0_d, 0));
    assert_eq!(f3op(fmax_d(A0, A1, A2), neg0_d, 0, 0), (0, 0));
    assert_eq!(
        f3op(
            fmin_s(A0, A1, A2),
            boxed(0x7fa0_0000),
            boxed(0xbf80_0000),
            0
        ),
        (boxed(0xbf80_0000), NV)
    );
    // Compares: feq is quiet, flt/fle signal on any NaN.
    let cmp = |w: u32, a: u64, b: u64| {
        let vm = fexec(w, &[(A1, a), (A2, b)], &[], 0);
        (vm.x(A0), vm.csr().fflags)
    };
    assert_eq!(cmp(feq_d(A0, A1, A2), qnan_d, qnan_d), (0, 0));
    assert_eq!(cmp(feq_d(A0, A1, A2), snan_d, one_d), (0, NV));
    assert_eq!(cmp(flt_d(A0, A1, A2), qnan_d, one_d), (0, NV));
    assert_eq!(cmp(fle_d(A0, A1, A2), one_d, qnan_d), (0, NV));
    assert_eq!(cmp(feq_d(A0, A1, A2), 0, neg0_d), (1, 0));
    assert_eq!(cmp(flt_d(A0, A1, A2), neg0_d, 0), (0, 0));
    assert_eq!(cmp(fle_d(A0, A1, A2), neg0_d, 0), (1, 0));
    assert_eq!(
        cmp(flt_s(A0, A1, A2), boxed(0xbf80_0000), boxed(0x3f80_0000)),
        (1, 0)
    );
    assert_eq!(
        cmp(fle_s(A0, A1, A2), boxed(0x3f80_0000), boxed(0xbf80_0000)),
        (0, 0)
    );
}

#[test]
fn fp_conversions_saturate() {
    let conv = |w: u32, a: u64| {
        let vm = fexec(w, &[(A1, a)], &[], 0);
        (vm.x(A0), vm.csr().fflags)
    };
    let nan_s = boxed(0x7fc0_0000);
    let inf_s = boxed(0x7f80_0000);
    let ninf_s = boxed(0xff80_0000);
    assert_eq!(conv(fcvt_x_s(0, A0, A1, 0), nan_s), (0x7fff_ffff, NV));
    assert_eq!(conv(fcvt_x_s(0, A0, A1, 0), inf_s), (0x7fff_ffff, NV));
    assert_eq!(
        conv(fcvt_x_s(0, A0, A1, 0), ninf_s),
        (0xffff_ffff_8000_0000, NV)
    );
    assert_eq!(conv(fcvt_x_s(1, A0, A1, 0), boxed(0xbf80_0000)), (0, NV)); // wu(-1)
    assert_eq!(conv(fcvt_x_s(1, A0, A1, 1), boxed(0xbf00_0000)), (0, NX)); // wu(-0.5) rtz
    assert_eq!(conv(fcvt_x_s(1, A0, A1, 0), nan_s), (u64::MAX, NV)); // sign-extended 0xffffffff
    assert_eq!(conv(fcvt_x_s(3, A0, A1, 0), nan_s), (u64::MAX, NV));
    assert_eq!(
        conv(fcvt_x_s(2, A0, A1, 0), ninf_s),
        (0x8000_0000_0000_0000, NV)
    );
    assert_eq!(
        conv(fcvt_x_d(2, A0, A1, 0), 0x43e0_0000_0000_0000),
        (0x7fff_ffff_ffff_ffff, NV)
    ); // 2^63
    assert_eq!(
        conv(fcvt_x_d(3, A0, A1, 0), 0x43e0_0000_0000_0000),
        (0x8000_0000_0000_0000, 0)
    );
    assert_eq!(
        conv(fcvt_x_d(1, A0, A1, 0), 0x41ef_ffff_ffe0_0000),
        (u64::MAX, 0)
    ); // wu(2^32-1)
    assert_eq!(
        conv(fcvt_x_d(0, A0, A1, 0), 0xc1e0_0000_0010_0000),
        (0xffff_ffff_8000_0000, NX)
    ); // w(-2^31 - 0.5) rne
    // int -> float
    let from = |w: u32, x: u64| {
        let vm = fexec(w, &[], &[(A1, x)], 0);
        (vm.f(A0), vm.csr().fflags)
    };
    assert_eq!(
        from(fcvt_d_x(1, A0, A1, 0), u64::MAX),
        (0x41ef_ffff_ffe0_0000, 0)
    ); // d.wu: low 32 bits only
    assert_eq!(
        from(fcvt_d_x(0, A0, A1, 0), 0xffff_ffff),
        (0xbff0_0000_0000_0000, 0)
    ); // d.w(-1)
    assert_eq!(
        from(fcvt_d_x(3, A0, A1, 0), u64::MAX),
        (0x43f0_0000_0000_0000, NX)
    ); // d.lu(2^64-1)
    assert_eq!(
        from(fcvt_s_x(3, A0, A1, 1), u64::MAX),
        (boxed(0x5f7f_ffff), NX)
    ); // s.lu rtz
    // float <-> float
    assert_eq!(
        f3op(fcvt_s_d(A0, A1, 0), 0x3fd5_5555_5555_5555, 0, 0),
        (boxed(0x3eaa_aaab), NX)
    );
    assert_eq!(
        f3op(fcvt_s_d(A0, A1, 1), 0x3fd5_5555_5555_5555, 0, 0),
        (boxed(0x3eaa_aaaa), NX)
    );
    assert_eq!(
        f3op(fcvt_s_d(A0, A1, 0), 0x47f0_0000_0000_0000, 0, 0),
        (boxed(0x7f80_0000), OF | NX)
    );
    assert_eq!(
        f3op(fcvt_d_s(A0, A1), boxed(0x3eaa_aaab), 0, 0),
        (0x3fd5_5555_6000_0000, 0)
    );
    assert_eq!(
        f3op(fcvt_d_s(A0, A1), boxed(0x7f80_0001), 0, 0),
        (QNAN_D, NV)
    );
}

#[test]
fn fp_fused_multiply_add_signs_and_single_rounding() {
    let (two, three, one) = (
        0x4000_0000_0000_0000,
        0x4008_0000_0000_0000,
        0x3ff0_0000_0000_0000,
    );
    assert_eq!(
        f3op(fmadd_d(A0, A1, A2, A3, 0), two, three, one).0,
        0x401c_0000_0000_0000
    ); // 7
    assert_eq!(
        f3op(fmsub_d(A0, A1, A2, A3, 0), two, three, one).0,
        0x4014_0000_0000_0000
    ); // 5
    assert_eq!(
        f3op(fnmsub_d(A0, A1, A2, A3, 0), two, three, one).0,
        0xc014_0000_0000_0000
    ); // -5
    assert_eq!(
        f3op(fnmadd_d(A0, A1, A2, A3, 0), two, three, one).0,
        0xc01c_0000_0000_0000
    ); // -7
    // (1 + 2^-52)^2 - (1 + 2^-51): only a fused operation keeps the 2^-104 term.
    let x = 0x3ff0_0000_0000_0001;
    let c = 0xbff0_0000_0000_0002;
    assert_eq!(
        f3op(fmadd_d(A0, A1, A2, A3, 0), x, x, c),
        (0x3970_0000_0000_0000, 0)
    );
    // Single precision, with the host fast path and without (rtz).
    let (s1, s2, s3) = (boxed(0x3f80_0001), boxed(0x3f80_0001), boxed(0xbf80_0002));
    assert_eq!(
        f3op(fmadd_s(A0, A1, A2, A3, 0), s1, s2, s3),
        (boxed(0x2880_0000), 0)
    );
    assert_eq!(
        f3op(fmadd_s(A0, A1, A2, A3, 1), s1, s2, s3),
        (boxed(0x2880_0000), 0)
    );
    // fnmadd of +0 products: -(0 * 1) - 0 = -0.
    assert_eq!(
        f3op(fnmadd_d(A0, A1, A2, A3, 0), 0, one, 0).0,
        0x8000_0000_0000_0000
    );
}

#[test]
fn fp_sign_injection_moves_and_classify() {
    let (p, n) = (boxed(0x3f80_0000), boxed(0xbf80_0000));
    assert_eq!(f3op(fsgnj_s(A0, A1, A2), p, n, 0).0, n);
    assert_eq!(f3op(fsgnjn_s(A0, A1, A2), p, n, 0).0, p);
    assert_eq!(f3op(fsgnjx_s(A0, A1, A2), n, n, 0).0, p);
    let (pd, nd) = (0x3ff0_0000_0000_0000u64, 0xbff0_0000_0000_0000u64);
    assert_eq!(f3op(fsgnj_d(A0, A1, A2), nd, pd, 0).0, pd);
    assert_eq!(f3op(fsgnjn_d(A0, A1, A2), pd, pd, 0).0, nd);
    assert_eq!(f3op(fsgnjx_d(A0, A1, A2), nd, pd, 0).0, nd);
    // Sign injection never touches NaN payloads or raises flags.
    assert_eq!(
        f3op(fsgnjn_d(A0, A1, A2), 0x7ff0_0000_0000_0001, pd, 0),
        (0xfff0_0000_0000_0001, 0)
    );
    // fclass: one bit per class.
    let class_d = [
        (0xfff0_0000_0000_0000u64, 1u64 << 0),
        (nd, 1 << 1),
        (0x800f_ffff_ffff_ffff, 1 << 2),
        (0x8000_0000_0000_0000, 1 << 3),
        (0, 1 << 4),
        (1, 1 << 5),
        (pd, 1 << 6),
        (0x7ff0_0000_0000_0000, 1 << 7),
        (0x7ff0_0000_0000_0001, 1 << 8),
        (0x7ff8_0000_0000_0000, 1 << 9),
    ];
    for (v, want) in class_d {
        let vm = fexec(fclass_d(A0, A1), &[(A1, v)], &[], 0);
        assert_eq!(vm.x(A0), want, "fclass.d {v:#x}");
    }
    let vm = fexec(fclass_s(A0, A1), &[(A1, boxed(0x7fa0_0000))], &[], 0);
    assert_eq!(vm.x(A0), 1 << 8);
    let vm = fexec(fclass_s(A0, A1), &[(A1, boxed(0x8000_0001))], &[], 0);
    assert_eq!(vm.x(A0), 1 << 2);
    // Moves are raw.
    let vm = fexec(fmv_x_w(A0, A1), &[(A1, boxed(0x8000_0000))], &[], 0);
    assert_eq!(vm.x(A0), 0xffff_ffff_8000_0000);
    let vm = fexec(fmv_x_d(A0, A1), &[(A1, 0x7ff0_0000_0000_0001)], &[], 0);
    assert_eq!((vm.x(A0), vm.csr().fflags), (0x7ff0_0000_0000_0001, 0));
    let vm = fexec(fmv_w_x(A0, A1), &[], &[(A1, 0x1234_5678_7f80_0001)], 0);
    assert_eq!(vm.f(A0), boxed(0x7f80_0001));
    let vm = fexec(fmv_d_x(A0, A1), &[], &[(A1, 0x1234_5678_7f80_0001)], 0);
    assert_eq!(vm.f(A0), 0x1234_5678_7f80_0001);
}

#[test]
fn fp_nan_boxing() {
    let unboxed_one = 0x0000_0000_3f80_0000u64;
    let almost_boxed = 0xffff_fffe_3f80_0000u64;
    for bad in [unboxed_one, almost_boxed] {
        // A single-precision operand that is not properly boxed reads as the
        // canonical NaN (quiet: no NV).
        assert_eq!(
            f3op(fadd_s(A0, A1, A2, 0), bad, boxed(0x3f80_0000), 0),
            (QNAN_S, 0)
        );
        assert_eq!(
            f3op(fsgnj_s(A0, A1, A2), bad, boxed(0x3f80_0000), 0).0,
            QNAN_S
        );
        assert_eq!(f3op(fcvt_d_s(A0, A1), bad, 0, 0), (QNAN_D, 0));
        let vm = fexec(fclass_s(A0, A1), &[(A1, bad)], &[], 0);
        assert_eq!(vm.x(A0), 1 << 9);
        // fmv.x.w and fsw move the low bits regardless.
        let vm = fexec(fmv_x_w(A0, A1), &[(A1, bad)], &[], 0);
        assert_eq!(vm.x(A0), 0x3f80_0000);
    }
    // flw boxes; fsw stores the low word; fld/fsd are raw.
    let vm = run(|a| {
        a.li(S0, DATA)
            .li(T0, 0x1122_3344_4049_0fdb)
            .w(sd(T0, S0, 0));
        a.w(flw(FA0, S0, 0)).w(fld(FA1, S0, 0));
        a.w(fsw(FA1, S0, 8)).w(fsd(FA1, S0, 16));
        a.w(fmv_d_x(FA2, T0)).w(fsw(FA2, S0, 24));
    });
    assert_eq!(vm.f(FA0), boxed(0x4049_0fdb));
    assert_eq!(vm.f(FA1), 0x1122_3344_4049_0fdb);
    assert_eq!(vm.bus.read_u64(DATA + 8), 0x4049_0fdb);
    assert_eq!(vm.bus.read_u64(DATA + 16), 0x1122_3344_4049_0fdb);
    assert_eq!(vm.bus.read_u64(DATA + 24), 0x4049_0fdb);
}

const FA0: u32 = 10;
const FA1: u32 = 11;
const FA2: u32 = 12;

/// mstatus.FS (bits 14:13) after running `body` from FS = `initial`.
fn fs_after(initial: u64, body: impl FnOnce(&mut Asm)) -> (u64, u64) {
    let mut a = Asm::new(RAM_BASE);
    a.li(S0, DATA);
    body(&mut a);
    a.w(csrr(A0, csr::MSTATUS));
    a.halt("halt");
    a.halt("trap");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    let trap = a.addr("trap");
    vm.edit(|s| {
        s.csr.mtvec = trap;
        s.csr.mstatus |= initial << 13;
    });
    vm.run_to(a.addr("halt"), 100);
    let mstatus = vm.x(A0);
    ((mstatus >> 13) & 3, mstatus >> 63)
}

#[test]
fn fs_tracking() {
    const INITIAL: u64 = 1;
    const CLEAN: u64 = 2;
    const DIRTY: u64 = 3;
    // Writes to f registers or FP CSRs make the state dirty (SD follows).
    assert_eq!(
        fs_after(INITIAL, |a| {
            a.w(fadd_d(1, 2, 3, 0));
        }),
        (DIRTY, 1)
    );
    assert_eq!(
        fs_after(CLEAN, |a| {
            a.w(fld(1, S0, 0));
        }),
        (DIRTY, 1)
    );
    assert_eq!(
        fs_after(CLEAN, |a| {
            a.w(fmv_w_x(1, ZERO));
        }),
        (DIRTY, 1)
    );
    assert_eq!(
        fs_after(CLEAN, |a| {
            a.w(csrrwi(ZERO, csr::FRM, 1));
        }),
        (DIRTY, 1)
    );
    assert_eq!(
        fs_after(CLEAN, |a| {
            a.w(csrrwi(ZERO, csr::FFLAGS, 0));
        }),
        (DIRTY, 1)
    );
    // Stores and CSR reads leave it alone.
    assert_eq!(
        fs_after(CLEAN, |a| {
            a.w(fsd(1, S0, 0)).w(fsw(1, S0, 8));
        }),
        (CLEAN, 0)
    );
    assert_eq!(
        fs_after(INITIAL, |a| {
            a.w(csrr(T0, csr::FCSR));
        }),
        (INITIAL, 0)
    );
    // Software can clean it again.
    assert_eq!(
        fs_after(DIRTY, |a| {
            a.li(T0, 1 << 13).w(csrc(csr::MSTATUS, T0));
        }),
        (CLEAN, 0)
    );
}

#[test]
fn fs_off_makes_fp_illegal() {
    for w in [
        fadd_d(1, 2, 3, 0),
        fld(1, ZERO, 0),
        fsd(1, ZERO, 0),
        fmv_x_d(A0, 1),
        csrr(A0, csr::FFLAGS),
        csrr(A0, csr::FRM),
        csrr(A0, csr::FCSR),
    ] {
        let mut a = Asm::new(RAM_BASE);
        a.w(w);
        a.halt("halt");
        a.halt("trap");
        let mut vm = Vm::with_ram(&a, SMALL_RAM);
        let trap = a.addr("trap");
        vm.edit(|s| s.csr.mtvec = trap);
        vm.hart.run(&mut vm.bus, 1);
        assert_eq!(vm.hart.pc().raw(), trap, "{}", samsara_isa::decode(w));
        assert_eq!((vm.csr().mcause, vm.csr().mtval), (2, u64::from(w)));
    }
    // Compressed FP loads too (c.fld fa0,0(a1)); mtval holds the 16 bits.
    let mut a = Asm::new(RAM_BASE);
    a.h(0x2188).h(0x0001);
    a.align(4);
    a.halt("trap");
    let mut vm = Vm::with_ram(&a, SMALL_RAM);
    let trap = a.addr("trap");
    vm.edit(|s| s.csr.mtvec = trap);
    vm.hart.run(&mut vm.bus, 1);
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (2, 0x2188));
}
