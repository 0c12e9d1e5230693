//! `samsara-bench`: measured figures from real process runs.
//!
//! Every figure comes from spawning a process: the `samsara` binary
//! (`samsara run GUEST --json`, whose JSON summary on stderr gives the
//! instruction counts and the run's wall time; likewise `record` and
//! `replay`) and, side by side, the reference machine
//! `qemu-system-riscv64`. Each measurement is repeated (`--repeats`,
//! default 3) and the tables report medians.
//!
//! A suite is a function from a [`Bench`] (the context: which binaries,
//! where the guests are, how many repeats) to a [`Report`] (tables, notes,
//! targets). Shared: [`context`] (the binaries, the guests, one samsara or
//! QEMU run), [`process`] (spawning with a timeout, how busy the host
//! was), [`stats`], [`report`] (Markdown, CSV, JSON), [`charts`] (SVG).
//! The record and parsec suites share [`workloads`], [`strategy`],
//! [`plan`], [`runner`] and [`rows`]. One module per suite: [`machine`],
//! [`record`], [`parsec`], [`linux`], [`debug`] (with [`qemu_rr`], QEMU's
//! record/replay driven by gdb), [`standby`], [`analysis`].

mod analysis;
mod charts;
mod context;
mod debug;
mod linux;
mod machine;
mod parsec;
mod plan;
mod process;
mod qemu_rr;
mod record;
mod report;
mod rows;
mod runner;
mod standby;
mod stats;
mod strategy;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

use context::Bench;
pub use workloads::Size;

/// The benchmark suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// The machine in run mode: single-hart speed on intbench and fpbench,
    /// parsum scaling at 1, 2 and 4 harts, each beside QEMU TCG.
    Machine,
    /// Record/replay cost (issue 4): every bundled workload at 1, 2 and 4
    /// harts, native vs recorded vs replayed (parallel and serial), trace
    /// rates, squash rate and chunk length. Default size: test.
    Record,
    /// The paper's evaluation (issue 5): the six PARSEC-like workloads,
    /// recorded with each strategy, beside QEMU TCG and QEMU's own record
    /// mode, with SVG charts. Default size: bench.
    Parsec,
    /// Linux (issue 7): boot to power-off of linux/build's kernel and
    /// initramfs at 1, 2 and 4 harts with each workload (`boot`, or a
    /// PARSEC-like program run by /init), in run and record mode beside
    /// QEMU on the same files; log rate and what the log holds. Default
    /// workloads: boot,x264; size: test; repeats: 1.
    Linux,
    /// Hot standby (issue 16): the PARSEC-like workloads at 2 and 4 harts
    /// recorded plainly and with a standby on this host (slowdown, stream
    /// bandwidth, lag), and the key-value service's request rate and
    /// failover time. Default repeats: 3.
    Standby,
    /// Reverse debugging (issue 14): a Linux boot recorded at 4 harts,
    /// forward replay under the debugger vs plain replay, reverse-stepi at
    /// random positions, reverse-continue to a watchpoint hit, checkpoint
    /// memory; beside QEMU's record/replay at 1 CPU driven by gdb.
    Debug,
    /// Analysis on replay: `samsara analyze` (timeline with its web page
    /// and trace events, watch, syscalls on Linux, races) beside plain
    /// `samsara replay`, interleaved, on the 4-hart Linux boot, three
    /// PARSEC-like workloads and racy_counter, each recorded at 4 harts:
    /// medians and speed ratios. Default size: test; repeats: 3.
    Analysis,
}

/// What the suites are asked to run (from the command line).
pub struct Options {
    pub size: Size,
    /// Empty: every workload of the suite.
    pub workloads: Vec<String>,
    pub harts: Vec<u32>,
    /// Where the result files and charts go.
    pub results: PathBuf,
    /// Only print the plan and its estimate.
    pub dry_run: bool,
}

