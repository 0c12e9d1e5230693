//! `samsara`: the command-line front end. Thin by design: it parses
//! arguments and reports; the machine and the engines live in the libraries.

mod analyze;
mod debug;
mod rr;
mod standby;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use samsara_engine::guest::{Guest, LinuxFiles};
use samsara_engine::summary::{self, RunSummary};
use samsara_machine::run::{RunConfig, run_image, run_linux};

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
    /// Record a guest into a trace (Samsara's chunk engine).
    Record(rr::RecordArgs),
    /// Replay a trace and verify it against the recording.
    Replay(rr::ReplayArgs),
    /// Summarise what a trace holds.
    Inspect(rr::InspectArgs),
    /// Analyze a recording on its replay: `timeline` (a web page, Chrome
    /// trace events), `watch ADDR` (who wrote these bytes), `syscalls`
    /// (an strace of a Linux recording), `races` (unsynchronised accesses);
    /// several at once in one replay.
    Analyze(analyze::AnalyzeArgs),
    /// Be a hot standby for `samsara record --standby`: replay the
    /// primary's trace as it streams in, and take over when it dies.
    Standby(standby::StandbyArgs),
    /// Debug a recording in gdb, forward and backward: serves the trace on
    /// a free local port and starts gdb-multiarch on it with the guest's
    /// symbols.
    Debug(debug::DebugArgs),
}

/// What to boot and on what machine: shared by `run` and `record`.
#[derive(Args)]
pub(crate) struct MachineArgs {
    /// Guest image: an RV64 ELF executable, or a raw binary loaded at
    /// 0x8000_0000. Not with --kernel/--linux.
    #[arg(required_unless_present_any = ["kernel", "linux", "bios"], conflicts_with_all = ["kernel", "linux", "bios"])]
    pub image: Option<PathBuf>,
    /// Number of harts (1-8), each on its own host thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub harts: u32,
    /// Guest RAM size, e.g. 128M or 1G [default: 128M; 512M with --kernel/--linux].
    #[arg(long, value_parser = parse_size)]
    pub mem: Option<u64>,
    /// Disk image for the virtio block device.
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// Open the disk image read-only (guest writes fail with an I/O error).
    #[arg(long)]
    pub disk_readonly: bool,
    /// Stop every hart after this many instructions (per hart).
    #[arg(long)]
    pub max_instructions: Option<u64>,
    /// Stop after this many seconds of wall-clock time (status 124).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Firmware loaded at 0x8000_0000 and entered in M-mode (OpenSBI's
    /// fw_dynamic.bin); alone, it runs like IMAGE.
    #[arg(long, value_name = "FW")]
    pub bios: Option<PathBuf>,
    /// Linux kernel Image (raw RISC-V Image), loaded 2 MiB-aligned above the firmware.
    #[arg(long, value_name = "IMAGE")]
    pub kernel: Option<PathBuf>,
    /// Initial RAM disk for the kernel.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
    /// Boot the Linux that scripts/setup-linux.sh prepared (linux/build/, or
    /// $SAMSARA_LINUX_DIR): its fw_dynamic.bin, Image, initramfs and
    /// command line, each replaceable by --bios/--kernel/--initrd/--append.
    #[arg(long)]
    pub linux: bool,
    /// How the harts execute guest code: `jit` translates hot code to host
    /// code (on x86-64 hosts; elsewhere it interprets); `interp` interprets
    /// every instruction (the reference). A recording does not depend on
    /// it.
    #[arg(long, value_enum, default_value_t = CpuArg::default())]
    pub cpu: CpuArg,
}

/// `--cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CpuArg {
    Interp,
    Jit,
}

impl Default for CpuArg {
    /// The translator where there is one.
    fn default() -> Self {
        if cfg!(target_arch = "x86_64") {
            CpuArg::Jit
        } else {
            CpuArg::Interp
        }
    }
}

impl From<CpuArg> for samsara_cpu::CpuEngine {
    fn from(cpu: CpuArg) -> Self {
        match cpu {
            CpuArg::Interp => samsara_cpu::CpuEngine::Interpreter,
            CpuArg::Jit => samsara_cpu::CpuEngine::Translator,
        }
    }
}

impl MachineArgs {
    /// What to boot: the image, or the firmware, kernel, initrd and
    /// command line of a Linux boot.
    pub(crate) fn guest(&self) -> Result<Guest> {
        if let Some(files) = self.linux_files()? {
            return Ok(Guest::Linux(files));
        }
        match (&self.image, &self.bios) {
            (Some(image), _) | (None, Some(image)) => Ok(Guest::Image(image.clone())),
            (None, None) => anyhow::bail!("nothing to run: give IMAGE, --kernel or --linux"),
        }
    }

