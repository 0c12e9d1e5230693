//! Sv39 and Sv48 translation: page sizes, hardware A/D updates, every
//! page-fault cause, U/S permissions with SUM and MXR, MPRV, sfence.vma,
//! delegation of page faults, and faults on the walk itself.

mod common;

use common::asm::*;
use common::prog::{End, Prog, records};
use common::pte::*;
use common::{PageTable, RAM_BASE, TestBus, Vm};
use samsara_cpu::{HartState, Privilege, StopReason};
use samsara_types::GuestVirtAddr;

/// Page tables are allocated from here.
const PT_AREA: u64 = RAM_BASE + 0x10_0000;
/// Physical data pages (2 MiB-aligned, for megapages).
const PA_DATA: u64 = RAM_BASE + 0x20_0000;
/// Virtual base of the test mappings.
const VA: u64 = 0x4000_0000;
/// Where the code is also mapped with U set (a 1 GiB alias of RAM).
const U_ALIAS: u64 = 0xc000_0000;

const RW: u64 = V | R | W | A | D;
const RWX: u64 = V | R | W | X | A | D;

const SUM: u64 = 1 << 18;
const MXR: u64 = 1 << 19;
const MPRV: u64 = 1 << 17;

/// Page tables with the code identity-mapped (1 GiB, S-only) and aliased
/// for U at `U_ALIAS`.
fn tables(bus: &mut TestBus, levels: u32) -> PageTable {
    let mut pt = PageTable::new(levels, PT_AREA);
    pt.map(bus, RAM_BASE, RAM_BASE, 2, RWX);
    pt.map(bus, U_ALIAS, RAM_BASE, 2, RWX | U);
    pt
}

/// A Vm for `prog` in `p` with paging on (`levels`), built by `map`.
fn paged_vm(
    prog: &Prog,
    p: Privilege,
    levels: u32,
    map: impl FnOnce(&mut TestBus, &mut PageTable),
    state: impl FnOnce(&mut HartState),
) -> Vm {
    let mut vm = prog.vm(p);
    let mut pt = tables(&mut vm.bus, levels);
    map(&mut vm.bus, &mut pt);
    let satp = pt.satp();
    vm.edit(|s| {
        s.csr.satp = satp;
        state(s);
    });
    vm
}

/// The U-mode alias of a code label.
fn user(prog: &Prog, label: &str) -> u64 {
    prog.addr(label) - RAM_BASE + U_ALIAS
}

#[test]
fn translates_every_page_size_in_sv39_and_sv48() {
    for levels in [3, 4] {
        let prog = Prog::new(|a| {
            a.li(S0, VA + 0x120)
                .li(T0, 0x1111)
                .w(sd(T0, S0, 0))
                .w(ld(A0, S0, 0));
            a.li(S1, VA + 0x20_0000 + 0x1_2340) // megapage
                .li(T0, 0x2222)
                .w(sd(T0, S1, 0))
                .w(ld(A1, S1, 0));
            a.li(S2, 0x1_8000_0000 + 0x10_0008) // gigapage onto RAM
                .w(ld(A2, S2, 0));
            if levels == 4 {
                a.li(S3, 0x80_8000_0000 + 0x10_0008) // 512 GiB page
                    .w(ld(A3, S3, 0));
            }
        });
        let mut vm = paged_vm(
            &prog,
            Privilege::Supervisor,
            levels,
            |bus, pt| {
                pt.map(bus, VA, PA_DATA + 0x5000, 0, RW);
                pt.map(bus, VA + 0x20_0000, PA_DATA, 1, RW);
                pt.map(bus, 0x1_8000_0000, 0x8000_0000, 2, RW);
                if levels == 4 {
                    pt.map(bus, 0x80_0000_0000, 0, 3, RW);
                }
            },
            |_| {},
        );
        assert_eq!(prog.go(&mut vm), End::Halt, "levels {levels}");
        assert_eq!(vm.x(A0), 0x1111);
        assert_eq!(vm.bus.read_u64(PA_DATA + 0x5120), 0x1111);
        assert_eq!(vm.x(A1), 0x2222);
        assert_eq!(vm.bus.read_u64(PA_DATA + 0x1_2340), 0x2222);
        // Through the 1 GiB (and 512 GiB) pages: the root table's entry 1.
        let want = vm.bus.read_u64(RAM_BASE + 0x10_0008);
        assert_eq!(vm.x(A2), want);
        if levels == 4 {
            assert_eq!(vm.x(A3), want);
        }
    }
}

