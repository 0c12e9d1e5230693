//! `samsara analyze TRACE ANALYSIS [ARGS] [ANALYSIS [ARGS]]...`: analyses
//! that observe one verified replay, harts in parallel.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use parking_lot::Mutex;
use samsara_analysis::Sinks;
use samsara_analysis::races::Races;
use samsara_analysis::symbols::Symbols;
use samsara_analysis::syscalls::Syscalls;
use samsara_analysis::timeline::Timeline;
use samsara_analysis::watch::Watch;
use samsara_engine::replay::ReplaySession;
use samsara_engine::replay::probe::{AccessProbe, ProbeConfig, ProbeRange};

use crate::install_ctrl_c;
use crate::rr::TraceFiles;

#[derive(Args)]
pub(crate) struct AnalyzeArgs {
    #[command(flatten)]
    pub files: TraceFiles,
    /// What to find out, one or more in one replay: `timeline`,
    /// `syscalls`, `races`, `watch [phys:]ADDR[:LEN]` (ADDR a number or,
    /// for a bare-metal guest, a symbol; LEN defaults to the symbol's
    /// size, else 8).
    #[arg(required = true, num_args = 1.., value_name = "ANALYSIS [ARGS]")]
    pub analyses: Vec<String>,
    /// Write one JSON object per finding, of every analysis (each names
    /// its analysis; the timeline's are its entries).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Write the timeline as a self-contained web page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the timeline as Chrome trace events (open it in
    /// https://ui.perfetto.dev or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// `watch`: list reads too, not only writes.
    #[arg(long)]
    pub reads: bool,
    /// `watch`: only this hart's accesses (DMA is listed whatever).
    #[arg(long, value_name = "N")]
    pub hart: Option<u8>,
    /// `races`: also list the pages several harts access.
    #[arg(long)]
    pub sharing: bool,
    /// Print only the summaries, not one line per finding.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What the user asked for, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wanted {
    Timeline,
    Syscalls,
    Races,
    Watch(String),
}

fn parse_wanted(words: &[String]) -> Result<Vec<Wanted>> {
    let mut wanted = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let one = match word.as_str() {
            "timeline" => Wanted::Timeline,
            "syscalls" => Wanted::Syscalls,
            "races" => Wanted::Races,
            "watch" => match words.next() {
                Some(range) => Wanted::Watch(range.clone()),
                None => bail!("watch: which bytes? (watch [phys:]ADDR[:LEN])"),
            },
            other => bail!(
                "unknown analysis {other:?} (known: timeline, syscalls, races, watch [phys:]ADDR[:LEN])"
            ),
        };
        if one != Wanted::Timeline || !wanted.contains(&one) {
            wanted.push(one);
        }
    }
    Ok(wanted)
}

/// Parses `[phys:]ADDR[:LEN]`; ADDR a number (hex with 0x) or a symbol.
fn parse_range(text: &str, symbols: &Symbols) -> Result<ProbeRange> {
    let (physical, rest) = match text.strip_prefix("phys:") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (addr, len) = match rest.rsplit_once(':') {
        Some((addr, len)) => (
            addr,
            Some(
                parse_number(len)
                    .with_context(|| format!("watch {text}: the length {len:?} is not a number"))?,
            ),
        ),
        None => (rest, None),
    };
    let (start, size) = match parse_number(addr) {
        Ok(n) => (n, None),
        Err(_) => match symbols.address_of(addr) {
            Some((start, size)) => (start, Some(size)),
            None => {
                bail!("watch {text}: {addr:?} is neither a number nor a symbol of the guest image")
            }
        },
    };
    let len = len.or(size.filter(|&s| s > 0)).unwrap_or(8);
    if len == 0 {
        bail!("watch {text}: watches no bytes");
    }
    if start.checked_add(len).is_none() {
        bail!("watch {text}: runs past the end of the address space");
    }
    Ok(ProbeRange {
        start,
        len,
        physical,
    })
}

fn parse_number(text: &str) -> Result<u64> {
    samsara_types::parse_number(text).with_context(|| format!("{text:?} is not a number"))
}

/// The analyses of one replay.
struct Analyses {
    sinks: Sinks,
    timeline: Option<Timeline>,
    syscalls: Option<Syscalls>,
    races: Option<Races>,
    watches: Vec<Watch>,
}

