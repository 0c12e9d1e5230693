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

mod chunk;
mod crew;
mod disk;
mod log;
mod serial;

use samsara_cpu::CpuEngine;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use samsara_cpu::Hart;
use samsara_machine::board::{Board, BoardConfig};
use samsara_machine::clock::HostClock;
use samsara_machine::console::{PanicWatch, RawTerminal, WatchedOutput, spawn_interactive_feeder};
use samsara_machine::devices::uart::SerialOutput;
use samsara_machine::devices::virtio::block::CompletionSink;
use samsara_machine::machine::Machine;
use samsara_machine::supervisor::{Signals, Supervisor};
use samsara_machine::tcp_console::TcpConsole;
use samsara_trace::{
    BlockSink, Footer, RamDigest, RecordStats, RecordedExit, TraceHeader, TraceWriter, WriterStats,
};
use samsara_types::HartId;

use self::chunk::{ChunkRecorder, HartRecorder};
use self::crew::{CREW_BATCH, CrewHart, CrewRecorder, MAX_CREW_HARTS};
use self::disk::{DmaSequencer, ScratchDisk};
use self::log::ClosedLog;
use crate::digest::{Console, OutputLog, digests};
use crate::exit::recorded_exit;
use crate::guest::{Guest, LoadedGuest};
use crate::replay::{LiveDevices, Takeover};
use crate::{BATCH, EngineError};

pub(crate) use self::crew::Ownership;
pub(crate) use self::disk::CapturingMemory;

/// Default chunk size limit, in instructions: chunks reach it only where
/// harts do not conflict (see `chunk::RESTART_CHUNK_SIZE`; BENCHMARKS.md has the
/// measurements behind both).
pub const DEFAULT_CHUNK_SIZE: u64 = 1_000_000;
/// Default quantum of the serial strategy, in instructions.
pub const DEFAULT_SERIAL_QUANTUM: u64 = 100_000;

pub use samsara_trace::Strategy;

/// The default `chunk_size` of a strategy: the chunk size limit, or the
/// serial strategy's quantum.
pub fn default_chunk_size(strategy: Strategy) -> u64 {
    match strategy {
        Strategy::Serial => DEFAULT_SERIAL_QUANTUM,
        Strategy::Chunk | Strategy::Crew => DEFAULT_CHUNK_SIZE,
    }
}

/// Steps per `Hart::run` call inside an entry, as stored in the header.
fn batch(strategy: Strategy) -> u64 {
    match strategy {
        Strategy::Chunk | Strategy::Serial => BATCH,
        Strategy::Crew => CREW_BATCH,
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
    /// How the harts execute guest code (the trace does not depend on it).
    pub cpu: CpuEngine,
    /// The console as a TCP socket (`--serial tcp:HOST:PORT`), listening.
    pub console: Option<TcpConsole>,
    /// A hot standby the trace streams to, under the output rule
    /// (chunk strategy).
    pub standby: Option<Arc<dyn StandbyLink>>,
}

/// A hot standby attached to a recording (`samsara-standby` implements
/// it over TCP): it receives every byte of the trace as the writer writes
/// it, and holds the console's output until it has acknowledged the entry
/// that produced it (VMware FT's output rule).
pub trait StandbyLink: Send + Sync + std::fmt::Debug {
    /// Where the trace writer mirrors the trace.
    fn mirror(&self) -> Box<dyn BlockSink>;
    /// The console's outside-world sink under the output rule: bytes
    /// written while `producing` holds entry N are released once the
    /// standby has acknowledged entry N. The sink calls `held` when it
    /// holds bytes back: the log then hands its entries to the writer at
    /// once instead of when they are [`STANDBY_BLOCK_AGE`] old.
    fn hold_output(
        &self,
        inner: SerialOutput,
        producing: Arc<AtomicU64>,
        held: Arc<dyn Fn() + Send + Sync>,
    ) -> SerialOutput;
}

/// With a standby, entries waiting for their block are handed to the
/// writer once they are this old: the standby's lag (and the output
/// rule's delay) is this plus the time to encode and send a block.
pub const STANDBY_BLOCK_AGE: Duration = Duration::from_millis(2);

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
        if config.harts > MAX_CREW_HARTS {
            return Err(EngineError::Unsupported(format!(
                "the crew strategy records at most {} harts",
                MAX_CREW_HARTS
            )));
        }
    }
    if config.standby.is_some() && config.strategy != Strategy::Chunk {
        return Err(EngineError::Unsupported(
            "a hot standby follows recordings of the chunk strategy (the default): record without --strategy".into(),
        ));
    }
    let mut header = TraceHeader {
        writer: format!("samsara {}", env!("CARGO_PKG_VERSION")),
        strategy: config.strategy,
        batch: Some(batch(config.strategy)),
        harts: config.harts,
        ram_size: config.ram_size,
        disk: config.disk.as_ref().map(|d| d.display().to_string()),
        disk_readonly: config.disk.is_some() && config.disk_readonly,
        chunk_size: config.chunk_size,
        check_every: config.check_every,
        ram_digest: RamDigest::Sparse,
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
        cpu: config.cpu,
        harts: config.harts,
        ram_size: config.ram_size,
        disk: scratch.as_ref().map(|s| s.path.clone()),
        disk_readonly: config.disk_readonly,
    };
    let recorder = match config.strategy {
        Strategy::Chunk | Strategy::Serial => StrategyRecorder::Chunk(Arc::new(
            ChunkRecorder::new(config.harts, config.ram_size, 1, Vec::new()),
        )),
        Strategy::Crew => {
            StrategyRecorder::Crew(Box::new(CrewRecorder::new(config.harts, config.ram_size)))
        }
    };
    let sink = match &recorder {
        StrategyRecorder::Chunk(rec) => Some(Arc::new(DmaSequencer::new(rec.clone()))),
        StrategyRecorder::Crew(_) => None,
    };
    let output = OutputLog::default();
    let (console, watch) = WatchedOutput::new(Box::new(console_sink(config, &output, &recorder)));
    let sink_dyn = sink.clone().map(|s| s as Arc<dyn CompletionSink>);
    let mut machine = guest.build(
        &board_config,
        Arc::new(HostClock::new()),
        Box::new(console),
        sink_dyn,
    )?;
    drop(guest);
    if let (Some(disk), Some(sink)) = (&machine.board.disk, &sink) {
        let _ = sink
            .target
            .set((Arc::downgrade(disk), machine.board.ram.clone()));
    }
    // SAFETY: no hart runs yet, and no DMA before one asks for it.
    header.initial_ram_blake3 =
        unsafe { crate::digest::ram_digest(&machine.board.ram, header.ram_digest) };
    let mirror = config.standby.as_ref().map(|s| s.mirror());
    let writer = TraceWriter::create_mirrored(&config.trace, &header, mirror)?;
    recorder.set_writer(writer);
    let Machine { board, harts, .. } = &mut machine;
    let outcome = run_recording(
        harts,
        board,
        &recorder,
        sink.as_ref(),
        &output,
        &watch,
        config,
        &header,
        stop,
    );
    drop(scratch);
    outcome
}

