//! The disk while recording: DMA completions sequenced into the global
//! order (chunk and serial strategies), and the private copy of the user's
//! image the guest writes to.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use samsara_machine::devices::virtio::block::{Completion, CompletionSink, VirtioBlk};
use samsara_machine::devices::{DmaError, GuestMemory};
use samsara_machine::ram::GuestRam;
use samsara_trace::{DmaRecord, Entry, TraceFile};
use samsara_types::{GuestPhysAddr, PAGE_SHIFT};

use super::chunk::ChunkRecorder;
use crate::EngineError;

/// The recorder's virtio completion sink (Samsara's DMA recorder): each
/// completion takes a sequence number like a chunk, is applied once every
/// earlier entry has written back, and publishes the pages it wrote, so
/// chunks that touched them meanwhile are squashed. Its bytes go to the log.
pub(crate) struct DmaSequencer {
    pub(crate) recorder: Arc<ChunkRecorder>,
    pub(crate) target: OnceLock<(Weak<VirtioBlk>, Arc<GuestRam>)>,
    /// Set by `close`: no completion reaches RAM or the log after it.
    closed: AtomicBool,
}

impl DmaSequencer {
    pub(crate) fn new(recorder: Arc<ChunkRecorder>) -> Self {
        Self {
            recorder,
            target: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Stops taking completions, and returns once none is being applied:
    /// the recording's final RAM digest and log follow, and the disk's
    /// worker thread outlives the harts.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.recorder.wm.abort();
        // A completion being applied holds the commit lock throughout.
        drop(self.recorder.commit.lock());
    }
}

impl CompletionSink for DmaSequencer {
    fn submit(&self, completion: Completion) {
        let rec = &*self.recorder;
        let Some((device, ram)) = self.target.get() else {
            return;
        };
        let Some(device) = device.upgrade() else {
            return;
        };
        if rec.halt.load(Ordering::Acquire) {
            return;
        }
        let _shared = rec.gate.read();
        let mut state = rec.commit.lock();
        // After `close`, or aborted while waiting: the guest never sees it.
        if !rec.wm.wait_for(state.log.next_seq() - 1) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let seq = state.log.sequence_dma();
        let memory = CapturingMemory::writing(ram.clone());
        device.apply_completion(completion, &memory);
        let writes = memory.writes.into_inner();
        let mut pages: Vec<u32> = Vec::new();
        let base = ram.base().page();
        for (addr, data) in &writes {
            let first = (addr >> PAGE_SHIFT) - base;
            let last = ((addr + data.len().max(1) as u64 - 1) >> PAGE_SHIFT) - base;
            pages.extend((first..=last).map(|p| p as u32));
        }
        pages.sort_unstable();
        pages.dedup();
        rec.code.written(pages.iter().map(|&p| p as usize));
        rec.publish(&mut state, seq, pages);
        rec.dma.fetch_add(1, Ordering::Relaxed);
        rec.append(&mut state, Entry::Dma(DmaRecord { writes }));
        rec.wm.retire(seq);
        rec.published_writes();
    }
}

/// Guest memory for a DMA completion: its writes are kept (for the log, or
/// to compare with it) and go to RAM or, on a standby, which takes RAM
/// from the log, nowhere. Either way a write outside RAM fails.
pub(crate) struct CapturingMemory {
    ram: Arc<GuestRam>,
    write_through: bool,
    pub(crate) writes: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl CapturingMemory {
    /// Writes reach RAM (a recording).
    pub(crate) fn writing(ram: Arc<GuestRam>) -> Self {
        Self {
            ram,
            write_through: true,
            writes: Mutex::new(Vec::new()),
        }
    }

    /// Writes are only kept (a standby's check of its own completion).
    pub(crate) fn observing(ram: Arc<GuestRam>) -> Self {
        Self {
            write_through: false,
            ..Self::writing(ram)
        }
    }
}

impl GuestMemory for CapturingMemory {
    fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        GuestMemory::read(&*self.ram, addr, buf)
    }

    fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), DmaError> {
        if self.write_through {
            GuestMemory::write(&*self.ram, addr, data)?;
        } else {
            // Outside RAM fails as it did on the primary (whose device
            // then needed a reset and logged no write).
            GuestMemory::read(&*self.ram, addr, &mut vec![0u8; data.len()])?;
        }
        self.writes.lock().push((addr.raw(), data.to_vec()));
        Ok(())
    }
}

/// A private copy of the user's disk image: the guest may write its disk,
/// but recording never modifies the user's file. Removed when dropped.
pub(crate) struct ScratchDisk {
    pub(crate) path: PathBuf,
}

impl ScratchDisk {
    /// Size and BLAKE3 of the copy (the disk as the recording starts),
    /// under the user's path.
    pub(crate) fn describe(&self, disk: &Path) -> Result<TraceFile, EngineError> {
        let failed = |source| EngineError::Disk {
            path: disk.display().to_string(),
            what: format!("cannot hash the private copy at {}", self.path.display()),
            source,
        };
        let mut hasher = blake3::Hasher::new();
        let len = std::io::copy(
            &mut std::fs::File::open(&self.path).map_err(failed)?,
            &mut hasher,
        )
        .map_err(failed)?;
        Ok(TraceFile {
            path: disk.display().to_string(),
            len,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }

    pub(crate) fn new(disk: &Path, trace: &Path) -> Result<Self, EngineError> {
        let mut name = trace.as_os_str().to_owned();
        name.push(".disk-scratch");
        let path = PathBuf::from(name);
        std::fs::copy(disk, &path).map_err(|source| EngineError::Disk {
            path: disk.display().to_string(),
            what: format!("cannot make a private copy at {}", path.display()),
            source,
        })?;
        Ok(Self { path })
    }
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
