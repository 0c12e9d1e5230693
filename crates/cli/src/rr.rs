//! `samsara record`, `samsara replay`, `samsara inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use samsara_engine::exit::exit_status;
use samsara_engine::guest::FileOverrides;
use samsara_engine::inspect::{TraceSummary, inspect};
use samsara_engine::record::{
    RecordConfig, RecordOutcome, StandbyLink, Strategy, default_chunk_size, record,
};
use samsara_engine::replay::{ReplayConfig, replay, replay_following};
use samsara_engine::summary::{self, RecordSummary, ReplaySummary};
use samsara_machine::tcp_console::TcpConsole;
use samsara_standby::StandbyClient;
use samsara_trace::{RecordedExit, STREAM_NAMES, STREAMS};
use std::sync::Arc;

use crate::{MachineArgs, install_ctrl_c};

#[derive(Args)]
pub(crate) struct RecordArgs {
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Trace file to write.
    #[arg(short, long, default_value = "samsara.trace")]
    pub output: PathBuf,
    /// Chunk size limit in instructions (chunks start at 100000 and grow
    /// to it while they do not conflict); with `--strategy serial`, the
    /// round-robin quantum [default: 1000000; serial: 100000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: Option<u64>,
    /// Store verification digests for every Nth chunk of each hart, so that
    /// replay reports a divergence at the first chunk that differs (0: never).
    #[arg(long, default_value_t = 0)]
    pub check_every: u64,
    /// How to record memory interleaving: `chunk` (Samsara), `serial` (all
    /// harts on one host thread, round-robin by chunk-size quanta) or `crew`
    /// (page ownership with logged transfers, SMP-ReVirt style).
    #[arg(long, value_enum, default_value_t = Strategy::Chunk)]
    pub strategy: Strategy,
    /// Perturb the host schedule (random delays and chunk sizes) with this seed.
    #[arg(long)]
    pub perturb: Option<u64>,
    /// Do not copy the guest's output to stdout, nor print the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary on stderr as one JSON object on one line instead
    /// of the human lines (also with --quiet, which then only keeps the
    /// guest's output off stdout).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// The console and the hot standby: shared by `record` and `standby`.
#[derive(Args)]
pub(crate) struct LiveArgs {
    /// The guest's console: `stdio` (the terminal), or `tcp:HOST:PORT`, a
    /// socket a client program connects to (one client at a time; output
    /// while none is connected is dropped).
    #[arg(long, value_name = "stdio|tcp:HOST:PORT", default_value = "stdio")]
    pub serial: String,
    /// Stream the trace to a hot standby (`samsara standby --listen
    /// HOST:PORT`) as it is written; console output is released only once
    /// the standby has acknowledged the entry that produced it.
    #[arg(long, value_name = "HOST:PORT")]
    pub standby: Option<String>,
    /// Silence, in milliseconds, after which the other side of a standby
    /// stream is taken to be dead.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub failover_timeout: u64,
}

impl LiveArgs {
    /// The TCP console address, if `--serial tcp:HOST:PORT`.
    pub fn tcp_console(&self) -> Result<Option<String>> {
        match self.serial.as_str() {
            "stdio" => Ok(None),
            s => match s.strip_prefix("tcp:") {
                Some(addr) if !addr.is_empty() => Ok(Some(addr.to_string())),
                _ => anyhow::bail!("--serial {s}: expected stdio or tcp:HOST:PORT"),
            },
        }
    }

