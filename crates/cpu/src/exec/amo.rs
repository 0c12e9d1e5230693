//! The A extension: LR/SC and AMOs on host atomics, so that on shared RAM
//! guest atomics are atomic across host threads.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

use samsara_isa::{Inst, Op};

use crate::bus::{Atomicity, Bus};
use crate::exec::int::sext32;
use crate::hart::{ExecError, Hart};
use crate::mmu::{Access, Target, host_read};
use crate::state::Reservation;
use crate::tlb::Tlb;
use crate::trap::Exception;

const SC: Ordering = Ordering::SeqCst;

impl Hart {
    /// Host address for an AMO/SC at `vaddr` (aligned, RAM, writable),
    /// with its physical address when known.
    fn amo_target<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
        need_paddr: bool,
    ) -> Result<(usize, u64), ExecError> {
        if vaddr & (u64::from(size) - 1) != 0 {
            return Err(Exception::StoreMisaligned(vaddr).into());
        }
        if !need_paddr && let Some(host) = Tlb::lookup(self.tlb.write(), vaddr) {
            return Ok((host, 0));
        }
        // An AMO (no physical address wanted) reads and writes; SC writes.
        let atomic = if need_paddr {
            Atomicity::StoreConditional
        } else {
            Atomicity::Amo
        };
        match self.access_slow(bus, vaddr, u64::from(size), Access::Store, atomic)? {
            (Target::Ram(host), paddr) => Ok((host, paddr)),
            // Atomics on devices are not supported: store/AMO access fault.
            (Target::Mmio(_), _) => Err(Exception::StoreAccessFault(vaddr).into()),
        }
    }

    /// lr.w / lr.d.
    pub(crate) fn exec_lr<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<u64, ExecError> {
        let size: u8 = if i.op == Op::LrW { 4 } else { 8 };
        let vaddr = self.state.x[usize::from(i.rs1 & 31)];
        if vaddr & (u64::from(size) - 1) != 0 {
            return Err(Exception::LoadMisaligned(vaddr).into());
        }
        let (host, paddr) = match self.access_slow(
            bus,
            vaddr,
            u64::from(size),
            Access::Load,
            Atomicity::LoadReserved,
        )? {
            (Target::Ram(host), paddr) => (host, paddr),
            (Target::Mmio(_), _) => return Err(Exception::LoadAccessFault(vaddr).into()),
        };
        // SAFETY: freshly granted RAM page, aligned.
        let value = unsafe { host_read(host, size) };
        std::sync::atomic::fence(SC);
        self.state.reservation = Some(Reservation { paddr, size, value });
        // Keep the reserved page out of the write TLB so this hart's own
        // stores to it take the slow path, which ends the reservation.
        // (Host pages need not be 4 KiB-aligned in host memory: subtract
        // the page offset rather than masking.)
        self.tlb
            .evict_write_host_page(host - (paddr & 0xfff) as usize);
        Ok(if size == 4 { sext32(value) } else { value })
    }

    /// sc.w / sc.d: returns 0 on success, 1 on failure.
    pub(crate) fn exec_sc<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<u64, ExecError> {
        let size: u8 = if i.op == Op::ScW { 4 } else { 8 };
        let vaddr = self.state.x[usize::from(i.rs1 & 31)];
        let new = self.state.x[usize::from(i.rs2 & 31)];
        // Permission checks happen (and may trap) whether or not SC succeeds;
        // the reservation is consumed either way.
        let reservation = self.state.reservation.take();
        let (host, paddr) = match self.amo_target(bus, vaddr, size, true) {
            Ok(target) => target,
            // Deferred by the bus or stopped by a watch: the instruction
            // has not happened, so it keeps its reservation for the retry.
            Err(e @ (ExecError::Deferred | ExecError::Watch)) => {
                self.state.reservation = reservation;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let Some(r) = reservation.filter(|r| r.paddr == paddr && r.size == size) else {
            return Ok(1);
        };
        let p = std::ptr::with_exposed_provenance_mut::<u8>(host);
        // SAFETY: `host` is an aligned address in a page just granted for
        // Write; all concurrent accesses to guest RAM are atomic.
        let ok = unsafe {
            if size == 4 {
                AtomicU32::from_ptr(p.cast())
                    .compare_exchange(r.value as u32, new as u32, SC, SC)
                    .is_ok()
            } else {
                AtomicU64::from_ptr(p.cast())
                    .compare_exchange(r.value, new, SC, SC)
                    .is_ok()
            }
        };
        Ok(u64::from(!ok))
    }

    /// amo*.w / amo*.d: returns the old memory value (sign-extended for .w).
    pub(crate) fn exec_amo<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<u64, ExecError> {
        let word = i.op.is_word_atomic();
        let size: u8 = if word { 4 } else { 8 };
        let vaddr = self.state.x[usize::from(i.rs1 & 31)];
        let src = self.state.x[usize::from(i.rs2 & 31)];
        let (host, _) = self.amo_target(bus, vaddr, size, false)?;
        let p = std::ptr::with_exposed_provenance_mut::<u8>(host);
        // SAFETY: `host` is an aligned address in a page granted for Write
        // (write-TLB hit or fresh grant); all concurrent RAM accesses are atomic.
        let old = unsafe {
            if word {
                let u = AtomicU32::from_ptr(p.cast());
                let s = AtomicI32::from_ptr(p.cast());
                let v = src as u32;
                let old = match i.op {
                    Op::AmoswapW => u.swap(v, SC),
                    Op::AmoaddW => u.fetch_add(v, SC),
                    Op::AmoxorW => u.fetch_xor(v, SC),
                    Op::AmoandW => u.fetch_and(v, SC),
                    Op::AmoorW => u.fetch_or(v, SC),
                    Op::AmominW => s.fetch_min(v as i32, SC) as u32,
                    Op::AmomaxW => s.fetch_max(v as i32, SC) as u32,
                    Op::AmominuW => u.fetch_min(v, SC),
                    _ => u.fetch_max(v, SC),
                };
                sext32(u64::from(old))
            } else {
                let u = AtomicU64::from_ptr(p.cast());
                let s = AtomicI64::from_ptr(p.cast());
                match i.op {
                    Op::AmoswapD => u.swap(src, SC),
                    Op::AmoaddD => u.fetch_add(src, SC),
                    Op::AmoxorD => u.fetch_xor(src, SC),
                    Op::AmoandD => u.fetch_and(src, SC),
                    Op::AmoorD => u.fetch_or(src, SC),
                    Op::AmominD => s.fetch_min(src as i64, SC) as u64,
                    Op::AmomaxD => s.fetch_max(src as i64, SC) as u64,
                    Op::AmominuD => u.fetch_min(src, SC),
                    _ => u.fetch_max(src, SC),
                }
            }
        };
        Ok(old)
    }
}
