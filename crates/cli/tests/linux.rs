//! End-to-end: an unmodified SMP Linux (Debian stable's riscv64 kernel on
//! OpenSBI fw_dynamic, busybox initramfs) boots on `samsara run --linux`,
//! brings every hart online, runs /init's workload (at 2 and 4 harts a
//! PARSEC-like program on as many threads) and powers off cleanly; `samsara
//! record` of such a boot with disk I/O and typed input replays verified,
//! and a recording that ends in a panic, at the timeout or at the
//! instruction limit leaves a trace that replays verified.
//!
//! The files come from `scripts/setup-linux.sh`, which this test runs
//! itself when they are missing (a fresh CI machine); if that fails the
//! test fails and says why — it never skips. Each boot takes ~20-30 s on
//! the 2-core build host.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Run, SAMSARA, guest, linux_dir, run_typing, run_with_timeout, scratch_dir, serial};

/// The test harness's own limit on one boot; samsara's `--timeout` below
/// it makes a hang end with samsara's message instead.
const BOOT_LIMIT: Duration = Duration::from_secs(400);
const SAMSARA_TIMEOUT_SECS: &str = "300";

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

/// The kernel command line that runs PARSEC-like `program` (and `extra`).
fn append_running(program: &str, extra: &str) -> String {
    format!("console=ttyS0 earlycon=sbi samsara.run={program} {extra}")
}

/// Boots at `harts` and checks the boot; `program`: /init runs that
/// PARSEC-like program on every CPU instead of its default workload.
#[track_caller]
fn assert_boots(harts: u32, program: Option<&str>) {
    let n = harts.to_string();
    let append = program.map(|p| append_running(p, ""));
    let mut args = vec!["--harts", &n];
    // The 4-hart boot runs on the block translator.
    if harts == 4 {
        args.extend(["--cpu", "jit"]);
    }
    if let Some(append) = &append {
        args.extend(["--append", append]);
    }
    let run = boot(&args);
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
    match program {
        Some(p) => {
            let ran = format!(
                "samsara-init: running {p} (test size, {harts} threads) from /bin/parsec-test"
            );
            let passed = format!("samsara-init: {p} exited with status 0");
            for needle in [&ran, &passed] {
                assert!(console.contains(needle), "no '{needle}'\n{}", context());
            }
            assert!(
                console
                    .lines()
                    .any(|l| l.starts_with(p) && l.trim_end().ends_with("PASS")),
                "{p} did not print its PASS line\n{}",
                context()
            );
        }
        None => {
            // One worker process per CPU.
            let sums: Vec<&str> = console
                .lines()
                .filter(|l| l.starts_with("samsara-init: worker "))
                .collect();
            assert_eq!(sums.len(), harts as usize, "{}", context());
        }
    }
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
    assert_boots(1, None);
}

#[test]
fn linux_boots_on_two_harts_and_runs_a_parsec_program_on_two_threads() {
    assert_boots(2, Some("freqmine"));
}

