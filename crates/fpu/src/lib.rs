//! IEEE 754 binary32 / binary64 arithmetic with exact RISC-V (F/D extension)
//! semantics, on raw bit patterns.
//!
//! # Semantics
//!
//! Every function is a pure function of its arguments: it returns the result
//! bits and the [`Flags`] (fflags layout) the operation raised. The caller
//! ORs the flags into `fflags` and does any NaN-boxing. Results are meant to
//! be bit-for-bit identical, flags included, to Spike, the RISC-V reference
//! simulator:
//!
//! * Arithmetic, square root, fused multiply-add, integer/float and
//!   float/float conversions are Berkeley SoftFloat 3 (the library Spike
//!   uses) built with its `RISCV` specialization, via `softfloat-sys` with
//!   feature `riscv` (see [`soft`]): every NaN result is the canonical NaN
//!   (`0x7fc00000` / `0x7ff8000000000000`), NV is raised for signaling-NaN
//!   operands and invalid operations, tininess is detected *after* rounding,
//!   and float→integer conversions saturate the RISC-V way (NaN → maximum
//!   positive value, +overflow → maximum, −overflow → minimum, i.e. 0 for
//!   unsigned; NV on invalid, NX on inexact).
//! * `fmin`/`fmax` follow RISC-V F 2.2 / IEEE 754-2019 minimumNumber /
//!   maximumNumber: −0 < +0, a single NaN operand yields the other operand,
//!   two NaNs yield the canonical NaN, NV only for a signaling-NaN operand.
//! * `feq` is a quiet comparison (NV only for signaling NaNs); `flt`/`fle`
//!   are signaling (NV for any NaN). All comparisons with a NaN are false.
//! * `fclass` returns the 10-bit RISC-V mask (bit 0 −∞ … bit 9 quiet NaN).
//! * The fused multiply-add family is a single primitive, `a * b + c`; the
//!   CPU derives `fmsub`/`fnmsub`/`fnmadd` by flipping the sign bit of `c`
//!   and/or `a` before the call, exactly as Spike does.
//!
//! Rounding-mode argument: [`RoundingMode`] holds the five valid static
//! modes; the CPU resolves `rm = 7` (dynamic) from `frm` and raises the
//! illegal-instruction exception for reserved modes (5, 6, and `frm` ≥ 5).
//!
//! # The host fast path ("hardfloat") and why it is bit-exact
//!
//! SoftFloat costs tens of nanoseconds per operation. For the common case
//! the crate-root functions first try the host FPU ([`hard`]); they fall
//! back to SoftFloat whenever the conditions below are not met. The host is
//! used only when **all** of these hold:
//!
//! 1. `rm == NearestEven`, the host's rounding mode (Rust code runs in the
//!    default floating-point environment: round-to-nearest-even, no
//!    flush-to-zero / denormals-are-zero, all exceptions masked; changing it
//!    is undefined behaviour in Rust).
//! 2. Every operand is a normal number or ±0 (no subnormal, ∞ or NaN
//!    operand). So no operation can be invalid (∞−∞, 0×∞, 0/0, sqrt(<0)
//!    are either excluded here or produce a NaN, which fails 3) and no NaN
//!    propagation rule is involved.
//! 3. The host result `r` is finite with `|r| > MIN_POSITIVE` (strictly), or
//!    is a zero that is provably exact (x − x, 0 × y, 0 / y, sqrt(±0)).
//!
//! The host implements IEEE 754 correctly-rounded `+ − × ÷ √` and fused
//! multiply-add (`fma` from the C library) — the same mathematical function
//! SoftFloat implements — so under 1 the result *value* is identical, and
//! with 2 no NaN encoding choice arises. Flags: NV needs a NaN operand or an
//! invalid operation (excluded by 2/3). DZ needs a zero divisor (then `r` is
//! ∞ or NaN, excluded by 3). OF: with round-to-nearest a finite `r` means
//! no overflow. UF (tininess after rounding, raised only when also inexact):
//! rounding is monotonic, so `|r| > MIN_POSITIVE` implies the exact result
//! is ≥ MIN_POSITIVE, i.e. not tiny. `|r| == MIN_POSITIVE` is *not* enough:
//! an exact result just below MIN_POSITIVE rounds up to it with a bounded
//! exponent yet is tiny after rounding with an unbounded one, and SoftFloat
//! raises UF — hence the strict comparison (the same choice as QEMU).
//!
//! That leaves NX, i.e. whether the result is exact. Two ways:
//!
//! * The `*_acc` entry points take the hart's current `fflags`: when NX is
//!   already set, raising it again changes nothing, so exactness need not be
//!   computed at all. They return `acc | flags` (the new accumulated value).
//! * Otherwise exactness is computed cheaply and exactly:
//!   - add/sub: Knuth's TwoSum error term `e = (a − (s − bb)) + (b − bb)`,
//!     `bb = s − a`, is exactly `(a + b) − s` in round-to-nearest when no
//!     intermediate overflows; an intermediate overflow makes `e` non-finite,
//!     and then we fall back to SoftFloat.
//!   - binary64 mul/div/sqrt: integer arithmetic on significands: the product
//!     of the two 53-bit significands (u128) is exact iff it has at most 53
//!     significant bits; a quotient `q` is exact iff `q·b == a` and a root
//!     `r` iff `r·r == a`, both checked exactly in u128.
//!   - binary32 mul/div/sqrt: the same identities in binary64, where the
//!     24×24-bit products are exact.
//!   - binary32 fma: `a·b` is exact in binary64 and TwoSum gives
//!     `a·b + c = s + e` exactly; the binary32 result is the round-to-nearest
//!     of `s + e`, obtained without a libm call by rounding `s + e` to odd in
//!     binary64 and then to binary32 (Boldo–Melquiond: rounding to odd at
//!     p + k ≥ p + 2 bits, then to nearest at p bits, equals direct
//!     rounding). Exact iff `e == 0` and the binary32 result equals `s`.
//!   - binary64 fma: exact if `a·b` is exact (significand test) and TwoSum of
//!     `a·b + c` has a zero error; inexact if `a·b` is exact and the error is
//!     non-zero; otherwise (a·b itself inexact) unknown → SoftFloat, decided
//!     before the host fma is even called. With NX already accrued (the
//!     usual state of a running program) every normal-range fma is fast.
//!
//! The differential tests in `tests/` compare this path with [`soft`]
//! bit-for-bit, flags included, over random and edge-case operands in all
//! rounding modes.

