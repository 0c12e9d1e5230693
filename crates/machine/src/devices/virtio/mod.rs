//! Virtio 1.x devices behind the virtio-mmio transport (MMIO version 2).
//!
//! - [`mmio`]: the transport (registers, feature negotiation, queue setup,
//!   interrupt status); one [`mmio::VirtioMmio`] per board slot, empty slots
//!   answer with device id 0 so drivers probe all of them.
//! - [`queue`]: the split virtqueue, with every guest-supplied index, length
//!   and address checked.
//! - [`block`]: virtio-blk backed by a disk image file.
//!
//! A device is activated by the transport when the driver sets DRIVER_OK; it
//! then owns its [`queue::Queue`]s and a shared [`VirtioInterrupt`] through
//! which it signals used buffers, configuration changes and NEEDS_RESET.

pub mod block;
pub mod mmio;
pub mod queue;

use parking_lot::Mutex;

use super::IrqLine;
use queue::Queue;

/// Feature bit: the device conforms to virtio 1.x (mandatory for MMIO v2).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Device status bits (virtio 1.x §2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready: the device may start.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an unrecoverable error and needs a reset.
    pub const NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus bit: the device used a buffer.
pub const VIRTIO_INT_USED_BUFFER: u32 = 1;
/// InterruptStatus bit: the configuration (or NEEDS_RESET) changed.
pub const VIRTIO_INT_CONFIG_CHANGE: u32 = 2;

/// Why a device could not be activated.
#[derive(Debug, thiserror::Error)]
pub enum VirtioError {
    /// The driver did not make a queue the device needs ready.
    #[error("queue {0} is not ready")]
    QueueNotReady(usize),
    /// A queue's configuration is invalid.
    #[error("invalid queue configuration: {0}")]
    Queue(#[from] queue::QueueError),
}

#[derive(Debug, Default)]
struct InterruptInner {
    status: u32,
    needs_reset: bool,
}

/// The interrupt status of one virtio-mmio slot and its PLIC line, shared
/// between the transport (which reads and acknowledges it) and the device
/// (which raises it when it completes requests, possibly from a worker
/// thread). The line is high while any status bit is set.
#[derive(Debug)]
pub struct VirtioInterrupt {
    inner: Mutex<InterruptInner>,
    line: Option<IrqLine>,
}

impl VirtioInterrupt {
    /// Interrupt state driving `line` (`None`: not wired, for empty slots).
    pub fn new(line: Option<IrqLine>) -> Self {
        Self {
            inner: Mutex::new(InterruptInner::default()),
            line,
        }
    }

    fn raise(&self, bits: u32) {
        let mut inner = self.inner.lock();
        inner.status |= bits;
        // Under the lock, so a concurrent ack cannot reorder the line levels.
        if let Some(line) = &self.line {
            line.set(inner.status != 0);
        }
    }

    /// The device put buffers in a used ring.
    pub fn signal_used_buffer(&self) {
        self.raise(VIRTIO_INT_USED_BUFFER);
    }

    /// The device configuration changed.
    pub fn signal_config_change(&self) {
        self.raise(VIRTIO_INT_CONFIG_CHANGE);
    }

    /// The device hit an error it cannot recover from: it sets NEEDS_RESET
    /// in the status register and notifies the driver by a configuration
    /// change interrupt (virtio 1.x §2.1.2).
    pub fn signal_needs_reset(&self) {
        self.inner.lock().needs_reset = true;
        self.raise(VIRTIO_INT_CONFIG_CHANGE);
    }

    /// The InterruptStatus register.
    pub fn status(&self) -> u32 {
        self.inner.lock().status
    }

    /// True once the device asked for a reset.
    pub fn needs_reset(&self) -> bool {
        self.inner.lock().needs_reset
    }

    /// InterruptACK: clears `bits`, lowering the line when none remain.
    pub fn ack(&self, bits: u32) {
        let mut inner = self.inner.lock();
        inner.status &= !bits;
        if let Some(line) = &self.line {
            line.set(inner.status != 0);
        }
    }

    /// Device reset: no interrupt, no NEEDS_RESET.
    pub fn reset(&self) {
        let mut inner = self.inner.lock();
        *inner = InterruptInner::default();
        if let Some(line) = &self.line {
            line.set(false);
        }
    }
}

/// What a device receives when the driver sets DRIVER_OK.
#[derive(Debug)]
pub struct Activation {
    /// One entry per queue the device declared, validated; `None` for queues
    /// the driver did not make ready.
    pub queues: Vec<Option<Queue>>,
    /// The features the driver accepted.
    pub driver_features: u64,
    /// Where the device signals interrupts.
    pub interrupt: std::sync::Arc<VirtioInterrupt>,
}

/// A virtio device model, driven by the [`mmio::VirtioMmio`] transport.
///
/// Methods are called with the transport's lock held, so they are totally
/// ordered with the guest's register accesses to the slot.
pub trait VirtioDevice: Send + Sync {
    /// Virtio device id (2 = block).
    fn device_id(&self) -> u32;
    /// Feature bits offered, including [`VIRTIO_F_VERSION_1`].
    fn device_features(&self) -> u64;
    /// Maximum size of each of the device's queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads device configuration space at `offset` into `data`; bytes past
    /// the end of the configuration read as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes device configuration space (ignored where read-only).
    fn write_config(&self, offset: u64, data: &[u8]);
    /// Starts the device with the driver's queues.
    fn activate(&self, activation: Activation) -> Result<(), VirtioError>;
    /// The driver notified queue `queue` (an MMIO write: totally ordered).
    fn queue_notify(&self, queue: u16);
    /// Device reset (the driver wrote 0 to Status): forget the queues and
    /// drop every request still in flight.
    fn reset(&self);
}