#[test]
fn linux_boots_on_four_harts_and_runs_a_parsec_program_on_four_threads() {
    assert_boots(4, Some("swaptions"));
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

/// `samsara ARGS` (with the Linux files), one at a time; with `typing`,
/// the text is typed once stdout shows the prompt.
fn samsara_linux(args: &[&std::ffi::OsStr], typing: Option<(&str, &str)>) -> Run {
    let dir = linux_dir();
    let _one_at_a_time = serial();
    let mut cmd = Command::new(SAMSARA);
    cmd.args(args).env("SAMSARA_LINUX_DIR", dir);
    run_typing(cmd, BOOT_LIMIT, typing)
}

/// Replays `trace` (stdin closed) and checks it verifies, with the very
/// console output of the recording.
#[track_caller]
fn assert_replays(trace: &std::path::Path, recording: &Run) {
    let replay = samsara_linux(&["replay".as_ref(), trace.as_os_str()], None);
    assert_eq!(
        replay.code(),
        Some(0),
        "replay of {} failed\n--- stderr\n{}",
        trace.display(),
        replay.stderr
    );
    replay.assert_no_panic();
    assert!(replay.stderr.contains("VERIFIED"), "{}", replay.stderr);
    assert!(
        replay.stdout == recording.stdout,
        "the replayed console differs from the recorded one\n--- recorded\n{}\n--- replayed\n{}",
        recording.stdout_str(),
        replay.stdout_str()
    );
    eprintln!(
        "{}: recorded in {:.1} s, replayed in {:.1} s",
        trace.display(),
        recording.wall.as_secs_f64(),
        replay.wall.as_secs_f64()
    );
}

/// The whole boot at 4 harts recorded and replayed: /init reads the
/// PARSEC-like programs from the virtio disk (a tar), runs x264 from it on
/// 4 threads, writes its output to the disk and reads it back; then a
/// shell takes typed input. Replay reloads firmware, kernel and initrd from
/// the recorded paths, needs neither the disk nor stdin, and refuses a
/// wrong initrd.
#[test]
fn linux_with_disk_io_and_typed_input_records_and_replays_on_four_harts() {
    let dir = linux_dir();
    let work = scratch_dir("linux-rr");
    let disk = work.join("disk.img");
    std::fs::copy(dir.join("disk.img"), &disk).expect("copying the disk image");
    let disk_before = std::fs::read(&disk).expect("reading the disk copy");
    let trace = work.join("linux.trace");
    let append = append_running("x264", "samsara.shell");
    // Recorded on the block translator; `assert_replays` replays it on
    // the interpreter.
    let rec = samsara_linux(
        &[
            "record".as_ref(),
            "--cpu".as_ref(),
            "jit".as_ref(),
            "--linux".as_ref(),
            "--harts".as_ref(),
            "4".as_ref(),
            "--timeout".as_ref(),
            SAMSARA_TIMEOUT_SECS.as_ref(),
            "--disk".as_ref(),
            disk.as_os_str(),
            "--append".as_ref(),
            append.as_ref(),
            "-o".as_ref(),
            trace.as_os_str(),
        ],
        Some(("~ # ", "echo typed $((6 * 7))\nexit\n")),
    );
    let console = rec.stdout_str();
    let context = || format!("--- console\n{console}\n--- stderr\n{}", rec.stderr);
    assert_eq!(rec.code(), Some(0), "{}", context());
    rec.assert_no_panic();
    assert!(
        rec.stderr.contains("recorded 4 harts: guest powered off"),
        "{}",
        context()
    );
    // x264 under Linux computes what the bare-metal guest computes.
    let bare = common::samsara([
        "run".as_ref(),
        guest("x264-test").as_os_str(),
        "--harts".as_ref(),
        "4".as_ref(),
    ]);
    let result = bare
        .stdout_str()
        .lines()
        .find(|l| l.starts_with("x264: frames="))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("bare-metal x264 printed no result:\n{}", bare.stdout_str()));
    for needle in [
        "smp: Brought up 1 node, 4 CPUs",
        "samsara-init: disk: read parsec-bench parsec-test from /dev/vda",
        "samsara-init: running x264 (test size, 4 threads) from /disk/parsec-test",
        &result,
        "samsara-init: x264 exited with status 0",
        "samsara-init: disk: wrote the output at sector",
        "typed 42",
        "reboot: Power down",
    ] {
        assert!(console.contains(needle), "no '{needle}'\n{}", context());
    }
    assert_eq!(
        std::fs::read(&disk).expect("reading the disk copy"),
        disk_before,
        "recording modified the user's disk image"
    );

    // The header names what was booted; the disk's DMA is in the trace.
    let inspect = samsara_linux(
        &["inspect".as_ref(), "--json".as_ref(), trace.as_os_str()],
        None,
    );
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}\n{}", inspect.stdout_str()));
    let header = &json["header"];
    for (key, file) in [("kernel", "Image"), ("initrd", "initramfs.cpio.gz")] {
        let path = header[key]["path"].as_str().unwrap_or_default();
        assert!(path.ends_with(file), "header {key}: {}", header[key]);
        assert_eq!(header[key]["blake3"].as_str().map(str::len), Some(64));
    }
    assert_eq!(header["bootargs"].as_str(), Some(append.as_str()));
    assert_eq!(
        header["disk_image"]["len"].as_u64(),
        Some(disk_before.len() as u64)
    );
    assert!(
        json["dma"]["bytes"].as_u64().unwrap_or(0) > 0,
        "no DMA in the trace: {}",
        json["dma"]
    );

    assert_replays(&trace, &rec);
    let wrong = samsara_linux(
        &[
            "replay".as_ref(),
            trace.as_os_str(),
            "--initrd".as_ref(),
            dir.join("cmdline").as_os_str(),
        ],
        None,
    );
    assert_eq!(wrong.code(), Some(2), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("initrd") && wrong.stderr.contains("does not match the trace"),
        "{}",
        wrong.stderr
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// A recording that ends on a kernel panic, at the wall-clock timeout or
/// at the instruction limit says so like `run`, and its trace is complete
/// and replays verified.
#[test]
fn a_linux_recording_ending_in_a_panic_timeout_or_instruction_limit_replays() {
    let work = scratch_dir("linux-endings");
    let cases: [(&str, &[&str], i32, &str); 3] = [
        (
            "panic",
            &["--append", "console=ttyS0 rdinit=/missing"],
            1,
            "the guest kernel panicked: Kernel panic - not syncing",
        ),
        (
            "timeout",
            &["--timeout", "2"],
            124,
            "stopped at the timeout",
        ),
        (
            "limit",
            &["--max-instructions", "30000000"],
            124,
            "stopped at the instruction limit",
        ),
    ];
    for (name, extra, code, ending) in cases {
        let trace = work.join(format!("{name}.trace"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "record".as_ref(),
            "--linux".as_ref(),
            "--harts".as_ref(),
            "2".as_ref(),
            "-o".as_ref(),
            trace.as_os_str(),
        ];
        args.extend(extra.iter().copied().map(std::ffi::OsStr::new));
        let rec = samsara_linux(&args, None);
        assert_eq!(rec.code(), Some(code), "{name}: {}", rec.stderr);
        assert!(
            !rec.stderr.contains("thread '"),
            "{name}: the host panicked:\n{}",
            rec.stderr
        );
        assert!(
            rec.stderr.contains(&format!("recorded 2 harts: {ending}")),
            "{name}: {}",
            rec.stderr
        );
        assert_replays(&trace, &rec);
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The CREW baseline records a paging guest: Linux at 2 harts, perturbed,
/// with page-table walks that need page rights and refused attempts that
/// set A/D bits first. Replay repeats each refused attempt and verifies,
/// with registers and written pages checked after every entry.
#[test]
fn linux_records_under_the_crew_baseline_and_replays() {
    let work = scratch_dir("linux-crew");
    let trace = work.join("crew.trace");
    let rec = samsara_linux(
        &[
            "record".as_ref(),
            "--linux".as_ref(),
            "--harts".as_ref(),
            "2".as_ref(),
            "--strategy".as_ref(),
            "crew".as_ref(),
            "--perturb".as_ref(),
            "7".as_ref(),
            "--check-every".as_ref(),
            "1".as_ref(),
            "--timeout".as_ref(),
            SAMSARA_TIMEOUT_SECS.as_ref(),
            "-o".as_ref(),
            trace.as_os_str(),
        ],
        None,
    );
    assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
    rec.assert_no_panic();
    assert!(
        rec.stderr.contains("recorded 2 harts: guest powered off"),
        "{}",
        rec.stderr
    );
    assert!(
        rec.stdout_str().contains("samsara-init: workload done"),
        "{}",
        rec.stdout_str()
    );
    // Refused attempts were logged with their page (the kernel shares its
    // data between the harts, so pages change hands all the time).
    let inspect = samsara_linux(&["inspect".as_ref(), trace.as_os_str()], None);
    assert!(
        inspect.stdout_str().contains("refused-page"),
        "{}",
        inspect.stdout_str()
    );
    assert_replays(&trace, &rec);
    let _ = std::fs::remove_dir_all(&work);
}
