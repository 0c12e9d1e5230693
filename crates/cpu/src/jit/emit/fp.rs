//! F/D in host code: SSE (and FMA3 where the host has it) for the cases
//! whose result and flags are provably the interpreter's, a call to the
//! interpreter for everything else.
//!
//! The argument is QEMU's "hardfloat" one, also `samsara-fpu`'s `hard`
//! module's: when NX is already accrued and the rounding is to nearest
//! even, a host operation on any inputs whose result is finite and of
//! magnitude strictly above the smallest normal raised no flag RISC-V
//! would record — NV needs an infinite or NaN operand (or a NaN result,
//! which is not finite), DZ and OF an infinite result, UF a tiny one, and
//! NX is set already — and IEEE 754 makes the rounded result the same.
//! Anything else (NX clear, another rounding mode, a result that is zero,
//! tiny, infinite or NaN) takes the slow path: the interpreter runs the
//! instruction, after which the block goes on. Moves, sign injection,
//! loads and stores are bit operations; comparisons go slow only on a
//! NaN; conversions to integers compute their own NX.
//!
//! The host's SSE state is Rust's default, which nothing in the process
//! changes: round to nearest even, exceptions masked, no flush-to-zero and
//! no denormals-are-zero; the conversions to integers use its rounding.
//!
//! FP registers stay in memory (`HartState::f`, addressed from `rdi`).
//! The block remembers, from one instruction to the next, that FS is on
//! and dirty once an instruction has checked or set it: only a call out
//! of the block (a CSR write) can change it.

use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm};
use samsara_isa::{Inst, Op};

use super::{Emitter, RAX};
use crate::state::{CsrFile, HartState};

/// Offsets from `rdi` (`HartState::x`).
const X: usize = std::mem::offset_of!(HartState, x);
const F: i32 = (std::mem::offset_of!(HartState, f) as i64 - X as i64) as i32;
const CSR: i64 = std::mem::offset_of!(HartState, csr) as i64 - X as i64;
const MSTATUS: i32 = (CSR + std::mem::offset_of!(CsrFile, mstatus) as i64) as i32;
const FRM: i32 = (CSR + std::mem::offset_of!(CsrFile, frm) as i64) as i32;
const FFLAGS: i32 = (CSR + std::mem::offset_of!(CsrFile, fflags) as i64) as i32;
/// mstatus.FS (bits 13–14) within mstatus's second byte.
const FS_IN_BYTE1: i8 = 0x60;
const FS_DIRTY: i32 = 0x6000;
const NX: i8 = 1;
/// Rounding modes: to nearest even, and the last one not reserved (RMM).
const RNE: i8 = 0;
const LAST_VALID_RM: i8 = 4;

/// Upper half of a NaN-boxed single.
const BOX: i64 = 0xffff_ffff_0000_0000u64 as i64;
/// A value's bits shifted left by one (sign dropped), minus these, is at
/// most the span below exactly when the magnitude is finite and strictly
/// above the smallest normal.
const D_ABOVE_MIN: i64 = ((0x0010_0000_0000_0000u64 << 1) + 2) as i64;
const D_SPAN: i64 =
    ((0x7fef_ffff_ffff_ffffu64 << 1) - ((0x0010_0000_0000_0000u64 << 1) + 2)) as i64;
const S_ABOVE_MIN: i32 = ((0x0080_0000u32 << 1) + 2) as i32;
const S_SPAN: i32 = ((0x7f7f_ffffu32 << 1) - ((0x0080_0000u32 << 1) + 2)) as i32;

fn freg(r: u8) -> i32 {
    F + i32::from(r & 31) * 8
}

/// Whether the host has FMA3 (fused multiply-add rounding once).
fn host_fma() -> bool {
    std::is_x86_feature_detected!("fma")
}

/// Whether instruction `i` gets host code (with a slow path); the others
/// are called out in runs.
pub(crate) fn native(i: &Inst) -> bool {
    use Op::*;
    // Rounding to nearest even: statically, or dynamically (checked).
    let nearest = matches!(i.rm, 0 | 7);
    match i.op {
        Flw | Fld | Fsw | Fsd => true,
        FsgnjS | FsgnjnS | FsgnjxS | FsgnjD | FsgnjnD | FsgnjxD => true,
        FmvXW | FmvWX | FmvXD | FmvDX => true,
        FeqS | FltS | FleS | FeqD | FltD | FleD => true,
        FaddS | FsubS | FmulS | FdivS | FsqrtS | FaddD | FsubD | FmulD | FdivD | FsqrtD => nearest,
        FmaddS | FmsubS | FnmsubS | FnmaddS | FmaddD | FmsubD | FnmsubD | FnmaddD => {
            nearest && host_fma()
        }
        FcvtDW | FcvtDL | FcvtSD | FcvtDS => nearest,
        // Truncation is what C's casts compile to.
        FcvtWD | FcvtLD => matches!(i.rm, 0 | 1 | 7),
        _ => false,
    }
}

