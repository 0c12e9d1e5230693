//! The samsara trace: one self-describing file per recording.
//!
//! ```text
//! file    = preamble header-json block* footer-block
//! preamble= "SAMSARA-TRACE\0\0\0" version:u32 header_len:u32 header_crc:u32
//! block   = "SBLK" kind:u8 pad:[u8;3] index:u64 first_seq:u64 entries:u32
//!           raw_len:[u32;STREAMS] comp_len:[u32;STREAMS] crc:u32 payload
//! ```
//! All integers little-endian. The full specification, with the encoding of
//! every entry, is `docs/trace-format.md`; this crate is its only
//! implementation. Blocks are written by a dedicated thread ([`TraceWriter`])
//! and read back one at a time ([`TraceReader`]), so neither side holds more
//! than a block in memory, and a trace cut short by a crash is readable up to
//! its last complete block.

mod codec;
mod error;
mod reader;
mod writer;

pub use error::{TraceError, TraceErrorKind};
pub use reader::{Block, BlockMark, TraceReader};
pub use writer::{BlockSink, TraceWriter, WriterStats};

use serde::{Deserialize, Serialize};

/// First 16 bytes of every trace.
pub const MAGIC: &[u8; 16] = b"SAMSARA-TRACE\0\0\0";
/// Format version this build writes. 2: the machine's behaviour under
/// paging changed (when a walk happens again after `fence.i`, a page's
/// first write in a chunk, or a page-straddling fetch), so a version-1
/// trace of a paging guest could diverge. 3: RAM digests skip zero pages
/// ([`RamDigest::Sparse`]); the layout is the same as 2's, so this build
/// reads both (a version-2 header has no `ram_digest`: [`RamDigest::Full`]),
/// and an older build refuses a version-3 trace by name rather than
/// reporting a RAM digest it computed the other way as a mismatch.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 2;
/// Magic at the start of every block.
pub const BLOCK_MAGIC: &[u8; 4] = b"SBLK";
/// Streams in a block, in payload order.
pub const STREAMS: usize = 4;
/// Names of the streams, for reports.
pub const STREAM_NAMES: [&str; STREAMS] = ["commit", "events", "io", "checks"];
/// Index of the commit-log stream (one record per sequence number).
pub const STREAM_COMMIT: usize = 0;
/// Index of the event stream (time reads, interrupt lines, device reads).
pub const STREAM_EVENTS: usize = 1;
/// Index of the I/O stream (DMA contents).
pub const STREAM_IO: usize = 2;
/// Index of the verification stream (per-chunk digests).
pub const STREAM_CHECKS: usize = 3;
/// Largest header the reader accepts.
pub const MAX_HEADER_BYTES: u32 = 1 << 20;
/// Largest decompressed stream in one block the reader accepts.
pub const MAX_STREAM_BYTES: u32 = 256 << 20;
/// Most guest output the footer holds verbatim; beyond it the footer keeps
/// the length and a BLAKE3 of all of it, so that a guest printing for hours
/// neither grows the recorder's memory nor the footer past what a reader
/// accepts.
pub const FOOTER_OUTPUT_BYTES: usize = 1 << 20;
/// Largest entry count in one block the reader accepts.
pub const MAX_BLOCK_ENTRIES: u32 = 1 << 24;

/// Block kinds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum BlockKind {
    /// A run of entries with consecutive sequence numbers.
    Entries = 1,
    /// The last block: final digests, guest output, statistics.
    Footer = 2,
}

/// What the recording was of: enough to rebuild the identical initial state.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceHeader {
    /// samsara version that wrote the trace.
    pub writer: String,
    /// How memory interleaving was recorded: decides how replay orders
    /// entries.
    pub strategy: Strategy,
    /// Number of harts.
    pub harts: u32,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Path of the image the harts enter at reset, as given when
    /// recording: the bare-metal guest, or the firmware (`--bios`) of a
    /// Linux boot.
    pub image_path: String,
    /// Size of that image in bytes.
    pub image_len: u64,
    /// BLAKE3 of that image, hex.
    pub image_blake3: String,
    /// The Linux kernel Image the firmware starts (`--kernel`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<TraceFile>,
    /// The initial RAM disk (`--initrd`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<TraceFile>,
    /// The kernel command line (`--append`), if a kernel was booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootargs: Option<String>,
    /// Path of the virtio disk image, if one was attached (its contents
    /// reach the guest only by DMA and device reads, which the trace holds:
    /// replay does not need the file).
    pub disk: Option<String>,
    /// Size and BLAKE3 of the disk image when the recording started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_image: Option<TraceFile>,
    /// The disk was attached read-only (a standby attaches its copy so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_readonly: bool,
    /// Chunk size limit in instructions.
    pub chunk_size: u64,
    /// Steps a hart runs per `Hart::run` call inside an entry: record and
    /// replay split every entry at these offsets from its start, so that
    /// the hart's interrupt checks on entry to `run` happen at the same
    /// instructions. Absent in traces written before it was stored: then
    /// [`Strategy::legacy_batch`]. Read it with [`TraceHeader::batch`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// Per-chunk verification digests every this many sequence numbers (0: none).
    pub check_every: u64,
    /// Unix time of the recording start, seconds.
    pub created_unix: u64,
    /// BLAKE3 of all of RAM when the harts started (image, device tree,
    /// everything the loader put there), hex: replay refuses a machine whose
    /// initial state differs (another samsara version's device tree, say).
    #[serde(default)]
    pub initial_ram_blake3: String,
    /// How `initial_ram_blake3` and the footer's `ram_blake3` digest RAM.
    #[serde(default)]
    pub ram_digest: RamDigest,
}

