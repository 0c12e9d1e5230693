//! Interrupts from the bus' interrupt lines and from software-writable mip
//! bits: enables, priorities, delegation, vectored mode, WFI, and how they
//! interact with step counting.

mod common;

use common::asm::*;
use common::prog::{End, Prog};
use common::{RAM_BASE, Vm};
use samsara_cpu::{Privilege, StopReason};
use samsara_types::GuestVirtAddr;

const SSI: u64 = 1;
const MSI: u64 = 3;
const STI: u64 = 5;
const MTI: u64 = 7;
const SEI: u64 = 9;
const MEI: u64 = 11;
const INT: u64 = 1 << 63;

const MIE: u64 = 1 << 3;
const SIE: u64 = 1 << 1;
const MPIE: u64 = 1 << 7;
const MPP: u64 = 3 << 11;

fn bit(cause: u64) -> u64 {
    1 << cause
}

/// A program that spins at `spin` forever.
fn spinner() -> Prog {
    Prog::new(|a| {
        a.label("spin").w(addi(A0, A0, 1)).j("spin");
    })
}

/// Runs `prog` in `p` with `mstatus |= status`, `mie`, `mideleg`, `mip`
/// (software bits) and bus `lines`, for up to 20 steps; returns where it
/// stopped and the Vm.
fn settle(
    prog: &Prog,
    p: Privilege,
    status: u64,
    mie: u64,
    mideleg: u64,
    mip: u64,
    lines: u64,
) -> (End, Vm) {
    let mut vm = prog.vm_with(p, |s| {
        s.csr.mstatus |= status;
        s.csr.mie = mie;
        s.csr.mideleg = mideleg;
        s.csr.mip = mip;
    });
    vm.bus.lines = lines;
    let ends = [prog.addr("mtrap"), prog.addr("strap")];
    for _ in 0..20 {
        if let Some(k) = ends.iter().position(|&e| e == vm.hart.pc().raw()) {
            return ([End::MTrap, End::STrap][k], vm);
        }
        vm.hart.run(&mut vm.bus, 1);
    }
    (End::Halt, vm) // still spinning: no interrupt taken
}

#[test]
fn machine_interrupts_from_lines_and_trap_state() {
    let prog = spinner();
    for cause in [MSI, MTI, MEI] {
        let mut vm = prog.vm_with(Privilege::Machine, |s| {
            s.csr.mstatus |= MIE;
            s.csr.mie = bit(cause);
        });
        vm.run_to(prog.addr("spin") + 4, 10);
        let steps = vm.hart.steps();
        vm.bus.lines = bit(cause);
        // A zero-step run only samples the lines: the interrupt is taken
        // and no step is counted.
        assert_eq!(vm.hart.run(&mut vm.bus, 0), StopReason::StepLimit);
        assert_eq!(vm.hart.steps(), steps);
        assert_eq!(vm.hart.pc().raw(), prog.addr("mtrap"));
        let c = vm.csr();
        assert_eq!(c.mcause, INT | cause);
        assert_eq!(c.mepc, prog.addr("spin") + 4, "the interrupted instruction");
        assert_eq!(c.mtval, 0);
        assert_eq!(c.mstatus & (MIE | MPIE | MPP), MPIE | MPP);
        assert_eq!(vm.hart.state().exceptions, 0);
    }
}

#[test]
fn global_enables_depend_on_privilege() {
    let prog = spinner();
    let m = |p, status| settle(&prog, p, status, bit(MTI), 0, 0, bit(MTI)).0;
    assert_eq!(
        m(Privilege::Machine, 0),
        End::Halt,
        "M with MIE = 0: masked"
    );
    assert_eq!(m(Privilege::Machine, MIE), End::MTrap);
    assert_eq!(
        m(Privilege::Supervisor, 0),
        End::MTrap,
        "below M, always enabled"
    );
    assert_eq!(m(Privilege::User, 0), End::MTrap);
    // Not enabled in mie: never taken.
    let (end, _) = settle(&prog, Privilege::User, MIE, bit(MSI), 0, 0, bit(MTI));
    assert_eq!(end, End::Halt);
    // Delegated S interrupts: S needs SIE, U always, M never.
    let s = |p, status| settle(&prog, p, status, bit(SSI), bit(SSI), bit(SSI), 0).0;
    assert_eq!(s(Privilege::Supervisor, 0), End::Halt);
    assert_eq!(s(Privilege::Supervisor, SIE), End::STrap);
    assert_eq!(s(Privilege::User, 0), End::STrap);
    assert_eq!(s(Privilege::Machine, MIE | SIE), End::Halt);
    // Not delegated: an S interrupt goes to M, enabled by M's rules.
    let (end, vm) = settle(&prog, Privilege::Supervisor, 0, bit(STI), 0, bit(STI), 0);
    assert_eq!((end, vm.csr().mcause), (End::MTrap, INT | STI));
    // An M interrupt preempts S even with SIE = 0.
    let (end, vm) = settle(
        &prog,
        Privilege::Supervisor,
        0,
        bit(MEI),
        bit(SSI),
        0,
        bit(MEI),
    );
    assert_eq!((end, vm.csr().mcause), (End::MTrap, INT | MEI));
}

