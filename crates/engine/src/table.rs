//! The software second-level page table: Samsara's EPT with Accessed/Dirty
//! bits, over guest-physical 4 KiB pages of RAM, plus the chunk's private
//! copy-on-write pages.
//!
//! Shape: a two-level radix tree. Leaves hold one A/D byte per page; the
//! interior level is a bitmap with one "accessed" bit per 512-page (2 MiB)
//! group. The first touch of a page in a chunk sets the leaf's A bit and its
//! group's bit (this happens on a software-TLB refill, never per access);
//! the first write also copies the page and sets D. At chunk end one walk
//! visits only the groups whose bit is set, which is what makes the walk
//! cheap for a chunk that touched a few pages of a large memory.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use samsara_types::Fnv1a;

/// Leaf bit: the page was touched in this chunk.
const ACCESSED: u8 = 1;
/// Leaf bit: the page was written in this chunk (it has a private copy).
const DIRTY: u8 = 2;
/// Pages per interior-level group (a 2 MiB sub-tree).
const GROUP_PAGES: usize = 512;
/// u64 words in a page.
const PAGE_WORDS: usize = 512;

/// A private copy of one guest page, 4 KiB aligned like the real thing.
#[repr(C, align(4096))]
pub(crate) struct PageBuf([u64; PAGE_WORDS]);

impl PageBuf {
    fn zeroed() -> Box<PageBuf> {
        Box::new(PageBuf([0; PAGE_WORDS]))
    }

    pub(crate) fn as_ptr(&mut self) -> NonNull<u8> {
        NonNull::from(&mut self.0).cast()
    }

    /// The page's words, read atomically (the hart writes them through raw
    /// pointers with atomic accesses).
    pub(crate) fn words(&self) -> impl Iterator<Item = u64> + '_ {
        (0..PAGE_WORDS).map(|i| self.word(i))
    }

    /// Word `i` (< 512), read atomically.
    fn word(&self, i: usize) -> u64 {
        let w = &self.0[i];
        // SAFETY: the pointer is to a live, aligned u64 of this buffer.
        unsafe { AtomicU64::from_ptr(std::ptr::from_ref(w).cast_mut()) }.load(Ordering::Relaxed)
    }
}

impl PageBuf {
    /// Copies the page's bytes from `offset` into `buf` (which must fit).
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) {
        for (k, b) in buf.iter_mut().enumerate() {
            let at = offset + k;
            let word = self.word(at / 8);
            *b = word.to_le_bytes()[at % 8];
        }
    }
}

/// The pages a chunk touched and wrote, from one walk of the table.
#[derive(Default, Debug, Clone)]
pub(crate) struct ChunkSets {
    /// Pages read, written or fetched (indices relative to RAM's first page), ascending.
    pub touched: Vec<u32>,
    /// Of those, pages written (they have private copies), ascending.
    pub dirty: Vec<u32>,
}

/// One hart's second-level table and private pages.
pub(crate) struct AdTable {
    leaves: Vec<u8>,
    groups: Vec<u64>,
    /// Per page: 1 + index into `copies` of its private copy, or 0.
    copy_of: Vec<u32>,
    copies: Vec<Box<PageBuf>>,
    /// Buffers of finished chunks, reused.
    free: Vec<Box<PageBuf>>,
    /// Writes go straight to shared memory (no private copies): for a
    /// hart that runs alone (the serial strategy), where nothing can
    /// conflict and nothing is ever squashed, and for CREW, whose page
    /// ownership orders every access instead.
    direct: bool,
    /// This entry writes shared memory directly although its recording
    /// wrote private copies: a replayed chunk that nothing before it in the
    /// order is still running or writing back beside (see
    /// [`AdTable::set_shared_writes`]). Until the next reset.
    shared_writes: bool,
}

impl AdTable {
    /// A table for `pages` RAM pages; `direct`: writes go to shared RAM
    /// (see the field).
    pub(crate) fn new(pages: usize, direct: bool) -> Self {
        Self {
            leaves: vec![0; pages],
            groups: vec![0; pages.div_ceil(GROUP_PAGES).div_ceil(64)],
            copy_of: vec![0; pages],
            copies: Vec::new(),
            free: Vec::new(),
            direct,
            shared_writes: false,
        }
    }