impl Analyses {
    /// What the harts must show for all of them at once.
    fn probe(&self) -> Option<ProbeConfig> {
        let mut config = ProbeConfig::default();
        let mut any = false;
        for w in &self.watches {
            let p = w.probe();
            config.values = true;
            config.loads |= p.loads;
            config.accesses = match (config.accesses, p.accesses) {
                (AccessProbe::Ranges(mut a), AccessProbe::Ranges(b)) => {
                    a.extend(b);
                    AccessProbe::Ranges(a)
                }
                (AccessProbe::None, b) => b,
                (a, _) => a,
            };
            any = true;
        }
        if let Some(r) = &self.races {
            let p = r.probe();
            config.accesses = p.accesses;
            config.loads = true;
            config.fences = true;
            any = true;
        }
        if let Some(s) = &self.syscalls {
            config.user_switches = s.probe().user_switches;
            any = true;
        }
        any.then_some(config)
    }
}

pub(crate) fn analyze_command(args: &AnalyzeArgs) -> Result<ExitCode> {
    let wanted = parse_wanted(&args.analyses)?;
    let timeline_wanted = wanted.contains(&Wanted::Timeline);
    if !timeline_wanted && (args.html.is_some() || args.perfetto.is_some()) {
        bail!("--html and --perfetto draw the timeline: add the `timeline` analysis");
    }
    let stop = install_ctrl_c()?;
    let config = args.files.config(false, false);
    let mut session = ReplaySession::open(&config)?;
    let header = session.header().clone();
    let image = config
        .files
        .image
        .clone()
        .unwrap_or_else(|| PathBuf::from(&header.image_path));
    // Names for addresses: the guest image's symbols (none for Linux's
    // firmware, which is not what the user wants named).
    let symbols = if header.kernel.is_none() {
        std::fs::read(&image)
            .map(|bytes| Symbols::from_elf(&bytes))
            .unwrap_or_default()
    } else {
        Symbols::default()
    };
    let harts = session.harts().len();
    let mut analyses = Analyses {
        sinks: Sinks::default(),
        timeline: timeline_wanted.then(|| Timeline::new(harts)),
        syscalls: None,
        races: None,
        watches: Vec::new(),
    };
    for w in &wanted {
        match w {
            Wanted::Timeline => {}
            Wanted::Syscalls => {
                let Some(kernel) = &header.kernel else {
                    bail!(
                        "syscalls: {} is not a Linux recording (system calls are Linux's)",
                        args.files.trace.display()
                    );
                };
                let kernel = config
                    .files
                    .kernel
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(&kernel.path));
                let bytes = std::fs::read(&kernel).with_context(|| {
                    format!("syscalls: reading the kernel {}", kernel.display())
                })?;
                analyses.syscalls = Some(Syscalls::new(samsara_analysis::btf::task_layout(&bytes)));
            }
            Wanted::Races => analyses.races = Some(Races::new(harts, args.sharing)),
            Wanted::Watch(range) => {
                let range = parse_range(range, &symbols)?;
                if args.hart.is_some_and(|h| usize::from(h) >= harts) {
                    bail!(
                        "--hart {}: the recording has {harts} harts",
                        args.hart.unwrap_or(0)
                    );
                }
                analyses
                    .watches
                    .push(Watch::new(range, args.reads, args.hart));
            }
        }
    }
    // Findings stream out as they are found: the file is made once the
    // request is known to be good (a typo must not clobber results).
    if let Some(path) = &args.jsonl {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        analyses.sinks.jsonl = Some(Box::new(BufWriter::new(file)));
    }
    if !args.quiet {
        analyses.sinks.listing = Some(Box::new(BufWriter::new(std::io::stdout())));
    }
    // The timeline needs only the entries: it sees them as they are read
    // (a tap of its own, installed before the probe's, which chains it).
    let timeline = Arc::new(Mutex::new(analyses.timeline.take()));
    if timeline_wanted {
        let seen = timeline.clone();
        session.tap_entries(Box::new(move |seq, entry| {
            if let Some(t) = &mut *seen.lock() {
                t.see(seq, entry);
            }
        }));
    }
    let probe = analyses.probe();
    let analyses = Arc::new(Mutex::new(analyses));
    if let Some(probe) = probe {
        let seen = analyses.clone();
        session.set_probe(
            probe,
            Box::new(move |seq, entry, findings| {
                let a = &mut *seen.lock();
                if let Some(s) = &mut a.syscalls {
                    s.see(seq, entry, findings);
                }
                if let Some(r) = &mut a.races {
                    r.see(seq, entry, findings);
                }
                for w in &mut a.watches {
                    w.see(seq, entry, findings, &mut a.sinks);
                }
            }),
        )?;
    }
    let start = std::time::Instant::now();
    let replayed = session.run_parallel(&stop);
    let outcome = session.outcome(start.elapsed());
    let mut analyses = analyses.lock();
    analyses.timeline = timeline.lock().take();
    if let Some(s) = &mut analyses.syscalls {
        s.finish();
    }
    report(
        args,
        &mut analyses,
        &symbols,
        session.footer(),
        &args.files.trace,
    )?;
    // A replay that failed part-way was analyzed up to there: what was
    // found is reported above; the error says where it stopped.
    if let Err(e) = replayed {
        eprintln!(
            "samsara: analyzed {} entries before the replay failed",
            outcome.entries
        );
        return Err(e.into());
    }
    // The analyses observed this replay: say whether it was the recording.
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

