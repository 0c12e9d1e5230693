//! The replay session: a trace opened on a machine, run forward, stopped
//! anywhere, checkpointed and restored, verified at the end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use samsara_cpu::{Hart, HartState};
use samsara_machine::board::{Board, BoardConfig, DeviceSnapshot};
use samsara_machine::clock::{Clock, ManualClock};
use samsara_machine::console::{PanicWatch, WatchedOutput};
use samsara_machine::devices::test_device::MachineExit;
use samsara_machine::devices::uart::SerialOutput;
use samsara_machine::machine::Machine;
use samsara_trace::{
    Block, BlockMark, ChunkRecord, DmaRecord, Entry, Footer, RecordedExit, TraceErrorKind,
    TraceHeader, TraceReader,
};
use samsara_types::{GuestPhysAddr, GuestVirtAddr};

use super::hart::{Advance, HartReplayer, InProgress};
use super::index::EntryIndex;
use super::observer::{EntryView, Flow, NoObserver, Observer};
use super::pages::{PAGE_BYTES, Page, PageTable, unique_table_bytes, zero_page};
use super::policy::{Admission, CrewSaved, Policy};
use super::pool::Pool;
use super::probe::{BusProbe, ProbeConfig, ProbeConsumer, ProbeHub};
use super::standby_disk::StandbyDisk;
use super::watch::{BreakpointHit, Watch, WatchHit};
use super::{LiveDevices, Mismatch, Position, ReplayConfig, ReplayOutcome, Shared};
use crate::EngineError;
use crate::code_watch::CodeWatch;
use crate::digest::{Console, OutputLog, OutputState, blake3_hex, digests, ram_digest};
use crate::guest::LoadedGuest;
use crate::sequencer::Watermark;
use crate::table::{ChunkSets, PageBits};
use samsara_machine::devices::virtio::block::CompletionSink;

/// How far (in sequence numbers) the parallel dispatcher may run ahead of
/// write-back: bounds the memory of queued entries whatever the trace's length.
const READ_AHEAD: u64 = 1 << 16;

/// Why [`ReplaySession::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The position asked for.
    Reached,
    /// The observer said stop.
    Observer,
    /// The recording's end: every entry the trace holds has run.
    End,
    /// The stop flag was raised (Ctrl-C).
    Interrupted,
    /// A watch caught a data access (see [`ReplaySession::set_watches`]):
    /// the hart stands before the accessing instruction.
    Watch(WatchHit),
    /// A breakpoint (see [`ReplaySession::set_breakpoints`]): the hart
    /// stands before the instruction.
    Breakpoint(BreakpointHit),
}

/// A trace opened for replay on a freshly built machine.
pub struct ReplaySession {
    header: TraceHeader,
    path: String,
    trace: std::path::PathBuf,
    source: EntrySource,
    shared: Shared,
    harts: Vec<Hart>,
    workers: Vec<HartReplayer>,
    output: OutputLog,
    admission: Admission,
    /// Sequence number of the next entry to start (none in progress).
    next_seq: u64,
    /// The chunk part-way through, if any.
    current: Option<InProgress>,
    /// A DMA entry taken from the trace whose start the observer has seen.
    staged: Option<DmaRecord>,
    /// The observer stopped before this step: the next run does not show
    /// it the same step again.
    instruction_seen: Option<Position>,
    /// The RAM of the checkpoint last taken or restored: RAM equals it but
    /// for the pages in `shared.dirty` (`None`: no checkpoint yet).
    base: Option<PageTable>,
    /// The page every all-zero page of a checkpoint shares.
    zero: Arc<Page>,
    /// A standby's watch on the console for a kernel panic.
    panic: Option<Arc<PanicWatch>>,
}

/// The state of a session between two entries, to come back to. Its RAM
/// is a table of shared page copies: pages a later checkpoint did not see
/// written are the same copies (see [`unique_bytes`]).
pub struct Checkpoint {
    next_seq: u64,
    source: SourcePoint,
    staged: Option<DmaRecord>,
    harts: Vec<HartState>,
    lines: Vec<u64>,
    ram: PageTable,
    output: OutputState,
    devices: DeviceSnapshot,
    exit: Option<MachineExit>,
    crew: Option<CrewSaved>,
    admission: Admission,
}

impl Checkpoint {
    /// Where it was taken.
    pub fn position(&self) -> Position {
        Position::before(self.next_seq)
    }

    /// Memory it holds: its state, its page table and every page copy it
    /// refers to (shared ones too; see [`unique_bytes`] for a set).
    pub fn bytes(&self) -> u64 {
        unique_bytes([self])
    }

    /// Memory of its own state and page table, without page copies.
    fn state_bytes(&self) -> u64 {
        let dma = |d: &DmaRecord| -> usize { d.writes.iter().map(|(_, w)| w.len() + 16).sum() };
        (size_of::<Self>()
            + self.harts.len() * size_of::<HartState>()
            + self.lines.len() * 8
            + self.output.heap_bytes()
            + self.staged.as_ref().map_or(0, dma)) as u64
    }
}

/// Memory of a set of checkpoints: each one's state, and each page copy
/// (or page table) once however many of them share it.
pub fn unique_bytes<'a>(checkpoints: impl IntoIterator<Item = &'a Checkpoint>) -> u64 {
    unique_table_bytes(checkpoints.into_iter().map(|c| (&c.ram, c.state_bytes())))
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("position", &self.position())
            .field("ram_pages", &self.ram.pages())
            .finish_non_exhaustive()
    }
}

impl ReplaySession {
    /// Opens `config.trace`, builds the recorded machine from the guest's
    /// files (checked against the trace) and stands at the recording's start.
    pub fn open(config: &ReplayConfig) -> Result<Self, EngineError> {
        Self::open_reader(config, TraceReader::open(&config.trace)?)
    }

