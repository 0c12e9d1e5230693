//! A suite's plan: every process run, with an estimate of its time, so
//! that a long suite says up front how long it will take (`--dry-run`
//! prints only that), and its progress while it runs.

use std::time::Instant;

use crate::Options;
use crate::Size;
use crate::context::Bench;
use crate::report::{Cell, Report, Table};
use crate::strategy::Strategy;
use crate::workloads::Workload;

/// What one step of a suite runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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
    pub fn describe(self) -> String {
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
pub struct Step {
    pub rep: u32,
    pub workload: usize,
    pub harts: u32,
    pub kind: Kind,
    /// Expected seconds on an idle host (for the estimate and progress).
    pub estimate: f64,
}

/// Expected seconds for a step, from the catalog's rough instruction
/// counts and speeds: enough to say "about 25 minutes" up front.
pub fn estimate(w: &Workload, size: Size, harts: u32, kind: Kind, cores: usize) -> f64 {
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

pub fn fmt_duration(secs: f64) -> String {
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
pub struct Progress {
    total: usize,
    done: usize,
    pub estimate_total: f64,
    estimate_done: f64,
    pub start: Instant,
}

impl Progress {
    pub fn new(steps: &[Step]) -> Self {
        Self {
            total: steps.len(),
            done: 0,
            estimate_total: steps.iter().map(|s| s.estimate).sum(),
            estimate_done: 0.0,
            start: Instant::now(),
        }
    }

    pub fn left(&self) -> f64 {
        let elapsed = self.start.elapsed().as_secs_f64();
        let scale = if self.estimate_done > 1.0 {
            elapsed / self.estimate_done
        } else {
            1.0
        };
        (self.estimate_total - self.estimate_done) * scale
    }

    pub fn begin(&self, what: &str) {
        eprint!(
            "bench: [{:>3}/{} {} elapsed, ~{} left] {what}: ",
            self.done + 1,
            self.total,
            fmt_duration(self.start.elapsed().as_secs_f64()),
            fmt_duration(self.left())
        );
    }

    pub fn end(&mut self, estimate: f64, result: &str) {
        eprintln!("{result}");
        self.done += 1;
        self.estimate_done += estimate;
    }
}

/// A suite's plan: for every repeat, workload and hart count, the runs
/// `kinds(harts)` names, each with its estimate.
pub fn plan(
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

/// `--dry-run`: the plan as a table, nothing run.
pub fn plan_report(
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