#[test]
fn hardware_sets_accessed_and_dirty() {
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0)); // page 0: A
        a.li(S1, VA + 0x1000).w(sd(ZERO, S1, 0)); // page 1: A and D
        a.li(S2, VA + 0x2000).w(amo(amo_op::ADD, false, A1, S2, S2)); // page 2: A and D
        a.li(S3, VA + 0x3000).w(jalr(RA, S3, 0)); // page 3: fetch sets A
        a.label("back");
    });
    let mut ptes = [0u64; 5];
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            for (k, pte) in ptes.iter_mut().take(4).enumerate() {
                let off = 0x1000 * k as u64;
                *pte = pt.map(bus, VA + off, PA_DATA + off, 0, V | R | W | X);
            }
            // page 4: already accessed, not dirty
            ptes[4] = pt.map(bus, VA + 0x4000, PA_DATA + 0x4000, 0, V | R | W | A);
            // page 3 holds `jalr zero, 0(ra)`
            bus.write_u32(PA_DATA + 0x3000, jalr(ZERO, RA, 0));
        },
        |_| {},
    );
    vm.run_to(prog.addr("back"), 100);
    let flags = |vm: &Vm, k: usize| vm.bus.read_u64(ptes[k]) & 0xff;
    assert_eq!(flags(&vm, 0), V | R | W | X | A);
    assert_eq!(flags(&vm, 1), V | R | W | X | A | D);
    assert_eq!(flags(&vm, 2), V | R | W | X | A | D);
    assert_eq!(flags(&vm, 3), V | R | W | X | A);
    // A store to an accessed, clean page sets D only.
    let prog2 = Prog::new(|a| {
        a.li(S0, VA + 0x4000).w(sw(ZERO, S0, 0));
    });
    let mut vm2 = paged_vm(
        &prog2,
        Privilege::Supervisor,
        4,
        |bus, pt| {
            ptes[4] = pt.map(bus, VA + 0x4000, PA_DATA + 0x4000, 0, V | R | W | A);
        },
        |_| {},
    );
    assert_eq!(prog2.go(&mut vm2), End::Halt);
    assert_eq!(vm2.bus.read_u64(ptes[4]) & 0xff, V | R | W | A | D);
    // The PPN is left alone.
    assert_eq!(vm2.bus.read_u64(ptes[4]) >> 10, (PA_DATA + 0x4000) >> 12);
}

/// A bus may refuse a page-table page for now (CREW recording): the walk
/// then defers the instruction — no step, no fault, no A/D bits — and runs
/// it in full once the page is granted.
#[test]
fn a_page_table_page_refused_for_now_defers_the_instruction() {
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(sd(ZERO, S0, 0));
        a.label("back");
    });
    let mut leaf = 0;
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| leaf = pt.map(bus, VA, PA_DATA, 0, V | R | W),
        |_| {},
    );
    let store = prog.addr("back") - 4;
    vm.run_to(store, 100);
    let steps = vm.hart.steps().0;
    // The leaf's page may be read but not written: setting A/D is refused.
    vm.bus.refuse = vec![(leaf >> 12, true)];
    assert_eq!(vm.hart.run(&mut vm.bus, 1), StopReason::DeviceAccess);
    assert_eq!((vm.hart.pc().raw(), vm.hart.steps().0), (store, steps));
    assert_eq!(
        vm.bus.read_u64(leaf) & (A | D),
        0,
        "no A/D behind a refusal"
    );
    // The root table page refused for any access: deferred as well. (A
    // bus that takes back a page it granted has the hart drop its grants
    // first, as the CREW recorder does: walks read table pages they were
    // granted since the TLB was emptied without asking again.)
    let root = vm.hart.state().csr.satp << 12;
    vm.bus.refuse = vec![(root >> 12, false)];
    vm.hart.flush_tlb();
    assert_eq!(vm.hart.run(&mut vm.bus, 1), StopReason::DeviceAccess);
    assert_eq!((vm.hart.pc().raw(), vm.hart.steps().0), (store, steps));
    vm.bus.refuse.clear();
    vm.run_to(prog.addr("back"), 10);
    assert_eq!(vm.bus.read_u64(leaf) & (A | D), A | D);
}

