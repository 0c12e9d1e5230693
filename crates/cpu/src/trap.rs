//! Synchronous exceptions, interrupts, and trap entry/return.
//!
//! Guest exceptions are not host errors: they are architectural events that
//! redirect the guest to its trap handler. They are modelled as plain values.

use crate::csr::mstatus;
use crate::hart::Hart;
use crate::state::Privilege;

/// A synchronous exception, with its trap value (`xtval`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Exception {
    /// Cause 0: instruction address misaligned (target address).
    InstructionMisaligned(u64),
    /// Cause 1: instruction access fault (fetch address).
    InstructionAccessFault(u64),
    /// Cause 2: illegal instruction (the instruction bits).
    IllegalInstruction(u64),
    /// Cause 3: breakpoint (address of the ebreak).
    Breakpoint(u64),
    /// Cause 4: load address misaligned.
    LoadMisaligned(u64),
    /// Cause 5: load access fault.
    LoadAccessFault(u64),
    /// Cause 6: store/AMO address misaligned.
    StoreMisaligned(u64),
    /// Cause 7: store/AMO access fault.
    StoreAccessFault(u64),
    /// Cause 8: environment call from U-mode.
    EcallFromU,
    /// Cause 9: environment call from S-mode.
    EcallFromS,
    /// Cause 11: environment call from M-mode.
    EcallFromM,
    /// Cause 12: instruction page fault.
    InstructionPageFault(u64),
    /// Cause 13: load page fault.
    LoadPageFault(u64),
    /// Cause 15: store/AMO page fault.
    StorePageFault(u64),
}

impl Exception {
    /// The `xcause` exception code.
    pub const fn cause(self) -> u64 {
        match self {
            Exception::InstructionMisaligned(_) => 0,
            Exception::InstructionAccessFault(_) => 1,
            Exception::IllegalInstruction(_) => 2,
            Exception::Breakpoint(_) => 3,
            Exception::LoadMisaligned(_) => 4,
            Exception::LoadAccessFault(_) => 5,
            Exception::StoreMisaligned(_) => 6,
            Exception::StoreAccessFault(_) => 7,
            Exception::EcallFromU => 8,
            Exception::EcallFromS => 9,
            Exception::EcallFromM => 11,
            Exception::InstructionPageFault(_) => 12,
            Exception::LoadPageFault(_) => 13,
            Exception::StorePageFault(_) => 15,
        }
    }

    /// The `xtval` value written on trap entry.
    pub const fn tval(self) -> u64 {
        match self {
            Exception::InstructionMisaligned(v)
            | Exception::InstructionAccessFault(v)
            | Exception::IllegalInstruction(v)
            | Exception::Breakpoint(v)
            | Exception::LoadMisaligned(v)
            | Exception::LoadAccessFault(v)
            | Exception::StoreMisaligned(v)
            | Exception::StoreAccessFault(v)
            | Exception::InstructionPageFault(v)
            | Exception::LoadPageFault(v)
            | Exception::StorePageFault(v) => v,
            Exception::EcallFromU | Exception::EcallFromS | Exception::EcallFromM => 0,
        }
    }
}

/// Interrupt cause numbers (bit positions in mip/mie).
pub mod irq {
    /// Supervisor software interrupt.
    pub const SSI: u64 = 1;
    /// Machine software interrupt.
    pub const MSI: u64 = 3;
    /// Supervisor timer interrupt.
    pub const STI: u64 = 5;
    /// Machine timer interrupt.
    pub const MTI: u64 = 7;
    /// Supervisor external interrupt.
    pub const SEI: u64 = 9;
    /// Machine external interrupt.
    pub const MEI: u64 = 11;
    /// Interrupts in decreasing priority order (privileged spec 3.1.9).
    pub const PRIORITY: [u64; 6] = [MEI, MSI, MTI, SEI, SSI, STI];
    /// Every interrupt bit this hart implements.
    pub const ALL: u64 =
        (1 << SSI) | (1 << MSI) | (1 << STI) | (1 << MTI) | (1 << SEI) | (1 << MEI);
    /// The S-level interrupts (delegable, visible in sip/sie).
    pub const S_LEVEL: u64 = (1 << SSI) | (1 << STI) | (1 << SEI);
}

const INTERRUPT_BIT: u64 = 1 << 63;

