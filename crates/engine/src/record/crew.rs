//! The CREW baseline (`--strategy crew`): concurrent-read, exclusive-write
//! page ownership, the software scheme of SMP-ReVirt that Samsara compares
//! itself with. Design and correctness argument: `docs/crew-baseline.md`.
//!
//! Every RAM page is either owned by one hart (which may read and write it)
//! or readable by a set of harts. Harts run in parallel on shared RAM; a
//! hart touching a page it has no right to has that instruction refused
//! (`Bus::ram_refused`: no effect, the hart stops before it), takes the
//! ownership lock, and makes every conflicting holder give its right up at
//! an instruction boundary of its own. Each such transfer is an ordering
//! edge "hart A had executed `a` instructions", logged as an `After` event
//! at the start of the taker's next entry. A hart's run is logged as
//! segments (chunk entries) cut at every point another hart may wait for.
//! Replay runs the harts freely on shared memory, each segment waiting for
//! its edges; device accesses keep a global order of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use samsara_cpu::{Hart, StopReason};
use samsara_machine::board::Board;
use samsara_trace::{Check, ChunkRecord, Entry, Event, Strategy, Truncation};
use samsara_types::HartId;

use super::log::EntryLog;
use super::{Perturb, RecordConfig};
use crate::chunk_bus::{ChunkBus, Mode};
use crate::sequencer::spin_briefly;
use crate::table::{page_hash, shared_words};

/// Most harts the ownership word can name (readers are a bit mask).
pub(crate) const MAX_CREW_HARTS: u32 = 32;
/// Instructions between a hart's looks at revocation requests: an
/// ownership transfer waits for at most this many of the holder's.
pub(crate) const CREW_BATCH: u64 = 256;

/// A page's state word: bits 0–31 the harts that may read it, bits 32–39
/// its owner + 1 (0: none). An owner is always also a reader.
fn owner(state: u64) -> Option<usize> {
    match (state >> 32) as usize {
        0 => None,
        o => Some(o - 1),
    }
}

/// One hart's side of the revocation handshake.
#[derive(Default)]
struct HartCtl {
    /// Revocations requested of this hart.
    requests: u64,
    /// Revocations it has honoured.
    acked: u64,
    /// Where it last honoured them: its instruction count, and the
    /// sequence number of its last entry (which ends at that count).
    ack_at: (u64, u64),
    /// Not running guest code (asleep in WFI, or finished): a revoker acts
    /// for it, at `parked_at` (instruction count, last entry).
    parked: bool,
    parked_at: (u64, u64),
    /// Rights were taken while it was parked: flush its grants before it runs.
    flush_on_unpark: bool,
}

/// Page ownership for CREW recording, shared by the hart threads.
pub(crate) struct Ownership {
    /// Per RAM page: its state word (see [`owner`]).
    pages: Vec<AtomicU64>,
    /// The ownership lock: held while a transfer changes `pages`. Guards,
    /// per page, where its last owner gave it up (hart, instruction count).
    lock: Mutex<Vec<Option<(usize, u64, u64)>>>,
    ctl: Vec<(Mutex<HartCtl>, Condvar)>,
    /// Per hart: a revocation request is waiting (a hint read without the
    /// lock between batches; `HartCtl` holds the truth).
    asked: Vec<AtomicBool>,
    /// Ownership transfers that produced at least one edge.
    pub(crate) transfers: AtomicU64,
}

impl Ownership {
    pub(crate) fn new(pages: usize, harts: u32) -> Self {
        Self {
            pages: (0..pages).map(|_| AtomicU64::new(0)).collect(),
            lock: Mutex::new(vec![None; pages]),
            ctl: (0..harts)
                .map(|_| (Mutex::new(HartCtl::default()), Condvar::new()))
                .collect(),
            asked: (0..harts).map(|_| AtomicBool::new(false)).collect(),
            transfers: AtomicU64::new(0),
        }
    }

