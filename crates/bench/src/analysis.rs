//! `samsara-bench --suite analysis`: what `samsara analyze` costs beside
//! plain replay. Each workload is recorded once at 4 harts — the Linux boot
//! that scripts/setup-linux.sh prepared (/init's default workload), the
//! PARSEC-like blackscholes, x264 and freqmine at `--size` (default test),
//! and racy_counter, watch's worst case — then, `--repeats` times and
//! interleaved (the order rotating each repeat, repeats outermost, so drift
//! on a noisy host spreads over every variant), replayed plainly
//! (`samsara replay -q --json`, which must verify) and analyzed
//! (`samsara analyze -q TRACE timeline --html F --perfetto F`, `watch X`,
//! `syscalls` on Linux, `races`), each analysis ending in `replay
//! VERIFIED` with status 0 or the suite fails with its stderr. The table
//! gives process wall times (medians) and each analysis' speed as a share
//! of plain replay's (plain s / analysis s), held to the targets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Options;
use crate::context::{Bench, run_verified_replay};
use crate::linux::LinuxFiles;
use crate::plan::fmt_duration;
use crate::process::{ProcessRun, last_lines, run_process};
use crate::report::{Cell, Report, Table, Target};
use crate::rows::busy_cell;
use crate::stats::{busy_note, median};
use crate::workloads::{Workload, workloads};

/// Harts of every recording.
const HARTS: u32 = 4;
/// The Linux boot's name in `--workloads` and the table.
const LINUX: &str = "linux";
/// The kernel variable watched through the Linux boot (System.map gives
/// its address): the timer tick's counter, written at every tick.
const KERNEL_WATCH: &str = "jiffies";
/// The bare-metal workloads and the global of each that `watch` follows
/// (a symbol of its image, which `samsara analyze` resolves).
const BARE_METAL: &[(&str, &str)] = &[
    // Each hart's error count, written once per hart, on the page of the
    // barrier every hart spins on.
    ("blackscholes", "check"),
    // The frame queue's counter, an AMO of every hart per frame.
    ("x264", "next_frame"),
    // The item queue's counter, an AMO of every hart per item.
    ("freqmine", "next_item"),
    // The unsynchronised counter, written every third instruction.
    ("racy_counter", "racy"),
];
/// watch's worst case: its speed is reported, not held to the target.
const WORST_CASE: &str = "racy_counter";

/// The targets: an analysis' speed as a share of plain replay's.
const TARGET_TIMELINE: f64 = 0.9;
const TARGET_WATCH: f64 = 0.5;
const TARGET_SYSCALLS: f64 = 0.5;

/// What is run on each recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Replay,
    Timeline,
    Watch,
    Syscalls,
    Races,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Replay => "replay",
            Variant::Timeline => "timeline",
            Variant::Watch => "watch",
            Variant::Syscalls => "syscalls",
            Variant::Races => "races",
        }
    }

    /// The speed the issue asks of it, if any.
    fn target(self) -> Option<f64> {
        match self {
            Variant::Timeline => Some(TARGET_TIMELINE),
            Variant::Watch => Some(TARGET_WATCH),
            Variant::Syscalls => Some(TARGET_SYSCALLS),
            Variant::Replay | Variant::Races => None,
        }
    }
}

/// The analyses, in table order.
const ANALYSES: [Variant; 4] = [
    Variant::Timeline,
    Variant::Watch,
    Variant::Syscalls,
    Variant::Races,
];

/// One run: the process's wall time (spawn to exit), samsara's own (the
/// replay's, from its summary or `analyzed N entries in X s`), how busy
/// the host was elsewhere.
struct Sample {
    process: f64,
    own: f64,
    busy: Option<f64>,
}

/// A recording and what was measured on it.
struct Subject {
    name: String,
    trace: PathBuf,
    /// `watch`'s argument, and how the table names it.
    watch: String,
    watched: String,
    linux: bool,
    entries: Option<u64>,
    instructions: Option<u64>,
    samples: BTreeMap<Variant, Vec<Sample>>,
}

