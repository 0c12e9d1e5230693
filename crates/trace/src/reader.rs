//! Streaming trace reader: one block at a time, every field checked before
//! it is trusted, every error located by file offset.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::codec::decode;
use crate::error::{TraceError, TraceErrorKind};
use crate::writer::BLOCK_HEADER_BYTES;
use crate::{
    BLOCK_MAGIC, BlockKind, Entry, FORMAT_VERSION, Footer, MAGIC, MAX_BLOCK_ENTRIES,
    MAX_HEADER_BYTES, MAX_STREAM_BYTES, OLDEST_READABLE_VERSION, STREAM_NAMES, STREAMS,
    TraceHeader,
};

/// A block as read.
#[derive(Debug)]
pub enum Block {
    /// Entries with consecutive sequence numbers.
    Entries {
        /// Sequence number of the first entry (sequence numbers start at 1).
        first_seq: u64,
        /// The entries.
        entries: Vec<Entry>,
        /// Uncompressed bytes per stream.
        raw: [u64; STREAMS],
        /// Stored (compressed) bytes per stream.
        compressed: [u64; STREAMS],
    },
    /// The footer.
    Footer(Box<Footer>),
}

/// What a trace is read from: a file or bytes in memory.
trait Source: Read + Seek + Send {}
impl<T: Read + Seek + Send> Source for T {}

/// A trace file still being written: a read at its end waits for it to
/// grow, and finds the end only after `idle` without growth.
struct FollowFile {
    file: File,
    idle: Duration,
    stop: Arc<AtomicBool>,
    /// Raised once the writer is known to be gone (a standby's stream
    /// broke): then the file's end is its end, and `idle` is not waited.
    writer_gone: Option<Arc<AtomicBool>>,
    /// Bytes read so far.
    position: u64,
}

impl FollowFile {
    /// How often a waiting read looks at the file again, at most.
    const POLL: Duration = Duration::from_millis(20);

    /// Opens `path`, waiting up to `idle` for it to appear.
    fn open(path: &Path, idle: Duration, stop: Arc<AtomicBool>) -> std::io::Result<Self> {
        let start = Instant::now();
        loop {
            match File::open(path) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        idle,
                        stop,
                        writer_gone: None,
                        position: 0,
                    });
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && start.elapsed() < idle
                        && !stop.load(Ordering::Relaxed) =>
                {
                    std::thread::sleep(Self::POLL);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for FollowFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            // Looked at before the read: a writer gone after its last
            // bytes reached the file leaves nothing unread.
            let gone = self
                .writer_gone
                .as_ref()
                .is_some_and(|g| g.load(Ordering::Acquire));
            let n = self.file.read(buf)?;
            self.position += n as u64;
            let timed_out = self.writer_gone.is_none() && start.elapsed() >= self.idle;
            if n > 0 || buf.is_empty() || gone || timed_out || self.stop.load(Ordering::Relaxed) {
                return Ok(n);
            }
            if self.file.metadata()?.len() < self.position {
                return Err(std::io::Error::other(format!(
                    "the file shrank below the {} bytes read (rewritten, by a new recording?)",
                    self.position
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Self::POLL);
        }
    }
}

impl Seek for FollowFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.position = self.file.seek(pos)?;
        Ok(self.position)
    }
}

/// Where a block starts, to read the trace again from there
/// ([`TraceReader::mark`], [`TraceReader::seek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMark {
    offset: u64,
    index: u64,
    first_seq: u64,
    entries: u64,
}

impl BlockMark {
    /// Byte offset of the block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Index of the block.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Entries before the block.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Sequence number of the block's first entry.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }
}

/// A trace opened for reading.
pub struct TraceReader {
    file: Box<dyn Source>,
    path: String,
    offset: u64,
    file_len: u64,
    header: TraceHeader,
    next_index: u64,
    next_seq: u64,
    entries: u64,
    footer_seen: bool,
    /// The file may still be growing ([`TraceReader::follow`]): its
    /// length is not known.
    following: bool,
}

