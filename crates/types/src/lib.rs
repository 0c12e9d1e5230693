//! Newtypes shared across the samsara workspace.
//!
//! Addresses are never bare `u64`s once they cross a crate boundary: a
//! guest-physical address and a guest-virtual one are different things, and
//! the type system keeps them apart. Arithmetic is explicit and checked.

use std::fmt;

/// Size of a guest page as seen by the recorder's second-level table and by
/// the CPU's software TLB (4 KiB, whatever page size the guest itself uses).
pub const PAGE_SHIFT: u32 = 12;
/// Bytes in a 4 KiB page.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            #[inline]
            pub const fn raw(self) -> u64 {
                self.0
            }
            /// `self + offset`, or `None` on overflow.
            #[inline]
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }
            /// `self - base` when `self >= base`.
            #[inline]
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }
            /// 4 KiB page number containing this address.
            #[inline]
            pub const fn page(self) -> u64 {
                self.0 >> PAGE_SHIFT
            }
            /// Offset within the 4 KiB page.
            #[inline]
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest-physical address (what the CPU puts on the bus after translation).
    GuestPhysAddr
);
address_type!(
    /// A guest-virtual address (before Sv39/Sv48 translation).
    GuestVirtAddr
);

/// A guest-physical 4 KiB page frame number (`paddr >> PAGE_SHIFT`): what
/// the hart asks its bus for on a TLB miss.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct GuestPhysPage(pub u64);

impl GuestPhysPage {
    /// The page containing `addr`.
    #[inline]
    pub const fn containing(addr: GuestPhysAddr) -> Self {
        Self(addr.0 >> PAGE_SHIFT)
    }
    /// The raw page frame number.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// Address of the page's byte 0 (frame numbers above 2^52 wrap).
    #[inline]
    pub const fn base(self) -> GuestPhysAddr {
        GuestPhysAddr(self.0 << PAGE_SHIFT)
    }
    /// `self - base` in pages, when `self >= base`.
    #[inline]
    pub const fn offset_from(self, base: Self) -> Option<u64> {
        self.0.checked_sub(base.0)
    }
}

impl From<GuestPhysAddr> for GuestPhysPage {
    /// The page containing the address.
    #[inline]
    fn from(addr: GuestPhysAddr) -> Self {
        Self::containing(addr)
    }
}

impl From<GuestPhysPage> for GuestPhysAddr {
    /// The address of the page's byte 0.
    #[inline]
    fn from(page: GuestPhysPage) -> Self {
        page.base()
    }
}

impl fmt::Debug for GuestPhysPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestPhysPage({:#x})", self.0)
    }
}

impl fmt::LowerHex for GuestPhysPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::Display for GuestPhysPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {:#x}", self.0)
    }
}

/// Index of a hart (hardware thread) in the machine, 0-based.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct HartId(pub u32);

impl HartId {
    /// The hart index as a `usize`, for indexing per-hart tables.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for HartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hart{}", self.0)
    }
}

/// A count of executed instruction steps on one hart.
///
/// A *step* is one instruction that either retired or raised an exception.
/// Counting traps as steps makes a hart that faults forever still make
/// progress in this count, so budgets always terminate; `minstret` (which
/// by the ISA counts only retired instructions) is derived from it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct InstrCount(pub u64);

/// Position of a chunk or device access in the recording's global order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct ChunkSeq(pub u64);

/// 64-bit FNV-1a: the one hash behind the digests traces store (hart
/// states, verification page hashes). Fixed forever: stable across runs,
/// builds and machines, unlike `std`'s `DefaultHasher`.
///
/// Two ways to feed it, and they give different values:
/// [`Fnv1a::write_u64`] is standard FNV-1a over the value's 8 little-endian
/// bytes (one round per byte); [`Fnv1a::write_word`] does one FNV-1a round
/// with the whole 64-bit word in place of a byte (8 times fewer multiplies:
/// what the page hashes use).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fnv1a(u64);

impl Fnv1a {
    /// The FNV-1a 64-bit offset basis.
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    /// The FNV 64-bit prime.
    pub const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher that has seen nothing.
    #[inline]
    pub const fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    /// Standard FNV-1a over `bytes`.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Standard FNV-1a over `v`'s 8 little-endian bytes.
    #[inline]
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// One FNV-1a round with the whole word `w` (not byte-wise FNV-1a).
    #[inline]
    pub fn write_word(&mut self, w: u64) {
        self.0 ^= w;
        self.0 = self.0.wrapping_mul(Self::PRIME);
    }

    /// The hash of everything written so far.
    #[inline]
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// A number as people type it: decimal, or hex after `0x`.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_arithmetic() {
        let a = GuestPhysAddr(0x8000_1234);
        assert_eq!(a.page(), 0x80001);
        assert_eq!(a.page_offset(), 0x234);
        assert_eq!(a.checked_add(0x10), Some(GuestPhysAddr(0x8000_1244)));
        assert_eq!(GuestPhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(a.offset_from(GuestPhysAddr(0x8000_0000)), Some(0x1234));
        assert_eq!(GuestPhysAddr(1).offset_from(GuestPhysAddr(2)), None);
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // The published FNV-1a 64-bit test vectors.
        let hash = |b: &[u8]| {
            let mut h = Fnv1a::new();
            h.write(b);
            h.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv1a::new();
        h.write_u64(0x0807_0605_0403_0201);
        assert_eq!(h.finish(), hash(&[1, 2, 3, 4, 5, 6, 7, 8]));
        let mut h = Fnv1a::new();
        h.write_word(0x61);
        assert_eq!(h.finish(), hash(b"a"), "one round, as with a byte");
        h.write_word(1 << 40);
        assert_eq!(
            h.finish(),
            (0xaf63_dc4c_8601_ec8c_u64 ^ 1 << 40).wrapping_mul(Fnv1a::PRIME)
        );
    }

    #[test]
    fn page_frames() {
        let a = GuestPhysAddr(0x8000_1234);
        let p = GuestPhysPage::from(a);
        assert_eq!(p, GuestPhysPage(0x80001));
        assert_eq!(p.raw(), a.page());
        assert_eq!(GuestPhysAddr::from(p), GuestPhysAddr(0x8000_1000));
        assert_eq!(p.offset_from(GuestPhysPage(0x80000)), Some(1));
        assert_eq!(GuestPhysPage(0).offset_from(p), None);
        assert_eq!(format!("{p:#x} {:#x}", GuestVirtAddr(0x10)), "0x80001 0x10");
    }
}
