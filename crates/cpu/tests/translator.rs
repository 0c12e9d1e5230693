//! The block translator against the interpreter: random loops of integer,
//! multiply/divide, load/store, branch, CSR, atomic and fence instructions
//! (with compressed ones, in every privilege mode), and loops of F/D
//! instructions over values that take each path of their host code, run
//! on two harts, one translating; after every `run` call, whatever its
//! budget, the whole hart state and memory are equal.
#![cfg(target_arch = "x86_64")]

mod common;

use common::asm::*;
use common::{RAM_BASE, TestBus, pmp_allow_all};
use proptest::prelude::*;
use samsara_cpu::{Hart, HartState, Privilege};
use samsara_types::{GuestVirtAddr, HartId};

const RAM: u64 = 64 << 10;
const DATA: u64 = RAM_BASE + 0x4000;
const TRAP: u64 = RAM_BASE + 0x100;
const CODE: u64 = RAM_BASE + 0x200;
/// Loop counter: no generated instruction writes it.
const COUNTER: u32 = S0;
/// An aligned pointer into the data area for atomics: no generated
/// instruction writes it either.
const ATOMIC_BASE: u32 = TP;

/// One generated instruction from a choice and random fields. Registers
/// avoid the counter as a destination; pointer registers (odd numbers)
/// aim into the data area, so loads and stores mostly hit RAM, sometimes
/// misaligned, sometimes far off (a trap).
fn instruction(choice: u8, rd: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let rd = if rd == COUNTER || rd == ATOMIC_BASE {
        T0
    } else {
        rd
    };
    let off = imm & 0x7f8;
    let small = imm & 0x7ff;
    let shamt = (imm as u32) & 63;
    match choice % 54 {
        0 => addi(rd, rs1, imm >> 20),
        1 => slti(rd, rs1, imm >> 20),
        2 => sltiu(rd, rs1, imm >> 20),
        3 => xori(rd, rs1, imm >> 20),
        4 => ori(rd, rs1, imm >> 20),
        5 => andi(rd, rs1, imm >> 20),
        6 => addiw(rd, rs1, imm >> 20),
        7 => slli(rd, rs1, shamt),
        8 => srli(rd, rs1, shamt),
        9 => srai(rd, rs1, shamt),
        10 => slliw(rd, rs1, shamt & 31),
        11 => srliw(rd, rs1, shamt & 31),
        12 => sraiw(rd, rs1, shamt & 31),
        13 => lui(rd, (imm as u32) >> 12),
        14 => auipc(rd, (imm as u32) >> 12),
        15 => add(rd, rs1, rs2),
        16 => sub(rd, rs1, rs2),
        17 => sll(rd, rs1, rs2),
        18 => slt(rd, rs1, rs2),
        19 => sltu(rd, rs1, rs2),
        20 => xor(rd, rs1, rs2),
        21 => srl(rd, rs1, rs2),
        22 => sra(rd, rs1, rs2),
        23 => or(rd, rs1, rs2),
        24 => and(rd, rs1, rs2),
        25 => addw(rd, rs1, rs2),
        26 => subw(rd, rs1, rs2),
        27 => sllw(rd, rs1, rs2),
        28 => srlw(rd, rs1, rs2),
        29 => sraw(rd, rs1, rs2),
        30 => mul(rd, rs1, rs2),
        31 => mulh(rd, rs1, rs2),
        32 => mulhsu(rd, rs1, rs2),
        33 => mulhu(rd, rs1, rs2),
        34 => div(rd, rs1, rs2),
        35 => divu(rd, rs1, rs2),
        36 => rem(rd, rs1, rs2),
        37 => remu(rd, rs1, rs2),
        38 => mulw(rd, rs1, rs2),
        39 => [divw, divuw, remw, remuw][(imm & 3) as usize](rd, rs1, rs2),
        // Memory through the odd (pointer) registers.
        40 => ld(rd, rs1 | 1, off),
        41 => [lb, lh, lw, lbu, lhu, lwu][(imm as u32 % 6) as usize](rd, rs1 | 1, small),
        42 | 43 => sd(rs2, rs1 | 1, off),
        44 => [sb, sh, sw][(imm as u32 % 3) as usize](rs2, rs1 | 1, small),
        // A forward branch over the next instruction.
        45 => [beq, bne, blt, bge, bltu, bgeu][(imm as u32 % 6) as usize](rs1, rs2, 8),
        46 => jal(if rd == RA { RA } else { ZERO }, 8),
        // Run by the interpreter from inside blocks: atomics, CSRs (the
        // retired count among them: exact counts inside blocks), fences.
        48 => {
            let f5 =
                [0x00, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c][(imm as u32 % 9) as usize];
            amo(f5, imm & 16 != 0, rd, ATOMIC_BASE, rs2)
        }
        49 => [lr_w, lr_d][(imm & 1) as usize](rd, ATOMIC_BASE),
        50 => [sc_w, sc_d][(imm & 1) as usize](rd, ATOMIC_BASE, rs2),
        51 => match imm as u32 % 4 {
            0 => csrrw(rd, csr::MSCRATCH, rs2),
            1 => csrrs(rd, csr::SSCRATCH, rs2),
            2 => csrr(rd, csr::INSTRET),
            _ => csrr(rd, csr::MINSTRET),
        },
        52 => FENCE,
        // An instruction blocks leave to the interpreter (a trap: the run
        // ends in the handler's spin).
        53 => ECALL,
        // c.addi rd, 1 (a compressed instruction, two of them in a word).
        _ => {
            let c = 0x0001 | ((rd & 31) << 7) | (1 << 2);
            c | (c << 16)
        }
    }
}

