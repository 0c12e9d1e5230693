//! Side-effect-free reads (`Hart::peek_translate`, `Hart::peek_csr`) and
//! the watch hooks of the TLB slow path (`Bus::watched_page`,
//! `Bus::check_access`, `StopReason::Watch`).

mod common;

use common::asm::*;
use common::prog::Prog;
use common::pte::*;
use common::{PageTable, RAM_BASE, TestBus};
use samsara_cpu::bus::AccessKind;
use samsara_cpu::{Hart, Privilege, StopReason};
use samsara_types::{GuestPhysAddr, GuestVirtAddr, HartId};

const PT_AREA: u64 = RAM_BASE + 0x10_0000;
const PA_DATA: u64 = RAM_BASE + 0x20_0000;
const VA: u64 = 0x4000_0000;
/// A data page for the Bare tests (beyond the program and its records).
const DATA: u64 = RAM_BASE + 0x5_0000;

fn peek(hart: &Hart, bus: &TestBus, va: u64) -> Option<u64> {
    hart.peek_translate(GuestVirtAddr(va), |pa| {
        (pa.0 >= RAM_BASE && pa.0 + 8 <= RAM_BASE + bus.size).then(|| bus.read_u64(pa.0))
    })
    .map(|pa| pa.0)
}

fn with_satp(hart: &mut Hart, satp: u64) {
    let mut s = hart.snapshot();
    s.csr.satp = satp;
    hart.restore(&s);
}

#[test]
fn peek_translate_walks_sv39_and_sv48_without_side_effects() {
    for levels in [3, 4] {
        peek_translate_case(levels);
    }
}

fn peek_translate_case(levels: u32) {
    let mut bus = TestBus::new(4 << 20);
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(RAM_BASE));
    // Bare: identity, whatever the address.
    assert_eq!(peek(&hart, &bus, 0x1234_5678), Some(0x1234_5678));

    let mut pt = PageTable::new(levels, PT_AREA);
    // No A/D, no R/W/X beyond what makes a leaf, U set: all ignored.
    let leaf = pt.map(&mut bus, VA, PA_DATA, 0, V | R | U);
    let mega = pt.map(&mut bus, VA + 0x20_0000, PA_DATA, 1, V | X);
    // A misaligned megapage, an invalid PTE, a reserved W-without-R leaf,
    // a leaf with reserved high bits.
    pt.map(&mut bus, VA + 0x40_0000, PA_DATA + 0x1000, 1, V | R);
    pt.map(&mut bus, VA + 0x1000, PA_DATA, 0, R | W);
    pt.map(&mut bus, VA + 0x2000, PA_DATA, 0, V | W);
    let high = pt.map(&mut bus, VA + 0x3000, PA_DATA, 0, V | R);
    bus.write_u64(high, bus.read_u64(high) | (1 << 60));
    with_satp(&mut hart, pt.satp());
    let before = bus.read_bytes(PT_AREA, 0x5000);
    bus.grants.clear();

    // The hart is in M-mode: peek follows satp anyway.
    assert_eq!(hart.privilege(), Privilege::Machine);
    assert_eq!(peek(&hart, &bus, VA + 0x123), Some(PA_DATA + 0x123));
    assert_eq!(
        peek(&hart, &bus, VA + 0x20_0000 + 0x1_2345),
        Some(PA_DATA + 0x1_2345)
    );
    assert_eq!(
        peek(&hart, &bus, VA + 0x40_0000),
        None,
        "misaligned megapage"
    );
    assert_eq!(peek(&hart, &bus, VA + 0x1000), None, "invalid PTE");
    assert_eq!(peek(&hart, &bus, VA + 0x2000), None, "W without R");
    assert_eq!(peek(&hart, &bus, VA + 0x3000), None, "reserved bits");
    assert_eq!(peek(&hart, &bus, VA + 0x60_0000), None, "unmapped");
    let beyond = 1u64 << (12 + 9 * levels);
    assert_eq!(peek(&hart, &bus, beyond), None, "not canonical");
    // A PTE the reader cannot read: not mapped.
    assert_eq!(hart.peek_translate(GuestVirtAddr(VA), |_| None), None);

    // Nothing changed: no A/D bits, no bus call.
    assert_eq!(bus.read_bytes(PT_AREA, 0x5000), before);
    assert_eq!(bus.read_u64(leaf) & (A | D), 0);
    assert_eq!(bus.read_u64(mega) & (A | D), 0);
    assert!(bus.grants.is_empty());
}