pub mod hard;
pub mod soft;

use core::ops::{BitOr, BitOrAssign};

/// A RISC-V static rounding mode (the `rm`/`frm` field encodings 0–4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RoundingMode {
    /// RNE: round to nearest, ties to even.
    NearestEven = 0,
    /// RTZ: round towards zero.
    TowardZero = 1,
    /// RDN: round down (towards −∞).
    Down = 2,
    /// RUP: round up (towards +∞).
    Up = 3,
    /// RMM: round to nearest, ties to max magnitude.
    NearestMaxMagnitude = 4,
}

impl RoundingMode {
    /// Decodes a 3-bit `rm`/`frm` value; `None` for 5, 6, 7 (and anything
    /// larger). The dynamic mode 7 must be resolved by the caller from `frm`.
    pub fn from_bits(rm: u8) -> Option<RoundingMode> {
        match rm {
            0 => Some(RoundingMode::NearestEven),
            1 => Some(RoundingMode::TowardZero),
            2 => Some(RoundingMode::Down),
            3 => Some(RoundingMode::Up),
            4 => Some(RoundingMode::NearestMaxMagnitude),
            _ => None,
        }
    }

    /// All five modes, for tests and tables.
    pub const ALL: [RoundingMode; 5] = [
        RoundingMode::NearestEven,
        RoundingMode::TowardZero,
        RoundingMode::Down,
        RoundingMode::Up,
        RoundingMode::NearestMaxMagnitude,
    ];
}

/// Accrued exception flags in the RISC-V `fflags` layout.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// NV: invalid operation.
    pub const NV: Flags = Flags(0x10);
    /// DZ: divide by zero.
    pub const DZ: Flags = Flags(0x08);
    /// OF: overflow.
    pub const OF: Flags = Flags(0x04);
    /// UF: underflow.
    pub const UF: Flags = Flags(0x02);
    /// NX: inexact.
    pub const NX: Flags = Flags(0x01);

    /// The raw 5-bit value.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    #[inline]
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    #[inline]
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// The RISC-V canonical binary32 NaN.
pub const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The RISC-V canonical binary64 NaN.
pub const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

