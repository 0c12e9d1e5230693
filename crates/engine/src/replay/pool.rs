//! Parallel replay on a pool of host threads, as many as the host has
//! cores (at most one per hart), any of which runs any hart's entries.
//!
//! One thread per hart made the host's scheduler pick which hart ran, and
//! it knew nothing of the recording's order. A finished entry waited, its
//! thread parked, for its turn to write back, and every hand-off from one
//! hart's entry to the next hart's was a wake-up of another thread: the
//! 4-hart Linux boot (10⁵ entries) replayed in parallel barely faster
//! than on one thread, and sharing-heavy bare-metal traces slower. Here a
//! thread takes, whenever it is free, the work earliest in the order:
//! - the write-back of a finished entry whose turn it is;
//! - else the earliest entry that may start (its hart not busy, its wait
//!   satisfied: [`Policy::ready`]) or DMA that may apply.
//!
//! A finished entry whose turn has not come is left pending (its pages
//! stay in its hart's table, the hart stays busy) and the thread goes on
//! with other work; whoever finds it due writes it back. Dependent entries
//! then run back to back on one thread, and independent ones side by side.
//!
//! No deadlock: a thread waits only when it has nothing to do, and the
//! earliest entry not yet retired can always go on — everything before it
//! has retired, so its wait is satisfied (the dispatcher's
//! [`Admission`](super::policy::Admission) refuses entries that could not
//! be), no earlier entry of its hart holds the hart, and if it is pending
//! its turn has come.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};
use samsara_cpu::Hart;
use samsara_trace::{ChunkRecord, DmaRecord};

use super::Shared;
use super::hart::{Advance, Finished, HartReplayer};
use super::policy::Policy;
use crate::EngineError;
use crate::sequencer::spin_briefly;

/// How often an idle thread looks at the abort flag (nothing wakes it for
/// one).
const ABORT_POLL: Duration = Duration::from_millis(20);

/// Applies a DMA entry (the session's rules, its errors named there).
pub(crate) type ApplyDma<'a> = dyn Fn(u64, &DmaRecord) -> Result<(), EngineError> + Sync + 'a;

pub(crate) struct Pool<'h> {
    state: Mutex<PoolState>,
    /// Bumped whenever work may have become possible (an entry handed
    /// out, a retirement, a hart or the DMA freed): what an idle thread
    /// watches while it spins before sleeping.
    events: AtomicU64,
    wake: Condvar,
    harts: Vec<Mutex<HartSlot<'h>>>,
}

struct HartSlot<'h> {
    hart: &'h mut Hart,
    replayer: &'h mut HartReplayer,
}

struct PoolState {
    /// Per hart: its entries handed out and not yet started, in order.
    queued: Vec<VecDeque<(u64, ChunkRecord)>>,
    dma: VecDeque<(u64, DmaRecord)>,
    /// Per hart: an entry of it is running or pending write-back.
    busy: Vec<bool>,
    dma_busy: bool,
    /// Finished entries waiting for their write-back turn, and their hart.
    pending: BTreeMap<u64, usize>,
    /// No more entries come.
    closed: bool,
    /// Threads waiting for work.
    sleepers: usize,
}

enum Task {
    WriteBack {
        seq: u64,
        hart: usize,
    },
    Run {
        seq: u64,
        hart: usize,
        record: ChunkRecord,
    },
    Dma {
        seq: u64,
        dma: DmaRecord,
    },
}

impl PoolState {
    fn idle(&self) -> bool {
        self.queued.iter().all(VecDeque::is_empty)
            && self.dma.is_empty()
            && !self.dma_busy
            && !self.busy.iter().any(|&b| b)
    }

    /// The work earliest in the order that can be done now, if any.
    fn find(&self, shared: &Shared) -> Option<Pick> {
        let wm = shared.wm.get();
        if let Some((&seq, _)) = self.pending.first_key_value()
            && seq == wm + 1
        {
            return Some(Pick::WriteBack);
        }
        let mut best: Option<(u64, Pick)> = None;
        for (h, queue) in self.queued.iter().enumerate() {
            if let Some((seq, record)) = queue.front()
                && !self.busy[h]
                && best.is_none_or(|(b, _)| *seq < b)
                && shared.policy.ready(&shared.wm, *seq, record)
            {
                best = Some((*seq, Pick::Run(h)));
            }
        }
        if let Some(&(seq, _)) = self.dma.front()
            && !self.dma_busy
            && wm + 1 == seq
            && best.is_none_or(|(b, _)| seq < b)
        {
            best = Some((seq, Pick::Dma));
        }
        best.map(|(_, pick)| pick)
    }

    /// Takes the work [`PoolState::find`] picked.
    fn take(&mut self, pick: Pick) -> Task {
        match pick {
            Pick::WriteBack => {
                let (seq, hart) = self.pending.pop_first().expect("found");
                Task::WriteBack { seq, hart }
            }
            Pick::Run(h) => {
                let (seq, record) = self.queued[h].pop_front().expect("found");
                self.busy[h] = true;
                Task::Run {
                    seq,
                    hart: h,
                    record,
                }
            }
            Pick::Dma => {
                let (seq, dma) = self.dma.pop_front().expect("found");
                self.dma_busy = true;
                Task::Dma { seq, dma }
            }
        }
    }
}

/// Which work [`PoolState::find`] found.
#[derive(Clone, Copy)]
enum Pick {
    WriteBack,
    Run(usize),
    Dma,
}

