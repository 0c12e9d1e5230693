//! The hart: state plus caches, and the run loop.

use samsara_isa::Inst;
use samsara_types::{GuestVirtAddr, HartId, InstrCount};

use crate::bus::{Bus, FetchBreakpoint};
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
    /// `run` returns [`StopReason::Pause`] after a `pause` hint.
    stop_on_pause: bool,
    /// Hot code translated to host code, when on (`set_translator`).
    #[cfg(target_arch = "x86_64")]
    jit: Option<Box<crate::jit::Jit>>,
}

impl Hart {
    /// A hart in its reset state: M-mode at `reset_pc`, `mhartid = id`.
    /// a0/a1 are left zero (the boot ROM sets them).
    pub fn new(id: HartId, reset_pc: GuestVirtAddr) -> Hart {
        Hart {
            state: HartState::reset(u64::from(id.0), reset_pc.raw()),
            tlb: Tlb::new(),
            dcache: DecodeCache::new(),
            stop_on_pause: false,
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
        use crate::jit::{BlockFrame, Lookup};
        let end = self.state.steps.saturating_add(max_steps);
        while self.state.steps < end {
            let pc = self.state.pc;
            let budget = end - self.state.steps;
            let jit = self.jit.as_mut().expect("the translator is on");
            match jit.lookup(pc, self.dcache.code_generation, &self.tlb.exec) {
                Lookup::Block(block, len) if len <= budget => {
                    let mut frame = BlockFrame {
                        left: budget,
                        next_pc: pc,
                    };
                    // SAFETY: `block` was translated from this generation's
                    // decode cache (so its instructions are the ones at
                    // these pcs, fetched with permission); it touches only
                    // the register array, the TLB arrays (read) and the
                    // host pages their entries grant (the same accesses,
                    // under the same checks, as the interpreter's fast
                    // path), and the frame; it runs at most `budget` steps.
                    let last = unsafe {
                        block(
                            self.state.x.as_mut_ptr(),
                            self.tlb.read.as_ptr(),
                            self.tlb.write.as_ptr(),
                            &mut frame,
                        )
                    };
                    let done = budget - frame.left + last;
                    self.state.steps += done;
                    self.state.pc = frame.next_pc;
                    jit.stats.steps_translated += done;
                    if done > 0 {
                        continue;
                    }
                }
                Lookup::Hot => {
                    jit.translate(pc, &self.dcache, &self.tlb.exec);
                    continue;
                }
                Lookup::Block(..) | Lookup::Interpret => {}
            }
            match self.interpret(bus, 1) {
                StopReason::StepLimit => {}
                other => return other,
            }
        }
        StopReason::StepLimit
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
            let (flow, next) = if let Some(&inst) = self.dcache.get(pc) {
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
            Flow::Trapped => {}
            // No step: pc and steps stay as they are.
            Flow::Deferred => return Some(StopReason::DeviceAccess),
            Flow::Watch => return Some(StopReason::Watch),
            Flow::Breakpoint => return Some(StopReason::Breakpoint),
        }
        None
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
        if cacheable {
            self.dcache.insert(pc, inst);
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

    /// Switches privilege mode. Translations and the decode cache depend on
    /// it (fetch permission, U/S page rules, PMP), so both are flushed.
    pub(crate) fn set_privilege(&mut self, p: Privilege) {
        self.state.privilege = p;
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

    /// Restores architectural state; drops TLB and decode cache.
    pub fn restore(&mut self, state: &HartState) {
        self.state.clone_from(state);
        self.tlb.flush();
        self.dcache.invalidate_code();
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
        self.dcache.invalidate_code();
    }

    /// Drops decoded instructions (call when code pages may have been
    /// written by someone else: commit, DMA, another hart).
    pub fn flush_decode_cache(&mut self) {
        self.dcache.invalidate_code();
    }

    /// Whether `run` stops after a `pause` hint (the recorder ends a chunk
    /// there: a spinning hart has nothing to gain from running on in it).
    pub fn set_stop_on_pause(&mut self, on: bool) {
        self.stop_on_pause = on;
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
