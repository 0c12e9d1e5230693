//! Decoder/disassembler round trip: for any instruction, parse the
//! disassembly back into operands, re-encode them into the instruction
//! with its operand fields cleared, decode again, and get the same
//! instruction. A disassembler that drops or garbles an operand, or a
//! decoder that puts a field in the wrong place, fails this.

use std::collections::HashMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use samsara_isa::{Format, Inst, Op, decode, expand, fpr_name, gpr_name};

fn reg(name: &str, fp: bool) -> u32 {
    (0..32u8)
        .find(|&r| (if fp { fpr_name(r) } else { gpr_name(r) }) == name)
        .unwrap_or_else(|| panic!("unknown register {name:?}")) as u32
}

/// CSR name -> number, from the disassembler itself (names must be unique).
fn csr_names() -> &'static HashMap<String, u32> {
    static NAMES: OnceLock<HashMap<String, u32>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut m = HashMap::new();
        for csr in 0..4096u32 {
            let text = decode((csr << 20) | 0x1073).to_string(); // csrrw zero,csr,zero
            let name = text.split(',').nth(1).unwrap().to_string();
            assert!(
                m.insert(name.clone(), csr).is_none(),
                "CSR name {name} twice"
            );
        }
        m
    })
}

fn int(s: &str) -> i64 {
    if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).unwrap()
    } else if let Some(hex) = s.strip_prefix("-0x") {
        -i64::from_str_radix(hex, 16).unwrap()
    } else {
        s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
    }
}

/// `.+N` / `.-N` branch targets.
fn rel(s: &str) -> i64 {
    if let Some(n) = s.strip_prefix(".+") {
        int(n)
    } else {
        -int(s.strip_prefix(".-").unwrap())
    }
}

/// `imm(reg)`.
fn mem(s: &str) -> (i64, &str) {
    let (imm, rest) = s.split_once('(').unwrap();
    (int(imm), rest.strip_suffix(')').unwrap())
}

fn rm_of(s: Option<&&str>) -> u32 {
    match s.copied() {
        None => 7,
        Some("rne") => 0,
        Some("rtz") => 1,
        Some("rdn") => 2,
        Some("rup") => 3,
        Some("rmm") => 4,
        Some(other) => panic!("bad rounding mode {other}"),
    }
}

fn fence_bits(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'i' => 8,
            'o' => 4,
            'r' => 2,
            'w' => 1,
            '0' => 0,
            _ => panic!("bad fence set {s}"),
        })
        .sum()
}

const RD: u32 = 0x1f << 7;
const RS1: u32 = 0x1f << 15;
const RS2: u32 = 0x1f << 20;
const RS3: u32 = 0x1f << 27;
const RM: u32 = 7 << 12;
const IMM_I: u32 = 0xfff << 20;
const IMM_S: u32 = (0x7f << 25) | (0x1f << 7);
const IMM_U: u32 = 0xfffff << 12;

fn enc_i(imm: i64) -> u32 {
    (imm as u32 & 0xfff) << 20
}
fn enc_s(imm: i64) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | ((imm & 0x1f) << 7)
}
fn enc_b(imm: i64) -> u32 {
    let imm = imm as u32;
    ((imm >> 12 & 1) << 31)
        | ((imm >> 5 & 0x3f) << 25)
        | ((imm >> 1 & 0xf) << 8)
        | ((imm >> 11 & 1) << 7)
}
fn enc_j(imm: i64) -> u32 {
    let imm = imm as u32;
    ((imm >> 20 & 1) << 31)
        | ((imm >> 1 & 0x3ff) << 21)
        | ((imm >> 11 & 1) << 20)
        | ((imm >> 12 & 0xff) << 12)
}

