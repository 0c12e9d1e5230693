//! The reference path: every operation computed by Berkeley SoftFloat 3 built
//! with its `RISCV` specialization — the same library and specialization Spike
//! uses — with no host floating point involved.
//!
//! The functions here have exactly the same names, signatures and results as
//! the crate-root API; the crate root only adds the host fast path in front of
//! them. They are public so tests and benchmarks can compare both paths, and
//! so a caller that wants the slow-but-obviously-correct path can use it.
//!
//! # Thread safety
//!
//! SoftFloat keeps its rounding mode and its sticky exception flags in global
//! variables (`softfloat_roundingMode`, `softfloat_exceptionFlags`). The
//! `softfloat-sys` build script defines `THREAD_LOCAL` as `_Thread_local`
//! (C11) when compiling SoftFloat, so both are per-OS-thread variables, and it
//! reaches them only through small C helpers compiled in the same unit of
//! definitions (Rust cannot name a C `_Thread_local` directly). Every
//! operation here, on the calling thread and without yielding in between,
//! (1) writes the rounding mode, (2) clears the flags, (3) calls SoftFloat,
//! (4) reads the flags. Nothing else on that thread can run between (1) and
//! (4), and other threads (other harts) see their own copies, so no state
//! leaks between harts and no lock is needed. The `thread_local_softfloat_state` test
//! in `tests/differential.rs` checks this under concurrency.

use crate::{Flags, RoundingMode};
use softfloat_sys as sf;

/// Runs `f` against SoftFloat's per-thread state with rounding mode `rm` and
/// cleared exception flags; returns its result and the flags it raised.
#[inline]
fn with_rm<T>(rm: RoundingMode, f: impl FnOnce() -> T) -> (T, Flags) {
    // SAFETY: the helpers only read/write SoftFloat's `_Thread_local` state of
    // the calling thread; they take and return plain integers.
    unsafe {
        sf::softfloat_roundingMode_write_helper(rm as u8);
        sf::softfloat_exceptionFlags_write_helper(0);
    }
    let r = f();
    // SAFETY: as above.
    let fl = unsafe { sf::softfloat_exceptionFlags_read_helper() };
    (r, Flags(fl))
}

/// Like [`with_rm`] for operations that take no rounding mode (or take it as
/// an explicit argument): only clears and reads the flags.
#[inline]
fn flags_only<T>(f: impl FnOnce() -> T) -> (T, Flags) {
    // SAFETY: see `with_rm`.
    unsafe { sf::softfloat_exceptionFlags_write_helper(0) };
    let r = f();
    // SAFETY: see `with_rm`.
    let fl = unsafe { sf::softfloat_exceptionFlags_read_helper() };
    (r, Flags(fl))
}

#[inline]
fn f32v(v: u32) -> sf::float32_t {
    sf::float32_t { v }
}
#[inline]
fn f64v(v: u64) -> sf::float64_t {
    sf::float64_t { v }
}

macro_rules! binop {
    ($name:ident, $sf:ident, $bits:ty, $wrap:ident) => {
        #[doc = concat!("SoftFloat `", stringify!($sf), "`.")]
        pub fn $name(a: $bits, b: $bits, rm: RoundingMode) -> ($bits, Flags) {
            // SAFETY: pure function of its by-value arguments; touches only
            // this thread's SoftFloat state (see module docs).
            with_rm(rm, || unsafe { sf::$sf($wrap(a), $wrap(b)) }.v)
        }
    };
}

binop!(f32_add, f32_add, u32, f32v);
binop!(f32_sub, f32_sub, u32, f32v);
binop!(f32_mul, f32_mul, u32, f32v);
binop!(f32_div, f32_div, u32, f32v);
binop!(f64_add, f64_add, u64, f64v);
binop!(f64_sub, f64_sub, u64, f64v);
binop!(f64_mul, f64_mul, u64, f64v);
binop!(f64_div, f64_div, u64, f64v);

/// SoftFloat `f32_sqrt`.
pub fn f32_sqrt(a: u32, rm: RoundingMode) -> (u32, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    with_rm(rm, || unsafe { sf::f32_sqrt(f32v(a)) }.v)
}
/// SoftFloat `f64_sqrt`.
pub fn f64_sqrt(a: u64, rm: RoundingMode) -> (u64, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    with_rm(rm, || unsafe { sf::f64_sqrt(f64v(a)) }.v)
}
/// SoftFloat `f32_mulAdd`: `a * b + c` with a single rounding.
pub fn f32_mul_add(a: u32, b: u32, c: u32, rm: RoundingMode) -> (u32, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    with_rm(
        rm,
        || unsafe { sf::f32_mulAdd(f32v(a), f32v(b), f32v(c)) }.v,
    )
}
/// SoftFloat `f64_mulAdd`: `a * b + c` with a single rounding.
pub fn f64_mul_add(a: u64, b: u64, c: u64, rm: RoundingMode) -> (u64, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    with_rm(
        rm,
        || unsafe { sf::f64_mulAdd(f64v(a), f64v(b), f64v(c)) }.v,
    )
}

