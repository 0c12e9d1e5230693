//! The machine's notion of time: the CLINT `mtime` counter and the `time` CSR.
//!
//! Time is the first non-deterministic input of a virtual machine. Every
//! device that needs the current time (the CLINT's `mtime` register, the
//! timer-interrupt computation in [`crate::irq`], the WFI sleep deadline) asks
//! a [`Clock`], never the host directly, so the recorder can substitute a
//! clock that logs each value it hands out and the replayer one that reads
//! them back from the trace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Frequency of `mtime` / the `time` CSR, as on QEMU's `virt` board
/// (`timebase-frequency` in the device tree).
pub const TIMEBASE_HZ: u64 = 10_000_000;

/// Nanoseconds per timebase tick.
const NANOS_PER_TICK: u64 = 1_000_000_000 / TIMEBASE_HZ;

/// A source of `mtime` values, in [`TIMEBASE_HZ`] ticks.
///
/// Implementations must be monotonic (never go backwards): the guest relies on
/// it, and so does [`crate::irq::IrqState::wait_for_interrupt`], which sleeps
/// on host time assuming ticks advance at roughly [`TIMEBASE_HZ`].
pub trait Clock: Send + Sync {
    /// Ticks since the machine started.
    fn now_ticks(&self) -> u64;

    /// A replay passed a recorded time of `ticks` (the `time` CSR or
    /// `mtime`): a clock that may go live later goes on from the latest.
    fn observe(&self, _ticks: u64) {}
}

/// A hot standby's clock: during replay it only learns the recorded times
/// ([`Clock::observe`]); once [`TakeoverClock::go_live`] is called it runs
/// on host time from just after the latest of them, so the guest never sees
/// time go backwards across a failover.
#[derive(Debug, Default)]
pub struct TakeoverClock {
    latest: AtomicU64,
    live: std::sync::OnceLock<(Instant, u64)>,
}

impl TakeoverClock {
    /// A clock at 0, not live.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, host time from the latest recorded time on.
    pub fn go_live(&self) {
        let base = self.latest.load(Ordering::Acquire).saturating_add(1);
        let _ = self.live.set((Instant::now(), base));
    }

    /// The latest recorded time observed.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }
}

impl Clock for TakeoverClock {
    fn now_ticks(&self) -> u64 {
        match self.live.get() {
            Some((since, base)) => {
                let ticks = since.elapsed().as_nanos() / u128::from(NANOS_PER_TICK);
                base.saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
            }
            None => self.latest.load(Ordering::Acquire),
        }
    }

    fn observe(&self, ticks: u64) {
        self.latest.fetch_max(ticks, Ordering::AcqRel);
    }
}

/// Monotonic host time since the machine was created (the `run` mode clock).
#[derive(Debug)]
pub struct HostClock {
    start: Instant,
}

impl HostClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ticks(&self) -> u64 {
        let ticks = self.start.elapsed().as_nanos() / u128::from(NANOS_PER_TICK);
        // 2^64 ticks at 10 MHz is ~58,000 years; saturate rather than wrap.
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to: for tests, and for modes where time is
/// derived from something other than the host (e.g. instruction counts).
#[derive(Debug, Default)]
pub struct ManualClock {
    ticks: AtomicU64,
}

impl ManualClock {
    /// A clock reading `ticks`.
    pub fn new(ticks: u64) -> Self {
        Self {
            ticks: AtomicU64::new(ticks),
        }
    }

    /// Sets the current time. Values smaller than the current one are ignored
    /// (clocks are monotonic).
    pub fn set(&self, ticks: u64) {
        self.ticks.fetch_max(ticks, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ticks` (saturating).
    pub fn advance(&self, ticks: u64) {
        // fetch_update with a closure that always returns Some cannot fail.
        let _ = self
            .ticks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ticks))
            });
    }
}

impl Clock for ManualClock {
    fn now_ticks(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst)
    }
}

/// Host duration of `ticks` timebase ticks (saturating).
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos(ticks.saturating_mul(NANOS_PER_TICK))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A standby's clock stands at the latest recorded time, then runs on
    /// from just after it: the guest never sees time go back.
    #[test]
    fn a_takeover_clock_goes_on_from_the_latest_recorded_time() {
        let clock = TakeoverClock::new();
        clock.observe(500);
        clock.observe(300);
        assert_eq!(clock.now_ticks(), 500);
        clock.go_live();
        let live = clock.now_ticks();
        assert!(live > 500, "{live}");
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now_ticks() >= live + 2 * TIMEBASE_HZ / 1000);
    }

    #[test]
    fn host_clock_is_monotonic_and_advances() {
        let clock = HostClock::new();
        let a = clock.now_ticks();
        std::thread::sleep(Duration::from_millis(2));
        let b = clock.now_ticks();
        assert!(b > a, "{b} > {a}");
        // 2 ms = 20,000 ticks at 10 MHz.
        assert!(b - a >= 20_000);
    }

    #[test]
    fn manual_clock_never_goes_back() {
        let clock = ManualClock::new(100);
        clock.set(50);
        assert_eq!(clock.now_ticks(), 100);
        clock.advance(5);
        assert_eq!(clock.now_ticks(), 105);
        clock.advance(u64::MAX);
        assert_eq!(clock.now_ticks(), u64::MAX);
    }

    #[test]
    fn tick_duration() {
        assert_eq!(ticks_to_duration(10_000_000), Duration::from_secs(1));
        assert_eq!(ticks_to_duration(1), Duration::from_nanos(100));
    }
}
