//! The CLINT ("sifive,clint0") at 0x200_0000: software interrupts (IPIs) and
//! the machine timer, laid out as QEMU's ACLINT-compatible CLINT:
//!
//! | offset | register |
//! | --- | --- |
//! | 0x0000 + 4·h | `msip` of hart h (bit 0; 32-bit access) |
//! | 0x4000 + 8·h | `mtimecmp` of hart h (64-bit, or 32-bit halves) |
//! | 0xBFF8 | `mtime` (64-bit, or 32-bit halves; read-only here) |
//!
//! The interrupt lines live in [`IrqState`]; this device is only its
//! register view. `mtime` is read from the machine's [`crate::clock::Clock`]
//! (the non-deterministic input the recorder logs). Writes to `mtime` are
//! ignored: time is owned by the clock, so a guest cannot make it diverge
//! from what the `time` CSR reports (OpenSBI and Linux never write it).

use std::sync::Arc;

use samsara_types::HartId;

use super::{DeviceError, MmioDevice};
use crate::irq::{IrqState, mip};

/// Size of the CLINT's MMIO window.
pub const CLINT_SIZE: u64 = 0x1_0000;
const MSIP_BASE: u64 = 0x0000;
const MTIMECMP_BASE: u64 = 0x4000;
const MTIME: u64 = 0xBFF8;

/// The core-local interruptor.
#[derive(Debug)]
pub struct Clint {
    irq: Arc<IrqState>,
}

/// Which register an offset addresses.
enum Register {
    Msip(HartId),
    /// `mtimecmp` of a hart; `high` selects the upper 32 bits of a 32-bit access.
    Mtimecmp(HartId, bool),
    Mtime(bool),
    /// Inside the window but not backed (e.g. a hart that does not exist): reads 0.
    Reserved,
}

impl Clint {
    /// The CLINT of the machine whose interrupt lines are `irq`.
    pub fn new(irq: Arc<IrqState>) -> Self {
        Self { irq }
    }

    fn decode(&self, offset: u64, size: u8) -> Result<Register, DeviceError> {
        if offset >= CLINT_SIZE {
            return Err(DeviceError::Unmapped { offset });
        }
        let harts = u64::from(self.irq.hart_count());
        let bad = DeviceError::BadAccess { offset, size };
        if offset < MTIMECMP_BASE {
            // QEMU's MSWI accepts 32-bit accesses only.
            if size != 4 || !offset.is_multiple_of(4) {
                return Err(bad);
            }
            let hart = (offset - MSIP_BASE) / 4;
            return Ok(if hart < harts {
                Register::Msip(hart_id(hart))
            } else {
                Register::Reserved
            });
        }
        // The timer accepts naturally aligned 4- and 8-byte accesses.
        if !matches!(size, 4 | 8) || !offset.is_multiple_of(u64::from(size)) {
            return Err(bad);
        }
        let high = size == 4 && offset % 8 == 4;
        if (MTIME..MTIME + 8).contains(&offset) {
            return Ok(Register::Mtime(high));
        }
        if offset > MTIME {
            return Ok(Register::Reserved);
        }
        let hart = (offset - MTIMECMP_BASE) / 8;
        Ok(if hart < harts {
            Register::Mtimecmp(hart_id(hart), high)
        } else {
            Register::Reserved
        })
    }
}

fn hart_id(index: u64) -> HartId {
    // Callers checked index < hart_count (a u32).
    HartId(u32::try_from(index).unwrap_or(u32::MAX))
}

/// The part of a 64-bit register a `size`-byte access at the `high` half sees.
fn view(value: u64, size: u8, high: bool) -> u64 {
    match (size, high) {
        (8, _) => value,
        (_, false) => value & 0xffff_ffff,
        (_, true) => value >> 32,
    }
}

impl MmioDevice for Clint {
    fn read(&self, hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        let _ = hart;
        Ok(match self.decode(offset, size)? {
            Register::Msip(h) => u64::from(self.irq.lines(h) & mip::MSIP != 0),
            Register::Mtimecmp(h, high) => view(self.irq.mtimecmp(h), size, high),
            Register::Mtime(high) => view(self.irq.clock().now_ticks(), size, high),
            Register::Reserved => 0,
        })
    }

