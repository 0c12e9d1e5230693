//! Differential tests: the crate-root API (host fast path + SoftFloat fallback)
//! and the bare fast path (`hard`) against the pure SoftFloat path (`soft`),
//! bit-for-bit, flags included.

mod common;

use common::{Rng, f32_bits, f32_nudge, f64_bits, f64_nudge};
use proptest::prelude::*;
use samsara_fpu::{self as fpu, Flags, RoundingMode, hard, soft};

const RNE: RoundingMode = RoundingMode::NearestEven;

/// Number of random operand tuples per operation (more in release builds).
fn iters() -> usize {
    if cfg!(debug_assertions) {
        1_000_000
    } else {
        2_000_000
    }
}

fn rand_acc(r: &mut Rng) -> Flags {
    match r.below(4) {
        0 => Flags::NONE,
        1 => Flags::NX,
        _ => Flags((r.next() & 0x1f) as u8),
    }
}

fn rand_rm(r: &mut Rng) -> RoundingMode {
    RoundingMode::ALL[r.below(5) as usize]
}

// Values whose operations land near the normal/subnormal boundary and near
// overflow, where the fast path's conditions are decided.
const D_MIN: f64 = f64::MIN_POSITIVE;
const S_MIN: f32 = f32::MIN_POSITIVE;

fn d_target(r: &mut Rng) -> f64 {
    let t = match r.below(3) {
        0 => D_MIN,
        1 => f64::MAX,
        _ => 1.0,
    };
    let scale = 1.0 + (r.below(2001) as f64 - 1000.0) * 2f64.powi(-(r.below(60) as i32));
    let t = t * scale.min(1.9);
    if r.bool() { -t } else { t }
}
fn s_target(r: &mut Rng) -> f32 {
    let t = match r.below(3) {
        0 => S_MIN as f64,
        1 => f32::MAX as f64,
        _ => 1.0,
    };
    let scale = 1.0 + (r.below(2001) as f64 - 1000.0) * 2f64.powi(-(r.below(30) as i32));
    let t = (t * scale.min(1.9)) as f32;
    if r.bool() { -t } else { t }
}

type D2 = fn(u64, u64, Flags) -> Option<(u64, Flags)>;
type D2Acc = fn(u64, u64, RoundingMode, Flags) -> (u64, Flags);
type D2Soft = fn(u64, u64, RoundingMode) -> (u64, Flags);
type S2 = fn(u32, u32, Flags) -> Option<(u32, Flags)>;
type S2Acc = fn(u32, u32, RoundingMode, Flags) -> (u32, Flags);
type S2Soft = fn(u32, u32, RoundingMode) -> (u32, Flags);

/// Checks one binary64 binary operation on `n` operand pairs; returns how
/// often the bare fast path answered.
fn check_d2(
    name: &str,
    hard: D2,
    acc_api: D2Acc,
    soft: D2Soft,
    mut gen_ops: impl FnMut(&mut Rng) -> (u64, u64),
    seed: u64,
) -> usize {
    let mut r = Rng(seed);
    let mut hits = 0;
    for i in 0..iters() {
        let (a, b) = gen_ops(&mut r);
        let want = soft(a, b, RNE);
        let acc = rand_acc(&mut r);
        let want_acc = (want.0, want.1 | acc);
        let got = acc_api(a, b, RNE, Flags::NONE);
        assert_eq!(got, want, "{name}({a:#018x}, {b:#018x}) RNE [iter {i}]");
        let got = acc_api(a, b, RNE, acc);
        assert_eq!(
            got, want_acc,
            "{name}_acc({a:#018x}, {b:#018x}, acc {acc:?}) [iter {i}]"
        );
        if let Some(h) = hard(a, b, acc) {
            hits += 1;
            assert_eq!(
                h, want_acc,
                "hard {name}({a:#018x}, {b:#018x}, acc {acc:?})"
            );
        }
        if i % 8 == 0 {
            let rm = rand_rm(&mut r);
            assert_eq!(acc_api(a, b, rm, acc), {
                let w = soft(a, b, rm);
                (w.0, w.1 | acc)
            });
        }
    }
    hits
}