    /// As [`ReplaySession::open`], for a trace the recorder is still
    /// writing: entries are read as its blocks complete, and the trace
    /// ends at its footer, or where it stopped growing for `idle`
    /// ([`TraceReader::follow`]).
    /// `stop` ends the waits for the file (Ctrl-C).
    pub fn open_following(
        config: &ReplayConfig,
        idle: Duration,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, EngineError> {
        Self::open_reader(config, TraceReader::follow(&config.trace, idle, stop)?)
    }

    /// A hot standby's replay of the trace its receiver appends to
    /// `config.trace`: read until `writer_gone` is raised
    /// ([`TraceReader::follow_writer`]), with live devices (see
    /// [`LiveDevices`]), so that the machine can go on recording from
    /// where the replay ends ([`ReplaySession::into_takeover`]).
    pub fn open_standby(
        config: &ReplayConfig,
        writer_gone: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        live: &LiveDevices,
    ) -> Result<Self, EngineError> {
        let reader = TraceReader::follow_writer(&config.trace, writer_gone, stop)?;
        Self::open_reader_with(config, reader, Some(live))
    }

    fn open_reader(config: &ReplayConfig, reader: TraceReader) -> Result<Self, EngineError> {
        Self::open_reader_with(config, reader, None)
    }

    fn open_reader_with(
        config: &ReplayConfig,
        reader: TraceReader,
        live: Option<&LiveDevices>,
    ) -> Result<Self, EngineError> {
        let header = reader.header().clone();
        let path = config.trace.display().to_string();
        let guest = LoadedGuest::from_header(&header, &config.files)?;
        let output = OutputLog::default();
        let console = Console {
            echo: config.echo,
            capture: output.clone(),
            external: live.map(|l| Box::new(l.console.clone()) as SerialOutput),
        };
        // A standby watches for a kernel panic as a recording does, for
        // when it has gone live.
        let (console, panic): (SerialOutput, _) = if live.is_some() {
            let (watched, watch) = WatchedOutput::new(Box::new(console));
            (Box::new(watched), Some(watch))
        } else {
            (Box::new(console), None)
        };
        let clock: Arc<dyn Clock> = match live {
            Some(live) => live.clock.clone(),
            None => Arc::new(ManualClock::new(0)),
        };
        // No disk: its contents reach the guest only through logged device
        // reads and DMA entries. Except on a standby, which keeps its own
        // copy current to take over with.
        let standby_disk = match (live, &header.disk_image) {
            (Some(live), Some(image)) => Some(standby_disk_copy(live, image, &config.trace)?),
            _ => None,
        };
        let disk_sink = standby_disk.as_ref().map(|_| Arc::new(StandbyDisk::new()));
        let board_config = BoardConfig {
            cpu: config.cpu,
            harts: header.harts,
            ram_size: header.ram_size,
            disk: standby_disk.clone(),
            disk_readonly: header.disk_readonly,
        };
        let machine = guest.build(
            &board_config,
            clock,
            console,
            disk_sink.clone().map(|s| s as Arc<dyn CompletionSink>),
        )?;
        drop(guest);
        let Machine { board, harts, .. } = machine;
        if !header.initial_ram_blake3.is_empty() {
            // SAFETY: no hart runs yet.
            let initial = unsafe { ram_digest(&board.ram, header.ram_digest) };
            if initial != header.initial_ram_blake3 {
                return Err(EngineError::InitialState {
                    path,
                    recorded: header.initial_ram_blake3.clone(),
                    found: initial,
                });
            }
        }
        let policy = Policy::new(header.strategy, harts.len());
        let pages = (board.ram.size() / PAGE_BYTES) as usize;
        let code = (header.strategy == samsara_trace::Strategy::Chunk)
            .then(|| Arc::new(CodeWatch::new(pages)));
        let workers = harts
            .iter()
            .map(|h| {
                let mut w =
                    HartReplayer::new(board.clone(), h.hart_id(), header.strategy, code.clone());
                w.bus.live_devices = live.is_some();
                w
            })
            .collect();
        let shared = Shared {
            code,
            dirty: PageBits::new(pages),
            board,
            policy,
            wm: Arc::new(Watermark::new()),
            batch: header.batch(),
            error: Mutex::new(None),
            standby_disk: disk_sink,
        };
        Ok(Self {
            admission: Admission::new(header.strategy, harts.len()),
            source: EntrySource::new(reader),
            header,
            path,
            trace: config.trace.clone(),
            shared,
            harts,
            workers,
            output,
            next_seq: 1,
            current: None,
            staged: None,
            instruction_seen: None,
            base: None,
            zero: zero_page(),
            panic,
        })
    }

    /// Shows `tap` every entry as the session reads it from the trace, in
    /// sequence order, whether it then runs in parallel or on this thread
    /// (an analysis that needs only the entries costs the replay nothing
    /// more). After a `restore` entries are read, and shown, again.
    pub fn tap_entries(&mut self, tap: EntryTap) {
        self.source.tap = Some(tap);
    }

    /// Probes the replay from here on (`probe.rs`): the harts show what
    /// `config` asks for, and `consumer` sees every entry from the
    /// session's position on, in the recording's order, with what the
    /// probe found in it — whether the replay then runs in parallel or on
    /// this thread. Harts that show accesses or fences run in the
    /// interpreter (the replay is the same in both engines).
    pub fn set_probe(
        &mut self,
        config: ProbeConfig,
        consumer: ProbeConsumer,
    ) -> Result<(), EngineError> {
        if self.current.is_some() || self.staged.is_some() {
            return Err(EngineError::Internal(format!(
                "a probe starts between entries, not part-way through entry {}",
                self.next_seq
            )));
        }
        let hub = Arc::new(ProbeHub::new(self.next_seq, consumer));
        let interpret = config.needs_interpreter();
        let switches = config.user_switches.is_some();
        for (worker, hart) in self.workers.iter_mut().zip(&mut self.harts) {
            worker.bus.probe = Some(Box::new(BusProbe::new(config.clone(), hub.clone())));
            if interpret {
                hart.set_translator(false);
            }
            hart.set_stop_on_user_switch(switches);
            // Probed pages must leave the TLBs to be seen.
            hart.flush_tlb();
        }
        let mut earlier = self.source.tap.take();
        self.source.tap = Some(Box::new(move |seq, entry| {
            if let Some(tap) = &mut earlier {
                tap(seq, entry);
            }
            hub.entry(seq, entry);
        }));
        Ok(())
    }

    /// A handle on how far the replay has come.
    pub fn progress(&self) -> super::ReplayProgress {
        super::ReplayProgress(self.shared.wm.clone())
    }

    /// The trace's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The [`EntryIndex`] of this session's trace (a read-only scan).
    pub fn build_index(&self) -> Result<EntryIndex, EngineError> {
        EntryIndex::build(&self.trace)
    }

    /// The harts, as they are at [`ReplaySession::position`].
    pub fn harts(&self) -> &[Hart] {
        &self.harts
    }

    /// The machine's RAM and devices. Between entries RAM holds the global
    /// state at the position; part-way through a chunk of the chunk or
    /// serial strategy, that chunk's own writes are in its hart's private
    /// pages, not yet here.
    pub fn board(&self) -> &Board {
        &self.shared.board
    }

    /// Where the replay stands.
    pub fn position(&self) -> Position {
        match &self.current {
            Some(cur) => Position {
                seq: cur.seq,
                step: cur.done(&self.harts[usize::from(cur.record.hart)]),
            },
            None => Position::before(self.next_seq),
        }
    }

    /// The hart that runs the entry in progress, if one is.
    pub fn current_hart(&self) -> Option<usize> {
        self.current.as_ref().map(|c| usize::from(c.record.hart))
    }

    /// Makes the next `run` with an instruction observer show the
    /// instruction at the current position again, even if an observer was
    /// shown it before this stop (each hook otherwise sees each event once).
    /// A debugger that reports its own stops wants each command's run to
    /// start by seeing where it stands.
    pub fn reshow(&mut self) {
        self.instruction_seen = None;
        if let Some(h) = self.current_hart() {
            self.workers[h].reshow();
        }
    }

    /// The entry in progress, if one is.
    pub fn current_entry(&self) -> Option<&ChunkRecord> {
        self.current.as_ref().map(|c| &c.record)
    }

    /// The trace's footer, once the replay has read it.
    pub fn footer(&self) -> Option<&Footer> {
        self.source.footer.as_ref()
    }

    fn take_error(&self) -> EngineError {
        self.shared
            .error
            .lock()
            .take()
            .unwrap_or_else(|| EngineError::Internal("replay aborted without an error".into()))
    }

    fn bad_entry(&self, seq: u64, what: String) -> EngineError {
        EngineError::BadEntry {
            path: self.path.clone(),
            seq,
            what,
        }
    }

    /// Runs on this thread, in the recording's global order, until
    /// `until`, the recording's end, the observer's word, or `stop`.
    /// Every hook of `observer` sees each event once, even across stops.
    pub fn run<O: Observer>(
        &mut self,
        observer: &mut O,
        until: Position,
        stop: &AtomicBool,
    ) -> Result<Stop, EngineError> {
        for w in &mut self.workers {
            if w.bus.report_pages != O::PAGES {
                w.bus.report_pages = O::PAGES;
                w.bus.touched.clear();
            }
        }
        loop {
            if let Some(cur) = self.current.take() {
                match self.advance_current(cur, observer, until)? {
                    None => continue,
                    Some(stopped) => return Ok(stopped),
                }
            }
            if self.position() >= until {
                return Ok(Stop::Reached);
            }
            if stop.load(Ordering::Relaxed) {
                self.source.partial =
                    Some(format!("interrupted after entry {}", self.next_seq - 1));
                return Ok(Stop::Interrupted);
            }
            let seq = self.next_seq;
            if let Some(dma) = self.staged.take() {
                self.apply_dma(seq, &dma)?;
                if observer.entry_end(Position::before(seq), EntryView::Dma(&dma)) == Flow::Stop {
                    return Ok(Stop::Observer);
                }
                continue;
            }
            let Some(entry) = self.source.next()? else {
                return Ok(Stop::End);
            };
            match entry {
                Entry::Chunk(record) => {
                    self.admission
                        .admit(seq, &record)
                        .map_err(|what| self.bad_entry(seq, what))?;
                    let h = usize::from(record.hart);
                    let Some(cur) =
                        self.workers[h].begin(&mut self.harts[h], &self.shared, seq, record)
                    else {
                        return Err(self.take_error());
                    };
                    let flow =
                        observer.entry_start(Position::before(seq), EntryView::Chunk(&cur.record));
                    self.current = Some(cur);
                    if flow == Flow::Stop {
                        return Ok(Stop::Observer);
                    }
                }
                Entry::Dma(dma) => {
                    let flow = observer.entry_start(Position::before(seq), EntryView::Dma(&dma));
                    self.staged = Some(dma);
                    if flow == Flow::Stop {
                        return Ok(Stop::Observer);
                    }
                }
            }
        }
    }

    /// Runs the entry in progress towards `until`; `None` once it finished.
    fn advance_current<O: Observer>(
        &mut self,
        cur: InProgress,
        observer: &mut O,
        until: Position,
    ) -> Result<Option<Stop>, EngineError> {
        let h = usize::from(cur.record.hart);
        let limit = if until.seq == cur.seq {
            until.step
        } else {
            u64::MAX
        };
        let here = Position {
            seq: cur.seq,
            step: cur.done(&self.harts[h]),
        };
        let advanced = if O::INSTRUCTIONS
            && self.instruction_seen == Some(here)
            && limit > here.step
        {
            // The observer stopped before this step last time: run it
            // unobserved, then go on observing.
            self.instruction_seen = None;
            let one = here.step + 1;
            match self.workers[h].advance(
                &mut self.harts[h],
                &self.shared,
                &cur,
                one,
                &mut NoObserver,
            ) {
                Advance::Reached => {
                    self.workers[h].advance(&mut self.harts[h], &self.shared, &cur, limit, observer)
                }
                other => other,
            }
        } else {
            self.workers[h].advance(&mut self.harts[h], &self.shared, &cur, limit, observer)
        };
        match advanced {
            Advance::Failed => return Err(self.take_error()),
            Advance::Observer => {
                self.instruction_seen = Some(Position {
                    seq: cur.seq,
                    step: cur.done(&self.harts[h]),
                });
                self.current = Some(cur);
                return Ok(Some(Stop::Observer));
            }
            Advance::Watch => {
                let at = Position {
                    seq: cur.seq,
                    step: cur.done(&self.harts[h]),
                };
                let Some((addr, len, paddr, kind, watch)) = self.workers[h].bus.watches.hit.take()
                else {
                    return Err(EngineError::Internal(format!(
                        "hart {h} stopped for a watch at {at} without a hit"
                    )));
                };
                self.current = Some(cur);
                return Ok(Some(Stop::Watch(WatchHit {
                    at,
                    hart: h,
                    addr,
                    len,
                    paddr,
                    kind,
                    watch,
                })));
            }
            Advance::Breakpoint => {
                let at = Position {
                    seq: cur.seq,
                    step: cur.done(&self.harts[h]),
                };
                let pc = self.harts[h].pc();
                self.current = Some(cur);
                return Ok(Some(Stop::Breakpoint(BreakpointHit { at, hart: h, pc })));
            }
            Advance::Reached => {}
        }
        let done = cur.done(&self.harts[h]);
        if until.seq == cur.seq && done >= until.step {
            self.current = Some(cur);
            return Ok(Some(Stop::Reached));
        }
        if !self.workers[h].finish(&mut self.harts[h], &self.shared, &cur) {
            return Err(self.take_error());
        }
        self.next_seq = cur.seq + 1;
        self.instruction_seen = None;
        if observer.entry_end(Position::before(cur.seq), EntryView::Chunk(&cur.record))
            == Flow::Stop
        {
            return Ok(Some(Stop::Observer));
        }
        Ok(None)
    }

    /// Replaces the watched ranges (empty: none). From now on `run` stops
    /// with [`Stop::Watch`] before any hart's data access (load, store,
    /// AMO, LR/SC; never a fetch, nor the page-table walker's own PTE
    /// accesses, nor a DMA entry's writes) to watched bytes of a kind the
    /// watch catches; addresses are virtual, as the accessing hart's
    /// `satp` maps them. The harts' TLBs are flushed, so pages holding
    /// watched bytes leave them. The replay itself is unchanged: a caught
    /// instruction runs when `run` is called again (unreported), exactly
    /// as recorded. `run_parallel` does not stop for watches.
    pub fn set_watches(&mut self, watches: Vec<Watch>) {
        for w in &mut self.workers {
            w.bus.watches.set(&watches);
        }
        for hart in &mut self.harts {
            hart.flush_tlb();
        }
    }

    /// Replaces the breakpoints (virtual addresses of instructions; empty:
    /// none). From now on `run` stops with [`Stop::Breakpoint`] before any
    /// hart executes an instruction at one of them, at full speed
    /// otherwise: they are checked when an instruction is decoded, and one
    /// at a breakpoint is never cached (the harts' decode caches are
    /// flushed here). The replay is unchanged: the instruction runs when
    /// `run` is called again, unreported. `run_parallel` does not stop.
    pub fn set_breakpoints(&mut self, pcs: &[u64]) {
        for w in &mut self.workers {
            w.bus.breakpoints.set(pcs);
        }
        for hart in &mut self.harts {
            hart.flush_decode_cache();
        }
    }

    /// Reads guest-physical memory as hart `hart` sees it here, into `buf`:
    /// RAM and the boot ROM only (device and hole addresses end the read:
    /// devices may have side effects), for the hart of the entry in progress overlaid with
    /// its private copy-on-write pages (its own writes of the entry, not yet
    /// written back). Nothing changes. Returns the bytes read (a prefix).
    pub fn read_phys(&self, hart: usize, paddr: GuestPhysAddr, buf: &mut [u8]) -> usize {
        let ram = &self.shared.board.ram;
        let bus = (self.current_hart() == Some(hart)).then(|| &self.workers[hart].bus);
        let mut done = 0;
        while done < buf.len() {
            let Some(addr) = paddr.raw().checked_add(done as u64) else {
                break;
            };
            let offset = (addr & 0xfff) as usize;
            let n = (4096 - offset).min(buf.len() - done);
            let piece = &mut buf[done..done + n];
            if !ram.contains(GuestPhysAddr(addr), n as u64) {
                // The boot ROM reads without side effects too.
                let rom = self.shared.board.read_rom(addr, piece);
                done += rom;
                if rom < n {
                    break;
                }
                continue;
            }
            let read = match bus {
                Some(b) => b.read_view(addr, piece) == n,
                None => ram.read(GuestPhysAddr(addr), piece).is_ok(),
            };
            if !read {
                break;
            }
            done += n;
        }
        done
    }

    /// Reads guest-virtual memory as hart `hart` sees it here: translated
    /// page by page through the hart's `satp` (whatever its privilege;
    /// identity when Bare) with [`Hart::peek_translate`], page-table
    /// entries and data read with [`ReplaySession::read_phys`]. Nothing
    /// changes (no A/D bits, no TLB fill). Returns the bytes read: short
    /// where a page is unmapped or not RAM.
    pub fn read_virt(&self, hart: usize, vaddr: GuestVirtAddr, buf: &mut [u8]) -> usize {
        let Some(h) = self.harts.get(hart) else {
            return 0;
        };
        read_virt_through(h, vaddr, buf, |pa, piece| self.read_phys(hart, pa, piece))
    }

    fn apply_dma(&mut self, seq: u64, dma: &DmaRecord) -> Result<(), EngineError> {
        apply_dma(&self.shared, dma).map_err(|what| self.bad_entry(seq, what))?;
        self.shared.wm.retire(seq);
        self.next_seq = seq + 1;
        Ok(())
    }

    /// Runs the rest of the recording with harts in parallel, on a pool of
    /// threads (`pool.rs`; an entry in progress is finished first, on this
    /// one).
    pub fn run_parallel(&mut self, stop: &AtomicBool) -> Result<(), EngineError> {
        self.run_parallel_until(u64::MAX, stop).map(|_| ())
    }

    /// Runs with harts in parallel on a pool of threads (an entry in
    /// progress is finished first, on this one), until every entry before
    /// `until_seq` has finished and been written back and none after it
    /// has started: [`Stop::Reached`] at `Position::before(until_seq)`.
    /// Or [`Stop::End`] (the recording ended first) or
    /// [`Stop::Interrupted`] (`stop` raised: every entry handed to a hart
    /// finishes, the session stands between entries). The pool's threads are
    /// gone when it returns: `run`, `checkpoint` and `restore` go on from
    /// there. Already at or past `until_seq`: `Reached`, nothing runs.
    pub fn run_parallel_until(
        &mut self,
        until_seq: u64,
        stop: &AtomicBool,
    ) -> Result<Stop, EngineError> {
        let until = Position::before(until_seq);
        if self.position() >= until {
            return Ok(Stop::Reached);
        }
        if let Some(cur) = &self.current {
            let next = Position::before(cur.seq + 1);
            match self.run(&mut NoObserver, next, stop)? {
                Stop::Reached => {}
                other => return Ok(other),
            }
        }
        for w in &mut self.workers {
            w.bus.report_pages = false;
            w.bus.touched.clear();
        }
        let Self {
            source,
            shared,
            harts,
            workers,
            admission,
            next_seq,
            staged,
            path,
            ..
        } = self;
        let shared = &*shared;
        let threads = Pool::threads(harts.len());
        let pool = Pool::new(harts.iter_mut().zip(workers.iter_mut()));
        let bad = |seq, what| EngineError::BadEntry {
            path: path.clone(),
            seq,
            what,
        };
        let apply = |seq, dma: &DmaRecord| apply_dma(shared, dma).map_err(|what| bad(seq, what));
        let stopped = std::thread::scope(|scope| {
            for k in 0..threads {
                let (pool, apply) = (&pool, &apply);
                std::thread::Builder::new()
                    .name(format!("replay-{k}"))
                    .spawn_scoped(scope, move || pool.work(shared, apply))
                    .expect("spawning a replay thread");
            }
            // A panic here (in an entry tap, say) must not leave the pool
            // waiting for entries that never come.
            let _release = CloseOnUnwind(&pool, shared);
            let stopped = loop {
                if *next_seq >= until_seq {
                    break Stop::Reached;
                }
                if stop.load(Ordering::Relaxed) {
                    source.partial = Some(format!("interrupted after entry {}", *next_seq - 1));
                    break Stop::Interrupted;
                }
                let entry = match staged.take() {
                    Some(dma) => Entry::Dma(dma),
                    None => match source.next() {
                        Ok(Some(entry)) => entry,
                        Ok(None) => break Stop::End,
                        Err(e) => {
                            shared.fail(e);
                            break Stop::End;
                        }
                    },
                };
                let seq = *next_seq;
                *next_seq += 1;
                if seq > READ_AHEAD && !shared.wm.wait_for(seq - READ_AHEAD) {
                    break Stop::End;
                }
                match entry {
                    Entry::Chunk(record) => {
                        if let Err(what) = admission.admit(seq, &record) {
                            shared.fail(bad(seq, what));
                            break Stop::End;
                        }
                        pool.push(seq, record);
                    }
                    Entry::Dma(dma) => pool.push_dma(seq, dma),
                }
                if shared.wm.is_aborted() {
                    break Stop::End;
                }
            };
            // Let the pool finish what was handed out.
            pool.close();
            stopped
        });
        if let Some(e) = self.shared.error.lock().take() {
            return Err(e);
        }
        Ok(stopped)
    }

    /// Forgets what the harts' tables hold (an entry cut part-way through
    /// by a restore leaves private pages there); tables written through
    /// to RAM (CREW, serial) say which pages their entries wrote: into
    /// `dirty`.
    fn drain_tables(&mut self) {
        let mut sets = ChunkSets::default();
        for w in &mut self.workers {
            w.bus.table.walk(&mut sets);
            if w.bus.table.is_direct() {
                self.shared.dirty.mark_all(&sets.dirty);
            }
            w.bus.table.reset(&sets);
        }
        // The HTIF mailbox is written by its device model, not by harts.
        let ram = &self.shared.board.ram;
        if let Some(page) = self.shared.board.htif_page()
            && let Some(idx) = page.checked_sub(ram.base().page())
        {
            self.shared.dirty.mark(idx as usize);
        }
    }

    /// The state here, to [`ReplaySession::restore`] later. Checkpoints are
    /// taken between entries: part-way through one, `Err` says where. Only
    /// pages written since the last checkpoint taken or restored are
    /// copied; the others are shared with that one.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, EngineError> {
        if self.shared.standby_disk.is_some() {
            return Err(EngineError::Options(
                "a standby's replay keeps a disk that only goes forward: no checkpoints".into(),
            ));
        }
        if self.current.is_some() {
            return Err(EngineError::Options(format!(
                "a checkpoint is taken between entries; the replay is at {}",
                self.position()
            )));
        }
        self.drain_tables();
        let dirty = self.shared.dirty.take();
        let ram = &self.shared.board.ram;
        let table = match &self.base {
            None => PageTable::full(ram, &self.zero),
            Some(base) => base.updated(ram, &dirty, &self.zero),
        };
        self.base = Some(table.clone());
        Ok(Checkpoint {
            next_seq: self.next_seq,
            source: self.source.point(),
            staged: self.staged.clone(),
            harts: self.harts.iter().map(Hart::snapshot).collect(),
            lines: self.workers.iter().map(|w| w.lines).collect(),
            ram: table,
            output: self.output.save(),
            devices: self.shared.board.snapshot_devices(),
            exit: self.shared.board.exit.get(),
            crew: match &self.shared.policy {
                Policy::Crew(progress) => Some(progress.save()),
                _ => None,
            },
            admission: self.admission.clone(),
        })
    }

