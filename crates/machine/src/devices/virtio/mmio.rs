//! The virtio-mmio transport, version 2 ("modern", virtio 1.x §4.2.2).
//!
//! Registers are 32-bit (other sizes fault); the device configuration space
//! at 0x100 accepts 1-, 2-, 4- and 8-byte accesses. A slot without a device
//! answers magic, version 2, device id 0 and vendor, as QEMU's empty slots
//! do, so a driver probes all eight slots and skips the empty ones.
//!
//! The transport keeps the registers the driver programs (features, queue
//! configuration, status). At FEATURES_OK it checks the accepted features;
//! at DRIVER_OK it validates the queues and activates the device; writing 0
//! to Status resets the device.

use std::sync::Arc;

use parking_lot::Mutex;
use samsara_types::{GuestPhysAddr, HartId};

use super::queue::{Queue, QueueConfig};
use super::{Activation, VIRTIO_F_VERSION_1, VirtioDevice, VirtioInterrupt, status};
use crate::devices::{DeviceError, IrqLine, MmioDevice};

/// Size of one virtio-mmio slot.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// "virt" in little-endian ASCII.
pub const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;
/// The modern (virtio 1.x) register layout.
pub const VIRTIO_MMIO_VERSION: u32 = 2;
/// "QEMU" in little-endian ASCII, the vendor id QEMU reports.
pub const VIRTIO_MMIO_VENDOR: u32 = 0x554D_4551;

const MAGIC_VALUE: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR_ID: u64 = 0x00c;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const CONFIG_GENERATION: u64 = 0x0fc;
const CONFIG_SPACE: u64 = 0x100;

#[derive(Debug, Default)]
struct TransportState {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<QueueConfig>,
    activated: bool,
}

impl TransportState {
    fn new(queue_count: usize) -> Self {
        Self {
            queues: vec![QueueConfig::default(); queue_count],
            ..Self::default()
        }
    }

    fn selected_queue(&mut self) -> Option<&mut QueueConfig> {
        self.queues.get_mut(self.queue_sel as usize)
    }
}

/// One virtio-mmio slot, with or without a device behind it.
pub struct VirtioMmio {
    device: Option<Arc<dyn VirtioDevice>>,
    interrupt: Arc<VirtioInterrupt>,
    state: Mutex<TransportState>,
}

impl std::fmt::Debug for VirtioMmio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioMmio")
            .field("device_id", &self.device.as_ref().map(|d| d.device_id()))
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

/// Replaces the low or high 32 bits of `old`.
fn set_half(old: GuestPhysAddr, value: u32, high: bool) -> GuestPhysAddr {
    let v = u64::from(value);
    GuestPhysAddr(if high {
        (old.raw() & 0xffff_ffff) | (v << 32)
    } else {
        (old.raw() & !0xffff_ffff) | v
    })
}

impl VirtioMmio {
    /// A slot holding `device`, interrupting through `irq`.
    pub fn new(device: Arc<dyn VirtioDevice>, irq: IrqLine) -> Self {
        let queues = device.queue_max_sizes().len();
        Self {
            device: Some(device),
            interrupt: Arc::new(VirtioInterrupt::new(Some(irq))),
            state: Mutex::new(TransportState::new(queues)),
        }
    }

    /// An empty slot (device id 0).
    pub fn empty() -> Self {
        Self {
            device: None,
            interrupt: Arc::new(VirtioInterrupt::new(None)),
            state: Mutex::new(TransportState::new(0)),
        }
    }

    /// The slot's interrupt status (shared with the device).
    pub fn interrupt(&self) -> &Arc<VirtioInterrupt> {
        &self.interrupt
    }

