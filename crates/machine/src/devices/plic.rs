//! The PLIC ("sifive,plic-1.0.0") at 0xC00_0000, laid out as QEMU's `virt`:
//!
//! | offset | register |
//! | --- | --- |
//! | 0x000000 + 4·s | priority of source s (0..7; source 0 reserved) |
//! | 0x001000 + 4·w | pending bits of sources 32w..32w+31 (read-only) |
//! | 0x002000 + 0x80·c + 4·w | enable bits of context c |
//! | 0x200000 + 0x1000·c | priority threshold of context c |
//! | 0x200004 + 0x1000·c | claim (read) / complete (write) of context c |
//!
//! Context 2h is hart h's M-mode (drives MEIP), context 2h+1 its S-mode
//! (drives SEIP). Sources are level-triggered: a source is pending while its
//! line is high and it is not claimed; completing a source whose line is
//! still high makes it pending again (the gateway behaviour of the spec;
//! lowering a line withdraws a pending request, as QEMU does).
//!
//! All state sits behind one mutex; each change recomputes the external
//! interrupt lines of every context into [`IrqState`] while holding it, so
//! line changes are seen in the order the state changed.

use std::sync::Arc;

use parking_lot::Mutex;
use samsara_types::HartId;

use super::{DeviceError, InterruptSink, MmioDevice};
use crate::irq::{IrqState, mip};

/// Size of the PLIC's MMIO window (as QEMU's `virt` device tree says).
pub const PLIC_SIZE: u64 = 0x60_0000;
/// Number of interrupt source ids, including the reserved id 0 (QEMU: 0x5f + 1).
pub const PLIC_NUM_SOURCES: u32 = 96;
/// Highest priority a source can have (priority registers hold 3 bits).
pub const PLIC_MAX_PRIORITY: u32 = 7;

const PRIORITY_BASE: u64 = 0x0;
const PENDING_BASE: u64 = 0x1000;
const ENABLE_BASE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT_BASE: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
/// 32-bit words in a source bitmap (96 sources).
const BITMAP_WORDS: u64 = (PLIC_NUM_SOURCES as u64).div_ceil(32);
/// Every valid source id except 0.
const VALID_SOURCES: u128 = ((1u128 << PLIC_NUM_SOURCES) - 1) & !1;

#[derive(Clone, Debug)]
struct PlicState {
    priority: [u32; PLIC_NUM_SOURCES as usize],
    /// Input line levels.
    level: u128,
    pending: u128,
    /// Claimed and not yet completed.
    claimed: u128,
    /// Enable bitmap per context.
    enable: Vec<u128>,
    /// Priority threshold per context.
    threshold: Vec<u32>,
}

impl PlicState {
    /// The source `context` would get from a claim now (0 if none).
    fn best_source(&self, context: usize) -> u32 {
        let candidates = self.pending & !self.claimed & self.enable[context];
        let threshold = self.threshold[context];
        let mut best = 0;
        let mut best_priority = threshold;
        let mut bits = candidates;
        while bits != 0 {
            let source = bits.trailing_zeros();
            bits &= bits - 1;
            let priority = self.priority[source as usize];
            // Strictly greater: the lowest id wins among equal priorities.
            if priority > best_priority {
                best = source;
                best_priority = priority;
            }
        }
        best
    }
}

/// The PLIC's state at some moment ([`Plic::snapshot`]).
#[derive(Clone, Debug)]
pub struct PlicSnapshot(PlicState);

/// The platform-level interrupt controller.
#[derive(Debug)]
pub struct Plic {
    irq: Arc<IrqState>,
    state: Mutex<PlicState>,
}

/// Which register an offset addresses.
enum Register {
    Priority(usize),
    Pending(u64),
    Enable(usize, u64),
    Threshold(usize),
    ClaimComplete(usize),
    /// Inside the window but not backed: reads 0, writes ignored.
    Reserved,
}

impl Plic {
    /// A PLIC with two contexts (M and S) per hart of `irq`, all sources at
    /// priority 0, nothing enabled.
    pub fn new(irq: Arc<IrqState>) -> Self {
        let contexts = 2 * irq.hart_count() as usize;
        Self {
            irq,
            state: Mutex::new(PlicState {
                priority: [0; PLIC_NUM_SOURCES as usize],
                level: 0,
                pending: 0,
                claimed: 0,
                enable: vec![0; contexts],
                threshold: vec![0; contexts],
            }),
        }
    }

