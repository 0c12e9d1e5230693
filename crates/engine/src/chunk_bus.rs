//! The bus a hart sees inside a chunk, in record and in replay: RAM through
//! the second-level table (copy-on-write, A/D bits), devices only in a
//! device-access slot, time and interrupt lines from the log's point of view.

use std::sync::Arc;

use samsara_cpu::bus::{AccessKind, Bus, DataAccess, FetchBreakpoint, MmioError, PageGrant};
use samsara_machine::board::Board;
use samsara_trace::{Event, Strategy};
use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr, HartId};

use crate::code_watch::CodeWatch;
use crate::replay::Divergence;
use crate::replay::probe::{FenceSeen, Finding};
use crate::replay::watch::{BreakpointSet, WatchSet};
use crate::table::{AdTable, ChunkSets};

/// Where non-deterministic inputs come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Live: host clock, live devices; every input is appended to `events`.
    Record,
    /// From the trace: inputs are taken from `events` in order.
    Replay,
}

/// One hart's chunk view of the machine.
pub(crate) struct ChunkBus<'a> {
    board: Board,
    hart: HartId,
    mode: Mode,
    first_ram_page: u64,
    htif_page: Option<u64>,
    /// The second-level table and private pages.
    pub table: AdTable,
    /// Device interrupt lines as this chunk sees them (latched at its start).
    pub lines: u64,
    /// Device accesses go through (a device-access slot) instead of deferring.
    pub mmio_allowed: bool,
    /// Re-read the interrupt lines after every device access (serial
    /// strategy: accesses happen inside chunks and may change the lines).
    relatch_after_mmio: bool,
    /// Inputs consumed (record) or to consume (replay), in order.
    pub events: Vec<Event>,
    /// Replay: next event to consume.
    pub next_event: usize,
    /// Record, serial strategy: where in `events` each device access since
    /// the last `LinesUpdate` ended that changed no line (see `relatch`).
    /// Cleared with `events` at the start of every chunk.
    pub quiet_accesses: Vec<usize>,
    /// Replay: the first input the hart asked for that the trace did not have.
    pub divergence: Option<Divergence>,
    /// Replay with an observer of pages: note every page granted.
    pub report_pages: bool,
    /// The pages granted since the observer last looked (`report_pages`).
    pub touched: Vec<(u64, AccessKind)>,
    /// CREW recording: the page ownership every RAM access is checked against.
    pub crew: Option<&'a crate::record::Ownership>,
    /// CREW recording: the RAM page (index) and access (write?) the last
    /// `ram_page` call refused; the instruction was deferred.
    pub crew_pending: Option<(usize, bool)>,
    /// CREW replay: the page (index) to refuse, for writes only (`true`) or
    /// for any access, while the hart repeats an attempt the recording
    /// refused (see `Event::Refused`).
    pub refuse: Option<(usize, bool)>,
    /// CREW recording with `--check-every`: RAM pages (indices) granted for
    /// writing since the last check (with repeats; `None`: not tracked).
    pub crew_written: Option<Vec<u32>>,
    /// Give the host CPU away at every `pause` (CREW record and replay).
    yield_on_pause: bool,
    /// Replay under a debugger: the watched virtual ranges (empty: none,
    /// and the hart's hooks cost one test on a TLB miss).
    pub watches: WatchSet,
    /// Replay under a debugger: breakpoints (virtual pcs), checked when an
    /// instruction is decoded (those at a breakpoint are never cached).
    pub breakpoints: BreakpointSet,
    /// Pages fetched from and writes to them, shared by all harts (see
    /// `CodeWatch`; `None` under CREW).
    pub code: Option<Arc<CodeWatch>>,
    /// Replay with live devices (a standby): device loads are done too,
    /// for their side effects, and compared where the device can know
    /// the answer; recorded times reach the clock.
    pub live_devices: bool,
    /// Replay under an analysis: what the hart shows it (`replay::probe`).
    pub probe: Option<Box<crate::replay::probe::BusProbe>>,
}

impl<'a> ChunkBus<'a> {
    /// Hart `hart`'s bus for `strategy`'s entries, in `mode`: the one place
    /// where a strategy decides how the bus behaves.
    pub(crate) fn new(board: Board, hart: HartId, mode: Mode, strategy: Strategy) -> Self {
        let pages = (board.ram.size() >> 12) as usize;
        Self {
            first_ram_page: board.ram.base().page(),
            htif_page: board.htif_page(),
            board,
            hart,
            mode,
            // A serial quantum writes RAM directly (nothing runs beside
            // it), in record and replay alike: with private pages in
            // replay only, a page's first write would drop TLB entries
            // (`PageGrant::moved`) that the recording kept, and the next
            // walk, which may set an A bit, would happen in replay only.
            // CREW orders accesses by page ownership and always runs on
            // shared RAM.
            table: AdTable::new(
                pages,
                strategy == Strategy::Crew || strategy == Strategy::Serial,
            ),
            lines: 0,
            mmio_allowed: false,
            relatch_after_mmio: strategy == Strategy::Serial,
            events: Vec::new(),
            next_event: 0,
            quiet_accesses: Vec::new(),
            divergence: None,
            report_pages: false,
            touched: Vec::new(),
            crew: None,
            crew_pending: None,
            refuse: None,
            crew_written: None,
            yield_on_pause: strategy == Strategy::Crew,
            watches: WatchSet::default(),
            breakpoints: BreakpointSet::default(),
            code: None,
            live_devices: false,
            probe: None,
        }
    }

