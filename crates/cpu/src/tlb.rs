//! The software TLB and the decoded-instruction cache.
//!
//! TLB: three direct-mapped arrays (read, write, execute), tagged with the
//! virtual page number. An entry holds the host address addend, so a hit is
//! one compare plus one add. Only plain RAM pages whose whole 4 KiB is
//! uniformly allowed by PMP are ever entered; MMIO pages, PMP-restricted
//! pages and the page holding an LR reservation (write array) stay out, so
//! every special case takes the slow path by simply missing.
//!
//! There is one set of arrays per kind of access rights (QEMU's MMU
//! indices): U, S, S with `mstatus.SUM`, and M. An entry is what a walk
//! allowed under its set's rights, so a trap, its return, or Linux
//! toggling SUM around every user copy only selects another set; none of
//! them empties one.

use std::collections::HashSet;

use samsara_isa::Inst;

use crate::state::Privilege;

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

/// One direct-mapped array, with the size of the leaf each entry came
/// from (so that `sfence.vma` of one address finds the entries a
/// superpage left on its other 4 KiB pages).
struct TlbArray {
    entries: [TlbEntry; TLB_SIZE],
    /// log2 of the leaf's size in pages: 0 (4 KiB), 9 (2 MiB), 18 (1 GiB),
    /// 27 (512 GiB).
    leaf_shift: [u8; TLB_SIZE],
    /// Some entry may be from a superpage.
    superpages: bool,
    /// A bit per host page (hashed) that some entry may point at, so that
    /// a page that moves (`Tlb::evict_host_page`, a few times per chunk)
    /// is looked for only in arrays that may hold it.
    hosts: [u64; 4],
}

impl TlbArray {
    const EMPTY: TlbArray = TlbArray {
        entries: [EMPTY; TLB_SIZE],
        leaf_shift: [0; TLB_SIZE],
        superpages: false,
        hosts: [0; 4],
    };

    fn clear(&mut self) {
        self.entries = [EMPTY; TLB_SIZE];
        self.superpages = false;
        self.hosts = [0; 4];
    }

    /// Drops the entries that point at host page `host_page`; whether any.
    fn drop_host_page(&mut self, host_page: usize) -> bool {
        let (word, bit) = Self::host_bit(host_page);
        if self.hosts[word] & bit == 0 {
            return false;
        }
        let mut dropped = false;
        for e in &mut self.entries {
            if e.tag != INVALID_TAG && e.addend.wrapping_add((e.tag << 12) as usize) == host_page {
                *e = EMPTY;
                dropped = true;
            }
        }
        dropped
    }

    /// `host_page`'s word and bit in `hosts`.
    fn host_bit(host_page: usize) -> (usize, u64) {
        let k = (host_page >> 12) & 255;
        (k / 64, 1 << (k % 64))
    }

    /// Drops the entries whose leaf maps virtual page `vpn`; whether any.
    fn drop_page(&mut self, vpn: u64) -> bool {
        let mut dropped = false;
        let i = Tlb::index(vpn);
        if self.entries[i].tag == vpn {
            self.entries[i] = EMPTY;
            dropped = true;
        }
        if self.superpages {
            for (e, &shift) in self.entries.iter_mut().zip(&self.leaf_shift) {
                if shift != 0 && e.tag != INVALID_TAG && e.tag >> shift == vpn >> shift {
                    *e = EMPTY;
                    dropped = true;
                }
            }
        }
        dropped
    }
}

/// The arrays of one kind of access rights.
struct TlbSet {
    read: TlbArray,
    write: TlbArray,
    exec: TlbArray,
}

/// The sets: what a walk allows differs between them.
const SET_USER: usize = 0;
const SET_SUPERVISOR: usize = 1;
const SET_SUPERVISOR_SUM: usize = 2;
const SET_MACHINE: usize = 3;
const SETS: usize = 4;

/// Words in `Tlb::write_pages` (4096 bits).
const WRITE_FILTER_WORDS: usize = 64;

/// `host_page`'s word and bit in `Tlb::write_pages`.
const fn write_filter_bit(host_page: usize) -> (usize, u64) {
    let k = (host_page >> 12) % (WRITE_FILTER_WORDS * 64);
    (k / 64, 1 << (k % 64))
}

