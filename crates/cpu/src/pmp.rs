//! Physical memory protection (PMP): 16 entries, OFF/TOR/NA4/NAPOT, L bit.

use crate::csr::pmpcfg;
use crate::state::{CsrFile, PMP_ENTRIES, Privilege};

/// The kind of access being checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PmpAccess {
    Read,
    Write,
    Execute,
}

impl PmpAccess {
    const fn bit(self) -> u8 {
        match self {
            PmpAccess::Read => pmpcfg::R,
            PmpAccess::Write => pmpcfg::W,
            PmpAccess::Execute => pmpcfg::X,
        }
    }
}

/// Byte range `[lo, hi)` covered by entry `i`, or `None` if it is OFF.
fn entry_range(csr: &CsrFile, i: usize) -> Option<(u64, u64)> {
    let cfg = csr.pmpcfg[i];
    let a = csr.pmpaddr[i];
    match cfg & pmpcfg::A {
        pmpcfg::TOR => {
            let lo = if i == 0 { 0 } else { csr.pmpaddr[i - 1] << 2 };
            Some((lo, a << 2))
        }
        pmpcfg::NA4 => Some((a << 2, (a << 2) + 4)),
        pmpcfg::NAPOT => {
            // Trailing ones in pmpaddr encode the size: 2^(ones + 3) bytes.
            let ones = a.trailing_ones();
            if ones >= 54 {
                return Some((0, u64::MAX));
            }
            let size = 1u64 << (ones + 3);
            let base = (a & !((1u64 << ones) - 1)) << 2;
            Some((base, base.saturating_add(size)))
        }
        _ => None,
    }
}

/// The entries that are on, with their byte ranges, in priority order:
/// what every check walks (OpenSBI turns on two or three of the 16), made
/// again whenever a PMP register is written or the state restored.
#[derive(Clone, Copy)]
pub(crate) struct PmpTable {
    /// `(lo, hi, cfg)` of the entries on, lowest-numbered first.
    entries: [(u64, u64, u8); PMP_ENTRIES],
    len: usize,
}

impl PmpTable {
    pub(crate) fn new(csr: &CsrFile) -> PmpTable {
        let mut table = PmpTable {
            entries: [(0, 0, 0); PMP_ENTRIES],
            len: 0,
        };
        for i in 0..PMP_ENTRIES {
            // An empty range (a TOR entry below its base) matches nothing.
            if let Some((lo, hi)) = entry_range(csr, i)
                && lo < hi
            {
                table.entries[table.len] = (lo, hi, csr.pmpcfg[i]);
                table.len += 1;
            }
        }
        table
    }

    /// Whether an access of `len` bytes at `addr` with privilege
    /// `privilege` is allowed. The lowest-numbered entry that matches any
    /// byte decides; it must cover every byte. M-mode ignores unlocked
    /// entries; with no match, M-mode is allowed and S/U are denied
    /// (entries are implemented).
    pub(crate) fn check(
        &self,
        addr: u64,
        len: u64,
        access: PmpAccess,
        privilege: Privilege,
    ) -> bool {
        let end = addr.saturating_add(len);
        for &(lo, hi, cfg) in &self.entries[..self.len] {
            if end <= lo || addr >= hi {
                continue;
            }
            if addr < lo || end > hi {
                // Partial match: the access fails.
                return false;
            }
            if privilege == Privilege::Machine && cfg & pmpcfg::L == 0 {
                return true;
            }
            return cfg & access.bit() != 0;
        }
        privilege == Privilege::Machine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(csr: &CsrFile, addr: u64, len: u64, access: PmpAccess, p: Privilege) -> bool {
        PmpTable::new(csr).check(addr, len, access, p)
    }

    fn csr_with(entries: &[(u8, u64)]) -> CsrFile {
        let mut c = CsrFile::default();
        for (i, &(cfg, addr)) in entries.iter().enumerate() {
            c.pmpcfg[i] = cfg;
            c.pmpaddr[i] = addr;
        }
        c
    }

    #[test]
    fn napot_all_memory() {
        let c = csr_with(&[(
            pmpcfg::NAPOT | pmpcfg::R | pmpcfg::W | pmpcfg::X,
            u64::MAX >> 10,
        )]);
        assert!(check(&c, 0x8000_0000, 8, PmpAccess::Write, Privilege::User));
        assert!(check(
            &c,
            0,
            4096,
            PmpAccess::Execute,
            Privilege::Supervisor
        ));
    }

    #[test]
    fn no_match_denies_s_and_u_only() {
        let c = CsrFile::default();
        assert!(!check(&c, 0x8000_0000, 4, PmpAccess::Read, Privilege::User));
        assert!(check(
            &c,
            0x8000_0000,
            4,
            PmpAccess::Read,
            Privilege::Machine
        ));
    }

    #[test]
    fn tor_and_lock() {
        // Entry 0: TOR [0, 0x1000) read-only, locked. Entry 1: TOR [0x1000, 0x2000) RW.
        let c = csr_with(&[
            (pmpcfg::TOR | pmpcfg::R | pmpcfg::L, 0x1000 >> 2),
            (pmpcfg::TOR | pmpcfg::R | pmpcfg::W, 0x2000 >> 2),
        ]);
        assert!(!check(&c, 0x100, 4, PmpAccess::Write, Privilege::Machine));
        assert!(check(&c, 0x100, 4, PmpAccess::Read, Privilege::Machine));
        assert!(check(&c, 0x1100, 4, PmpAccess::Write, Privilege::User));
        // Straddling two entries fails.
        assert!(!check(&c, 0xffe, 4, PmpAccess::Read, Privilege::User));
    }

    #[test]
    fn na4_and_napot_sizes() {
        let c = csr_with(&[
            (pmpcfg::NA4 | pmpcfg::R, 0x1000 >> 2),
            // NAPOT 4 KiB at 0x2000: addr = (0x2000 >> 2) | ((4096 / 8) - 1)
            (pmpcfg::NAPOT | pmpcfg::X, (0x2000 >> 2) | 0x1ff),
        ]);
        assert!(check(&c, 0x1000, 4, PmpAccess::Read, Privilege::User));
        assert!(!check(&c, 0x1004, 4, PmpAccess::Read, Privilege::User));
        assert!(check(&c, 0x2ffc, 4, PmpAccess::Execute, Privilege::User));
        assert!(!check(&c, 0x3000, 4, PmpAccess::Execute, Privilege::User));
    }
}
