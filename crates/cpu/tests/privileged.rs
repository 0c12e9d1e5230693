//! Privileged architecture: trap causes and delegation, xRET, CSR access
//! rules and WARL fields, counters, and PMP.

mod common;

use common::asm::*;
use common::prog::{End, Prog, records};
use common::{RAM_BASE, Vm};
use samsara_cpu::{HartState, Privilege};

const DATA: u64 = RAM_BASE + 0x2_0000;

const MIE: u64 = 1 << 3;
const SIE: u64 = 1 << 1;
const MPIE: u64 = 1 << 7;
const SPIE: u64 = 1 << 5;
const SPP: u64 = 1 << 8;
const MPP_SHIFT: u32 = 11;
const MPP: u64 = 3 << MPP_SHIFT;
const MPRV: u64 = 1 << 17;
const TVM: u64 = 1 << 20;
const TW: u64 = 1 << 21;
const TSR: u64 = 1 << 22;

#[test]
fn ecall_cause_per_mode_and_trap_entry_state() {
    for (p, cause) in [
        (Privilege::User, 8),
        (Privilege::Supervisor, 9),
        (Privilege::Machine, 11),
    ] {
        let prog = Prog::new(|a| {
            a.w(NOP).label("ecall").w(ECALL);
        });
        let mut vm = prog.vm_with(p, |s| s.csr.mstatus |= MIE | SIE);
        assert_eq!(prog.go(&mut vm), End::MTrap, "{p:?}");
        let c = vm.csr();
        assert_eq!(c.mcause, cause, "{p:?}");
        assert_eq!(c.mepc, prog.addr("ecall"));
        assert_eq!(c.mtval, 0);
        assert_eq!((c.mstatus & MPP) >> MPP_SHIFT, p as u64, "MPP");
        assert_eq!(c.mstatus & (MIE | MPIE), MPIE, "MIE -> MPIE");
        assert_eq!(c.mstatus & SIE, SIE, "SIE untouched by an M trap");
        assert_eq!(vm.hart.privilege(), Privilege::Machine);
        assert_eq!((c.scause, c.sepc), (0, 0));
    }
}

#[test]
fn ebreak_and_illegal_instruction_tvals() {
    let prog = Prog::new(|a| {
        a.w(NOP).label("bp").w(EBREAK);
    });
    let (vm, end) = prog.run(Privilege::Supervisor);
    assert_eq!(end, End::MTrap);
    assert_eq!(
        (vm.csr().mcause, vm.csr().mtval, vm.csr().mepc),
        (3, prog.addr("bp"), prog.addr("bp"))
    );
    for w in [
        0xffff_ffffu32,
        0x0000_0000,
        csrr(A0, 0x800),        // no such CSR
        csrw(csr::MHARTID, A0), // read-only CSR
        csrrwi(ZERO, csr::MVENDORID, 0),
        csrrsi(ZERO, csr::CYCLE, 1),
        0x3020_0073 | (1 << 15), // mret with rs1 != 0
        fadd_d(1, 2, 3, 6),      // reserved rm
    ] {
        let prog = Prog::new(|a| {
            a.label("bad").w(w);
        });
        let (vm, end) = prog.run(Privilege::Machine);
        assert_eq!(end, End::MTrap, "{w:#010x}");
        let want_tval = if w & 3 == 3 {
            u64::from(w)
        } else {
            u64::from(w & 0xffff)
        };
        assert_eq!(
            (vm.csr().mcause, vm.csr().mtval, vm.csr().mepc),
            (2, want_tval, prog.addr("bad")),
            "{w:#010x}"
        );
    }
    // Reading a read-only CSR with a non-writing form is fine.
    let prog = Prog::new(|a| {
        a.w(csrr(A0, csr::MHARTID))
            .w(csrrsi(A1, csr::MVENDORID, 0))
            .w(csrrc(A2, csr::MISA, ZERO));
    });
    let (vm, end) = prog.run(Privilege::Machine);
    assert_eq!(end, End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1)), (0, 0));
    // RV64 with A, C, D, F, I, M, S, U.
    assert_eq!(vm.x(A2), (2 << 62) | 0x14_112d);
}

