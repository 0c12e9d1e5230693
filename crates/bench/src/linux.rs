//! `samsara-bench --suite linux` (issue 7): the Linux that
//! scripts/setup-linux.sh prepared, booted to power-off at each hart count
//! with each workload, three ways in one invocation: `samsara run`,
//! `samsara record` (then `samsara inspect --json` of its trace and a
//! `samsara replay` of it, which must verify), and
//! `qemu-system-riscv64 -M virt` on the very same firmware, kernel, initrd
//! and command line (MTTCG). Workloads: `boot` (/init's default: one
//! process per CPU hashing 1 MiB) or a PARSEC-like program's name, which
//! /init runs on every CPU (`samsara.run=NAME`, `samsara.size=SIZE`; bench
//! size comes from the virtio disk, so every machine then gets a fresh copy
//! of linux/build/disk.img).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use samsara_engine::summary::RunSummary;

use crate::context::{Bench, run_summary, verified_replay};
use crate::process::{ProcessRun, last_lines, run_process};
use crate::report::{Cell, Report, Table, Target};
use crate::stats::{busy_note, median};
use crate::{Options, Size};

/// The workloads when `--workloads` is not given.
const DEFAULT_WORKLOADS: &[&str] = &["boot", "x264"];
/// The targets at 4 harts.
const TARGET_RECORD_OVER_RUN: f64 = 2.0;
const TARGET_LOG_BYTES_PER_SECOND: f64 = 150_000.0;

/// The files of the Linux boot.
pub(crate) struct LinuxFiles {
    pub firmware: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk: PathBuf,
}

impl LinuxFiles {
    pub fn find() -> Result<Self> {
        let dir = samsara_machine::guest::bundled_linux_dir();
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if !path.is_file() {
                bail!(
                    "{} not found: run scripts/setup-linux.sh first",
                    path.display()
                );
            }
            Ok(path)
        };
        Ok(Self {
            firmware: file("fw_dynamic.bin")?,
            kernel: file("Image")?,
            initrd: file("initramfs.cpio.gz")?,
            disk: file("disk.img")?,
        })
    }
}

/// One workload's kernel command line and whether it needs the disk.
fn command_line(workload: &str, size: Size) -> (String, bool) {
    let base = "console=ttyS0 earlycon=sbi";
    match (workload, size) {
        ("boot", _) => (base.to_owned(), false),
        (name, Size::Test) => (format!("{base} samsara.run={name}"), false),
        (name, Size::Bench) => (
            format!("{base} samsara.run={name} samsara.size=bench"),
            true,
        ),
    }
}

/// What a recording's `inspect --json` says.
#[derive(Clone, Debug, Default)]
struct TraceFigures {
    wall: f64,
    instructions: u64,
    file_bytes: u64,
    entries: u64,
    /// Stored bytes of the commit, events and io streams.
    streams: [u64; 3],
    time_reads: u64,
    line_changes: u64,
    device_reads: u64,
    dma_bytes: u64,
    spin_ended: u64,
    /// CREW: ordering edges (page transfers that made a hart wait).
    edges: u64,
    /// Wall time of the verified parallel replay of the trace.
    replay_wall: f64,
}

impl TraceFigures {
    fn parse(json: &serde_json::Value) -> Result<Self> {
        let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let stream = |name: &str| num(&json["streams"][name]["stored"]);
        Ok(Self {
            wall: json["record_wall_seconds"]
                .as_f64()
                .context("inspect: no record_wall_seconds (an incomplete trace?)")?,
            instructions: json["instructions_per_hart"]
                .as_array()
                .context("inspect: no instructions_per_hart")?
                .iter()
                .map(num)
                .sum(),
            file_bytes: num(&json["file_bytes"]),
            entries: num(&json["entries"]),
            streams: [stream("commit"), stream("events"), stream("io")],
            time_reads: num(&json["events"]["time-read"]),
            line_changes: num(&json["events"]["interrupt-lines"]),
            device_reads: num(&json["events"]["device-read"]),
            dma_bytes: num(&json["dma"]["bytes"]),
            spin_ended: num(&json["truncation_reasons"]["spin"]),
            edges: num(&json["events"]["ordering-edge"]),
            replay_wall: f64::NAN,
        })
    }
}

