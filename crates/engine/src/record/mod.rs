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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use samsara_cpu::Hart;
use samsara_machine::board::{Board, BoardConfig};
use samsara_machine::clock::HostClock;
use samsara_machine::console::{RawTerminal, WatchedOutput, spawn_interactive_feeder};
use samsara_machine::devices::virtio::block::CompletionSink;
use samsara_machine::supervisor::{Signals, Supervisor};
use samsara_trace::{
    Footer, RamDigest, RecordStats, RecordedExit, TraceHeader, TraceWriter, WriterStats,
};
use samsara_types::HartId;

use self::chunk::{ChunkRecorder, HartRecorder};
use self::crew::{CREW_BATCH, CrewHart, CrewRecorder, MAX_CREW_HARTS};
use self::disk::{DmaSequencer, ScratchDisk};
use self::log::ClosedLog;
use crate::digest::{Console, OutputLog, digests};
use crate::exit::recorded_exit;
use crate::guest::{Guest, LoadedGuest};
use crate::{BATCH, EngineError};

pub(crate) use self::crew::Ownership;

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
    let crew_failure: Mutex<Option<String>> = Mutex::new(None);
    let mut header = TraceHeader {
        writer: format!("samsara {}", env!("CARGO_PKG_VERSION")),
        strategy: config.strategy,
        batch: Some(batch(config.strategy)),
        harts: config.harts,
        ram_size: config.ram_size,
        disk: config.disk.as_ref().map(|d| d.display().to_string()),
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
        Strategy::Chunk | Strategy::Serial => {
            StrategyRecorder::Chunk(Arc::new(ChunkRecorder::new(config.harts, config.ram_size)))
        }
        Strategy::Crew => {
            StrategyRecorder::Crew(Box::new(CrewRecorder::new(config.harts, config.ram_size)))
        }
    };
    let sink = match &recorder {
        StrategyRecorder::Chunk(rec) => Some(Arc::new(DmaSequencer::new(rec.clone()))),
        StrategyRecorder::Crew(_) => None,
    };
    let output = OutputLog::default();
    let (console, watch) = WatchedOutput::new(Box::new(Console {
        echo: config.echo,
        capture: output.clone(),
    }));
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
    let writer = TraceWriter::create(&config.trace, &header)?;
    recorder.set_writer(writer);
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
        halt_requested: recorder.halt().load(Ordering::Relaxed),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = recorder
            .jobs(&mut machine.harts, board, config, &limit_hit, &crew_failure)
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
    });
    // DMA completions still in flight are dropped: they were not part of the
    // recorded run (the guest never saw them).
    let wall = supervisor.start().elapsed();
    if let Some(sink) = &sink {
        sink.close();
    }
    board.uart.flush_output();

    drop(terminal);
    let exit = recorded_exit(supervisor.ending(board.exit.get(), signals()));
    // SAFETY: the hart threads have ended, and the DMA sink is closed (no
    // completion is being applied, none will be).
    let (hart_digests, ram_blake3) =
        unsafe { digests(&machine.harts, &machine.board.ram, header.ram_digest) };
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
        steps_per_hart: machine.harts.iter().map(|h| h.steps().0).collect(),
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
    drop(scratch);
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
