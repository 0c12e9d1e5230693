//! The hart: state plus caches, and the run loop.

use samsara_isa::Inst;
use samsara_types::{GuestVirtAddr, HartId, InstrCount};

use crate::bus::{Bus, FetchBreakpoint};
use crate::pmp::PmpTable;
use crate::state::{HartState, Privilege};
use crate::tlb::{DecodeCache, Tlb};
use crate::trap::Exception;

/// Why [`Hart::run`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StopReason {
    /// The step budget is exhausted.
    StepLimit,
    /// A WFI retired with no interrupt pending; `pc` is after it. The
    /// caller should wait for an interrupt (or simply run again).
    Wfi,
    /// The bus deferred a device access (`MmioError::Deferred`): the
    /// instruction did not execute, had no effect, and `pc` is at it.
    DeviceAccess,
    /// A `pause` hint (Zihintpause) retired while [`Hart::set_stop_on_pause`]
    /// is on: the guest is spinning; `pc` is after it.
    Pause,
    /// The bus reported a watch hit (`Bus::check_access`): the accessing
    /// instruction did not execute, had no effect (no step), and `pc` is
    /// at it.
    Watch,
    /// The bus reported a breakpoint at the instruction about to execute
    /// (`Bus::breakpoint`): it did not execute (no step), `pc` is at it.
    Breakpoint,
    /// The hart trapped out of user mode or returned to it while
    /// [`Hart::set_stop_on_user_switch`] is on: `pc` is the first
    /// instruction in the new mode.
    UserSwitch,
}

/// Why an instruction did not complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ExecError {
    /// It raised an architectural exception (a step, trap taken).
    Exception(Exception),
    /// The bus deferred a device access: no step, no effect.
    Deferred,
    /// The bus reported a watch hit: no step, no effect.
    Watch,
    /// The bus reported a breakpoint at the instruction: no step, no effect.
    Breakpoint,
}

impl From<Exception> for ExecError {
    #[inline]
    fn from(e: Exception) -> ExecError {
        ExecError::Exception(e)
    }
}

/// What the run loop must do after an instruction: a one-byte code, so the
/// executor's arms (inline and out of line) meet on a register value, not
/// on a `Result` in memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flow {
    /// It retired: go on with the next instruction.
    Continue,
    /// It retired and may have made an interrupt deliverable.
    CheckInterrupts,
    /// A WFI retired.
    Wfi,
    /// A `pause` hint retired.
    Pause,
    /// It raised an exception, which has been taken (the step is counted).
    Trapped,
    /// The bus deferred a device access: no step, no effect.
    Deferred,
    /// A watch hit: no step, no effect.
    Watch,
    /// A breakpoint: no step, no effect.
    Breakpoint,
}

/// One RV64GC hart.
///
/// The architectural state is the plain [`HartState`]; the software TLB
/// and decoded-instruction cache are derived data, dropped on restore.
///
/// Aligned to 128 bytes (two cache lines, the unit of the adjacent-line
/// prefetcher) so that harts kept side by side in a `Vec`, each written on
/// every step by its own host thread, never share a cache line.
#[repr(align(128))]
pub struct Hart {
    pub(crate) state: HartState,
    pub(crate) tlb: Box<Tlb>,
    pub(crate) dcache: Box<DecodeCache>,
    /// The PMP entries that are on (made from `state` whenever a PMP
    /// register changes).
    pub(crate) pmp: PmpTable,
    /// `run` returns [`StopReason::Pause`] after a `pause` hint.
    stop_on_pause: bool,
    /// `run` returns [`StopReason::UserSwitch`] after a switch into or out
    /// of user mode.
    stop_on_user_switch: bool,
    /// A switch into or out of user mode happened since the last step
    /// boundary `run` looked.
    user_switched: bool,
    /// `fence.i` drops nothing (see [`Hart::set_fence_i_keeps_code`]).
    pub(crate) fence_i_keeps_code: bool,
    /// The slow path runs only to fill the TLB for translated code: a
    /// watched page is left alone (its access is not checked here, the
    /// interpreter runs it).
    pub(crate) filling_tlb: bool,
    /// Hot code translated to host code, when on (`set_translator`).
    #[cfg(target_arch = "x86_64")]
    jit: Option<Box<crate::jit::Jit>>,
}

impl Hart {
    /// A hart in its reset state: M-mode at `reset_pc`, `mhartid = id`.
    /// a0/a1 are left zero (the boot ROM sets them).
    pub fn new(id: HartId, reset_pc: GuestVirtAddr) -> Hart {
        let state = HartState::reset(u64::from(id.0), reset_pc.raw());
        Hart {
            pmp: PmpTable::new(&state.csr),
            state,
            tlb: Tlb::new(),
            dcache: DecodeCache::new(),
            stop_on_pause: false,
            stop_on_user_switch: false,
            user_switched: false,
            fence_i_keeps_code: false,
            filling_tlb: false,
            #[cfg(target_arch = "x86_64")]
            jit: None,
        }
    }