#[test]
fn page_fault_causes() {
    let va = |k: u64| VA + 0x1000 * k;
    let prog = Prog::new(|a| {
        a.li(S0, va(0)).w(ld(A0, S0, 0)); // 0: not valid -> load fault
        a.li(S0, va(1)).w(sd(ZERO, S0, 0)); // 1: read-only -> store fault
        a.li(S0, va(1)).w(amo(amo_op::OR, true, A0, S0, ZERO)); // AMO: store fault
        a.li(S0, va(2)).w(ld(A0, S0, 0)); // 2: W without R -> reserved
        a.li(S0, va(3)).w(ld(A0, S0, 0)); // 3: execute-only, no MXR
        a.li(S0, va(3)).w(lr_d(A0, S0)); // LR needs read permission
        a.li(S0, va(4)).w(ld(A0, S0, 0)); // 4: reserved bit 60 set
        a.li(S0, VA + 0x20_0000).w(ld(A0, S0, 0)); // misaligned megapage
        a.li(S0, 0x40_0000_0000).w(ld(A0, S0, 0)); // not canonical (Sv39)
        a.li(S0, VA | (1 << 39)).w(ld(A0, S0, 0)); // would alias VA if truncated
        a.li(S0, 0xffff_ffc0_0000_0000).w(sd(ZERO, S0, 0)); // canonical, unmapped
        a.li(S0, va(5)).w(ld(A0, S0, 0)); // 5: level-0 pointer
        a.li(S0, va(1)).w(ld(A1, S0, 8)); // fine
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, va(0), PA_DATA, 0, R | W | A | D); // V = 0
            pt.map(bus, va(1), PA_DATA, 0, V | R | A | D);
            pt.map(bus, va(2), PA_DATA, 0, V | W | A | D);
            pt.map(bus, va(3), PA_DATA, 0, V | X | A | D);
            pt.map(bus, va(4), PA_DATA, 0, RW | (1 << 60));
            pt.map(bus, VA + 0x20_0000, PA_DATA + 0x1000, 1, RW);
            pt.map(bus, va(5), PA_DATA, 0, V); // pointer at level 0
            bus.write_u64(PA_DATA + 8, 0xabcd);
        },
        |_| {},
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    let got: Vec<(u64, u64)> = records(&vm).iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        got,
        [
            (13, va(0)),
            (15, va(1)),
            (15, va(1)),
            (13, va(2)),
            (13, va(3)),
            (13, va(3)),
            (13, va(4)),
            (13, VA + 0x20_0000),
            (13, 0x40_0000_0000),
            (13, VA | (1 << 39)),
            (15, 0xffff_ffc0_0000_0000),
            (13, va(5)),
        ]
    );
    assert_eq!(vm.x(A1), 0xabcd);
}

