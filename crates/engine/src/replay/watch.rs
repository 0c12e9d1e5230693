//! Watchpoints on a replay: virtual byte ranges whose data accesses stop
//! [`ReplaySession::run`](super::ReplaySession::run) before the accessing
//! instruction executes (`docs/time-travel.md`, "Watchpoints").

use samsara_cpu::bus::{AccessKind, FetchBreakpoint};
use samsara_types::{GuestPhysAddr, GuestVirtAddr};

use super::Position;

/// Which accesses a [`Watch`] catches; a [`WatchHit`]'s kind is `Read` or
/// `Write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Stores, AMOs and SC (gdb's `watch`).
    Write,
    /// Loads, LR and AMOs (gdb's `rwatch`).
    Read,
    /// Both (gdb's `awatch`).
    Access,
}

impl WatchKind {
    /// Whether a data access of `kind` (`Read` or `Write`) is caught.
    fn catches(self, kind: WatchKind) -> bool {
        self == WatchKind::Access || self == kind
    }
}

/// `len` bytes at virtual address `addr` (as each hart's `satp` maps it;
/// under Bare the physical address), watched for `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watch {
    /// First watched byte.
    pub addr: GuestVirtAddr,
    /// Bytes watched (0: none).
    pub len: u64,
    /// The accesses caught.
    pub kind: WatchKind,
}

impl Watch {
    /// Whether `[addr, addr + len)` overlaps the watched bytes.
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        let start = self.addr.raw();
        self.len > 0
            && len > 0
            && start < addr.saturating_add(len)
            && addr < start.saturating_add(self.len)
    }

    /// Whether virtual page `page` (a page number) holds watched bytes.
    fn on_page(&self, page: u64) -> bool {
        self.overlaps(page << 12, 4096)
    }
}

/// A data access that a [`Watch`] caught: [`ReplaySession::run`]
/// (super::ReplaySession::run) returned `Stop::Watch` with hart `hart`
/// stopped *before* the accessing instruction (its `pc` at it), which has
/// not executed. The next `run` executes it without reporting it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHit {
    /// Where the replay stands: the accessing instruction is step `at.step`
    /// of entry `at.seq` (the steps before it are done).
    pub at: Position,
    /// The hart (index) about to access.
    pub hart: usize,
    /// The access: its first byte (in the page reported; a page-crossing
    /// access is reported by the piece that was caught) ...
    pub addr: GuestVirtAddr,
    /// ... its length in bytes ...
    pub len: u64,
    /// ... and where `addr` maps.
    pub paddr: GuestPhysAddr,
    /// `Read` or `Write` (an AMO caught by a write or access watch is a
    /// `Write`, by a read watch a `Read`).
    pub kind: WatchKind,
    /// Index of the watch that caught it in the list given to `set_watches`.
    pub watch: usize,
}

/// What a hart's bus keeps of the watches.
#[derive(Clone, Debug, Default)]
pub(crate) struct WatchSet {
    watches: Vec<Watch>,
    /// Checks off: the hart re-executes the instruction of a hit.
    pub suppressed: bool,
    /// The last hit: (access address, length, physical address, kind, watch).
    pub hit: Option<(GuestVirtAddr, u64, GuestPhysAddr, WatchKind, usize)>,
}

impl WatchSet {
    pub fn set(&mut self, watches: &[Watch]) {
        self.watches.clear();
        self.watches.extend_from_slice(watches);
        self.hit = None;
    }

    #[inline]
    pub fn any(&self) -> bool {
        !self.watches.is_empty()
    }

    pub fn page_watched(&self, vaddr: GuestVirtAddr) -> bool {
        let page = vaddr.raw() >> 12;
        self.watches.iter().any(|w| w.on_page(page))
    }

    /// Notes the first watch catching this access; `true` if one does.
    pub fn check(
        &mut self,
        vaddr: GuestVirtAddr,
        paddr: GuestPhysAddr,
        len: u64,
        kind: AccessKind,
    ) -> bool {
        if self.suppressed {
            return false;
        }
        let kind = match kind {
            AccessKind::Read => WatchKind::Read,
            AccessKind::Write => WatchKind::Write,
            AccessKind::Execute => return false,
        };
        let Some(index) = self
            .watches
            .iter()
            .position(|w| w.kind.catches(kind) && w.overlaps(vaddr.raw(), len))
        else {
            return false;
        };
        self.hit = Some((vaddr, len, paddr, kind, index));
        true
    }
}

/// A breakpoint hit: [`ReplaySession::run`](super::ReplaySession::run)
/// returned `Stop::Breakpoint` with hart `hart` about to execute the
/// instruction at `pc`, the `at.step`-th of entry `at.seq`, which has not
/// executed. The next `run` executes it without reporting it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakpointHit {
    /// Where the replay stands.
    pub at: Position,
    /// The hart (index).
    pub hart: usize,
    /// The instruction's (virtual) address.
    pub pc: GuestVirtAddr,
}

/// What a hart's bus keeps of the breakpoints.
#[derive(Clone, Debug, Default)]
pub(crate) struct BreakpointSet {
    /// Virtual addresses, sorted.
    pcs: Vec<u64>,
    /// Execute the instruction at this address once more without stopping
    /// (the hart resumes from a stop there).
    pub pass: Option<u64>,
    /// Checks off (the attempt an entry ended at is redone, not executed).
    pub off: bool,
}

impl BreakpointSet {
    pub fn set(&mut self, pcs: &[u64]) {
        self.pcs = pcs.to_vec();
        self.pcs.sort_unstable();
        self.pcs.dedup();
        self.pass = None;
    }

    pub fn any(&self) -> bool {
        !self.pcs.is_empty()
    }

    #[inline]
    pub fn check(&self, pc: GuestVirtAddr) -> FetchBreakpoint {
        if self.pcs.is_empty() || self.pcs.binary_search(&pc.raw()).is_err() {
            FetchBreakpoint::None
        } else if self.off || self.pass == Some(pc.raw()) {
            FetchBreakpoint::Pass
        } else {
            FetchBreakpoint::Stop
        }
    }
}
