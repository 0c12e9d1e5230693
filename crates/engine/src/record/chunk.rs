//! The chunk strategy (Samsara): each hart runs on its own host thread, in
//! chunks. Inside a chunk its writes go to private copies (the
//! [`AdTable`](crate::table::AdTable)); at the end the A/D walk gives its
//! read and write sets, a short critical section checks them against every
//! chunk that committed while it ran, and either squashes it (restore and
//! re-execute) or takes a sequence number and publishes its write set
//! (phase 1); the private pages are then written back outside the lock
//! (phase 2) and the entry retires, in any order (phase 3). Device accesses
//! take sequence numbers of their own. See `docs/record-replay.md`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use samsara_cpu::{Hart, StopReason};
use samsara_machine::board::Board;
use samsara_trace::{Check, ChunkRecord, Entry, Event, Truncation};
use samsara_types::HartId;

use super::log::EntryLog;
use super::{Perturb, RecordConfig, Strategy};
use crate::BATCH;
use crate::chunk_bus::{ChunkBus, Mode};
use crate::code_watch::{CodeSeen, CodeWatch};
use crate::sequencer::Watermark;
use crate::table::ChunkSets;

/// A hart's chunks start at this size (or the limit, if smaller) and come
/// back to it after a squash; clean chunks double it up to the limit.
const RESTART_CHUNK_SIZE: u64 = 100_000;
/// Below this size a repeatedly squashed chunk runs exclusively.
const MIN_CHUNK_SIZE: u64 = 2_000;
/// Squashes in a row after which a chunk runs exclusively.
const EXCLUSIVE_AFTER_SQUASHES: u32 = 6;
/// Longest a hart that ended a chunk at a `pause` waits for another commit.
const SPIN_WAIT: Duration = Duration::from_micros(200);

/// A committed chunk's write set, kept while some running chunk may
/// still conflict with it.
struct Published {
    seq: u64,
    pages: Vec<u32>,
}

/// The commit lock's state (phase 1): the log, and the write sets running
/// chunks are checked against.
pub(crate) struct ChunkCommit {
    pub(crate) log: EntryLog,
    history: VecDeque<Published>,
}

/// Everything the hart threads and the DMA sink share (chunk and serial
/// strategies).
pub(crate) struct ChunkRecorder {
    pub(crate) commit: Mutex<ChunkCommit>,
    pub(crate) wm: Watermark,
    /// Normal chunks hold it shared; an exclusive chunk holds it alone.
    pub(crate) gate: RwLock<()>,
    /// Per hart: start watermark of its running chunk (u64::MAX when idle),
    /// for pruning the history.
    start_wm: Vec<AtomicU64>,
    pub(crate) halt: AtomicBool,
    pub(crate) squashes: AtomicU64,
    pub(crate) squashed_steps: AtomicU64,
    pub(crate) exclusive: AtomicU64,
    pub(crate) dma: AtomicU64,
    /// Sequence number of the newest write set in the history: a running
    /// chunk checks for conflicts early only when it moved.
    newest_published: AtomicU64,
    /// Count of committed entries that wrote memory, bumped after their
    /// write-back: what a spinning hart waits for.
    writes: Mutex<u64>,
    writes_cv: Condvar,
    /// Pages fetched from and writes to them: when harts keep their
    /// translated code across chunk starts.
    pub(crate) code: Arc<CodeWatch>,
    /// The device-access entry running now: output it produces waits for
    /// a standby's acknowledgement of it (the output rule).
    pub(crate) producing: Arc<AtomicU64>,
    /// Each hart's interrupt lines as the trace last logged them (all 0
    /// at a recording's start; a takeover's from the replay).
    initial_lines: Vec<u64>,
    /// Raised when console output waits for a standby's acknowledgement:
    /// the pending entries should go to the writer now.
    pub(crate) flush: Arc<FlushSignal>,
}

/// A wake-up for the standby's flusher.
#[derive(Default)]
pub(crate) struct FlushSignal {
    wanted: Mutex<bool>,
    cv: Condvar,
}

