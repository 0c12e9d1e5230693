//! Recording: Samsara's chunk engine.
//!
//! Each hart runs on its own host thread, in chunks. Inside a chunk its
//! writes go to private copies (the [`AdTable`]); at the end the A/D walk
//! gives its read and write sets, a short critical section checks them
//! against every chunk that committed while it ran, and either squashes it
//! (restore and re-execute) or takes a sequence number and publishes its
//! write set (phase 1); the private pages are then written back outside the
//! lock (phase 2) and the entry retires, in any order (phase 3). Device
//! accesses and DMA take sequence numbers of their own. See
//! `docs/record-replay.md`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use samsara_cpu::{Hart, StopReason};
use samsara_machine::board::{Board, BoardConfig};
use samsara_machine::clock::HostClock;
use samsara_machine::console::{RawTerminal, WatchedOutput, spawn_interactive_feeder};
use samsara_machine::devices::virtio::block::{Completion, CompletionSink, VirtioBlk};
use samsara_machine::devices::{DmaError, GuestMemory};
use samsara_machine::ram::GuestRam;
use samsara_machine::supervisor::{Signals, Supervisor};
use samsara_trace::{
    Check, ChunkRecord, DmaRecord, Entry, Event, Footer, RecordStats, RecordedExit, TraceFile,
    TraceHeader, TraceWriter, Truncation, WriterStats,
};
use samsara_types::{GuestPhysAddr, HartId, PAGE_SHIFT};

use crate::chunk_bus::{ChunkBus, Mode};
use crate::digest::{Console, OutputLog, machine_digests};
use crate::exit::recorded_exit;
use crate::guest::{Guest, LoadedGuest};
use crate::sequencer::Watermark;
use crate::table::{ChunkSets, page_hash, shared_words, write_back};
use crate::{BATCH, EngineError};

/// Default chunk size limit, in instructions: chunks reach it only where
/// harts do not conflict (see `RESTART_CHUNK_SIZE`; BENCHMARKS.md has the
/// measurements behind both).
pub const DEFAULT_CHUNK_SIZE: u64 = 1_000_000;
/// Default quantum of the serial strategy, in instructions.
pub const DEFAULT_SERIAL_QUANTUM: u64 = 100_000;
/// A hart's chunks start at this size (or the limit, if smaller) and come
/// back to it after a squash; clean chunks double it up to the limit.
const RESTART_CHUNK_SIZE: u64 = 100_000;
/// Below this size a repeatedly squashed chunk runs exclusively.
const MIN_CHUNK_SIZE: u64 = 2_000;
/// Squashes in a row after which a chunk runs exclusively.
const EXCLUSIVE_AFTER_SQUASHES: u32 = 6;
/// Longest a hart that ended a chunk at a `pause` waits for another commit.
const SPIN_WAIT: Duration = Duration::from_micros(200);
/// Entries per trace block.
const BLOCK_ENTRIES: usize = 8192;
/// A block is also cut when its oldest entry is this old, so a recording
/// killed at any moment loses at most this much of its tail.
const BLOCK_MAX_AGE: Duration = Duration::from_millis(250);
/// A block is also cut once its DMA data reach this size: a disk streaming
/// at memory speed could otherwise fill a block's io stream past the
/// format's 256 MiB limit within `BLOCK_MAX_AGE`.
const BLOCK_MAX_DMA_BYTES: usize = 16 << 20;

/// How memory interleaving is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Samsara: harts in parallel, in copy-on-write chunks.
    Chunk,
    /// Baseline: every hart on one host thread, round-robin by instruction
    /// quantum (the chunk size), as QEMU's and rr's record modes work.
    Serial,
    /// Baseline: concurrent-read/exclusive-write page ownership with every
    /// transfer logged as an ordering edge (SMP-ReVirt).
    Crew,
}

impl Strategy {
    /// The default `chunk_size`: the chunk size limit, or the serial
    /// strategy's quantum.
    pub fn default_chunk_size(self) -> u64 {
        match self {
            Strategy::Serial => DEFAULT_SERIAL_QUANTUM,
            Strategy::Chunk | Strategy::Crew => DEFAULT_CHUNK_SIZE,
        }
    }

    /// The name written in the trace header.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Chunk => "chunk",
            Strategy::Serial => "serial",
            Strategy::Crew => "crew",
        }
    }
}

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    /// Recording strategy.
    pub strategy: Strategy,
    /// What the machine boots.
    pub guest: Guest,
    /// Trace file to write.
    pub trace: PathBuf,
    /// Harts.
    pub harts: u32,
    /// RAM bytes.
    pub ram_size: u64,
    /// Disk image: recording works on a private copy, the file is never modified.
    pub disk: Option<PathBuf>,
    /// Attach the disk read-only (guest writes fail with an I/O error).
    pub disk_readonly: bool,
    /// Chunk size limit in instructions (serial strategy: the quantum).
    pub chunk_size: u64,
    /// Stop each hart after this many instructions.
    pub max_instructions: Option<u64>,
    /// Stop after this much wall-clock time.
    pub timeout: Option<Duration>,
    /// Add verification digests to every Nth chunk of each hart (0: none).
    pub check_every: u64,
    /// Host-side perturbation: random delays and chunk sizes from this seed.
    pub perturb: Option<u64>,
    /// Copy the guest's output to stdout as well as into the trace.
    pub echo: bool,
    /// Feed stdin to the UART.
    pub stdin: bool,
}

