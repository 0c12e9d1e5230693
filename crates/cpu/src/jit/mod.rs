//! The block translator: hot straight-line guest code to x86-64 host code
//! (docs/translator.md).
//!
//! Tiered: the interpreter runs everything first and counts how often it
//! arrives at each pc; a pc that gets hot becomes the head of a block: the
//! instructions that follow it in memory, up to the first control transfer
//! or the first instruction the translator leaves to the interpreter.
//! Blocks jump to each other directly. A block is entered only when the
//! step budget covers it whole. A load or store that misses the TLB calls
//! the slow path's lookup (for its effects: walk, A/D bits, first touch)
//! and tries again; a fault, device, watched, refused or reserved page
//! leaves the block *before* the instruction, which then runs
//! interpreted, through the same slow path as ever. F/D instructions are
//! calls into the interpreter's own F/D code. So translated code never
//! raises an exception itself, never reaches a device, and counts
//! instructions exactly.
//!
//! A block lies within one virtual page and runs while its page maps to
//! the same host page with fetch permitted in this mode (the execute TLB
//! holds the entry it held at translation) and its code is unchanged (in
//! the decode cache's *code generation* it was translated or last checked
//! in; a block from an earlier generation is compared against memory).
//! See docs/translator.md.

pub(crate) mod emit;

use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::TranslatorStats;
use crate::tlb::{DecodeCache, Tlb, TlbEntry};
use samsara_isa::Inst;

/// Slots in the block table (direct-mapped by `pc >> 1`).
pub(crate) const SLOTS: usize = 1 << 18;
/// Arrivals at a pc before it is translated (unless set otherwise for
/// tests: `Hart::set_translator_tuning`). 16 translated more code run
/// few times than it paid back on a Linux boot.
const HOT: u8 = 32;
/// Arrival counters, indexed by `pc >> 1` (untagged: two pcs sharing one
/// only get hot sooner).
const HEAT_COUNTERS: usize = 1 << 20;
/// One translation in this many is timed (`TranslatorStats::translate_nanos`
/// is an estimate from them).
const TIMED: u64 = 16;
/// The most guest instructions in one block.
pub(crate) const MAX_BLOCK: usize = 64;
/// Host code space; when full, every translation is dropped.
const CODE_BYTES: usize = 256 << 20;
/// Largest host code of one block (64 instructions of at most ~90 bytes,
/// exits included), checked before it is copied in.
const MAX_BLOCK_BYTES: usize = 32 << 10;

/// What translated code runs with: the budget it may use (at least the
/// length of the block entered) and, on return, the pc to go on at; what
/// a block needs to jump to the next one directly.
#[repr(C)]
pub(crate) struct BlockFrame {
    /// Steps still allowed; each block takes off those it ran.
    pub left: u64,
    /// Where execution goes on.
    pub next_pc: u64,
    /// The decode cache's code generation: blocks of another are not
    /// entered from translated code.
    pub generation: u64,
    /// The block table.
    pub slots: *const Slot,
    /// The execute TLB.
    pub exec: *const TlbEntry,
    /// The chaining code (see [`emit::runtime`]).
    pub chain: usize,
    /// What a load or store that misses the TLB calls: `fill(context,
    /// vaddr, store)` returns nonzero if the TLB holds the page now (see
    /// `Hart::fill_tlb`).
    pub fill: unsafe extern "sysv64" fn(*mut u8, u64, u64) -> u64,
    /// What runs an F/D instruction in a block: `interpret(context, at, k)`
    /// with `at` the address of its `(pc, Inst)` and `k` its index in the
    /// block; nonzero if the block must stop (the frame then says where).
    pub interpret: unsafe extern "sysv64" fn(*mut u8, u64, u64) -> u64,
    /// What those two are given (the hart's run, see `Hart`).
    pub context: *mut u8,
    /// The code that calls out to them (see [`emit::runtime`]).
    pub call_out: usize,
    /// The jump cache (see [`JumpEntry`]), which the chaining code reads
    /// first and fills.
    pub jump_cache: *mut JumpEntry,
}