const F32_SIGN: u32 = 0x8000_0000;
const F32_EXP: u32 = 0x7f80_0000;
const F32_FRAC: u32 = 0x007f_ffff;
const F32_QUIET: u32 = 0x0040_0000;
const F64_SIGN: u64 = 0x8000_0000_0000_0000;
const F64_EXP: u64 = 0x7ff0_0000_0000_0000;
const F64_FRAC: u64 = 0x000f_ffff_ffff_ffff;
const F64_QUIET: u64 = 0x0008_0000_0000_0000;

/// True for any binary32 NaN.
#[inline]
pub const fn f32_is_nan(a: u32) -> bool {
    a & !F32_SIGN > F32_EXP
}
/// True for a binary32 signaling NaN.
#[inline]
pub const fn f32_is_snan(a: u32) -> bool {
    f32_is_nan(a) && a & F32_QUIET == 0
}
/// True for any binary64 NaN.
#[inline]
pub const fn f64_is_nan(a: u64) -> bool {
    a & !F64_SIGN > F64_EXP
}
/// True for a binary64 signaling NaN.
#[inline]
pub const fn f64_is_snan(a: u64) -> bool {
    f64_is_nan(a) && a & F64_QUIET == 0
}

// ---------------------------------------------------------------------------
// Arithmetic: host fast path, SoftFloat fallback.
// ---------------------------------------------------------------------------

macro_rules! arith2 {
    ($name:ident, $acc:ident, $bits:ty) => {
        #[doc = concat!("`", stringify!($name), "` returning `(result, acc | raised flags)`; \
            uses the host fast path whenever `acc` already has NX or exactness is cheap to prove.")]
        #[inline]
        pub fn $acc(a: $bits, b: $bits, rm: RoundingMode, acc: Flags) -> ($bits, Flags) {
            if rm == RoundingMode::NearestEven
                && let Some(r) = hard::$name(a, b, acc)
            {
                return r;
            }
            let (r, f) = soft::$name(a, b, rm);
            (r, acc | f)
        }
        #[doc = concat!("IEEE `", stringify!($name), "` with RISC-V semantics; returns the result \
            and the flags raised.")]
        #[inline]
        pub fn $name(a: $bits, b: $bits, rm: RoundingMode) -> ($bits, Flags) {
            $acc(a, b, rm, Flags::NONE)
        }
    };
}

arith2!(f32_add, f32_add_acc, u32);
arith2!(f32_sub, f32_sub_acc, u32);
arith2!(f32_mul, f32_mul_acc, u32);
arith2!(f32_div, f32_div_acc, u32);
arith2!(f64_add, f64_add_acc, u64);
arith2!(f64_sub, f64_sub_acc, u64);
arith2!(f64_mul, f64_mul_acc, u64);
arith2!(f64_div, f64_div_acc, u64);

macro_rules! arith1 {
    ($name:ident, $acc:ident, $bits:ty) => {
        #[doc = concat!("`", stringify!($name), "` returning `(result, acc | raised flags)`.")]
        #[inline]
        pub fn $acc(a: $bits, rm: RoundingMode, acc: Flags) -> ($bits, Flags) {
            if rm == RoundingMode::NearestEven
                && let Some(r) = hard::$name(a, acc)
            {
                return r;
            }
            let (r, f) = soft::$name(a, rm);
            (r, acc | f)
        }
        #[doc = concat!("IEEE `", stringify!($name), "` with RISC-V semantics.")]
        #[inline]
        pub fn $name(a: $bits, rm: RoundingMode) -> ($bits, Flags) {
            $acc(a, rm, Flags::NONE)
        }
    };
}
arith1!(f32_sqrt, f32_sqrt_acc, u32);
arith1!(f64_sqrt, f64_sqrt_acc, u64);

macro_rules! arith3 {
    ($name:ident, $acc:ident, $bits:ty) => {
        #[doc = concat!("Fused `a * b + c` (`", stringify!($name), "`) returning \
            `(result, acc | raised flags)`.")]
        #[inline]
        pub fn $acc(a: $bits, b: $bits, c: $bits, rm: RoundingMode, acc: Flags) -> ($bits, Flags) {
            if rm == RoundingMode::NearestEven
                && let Some(r) = hard::$name(a, b, c, acc)
            {
                return r;
            }
            let (r, f) = soft::$name(a, b, c, rm);
            (r, acc | f)
        }
        #[doc = "Fused `a * b + c` with a single rounding."]
        #[inline]
        pub fn $name(a: $bits, b: $bits, c: $bits, rm: RoundingMode) -> ($bits, Flags) {
            $acc(a, b, c, rm, Flags::NONE)
        }
    };
}
arith3!(f32_mul_add, f32_mul_add_acc, u32);
arith3!(f64_mul_add, f64_mul_add_acc, u64);