/// The integer registers a natively translated F/D instruction reads and
/// writes (x0 included; callers skip it).
pub(super) fn x_operands(i: &Inst) -> ([Option<u8>; 2], Option<u8>) {
    use Op::*;
    if !native(i) {
        return ([None, None], None);
    }
    match i.op {
        Flw | Fld | Fsw | Fsd | FmvWX | FmvDX | FcvtDW | FcvtDL => ([Some(i.rs1), None], None),
        FmvXW | FmvXD | FeqS | FltS | FleS | FeqD | FltD | FleD | FcvtWD | FcvtLD => {
            ([None, None], Some(i.rd))
        }
        _ => ([None, None], None),
    }
}

/// The way back to the interpreter for one natively translated
/// instruction, emitted after the block's body.
pub(super) struct Slow {
    pub label: DynamicLabel,
    pub resume: DynamicLabel,
    /// Where the instruction's `(pc, Inst)` stays in memory.
    pub at: u64,
    pub k: i32,
}

impl Emitter {
    /// FS must be on (else `slow`, where the interpreter raises
    /// illegal-instruction; for a load or store, the exit before it).
    pub(super) fn fs_on(&mut self, slow: DynamicLabel) {
        if !self.fs_on {
            dynasm!(self.a
                ; .arch x64
                ; test BYTE [rdi + MSTATUS + 1], FS_IN_BYTE1
                ; jz =>slow
            );
            self.fs_on = true;
        }
    }

    /// What the interpreter does after any F/D instruction but a store.
    fn fs_dirty(&mut self) {
        if !self.fs_dirty {
            dynasm!(self.a ; .arch x64 ; or DWORD [rdi + MSTATUS], FS_DIRTY);
            self.fs_dirty = true;
        }
    }

    /// The instruction's rounding mode, if dynamic, is `frm` at most
    /// `most` (else slow): [`RNE`] where the result rounds, [`LAST_VALID_RM`]
    /// where it never does (only a reserved mode then matters).
    fn dynamic_rounding_at_most(&mut self, i: &Inst, most: i8, slow: DynamicLabel) {
        if i.rm == 7 {
            dynasm!(self.a
                ; .arch x64
                ; cmp BYTE [rdi + FRM], most
                ; ja =>slow
            );
        }
    }

    /// NX accrued: the fast path's precondition for inexact operations.
    fn inexact_accrued(&mut self, slow: DynamicLabel) {
        dynasm!(self.a
            ; .arch x64
            ; test BYTE [rdi + FFLAGS], NX
            ; jz =>slow
        );
    }

    /// Single `r` (properly NaN-boxed, else slow) into `xmm{x}`.
    fn single(&mut self, x: u8, r: u8, slow: DynamicLabel) {
        dynasm!(self.a
            ; .arch x64
            ; cmp DWORD [rdi + freg(r) + 4], -1
            ; jne =>slow
            ; movss Rx(x), DWORD [rdi + freg(r)]
        );
    }

    /// `xmm0` (double) into f`rd` if finite and above the smallest normal.
    fn double_result(&mut self, rd: u8, slow: DynamicLabel) {
        dynasm!(self.a
            ; .arch x64
            ; movq rax, xmm0
            ; mov rcx, rax
            ; shl rcx, 1
            ; mov rdx, QWORD D_ABOVE_MIN
            ; sub rcx, rdx
            ; mov rdx, QWORD D_SPAN
            ; cmp rcx, rdx
            ; ja =>slow
            ; mov QWORD [rdi + freg(rd)], rax
        );
    }

    /// `xmm0` (single) into f`rd`, boxed, if finite and above the
    /// smallest normal.
    fn single_result(&mut self, rd: u8, slow: DynamicLabel) {
        dynasm!(self.a
            ; .arch x64
            ; movd eax, xmm0
            ; lea ecx, [rax + rax]
            ; sub ecx, S_ABOVE_MIN
            ; cmp ecx, S_SPAN
            ; ja =>slow
            ; mov rcx, QWORD BOX
            ; or rax, rcx
            ; mov QWORD [rdi + freg(rd)], rax
        );
    }

