//! Medians over the repeats: one row per workload and hart count, with
//! each strategy's recording figures, and what the record and parsec
//! suites share in their reports.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Options;
use crate::context::Bench;
use crate::plan::fmt_duration;
use crate::process::load_average;
use crate::report::Cell;
use crate::runner::{Recorded, Samples, TraceStats};
use crate::stats::median;
use crate::strategy::Strategy;
use crate::workloads::Workload;

/// One strategy's recording of one workload at one hart count (medians).
#[derive(Clone, Copy, Debug)]
pub struct RecordFigures {
    pub wall: f64,
    pub instructions: f64,
    pub file_bytes: f64,
    pub bytes_per_second: f64,
    pub bytes_per_minstr: f64,
    pub commit_pct: f64,
    pub squash_pct: f64,
    pub mean_chunk: f64,
    pub device_end_pct: f64,
    pub spin_end_pct: f64,
}

impl RecordFigures {
    pub fn of(records: &[Recorded]) -> Option<Self> {
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
pub struct Row {
    pub workload: usize,
    pub harts: u32,
    pub instructions: f64,
    pub native: f64,
    pub qemu: f64,
    pub qemu_output_differs: bool,
    pub records: BTreeMap<Strategy, RecordFigures>,
    pub replay_parallel: f64,
    pub replay_serial: f64,
    pub replays_verified: u32,
    pub replays_failed: u32,
    pub qemu_record: f64,
    pub qemu_record_bytes: f64,
    pub busy: Option<f64>,
    pub failed: bool,
}

impl Row {
    pub fn of(workload: usize, harts: u32, s: &Samples) -> Self {
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

    pub fn rec(&self, s: Strategy) -> Option<&RecordFigures> {
        self.records.get(&s)
    }

    /// Recording time over native run time for strategy `s`.
    pub fn slowdown(&self, s: Strategy) -> f64 {
        self.rec(s).map_or(f64::NAN, |r| r.wall / self.native)
    }

    pub fn chunk_wall(&self) -> f64 {
        self.rec(Strategy::Chunk).map_or(f64::NAN, |r| r.wall)
    }

    pub fn verified_cell(&self) -> Cell {
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

pub fn busy_cell(b: Option<f64>) -> Cell {
    b.map_or(Cell::Missing, |b| Cell::num(b * 100.0, 0))
}

/// Median "busy elsewhere" over a set of rows.
pub fn busy_of(rows: &[&Row]) -> Option<f64> {
    let v: Vec<f64> = rows.iter().filter_map(|r| r.busy).collect();
    (!v.is_empty()).then(|| median(&v))
}

pub fn plural_harts(h: u32) -> &'static str {
    if h == 1 { "hart" } else { "harts" }
}

/// Setup lines common to both suites.
pub fn setup(
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

pub const TARGET_RECORD_2_HARTS: f64 = 2.0;
pub const TARGET_RECORD_4_HARTS: f64 = 3.0;

/// Rows in (workload, harts) order, hart counts as given.
pub fn ordered(mut rows: Vec<Row>, harts: &[u32]) -> Vec<Row> {
    let pos = |h: u32| harts.iter().position(|&x| x == h).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| (r.workload, pos(r.harts)));
    rows
}
