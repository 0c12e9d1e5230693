//! The record/replay suites of `samsara bench`.
//!
//! * `record` (issue 4): every bundled workload at 1, 2 and 4 harts —
//!   native `samsara run` beside `samsara record` (chunk strategy) and
//!   `samsara replay` in parallel and `--serial`, with the trace's rates
//!   (`samsara inspect --json`), squash rate and chunk length.
//! * `parsec` (issue 5, the paper's evaluation): the six PARSEC-like
//!   workloads recorded with every strategy the binary offers, beside QEMU
//!   TCG (MTTCG) as the native peer and QEMU's own record mode (one CPU
//!   only), with SVG charts.
//!
//! Like the machine suite, every figure comes from a real process (this
//! binary, or QEMU), each measurement is repeated and the tables report
//! medians. Every replay must print VERIFIED; one that does not, or any
//! run that fails, is reported (the table shows it, `bench` exits 1) but
//! does not stop the remaining measurements.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::charts::{Chart, Panel, Series};
use super::{
    Bench, Cell, ProcessRun, Report, Size, Summary, Table, Target, busy_note, load_average, median,
    run_process,
};

/// What the suites are asked to run (from the command line).
pub(super) struct Options {
    pub size: Size,
    /// Empty: every workload of the suite.
    pub workloads: Vec<String>,
    pub harts: Vec<u32>,
    /// Where the result files and charts go.
    pub results: PathBuf,
    /// Only print the plan and its estimate.
    pub dry_run: bool,
}

// ------------------------------------------------------------------ workloads

/// A bundled workload and what the time estimate assumes about it.
struct Known {
    name: &'static str,
    /// One of the PARSEC-like workloads: its ELF is `NAME-SIZE.elf`.
    parsec: bool,
    /// Needs a virtio disk (a scratch image is made for it).
    disk: bool,
    /// CPU-bound: held to the trace-rate target.
    cpu_bound: bool,
    /// Approximate instructions at one hart, test and bench size (the same
    /// for non-PARSEC guests): only for the up-front time estimate.
    instructions: [f64; 2],
    /// The instruction count grows with the hart count (every hart does
    /// the same amount of work) rather than being split between them.
    per_hart: bool,
    /// Approximate one-hart `samsara run` MIPS (measured at commit 616ccdf
    /// on the 2-core build host, which was half busy with other work, so
    /// on the low side): only for the up-front time estimate.
    mips: f64,
}

const CATALOG: &[Known] = &[
    Known {
        name: "parsum",
        parsec: false,
        disk: false,
        cpu_bound: true,
        instructions: [352e6, 352e6],
        per_hart: false,
        mips: 200.0,
    },
    Known {
        name: "intbench",
        parsec: false,
        disk: false,
        cpu_bound: true,
        instructions: [333e6, 333e6],
        per_hart: false,
        mips: 220.0,
    },
    Known {
        name: "racy_counter",
        parsec: false,
        disk: false,
        cpu_bound: false,
        instructions: [6e6, 6e6],
        per_hart: true,
        mips: 180.0,
    },
    Known {
        name: "spin_contend",
        parsec: false,
        disk: false,
        cpu_bound: false,
        instructions: [6e6, 6e6],
        per_hart: true,
        mips: 60.0,
    },
    Known {
        name: "dma_mix",
        parsec: false,
        disk: true,
        cpu_bound: false,
        instructions: [5e6, 5e6],
        per_hart: true,
        mips: 40.0,
    },
    Known {
        name: "blackscholes",
        parsec: true,
        disk: false,
        cpu_bound: true,
        instructions: [64e6, 2.45e9],
        per_hart: false,
        mips: 129.0,
    },
    Known {
        name: "bodytrack",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [84e6, 2.34e9],
        per_hart: false,
        mips: 124.0,
    },
    Known {
        name: "raytrace",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [82e6, 2.55e9],
        per_hart: false,
        mips: 99.0,
    },
    Known {
        name: "swaptions",
        parsec: true,
        disk: false,
        cpu_bound: true,
        instructions: [46e6, 2.34e9],
        per_hart: false,
        mips: 88.0,
    },
    Known {
        name: "freqmine",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [67e6, 2.19e9],
        per_hart: false,
        mips: 125.0,
    },
    Known {
        name: "x264",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [88e6, 2.43e9],
        per_hart: false,
        mips: 157.0,
    },
];

/// Size of the scratch disk given to guests that need one (dma_mix needs
/// at least 64 KiB).
const DISK_BYTES: usize = 1 << 20;

/// A workload as run: its catalog entry and image.
struct Workload {
    known: &'static Known,
    image: PathBuf,
}

impl Workload {
    fn name(&self) -> &'static str {
        self.known.name
    }

    fn approx_instructions(&self, size: Size, harts: u32) -> f64 {
        let base = self.known.instructions[usize::from(size == Size::Bench)];
        if self.known.per_hart {
            base * f64::from(harts)
        } else {
            base
        }
    }
}