#[test]
fn sv48_canonical_addresses() {
    let prog = Prog::new(|a| {
        a.li(S0, 0x0000_8000_0000_0000).w(ld(A0, S0, 0)); // bit 47 set, not extended
        a.li(S0, VA | (1 << 48)).w(ld(A0, S0, 0)); // would alias VA if truncated
        a.li(S0, 0xffff_8000_0000_0000).w(ld(A0, S0, 0)); // canonical, unmapped
        a.li(S0, 0x0000_4000_0000_0000).w(ld(A0, S0, 0)); // valid in Sv48 only
        a.li(S0, VA).w(ld(A1, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        4,
        |bus, pt| {
            pt.map(bus, 0x0000_4000_0000_0000, PA_DATA, 0, RW);
            pt.map(bus, VA, PA_DATA, 0, RW);
            bus.write_u64(PA_DATA, 42);
        },
        |_| {},
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    let got: Vec<(u64, u64)> = records(&vm).iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        got,
        [
            (13, 0x0000_8000_0000_0000),
            (13, VA | (1 << 48)),
            (13, 0xffff_8000_0000_0000)
        ]
    );
    assert_eq!((vm.x(A0), vm.x(A1)), (42, 42));
}

#[test]
fn fetch_faults() {
    // Executing from a page without X.
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(jalr(RA, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
        },
        |_| {},
    );
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!(
        (vm.csr().mcause, vm.csr().mtval, vm.csr().mepc),
        (12, VA, VA)
    );
    // A 32-bit instruction whose second half is on an unmapped page: the
    // fault reports the second page, the epc the instruction.
    let prog = Prog::new(|a| {
        a.li(S0, VA + 0xffe).w(jalr(RA, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RWX);
            bus.write_u32(PA_DATA + 0xffe, addi(A0, A0, 1)); // first half only lands
        },
        |_| {},
    );
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!(
        (vm.csr().mcause, vm.csr().mtval, vm.csr().mepc),
        (12, VA + 0x1000, VA + 0xffe)
    );
    // S cannot execute U pages, even with SUM.
    let prog = Prog::new(|a| {
        a.label("x").w(NOP);
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |_, _| {},
        |s| s.csr.mstatus |= SUM,
    );
    let target = user(&prog, "x");
    vm.hart.set_pc(GuestVirtAddr(target));
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (12, target));
    // U cannot execute S pages.
    let mut vm = paged_vm(&prog, Privilege::User, 3, |_, _| {}, |_| {});
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!((vm.csr().mcause, vm.csr().mtval), (12, prog.addr("x")));
}

#[test]
fn user_and_supervisor_permissions_with_sum_and_mxr() {
    let map = |bus: &mut TestBus, pt: &mut PageTable| {
        pt.map(bus, VA, PA_DATA, 0, RW | U); // user data
        pt.map(bus, VA + 0x1000, PA_DATA, 0, RW); // supervisor data
        pt.map(bus, VA + 0x2000, PA_DATA, 0, V | X | A | U); // user execute-only
        bus.write_u64(PA_DATA, 7);
    };
    // U-mode code (through the U alias).
    let prog = Prog::new(|a| {
        a.label("u");
        a.li(S0, VA).w(ld(A0, S0, 0)); // ok
        a.li(S0, VA + 0x1000).w(ld(A1, S0, 0)); // S page: fault
        a.li(S0, VA + 0x2000).w(ld(A2, S0, 0)); // X-only: fault unless MXR
        a.w(ECALL);
    });
    for mxr in [0, MXR] {
        let mut vm = paged_vm(&prog, Privilege::User, 3, map, |s| s.csr.mstatus |= mxr);
        let (mrec, start) = (prog.addr("mrec"), user(&prog, "u"));
        vm.edit(|s| {
            s.csr.mtvec = mrec;
            s.pc = start;
        });
        vm.run_to_any(&[prog.addr("halt"), user(&prog, "halt")], 1000);
        let got: Vec<(u64, u64)> = records(&vm).iter().map(|r| (r.0, r.1)).collect();
        let mut want = vec![(13, VA + 0x1000)];
        if mxr == 0 {
            want.push((13, VA + 0x2000));
        }
        want.push((8, 0));
        assert_eq!(got, want, "mxr={mxr}");
        assert_eq!(vm.x(A0), 7);
        assert_eq!(vm.x(A2), if mxr != 0 { 7 } else { 0 });
    }
    // S-mode: user pages need SUM.
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0));
        a.li(S0, VA).w(sd(ZERO, S0, 8));
        a.li(S0, VA + 0x2000).w(ld(A1, S0, 0)); // X-only user page
    });
    for (extra, want) in [
        (0, vec![(13, VA), (15, VA + 8), (13, VA + 0x2000)]),
        (SUM, vec![(13, VA + 0x2000)]),
        (SUM | MXR, vec![]),
    ] {
        let mut vm = paged_vm(&prog, Privilege::Supervisor, 3, map, |s| {
            s.csr.mstatus |= extra
        });
        let mrec = prog.addr("mrec");
        vm.edit(|s| s.csr.mtvec = mrec);
        assert_eq!(prog.go(&mut vm), End::Halt);
        let got: Vec<(u64, u64)> = records(&vm).iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, want, "mstatus extra {extra:#x}");
    }
}

