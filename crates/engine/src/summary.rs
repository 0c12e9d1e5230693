//! What `samsara run`, `record` and `replay` report on stderr when they
//! finish: the human summary lines and, with `--json`, one JSON object on
//! one line instead. Both are printed from the same struct, so they cannot
//! drift apart; programs that read the JSON (samsara-bench) deserialize the
//! same struct.

use std::path::Path;
use std::time::Duration;

use samsara_machine::run::RunOutcome;
use samsara_trace::{RecordedExit, STREAM_COMMIT};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::record::RecordOutcome;
use crate::replay::ReplayOutcome;

/// `samsara run`'s summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// How the run ended, in words ("guest powered off").
    pub exit: String,
    /// The process exit status samsara returns for that ending.
    pub status: u8,
    /// Instructions executed by each hart.
    pub instructions_per_hart: Vec<u64>,
    /// Their sum.
    pub instructions: u64,
    /// First instruction to the end of the run (no process start-up).
    pub wall_seconds: f64,
    /// Million instructions per second of `wall_seconds` (0 for no time).
    pub mips: f64,
    /// What the block translator did (`--cpu jit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translator: Option<TranslatorSummary>,
}

/// The block translator's work in a run (all harts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslatorSummary {
    /// Blocks translated.
    pub blocks: u64,
    /// Guest instructions in them.
    pub instructions_translated: u64,
    /// Host code emitted, in bytes.
    pub code_bytes: u64,
    /// Times a hart's code space filled and was replaced.
    pub code_space_renewals: u64,
    /// Time spent translating, summed over harts.
    pub translate_seconds: f64,
    /// Blocks of an earlier code generation found unchanged and kept.
    pub blocks_kept: u64,
    /// Blocks dropped because their code changed or moved.
    pub blocks_dropped: u64,
    /// Steps run in translated code.
    pub steps_translated: u64,
    /// Their share of all steps, in percent.
    pub percent_translated: f64,
}

impl TranslatorSummary {
    fn of(stats: &samsara_cpu::TranslatorStats, steps: u64) -> Self {
        Self {
            blocks: stats.blocks,
            instructions_translated: stats.instructions_translated,
            code_bytes: stats.code_bytes,
            code_space_renewals: stats.flushes,
            translate_seconds: stats.translate_nanos as f64 / 1e9,
            blocks_kept: stats.revalidated,
            blocks_dropped: stats.dropped,
            steps_translated: stats.steps_translated,
            percent_translated: if steps > 0 {
                100.0 * stats.steps_translated as f64 / steps as f64
            } else {
                0.0
            },
        }
    }

    /// `samsara: translator: ...`.
    pub fn human(&self) -> String {
        format!(
            "samsara: translator: {} blocks of {} instructions, {:.1} MiB of code ({} renewals), {:.3} s translating; {} kept and {} dropped when code may have changed; {:.1}% of steps translated",
            self.blocks,
            self.instructions_translated,
            self.code_bytes as f64 / (1 << 20) as f64,
            self.code_space_renewals,
            self.translate_seconds,
            self.blocks_kept,
            self.blocks_dropped,
            self.percent_translated
        )
    }
}

impl RunSummary {
    /// The summary of a finished run.
    pub fn of(outcome: &RunOutcome) -> Self {
        let instructions: u64 = outcome.instructions_per_hart.iter().sum();
        let secs = outcome.wall.as_secs_f64();
        Self {
            exit: outcome.exit.to_string(),
            status: outcome.exit.exit_code(),
            instructions_per_hart: outcome.instructions_per_hart.clone(),
            instructions,
            wall_seconds: secs,
            mips: if secs > 0.0 {
                instructions as f64 / secs / 1e6
            } else {
                0.0
            },
            translator: outcome
                .translator
                .as_ref()
                .map(|t| TranslatorSummary::of(t, instructions)),
        }
    }

    /// `wall_seconds` as a duration.
    pub fn wall(&self) -> Duration {
        Duration::try_from_secs_f64(self.wall_seconds).unwrap_or_default()
    }

    /// The human lines: the translator's, if it ran, then
    /// `samsara: <exit>; instructions hart0=N .. (total T); wall S s; M MIPS`.
    pub fn human(&self) -> String {
        let line = self.human_line();
        match &self.translator {
            Some(t) => format!("{}\n{line}", t.human()),
            None => line,
        }
    }

    fn human_line(&self) -> String {
        let per_hart: Vec<String> = self
            .instructions_per_hart
            .iter()
            .enumerate()
            .map(|(h, n)| format!("hart{h}={n}"))
            .collect();
        format!(
            "samsara: {}; instructions {} (total {}); wall {:.3} s; {:.1} MIPS",
            self.exit,
            per_hart.join(" "),
            self.instructions,
            self.wall_seconds,
            self.mips
        )
    }
}