/// Entries in the jump cache.
pub(crate) const JUMP_CACHE: usize = 4096;

/// One entry of the jump cache: a pc and the checked entry of a block
/// made for it. The chaining code looks a pc up here before the block
/// table: 64 KiB that stay in the host's cache, where a lookup in the
/// 16 MiB table missed it (the chaining code was 3-5 % of a Linux boot's
/// time, mostly that miss). The checked entry checks all the rest (code
/// generation, execute TLB, budget) and goes back to Rust if anything
/// fails, so an entry may be stale, never wrong; entries are replaced
/// whenever a block for their pc is made, and emptied with the code
/// space.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct JumpEntry {
    /// The pc, or 1 (no pc is odd) when empty.
    pc: u64,
    /// Address of the block's checked entry.
    checked: usize,
}

const NO_JUMP: JumpEntry = JumpEntry { pc: 1, checked: 0 };

/// The trampoline at the start of every code space (see
/// [`emit::runtime`]): `x` the integer registers, `read` and `write`
/// the TLB arrays, `frame` the budget and exit pc, `block` the code to
/// enter. Returns 1 if it stopped before an instruction the interpreter
/// must run next (a load or store the TLB cannot serve), 2 if an
/// instruction called out (F/D) stopped it (the frame says where the run
/// stands), 0 otherwise.
type Enter = unsafe extern "sysv64" fn(
    x: *mut u64,
    read: *const TlbEntry,
    write: *const TlbEntry,
    frame: *mut BlockFrame,
    block: usize,
) -> u64;

/// One entry of the block table (`repr(C)`, one cache line: translated
/// code reads it to chain).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Slot {
    pc: u64,
    /// The decode cache's code generation it was last known valid in.
    generation: u64,
    /// The execute-TLB entry of its page when it was translated.
    fetch: TlbEntry,
    /// Address of its host code; 0 while cold.
    code: usize,
    /// Instructions in the block; 0 if none starts here (in `generation`).
    len: u32,
    /// Offset of its code (header first) in the code space.
    start: u32,
    /// Where the guest code it was translated from is kept (`Jit::source`,
    /// in 16-bit parcels): to check, in a later generation, that the code
    /// is unchanged.
    source: u32,
    source_len: u32,
    /// Address of its checked entry (what the jump cache holds).
    checked: usize,
}

/// An empty slot is all zeros (generation 0 is never current), so that a
/// table is had from zeroed pages the kernel hands out as they are
/// touched: 16 MiB per hart, of which a run touches a part.
const EMPTY: Slot = Slot {
    pc: 0,
    generation: 0,
    fetch: TlbEntry { tag: 0, addend: 0 },
    code: 0,
    len: 0,
    start: 0,
    source: 0,
    source_len: 0,
    checked: 0,
};

/// What the table says about a pc.
pub(crate) enum Lookup {
    /// A block (its code) of `len` instructions.
    Block(usize, u64),
    /// A block, but its page is not in the execute TLB: refill it (as a
    /// fetch would) and look again.
    Refill,
    /// Just got hot: translate it.
    Hot,
    /// Cold, or nothing translatable starts here.
    Interpret,
}

/// One hart's translations.
pub(crate) struct Jit {
    slots: ZeroedTable<Slot>,
    code: CodeSpace,
    used: usize,
    /// The guest code of every block, as translated (see `Slot::source`).
    source: Vec<u16>,
    /// Blocks whose slot another pc took.
    aside: HashMap<u64, Slot>,
    /// The instruction lists of blocks that call the interpreter (see
    /// `emit::block`).
    called: Vec<Box<[(u64, Inst)]>>,
    /// Arrivals at each pc while cold (up to `hot`), perhaps shared with
    /// the machine's other harts.
    pub(crate) heat: Arc<HeatCounters>,
    /// Jumps in translated code to each pc (their displacements' offsets
    /// in the code space), patched whenever a block for it is made.
    jumps_to: HashMap<u64, Vec<u32>>,
    /// The jump cache (see [`JumpEntry`]), indexed by `pc >> 1`.
    jumps: Box<[JumpEntry; JUMP_CACHE]>,
    /// While an attempt runs (see `Hart::begin_attempt`): the blocks
    /// (pc, code offset) made or found unchanged in it.
    attempt: Option<Vec<(u64, u32)>>,
    /// Arrivals that make a pc hot (at least 1).
    pub hot: u8,
    /// Run one block (or interpreted step) per `resume` call, never
    /// chaining: for tests that compare engines block by block.
    pub one_block: bool,
    pub stats: TranslatorStats,
}

