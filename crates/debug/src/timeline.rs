//! The recording as a timeline one can move along in both directions.
//!
//! A [`Timeline`] is a [`ReplaySession`] plus checkpoints and the debugger's
//! breakpoints. Forward commands run the session; backward ones restore the
//! nearest earlier checkpoint and replay forward: a first pass notes the
//! last hit before now, a second goes there. Every landing is a
//! [`Position`] of the recording's global order, so a command lands on the
//! same instruction every time, whatever the host does.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use samsara_engine::EngineError;
use samsara_engine::replay::{
    EntryIndex, EntryView, Flow, Observer, Position, ReplayConfig, ReplaySession, Stop, Watch,
    WatchKind,
};
use samsara_types::{GuestVirtAddr, HartId};

use crate::checkpoints::Checkpoints;

/// Every hart (a bit per hart).
pub const ALL_HARTS: u64 = u64::MAX;

/// How the timeline keeps its checkpoints.
#[derive(Clone, Copy, Debug)]
pub struct TimelineOptions {
    /// Memory the checkpoints may use, in bytes; never exceeded.
    pub checkpoint_memory: u64,
    /// Instructions (all harts together) between two checkpoints taken
    /// while replaying forward.
    pub checkpoint_interval: u64,
    /// `continue` with no breakpoint or watchpoint runs harts in parallel
    /// (false: on one thread, as every other command does).
    pub parallel: bool,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        Self {
            checkpoint_memory: 1 << 30,
            // Replaying this many steps sequentially takes ~0.1 s, which
            // bounds what a reverse-stepi costs.
            checkpoint_interval: 1 << 24,
            parallel: true,
        }
    }
}

/// Why a command stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A step (or range step, or seek) finished.
    Step,
    /// The hart is about to execute an instruction at a breakpoint.
    Breakpoint { pc: u64 },
    /// The hart is about to access watched memory (`kind` is `Read` or
    /// `Write`): the access at `addr` has not happened yet.
    Watch { addr: u64, kind: WatchKind },
    /// History ends here going backwards.
    Begin,
    /// History ends here going forward: every entry of the trace has run.
    End,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

/// Where a command left the timeline, and which hart it concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landing {
    pub position: Position,
    pub hart: usize,
    pub why: Why,
}

/// A recording opened for moving about in.
pub struct Timeline {
    session: ReplaySession,
    /// Who ran each entry and how far: reverse steps and seeks are lookups.
    index: EntryIndex,
    checkpoints: Checkpoints,
    breakpoints: BTreeSet<u64>,
    watches: Vec<Watch>,
    options: TimelineOptions,
    /// The hart of the last landing (reported when a stop concerns none).
    focus: usize,
    /// The landing position whose instruction a resume must not report
    /// again (gdb steps over what it was told about itself).
    skip: Option<Position>,
}

/// What a forward run looks for.
enum Goal {
    /// Nothing: run to the position asked for.
    Nothing,
    /// The first breakpoint or watch hit (of the harts that count).
    Break,
    /// One instruction of `hart` (hits of other harts stop it first).
    Step { hart: usize },
    /// `hart` leaving `[start, end)` after at least one instruction.
    Range {
        hart: usize,
        start: u64,
        end: u64,
        stepped: bool,
    },
    /// The last breakpoint or watch hit (any hart) before the run's end,
    /// noted without stopping.
    LastHit,
}

/// Breakpoints at the pcs some harts' next instructions go to, which
/// only those harts stop at until each has run that instruction (gdb
/// single-stepping one of them: see `gdb::single_step`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteppingBreakpoints {
    /// The harts that may be stepping, a bit each.
    pub harts: u64,
    pub pcs: Vec<u64>,
    /// Just after the last of those harts' next instructions.
    pub until: Position,
}

impl SteppingBreakpoints {
    fn passes(&self, found: &Found) -> bool {
        matches!(found.why, Why::Breakpoint { pc } if self.pcs.contains(&pc))
            && (self.harts >> found.hart) & 1 == 0
            && found.at < self.until
    }
}

/// What a forward run found.
#[derive(Clone, Copy, Debug)]
struct Found {
    at: Position,
    hart: usize,
    why: Why,
}

