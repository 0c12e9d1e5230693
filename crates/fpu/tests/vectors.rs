//! Hand-written vectors for the RISC-V-specific rules (F/D chapters of the
//! unprivileged spec), checked on both the crate-root API and `soft`.

use samsara_fpu::{self as fpu, Flags, RoundingMode, soft};

const RNE: RoundingMode = RoundingMode::NearestEven;
const RTZ: RoundingMode = RoundingMode::TowardZero;
const RDN: RoundingMode = RoundingMode::Down;
const RUP: RoundingMode = RoundingMode::Up;
const RMM: RoundingMode = RoundingMode::NearestMaxMagnitude;

const NONE: Flags = Flags::NONE;
const NV: Flags = Flags::NV;
const DZ: Flags = Flags::DZ;
const NX: Flags = Flags::NX;
const OF_NX: Flags = Flags(Flags::OF.0 | Flags::NX.0);
const UF_NX: Flags = Flags(Flags::UF.0 | Flags::NX.0);

const S_QNAN: u32 = 0x7fc0_0000;
const S_QNAN_PAYLOAD: u32 = 0xffc1_2345;
const S_SNAN: u32 = 0x7f80_0001;
const S_ONE: u32 = 0x3f80_0000;
const S_INF: u32 = 0x7f80_0000;
const S_NINF: u32 = 0xff80_0000;
const S_MAX: u32 = 0x7f7f_ffff;

const D_QNAN: u64 = 0x7ff8_0000_0000_0000;
const D_QNAN_PAYLOAD: u64 = 0xfff8_dead_beef_0001;
const D_SNAN: u64 = 0x7ff0_0000_0000_0001;
const D_ONE: u64 = 0x3ff0_0000_0000_0000;
const D_INF: u64 = 0x7ff0_0000_0000_0000;
const D_NINF: u64 = 0xfff0_0000_0000_0000;
const D_MAX: u64 = 0x7fef_ffff_ffff_ffff;
const D_MIN_NORMAL: u64 = 0x0010_0000_0000_0000;
const D_PZERO: u64 = 0;
const D_NZERO: u64 = 1 << 63;

fn d(x: f64) -> u64 {
    x.to_bits()
}
fn s(x: f32) -> u32 {
    x.to_bits()
}

/// Asserts a binary64 binary op on the API and on `soft`.
macro_rules! check {
    ($f:ident($($arg:expr),*) => ($r:expr, $fl:expr)) => {{
        let want = ($r, $fl);
        assert_eq!(fpu::$f($($arg),*), want, "fpu::{}", stringify!($f($($arg),*)));
        assert_eq!(soft::$f($($arg),*), want, "soft::{}", stringify!($f($($arg),*)));
    }};
}

#[test]
fn rounding_mode_and_flags() {
    assert_eq!(RoundingMode::from_bits(0), Some(RNE));
    assert_eq!(RoundingMode::from_bits(1), Some(RTZ));
    assert_eq!(RoundingMode::from_bits(2), Some(RDN));
    assert_eq!(RoundingMode::from_bits(3), Some(RUP));
    assert_eq!(RoundingMode::from_bits(4), Some(RMM));
    for rm in 5..=255u8 {
        assert_eq!(RoundingMode::from_bits(rm), None);
    }
    assert_eq!(
        (Flags::NV, Flags::DZ, Flags::OF, Flags::UF, Flags::NX),
        (
            Flags(0x10),
            Flags(0x08),
            Flags(0x04),
            Flags(0x02),
            Flags(0x01)
        )
    );
    let mut f = Flags::NV | Flags::NX;
    f |= Flags::UF;
    assert_eq!(f, Flags(0x13));
    assert!(f.contains(Flags::NX) && !f.contains(Flags::DZ));
    assert_eq!(Flags::default(), Flags::NONE);
}

