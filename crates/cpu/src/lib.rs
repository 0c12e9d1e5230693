//! An RV64GC hart: decoder-driven interpreter with M/S/U privilege, Sv39 and
//! Sv48 paging with hardware A/D updates, PMP, a software TLB and a decoded
//! instruction cache.
//!
//! The hart sees the machine only through [`bus::Bus`]; the execution mode
//! (run, record, replay) is the `Bus` implementation. See `docs/cpu.md`.

pub mod bus;
mod csr;
mod exec;
mod hart;
#[cfg(target_arch = "x86_64")]
mod jit;
mod mmu;
mod pmp;
mod state;
mod tlb;
mod trap;

pub use hart::{Hart, StopReason};

/// How harts execute guest code (`--cpu`). Recordings do not depend on it:
/// a trace recorded with one replays on the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CpuEngine {
    /// Every instruction interpreted: the reference.
    #[default]
    Interpreter,
    /// Hot code translated to host code (x86-64; elsewhere the
    /// interpreter).
    Translator,
}
#[cfg(target_arch = "x86_64")]
pub use jit::JitStats;
pub use state::{CsrFile, HartState, PMP_ENTRIES, Privilege, Reservation};
pub use trap::Exception;
