//! The native run mode: one host thread per hart, all sharing RAM directly
//! and truly concurrently. No recording; this is the baseline every
//! recording overhead is measured against, so nothing here sits on the
//! per-instruction path: harts run in batches and look at the world between
//! batches.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use samsara_cpu::{Hart, StopReason};
use samsara_types::HartId;

use crate::board::{Board, BoardConfig};
use crate::bus::DirectBus;
use crate::clock::HostClock;
use crate::devices::test_device::MachineExit;
use crate::devices::uart::SerialOutput;
use crate::machine::{Machine, MachineError};

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
}

impl RunConfig {
    /// The board this run needs.
    pub fn board(&self) -> BoardConfig {
        BoardConfig {
            harts: self.harts,
            ram_size: self.ram_size,
            disk: self.disk.clone(),
            disk_readonly: self.disk_readonly,
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunExit {
    /// The guest stopped the machine (test device or HTIF).
    Guest(MachineExit),
    /// A hart reached `--max-instructions`.
    InstructionLimit(u64),
    /// Ctrl-C or the caller's stop flag.
    Interrupted,
}

impl RunExit {
    /// The process exit status that reports this ending: the guest's own
    /// code, 124 for the instruction limit (as `timeout`), 130 for Ctrl-C.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunExit::Guest(MachineExit::Poweroff) | RunExit::Guest(MachineExit::Reset) => 0,
            // A failure must never look like success once truncated to 8 bits.
            RunExit::Guest(MachineExit::Fail(code)) => match (*code & 0xff) as u8 {
                0 => 1,
                c => c,
            },
            RunExit::InstructionLimit(_) => 124,
            RunExit::Interrupted => 130,
        }
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
}

/// Run the image at `path` with the console on stdout and stdin.
pub fn run_image(
    path: &Path,
    config: &RunConfig,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, MachineError> {
    let console: SerialOutput = Box::new(std::io::stdout());
    let mut machine =
        Machine::from_file(&config.board(), path, Arc::new(HostClock::new()), console)?;
    spawn_stdin_feeder(machine.board.uart.clone());
    let outcome = run_machine(&mut machine, config.max_instructions, &stop);
    machine.board.uart.flush_output();
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
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let taken = uart.push_input(rest);
                    rest = &rest[taken..];
                    if taken == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
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
    let board = &machine.board;
    let halt = AtomicBool::new(false);
    let limit_hit = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = machine
            .harts
            .iter_mut()
            .map(|hart| {
                let (halt, limit_hit) = (&halt, &limit_hit);
                std::thread::Builder::new()
                    .name(format!("hart{}", hart.hart_id().0))
                    .spawn_scoped(scope, move || {
                        run_hart(hart, board, max_instructions, halt, limit_hit)
                    })
                    .expect("spawning a hart thread")
            })
            .collect();
        // Supervise: turn Ctrl-C and guest exits into a halt of every hart,
        // waking those asleep in WFI.
        while !workers.iter().all(|w| w.is_finished()) {
            if stop.load(Ordering::Relaxed)
                || board.exit.is_set()
                || limit_hit.load(Ordering::Relaxed)
            {
                halt.store(true, Ordering::SeqCst);
                board.irq.wake_all();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let wall = start.elapsed();
    let exit = match board.exit.get() {
        Some(exit) => RunExit::Guest(exit),
        None if limit_hit.load(Ordering::Relaxed) => {
            RunExit::InstructionLimit(max_instructions.unwrap_or(0))
        }
        None => RunExit::Interrupted,
    };
    RunOutcome {
        exit,
        instructions_per_hart: machine.harts.iter().map(|h| h.steps().0).collect(),
        wall,
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
            StopReason::StepLimit | StopReason::DeviceAccess => {}
        }
    }
}
