//! The one narrow interface through which a hart sees the rest of the machine.
//!
//! The CPU never owns memory or devices. Every hart is driven with a `Bus`
//! implementation chosen by the execution mode:
//! - `run` mode: direct shared RAM, live devices, live interrupt lines;
//! - `record` mode: the chunk engine's copy-on-write view, which learns the
//!   read/write sets from `ram_page` calls (first touch per page per chunk),
//!   defers device accesses to chunk boundaries and latches interrupts;
//! - `replay` mode: the same view, fed from the trace.
//!
//! The hot path never calls the bus: a RAM access that hits the hart's
//! software TLB goes straight to the host pointer. `ram_page` is called only
//! on a TLB miss, which is exactly the "first touch" hook the recorder needs.

use std::ptr::NonNull;

use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr, HartId};

/// Why the hart wants a page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AccessKind {
    /// Data load (including the read half of an AMO or LR).
    Read,
    /// Data store (including AMOs, SC, and hardware A/D updates of guest PTEs).
    Write,
    /// Instruction fetch.
    Execute,
}

/// A host mapping for one 4 KiB guest-physical page of RAM, as
/// `Bus::ram_page` answers it.
///
/// Building one is `unsafe` ([`PageGrant::new`], [`PageGrant::moved`]): the hart dereferences
/// the pointer without further checks, so whoever builds a grant vouches
/// for it (see the contract on [`Bus`]).
#[derive(Clone, Copy, Debug)]
pub struct PageGrant {
    host: NonNull<u8>,
    moved_from: Option<NonNull<u8>>,
}

impl PageGrant {
    /// A grant of the host page at `host`.
    ///
    /// # Safety
    /// `host` must meet the grant contract stated on [`Bus`] for the
    /// `ram_page` request this grant answers (valid, 8-byte aligned, 4 KiB,
    /// writable if requested for `Write`, alive until the hart's TLB is
    /// flushed, shared only through atomic accesses).
    #[inline]
    pub const unsafe fn new(host: NonNull<u8>) -> Self {
        Self {
            host,
            moved_from: None,
        }
    }

    /// A grant of the host page at `host` for a page earlier grants put at
    /// `from` (copy-on-write happened): the hart drops every cached
    /// translation that points at `from`.
    ///
    /// # Safety
    /// As [`PageGrant::new`].
    #[inline]
    pub const unsafe fn moved(host: NonNull<u8>, from: NonNull<u8>) -> Self {
        Self {
            host,
            moved_from: Some(from),
        }
    }

    /// Host address of byte 0 of the page.
    #[inline]
    pub const fn host(self) -> NonNull<u8> {
        self.host
    }

    /// Where earlier grants put the page, if it moved (see [`PageGrant::moved`]).
    #[inline]
    pub const fn moved_from(self) -> Option<NonNull<u8>> {
        self.moved_from
    }
}

/// What [`Bus::breakpoint`] says of an instruction about to execute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FetchBreakpoint {
    /// No breakpoint there.
    None,
    /// A breakpoint: stop before it (`StopReason::Breakpoint`).
    Stop,
    /// A breakpoint, but execute it this once (resuming from it).
    Pass,
}

/// Whether a data access is part of an atomic instruction (A extension).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Atomicity {
    /// A plain load or store (integer or floating point).
    Plain,
    /// `lr.w`/`lr.d`.
    LoadReserved,
    /// `sc.w`/`sc.d` (shown whether or not it then succeeds).
    StoreConditional,
    /// An AMO: reads and writes.
    Amo,
}

/// A data access to a watched page, as [`Bus::check_access`] is shown it:
/// all in one page, before it has any effect.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DataAccess {
    /// First byte, virtual ...
    pub vaddr: GuestVirtAddr,
    /// ... and where it maps.
    pub paddr: GuestPhysAddr,
    /// Bytes (1 to 8; a page-crossing access is shown piece by piece).
    pub len: u64,
    /// `Read` or `Write` (an AMO is shown as a `Write`, then a `Read`).
    pub kind: AccessKind,
    /// Plain or which atomic instruction.
    pub atomic: Atomicity,
    /// The accessing instruction's address.
    pub pc: GuestVirtAddr,
    /// The privilege the access is made at (MPRV applied).
    pub privilege: crate::state::Privilege,
    /// The hart's steps before the accessing instruction.
    pub steps: u64,
}