    /// Goes back (or forward) to `checkpoint`, taken from this session.
    /// Writes only the pages that may differ: those written since the
    /// last checkpoint taken or restored, and those in which that one and
    /// `checkpoint` hold different copies.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), EngineError> {
        let pages = (self.shared.board.ram.size() / PAGE_BYTES) as usize;
        if checkpoint.ram.pages() != pages || checkpoint.harts.len() != self.harts.len() {
            return Err(EngineError::Options(
                "the checkpoint is of another machine".into(),
            ));
        }
        // An entry part-way through is abandoned: its hart's private pages
        // and access bits (drained below) must not leak into that hart's
        // next entry.
        if let Some(cur) = self.current.take() {
            self.workers[usize::from(cur.record.hart)].abandon();
        }
        self.source.seek(&checkpoint.source)?;
        self.drain_tables();
        let ram = &self.shared.board.ram;
        let dirty = self.shared.dirty.take();
        checkpoint.ram.write_over(self.base.as_ref(), &dirty, ram);
        self.base = Some(checkpoint.ram.clone());
        for (hart, state) in self.harts.iter_mut().zip(&checkpoint.harts) {
            hart.restore(state);
        }
        for (worker, &lines) in self.workers.iter_mut().zip(&checkpoint.lines) {
            worker.lines = lines;
        }
        self.output.restore(&checkpoint.output);
        self.shared.board.restore_devices(&checkpoint.devices);
        self.shared.board.exit.restore(checkpoint.exit);
        if let (Policy::Crew(progress), Some(saved)) = (&self.shared.policy, &checkpoint.crew) {
            progress.restore(saved);
        }
        self.admission = checkpoint.admission.clone();
        self.shared.wm.reset(checkpoint.next_seq - 1);
        *self.shared.error.lock() = None;
        self.next_seq = checkpoint.next_seq;
        self.staged = checkpoint.staged.clone();
        self.current = None;
        self.instruction_seen = None;
        Ok(())
    }

    /// The hart digests and the BLAKE3 of all of RAM, as they are now
    /// (between entries: the global state at [`ReplaySession::position`]).
    pub fn state_digests(&self) -> (Vec<u64>, String) {
        // SAFETY: between entries no hart runs and no DMA writes.
        unsafe { digests(&self.harts, &self.shared.board.ram, self.header.ram_digest) }
    }

    /// The replay's result: what it regenerated, compared with the footer.
    pub fn outcome(&self, wall: Duration) -> ReplayOutcome {
        let board = &self.shared.board;
        board.uart.flush_output();
        // SAFETY: between entries no hart runs and no DMA writes.
        let (hart_digests, ram_blake3) =
            unsafe { digests(&self.harts, &board.ram, self.header.ram_digest) };
        let exit = board.exit.get().map(|e| match e {
            MachineExit::Poweroff => RecordedExit::Poweroff,
            MachineExit::Fail(c) => RecordedExit::Fail(c),
            MachineExit::Reset => RecordedExit::Reset,
        });
        let printed = self.output.summary();
        let steps_per_hart: Vec<u64> = self.harts.iter().map(|h| h.steps().0).collect();
        let footer = self.source.footer.clone();
        let mismatches = footer
            .as_ref()
            .map(|f| {
                compare(
                    f,
                    &printed.head,
                    printed.len,
                    &printed.blake3,
                    exit,
                    &steps_per_hart,
                    &hart_digests,
                    &ram_blake3,
                )
            })
            .unwrap_or_default();
        ReplayOutcome {
            header: self.header.clone(),
            footer,
            partial: self.source.partial.clone(),
            partial_cut_short: self.source.cut_short,
            entries: self.shared.wm.get(),
            output: printed.head,
            output_len: printed.len,
            exit,
            hart_digests,
            ram_blake3,
            steps_per_hart,
            mismatches,
            wall,
        }
    }
}

