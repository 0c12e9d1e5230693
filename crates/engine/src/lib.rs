//! Samsara's deterministic record and replay for multi-hart machines.
//!
//! - [`record`]: the chunk engine (copy-on-write chunks, A/D-bit read and
//!   write sets, conflict detection with squash and re-execution, the
//!   decentralised three-phase commit, DMA sequencing), writing a trace;
//! - [`replay`]: verified, parallel re-execution of a trace;
//! - [`inspect`]: what a trace holds.
//!
//! The design is in `docs/record-replay.md`.

mod chunk_bus;
mod code_watch;
mod digest;
pub mod exit;
pub mod guest;
pub mod inspect;
pub mod record;
pub mod replay;
mod sequencer;
pub mod summary;
mod table;

pub use digest::blake3_hex;

use samsara_machine::machine::MachineError;
use samsara_trace::TraceError;
use thiserror::Error;

/// Steps a hart runs between looks at the world inside a chunk (chunk and
/// serial strategies). Recording splits every chunk at these offsets from
/// its start and stores the value in the trace header, where replay takes
/// it from, so `Hart::run` sees identical call boundaries in both.
pub(crate) const BATCH: u64 = 16 * 1024;

/// A file given to replay that is not the one recorded.
#[derive(Debug)]
pub struct FileMismatch {
    /// Which file: "guest image", "firmware", "kernel", "initrd".
    pub what: &'static str,
    /// The file given.
    pub path: String,
    /// The path stored in the trace.
    pub recorded_path: String,
    /// Recorded digest.
    pub recorded: String,
    /// Recorded length.
    pub recorded_len: u64,
    /// Digest of the file given.
    pub found: String,
    /// Length of the file given.
    pub found_len: u64,
}

impl From<samsara_machine::guest::GuestFileError> for EngineError {
    fn from(e: samsara_machine::guest::GuestFileError) -> Self {
        EngineError::File {
            what: e.what,
            path: e.path,
            source: e.source,
        }
    }
}

/// Why recording or replaying failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A file of the guest (image, firmware, kernel, initrd) could not be read.
    #[error("cannot read {what} {path}")]
    File {
        /// Which file: "guest image", "firmware", "kernel", "initrd".
        what: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the guest is not the one that was recorded.
    #[error(
        "{} {} does not match the trace: the trace was recorded from {} ({} bytes, BLAKE3 {}), this file has {} bytes, BLAKE3 {}",
        .0.what, .0.path, .0.recorded_path, .0.recorded_len, .0.recorded, .0.found_len, .0.found
    )]
    ImageMismatch(Box<FileMismatch>),
    /// The disk image could not be prepared.
    #[error("disk image {path}: {what}")]
    Disk {
        /// The disk path.
        path: String,
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The machine this samsara builds does not start where the recorded one did.
    #[error(
        "trace {path} was recorded from a different initial machine state (RAM BLAKE3 {recorded}, here {found}): the image matches, so the device tree or loader differ — probably another samsara version"
    )]
    InitialState {
        /// The trace file.
        path: String,
        /// Recorded digest.
        recorded: String,
        /// This machine's.
        found: String,
    },
    /// The machine could not be built.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// Reading or writing the trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace writer failed while recording (the guest was stopped; what
    /// was written is a valid partial trace).
    #[error("recording stopped")]
    TraceWrite(#[source] TraceError),
    /// The trace is inconsistent with the machine it describes.
    #[error("trace {path}: entry {seq}: {what}")]
    BadEntry {
        /// The trace file.
        path: String,
        /// Sequence number.
        seq: u64,
        /// What is wrong.
        what: String,
    },
    /// Replay diverged from the recording.
    #[error(
        "replay diverged at entry {seq} (hart {hart}, chunk of {steps} instructions starting at instruction {start_steps}, pc {pc:#x}): {what}"
    )]
    Divergence {
        /// Sequence number of the chunk.
        seq: u64,
        /// The hart.
        hart: u32,
        /// Recorded length of the chunk.
        steps: u64,
        /// The hart's instruction count when the chunk started.
        start_steps: u64,
        /// pc after the chunk (as replayed).
        pc: samsara_types::GuestVirtAddr,
        /// What differs.
        what: replay::Divergence,
    },
    /// Options that do not apply to this trace.
    #[error("{0}")]
    Options(String),
    /// The guest does something the chosen strategy cannot record.
    #[error("cannot record: {0}")]
    Unsupported(String),
    /// A bug in samsara.
    #[error("internal error: {0}")]
    Internal(String),
}