    /// A natively translated F/D instruction (see [`native`]): host code,
    /// and `slow.label` when the interpreter must run it instead. FP loads
    /// and stores go through [`Emitter::memory`].
    pub(super) fn fp(&mut self, i: &Inst, slow: &Slow) {
        use Op::*;
        let s = slow.label;
        self.fs_on(s);
        match i.op {
            FmvXD => {
                dynasm!(self.a ; .arch x64 ; mov rax, QWORD [rdi + freg(i.rs1)]);
                self.put(i.rd, RAX);
            }
            FmvXW => {
                dynasm!(self.a ; .arch x64 ; movsxd rax, DWORD [rdi + freg(i.rs1)]);
                self.put(i.rd, RAX);
            }
            FmvDX => {
                self.get(RAX, i.rs1);
                dynasm!(self.a ; .arch x64 ; mov QWORD [rdi + freg(i.rd)], rax);
            }
            FmvWX => {
                self.get(RAX, i.rs1);
                dynasm!(self.a
                    ; .arch x64
                    ; mov eax, eax
                    ; mov rcx, QWORD BOX
                    ; or rax, rcx
                    ; mov QWORD [rdi + freg(i.rd)], rax
                );
            }
            FsgnjD | FsgnjnD | FsgnjxD => {
                dynasm!(self.a
                    ; .arch x64
                    ; mov rax, QWORD [rdi + freg(i.rs1)]
                    ; mov rcx, QWORD [rdi + freg(i.rs2)]
                );
                if i.op == FsgnjnD {
                    dynasm!(self.a ; .arch x64 ; not rcx);
                }
                dynasm!(self.a ; .arch x64 ; shr rcx, 63 ; shl rcx, 63);
                if i.op == FsgnjxD {
                    dynasm!(self.a ; .arch x64 ; xor rax, rcx);
                } else {
                    dynasm!(self.a ; .arch x64 ; btr rax, 63 ; or rax, rcx);
                }
                dynasm!(self.a ; .arch x64 ; mov QWORD [rdi + freg(i.rd)], rax);
            }
            FsgnjS | FsgnjnS | FsgnjxS => {
                // Improperly boxed operands read as the canonical NaN: slow.
                dynasm!(self.a
                    ; .arch x64
                    ; cmp DWORD [rdi + freg(i.rs1) + 4], -1
                    ; jne =>s
                    ; cmp DWORD [rdi + freg(i.rs2) + 4], -1
                    ; jne =>s
                    ; mov eax, DWORD [rdi + freg(i.rs1)]
                    ; mov ecx, DWORD [rdi + freg(i.rs2)]
                );
                if i.op == FsgnjnS {
                    dynasm!(self.a ; .arch x64 ; not ecx);
                }
                dynasm!(self.a ; .arch x64 ; and ecx, i32::MIN);
                if i.op == FsgnjxS {
                    dynasm!(self.a ; .arch x64 ; xor eax, ecx);
                } else {
                    dynasm!(self.a ; .arch x64 ; and eax, i32::MAX ; or eax, ecx);
                }
                dynasm!(self.a
                    ; .arch x64
                    ; mov rcx, QWORD BOX
                    ; or rax, rcx
                    ; mov QWORD [rdi + freg(i.rd)], rax
                );
            }
            FeqD | FltD | FleD | FeqS | FltS | FleS => {
                // An unordered comparison (a NaN) may raise NV: slow.
                if matches!(i.op, FeqD | FltD | FleD) {
                    dynasm!(self.a
                        ; .arch x64
                        ; movsd xmm0, QWORD [rdi + freg(i.rs1)]
                        ; ucomisd xmm0, QWORD [rdi + freg(i.rs2)]
                    );
                } else {
                    self.single(0, i.rs1, s);
                    self.single(1, i.rs2, s);
                    dynasm!(self.a ; .arch x64 ; ucomiss xmm0, xmm1);
                }
                dynasm!(self.a ; .arch x64 ; jp =>s);
                match i.op {
                    FeqD | FeqS => dynasm!(self.a ; .arch x64 ; sete al),
                    FltD | FltS => dynasm!(self.a ; .arch x64 ; setb al),
                    _ => dynasm!(self.a ; .arch x64 ; setbe al),
                }
                dynasm!(self.a ; .arch x64 ; movzx eax, al);
                self.put(i.rd, RAX);
            }
            FaddD | FsubD | FmulD | FdivD | FsqrtD => {
                self.dynamic_rounding_at_most(i, RNE, s);
                self.inexact_accrued(s);
                let (a, b) = (freg(i.rs1), freg(i.rs2));
                match i.op {
                    FaddD => {
                        dynasm!(self.a ; .arch x64 ; movsd xmm0, QWORD [rdi + a] ; addsd xmm0, QWORD [rdi + b])
                    }
                    FsubD => {
                        dynasm!(self.a ; .arch x64 ; movsd xmm0, QWORD [rdi + a] ; subsd xmm0, QWORD [rdi + b])
                    }
                    FmulD => {
                        dynasm!(self.a ; .arch x64 ; movsd xmm0, QWORD [rdi + a] ; mulsd xmm0, QWORD [rdi + b])
                    }
                    FdivD => {
                        dynasm!(self.a ; .arch x64 ; movsd xmm0, QWORD [rdi + a] ; divsd xmm0, QWORD [rdi + b])
                    }
                    _ => dynasm!(self.a ; .arch x64 ; sqrtsd xmm0, QWORD [rdi + a]),
                }
                self.double_result(i.rd, s);
            }
            FaddS | FsubS | FmulS | FdivS | FsqrtS => {
                self.dynamic_rounding_at_most(i, RNE, s);
                self.inexact_accrued(s);
                self.single(0, i.rs1, s);
                if i.op != FsqrtS {
                    self.single(1, i.rs2, s);
                }
                match i.op {
                    FaddS => dynasm!(self.a ; .arch x64 ; addss xmm0, xmm1),
                    FsubS => dynasm!(self.a ; .arch x64 ; subss xmm0, xmm1),
                    FmulS => dynasm!(self.a ; .arch x64 ; mulss xmm0, xmm1),
                    FdivS => dynasm!(self.a ; .arch x64 ; divss xmm0, xmm1),
                    _ => dynasm!(self.a ; .arch x64 ; sqrtss xmm0, xmm0),
                }
                self.single_result(i.rd, s);
            }
            FmaddD | FmsubD | FnmsubD | FnmaddD => {
                self.dynamic_rounding_at_most(i, RNE, s);
                self.inexact_accrued(s);
                dynasm!(self.a
                    ; .arch x64
                    ; movsd xmm0, QWORD [rdi + freg(i.rs1)]
                    ; movsd xmm1, QWORD [rdi + freg(i.rs2)]
                    ; movsd xmm2, QWORD [rdi + freg(i.rs3)]
                );
                self.fused(i.op, true);
                self.double_result(i.rd, s);
            }
            FmaddS | FmsubS | FnmsubS | FnmaddS => {
                self.dynamic_rounding_at_most(i, RNE, s);
                self.inexact_accrued(s);
                self.single(0, i.rs1, s);
                self.single(1, i.rs2, s);
                self.single(2, i.rs3, s);
                self.fused(i.op, false);
                self.single_result(i.rd, s);
            }
            FcvtDW | FcvtDL => {
                // From a 32-bit integer exact; from a 64-bit one it may
                // round.
                if i.op == FcvtDL {
                    self.dynamic_rounding_at_most(i, RNE, s);
                    self.inexact_accrued(s);
                } else {
                    self.dynamic_rounding_at_most(i, LAST_VALID_RM, s);
                }
                self.get(RAX, i.rs1);
                dynasm!(self.a ; .arch x64 ; xorps xmm0, xmm0);
                if i.op == FcvtDW {
                    dynasm!(self.a ; .arch x64 ; cvtsi2sd xmm0, eax);
                } else {
                    dynasm!(self.a ; .arch x64 ; cvtsi2sd xmm0, rax);
                }
                dynasm!(self.a ; .arch x64 ; movsd QWORD [rdi + freg(i.rd)], xmm0);
            }
            FcvtDS => {
                // Exact; a NaN (quieted, maybe NV) goes slow.
                self.dynamic_rounding_at_most(i, LAST_VALID_RM, s);
                self.single(0, i.rs1, s);
                dynasm!(self.a
                    ; .arch x64
                    ; cvtss2sd xmm0, xmm0
                    ; ucomisd xmm0, xmm0
                    ; jp =>s
                    ; movsd QWORD [rdi + freg(i.rd)], xmm0
                );
            }
            FcvtSD => {
                self.dynamic_rounding_at_most(i, RNE, s);
                self.inexact_accrued(s);
                dynasm!(self.a
                    ; .arch x64
                    ; movsd xmm0, QWORD [rdi + freg(i.rs1)]
                    ; cvtsd2ss xmm0, xmm0
                );
                self.single_result(i.rd, s);
            }
            FcvtWD | FcvtLD => self.convert_to_integer(i, s),
            other => unreachable!("{other:?} is not translated natively"),
        }
        self.fs_dirty();
    }