impl FlushSignal {
    pub(crate) fn wake(&self) {
        *self.wanted.lock() = true;
        self.cv.notify_one();
    }

    /// Waits up to `timeout` for a wake-up; whether one came.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let mut wanted = self.wanted.lock();
        if !*wanted {
            let _ = self.cv.wait_for(&mut wanted, timeout);
        }
        std::mem::take(&mut *wanted)
    }
}

impl ChunkRecorder {
    /// A recorder for `harts` harts and `ram_size` bytes of RAM, with no
    /// trace writer yet, whose first entry is `first_seq` (1, or where a
    /// takeover goes on) and whose harts' last logged lines are `lines`
    /// (empty: all 0).
    pub(crate) fn new(harts: u32, ram_size: u64, first_seq: u64, lines: Vec<u64>) -> Self {
        let wm = Watermark::new();
        wm.reset(first_seq - 1);
        Self {
            commit: Mutex::new(ChunkCommit {
                log: EntryLog::starting_at(first_seq),
                history: VecDeque::new(),
            }),
            wm,
            gate: RwLock::new(()),
            start_wm: (0..harts).map(|_| AtomicU64::new(u64::MAX)).collect(),
            halt: AtomicBool::new(false),
            squashes: AtomicU64::new(0),
            squashed_steps: AtomicU64::new(0),
            exclusive: AtomicU64::new(0),
            dma: AtomicU64::new(0),
            newest_published: AtomicU64::new(0),
            writes: Mutex::new(0),
            writes_cv: Condvar::new(),
            code: Arc::new(CodeWatch::new((ram_size >> 12) as usize)),
            producing: Arc::new(AtomicU64::new(0)),
            initial_lines: lines,
            flush: Arc::new(FlushSignal::default()),
        }
    }

    /// Publishes entry `seq`'s write set (under the commit lock), for the
    /// conflict checks of chunks that started before it wrote back.
    pub(crate) fn publish(&self, state: &mut ChunkCommit, seq: u64, pages: Vec<u32>) {
        if pages.is_empty() {
            return;
        }
        state.history.push_back(Published { seq, pages });
        self.newest_published.store(seq, Ordering::Release);
    }

    /// An entry that wrote memory has written back: wake spinning harts.
    pub(crate) fn published_writes(&self) {
        *self.writes.lock() += 1;
        self.writes_cv.notify_all();
    }

    /// Waits (at most `timeout`) until an entry that wrote memory commits
    /// after the `seen`th: a spinning hart re-runs only when memory changed.
    fn wait_for_writes(&self, seen: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut writes = self.writes.lock();
        while *writes == seen && !self.halt.load(Ordering::Relaxed) {
            if self.writes_cv.wait_until(&mut writes, deadline).timed_out() {
                break;
            }
        }
    }

    /// Appends an entry under the commit lock; a failed writer halts the
    /// recording.
    pub(crate) fn append(&self, state: &mut ChunkCommit, entry: Entry) {
        if !state.log.append(entry) {
            self.halt.store(true, Ordering::SeqCst);
        }
    }

    /// Drops published write sets no running chunk can conflict with.
    fn prune(&self, state: &mut ChunkCommit) {
        let oldest = self
            .start_wm
            .iter()
            .map(|w| w.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
            .min(self.wm.get());
        while state.history.front().is_some_and(|p| p.seq <= oldest) {
            state.history.pop_front();
        }
    }
}

/// A hart's chunk size, adapted to how often its chunks conflict. Chunks
/// start at `RESTART_CHUNK_SIZE` (or the limit, if smaller); one that runs
/// its full size without a squash doubles it up to the limit, so where
/// harts share little chunks are long and the log short. A squash halves
/// it for the retry; once a retry commits, the next chunk starts again at
/// the restart size. Repeated squashes make the retry exclusive.
#[derive(Debug)]
struct ChunkSizer {
    limit: u64,
    size: u64,
    squashes_in_row: u32,
}

impl ChunkSizer {
    fn new(limit: u64) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            size: limit.min(RESTART_CHUNK_SIZE),
            squashes_in_row: 0,
        }
    }

    /// Whether the next attempt must run alone (it cannot conflict then).
    fn exclusive(&self) -> bool {
        self.squashes_in_row >= EXCLUSIVE_AFTER_SQUASHES
            || (self.squashes_in_row > 0 && self.size < MIN_CHUNK_SIZE)
    }

    fn squashed(&mut self) {
        self.squashes_in_row += 1;
        self.size = (self.size / 2).max(1);
    }

    fn committed(&mut self, reason: Truncation) {
        if self.squashes_in_row > 0 {
            self.size = self.limit.min(RESTART_CHUNK_SIZE);
        } else if reason == Truncation::SizeLimit {
            self.size = self.size.saturating_mul(2).min(self.limit);
        }
        self.squashes_in_row = 0;
    }
}

