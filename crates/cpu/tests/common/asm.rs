//! Hand encoders for the instructions the tests use, and [`Asm`], a tiny
//! assembler with labels (enough to write test programs in Rust).

#![allow(dead_code)]

use std::collections::HashMap;

pub const ZERO: u32 = 0;
pub const RA: u32 = 1;
pub const SP: u32 = 2;
pub const GP: u32 = 3;
pub const TP: u32 = 4;
pub const T0: u32 = 5;
pub const T1: u32 = 6;
pub const T2: u32 = 7;
pub const S0: u32 = 8;
pub const S1: u32 = 9;
pub const A0: u32 = 10;
pub const A1: u32 = 11;
pub const A2: u32 = 12;
pub const A3: u32 = 13;
pub const A4: u32 = 14;
pub const A5: u32 = 15;
pub const A6: u32 = 16;
pub const A7: u32 = 17;
pub const S2: u32 = 18;
pub const S3: u32 = 19;
pub const S4: u32 = 20;
pub const S5: u32 = 21;
pub const S6: u32 = 22;
pub const S7: u32 = 23;
pub const S8: u32 = 24;
pub const S9: u32 = 25;
pub const S10: u32 = 26;
pub const S11: u32 = 27;
pub const T3: u32 = 28;
pub const T4: u32 = 29;
pub const T5: u32 = 30;
pub const T6: u32 = 31;

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
pub fn slti(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 2, rd, 0x13)
}
pub fn sltiu(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 3, rd, 0x13)
}
pub fn xori(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 4, rd, 0x13)
}
pub fn ori(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 6, rd, 0x13)
}
pub fn andi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 7, rd, 0x13)
}
pub fn addiw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x1b)
}
pub fn slli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 1, rd, 0x13)
}
pub fn srli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 5, rd, 0x13)
}
pub fn srai(rd: u32, rs1: u32, sh: u32) -> u32 {
    i((sh | 0x400) as i32, rs1, 5, rd, 0x13)
}
pub fn slliw(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 1, rd, 0x1b)
}
pub fn srliw(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 5, rd, 0x1b)
}
pub fn sraiw(rd: u32, rs1: u32, sh: u32) -> u32 {
    i((sh | 0x400) as i32, rs1, 5, rd, 0x1b)
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
pub fn sll(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 1, rd, 0x33)
}
pub fn slt(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 2, rd, 0x33)
}
pub fn sltu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 3, rd, 0x33)
}
pub fn xor(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 4, rd, 0x33)
}
pub fn srl(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 5, rd, 0x33)
}
pub fn sra(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 5, rd, 0x33)
}
pub fn or(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 6, rd, 0x33)
}
pub fn and(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 7, rd, 0x33)
}
pub fn addw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 0, rd, 0x3b)
}
pub fn subw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 0, rd, 0x3b)
}
pub fn sllw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 1, rd, 0x3b)
}
pub fn srlw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 5, rd, 0x3b)
}
pub fn sraw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 5, rd, 0x3b)
}
pub fn mul(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 0, rd, 0x33)
}
pub fn mulh(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 1, rd, 0x33)
}
pub fn mulhsu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 2, rd, 0x33)
}
pub fn mulhu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 3, rd, 0x33)
}
pub fn div(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 4, rd, 0x33)
}
pub fn divu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 5, rd, 0x33)
}
pub fn rem(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 6, rd, 0x33)
}
pub fn remu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 7, rd, 0x33)
}
pub fn mulw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 0, rd, 0x3b)
}
pub fn divw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 4, rd, 0x3b)
}
pub fn divuw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 5, rd, 0x3b)
}
pub fn remw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 6, rd, 0x3b)
}
pub fn remuw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, 7, rd, 0x3b)
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
pub fn bge(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 5)
}
pub fn bltu(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 6)
}
pub fn bgeu(rs1: u32, rs2: u32, off: i32) -> u32 {
    b(off, rs2, rs1, 7)
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
pub fn lhu(rd: u32, rs1: u32, off: i32) -> u32 {
    i(off, rs1, 5, rd, 0x03)
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
pub fn csrrci(rd: u32, csr: u32, uimm: u32) -> u32 {
    i(csr as i32, uimm, 7, rd, 0x73)
}
pub fn csrr(rd: u32, csr: u32) -> u32 {
    csrrs(rd, csr, 0)
}
pub fn csrw(csr: u32, rs1: u32) -> u32 {
    csrrw(0, csr, rs1)
}
pub fn csrs(csr: u32, rs1: u32) -> u32 {
    csrrs(0, csr, rs1)
}
pub fn csrc(csr: u32, rs1: u32) -> u32 {
    csrrc(0, csr, rs1)
}
/// An AMO with funct5 `f5` (aq = rl = 0).
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
/// funct5 of each AMO.
pub mod amo_op {
    pub const ADD: u32 = 0x00;
    pub const SWAP: u32 = 0x01;
    pub const XOR: u32 = 0x04;
    pub const OR: u32 = 0x08;
    pub const AND: u32 = 0x0c;
    pub const MIN: u32 = 0x10;
    pub const MAX: u32 = 0x14;
    pub const MINU: u32 = 0x18;
    pub const MAXU: u32 = 0x1c;
}
pub fn fp(f7: u32, rs2: u32, rs1: u32, rm: u32, rd: u32) -> u32 {
    r(f7, rs2, rs1, rm, rd, 0x53)
}
pub fn fr4(opc: u32, fmt: u32, rs3: u32, rs2: u32, rs1: u32, rm: u32, rd: u32) -> u32 {
    (rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | opc
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
/// Rounding modes.
pub mod rm {
    pub const RNE: u32 = 0;
    pub const RTZ: u32 = 1;
    pub const RDN: u32 = 2;
    pub const RUP: u32 = 3;
    pub const RMM: u32 = 4;
    pub const DYN: u32 = 7;
}
pub fn fadd_s(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x00, rs2, rs1, rm, rd)
}
pub fn fadd_d(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x01, rs2, rs1, rm, rd)
}
pub fn fsub_s(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x04, rs2, rs1, rm, rd)
}
pub fn fsub_d(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x05, rs2, rs1, rm, rd)
}
pub fn fmul_s(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x08, rs2, rs1, rm, rd)
}
pub fn fmul_d(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x09, rs2, rs1, rm, rd)
}
pub fn fdiv_s(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x0c, rs2, rs1, rm, rd)
}
pub fn fdiv_d(rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    fp(0x0d, rs2, rs1, rm, rd)
}
pub fn fsqrt_s(rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x2c, 0, rs1, rm, rd)
}
pub fn fsqrt_d(rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x2d, 0, rs1, rm, rd)
}
pub fn fmadd_s(rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    fr4(0x43, 0, rs3, rs2, rs1, rm, rd)
}
pub fn fmadd_d(rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    fr4(0x43, 1, rs3, rs2, rs1, rm, rd)
}
pub fn fmsub_d(rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    fr4(0x47, 1, rs3, rs2, rs1, rm, rd)
}
pub fn fnmsub_d(rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    fr4(0x4b, 1, rs3, rs2, rs1, rm, rd)
}
pub fn fnmadd_d(rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    fr4(0x4f, 1, rs3, rs2, rs1, rm, rd)
}
pub fn fsgnj_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x10, rs2, rs1, 0, rd)
}
pub fn fsgnjn_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x10, rs2, rs1, 1, rd)
}
pub fn fsgnjx_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x10, rs2, rs1, 2, rd)
}
pub fn fsgnj_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x11, rs2, rs1, 0, rd)
}
pub fn fsgnjn_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x11, rs2, rs1, 1, rd)
}
pub fn fsgnjx_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x11, rs2, rs1, 2, rd)
}
pub fn fmin_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x14, rs2, rs1, 0, rd)
}
pub fn fmax_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x14, rs2, rs1, 1, rd)
}
pub fn fmin_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x15, rs2, rs1, 0, rd)
}
pub fn fmax_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x15, rs2, rs1, 1, rd)
}
pub fn fcvt_s_d(rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x20, 1, rs1, rm, rd)
}
pub fn fcvt_d_s(rd: u32, rs1: u32) -> u32 {
    fp(0x21, 0, rs1, 0, rd)
}
/// fcvt.{w,wu,l,lu}.s: `kind` 0 = w, 1 = wu, 2 = l, 3 = lu.
pub fn fcvt_x_s(kind: u32, rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x60, kind, rs1, rm, rd)
}
/// fcvt.{w,wu,l,lu}.d.
pub fn fcvt_x_d(kind: u32, rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x61, kind, rs1, rm, rd)
}
/// fcvt.s.{w,wu,l,lu}.
pub fn fcvt_s_x(kind: u32, rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x68, kind, rs1, rm, rd)
}
/// fcvt.d.{w,wu,l,lu}.
pub fn fcvt_d_x(kind: u32, rd: u32, rs1: u32, rm: u32) -> u32 {
    fp(0x69, kind, rs1, rm, rd)
}
pub fn fmv_x_w(rd: u32, rs1: u32) -> u32 {
    fp(0x70, 0, rs1, 0, rd)
}
pub fn fclass_s(rd: u32, rs1: u32) -> u32 {
    fp(0x70, 0, rs1, 1, rd)
}
pub fn fmv_x_d(rd: u32, rs1: u32) -> u32 {
    fp(0x71, 0, rs1, 0, rd)
}
pub fn fclass_d(rd: u32, rs1: u32) -> u32 {
    fp(0x71, 0, rs1, 1, rd)
}
pub fn fmv_w_x(rd: u32, rs1: u32) -> u32 {
    fp(0x78, 0, rs1, 0, rd)
}
pub fn fmv_d_x(rd: u32, rs1: u32) -> u32 {
    fp(0x79, 0, rs1, 0, rd)
}
pub fn feq_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x50, rs2, rs1, 2, rd)
}
pub fn flt_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x50, rs2, rs1, 1, rd)
}
pub fn fle_s(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x50, rs2, rs1, 0, rd)
}
pub fn feq_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x51, rs2, rs1, 2, rd)
}
pub fn flt_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x51, rs2, rs1, 1, rd)
}
pub fn fle_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    fp(0x51, rs2, rs1, 0, rd)
}
pub fn sfence_vma(rs1: u32, rs2: u32) -> u32 {
    r(0x09, rs2, rs1, 0, 0, 0x73)
}
pub const ECALL: u32 = 0x0000_0073;
pub const EBREAK: u32 = 0x0010_0073;
pub const MRET: u32 = 0x3020_0073;
pub const SRET: u32 = 0x1020_0073;
pub const WFI: u32 = 0x1050_0073;
pub const SFENCE_VMA: u32 = 0x1200_0073;
pub const FENCE_I: u32 = 0x0000_100f;
pub const FENCE: u32 = 0x0ff0_000f;
pub const NOP: u32 = 0x0000_0013;

