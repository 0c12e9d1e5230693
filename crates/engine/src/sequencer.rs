//! The global order's write-back watermark, shared by record and replay.
//!
//! `watermark() = S` means every entry with sequence number <= S has
//! finished writing back. Entries retire out of order (commit phase 3); the
//! watermark advances over the longest run of retired ones.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a waiter polls before it blocks. Replay hands the turn from
/// hart to hart up to a million times a second on sharing-heavy traces; a
/// blocked thread takes tens of microseconds to wake, while the hart it
/// waits for, running on another core, usually gets there within a few.
const SPIN: Duration = Duration::from_micros(20);

/// Polls `ready` for up to [`SPIN`], yielding the CPU between looks (the
/// awaited hart may share it); true once it holds.
pub(crate) fn spin_briefly(mut ready: impl FnMut() -> bool) -> bool {
    if ready() {
        return true;
    }
    let start = Instant::now();
    while start.elapsed() < SPIN {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if ready() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

pub(crate) struct Watermark {
    wm: AtomicU64,
    state: Mutex<Retirement>,
    aborted: AtomicBool,
}

/// What the watermark's lock guards.
#[derive(Default)]
struct Retirement {
    /// Entries retired beyond the watermark.
    retired: BTreeSet<u64>,
    /// Blocked waiters: the watermark each waits for, and its thread. A
    /// retirement wakes only those it lets go on (replay hands the turn
    /// from hart to hart 10^5 times per Linux boot; waking every waiter
    /// each time cost a fifth of a 4-hart replay in futile context
    /// switches). A waiter whose park timed out lists itself again in
    /// place of its old entry; an entry left by a waiter that gave up is
    /// woken later as a spurious wake-up, which waits tolerate.
    sleepers: Vec<(u64, Thread)>,
}

impl Retirement {
    fn wake_up_to(&mut self, wm: u64) {
        self.sleepers.retain(|(seq, thread)| {
            if *seq <= wm {
                thread.unpark();
                false
            } else {
                true
            }
        });
    }

    fn wake_all(&mut self) {
        for (_, thread) in self.sleepers.drain(..) {
            thread.unpark();
        }
    }
}

impl Watermark {
    pub(crate) fn new() -> Self {
        Self {
            wm: AtomicU64::new(0),
            state: Mutex::new(Retirement::default()),
            aborted: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.wm.load(Ordering::Acquire)
    }

    /// Entry `seq` has written back.
    pub(crate) fn retire(&self, seq: u64) {
        let mut state = self.state.lock();
        let mut wm = self.wm.load(Ordering::Acquire);
        if seq != wm + 1 {
            state.retired.insert(seq);
            return;
        }
        wm = seq;
        while state.retired.remove(&(wm + 1)) {
            wm += 1;
        }
        self.wm.store(wm, Ordering::Release);
        state.wake_up_to(wm);
    }

    /// Waits until the watermark reaches `seq`. False if aborted.
    pub(crate) fn wait_for(&self, seq: u64) -> bool {
        if spin_briefly(|| self.get() >= seq) {
            return true;
        }
        loop {
            {
                // Checked and listed under the lock `retire` takes: no
                // retirement can slip between the two.
                let mut state = self.state.lock();
                if self.get() >= seq {
                    return true;
                }
                if self.aborted.load(Ordering::Acquire) {
                    return false;
                }
                // Listed once, however often the park timed out.
                let me = std::thread::current();
                state.sleepers.retain(|(_, t)| t.id() != me.id());
                state.sleepers.push((seq, me));
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Sets the watermark to `seq` with nothing retired beyond it, and
    /// lifts an abort (a replay going back to a checkpoint). Called with
    /// no waiter about (between a session's runs): the sleepers list is
    /// left as it is.
    pub(crate) fn reset(&self, seq: u64) {
        let mut state = self.state.lock();
        state.retired.clear();
        self.wm.store(seq, Ordering::Release);
        self.aborted.store(false, Ordering::Release);
    }

    /// Makes every waiter give up.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.state.lock().wake_all();
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_retirement_advances_over_runs() {
        let w = Watermark::new();
        w.retire(2);
        w.retire(3);
        assert_eq!(w.get(), 0);
        w.retire(1);
        assert_eq!(w.get(), 3);
        w.retire(5);
        assert_eq!(w.get(), 3);
        w.retire(4);
        assert_eq!(w.get(), 5);
        assert!(w.wait_for(5));
    }

    #[test]
    fn abort_releases_waiters() {
        let w = std::sync::Arc::new(Watermark::new());
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait_for(10));
        std::thread::sleep(Duration::from_millis(10));
        w.abort();
        assert!(!t.join().unwrap());
    }
}
