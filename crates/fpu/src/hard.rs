//! The host floating-point fast path, round-to-nearest-even only.
//!
//! Every function returns `Some((result, acc | flags))` when it can prove the
//! host result and flags identical to SoftFloat's (see the crate docs for the
//! argument), and `None` when the caller must use [`crate::soft`]. `acc` is
//! the caller's accumulated `fflags`: if it already contains NX, exactness is
//! not computed.
//!
//! Conditions shared by all functions: operands normal or ±0; result finite
//! and of magnitude strictly above the smallest normal, or a provably exact
//! zero.

use crate::Flags;

/// Whether the rounded result equals the exact result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exactness {
    Exact,
    Inexact,
    /// Not cheaply decidable: fall back unless NX is already accrued.
    Unknown,
}

#[inline(always)]
fn finish<T>(r: T, acc: Flags, exactness: impl FnOnce() -> Exactness) -> Option<(T, Flags)> {
    if acc.contains(Flags::NX) {
        return Some((r, acc));
    }
    match exactness() {
        Exactness::Exact => Some((r, acc)),
        Exactness::Inexact => Some((r, acc | Flags::NX)),
        Exactness::Unknown => None,
    }
}

/// TwoSum error term: `(x + y) - s` exactly, for `s = x + y` rounded to
/// nearest, provided no intermediate overflows (an overflow yields ±∞/NaN,
/// which the callers treat as unknown).
#[inline(always)]
fn two_sum_err64(x: f64, y: f64, s: f64) -> f64 {
    let bb = s - x;
    let ap = s - bb;
    (x - ap) + (y - bb)
}
#[inline(always)]
fn two_sum_err32(x: f32, y: f32, s: f32) -> f32 {
    let bb = s - x;
    let ap = s - bb;
    (x - ap) + (y - bb)
}

#[inline(always)]
fn err_exactness64(e: f64) -> Exactness {
    if e == 0.0 {
        Exactness::Exact
    } else if e.is_finite() {
        Exactness::Inexact
    } else {
        Exactness::Unknown
    }
}
#[inline(always)]
fn err_exactness32(e: f32) -> Exactness {
    if e == 0.0 {
        Exactness::Exact
    } else if e.is_finite() {
        Exactness::Inexact
    } else {
        Exactness::Unknown
    }
}

// ---------------------------------------------------------------------------
// binary64
// ---------------------------------------------------------------------------

const D_SIGN: u64 = 1 << 63;
const D_EXP: u64 = 0x7ff0_0000_0000_0000;
const D_FRAC: u64 = (1 << 52) - 1;
const D_IMPLICIT: u64 = 1 << 52;
const D_MIN_NORMAL: u64 = 0x0010_0000_0000_0000;

