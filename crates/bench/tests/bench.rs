//! End-to-end: `samsara-bench --suite machine` runs (once per workload
//! here) and reports the real instruction counts of the deterministic
//! single-hart guests; the record and parsec suites run on one small
//! workload at 2 harts and report verified replays in the expected
//! rows and columns. samsara-bench measures the `samsara` binary next to
//! it, which [`common::samsara`] builds first.

mod common;

#[test]
fn machine_suite_reports_every_workload() {
    // The suite finds guests/build under the current directory, and
    // samsara next to itself.
    common::guest_dir();
    common::samsara();
    let _one_at_a_time = common::serial();
    let mut cmd = std::process::Command::new(common::BENCH);
    cmd.current_dir(common::workspace_root()).args([
        "--suite",
        "machine",
        "--repeats",
        "1",
        "--csv",
    ]);
    let run = common::run_with_timeout(cmd, common::BENCH_TIMEOUT);
    run.assert_code(0);
    let out = run.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "guest,harts,instructions,samsara_run_s,samsara_mips,samsara_mips_per_hart,\
         speedup_vs_1_hart,samsara_process_s,qemu_process_s,qemu_implied_mips,samsara_over_qemu,\
         others_busy_pct",
        "{out}"
    );
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        keys,
        [
            ("hello", "1"),
            ("intbench", "1"),
            ("fpbench", "1"),
            ("parsum", "1"),
            ("parsum", "2"),
            ("parsum", "4")
        ],
        "{out}"
    );
    // Single-hart guests are deterministic: the counts are exact.
    assert_eq!(rows[1][2], "332757795", "{out}");
    assert_eq!(rows[2][2], "308040388", "{out}");
    assert_eq!(rows[3][2], "352338297", "{out}");
    let qemu = common::qemu_binary().is_some();
    for row in &rows {
        let mips: f64 = row[4].parse().expect("samsara MIPS is a number");
        assert!(mips > 0.0, "{out}");
        assert_eq!(!row[8].is_empty(), qemu, "QEMU column vs installed: {out}");
    }
    if !qemu {
        common::note("bench: qemu-system-riscv64 is not installed: QEMU columns were empty");
    }
    assert!(
        run.stderr.contains("bench: parsum at 4 hart(s), run 1/1"),
        "{}",
        run.stderr
    );
}

/// CSV tables: title and rows (the first row is the header).
type Tables = Vec<(String, Vec<Vec<String>>)>;

/// `samsara-bench ARGS --csv --charts DIR --samsara PATH` from the
/// workspace root: its CSV (split into tables at `# title` lines) and stderr.
fn bench_csv(args: &[&str], charts: &std::path::Path) -> (Tables, String) {
    common::guest_dir();
    let samsara = common::samsara();
    let _one_at_a_time = common::serial();
    let mut cmd = std::process::Command::new(common::BENCH);
    cmd.current_dir(common::workspace_root())
        .arg("--samsara")
        .arg(samsara)
        .args(args)
        .arg("--csv")
        .arg("--charts")
        .arg(charts);
    let run = common::run_with_timeout(cmd, common::BENCH_TIMEOUT);
    run.assert_code(0);
    let out = run.stdout_str();
    let mut tables: Tables = Vec::new();
    for line in out.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            tables.push((title.to_string(), Vec::new()));
        } else {
            if tables.is_empty() {
                tables.push((String::new(), Vec::new()));
            }
            let cells = split_csv(line);
            tables.last_mut().unwrap().1.push(cells);
        }
    }
    (tables, run.stderr)
}

/// One CSV line (quoted fields may hold commas).
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// The cell of `row` under column `key` of a table whose first row is the header.
fn cell<'a>(table: &'a [Vec<String>], row: usize, key: &str) -> &'a str {
    let col = table[0]
        .iter()
        .position(|k| k == key)
        .unwrap_or_else(|| panic!("no column {key} in {:?}", table[0]));
    &table[row][col]
}

