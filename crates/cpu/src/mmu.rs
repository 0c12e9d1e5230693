//! Address translation (Sv39/Sv48 with hardware A/D updates), PMP
//! enforcement, and the slow paths of memory access.
//!
//! Everything here runs only on a TLB miss (or for accesses that are never
//! cached: MMIO, PMP-restricted pages, misaligned accesses, LR/SC).

use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr};

use crate::bus::{AccessKind, Atomicity, Bus, DataAccess, MmioError, PageGrant};
use crate::csr::{mstatus, satp};
use crate::hart::{ExecError, Hart};
use crate::pmp::PmpAccess;
use crate::state::Privilege;
use crate::tlb::TlbKind;
use crate::trap::Exception;

/// The kind of a memory access, as translation and protection see it.
/// AMOs and SC are stores (they need write permission; W implies R for
/// both PTEs and PMP entries).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    Load,
    Store,
    Fetch,
}

impl Access {
    fn page_fault(self, vaddr: u64) -> Exception {
        match self {
            Access::Load => Exception::LoadPageFault(vaddr),
            Access::Store => Exception::StorePageFault(vaddr),
            Access::Fetch => Exception::InstructionPageFault(vaddr),
        }
    }

    pub(crate) fn access_fault(self, vaddr: u64) -> Exception {
        match self {
            Access::Load => Exception::LoadAccessFault(vaddr),
            Access::Store => Exception::StoreAccessFault(vaddr),
            Access::Fetch => Exception::InstructionAccessFault(vaddr),
        }
    }

    fn pmp(self) -> PmpAccess {
        match self {
            Access::Load => PmpAccess::Read,
            Access::Store => PmpAccess::Write,
            Access::Fetch => PmpAccess::Execute,
        }
    }

    fn bus_kind(self) -> AccessKind {
        match self {
            Access::Load => AccessKind::Read,
            Access::Store => AccessKind::Write,
            Access::Fetch => AccessKind::Execute,
        }
    }

    fn tlb_kind(self) -> TlbKind {
        match self {
            Access::Load => TlbKind::Read,
            Access::Store => TlbKind::Write,
            Access::Fetch => TlbKind::Execute,
        }
    }
}

/// Where an access lands after translation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Target {
    /// RAM, at this host address.
    Ram(usize),
    /// A device (or nothing) at this guest-physical address.
    Mmio(u64),
}

// PTE bits.
const PTE_V: u64 = 1 << 0;
const PTE_R: u64 = 1 << 1;
const PTE_W: u64 = 1 << 2;
const PTE_X: u64 = 1 << 3;
const PTE_U: u64 = 1 << 4;
const PTE_A: u64 = 1 << 6;
const PTE_D: u64 = 1 << 7;
const PTE_PPN_MASK: u64 = (1 << 44) - 1;
/// Bits 63:54 (N, PBMT, reserved): Svnapot/Svpbmt are not implemented, so
/// a leaf or pointer with any of them set is a page fault.
const PTE_RESERVED: u64 = !0 << 54;

/// Reads `size` (1, 2, 4, 8) bytes at host address `addr` with a relaxed
/// atomic load (other harts' threads may access the same RAM concurrently).
///
/// # Safety
/// `addr` must point into a page granted by `Bus::ram_page` that is still
/// valid (the TLB entry or grant it came from has not been flushed) and
/// must be aligned to `size`.
#[inline(always)]
pub(crate) unsafe fn host_read(addr: usize, size: u8) -> u64 {
    let p = std::ptr::with_exposed_provenance_mut::<u8>(addr);
    // SAFETY: the caller guarantees a valid, aligned pointer into live RAM;
    // all concurrent accesses to guest RAM are atomic, so there is no data race.
    unsafe {
        match size {
            1 => u64::from(AtomicU8::from_ptr(p).load(Ordering::Relaxed)),
            2 => u64::from(AtomicU16::from_ptr(p.cast()).load(Ordering::Relaxed)),
            4 => u64::from(AtomicU32::from_ptr(p.cast()).load(Ordering::Relaxed)),
            _ => AtomicU64::from_ptr(p.cast()).load(Ordering::Relaxed),
        }
    }
}

