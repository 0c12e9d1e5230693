//! The timeline as a `gdbstub` target: every hart a thread, reads without
//! side effects, writes refused, forward and reverse execution.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use gdbstub::common::{Signal, Tid};
use gdbstub::stub::MultiThreadStopReason;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadRangeStepping, MultiThreadRangeSteppingOps, MultiThreadResume,
    MultiThreadResumeOps, MultiThreadSchedulerLocking, MultiThreadSchedulerLockingOps,
    MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::reverse_exec::{
    ReplayLogPosition, ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmdOps};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::riscv::reg::id::RiscvRegId;
use samsara_cpu::Hart;
use samsara_engine::EngineError;
use samsara_engine::replay::{Position, Watch, WatchKind};
use samsara_types::GuestVirtAddr;

use super::arch::{CSRS, FP_CSRS, HartRegisters, Rv64Samsara};
use super::single_step;
use crate::timeline::{ALL_HARTS, Landing, SteppingBreakpoints, Timeline, Why};

/// EPERM: what a refused write answers (gdbstub cannot carry text).
const EPERM: u8 = 1;

/// What the next `resume` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Continue,
    Step { hart: usize },
    Range { hart: usize, start: u64, end: u64 },
    ReverseStep { hart: usize },
    ReverseContinue,
}

/// The gdb target: a timeline plus the protocol's bookkeeping.
pub struct Debuggee {
    pub(crate) timeline: Timeline,
    pub(crate) command: Option<Command>,
    /// Raised to interrupt a long command (a byte from gdb, Ctrl-C).
    pub(crate) interrupt: Arc<AtomicBool>,
    hw_breakpoints: BTreeSet<u64>,
    sw_breakpoints: BTreeSet<u64>,
    /// Set by `monitor` commands that moved the timeline.
    pub(crate) last: Option<Landing>,
    /// Harts gdb resumed by name (`vCont;c:N`), a bit per hart.
    continued: u64,
    /// gdb resumed only those (no wildcard `c`): other harts' hits are
    /// not reported.
    locked: bool,
    /// gdb's general thread (`Hg`, or the last stop's): the hart a
    /// reverse step on "any thread" means, as gdbserver has it.
    general: usize,
    /// Printed on gdb's console before the next stop is reported.
    pub(crate) console_note: Option<String>,
}

pub(crate) fn tid(hart: usize) -> Tid {
    NonZeroUsize::new(hart + 1).expect("hart + 1 is never zero")
}

fn hart_of(tid: Tid) -> usize {
    tid.get() - 1
}

impl Debuggee {
    pub fn new(timeline: Timeline) -> Self {
        Self {
            timeline,
            command: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            hw_breakpoints: BTreeSet::new(),
            sw_breakpoints: BTreeSet::new(),
            last: None,
            continued: 0,
            locked: false,
            general: 0,
            console_note: None,
        }
    }

    /// Back to the recording's start with no breakpoints: each gdb
    /// connection starts from the same state.
    pub fn reset(&mut self) -> Result<(), EngineError> {
        self.timeline.reset()?;
        self.hw_breakpoints.clear();
        self.sw_breakpoints.clear();
        self.command = None;
        self.last = None;
        self.general = 0;
        Ok(())
    }

    /// Notes gdb's general thread (every register or memory access names it).
    fn general(&mut self, tid: Tid) -> usize {
        self.general = hart_of(tid);
        self.general
    }

    fn hart(&self, tid: Tid) -> Option<&Hart> {
        self.timeline.session().harts().get(hart_of(tid))
    }

    /// Runs the pending command.
    pub(crate) fn run_command(&mut self) -> Result<Landing, EngineError> {
        let stop = Arc::clone(&self.interrupt);
        let command = self.command.unwrap_or(Command::Continue);
        let harts = |stepping: Option<usize>| {
            if self.locked {
                self.continued | stepping.map_or(0, |h| 1 << h)
            } else {
                ALL_HARTS
            }
        };
        // Only a locked resume needs them (to say which others moved).
        let states_before = if self.locked {
            self.hart_states()
        } else {
            Vec::new()
        };
        let landed = match command {
            Command::Continue => {
                let mask = harts(None);
                let step = if self.locked {
                    None
                } else {
                    self.software_step()
                };
                self.timeline.cont_passing(mask, step.as_ref(), &stop)
            }
            Command::Step { hart } => {
                let mask = harts(Some(hart));
                self.timeline.step(hart, mask, &stop)
            }
            Command::Range { hart, start, end } => {
                let mask = harts(Some(hart));
                self.timeline.step_range(hart, start, end, mask, &stop)
            }
            Command::ReverseStep { hart } => self.timeline.reverse_step(hart, &stop),
            Command::ReverseContinue => self.timeline.reverse_cont(&stop),
        }?;
        self.general = landed.hart;
        self.note_locked_harts_that_moved(&states_before);
        Ok(landed)
    }

