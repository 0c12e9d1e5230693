//! The log writer thread (Samsara's "log recorder daemon"): harts hand it
//! batches of committed entries and go on; it encodes, compresses and writes
//! them as blocks. The channel is bounded, so a disk slower than the guest
//! slows the guest down (back-pressure) instead of growing memory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::codec::Encoder;
use crate::error::{TraceError, TraceErrorKind};
use crate::{
    BLOCK_MAGIC, BlockKind, Entry, FORMAT_VERSION, Footer, MAGIC, MAX_BLOCK_ENTRIES,
    MAX_STREAM_BYTES, STREAM_NAMES, STREAMS, TraceHeader,
};

/// zstd level: 3 is zstd's default, fast enough to keep up with 8 harts.
const ZSTD_LEVEL: i32 = 3;
/// Batches that may wait for the writer before `send` blocks.
const QUEUE_DEPTH: usize = 16;

/// What the writer wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Bytes in the file.
    pub file_bytes: u64,
    /// Uncompressed bytes per stream.
    pub raw: [u64; STREAMS],
    /// Compressed bytes per stream (as stored).
    pub compressed: [u64; STREAMS],
    /// Blocks written (footer included).
    pub blocks: u64,
    /// Entries written.
    pub entries: u64,
}

/// Where a trace's bytes go besides its file: a hot standby's stream.
/// The writer hands it exactly the bytes it wrote to the file, in order,
/// each time after the file write; `through_seq` is the last entry the
/// file (and so the mirror) now holds whole. An error drops the mirror:
/// the file goes on alone (the sink says why to whoever owns it).
pub trait BlockSink: Send {
    /// `bytes` follow the bytes sent before; every entry up to
    /// `through_seq` is now complete in them.
    fn send(&mut self, bytes: &[u8], through_seq: u64) -> std::io::Result<()>;
    /// The trace is complete (its footer sent): no more bytes come.
    fn finished(&mut self) {}
}

enum Message {
    Entries { first_seq: u64, entries: Vec<Entry> },
    Footer(Box<Footer>),
}

/// A trace being written.
pub struct TraceWriter {
    tx: Option<Sender<Message>>,
    thread: Option<JoinHandle<Result<WriterStats, TraceError>>>,
    /// Where and why the writer thread stopped, if it did.
    failure: Arc<Mutex<Option<(u64, String)>>>,
    path: String,
}

impl TraceWriter {
    /// Creates (truncates) `path`, writes the preamble and header, and starts
    /// the writer thread.
    pub fn create(path: &Path, header: &TraceHeader) -> Result<Self, TraceError> {
        Self::create_mirrored(path, header, None)
    }