    pub fn failover_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.failover_timeout.max(1))
    }
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    pub files: TraceFiles,
    /// Replay on one host thread, in sequence order.
    #[arg(long)]
    pub serial: bool,
    /// Do not copy the regenerated output to stdout, nor print the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary on stderr as one JSON object on one line instead
    /// of the human lines (also with --quiet, which then only keeps the
    /// regenerated output off stdout).
    #[arg(long)]
    pub json: bool,
    /// Serve the gdb remote protocol on HOST:PORT instead of replaying
    /// straight through: paused at the recording's start, every hart a
    /// thread, reverse execution included (see `samsara debug`).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "follow")]
    pub gdb: Option<String>,
    /// Replay the trace while `samsara record` is still writing it: entries
    /// run as the recorder's blocks reach the file (within a quarter of a
    /// second of their commit), and the replay ends at the trace's footer,
    /// or, partial, once the file has not grown for --follow-idle seconds
    /// (a guest that commits nothing for that long, idle without timer
    /// interrupts, looks stopped). Start it on a fresh path: a trace
    /// already there is replayed as it is.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how long the trace may go without growing before the
    /// replay takes the recording to have stopped.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        requires = "follow"
    )]
    pub follow_idle: f64,
    #[command(flatten)]
    pub checkpoints: crate::debug::CheckpointArgs,
}

/// A trace and the guest files to replay it with.
#[derive(Args)]
pub(crate) struct TraceFiles {
    /// The trace.
    pub trace: PathBuf,
    #[command(flatten)]
    pub guest: GuestFiles,
}

/// The guest's files, where they are not at the paths a trace names, and
/// how to run them: shared by `replay` and `standby`.
#[derive(Args)]
pub(crate) struct GuestFiles {
    /// Guest image, or a Linux boot's firmware (default: the path recorded
    /// in the trace). It must be the very file that was recorded.
    #[arg(long, alias = "bios", value_name = "IMAGE|FW")]
    pub image: Option<PathBuf>,
    /// The kernel Image of a Linux trace (default: the recorded path).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// The initrd of a Linux trace (default: the recorded path).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// How the harts execute guest code (`interp` or `jit`, as for
    /// `record`; any trace replays on either).
    #[arg(long, value_enum, default_value_t = crate::CpuArg::default())]
    pub cpu: crate::CpuArg,
}

impl GuestFiles {
    /// The replay configuration of `trace` with these files.
    pub fn config(&self, trace: &std::path::Path, serial: bool, echo: bool) -> ReplayConfig {
        ReplayConfig {
            cpu: self.cpu.into(),
            trace: trace.to_path_buf(),
            files: FileOverrides {
                image: self.image.clone(),
                kernel: self.kernel.clone(),
                initrd: self.initrd.clone(),
            },
            serial,
            echo,
        }
    }
}

impl TraceFiles {
    /// The replay configuration for these files.
    pub fn config(&self, serial: bool, echo: bool) -> ReplayConfig {
        self.guest.config(&self.trace, serial, echo)
    }
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// The trace.
    pub trace: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The kernel's panic line in the guest output, from "Kernel panic" on.
fn panic_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text
        .lines()
        .find(|l| l.contains("Kernel panic - not syncing"))?;
    let at = line.find("Kernel panic")?;
    Some(line[at..].trim_end().to_owned())
}

pub(crate) fn record_command(args: &RecordArgs) -> Result<ExitCode> {
    let stop = install_ctrl_c()?;
    let m = &args.machine;
    let guest = m.guest()?;
    let strategy = args.strategy;
    let tcp = args.live.tcp_console()?;
    let console = tcp.as_deref().map(TcpConsole::listen).transpose()?;
    if let Some(addr) = console.as_ref().and_then(TcpConsole::local_addr) {
        eprintln!("samsara: console on tcp:{addr}");
    }
    let standby = args
        .live
        .standby
        .as_deref()
        .map(|addr| StandbyClient::connect(addr, args.live.failover_timeout()))
        .transpose()?;
    let config = RecordConfig {
        cpu: m.cpu.into(),
        strategy,
        ram_size: m.ram_size(&guest),
        guest,
        trace: args.output.clone(),
        harts: m.harts,
        disk: m.disk.clone(),
        disk_readonly: m.disk_readonly,
        chunk_size: args.chunk_size.unwrap_or(default_chunk_size(strategy)),
        max_instructions: m.max_instructions,
        timeout: m.timeout()?,
        check_every: args.check_every,
        perturb: args.perturb,
        echo: !args.quiet,
        stdin: tcp.is_none(),
        console,
        standby: standby.clone().map(|s| Arc::new(s) as Arc<dyn StandbyLink>),
    };
    let outcome = record(&config, &stop)?;
    if let Some(standby) = &standby {
        // Held output goes out once the standby has the trace's end.
        let stream = standby.finish(std::time::Duration::from_secs(5));
        if !args.quiet {
            eprintln!(
                "standby: {} bytes streamed, {:.3} Mbit/s; output held at most {:.1} ms{}",
                stream.bytes,
                stream.bytes as f64 * 8.0 / 1e6 / stream.seconds.max(1e-9),
                standby.max_output_delay().as_secs_f64() * 1e3,
                if stream.lost { " (standby lost)" } else { "" }
            );
        }
    }
    if args.json || !args.quiet {
        print_record_summary(&args.output, &outcome, args.json);
    }
    Ok(ExitCode::from(exit_status(outcome.footer.exit)))
}

