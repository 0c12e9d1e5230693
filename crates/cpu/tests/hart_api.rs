//! The hart's outer interface: fetch from devices (never cached), code
//! modification with fence.i and `flush_decode_cache`, snapshot/restore,
//! the state digest, and the bus calls the recorder relies on.

mod common;

use common::asm::*;
use common::{MMIO_BASE, RAM_BASE, Vm};
use samsara_cpu::bus::AccessKind;
use samsara_cpu::{Hart, HartState, StopReason};
use samsara_types::{GuestVirtAddr, HartId};

const RAM: u64 = 64 << 10;

#[test]
fn fetch_from_a_device_is_never_cached_and_can_be_deferred() {
    let mut a = Asm::new(RAM_BASE);
    a.li(T0, MMIO_BASE).w(jalr(ZERO, T0, 0));
    let mut vm = Vm::with_ram(&a, RAM);
    vm.bus.mmio_value = 0x0505; // every parcel reads as c.addi a0,1
    vm.run_to(MMIO_BASE, 10);
    for _ in 0..10 {
        vm.hart.run(&mut vm.bus, 1);
    }
    assert_eq!(vm.x(A0), 10);
    assert_eq!(vm.hart.pc().raw(), MMIO_BASE + 20);
    let want: Vec<(u64, u8)> = (0..10).map(|k| (MMIO_BASE + 2 * k, 2)).collect();
    assert_eq!(
        vm.bus.mmio_reads, want,
        "one device read per executed parcel"
    );
    // A deferred fetch: no step, no effect, pc unchanged.
    vm.bus.defer = true;
    let steps = vm.hart.steps();
    assert_eq!(vm.hart.run(&mut vm.bus, 5), StopReason::DeviceAccess);
    assert_eq!(
        (vm.hart.steps(), vm.hart.pc().raw(), vm.x(A0)),
        (steps, MMIO_BASE + 20, 10)
    );
    // A 32-bit instruction is two device reads.
    vm.bus.defer = false;
    vm.bus.mmio_value = 0x0513; // parcels 0x0513, 0x0513: a 32-bit addi
    vm.bus.mmio_reads.clear();
    vm.hart.run(&mut vm.bus, 1);
    assert_eq!(
        vm.bus.mmio_reads,
        [(MMIO_BASE + 20, 2), (MMIO_BASE + 22, 2)]
    );
    assert_eq!(vm.hart.pc().raw(), MMIO_BASE + 24);
}

#[test]
fn fence_i_makes_stores_to_code_visible() {
    let mut a = Asm::new(RAM_BASE);
    a.la(T0, "target")
        .li(T1, u64::from(addi(A0, A0, 7)))
        .li(S0, 2);
    a.label("loop");
    a.label("target").w(addi(A0, A0, 1));
    a.w(sw(T1, T0, 0)).w(FENCE_I);
    a.w(addi(S0, S0, -1)).bne(S0, ZERO, "loop");
    a.halt("halt");
    let mut vm = Vm::with_ram(&a, RAM);
    vm.run_to(a.addr("halt"), 100);
    assert_eq!(vm.x(A0), 1 + 7);
}

#[test]
fn flush_decode_cache_picks_up_code_written_from_outside() {
    let mut a = Asm::new(RAM_BASE);
    a.label("top").w(addi(A0, A0, 1)).j("top");
    let mut vm = Vm::with_ram(&a, RAM);
    vm.hart.run(&mut vm.bus, 4);
    assert_eq!(vm.x(A0), 2);
    // "DMA" rewrites the loop body.
    vm.bus.write_u32(RAM_BASE, addi(A0, A0, 100));
    vm.hart.flush_decode_cache();
    vm.hart.run(&mut vm.bus, 2);
    assert_eq!(vm.x(A0), 102);
}