#[test]
fn canonical_nan_results() {
    // Quiet NaN in: canonical NaN out, no flag, payload and sign dropped.
    check!(f32_add(S_QNAN_PAYLOAD, S_ONE, RNE) => (S_QNAN, NONE));
    check!(f64_add(D_QNAN_PAYLOAD, D_ONE, RNE) => (D_QNAN, NONE));
    check!(f64_mul(D_ONE, D_QNAN_PAYLOAD, RNE) => (D_QNAN, NONE));
    check!(f32_sqrt(S_QNAN_PAYLOAD, RNE) => (S_QNAN, NONE));
    // Signaling NaN in: canonical NaN out, NV.
    check!(f32_add(S_SNAN, S_ONE, RNE) => (S_QNAN, NV));
    check!(f64_sub(D_ONE, D_SNAN, RNE) => (D_QNAN, NV));
    check!(f64_div(D_SNAN, D_QNAN_PAYLOAD, RNE) => (D_QNAN, NV));
    check!(f64_sqrt(D_SNAN, RNE) => (D_QNAN, NV));
    check!(f32_mul_add(S_ONE, S_ONE, S_SNAN, RNE) => (S_QNAN, NV));
    // Invalid operations.
    check!(f64_add(D_INF, D_NINF, RNE) => (D_QNAN, NV));
    check!(f32_sub(S_INF, S_INF, RNE) => (S_QNAN, NV));
    check!(f64_mul(D_PZERO, D_NINF, RNE) => (D_QNAN, NV));
    check!(f64_div(D_PZERO, D_NZERO, RNE) => (D_QNAN, NV));
    check!(f32_div(S_INF, S_NINF, RNE) => (S_QNAN, NV));
    check!(f64_sqrt(d(-1.0), RNE) => (D_QNAN, NV));
    check!(f32_sqrt(s(-f32::MIN_POSITIVE), RNE) => (S_QNAN, NV));
    // sqrt(-0) = -0.
    check!(f64_sqrt(D_NZERO, RNE) => (D_NZERO, NONE));
    // fma: ∞ × 0 is invalid even when the addend is a quiet NaN.
    check!(f64_mul_add(D_INF, D_PZERO, D_QNAN_PAYLOAD, RNE) => (D_QNAN, NV));
    check!(f32_mul_add(S_PZERO, S_NINF, S_QNAN_PAYLOAD, RNE) => (S_QNAN, NV));
    check!(f64_mul_add(D_INF, D_ONE, D_NINF, RNE) => (D_QNAN, NV));
    // Conversions between formats.
    assert_eq!(fpu::f32_to_f64(S_SNAN), (D_QNAN, NV));
    assert_eq!(fpu::f32_to_f64(S_QNAN_PAYLOAD), (D_QNAN, NONE));
    check!(f64_to_f32(D_SNAN, RNE) => (S_QNAN, NV));
    check!(f64_to_f32(D_QNAN_PAYLOAD, RNE) => (S_QNAN, NONE));
}
const S_PZERO: u32 = 0;

#[test]
fn divide_by_zero_overflow_underflow() {
    check!(f64_div(D_ONE, D_PZERO, RNE) => (D_INF, DZ));
    check!(f64_div(d(-1.0), D_PZERO, RNE) => (D_NINF, DZ));
    check!(f32_div(S_ONE, 0x8000_0000, RNE) => (S_NINF, DZ));
    check!(f64_div(D_INF, D_PZERO, RNE) => (D_INF, NONE));
    // Overflow in each rounding mode.
    check!(f64_mul(D_MAX, d(2.0), RNE) => (D_INF, OF_NX));
    check!(f64_mul(D_MAX, d(2.0), RTZ) => (D_MAX, OF_NX));
    check!(f64_mul(D_MAX, d(2.0), RDN) => (D_MAX, OF_NX));
    check!(f64_mul(D_MAX, d(2.0), RUP) => (D_INF, OF_NX));
    check!(f64_mul(D_MAX, d(-2.0), RUP) => (D_MAX | (1 << 63), OF_NX));
    check!(f32_add(S_MAX, S_MAX, RNE) => (S_INF, OF_NX));
    check!(f32_add(S_MAX, S_MAX, RTZ) => (S_MAX, OF_NX));
    check!(f64_to_f32(D_MAX, RNE) => (S_INF, OF_NX));
    check!(f64_to_f32(D_MAX, RTZ) => (S_MAX, OF_NX));
    // Exact subnormal result: no flags at all.
    check!(f64_mul(D_MIN_NORMAL, d(0.5), RNE) => (0x0008_0000_0000_0000, NONE));
    // Inexact subnormal result: UF | NX.
    check!(f64_mul(0x0010_0000_0000_0001, d(0.5), RNE) => (0x0008_0000_0000_0000, UF_NX));
    check!(f32_mul(0x0080_0001, s(0.5), RNE) => (0x0040_0000, UF_NX));
    // Exact result MIN_NORMAL·(1 − 2⁻⁵³): representable with 53 bits and an
    // unbounded exponent, so tiny after rounding, and inexact once
    // subnormal; it rounds (tie to even) up to MIN_NORMAL: UF | NX although
    // the result is normal. (This is why the fast path requires
    // |r| > MIN_NORMAL.)
    check!(f64_mul(D_MIN_NORMAL, 0x3fef_ffff_ffff_ffff, RNE) => (D_MIN_NORMAL, UF_NX));
    // Exact result MIN_NORMAL·(1 − 2⁻⁵⁴) = ((1 − 2⁻²⁷)·MIN_NORMAL)·(1 + 2⁻²⁷):
    // rounds to MIN_NORMAL even with an unbounded exponent, so it is *not*
    // tiny after rounding (RISC-V): NX only. Tininess before rounding would
    // raise UF here.
    let a = d((1.0 - 2f64.powi(-27)) * f64::MIN_POSITIVE);
    let b = d(1.0 + 2f64.powi(-27));
    check!(f64_mul(a, b, RNE) => (D_MIN_NORMAL, NX));
    // Underflow to zero.
    check!(f64_mul(D_MIN_NORMAL, D_MIN_NORMAL, RNE) => (D_PZERO, UF_NX));
    check!(f64_mul(D_MIN_NORMAL, D_MIN_NORMAL, RUP) => (1, UF_NX));
}

