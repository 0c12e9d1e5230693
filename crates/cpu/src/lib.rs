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
mod mmu;
mod pmp;
mod state;
mod tlb;
mod trap;

pub use hart::{Hart, StopReason};
pub use state::{CsrFile, HartState, PMP_ENTRIES, Privilege, Reservation};
pub use trap::Exception;