    fn read_register(&self, device: &dyn VirtioDevice, offset: u64) -> u32 {
        let mut state = self.state.lock();
        let lo = |v: u64| (v & 0xffff_ffff) as u32;
        let hi = |v: u64| (v >> 32) as u32;
        match offset {
            DEVICE_FEATURES => match state.device_features_sel {
                0 => lo(device.device_features()),
                1 => hi(device.device_features()),
                _ => 0,
            },
            QUEUE_NUM_MAX => device
                .queue_max_sizes()
                .get(state.queue_sel as usize)
                .copied()
                .map_or(0, u32::from),
            QUEUE_NUM => state.selected_queue().map_or(0, |q| u32::from(q.size)),
            QUEUE_READY => state.selected_queue().map_or(0, |q| u32::from(q.ready)),
            QUEUE_DESC_LOW => state.selected_queue().map_or(0, |q| lo(q.desc_table.raw())),
            QUEUE_DESC_HIGH => state.selected_queue().map_or(0, |q| hi(q.desc_table.raw())),
            QUEUE_DRIVER_LOW => state.selected_queue().map_or(0, |q| lo(q.avail_ring.raw())),
            QUEUE_DRIVER_HIGH => state.selected_queue().map_or(0, |q| hi(q.avail_ring.raw())),
            QUEUE_DEVICE_LOW => state.selected_queue().map_or(0, |q| lo(q.used_ring.raw())),
            QUEUE_DEVICE_HIGH => state.selected_queue().map_or(0, |q| hi(q.used_ring.raw())),
            INTERRUPT_STATUS => self.interrupt.status(),
            STATUS => {
                let needs_reset = if self.interrupt.needs_reset() {
                    status::NEEDS_RESET
                } else {
                    0
                };
                state.status | needs_reset
            }
            // The configuration never changes behind the driver's back.
            CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_register(&self, device: &dyn VirtioDevice, offset: u64, value: u32) {
        let mut state = self.state.lock();
        let negotiating =
            state.status & status::DRIVER != 0 && state.status & status::FEATURES_OK == 0;
        match offset {
            DEVICE_FEATURES_SEL => state.device_features_sel = value,
            DRIVER_FEATURES_SEL => state.driver_features_sel = value,
            DRIVER_FEATURES if negotiating => {
                let v = u64::from(value);
                match state.driver_features_sel {
                    0 => state.driver_features = (state.driver_features & !0xffff_ffff) | v,
                    1 => state.driver_features = (state.driver_features & 0xffff_ffff) | (v << 32),
                    _ => {}
                }
            }
            QUEUE_SEL => state.queue_sel = value,
            QUEUE_NUM | QUEUE_DESC_LOW | QUEUE_DESC_HIGH | QUEUE_DRIVER_LOW | QUEUE_DRIVER_HIGH
            | QUEUE_DEVICE_LOW | QUEUE_DEVICE_HIGH => {
                // Queue configuration is frozen while the queue is ready.
                let Some(q) = state.selected_queue().filter(|q| !q.ready) else {
                    return;
                };
                match offset {
                    // Validated against the maximum at activation.
                    QUEUE_NUM => q.size = u16::try_from(value).unwrap_or(u16::MAX),
                    QUEUE_DESC_LOW => q.desc_table = set_half(q.desc_table, value, false),
                    QUEUE_DESC_HIGH => q.desc_table = set_half(q.desc_table, value, true),
                    QUEUE_DRIVER_LOW => q.avail_ring = set_half(q.avail_ring, value, false),
                    QUEUE_DRIVER_HIGH => q.avail_ring = set_half(q.avail_ring, value, true),
                    QUEUE_DEVICE_LOW => q.used_ring = set_half(q.used_ring, value, false),
                    _ => q.used_ring = set_half(q.used_ring, value, true),
                }
            }
            QUEUE_READY => {
                if let Some(q) = state.selected_queue() {
                    q.ready = value & 1 != 0;
                }
            }
            // The low 16 bits name the queue (the rest is for VIRTIO_F_NOTIFICATION_DATA).
            QUEUE_NOTIFY if state.activated && !self.interrupt.needs_reset() => {
                device.queue_notify((value & 0xffff) as u16);
            }
            INTERRUPT_ACK => self.interrupt.ack(value),
            STATUS => self.write_status(device, &mut state, value),
            _ => {}
        }
    }

    fn write_status(&self, device: &dyn VirtioDevice, state: &mut TransportState, value: u32) {
        if value == 0 {
            device.reset();
            *state = TransportState::new(device.queue_max_sizes().len());
            self.interrupt.reset();
            return;
        }
        let mut new = value & 0xff;
        let rising = new & !state.status;
        if rising & status::FEATURES_OK != 0 {
            let offered = device.device_features();
            let accepted = state.driver_features;
            // The driver may only accept offered features, and a modern
            // transport requires VERSION_1; otherwise FEATURES_OK does not stick.
            if accepted & !offered != 0 || accepted & VIRTIO_F_VERSION_1 == 0 {
                new &= !status::FEATURES_OK;
            }
        }
        if rising & status::DRIVER_OK != 0 && new & status::FEATURES_OK != 0 && !state.activated {
            match self.activation(device, state) {
                Ok(activation) => match device.activate(activation) {
                    Ok(()) => state.activated = true,
                    Err(_) => self.interrupt.signal_needs_reset(),
                },
                Err(_) => self.interrupt.signal_needs_reset(),
            }
        }
        state.status = new;
    }

    fn activation(
        &self,
        device: &dyn VirtioDevice,
        state: &TransportState,
    ) -> Result<Activation, super::VirtioError> {
        let queues = state
            .queues
            .iter()
            .zip(device.queue_max_sizes())
            .map(|(config, &max)| {
                if config.ready {
                    Queue::new(*config, max).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Activation {
            queues,
            driver_features: state.driver_features,
            interrupt: self.interrupt.clone(),
        })
    }
}

impl MmioDevice for VirtioMmio {
    fn read(&self, _hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        if offset >= VIRTIO_MMIO_SIZE {
            return Err(DeviceError::Unmapped { offset });
        }
        if offset >= CONFIG_SPACE {
            if !crate::devices::is_valid_size(size)
                || offset
                    .checked_add(u64::from(size))
                    .is_none_or(|end| end > VIRTIO_MMIO_SIZE)
            {
                return Err(DeviceError::BadAccess { offset, size });
            }
            let mut buf = [0u8; 8];
            if let Some(device) = &self.device {
                // Hold the transport lock so config reads are ordered with
                // the other register accesses of this slot.
                let _state = self.state.lock();
                device.read_config(offset - CONFIG_SPACE, &mut buf[..usize::from(size)]);
            }
            return Ok(u64::from_le_bytes(buf));
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(DeviceError::BadAccess { offset, size });
        }
        let value = match offset {
            MAGIC_VALUE => VIRTIO_MMIO_MAGIC,
            VERSION => VIRTIO_MMIO_VERSION,
            DEVICE_ID => self.device.as_ref().map_or(0, |d| d.device_id()),
            VENDOR_ID => VIRTIO_MMIO_VENDOR,
            _ => match &self.device {
                Some(device) => self.read_register(device.as_ref(), offset),
                None => 0,
            },
        };
        Ok(u64::from(value))
    }

    fn write(&self, _hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        if offset >= VIRTIO_MMIO_SIZE {
            return Err(DeviceError::Unmapped { offset });
        }
        if offset >= CONFIG_SPACE {
            if !crate::devices::is_valid_size(size)
                || offset
                    .checked_add(u64::from(size))
                    .is_none_or(|end| end > VIRTIO_MMIO_SIZE)
            {
                return Err(DeviceError::BadAccess { offset, size });
            }
            if let Some(device) = &self.device {
                let _state = self.state.lock();
                let bytes = value.to_le_bytes();
                device.write_config(offset - CONFIG_SPACE, &bytes[..usize::from(size)]);
            }
            return Ok(());
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(DeviceError::BadAccess { offset, size });
        }
        if let Some(device) = &self.device {
            self.write_register(device.as_ref(), offset, (value & 0xffff_ffff) as u32);
        }
        Ok(())
    }
}
