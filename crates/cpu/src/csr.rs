//! Control and status registers: addresses, field layouts, access rules.

use crate::bus::Bus;
use crate::hart::Hart;
use crate::state::{PMP_ENTRIES, Privilege};
use crate::trap::irq;

/// mstatus/sstatus fields.
pub mod mstatus {
    /// S interrupt enable.
    pub const SIE: u64 = 1 << 1;
    /// M interrupt enable.
    pub const MIE: u64 = 1 << 3;
    /// S previous interrupt enable.
    pub const SPIE: u64 = 1 << 5;
    /// M previous interrupt enable.
    pub const MPIE: u64 = 1 << 7;
    /// S previous privilege.
    pub const SPP: u64 = 1 << 8;
    /// Shift of the M previous privilege field.
    pub const MPP_SHIFT: u32 = 11;
    /// M previous privilege.
    pub const MPP: u64 = 3 << MPP_SHIFT;
    /// Shift of the FP state field.
    pub const FS_SHIFT: u32 = 13;
    /// FP state (Off, Initial, Clean, Dirty).
    pub const FS: u64 = 3 << FS_SHIFT;
    /// FS = Dirty.
    pub const FS_DIRTY: u64 = 3 << FS_SHIFT;
    /// Modify privilege (loads/stores use MPP's translation and protection).
    pub const MPRV: u64 = 1 << 17;
    /// Permit supervisor access to user pages.
    pub const SUM: u64 = 1 << 18;
    /// Make executable pages readable.
    pub const MXR: u64 = 1 << 19;
    /// Trap virtual memory (satp, sfence.vma) in S-mode.
    pub const TVM: u64 = 1 << 20;
    /// Timeout wait: WFI in S/U traps.
    pub const TW: u64 = 1 << 21;
    /// Trap sret in S-mode.
    pub const TSR: u64 = 1 << 22;
    /// UXL and SXL, both read-only 2 (64-bit).
    pub const XLEN_FIELDS: u64 = (2 << 32) | (2 << 34);
    /// State dirty summary (read-only, computed from FS).
    pub const SD: u64 = 1 << 63;
    /// Writable bits of mstatus.
    pub const M_WRITABLE: u64 =
        SIE | MIE | SPIE | MPIE | SPP | MPP | FS | MPRV | SUM | MXR | TVM | TW | TSR;
    /// Bits of mstatus visible through sstatus.
    pub const S_VIEW: u64 = SIE | SPIE | SPP | FS | SUM | MXR | (3 << 32) | SD;
    /// Writable bits through sstatus.
    pub const S_WRITABLE: u64 = SIE | SPIE | SPP | FS | SUM | MXR;
    /// Bits whose change alters data-access translation/protection.
    pub const TRANSLATION: u64 = MPRV | MPP | SUM | MXR;
}

/// CSR addresses used by the hart.
pub mod addr {
    #![allow(missing_docs)]
    pub const FFLAGS: u16 = 0x001;
    pub const FRM: u16 = 0x002;
    pub const FCSR: u16 = 0x003;
    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10a;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const SATP: u16 = 0x180;
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MENVCFG: u16 = 0x30a;
    pub const MCOUNTINHIBIT: u16 = 0x320;
    pub const MHPMEVENT3: u16 = 0x323;
    pub const MHPMEVENT31: u16 = 0x33f;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const PMPCFG0: u16 = 0x3a0;
    pub const PMPCFG15: u16 = 0x3af;
    pub const PMPADDR0: u16 = 0x3b0;
    pub const PMPADDR63: u16 = 0x3ef;
    pub const TSELECT: u16 = 0x7a0;
    pub const TDATA3: u16 = 0x7a3;
    pub const TINFO: u16 = 0x7a4;
    pub const MCYCLE: u16 = 0xb00;
    pub const MINSTRET: u16 = 0xb02;
    pub const MHPMCOUNTER3: u16 = 0xb03;
    pub const MHPMCOUNTER31: u16 = 0xb1f;
    pub const CYCLE: u16 = 0xc00;
    pub const TIME: u16 = 0xc01;
    pub const INSTRET: u16 = 0xc02;
    pub const HPMCOUNTER31: u16 = 0xc1f;
    pub const MVENDORID: u16 = 0xf11;
    pub const MARCHID: u16 = 0xf12;
    pub const MIMPID: u16 = 0xf13;
    pub const MHARTID: u16 = 0xf14;
    pub const MCONFIGPTR: u16 = 0xf15;
}

