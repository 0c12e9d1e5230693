//! The F and D extensions. Arithmetic comes from `samsara-fpu`; this module
//! owns register-file rules: NaN-boxing, FS state, rounding-mode selection,
//! fflags accumulation, sign injection, moves and FP loads/stores.
//!
//! fmsub/fnmsub/fnmadd are computed with the fused `mul_add` by flipping the
//! sign bits of inputs (a*b-c = fma(a,b,-c), -(a*b)+c = fma(-a,b,c),
//! -(a*b)-c = fma(-a,b,-c)). Negating an input NaN is harmless: the result of
//! any operation with a NaN input is the canonical NaN, and the sign bit does
//! not change whether a NaN is signalling, so the flags are unchanged.

use samsara_fpu as fpu;
use samsara_fpu::{Flags, RoundingMode};
use samsara_isa::{Format, Inst, Op};

use crate::bus::Bus;
use crate::csr::mstatus;
use crate::exec::int::sext32;
use crate::hart::{ExecError, Flow, Hart};
use crate::trap::Exception;

/// The canonical single-precision NaN, what an improperly boxed single reads as.
const CANONICAL_NAN_S: u32 = 0x7fc0_0000;
const BOX: u64 = 0xffff_ffff_0000_0000;
const SIGN_S: u32 = 1 << 31;
const SIGN_D: u64 = 1 << 63;

impl Hart {
    /// Single-precision value of f register `r` (unboxed; canonical NaN if
    /// not properly NaN-boxed).
    #[inline]
    fn fs(&self, r: u8) -> u32 {
        let v = self.state.f[usize::from(r & 31)];
        if v & BOX == BOX {
            v as u32
        } else {
            CANONICAL_NAN_S
        }
    }

    #[inline]
    fn fd(&self, r: u8) -> u64 {
        self.state.f[usize::from(r & 31)]
    }

    #[inline]
    fn set_fs(&mut self, r: u8, v: u32) {
        self.state.f[usize::from(r & 31)] = BOX | u64::from(v);
    }

    #[inline]
    fn set_fd(&mut self, r: u8, v: u64) {
        self.state.f[usize::from(r & 31)] = v;
    }

    #[inline]
    fn accrue(&mut self, flags: Flags) {
        self.state.csr.fflags |= flags.0 & 0x1f;
    }

    /// The effective rounding mode: the instruction's, or frm when dynamic.
    fn rounding_mode(&self, i: Inst) -> Option<RoundingMode> {
        let rm = if i.rm == 7 { self.state.csr.frm } else { i.rm };
        RoundingMode::from_bits(rm)
    }

