//! Fuzz target 3: the block translator against the interpreter (issue 15).
//!
//! The input is the [`cpu`](crate::cpu) target's (mode byte, CSRs,
//! registers, lines/time/device value, RAM image) and builds the same
//! machine twice: one hart with the translator on, tuned to translate a pc
//! on its first (mode bit 5 clear) or second (bit 5 set) arrival and to run
//! one block per `resume`; one hart interpreting. Each has its own bus and
//! RAM. From reset (so the CSR prologue is compared too) the translated
//! hart runs one block, or one interpreted step where it has none; the
//! interpreter then runs as many steps; their stop reasons, full
//! architectural states ([`HartState`]: pc, x, f, every CSR, privilege,
//! reservation, step and exception counts) and bus states must agree after
//! every block, and their RAMs at the end. A mismatch panics naming the
//! field, the pc, the step and the instruction words there.
//!
//! Random bytes seldom make hot code, so mode bit 6 switches to a
//! *generated* mode: the image's first 4 KiB describe code rather than
//! hold it. Each 32-bit word becomes one or two valid instructions (ALU,
//! M-extension, loads and stores on a data page, on the code page itself
//! and on the device page, counted backward loops, branches and jumps,
//! atomics, LR/SC, FP, CSR reads, compressed pairs, system instructions,
//! and now and then the raw word), traps land inside that code, and mode
//! bit 7 turns on Sv39 paging with identity-mapping page tables built by
//! the harness (so S and U code runs with paging on). The rest of the
//! image is data as usual. The seed corpus `fuzz/corpus/cpu_diff/` holds
//! such inputs, in all three modes, paging on and off.
//!
//! The translator exists on x86-64 hosts only; elsewhere `set_translator`
//! refuses and the target has nothing to compare: it returns at once.

use std::cell::Cell;

use samsara_cpu::{HartState, StopReason};

use crate::cpu::{
    CODE, CSR_TABLE, FuzzBus, IMAGE, MMIO_BASE, MTVEC, PROLOGUE, RAM_BASE, RAM_SIZE, SATP, STEPS,
    STVEC, setup,
};

/// Mode bit: translate on the second arrival at a pc (else the first).
const HOT2: u8 = 1 << 5;
/// Mode bit: the image's first 4 KiB describe code (see the module doc).
const GENERATE: u8 = 1 << 6;
/// Mode bit (generated mode): Sv39 paging through the harness's tables.
const PAGING: u8 = 1 << 7;

/// The data page the generated loads and stores use (base register s0).
const DATA: u64 = CODE + 0x1000;
/// Generated code's length limit (one page).
const CODE_BYTES: usize = 0x1000;
/// The page tables of generated mode: root (Sv39 level 2) and level 1.
const ROOT: u64 = RAM_BASE + 0xf000;
const LEVEL1: u64 = RAM_BASE + 0xe000;

/// What the differential runs on one thread have covered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Inputs compared.
    pub inputs: u64,
    /// Of those, inputs in which translated code ran at least one step.
    pub inputs_translated: u64,
    /// Steps run (by each hart, prologue included).
    pub steps: u64,
    /// Of those, steps the translated hart ran in translated code.
    pub steps_translated: u64,
    /// Blocks translated.
    pub blocks: u64,
}

thread_local! {
    static STATS: Cell<DiffStats> = const { Cell::new(DiffStats {
        inputs: 0,
        inputs_translated: 0,
        steps: 0,
        steps_translated: 0,
        blocks: 0,
    }) };
}

/// This thread's [`DiffStats`] since the last call (then reset).
pub fn take_stats() -> DiffStats {
    STATS.with(|s| s.replace(DiffStats::default()))
}