/// The suite's workloads, narrowed to `--workloads`, in catalog order.
fn workloads(bench: &Bench, options: &Options, parsec_only: bool) -> Result<Vec<Workload>> {
    let offered: Vec<&'static Known> = CATALOG
        .iter()
        .filter(|k| k.parsec || !parsec_only)
        .collect();
    for wanted in &options.workloads {
        if !offered.iter().any(|k| k.name == wanted) {
            bail!(
                "unknown workload '{wanted}' for this suite (choose from {})",
                offered
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    offered
        .into_iter()
        .filter(|k| options.workloads.is_empty() || options.workloads.iter().any(|w| w == k.name))
        .map(|known| {
            let file = if known.parsec {
                format!("{}-{}", known.name, options.size.name())
            } else {
                known.name.to_string()
            };
            Ok(Workload {
                known,
                image: bench.guest(&file)?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ strategies

/// How `samsara record` records memory interleaving (`--strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Strategy {
    /// Samsara's chunks.
    Chunk,
    /// One host thread, round-robin quanta (QEMU's and rr's way).
    Serial,
    /// Concurrent-read exclusive-write page ownership (SMP-ReVirt).
    Crew,
}

impl Strategy {
    /// Every strategy the tables have columns for, in column order.
    const ALL: [Strategy; 3] = [Strategy::Chunk, Strategy::Serial, Strategy::Crew];

    fn name(self) -> &'static str {
        match self {
            Strategy::Chunk => "chunk",
            Strategy::Serial => "serial",
            Strategy::Crew => "crew",
        }
    }
}

/// The strategies this samsara binary accepts: the possible values its
/// `record --help` lists for `--strategy`. A strategy that is added later
/// (CREW) is picked up without touching the bench.
fn implemented_strategies(samsara: &Path) -> Result<Vec<Strategy>> {
    let out = Command::new(samsara)
        .args(["record", "--help"])
        .output()
        .with_context(|| format!("cannot run {} record --help", samsara.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(parse_strategies(&help))
}

fn parse_strategies(help: &str) -> Vec<Strategy> {
    let values = help
        .find("--strategy")
        .map(|at| &help[at..])
        .and_then(|rest| rest.split_once("[possible values: "))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("chunk", |(list, _)| list);
    let names: Vec<&str> = values.split(',').map(str::trim).collect();
    Strategy::ALL
        .into_iter()
        .filter(|s| names.contains(&s.name()))
        .collect()
}

// ------------------------------------------------------------------ runs

/// What one step of a suite runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `samsara run`.
    Native,
    /// `qemu-system-riscv64 -accel tcg,thread=multi`.
    Qemu,
    /// `samsara record --strategy S`, then `samsara inspect --json`.
    Record(Strategy),
    /// `samsara replay` of this repeat's chunk-strategy trace.
    Replay { serial: bool },
    /// `qemu-system-riscv64 -icount shift=auto,rr=record` (one CPU).
    QemuRecord,
}

impl Kind {
    fn describe(self) -> String {
        match self {
            Kind::Native => "samsara run".into(),
            Kind::Qemu => "QEMU TCG".into(),
            Kind::Record(s) => format!("record --strategy {}", s.name()),
            Kind::Replay { serial: false } => "replay (parallel)".into(),
            Kind::Replay { serial: true } => "replay --serial".into(),
            Kind::QemuRecord => "QEMU rr=record".into(),
        }
    }
}

/// One process run (or two: record is followed by inspect) of the plan.
struct Step {
    rep: u32,
    workload: usize,
    harts: u32,
    kind: Kind,
    /// Expected seconds on an idle host (for the estimate and progress).
    estimate: f64,
}

/// Expected seconds for a step, from the catalog's rough instruction
/// counts and speeds: enough to say "about 25 minutes" up front.
fn estimate(w: &Workload, size: Size, harts: u32, kind: Kind, cores: usize) -> f64 {
    let instructions = w.approx_instructions(size, harts);
    let mips = w.known.mips * 1e6;
    let threads = f64::from(harts.min(cores as u32).max(1));
    let parallel = if harts > 1 { threads * 0.85 } else { 1.0 };
    let rate = match kind {
        Kind::Native => mips * parallel,
        // Crew recorded these workloads as fast as chunk (BENCHMARKS.md,
        // CREW beside chunk and serial): they hand few pages over.
        Kind::Record(Strategy::Chunk | Strategy::Crew) | Kind::Replay { serial: false } => {
            mips * parallel * 0.8
        }
        Kind::Record(Strategy::Serial) | Kind::Replay { serial: true } => mips * 0.9,
        Kind::Qemu => mips * 4.0 * parallel,
        Kind::QemuRecord => mips * 4.0,
    };
    // Process start-up, and for a record the inspect that follows it.
    instructions / rate + 0.1
}

fn fmt_duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Where a long run is: one stderr line per step, with the time spent and
/// an estimate of the time left (the up-front estimate, rescaled by how
/// fast the host has turned out to be so far).
struct Progress {
    total: usize,
    done: usize,
    estimate_total: f64,
    estimate_done: f64,
    start: Instant,
}

impl Progress {
    fn new(steps: &[Step]) -> Self {
        Self {
            total: steps.len(),
            done: 0,
            estimate_total: steps.iter().map(|s| s.estimate).sum(),
            estimate_done: 0.0,
            start: Instant::now(),
        }
    }

    fn left(&self) -> f64 {
        let elapsed = self.start.elapsed().as_secs_f64();
        let scale = if self.estimate_done > 1.0 {
            elapsed / self.estimate_done
        } else {
            1.0
        };
        (self.estimate_total - self.estimate_done) * scale
    }

    fn begin(&self, what: &str) {
        eprint!(
            "bench: [{:>3}/{} {} elapsed, ~{} left] {what}: ",
            self.done + 1,
            self.total,
            fmt_duration(self.start.elapsed().as_secs_f64()),
            fmt_duration(self.left())
        );
    }

    fn end(&mut self, estimate: f64, result: &str) {
        eprintln!("{result}");
        self.done += 1;
        self.estimate_done += estimate;
    }
}

/// A `samsara run`.
struct NativeRun {
    instructions: u64,
    wall: f64,
    output: Vec<u8>,
}

/// What `samsara inspect --json` says about a trace.
#[derive(Clone, Debug, Default)]
struct TraceStats {
    instructions: u64,
    chunks: u64,
    squashes: u64,
    file_bytes: u64,
    /// Stored (compressed) bytes of all streams, and of the commit log.
    stored: u64,
    commit_stored: u64,
    /// The recorder's own wall time (first instruction to the footer).
    record_wall: f64,
    /// Chunks that ended at (or were) a device access, and at a pause hint.
    device_ends: u64,
    spin_ends: u64,
}

impl TraceStats {
    fn parse(json: &serde_json::Value) -> Result<Self> {
        let sum = |key: &str| -> Result<u64> {
            json[key]
                .as_array()
                .with_context(|| format!("inspect --json: no {key}"))?
                .iter()
                .map(|v| v.as_u64().context("not a count"))
                .sum()
        };
        let num = |v: &serde_json::Value, what: &str| -> Result<u64> {
            v.as_u64()
                .with_context(|| format!("inspect --json: no {what}"))
        };
        let streams = json["streams"]
            .as_object()
            .context("inspect --json: no streams")?;
        let stored: u64 = streams
            .values()
            .map(|s| s["stored"].as_u64().unwrap_or(0))
            .sum();
        let reason = |name: &str| json["truncation_reasons"][name].as_u64().unwrap_or(0);
        Ok(Self {
            instructions: sum("instructions_per_hart")?,
            chunks: sum("chunks_per_hart")?,
            squashes: num(&json["squashes"], "squashes")?,
            file_bytes: num(&json["file_bytes"], "file_bytes")?,
            stored,
            commit_stored: num(&json["streams"]["commit"]["stored"], "commit stream")?,
            record_wall: json["record_wall_seconds"]
                .as_f64()
                .context("inspect --json: no record_wall_seconds")?,
            device_ends: reason("device-access") + reason("device-op"),
            spin_ends: reason("spin"),
        })
    }
}

/// A recording: the trace's statistics.
struct Recorded {
    stats: TraceStats,
}

/// Everything measured for one workload at one hart count, over repeats.
#[derive(Default)]
struct Samples {
    native: Vec<NativeRun>,
    qemu: Vec<f64>,
    qemu_output_differs: bool,
    records: BTreeMap<Strategy, Vec<Recorded>>,
    replay_parallel: Vec<f64>,
    replay_serial: Vec<f64>,
    replays_verified: u32,
    replays_failed: u32,
    qemu_record: Vec<(f64, u64)>,
    busy: Vec<f64>,
    failed: bool,
}

/// Runs the plan's steps: processes, scratch files, progress, failures.
struct Runner<'a> {
    bench: &'a Bench,
    scratch: PathBuf,
    failures: Vec<String>,
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl<'a> Runner<'a> {
    fn new(bench: &'a Bench) -> Result<Self> {
        let scratch = std::env::temp_dir().join(format!("samsara-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(Self {
            bench,
            scratch,
            failures: Vec::new(),
        })
    }

    fn trace_path(&self, w: &Workload, harts: u32, rep: u32, strategy: Strategy) -> PathBuf {
        self.scratch.join(format!(
            "{}-{}h-r{rep}-{}.trace",
            w.name(),
            harts,
            strategy.name()
        ))
    }

    /// A fresh, zeroed scratch disk (run mode writes to its disk).
    fn fresh_disk(&self) -> Result<PathBuf> {
        let path = self.scratch.join("disk.img");
        std::fs::write(&path, vec![0u8; DISK_BYTES])
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    fn samsara(&self) -> Command {
        Command::new(&self.bench.samsara)
    }

    /// A process that must exit with status 0.
    fn must_pass(&self, cmd: Command) -> Result<ProcessRun> {
        let run = run_process(cmd, self.bench.timeout)?;
        if !run.status.success() {
            bail!(
                "{} failed ({}): {}",
                run.what,
                run.status,
                last_lines(&run.stderr, 6)
            );
        }
        Ok(run)
    }

    fn native(&self, w: &Workload, harts: u32) -> Result<(NativeRun, ProcessRun)> {
        let mut cmd = self.samsara();
        cmd.arg("run")
            .arg(&w.image)
            .arg("--harts")
            .arg(harts.to_string())
            .args(["--mem", "128M"]);
        if w.known.disk {
            cmd.arg("--disk").arg(self.fresh_disk()?);
        }
        let run = self.must_pass(cmd)?;
        let summary = run
            .stderr
            .lines()
            .rev()
            .find_map(Summary::parse)
            .with_context(|| format!("{}: no summary line in {:?}", run.what, run.stderr))?;
        Ok((
            NativeRun {
                instructions: summary.total,
                wall: summary.wall.as_secs_f64(),
                output: run.stdout.clone(),
            },
            run,
        ))
    }

    fn record(
        &self,
        w: &Workload,
        harts: u32,
        strategy: Strategy,
        trace: &Path,
    ) -> Result<(Recorded, ProcessRun)> {
        let mut cmd = self.samsara();
        cmd.arg("record")
            .arg(&w.image)
            .arg("--harts")
            .arg(harts.to_string())
            .args(["--mem", "128M", "--strategy", strategy.name(), "-o"])
            .arg(trace);
        if w.known.disk {
            cmd.arg("--disk").arg(self.fresh_disk()?);
        }
        let run = self.must_pass(cmd)?;
        let mut cmd = self.samsara();
        cmd.arg("inspect").arg(trace).arg("--json");
        let inspected = self.must_pass(cmd)?;
        let json: serde_json::Value = serde_json::from_slice(&inspected.stdout)
            .with_context(|| format!("{}: output is not JSON", inspected.what))?;
        let stats = TraceStats::parse(&json)?;
        Ok((Recorded { stats }, run))
    }

    fn replay(&self, trace: &Path, serial: bool) -> Result<(f64, ProcessRun)> {
        verified_replay(self.bench, trace, serial)
    }

    fn qemu_command(&self, qemu: &Path, image: &Path, harts: u32) -> Command {
        let mut cmd = Command::new(qemu);
        cmd.args(["-M", "virt", "-bios", "none", "-nographic", "-m", "128M"])
            .arg("-smp")
            .arg(harts.to_string())
            .arg("-kernel")
            .arg(image);
        cmd
    }

    /// QEMU's record mode (`-icount shift=auto,rr=record`): the process
    /// and the size of its log.
    fn qemu_record(&self, qemu: &Path, w: &Workload, harts: u32) -> Result<(ProcessRun, u64)> {
        let log = self.scratch.join(format!("{}-qemu.rr", w.name()));
        let mut cmd = self.qemu_command(qemu, &w.image, harts);
        cmd.arg("-icount")
            .arg(format!("shift=auto,rr=record,rrfile={}", log.display()));
        let run = self.must_pass(cmd)?;
        let bytes = std::fs::metadata(&log)
            .with_context(|| format!("QEMU wrote no record log {}", log.display()))?
            .len();
        let _ = std::fs::remove_file(&log);
        Ok((run, bytes))
    }

    /// What QEMU says when asked to record more than one CPU (it refuses;
    /// the table quotes it). `None` if it unexpectedly accepted.
    fn qemu_smp_record_refusal(&self, qemu: &Path, w: &Workload) -> Result<Option<String>> {
        let log = self.scratch.join("smp-probe.rr");
        let mut cmd = self.qemu_command(qemu, &w.image, 2);
        cmd.arg("-icount")
            .arg(format!("shift=auto,rr=record,rrfile={}", log.display()));
        let run = run_process(cmd, self.bench.timeout)?;
        let _ = std::fs::remove_file(&log);
        Ok((!run.status.success()).then(|| last_lines(&run.stderr, 2)))
    }

    /// Run the plan; a failing step is recorded and the rest go on
    /// (a replay whose recording failed is skipped).
    fn execute(
        &mut self,
        workloads: &[Workload],
        steps: &[Step],
    ) -> BTreeMap<(usize, u32), Samples> {
        let mut samples: BTreeMap<(usize, u32), Samples> = BTreeMap::new();
        let mut progress = Progress::new(steps);
        for step in steps {
            let w = &workloads[step.workload];
            let s = samples.entry((step.workload, step.harts)).or_default();
            let what = format!(
                "{}, {} hart(s), run {}/{}, {}",
                w.name(),
                step.harts,
                step.rep,
                self.bench.repeats,
                step.kind.describe()
            );
            progress.begin(&what);
            let result = self.run_step(w, step, s);
            let line = match result {
                Ok(line) => line,
                Err(e) => {
                    s.failed = true;
                    if matches!(step.kind, Kind::Replay { .. }) {
                        s.replays_failed += 1;
                    }
                    let msg = format!("{what}: {e:#}");
                    self.failures.push(msg);
                    format!("FAILED: {e:#}")
                }
            };
            progress.end(step.estimate, &line);
        }
        eprintln!(
            "bench: {} runs in {} (estimated {} up front)",
            steps.len(),
            fmt_duration(progress.start.elapsed().as_secs_f64()),
            fmt_duration(progress.estimate_total)
        );
        samples
    }

    fn run_step(&self, w: &Workload, step: &Step, s: &mut Samples) -> Result<String> {
        let h = step.harts;
        Ok(match step.kind {
            Kind::Native => {
                let (n, run) = self.native(w, h)?;
                let line = format!(
                    "{:.3} s ({:.1} MIPS{})",
                    n.wall,
                    n.instructions as f64 / n.wall.max(1e-9) / 1e6,
                    busy_note(run.others_busy)
                );
                s.busy.extend(run.others_busy);
                s.native.push(n);
                line
            }
            Kind::Qemu => {
                let qemu = self.bench.qemu.as_ref().context("QEMU is not available")?;
                let run = self.bench.qemu_run(qemu, &w.image, h)?;
                if s.native.first().is_some_and(|n| n.output != run.stdout) {
                    s.qemu_output_differs = true;
                }
                s.busy.extend(run.others_busy);
                s.qemu.push(run.wall.as_secs_f64());
                format!(
                    "{:.3} s process{}",
                    run.wall.as_secs_f64(),
                    busy_note(run.others_busy)
                )
            }
            Kind::Record(strategy) => {
                let trace = self.trace_path(w, h, step.rep, strategy);
                let (r, run) = self.record(w, h, strategy, &trace)?;
                let st = &r.stats;
                let line = format!(
                    "{:.3} s, {} chunks, {} squashes, {} bytes{}",
                    st.record_wall,
                    st.chunks,
                    st.squashes,
                    st.file_bytes,
                    busy_note(run.others_busy)
                );
                s.busy.extend(run.others_busy);
                s.records.entry(strategy).or_default().push(r);
                line
            }
            Kind::Replay { serial } => {
                let trace = self.trace_path(w, h, step.rep, Strategy::Chunk);
                if !trace.is_file() {
                    bail!("skipped: the recording failed");
                }
                let (wall, run) = self.replay(&trace, serial)?;
                s.busy.extend(run.others_busy);
                s.replays_verified += 1;
                if serial {
                    s.replay_serial.push(wall);
                } else {
                    s.replay_parallel.push(wall);
                }
                format!("{wall:.3} s, VERIFIED{}", busy_note(run.others_busy))
            }
            Kind::QemuRecord => {
                let qemu = self.bench.qemu.as_ref().context("QEMU is not available")?;
                let (run, bytes) = self.qemu_record(qemu, w, h)?;
                if s.native.first().is_some_and(|n| n.output != run.stdout) {
                    s.qemu_output_differs = true;
                }
                s.busy.extend(run.others_busy);
                s.qemu_record.push((run.wall.as_secs_f64(), bytes));
                format!(
                    "{:.3} s process, log {bytes} bytes{}",
                    run.wall.as_secs_f64(),
                    busy_note(run.others_busy)
                )
            }
        })
    }
}

/// `samsara replay TRACE` (`--serial`), which must print VERIFIED: its own
/// wall time (the summary line) and the process.
pub(super) fn verified_replay(
    bench: &Bench,
    trace: &Path,
    serial: bool,
) -> Result<(f64, ProcessRun)> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.arg("replay").arg(trace);
    if serial {
        cmd.arg("--serial");
    }
    let run = run_process(cmd, bench.timeout)?;
    if !run.status.success() || !run.stderr.contains("VERIFIED") {
        bail!(
            "{} did not print VERIFIED ({}): {}",
            run.what,
            run.status,
            last_lines(&run.stderr, 8)
        );
    }
    let wall = parse_replay_wall(&run.stderr)
        .with_context(|| format!("{}: no replay summary in {:?}", run.what, run.stderr))?;
    Ok((wall, run))
}

/// `samsara: replayed N entries in parallel: I instructions in S s (M MIPS)`.
fn parse_replay_wall(stderr: &str) -> Option<f64> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("samsara: replayed ")?;
        let (_, rest) = rest.split_once(" instructions in ")?;
        rest.split_once(" s")?.0.parse().ok()
    })
}

/// The last `n` non-empty lines of `text`, joined, for error messages.
pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

// ------------------------------------------------------------------ medians

/// One strategy's recording of one workload at one hart count (medians).
#[derive(Clone, Copy, Debug)]
struct RecordFigures {
    wall: f64,
    instructions: f64,
    file_bytes: f64,
    bytes_per_second: f64,
    bytes_per_minstr: f64,
    commit_pct: f64,
    squash_pct: f64,
    mean_chunk: f64,
    device_end_pct: f64,
    spin_end_pct: f64,
}

impl RecordFigures {
    fn of(records: &[Recorded]) -> Option<Self> {
        if records.is_empty() {
            return None;
        }
        let m = |f: &dyn Fn(&TraceStats) -> f64| {
            median(&records.iter().map(|r| f(&r.stats)).collect::<Vec<_>>())
        };
        Some(Self {
            wall: m(&|s| s.record_wall),
            instructions: m(&|s| s.instructions as f64),
            file_bytes: m(&|s| s.file_bytes as f64),
            bytes_per_second: m(&|s| s.file_bytes as f64 / s.record_wall.max(1e-9)),
            bytes_per_minstr: m(&|s| s.file_bytes as f64 * 1e6 / s.instructions.max(1) as f64),
            commit_pct: m(&|s| 100.0 * s.commit_stored as f64 / s.stored.max(1) as f64),
            squash_pct: m(&|s| 100.0 * s.squashes as f64 / (s.chunks + s.squashes).max(1) as f64),
            mean_chunk: m(&|s| s.instructions as f64 / s.chunks.max(1) as f64),
            device_end_pct: m(&|s| 100.0 * s.device_ends as f64 / s.chunks.max(1) as f64),
            spin_end_pct: m(&|s| 100.0 * s.spin_ends as f64 / s.chunks.max(1) as f64),
        })
    }
}

/// One workload at one hart count: medians over the repeats.
struct Row {
    workload: usize,
    harts: u32,
    instructions: f64,
    native: f64,
    qemu: f64,
    qemu_output_differs: bool,
    records: BTreeMap<Strategy, RecordFigures>,
    replay_parallel: f64,
    replay_serial: f64,
    replays_verified: u32,
    replays_failed: u32,
    qemu_record: f64,
    qemu_record_bytes: f64,
    busy: Option<f64>,
    failed: bool,
}

impl Row {
    fn of(workload: usize, harts: u32, s: &Samples) -> Self {
        let med = |v: Vec<f64>| median(&v);
        let records: BTreeMap<Strategy, RecordFigures> = s
            .records
            .iter()
            .filter_map(|(k, v)| RecordFigures::of(v).map(|f| (*k, f)))
            .collect();
        let mut instructions = med(s.native.iter().map(|n| n.instructions as f64).collect());
        if !instructions.is_finite() {
            instructions = records
                .get(&Strategy::Chunk)
                .map_or(f64::NAN, |r| r.instructions);
        }
        Self {
            workload,
            harts,
            instructions,
            native: med(s.native.iter().map(|n| n.wall).collect()),
            qemu: med(s.qemu.clone()),
            qemu_output_differs: s.qemu_output_differs,
            records,
            replay_parallel: med(s.replay_parallel.clone()),
            replay_serial: med(s.replay_serial.clone()),
            replays_verified: s.replays_verified,
            replays_failed: s.replays_failed,
            qemu_record: med(s.qemu_record.iter().map(|q| q.0).collect()),
            qemu_record_bytes: med(s.qemu_record.iter().map(|q| q.1 as f64).collect()),
            busy: (!s.busy.is_empty()).then(|| median(&s.busy)),
            failed: s.failed,
        }
    }

    fn rec(&self, s: Strategy) -> Option<&RecordFigures> {
        self.records.get(&s)
    }

    /// Recording time over native run time for strategy `s`.
    fn slowdown(&self, s: Strategy) -> f64 {
        self.rec(s).map_or(f64::NAN, |r| r.wall / self.native)
    }

    fn chunk_wall(&self) -> f64 {
        self.rec(Strategy::Chunk).map_or(f64::NAN, |r| r.wall)
    }

    fn verified_cell(&self) -> Cell {
        let total = self.replays_verified + self.replays_failed;
        if total == 0 {
            Cell::Missing
        } else if self.replays_failed == 0 {
            Cell::Text(format!("yes ({total}/{total})"))
        } else {
            Cell::Text(format!("NO ({}/{total})", self.replays_verified))
        }
    }
}

/// Geometric mean of the finite, positive values (NaN if there are none).
fn geomean(values: impl IntoIterator<Item = f64>) -> f64 {
    let logs: Vec<f64> = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::ln)
        .collect();
    if logs.is_empty() {
        return f64::NAN;
    }
    (logs.iter().sum::<f64>() / logs.len() as f64).exp()
}

/// Arithmetic mean of the finite values (NaN if there are none).
fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

fn busy_cell(b: Option<f64>) -> Cell {
    b.map_or(Cell::Missing, |b| Cell::num(b * 100.0, 0))
}

/// Median "busy elsewhere" over a set of rows.
fn busy_of(rows: &[&Row]) -> Option<f64> {
    let v: Vec<f64> = rows.iter().filter_map(|r| r.busy).collect();
    (!v.is_empty()).then(|| median(&v))
}

fn plural_harts(h: u32) -> &'static str {
    if h == 1 { "hart" } else { "harts" }
}

/// Setup lines common to both suites.
fn setup(
    bench: &Bench,
    options: &Options,
    workloads: &[Workload],
    estimate: f64,
    elapsed: Duration,
) -> Vec<(String, String)> {
    let host = &bench.host;
    vec![
        (
            "host".to_string(),
            format!("{}, {} CPUs", host.cpu, host.cpus),
        ),
        ("load average before".to_string(), host.load_before.clone()),
        (
            "load average after".to_string(),
            load_average().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "samsara".to_string(),
            format!("{} {}", bench.samsara.display(), env!("CARGO_PKG_VERSION")),
        ),
        ("guests".to_string(), bench.guests.display().to_string()),
        (
            "workloads".to_string(),
            format!(
                "{} (PARSEC-like at size {})",
                workloads
                    .iter()
                    .map(Workload::name)
                    .collect::<Vec<_>>()
                    .join(", "),
                options.size.name()
            ),
        ),
        (
            "harts".to_string(),
            options
                .harts
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "time".to_string(),
            format!(
                "{} in all (estimated {} up front)",
                fmt_duration(elapsed.as_secs_f64()),
                fmt_duration(estimate)
            ),
        ),
    ]
}

/// Write the report as Markdown, CSV and JSON into the results directory.
fn write_results(dir: &Path, report: &Report) -> Result<()> {
    for (ext, text) in [
        ("md", report.markdown()),
        ("csv", report.csv()),
        ("json", report.json()),
    ] {
        let path = dir.join(format!("{}.{ext}", report.suite));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ suite: record

/// Issue 5's targets between strategies: the chunk log at least this many
/// times smaller than CREW's ...
const TARGET_CREW_OVER_CHUNK_BYTES: f64 = 10.0;
/// ... at most this many times the serial log ...
const TARGET_CHUNK_OVER_SERIAL_BYTES: f64 = 2.0;
/// ... and chunk recording at 4 harts clearly faster than serial (this
/// ratio of recording times at least).
const TARGET_SERIAL_OVER_CHUNK_WALL_4: f64 = 1.2;

/// Issue 5's comparisons of the chunk strategy with the baselines (geomeans
/// over the workloads of per-workload ratios), for the strategies measured.
fn strategy_targets(rows: &[Row], harts: &[u32], name: &dyn Fn(&Row) -> String) -> Vec<Target> {
    let mut targets = Vec::new();
    let ratio = |of_h: &[&Row], f: &dyn Fn(&Row) -> f64| -> Option<(f64, f64, String)> {
        let values: Vec<(f64, String)> = of_h
            .iter()
            .map(|r| (f(r), name(r)))
            .filter(|(v, _)| v.is_finite() && *v > 0.0)
            .collect();
        let worst = values.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
        Some((
            geomean(values.iter().map(|v| v.0)),
            worst.0,
            worst.1.clone(),
        ))
    };
    let bytes = |r: &Row, s: Strategy| r.rec(s).map_or(f64::NAN, |f| f.file_bytes);
    let wall = |r: &Row, s: Strategy| r.rec(s).map_or(f64::NAN, |f| f.wall);
    for &h in harts.iter().filter(|&&h| h >= 2) {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        if let Some((g, worst, at)) = ratio(&of_h, &|r| {
            bytes(r, Strategy::Crew) / bytes(r, Strategy::Chunk)
        }) {
            targets.push(Target {
                what: format!("chunk log vs crew log, {h} harts (crew bytes / chunk bytes)"),
                goal: format!("≥ {TARGET_CREW_OVER_CHUNK_BYTES:.0}x"),
                measured: format!("{g:.2}x geomean (lowest {at} {worst:.2}x)"),
                met: g >= TARGET_CREW_OVER_CHUNK_BYTES,
            });
        }
        // The paper's own measure: average log rates over the suite
        // (Samsara's 0.127 / 0.151 MB/s against CREW's), which weighs each
        // workload by how much it logs instead of by its ratio.
        let mean_rate = |s: Strategy| -> f64 {
            let rates: Vec<f64> = of_h
                .iter()
                .map(|r| bytes(r, s) / wall(r, s))
                .filter(|v| v.is_finite())
                .collect();
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        let (crew_rate, chunk_rate) = (mean_rate(Strategy::Crew), mean_rate(Strategy::Chunk));
        if crew_rate.is_finite() && chunk_rate > 0.0 {
            let g = crew_rate / chunk_rate;
            targets.push(Target {
                what: format!(
                    "chunk log vs crew log, {h} harts, the paper's measure (mean log rate over the workloads)"
                ),
                goal: format!("≥ {TARGET_CREW_OVER_CHUNK_BYTES:.0}x"),
                measured: format!(
                    "{g:.2}x (crew {:.0} B/s, chunk {:.0} B/s)",
                    crew_rate, chunk_rate
                ),
                met: g >= TARGET_CREW_OVER_CHUNK_BYTES,
            });
        }
        if let Some((g, _, _)) = ratio(&of_h, &|r| {
            bytes(r, Strategy::Chunk) / bytes(r, Strategy::Serial)
        }) {
            let worst = of_h
                .iter()
                .map(|r| {
                    (
                        bytes(r, Strategy::Chunk) / bytes(r, Strategy::Serial),
                        name(r),
                    )
                })
                .filter(|(v, _)| v.is_finite())
                .max_by(|a, b| a.0.total_cmp(&b.0));
            targets.push(Target {
                what: format!("chunk log vs serial log, {h} harts (chunk bytes / serial bytes)"),
                goal: format!("≤ {TARGET_CHUNK_OVER_SERIAL_BYTES:.0}x"),
                measured: format!(
                    "{g:.2}x geomean (highest {})",
                    worst.map_or("—".into(), |(v, n)| format!("{n} {v:.2}x"))
                ),
                met: g <= TARGET_CHUNK_OVER_SERIAL_BYTES,
            });
        }
        if h == 4
            && let Some((g, worst, at)) = ratio(&of_h, &|r| {
                wall(r, Strategy::Serial) / wall(r, Strategy::Chunk)
            })
        {
            targets.push(Target {
                what: "chunk record vs serial record, 4 harts (serial time / chunk time)".into(),
                goal: format!("≥ {TARGET_SERIAL_OVER_CHUNK_WALL_4:.1}x"),
                measured: format!("{g:.2}x geomean (lowest {at} {worst:.2}x)"),
                met: g >= TARGET_SERIAL_OVER_CHUNK_WALL_4,
            });
        }
    }
    targets
}

const TARGET_RECORD_2_HARTS: f64 = 2.0;
const TARGET_RECORD_4_HARTS: f64 = 3.0;
const TARGET_BYTES_PER_MINSTR: f64 = 30.0;

/// A suite's plan: for every repeat, workload and hart count, the runs
/// `kinds(harts)` names, each with its estimate.
fn plan(
    bench: &Bench,
    options: &Options,
    workloads: &[Workload],
    kinds: impl Fn(u32) -> Vec<Kind>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for rep in 1..=bench.repeats {
        for (wi, w) in workloads.iter().enumerate() {
            for &h in &options.harts {
                for kind in kinds(h) {
                    steps.push(Step {
                        rep,
                        workload: wi,
                        harts: h,
                        kind,
                        estimate: estimate(w, options.size, h, kind, bench.host.cpus),
                    });
                }
            }
        }
    }
    steps
}

/// `samsara bench --suite record`.
pub(super) fn record_suite(bench: &Bench, options: &Options) -> Result<Report> {
    let started = Instant::now();
    let workloads = workloads(bench, options, false)?;
    let cores = bench.host.cpus;
    let steps = plan(bench, options, &workloads, |_| {
        vec![
            Kind::Native,
            Kind::Record(Strategy::Chunk),
            Kind::Replay { serial: false },
            Kind::Replay { serial: true },
        ]
    });
    let estimate_total: f64 = steps.iter().map(|s| s.estimate).sum();
    eprintln!(
        "bench: record suite: {} workloads x {} hart counts x {} repeat(s) = {} runs, \
         estimated {} on an idle {}-CPU host",
        workloads.len(),
        options.harts.len(),
        bench.repeats,
        steps.len(),
        fmt_duration(estimate_total),
        cores
    );
    if options.dry_run {
        return Ok(plan_report("record", bench, &workloads, &steps));
    }
    let mut runner = Runner::new(bench)?;
    let samples = runner.execute(&workloads, &steps);
    let rows: Vec<Row> = samples
        .iter()
        .map(|(&(w, h), s)| Row::of(w, h, s))
        .collect();
    let rows = ordered(rows, &options.harts);

    let mut table = Table::new(
        "Record and replay vs native run (chunk strategy, medians)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("instructions", "instructions"),
            ("native_s", "native s"),
            ("record_s", "record s"),
            ("record_over_native", "record/native"),
            ("replay_s", "replay s"),
            ("replay_serial_s", "replay --serial s"),
            ("replay_over_record", "replay/record"),
            ("replay_serial_over_record", "serial replay/record"),
            ("trace_bytes", "trace bytes"),
            ("trace_bytes_per_s", "trace B/s"),
            ("trace_bytes_per_minstr", "B/Minstr"),
            ("commit_log_pct", "commit log %"),
            ("squash_pct", "squash rate %"),
            ("mean_chunk", "mean chunk"),
            ("device_end_pct", "device ends %"),
            ("spin_end_pct", "spin ends %"),
            ("verified", "verified"),
            ("others_busy_pct", "busy elsewhere %"),
        ],
    );
    for r in &rows {
        let rec = r.rec(Strategy::Chunk);
        let f = |g: fn(&RecordFigures) -> f64| rec.map_or(f64::NAN, g);
        let chunk = r.chunk_wall();
        table.push(vec![
            Cell::Text(workloads[r.workload].name().into()),
            Cell::Int(r.harts.into()),
            if r.instructions.is_finite() {
                Cell::Int(r.instructions.round() as u64)
            } else {
                Cell::Missing
            },
            Cell::num(r.native, 3),
            Cell::num(chunk, 3),
            Cell::num(chunk / r.native, 2),
            Cell::num(r.replay_parallel, 3),
            Cell::num(r.replay_serial, 3),
            Cell::num(r.replay_parallel / chunk, 2),
            Cell::num(r.replay_serial / chunk, 2),
            Cell::num(f(|x| x.file_bytes), 0),
            Cell::num(f(|x| x.bytes_per_second), 0),
            Cell::num(f(|x| x.bytes_per_minstr), 1),
            Cell::num(f(|x| x.commit_pct), 1),
            Cell::num(f(|x| x.squash_pct), 2),
            Cell::num(f(|x| x.mean_chunk), 0),
            Cell::num(f(|x| x.device_end_pct), 1),
            Cell::num(f(|x| x.spin_end_pct), 1),
            r.verified_cell(),
            busy_cell(r.busy),
        ]);
    }
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let recs: Vec<&RecordFigures> =
            of_h.iter().filter_map(|r| r.rec(Strategy::Chunk)).collect();
        let all_verified = of_h.iter().all(|r| r.replays_failed == 0 && !r.failed);
        table.push(vec![
            Cell::Text("geomean".into()),
            Cell::Int(h.into()),
            Cell::Missing,
            Cell::Missing,
            Cell::Missing,
            Cell::num(geomean(of_h.iter().map(|r| r.chunk_wall() / r.native)), 2),
            Cell::Missing,
            Cell::Missing,
            Cell::num(
                geomean(of_h.iter().map(|r| r.replay_parallel / r.chunk_wall())),
                2,
            ),
            Cell::num(
                geomean(of_h.iter().map(|r| r.replay_serial / r.chunk_wall())),
                2,
            ),
            Cell::Missing,
            Cell::num(geomean(recs.iter().map(|x| x.bytes_per_second)), 0),
            Cell::num(geomean(recs.iter().map(|x| x.bytes_per_minstr)), 1),
            Cell::num(mean(recs.iter().map(|x| x.commit_pct)), 1),
            Cell::num(mean(recs.iter().map(|x| x.squash_pct)), 2),
            Cell::num(geomean(recs.iter().map(|x| x.mean_chunk)), 0),
            Cell::num(mean(recs.iter().map(|x| x.device_end_pct)), 1),
            Cell::num(mean(recs.iter().map(|x| x.spin_end_pct)), 1),
            Cell::Text(if all_verified { "yes" } else { "NO" }.into()),
            busy_cell(busy_of(&of_h)),
        ]);
    }

    let notes = vec![
        "Times are each process's own wall time from its summary (`samsara run`: first \
         instruction to power-off; `record`: the recorder's wall time in the trace footer; \
         `replay`: its summary line), medians over the repeats; every replay printed \
         VERIFIED or the row says NO. `replay` is parallel, `replay --serial` one host \
         thread in sequence order, both of the chunk-strategy trace of the same repeat."
            .to_string(),
        "Trace B/s and B/Minstr count the whole file (preamble, JSON header and footer \
         included: about 1 KB whatever the run's length). Commit log % is the commit \
         stream's share of the stored streams. Squash rate = squashes / (chunks + \
         squashes). Mean chunk = instructions / chunks. Device ends % and spin ends % are \
         the shares of chunks that ended at (or were) a device access, and at a pause hint \
         (a spin loop)."
            .to_string(),
        "geomean rows: geometric means over the workloads at that hart count for ratios, \
         rates and chunk length, arithmetic means for percentages."
            .to_string(),
        format!(
            "Each run with --mem 128M; dma_mix gets a fresh zeroed {} KiB scratch disk per \
             run. Busy elsewhere: the median share of the host's CPU time that other \
             processes took during the row's runs (from /proc/stat); anything well above 0 \
             skews that row.",
            DISK_BYTES >> 10
        ),
    ];

    let mut targets = Vec::new();
    let ratio_target = |h: u32, goal: f64, targets: &mut Vec<Target>| {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        if of_h.is_empty() {
            return;
        }
        let g = geomean(of_h.iter().map(|r| r.chunk_wall() / r.native));
        let over: Vec<String> = of_h
            .iter()
            .filter(|r| r.chunk_wall() / r.native > goal)
            .map(|r| {
                format!(
                    "{} {:.2}x",
                    workloads[r.workload].name(),
                    r.chunk_wall() / r.native
                )
            })
            .collect();
        targets.push(Target {
            what: format!("record vs native, {h} harts (geomean)"),
            goal: format!("≤ {goal:.0}x"),
            measured: format!("{g:.2}x{}", busy_note(busy_of(&of_h))),
            met: g <= goal,
        });
        targets.push(Target {
            what: format!("record vs native, {h} harts (every workload)"),
            goal: format!("≤ {goal:.0}x"),
            measured: if over.is_empty() {
                "all within".into()
            } else {
                format!("{} of {} over: {}", over.len(), of_h.len(), over.join(", "))
            },
            met: over.is_empty(),
        });
    };
    ratio_target(2, TARGET_RECORD_2_HARTS, &mut targets);
    ratio_target(4, TARGET_RECORD_4_HARTS, &mut targets);
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let g = geomean(of_h.iter().map(|r| r.replay_parallel / r.chunk_wall()));
        let slower: Vec<String> = of_h
            .iter()
            .filter(|r| r.replay_parallel > r.chunk_wall())
            .map(|r| {
                format!(
                    "{} {:.2}x",
                    workloads[r.workload].name(),
                    r.replay_parallel / r.chunk_wall()
                )
            })
            .collect();
        targets.push(Target {
            what: format!("parallel replay vs record, {h} {}", plural_harts(h)),
            goal: "≤ 1x (no slower)".into(),
            measured: format!(
                "{g:.2}x geomean; {}",
                if slower.is_empty() {
                    "none slower".to_string()
                } else {
                    format!("slower: {}", slower.join(", "))
                }
            ),
            met: slower.is_empty(),
        });
    }
    for w in workloads.iter().filter(|w| w.known.cpu_bound) {
        let per_h: Vec<(u32, f64)> = rows
            .iter()
            .filter(|r| workloads[r.workload].name() == w.name())
            .filter_map(|r| {
                r.rec(Strategy::Chunk)
                    .map(|x| (r.harts, x.bytes_per_minstr))
            })
            .collect();
        if per_h.is_empty() {
            continue;
        }
        let worst = per_h.iter().map(|p| p.1).fold(0.0, f64::max);
        targets.push(Target {
            what: format!("trace rate, {} (CPU-bound)", w.name()),
            goal: format!("≤ {TARGET_BYTES_PER_MINSTR:.0} B/Minstr"),
            measured: per_h
                .iter()
                .map(|(h, b)| format!("{b:.1} at {h}"))
                .collect::<Vec<_>>()
                .join(", "),
            met: worst <= TARGET_BYTES_PER_MINSTR,
        });
    }

    let mut report = Report {
        suite: "record",
        repeats: bench.repeats,
        setup: setup(
            bench,
            options,
            &workloads,
            estimate_total,
            started.elapsed(),
        ),
        tables: vec![table],
        notes,
        targets,
        failures: runner.failures.clone(),
    };
    report.setup.push((
        "runs".to_string(),
        format!(
            "{} per measurement, medians reported; per workload and hart count: samsara run, \
             samsara record (chunk) + inspect --json, replay, replay --serial",
            bench.repeats
        ),
    ));
    // A chart of the same figures: time relative to the native run.
    let chart = Chart {
        title: format!(
            "samsara record/replay: time relative to native run ({} size)",
            options.size.name()
        ),
        y_label: "time / native run time".into(),
        reference: Some(1.0),
        panels: options
            .harts
            .iter()
            .map(|&h| {
                let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
                let mut groups: Vec<String> = of_h
                    .iter()
                    .map(|r| workloads[r.workload].name().to_string())
                    .collect();
                groups.push("geomean".into());
                let series = |name: &str, f: &dyn Fn(&Row) -> f64| {
                    let mut values: Vec<Option<f64>> = of_h.iter().map(|r| finite(f(r))).collect();
                    values.push(finite(geomean(of_h.iter().map(|r| f(r)))));
                    Series {
                        name: name.into(),
                        values,
                    }
                };
                Panel {
                    title: format!("{h} {}", plural_harts(h)),
                    groups,
                    series: vec![
                        series("record", &|r| r.chunk_wall() / r.native),
                        series("replay", &|r| r.replay_parallel / r.native),
                        series("replay --serial", &|r| r.replay_serial / r.native),
                    ],
                }
            })
            .collect(),
    };
    finish(report_with_files(
        &mut report,
        options,
        &[("record-overhead", chart)],
    ));
    Ok(report)
}

/// `--dry-run`: the plan as a table, nothing run.
fn plan_report(
    suite: &'static str,
    bench: &Bench,
    workloads: &[Workload],
    steps: &[Step],
) -> Report {
    let mut table = Table::new(
        "Plan (nothing was run)",
        &[
            ("step", "step"),
            ("repeat", "repeat"),
            ("workload", "workload"),
            ("harts", "harts"),
            ("run", "run"),
            ("estimated_s", "estimated s"),
        ],
    );
    for (i, s) in steps.iter().enumerate() {
        table.push(vec![
            Cell::Int(i as u64 + 1),
            Cell::Int(s.rep.into()),
            Cell::Text(workloads[s.workload].name().into()),
            Cell::Int(s.harts.into()),
            Cell::Text(s.kind.describe()),
            Cell::num(s.estimate, 1),
        ]);
    }
    let total: f64 = steps.iter().map(|s| s.estimate).sum();
    Report {
        suite,
        repeats: bench.repeats,
        setup: vec![(
            "estimated total".to_string(),
            format!(
                "{} for {} runs on an idle {}-CPU host (from approximate instruction \
                 counts and speeds; a busy host takes longer)",
                fmt_duration(total),
                steps.len(),
                bench.host.cpus
            ),
        )],
        tables: vec![table],
        notes: Vec::new(),
        targets: Vec::new(),
        failures: Vec::new(),
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Rows in (workload, harts) order, hart counts as given.
fn ordered(mut rows: Vec<Row>, harts: &[u32]) -> Vec<Row> {
    let pos = |h: u32| harts.iter().position(|&x| x == h).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| (r.workload, pos(r.harts)));
    rows
}

/// Write charts and result files; failures to write become failures of
/// the report (the measurements are still printed).
fn report_with_files(
    report: &mut Report,
    options: &Options,
    charts: &[(&str, Chart)],
) -> Result<()> {
    let dir = &options.results;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, chart) in charts {
        let path = dir.join(format!("{name}.svg"));
        chart
            .draw(&path)
            .with_context(|| format!("cannot draw {}", path.display()))?;
        written.push(path);
    }
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.setup.push((
        "files".to_string(),
        format!(
            "{}{}{}.md, .csv, .json",
            list(&written),
            if written.is_empty() { "" } else { ", " },
            dir.join(report.suite).display()
        ),
    ));
    write_results(dir, report)?;
    Ok(())
}

fn finish(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("bench: warning: {e:#}");
    }
}

// ------------------------------------------------------------------ suite: parsec

/// Text for a strategy the binary does not offer.
const NOT_IMPLEMENTED: &str = "n/a (not implemented)";
/// Text for QEMU's record mode above one CPU.
const QEMU_ONE_CPU: &str = "n/a: QEMU cannot record >1 CPU";

/// `samsara bench --suite parsec`.
pub(super) fn parsec_suite(bench: &Bench, options: &Options) -> Result<Report> {
    let started = Instant::now();
    let workloads = workloads(bench, options, true)?;
    let implemented = implemented_strategies(&bench.samsara)?;
    let cores = bench.host.cpus;
    let qemu = bench.qemu.is_some();
    // Which runs: everything at 2 and more harts; at 1 hart the serial and
    // crew strategies and the serial replay are left out — one hart has
    // nothing to interleave or order, so they would repeat the chunk
    // recording and the (then sequential) parallel replay, and the full
    // bench size must fit in 30 minutes on a 2-core host.
    let steps = plan(bench, options, &workloads, |h| {
        let mut kinds = vec![Kind::Native];
        if qemu {
            kinds.push(Kind::Qemu);
        }
        for &s in &implemented {
            if h > 1 || s == Strategy::Chunk {
                kinds.push(Kind::Record(s));
            }
        }
        kinds.push(Kind::Replay { serial: false });
        if h > 1 {
            kinds.push(Kind::Replay { serial: true });
        }
        if qemu && h == 1 {
            kinds.push(Kind::QemuRecord);
        }
        kinds
    });
    let estimate_total: f64 = steps.iter().map(|s| s.estimate).sum();
    eprintln!(
        "bench: parsec suite ({} size): {} workloads x {} hart counts x {} repeat(s) = {} runs, \
         estimated {} on an idle {}-CPU host",
        options.size.name(),
        workloads.len(),
        options.harts.len(),
        bench.repeats,
        steps.len(),
        fmt_duration(estimate_total),
        cores
    );
    if options.dry_run {
        return Ok(plan_report("parsec", bench, &workloads, &steps));
    }
    let mut runner = Runner::new(bench)?;
    // QEMU's answer to recording more than one CPU, quoted in the table.
    let qemu_refusal = match (&bench.qemu, workloads.first()) {
        (Some(q), Some(w)) if options.harts.iter().any(|&h| h > 1) => {
            match runner.qemu_smp_record_refusal(q, w) {
                Ok(Some(msg)) => Some(msg),
                Ok(None) => Some("(QEMU accepted -smp 2 with rr=record this time)".into()),
                Err(e) => Some(format!("(could not ask QEMU: {e:#})")),
            }
        }
        _ => None,
    };
    let samples = runner.execute(&workloads, &steps);
    let rows = ordered(
        samples
            .iter()
            .map(|(&(w, h), s)| Row::of(w, h, s))
            .collect(),
        &options.harts,
    );
    let name = |r: &Row| workloads[r.workload].name().to_string();
    let qemu_one_hart = |r: &Row| -> f64 {
        rows.iter()
            .find(|x| x.workload == r.workload && x.harts == 1)
            .map_or(f64::NAN, |x| x.qemu)
    };

    // Table 1: recording overhead.
    let mut cols: Vec<(String, String)> = vec![
        ("workload".into(), "workload".into()),
        ("harts".into(), "harts".into()),
        ("instructions".into(), "instructions".into()),
        ("native_s".into(), "native s".into()),
        ("qemu_tcg_s".into(), "QEMU TCG s¹".into()),
    ];
    for s in Strategy::ALL {
        cols.push((
            format!("{}_record_s", s.name()),
            format!("{} record s", s.name()),
        ));
        cols.push((
            format!("{}_slowdown", s.name()),
            format!("{} slowdown", s.name()),
        ));
    }
    cols.push(("qemu_rr_record_s".into(), "QEMU rr record s²".into()));
    cols.push(("qemu_rr_slowdown".into(), "QEMU rr slowdown²".into()));
    cols.push(("others_busy_pct".into(), "busy elsewhere %".into()));
    let mut overhead = Table::with_columns(
        "PARSEC-like workloads: recording overhead (medians; slowdown = record s / native s)",
        cols,
    );
    let strategy_cells = |r: &Row, s: Strategy, cells: &mut Vec<Cell>| {
        if !implemented.contains(&s) {
            cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
            cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
        } else {
            let wall = r.rec(s).map_or(f64::NAN, |x| x.wall);
            cells.push(Cell::num(wall, 3));
            cells.push(Cell::num(wall / r.native, 2));
        }
    };
    let qemu_rr_cells = |r: &Row, cells: &mut Vec<Cell>| {
        if !qemu {
            cells.push(Cell::Missing);
            cells.push(Cell::Missing);
        } else if r.harts > 1 {
            cells.push(Cell::Text(QEMU_ONE_CPU.into()));
            cells.push(Cell::Text(QEMU_ONE_CPU.into()));
        } else {
            cells.push(Cell::num(r.qemu_record, 3));
            cells.push(Cell::num(r.qemu_record / r.qemu, 2));
        }
    };
    for r in &rows {
        let mut cells = vec![
            Cell::Text(name(r)),
            Cell::Int(r.harts.into()),
            if r.instructions.is_finite() {
                Cell::Int(r.instructions.round() as u64)
            } else {
                Cell::Missing
            },
            Cell::num(r.native, 3),
            Cell::num(r.qemu, 3),
        ];
        for s in Strategy::ALL {
            strategy_cells(r, s, &mut cells);
        }
        qemu_rr_cells(r, &mut cells);
        cells.push(busy_cell(r.busy));
        overhead.push(cells);
    }
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let mut cells = vec![
            Cell::Text("geomean".into()),
            Cell::Int(h.into()),
            Cell::Missing,
            Cell::Missing,
            Cell::Missing,
        ];
        for s in Strategy::ALL {
            if implemented.contains(&s) {
                cells.push(Cell::Missing);
                cells.push(Cell::num(geomean(of_h.iter().map(|r| r.slowdown(s))), 2));
            } else {
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
            }
        }
        if !qemu {
            cells.extend([Cell::Missing, Cell::Missing]);
        } else if h > 1 {
            cells.extend([
                Cell::Text(QEMU_ONE_CPU.into()),
                Cell::Text(QEMU_ONE_CPU.into()),
            ]);
        } else {
            cells.push(Cell::Missing);
            cells.push(Cell::num(
                geomean(of_h.iter().map(|r| r.qemu_record / r.qemu)),
                2,
            ));
        }
        cells.push(busy_cell(busy_of(&of_h)));
        overhead.push(cells);
    }

    // Table 2: the logs.
    let mut cols: Vec<(String, String)> = vec![
        ("workload".into(), "workload".into()),
        ("harts".into(), "harts".into()),
    ];
    for s in Strategy::ALL {
        cols.push((
            format!("{}_log_bytes_per_s", s.name()),
            format!("{} log B/s", s.name()),
        ));
        cols.push((
            format!("{}_log_bytes_per_minstr", s.name()),
            format!("{} B/Minstr", s.name()),
        ));
    }
    cols.extend(
        [
            ("qemu_rr_log_bytes_per_s", "QEMU rr log B/s²"),
            ("qemu_rr_log_bytes_per_minstr", "QEMU rr B/Minstr²"),
            ("chunk_commit_log_pct", "chunk commit log %"),
            ("chunk_squash_pct", "chunk squash rate %"),
            ("chunk_mean_chunk", "chunk mean chunk"),
            ("chunk_device_end_pct", "chunk device ends %"),
            ("chunk_spin_end_pct", "chunk spin ends %"),
            ("serial_mean_quantum", "serial mean quantum"),
        ]
        .map(|(k, h)| (k.to_string(), h.to_string())),
    );
    let mut logs = Table::with_columns(
        "PARSEC-like workloads: logs (medians; whole trace file per second of recording and per million instructions)",
        cols,
    );
    let log_cells = |recs: &[Option<RecordFigures>], cells: &mut Vec<Cell>| {
        for (s, rec) in Strategy::ALL.iter().zip(recs) {
            if !implemented.contains(s) {
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
            } else {
                cells.push(Cell::num(rec.map_or(f64::NAN, |x| x.bytes_per_second), 0));
                cells.push(Cell::num(rec.map_or(f64::NAN, |x| x.bytes_per_minstr), 1));
            }
        }
    };
    for r in &rows {
        let mut cells = vec![Cell::Text(name(r)), Cell::Int(r.harts.into())];
        let recs: Vec<Option<RecordFigures>> =
            Strategy::ALL.iter().map(|s| r.rec(*s).copied()).collect();
        log_cells(&recs, &mut cells);
        if !qemu {
            cells.extend([Cell::Missing, Cell::Missing]);
        } else if r.harts > 1 {
            cells.extend([
                Cell::Text(QEMU_ONE_CPU.into()),
                Cell::Text(QEMU_ONE_CPU.into()),
            ]);
        } else {
            cells.push(Cell::num(r.qemu_record_bytes / r.qemu_record, 0));
            cells.push(Cell::num(r.qemu_record_bytes * 1e6 / r.instructions, 1));
        }
        let chunk = r.rec(Strategy::Chunk);
        let f = |g: fn(&RecordFigures) -> f64| chunk.map_or(f64::NAN, g);
        cells.extend([
            Cell::num(f(|x| x.commit_pct), 1),
            Cell::num(f(|x| x.squash_pct), 2),
            Cell::num(f(|x| x.mean_chunk), 0),
            Cell::num(f(|x| x.device_end_pct), 1),
            Cell::num(f(|x| x.spin_end_pct), 1),
            Cell::num(
                r.rec(Strategy::Serial).map_or(f64::NAN, |x| x.mean_chunk),
                0,
            ),
        ]);
        logs.push(cells);
    }
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let mut cells = vec![Cell::Text("geomean".into()), Cell::Int(h.into())];
        for s in Strategy::ALL {
            if !implemented.contains(&s) {
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
            } else {
                let recs: Vec<&RecordFigures> = of_h.iter().filter_map(|r| r.rec(s)).collect();
                cells.push(Cell::num(
                    geomean(recs.iter().map(|x| x.bytes_per_second)),
                    0,
                ));
                cells.push(Cell::num(
                    geomean(recs.iter().map(|x| x.bytes_per_minstr)),
                    1,
                ));
            }
        }
        if !qemu {
            cells.extend([Cell::Missing, Cell::Missing]);
        } else if h > 1 {
            cells.extend([
                Cell::Text(QEMU_ONE_CPU.into()),
                Cell::Text(QEMU_ONE_CPU.into()),
            ]);
        } else {
            cells.push(Cell::num(
                geomean(of_h.iter().map(|r| r.qemu_record_bytes / r.qemu_record)),
                0,
            ));
            cells.push(Cell::num(
                geomean(
                    of_h.iter()
                        .map(|r| r.qemu_record_bytes * 1e6 / r.instructions),
                ),
                1,
            ));
        }
        let chunks: Vec<&RecordFigures> =
            of_h.iter().filter_map(|r| r.rec(Strategy::Chunk)).collect();
        cells.extend([
            Cell::num(mean(chunks.iter().map(|x| x.commit_pct)), 1),
            Cell::num(mean(chunks.iter().map(|x| x.squash_pct)), 2),
            Cell::num(geomean(chunks.iter().map(|x| x.mean_chunk)), 0),
            Cell::num(mean(chunks.iter().map(|x| x.device_end_pct)), 1),
            Cell::num(mean(chunks.iter().map(|x| x.spin_end_pct)), 1),
            Cell::num(
                geomean(
                    of_h.iter()
                        .filter_map(|r| r.rec(Strategy::Serial))
                        .map(|x| x.mean_chunk),
                ),
                0,
            ),
        ]);
        logs.push(cells);
    }

    // Table 3: replay.
    let mut replay = Table::new(
        "PARSEC-like workloads: replay of the chunk-strategy trace (medians)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("chunk_record_s", "chunk record s"),
            ("replay_s", "replay s"),
            ("replay_serial_s", "replay --serial s³"),
            ("replay_over_record", "replay/record"),
            ("replay_serial_over_record", "serial replay/record"),
            ("replay_over_native", "replay/native"),
            ("verified", "verified"),
            ("others_busy_pct", "busy elsewhere %"),
        ],
    );
    for r in &rows {
        let chunk = r.chunk_wall();
        replay.push(vec![
            Cell::Text(name(r)),
            Cell::Int(r.harts.into()),
            Cell::num(chunk, 3),
            Cell::num(r.replay_parallel, 3),
            Cell::num(r.replay_serial, 3),
            Cell::num(r.replay_parallel / chunk, 2),
            Cell::num(r.replay_serial / chunk, 2),
            Cell::num(r.replay_parallel / r.native, 2),
            r.verified_cell(),
            busy_cell(r.busy),
        ]);
    }
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let all_verified = of_h.iter().all(|r| r.replays_failed == 0 && !r.failed);
        replay.push(vec![
            Cell::Text("geomean".into()),
            Cell::Int(h.into()),
            Cell::Missing,
            Cell::Missing,
            Cell::Missing,
            Cell::num(
                geomean(of_h.iter().map(|r| r.replay_parallel / r.chunk_wall())),
                2,
            ),
            Cell::num(
                geomean(of_h.iter().map(|r| r.replay_serial / r.chunk_wall())),
                2,
            ),
            Cell::num(
                geomean(of_h.iter().map(|r| r.replay_parallel / r.native)),
                2,
            ),
            Cell::Text(if all_verified { "yes" } else { "NO" }.into()),
            busy_cell(busy_of(&of_h)),
        ]);
    }

    let mut notes = vec![
        "Times are each process's own wall time (`samsara run` and `replay`: their summary \
         line; `record`: the recorder's wall time in the trace footer), medians over the \
         repeats. slowdown = record s / native s of the same workload and hart count. \
         geomean rows: geometric means over the workloads (arithmetic for percentages). \
         Log figures count the whole trace file, its ~1 KB of header and footer included."
            .to_string(),
        "¹ QEMU TCG: `qemu-system-riscv64 -M virt -bios none -accel tcg,thread=multi -smp N`, \
         process wall time (start-up included), the native peer. QEMU is a JIT; samsara \
         interprets (see the machine suite)."
            .to_string(),
    ];
    let mut qemu_note = "² QEMU's own record mode: `-icount shift=auto,rr=record,rrfile=FILE` \
         (deterministic instruction counting, which cannot be combined with MTTCG, so one \
         host thread), process wall time; slowdown is against QEMU TCG at 1 hart; the log is \
         the rrfile. QEMU CANNOT RECORD WITH MORE THAN ONE CPU: rr needs icount, and QEMU \
         refuses record/replay with -smp > 1"
        .to_string();
    match &qemu_refusal {
        Some(msg) => {
            let _ = write!(qemu_note, " (QEMU {}: \"{msg}\").", qemu_version(bench));
        }
        None => qemu_note.push('.'),
    }
    if !qemu {
        qemu_note = format!(
            "¹ ² QEMU columns are empty: {}.",
            bench.host.why_no_qemu.as_deref().unwrap_or("QEMU not run")
        );
    }
    notes.push(qemu_note);
    notes.push(
        "³ At 1 hart the serial replay and the serial strategy are not run: with one hart \
         there is nothing to interleave, so they would repeat the parallel replay (which is \
         then sequential) and the chunk recording; leaving them out keeps the full bench size \
         within 30 minutes on a 2-core host."
            .to_string(),
    );
    let missing: Vec<&str> = Strategy::ALL
        .iter()
        .filter(|s| !implemented.contains(s))
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "Strategies this samsara does not offer (`samsara record --help`): {}; their \
             columns say {NOT_IMPLEMENTED} and the bench runs them as soon as `record \
             --strategy` accepts them.",
            missing.join(", ")
        ));
    }
    let differing: Vec<String> = rows
        .iter()
        .filter(|r| r.qemu_output_differs)
        .map(|r| format!("{} at {} harts", name(r), r.harts))
        .collect();
    if !differing.is_empty() {
        notes.push(format!(
            "WARNING: guest output differed between samsara and QEMU for {}.",
            differing.join(", ")
        ));
    }

    let mut targets = Vec::new();
    for (h, goal) in [(2, TARGET_RECORD_2_HARTS), (4, TARGET_RECORD_4_HARTS)] {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        if of_h.is_empty() {
            continue;
        }
        let g = geomean(of_h.iter().map(|r| r.slowdown(Strategy::Chunk)));
        let worst = of_h
            .iter()
            .map(|r| (r.slowdown(Strategy::Chunk), name(r)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        targets.push(Target {
            what: format!("chunk record vs native, {h} harts (geomean)"),
            goal: format!("≤ {goal:.0}x"),
            measured: format!(
                "{g:.2}x (worst {}){}",
                worst.map_or("—".into(), |(v, n)| format!("{n} {v:.2}x")),
                busy_note(busy_of(&of_h))
            ),
            met: g <= goal,
        });
    }
    targets.extend(strategy_targets(&rows, &options.harts, &name));
    for &h in &options.harts {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let g = geomean(of_h.iter().map(|r| r.replay_parallel / r.chunk_wall()));
        let slower = of_h
            .iter()
            .filter(|r| r.replay_parallel > r.chunk_wall())
            .count();
        targets.push(Target {
            what: format!("parallel replay vs record, {h} {}", plural_harts(h)),
            goal: "≤ 1x (no slower)".into(),
            measured: format!("{g:.2}x geomean, {slower} of {} slower", of_h.len()),
            met: slower == 0,
        });
    }

    let mut report = Report {
        suite: "parsec",
        repeats: bench.repeats,
        setup: setup(
            bench,
            options,
            &workloads,
            estimate_total,
            started.elapsed(),
        ),
        tables: vec![overhead, logs, replay],
        notes,
        targets,
        failures: runner.failures.clone(),
    };
    report.setup.push((
        "QEMU".to_string(),
        match &bench.qemu {
            Some(q) => format!("{} ({})", q.display(), qemu_version(bench)),
            None => bench
                .host
                .why_no_qemu
                .clone()
                .unwrap_or_else(|| "not run".into()),
        },
    ));
    report.setup.push((
        "strategies".to_string(),
        Strategy::ALL
            .iter()
            .map(|s| {
                if implemented.contains(s) {
                    s.name().to_string()
                } else {
                    format!("{} ({NOT_IMPLEMENTED})", s.name())
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    ));
    report.setup.push((
        "runs".to_string(),
        format!(
            "{} per measurement, medians reported{}; per workload and hart count: samsara \
             run, QEMU TCG, samsara record per strategy (+ inspect --json; serial not at 1 \
             hart), replay and replay --serial (not at 1 hart) of the chunk trace, QEMU \
             rr=record at 1 hart; --mem 128M",
            bench.repeats,
            if bench.repeats == 1 {
                " (1 is the default at bench size: 3 would take over an hour)"
            } else {
                ""
            }
        ),
    ));

    // Charts in the style of the paper's figures.
    let charted: Vec<Strategy> = Strategy::ALL
        .into_iter()
        .filter(|s| implemented.contains(s))
        .collect();
    let panel = |h: u32,
                 per_strategy: &dyn Fn(&Row, Strategy) -> f64,
                 geo: bool,
                 qemu_rr: Option<&dyn Fn(&Row) -> f64>| {
        let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
        let mut groups: Vec<String> = of_h.iter().map(|r| name(r)).collect();
        if geo {
            groups.push("geomean".into());
        }
        let mut series: Vec<Series> = charted
            .iter()
            .map(|&s| {
                let mut values: Vec<Option<f64>> =
                    of_h.iter().map(|r| finite(per_strategy(r, s))).collect();
                if geo {
                    values.push(finite(geomean(of_h.iter().map(|r| per_strategy(r, s)))));
                }
                Series {
                    name: s.name().to_string(),
                    values,
                }
            })
            .collect();
        if let Some(f) = qemu_rr.filter(|_| qemu) {
            let mut values: Vec<Option<f64>> = of_h
                .iter()
                .map(|r| if h == 1 { finite(f(r)) } else { None })
                .collect();
            if geo {
                values.push(if h == 1 {
                    finite(geomean(of_h.iter().map(|r| f(r))))
                } else {
                    None
                });
            }
            series.push(Series {
                name: "QEMU rr (1 CPU only)".into(),
                values,
            });
        }
        Panel {
            title: format!("{h} {}", plural_harts(h)),
            groups,
            series,
        }
    };
    let not_impl = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({}: not implemented)", missing.join(", "))
    };
    let overhead_chart = Chart {
        title: format!(
            "Recording overhead, PARSEC-like ({} size){not_impl}",
            options.size.name()
        ),
        y_label: "record time / native run time".into(),
        reference: Some(1.0),
        panels: options
            .harts
            .iter()
            .map(|&h| {
                panel(
                    h,
                    &|r, s| r.slowdown(s),
                    true,
                    Some(&|r: &Row| r.qemu_record / qemu_one_hart(r)),
                )
            })
            .collect(),
    };
    let rate_chart = Chart {
        title: format!(
            "Log rate, PARSEC-like ({} size){not_impl}",
            options.size.name()
        ),
        y_label: "log bytes per second of recording".into(),
        reference: None,
        panels: options
            .harts
            .iter()
            .map(|&h| {
                panel(
                    h,
                    &|r, s| r.rec(s).map_or(f64::NAN, |x| x.bytes_per_second),
                    true,
                    Some(&|r: &Row| r.qemu_record_bytes / r.qemu_record),
                )
            })
            .collect(),
    };
    let per_minstr_chart = Chart {
        title: format!(
            "Log size, PARSEC-like ({} size){not_impl}",
            options.size.name()
        ),
        y_label: "log bytes per million instructions".into(),
        reference: None,
        panels: options
            .harts
            .iter()
            .map(|&h| {
                panel(
                    h,
                    &|r, s| r.rec(s).map_or(f64::NAN, |x| x.bytes_per_minstr),
                    true,
                    Some(&|r: &Row| r.qemu_record_bytes * 1e6 / r.instructions),
                )
            })
            .collect(),
    };
    let replay_chart = Chart {
        title: format!(
            "Replay of chunk traces, PARSEC-like ({} size)",
            options.size.name()
        ),
        y_label: "replay time / record time".into(),
        reference: Some(1.0),
        panels: options
            .harts
            .iter()
            .map(|&h| {
                let of_h: Vec<&Row> = rows.iter().filter(|r| r.harts == h).collect();
                let mut groups: Vec<String> = of_h.iter().map(|r| name(r)).collect();
                groups.push("geomean".into());
                let series = |label: &str, f: &dyn Fn(&Row) -> f64| {
                    let mut values: Vec<Option<f64>> = of_h.iter().map(|r| finite(f(r))).collect();
                    values.push(finite(geomean(of_h.iter().map(|r| f(r)))));
                    Series {
                        name: label.into(),
                        values,
                    }
                };
                Panel {
                    title: format!("{h} {}", plural_harts(h)),
                    groups,
                    series: vec![
                        series("parallel replay", &|r| r.replay_parallel / r.chunk_wall()),
                        series("serial replay", &|r| r.replay_serial / r.chunk_wall()),
                    ],
                }
            })
            .collect(),
    };
    finish(report_with_files(
        &mut report,
        options,
        &[
            ("parsec-overhead", overhead_chart),
            ("parsec-log-rate", rate_chart),
            ("parsec-log-size", per_minstr_chart),
            ("parsec-replay", replay_chart),
        ],
    ));
    Ok(report)
}

/// "7.2.22 (Debian ...)" from QEMU's `--version` line.
fn qemu_version(bench: &Bench) -> String {
    bench.host.qemu_version.as_deref().map_or_else(
        || "version unknown".into(),
        |v| v.trim_start_matches("QEMU emulator version ").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_come_from_the_help_text() {
        let help = "      --check-every <N>\n          ... [default: 0]\n      --strategy \
                    <STRATEGY>\n          How ... [default: chunk] [possible values: chunk, \
                    serial]\n      --perturb <PERTURB>\n";
        assert_eq!(
            parse_strategies(help),
            vec![Strategy::Chunk, Strategy::Serial]
        );
        let help = help.replace("chunk, serial]", "chunk, serial, crew]");
        assert_eq!(parse_strategies(&help), Strategy::ALL.to_vec());
        assert_eq!(parse_strategies("nothing"), vec![Strategy::Chunk]);
    }

    #[test]
    fn replay_lines_parse() {
        let err = "samsara: replayed 1618 entries in parallel: 63927142 instructions in 0.678 s \
                   (94.3 MIPS)\nsamsara: VERIFIED: guest output identical\n";
        assert_eq!(parse_replay_wall(err), Some(0.678));
        assert_eq!(parse_replay_wall("samsara: VERIFIED"), None);
    }

    #[test]
    fn means() {
        assert!((geomean([1.0, 4.0]) - 2.0).abs() < 1e-12);
        assert!((geomean([2.0, f64::NAN]) - 2.0).abs() < 1e-12);
        assert!(geomean([]).is_nan());
        assert_eq!(mean([1.0, 2.0, f64::NAN]), 1.5);
    }

    #[test]
    fn strategy_targets_compare_logs_and_times() {
        let recorded = |bytes: u64, wall: f64| Recorded {
            stats: TraceStats::parse(&serde_json::json!({
                "instructions_per_hart": [100],
                "chunks_per_hart": [1],
                "squashes": 0,
                "file_bytes": bytes,
                "streams": {"commit": {"raw": 1, "stored": 1}},
                "record_wall_seconds": wall,
                "truncation_reasons": {}
            }))
            .unwrap(),
        };
        // Two workloads: one where CREW logs almost nothing (disjoint
        // data), one where its log explodes (sharing).
        let rows: Vec<Row> = [100, 400_000]
            .into_iter()
            .enumerate()
            .map(|(w, crew_bytes)| {
                let mut s = Samples::default();
                s.records.insert(Strategy::Chunk, vec![recorded(1000, 1.0)]);
                s.records.insert(Strategy::Serial, vec![recorded(800, 3.0)]);
                s.records
                    .insert(Strategy::Crew, vec![recorded(crew_bytes, 2.0)]);
                Row::of(w, 4, &s)
            })
            .collect();
        let targets = strategy_targets(&rows, &[1, 4], &|_| "w".into());
        let got: Vec<(&str, bool)> = targets
            .iter()
            .map(|t| (t.measured.split(' ').next().unwrap_or(""), t.met))
            .collect();
        // crew/chunk: geomean of 0.1x and 400x is 6.32x (missed), mean
        // rates 100 025 / 1 000 B/s = 100x (met); chunk/serial 1.25x (met),
        // serial/chunk time 3x (met); nothing at 1 hart.
        assert_eq!(
            got,
            vec![
                ("6.32x", false),
                ("100.03x", true),
                ("1.25x", true),
                ("3.00x", true)
            ]
        );
    }

    #[test]
    fn trace_stats_parse() {
        let json: serde_json::Value = serde_json::json!({
            "instructions_per_hart": [10, 20],
            "chunks_per_hart": [1, 2],
            "squashes": 1,
            "file_bytes": 1000,
            "streams": {"commit": {"raw": 9, "stored": 60}, "events": {"raw": 1, "stored": 40}},
            "record_wall_seconds": 0.5,
            "truncation_reasons": {"size-limit": 1, "device-access": 1, "spin": 1}
        });
        let s = TraceStats::parse(&json).unwrap();
        assert_eq!(s.instructions, 30);
        assert_eq!(s.chunks, 3);
        assert_eq!(s.stored, 100);
        assert_eq!(s.commit_stored, 60);
        assert_eq!((s.device_ends, s.spin_ends), (1, 1));
        let f = RecordFigures::of(&[Recorded { stats: s }]).unwrap();
        assert_eq!(f.squash_pct, 25.0);
        assert_eq!(f.commit_pct, 60.0);
        assert_eq!(f.mean_chunk, 10.0);
    }
}