impl ReplaySession {
    /// The machine as the replay left it, to record on from there: a hot
    /// standby whose primary is gone. The replay must have run every
    /// entry the trace holds (it stands at its end, which is not a footer:
    /// the recording did not finish) on a session opened with
    /// [`ReplaySession::open_standby`].
    pub fn into_takeover(mut self) -> Result<Takeover, EngineError> {
        if self.current.is_some() || self.staged.is_some() || !self.source.ended {
            return Err(EngineError::Internal(format!(
                "a takeover starts where the replay ran out of entries; it stands at {}",
                self.position()
            )));
        }
        if self.source.footer.is_some() {
            return Err(EngineError::Options(
                "the recording finished (its trace has a footer): nothing to take over".into(),
            ));
        }
        // The primary's death may cut a block short; damage anywhere else
        // (a checksum, a block out of order) is no state to go on from.
        if let Some(partial) = &self.source.partial
            && !self.source.cut_short
            && !self.source.clean_end
        {
            return Err(self.bad_entry(self.next_seq, format!("the stream is damaged: {partial}")));
        }
        if !self.workers.iter().all(|w| w.bus.live_devices) {
            return Err(EngineError::Internal(
                "a takeover needs a replay with live devices".into(),
            ));
        }
        self.drain_tables();
        let good = self.source.good_end;
        let lines = self.workers.iter().map(|w| w.lines).collect();
        Ok(Takeover {
            panic: self.panic.unwrap_or_default(),
            disk: self.shared.standby_disk.clone(),
            header: self.header,
            trace: self.trace,
            harts: self.harts,
            board: self.shared.board,
            output: self.output,
            lines,
            next_seq: self.next_seq,
            trace_len: good.offset(),
            next_block: good.index(),
        })
    }
}