/// `words`, then a count down of `COUNTER` and a branch back to the
/// start; at the end a spin (both engines spin the same way until the
/// budget).
fn counted_loop(words: &[u32]) -> Vec<u32> {
    let mut code = words.to_vec();
    code.push(addi(COUNTER, COUNTER, -1));
    code.push(bne(COUNTER, ZERO, -(4 * (code.len() as i32))));
    code.push(jal(ZERO, 0));
    code
}

/// A hart at `CODE` running `words` in `privilege`: a body, then a count
/// down of `COUNTER` and a branch back to the start.
fn machine(
    words: &[u32],
    regs: &[u64; 32],
    privilege: Privilege,
    iterations: u64,
) -> (Hart, TestBus) {
    let mut bus = TestBus::new(RAM);
    bus.load_words(CODE, &counted_loop(words));
    bus.write_u32(TRAP, 0x0000_006f);
    for k in 0..0x1000u64 {
        bus.write_u64(DATA + 8 * k, k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(CODE));
    let mut s = hart.snapshot();
    for (r, &v) in regs.iter().enumerate().skip(1) {
        s.x[r] = if r % 2 == 1 { DATA + (v & 0x1fff) } else { v };
    }
    s.x[COUNTER as usize] = iterations;
    s.x[ATOMIC_BASE as usize] = DATA + 0x100;
    // U and S may read the counters.
    s.csr.mcounteren = 7;
    s.csr.scounteren = 7;
    s.privilege = privilege;
    s.csr.mtvec = TRAP;
    pmp_allow_all(&mut s);
    hart.restore(&s);
    (hart, bus)
}

/// Runs the translating hart and the interpreting one with each budget in
/// turn: equal stop reasons and whole states after every run, equal
/// memory at the end.
fn run_both_in_budgets<'a>(
    (jit, bus_j): (&mut Hart, &mut TestBus),
    (interp, bus_i): (&mut Hart, &mut TestBus),
    budgets: impl IntoIterator<Item = &'a u64>,
) -> Result<(), TestCaseError> {
    for (n, &budget) in budgets.into_iter().enumerate() {
        let a = interp.run(bus_i, budget);
        let b = jit.run(bus_j, budget);
        prop_assert_eq!(a, b, "stop reason of run {}", n);
        let (si, sj) = (interp.snapshot(), jit.snapshot());
        prop_assert_eq!(&si, &sj, "state after run {} (budget {})", n, budget);
    }
    prop_assert!(
        bus_i.read_bytes(RAM_BASE, RAM as usize) == bus_j.read_bytes(RAM_BASE, RAM as usize),
        "memory differs"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn translated_loops_run_exactly_like_the_interpreter(
        choices in proptest::collection::vec((any::<u8>(), 0u32..32, 0u32..32, 0u32..32, any::<i32>()), 1..40),
        regs in any::<[u64; 32]>(),
        iterations in 1u64..200,
        budgets in proptest::collection::vec(1u64..300, 1..12),
        p in 0usize..3,
    ) {
        let words: Vec<u32> = choices
            .iter()
            .map(|&(c, rd, rs1, rs2, imm)| instruction(c, rd, rs1, rs2, imm))
            .collect();
        let privilege = [Privilege::User, Privilege::Supervisor, Privilege::Machine][p];
        let (mut interp, mut bus_i) = machine(&words, &regs, privilege, iterations);
        let (mut jit, mut bus_j) = machine(&words, &regs, privilege, iterations);
        prop_assert!(jit.set_translator(true));
        run_both_in_budgets((&mut jit, &mut bus_j), (&mut interp, &mut bus_i), budgets.iter().cycle().take(60))?;
        let stats = jit.translator_stats().expect("on");
        // Loops that went round often enough to get hot, with a body that
        // makes a block (no jumps), were translated and ran translated.
        let straight = choices.iter().all(|c| !matches!(c.0 % 54, 45 | 46 | 53));
        let went_round = jit.steps().0 / (words.len() as u64 + 2);
        if went_round > 20 && straight && interp.snapshot().pc != TRAP {
            prop_assert!(stats.blocks > 0, "{:?}", stats);
        }
    }
}

/// A hart in M mode at `CODE` running `words`, with a3 pointing at `DATA`
/// and the rest of its state as `init` sets it, on either engine.
fn straight_code(words: &[u32], translate: bool, init: impl Fn(&mut HartState)) -> (Hart, TestBus) {
    let mut bus = TestBus::new(RAM);
    bus.load_words(CODE, words);
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(CODE));
    let mut s = hart.snapshot();
    s.x[A3 as usize] = DATA;
    init(&mut s);
    pmp_allow_all(&mut s);
    hart.restore(&s);
    hart.set_translator(translate);
    (hart, bus)
}