// ---------------------------------------------------------------------------
// Min / max / compare / classify: exact integer code, no SoftFloat needed.
// ---------------------------------------------------------------------------

macro_rules! compare_family {
    (
        $bits:ty, $sign:expr, $exp:expr, $frac:expr, $is_nan:ident, $is_snan:ident, $nan:expr,
        $eq:ident, $lt:ident, $le:ident, $min:ident, $max:ident, $classify:ident
    ) => {
        /// `a < b` on non-NaN operands, by integer comparison (−0 == +0).
        #[inline]
        const fn lt_ordered(a: $bits, b: $bits) -> bool {
            let sa = a & $sign != 0;
            let sb = b & $sign != 0;
            if sa != sb {
                // Different signs: a < b iff a negative, unless both are zero.
                sa && ((a | b) & !$sign) != 0
            } else if sa {
                a > b
            } else {
                a < b
            }
        }
        /// `a == b` on non-NaN operands (−0 == +0).
        #[inline]
        const fn eq_ordered(a: $bits, b: $bits) -> bool {
            a == b || ((a | b) & !$sign) == 0
        }

        /// `feq`: quiet equality; NV only for a signaling-NaN operand.
        #[inline]
        pub fn $eq(a: $bits, b: $bits) -> (bool, Flags) {
            if $is_nan(a) || $is_nan(b) {
                let nv = $is_snan(a) || $is_snan(b);
                return (false, if nv { Flags::NV } else { Flags::NONE });
            }
            (eq_ordered(a, b), Flags::NONE)
        }
        /// `flt`: signaling less-than; NV for any NaN operand.
        #[inline]
        pub fn $lt(a: $bits, b: $bits) -> (bool, Flags) {
            if $is_nan(a) || $is_nan(b) {
                return (false, Flags::NV);
            }
            (lt_ordered(a, b), Flags::NONE)
        }
        /// `fle`: signaling less-or-equal; NV for any NaN operand.
        #[inline]
        pub fn $le(a: $bits, b: $bits) -> (bool, Flags) {
            if $is_nan(a) || $is_nan(b) {
                return (false, Flags::NV);
            }
            (lt_ordered(a, b) || eq_ordered(a, b), Flags::NONE)
        }
        /// `fmin` (IEEE 754-2019 minimumNumber, −0 < +0).
        #[inline]
        pub fn $min(a: $bits, b: $bits) -> ($bits, Flags) {
            let nv = if $is_snan(a) || $is_snan(b) {
                Flags::NV
            } else {
                Flags::NONE
            };
            let r = match ($is_nan(a), $is_nan(b)) {
                (true, true) => $nan,
                (true, false) => b,
                (false, true) => a,
                (false, false) => {
                    if lt_ordered(a, b) || (eq_ordered(a, b) && a & $sign != 0) {
                        a
                    } else {
                        b
                    }
                }
            };
            (r, nv)
        }
        /// `fmax` (IEEE 754-2019 maximumNumber, −0 < +0).
        #[inline]
        pub fn $max(a: $bits, b: $bits) -> ($bits, Flags) {
            let nv = if $is_snan(a) || $is_snan(b) {
                Flags::NV
            } else {
                Flags::NONE
            };
            let r = match ($is_nan(a), $is_nan(b)) {
                (true, true) => $nan,
                (true, false) => b,
                (false, true) => a,
                (false, false) => {
                    if lt_ordered(b, a) || (eq_ordered(a, b) && a & $sign == 0) {
                        a
                    } else {
                        b
                    }
                }
            };
            (r, nv)
        }
        /// `fclass`: exactly one of bits 0..=9 set:
        /// 0 −∞, 1 −normal, 2 −subnormal, 3 −0, 4 +0, 5 +subnormal,
        /// 6 +normal, 7 +∞, 8 signaling NaN, 9 quiet NaN.
        #[inline]
        pub fn $classify(a: $bits) -> u32 {
            let neg = a & $sign != 0;
            let exp = a & $exp;
            let frac = a & $frac;
            let bit = if exp == $exp {
                if frac == 0 {
                    if neg { 0 } else { 7 }
                } else if $is_snan(a) {
                    8
                } else {
                    9
                }
            } else if exp == 0 {
                if frac == 0 {
                    if neg { 3 } else { 4 }
                } else if neg {
                    2
                } else {
                    5
                }
            } else if neg {
                1
            } else {
                6
            };
            1 << bit
        }
    };
}

