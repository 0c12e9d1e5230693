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