/// Runs one input on both engines; panics on the first difference.
pub fn run(data: &[u8]) {
    let (mut t, mut tbus) = machine(data);
    if !t.set_translator(true) {
        // No translator on this host (not x86-64), or no executable
        // memory: nothing to compare against.
        return;
    }
    let hot = if data.first().copied().unwrap_or(0) & HOT2 != 0 {
        2
    } else {
        1
    };
    t.set_translator_tuning(hot, true);
    let (mut i, mut ibus) = machine(data);

    let end = PROLOGUE + STEPS;
    // Each call makes progress or stops (bounded again below in case the
    // translated hart stalls).
    let mut calls = 0u64;
    while t.state().steps < end && calls < 4 * end {
        calls += 1;
        let before = t.state().steps;
        let block_pc = t.state().pc;
        let rt = t.resume(&mut tbus, end - before);
        let done = t.state().steps - before;
        // A stop other than the step limit may come after the steps run
        // (a WFI): let the interpreter run one more, it must stop there too.
        let budget = if rt == StopReason::StepLimit {
            done
        } else {
            done + 1
        };
        let ri = i.resume(&mut ibus, budget);
        let context = || Context {
            block_pc,
            before,
            done,
            ram: &ibus.ram,
        };
        if rt != ri {
            fail(
                &context(),
                &format!("stop reason: translator {rt:?}, interpreter {ri:?}"),
                t.state().pc,
            );
        }
        let fields = differences(t.state(), i.state());
        if !fields.is_empty() {
            fail(&context(), &fields.join("; "), t.state().pc);
        }
        if (tbus.lines, tbus.time) != (ibus.lines, ibus.time) {
            fail(
                &context(),
                &format!(
                    "bus (lines, time): translator {:#x?}, interpreter {:#x?}",
                    (tbus.lines, tbus.time),
                    (ibus.lines, ibus.time)
                ),
                t.state().pc,
            );
        }
        match rt {
            StopReason::StepLimit | StopReason::Pause => {}
            // What the next `run` would do first (both harts alike).
            StopReason::Wfi => {
                t.check_interrupts(&mut tbus);
                i.check_interrupts(&mut ibus);
            }
            StopReason::DeviceAccess
            | StopReason::Watch
            | StopReason::Breakpoint
            | StopReason::UserSwitch => break,
        }
    }
    if let Some(w) = (0..tbus.ram.len()).find(|&w| tbus.ram[w] != ibus.ram[w]) {
        panic!(
            "engines differ in RAM at {:#x}: translator {:#018x}, interpreter {:#018x} \
             (after {} steps, pc {:#x})",
            RAM_BASE + 8 * w as u64,
            tbus.ram[w],
            ibus.ram[w],
            t.state().steps,
            t.state().pc
        );
    }
    assert!(t.state().steps <= end, "the hart ran past its step budget");
    let stats = t.translator_stats().unwrap_or_default();
    STATS.with(|s| {
        let mut v = s.get();
        v.inputs += 1;
        v.inputs_translated += u64::from(stats.steps_translated > 0);
        v.steps += t.state().steps;
        v.steps_translated += stats.steps_translated;
        v.blocks += stats.blocks;
        s.set(v);
    });
}

/// The machine for `data` (generated mode applied), at reset.
fn machine(data: &[u8]) -> (samsara_cpu::Hart, FuzzBus) {
    let (mut hart, mut bus) = setup(data);
    let mode = data.first().copied().unwrap_or(0);
    if mode & GENERATE != 0 {
        generate(data, mode, &mut hart, &mut bus);
    }
    (hart, bus)
}

/// Where a mismatch happened, for its message.
struct Context<'a> {
    block_pc: u64,
    before: u64,
    done: u64,
    ram: &'a [u64],
}

fn fail(c: &Context<'_>, what: &str, pc: u64) -> ! {
    panic!(
        "translator and interpreter differ: {what}\n  in the block at pc {:#x} entered at step {} \
         ({} steps), now at pc {:#x}; the code there (read at the physical address = pc):{}",
        c.block_pc,
        c.before,
        c.done,
        pc,
        listing(c.ram, c.block_pc, c.done.max(1))
    )
}

/// The instruction words of `steps` instructions from `pc`, as if in
/// sequence (a listing of a block that did not branch).
fn listing(ram: &[u64], mut pc: u64, steps: u64) -> String {
    let mut out = String::new();
    for _ in 0..steps.min(64) {
        let word = word_at(ram, pc);
        out += &format!("\n    {pc:#x}: {word}");
        pc += if word.contains("compressed") { 2 } else { 4 };
    }
    out
}

fn word_at(ram: &[u64], pc: u64) -> String {
    let Some(off) = pc
        .checked_sub(RAM_BASE)
        .filter(|&o| o + 4 <= RAM_SIZE as u64)
    else {
        return "outside RAM".into();
    };
    let bytes: Vec<u8> = ram.iter().flat_map(|w| w.to_le_bytes()).collect();
    let o = off as usize;
    let w = u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    if w & 3 == 3 {
        format!("{w:#010x}")
    } else {
        format!("{:#06x} (compressed)", w & 0xffff)
    }
}