/// Re-encodes `inst` from its disassembly into the 32-bit word `word`
/// (its encoding, or its expansion if compressed) with the operand fields
/// cleared first.
fn reencode(inst: Inst, word: u32) -> u32 {
    let text = inst.to_string();
    let (mnemonic, operands) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let ops: Vec<&str> = if operands.is_empty() {
        Vec::new()
    } else {
        operands.split(',').collect()
    };
    let x = |k: usize| reg(ops[k], false);
    let f = |k: usize| reg(ops[k], true);
    let shift_mask = match inst.op {
        Op::Slli | Op::Srli | Op::Srai => 0x3f << 20,
        Op::Slliw | Op::Srliw | Op::Sraiw => 0x1f << 20,
        _ => IMM_I,
    };
    let aqrl = |m: &str| match m.rsplit_once('.').map(|(_, s)| s) {
        Some("aqrl") => 3u32 << 25,
        Some("aq") => 2 << 25,
        Some("rl") => 1 << 25,
        _ => 0,
    };
    match inst.op.format() {
        Format::R => (word & !(RD | RS1 | RS2)) | (x(0) << 7) | (x(1) << 15) | (x(2) << 20),
        Format::I => {
            let imm = int(ops[2]);
            let field = if shift_mask == IMM_I {
                enc_i(imm)
            } else {
                (imm as u32) << 20
            };
            (word & !(RD | RS1 | shift_mask)) | (x(0) << 7) | (x(1) << 15) | field
        }
        Format::Load => {
            let (imm, base) = mem(ops[1]);
            (word & !(RD | RS1 | IMM_I)) | (x(0) << 7) | (reg(base, false) << 15) | enc_i(imm)
        }
        Format::Store => {
            let (imm, base) = mem(ops[1]);
            (word & !(RS2 | RS1 | IMM_S)) | (x(0) << 20) | (reg(base, false) << 15) | enc_s(imm)
        }
        Format::Branch => {
            (word & !(RS1 | RS2 | IMM_S | (1 << 31)))
                | (x(0) << 15)
                | (x(1) << 20)
                | enc_b(rel(ops[2]))
        }
        Format::U => (word & !(RD | IMM_U)) | (x(0) << 7) | ((int(ops[1]) as u32) << 12),
        Format::Jal => (word & !(RD | IMM_U)) | (x(0) << 7) | enc_j(rel(ops[1])),
        Format::None => word,
        Format::Fence => {
            (word & !(0xff << 20)) | (fence_bits(ops[0]) << 24) | (fence_bits(ops[1]) << 20)
        }
        Format::Csr | Format::CsrI => {
            let csr = csr_names()
                .get(ops[1])
                .copied()
                .unwrap_or_else(|| int(ops[1]) as u32);
            let src = if inst.op.format() == Format::Csr {
                x(2)
            } else {
                int(ops[2]) as u32
            };
            (word & !(RD | RS1 | IMM_I)) | (x(0) << 7) | (src << 15) | (csr << 20)
        }
        Format::Amo => {
            let base = ops[2].trim_start_matches('(').trim_end_matches(')');
            (word & !(RD | RS1 | RS2 | (3 << 25)))
                | (x(0) << 7)
                | (x(1) << 20)
                | (reg(base, false) << 15)
                | aqrl(mnemonic)
        }
        Format::Lr => {
            let base = ops[1].trim_start_matches('(').trim_end_matches(')');
            (word & !(RD | RS1 | (3 << 25)))
                | (x(0) << 7)
                | (reg(base, false) << 15)
                | aqrl(mnemonic)
        }
        Format::FLoad => {
            let (imm, base) = mem(ops[1]);
            (word & !(RD | RS1 | IMM_I)) | (f(0) << 7) | (reg(base, false) << 15) | enc_i(imm)
        }
        Format::FStore => {
            let (imm, base) = mem(ops[1]);
            (word & !(RS2 | RS1 | IMM_S)) | (f(0) << 20) | (reg(base, false) << 15) | enc_s(imm)
        }
        Format::FR => {
            (word & !(RD | RS1 | RS2 | RM))
                | (f(0) << 7)
                | (f(1) << 15)
                | (f(2) << 20)
                | (rm_of(ops.get(3)) << 12)
        }
        Format::FR4 => {
            (word & !(RD | RS1 | RS2 | RS3 | RM))
                | (f(0) << 7)
                | (f(1) << 15)
                | (f(2) << 20)
                | (f(3) << 27)
                | (rm_of(ops.get(4)) << 12)
        }
        Format::FR1 => {
            (word & !(RD | RS1 | RM)) | (f(0) << 7) | (f(1) << 15) | (rm_of(ops.get(2)) << 12)
        }
        Format::FRNoRm => (word & !(RD | RS1 | RS2)) | (f(0) << 7) | (f(1) << 15) | (f(2) << 20),
        Format::FCmp => (word & !(RD | RS1 | RS2)) | (x(0) << 7) | (f(1) << 15) | (f(2) << 20),
        Format::FToX => {
            (word & !(RD | RS1 | RM)) | (x(0) << 7) | (f(1) << 15) | (rm_of(ops.get(2)) << 12)
        }
        Format::FToXNoRm => (word & !(RD | RS1)) | (x(0) << 7) | (f(1) << 15),
        Format::XToF => {
            (word & !(RD | RS1 | RM)) | (f(0) << 7) | (x(1) << 15) | (rm_of(ops.get(2)) << 12)
        }
        Format::XToFNoRm => (word & !(RD | RS1)) | (f(0) << 7) | (x(1) << 15),
        Format::Sfence => (word & !(RS1 | RS2)) | (x(0) << 15) | (x(1) << 20),
    }
}

