//! The paper's evaluation (issue 5): the six PARSEC-like workloads,
//! recorded with every strategy the samsara binary offers, beside QEMU TCG
//! (MTTCG) as the native peer and QEMU's own record mode (one CPU only),
//! with SVG charts. In steps: [`plan_steps`] (which runs), [`run`] (run
//! them, medians per workload and hart count), then from the rows the
//! three tables ([`Parsec::overhead_table`], [`Parsec::logs_table`],
//! [`Parsec::replay_table`]), notes, targets, setup lines and charts.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;

use crate::Options;
use crate::charts::{Chart, Panel, Series};
use crate::context::Bench;
use crate::plan::{Kind, Step, fmt_duration, plan, plan_report};
use crate::report::{Cell, Report, Table, Target, finish, report_with_files};
use crate::rows::{
    RecordFigures, Row, TARGET_RECORD_2_HARTS, TARGET_RECORD_4_HARTS, busy_cell, busy_of, ordered,
    plural_harts, setup,
};
use crate::runner::Runner;
use crate::stats::{busy_note, finite, geomean, mean};
use crate::strategy::{Strategy, implemented_strategies};
use crate::workloads::{Workload, workloads};

/// Text for a strategy the binary does not offer.
const NOT_IMPLEMENTED: &str = "n/a (not implemented)";
/// Text for QEMU's record mode above one CPU.
const QEMU_ONE_CPU: &str = "n/a: QEMU cannot record >1 CPU";

/// `samsara-bench --suite parsec`.
pub fn parsec_suite(bench: &Bench, options: &Options) -> Result<Report> {
    let started = Instant::now();
    let workloads = workloads(bench, options, true)?;
    let implemented = implemented_strategies(&bench.samsara)?;
    let steps = plan_steps(bench, options, &workloads, &implemented);
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
        bench.host.cpus
    );
    if options.dry_run {
        return Ok(plan_report("parsec", bench, &workloads, &steps));
    }
    let measured = run(bench, options, &workloads, &steps)?;
    let p = Parsec {
        bench,
        options,
        workloads: &workloads,
        implemented: &implemented,
        qemu: bench.qemu.is_some(),
        rows: &measured.rows,
    };
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
        tables: vec![p.overhead_table(), p.logs_table(), p.replay_table()],
        notes: p.notes(measured.qemu_refusal.as_deref()),
        targets: p.targets(),
        failures: measured.failures,
    };
    report.setup.extend(p.setup_lines());
    finish(report_with_files(&mut report, options, &p.charts()));
    Ok(report)
}

/// Which runs: everything at 2 and more harts; at 1 hart the serial and
/// crew strategies and the serial replay are left out — one hart has
/// nothing to interleave or order, so they would repeat the chunk
/// recording and the (then sequential) parallel replay, and the full
/// bench size must fit in 30 minutes on a 2-core host.
fn plan_steps(
    bench: &Bench,
    options: &Options,
    workloads: &[Workload],
    implemented: &[Strategy],
) -> Vec<Step> {
    let qemu = bench.qemu.is_some();
    plan(bench, options, workloads, |h| {
        let mut kinds = vec![Kind::Native];
        if qemu {
            kinds.push(Kind::Qemu);
        }
        for &s in implemented {
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
    })
}

/// What running the plan gave.
struct Measured {
    /// Medians per workload and hart count, in table order.
    rows: Vec<Row>,
    /// QEMU's answer to recording more than one CPU, quoted in a note.
    qemu_refusal: Option<String>,
    failures: Vec<String>,
}

/// Run the plan's steps (and ask QEMU whether it records SMP guests).
fn run(
    bench: &Bench,
    options: &Options,
    workloads: &[Workload],
    steps: &[Step],
) -> Result<Measured> {
    let mut runner = Runner::new(bench)?;
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
    let samples = runner.execute(workloads, steps);
    let rows = ordered(
        samples
            .iter()
            .map(|(&(w, h), s)| Row::of(w, h, s))
            .collect(),
        &options.harts,
    );
    Ok(Measured {
        rows,
        qemu_refusal,
        failures: runner.failures.clone(),
    })
}

/// The measured rows and what the report of them needs.
struct Parsec<'a> {
    bench: &'a Bench,
    options: &'a Options,
    workloads: &'a [Workload],
    /// The strategies this samsara offers.
    implemented: &'a [Strategy],
    /// QEMU was run.
    qemu: bool,
    rows: &'a [Row],
}