#[test]
fn signed_zero_rules() {
    check!(f64_add(D_PZERO, D_NZERO, RNE) => (D_PZERO, NONE));
    check!(f64_add(D_NZERO, D_NZERO, RNE) => (D_NZERO, NONE));
    check!(f64_sub(D_ONE, D_ONE, RNE) => (D_PZERO, NONE));
    check!(f64_sub(D_ONE, D_ONE, RDN) => (D_NZERO, NONE));
    check!(f32_sub(S_ONE, S_ONE, RDN) => (0x8000_0000, NONE));
    check!(f64_mul(D_NZERO, D_ONE, RNE) => (D_NZERO, NONE));
    check!(f64_mul_add(D_NZERO, D_ONE, D_PZERO, RNE) => (D_PZERO, NONE));
    check!(f64_mul_add(D_NZERO, D_ONE, D_NZERO, RNE) => (D_NZERO, NONE));
    check!(f64_mul_add(D_ONE, D_ONE, d(-1.0), RDN) => (D_NZERO, NONE));
}

#[test]
fn fused_multiply_add_single_rounding() {
    // (1 + 2⁻³⁰)² − 1 = 2⁻²⁹ + 2⁻⁶⁰: separately rounded mul loses 2⁻⁶⁰.
    let x = d(1.0 + 2f64.powi(-30));
    check!(f64_mul_add(x, x, d(-1.0), RNE) => (d(2f64.powi(-29) + 2f64.powi(-60)), NONE));
    // 0.1 × 10 − 1 is the rounding error of 0.1, exactly: 2⁻⁵⁴.
    check!(f64_mul_add(d(0.1), d(10.0), d(-1.0), RNE) => (d(2f64.powi(-54)), NONE));
    let y = s(1.0 + 2f32.powi(-13));
    check!(f32_mul_add(y, y, s(-1.0), RNE) => (s(2f32.powi(-12) + 2f32.powi(-26)), NONE));
}

#[test]
fn min_max() {
    for (min, max) in [
        (
            fpu::f64_min as fn(u64, u64) -> (u64, Flags),
            fpu::f64_max as fn(u64, u64) -> (u64, Flags),
        ),
        (soft::f64_min, soft::f64_max),
    ] {
        assert_eq!(min(D_NZERO, D_PZERO), (D_NZERO, NONE));
        assert_eq!(min(D_PZERO, D_NZERO), (D_NZERO, NONE));
        assert_eq!(max(D_NZERO, D_PZERO), (D_PZERO, NONE));
        assert_eq!(max(D_PZERO, D_NZERO), (D_PZERO, NONE));
        assert_eq!(min(D_ONE, d(2.0)), (D_ONE, NONE));
        assert_eq!(max(D_ONE, d(2.0)), (d(2.0), NONE));
        assert_eq!(min(D_NINF, D_INF), (D_NINF, NONE));
        // One NaN: the other operand; NV only if it is signaling.
        assert_eq!(min(D_QNAN_PAYLOAD, D_ONE), (D_ONE, NONE));
        assert_eq!(max(D_ONE, D_QNAN_PAYLOAD), (D_ONE, NONE));
        assert_eq!(min(D_SNAN, D_ONE), (D_ONE, NV));
        assert_eq!(max(D_NZERO, D_SNAN), (D_NZERO, NV));
        // Two NaNs: canonical NaN.
        assert_eq!(min(D_QNAN_PAYLOAD, D_QNAN_PAYLOAD), (D_QNAN, NONE));
        assert_eq!(max(D_SNAN, D_QNAN_PAYLOAD), (D_QNAN, NV));
    }
    for (min, max) in [
        (
            fpu::f32_min as fn(u32, u32) -> (u32, Flags),
            fpu::f32_max as fn(u32, u32) -> (u32, Flags),
        ),
        (soft::f32_min, soft::f32_max),
    ] {
        assert_eq!(min(0x8000_0000, 0), (0x8000_0000, NONE));
        assert_eq!(max(0x8000_0000, 0), (0, NONE));
        assert_eq!(min(S_QNAN_PAYLOAD, S_ONE), (S_ONE, NONE));
        assert_eq!(max(S_SNAN, S_ONE), (S_ONE, NV));
        assert_eq!(min(S_SNAN, S_SNAN), (S_QNAN, NV));
        assert_eq!(max(S_QNAN_PAYLOAD, 0xffc0_0001), (S_QNAN, NONE));
    }
}

