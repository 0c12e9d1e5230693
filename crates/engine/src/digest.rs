//! Final-state digests (BLAKE3 over all of RAM, each hart's own digest) and
//! the guest output they are compared with.

use samsara_machine::devices::uart::SerialOutput;
use std::sync::Arc;

use parking_lot::Mutex;
use samsara_cpu::Hart;
use samsara_machine::ram::GuestRam;
use samsara_trace::{FOOTER_OUTPUT_BYTES, RamDigest};

/// The console of a recorded or replayed machine: logs what the guest
/// prints (the trace holds it; replay compares it) and optionally copies it
/// to stdout.
pub(crate) struct Console {
    /// Copy to stdout as well.
    pub echo: bool,
    /// The log.
    pub capture: OutputLog,
    /// Where the outside world sees it (a TCP console, held output...):
    /// its errors are the recipient's problem, never the guest's.
    pub external: Option<SerialOutput>,
}

/// What the guest printed, in bounded memory: the first
/// [`FOOTER_OUTPUT_BYTES`] bytes, the total length and a BLAKE3 of all of it.
#[derive(Clone, Default)]
pub(crate) struct OutputLog(Arc<Mutex<OutputState>>);

/// What an [`OutputLog`] held at some moment, to go back to.
#[derive(Clone, Default)]
pub(crate) struct OutputState {
    head: Vec<u8>,
    len: u64,
    hasher: blake3::Hasher,
}

impl OutputState {
    /// Heap memory it holds (the head of the output).
    pub fn heap_bytes(&self) -> usize {
        self.head.capacity()
    }
}

/// A finished [`OutputLog`].
pub(crate) struct OutputSummary {
    /// The first [`FOOTER_OUTPUT_BYTES`] bytes.
    pub head: Vec<u8>,
    /// Bytes printed in all.
    pub len: u64,
    /// BLAKE3 of all of them, hex.
    pub blake3: String,
}

impl OutputLog {
    fn write(&self, buf: &[u8]) {
        let mut s = self.0.lock();
        let room = FOOTER_OUTPUT_BYTES.saturating_sub(s.head.len());
        s.head.extend_from_slice(&buf[..buf.len().min(room)]);
        s.len += buf.len() as u64;
        s.hasher.update(buf);
    }

    /// Everything the log holds now.
    pub fn save(&self) -> OutputState {
        self.0.lock().clone()
    }

    /// Back to what [`OutputLog::save`] saw.
    pub fn restore(&self, state: &OutputState) {
        *self.0.lock() = state.clone();
    }

    /// What was printed so far.
    pub fn summary(&self) -> OutputSummary {
        let s = self.0.lock();
        OutputSummary {
            head: s.head.clone(),
            len: s.len,
            blake3: s.hasher.finalize().to_hex().to_string(),
        }
    }
}

impl std::io::Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(buf);
            let _ = out.flush();
        }
        self.capture.write(buf);
        if let Some(external) = &mut self.external {
            let _ = external.write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(external) = &mut self.external {
            let _ = external.flush();
        }
        Ok(())
    }
}

/// Hex BLAKE3 of `bytes`.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// (per-hart digests, RAM digest) of stopped harts and their RAM.
///
/// # Safety
/// As [`ram_digest`]: nothing writes RAM meanwhile.
pub(crate) unsafe fn digests(
    harts: &[Hart],
    ram: &GuestRam,
    kind: RamDigest,
) -> (Vec<u64>, String) {
    // SAFETY: passed on to the caller.
    let ram = unsafe { ram_digest(ram, kind) };
    (harts.iter().map(|h| h.digest()).collect(), ram)
}

/// RAM's digest of `kind`, hex, on two threads (a recording and its replay
/// digest RAM at the start and the end, with nothing else running).
///
/// # Safety
/// Nothing may write RAM meanwhile: no hart runs, no DMA.
pub(crate) unsafe fn ram_digest(ram: &GuestRam, kind: RamDigest) -> String {
    // SAFETY: the caller's promise.
    let bytes = unsafe { ram.quiescent_bytes() };
    match kind {
        RamDigest::Full => hash_on_two_threads(&[bytes]),
        RamDigest::Sparse => {
            let bitmap = nonzero_page_bitmap(bytes);
            let size = (bytes.len() as u64).to_le_bytes();
            let mut parts = nonzero_runs(bytes, &bitmap);
            parts.push(&bitmap);
            parts.push(&size);
            hash_on_two_threads(&parts)
        }
    }
}

const PAGE: usize = samsara_types::PAGE_SIZE as usize;

/// Bit `i % 8` of byte `i / 8` set when page `i` holds a byte that is not
/// zero (two threads, a half of RAM each).
fn nonzero_page_bitmap(bytes: &[u8]) -> Vec<u8> {
    let pages = bytes.len() / PAGE;
    let mut bitmap = vec![0u8; pages.div_ceil(8)];
    let half = bitmap.len() / 2;
    let (low, high) = bitmap.split_at_mut(half);
    let mark = |first_page: usize, bits: &mut [u8]| {
        for (i, byte) in bits.iter_mut().enumerate() {
            for bit in 0..8 {
                let page = first_page + i * 8 + bit;
                if page < pages && !is_zero(&bytes[page * PAGE..(page + 1) * PAGE]) {
                    *byte |= 1 << bit;
                }
            }
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| mark(0, low));
        mark(half * 8, high);
    });
    bitmap
}