/// The summary of a recording: human lines, or one JSON line with `--json`.
pub(crate) fn print_record_summary(path: &std::path::Path, o: &RecordOutcome, json: bool) {
    let f = &o.footer;
    let ending = match f.exit {
        RecordedExit::KernelPanic => panic_line(&f.output).map_or_else(
            || f.exit.describe(),
            |line| format!("{}: {line}", f.exit.describe()),
        ),
        exit => exit.describe(),
    };
    let summary = RecordSummary::of(path, o, ending, exit_status(f.exit));
    if json {
        eprintln!("{}", summary::to_json_line(&summary));
    } else {
        for line in summary.human() {
            eprintln!("{line}");
        }
    }
}

pub(crate) fn replay_command(args: &ReplayArgs) -> Result<ExitCode> {
    if let Some(address) = &args.gdb {
        return crate::debug::serve_gdb(args, address);
    }
    let follow = match args.follow {
        true => Some(
            std::time::Duration::try_from_secs_f64(args.follow_idle)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--follow-idle {}: a number of seconds above 0",
                        args.follow_idle
                    )
                })?,
        ),
        false => None,
    };
    let stop = install_ctrl_c()?;
    let config = args.files.config(args.serial, !args.quiet);
    let outcome = match follow {
        Some(idle) => replay_following(&config, idle, &stop)?,
        None => replay(&config, &stop)?,
    };
    let summary = ReplaySummary::of(&args.files.trace, &outcome, args.serial);
    if args.json {
        eprintln!("{}", summary::to_json_line(&summary));
    } else {
        for line in summary.human(args.quiet) {
            eprintln!("{line}");
        }
    }
    Ok(ExitCode::from(summary.status))
}

pub(crate) fn inspect_command(args: &InspectArgs) -> Result<ExitCode> {
    let s = inspect(&args.trace)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary_json(&s))?);
    } else {
        print_summary(&s);
    }
    Ok(ExitCode::from(if s.partial.is_some() { 3 } else { 0 }))
}

fn summary_json(s: &TraceSummary) -> serde_json::Value {
    let streams: serde_json::Map<String, serde_json::Value> = (0..STREAMS)
        .map(|i| {
            (
                STREAM_NAMES[i].to_string(),
                serde_json::json!({"raw": s.raw[i], "stored": s.compressed[i]}),
            )
        })
        .collect();
    let wall = s.footer.as_ref().map(|f| f.stats.wall_ns as f64 / 1e9);
    serde_json::json!({
        "header": s.header,
        "complete": s.footer.is_some(),
        "partial": s.partial,
        "file_bytes": s.file_bytes,
        "entries": s.entries,
        "chunks_per_hart": s.chunks_per_hart,
        "instructions_per_hart": s.steps_per_hart,
        "truncation_reasons": s.reasons,
        "exclusive_chunks": s.exclusive,
        "chunk_length_log2_histogram": s.length_histogram,
        "events": s.events,
        "dma": {"entries": s.dma_entries, "bytes": s.dma_bytes},
        "streams": streams,
        "record_wall_seconds": wall,
        "bytes_per_second": wall.map(|w| s.file_bytes as f64 / w.max(1e-9)),
        "bytes_per_million_instructions": s.file_bytes as f64 * 1e6 / s.instructions().max(1) as f64,
        "squashes": s.footer.as_ref().map(|f| f.stats.squashes),
        "squashed_instructions": s.footer.as_ref().map(|f| f.stats.squashed_steps),
        "exit": s.footer.as_ref().map(|f| f.exit),
    })
}

