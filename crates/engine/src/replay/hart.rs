//! One hart's side of replay: an entry's start (its turn), its body (run
//! in the recording's batches), its end (checks, write-back, retirement).

use std::sync::Arc;

use samsara_cpu::{Hart, Privilege, StopReason};
use samsara_machine::board::Board;
use samsara_trace::{Check, ChunkRecord, Event, Strategy, Truncation};
use samsara_types::{GuestVirtAddr, HartId};

use super::observer::{Flow, Observer};
use super::policy::Policy;
use super::probe::{Finding, GuestView, UserSwitch};
use super::{Divergence, Position, Shared, StateDiff};
use crate::chunk_bus::{ChunkBus, Mode};
use crate::code_watch::{CodeSeen, CodeWatch};
use crate::table::{ChunkSets, page_hash, shared_words};

/// A chunk part-way through replay.
#[derive(Clone, Debug)]
pub(crate) struct InProgress {
    pub seq: u64,
    pub record: ChunkRecord,
    /// The hart's step count when the entry started.
    pub start_steps: u64,
}

impl InProgress {
    /// Steps of the entry executed so far.
    pub fn done(&self, hart: &Hart) -> u64 {
        hart.steps().0 - self.start_steps
    }
}

/// Where [`HartReplayer::finish_body`] left an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finished {
    /// The replay failed (the error is in `Shared`).
    Failed,
    /// Done and retired (CREW: nothing to write back).
    Retired,
    /// Its pages are to be written back in its turn
    /// ([`HartReplayer::write_back`]).
    WriteBackDue,
}

/// Why [`HartReplayer::advance`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Advance {
    /// Reached the limit asked for.
    Reached,
    /// The observer said stop.
    Observer,
    /// A watch caught the hart's next instruction (`bus.watches.hit`), which
    /// has not executed; the next `advance` executes it unchecked.
    Watch,
    /// The hart's next instruction is at a breakpoint; it has not executed,
    /// the next `advance` executes it.
    Breakpoint,
    /// The replay failed (the error is in `Shared`).
    Failed,
}

/// One hart's replay state, kept across entries.
pub(crate) struct HartReplayer {
    pub bus: ChunkBus<'static>,
    sets: ChunkSets,
    /// Interrupt lines as of the hart's last entry.
    pub lines: u64,
    /// The hart stopped at a watch hit inside a `Hart::run` call: the next
    /// call continues that run (no interrupt check first) and executes the
    /// caught instruction with the watches off. Cleared at an entry's start.
    after_watch: bool,
    /// The hart stopped at a breakpoint (or a watch) inside a `Hart::run`
    /// call: the next call continues that run with one step.
    after_stop: bool,
    /// The observer was shown the stopped instruction before the stop.
    watch_seen: bool,
    /// Interrupts were checked for the run call starting at this step of
    /// the entry (an observer saw its first instruction after that check).
    interrupts_checked_at: Option<u64>,
    code_seen: CodeSeen,
}

impl HartReplayer {
    /// `code`: the session's watch over code pages (`None` under CREW).
    pub fn new(board: Board, id: HartId, strategy: Strategy, code: Option<Arc<CodeWatch>>) -> Self {
        let mut bus = ChunkBus::new(board, id, Mode::Replay, strategy);
        bus.code = code;
        Self {
            bus,
            sets: ChunkSets::default(),
            lines: 0,
            after_watch: false,
            after_stop: false,
            watch_seen: false,
            interrupts_checked_at: None,
            code_seen: CodeSeen::default(),
        }
    }

    fn diverged(&self, hart: &Hart, shared: &Shared, cur: &InProgress, what: Divergence) {
        shared.fail(crate::EngineError::Divergence {
            seq: cur.seq,
            hart: u32::from(cur.record.hart),
            steps: cur.record.steps,
            start_steps: cur.start_steps,
            pc: hart.pc(),
            what,
        });
    }

