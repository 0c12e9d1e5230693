//! The hart's architectural state as plain data.
//!
//! Everything record/replay needs to checkpoint, compare or digest lives in
//! [`HartState`]; the hart's caches (TLB, decode cache) are derived from it
//! and are rebuilt on demand after a restore.

use samsara_types::Fnv1a;

/// Privilege mode.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(u8)]
pub enum Privilege {
    /// U-mode.
    User = 0,
    /// S-mode.
    Supervisor = 1,
    /// M-mode (the reset mode).
    #[default]
    Machine = 3,
}

impl Privilege {
    /// The 2-bit encoding used in mstatus.MPP and CSR addresses.
    #[inline]
    pub const fn bits(self) -> u64 {
        self as u64
    }

    /// Decodes a 2-bit privilege field; the reserved value 2 is `None`.
    #[inline]
    pub const fn from_bits(bits: u64) -> Option<Privilege> {
        match bits & 3 {
            0 => Some(Privilege::User),
            1 => Some(Privilege::Supervisor),
            3 => Some(Privilege::Machine),
            _ => None,
        }
    }
}

/// An LR reservation: the guest-physical address and width reserved and the
/// value LR loaded (SC is a host compare-exchange against it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Reservation {
    /// Guest-physical address of the reserved word.
    pub paddr: u64,
    /// 4 (lr.w) or 8 (lr.d).
    pub size: u8,
    /// The value LR loaded (zero-extended for lr.w).
    pub value: u64,
}

/// Number of PMP entries implemented.
pub const PMP_ENTRIES: usize = 16;

/// The CSR file (only the CSRs with state; constant CSRs are computed).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct CsrFile {
    /// mstatus, including FS; SD is computed on read. sstatus is a view.
    pub mstatus: u64,
    /// Exceptions delegated to S-mode.
    pub medeleg: u64,
    /// Interrupts delegated to S-mode.
    pub mideleg: u64,
    /// Interrupt enables (sie is a view).
    pub mie: u64,
    /// Software-writable interrupt-pending bits (SSIP, STIP, SEIP); device
    /// lines from the bus are ORed in on read.
    pub mip: u64,
    /// M trap vector (base | mode).
    pub mtvec: u64,
    /// M counter enables.
    pub mcounteren: u64,
    /// M scratch.
    pub mscratch: u64,
    /// M exception PC.
    pub mepc: u64,
    /// M trap cause.
    pub mcause: u64,
    /// M trap value.
    pub mtval: u64,
    /// S trap vector.
    pub stvec: u64,
    /// S counter enables.
    pub scounteren: u64,
    /// S scratch.
    pub sscratch: u64,
    /// S exception PC.
    pub sepc: u64,
    /// S trap cause.
    pub scause: u64,
    /// S trap value.
    pub stval: u64,
    /// Address translation and protection.
    pub satp: u64,
    /// Dynamic rounding mode (fcsr[7:5]).
    pub frm: u8,
    /// Accrued FP exception flags (fcsr[4:0]).
    pub fflags: u8,
    /// PMP configuration bytes, one per entry.
    pub pmpcfg: [u8; PMP_ENTRIES],
    /// PMP address registers (physical address >> 2).
    pub pmpaddr: [u64; PMP_ENTRIES],
    /// `minstret = retired + instret_offset` (wrapping), so writes to
    /// minstret work while the retired count stays derived from `steps`.
    pub instret_offset: u64,
    /// `mcycle = retired + cycle_offset` (wrapping): cycles are counted in
    /// instructions, not time.
    pub cycle_offset: u64,
}

/// Plain architectural state of one hart.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct HartState {
    /// Integer registers; `x[0]` is always 0.
    pub x: [u64; 32],
    /// FP registers (singles NaN-boxed).
    pub f: [u64; 32],
    /// Program counter.
    pub pc: u64,
    /// Current privilege mode.
    pub privilege: Privilege,
    /// mhartid.
    pub hart_id: u64,
    /// CSRs.
    pub csr: CsrFile,
    /// LR reservation, if any.
    pub reservation: Option<Reservation>,
    /// Steps executed: instructions that retired or raised an exception.
    pub steps: u64,
    /// Of `steps`, how many raised an exception (did not retire).
    pub exceptions: u64,
}

impl HartState {
    /// Reset state: M-mode, `pc = reset_pc`, everything else zero.
    pub fn reset(hart_id: u64, reset_pc: u64) -> HartState {
        HartState {
            x: [0; 32],
            f: [0; 32],
            pc: reset_pc,
            privilege: Privilege::Machine,
            hart_id,
            csr: CsrFile::default(),
            reservation: None,
            steps: 0,
            exceptions: 0,
        }
    }

    /// Instructions retired (steps that did not raise an exception).
    #[inline]
    pub fn retired(&self) -> u64 {
        self.steps.wrapping_sub(self.exceptions)
    }

    /// A digest of the whole state with a fixed algorithm (FNV-1a,
    /// [`Fnv1a::write_u64`], over the fields in declaration order), stable across runs,
    /// builds and machines — unlike `std`'s `DefaultHasher`.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv1a::new();
        self.x.iter().for_each(|&v| h.write_u64(v));
        self.f.iter().for_each(|&v| h.write_u64(v));
        h.write_u64(self.pc);
        h.write_u64(self.privilege.bits());
        h.write_u64(self.hart_id);
        let c = &self.csr;
        for v in [
            c.mstatus,
            c.medeleg,
            c.mideleg,
            c.mie,
            c.mip,
            c.mtvec,
            c.mcounteren,
            c.mscratch,
            c.mepc,
            c.mcause,
            c.mtval,
            c.stvec,
            c.scounteren,
            c.sscratch,
            c.sepc,
            c.scause,
            c.stval,
            c.satp,
            u64::from(c.frm),
            u64::from(c.fflags),
        ] {
            h.write_u64(v);
        }
        c.pmpcfg.iter().for_each(|&v| h.write_u64(u64::from(v)));
        c.pmpaddr.iter().for_each(|&v| h.write_u64(v));
        h.write_u64(c.instret_offset);
        h.write_u64(c.cycle_offset);
        match self.reservation {
            None => h.write_u64(0),
            Some(r) => {
                h.write_u64(1);
                h.write_u64(r.paddr);
                h.write_u64(u64::from(r.size));
                h.write_u64(r.value);
            }
        }
        h.write_u64(self.steps);
        h.write_u64(self.exceptions);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Traces store these digests: the algorithm must never change. The
    /// values were computed by the original implementation.
    #[test]
    fn digest_is_pinned() {
        let mut s = HartState::reset(3, 0x8000_0000);
        assert_eq!(s.digest(), 0xd485_66f5_d74b_5145);
        for (i, x) in s.x.iter_mut().enumerate().skip(1) {
            *x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        s.csr.satp = 8 << 60 | 0x8_0123;
        s.reservation = Some(Reservation {
            paddr: 0x8000_1000,
            size: 8,
            value: 42,
        });
        s.steps = 1_000_003;
        assert_eq!(s.digest(), 0xc13f_647a_504f_5ab4);
    }
}