#[test]
fn sum_and_mxr_changes_take_effect_immediately() {
    // S-mode toggles SUM itself between two loads of the same user page.
    let prog = Prog::new(|a| {
        a.li(S0, VA).li(T0, SUM);
        a.w(csrs(csr::SSTATUS, T0)).w(ld(A0, S0, 0)); // ok, now cached
        a.w(csrc(csr::SSTATUS, T0)).w(ld(A1, S0, 0)); // must fault
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW | U);
            bus.write_u64(PA_DATA, 5);
        },
        |_| {},
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A0), 5);
    assert_eq!(records(&vm).iter().map(|r| r.0).collect::<Vec<_>>(), [13]);
}

#[test]
fn page_faults_delegate_to_s() {
    let prog = Prog::new(|a| {
        a.li(S0, VA).label("load").w(ld(A0, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |_, _| {},
        |s| {
            s.csr.medeleg = (1 << 12) | (1 << 13) | (1 << 15);
        },
    );
    assert_eq!(prog.go(&mut vm), End::STrap);
    let c = vm.csr();
    assert_eq!((c.scause, c.stval, c.sepc), (13, VA, prog.addr("load")));
    assert_eq!(c.mcause, 0);
    // From U, through the alias: the S handler sees a store fault.
    let prog = Prog::new(|a| {
        a.label("u").li(S0, VA).label("store").w(sd(ZERO, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::User,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, V | R | A | U);
        },
        |s| s.csr.medeleg = 1 << 15,
    );
    let start = user(&prog, "u");
    vm.hart.set_pc(GuestVirtAddr(start));
    assert_eq!(prog.go(&mut vm), End::STrap);
    let c = vm.csr();
    assert_eq!((c.scause, c.stval, c.sepc), (15, VA, user(&prog, "store")));
    assert_eq!(c.mstatus & (1 << 8), 0, "SPP = U");
}

#[test]
fn mprv_translates_m_mode_data_accesses() {
    const MPP_S: u64 = 1 << 11;
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0)); // translated as S
        a.li(T0, SUM).w(csrc(csr::MSTATUS, T0));
        a.li(S1, VA + 0x1000).w(ld(A1, S1, 0)); // user page, no SUM: fault
        a.li(T0, MPRV).w(csrc(csr::MSTATUS, T0));
        a.li(S2, PA_DATA + 16).w(ld(A2, S2, 0)); // physical again
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Machine,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
            pt.map(bus, VA + 0x1000, PA_DATA, 0, RW | U);
            bus.write_u64(PA_DATA, 0x88);
            bus.write_u64(PA_DATA + 16, 0x1616);
        },
        |s| s.csr.mstatus |= MPRV | MPP_S | SUM,
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A0), 0x88);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(13, VA + 0x1000)]
    );
    assert_eq!(vm.x(A2), 0x1616);
}