#[test]
fn priorities() {
    let prog = spinner();
    let all_m = bit(MEI) | bit(MSI) | bit(MTI);
    let all_s = bit(SEI) | bit(SSI) | bit(STI);
    let first = |lines: u64, sw: u64, deleg: u64| {
        let (end, vm) = settle(&prog, Privilege::User, 0, all_m | all_s, deleg, sw, lines);
        match end {
            End::MTrap => vm.csr().mcause & !INT,
            End::STrap => 100 + (vm.csr().scause & !INT),
            End::Halt => u64::MAX,
        }
    };
    assert_eq!(first(all_m, 0, 0), MEI);
    assert_eq!(first(bit(MSI) | bit(MTI), 0, 0), MSI);
    assert_eq!(first(bit(MTI) | bit(SEI), 0, 0), MTI);
    assert_eq!(first(bit(SEI), bit(SSI) | bit(STI), 0), SEI);
    assert_eq!(first(0, bit(SSI) | bit(STI), 0), SSI);
    assert_eq!(first(0, bit(STI), 0), STI);
    // M-destined interrupts come before S-destined ones.
    assert_eq!(first(bit(MTI) | bit(SEI), 0, all_s), MTI);
    assert_eq!(
        first(bit(SEI), bit(SSI), bit(SSI)),
        SEI,
        "SEI (to M) beats SSI (to S)"
    );
    assert_eq!(first(bit(SEI), bit(SSI), all_s), 100 + SEI);
    assert_eq!(first(0, bit(SSI) | bit(STI), all_s), 100 + SSI);
}

#[test]
fn delegated_interrupts_enter_s_mode() {
    let prog = spinner();
    let (end, vm) = settle(&prog, Privilege::User, SIE, bit(SEI), bit(SEI), 0, bit(SEI));
    assert_eq!(end, End::STrap);
    let c = vm.csr();
    assert_eq!(c.scause, INT | SEI);
    assert_eq!(c.stval, 0);
    assert_eq!(
        c.mstatus & (SIE | (1 << 5) | (1 << 8)),
        1 << 5,
        "SPIE = 1, SPP = U"
    );
    assert_eq!(c.mcause, 0);
    assert_eq!(vm.hart.privilege(), Privilege::Supervisor);
}

#[test]
fn software_writes_to_mip_and_sip_raise_interrupts() {
    // S sets its own software interrupt through sip; it is taken right
    // after the write, with sepc at the next instruction.
    let prog = Prog::new(|a| {
        a.li(T0, 1 << SSI).w(csrs(csr::SIP, T0));
        a.label("next").w(NOP);
    });
    let mut vm = prog.vm_with(Privilege::Supervisor, |s| {
        s.csr.mstatus |= SIE;
        s.csr.mie = bit(SSI);
        s.csr.mideleg = bit(SSI);
    });
    assert_eq!(prog.go(&mut vm), End::STrap);
    assert_eq!(
        (vm.csr().scause, vm.csr().sepc),
        (INT | SSI, prog.addr("next"))
    );
    // M posts a supervisor timer interrupt and drops to U: taken by S at
    // the mret target.
    let prog = Prog::new(|a| {
        a.li(T0, 1 << STI).w(csrs(csr::MIP, T0));
        a.la(T0, "user").w(csrw(csr::MEPC, T0)).w(MRET);
        a.label("user").w(NOP);
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| {
        s.csr.mie = bit(STI);
        s.csr.mideleg = bit(STI);
    });
    assert_eq!(prog.go(&mut vm), End::STrap);
    assert_eq!(
        (vm.csr().scause, vm.csr().sepc),
        (INT | STI, prog.addr("user"))
    );
    // mip's M bits are driven by the lines only; reads show both.
    let prog = Prog::new(|a| {
        a.li(T0, u64::MAX)
            .w(csrw(csr::MIP, T0))
            .w(csrr(A0, csr::MIP))
            .w(csrw(csr::MIP, ZERO))
            .w(csrr(A1, csr::MIP))
            .w(csrr(A2, csr::SIP));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mideleg = bit(SEI));
    vm.bus.lines = bit(MEI) | bit(SEI);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A0), bit(MEI) | bit(SEI) | bit(SSI) | bit(STI));
    assert_eq!(vm.x(A1), bit(MEI) | bit(SEI), "the lines stay visible");
    assert_eq!(vm.x(A2), bit(SEI));
}

