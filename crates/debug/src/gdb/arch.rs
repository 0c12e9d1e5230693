//! gdb's view of a samsara hart: RV64GC with the privilege level and CSRs.
//!
//! `gdbstub_arch`'s RISC-V description is integer-only, so this one is
//! ours: four features named as gdb's RISC-V target expects them
//! (`org.gnu.gdb.riscv.{cpu,fpu,csr,virtual}`), register numbers as gdb
//! numbers them (CSR *n* is 65 + *n*, `priv` 4161), which is also how
//! `RiscvRegId` maps raw numbers.

use std::fmt::Write as _;
use std::sync::OnceLock;

use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::riscv::reg::id::RiscvRegId;
use samsara_isa::{fpr_name, gpr_name};

/// The CSRs shown besides `fflags`, `frm` and `fcsr` (which belong to the
/// fpu feature), by address, in register-number order.
pub const CSRS: &[(u16, &str)] = &[
    (0x100, "sstatus"),
    (0x104, "sie"),
    (0x105, "stvec"),
    (0x106, "scounteren"),
    (0x10a, "senvcfg"),
    (0x140, "sscratch"),
    (0x141, "sepc"),
    (0x142, "scause"),
    (0x143, "stval"),
    (0x144, "sip"),
    (0x180, "satp"),
    (0x300, "mstatus"),
    (0x301, "misa"),
    (0x302, "medeleg"),
    (0x303, "mideleg"),
    (0x304, "mie"),
    (0x305, "mtvec"),
    (0x306, "mcounteren"),
    (0x30a, "menvcfg"),
    (0x320, "mcountinhibit"),
    (0x340, "mscratch"),
    (0x341, "mepc"),
    (0x342, "mcause"),
    (0x343, "mtval"),
    (0x344, "mip"),
    (0x3a0, "pmpcfg0"),
    (0x3a2, "pmpcfg2"),
    (0x3b0, "pmpaddr0"),
    (0x3b1, "pmpaddr1"),
    (0x3b2, "pmpaddr2"),
    (0x3b3, "pmpaddr3"),
    (0x3b4, "pmpaddr4"),
    (0x3b5, "pmpaddr5"),
    (0x3b6, "pmpaddr6"),
    (0x3b7, "pmpaddr7"),
    (0x3b8, "pmpaddr8"),
    (0x3b9, "pmpaddr9"),
    (0x3ba, "pmpaddr10"),
    (0x3bb, "pmpaddr11"),
    (0x3bc, "pmpaddr12"),
    (0x3bd, "pmpaddr13"),
    (0x3be, "pmpaddr14"),
    (0x3bf, "pmpaddr15"),
    (0xb00, "mcycle"),
    (0xb02, "minstret"),
    (0xc00, "cycle"),
    (0xc01, "time"),
    (0xc02, "instret"),
    (0xf11, "mvendorid"),
    (0xf12, "marchid"),
    (0xf13, "mimpid"),
    (0xf14, "mhartid"),
];

/// The floating-point CSRs, by address: in the fpu feature, 32 bits wide.
pub const FP_CSRS: [(u16, &str); 3] = [(0x001, "fflags"), (0x002, "frm"), (0x003, "fcsr")];

/// gdb's register number of CSR `csr`.
pub const fn csr_regnum(csr: u16) -> usize {
    65 + csr as usize
}

/// gdb's register number of the privilege level.
pub const PRIV_REGNUM: usize = 4161;

