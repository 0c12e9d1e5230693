//! A test-program scaffold: a body plus halting and recording trap
//! handlers, run in a chosen privilege mode.

#![allow(dead_code)]

use samsara_cpu::{HartState, Privilege};

use super::asm::*;
use super::{RAM_BASE, VM_RAM, Vm, pmp_allow_all};

/// Where the recording trap handlers store (cause, tval, epc) triples.
pub const RECORD: u64 = RAM_BASE + 0x3_0000;

/// Where a run stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    Halt,
    MTrap,
    STrap,
}

/// A test program: `body` at `start`, then `halt`; M and S trap handlers
/// that halt (`mtrap`, `strap`) and recording handlers (`mrec`, `srec`)
/// that append (cause, tval, epc) at s11 and skip the trapping (4-byte)
/// instruction.
pub struct Prog {
    pub a: Asm,
}

impl Prog {
    pub fn new(body: impl FnOnce(&mut Asm)) -> Prog {
        let mut a = Asm::new(RAM_BASE);
        a.label("start");
        body(&mut a);
        a.halt("halt");
        a.align(4);
        a.halt("mtrap");
        a.halt("strap");
        a.label("mrec");
        a.w(csrr(T6, csr::MCAUSE))
            .w(sd(T6, S11, 0))
            .w(csrr(T6, csr::MTVAL))
            .w(sd(T6, S11, 8))
            .w(csrr(T6, csr::MEPC))
            .w(sd(T6, S11, 16))
            .w(addi(S11, S11, 24))
            .w(addi(T6, T6, 4))
            .w(csrw(csr::MEPC, T6))
            .w(MRET);
        a.label("srec");
        a.w(csrr(T6, csr::SCAUSE))
            .w(sd(T6, S11, 0))
            .w(csrr(T6, csr::STVAL))
            .w(sd(T6, S11, 8))
            .w(csrr(T6, csr::SEPC))
            .w(sd(T6, S11, 16))
            .w(addi(S11, S11, 24))
            .w(addi(T6, T6, 4))
            .w(csrw(csr::SEPC, T6))
            .w(SRET);
        Prog { a }
    }

    pub fn addr(&self, label: &str) -> u64 {
        self.a.addr(label)
    }

    /// A Vm at `start` in `privilege` with halting handlers, PMP open, FS on.
    pub fn vm(&self, privilege: Privilege) -> Vm {
        self.vm_with(privilege, |_| {})
    }

    pub fn vm_with(&self, privilege: Privilege, f: impl FnOnce(&mut HartState)) -> Vm {
        let mut vm = Vm::with_ram(&self.a, VM_RAM);
        let (mtrap, strap) = (self.addr("mtrap"), self.addr("strap"));
        vm.edit(|s| {
            s.privilege = privilege;
            s.csr.mtvec = mtrap;
            s.csr.stvec = strap;
            s.csr.mstatus |= 1 << 13;
            s.x[S11 as usize] = RECORD;
            pmp_allow_all(s);
            f(s);
        });
        vm
    }

    pub fn go(&self, vm: &mut Vm) -> End {
        let ends = [self.addr("halt"), self.addr("mtrap"), self.addr("strap")];
        [End::Halt, End::MTrap, End::STrap][vm.run_to_any(&ends, 10_000)]
    }

    /// Runs in `privilege` and returns the Vm and where it stopped.
    pub fn run(&self, privilege: Privilege) -> (Vm, End) {
        let mut vm = self.vm(privilege);
        let end = self.go(&mut vm);
        (vm, end)
    }
}

/// The (cause, tval, epc) triples the recording handlers stored.
pub fn records(vm: &Vm) -> Vec<(u64, u64, u64)> {
    let n = (vm.x(S11) - RECORD) / 24;
    (0..n)
        .map(|k| {
            let at = RECORD + 24 * k;
            (
                vm.bus.read_u64(at),
                vm.bus.read_u64(at + 8),
                vm.bus.read_u64(at + 16),
            )
        })
        .collect()
}