/// One hart's recording loop and its per-chunk state (chunk strategy; the
/// serial strategy drives it with `serial` set, see `serial.rs`).
pub(crate) struct HartRecorder<'a> {
    pub(crate) hart: &'a mut Hart,
    pub(crate) board: &'a Board,
    pub(crate) rec: &'a ChunkRecorder,
    pub(crate) bus: ChunkBus<'a>,
    sets: ChunkSets,
    pub(crate) id: usize,
    pub(crate) chunk_size: u64,
    pub(crate) limit: u64,
    check_every: u64,
    chunks: u64,
    /// The interrupt lines the trace says this hart last saw.
    logged_lines: u64,
    /// Serial strategy: this hart never runs beside another; devices are
    /// accessed inside quanta and memory is written directly.
    pub(crate) serial: bool,
    perturb: Option<Perturb>,
    code_seen: CodeSeen,
    /// Every hart's interrupt lines before this hart's last device access.
    lines_before: Vec<u64>,
}

/// How a chunk attempt went.
pub(crate) enum Attempt {
    Committed,
    Squashed,
}

impl<'a> HartRecorder<'a> {
    pub(crate) fn new(
        hart: &'a mut Hart,
        board: &'a Board,
        rec: &'a ChunkRecorder,
        config: &RecordConfig,
        seed: Option<u64>,
    ) -> Self {
        let id = hart.hart_id();
        hart.set_stop_on_pause(config.strategy == Strategy::Chunk);
        hart.set_stop_on_user_switch(config.strategy == Strategy::Chunk);
        let mut bus = ChunkBus::new(board.clone(), id, Mode::Record, config.strategy);
        if config.strategy == Strategy::Chunk {
            bus.code = Some(rec.code.clone());
        }
        Self {
            hart,
            board,
            rec,
            bus,
            sets: ChunkSets::default(),
            id: id.index(),
            chunk_size: config.chunk_size.max(1),
            limit: config.max_instructions.unwrap_or(u64::MAX),
            check_every: config.check_every,
            chunks: 0,
            logged_lines: rec.initial_lines.get(id.index()).copied().unwrap_or(0),
            serial: false,
            perturb: seed.map(Perturb),
            code_seen: CodeSeen::default(),
            lines_before: Vec::new(),
        }
    }

    /// A hart of the serial strategy: never beside another, devices
    /// accessed inside quanta, memory written directly.
    pub(crate) fn serial(
        hart: &'a mut Hart,
        board: &'a Board,
        rec: &'a ChunkRecorder,
        config: &RecordConfig,
    ) -> Self {
        let mut w = Self::new(hart, board, rec, config, None);
        w.serial = true;
        w
    }

    /// No chunk of this hart is running (for pruning the history).
    pub(crate) fn idle(&self) {
        self.rec.start_wm[self.id].store(u64::MAX, Ordering::Release);
    }

    pub(crate) fn halted(&self) -> bool {
        self.rec.halt.load(Ordering::Relaxed)
    }

