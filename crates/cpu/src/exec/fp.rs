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
use samsara_isa::{Inst, Op};

use crate::bus::Bus;
use crate::csr::mstatus;
use crate::exec::int::sext32;
use crate::hart::{ExecError, Hart};
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
    #[inline]
    fn rounding_mode(&self, i: Inst) -> Option<RoundingMode> {
        let rm = if i.rm == 7 { self.state.csr.frm } else { i.rm };
        RoundingMode::from_bits(rm)
    }

    /// The accrued flags, as the `_acc` entry points of `samsara-fpu` take
    /// them (with NX already accrued they skip the exactness test).
    #[inline]
    fn flags(&self) -> Flags {
        Flags(self.state.csr.fflags)
    }

    /// Sets the accrued flags to `acc`, what an `_acc` entry point returned
    /// (the old flags ORed with the raised ones).
    #[inline]
    fn set_flags(&mut self, acc: Flags) {
        self.state.csr.fflags = acc.0 & 0x1f;
    }

    /// Executes any F/D instruction (including FP loads and stores), all
    /// but the pc update (the caller's: the hot loop keeps pc in a register).
    ///
    /// Each arm reads only the operands it uses; the rounding mode is
    /// resolved (and a reserved one raises illegal-instruction) only by the
    /// operations that take one, before anything else they do.
    #[inline(always)]
    pub(crate) fn exec_fp<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<(), ExecError> {
        let illegal = || ExecError::from(Exception::IllegalInstruction(u64::from(i.raw)));
        if self.state.csr.mstatus & mstatus::FS == 0 {
            return Err(illegal());
        }
        let rd = i.rd;
        macro_rules! rm {
            () => {
                match self.rounding_mode(i) {
                    Some(rm) => rm,
                    None => return Err(illegal()),
                }
            };
        }
        // Operands: single (unboxed), double, integer rs1.
        macro_rules! s1 {
            () => {
                self.fs(i.rs1)
            };
        }
        macro_rules! s2 {
            () => {
                self.fs(i.rs2)
            };
        }
        macro_rules! s3 {
            () => {
                self.fs(i.rs3)
            };
        }
        macro_rules! d1 {
            () => {
                self.fd(i.rs1)
            };
        }
        macro_rules! d2 {
            () => {
                self.fd(i.rs2)
            };
        }
        macro_rules! d3 {
            () => {
                self.fd(i.rs3)
            };
        }
        macro_rules! x1 {
            () => {
                self.state.x[usize::from(i.rs1 & 31)]
            };
        }
        // An `_acc` operation with a rounding mode: the result to an f
        // register as single (`S`) or double (`D`), the flags replaced.
        macro_rules! acc_s {
            ($f:path, $($arg:expr),+) => {{
                let rm = rm!();
                let (v, acc) = $f($($arg),+, rm, self.flags());
                self.set_fs(rd, v);
                self.set_flags(acc);
            }};
        }
        macro_rules! acc_d {
            ($f:path, $($arg:expr),+) => {{
                let rm = rm!();
                let (v, acc) = $f($($arg),+, rm, self.flags());
                self.set_fd(rd, v);
                self.set_flags(acc);
            }};
        }
        // Any other operation: `(value, raised flags)` accrued.
        macro_rules! out_s {
            ($e:expr) => {{
                let (v, f) = $e;
                self.set_fs(rd, v);
                self.accrue(f);
            }};
        }
        macro_rules! out_d {
            ($e:expr) => {{
                let (v, f) = $e;
                self.set_fd(rd, v);
                self.accrue(f);
            }};
        }
        macro_rules! out_x {
            ($e:expr, $conv:expr) => {{
                let (v, f) = $e;
                #[allow(clippy::redundant_closure_call)]
                let v = ($conv)(v);
                self.state.x[usize::from(rd & 31)] = v;
                self.accrue(f);
            }};
        }
        match i.op {
            Op::Flw => {
                let v = self.load(bus, x1!().wrapping_add(i.imm64()), 4)?;
                self.set_fs(rd, v as u32);
            }
            Op::Fld => {
                let v = self.load(bus, x1!().wrapping_add(i.imm64()), 8)?;
                self.set_fd(rd, v);
            }
            Op::Fsw | Op::Fsd => {
                let (size, v) = if i.op == Op::Fsw {
                    (4, d2!() & 0xffff_ffff)
                } else {
                    (8, d2!())
                };
                self.store(bus, x1!().wrapping_add(i.imm64()), size, v)?;
                return Ok(());
            }
            // Single precision.
            Op::FaddS => acc_s!(fpu::f32_add_acc, s1!(), s2!()),
            Op::FsubS => acc_s!(fpu::f32_sub_acc, s1!(), s2!()),
            Op::FmulS => acc_s!(fpu::f32_mul_acc, s1!(), s2!()),
            Op::FdivS => acc_s!(fpu::f32_div_acc, s1!(), s2!()),
            Op::FsqrtS => acc_s!(fpu::f32_sqrt_acc, s1!()),
            Op::FmaddS => acc_s!(fpu::f32_mul_add_acc, s1!(), s2!(), s3!()),
            Op::FmsubS => acc_s!(fpu::f32_mul_add_acc, s1!(), s2!(), s3!() ^ SIGN_S),
            Op::FnmsubS => acc_s!(fpu::f32_mul_add_acc, s1!() ^ SIGN_S, s2!(), s3!()),
            Op::FnmaddS => acc_s!(fpu::f32_mul_add_acc, s1!() ^ SIGN_S, s2!(), s3!() ^ SIGN_S),
            Op::FsgnjS => out_s!(((s1!() & !SIGN_S) | (s2!() & SIGN_S), Flags(0))),
            Op::FsgnjnS => out_s!(((s1!() & !SIGN_S) | (!s2!() & SIGN_S), Flags(0))),
            Op::FsgnjxS => out_s!((s1!() ^ (s2!() & SIGN_S), Flags(0))),
            Op::FminS => out_s!(fpu::f32_min(s1!(), s2!())),
            Op::FmaxS => out_s!(fpu::f32_max(s1!(), s2!())),
            Op::FcvtWS => {
                let rm = rm!();
                out_x!(fpu::f32_to_i32(s1!(), rm), |v: i32| v as i64 as u64)
            }
            Op::FcvtWuS => {
                let rm = rm!();
                out_x!(fpu::f32_to_u32(s1!(), rm), |v: u32| sext32(u64::from(v)))
            }
            Op::FcvtLS => {
                let rm = rm!();
                out_x!(fpu::f32_to_i64(s1!(), rm), |v: i64| v as u64)
            }
            Op::FcvtLuS => {
                let rm = rm!();
                out_x!(fpu::f32_to_u64(s1!(), rm), |v: u64| v)
            }
            Op::FmvXW => out_x!((sext32(d1!()), Flags(0)), |v: u64| v),
            Op::FclassS => out_x!((fpu::f32_classify(s1!()), Flags(0)), u64::from),
            Op::FeqS => out_x!(fpu::f32_eq(s1!(), s2!()), u64::from),
            Op::FltS => out_x!(fpu::f32_lt(s1!(), s2!()), u64::from),
            Op::FleS => out_x!(fpu::f32_le(s1!(), s2!()), u64::from),
            Op::FcvtSW => {
                let rm = rm!();
                out_s!(fpu::i32_to_f32(x1!() as i32, rm))
            }
            Op::FcvtSWu => {
                let rm = rm!();
                out_s!(fpu::u32_to_f32(x1!() as u32, rm))
            }
            Op::FcvtSL => {
                let rm = rm!();
                out_s!(fpu::i64_to_f32(x1!() as i64, rm))
            }
            Op::FcvtSLu => {
                let rm = rm!();
                out_s!(fpu::u64_to_f32(x1!(), rm))
            }
            Op::FmvWX => out_s!((x1!() as u32, Flags(0))),
            // Double precision.
            Op::FaddD => acc_d!(fpu::f64_add_acc, d1!(), d2!()),
            Op::FsubD => acc_d!(fpu::f64_sub_acc, d1!(), d2!()),
            Op::FmulD => acc_d!(fpu::f64_mul_acc, d1!(), d2!()),
            Op::FdivD => acc_d!(fpu::f64_div_acc, d1!(), d2!()),
            Op::FsqrtD => acc_d!(fpu::f64_sqrt_acc, d1!()),
            Op::FmaddD => acc_d!(fpu::f64_mul_add_acc, d1!(), d2!(), d3!()),
            Op::FmsubD => acc_d!(fpu::f64_mul_add_acc, d1!(), d2!(), d3!() ^ SIGN_D),
            Op::FnmsubD => acc_d!(fpu::f64_mul_add_acc, d1!() ^ SIGN_D, d2!(), d3!()),
            Op::FnmaddD => acc_d!(fpu::f64_mul_add_acc, d1!() ^ SIGN_D, d2!(), d3!() ^ SIGN_D),
            Op::FsgnjD => out_d!(((d1!() & !SIGN_D) | (d2!() & SIGN_D), Flags(0))),
            Op::FsgnjnD => out_d!(((d1!() & !SIGN_D) | (!d2!() & SIGN_D), Flags(0))),
            Op::FsgnjxD => out_d!((d1!() ^ (d2!() & SIGN_D), Flags(0))),
            Op::FminD => out_d!(fpu::f64_min(d1!(), d2!())),
            Op::FmaxD => out_d!(fpu::f64_max(d1!(), d2!())),
            Op::FcvtSD => {
                let rm = rm!();
                out_s!(fpu::f64_to_f32(d1!(), rm))
            }
            Op::FcvtDS => {
                let _ = rm!();
                out_d!(fpu::f32_to_f64(s1!()))
            }
            Op::FcvtWD => {
                let rm = rm!();
                out_x!(fpu::f64_to_i32(d1!(), rm), |v: i32| v as i64 as u64)
            }
            Op::FcvtWuD => {
                let rm = rm!();
                out_x!(fpu::f64_to_u32(d1!(), rm), |v: u32| sext32(u64::from(v)))
            }
            Op::FcvtLD => {
                let rm = rm!();
                out_x!(fpu::f64_to_i64(d1!(), rm), |v: i64| v as u64)
            }
            Op::FcvtLuD => {
                let rm = rm!();
                out_x!(fpu::f64_to_u64(d1!(), rm), |v: u64| v)
            }
            Op::FmvXD => out_x!((d1!(), Flags(0)), |v: u64| v),
            Op::FclassD => out_x!((fpu::f64_classify(d1!()), Flags(0)), u64::from),
            Op::FeqD => out_x!(fpu::f64_eq(d1!(), d2!()), u64::from),
            Op::FltD => out_x!(fpu::f64_lt(d1!(), d2!()), u64::from),
            Op::FleD => out_x!(fpu::f64_le(d1!(), d2!()), u64::from),
            Op::FcvtDW => {
                let rm = rm!();
                out_d!(fpu::i32_to_f64(x1!() as i32, rm))
            }
            Op::FcvtDWu => {
                let rm = rm!();
                out_d!(fpu::u32_to_f64(x1!() as u32, rm))
            }
            Op::FcvtDL => {
                let rm = rm!();
                out_d!(fpu::i64_to_f64(x1!() as i64, rm))
            }
            Op::FcvtDLu => {
                let rm = rm!();
                out_d!(fpu::u64_to_f64(x1!(), rm))
            }
            Op::FmvDX => out_d!((x1!(), Flags(0))),
            _ => return Err(illegal()),
        }
        // Conservative dirty tracking: every FP instruction that may write an
        // f register or fflags marks the FP state dirty.
        self.mark_fs_dirty();
        Ok(())
    }
}
