//! The 32-bit decoder. Total: every `u32` decodes to an [`Inst`], invalid
//! encodings to [`Op::Illegal`].

use crate::compressed::expand;
use crate::{Inst, Op};

/// Decodes one instruction. `word` holds the instruction parcel(s) as they
/// appear in memory (little-endian): if its low two bits are not `0b11` it is
/// a 16-bit compressed instruction in the low half and the high half is
/// ignored.
pub fn decode(word: u32) -> Inst {
    if word & 3 != 3 {
        let half = (word & 0xffff) as u16;
        match expand(half) {
            Some(full) => {
                let mut inst = decode32(full);
                inst.len = 2;
                inst.raw = u32::from(half);
                inst
            }
            None => Inst::illegal(u32::from(half), 2),
        }
    } else {
        decode32(word)
    }
}

#[inline]
fn bits(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

fn imm_i(w: u32) -> i32 {
    (w as i32) >> 20
}

fn imm_s(w: u32) -> i32 {
    (((w & 0xfe00_0000) as i32) >> 20) | bits(w, 11, 7) as i32
}

fn imm_b(w: u32) -> i32 {
    (((w & 0x8000_0000) as i32) >> 19)
        | ((bits(w, 7, 7) << 11) | (bits(w, 30, 25) << 5) | (bits(w, 11, 8) << 1)) as i32
}

fn imm_u(w: u32) -> i32 {
    (w & 0xffff_f000) as i32
}

fn imm_j(w: u32) -> i32 {
    (((w & 0x8000_0000) as i32) >> 11)
        | ((bits(w, 19, 12) << 12) | (bits(w, 20, 20) << 11) | (bits(w, 30, 21) << 1)) as i32
}

/// Decodes a 32-bit instruction (low two bits `0b11`).
fn decode32(w: u32) -> Inst {
    let rd = bits(w, 11, 7) as u8;
    let rs1 = bits(w, 19, 15) as u8;
    let rs2 = bits(w, 24, 20) as u8;
    let f3 = bits(w, 14, 12);
    let f7 = bits(w, 31, 25);
    let mk = |op: Op, imm: i32| Inst {
        op,
        rd,
        rs1,
        rs2,
        rs3: 0,
        rm: f3 as u8,
        len: 4,
        imm,
        raw: w,
    };
    let illegal = Inst::illegal(w, 4);
    if w & 3 != 3 {
        return illegal;
    }
    match bits(w, 6, 0) {
        0x37 => mk(Op::Lui, imm_u(w)),
        0x17 => mk(Op::Auipc, imm_u(w)),
        0x6f => mk(Op::Jal, imm_j(w)),
        0x67 if f3 == 0 => mk(Op::Jalr, imm_i(w)),
        0x63 => {
            let op = match f3 {
                0 => Op::Beq,
                1 => Op::Bne,
                4 => Op::Blt,
                5 => Op::Bge,
                6 => Op::Bltu,
                7 => Op::Bgeu,
                _ => return illegal,
            };
            mk(op, imm_b(w))
        }
        0x03 => {
            let op = match f3 {
                0 => Op::Lb,
                1 => Op::Lh,
                2 => Op::Lw,
                3 => Op::Ld,
                4 => Op::Lbu,
                5 => Op::Lhu,
                6 => Op::Lwu,
                _ => return illegal,
            };
            mk(op, imm_i(w))
        }
        0x23 => {
            let op = match f3 {
                0 => Op::Sb,
                1 => Op::Sh,
                2 => Op::Sw,
                3 => Op::Sd,
                _ => return illegal,
            };
            mk(op, imm_s(w))
        }
        0x13 => {
            let shamt = bits(w, 25, 20) as i32;
            let f6 = bits(w, 31, 26);
            match f3 {
                0 => mk(Op::Addi, imm_i(w)),
                2 => mk(Op::Slti, imm_i(w)),
                3 => mk(Op::Sltiu, imm_i(w)),
                4 => mk(Op::Xori, imm_i(w)),
                6 => mk(Op::Ori, imm_i(w)),
                7 => mk(Op::Andi, imm_i(w)),
                1 if f6 == 0 => mk(Op::Slli, shamt),
                5 if f6 == 0 => mk(Op::Srli, shamt),
                5 if f6 == 0x10 => mk(Op::Srai, shamt),
                _ => illegal,
            }
        }
        0x1b => {
            let shamt = bits(w, 24, 20) as i32;
            match (f3, f7) {
                (0, _) => mk(Op::Addiw, imm_i(w)),
                (1, 0) => mk(Op::Slliw, shamt),
                (5, 0) => mk(Op::Srliw, shamt),
                (5, 0x20) => mk(Op::Sraiw, shamt),
                _ => illegal,
            }
        }
        0x33 => {
            let op = match (f7, f3) {
                (0, 0) => Op::Add,
                (0x20, 0) => Op::Sub,
                (0, 1) => Op::Sll,
                (0, 2) => Op::Slt,
                (0, 3) => Op::Sltu,
                (0, 4) => Op::Xor,
                (0, 5) => Op::Srl,
                (0x20, 5) => Op::Sra,
                (0, 6) => Op::Or,
                (0, 7) => Op::And,
                (1, 0) => Op::Mul,
                (1, 1) => Op::Mulh,
                (1, 2) => Op::Mulhsu,
                (1, 3) => Op::Mulhu,
                (1, 4) => Op::Div,
                (1, 5) => Op::Divu,
                (1, 6) => Op::Rem,
                (1, 7) => Op::Remu,
                _ => return illegal,
            };
            mk(op, 0)
        }
        0x3b => {
            let op = match (f7, f3) {
                (0, 0) => Op::Addw,
                (0x20, 0) => Op::Subw,
                (0, 1) => Op::Sllw,
                (0, 5) => Op::Srlw,
                (0x20, 5) => Op::Sraw,
                (1, 0) => Op::Mulw,
                (1, 4) => Op::Divw,
                (1, 5) => Op::Divuw,
                (1, 6) => Op::Remw,
                (1, 7) => Op::Remuw,
                _ => return illegal,
            };
            mk(op, 0)
        }
        // Reserved fields of fence/fence.i are ignored, as the spec asks.
        0x0f => match f3 {
            0 => mk(Op::Fence, bits(w, 27, 20) as i32),
            1 => mk(Op::FenceI, 0),
            _ => illegal,
        },
        0x73 => match f3 {
            0 => match w {
                0x0000_0073 => mk(Op::Ecall, 0),
                0x0010_0073 => mk(Op::Ebreak, 0),
                0x3020_0073 => mk(Op::Mret, 0),
                0x1020_0073 => mk(Op::Sret, 0),
                0x1050_0073 => mk(Op::Wfi, 0),
                _ if f7 == 0x09 && rd == 0 => mk(Op::SfenceVma, 0),
                _ => illegal,
            },
            4 => illegal,
            _ => {
                let op = match f3 {
                    1 => Op::Csrrw,
                    2 => Op::Csrrs,
                    3 => Op::Csrrc,
                    5 => Op::Csrrwi,
                    6 => Op::Csrrsi,
                    _ => Op::Csrrci,
                };
                mk(op, bits(w, 31, 20) as i32)
            }
        },
        0x2f => decode_amo(w, rd, rs1, rs2, f3),
        0x07 => match f3 {
            2 => mk(Op::Flw, imm_i(w)),
            3 => mk(Op::Fld, imm_i(w)),
            _ => illegal,
        },
        0x27 => match f3 {
            2 => mk(Op::Fsw, imm_s(w)),
            3 => mk(Op::Fsd, imm_s(w)),
            _ => illegal,
        },
        opc @ (0x43 | 0x47 | 0x4b | 0x4f) => {
            let double = match bits(w, 26, 25) {
                0 => false,
                1 => true,
                _ => return illegal,
            };
            if !valid_rm(f3) {
                return illegal;
            }
            let op = match (opc, double) {
                (0x43, false) => Op::FmaddS,
                (0x47, false) => Op::FmsubS,
                (0x4b, false) => Op::FnmsubS,
                (0x4f, false) => Op::FnmaddS,
                (0x43, true) => Op::FmaddD,
                (0x47, true) => Op::FmsubD,
                (0x4b, true) => Op::FnmsubD,
                _ => Op::FnmaddD,
            };
            let mut inst = mk(op, 0);
            inst.rs3 = bits(w, 31, 27) as u8;
            inst
        }
        0x53 => decode_op_fp(w, f7, f3, rs2).map_or(illegal, |op| mk(op, 0)),
        _ => illegal,
    }
}

/// Rounding-mode fields 5 and 6 are reserved; 7 (dynamic) is checked against
/// `frm` at execution time.
fn valid_rm(rm: u32) -> bool {
    rm != 5 && rm != 6
}

fn decode_amo(w: u32, rd: u8, rs1: u8, rs2: u8, f3: u32) -> Inst {
    let double = match f3 {
        2 => false,
        3 => true,
        _ => return Inst::illegal(w, 4),
    };
    let op = match (bits(w, 31, 27), double) {
        (0x02, false) if rs2 == 0 => Op::LrW,
        (0x03, false) => Op::ScW,
        (0x01, false) => Op::AmoswapW,
        (0x00, false) => Op::AmoaddW,
        (0x04, false) => Op::AmoxorW,
        (0x0c, false) => Op::AmoandW,
        (0x08, false) => Op::AmoorW,
        (0x10, false) => Op::AmominW,
        (0x14, false) => Op::AmomaxW,
        (0x18, false) => Op::AmominuW,
        (0x1c, false) => Op::AmomaxuW,
        (0x02, true) if rs2 == 0 => Op::LrD,
        (0x03, true) => Op::ScD,
        (0x01, true) => Op::AmoswapD,
        (0x00, true) => Op::AmoaddD,
        (0x04, true) => Op::AmoxorD,
        (0x0c, true) => Op::AmoandD,
        (0x08, true) => Op::AmoorD,
        (0x10, true) => Op::AmominD,
        (0x14, true) => Op::AmomaxD,
        (0x18, true) => Op::AmominuD,
        (0x1c, true) => Op::AmomaxuD,
        _ => return Inst::illegal(w, 4),
    };
    Inst {
        op,
        rd,
        rs1,
        rs2,
        rs3: 0,
        // aq/rl, kept for the disassembler (the executor is sequentially
        // consistent per hart and uses SeqCst host atomics anyway).
        rm: bits(w, 26, 25) as u8,
        len: 4,
        imm: 0,
        raw: w,
    }
}

fn decode_op_fp(w: u32, f7: u32, rm: u32, rs2: u8) -> Option<Op> {
    let _ = w;
    let with_rm = |op: Op| valid_rm(rm).then_some(op);
    match f7 {
        0x00 => with_rm(Op::FaddS),
        0x01 => with_rm(Op::FaddD),
        0x04 => with_rm(Op::FsubS),
        0x05 => with_rm(Op::FsubD),
        0x08 => with_rm(Op::FmulS),
        0x09 => with_rm(Op::FmulD),
        0x0c => with_rm(Op::FdivS),
        0x0d => with_rm(Op::FdivD),
        0x2c if rs2 == 0 => with_rm(Op::FsqrtS),
        0x2d if rs2 == 0 => with_rm(Op::FsqrtD),
        0x10 => [Op::FsgnjS, Op::FsgnjnS, Op::FsgnjxS]
            .get(rm as usize)
            .copied(),
        0x11 => [Op::FsgnjD, Op::FsgnjnD, Op::FsgnjxD]
            .get(rm as usize)
            .copied(),
        0x14 => [Op::FminS, Op::FmaxS].get(rm as usize).copied(),
        0x15 => [Op::FminD, Op::FmaxD].get(rm as usize).copied(),
        0x20 if rs2 == 1 => with_rm(Op::FcvtSD),
        0x21 if rs2 == 0 => with_rm(Op::FcvtDS),
        0x60 => [Op::FcvtWS, Op::FcvtWuS, Op::FcvtLS, Op::FcvtLuS]
            .get(rs2 as usize)
            .copied()
            .and_then(with_rm),
        0x61 => [Op::FcvtWD, Op::FcvtWuD, Op::FcvtLD, Op::FcvtLuD]
            .get(rs2 as usize)
            .copied()
            .and_then(with_rm),
        0x68 => [Op::FcvtSW, Op::FcvtSWu, Op::FcvtSL, Op::FcvtSLu]
            .get(rs2 as usize)
            .copied()
            .and_then(with_rm),
        0x69 => [Op::FcvtDW, Op::FcvtDWu, Op::FcvtDL, Op::FcvtDLu]
            .get(rs2 as usize)
            .copied()
            .and_then(with_rm),
        0x70 if rs2 == 0 => [Op::FmvXW, Op::FclassS].get(rm as usize).copied(),
        0x71 if rs2 == 0 => [Op::FmvXD, Op::FclassD].get(rm as usize).copied(),
        0x50 => [Op::FleS, Op::FltS, Op::FeqS].get(rm as usize).copied(),
        0x51 => [Op::FleD, Op::FltD, Op::FeqD].get(rm as usize).copied(),
        0x78 if rs2 == 0 && rm == 0 => Some(Op::FmvWX),
        0x79 if rs2 == 0 && rm == 0 => Some(Op::FmvDX),
        _ => None,
    }
}