/// What a recording produced.
#[derive(Clone, Debug)]
pub struct RecordOutcome {
    /// The footer written (final digests, output, statistics).
    pub footer: Footer,
    /// Trace writer statistics.
    pub writer: WriterStats,
    /// Wall time.
    pub wall: Duration,
    /// Chunks committed per truncation reason (indexed by `Truncation as usize`).
    pub reasons: [u64; 8],
}

/// A committed chunk's write set, kept while some running chunk may
/// still conflict with it.
struct Published {
    seq: u64,
    pages: Vec<u32>,
}

/// The commit lock's state (phase 1).
pub(crate) struct CommitState {
    pub(crate) next_seq: u64,
    /// CREW: sequence number of the last device access (their global order).
    pub(crate) last_device_seq: u64,
    /// When the oldest entry of `log` was appended.
    log_since: Instant,
    /// DMA data bytes in `log`.
    log_dma_bytes: usize,
    history: VecDeque<Published>,
    log: Vec<Entry>,
    log_first_seq: u64,
    writer: Option<TraceWriter>,
    failure: Option<String>,
    pub(crate) reasons: [u64; 8],
}

/// Everything the hart threads and the DMA sink share.
pub(crate) struct Recorder {
    pub(crate) commit: Mutex<CommitState>,
    wm: Watermark,
    /// Normal chunks hold it shared; an exclusive chunk holds it alone.
    gate: RwLock<()>,
    /// Per hart: start watermark of its running chunk (u64::MAX when idle),
    /// for pruning the history.
    start_wm: Vec<AtomicU64>,
    pub(crate) halt: AtomicBool,
    /// CREW strategy: page ownership.
    pub(crate) ownership: Option<crate::crew::Ownership>,
    squashes: AtomicU64,
    squashed_steps: AtomicU64,
    exclusive: AtomicU64,
    dma: AtomicU64,
    /// Sequence number of the newest write set in the history: a running
    /// chunk checks for conflicts early only when it moved.
    newest_published: AtomicU64,
    /// Count of committed entries that wrote memory, bumped after their
    /// write-back: what a spinning hart waits for.
    writes: Mutex<u64>,
    writes_cv: Condvar,
}

impl Recorder {
    /// A recorder for `harts` harts and `ram_size` bytes of RAM, with no
    /// trace writer yet.
    fn new(harts: u32, ram_size: u64, strategy: Strategy) -> Self {
        Self {
            commit: Mutex::new(CommitState {
                next_seq: 1,
                last_device_seq: 0,
                history: VecDeque::new(),
                log: Vec::new(),
                log_first_seq: 1,
                log_since: Instant::now(),
                log_dma_bytes: 0,
                writer: None,
                failure: None,
                reasons: [0; 8],
            }),
            wm: Watermark::new(),
            gate: RwLock::new(()),
            start_wm: (0..harts).map(|_| AtomicU64::new(u64::MAX)).collect(),
            halt: AtomicBool::new(false),
            ownership: (strategy == Strategy::Crew)
                .then(|| crate::crew::Ownership::new((ram_size >> 12) as usize, harts)),
            squashes: AtomicU64::new(0),
            squashed_steps: AtomicU64::new(0),
            exclusive: AtomicU64::new(0),
            dma: AtomicU64::new(0),
            newest_published: AtomicU64::new(0),
            writes: Mutex::new(0),
            writes_cv: Condvar::new(),
        }
    }

    /// Publishes entry `seq`'s write set (under the commit lock), for the
    /// conflict checks of chunks that started before it wrote back.
    fn publish(&self, state: &mut CommitState, seq: u64, pages: Vec<u32>) {
        if pages.is_empty() {
            return;
        }
        state.history.push_back(Published { seq, pages });
        self.newest_published.store(seq, Ordering::Release);
    }

    /// An entry that wrote memory has written back: wake spinning harts.
    fn published_writes(&self) {
        *self.writes.lock() += 1;
        self.writes_cv.notify_all();
    }

    /// Waits (at most `timeout`) until an entry that wrote memory commits
    /// after the `seen`th: a spinning hart re-runs only when memory changed.
    fn wait_for_writes(&self, seen: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut writes = self.writes.lock();
        while *writes == seen && !self.halt.load(Ordering::Relaxed) {
            if self.writes_cv.wait_until(&mut writes, deadline).timed_out() {
                break;
            }
        }
    }