    /// As [`TraceWriter::create`], also sending every byte to `mirror`.
    pub fn create_mirrored(
        path: &Path,
        header: &TraceHeader,
        mut mirror: Option<Box<dyn BlockSink>>,
    ) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let mut file = File::create(path).map_err(|e| TraceError::new(&name, 0, e))?;
        let json = serde_json::to_vec(header)
            .map_err(|e| TraceError::new(&name, 0, TraceErrorKind::Header(e.to_string())))?;
        let mut pre = Vec::with_capacity(28 + json.len());
        pre.extend_from_slice(MAGIC);
        pre.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        pre.extend_from_slice(&(json.len() as u32).to_le_bytes());
        pre.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        pre.extend_from_slice(&json);
        if let Err(e) = file.write_all(&pre) {
            // Part of a header is no trace at all: leave an empty file, which
            // every reader rejects as truncated at offset 0.
            let _ = file.set_len(0);
            return Err(TraceError::new(&name, 0, e));
        }
        if let Some(m) = &mut mirror
            && m.send(&pre, 0).is_err()
        {
            mirror = None;
        }
        let offset = pre.len() as u64;
        Self::start(file, name, offset, 0, mirror)
    }

    /// Continues the trace at `path` after its first `len` bytes, which
    /// end with block `next_index - 1` and hold `entries` entries (a
    /// recording that stopped without a footer, taken over by a standby
    /// that replayed it to there): the rest of the file is cut off, and
    /// `mirror`, if any, is first sent those `len` bytes.
    pub fn append(
        path: &Path,
        len: u64,
        next_index: u64,
        entries: u64,
        mut mirror: Option<Box<dyn BlockSink>>,
    ) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| TraceError::new(&name, 0, e))?;
        file.set_len(len)
            .map_err(|e| TraceError::new(&name, len, e))?;
        if let Some(m) = &mut mirror {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| TraceError::new(&name, 0, e))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut sent = 0u64;
            while sent < len {
                let want = buf.len().min((len - sent) as usize);
                file.read_exact(&mut buf[..want])
                    .map_err(|e| TraceError::new(&name, sent, e))?;
                sent += want as u64;
                let through = if sent == len { entries } else { 0 };
                if m.send(&buf[..want], through).is_err() {
                    mirror = None;
                    break;
                }
            }
        }
        file.seek(SeekFrom::Start(len))
            .map_err(|e| TraceError::new(&name, len, e))?;
        Self::start(file, name, len, next_index, mirror)
    }

    fn start(
        file: File,
        name: String,
        offset: u64,
        first_index: u64,
        mirror: Option<Box<dyn BlockSink>>,
    ) -> Result<Self, TraceError> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_DEPTH);
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = failure.clone();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || {
                let result = write_loop(file, &thread_name, offset, first_index, mirror, rx);
                if let Err(e) = &result {
                    *thread_failure.lock() = Some((e.offset, e.kind.to_string()));
                }
                result
            })
            .map_err(|e| TraceError::new(&name, 0, e))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            failure,
            path: name,
        })
    }

    /// Queues entries with consecutive sequence numbers from `first_seq`.
    /// Blocks while the writer is [`QUEUE_DEPTH`] batches behind. Fails
    /// if the writer has stopped on an error (disk full, ...).
    pub fn send(&self, first_seq: u64, entries: Vec<Entry>) -> Result<(), TraceError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check()?;
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| self.gone("writer already finished".into()))?;
        tx.send(Message::Entries { first_seq, entries })
            .map_err(|_| {
                self.check()
                    .err()
                    .unwrap_or_else(|| self.gone("writer thread ended".into()))
            })
    }

    /// The writer's error, if it has stopped on one: at the offset where
    /// the write failed (the file has been cut back to end there, after the
    /// last complete block).
    pub fn check(&self) -> Result<(), TraceError> {
        match &*self.failure.lock() {
            Some((offset, text)) => Err(TraceError::new(
                &self.path,
                *offset,
                TraceErrorKind::WriterGone(text.clone()),
            )),
            None => Ok(()),
        }
    }

    fn gone(&self, text: String) -> TraceError {
        TraceError::new(&self.path, 0, TraceErrorKind::WriterGone(text))
    }

    /// Writes the footer (if any: without one the trace is a valid partial
    /// trace), waits for everything to reach the file, and reports.
    pub fn finish(mut self, footer: Option<Footer>) -> Result<WriterStats, TraceError> {
        if let (Some(footer), Some(tx)) = (footer, self.tx.as_ref()) {
            let _ = tx.send(Message::Footer(Box::new(footer)));
        }
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(self.gone("writer thread panicked".into())),
            None => Err(self.gone("writer already finished".into())),
        }
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    mut file: File,
    path: &str,
    mut offset: u64,
    first_index: u64,
    mut mirror: Option<Box<dyn BlockSink>>,
    rx: Receiver<Message>,
) -> Result<WriterStats, TraceError> {
    let mut stats = WriterStats {
        file_bytes: offset,
        ..Default::default()
    };
    for (index, message) in rx.into_iter().enumerate() {
        let index = first_index + index as u64;
        let (kind, first_seq, count, streams) = match message {
            Message::Entries { first_seq, entries } => {
                let mut enc = Encoder::default();
                entries.iter().for_each(|e| enc.push(e));
                stats.entries += entries.len() as u64;
                (
                    BlockKind::Entries,
                    first_seq,
                    entries.len() as u32,
                    enc.streams,
                )
            }
            Message::Footer(footer) => {
                let json = serde_json::to_vec(&footer).map_err(|e| {
                    TraceError::new(path, offset, TraceErrorKind::Footer(e.to_string()))
                })?;
                (
                    BlockKind::Footer,
                    footer.entries,
                    0,
                    [json, Vec::new(), Vec::new(), Vec::new()],
                )
            }
        };
        let block = encode_block(kind, index, first_seq, count, &streams, &mut stats)
            .map_err(|e| TraceError::new(path, offset, e))?;
        if let Err(e) = file.write_all(&block) {
            // Disk full, quota, I/O error: cut off the part of the block
            // that did get written, so that the file ends after its last
            // complete block, a clean partial trace. (If even that fails,
            // the reader still stops at the torn block.)
            let _ = file.set_len(offset);
            return Err(TraceError::new(path, offset, e));
        }
        offset += block.len() as u64;
        stats.file_bytes = offset;
        stats.blocks += 1;
        // The file first: what a standby acknowledges is on the primary's
        // disk too.
        let through = match kind {
            BlockKind::Entries => first_seq + u64::from(count) - 1,
            BlockKind::Footer => first_seq,
        };
        if let Some(m) = &mut mirror
            && m.send(&block, through).is_err()
        {
            mirror = None;
        }
        if kind == BlockKind::Footer {
            file.sync_all()
                .map_err(|e| TraceError::new(path, offset, e))?;
            if let Some(m) = &mut mirror {
                m.finished();
            }
            break;
        }
    }
    file.flush().map_err(|e| TraceError::new(path, offset, e))?;
    Ok(stats)
}