#[test]
fn exceptions_delegate_to_s_only_from_s_and_u() {
    let deleg = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 9);
    // U ecall -> S.
    let prog = Prog::new(|a| {
        a.label("ecall").w(ECALL);
    });
    let mut vm = prog.vm_with(Privilege::User, |s| {
        s.csr.medeleg = deleg;
        s.csr.mstatus |= SIE;
    });
    assert_eq!(prog.go(&mut vm), End::STrap);
    let c = vm.csr();
    assert_eq!((c.scause, c.sepc, c.stval), (8, prog.addr("ecall"), 0));
    assert_eq!(c.mstatus & (SIE | SPIE | SPP), SPIE, "SPP = U, SIE -> SPIE");
    assert_eq!(c.mcause, 0, "M untouched");
    assert_eq!(vm.hart.privilege(), Privilege::Supervisor);
    // S ecall -> S, SPP = S.
    let mut vm = prog.vm_with(Privilege::Supervisor, |s| s.csr.medeleg = deleg);
    assert_eq!(prog.go(&mut vm), End::STrap);
    assert_eq!(vm.csr().scause, 9);
    assert_eq!(vm.csr().mstatus & (SIE | SPIE | SPP), SPP);
    // S ecall not delegated -> M.
    let mut vm = prog.vm_with(Privilege::Supervisor, |s| s.csr.medeleg = 1 << 8);
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!(vm.csr().mcause, 9);
    // M-mode traps are never delegated.
    let prog = Prog::new(|a| {
        a.w(0xffff_ffff);
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.medeleg = deleg);
    assert_eq!(prog.go(&mut vm), End::MTrap);
    assert_eq!(vm.csr().mcause, 2);
    // ecall from M cannot even be delegated: medeleg bit 11 is read-only 0.
    let prog = Prog::new(|a| {
        a.li(T0, u64::MAX)
            .w(csrw(csr::MEDELEG, T0))
            .w(csrr(A0, csr::MEDELEG));
    });
    let (vm, _) = prog.run(Privilege::Machine);
    assert_eq!(vm.x(A0) & (1 << 11), 0);
    assert_eq!(vm.x(A0) & 0x3ff, 0x3ff);
}

#[test]
fn mret_and_sret_restore_state() {
    // M -> S via mret: MIE <- MPIE, MPIE <- 1, MPP <- U, MPRV cleared.
    let prog = Prog::new(|a| {
        a.la(T0, "s_code").w(csrw(csr::MEPC, T0));
        a.li(T0, MPIE | (1 << MPP_SHIFT) | MPRV)
            .w(csrs(csr::MSTATUS, T0))
            .w(MRET);
        a.label("s_code");
        a.w(addi(A0, ZERO, 1));
        // S -> U via sret: SIE <- SPIE, SPIE <- 1, SPP <- U.
        a.la(T0, "u_code").w(csrw(csr::SEPC, T0));
        a.li(T0, SPIE).w(csrs(csr::SSTATUS, T0)).w(SRET);
        a.label("u_code");
        a.w(addi(A1, ZERO, 2)).j("halt");
    });
    let mut vm = prog.vm(Privilege::Machine);
    vm.run_to(prog.addr("s_code"), 100);
    assert_eq!(vm.hart.privilege(), Privilege::Supervisor);
    let m = vm.csr().mstatus;
    assert_eq!(m & (MIE | MPIE | MPP | MPRV), MIE | MPIE);
    vm.run_to(prog.addr("u_code"), 100);
    assert_eq!(vm.hart.privilege(), Privilege::User);
    let m = vm.csr().mstatus;
    assert_eq!(m & (SIE | SPIE | SPP), SIE | SPIE);
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!((vm.x(A0), vm.x(A1)), (1, 2));
    // With MPIE/SPIE clear: xRET clears MIE/SIE and still sets MPIE/SPIE.
    let prog = Prog::new(|a| {
        a.la(T0, "s_code").w(csrw(csr::MEPC, T0));
        a.li(T0, MIE | (1 << MPP_SHIFT))
            .w(csrs(csr::MSTATUS, T0))
            .w(MRET);
        a.label("s_code");
        a.la(T0, "u_code").w(csrw(csr::SEPC, T0));
        a.li(T0, SIE).w(csrs(csr::SSTATUS, T0)).w(SRET);
        a.label("u_code");
    });
    let mut vm = prog.vm(Privilege::Machine);
    vm.run_to(prog.addr("s_code"), 100);
    assert_eq!(vm.csr().mstatus & (MIE | MPIE | MPP), MPIE);
    vm.run_to(prog.addr("u_code"), 100);
    assert_eq!(vm.csr().mstatus & (SIE | SPIE | SPP), SPIE);
    // mret back to M keeps MPRV.
    let prog = Prog::new(|a| {
        a.la(T0, "m_code").w(csrw(csr::MEPC, T0));
        a.li(T0, MPP | MPRV).w(csrs(csr::MSTATUS, T0)).w(MRET);
        a.label("m_code");
    });
    let (vm, end) = prog.run(Privilege::Machine);
    assert_eq!(end, End::Halt);
    assert_eq!(vm.hart.privilege(), Privilege::Machine);
    assert_eq!(vm.csr().mstatus & (MPRV | MPP), MPRV, "MPP <- U after mret");
}