    /// Appends an entry under the commit lock and hands full blocks to the writer.
    pub(crate) fn log(&self, state: &mut CommitState, entry: Entry) {
        if state.log.is_empty() {
            state.log_since = Instant::now();
        }
        if let Entry::Dma(dma) = &entry {
            state.log_dma_bytes += dma.writes.iter().map(|(_, data)| data.len()).sum::<usize>();
        }
        state.log.push(entry);
        if state.log.len() >= BLOCK_ENTRIES
            || state.log_dma_bytes >= BLOCK_MAX_DMA_BYTES
            || state.log_since.elapsed() >= BLOCK_MAX_AGE
        {
            self.flush_log(state);
        }
    }

    fn flush_log(&self, state: &mut CommitState) {
        state.log_dma_bytes = 0;
        let entries = std::mem::take(&mut state.log);
        let first = state.log_first_seq;
        state.log_first_seq += entries.len() as u64;
        if let Some(writer) = &state.writer
            && let Err(e) = writer.send(first, entries)
            && state.failure.is_none()
        {
            state.failure = Some(e.to_string());
            self.halt.store(true, Ordering::SeqCst);
        }
    }

    /// Drops published write sets no running chunk can conflict with.
    fn prune(&self, state: &mut CommitState) {
        let oldest = self
            .start_wm
            .iter()
            .map(|w| w.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
            .min(self.wm.get());
        while state.history.front().is_some_and(|p| p.seq <= oldest) {
            state.history.pop_front();
        }
    }
}

/// Host-side perturbation (xorshift64*): delays and chunk-size jitter, so
/// that tests see many different interleavings.
pub(crate) struct Perturb(pub(crate) u64);

impl Perturb {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn maybe_delay(&mut self) {
        let r = self.next();
        match r % 8 {
            0 => std::thread::sleep(Duration::from_micros(r % 300)),
            1 => std::thread::yield_now(),
            _ => {}
        }
    }
}

/// Hart `hart`'s perturbation seed, if perturbing.
fn perturb_seed(config: &RecordConfig, hart: HartId) -> Option<u64> {
    config
        .perturb
        .map(|s| (s ^ (u64::from(hart.0) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
}

/// Records `config.image` into `config.trace`. `stop` (Ctrl-C) ends the
/// recording cleanly: the trace gets its footer.
pub fn record(config: &RecordConfig, stop: &AtomicBool) -> Result<RecordOutcome, EngineError> {
    if config.strategy == Strategy::Crew {
        if config.disk.is_some() {
            return Err(EngineError::Unsupported(
                "the crew strategy does not record DMA: record disk guests with --strategy chunk or serial".into(),
            ));
        }
        if config.harts > crate::crew::MAX_CREW_HARTS {
            return Err(EngineError::Unsupported(format!(
                "the crew strategy records at most {} harts",
                crate::crew::MAX_CREW_HARTS
            )));
        }
    }
    let crew_failure: Mutex<Option<String>> = Mutex::new(None);
    let mut header = TraceHeader {
        writer: format!("samsara {}", env!("CARGO_PKG_VERSION")),
        strategy: config.strategy.name().into(),
        harts: config.harts,
        ram_size: config.ram_size,
        disk: config.disk.as_ref().map(|d| d.display().to_string()),
        chunk_size: config.chunk_size,
        check_every: config.check_every,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        ..TraceHeader::default()
    };
    let guest = LoadedGuest::from_guest(&config.guest, &mut header)?;
    let scratch = match &config.disk {
        Some(disk) => {
            let scratch = ScratchDisk::new(disk, &config.trace)?;
            header.disk_image = Some(scratch.describe(disk)?);
            Some(scratch)
        }
        None => None,
    };
    let board_config = BoardConfig {
        harts: config.harts,
        ram_size: config.ram_size,
        disk: scratch.as_ref().map(|s| s.path.clone()),
        disk_readonly: config.disk_readonly,
    };
    let recorder = Arc::new(Recorder::new(
        config.harts,
        config.ram_size,
        config.strategy,
    ));
    let sink = Arc::new(DmaSequencer {
        recorder: recorder.clone(),
        target: OnceLock::new(),
    });
    let output = OutputLog::default();
    let (console, watch) = WatchedOutput::new(Box::new(Console {
        echo: config.echo,
        capture: output.clone(),
    }));
    let sink_dyn: Arc<dyn CompletionSink> = sink.clone();
    let mut machine = guest.build(
        &board_config,
        Arc::new(HostClock::new()),
        Box::new(console),
        Some(sink_dyn),
    )?;
    drop(guest);
    if let Some(disk) = &machine.board.disk {
        let _ = sink
            .target
            .set((Arc::downgrade(disk), machine.board.ram.clone()));
    }
    header.initial_ram_blake3 = crate::digest::ram_blake3(&machine);
    let writer = TraceWriter::create(&config.trace, &header)?;
    recorder.commit.lock().writer = Some(writer);
    // As `samsara run`: a terminal on stdin is in raw mode for the
    // recording (Ctrl-A X leaves); a pipe is fed as it is.
    let quit = Arc::new(AtomicBool::new(false));
    let terminal = if config.stdin {
        RawTerminal::enter()
    } else {
        None
    };
    if terminal.is_some() {
        spawn_interactive_feeder(machine.board.uart.clone(), quit.clone());
    } else if config.stdin {
        samsara_machine::run::spawn_stdin_feeder(machine.board.uart.clone());
    }

    let limit_hit = AtomicBool::new(false);
    let mut supervisor = Supervisor::new(config.timeout, Some(&watch));
    let board = &machine.board;
    let signals = || Signals {
        stop: stop.load(Ordering::Relaxed) || quit.load(Ordering::Relaxed),
        guest_exit: board.exit.is_set(),
        limit_hit: limit_hit.load(Ordering::Relaxed),
        halt_requested: recorder.halt.load(Ordering::Relaxed),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = if config.strategy == Strategy::Serial {
            let harts = &mut machine.harts;
            let recorder = &*recorder;
            let limit_hit = &limit_hit;
            let serial = std::thread::Builder::new()
                .name("rec-serial".into())
                .spawn_scoped(scope, move || {
                    let mut workers: Vec<HartRecorder> = harts
                        .iter_mut()
                        .map(|hart| {
                            let mut w = HartRecorder::new(hart, board, recorder, config, None);
                            w.serial = true;
                            w.bus.relatch_after_mmio = true;
                            w.bus.table.direct = true;
                            w
                        })
                        .collect();
                    run_serial(&mut workers, limit_hit);
                })
                .expect("spawning the recording thread");
            vec![serial]
        } else if config.strategy == Strategy::Crew {
            machine
                .harts
                .iter_mut()
                .map(|hart| {
                    let recorder = &*recorder;
                    let limit_hit = &limit_hit;
                    let crew_failure = &crew_failure;
                    let seed = perturb_seed(config, hart.hart_id());
                    std::thread::Builder::new()
                        .name(format!("crew-hart{}", hart.hart_id().0))
                        .spawn_scoped(scope, move || {
                            let Some(own) = recorder.ownership.as_ref() else {
                                return;
                            };
                            let mut worker = crate::crew::CrewHart::new(
                                hart, board, recorder, own, config, seed,
                            );
                            if let Err(e) = worker.run(limit_hit) {
                                crew_failure.lock().get_or_insert(e);
                                recorder.halt.store(true, Ordering::SeqCst);
                            }
                        })
                        .expect("spawning a hart thread")
                })
                .collect()
        } else {
            machine
                .harts
                .iter_mut()
                .map(|hart| {
                    let recorder = &*recorder;
                    let limit_hit = &limit_hit;
                    let seed = perturb_seed(config, hart.hart_id());
                    std::thread::Builder::new()
                        .name(format!("rec-hart{}", hart.hart_id().0))
                        .spawn_scoped(scope, move || {
                            let mut worker = HartRecorder::new(hart, board, recorder, config, seed);
                            worker.run(limit_hit);
                        })
                        .expect("spawning a hart thread")
                })
                .collect()
        };
        supervisor.watch_until(
            || workers.iter().all(|w| w.is_finished()),
            signals,
            |_| {
                recorder.halt.store(true, Ordering::SeqCst);
                board.irq.wake_all();
            },
        );
    });
    // DMA completions still in flight are dropped: they were not part of the
    // recorded run (the guest never saw them).
    let wall = supervisor.start().elapsed();
    sink.close();
    board.uart.flush_output();

    drop(terminal);
    let exit = recorded_exit(supervisor.ending(board.exit.get(), signals()));
    let (hart_digests, ram_blake3) = machine_digests(&machine);
    let mut state = recorder.commit.lock();
    recorder.flush_log(&mut state);
    let failure = state.failure.take();
    let reasons = state.reasons;
    let entries = state.next_seq - 1;
    let writer = state.writer.take();
    drop(state);
    let printed = output.summary();
    let footer = Footer {
        entries,
        exit: if failure.is_some() {
            RecordedExit::Aborted
        } else {
            exit
        },
        steps_per_hart: machine.harts.iter().map(|h| h.steps().0).collect(),
        hart_digests,
        ram_blake3,
        output: printed.head,
        output_len: Some(printed.len),
        output_blake3: Some(printed.blake3),
        stats: RecordStats {
            wall_ns: wall.as_nanos() as u64,
            squashes: recorder.squashes.load(Ordering::Relaxed),
            squashed_steps: recorder.squashed_steps.load(Ordering::Relaxed),
            exclusive_chunks: recorder.exclusive.load(Ordering::Relaxed),
            dma: recorder.dma.load(Ordering::Relaxed),
        },
    };
    let writer = writer.ok_or_else(|| EngineError::Internal("trace writer missing".into()))?;
    if let Some(reason) = crew_failure.into_inner() {
        let _ = writer.finish(None);
        return Err(EngineError::Unsupported(reason));
    }
    if let Some(failure) = failure {
        // Whatever reached the file is a valid partial trace.
        let _ = writer.finish(None);
        return Err(EngineError::TraceWrite(failure));
    }
    let stats = writer.finish(Some(footer.clone()))?;
    drop(scratch);
    Ok(RecordOutcome {
        footer,
        writer: stats,
        wall,
        reasons,
    })
}

/// A hart's chunk size, adapted to how often its chunks conflict. Chunks
/// start at `RESTART_CHUNK_SIZE` (or the limit, if smaller); one that runs
/// its full size without a squash doubles it up to the limit, so where
/// harts share little chunks are long and the log short. A squash halves
/// it for the retry; once a retry commits, the next chunk starts again at
/// the restart size. Repeated squashes make the retry exclusive.
#[derive(Debug)]
struct ChunkSizer {
    limit: u64,
    size: u64,
    squashes_in_row: u32,
}

impl ChunkSizer {
    fn new(limit: u64) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            size: limit.min(RESTART_CHUNK_SIZE),
            squashes_in_row: 0,
        }
    }

    /// Whether the next attempt must run alone (it cannot conflict then).
    fn exclusive(&self) -> bool {
        self.squashes_in_row >= EXCLUSIVE_AFTER_SQUASHES
            || (self.squashes_in_row > 0 && self.size < MIN_CHUNK_SIZE)
    }

    fn squashed(&mut self) {
        self.squashes_in_row += 1;
        self.size = (self.size / 2).max(1);
    }

    fn committed(&mut self, reason: Truncation) {
        if self.squashes_in_row > 0 {
            self.size = self.limit.min(RESTART_CHUNK_SIZE);
        } else if reason == Truncation::SizeLimit {
            self.size = self.size.saturating_mul(2).min(self.limit);
        }
        self.squashes_in_row = 0;
    }
}

/// One hart's recording loop and its per-chunk state.
struct HartRecorder<'a> {
    hart: &'a mut Hart,
    board: &'a Board,
    rec: &'a Recorder,
    bus: ChunkBus<'a>,
    sets: ChunkSets,
    id: usize,
    chunk_size: u64,
    limit: u64,
    check_every: u64,
    chunks: u64,
    /// The interrupt lines the trace says this hart last saw.
    logged_lines: u64,
    /// Serial strategy: this hart never runs beside another; devices are
    /// accessed inside quanta and memory is written directly.
    serial: bool,
    perturb: Option<Perturb>,
}