/// The target description gdb reads (`qXfer:features:read`).
pub fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut x = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n\
             <target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n\
             <feature name=\"org.gnu.gdb.riscv.cpu\">\n",
        );
        for i in 0..32u8 {
            // gdb's own description calls x8 `fp`.
            let name = if i == 8 { "fp" } else { gpr_name(i) };
            let ty = match i {
                1 => "code_ptr",
                2 | 3 | 8 => "data_ptr",
                _ => "int",
            };
            let _ = writeln!(x, "<reg name=\"{name}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>");
        }
        x.push_str("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\"/>\n</feature>\n");
        x.push_str(
            "<feature name=\"org.gnu.gdb.riscv.fpu\">\n<union id=\"riscv_double\">\
             <field name=\"float\" type=\"ieee_single\"/><field name=\"double\" type=\"ieee_double\"/>\
             </union>\n",
        );
        for i in 0..32u8 {
            let name = fpr_name(i);
            let _ = writeln!(
                x,
                "<reg name=\"{name}\" bitsize=\"64\" type=\"riscv_double\" regnum=\"{}\"/>",
                33 + i
            );
        }
        for (csr, name) in FP_CSRS {
            let _ = writeln!(
                x,
                "<reg name=\"{name}\" bitsize=\"32\" type=\"int\" regnum=\"{}\"/>",
                csr_regnum(csr)
            );
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n");
        for &(csr, name) in CSRS {
            let _ = writeln!(
                x,
                "<reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\" group=\"system\"/>",
                csr_regnum(csr)
            );
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n");
        let _ = writeln!(x, "<reg name=\"priv\" bitsize=\"8\" type=\"int\" regnum=\"{PRIV_REGNUM}\"/>");
        x.push_str("</feature>\n</target>\n");
        x
    })
}

/// `gdbstub`'s handle on the architecture.
pub enum Rv64Samsara {}

impl Arch for Rv64Samsara {
    type Usize = u64;
    type Registers = HartRegisters;
    type BreakpointKind = usize;
    type RegId = RiscvRegId<u64>;

    fn target_description_xml() -> Option<&'static str> {
        Some(target_xml())
    }
}

/// One hart's registers, in gdb's order (the `g` packet).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HartRegisters {
    pub x: [u64; 32],
    pub pc: u64,
    pub f: [u64; 32],
    /// `fflags`, `frm`, `fcsr`.
    pub fp_csrs: [u32; 3],
    /// The values of [`CSRS`], in order; `None`: unavailable here.
    pub csrs: Vec<Option<u64>>,
    pub privilege: u8,
}

impl Registers for HartRegisters {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        let mut out: Vec<Option<u8>> = Vec::with_capacity(1024);
        let mut bytes = |b: &[u8]| out.extend(b.iter().map(|&b| Some(b)));
        self.x.iter().for_each(|v| bytes(&v.to_le_bytes()));
        bytes(&self.pc.to_le_bytes());
        self.f.iter().for_each(|v| bytes(&v.to_le_bytes()));
        self.fp_csrs.iter().for_each(|v| bytes(&v.to_le_bytes()));
        for i in 0..CSRS.len() {
            match self.csrs.get(i).copied().flatten() {
                Some(v) => out.extend(v.to_le_bytes().map(Some)),
                None => out.extend([None; 8]),
            }
        }
        out.push(Some(self.privilege));
        out.into_iter().for_each(&mut write_byte);
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let mut words = bytes.chunks(8);
        let mut next = |n: usize| -> Result<u64, ()> {
            let w = words.next().ok_or(())?;
            let mut v = [0u8; 8];
            v[..n.min(w.len())].copy_from_slice(&w[..n.min(w.len())]);
            Ok(u64::from_le_bytes(v))
        };
        for r in &mut self.x {
            *r = next(8)?;
        }
        self.pc = next(8)?;
        for r in &mut self.f {
            *r = next(8)?;
        }
        // The rest is not parsed: a `G` packet is refused unless x, pc and
        // f are unchanged, and gdb only writes back what it read.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_list_is_in_register_order_without_duplicates() {
        let mut last = 3;
        for &(csr, _) in CSRS {
            assert!(csr > last, "CSR {csr:#x} out of order");
            last = csr;
        }
        let xml = target_xml();
        assert!(xml.contains("<reg name=\"satp\" bitsize=\"64\" type=\"int\" regnum=\"449\""));
        assert!(xml.contains("regnum=\"4161\""));
    }

    #[test]
    fn g_packet_holds_every_described_register() {
        let regs = HartRegisters {
            csrs: vec![Some(0); CSRS.len()],
            ..Default::default()
        };
        let mut n = 0;
        regs.gdb_serialize(|_| n += 1);
        assert_eq!(n, 33 * 8 + 32 * 8 + 3 * 4 + CSRS.len() * 8 + 1);
    }
}
