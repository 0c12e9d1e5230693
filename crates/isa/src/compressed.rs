//! RVC: expansion of 16-bit instructions to their 32-bit equivalents.
//!
//! Expanding (rather than decoding compressed forms separately) guarantees
//! that a compressed instruction executes exactly like its expansion: there
//! is only one decoder for the operation itself.

/// Bits `hi..=lo` of `h`, shifted down.
#[inline]
fn b(h: u16, hi: u32, lo: u32) -> u32 {
    (u32::from(h) >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// The compressed 3-bit register field `x8..x15`.
#[inline]
fn creg(field: u32) -> u32 {
    8 + field
}

fn sext(value: u32, width: u32) -> i32 {
    let shift = 32 - width;
    ((value << shift) as i32) >> shift
}

fn enc_i(opcode: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

fn enc_s(opcode: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 5) & 0x7f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((imm & 0x1f) << 7)
        | opcode
}

fn enc_r(opcode: u32, rd: u32, f3: u32, rs1: u32, rs2: u32, f7: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

fn enc_b(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 12) & 1) << 31)
        | (((imm >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | (((imm >> 1) & 0xf) << 8)
        | (((imm >> 11) & 1) << 7)
        | 0x63
}

fn enc_j(rd: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 20) & 1) << 31)
        | (((imm >> 1) & 0x3ff) << 21)
        | (((imm >> 11) & 1) << 20)
        | (((imm >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

const LOAD: u32 = 0x03;
const LOAD_FP: u32 = 0x07;
const STORE: u32 = 0x23;
const STORE_FP: u32 = 0x27;
const OP_IMM: u32 = 0x13;
const OP_IMM_32: u32 = 0x1b;
const OP: u32 = 0x33;
const OP_32: u32 = 0x3b;
const JALR: u32 = 0x67;
const LUI: u32 = 0x37;

/// Expands a 16-bit RV64C instruction to its 32-bit equivalent, or `None`
/// for reserved/illegal encodings (including the all-zero parcel).
pub fn expand(h: u16) -> Option<u32> {
    let f3 = b(h, 15, 13);
    let rd = b(h, 11, 7);
    let rs2 = b(h, 6, 2);
    let rdp = creg(b(h, 4, 2));
    let rs1p = creg(b(h, 9, 7));
    // Offsets of the ld/sd/fld/fsd (8-byte) and lw/sw (4-byte) forms.
    let off_d = (b(h, 12, 10) << 3) | (b(h, 6, 5) << 6);
    let off_w = (b(h, 12, 10) << 3) | (b(h, 6, 6) << 2) | (b(h, 5, 5) << 6);
    let imm6 = sext((b(h, 12, 12) << 5) | b(h, 6, 2), 6);
    match (b(h, 1, 0), f3) {
        (0, 0) => {
            // c.addi4spn
            let imm =
                (b(h, 12, 11) << 4) | (b(h, 10, 7) << 6) | (b(h, 6, 6) << 2) | (b(h, 5, 5) << 3);
            (imm != 0).then(|| enc_i(OP_IMM, rdp, 0, 2, imm as i32))
        }
        (0, 1) => Some(enc_i(LOAD_FP, rdp, 3, rs1p, off_d as i32)),
        (0, 2) => Some(enc_i(LOAD, rdp, 2, rs1p, off_w as i32)),
        (0, 3) => Some(enc_i(LOAD, rdp, 3, rs1p, off_d as i32)),
        (0, 4) => None,
        (0, 5) => Some(enc_s(STORE_FP, 3, rs1p, rdp, off_d as i32)),
        (0, 6) => Some(enc_s(STORE, 2, rs1p, rdp, off_w as i32)),
        (0, 7) => Some(enc_s(STORE, 3, rs1p, rdp, off_d as i32)),
        // c.addi (rd = 0 or imm = 0 are hints / c.nop: legal, no effect)
        (1, 0) => Some(enc_i(OP_IMM, rd, 0, rd, imm6)),
        // c.addiw
        (1, 1) => (rd != 0).then(|| enc_i(OP_IMM_32, rd, 0, rd, imm6)),
        // c.li
        (1, 2) => Some(enc_i(OP_IMM, rd, 0, 0, imm6)),
        (1, 3) if rd == 2 => {
            // c.addi16sp
            let imm = sext(
                (b(h, 12, 12) << 9)
                    | (b(h, 6, 6) << 4)
                    | (b(h, 5, 5) << 6)
                    | (b(h, 4, 3) << 7)
                    | (b(h, 2, 2) << 5),
                10,
            );
            (imm != 0).then(|| enc_i(OP_IMM, 2, 0, 2, imm))
        }
        (1, 3) => {
            // c.lui
            (imm6 != 0).then_some(((imm6 as u32) << 12) | (rd << 7) | LUI)
        }
        (1, 4) => {
            let shamt = ((b(h, 12, 12) << 5) | b(h, 6, 2)) as i32;
            match b(h, 11, 10) {
                0 => Some(enc_i(OP_IMM, rs1p, 5, rs1p, shamt)),
                1 => Some(enc_i(OP_IMM, rs1p, 5, rs1p, shamt | 0x400)),
                2 => Some(enc_i(OP_IMM, rs1p, 7, rs1p, imm6)),
                _ => match (b(h, 12, 12), b(h, 6, 5)) {
                    (0, 0) => Some(enc_r(OP, rs1p, 0, rs1p, rdp, 0x20)),
                    (0, 1) => Some(enc_r(OP, rs1p, 4, rs1p, rdp, 0)),
                    (0, 2) => Some(enc_r(OP, rs1p, 6, rs1p, rdp, 0)),
                    (0, 3) => Some(enc_r(OP, rs1p, 7, rs1p, rdp, 0)),
                    (1, 0) => Some(enc_r(OP_32, rs1p, 0, rs1p, rdp, 0x20)),
                    (1, 1) => Some(enc_r(OP_32, rs1p, 0, rs1p, rdp, 0)),
                    _ => None,
                },
            }
        }
        (1, 5) => {
            let imm = sext(
                (b(h, 12, 12) << 11)
                    | (b(h, 11, 11) << 4)
                    | (b(h, 10, 9) << 8)
                    | (b(h, 8, 8) << 10)
                    | (b(h, 7, 7) << 6)
                    | (b(h, 6, 6) << 7)
                    | (b(h, 5, 3) << 1)
                    | (b(h, 2, 2) << 5),
                12,
            );
            Some(enc_j(0, imm))
        }
        (1, 6 | 7) => {
            let imm = sext(
                (b(h, 12, 12) << 8)
                    | (b(h, 11, 10) << 3)
                    | (b(h, 6, 5) << 6)
                    | (b(h, 4, 3) << 1)
                    | (b(h, 2, 2) << 5),
                9,
            );
            Some(enc_b(f3 - 6, rs1p, 0, imm))
        }
        // c.slli (rd = 0 is a hint)
        (2, 0) => {
            let shamt = ((b(h, 12, 12) << 5) | b(h, 6, 2)) as i32;
            Some(enc_i(OP_IMM, rd, 1, rd, shamt))
        }
        (2, 1) => {
            let off = (b(h, 12, 12) << 5) | (b(h, 6, 5) << 3) | (b(h, 4, 2) << 6);
            Some(enc_i(LOAD_FP, rd, 3, 2, off as i32))
        }
        (2, 2) => {
            let off = (b(h, 12, 12) << 5) | (b(h, 6, 4) << 2) | (b(h, 3, 2) << 6);
            (rd != 0).then(|| enc_i(LOAD, rd, 2, 2, off as i32))
        }
        (2, 3) => {
            let off = (b(h, 12, 12) << 5) | (b(h, 6, 5) << 3) | (b(h, 4, 2) << 6);
            (rd != 0).then(|| enc_i(LOAD, rd, 3, 2, off as i32))
        }
        (2, 4) => match (b(h, 12, 12), rd, rs2) {
            (0, 0, 0) => None,
            (0, _, 0) => Some(enc_i(JALR, 0, 0, rd, 0)),
            (0, _, _) => Some(enc_r(OP, rd, 0, 0, rs2, 0)),
            (_, 0, 0) => Some(0x0010_0073),
            (_, _, 0) => Some(enc_i(JALR, 1, 0, rd, 0)),
            _ => Some(enc_r(OP, rd, 0, rd, rs2, 0)),
        },
        (2, 5) => {
            let off = (b(h, 12, 10) << 3) | (b(h, 9, 7) << 6);
            Some(enc_s(STORE_FP, 3, 2, rs2, off as i32))
        }
        (2, 6) => {
            let off = (b(h, 12, 9) << 2) | (b(h, 8, 7) << 6);
            Some(enc_s(STORE, 2, 2, rs2, off as i32))
        }
        (2, 7) => {
            let off = (b(h, 12, 10) << 3) | (b(h, 9, 7) << 6);
            Some(enc_s(STORE, 3, 2, rs2, off as i32))
        }
        _ => None,
    }
}