/// The TLB: a set per kind of access rights, of which one serves fetches
/// and one (maybe another, with `mstatus.MPRV`) loads and stores.
pub(crate) struct Tlb {
    sets: [TlbSet; SETS],
    /// The set fetches use (the privilege's).
    fetch: usize,
    /// The set loads and stores use (the data privilege's, with SUM).
    data: usize,
    /// Sets that may hold entries (bit per set): a flush skips the others.
    used: u8,
    /// A bit per host page (hashed) that some write entry may point at:
    /// `evict_write_host_page`, called for every page that becomes code,
    /// scans the write arrays only when its bit is set.
    write_pages: [u64; WRITE_FILTER_WORDS],
    /// Moves whenever something a running block relies on changes: an
    /// execute entry was dropped (every code-generation move drops them
    /// all, see `Hart::invalidate_code`), or the sets in use switched.
    /// Translated code that calls out stops if the call moved it, so that
    /// the next fetch walks where the interpreter's would and the next
    /// block runs with the current arrays. One counter, so that a call out
    /// checks one word.
    pub epoch: u64,
    /// Host pages of the page-table pages walks read since the TLB was
    /// last emptied, by guest-physical page (direct-mapped): a walk reads
    /// its PTEs through them without asking the bus again. Like the other
    /// entries they stand for a first touch already made, and go with
    /// them; they hold no PTE values (a walk always reads memory).
    table_pages: [(u64, usize); TABLE_PAGES],
}

/// Entries of `Tlb::table_pages`.
const TABLE_PAGES: usize = 16;
const NO_TABLE_PAGE: (u64, usize) = (u64::MAX, 0);

impl Tlb {
    pub(crate) fn new() -> Box<Tlb> {
        const SET: TlbSet = TlbSet {
            read: TlbArray::EMPTY,
            write: TlbArray::EMPTY,
            exec: TlbArray::EMPTY,
        };
        Box::new(Tlb {
            sets: [SET; SETS],
            fetch: SET_MACHINE,
            data: SET_MACHINE,
            used: 0,
            write_pages: [0; WRITE_FILTER_WORDS],
            epoch: 0,
            table_pages: [NO_TABLE_PAGE; TABLE_PAGES],
        })
    }

    #[inline(always)]
    pub(crate) const fn index(vpn: u64) -> usize {
        (vpn as usize) & (TLB_SIZE - 1)
    }

    /// Chooses the sets for fetches at `privilege` and for loads and
    /// stores at `data_privilege` (they differ in M mode with MPRV), with
    /// `sum` (`mstatus.SUM`).
    pub(crate) fn select(&mut self, privilege: Privilege, data_privilege: Privilege, sum: bool) {
        let set = |p: Privilege| match p {
            Privilege::User => SET_USER,
            Privilege::Supervisor if sum => SET_SUPERVISOR_SUM,
            Privilege::Supervisor => SET_SUPERVISOR,
            Privilege::Machine => SET_MACHINE,
        };
        // SUM does not apply to fetches: one S set holds them.
        let fetch = match privilege {
            Privilege::Supervisor => SET_SUPERVISOR,
            p => set(p),
        };
        let data = set(data_privilege);
        if (fetch, data) != (self.fetch, self.data) {
            (self.fetch, self.data) = (fetch, data);
            self.epoch += 1;
        }
    }

    /// The read array in use.
    #[inline(always)]
    pub(crate) fn read(&self) -> &[TlbEntry; TLB_SIZE] {
        &self.sets[self.data].read.entries
    }

    /// The write array in use.
    #[inline(always)]
    pub(crate) fn write(&self) -> &[TlbEntry; TLB_SIZE] {
        &self.sets[self.data].write.entries
    }

