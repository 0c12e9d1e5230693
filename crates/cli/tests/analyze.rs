//! `samsara analyze`: analyses observe a verified replay.

mod common;

use std::collections::BTreeMap;

use common::{instructions_per_hart, record_with_summary, samsara, scratch_dir, serial};

/// The timeline of a 4-hart recording has 4 hart tracks whose entries sum
/// to the recorded instruction counts, on the instruction clock, and one
/// slice per entry on the global order; the replay under it verifies.
#[test]
fn the_timeline_of_a_four_hart_recording_has_four_tracks_summing_to_the_recording() {
    let _guard = serial();
    let dir = scratch_dir("analyze-timeline");
    let (trace, summary, _) = record_with_summary(&dir, "racy_counter", 4);
    let per_hart = instructions_per_hart(&summary);
    let entries = summary["entries"].as_u64().unwrap();
    let events = dir.join("t.json");
    let jsonl = dir.join("t.jsonl");
    analyze_verified(&[
        trace.as_os_str(),
        std::ffi::OsStr::new("timeline"),
        std::ffi::OsStr::new("--perfetto"),
        events.as_os_str(),
        std::ffi::OsStr::new("--jsonl"),
        jsonl.as_os_str(),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&events).unwrap()).unwrap();
    let mut instructions: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ordered = 0;
    for e in doc["traceEvents"].as_array().unwrap() {
        if e["ph"] != "X" {
            continue;
        }
        match e["pid"].as_u64() {
            Some(2) => {
                *instructions.entry(e["tid"].as_u64().unwrap()).or_default() +=
                    e["dur"].as_u64().unwrap()
            }
            Some(1) if e["cat"] != "dma" => ordered += 1,
            _ => {}
        }
    }
    assert_eq!(instructions.len(), 4, "one track per hart");
    assert_eq!(instructions.values().copied().collect::<Vec<_>>(), per_hart);
    assert_eq!(ordered, entries, "one slice per entry on the global order");
    let rows = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(rows.lines().count() as u64, entries);
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
}

/// `samsara analyze ARGS`, which must succeed on a verified replay.
fn analyze_verified<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> common::Run {
    let mut all: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref()];
    all.extend(args.iter().map(AsRef::as_ref));
    let analyzed = samsara(all);
    analyzed.assert_no_panic();
    assert_eq!(analyzed.code(), Some(0), "{}", analyzed.stderr);
    assert!(
        analyzed.stderr.contains("replay VERIFIED"),
        "{}",
        analyzed.stderr
    );
    analyzed
}

/// Records `guest` at 4 harts into `dir`; returns the trace and what the
/// guest printed.
fn record_four_harts(dir: &std::path::Path, guest_name: &str) -> (std::path::PathBuf, String) {
    let (trace, _, printed) = record_with_summary(dir, guest_name, 4);
    (trace, printed)
}

/// The JSON lines of `path` whose `analysis` is `which`.
fn findings(path: &std::path::Path, which: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["analysis"] == which)
        .collect()
}

