//! Crash consistency (issue 6): `samsara record` killed with SIGKILL at
//! random moments leaves a trace that `inspect` reports as partial and that
//! `replay` replays and checks up to its last complete block, saying where
//! it stopped; SIGINT stops the guest and finishes the trace, footer and
//! final digest included.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{Run, SAMSARA, guest, samsara, scratch_dir, serial};

/// A recording of the endless `soak` guest on 2 harts, started.
struct Recording {
    child: Child,
    trace: PathBuf,
    stdout: std::thread::JoinHandle<Vec<u8>>,
}

fn start(dir: &Path, tag: &str) -> Recording {
    let trace = dir.join(format!("{tag}.trace"));
    let mut child = Command::new(SAMSARA)
        .args(["record", "--harts", "2", "--check-every", "2", "-o"])
        .arg(&trace)
        .arg(guest("soak"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting samsara record");
    let mut out = child.stdout.take().expect("piped stdout");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    // Wait until the header is on disk: from then on the recording runs.
    let t0 = Instant::now();
    while std::fs::metadata(&trace).map_or(0, |m| m.len()) < 28 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "samsara record wrote no trace header within 30 s"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("samsara record exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Recording {
        child,
        trace,
        stdout,
    }
}

/// A small xorshift generator; the seed is printed so a failure can be
/// re-run with SAMSARA_CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("SAMSARA_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("crash_consistency: SAMSARA_CRASH_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `replayed N entries` from replay's report.
fn replayed_entries(run: &Run) -> u64 {
    run.stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("samsara: replayed ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `replayed N entries` line:\n{}", run.stderr))
}

/// The byte offset named in a partial-trace report.
fn stop_offset(text: &str) -> u64 {
    let at = text
        .rfind("byte offset ")
        .unwrap_or_else(|| panic!("no byte offset named in:\n{text}"));
    text[at + "byte offset ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `byte offset` in:\n{text}"))
}

#[test]
fn sigkill_at_random_moments_leaves_a_partial_trace_that_replays() {
    let _one_at_a_time = serial();
    let dir = scratch_dir("sigkill");
    let mut rng = Rng::new();
    for round in 0..4 {
        let mut rec = start(&dir, &format!("kill{round}"));
        // The first round anywhere in the first 0.3 s (possibly before the
        // first block), the others 0.3-1.3 s in (between or inside blocks).
        let ms = if round == 0 { 0 } else { 300 } + rng.below(if round == 0 { 300 } else { 1000 });
        std::thread::sleep(Duration::from_millis(ms));
        rec.child.kill().expect("SIGKILL");
        rec.child.wait().expect("reaping the recorder");
        let recorded_out = rec.stdout.join().unwrap_or_default();
        let len = std::fs::metadata(&rec.trace).expect("trace exists").len();

        let inspect = samsara([Path::new("inspect"), &rec.trace]);
        inspect.assert_no_panic().assert_code(3);
        let report = inspect.stdout_str();
        assert!(
            report.contains("status: PARTIAL"),
            "round {round}: inspect does not report a partial trace:\n{report}"
        );
        assert!(stop_offset(&report) <= len, "round {round}: {report}");

        let replay = samsara([Path::new("replay"), &rec.trace]);
        replay.assert_no_panic().assert_code(3);
        assert!(
            replay.stderr.contains("samsara: partial trace: ")
                && replay
                    .stderr
                    .contains("replayed and checked every complete entry"),
            "round {round}: replay does not say it stopped early:\n{}",
            replay.stderr
        );
        let offset = stop_offset(&replay.stderr);
        assert!(
            offset <= len,
            "round {round}: stopped past the end: {}",
            replay.stderr
        );
        let entries = replayed_entries(&replay);
        assert!(
            report.contains(&format!("entries: {entries};")),
            "round {round}: replay ran {entries} entries, inspect says otherwise:\n{report}"
        );
        // The replayed guest printed a prefix of what the recording printed.
        assert!(
            recorded_out.starts_with(&replay.stdout),
            "round {round}: replayed output is not a prefix of the recorded output\n\
             --- recorded\n{}\n--- replayed\n{}",
            String::from_utf8_lossy(&recorded_out),
            replay.stdout_str()
        );
        eprintln!(
            "crash_consistency: round {round}: {len} bytes, {entries} entries replayed, stopped at byte {offset}"
        );
    }
}

#[test]
fn sigint_finishes_the_trace_with_its_footer() {
    let _one_at_a_time = serial();
    let dir = scratch_dir("sigint");
    let mut rng = Rng::new();
    let mut rec = start(&dir, "int");
    std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
    let pid = rec.child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status();
    assert!(
        matches!(sent, Ok(s) if s.success()),
        "kill -INT {pid}: {sent:?}"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = rec.child.try_wait().expect("waiting for the recorder") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = rec.child.kill();
            panic!("samsara record did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let recorded_out = rec.stdout.join().unwrap_or_default();
    assert_eq!(status.code(), Some(130), "record after SIGINT: {status}");

    let inspect = samsara([Path::new("inspect"), &rec.trace]);
    inspect.assert_no_panic().assert_code(0);
    assert!(
        inspect
            .stdout_str()
            .contains("status: complete; interrupted"),
        "{}",
        inspect.stdout_str()
    );
    let replay = samsara([Path::new("replay"), &rec.trace]);
    replay.assert_no_panic().assert_code(0);
    assert!(
        replay.stderr.contains("samsara: VERIFIED"),
        "{}",
        replay.stderr
    );
    assert_eq!(replay.stdout, recorded_out, "replayed output differs");
}