/// Everything the executor uses.
fn semantics(i: Inst) -> (Op, u8, u8, u8, u8, u8, i32) {
    let rm = match i.op.format() {
        Format::FR
        | Format::FR4
        | Format::FR1
        | Format::FToX
        | Format::XToF
        | Format::Amo
        | Format::Lr => i.rm,
        _ => 0,
    };
    (i.op, i.rd, i.rs1, i.rs2, i.rs3, rm, i.imm)
}

fn check(inst: Inst, word: u32) -> Result<(), TestCaseError> {
    if inst.op == Op::Illegal {
        return Ok(());
    }
    let again = decode(reencode(inst, word));
    prop_assert_eq!(
        semantics(again),
        semantics(inst),
        "{} ({:#010x}) came back as {}",
        inst,
        word,
        again
    );
    Ok(())
}

/// Major opcodes of RV64GC 32-bit instructions.
const OPCODES: [u32; 21] = [
    0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b, 0x43, 0x47, 0x4b, 0x4f,
    0x53, 0x63, 0x67, 0x6f, 0x73,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn disassembly_round_trips(bits in any::<u32>(), k in 0..OPCODES.len()) {
        let word = (bits & !0x7f) | OPCODES[k];
        check(decode(word), word)?;
    }

    #[test]
    fn compressed_disassembly_round_trips(half in any::<u16>()) {
        if let Some(full) = expand(half) {
            check(decode(u32::from(half)), full)?;
        }
    }
}

#[test]
fn every_compressed_parcel_round_trips() {
    for half in 0..=u16::MAX {
        if let Some(full) = expand(half) {
            check(decode(u32::from(half)), full).unwrap();
        }
    }
}

#[test]
fn the_parser_sees_every_format() {
    // A hand-picked instruction per format, so a format the random words
    // rarely hit is still covered.
    for w in [
        0x00c5_8533u32, // add
        0xfff5_0513,    // addi -1
        0x43f5_5513,    // srai 63
        0x4015_551b,    // sraiw 1
        0x0081_3503,    // ld
        0xfea1_2e23,    // sw -4
        0xfe00_0ee3,    // beq -4
        0x8000_0537,    // lui
        0x8000_006f,    // jal -1 MiB
        0x0ff0_000f,    // fence iorw,iorw
        0x3003_12f3,    // csrrw t0,mstatus,t1
        0x3001_5073,    // csrrwi zero,mstatus,2
        0x06c5_b52f,    // amoadd.d.aqrl
        0x1405_a52f,    // lr.w.aq
        0x0085_3507,    // fld
        0x00a1_3427,    // fsd
        0x02c5_f553,    // fadd.d dyn
        0x68c5_f543,    // fmadd.s
        0x5805_8553,    // fsqrt.s rne
        0x20c5_8553,    // fsgnj.s
        0xa2c5_2553,    // feq.d
        0xc005_9553,    // fcvt.w.s rtz
        0xe205_9553,    // fclass.d
        0xd005_f553,    // fcvt.s.w
        0xf005_0553,    // fmv.w.x
        0x12b5_0073,    // sfence.vma a0,a1
        0x0000_0073,    // ecall
    ] {
        let i = decode(w);
        assert_ne!(i.op, Op::Illegal, "{w:#x}");
        check(i, w).unwrap();
    }
}