#[test]
fn enabling_a_pending_interrupt_traps_after_the_csr_write() {
    let prog = Prog::new(|a| {
        a.li(T0, 1 << MTI).w(csrs(csr::MIE, T0));
        a.label("next").w(NOP);
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mstatus |= MIE);
    vm.bus.lines = bit(MTI);
    // One big run: the interrupt is noticed right after the CSR write.
    vm.hart.run(&mut vm.bus, 3);
    assert_eq!(vm.hart.pc().raw(), prog.addr("mtrap"));
    assert_eq!(vm.csr().mepc, prog.addr("next"));
    // Likewise setting mstatus.MIE.
    let prog = Prog::new(|a| {
        a.w(csrrsi(ZERO, csr::MSTATUS, MIE as u32));
        a.label("next").w(NOP);
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mie = bit(MSI));
    vm.bus.lines = bit(MSI);
    vm.hart.run(&mut vm.bus, 1);
    assert_eq!(
        (vm.hart.pc().raw(), vm.csr().mepc),
        (prog.addr("mtrap"), prog.addr("next"))
    );
}

#[test]
fn vectored_trap_vectors() {
    let mut a = Asm::new(RAM_BASE);
    a.label("spin").w(NOP).j("spin");
    a.align(256);
    a.label("mvec");
    for k in 0..16 {
        a.label(&format!("m{k}")).w(jal(ZERO, 0));
    }
    a.label("svec");
    for k in 0..16 {
        a.label(&format!("s{k}")).w(jal(ZERO, 0));
    }
    let (mvec, svec) = (a.addr("mvec"), a.addr("svec"));
    let vm_for = |p: Privilege, lines: u64, deleg: u64| {
        let mut vm = Vm::new(&a);
        vm.edit(|s| {
            s.privilege = p;
            s.csr.mtvec = mvec | 1;
            s.csr.stvec = svec | 1;
            s.csr.mie = 0xaaa;
            s.csr.mideleg = deleg;
            common::pmp_allow_all(s);
        });
        vm.bus.lines = lines;
        vm.hart.run(&mut vm.bus, 0);
        vm
    };
    let vm = vm_for(Privilege::User, bit(MTI), 0);
    assert_eq!(vm.hart.pc().raw(), a.addr("m7"));
    let vm = vm_for(Privilege::User, bit(SEI), bit(SEI));
    assert_eq!(vm.hart.pc().raw(), a.addr("s9"));
    // Exceptions use the base.
    let mut vm = vm_for(Privilege::User, 0, 0);
    vm.hart.set_pc(GuestVirtAddr(0x10)); // not RAM: fetch access fault
    vm.hart.run(&mut vm.bus, 1);
    assert_eq!((vm.hart.pc().raw(), vm.csr().mcause), (mvec, 1));
}

#[test]
fn wfi_stops_the_run_and_an_interrupt_resumes_it() {
    let prog = Prog::new(|a| {
        a.w(addi(A0, ZERO, 1));
        a.label("wfi").w(WFI);
        a.label("after").w(addi(A1, ZERO, 2));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| {
        s.csr.mstatus |= MIE;
        s.csr.mie = bit(MTI);
    });
    assert_eq!(vm.hart.run(&mut vm.bus, 100), StopReason::Wfi);
    assert_eq!(vm.hart.pc().raw(), prog.addr("after"));
    assert_eq!(vm.hart.steps().0, 2, "wfi retired");
    assert_eq!(vm.hart.retired(), 2);
    // Running again just goes on (the caller decides how long to wait).
    assert_eq!(vm.hart.run(&mut vm.bus, 100), StopReason::StepLimit);
    assert_eq!(vm.x(A1), 2);
    let mut vm = prog.vm_with(Privilege::Machine, |s| {
        s.csr.mstatus |= MIE;
        s.csr.mie = bit(MTI);
    });
    assert_eq!(vm.hart.run(&mut vm.bus, 100), StopReason::Wfi);
    vm.bus.lines = bit(MTI);
    vm.hart.run(&mut vm.bus, 0);
    assert_eq!(vm.hart.pc().raw(), prog.addr("mtrap"));
    assert_eq!(vm.csr().mepc, prog.addr("after"));
    assert_eq!(vm.x(A1), 0);
}

#[test]
fn wfi_completes_when_an_interrupt_is_pending_even_if_masked() {
    // Pending and enabled in mie but MIE = 0: wfi falls through, no trap.
    let prog = Prog::new(|a| {
        a.w(WFI).w(addi(A1, ZERO, 2));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mie = bit(MEI));
    vm.bus.lines = bit(MEI);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A1), 2);
    // Pending but not enabled in mie: wfi waits.
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mie = bit(MTI));
    vm.bus.lines = bit(MEI);
    assert_eq!(vm.hart.run(&mut vm.bus, 100), StopReason::Wfi);
    // In S-mode, a delegated interrupt wakes it and is taken by S.
    let mut vm = prog.vm_with(Privilege::Supervisor, |s| {
        s.csr.mstatus |= SIE;
        s.csr.mie = bit(SEI);
        s.csr.mideleg = bit(SEI);
    });
    assert_eq!(vm.hart.run(&mut vm.bus, 100), StopReason::Wfi);
    vm.bus.lines = bit(SEI);
    assert_eq!(prog.go(&mut vm), End::STrap);
    assert_eq!(vm.csr().sepc, prog.addr("start") + 4);
}

#[test]
fn interrupts_are_not_steps_or_retired_instructions() {
    // An M handler that counts and returns: a run with the line held for
    // a while, then released.
    let prog = Prog::new(|a| {
        a.la(T0, "handler").w(csrw(csr::MTVEC, T0));
        a.li(T0, 1 << MTI)
            .w(csrw(csr::MIE, T0))
            .w(csrrsi(ZERO, csr::MSTATUS, MIE as u32));
        a.label("loop").w(addi(A0, A0, 1)).j("loop");
        a.label("handler");
        a.w(addi(A1, A1, 1)).w(MRET);
    });
    let mut vm = prog.vm(Privilege::Machine);
    vm.run_to(prog.addr("loop"), 100);
    let (steps0, retired0) = (vm.hart.steps().0, vm.hart.retired());
    vm.bus.lines = bit(MTI);
    // Each 1-step run: the interrupt is taken at entry, then one handler
    // instruction executes. 10 runs = 5 full handler invocations.
    for _ in 0..10 {
        vm.hart.run(&mut vm.bus, 1);
    }
    vm.bus.lines = 0;
    assert_eq!(vm.x(A1), 5);
    assert_eq!(vm.hart.steps().0 - steps0, 10);
    assert_eq!(vm.hart.retired() - retired0, 10);
    assert_eq!(vm.hart.state().exceptions, 0);
    assert_eq!(
        vm.x(A0),
        0,
        "the loop body never ran while the line was high"
    );
    // The last mret re-took the interrupt: finish the handler, then loop.
    vm.hart.run(&mut vm.bus, 4);
    assert_eq!((vm.x(A1), vm.x(A0)), (6, 1));
}

#[test]
fn csr_read_modify_write_of_mip_does_not_latch_the_lines() {
    // The privileged spec: in csrrs/csrrc of mip, only the software-writable
    // SEIP bit takes part in the read-modify-write, not the external line.
    let prog = Prog::new(|a| {
        a.li(T0, 1 << STI)
            .w(csrrs(A0, csr::MIP, T0)) // reads SEIP from the line
            .w(csrrc(A1, csr::MIP, T0))
            .w(csrrsi(ZERO, csr::MIP, 0)) // no write at all
            .w(csrrs(ZERO, csr::SIP, T0));
        a.label("lowered");
        a.w(csrr(A2, csr::MIP)).w(csrr(A3, csr::SIP));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mideleg = bit(SEI) | bit(STI));
    vm.bus.lines = bit(SEI);
    vm.run_to(prog.addr("lowered"), 100);
    vm.bus.lines = 0;
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A0), bit(SEI));
    assert_eq!(vm.x(A1), bit(SEI) | bit(STI));
    assert_eq!(vm.x(A2), 0, "SEIP must not stick once the line drops");
    assert_eq!(vm.x(A3), 0);
    assert_eq!(vm.csr().mip, 0);
}