impl TraceReader {
    /// Opens `path` and reads its preamble and header.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| TraceError::new(&name, 0, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| TraceError::new(&name, 0, e))?
            .len();
        Self::start(
            name,
            Box::new(BufReader::with_capacity(1 << 20, file)),
            file_len,
            false,
        )
    }

    /// Opens `path` as the recorder writes it (`samsara replay --follow`):
    /// reads wait for the file to appear and to grow, and a read finds its
    /// end once the file has not grown for `idle` or `stop` is raised.
    /// Blocks are read as the recorder completes them (within a quarter
    /// of a second of an entry's commit); the footer ends the trace as
    /// usual. A file that shrinks under the reader (a new recording
    /// rewriting it) is an error. Its length being unknown, sizes a block
    /// claims are bounded only by the format's limits.
    pub fn follow(path: &Path, idle: Duration, stop: Arc<AtomicBool>) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let file = FollowFile::open(path, idle, stop).map_err(|e| TraceError::new(&name, 0, e))?;
        Self::start(name, Box::new(file), u64::MAX, true)
    }

    /// As [`TraceReader::follow`] for a file that a receiver appends to
    /// (a hot standby's copy of its primary's stream): reads wait for as
    /// long as it takes, until `writer_gone` is raised; the file's end is
    /// then the trace's end.
    pub fn follow_writer(
        path: &Path,
        writer_gone: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let mut file = FollowFile::open(path, Duration::ZERO, stop)
            .map_err(|e| TraceError::new(&name, 0, e))?;
        file.writer_gone = Some(writer_gone);
        Self::start(name, Box::new(file), u64::MAX, true)
    }

    /// Reads a trace held in memory (named `name` in errors), exactly as
    /// [`TraceReader::open`] reads a file of these bytes. The fuzz target and
    /// tests use it.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, TraceError> {
        let len = bytes.len() as u64;
        Self::start(name.to_string(), Box::new(Cursor::new(bytes)), len, false)
    }

    fn start(
        name: String,
        file: Box<dyn Source>,
        file_len: u64,
        following: bool,
    ) -> Result<Self, TraceError> {
        let mut r = Self {
            file,
            path: name,
            offset: 0,
            file_len,
            header: TraceHeader::default(),
            next_index: 0,
            next_seq: 1,
            entries: 0,
            footer_seen: false,
            following,
        };
        let mut pre = [0u8; 28];
        r.read_exact(&mut pre, "the preamble")?;
        if &pre[..16] != MAGIC {
            return Err(r.err_at(0, TraceErrorKind::BadMagic));
        }
        let version = u32::from_le_bytes(pre[16..20].try_into().unwrap_or_default());
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(r.err_at(
                16,
                TraceErrorKind::Version {
                    found: version,
                    oldest: OLDEST_READABLE_VERSION,
                    newest: FORMAT_VERSION,
                },
            ));
        }
        let len = u32::from_le_bytes(pre[20..24].try_into().unwrap_or_default());
        if len > MAX_HEADER_BYTES {
            return Err(r.err_at(
                20,
                TraceErrorKind::AbsurdSize {
                    what: "header length",
                    claimed: u64::from(len),
                    limit: u64::from(MAX_HEADER_BYTES),
                },
            ));
        }
        let stored = u32::from_le_bytes(pre[24..28].try_into().unwrap_or_default());
        r.check_remaining(u64::from(len), "the header")?;
        let mut json = vec![0u8; len as usize];
        r.read_exact(&mut json, "the header")?;
        let computed = crc32fast::hash(&json);
        if computed != stored {
            return Err(r.err_at(
                28,
                TraceErrorKind::Checksum {
                    what: "header",
                    stored,
                    computed,
                },
            ));
        }
        r.header = serde_json::from_slice(&json)
            .map_err(|e| r.err_at(28, TraceErrorKind::Header(e.to_string())))?;
        if r.header.harts == 0 || r.header.harts > 8 {
            return Err(r.err_at(
                28,
                TraceErrorKind::Header(format!("{} harts (1 to 8 allowed)", r.header.harts)),
            ));
        }
        if r.header.batch == Some(0) {
            return Err(r.err_at(
                28,
                TraceErrorKind::Header("run-call batch of 0 steps".into()),
            ));
        }
        Ok(r)
    }

    /// The header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The file's path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Byte offset of the next block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where the next block starts: [`TraceReader::seek`] to it reads the
    /// trace again from there.
    pub fn mark(&self) -> BlockMark {
        BlockMark {
            offset: self.offset,
            index: self.next_index,
            first_seq: self.next_seq,
            entries: self.entries,
        }
    }

    /// Goes back (or forward) to a block start this reader marked: the next
    /// [`TraceReader::next_block`] reads that block, checked as before.
    pub fn seek(&mut self, mark: BlockMark) -> Result<(), TraceError> {
        self.file
            .seek(SeekFrom::Start(mark.offset))
            .map_err(|e| self.err_at(mark.offset, e.into()))?;
        self.offset = mark.offset;
        self.next_index = mark.index;
        self.next_seq = mark.first_seq;
        self.entries = mark.entries;
        self.footer_seen = false;
        Ok(())
    }

    /// Blocks read so far (the index the next block must have).
    pub fn blocks_read(&self) -> u64 {
        self.next_index
    }

    /// Entries read so far.
    pub fn entries_read(&self) -> u64 {
        self.entries
    }

    /// Size of the file.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    fn err_at(&self, offset: u64, kind: TraceErrorKind) -> TraceError {
        TraceError::new(&self.path, offset, kind)
    }

    fn check_remaining(&self, n: u64, what: &'static str) -> Result<(), TraceError> {
        if self.file_len.saturating_sub(self.offset) < n {
            return Err(self.err_at(self.offset, TraceErrorKind::Truncated(what)));
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), TraceError> {
        match self.file.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.err_at(self.offset, TraceErrorKind::Truncated(what)))
            }
            Err(e) => Err(self.err_at(self.offset, e.into())),
        }
    }

    /// The next block; `Ok(None)` after the footer. A trace that ends cleanly
    /// between blocks without a footer gives a `MissingFooter` error.
    pub fn next_block(&mut self) -> Result<Option<Block>, TraceError> {
        if self.footer_seen {
            if !self.following && self.offset < self.file_len {
                return Err(self.err_at(self.offset, TraceErrorKind::TrailingData));
            }
            return Ok(None);
        }
        let start = self.offset;
        if start == self.file_len {
            return Err(self.err_at(
                start,
                TraceErrorKind::MissingFooter {
                    blocks: self.next_index,
                    entries: self.entries,
                },
            ));
        }
        let mut head = [0u8; BLOCK_HEADER_BYTES];
        self.read_exact(&mut head, "a block header")?;
        let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap_or_default());
        let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap_or_default());
        let magic: [u8; 4] = head[0..4].try_into().unwrap_or_default();
        if &magic != BLOCK_MAGIC {
            return Err(self.err_at(start, TraceErrorKind::BadBlockMagic(magic)));
        }
        let kind = match head[4] {
            1 => BlockKind::Entries,
            2 => BlockKind::Footer,
            k => return Err(self.err_at(start + 4, TraceErrorKind::BadBlockKind(k))),
        };
        let index = u64_at(8);
        let first_seq = u64_at(16);
        let count = u32_at(24);
        if index != self.next_index || (kind == BlockKind::Entries && first_seq != self.next_seq) {
            return Err(self.err_at(
                start + 8,
                TraceErrorKind::OutOfOrder {
                    found: index,
                    expected: self.next_index,
                    expected_seq: self.next_seq,
                },
            ));
        }
        if count > MAX_BLOCK_ENTRIES {
            return Err(self.err_at(
                start + 24,
                TraceErrorKind::AbsurdSize {
                    what: "block entry count",
                    claimed: u64::from(count),
                    limit: u64::from(MAX_BLOCK_ENTRIES),
                },
            ));
        }
        let mut raw = [0u32; STREAMS];
        let mut comp = [0u32; STREAMS];
        for i in 0..STREAMS {
            raw[i] = u32_at(28 + 4 * i);
            comp[i] = u32_at(28 + 4 * STREAMS + 4 * i);
            for (v, what) in [(raw[i], "stream size"), (comp[i], "compressed stream size")] {
                if v > MAX_STREAM_BYTES {
                    return Err(self.err_at(
                        start + 28,
                        TraceErrorKind::AbsurdSize {
                            what,
                            claimed: u64::from(v),
                            limit: u64::from(MAX_STREAM_BYTES),
                        },
                    ));
                }
            }
        }
        let stored = u32_at(BLOCK_HEADER_BYTES - 4);
        let payload_len: u64 = comp.iter().map(|&c| u64::from(c)).sum();
        // Allocate only what the file actually holds.
        self.check_remaining(payload_len, "a block payload")?;
        let mut payload = vec![0u8; payload_len as usize];
        self.read_exact(&mut payload, "a block payload")?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[..BLOCK_HEADER_BYTES - 4]);
        crc.update(&payload);
        let computed = crc.finalize();
        if computed != stored {
            return Err(self.err_at(
                start,
                TraceErrorKind::Checksum {
                    what: "block",
                    stored,
                    computed,
                },
            ));
        }
        let mut streams: [Vec<u8>; STREAMS] = Default::default();
        let mut at = 0usize;
        for i in 0..STREAMS {
            let data = &payload[at..at + comp[i] as usize];
            at += comp[i] as usize;
            streams[i] = decompress(data, raw[i]).map_err(|reason| {
                self.err_at(
                    start,
                    TraceErrorKind::Decompress {
                        stream: STREAM_NAMES[i],
                        reason,
                    },
                )
            })?;
        }
        self.next_index += 1;
        match kind {
            BlockKind::Entries => {
                let entries = decode(&streams, count).map_err(|e| {
                    self.err_at(
                        start,
                        TraceErrorKind::Decode {
                            stream: STREAM_NAMES[e.stream],
                            at: e.at,
                            what: e.what,
                        },
                    )
                })?;
                self.next_seq += u64::from(count);
                self.entries += u64::from(count);
                Ok(Some(Block::Entries {
                    first_seq,
                    entries,
                    raw: raw.map(u64::from),
                    compressed: comp.map(u64::from),
                }))
            }
            BlockKind::Footer => {
                let footer: Footer = serde_json::from_slice(&streams[0])
                    .map_err(|e| self.err_at(start, TraceErrorKind::Footer(e.to_string())))?;
                if footer.entries != self.entries {
                    return Err(self.err_at(
                        start,
                        TraceErrorKind::Footer(format!(
                            "footer counts {} entries, the blocks hold {}",
                            footer.entries, self.entries
                        )),
                    ));
                }
                self.footer_seen = true;
                Ok(Some(Block::Footer(Box::new(footer))))
            }
        }
    }
}

/// Decompresses one stream, growing the buffer only as data actually comes.
fn decompress(data: &[u8], raw_len: u32) -> Result<Vec<u8>, String> {
    if data.is_empty() {
        return if raw_len == 0 {
            Ok(Vec::new())
        } else {
            Err(format!("empty, but {raw_len} bytes claimed"))
        };
    }
    let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    decoder
        .take(u64::from(raw_len) + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() != raw_len as usize {
        return Err(format!("{} bytes, {} claimed", out.len(), raw_len));
    }
    Ok(out)
}