/// Host code memory, mapped twice: written through one view (read and
/// write), run from the other (read and execute), so no page is ever
/// writable and executable at once and nothing is re-protected per block.
/// Emptied by mapping a fresh one: code that ran is never overwritten.
struct CodeSpace {
    write: MmapMut,
    exec: Mmap,
    /// Bytes from the start known to be present in both views.
    populated: usize,
}

impl CodeSpace {
    fn new() -> std::io::Result<CodeSpace> {
        // SAFETY: memfd_create with a NUL-terminated name and valid flags;
        // the descriptor is owned by the File from here on.
        let fd = unsafe { libc::memfd_create(c"samsara-jit".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.set_len(CODE_BYTES as u64)?;
        // SAFETY: the file is an anonymous memfd of CODE_BYTES that only
        // these two views map; nothing truncates it.
        let mut write = unsafe { MmapOptions::new().len(CODE_BYTES).map_mut(&file)? };
        // SAFETY: as above.
        let exec = unsafe { MmapOptions::new().len(CODE_BYTES).map_exec(&file)? };
        let runtime = emit::runtime();
        assert!(runtime.len() <= Self::FIRST_BLOCK, "the runtime fits");
        write[..runtime.len()].copy_from_slice(&runtime);
        Ok(CodeSpace {
            write,
            exec,
            populated: 0,
        })
    }

    /// Makes sure the pages of `[offset, offset + len)` are there in both
    /// views, a megabyte at a time: one fault per page, taken twice (once
    /// per view), cost more than translating.
    fn populate(&mut self, offset: usize, len: usize) {
        const STEP: usize = 1 << 20;
        while self.populated < offset + len && self.populated < CODE_BYTES {
            let at = self.populated;
            let n = STEP.min(CODE_BYTES - at);
            // SAFETY: `[at, at + n)` lies within both mappings; populating
            // changes no contents. Failure (an old kernel) only leaves the
            // pages to fault in one by one.
            unsafe {
                libc::madvise(
                    self.write.as_mut_ptr().add(at).cast(),
                    n,
                    libc::MADV_POPULATE_WRITE,
                );
                libc::madvise(
                    self.exec.as_ptr().add(at).cast_mut().cast(),
                    n,
                    libc::MADV_POPULATE_READ,
                );
            }
            self.populated = at + n;
        }
    }

    /// Where blocks start (after the trampoline, the chaining code and the
    /// TLB fill code).
    const FIRST_BLOCK: usize = 384;
}

/// A table of `T`s that starts all zeros, in anonymous memory the kernel
/// hands out as it is touched (`T` must be valid as all-zero bytes): the
/// block table is 16 MiB per hart, of which a run touches a part.
///
/// In transparent huge pages where the host allows them (`madvise`): a
/// 4 KiB page first read (the zero page) and then written costs a
/// copy-on-write fault that flushes the TLB of every thread of the process
/// (4 Ki of them per hart for the block table); 2 MiB pages make that 512
/// times rarer, and lookups spread over 16 MiB miss the host's TLB less.
struct ZeroedTable<T> {
    memory: MmapMut,
    /// Where the table starts in `memory` (2 MiB-aligned).
    offset: usize,
    len: usize,
    _of: std::marker::PhantomData<T>,
}

/// A huge page of x86-64.
const HUGE_PAGE: usize = 2 << 20;

impl<T: Copy> ZeroedTable<T> {
    /// # Safety
    /// All-zero bytes must be a valid `T`.
    unsafe fn new(len: usize) -> ZeroedTable<T> {
        // Whole huge pages (the 1 MiB heat table takes one).
        let bytes = (len * std::mem::size_of::<T>()).next_multiple_of(HUGE_PAGE);
        let mut memory = MmapOptions::new()
            .len(bytes + HUGE_PAGE)
            .map_anon()
            .unwrap_or_else(|e| panic!("{} bytes for the translator's tables: {e}", bytes));
        let start = memory.as_mut_ptr();
        let offset = start.align_offset(HUGE_PAGE);
        // SAFETY: `[offset, offset + bytes)` lies within the mapping
        // (`offset < HUGE_PAGE`); the advice changes no contents, and a
        // host without huge pages refuses it harmlessly.
        unsafe {
            libc::madvise(start.add(offset).cast(), bytes, libc::MADV_HUGEPAGE);
        }
        ZeroedTable {
            memory,
            offset,
            len,
            _of: std::marker::PhantomData,
        }
    }
}

impl<T> std::ops::Deref for ZeroedTable<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the table starts page-aligned (so aligned for `T`) at
        // `offset`, holds `len` `T`s within the mapping, and all-zero
        // bytes or what was written through `deref_mut` are valid `T`s
        // (`new`'s contract).
        unsafe {
            std::slice::from_raw_parts(self.memory.as_ptr().add(self.offset).cast(), self.len)
        }
    }
}