#[test]
fn peek_csr_reads_without_checks() {
    let mut hart = Hart::new(HartId(3), GuestVirtAddr(RAM_BASE));
    let mut s = hart.snapshot();
    s.privilege = Privilege::User;
    s.csr.satp = 8 << 60 | 0x1234;
    s.csr.mscratch = 77;
    hart.restore(&s);
    assert_eq!(hart.peek_csr(0xf14), Some(3), "mhartid from U-mode");
    assert_eq!(hart.peek_csr(0x180), Some(8 << 60 | 0x1234));
    assert_eq!(hart.peek_csr(0x340), Some(77));
    assert_eq!(hart.peek_csr(0x001), Some(0), "fflags with FS off");
    assert_eq!(hart.peek_csr(0xc01), None, "time needs the bus");
    assert_eq!(hart.peek_csr(0x3a1), None, "odd pmpcfg on RV64");
    assert_eq!(hart.peek_csr(0x7c0), None);
    let csrs: Vec<u16> = Hart::implemented_csrs().collect();
    for csr in [
        0x001, 0x100, 0x180, 0x300, 0x301, 0x3a0, 0x3ef, 0xc01, 0xf14,
    ] {
        assert!(csrs.contains(&csr), "{csr:#x}");
    }
    assert!(!csrs.contains(&0x3a1) && !csrs.contains(&0x7c0));
    assert!(csrs.windows(2).all(|w| w[0] < w[1]));
    for &csr in &csrs {
        assert!(csr == 0xc01 || hart.peek_csr(csr).is_some(), "{csr:#x}");
    }
}

/// A program at `RAM_BASE` (M-mode, Bare) with `s0 = DATA`, `t0 = 0x1234`.
fn data_prog(body: impl FnOnce(&mut Asm)) -> (Prog, common::Vm) {
    let prog = Prog::new(|a| {
        a.li(S0, DATA).li(T0, 0x1234);
        body(a);
    });
    let vm = prog.vm(Privilege::Machine);
    (prog, vm)
}

/// Runs until the next stop; asserts it is a watch hit.
fn to_hit(vm: &mut common::Vm) {
    assert_eq!(vm.hart.run(&mut vm.bus, 1000), StopReason::Watch);
}

/// Executes the instruction stopped at, unchecked (as a debugger resumes).
fn step_over(vm: &mut common::Vm) {
    vm.bus.watch_off = true;
    assert_eq!(vm.hart.run(&mut vm.bus, 1), StopReason::StepLimit);
    vm.bus.watch_off = false;
}

#[test]
fn a_watched_store_stops_before_it_happens_every_time() {
    let (prog, mut vm) = data_prog(|a| {
        a.w(sd(T0, S0, 8)) // same page, not watched
            .w(ld(A0, S0, 0)) // a read: not a write watch's business
            .label("first")
            .w(sd(T0, S0, 0))
            .w(addi(T0, T0, 1))
            .label("second")
            .w(sw(T0, S0, 4));
    });
    vm.bus.watches.push((DATA, 8, AccessKind::Write));
    to_hit(&mut vm);
    assert_eq!(vm.hart.pc().raw(), prog.addr("first"));
    let steps = vm.hart.steps();
    assert_eq!(vm.bus.read_u64(DATA), 0, "the store did not happen");
    assert_eq!(vm.bus.read_u64(DATA + 8), 0x1234, "the neighbour did");
    assert_eq!(vm.bus.hits, vec![(DATA, DATA, 8, AccessKind::Write)]);
    // The neighbour and the load took the slow path (the page is never
    // cached) and were checked, not reported.
    assert!(vm.bus.checked.contains(&(DATA + 8, 8, AccessKind::Write)));
    assert!(vm.bus.checked.contains(&(DATA, 8, AccessKind::Read)));
    // Stopping again changes nothing.
    to_hit(&mut vm);
    assert_eq!(
        (vm.hart.pc().raw(), vm.hart.steps()),
        (prog.addr("first"), steps)
    );
    step_over(&mut vm);
    assert_eq!(vm.bus.read_u64(DATA), 0x1234);
    // The page is still watched after the store went through.
    to_hit(&mut vm);
    assert_eq!(vm.hart.pc().raw(), prog.addr("second"));
    assert_eq!(vm.bus.hits.len(), 3);
    assert_eq!(vm.bus.hits[2], (DATA + 4, DATA + 4, 4, AccessKind::Write));
    step_over(&mut vm);
    assert_eq!(vm.bus.read_u32(DATA + 4), 0x1235);
    assert_eq!(prog.go(&mut vm), common::prog::End::Halt);
}