    /// Runs until `max_steps` more steps have executed, a WFI retires, or
    /// the bus defers a device access.
    ///
    /// Pending interrupts are checked on entry and after instructions that
    /// may enable one (CSR writes to the interrupt state, xRET); device
    /// interrupt lines are sampled only at those points, so callers bound
    /// interrupt latency with `max_steps`.
    pub fn run<B: Bus>(&mut self, bus: &mut B, max_steps: u64) -> StopReason {
        self.check_interrupts(bus);
        // An interrupt taken before any step is where this run starts.
        self.user_switched = false;
        self.resume(bus, max_steps)
    }

    /// Continues a run that ended at its step limit as if it had not been
    /// cut there: unlike [`Hart::run`], no interrupt check comes first. A
    /// replay that stops part-way through a recorded `run` call (a
    /// debugger's single step) goes on with it, so that interrupts are
    /// still taken only where the recording took them.
    // Always inlined: `run` must stay the one function holding the hot
    // loop, as it was before `resume` was split out of it.
    #[inline(always)]
    pub fn resume<B: Bus>(&mut self, bus: &mut B, max_steps: u64) -> StopReason {
        #[cfg(target_arch = "x86_64")]
        if self.jit.is_some() {
            return self.resume_translated(bus, max_steps);
        }
        self.interpret(bus, max_steps)
    }

    /// [`Hart::resume`] with the translator: translated blocks where there
    /// are, the interpreter one step at a time elsewhere (counting the
    /// arrivals that make a pc hot).
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn resume_translated<B: Bus>(&mut self, bus: &mut B, max_steps: u64) -> StopReason {
        use crate::jit::Lookup;
        let end = self.state.steps.saturating_add(max_steps);
        // The pc whose execute-TLB entry was last refilled for a block: at
        // most once per arrival (an entry may not be cacheable).
        let mut refilled = None;
        // Fixed for the call (a test setting).
        let one_block = self.jit.as_ref().is_some_and(|j| j.one_block);
        while self.state.steps < end {
            if let Some(stop) = self.take_user_switch() {
                return stop;
            }
            let pc = self.state.pc;
            let budget = end - self.state.steps;
            let generation = self.dcache.code_generation;
            let jit = self.jit.as_mut().expect("the translator is on");
            // The jump cache first (64 KiB): the block table's line for a
            // pc is most often not in the host's cache. A block entered
            // there checks itself and comes straight back, having done
            // nothing, if it may not run: then the table decides.
            let mut ran = None;
            if !one_block && let Some(checked) = jit.jump(pc) {
                match self.run_block(bus, checked, budget, generation) {
                    Err(stop) => return stop,
                    Ok((0, 0)) => {}
                    Ok((why, _)) => ran = Some(why),
                }
            }
            let jit = self.jit.as_mut().expect("the translator is on");
            match ran {
                Some(_) => {}
                None => match jit.lookup(pc, generation, self.tlb.exec()) {
                    Lookup::Block(block, len) if len <= budget => {
                        // One block exactly: no budget left to chain or loop.
                        let budget = if one_block { len } else { budget };
                        let (why, done) = match self.run_block(bus, block, budget, generation) {
                            Err(stop) => return stop,
                            Ok(r) => r,
                        };
                        if one_block && (why != 1 || done > 0) {
                            return self.step_limit_or_switch();
                        }
                        ran = Some(why);
                    }
                    Lookup::Refill if refilled != Some(pc) => {
                        refilled = Some(pc);
                        if let Some(stop) = self.refill_fetch(bus, pc) {
                            return stop;
                        }
                        continue;
                    }
                    Lookup::Hot => {
                        if !self.tlb.fetchable(pc)
                            && let Some(stop) = self.refill_fetch(bus, pc)
                        {
                            return stop;
                        }
                        let jit = self.jit.as_mut().expect("the translator is on");
                        jit.translate(pc, &self.dcache, self.tlb.exec(), bus.any_breakpoint());
                        // The new block runs now: code that runs once (a
                        // test's, a boot's) runs translated when hot at once.
                        if jit.holds_block(pc, generation) {
                            continue;
                        }
                    }
                    // Longer than the budget left (less than a block): the
                    // interpreter runs the rest.
                    Lookup::Block(..) if !one_block => return self.interpret(bus, budget),
                    Lookup::Block(..) | Lookup::Refill | Lookup::Interpret => {}
                },
            }
            if let Some(why) = ran {
                if why != 1 {
                    continue;
                }
                // Stopped before a load or store that missed the TLB: the
                // interpreter runs it now.
                if self.state.steps >= end {
                    break;
                }
            }
            let stop = if one_block {
                self.interpret(bus, 1)
            } else {
                // What is left now (a block may have run some of it).
                self.interpret_cold(bus, end - self.state.steps)
            };
            match stop {
                StopReason::StepLimit => {}
                other => return other,
            }
            if one_block {
                break;
            }
        }
        self.step_limit_or_switch()
    }