/// Writes the low `size` bytes of `value` at host address `addr` with a
/// relaxed atomic store.
///
/// # Safety
/// As [`host_read`], and the page must have been granted for
/// `AccessKind::Write`.
#[inline(always)]
pub(crate) unsafe fn host_write(addr: usize, size: u8, value: u64) {
    let p = std::ptr::with_exposed_provenance_mut::<u8>(addr);
    // SAFETY: the caller guarantees a valid, aligned, writable pointer into
    // live RAM; concurrent accesses are all atomic.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p).store(value as u8, Ordering::Relaxed),
            2 => AtomicU16::from_ptr(p.cast()).store(value as u16, Ordering::Relaxed),
            4 => AtomicU32::from_ptr(p.cast()).store(value as u32, Ordering::Relaxed),
            _ => AtomicU64::from_ptr(p.cast()).store(value, Ordering::Relaxed),
        }
    }
}

/// The low `size` bytes.
fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

fn mmio_error(e: MmioError, fault: Exception) -> ExecError {
    match e {
        MmioError::AccessFault => ExecError::Exception(fault),
        MmioError::Deferred => ExecError::Deferred,
    }
}

/// Page-table levels of `satp_value`'s mode; `None`: Bare (no translation).
fn satp_levels(satp_value: u64) -> Option<u64> {
    match satp_value >> 60 {
        satp::SV39 => Some(3),
        satp::SV48 => Some(4),
        _ => None,
    }
}

/// The leaf PTE a walk found.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    pte: u64,
    /// Where the PTE is (for its A/D update).
    pte_addr: u64,
    /// The translated address.
    paddr: u64,
    /// log2 of the leaf's size in 4 KiB pages (0 for a 4 KiB page).
    shift: u8,
}

/// The Sv39/Sv48 walk of `vaddr` under `satp_value` (not Bare), PTEs read
/// through `read_pte`: `Ok(None)` for a page fault whatever the access
/// (non-canonical address, invalid or reserved encoding, pointer at the
/// last level, misaligned superpage). Permissions and A/D are the caller's.
fn walk<E>(
    satp_value: u64,
    vaddr: u64,
    mut read_pte: impl FnMut(u64) -> Result<u64, E>,
) -> Result<Option<Leaf>, E> {
    let Some(levels) = satp_levels(satp_value) else {
        return Ok(Some(Leaf {
            pte: 0,
            pte_addr: 0,
            paddr: vaddr,
            shift: 0,
        }));
    };
    // Canonical check: bits above the VA width must copy its top bit.
    let va_bits = 12 + 9 * levels;
    let shift = 64 - va_bits;
    if (((vaddr << shift) as i64) >> shift) as u64 != vaddr {
        return Ok(None);
    }
    let mut table = (satp_value & satp::PPN) << 12;
    let mut level = levels - 1;
    loop {
        let index = (vaddr >> (12 + 9 * level)) & 0x1ff;
        let pte_addr = table.wrapping_add(index * 8);
        let pte = read_pte(pte_addr)?;
        if pte & PTE_V == 0 || (pte & PTE_R == 0 && pte & PTE_W != 0) || pte & PTE_RESERVED != 0 {
            return Ok(None);
        }
        if pte & (PTE_R | PTE_X) == 0 {
            // Pointer to the next level; A/D/U are reserved here.
            if level == 0 || pte & (PTE_A | PTE_D | PTE_U) != 0 {
                return Ok(None);
            }
            table = ((pte >> 10) & PTE_PPN_MASK) << 12;
            level -= 1;
            continue;
        }
        let ppn = (pte >> 10) & PTE_PPN_MASK;
        if level > 0 && ppn & ((1 << (9 * level)) - 1) != 0 {
            // Misaligned superpage.
            return Ok(None);
        }
        let offset_mask = (1u64 << (12 + 9 * level)) - 1;
        return Ok(Some(Leaf {
            pte,
            pte_addr,
            paddr: ((ppn << 12) & !offset_mask) | (vaddr & offset_mask),
            shift: (9 * level) as u8,
        }));
    }
}

