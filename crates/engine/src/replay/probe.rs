//! Probes: what analyses see of a replay running at full speed, harts in
//! parallel (`docs/analysis.md`).
//!
//! An [`Observer`](super::Observer) is shown a replay on one thread, step by
//! step if it asks. A probe instead rides along the parallel replay: each
//! hart's bus notes, during an entry, the data accesses to probed pages
//! (through the TLB's slow path, for those pages only), the fences, and the
//! hart's switches into and out of user mode; when the entry finishes its
//! findings go to a hub which hands them, with the entry itself, to one
//! consumer in the recording's global order. Entries of the chunk strategy
//! are serializable in that order, so the consumer sees exactly the
//! sequential execution the recording stands for.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use samsara_cpu::Privilege;
use samsara_cpu::bus::{AccessKind, Atomicity, DataAccess};
use samsara_trace::Entry;

/// Which data accesses the harts show.
#[derive(Clone, Debug, Default)]
pub enum AccessProbe {
    /// None.
    #[default]
    None,
    /// Those touching these ranges.
    Ranges(Vec<ProbeRange>),
    /// Every data access to RAM (every data page takes the slow path).
    All,
}

/// Bytes probed: virtual addresses as the accessing hart translates them,
/// or physical ones whatever virtual address reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRange {
    /// First byte.
    pub start: u64,
    /// Bytes (at least 1).
    pub len: u64,
    /// `start` is guest-physical.
    pub physical: bool,
}

impl ProbeRange {
    /// Whether `[addr, addr + len)` overlaps the range.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        self.start < addr.saturating_add(len) && addr < self.start.saturating_add(self.len)
    }

    fn on_page(&self, vaddr: u64, paddr: u64) -> bool {
        let addr = if self.physical { paddr } else { vaddr };
        self.overlaps(addr & !0xfff, 4096)
    }

    /// Whether an access of `len` bytes at `vaddr` (mapping to `paddr`)
    /// touches the range.
    pub fn covers(&self, vaddr: u64, paddr: u64, len: u64) -> bool {
        self.overlaps(if self.physical { paddr } else { vaddr }, len)
    }
}

/// Reads guest memory as a hart sees it at a probe point.
pub trait GuestView {
    /// Reads virtual memory through the hart's translation (whatever its
    /// privilege); returns the bytes read (short at an unmapped page).
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> usize;
}

/// Called at every switch into or out of user mode, on the replaying
/// thread, with the hart's view of memory at that moment: what it returns
/// is kept as the switch's `memory` (e.g. a system call's buffer).
pub type SwitchReader = Arc<dyn Fn(&UserSwitch, &dyn GuestView) -> Vec<u8> + Send + Sync>;

/// What a probe watches.
#[derive(Clone, Default)]
pub struct ProbeConfig {
    /// Data accesses shown.
    pub accesses: AccessProbe,
    /// Show loads too (a page probed for stores only stays in the
    /// harts' read TLBs).
    pub loads: bool,
    /// Read the bytes accessed: before (`old`) and after (`new`).
    pub values: bool,
    /// Show fences.
    pub fences: bool,
    /// Show switches into and out of user mode, reading memory with this.
    pub user_switches: Option<SwitchReader>,
}

impl ProbeConfig {
    /// Whether the harts must run in the interpreter: the block
    /// translator's fences are not shown to the bus (its accesses to
    /// probed pages are: it leaves them to the interpreter).
    pub(crate) fn needs_interpreter(&self) -> bool {
        self.fences
    }
}

/// A data access to probed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessSeen {
    /// The accessing instruction is this step of its entry.
    pub step: u64,
    /// Its address.
    pub pc: u64,
    /// The privilege of the access.
    pub privilege: Privilege,
    /// First byte, virtual and physical.
    pub vaddr: u64,
    /// ...
    pub paddr: u64,
    /// Bytes (1 to 8).
    pub len: u8,
    /// `Read` or `Write` (an AMO is one `Write`).
    pub kind: AccessKind,
    /// Plain or atomic.
    pub atomic: Atomicity,
    /// The bytes before the access (little-endian; with `values`).
    pub old: u64,
    /// The bytes after it (a read: as before).
    pub new: u64,
}