/// How a chunk attempt went.
enum Attempt {
    Committed,
    Squashed,
}

impl<'a> HartRecorder<'a> {
    fn new(
        hart: &'a mut Hart,
        board: &'a Board,
        rec: &'a Recorder,
        config: &RecordConfig,
        seed: Option<u64>,
    ) -> Self {
        let id = hart.hart_id();
        hart.set_stop_on_pause(config.strategy == Strategy::Chunk);
        Self {
            hart,
            board,
            rec,
            bus: ChunkBus::new(board, id, Mode::Record),
            sets: ChunkSets::default(),
            id: id.index(),
            chunk_size: config.chunk_size.max(1),
            limit: config.max_instructions.unwrap_or(u64::MAX),
            check_every: config.check_every,
            chunks: 0,
            logged_lines: 0,
            serial: false,
            perturb: seed.map(Perturb),
        }
    }

    fn halted(&self) -> bool {
        self.rec.halt.load(Ordering::Relaxed)
    }

    fn run(&mut self, limit_hit: &AtomicBool) {
        let mut sizer = ChunkSizer::new(self.chunk_size);
        while !self.halted() {
            if self.hart.steps().0 >= self.limit {
                limit_hit.store(true, Ordering::SeqCst);
                break;
            }
            let exclusive = sizer.exclusive();
            let mut budget = sizer.size.min(self.limit - self.hart.steps().0);
            if let Some(p) = &mut self.perturb {
                p.maybe_delay();
                budget = (budget / 2 + p.next() % (budget / 2 + 1)).max(1);
            }
            let seen_writes = *self.rec.writes.lock();
            let (attempt, reason) = self.chunk(budget, exclusive);
            match attempt {
                Attempt::Squashed => {
                    sizer.squashed();
                    continue;
                }
                Attempt::Committed => sizer.committed(reason),
            }
            match reason {
                Truncation::DeviceAccess => self.device_op(),
                // A spinning hart waits until someone else commits: running
                // on would only spin through stale memory.
                Truncation::Spin => self.rec.wait_for_writes(seen_writes, SPIN_WAIT),
                Truncation::Wfi if !self.halted() => {
                    let mie = self.hart.state().csr.mie;
                    self.board
                        .irq
                        .wait_for_interrupt(HartId(self.id as u32), mie, &self.rec.halt);
                }
                _ => {}
            }
        }
        self.rec.start_wm[self.id].store(u64::MAX, Ordering::Release);
    }