    /// Whether `hart` may access page `idx` now (a write needs ownership).
    #[inline]
    pub(crate) fn permits(&self, idx: usize, hart: usize, write: bool) -> bool {
        let state = self.pages[idx].load(Ordering::Acquire);
        if write {
            owner(state) == Some(hart)
        } else {
            state & (1 << hart) != 0
        }
    }
}

/// What the CREW hart threads share: the log (under the commit lock), the
/// halt flag, page ownership.
pub(crate) struct CrewRecorder {
    pub(crate) commit: Mutex<EntryLog>,
    pub(crate) halt: AtomicBool,
    pub(crate) ownership: Ownership,
}

impl CrewRecorder {
    pub(crate) fn new(harts: u32, ram_size: u64) -> Self {
        Self {
            commit: Mutex::new(EntryLog::new()),
            halt: AtomicBool::new(false),
            ownership: Ownership::new((ram_size >> 12) as usize, harts),
        }
    }
}

/// One hart's CREW recording loop.
pub(crate) struct CrewHart<'a> {
    hart: &'a mut Hart,
    board: &'a Board,
    rec: &'a CrewRecorder,
    own: &'a Ownership,
    bus: ChunkBus<'a>,
    id: usize,
    limit: u64,
    /// Instruction count where the current segment began.
    seg_start: u64,
    /// Interrupt lines the trace says this hart last saw.
    logged_lines: u64,
    /// Sequence number of this hart's last entry (0: none yet).
    last_seq: u64,
    /// Ordering edges of the segment that starts here: per hart that gave
    /// a page up, its instruction count and its entry that ended there.
    edges: Vec<(usize, u64, u64)>,
    /// The last `run` stopped at an attempt of an instruction that did not
    /// execute (a refused page or a device access), and no entry ends there
    /// yet. The attempt may have taken an interrupt (they are checked on
    /// `run` entry and are not steps), so the entry that ends there says
    /// so, for replay to repeat the attempt (see `cut`).
    attempted: bool,
    /// Verification digests on every Nth segment (`--check-every`, 0: none).
    check_every: u64,
    segments: u64,
    perturb: Option<Perturb>,
}

impl<'a> CrewHart<'a> {
    pub(crate) fn new(
        hart: &'a mut Hart,
        board: &'a Board,
        rec: &'a CrewRecorder,
        config: &RecordConfig,
        seed: Option<u64>,
    ) -> Self {
        let id = hart.hart_id();
        // Run calls start only at segment starts and every CREW_BATCH
        // steps after, exactly where replay starts them.
        hart.set_stop_on_pause(false);
        let mut bus = ChunkBus::new(board.clone(), id, Mode::Record, Strategy::Crew);
        let own = &rec.ownership;
        bus.crew = Some(own);
        if config.check_every != 0 {
            bus.crew_written = Some(Vec::new());
        }
        let seg_start = hart.steps().0;
        Self {
            hart,
            board,
            rec,
            own,
            bus,
            id: id.index(),
            limit: config.max_instructions.unwrap_or(u64::MAX),
            seg_start,
            logged_lines: 0,
            last_seq: 0,
            edges: Vec::new(),
            attempted: false,
            check_every: config.check_every,
            segments: 0,
            perturb: seed.map(Perturb),
        }
    }

    fn halted(&self) -> bool {
        self.rec.halt.load(Ordering::Relaxed)
    }

    fn steps(&self) -> u64 {
        self.hart.steps().0
    }

    /// Logs the segment that ends here and starts the next one at this
    /// instruction count. A segment that ends at a refused attempt is always
    /// logged, with reason `Ownership`: replay repeats that attempt's
    /// interrupt check (`Hart::run` for 0 steps) at its end (`DeviceAccess`:
    /// replay repeats the whole attempt). Other empty segments are not logged.
    fn cut(&mut self, reason: Truncation) {
        let reason = if std::mem::take(&mut self.attempted) && reason != Truncation::DeviceAccess {
            Truncation::Ownership
        } else {
            reason
        };
        let steps = self.steps() - self.seg_start;
        if steps > 0
            || !self.bus.events.is_empty()
            || !self.edges.is_empty()
            || reason == Truncation::Ownership
        {
            self.segments += 1;
            let check = self.make_check();
            let mut state = self.rec.commit.lock();
            self.log_entry(&mut state, steps, reason, 1, check);
        }
        self.logged_lines = self.bus.lines;
        self.seg_start = self.steps();
    }