/// misa: RV64 with A, C, D, F, I, M, S, U.
pub const MISA: u64 = (2 << 62)
    | (1 << 0)
    | (1 << 2)
    | (1 << 3)
    | (1 << 5)
    | (1 << 8)
    | (1 << 12)
    | (1 << 18)
    | (1 << 20);

/// medeleg bits that can be set: every defined exception except ecall from M.
const MEDELEG_WRITABLE: u64 = 0xb3ff;

/// satp modes.
pub mod satp {
    /// No translation.
    pub const BARE: u64 = 0;
    /// 39-bit virtual addresses, 3 levels.
    pub const SV39: u64 = 8;
    /// 48-bit virtual addresses, 4 levels.
    pub const SV48: u64 = 9;
    /// PPN field mask.
    pub const PPN: u64 = (1 << 44) - 1;
    /// ASID field (stored, not used to tag the TLB: every satp write flushes).
    pub const ASID: u64 = 0xffff << 44;
}

/// PMP configuration bits.
pub mod pmpcfg {
    /// Read permission.
    pub const R: u8 = 1;
    /// Write permission.
    pub const W: u8 = 2;
    /// Execute permission.
    pub const X: u8 = 4;
    /// Address-matching mode field.
    pub const A: u8 = 3 << 3;
    /// Locked (applies to M-mode too, and freezes the entry).
    pub const L: u8 = 0x80;
    /// Address-matching mode: top of range.
    pub const TOR: u8 = 1 << 3;
    /// Naturally aligned 4-byte region.
    pub const NA4: u8 = 2 << 3;
    /// Naturally aligned power-of-two region.
    pub const NAPOT: u8 = 3 << 3;
}

/// What a CSR read takes from outside the hart.
trait CsrInputs {
    /// The device interrupt lines (`mip` layout).
    fn lines(&mut self) -> u64;
    /// The `time` CSR; `None`: not known.
    fn time(&mut self) -> Option<u64>;
}

/// A CSR instruction's inputs: the bus.
struct BusInputs<'b, B>(&'b mut B);

impl<B: Bus> CsrInputs for BusInputs<'_, B> {
    #[inline]
    fn lines(&mut self) -> u64 {
        self.0.interrupt_lines()
    }

    #[inline]
    fn time(&mut self) -> Option<u64> {
        Some(self.0.read_time())
    }
}

/// A peek's inputs: no lines, `time` as given.
struct NoInputs {
    time: Option<u64>,
}

impl CsrInputs for NoInputs {
    fn lines(&mut self) -> u64 {
        0
    }

    fn time(&mut self) -> Option<u64> {
        self.time
    }
}

/// What a successful CSR write requires of the hart afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WriteEffect {
    /// Nothing.
    None,
    /// An interrupt may have become deliverable.
    CheckInterrupts,
}

impl Hart {
    /// mstatus as software reads it (SD, UXL, SXL filled in).
    pub(crate) fn read_mstatus(&self) -> u64 {
        let m = self.state.csr.mstatus;
        let sd = if m & mstatus::FS == mstatus::FS_DIRTY {
            mstatus::SD
        } else {
            0
        };
        m | mstatus::XLEN_FIELDS | sd
    }

    fn fs_enabled(&self) -> bool {
        self.state.csr.mstatus & mstatus::FS != 0
    }

    /// Whether counter `index` (0 = cycle, 1 = time, 2 = instret, 3.. = hpm)
    /// is readable at the current privilege.
    fn counter_allowed(&self, index: u16) -> bool {
        let bit = 1u64 << (index & 31);
        match self.state.privilege {
            Privilege::Machine => true,
            Privilege::Supervisor => self.state.csr.mcounteren & bit != 0,
            Privilege::User => {
                self.state.csr.mcounteren & bit != 0 && self.state.csr.scounteren & bit != 0
            }
        }
    }