/// Runs a single instruction `w` in `p` with `mstatus |= extra`; returns
/// (mcause, mtval) if it trapped to M, `None` if it completed.
fn try_insn(
    w: u32,
    p: Privilege,
    extra: u64,
    f: impl FnOnce(&mut HartState),
) -> Option<(u64, u64)> {
    let prog = Prog::new(|a| {
        a.w(w);
    });
    let mut vm = prog.vm_with(p, |s| {
        s.csr.mstatus |= extra;
        f(s);
    });
    vm.hart.run(&mut vm.bus, 1);
    (vm.hart.pc().raw() == prog.addr("mtrap")).then(|| (vm.csr().mcause, vm.csr().mtval))
}

#[test]
fn privileged_instructions_and_csrs_are_guarded() {
    use Privilege::*;
    let ill = |w: u32| Some((2, u64::from(w)));
    let none = |_: &mut HartState| {};
    assert_eq!(try_insn(MRET, Supervisor, 0, none), ill(MRET));
    assert_eq!(try_insn(SRET, User, 0, none), ill(SRET));
    assert_eq!(try_insn(SRET, Supervisor, TSR, none), ill(SRET));
    assert_eq!(try_insn(WFI, User, 0, none), ill(WFI));
    assert_eq!(try_insn(WFI, Supervisor, TW, none), ill(WFI));
    assert_eq!(try_insn(SFENCE_VMA, User, 0, none), ill(SFENCE_VMA));
    assert_eq!(try_insn(SFENCE_VMA, Supervisor, TVM, none), ill(SFENCE_VMA));
    let rd_satp = csrr(A0, csr::SATP);
    assert_eq!(try_insn(rd_satp, Supervisor, TVM, none), ill(rd_satp));
    assert_eq!(try_insn(rd_satp, Supervisor, 0, none), None);
    assert_eq!(try_insn(rd_satp, Machine, TVM, none), None);
    // CSR privilege levels.
    for (w, p) in [
        (csrr(A0, csr::SSTATUS), User),
        (csrr(A0, csr::MSTATUS), Supervisor),
        (csrr(A0, csr::MSCRATCH), Supervisor),
        (csrr(A0, csr::PMPCFG0), Supervisor),
        (csrr(A0, 0x3a1), Machine), // pmpcfg1 does not exist on RV64
    ] {
        assert_eq!(try_insn(w, p, 0, none), ill(w), "{w:#x} in {p:?}");
    }
    assert_eq!(try_insn(csrr(A0, csr::SSCRATCH), Supervisor, 0, none), None);
    // Counter enables: M always; S needs mcounteren; U needs both.
    let rd_cycle = csrr(A0, csr::CYCLE);
    let rd_time = csrr(A0, csr::TIME);
    let rd_instret = csrr(A0, csr::INSTRET);
    let en = |m: u64, s: u64| {
        move |st: &mut HartState| {
            st.csr.mcounteren = m;
            st.csr.scounteren = s;
        }
    };
    assert_eq!(try_insn(rd_cycle, Machine, 0, en(0, 0)), None);
    assert_eq!(try_insn(rd_cycle, Supervisor, 0, en(0, 7)), ill(rd_cycle));
    assert_eq!(try_insn(rd_cycle, Supervisor, 0, en(1, 0)), None);
    assert_eq!(try_insn(rd_cycle, User, 0, en(1, 0)), ill(rd_cycle));
    assert_eq!(try_insn(rd_cycle, User, 0, en(1, 1)), None);
    assert_eq!(try_insn(rd_time, User, 0, en(5, 5)), ill(rd_time));
    assert_eq!(try_insn(rd_time, User, 0, en(2, 2)), None);
    assert_eq!(try_insn(rd_instret, User, 0, en(4, 3)), ill(rd_instret));
    assert_eq!(try_insn(rd_instret, User, 0, en(4, 4)), None);
}