    /// Each hart's (instruction count, pc).
    fn hart_states(&self) -> Vec<(u64, u64)> {
        let harts = self.timeline.session().harts();
        harts.iter().map(|h| (h.steps().0, h.pc().0)).collect()
    }

    /// After a resume of some harts only (gdb's `scheduler-locking`): the
    /// others ran as far as the recorded order required, but gdb assumes
    /// a thread it did not resume kept its registers and does not read
    /// them again. Say which moved and how to see them.
    fn note_locked_harts_that_moved(&mut self, before: &[(u64, u64)]) {
        if !self.locked {
            return;
        }
        let resumed = self.continued
            | match self.command {
                Some(Command::Step { hart } | Command::Range { hart, .. }) => 1 << hart,
                _ => 0,
            };
        let moved: Vec<String> = self
            .hart_states()
            .iter()
            .zip(before)
            .enumerate()
            .filter(|&(hart, (now, was))| (resumed >> hart) & 1 == 0 && now != was)
            .map(|(hart, _)| format!("{} (hart {hart})", hart + 1))
            .collect();
        if !moved.is_empty() {
            self.console_note = Some(format!(
                "samsara: thread{} {} also ran, as far as the recording orders them \
                 before this one; gdb keeps showing their old registers until \
                 'maintenance flush register-cache' (or a resume of all threads)\n",
                if moved.len() > 1 { "s" } else { "" },
                moved.join(", ")
            ));
        }
    }

    /// What gdb is told about a landing.
    pub(crate) fn stop_reason(&self, landing: &Landing) -> MultiThreadStopReason<u64> {
        let t = tid(landing.hart);
        match landing.why {
            Why::Step => MultiThreadStopReason::SignalWithThread {
                tid: t,
                signal: Signal::SIGTRAP,
            },
            Why::Breakpoint { pc } if self.hw_breakpoints.contains(&pc) => {
                MultiThreadStopReason::HwBreak(t)
            }
            Why::Breakpoint { .. } => MultiThreadStopReason::SwBreak(t),
            Why::Watch { addr, kind } => MultiThreadStopReason::Watch {
                tid: t,
                kind: match kind {
                    WatchKind::Read => GdbWatchKind::Read,
                    WatchKind::Write => GdbWatchKind::Write,
                    WatchKind::Access => GdbWatchKind::ReadWrite,
                },
                addr,
            },
            Why::Begin => MultiThreadStopReason::ReplayLog {
                tid: Some(t),
                pos: ReplayLogPosition::Begin,
            },
            Why::End => MultiThreadStopReason::ReplayLog {
                tid: Some(t),
                pos: ReplayLogPosition::End,
            },
            Why::Interrupted => MultiThreadStopReason::SignalWithThread {
                tid: t,
                signal: Signal::SIGINT,
            },
        }
    }

    /// The breakpoints of a resume of all harts that sit at a pc some
    /// hart's next instruction can go to: gdb single-stepping one of them
    /// (see `single_step`).
    fn software_step(&self) -> Option<SteppingBreakpoints> {
        let session = self.timeline.session();
        let mut step = SteppingBreakpoints {
            harts: 0,
            pcs: Vec::new(),
            until: Position::START,
        };
        for (hart, h) in session.harts().iter().enumerate().take(64) {
            let mut word = [0u8; 4];
            // A compressed instruction at the end of a page reads 2 bytes.
            if session.read_virt(hart, h.pc(), &mut word) < 2 {
                continue;
            }
            let next = single_step::next_pcs(h, u32::from_le_bytes(word));
            let mut set = next
                .into_iter()
                .filter(|pc| self.sw_breakpoints.contains(pc) || self.hw_breakpoints.contains(pc))
                .peekable();
            if set.peek().is_none() {
                continue;
            }
            step.pcs.extend(set);
            step.harts |= 1 << hart;
            step.until = step.until.max(self.timeline.after_next_step(hart));
        }
        (step.harts != 0).then_some(step)
    }

