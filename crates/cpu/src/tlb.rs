//! The software TLB and the decoded-instruction cache.
//!
//! TLB: three direct-mapped arrays (read, write, execute), tagged with the
//! virtual page number. An entry holds the host address addend, so a hit is
//! one compare plus one add. Only plain RAM pages whose whole 4 KiB is
//! uniformly allowed by PMP are ever entered; MMIO pages, PMP-restricted
//! pages and the page holding an LR reservation (write array) stay out, so
//! every special case takes the slow path by simply missing.

use std::collections::HashSet;

use samsara_isa::Inst;

/// Entries per TLB array.
const TLB_SIZE: usize = 256;
const INVALID_TAG: u64 = u64::MAX;

/// One cached translation (`repr(C)`: translated code reads it).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct TlbEntry {
    /// Virtual page number, or `INVALID_TAG`.
    pub tag: u64,
    /// `host_page_address - virtual_page_address` (wrapping); add the
    /// virtual address to get the host address (exposed provenance).
    pub addend: usize,
}

const EMPTY: TlbEntry = TlbEntry {
    tag: INVALID_TAG,
    addend: 0,
};

/// Which array.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TlbKind {
    Read,
    Write,
    Execute,
}

/// The three TLB arrays.
pub(crate) struct Tlb {
    pub read: [TlbEntry; TLB_SIZE],
    pub write: [TlbEntry; TLB_SIZE],
    pub exec: [TlbEntry; TLB_SIZE],
    /// Times the execute array was emptied: translated code that calls
    /// out stops if a call emptied it, so that the next fetch walks where
    /// the interpreter's would.
    pub exec_flushes: u64,
}

impl Tlb {
    pub(crate) fn new() -> Box<Tlb> {
        Box::new(Tlb {
            read: [EMPTY; TLB_SIZE],
            write: [EMPTY; TLB_SIZE],
            exec: [EMPTY; TLB_SIZE],
            exec_flushes: 0,
        })
    }

    #[inline(always)]
    pub(crate) const fn index(vpn: u64) -> usize {
        (vpn as usize) & (TLB_SIZE - 1)
    }

    /// The host address for `vaddr` if its page is cached in `array`.
    #[inline(always)]
    pub(crate) fn lookup(array: &[TlbEntry; TLB_SIZE], vaddr: u64) -> Option<usize> {
        let vpn = vaddr >> 12;
        let e = &array[Self::index(vpn)];
        if e.tag == vpn {
            Some(e.addend.wrapping_add(vaddr as usize))
        } else {
            None
        }
    }

    fn array_mut(&mut self, kind: TlbKind) -> &mut [TlbEntry; TLB_SIZE] {
        match kind {
            TlbKind::Read => &mut self.read,
            TlbKind::Write => &mut self.write,
            TlbKind::Execute => &mut self.exec,
        }
    }

    /// Caches `vaddr`'s page as mapping to host page `host_page`.
    pub(crate) fn insert(&mut self, kind: TlbKind, vaddr: u64, host_page: usize) {
        let vpn = vaddr >> 12;
        let vbase = (vaddr & !0xfff) as usize;
        self.array_mut(kind)[Self::index(vpn)] = TlbEntry {
            tag: vpn,
            addend: host_page.wrapping_sub(vbase),
        };
    }

    /// Drops every write entry that points at host page `host_page` (under
    /// any virtual address).
    pub(crate) fn evict_write_host_page(&mut self, host_page: usize) {
        for e in self.write.iter_mut() {
            if e.tag != INVALID_TAG && e.addend.wrapping_add((e.tag << 12) as usize) == host_page {
                *e = EMPTY;
            }
        }
    }

    /// Drops every execute entry (the code pages they vouch for are
    /// forgotten: see `DecodeCache::code_pages`).
    pub(crate) fn flush_exec(&mut self) {
        self.exec = [EMPTY; TLB_SIZE];
        self.exec_flushes += 1;
    }

    pub(crate) fn flush(&mut self) {
        self.read = [EMPTY; TLB_SIZE];
        self.write = [EMPTY; TLB_SIZE];
        self.flush_exec();
    }

    /// Whether the execute array holds `pc`'s page.
    #[inline(always)]
    pub(crate) fn fetchable(&self, pc: u64) -> bool {
        self.exec[Self::index(pc >> 12)].tag == pc >> 12
    }
}

