//! Trace errors: every one names the byte offset in the file where the
//! problem was found.

use thiserror::Error;

/// What is wrong with a trace (or with writing one).
#[derive(Debug, Error)]
pub enum TraceErrorKind {
    /// An I/O error from the host.
    #[error("{0}")]
    Io(std::io::Error),
    /// The file does not start with the trace magic.
    #[error("not a samsara trace (bad magic)")]
    BadMagic,
    /// Written by an incompatible format version.
    #[error("trace format version {found}, this samsara reads versions {oldest} to {newest}")]
    Version {
        /// Version in the file.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The version this build writes.
        newest: u32,
    },
    /// A size field is beyond what any valid trace contains.
    #[error("{what} claims {claimed} bytes (limit {limit})")]
    AbsurdSize {
        /// Which field.
        what: &'static str,
        /// The claimed value.
        claimed: u64,
        /// The limit.
        limit: u64,
    },
    /// A checksum does not match.
    #[error("{what} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Which part.
        what: &'static str,
        /// Stored CRC-32.
        stored: u32,
        /// Computed CRC-32.
        computed: u32,
    },
    /// The header is not valid JSON of the expected shape.
    #[error("malformed header: {0}")]
    Header(String),
    /// The file ends in the middle of something.
    #[error("file truncated inside {0}")]
    Truncated(&'static str),
    /// The file ends cleanly after a block but has no footer: the recording
    /// was cut short (crash, kill). Everything before is valid.
    #[error(
        "trace has no footer: the recording did not finish ({entries} entries in {blocks} complete blocks)"
    )]
    MissingFooter {
        /// Complete blocks read.
        blocks: u64,
        /// Entries in them.
        entries: u64,
    },
    /// A block does not start with the block magic.
    #[error("bad block magic {0:02x?}")]
    BadBlockMagic([u8; 4]),
    /// Unknown block kind.
    #[error("unknown block kind {0}")]
    BadBlockKind(u8),
    /// Blocks out of order or missing.
    #[error("block {found} where block {expected} (first sequence number {expected_seq}) was due")]
    OutOfOrder {
        /// Index found.
        found: u64,
        /// Index expected.
        expected: u64,
        /// Sequence number expected.
        expected_seq: u64,
    },
    /// A stream does not decompress to its stated size.
    #[error("{stream} stream does not decompress: {reason}")]
    Decompress {
        /// Stream name.
        stream: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A stream decompresses but its contents are invalid.
    #[error("{stream} stream, byte {at} of the block's stream: {what}")]
    Decode {
        /// Stream name.
        stream: &'static str,
        /// Position within the decompressed stream.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The footer is malformed.
    #[error("malformed footer: {0}")]
    Footer(String),
    /// Data after the footer.
    #[error("unexpected data after the footer")]
    TrailingData,
    /// The writer thread stopped (it reported an error earlier, or panicked).
    #[error("the trace writer stopped: {0}")]
    WriterGone(String),
}

/// A trace error at a byte offset of a file.
#[derive(Debug, Error)]
#[error("trace {path}: at byte offset {offset}: {kind}")]
pub struct TraceError {
    /// The trace file.
    pub path: String,
    /// Byte offset in the file where the problem was found.
    pub offset: u64,
    /// What is wrong (already part of the message: not a `source`, so
    /// error chains do not print it twice).
    pub kind: TraceErrorKind,
}

impl From<std::io::Error> for TraceErrorKind {
    fn from(e: std::io::Error) -> Self {
        TraceErrorKind::Io(e)
    }
}

impl TraceError {
    pub(crate) fn new(path: &str, offset: u64, kind: impl Into<TraceErrorKind>) -> Self {
        Self {
            path: path.to_owned(),
            offset,
            kind: kind.into(),
        }
    }

    /// Whether this error only says that the recording did not finish.
    pub fn is_missing_footer(&self) -> bool {
        matches!(self.kind, TraceErrorKind::MissingFooter { .. })
    }
}