fn print_summary(s: &TraceSummary) {
    let h = &s.header;
    println!(
        "trace: {} harts, {} MiB RAM, image {} ({} bytes), chunk size {}, strategy {}",
        h.harts,
        h.ram_size >> 20,
        h.image_path,
        h.image_len,
        h.chunk_size,
        h.strategy
    );
    for (what, file) in [("kernel", &h.kernel), ("initrd", &h.initrd)] {
        if let Some(f) = file {
            println!("{what}: {} ({} bytes)", f.path, f.len);
        }
    }
    if let Some(args) = &h.bootargs {
        println!("bootargs: {args}");
    }
    match (&h.disk, &h.disk_image) {
        (_, Some(d)) => println!("disk: {} ({} bytes)", d.path, d.len),
        (Some(path), None) => println!("disk: {path}"),
        (None, None) => {}
    }
    match (&s.footer, &s.partial) {
        (Some(f), _) => println!("status: complete; {}", f.exit.describe()),
        (None, Some(p)) => println!("status: PARTIAL: {p}"),
        (None, None) => println!("status: PARTIAL"),
    }
    let instructions = s.instructions();
    println!("entries: {}; instructions: {instructions}", s.entries);
    for (hart, (c, n)) in s.chunks_per_hart.iter().zip(&s.steps_per_hart).enumerate() {
        println!(
            "  hart {hart}: {c} chunks, {n} instructions, mean chunk {:.0}",
            *n as f64 / (*c).max(1) as f64
        );
    }
    let reasons: Vec<String> = s.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "truncation: {}; exclusive {}",
        reasons.join(", "),
        s.exclusive
    );
    let hist: Vec<String> = s
        .length_histogram
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("[2^{k}) {n}"))
        .collect();
    println!("chunk lengths: {}", hist.join(", "));
    let events: Vec<String> = s.events.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "events: {}; DMA {} entries, {} bytes",
        if events.is_empty() {
            "none".into()
        } else {
            events.join(", ")
        },
        s.dma_entries,
        s.dma_bytes
    );
    let total: u64 = s.compressed.iter().sum();
    for ((name, stored), raw) in STREAM_NAMES.iter().zip(&s.compressed).zip(&s.raw) {
        println!(
            "  stream {name:<7} {stored:>10} bytes stored ({raw:>10} raw), {:5.1}% of stored",
            100.0 * *stored as f64 / total.max(1) as f64
        );
    }
    println!(
        "file: {} bytes; {:.1} bytes per million instructions",
        s.file_bytes,
        s.file_bytes as f64 * 1e6 / instructions.max(1) as f64
    );
    if let Some(f) = &s.footer {
        let wall = f.stats.wall_ns as f64 / 1e9;
        let attempts = s.entries + f.stats.squashes;
        println!(
            "record: {wall:.3} s wall for {instructions} instructions ({:.1} MIPS); {:.0} bytes/s; squashes {} ({:.2}% of attempts, {} instructions thrown away)",
            instructions as f64 / wall.max(1e-9) / 1e6,
            s.file_bytes as f64 / wall.max(1e-9),
            f.stats.squashes,
            100.0 * f.stats.squashes as f64 / attempts.max(1) as f64,
            f.stats.squashed_steps
        );
    }
}
