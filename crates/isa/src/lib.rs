//! RV64GC instruction decoding and disassembly.
//!
//! One decoder serves every consumer: the hart's interpreter, the
//! disassembler ([`Inst`]'s `Display`) and any tracing executor. It covers
//! RV64IMAFDC, Zicsr, Zifencei and the privileged instructions (mret, sret,
//! wfi, sfence.vma, ecall, ebreak). Compressed instructions are expanded to
//! their 32-bit equivalents at decode time; [`Inst::len`] records whether the
//! original was 2 or 4 bytes long.

mod compressed;
mod decode;
mod disasm;
mod op;

pub use compressed::expand;
pub use decode::decode;
pub use disasm::{fpr_name, gpr_name};
pub use op::{Format, Op};

/// A decoded instruction: small and `Copy`, designed to sit in a decode cache.
///
/// Field meaning depends on the operation:
/// - `imm`: the sign-extended immediate (I/S/B/U/J forms; U-form already
///   shifted left by 12), the shift amount for shifts, the CSR number for
///   Zicsr, `pred << 4 | succ` for `fence`;
/// - `rm`: the rounding-mode field for FP ops (7 = dynamic), `funct3` for
///   other 32-bit forms, `aq << 1 | rl` for atomics;
/// - `rs1` doubles as the 5-bit unsigned immediate of `csrr*i`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Destination register (integer or FP, depending on `op`).
    pub rd: u8,
    /// First source register.
    pub rs1: u8,
    /// Second source register.
    pub rs2: u8,
    /// Third source register (fused multiply-add only).
    pub rs3: u8,
    /// Rounding mode / funct3 / aq-rl, see the type docs.
    pub rm: u8,
    /// Instruction length in bytes: 2 (compressed) or 4.
    pub len: u8,
    /// Immediate, see the type docs.
    pub imm: i32,
    /// The original instruction bits (16 bits for compressed forms), which
    /// is what `mtval` reports for an illegal instruction.
    pub raw: u32,
}

impl Inst {
    /// An illegal instruction with the given original bits and length.
    pub const fn illegal(raw: u32, len: u8) -> Inst {
        Inst {
            op: Op::Illegal,
            rd: 0,
            rs1: 0,
            rs2: 0,
            rs3: 0,
            rm: 0,
            len,
            imm: 0,
            raw,
        }
    }

    /// Packs the instruction into one `u128` (for caches: a `u128` moves
    /// through general-purpose registers, where a struct copy may go
    /// through the stack). `Inst::unpack(i.pack()) == i` for every decoded `i`.
    #[inline(always)]
    pub const fn pack(self) -> u128 {
        (self.op as u128)
            | ((self.rd as u128) << 8)
            | ((self.rs1 as u128) << 16)
            | ((self.rs2 as u128) << 24)
            | ((self.rs3 as u128) << 32)
            | ((self.rm as u128) << 40)
            | ((self.len as u128) << 48)
            | ((self.imm as u32 as u128) << 64)
            | ((self.raw as u128) << 96)
    }

    /// Inverse of [`Inst::pack`]; an invalid operation byte unpacks as
    /// [`Op::Illegal`].
    #[inline(always)]
    pub const fn unpack(bits: u128) -> Inst {
        let op_byte = bits as u8;
        let op = if (op_byte as usize) < Op::ALL.len() {
            Op::ALL[op_byte as usize]
        } else {
            Op::Illegal
        };
        Inst {
            op,
            rd: (bits >> 8) as u8,
            rs1: (bits >> 16) as u8,
            rs2: (bits >> 24) as u8,
            rs3: (bits >> 32) as u8,
            rm: (bits >> 40) as u8,
            len: (bits >> 48) as u8,
            imm: (bits >> 64) as u32 as i32,
            raw: (bits >> 96) as u32,
        }
    }

    /// The immediate sign-extended to 64 bits, as the executor uses it.
    #[inline(always)]
    pub const fn imm64(self) -> u64 {
        self.imm as i64 as u64
    }
}

/// Length in bytes of the instruction whose first 16-bit parcel is `parcel`:
/// 2 for compressed, else 4 (RV64GC has no longer encodings).
#[inline]
pub const fn instruction_len(parcel: u16) -> u8 {
    if parcel & 3 == 3 { 4 } else { 2 }
}

#[cfg(test)]
mod tests;
