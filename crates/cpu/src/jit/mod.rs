//! The block translator: hot straight-line guest code to x86-64 host code
//! (docs/translator.md).
//!
//! Tiered: the interpreter runs everything first and counts how often it
//! arrives at each pc; a pc that gets hot becomes the head of a block of
//! the instructions that follow it in the decode cache, up to the first
//! control transfer or the first instruction the translator leaves to the
//! interpreter. A block is entered only when the step budget covers it
//! whole, and leaves to the interpreter *before* any instruction whose
//! memory access misses the TLB (or is misaligned): that instruction then
//! runs interpreted, through the same slow path as ever (page first touch,
//! copy-on-write, MMIO deferral, watchpoints, LR reservations). So
//! translated code never raises an exception, never reaches a device, and
//! counts instructions exactly.
//!
//! A block lies within one virtual page and is valid while two things
//! hold. The code has not changed: the decode cache's *code* generation
//! (bumped by `fence.i`, restores and the owner's flushes for commits, DMA
//! and breakpoint changes) is the one it was translated in. And the page
//! still maps to the same host page with fetch permitted: the execute TLB
//! holds the entry it held then (the TLB is emptied on every satp,
//! privilege, `sfence.vma` and PMP change and refilled only by a fetch
//! that passed the checks of the current mode). So a trap into the kernel
//! and back does not lose the translations of either side.

mod emit;

use std::os::fd::FromRawFd;

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::TranslatorStats;
use crate::tlb::{DecodeCache, Tlb, TlbEntry};
use samsara_isa::Inst;

/// Slots in the block table (direct-mapped by `pc >> 1`).
const SLOTS: usize = 1 << 16;
/// Arrivals at a pc before it is translated.
const HOT: u32 = 16;
/// The most guest instructions in one block.
const MAX_BLOCK: usize = 64;
/// Host code space; when full, every translation is dropped.
const CODE_BYTES: usize = 16 << 20;
/// Largest host code of one block (64 instructions of at most ~60 bytes,
/// exits included), checked before it is copied in.
const MAX_BLOCK_BYTES: usize = 16 << 10;

/// What a block is called with: the budget it may use (at least its
/// length on entry) and, on return, the pc to go on at.
#[repr(C)]
pub(crate) struct BlockFrame {
    /// Steps still allowed before this call's iteration; a block that
    /// loops on itself takes its length off each time round.
    pub left: u64,
    /// Where execution goes on.
    pub next_pc: u64,
}

/// A translated block: `x` the integer registers, `read` and `write` the
/// TLB arrays, `frame` the budget and exit pc. Returns the instructions it
/// executed in its last time round (those before, `frame.left` accounts
/// for).
type BlockFn = unsafe extern "sysv64" fn(
    x: *mut u64,
    read: *const TlbEntry,
    write: *const TlbEntry,
    frame: *mut BlockFrame,
) -> u64;

#[derive(Clone, Copy)]
struct Slot {
    pc: u64,
    /// The decode cache's code generation it was made in.
    generation: u64,
    /// The execute-TLB entry of its page when it was translated.
    fetch: TlbEntry,
    /// Arrivals counted while cold.
    heat: u32,
    /// Instructions in the block; 0 if none could be translated here.
    len: u32,
    /// Offset of its code in the code space; `NONE` while cold.
    offset: u32,
}

const NONE: u32 = u32::MAX;

const EMPTY: Slot = Slot {
    pc: u64::MAX,
    generation: 0,
    fetch: TlbEntry {
        tag: u64::MAX,
        addend: 0,
    },
    heat: 0,
    len: 0,
    offset: NONE,
};

/// What the table says about a pc.
pub(crate) enum Lookup {
    /// A block of `len` instructions.
    Block(BlockFn, u64),
    /// Just got hot: translate it.
    Hot,
    /// Cold, or nothing translatable starts here.
    Interpret,
}

/// One hart's translations.
pub(crate) struct Jit {
    slots: Box<[Slot]>,
    code: CodeSpace,
    used: usize,
    pub stats: TranslatorStats,
}

/// Host code memory, mapped twice: written through one view (read and
/// write), run from the other (read and execute), so no page is ever
/// writable and executable at once and nothing is re-protected per block.
/// Emptied by mapping a fresh one: code that ran is never overwritten.
struct CodeSpace {
    write: MmapMut,
    exec: Mmap,
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
        let write = unsafe { MmapOptions::new().len(CODE_BYTES).map_mut(&file)? };
        // SAFETY: as above.
        let exec = unsafe { MmapOptions::new().len(CODE_BYTES).map_exec(&file)? };
        Ok(CodeSpace { write, exec })
    }
}