/// Runs the translating hart and the interpreting one with each budget in
/// turn, their whole states equal after every run.
fn run_both_comparing(
    (jit, bus_j): (&mut Hart, &mut TestBus),
    (interp, bus_i): (&mut Hart, &mut TestBus),
    budgets: impl IntoIterator<Item = u64>,
) {
    for (n, budget) in budgets.into_iter().enumerate() {
        jit.run(bus_j, budget);
        interp.run(bus_i, budget);
        assert_eq!(
            interp.snapshot(),
            jit.snapshot(),
            "after run {n} of {budget}"
        );
    }
}

#[test]
fn a_hot_loop_runs_translated_and_counts_exactly() {
    // sum = 0; for i in 0..1000: sum += i; stored each time round.
    let words = [
        add(A0, A0, A1),
        addi(A1, A1, 1),
        sd(A0, A3, 0),
        bne(A1, A2, -12),
        jal(ZERO, 0),
    ];
    let setup = |translate: bool| straight_code(&words, translate, |s| s.x[A2 as usize] = 1000);
    let (mut hart, mut bus) = setup(true);
    // 4 instructions a time round: after 2001 steps, 500 times round and
    // the add of the 501st.
    hart.run(&mut bus, 2001);
    assert_eq!(hart.steps().0, 2001);
    assert_eq!(hart.xreg(A1 as usize), 500);
    assert_eq!(hart.xreg(A0 as usize), (0..500).sum::<u64>() + 500);
    hart.run(&mut bus, 10_000);
    assert_eq!(hart.xreg(A0 as usize), (0..1000).sum::<u64>());
    assert_eq!(bus.read_u64(DATA), (0..1000).sum::<u64>());
    let stats = hart.translator_stats().unwrap();
    assert!(
        stats.blocks >= 1 && stats.steps_translated > 3500,
        "{stats:?}"
    );
    let (mut reference, mut bus_r) = setup(false);
    reference.run(&mut bus_r, 2001);
    reference.run(&mut bus_r, 10_000);
    assert_eq!(reference.snapshot(), hart.snapshot());
}