mod cmp32 {
    use super::*;
    compare_family!(
        u32,
        F32_SIGN,
        F32_EXP,
        F32_FRAC,
        f32_is_nan,
        f32_is_snan,
        F32_CANONICAL_NAN,
        f32_eq,
        f32_lt,
        f32_le,
        f32_min,
        f32_max,
        f32_classify
    );
}
mod cmp64 {
    use super::*;
    compare_family!(
        u64,
        F64_SIGN,
        F64_EXP,
        F64_FRAC,
        f64_is_nan,
        f64_is_snan,
        F64_CANONICAL_NAN,
        f64_eq,
        f64_lt,
        f64_le,
        f64_min,
        f64_max,
        f64_classify
    );
}
pub use cmp32::{f32_classify, f32_eq, f32_le, f32_lt, f32_max, f32_min};
pub use cmp64::{f64_classify, f64_eq, f64_le, f64_lt, f64_max, f64_min};

// ---------------------------------------------------------------------------
// Conversions.
// ---------------------------------------------------------------------------

macro_rules! to_int_api {
    ($($name:ident: $bits:ty => $out:ty;)*) => {$(
        #[doc = concat!("`fcvt` to integer (`", stringify!($name), "`) with RISC-V saturation: \
            NaN → max, +overflow → max, −overflow → min (0 if unsigned); NV on invalid, NX on inexact.")]
        #[inline]
        pub fn $name(a: $bits, rm: RoundingMode) -> ($out, Flags) {
            soft::$name(a, rm)
        }
    )*};
}
to_int_api! {
    f32_to_i32: u32 => i32;
    f32_to_u32: u32 => u32;
    f32_to_i64: u32 => i64;
    f32_to_u64: u32 => u64;
    f64_to_i32: u64 => i32;
    f64_to_u32: u64 => u32;
    f64_to_i64: u64 => i64;
    f64_to_u64: u64 => u64;
}

macro_rules! from_int_api {
    ($($name:ident: $in:ty => $host:ty, $bits:ty;)*) => {$(
        #[doc = concat!("`fcvt` from integer (`", stringify!($name), "`); NX when rounded.")]
        #[inline]
        pub fn $name(v: $in, rm: RoundingMode) -> ($bits, Flags) {
            if rm == RoundingMode::NearestEven {
                // Rust's int→float `as` rounds to nearest, ties to even, and
                // cannot overflow for these widths; exact iff it converts back
                // (through i128, which holds every value involved exactly).
                let r = v as $host;
                let nx = if r as i128 == v as i128 { Flags::NONE } else { Flags::NX };
                return (r.to_bits(), nx);
            }
            soft::$name(v, rm)
        }
    )*};
}
from_int_api! {
    i32_to_f32: i32 => f32, u32;
    u32_to_f32: u32 => f32, u32;
    i64_to_f32: i64 => f32, u32;
    u64_to_f32: u64 => f32, u32;
    i32_to_f64: i32 => f64, u64;
    u32_to_f64: u32 => f64, u64;
    i64_to_f64: i64 => f64, u64;
    u64_to_f64: u64 => f64, u64;
}

/// `fcvt.d.s`: exact widening; NaN → canonical NaN (NV if signaling).
#[inline]
pub fn f32_to_f64(a: u32) -> (u64, Flags) {
    let exp = a & F32_EXP;
    if (exp != 0 && exp != F32_EXP) || a & !F32_SIGN == 0 {
        // Normal or zero: the host widening is exact.
        return ((f32::from_bits(a) as f64).to_bits(), Flags::NONE);
    }
    soft::f32_to_f64(a)
}

/// `fcvt.s.d`: narrowing with rounding mode `rm`.
#[inline]
pub fn f64_to_f32(a: u64, rm: RoundingMode) -> (u32, Flags) {
    if rm == RoundingMode::NearestEven
        && let Some(r) = hard::f64_to_f32(a)
    {
        return r;
    }
    soft::f64_to_f32(a, rm)
}