/// A fence the hart executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceSeen {
    /// Step of the entry.
    pub step: u64,
    /// Predecessor set (I=8, O=4, R=2, W=1).
    pub pred: u8,
    /// Successor set.
    pub succ: u8,
}

/// A switch into or out of user mode: the hart stands at the first
/// instruction in the new mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSwitch {
    /// Steps of the entry done (the switching instruction is `step - 1`).
    pub step: u64,
    /// Into user mode (`sret`/`mret`), or out of it (a trap).
    pub to_user: bool,
    /// Where the hart is now.
    pub pc: u64,
    /// Out of user mode: `scause` (or `mcause` for a trap taken in M-mode).
    pub cause: u64,
    /// Out of user mode: the trapping instruction's address.
    pub epc: u64,
    /// a0..a7.
    pub a: [u64; 8],
    /// `sscratch`: what the kernel keeps there for user mode (Linux: the
    /// task's `task_struct`).
    pub scratch: u64,
    /// What the [`SwitchReader`] read.
    pub memory: Vec<u8>,
}

/// What a hart noted during an entry, in program order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A data access.
    Access(AccessSeen),
    /// A fence.
    Fence(FenceSeen),
    /// A user-mode switch (boxed: accesses, by far the most frequent,
    /// stay small).
    Switch(Box<UserSwitch>),
}

impl Finding {
    fn step_mut(&mut self) -> &mut u64 {
        match self {
            Finding::Access(a) => &mut a.step,
            Finding::Fence(f) => &mut f.step,
            Finding::Switch(s) => &mut s.step,
        }
    }
}

/// Sees every entry, in the recording's order, with what the probe found
/// in it (nothing for DMA).
pub type ProbeConsumer = Box<dyn FnMut(u64, &Entry, &[Finding]) + Send>;

/// Puts entries (from the trace reader) and findings (from the harts,
/// finished in any order) together and hands them on in order.
pub(crate) struct ProbeHub {
    state: Mutex<HubState>,
    /// Emptied findings vectors, for the harts to fill again (an entry
    /// may hold thousands of accesses: growing a new vector for each
    /// cost more than the analysis).
    spare: Mutex<Vec<Vec<Finding>>>,
}

/// Spare vectors kept at most.
const SPARE_VECTORS: usize = 16;

struct HubState {
    next: u64,
    waiting: BTreeMap<u64, (Option<Entry>, Option<Vec<Finding>>)>,
    consumer: ProbeConsumer,
    /// Findings vectors the consumer is done with.
    emptied: Vec<Vec<Finding>>,
}