/// Slots in the decode cache.
const DCACHE_SIZE: usize = 32768;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct DecodeSlot {
    pub pc: u64,
    pub generation: u64,
    /// The decoded instruction, stored as is: the executor reads the
    /// fields it needs straight from the slot.
    pub inst: Inst,
}

/// Direct-mapped decoded-instruction cache indexed by `pc >> 1`.
///
/// Invalidation is by generation: bumping `generation` empties the cache in
/// O(1). It is bumped whenever the execute TLB is flushed for a reason
/// other than a switch between U and S mode (so a hit implies the fetch
/// was permitted and its page was touched through `Bus::ram_page` in the
/// current generation), and on fence.i. Its low two bits are the privilege
/// mode: an instruction decoded in S mode does not hit in U mode and the
/// other way round, so a trap and its return keep both sides' entries
/// (they share one `satp` and one PMP; only the U bit differs).
pub(crate) struct DecodeCache {
    pub generation: u64,
    /// Bumped only when code may have changed (`fence.i`, a restore, the
    /// owner's flushes for commits and DMA), not when translation or
    /// privilege does: what translated blocks are valid for.
    pub code_generation: u64,
    /// Guest-physical pages fetched from (through the slow path, which
    /// every execute-TLB entry comes from) since `code_generation` last
    /// moved: every decoded instruction and every block valid now comes
    /// from one of them. They are kept out of the write TLB, and a store
    /// to one moves `code_generation` first, so both engines see a hart's
    /// stores in the code it fetches next, whatever they had cached.
    pub code_pages: HashSet<u64>,
    pub slots: [DecodeSlot; DCACHE_SIZE],
}

impl DecodeCache {
    pub(crate) fn new() -> Box<DecodeCache> {
        const EMPTY_SLOT: DecodeSlot = DecodeSlot {
            pc: 0,
            generation: 0,
            inst: Inst::illegal(0, 4),
        };
        // Built in place: the slots are 1 MiB, too much for a temporary on
        // a thread's stack in an unoptimised build.
        let mut cache = Box::<DecodeCache>::new_uninit();
        let p = cache.as_mut_ptr();
        // SAFETY: every field of the allocation is written before
        // `assume_init`: the scalars and the set through raw field
        // pointers, the slots one by one.
        unsafe {
            // Counter 1, M mode (the reset mode).
            (&raw mut (*p).generation).write((1 << 2) | 3);
            (&raw mut (*p).code_generation).write(1);
            (&raw mut (*p).code_pages).write(HashSet::new());
            let slots = (&raw mut (*p).slots).cast::<DecodeSlot>();
            for k in 0..DCACHE_SIZE {
                slots.add(k).write(EMPTY_SLOT);
            }
            cache.assume_init()
        }
    }

    #[inline(always)]
    pub(crate) const fn index(pc: u64) -> usize {
        ((pc >> 1) as usize) & (DCACHE_SIZE - 1)
    }

    /// The decoded instruction at `pc`, if cached (a reference: the hot
    /// loop copies out only the fields it uses).
    #[inline(always)]
    pub(crate) fn get(&self, pc: u64) -> Option<&Inst> {
        let s = &self.slots[Self::index(pc)];
        if s.pc == pc && s.generation == self.generation {
            Some(&s.inst)
        } else {
            None
        }
    }

    /// The slot `pc` maps to, whatever it holds.
    #[inline(always)]
    pub(crate) fn slot(&self, pc: u64) -> &DecodeSlot {
        &self.slots[Self::index(pc)]
    }

    pub(crate) fn insert(&mut self, pc: u64, inst: Inst) {
        self.slots[Self::index(pc)] = DecodeSlot {
            pc,
            generation: self.generation,
            inst,
        };
    }

    pub(crate) fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1 << 2);
    }

    /// Entries of mode `privilege` hit from now on (those of the other
    /// modes stay, for when the hart comes back).
    pub(crate) fn set_privilege(&mut self, privilege: u64) {
        self.generation = (self.generation & !3) | (privilege & 3);
    }

    /// Drops decoded instructions because the code itself may have
    /// changed (translated blocks go with them until found unchanged).
    /// The caller flushes the execute TLB with it (`Hart::invalidate_code`):
    /// `code_pages` starts afresh.
    pub(crate) fn invalidate_code(&mut self) {
        self.invalidate();
        self.code_generation = self.code_generation.wrapping_add(1);
        self.code_pages.clear();
    }
}