    /// `mtime` is the clock's: the clock learns the recorded time (a
    /// standby's clock goes on from the last time the guest saw).
    fn replay_read(
        &self,
        hart: HartId,
        offset: u64,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, DeviceError> {
        match self.decode(offset, size)? {
            Register::Mtime(high) => {
                let clock = self.irq.clock();
                let latest = clock.now_ticks();
                clock.observe(match (size, high) {
                    (8, _) => recorded,
                    // A half: with the other half as the clock has it.
                    (_, false) => (latest & !0xffff_ffff) | (recorded & 0xffff_ffff),
                    (_, true) => (recorded << 32) | (latest & 0xffff_ffff),
                });
                Ok(None)
            }
            _ => self.compare_read(hart, offset, size, recorded),
        }
    }

    fn write(&self, hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        let _ = hart;
        match self.decode(offset, size)? {
            Register::Msip(h) => self.irq.set_line(h, mip::MSIP, value & 1 != 0),
            Register::Mtimecmp(h, high) => {
                let value = super::truncate_to_size(value, size);
                self.irq.update_mtimecmp(h, |old| match (size, high) {
                    (8, _) => value,
                    (_, false) => (old & !0xffff_ffff) | value,
                    (_, true) => (old & 0xffff_ffff) | (value << 32),
                });
            }
            // See the module documentation: mtime belongs to the clock.
            Register::Mtime(_) | Register::Reserved => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn clint(harts: u32) -> (Arc<ManualClock>, Arc<IrqState>, Clint) {
        let clock = Arc::new(ManualClock::new(0));
        let irq = Arc::new(IrqState::new(harts, clock.clone()));
        (clock, irq.clone(), Clint::new(irq))
    }

    #[test]
    fn msip_raises_and_clears_ipi() {
        let (_c, irq, clint) = clint(2);
        clint.write(HartId(0), 4, 4, 1).unwrap();
        assert_ne!(irq.lines(HartId(1)) & mip::MSIP, 0);
        assert_eq!(irq.lines(HartId(0)) & mip::MSIP, 0);
        assert_eq!(clint.read(HartId(0), 4, 4), Ok(1));
        // Only bit 0 counts.
        clint.write(HartId(0), 4, 4, 2).unwrap();
        assert_eq!(irq.lines(HartId(1)) & mip::MSIP, 0);
        assert_eq!(clint.read(HartId(0), 4, 4), Ok(0));
        // A hart that does not exist: reads 0, writes ignored.
        clint.write(HartId(0), 8, 4, 1).unwrap();
        assert_eq!(clint.read(HartId(0), 8, 4), Ok(0));
        // msip is 32-bit only.
        assert!(clint.write(HartId(0), 0, 8, 1).is_err());
        assert!(clint.read(HartId(0), 2, 2).is_err());
    }

    #[test]
    fn mtimecmp_drives_mtip() {
        let (clock, irq, clint) = clint(1);
        clock.set(500);
        assert_eq!(clint.read(HartId(0), MTIME, 8), Ok(500));
        // Reset value 0 => timer pending.
        assert_ne!(irq.lines(HartId(0)) & mip::MTIP, 0);
        clint.write(HartId(0), MTIMECMP_BASE, 8, 1000).unwrap();
        assert_eq!(irq.lines(HartId(0)) & mip::MTIP, 0);
        clock.set(1000);
        assert_ne!(irq.lines(HartId(0)) & mip::MTIP, 0);
        // Rearm in the future clears it.
        clint.write(HartId(0), MTIMECMP_BASE, 8, 2000).unwrap();
        assert_eq!(irq.lines(HartId(0)) & mip::MTIP, 0);
        assert_eq!(clint.read(HartId(0), MTIMECMP_BASE, 8), Ok(2000));
    }

    #[test]
    fn mtimecmp_and_mtime_32_bit_halves() {
        let (clock, irq, clint) = clint(2);
        clock.set(0x1_2345_6789);
        assert_eq!(clint.read(HartId(0), MTIME, 4), Ok(0x2345_6789));
        assert_eq!(clint.read(HartId(0), MTIME + 4, 4), Ok(1));
        // The classic rv32 sequence: low = -1, high, low.
        let cmp1 = MTIMECMP_BASE + 8;
        clint.write(HartId(1), cmp1, 4, 0xffff_ffff).unwrap();
        clint.write(HartId(1), cmp1 + 4, 4, 0x2).unwrap();
        clint.write(HartId(1), cmp1, 4, 0x10).unwrap();
        assert_eq!(irq.mtimecmp(HartId(1)), 0x2_0000_0010);
        assert_eq!(clint.read(HartId(1), cmp1 + 4, 4), Ok(2));
        assert_eq!(clint.read(HartId(1), cmp1, 4), Ok(0x10));
        assert_eq!(irq.lines(HartId(1)) & mip::MTIP, 0);
        // Writes to mtime are ignored.
        clint.write(HartId(0), MTIME, 8, 0).unwrap();
        assert_eq!(clint.read(HartId(0), MTIME, 8), Ok(0x1_2345_6789));
    }

    #[test]
    fn bad_accesses() {
        let (_c, _irq, clint) = clint(1);
        assert!(clint.read(HartId(0), MTIMECMP_BASE + 4, 8).is_err());
        assert!(clint.read(HartId(0), MTIME, 2).is_err());
        assert!(clint.read(HartId(0), CLINT_SIZE, 4).is_err());
        // Unused timer space reads 0.
        assert_eq!(clint.read(HartId(0), 0x8000, 8), Ok(0));
        assert_eq!(clint.read(HartId(0), 0xC000, 8), Ok(0));
    }
}