fn number(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

#[test]
fn record_suite_measures_record_and_verified_replays() {
    let dir = common::scratch_dir("bench-record");
    let (tables, stderr) = bench_csv(
        &[
            "--suite",
            "record",
            "--workloads",
            "blackscholes",
            "--size",
            "test",
            "--harts",
            "2",
            "--repeats",
            "1",
        ],
        &dir,
    );
    assert_eq!(tables.len(), 1, "{tables:?}");
    let t = &tables[0].1;
    assert_eq!(
        t[0].join(","),
        "workload,harts,instructions,native_s,record_s,record_over_native,replay_s,\
         replay_serial_s,replay_over_record,replay_serial_over_record,trace_bytes,\
         trace_bytes_per_s,trace_bytes_per_minstr,commit_log_pct,squash_pct,mean_chunk,\
         device_end_pct,spin_end_pct,verified,others_busy_pct"
    );
    let keys: Vec<(&str, &str)> = t[1..].iter().map(|r| (&*r[0], &*r[1])).collect();
    assert_eq!(keys, [("blackscholes", "2"), ("geomean", "2")], "{t:?}");
    assert_eq!(cell(t, 1, "verified"), "yes (2/2)", "{t:?}");
    assert_eq!(cell(t, 2, "verified"), "yes", "{t:?}");
    // The guest is deterministic up to its harts' barrier spinning.
    assert!(number(cell(t, 1, "instructions")) > 60e6, "{t:?}");
    for key in [
        "native_s",
        "record_s",
        "replay_s",
        "replay_serial_s",
        "trace_bytes",
        "mean_chunk",
    ] {
        assert!(number(cell(t, 1, key)) > 0.0, "{key}: {t:?}");
    }
    let ratio = number(cell(t, 1, "record_over_native"));
    assert_eq!(ratio, number(cell(t, 2, "record_over_native")), "{t:?}");
    let commit = number(cell(t, 1, "commit_log_pct"));
    assert!((0.0..=100.0).contains(&commit), "{t:?}");
    assert_eq!(stderr.matches("VERIFIED").count(), 2, "{stderr}");
    assert!(stderr.contains("estimated"), "{stderr}");
    for file in [
        "record.md",
        "record.csv",
        "record.json",
        "record-overhead.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file} not written");
    }
}

#[test]
fn parsec_suite_compares_strategies_and_qemu() {
    let dir = common::scratch_dir("bench-parsec");
    let (tables, stderr) = bench_csv(
        &[
            "--suite",
            "parsec",
            "--workloads",
            "blackscholes",
            "--size",
            "test",
            "--harts",
            "2",
            "--repeats",
            "1",
        ],
        &dir,
    );
    let titles: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles[0].contains("recording overhead"), "{titles:?}");
    assert!(titles[1].contains("logs"), "{titles:?}");
    assert!(titles[2].contains("replay"), "{titles:?}");
    let qemu = common::qemu_binary().is_some();

    let overhead = &tables[0].1;
    let keys: Vec<(&str, &str)> = overhead[1..].iter().map(|r| (&*r[0], &*r[1])).collect();
    assert_eq!(
        keys,
        [("blackscholes", "2"), ("geomean", "2")],
        "{overhead:?}"
    );
    for key in [
        "native_s",
        "chunk_record_s",
        "chunk_slowdown",
        "serial_record_s",
        "serial_slowdown",
    ] {
        assert!(number(cell(overhead, 1, key)) > 0.0, "{key}: {overhead:?}");
    }
    // CREW: a column either way, measured once `record --strategy crew` exists.
    let crew = cell(overhead, 1, "crew_slowdown");
    assert!(
        crew == "n/a (not implemented)" || number(crew) > 0.0,
        "{overhead:?}"
    );
    assert_eq!(
        cell(overhead, 1, "qemu_rr_slowdown"),
        if qemu {
            "n/a: QEMU cannot record >1 CPU"
        } else {
            ""
        },
        "{overhead:?}"
    );
    assert_eq!(!cell(overhead, 1, "qemu_tcg_s").is_empty(), qemu);

    let logs = &tables[1].1;
    for key in [
        "chunk_log_bytes_per_s",
        "chunk_log_bytes_per_minstr",
        "serial_log_bytes_per_s",
        "serial_log_bytes_per_minstr",
        "chunk_mean_chunk",
        "serial_mean_quantum",
    ] {
        assert!(number(cell(logs, 1, key)) > 0.0, "{key}: {logs:?}");
    }
    assert!(number(cell(logs, 1, "chunk_squash_pct")) >= 0.0, "{logs:?}");

    let replay = &tables[2].1;
    assert_eq!(cell(replay, 1, "verified"), "yes (2/2)", "{replay:?}");
    assert!(number(cell(replay, 1, "replay_over_record")) > 0.0);
    assert!(number(cell(replay, 1, "replay_serial_over_record")) > 0.0);
    assert_eq!(stderr.matches("VERIFIED").count(), 2, "{stderr}");

    for file in [
        "parsec.md",
        "parsec.csv",
        "parsec.json",
        "parsec-overhead.svg",
        "parsec-log-rate.svg",
        "parsec-log-size.svg",
        "parsec-replay.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file} not written");
    }
    let svg = std::fs::read_to_string(dir.join("parsec-overhead.svg")).unwrap();
    assert!(
        svg.contains("blackscholes") && svg.contains("geomean"),
        "{svg}"
    );
    if qemu {
        let md = std::fs::read_to_string(dir.join("parsec.md")).unwrap();
        assert!(
            md.contains("QEMU CANNOT RECORD WITH MORE THAN ONE CPU"),
            "{md}"
        );
    }
}