    /// The next observed advance shows the instruction caught by a watch
    /// again (see [`ReplaySession::reshow`](super::ReplaySession::reshow)).
    pub fn reshow(&mut self) {
        self.watch_seen = false;
    }

    /// Drops an entry part-way through (the session goes back to a
    /// checkpoint) so that the hart's next entry starts clean. The access
    /// table (private pages, and for CREW the record of direct writes the
    /// restore needs) is the session's to drain.
    pub fn abandon(&mut self) {
        self.bus.divergence = None;
        self.bus.watches.hit = None;
        self.bus.touched.clear();
        self.bus.crew_pending = None;
        self.bus.refuse = None;
        self.bus.breakpoints.pass = None;
        self.after_watch = false;
        self.after_stop = false;
    }

    /// Waits for the entry's turn and sets the hart's bus up for it.
    /// `None`: the replay was aborted or failed meanwhile.
    pub fn begin(
        &mut self,
        hart: &mut Hart,
        shared: &Shared,
        seq: u64,
        record: ChunkRecord,
    ) -> Option<InProgress> {
        let cur = InProgress {
            seq,
            start_steps: hart.steps().0,
            record,
        };
        match shared.policy.wait_start(&shared.wm, seq, &cur.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(what) => {
                self.diverged(hart, shared, &cur, what);
                return None;
            }
        }
        let code = self.bus.code.as_deref();
        self.code_seen.start_chunk(hart, code);
        self.after_watch = false;
        self.after_stop = false;
        self.bus.breakpoints.pass = None;
        self.interrupts_checked_at = None;
        self.bus.watches.hit = None;
        if !shared.policy.direct() {
            // Recording drops reservations at chunk boundaries; CREW
            // segment cuts are not boundaries the guest could notice.
            hart.clear_reservation();
        }
        let bus = &mut self.bus;
        bus.events.clear();
        bus.events.extend_from_slice(&cur.record.events);
        bus.next_event = 0;
        bus.divergence = None;
        if let Some(Event::Lines(l)) = cur.record.events.first() {
            self.lines = *l;
            bus.next_event = 1;
        }
        // Ordering edges (CREW) were waited for above.
        while let Some(Event::After { .. }) = bus.events.get(bus.next_event) {
            bus.next_event += 1;
        }
        bus.lines = self.lines;
        bus.mmio_allowed =
            cur.record.reason == Truncation::DeviceOp || shared.policy.devices_in_chunks();
        Some(cur)
    }