fn check_s2(
    name: &str,
    hard: S2,
    acc_api: S2Acc,
    soft: S2Soft,
    mut gen_ops: impl FnMut(&mut Rng) -> (u32, u32),
    seed: u64,
) -> usize {
    let mut r = Rng(seed);
    let mut hits = 0;
    for i in 0..iters() {
        let (a, b) = gen_ops(&mut r);
        let want = soft(a, b, RNE);
        let acc = rand_acc(&mut r);
        let want_acc = (want.0, want.1 | acc);
        let got = acc_api(a, b, RNE, Flags::NONE);
        assert_eq!(got, want, "{name}({a:#010x}, {b:#010x}) RNE [iter {i}]");
        let got = acc_api(a, b, RNE, acc);
        assert_eq!(
            got, want_acc,
            "{name}_acc({a:#010x}, {b:#010x}, acc {acc:?}) [iter {i}]"
        );
        if let Some(h) = hard(a, b, acc) {
            hits += 1;
            assert_eq!(
                h, want_acc,
                "hard {name}({a:#010x}, {b:#010x}, acc {acc:?})"
            );
        }
        if i % 8 == 0 {
            let rm = rand_rm(&mut r);
            assert_eq!(acc_api(a, b, rm, acc), {
                let w = soft(a, b, rm);
                (w.0, w.1 | acc)
            });
        }
    }
    hits
}

fn assert_hits(name: &str, hits: usize) {
    // The fast path must really be exercised (a large share of operands are
    // normal with normal results).
    let min = iters() / 5;
    assert!(hits >= min, "{name}: fast path answered only {hits} times");
}

#[test]
fn f64_add_sub() {
    let gen_add = |r: &mut Rng| {
        if r.below(4) == 0 {
            let t = d_target(r);
            let a = f64_bits(r);
            let b = (t - f64::from_bits(a)).to_bits();
            (a, f64_nudge(r, b))
        } else {
            (f64_bits(r), f64_bits(r))
        }
    };
    let h = check_d2(
        "f64_add",
        hard::f64_add,
        fpu::f64_add_acc,
        soft::f64_add,
        gen_add,
        1,
    );
    assert_hits("f64_add", h);
    let gen_sub = |r: &mut Rng| {
        if r.below(4) == 0 {
            let t = d_target(r);
            let a = f64_bits(r);
            let b = (f64::from_bits(a) - t).to_bits();
            (a, f64_nudge(r, b))
        } else {
            (f64_bits(r), f64_bits(r))
        }
    };
    let h = check_d2(
        "f64_sub",
        hard::f64_sub,
        fpu::f64_sub_acc,
        soft::f64_sub,
        gen_sub,
        2,
    );
    assert_hits("f64_sub", h);
}

#[test]
fn f64_mul_div() {
    let gen_mul = |r: &mut Rng| {
        if r.below(3) == 0 {
            let t = d_target(r);
            let a = f64_bits(r);
            let b = (t / f64::from_bits(a)).to_bits();
            (a, f64_nudge(r, b))
        } else {
            (f64_bits(r), f64_bits(r))
        }
    };
    let h = check_d2(
        "f64_mul",
        hard::f64_mul,
        fpu::f64_mul_acc,
        soft::f64_mul,
        gen_mul,
        3,
    );
    assert_hits("f64_mul", h);
    let gen_div = |r: &mut Rng| match r.below(4) {
        0 => {
            let t = d_target(r);
            let b = f64_bits(r);
            let a = (t * f64::from_bits(b)).to_bits();
            (f64_nudge(r, a), b)
        }
        1 => {
            // Exact quotients: a = q * b with short significands.
            let q = f64_bits(r) & !0xffff_ffff;
            let b = f64_bits(r) & !0xffff_ffff;
            ((f64::from_bits(q) * f64::from_bits(b)).to_bits(), b)
        }
        _ => (f64_bits(r), f64_bits(r)),
    };
    let h = check_d2(
        "f64_div",
        hard::f64_div,
        fpu::f64_div_acc,
        soft::f64_div,
        gen_div,
        4,
    );
    assert_hits("f64_div", h);
}

#[test]
fn f32_add_sub() {
    let gen_add = |r: &mut Rng| {
        if r.below(4) == 0 {
            let t = s_target(r);
            let a = f32_bits(r);
            let b = (t - f32::from_bits(a)).to_bits();
            (a, f32_nudge(r, b))
        } else {
            (f32_bits(r), f32_bits(r))
        }
    };
    let h = check_s2(
        "f32_add",
        hard::f32_add,
        fpu::f32_add_acc,
        soft::f32_add,
        gen_add,
        5,
    );
    assert_hits("f32_add", h);
    let gen_sub = |r: &mut Rng| {
        if r.below(4) == 0 {
            let t = s_target(r);
            let a = f32_bits(r);
            let b = (f32::from_bits(a) - t).to_bits();
            (a, f32_nudge(r, b))
        } else {
            (f32_bits(r), f32_bits(r))
        }
    };
    let h = check_s2(
        "f32_sub",
        hard::f32_sub,
        fpu::f32_sub_acc,
        soft::f32_sub,
        gen_sub,
        6,
    );
    assert_hits("f32_sub", h);
}