    /// Executes any F/D instruction (including FP loads and stores).
    pub(crate) fn exec_fp<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<Flow, ExecError> {
        let illegal = || ExecError::from(Exception::IllegalInstruction(u64::from(i.raw)));
        if self.state.csr.mstatus & mstatus::FS == 0 {
            return Err(illegal());
        }
        let uses_rm = matches!(
            i.op.format(),
            Format::FR | Format::FR4 | Format::FR1 | Format::FToX | Format::XToF
        );
        let rm = if uses_rm {
            self.rounding_mode(i).ok_or_else(illegal)?
        } else {
            RoundingMode::NearestEven
        };
        let x1 = self.state.x[usize::from(i.rs1 & 31)];
        let (a, b, c) = (self.fs(i.rs1), self.fs(i.rs2), self.fs(i.rs3));
        let (da, db, dc) = (self.fd(i.rs1), self.fd(i.rs2), self.fd(i.rs3));
        let rd = i.rd;
        // Results: `S(v, flags)` to an f register as single, `D` as double,
        // `X` to an integer register.
        enum Out {
            S(u32, Flags),
            D(u64, Flags),
            X(u64, Flags),
        }
        let out = match i.op {
            Op::Flw | Op::Fld => {
                let size = if i.op == Op::Flw { 4 } else { 8 };
                let v = self.load(bus, x1.wrapping_add(i.imm64()), size)?;
                if size == 4 {
                    Out::S(v as u32, Flags(0))
                } else {
                    Out::D(v, Flags(0))
                }
            }
            Op::Fsw | Op::Fsd => {
                let (size, v) = if i.op == Op::Fsw {
                    (4, self.fd(i.rs2) & 0xffff_ffff)
                } else {
                    (8, db)
                };
                self.store(bus, x1.wrapping_add(i.imm64()), size, v)?;
                self.state.pc = self.state.pc.wrapping_add(u64::from(i.len));
                return Ok(Flow::Continue);
            }
            // Single precision.
            Op::FaddS => s(fpu::f32_add(a, b, rm)),
            Op::FsubS => s(fpu::f32_sub(a, b, rm)),
            Op::FmulS => s(fpu::f32_mul(a, b, rm)),
            Op::FdivS => s(fpu::f32_div(a, b, rm)),
            Op::FsqrtS => s(fpu::f32_sqrt(a, rm)),
            Op::FmaddS => s(fpu::f32_mul_add(a, b, c, rm)),
            Op::FmsubS => s(fpu::f32_mul_add(a, b, c ^ SIGN_S, rm)),
            Op::FnmsubS => s(fpu::f32_mul_add(a ^ SIGN_S, b, c, rm)),
            Op::FnmaddS => s(fpu::f32_mul_add(a ^ SIGN_S, b, c ^ SIGN_S, rm)),
            Op::FsgnjS => Out::S((a & !SIGN_S) | (b & SIGN_S), Flags(0)),
            Op::FsgnjnS => Out::S((a & !SIGN_S) | (!b & SIGN_S), Flags(0)),
            Op::FsgnjxS => Out::S(a ^ (b & SIGN_S), Flags(0)),
            Op::FminS => s(fpu::f32_min(a, b)),
            Op::FmaxS => s(fpu::f32_max(a, b)),
            Op::FcvtWS => x(fpu::f32_to_i32(a, rm), |v| v as i64 as u64),
            Op::FcvtWuS => x(fpu::f32_to_u32(a, rm), |v| sext32(u64::from(v))),
            Op::FcvtLS => x(fpu::f32_to_i64(a, rm), |v| v as u64),
            Op::FcvtLuS => x(fpu::f32_to_u64(a, rm), |v| v),
            Op::FmvXW => Out::X(sext32(self.fd(i.rs1)), Flags(0)),
            Op::FclassS => Out::X(u64::from(fpu::f32_classify(a)), Flags(0)),
            Op::FeqS => x(fpu::f32_eq(a, b), u64::from),
            Op::FltS => x(fpu::f32_lt(a, b), u64::from),
            Op::FleS => x(fpu::f32_le(a, b), u64::from),
            Op::FcvtSW => s(fpu::i32_to_f32(x1 as i32, rm)),
            Op::FcvtSWu => s(fpu::u32_to_f32(x1 as u32, rm)),
            Op::FcvtSL => s(fpu::i64_to_f32(x1 as i64, rm)),
            Op::FcvtSLu => s(fpu::u64_to_f32(x1, rm)),
            Op::FmvWX => Out::S(x1 as u32, Flags(0)),
            // Double precision.
            Op::FaddD => d(fpu::f64_add(da, db, rm)),
            Op::FsubD => d(fpu::f64_sub(da, db, rm)),
            Op::FmulD => d(fpu::f64_mul(da, db, rm)),
            Op::FdivD => d(fpu::f64_div(da, db, rm)),
            Op::FsqrtD => d(fpu::f64_sqrt(da, rm)),
            Op::FmaddD => d(fpu::f64_mul_add(da, db, dc, rm)),
            Op::FmsubD => d(fpu::f64_mul_add(da, db, dc ^ SIGN_D, rm)),
            Op::FnmsubD => d(fpu::f64_mul_add(da ^ SIGN_D, db, dc, rm)),
            Op::FnmaddD => d(fpu::f64_mul_add(da ^ SIGN_D, db, dc ^ SIGN_D, rm)),
            Op::FsgnjD => Out::D((da & !SIGN_D) | (db & SIGN_D), Flags(0)),
            Op::FsgnjnD => Out::D((da & !SIGN_D) | (!db & SIGN_D), Flags(0)),
            Op::FsgnjxD => Out::D(da ^ (db & SIGN_D), Flags(0)),
            Op::FminD => d(fpu::f64_min(da, db)),
            Op::FmaxD => d(fpu::f64_max(da, db)),
            Op::FcvtSD => s(fpu::f64_to_f32(da, rm)),
            Op::FcvtDS => d(fpu::f32_to_f64(a)),
            Op::FcvtWD => x(fpu::f64_to_i32(da, rm), |v| v as i64 as u64),
            Op::FcvtWuD => x(fpu::f64_to_u32(da, rm), |v| sext32(u64::from(v))),
            Op::FcvtLD => x(fpu::f64_to_i64(da, rm), |v| v as u64),
            Op::FcvtLuD => x(fpu::f64_to_u64(da, rm), |v| v),
            Op::FmvXD => Out::X(da, Flags(0)),
            Op::FclassD => Out::X(u64::from(fpu::f64_classify(da)), Flags(0)),
            Op::FeqD => x(fpu::f64_eq(da, db), u64::from),
            Op::FltD => x(fpu::f64_lt(da, db), u64::from),
            Op::FleD => x(fpu::f64_le(da, db), u64::from),
            Op::FcvtDW => d(fpu::i32_to_f64(x1 as i32, rm)),
            Op::FcvtDWu => d(fpu::u32_to_f64(x1 as u32, rm)),
            Op::FcvtDL => d(fpu::i64_to_f64(x1 as i64, rm)),
            Op::FcvtDLu => d(fpu::u64_to_f64(x1, rm)),
            Op::FmvDX => Out::D(x1, Flags(0)),
            _ => return Err(illegal()),
        };
        match out {
            Out::S(v, flags) => {
                self.set_fs(rd, v);
                self.accrue(flags);
            }
            Out::D(v, flags) => {
                self.set_fd(rd, v);
                self.accrue(flags);
            }
            Out::X(v, flags) => {
                self.state.x[usize::from(rd & 31)] = v;
                self.accrue(flags);
            }
        }
        // Conservative dirty tracking: every FP instruction that may write an
        // f register or fflags marks the FP state dirty.
        self.mark_fs_dirty();
        self.state.pc = self.state.pc.wrapping_add(u64::from(i.len));
        return Ok(Flow::Continue);

        fn s((v, f): (u32, Flags)) -> Out {
            Out::S(v, f)
        }
        fn d((v, f): (u64, Flags)) -> Out {
            Out::D(v, f)
        }
        fn x<T>((v, f): (T, Flags), conv: impl Fn(T) -> u64) -> Out {
            Out::X(conv(v), f)
        }
    }
}