    /// Appends this hart's entry (under the commit lock), its edges first
    /// among its inputs (after a leading `Lines`).
    fn log_entry(
        &mut self,
        state: &mut EntryLog,
        steps: u64,
        reason: Truncation,
        back: u64,
        check: Option<Box<Check>>,
    ) {
        let seq = state.sequence(reason);
        let mut events = std::mem::take(&mut self.bus.events);
        let at = usize::from(matches!(events.first(), Some(Event::Lines(_))));
        events.splice(
            at..at,
            self.edges
                .drain(..)
                .map(|(hart, steps, entry)| Event::After {
                    hart: hart as u8,
                    steps,
                    back: seq - entry,
                }),
        );
        let entry = ChunkRecord {
            hart: self.id as u8,
            steps,
            back,
            reason,
            exclusive: false,
            events,
            check,
        };
        if !state.append(Entry::Chunk(entry)) {
            self.rec.halt.store(true, Ordering::SeqCst);
        }
        self.last_seq = seq;
        // Every entry starts with an empty TLB, in replay too: which
        // translations are cached decides whether a walk sets A/D bits
        // again (guests may clear them without a fence).
        self.hart.flush_tlb();
    }

    /// Verification record for every `check_every`th segment: registers and
    /// the pages this hart wrote since its previous check and still owns
    /// (nobody else may change them until it has given them up, which
    /// replay orders after this point). Hashing every page it owns instead
    /// made a Linux boot ten times slower at `--check-every 50`.
    fn make_check(&mut self) -> Option<Box<Check>> {
        if self.check_every == 0 || !self.segments.is_multiple_of(self.check_every) {
            return None;
        }
        let st = self.hart.state();
        let mut written = self.bus.crew_written.take().unwrap_or_default();
        written.sort_unstable();
        written.dedup();
        let pages = written
            .iter()
            .filter(|&&idx| self.own.permits(idx as usize, self.id, true))
            .filter_map(|&idx| {
                let page = self.bus.guest_page(idx);
                self.board
                    .ram
                    .host_page(page)
                    .map(|host| (page, page_hash(shared_words(host))))
            })
            .collect();
        written.clear();
        self.bus.crew_written = Some(written);
        Some(Box::new(Check {
            hart_digest: st.digest(),
            pc: st.pc,
            x: st.x,
            pages,
        }))
    }

    /// Starts a segment's inputs with the live interrupt lines, logged if
    /// they changed.
    fn latch(&mut self) {
        debug_assert_eq!(
            self.steps(),
            self.seg_start,
            "lines change only at a segment start"
        );
        let lines = self.board.irq.lines(HartId(self.id as u32));
        self.bus.lines = lines;
        // Still at the segment's start: a newer value replaces an older one.
        if let Some(Event::Lines(_)) = self.bus.events.first() {
            self.bus.events.remove(0);
        }
        if lines != self.logged_lines {
            self.bus.events.insert(0, Event::Lines(lines));
        }
    }

    /// Honours revocation requests at this instruction boundary: the
    /// segment is cut here (replay publishes its progress at cuts), every
    /// grant the hart holds is dropped, and the count is handed over.
    fn service_requests(&mut self) {
        if !self.own.asked[self.id].load(Ordering::Acquire) {
            return;
        }
        let (ctl, cv) = &self.own.ctl[self.id];
        let mut c = ctl.lock();
        self.own.asked[self.id].store(false, Ordering::Relaxed);
        if c.requests > c.acked {
            // A plain cut (`Ownership` if it ends at a refused attempt).
            self.cut(Truncation::SizeLimit);
            self.hart.flush_tlb();
            c.acked = c.requests;
            c.ack_at = (self.steps(), self.last_seq);
            cv.notify_all();
            drop(c);
            self.latch();
        }
    }

