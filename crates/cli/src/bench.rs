//! `samsara bench`: measured figures from real process runs.
//!
//! Every figure comes from spawning a process: this very `samsara` binary
//! (`samsara run GUEST`, whose summary line on stderr gives the
//! instruction counts and the run's wall time) and, side by side, the
//! reference machine `qemu-system-riscv64`. Each measurement is repeated
//! (`--repeats`, default 3) and the tables report medians.
//!
//! A suite is a function from a [`Bench`] (the context: which binaries,
//! where the guests are, how many repeats) to a [`Report`] (tables, notes,
//! targets). The timing, process, median and table-printing code below is
//! shared, so a new suite is a new [`Suite`] value and one function. The
//! record/replay suites (`record`, `parsec`) live in `bench_rr.rs`, their
//! SVG charts in `bench_charts.rs`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

#[path = "bench_charts.rs"]
mod charts;
#[path = "bench_linux.rs"]
mod linux;
#[path = "bench_rr.rs"]
mod rr;

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
}

/// Which build of the PARSEC-like workloads (`guests/build/NAME-SIZE.elf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// Small inputs (~50-90 million instructions): seconds per run.
    Test,
    /// Full inputs (~2.2-2.5 billion instructions): 10-40 s per run.
    Bench,
}

impl Size {
    fn name(self) -> &'static str {
        match self {
            Size::Test => "test",
            Size::Bench => "bench",
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// Which suite to run.
    #[arg(long, value_enum, default_value_t = Suite::Machine)]
    suite: Suite,
    /// Runs per measurement; tables report the median [default: 3; 1 for
    /// `--suite parsec --size bench`, which keeps that run within 30 minutes
    /// on a 2-core host].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeats: Option<u32>,
    /// Input size of the PARSEC-like workloads (record and parsec suites)
    /// [default: test for record, bench for parsec].
    #[arg(long, value_enum)]
    size: Option<Size>,
    /// Only these workloads, comma-separated (record and parsec suites),
    /// e.g. `--workloads blackscholes,x264`.
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
    /// Print JSON instead of the table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one header line, one line per row) instead of the table.
    #[arg(long)]
    csv: bool,
}

/// `samsara bench`.
pub fn command(args: &BenchArgs) -> Result<ExitCode> {
    let size = args.size.unwrap_or(match args.suite {
        Suite::Parsec => Size::Bench,
        Suite::Machine | Suite::Record | Suite::Linux => Size::Test,
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
    let repeats = args.repeats.unwrap_or(match (args.suite, size) {
        (Suite::Parsec, Size::Bench) | (Suite::Linux, _) => 1,
        _ => 3,
    });
    let bench = Bench::new(args, repeats)?;
    let harts = if args.harts.is_empty() {
        vec![1, 2, 4]
    } else {
        args.harts.clone()
    };
    let options = rr::Options {
        size,
        workloads: args.workloads.clone(),
        harts,
        results: args.charts.clone(),
        dry_run: args.dry_run,
    };
    let report = match args.suite {
        Suite::Machine => machine_suite(&bench)?,
        Suite::Record => rr::record_suite(&bench, &options)?,
        Suite::Parsec => rr::parsec_suite(&bench, &options)?,
        Suite::Linux => linux::linux_suite(&bench, &options)?,
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

// ------------------------------------------------------------------ context

/// What every suite measures with.
pub struct Bench {
    samsara: PathBuf,
    guests: PathBuf,
    /// `None` when QEMU is left out or not installed.
    qemu: Option<PathBuf>,
    repeats: u32,
    timeout: Duration,
    host: Host,
}

/// The machine the figures were taken on.
struct Host {
    cpu: String,
    cpus: usize,
    load_before: String,
    qemu_version: Option<String>,
    why_no_qemu: Option<String>,
}

impl Bench {
    fn new(args: &BenchArgs, repeats: u32) -> Result<Self> {
        let samsara = std::env::current_exe().context("cannot find the samsara binary itself")?;
        let guests = find_guests(args.guests.as_deref(), &samsara)?;
        let (qemu, why_no_qemu) = if args.no_qemu {
            (None, Some("left out (--no-qemu)".to_string()))
        } else {
            match find_program(&args.qemu) {
                Some(path) => (Some(path), None),
                None => (
                    None,
                    Some(format!(
                        "{} not found, so QEMU columns are empty (install qemu-system-misc)",
                        args.qemu.display()
                    )),
                ),
            }
        };
        let qemu_version = qemu.as_ref().and_then(|q| {
            let out = Command::new(q).arg("--version").output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().next().map(|l| l.trim().to_string())
        });
        let host = Host {
            cpu: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before: load_average().unwrap_or_else(|| "unknown".into()),
            qemu_version,
            why_no_qemu,
        };
        Ok(Self {
            samsara,
            guests,
            qemu,
            repeats,
            timeout: Duration::from_secs(args.timeout),
            host,
        })
    }

    /// Path of guest `name`'s ELF, which must exist.
    fn guest(&self, name: &str) -> Result<PathBuf> {
        let path = self.guests.join(format!("{name}.elf"));
        if !path.is_file() {
            bail!(
                "guest {} not found; build the guests with ./scripts/build-guests.sh or pass --guests DIR",
                path.display()
            );
        }
        Ok(path)
    }

    /// One `samsara run` of `guest` with `harts` harts: it must pass.
    fn samsara_run(&self, guest: &Path, harts: u32) -> Result<SamsaraRun> {
        let mut cmd = Command::new(&self.samsara);
        cmd.arg("run")
            .arg(guest)
            .arg("--harts")
            .arg(harts.to_string())
            .args(["--mem", "128M"]);
        let run = run_process(cmd, self.timeout)?;
        if !run.status.success() {
            bail!(
                "{} failed ({}): {}",
                run.what,
                run.status,
                run.stderr.trim()
            );
        }
        let summary = run
            .stderr
            .lines()
            .rev()
            .find_map(Summary::parse)
            .with_context(|| format!("{}: no summary line in {:?}", run.what, run.stderr))?;
        Ok(SamsaraRun { run, summary })
    }

    /// One QEMU run of `guest` with `harts` harts (MTTCG): it must pass.
    fn qemu_run(&self, qemu: &Path, guest: &Path, harts: u32) -> Result<ProcessRun> {
        let mut cmd = Command::new(qemu);
        cmd.args(["-M", "virt", "-bios", "none", "-nographic", "-m", "128M"])
            .args(["-accel", "tcg,thread=multi"])
            .arg("-smp")
            .arg(harts.to_string())
            .arg("-kernel")
            .arg(guest);
        let run = run_process(cmd, self.timeout)?;
        if !run.status.success() {
            bail!(
                "{} failed ({}): {}",
                run.what,
                run.status,
                run.stderr.trim()
            );
        }
        Ok(run)
    }

    fn progress(&self, msg: &str) {
        eprintln!("bench: {msg}");
    }
}

/// The guest directory: `--guests`, else `guests/build` under the current
/// directory, else under the checkout holding this binary
/// (`target/<profile>/samsara`).
fn find_guests(given: Option<&Path>, exe: &Path) -> Result<PathBuf> {
    if let Some(dir) = given {
        if !dir.is_dir() {
            bail!("--guests {}: not a directory", dir.display());
        }
        return Ok(dir.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("guests/build")];
    if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
        candidates.push(root.join("guests/build"));
    }
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .with_context(|| {
            format!(
                "no guest directory (looked for {}); build the guests with ./scripts/build-guests.sh \
                 or pass --guests DIR",
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `program` as given if it has a directory part, else looked up on PATH.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The 1, 5 and 15 minute load averages: other work on the host skews
/// every figure, so the report says how busy the host was.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

// ------------------------------------------------------------------ processes

/// A finished process.
struct ProcessRun {
    what: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    /// Spawn to exit, as seen from here.
    wall: Duration,
    /// Share of the host's CPU time that went to other processes (not this
    /// one, not the child) while it ran: 0 on a quiet host. `None` where
    /// /proc is not available.
    others_busy: Option<f64>,
}

/// Run `cmd` (stdin closed, output captured), timing it from spawn to
/// exit; kill it and fail after `timeout`.
fn run_process(mut cmd: Command, timeout: Duration) -> Result<ProcessRun> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu_before = CpuSample::take();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().context("stdout pipe")?));
    let err = drain(Box::new(child.stderr.take().context("stderr pipe")?));
    // Poll rather than block so a hung run can be killed: every 200 µs at
    // first (well below the shortest run measured, QEMU's ~0.1 s), then
    // less often as the run goes on (at most every 2 ms, under 0.5% of the
    // run), so that the bench's own polling takes next to no CPU time
    // beside runs of tens of seconds.
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}; killed it");
        }
        let pause =
            (start.elapsed() / 200).clamp(Duration::from_micros(200), Duration::from_millis(2));
        std::thread::sleep(pause);
    };
    let wall = start.elapsed();
    let others_busy = cpu_before
        .zip(CpuSample::take())
        .map(|(before, after)| after.others_busy_since(&before));
    Ok(ProcessRun {
        what,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        wall,
        others_busy,
    })
}

/// CPU time counters from /proc, in clock ticks: what the whole host
/// spent busy and idle, and what this process and its reaped children
/// used. The difference between two samples tells how much of the host
/// other processes took while a measured run was going on.
#[derive(Clone, Copy, Debug)]
struct CpuSample {
    host_busy: u64,
    host_total: u64,
    ours: u64,
}

impl CpuSample {
    fn take() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice],
        // guest time being already counted in user and nice.
        let host_total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name: state is field 3, so utime,
        // stime, cutime and cstime (fields 14-17) are at 11..15.
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let ours = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        Some(Self {
            host_busy: host_total - idle,
            host_total,
            ours,
        })
    }

    /// Others' share of all CPU time between `before` and `self`.
    fn others_busy_since(&self, before: &Self) -> f64 {
        let total = self.host_total.saturating_sub(before.host_total);
        let busy = self.host_busy.saturating_sub(before.host_busy);
        let ours = self.ours.saturating_sub(before.ours);
        if total == 0 {
            return 0.0;
        }
        busy.saturating_sub(ours) as f64 / total as f64
    }
}

/// A `samsara run` and its parsed summary line.
struct SamsaraRun {
    run: ProcessRun,
    summary: Summary,
}

/// samsara's summary line:
/// `samsara: <ending>; instructions hart0=N .. (total T); wall S s; M MIPS`.
#[derive(Debug, PartialEq)]
struct Summary {
    per_hart: Vec<u64>,
    total: u64,
    /// First instruction to the end of the run (no process start-up).
    wall: Duration,
}

impl Summary {
    fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("samsara: ")?;
        let (_, rest) = rest.split_once("; instructions ")?;
        let (harts, rest) = rest.split_once(" (total ")?;
        let (total, rest) = rest.split_once(')')?;
        let wall = rest.strip_prefix("; wall ")?.split_once(" s")?.0;
        let per_hart = harts
            .split_whitespace()
            .map(|h| h.split_once('=').and_then(|(_, n)| n.parse().ok()))
            .collect::<Option<Vec<u64>>>()?;
        Some(Self {
            per_hart,
            total: total.parse().ok()?,
            wall: Duration::try_from_secs_f64(wall.parse().ok()?).ok()?,
        })
    }
}