#[test]
fn csr_views_and_warl_fields() {
    let prog = Prog::new(|a| {
        // sstatus writes reach only the S fields.
        a.li(T0, u64::MAX).w(csrw(csr::SSTATUS, T0));
        a.w(csrr(A0, csr::MSTATUS)).w(csrr(A1, csr::SSTATUS));
        // sie/sip are masked by mideleg.
        a.li(T0, 1 << 5).w(csrw(csr::MIDELEG, T0)); // STI only
        a.li(T0, u64::MAX)
            .w(csrw(csr::SIE, T0))
            .w(csrr(A2, csr::MIE));
        a.w(csrw(csr::MIP, T0))
            .w(csrr(A3, csr::SIP))
            .w(csrr(A4, csr::MIP));
        // mepc/sepc drop bit 0; a reserved tvec mode keeps the old mode.
        a.li(T0, 0x1001)
            .w(csrw(csr::MEPC, T0))
            .w(csrr(A5, csr::MEPC))
            .w(csrw(csr::SEPC, T0))
            .w(csrr(S7, csr::SEPC));
        a.li(T0, 0x2001).w(csrw(csr::MTVEC, T0));
        a.li(T0, 0x3002)
            .w(csrw(csr::MTVEC, T0))
            .w(csrr(A6, csr::MTVEC));
        // MPP = 2 is reserved: the field keeps its value.
        a.li(T0, MPP).w(csrc(csr::MSTATUS, T0));
        a.li(T0, 2 << MPP_SHIFT)
            .w(csrs(csr::MSTATUS, T0))
            .w(csrr(A7, csr::MSTATUS));
        // satp ignores unsupported modes.
        a.li(T0, (1 << 60) | 5)
            .w(csrw(csr::SATP, T0))
            .w(csrr(S2, csr::SATP));
        a.li(T0, (8 << 60) | (0xffff << 44) | 0x123)
            .w(csrw(csr::SATP, T0))
            .w(csrr(S3, csr::SATP));
        a.w(csrw(csr::SATP, ZERO));
        // mideleg only holds S interrupts; mie only implemented ones.
        a.li(T0, u64::MAX)
            .w(csrw(csr::MIDELEG, T0))
            .w(csrr(S4, csr::MIDELEG));
        a.w(csrw(csr::MIE, T0)).w(csrr(S5, csr::MIE));
        a.w(csrr(S6, csr::MHARTID));
    });
    let mut vm = prog.vm_with(Privilege::Machine, |s| s.csr.mstatus = 0);
    vm.run_to(prog.addr("halt"), 1000);
    let s_bits = SIE | SPIE | SPP | (3 << 13) | (1 << 18) | (1 << 19);
    let xl = (2u64 << 32) | (2 << 34);
    assert_eq!(
        vm.x(A0),
        s_bits | xl | (1 << 63),
        "mstatus after sstatus = -1"
    );
    assert_eq!(vm.x(A1), s_bits | (2 << 32) | (1 << 63), "sstatus");
    assert_eq!(vm.x(A2), 1 << 5, "sie writes only delegated bits");
    assert_eq!(vm.x(A3), 1 << 5, "sip shows only delegated bits");
    assert_eq!(vm.x(A4), 0x222, "mip: SSIP, STIP, SEIP writable");
    assert_eq!(vm.x(A5), 0x1000);
    assert_eq!(vm.x(S7), 0x1000);
    assert_eq!(vm.x(A6), 0x3001);
    assert_eq!(vm.x(A7) & MPP, 0);
    assert_eq!(vm.x(S2), 0);
    assert_eq!(vm.x(S3), (8 << 60) | (0xffff << 44) | 0x123);
    assert_eq!(vm.x(S4), 0x222);
    assert_eq!(vm.x(S5), 0xaaa);
    assert_eq!(vm.x(S6), 0);
}