#[test]
fn f32_mul_div() {
    let gen_mul = |r: &mut Rng| {
        if r.below(3) == 0 {
            let t = s_target(r);
            let a = f32_bits(r);
            let b = (t / f32::from_bits(a)).to_bits();
            (a, f32_nudge(r, b))
        } else {
            (f32_bits(r), f32_bits(r))
        }
    };
    let h = check_s2(
        "f32_mul",
        hard::f32_mul,
        fpu::f32_mul_acc,
        soft::f32_mul,
        gen_mul,
        7,
    );
    assert_hits("f32_mul", h);
    let gen_div = |r: &mut Rng| match r.below(4) {
        0 => {
            let t = s_target(r);
            let b = f32_bits(r);
            let a = (t * f32::from_bits(b)).to_bits();
            (f32_nudge(r, a), b)
        }
        1 => {
            let q = f32_bits(r) & !0xfff;
            let b = f32_bits(r) & !0xfff;
            ((f32::from_bits(q) * f32::from_bits(b)).to_bits(), b)
        }
        _ => (f32_bits(r), f32_bits(r)),
    };
    let h = check_s2(
        "f32_div",
        hard::f32_div,
        fpu::f32_div_acc,
        soft::f32_div,
        gen_div,
        8,
    );
    assert_hits("f32_div", h);
}

#[test]
fn sqrt_both() {
    let mut r = Rng(9);
    let (mut hd, mut hs) = (0, 0);
    for _ in 0..iters() {
        let acc = rand_acc(&mut r);
        let a = match r.below(3) {
            0 => {
                // Near exact squares.
                let x = f64::from_bits(f64_bits(&mut r) & !0x3fff_ffff);
                f64_nudge(&mut r, (x * x).to_bits())
            }
            _ => f64_bits(&mut r),
        };
        let want = soft::f64_sqrt(a, RNE);
        assert_eq!(fpu::f64_sqrt(a, RNE), want, "f64_sqrt({a:#018x})");
        assert_eq!(fpu::f64_sqrt_acc(a, RNE, acc), (want.0, want.1 | acc));
        if let Some(h) = hard::f64_sqrt(a, acc) {
            hd += 1;
            assert_eq!(h, (want.0, want.1 | acc), "hard f64_sqrt({a:#018x})");
        }
        let rm = rand_rm(&mut r);
        assert_eq!(fpu::f64_sqrt(a, rm), soft::f64_sqrt(a, rm));

        let a = match r.below(3) {
            0 => {
                let x = f32::from_bits(f32_bits(&mut r) & !0xfff);
                f32_nudge(&mut r, (x * x).to_bits())
            }
            _ => f32_bits(&mut r),
        };
        let want = soft::f32_sqrt(a, RNE);
        assert_eq!(fpu::f32_sqrt(a, RNE), want, "f32_sqrt({a:#010x})");
        assert_eq!(fpu::f32_sqrt_acc(a, RNE, acc), (want.0, want.1 | acc));
        if let Some(h) = hard::f32_sqrt(a, acc) {
            hs += 1;
            assert_eq!(h, (want.0, want.1 | acc), "hard f32_sqrt({a:#010x})");
        }
        assert_eq!(fpu::f32_sqrt(a, rm), soft::f32_sqrt(a, rm));
    }
    assert_hits("f64_sqrt", hd);
    assert_hits("f32_sqrt", hs);
}