    /// RAM page index (relative to RAM's first page) of guest page `page`.
    #[inline]
    pub(crate) fn ram_index(&self, page: u64) -> Option<usize> {
        let idx = page.checked_sub(self.first_ram_page)?;
        ((idx as usize) < self.table_len()).then_some(idx as usize)
    }

    fn table_len(&self) -> usize {
        (self.board.ram.size() >> 12) as usize
    }

    /// Commit phase 2: copies the chunk's private pages (`sets.dirty`) to
    /// shared RAM and forgets them.
    pub(crate) fn write_back(&mut self, sets: &ChunkSets) {
        for &p in &sets.dirty {
            let page = self.guest_page(p);
            if let (Some(buf), Some(shared)) = (
                self.table.private(p as usize),
                self.board.ram.host_page(page),
            ) {
                crate::table::write_back(buf, shared);
            }
        }
        if let Some(code) = &self.code {
            code.written(sets.dirty.iter().map(|&p| p as usize));
        }
        self.table.reset(sets);
    }

    /// The hash of every page `sets` says the entry wrote, as it wrote it:
    /// its private copy, or RAM where writes go there directly.
    pub(crate) fn written_page_hashes(&self, sets: &ChunkSets) -> Vec<(u64, u64)> {
        sets.dirty
            .iter()
            .filter_map(|&p| {
                let page = self.guest_page(p);
                match self.table.private(p as usize) {
                    Some(buf) => Some((page, crate::table::page_hash(buf.words()))),
                    None => self.board.ram.host_page(page).map(|host| {
                        (
                            page,
                            crate::table::page_hash(crate::table::shared_words(host)),
                        )
                    }),
                }
            })
            .collect()
    }

    /// Guest page number of RAM page index `idx`.
    pub(crate) fn guest_page(&self, idx: u32) -> u64 {
        self.first_ram_page + u64::from(idx)
    }

    fn next_input(&mut self, wanted: &'static str) -> Option<Event> {
        let e = self.events.get(self.next_event).copied();
        match e {
            Some(e) => {
                self.next_event += 1;
                Some(e)
            }
            None => {
                self.diverge(Divergence::NoMoreInputs { wanted });
                None
            }
        }
    }

    fn diverge(&mut self, what: Divergence) {
        if self.divergence.is_none() {
            self.divergence = Some(what);
        }
    }
}