/// `li rd, value` for any 32-bit signed value (lui + addiw).
pub fn li32(rd: u32, value: i32) -> [u32; 2] {
    let lo = (value << 20) >> 20;
    let hi = ((value as i64 - lo as i64) >> 12) as u32 & 0xfffff;
    [lui(rd, hi), addiw(rd, rd, lo)]
}

/// CSR numbers.
pub mod csr {
    pub const FFLAGS: u32 = 0x001;
    pub const FRM: u32 = 0x002;
    pub const FCSR: u32 = 0x003;
    pub const SSTATUS: u32 = 0x100;
    pub const SIE: u32 = 0x104;
    pub const STVEC: u32 = 0x105;
    pub const SCOUNTEREN: u32 = 0x106;
    pub const SSCRATCH: u32 = 0x140;
    pub const SEPC: u32 = 0x141;
    pub const SCAUSE: u32 = 0x142;
    pub const STVAL: u32 = 0x143;
    pub const SIP: u32 = 0x144;
    pub const SATP: u32 = 0x180;
    pub const MSTATUS: u32 = 0x300;
    pub const MISA: u32 = 0x301;
    pub const MEDELEG: u32 = 0x302;
    pub const MIDELEG: u32 = 0x303;
    pub const MIE: u32 = 0x304;
    pub const MTVEC: u32 = 0x305;
    pub const MCOUNTEREN: u32 = 0x306;
    pub const MSCRATCH: u32 = 0x340;
    pub const MEPC: u32 = 0x341;
    pub const MCAUSE: u32 = 0x342;
    pub const MTVAL: u32 = 0x343;
    pub const MIP: u32 = 0x344;
    pub const PMPCFG0: u32 = 0x3a0;
    pub const PMPADDR0: u32 = 0x3b0;
    pub const MCYCLE: u32 = 0xb00;
    pub const MINSTRET: u32 = 0xb02;
    pub const CYCLE: u32 = 0xc00;
    pub const TIME: u32 = 0xc01;
    pub const INSTRET: u32 = 0xc02;
    pub const MVENDORID: u32 = 0xf11;
    pub const MHARTID: u32 = 0xf14;
}