    /// Drives the level of input `source` (1..95); other ids are ignored.
    pub fn set_level(&self, source: u32, level: bool) {
        if source == 0 || source >= PLIC_NUM_SOURCES {
            return;
        }
        let bit = 1u128 << source;
        let mut state = self.state.lock();
        if level {
            state.level |= bit;
            if state.claimed & bit == 0 {
                state.pending |= bit;
            }
        } else {
            state.level &= !bit;
            state.pending &= !bit;
        }
        self.update_lines(&state);
    }

    /// Its registers and input levels now.
    pub fn snapshot(&self) -> PlicSnapshot {
        PlicSnapshot(self.state.lock().clone())
    }

    /// Back to `snapshot`, interrupt lines included.
    pub fn restore(&self, snapshot: &PlicSnapshot) {
        let mut state = self.state.lock();
        *state = snapshot.0.clone();
        self.update_lines(&state);
    }

    /// True if `source` is pending (for tests and debugging).
    pub fn is_pending(&self, source: u32) -> bool {
        source < PLIC_NUM_SOURCES && self.state.lock().pending & (1u128 << source) != 0
    }

    fn update_lines(&self, state: &PlicState) {
        for context in 0..state.enable.len() {
            let hart = HartId(u32::try_from(context / 2).unwrap_or(u32::MAX));
            let bit = if context % 2 == 0 {
                mip::MEIP
            } else {
                mip::SEIP
            };
            self.irq
                .set_line(hart, bit, state.best_source(context) != 0);
        }
    }

    fn decode(&self, offset: u64, size: u8, contexts: usize) -> Result<Register, DeviceError> {
        if offset >= PLIC_SIZE {
            return Err(DeviceError::Unmapped { offset });
        }
        // QEMU's PLIC accepts aligned 32-bit accesses only.
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(DeviceError::BadAccess { offset, size });
        }
        let contexts = contexts as u64;
        let register = if offset < PENDING_BASE {
            let source = (offset - PRIORITY_BASE) / 4;
            if source < u64::from(PLIC_NUM_SOURCES) {
                Register::Priority(source as usize)
            } else {
                Register::Reserved
            }
        } else if offset < ENABLE_BASE {
            let word = (offset - PENDING_BASE) / 4;
            if word < BITMAP_WORDS {
                Register::Pending(word)
            } else {
                Register::Reserved
            }
        } else if offset < CONTEXT_BASE {
            let context = (offset - ENABLE_BASE) / ENABLE_STRIDE;
            let word = (offset - ENABLE_BASE) % ENABLE_STRIDE / 4;
            if context < contexts && word < BITMAP_WORDS {
                Register::Enable(context as usize, word)
            } else {
                Register::Reserved
            }
        } else {
            let context = (offset - CONTEXT_BASE) / CONTEXT_STRIDE;
            match ((offset - CONTEXT_BASE) % CONTEXT_STRIDE, context < contexts) {
                (0, true) => Register::Threshold(context as usize),
                (4, true) => Register::ClaimComplete(context as usize),
                _ => Register::Reserved,
            }
        };
        Ok(register)
    }
}

fn bitmap_word(bits: u128, word: u64) -> u64 {
    (bits >> (32 * word)) as u64 & 0xffff_ffff
}

impl InterruptSink for Plic {
    fn set_level(&self, source: u32, level: bool) {
        Plic::set_level(self, source, level);
    }
}