    /// The end of a translated run at its step limit: `UserSwitch` if its
    /// last step (a call out of a block) switched into or out of user
    /// mode, which the loop's check no longer sees.
    #[cfg(target_arch = "x86_64")]
    fn step_limit_or_switch(&mut self) -> StopReason {
        self.take_user_switch().unwrap_or(StopReason::StepLimit)
    }

    /// `UserSwitch`, once, if a switch into or out of user mode happened
    /// since the last look (see [`Hart::set_stop_on_user_switch`]).
    #[inline(always)]
    fn take_user_switch(&mut self) -> Option<StopReason> {
        std::mem::take(&mut self.user_switched).then_some(StopReason::UserSwitch)
    }

    /// Runs translated code from `block` (a block's entry, or its checked
    /// entry) with `budget` steps at most, in code generation
    /// `generation`: what it returned (see `jit::Enter`) and the steps it
    /// ran, or the stop a call out of it asked for.
    #[cfg(target_arch = "x86_64")]
    fn run_block<B: Bus>(
        &mut self,
        bus: &mut B,
        block: usize,
        budget: u64,
        generation: u64,
    ) -> Result<(u64, u64), StopReason> {
        use crate::jit::BlockFrame;
        let pc = self.state.pc;
        let jit = self.jit.as_mut().expect("the translator is on");
        let (enter, slots, chain, call_out, jump_cache) = (
            jit.enter(),
            jit.slots(),
            jit.chain(),
            jit.call_out(),
            jit.jump_cache(),
        );
        // Translated code is foreign code: it reaches the hart through raw
        // pointers, and the hart and bus through `fill_tlb_for_block` and
        // `interpret_for_block` while it is suspended in those calls.
        let hart: *mut Hart = self;
        let mut frame = BlockFrame {
            left: budget,
            next_pc: pc,
            generation,
            slots,
            exec: std::ptr::null(),
            chain,
            fill: fill_tlb_for_block::<B>,
            interpret: interpret_for_block::<B>,
            context: std::ptr::null_mut(),
            call_out,
            jump_cache,
        };
        let mut context = BlockContext::<B> {
            hart,
            bus,
            frame: &raw mut frame,
            start_steps: self.state.steps,
            budget,
            stop: None,
        };
        frame.context = (&raw mut context).cast();
        // SAFETY: `hart` is `self`, valid for the call. Raw pointers only: the
        // calls out change the TLB.
        let (x, tlb) = unsafe {
            (
                (*hart).state.x.as_mut_ptr(),
                std::ptr::from_mut::<crate::tlb::Tlb>(&mut *(*hart).tlb),
            )
        };
        // SAFETY: `tlb` points at the hart's boxed TLB. The sets in use stay
        // for the block's run: what changes them (traps, returns, CSR writes)
        // ends a block.
        let (read, write, exec) = unsafe {
            (
                (*tlb).read().as_ptr(),
                (*tlb).write().as_ptr(),
                (*tlb).exec().as_ptr(),
            )
        };
        frame.exec = exec;
        // SAFETY: `block` was translated from code found unchanged in this
        // generation (so its instructions are the ones at these pcs, fetched
        // with permission), as is every block it jumps to; blocks touch only
        // the register array, the TLB arrays and block table (read), the host
        // pages their entries grant (the same accesses, under the same checks,
        // as the interpreter's fast path) and the frame, and call `fill` and
        // `interpret` (with their registers in memory), which reach neither
        // the block table nor the code; they run at most `budget` steps.
        let why = unsafe { enter(x, read, write, &raw mut frame, block) };
        let done = budget - frame.left;
        self.state.steps += done;
        self.state.pc = frame.next_pc;
        if let Some(jit) = self.jit.as_mut() {
            jit.stats.steps_translated += done;
        }
        match (why, context.stop) {
            (2, Some(Flow::Deferred)) => Err(StopReason::DeviceAccess),
            (2, Some(Flow::Watch)) => Err(StopReason::Watch),
            _ => Ok((why, done)),
        }
    }

    /// Interprets from the pc to where a block made there would end (after
    /// a control transfer, before an instruction blocks leave to the
    /// interpreter, at the end of the page or of `MAX_BLOCK` instructions),
    /// within `budget`: arrivals are looked up and counted at block starts
    /// only, not at every cold instruction.
    #[cfg(target_arch = "x86_64")]
    fn interpret_cold<B: Bus>(&mut self, bus: &mut B, budget: u64) -> StopReason {
        use crate::jit::emit::{Kind, kind};
        let start = self.state.pc;
        for _ in 0..budget.min(crate::jit::MAX_BLOCK as u64) {
            let pc = self.state.pc;
            match self.interpret(bus, 1) {
                StopReason::StepLimit => {}
                other => return other,
            }
            let next = self.state.pc;
            // What ran is in the decode cache unless it came from a device
            // or the step dropped decoded instructions (then stop anyway).
            let Some(inst) = self.dcache.get(pc) else {
                break;
            };
            let on = next == pc.wrapping_add(u64::from(inst.len))
                && crate::jit::on_block_page(start, next)
                && matches!(kind(inst), Kind::Straight | Kind::Called);
            if !on {
                break;
            }
        }
        StopReason::StepLimit
    }

