//! The split virtqueue (virtio 1.x §2.7): descriptor table, available
//! ring (driver → device) and used ring (device → driver), all in guest
//! memory and all untrusted.
//!
//! Every index read from the guest is range-checked, descriptor chains are
//! bounded by the queue size (which also catches loops), and every memory
//! access goes through [`GuestMemory`], which refuses ranges outside RAM.
//! Errors are [`QueueError`]s; the device turns them into NEEDS_RESET.
//! Indirect descriptors and EVENT_IDX are not offered, so not handled.

use std::sync::atomic::{Ordering, fence};

use samsara_types::GuestPhysAddr;

use crate::devices::{DmaError, GuestMemory};

/// Descriptor flag: the chain continues at `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of indirect descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;

const DESCRIPTOR_SIZE: u64 = 16;
const USED_ELEMENT_SIZE: u64 = 8;

/// A malformed queue or descriptor chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The ring or table is not where the guest said (outside RAM).
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// Queue size is zero or above the device's maximum.
    #[error("queue size {size} is invalid (maximum {max})")]
    InvalidSize {
        /// Size the driver chose.
        size: u16,
        /// Device maximum.
        max: u16,
    },
    /// A ring is not aligned as the spec requires (16/2/4 bytes).
    #[error("queue area at {0} is misaligned")]
    Misaligned(GuestPhysAddr),
    /// The driver claims more available entries than the queue holds.
    #[error("available index {avail} is {ahead} entries ahead of {next} (queue size {size})")]
    AvailOverrun {
        /// avail.idx read from the guest.
        avail: u16,
        /// Our next available index.
        next: u16,
        /// How far ahead it is.
        ahead: u16,
        /// Queue size.
        size: u16,
    },
    /// A descriptor index (chain head or `next`) beyond the table.
    #[error("descriptor index {index} out of range (queue size {size})")]
    DescriptorIndex {
        /// The bad index.
        index: u16,
        /// Queue size.
        size: u16,
    },
    /// A chain longer than the queue: it loops.
    #[error("descriptor chain from head {head} is longer than the queue (loop)")]
    ChainLoop {
        /// Head of the chain.
        head: u16,
    },
    /// An indirect descriptor, which was not negotiated.
    #[error("indirect descriptor in chain from head {head} (not negotiated)")]
    Indirect {
        /// Head of the chain.
        head: u16,
    },
    /// A device-readable descriptor after a device-writable one.
    #[error("readable descriptor after a writable one in chain from head {head}")]
    DescriptorOrder {
        /// Head of the chain.
        head: u16,
    },
    /// Guest-physical address arithmetic overflowed.
    #[error("queue address overflow")]
    AddressOverflow,
}

/// The registers the driver programs for one queue (transport state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// Size chosen by the driver (QueueNum).
    pub size: u16,
    /// QueueReady.
    pub ready: bool,
    /// Descriptor table (QueueDesc).
    pub desc_table: GuestPhysAddr,
    /// Available ring (QueueDriver).
    pub avail_ring: GuestPhysAddr,
    /// Used ring (QueueDevice).
    pub used_ring: GuestPhysAddr,
}

/// One descriptor of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest-physical buffer address.
    pub addr: GuestPhysAddr,
    /// Buffer length.
    pub len: u32,
    /// Device-writable (else device-readable).
    pub writable: bool,
}

/// A descriptor chain popped from the available ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorChain {
    /// Index of the first descriptor: what goes back in the used ring.
    pub head: u16,
    /// The descriptors, readable ones first.
    pub descriptors: Vec<Descriptor>,
}

impl DescriptorChain {
    /// The device-readable descriptors.
    pub fn readable(&self) -> impl Iterator<Item = &Descriptor> {
        self.descriptors.iter().filter(|d| !d.writable)
    }

    /// The device-writable descriptors.
    pub fn writable(&self) -> impl Iterator<Item = &Descriptor> {
        self.descriptors.iter().filter(|d| d.writable)
    }
}

/// A live split virtqueue (device side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    config: QueueConfig,
    /// Next available-ring entry to consume.
    next_avail: u16,
    /// Next used-ring entry to fill.
    next_used: u16,
}

fn offset(base: GuestPhysAddr, off: u64) -> Result<GuestPhysAddr, QueueError> {
    base.checked_add(off).ok_or(QueueError::AddressOverflow)
}

fn read_u16(mem: &dyn GuestMemory, addr: GuestPhysAddr) -> Result<u16, QueueError> {
    let mut b = [0; 2];
    mem.read(addr, &mut b)?;
    Ok(u16::from_le_bytes(b))
}

impl Queue {
    /// A queue over the driver's configuration, checked against `max_size`.
    pub fn new(config: QueueConfig, max_size: u16) -> Result<Self, QueueError> {
        if config.size == 0 || config.size > max_size {
            return Err(QueueError::InvalidSize {
                size: config.size,
                max: max_size,
            });
        }
        for (addr, align) in [
            (config.desc_table, 16),
            (config.avail_ring, 2),
            (config.used_ring, 4),
        ] {
            if addr.raw() % align != 0 {
                return Err(QueueError::Misaligned(addr));
            }
        }
        Ok(Self {
            config,
            next_avail: 0,
            next_used: 0,
        })
    }