    pub(crate) fn run(&mut self, limit_hit: &AtomicBool) {
        let mut sizer = ChunkSizer::new(self.chunk_size);
        while !self.halted() {
            if self.hart.steps().0 >= self.limit {
                limit_hit.store(true, Ordering::SeqCst);
                break;
            }
            let exclusive = sizer.exclusive();
            let mut budget = sizer.size.min(self.limit - self.hart.steps().0);
            if let Some(p) = &mut self.perturb {
                p.maybe_delay();
                budget = (budget / 2 + p.next() % (budget / 2 + 1)).max(1);
            }
            let seen_writes = *self.rec.writes.lock();
            let (attempt, reason) = self.chunk(budget, exclusive);
            match attempt {
                Attempt::Squashed => {
                    sizer.squashed();
                    continue;
                }
                Attempt::Committed => sizer.committed(reason),
            }
            match reason {
                Truncation::DeviceAccess => self.device_op(),
                // A spinning hart waits until someone else commits: running
                // on would only spin through stale memory.
                Truncation::Spin => self.rec.wait_for_writes(seen_writes, SPIN_WAIT),
                Truncation::Wfi if !self.halted() => {
                    let mie = self.hart.state().csr.mie;
                    self.board
                        .irq
                        .wait_for_interrupt(HartId(self.id as u32), mie, &self.rec.halt);
                }
                _ => {}
            }
        }
        self.idle();
    }

    /// Latches the interrupt lines for a new chunk, logging a change.
    fn latch_lines(&mut self) {
        let lines = self.board.irq.lines(HartId(self.id as u32));
        self.bus.lines = lines;
        self.bus.events.clear();
        self.bus.quiet_accesses.clear();
        if lines != self.logged_lines {
            self.bus.events.push(Event::Lines(lines));
        }
    }

