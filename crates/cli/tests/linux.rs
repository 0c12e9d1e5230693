//! End-to-end: an unmodified SMP Linux (Debian stable's riscv64 kernel on
//! OpenSBI fw_dynamic, busybox initramfs) boots on `samsara run --linux`,
//! brings every hart online, runs /init and powers off cleanly.
//!
//! The files come from `scripts/setup-linux.sh`, which this test runs
//! itself when they are missing (a fresh CI machine); if that fails the
//! test fails and says why — it never skips. Each boot takes ~20-30 s on
//! the 2-core build host.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Run, SAMSARA, run_with_timeout, serial, workspace_root};

/// The test harness's own limit on one boot; samsara's `--timeout` below
/// it makes a hang end with samsara's message instead.
const BOOT_LIMIT: Duration = Duration::from_secs(400);
const SAMSARA_TIMEOUT_SECS: &str = "300";

/// linux/build with fw_dynamic.bin, Image and initramfs.cpio.gz, after
/// running scripts/setup-linux.sh if any is missing.
fn linux_dir() -> &'static PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = DIR.get_or_init(|| {
        let root = workspace_root();
        let dir = root.join("linux/build");
        let files = ["fw_dynamic.bin", "Image", "initramfs.cpio.gz"];
        let missing = || -> Vec<&str> {
            files
                .iter()
                .copied()
                .filter(|f| !dir.join(f).is_file())
                .collect()
        };
        // The script is idempotent and cheap when everything is there; it
        // also rebuilds the initramfs when linux/init changed.
        let ran = Command::new("bash")
            .arg(root.join("scripts/setup-linux.sh"))
            .current_dir(&root)
            .output();
        let still = missing();
        if still.is_empty() {
            return Ok(dir);
        }
        let how = match ran {
            Ok(out) => format!(
                "scripts/setup-linux.sh exited with {}:\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("scripts/setup-linux.sh could not be started: {e}"),
        };
        Err(format!(
            "the Linux boot files are missing from {} ({}) and fetching them failed; {how}\n\
             Run scripts/setup-linux.sh (as root or with sudo; it needs the Debian package mirror).",
            dir.display(),
            still.join(", ")
        ))
    });
    match result {
        Ok(dir) => dir,
        Err(msg) => panic!("{msg}"),
    }
}

/// `samsara run --linux` with `extra` arguments.
fn boot(extra: &[&str]) -> Run {
    let dir = linux_dir();
    let _one_at_a_time = serial();
    let mut cmd = Command::new(SAMSARA);
    cmd.args(["run", "--linux", "--timeout", SAMSARA_TIMEOUT_SECS])
        .args(extra)
        .env("SAMSARA_LINUX_DIR", dir);
    run_with_timeout(cmd, BOOT_LIMIT)
}

/// The kernel time stamp of the first console line containing `needle`.
fn stamp(console: &str, needle: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(needle))?;
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inner.trim().parse().ok()
}

#[track_caller]
fn assert_boots(harts: u32) {
    let n = harts.to_string();
    let run = boot(&["--harts", &n]);
    let console = run.stdout_str();
    let context = || format!("--- console\n{console}\n--- stderr\n{}", run.stderr);
    assert_eq!(
        run.code(),
        Some(0),
        "Linux at {harts} harts did not power off cleanly (status {})\n{}",
        run.status,
        context()
    );
    run.assert_no_panic();
    let summary = run.summary();
    assert_eq!(summary.ending, "guest powered off", "{}", context());
    assert_eq!(summary.per_hart.len(), harts as usize);
    let cpus = if harts == 1 { "CPU" } else { "CPUs" };
    let brought_up = format!("smp: Brought up 1 node, {harts} {cpus}");
    assert!(
        console.contains(&brought_up),
        "no '{brought_up}'\n{}",
        context()
    );
    let online = if harts == 1 {
        "0".to_owned()
    } else {
        format!("0-{}", harts - 1)
    };
    let cpu_line =
        format!("samsara-init: cpus: online {online}, nproc {harts}, /proc/cpuinfo {harts}");
    assert!(
        console.contains(&cpu_line),
        "no '{cpu_line}'\n{}",
        context()
    );
    for needle in [
        "samsara-init: uname: Linux",
        "samsara-init: workload done",
        "samsara-init: powering off",
        "reboot: Power down",
    ] {
        assert!(console.contains(needle), "no '{needle}'\n{}", context());
    }
    for bad in [
        "Oops",
        "BUG:",
        "WARNING:",
        "rcu_sched self-detected stall",
        "cannot load",
    ] {
        assert!(
            !console.contains(bad),
            "the console shows '{bad}'\n{}",
            context()
        );
    }
    // Every worker process must have hashed the same bytes.
    let sums: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("samsara-init: worker "))
        .collect();
    assert_eq!(sums.len(), harts as usize, "{}", context());
    eprintln!(
        "linux at {harts} harts: /init at {:.1} s kernel time, power-off at {:.1} s, {:.1} s wall, {} instructions",
        stamp(&console, "Run /init as init process").unwrap_or(f64::NAN),
        stamp(&console, "reboot: Power down").unwrap_or(f64::NAN),
        run.wall.as_secs_f64(),
        summary.total
    );
}

#[test]
fn linux_boots_on_one_hart_and_powers_off() {
    assert_boots(1);
}

#[test]
fn linux_boots_on_four_harts_with_every_cpu_online() {
    assert_boots(4);
}

#[test]
fn a_kernel_panic_ends_the_run_with_a_clear_message() {
    let run = boot(&["--append", "console=ttyS0 rdinit=/missing"]);
    assert_eq!(run.code(), Some(1), "{}\n{}", run.stdout_str(), run.stderr);
    // (`assert_no_panic` would trip over the word in samsara's own message.)
    assert!(
        !run.stderr.contains("thread '"),
        "the host panicked:\n{}",
        run.stderr
    );
    assert!(
        run.summary()
            .ending
            .starts_with("the guest kernel panicked: Kernel panic - not syncing"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_kernel_file_is_refused_with_a_reason() {
    let dir = linux_dir();
    let mut cmd = Command::new(SAMSARA);
    cmd.args(["run", "--linux", "--kernel"])
        .arg(dir.join("initramfs.cpio.gz"))
        .env("SAMSARA_LINUX_DIR", dir);
    let run = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    run.assert_no_panic();
    assert!(
        run.stderr.contains("is not a RISC-V Linux kernel Image")
            && run.stderr.contains("gzip-compressed"),
        "{}",
        run.stderr
    );
}