// SAFETY: grants are shared RAM or boot ROM (as `Board::direct_page`) or a
// chunk's private copy (a boxed, 8-aligned `PageBuf`, only recycled after
// the engine has flushed the hart's TLB at the chunk's end or squash).
unsafe impl Bus for ChunkBus<'_> {
    #[inline]
    fn ram_page(&mut self, page: GuestPhysPage, kind: AccessKind) -> Option<PageGrant> {
        let page = page.raw();
        match self.ram_index(page) {
            Some(idx) if Some(page) != self.htif_page => {
                let shared = self.board.ram.host_page(page)?;
                if self.report_pages {
                    self.touched.push((page, kind));
                }
                if let Some((refused, writes_only)) = self.refuse
                    && refused == idx
                    && (!writes_only || kind == AccessKind::Write)
                {
                    self.crew_pending = Some((idx, kind == AccessKind::Write));
                    return None;
                }
                if let Some(own) = self.crew {
                    let write = kind == AccessKind::Write;
                    if !own.permits(idx, self.hart.index(), write) {
                        // Not ours: refused (`ram_refused`), so the hart
                        // defers the instruction; the recorder acquires the
                        // page and runs it again.
                        self.crew_pending = Some((idx, write));
                        return None;
                    }
                    self.crew_pending = None;
                    if write && let Some(written) = &mut self.crew_written {
                        written.push(idx as u32);
                    }
                    // SAFETY: shared RAM, as `Board::direct_page` grants it.
                    return Some(unsafe { PageGrant::new(shared) });
                }
                if kind == AccessKind::Execute
                    && let Some(code) = &self.code
                {
                    code.fetched(idx);
                }
                let write = kind == AccessKind::Write;
                // A replayed entry writing shared memory still moves a page
                // with code on it to a private copy: the new address is
                // what tells the hart that code it cached from the page may
                // be stale, as it did in the recording (a store to the page
                // before any fetch in the entry finds no code page to drop).
                let (host, moved) = if write
                    && self.table.writes_shared()
                    && self.code.as_ref().is_some_and(|c| c.was_fetched(idx))
                {
                    self.table.touch_private(idx, write, shared)
                } else {
                    self.table.touch(idx, write, shared)
                };
                // SAFETY: shared RAM or this hart's private copy (see the impl).
                Some(unsafe {
                    if moved {
                        PageGrant::moved(host, shared)
                    } else {
                        PageGrant::new(host)
                    }
                })
            }
            // The boot ROM is never written after setup: shared read-only.
            _ => self.board.direct_page(page, kind),
        }
    }

    fn mmio_read(&mut self, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError> {
        if !self.mmio_allowed {
            return Err(MmioError::Deferred);
        }
        let r = self.device_read(addr, size);
        self.relatch();
        r
    }

    fn mmio_write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), MmioError> {
        if !self.mmio_allowed {
            return Err(MmioError::Deferred);
        }
        let r = self.device_write(addr, size, value);
        self.relatch();
        r
    }

    fn read_time(&mut self) -> u64 {
        match self.mode {
            Mode::Record => {
                let now = self.board.irq.clock().now_ticks();
                self.events.push(Event::Time(now));
                now
            }
            Mode::Replay => match self.next_input("the time") {
                Some(Event::Time(t)) => {
                    if self.live_devices {
                        self.board.irq.clock().observe(t);
                    }
                    t
                }
                Some(recorded) => {
                    self.diverge(Divergence::WrongInput {
                        wanted: "the time",
                        addr: None,
                        recorded,
                    });
                    0
                }
                None => 0,
            },
        }
    }

    #[inline]
    fn interrupt_lines(&mut self) -> u64 {
        self.lines
    }

    fn hart_id(&self) -> HartId {
        self.hart
    }

    fn ram_refused(&mut self) -> bool {
        self.crew_pending.is_some()
    }

    /// CREW harts run freely and spin on real shared memory: a spinner
    /// gives its host CPU to the hart it waits for (there may be more harts
    /// than host CPUs). Invisible to the guest, so replay may do it too.
    fn pause_hint(&mut self) {
        if self.yield_on_pause {
            std::thread::yield_now();
        }
    }

    #[inline]
    fn breakpoint(&mut self, pc: GuestVirtAddr) -> FetchBreakpoint {
        self.breakpoints.check(pc)
    }

    fn any_breakpoint(&self) -> bool {
        self.breakpoints.any()
    }

    #[inline]
    fn watching(&self) -> bool {
        self.watches.any() || self.probe.as_ref().is_some_and(|p| p.accesses())
    }

    fn watched_page(&self, vaddr: GuestVirtAddr, paddr: GuestPhysAddr, kind: AccessKind) -> bool {
        self.watches.page_watched(vaddr)
            || self
                .probe
                .as_ref()
                .is_some_and(|p| p.page_probed(vaddr.raw(), paddr.raw(), kind))
    }

    fn check_access(&mut self, access: &DataAccess) -> bool {
        // Any later access to a probed page may change bytes of a write
        // noted before (outside the probed range, but part of the noted
        // access): its new value is read first.
        if self
            .probe
            .as_ref()
            .is_some_and(|p| p.unsettled_before(access.steps))
        {
            self.settle_probe();
        }
        if !self.watches.suppressed
            && let Some(probe) = &self.probe
            && probe.catches(access)
            && self.ram_index(access.paddr.page()).is_some()
        {
            let old = if self.probe.as_ref().is_some_and(|p| p.config.values) {
                self.read_value(access.paddr.raw(), access.len as u8)
            } else {
                0
            };
            if let Some(probe) = &mut self.probe {
                probe.note(access, old);
            }
        }
        self.watches
            .check(access.vaddr, access.paddr, access.len, access.kind)
    }

    fn access_undone(&mut self, step: u64) {
        if let Some(probe) = &mut self.probe {
            probe.undo(step);
        }
    }

    #[inline]
    fn fence(&mut self, step: u64, pred: u8, succ: u8) {
        if let Some(probe) = &mut self.probe
            && probe.config.fences
        {
            probe
                .found
                .push(Finding::Fence(FenceSeen { step, pred, succ }));
        }
    }
}