/// What a standby's replay hands the recorder when it takes over: the
/// machine where the primary's last complete entry left it, and where in
/// its copy of the trace the recording goes on.
pub struct Takeover {
    /// The trace's header (the recording goes on under it).
    pub header: TraceHeader,
    /// The standby's copy of the trace.
    pub trace: std::path::PathBuf,
    /// The harts.
    pub harts: Vec<Hart>,
    /// RAM and devices, current.
    pub board: Board,
    pub(crate) output: OutputLog,
    /// Each hart's interrupt lines as its last entry saw them.
    pub lines: Vec<u64>,
    /// Sequence number of the first entry the recording adds.
    pub next_seq: u64,
    /// Bytes of the trace that hold complete blocks: the rest is cut off.
    pub trace_len: u64,
    /// Index of the next block.
    pub next_block: u64,
    /// The standby's disk, if the primary had one: its completions go to
    /// the recorder from here on.
    pub disk: Option<Arc<StandbyDisk>>,
    /// What the console showed of a kernel panic.
    pub panic: Arc<PanicWatch>,
}

/// The standby's own copy of the primary's initial disk image, next to its
/// trace (`TRACE.disk`), checked against the image the header describes.
fn standby_disk_copy(
    live: &LiveDevices,
    image: &samsara_trace::TraceFile,
    trace: &std::path::Path,
) -> Result<std::path::PathBuf, EngineError> {
    let source = live
        .disk
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(&image.path));
    let mut name = trace.as_os_str().to_owned();
    name.push(".disk");
    let copy = std::path::PathBuf::from(name);
    let failed = |what: String| {
        let source_path = source.display().to_string();
        move |e: std::io::Error| EngineError::Disk {
            path: source_path,
            what,
            source: e,
        }
    };
    std::fs::copy(&source, &copy).map_err(failed(format!(
        "cannot copy it to the standby's disk {}",
        copy.display()
    )))?;
    let mut hasher = blake3::Hasher::new();
    let len = std::io::copy(
        &mut std::fs::File::open(&copy).map_err(failed("cannot read the copy".into()))?,
        &mut hasher,
    )
    .map_err(failed("cannot read the copy".into()))?;
    let found = hasher.finalize().to_hex().to_string();
    if len != image.len || found != image.blake3 {
        return Err(EngineError::Disk {
            path: source.display().to_string(),
            what: format!(
                "it is not the disk the primary started from ({len} bytes, BLAKE3 {found}; the stream says {} bytes, {})",
                image.len, image.blake3
            ),
            source: std::io::Error::other("wrong disk image"),
        });
    }
    Ok(copy)
}