/// Takes over from a primary that is gone: records on from where a hot
/// standby's replay of its trace ended, appending to that trace (so that a
/// replay of the whole trace from the start goes through the takeover).
/// The machine's clock and console must already be live (the caller
/// switched them); `config` says where to stream next and how to record
/// (its guest, machine shape and trace path are the takeover's).
pub fn take_over(
    takeover: Takeover,
    live: &LiveDevices,
    config: &RecordConfig,
    stop: &AtomicBool,
) -> Result<RecordOutcome, EngineError> {
    let Takeover {
        header,
        trace,
        mut harts,
        board,
        output,
        lines,
        next_seq,
        trace_len,
        next_block,
        disk,
        panic,
    } = takeover;
    if header.strategy != Strategy::Chunk {
        return Err(EngineError::Unsupported(format!(
            "a standby takes over recordings of the chunk strategy, not {:?}",
            header.strategy
        )));
    }
    let config = RecordConfig {
        strategy: header.strategy,
        trace: trace.clone(),
        harts: header.harts,
        ram_size: header.ram_size,
        chunk_size: header.chunk_size,
        check_every: header.check_every,
        ..config.clone()
    };
    // The recorder's code watch starts empty: no translation made during
    // the replay may outlive a write it did not see.
    for hart in &mut harts {
        hart.flush_tlb();
        hart.flush_decode_cache();
    }
    let rec = Arc::new(ChunkRecorder::new(
        header.harts,
        header.ram_size,
        next_seq,
        lines,
    ));
    let recorder = StrategyRecorder::Chunk(rec.clone());
    let mirror = config.standby.as_ref().map(|s| s.mirror());
    let writer = TraceWriter::append(&trace, trace_len, next_block, next_seq - 1, mirror)?;
    recorder.set_writer(writer);
    // Live from here: time goes on from the last recorded value, and the
    // console speaks (under the output rule if a next standby follows).
    // (Not from a raised timer's deadline: the lines a hart last logged
    // may show MTIP for a `mtimecmp` since moved on, up to "never" —
    // `u64::MAX` — which would stop time for good.)
    live.clock.go_live();
    if let Some(external) = console_sink(&config, &output, &recorder).external {
        live.console.switch(external);
    }
    // The disk's requests the primary's log never completed are this
    // recording's first DMA entries.
    let sink = match (&disk, &board.disk) {
        (Some(standby_disk), Some(device)) => {
            let sink = Arc::new(DmaSequencer::new(rec.clone()));
            let _ = sink.target.set((Arc::downgrade(device), board.ram.clone()));
            standby_disk.go_live(sink.clone());
            Some(sink)
        }
        _ => None,
    };
    run_recording(
        &mut harts,
        &board,
        &recorder,
        sink.as_ref(),
        &output,
        &panic,
        &config,
        &header,
        stop,
    )
}