    /// The entry about to run writes shared memory directly (until the
    /// next [`AdTable::reset`]). Sound in replay when every earlier entry
    /// has written back: a later one running beside it touches none of the
    /// pages it writes (the recording's conflict check), and writes its
    /// own to private copies until its turn. A first write to a page the
    /// entry touched before still reports the page as moved, so the hart
    /// drops the cached translations the recording dropped when the page
    /// went to a private copy: the walks that follow, and any A/D bits
    /// they set, are the recording's.
    pub(crate) fn set_shared_writes(&mut self, on: bool) {
        self.shared_writes = on;
    }

    /// Whether this entry writes shared memory although its recording
    /// wrote private copies ([`AdTable::set_shared_writes`]).
    pub(crate) fn writes_shared(&self) -> bool {
        self.shared_writes
    }

    /// Notes a touch of `page`; on the first write, copies `shared` into a
    /// private page. Returns the host page to use and whether the page just
    /// moved to a private copy (cached translations to `shared` must go).
    #[inline]
    pub(crate) fn touch(
        &mut self,
        page: usize,
        write: bool,
        shared: NonNull<u8>,
    ) -> (NonNull<u8>, bool) {
        self.touch_as(page, write, shared, self.direct || self.shared_writes)
    }

    /// As [`AdTable::touch`], but a first write goes to a private copy
    /// even while the entry writes shared memory (a page with code on it:
    /// see `ChunkBus::ram_page`).
    #[inline]
    pub(crate) fn touch_private(
        &mut self,
        page: usize,
        write: bool,
        shared: NonNull<u8>,
    ) -> (NonNull<u8>, bool) {
        self.touch_as(page, write, shared, self.direct)
    }

    #[inline]
    fn touch_as(
        &mut self,
        page: usize,
        write: bool,
        shared: NonNull<u8>,
        on_shared: bool,
    ) -> (NonNull<u8>, bool) {
        let leaf = self.leaves[page];
        if leaf & ACCESSED == 0 {
            self.groups[page / GROUP_PAGES / 64] |= 1 << ((page / GROUP_PAGES) % 64);
        }
        if leaf & DIRTY != 0 {
            // Written already: to its private copy if it has one.
            return match self.copy_of[page] {
                0 => (shared, false),
                slot => (self.copies[slot as usize - 1].as_ptr(), false),
            };
        }
        if !write || on_shared {
            self.leaves[page] = leaf | ACCESSED | if write { DIRTY } else { 0 };
            let moved = self.shared_writes && write && leaf & (ACCESSED | DIRTY) == ACCESSED;
            return (shared, moved);
        }
        let mut buf = self.free.pop().unwrap_or_else(PageBuf::zeroed);
        copy_page_from_shared(&mut buf, shared);
        self.copies.push(buf);
        self.copy_of[page] = self.copies.len() as u32;
        self.leaves[page] = leaf | ACCESSED | DIRTY;
        let slot = self.copies.len() - 1;
        (self.copies[slot].as_ptr(), leaf & ACCESSED != 0)
    }

    /// Whether writes go straight to shared memory (see the field).
    pub(crate) fn is_direct(&self) -> bool {
        self.direct || self.shared_writes
    }

    /// Whether the current chunk touched `page`.
    #[inline]
    pub(crate) fn touched(&self, page: usize) -> bool {
        self.leaves.get(page).is_some_and(|l| l & ACCESSED != 0)
    }