#[test]
fn read_watches_see_loads_lr_and_amos_only() {
    let (prog, mut vm) = data_prog(|a| {
        a.w(sw(T0, S0, 4)) // a store to the watched bytes: not reported
            .w(lw(A0, S0, 2)) // overlaps the watched bytes
            .w(lr_w(A1, S0))
            .w(amo(0x00, true, A2, S0, T0)) // amoadd.w: reads and writes
            .w(lb(A3, S0, 8)); // unwatched byte of the page
    });
    vm.bus.watches.push((DATA + 4, 4, AccessKind::Read));
    to_hit(&mut vm);
    assert_eq!(vm.bus.read_u32(DATA + 4), 0x1234, "the store went through");
    assert_eq!(vm.bus.hits, vec![(DATA + 2, DATA + 2, 4, AccessKind::Read)]);
    step_over(&mut vm);
    assert_eq!(vm.x(A0), 0x1234_0000);
    // lr.w at DATA reads DATA..DATA+4: not overlapping.
    vm.bus.watches[0] = (DATA, 1, AccessKind::Read);
    to_hit(&mut vm);
    assert_eq!(vm.bus.hits[1], (DATA, DATA, 4, AccessKind::Read));
    step_over(&mut vm);
    to_hit(&mut vm);
    assert_eq!(vm.bus.hits[2], (DATA, DATA, 4, AccessKind::Read), "the AMO");
    assert_eq!(vm.bus.read_u32(DATA), 0, "the AMO did not happen");
    step_over(&mut vm);
    assert_eq!(vm.bus.read_u32(DATA), 0x1234);
    assert_eq!(prog.go(&mut vm), common::prog::End::Halt);
    assert_eq!(vm.bus.hits.len(), 3);
}

#[test]
fn a_watched_sc_keeps_its_reservation() {
    let (prog, mut vm) = data_prog(|a| {
        a.w(lr_d(A0, S0)).w(sc_d(A1, S0, T0));
    });
    vm.bus.watches.push((DATA, 8, AccessKind::Write));
    to_hit(&mut vm);
    assert_eq!(vm.bus.hits, vec![(DATA, DATA, 8, AccessKind::Write)]);
    assert!(vm.hart.state().reservation.is_some());
    step_over(&mut vm);
    assert_eq!(vm.x(A1), 0, "the SC succeeded");
    assert_eq!(vm.bus.read_u64(DATA), 0x1234);
    assert_eq!(prog.go(&mut vm), common::prog::End::Halt);
}

#[test]
fn a_page_crossing_access_is_checked_whole_before_either_piece() {
    for (watch, first_piece) in [(DATA + 0x1000, false), (DATA + 0xffe, true)] {
        let (prog, mut vm) = data_prog(|a| {
            a.li(S1, DATA + 0xffc).w(sd(T0, S1, 0)).w(ld(A0, S1, 0));
        });
        vm.bus.watches.push((watch, 1, AccessKind::Write));
        to_hit(&mut vm);
        let (addr, len) = if first_piece {
            (DATA + 0xffc, 4)
        } else {
            (DATA + 0x1000, 4)
        };
        assert_eq!(vm.bus.hits, vec![(addr, addr, len, AccessKind::Write)]);
        assert_eq!(vm.bus.read_u64(DATA + 0xffc), 0, "neither piece written");
        step_over(&mut vm);
        assert_eq!(vm.bus.read_u64(DATA + 0xffc), 0x1234);
        assert_eq!(prog.go(&mut vm), common::prog::End::Halt);
        assert_eq!(vm.x(A0), 0x1234);
    }
}