/// How the replayed end differs from the recorded footer.
#[allow(clippy::too_many_arguments)]
fn compare(
    f: &Footer,
    output: &[u8],
    output_len: u64,
    output_blake3: &str,
    exit: Option<RecordedExit>,
    steps_per_hart: &[u64],
    hart_digests: &[u64],
    ram_blake3: &str,
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    // Old traces hold all of the output and no length or hash.
    let recorded_len = f.output_len.unwrap_or(f.output.len() as u64);
    let recorded_hash = f
        .output_blake3
        .clone()
        .unwrap_or_else(|| blake3_hex(&f.output));
    if output_len != recorded_len || output_blake3 != recorded_hash {
        let at = output
            .iter()
            .zip(&f.output)
            .position(|(a, b)| a != b)
            .unwrap_or(output.len().min(f.output.len()));
        mismatches.push(Mismatch::Output {
            at: at as u64,
            recorded_len,
            replayed_len: output_len,
        });
    }
    let recorded_exit = match f.exit {
        e @ (RecordedExit::Poweroff | RecordedExit::Fail(_) | RecordedExit::Reset) => Some(e),
        _ => None,
    };
    if exit != recorded_exit {
        mismatches.push(Mismatch::Exit {
            recorded: f.exit,
            replayed: exit,
        });
    }
    if steps_per_hart != f.steps_per_hart {
        mismatches.push(Mismatch::InstructionCounts {
            recorded: f.steps_per_hart.clone(),
            replayed: steps_per_hart.to_vec(),
        });
    }
    for (h, (&recorded, &replayed)) in f.hart_digests.iter().zip(hart_digests).enumerate() {
        if recorded != replayed {
            mismatches.push(Mismatch::HartState {
                hart: h as u32,
                recorded,
                replayed,
            });
        }
    }
    if f.ram_blake3 != ram_blake3 {
        mismatches.push(Mismatch::Ram {
            recorded: f.ram_blake3.clone(),
            replayed: ram_blake3.to_owned(),
        });
    }
    mismatches
}

