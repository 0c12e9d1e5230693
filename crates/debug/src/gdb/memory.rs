//! Memory as gdb asks for it: through the selected hart's view.
//!
//! A hart in S- or U-mode translates through its `satp`. A hart in M-mode
//! fetches (and, without `mstatus.MPRV`, loads) *physical* addresses, so
//! its pc in OpenSBI (0x8001_e15c) means physical memory; but a kernel
//! debugger stopped on a hart that is inside an SBI call still wants the
//! kernel's variables. For an M-mode hart an address that is RAM is read
//! physically, and one that is not (a kernel virtual address such as
//! 0xffff_ffff_8114_9320 never is) through `satp`, as before.

use samsara_cpu::Privilege;
use samsara_engine::replay::ReplaySession;
use samsara_types::{GuestPhysAddr, GuestVirtAddr};

/// Reads `buf.len()` bytes at `addr` as hart `hart` sees them (see the
/// module's documentation); the bytes read, a prefix.
pub(crate) fn read_as_hart(
    session: &ReplaySession,
    hart: usize,
    addr: u64,
    buf: &mut [u8],
) -> usize {
    let machine = session
        .harts()
        .get(hart)
        .is_some_and(|h| h.state().privilege == Privilege::Machine);
    if machine {
        let n = session.read_phys(hart, GuestPhysAddr(addr), buf);
        if n > 0 {
            return n;
        }
    }
    session.read_virt(hart, GuestVirtAddr(addr), buf)
}