    /// The fetch the interpreter makes at `pc` when its page is not in the
    /// execute TLB, for its effects only (this mode's translation and
    /// checks, the page's first touch, the TLB entry), before a block there
    /// runs or is made. A fault the interpreter meets again and takes; a
    /// refused page (CREW) makes the run wait, as the interpreter's fetch
    /// does.
    #[cfg(target_arch = "x86_64")]
    fn refill_fetch<B: Bus>(&mut self, bus: &mut B, pc: u64) -> Option<StopReason> {
        match self.access_slow(
            bus,
            pc,
            2,
            crate::mmu::Access::Fetch,
            crate::bus::Atomicity::Plain,
        ) {
            Err(ExecError::Deferred) => Some(StopReason::DeviceAccess),
            _ => None,
        }
    }

    /// Runs hot code translated to host code (`true`), or everything in
    /// the interpreter (`false`). The translator exists on x86-64 hosts
    /// only: elsewhere, or if no executable memory can be had, it stays
    /// off and this returns `false`.
    pub fn set_translator(&mut self, on: bool) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if !on {
                self.jit = None;
                return false;
            }
            if self.jit.is_none() {
                self.jit = crate::jit::Jit::new().ok().map(Box::new);
            }
            self.jit.is_some()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = on;
            false
        }
    }

    /// Counts arrivals at cold code together with `other`'s translator
    /// (both on): a pc hot on one is translated at the other's first
    /// arrival. The machine's harts share one set of counters.
    pub fn share_translator_heat(&mut self, other: &Hart) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(jit), Some(theirs)) = (self.jit.as_mut(), other.jit.as_ref()) {
            jit.heat = theirs.heat.clone();
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = other;
    }

    /// Test tuning of the translator (if on): a pc becomes hot after `hot`
    /// arrivals (at least 1; normally 16), and with `one_block` each
    /// `resume` runs one translated block, or one interpreted step, and
    /// returns (blocks then never chain), so that a test can compare the
    /// engines block by block.
    #[doc(hidden)]
    pub fn set_translator_tuning(&mut self, hot: u8, one_block: bool) {
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = self.jit.as_mut() {
            jit.hot = hot.max(1);
            jit.one_block = one_block;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (hot, one_block);
    }

    /// The translator's counters, if it is on.
    pub fn translator_stats(&self) -> Option<crate::TranslatorStats> {
        #[cfg(target_arch = "x86_64")]
        {
            self.jit.as_ref().map(|j| j.stats)
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The interpreter's run loop (what [`Hart::resume`] does without the
    /// translator).
    #[inline(always)]
    fn interpret<B: Bus>(&mut self, bus: &mut B, max_steps: u64) -> StopReason {
        let end = self.state.steps.saturating_add(max_steps);
        // On the hot path pc and the step count live in registers (a value
        // carried from step to step through memory costs a store-to-load
        // forwarding delay on every step). Their copies in `self.state` are
        // stored at the start of every step, so everything off the hot path
        // (traps, CSRs, slow memory paths) sees the current instruction's pc
        // and the steps before it, as it always did.
        let mut pc = self.state.pc;
        let mut steps = self.state.steps;
        while steps < end {
            self.state.pc = pc;
            self.state.steps = steps;
            // Hit path: the decoded instruction is read straight out of its
            // slot (no merge with the miss path, so it stays in registers).
            // Its page must be in the execute TLB: a fetch walks exactly
            // when the page is not, in both engines (decoded instructions
            // outlive TLB flushes on U/S switches and evictions).
            let (flow, next) = if let Some(&inst) = self.dcache.get_fetchable(pc, self.tlb.exec()) {
                self.execute::<B, true>(bus, pc, inst)
            } else {
                match self.fetch(bus, pc) {
                    // Now in the decode cache: go round again to hit it.
                    Ok(None) => continue,
                    Ok(Some(inst)) => self.execute_uncached(bus, pc, inst),
                    Err(e) => (self.fail(e), pc),
                }
            };
            self.state.x[0] = 0;
            if flow == Flow::Continue {
                pc = next;
                steps += 1;
                continue;
            }
            if let Some(stop) = self.finish_step(bus, flow, next) {
                return stop;
            }
            pc = self.state.pc;
            steps = self.state.steps;
        }
        self.state.pc = pc;
        self.state.steps = steps;
        StopReason::StepLimit
    }

    /// Completes a step whose flow is not `Continue` (`next`: the pc after
    /// it, for the flows of a retired instruction), with `self.state`
    /// holding the step's pc and the steps before it. `Some` ends the run.
    #[inline(never)]
    fn finish_step<B: Bus>(&mut self, bus: &mut B, flow: Flow, next: u64) -> Option<StopReason> {
        match flow {
            Flow::Continue | Flow::CheckInterrupts => {
                self.state.pc = next;
                self.state.steps += 1;
                self.check_interrupts(bus);
            }
            Flow::Wfi => {
                self.state.pc = next;
                self.state.steps += 1;
                let c = &self.state.csr;
                // WFI completes at once if an interrupt is pending and
                // enabled in mie (whatever the global enables say).
                if (c.mip | bus.interrupt_lines()) & c.mie == 0 {
                    return Some(StopReason::Wfi);
                }
                self.check_interrupts(bus);
            }
            Flow::Pause => {
                self.state.pc = next;
                self.state.steps += 1;
                if self.stop_on_pause {
                    return Some(StopReason::Pause);
                }
                bus.pause_hint();
            }
            // The trap has been taken: pc and steps are up to date.
            Flow::Trapped => {
                if bus.watching() {
                    bus.access_undone(self.state.steps - 1);
                }
            }
            // No step: pc and steps stay as they are.
            Flow::Deferred => {
                if bus.watching() {
                    bus.access_undone(self.state.steps);
                }
                return Some(StopReason::DeviceAccess);
            }
            Flow::Watch => return Some(StopReason::Watch),
            Flow::Breakpoint => return Some(StopReason::Breakpoint),
        }
        self.take_user_switch()
    }

    /// An instruction did not complete: takes its exception (a step that
    /// did not retire) or reports the deferral.
    #[cold]
    #[inline(never)]
    pub(crate) fn fail(&mut self, e: ExecError) -> Flow {
        match e {
            ExecError::Exception(e) => {
                self.exception_step(e);
                Flow::Trapped
            }
            ExecError::Deferred => Flow::Deferred,
            ExecError::Watch => Flow::Watch,
            ExecError::Breakpoint => Flow::Breakpoint,
        }
    }

    /// An instruction raised `e`: it counts as a step but did not retire.
    #[cold]
    fn exception_step(&mut self, e: Exception) {
        self.state.steps += 1;
        self.state.exceptions += 1;
        self.take_exception(e);
    }

    /// Takes the highest-priority deliverable interrupt, if any: what
    /// [`Hart::run`] does before [`Hart::resume`]. A replay that shows each
    /// instruction to an observer calls the two apart, so that the first
    /// instruction it shows is the trap handler's when an interrupt is taken.
    pub fn check_interrupts<B: Bus>(&mut self, bus: &mut B) {
        let lines = bus.interrupt_lines();
        if let Some(cause) = self.pending_interrupt(lines) {
            self.take_interrupt(cause);
        }
    }

    /// Fetches and decodes the instruction at `pc` (decode-cache miss).
    /// Instructions fetched from RAM go into the decode cache (`None`);
    /// ones fetched from a device are returned, to be executed once.
    #[inline(never)]
    fn fetch<B: Bus>(&mut self, bus: &mut B, pc: u64) -> Result<Option<Inst>, ExecError> {
        let (lo, mut cacheable) = self.fetch_parcel(bus, pc)?;
        let word = if lo & 3 == 3 {
            let (hi, c2) = self.fetch_parcel(bus, pc.wrapping_add(2))?;
            cacheable &= c2;
            u32::from(lo) | (u32::from(hi) << 16)
        } else {
            u32::from(lo)
        };
        let inst = samsara_isa::decode(word);
        match bus.breakpoint(GuestVirtAddr(pc)) {
            FetchBreakpoint::None => {}
            FetchBreakpoint::Stop => return Err(ExecError::Breakpoint),
            // Never cached: every execution of it comes back here.
            FetchBreakpoint::Pass => return Ok(Some(inst)),
        }
        // An instruction across a page boundary depends on two
        // translations, and a hit checks one: never cached.
        let addend = self.tlb.exec()[crate::tlb::Tlb::index(pc >> 12)];
        if cacheable && addend.tag == pc >> 12 && (pc & 0xfff) + u64::from(inst.len) <= 0x1000 {
            self.dcache.insert(pc, addend.addend, inst);
            Ok(None)
        } else {
            Ok(Some(inst))
        }
    }

    /// Executes an instruction that is not in the decode cache (fetched
    /// from a device); kept out of line so the hot loop stays small.
    #[inline(never)]
    fn execute_uncached<B: Bus>(&mut self, bus: &mut B, pc: u64, inst: Inst) -> (Flow, u64) {
        self.execute::<B, false>(bus, pc, inst)
    }

    /// Switches privilege mode. Translations depend on it (fetch
    /// permission, U/S page rules, PMP): the TLB's set for it is chosen
    /// (see `Tlb`). Decoded
    /// instructions are kept per mode between U and S, which share one
    /// `satp` and one PMP; M mode fetches untranslated, so a switch to or
    /// from it drops them.
    pub(crate) fn set_privilege(&mut self, p: Privilege) {
        let was = self.state.privilege;
        if self.stop_on_user_switch && (was == Privilege::User) != (p == Privilege::User) {
            self.user_switched = true;
        }
        self.state.privilege = p;
        self.select_tlb();
        if was == Privilege::Machine || p == Privilege::Machine {
            self.dcache.invalidate();
        }
        self.dcache.set_privilege(p as u64);
    }

    /// Chooses the TLB's sets for the current privilege, data privilege
    /// and `mstatus.SUM`.
    pub(crate) fn select_tlb(&mut self) {
        let sum = self.state.csr.mstatus & crate::csr::mstatus::SUM != 0;
        let data = self.data_privilege();
        self.tlb.select(self.state.privilege, data, sum);
    }

    /// Drops decoded instructions and the execute TLB because code may
    /// have changed (see `DecodeCache::code_pages`); translated blocks are
    /// checked against memory before they run again.
    pub(crate) fn invalidate_code(&mut self) {
        self.dcache.invalidate_code();
        self.tlb.flush_exec();
    }

    /// A PMP register was written: the table of entries on is made again,
    /// and nothing cached under the old rules stays.
    pub(crate) fn pmp_changed(&mut self) {
        self.pmp = PmpTable::new(&self.state.csr);
        self.flush_all_caches();
    }

    /// Flushes TLB and decode cache (internal: satp, PMP, privilege).
    pub(crate) fn flush_all_caches(&mut self) {
        self.tlb.flush();
        self.dcache.invalidate();
    }

    // ---- public API for the machine, recorder and replayer ----

    /// Steps executed so far (retired or raised an exception).
    #[inline]
    pub fn steps(&self) -> InstrCount {
        InstrCount(self.state.steps)
    }

    /// Instructions retired so far (what minstret counts, before writes to it).
    pub fn retired(&self) -> u64 {
        self.state.retired()
    }

    /// A copy of the architectural state.
    pub fn snapshot(&self) -> HartState {
        self.state.clone()
    }

    /// Starts an attempt that [`Hart::abandon_attempt`] may take back (a
    /// recorded chunk): translated code made from here on is noted.
    pub fn begin_attempt(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = self.jit.as_mut() {
            jit.begin_attempt();
        }
    }

    /// Takes back the attempt begun last: restores `state` (the state at
    /// its start) like [`Hart::restore`], but keeps the translated code
    /// that was valid when it began. For an owner that also takes back the
    /// attempt's memory (a squashed chunk: its private pages are dropped,
    /// and the writes of others it saw are not seen by the retry, which
    /// starts after them or is squashed too). What the attempt translated
    /// or found unchanged goes: it may have been read from a private page
    /// or from a page another hart was writing back.
    pub fn abandon_attempt(&mut self, state: &HartState) {
        self.flush_tlb_keeping_code();
        self.dcache.invalidate();
        self.load_state(state);
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = self.jit.as_mut() {
            jit.abandon_attempt();
        }
    }

    /// Restores architectural state; drops TLB and decode cache.
    pub fn restore(&mut self, state: &HartState) {
        self.tlb.flush();
        self.invalidate_code();
        self.load_state(state);
    }

    /// Takes `state` and what is made from it (the PMP table, the TLB set
    /// and decode-cache side of its privilege); the caller has emptied
    /// what must not outlive the old state.
    fn load_state(&mut self, state: &HartState) {
        self.state.clone_from(state);
        self.pmp = PmpTable::new(&self.state.csr);
        self.select_tlb();
        self.dcache.set_privilege(self.state.privilege as u64);
    }

    /// Read-only view of the architectural state.
    pub fn state(&self) -> &HartState {
        &self.state
    }

    /// Stable digest of the architectural state (see [`HartState::digest`]).
    pub fn digest(&self) -> u64 {
        self.state.digest()
    }

    /// Drops every cached translation, and with them the decoded
    /// instructions (so every page is touched through `Bus::ram_page`
    /// again, fetches included).
    pub fn flush_tlb(&mut self) {
        self.tlb.flush();
        self.invalidate_code();
    }

    /// [`Hart::flush_tlb`] for an owner that knows no code this hart has
    /// fetched was written by anyone else since, and that gives the hart a
    /// page it writes at another host address than before (a recorder's
    /// chunk: copy-on-write): translated blocks stay valid. Each one's
    /// entry still checks its page's execute-TLB entry, so a block runs
    /// only after a fetch there touched the page again, and from the host
    /// page it was made from, which a page the hart wrote is not. Decoded
    /// instructions stay too, under the same check (`DecodeCache`). The
    /// pages noted as fetched from go (`DecodeCache::code_pages`): which
    /// pages a store finds there decides
    /// whether it empties the execute TLB, which the guest can see (a walk
    /// sets A/D bits again), so that must depend on this chunk alone.
    pub fn flush_tlb_keeping_code(&mut self) {
        self.tlb.flush();
        self.dcache.code_pages.clear();
    }

    /// Drops decoded instructions (call when code pages may have been
    /// written by someone else: commit, DMA, another hart).
    pub fn flush_decode_cache(&mut self) {
        self.invalidate_code();
        // Breakpoints may have changed (the decode cache never holds an
        // instruction at one): translated blocks may hold one.
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = self.jit.as_mut() {
            jit.forget();
        }
    }

    /// Whether `run` stops after a `pause` hint (the recorder ends a chunk
    /// there: a spinning hart has nothing to gain from running on in it).
    pub fn set_stop_on_pause(&mut self, on: bool) {
        self.stop_on_pause = on;
    }

    /// Whether `run` stops after a trap out of user mode or a return to it
    /// (the recorder ends a chunk there: a program's own work then commits
    /// apart from the kernel's, which touches pages other harts write).
    pub fn set_stop_on_user_switch(&mut self, on: bool) {
        self.stop_on_user_switch = on;
        self.user_switched = false;
    }

    /// Whether `fence.i` keeps decoded instructions and translated blocks.
    /// The hart's own stores to code drop what they change as they happen
    /// (see `DecodeCache::code_pages`), so `fence.i` only matters for
    /// writes by others. An owner that sees to those itself — the recorder
    /// and replayer, where another hart's writes become visible only at a
    /// chunk start, which drops whatever they may have changed — turns
    /// this on: Linux's boot-time code patching runs 4·10⁴ `fence.i`, each
    /// of which made every block be compared with memory again.
    pub fn set_fence_i_keeps_code(&mut self, on: bool) {
        self.fence_i_keeps_code = on;
    }

    /// Drops the LR reservation (the recorder does at chunk boundaries).
    pub fn clear_reservation(&mut self) {
        self.state.reservation = None;
    }

    /// Program counter (virtual: equal to the physical address when
    /// translation is off, as in M-mode).
    #[inline]
    pub fn pc(&self) -> GuestVirtAddr {
        GuestVirtAddr(self.state.pc)
    }

    /// Sets the program counter.
    #[inline]
    pub fn set_pc(&mut self, pc: GuestVirtAddr) {
        self.state.pc = pc.raw();
    }

    /// Integer register `r` (0..=31; x0 reads 0).
    pub fn xreg(&self, r: usize) -> u64 {
        self.state.x[r & 31]
    }

    /// Sets integer register `r`; writes to x0 are ignored.
    pub fn set_xreg(&mut self, r: usize, value: u64) {
        if r & 31 != 0 {
            self.state.x[r & 31] = value;
        }
    }

    /// FP register `r` as raw 64 bits (singles are NaN-boxed).
    pub fn freg(&self, r: usize) -> u64 {
        self.state.f[r & 31]
    }

    /// Sets FP register `r` (raw bits).
    pub fn set_freg(&mut self, r: usize, value: u64) {
        self.state.f[r & 31] = value;
    }

    /// Current privilege mode.
    pub fn privilege(&self) -> Privilege {
        self.state.privilege
    }

    /// mhartid.
    pub fn hart_id(&self) -> HartId {
        HartId(self.state.hart_id as u32)
    }
}

/// What a translated block's calls into Rust reach: the hart and bus of
/// the run, and where the block stands.
#[cfg(target_arch = "x86_64")]
struct BlockContext<B> {
    hart: *mut Hart,
    bus: *mut B,
    frame: *mut crate::jit::BlockFrame,
    /// The hart's steps when the block was entered (translated code keeps
    /// its count in `frame.left`; the hart's own is updated on return).
    start_steps: u64,
    /// `frame.left` at entry.
    budget: u64,
    /// How an instruction run by `interpret_for_block` stopped the block.
    stop: Option<Flow>,
}

/// Called by translated code on a load or store that missed the TLB at
/// `vaddr` (aligned; `access`: 1 for a store, plus the size times 2);
/// nonzero if the TLB holds its page now.
///
/// # Safety
/// `context` is a live `BlockContext<B>` whose hart runs the calling block
/// and whose bus is that run's; nothing else uses either during the call.
#[cfg(target_arch = "x86_64")]
unsafe extern "sysv64" fn fill_tlb_for_block<B: Bus>(
    context: *mut u8,
    vaddr: u64,
    access: u64,
) -> u64 {
    // SAFETY: the caller's guarantee.
    let (hart, bus) = unsafe {
        let context = &mut *context.cast::<BlockContext<B>>();
        (&mut *context.hart, &mut *context.bus)
    };
    u64::from(hart.fill_tlb(bus, vaddr, access & 1 != 0, (access >> 1) as u8))
}

/// Called by translated code to run instructions `k..k + run` of the
/// block (`k_run` is `k | run << 16`): F/D, or one CSR access, LR/SC or AMO
/// (see `emit::Kind::Called`), whose pcs and decoded forms start at `at`,
/// through the interpreter's own code, with the block's registers in
/// memory. Returns nonzero if the block must stop at one of them: before
/// it if a device access was deferred or a watch hit, after it if it
/// trapped (taken) or changed what the block relies on (it stored to code,
/// emptied execute-TLB entries, switched the TLB sets, or let an interrupt
/// in, which is checked here as the interpreter checks it after such a
/// step); the frame then says how far the run got and where it goes on.
///
/// # Safety
/// As [`fill_tlb_for_block`], and `at` points at `run` live `(u64, Inst)`.
#[cfg(target_arch = "x86_64")]
unsafe extern "sysv64" fn interpret_for_block<B: Bus>(
    context: *mut u8,
    at: u64,
    k_run: u64,
) -> u64 {
    let (k, run) = (k_run & 0xffff, k_run >> 16);
    // SAFETY: the caller's guarantee.
    let (context, hart, bus, frame) = unsafe {
        let context = &mut *context.cast::<BlockContext<B>>();
        let (hart, bus, frame) = (&mut *context.hart, &mut *context.bus, &mut *context.frame);
        (context, hart, bus, frame)
    };
    let mut stopped = false;
    for j in 0..run {
        // SAFETY: the caller's guarantee (`run` entries from `at`).
        let (pc, inst) = unsafe {
            *std::ptr::with_exposed_provenance::<(u64, Inst)>(
                at as usize + j as usize * std::mem::size_of::<(u64, Inst)>(),
            )
        };
        // The hart's state as the interpreter would have it before this
        // step.
        hart.state.pc = pc;
        hart.state.steps = context.start_steps + context.budget - frame.left + k + j;
        let epoch = hart.tlb.epoch;
        let (flow, next) = if inst.op.is_fp() {
            // Straight to the F/D code, the common case, past the dispatch.
            let flow = match hart.exec_fp(bus, inst) {
                Ok(()) => Flow::Continue,
                Err(e) => hart.fail(e),
            };
            (flow, pc.wrapping_add(u64::from(inst.len)))
        } else {
            execute_in_block(hart, bus, pc, inst)
        };
        // As the interpreter's loop does after every step (`fmv.x.d x0, ...`).
        hart.state.x[0] = 0;
        stopped = match flow {
            // Retired, as in the interpreter's `finish_step`.
            Flow::Continue | Flow::CheckInterrupts => {
                hart.state.pc = next;
                hart.state.steps += 1;
                if flow == Flow::CheckInterrupts {
                    hart.check_interrupts(bus);
                }
                // The block goes on unless an interrupt was taken or what
                // it relies on changed: then the run goes on from the pc
                // reached in Rust, as the interpreter would fetch it.
                hart.state.pc != next || hart.tlb.epoch != epoch
            }
            // Trapped (taken already), waiting for a device, or a watch hit.
            Flow::Trapped | Flow::Deferred | Flow::Watch => {
                context.stop = Some(flow);
                true
            }
            other => unreachable!("{inst:?} in a block: {other:?}"),
        };
        if stopped {
            frame.left = context.budget - (hart.state.steps - context.start_steps);
            frame.next_pc = hart.state.pc;
            break;
        }
    }
    // The block's caller adds the block's steps.
    hart.state.steps = context.start_steps;
    u64::from(stopped)
}

/// A CSR access, LR/SC or AMO for `interpret_for_block`, through the
/// interpreter's whole dispatch, kept out of line: inlined, its stack frame
/// and registers were paid by every F/D call too (fpbench 2.5 -> 3.1 s).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn execute_in_block<B: Bus>(hart: &mut Hart, bus: &mut B, pc: u64, inst: Inst) -> (Flow, u64) {
    hart.execute::<B, false>(bus, pc, inst)
}

impl Hart {
    /// The interpreter's slow-path lookup of a data page, for its effects
    /// only (the walk and its A/D bits, the first touch of the page, the
    /// TLB entry): whether the TLB now holds `vaddr`'s page for this kind
    /// of access. Anything else (a fault, a device, a refused or watched
    /// page) is left for the interpreter to meet again and take.
    #[cfg(target_arch = "x86_64")]
    fn fill_tlb<B: Bus>(&mut self, bus: &mut B, vaddr: u64, store: bool, size: u8) -> bool {
        let access = if store {
            crate::mmu::Access::Store
        } else {
            crate::mmu::Access::Load
        };
        let epoch = self.tlb.epoch;
        self.filling_tlb = true;
        let filled = self.access_slow(
            bus,
            vaddr,
            u64::from(size),
            access,
            crate::bus::Atomicity::Plain,
        );
        self.filling_tlb = false;
        if filled.is_err() {
            return false;
        }
        // A store to code this hart fetched from (the block may hold what
        // it changes), or a copy-on-write move that emptied the TLB (the
        // interpreter's next fetch walks): the interpreter runs the access
        // and goes on from there.
        if self.tlb.epoch != epoch {
            return false;
        }
        let array = if store {
            self.tlb.write()
        } else {
            self.tlb.read()
        };
        Tlb::lookup(array, vaddr).is_some()
    }
}