/// Whether every byte is zero: 256 bytes at a time, which the compiler
/// vectorises, stopping at the first block that is not.
fn is_zero(page: &[u8]) -> bool {
    page.chunks(256)
        .all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// The runs of consecutive pages the bitmap marks, as slices of RAM.
fn nonzero_runs<'a>(bytes: &'a [u8], bitmap: &[u8]) -> Vec<&'a [u8]> {
    let marked = |page: usize| bitmap[page / 8] & (1 << (page % 8)) != 0;
    let pages = bytes.len() / PAGE;
    let mut runs = Vec::new();
    let mut page = 0;
    while page < pages {
        if !marked(page) {
            page += 1;
            continue;
        }
        let first = page;
        while page < pages && marked(page) {
            page += 1;
        }
        runs.push(&bytes[first * PAGE..page * PAGE]);
    }
    runs
}

/// Hex BLAKE3 of the concatenation of `parts`: the two halves of BLAKE3's
/// tree on two threads, joined at the root (the same hash as one pass).
fn hash_on_two_threads(parts: &[&[u8]]) -> String {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_root};
    let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
    if len <= blake3::CHUNK_LEN as u64 {
        let mut hasher = blake3::Hasher::new();
        feed(parts, 0, len, &mut hasher);
        return hasher.finalize().to_hex().to_string();
    }
    let left = left_subtree_len(len);
    let (left_cv, right_cv) = std::thread::scope(|s| {
        let right = s.spawn(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.set_input_offset(left);
            feed(parts, left, len, &mut hasher);
            hasher.finalize_non_root()
        });
        let mut hasher = blake3::Hasher::new();
        feed(parts, 0, left, &mut hasher);
        (
            hasher.finalize_non_root(),
            right.join().expect("the digest thread panicked"),
        )
    });
    merge_subtrees_root(&left_cv, &right_cv, Mode::Hash)
        .to_hex()
        .to_string()
}

/// Feeds `hasher` bytes `[from, to)` of the concatenation of `parts`.
fn feed(parts: &[&[u8]], from: u64, to: u64, hasher: &mut blake3::Hasher) {
    let mut at = 0u64;
    for part in parts {
        let end = at + part.len() as u64;
        let (lo, hi) = (from.max(at), to.min(end));
        if lo < hi {
            hasher.update(&part[(lo - at) as usize..(hi - at) as usize]);
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_log_keeps_a_bounded_head_and_hashes_everything() {
        let log = OutputLog::default();
        let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut all = Vec::new();
        for _ in 0..30 {
            log.write(&chunk);
            all.extend_from_slice(&chunk);
        }
        let s = log.summary();
        assert_eq!(s.len, all.len() as u64);
        assert_eq!(s.head, all[..FOOTER_OUTPUT_BYTES]);
        assert_eq!(s.blake3, blake3_hex(&all));
    }

    /// A RAM of `size` bytes holding `bytes` (the rest zero).
    fn ram_with(size: u64, bytes: &[u8]) -> GuestRam {
        let ram = GuestRam::new(samsara_types::GuestPhysAddr(0x8000_0000), size).unwrap();
        ram.write(ram.base(), bytes).unwrap();
        ram
    }

    #[test]
    fn full_ram_digest_in_two_halves_is_plain_blake3() {
        for size in [4096u64, 1 << 20, 3 << 20, (5 << 20) + 4096] {
            let bytes: Vec<u8> = (0..size).map(|k| (k * 7 + k / 4099) as u8).collect();
            let ram = ram_with(size, &bytes);
            // SAFETY: nothing else touches this RAM.
            let digest = unsafe { ram_digest(&ram, RamDigest::Full) };
            assert_eq!(digest, blake3_hex(&bytes), "{size} bytes");
        }
    }

    /// The sparse digest is BLAKE3 of exactly the encoding its doc gives.
    #[test]
    fn sparse_ram_digest_hashes_the_nonzero_pages_their_bitmap_and_the_size() {
        let size = (3 << 20) + 3 * 4096u64;
        let pages = (size / 4096) as usize;
        let mut bytes = vec![0u8; size as usize];
        // Runs and lone pages, a page whose only non-zero byte is its last,
        // and the last page.
        let nonzero = [0usize, 1, 2, 7, 300, 301, 511, 512, 700, pages - 1];
        for &p in &nonzero {
            bytes[p * PAGE + 4095] = p as u8 | 1;
            if p % 2 == 0 {
                bytes[p * PAGE..p * PAGE + 100].fill(0xa5);
            }
        }
        let mut encoding = Vec::new();
        let mut bitmap = vec![0u8; pages.div_ceil(8)];
        for &p in &nonzero {
            encoding.extend_from_slice(&bytes[p * PAGE..(p + 1) * PAGE]);
            bitmap[p / 8] |= 1 << (p % 8);
        }
        encoding.extend_from_slice(&bitmap);
        encoding.extend_from_slice(&size.to_le_bytes());
        let ram = ram_with(size, &bytes);
        // SAFETY: nothing else touches this RAM.
        let digest = unsafe { ram_digest(&ram, RamDigest::Sparse) };
        assert_eq!(digest, blake3_hex(&encoding));

        // The same bytes one page further on digest differently.
        let mut moved = vec![0u8; size as usize];
        moved[PAGE..].copy_from_slice(&bytes[..size as usize - PAGE]);
        let ram = ram_with(size, &moved);
        // SAFETY: as above.
        assert_ne!(unsafe { ram_digest(&ram, RamDigest::Sparse) }, digest);
        // An empty RAM digests its bitmap and size alone.
        let ram = ram_with(size, &[]);
        let mut empty = vec![0u8; pages.div_ceil(8)];
        empty.extend_from_slice(&size.to_le_bytes());
        // SAFETY: as above.
        let digest = unsafe { ram_digest(&ram, RamDigest::Sparse) };
        assert_eq!(digest, blake3_hex(&empty));
    }
}
