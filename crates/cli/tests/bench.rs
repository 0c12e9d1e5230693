//! End-to-end: `samsara bench --suite machine` runs (once per workload
//! here) and reports the real instruction counts of the deterministic
//! single-hart guests.

mod common;

#[test]
fn machine_suite_reports_every_workload() {
    // The suite finds guests/build under the current directory.
    common::guest_dir();
    let mut cmd = std::process::Command::new(common::SAMSARA);
    cmd.current_dir(common::workspace_root()).args([
        "bench",
        "--suite",
        "machine",
        "--repeats",
        "1",
        "--csv",
    ]);
    let run = common::run_with_timeout(cmd, common::SAMSARA_TIMEOUT);
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
    assert_eq!(rows[1][2], "332757792", "{out}");
    assert_eq!(rows[2][2], "308040385", "{out}");
    assert_eq!(rows[3][2], "352338294", "{out}");
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
