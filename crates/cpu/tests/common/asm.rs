//! Hand encoders for the instructions the tests use.

#![allow(dead_code)]

pub const ZERO: u32 = 0;
pub const RA: u32 = 1;
pub const SP: u32 = 2;
pub const T0: u32 = 5;
pub const T1: u32 = 6;
pub const T2: u32 = 7;
pub const S0: u32 = 8;
pub const A0: u32 = 10;
pub const A1: u32 = 11;
pub const A2: u32 = 12;
pub const A3: u32 = 13;

pub fn r(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, opc: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opc
}
pub fn i(imm: i32, rs1: u32, f3: u32, rd: u32, opc: u32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opc
}
pub fn s(imm: i32, rs2: u32, rs1: u32, f3: u32, opc: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | opc
}
pub fn b(imm: i32, rs2: u32, rs1: u32, f3: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12 & 1) << 31)
        | ((imm >> 5 & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((imm >> 1 & 0xf) << 8)
        | ((imm >> 11 & 1) << 7)
        | 0x63
}

pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x13)
}
pub fn addiw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x1b)
}
pub fn slli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 1, rd, 0x13)
}
pub fn srai(rd: u32, rs1: u32, sh: u32) -> u32 {
    i((sh | 0x400) as i32, rs1, 5, rd, 0x13)
}
pub fn lui(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x37
}
pub fn auipc(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x17
}
pub fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 0, rd, 0x33)
}
pub fn sub(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 0, rd, 0x33)
}
pub fn xor(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 4, rd, 0x33)
}
pub fn sltu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 3, rd, 0x33)
}
pub fn sraw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 5, rd, 0x3b)
}
pub fn mul(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 0, rd, 0x33)
}
pub fn mulhu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 3, rd, 0x33)
}
pub fn div(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 4, rd, 0x33)
}
pub fn remw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 6, rd, 0x3b)
}
pub fn beq(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 0)
}
pub fn bne(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 1)
}
pub fn blt(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 4)
}
pub fn jal(rd: u32, off: i32) -> u32 {
    let imm = off as u32;
    ((imm >> 20 & 1) << 31)
        | ((imm >> 1 & 0x3ff) << 21)
        | ((imm >> 11 & 1) << 20)
        | ((imm >> 12 & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}
pub fn jalr(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 0, rd, 0x67)
}
pub fn lb(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 0, rd, 0x03)
}
pub fn lh(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 1, rd, 0x03)
}
pub fn lw(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 2, rd, 0x03)
}
pub fn ld(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 3, rd, 0x03)
}
pub fn lbu(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 4, rd, 0x03)
}
pub fn lwu(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 6, rd, 0x03)
}
pub fn sb(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 0, 0x23)
}
pub fn sh(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 1, 0x23)
}
pub fn sw(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 2, 0x23)
}
pub fn sd(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 3, 0x23)
}
pub fn csrrw(rd: u32, csr: u32, rs1: u32) -> u32 {
    i(csr as i32, rs1, 1, rd, 0x73)
}
pub fn csrrs(rd: u32, csr: u32, rs1: u32) -> u32 {
    i(csr as i32, rs1, 2, rd, 0x73)
}
pub fn csrrc(rd: u32, csr: u32, rs1: u32) -> u32 {
    i(csr as i32, rs1, 3, rd, 0x73)
}
pub fn csrrwi(rd: u32, csr: u32, uimm: u32) -> u32 {
    i(csr as i32, uimm, 5, rd, 0x73)
}
pub fn csrrsi(rd: u32, csr: u32, uimm: u32) -> u32 {
    i(csr as i32, uimm, 6, rd, 0x73)
}
pub fn csrr(rd: u32, csr: u32) -> u32 {
    csrrs(rd, csr, 0)
}
pub fn csrw(csr: u32, rs1: u32) -> u32 {
    csrrw(0, csr, rs1)
}
pub fn amo(f5: u32, word: bool, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(f5 << 2, rs2, rs1, if word { 2 } else { 3 }, rd, 0x2f)
}
pub fn lr_w(rd: u32, rs1: u32) -> u32 {
    amo(0x02, true, rd, rs1, 0)
}
pub fn lr_d(rd: u32, rs1: u32) -> u32 {
    amo(0x02, false, rd, rs1, 0)
}
pub fn sc_w(rd: u32, rs1: u32, rs2: u32) -> u32 {
    amo(0x03, true, rd, rs1, rs2)
}
pub fn sc_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    amo(0x03, false, rd, rs1, rs2)
}
pub fn fp(f7: u32, rs2: u32, rs1: u32, rm: u32, rd: u32) -> u32 {
    r(f7, rs2, rs1, rm, rd, 0x53)
}
pub fn flw(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 2, rd, 0x07)
}
pub fn fld(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 3, rd, 0x07)
}
pub fn fsw(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 2, 0x27)
}
pub fn fsd(rs2: u32, rs1: u32, off: i32) -> u32 {
    s(off, rs2, rs1, 3, 0x27)
}
pub const ECALL: u32 = 0x0000_0073;
pub const EBREAK: u32 = 0x0010_0073;
pub const MRET: u32 = 0x3020_0073;
pub const SRET: u32 = 0x1020_0073;
pub const WFI: u32 = 0x1050_0073;
pub const SFENCE_VMA: u32 = 0x1200_0073;
pub const FENCE_I: u32 = 0x0000_100f;
pub const NOP: u32 = 0x0000_0013;

/// `li rd, value` for any 32-bit signed value (lui + addiw).
pub fn li32(rd: u32, value: i32) -> [u32; 2] {
    let lo = (value << 20) >> 20;
    let hi = ((value as i64 - lo as i64) >> 12) as u32 & 0xfffff;
    [lui(rd, hi), addiw(rd, rd, lo)]
}