#[test]
fn comparisons() {
    // feq is quiet.
    check!(f64_eq(D_QNAN, D_ONE) => (false, NONE));
    check!(f64_eq(D_SNAN, D_ONE) => (false, NV));
    check!(f64_eq(D_QNAN, D_QNAN) => (false, NONE));
    check!(f64_eq(D_NZERO, D_PZERO) => (true, NONE));
    check!(f32_eq(S_ONE, S_ONE) => (true, NONE));
    // flt / fle are signaling.
    check!(f64_lt(D_QNAN, D_ONE) => (false, NV));
    check!(f64_le(D_ONE, D_QNAN) => (false, NV));
    check!(f32_lt(S_QNAN, S_ONE) => (false, NV));
    check!(f64_lt(D_NZERO, D_PZERO) => (false, NONE));
    check!(f64_le(D_PZERO, D_NZERO) => (true, NONE));
    check!(f64_lt(d(-2.0), d(-1.0)) => (true, NONE));
    check!(f64_lt(D_NINF, D_NZERO) => (true, NONE));
    check!(f32_le(s(1.5), s(1.25)) => (false, NONE));
    check!(f32_lt(0x8000_0001, 0x0000_0001) => (true, NONE));
}

#[test]
fn classify_masks() {
    let cases64 = [
        (D_NINF, 1 << 0),
        (d(-1.0), 1 << 1),
        (0x800f_ffff_ffff_ffff, 1 << 2),
        (D_NZERO, 1 << 3),
        (D_PZERO, 1 << 4),
        (0x0000_0000_0000_0001, 1 << 5),
        (D_MAX, 1 << 6),
        (D_INF, 1 << 7),
        (D_SNAN, 1 << 8),
        (0xfff0_0000_0000_0001, 1 << 8),
        (D_QNAN, 1 << 9),
        (D_QNAN_PAYLOAD, 1 << 9),
    ];
    for (x, m) in cases64 {
        assert_eq!(fpu::f64_classify(x), m, "fclass.d {x:#x}");
    }
    let cases32 = [
        (S_NINF, 1 << 0),
        (s(-1.0), 1 << 1),
        (0x8000_0001, 1 << 2),
        (0x8000_0000, 1 << 3),
        (0, 1 << 4),
        (0x007f_ffff, 1 << 5),
        (S_ONE, 1 << 6),
        (S_INF, 1 << 7),
        (S_SNAN, 1 << 8),
        (S_QNAN, 1 << 9),
    ];
    for (x, m) in cases32 {
        assert_eq!(fpu::f32_classify(x), m, "fclass.s {x:#x}");
    }
}