impl ChunkBus<'_> {
    /// Reads guest-physical RAM as this hart sees it now (its private
    /// copies first): the bytes read, a prefix of `buf` (RAM only).
    pub(crate) fn read_view(&self, paddr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let Some(addr) = paddr.checked_add(done as u64) else {
                break;
            };
            let offset = (addr & 0xfff) as usize;
            let n = (4096 - offset).min(buf.len() - done);
            let Some(idx) = self.ram_index(addr >> 12) else {
                break;
            };
            let piece = &mut buf[done..done + n];
            match self.table.private(idx) {
                Some(page) => page.read(offset, piece),
                None => {
                    if self.board.ram.read(GuestPhysAddr(addr), piece).is_err() {
                        break;
                    }
                }
            }
            done += n;
        }
        done
    }

    /// `len` (1 to 8) bytes at `paddr` as this hart sees them,
    /// little-endian (bytes it cannot read are 0).
    fn read_value(&self, paddr: u64, len: u8) -> u64 {
        let mut bytes = [0u8; 8];
        let len = usize::from(len).min(8);
        self.read_view(paddr, &mut bytes[..len]);
        u64::from_le_bytes(bytes)
    }

    /// Fills in the new values of the writes the probe noted.
    pub(crate) fn settle_probe(&mut self) {
        let Some(mut probe) = self.probe.take() else {
            return;
        };
        probe.settle(|paddr, len| self.read_value(paddr, len));
        self.probe = Some(probe);
    }

    /// After a device access inside a chunk: pick up changed interrupt lines
    /// (record: live, logged; replay: from the log).
    fn relatch(&mut self) {
        if !self.relatch_after_mmio {
            return;
        }
        match self.mode {
            // Replay consumes a `LinesUpdate` after an access whenever it is
            // the next event, and a successful write logs nothing: so a
            // change after the k-th access would be taken after the first
            // one that leaves no other event in between. To keep the log
            // unambiguous, a change also marks every earlier quiet access of
            // the chunk with an unchanged `LinesUpdate` (rare: only chunks
            // in which the lines change pay for it).
            Mode::Record => {
                let lines = self.board.irq.lines(self.hart);
                if lines == self.lines {
                    self.quiet_accesses.push(self.events.len());
                    return;
                }
                let old = self.lines;
                for &at in self.quiet_accesses.iter().rev() {
                    self.events.insert(at, Event::LinesUpdate(old));
                }
                self.quiet_accesses.clear();
                self.lines = lines;
                self.events.push(Event::LinesUpdate(lines));
            }
            Mode::Replay => {
                if let Some(&Event::LinesUpdate(lines)) = self.events.get(self.next_event) {
                    self.next_event += 1;
                    self.lines = lines;
                }
            }
        }
    }

    fn device_read(&mut self, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError> {
        match self.mode {
            Mode::Record => {
                let r = self.board.mmio_read(self.hart, addr, size);
                self.events.push(match r {
                    Ok(v) => Event::MmioRead(v),
                    Err(_) => Event::MmioFault,
                });
                r
            }
            Mode::Replay => match self.next_input("a device read") {
                Some(Event::MmioRead(v)) => {
                    if self.live_devices {
                        match self.board.mmio_replay_read(self.hart, addr, size, v) {
                            Ok(None) => {}
                            Ok(Some(answer)) => self.diverge(Divergence::DeviceDisagrees {
                                addr,
                                recorded: v,
                                answer,
                            }),
                            Err(_) => self.diverge(Divergence::DeviceDisagrees {
                                addr,
                                recorded: v,
                                answer: u64::MAX,
                            }),
                        }
                    }
                    Ok(v)
                }
                Some(Event::MmioFault) => Err(MmioError::AccessFault),
                Some(recorded) => {
                    self.diverge(Divergence::WrongInput {
                        wanted: "a device read",
                        addr: Some(addr),
                        recorded,
                    });
                    Err(MmioError::AccessFault)
                }
                None => Err(MmioError::AccessFault),
            },
        }
    }

    fn device_write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), MmioError> {
        // Replay applies writes to the devices too: that regenerates the
        // guest's output (UART) and its exit (test device).
        let r = self.board.mmio_write(self.hart, addr, size, value);
        if Some(addr.page()) == self.htif_page
            && value >> 48 == 0
            && let Some(code) = &self.code
        {
            // The HTIF answers system calls (device 0, command 0) in RAM,
            // anywhere; console output (device 1) writes none.
            code.written_by_device();
        }
        match self.mode {
            Mode::Record => {
                if r.is_err() {
                    self.events.push(Event::MmioFault);
                }
                r
            }
            // Whether a write faults is a property of the address and size
            // (no device refuses a write by its state), so replay takes it
            // from the live write. Peeking at the log instead would mistake
            // the fault of a *later* device read in the same chunk for this
            // write's (serial strategy: many accesses per chunk).
            Mode::Replay => match r {
                Ok(()) => Ok(()),
                Err(e) => {
                    if self.events.get(self.next_event) == Some(&Event::MmioFault) {
                        self.next_event += 1;
                    } else {
                        self.diverge(Divergence::UnrecordedWriteFault { addr });
                    }
                    Err(e)
                }
            },
        }
    }
}
