//! Guest RAM: one anonymous host mapping shared by every hart thread.
//!
//! Harts access RAM through host pointers handed out page by page
//! (`host_page`), and they do so concurrently from several host threads, as
//! real CPUs do. Everything that touches RAM from the host side (loader, DMA,
//! digests) therefore goes through atomic accesses too: a guest data race is
//! the guest's business, but it must never be undefined behaviour in the host.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use memmap2::MmapMut;
use samsara_types::{GuestPhysAddr, PAGE_SIZE};
use thiserror::Error;

/// Errors from host-side RAM accesses.
#[derive(Debug, Error)]
pub enum RamError {
    /// The access `[addr, addr+len)` is not inside guest RAM.
    #[error("guest-physical range {addr}+{len:#x} is outside RAM {base}..{end:#x}")]
    OutOfRange {
        /// First byte of the access.
        addr: GuestPhysAddr,
        /// Length of the access in bytes.
        len: u64,
        /// First byte of RAM.
        base: GuestPhysAddr,
        /// One past the last byte of RAM.
        end: u64,
    },
    /// RAM size is zero, not a multiple of 4 KiB, or too large for the address space.
    #[error("invalid RAM size {0:#x}: must be a non-zero multiple of 4 KiB below 2^40")]
    BadSize(u64),
    /// The host refused the mapping.
    #[error("cannot allocate {size:#x} bytes of guest RAM: {source}")]
    Alloc {
        /// Requested size.
        size: u64,
        /// The host error.
        source: std::io::Error,
    },
}

/// Guest RAM at a fixed guest-physical base.
pub struct GuestRam {
    map: MmapMut,
    base: GuestPhysAddr,
    size: u64,
}

// SAFETY: the mapping is only ever accessed through atomics (host side) or
// through page pointers the harts access atomically; the `MmapMut` itself is
// never resized or unmapped while shared.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Map `size` bytes of zeroed RAM at guest-physical `base`.
    pub fn new(base: GuestPhysAddr, size: u64) -> Result<Self, RamError> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) || size > (1 << 40) {
            return Err(RamError::BadSize(size));
        }
        let len = usize::try_from(size).map_err(|_| RamError::BadSize(size))?;
        let map = MmapMut::map_anon(len).map_err(|source| RamError::Alloc { size, source })?;
        // Transparent huge pages where the host allows them: a page fault
        // per 2 MiB instead of per 4 KiB (the digest of a fresh machine
        // alone read-faulted 131 072 times for 512 MiB), and fewer host
        // TLB misses for guest accesses. A host without them says no,
        // harmlessly.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(Self { map, base, size })
    }

    /// First guest-physical address of RAM.
    pub fn base(&self) -> GuestPhysAddr {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// One past the last guest-physical address of RAM.
    pub fn end(&self) -> u64 {
        self.base.raw() + self.size
    }

    /// Whether `[addr, addr+len)` lies entirely inside RAM.
    pub fn contains(&self, addr: GuestPhysAddr, len: u64) -> bool {
        match addr.offset_from(self.base) {
            Some(off) => off.checked_add(len).is_some_and(|end| end <= self.size),
            None => false,
        }
    }

    /// Host pointer to the 4 KiB guest page number `page`, if it is RAM.
    #[inline]
    pub fn host_page(&self, page: u64) -> Option<NonNull<u8>> {
        let off = (page << samsara_types::PAGE_SHIFT).checked_sub(self.base.raw())?;
        if off >= self.size {
            return None;
        }
        // SAFETY: `off < size`, so the pointer stays inside the mapping.
        let ptr = unsafe { self.map.as_ptr().add(off as usize) };
        NonNull::new(ptr.cast_mut())
    }

    /// All of RAM as plain bytes, for hashing it at full speed.
    ///
    /// # Safety
    /// Nothing may write RAM while the slice lives (no hart running, no
    /// DMA): a write beside a plain read is a host data race.
    pub unsafe fn quiescent_bytes(&self) -> &[u8] {
        &self.map
    }

    fn range(&self, addr: GuestPhysAddr, len: u64) -> Result<usize, RamError> {
        if !self.contains(addr, len) {
            return Err(RamError::OutOfRange {
                addr,
                len,
                base: self.base,
                end: self.end(),
            });
        }
        Ok((addr.raw() - self.base.raw()) as usize)
    }

    fn byte(&self, off: usize) -> &AtomicU8 {
        // SAFETY: callers pass offsets checked by `range`; AtomicU8 has the
        // size and alignment of u8.
        unsafe { AtomicU8::from_ptr(self.map.as_ptr().add(off).cast_mut()) }
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert_eq!(off % 8, 0);
        // SAFETY: `off` is in range and 8-aligned (the mapping is page-aligned).
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(off).cast::<u64>().cast_mut()) }
    }

    /// Copy guest RAM into `buf` (atomically per byte/word; never a host data race).
    pub fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), RamError> {
        let mut off = self.range(addr, buf.len() as u64)?;
        let mut i = 0;
        while i < buf.len() {
            if off % 8 == 0 && buf.len() - i >= 8 {
                let v = self.word(off).load(Ordering::Relaxed);
                buf[i..i + 8].copy_from_slice(&v.to_le_bytes());
                i += 8;
                off += 8;
            } else {
                buf[i] = self.byte(off).load(Ordering::Relaxed);
                i += 1;
                off += 1;
            }
        }
        Ok(())
    }

    /// Copy `data` into guest RAM (atomically per byte/word).
    pub fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), RamError> {
        let mut off = self.range(addr, data.len() as u64)?;
        let mut i = 0;
        while i < data.len() {
            if off % 8 == 0 && data.len() - i >= 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&data[i..i + 8]);
                self.word(off)
                    .store(u64::from_le_bytes(w), Ordering::Relaxed);
                i += 8;
                off += 8;
            } else {
                self.byte(off).store(data[i], Ordering::Relaxed);
                i += 1;
                off += 1;
            }
        }
        Ok(())
    }

    /// Fill `[addr, addr+len)` with zeros.
    pub fn zero(&self, addr: GuestPhysAddr, len: u64) -> Result<(), RamError> {
        let zeros = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(4096);
            self.write(GuestPhysAddr(addr.raw() + done), &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_round_trip_at_odd_offsets() {
        let ram = GuestRam::new(GuestPhysAddr(0x8000_0000), 0x4000).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        ram.write(GuestPhysAddr(0x8000_0003), &data).unwrap();
        let mut back = vec![0u8; 100];
        ram.read(GuestPhysAddr(0x8000_0003), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_crash() {
        let ram = GuestRam::new(GuestPhysAddr(0x8000_0000), 0x1000).unwrap();
        assert!(ram.write(GuestPhysAddr(0x8000_0ffc), &[0; 8]).is_err());
        assert!(ram.write(GuestPhysAddr(0x7fff_fffc), &[0; 2]).is_err());
        assert!(ram.read(GuestPhysAddr(u64::MAX - 1), &mut [0; 4]).is_err());
        assert!(ram.host_page(0x80001).is_none());
        assert!(ram.host_page(0x80000).is_some());
        assert!(ram.host_page(0).is_none());
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(matches!(
            GuestRam::new(GuestPhysAddr(0x8000_0000), 0),
            Err(RamError::BadSize(0))
        ));
        assert!(GuestRam::new(GuestPhysAddr(0x8000_0000), 0x1001).is_err());
    }
}
