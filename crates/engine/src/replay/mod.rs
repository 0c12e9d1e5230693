//! Replay: a [`ReplaySession`] over a trace, and [`replay`], its plain,
//! parallel, verifying user.
//!
//! A recording is a total order of entries (chunks, device accesses, DMA);
//! a [`Position`] is (entry sequence number, steps done in that entry).
//! The session runs the recording forward — harts in parallel
//! ([`ReplaySession::run_parallel`]), or on one thread in the global order
//! with an [`Observer`] that can stop it anywhere
//! ([`ReplaySession::run`]) — takes and restores checkpoints between
//! entries, and verifies the end against the trace's footer. How entries of
//! each strategy are ordered is the strategy's [`policy`].

mod hart;
mod index;
mod observer;
mod pages;
mod policy;
mod pool;
pub mod probe;
mod session;
mod standby_disk;
pub(crate) mod watch;

use samsara_cpu::CpuEngine;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use parking_lot::Mutex;
use samsara_cpu::StopReason;
use samsara_machine::board::Board;
use samsara_trace::{Event, Footer, RecordedExit, TraceHeader};
use samsara_types::GuestPhysAddr;

pub use index::{EntryIndex, IndexedEntry};
pub use observer::{EntryView, Flow, NoObserver, Observer};
pub use session::{Checkpoint, EntryTap, ReplaySession, Stop, Takeover, unique_bytes};
pub use standby_disk::StandbyDisk;
pub use watch::{BreakpointHit, Watch, WatchHit, WatchKind};

use crate::EngineError;
use crate::guest::FileOverrides;
use crate::sequencer::Watermark;
use policy::Policy;

/// What to replay.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// The trace.
    pub trace: PathBuf,
    /// Files to use instead of the paths stored in the trace (each must
    /// be the very file recorded).
    pub files: FileOverrides,
    /// Replay on one thread, in sequence order.
    pub serial: bool,
    /// Copy the regenerated guest output to stdout.
    pub echo: bool,
    /// How the harts execute guest code (any engine replays any trace).
    pub cpu: CpuEngine,
}

/// A hot standby's replay: the machine's devices stay current (device
/// loads are done for their side effects and checked where the device can
/// know the answer, see `MmioDevice::replay_read`), the clock learns the
/// recorded times, and the console's output goes to `console`, which says
/// nothing until the standby goes live.
#[derive(Clone, Debug)]
pub struct LiveDevices {
    /// The machine's clock: it goes live with the machine.
    pub clock: Arc<samsara_machine::clock::TakeoverClock>,
    /// Where the UART's output goes besides the output log.
    pub console: samsara_machine::tcp_console::SwitchedOutput,
    /// The disk image the primary started from (default: the path its
    /// header names); the standby works on its own copy, `TRACE.disk`.
    pub disk: Option<std::path::PathBuf>,
}

/// How far a replay has come, readable from another thread while it runs
/// (a standby measures its lag behind the stream with it).
#[derive(Clone)]
pub struct ReplayProgress(Arc<Watermark>);

impl ReplayProgress {
    /// Entries finished and written back.
    pub fn entries(&self) -> u64 {
        self.0.get()
    }
}

/// A point of the recording's global order: every entry before `seq` has
/// finished, entry `seq` has executed `step` of its steps (0: not started),
/// no later entry has started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Sequence number of the entry (entries are numbered from 1).
    pub seq: u64,
    /// Steps of that entry executed.
    pub step: u64,
}

impl Position {
    /// The start of a recording.
    pub const START: Position = Position { seq: 1, step: 0 };
    /// Past every recording's end.
    pub const END: Position = Position {
        seq: u64::MAX,
        step: 0,
    };

    /// Before entry `seq` starts.
    pub fn before(seq: u64) -> Position {
        Position { seq, step: 0 }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {} + {} steps", self.seq, self.step)
    }
}