fn apply_dma(shared: &Shared, dma: &DmaRecord) -> Result<(), String> {
    let ram = &shared.board.ram;
    if let (Some(sink), Some(disk)) = (&shared.standby_disk, &shared.board.disk) {
        sink.confirm(disk, ram, dma)?;
    }
    let first = ram.base().page();
    for (addr, data) in &dma.writes {
        if !data.is_empty() {
            let last = (addr + data.len() as u64 - 1) >> 12;
            let pages = ((addr >> 12)..=last).filter_map(|page| page.checked_sub(first));
            for idx in pages.clone() {
                shared.dirty.mark(idx as usize);
            }
            if let Some(code) = &shared.code {
                code.written(pages.map(|idx| idx as usize));
            }
        }
        ram.write(GuestPhysAddr(*addr), data)
            .map_err(|e| format!("DMA entry writes outside RAM: {e}"))?;
    }
    Ok(())
}

/// A hook on the entries a session reads: (sequence number, entry).
pub type EntryTap = Box<dyn FnMut(u64, &Entry) + Send>;

/// The trace's entries, one at a time, with where they came from.
struct EntrySource {
    reader: TraceReader,
    /// The rest of the block being read.
    block: VecDeque<Entry>,
    /// Where that block starts, and how many of its entries were taken.
    block_mark: BlockMark,
    taken: usize,
    /// After a seek: entries of the next block already run.
    skip: usize,
    footer: Option<Footer>,
    /// Why the trace ended early, if it did.
    partial: Option<String>,
    /// It ended inside a block (see `ReplayOutcome::partial_cut_short`).
    cut_short: bool,
    /// Nothing more to read.
    ended: bool,
    /// Where the last complete block read ends.
    good_end: BlockMark,
    /// Sees every entry as it is read (see `ReplaySession::tap_entries`).
    tap: Option<EntryTap>,
    /// It ended between blocks, without a footer.
    clean_end: bool,
}