/// The console's sink: the output log (for the footer, never held) and
/// what the outside world sees (stdout with `echo`, or the TCP console),
/// held under the output rule when a standby follows.
fn console_sink(config: &RecordConfig, output: &OutputLog, recorder: &StrategyRecorder) -> Console {
    let external: Option<SerialOutput> = match (&config.console, config.echo) {
        (Some(tcp), _) => Some(tcp.output()),
        (None, true) => Some(Box::new(std::io::stdout())),
        (None, false) => None,
    };
    let external = match (&config.standby, recorder) {
        (Some(standby), StrategyRecorder::Chunk(rec)) => external.map(|e| {
            let flush = rec.flush.clone();
            standby.hold_output(e, rec.producing.clone(), Arc::new(move || flush.wake()))
        }),
        _ => external,
    };
    Console {
        echo: false,
        capture: output.clone(),
        external,
    }
}

/// Runs the recording threads until the guest or the user ends the run,
/// then closes the trace with its footer.
#[allow(clippy::too_many_arguments)]
fn run_recording(
    harts: &mut [Hart],
    board: &Board,
    recorder: &StrategyRecorder,
    sink: Option<&Arc<DmaSequencer>>,
    output: &OutputLog,
    watch: &Arc<PanicWatch>,
    config: &RecordConfig,
    header: &TraceHeader,
    stop: &AtomicBool,
) -> Result<RecordOutcome, EngineError> {
    let crew_failure: Mutex<Option<String>> = Mutex::new(None);
    if let Some(tcp) = &config.console {
        tcp.serve(board.uart.clone());
    }
    // As `samsara run`: a terminal on stdin is in raw mode for the
    // recording (Ctrl-A X leaves); a pipe is fed as it is.
    let quit = Arc::new(AtomicBool::new(false));
    let terminal = if config.stdin {
        RawTerminal::enter()
    } else {
        None
    };
    if terminal.is_some() {
        spawn_interactive_feeder(board.uart.clone(), quit.clone());
    } else if config.stdin {
        samsara_machine::run::spawn_stdin_feeder(board.uart.clone());
    }

    let limit_hit = AtomicBool::new(false);
    let mut supervisor = Supervisor::new(config.timeout, Some(watch));
    let recording = AtomicBool::new(true);
    let signals = || Signals {
        stop: stop.load(Ordering::Relaxed) || quit.load(Ordering::Relaxed),
        guest_exit: board.exit.is_set(),
        limit_hit: limit_hit.load(Ordering::Relaxed),
        halt_requested: recorder.halt().load(Ordering::Relaxed),
    };
    std::thread::scope(|scope| {
        // A standby gets entries as soon as they are this old, not when a
        // block fills: its lag and the output rule's delay are bounded.
        if let (Some(_), StrategyRecorder::Chunk(rec)) = (&config.standby, recorder) {
            let recording = &recording;
            std::thread::Builder::new()
                .name("standby-flush".into())
                .spawn_scoped(scope, move || {
                    while recording.load(Ordering::Relaxed) {
                        // Held output: now. Otherwise entries this old.
                        let age = if rec.flush.wait(STANDBY_BLOCK_AGE) {
                            Duration::ZERO
                        } else {
                            STANDBY_BLOCK_AGE
                        };
                        if !rec.commit.lock().log.flush_if_older(age) {
                            rec.halt.store(true, Ordering::SeqCst);
                        }
                    }
                })
                .expect("spawning the standby's flusher");
        }
        let workers: Vec<_> = recorder
            .jobs(harts, board, config, &limit_hit, &crew_failure)
            .into_iter()
            .map(|(name, job)| {
                std::thread::Builder::new()
                    .name(name)
                    .spawn_scoped(scope, job)
                    .expect("spawning a recording thread")
            })
            .collect();
        supervisor.watch_until(
            || workers.iter().all(|w| w.is_finished()),
            signals,
            |_| {
                recorder.halt().store(true, Ordering::SeqCst);
                board.irq.wake_all();
            },
        );
        recording.store(false, Ordering::Relaxed);
        if let StrategyRecorder::Chunk(rec) = recorder {
            rec.flush.wake();
        }
    });
    // DMA completions still in flight are dropped: they were not part of the
    // recorded run (the guest never saw them).
    let wall = supervisor.start().elapsed();
    if let Some(sink) = sink {
        sink.close();
    }
    board.uart.flush_output();

    drop(terminal);
    let exit = recorded_exit(supervisor.ending(board.exit.get(), signals()));
    // SAFETY: the hart threads have ended, and the DMA sink is closed (no
    // completion is being applied, none will be).
    let (hart_digests, ram_blake3) = unsafe { digests(harts, &board.ram, header.ram_digest) };
    let ClosedLog {
        entries,
        failure,
        reasons,
        writer,
    } = recorder.close_log();
    let printed = output.summary();
    let footer = Footer {
        entries,
        exit: if failure.is_some() {
            RecordedExit::Aborted
        } else {
            exit
        },
        steps_per_hart: harts.iter().map(|h| h.steps().0).collect(),
        hart_digests,
        ram_blake3,
        output: printed.head,
        output_len: Some(printed.len),
        output_blake3: Some(printed.blake3),
        stats: recorder.stats(wall),
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
    Ok(RecordOutcome {
        footer,
        writer: stats,
        wall,
        reasons,
    })
}

/// The recording strategy's shared state.
enum StrategyRecorder {
    /// Chunk and serial strategies (serial: exclusive chunks on one thread).
    Chunk(Arc<ChunkRecorder>),
    /// CREW.
    Crew(Box<CrewRecorder>),
}

/// A host thread's work: its name and what it runs.
type Job<'s> = (String, Box<dyn FnOnce() + Send + 's>);

