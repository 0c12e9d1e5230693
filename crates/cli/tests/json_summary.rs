//! `--json` on `samsara run`, `record` and `replay`: the summary is one
//! JSON object on one line of stderr, stdout is still the guest's console,
//! and the figures are the ones the human summary gives.

mod common;

use std::ffi::OsString;

use samsara_engine::summary::{RecordSummary, ReplaySummary, RunSummary, from_stderr};

/// The one line of JSON on stderr (and nothing else on stderr).
#[track_caller]
fn json_line(run: &common::Run) -> &str {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}: stderr: {}", run.what, run.stderr);
    assert!(lines[0].starts_with('{'), "{}", run.stderr);
    lines[0]
}

/// `--cpu jit`: the same output and counts as the interpreter, and the
/// translator's work in the summary (human and JSON).
#[test]
fn the_translator_runs_a_guest_like_the_interpreter_and_reports_its_work() {
    let interp = common::run_guest(
        "intbench",
        1,
        &["--json".as_ref(), "--cpu".as_ref(), "interp".as_ref()],
    );
    let jit = common::run_guest(
        "intbench",
        1,
        &["--json".as_ref(), "--cpu".as_ref(), "jit".as_ref()],
    );
    interp.assert_code(0);
    jit.assert_code(0);
    assert_eq!(jit.stdout, interp.stdout, "the same console output");
    let i: RunSummary = from_stderr(json_line(&interp)).expect("the summary");
    let j: RunSummary = from_stderr(json_line(&jit)).expect("the summary");
    assert_eq!(j.instructions, i.instructions, "exact counts");
    assert_eq!(i.translator, None);
    let t = j.translator.as_ref().expect("the translator's counters");
    assert!(t.blocks > 0 && t.code_bytes > 0, "{t:?}");
    assert!(t.percent_translated > 50.0, "{t:?}");
    let human = common::run_guest("intbench", 1, &["--cpu".as_ref(), "jit".as_ref()]);
    human.assert_code(0);
    assert!(
        human.stderr.contains("samsara: translator: ")
            && human.stderr.contains("% of steps translated"),
        "{}",
        human.stderr
    );
    assert_eq!(human.summary().total, j.instructions);
}