impl ProbeHub {
    pub fn new(first_seq: u64, consumer: ProbeConsumer) -> Self {
        Self {
            state: Mutex::new(HubState {
                next: first_seq,
                waiting: BTreeMap::new(),
                consumer,
                emptied: Vec::new(),
            }),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// An empty vector to fill with findings.
    pub fn vector(&self) -> Vec<Finding> {
        self.spare.lock().pop().unwrap_or_default()
    }

    fn recycle(&self, emptied: &mut Vec<Vec<Finding>>) {
        if emptied.is_empty() {
            return;
        }
        let mut spare = self.spare.lock();
        for v in emptied.drain(..) {
            if spare.len() < SPARE_VECTORS {
                spare.push(v);
            }
        }
    }

    /// Entry `seq` was read.
    pub fn entry(&self, seq: u64, entry: &Entry) {
        let mut state = self.state.lock();
        if seq < state.next {
            return;
        }
        state.waiting.entry(seq).or_default().0 = Some(entry.clone());
        state.drain();
        self.recycle(&mut state.emptied);
    }

    /// Chunk `seq` finished with `findings` (steps relative to the entry).
    pub fn findings(&self, seq: u64, findings: Vec<Finding>) {
        let mut state = self.state.lock();
        if seq < state.next {
            return;
        }
        state.waiting.entry(seq).or_default().1 = Some(findings);
        state.drain();
        self.recycle(&mut state.emptied);
    }
}

impl HubState {
    fn drain(&mut self) {
        loop {
            let next = self.next;
            // A chunk waits for its findings too; DMA has none.
            let ready = matches!(
                self.waiting.get(&next),
                Some((Some(Entry::Dma(_)), _)) | Some((Some(_), Some(_)))
            );
            if !ready {
                return;
            }
            let (entry, findings) = self.waiting.remove(&next).expect("ready");
            let entry = entry.expect("ready");
            (self.consumer)(next, &entry, findings.as_deref().unwrap_or(&[]));
            if let Some(mut v) = findings {
                v.clear();
                self.emptied.push(v);
            }
            self.next += 1;
        }
    }
}

/// A hart bus's part of a probe.
pub(crate) struct BusProbe {
    pub config: ProbeConfig,
    pub hub: Arc<ProbeHub>,
    /// This entry's findings, steps absolute (the hart's).
    pub found: Vec<Finding>,
    /// Indices in `found` of writes whose `new` value is still to read.
    pub unsettled: Vec<usize>,
}

impl BusProbe {
    pub fn new(config: ProbeConfig, hub: Arc<ProbeHub>) -> Self {
        Self {
            config,
            hub,
            found: Vec::new(),
            unsettled: Vec::new(),
        }
    }

    pub fn accesses(&self) -> bool {
        !matches!(self.config.accesses, AccessProbe::None)
    }

    pub fn page_probed(&self, vaddr: u64, paddr: u64, kind: AccessKind) -> bool {
        if kind == AccessKind::Read && !self.config.loads {
            return false;
        }
        match &self.config.accesses {
            AccessProbe::None => false,
            AccessProbe::All => true,
            AccessProbe::Ranges(ranges) => ranges.iter().any(|r| r.on_page(vaddr, paddr)),
        }
    }

    /// Whether `a` is one to note (an AMO's second showing, as a read, is
    /// not: it was noted as its write).
    pub fn catches(&self, a: &DataAccess) -> bool {
        if a.atomic == Atomicity::Amo && a.kind == AccessKind::Read {
            return false;
        }
        match &self.config.accesses {
            AccessProbe::None => false,
            AccessProbe::All => true,
            AccessProbe::Ranges(ranges) => ranges
                .iter()
                .any(|r| r.covers(a.vaddr.raw(), a.paddr.raw(), a.len)),
        }
    }

    /// Notes `a`, whose bytes were `old` before it.
    pub fn note(&mut self, a: &DataAccess, old: u64) {
        if a.kind == AccessKind::Write && self.config.values {
            self.unsettled.push(self.found.len());
        }
        self.found.push(Finding::Access(AccessSeen {
            step: a.steps,
            pc: a.pc.raw(),
            privilege: a.privilege,
            vaddr: a.vaddr.raw(),
            paddr: a.paddr.raw(),
            len: a.len as u8,
            kind: a.kind,
            atomic: a.atomic,
            old,
            new: old,
        }));
    }

    /// The instruction at `step` did not complete: its notes go.
    pub fn undo(&mut self, step: u64) {
        while let Some(Finding::Access(a)) = self.found.last() {
            if a.step != step {
                break;
            }
            self.found.pop();
        }
        let len = self.found.len();
        self.unsettled.retain(|&i| i < len);
    }

    /// Whether writes noted before `step` still wait for their new value.
    pub fn unsettled_before(&self, step: u64) -> bool {
        self.unsettled
            .first()
            .is_some_and(|&i| matches!(&self.found[i], Finding::Access(a) if a.step < step))
    }

    /// Fills in the new values of the writes noted so far with `read`.
    pub fn settle(&mut self, mut read: impl FnMut(u64, u8) -> u64) {
        for i in self.unsettled.drain(..) {
            if let Finding::Access(a) = &mut self.found[i] {
                a.new = read(a.paddr, a.len);
            }
        }
    }

    /// The entry that started at step `start_steps` finished as `seq`:
    /// its findings go to the hub.
    pub fn deliver(&mut self, seq: u64, start_steps: u64) {
        let mut found = std::mem::replace(&mut self.found, self.hub.vector());
        self.unsettled.clear();
        for f in &mut found {
            let step = f.step_mut();
            *step = step.saturating_sub(start_steps);
        }
        self.hub.findings(seq, found);
    }
}