/// Where an [`EntrySource`] stood.
#[derive(Clone, Debug)]
struct SourcePoint {
    mark: BlockMark,
    skip: usize,
    footer: Option<Footer>,
    partial: Option<String>,
    cut_short: bool,
    ended: bool,
}

impl EntrySource {
    fn new(reader: TraceReader) -> Self {
        let block_mark = reader.mark();
        Self {
            block_mark,
            reader,
            block: VecDeque::new(),
            taken: 0,
            skip: 0,
            footer: None,
            partial: None,
            cut_short: false,
            ended: false,
            good_end: block_mark,
            clean_end: false,
            tap: None,
        }
    }

    /// The next entry; `None` at the trace's end (or where it is damaged:
    /// `partial` says why). A read error of the file itself is an error.
    fn next(&mut self) -> Result<Option<Entry>, EngineError> {
        loop {
            if let Some(entry) = self.block.pop_front() {
                self.taken += 1;
                if let Some(tap) = &mut self.tap {
                    tap(self.block_mark.first_seq() + self.taken as u64 - 1, &entry);
                }
                return Ok(Some(entry));
            }
            if self.ended {
                return Ok(None);
            }
            let mark = self.reader.mark();
            match self.reader.next_block() {
                Ok(Some(Block::Entries { entries, .. })) => {
                    self.good_end = self.reader.mark();
                    self.block = entries.into();
                    self.block_mark = mark;
                    self.taken = 0;
                    while self.skip > 0 && self.block.pop_front().is_some() {
                        self.skip -= 1;
                        self.taken += 1;
                    }
                }
                Ok(Some(Block::Footer(f))) => self.footer = Some(*f),
                Ok(None) => self.ended = true,
                Err(e) if e.is_missing_footer() => {
                    self.partial = Some(format!("{e}; replayed up to byte offset {}", e.offset));
                    self.ended = true;
                    self.clean_end = true;
                }
                Err(e) => {
                    // Everything before the damage has run; report it.
                    self.cut_short = matches!(e.kind, TraceErrorKind::Truncated(_));
                    self.partial = Some(e.to_string());
                    self.ended = true;
                    if matches!(e.kind, TraceErrorKind::Io(_)) {
                        return Err(EngineError::Trace(e));
                    }
                }
            }
        }
    }

    fn point(&self) -> SourcePoint {
        let (mark, skip) = if self.block.is_empty() {
            (self.reader.mark(), self.skip)
        } else {
            (self.block_mark, self.taken)
        };
        SourcePoint {
            mark,
            skip,
            footer: self.footer.clone(),
            partial: self.partial.clone(),
            cut_short: self.cut_short,
            ended: self.ended,
        }
    }

    fn seek(&mut self, point: &SourcePoint) -> Result<(), EngineError> {
        self.block.clear();
        self.taken = 0;
        self.footer = point.footer.clone();
        self.partial = point.partial.clone();
        self.cut_short = point.cut_short;
        self.ended = point.ended;
        self.skip = point.skip;
        if !point.ended {
            self.reader.seek(point.mark)?;
        }
        Ok(())
    }
}

/// Closes the pool and aborts the replay if the thread feeding it unwinds.
struct CloseOnUnwind<'a, 'h>(&'a Pool<'h>, &'a Shared);

impl Drop for CloseOnUnwind<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.1.wm.abort();
            self.0.close();
        }
    }
}

/// Reads virtual memory as `hart` translates it (whatever its privilege;
/// identity when Bare), page by page with [`Hart::peek_translate`], its
/// page-table entries and data read with `read_phys` (which returns the
/// bytes it read): no A/D bits, no TLB fill. Returns the bytes read, short
/// where a page is unmapped or unreadable.
pub(crate) fn read_virt_through(
    hart: &Hart,
    vaddr: GuestVirtAddr,
    buf: &mut [u8],
    read_phys: impl Fn(GuestPhysAddr, &mut [u8]) -> usize,
) -> usize {
    let read_pte = |pa: GuestPhysAddr| {
        let mut word = [0u8; 8];
        (read_phys(pa, &mut word) == 8).then(|| u64::from_le_bytes(word))
    };
    let mut done = 0;
    while done < buf.len() {
        let Some(addr) = vaddr.raw().checked_add(done as u64) else {
            break;
        };
        let n = (4096 - (addr & 0xfff) as usize).min(buf.len() - done);
        let Some(pa) = hart.peek_translate(GuestVirtAddr(addr), read_pte) else {
            break;
        };
        let got = read_phys(pa, &mut buf[done..done + n]);
        done += got;
        if got < n {
            break;
        }
    }
    done
}