/// One replay, three analyses. `watch racy` lists every write of the
/// unsynchronised counter — the start code's clearing of .bss, then one
/// per iteration of each hart — in the recording's order: each write's old
/// value is the previous one's new value, and the last new value is the
/// total the guest printed. `races` reports the counter's read/write and
/// write/write races between harts, and the timeline has its 4 tracks.
#[test]
fn watch_races_and_timeline_compose_on_the_racy_counter() {
    let _guard = serial();
    let dir = scratch_dir("analyze-compose");
    let (trace, output) = record_four_harts(&dir, "racy_small");
    let number = |key: &str| -> u64 {
        let at = output.find(&format!("{key}=")).expect(&output) + key.len() + 1;
        output[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (iterations, printed) = (number("iters"), number("racy"));
    let jsonl = dir.join("all.jsonl");
    let analyzed = analyze_verified(&[
        trace.as_os_str(),
        std::ffi::OsStr::new("watch"),
        std::ffi::OsStr::new("racy"),
        std::ffi::OsStr::new("races"),
        std::ffi::OsStr::new("timeline"),
        std::ffi::OsStr::new("--sharing"),
        std::ffi::OsStr::new("--jsonl"),
        jsonl.as_os_str(),
    ]);

    let writes = findings(&jsonl, "watch");
    assert!(writes.iter().all(|w| w["kind"] == "write" && w["len"] == 8));
    // The .bss clear, then 4 harts' iterations.
    assert_eq!(writes.len() as u64, 1 + 4 * iterations);
    assert_eq!(writes[0]["new"], 0);
    let increment_pc = &writes[1]["pc"];
    assert!(writes[1..].iter().all(|w| &w["pc"] == increment_pc));
    for pair in writes.windows(2) {
        assert_eq!(
            pair[1]["old"], pair[0]["new"],
            "{} then {}",
            pair[0], pair[1]
        );
    }
    assert_eq!(writes.last().unwrap()["new"], printed);
    let per_hart: BTreeMap<u64, usize> = writes[1..].iter().fold(BTreeMap::new(), |mut m, w| {
        *m.entry(w["hart"].as_u64().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        per_hart.values().copied().collect::<Vec<_>>(),
        vec![iterations as usize; 4]
    );

    // Alone, on the block translator (races made the harts interpret):
    // the same accesses.
    let alone = dir.join("watch.jsonl");
    let watched = samsara([
        "analyze".as_ref(),
        trace.as_os_str(),
        "watch".as_ref(),
        "racy".as_ref(),
        "-q".as_ref(),
        "--cpu".as_ref(),
        "jit".as_ref(),
        "--jsonl".as_ref(),
        alone.as_os_str(),
    ]);
    assert_eq!(watched.code(), Some(0), "{}", watched.stderr);
    assert!(findings(&alone, "watch") == writes, "watch alone differs");

    let listing = analyzed.stdout_str();
    let races = findings(&jsonl, "races");
    assert!(!races.is_empty(), "{listing}");
    for r in &races {
        assert_ne!(r["first"]["hart"], r["second"]["hart"], "{r}");
        assert!(
            r["first"]["kind"] == "write" || r["second"]["kind"] == "write",
            "{r}"
        );
    }
    // The counter's read/write and write/write races; never the AMO's
    // total (atomic accesses do not race, they synchronise).
    let reported: Vec<&str> = listing.lines().filter(|l| l.starts_with("race:")).collect();
    let on_racy: Vec<&&str> = reported.iter().filter(|l| l.contains("(racy)")).collect();
    assert!(
        on_racy
            .iter()
            .any(|l| l.contains("write by") && l.contains("read by")),
        "{reported:#?}"
    );
    assert!(
        on_racy
            .iter()
            .any(|l| !l.contains("read by") && l.matches("write by").count() == 2),
        "{reported:#?}"
    );
    assert!(
        !reported.iter().any(|l| l.contains("atomic_total")),
        "{reported:#?}"
    );
    assert!(!findings(&jsonl, "sharing").is_empty());
    let entries = findings(&jsonl, "timeline");
    let last: u64 = analyzed
        .stderr
        .split("analyzed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect(&analyzed.stderr);
    assert_eq!(
        entries.len() as u64,
        last,
        "one timeline object per entry, in the same file"
    );
}

/// The racy message passing guest races on its data and its flag; the
/// lock-protected critical sections of spin_contend race on nothing (its
/// lock word's plain spin loads against the unlock's store may show, and
/// its seqlock's reads of the page).
#[test]
fn races_are_found_in_racy_message_passing_and_not_in_locked_data() {
    let _guard = serial();
    let dir = scratch_dir("analyze-races");
    let listing = |trace: &std::path::Path| {
        let analyzed = samsara(["analyze".as_ref(), trace.as_os_str(), "races".as_ref()]);
        analyzed.assert_no_panic();
        assert_eq!(analyzed.code(), Some(0), "{}", analyzed.stderr);
        analyzed.stdout_str()
    };
    let (mp, _) = record_four_harts(&dir, "racy_mp");
    let found = listing(&mp);
    for name in ["(data)", "(flag)", "(racy_slot)"] {
        assert!(
            found
                .lines()
                .any(|l| l.starts_with("race:") && l.contains(name)),
            "no race on {name}:\n{found}"
        );
    }
    assert!(!found.contains("(atomic_slot)"), "{found}");
    // Its critical sections (`critical`) race with nothing; its seqlock
    // phase, whose readers copy the page while the writer may write it,
    // may race, and only there.
    let (locked, _) = record_four_harts(&dir, "spin_small");
    let found = listing(&locked);
    for line in found.lines().filter(|l| l.starts_with("race:")) {
        assert!(
            !line.contains("(critical"),
            "a critical section races: {line}"
        );
        if line.contains("(page") || line.contains("(owner)") {
            assert_eq!(line.matches("(seqlock_phase").count(), 2, "{line}");
        }
    }
}

/// Bad requests are refused before the replay, naming what is wrong.
#[test]
fn analyses_refuse_what_they_cannot_do() {
    let _guard = serial();
    let dir = scratch_dir("analyze-refuse");
    let (trace, _) = record_four_harts(&dir, "hello");
    for (args, says) in [
        (
            vec!["watch", "no_such_symbol"],
            "neither a number nor a symbol",
        ),
        (vec!["syscalls"], "not a Linux recording"),
        (vec!["watch"], "which bytes"),
        (vec!["strace"], "unknown analysis"),
        (
            vec!["races", "--perfetto", "x.json"],
            "add the `timeline` analysis",
        ),
    ] {
        let mut all = vec!["analyze".to_string(), trace.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let run = samsara(&all);
        run.assert_no_panic();
        assert_ne!(run.code(), Some(0), "{args:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

/// `syscalls` on a 4-hart Linux recording: the workload's `write`s carry
/// the bytes the console shows, made by the processes that print them
/// (pid and name read from the kernel), and every process ends with
/// `exit_group`.
#[test]
fn syscalls_of_a_linux_recording_show_the_console_writes_and_exits() {
    let dir = common::linux_dir();
    let work = scratch_dir("analyze-syscalls");
    let _guard = serial();
    let trace = work.join("linux.trace");
    let mut rec = std::process::Command::new(common::SAMSARA);
    rec.args([
        "record",
        "--linux",
        "--harts",
        "4",
        "--timeout",
        "300",
        "-o",
    ])
    .arg(&trace)
    .env("SAMSARA_LINUX_DIR", dir);
    let rec = common::run_with_timeout(rec, common::SAMSARA_TIMEOUT);
    assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
    let console = rec.stdout_str();
    let jsonl = work.join("sys.jsonl");
    let analyzed = samsara([
        "analyze".as_ref(),
        trace.as_os_str(),
        "syscalls".as_ref(),
        "--jsonl".as_ref(),
        jsonl.as_os_str(),
    ]);
    analyzed.assert_no_panic();
    assert_eq!(analyzed.code(), Some(0), "{}", analyzed.stderr);
    let calls = findings(&jsonl, "syscalls");
    let written: String = calls
        .iter()
        .filter(|c| c["name"] == "write" && c["args"][0] == 1)
        .map(|c| c["data"].as_str().unwrap().to_string())
        .collect();
    let user_lines: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("samsara-init:"))
        .collect();
    assert!(user_lines.len() >= 6, "{console}");
    for line in &user_lines {
        assert!(
            written.contains(&format!("{line}\n")),
            "no write of {line:?}; written to fd 1:\n{written}"
        );
    }
    let workers: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| {
            c["name"] == "write"
                && c["data"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("samsara-init: worker"))
        })
        .collect();
    assert_eq!(workers.len(), 4, "one line per worker");
    for w in &workers {
        assert_eq!(w["comm"], "init", "{w}");
        assert!(w["pid"].as_u64().unwrap() > 1, "a worker is a child: {w}");
        assert_eq!(w["ret"], 57, "{w}");
    }
    let first = calls
        .iter()
        .find(|c| c["data"] == "samsara-init: reached /init\n")
        .expect("/init's first line");
    assert_eq!(first["pid"], 1, "{first}");
    let exits: Vec<&serde_json::Value> =
        calls.iter().filter(|c| c["name"] == "exit_group").collect();
    assert!(exits.len() >= 4, "{} exit_group calls", exits.len());
    assert!(
        exits.iter().all(|e| e["ret"].is_null()),
        "exit_group does not return"
    );
    for w in &workers {
        assert!(
            exits
                .iter()
                .any(|e| e["pid"] == w["pid"] && e["seq"].as_u64() > w["seq"].as_u64()),
            "worker {} exits: {w}",
            w["pid"]
        );
    }
    let harts: std::collections::BTreeSet<u64> =
        calls.iter().map(|c| c["hart"].as_u64().unwrap()).collect();
    assert!(harts.len() > 1, "calls on several harts: {harts:?}");
}