/// Normal or ±0.
#[inline(always)]
fn d_ok(x: u64) -> bool {
    let e = x & D_EXP;
    (e != 0 && e != D_EXP) || x & !D_SIGN == 0
}
#[inline(always)]
fn d_zero(x: u64) -> bool {
    x & !D_SIGN == 0
}
/// Finite with magnitude strictly greater than the smallest normal.
#[inline(always)]
fn d_big(r: u64) -> bool {
    let m = r & !D_SIGN;
    m > D_MIN_NORMAL && m < D_EXP
}
/// Significand with the implicit bit (operand must be normal).
#[inline(always)]
fn d_sig(x: u64) -> u64 {
    (x & D_FRAC) | D_IMPLICIT
}
/// Biased exponent (operand must be normal).
#[inline(always)]
fn d_bexp(x: u64) -> i64 {
    ((x & D_EXP) >> 52) as i64
}
/// Is the product of two normal binary64 operands exactly representable,
/// given that the rounded product is normal (so no denormalisation)?
#[inline(always)]
fn d_mul_exact(a: u64, b: u64) -> bool {
    let p = d_sig(a) as u128 * d_sig(b) as u128;
    128 - p.leading_zeros() - p.trailing_zeros() <= 53
}
/// `lhs == sig << d` exactly, with `d` possibly out of range.
#[inline(always)]
fn u128_eq_shifted(lhs: u128, sig: u64, d: i64) -> Exactness {
    if (0..=74).contains(&d) {
        if lhs == (sig as u128) << d {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    } else {
        Exactness::Unknown
    }
}

/// binary64 `a + b`.
#[inline]
pub fn f64_add(a: u64, b: u64, acc: Flags) -> Option<(u64, Flags)> {
    if !(d_ok(a) && d_ok(b)) {
        return None;
    }
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    let s = x + y;
    let r = s.to_bits();
    if !d_big(r) {
        // A zero sum of normals/zeros is exact (every operand is a multiple
        // of the smallest subnormal, so a non-zero exact sum is at least that
        // large and cannot round to zero).
        return if d_zero(r) { Some((r, acc)) } else { None };
    }
    finish(r, acc, || err_exactness64(two_sum_err64(x, y, s)))
}

/// binary64 `a - b` (= `a + (-b)`, negation being exact).
#[inline]
pub fn f64_sub(a: u64, b: u64, acc: Flags) -> Option<(u64, Flags)> {
    f64_add(a, b ^ D_SIGN, acc)
}

/// binary64 `a * b`.
#[inline]
pub fn f64_mul(a: u64, b: u64, acc: Flags) -> Option<(u64, Flags)> {
    if !(d_ok(a) && d_ok(b)) {
        return None;
    }
    let r = (f64::from_bits(a) * f64::from_bits(b)).to_bits();
    if !d_big(r) {
        // Zero times a finite number is an exact zero; any other zero or
        // tiny product has underflowed.
        return if d_zero(r) && (d_zero(a) || d_zero(b)) {
            Some((r, acc))
        } else {
            None
        };
    }
    // Non-zero result: both operands are normal.
    finish(r, acc, || {
        if d_mul_exact(a, b) {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    })
}

/// binary64 `a / b`.
#[inline]
pub fn f64_div(a: u64, b: u64, acc: Flags) -> Option<(u64, Flags)> {
    if !(d_ok(a) && d_ok(b)) || d_zero(b) {
        return None;
    }
    let r = (f64::from_bits(a) / f64::from_bits(b)).to_bits();
    if !d_big(r) {
        return if d_zero(a) { Some((r, acc)) } else { None };
    }
    // q exact iff q·b == a: sig(q)·sig(b) == sig(a) · 2^(Ea − Eq − Eb + 1075).
    finish(r, acc, || {
        let lhs = d_sig(r) as u128 * d_sig(b) as u128;
        let d = d_bexp(a) - d_bexp(r) - d_bexp(b) + 1075;
        u128_eq_shifted(lhs, d_sig(a), d)
    })
}

/// binary64 `sqrt(a)`.
#[inline]
pub fn f64_sqrt(a: u64, acc: Flags) -> Option<(u64, Flags)> {
    if !d_ok(a) {
        return None;
    }
    if d_zero(a) {
        return Some((a, acc)); // sqrt(±0) = ±0, exact.
    }
    if a & D_SIGN != 0 {
        return None; // invalid
    }
    let r = f64::from_bits(a).sqrt().to_bits();
    if !d_big(r) {
        return None; // cannot happen for a normal operand; be safe.
    }
    // r exact iff r·r == a: sig(r)² == sig(a) · 2^(Ea − 2·Er + 1075).
    finish(r, acc, || {
        let sr = d_sig(r) as u128;
        let d = d_bexp(a) - 2 * d_bexp(r) + 1075;
        u128_eq_shifted(sr * sr, d_sig(a), d)
    })
}

/// binary64 fused `a * b + c`.
#[inline]
pub fn f64_mul_add(a: u64, b: u64, c: u64, acc: Flags) -> Option<(u64, Flags)> {
    if !(d_ok(a) && d_ok(b) && d_ok(c)) {
        return None;
    }
    let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
    let need_nx = !acc.contains(Flags::NX);
    // Decide up front whether exactness is decidable, so an undecidable
    // case costs no host fma before falling back to SoftFloat.
    let p = x * y;
    if need_nx {
        let p_exact = if d_zero(a) || d_zero(b) {
            true // ±0 exactly
        } else {
            d_big(p.to_bits()) && d_mul_exact(a, b)
        };
        if !p_exact {
            return None;
        }
    }
    let r = x.mul_add(y, z).to_bits();
    if !d_big(r) {
        return None;
    }
    finish(r, acc, || {
        // Reached only when NX is needed, and then a·b == p exactly, so
        // a·b + c == s + e exactly (TwoSum).
        let s = p + z;
        match err_exactness64(two_sum_err64(p, z, s)) {
            Exactness::Exact if s.to_bits() == r => Exactness::Exact,
            Exactness::Exact => Exactness::Unknown, // impossible; be safe
            other => other,
        }
    })
}

/// binary64 → binary32 narrowing.
#[inline]
pub fn f64_to_f32(a: u64) -> Option<(u32, Flags)> {
    if !d_ok(a) {
        return None;
    }
    let x = f64::from_bits(a);
    let r = x as f32; // round to nearest even (Rust `as` semantics)
    let rb = r.to_bits();
    if !s_big(rb) {
        return if d_zero(a) {
            Some((rb, Flags::NONE))
        } else {
            None
        };
    }
    let nx = if r as f64 == x {
        Flags::NONE
    } else {
        Flags::NX
    };
    Some((rb, nx))
}

// ---------------------------------------------------------------------------
// binary32
// ---------------------------------------------------------------------------

const S_SIGN: u32 = 1 << 31;
const S_EXP: u32 = 0x7f80_0000;
const S_MIN_NORMAL: u32 = 0x0080_0000;

#[inline(always)]
fn s_ok(x: u32) -> bool {
    let e = x & S_EXP;
    (e != 0 && e != S_EXP) || x & !S_SIGN == 0
}
#[inline(always)]
fn s_zero(x: u32) -> bool {
    x & !S_SIGN == 0
}
#[inline(always)]
fn s_big(r: u32) -> bool {
    let m = r & !S_SIGN;
    m > S_MIN_NORMAL && m < S_EXP
}

/// binary32 `a + b`.
#[inline]
pub fn f32_add(a: u32, b: u32, acc: Flags) -> Option<(u32, Flags)> {
    if !(s_ok(a) && s_ok(b)) {
        return None;
    }
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    let s = x + y;
    let r = s.to_bits();
    if !s_big(r) {
        return if s_zero(r) { Some((r, acc)) } else { None };
    }
    finish(r, acc, || err_exactness32(two_sum_err32(x, y, s)))
}

/// binary32 `a - b`.
#[inline]
pub fn f32_sub(a: u32, b: u32, acc: Flags) -> Option<(u32, Flags)> {
    f32_add(a, b ^ S_SIGN, acc)
}

/// binary32 `a * b`.
#[inline]
pub fn f32_mul(a: u32, b: u32, acc: Flags) -> Option<(u32, Flags)> {
    if !(s_ok(a) && s_ok(b)) {
        return None;
    }
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    let p = x * y;
    let r = p.to_bits();
    if !s_big(r) {
        return if s_zero(r) && (s_zero(a) || s_zero(b)) {
            Some((r, acc))
        } else {
            None
        };
    }
    // The 24×24-bit product is exact in binary64.
    finish(r, acc, || {
        if p as f64 == x as f64 * y as f64 {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    })
}

/// binary32 `a / b`.
#[inline]
pub fn f32_div(a: u32, b: u32, acc: Flags) -> Option<(u32, Flags)> {
    if !(s_ok(a) && s_ok(b)) || s_zero(b) {
        return None;
    }
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    let q = x / y;
    let r = q.to_bits();
    if !s_big(r) {
        return if s_zero(a) { Some((r, acc)) } else { None };
    }
    // q exact iff q·b == a; the 24×24-bit product is exact in binary64.
    finish(r, acc, || {
        if q as f64 * y as f64 == x as f64 {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    })
}

/// binary32 `sqrt(a)`.
#[inline]
pub fn f32_sqrt(a: u32, acc: Flags) -> Option<(u32, Flags)> {
    if !s_ok(a) {
        return None;
    }
    if s_zero(a) {
        return Some((a, acc));
    }
    if a & S_SIGN != 0 {
        return None;
    }
    let x = f32::from_bits(a);
    let q = x.sqrt();
    let r = q.to_bits();
    if !s_big(r) {
        return None;
    }
    finish(r, acc, || {
        let q = q as f64;
        if q * q == x as f64 {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    })
}

/// binary32 fused `a * b + c`, computed in binary64 without a libm call:
/// `a·b` is exact in binary64, TwoSum gives `a·b + c = s + e` exactly, and
/// round-to-odd of `s + e` to 53 bits followed by round-to-nearest to 24
/// bits equals round-to-nearest of `a·b + c` (53 ≥ 24 + 2).
#[inline]
pub fn f32_mul_add(a: u32, b: u32, c: u32, acc: Flags) -> Option<(u32, Flags)> {
    if !(s_ok(a) && s_ok(b) && s_ok(c)) {
        return None;
    }
    let x = f32::from_bits(a) as f64;
    let y = f32::from_bits(b) as f64;
    let z = f32::from_bits(c) as f64;
    let p = x * y; // exact: 48-bit significand, exponent within range
    let s = p + z;
    // No overflow is possible: |p| < 2^256, |z| < 2^128.
    let e = two_sum_err64(p, z, s);
    let sb = s.to_bits();
    let odd = if e == 0.0 || sb & 1 == 1 {
        s
    } else if (sb ^ e.to_bits()) & D_SIGN == 0 {
        // e has the sign of s: the exact value lies above |s|.
        f64::from_bits(sb + 1)
    } else {
        f64::from_bits(sb - 1)
    };
    let q = odd as f32;
    let r = q.to_bits();
    if !s_big(r) {
        return None;
    }
    finish(r, acc, || {
        if e == 0.0 && q as f64 == s {
            Exactness::Exact
        } else {
            Exactness::Inexact
        }
    })
}