    /// Stops running guest code (WFI, or the end): revokers act for it.
    fn park(&mut self) {
        self.service_requests();
        let (ctl, cv) = &self.own.ctl[self.id];
        let mut c = ctl.lock();
        c.parked = true;
        c.parked_at = (self.steps(), self.last_seq);
        cv.notify_all();
    }

    fn unpark(&mut self) {
        let mut c = self.own.ctl[self.id].0.lock();
        c.parked = false;
        if std::mem::take(&mut c.flush_on_unpark) {
            self.hart.flush_tlb();
        }
    }

    /// Makes hart `t` give up its rights (the caller holds the ownership
    /// lock and has already published the page's new state); returns where
    /// `t` holds no stale grant any more: its instruction count and its
    /// last entry, which ends there.
    fn revoke(&self, t: usize) -> (u64, u64) {
        let (ctl, cv) = &self.own.ctl[t];
        let mut c = ctl.lock();
        if c.parked {
            c.flush_on_unpark = true;
            return c.parked_at;
        }
        c.requests += 1;
        let want = c.requests;
        self.own.asked[t].store(true, Ordering::Release);
        // `t` usually acks within one batch: poll briefly before sleeping.
        drop(c);
        spin_briefly(|| {
            let c = ctl.lock();
            c.acked >= want || c.parked
        });
        let mut c = ctl.lock();
        loop {
            if c.acked >= want {
                return c.ack_at;
            }
            if c.parked {
                // Parked without seeing the request: it ran nothing since
                // `parked_at`, and flushes before it runs again.
                c.flush_on_unpark = true;
                c.acked = want;
                return c.parked_at;
            }
            cv.wait_for(&mut c, Duration::from_millis(5));
        }
    }

    /// Takes page `idx` for reading or writing, before the refused
    /// instruction runs again: every conflicting holder gives its right up,
    /// and each of those points becomes an edge of the segment starting here.
    fn acquire(&mut self, idx: usize, write: bool) {
        // With paging on, the refused attempt may have set A/D bits in its
        // page-table walks: replay repeats it with this page refused.
        // Without, all it can have done is take an interrupt on `run`
        // entry, which replay repeats without being told (see `cut`).
        if self.hart.state().csr.satp >> 60 != 0 {
            self.bus.events.push(Event::Refused {
                page: self.bus.guest_page(idx as u32),
                write,
            });
        }
        self.cut(Truncation::Ownership);
        let mut last_release = loop {
            if let Some(g) = self.own.lock.try_lock() {
                break g;
            }
            // Others may wait for us meanwhile: we are at an instruction boundary.
            self.service_requests();
            if self.halted() {
                return;
            }
            std::thread::yield_now();
        };
        let me = self.id;
        let state = self.own.pages[idx].load(Ordering::Acquire);
        let old_owner = owner(state).filter(|&o| o != me);
        let readers = state & 0xffff_ffff;
        let mut targets: Vec<usize> = old_owner.into_iter().collect();
        if write {
            targets.extend(
                (0..MAX_CREW_HARTS as usize)
                    .filter(|&h| h != me && readers & (1 << h) != 0 && Some(h) != old_owner),
            );
        }
        let new_state = if write {
            ((me as u64 + 1) << 32) | (1 << me)
        } else {
            // A former owner keeps its right to read.
            readers | (1 << me)
        };
        // Publish first: from here on the holders' refills are refused, and
        // each revocation drops what its holder cached before.
        self.own.pages[idx].store(new_state, Ordering::Release);
        let mut edges: Vec<(usize, u64, u64)> = Vec::with_capacity(targets.len() + 1);
        for &t in &targets {
            let (steps, entry) = self.revoke(t);
            edges.push((t, steps, entry));
            if Some(t) == old_owner {
                last_release[idx] = Some((t, steps, entry));
            }
        }
        // The last owner, if it gave the page up earlier (to readers).
        if let Some(edge) = last_release[idx]
            && edge.0 != me
        {
            edges.push(edge);
        }
        drop(last_release);
        if !edges.is_empty() {
            self.own.transfers.fetch_add(1, Ordering::Relaxed);
        }
        self.edges.extend(edges);
        // One edge per hart: its latest entry.
        self.edges.sort_unstable();
        self.edges.dedup_by(|later, kept| {
            // Sorted by hart, then count, then entry: keep the last.
            if later.0 == kept.0 {
                *kept = *later;
                true
            } else {
                false
            }
        });
    }

