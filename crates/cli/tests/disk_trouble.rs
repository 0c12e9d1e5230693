//! Disk trouble (issue 6): a trace written to a full or read-only file
//! system gives a clear error naming the file and the OS error, the guest
//! stops, the exit status is non-zero, and what was written is a valid
//! partial trace that replays up to its last block.
//!
//! The full and read-only file systems are small tmpfs mounts, which needs
//! root (CI and the development machines run as root). Where `mount` fails
//! the test fails and says so: it never passes without having run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, guest, samsara, scratch_dir, serial};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Mount(dir.to_path_buf()),
            Ok(o) => panic!(
                "this test needs a small tmpfs (`mount -t tmpfs -o {options}`), which needs root; \
                 mount said: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("this test needs `mount` to make a small tmpfs: {e}"),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn record(trace: &Path, image: &str, harts: &str) -> Run {
    let _one_at_a_time = serial();
    samsara([
        "record".as_ref(),
        "--harts".as_ref(),
        harts.as_ref(),
        "--check-every".as_ref(),
        "2".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
        guest(image).as_os_str(),
    ])
}

/// The error line names the file and the OS error.
fn assert_clear_error(run: &Run, trace: &Path, os_error: &str) {
    run.assert_no_panic();
    assert!(
        !run.status.success(),
        "record into {} succeeded:\n{}",
        trace.display(),
        run.stderr
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("samsara: error:"))
        .unwrap_or_else(|| panic!("no `samsara: error:` line:\n{}", run.stderr));
    assert!(
        line.contains(&trace.display().to_string()) && line.contains(os_error),
        "the error does not name {} and `{os_error}`: {line}",
        trace.display()
    );
}

#[test]
fn a_full_disk_stops_the_guest_and_leaves_a_partial_trace() {
    let dir = scratch_dir("full-disk");
    // Room for whole blocks (up to 8192 entries each, some 500 KiB with
    // a digest every 2 entries), so that some are complete when it fills.
    let mount = Mount::tmpfs(&dir.join("full"), "size=2m");
    let trace = mount.0.join("soak.trace");
    // soak never ends by itself: only the full disk can stop it.
    let run = record(&trace, "soak", "2");
    assert_clear_error(&run, &trace, "No space left on device");
    let len = std::fs::metadata(&trace).expect("the trace remains").len();
    assert!(
        run.stderr.contains(&format!("at byte offset {len}:")),
        "the error should name the offset where the file now ends ({len}):\n{}",
        run.stderr
    );

    let inspect = samsara(["inspect".as_ref(), trace.as_os_str()]);
    inspect.assert_no_panic().assert_code(3);
    assert!(
        inspect.stdout_str().contains("status: PARTIAL")
            && inspect.stdout_str().contains("complete blocks"),
        "{}",
        inspect.stdout_str()
    );
    let replay = samsara(["replay".as_ref(), trace.as_os_str()]);
    replay.assert_no_panic().assert_code(3);
    assert!(
        replay
            .stderr
            .contains(&format!("replayed up to byte offset {len}")),
        "{}",
        replay.stderr
    );
    let replayed: u64 = replay
        .stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("samsara: replayed ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(replayed > 0, "nothing replayed:\n{}", replay.stderr);
}

#[test]
fn a_read_only_file_system_is_a_clear_error() {
    let dir = scratch_dir("ro-disk");
    let mount = Mount::tmpfs(&dir.join("ro"), "ro,size=64k");
    let trace = mount.0.join("hello.trace");
    let run = record(&trace, "hello", "1");
    assert_clear_error(&run, &trace, "Read-only file system");
    assert!(
        run.stdout.is_empty(),
        "the guest ran without a trace: {}",
        run.stdout_str()
    );
}

#[test]
fn dev_full_is_a_clear_error() {
    let trace = Path::new("/dev/full");
    let run = record(trace, "hello", "1");
    assert_clear_error(&run, trace, "No space left on device");
}
