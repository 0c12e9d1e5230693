//! ns/op of the host fast path vs pure SoftFloat for add / mul / fma.
//!
//! `fast` = crate-root API (exactness computed), `fast_acc` = `*_acc` entry
//! point with NX already accrued, `soft` = `samsara_fpu::soft`. Each
//! iteration runs one operation on operands from a small rotating table of
//! ordinary normal numbers (the fast path's domain), so the numbers are
//! ns per operation including the loop.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use samsara_fpu::{self as fpu, Flags, RoundingMode, soft};

const RNE: RoundingMode = RoundingMode::NearestEven;
const N: usize = 64;

fn operands64() -> Vec<u64> {
    (0..N)
        .map(|i| (1.0 + i as f64 * std::f64::consts::FRAC_1_PI).to_bits())
        .collect()
}
fn operands32() -> Vec<u32> {
    (0..N)
        .map(|i| (1.0 + i as f32 * std::f32::consts::FRAC_1_PI).to_bits())
        .collect()
}

macro_rules! bench2 {
    ($c:expr, $ops:expr, $name:literal, $fast:path, $acc:path, $soft:path) => {{
        let ops = &$ops;
        let mut g = $c.benchmark_group($name);
        let mut i = 0usize;
        g.bench_function("fast", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                black_box($fast(black_box(ops[i]), black_box(ops[N - 1 - i]), RNE))
            })
        });
        g.bench_function("fast_acc", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                black_box($acc(
                    black_box(ops[i]),
                    black_box(ops[N - 1 - i]),
                    RNE,
                    Flags::NX,
                ))
            })
        });
        g.bench_function("soft", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                black_box($soft(black_box(ops[i]), black_box(ops[N - 1 - i]), RNE))
            })
        });
        g.finish();
    }};
}

macro_rules! bench3 {
    ($c:expr, $ops:expr, $name:literal, $fast:path, $acc:path, $soft:path) => {{
        let ops = &$ops;
        let mut g = $c.benchmark_group($name);
        let mut i = 0usize;
        g.bench_function("fast", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                let (x, y, z) = (ops[i], ops[N - 1 - i], ops[(i * 7) % N]);
                black_box($fast(black_box(x), black_box(y), black_box(z), RNE))
            })
        });
        g.bench_function("fast_acc", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                let (x, y, z) = (ops[i], ops[N - 1 - i], ops[(i * 7) % N]);
                black_box($acc(
                    black_box(x),
                    black_box(y),
                    black_box(z),
                    RNE,
                    Flags::NX,
                ))
            })
        });
        g.bench_function("soft", |b| {
            b.iter(|| {
                i = (i + 1) & (N - 1);
                let (x, y, z) = (ops[i], ops[N - 1 - i], ops[(i * 7) % N]);
                black_box($soft(black_box(x), black_box(y), black_box(z), RNE))
            })
        });
        g.finish();
    }};
}

fn benches(c: &mut Criterion) {
    let d = operands64();
    let s = operands32();
    bench2!(
        c,
        d,
        "f64_add",
        fpu::f64_add,
        fpu::f64_add_acc,
        soft::f64_add
    );
    bench2!(
        c,
        d,
        "f64_mul",
        fpu::f64_mul,
        fpu::f64_mul_acc,
        soft::f64_mul
    );
    bench3!(
        c,
        d,
        "f64_mul_add",
        fpu::f64_mul_add,
        fpu::f64_mul_add_acc,
        soft::f64_mul_add
    );
    bench2!(
        c,
        s,
        "f32_add",
        fpu::f32_add,
        fpu::f32_add_acc,
        soft::f32_add
    );
    bench2!(
        c,
        s,
        "f32_mul",
        fpu::f32_mul,
        fpu::f32_mul_acc,
        soft::f32_mul
    );
    bench3!(
        c,
        s,
        "f32_mul_add",
        fpu::f32_mul_add,
        fpu::f32_mul_add_acc,
        soft::f32_mul_add
    );
}

criterion_group! {
    name = fpu_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = benches
}
criterion_main!(fpu_benches);