/// What the analyses that report at the end found (to the sinks), the
/// summaries (on stderr), and the timeline's files.
fn report(
    args: &AnalyzeArgs,
    analyses: &mut Analyses,
    symbols: &Symbols,
    footer: Option<&samsara_trace::Footer>,
    trace: &Path,
) -> Result<()> {
    let describe = |addr: u64| symbols.describe(addr);
    let Analyses {
        sinks,
        timeline,
        syscalls,
        races,
        watches,
    } = analyses;
    if let Some(out) = &mut sinks.listing {
        let mut listed = Ok(());
        if let Some(s) = syscalls {
            listed = listed.and_then(|()| s.listing(out));
        }
        if let Some(r) = races {
            listed = listed.and_then(|()| r.listing(out, &describe));
        }
        listed = listed.and_then(|()| out.flush());
        sinks.note(listed);
    }
    if let Some(out) = &mut sinks.jsonl {
        let mut written = Ok(());
        if let Some(t) = timeline {
            written = written.and_then(|()| t.jsonl(out));
        }
        if let Some(s) = syscalls {
            written = written.and_then(|()| s.jsonl(out));
        }
        if let Some(r) = races {
            written = written.and_then(|()| r.jsonl(out));
        }
        written = written.and_then(|()| out.flush());
        sinks.note(written);
    }
    if let Some(e) = sinks.error.take() {
        let what = match &args.jsonl {
            Some(path) => format!("writing the findings (stdout, {})", path.display()),
            None => "writing the findings to stdout".to_string(),
        };
        return Err(anyhow::Error::new(e).context(what));
    }
    let mut summary = Vec::new();
    if let Some(t) = timeline {
        summary.extend(t.summary());
    }
    if let Some(s) = syscalls {
        summary.extend(s.summary());
    }
    for w in watches.iter() {
        summary.extend(w.summary());
    }
    if let Some(r) = races {
        summary.extend(r.summary());
    }
    for line in summary {
        eprintln!("{line}");
    }
    if let Some(t) = timeline {
        if let Some(path) = &args.perfetto {
            write_file(path, |out| t.write_trace_events(out))?;
            eprintln!("timeline: trace events in {}", path.display());
        }
        if let Some(path) = &args.html {
            let title = trace.display().to_string();
            write_file(path, |out| {
                samsara_analysis::html::write_html(t, &title, footer, out)
            })?;
            eprintln!("timeline: page in {}", path.display());
        }
    }
    Ok(())
}

/// Creates `path` and writes it with `write`, naming the file in errors.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write(&mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyses_compose_and_watch_takes_its_range() {
        let words: Vec<String> = [
            "watch", "0x1000:4", "syscalls", "timeline", "races", "timeline",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            parse_wanted(&words).unwrap(),
            vec![
                Wanted::Watch("0x1000:4".into()),
                Wanted::Syscalls,
                Wanted::Timeline,
                Wanted::Races
            ]
        );
        assert!(parse_wanted(&["watch".to_string()]).is_err());
        assert!(parse_wanted(&["strace".to_string()]).is_err());
    }

    #[test]
    fn ranges_are_numbers_or_symbols_virtual_or_physical() {
        let none = Symbols::default();
        assert_eq!(
            parse_range("phys:0x80001000:8", &none).unwrap(),
            ProbeRange {
                start: 0x8000_1000,
                len: 8,
                physical: true
            }
        );
        assert_eq!(
            parse_range("4096", &none).unwrap(),
            ProbeRange {
                start: 4096,
                len: 8,
                physical: false
            }
        );
        assert!(parse_range("0x10:0", &none).is_err());
        assert!(parse_range("nosuch", &none).is_err());
        assert!(parse_range("0xffffffffffffffff:2", &none).is_err());
        assert!(parse_range("0x10:zz", &none).is_err());
    }
}