impl MmioDevice for Plic {
    /// Pending bits and claims follow the interrupt inputs, which a standby
    /// does not see as the primary did: a claim marks the recorded source
    /// claimed; pending reads are not compared.
    fn replay_read(
        &self,
        hart: HartId,
        offset: u64,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, DeviceError> {
        let mut state = self.state.lock();
        match self.decode(offset, size, state.enable.len())? {
            Register::ClaimComplete(_) => {
                let source = recorded as u32;
                if source != 0 && source < PLIC_NUM_SOURCES {
                    let bit = 1u128 << source;
                    state.pending &= !bit;
                    state.claimed |= bit;
                    self.update_lines(&state);
                }
                Ok(None)
            }
            Register::Pending(_) => Ok(None),
            _ => {
                drop(state);
                self.compare_read(hart, offset, size, recorded)
            }
        }
    }

    fn read(&self, _hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        let mut state = self.state.lock();
        Ok(match self.decode(offset, size, state.enable.len())? {
            Register::Priority(source) => u64::from(state.priority[source]),
            Register::Pending(word) => bitmap_word(state.pending, word),
            Register::Enable(context, word) => bitmap_word(state.enable[context], word),
            Register::Threshold(context) => u64::from(state.threshold[context]),
            Register::ClaimComplete(context) => {
                let source = state.best_source(context);
                if source != 0 {
                    let bit = 1u128 << source;
                    state.pending &= !bit;
                    state.claimed |= bit;
                    self.update_lines(&state);
                }
                u64::from(source)
            }
            Register::Reserved => 0,
        })
    }

    fn write(&self, _hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        let value = value & 0xffff_ffff;
        let mut state = self.state.lock();
        match self.decode(offset, size, state.enable.len())? {
            Register::Priority(source) => {
                if source != 0 {
                    // Only 3 bits are implemented (QEMU masks the same way).
                    state.priority[source] = (value as u32) & PLIC_MAX_PRIORITY;
                }
            }
            // Pending bits are read-only.
            Register::Pending(_) | Register::Reserved => return Ok(()),
            Register::Enable(context, word) => {
                let shift = 32 * word;
                let mask = (0xffff_ffffu128 << shift) & VALID_SOURCES;
                let enable = &mut state.enable[context];
                *enable = (*enable & !mask) | ((u128::from(value) << shift) & mask);
            }
            Register::Threshold(context) => {
                state.threshold[context] = (value as u32) & PLIC_MAX_PRIORITY;
            }
            Register::ClaimComplete(context) => {
                // Completing a source not enabled for this context is ignored (spec).
                let source = value as u32;
                if source == 0 || source >= PLIC_NUM_SOURCES {
                    return Ok(());
                }
                let bit = 1u128 << source;
                if state.enable[context] & bit == 0 || state.claimed & bit == 0 {
                    return Ok(());
                }
                state.claimed &= !bit;
                if state.level & bit != 0 {
                    state.pending |= bit;
                }
            }
        }
        self.update_lines(&state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const H0: HartId = HartId(0);

    fn plic(harts: u32) -> (Arc<IrqState>, Plic) {
        let irq = Arc::new(IrqState::new(harts, Arc::new(ManualClock::new(0))));
        for h in 0..harts {
            irq.set_mtimecmp(HartId(h), u64::MAX);
        }
        (irq.clone(), Plic::new(irq))
    }

    fn enable_offset(context: u64, word: u64) -> u64 {
        ENABLE_BASE + ENABLE_STRIDE * context + 4 * word
    }
    fn threshold_offset(context: u64) -> u64 {
        CONTEXT_BASE + CONTEXT_STRIDE * context
    }
    fn claim_offset(context: u64) -> u64 {
        threshold_offset(context) + 4
    }

    /// A replayed claim marks the recorded source claimed, whatever the
    /// standby's own inputs say; configuration reads are compared.
    #[test]
    fn replayed_claims_mark_the_recorded_source() {
        let (irq, plic) = plic(1);
        plic.write(H0, 4 * 10, 4, 1).unwrap();
        plic.write(H0, enable_offset(0, 0), 4, 1 << 10).unwrap();
        // The primary's UART raised source 10; the standby's never did.
        assert_eq!(plic.replay_read(H0, claim_offset(0), 4, 10).unwrap(), None);
        plic.set_level(10, true);
        assert!(!plic.is_pending(10), "claimed: not pending until completed");
        assert_eq!(irq.lines(H0) & mip::MEIP, 0);
        plic.write(H0, claim_offset(0), 4, 10).unwrap();
        assert!(plic.is_pending(10));
        assert_eq!(plic.replay_read(H0, 4 * 10, 4, 1).unwrap(), None);
        assert_eq!(plic.replay_read(H0, 4 * 10, 4, 3).unwrap(), Some(1));
    }

    #[test]
    fn level_source_claim_complete_cycle() {
        let (irq, plic) = plic(1);
        plic.write(H0, 4 * 10, 4, 1).unwrap();
        plic.write(H0, enable_offset(0, 0), 4, 1 << 10).unwrap();
        plic.set_level(10, true);
        assert!(plic.is_pending(10));
        assert_eq!(plic.read(H0, PENDING_BASE, 4), Ok(1 << 10));
        assert_eq!(irq.lines(H0), mip::MEIP);
        // Claim clears pending and the line.
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(10));
        assert!(!plic.is_pending(10));
        assert_eq!(irq.lines(H0), 0);
        // Nothing else to claim.
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(0));
        // Still high at completion: pending again.
        plic.write(H0, claim_offset(0), 4, 10).unwrap();
        assert_eq!(irq.lines(H0), mip::MEIP);
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(10));
        // Device lowers its line, then the handler completes: quiet.
        plic.set_level(10, false);
        plic.write(H0, claim_offset(0), 4, 10).unwrap();
        assert_eq!(irq.lines(H0), 0);
        assert!(!plic.is_pending(10));
    }