/// The measurements of one workload at one hart count.
#[derive(Default)]
struct Row {
    runs: Vec<(RunSummary, ProcessRun)>,
    records: Vec<TraceFigures>,
    /// Recordings with `--strategy crew` (workloads without a disk).
    crew: Vec<TraceFigures>,
    qemu: Vec<ProcessRun>,
}

struct Suite<'a> {
    bench: &'a Bench,
    files: LinuxFiles,
    scratch: PathBuf,
}

impl Suite<'_> {
    fn samsara(&self, mode: &str, harts: u32, cmdline: &str, disk: bool) -> Result<Command> {
        let mut cmd = Command::new(&self.bench.samsara);
        cmd.arg(mode)
            .arg("--bios")
            .arg(&self.files.firmware)
            .arg("--kernel")
            .arg(&self.files.kernel)
            .arg("--initrd")
            .arg(&self.files.initrd)
            .arg("--append")
            .arg(cmdline)
            .args(["--mem", "512M", "--harts"])
            .arg(harts.to_string());
        if disk {
            cmd.arg("--disk").arg(self.fresh_disk()?);
        }
        Ok(cmd)
    }

    fn fresh_disk(&self) -> Result<PathBuf> {
        let copy = self.scratch.join("disk.img");
        std::fs::copy(&self.files.disk, &copy)
            .with_context(|| format!("cannot copy {}", self.files.disk.display()))?;
        Ok(copy)
    }

    /// A run must power off, after the workload said it passed.
    fn check(run: &ProcessRun, workload: &str) -> Result<()> {
        let out = String::from_utf8_lossy(&run.stdout);
        let passed = workload == "boot"
            || out.contains(&format!("samsara-init: {workload} exited with status 0"));
        if !run.status.success() || !out.contains("reboot: Power down") || !passed {
            bail!(
                "{} did not run {workload} and power off ({}): {}",
                run.what,
                run.status,
                last_lines(&format!("{out}\n{}", run.stderr), 6)
            );
        }
        Ok(())
    }

    fn run(
        &self,
        workload: &str,
        harts: u32,
        cmdline: &str,
        disk: bool,
    ) -> Result<(RunSummary, ProcessRun)> {
        let mut cmd = self.samsara("run", harts, cmdline, disk)?;
        cmd.arg("--json");
        let run = run_process(cmd, self.bench.timeout)?;
        Self::check(&run, workload)?;
        let summary = run_summary(&run)?;
        Ok((summary, run))
    }

    fn record(
        &self,
        workload: &str,
        harts: u32,
        cmdline: &str,
        disk: bool,
        strategy: &str,
    ) -> Result<TraceFigures> {
        let trace = self.scratch.join("linux.trace");
        let mut cmd = self.samsara("record", harts, cmdline, disk)?;
        cmd.arg("--strategy").arg(strategy).arg("-o").arg(&trace);
        let run = run_process(cmd, self.bench.timeout)?;
        Self::check(&run, workload)?;
        let mut cmd = Command::new(&self.bench.samsara);
        cmd.arg("inspect").arg("--json").arg(&trace);
        let inspected = run_process(cmd, self.bench.timeout)?;
        let json: serde_json::Value = serde_json::from_slice(&inspected.stdout)
            .with_context(|| format!("{}: output is not JSON", inspected.what))?;
        let mut figures = TraceFigures::parse(&json)?;
        // Replay reloads the firmware, kernel and initrd from the paths in
        // the trace, and needs no disk: its bytes are in the log.
        let replayed = verified_replay(self.bench, &trace, false);
        let _ = std::fs::remove_file(&trace);
        figures.replay_wall = replayed?.0;
        Ok(figures)
    }

    fn qemu(
        &self,
        qemu: &Path,
        workload: &str,
        harts: u32,
        cmdline: &str,
        disk: bool,
    ) -> Result<ProcessRun> {
        let mut cmd = Command::new(qemu);
        cmd.args(["-M", "virt", "-nographic", "-m", "512M"])
            .args(["-accel", "tcg,thread=multi", "-smp"])
            .arg(harts.to_string())
            .arg("-bios")
            .arg(&self.files.firmware)
            .arg("-kernel")
            .arg(&self.files.kernel)
            .arg("-initrd")
            .arg(&self.files.initrd)
            .arg("-append")
            .arg(cmdline);
        if disk {
            cmd.arg("-drive")
                .arg(format!(
                    "file={},if=none,format=raw,id=hd0",
                    self.fresh_disk()?.display()
                ))
                .args(["-device", "virtio-blk-device,drive=hd0"]);
        }
        let run = run_process(cmd, self.bench.timeout)?;
        Self::check(&run, workload)?;
        Ok(run)
    }
}