macro_rules! cmp {
    ($name:ident, $sf:ident, $bits:ty, $wrap:ident) => {
        #[doc = concat!("SoftFloat `", stringify!($sf), "`.")]
        pub fn $name(a: $bits, b: $bits) -> (bool, Flags) {
            // SAFETY: pure FFI call on by-value data; thread-local state only.
            flags_only(|| unsafe { sf::$sf($wrap(a), $wrap(b)) })
        }
    };
}
cmp!(f32_eq, f32_eq, u32, f32v);
cmp!(f32_lt, f32_lt, u32, f32v);
cmp!(f32_le, f32_le, u32, f32v);
cmp!(f64_eq, f64_eq, u64, f64v);
cmp!(f64_lt, f64_lt, u64, f64v);
cmp!(f64_le, f64_le, u64, f64v);
cmp!(f32_lt_quiet, f32_lt_quiet, u32, f32v);
cmp!(f64_lt_quiet, f64_lt_quiet, u64, f64v);

macro_rules! minmax {
    ($min:ident, $max:ident, $bits:ty, $lt_quiet:ident, $eq:ident, $sign:expr, $is_nan:ident, $nan:expr) => {
        /// fmin exactly as Spike's `fmin_s.h`/`fmin_d.h` (on SoftFloat's quiet
        /// compare and eq).
        pub fn $min(a: $bits, b: $bits) -> ($bits, Flags) {
            let (lt, f1) = $lt_quiet(a, b);
            let (eq, f2) = $eq(a, b);
            let less = lt || (eq && (a & $sign) != 0);
            let r = if $is_nan(a) && $is_nan(b) {
                $nan
            } else if less || $is_nan(b) {
                a
            } else {
                b
            };
            (r, f1 | f2)
        }
        /// fmax exactly as Spike's `fmax_s.h`/`fmax_d.h`.
        pub fn $max(a: $bits, b: $bits) -> ($bits, Flags) {
            let (lt, f1) = $lt_quiet(b, a);
            let (eq, f2) = $eq(b, a);
            let greater = lt || (eq && (b & $sign) != 0);
            let r = if $is_nan(a) && $is_nan(b) {
                $nan
            } else if greater || $is_nan(b) {
                a
            } else {
                b
            };
            (r, f1 | f2)
        }
    };
}
use crate::{f32_is_nan, f64_is_nan};
minmax!(
    f32_min,
    f32_max,
    u32,
    f32_lt_quiet,
    f32_eq,
    0x8000_0000,
    f32_is_nan,
    crate::F32_CANONICAL_NAN
);
minmax!(
    f64_min,
    f64_max,
    u64,
    f64_lt_quiet,
    f64_eq,
    0x8000_0000_0000_0000,
    f64_is_nan,
    crate::F64_CANONICAL_NAN
);

macro_rules! to_int {
    ($name:ident, $sf:ident, $bits:ty, $wrap:ident, $out:ty) => {
        #[doc = concat!("SoftFloat `", stringify!($sf), "` (with `exact = true`, so NX is raised).")]
        pub fn $name(a: $bits, rm: RoundingMode) -> ($out, Flags) {
            // SAFETY: pure FFI call on by-value data; thread-local state only.
            // The C result is a `*_fast*_t` already within `$out`'s range.
            flags_only(|| unsafe { sf::$sf($wrap(a), rm as u8, true) } as $out)
        }
    };
}
to_int!(f32_to_i32, f32_to_i32, u32, f32v, i32);
to_int!(f32_to_u32, f32_to_ui32, u32, f32v, u32);
to_int!(f32_to_i64, f32_to_i64, u32, f32v, i64);
to_int!(f32_to_u64, f32_to_ui64, u32, f32v, u64);
to_int!(f64_to_i32, f64_to_i32, u64, f64v, i32);
to_int!(f64_to_u32, f64_to_ui32, u64, f64v, u32);
to_int!(f64_to_i64, f64_to_i64, u64, f64v, i64);
to_int!(f64_to_u64, f64_to_ui64, u64, f64v, u64);

macro_rules! from_int {
    ($name:ident, $sf:ident, $in:ty, $bits:ty) => {
        #[doc = concat!("SoftFloat `", stringify!($sf), "`.")]
        pub fn $name(v: $in, rm: RoundingMode) -> ($bits, Flags) {
            // SAFETY: pure FFI call on by-value data; thread-local state only.
            with_rm(rm, || unsafe { sf::$sf(v) }.v)
        }
    };
}
from_int!(i32_to_f32, i32_to_f32, i32, u32);
from_int!(u32_to_f32, ui32_to_f32, u32, u32);
from_int!(i64_to_f32, i64_to_f32, i64, u32);
from_int!(u64_to_f32, ui64_to_f32, u64, u32);
from_int!(i32_to_f64, i32_to_f64, i32, u64);
from_int!(u32_to_f64, ui32_to_f64, u32, u64);
from_int!(i64_to_f64, i64_to_f64, i64, u64);
from_int!(u64_to_f64, ui64_to_f64, u64, u64);

/// SoftFloat `f32_to_f64` (exact; NaN → canonical, NV on sNaN).
pub fn f32_to_f64(a: u32) -> (u64, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    flags_only(|| unsafe { sf::f32_to_f64(f32v(a)) }.v)
}
/// SoftFloat `f64_to_f32`.
pub fn f64_to_f32(a: u64, rm: RoundingMode) -> (u32, Flags) {
    // SAFETY: pure FFI call on by-value data; thread-local state only.
    with_rm(rm, || unsafe { sf::f64_to_f32(f64v(a)) }.v)
}

/// fclass (SoftFloat has no classify; this is the same code as the crate root,
/// kept here so `soft` is a complete API).
pub fn f32_classify(a: u32) -> u32 {
    crate::f32_classify(a)
}
/// fclass; see [`f32_classify`].
pub fn f64_classify(a: u64) -> u32 {
    crate::f64_classify(a)
}
