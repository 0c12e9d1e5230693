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

/// What a hart's block translator did (`Hart::translator_stats`); harts'
/// counters add up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslatorStats {
    /// Blocks translated.
    pub blocks: u64,
    /// Guest instructions in them.
    pub instructions_translated: u64,
    /// Host code bytes emitted.
    pub code_bytes: u64,
    /// Times the code space filled and was replaced.
    pub flushes: u64,
    /// Nanoseconds spent translating (estimated from one translation in
    /// sixteen).
    pub translate_nanos: u64,
    /// Guest steps run in translated code.
    pub steps_translated: u64,
    /// Blocks of an earlier code generation found unchanged and kept.
    pub revalidated: u64,
    /// Blocks dropped because their code changed or their page now maps
    /// to another host page.
    pub dropped: u64,
}

impl std::ops::AddAssign for TranslatorStats {
    fn add_assign(&mut self, o: Self) {
        self.blocks += o.blocks;
        self.instructions_translated += o.instructions_translated;
        self.code_bytes += o.code_bytes;
        self.flushes += o.flushes;
        self.translate_nanos += o.translate_nanos;
        self.steps_translated += o.steps_translated;
        self.revalidated += o.revalidated;
        self.dropped += o.dropped;
    }
}
pub use state::{CsrFile, HartState, PMP_ENTRIES, Privilege, Reservation};
pub use trap::Exception;