/// The observer of every forward run: looks for its goal among the
/// instructions (steps only: breakpoints and watches stop the session by
/// themselves) and asks for a checkpoint every `interval` steps.
struct Runner<const FINE: bool> {
    goal: Goal,
    found: Option<Found>,
    /// Physical ranges of the write and access watches (as the harts map
    /// them when the run starts), against which DMA entries are checked,
    /// with the virtual address each starts at.
    dma_watches: Vec<(u64, u64, u64)>,
    /// A DMA entry reported already (the landing stands before it).
    skip_dma: Option<Position>,
    /// The hart a DMA hit is reported on (devices are no hart).
    focus: usize,
    /// Steps of all harts at the last entry boundary seen.
    total: u64,
    /// Steps at the latest checkpoint behind.
    last_checkpoint: u64,
    interval: u64,
    checkpoint_at: BTreeSet<Position>,
    want_checkpoint: bool,
}

impl<const FINE: bool> Observer for Runner<FINE> {
    const INSTRUCTIONS: bool = FINE;

    fn instruction(&mut self, at: Position, hart: HartId, pc: GuestVirtAddr) -> Flow {
        let hart = hart.0 as usize;
        match &mut self.goal {
            Goal::Step { hart: h } if *h == hart => {
                // Run this one instruction: the landing is just after it.
                let after = Position {
                    seq: at.seq,
                    step: at.step + 1,
                };
                self.found = Some(Found {
                    at: after,
                    hart,
                    why: Why::Step,
                });
                Flow::Stop
            }
            Goal::Range {
                hart: h,
                start,
                end,
                stepped,
            } if *h == hart => {
                if !*stepped {
                    *stepped = true;
                } else if !(*start..*end).contains(&pc.0) {
                    self.found = Some(Found {
                        at,
                        hart,
                        why: Why::Step,
                    });
                    return Flow::Stop;
                }
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    fn entry_start(&mut self, at: Position, entry: EntryView<'_>) -> Flow {
        let EntryView::Dma(dma) = entry else {
            return Flow::Continue;
        };
        if self.dma_watches.is_empty() || self.skip_dma == Some(at) {
            return Flow::Continue;
        }
        let hit = dma.writes.iter().find_map(|(addr, data)| {
            let end = addr + data.len() as u64;
            self.dma_watches
                .iter()
                .find(|&&(start, len, _)| *addr < start + len && start < end)
                .map(|&(start, _, vaddr)| vaddr + addr.saturating_sub(start))
        });
        let Some(addr) = hit else {
            return Flow::Continue;
        };
        let found = Found {
            at,
            hart: self.focus,
            why: Why::Watch {
                addr,
                kind: WatchKind::Write,
            },
        };
        match self.goal {
            Goal::Nothing | Goal::Step { .. } | Goal::Range { .. } => Flow::Continue,
            Goal::LastHit => {
                self.found = Some(found);
                Flow::Continue
            }
            Goal::Break => {
                self.found = Some(found);
                Flow::Stop
            }
        }
    }

    fn entry_end(&mut self, at: Position, entry: EntryView<'_>) -> Flow {
        if let EntryView::Chunk(record) = entry {
            self.total += record.steps;
        }
        let next = Position::before(at.seq + 1);
        if self.checkpoint_at.contains(&next) {
            self.last_checkpoint = self.total;
        } else if self.total - self.last_checkpoint >= self.interval {
            self.want_checkpoint = true;
            return Flow::Stop;
        }
        Flow::Continue
    }
}

impl Timeline {
    /// Opens the trace at the recording's start.
    pub fn open(config: &ReplayConfig, options: TimelineOptions) -> Result<Self, EngineError> {
        let session = ReplaySession::open(config)?;
        let index = session.build_index()?;
        let mut timeline = Self {
            session,
            index,
            checkpoints: Checkpoints::new(options.checkpoint_memory),
            breakpoints: BTreeSet::new(),
            watches: Vec::new(),
            options,
            focus: 0,
            skip: None,
        };
        timeline.save_here()?;
        Ok(timeline)
    }

    /// The replay session, as it stands at [`Timeline::position`].
    pub fn session(&self) -> &ReplaySession {
        &self.session
    }

    /// Where the timeline stands.
    pub fn position(&self) -> Position {
        self.session.position()
    }

    /// The recording's entries, harts and step counts.
    pub fn index(&self) -> &EntryIndex {
        &self.index
    }

    /// The hart of the last landing.
    pub fn focus(&self) -> usize {
        self.focus
    }

    /// The checkpoints held.
    pub fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    /// Steps executed by all harts together.
    fn total_steps(&self) -> u64 {
        self.session.harts().iter().map(|h| h.steps().0).sum()
    }

    /// Adds a breakpoint at virtual address `pc` (every hart). Nothing is
    /// patched: the harts check the instructions they decode.
    pub fn add_breakpoint(&mut self, pc: u64) {
        if self.breakpoints.insert(pc) {
            self.sync_breakpoints();
        }
    }

    /// Removes a breakpoint; false if none was there.
    pub fn remove_breakpoint(&mut self, pc: u64) -> bool {
        let had = self.breakpoints.remove(&pc);
        if had {
            self.sync_breakpoints();
        }
        had
    }

    fn sync_breakpoints(&mut self) {
        let pcs: Vec<u64> = self.breakpoints.iter().copied().collect();
        self.session.set_breakpoints(&pcs);
    }

    /// Watches `len` bytes at virtual address `addr` (as each hart maps it)
    /// for `kind` accesses, checked on the TLB's slow path only.
    pub fn add_watch(&mut self, watch: Watch) {
        if !self.watches.contains(&watch) {
            self.watches.push(watch);
            self.session.set_watches(self.watches.clone());
        }
    }

    /// Removes a watch; false if it was not set.
    pub fn remove_watch(&mut self, watch: Watch) -> bool {
        let before = self.watches.len();
        self.watches.retain(|w| *w != watch);
        if self.watches.len() == before {
            return false;
        }
        self.session.set_watches(self.watches.clone());
        true
    }

    /// Forgets breakpoints and goes back to the recording's start (a new
    /// debugger connection starts there).
    pub fn reset(&mut self) -> Result<Landing, EngineError> {
        self.breakpoints.clear();
        self.sync_breakpoints();
        self.watches.clear();
        self.session.set_watches(Vec::new());
        self.restore_at_or_before(Position::START)?;
        self.land(Position::START, 0, Why::Begin)
    }

    /// After a run that stopped at a position part-way through an entry
    /// (not by an observer): brings the hart to where an observer sees its
    /// next instruction (an interrupt due at a run call's start is taken
    /// first), so that a position shows the same state however it was
    /// reached. The position does not change.
    fn settle(&mut self) -> Result<(), EngineError> {
        if let Some(record) = self.session.current_entry()
            && self.session.position().step < record.steps
        {
            let never = AtomicBool::new(false);
            self.session
                .run(&mut FirstInstruction, Position::END, &never)?;
        }
        Ok(())
    }

    /// Finishes a command at `position`. The next command's run starts by
    /// seeing the instruction here (the runner skips what must not be
    /// reported twice).
    fn land(&mut self, position: Position, hart: usize, why: Why) -> Result<Landing, EngineError> {
        self.session.reshow();
        self.focus = hart;
        // Part-way through an entry, or before a DMA entry a watch stopped.
        let reported = self.session.current_hart().is_some() || matches!(why, Why::Watch { .. });
        self.skip = reported.then_some(position);
        Ok(Landing {
            position,
            hart,
            why,
        })
    }

    /// Takes a checkpoint here (between entries) unless one is here.
    fn save_here(&mut self) -> Result<(), EngineError> {
        let total = self.total_steps();
        let checkpoint = self.session.checkpoint()?;
        let bytes = checkpoint.bytes();
        if !self
            .checkpoints
            .insert(checkpoint, total, self.options.checkpoint_interval)
            && self.checkpoints.is_empty()
        {
            return Err(EngineError::Options(format!(
                "--checkpoint-memory {} is too small for the recording's first checkpoint ({bytes} bytes)",
                self.options.checkpoint_memory
            )));
        }
        Ok(())
    }

    /// Restores the latest checkpoint at or before `position`, unless the
    /// session already stands between it and `position`.
    fn restore_at_or_before(&mut self, position: Position) -> Result<(), EngineError> {
        let here = self.session.position();
        let Some(saved) = self.checkpoints.at_or_before(position) else {
            return Err(EngineError::Internal(format!(
                "no checkpoint at or before {position}"
            )));
        };
        if here <= position && saved.position() <= here {
            return Ok(());
        }
        self.session.restore(saved)
    }

    /// Runs forward to `until` (or the goal, the end, an interrupt),
    /// checkpointing on the way.
    fn forward<const FINE: bool>(
        &mut self,
        goal: Goal,
        harts: u64,
        passing: Option<&SteppingBreakpoints>,
        until: Position,
        stop: &AtomicBool,
    ) -> Result<(Stop, Option<Found>), EngineError> {
        let total = self.total_steps();
        let here = self.session.position();
        let last_checkpoint = self
            .checkpoints
            .at_or_before(here)
            .map(|_| self.checkpoints.total_at_or_before(here))
            .unwrap_or(0);
        let positions = self.checkpoints.positions();
        let interval = self.options.checkpoint_interval;
        // The landing's own breakpoint or access was reported (or landed
        // on) already.
        let skip = self.skip.take();
        let dma_watches = self.dma_watches();
        let mut runner = Runner::<FINE> {
            goal,
            found: None,
            dma_watches,
            skip_dma: skip,
            focus: self.focus,
            total,
            last_checkpoint,
            interval: self.options.checkpoint_interval,
            checkpoint_at: positions,
            want_checkpoint: false,
        };
        loop {
            let stopped = self.session.run(&mut runner, until, stop)?;
            let hit = match stopped {
                Stop::Watch(hit) => Some(Found {
                    at: hit.at,
                    hart: hit.hart,
                    why: Why::Watch {
                        addr: hit.addr.0,
                        kind: hit.kind,
                    },
                }),
                Stop::Breakpoint(hit) => Some(Found {
                    at: hit.at,
                    hart: hit.hart,
                    why: Why::Breakpoint { pc: hit.pc.0 },
                }),
                _ => None,
            };
            if let Some(found) = hit {
                if Some(found.at) == skip
                    || (harts >> found.hart) & 1 == 0
                    || passing.is_some_and(|p| p.passes(&found))
                {
                    continue;
                }
                match runner.goal {
                    // Looking for a position, not a hit.
                    Goal::Nothing => continue,
                    Goal::LastHit => {
                        runner.found = Some(found);
                        continue;
                    }
                    _ => return Ok((Stop::Observer, Some(found))),
                }
            }
            if stopped == Stop::Observer && runner.want_checkpoint {
                runner.want_checkpoint = false;
                // Exact here (the count of a run started part-way through an
                // entry is not).
                runner.total = self.total_steps();
                let checkpoint = self.session.checkpoint()?;
                if self.checkpoints.insert(checkpoint, runner.total, interval) {
                    runner
                        .checkpoint_at
                        .insert(Position::before(self.session.position().seq));
                }
                runner.last_checkpoint = runner.total;
                continue;
            }
            return Ok((stopped, runner.found));
        }
    }

    /// Forward to `until` with nothing to look for.
    fn run_to(&mut self, until: Position, stop: &AtomicBool) -> Result<Stop, EngineError> {
        Ok(self
            .forward::<false>(Goal::Nothing, ALL_HARTS, None, until, stop)?
            .0)
    }

    fn ended(&mut self, stopped: Stop) -> Result<Landing, EngineError> {
        let position = self.session.position();
        let hart = self.session.current_hart().unwrap_or(self.focus);
        let why = match stopped {
            Stop::Interrupted => Why::Interrupted,
            _ => Why::End,
        };
        self.land(position, hart, why)
    }

    /// The physical ranges of the write and access watches, as each hart
    /// maps them now: (physical start, length, virtual start), page by page.
    fn dma_watches(&self) -> Vec<(u64, u64, u64)> {
        let mut ranges = Vec::new();
        for w in self.watches.iter().filter(|w| w.kind != WatchKind::Read) {
            let mut vaddr = w.addr.0;
            let end = w.addr.0.saturating_add(w.len);
            while vaddr < end {
                let len = (4096 - (vaddr & 0xfff)).min(end - vaddr);
                for hart in self.session.harts() {
                    let read_pte = |pa: samsara_types::GuestPhysAddr| {
                        let mut word = [0u8; 8];
                        let n = self.session.read_phys(0, pa, &mut word);
                        (n == 8).then(|| u64::from_le_bytes(word))
                    };
                    if let Some(pa) = hart.peek_translate(GuestVirtAddr(vaddr), read_pte) {
                        let range = (pa.0, len, vaddr);
                        if !ranges.contains(&range) {
                            ranges.push(range);
                        }
                    }
                }
                vaddr += len;
            }
        }
        ranges
    }

    /// Forward with harts in parallel (nothing to look for), to the end,
    /// checkpointing every `checkpoint_interval` steps on the way.
    fn forward_parallel(&mut self, stop: &AtomicBool) -> Result<Stop, EngineError> {
        let interval = self.options.checkpoint_interval;
        loop {
            let here = self.session.position();
            let base = self.checkpoints.total_at_or_before(here);
            let target = self.index.position_at_step(base.saturating_add(interval));
            // The first entry boundary at or after it, and past here.
            let seq = (target.seq + u64::from(target.step > 0)).max(here.seq + 1);
            if seq > self.index.entries() {
                return self.session.run_parallel_until(u64::MAX, stop);
            }
            match self.session.run_parallel_until(seq, stop)? {
                Stop::Reached => {
                    let total = self.total_steps();
                    let checkpoint = self.session.checkpoint()?;
                    self.checkpoints.insert(checkpoint, total, interval);
                }
                other => return Ok(other),
            }
        }
    }

    /// `continue`: until a breakpoint or watch hit on one of `harts` (a
    /// bit per hart; [`ALL_HARTS`]), or the end. Other harts run as far as
    /// the recorded order requires, their hits ignored (gdb resumed only
    /// some threads). With nothing to look for, harts run in parallel.
    pub fn cont(&mut self, harts: u64, stop: &AtomicBool) -> Result<Landing, EngineError> {
        self.cont_passing(harts, None, stop)
    }

    /// Just after `hart`'s next instruction runs (the recording's end if
    /// it runs none).
    pub fn after_next_step(&self, hart: usize) -> Position {
        let now = self.session.position();
        self.index
            .position_of_hart_step(hart, self.index.hart_steps(hart, now))
            .map_or(Position::END, |at| Position {
                seq: at.seq,
                step: at.step + 1,
            })
    }

    /// [`Timeline::cont`], where other harts pass the breakpoints of
    /// `step` while its harts' next instructions are to come.
    pub fn cont_passing(
        &mut self,
        harts: u64,
        step: Option<&SteppingBreakpoints>,
        stop: &AtomicBool,
    ) -> Result<Landing, EngineError> {
        if self.breakpoints.is_empty() && self.watches.is_empty() && self.options.parallel {
            let stopped = self.forward_parallel(stop)?;
            return self.ended(stopped);
        }
        // Breakpoints and watches stop the session by themselves: no
        // per-instruction observer, harts in whole batches.
        let (stopped, found) =
            self.forward::<false>(Goal::Break, harts, step, Position::END, stop)?;
        Ok(match found {
            Some(f) => self.land(f.at, f.hart, f.why)?,
            None => self.ended(stopped)?,
        })
    }

    /// `stepi` on `hart`: other harts run as far as the recorded order
    /// requires before it (a hit of one of `harts` stops the step first).
    pub fn step(
        &mut self,
        hart: usize,
        harts: u64,
        stop: &AtomicBool,
    ) -> Result<Landing, EngineError> {
        // The entries of other harts before its next instruction run at
        // full speed (only their hits stop them); only that instruction
        // is looked for one at a time. On a hart that waits long for its
        // next entry, this is the difference between microseconds and
        // seconds.
        let now = self.session.position();
        let next = self
            .index
            .position_of_hart_step(hart, self.index.hart_steps(hart, now));
        if let Some(next) = next
            && next > now
        {
            let (stopped, found) = self.forward::<false>(Goal::Break, harts, None, next, stop)?;
            if let Some(f) = found {
                return self.land(f.at, f.hart, f.why);
            }
            if stopped != Stop::Reached {
                return self.ended(stopped);
            }
        }
        let (stopped, found) =
            self.forward::<true>(Goal::Step { hart }, harts, None, Position::END, stop)?;
        let Some(found) = found else {
            return self.ended(stopped);
        };
        if found.why != Why::Step {
            return self.land(found.at, found.hart, found.why);
        }
        // Stopped before the instruction: execute it.
        let stopped = self.run_to(found.at, stop)?;
        if stopped != Stop::Reached {
            return self.ended(stopped);
        }
        self.settle()?;
        self.land(found.at, hart, Why::Step)
    }

    /// Range stepping: `hart` runs until its pc leaves `[start, end)`.
    pub fn step_range(
        &mut self,
        hart: usize,
        start: u64,
        end: u64,
        harts: u64,
        stop: &AtomicBool,
    ) -> Result<Landing, EngineError> {
        let goal = Goal::Range {
            hart,
            start,
            end,
            stepped: false,
        };
        let (stopped, found) = self.forward::<true>(goal, harts, None, Position::END, stop)?;
        Ok(match found {
            Some(f) => self.land(f.at, f.hart, f.why)?,
            None => self.ended(stopped)?,
        })
    }

    /// `reverse-stepi` on `hart`: to just before its previous instruction
    /// (found in the index: one restore and one forward run).
    pub fn reverse_step(&mut self, hart: usize, stop: &AtomicBool) -> Result<Landing, EngineError> {
        let now = self.session.position();
        match self.index.previous_step(hart, now) {
            Some(at) => self.go_to_instruction(at, hart, Why::Step, stop),
            None => {
                self.restore_at_or_before(Position::START)?;
                self.land(Position::START, hart, Why::Begin)
            }
        }
    }

    /// `reverse-continue`: to the last breakpoint or watch hit before now,
    /// on any hart.
    pub fn reverse_cont(&mut self, stop: &AtomicBool) -> Result<Landing, EngineError> {
        let focus = self.focus;
        self.reverse(focus, stop)
    }

    /// Searches the intervals between checkpoints, newest first, for the
    /// last hit before now; goes there.
    fn reverse(&mut self, hart: usize, stop: &AtomicBool) -> Result<Landing, EngineError> {
        let now = self.session.position();
        let mut end = now;
        loop {
            let Some(start) = self.checkpoints.before(end).map(|c| c.position()) else {
                // Nothing before the recording's start.
                self.restore_at_or_before(Position::START)?;
                let hart = if self.session.harts().len() > hart {
                    hart
                } else {
                    0
                };
                return self.land(Position::START, hart, Why::Begin);
            };
            self.restore_at_or_before(start)?;
            self.skip = None;
            let (stopped, found) =
                self.forward::<false>(Goal::LastHit, ALL_HARTS, None, end, stop)?;
            if stopped == Stop::Interrupted {
                return self.go_back_to(now, hart, Why::Interrupted, stop);
            }
            if let Some(found) = found {
                return self.go_to_instruction(found.at, found.hart, found.why, stop);
            }
            end = start;
        }
    }

    /// Lands at `at`, the hart of entry `at.seq` stopped before its
    /// `at.step`-th step (that entry started, even at step 0).
    fn go_to_instruction(
        &mut self,
        at: Position,
        hart: usize,
        why: Why,
        stop: &AtomicBool,
    ) -> Result<Landing, EngineError> {
        self.restore_at_or_before(at)?;
        self.skip = None;
        let stopped = self.run_to(at, stop)?;
        if stopped != Stop::Reached {
            return self.ended(stopped);
        }
        let dma = self.index.entry(at.seq).is_some_and(|e| e.hart.is_none());
        if dma {
            // A DMA write watched: the landing stands before the entry.
        } else if self.session.current_hart().is_none() {
            // Start the entry: stop at its first instruction.
            let mut first = FirstInstruction;
            self.session.run(&mut first, Position::END, stop)?;
        } else {
            self.settle()?;
        }
        self.land(at, hart, why)
    }

    /// Back to where a command started (after an interrupted search).
    fn go_back_to(
        &mut self,
        at: Position,
        hart: usize,
        why: Why,
        _stop: &AtomicBool,
    ) -> Result<Landing, EngineError> {
        let never = AtomicBool::new(false);
        self.restore_at_or_before(at)?;
        self.run_to(at, &never)?;
        self.settle()?;
        self.land(at, hart, why)
    }

    /// Goes to `target` (anywhere, forward or back).
    pub fn seek(&mut self, target: Position, stop: &AtomicBool) -> Result<Landing, EngineError> {
        let end = self.index.end();
        if target > end {
            return Err(EngineError::Options(format!(
                "{target} is past the recording's end ({end})"
            )));
        }
        if let Some(entry) = self.index.entry(target.seq)
            && target.step > entry.steps
        {
            return Err(EngineError::Options(format!(
                "entry {} has {} steps",
                target.seq, entry.steps
            )));
        }
        self.restore_at_or_before(target)?;
        self.skip = None;
        match self.run_to(target, stop)? {
            Stop::Reached => {
                self.settle()?;
                let hart = self.session.current_hart().unwrap_or(self.focus);
                self.land(target, hart, Why::Step)
            }
            other => self.ended(other),
        }
    }
}

/// Stops at the first instruction it sees.
struct FirstInstruction;

impl Observer for FirstInstruction {
    const INSTRUCTIONS: bool = true;

    fn instruction(&mut self, _at: Position, _hart: HartId, _pc: GuestVirtAddr) -> Flow {
        Flow::Stop
    }
}