    /// Runs the entry's body until `limit` of its steps are done (at most
    /// its recorded length). `Hart::run` calls start where the recording's
    /// did, every `batch` steps from the entry's start; a run cut between
    /// them goes on with `Hart::resume`, so interrupts are taken where they
    /// were recorded however the replay is cut.
    pub fn advance<O: Observer>(
        &mut self,
        hart: &mut Hart,
        shared: &Shared,
        cur: &InProgress,
        limit: u64,
        observer: &mut O,
    ) -> Advance {
        let limit = limit.min(cur.record.steps);
        let batch = shared.batch;
        loop {
            let done = cur.done(hart);
            if done >= limit {
                return Advance::Reached;
            }
            let into_batch = done % batch;
            if O::INSTRUCTIONS
                && into_batch == 0
                && !self.after_stop
                && self.interrupts_checked_at != Some(done)
            {
                // `run`'s interrupt check, first: the observer then sees
                // the instruction that really executes (a trap handler's).
                hart.check_interrupts(&mut self.bus);
                self.interrupts_checked_at = Some(done);
            }
            // Unless the observer saw the caught instruction before the hit.
            if O::INSTRUCTIONS && !(self.after_stop && self.watch_seen) {
                let at = Position {
                    seq: cur.seq,
                    step: done,
                };
                if observer.instruction(at, hart.hart_id(), hart.pc()) == Flow::Stop {
                    return Advance::Observer;
                }
            }
            let mut max = (batch - into_batch).min(limit - done);
            if O::INSTRUCTIONS {
                max = 1;
            }
            let stop = if self.after_stop {
                // The stopped instruction, in the run it was cut from, past
                // what stopped it (a breakpoint stays passed until it has
                // executed: a watch may stop it after the breakpoint did).
                self.after_stop = false;
                self.bus.watches.suppressed = self.after_watch;
                self.after_watch = false;
                let stop = resume_cut_run(hart, &mut self.bus, 1);
                self.bus.watches.suppressed = false;
                if stop != StopReason::Watch {
                    self.bus.breakpoints.pass = None;
                }
                stop
            } else if into_batch == 0 && self.interrupts_checked_at != Some(done) {
                hart.run(&mut self.bus, max)
            } else {
                resume_cut_run(hart, &mut self.bus, max)
            };
            let done = cur.done(hart);
            if self.bus.probe.is_some() {
                self.bus.settle_probe();
                if stop == StopReason::UserSwitch {
                    self.note_user_switch(hart);
                }
            }
            let pages = if O::PAGES {
                self.report_pages(hart, cur, observer)
            } else {
                Flow::Continue
            };
            // A hit is reported even if the observer wants to stop too.
            if stop == StopReason::Watch {
                self.after_stop = true;
                self.after_watch = true;
                self.watch_seen = O::INSTRUCTIONS;
                return Advance::Watch;
            }
            if stop == StopReason::Breakpoint {
                self.after_stop = true;
                self.bus.breakpoints.pass = Some(hart.pc().raw());
                self.watch_seen = O::INSTRUCTIONS;
                return Advance::Breakpoint;
            }
            if pages == Flow::Stop {
                return Advance::Observer;
            }
            // A probe of user switches stops the hart at each (the
            // recording did too, under the chunk strategy).
            if stop != StopReason::StepLimit
                && stop != StopReason::UserSwitch
                && done < cur.record.steps
            {
                self.diverged(hart, shared, cur, Divergence::StoppedEarly { stop, done });
                return Advance::Failed;
            }
            if cur.record.reason == Truncation::DeviceOp && stop == StopReason::DeviceAccess {
                self.diverged(hart, shared, cur, Divergence::DeviceAccessNotExecuted);
                return Advance::Failed;
            }
        }
    }