#[test]
fn sfence_vma_and_satp_writes_make_changes_visible() {
    // s2 = new PTE, s3 = the PTE's address (the tables are reachable
    // through the identity mapping), s4 = a second address space.
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0));
        a.w(sd(S2, S3, 0)).w(SFENCE_VMA).w(ld(A1, S0, 0)); // remapped
        a.w(sd(ZERO, S3, 0))
            .w(sfence_vma(S0, ZERO))
            .w(ld(A2, S0, 0)); // invalid
        a.w(csrw(csr::SATP, S4)).w(ld(A3, S0, 0));
    });
    let mut pte = 0;
    let mut other = PageTable::new(3, PT_AREA + 0x8_0000);
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pte = pt.map(bus, VA, PA_DATA, 0, RW);
            bus.write_u64(PA_DATA, 1);
            bus.write_u64(PA_DATA + 0x1000, 2);
            bus.write_u64(PA_DATA + 0x2000, 3);
            other.map(bus, RAM_BASE, RAM_BASE, 2, RWX);
            other.map(bus, VA, PA_DATA + 0x2000, 0, RW);
        },
        |_| {},
    );
    let (mrec, satp2) = (prog.addr("mrec"), other.satp());
    vm.edit(|s| {
        s.csr.mtvec = mrec;
        s.x[S2 as usize] = ((PA_DATA + 0x1000) >> 12 << 10) | RW;
        s.x[S3 as usize] = pte;
        s.x[S4 as usize] = satp2;
    });
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1), vm.x(A2), vm.x(A3)), (1, 2, 0, 3));
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(13, VA)]
    );
}

/// A page-table page that moves to a private copy (copy-on-write, as in a
/// recorded chunk) after a walk read it is read from the copy by the
/// next walk: the hart drops what it held of the old copy, TLB entries and
/// the table page its walks read without asking the bus again.
#[test]
fn a_table_page_that_moves_is_walked_at_its_new_place() {
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0));
        a.w(sd(S2, S3, 0)) // the table page's first write: it moves
            .w(sfence_vma(S0, ZERO))
            .w(ld(A1, S0, 0));
    });
    let mut pte = 0;
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pte = pt.map(bus, VA, PA_DATA, 0, RW);
            bus.write_u64(PA_DATA, 1);
            bus.write_u64(PA_DATA + 0x1000, 2);
        },
        |_| {},
    );
    vm.bus.copy_on_write = true;
    vm.edit(|s| {
        s.x[S2 as usize] = ((PA_DATA + 0x1000) >> 12 << 10) | RW;
        s.x[S3 as usize] = pte;
    });
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1)), (1, 2));
}

/// A chunk start that keeps translated code (`flush_tlb_keeping_code`)
/// forgets which pages were fetched from before it: a store to such a page
/// then empties no execute TLB, so the next fetch does not walk again (a
/// walk the guest sees: it sets an A bit the guest cleared without a
/// fence). What a store drops must depend on the chunk alone, or a
/// recording and its replay, which never ran the recording's squashed
/// attempts, would differ.
#[test]
fn a_chunk_start_forgets_the_pages_fetched_before_it() {
    let prog = Prog::new(|a| {
        a.jal(RA, "sub");
        a.label("chunk");
        a.w(sd(S2, S3, 0)) // the code's leaf loses its A bit
            .w(sd(ZERO, S4, 0)) // sub's page, fetched before the chunk
            .w(addi(T0, ZERO, 1))
            .j("halt");
        a.align(4096);
        a.label("sub");
        a.w(jalr(ZERO, RA, 0));
    });
    let mut vm = prog.vm(Privilege::Supervisor);
    let mut pt = PageTable::new(3, PT_AREA);
    let leaf = pt.map(&mut vm.bus, RAM_BASE, RAM_BASE, 2, RWX);
    pt.map(&mut vm.bus, VA, prog.addr("sub"), 0, RW);
    let satp = pt.satp();
    let cleared = vm.bus.read_u64(leaf) & !A;
    vm.edit(|s| {
        s.csr.satp = satp;
        s.x[S2 as usize] = cleared;
        s.x[S3 as usize] = leaf;
        s.x[S4 as usize] = VA;
    });
    vm.run_to(prog.addr("chunk"), 10);
    vm.hart.flush_tlb_keeping_code();
    vm.run_to(prog.addr("halt"), 10);
    assert_eq!(vm.bus.read_u64(leaf) & A, 0, "a walk after the store");
}