// ------------------------------------------------------------------ statistics

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// `, host N% busy elsewhere` when other processes took a noticeable share.
fn busy_note(busy: Option<f64>) -> String {
    match busy {
        Some(b) if b >= 0.02 => format!(", host {:.0}% busy elsewhere", b * 100.0),
        _ => String::new(),
    }
}

fn mips(instructions: u64, wall: Duration) -> f64 {
    instructions as f64 / wall.as_secs_f64() / 1e6
}

// ------------------------------------------------------------------ reports

/// One table cell.
#[derive(Clone, Debug)]
enum Cell {
    Text(String),
    Int(u64),
    /// A value and the decimals to print it with.
    Num(f64, usize),
    /// Not measured (e.g. QEMU not installed).
    Missing,
}

impl Cell {
    fn num(value: f64, decimals: usize) -> Self {
        if value.is_finite() {
            Cell::Num(value, decimals)
        } else {
            Cell::Missing
        }
    }

    fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(v, d) => format!("{v:.*}", *d),
            Cell::Missing => "—".into(),
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) if s.contains([',', '"', '\n']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Missing => String::new(),
            other => other.display(),
        }
    }

    fn json(&self) -> String {
        match self {
            Cell::Text(s) => json_string(s),
            Cell::Missing => "null".into(),
            other => other.display(),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Cell::Text(_))
    }
}

