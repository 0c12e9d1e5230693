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
mod digest;
pub mod inspect;
pub mod record;
pub mod replay;
mod sequencer;
mod table;

pub use digest::blake3_hex;

use samsara_machine::machine::MachineError;
use samsara_trace::TraceError;
use thiserror::Error;

/// Steps a hart runs between looks at the world inside a chunk. Record and
/// replay both split every chunk at these same offsets from its start, so
/// `Hart::run` sees identical call boundaries in both.
pub(crate) const BATCH: u64 = 16 * 1024;

/// Why recording or replaying failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The guest image could not be read.
    #[error("cannot read guest image {path}: {reason}")]
    Image {
        /// The image path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The guest image is not the one that was recorded.
    #[error(
        "guest image {path} does not match the trace: the trace was recorded from {recorded_path} ({recorded_len} bytes, BLAKE3 {recorded}), this file has {found_len} bytes, BLAKE3 {found}"
    )]
    ImageMismatch {
        /// The image given.
        path: String,
        /// The path stored in the trace.
        recorded_path: String,
        /// Recorded digest.
        recorded: String,
        /// Recorded length.
        recorded_len: u64,
        /// Digest of the file given.
        found: String,
        /// Length of the file given.
        found_len: u64,
    },
    /// The disk image could not be prepared.
    #[error("disk image {path}: {reason}")]
    Disk {
        /// The disk path.
        path: String,
        /// What went wrong.
        reason: String,
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
    #[error("recording stopped: {0}")]
    TraceWrite(String),
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
        pc: u64,
        /// What differs.
        what: String,
    },
    /// A bug in samsara.
    #[error("internal error: {0}")]
    Internal(String),
}