/// A data page that moves to a private copy on its first write is read at
/// its new place afterwards, under every virtual address the TLB held it.
#[test]
fn a_page_that_moves_is_read_at_its_new_place_under_every_alias() {
    let prog = Prog::new(|a| {
        a.li(S0, VA).li(S1, VA + 0x3000);
        a.w(ld(A0, S0, 0)).w(ld(A1, S1, 0)); // both aliases cached
        a.li(T0, 7).w(sd(T0, S0, 0)); // the first write: the page moves
        a.w(ld(A2, S0, 0)).w(ld(A3, S1, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
            pt.map(bus, VA + 0x3000, PA_DATA, 0, RW);
            bus.write_u64(PA_DATA, 1);
        },
        |_| {},
    );
    vm.bus.copy_on_write = true;
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1), vm.x(A2), vm.x(A3)), (1, 1, 7, 7));
}

#[test]
fn sfence_vma_of_one_address_drops_its_whole_superpage() {
    // A load caches page VA+0x5000 of a 2 MiB page; the superpage is
    // remapped and fenced through another of its pages (VA itself).
    let prog = Prog::new(|a| {
        a.li(S0, VA).li(S1, VA + 0x5000).w(ld(A0, S1, 0));
        a.w(sd(S2, S3, 0)).w(sfence_vma(S0, ZERO)).w(ld(A1, S1, 0));
    });
    let mut pte = 0;
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pte = pt.map(bus, VA, PA_DATA, 1, RW);
            bus.write_u64(PA_DATA + 0x5000, 1);
            bus.write_u64(RAM_BASE + 0x5000, 2);
        },
        |_| {},
    );
    vm.edit(|s| {
        s.x[S2 as usize] = (RAM_BASE >> 12 << 10) | RW;
        s.x[S3 as usize] = pte;
    });
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1)), (1, 2));
}

#[test]
fn supervisor_translations_do_not_serve_user_mode() {
    // S loads an S-only page (now cached), then returns to U, whose load
    // of the same page must fault.
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0));
        a.w(csrw(csr::SEPC, S1)).w(SRET);
        a.label("u").w(ld(A1, S0, 0)).w(ECALL);
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
            bus.write_u64(PA_DATA, 5);
        },
        |_| {},
    );
    let u = user(&prog, "u");
    vm.edit(|s| s.x[S1 as usize] = u);
    assert_eq!(prog.go(&mut vm), End::MTrap);
    let c = vm.csr();
    assert_eq!((c.mcause, c.mtval, c.mepc), (13, VA, u));
    assert_eq!(vm.x(A0), 5);
}

#[test]
fn walk_faults_are_access_faults() {
    // A root table outside RAM: the walk itself faults (access, not page, fault).
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0)).w(sd(ZERO, S0, 0));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| {
        s.csr.satp = (8 << 60) | (0x1000_0000 >> 12); // a device page, not RAM
        s.csr.mstatus |= MPRV | (1 << 11);
    });
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(5, VA), (7, VA)]
    );
    // PMP denying the page-table pages to S: access faults too.
    let prog = Prog::new(|a| {
        a.li(S0, VA).w(ld(A0, S0, 0));
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Machine,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
        },
        |s| {
            // entry 0: page tables, no access; entry 1: everything else
            s.csr.pmpaddr[0] = (PT_AREA >> 2) | ((0x8_0000 >> 3) - 1);
            s.csr.pmpcfg[0] = 3 << 3;
            s.csr.pmpaddr[1] = u64::MAX >> 10;
            s.csr.pmpcfg[1] = 0x1f;
            s.csr.mstatus |= MPRV | (1 << 11);
        },
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(5, VA)]
    );
}