#[test]
fn snapshot_restore_and_digest() {
    let mut a = Asm::new(RAM_BASE);
    a.li(A0, 0).li(A1, 0);
    a.label("loop")
        .w(addi(A0, A0, 3))
        .w(add(A1, A1, A0))
        .j("loop");
    let mut vm = Vm::with_ram(&a, RAM);
    vm.hart.run(&mut vm.bus, 50);
    let mid = vm.hart.snapshot();
    let mid_digest = vm.hart.digest();
    assert_eq!(mid.digest(), mid_digest);
    vm.hart.run(&mut vm.bus, 50);
    let end = vm.hart.snapshot();
    assert_ne!(vm.hart.digest(), mid_digest);
    // Back to the middle and forward again: the same end state.
    vm.hart.restore(&mid);
    assert_eq!(vm.hart.digest(), mid_digest);
    vm.hart.run(&mut vm.bus, 50);
    assert_eq!(vm.hart.snapshot(), end);
    // A single bit anywhere changes the digest.
    let mut other = end.clone();
    other.f[31] ^= 1;
    assert_ne!(other.digest(), end.digest());
    let mut other = end.clone();
    other.csr.pmpaddr[15] ^= 1 << 40;
    assert_ne!(other.digest(), end.digest());
    // The digest algorithm is fixed: the reset state of hart 3 at RAM_BASE.
    let reset = HartState::reset(3, RAM_BASE);
    assert_eq!(reset.digest(), reset.clone().digest());
    assert_eq!(reset.digest(), RESET_DIGEST, "{:#018x}", reset.digest());
}

/// `HartState::reset(3, 0x8000_0000).digest()` (FNV-1a over the fields).
const RESET_DIGEST: u64 = 0xd485_66f5_d74b_5145;

#[test]
fn accessors() {
    let mut h = Hart::new(HartId(7), GuestVirtAddr(0x1234));
    assert_eq!(
        (h.pc().raw(), h.hart_id(), h.steps().0, h.retired()),
        (0x1234, HartId(7), 0, 0)
    );
    h.set_xreg(0, 5);
    h.set_xreg(33, 6); // register numbers wrap at 32
    assert_eq!((h.xreg(0), h.xreg(1)), (0, 6));
    h.set_freg(31, 0xffff_ffff_3f80_0000);
    assert_eq!(h.freg(31), 0xffff_ffff_3f80_0000);
    assert_eq!(h.state().hart_id, 7);
}

#[test]
fn ram_pages_are_requested_once_per_kind_until_flushed() {
    // The recorder learns read/write sets from ram_page calls: a hart asks
    // once per page and kind, again only after a TLB flush.
    let data = RAM_BASE + 0x8000;
    let mut a = Asm::new(RAM_BASE);
    a.li(S0, data);
    a.label("loop");
    a.w(ld(A0, S0, 0))
        .w(sd(A0, S0, 8))
        .w(ld(A1, S0, 16))
        .j("loop");
    let mut vm = Vm::with_ram(&a, RAM);
    vm.hart.run(&mut vm.bus, 100);
    let page = data >> 12;
    let code = RAM_BASE >> 12;
    assert_eq!(
        vm.bus.grants,
        [
            (code, AccessKind::Execute),
            (page, AccessKind::Read),
            (page, AccessKind::Write)
        ]
    );
    vm.bus.grants.clear();
    vm.hart.flush_tlb();
    vm.hart.run(&mut vm.bus, 8);
    assert_eq!(vm.bus.grants.len(), 3, "{:?}", vm.bus.grants);
    // An LR reservation keeps its page out of the write TLB, so every
    // store there asks again (and ends the reservation if it overlaps).
    let mut a = Asm::new(RAM_BASE);
    a.li(S0, data).w(lr_d(A0, S0));
    a.label("loop").w(sd(A0, S0, 8)).j("loop");
    let mut vm = Vm::with_ram(&a, RAM);
    vm.hart.run(&mut vm.bus, 4 + 36); // li (3), lr, then 18 x (sd, j)
    let writes = vm
        .bus
        .grants
        .iter()
        .filter(|g| g.1 == AccessKind::Write)
        .count();
    assert_eq!(writes, 18);
    vm.hart.clear_reservation();
    assert_eq!(vm.hart.state().reservation, None);
}