#[test]
fn dry_run_prints_the_plan_and_its_estimate() {
    let dir = common::scratch_dir("bench-plan");
    let (tables, stderr) = bench_csv(&["--suite", "parsec", "--size", "bench", "--dry-run"], &dir);
    let plan = &tables[0].1;
    assert_eq!(
        plan[0].join(","),
        "step,repeat,workload,harts,run,estimated_s"
    );
    // One repeat at bench size; per workload 3 runs at 1 hart (native,
    // chunk record, replay: serial and crew have nothing to order there) and
    // 6 at 2 and 4 harts (native, three strategies, two replays), plus 4
    // with QEMU (TCG at each hart count, rr at 1).
    let per_workload = if common::qemu_binary().is_some() {
        19
    } else {
        15
    };
    assert_eq!(plan.len() - 1, 6 * per_workload, "{plan:?}");
    assert!(plan[1..].iter().all(|r| r[1] == "1"), "{plan:?}");
    assert!(stderr.contains("estimated"), "{stderr}");
    let total: f64 = plan[1..].iter().map(|r| number(&r[5])).sum();
    assert!(
        total < 30.0 * 60.0,
        "the default plan is estimated at {total} s"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "a dry run wrote files"
    );
}

#[test]
fn a_missing_samsara_binary_is_named_with_how_to_build_it() {
    let dir = common::scratch_dir("bench-no-samsara");
    let missing = dir.join("samsara");
    let mut cmd = std::process::Command::new(common::BENCH);
    cmd.arg("--samsara").arg(&missing);
    let run = common::run_with_timeout(cmd, common::BENCH_TIMEOUT);
    run.assert_code(2);
    assert!(
        run.stderr.contains(&missing.display().to_string())
            && run.stderr.contains("cargo build --release --bin samsara"),
        "{}",
        run.stderr
    );
    // Nor does a copy of samsara-bench without samsara beside it run.
    let lone = dir.join("samsara-bench");
    std::fs::copy(common::BENCH, &lone).expect("copying samsara-bench");
    let run = common::run_with_timeout(std::process::Command::new(&lone), common::BENCH_TIMEOUT);
    run.assert_code(2);
    assert!(
        run.stderr.contains(&missing.display().to_string())
            && run.stderr.contains("--samsara PATH"),
        "{}",
        run.stderr
    );
}