    /// The walk: collects the touched and dirty pages, visiting only groups
    /// whose accessed bit is set. Does not clear (the conflict check still
    /// looks at the leaves); [`AdTable::reset`] does.
    pub(crate) fn walk(&self, sets: &mut ChunkSets) {
        sets.touched.clear();
        sets.dirty.clear();
        for (w, &word) in self.groups.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let group = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let start = group * GROUP_PAGES;
                let end = (start + GROUP_PAGES).min(self.leaves.len());
                // Eight leaves at a time: a chunk touches a few pages of
                // each group it touches at all.
                for (w, eight) in self.leaves[start..end].chunks(8).enumerate() {
                    let none = match <[u8; 8]>::try_from(eight) {
                        Ok(word) => u64::from_ne_bytes(word) == 0,
                        Err(_) => eight.iter().all(|&l| l == 0),
                    };
                    if none {
                        continue;
                    }
                    for (i, &leaf) in eight.iter().enumerate() {
                        let page = (start + w * 8 + i) as u32;
                        if leaf & ACCESSED != 0 {
                            sets.touched.push(page);
                            if leaf & DIRTY != 0 {
                                sets.dirty.push(page);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The private copy of `page`, if the chunk wrote it.
    pub(crate) fn private(&self, page: usize) -> Option<&PageBuf> {
        match self.copy_of.get(page) {
            Some(&slot) if slot != 0 => Some(&self.copies[slot as usize - 1]),
            _ => None,
        }
    }

    /// Clears the bits of `sets.touched` (from this chunk's walk) and
    /// recycles the private pages: the table is ready for the next chunk.
    pub(crate) fn reset(&mut self, sets: &ChunkSets) {
        for &p in &sets.touched {
            self.leaves[p as usize] = 0;
            self.copy_of[p as usize] = 0;
        }
        self.groups.iter_mut().for_each(|g| *g = 0);
        self.free.append(&mut self.copies);
        self.shared_writes = false;
    }
}

/// A set of RAM pages (indices from RAM's first page), one bit each, that
/// hart threads add to concurrently (a load first, so a page added again
/// costs no contended read-modify-write).
pub(crate) struct PageBits {
    words: Box<[AtomicU64]>,
}

impl PageBits {
    pub(crate) fn new(pages: usize) -> Self {
        Self {
            words: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    pub(crate) fn mark(&self, page: usize) {
        let Some(w) = self.words.get(page / 64) else {
            return;
        };
        let bit = 1u64 << (page % 64);
        if w.load(Ordering::Relaxed) & bit == 0 {
            w.fetch_or(bit, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn mark_all(&self, pages: &[u32]) {
        for &p in pages {
            self.mark(p as usize);
        }
    }

    #[inline]
    pub(crate) fn contains(&self, page: usize) -> bool {
        self.words
            .get(page / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (page % 64)) != 0)
    }

    /// The marked pages, ascending; clears them.
    pub(crate) fn take(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, w) in self.words.iter().enumerate() {
            let mut bits = w.swap(0, Ordering::Relaxed);
            while bits != 0 {
                out.push(i * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        out
    }
}

fn copy_page_from_shared(buf: &mut PageBuf, shared: NonNull<u8>) {
    let src = shared.as_ptr().cast::<u64>();
    for (i, w) in buf.0.iter_mut().enumerate() {
        // SAFETY: `shared` is a 4 KiB-aligned page of guest RAM (or ROM),
        // which other harts access concurrently, always atomically.
        *w = unsafe { AtomicU64::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
    }
}

/// Writes a private page back to shared RAM (commit phase 2).
pub(crate) fn write_back(buf: &PageBuf, shared: NonNull<u8>) {
    let dst = shared.as_ptr().cast::<u64>();
    for (i, w) in buf.words().enumerate() {
        // SAFETY: as in `copy_page_from_shared`.
        unsafe { AtomicU64::from_ptr(dst.add(i)) }.store(w, Ordering::Relaxed);
    }
}

/// Reads a shared page atomically.
pub(crate) fn shared_words(shared: NonNull<u8>) -> impl Iterator<Item = u64> {
    let src = shared.as_ptr().cast::<u64>();
    (0..PAGE_WORDS).map(move |i| {
        // SAFETY: as in `copy_page_from_shared`.
        unsafe { AtomicU64::from_ptr(src.add(i)) }.load(Ordering::Relaxed)
    })
}

/// FNV-1a of a page's contents (verification digests).
/// One round per word ([`Fnv1a::write_word`]), not byte-wise.
pub(crate) fn page_hash(words: impl Iterator<Item = u64>) -> u64 {
    let mut h = Fnv1a::new();
    words.for_each(|w| h.write_word(w));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bits_take_in_order_and_clear() {
        let d = PageBits::new(200);
        d.mark_all(&[130, 3, 3, 64]);
        d.mark(999); // outside: ignored
        assert!(d.contains(64) && !d.contains(65) && !d.contains(999));
        assert_eq!(d.take(), vec![3, 64, 130]);
        assert!(d.take().is_empty() && !d.contains(64));
    }

    #[test]
    fn walk_finds_touched_and_dirty_pages_and_reset_clears() {
        let mut shared = PageBuf::zeroed();
        shared.0[3] = 42;
        let sp = shared.as_ptr();
        let mut t = AdTable::new(5000, false);
        let (p, moved) = t.touch(7, false, sp);
        assert_eq!((p, moved), (sp, false));
        let (priv_ptr, moved) = t.touch(7, true, sp);
        assert!(moved, "a page read before it was copied moves");
        assert_ne!(priv_ptr, sp);
        assert_eq!(t.private(7).map(|b| b.0[3]), Some(42));
        let (_, moved) = t.touch(4999, true, sp);
        assert!(!moved);
        t.touch(600, false, sp);
        let mut sets = ChunkSets::default();
        t.walk(&mut sets);
        assert_eq!(sets.touched, vec![7, 600, 4999]);
        assert_eq!(sets.dirty, vec![7, 4999]);
        assert!(t.touched(600) && !t.touched(601));
        t.reset(&sets);
        t.walk(&mut sets);
        assert!(sets.touched.is_empty() && sets.dirty.is_empty());
        assert!(t.private(7).is_none());
        assert_eq!(t.free.len(), 2);
    }

    /// An entry writing shared memory reports the moves copy-on-write
    /// would have made (so the hart drops the same cached translations),
    /// copies only what it is told to keep private, and the mode ends at
    /// the reset.
    #[test]
    fn shared_writes_report_the_moves_copy_on_write_makes() {
        let mut shared = PageBuf::zeroed();
        let sp = shared.as_ptr();
        let mut t = AdTable::new(100, false);
        t.set_shared_writes(true);
        assert!(t.is_direct() && t.writes_shared());
        t.touch(1, false, sp);
        assert_eq!(
            t.touch(1, true, sp),
            (sp, true),
            "read, then written: moves"
        );
        assert_eq!(t.touch(1, true, sp), (sp, false), "moved once");
        assert_eq!(t.touch(1, false, sp), (sp, false));
        assert_eq!(
            t.touch(2, true, sp),
            (sp, false),
            "first touched by a write"
        );
        t.touch(3, false, sp);
        let (copy, moved) = t.touch_private(3, true, sp);
        assert!(moved && copy != sp, "kept private: copied, and moves");
        assert_eq!(
            t.touch(3, false, sp),
            (copy, false),
            "then read from the copy"
        );
        let mut sets = ChunkSets::default();
        t.walk(&mut sets);
        assert_eq!(sets.dirty, vec![1, 2, 3]);
        assert!(t.private(1).is_none() && t.private(3).is_some());
        t.reset(&sets);
        assert!(!t.writes_shared() && !t.is_direct());
        assert_ne!(t.touch(1, true, sp).0, sp, "copy-on-write again");
    }
}

#[cfg(test)]
mod pinned {
    use super::*;

    /// Traces store page hashes: the algorithm must never change. The
    /// values were computed by the original implementation.
    #[test]
    fn page_hash_is_pinned() {
        assert_eq!(
            page_hash((0..PAGE_WORDS as u64).map(|_| 0)),
            0x7da1_44b9_7d05_4b25
        );
        let words = (0..PAGE_WORDS as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xff);
        assert_eq!(page_hash(words), 0x43d7_4c3f_06f9_df25);
    }
}