#[test]
fn misaligned_access_across_pages_with_different_permissions() {
    let prog = Prog::new(|a| {
        a.li(S0, VA + 0xffc).li(T0, -1i64 as u64).w(sd(T0, S0, 0)); // 2nd page read-only
        a.w(ld(A0, S0, 0)); // both readable: fine
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::Supervisor,
        3,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, RW);
            pt.map(bus, VA + 0x1000, PA_DATA + 0x1000, 0, V | R | A);
            bus.write_u64(PA_DATA + 0x1000, 0x4433_2211);
        },
        |_| {},
    );
    let mrec = prog.addr("mrec");
    vm.edit(|s| s.csr.mtvec = mrec);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(15, VA + 0x1000)]
    );
    assert_eq!(
        vm.bus.read_u32(PA_DATA + 0xffc),
        0,
        "nothing written on the first page"
    );
    assert_eq!(vm.x(A0), 0x4433_2211_0000_0000);
}

#[test]
fn user_code_runs_through_its_own_mapping() {
    let prog = Prog::new(|a| {
        a.label("u");
        a.li(S0, VA).w(ld(A0, S0, 0)).w(sd(A0, S0, 8));
        a.label("ecall").w(ECALL);
    });
    let mut vm = paged_vm(
        &prog,
        Privilege::User,
        4,
        |bus, pt| {
            pt.map(bus, VA, PA_DATA, 0, V | R | W | U); // A and D clear
            bus.write_u64(PA_DATA, 99);
        },
        |_| {},
    );
    let start = user(&prog, "u");
    vm.hart.set_pc(GuestVirtAddr(start));
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!((vm.csr().mcause, vm.csr().mepc), (8, user(&prog, "ecall")));
    assert_eq!(vm.bus.read_u64(PA_DATA + 8), 99);
}

/// A translated block never runs past the end of its page: a loop whose
/// 4-byte instruction ends exactly at a page end goes on on the next
/// virtual page, mapped to a physical page that is not the one after
/// (where other code lies). Both engines must run the mapped code.
#[cfg(target_arch = "x86_64")]
#[test]
fn translated_code_stops_at_the_end_of_its_page() {
    const VA_CODE: u64 = 0x5000_0000;
    const PA_FIRST: u64 = PA_DATA;
    const PA_SECOND: u64 = PA_DATA + 0x3000;
    let prog = Prog::new(|_| {});
    let run = |translate: bool| {
        let mut vm = paged_vm(
            &prog,
            Privilege::Supervisor,
            3,
            |bus, pt| {
                pt.map(bus, VA_CODE, PA_FIRST, 0, RWX);
                pt.map(bus, VA_CODE + 0x1000, PA_SECOND, 0, RWX);
                // The loop: two instructions at the end of the first page
                // (the second ends at the page end), two on the next.
                bus.write_u32(PA_FIRST + 0xff8, addi(A1, A1, 1));
                bus.write_u32(PA_FIRST + 0xffc, addi(A2, A2, 2));
                bus.write_u32(PA_SECOND, addi(A0, A0, 1));
                bus.write_u32(PA_SECOND + 4, jal(ZERO, -12));
                // What follows the first page physically, never mapped
                // there.
                bus.write_u32(PA_FIRST + 0x1000, addi(A0, A0, 100));
                bus.write_u32(PA_FIRST + 0x1004, jal(ZERO, -12));
            },
            |_| {},
        );
        vm.hart.set_translator(translate);
        vm.hart.set_pc(GuestVirtAddr(VA_CODE + 0xff8));
        for _ in 0..40 {
            vm.hart.run(&mut vm.bus, 100);
        }
        vm.hart.snapshot()
    };
    let (interp, jit) = (run(false), run(true));
    assert_eq!(
        interp.x[A0 as usize], 1000,
        "the interpreter runs the mapped code"
    );
    assert_eq!(interp, jit);
}