/// Size of a block header in bytes.
pub(crate) const BLOCK_HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 4 + 8 * STREAMS + 4;

pub(crate) fn encode_block(
    kind: BlockKind,
    index: u64,
    first_seq: u64,
    count: u32,
    streams: &[Vec<u8>; STREAMS],
    stats: &mut WriterStats,
) -> std::io::Result<Vec<u8>> {
    // Never write what the reader would refuse (it would make the whole
    // recording unreadable from here on): fail, and the trace ends cleanly
    // at the previous block.
    if count > MAX_BLOCK_ENTRIES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a block of {count} entries is over the format's limit of {MAX_BLOCK_ENTRIES}"),
        ));
    }
    let mut compressed: Vec<Vec<u8>> = Vec::with_capacity(STREAMS);
    for (i, s) in streams.iter().enumerate() {
        if s.len() > MAX_STREAM_BYTES as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the {} stream of a block holds {} bytes, over the format's limit of {MAX_STREAM_BYTES}",
                    STREAM_NAMES[i],
                    s.len()
                ),
            ));
        }
        let c = if s.is_empty() {
            Vec::new()
        } else {
            zstd::bulk::compress(s, ZSTD_LEVEL)?
        };
        if c.len() > MAX_STREAM_BYTES as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the {} stream of a block compresses to {} bytes, over the format's limit of {MAX_STREAM_BYTES}",
                    STREAM_NAMES[i],
                    c.len()
                ),
            ));
        }
        stats.raw[i] += s.len() as u64;
        stats.compressed[i] += c.len() as u64;
        compressed.push(c);
    }
    let payload: usize = compressed.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(BLOCK_HEADER_BYTES + payload);
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for s in streams {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    for c in &compressed {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    compressed.iter().for_each(|c| crc.update(c));
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    compressed.iter().for_each(|c| out.extend_from_slice(c));
    Ok(out)
}