    #[test]
    fn priority_threshold_and_ordering() {
        let (irq, plic) = plic(1);
        plic.write(H0, 4, 4, 2).unwrap(); // source 1: priority 2
        plic.write(H0, 4 * 5, 4, 5).unwrap(); // source 5: priority 5
        plic.write(H0, 4 * 40, 4, 5).unwrap(); // source 40: priority 5
        plic.write(H0, enable_offset(0, 0), 4, (1 << 1) | (1 << 5))
            .unwrap();
        plic.write(H0, enable_offset(0, 1), 4, 1 << 8).unwrap();
        assert_eq!(plic.read(H0, enable_offset(0, 1), 4), Ok(1 << 8));
        plic.set_level(1, true);
        plic.set_level(5, true);
        plic.set_level(40, true);
        // Threshold 5 masks everything (priority must exceed it).
        plic.write(H0, threshold_offset(0), 4, 5).unwrap();
        assert_eq!(irq.lines(H0), 0);
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(0));
        plic.write(H0, threshold_offset(0), 4, 1).unwrap();
        assert_eq!(irq.lines(H0), mip::MEIP);
        // Highest priority first, lowest id among equals.
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(5));
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(40));
        assert_eq!(plic.read(H0, claim_offset(0), 4), Ok(1));
        assert_eq!(irq.lines(H0), 0);
    }

    #[test]
    fn priority_zero_never_interrupts_and_priority_is_three_bits() {
        let (irq, plic) = plic(1);
        plic.write(H0, enable_offset(0, 0), 4, 1 << 3).unwrap();
        plic.set_level(3, true);
        assert_eq!(irq.lines(H0), 0);
        plic.write(H0, 4 * 3, 4, 0xff).unwrap();
        assert_eq!(plic.read(H0, 4 * 3, 4), Ok(7));
        assert_eq!(irq.lines(H0), mip::MEIP);
    }

    #[test]
    fn s_mode_context_drives_seip_of_the_right_hart() {
        let (irq, plic) = plic(2);
        plic.write(H0, 4 * 7, 4, 1).unwrap();
        // Context 3 = hart 1, S-mode.
        plic.write(H0, enable_offset(3, 0), 4, 1 << 7).unwrap();
        plic.set_level(7, true);
        assert_eq!(irq.lines(HartId(0)), 0);
        assert_eq!(irq.lines(HartId(1)), mip::SEIP);
        assert_eq!(plic.read(HartId(1), claim_offset(3), 4), Ok(7));
        assert_eq!(irq.lines(HartId(1)), 0);
        // Completion from a context where it is not enabled is ignored.
        plic.write(H0, claim_offset(0), 4, 7).unwrap();
        assert_eq!(irq.lines(HartId(1)), 0);
        plic.write(H0, claim_offset(3), 4, 7).unwrap();
        assert_eq!(irq.lines(HartId(1)), mip::SEIP);
    }

    #[test]
    fn reserved_registers_and_bad_accesses() {
        let (_irq, plic) = plic(1);
        // Source 0 is hardwired.
        plic.write(H0, 0, 4, 7).unwrap();
        assert_eq!(plic.read(H0, 0, 4), Ok(0));
        plic.write(H0, enable_offset(0, 0), 4, 0xffff_ffff).unwrap();
        assert_eq!(plic.read(H0, enable_offset(0, 0), 4), Ok(0xffff_fffe));
        // Context 2 does not exist with one hart.
        assert_eq!(plic.read(H0, claim_offset(2), 4), Ok(0));
        plic.write(H0, threshold_offset(2), 4, 1).unwrap();
        // Pending is read-only; sources out of range are ignored.
        plic.write(H0, PENDING_BASE, 4, 0xffff).unwrap();
        assert_eq!(plic.read(H0, PENDING_BASE, 4), Ok(0));
        plic.set_level(0, true);
        plic.set_level(96, true);
        plic.set_level(u32::MAX, true);
        assert!(plic.read(H0, 0, 8).is_err());
        assert!(plic.read(H0, 2, 4).is_err());
        assert!(plic.read(H0, PLIC_SIZE, 4).is_err());
    }
}