    /// `xmm0 = ±(xmm0 * xmm1) ± xmm2`, rounded once.
    fn fused(&mut self, op: Op, double: bool) {
        use Op::*;
        match (op, double) {
            (FmaddD, true) => dynasm!(self.a ; .arch x64 ; vfmadd213sd xmm0, xmm1, xmm2),
            (FmsubD, true) => dynasm!(self.a ; .arch x64 ; vfmsub213sd xmm0, xmm1, xmm2),
            // RISC-V's fnmsub is -(a*b) + c, x86's fnmadd.
            (FnmsubD, true) => dynasm!(self.a ; .arch x64 ; vfnmadd213sd xmm0, xmm1, xmm2),
            (FnmaddD, true) => dynasm!(self.a ; .arch x64 ; vfnmsub213sd xmm0, xmm1, xmm2),
            (FmaddS, false) => dynasm!(self.a ; .arch x64 ; vfmadd213ss xmm0, xmm1, xmm2),
            (FmsubS, false) => dynasm!(self.a ; .arch x64 ; vfmsub213ss xmm0, xmm1, xmm2),
            (FnmsubS, false) => dynasm!(self.a ; .arch x64 ; vfnmadd213ss xmm0, xmm1, xmm2),
            _ => dynasm!(self.a ; .arch x64 ; vfnmsub213ss xmm0, xmm1, xmm2),
        }
    }