    /// Queue size.
    pub fn size(&self) -> u16 {
        self.config.size
    }

    /// The driver's configuration this queue runs on.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Pops the next available chain head, or `None` if the driver has
    /// published nothing new.
    pub fn pop_avail(&mut self, mem: &dyn GuestMemory) -> Result<Option<u16>, QueueError> {
        let avail_idx = read_u16(mem, offset(self.config.avail_ring, 2)?)?;
        let ahead = avail_idx.wrapping_sub(self.next_avail);
        if ahead == 0 {
            return Ok(None);
        }
        if ahead > self.config.size {
            return Err(QueueError::AvailOverrun {
                avail: avail_idx,
                next: self.next_avail,
                ahead,
                size: self.config.size,
            });
        }
        // The ring entry must be read after the index that published it.
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.config.size);
        let head = read_u16(mem, offset(self.config.avail_ring, 4 + 2 * slot)?)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(head))
    }

    /// Reads the chain starting at descriptor `head`.
    pub fn read_chain(
        &self,
        mem: &dyn GuestMemory,
        head: u16,
    ) -> Result<DescriptorChain, QueueError> {
        let size = self.config.size;
        let mut descriptors = Vec::new();
        let mut index = head;
        let mut seen_writable = false;
        loop {
            if index >= size {
                return Err(QueueError::DescriptorIndex { index, size });
            }
            // A chain can visit each descriptor at most once.
            if descriptors.len() >= usize::from(size) {
                return Err(QueueError::ChainLoop { head });
            }
            let mut raw = [0u8; DESCRIPTOR_SIZE as usize];
            mem.read(
                offset(self.config.desc_table, DESCRIPTOR_SIZE * u64::from(index))?,
                &mut raw,
            )?;
            let [
                a0,
                a1,
                a2,
                a3,
                a4,
                a5,
                a6,
                a7,
                l0,
                l1,
                l2,
                l3,
                f0,
                f1,
                n0,
                n1,
            ] = raw;
            let addr = GuestPhysAddr(u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]));
            let len = u32::from_le_bytes([l0, l1, l2, l3]);
            let flags = u16::from_le_bytes([f0, f1]);
            let next = u16::from_le_bytes([n0, n1]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect { head });
            }
            let writable = flags & VIRTQ_DESC_F_WRITE != 0;
            if seen_writable && !writable {
                return Err(QueueError::DescriptorOrder { head });
            }
            seen_writable |= writable;
            descriptors.push(Descriptor {
                addr,
                len,
                writable,
            });
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(DescriptorChain { head, descriptors });
            }
            index = next;
        }
    }

    /// Puts chain `head` in the used ring with `len` bytes written, then
    /// publishes it by advancing used.idx.
    pub fn add_used(
        &mut self,
        mem: &dyn GuestMemory,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used % self.config.size);
        let mut element = [0u8; USED_ELEMENT_SIZE as usize];
        element[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        element[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(
            offset(self.config.used_ring, 4 + USED_ELEMENT_SIZE * slot)?,
            &element,
        )?;
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        let next_used = self.next_used.wrapping_add(1);
        mem.write(offset(self.config.used_ring, 2)?, &next_used.to_le_bytes())?;
        self.next_used = next_used;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::devices::testing::VecMemory;

    pub const RAM: u64 = 0x8000_0000;
    pub const DESC: u64 = RAM;
    pub const AVAIL: u64 = RAM + 0x1000;
    pub const USED: u64 = RAM + 0x2000;

    pub fn config(size: u16) -> QueueConfig {
        QueueConfig {
            size,
            ready: true,
            desc_table: GuestPhysAddr(DESC),
            avail_ring: GuestPhysAddr(AVAIL),
            used_ring: GuestPhysAddr(USED),
        }
    }

    pub fn write_desc(mem: &VecMemory, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&addr.to_le_bytes());
        raw.extend_from_slice(&len.to_le_bytes());
        raw.extend_from_slice(&flags.to_le_bytes());
        raw.extend_from_slice(&next.to_le_bytes());
        mem.write(GuestPhysAddr(DESC + 16 * u64::from(index)), &raw)
            .unwrap();
    }

    /// Publishes `head` in avail slot `slot` and sets avail.idx to `idx`.
    pub fn publish(mem: &VecMemory, slot: u16, head: u16, idx: u16) {
        mem.write(
            GuestPhysAddr(AVAIL + 4 + 2 * u64::from(slot)),
            &head.to_le_bytes(),
        )
        .unwrap();
        mem.write(GuestPhysAddr(AVAIL + 2), &idx.to_le_bytes())
            .unwrap();
    }

    pub fn used_idx(mem: &VecMemory) -> u16 {
        read_u16(mem, GuestPhysAddr(USED + 2)).unwrap()
    }

    pub fn used_elem(mem: &VecMemory, slot: u16) -> (u32, u32) {
        let mut b = [0u8; 8];
        mem.read(GuestPhysAddr(USED + 4 + 8 * u64::from(slot)), &mut b)
            .unwrap();
        (
            u32::from_le_bytes(b[..4].try_into().unwrap()),
            u32::from_le_bytes(b[4..].try_into().unwrap()),
        )
    }

    #[test]
    fn validation() {
        assert!(matches!(
            Queue::new(config(0), 8),
            Err(QueueError::InvalidSize { .. })
        ));
        assert!(matches!(
            Queue::new(config(16), 8),
            Err(QueueError::InvalidSize { .. })
        ));
        let mut c = config(8);
        c.used_ring = GuestPhysAddr(USED + 2);
        assert!(matches!(Queue::new(c, 8), Err(QueueError::Misaligned(_))));
    }

    #[test]
    fn pop_read_and_use() {
        let mem = VecMemory::new(RAM, 0x10000);
        let mut q = Queue::new(config(4), 4).unwrap();
        assert_eq!(q.pop_avail(&mem), Ok(None));
        write_desc(&mem, 2, RAM + 0x4000, 16, VIRTQ_DESC_F_NEXT, 3);
        write_desc(&mem, 3, RAM + 0x5000, 1, VIRTQ_DESC_F_WRITE, 0);
        publish(&mem, 0, 2, 1);
        assert_eq!(q.pop_avail(&mem), Ok(Some(2)));
        assert_eq!(q.pop_avail(&mem), Ok(None));
        let chain = q.read_chain(&mem, 2).unwrap();
        assert_eq!(chain.head, 2);
        assert_eq!(chain.readable().count(), 1);
        assert_eq!(
            chain.writable().next().unwrap().addr,
            GuestPhysAddr(RAM + 0x5000)
        );
        q.add_used(&mem, 2, 1).unwrap();
        assert_eq!(used_idx(&mem), 1);
        assert_eq!(used_elem(&mem, 0), (2, 1));
    }

    #[test]
    fn ring_indices_wrap() {
        let mem = VecMemory::new(RAM, 0x10000);
        let mut q = Queue::new(config(2), 2).unwrap();
        write_desc(&mem, 0, RAM + 0x4000, 1, VIRTQ_DESC_F_WRITE, 0);
        for i in 0..5u16 {
            publish(&mem, i % 2, 0, i + 1);
            assert_eq!(q.pop_avail(&mem), Ok(Some(0)));
            q.add_used(&mem, 0, 1).unwrap();
        }
        assert_eq!(used_idx(&mem), 5);
    }

    #[test]
    fn malformed_chains_are_errors() {
        let mem = VecMemory::new(RAM, 0x10000);
        let q = Queue::new(config(4), 4).unwrap();
        // Head out of range.
        assert!(matches!(
            q.read_chain(&mem, 4),
            Err(QueueError::DescriptorIndex { .. })
        ));
        // next out of range.
        write_desc(&mem, 0, RAM, 1, VIRTQ_DESC_F_NEXT, 9);
        assert!(matches!(
            q.read_chain(&mem, 0),
            Err(QueueError::DescriptorIndex { .. })
        ));
        // A loop 0 -> 1 -> 0.
        write_desc(&mem, 0, RAM, 1, VIRTQ_DESC_F_NEXT, 1);
        write_desc(&mem, 1, RAM, 1, VIRTQ_DESC_F_NEXT, 0);
        assert!(matches!(
            q.read_chain(&mem, 0),
            Err(QueueError::ChainLoop { head: 0 })
        ));
        // Indirect.
        write_desc(&mem, 0, RAM, 16, VIRTQ_DESC_F_INDIRECT, 0);
        assert!(matches!(
            q.read_chain(&mem, 0),
            Err(QueueError::Indirect { .. })
        ));
        // Readable after writable.
        write_desc(&mem, 0, RAM, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
        write_desc(&mem, 1, RAM, 1, 0, 0);
        assert!(matches!(
            q.read_chain(&mem, 0),
            Err(QueueError::DescriptorOrder { .. })
        ));
    }

    #[test]
    fn rings_outside_ram_and_overrun() {
        let mem = VecMemory::new(RAM, 0x10000);
        let mut c = config(4);
        c.avail_ring = GuestPhysAddr(0x1000);
        let mut q = Queue::new(c, 4).unwrap();
        assert!(matches!(q.pop_avail(&mem), Err(QueueError::Dma(_))));
        let mut c = config(4);
        c.desc_table = GuestPhysAddr(u64::MAX - 15);
        let q = Queue::new(c, 4).unwrap();
        assert!(q.read_chain(&mem, 3).is_err());
        let mut q = Queue::new(config(4), 4).unwrap();
        publish(&mem, 0, 0, 100);
        assert!(matches!(
            q.pop_avail(&mem),
            Err(QueueError::AvailOverrun { .. })
        ));
    }
}
