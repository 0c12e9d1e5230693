//! The native run mode: one host thread per hart, all sharing RAM directly
//! and truly concurrently. No recording; this is the baseline every
//! recording overhead is measured against, so nothing here sits on the
//! per-instruction path: harts run in batches and look at the world between
//! batches.

use samsara_cpu::{CpuEngine, TranslatorStats};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use samsara_cpu::{Hart, StopReason};
use samsara_types::HartId;

use crate::board::{Board, BoardConfig};
use crate::bus::DirectBus;
use crate::clock::HostClock;
use crate::console::{PanicWatch, RawTerminal, WatchedOutput, spawn_interactive_feeder};
use crate::devices::test_device::MachineExit;
use crate::machine::{LinuxBoot, Machine, MachineError};
use crate::supervisor::{Ending, Signals, Supervisor};

/// Instructions a hart runs between looks at the exit flag and the
/// interrupt lines: ~50 µs at 300 MIPS, far below any guest-visible latency.
const BATCH: u64 = 16 * 1024;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Number of harts.
    pub harts: u32,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Disk image for virtio-blk.
    pub disk: Option<PathBuf>,
    /// Open the disk read-only.
    pub disk_readonly: bool,
    /// Stop each hart after this many instructions.
    pub max_instructions: Option<u64>,
    /// Stop after this much wall-clock time.
    pub timeout: Option<Duration>,
    /// How the harts execute guest code.
    pub cpu: CpuEngine,
}

impl RunConfig {
    /// The board this run needs.
    pub fn board(&self) -> BoardConfig {
        BoardConfig {
            harts: self.harts,
            ram_size: self.ram_size,
            disk: self.disk.clone(),
            disk_readonly: self.disk_readonly,
            cpu: self.cpu,
        }
    }
}

/// How a run ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RunExit {
    /// The guest stopped the machine (test device or HTIF).
    Guest(MachineExit),
    /// A hart reached `--max-instructions`.
    InstructionLimit(u64),
    /// Ctrl-C or the caller's stop flag.
    Interrupted,
    /// The wall-clock `--timeout` passed.
    Timeout(Duration),
    /// The guest kernel panicked (the console showed its panic line).
    KernelPanic(String),
    /// A hart thread failed inside samsara (a bug): the machine was stopped.
    HartCrashed {
        /// The hart.
        hart: u32,
        /// The panic message.
        message: String,
    },
}

impl RunExit {
    /// The ending as the supervisor classifies it; `None` for a crashed
    /// hart thread.
    pub fn ending(&self) -> Option<Ending> {
        Some(match self {
            RunExit::Guest(exit) => Ending::Guest(*exit),
            RunExit::InstructionLimit(_) => Ending::InstructionLimit,
            RunExit::Interrupted => Ending::Interrupted,
            RunExit::Timeout(_) => Ending::Timeout,
            RunExit::KernelPanic(_) => Ending::KernelPanic,
            RunExit::HartCrashed { .. } => return None,
        })
    }

    /// The process exit status that reports this ending
    /// ([`Ending::exit_status`]; 3 for a crashed hart thread).
    pub fn exit_code(&self) -> u8 {
        self.ending().map_or(3, Ending::exit_status)
    }
}

impl fmt::Display for RunExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunExit::Guest(MachineExit::Poweroff) => write!(f, "guest powered off"),
            RunExit::Guest(MachineExit::Fail(code)) => {
                write!(f, "guest reported failure (code {code})")
            }
            RunExit::Guest(MachineExit::Reset) => {
                write!(f, "guest requested a reset; machine stopped")
            }
            RunExit::InstructionLimit(n) => {
                write!(f, "stopped at the instruction limit ({n} per hart)")
            }
            RunExit::Interrupted => write!(f, "interrupted"),
            RunExit::Timeout(t) => write!(f, "stopped at the {:.1} s timeout", t.as_secs_f64()),
            RunExit::KernelPanic(line) => write!(f, "the guest kernel panicked: {line}"),
            RunExit::HartCrashed { hart, message } => write!(
                f,
                "hart {hart} stopped on an internal error (a samsara bug, please report it): {message}"
            ),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// How it ended.
    pub exit: RunExit,
    /// Instruction steps executed by each hart.
    pub instructions_per_hart: Vec<u64>,
    /// Wall-clock time from the first instruction to the end.
    pub wall: Duration,
    /// The block translator's counters over all harts (`--cpu jit`).
    pub translator: Option<TranslatorStats>,
}

/// Run the image at `path` with the console on stdout and stdin.
pub fn run_image(
    path: &Path,
    config: &RunConfig,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, MachineError> {
    let (console, watch) = WatchedOutput::new(Box::new(std::io::stdout()));
    let mut machine = Machine::from_file(
        &config.board(),
        path,
        Arc::new(HostClock::new()),
        Box::new(console),
    )?;
    spawn_stdin_feeder(machine.board.uart.clone());
    let outcome = supervise(&mut machine, config, &stop, Some(&watch));
    machine.board.uart.flush_output();
    Ok(outcome)
}

/// Boot Linux (firmware, kernel, initrd; see [`LinuxBoot`]) with the
/// console on stdout and stdin. When stdin is a terminal it is put in raw
/// mode for the run and Ctrl-A X ends it (as QEMU's `-nographic`).
pub fn run_linux(
    boot: &LinuxBoot,
    config: &RunConfig,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, MachineError> {
    let (console, watch) = WatchedOutput::new(Box::new(std::io::stdout()));
    let (mut machine, _layout) = Machine::boot_linux(
        &config.board(),
        boot,
        Arc::new(HostClock::new()),
        Box::new(console),
        None,
    )?;
    let terminal = RawTerminal::enter();
    if terminal.is_some() {
        spawn_interactive_feeder(machine.board.uart.clone(), stop.clone());
    } else {
        spawn_stdin_feeder(machine.board.uart.clone());
    }
    let outcome = supervise(&mut machine, config, &stop, Some(&watch));
    machine.board.uart.flush_output();
    drop(terminal);
    if !matches!(outcome.exit, RunExit::Guest(_)) {
        // The guest's last line may lack its newline.
        println!();
    }
    Ok(outcome)
}

/// Feed the host's stdin to the UART from a background thread. It ends at
/// EOF; a blocked read does not keep the process alive.
pub fn spawn_stdin_feeder(uart: Arc<crate::devices::uart::Uart>) {
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
                uart.push_input_all(&buf[..n]);
            }
        });
}