/// How a replayed entry departed from its recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The hart asked for an input the entry does not hold.
    NoMoreInputs {
        /// What it asked for.
        wanted: &'static str,
    },
    /// The hart asked for one kind of input, the entry holds another.
    WrongInput {
        /// What it asked for.
        wanted: &'static str,
        /// The device address read, if a device read.
        addr: Option<GuestPhysAddr>,
        /// What the recording has there.
        recorded: Event,
    },
    /// A device write faulted where the recording has no fault.
    UnrecordedWriteFault {
        /// The address written.
        addr: GuestPhysAddr,
    },
    /// The hart stopped before the entry's recorded length.
    StoppedEarly {
        /// Why it stopped.
        stop: StopReason,
        /// Steps done.
        done: u64,
    },
    /// A device-access entry's access did not execute.
    DeviceAccessNotExecuted,
    /// The entry should end at a device access; the hart went on.
    DeviceAccessExpected {
        /// What it did instead.
        stop: StopReason,
    },
    /// CREW: the recording refused a page that is not RAM.
    RefusedPageNotRam {
        /// The page number.
        page: u64,
    },
    /// CREW: the attempt the recording refused a page to went on.
    RefusedAttemptWentOn {
        /// The page number.
        page: u64,
        /// What the hart did.
        stop: StopReason,
    },
    /// The entry consumed fewer inputs than it holds.
    InputsLeft {
        /// Inputs consumed.
        consumed: usize,
        /// Inputs recorded.
        recorded: usize,
    },
    /// CREW: an ordering edge's hart is not as far as recorded.
    OrderingEdge {
        /// The hart waited for.
        hart: u8,
        /// Its recorded step count.
        steps: u64,
        /// Its step count in replay.
        reached: u64,
    },
    /// The state after the entry differs from its recorded check.
    State(Vec<StateDiff>),
    /// Live devices (a standby): a device, driven by the guest's own
    /// accesses, answers a load otherwise than it did in the recording.
    DeviceDisagrees {
        /// The device address read.
        addr: GuestPhysAddr,
        /// The value the recording holds.
        recorded: u64,
        /// The standby's device's answer.
        answer: u64,
    },
}

/// One difference between a recorded check and the replayed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateDiff {
    /// The pc.
    Pc {
        /// Recorded.
        recorded: u64,
        /// Replayed.
        replayed: u64,
    },
    /// An integer register.
    Register {
        /// Register number.
        index: u8,
        /// Recorded.
        recorded: u64,
        /// Replayed.
        replayed: u64,
    },
    /// Pages written (guest-physical addresses of the differing pages).
    WrittenPages(Vec<u64>),
    /// CSR or FP state (registers and pages agree).
    OtherState,
}