impl<T> std::ops::DerefMut for ZeroedTable<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and the mapping is owned and writable.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.memory.as_mut_ptr().add(self.offset).cast(),
                self.len,
            )
        }
    }
}

/// An empty block table.
fn empty_slots() -> ZeroedTable<Slot> {
    // SAFETY: all-zero bytes are `EMPTY` (integers only).
    unsafe { ZeroedTable::new(SLOTS) }
}

/// Arrivals at each pc while cold: a byte per `pc >> 1`, untagged (two pcs
/// sharing one only get hot sooner). The harts of one machine share them
/// (`Hart::share_translator_heat`): code one hart made hot is translated
/// at another's first arrival, instead of being interpreted `hot` times
/// more on each (the kernel's common paths, warmed by the boot hart).
/// Relaxed bytes: an increment lost to a race only delays a translation,
/// and which code runs translated never changes what it computes.
pub(crate) struct HeatCounters {
    /// The counters' memory, kept mapped for `base`.
    _table: ZeroedTable<u8>,
    /// The table's first byte, written only through `AtomicU8`s.
    base: *mut u8,
}

// SAFETY: the table is only accessed through atomics (`counter`), and the
// mapping lives as long as the struct.
unsafe impl Send for HeatCounters {}
// SAFETY: as above.
unsafe impl Sync for HeatCounters {}

impl HeatCounters {
    /// Counters at zero.
    fn new() -> Arc<HeatCounters> {
        // SAFETY: any byte is a valid `u8`.
        let mut table = unsafe { ZeroedTable::<u8>::new(HEAT_COUNTERS) };
        let base = table.as_mut_ptr();
        Arc::new(HeatCounters {
            _table: table,
            base,
        })
    }

    /// `pc`'s counter.
    #[inline(always)]
    fn counter(&self, pc: u64) -> &AtomicU8 {
        let index = ((pc >> 1) as usize) & (HEAT_COUNTERS - 1);
        // SAFETY: `index < HEAT_COUNTERS`, the table's length; its bytes
        // are only ever accessed atomically; `base` is valid while `self`
        // is (it points into `table`, which `self` owns).
        unsafe { AtomicU8::from_ptr(self.base.add(index)) }
    }
}

/// Whether a block at `head` may hold an instruction at `at`: on the
/// head's page (the only one its checked entry vouches for), with room for
/// a 4-byte instruction before the page's end (none may straddle it). The
/// interpreter running cold code ends blocks at the same places
/// (`Hart::interpret_cold`).
pub(crate) fn on_block_page(head: u64, at: u64) -> bool {
    at >> 12 == head >> 12 && at & 0xfff <= 0xffc
}