#[test]
fn f64_fma() {
    let mut r = Rng(10);
    let mut hits = 0;
    for i in 0..iters() {
        let acc = rand_acc(&mut r);
        let (a, b) = (f64_bits(&mut r), f64_bits(&mut r));
        let p = f64::from_bits(a) * f64::from_bits(b);
        let c = match r.below(5) {
            // Cancellation / results near the normal boundary and overflow.
            0 => f64_nudge(&mut r, (-p).to_bits()),
            1 => {
                let t = d_target(&mut r);
                f64_nudge(&mut r, (t - p).to_bits())
            }
            // Addend far below the product (product exact, sum inexact).
            2 => (p * 2f64.powi(-(r.below(120) as i32))).to_bits() ^ (r.next() & (1 << 63)),
            _ => f64_bits(&mut r),
        };
        let want = soft::f64_mul_add(a, b, c, RNE);
        let ctx = format!("f64_mul_add({a:#018x}, {b:#018x}, {c:#018x}) [iter {i}]");
        assert_eq!(fpu::f64_mul_add(a, b, c, RNE), want, "{ctx}");
        assert_eq!(
            fpu::f64_mul_add_acc(a, b, c, RNE, acc),
            (want.0, want.1 | acc),
            "{ctx}"
        );
        if let Some(h) = hard::f64_mul_add(a, b, c, acc) {
            hits += 1;
            assert_eq!(h, (want.0, want.1 | acc), "hard {ctx} acc {acc:?}");
        }
        if i % 8 == 0 {
            let rm = rand_rm(&mut r);
            assert_eq!(
                fpu::f64_mul_add(a, b, c, rm),
                soft::f64_mul_add(a, b, c, rm)
            );
        }
    }
    assert_hits("f64_mul_add", hits);
}

#[test]
fn f32_fma() {
    let mut r = Rng(11);
    let mut hits = 0;
    for i in 0..iters() {
        let acc = rand_acc(&mut r);
        let (a, b) = (f32_bits(&mut r), f32_bits(&mut r));
        let p = f32::from_bits(a) as f64 * f32::from_bits(b) as f64;
        let c = match r.below(5) {
            0 => f32_nudge(&mut r, (-p as f32).to_bits()),
            1 => {
                let t = s_target(&mut r) as f64;
                f32_nudge(&mut r, ((t - p) as f32).to_bits())
            }
            2 => {
                ((p * 2f64.powi(-(r.below(60) as i32))) as f32).to_bits()
                    ^ (r.next() as u32 & (1 << 31))
            }
            _ => f32_bits(&mut r),
        };
        let want = soft::f32_mul_add(a, b, c, RNE);
        let ctx = format!("f32_mul_add({a:#010x}, {b:#010x}, {c:#010x}) [iter {i}]");
        assert_eq!(fpu::f32_mul_add(a, b, c, RNE), want, "{ctx}");
        assert_eq!(
            fpu::f32_mul_add_acc(a, b, c, RNE, acc),
            (want.0, want.1 | acc),
            "{ctx}"
        );
        if let Some(h) = hard::f32_mul_add(a, b, c, acc) {
            hits += 1;
            assert_eq!(h, (want.0, want.1 | acc), "hard {ctx} acc {acc:?}");
            // Independent oracle for the value: the C library's fmaf.
            let host = f32::from_bits(a).mul_add(f32::from_bits(b), f32::from_bits(c));
            assert_eq!(h.0, host.to_bits(), "round-to-odd vs fmaf: {ctx}");
        }
        if i % 8 == 0 {
            let rm = rand_rm(&mut r);
            assert_eq!(
                fpu::f32_mul_add(a, b, c, rm),
                soft::f32_mul_add(a, b, c, rm)
            );
        }
    }
    assert_hits("f32_mul_add", hits);
}

#[test]
fn compare_minmax_classify_match_softfloat() {
    let mut r = Rng(12);
    for _ in 0..iters() {
        let (a, b) = (f64_bits(&mut r), f64_bits(&mut r));
        let b = if r.below(8) == 0 {
            a ^ (r.next() & (1 << 63))
        } else {
            b
        };
        assert_eq!(
            fpu::f64_eq(a, b),
            soft::f64_eq(a, b),
            "f64_eq({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f64_lt(a, b),
            soft::f64_lt(a, b),
            "f64_lt({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f64_le(a, b),
            soft::f64_le(a, b),
            "f64_le({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f64_min(a, b),
            soft::f64_min(a, b),
            "f64_min({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f64_max(a, b),
            soft::f64_max(a, b),
            "f64_max({a:#x}, {b:#x})"
        );
        assert_eq!(fpu::f64_classify(a).count_ones(), 1);

        let (a, b) = (f32_bits(&mut r), f32_bits(&mut r));
        let b = if r.below(8) == 0 {
            a ^ (r.next() as u32 & (1 << 31))
        } else {
            b
        };
        assert_eq!(
            fpu::f32_eq(a, b),
            soft::f32_eq(a, b),
            "f32_eq({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f32_lt(a, b),
            soft::f32_lt(a, b),
            "f32_lt({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f32_le(a, b),
            soft::f32_le(a, b),
            "f32_le({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f32_min(a, b),
            soft::f32_min(a, b),
            "f32_min({a:#x}, {b:#x})"
        );
        assert_eq!(
            fpu::f32_max(a, b),
            soft::f32_max(a, b),
            "f32_max({a:#x}, {b:#x})"
        );
        assert_eq!(fpu::f32_classify(a).count_ones(), 1);
    }
}