#[test]
fn instret_and_cycle_count_retired_instructions_exactly() {
    let prog = Prog::new(|a| {
        a.la(T0, "mrec").w(csrw(csr::MTVEC, T0)); // 3 instructions
        a.w(csrr(A0, csr::MINSTRET));
        a.ws(&[NOP; 5]);
        a.w(csrr(A1, csr::MINSTRET)); // a0 + 6
        a.w(ECALL); // not retired: the handler's 10 instructions are
        a.w(csrr(A2, csr::MINSTRET)); // a1 + 1 + 10
        a.w(csrr(A3, csr::INSTRET))
            .w(csrr(A4, csr::MCYCLE))
            .w(csrr(A5, csr::CYCLE));
        a.li(T0, 1000)
            .w(csrw(csr::MINSTRET, T0))
            .w(csrr(A6, csr::MINSTRET)) // the write replaces this increment
            .w(csrr(A7, csr::MINSTRET))
            .w(csrw(csr::MCYCLE, ZERO))
            .w(csrr(S2, csr::MCYCLE));
        // A counted loop: 3 instructions x 100.
        a.li(T1, 100).w(csrr(S3, csr::MINSTRET));
        a.label("loop");
        a.w(addi(T1, T1, -1)).w(NOP).bne(T1, ZERO, "loop");
        a.w(csrr(S4, csr::MINSTRET));
    });
    let mut vm = prog.vm(Privilege::Machine);
    let steps = vm.run_to(prog.addr("halt"), 10_000);
    assert_eq!(vm.x(A0), 3, "three instructions retired before");
    assert_eq!(vm.x(A1), vm.x(A0) + 6);
    assert_eq!(vm.x(A2), vm.x(A1) + 11);
    assert_eq!(vm.x(A3), vm.x(A2) + 1);
    assert_eq!(
        vm.x(A4),
        vm.x(A2) + 2,
        "cycle counts retired instructions too"
    );
    assert_eq!(vm.x(A5), vm.x(A2) + 3);
    assert_eq!(vm.x(A6), 1000);
    assert_eq!(vm.x(A7), 1001);
    assert_eq!(vm.x(S2), 0);
    assert_eq!(vm.x(S4), vm.x(S3) + 1 + 300);
    assert_eq!(records(&vm), [(11, 0, prog.addr("start") + 4 * 10)]);
    // The step count includes the ecall; retired does not.
    assert_eq!(vm.hart.steps().0, steps);
    assert_eq!(vm.hart.retired(), steps - 1);
    assert_eq!(vm.hart.state().exceptions, 1);
}

#[test]
fn time_reads_the_bus() {
    let prog = Prog::new(|a| {
        a.w(csrr(A0, csr::TIME));
    });
    let mut vm = prog.vm_with(Privilege::Supervisor, |s| s.csr.mcounteren = 2);
    vm.bus.time = 0x1234_5678_9abc;
    assert_eq!(prog.go(&mut vm), End::Halt);
    assert_eq!(vm.x(A0), 0x1234_5678_9abc);
}

// ---------------------------------------------------------------------------
// PMP
// ---------------------------------------------------------------------------

const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;
const L: u8 = 0x80;
const TOR: u8 = 1 << 3;
const NA4: u8 = 2 << 3;
const NAPOT: u8 = 3 << 3;

fn napot(base: u64, size: u64) -> u64 {
    (base >> 2) | ((size >> 3) - 1)
}

/// A Vm whose PMP is `entries` (cfg, addr) instead of allow-all.
fn pmp_vm(prog: &Prog, p: Privilege, entries: &[(u8, u64)]) -> Vm {
    prog.vm_with(p, |s| {
        s.csr.pmpcfg = [0; 16];
        s.csr.pmpaddr = [0; 16];
        for (k, &(cfg, addr)) in entries.iter().enumerate() {
            s.csr.pmpcfg[k] = cfg;
            s.csr.pmpaddr[k] = addr;
        }
    })
}

#[test]
fn pmp_with_no_entries_denies_s_and_u() {
    let prog = Prog::new(|a| {
        a.w(NOP);
    });
    for p in [Privilege::User, Privilege::Supervisor] {
        let mut vm = pmp_vm(&prog, p, &[]);
        assert_eq!(prog.go(&mut vm), End::MTrap);
        assert_eq!(
            (vm.csr().mcause, vm.csr().mtval),
            (1, prog.addr("start")),
            "{p:?}: instruction access fault"
        );
    }
    let mut vm = pmp_vm(&prog, Privilege::Machine, &[]);
    assert_eq!(prog.go(&mut vm), End::Halt, "M is allowed");
}