/// Reads the guest code at host address `host`, one 16-bit parcel.
///
/// # Safety
/// As `mmu::host_read`: a live execute-TLB grant, 2-aligned.
unsafe fn parcel(host: usize) -> u16 {
    // SAFETY: the caller's guarantee.
    unsafe { crate::mmu::host_read(host, 2) as u16 }
}

impl Jit {
    pub(crate) fn new() -> std::io::Result<Jit> {
        Ok(Jit {
            slots: empty_slots(),
            code: CodeSpace::new()?,
            used: CodeSpace::FIRST_BLOCK,
            source: Vec::new(),
            aside: HashMap::new(),
            called: Vec::new(),
            heat: HeatCounters::new(),
            jumps_to: HashMap::new(),
            jumps: Box::new([NO_JUMP; JUMP_CACHE]),
            attempt: None,
            hot: HOT,
            one_block: false,
            stats: TranslatorStats::default(),
        })
    }

    #[inline(always)]
    fn index(pc: u64) -> usize {
        ((pc >> 1) as usize) & (SLOTS - 1)
    }

    /// Whether the table holds a block at `pc` made in `generation` (just
    /// translated, say).
    pub(crate) fn holds_block(&self, pc: u64, generation: u64) -> bool {
        let slot = &self.slots[Self::index(pc)];
        slot.pc == pc && slot.code != 0 && slot.generation == generation
    }

    /// The block at `pc`, counting an arrival if there is none yet.
    /// `generation`: the decode cache's code generation; `exec`: the
    /// execute TLB.
    ///
    /// A block made in an earlier generation is kept if the code it was
    /// made from is still there, parcel for parcel: the generation moves
    /// on every event that *may* have changed code (`fence.i`, a commit,
    /// DMA, a restore, the start of every recorded or replayed entry), and
    /// most change none of a block's bytes.
    #[inline(always)]
    pub(crate) fn lookup(&mut self, pc: u64, generation: u64, exec: &[TlbEntry]) -> Lookup {
        // Arrivals at cold code outnumber those at blocks that missed the
        // jump cache, and the heat counters (a byte per pc) stay in the
        // host's cache where the block table (a line per pc) does not: a
        // pc not yet hot is interpreted (it has no block unless a pc
        // sharing its counter set the counter back, and then running it
        // interpreted is only slower).
        let heat = self.heat.counter(pc);
        let arrivals = heat.load(Ordering::Relaxed);
        if arrivals < self.hot {
            heat.store(arrivals + 1, Ordering::Relaxed);
            if arrivals + 1 < self.hot {
                return Lookup::Interpret;
            }
            // Just hot: the table decides (a pc sharing the counter may
            // have set it back under a block that is there already).
        }
        let index = Self::index(pc);
        let slot = self.slots[index];
        if slot.pc == pc {
            if slot.code != 0 {
                let now = exec[Tlb::index(pc >> 12)];
                if now.tag != slot.fetch.tag {
                    // Not fetched from in this mode since the TLB was last
                    // flushed: a fetch's translation and checks will tell.
                    return Lookup::Refill;
                }
                if now.addend == slot.fetch.addend
                    && (slot.generation == generation || self.still_valid(index, generation))
                {
                    return Lookup::Block(slot.code, u64::from(slot.len));
                }
                // Another host page now, or other code: translate afresh.
                self.set_header_generation(slot.start, 0);
                self.slots[index] = EMPTY;
                self.stats.dropped += 1;
                return Lookup::Hot;
            }
            if slot.generation == generation {
                // Nothing translatable starts here.
                return Lookup::Interpret;
            }
            self.slots[index] = EMPTY;
        }
        self.bring_back(pc, index, generation, exec)
    }

    /// A pc hot before whose slot holds another pc: its block, if it was
    /// put aside, goes back into the slot (the other one aside).
    #[cold]
    #[inline(never)]
    fn bring_back(&mut self, pc: u64, index: usize, generation: u64, exec: &[TlbEntry]) -> Lookup {
        let Some(block) = self.aside.remove(&pc) else {
            return Lookup::Hot;
        };
        self.install(index, block);
        match self.lookup(pc, generation, exec) {
            // Dropped as stale: the heat says hot.
            Lookup::Interpret => Lookup::Hot,
            found => found,
        }
    }