impl std::fmt::Display for StateDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateDiff::Pc { recorded, replayed } => {
                write!(f, "pc {recorded:#x} recorded, {replayed:#x} replayed")
            }
            StateDiff::Register {
                index,
                recorded,
                replayed,
            } => write!(f, "x{index} {recorded:#x} recorded, {replayed:#x} replayed"),
            StateDiff::WrittenPages(pages) => {
                let pages: Vec<String> = pages.iter().map(|p| format!("{p:#x}")).collect();
                write!(f, "written pages differ: {}", pages.join(", "))
            }
            StateDiff::OtherState => {
                f.write_str("CSR or FP state differs (registers and pages agree)")
            }
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::NoMoreInputs { wanted } => write!(
                f,
                "the hart asked for {wanted}, but the recording has no more inputs for this chunk"
            ),
            Divergence::WrongInput {
                wanted,
                addr: Some(addr),
                recorded,
            } => write!(
                f,
                "the hart asked for {wanted} at device address {addr}, the recording has {recorded:?} here"
            ),
            Divergence::WrongInput {
                wanted, recorded, ..
            } => write!(
                f,
                "the hart asked for {wanted}, the recording has {recorded:?} here"
            ),
            Divergence::UnrecordedWriteFault { addr } => write!(
                f,
                "the write to device address {addr} faulted, the recording has no fault here"
            ),
            Divergence::StoppedEarly { stop, done } => write!(
                f,
                "the hart stopped ({stop:?}) after {done} of the chunk's instructions"
            ),
            Divergence::DeviceAccessNotExecuted => f.write_str("the device access did not execute"),
            Divergence::DeviceAccessExpected { stop } => write!(
                f,
                "the chunk should end at a device access, the hart went on ({stop:?})"
            ),
            Divergence::RefusedPageNotRam { page } => {
                write!(f, "the recording refused page {page:#x}, which is not RAM")
            }
            Divergence::RefusedAttemptWentOn { page, stop } => write!(
                f,
                "the attempt that was refused page {page:#x} went on ({stop:?})"
            ),
            Divergence::DeviceDisagrees {
                addr,
                recorded,
                answer,
            } => write!(
                f,
                "the device at {addr} answers {answer:#x} where the recording read {recorded:#x} (live devices)"
            ),
            Divergence::InputsLeft { consumed, recorded } => write!(
                f,
                "the chunk consumed {consumed} of its {recorded} recorded inputs"
            ),
            Divergence::OrderingEdge {
                hart,
                steps,
                reached,
            } => write!(
                f,
                "ordering edge: hart {hart} should have executed {steps} instructions, it has {reached}"
            ),
            Divergence::State(diffs) => {
                for (i, d) in diffs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
        }
    }
}

/// How a finished replay differs from its recording's footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The guest's output.
    Output {
        /// First differing byte (within the bytes both hold).
        at: u64,
        /// Bytes recorded.
        recorded_len: u64,
        /// Bytes replayed.
        replayed_len: u64,
    },
    /// How the guest ended.
    Exit {
        /// Recorded.
        recorded: RecordedExit,
        /// Replayed (None: it did not end by itself).
        replayed: Option<RecordedExit>,
    },
    /// Instructions per hart.
    InstructionCounts {
        /// Recorded.
        recorded: Vec<u64>,
        /// Replayed.
        replayed: Vec<u64>,
    },
    /// A hart's final architectural state.
    HartState {
        /// The hart.
        hart: u32,
        /// Recorded digest.
        recorded: u64,
        /// Replayed digest.
        replayed: u64,
    },
    /// All of RAM at the end.
    Ram {
        /// Recorded BLAKE3.
        recorded: String,
        /// Replayed BLAKE3.
        replayed: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Output {
                at,
                recorded_len,
                replayed_len,
            } => write!(
                f,
                "guest output differs from byte {at} on (recorded {recorded_len} bytes, replayed {replayed_len})"
            ),
            Mismatch::Exit { recorded, replayed } => write!(
                f,
                "exit differs: recorded {recorded:?}, replayed {replayed:?}"
            ),
            Mismatch::InstructionCounts { recorded, replayed } => write!(
                f,
                "instruction counts differ: recorded {recorded:?}, replayed {replayed:?}"
            ),
            Mismatch::HartState {
                hart,
                recorded,
                replayed,
            } => write!(
                f,
                "hart {hart} final state differs (digest {recorded:#018x} recorded, {replayed:#018x} replayed)"
            ),
            Mismatch::Ram { recorded, replayed } => write!(
                f,
                "final RAM differs (BLAKE3 {recorded} recorded, {replayed} replayed)"
            ),
        }
    }
}