impl Subject {
    fn variants(&self) -> Vec<Variant> {
        let mut v = vec![Variant::Replay];
        v.extend(
            ANALYSES
                .into_iter()
                .filter(|&a| a != Variant::Syscalls || self.linux),
        );
        v
    }

    /// Median of `pick` over `variant`'s runs (NaN if none).
    fn median(&self, variant: Variant, pick: fn(&Sample) -> f64) -> f64 {
        self.samples.get(&variant).map_or(f64::NAN, |s| {
            median(&s.iter().map(pick).collect::<Vec<_>>())
        })
    }

    fn busy(&self) -> Option<f64> {
        let all: Vec<f64> = self
            .samples
            .values()
            .flatten()
            .filter_map(|s| s.busy)
            .collect();
        (!all.is_empty()).then(|| median(&all))
    }

    /// The speed of `variant` as a share of plain replay's (NaN if either
    /// is missing).
    fn speed(&self, variant: Variant, pick: fn(&Sample) -> f64) -> f64 {
        self.median(Variant::Replay, pick) / self.median(variant, pick)
    }
}

/// The suite's scratch directory, removed when done.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The address of `symbol` in a System.map's text
/// (`ffffffff81c08980 D jiffies`).
fn kernel_symbol(map: &str, symbol: &str) -> Option<u64> {
    map.lines().find_map(
        |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [addr, _, name] if name == symbol => u64::from_str_radix(addr, 16).ok(),
            _ => None,
        },
    )
}

/// The address of [`KERNEL_WATCH`] in the System.map beside `kernel`.
fn kernel_watch(kernel: &Path) -> Result<u64> {
    let map = kernel.with_file_name("System.map");
    let text = std::fs::read_to_string(&map).with_context(|| {
        format!(
            "cannot read {} (scripts/setup-linux.sh writes it)",
            map.display()
        )
    })?;
    kernel_symbol(&text, KERNEL_WATCH)
        .with_context(|| format!("{KERNEL_WATCH} not found in {}", map.display()))
}

/// Records the Linux boot (its default workload) at [`HARTS`] harts.
fn record_linux(bench: &Bench, trace: &Path) -> Result<ProcessRun> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.env(
        "SAMSARA_LINUX_DIR",
        samsara_machine::guest::bundled_linux_dir(),
    )
    .args(["record", "-q", "--linux", "--append", crate::debug::CMDLINE])
    .args(["--harts", &HARTS.to_string(), "-o"])
    .arg(trace);
    run_process(cmd, bench.timeout)?.succeeded()
}

/// Records a bare-metal guest at [`HARTS`] harts.
fn record_guest(bench: &Bench, image: &Path, trace: &Path) -> Result<ProcessRun> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["record", "-q", "--mem", "128M"])
        .args(["--harts", &HARTS.to_string()])
        .arg(image)
        .arg("-o")
        .arg(trace);
    run_process(cmd, bench.timeout)?.succeeded()
}