    /// The execute array in use.
    #[inline(always)]
    pub(crate) fn exec(&self) -> &[TlbEntry; TLB_SIZE] {
        &self.sets[self.fetch].exec.entries
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

    /// Caches `vaddr`'s page as mapping to host page `host_page`, from a
    /// leaf of 2^`leaf_shift` pages, in the set in use for `kind`.
    pub(crate) fn insert(&mut self, kind: TlbKind, vaddr: u64, host_page: usize, leaf_shift: u8) {
        let vpn = vaddr >> 12;
        let vbase = (vaddr & !0xfff) as usize;
        let set = if kind == TlbKind::Execute {
            self.fetch
        } else {
            self.data
        };
        self.used |= 1 << set;
        if kind == TlbKind::Write {
            let (word, bit) = write_filter_bit(host_page);
            self.write_pages[word] |= bit;
        }
        let s = &mut self.sets[set];
        let array = match kind {
            TlbKind::Read => &mut s.read,
            TlbKind::Write => &mut s.write,
            TlbKind::Execute => &mut s.exec,
        };
        let i = Self::index(vpn);
        array.entries[i] = TlbEntry {
            tag: vpn,
            addend: host_page.wrapping_sub(vbase),
        };
        array.leaf_shift[i] = leaf_shift;
        array.superpages |= leaf_shift != 0;
        let (word, bit) = TlbArray::host_bit(host_page);
        array.hosts[word] |= bit;
    }

    fn used_sets(&mut self) -> impl Iterator<Item = &mut TlbSet> {
        let used = self.used;
        self.sets
            .iter_mut()
            .enumerate()
            .filter(move |(k, _)| used & (1 << k) != 0)
            .map(|(_, s)| s)
    }

    /// Drops every write entry that points at host page `host_page` (under
    /// any virtual address, in every set).
    pub(crate) fn evict_write_host_page(&mut self, host_page: usize) {
        let (word, bit) = write_filter_bit(host_page);
        if self.write_pages[word] & bit == 0 {
            return;
        }
        for set in self.used_sets() {
            set.write.drop_host_page(host_page);
        }
    }

    /// Drops every entry that points at host page `host_page` (a page
    /// that moved to a private copy: copy-on-write), under any virtual
    /// address, in every set. The others stay: a chunk's first write to a
    /// page it read before happens a few times per chunk, and emptying
    /// the TLB for it meant walking the pages again.
    pub(crate) fn evict_host_page(&mut self, host_page: usize) {
        for t in &mut self.table_pages {
            if t.1 == host_page {
                *t = NO_TABLE_PAGE;
            }
        }
        let mut exec_dropped = false;
        for set in self.used_sets() {
            set.read.drop_host_page(host_page);
            set.write.drop_host_page(host_page);
            exec_dropped |= set.exec.drop_host_page(host_page);
        }
        if exec_dropped {
            self.epoch += 1;
        }
    }

    /// Drops every execute entry (the code pages they vouch for are
    /// forgotten: see `DecodeCache::code_pages`).
    pub(crate) fn flush_exec(&mut self) {
        for set in self.used_sets() {
            set.exec.clear();
        }
        self.epoch += 1;
    }

    /// Drops every read and write entry (what loads may read changed:
    /// `mstatus.MXR`).
    pub(crate) fn flush_data(&mut self) {
        for set in self.used_sets() {
            set.read.clear();
            set.write.clear();
        }
        self.write_pages = [0; WRITE_FILTER_WORDS];
    }

    /// Drops everything.
    pub(crate) fn flush(&mut self) {
        self.flush_data();
        self.flush_exec();
        self.used = 0;
        self.table_pages = [NO_TABLE_PAGE; TABLE_PAGES];
    }

    /// The host page of page-table page `page` (guest-physical page
    /// number), if a walk read it since the TLB was emptied.
    #[inline]
    pub(crate) fn table_page(&self, page: u64) -> Option<usize> {
        let (p, host) = self.table_pages[page as usize % TABLE_PAGES];
        (p == page).then_some(host)
    }

    /// Notes that page-table page `page` is at host page `host` (granted
    /// for reading, and wholly readable under PMP).
    pub(crate) fn note_table_page(&mut self, page: u64, host: usize) {
        self.table_pages[page as usize % TABLE_PAGES] = (page, host);
    }

    /// Drops the entries of every set whose leaf maps `vaddr`
    /// (`sfence.vma` of one address).
    pub(crate) fn flush_page(&mut self, vaddr: u64) {
        let vpn = vaddr >> 12;
        let mut exec_dropped = false;
        for set in self.used_sets() {
            set.read.drop_page(vpn);
            set.write.drop_page(vpn);
            exec_dropped |= set.exec.drop_page(vpn);
        }
        if exec_dropped {
            self.epoch += 1;
        }
    }

    /// Whether the execute array in use holds `pc`'s page.
    #[inline(always)]
    pub(crate) fn fetchable(&self, pc: u64) -> bool {
        self.exec()[Self::index(pc >> 12)].tag == pc >> 12
    }
}

/// Slots in the decode cache.
const DCACHE_SIZE: usize = 32768;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct DecodeSlot {
    pub pc: u64,
    pub generation: u64,
    /// The execute-TLB addend of the pc's page when it was decoded: a hit
    /// needs the same one now (the page still maps to the host page the
    /// instruction was read from).
    pub addend: usize,
    /// The decoded instruction, stored as is: the executor reads the
    /// fields it needs straight from the slot.
    pub inst: Inst,
}

/// Direct-mapped decoded-instruction cache indexed by `pc >> 1`.
///
/// Invalidation is by generation: bumping `generation` empties the cache in
/// O(1). A hit also needs the pc's page in the execute TLB, mapped to the
/// host page it was decoded from (so the fetch is permitted, its page was
/// touched through `Bus::ram_page` since the TLB was last emptied, and the
/// bytes are the ones decoded unless code changed, which bumps the
/// generation: `fence.i` outside record and replay, a store to a page
/// fetched from, a restore). Its low two bits are the privilege
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
            addend: 0,
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

    /// [`DecodeCache::get`], if `exec` (the execute array in use) maps the
    /// pc's page to the host page the instruction was decoded from.
    #[inline(always)]
    pub(crate) fn get_fetchable(&self, pc: u64, exec: &[TlbEntry; TLB_SIZE]) -> Option<&Inst> {
        let s = &self.slots[Self::index(pc)];
        let e = &exec[Tlb::index(pc >> 12)];
        if s.pc == pc
            && s.generation == self.generation
            && e.tag == pc >> 12
            && e.addend == s.addend
        {
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

    /// Caches `inst`, read at `pc` from a page whose execute-TLB addend is
    /// `addend`.
    pub(crate) fn insert(&mut self, pc: u64, addend: usize, inst: Inst) {
        self.slots[Self::index(pc)] = DecodeSlot {
            pc,
            generation: self.generation,
            addend,
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