    /// A device access in its global order: one instruction, devices on,
    /// under the commit lock (the order of these entries is the device order).
    fn device_op(&mut self) {
        loop {
            if self.halted() {
                return;
            }
            let mut state = self.rec.commit.lock();
            self.bus.mmio_allowed = true;
            let start = self.steps();
            let stop = self.hart.run(&mut self.bus, 1);
            self.bus.mmio_allowed = false;
            if stop == StopReason::DeviceAccess
                && let Some((idx, write)) = self.bus.crew_pending.take()
            {
                // The instruction (or its fetch) needs a page taken meanwhile.
                drop(state);
                self.attempted = true;
                self.acquire(idx, write);
                continue;
            }
            let seq = state.next_seq();
            let back = state.device_back(seq);
            let steps = self.steps() - start;
            self.log_entry(&mut state, steps, Truncation::DeviceOp, back, None);
            drop(state);
            self.logged_lines = self.bus.lines;
            self.seg_start = self.steps();
            self.latch();
            return;
        }
    }

    /// Runs the hart to the end of the recording. An error names something
    /// this strategy cannot record.
    pub(crate) fn run(&mut self, limit_hit: &AtomicBool) -> Result<(), String> {
        self.latch();
        let result = loop {
            if self.halted() {
                break Ok(());
            }
            self.service_requests();
            if self.board.irq.lines(HartId(self.id as u32)) != self.bus.lines {
                self.cut(Truncation::Trap);
                self.latch();
            }
            let done = self.steps();
            if done >= self.limit {
                limit_hit.store(true, Ordering::SeqCst);
                break Ok(());
            }
            // Perturbation: a random delay now and then (about once per
            // 16 Ki instructions, as often as the chunk recorder's).
            if let Some(p) = &mut self.perturb
                && p.next() % 64 == 0
            {
                p.maybe_delay();
            }
            // Runs start at the segment start and every CREW_BATCH steps
            // after it, where replay starts them too.
            let into = (done - self.seg_start) % CREW_BATCH;
            let budget = (CREW_BATCH - into).min(self.limit - done);
            match self.hart.run(&mut self.bus, budget) {
                StopReason::StepLimit | StopReason::Pause => {}
                StopReason::Watch | StopReason::Breakpoint | StopReason::UserSwitch => {
                    unreachable!("crew recording sets no watches, breakpoints or user-switch stops")
                }
                StopReason::Wfi => {
                    self.cut(Truncation::Wfi);
                    self.park();
                    let mie = self.hart.state().csr.mie;
                    self.board
                        .irq
                        .wait_for_interrupt(HartId(self.id as u32), mie, &self.rec.halt);
                    self.unpark();
                    self.latch();
                }
                StopReason::DeviceAccess => {
                    self.attempted = true;
                    match self.bus.crew_pending.take() {
                        Some((idx, write)) => self.acquire(idx, write),
                        None => {
                            self.cut(Truncation::DeviceAccess);
                            self.device_op();
                        }
                    }
                }
            }
        };
        self.cut(Truncation::Stop);
        self.park();
        result
    }
}
