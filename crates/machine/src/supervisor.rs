//! Supervising running harts from the thread that started them: one poll
//! turns Ctrl-C, a guest exit, the instruction limit, a halt a worker asked
//! for, the wall-clock timeout and a kernel panic seen on the console (after
//! a grace period for its report) into a decision to halt every hart; once
//! they stopped, one classification says how the run ended, and one
//! mapping gives the process exit status. `samsara run` (`crate::run`) and
//! the recorder (`samsara_engine::record`) both use it.

use std::time::{Duration, Instant};

use crate::console::PanicWatch;
use crate::devices::test_device::MachineExit;

/// How long a panicking kernel may go on printing its report before the
/// run is stopped.
pub const PANIC_GRACE: Duration = Duration::from_secs(2);

/// How often [`Supervisor::watch_until`] looks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// What the running side reports at a poll (each a flag the caller reads).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Signals {
    /// Ctrl-C, the caller's stop flag, or the console's Ctrl-A X.
    pub stop: bool,
    /// The guest stopped the machine (test device or HTIF).
    pub guest_exit: bool,
    /// A hart reached the instruction limit.
    pub limit_hit: bool,
    /// A worker asked every hart to halt (a hart thread crashed, the
    /// recorder failed).
    pub halt_requested: bool,
}

/// Why the supervisor halts the harts (the first reason that holds, in
/// this order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HaltReason {
    /// [`Signals::stop`].
    Stop,
    /// [`Signals::guest_exit`].
    GuestExit,
    /// [`Signals::limit_hit`].
    InstructionLimit,
    /// [`Signals::halt_requested`].
    Requested,
    /// The wall-clock timeout passed.
    Timeout,
    /// The console showed a kernel panic, and its report ended or the
    /// grace period passed.
    KernelPanic,
}

/// How a supervised run ended, as far as the machine and the supervisor
/// know (a worker's own failure is the caller's to report).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ending {
    /// The guest stopped the machine.
    Guest(MachineExit),
    /// The guest kernel panicked (the console showed its panic line; a
    /// kernel that panics with `panic=N` resets the machine, and that
    /// reset is reported as the panic).
    KernelPanic,
    /// A hart reached the instruction limit.
    InstructionLimit,
    /// The wall-clock timeout passed.
    Timeout,
    /// Ctrl-C or the caller's stop flag.
    Interrupted,
}

impl Ending {
    /// The process exit status that reports this ending: 0 for a poweroff
    /// or reset, the guest's failure code (never 0 once truncated to 8
    /// bits), 124 for the instruction limit and the timeout (as
    /// `timeout(1)`), 1 for a kernel panic, 130 for Ctrl-C.
    pub const fn exit_status(self) -> u8 {
        match self {
            Ending::Guest(MachineExit::Poweroff | MachineExit::Reset) => 0,
            // A failure must never look like success once truncated to 8 bits.
            Ending::Guest(MachineExit::Fail(code)) => match (code & 0xff) as u8 {
                0 => 1,
                c => c,
            },
            Ending::InstructionLimit | Ending::Timeout => 124,
            Ending::KernelPanic => 1,
            Ending::Interrupted => 130,
        }
    }
}

/// The supervisor of one run: polled in the loop that waits for the
/// harts, it keeps the timeout and the panic grace period.
#[derive(Debug)]
pub struct Supervisor<'a> {
    start: Instant,
    timeout: Option<Duration>,
    watch: Option<&'a PanicWatch>,
    panic_since: Option<Instant>,
    timed_out: bool,
    panicked: bool,
}

impl<'a> Supervisor<'a> {
    /// A supervisor whose clock starts now, stopping the run after
    /// `timeout` and, when `watch` is given, shortly after the console
    /// showed a kernel panic.
    pub fn new(timeout: Option<Duration>, watch: Option<&'a PanicWatch>) -> Self {
        Self {
            start: Instant::now(),
            timeout,
            watch,
            panic_since: None,
            timed_out: false,
            panicked: false,
        }
    }