#[test]
fn pmp_tor_napot_na4_permissions() {
    // Code: TOR [0, DATA) RWX. DATA page: NAPOT read-only. DATA+0x1000:
    // NA4 read-write word. DATA+0x2000 page: NAPOT RW (no X).
    let entries = [
        (TOR | R | W | X, DATA >> 2),
        (NAPOT | R, napot(DATA, 0x1000)),
        (NA4 | R | W, (DATA + 0x1000) >> 2),
        (NAPOT | R | W, napot(DATA + 0x2000, 0x1000)),
    ];
    let prog = Prog::new(|a| {
        a.li(S0, DATA);
        a.w(ld(A0, S0, 8)); // ok
        a.w(sd(A0, S0, 8)); // store fault
        a.li(S1, DATA + 0x1000);
        a.w(sw(A0, S1, 0)).w(lw(A1, S1, 0)); // ok
        a.w(ld(A2, S1, 0)); // 8 bytes over a 4-byte region: fault
        a.w(lw(A3, S1, 4)); // outside every entry: fault
        a.li(S2, DATA + 0x2000);
        a.w(sd(A0, S2, 0)); // ok
        a.w(jalr(RA, S2, 0)); // fetch from a non-X region: fault
    });
    for p in [Privilege::User, Privilege::Supervisor] {
        let mut vm = pmp_vm(&prog, p, &entries);
        vm.edit(|s| s.csr.mtvec = prog.addr("mrec"));
        vm.bus.write_u64(DATA + 8, 0x55);
        // The handler resumes after the faulting fetch, at DATA + 0x2004.
        vm.run_to(DATA + 0x2004, 1000);
        let rec = records(&vm);
        assert_eq!(rec.len(), 4, "{p:?}: {rec:x?}");
        assert_eq!((rec[0].0, rec[0].1), (7, DATA + 8));
        assert_eq!((rec[1].0, rec[1].1), (5, DATA + 0x1000));
        assert_eq!((rec[2].0, rec[2].1), (5, DATA + 0x1004));
        assert_eq!(
            (rec[3].0, rec[3].1, rec[3].2),
            (1, DATA + 0x2000, DATA + 0x2000)
        );
        assert_eq!(vm.x(A0), 0x55);
        assert_eq!(vm.x(A1), 0x55);
        assert_eq!(vm.bus.read_u64(DATA + 8), 0x55);
        assert_eq!(vm.bus.read_u64(DATA + 0x2000), 0x55);
    }
}

#[test]
fn pmp_locked_entries_bind_m_mode_and_freeze() {
    let entries = [
        (NAPOT | R | L, napot(DATA, 0x1000)),      // locked read-only
        (NAPOT | R, napot(DATA + 0x1000, 0x1000)), // unlocked read-only
    ];
    let prog = Prog::new(|a| {
        a.li(S0, DATA);
        a.w(sd(ZERO, S0, 0)); // locked: M faults
        a.li(S1, DATA + 0x1000);
        a.w(sd(S0, S1, 0)); // unlocked: M ignores it
        // Locked entries do not change.
        a.li(T0, 0x1f1f)
            .w(csrw(csr::PMPCFG0, T0))
            .w(csrr(A0, csr::PMPCFG0));
        a.w(csrw(csr::PMPADDR0, ZERO)).w(csrr(A1, csr::PMPADDR0));
        a.w(csrw(csr::PMPADDR0 + 1, ZERO))
            .w(csrr(A2, csr::PMPADDR0 + 1));
    });
    let mut vm = pmp_vm(&prog, Privilege::Machine, &entries);
    vm.edit(|s| s.csr.mtvec = prog.addr("mrec"));
    vm.run_to(prog.addr("halt"), 1000);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(7, DATA)]
    );
    assert_eq!(vm.bus.read_u64(DATA + 0x1000), DATA);
    assert_eq!(vm.x(A0), 0x1f00 | u64::from(NAPOT | R | L));
    assert_eq!(vm.x(A1), napot(DATA, 0x1000));
    assert_eq!(vm.x(A2), 0);
}

