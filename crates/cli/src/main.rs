//! `samsara`: the command-line front end. Thin by design: it parses
//! arguments and reports; the machine and the engines live in the libraries.

mod bench;
mod rr;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use samsara_machine::run::{RunConfig, RunOutcome, run_image};

#[derive(Parser)]
#[command(
    name = "samsara",
    version,
    about = "Deterministic record and replay of multi-hart RISC-V virtual machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a guest natively: one host thread per hart, no recording.
    Run(RunArgs),
    /// Measure samsara, and QEMU beside it, on the bundled guests (medians of real runs).
    Bench(bench::BenchArgs),
    /// Record a guest into a trace (Samsara's chunk engine).
    Record(rr::RecordArgs),
    /// Replay a trace and verify it against the recording.
    Replay(rr::ReplayArgs),
    /// Summarise what a trace holds.
    Inspect(rr::InspectArgs),
}

#[derive(Args)]
pub(crate) struct MachineArgs {
    /// Guest image: an RV64 ELF executable, or a raw binary loaded at 0x8000_0000.
    pub image: PathBuf,
    /// Number of harts (1-8), each on its own host thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub harts: u32,
    /// Guest RAM size, e.g. 128M or 1G.
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    pub mem: u64,
    /// Disk image for the virtio block device.
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// Open the disk image read-only (guest writes fail with an I/O error).
    #[arg(long)]
    pub disk_readonly: bool,
    /// Stop every hart after this many instructions (per hart).
    #[arg(long)]
    pub max_instructions: Option<u64>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// Do not print the summary line on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Parse sizes like `128M`, `1G`, `65536`, `64KiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 128M, 1G, 65536)"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "unknown size suffix '{suffix}' in '{text}' (use K, M or G)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

fn run_config(m: &MachineArgs) -> RunConfig {
    RunConfig {
        harts: m.harts,
        ram_size: m.mem,
        disk: m.disk.clone(),
        disk_readonly: m.disk_readonly,
        max_instructions: m.max_instructions,
    }
}

/// A stop flag raised by Ctrl-C, so a run ends cleanly with a message.
pub(crate) fn install_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

fn print_summary(outcome: &RunOutcome) {
    let per_hart: Vec<String> = outcome
        .instructions_per_hart
        .iter()
        .enumerate()
        .map(|(h, n)| format!("hart{h}={n}"))
        .collect();
    let total: u64 = outcome.instructions_per_hart.iter().sum();
    let secs = outcome.wall.as_secs_f64();
    let mips = if secs > 0.0 {
        total as f64 / secs / 1e6
    } else {
        0.0
    };
    eprintln!(
        "samsara: {}; instructions {} (total {total}); wall {secs:.3} s; {mips:.1} MIPS",
        outcome.exit,
        per_hart.join(" ")
    );
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let stop = install_ctrl_c()?;
    let outcome = run_image(&args.machine.image, &run_config(&args.machine), stop)?;
    if !args.quiet {
        print_summary(&outcome);
    }
    Ok(ExitCode::from(outcome.exit.exit_code()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::command(args),
        Command::Record(args) => rr::record_command(args),
        Command::Replay(args) => rr::replay_command(args),
        Command::Inspect(args) => rr::inspect_command(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("samsara: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