/// How a trace digests guest RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RamDigest {
    /// BLAKE3 of every byte of RAM (traces of format version 2).
    #[default]
    Full,
    /// BLAKE3 of the bytes of the 4 KiB pages that are not all zeros, in
    /// address order, then a bitmap of which pages those are (bit `i % 8`
    /// of byte `i / 8` for page `i`), then the RAM size in bytes (u64,
    /// little-endian). As strong as [`RamDigest::Full`] (the encoding is
    /// one-to-one), and the pages a guest never wrote cost a scan, not a
    /// hash: hashing 512 MiB took a tenth of a recorded Linux boot.
    Sparse,
}

impl TraceHeader {
    /// Steps per `Hart::run` call inside an entry (see the `batch` field).
    pub fn batch(&self) -> u64 {
        self.batch.unwrap_or(self.strategy.legacy_batch())
    }
}

/// How memory interleaving is recorded.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Samsara: harts in parallel, in copy-on-write chunks.
    #[default]
    Chunk,
    /// Baseline: every hart on one host thread, round-robin by instruction
    /// quantum (the chunk size), as QEMU's and rr's record modes work.
    Serial,
    /// Baseline: concurrent-read/exclusive-write page ownership with every
    /// transfer logged as an ordering edge (SMP-ReVirt).
    Crew,
}

impl Strategy {
    /// Every strategy, in the order reports list them.
    pub const ALL: [Strategy; 3] = [Strategy::Chunk, Strategy::Serial, Strategy::Crew];

    /// The name written in trace headers and accepted by `--strategy`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Chunk => "chunk",
            Strategy::Serial => "serial",
            Strategy::Crew => "crew",
        }
    }

    /// The run-call batch of traces that predate the header's `batch`.
    pub fn legacy_batch(self) -> u64 {
        match self {
            Strategy::Chunk | Strategy::Serial => 16 * 1024,
            Strategy::Crew => 256,
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A file the recording loaded: where it was, and what it held, so that
/// replay can find it again and refuse another file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceFile {
    /// The path as given when recording.
    pub path: String,
    /// Size in bytes.
    pub len: u64,
    /// BLAKE3 of the contents, hex.
    pub blake3: String,
}

/// Why a chunk ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Truncation {
    /// The chunk reached its size limit.
    SizeLimit = 0,
    /// The next instruction touches a device: it runs as its own entry.
    DeviceAccess = 1,
    /// A WFI retired.
    Wfi = 2,
    /// An interrupt line changed and must be delivered, or (chunk
    /// strategy) the hart trapped out of user mode or returned to it: a
    /// program's own work commits apart from the kernel's, which touches
    /// pages other harts write.
    Trap = 3,
    /// The machine is stopping (guest exit, Ctrl-C, instruction limit).
    Stop = 4,
    /// This entry *is* a device access: one instruction with MMIO allowed.
    DeviceOp = 5,
    /// The hart executed a `pause` hint: it is spinning, and waits for
    /// another hart's commit before its next chunk.
    Spin = 6,
    /// CREW strategy: a page ownership transfer involving this hart (it is
    /// about to take a page, or gives one up); the next entry of the hart
    /// starts at this exact instruction count.
    Ownership = 7,
}

