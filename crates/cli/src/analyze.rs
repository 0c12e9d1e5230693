//! `samsara analyze TRACE ANALYSIS`: analyses that observe a replay.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use samsara_analysis::timeline::Timeline;
use samsara_engine::replay::ReplaySession;

use crate::install_ctrl_c;
use crate::rr::TraceFiles;

/// The analyses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Analysis {
    /// The recording as a picture: one track per hart (each entry, how it
    /// ended, device accesses, interrupt-line changes), and DMA, on the
    /// global order and on each hart's instruction count.
    Timeline,
}

#[derive(Args)]
pub(crate) struct AnalyzeArgs {
    #[command(flatten)]
    pub files: TraceFiles,
    /// What to find out.
    #[arg(value_enum)]
    pub analysis: Analysis,
    /// Write the timeline as Chrome trace events (open it in
    /// https://ui.perfetto.dev or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// Write one JSON object per finding (per entry, for the timeline).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
}

pub(crate) fn analyze_command(args: &AnalyzeArgs) -> Result<ExitCode> {
    let stop = install_ctrl_c()?;
    let config = args.files.config(false, false);
    let mut session = ReplaySession::open(&config)?;
    let harts = session.harts().len();
    let timeline = Arc::new(parking_lot::Mutex::new(Timeline::new(harts)));
    let seen = timeline.clone();
    session.tap_entries(Box::new(move |seq, entry| seen.lock().see(seq, entry)));
    let start = std::time::Instant::now();
    session.run_parallel(&stop)?;
    let outcome = session.outcome(start.elapsed());
    let timeline = timeline.lock();
    match args.analysis {
        Analysis::Timeline => {
            for line in timeline.summary() {
                eprintln!("{line}");
            }
            if let Some(path) = &args.perfetto {
                write_file(path, |out| timeline.write_trace_events(out))?;
                eprintln!("timeline: trace events in {}", path.display());
            }
            if let Some(path) = &args.jsonl {
                write_file(path, |out| timeline.jsonl(out))?;
            }
        }
    }
    // The analysis observed this replay: say whether it was the recording.
    let verdict = if outcome.verified() {
        "VERIFIED".to_string()
    } else if let Some(partial) = &outcome.partial {
        format!("partial trace ({partial})")
    } else {
        format!("NOT VERIFIED: {} mismatches", outcome.mismatches.len())
    };
    eprintln!(
        "samsara: analyzed {} entries in {:.3} s; replay {verdict}",
        outcome.entries,
        outcome.wall.as_secs_f64()
    );
    Ok(ExitCode::from(if outcome.verified() {
        0
    } else if outcome.partial.is_some() {
        3
    } else {
        1
    }))
}

/// Creates `path` and writes it with `write`, naming the file in errors.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    write(&mut BufWriter::new(file)).with_context(|| format!("writing {}", path.display()))
}
