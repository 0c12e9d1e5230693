//! Running a record/replay plan: every step a process (`samsara run`,
//! `record` + `inspect --json`, a verified `replay`, QEMU), its figures
//! collected per workload and hart count; a failing step is noted and the
//! rest go on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::context::{Bench, run_summary, verified_replay};
use crate::plan::{Kind, Progress, Step, fmt_duration};
use crate::process::{ProcessRun, last_lines, run_process};
use crate::stats::busy_note;
use crate::strategy::Strategy;
use crate::workloads::{DISK_BYTES, Workload};

/// A `samsara run`.
pub struct NativeRun {
    pub instructions: u64,
    pub wall: f64,
    pub output: Vec<u8>,
}

/// What `samsara inspect --json` says about a trace.
#[derive(Clone, Debug, Default)]
pub struct TraceStats {
    pub instructions: u64,
    pub chunks: u64,
    pub squashes: u64,
    pub file_bytes: u64,
    /// Stored (compressed) bytes of all streams, and of the commit log.
    pub stored: u64,
    pub commit_stored: u64,
    /// The recorder's own wall time (first instruction to the footer).
    pub record_wall: f64,
    /// Chunks that ended at (or were) a device access, and at a pause hint.
    pub device_ends: u64,
    pub spin_ends: u64,
}

impl TraceStats {
    pub fn parse(json: &serde_json::Value) -> Result<Self> {
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
pub struct Recorded {
    pub stats: TraceStats,
}

/// Everything measured for one workload at one hart count, over repeats.
#[derive(Default)]
pub struct Samples {
    pub native: Vec<NativeRun>,
    pub qemu: Vec<f64>,
    pub qemu_output_differs: bool,
    pub records: BTreeMap<Strategy, Vec<Recorded>>,
    pub replay_parallel: Vec<f64>,
    pub replay_serial: Vec<f64>,
    pub replays_verified: u32,
    pub replays_failed: u32,
    pub qemu_record: Vec<(f64, u64)>,
    pub busy: Vec<f64>,
    pub failed: bool,
}

/// Runs the plan's steps: processes, scratch files, progress, failures.
pub struct Runner<'a> {
    bench: &'a Bench,
    scratch: PathBuf,
    pub failures: Vec<String>,
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl<'a> Runner<'a> {
    pub fn new(bench: &'a Bench) -> Result<Self> {
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

    pub fn trace_path(&self, w: &Workload, harts: u32, rep: u32, strategy: Strategy) -> PathBuf {
        self.scratch.join(format!(
            "{}-{}h-r{rep}-{}.trace",
            w.name(),
            harts,
            strategy.name()
        ))
    }

    /// A fresh, zeroed scratch disk (run mode writes to its disk).
    pub fn fresh_disk(&self) -> Result<PathBuf> {
        let path = self.scratch.join("disk.img");
        std::fs::write(&path, vec![0u8; DISK_BYTES])
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    pub fn samsara(&self) -> Command {
        Command::new(&self.bench.samsara)
    }

    /// A process that must exit with status 0.
    pub fn must_pass(&self, cmd: Command) -> Result<ProcessRun> {
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

    pub fn native(&self, w: &Workload, harts: u32) -> Result<(NativeRun, ProcessRun)> {
        let mut cmd = self.samsara();
        cmd.arg("run")
            .arg(&w.image)
            .arg("--harts")
            .arg(harts.to_string())
            .args(["--mem", "128M", "--json"]);
        if w.known.disk {
            cmd.arg("--disk").arg(self.fresh_disk()?);
        }
        let run = self.must_pass(cmd)?;
        let summary = run_summary(&run)?;
        Ok((
            NativeRun {
                instructions: summary.instructions,
                wall: summary.wall_seconds,
                output: run.stdout.clone(),
            },
            run,
        ))
    }

    pub fn record(
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

    pub fn replay(&self, trace: &Path, serial: bool) -> Result<(f64, ProcessRun)> {
        verified_replay(self.bench, trace, serial)
    }

    pub fn qemu_command(&self, qemu: &Path, image: &Path, harts: u32) -> Command {
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
    pub fn qemu_record(&self, qemu: &Path, w: &Workload, harts: u32) -> Result<(ProcessRun, u64)> {
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
    pub fn qemu_smp_record_refusal(&self, qemu: &Path, w: &Workload) -> Result<Option<String>> {
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
    pub fn execute(
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

    pub fn run_step(&self, w: &Workload, step: &Step, s: &mut Samples) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::RecordFigures;

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