    /// Latches the interrupt lines for a new chunk, logging a change.
    fn latch_lines(&mut self) {
        let lines = self.board.irq.lines(HartId(self.id as u32));
        self.bus.lines = lines;
        self.bus.events.clear();
        self.bus.quiet_accesses.clear();
        if lines != self.logged_lines {
            self.bus.events.push(Event::Lines(lines));
        }
    }

    /// Runs and commits (or squashes) one chunk of at most `budget` steps.
    fn chunk(&mut self, budget: u64, exclusive: bool) -> (Attempt, Truncation) {
        let rec = self.rec;
        let _shared;
        let _alone;
        let start_wm = if exclusive {
            _alone = rec.gate.write();
            // Everything already sequenced must be written back first.
            let last = rec.commit.lock().next_seq - 1;
            rec.wm.wait_for(last);
            rec.start_wm[self.id].store(last, Ordering::Release);
            last
        } else {
            _shared = rec.gate.read();
            // Read and publish under the commit lock: a prune between the
            // two could drop write sets this chunk must be checked against.
            let _state = rec.commit.lock();
            let wm = rec.wm.get();
            rec.start_wm[self.id].store(wm, Ordering::Release);
            wm
        };
        let snapshot = self.hart.snapshot();
        self.hart.flush_tlb();
        self.hart.clear_reservation();
        self.latch_lines();
        self.bus.mmio_allowed = self.serial;

        let start_steps = self.hart.steps().0;
        let mut reason = Truncation::SizeLimit;
        // The architectural state at this chunk's last `pause`: a hart that
        // comes back to it unchanged is spinning on stale memory, while one
        // that changed (a counted delay loop) is making progress.
        let mut last_pause: Option<(u64, [u64; 32])> = None;
        // Early checks look only at write sets published since the last one
        // (the final check looks at all since `start_wm`: pages touched
        // after an early check may meet an entry it passed).
        let mut scanned = start_wm;
        let mut doomed = false;
        loop {
            let done = self.hart.steps().0 - start_steps;
            if done >= budget {
                break;
            }
            let mut batch_ended = true;
            match self.hart.run(&mut self.bus, BATCH.min(budget - done)) {
                StopReason::Wfi => {
                    reason = Truncation::Wfi;
                    break;
                }
                StopReason::DeviceAccess => {
                    reason = Truncation::DeviceAccess;
                    break;
                }
                StopReason::Pause => {
                    let state = self.hart.state();
                    let here = (state.pc, state.x);
                    if last_pause == Some(here) {
                        reason = Truncation::Spin;
                        break;
                    }
                    last_pause = Some(here);
                    batch_ended = false;
                }
                StopReason::StepLimit => {}
            }
            if self.hart.steps().0 - start_steps >= budget {
                break;
            }
            if self.halted() {
                reason = Truncation::Stop;
                break;
            }
            if self.board.irq.lines(HartId(self.id as u32)) != self.bus.lines {
                reason = Truncation::Interrupt;
                break;
            }
            // A chunk that already touched a page someone committed since it
            // started will be squashed: stop now rather than run it out.
            if !exclusive && rec.newest_published.load(Ordering::Acquire) > scanned {
                let state = rec.commit.lock();
                doomed = self.conflicts(&state, scanned);
                scanned = state.next_seq - 1;
                if doomed {
                    break;
                }
            }
            // Delays go between batches, not after every `pause` of a
            // delay loop (thousands per chunk).
            if let Some(p) = self.perturb.as_mut().filter(|_| batch_ended) {
                p.maybe_delay();
            }
        }
        if self.halted() && reason == Truncation::SizeLimit {
            reason = Truncation::Stop;
        }
        let steps = self.hart.steps().0 - start_steps;
        self.bus.table.walk(&mut self.sets);
        // A chunk already known to be squashed needs no digests.
        let check = if doomed { None } else { self.make_check() };

        // Phase 1: conflict check, sequence number, publication.
        let mut state = rec.commit.lock();
        if doomed || self.conflicts(&state, start_wm) {
            drop(state);
            self.bus.table.reset(&self.sets);
            self.hart.restore(&snapshot);
            rec.squashes.fetch_add(1, Ordering::Relaxed);
            rec.squashed_steps.fetch_add(steps, Ordering::Relaxed);
            return (Attempt::Squashed, reason);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        rec.publish(&mut state, seq, self.sets.dirty.clone());
        state.reasons[reason as usize] += 1;
        if exclusive && !self.serial {
            rec.exclusive.fetch_add(1, Ordering::Relaxed);
        }
        self.logged_lines = self.bus.lines;
        let entry = ChunkRecord {
            hart: self.id as u8,
            steps,
            back: seq - start_wm,
            reason,
            exclusive,
            events: std::mem::take(&mut self.bus.events),
            check,
        };
        rec.log(&mut state, Entry::Chunk(entry));
        rec.prune(&mut state);
        drop(state);

        // Phase 2: write back, concurrently with other committers (their
        // write sets cannot intersect ours: the conflict check saw to it).
        // Phase 3: retire.
        self.write_back_and_retire(seq);
        (Attempt::Committed, reason)
    }

    /// Whether a write set published after entry `after` touches a page
    /// this chunk has touched (the commit lock held).
    fn conflicts(&self, state: &CommitState, after: u64) -> bool {
        state.history.iter().filter(|p| p.seq > after).any(|p| {
            p.pages
                .iter()
                .any(|&pg| self.bus.table.touched(pg as usize))
        })
    }

    /// Commit phases 2 and 3 of entry `seq`: private pages to shared RAM,
    /// retirement into the watermark, spinning harts woken if memory changed.
    fn write_back_and_retire(&mut self, seq: u64) {
        let rec = self.rec;
        self.write_back();
        rec.wm.retire(seq);
        if !self.sets.dirty.is_empty() {
            rec.published_writes();
        }
        rec.start_wm[self.id].store(u64::MAX, Ordering::Release);
        self.chunks += 1;
    }

    fn write_back(&mut self) {
        for &p in &self.sets.dirty {
            let page = self.bus.guest_page(p);
            if let (Some(buf), Some(shared)) = (
                self.bus.table.private(p as usize),
                self.board.ram.host_page(page),
            ) {
                write_back(buf, shared);
            }
        }
        self.bus.table.reset(&self.sets);
    }

    /// Verification digests for every `check_every`th chunk of this hart.
    fn make_check(&self) -> Option<Box<Check>> {
        if self.check_every == 0 || !self.chunks.is_multiple_of(self.check_every) {
            return None;
        }
        let state = self.hart.state();
        let pages = self
            .sets
            .dirty
            .iter()
            .filter_map(|&p| {
                let page = self.bus.guest_page(p);
                match self.bus.table.private(p as usize) {
                    Some(buf) => Some((page, page_hash(buf.words()))),
                    // Direct writes (serial strategy): the page is in RAM.
                    None => self
                        .board
                        .ram
                        .host_page(page)
                        .map(|host| (page, page_hash(shared_words(host)))),
                }
            })
            .collect();
        Some(Box::new(Check {
            hart_digest: state.digest(),
            pc: state.pc,
            x: state.x,
            pages,
        }))
    }

    /// The device access that ended the last chunk, in its own place in the
    /// global order: a one-instruction chunk with devices enabled, run while
    /// holding the commit lock once everything before it has written back,
    /// so its side effects are totally ordered with every commit.
    fn device_op(&mut self) {
        let rec = self.rec;
        if self.halted() {
            return;
        }
        let _shared = rec.gate.read();
        let mut state = rec.commit.lock();
        let seq = state.next_seq;
        if !rec.wm.wait_for(seq - 1) {
            return;
        }
        state.next_seq += 1;
        rec.start_wm[self.id].store(seq - 1, Ordering::Release);
        self.hart.flush_tlb();
        self.hart.clear_reservation();
        self.latch_lines();
        self.bus.mmio_allowed = true;
        let start_steps = self.hart.steps().0;
        self.hart.run(&mut self.bus, 1);
        self.bus.mmio_allowed = false;
        let steps = self.hart.steps().0 - start_steps;
        self.bus.table.walk(&mut self.sets);
        let check = self.make_check();
        rec.publish(&mut state, seq, self.sets.dirty.clone());
        state.reasons[Truncation::DeviceOp as usize] += 1;
        self.logged_lines = self.bus.lines;
        let entry = ChunkRecord {
            hart: self.id as u8,
            steps,
            back: 1,
            reason: Truncation::DeviceOp,
            exclusive: false,
            events: std::mem::take(&mut self.bus.events),
            check,
        };
        rec.log(&mut state, Entry::Chunk(entry));
        self.write_back_and_retire(seq);
    }
}

/// The serial strategy's scheduler: one host thread, harts round-robin, a
/// quantum (the chunk size) each, harts asleep in WFI skipped until one of
/// their enabled interrupt lines rises.
fn run_serial(workers: &mut [HartRecorder<'_>], limit_hit: &AtomicBool) {
    let mut asleep = vec![false; workers.len()];
    'outer: while !workers.first().is_none_or(HartRecorder::halted) {
        let mut ran = false;
        for (w, asleep) in workers.iter_mut().zip(asleep.iter_mut()) {
            if w.halted() {
                break 'outer;
            }
            if w.hart.steps().0 >= w.limit {
                limit_hit.store(true, Ordering::SeqCst);
                w.rec.halt.store(true, Ordering::SeqCst);
                break 'outer;
            }
            if *asleep {
                let mie = w.hart.state().csr.mie;
                if w.board.irq.lines(HartId(w.id as u32)) & mie == 0 {
                    continue;
                }
                *asleep = false;
            }
            let budget = w.chunk_size.min(w.limit - w.hart.steps().0);
            let (_, reason) = w.chunk(budget, true);
            ran = true;
            *asleep = reason == Truncation::Wfi;
        }
        if !ran {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    for w in workers.iter() {
        w.rec.start_wm[w.id].store(u64::MAX, Ordering::Release);
    }
}

/// The recorder's virtio completion sink (Samsara's DMA recorder): each
/// completion takes a sequence number like a chunk, is applied once every
/// earlier entry has written back, and publishes the pages it wrote, so
/// chunks that touched them meanwhile are squashed. Its bytes go to the log.
struct DmaSequencer {
    recorder: Arc<Recorder>,
    target: OnceLock<(Weak<VirtioBlk>, Arc<GuestRam>)>,
}

impl DmaSequencer {
    fn close(&self) {
        self.recorder.wm.abort();
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
        let seq = state.next_seq;
        if !rec.wm.wait_for(seq - 1) {
            return;
        }
        state.next_seq += 1;
        let memory = CapturingMemory {
            ram: ram.clone(),
            writes: Mutex::new(Vec::new()),
        };
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
        rec.publish(&mut state, seq, pages);
        rec.dma.fetch_add(1, Ordering::Relaxed);
        rec.log(&mut state, Entry::Dma(DmaRecord { writes }));
        rec.wm.retire(seq);
        rec.published_writes();
    }
}

/// Guest memory for a DMA completion: writes go to RAM and are kept for the log.
struct CapturingMemory {
    ram: Arc<GuestRam>,
    writes: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl GuestMemory for CapturingMemory {
    fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        self.ram.read(addr, buf).map_err(|_| DmaError::OutOfRange {
            addr,
            len: buf.len() as u64,
        })
    }

    fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), DmaError> {
        self.ram
            .write(addr, data)
            .map_err(|_| DmaError::OutOfRange {
                addr,
                len: data.len() as u64,
            })?;
        self.writes.lock().push((addr.raw(), data.to_vec()));
        Ok(())
    }
}

/// A private copy of the user's disk image: the guest may write its disk,
/// but recording never modifies the user's file. Removed when dropped.
struct ScratchDisk {
    path: PathBuf,
}

impl ScratchDisk {
    /// Size and BLAKE3 of the copy (the disk as the recording starts),
    /// under the user's path.
    fn describe(&self, disk: &Path) -> Result<TraceFile, EngineError> {
        let failed = |e: std::io::Error| EngineError::Disk {
            path: disk.display().to_string(),
            reason: format!(
                "cannot hash the private copy at {}: {e}",
                self.path.display()
            ),
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

    fn new(disk: &Path, trace: &Path) -> Result<Self, EngineError> {
        let mut name = trace.as_os_str().to_owned();
        name.push(".disk-scratch");
        let path = PathBuf::from(name);
        std::fs::copy(disk, &path).map_err(|e| EngineError::Disk {
            path: disk.display().to_string(),
            reason: format!("cannot make a private copy at {}: {e}", path.display()),
        })?;
        Ok(Self { path })
    }
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dma(bytes: usize) -> Entry {
        Entry::Dma(DmaRecord {
            writes: vec![(0x8000_0000, vec![0xa5; bytes])],
        })
    }

    #[test]
    fn chunk_sizes_grow_while_clean_and_restart_after_a_squash() {
        let mut s = ChunkSizer::new(1_000_000);
        assert_eq!(s.size, RESTART_CHUNK_SIZE);
        // Full-size clean chunks double the size, up to the limit.
        for want in [200_000, 400_000, 800_000, 1_000_000, 1_000_000] {
            s.committed(Truncation::SizeLimit);
            assert_eq!(s.size, want);
        }
        // A chunk cut short (a device access) leaves it alone.
        s.committed(Truncation::DeviceAccess);
        assert_eq!(s.size, 1_000_000);
        // Squashes halve it for the retries; the last ones run alone.
        for k in 1..=EXCLUSIVE_AFTER_SQUASHES {
            assert!(!s.exclusive());
            s.squashed();
            assert_eq!(s.size, 1_000_000 >> k);
        }
        assert!(s.exclusive());
        // Once a retry commits, the next chunk starts over.
        s.committed(Truncation::SizeLimit);
        assert_eq!((s.size, s.exclusive()), (RESTART_CHUNK_SIZE, false));
        // A retry below the minimum size runs alone; a small limit is kept.
        let mut small = ChunkSizer::new(3_000);
        assert_eq!(small.size, 3_000);
        small.squashed();
        assert!(small.exclusive(), "a 1 500-instruction retry runs alone");
        small.committed(Truncation::SizeLimit);
        assert_eq!((small.size, small.exclusive()), (3_000, false));
    }

    /// DMA data cut blocks by size: a fast disk cannot overfill one block's
    /// io stream before the block is old enough to be cut.
    #[test]
    fn dma_data_cut_blocks_by_size() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("t.trace");
        let rec = Recorder::new(1, 1 << 30, Strategy::Chunk);
        let mut state = rec.commit.lock();
        state.writer =
            Some(TraceWriter::create(&path, &TraceHeader::default()).expect("creating a trace"));
        rec.log(&mut state, dma(BLOCK_MAX_DMA_BYTES / 2));
        assert_eq!(state.log.len(), 1, "half a block's worth stays pending");
        rec.log(&mut state, dma(BLOCK_MAX_DMA_BYTES / 2));
        assert!(state.log.is_empty(), "a full block's worth is handed over");
        assert_eq!(state.log_first_seq, 3);
        rec.log(&mut state, dma(1));
        assert_eq!(state.log.len(), 1, "the byte count starts again");
        rec.flush_log(&mut state);
        let writer = state.writer.take().expect("the writer");
        writer.finish(None).expect("finishing the trace");
        assert!(state.failure.is_none());
    }
}