/// An F/D instruction in a block writing x0 (run by the interpreter's F/D
/// code from translated code) leaves x0 zero for what follows: a store of
/// x0 in the block, a move from x0 into an FP register, the next block.
#[test]
fn fp_results_written_to_x0_are_dropped_in_translated_code() {
    let words = [
        fmv_x_d(ZERO, 10),
        fcvt_x_d(2, ZERO, 10, 1),
        sd(ZERO, A3, 0),
        fmv_d_x(11, ZERO),
        addi(A1, A1, 1),
        bne(A1, A2, -20),
        jal(ZERO, 0),
    ];
    let setup = |translate: bool| {
        let (hart, mut bus) = straight_code(&words, translate, |s| {
            s.x[A2 as usize] = 100;
            s.f[10] = (-12345.75f64).to_bits();
            s.csr.mstatus |= 0x6000; // FS dirty: F/D enabled
        });
        bus.write_u64(DATA, u64::MAX);
        (hart, bus)
    };
    let (mut jit, mut bus_j) = setup(true);
    let (mut interp, mut bus_i) = setup(false);
    jit.run(&mut bus_j, 1000);
    interp.run(&mut bus_i, 1000);
    assert!(jit.translator_stats().unwrap().steps_translated > 300);
    assert_eq!(jit.xreg(0), 0);
    assert_eq!(bus_j.read_u64(DATA), 0);
    assert_eq!(jit.freg(11), 0);
    assert_eq!(interp.snapshot(), jit.snapshot());
}

/// CSR writes inside a block let an interrupt in exactly where the
/// interpreter takes it: the loop sets `mstatus.MIE` (a software
/// interrupt is pending and enabled in `mie`) from its 150th time round,
/// through a `csrrs` that writes zero until then; AMOs, LR/SC and a CSR
/// read of the retired count run in the same block.
#[test]
fn csr_writes_in_blocks_take_interrupts_where_the_interpreter_does() {
    let words = [
        amo(0x00, false, A0, A3, A1),  // amoadd.d a0, a1, (a3)
        lr_d(T1, A3),                  //
        addi(T1, T1, 3),               //
        sc_d(T2, A3, T1),              //
        csrr(A5, csr::MINSTRET),       //
        sd(A5, A3, 8),                 //
        sltu(A4, A2, A1),              // a4 = 150 < a1
        slli(A4, A4, 3),               // MIE or nothing
        csrrs(ZERO, csr::MSTATUS, A4), //
        FENCE,                         //
        addi(A1, A1, 1),               //
        jal(ZERO, -44),                //
    ];
    let setup = |translate: bool| {
        let (hart, mut bus) = straight_code(&words, translate, |s| {
            s.x[A2 as usize] = 150;
            s.csr.mtvec = TRAP;
            s.csr.mie = 1 << 3;
            s.csr.mip = 1 << 3;
        });
        bus.write_u32(TRAP, 0x0000_006f);
        (hart, bus)
    };
    let (mut jit, mut bus_j) = setup(true);
    let (mut interp, mut bus_i) = setup(false);
    run_both_comparing(
        (&mut jit, &mut bus_j),
        (&mut interp, &mut bus_i),
        [7, 100, 333, 1000, 5000],
    );
    let s = jit.snapshot();
    assert_eq!(s.csr.mcause, (1 << 63) | 3, "the software interrupt");
    assert_eq!(s.csr.mepc, CODE + 4 * 9, "right after the csrrs");
    assert_eq!(s.x[A1 as usize], 151);
    assert!(jit.translator_stats().unwrap().steps_translated > 1000);
    assert_eq!(
        bus_i.read_bytes(RAM_BASE, RAM as usize),
        bus_j.read_bytes(RAM_BASE, RAM as usize)
    );
}