#[test]
fn pmp_changes_apply_at_once_under_mprv() {
    // M-mode with MPRV = 1, MPP = S: loads are checked as S accesses.
    let prog = Prog::new(|a| {
        a.li(S0, DATA).w(ld(A0, S0, 0)); // allowed (and cached)
        a.li(T0, u64::from(TOR | R | W | X))
            .w(csrw(csr::PMPCFG0, T0)); // entry 1 now OFF
        a.w(ld(A1, S0, 0)); // must fault now
    });
    let entries = [
        (TOR | R | W | X, DATA >> 2),
        (NAPOT | R, napot(DATA, 0x1000)),
    ];
    let mut vm = pmp_vm(&prog, Privilege::Machine, &entries);
    vm.edit(|s| {
        s.csr.mtvec = prog.addr("mrec");
        s.csr.mstatus |= MPRV | (1 << MPP_SHIFT);
    });
    vm.bus.write_u64(DATA, 77);
    vm.run_to(prog.addr("halt"), 1000);
    assert_eq!(vm.x(A0), 77);
    assert_eq!(
        records(&vm).iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(5, DATA)]
    );
}

/// With `set_stop_on_user_switch`, `run` stops right after every trap out
/// of user mode (a system call, a load fault, a CSR access a block calls
/// the interpreter for) and every return to it (the recorder ends a chunk
/// there), at the same steps in both engines and with the same end state
/// as a run that never stops, whatever the budgets (a switch on a run's
/// last step counts too).
#[test]
fn runs_stop_after_each_switch_into_and_out_of_user_mode() {
    use samsara_cpu::StopReason;
    // U-mode: 40 rounds of a system call, a load from no memory (an access
    // fault), a read of an M-mode CSR (illegal) and a system call again, a
    // few instructions apart; the M-mode handler (`mrec`) records the trap
    // and returns past the instruction.
    let prog = Prog::new(|a| {
        a.li(A0, 0).li(A1, 40);
        a.label("loop")
            .w(addi(A0, A0, 1))
            .w(addi(A2, A0, 3))
            .w(ECALL)
            .label("after-call")
            .w(xor(A3, A2, A0))
            .w(ld(A4, ZERO, 16))
            .label("after-fault")
            .w(add(A3, A3, A4))
            .w(csrr(A5, csr::MSTATUS))
            // Interpreted: the translated block ends with the CSR read.
            .label("after-csr")
            .w(ECALL)
            .label("after-second-call")
            .w(add(A3, A3, A5))
            .bne(A0, A1, "loop");
    });
    let run = |translate: bool, stop: bool| {
        let mrec = prog.addr("mrec");
        let mut vm = prog.vm_with(Privilege::User, |s| s.csr.mtvec = mrec);
        vm.hart.set_translator(translate);
        vm.hart.set_translator_tuning(1, false);
        vm.hart.set_stop_on_user_switch(stop);
        let mut stops = Vec::new();
        // To the same step in every run (the halt loop goes on forever),
        // in runs of 1 to 7 steps (a fixed pseudo-random sequence), so
        // that switches fall on runs' last steps too.
        let mut lcg = 1u64;
        while vm.hart.steps().0 < 5_000 {
            lcg = lcg
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let budget = (1 + (lcg >> 33) % 7).min(5_000 - vm.hart.steps().0);
            match vm.hart.run(&mut vm.bus, budget) {
                StopReason::UserSwitch => {
                    stops.push((vm.hart.steps().0, vm.hart.pc().raw(), vm.hart.privilege()))
                }
                StopReason::StepLimit => {}
                other => panic!("{other:?}"),
            }
        }
        (vm.hart.snapshot(), stops)
    };
    let (plain, none) = run(false, false);
    assert!(none.is_empty());
    let backs = [
        prog.addr("after-call"),
        prog.addr("after-fault"),
        prog.addr("after-csr"),
        prog.addr("after-second-call"),
    ];
    for translate in [false, true] {
        let (state, stops) = run(translate, true);
        assert_eq!(state, plain, "translate {translate}: the same run");
        assert_eq!(stops.len(), 8 * 40, "translate {translate}");
        for (k, pair) in stops.chunks(2).enumerate() {
            let (into, back) = (pair[0], pair[1]);
            let at = format!("translate {translate}, trap {k}");
            assert_eq!(
                (into.1, into.2),
                (prog.addr("mrec"), Privilege::Machine),
                "{at}"
            );
            assert_eq!((back.1, back.2), (backs[k % 4], Privilege::User), "{at}");
            // The handler is 10 instructions, mret included.
            assert_eq!(back.0 - into.0, 10, "{at}");
        }
    }
}