#[test]
fn conversions_match_softfloat() {
    let mut r = Rng(13);
    for _ in 0..iters() {
        let rm = if r.bool() { RNE } else { rand_rm(&mut r) };
        let d = f64_bits(&mut r);
        let s = f32_bits(&mut r);
        assert_eq!(
            fpu::f64_to_f32(d, rm),
            soft::f64_to_f32(d, rm),
            "f64_to_f32({d:#x}, {rm:?})"
        );
        assert_eq!(
            fpu::f32_to_f64(s),
            soft::f32_to_f64(s),
            "f32_to_f64({s:#x})"
        );
        assert_eq!(fpu::f64_to_i32(d, rm), soft::f64_to_i32(d, rm));
        assert_eq!(fpu::f64_to_u32(d, rm), soft::f64_to_u32(d, rm));
        assert_eq!(fpu::f64_to_i64(d, rm), soft::f64_to_i64(d, rm));
        assert_eq!(fpu::f64_to_u64(d, rm), soft::f64_to_u64(d, rm));
        assert_eq!(fpu::f32_to_i32(s, rm), soft::f32_to_i32(s, rm));
        assert_eq!(fpu::f32_to_u32(s, rm), soft::f32_to_u32(s, rm));
        assert_eq!(fpu::f32_to_i64(s, rm), soft::f32_to_i64(s, rm));
        assert_eq!(fpu::f32_to_u64(s, rm), soft::f32_to_u64(s, rm));

        // Integers: random widths so small and boundary values are common.
        let bits = r.below(65) as u32;
        let mut v = if bits == 0 {
            0
        } else {
            r.next() >> (64 - bits)
        };
        if r.below(4) == 0 {
            v = v.wrapping_neg();
        }
        let (v64, v32) = (v as i64, v as i32);
        assert_eq!(
            fpu::i64_to_f64(v64, rm),
            soft::i64_to_f64(v64, rm),
            "i64_to_f64({v64}, {rm:?})"
        );
        assert_eq!(
            fpu::u64_to_f64(v, rm),
            soft::u64_to_f64(v, rm),
            "u64_to_f64({v}, {rm:?})"
        );
        assert_eq!(
            fpu::i64_to_f32(v64, rm),
            soft::i64_to_f32(v64, rm),
            "i64_to_f32({v64}, {rm:?})"
        );
        assert_eq!(
            fpu::u64_to_f32(v, rm),
            soft::u64_to_f32(v, rm),
            "u64_to_f32({v}, {rm:?})"
        );
        assert_eq!(fpu::i32_to_f64(v32, rm), soft::i32_to_f64(v32, rm));
        assert_eq!(
            fpu::u32_to_f64(v32 as u32, rm),
            soft::u32_to_f64(v32 as u32, rm)
        );
        assert_eq!(
            fpu::i32_to_f32(v32, rm),
            soft::i32_to_f32(v32, rm),
            "i32_to_f32({v32}, {rm:?})"
        );
        assert_eq!(
            fpu::u32_to_f32(v32 as u32, rm),
            soft::u32_to_f32(v32 as u32, rm)
        );
    }
}

