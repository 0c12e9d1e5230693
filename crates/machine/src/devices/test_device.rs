//! The SiFive test device ("sifive,test0") at 0x10_0000: how a guest powers
//! the machine off, reports failure, or asks for a reset.
//!
//! A 32-bit write to offset 0 of `status | code << 16` with status
//! 0x5555 (pass), 0x3333 (fail with exit code `code`) or 0x7777 (reset) ends
//! the machine; other values are ignored, as on QEMU. Reads return 0.
//! The exit is published through an [`ExitSignal`] that the run loop watches.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use samsara_types::HartId;

use super::{DeviceError, MmioDevice};

/// Size of the device's MMIO window.
pub const TEST_DEVICE_SIZE: u64 = 0x1000;

const STATUS_FAIL: u64 = 0x3333;
const STATUS_PASS: u64 = 0x5555;
const STATUS_RESET: u64 = 0x7777;

/// How the guest asked the machine to stop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MachineExit {
    /// Power off, success (exit status 0).
    Poweroff,
    /// Power off, failure with this exit code.
    Fail(u16),
    /// Reset requested.
    Reset,
}

/// A per-machine, set-once cell holding how the machine ended.
///
/// The first [`ExitSignal::set`] wins; later ones are ignored (two harts
/// racing to power off report the first). The run loop polls
/// [`ExitSignal::is_set`] (one relaxed-cost atomic load) and then stops the
/// harts (setting their stop flag and calling `IrqState::wake_all`).
#[derive(Debug, Default)]
pub struct ExitSignal {
    set: AtomicBool,
    exit: Mutex<Option<MachineExit>>,
}

impl ExitSignal {
    /// An unset signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `exit` unless an exit was already recorded; true if this call
    /// recorded it.
    pub fn set(&self, exit: MachineExit) -> bool {
        let mut slot = self.exit.lock();
        if slot.is_some() {
            return false;
        }
        *slot = Some(exit);
        self.set.store(true, Ordering::Release);
        true
    }

    /// The recorded exit, if any.
    pub fn get(&self) -> Option<MachineExit> {
        if !self.is_set() {
            return None;
        }
        *self.exit.lock()
    }

    /// Makes the signal hold `exit` (or nothing), whatever it held: a
    /// replay going back to a checkpoint.
    pub fn restore(&self, exit: Option<MachineExit>) {
        let mut slot = self.exit.lock();
        *slot = exit;
        self.set.store(exit.is_some(), Ordering::Release);
    }

    /// True once an exit was recorded (cheap: one atomic load).
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }
}

/// The SiFive test device.
#[derive(Debug)]
pub struct TestDevice {
    exit: std::sync::Arc<ExitSignal>,
}

impl TestDevice {
    /// A test device reporting into `exit`.
    pub fn new(exit: std::sync::Arc<ExitSignal>) -> Self {
        Self { exit }
    }
}

impl MmioDevice for TestDevice {
    fn read(&self, _hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        check_access(offset, size)?;
        Ok(0)
    }

    fn write(&self, _hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        check_access(offset, size)?;
        if offset != 0 {
            return Ok(());
        }
        let value = super::truncate_to_size(value, size) & 0xffff_ffff;
        let code = u16::try_from(value >> 16).unwrap_or(u16::MAX);
        let exit = match value & 0xffff {
            STATUS_PASS => MachineExit::Poweroff,
            STATUS_FAIL => MachineExit::Fail(code),
            STATUS_RESET => MachineExit::Reset,
            _ => return Ok(()),
        };
        self.exit.set(exit);
        Ok(())
    }
}

/// QEMU accepts 2- and 4-byte accesses; 8-byte ones are allowed too (the
/// upper half is ignored) so `sd` works.
fn check_access(offset: u64, size: u8) -> Result<(), DeviceError> {
    if offset >= TEST_DEVICE_SIZE {
        return Err(DeviceError::Unmapped { offset });
    }
    if !matches!(size, 2 | 4 | 8) || !offset.is_multiple_of(u64::from(size)) {
        return Err(DeviceError::BadAccess { offset, size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn device() -> (Arc<ExitSignal>, TestDevice) {
        let exit = Arc::new(ExitSignal::new());
        (exit.clone(), TestDevice::new(exit))
    }

    #[test]
    fn poweroff() {
        let (exit, dev) = device();
        assert!(!exit.is_set());
        dev.write(HartId(0), 0, 4, 0x5555).unwrap();
        assert_eq!(exit.get(), Some(MachineExit::Poweroff));
    }

    #[test]
    fn fail_with_code_and_first_exit_wins() {
        let (exit, dev) = device();
        dev.write(HartId(1), 0, 4, (42 << 16) | 0x3333).unwrap();
        dev.write(HartId(0), 0, 4, 0x5555).unwrap();
        assert_eq!(exit.get(), Some(MachineExit::Fail(42)));
    }

    #[test]
    fn reset_and_ignored_values() {
        let (exit, dev) = device();
        dev.write(HartId(0), 0, 4, 0x1234).unwrap();
        dev.write(HartId(0), 4, 4, 0x5555).unwrap();
        assert_eq!(exit.get(), None);
        assert_eq!(dev.read(HartId(0), 0, 4), Ok(0));
        dev.write(HartId(0), 0, 2, 0x7777).unwrap();
        assert_eq!(exit.get(), Some(MachineExit::Reset));
    }

    #[test]
    fn bad_accesses_fault() {
        let (exit, dev) = device();
        assert!(dev.write(HartId(0), 0, 1, 0x55).is_err());
        assert!(dev.write(HartId(0), 2, 4, 0x5555).is_err());
        assert!(dev.read(HartId(0), 0x1000, 4).is_err());
        assert!(!exit.is_set());
    }
}