#[test]
fn float_to_int_saturation() {
    // NaN (either sign) → maximum positive value.
    check!(f32_to_i32(S_QNAN, RNE) => (i32::MAX, NV));
    check!(f32_to_i32(S_QNAN_PAYLOAD, RNE) => (i32::MAX, NV));
    check!(f32_to_u32(0xffc0_0000, RNE) => (u32::MAX, NV));
    check!(f64_to_i64(D_QNAN_PAYLOAD, RNE) => (i64::MAX, NV));
    check!(f64_to_u64(D_SNAN, RNE) => (u64::MAX, NV));
    // ±∞ and out of range.
    check!(f32_to_i32(S_INF, RNE) => (i32::MAX, NV));
    check!(f32_to_i32(S_NINF, RNE) => (i32::MIN, NV));
    check!(f64_to_i32(d(3e9), RNE) => (i32::MAX, NV));
    check!(f64_to_i32(d(-3e9), RNE) => (i32::MIN, NV));
    check!(f64_to_u32(d(-1.0), RNE) => (0, NV));
    check!(f64_to_u32(D_NINF, RNE) => (0, NV));
    check!(f64_to_u64(d(-1.0), RTZ) => (0, NV));
    check!(f64_to_u64(d(18446744073709551616.0), RNE) => (u64::MAX, NV));
    check!(f64_to_i64(d(9223372036854775808.0), RNE) => (i64::MAX, NV));
    check!(f64_to_i64(d(-9223372036854775808.0), RNE) => (i64::MIN, NONE));
    check!(f32_to_i64(s(-9223372036854775808.0), RNE) => (i64::MIN, NONE));
    check!(f64_to_i32(d(-2147483648.5), RTZ) => (i32::MIN, NX));
    check!(f64_to_i32(d(-2147483649.0), RTZ) => (i32::MIN, NV));
    check!(f64_to_i32(d(2147483647.5), RNE) => (i32::MAX, NV));
    check!(f64_to_u32(d(4294967295.4), RNE) => (u32::MAX, NX));
    // Negative values that round to zero are fine for unsigned (NX only);
    // those that round to −1 are invalid.
    check!(f32_to_u32(s(-0.5), RNE) => (0, NX));
    check!(f32_to_u32(s(-0.9), RTZ) => (0, NX));
    check!(f32_to_u32(s(-0.7), RNE) => (0, NV));
    check!(f64_to_u64(d(-0.5), RUP) => (0, NX));
    check!(f64_to_u64(d(-0.5), RDN) => (0, NV));
    check!(f64_to_u32(D_NZERO, RNE) => (0, NONE));
    // Rounding modes.
    check!(f64_to_i32(d(2.5), RNE) => (2, NX));
    check!(f64_to_i32(d(2.5), RMM) => (3, NX));
    check!(f64_to_i32(d(-2.5), RMM) => (-3, NX));
    check!(f64_to_i32(d(-2.5), RDN) => (-3, NX));
    check!(f64_to_i32(d(-2.5), RTZ) => (-2, NX));
    check!(f64_to_i32(d(2.1), RUP) => (3, NX));
    check!(f64_to_i64(d(-7.0), RNE) => (-7, NONE));
    check!(f32_to_u64(s(1e19), RNE) => (1e19f32 as u64, NONE));
}

#[test]
fn int_to_float() {
    check!(i64_to_f32(i64::MAX, RNE) => (0x5f00_0000, NX));
    check!(i64_to_f32(i64::MAX, RTZ) => (0x5eff_ffff, NX));
    check!(i64_to_f64(i64::MIN, RNE) => (0xc3e0_0000_0000_0000, NONE));
    check!(u64_to_f64(u64::MAX, RNE) => (0x43f0_0000_0000_0000, NX));
    check!(u64_to_f64(u64::MAX, RDN) => (0x43ef_ffff_ffff_ffff, NX));
    check!(i32_to_f32(16_777_217, RNE) => (0x4b80_0000, NX));
    check!(i32_to_f32(16_777_217, RUP) => (0x4b80_0001, NX));
    check!(i32_to_f32(-16_777_217, RDN) => (0xcb80_0001, NX));
    check!(u32_to_f32(u32::MAX, RNE) => (0x4f80_0000, NX));
    check!(i32_to_f64(i32::MIN, RNE) => (0xc1e0_0000_0000_0000, NONE));
    check!(u32_to_f64(u32::MAX, RTZ) => (0x41ef_ffff_ffe0_0000, NONE));
    check!(i64_to_f64(0, RDN) => (0, NONE));
    check!(u64_to_f32(0, RNE) => (0, NONE));
}

#[test]
fn float_to_float() {
    assert_eq!(fpu::f32_to_f64(0x0000_0001), (d(2f64.powi(-149)), NONE));
    assert_eq!(fpu::f32_to_f64(S_NINF), (D_NINF, NONE));
    assert_eq!(fpu::f32_to_f64(0x8000_0000), (D_NZERO, NONE));
    check!(f64_to_f32(d(0.1), RNE) => (s(0.1), NX));
    check!(f64_to_f32(d(0.1), RTZ) => (0x3dcc_cccc, NX));
    check!(f64_to_f32(d(1.5), RNE) => (s(1.5), NONE));
    check!(f64_to_f32(d(2f64.powi(-149)), RNE) => (1, NONE));
    check!(f64_to_f32(d(2f64.powi(-150)), RNE) => (0, UF_NX));
    check!(f64_to_f32(d(2f64.powi(-150)), RUP) => (1, UF_NX));
    check!(f64_to_f32(D_NINF, RTZ) => (S_NINF, NONE));
}
