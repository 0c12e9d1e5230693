//! Zicsr, Zifencei and the privileged instructions.

use samsara_isa::{Inst, Op};

use crate::bus::Bus;
use crate::csr::{WriteEffect, mstatus};
use crate::hart::{ExecError, Flow, Hart};
use crate::state::Privilege;
use crate::trap::Exception;

impl Hart {
    fn illegal(i: Inst) -> ExecError {
        Exception::IllegalInstruction(u64::from(i.raw)).into()
    }

    /// csrrw/csrrs/csrrc and their immediate forms.
    pub(crate) fn exec_csr<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Result<Flow, ExecError> {
        let csr = (i.imm as u32 & 0xfff) as u16;
        let operand = match i.op {
            Op::Csrrwi | Op::Csrrsi | Op::Csrrci => u64::from(i.rs1),
            _ => self.state.x[usize::from(i.rs1 & 31)],
        };
        // csrrs/csrrc with x0 / zero immediate do not write (and so may
        // target read-only CSRs).
        let writes = match i.op {
            Op::Csrrw | Op::Csrrwi => true,
            _ => i.rs1 != 0,
        };
        let min_privilege = (csr >> 8) & 3;
        if u64::from(min_privilege) > self.state.privilege.bits() || min_privilege == 2 {
            return Err(Self::illegal(i));
        }
        if writes && csr >> 10 == 3 {
            return Err(Self::illegal(i));
        }
        let old = self.csr_read(bus, csr).ok_or_else(|| Self::illegal(i))?;
        let mut flow = Flow::Continue;
        if writes {
            let new = match i.op {
                Op::Csrrw | Op::Csrrwi => operand,
                Op::Csrrs | Op::Csrrsi => self.csr_rmw_base(csr, old) | operand,
                _ => self.csr_rmw_base(csr, old) & !operand,
            };
            match self.csr_write(csr, new) {
                None => return Err(Self::illegal(i)),
                Some(WriteEffect::CheckInterrupts) => flow = Flow::CheckInterrupts,
                Some(WriteEffect::None) => {}
            }
        }
        self.state.x[usize::from(i.rd & 31)] = old;
        self.state.pc = self.state.pc.wrapping_add(u64::from(i.len));
        Ok(flow)
    }

    /// ecall, ebreak, mret, sret, wfi, sfence.vma, fence.i.
    pub(crate) fn exec_system(&mut self, i: Inst) -> Result<Flow, ExecError> {
        let p = self.state.privilege;
        let tsr_tvm_tw = self.state.csr.mstatus;
        let next = self.state.pc.wrapping_add(u64::from(i.len));
        match i.op {
            Op::Ecall => Err(match p {
                Privilege::User => Exception::EcallFromU,
                Privilege::Supervisor => Exception::EcallFromS,
                Privilege::Machine => Exception::EcallFromM,
            }
            .into()),
            Op::Ebreak => Err(Exception::Breakpoint(self.state.pc).into()),
            Op::Mret => {
                if p != Privilege::Machine {
                    return Err(Self::illegal(i));
                }
                self.do_mret();
                Ok(Flow::CheckInterrupts)
            }
            Op::Sret => {
                if p == Privilege::User
                    || (p == Privilege::Supervisor && tsr_tvm_tw & mstatus::TSR != 0)
                {
                    return Err(Self::illegal(i));
                }
                self.do_sret();
                Ok(Flow::CheckInterrupts)
            }
            Op::Wfi => {
                if p == Privilege::User
                    || (p == Privilege::Supervisor && tsr_tvm_tw & mstatus::TW != 0)
                {
                    return Err(Self::illegal(i));
                }
                self.state.pc = next;
                Ok(Flow::Wfi)
            }
            Op::SfenceVma => {
                if p == Privilege::User
                    || (p == Privilege::Supervisor && tsr_tvm_tw & mstatus::TVM != 0)
                {
                    return Err(Self::illegal(i));
                }
                if i.rs1 == 0 {
                    self.flush_all_caches();
                } else {
                    // One address (Linux's page-at-a-time flushes): the
                    // entries its leaf made, in every set; decoded
                    // instructions are tied to no mapping, so they go.
                    self.tlb.flush_page(self.state.x[usize::from(i.rs1)]);
                    self.dcache.invalidate();
                }
                self.state.pc = next;
                Ok(Flow::Continue)
            }
            Op::FenceI => {
                if !self.fence_i_keeps_code {
                    self.invalidate_code();
                }
                self.state.pc = next;
                Ok(Flow::Continue)
            }
            _ => Err(Self::illegal(i)),
        }
    }
}
