//! Shared operand generators: a small deterministic PRNG and edge-case-heavy
//! distributions of binary32/binary64 bit patterns.

#![allow(dead_code)]

/// SplitMix64: tiny, deterministic, good enough for test operands.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

pub const F64_SPECIALS: &[u64] = &[
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // canonical qNaN
    0xfff8_0000_0000_0000, // negative qNaN
    0x7ff0_0000_0000_0001, // sNaN
    0x7ff4_0000_0000_0000, // sNaN
    0xfff0_0000_0000_0001, // negative sNaN
    0x7fff_ffff_ffff_ffff, // qNaN, all payload
    0x0000_0000_0000_0001, // min subnormal
    0x000f_ffff_ffff_ffff, // max subnormal
    0x0010_0000_0000_0000, // min normal
    0x0010_0000_0000_0001, // min normal + ulp
    0x0020_0000_0000_0000, // 2 * min normal
    0x7fef_ffff_ffff_ffff, // max
    0x7fe0_0000_0000_0000, // 2^1023
    0x3ff0_0000_0000_0000, // 1
    0xbff0_0000_0000_0000, // -1
    0x3ff0_0000_0000_0001, // 1 + ulp
    0x3fef_ffff_ffff_ffff, // 1 - ulp/2
    0x4000_0000_0000_0000, // 2
    0x4008_0000_0000_0000, // 3
    0x3fe0_0000_0000_0000, // 0.5
    0x43e0_0000_0000_0000, // 2^63
    0xc3e0_0000_0000_0000, // -2^63
    0x41e0_0000_0000_0000, // 2^31
    0x41f0_0000_0000_0000, // 2^32
    0x43f0_0000_0000_0000, // 2^64
    0x3ca0_0000_0000_0000, // 2^-53
    0x3cb0_0000_0000_0000, // 2^-52
];

pub const F32_SPECIALS: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7f80_0001,
    0x7fa0_0000,
    0xff80_0001,
    0x7fff_ffff,
    0x0000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x0080_0001,
    0x0100_0000,
    0x7f7f_ffff,
    0x7f00_0000,
    0x3f80_0000,
    0xbf80_0000,
    0x3f80_0001,
    0x3f7f_ffff,
    0x4000_0000,
    0x4040_0000,
    0x3f00_0000,
    0x5f00_0000, // 2^63
    0xdf00_0000,
    0x4f00_0000, // 2^31
    0x4f80_0000, // 2^32
    0x5f80_0000, // 2^64
    0x3380_0000, // 2^-24
    0x3400_0000, // 2^-23
];

/// A binary64 bit pattern from a mix of distributions.
pub fn f64_bits(r: &mut Rng) -> u64 {
    let sign = if r.bool() { 1u64 << 63 } else { 0 };
    match r.below(10) {
        0 => F64_SPECIALS[r.below(F64_SPECIALS.len() as u64) as usize] ^ (sign * r.below(2)),
        1 => r.next(),
        // Few significant bits: exact results become common.
        2 | 3 => {
            let exp = 1023 - 30 + r.below(60);
            let k = r.below(10) as u32;
            let frac = if k == 0 {
                0
            } else {
                (r.next() >> (64 - k)) << (52 - k)
            };
            sign | (exp << 52) | frac
        }
        // Ordinary magnitudes.
        4 | 5 => sign | ((1023 - 40 + r.below(80)) << 52) | (r.next() >> 12),
        // Near the bottom of the normal range, and subnormals.
        6 => sign | (r.below(60) << 52) | (r.next() >> 12),
        // Near the top of the range.
        7 => sign | ((2046 - r.below(60)) << 52) | (r.next() >> 12),
        // Around half the exponent range (products/quotients reach the ends).
        8 => {
            let e = if r.bool() {
                511 + r.below(30)
            } else {
                1535 - r.below(30)
            };
            sign | (e << 52) | (r.next() >> 12)
        }
        // Any exponent, random significand.
        _ => sign | (r.below(2047) << 52) | (r.next() >> 12),
    }
}

/// A binary32 bit pattern from a mix of distributions.
pub fn f32_bits(r: &mut Rng) -> u32 {
    let sign = if r.bool() { 1u32 << 31 } else { 0 };
    let frac = (r.next() >> 41) as u32; // 23 bits
    match r.below(10) {
        0 => F32_SPECIALS[r.below(F32_SPECIALS.len() as u64) as usize] ^ (sign * r.below(2) as u32),
        1 => r.next() as u32,
        2 | 3 => {
            let exp = (127 - 15 + r.below(30)) as u32;
            let k = r.below(8) as u32;
            let frac = if k == 0 {
                0
            } else {
                (frac >> (23 - k)) << (23 - k)
            };
            sign | (exp << 23) | frac
        }
        4 | 5 => sign | (((127 - 20 + r.below(40)) as u32) << 23) | frac,
        6 => sign | ((r.below(30) as u32) << 23) | frac,
        7 => sign | (((254 - r.below(30)) as u32) << 23) | frac,
        8 => {
            let e = if r.bool() {
                63 + r.below(15)
            } else {
                191 - r.below(15)
            } as u32;
            sign | (e << 23) | frac
        }
        _ => sign | ((r.below(255) as u32) << 23) | frac,
    }
}

/// Nudges a bit pattern by a few ulps (keeps the sign).
pub fn f64_nudge(r: &mut Rng, x: u64) -> u64 {
    let d = r.below(5);
    if r.bool() {
        x.wrapping_add(d)
    } else {
        x.wrapping_sub(d)
    }
}
pub fn f32_nudge(r: &mut Rng, x: u32) -> u32 {
    let d = r.below(5) as u32;
    if r.bool() {
        x.wrapping_add(d)
    } else {
        x.wrapping_sub(d)
    }
}