    /// RAM size: `--mem`, else 512 MiB for a kernel and 128 MiB for an image.
    pub(crate) fn ram_size(&self, guest: &Guest) -> u64 {
        let default = match guest {
            Guest::Linux(_) => 512 << 20,
            Guest::Image(_) => 128 << 20,
        };
        self.mem.unwrap_or(default)
    }

    /// `--timeout` as a duration, checked.
    pub(crate) fn timeout(&self) -> Result<Option<Duration>> {
        match self.timeout {
            Some(secs) if secs.is_finite() && secs > 0.0 => Ok(Some(Duration::from_secs_f64(secs))),
            Some(secs) => anyhow::bail!("--timeout {secs}: give a positive number of seconds"),
            None => Ok(None),
        }
    }

    /// The firmware, kernel, initrd and command line, if this run boots a kernel.
    fn linux_files(&self) -> Result<Option<LinuxFiles>> {
        if !self.linux && self.kernel.is_none() {
            if self.initrd.is_some() || self.append.is_some() {
                anyhow::bail!("--initrd and --append need a kernel: add --kernel IMAGE or --linux");
            }
            return Ok(None);
        }
        let dir = samsara_machine::guest::bundled_linux_dir();
        let firmware = match &self.bios {
            Some(path) => path.clone(),
            None => bundled(&dir, "fw_dynamic.bin", "--bios")?,
        };
        let kernel = match &self.kernel {
            Some(path) => path.clone(),
            None => bundled(&dir, "Image", "--kernel")?,
        };
        let initrd = match &self.initrd {
            Some(path) => Some(path.clone()),
            None if self.linux => Some(bundled(&dir, "initramfs.cpio.gz", "--initrd")?),
            None => None,
        };
        let bootargs = match &self.append {
            Some(text) => text.clone(),
            None if self.linux => std::fs::read_to_string(dir.join("cmdline"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| DEFAULT_LINUX_CMDLINE.to_owned()),
            None => DEFAULT_LINUX_CMDLINE.to_owned(),
        };
        Ok(Some(LinuxFiles {
            firmware,
            kernel,
            initrd,
            bootargs: Some(bootargs),
        }))
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// Do not print the summary line on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary on stderr as one JSON object on one line instead
    /// of the human line (stdout stays the guest's console).
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
}

/// The kernel command line of `--linux` when linux/build has none.
const DEFAULT_LINUX_CMDLINE: &str = "console=ttyS0 earlycon=sbi";

/// A file of the bundled Linux setup, with a clear message if it is missing.
fn bundled(dir: &std::path::Path, name: &str, flag: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        anyhow::bail!(
            "{} not found (needed for {flag}); run scripts/setup-linux.sh to fetch OpenSBI, the kernel and build the initramfs, or pass {flag} explicitly",
            path.display()
        )
    }
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

fn run_config(args: &MachineArgs, guest: &Guest) -> Result<RunConfig> {
    Ok(RunConfig {
        cpu: args.cpu.into(),
        harts: args.harts,
        ram_size: args.ram_size(guest),
        disk: args.disk.clone(),
        disk_readonly: args.disk_readonly,
        max_instructions: args.max_instructions,
        timeout: args.timeout()?,
    })
}

/// A stop flag raised by Ctrl-C, so a run ends cleanly with a message.
pub(crate) fn install_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let guest = args.machine.guest()?;
    let config = run_config(&args.machine, &guest)?;
    let stop = install_ctrl_c()?;
    let outcome = match &guest {
        Guest::Linux(files) => run_linux(&files.load()?, &config, stop)?,
        Guest::Image(image) => run_image(image, &config, stop)?,
    };
    let summary = RunSummary::of(&outcome);
    if args.json {
        eprintln!("{}", summary::to_json_line(&summary));
    } else if !args.quiet {
        eprintln!("{}", summary.human());
    }
    Ok(ExitCode::from(summary.status))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Record(args) => rr::record_command(args),
        Command::Replay(args) => rr::replay_command(args),
        Command::Inspect(args) => rr::inspect_command(args),
        Command::Standby(args) => standby::standby_command(args),
        Command::Analyze(args) => analyze::analyze_command(args),
        Command::Debug(args) => debug::debug_command(args),
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