    /// Reads CSR `csr`; `None` means the access is illegal (nonexistent CSR,
    /// or disabled by FS/TVM/counter enables). The privilege-level check of
    /// the address itself is done by the caller.
    pub(crate) fn csr_read<B: Bus>(&mut self, bus: &mut B, csr: u16) -> Option<u64> {
        self.csr_value::<true>(&mut BusInputs(bus), csr)
    }

    /// The value CSR `csr` reads as, with no privilege, FS, TVM or
    /// counter-enable check and no side effect; `None` for CSRs this hart
    /// does not implement. The inputs a CSR read takes from the bus are
    /// not here: `mip`/`sip` show the software-writable bits only (not the
    /// device lines), and `time` is `None` (read CLINT mtime instead).
    pub fn peek_csr(&self, csr: u16) -> Option<u64> {
        self.csr_value::<false>(&mut NoInputs { time: None }, csr)
    }

    /// CSR `csr`'s value, its inputs from `inputs`; `CHECKED`: the access
    /// checks of an instruction (FS, TVM, counter enables).
    #[inline(always)]
    fn csr_value<const CHECKED: bool>(&self, inputs: &mut impl CsrInputs, csr: u16) -> Option<u64> {
        use addr::*;
        let c = &self.state.csr;
        let v = match csr {
            FFLAGS | FRM | FCSR if CHECKED && !self.fs_enabled() => return None,
            FFLAGS => u64::from(c.fflags),
            FRM => u64::from(c.frm),
            FCSR => (u64::from(c.frm) << 5) | u64::from(c.fflags),
            SSTATUS => self.read_mstatus() & mstatus::S_VIEW,
            SIE => c.mie & c.mideleg & irq::S_LEVEL,
            STVEC => c.stvec,
            SCOUNTEREN => c.scounteren,
            SENVCFG | MENVCFG | MCONFIGPTR | MVENDORID | MARCHID | MIMPID | MCOUNTINHIBIT => 0,
            SSCRATCH => c.sscratch,
            SEPC => c.sepc,
            SCAUSE => c.scause,
            STVAL => c.stval,
            SIP => (c.mip | inputs.lines()) & c.mideleg & irq::S_LEVEL,
            SATP => {
                if CHECKED
                    && self.state.privilege == Privilege::Supervisor
                    && c.mstatus & mstatus::TVM != 0
                {
                    return None;
                }
                c.satp
            }
            MSTATUS => self.read_mstatus(),
            MISA => crate::csr::MISA,
            MEDELEG => c.medeleg,
            MIDELEG => c.mideleg,
            MIE => c.mie,
            MTVEC => c.mtvec,
            MCOUNTEREN => c.mcounteren,
            MHPMEVENT3..=MHPMEVENT31 => 0,
            MSCRATCH => c.mscratch,
            MEPC => c.mepc,
            MCAUSE => c.mcause,
            MTVAL => c.mtval,
            MIP => (c.mip | inputs.lines()) & irq::ALL,
            PMPCFG0..=PMPCFG15 => {
                let n = usize::from(csr - PMPCFG0);
                if n % 2 == 1 {
                    return None;
                }
                let first = n * 4;
                (0..8).fold(0u64, |acc, k| {
                    let cfg = c.pmpcfg.get(first + k).copied().unwrap_or(0);
                    acc | (u64::from(cfg) << (8 * k))
                })
            }
            PMPADDR0..=PMPADDR63 => c
                .pmpaddr
                .get(usize::from(csr - PMPADDR0))
                .copied()
                .unwrap_or(0),
            MCYCLE => self.state.retired().wrapping_add(c.cycle_offset),
            MINSTRET => self.state.retired().wrapping_add(c.instret_offset),
            MHPMCOUNTER3..=MHPMCOUNTER31 => 0,
            CYCLE..=HPMCOUNTER31 => {
                if CHECKED && !self.counter_allowed(csr - CYCLE) {
                    return None;
                }
                match csr {
                    CYCLE => self.state.retired().wrapping_add(c.cycle_offset),
                    TIME => inputs.time()?,
                    INSTRET => self.state.retired().wrapping_add(c.instret_offset),
                    _ => 0,
                }
            }
            MHARTID => self.state.hart_id,
            // Debug triggers (Sdtrig): none implemented. tdata1.type = 0 means
            // "no trigger here" and tinfo = 1 says only that type exists.
            TSELECT..=TDATA3 => 0,
            TINFO => 1,
            _ => return None,
        };
        Some(v)
    }