    /// When the supervisor started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Looks once: why the harts must halt now, if they must. A reason,
    /// once found, holds at every later poll (halting is idempotent, and
    /// repeating it wakes harts that went to sleep since).
    pub fn poll(&mut self, signals: Signals) -> Option<HaltReason> {
        if let Some(timeout) = self.timeout
            && !self.timed_out
            && self.start.elapsed() >= timeout
        {
            self.timed_out = true;
        }
        if let Some(watch) = self.watch
            && !self.panicked
            && watch.seen()
        {
            let since = *self.panic_since.get_or_insert_with(Instant::now);
            self.panicked = watch.ended() || since.elapsed() >= PANIC_GRACE;
        }
        [
            (signals.stop, HaltReason::Stop),
            (signals.guest_exit, HaltReason::GuestExit),
            (signals.limit_hit, HaltReason::InstructionLimit),
            (signals.halt_requested, HaltReason::Requested),
            (self.timed_out, HaltReason::Timeout),
            (self.panicked, HaltReason::KernelPanic),
        ]
        .into_iter()
        .find_map(|(holds, reason)| holds.then_some(reason))
    }

    /// The supervision loop: until `finished()`, reads `signals()`, calls
    /// `halt()` whenever [`Supervisor::poll`] finds a reason, and sleeps
    /// [`POLL_INTERVAL`].
    pub fn watch_until(
        &mut self,
        mut finished: impl FnMut() -> bool,
        mut signals: impl FnMut() -> Signals,
        mut halt: impl FnMut(HaltReason),
    ) {
        while !finished() {
            if let Some(reason) = self.poll(signals()) {
                halt(reason);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// How the run ended, once the harts stopped: `exit` is the machine's
    /// exit flag, `signals` read after the harts stopped. `None`: for no
    /// reason the supervisor knows (a worker asked for the halt).
    pub fn ending(&self, exit: Option<MachineExit>, signals: Signals) -> Option<Ending> {
        let panic_seen = self.watch.is_some_and(PanicWatch::seen);
        match exit {
            Some(MachineExit::Reset) if panic_seen => Some(Ending::KernelPanic),
            Some(exit) => Some(Ending::Guest(exit)),
            None if self.panicked => Some(Ending::KernelPanic),
            None if signals.limit_hit => Some(Ending::InstructionLimit),
            None if self.timed_out => Some(Ending::Timeout),
            None if signals.stop => Some(Ending::Interrupted),
            None => None,
        }
    }

    /// The panic line the console showed, if any.
    pub fn panic_line(&self) -> Option<String> {
        self.watch.and_then(PanicWatch::line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_that_holds_halts_and_classifies() {
        let mut s = Supervisor::new(None, None);
        assert_eq!(s.poll(Signals::default()), None);
        let limit = Signals {
            limit_hit: true,
            ..Signals::default()
        };
        assert_eq!(s.poll(limit), Some(HaltReason::InstructionLimit));
        let both = Signals {
            stop: true,
            ..limit
        };
        assert_eq!(s.poll(both), Some(HaltReason::Stop));
        assert_eq!(s.ending(None, both), Some(Ending::InstructionLimit));
        assert_eq!(
            s.ending(Some(MachineExit::Fail(3)), both),
            Some(Ending::Guest(MachineExit::Fail(3)))
        );
        let requested = Signals {
            halt_requested: true,
            ..Signals::default()
        };
        assert_eq!(s.poll(requested), Some(HaltReason::Requested));
        assert_eq!(s.ending(None, requested), None);
    }

    #[test]
    fn the_timeout_holds_once_passed() {
        let mut s = Supervisor::new(Some(Duration::ZERO), None);
        assert_eq!(s.poll(Signals::default()), Some(HaltReason::Timeout));
        assert_eq!(s.ending(None, Signals::default()), Some(Ending::Timeout));
        let mut calls = 0;
        let mut halts = Vec::new();
        s.watch_until(
            || {
                calls += 1;
                calls > 2
            },
            Signals::default,
            |r| halts.push(r),
        );
        assert_eq!(halts, [HaltReason::Timeout, HaltReason::Timeout]);
    }

    #[test]
    fn exit_statuses() {
        let status = |e: Ending| e.exit_status();
        assert_eq!(status(Ending::Guest(MachineExit::Poweroff)), 0);
        assert_eq!(status(Ending::Guest(MachineExit::Reset)), 0);
        assert_eq!(status(Ending::Guest(MachineExit::Fail(7))), 7);
        assert_eq!(status(Ending::Guest(MachineExit::Fail(0x100))), 1);
        assert_eq!(status(Ending::InstructionLimit), 124);
        assert_eq!(status(Ending::Timeout), 124);
        assert_eq!(status(Ending::KernelPanic), 1);
        assert_eq!(status(Ending::Interrupted), 130);
    }
}