impl Parsec<'_> {
    fn name(&self, r: &Row) -> String {
        self.workloads[r.workload].name().to_string()
    }

    /// QEMU TCG's time for `r`'s workload at one hart.
    fn qemu_one_hart(&self, r: &Row) -> f64 {
        self.rows
            .iter()
            .find(|x| x.workload == r.workload && x.harts == 1)
            .map_or(f64::NAN, |x| x.qemu)
    }

    /// Strategies this samsara does not offer.
    fn missing(&self) -> Vec<&'static str> {
        Strategy::ALL
            .iter()
            .filter(|s| !self.implemented.contains(s))
            .map(|s| s.name())
            .collect()
    }

    /// Table 1: recording overhead.
    fn overhead_table(&self) -> Table {
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
            if !self.implemented.contains(&s) {
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
            } else {
                let wall = r.rec(s).map_or(f64::NAN, |x| x.wall);
                cells.push(Cell::num(wall, 3));
                cells.push(Cell::num(wall / r.native, 2));
            }
        };
        let qemu_rr_cells = |r: &Row, cells: &mut Vec<Cell>| {
            if !self.qemu {
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
        for r in self.rows {
            let mut cells = vec![
                Cell::Text(self.name(r)),
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
        for &h in &self.options.harts {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
            let mut cells = vec![
                Cell::Text("geomean".into()),
                Cell::Int(h.into()),
                Cell::Missing,
                Cell::Missing,
                Cell::Missing,
            ];
            for s in Strategy::ALL {
                if self.implemented.contains(&s) {
                    cells.push(Cell::Missing);
                    cells.push(Cell::num(geomean(of_h.iter().map(|r| r.slowdown(s))), 2));
                } else {
                    cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                    cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                }
            }
            if !self.qemu {
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
        overhead
    }

    /// Table 2: the logs.
    fn logs_table(&self) -> Table {
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
                if !self.implemented.contains(s) {
                    cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                    cells.push(Cell::Text(NOT_IMPLEMENTED.into()));
                } else {
                    cells.push(Cell::num(rec.map_or(f64::NAN, |x| x.bytes_per_second), 0));
                    cells.push(Cell::num(rec.map_or(f64::NAN, |x| x.bytes_per_minstr), 1));
                }
            }
        };
        for r in self.rows {
            let mut cells = vec![Cell::Text(self.name(r)), Cell::Int(r.harts.into())];
            let recs: Vec<Option<RecordFigures>> =
                Strategy::ALL.iter().map(|s| r.rec(*s).copied()).collect();
            log_cells(&recs, &mut cells);
            if !self.qemu {
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
        for &h in &self.options.harts {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
            let mut cells = vec![Cell::Text("geomean".into()), Cell::Int(h.into())];
            for s in Strategy::ALL {
                if !self.implemented.contains(&s) {
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
            if !self.qemu {
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
        logs
    }

    /// Table 3: replay.
    fn replay_table(&self) -> Table {
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
        for r in self.rows {
            let chunk = r.chunk_wall();
            replay.push(vec![
                Cell::Text(self.name(r)),
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
        for &h in &self.options.harts {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
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
        replay
    }

    fn notes(&self, qemu_refusal: Option<&str>) -> Vec<String> {
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
        match qemu_refusal {
            Some(msg) => {
                let _ = write!(
                    qemu_note,
                    " (QEMU {}: \"{msg}\").",
                    qemu_version(self.bench)
                );
            }
            None => qemu_note.push('.'),
        }
        if !self.qemu {
            qemu_note = format!(
                "¹ ² QEMU columns are empty: {}.",
                self.bench
                    .host
                    .why_no_qemu
                    .as_deref()
                    .unwrap_or("QEMU not run")
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
        let missing = self.missing();
        if !missing.is_empty() {
            notes.push(format!(
                "Strategies this samsara does not offer (`samsara record --help`): {}; their \
                 columns say {NOT_IMPLEMENTED} and the bench runs them as soon as `record \
                 --strategy` accepts them.",
                missing.join(", ")
            ));
        }
        let differing: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.qemu_output_differs)
            .map(|r| format!("{} at {} harts", self.name(r), r.harts))
            .collect();
        if !differing.is_empty() {
            notes.push(format!(
                "WARNING: guest output differed between samsara and QEMU for {}.",
                differing.join(", ")
            ));
        }
        notes
    }

    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        for (h, goal) in [(2, TARGET_RECORD_2_HARTS), (4, TARGET_RECORD_4_HARTS)] {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
            if of_h.is_empty() {
                continue;
            }
            let g = geomean(of_h.iter().map(|r| r.slowdown(Strategy::Chunk)));
            let worst = of_h
                .iter()
                .map(|r| (r.slowdown(Strategy::Chunk), self.name(r)))
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
        targets.extend(strategy_targets(self.rows, &self.options.harts, &|r| {
            self.name(r)
        }));
        for &h in &self.options.harts {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
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
        targets
    }

    /// Setup lines after the common ones: QEMU, strategies, runs.
    fn setup_lines(&self) -> Vec<(String, String)> {
        let mut setup = Vec::new();
        setup.push((
            "QEMU".to_string(),
            match &self.bench.qemu {
                Some(q) => format!("{} ({})", q.display(), qemu_version(self.bench)),
                None => self
                    .bench
                    .host
                    .why_no_qemu
                    .clone()
                    .unwrap_or_else(|| "not run".into()),
            },
        ));
        setup.push((
            "strategies".to_string(),
            Strategy::ALL
                .iter()
                .map(|s| {
                    if self.implemented.contains(s) {
                        s.name().to_string()
                    } else {
                        format!("{} ({NOT_IMPLEMENTED})", s.name())
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        ));
        setup.push((
            "runs".to_string(),
            format!(
                "{} per measurement, medians reported{}; per workload and hart count: samsara \
                 run, QEMU TCG, samsara record per strategy (+ inspect --json; serial not at 1 \
                 hart), replay and replay --serial (not at 1 hart) of the chunk trace, QEMU \
                 rr=record at 1 hart; --mem 128M",
                self.bench.repeats,
                if self.bench.repeats == 1 {
                    " (1 is the default at bench size: 3 would take over an hour)"
                } else {
                    ""
                }
            ),
        ));
        setup
    }

    /// Charts in the style of the paper's figures.
    fn charts(&self) -> Vec<(&'static str, Chart)> {
        let charted: Vec<Strategy> = Strategy::ALL
            .into_iter()
            .filter(|s| self.implemented.contains(s))
            .collect();
        let panel = |h: u32,
                     per_strategy: &dyn Fn(&Row, Strategy) -> f64,
                     geo: bool,
                     qemu_rr: Option<&dyn Fn(&Row) -> f64>| {
            let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
            let mut groups: Vec<String> = of_h.iter().map(|r| self.name(r)).collect();
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
            if let Some(f) = qemu_rr.filter(|_| self.qemu) {
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
        let missing = self.missing();
        let not_impl = if missing.is_empty() {
            String::new()
        } else {
            format!(" ({}: not implemented)", missing.join(", "))
        };
        let overhead_chart = Chart {
            title: format!(
                "Recording overhead, PARSEC-like ({} size){not_impl}",
                self.options.size.name()
            ),
            y_label: "record time / native run time".into(),
            reference: Some(1.0),
            panels: self
                .options
                .harts
                .iter()
                .map(|&h| {
                    panel(
                        h,
                        &|r, s| r.slowdown(s),
                        true,
                        Some(&|r: &Row| r.qemu_record / self.qemu_one_hart(r)),
                    )
                })
                .collect(),
        };
        let rate_chart = Chart {
            title: format!(
                "Log rate, PARSEC-like ({} size){not_impl}",
                self.options.size.name()
            ),
            y_label: "log bytes per second of recording".into(),
            reference: None,
            panels: self
                .options
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
                self.options.size.name()
            ),
            y_label: "log bytes per million instructions".into(),
            reference: None,
            panels: self
                .options
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
                self.options.size.name()
            ),
            y_label: "replay time / record time".into(),
            reference: Some(1.0),
            panels: self
                .options
                .harts
                .iter()
                .map(|&h| {
                    let of_h: Vec<&Row> = self.rows.iter().filter(|r| r.harts == h).collect();
                    let mut groups: Vec<String> = of_h.iter().map(|r| self.name(r)).collect();
                    groups.push("geomean".into());
                    let series = |label: &str, f: &dyn Fn(&Row) -> f64| {
                        let mut values: Vec<Option<f64>> =
                            of_h.iter().map(|r| finite(f(r))).collect();
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
        vec![
            ("parsec-overhead", overhead_chart),
            ("parsec-log-rate", rate_chart),
            ("parsec-log-size", per_minstr_chart),
            ("parsec-replay", replay_chart),
        ]
    }
}

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
    use crate::runner::{Recorded, Samples, TraceStats};

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
}