/// `samsara-bench --suite linux`.
pub fn linux_suite(bench: &Bench, options: &Options) -> Result<Report> {
    if options.dry_run {
        bail!("--dry-run is not available for the linux suite");
    }
    let workloads: Vec<String> = if options.workloads.is_empty() {
        DEFAULT_WORKLOADS.iter().map(|w| (*w).to_owned()).collect()
    } else {
        options.workloads.clone()
    };
    let scratch = std::env::temp_dir().join(format!("samsara-bench-linux-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let suite = Suite {
        bench,
        files: LinuxFiles::find()?,
        scratch,
    };
    let keys: Vec<(String, u32)> = workloads
        .iter()
        .flat_map(|w| options.harts.iter().map(move |&h| (w.clone(), h)))
        .collect();
    let mut rows: Vec<Row> = keys.iter().map(|_| Row::default()).collect();
    let mut failures = Vec::new();
    // Repeats outermost, so drift on the host spreads over every row.
    for rep in 1..=bench.repeats {
        for ((workload, harts), row) in keys.iter().zip(rows.iter_mut()) {
            let (cmdline, disk) = command_line(workload, options.size);
            let mut line = format!(
                "linux {workload} at {harts} hart(s), run {rep}/{}:",
                bench.repeats
            );
            match suite.run(workload, *harts, &cmdline, disk) {
                Ok((s, run)) => {
                    let _ = write!(
                        line,
                        " run {:.1} s{}",
                        s.wall_seconds,
                        busy_note(run.others_busy)
                    );
                    row.runs.push((s, run));
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
            match suite.record(workload, *harts, &cmdline, disk, "chunk") {
                Ok(t) => {
                    let _ = write!(
                        line,
                        ", record {:.1} s, {} trace bytes, replay {:.1} s VERIFIED",
                        t.wall, t.file_bytes, t.replay_wall
                    );
                    row.records.push(t);
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
            // The CREW baseline (SMP-ReVirt's scheme) on the same boot; it
            // does not record DMA, so not with a disk.
            if !disk && *harts > 1 {
                match suite.record(workload, *harts, &cmdline, disk, "crew") {
                    Ok(t) => {
                        let _ = write!(
                            line,
                            ", crew record {:.1} s, {} trace bytes, replay VERIFIED",
                            t.wall, t.file_bytes
                        );
                        row.crew.push(t);
                    }
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
            if let Some(qemu) = &bench.qemu {
                match suite.qemu(qemu, workload, *harts, &cmdline, disk) {
                    Ok(q) => {
                        let _ = write!(line, ", qemu {:.1} s", q.wall.as_secs_f64());
                        row.qemu.push(q);
                    }
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
            bench.progress(&line);
        }
    }
    let _ = std::fs::remove_dir_all(&suite.scratch);

    let mut times = Table::new(
        "Linux boot to power-off: run, record, replay, QEMU (medians)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("instructions", "instructions (run)"),
            ("record_instructions", "instructions (record)"),
            ("run_s", "run s"),
            ("record_s", "record s"),
            ("record_over_run", "record/run"),
            ("replay_s", "replay s"),
            ("replay_over_record", "replay/record"),
            ("run_process_s", "run process s"),
            ("qemu_process_s", "QEMU process s"),
            ("run_over_qemu", "run process/QEMU"),
            ("trace_bytes", "trace bytes"),
            ("log_bytes_per_s", "log bytes/s"),
            ("log_bytes_per_minstr", "log bytes/M instr"),
            ("others_busy_pct", "busy elsewhere %"),
        ],
    );
    let mut log = Table::new(
        "What the Linux log holds (medians of the recordings)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("entries", "entries"),
            ("spin_ended_pct", "spin-ended %"),
            ("commit_pct", "commit stream %"),
            ("events_pct", "events stream %"),
            ("io_pct", "io (DMA) stream %"),
            ("time_reads", "time reads"),
            ("line_changes", "interrupt-line changes"),
            ("device_reads", "device reads"),
            ("dma_bytes", "DMA bytes"),
        ],
    );
    let mut crew = Table::new(
        "Linux under the CREW baseline beside the chunk recording (medians)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("crew_record_s", "crew record s"),
            ("crew_over_run", "crew record/run"),
            ("crew_replay_s", "crew replay s"),
            ("crew_edges", "ordering edges"),
            ("crew_trace_bytes", "crew trace bytes"),
            ("crew_log_bytes_per_s", "crew log bytes/s"),
            ("crew_log_bytes_per_minstr", "crew log bytes/M instr"),
            ("chunk_log_bytes_per_s", "chunk log bytes/s"),
            ("crew_over_chunk_rate", "crew/chunk log rate"),
        ],
    );
    let mut targets = Vec::new();
    let med = |v: Vec<f64>| (!v.is_empty()).then(|| median(&v));
    let num = |v: Option<f64>, d: usize| v.map_or(Cell::Missing, |x| Cell::num(x, d));
    for ((workload, harts), row) in keys.iter().zip(&rows) {
        let run_s = med(row.runs.iter().map(|(s, _)| s.wall_seconds).collect());
        let run_proc = med(row.runs.iter().map(|(_, r)| r.wall.as_secs_f64()).collect());
        let instructions = med(row
            .runs
            .iter()
            .map(|(s, _)| s.instructions as f64)
            .collect());
        let rec_s = med(row.records.iter().map(|t| t.wall).collect());
        let replay_s = med(row.records.iter().map(|t| t.replay_wall).collect());
        let rec_instructions = med(row.records.iter().map(|t| t.instructions as f64).collect());
        let qemu_s = med(row.qemu.iter().map(|q| q.wall.as_secs_f64()).collect());
        let bytes = med(row.records.iter().map(|t| t.file_bytes as f64).collect());
        let rate = med(row
            .records
            .iter()
            .map(|t| t.file_bytes as f64 / t.wall.max(1e-9))
            .collect());
        let per_m = med(row
            .records
            .iter()
            .map(|t| t.file_bytes as f64 * 1e6 / t.instructions.max(1) as f64)
            .collect());
        let ratio = rec_s.zip(run_s).map(|(r, n)| r / n);
        let busy = med(row
            .runs
            .iter()
            .map(|(_, r)| r)
            .chain(&row.qemu)
            .filter_map(|r| r.others_busy)
            .collect());
        times.push(vec![
            Cell::Text(workload.clone()),
            Cell::Int(u64::from(*harts)),
            instructions.map_or(Cell::Missing, |i| Cell::Int(i.round() as u64)),
            rec_instructions.map_or(Cell::Missing, |i| Cell::Int(i.round() as u64)),
            num(run_s, 2),
            num(rec_s, 2),
            num(ratio, 2),
            num(replay_s, 2),
            num(replay_s.zip(rec_s).map(|(p, r)| p / r), 2),
            num(run_proc, 2),
            num(qemu_s, 2),
            num(run_proc.zip(qemu_s).map(|(a, b)| a / b), 2),
            num(bytes, 0),
            num(rate, 0),
            num(per_m, 1),
            num(busy.map(|b| b * 100.0), 0),
        ]);
        if !row.crew.is_empty() {
            let c = |f: &dyn Fn(&TraceFigures) -> f64| med(row.crew.iter().map(f).collect());
            let crew_s = c(&|t| t.wall);
            let crew_rate = c(&|t| t.file_bytes as f64 / t.wall.max(1e-9));
            crew.push(vec![
                Cell::Text(workload.clone()),
                Cell::Int(u64::from(*harts)),
                num(crew_s, 2),
                num(crew_s.zip(run_s).map(|(c, r)| c / r), 2),
                num(c(&|t| t.replay_wall), 2),
                num(c(&|t| t.edges as f64), 0),
                num(c(&|t| t.file_bytes as f64), 0),
                num(crew_rate, 0),
                num(
                    c(&|t| t.file_bytes as f64 * 1e6 / t.instructions.max(1) as f64),
                    1,
                ),
                num(rate, 0),
                num(crew_rate.zip(rate).map(|(c, r)| c / r), 2),
            ]);
        }
        let m = |f: &dyn Fn(&TraceFigures) -> f64| med(row.records.iter().map(f).collect());
        let share = |i: usize| {
            m(&|t: &TraceFigures| {
                100.0 * t.streams[i] as f64 / t.streams.iter().sum::<u64>().max(1) as f64
            })
        };
        log.push(vec![
            Cell::Text(workload.clone()),
            Cell::Int(u64::from(*harts)),
            num(m(&|t| t.entries as f64), 0),
            num(
                m(&|t| 100.0 * t.spin_ended as f64 / t.entries.max(1) as f64),
                1,
            ),
            num(share(0), 1),
            num(share(1), 1),
            num(share(2), 1),
            num(m(&|t| t.time_reads as f64), 0),
            num(m(&|t| t.line_changes as f64), 0),
            num(m(&|t| t.device_reads as f64), 0),
            num(m(&|t| t.dma_bytes as f64), 0),
        ]);
        if *harts == 4 {
            if let Some(ratio) = ratio {
                targets.push(Target {
                    what: format!("record/run, {workload} at 4 harts"),
                    goal: format!("≤ {TARGET_RECORD_OVER_RUN:.1}x"),
                    measured: format!("{ratio:.2}x"),
                    met: ratio <= TARGET_RECORD_OVER_RUN,
                });
            }
            if let Some(rate) = rate {
                targets.push(Target {
                    what: format!("log rate, {workload} at 4 harts"),
                    goal: format!("≤ {:.2} MB/s", TARGET_LOG_BYTES_PER_SECOND / 1e6),
                    measured: format!("{:.3} MB/s", rate / 1e6),
                    met: rate <= TARGET_LOG_BYTES_PER_SECOND,
                });
            }
        }
    }
    let host = &bench.host;
    let mut setup = vec![
        (
            "host".to_string(),
            format!(
                "{} ({} CPUs), load before: {}",
                host.cpu, host.cpus, host.load_before
            ),
        ),
        (
            "samsara".to_string(),
            format!("{}", bench.samsara.display()),
        ),
        (
            "linux".to_string(),
            format!(
                "{} + {} + {} (kernel command line per workload: console=ttyS0 earlycon=sbi [samsara.run=NAME])",
                suite.files.firmware.display(),
                suite.files.kernel.display(),
                suite.files.initrd.display()
            ),
        ),
        ("size".to_string(), options.size.name().to_string()),
    ];
    match (&host.qemu_version, &host.why_no_qemu) {
        (Some(v), _) => setup.push((
            "qemu".into(),
            format!("{v}, -M virt -accel tcg,thread=multi, same files"),
        )),
        (None, Some(why)) => setup.push(("qemu".into(), why.clone())),
        (None, None) => {}
    }
    Ok(Report {
        suite: "linux",
        repeats: bench.repeats,
        setup,
        tables: if crew.rows.is_empty() {
            vec![times, log]
        } else {
            vec![times, log, crew]
        },
        notes: vec![
            "run s and record s: samsara's own wall time from the first instruction to power-off (its summary line; for record, the trace footer). The guest's clock is the host's and Linux waits by it (timer sleeps, udelay loops that read time), so how many instructions a boot takes depends on the machine's speed: compare the two instruction columns. Process columns: spawn to exit, as QEMU has no inner timer (it includes loading the 31 MB kernel and, for samsara, the device tree and file digests). log bytes: the whole trace file (header, blocks, footer). replay s: the parallel replay of that recording (its summary line), which must print VERIFIED or the run counts as failed; a replay does not wait on the guest's clock (time reads come from the log), so it can beat the recording.".into(),
            "The log table comes from `samsara inspect --json` of each recording: stored (compressed) bytes per stream, event counts, and the share of entries that ended at a `pause` spin hint.".into(),
            "CREW table: `samsara record --strategy crew` of the same boot at 2 harts and more (SMP-ReVirt's page ownership, issue 5's baseline; not with a disk, whose DMA it does not record), each recording replayed and verified. ordering edges: page transfers that made a hart wait (`inspect`). crew/chunk log rate: its log bytes per second over the chunk recording's.".into(),
        ],
        targets,
        failures,
    })
}
