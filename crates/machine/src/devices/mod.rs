//! The board's devices and the narrow interfaces they are built on.
//!
//! - [`MmioDevice`]: what the board's MMIO dispatch calls, with offsets
//!   relative to the device's base address. Devices synchronise internally:
//!   every hart thread calls them concurrently through `&self`.
//! - [`GuestMemory`]: how DMA-capable devices (virtio) reach guest RAM. The
//!   board implements it for RAM; ranges outside RAM are an error, never a
//!   host crash.
//! - [`InterruptSink`] / [`IrqLine`]: how a device drives its PLIC source.
//!
//! One file (or directory) per device, each with its own error enum.

pub mod clint;
pub mod plic;
pub mod test_device;
pub mod uart;
pub mod virtio;

use std::sync::Arc;

use samsara_types::{GuestPhysAddr, HartId};

/// A device access the device cannot perform: the hart takes an access fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device does not support this access size at this offset.
    #[error("unsupported {size}-byte access at device offset {offset:#x}")]
    BadAccess {
        /// Offset from the device base.
        offset: u64,
        /// Access size in bytes.
        size: u8,
    },
    /// Nothing in the device answers at this offset.
    #[error("nothing at device offset {offset:#x}")]
    Unmapped {
        /// Offset from the device base.
        offset: u64,
    },
}

/// A memory-mapped device.
pub trait MmioDevice: Send + Sync {
    /// Load of `size` (1, 2, 4 or 8) bytes at `offset` from the device base,
    /// issued by `hart`. The result is zero-extended.
    fn read(&self, hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError>;

    /// Store of the low `size` bytes of `value` at `offset` from the device
    /// base, issued by `hart`.
    fn write(&self, hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError>;

    /// Replay with live devices (a hot standby): the recording says this
    /// load returned `recorded`. The device takes the state that load left
    /// it in, as if it had answered `recorded`. Where its answer depends
    /// only on the guest's own accesses (configuration registers), it also
    /// says whether it would have answered the same: `Ok(Some(answer))`
    /// when it would not. Registers fed from outside (received bytes, the
    /// clock, interrupt inputs) are not compared. By default every
    /// register is the guest's own: the load is done and compared.
    fn replay_read(
        &self,
        hart: HartId,
        offset: u64,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, DeviceError> {
        self.compare_read(hart, offset, size, recorded)
    }

    /// Does the load and says its answer if it is not `recorded`: what
    /// [`MmioDevice::replay_read`] does with a register of the guest's own.
    fn compare_read(
        &self,
        hart: HartId,
        offset: u64,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, DeviceError> {
        let answer = self.read(hart, offset, size)?;
        Ok((answer != recorded).then_some(answer))
    }
}

/// A DMA access outside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DmaError {
    /// The range is not (entirely) guest RAM.
    #[error("DMA to {len:#x} bytes at {addr} is outside guest RAM")]
    OutOfRange {
        /// First byte of the access.
        addr: GuestPhysAddr,
        /// Length of the access.
        len: u64,
    },
}

/// Guest-physical memory as DMA-capable devices see it.
///
/// Implementations must reject (not clamp, not crash on) any range that is
/// not entirely RAM, including ranges whose end overflows.
pub trait GuestMemory: Send + Sync {
    /// Copies `buf.len()` bytes at `addr` into `buf`.
    fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Copies `data` to guest memory at `addr`.
    fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), DmaError>;
}

/// Something with level-triggered interrupt inputs (the PLIC).
pub trait InterruptSink: Send + Sync {
    /// Drives input `source` to `level`. Unknown sources are ignored.
    fn set_level(&self, source: u32, level: bool);
}

/// One wire from a device to an interrupt controller input.
#[derive(Clone)]
pub struct IrqLine {
    sink: Arc<dyn InterruptSink>,
    source: u32,
}

impl std::fmt::Debug for IrqLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqLine")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl IrqLine {
    /// The wire to input `source` of `sink`.
    pub fn new(sink: Arc<dyn InterruptSink>, source: u32) -> Self {
        Self { sink, source }
    }

    /// Drives the line to `level`.
    pub fn set(&self, level: bool) {
        self.sink.set_level(self.source, level);
    }

    /// The controller input this line is wired to.
    pub fn source(&self) -> u32 {
        self.source
    }
}

/// True for the access sizes a bus can issue (1, 2, 4, 8).
pub(crate) fn is_valid_size(size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8)
}

/// The low `size` bytes of `value` (for 1/2/4/8-byte stores).
pub(crate) fn truncate_to_size(value: u64, size: u8) -> u64 {
    match size {
        1 => value & 0xff,
        2 => value & 0xffff,
        4 => value & 0xffff_ffff,
        _ => value,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Test doubles shared by the device tests.

    use super::*;
    use parking_lot::Mutex;

    /// An interrupt controller that remembers the last level of every source.
    #[derive(Default)]
    pub struct RecordingSink {
        pub levels: Mutex<std::collections::BTreeMap<u32, bool>>,
    }

    impl RecordingSink {
        pub fn level(&self, source: u32) -> bool {
            self.levels.lock().get(&source).copied().unwrap_or(false)
        }
    }

    impl InterruptSink for RecordingSink {
        fn set_level(&self, source: u32, level: bool) {
            self.levels.lock().insert(source, level);
        }
    }

    /// Guest RAM as a vector, at `base`.
    pub struct VecMemory {
        pub base: u64,
        pub bytes: Mutex<Vec<u8>>,
    }

    impl VecMemory {
        pub fn new(base: u64, size: usize) -> Self {
            Self {
                base,
                bytes: Mutex::new(vec![0; size]),
            }
        }

        fn range(
            &self,
            addr: GuestPhysAddr,
            len: usize,
        ) -> Result<std::ops::Range<usize>, DmaError> {
            let err = DmaError::OutOfRange {
                addr,
                len: len as u64,
            };
            let start = addr.offset_from(GuestPhysAddr(self.base)).ok_or(err)?;
            let start = usize::try_from(start).map_err(|_| err)?;
            let end = start.checked_add(len).ok_or(err)?;
            if end > self.bytes.lock().len() {
                return Err(err);
            }
            Ok(start..end)
        }
    }

    impl GuestMemory for VecMemory {
        fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
            let r = self.range(addr, buf.len())?;
            buf.copy_from_slice(&self.bytes.lock()[r]);
            Ok(())
        }

        fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), DmaError> {
            let r = self.range(addr, data.len())?;
            self.bytes.lock()[r].copy_from_slice(data);
            Ok(())
        }
    }
}