#[test]
fn watches_are_on_virtual_addresses() {
    let prog = Prog::new(|a| {
        a.li(S0, VA + 0x10)
            .li(T0, 7)
            .w(sd(T0, S0, 0))
            .w(sd(T0, S0, 8));
    });
    let mut vm = prog.vm(Privilege::Supervisor);
    let mut pt = PageTable::new(3, PT_AREA);
    pt.map(&mut vm.bus, RAM_BASE, RAM_BASE, 2, V | R | W | X | A | D);
    pt.map(&mut vm.bus, VA, PA_DATA, 0, V | R | W);
    let satp = pt.satp();
    vm.edit(|s| s.csr.satp = satp);
    // The physical address of the data: not watched as such.
    vm.bus.watches.push((PA_DATA + 0x10, 8, AccessKind::Write));
    vm.bus.watches.push((VA + 0x18, 8, AccessKind::Write));
    to_hit(&mut vm);
    assert_eq!(
        vm.bus.hits,
        vec![(VA + 0x18, PA_DATA + 0x18, 8, AccessKind::Write)]
    );
    assert_eq!(vm.bus.read_u64(PA_DATA + 0x10), 7);
    assert_eq!(vm.bus.read_u64(PA_DATA + 0x18), 0);
    step_over(&mut vm);
    assert_eq!(prog.go(&mut vm), common::prog::End::Halt);
    assert_eq!(vm.bus.read_u64(PA_DATA + 0x18), 7);
    assert_eq!(
        peek(&vm.hart, &vm.bus, VA + 0x18).map(GuestPhysAddr),
        Some(GuestPhysAddr(PA_DATA + 0x18))
    );
}

#[test]
fn a_breakpoint_stops_before_the_instruction_every_time_and_costs_the_others_nothing() {
    let (prog, mut vm) = data_prog(|a| {
        a.label("loop")
            .w(addi(T0, T0, 1))
            .label("bp")
            .w(sd(T0, S0, 0))
            .w(jal(0, -8));
    });
    let bp = prog.addr("bp");
    vm.bus.breakpoints.push(bp);
    assert_eq!(vm.hart.run(&mut vm.bus, 1000), StopReason::Breakpoint);
    assert_eq!(vm.hart.pc().raw(), bp);
    let steps = vm.hart.steps();
    assert_eq!(vm.bus.read_u64(DATA), 0, "the store did not happen");
    // Stopping again changes nothing.
    assert_eq!(vm.hart.run(&mut vm.bus, 1000), StopReason::Breakpoint);
    assert_eq!((vm.hart.pc().raw(), vm.hart.steps()), (bp, steps));
    // Passing it once executes it, and the next round stops again.
    vm.bus.pass_breakpoint = Some(bp);
    assert_eq!(vm.hart.run(&mut vm.bus, 1), StopReason::StepLimit);
    vm.bus.pass_breakpoint = None;
    assert_eq!(vm.bus.read_u64(DATA), 0x1235);
    assert_eq!(vm.hart.run(&mut vm.bus, 1000), StopReason::Breakpoint);
    assert_eq!(vm.hart.steps().0, steps.0 + 3);
    // Around once more: only the breakpoint's instruction is decoded
    // again, the others stay in the decode cache.
    vm.bus.breakpoint_checks.clear();
    vm.bus.pass_breakpoint = Some(bp);
    assert_eq!(vm.hart.run(&mut vm.bus, 1), StopReason::StepLimit);
    vm.bus.pass_breakpoint = None;
    assert_eq!(vm.hart.run(&mut vm.bus, 1000), StopReason::Breakpoint);
    assert_eq!(vm.hart.steps().0, steps.0 + 6);
    assert_eq!(vm.bus.breakpoint_checks, vec![bp, bp]);
}