/// A column: a machine-readable key (CSV header, JSON field) and a header.
struct Column {
    key: String,
    header: String,
}

/// A table with named columns.
struct Table {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(title: impl Into<String>, columns: &[(&str, &str)]) -> Self {
        Self::with_columns(
            title,
            columns
                .iter()
                .map(|&(k, h)| (k.to_string(), h.to_string()))
                .collect(),
        )
    }

    fn with_columns(title: impl Into<String>, columns: Vec<(String, String)>) -> Self {
        Self {
            title: title.into(),
            columns: columns
                .into_iter()
                .map(|(key, header)| Column { key, header })
                .collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<Cell>) {
        assert_eq!(row.len(), self.columns.len(), "row width");
        self.rows.push(row);
    }

    /// GitHub-flavoured Markdown, aligned in a terminal too: text left,
    /// numbers right.
    fn markdown(&self, out: &mut String) {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::display).collect())
            .collect();
        let width = |i: usize| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.columns[i].header.chars().count(), 3])
                .max()
                .unwrap_or(3)
        };
        let widths: Vec<usize> = (0..self.columns.len()).map(width).collect();
        let left = |i: usize| self.rows.first().is_none_or(|r| r[i].is_text());
        let pad = |s: &str, w: usize, left: bool| {
            let fill = " ".repeat(w.saturating_sub(s.chars().count()));
            if left {
                format!("{s}{fill}")
            } else {
                format!("{fill}{s}")
            }
        };
        let _ = writeln!(out, "### {}\n", self.title);
        let header: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| pad(&c.header, widths[i], left(i)))
            .collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if left(i) {
                    format!(":{}", "-".repeat(w - 1))
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for row in &cells {
            let padded: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, s)| pad(s, widths[i], left(i)))
                .collect();
            let _ = writeln!(out, "| {} |", padded.join(" | "));
        }
        out.push('\n');
    }
}