#[derive(Parser)]
#[command(
    name = "samsara-bench",
    version,
    about = "Measure samsara, and QEMU beside it, on the bundled guests (medians of real runs)"
)]
pub struct BenchArgs {
    /// Which suite to run.
    #[arg(long, value_enum, default_value_t = Suite::Machine)]
    pub(crate) suite: Suite,
    /// The samsara binary to measure [default: `samsara` next to this
    /// program, e.g. target/release/samsara].
    #[arg(long, value_name = "PATH")]
    samsara: Option<PathBuf>,
    /// Runs per measurement; tables report the median [default: 3; 1 for
    /// `--suite parsec --size bench`, which keeps that run within 30 minutes
    /// on a 2-core host].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeats: Option<u32>,
    /// Input size of the PARSEC-like workloads (record, parsec, standby and
    /// analysis suites) [default: test, except bench for parsec].
    #[arg(long, value_enum)]
    size: Option<Size>,
    /// Only these workloads, comma-separated (record, parsec, linux and
    /// analysis suites), e.g. `--workloads blackscholes,x264`.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    workloads: Vec<String>,
    /// Hart counts, comma-separated (record and parsec suites) [default: 1,2,4].
    #[arg(long, value_delimiter = ',', value_name = "N,M", value_parser = clap::value_parser!(u32).range(1..=8))]
    harts: Vec<u32>,
    /// Directory for the result files (Markdown, CSV, JSON) and, for the
    /// parsec suite, the SVG charts (record and parsec suites).
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    charts: PathBuf,
    /// Print the plan (every run, with its estimated time) and the
    /// estimated total, and run nothing (record and parsec suites).
    #[arg(long)]
    dry_run: bool,
    /// Directory with the guest ELFs [default: guests/build under the
    /// current directory, or under the checkout this binary was built in].
    #[arg(long, value_name = "DIR")]
    guests: Option<PathBuf>,
    /// The QEMU to compare against.
    #[arg(long, default_value = "qemu-system-riscv64", value_name = "PROGRAM")]
    qemu: PathBuf,
    /// Leave QEMU out.
    #[arg(long)]
    no_qemu: bool,
    /// Give up on any single run after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    timeout: u64,
    /// Debug suite: 5 reverse-stepi positions instead of 20, reverse-continue
    /// over 10⁷ and 10⁸ instructions only, 2 QEMU positions.
    #[arg(long)]
    quick: bool,
    /// Machine suite: how samsara executes guest code (`samsara run
    /// --cpu`: interp or jit) [default: samsara's own default].
    #[arg(long, value_parser = ["interp", "jit"])]
    cpu: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one header line, one line per row) instead of the table.
    #[arg(long)]
    csv: bool,
}

/// `samsara-bench`.
fn command(args: &BenchArgs) -> Result<ExitCode> {
    let size = args.size.unwrap_or(match args.suite {
        Suite::Parsec => Size::Bench,
        Suite::Machine
        | Suite::Record
        | Suite::Linux
        | Suite::Debug
        | Suite::Standby
        | Suite::Analysis => Size::Test,
    });
    if args.suite == Suite::Machine
        && (args.size.is_some()
            || !args.workloads.is_empty()
            || !args.harts.is_empty()
            || args.dry_run)
    {
        bail!(
            "--size, --workloads, --harts and --dry-run apply to the record and parsec suites only"
        );
    }
    if args.suite == Suite::Analysis && (!args.harts.is_empty() || args.dry_run) {
        bail!("--harts and --dry-run do not apply to the analysis suite (it records at 4 harts)");
    }
    let repeats = args.repeats.unwrap_or(match (args.suite, size) {
        (Suite::Parsec, Size::Bench) | (Suite::Linux, _) | (Suite::Debug, _) => 1,
        _ => 3,
    });
    let bench = Bench::new(args, repeats)?;
    let harts = if args.harts.is_empty() {
        vec![1, 2, 4]
    } else {
        args.harts.clone()
    };
    let options = Options {
        size,
        workloads: args.workloads.clone(),
        harts,
        results: args.charts.clone(),
        dry_run: args.dry_run,
    };
    let report = match args.suite {
        Suite::Machine => machine::machine_suite(&bench)?,
        Suite::Record => record::record_suite(&bench, &options)?,
        Suite::Parsec => parsec::parsec_suite(&bench, &options)?,
        Suite::Linux => linux::linux_suite(&bench, &options)?,
        Suite::Debug => debug::debug_suite(&bench, &debug::DebugOptions { quick: args.quick })?,
        Suite::Standby => standby::standby_suite(&bench, size)?,
        Suite::Analysis => analysis::analysis_suite(&bench, &options)?,
    };
    let text = if args.json {
        report.json()
    } else if args.csv {
        report.csv()
    } else {
        report.markdown()
    };
    print!("{text}");
    if !report.failures.is_empty() {
        eprintln!(
            "bench: FAILED: {} measurement(s) failed (see the table's notes)",
            report.failures.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    match command(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("samsara-bench: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