    fn registers(&self, tid: Tid) -> Option<HartRegisters> {
        let hart = self.hart(tid)?;
        let state = hart.state();
        let fflags = u32::from(state.csr.fflags);
        let frm = u32::from(state.csr.frm);
        Some(HartRegisters {
            x: state.x,
            pc: state.pc,
            f: state.f,
            fp_csrs: [fflags, frm, (frm << 5) | fflags],
            csrs: CSRS.iter().map(|&(csr, _)| hart.peek_csr(csr)).collect(),
            privilege: state.privilege as u8,
        })
    }

    fn ensure_unchanged(&self, changed: bool, what: &str) -> TargetResult<(), Self> {
        if changed {
            // The replay must stay as recorded. gdb only shows an error
            // code: say why where the user sees it.
            eprintln!(
                "samsara: refused to write {what}: a replay is read-only (it must stay as recorded)"
            );
            Err(TargetError::Errno(EPERM))
        } else {
            Ok(())
        }
    }
}

impl Target for Debuggee {
    type Arch = Rv64Samsara;
    type Error = EngineError;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        // gdb's temporary breakpoints (next, finish) are ours like any other.
        true
    }
}

impl MultiThreadBase for Debuggee {
    fn read_registers(&mut self, regs: &mut HartRegisters, tid: Tid) -> TargetResult<(), Self> {
        self.general(tid);
        *regs = self.registers(tid).ok_or(TargetError::NonFatal)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &HartRegisters, tid: Tid) -> TargetResult<(), Self> {
        let now = self.registers(tid).ok_or(TargetError::NonFatal)?;
        self.ensure_unchanged(
            regs.x != now.x || regs.pc != now.pc || regs.f != now.f,
            "registers",
        )
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let hart = self.general(tid);
        let n = super::memory::read_as_hart(self.timeline.session(), hart, start, data);
        if n == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14)); // EFAULT: not mapped
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let mut now = vec![0u8; data.len()];
        let n = super::memory::read_as_hart(self.timeline.session(), hart_of(tid), start, &mut now);
        self.ensure_unchanged(
            n != data.len() || now != data,
            &format!("{} bytes of memory at {start:#x}", data.len()),
        )
    }

    fn list_active_threads(&mut self, active: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for h in 0..self.timeline.session().harts().len() {
            active(tid(h));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for Debuggee {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RiscvRegId<u64>,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        self.general(tid);
        let regs = self.registers(tid).ok_or(TargetError::NonFatal)?;
        let (value, width) = match reg {
            RiscvRegId::Gpr(i) => (regs.x[usize::from(i)], 8),
            RiscvRegId::Pc => (regs.pc, 8),
            RiscvRegId::Fpr(i) => (regs.f[usize::from(i)], 8),
            RiscvRegId::Priv => (u64::from(regs.privilege), 1),
            RiscvRegId::Csr(csr) => {
                if let Some(i) = FP_CSRS.iter().position(|&(c, _)| c == csr) {
                    (u64::from(regs.fp_csrs[i]), 4)
                } else {
                    let i = CSRS
                        .iter()
                        .position(|&(c, _)| c == csr)
                        .ok_or(TargetError::NonFatal)?;
                    // Unavailable (e.g. `time` before any read): gdb shows it so.
                    (regs.csrs[i].ok_or(TargetError::NonFatal)?, 8)
                }
            }
            _ => return Err(TargetError::NonFatal),
        };
        let width = width.min(buf.len());
        buf[..width].copy_from_slice(&value.to_le_bytes()[..width]);
        Ok(width)
    }

    fn write_register(
        &mut self,
        tid: Tid,
        reg: RiscvRegId<u64>,
        val: &[u8],
    ) -> TargetResult<(), Self> {
        let mut now = [0u8; 8];
        let n = self.read_register(tid, reg, &mut now)?;
        self.ensure_unchanged(
            val.len() != n || val != &now[..n],
            &format!("register {reg:?}"),
        )
    }
}

impl ThreadExtraInfo for Debuggee {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let hart = hart_of(tid);
        let Some(h) = self.hart(tid) else {
            return Ok(0);
        };
        let mode = match h.state().privilege as u8 {
            0 => "U",
            1 => "S",
            _ => "M",
        };
        let session = self.timeline.session();
        let doing = match (session.current_hart(), session.position()) {
            (Some(c), p) if c == hart => format!("in entry {} at step {}", p.seq, p.step),
            _ => "between entries".to_string(),
        };
        let text = format!(
            "hart {hart} {mode}-mode, {} instructions, {doing}",
            h.steps().0
        );
        let n = text.len().min(buf.len());
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        Ok(n)
    }
}

