//! Per-machine interrupt state: the device-driven bits of each hart's `mip`.
//!
//! The CLINT drives MSIP (software interrupts / IPIs) and, through `mtimecmp`
//! compared with the [`Clock`], MTIP; the PLIC drives MEIP and SEIP from its
//! M-mode and S-mode contexts. Harts poll [`IrqState::lines`] between
//! instructions and sleep in [`IrqState::wait_for_interrupt`] on WFI.
//!
//! Nothing here is global: every machine owns one `IrqState`, so several
//! machines (record and replay in one test, say) never see each other.
//!
//! # Wake-up protocol
//! Each hart has a mutex (guarding a count of explicit kicks) and a condition
//! variable. Whoever makes an interrupt line of a hart go high (or changes its
//! `mtimecmp`, or calls [`IrqState::wake`]/[`IrqState::wake_all`]) first
//! updates the atomics, then takes the mutex and notifies. A waiter checks the lines *while holding the mutex* and only then
//! sleeps on the condvar (which releases the mutex atomically). So a raise
//! either happened before the check (the check sees it) or its notification
//! happens after the waiter is asleep (the waiter is woken): no lost wake-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use samsara_types::HartId;

use crate::clock::{Clock, ticks_to_duration};

/// `mip` bit positions of the interrupts devices drive.
pub mod mip {
    /// Supervisor software interrupt (written by M-mode software, not by devices here).
    pub const SSIP: u64 = 1 << 1;
    /// Machine software interrupt (CLINT `msip`).
    pub const MSIP: u64 = 1 << 3;
    /// Supervisor timer interrupt (written by M-mode software; no Sstc here).
    pub const STIP: u64 = 1 << 5;
    /// Machine timer interrupt (CLINT `mtime >= mtimecmp`).
    pub const MTIP: u64 = 1 << 7;
    /// Supervisor external interrupt (PLIC context 2h+1).
    pub const SEIP: u64 = 1 << 9;
    /// Machine external interrupt (PLIC context 2h).
    pub const MEIP: u64 = 1 << 11;
    /// The level-driven bits stored in [`super::IrqState`] (MTIP is computed).
    pub const LEVEL_BITS: u64 = MSIP | SEIP | MEIP;
}

/// Why [`IrqState::wait_for_interrupt`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WakeReason {
    /// An interrupt in `enabled_mask` is pending.
    Interrupt,
    /// The `stop` flag was set.
    Stopped,
    /// [`IrqState::wake`] or [`IrqState::wake_all`] was called (the caller
    /// should re-examine its situation; nothing may be pending).
    Kicked,
}

/// `mtimecmp` after reset: QEMU's ACLINT resets it to 0, which makes MTIP
/// pending immediately; software must program it before enabling MTIE.
const MTIMECMP_RESET: u64 = 0;

/// Shortest sleep when the timer deadline should have passed but the clock
/// does not show it yet (a clock slower than host time): avoids spinning.
const MIN_TIMER_SLEEP: Duration = Duration::from_micros(50);

struct HartLines {
    /// MSIP | SEIP | MEIP as driven by devices.
    levels: AtomicU64,
    mtimecmp: AtomicU64,
    /// Number of explicit [`IrqState::wake`] calls; the mutex is what makes
    /// check-then-sleep race-free (see the module documentation).
    kicks: Mutex<u64>,
    wake_cv: Condvar,
}

impl HartLines {
    fn new() -> Self {
        Self {
            levels: AtomicU64::new(0),
            mtimecmp: AtomicU64::new(MTIMECMP_RESET),
            kicks: Mutex::new(0),
            wake_cv: Condvar::new(),
        }
    }

    /// Wakes the waiter so it re-checks its lines (a line went high or the
    /// timer deadline moved). Taking the mutex orders this after the
    /// waiter's check or after it fell asleep.
    fn notify(&self) {
        let _guard = self.kicks.lock();
        self.wake_cv.notify_all();
    }

    /// Wakes the waiter and makes it return [`WakeReason::Kicked`].
    fn kick(&self) {
        let mut kicks = self.kicks.lock();
        *kicks = kicks.wrapping_add(1);
        self.wake_cv.notify_all();
    }
}

/// Every hart's levels and `mtimecmp` at some moment ([`IrqState::snapshot`]).
#[derive(Clone, Debug)]
pub struct IrqSnapshot(Vec<(u64, u64)>);