    fn report_pages<O: Observer>(
        &mut self,
        hart: &Hart,
        cur: &InProgress,
        observer: &mut O,
    ) -> Flow {
        let at = Position {
            seq: cur.seq,
            step: cur.done(hart),
        };
        let mut flow = Flow::Continue;
        for (page, kind) in self.bus.touched.drain(..) {
            if observer.page(at, hart.hart_id(), page, kind) == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        flow
    }

    /// After the body: the attempt the recording ended the entry at, the
    /// checks, the write-back (in sequence order) and retirement. False if
    /// the replay failed or was aborted.
    pub fn finish(&mut self, hart: &mut Hart, shared: &Shared, cur: &InProgress) -> bool {
        match self.finish_body(hart, shared, cur) {
            Finished::Failed => false,
            Finished::Retired => true,
            Finished::WriteBackDue => {
                if !shared.wm.wait_for(cur.seq - 1) {
                    self.bus.table.reset(&self.sets);
                    return false;
                }
                self.write_back(shared, cur.seq);
                true
            }
        }
    }

    /// [`HartReplayer::finish`] up to the write-back: the final attempt
    /// and the checks. A CREW entry (written to RAM directly) is retired
    /// here.
    pub fn finish_body(&mut self, hart: &mut Hart, shared: &Shared, cur: &InProgress) -> Finished {
        // The attempt did not execute in the recording: nothing to watch.
        self.bus.watches.suppressed = true;
        self.bus.breakpoints.off = true;
        let redone = self.redo_final_attempt(hart, shared, cur);
        self.bus.watches.suppressed = false;
        self.bus.breakpoints.off = false;
        if let Err(what) = redone {
            self.diverged(hart, shared, cur, what);
            return Finished::Failed;
        }
        self.bus.mmio_allowed = false;
        self.lines = self.bus.lines;
        if let Some(what) = self.bus.divergence.take() {
            self.diverged(hart, shared, cur, what);
            return Finished::Failed;
        }
        if self.bus.next_event != self.bus.events.len() {
            let what = Divergence::InputsLeft {
                consumed: self.bus.next_event,
                recorded: self.bus.events.len(),
            };
            self.diverged(hart, shared, cur, what);
            return Finished::Failed;
        }
        let seq = cur.seq;
        if let Policy::Crew(progress) = &shared.policy {
            if let Some(check) = &cur.record.check
                && let Some(diffs) = self.compare_check(hart, shared, check)
            {
                self.diverged(hart, shared, cur, Divergence::State(diffs));
                return Finished::Failed;
            }
            // Memory was written directly; tell waiting harts how far we are.
            progress.publish(
                usize::from(cur.record.hart),
                hart.steps().0,
                seq,
                cur.record.reason == Truncation::DeviceOp,
            );
            self.deliver_probe(seq, cur);
            shared.wm.retire(seq);
            return Finished::Retired;
        }
        self.bus.table.walk(&mut self.sets);
        if self.bus.table.is_direct() {
            // Written to RAM already (serial strategy), whatever happens
            // next: a restore must find these pages marked.
            shared.dirty.mark_all(&self.sets.dirty);
        }
        if let Some(check) = &cur.record.check
            && let Some(diffs) = self.compare_check(hart, shared, check)
        {
            self.bus.table.reset(&self.sets);
            self.diverged(hart, shared, cur, Divergence::State(diffs));
            return Finished::Failed;
        }
        self.deliver_probe(seq, cur);
        Finished::WriteBackDue
    }

    /// The probe's findings of a finished entry go to its hub.
    fn deliver_probe(&mut self, seq: u64, cur: &InProgress) {
        if let Some(probe) = &mut self.bus.probe {
            probe.deliver(seq, cur.start_steps);
        }
    }

    /// The hart just switched into or out of user mode: the probe notes
    /// it, with what its reader reads of memory.
    fn note_user_switch(&mut self, hart: &Hart) {
        let Some(reader) = self
            .bus
            .probe
            .as_ref()
            .and_then(|p| p.config.user_switches.clone())
        else {
            return;
        };
        let state = hart.state();
        let csr = &state.csr;
        let to_user = state.privilege == Privilege::User;
        let (cause, epc) = match state.privilege {
            Privilege::Machine => (csr.mcause, csr.mepc),
            _ => (csr.scause, csr.sepc),
        };
        let mut switch = UserSwitch {
            step: hart.steps().0,
            to_user,
            pc: state.pc,
            cause: if to_user { 0 } else { cause },
            epc: if to_user { 0 } else { epc },
            a: std::array::from_fn(|k| state.x[10 + k]),
            scratch: csr.sscratch,
            memory: Vec::new(),
        };
        switch.memory = reader(
            &switch,
            &HartView {
                bus: &self.bus,
                hart,
            },
        );
        if let Some(probe) = &mut self.bus.probe {
            probe.found.push(Finding::Switch(Box::new(switch)));
        }
    }

    /// Writes entry `seq`'s pages back and retires it: its turn (every
    /// earlier entry has retired), after [`HartReplayer::finish_body`]
    /// said [`Finished::WriteBackDue`].
    pub fn write_back(&mut self, shared: &Shared, seq: u64) {
        shared.dirty.mark_all(&self.sets.dirty);
        self.bus.write_back(&self.sets);
        shared.wm.retire(seq);
    }

    /// Repeats the attempt the recording ended the entry at, with the same
    /// side effects (A/D bits its page-table walks set, its interrupt check).
    fn redo_final_attempt(
        &mut self,
        hart: &mut Hart,
        shared: &Shared,
        cur: &InProgress,
    ) -> Result<(), Divergence> {
        if shared.policy.direct() && cur.record.reason == Truncation::Ownership {
            // CREW recording stopped at an attempt refused for want of a
            // page: repeat it with that page refused.
            if let Some(&Event::Refused { page, write }) = self.bus.events.get(self.bus.next_event)
            {
                self.bus.next_event += 1;
                let idx = self
                    .bus
                    .ram_index(page)
                    .ok_or(Divergence::RefusedPageNotRam { page })?;
                self.bus.refuse = Some((idx, write));
                let before = hart.steps().0;
                let stop = hart.run(&mut self.bus, 1);
                self.bus.refuse = None;
                let refused = self.bus.crew_pending.take().is_some();
                if stop != StopReason::DeviceAccess || !refused || hart.steps().0 != before {
                    return Err(Divergence::RefusedAttemptWentOn { page, stop });
                }
            } else {
                // Traces written before `Refused` existed (no guest paging).
                hart.run(&mut self.bus, 0);
            }
        }
        if cur.record.reason == Truncation::DeviceAccess {
            // Recording stopped at a device access: redo the attempt (its
            // translation side effects) exactly as the recording did.
            let stop = hart.run(&mut self.bus, 1);
            if stop != StopReason::DeviceAccess {
                return Err(Divergence::DeviceAccessExpected { stop });
            }
        }
        Ok(())
    }

    /// Compares against a recorded verification record.
    fn compare_check(&self, hart: &Hart, shared: &Shared, check: &Check) -> Option<Vec<StateDiff>> {
        let state = hart.state();
        let mut diffs = Vec::new();
        if state.pc != check.pc {
            diffs.push(StateDiff::Pc {
                recorded: check.pc,
                replayed: state.pc,
            });
        }
        for (r, (&recorded, &replayed)) in check.x.iter().zip(&state.x).enumerate() {
            if recorded != replayed {
                diffs.push(StateDiff::Register {
                    index: r as u8,
                    recorded,
                    replayed,
                });
            }
        }
        let replayed: Vec<(u64, u64)> = if shared.policy.direct() {
            // CREW: the pages the hart owned, as they are in RAM now.
            check
                .pages
                .iter()
                .filter_map(|&(page, _)| {
                    let host = shared.board.ram.host_page(page)?;
                    Some((page, page_hash(shared_words(host))))
                })
                .collect()
        } else {
            self.bus.written_page_hashes(&self.sets)
        };
        if replayed != check.pages {
            use std::collections::{BTreeMap, BTreeSet};
            let rec: BTreeMap<u64, u64> = check.pages.iter().copied().collect();
            let rep: BTreeMap<u64, u64> = replayed.iter().copied().collect();
            let differing = rec
                .keys()
                .chain(rep.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|p| rec.get(p) != rep.get(p))
                .map(|p| p << 12)
                .collect();
            diffs.push(StateDiff::WrittenPages(differing));
        }
        if diffs.is_empty() && state.digest() != check.hart_digest {
            diffs.push(StateDiff::OtherState);
        }
        (!diffs.is_empty()).then_some(diffs)
    }
}

/// Memory as a hart sees it at a probe point.
struct HartView<'a> {
    bus: &'a ChunkBus<'static>,
    hart: &'a Hart,
}

impl GuestView for HartView<'_> {
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> usize {
        super::session::read_virt_through(self.hart, GuestVirtAddr(vaddr), buf, |pa, piece| {
            self.bus.read_view(pa.raw(), piece)
        })
    }
}

/// `Hart::resume` out of line: only a session stopped part-way through a
/// batch takes it, and a second copy of the interpreter's loop inlined
/// next to `run`'s slowed the plain replay down.
#[inline(never)]
fn resume_cut_run(hart: &mut Hart, bus: &mut ChunkBus<'static>, max: u64) -> StopReason {
    hart.resume(bus, max)
}
