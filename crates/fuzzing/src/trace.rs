//! Fuzz target 1: the trace reader's whole read path.
//!
//! The first input byte chooses how the rest is used:
//! - even: the rest *is* a trace file, read as `samsara replay` and
//!   `samsara inspect` read one (preamble, header JSON, every block, footer);
//! - odd: the rest describes a trace whose framing the harness completes
//!   (zstd compression, lengths, CRCs, block numbering — each of which the
//!   input may still get wrong on purpose), so that mutations reach the
//!   header JSON, the entry decoder and the footer JSON instead of dying at a
//!   checksum. See [`framed`] for the layout.
//!
//! Every error must name an offset inside the file; nothing may panic, hang,
//! or allocate by a claimed size (libFuzzer's `-rss_limit_mb` and
//! `-malloc_limit_mb` catch that).

use samsara_trace::{BLOCK_MAGIC, Block, FORMAT_VERSION, MAGIC, STREAMS, TraceReader};

/// Blocks read before giving up; every block consumes at least its 64-byte
/// header, so a valid input never reaches this.
const MAX_BLOCKS: usize = 1 << 16;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        framed(rest)
    };
    read_all(file);
}

/// Reads a whole trace held in `file`, checking what the reader promises.
fn read_all(file: Vec<u8>) {
    let len = file.len() as u64;
    let mut reader = match TraceReader::from_bytes("fuzz.trace", file) {
        Ok(r) => r,
        Err(e) => return check_error(&e, len),
    };
    let _ = format!("{:?}", reader.header());
    let mut entries = 0u64;
    for _ in 0..MAX_BLOCKS {
        let before = reader.offset();
        match reader.next_block() {
            Ok(Some(Block::Entries {
                first_seq,
                entries: e,
                ..
            })) => {
                assert_eq!(first_seq, entries + 1, "blocks out of sequence");
                entries += e.len() as u64;
                assert!(reader.offset() > before, "a block consumed no bytes");
            }
            Ok(Some(Block::Footer(f))) => {
                assert_eq!(f.entries, entries, "footer disagrees with the blocks");
            }
            Ok(None) => {
                assert_eq!(reader.offset(), len, "end reported before the end");
                return;
            }
            Err(e) => return check_error(&e, len),
        }
    }
    panic!("{MAX_BLOCKS} blocks from a {len}-byte file");
}

fn check_error(e: &samsara_trace::TraceError, len: u64) {
    let text = e.to_string();
    assert!(!text.is_empty());
    assert!(
        e.offset <= len,
        "error offset {} past the end ({len}): {text}",
        e.offset
    );
}

/// Pulls fields off the front of the input; past its end every field is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | (u16::from(self.u8()) << 8)
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Builds a trace file from a description:
///
/// ```text
/// header:  len:u16 json:[u8; len]
/// block*:  flags:u8 count:u16 (len:u16 bytes:[u8; len]) x 4
///          [index:u64 if flags & 4] [first_seq:u64 if flags & 8]
///          [raw_len:u32 x 4 if flags & 16]
/// ```
///
/// Block kind is `flags & 3` (1 entries, 2 footer, others invalid). Stream
/// bytes are the *uncompressed* streams; the harness compresses them and
/// fills in lengths and the CRC unless the flags override a field (32: the
/// CRC is left 0; 64: the stream bytes are stored as given, uncompressed).
pub fn framed(data: &[u8]) -> Vec<u8> {
    let mut input = Input(data);
    let mut out = Vec::new();
    let hlen = usize::from(input.u16());
    let json = input.bytes(hlen).to_vec();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&json);
    let (mut index, mut seq) = (0u64, 1u64);
    while !input.done() {
        let flags = input.u8();
        let count = u32::from(input.u16());
        let streams: Vec<Vec<u8>> = (0..STREAMS)
            .map(|_| {
                let n = usize::from(input.u16());
                input.bytes(n).to_vec()
            })
            .collect();
        let block_index = if flags & 4 != 0 { input.u64() } else { index };
        let first_seq = if flags & 8 != 0 { input.u64() } else { seq };
        let mut raw: Vec<u32> = streams.iter().map(|s| s.len() as u32).collect();
        if flags & 16 != 0 {
            for r in &mut raw {
                *r = input.u32();
            }
        }
        let stored: Vec<Vec<u8>> = streams
            .iter()
            .map(|s| {
                if s.is_empty() || flags & 64 != 0 {
                    s.clone()
                } else {
                    zstd::bulk::compress(s, 1).unwrap_or_default()
                }
            })
            .collect();
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(BLOCK_MAGIC);
        head.extend_from_slice(&[flags & 3, 0, 0, 0]);
        head.extend_from_slice(&block_index.to_le_bytes());
        head.extend_from_slice(&first_seq.to_le_bytes());
        head.extend_from_slice(&count.to_le_bytes());
        for r in &raw {
            head.extend_from_slice(&r.to_le_bytes());
        }
        for s in &stored {
            head.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        for s in &stored {
            crc.update(s);
        }
        let crc = if flags & 32 != 0 { 0 } else { crc.finalize() };
        out.extend_from_slice(&head);
        out.extend_from_slice(&crc.to_le_bytes());
        for s in &stored {
            out.extend_from_slice(s);
        }
        index += 1;
        if flags & 3 == 1 {
            seq += u64::from(count);
        }
    }
    out
}

/// Inverse of [`framed`] for a well-formed trace: the description that
/// rebuilds `file` (with the harness's own compression). Used to turn real
/// traces into seeds for the framed mode. `None` if `file` is not a complete
/// valid trace whose streams and header fit the description's 16-bit sizes.
pub fn describe(file: &[u8]) -> Option<Vec<u8>> {
    let hlen = u32::from_le_bytes(file.get(20..24)?.try_into().ok()?) as usize;
    let json = file.get(28..28 + hlen)?;
    let mut out = vec![1u8];
    out.extend_from_slice(&u16::try_from(json.len()).ok()?.to_le_bytes());
    out.extend_from_slice(json);
    let mut at = 28 + hlen;
    while at < file.len() {
        let head = file.get(at..at + 64)?;
        let kind = head[4];
        let count = u32::from_le_bytes(head[24..28].try_into().ok()?);
        out.push(kind);
        out.extend_from_slice(&u16::try_from(count).ok()?.to_le_bytes());
        let mut p = at + 64;
        for i in 0..STREAMS {
            let o = 44 + 4 * i;
            let comp = u32::from_le_bytes(head[o..o + 4].try_into().ok()?) as usize;
            let stored = file.get(p..p + comp)?;
            p += comp;
            let raw = if comp == 0 {
                Vec::new()
            } else {
                zstd::stream::decode_all(stored).ok()?
            };
            out.extend_from_slice(&u16::try_from(raw.len()).ok()?.to_le_bytes());
            out.extend_from_slice(&raw);
        }
        at = p;
    }
    Some(out)
}
