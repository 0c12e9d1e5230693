//! Integer arithmetic helpers (M extension and RV64 word forms) with the
//! RISC-V results for division by zero and overflow.

#[inline(always)]
pub(crate) fn sext32(v: u64) -> u64 {
    v as i32 as i64 as u64
}

#[inline(always)]
pub(crate) fn mulh(a: u64, b: u64) -> u64 {
    ((i128::from(a as i64) * i128::from(b as i64)) >> 64) as u64
}

#[inline(always)]
pub(crate) fn mulhsu(a: u64, b: u64) -> u64 {
    ((i128::from(a as i64) * i128::from(b)) >> 64) as u64
}

#[inline(always)]
pub(crate) fn mulhu(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) >> 64) as u64
}

#[inline(always)]
pub(crate) fn div(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i64, b as i64);
    if b == 0 {
        u64::MAX
    } else {
        a.wrapping_div(b) as u64
    }
}

#[inline(always)]
pub(crate) fn divu(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(u64::MAX)
}

#[inline(always)]
pub(crate) fn rem(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i64, b as i64);
    if b == 0 {
        a as u64
    } else {
        a.wrapping_rem(b) as u64
    }
}

#[inline(always)]
pub(crate) fn remu(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { a % b }
}

#[inline(always)]
pub(crate) fn divw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        u64::MAX
    } else {
        a.wrapping_div(b) as i64 as u64
    }
}

#[inline(always)]
pub(crate) fn divuw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as u32, b as u32);
    a.checked_div(b).map_or(u64::MAX, |q| sext32(u64::from(q)))
}

#[inline(always)]
pub(crate) fn remw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        a as i64 as u64
    } else {
        a.wrapping_rem(b) as i64 as u64
    }
}

#[inline(always)]
pub(crate) fn remuw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as u32, b as u32);
    if b == 0 {
        sext32(u64::from(a))
    } else {
        sext32(u64::from(a % b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_corner_cases() {
        assert_eq!(div(5, 0), u64::MAX);
        assert_eq!(div(i64::MIN as u64, u64::MAX), i64::MIN as u64);
        assert_eq!(rem(i64::MIN as u64, u64::MAX), 0);
        assert_eq!(rem(7, 0), 7);
        assert_eq!(divu(7, 0), u64::MAX);
        assert_eq!(remu(7, 0), 7);
        assert_eq!(divw(i32::MIN as u64, u64::MAX), i32::MIN as i64 as u64);
        assert_eq!(remw(i32::MIN as u64, u64::MAX), 0);
        assert_eq!(divuw(0x8000_0000, 0), u64::MAX);
        assert_eq!(remuw(0x8000_0000, 0), 0xffff_ffff_8000_0000);
        assert_eq!(mulhu(u64::MAX, u64::MAX), u64::MAX - 1);
        assert_eq!(mulh(u64::MAX, u64::MAX), 0);
        assert_eq!(mulhsu(u64::MAX, u64::MAX), u64::MAX);
    }
}