/// A stated target and whether the measurement meets it.
struct Target {
    what: String,
    goal: String,
    measured: String,
    met: bool,
}

/// What a suite produces.
pub struct Report {
    suite: &'static str,
    repeats: u32,
    setup: Vec<(String, String)>,
    tables: Vec<Table>,
    notes: Vec<String>,
    targets: Vec<Target>,
    /// Measurements that failed (a run that exited badly, a replay that
    /// did not verify): the report is still printed, `bench` exits 1.
    failures: Vec<String>,
}

impl Report {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## samsara bench --suite {}\n", self.suite);
        for (k, v) in &self.setup {
            let _ = writeln!(out, "- {k}: {v}");
        }
        out.push('\n');
        for table in &self.tables {
            table.markdown(&mut out);
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        if !self.targets.is_empty() {
            let mut t = Table::new(
                "Targets",
                &[
                    ("target", "target"),
                    ("goal", "goal"),
                    ("measured", "measured"),
                    ("met", "met"),
                ],
            );
            for target in &self.targets {
                t.push(vec![
                    Cell::Text(target.what.clone()),
                    Cell::Text(target.goal.clone()),
                    Cell::Text(target.measured.clone()),
                    Cell::Text(if target.met { "yes" } else { "NO" }.into()),
                ]);
            }
            t.markdown(&mut out);
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "### FAILURES\n");
            for f in &self.failures {
                let _ = writeln!(out, "- {f}");
            }
            out.push('\n');
        }
        out
    }

    /// One CSV block per table (a `# title` line, a header, the rows).
    fn csv(&self) -> String {
        let mut out = String::new();
        for table in &self.tables {
            if self.tables.len() > 1 {
                let _ = writeln!(out, "# {}", table.title);
            }
            let keys: Vec<&str> = table.columns.iter().map(|c| c.key.as_str()).collect();
            let _ = writeln!(out, "{}", keys.join(","));
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(Cell::csv).collect();
                let _ = writeln!(out, "{}", cells.join(","));
            }
        }
        out
    }

    fn json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"suite\":{},\"repeats\":{},\"setup\":{{",
            json_string(self.suite),
            self.repeats
        );
        let setup: Vec<String> = self
            .setup
            .iter()
            .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
            .collect();
        out += &setup.join(",");
        out += "},\"tables\":[";
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                let rows: Vec<String> = t
                    .rows
                    .iter()
                    .map(|r| {
                        let fields: Vec<String> = t
                            .columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| format!("{}:{}", json_string(&c.key), v.json()))
                            .collect();
                        format!("{{{}}}", fields.join(","))
                    })
                    .collect();
                format!(
                    "{{\"title\":{},\"rows\":[{}]}}",
                    json_string(&t.title),
                    rows.join(",")
                )
            })
            .collect();
        out += &tables.join(",");
        out += "],\"notes\":[";
        let notes: Vec<String> = self.notes.iter().map(|n| json_string(n)).collect();
        out += &notes.join(",");
        out += "],\"targets\":[";
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{{\"target\":{},\"goal\":{},\"measured\":{},\"met\":{}}}",
                    json_string(&t.what),
                    json_string(&t.goal),
                    json_string(&t.measured),
                    t.met
                )
            })
            .collect();
        out += &targets.join(",");
        out += "],\"failures\":[";
        let failures: Vec<String> = self.failures.iter().map(|f| json_string(f)).collect();
        out += &failures.join(",");
        out += "]}\n";
        out
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ------------------------------------------------------------------ suite: machine