/// Every field in which the two states differ, described (empty if
/// none).
fn differences(t: &HartState, i: &HartState) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! field {
        ($name:expr, $a:expr, $b:expr) => {
            if $a != $b {
                out.push(format!(
                    "{}: translator {:#x?}, interpreter {:#x?}",
                    $name, $a, $b
                ));
            }
        };
    }
    field!("steps", t.steps, i.steps);
    field!("exceptions", t.exceptions, i.exceptions);
    field!("pc", t.pc, i.pc);
    if t.privilege != i.privilege {
        out.push(format!(
            "privilege: translator {:?}, interpreter {:?}",
            t.privilege, i.privilege
        ));
    }
    for r in 0..32 {
        field!(format!("x{r}"), t.x[r], i.x[r]);
    }
    for r in 0..32 {
        field!(format!("f{r}"), t.f[r], i.f[r]);
    }
    let (a, b) = (&t.csr, &i.csr);
    macro_rules! csrs {
        ($($f:ident),*) => {
            $(field!(concat!("csr.", stringify!($f)), a.$f, b.$f);)*
        };
    }
    csrs!(
        mstatus,
        medeleg,
        mideleg,
        mie,
        mip,
        mtvec,
        mcounteren,
        mscratch,
        mepc,
        mcause,
        mtval,
        stvec,
        scounteren,
        sscratch,
        sepc,
        scause,
        stval,
        satp,
        frm,
        fflags,
        pmpcfg,
        pmpaddr,
        instret_offset,
        cycle_offset
    );
    if t.reservation != i.reservation {
        out.push(format!(
            "reservation: translator {:x?}, interpreter {:x?}",
            t.reservation, i.reservation
        ));
    }
    field!("hart_id", t.hart_id, i.hart_id);
    // Any field added to the state later.
    if out.is_empty() && t != i {
        out.push(format!(
            "state (a field not listed): translator {t:x?}, interpreter {i:x?}"
        ));
    }
    out
}

// ---- generated mode ----

fn r_type(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, op: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}

fn i_type(imm: u32, rs1: u32, f3: u32, rd: u32, op: u32) -> u32 {
    ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}

