//! virtio-blk (device id 2) backed by a disk image file.
//!
//! # How a request flows (and why)
//! Disk completions are the "compound events" of the recording: the device
//! writes guest memory (DMA) and raises an interrupt at a moment the guest
//! does not control. The request path is therefore split so the recorder
//! can put each part in its global order:
//!
//! 1. **QueueNotify** (an MMIO write, totally ordered by the recorder): the
//!    device synchronously reads the available ring, the descriptor chains
//!    and the data of OUT requests from guest memory, checking everything
//!    (descriptors outside RAM, loops, absurd lengths: the device sets
//!    NEEDS_RESET, or the request fails with an error status), and hands a
//!    [`Job`] to its worker thread. Nothing is read from the guest later.
//! 2. The **worker thread** does the host file I/O and produces a
//!    [`Completion`]: plain data saying which chain completed, which bytes go
//!    to which guest addresses, the status byte and the used length.
//! 3. The completion goes to a [`CompletionSink`]. In `run` mode it is
//!    applied at once ([`VirtioBlk::apply_completion`]: DMA writes, used
//!    ring, interrupt); the recorder's sink instead sequences it in its
//!    global order and applies it there, and the replayer applies the logged
//!    completions at the same points.
//!
//! Given the sequence of MMIO accesses and applied completions, the device's
//! state and its effects on guest memory are deterministic.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use samsara_types::GuestPhysAddr;

use super::queue::{DescriptorChain, Queue, QueueError};
use super::{Activation, VIRTIO_F_VERSION_1, VirtioDevice, VirtioError, VirtioInterrupt};
use crate::devices::GuestMemory;

/// Virtio device id of a block device.
pub const VIRTIO_ID_BLOCK: u32 = 2;
/// Sector size of the virtio-blk protocol (independent of `blk_size`).
pub const SECTOR_SIZE: u64 = 512;
/// Queue size offered (QEMU's default for virtio-blk).
pub const BLK_QUEUE_SIZE: u16 = 256;
/// Largest data transfer one request may ask for; larger ones fail with
/// IOERR. Bounds the memory a request holds (Linux's default maximum request
/// is 1.25 MiB); with the job channel holding at most [`BLK_QUEUE_SIZE`]
/// requests, at most ~512 MiB of OUT data is ever buffered, whatever the guest does.
pub const MAX_REQUEST_BYTES: u64 = 2 * 1024 * 1024;
/// Length of the GET_ID string.
pub const VIRTIO_BLK_ID_BYTES: usize = 20;

/// Feature: `seg_max` in the configuration is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// Feature: the device is read-only.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// Feature: `blk_size` in the configuration is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// Feature: the device supports FLUSH.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Request type: read.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// Request type: write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// Request type: flush.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Request type: device id string.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Status: success.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Status: I/O error.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Status: unsupported request.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// Size of the request header (type, reserved, sector).
const HEADER_SIZE: u64 = 16;
/// Bytes of configuration space we model (through `blk_size` and topology).
const CONFIG_SIZE: usize = 36;

/// Why the block device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BlkError {
    /// The disk image could not be opened.
    #[error("cannot open disk image {path}")]
    Open {
        /// The image path.
        path: PathBuf,
        /// The host error.
        #[source]
        source: std::io::Error,
    },
    /// The worker thread could not be started.
    #[error("cannot start the virtio-blk worker thread: {0}")]
    Worker(std::io::Error),
}

/// How to build a [`VirtioBlk`].
#[derive(Clone, Debug)]
pub struct BlkConfig {
    /// Disk image file (raw).
    pub path: PathBuf,
    /// Open the image read-only: the device advertises VIRTIO_BLK_F_RO and
    /// write requests fail with IOERR.
    pub read_only: bool,
    /// The GET_ID string (truncated to 20 bytes).
    pub serial: String,
}

impl BlkConfig {
    /// A writable disk backed by `path`, serial "samsara-blk".
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            read_only: false,
            serial: "samsara-blk".to_owned(),
        }
    }
}

/// Bytes the device writes into guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaWrite {
    /// Destination.
    pub addr: GuestPhysAddr,
    /// Contents.
    pub data: Vec<u8>,
}

/// The result of one request, as plain data: what the device will write to
/// guest memory and report when the completion is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Device reset generation the request belongs to: completions of
    /// requests issued before a reset are dropped when applied.
    pub epoch: u64,
    /// Queue index.
    pub queue: u16,
    /// Head of the descriptor chain (goes in the used ring).
    pub head: u16,
    /// Data to DMA into the chain's writable buffers (IN, GET_ID).
    pub writes: Vec<DmaWrite>,
    /// Where the status byte goes.
    pub status_addr: GuestPhysAddr,
    /// The status byte (`VIRTIO_BLK_S_*`).
    pub status: u8,
    /// Bytes written into the chain, status byte included (used.len).
    pub used_len: u32,
}