/// Result of a device (MMIO) access.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MmioError {
    /// Nothing answers at this address, or the device refuses this access
    /// size: the hart takes an access-fault exception.
    AccessFault,
    /// The access may not happen now (the recorder ends the chunk before any
    /// device access). The instruction is not executed and has no effect; the
    /// hart stops with `StopReason::DeviceAccess` with `pc` at the instruction,
    /// so it can be re-executed when the bus allows the access.
    Deferred,
}

/// How a hart sees physical memory, devices, time and interrupt lines.
///
/// Each hart thread owns its own `Bus` value (so `&mut self` is free of
/// contention); implementations share machine state behind it.
///
/// # Safety
///
/// The hart turns the [`PageGrant`]s returned by [`Bus::ram_page`] into
/// raw host pointers, caches them in its software TLB and dereferences them
/// with no further check. An implementation promises, for every grant it
/// returns for page `page` and access `kind`:
///
/// - **Valid and sized**: `host()` points to 4096 bytes of host memory,
///   all inside one live allocation, whose provenance allows the accesses
///   below (the hart goes through `expose_provenance`, so the pointer's
///   provenance must cover the whole page).
/// - **Aligned**: `host()` is at least 8-byte aligned (the hart performs
///   naturally aligned 1-, 2-, 4- and 8-byte atomic accesses at any offset).
/// - **Writable when asked**: a page granted for `AccessKind::Write` may be
///   written through the pointer. A page granted for `Read`/`Execute` is
///   only read (the hart asks again with `Write` before its first store).
/// - **Alive until flushed**: the memory stays allocated, and is not reused
///   for anything but this page's contents, until the hart's TLB is next
///   flushed by the code that drives it (`Hart::flush_tlb`, `Hart::restore`)
///   or the hart is dropped — possibly across several `Hart::run` calls and
///   several values of the bus type. The hart also flushes on its own (on a
///   `remapped` grant, `satp` writes, `sfence.vma`, ...); that only shortens
///   the time a grant is used. Whoever owns both the memory and the hart
///   (run loop, recorder, replayer) must flush the hart before it frees,
///   unmaps or recycles memory it has granted.
/// - **Shared only atomically**: other host threads (other harts, device
///   models, the recorder) may read and write the same bytes concurrently,
///   but only with atomic accesses (any ordering; the hart uses `Relaxed`)
///   or with accesses ordered before or after the hart's by
///   synchronisation (e.g. the hart is not running). Plain non-atomic
///   accesses racing with a running hart are not allowed.
///
/// `mmio_*`, `read_time`, `interrupt_lines` and the hooks carry no safety
/// obligation.
pub unsafe trait Bus {
    /// Host mapping for guest-physical page `page` for an access of `kind`, or `None` if that page is not RAM (device or hole);
    /// the hart then uses `mmio_read`/`mmio_write` for it, never a TLB entry.
    ///
    /// Called only on a TLB miss. A page granted for `Read`/`Execute` must
    /// never be written through that pointer; the hart asks again with
    /// `Write` before its first store to the page.
    fn ram_page(&mut self, page: GuestPhysPage, kind: AccessKind) -> Option<PageGrant>;

    /// Device load of `size` (1, 2, 4 or 8) bytes at naturally aligned `addr`.
    /// Bits above the low `size` bytes of the result are ignored.
    fn mmio_read(&mut self, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError>;

    /// Device store of the low `size` bytes of `value` at naturally aligned
    /// `addr` (the hart passes `value` with the bits above them zeroed).
    fn mmio_write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), MmioError>;

    /// Current value of the `time` CSR (CLINT mtime, 10 MHz).
    fn read_time(&mut self) -> u64;