/// `samsara record`'s summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// The trace written.
    pub trace: String,
    /// Harts recorded.
    pub harts: usize,
    /// How the recorded run ended, in words (a kernel panic with its line).
    pub exit: String,
    /// The process exit status samsara returns for that ending.
    pub status: u8,
    /// Instructions executed by each hart.
    pub instructions_per_hart: Vec<u64>,
    /// Their sum.
    pub instructions: u64,
    /// The recorder's wall time (the one in the trace footer).
    pub wall_seconds: f64,
    /// Million instructions per second of `wall_seconds`.
    pub mips: f64,
    /// Entries in the trace (sequence numbers used).
    pub entries: u64,
    /// Chunks committed.
    pub chunks: u64,
    /// Instructions per committed chunk.
    pub mean_chunk: f64,
    /// Chunks squashed and re-executed.
    pub squashes: u64,
    /// Squashes as a share of attempts (chunks + squashes), in percent.
    pub squash_pct: f64,
    /// Instructions thrown away by squashes.
    pub squashed_instructions: u64,
    /// Chunks run exclusively.
    pub exclusive_chunks: u64,
    /// DMA completions.
    pub dma: u64,
    /// Bytes in the trace file.
    pub trace_bytes: u64,
    /// Trace bytes per second of `wall_seconds`.
    pub bytes_per_second: f64,
    /// Trace bytes per million instructions.
    pub bytes_per_minstr: f64,
    /// The commit stream's share of the stored streams, in percent.
    pub commit_log_pct: f64,
}

impl RecordSummary {
    /// The summary of a finished recording into `trace`, which ended as
    /// `exit` says and makes samsara exit with `status`.
    pub fn of(trace: &Path, o: &RecordOutcome, exit: String, status: u8) -> Self {
        let f = &o.footer;
        let instructions: u64 = f.steps_per_hart.iter().sum();
        let secs = o.wall.as_secs_f64().max(1e-9);
        let chunks: u64 = o.reasons.iter().sum();
        let bytes = o.writer.file_bytes;
        let attempts = chunks + f.stats.squashes;
        Self {
            trace: trace.display().to_string(),
            harts: f.steps_per_hart.len(),
            exit,
            status,
            instructions_per_hart: f.steps_per_hart.clone(),
            instructions,
            wall_seconds: secs,
            mips: instructions as f64 / secs / 1e6,
            entries: f.entries,
            chunks,
            mean_chunk: instructions as f64 / chunks.max(1) as f64,
            squashes: f.stats.squashes,
            squash_pct: 100.0 * f.stats.squashes as f64 / attempts.max(1) as f64,
            squashed_instructions: f.stats.squashed_steps,
            exclusive_chunks: f.stats.exclusive_chunks,
            dma: f.stats.dma,
            trace_bytes: bytes,
            bytes_per_second: bytes as f64 / secs,
            bytes_per_minstr: bytes as f64 * 1e6 / instructions.max(1) as f64,
            commit_log_pct: 100.0 * o.writer.compressed[STREAM_COMMIT] as f64
                / o.writer.compressed.iter().sum::<u64>().max(1) as f64,
        }
    }

    /// The three human lines.
    pub fn human(&self) -> Vec<String> {
        vec![
            format!(
                "samsara: recorded {} harts: {}; {} instructions in {:.3} s ({:.1} MIPS)",
                self.harts, self.exit, self.instructions, self.wall_seconds, self.mips
            ),
            format!(
                "samsara: {} chunks (mean {:.0} instructions), {} squashed ({:.2}% of attempts), {} exclusive, {} DMA",
                self.chunks,
                self.mean_chunk,
                self.squashes,
                self.squash_pct,
                self.exclusive_chunks,
                self.dma
            ),
            format!(
                "samsara: trace {} : {} bytes, {:.0} bytes/s, {:.1} bytes per million instructions, commit log {:.1}%",
                self.trace,
                self.trace_bytes,
                self.bytes_per_second,
                self.bytes_per_minstr,
                self.commit_log_pct
            ),
        ]
    }
}