/// A block that leaves early (a misaligned load it leaves to the
/// interpreter) hands the interpreter only what is left of the budget:
/// the code after it, up to an `ecall` blocks leave to the interpreter,
/// runs within every budget exactly as interpreted. The trap handler jumps
/// back, so the code gets hot and runs translated.
#[test]
fn a_block_leaving_early_never_runs_past_the_budget() {
    let words = [
        addi(A0, A0, 1),
        lw(A1, A3, 1), // misaligned
        addi(A0, A0, 1),
        addi(A0, A0, 1),
        ECALL,
    ];
    let setup = |translate: bool| {
        let (hart, mut bus) = straight_code(&words, translate, |s| s.csr.mtvec = TRAP);
        // The handler goes back to the code.
        bus.write_u32(TRAP, jal(ZERO, (CODE - TRAP) as i32));
        (hart, bus)
    };
    let (mut jit, mut bus_j) = setup(true);
    let (mut interp, mut bus_i) = setup(false);
    let budgets = [5, 1, 2, 3, 4, 6, 7, 11, 13].into_iter().cycle().take(300);
    run_both_comparing((&mut jit, &mut bus_j), (&mut interp, &mut bus_i), budgets);
    assert!(jit.translator_stats().unwrap().steps_translated > 100);
}

/// A run of F/D instructions is one call out of the block; one that traps
/// in the middle of it (a load walking off the end of RAM) stops the
/// block right there, with the count, pc and registers the interpreter
/// has, whatever the budget.
#[test]
fn an_fp_run_called_from_a_block_stops_at_the_instruction_that_traps() {
    let words = [
        fadd_d(2, 2, 3, 0),
        fld(4, A4, 0), // walks to the end of RAM, then faults
        fmul_d(5, 5, 4, 0),
        fsd(5, A3, 8),
        add(A4, A4, A5),
        addi(A1, A1, 1),
        jal(ZERO, -24),
    ];
    let setup = |translate: bool| {
        straight_code(&words, translate, |s| {
            s.x[A4 as usize] = DATA;
            s.x[A5 as usize] = 64;
            s.f[3] = 1.5f64.to_bits();
            s.f[5] = 1.0f64.to_bits();
            s.csr.mstatus |= 0x6000; // FS dirty: F/D enabled
            s.csr.mtvec = TRAP;
        })
    };
    let (mut jit, mut bus_j) = setup(true);
    let (mut interp, mut bus_i) = setup(false);
    // The handler notes the retired count (where the trap came) and spins.
    for bus in [&mut bus_j, &mut bus_i] {
        bus.load_words(TRAP, &[csrr(A6, csr::MINSTRET), jal(ZERO, 0)]);
    }
    // Budgets mostly longer than the block, so that it runs translated
    // when the load faults.
    let budgets = [97, 13, 250, 61, 7].into_iter().cycle().take(80);
    run_both_comparing((&mut jit, &mut bus_j), (&mut interp, &mut bus_i), budgets);
    let s = jit.snapshot();
    assert_eq!(s.csr.mcause, 5, "a load access fault");
    assert_eq!(s.csr.mepc, CODE + 4, "at the load, mid-run");
    assert_ne!(s.x[A6 as usize], 0, "the handler ran");
    assert!(jit.translator_stats().unwrap().steps_translated > 500);
}

