//! Final-state digests (BLAKE3 over all of RAM, each hart's own digest) and
//! the guest output they are compared with.

use std::sync::Arc;

use parking_lot::Mutex;
use samsara_cpu::Hart;
use samsara_machine::machine::Machine;
use samsara_machine::ram::GuestRam;
use samsara_trace::FOOTER_OUTPUT_BYTES;

/// The console of a recorded or replayed machine: logs what the guest
/// prints (the trace holds it; replay compares it) and optionally copies it
/// to stdout.
pub(crate) struct Console {
    /// Copy to stdout as well.
    pub echo: bool,
    /// The log.
    pub capture: OutputLog,
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
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hex BLAKE3 of `bytes`.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// (per-hart digests, RAM BLAKE3) of a stopped machine.
pub(crate) fn machine_digests(machine: &Machine) -> (Vec<u64>, String) {
    digests(&machine.harts, &machine.board.ram)
}

/// (per-hart digests, RAM BLAKE3) of stopped harts and their RAM.
pub(crate) fn digests(harts: &[Hart], ram: &GuestRam) -> (Vec<u64>, String) {
    (harts.iter().map(|h| h.digest()).collect(), ram_blake3(ram))
}

/// BLAKE3 of all of RAM, hex: the two halves of BLAKE3's tree hashed on
/// two threads and joined at the root (the same hash as one pass; a
/// recording and its replay both hash all of RAM at the start and the
/// end, with nothing else running, ~0.25 s for 512 MiB in one pass).
pub(crate) fn ram_blake3(ram: &GuestRam) -> String {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_root};
    let len = ram.size();
    if len <= blake3::CHUNK_LEN as u64 {
        return hash_range(ram, 0, len, blake3::Hasher::new())
            .finalize()
            .to_hex()
            .to_string();
    }
    let left = left_subtree_len(len);
    let (left_cv, right_cv) = std::thread::scope(|s| {
        let right = s.spawn(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.set_input_offset(left);
            hash_range(ram, left, len, hasher).finalize_non_root()
        });
        let left_cv = hash_range(ram, 0, left, blake3::Hasher::new()).finalize_non_root();
        (left_cv, right.join().expect("the digest thread panicked"))
    });
    merge_subtrees_root(&left_cv, &right_cv, Mode::Hash)
        .to_hex()
        .to_string()
}

/// `hasher` fed RAM bytes `[from, to)` (offsets from the base).
fn hash_range(ram: &GuestRam, from: u64, to: u64, mut hasher: blake3::Hasher) -> blake3::Hasher {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(buf.len());
        let addr = samsara_types::GuestPhysAddr(ram.base().raw() + at);
        // The range is inside RAM by construction.
        if ram.read(addr, &mut buf[..n]).is_ok() {
            hasher.update(&buf[..n]);
        }
        at += n as u64;
    }
    hasher
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

    #[test]
    fn ram_digest_in_two_halves_is_plain_blake3() {
        for size in [4096u64, 1 << 20, 3 << 20, (5 << 20) + 4096] {
            let ram = GuestRam::new(samsara_types::GuestPhysAddr(0x8000_0000), size).unwrap();
            let bytes: Vec<u8> = (0..size).map(|k| (k * 7 + k / 4099) as u8).collect();
            ram.write(ram.base(), &bytes).unwrap();
            assert_eq!(ram_blake3(&ram), blake3_hex(&bytes), "{size} bytes");
        }
    }
}