fn s_type(imm: u32, rs2: u32, rs1: u32, f3: u32, op: u32) -> u32 {
    (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op
}

fn b_type(off: i32, rs2: u32, rs1: u32, f3: u32) -> u32 {
    let o = off as u32;
    (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | (((o >> 1) & 0xf) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
}

fn j_type(off: i32, rd: u32) -> u32 {
    let o = off as u32;
    (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

/// Registers the generated code keeps: x7 the device page, x8 (s0) the
/// data page, x9 the code page; x31 counts loops.
const MMIO_REG: u32 = 7;
const DATA_REG: u32 = 8;
const CODE_REG: u32 = 9;
const COUNTER: u32 = 31;

/// A destination register: x10..x31 (never the base registers).
fn rd_of(bits: u32) -> u32 {
    10 + bits % 22
}

/// The instructions (32-bit words, or two compressed ones packed) that
/// describe `w` at byte offset `pos` of the code.
fn instructions(w: u32, pos: usize, out: &mut Vec<u32>) {
    let b = w >> 4;
    let rd = rd_of(b & 31);
    let rs1 = (b >> 5) & 31;
    let rs2 = (b >> 10) & 31;
    let f3 = (b >> 15) & 7;
    let hi = b >> 18; // 10 bits
    // A backward distance that stays inside the code.
    let back = |n: u32| -> i32 { -(4 * (1 + n as i32 % 16)).max(-(pos as i32)) };
    match w & 15 {
        2 => out.push(fp_instruction(b)),
        0 | 1 => {
            let (f7, f3) = match hi % 4 {
                0 => (0, f3),
                1 if f3 == 0 || f3 == 5 => (0x20, f3),
                _ => (1, f3), // M extension
            };
            let op = if hi & 16 != 0 { 0x3b } else { 0x33 };
            out.push(r_type(f7, rs2, rs1, f3, rd, op));
        }
        3 | 4 => {
            let op = if hi & 512 != 0 { 0x1b } else { 0x13 };
            let imm = match f3 {
                1 => hi & if op == 0x13 { 63 } else { 31 },
                5 => (hi & if op == 0x13 { 63 } else { 31 }) | (hi & 64) << 4,
                _ => (b >> 20) & 0xfff,
            };
            out.push(i_type(imm, rs1, f3, rd, op));
        }
        5 => out.push((b & !0xfff) << 4 | rd << 7 | if b & 1 != 0 { 0x37 } else { 0x17 }),
        6..=9 => {
            let store = w & 15 >= 8;
            let (base, off) = match hi % 16 {
                14 => (CODE_REG, (b >> 20) & 0xff8),
                15 => (MMIO_REG, (b >> 20) & 0x38),
                _ => {
                    let misalign = if hi & 32 != 0 { (b >> 20) & 7 } else { 0 };
                    (DATA_REG, ((b >> 20) & 0x7f8) | misalign)
                }
            };
            if store {
                out.push(s_type(off, rs2, base, f3 & 3, 0x23));
            } else {
                out.push(i_type(off, base, f3 % 7, rd, 0x03));
            }
        }
        10 => {
            // A counted loop: addi x31, x31, -1; bne x31, x0, back.
            out.push(i_type(0xfff, COUNTER, 0, COUNTER, 0x13));
            out.push(b_type(back(hi) - 4, 0, COUNTER, 1));
        }
        11 => {
            let f3 = [0, 1, 4, 5, 6, 7][f3 as usize % 6];
            let off = if hi & 1 != 0 {
                back(hi >> 1)
            } else {
                4 * (2 + (hi >> 1) as i32 % 8)
            };
            out.push(b_type(off, 10 + rs2 % 22, 10 + rs1 % 22, f3));
        }
        12 => match hi % 4 {
            0 => out.push(j_type(back(hi >> 2), if rs1 & 1 != 0 { 1 } else { 0 })),
            1 => out.push(j_type(4 * (2 + (hi >> 2) as i32 % 4), 1)),
            // jalr: to the code page plus a small offset (a computed jump).
            _ => out.push(i_type((hi >> 2) & 0xfc, CODE_REG, 0, rd, 0x67)),
        },
        13 => out.push(match (b >> 20) & 7 {
            0 => r_type((hi & 3) << 2, rs2, DATA_REG, 3, rd, 0x2f), // amoadd.d
            1 => r_type(0x04 | ((hi >> 2) & 3), rs2, DATA_REG, 2, rd, 0x2f), // amoswap.w
            2 => r_type(0x08, 0, DATA_REG, 2 + (hi & 1), rd, 0x2f), // lr.w/d
            3 => r_type(0x0c, rs2, DATA_REG, 2 + (hi & 1), rd, 0x2f), // sc.w/d
            4 => {
                const CSRS: [u32; 8] = [0xc00, 0xc01, 0xc02, 0x340, 0x140, 0x300, 0x180, 0x003];
                let csr = CSRS[(hi % 8) as usize];
                // csrrs rd, csr, x0 (a read), or csrrw/csrrs with rs1.
                let (f3, src) = match (hi >> 3) % 4 {
                    0 => (1, rs1),
                    1 => (2, rs1),
                    _ => (2, 0),
                };
                i_type(csr, src, f3, rd, 0x73)
            }
            5 => {
                if hi & 1 != 0 {
                    i_type((b >> 20) & 0x7f8, DATA_REG, 3, rd & 31, 0x07) // fld
                } else {
                    s_type((b >> 20) & 0x7f8, rs2, DATA_REG, 3, 0x27) // fsd
                }
            }
            6 => match hi % 4 {
                0 => r_type(0x01, rs2, rs1, 7, rd, 0x53), // fadd.d, dynamic rm
                1 => r_type(0x71, 0, rs1, 0, rd, 0x53),   // fmv.x.d
                2 => r_type(0x79, 0, rs1, 0, rd, 0x53),   // fmv.d.x
                _ => r_type(0x09, rs2, rs1, 7, rd, 0x53), // fmul.d
            },
            _ => [
                0x0000_0073, // ecall
                0x0010_0073, // ebreak
                0x0ff0_000f, // fence
                0x0000_100f, // fence.i
                0x1200_0073, // sfence.vma
                0x1050_0073, // wfi
                0x1020_0073, // sret
                0x3020_0073, // mret
            ][(hi % 8) as usize],
        }),
        14 => {
            // Two compressed instructions.
            let c = |h: u32| -> u32 {
                let crd = 10 + (h >> 2) % 6; // x10..x15
                match h & 3 {
                    // c.addi rd, imm
                    0 => ((h >> 5) & 1) << 12 | crd << 7 | ((h >> 6) & 31) << 2 | 1,
                    // c.add rd, rs2 (rs2 in x10..x15)
                    1 => 0x9002 | crd << 7 | (10 + (h >> 6) % 6) << 2,
                    // c.ld rd', off(s0)
                    2 => 0x6000 | ((h >> 6) & 7) << 10 | (crd - 8) << 2,
                    // c.sd rs2', off(s0)
                    _ => 0xe000 | ((h >> 6) & 7) << 10 | (crd - 8) << 2,
                }
            };
            out.push(c(b & 0x3fff) | c(b >> 14) << 16);
        }
        _ => out.push(w),
    }
}

/// An F/D instruction from the bits of `b`: arithmetic, fused
/// multiply-adds, conversions, comparisons, sign injection, moves and
/// loads and stores of both precisions, mostly rounding to nearest
/// (statically or dynamically) as compiled code does, sometimes not.
fn fp_instruction(b: u32) -> u32 {
    let (rd, rs1, rs2, rs3) = (b & 31, (b >> 5) & 31, (b >> 10) & 31, (b >> 15) & 31);
    let rm = [0, 7, 0, 7, 1, 2, 7, 0][((b >> 20) & 7) as usize];
    let double = (b >> 23) & 1;
    let op_fp =
        |funct5: u32, rs2: u32, f3: u32| r_type(funct5 << 2 | double, rs2, rs1, f3, rd, 0x53);
    let x_rd = rd_of(rd);
    let to_x =
        |funct5: u32, rs2: u32, f3: u32| r_type(funct5 << 2 | double, rs2, rs1, f3, x_rd, 0x53);
    // 5 bits: the top 4 and one of rs3's.
    let op = ((b >> 24) | ((b >> 19) & 1) << 4) % 24;
    match op {
        0 => op_fp(0x00, rs2, rm), // fadd
        1 => op_fp(0x01, rs2, rm), // fsub
        2 => op_fp(0x02, rs2, rm), // fmul
        3 => op_fp(0x03, rs2, rm), // fdiv
        4 => op_fp(0x0b, 0, rm),   // fsqrt
        5..=8 => {
            // fmadd, fmsub, fnmsub, fnmadd
            let opcode = [0x43, 0x47, 0x4b, 0x4f][(op - 5) as usize];
            rs3 << 27 | double << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | opcode
        }
        9 => op_fp(0x04, rs2, (b >> 20) % 3), // fsgnj, fsgnjn, fsgnjx
        10 => op_fp(0x05, rs2, (b >> 20) & 1), // fmin, fmax
        11 => to_x(0x14, rs2, (b >> 20) % 3), // fle, flt, feq
        // fcvt.s.d / fcvt.d.s
        12 => r_type(
            if double == 1 { 0x21 } else { 0x20 },
            1 - double,
            rs1,
            rm,
            rd,
            0x53,
        ),
        // fcvt.w/wu/l/lu from an f register
        13 => to_x(0x18, (b >> 20) & 3, rm),
        // fcvt to an f register from x rs1 (w/wu/l/lu)
        14 => r_type(0x1a << 2 | double, (b >> 20) & 3, rd_of(rs1), rm, rd, 0x53),
        15 => to_x(0x1c, 0, 0), // fmv.x.w / fmv.x.d
        16 => to_x(0x1c, 0, 1), // fclass
        17 => r_type(0x1e << 2 | double, 0, rd_of(rs1), 0, rd, 0x53), // fmv.w.x / fmv.d.x
        18 | 19 => i_type((b >> 15) & 0x7f8, DATA_REG, 2 + double, rd, 0x07), // flw / fld
        20 => s_type((b >> 15) & 0x7f8, rs2, DATA_REG, 2 + double, 0x27), // fsw / fsd
        // fcvt.w.d / fcvt.l.d truncating (C's casts)
        21 => to_x(0x18, (b >> 20) & 2, 1),
        // fmv.d (fsgnj rd, rs, rs)
        22 => r_type(0x04 << 2 | double, rs1, rs1, 0, rd, 0x53),
        _ => op_fp(0x02, rs2, 0), // fmul, static rne
    }
}

/// Rewrites the machine for generated mode (before the prologue runs).
fn generate(data: &[u8], mode: u8, hart: &mut samsara_cpu::Hart, bus: &mut FuzzBus) {
    let image = data.get(IMAGE..).unwrap_or(&[]);
    let description = &image[..image.len().min(CODE_BYTES)];
    let mut code = Vec::new();
    for word in description.chunks(4) {
        let mut b = [0u8; 4];
        b[..word.len()].copy_from_slice(word);
        let before = code.len();
        instructions(u32::from_le_bytes(b), 4 * before, &mut code);
        if 4 * code.len() > CODE_BYTES - 8 {
            code.truncate(before);
            break;
        }
    }
    let page = ((CODE - RAM_BASE) / 8) as usize;
    bus.ram[page..page + CODE_BYTES / 8].fill(0);
    for (k, w) in code.iter().enumerate() {
        bus.ram[page + k / 2] |= u64::from(*w) << (32 * (k % 2));
    }
    let len = 4 * code.len().max(1) as u64;

    // Traps land in the code; paging per mode bit 7.
    let table = CSR_TABLE / 8;
    let csr = |k: usize| table + k;
    for k in [MTVEC, STVEC] {
        let v = bus.ram[csr(k)];
        bus.ram[csr(k)] = CODE + (((v & 0xffc) % len) & !3) + (v & 1);
    }
    let satp = bus.ram[csr(SATP)];
    let user = mode & 3 == 0;
    if mode & PAGING != 0 {
        let asid = satp & (0xffff << 44);
        bus.ram[csr(SATP)] = (8 << 60) | asid | (ROOT >> 12);
        // V R W X A D, U for U-mode; the input's satp bit 0 clears D
        // (stores fault) and bit 1 clears A.
        let mut leaf = 0xcf | if user { 0x10 } else { 0 };
        if satp & 1 != 0 {
            leaf &= !0x80;
        }
        if satp & 2 != 0 {
            leaf &= !0x40;
        }
        let root = ((ROOT - RAM_BASE) / 8) as usize;
        let level1 = ((LEVEL1 - RAM_BASE) / 8) as usize;
        bus.ram[root..root + 512].fill(0);
        bus.ram[level1..level1 + 512].fill(0);
        // 0..1 GiB (the device page): a gigapage, R W.
        bus.ram[root] = 0xc7 | if user { 0x10 } else { 0 };
        // 2..3 GiB: through level 1, whose first entry maps RAM (2 MiB).
        bus.ram[root + 2] = ((LEVEL1 >> 12) << 10) | 1;
        bus.ram[level1] = ((RAM_BASE >> 12) << 10) | leaf;
    } else {
        bus.ram[csr(SATP)] = 0;
    }
    // mret to the code.
    bus.ram[csr(13)] = CODE;

    hart.set_xreg(MMIO_REG as usize, MMIO_BASE);
    hart.set_xreg(DATA_REG as usize, DATA);
    hart.set_xreg(CODE_REG as usize, CODE);
    let counter = hart.xreg(COUNTER as usize);
    hart.set_xreg(COUNTER as usize, counter & 0x3f);
}

/// A generated-mode input for seed `seed` (the seed corpus): privilege,
/// paging and hotness from the seed, CSRs, registers and code description
/// pseudo-random.
pub fn seed_input(seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let privilege = [0u8, 1, 3][(seed % 3) as usize];
    let paging = if privilege != 3 && (seed / 3) % 2 == 1 {
        PAGING
    } else {
        0
    };
    let hot = if (seed / 6) % 2 == 1 { HOT2 } else { 0 };
    let mut data = vec![GENERATE | paging | hot | privilege];
    // CSRs: mostly quiet (no interrupts, no delegation surprises), with
    // FP on; some inputs keep random values.
    let wild = seed % 5 == 4;
    for k in 0..crate::cpu::CSRS.len() {
        let v = match k {
            _ if wild => next(),
            0 => (1 << 13) | (next() & (1 << 18 | 1 << 19)), // FS initial, SUM/MXR
            5..=7 => next(), // mtvec, stvec, satp: bits the harness uses
            _ => 0,
        };
        data.extend_from_slice(&v.to_le_bytes());
    }
    for r in 1..32 {
        let v = if r % 3 == 0 { next() & 0xff } else { next() };
        data.extend_from_slice(&v.to_le_bytes());
    }
    for _ in 0..3 {
        data.extend_from_slice(&next().to_le_bytes());
    }
    // Code description: mostly ALU, loads, stores and loops.
    let words = 64 + next() % 192;
    for _ in 0..words {
        let w = next() as u32;
        let kind = match w % 32 {
            0..=5 => 0,
            6..=9 => 3,
            10..=13 => 6,
            14..=17 => 8,
            18..=20 => 10,
            21..=22 => 11,
            23 => 12,
            24..=25 => 13,
            26..=27 => 14,
            28 => 5,
            29 => 15,
            _ => 4,
        };
        data.extend_from_slice(&((w & !15) | kind).to_le_bytes());
    }
    // Some data.
    for _ in 0..next() % 64 {
        data.extend_from_slice(&next().to_le_bytes());
    }
    data
}
