//! Loads and stores: the TLB fast path (one compare, one add, one relaxed
//! atomic access) in front of the slow path in `mmu`.

use crate::bus::Bus;
use crate::hart::{ExecError, Hart};
use crate::mmu::{host_read, host_write};
use crate::tlb::Tlb;

impl Hart {
    /// Loads `size` bytes (zero-extended) from virtual address `vaddr`.
    #[inline(always)]
    pub(crate) fn load<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
    ) -> Result<u64, ExecError> {
        if vaddr & (u64::from(size) - 1) == 0
            && let Some(host) = Tlb::lookup(self.tlb.read(), vaddr)
        {
            // SAFETY: a read-TLB hit is a live grant for this page; the
            // access is aligned and stays inside the page.
            return Ok(unsafe { host_read(host, size) });
        }
        self.load_slow(bus, vaddr, size)
    }

    /// Stores the low `size` bytes of `value` at virtual address `vaddr`.
    #[inline(always)]
    pub(crate) fn store<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
        value: u64,
    ) -> Result<(), ExecError> {
        if vaddr & (u64::from(size) - 1) == 0
            && let Some(host) = Tlb::lookup(self.tlb.write(), vaddr)
        {
            // SAFETY: a write-TLB hit is a live grant for `AccessKind::Write`;
            // the access is aligned and stays inside the page.
            unsafe { host_write(host, size, value) };
            return Ok(());
        }
        self.store_slow(bus, vaddr, size, value)
    }
}