/// A branch or jump waiting for its label.
#[derive(Clone, Copy, Debug)]
enum Fixup {
    /// B-type at this byte offset.
    Branch,
    /// J-type.
    Jal,
    /// auipc + addi pair (la).
    La,
}

/// A little assembler: emits instructions at `base`, resolves labels.
pub struct Asm {
    pub base: u64,
    pub bytes: Vec<u8>,
    labels: HashMap<String, u64>,
    fixups: Vec<(usize, String, Fixup)>,
}

impl Asm {
    pub fn new(base: u64) -> Asm {
        Asm {
            base,
            bytes: Vec::new(),
            labels: HashMap::new(),
            fixups: Vec::new(),
        }
    }

    /// Address of the next instruction.
    pub fn pc(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Emits one 32-bit instruction.
    pub fn w(&mut self, word: u32) -> &mut Asm {
        self.bytes.extend_from_slice(&word.to_le_bytes());
        self
    }

    /// Emits several 32-bit instructions.
    pub fn ws(&mut self, words: &[u32]) -> &mut Asm {
        for &w in words {
            self.w(w);
        }
        self
    }

    /// Emits one 16-bit parcel.
    pub fn h(&mut self, half: u16) -> &mut Asm {
        self.bytes.extend_from_slice(&half.to_le_bytes());
        self
    }

    /// Emits a 64-bit data word (8-aligned by padding with zero bytes first).
    pub fn dword(&mut self, v: u64) -> &mut Asm {
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Pads with nops (or zero bytes if not 4-aligned) to `align` bytes.
    pub fn align(&mut self, align: usize) -> &mut Asm {
        while !self.bytes.len().is_multiple_of(4.min(align)) {
            self.bytes.push(0);
        }
        while !self.bytes.len().is_multiple_of(align) {
            self.w(NOP);
        }
        self
    }

    /// Defines `name` at the current address.
    pub fn label(&mut self, name: &str) -> &mut Asm {
        let old = self.labels.insert(name.to_string(), self.pc());
        assert!(old.is_none(), "label {name} defined twice");
        self
    }

    /// Address of label `name` (must be defined already).
    pub fn addr(&self, name: &str) -> u64 {
        *self
            .labels
            .get(name)
            .unwrap_or_else(|| panic!("no label {name}"))
    }

    fn fixup(&mut self, label: &str, kind: Fixup) {
        self.fixups
            .push((self.bytes.len(), label.to_string(), kind));
    }

    /// Branch (funct3 `f3`) to `label`.
    pub fn branch(&mut self, f3: u32, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.fixup(label, Fixup::Branch);
        self.w(b(0, rs2, rs1, f3))
    }
    pub fn beq(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(0, rs1, rs2, label)
    }
    pub fn bne(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(1, rs1, rs2, label)
    }
    pub fn blt(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(4, rs1, rs2, label)
    }
    pub fn bge(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(5, rs1, rs2, label)
    }
    pub fn bltu(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(6, rs1, rs2, label)
    }
    pub fn bgeu(&mut self, rs1: u32, rs2: u32, label: &str) -> &mut Asm {
        self.branch(7, rs1, rs2, label)
    }
    /// `jal rd, label`.
    pub fn jal(&mut self, rd: u32, label: &str) -> &mut Asm {
        self.fixup(label, Fixup::Jal);
        self.w(jal(rd, 0))
    }
    /// `j label`.
    pub fn j(&mut self, label: &str) -> &mut Asm {
        self.jal(ZERO, label)
    }
    /// `la rd, label` (auipc + addi).
    pub fn la(&mut self, rd: u32, label: &str) -> &mut Asm {
        self.fixup(label, Fixup::La);
        self.w(auipc(rd, 0)).w(addi(rd, rd, 0))
    }
    /// `li rd, value` for any 64-bit value.
    pub fn li(&mut self, rd: u32, value: u64) -> &mut Asm {
        let v = value as i64;
        if v == i64::from(v as i32) {
            let v = v as i32;
            let lo = (v << 20) >> 20;
            if i64::from(v) == i64::from(lo) {
                return self.w(addi(rd, ZERO, lo));
            }
            let [hi, lo_insn] = li32(rd, v);
            self.w(hi);
            if lo != 0 {
                self.w(lo_insn);
            }
            return self;
        }
        let lo = (v << 52) >> 52;
        let hi = v.wrapping_sub(lo) >> 12;
        // Shift out the trailing zeros of `hi` in one go.
        let tz = hi.trailing_zeros().min(63 - 12);
        self.li(rd, (hi >> tz) as u64);
        self.w(slli(rd, rd, 12 + tz));
        if lo != 0 {
            self.w(addi(rd, rd, lo as i32));
        }
        self
    }
    /// `j .` at a label named `name`: where test programs stop.
    pub fn halt(&mut self, name: &str) -> &mut Asm {
        self.label(name);
        self.w(jal(ZERO, 0))
    }

    /// Resolves every label reference and returns the bytes.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        for (at, label, kind) in &self.fixups {
            let target = self.addr(label);
            let pc = self.base + *at as u64;
            let off = target.wrapping_sub(pc) as i64;
            let word = u32::from_le_bytes(out[*at..*at + 4].try_into().unwrap());
            match kind {
                Fixup::Branch => {
                    assert!((-4096..4096).contains(&off), "branch to {label} too far");
                    let new = (b(off as i32, 0, 0, 0) & 0xfe00_0f80) | (word & 0x01ff_f07f);
                    out[*at..*at + 4].copy_from_slice(&new.to_le_bytes());
                }
                Fixup::Jal => {
                    assert!(
                        (-(1 << 20)..(1 << 20)).contains(&off),
                        "jump to {label} too far"
                    );
                    let new = jal(0, off as i32) | (word & 0xfff);
                    out[*at..*at + 4].copy_from_slice(&new.to_le_bytes());
                }
                Fixup::La => {
                    let lo = ((off as i32) << 20) >> 20;
                    let hi = ((off - i64::from(lo)) >> 12) as u32 & 0xfffff;
                    let next = u32::from_le_bytes(out[*at + 4..*at + 8].try_into().unwrap());
                    let w0 = (word & 0xfff) | (hi << 12);
                    let w1 = (next & 0x000f_ffff) | ((lo as u32 & 0xfff) << 20);
                    out[*at..*at + 4].copy_from_slice(&w0.to_le_bytes());
                    out[*at + 4..*at + 8].copy_from_slice(&w1.to_le_bytes());
                }
            }
        }
        out
    }
}