/// One run of `variant` on `subject`'s trace: it must verify.
fn measure(
    bench: &Bench,
    subject: &mut Subject,
    variant: Variant,
    scratch: &Path,
) -> Result<Sample> {
    let mut cmd = Command::new(&bench.samsara);
    if variant == Variant::Replay {
        cmd.args(["replay", "-q", "--json"]).arg(&subject.trace);
        let (summary, run) = run_verified_replay(bench, cmd)?;
        subject.entries = Some(summary.entries);
        subject.instructions = Some(summary.instructions);
        return Ok(Sample {
            process: run.wall.as_secs_f64(),
            own: summary.wall_seconds,
            busy: run.others_busy,
        });
    }
    cmd.args(["analyze", "-q"])
        .arg(&subject.trace)
        .arg(variant.name());
    match variant {
        Variant::Timeline => {
            cmd.arg("--html")
                .arg(scratch.join("timeline.html"))
                .arg("--perfetto")
                .arg(scratch.join("timeline.json"));
        }
        Variant::Watch => {
            cmd.arg(&subject.watch);
        }
        _ => {}
    }
    let run = run_process(cmd, bench.timeout)?;
    let last = run
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    if !run.status.success() || !last.contains("replay VERIFIED") {
        bail!(
            "{} ({}) did not end in `replay VERIFIED`: {}",
            run.what,
            run.status,
            last_lines(&run.stderr, 10)
        );
    }
    // "samsara: analyzed N entries in X s; replay VERIFIED"
    let number_after = |key: &str| -> Option<f64> {
        last.split_once(key)?
            .1
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    if subject.entries.is_none() {
        subject.entries = number_after("analyzed ").map(|n| n as u64);
    }
    Ok(Sample {
        process: run.wall.as_secs_f64(),
        own: number_after(" in ").unwrap_or(f64::NAN),
        busy: run.others_busy,
    })
}

/// The workloads asked for (`--workloads`, default all).
struct Chosen {
    /// The Linux boot, and whether it was asked for by name.
    linux: bool,
    linux_by_name: bool,
    /// The bare-metal ones, and the options that name them.
    bare: Vec<Workload>,
    bare_options: Options,
}

fn chosen(bench: &Bench, options: &Options) -> Result<Chosen> {
    let known: Vec<&str> = std::iter::once(LINUX)
        .chain(BARE_METAL.iter().map(|(name, _)| *name))
        .collect();
    if let Some(unknown) = options
        .workloads
        .iter()
        .find(|w| !known.contains(&w.as_str()))
    {
        bail!(
            "unknown workload '{unknown}' for the analysis suite (choose from {})",
            known.join(", ")
        );
    }
    let by_name = |name: &str| options.workloads.iter().any(|w| w == name);
    let wanted = |name: &str| options.workloads.is_empty() || by_name(name);
    let bare_options = Options {
        size: options.size,
        workloads: BARE_METAL
            .iter()
            .map(|(name, _)| (*name).to_string())
            .filter(|name| wanted(name))
            .collect(),
        harts: vec![HARTS],
        results: options.results.clone(),
        dry_run: false,
    };
    Ok(Chosen {
        linux: wanted(LINUX),
        linux_by_name: by_name(LINUX),
        bare: if bare_options.workloads.is_empty() {
            Vec::new()
        } else {
            workloads(bench, &bare_options, false)?
        },
        bare_options,
    })
}

/// The recordings: the Linux boot (unless linux/build is missing, which
/// is a note, or a failure when it was asked for by name) and each
/// bare-metal workload. Also says which Linux was recorded.
fn record_all(
    bench: &Bench,
    chosen: &Chosen,
    scratch: &Path,
    notes: &mut Vec<String>,
    failures: &mut Vec<String>,
) -> (Vec<Subject>, String) {
    let mut subjects = Vec::new();
    let subject =
        |name: &str, trace: PathBuf, watch: String, watched: String, linux: bool| Subject {
            name: name.to_string(),
            trace,
            watch,
            watched,
            linux,
            entries: None,
            instructions: None,
            samples: BTreeMap::new(),
        };
    let mut linux_setup = "not measured".to_string();
    if chosen.linux {
        let found = LinuxFiles::find().and_then(|files| {
            let jiffies = kernel_watch(&files.kernel)?;
            Ok((files, jiffies))
        });
        match found {
            Err(e) => {
                let why = format!("Linux row skipped: {e:#}");
                bench.progress(&why);
                if chosen.linux_by_name {
                    failures.push(why);
                } else {
                    notes.push(why);
                }
            }
            Ok((files, jiffies)) => {
                linux_setup = format!(
                    "{} + {} + {}, --append \"{}\", --mem 512M (`samsara record --linux`)",
                    files.firmware.display(),
                    files.kernel.display(),
                    files.initrd.display(),
                    crate::debug::CMDLINE
                );
                let trace = scratch.join("linux.trace");
                bench.progress(&format!("recording the Linux boot at {HARTS} harts"));
                match record_linux(bench, &trace) {
                    Ok(run) => {
                        bench.progress(&format!(
                            "recorded in {:.1} s{}",
                            run.wall.as_secs_f64(),
                            busy_note(run.others_busy)
                        ));
                        subjects.push(subject(
                            LINUX,
                            trace,
                            format!("{jiffies:#x}"),
                            format!("{KERNEL_WATCH} ({jiffies:#x}, System.map)"),
                            true,
                        ));
                    }
                    Err(e) => failures.push(format!("recording the Linux boot: {e:#}")),
                }
            }
        }
    }
    for w in &chosen.bare {
        let Some((_, symbol)) = BARE_METAL.iter().find(|(name, _)| *name == w.name()) else {
            continue;
        };
        let trace = scratch.join(format!("{}.trace", w.name()));
        bench.progress(&format!("recording {} at {HARTS} harts", w.image.display()));
        match record_guest(bench, &w.image, &trace) {
            Ok(_) => subjects.push(subject(
                w.name(),
                trace,
                (*symbol).to_string(),
                (*symbol).to_string(),
                false,
            )),
            Err(e) => failures.push(format!("recording {}: {e:#}", w.name())),
        }
    }
    (subjects, linux_setup)
}

/// The table of medians of `pick`: plain replay, then each analysis and its speed.
fn table(title: &str, subjects: &[Subject], pick: fn(&Sample) -> f64) -> Table {
    let mut columns = vec![
        ("workload".to_string(), "workload".to_string()),
        ("watched".to_string(), "watched".to_string()),
        ("entries".to_string(), "entries".to_string()),
        ("instructions".to_string(), "instructions".to_string()),
        ("replay_s".to_string(), "replay s".to_string()),
    ];
    for a in ANALYSES {
        columns.push((format!("{}_s", a.name()), format!("{} s", a.name())));
        columns.push((format!("{}_speed", a.name()), format!("{} speed", a.name())));
    }
    columns.push(("busy_pct".into(), "host busy elsewhere %".into()));
    let mut table = Table::with_columns(title, columns);
    for s in subjects {
        let mut row = vec![
            Cell::Text(s.name.clone()),
            Cell::Text(s.watched.clone()),
            s.entries.map_or(Cell::Missing, Cell::Int),
            s.instructions.map_or(Cell::Missing, Cell::Int),
            Cell::num(s.median(Variant::Replay, pick), 3),
        ];
        for a in ANALYSES {
            row.push(Cell::num(s.median(a, pick), 3));
            row.push(Cell::num(s.speed(a, pick), 2));
        }
        row.push(busy_cell(s.busy()));
        table.push(row);
    }
    table
}

/// The date and time now, as `date -u` gives it.
fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}