/// `samsara replay`'s summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// The trace replayed.
    pub trace: String,
    /// Replayed on one host thread in sequence order (`--serial`).
    pub serial: bool,
    /// Entries replayed.
    pub entries: u64,
    /// Instructions executed by each hart.
    pub instructions_per_hart: Vec<u64>,
    /// Their sum.
    pub instructions: u64,
    /// The replay's wall time.
    pub wall_seconds: f64,
    /// Million instructions per second of `wall_seconds`.
    pub mips: f64,
    /// The trace has its footer (a complete recording).
    pub complete: bool,
    /// Why the trace ended early, if it did.
    pub partial: Option<String>,
    /// Output, exit and final digests all equal the recording's.
    pub verified: bool,
    /// Differences from the recording (empty when verified).
    pub mismatches: Vec<String>,
    /// How the replayed guest ended (`null`: it did not end by itself).
    pub guest_exit: Option<RecordedExit>,
    /// Bytes of guest output regenerated.
    pub output_bytes: u64,
    /// BLAKE3 of RAM at the end, hex.
    pub ram_blake3: String,
    /// Harts whose final state digest was computed.
    pub harts: usize,
    /// The process exit status: 0 verified, 1 differs, 3 partial trace.
    pub status: u8,
}

impl ReplaySummary {
    /// The summary of a finished replay of `trace`.
    pub fn of(trace: &Path, o: &ReplayOutcome, serial: bool) -> Self {
        let instructions: u64 = o.steps_per_hart.iter().sum();
        let secs = o.wall.as_secs_f64().max(1e-9);
        Self {
            trace: trace.display().to_string(),
            serial,
            entries: o.entries,
            instructions_per_hart: o.steps_per_hart.clone(),
            instructions,
            wall_seconds: secs,
            mips: instructions as f64 / secs / 1e6,
            complete: o.footer.is_some(),
            partial: o.partial.clone(),
            verified: o.verified(),
            mismatches: o.mismatches.iter().map(ToString::to_string).collect(),
            guest_exit: o.exit,
            output_bytes: o.output_len,
            ram_blake3: o.ram_blake3.clone(),
            harts: o.hart_digests.len(),
            status: if o.verified() {
                0
            } else if o.footer.is_none() {
                3
            } else {
                1
            },
        }
    }

    /// The human lines; `quiet` leaves out all but trouble.
    pub fn human(&self, quiet: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mode = if self.serial {
            "serially"
        } else {
            "in parallel"
        };
        if !quiet || !self.verified {
            lines.push(format!(
                "samsara: replayed {} entries {mode}: {} instructions in {:.3} s ({:.1} MIPS)",
                self.entries, self.instructions, self.wall_seconds, self.mips
            ));
        }
        if let Some(p) = &self.partial {
            lines.push(format!("samsara: partial trace: {p}"));
            lines.push(
                "samsara: replayed and checked every complete entry; there is no final digest to verify against"
                    .into(),
            );
        }
        if self.complete {
            if self.mismatches.is_empty() {
                if !quiet {
                    lines.push(format!(
                        "samsara: VERIFIED: guest output identical ({} bytes), exit identical, final state digest identical (RAM {}…, {} harts)",
                        self.output_bytes,
                        self.ram_blake3.get(..16).unwrap_or(&self.ram_blake3),
                        self.harts
                    ));
                }
            } else {
                lines.push("samsara: REPLAY DIFFERS from the recording:".into());
                for m in &self.mismatches {
                    lines.push(format!("samsara:   {m}"));
                }
            }
        }
        lines
    }
}

/// One summary as a single line of JSON (what `--json` prints).
pub fn to_json_line<T: Serialize>(summary: &T) -> String {
    // Plain structs of numbers and strings always serialize.
    serde_json::to_string(summary).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The summary in a samsara process's stderr, printed with `--json`: the
/// last line that is such a JSON object.
pub fn from_stderr<T: DeserializeOwned>(stderr: &str) -> Option<T> {
    stderr
        .lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_summary_round_trips_and_reads_as_before() {
        let s = RunSummary {
            exit: "guest powered off".into(),
            status: 0,
            instructions_per_hart: vec![176180048, 176170993],
            instructions: 352351041,
            wall_seconds: 1.17,
            mips: 301.154,
            translator: None,
        };
        assert_eq!(
            s.human(),
            "samsara: guest powered off; instructions hart0=176180048 hart1=176170993 \
             (total 352351041); wall 1.170 s; 301.2 MIPS"
        );
        let line = to_json_line(&s);
        assert!(!line.contains('\n'));
        let stderr = format!("samsara: something else\n{line}\n");
        assert_eq!(from_stderr::<RunSummary>(&stderr), Some(s.clone()));
        assert_eq!(s.wall(), Duration::from_millis(1170));
        assert_eq!(from_stderr::<RunSummary>("samsara: error: no"), None);
        // A replay's summary is not a run's.
        assert_eq!(from_stderr::<ReplaySummary>(&line), None);
    }
}