/// The result of a replay.
#[derive(Clone, Debug)]
pub struct ReplayOutcome {
    /// The trace's header.
    pub header: TraceHeader,
    /// The trace's footer (`None` for a partial trace).
    pub footer: Option<Footer>,
    /// Why the trace ended early, if it did (offset and reason).
    pub partial: Option<String>,
    /// It ended early because the file ended inside a block (a cut, or a
    /// followed file that stopped growing), not at damage.
    pub partial_cut_short: bool,
    /// Entries replayed.
    pub entries: u64,
    /// Guest output regenerated by the replay (its first
    /// `FOOTER_OUTPUT_BYTES` bytes).
    pub output: Vec<u8>,
    /// Bytes of guest output regenerated in all.
    pub output_len: u64,
    /// How the replayed guest ended (None: it did not end by itself).
    pub exit: Option<RecordedExit>,
    /// Final hart digests.
    pub hart_digests: Vec<u64>,
    /// Final RAM BLAKE3.
    pub ram_blake3: String,
    /// Steps per hart at the end.
    pub steps_per_hart: Vec<u64>,
    /// Differences from the recording (empty: verified).
    pub mismatches: Vec<Mismatch>,
    /// Wall time.
    pub wall: Duration,
}

impl ReplayOutcome {
    /// Output, exit and final digests all equal the recording's.
    pub fn verified(&self) -> bool {
        self.footer.is_some() && self.mismatches.is_empty()
    }
}

/// State the threads of a replay share.
pub(crate) struct Shared {
    pub board: Board,
    pub policy: Policy,
    pub wm: Arc<Watermark>,
    /// Steps per `Hart::run` call inside an entry (the trace header's).
    pub batch: u64,
    pub error: Mutex<Option<EngineError>>,
    /// RAM pages written since RAM last equalled the session's base
    /// checkpoint (write-back, DMA; CREW's direct writes are folded in
    /// from its tables when a checkpoint is taken or restored).
    pub dirty: crate::table::PageBits,
    /// Pages fetched from and writes to them (see `CodeWatch`; `None`
    /// under CREW).
    pub code: Option<std::sync::Arc<crate::code_watch::CodeWatch>>,
    /// A standby's disk: DMA entries confirm its own completions.
    pub standby_disk: Option<Arc<StandbyDisk>>,
}

impl Shared {
    /// Stops the replay with `e` (the first error wins).
    pub fn fail(&self, e: EngineError) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
        drop(slot);
        self.wm.abort();
    }
}

/// Replays `config.trace` to its end — harts in parallel unless
/// `config.serial` — and verifies it. Errors are problems that stop the
/// replay (bad trace, wrong image, divergence); a finished replay reports
/// its verification in the outcome.
pub fn replay(config: &ReplayConfig, stop: &AtomicBool) -> Result<ReplayOutcome, EngineError> {
    let session = ReplaySession::open(config)?;
    run_to_end(session, config, stop)
}

/// [`replay`] of a trace the recorder is still writing: entries run as its
/// blocks reach the file, and a trace that stops growing for `idle`
/// without its footer ends there, partial
/// ([`ReplaySession::open_following`]). `stop` also ends the waits for
/// the file.
pub fn replay_following(
    config: &ReplayConfig,
    idle: Duration,
    stop: &Arc<AtomicBool>,
) -> Result<ReplayOutcome, EngineError> {
    let session = ReplaySession::open_following(config, idle, stop.clone())?;
    let mut outcome = run_to_end(session, config, stop)?;
    if outcome.partial_cut_short
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(partial) = &mut outcome.partial
    {
        partial.push_str(&format!(
            " (the file had not grown for {:.1} s: taken as the recording having stopped)",
            idle.as_secs_f64()
        ));
    }
    Ok(outcome)
}

/// Runs the session to the recording's end (in parallel unless
/// `config.serial`) and verifies.
fn run_to_end(
    mut session: ReplaySession,
    config: &ReplayConfig,
    stop: &AtomicBool,
) -> Result<ReplayOutcome, EngineError> {
    let start = std::time::Instant::now();
    if config.serial {
        session.run(&mut NoObserver, Position::END, stop)?;
    } else {
        session.run_parallel(stop)?;
    }
    Ok(session.outcome(start.elapsed()))
}