    /// Puts `slot` in the table at `index`; a block there for another pc
    /// goes aside.
    fn install(&mut self, index: usize, slot: Slot) {
        // The jump cache leads to this block from now on.
        self.jumps[((slot.pc >> 1) as usize) & (JUMP_CACHE - 1)] = JumpEntry {
            pc: slot.pc,
            checked: slot.checked,
        };
        let old = std::mem::replace(&mut self.slots[index], slot);
        if old.code != 0 && old.pc != slot.pc {
            self.aside.insert(old.pc, old);
        }
    }

    /// Whether the block in slot `index`, made in an earlier generation,
    /// may run in `generation`: its guest code is unchanged. The slot's
    /// execute-TLB entry is current (the caller checked). Marks it valid
    /// in `generation` if so.
    #[cold]
    fn still_valid(&mut self, index: usize, generation: u64) -> bool {
        let slot = self.slots[index];
        let host = (slot.fetch.addend).wrapping_add(slot.pc as usize);
        let kept = &self.source[slot.source as usize..(slot.source + slot.source_len) as usize];
        // SAFETY: the execute TLB holds `slot.fetch` now (checked by the
        // caller), a live grant of the block's page for fetches; the block
        // lies within that page and its pc is 2-aligned.
        let same = kept
            .iter()
            .enumerate()
            .all(|(k, &p)| unsafe { parcel(host + 2 * k) } == p);
        if same {
            self.slots[index].generation = generation;
            self.set_header_generation(slot.start, generation);
            self.stats.revalidated += 1;
            if let Some(made) = &mut self.attempt {
                made.push((slot.pc, slot.start));
            }
        }
        same
    }

    /// From now on, notes the blocks made or found unchanged, for
    /// [`Jit::abandon_attempt`].
    pub(crate) fn begin_attempt(&mut self) {
        let made = self.attempt.get_or_insert_default();
        made.clear();
    }

    /// Makes the blocks made or found unchanged since
    /// [`Jit::begin_attempt`] valid in no generation: what they were
    /// checked against may be gone (see `Hart::abandon_attempt`), so they
    /// are compared with memory again before they next run. The others
    /// stay valid.
    pub(crate) fn abandon_attempt(&mut self) {
        let Some(mut made) = self.attempt.take() else {
            return;
        };
        for &(pc, start) in &made {
            self.set_header_generation(start, 0);
            let index = Self::index(pc);
            if self.slots[index].pc == pc && self.slots[index].start == start {
                self.slots[index].generation = 0;
            } else if let Some(aside) = self.aside.get_mut(&pc)
                && aside.start == start
            {
                aside.generation = 0;
            }
        }
        made.clear();
        self.attempt = Some(made);
    }

    /// The entry into translated code (at the start of the code space).
    pub(crate) fn enter(&self) -> Enter {
        // SAFETY: the code space starts with the trampoline, whose ABI is
        // `Enter`.
        unsafe { std::mem::transmute::<*const u8, Enter>(self.code.exec.as_ptr()) }
    }

    /// The block table, for translated code to chain through.
    pub(crate) fn slots(&self) -> *const Slot {
        self.slots.as_ptr()
    }

    /// The checked entry of the block the jump cache holds for `pc`, if
    /// any (it may no longer be valid: entered, it checks itself).
    #[inline(always)]
    pub(crate) fn jump(&self, pc: u64) -> Option<usize> {
        let j = self.jumps[((pc >> 1) as usize) & (JUMP_CACHE - 1)];
        (j.pc == pc).then_some(j.checked)
    }

    /// The jump cache, for translated code to read and fill.
    pub(crate) fn jump_cache(&mut self) -> *mut JumpEntry {
        self.jumps.as_mut_ptr()
    }

    /// The chaining code.
    pub(crate) fn chain(&self) -> usize {
        self.code.exec.as_ptr() as usize + emit::CHAIN_OFFSET
    }

    /// The code that calls out to Rust.
    pub(crate) fn call_out(&self) -> usize {
        self.code.exec.as_ptr() as usize + emit::CALL_OUT_OFFSET
    }

