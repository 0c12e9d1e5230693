//! Lets a hart keep its translated code across chunk starts.
//!
//! A chunk starts with an empty TLB, so that every page it touches goes
//! through the second-level table (its read and write sets). That used to
//! drop translated blocks too, since another hart's commit or a DMA entry
//! might have rewritten their code: every block was then compared with
//! memory again after every chunk start (10⁵ per Linux boot). Instead,
//! every page a hart fetches from is marked here, every write-back and DMA
//! write to a marked page moves a counter, and a hart whose chunk starts
//! with the counter where it last saw it keeps its blocks.
//!
//! Why that is enough, in record and in replay:
//! - A write a chunk must see (its entry precedes the chunk's start
//!   watermark) has retired before the chunk starts, and the counter moved
//!   before the retirement: the chunk's reads of the watermark and then of
//!   the counter see it.
//! - A write-back not yet retired when the chunk starts either touches no
//!   page the chunk fetches from, or the two conflict: the recording
//!   squashed the chunk (a squash restores the hart, which drops its
//!   blocks), and a replay never sees that pair.
//! - A block made from a page's contents before a later write-back changed
//!   them: its fetch marked the page before that write-back checks the
//!   mark, because the fetching chunk committed first (the commit lock, and
//!   in replay the in-order write-back, order the two) or was squashed.
//!
//! And a hart's own writes: in a chunk a page it writes moves to a private
//! copy (in replay too, for a page fetched from, when the entry otherwise
//! writes shared memory: `AdTable::set_shared_writes`), so the blocks made
//! from the page's shared copy no longer match its execute-TLB entry, and a store to a page fetched from in this chunk
//! drops code as ever (`DecodeCache::code_pages`, emptied at every chunk
//! start so that what a store drops depends on the chunk alone).
//!
//! Only the chunk strategy uses it, in record and replay alike (what
//! `fence.i` drops must be the same in both). The serial strategy records
//! with writes going straight to shared memory, so the hart's own writes
//! would not move pages; under CREW every hart does, at any moment.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::table::PageBits;

/// Pages fetched from, and a count of writes to them.
pub(crate) struct CodeWatch {
    fetched: PageBits,
    writes: AtomicU64,
}

impl CodeWatch {
    /// A watch over `pages` RAM pages.
    pub(crate) fn new(pages: usize) -> Self {
        Self {
            fetched: PageBits::new(pages),
            writes: AtomicU64::new(0),
        }
    }

    /// A hart fetched from RAM page `page` (on its execute-TLB refill).
    #[inline]
    pub(crate) fn fetched(&self, page: usize) {
        self.fetched.mark(page);
    }

    /// Whether a hart has fetched from RAM page `page`.
    #[inline]
    pub(crate) fn was_fetched(&self, page: usize) -> bool {
        self.fetched.contains(page)
    }

    /// Pages `pages` were written in shared RAM (a write-back or a DMA
    /// entry), before the entry retires.
    pub(crate) fn written(&self, pages: impl IntoIterator<Item = usize>) {
        if pages.into_iter().any(|p| self.fetched.contains(p)) {
            self.writes.fetch_add(1, Ordering::Release);
        }
    }

    /// A device wrote RAM (the HTIF's answer to a system call): where is
    /// not known, so the count moves.
    pub(crate) fn written_by_device(&self) {
        self.writes.fetch_add(1, Ordering::Release);
    }

    /// The count of writes to fetched pages; read after the watermark a
    /// chunk starts from.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }
}

/// What one hart knows of the watch: the count it last started a chunk
/// with.
#[derive(Default)]
pub(crate) struct CodeSeen(Option<u64>);

impl CodeSeen {
    /// Empties the hart's TLB for a new chunk (or entry) that starts now,
    /// after its start watermark was read. Translated code stays valid
    /// unless a page some hart fetched from was written since this hart's
    /// last chunk start, or `watch` is `None` (the strategy writes memory
    /// directly).
    pub(crate) fn start_chunk(&mut self, hart: &mut samsara_cpu::Hart, watch: Option<&CodeWatch>) {
        let now = watch.map(CodeWatch::writes);
        // Others' writes reach the hart only here: `fence.i` has nothing
        // left to drop.
        hart.set_fence_i_keeps_code(watch.is_some());
        if now.is_some() && now == self.0 {
            hart.flush_tlb_keeping_code();
        } else {
            hart.flush_tlb();
            self.0 = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_to_fetched_pages_move_the_count() {
        let w = CodeWatch::new(1000);
        w.written([5, 6]);
        assert_eq!(w.writes(), 0);
        w.fetched(6);
        w.written([999]);
        assert_eq!(w.writes(), 0);
        w.written([5, 6]);
        assert_eq!(w.writes(), 1);
        // Out of range: ignored, never a panic.
        w.fetched(5000);
        w.written([5000]);
        assert_eq!(w.writes(), 1);
    }
}