/// Integer results of F/D instructions in a run (one call out of the
/// block) reach the next instructions of the run, which read them from
/// the registers in memory, and the translated instructions after it,
/// which keep them in host registers: `a0` is used often enough to be
/// cached.
#[test]
fn integer_results_of_an_fp_run_reach_the_rest_of_the_block() {
    let words = [
        fmv_x_d(A0, 1),        // a0 = bits of f1
        fcvt_d_x(2, 2, A0, 0), // f2 = (double) a0 (as an l: kind 2)
        fcvt_x_d(2, A4, 2, 1), // a4 = (long) f2, round toward zero
        add(A5, A5, A0),       // translated: a0 from the run
        add(A5, A5, A4),
        addi(A0, A0, 1),   // a0 again: cached in a host register
        fmv_d_x(1, A0),    // f1 = bits of a0 + 1
        addi(A0, A0, 100), // so that the run's a0 is news to the host
        addi(A1, A1, 1),
        bne(A1, A2, -36),
        jal(ZERO, 0),
    ];
    let setup = |translate: bool| {
        straight_code(&words, translate, |s| {
            s.x[A2 as usize] = 300;
            s.f[1] = 40;
            s.csr.mstatus |= 0x6000; // FS dirty: F/D enabled
        })
    };
    let (mut jit, mut bus_j) = setup(true);
    let (mut interp, mut bus_i) = setup(false);
    run_both_comparing(
        (&mut jit, &mut bus_j),
        (&mut interp, &mut bus_i),
        [5, 97, 13, 1000, 4000],
    );
    // f1 starts as the bits 40 and goes up by one a time round.
    let sum: u64 = (40..340u64).map(|v| v + v).sum();
    assert_eq!(jit.xreg(A5 as usize), sum);
    assert!(jit.translator_stats().unwrap().steps_translated > 2000);
}

/// Harts that share their arrival counters (as a machine's do) translate a
/// loop another hart made hot at their first arrivals; a hart with its own
/// counters interprets it until it is hot there too. Both compute what
/// the interpreter computes.
#[test]
fn a_loop_hot_on_one_hart_is_translated_at_once_on_harts_sharing_its_heat() {
    // a0 += 1 a hundred times.
    let words = [
        addi(A0, ZERO, 0),
        addi(A1, ZERO, 100),
        addi(A0, A0, 1),
        bne(A0, A1, -4),
        jal(ZERO, 0),
    ];
    let (mut warm, mut bus) = straight_code(&words, true, |_| {});
    warm.run(&mut bus, 300);
    assert!(warm.translator_stats().unwrap().steps_translated > 0);
    let second_run = |share: bool| {
        let (mut hart, mut bus) = straight_code(&words, true, |_| {});
        if share {
            hart.share_translator_heat(&warm);
        }
        // The two set-up instructions and twenty rounds of the loop (fewer
        // than make it hot on a hart of its own).
        hart.run(&mut bus, 42);
        (
            hart.translator_stats().unwrap().steps_translated,
            hart.xreg(A0 as usize),
        )
    };
    let (shared_steps, shared_a0) = second_run(true);
    let (own_steps, own_a0) = second_run(false);
    assert_eq!((shared_a0, own_a0), (20, 20));
    assert_eq!(own_steps, 0, "cold on a hart of its own");
    assert!(
        shared_steps >= 30,
        "translated at once: {shared_steps} steps"
    );
}

/// Values that take F/D host code down each of its paths: normal, tiny,
/// subnormal, zero, huge, infinite, quiet and signalling NaNs, integers
/// at the conversions' limits, ties; singles NaN-boxed and not.
const FP_VALUES: [u64; 32] = [
    0x3ff0_0000_0000_0000, // 1.0
    0xbff8_0000_0000_0000, // -1.5
    0x3fb9_9999_9999_999a, // 0.1
    0x3fd5_5555_5555_5555, // 1/3
    0x4004_0000_0000_0000, // 2.5 (a tie when converted)
    0x7fef_ffff_ffff_ffff, // the largest double
    0x0010_0000_0000_0000, // the smallest normal
    0x0018_0000_0000_0000, // 1.5 x the smallest normal
    0x0000_0000_0000_0001, // the smallest subnormal
    0x000f_ffff_ffff_ffff, // the largest subnormal
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // quiet NaN
    0x7ff0_0000_0000_0001, // signalling NaN
    0x41e0_0000_0000_0000, // 2^31
    0xc1e0_0000_0000_0000, // -2^31
    0x41df_ffff_ffe0_0000, // 2^31 - 0.5
    0x43e0_0000_0000_0000, // 2^63
    0xc3e0_0000_0000_0000, // -2^63
    0x7e37_e43c_8800_759c, // 1e300
    0xffff_ffff_3fc0_0000, // 1.5f, boxed
    0xffff_ffff_7f7f_ffff, // the largest single, boxed
    0xffff_ffff_0080_0000, // the smallest normal single, boxed
    0xffff_ffff_0000_0001, // a subnormal single, boxed
    0xffff_ffff_7f80_0000, // +inf single, boxed
    0xffff_ffff_7fa0_0000, // a signalling NaN single, boxed
    0xffff_ffff_bf80_0000, // -1.0f, boxed
    0x0000_0000_3f80_0000, // 1.0f, not boxed (reads as the canonical NaN)
    0x4415_af1d_78b5_8c40, // 1e20
    0xffff_ffff_4f00_0000, // 2^31 as a single, boxed
];