    /// fcvt.w.d / fcvt.l.d, truncating or to nearest even: x86's
    /// "integer indefinite" (a NaN, out of range, or that very value)
    /// goes slow; NX is raised here when the conversion was inexact.
    fn convert_to_integer(&mut self, i: &Inst, s: DynamicLabel) {
        let truncate = i.rm == 1;
        if !truncate {
            self.dynamic_rounding_at_most(i, RNE, s);
        }
        let word = i.op == Op::FcvtWD;
        dynasm!(self.a ; .arch x64 ; movsd xmm0, QWORD [rdi + freg(i.rs1)]);
        match (word, truncate) {
            (true, true) => dynasm!(self.a ; .arch x64 ; cvttsd2si eax, xmm0 ; cmp eax, i32::MIN),
            (true, false) => dynasm!(self.a ; .arch x64 ; cvtsd2si eax, xmm0 ; cmp eax, i32::MIN),
            (false, true) => dynasm!(self.a
                ; .arch x64
                ; cvttsd2si rax, xmm0
                ; mov rcx, QWORD i64::MIN
                ; cmp rax, rcx
            ),
            (false, false) => dynasm!(self.a
                ; .arch x64
                ; cvtsd2si rax, xmm0
                ; mov rcx, QWORD i64::MIN
                ; cmp rax, rcx
            ),
        }
        dynasm!(self.a ; .arch x64 ; je =>s ; xorps xmm1, xmm1);
        // Back to double: exact for any integer a double rounds to (up to
        // 2^53 every integer is one; above, every double is an integer).
        if word {
            dynasm!(self.a ; .arch x64 ; cvtsi2sd xmm1, eax ; movsxd rax, eax);
        } else {
            dynasm!(self.a ; .arch x64 ; cvtsi2sd xmm1, rax);
        }
        dynasm!(self.a
            ; .arch x64
            ; ucomisd xmm0, xmm1
            ; je >exact
            ; or BYTE [rdi + FFLAGS], NX
            ; exact:
        );
        self.put(i.rd, RAX);
    }

    /// The value an FP store writes, into `rdx`.
    pub(super) fn fp_store_value(&mut self, i: &Inst) {
        dynasm!(self.a ; .arch x64 ; mov rdx, QWORD [rdi + freg(i.rs2)]);
    }

    /// The loaded bits in `rdx` into f`rd` (a single NaN-boxed).
    pub(super) fn fp_load_result(&mut self, i: &Inst) {
        if i.op == Op::Flw {
            dynasm!(self.a ; .arch x64 ; mov rcx, QWORD BOX ; or rdx, rcx);
        }
        dynasm!(self.a ; .arch x64 ; mov QWORD [rdi + freg(i.rd)], rdx);
        self.fs_dirty();
    }

    /// The slow path of one instruction: the interpreter runs it, then
    /// the block goes on after it (or stops, if it trapped).
    pub(super) fn fp_slow(&mut self, slow: &Slow) {
        dynasm!(self.a ; .arch x64 ; =>slow.label);
        self.called(slow.at, slow.k, 1);
        dynasm!(self.a ; .arch x64 ; jmp =>slow.resume);
    }
}