    /// Runs and commits (or squashes) one chunk of at most `budget` steps.
    pub(crate) fn chunk(&mut self, budget: u64, exclusive: bool) -> (Attempt, Truncation) {
        let rec = self.rec;
        let _shared;
        let _alone;
        let start_wm = if exclusive {
            _alone = rec.gate.write();
            // Everything already sequenced must be written back first.
            let last = rec.commit.lock().log.next_seq() - 1;
            rec.wm.wait_for(last);
            rec.start_wm[self.id].store(last, Ordering::Release);
            last
        } else {
            _shared = rec.gate.read();
            // Read and publish under the commit lock: a prune between the
            // two could drop write sets this chunk must be checked against.
            let _state = rec.commit.lock();
            let wm = rec.wm.get();
            rec.start_wm[self.id].store(wm, Ordering::Release);
            wm
        };
        let snapshot = self.hart.snapshot();
        self.code_seen
            .start_chunk(self.hart, self.bus.code.as_deref());
        self.hart.begin_attempt();
        self.hart.clear_reservation();
        self.latch_lines();
        self.bus.mmio_allowed = self.serial;

        let start_steps = self.hart.steps().0;
        let mut reason = Truncation::SizeLimit;
        // The architectural state at this chunk's last `pause`: a hart that
        // comes back to it unchanged is spinning on stale memory, while one
        // that changed (a counted delay loop) is making progress.
        let mut last_pause: Option<(u64, [u64; 32])> = None;
        // Early checks look only at write sets published since the last one
        // (the final check looks at all since `start_wm`: pages touched
        // after an early check may meet an entry it passed).
        let mut scanned = start_wm;
        let mut doomed = false;
        loop {
            let done = self.hart.steps().0 - start_steps;
            if done >= budget {
                break;
            }
            let mut batch_ended = true;
            match self.hart.run(&mut self.bus, BATCH.min(budget - done)) {
                StopReason::Wfi => {
                    reason = Truncation::Wfi;
                    break;
                }
                StopReason::DeviceAccess => {
                    reason = Truncation::DeviceAccess;
                    break;
                }
                StopReason::UserSwitch => {
                    reason = Truncation::Trap;
                    break;
                }
                StopReason::Pause => {
                    let state = self.hart.state();
                    let here = (state.pc, state.x);
                    if last_pause == Some(here) {
                        reason = Truncation::Spin;
                        break;
                    }
                    last_pause = Some(here);
                    batch_ended = false;
                }
                StopReason::StepLimit => {}
                StopReason::Watch | StopReason::Breakpoint => {
                    unreachable!("a recording sets no watches or breakpoints")
                }
            }
            if self.hart.steps().0 - start_steps >= budget {
                break;
            }
            if self.halted() {
                reason = Truncation::Stop;
                break;
            }
            if self.board.irq.lines(HartId(self.id as u32)) != self.bus.lines {
                reason = Truncation::Trap;
                break;
            }
            // A chunk that already touched a page someone committed since it
            // started will be squashed: stop now rather than run it out.
            if !exclusive && rec.newest_published.load(Ordering::Acquire) > scanned {
                let state = rec.commit.lock();
                doomed = self.conflicts(&state, scanned);
                scanned = state.log.next_seq() - 1;
                if doomed {
                    break;
                }
            }
            // Delays go between batches, not after every `pause` of a
            // delay loop (thousands per chunk).
            if let Some(p) = self.perturb.as_mut().filter(|_| batch_ended) {
                p.maybe_delay();
            }
        }
        if self.halted() && reason == Truncation::SizeLimit {
            reason = Truncation::Stop;
        }
        let steps = self.hart.steps().0 - start_steps;
        self.bus.table.walk(&mut self.sets);
        // A chunk already known to be squashed needs no digests.
        let check = if doomed { None } else { self.make_check() };

        // Phase 1: conflict check, sequence number, publication.
        let mut state = rec.commit.lock();
        if doomed || self.conflicts(&state, start_wm) {
            drop(state);
            self.bus.table.reset(&self.sets);
            self.hart.abandon_attempt(&snapshot);
            rec.squashes.fetch_add(1, Ordering::Relaxed);
            rec.squashed_steps.fetch_add(steps, Ordering::Relaxed);
            return (Attempt::Squashed, reason);
        }
        let seq = state.log.sequence(reason);
        rec.publish(&mut state, seq, self.sets.dirty.clone());
        if exclusive && !self.serial {
            rec.exclusive.fetch_add(1, Ordering::Relaxed);
        }
        self.logged_lines = self.bus.lines;
        let entry = ChunkRecord {
            hart: self.id as u8,
            steps,
            back: seq - start_wm,
            reason,
            exclusive,
            events: std::mem::take(&mut self.bus.events),
            check,
        };
        rec.append(&mut state, Entry::Chunk(entry));
        rec.prune(&mut state);
        drop(state);

        // Phase 2: write back, concurrently with other committers (their
        // write sets cannot intersect ours: the conflict check saw to it).
        // Phase 3: retire.
        self.write_back_and_retire(seq);
        (Attempt::Committed, reason)
    }

    /// Whether a write set published after entry `after` touches a page
    /// this chunk has touched (the commit lock held).
    fn conflicts(&self, state: &ChunkCommit, after: u64) -> bool {
        state.history.iter().filter(|p| p.seq > after).any(|p| {
            p.pages
                .iter()
                .any(|&pg| self.bus.table.touched(pg as usize))
        })
    }

    /// Commit phases 2 and 3 of entry `seq`: private pages to shared RAM,
    /// retirement into the watermark, spinning harts woken if memory changed.
    fn write_back_and_retire(&mut self, seq: u64) {
        let rec = self.rec;
        self.write_back();
        rec.wm.retire(seq);
        if !self.sets.dirty.is_empty() {
            rec.published_writes();
        }
        rec.start_wm[self.id].store(u64::MAX, Ordering::Release);
        self.chunks += 1;
    }

    fn write_back(&mut self) {
        self.bus.write_back(&self.sets);
    }

    /// Verification digests for every `check_every`th chunk of this hart.
    fn make_check(&self) -> Option<Box<Check>> {
        if self.check_every == 0 || !self.chunks.is_multiple_of(self.check_every) {
            return None;
        }
        let state = self.hart.state();
        let pages = self.bus.written_page_hashes(&self.sets);
        Some(Box::new(Check {
            hart_digest: state.digest(),
            pc: state.pc,
            x: state.x,
            pages,
        }))
    }