impl Hart {
    /// Privilege used for data accesses (MPRV substitutes MPP in M-mode).
    pub(crate) fn data_privilege(&self) -> Privilege {
        let s = &self.state;
        if s.privilege == Privilege::Machine && s.csr.mstatus & mstatus::MPRV != 0 {
            Privilege::from_bits(s.csr.mstatus >> mstatus::MPP_SHIFT).unwrap_or(Privilege::User)
        } else {
            s.privilege
        }
    }

    /// Translates, checks PMP for `[vaddr, vaddr + len)` (which must lie in
    /// one page), asks the bus for the page, and caches the translation when
    /// that is safe. Returns where the access lands and its physical address.
    /// `atomic`: which atomic instruction makes the access, for the bus's
    /// watches.
    ///
    /// Data accesses to a page the bus watches (`Bus::watched_page`) are
    /// checked here (`Bus::check_access`) before they have any effect, and
    /// such a page is never cached in the read or write TLB, so every access
    /// to it comes here; unwatched pages keep the fast path.
    pub(crate) fn access_slow<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        len: u64,
        access: Access,
        atomic: Atomicity,
    ) -> Result<(Target, u64), ExecError> {
        let privilege = if access == Access::Fetch {
            self.state.privilege
        } else {
            self.data_privilege()
        };
        let (paddr, leaf_shift) = self.translate(bus, vaddr, access, privilege)?;
        // A page one entry allows whole allows every access within it
        // (any entry matching part of it would fail the page's check):
        // one check on the common path.
        let page_uniform = self
            .pmp
            .check(paddr & !0xfff, 4096, access.pmp(), privilege);
        if !page_uniform && !self.pmp.check(paddr, len, access.pmp(), privilege) {
            return Err(access.access_fault(vaddr).into());
        }
        let watched = access != Access::Fetch
            && bus.watching()
            && bus.watched_page(
                GuestVirtAddr(vaddr),
                GuestPhysAddr(paddr),
                access.bus_kind(),
            );
        if watched
            && (self.filling_tlb
                || self.watch_hit(bus, vaddr, paddr, len, access, atomic, privilege))
        {
            return Err(ExecError::Watch);
        }
        let Some(grant) = bus.ram_page(
            GuestPhysPage::containing(GuestPhysAddr(paddr)),
            access.bus_kind(),
        ) else {
            // A RAM page refused for now (CREW recording): the instruction
            // waits, with no effect, exactly like a deferred device access.
            if bus.ram_refused() {
                return Err(ExecError::Deferred);
            }
            return Ok((Target::Mmio(paddr), paddr));
        };
        if access == Access::Store
            && let Some(r) = self.state.reservation
            && r.paddr < paddr.wrapping_add(len)
            && paddr < r.paddr + u64::from(r.size)
        {
            // A store by this hart to the reserved address ends the reservation.
            self.state.reservation = None;
        }
        if let Some(from) = grant.moved_from() {
            // The page moved (copy-on-write): nothing may keep pointing at
            // the old copy.
            self.tlb.evict_host_page(from.as_ptr().expose_provenance());
        }
        let host_page = grant.host().as_ptr().expose_provenance();
        match access {
            // Code from here may be cached from now on: stores to it must
            // come through here.
            Access::Fetch if self.dcache.code_pages.insert(paddr >> 12) => {
                self.tlb.evict_write_host_page(host_page);
            }
            Access::Store if self.dcache.code_pages.contains(&(paddr >> 12)) => {
                // A store to code this hart may have cached: whatever is
                // cached goes (or is checked again), before the store.
                self.invalidate_code();
            }
            _ => {}
        }
        let reserved_page = access == Access::Store
            && self
                .state
                .reservation
                .is_some_and(|r| r.paddr >> 12 == paddr >> 12);
        if page_uniform && !reserved_page && !watched {
            self.tlb
                .insert(access.tlb_kind(), vaddr, host_page, leaf_shift);
        }
        Ok((Target::Ram(host_page + (paddr & 0xfff) as usize), paddr))
    }

    /// Whether the bus reports a watch hit for this data access (an AMO
    /// is checked as a write, then as a read).
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn watch_hit<B: Bus>(
        &self,
        bus: &mut B,
        vaddr: u64,
        paddr: u64,
        len: u64,
        access: Access,
        atomic: Atomicity,
        privilege: Privilege,
    ) -> bool {
        let mut shown = DataAccess {
            vaddr: GuestVirtAddr(vaddr),
            paddr: GuestPhysAddr(paddr),
            len,
            kind: access.bus_kind(),
            atomic,
            pc: GuestVirtAddr(self.state.pc),
            privilege,
            steps: self.state.steps,
        };
        if bus.check_access(&shown) {
            return true;
        }
        shown.kind = AccessKind::Read;
        atomic == Atomicity::Amo && bus.check_access(&shown)
    }

    /// Virtual-to-physical translation for an access at `privilege`.
    fn translate<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        access: Access,
        privilege: Privilege,
    ) -> Result<(u64, u8), ExecError> {
        let satp_value = self.state.csr.satp;
        if satp_levels(satp_value).is_none() || privilege == Privilege::Machine {
            return Ok((vaddr, 0));
        }
        let mstatus_value = self.state.csr.mstatus;
        loop {
            let walked = walk(satp_value, vaddr, |pte_addr| {
                self.read_pte(bus, pte_addr, access, vaddr)
            })?;
            let Some(leaf) = walked else {
                return Err(access.page_fault(vaddr).into());
            };
            let pte = leaf.pte;
            // Leaf: permissions.
            let user_page = pte & PTE_U != 0;
            let privilege_ok = match privilege {
                Privilege::User => user_page,
                Privilege::Supervisor => {
                    !user_page || (access != Access::Fetch && mstatus_value & mstatus::SUM != 0)
                }
                Privilege::Machine => true,
            };
            let permission_ok = match access {
                Access::Fetch => pte & PTE_X != 0,
                Access::Load => {
                    pte & PTE_R != 0 || (mstatus_value & mstatus::MXR != 0 && pte & PTE_X != 0)
                }
                Access::Store => pte & PTE_W != 0,
            };
            if !privilege_ok || !permission_ok {
                return Err(access.page_fault(vaddr).into());
            }
            let needed = PTE_A | if access == Access::Store { PTE_D } else { 0 };
            if pte & needed != needed
                && !self.update_pte(bus, leaf.pte_addr, (pte, pte | needed), access, vaddr)?
            {
                // The PTE changed under us: walk again.
                continue;
            }
            return Ok((leaf.paddr, leaf.shift));
        }
    }

    /// Where `vaddr` maps under this hart's `satp`, without side effects:
    /// the walk of an access's translation with page-table entries read
    /// through `read_pte` (a physical address in, the 8-byte PTE out,
    /// `None` if it cannot be read), no A/D update, no bus call, no TLB or
    /// decode-cache change. Whatever the current privilege (an M-mode hart
    /// still shows the view `satp` gives; MPRV is ignored), identity when
    /// `satp` is Bare; R/W/X/U/SUM/MXR are not checked. `None`: not mapped
    /// (non-canonical address, invalid or reserved PTE encoding, misaligned
    /// superpage, or a PTE that `read_pte` could not read).
    pub fn peek_translate(
        &self,
        vaddr: GuestVirtAddr,
        mut read_pte: impl FnMut(GuestPhysAddr) -> Option<u64>,
    ) -> Option<GuestPhysAddr> {
        walk(self.state.csr.satp, vaddr.raw(), |a| {
            read_pte(GuestPhysAddr(a)).ok_or(())
        })
        .ok()
        .flatten()
        .map(|leaf| GuestPhysAddr(leaf.paddr))
    }

    /// Reads a PTE (an implicit S-mode access for PMP) for `access` to
    /// `vaddr`: an access fault if PMP or the bus refuse it, `Deferred` if
    /// the bus refuses the page for now (CREW recording).
    fn read_pte<B: Bus>(
        &mut self,
        bus: &mut B,
        pte_addr: u64,
        access: Access,
        vaddr: u64,
    ) -> Result<u64, ExecError> {
        let page = pte_addr >> 12;
        let host_page = match self.tlb.table_page(page) {
            Some(host_page) => host_page,
            None => {
                if !self
                    .pmp
                    .check(pte_addr, 8, PmpAccess::Read, Privilege::Supervisor)
                {
                    return Err(access.access_fault(vaddr).into());
                }
                let grant = Self::pte_page(bus, pte_addr, AccessKind::Read, access, vaddr)?;
                if let Some(from) = grant.moved_from() {
                    self.tlb.evict_host_page(from.as_ptr().expose_provenance());
                }
                let host_page = grant.host().as_ptr().expose_provenance();
                // Walks read the next PTEs here without the bus (or PMP)
                // if PMP allows reading the whole page.
                if self
                    .pmp
                    .check(page << 12, 4096, PmpAccess::Read, Privilege::Supervisor)
                {
                    self.tlb.note_table_page(page, host_page);
                }
                host_page
            }
        };
        // SAFETY: a RAM page granted for reading, freshly or since the TLB
        // was last emptied (and not moved since: `evict_host_page`);
        // pte_addr is 8-aligned (table base is page-aligned, index * 8).
        Ok(unsafe { host_read(host_page + (pte_addr & 0xfff) as usize, 8) })
    }

    /// The page holding a PTE, from the bus: a page it refuses for now
    /// defers the instruction (no effect yet), any other refusal is an
    /// access fault.
    fn pte_page<B: Bus>(
        bus: &mut B,
        pte_addr: u64,
        kind: AccessKind,
        access: Access,
        vaddr: u64,
    ) -> Result<PageGrant, ExecError> {
        match bus.ram_page(GuestPhysPage::containing(GuestPhysAddr(pte_addr)), kind) {
            Some(grant) => Ok(grant),
            None if bus.ram_refused() => Err(ExecError::Deferred),
            None => Err(access.access_fault(vaddr).into()),
        }
    }

    /// Sets A/D in a PTE with a compare-exchange on the PTE word, for
    /// `access` to `vaddr` (errors as [`Hart::read_pte`]); `false` if the
    /// PTE changed under us (re-walk).
    fn update_pte<B: Bus>(
        &mut self,
        bus: &mut B,
        pte_addr: u64,
        (old, new): (u64, u64),
        access: Access,
        vaddr: u64,
    ) -> Result<bool, ExecError> {
        if !self
            .pmp
            .check(pte_addr, 8, PmpAccess::Write, Privilege::Supervisor)
        {
            return Err(access.access_fault(vaddr).into());
        }
        let grant = Self::pte_page(bus, pte_addr, AccessKind::Write, access, vaddr)?;
        if let Some(from) = grant.moved_from() {
            self.tlb.evict_host_page(from.as_ptr().expose_provenance());
        }
        let host = grant.host().as_ptr().expose_provenance() + (pte_addr & 0xfff) as usize;
        let p = std::ptr::with_exposed_provenance_mut::<u64>(host);
        // SAFETY: freshly granted (for Write) RAM page, 8-aligned address;
        // concurrent accesses to guest RAM are all atomic.
        let word = unsafe { AtomicU64::from_ptr(p) };
        Ok(word
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok())
    }

    /// Fetches the 16-bit parcel at `vaddr`; the flag says whether it came
    /// from RAM (and so may be cached decoded).
    pub(crate) fn fetch_parcel<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
    ) -> Result<(u16, bool), ExecError> {
        if let Some(host) = crate::tlb::Tlb::lookup(self.tlb.exec(), vaddr) {
            // SAFETY: exec-TLB hit: a live grant; pc is 2-aligned.
            return Ok((unsafe { host_read(host, 2) } as u16, true));
        }
        match self
            .access_slow(bus, vaddr, 2, Access::Fetch, Atomicity::Plain)?
            .0
        {
            // SAFETY: freshly granted page; 2-aligned.
            Target::Ram(host) => Ok((unsafe { host_read(host, 2) } as u16, true)),
            Target::Mmio(paddr) => {
                let v = bus
                    .mmio_read(GuestPhysAddr(paddr), 2)
                    .map_err(|e| mmio_error(e, Exception::InstructionAccessFault(vaddr)))?;
                Ok((v as u16, false))
            }
        }
    }

    /// Splits `[vaddr, vaddr + size)` at a page boundary.
    fn pieces(vaddr: u64, size: u8) -> [(u64, u64); 2] {
        let size = u64::from(size);
        let first = size.min(4096 - (vaddr & 0xfff));
        [(vaddr, first), (vaddr.wrapping_add(first), size - first)]
    }

    /// Load slow path: TLB miss, misaligned, or MMIO.
    #[inline(never)]
    pub(crate) fn load_slow<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
    ) -> Result<u64, ExecError> {
        if vaddr & (u64::from(size) - 1) == 0 {
            return match self
                .access_slow(bus, vaddr, u64::from(size), Access::Load, Atomicity::Plain)?
                .0
            {
                // SAFETY: freshly granted page, aligned access.
                Target::Ram(host) => Ok(unsafe { host_read(host, size) }),
                // Devices may return junk above the access width: zero it, as
                // the callers sign- or zero-extend from `size` bytes.
                Target::Mmio(paddr) => bus
                    .mmio_read(GuestPhysAddr(paddr), size)
                    .map(|v| v & width_mask(size))
                    .map_err(|e| mmio_error(e, Exception::LoadAccessFault(vaddr))),
            };
        }
        // Misaligned: allowed on RAM, byte by byte; both pages translated first.
        let mut hosts = [(0usize, 0u64); 2];
        for (slot, (addr, len)) in hosts.iter_mut().zip(Self::pieces(vaddr, size)) {
            if len == 0 {
                continue;
            }
            match self
                .access_slow(bus, addr, len, Access::Load, Atomicity::Plain)?
                .0
            {
                Target::Ram(host) => *slot = (host, len),
                Target::Mmio(_) => return Err(Exception::LoadAccessFault(addr).into()),
            }
        }
        let mut value = 0u64;
        let mut shift = 0;
        for (host, len) in hosts {
            for k in 0..len as usize {
                // SAFETY: each byte lies in a page just granted; bytes need
                // no alignment.
                let byte = unsafe { host_read(host + k, 1) };
                value |= byte << shift;
                shift += 8;
            }
        }
        Ok(value)
    }

    /// Store slow path: TLB miss, misaligned, or MMIO.
    #[inline(never)]
    pub(crate) fn store_slow<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
        value: u64,
    ) -> Result<(), ExecError> {
        if vaddr & (u64::from(size) - 1) == 0 {
            return match self
                .access_slow(bus, vaddr, u64::from(size), Access::Store, Atomicity::Plain)?
                .0
            {
                Target::Ram(host) => {
                    // SAFETY: freshly granted for Write, aligned access.
                    unsafe { host_write(host, size, value) };
                    Ok(())
                }
                Target::Mmio(paddr) => bus
                    .mmio_write(GuestPhysAddr(paddr), size, value & width_mask(size))
                    .map_err(|e| mmio_error(e, Exception::StoreAccessFault(vaddr))),
            };
        }
        // Misaligned: translate every piece before writing anything, so a
        // fault on the second page leaves memory untouched.
        let mut hosts = [(0usize, 0u64); 2];
        for (slot, (addr, len)) in hosts.iter_mut().zip(Self::pieces(vaddr, size)) {
            if len == 0 {
                continue;
            }
            match self
                .access_slow(bus, addr, len, Access::Store, Atomicity::Plain)?
                .0
            {
                Target::Ram(host) => *slot = (host, len),
                Target::Mmio(_) => return Err(Exception::StoreAccessFault(addr).into()),
            }
        }
        let mut shift = 0;
        for (host, len) in hosts {
            for k in 0..len as usize {
                // SAFETY: each byte lies in a page just granted for Write.
                unsafe { host_write(host + k, 1, value >> shift) };
                shift += 8;
            }
        }
        Ok(())
    }
}