impl Hart {
    /// The interrupt that would be taken now, if any: pending and enabled
    /// under the current privilege, delegation and global enables, highest
    /// priority first. `lines` are the bus's interrupt lines.
    pub(crate) fn pending_interrupt(&self, lines: u64) -> Option<u64> {
        let s = &self.state;
        let pending = (s.csr.mip | lines) & s.csr.mie & irq::ALL;
        if pending == 0 {
            return None;
        }
        let mstatus = s.csr.mstatus;
        let m_enabled = s.privilege < Privilege::Machine || mstatus & mstatus::MIE != 0;
        let s_enabled = s.privilege < Privilege::Supervisor
            || (s.privilege == Privilege::Supervisor && mstatus & mstatus::SIE != 0);
        let m_pending = if m_enabled {
            pending & !s.csr.mideleg
        } else {
            0
        };
        let s_pending = if s_enabled {
            pending & s.csr.mideleg
        } else {
            0
        };
        // All M-level interrupts outrank all S-level ones.
        for set in [m_pending, s_pending] {
            if let Some(&cause) = irq::PRIORITY.iter().find(|&&c| set & (1 << c) != 0) {
                return Some(cause);
            }
        }
        None
    }

    /// Takes a synchronous exception raised by the instruction at `pc`.
    pub(crate) fn take_exception(&mut self, e: Exception) {
        let deleg = self.state.csr.medeleg;
        self.enter_trap(e.cause(), e.tval(), deleg, false);
    }

    /// Takes interrupt `cause` (the current pc is the return address).
    pub(crate) fn take_interrupt(&mut self, cause: u64) {
        let deleg = self.state.csr.mideleg;
        self.enter_trap(cause, 0, deleg, true);
    }

    fn enter_trap(&mut self, cause: u64, tval: u64, deleg: u64, interrupt: bool) {
        let old = self.state.privilege;
        let pc = self.state.pc;
        let xcause = if interrupt {
            cause | INTERRUPT_BIT
        } else {
            cause
        };
        // A reservation does not survive a trap (allowed by the spec, and
        // it keeps a handler's stores from being "invisible" to an SC).
        self.state.reservation = None;
        let c = &mut self.state.csr;
        let to_s = old <= Privilege::Supervisor && deleg & (1 << cause) != 0;
        let (new_priv, tvec) = if to_s {
            c.sepc = pc;
            c.scause = xcause;
            c.stval = tval;
            let sie = c.mstatus & mstatus::SIE != 0;
            c.mstatus &= !(mstatus::SPIE | mstatus::SIE | mstatus::SPP);
            if sie {
                c.mstatus |= mstatus::SPIE;
            }
            if old == Privilege::Supervisor {
                c.mstatus |= mstatus::SPP;
            }
            (Privilege::Supervisor, c.stvec)
        } else {
            c.mepc = pc;
            c.mcause = xcause;
            c.mtval = tval;
            let mie = c.mstatus & mstatus::MIE != 0;
            c.mstatus &= !(mstatus::MPIE | mstatus::MIE | mstatus::MPP);
            if mie {
                c.mstatus |= mstatus::MPIE;
            }
            c.mstatus |= old.bits() << mstatus::MPP_SHIFT;
            (Privilege::Machine, c.mtvec)
        };
        let base = tvec & !3;
        self.state.pc = if interrupt && tvec & 3 == 1 {
            base.wrapping_add(4 * cause)
        } else {
            base
        };
        self.set_privilege(new_priv);
    }

    /// mret: returns to the mode in MPP.
    pub(crate) fn do_mret(&mut self) {
        let c = &mut self.state.csr;
        let mpp = Privilege::from_bits(c.mstatus >> mstatus::MPP_SHIFT).unwrap_or(Privilege::User);
        let mpie = c.mstatus & mstatus::MPIE != 0;
        c.mstatus &= !(mstatus::MIE | mstatus::MPP);
        c.mstatus |= mstatus::MPIE;
        if mpie {
            c.mstatus |= mstatus::MIE;
        }
        if mpp != Privilege::Machine {
            c.mstatus &= !mstatus::MPRV;
        }
        self.state.pc = c.mepc;
        self.state.reservation = None;
        self.set_privilege(mpp);
    }

    /// sret: returns to the mode in SPP.
    pub(crate) fn do_sret(&mut self) {
        let c = &mut self.state.csr;
        let spp = if c.mstatus & mstatus::SPP != 0 {
            Privilege::Supervisor
        } else {
            Privilege::User
        };
        let spie = c.mstatus & mstatus::SPIE != 0;
        c.mstatus &= !(mstatus::SIE | mstatus::SPP | mstatus::MPRV);
        c.mstatus |= mstatus::SPIE;
        if spie {
            c.mstatus |= mstatus::SIE;
        }
        self.state.pc = c.sepc;
        self.state.reservation = None;
        self.set_privilege(spp);
    }
}