/// One F/D instruction (or an integer one feeding them) from a choice and
/// random fields: FP results anywhere, sources in f0..f7, integer results into a0..a2 and
/// t0..t2 (never the counter or the data pointer a3), rounding modes
/// mostly nearest (static or dynamic) as compiled code uses them.
fn fp_instruction(choice: u8, fd: u32, fa: u32, fb: u32, bits: u32) -> u32 {
    // Sources from f0..f7 (results go anywhere): the values set up meet
    // each other often, equal ones included.
    let (fa, fb, fc) = (fa % 8, fb % 8, (bits >> 27) % 8);
    let xd = [A0, A1, A2, T0, T1, T2][(bits % 6) as usize];
    let xs = [A0, A1, A2, T0, T1, T2, ZERO][((bits >> 3) % 7) as usize];
    let rm = [
        rm::RNE,
        rm::DYN,
        rm::RNE,
        rm::DYN,
        rm::RTZ,
        rm::RDN,
        rm::RMM,
        5,
    ][((bits >> 6) & 7) as usize];
    let off = (((bits >> 9) & 31) * 8) as i32;
    match choice % 45 {
        0 => fadd_d(fd, fa, fb, rm),
        1 => fsub_d(fd, fa, fb, rm),
        2 => fmul_d(fd, fa, fb, rm),
        3 => fdiv_d(fd, fa, fb, rm),
        4 => fsqrt_d(fd, fa, rm),
        5 => fmadd_d(fd, fa, fb, fc, rm),
        6 => fmsub_d(fd, fa, fb, fc, rm),
        7 => fnmsub_d(fd, fa, fb, fc, rm),
        8 => fnmadd_d(fd, fa, fb, fc, rm),
        9 => fadd_s(fd, fa, fb, rm),
        10 => fsub_s(fd, fa, fb, rm),
        11 => fmul_s(fd, fa, fb, rm),
        12 => fdiv_s(fd, fa, fb, rm),
        13 => fsqrt_s(fd, fa, rm),
        // fmadd.s, fmsub.s, fnmsub.s, fnmadd.s
        14 => fr4(
            [0x43, 0x47, 0x4b, 0x4f][(bits >> 12 & 3) as usize],
            0,
            fc,
            fb,
            fa,
            rm,
            fd,
        ),
        15 => [fsgnj_d, fsgnjn_d, fsgnjx_d][(bits % 3) as usize](fd, fa, fb),
        16 => [fsgnj_s, fsgnjn_s, fsgnjx_s][(bits % 3) as usize](fd, fa, fb),
        17 => fsgnj_d(fd, fa, fa),
        18 => [feq_d, flt_d, fle_d][((bits >> 12) % 3) as usize](xd, fa, fb),
        19 => [feq_s, flt_s, fle_s][((bits >> 12) % 3) as usize](xd, fa, fb),
        20 => fcvt_x_d((bits >> 12) & 3, xd, fa, rm),
        21 => fcvt_x_d((bits >> 12) & 2, xd, fa, rm::RTZ),
        22 => fcvt_x_s((bits >> 12) & 3, xd, fa, rm),
        23 => fcvt_d_x((bits >> 12) & 3, fd, xs, rm),
        24 => fcvt_s_x((bits >> 12) & 3, fd, xs, rm),
        25 => fcvt_s_d(fd, fa, rm),
        26 => fcvt_d_s(fd, fa) | ((rm & 7) << 12),
        27 => fmv_x_d(xd, fa),
        28 => fmv_x_w(xd, fa),
        29 => fmv_d_x(fd, xs),
        30 => fmv_w_x(fd, xs),
        31 => [fmin_d, fmax_d, fmin_s, fmax_s][(bits & 3) as usize](fd, fa, fb),
        32 => [fclass_d, fclass_s][(bits & 1) as usize](xd, fa),
        33 | 34 => fld(fd, A3, off),
        35 => flw(fd, A3, off),
        36 => fsd(fb, A3, off),
        37 => fsw(fb, A3, off),
        // A misaligned access (the interpreter takes it: a trap).
        38 => fld(fd, A3, off + 4 * (bits as i32 & 1) + 2),
        // Clears the accrued flags (then inexact results must raise NX
        // again) or all but NX (host code then runs, and must raise the
        // others), or sets them and the rounding mode.
        39 if bits & 1 == 0 => csrrw(xd, csr::FFLAGS, ZERO),
        39 => csrrci(xd, csr::FFLAGS, 0x1e),
        40 => csrrw(ZERO, csr::FCSR, xs),
        // FS from dirty to initial, or from off or initial to clean or
        // dirty (S1 holds FS's high bit).
        43 => [csrrc, csrrs][(bits & 1) as usize](ZERO, csr::MSTATUS, S1),
        // Integers for the conversions.
        41 => addi(xd, xs, (bits >> 20) as i32 - 2048),
        42 => slli(xd, xs, bits & 63),
        _ => fadd_d(fd, fa, fb, rm::RNE),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// F/D in host code against the interpreter: loops of F/D
    /// instructions over values that take every path, with the accrued
    /// flags set or clear, every rounding mode, FS on or off; after every
    /// `run`, whatever its budget, the whole hart state and memory are
    /// equal.
    #[test]
    fn translated_fp_runs_exactly_like_the_interpreter(
        choices in proptest::collection::vec((any::<u8>(), 0u32..32, 0u32..32, 0u32..32, any::<u32>()), 1..24),
        picks in any::<[u8; 32]>(),
        data in any::<[u8; 32]>(),
        fcsr in 0u64..256,
        fs in prop_oneof![3 => Just(3u64), 1 => Just(1u64), 1 => Just(0u64)],
        iterations in 20u64..120,
        budgets in proptest::collection::vec(1u64..400, 1..8),
    ) {
        let words: Vec<u32> = choices
            .iter()
            .map(|&(c, fd, fa, fb, bits)| fp_instruction(c, fd, fa, fb, bits))
            .collect();
        let setup = |translate: bool| {
            let (mut hart, mut bus) = straight_code(&[], translate, |_| {});
            bus.load_words(CODE, &counted_loop(&words));
            bus.write_u32(TRAP, 0x0000_006f);
            for (k, &p) in data.iter().enumerate() {
                bus.write_u64(DATA + 8 * k as u64, FP_VALUES[usize::from(p) % 32]);
            }
            let mut s = hart.snapshot();
            for (r, &p) in picks.iter().enumerate() {
                s.f[r] = FP_VALUES[usize::from(p) % 32];
            }
            for (k, r) in [A0, A1, A2, T0, T1, T2].into_iter().enumerate() {
                s.x[r as usize] = [7, u64::MAX, 1 << 40, 0x8000_0000, 12345, 3][k];
            }
            s.x[COUNTER as usize] = iterations;
            s.x[S1 as usize] = 0x4000;
            s.csr.frm = (fcsr >> 5) as u8 & 7;
            s.csr.fflags = fcsr as u8 & 31;
            s.csr.mstatus = (s.csr.mstatus & !0x6000) | (fs << 13);
            s.csr.mtvec = TRAP;
            hart.restore(&s);
            (hart, bus)
        };
        let (mut interp, mut bus_i) = setup(false);
        let (mut jit, mut bus_j) = setup(true);
        run_both_in_budgets((&mut jit, &mut bus_j), (&mut interp, &mut bus_i), budgets.iter().cycle().take(40))?;
    }
}