/// `samsara-bench --suite analysis`.
pub fn analysis_suite(bench: &Bench, options: &Options) -> Result<Report> {
    let started = date();
    let clock = std::time::Instant::now();
    let chosen = chosen(bench, options)?;
    let dir = std::env::temp_dir().join(format!("samsara-bench-analysis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scratch = Scratch(dir);
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    let (mut subjects, linux_setup) =
        record_all(bench, &chosen, &scratch.0, &mut notes, &mut failures);
    // Repeats outermost; within one, each recording's variants back to
    // back, starting one further along each repeat.
    for rep in 0..bench.repeats {
        for subject in &mut subjects {
            let mut variants = subject.variants();
            let turn = rep as usize % variants.len();
            variants.rotate_left(turn);
            for variant in variants {
                let what = format!(
                    "{} {}/{}: {}",
                    subject.name,
                    rep + 1,
                    bench.repeats,
                    variant.name()
                );
                match measure(bench, subject, variant, &scratch.0) {
                    Ok(sample) => {
                        bench.progress(&format!(
                            "{what} {:.2} s (own {:.2} s){}",
                            sample.process,
                            sample.own,
                            busy_note(sample.busy)
                        ));
                        subject.samples.entry(variant).or_default().push(sample);
                    }
                    Err(e) => {
                        bench.progress(&format!("{what} FAILED"));
                        failures.push(format!("{what}: {e:#}"));
                    }
                }
            }
        }
    }

    let mut targets = Vec::new();
    for s in &subjects {
        for a in ANALYSES {
            let speed = s.speed(a, |x| x.process);
            let Some(goal) = a.target() else { continue };
            if !speed.is_finite() || (a == Variant::Watch && s.name == WORST_CASE) {
                continue;
            }
            targets.push(Target {
                what: format!("{} on {} / plain replay speed", a.name(), s.name),
                goal: format!("≥ {goal:.1}x"),
                measured: format!("{speed:.2}x"),
                met: speed >= goal,
            });
        }
    }
    let tables = vec![
        table(
            &format!(
                "samsara analyze beside plain replay at {HARTS} harts: process wall time (spawn to exit), medians; speed = replay s / analysis s"
            ),
            &subjects,
            |x| x.process,
        ),
        table(
            "The same runs by samsara's own replay time (its summary's wall_seconds; analyze's `analyzed N entries in X s`), which leaves out start-up and the analyses' final reports and files",
            &subjects,
            |x| x.own,
        ),
    ];
    notes.push(format!(
        "Each workload is recorded once (`samsara record --harts {HARTS}`), then per repeat: `samsara replay -q --json TRACE` (must verify), `samsara analyze -q TRACE timeline --html F --perfetto F`, `analyze -q TRACE watch X`, `analyze -q TRACE syscalls` (Linux only) and `analyze -q TRACE races`, each of which must exit 0 with `replay VERIFIED` on its last line. Back to back per workload, the order rotating by one each repeat, repeats outermost. speed: plain replay s / analysis s (0.93 = 93% of plain replay's speed). watched: the `watch` argument (a symbol of the bare-metal image; on Linux the kernel's {KERNEL_WATCH}, its address read from System.map). {WORST_CASE}'s counter is written every third instruction, watch's worst case: reported, not held to the target. races runs the interpreter with every data access on the slow path: reported with its cost, no target. At `--size test` the bare-metal replays take about 0.1 s, so their ratios are dominated by start-up and noise; `--size bench` gives them 2-2.5·10⁹ instructions. Peak memory is not measured."
    ));
    let command: Vec<String> = std::env::args().collect();
    let mut setup = vec![
        ("command".to_string(), command.join(" ")),
        ("date".to_string(), started),
    ];
    // The setup lines the record and parsec suites print, with this
    // suite's workloads and time.
    let elapsed = clock.elapsed();
    for (key, value) in crate::rows::setup(bench, &chosen.bare_options, &chosen.bare, 0.0, elapsed)
    {
        let value = match key.as_str() {
            "time" => format!("{} in all", fmt_duration(elapsed.as_secs_f64())),
            "workloads" if subjects.iter().any(|s| s.linux) => format!("{LINUX} (boot), {value}"),
            _ => value,
        };
        setup.push((key, value));
    }
    setup.push(("linux".to_string(), linux_setup));
    Ok(Report {
        suite: "analysis",
        repeats: bench.repeats,
        setup,
        tables,
        notes,
        targets,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_symbols_come_from_system_map() {
        let map = "ffffffff81c08900 D jiffies_64\nffffffff81c08980 D jiffies\nffffffff81c08988 d jiffies_lock\n";
        assert_eq!(kernel_symbol(map, "jiffies"), Some(0xffff_ffff_81c0_8980));
        assert_eq!(kernel_symbol(map, "nothing"), None);
    }
}