    /// The code generation a block's checked entry accepts (0: none).
    fn set_header_generation(&mut self, start: u32, generation: u64) {
        let at = start as usize + std::mem::offset_of!(emit::Header, generation);
        self.code.write[at..at + 8].copy_from_slice(&generation.to_le_bytes());
    }

    /// Points the jump whose displacement is at `site` to `target`
    /// (offsets in the code space).
    fn patch(&mut self, site: u32, target: usize) {
        let site = site as usize;
        debug_assert_eq!(self.code.write[site - 1], 0xe9, "a jmp rel32");
        let displacement = (target as i64 - (site as i64 + 4)) as i32;
        self.code.write[site..site + 4].copy_from_slice(&displacement.to_le_bytes());
    }

    /// Where the block for `pc`, if any, starts in the code space.
    fn block_start(&self, pc: u64) -> Option<u32> {
        let slot = &self.slots[Self::index(pc)];
        if slot.pc == pc && slot.code != 0 {
            return Some(slot.start);
        }
        self.aside.get(&pc).map(|s| s.start)
    }

    /// Drops every translation (breakpoints changed: a block may hold an
    /// instruction now at one), with the code space: blocks jump to each
    /// other directly.
    pub(crate) fn forget(&mut self) {
        if let Ok(fresh) = CodeSpace::new() {
            self.code = fresh;
        } else {
            // Keep the space, but no block's checked entry may pass.
            let starts: Vec<u32> = self
                .slots
                .iter()
                .chain(self.aside.values())
                .filter(|s| s.code != 0)
                .map(|s| s.start)
                .collect();
            for start in starts {
                self.set_header_generation(start, 0);
            }
        }
        self.clear_tables();
    }

    /// Forgets every block, for an empty code space (or one whose blocks
    /// can no longer be entered).
    fn clear_tables(&mut self) {
        self.used = CodeSpace::FIRST_BLOCK;
        self.slots = empty_slots();
        self.source.clear();
        self.aside.clear();
        self.called.clear();
        self.jumps_to.clear();
        self.jumps.fill(NO_JUMP);
        // Shared counters stay: the other harts' code is still there.
        if Arc::strong_count(&self.heat) == 1 {
            self.heat = HeatCounters::new();
        }
        // Offsets into the old space.
        if let Some(made) = &mut self.attempt {
            made.clear();
        }
    }