impl MultiThreadResume for Debuggee {
    fn resume(&mut self) -> Result<(), Self::Error> {
        if self.command.is_none() {
            self.command = Some(Command::Continue);
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.command = None;
        self.continued = 0;
        self.locked = false;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        // Harts run as the recording orders them; a step of one takes
        // precedence over continuing the others.
        self.continued |= 1 << hart_of(tid).min(63);
        if self.command.is_none() {
            self.command = Some(Command::Continue);
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_range_step(&mut self) -> Option<MultiThreadRangeSteppingOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for Debuggee {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        // gdb resumed only the harts it named (`scheduler-locking on` or
        // `step`). No hart can pass an entry of another that the recording
        // put first, so the others still run as far as the recorded order
        // requires, and never further; but only the named harts' hits
        // stop them: gdb expects no stop from a thread it did not resume.
        self.locked = true;
        Ok(())
    }
}

impl MultiThreadSingleStep for Debuggee {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.command = Some(Command::Step { hart: hart_of(tid) });
        Ok(())
    }
}

impl MultiThreadRangeStepping for Debuggee {
    fn set_resume_action_range_step(
        &mut self,
        tid: Tid,
        start: u64,
        end: u64,
    ) -> Result<(), Self::Error> {
        self.command = Some(Command::Range {
            hart: hart_of(tid),
            start,
            end,
        });
        Ok(())
    }
}

impl ReverseStep<Tid> for Debuggee {
    fn reverse_step(&mut self, tid: Tid) -> Result<(), Self::Error> {
        // gdb sends `bs` after `Hc` for "any thread", which gdbstub turns
        // into the first thread: as gdbserver does, "any" is the general
        // thread (the one gdb has selected).
        let hart = if tid == self::tid(0) {
            self.general
        } else {
            hart_of(tid)
        };
        self.command = Some(Command::ReverseStep { hart });
        Ok(())
    }
}

impl ReverseCont<Tid> for Debuggee {
    fn reverse_cont(&mut self) -> Result<(), Self::Error> {
        self.command = Some(Command::ReverseContinue);
        Ok(())
    }
}

impl Breakpoints for Debuggee {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

fn watch(addr: u64, len: u64, kind: GdbWatchKind) -> Watch {
    Watch {
        addr: GuestVirtAddr(addr),
        len,
        kind: match kind {
            GdbWatchKind::Write => WatchKind::Write,
            GdbWatchKind::Read => WatchKind::Read,
            GdbWatchKind::ReadWrite => WatchKind::Access,
        },
    }
}

impl HwWatchpoint for Debuggee {
    // Any length, any number: a watched page just stays out of the TLB.
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        if len == 0 {
            return Ok(false);
        }
        self.timeline.add_watch(watch(addr, len, kind));
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.timeline.remove_watch(watch(addr, len, kind)))
    }
}

impl Debuggee {
    fn sync_breakpoints(&mut self, addr: u64) {
        if self.sw_breakpoints.contains(&addr) || self.hw_breakpoints.contains(&addr) {
            self.timeline.add_breakpoint(addr);
        } else {
            self.timeline.remove_breakpoint(addr);
        }
    }
}

impl SwBreakpoint for Debuggee {
    // No guest memory is patched: the replay must see what was recorded.
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.sw_breakpoints.insert(addr);
        self.sync_breakpoints(addr);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let had = self.sw_breakpoints.remove(&addr);
        self.sync_breakpoints(addr);
        Ok(had)
    }
}

impl HwBreakpoint for Debuggee {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.hw_breakpoints.insert(addr);
        self.sync_breakpoints(addr);
        Ok(true)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let had = self.hw_breakpoints.remove(&addr);
        self.sync_breakpoints(addr);
        Ok(had)
    }
}

pub(crate) fn say(out: &mut ConsoleOutput<'_>, text: &str) {
    for line in text.lines() {
        gdbstub::outputln!(out, "{}", line);
    }
}