    /// The CSR addresses this hart implements (what [`Hart::peek_csr`]
    /// answers for; `time` included), in increasing order: for checking a
    /// debugger's target description.
    pub fn implemented_csrs() -> impl Iterator<Item = u16> {
        let hart = Hart::new(samsara_types::HartId(0), samsara_types::GuestVirtAddr(0));
        (0..=0xfffu16).filter(move |&csr| {
            hart.csr_value::<false>(&mut NoInputs { time: Some(0) }, csr)
                .is_some()
        })
    }

    /// The value a csrrs/csrrc read-modify-write of `csr` starts from, given
    /// what the CSR read as. For mip/sip only the software-writable bits
    /// take part: the bus lines ORed into the read value (SEIP from the
    /// interrupt controller, say) must not be latched into the software bits.
    pub(crate) fn csr_rmw_base(&self, csr: u16, read: u64) -> u64 {
        let c = &self.state.csr;
        match csr {
            addr::MIP => c.mip & irq::ALL,
            addr::SIP => c.mip & c.mideleg & irq::S_LEVEL,
            _ => read,
        }
    }

    /// Writes CSR `csr` (already known to exist, be writable and be
    /// accessible: `csr_read` succeeded and the address is not read-only).
    pub(crate) fn csr_write(&mut self, csr: u16, v: u64) -> Option<WriteEffect> {
        use addr::*;
        let mut effect = WriteEffect::None;
        // The value the counters must show after this instruction retires.
        let retired_after = self.state.retired().wrapping_add(1);
        let c = &mut self.state.csr;
        match csr {
            FFLAGS => {
                c.fflags = (v & 0x1f) as u8;
                self.mark_fs_dirty();
            }
            FRM => {
                c.frm = (v & 7) as u8;
                self.mark_fs_dirty();
            }
            FCSR => {
                c.fflags = (v & 0x1f) as u8;
                c.frm = ((v >> 5) & 7) as u8;
                self.mark_fs_dirty();
            }
            SSTATUS => {
                let new = (c.mstatus & !mstatus::S_WRITABLE) | (v & mstatus::S_WRITABLE);
                self.write_mstatus(new);
                effect = WriteEffect::CheckInterrupts;
            }
            SIE => {
                let mask = c.mideleg & irq::S_LEVEL;
                c.mie = (c.mie & !mask) | (v & mask);
                effect = WriteEffect::CheckInterrupts;
            }
            STVEC => c.stvec = legal_tvec(v, c.stvec),
            SCOUNTEREN => c.scounteren = v & 0xffff_ffff,
            SENVCFG | MENVCFG | MCOUNTINHIBIT | MISA | TSELECT..=TDATA3 | TINFO => {}
            MHPMEVENT3..=MHPMEVENT31 | MHPMCOUNTER3..=MHPMCOUNTER31 => {}
            SSCRATCH => c.sscratch = v,
            SEPC => c.sepc = v & !1,
            SCAUSE => c.scause = v,
            STVAL => c.stval = v,
            SIP => {
                let mask = c.mideleg & (1 << irq::SSI);
                c.mip = (c.mip & !mask) | (v & mask);
                effect = WriteEffect::CheckInterrupts;
            }
            SATP => {
                let mode = v >> 60;
                if matches!(mode, satp::BARE | satp::SV39 | satp::SV48) {
                    c.satp = v & ((0xf << 60) | satp::ASID | satp::PPN);
                    self.flush_all_caches();
                }
            }
            MSTATUS => {
                let mut new = (c.mstatus & !mstatus::M_WRITABLE) | (v & mstatus::M_WRITABLE);
                // MPP is WARL: the reserved value 2 leaves the field unchanged.
                if (new & mstatus::MPP) >> mstatus::MPP_SHIFT == 2 {
                    new = (new & !mstatus::MPP) | (c.mstatus & mstatus::MPP);
                }
                self.write_mstatus(new);
                effect = WriteEffect::CheckInterrupts;
            }
            MEDELEG => c.medeleg = v & MEDELEG_WRITABLE,
            MIDELEG => {
                c.mideleg = v & irq::S_LEVEL;
                effect = WriteEffect::CheckInterrupts;
            }
            MIE => {
                c.mie = v & irq::ALL;
                effect = WriteEffect::CheckInterrupts;
            }
            MTVEC => c.mtvec = legal_tvec(v, c.mtvec),
            MCOUNTEREN => c.mcounteren = v & 0xffff_ffff,
            MSCRATCH => c.mscratch = v,
            MEPC => c.mepc = v & !1,
            MCAUSE => c.mcause = v,
            MTVAL => c.mtval = v,
            MIP => {
                let mask = irq::S_LEVEL;
                c.mip = (c.mip & !mask) | (v & mask);
                effect = WriteEffect::CheckInterrupts;
            }
            PMPCFG0..=PMPCFG15 => {
                let first = usize::from(csr - PMPCFG0) * 4;
                for k in 0..8 {
                    let i = first + k;
                    if i >= PMP_ENTRIES || c.pmpcfg[i] & pmpcfg::L != 0 {
                        continue;
                    }
                    let mut cfg = ((v >> (8 * k)) & 0x9f) as u8;
                    // R=0, W=1 is reserved: keep it unreachable.
                    if cfg & (pmpcfg::R | pmpcfg::W) == pmpcfg::W {
                        cfg &= !pmpcfg::W;
                    }
                    c.pmpcfg[i] = cfg;
                }
                self.pmp_changed();
            }
            PMPADDR0..=PMPADDR63 => {
                let i = usize::from(csr - PMPADDR0);
                if i < PMP_ENTRIES {
                    let locked = c.pmpcfg[i] & pmpcfg::L != 0;
                    let next_tor_locked = c
                        .pmpcfg
                        .get(i + 1)
                        .is_some_and(|&n| n & pmpcfg::L != 0 && n & pmpcfg::A == pmpcfg::TOR);
                    if !locked && !next_tor_locked {
                        c.pmpaddr[i] = v & ((1 << 54) - 1);
                        self.pmp_changed();
                    }
                }
            }
            // The write replaces the value the *next* instruction sees: this
            // instruction's own retirement is absorbed into the offset.
            MCYCLE => {
                c.cycle_offset = v.wrapping_sub(retired_after);
            }
            MINSTRET => {
                c.instret_offset = v.wrapping_sub(retired_after);
            }
            _ => return None,
        }
        Some(effect)
    }

    /// Installs a new mstatus value. The bits that shape data-access
    /// translation choose another TLB set (MPRV, MPP, SUM) or, for MXR,
    /// empty the data arrays; fetches and code are not concerned.
    fn write_mstatus(&mut self, new: u64) {
        let old = self.state.csr.mstatus;
        self.state.csr.mstatus = new;
        if (old ^ new) & mstatus::MXR != 0 {
            self.tlb.flush_data();
        }
        if (old ^ new) & mstatus::TRANSLATION != 0 {
            self.select_tlb();
        }
    }

    /// Any write to FP state marks FS dirty (and so SD).
    #[inline]
    pub(crate) fn mark_fs_dirty(&mut self) {
        self.state.csr.mstatus |= mstatus::FS_DIRTY;
    }
}

/// xtvec is WARL: a reserved mode (>= 2) keeps the old mode.
fn legal_tvec(new: u64, old: u64) -> u64 {
    if new & 3 >= 2 {
        (new & !3) | (old & 3)
    } else {
        new
    }
}