impl Truncation {
    /// Every reason, in encoding order.
    pub const ALL: [Truncation; 8] = [
        Truncation::SizeLimit,
        Truncation::DeviceAccess,
        Truncation::Wfi,
        Truncation::Trap,
        Truncation::Stop,
        Truncation::DeviceOp,
        Truncation::Spin,
        Truncation::Ownership,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Truncation::SizeLimit => "size-limit",
            Truncation::DeviceAccess => "device-access",
            Truncation::Wfi => "wfi",
            Truncation::Trap => "trap",
            Truncation::Stop => "stop",
            Truncation::DeviceOp => "device-op",
            Truncation::Spin => "spin",
            Truncation::Ownership => "ownership",
        }
    }

    fn from_bits(bits: u8) -> Option<Truncation> {
        Self::ALL.get(usize::from(bits)).copied()
    }
}

/// A non-deterministic input consumed inside a chunk, in consumption order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// The hart's device interrupt lines (`mip` layout) from this point on.
    /// Logged at chunk start when they differ from the hart's previous view.
    Lines(u64),
    /// A read of the `time` CSR returned this value.
    Time(u64),
    /// A device load returned this value.
    MmioRead(u64),
    /// A device access faulted (the hart took an access fault).
    MmioFault,
    /// After a device access inside a chunk (serial strategy), the hart's
    /// interrupt lines changed to this value.
    LinesUpdate(u64),
    /// CREW ordering edge: this entry starts only after entry
    /// `seq - back` of hart `hart` — the one that ended where that hart
    /// gave up a page this one takes — which ended at its instruction
    /// count `steps`. (A count alone would be ambiguous: a hart may log
    /// several entries at one count.)
    After {
        /// The hart that gave the page up.
        hart: u8,
        /// Its instruction count then.
        steps: u64,
        /// Distance back, in sequence numbers, to its entry that ended there.
        back: u64,
    },
    /// CREW: the entry ends at an attempt that was refused this page
    /// (guest page number), for writing or (`write` false) for any access.
    /// Replay repeats the attempt with that page refused, so that its side
    /// effects (interrupt entry, page-table A/D updates) happen again.
    Refused {
        /// Guest page number.
        page: u64,
        /// Only writes were refused (the hart could read the page).
        write: bool,
    },
}

/// Per-chunk verification record (`--check-every`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Check {
    /// Digest of the hart's whole architectural state after the chunk.
    pub hart_digest: u64,
    /// pc after the chunk.
    pub pc: u64,
    /// Integer registers after the chunk.
    pub x: [u64; 32],
    /// (page number, FNV-1a of its contents) of every page the chunk wrote.
    pub pages: Vec<(u64, u64)>,
}

/// One chunk (or device access) of one hart, in the global order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChunkRecord {
    /// The hart.
    pub hart: u8,
    /// Instruction steps the chunk executed (retired or trapped).
    pub steps: u64,
    /// `seq - start_wm`: how far back the chunk's view reached. The chunk
    /// saw every write of sequence numbers <= `seq - back` and none of any
    /// later ones it could conflict with.
    pub back: u64,
    /// Why the chunk ended.
    pub reason: Truncation,
    /// Ran with every other hart stopped (forward-progress fallback).
    pub exclusive: bool,
    /// Inputs consumed, in order.
    pub events: Vec<Event>,
    /// Verification digests, if this sequence number was sampled.
    pub check: Option<Box<Check>>,
}

/// A device's DMA into guest memory, ordered like a chunk.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DmaRecord {
    /// (guest-physical address, bytes written), in write order.
    pub writes: Vec<(u64, Vec<u8>)>,
}

/// One sequence number's worth of trace.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Entry {
    /// A chunk or device access of a hart.
    Chunk(ChunkRecord),
    /// A DMA completion.
    Dma(DmaRecord),
}

/// How the recorded run ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RecordedExit {
    /// Guest powered off.
    Poweroff,
    /// Guest reported failure with this code.
    Fail(u16),
    /// Guest asked for a reset (the machine stops).
    Reset,
    /// A hart hit the instruction limit.
    InstructionLimit,
    /// Stopped by Ctrl-C.
    Interrupted,
    /// Stopped at the wall-clock timeout (`--timeout`).
    Timeout,
    /// The guest kernel panicked (the panic line is in the output).
    KernelPanic,
    /// The recorder stopped on an error (disk full...): the trace is valid up
    /// to its last entry but the run did not finish.
    Aborted,
}

impl RecordedExit {
    /// How the run ended, for people.
    pub fn describe(self) -> String {
        match self {
            RecordedExit::Poweroff => "guest powered off".into(),
            RecordedExit::Fail(c) => format!("guest reported failure (code {c})"),
            RecordedExit::Reset => "guest requested a reset".into(),
            RecordedExit::InstructionLimit => "stopped at the instruction limit".into(),
            RecordedExit::Interrupted => "interrupted".into(),
            RecordedExit::Timeout => "stopped at the timeout".into(),
            RecordedExit::KernelPanic => "the guest kernel panicked".into(),
            RecordedExit::Aborted => "aborted".into(),
        }
    }
}

