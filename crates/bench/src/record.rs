//! Record/replay cost (issue 4): every bundled workload at 1, 2 and 4
//! harts — native `samsara run` beside `samsara record` (chunk strategy)
//! and `samsara replay` in parallel and `--serial`, with the trace's rates
//! (`samsara inspect --json`), squash rate and chunk length. Every replay
//! must verify; one that does not, or any run that fails, is reported (the
//! table shows it, the program exits 1) but does not stop the remaining
//! measurements.

use std::time::Instant;

use anyhow::Result;

use crate::Options;
use crate::charts::{Chart, Panel, Series};
use crate::context::Bench;
use crate::plan::{Kind, fmt_duration, plan, plan_report};
use crate::report::{Cell, Report, Table, Target, finish, report_with_files};
use crate::rows::{
    RecordFigures, Row, TARGET_RECORD_2_HARTS, TARGET_RECORD_4_HARTS, busy_cell, busy_of, ordered,
    plural_harts, setup,
};
use crate::runner::Runner;
use crate::stats::{busy_note, finite, geomean, mean};
use crate::strategy::Strategy;
use crate::workloads::{DISK_BYTES, Workload, workloads};

/// The trace-rate target for CPU-bound workloads.
const TARGET_BYTES_PER_MINSTR: f64 = 30.0;

/// `samsara-bench --suite record`.
pub fn record_suite(bench: &Bench, options: &Options) -> Result<Report> {
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
        tables: vec![table(&rows, &workloads, &options.harts)],
        notes: notes(),
        targets: targets(&rows, &workloads, &options.harts),
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
    let chart = chart(&rows, &workloads, options);
    finish(report_with_files(
        &mut report,
        options,
        &[("record-overhead", chart)],
    ));
    Ok(report)
}

/// The table: record and replay beside the native run, per workload and
/// hart count, then the geomeans per hart count.
fn table(rows: &[Row], workloads: &[Workload], harts: &[u32]) -> Table {
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
    for r in rows {
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
    for &h in harts {
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
    table
}

fn notes() -> Vec<String> {
    vec![
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
    ]
}

fn targets(rows: &[Row], workloads: &[Workload], harts: &[u32]) -> Vec<Target> {
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
    for &h in harts {
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
    targets
}

/// A chart of the same figures: time relative to the native run.
fn chart(rows: &[Row], workloads: &[Workload], options: &Options) -> Chart {
    Chart {
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
    }
}