impl Jit {
    pub(crate) fn new() -> std::io::Result<Jit> {
        Ok(Jit {
            slots: vec![EMPTY; SLOTS].into_boxed_slice(),
            code: CodeSpace::new()?,
            used: 0,
            stats: TranslatorStats::default(),
        })
    }

    #[inline(always)]
    fn index(pc: u64) -> usize {
        ((pc >> 1) as usize) & (SLOTS - 1)
    }

    /// The block at `pc`, counting an arrival if there is none yet.
    /// `generation`: the decode cache's code generation; `exec`: the
    /// execute TLB.
    #[inline(always)]
    pub(crate) fn lookup(&mut self, pc: u64, generation: u64, exec: &[TlbEntry]) -> Lookup {
        let slot = &mut self.slots[Self::index(pc)];
        if slot.pc != pc || slot.generation != generation {
            *slot = Slot {
                pc,
                generation,
                ..EMPTY
            };
        }
        if slot.offset != NONE {
            let now = exec[Tlb::index(pc >> 12)];
            if now.tag != slot.fetch.tag || now.addend != slot.fetch.addend {
                // Not fetched through the same mapping in this mode yet:
                // the interpreter's fetch will tell.
                return Lookup::Interpret;
            }
            let base = self.code.exec.as_ptr();
            // SAFETY: `offset` is where `translate` copied a complete
            // block's code into the executable space, which has not been
            // emptied since (emptying resets every slot).
            let f = unsafe {
                std::mem::transmute::<*const u8, BlockFn>(base.add(slot.offset as usize))
            };
            return Lookup::Block(f, u64::from(slot.len));
        }
        if slot.heat == HOT {
            return Lookup::Interpret;
        }
        slot.heat += 1;
        if slot.heat == HOT {
            Lookup::Hot
        } else {
            Lookup::Interpret
        }
    }

    /// Translates the block at `pc` from the decode cache (generation
    /// `generation`). Leaves the slot marked so that a pc where nothing
    /// can be translated is not tried again in this generation.
    pub(crate) fn translate(&mut self, pc: u64, dcache: &DecodeCache, exec: &[TlbEntry]) {
        let started = std::time::Instant::now();
        let generation = dcache.code_generation;
        let fetch = exec[Tlb::index(pc >> 12)];
        if fetch.tag != pc >> 12 {
            // Its page's entry was evicted (or the code came from a
            // device): nothing to tie a block to.
            return;
        }
        let mut block: Vec<(u64, Inst)> = Vec::new();
        let mut at = pc;
        // Within the page (an instruction may not straddle its end).
        while block.len() < MAX_BLOCK && (at & 0xfff) <= 0xffc {
            let Some(&inst) = dcache.get(at) else { break };
            match emit::kind(&inst) {
                emit::Kind::Straight => {
                    block.push((at, inst));
                    at = at.wrapping_add(u64::from(inst.len));
                }
                emit::Kind::Ends => {
                    block.push((at, inst));
                    break;
                }
                emit::Kind::Interpreted => break,
            }
        }
        let slot_index = Self::index(pc);
        if block.is_empty() {
            return;
        }
        let code = emit::block(pc, &block);
        if code.len() > MAX_BLOCK_BYTES {
            return;
        }
        if self.used + code.len() > CODE_BYTES && !self.empty() {
            return;
        }
        let offset = self.used;
        self.code.write[offset..offset + code.len()].copy_from_slice(&code);
        self.used += code.len();
        self.slots[slot_index] = Slot {
            pc,
            generation,
            fetch,
            heat: HOT,
            len: block.len() as u32,
            offset: offset as u32,
        };
        self.stats.blocks += 1;
        self.stats.instructions_translated += block.len() as u64;
        self.stats.code_bytes += code.len() as u64;
        self.stats.translate_nanos += started.elapsed().as_nanos() as u64;
    }

    /// Drops every translation (the code space is full) for a fresh
    /// code space; `false` if none could be had (the old one stays, full).
    fn empty(&mut self) -> bool {
        let Ok(fresh) = CodeSpace::new() else {
            return false;
        };
        self.code = fresh;
        self.slots.fill(EMPTY);
        self.used = 0;
        self.stats.flushes += 1;
        true
    }
}