/// Where the worker sends completions.
pub trait CompletionSink: Send + Sync {
    /// Takes a completion; the implementation arranges for
    /// [`VirtioBlk::apply_completion`] to be called with it (now, or at its
    /// place in a recorded order).
    fn submit(&self, completion: Completion);
}

/// The `run`-mode sink: applies each completion immediately, on the worker
/// thread.
struct ImmediateSink {
    device: OnceLock<Weak<VirtioBlk>>,
    mem: Arc<dyn GuestMemory>,
}

impl CompletionSink for ImmediateSink {
    fn submit(&self, completion: Completion) {
        if let Some(device) = self.device.get().and_then(Weak::upgrade) {
            device.apply_completion(completion, self.mem.as_ref());
        }
    }
}

/// What the worker must do (everything read from the guest already).
#[derive(Debug)]
enum Operation {
    /// Read `len` bytes at `offset` into `regions` (in order).
    Read {
        offset: u64,
        regions: Vec<(GuestPhysAddr, u32)>,
    },
    /// Write `data` at `offset`.
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    Flush,
    /// Write the id string into `regions`.
    GetId {
        regions: Vec<(GuestPhysAddr, u32)>,
    },
    /// Complete with this status and nothing else.
    Fail(u8),
}

/// A request handed to the worker.
#[derive(Debug)]
struct Job {
    epoch: u64,
    queue: u16,
    head: u16,
    status_addr: GuestPhysAddr,
    operation: Operation,
}

struct ActiveState {
    queue: Queue,
    interrupt: Arc<VirtioInterrupt>,
}

#[derive(Default)]
struct BlkState {
    active: Option<ActiveState>,
    /// Bumped at every reset.
    epoch: u64,
    /// Requests handed to the worker and not yet applied.
    in_flight: usize,
    /// NEEDS_RESET was signalled: ignore the queue until reset.
    broken: bool,
}

/// A virtio block device.
pub struct VirtioBlk {
    capacity_sectors: u64,
    read_only: bool,
    config_space: [u8; CONFIG_SIZE],
    mem: Arc<dyn GuestMemory>,
    state: Mutex<BlkState>,
    jobs: Sender<Job>,
}