impl StrategyRecorder {
    /// Raised to stop every hart.
    fn halt(&self) -> &AtomicBool {
        match self {
            StrategyRecorder::Chunk(rec) => &rec.halt,
            StrategyRecorder::Crew(rec) => &rec.halt,
        }
    }

    fn set_writer(&self, writer: TraceWriter) {
        match self {
            StrategyRecorder::Chunk(rec) => rec.commit.lock().log.set_writer(writer),
            StrategyRecorder::Crew(rec) => rec.commit.lock().set_writer(writer),
        }
    }

    fn close_log(&self) -> ClosedLog {
        match self {
            StrategyRecorder::Chunk(rec) => rec.commit.lock().log.close(),
            StrategyRecorder::Crew(rec) => rec.commit.lock().close(),
        }
    }

    fn stats(&self, wall: Duration) -> RecordStats {
        let mut stats = RecordStats {
            wall_ns: wall.as_nanos() as u64,
            ..RecordStats::default()
        };
        if let StrategyRecorder::Chunk(rec) = self {
            stats.squashes = rec.squashes.load(Ordering::Relaxed);
            stats.squashed_steps = rec.squashed_steps.load(Ordering::Relaxed);
            stats.exclusive_chunks = rec.exclusive.load(Ordering::Relaxed);
            stats.dma = rec.dma.load(Ordering::Relaxed);
        }
        stats
    }

    /// The host threads that record `harts`: one per hart, or (serial) one
    /// for all.
    fn jobs<'s>(
        &'s self,
        harts: &'s mut [Hart],
        board: &'s Board,
        config: &'s RecordConfig,
        limit_hit: &'s AtomicBool,
        crew_failure: &'s Mutex<Option<String>>,
    ) -> Vec<Job<'s>> {
        match self {
            StrategyRecorder::Chunk(rec) if config.strategy == Strategy::Serial => {
                let job = move || {
                    let mut workers: Vec<HartRecorder> = harts
                        .iter_mut()
                        .map(|hart| HartRecorder::serial(hart, board, rec, config))
                        .collect();
                    serial::run_serial(&mut workers, limit_hit);
                };
                vec![("rec-serial".to_string(), Box::new(job))]
            }
            StrategyRecorder::Chunk(rec) => harts
                .iter_mut()
                .map(|hart| {
                    let name = format!("rec-hart{}", hart.hart_id().0);
                    let seed = perturb_seed(config, hart.hart_id());
                    let job = move || {
                        HartRecorder::new(hart, board, rec, config, seed).run(limit_hit);
                    };
                    (name, Box::new(job) as Box<dyn FnOnce() + Send>)
                })
                .collect(),
            StrategyRecorder::Crew(rec) => harts
                .iter_mut()
                .map(|hart| {
                    let name = format!("crew-hart{}", hart.hart_id().0);
                    let seed = perturb_seed(config, hart.hart_id());
                    let job = move || {
                        let mut worker = CrewHart::new(hart, board, rec, config, seed);
                        if let Err(e) = worker.run(limit_hit) {
                            crew_failure.lock().get_or_insert(e);
                            rec.halt.store(true, Ordering::SeqCst);
                        }
                    };
                    (name, Box::new(job) as Box<dyn FnOnce() + Send>)
                })
                .collect(),
        }
    }
}