/// Recording statistics carried in the footer.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordStats {
    /// Wall time of the recording, nanoseconds.
    pub wall_ns: u64,
    /// Chunks squashed and re-executed.
    pub squashes: u64,
    /// Instructions thrown away by squashes.
    pub squashed_steps: u64,
    /// Chunks run exclusively.
    pub exclusive_chunks: u64,
    /// DMA completions.
    pub dma: u64,
}

/// The last block of a complete trace.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Footer {
    /// Sequence numbers used (entries in the trace).
    pub entries: u64,
    /// How the run ended.
    pub exit: RecordedExit,
    /// Steps per hart at the end.
    pub steps_per_hart: Vec<u64>,
    /// Digest of each hart's architectural state at the end.
    pub hart_digests: Vec<u64>,
    /// BLAKE3 of all of RAM at the end, hex.
    pub ram_blake3: String,
    /// What the guest printed on the UART: all of it, or, when it printed
    /// more than [`FOOTER_OUTPUT_BYTES`], the first that many bytes.
    #[serde(with = "hex_bytes")]
    pub output: Vec<u8>,
    /// Bytes the guest printed in all (absent in traces from before it was
    /// written: then `output` is all of it).
    #[serde(default)]
    pub output_len: Option<u64>,
    /// BLAKE3 of everything the guest printed, hex (absent like
    /// `output_len`).
    #[serde(default)]
    pub output_blake3: Option<String>,
    /// Statistics.
    pub stats: RecordStats,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Decodes untrusted text (a trace's footer): any character, multi-byte
    /// UTF-8 included, that is not a hex digit is an error, never a panic.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer_json(output_hex: &str) -> Vec<u8> {
        let good = Footer {
            entries: 0,
            exit: RecordedExit::Poweroff,
            steps_per_hart: vec![1],
            hart_digests: vec![2],
            ram_blake3: "ab".repeat(32),
            output: b"hi".to_vec(),
            output_len: Some(2),
            output_blake3: None,
            stats: RecordStats::default(),
        };
        let json = serde_json::to_string(&good).unwrap();
        assert!(json.contains(r#""output":"6869""#), "{json}");
        json.replace(r#""output":"6869""#, &format!(r#""output":"{output_hex}""#))
            .into_bytes()
    }

    #[test]
    fn footer_output_hex_round_trips() {
        let f: Footer = serde_json::from_slice(&footer_json("00ff7F")).unwrap();
        assert_eq!(f.output, [0x00, 0xff, 0x7f]);
        let again: Footer = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(again, f);
    }

    /// A multi-byte UTF-8 character in the footer's hex (the fuzzers made
    /// one) is an error, at any position, never a panic; so are odd lengths
    /// and other non-hex characters.
    #[test]
    fn footer_output_hex_with_a_multibyte_char_is_an_error() {
        for hex in [
            "é", "4é4", "44é", "4é", "€", "4€", "48€6", "😀", "4😀4", "486", "4g", " 48",
        ] {
            let result = std::panic::catch_unwind(|| {
                serde_json::from_slice::<Footer>(&footer_json(hex)).map(|_| ())
            });
            let err = result
                .unwrap_or_else(|_| panic!("output {hex:?} panicked the decoder"))
                .expect_err(&format!("output {hex:?} decoded"));
            assert!(err.to_string().contains("at line"), "{hex:?}: {err}");
        }
    }

    /// The same through the reader: the error names the footer block's offset.
    #[test]
    fn reader_names_the_offset_of_a_footer_with_a_multibyte_char_in_its_hex() {
        let dir = std::env::temp_dir().join(format!("samsara-trace-hex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.trace");
        let header = TraceHeader {
            harts: 1,
            ..TraceHeader::default()
        };
        let w = TraceWriter::create(&path, &header).unwrap();
        w.finish(None).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let footer_at = bytes.len() as u64;
        let streams = [footer_json("48€6"), Vec::new(), Vec::new(), Vec::new()];
        let block = writer::encode_block(
            BlockKind::Footer,
            0,
            0,
            0,
            &streams,
            &mut WriterStats::default(),
        )
        .unwrap();
        bytes.extend_from_slice(&block);
        let mut r = TraceReader::from_bytes("t.trace", bytes).unwrap();
        let err = r.next_block().expect_err("a bad footer read");
        assert!(matches!(err.kind, TraceErrorKind::Footer(_)), "{err}");
        assert_eq!(err.offset, footer_at, "{err}");
        assert!(err.to_string().contains("malformed footer"), "{err}");
    }
}