#[test]
fn run_json_matches_the_human_line() {
    let human = common::run_guest("intbench", 1, &[]);
    human.assert_code(0);
    let json = common::run_guest("intbench", 1, &["--json".as_ref()]);
    json.assert_code(0);
    assert_eq!(
        json.stdout, human.stdout,
        "stdout stays the guest's console"
    );
    let h = human.summary();
    let j: RunSummary = from_stderr(json_line(&json)).expect("the summary");
    // A single-hart guest is deterministic: the counts are exact.
    assert_eq!(j.instructions_per_hart, h.per_hart);
    assert_eq!(j.instructions, h.total);
    assert_eq!(j.exit, h.ending);
    assert_eq!(j.status, 0);
    assert!(j.wall_seconds > 0.0);
    let mips = j.instructions as f64 / j.wall_seconds / 1e6;
    assert!((j.mips - mips).abs() < 1e-6 * mips, "{j:?}");
    // The human lines (the translator's, then the run's) are printed from
    // the same struct (up to the times).
    let expected = j.human();
    let lines: Vec<&str> = human.stderr.lines().collect();
    let printed = lines[lines.len().saturating_sub(expected.lines().count())..].join("\n");
    let untimed = |s: &str| {
        s.lines()
            .map(|l| l.split(" renewals)").next().unwrap_or(l))
            .map(|l| l.split("; wall").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(untimed(&expected), untimed(&printed), "{printed}");
    // An ending that is not a power-off.
    let limited = common::run_guest(
        "intbench",
        1,
        &[
            "--json".as_ref(),
            "--max-instructions".as_ref(),
            "1000".as_ref(),
        ],
    );
    limited.assert_code(124);
    let j: RunSummary = from_stderr(json_line(&limited)).expect("the summary");
    assert_eq!(j.status, 124);
    assert_eq!(j.instructions, 1000);
    assert!(j.exit.contains("instruction limit"), "{j:?}");
}

#[test]
fn record_and_replay_json_match_the_human_lines() {
    let dir = common::scratch_dir("json-summary");
    let trace = dir.join("parsum.trace");
    let image = common::guest("parsum");
    let _one_at_a_time = common::serial();
    let record = common::samsara([
        OsString::from("record"),
        image.clone().into(),
        "--harts".into(),
        "2".into(),
        "-o".into(),
        trace.clone().into(),
        "--json".into(),
    ]);
    record.assert_code(0);
    let r: RecordSummary = from_stderr(json_line(&record)).expect("the summary");
    assert!(!record.stdout.is_empty(), "the guest's output is on stdout");
    assert_eq!(r.trace, trace.display().to_string());
    assert_eq!((r.harts, r.status), (2, 0));
    assert_eq!(r.exit, "guest powered off");
    assert_eq!(r.instructions, r.instructions_per_hart.iter().sum::<u64>());
    // The trace agrees: its size, entries, counts and squashes.
    let inspected = common::samsara([
        OsString::from("inspect"),
        trace.clone().into(),
        "--json".into(),
    ]);
    inspected.assert_code(0);
    let i: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(i["file_bytes"].as_u64(), Some(r.trace_bytes));
    assert_eq!(i["entries"].as_u64(), Some(r.entries));
    assert_eq!(i["squashes"].as_u64(), Some(r.squashes));
    assert_eq!(
        i["instructions_per_hart"],
        serde_json::json!(r.instructions_per_hart)
    );
    let chunks: u64 = i["chunks_per_hart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(chunks, r.chunks);
    let wall = i["record_wall_seconds"].as_f64().unwrap();
    assert!((wall - r.wall_seconds).abs() < 1e-6, "{wall} vs {r:?}");
    // The human lines of the same figures, as `record` without --json prints them.
    let lines = r.human();
    assert!(
        lines[0].starts_with(&format!(
            "samsara: recorded 2 harts: guest powered off; {} instructions in {:.3} s",
            r.instructions, r.wall_seconds
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].contains(&format!(": {} bytes,", r.trace_bytes)),
        "{lines:?}"
    );

    for serial in [false, true] {
        let mut args: Vec<OsString> = vec!["replay".into(), trace.clone().into()];
        if serial {
            args.push("--serial".into());
        }
        let human = common::samsara(args.clone());
        human.assert_code(0);
        args.push("--json".into());
        let json = common::samsara(args);
        json.assert_code(0);
        assert_eq!(
            json.stdout, human.stdout,
            "the regenerated output on stdout"
        );
        let p: ReplaySummary = from_stderr(json_line(&json)).expect("the summary");
        assert!(p.verified && p.complete && p.mismatches.is_empty(), "{p:?}");
        assert_eq!(
            (p.serial, p.status, p.partial.as_deref()),
            (serial, 0, None)
        );
        assert_eq!(p.entries, r.entries);
        assert_eq!(p.instructions_per_hart, r.instructions_per_hart);
        assert_eq!(p.output_bytes, human.stdout.len() as u64);
        let mode = if serial { "serially" } else { "in parallel" };
        let first = human.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "samsara: replayed {} entries {mode}: {} instructions in ",
                p.entries, p.instructions
            )),
            "{}",
            human.stderr
        );
        assert!(human.stderr.contains("VERIFIED"), "{}", human.stderr);
        // The human lines, from the struct, have the same shape.
        let lines = p.human(false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].starts_with("samsara: VERIFIED"), "{lines:?}");
        assert_eq!(
            human.stderr.lines().nth(1),
            Some(&*lines[1]),
            "the VERIFIED line"
        );
    }
    // --quiet with --json: no guest output, the summary still printed.
    let quiet = common::samsara([
        OsString::from("replay"),
        trace.clone().into(),
        "--quiet".into(),
        "--json".into(),
    ]);
    quiet.assert_code(0);
    assert!(quiet.stdout.is_empty());
    let q: ReplaySummary = from_stderr(json_line(&quiet)).expect("the summary");
    assert!(q.verified);
}