impl<'h> Pool<'h> {
    pub fn new(harts: impl IntoIterator<Item = (&'h mut Hart, &'h mut HartReplayer)>) -> Self {
        let harts: Vec<_> = harts
            .into_iter()
            .map(|(hart, replayer)| Mutex::new(HartSlot { hart, replayer }))
            .collect();
        let n = harts.len();
        Self {
            state: Mutex::new(PoolState {
                queued: (0..n).map(|_| VecDeque::new()).collect(),
                dma: VecDeque::new(),
                busy: vec![false; n],
                dma_busy: false,
                pending: BTreeMap::new(),
                closed: false,
                sleepers: 0,
            }),
            events: AtomicU64::new(0),
            wake: Condvar::new(),
            harts,
        }
    }

    /// Threads to run: one per host core, at most one per hart.
    pub fn threads(harts: usize) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.min(harts).max(1)
    }

    /// Hands out chunk `seq` (admitted: its hart exists).
    pub fn push(&self, seq: u64, record: ChunkRecord) {
        let hart = usize::from(record.hart);
        let mut state = self.state.lock();
        state.queued[hart].push_back((seq, record));
        self.signal(&state);
    }

    pub fn push_dma(&self, seq: u64, dma: DmaRecord) {
        let mut state = self.state.lock();
        state.dma.push_back((seq, dma));
        self.signal(&state);
    }

    /// Work may have become possible: spinning threads see the count
    /// move, and one sleeping thread is woken.
    fn signal(&self, state: &PoolState) {
        self.events.fetch_add(1, Ordering::Release);
        if state.sleepers > 0 {
            self.wake.notify_one();
        }
    }

    /// No more entries: threads return once everything handed out is done.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.events.fetch_add(1, Ordering::Release);
        self.wake.notify_all();
    }

    /// One pool thread: works until everything handed out is done and the
    /// pool is closed, or the replay is aborted.
    pub fn work(&self, shared: &Shared, apply_dma: &ApplyDma<'_>) {
        // A thread that panics may leave a hart busy for good: the others
        // must not wait for it.
        let _abort = AbortOnPanic(shared);
        let mut state = self.state.lock();
        loop {
            if shared.wm.is_aborted() {
                return;
            }
            let Some(pick) = state.find(shared) else {
                if state.closed && state.idle() {
                    // The others may be asleep: they are done too.
                    self.wake.notify_all();
                    return;
                }
                // Entries last tens of microseconds: spin a little before
                // sleeping (a wake-up costs about as much).
                let seen = self.events.load(Ordering::Acquire);
                let moved = MutexGuard::unlocked(&mut state, || {
                    spin_briefly(|| self.events.load(Ordering::Acquire) != seen)
                });
                if !moved && self.events.load(Ordering::Acquire) == seen {
                    state.sleepers += 1;
                    self.wake.wait_for(&mut state, ABORT_POLL);
                    state.sleepers -= 1;
                }
                continue;
            };
            let task = state.take(pick);
            // More work ready than this thread takes: wake a sleeper.
            if state.sleepers > 0 && state.find(shared).is_some() {
                self.wake.notify_one();
            }
            let freed = MutexGuard::unlocked(&mut state, || self.run(task, shared, apply_dma));
            match freed {
                Freed::Hart(h) => state.busy[h] = false,
                Freed::Dma => state.dma_busy = false,
                Freed::Pending { seq, hart } => {
                    state.pending.insert(seq, hart);
                }
                Freed::Nothing => {}
            }
            // A retirement or a free hart may let others go on; this
            // thread looks first.
            self.events.fetch_add(1, Ordering::Release);
        }
    }

    fn run(&self, task: Task, shared: &Shared, apply_dma: &ApplyDma<'_>) -> Freed {
        match task {
            Task::WriteBack { seq, hart } => {
                self.harts[hart].lock().replayer.write_back(shared, seq);
                Freed::Hart(hart)
            }
            Task::Dma { seq, dma } => {
                match apply_dma(seq, &dma) {
                    Ok(()) => shared.wm.retire(seq),
                    Err(e) => shared.fail(e),
                }
                Freed::Dma
            }
            Task::Run { seq, hart, record } => {
                let mut slot = self.harts[hart].lock();
                let HartSlot { hart: h, replayer } = &mut *slot;
                let Some(cur) = replayer.begin(h, shared, seq, record) else {
                    return Freed::Nothing;
                };
                // Nothing earlier still running or writing back: on shared
                // memory, no copies (see `AdTable::set_shared_writes`).
                if matches!(shared.policy, Policy::Chunk) && shared.wm.get() + 1 == seq {
                    replayer.bus.table.set_shared_writes(true);
                }
                let steps = cur.record.steps;
                loop {
                    match replayer.advance(h, shared, &cur, steps, &mut super::NoObserver) {
                        Advance::Reached => break,
                        // Nobody to stop for on this path: run on.
                        Advance::Watch | Advance::Breakpoint => {}
                        Advance::Observer | Advance::Failed => return Freed::Nothing,
                    }
                }
                match replayer.finish_body(h, shared, &cur) {
                    Finished::Failed => Freed::Nothing,
                    Finished::Retired => Freed::Hart(hart),
                    Finished::WriteBackDue if shared.wm.get() + 1 == seq => {
                        replayer.write_back(shared, seq);
                        Freed::Hart(hart)
                    }
                    Finished::WriteBackDue => Freed::Pending { seq, hart },
                }
            }
        }
    }
}

/// Aborts the replay if a pool thread unwinds.
struct AbortOnPanic<'a>(&'a Shared);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.wm.abort();
        }
    }
}

/// What a finished task gives back to the pool.
enum Freed {
    Hart(usize),
    Dma,
    Pending {
        seq: u64,
        hart: usize,
    },
    /// The replay failed or was aborted.
    Nothing,
}