/// SoftFloat's rounding mode and flags are per thread: harts running on
/// different threads with different rounding modes must not disturb each
/// other.
#[test]
fn thread_local_softfloat_state() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut r = Rng(100 + t);
                let rm = RoundingMode::ALL[(t as usize) % 5];
                // 1/3 in each mode, computed once: every thread must keep
                // getting its own mode's answer and exactly NX.
                let want = soft::f64_div(0x3ff0_0000_0000_0000, 0x4008_0000_0000_0000, rm);
                for _ in 0..200_000 {
                    let got = soft::f64_div(0x3ff0_0000_0000_0000, 0x4008_0000_0000_0000, rm);
                    assert_eq!(got, want);
                    assert_eq!(got.1, Flags::NX);
                    // Interleave other flag-raising work on this thread.
                    let x = f64_bits(&mut r);
                    let _ = soft::f64_sqrt(x, rm);
                }
                want.0
            })
        })
        .collect();
    let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // RNE / RTZ / RDN / RUP / RMM of 1/3.
    assert_eq!(results[0], 0x3fd5_5555_5555_5555);
    assert_eq!(results[1], 0x3fd5_5555_5555_5555);
    assert_eq!(results[2], 0x3fd5_5555_5555_5555);
    assert_eq!(results[3], 0x3fd5_5555_5555_5556);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn prop_f64_ops(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), accb in 0u8..32) {
        let acc = Flags(accb);
        let w = soft::f64_add(a, b, RNE);
        prop_assert_eq!(fpu::f64_add_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f64_sub(a, b, RNE);
        prop_assert_eq!(fpu::f64_sub_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f64_mul(a, b, RNE);
        prop_assert_eq!(fpu::f64_mul_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f64_div(a, b, RNE);
        prop_assert_eq!(fpu::f64_div_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f64_sqrt(a, RNE);
        prop_assert_eq!(fpu::f64_sqrt_acc(a, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f64_mul_add(a, b, c, RNE);
        prop_assert_eq!(fpu::f64_mul_add_acc(a, b, c, RNE, acc), (w.0, w.1 | acc));
    }

    #[test]
    fn prop_f32_ops(a in any::<u32>(), b in any::<u32>(), c in any::<u32>(), accb in 0u8..32) {
        let acc = Flags(accb);
        let w = soft::f32_add(a, b, RNE);
        prop_assert_eq!(fpu::f32_add_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f32_sub(a, b, RNE);
        prop_assert_eq!(fpu::f32_sub_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f32_mul(a, b, RNE);
        prop_assert_eq!(fpu::f32_mul_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f32_div(a, b, RNE);
        prop_assert_eq!(fpu::f32_div_acc(a, b, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f32_sqrt(a, RNE);
        prop_assert_eq!(fpu::f32_sqrt_acc(a, RNE, acc), (w.0, w.1 | acc));
        let w = soft::f32_mul_add(a, b, c, RNE);
        prop_assert_eq!(fpu::f32_mul_add_acc(a, b, c, RNE, acc), (w.0, w.1 | acc));
    }

    /// Operands with short significands and moderate exponents: exact
    /// results (no NX) are frequent, which is where the exactness tests of
    /// the fast path matter.
    #[test]
    fn prop_exactness(
        sa in 0u64..2, sb in 0u64..2, sc in 0u64..2,
        ea in 1000u64..1050, eb in 1000u64..1050, ec in 1000u64..1050,
        fa in 0u64..64, fb in 0u64..64, fc in 0u64..64,
    ) {
        let mk = |s: u64, e: u64, f: u64| (s << 63) | (e << 52) | (f << 46);
        let (a, b, c) = (mk(sa, ea, fa), mk(sb, eb, fb), mk(sc, ec, fc));
        prop_assert_eq!(fpu::f64_add(a, b, RNE), soft::f64_add(a, b, RNE));
        prop_assert_eq!(fpu::f64_mul(a, b, RNE), soft::f64_mul(a, b, RNE));
        prop_assert_eq!(fpu::f64_div(a, b, RNE), soft::f64_div(a, b, RNE));
        prop_assert_eq!(fpu::f64_sqrt(a, RNE), soft::f64_sqrt(a, RNE));
        prop_assert_eq!(fpu::f64_mul_add(a, b, c, RNE), soft::f64_mul_add(a, b, c, RNE));
        let mk32 = |s: u64, e: u64, f: u64| ((s << 31) | ((e + 127 - 1023) << 23) | (f << 17)) as u32;
        let (a, b, c) = (mk32(sa, ea, fa), mk32(sb, eb, fb), mk32(sc, ec, fc));
        prop_assert_eq!(fpu::f32_add(a, b, RNE), soft::f32_add(a, b, RNE));
        prop_assert_eq!(fpu::f32_mul(a, b, RNE), soft::f32_mul(a, b, RNE));
        prop_assert_eq!(fpu::f32_div(a, b, RNE), soft::f32_div(a, b, RNE));
        prop_assert_eq!(fpu::f32_sqrt(a, RNE), soft::f32_sqrt(a, RNE));
        prop_assert_eq!(fpu::f32_mul_add(a, b, c, RNE), soft::f32_mul_add(a, b, c, RNE));
    }
}