    /// The device access that ended the last chunk, in its own place in the
    /// global order: a one-instruction chunk with devices enabled, run while
    /// holding the commit lock once everything before it has written back,
    /// so its side effects are totally ordered with every commit.
    fn device_op(&mut self) {
        let rec = self.rec;
        if self.halted() {
            return;
        }
        let _shared = rec.gate.read();
        let mut state = rec.commit.lock();
        if !rec.wm.wait_for(state.log.next_seq() - 1) {
            return;
        }
        let irq = &self.board.irq;
        self.lines_before.clear();
        self.lines_before
            .extend((0..irq.hart_count()).map(|h| irq.lines(HartId(h))));
        let seq = state.log.sequence(Truncation::DeviceOp);
        rec.producing.store(seq, Ordering::Release);
        rec.start_wm[self.id].store(seq - 1, Ordering::Release);
        self.code_seen
            .start_chunk(self.hart, self.bus.code.as_deref());
        self.hart.clear_reservation();
        self.latch_lines();
        self.bus.mmio_allowed = true;
        let start_steps = self.hart.steps().0;
        self.hart.run(&mut self.bus, 1);
        self.bus.mmio_allowed = false;
        let steps = self.hart.steps().0 - start_steps;
        self.bus.table.walk(&mut self.sets);
        let check = self.make_check();
        rec.publish(&mut state, seq, self.sets.dirty.clone());
        self.logged_lines = self.bus.lines;
        let entry = ChunkRecord {
            hart: self.id as u8,
            steps,
            back: 1,
            reason: Truncation::DeviceOp,
            exclusive: false,
            events: std::mem::take(&mut self.bus.events),
            check,
        };
        rec.append(&mut state, Entry::Chunk(entry));
        self.write_back_and_retire(seq);
        drop(state);
        drop(_shared);
        // An interrupt raised for another hart (an IPI: OpenSBI's remote
        // fences then spin until the target answers) is answered sooner if
        // this thread lets the target's run: there are more harts than
        // host cores. In the 4-hart Linux boot on 2 cores this cut the
        // instructions squashed from ~260 M to ~200 M.
        if self.raised_elsewhere() {
            std::thread::yield_now();
        }
    }

    /// Whether a hart other than this one has an interrupt line up that
    /// was down in `lines_before`.
    fn raised_elsewhere(&self) -> bool {
        let irq = &self.board.irq;
        self.lines_before
            .iter()
            .enumerate()
            .any(|(h, &before)| h != self.id && irq.lines(HartId(h as u32)) & !before != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_grow_while_clean_and_restart_after_a_squash() {
        let mut s = ChunkSizer::new(1_000_000);
        assert_eq!(s.size, RESTART_CHUNK_SIZE);
        // Full-size clean chunks double the size, up to the limit.
        for want in [200_000, 400_000, 800_000, 1_000_000, 1_000_000] {
            s.committed(Truncation::SizeLimit);
            assert_eq!(s.size, want);
        }
        // A chunk cut short (a device access) leaves it alone.
        s.committed(Truncation::DeviceAccess);
        assert_eq!(s.size, 1_000_000);
        // Squashes halve it for the retries; the last ones run alone.
        for k in 1..=EXCLUSIVE_AFTER_SQUASHES {
            assert!(!s.exclusive());
            s.squashed();
            assert_eq!(s.size, 1_000_000 >> k);
        }
        assert!(s.exclusive());
        // Once a retry commits, the next chunk starts over.
        s.committed(Truncation::SizeLimit);
        assert_eq!((s.size, s.exclusive()), (RESTART_CHUNK_SIZE, false));
        // A retry below the minimum size runs alone; a small limit is kept.
        let mut small = ChunkSizer::new(3_000);
        assert_eq!(small.size, 3_000);
        small.squashed();
        assert!(small.exclusive(), "a 1 500-instruction retry runs alone");
        small.committed(Truncation::SizeLimit);
        assert_eq!((small.size, small.exclusive()), (3_000, false));
    }
}