/// Run every hart of `machine` on its own thread until the guest powers
/// off, a hart reaches `max_instructions`, or `stop` is raised.
pub fn run_machine(
    machine: &mut Machine,
    max_instructions: Option<u64>,
    stop: &AtomicBool,
) -> RunOutcome {
    let config = RunConfig {
        cpu: Default::default(),
        harts: machine.board.harts(),
        ram_size: machine.board.ram.size(),
        disk: None,
        disk_readonly: false,
        max_instructions,
        timeout: None,
    };
    supervise(machine, &config, stop, None)
}

/// [`run_machine`] with a wall-clock limit and, when `watch` is given, a
/// stop shortly after the console showed a kernel panic.
fn supervise(
    machine: &mut Machine,
    config: &RunConfig,
    stop: &AtomicBool,
    watch: Option<&PanicWatch>,
) -> RunOutcome {
    let max_instructions = config.max_instructions;
    let board = &machine.board;
    let halt = AtomicBool::new(false);
    let limit_hit = AtomicBool::new(false);
    let crashed: parking_lot::Mutex<Option<(u32, String)>> = parking_lot::Mutex::new(None);
    let mut supervisor = Supervisor::new(config.timeout, watch);
    let signals = || Signals {
        stop: stop.load(Ordering::Relaxed),
        guest_exit: board.exit.is_set(),
        limit_hit: limit_hit.load(Ordering::Relaxed),
        halt_requested: halt.load(Ordering::Relaxed),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = machine
            .harts
            .iter_mut()
            .map(|hart| {
                let (halt, limit_hit, crashed) = (&halt, &limit_hit, &crashed);
                std::thread::Builder::new()
                    .name(format!("hart{}", hart.hart_id().0))
                    .spawn_scoped(scope, move || {
                        let id = hart.hart_id().0;
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_hart(hart, board, max_instructions, halt, limit_hit)
                        }));
                        if let Err(payload) = result {
                            let message = payload
                                .downcast_ref::<&str>()
                                .map(|s| (*s).to_owned())
                                .or_else(|| payload.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".into());
                            crashed.lock().get_or_insert((id, message));
                            halt.store(true, Ordering::SeqCst);
                        }
                    })
                    .expect("spawning a hart thread")
            })
            .collect();
        // Supervise: turn Ctrl-C, guest exits, the timeout and a kernel
        // panic into a halt of every hart, waking those asleep in WFI.
        supervisor.watch_until(
            || workers.iter().all(|w| w.is_finished()),
            signals,
            |_| {
                halt.store(true, Ordering::SeqCst);
                board.irq.wake_all();
            },
        );
    });
    let wall = supervisor.start().elapsed();
    let exit = match crashed.into_inner() {
        Some((hart, message)) => RunExit::HartCrashed { hart, message },
        None => match supervisor.ending(board.exit.get(), signals()) {
            Some(Ending::Guest(exit)) => RunExit::Guest(exit),
            Some(Ending::KernelPanic) => {
                RunExit::KernelPanic(supervisor.panic_line().unwrap_or_default())
            }
            Some(Ending::InstructionLimit) => {
                RunExit::InstructionLimit(max_instructions.unwrap_or(0))
            }
            Some(Ending::Timeout) => RunExit::Timeout(config.timeout.unwrap_or_default()),
            Some(Ending::Interrupted) | None => RunExit::Interrupted,
        },
    };
    RunOutcome {
        exit,
        instructions_per_hart: machine.harts.iter().map(|h| h.steps().0).collect(),
        wall,
        translator: machine
            .harts
            .iter()
            .filter_map(|h| h.translator_stats())
            .reduce(|mut sum, s| {
                sum += s;
                sum
            }),
    }
}

fn run_hart(
    hart: &mut Hart,
    board: &Board,
    max_instructions: Option<u64>,
    halt: &AtomicBool,
    limit_hit: &AtomicBool,
) {
    let id: HartId = hart.hart_id();
    let mut bus = DirectBus::new(board, id);
    let limit = max_instructions.unwrap_or(u64::MAX);
    // A spinning guest hart gives its host CPU away (as KVM's pause-loop
    // exiting does): with more harts than host cores the lock holder may
    // be the thread that is waiting for a CPU.
    hart.set_stop_on_pause(true);
    while !halt.load(Ordering::Relaxed) && !board.exit.is_set() {
        let done = hart.steps().0;
        if done >= limit {
            limit_hit.store(true, Ordering::SeqCst);
            break;
        }
        match hart.run(&mut bus, BATCH.min(limit - done)) {
            StopReason::Wfi => {
                board.irq.wait_for_interrupt(id, hart.state().csr.mie, halt);
            }
            StopReason::Pause => std::thread::yield_now(),
            // Run mode sets no watches and no stop at user switches.
            StopReason::StepLimit
            | StopReason::DeviceAccess
            | StopReason::Watch
            | StopReason::Breakpoint
            | StopReason::UserSwitch => {}
        }
    }
}