/// One row of the machine suite.
struct Workload {
    guest: &'static str,
    harts: u32,
}

/// The medians of one workload's runs.
struct Measured {
    instructions: u64,
    run_wall: f64,
    run_mips: f64,
    process_wall: f64,
    qemu_wall: Option<f64>,
    qemu_output_differs: bool,
    /// Median share of the host other processes used during the runs.
    others_busy: Option<f64>,
}

const MACHINE_WORKLOADS: &[Workload] = &[
    // Next to nothing to run: the row shows each machine's start-up cost.
    Workload {
        guest: "hello",
        harts: 1,
    },
    Workload {
        guest: "intbench",
        harts: 1,
    },
    Workload {
        guest: "fpbench",
        harts: 1,
    },
    Workload {
        guest: "parsum",
        harts: 1,
    },
    Workload {
        guest: "parsum",
        harts: 2,
    },
    Workload {
        guest: "parsum",
        harts: 4,
    },
];

const TARGET_INTBENCH_MIPS: f64 = 250.0;
const TARGET_PARSUM_2_HART_SPEEDUP: f64 = 1.8;

fn machine_suite(bench: &Bench) -> Result<Report> {
    let images = MACHINE_WORKLOADS
        .iter()
        .map(|w| bench.guest(w.guest))
        .collect::<Result<Vec<_>>>()?;

    // Repeats outermost, so slow drift on the host (another job starting)
    // spreads over every workload instead of landing on one.
    let n = MACHINE_WORKLOADS.len();
    let mut ours: Vec<Vec<SamsaraRun>> = (0..n).map(|_| Vec::new()).collect();
    let mut theirs: Vec<Vec<ProcessRun>> = (0..n).map(|_| Vec::new()).collect();
    for rep in 1..=bench.repeats {
        for (i, (w, image)) in MACHINE_WORKLOADS.iter().zip(&images).enumerate() {
            let s = bench.samsara_run(image, w.harts)?;
            let mut line = format!(
                "{} at {} hart(s), run {rep}/{}: samsara {:.3} s ({:.1} MIPS{})",
                w.guest,
                w.harts,
                bench.repeats,
                s.summary.wall.as_secs_f64(),
                mips(s.summary.total, s.summary.wall),
                busy_note(s.run.others_busy)
            );
            if let Some(qemu) = &bench.qemu {
                let q = bench.qemu_run(qemu, image, w.harts)?;
                let _ = write!(
                    line,
                    ", qemu {:.3} s{}",
                    q.wall.as_secs_f64(),
                    busy_note(q.others_busy)
                );
                theirs[i].push(q);
            }
            bench.progress(&line);
            ours[i].push(s);
        }
    }

    let measured: Vec<Measured> = (0..n)
        .map(|i| {
            let runs = &ours[i];
            let instr: Vec<f64> = runs.iter().map(|r| r.summary.total as f64).collect();
            let walls: Vec<f64> = runs.iter().map(|r| r.summary.wall.as_secs_f64()).collect();
            let rates: Vec<f64> = runs
                .iter()
                .map(|r| mips(r.summary.total, r.summary.wall))
                .collect();
            let procs: Vec<f64> = runs.iter().map(|r| r.run.wall.as_secs_f64()).collect();
            let qemu: Vec<f64> = theirs[i].iter().map(|q| q.wall.as_secs_f64()).collect();
            let expected = &runs[0].run.stdout;
            let busy: Vec<f64> = runs
                .iter()
                .map(|r| &r.run)
                .chain(&theirs[i])
                .filter_map(|r| r.others_busy)
                .collect();
            Measured {
                instructions: median(&instr).round() as u64,
                run_wall: median(&walls),
                run_mips: median(&rates),
                process_wall: median(&procs),
                qemu_wall: (!qemu.is_empty()).then(|| median(&qemu)),
                qemu_output_differs: theirs[i].iter().any(|q| &q.stdout != expected),
                others_busy: (!busy.is_empty()).then(|| median(&busy)),
            }
        })
        .collect();

    let mut table = Table::new(
        "Run mode: samsara vs QEMU TCG (medians)",
        &[
            ("guest", "guest"),
            ("harts", "harts"),
            ("instructions", "instructions"),
            ("samsara_run_s", "samsara run s"),
            ("samsara_mips", "samsara MIPS"),
            ("samsara_mips_per_hart", "MIPS/hart"),
            ("speedup_vs_1_hart", "speedup vs 1 hart"),
            ("samsara_process_s", "samsara process s"),
            ("qemu_process_s", "QEMU process s"),
            ("qemu_implied_mips", "QEMU MIPS¹"),
            ("samsara_over_qemu", "samsara/QEMU²"),
            ("others_busy_pct", "busy elsewhere %³"),
        ],
    );
    let one_hart_wall = |guest: &str| {
        MACHINE_WORKLOADS
            .iter()
            .zip(&measured)
            .find(|(w, _)| w.guest == guest && w.harts == 1)
            .map(|(_, m)| m.run_wall)
    };
    for (w, m) in MACHINE_WORKLOADS.iter().zip(&measured) {
        let speedup = match one_hart_wall(w.guest) {
            Some(base) if w.guest == "parsum" => Cell::num(base / m.run_wall, 2),
            _ => Cell::Missing,
        };
        let qemu = m.qemu_wall;
        table.push(vec![
            Cell::Text(w.guest.into()),
            Cell::Int(w.harts.into()),
            Cell::Int(m.instructions),
            Cell::num(m.run_wall, 3),
            Cell::num(m.run_mips, 1),
            Cell::num(m.run_mips / f64::from(w.harts), 1),
            speedup,
            Cell::num(m.process_wall, 3),
            qemu.map_or(Cell::Missing, |q| Cell::num(q, 3)),
            qemu.map_or(Cell::Missing, |q| {
                Cell::num(m.instructions as f64 / q / 1e6, 0)
            }),
            qemu.map_or(Cell::Missing, |q| Cell::num(q / m.process_wall, 3)),
            m.others_busy
                .map_or(Cell::Missing, |b| Cell::num(b * 100.0, 0)),
        ]);
    }

    let mut notes = vec![
        "samsara figures come from its own summary line (`run s`: first instruction to \
         power-off) of real `samsara run` processes; `process s` is the same run timed from \
         spawn to exit. `speedup vs 1 hart` is parsum's 1-hart run time over its N-hart run \
         time. 4 harts on a 2-core host are oversubscribed."
            .to_string(),
        "¹ QEMU does not count instructions, so its MIPS are implied: samsara's instruction \
         count for the same deterministic guest divided by QEMU's process wall time \
         (`-accel tcg,thread=multi`), start-up included (see the hello row), so on runs \
         this short they understate QEMU's speed. For parsum at 2 and 4 harts the count \
         includes the harts' barrier spinning, which can differ on QEMU."
            .to_string(),
        "² samsara/QEMU is speed relative to QEMU: QEMU process s / samsara process s for \
         the same ELF (below 1: samsara is slower)."
            .to_string(),
        "³ The share of the host's CPU time that other processes used during these runs \
         (median over the samsara and QEMU runs, from /proc/stat less this process and its \
         children). Anything but ~0% means the figures on that row are skewed by other work \
         on the host."
            .to_string(),
    ];
    let differing: Vec<String> = MACHINE_WORKLOADS
        .iter()
        .zip(&measured)
        .filter(|(_, m)| m.qemu_output_differs)
        .map(|(w, _)| format!("{} at {} harts", w.guest, w.harts))
        .collect();
    if !differing.is_empty() {
        notes.push(format!(
            "WARNING: guest output differed between samsara and QEMU for {}.",
            differing.join(", ")
        ));
    }

    let mut targets = Vec::new();
    if let Some((_, m)) = MACHINE_WORKLOADS
        .iter()
        .zip(&measured)
        .find(|(w, _)| w.guest == "intbench")
    {
        targets.push(Target {
            what: "intbench, one hart".into(),
            goal: format!("≥ {TARGET_INTBENCH_MIPS:.0} MIPS"),
            measured: format!("{:.1} MIPS{}", m.run_mips, busy_note(m.others_busy)),
            met: m.run_mips >= TARGET_INTBENCH_MIPS,
        });
    }
    if let (Some(base), Some((_, m))) = (
        one_hart_wall("parsum"),
        MACHINE_WORKLOADS
            .iter()
            .zip(&measured)
            .find(|(w, _)| w.guest == "parsum" && w.harts == 2),
    ) {
        let speedup = base / m.run_wall;
        targets.push(Target {
            what: "parsum, 2 harts vs 1".into(),
            goal: format!("≥ {TARGET_PARSUM_2_HART_SPEEDUP:.1}x"),
            // Three decimals: a target missed by 0.002 must not print as met.
            measured: format!("{speedup:.3}x{}", busy_note(m.others_busy)),
            met: speedup >= TARGET_PARSUM_2_HART_SPEEDUP,
        });
    }

    let host = &bench.host;
    let mut setup = vec![
        (
            "host".to_string(),
            format!("{}, {} CPUs", host.cpu, host.cpus),
        ),
        ("load average before".to_string(), host.load_before.clone()),
        (
            "samsara".to_string(),
            format!("{} {}", bench.samsara.display(), env!("CARGO_PKG_VERSION")),
        ),
        ("guests".to_string(), bench.guests.display().to_string()),
        (
            "QEMU".to_string(),
            match (&bench.qemu, &host.qemu_version, &host.why_no_qemu) {
                (Some(q), Some(v), _) => format!("{} ({v}), -accel tcg,thread=multi", q.display()),
                (Some(q), None, _) => format!("{}, -accel tcg,thread=multi", q.display()),
                (None, _, Some(why)) => why.clone(),
                (None, _, None) => "not run".into(),
            },
        ),
    ];
    setup.push((
        "load average after".to_string(),
        load_average().unwrap_or_else(|| "unknown".into()),
    ));
    setup.push((
        "runs".to_string(),
        format!(
            "{} per measurement, medians reported; --mem 128M",
            bench.repeats
        ),
    ));
    Ok(Report {
        suite: "machine",
        repeats: bench.repeats,
        setup,
        tables: vec![table],
        notes,
        targets,
        failures: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_parse() {
        let s = Summary::parse(
            "samsara: guest powered off; instructions hart0=176180048 hart1=176170993 \
             (total 352351041); wall 1.170 s; 301.3 MIPS",
        )
        .unwrap();
        assert_eq!(s.per_hart, vec![176180048, 176170993]);
        assert_eq!(s.total, 352351041);
        assert_eq!(s.wall, Duration::from_millis(1170));
        assert!(
            Summary::parse(
                "samsara: stopped at the instruction limit (5 per hart); instructions hart0=5 \
                 (total 5); wall 0.001 s; 5.0 MIPS"
            )
            .is_some()
        );
        assert!(Summary::parse("samsara: error: guest image is empty").is_none());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn tables_render_in_every_format() {
        let mut t = Table::new("T", &[("name", "name"), ("n", "count"), ("x", "x")]);
        t.push(vec![
            Cell::Text("a,b".into()),
            Cell::Int(7),
            Cell::num(1.3, 1),
        ]);
        t.push(vec![Cell::Text("c".into()), Cell::Int(10), Cell::Missing]);
        let report = Report {
            suite: "test",
            repeats: 1,
            setup: vec![("k".into(), "v \"q\"".into())],
            tables: vec![t],
            notes: vec!["note".into()],
            targets: vec![],
            failures: vec![],
        };
        let md = report.markdown();
        assert!(md.contains("| name | count |   x |"), "{md}");
        assert!(md.contains("| a,b  |     7 | 1.3 |"), "{md}");
        assert!(md.contains("| c    |    10 |   — |"), "{md}");
        assert_eq!(report.csv(), "name,n,x\n\"a,b\",7,1.3\nc,10,\n");
        let json = report.json();
        assert!(json.contains("\"k\":\"v \\\"q\\\"\""), "{json}");
        assert!(
            json.contains("{\"name\":\"c\",\"n\":10,\"x\":null}"),
            "{json}"
        );
    }
}