impl std::fmt::Debug for VirtioBlk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioBlk")
            .field("capacity_sectors", &self.capacity_sectors)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl VirtioBlk {
    /// A disk whose completions are applied as soon as the host I/O is done
    /// (`run` mode). `mem` is guest RAM.
    pub fn new(config: &BlkConfig, mem: Arc<dyn GuestMemory>) -> Result<Arc<Self>, BlkError> {
        let sink = Arc::new(ImmediateSink {
            device: OnceLock::new(),
            mem: mem.clone(),
        });
        let device = Self::with_sink(config, mem, sink.clone())?;
        // Nothing can complete before the device exists, so setting it now is in time.
        let _ = sink.device.set(Arc::downgrade(&device));
        Ok(device)
    }

    /// A disk whose completions go to `sink` (the recorder's, or a test's).
    pub fn with_sink(
        config: &BlkConfig,
        mem: Arc<dyn GuestMemory>,
        sink: Arc<dyn CompletionSink>,
    ) -> Result<Arc<Self>, BlkError> {
        let file = open_image(&config.path, config.read_only)?;
        let len = file
            .metadata()
            .map_err(|source| BlkError::Open {
                path: config.path.clone(),
                source,
            })?
            .len();
        let capacity_sectors = len / SECTOR_SIZE;
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES];
        let serial = config.serial.as_bytes();
        let n = serial.len().min(VIRTIO_BLK_ID_BYTES);
        id[..n].copy_from_slice(&serial[..n]);

        let mut config_space = [0u8; CONFIG_SIZE];
        config_space[0..8].copy_from_slice(&capacity_sectors.to_le_bytes());
        // seg_max: the whole queue minus header and status (as QEMU).
        config_space[12..16].copy_from_slice(&(u32::from(BLK_QUEUE_SIZE) - 2).to_le_bytes());
        config_space[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());

        // Bounded: a guest resetting and resubmitting in a loop cannot queue
        // unbounded work (and OUT data) faster than the disk takes it.
        let (jobs, receiver) = crossbeam_channel::bounded(usize::from(BLK_QUEUE_SIZE));
        let worker = Worker {
            file,
            read_only: config.read_only,
            id,
            sink,
        };
        std::thread::Builder::new()
            .name("virtio-blk".to_owned())
            .spawn(move || worker.run(receiver))
            .map_err(BlkError::Worker)?;

        Ok(Arc::new(Self {
            capacity_sectors,
            read_only: config.read_only,
            config_space,
            mem,
            state: Mutex::new(BlkState::default()),
            jobs,
        }))
    }

    /// Disk size in 512-byte sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity_sectors
    }

    /// Applies a completion: DMA of its data and status byte, used-ring
    /// entry, used-buffer interrupt. Completions from before a device reset
    /// are dropped. Guest memory that is no longer valid makes the device
    /// signal NEEDS_RESET.
    pub fn apply_completion(&self, completion: Completion, mem: &dyn GuestMemory) {
        let mut state = self.state.lock();
        if completion.epoch != state.epoch || state.broken {
            return;
        }
        let Some(active) = state.active.as_mut() else {
            return;
        };
        let result = (|| -> Result<(), QueueError> {
            for write in &completion.writes {
                mem.write(write.addr, &write.data)?;
            }
            mem.write(completion.status_addr, &[completion.status])?;
            active
                .queue
                .add_used(mem, completion.head, completion.used_len)
        })();
        let interrupt = active.interrupt.clone();
        state.in_flight = state.in_flight.saturating_sub(1);
        match result {
            Ok(()) => interrupt.signal_used_buffer(),
            Err(_) => {
                state.broken = true;
                interrupt.signal_needs_reset();
            }
        }
    }

    /// Turns a chain into a job, reading everything it needs from the guest.
    /// `Err` means the chain is unusable (the device needs a reset).
    fn parse_request(&self, epoch: u64, chain: &DescriptorChain) -> Result<Job, QueueError> {
        let readable: u64 = chain.readable().map(|d| u64::from(d.len)).sum();
        let writable: Vec<(GuestPhysAddr, u32)> =
            chain.writable().map(|d| (d.addr, d.len)).collect();
        let writable_len: u64 = writable.iter().map(|&(_, len)| u64::from(len)).sum();

        // The status byte is the last writable byte.
        let Some(status_addr) = last_byte(&writable) else {
            // Nowhere to report anything: QEMU treats this as a fatal device error.
            return Err(QueueError::DescriptorOrder { head: chain.head });
        };
        let data_regions = trim_last_byte(&writable);
        let data_len = writable_len - 1;
        let job = |operation| Job {
            epoch,
            queue: 0,
            head: chain.head,
            status_addr,
            operation,
        };
        if readable < HEADER_SIZE {
            return Ok(job(Operation::Fail(VIRTIO_BLK_S_IOERR)));
        }
        if readable - HEADER_SIZE > MAX_REQUEST_BYTES || data_len > MAX_REQUEST_BYTES {
            return Ok(job(Operation::Fail(VIRTIO_BLK_S_IOERR)));
        }
        // Bounded by MAX_REQUEST_BYTES + HEADER_SIZE just above.
        let mut out = vec![0u8; readable as usize];
        let mut filled = 0usize;
        for d in chain.readable() {
            let len = d.len as usize;
            self.mem.read(d.addr, &mut out[filled..filled + len])?;
            filled += len;
        }
        let request_type = u32::from_le_bytes([out[0], out[1], out[2], out[3]]);
        let sector = u64::from_le_bytes([
            out[8], out[9], out[10], out[11], out[12], out[13], out[14], out[15],
        ]);
        let operation = match request_type {
            VIRTIO_BLK_T_IN => match self.disk_offset(sector, data_len) {
                Some(offset) => Operation::Read {
                    offset,
                    regions: data_regions,
                },
                None => Operation::Fail(VIRTIO_BLK_S_IOERR),
            },
            VIRTIO_BLK_T_OUT => {
                let data = out.split_off(HEADER_SIZE as usize);
                match self.disk_offset(sector, data.len() as u64) {
                    _ if self.read_only => Operation::Fail(VIRTIO_BLK_S_IOERR),
                    Some(offset) => Operation::Write { offset, data },
                    None => Operation::Fail(VIRTIO_BLK_S_IOERR),
                }
            }
            VIRTIO_BLK_T_FLUSH => Operation::Flush,
            VIRTIO_BLK_T_GET_ID => Operation::GetId {
                regions: data_regions,
            },
            _ => Operation::Fail(VIRTIO_BLK_S_UNSUPP),
        };
        Ok(job(operation))
    }

    /// Byte offset of a transfer of `len` bytes at `sector`, if it is
    /// sector-aligned in length and inside the disk.
    fn disk_offset(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return None;
        }
        let end_sector = sector.checked_add(len / SECTOR_SIZE)?;
        if end_sector > self.capacity_sectors {
            return None;
        }
        sector.checked_mul(SECTOR_SIZE)
    }

    /// Pops every available chain and turns it into a job (the synchronous
    /// half of QueueNotify). A malformed queue or chain marks the device
    /// broken; the jobs taken before it still run.
    fn collect_jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.broken {
            return jobs;
        }
        let epoch = state.epoch;
        let Some(active) = state.active.as_mut() else {
            return jobs;
        };
        let queue_size = usize::from(active.queue.size());
        loop {
            let head = match active.queue.pop_avail(self.mem.as_ref()) {
                Ok(Some(head)) => head,
                Ok(None) => return jobs,
                Err(_) => break,
            };
            // A correct driver never has more chains outstanding than the
            // queue holds; more means reused descriptors.
            if state.in_flight >= queue_size {
                break;
            }
            let job = active
                .queue
                .read_chain(self.mem.as_ref(), head)
                .and_then(|chain| self.parse_request(epoch, &chain));
            match job {
                Ok(job) => {
                    state.in_flight += 1;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        Self::fail_device(state);
        jobs
    }

    fn fail_device(state: &mut BlkState) {
        state.broken = true;
        if let Some(active) = &state.active {
            active.interrupt.signal_needs_reset();
        }
    }
}

/// Address of the last byte of a list of regions (skipping empty ones).
fn last_byte(regions: &[(GuestPhysAddr, u32)]) -> Option<GuestPhysAddr> {
    let &(addr, len) = regions.iter().rev().find(|&&(_, len)| len > 0)?;
    addr.checked_add(u64::from(len) - 1)
}

/// The regions without their last byte.
fn trim_last_byte(regions: &[(GuestPhysAddr, u32)]) -> Vec<(GuestPhysAddr, u32)> {
    let mut out: Vec<_> = regions
        .iter()
        .copied()
        .filter(|&(_, len)| len > 0)
        .collect();
    if let Some(last) = out.last_mut() {
        last.1 -= 1;
        if last.1 == 0 {
            out.pop();
        }
    }
    out
}

fn open_image(path: &Path, read_only: bool) -> Result<File, BlkError> {
    OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(path)
        .map_err(|source| BlkError::Open {
            path: path.to_owned(),
            source,
        })
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn device_features(&self) -> u64 {
        let ro = if self.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | ro
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[BLK_QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.config_space.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    /// Nothing writable without VIRTIO_BLK_F_CONFIG_WCE.
    fn write_config(&self, _offset: u64, _data: &[u8]) {}

    fn activate(&self, activation: Activation) -> Result<(), VirtioError> {
        let queue = activation
            .queues
            .into_iter()
            .next()
            .flatten()
            .ok_or(VirtioError::QueueNotReady(0))?;
        let mut state = self.state.lock();
        state.active = Some(ActiveState {
            queue,
            interrupt: activation.interrupt,
        });
        state.broken = false;
        Ok(())
    }

    fn queue_notify(&self, queue: u16) {
        if queue != 0 {
            return;
        }
        let jobs = self.collect_jobs();
        // Sent after the state lock is released: the channel is bounded, and
        // the worker may need that lock (to apply a completion) before it
        // makes room. Notifications are serialised by the transport's lock,
        // so jobs still reach the worker in guest order.
        for job in jobs {
            // Fails only if the worker died; then the request never completes.
            let _ = self.jobs.send(job);
        }
    }

    fn reset(&self) {
        let mut state = self.state.lock();
        state.active = None;
        state.epoch = state.epoch.wrapping_add(1);
        state.in_flight = 0;
        state.broken = false;
    }
}

/// The host side: performs jobs in order, one at a time.
struct Worker {
    file: File,
    read_only: bool,
    id: [u8; VIRTIO_BLK_ID_BYTES],
    sink: Arc<dyn CompletionSink>,
}

impl Worker {
    fn run(self, jobs: Receiver<Job>) {
        // Ends when the device (the only sender) is dropped.
        for job in jobs {
            let completion = self.execute(job);
            self.sink.submit(completion);
        }
    }

    fn execute(&self, job: Job) -> Completion {
        let mut writes = Vec::new();
        let mut data_len = 0u64;
        let status = match job.operation {
            Operation::Read { offset, regions } => {
                let total: u64 = regions.iter().map(|&(_, len)| u64::from(len)).sum();
                // Bounded by MAX_REQUEST_BYTES at parse time.
                let mut buf = vec![0u8; total as usize];
                match self.file.read_exact_at(&mut buf, offset) {
                    Ok(()) => {
                        data_len = total;
                        writes = scatter(&regions, &buf);
                        VIRTIO_BLK_S_OK
                    }
                    Err(_) => VIRTIO_BLK_S_IOERR,
                }
            }
            Operation::Write { offset, data } => {
                if self.read_only {
                    VIRTIO_BLK_S_IOERR
                } else {
                    match self.file.write_all_at(&data, offset) {
                        Ok(()) => VIRTIO_BLK_S_OK,
                        Err(_) => VIRTIO_BLK_S_IOERR,
                    }
                }
            }
            Operation::Flush => {
                if self.read_only {
                    VIRTIO_BLK_S_OK
                } else {
                    match self.file.sync_data() {
                        Ok(()) => VIRTIO_BLK_S_OK,
                        Err(_) => VIRTIO_BLK_S_IOERR,
                    }
                }
            }
            Operation::GetId { regions } => {
                let room: u64 = regions.iter().map(|&(_, len)| u64::from(len)).sum();
                let n = (VIRTIO_BLK_ID_BYTES as u64).min(room) as usize;
                data_len = n as u64;
                writes = scatter(&regions, &self.id[..n]);
                VIRTIO_BLK_S_OK
            }
            Operation::Fail(status) => status,
        };
        Completion {
            epoch: job.epoch,
            queue: job.queue,
            head: job.head,
            writes,
            status_addr: job.status_addr,
            status,
            // At most MAX_REQUEST_BYTES + 1.
            used_len: u32::try_from(data_len + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Splits `data` over `regions`, in order, stopping when either runs out.
fn scatter(regions: &[(GuestPhysAddr, u32)], data: &[u8]) -> Vec<DmaWrite> {
    let mut writes = Vec::new();
    let mut rest = data;
    for &(addr, len) in regions {
        if rest.is_empty() {
            break;
        }
        let n = (len as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        writes.push(DmaWrite {
            addr,
            data: chunk.to_vec(),
        });
        rest = tail;
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::MmioDevice;
    use crate::devices::testing::{RecordingSink, VecMemory};
    use crate::devices::virtio::mmio::VirtioMmio;
    use crate::devices::virtio::queue::tests::{RAM, publish, used_elem, used_idx, write_desc};
    use crate::devices::virtio::queue::{VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
    use crate::devices::virtio::{VIRTIO_INT_CONFIG_CHANGE, VIRTIO_INT_USED_BUFFER, status};
    use crate::devices::{InterruptSink, IrqLine};
    use samsara_types::HartId;
    use std::io::Write;
    use std::time::{Duration, Instant};

    const H: HartId = HartId(0);
    const IRQ: u32 = 1;
    const QSIZE: u16 = 8;
    const HEADER: u64 = RAM + 0x1_0000;
    const DATA: u64 = RAM + 0x2_0000;
    const STATUS: u64 = RAM + 0x3_0000;
    const DISK_SECTORS: u64 = 64;

    /// Forwards completions to the test, which applies them when it wants.
    struct ChannelSink(crossbeam_channel::Sender<Completion>);
    impl CompletionSink for ChannelSink {
        fn submit(&self, completion: Completion) {
            let _ = self.0.send(completion);
        }
    }

    struct Rig {
        _disk: tempfile::NamedTempFile,
        disk_path: PathBuf,
        mem: Arc<VecMemory>,
        plic: Arc<RecordingSink>,
        blk: Arc<VirtioBlk>,
        slot: VirtioMmio,
        /// Set when completions go to the test instead of being applied.
        completions: Option<crossbeam_channel::Receiver<Completion>>,
        next_avail: u16,
    }

    fn disk_image() -> tempfile::NamedTempFile {
        let mut disk = tempfile::NamedTempFile::new().unwrap();
        let image: Vec<u8> = (0..DISK_SECTORS * SECTOR_SIZE)
            .map(|i| (i / SECTOR_SIZE) as u8)
            .collect();
        disk.write_all(&image).unwrap();
        disk
    }

    fn rig(read_only: bool, deferred: bool) -> Rig {
        let disk = disk_image();
        let disk_path = disk.path().to_owned();
        let mem = Arc::new(VecMemory::new(RAM, 0x10_0000));
        let mut config = BlkConfig::new(&disk_path);
        config.read_only = read_only;
        let (blk, completions) = if deferred {
            let (tx, rx) = crossbeam_channel::unbounded();
            let blk =
                VirtioBlk::with_sink(&config, mem.clone(), Arc::new(ChannelSink(tx))).unwrap();
            (blk, Some(rx))
        } else {
            (VirtioBlk::new(&config, mem.clone()).unwrap(), None)
        };
        let plic = Arc::new(RecordingSink::default());
        let slot = VirtioMmio::new(
            blk.clone(),
            IrqLine::new(plic.clone() as Arc<dyn InterruptSink>, IRQ),
        );
        Rig {
            _disk: disk,
            disk_path,
            mem,
            plic,
            blk,
            slot,
            completions,
            next_avail: 0,
        }
    }

    impl Rig {
        fn rd(&self, offset: u64) -> u32 {
            self.slot.read(H, offset, 4).unwrap() as u32
        }
        fn wr(&self, offset: u64, value: u32) {
            self.slot.write(H, offset, 4, u64::from(value)).unwrap();
        }

        /// The Linux driver's initialisation sequence.
        fn init(&self) {
            self.wr(0x70, 0);
            self.wr(0x70, status::ACKNOWLEDGE);
            self.wr(0x70, status::ACKNOWLEDGE | status::DRIVER);
            self.wr(0x14, 0);
            let low = self.rd(0x10);
            self.wr(0x14, 1);
            let high = self.rd(0x10);
            assert_eq!(high, 1, "VERSION_1 offered");
            self.wr(0x24, 0);
            self.wr(0x20, low);
            self.wr(0x24, 1);
            self.wr(0x20, high);
            let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
            self.wr(0x70, s);
            assert_eq!(self.rd(0x70) & status::FEATURES_OK, status::FEATURES_OK);
            self.wr(0x30, 0);
            assert_eq!(self.rd(0x34), u32::from(BLK_QUEUE_SIZE));
            self.wr(0x38, u32::from(QSIZE));
            self.wr(0x80, RAM as u32);
            self.wr(0x84, (RAM >> 32) as u32);
            self.wr(0x90, (RAM + 0x1000) as u32);
            self.wr(0x94, 0);
            self.wr(0xa0, (RAM + 0x2000) as u32);
            self.wr(0xa4, 0);
            self.wr(0x44, 1);
            self.wr(0x70, s | status::DRIVER_OK);
            assert_eq!(self.rd(0x70), s | status::DRIVER_OK);
        }

        fn header(&self, request_type: u32, sector: u64) {
            let mut h = Vec::new();
            h.extend_from_slice(&request_type.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
            h.extend_from_slice(&sector.to_le_bytes());
            self.mem.write(GuestPhysAddr(HEADER), &h).unwrap();
        }

        /// Submits header (desc 0) + optional data (desc 1) + status (desc 2).
        fn submit(&mut self, request_type: u32, sector: u64, data: Option<(u64, u32, bool)>) {
            self.header(request_type, sector);
            self.mem.write(GuestPhysAddr(STATUS), &[0xff]).unwrap();
            match data {
                Some((addr, len, writable)) => {
                    write_desc(&self.mem, 0, HEADER, 16, VIRTQ_DESC_F_NEXT, 1);
                    let flags = VIRTQ_DESC_F_NEXT | if writable { VIRTQ_DESC_F_WRITE } else { 0 };
                    write_desc(&self.mem, 1, addr, len, flags, 2);
                }
                None => write_desc(&self.mem, 0, HEADER, 16, VIRTQ_DESC_F_NEXT, 2),
            }
            write_desc(&self.mem, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
            self.notify_head(0);
        }

        fn notify_head(&mut self, head: u16) {
            publish(
                &self.mem,
                self.next_avail % QSIZE,
                head,
                self.next_avail.wrapping_add(1),
            );
            self.next_avail = self.next_avail.wrapping_add(1);
            self.wr(0x50, 0);
        }

        /// Waits for (immediate mode) or applies (deferred mode) `n` completions.
        fn complete(&self, n: u16) {
            if let Some(rx) = &self.completions {
                for _ in 0..n {
                    let c = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                    self.blk.apply_completion(c, self.mem.as_ref());
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while used_idx(&self.mem) != self.next_avail {
                assert!(Instant::now() < deadline, "completion timed out");
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        fn status_byte(&self) -> u8 {
            let mut b = [0];
            self.mem.read(GuestPhysAddr(STATUS), &mut b).unwrap();
            b[0]
        }

        fn needs_reset(&self) -> bool {
            self.rd(0x70) & status::NEEDS_RESET != 0
        }
    }

    #[test]
    fn write_read_flush_get_id_round_trip() {
        let mut rig = rig(false, false);
        rig.init();
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        rig.mem.write(GuestPhysAddr(DATA), &pattern).unwrap();
        rig.submit(VIRTIO_BLK_T_OUT, 2, Some((DATA, 1024, false)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);
        assert_eq!(used_elem(&rig.mem, 0), (0, 1));
        assert!(rig.plic.level(IRQ));
        assert_eq!(rig.rd(0x60), VIRTIO_INT_USED_BUFFER);
        rig.wr(0x64, VIRTIO_INT_USED_BUFFER);
        assert!(!rig.plic.level(IRQ));
        let on_disk = std::fs::read(&rig.disk_path).unwrap();
        assert_eq!(&on_disk[1024..2048], &pattern[..]);

        rig.submit(VIRTIO_BLK_T_IN, 2, Some((DATA + 0x1000, 1024, true)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);
        assert_eq!(used_elem(&rig.mem, 1), (0, 1025));
        let mut back = vec![0; 1024];
        rig.mem
            .read(GuestPhysAddr(DATA + 0x1000), &mut back)
            .unwrap();
        assert_eq!(back, pattern);

        rig.submit(VIRTIO_BLK_T_FLUSH, 0, None);
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);

        rig.submit(VIRTIO_BLK_T_GET_ID, 0, Some((DATA + 0x2000, 20, true)));
        rig.complete(1);
        let mut id = [0u8; 20];
        rig.mem.read(GuestPhysAddr(DATA + 0x2000), &mut id).unwrap();
        assert_eq!(&id[..11], b"samsara-blk");
        assert_eq!(used_elem(&rig.mem, 3), (0, 21));
        assert!(!rig.needs_reset());
    }

    #[test]
    fn deferred_completions_apply_only_when_told() {
        let mut rig = rig(false, true);
        rig.init();
        rig.submit(VIRTIO_BLK_T_IN, 5, Some((DATA, 512, true)));
        let rx = rig.completions.take().unwrap();
        let c = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // Nothing reached the guest yet.
        assert_eq!(used_idx(&rig.mem), 0);
        assert_eq!(rig.status_byte(), 0xff);
        assert!(!rig.plic.level(IRQ));
        assert_eq!(c.head, 0);
        assert_eq!(c.status, VIRTIO_BLK_S_OK);
        assert_eq!(c.used_len, 513);
        assert_eq!(c.status_addr, GuestPhysAddr(STATUS));
        assert_eq!(
            c.writes,
            vec![DmaWrite {
                addr: GuestPhysAddr(DATA),
                data: vec![5; 512]
            }]
        );
        // Applying is what makes it visible; the same completion is plain data.
        rig.blk.apply_completion(c.clone(), rig.mem.as_ref());
        assert_eq!(used_idx(&rig.mem), 1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);
        assert!(rig.plic.level(IRQ));

        // A completion from before a reset is dropped.
        rig.submit(VIRTIO_BLK_T_IN, 6, Some((DATA, 512, true)));
        let stale = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        rig.init();
        rig.next_avail = 0;
        rig.blk.apply_completion(stale, rig.mem.as_ref());
        assert!(!rig.plic.level(IRQ));
        assert_eq!(rig.rd(0x60), 0);
    }

    #[test]
    fn request_errors_complete_with_status() {
        let mut rig = rig(false, false);
        rig.init();
        // Past the end of the disk.
        rig.submit(VIRTIO_BLK_T_IN, DISK_SECTORS - 1, Some((DATA, 1024, true)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_IOERR);
        // Not a whole number of sectors.
        rig.submit(VIRTIO_BLK_T_IN, 0, Some((DATA, 100, true)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_IOERR);
        // Sector arithmetic overflow.
        rig.submit(VIRTIO_BLK_T_OUT, u64::MAX, Some((DATA, 512, false)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_IOERR);
        // Unknown type.
        rig.submit(99, 0, None);
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_UNSUPP);
        // Absurd length: refused before anything is allocated or read.
        rig.submit(VIRTIO_BLK_T_OUT, 0, Some((DATA, u32::MAX, false)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_IOERR);
        assert!(!rig.needs_reset());
    }

    #[test]
    fn read_only_disk() {
        let mut rig = rig(true, false);
        assert_ne!(rig.blk.device_features() & VIRTIO_BLK_F_RO, 0);
        rig.init();
        let before = std::fs::read(&rig.disk_path).unwrap();
        rig.submit(VIRTIO_BLK_T_OUT, 0, Some((DATA, 512, false)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_IOERR);
        assert_eq!(std::fs::read(&rig.disk_path).unwrap(), before);
        rig.submit(VIRTIO_BLK_T_IN, 3, Some((DATA, 512, true)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);
    }

    fn assert_broken_then_recovers(mut rig: Rig) {
        assert!(rig.needs_reset());
        assert_ne!(rig.rd(0x60) & VIRTIO_INT_CONFIG_CHANGE, 0);
        assert!(rig.plic.level(IRQ));
        // Reset clears it and the device works again.
        rig.init();
        rig.next_avail = 0;
        assert!(!rig.needs_reset());
        assert!(!rig.plic.level(IRQ));
        rig.submit(VIRTIO_BLK_T_IN, 1, Some((DATA, 512, true)));
        rig.complete(1);
        assert_eq!(rig.status_byte(), VIRTIO_BLK_S_OK);
    }

    #[test]
    fn looping_chain_needs_reset() {
        let mut rig = rig(false, false);
        rig.init();
        write_desc(&rig.mem, 0, HEADER, 16, VIRTQ_DESC_F_NEXT, 1);
        write_desc(&rig.mem, 1, DATA, 512, VIRTQ_DESC_F_NEXT, 0);
        rig.notify_head(0);
        assert_broken_then_recovers(rig);
    }

    #[test]
    fn data_outside_ram_needs_reset() {
        let mut rig = rig(false, false);
        rig.init();
        rig.submit(VIRTIO_BLK_T_OUT, 0, Some((0x4000_0000, 512, false)));
        assert_broken_then_recovers(rig);
    }

    #[test]
    fn bad_head_and_missing_status_need_reset() {
        let mut rig = rig(false, false);
        rig.init();
        rig.notify_head(QSIZE + 3);
        assert_broken_then_recovers(rig);

        let mut rig = self::rig(false, false);
        rig.init();
        rig.header(VIRTIO_BLK_T_FLUSH, 0);
        write_desc(&rig.mem, 0, HEADER, 16, 0, 0);
        rig.notify_head(0);
        assert_broken_then_recovers(rig);
    }

    #[test]
    fn in_buffer_outside_ram_needs_reset_at_apply() {
        let mut rig = rig(false, false);
        rig.init();
        rig.submit(VIRTIO_BLK_T_IN, 0, Some((0x4000_0000, 512, true)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rig.needs_reset() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(used_idx(&rig.mem), 0);
        assert_broken_then_recovers(rig);
    }

    #[test]
    fn transport_registers_and_config() {
        let rig = rig(false, false);
        assert_eq!(rig.rd(0x0), 0x7472_6976);
        assert_eq!(rig.rd(0x4), 2);
        assert_eq!(rig.rd(0x8), VIRTIO_ID_BLOCK);
        assert_eq!(rig.rd(0xc), 0x554D_4551);
        // Capacity, as one 8-byte and as two 4-byte reads.
        assert_eq!(rig.slot.read(H, 0x100, 8), Ok(DISK_SECTORS));
        assert_eq!(rig.slot.read(H, 0x100, 4), Ok(DISK_SECTORS));
        assert_eq!(rig.slot.read(H, 0x104, 4), Ok(0));
        assert_eq!(rig.slot.read(H, 0x114, 4), Ok(512));
        assert_eq!(
            rig.slot.read(H, 0x10c, 4),
            Ok(u64::from(BLK_QUEUE_SIZE) - 2)
        );
        assert_eq!(rig.slot.read(H, 0x800, 1), Ok(0));
        // Registers are 32-bit only.
        assert!(rig.slot.read(H, 0x70, 1).is_err());
        assert!(rig.slot.write(H, 0x70, 8, 0).is_err());
        assert!(rig.slot.read(H, 0xffe, 4).is_err());
        assert!(rig.slot.read(H, 0x1000, 4).is_err());
        assert!(rig.slot.read(H, 0xffc, 8).is_err());
    }

    #[test]
    fn features_ok_requires_version_1_and_offered_bits() {
        let rig = rig(false, false);
        rig.wr(0x70, status::ACKNOWLEDGE | status::DRIVER);
        rig.wr(0x24, 0);
        rig.wr(0x20, VIRTIO_BLK_F_FLUSH as u32);
        rig.wr(
            0x70,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        assert_eq!(rig.rd(0x70) & status::FEATURES_OK, 0);
        rig.wr(0x70, 0);
        rig.wr(0x70, status::ACKNOWLEDGE | status::DRIVER);
        rig.wr(0x24, 1);
        rig.wr(0x20, 1 | 0x8000);
        rig.wr(
            0x70,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        assert_eq!(rig.rd(0x70) & status::FEATURES_OK, 0);
    }

    #[test]
    fn driver_ok_without_ready_queue_needs_reset() {
        let rig = rig(false, false);
        rig.wr(0x70, status::ACKNOWLEDGE | status::DRIVER);
        rig.wr(0x24, 1);
        rig.wr(0x20, 1);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        rig.wr(0x70, s);
        rig.wr(0x70, s | status::DRIVER_OK);
        assert!(rig.needs_reset());
    }

    #[test]
    fn empty_slot_answers_probe() {
        let slot = VirtioMmio::empty();
        assert_eq!(slot.read(H, 0x0, 4), Ok(0x7472_6976));
        assert_eq!(slot.read(H, 0x4, 4), Ok(2));
        assert_eq!(slot.read(H, 0x8, 4), Ok(0));
        assert_eq!(slot.read(H, 0xc, 4), Ok(0x554D_4551));
        assert_eq!(slot.read(H, 0x70, 4), Ok(0));
        slot.write(H, 0x70, 4, 0xf).unwrap();
        slot.write(H, 0x50, 4, 0).unwrap();
        assert_eq!(slot.read(H, 0x100, 4), Ok(0));
    }

    #[test]
    fn missing_image_is_an_error() {
        let mem = Arc::new(VecMemory::new(RAM, 0x1000));
        let err = VirtioBlk::new(&BlkConfig::new("/nonexistent/disk.img"), mem).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/disk.img"));
    }
}