/// Device-driven interrupt lines of every hart of one machine.
pub struct IrqState {
    clock: Arc<dyn Clock>,
    harts: Box<[HartLines]>,
}

impl std::fmt::Debug for IrqState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqState")
            .field("harts", &self.harts.len())
            .finish_non_exhaustive()
    }
}

impl IrqState {
    /// Interrupt state for `harts` harts, with time taken from `clock`.
    pub fn new(harts: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            harts: (0..harts).map(|_| HartLines::new()).collect(),
        }
    }

    /// Number of harts.
    pub fn hart_count(&self) -> u32 {
        // Constructed from a u32 count.
        u32::try_from(self.harts.len()).unwrap_or(u32::MAX)
    }

    /// The machine's clock (shared with the CLINT's `mtime`).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn hart(&self, hart: HartId) -> Option<&HartLines> {
        self.harts.get(hart.index())
    }

    /// Device-driven `mip` bits of `hart` now (MSIP, MTIP, SEIP, MEIP); 0 for
    /// a hart that does not exist. Costs two atomic loads and a clock read.
    pub fn lines(&self, hart: HartId) -> u64 {
        let Some(h) = self.hart(hart) else {
            return 0;
        };
        let mut lines = h.levels.load(Ordering::Acquire);
        if self.clock.now_ticks() >= h.mtimecmp.load(Ordering::Acquire) {
            lines |= mip::MTIP;
        }
        lines
    }

    /// Drives the level-triggered `bit` (one of [`mip::MSIP`], [`mip::SEIP`],
    /// [`mip::MEIP`]; other bits are ignored) of `hart` to `level`, waking the
    /// hart if the line goes high.
    pub fn set_line(&self, hart: HartId, bit: u64, level: bool) {
        let bit = bit & mip::LEVEL_BITS;
        let Some(h) = self.hart(hart) else {
            return;
        };
        if bit == 0 {
            return;
        }
        if level {
            let previous = h.levels.fetch_or(bit, Ordering::AcqRel);
            if previous & bit != bit {
                h.notify();
            }
        } else {
            h.levels.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Every hart's device-driven levels and `mtimecmp` now.
    pub fn snapshot(&self) -> IrqSnapshot {
        IrqSnapshot(
            self.harts
                .iter()
                .map(|h| {
                    (
                        h.levels.load(Ordering::Acquire),
                        h.mtimecmp.load(Ordering::Acquire),
                    )
                })
                .collect(),
        )
    }

    /// Back to `snapshot` (of a machine with as many harts).
    pub fn restore(&self, snapshot: &IrqSnapshot) {
        for (h, &(levels, mtimecmp)) in self.harts.iter().zip(&snapshot.0) {
            h.levels.store(levels, Ordering::Release);
            h.mtimecmp.store(mtimecmp, Ordering::Release);
            h.notify();
        }
    }

    /// `mtimecmp` of `hart` (`u64::MAX` for a hart that does not exist).
    pub fn mtimecmp(&self, hart: HartId) -> u64 {
        self.hart(hart)
            .map_or(u64::MAX, |h| h.mtimecmp.load(Ordering::Acquire))
    }

    /// Replaces `mtimecmp` of `hart` by `update(old)`, atomically (so a 32-bit
    /// half write cannot lose a concurrent write to the other half), and wakes
    /// the hart so a WFI sleeper recomputes its deadline.
    pub fn update_mtimecmp(&self, hart: HartId, update: impl Fn(u64) -> u64) {
        let Some(h) = self.hart(hart) else {
            return;
        };
        // The closure always returns Some, so fetch_update cannot fail.
        let _ = h
            .mtimecmp
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| Some(update(old)));
        h.notify();
    }

    /// Sets `mtimecmp` of `hart`.
    pub fn set_mtimecmp(&self, hart: HartId, value: u64) {
        self.update_mtimecmp(hart, |_| value);
    }

    /// Wakes `hart` from [`Self::wait_for_interrupt`] (it returns
    /// [`WakeReason::Kicked`] unless something else is also true).
    pub fn wake(&self, hart: HartId) {
        if let Some(h) = self.hart(hart) {
            h.kick();
        }
    }

    /// Wakes every hart: call it after setting the `stop` flag the harts
    /// wait with (shutdown, Ctrl-C, machine exit).
    pub fn wake_all(&self) {
        for h in self.harts.iter() {
            h.kick();
        }
    }

    /// Blocks the calling hart thread (WFI) until `lines(hart) & enabled_mask`
    /// is non-zero (including the timer: it sleeps until `mtimecmp` is due),
    /// `stop` is set, or [`Self::wake`]/[`Self::wake_all`] is called.
    ///
    /// `enabled_mask` is the hart's `mie`; the hart checks its own
    /// software-writable `mip` bits before calling (nobody else changes
    /// them while it sleeps). Whoever sets `stop` must call
    /// [`Self::wake_all`] afterwards. Returns at once for a hart that does
    /// not exist.
    pub fn wait_for_interrupt(
        &self,
        hart: HartId,
        enabled_mask: u64,
        stop: &AtomicBool,
    ) -> WakeReason {
        let Some(h) = self.hart(hart) else {
            return WakeReason::Kicked;
        };
        let mut kicks = h.kicks.lock();
        let start_kicks = *kicks;
        loop {
            if stop.load(Ordering::Acquire) {
                return WakeReason::Stopped;
            }
            if self.lines(hart) & enabled_mask != 0 {
                return WakeReason::Interrupt;
            }
            if *kicks != start_kicks {
                return WakeReason::Kicked;
            }
            let deadline = if enabled_mask & mip::MTIP != 0 {
                let cmp = h.mtimecmp.load(Ordering::Acquire);
                if cmp == u64::MAX {
                    None
                } else {
                    // MTIP is not pending, so cmp > now; the sleep is host time.
                    let remaining = cmp.saturating_sub(self.clock.now_ticks());
                    // None (sleep until woken) if the deadline is beyond what Instant can hold.
                    Instant::now().checked_add(ticks_to_duration(remaining).max(MIN_TIMER_SLEEP))
                }
            } else {
                None
            };
            match deadline {
                // Spurious wake-ups and timeouts just go round the loop.
                Some(deadline) => {
                    let _ = h.wake_cv.wait_until(&mut kicks, deadline);
                }
                None => h.wake_cv.wait(&mut kicks),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{HostClock, ManualClock};
    use std::time::Duration;

    fn with_manual_clock(harts: u32) -> (Arc<ManualClock>, IrqState) {
        let clock = Arc::new(ManualClock::new(0));
        let irq = IrqState::new(harts, clock.clone());
        (clock, irq)
    }

    #[test]
    fn level_lines_and_unknown_hart() {
        let (_clock, irq) = with_manual_clock(2);
        irq.set_mtimecmp(HartId(0), u64::MAX);
        irq.set_mtimecmp(HartId(1), u64::MAX);
        irq.set_line(HartId(1), mip::MEIP, true);
        irq.set_line(HartId(1), mip::MSIP, true);
        irq.set_line(HartId(1), mip::MTIP, true); // not level-driven: ignored
        assert_eq!(irq.lines(HartId(0)), 0);
        assert_eq!(irq.lines(HartId(1)), mip::MEIP | mip::MSIP);
        irq.set_line(HartId(1), mip::MEIP, false);
        assert_eq!(irq.lines(HartId(1)), mip::MSIP);
        // Out-of-range harts are inert, never a panic.
        irq.set_line(HartId(7), mip::MEIP, true);
        assert_eq!(irq.lines(HartId(7)), 0);
        irq.wake(HartId(7));
    }

    #[test]
    fn mtip_follows_clock_and_mtimecmp() {
        let (clock, irq) = with_manual_clock(1);
        // Reset value 0: pending at once, as on QEMU.
        assert_eq!(irq.lines(HartId(0)), mip::MTIP);
        irq.set_mtimecmp(HartId(0), 1000);
        assert_eq!(irq.lines(HartId(0)), 0);
        clock.set(999);
        assert_eq!(irq.lines(HartId(0)), 0);
        clock.set(1000);
        assert_eq!(irq.lines(HartId(0)), mip::MTIP);
        irq.update_mtimecmp(HartId(0), |old| old + 10);
        assert_eq!(irq.mtimecmp(HartId(0)), 1010);
        assert_eq!(irq.lines(HartId(0)), 0);
    }

    #[test]
    fn wait_returns_immediately_when_pending() {
        let (_clock, irq) = with_manual_clock(1);
        irq.set_mtimecmp(HartId(0), u64::MAX);
        irq.set_line(HartId(0), mip::MSIP, true);
        let stop = AtomicBool::new(false);
        assert_eq!(
            irq.wait_for_interrupt(HartId(0), mip::MSIP, &stop),
            WakeReason::Interrupt
        );
    }

    #[test]
    fn wait_is_woken_by_another_thread_raising_a_line() {
        let (_clock, irq) = with_manual_clock(2);
        let irq = Arc::new(irq);
        irq.set_mtimecmp(HartId(1), u64::MAX);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let irq = irq.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                irq.wait_for_interrupt(HartId(1), mip::MSIP | mip::MEIP, &stop)
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        // A line of another hart, or a disabled line, does not wake it.
        irq.set_line(HartId(0), mip::MSIP, true);
        irq.set_line(HartId(1), mip::SEIP, true);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        irq.set_line(HartId(1), mip::MSIP, true);
        assert_eq!(waiter.join().unwrap(), WakeReason::Interrupt);
    }

    #[test]
    fn wait_is_stopped_by_stop_flag_and_wake_all() {
        let (_clock, irq) = with_manual_clock(1);
        let irq = Arc::new(irq);
        irq.set_mtimecmp(HartId(0), u64::MAX);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let irq = irq.clone();
            let stop = stop.clone();
            std::thread::spawn(move || irq.wait_for_interrupt(HartId(0), u64::MAX, &stop))
        };
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Release);
        irq.wake_all();
        assert_eq!(waiter.join().unwrap(), WakeReason::Stopped);
    }

    #[test]
    fn wait_kicked_without_interrupt() {
        let (_clock, irq) = with_manual_clock(1);
        let irq = Arc::new(irq);
        // A deadline ~58,000 years away must not overflow Instant.
        irq.set_mtimecmp(HartId(0), u64::MAX - 1);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let irq = irq.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                irq.wait_for_interrupt(HartId(0), mip::MEIP | mip::MTIP, &stop)
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        irq.wake(HartId(0));
        assert_eq!(waiter.join().unwrap(), WakeReason::Kicked);
    }

    #[test]
    fn ipi_ping_pong_never_loses_a_wake_up() {
        let (_clock, irq) = with_manual_clock(2);
        let irq = Arc::new(irq);
        irq.set_mtimecmp(HartId(0), u64::MAX);
        irq.set_mtimecmp(HartId(1), u64::MAX);
        let stop = Arc::new(AtomicBool::new(false));
        const ROUNDS: usize = 2000;
        let player = |me: u32, other: u32, serve: bool| {
            let irq = irq.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                if serve {
                    irq.set_line(HartId(other), mip::MSIP, true);
                }
                for _ in 0..ROUNDS {
                    let woke = irq.wait_for_interrupt(HartId(me), mip::MSIP, &stop);
                    if woke != WakeReason::Interrupt {
                        return false;
                    }
                    irq.set_line(HartId(me), mip::MSIP, false);
                    irq.set_line(HartId(other), mip::MSIP, true);
                }
                true
            })
        };
        let a = player(0, 1, true);
        let b = player(1, 0, false);
        // A lost wake-up would hang both players: bound the wait.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(a.is_finished() && b.is_finished()) {
            assert!(Instant::now() < deadline, "lost wake-up: ping-pong stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(a.join().unwrap());
        assert!(b.join().unwrap());
    }

    #[test]
    fn wait_sleeps_until_timer_deadline() {
        let clock = Arc::new(HostClock::new());
        let irq = IrqState::new(1, clock.clone());
        let stop = AtomicBool::new(false);
        // 30 ms from now.
        let deadline = clock.now_ticks() + 300_000;
        irq.set_mtimecmp(HartId(0), deadline);
        let started = Instant::now();
        assert_eq!(
            irq.wait_for_interrupt(HartId(0), mip::MTIP, &stop),
            WakeReason::Interrupt
        );
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert!(clock.now_ticks() >= deadline);
    }

    #[test]
    fn timer_not_enabled_does_not_wake() {
        let clock = Arc::new(HostClock::new());
        let irq = Arc::new(IrqState::new(1, clock.clone()));
        irq.set_mtimecmp(HartId(0), clock.now_ticks() + 10_000); // 1 ms
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let irq = irq.clone();
            let stop = stop.clone();
            std::thread::spawn(move || irq.wait_for_interrupt(HartId(0), mip::MEIP, &stop))
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(!waiter.is_finished());
        irq.set_line(HartId(0), mip::MEIP, true);
        assert_eq!(waiter.join().unwrap(), WakeReason::Interrupt);
    }
}