    /// Interrupt-pending bits driven by devices for this hart, in `mip`
    /// layout (MSIP, MTIP, MEIP, SEIP; STIP/SSIP too if a device drives them).
    /// The hart ORs these with its software-writable `mip` bits.
    fn interrupt_lines(&mut self) -> u64;

    /// The hart this bus serves.
    fn hart_id(&self) -> HartId;

    /// Whether the `ram_page` call that just answered `None` refused a RAM
    /// page *for now* rather than saying "not RAM": the CREW recorder does
    /// when this hart lacks the right to the page. The hart then treats the
    /// instruction like a deferred device access: no effect, stop with
    /// `StopReason::DeviceAccess`, `pc` at the instruction, re-executed when
    /// the bus has made the page available. A page granted once is taken
    /// back only after the hart's TLB was emptied (`Hart::flush_tlb`): until
    /// then the hart uses its grants, page walks included, without asking
    /// again. The default: never.
    fn ram_refused(&mut self) -> bool {
        false
    }

    /// The hart executed a `pause` hint (it is spinning) and runs on. A bus
    /// may give its host thread's CPU away here; it must not change what
    /// the hart does. The default: nothing.
    fn pause_hint(&mut self) {}

    /// Whether the instruction at virtual address `pc`, just fetched and
    /// decoded (a decode-cache miss), is at a breakpoint. An instruction at
    /// a breakpoint is never put in the decode cache, so every execution of
    /// it is asked again; whoever sets breakpoints flushes the decode cache
    /// (`Hart::flush_decode_cache`). The other instructions run at full
    /// speed. Fetch faults come first. The default: none.
    fn breakpoint(&mut self, _pc: GuestVirtAddr) -> FetchBreakpoint {
        FetchBreakpoint::None
    }

    /// Whether any breakpoint is set. Without one, the block translator
    /// reads code straight from memory; with one, only instructions in the
    /// decode cache (so never one at a breakpoint). The default: none.
    fn any_breakpoint(&self) -> bool {
        false
    }

    /// Whether any watch is set. Asked only on the TLB slow path (a miss),
    /// before [`Bus::watched_page`]; keep it cheap. The default: never.
    fn watching(&self) -> bool {
        false
    }

    /// Whether the page holding `vaddr` (which maps to `paddr`) holds
    /// watched bytes. The hart never caches such a page in its read or
    /// write TLB, so every data access to it takes the slow path and is
    /// shown to [`Bus::check_access`]; instruction fetches are never
    /// checked (the execute TLB still caches the page). The default: never.
    ///
    /// `kind` (`Read` or `Write`) is the access's: a page watched for
    /// writes only may stay in the read TLB.
    fn watched_page(
        &self,
        _vaddr: GuestVirtAddr,
        _paddr: GuestPhysAddr,
        _kind: AccessKind,
    ) -> bool {
        false
    }

    /// A data access to a watched page, asked before the access has any
    /// effect (both pieces of a page-crossing access are asked before
    /// either is done; an AMO is asked as a `Write`, then as a `Read`).
    /// `true` stops the hart: the instruction does not execute and has no
    /// effect (LR reservations kept), `pc` is at it, and `run` returns
    /// `StopReason::Watch`. The page-table walker's own PTE reads and A/D
    /// writes are not shown here. The default: no hit.
    fn check_access(&mut self, _access: &DataAccess) -> bool {
        false
    }

    /// The instruction at step `step` (the hart's step count before it),
    /// shown to [`Bus::check_access`] and let go on, did not complete: it
    /// trapped, or a later piece of it was deferred. Its accesses did not
    /// happen. Called only while [`Bus::watching`]. The default: nothing.
    fn access_undone(&mut self, _step: u64) {}

    /// The `fence` at step `step` (the hart's step count before it)
    /// retired, with its predecessor and successor sets (bits: I=8, O=4,
    /// R=2, W=1). The default: nothing.
    #[inline(always)]
    fn fence(&mut self, _step: u64, _pred: u8, _succ: u8) {}
}
