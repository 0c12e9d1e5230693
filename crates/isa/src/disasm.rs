//! Disassembly in objdump-like syntax, driven by the same decoded form the
//! executor uses.

use std::fmt;

use crate::{Format, Inst, Op};

const GPR: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

const FPR: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// ABI name of integer register `r` (0..=31; higher bits ignored).
pub fn gpr_name(r: u8) -> &'static str {
    GPR[usize::from(r & 31)]
}

/// ABI name of FP register `r` (0..=31; higher bits ignored).
pub fn fpr_name(r: u8) -> &'static str {
    FPR[usize::from(r & 31)]
}

fn csr_name(csr: u32) -> Option<&'static str> {
    Some(match csr {
        0x001 => "fflags",
        0x002 => "frm",
        0x003 => "fcsr",
        0x100 => "sstatus",
        0x104 => "sie",
        0x105 => "stvec",
        0x106 => "scounteren",
        0x10a => "senvcfg",
        0x140 => "sscratch",
        0x141 => "sepc",
        0x142 => "scause",
        0x143 => "stval",
        0x144 => "sip",
        0x180 => "satp",
        0x300 => "mstatus",
        0x301 => "misa",
        0x302 => "medeleg",
        0x303 => "mideleg",
        0x304 => "mie",
        0x305 => "mtvec",
        0x306 => "mcounteren",
        0x30a => "menvcfg",
        0x320 => "mcountinhibit",
        0x340 => "mscratch",
        0x341 => "mepc",
        0x342 => "mcause",
        0x343 => "mtval",
        0x344 => "mip",
        0x3a0 => "pmpcfg0",
        0x3a2 => "pmpcfg2",
        0x3b0 => "pmpaddr0",
        0xb00 => "mcycle",
        0xb02 => "minstret",
        0xc00 => "cycle",
        0xc01 => "time",
        0xc02 => "instret",
        0xf11 => "mvendorid",
        0xf12 => "marchid",
        0xf13 => "mimpid",
        0xf14 => "mhartid",
        0xf15 => "mconfigptr",
        _ => return None,
    })
}

struct Csr(u32);

impl fmt::Display for Csr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match csr_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

fn rm_suffix(rm: u8) -> &'static str {
    match rm {
        0 => ",rne",
        1 => ",rtz",
        2 => ",rdn",
        3 => ",rup",
        4 => ",rmm",
        _ => "",
    }
}

fn fence_set(bits: i32) -> String {
    let mut s = String::new();
    for (mask, c) in [(8, 'i'), (4, 'o'), (2, 'r'), (1, 'w')] {
        if bits & mask != 0 {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('0');
    }
    s
}

/// An instruction paired with its address, so branch and jump targets print
/// as absolute addresses (objdump style).
#[derive(Clone, Copy, Debug)]
pub struct At {
    inst: Inst,
    pc: Option<u64>,
}

impl Inst {
    /// Display with branch/jump targets resolved against `pc`.
    pub fn at(self, pc: u64) -> At {
        At {
            inst: self,
            pc: Some(pc),
        }
    }
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        At {
            inst: *self,
            pc: None,
        }
        .fmt(f)
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inst;
        let (x, fp) = (gpr_name, fpr_name);
        let target = |f: &mut fmt::Formatter<'_>| match self.pc {
            Some(pc) => write!(f, "{:x}", pc.wrapping_add(i.imm64())),
            None if i.imm >= 0 => write!(f, ".+{}", i.imm),
            None => write!(f, ".-{}", i.imm.unsigned_abs()),
        };
        if i.op == Op::Illegal {
            return if i.len == 2 {
                write!(f, "illegal {:#06x}", i.raw)
            } else {
                write!(f, "illegal {:#010x}", i.raw)
            };
        }
        let m = i.op.mnemonic();
        let rm = rm_suffix(i.rm);
        match i.op.format() {
            Format::R => write!(f, "{m} {},{},{}", x(i.rd), x(i.rs1), x(i.rs2)),
            Format::I => write!(f, "{m} {},{},{}", x(i.rd), x(i.rs1), i.imm),
            Format::Load => write!(f, "{m} {},{}({})", x(i.rd), i.imm, x(i.rs1)),
            Format::Store => write!(f, "{m} {},{}({})", x(i.rs2), i.imm, x(i.rs1)),
            Format::Branch => {
                write!(f, "{m} {},{},", x(i.rs1), x(i.rs2))?;
                target(f)
            }
            Format::U => write!(f, "{m} {},{:#x}", x(i.rd), (i.imm as u32) >> 12),
            Format::Jal => {
                write!(f, "{m} {},", x(i.rd))?;
                target(f)
            }
            Format::None => f.write_str(m),
            Format::Fence => {
                write!(f, "{m} {},{}", fence_set(i.imm >> 4), fence_set(i.imm & 15))
            }
            Format::Csr => write!(f, "{m} {},{},{}", x(i.rd), Csr(i.imm as u32), x(i.rs1)),
            Format::CsrI => write!(f, "{m} {},{},{}", x(i.rd), Csr(i.imm as u32), i.rs1),
            Format::Amo => {
                let order = match i.rm & 3 {
                    3 => ".aqrl",
                    2 => ".aq",
                    1 => ".rl",
                    _ => "",
                };
                write!(f, "{m}{order} {},{},({})", x(i.rd), x(i.rs2), x(i.rs1))
            }
            Format::Lr => {
                let order = match i.rm & 3 {
                    3 => ".aqrl",
                    2 => ".aq",
                    1 => ".rl",
                    _ => "",
                };
                write!(f, "{m}{order} {},({})", x(i.rd), x(i.rs1))
            }
            Format::FLoad => write!(f, "{m} {},{}({})", fp(i.rd), i.imm, x(i.rs1)),
            Format::FStore => write!(f, "{m} {},{}({})", fp(i.rs2), i.imm, x(i.rs1)),
            Format::FR => write!(f, "{m} {},{},{}{rm}", fp(i.rd), fp(i.rs1), fp(i.rs2)),
            Format::FR4 => write!(
                f,
                "{m} {},{},{},{}{rm}",
                fp(i.rd),
                fp(i.rs1),
                fp(i.rs2),
                fp(i.rs3)
            ),
            Format::FR1 => write!(f, "{m} {},{}{rm}", fp(i.rd), fp(i.rs1)),
            Format::FRNoRm => write!(f, "{m} {},{},{}", fp(i.rd), fp(i.rs1), fp(i.rs2)),
            Format::FCmp => write!(f, "{m} {},{},{}", x(i.rd), fp(i.rs1), fp(i.rs2)),
            Format::FToX => write!(f, "{m} {},{}{rm}", x(i.rd), fp(i.rs1)),
            Format::FToXNoRm => write!(f, "{m} {},{}", x(i.rd), fp(i.rs1)),
            Format::XToF => write!(f, "{m} {},{}{rm}", fp(i.rd), x(i.rs1)),
            Format::XToFNoRm => write!(f, "{m} {},{}", fp(i.rd), x(i.rs1)),
            Format::Sfence => write!(f, "{m} {},{}", x(i.rs1), x(i.rs2)),
        }
    }
}