    /// Translates the block at `pc`: from the code in memory, or with
    /// `decoded_only` (breakpoints are set) only from instructions in the
    /// decode cache, which never holds one at a breakpoint. Leaves the
    /// slot marked so that a pc where nothing can be translated is not
    /// tried again in this code generation.
    pub(crate) fn translate(
        &mut self,
        pc: u64,
        dcache: &DecodeCache,
        exec: &[TlbEntry],
        decoded_only: bool,
    ) {
        // Reading the clock costs about a microsecond on some virtual
        // machines, a fifth of a translation: one in `TIMED` is timed.
        let started = self
            .stats
            .blocks
            .is_multiple_of(TIMED)
            .then(std::time::Instant::now);
        let generation = dcache.code_generation;
        let slot_index = Self::index(pc);
        let fetch = exec[Tlb::index(pc >> 12)];
        if fetch.tag != pc >> 12 || (decoded_only && dcache.get(pc).is_none()) {
            // Its page is not in the execute TLB (the caller refills it),
            // or it is not decoded in this generation: try again at the
            // next arrival.
            self.heat.counter(pc).store(self.hot - 1, Ordering::Relaxed);
            return;
        }
        let host = fetch.addend.wrapping_add(pc as usize);
        let mut block: Vec<(u64, Inst)> = Vec::new();
        let mut parcels: Vec<u16> = Vec::new();
        let mut at = pc;
        while block.len() < MAX_BLOCK && on_block_page(pc, at) {
            // The code as it is now (kept to check the block in later
            // generations).
            let offset = host + (at - pc) as usize;
            // SAFETY: the execute TLB grants the page (checked above) for
            // fetches in this mode, and `at` is 2-aligned and on it, as is
            // `at + 2` (`<= 0xffc`).
            let lo = unsafe { parcel(offset) };
            let word = if lo & 3 == 3 {
                // SAFETY: as above.
                u32::from(lo) | u32::from(unsafe { parcel(offset + 2) }) << 16
            } else {
                u32::from(lo)
            };
            let inst = if decoded_only {
                match dcache.get(at) {
                    Some(&inst) if inst.raw == word => inst,
                    _ => break,
                }
            } else {
                samsara_isa::decode(word)
            };
            let stop = match emit::kind(&inst) {
                emit::Kind::Straight | emit::Kind::Called => false,
                emit::Kind::Ends => true,
                emit::Kind::Interpreted => break,
            };
            block.push((at, inst));
            parcels.push(lo);
            if inst.len == 4 {
                parcels.push((word >> 16) as u16);
            }
            at = at.wrapping_add(u64::from(inst.len));
            if stop {
                break;
            }
        }
        // The instructions a block calls the interpreter for are read from
        // here while its code may run (until the code space is emptied).
        let called = block
            .iter()
            .any(|(_, i)| matches!(emit::kind(i), emit::Kind::Called))
            .then(|| block.clone().into_boxed_slice());
        let translation = (!block.is_empty())
            .then(|| emit::block(pc, &block, called.as_deref()))
            .filter(|t| t.code.len() <= MAX_BLOCK_BYTES);
        let Some(translation) = translation else {
            // Nothing to translate here in this generation (unless the
            // slot holds another pc's block, which stays).
            if self.slots[slot_index].code == 0 {
                self.slots[slot_index] = Slot {
                    pc,
                    generation,
                    ..EMPTY
                };
            }
            return;
        };
        if self.used + translation.code.len() > CODE_BYTES && !self.empty() {
            return;
        }
        let code = &translation.code;
        let offset = self.used;
        self.code.populate(offset, code.len());
        self.code.write[offset..offset + code.len()].copy_from_slice(code);
        self.code.write[offset..offset + emit::HEADER]
            .copy_from_slice(&emit::Header::new(generation, fetch).bytes());
        // Blocks start on 16-byte boundaries (the fetch unit).
        self.used = (offset + code.len() + 15) & !15;
        let source = self.source.len() as u32;
        self.source.extend_from_slice(&parcels);
        let slot = Slot {
            pc,
            generation,
            fetch,
            code: self.code.exec.as_ptr() as usize + offset + translation.entry,
            len: block.len() as u32,
            start: offset as u32,
            source,
            source_len: parcels.len() as u32,
            checked: self.code.exec.as_ptr() as usize + offset + emit::HEADER,
        };
        self.install(slot_index, slot);
        if let Some(made) = &mut self.attempt {
            made.push((pc, offset as u32));
        }
        self.called.extend(called);
        // Jumps from this block to blocks there are, and from blocks there
        // are to this one, go straight to the checked entries.
        for &(site, target) in &translation.sites {
            let site = (offset + site) as u32;
            if let Some(start) = self.block_start(target) {
                self.patch(site, start as usize + emit::HEADER);
            }
            self.jumps_to.entry(target).or_default().push(site);
        }
        if let Some(sites) = self.jumps_to.remove(&pc) {
            for &site in &sites {
                self.patch(site, offset + emit::HEADER);
            }
            self.jumps_to.insert(pc, sites);
        }
        self.stats.blocks += 1;
        self.stats.instructions_translated += block.len() as u64;
        self.stats.code_bytes += translation.code.len() as u64;
        if let Some(started) = started {
            self.stats.translate_nanos += started.elapsed().as_nanos() as u64 * TIMED;
        }
    }

    /// Drops every translation (the code space is full) for a fresh
    /// code space; `false` if none could be had (the old one stays, full).
    fn empty(&mut self) -> bool {
        let Ok(fresh) = CodeSpace::new() else {
            return false;
        };
        self.code = fresh;
        self.clear_tables();
        self.stats.flushes += 1;
        true
    }
}
