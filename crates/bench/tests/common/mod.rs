//! Helpers for the end-to-end tests of samsara-bench: the `samsara` binary
//! it measures (built if need be), the bundled guests, QEMU, and running a
//! process with a timeout.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The samsara-bench binary cargo built for these tests.
pub const BENCH: &str = env!("CARGO_BIN_EXE_samsara-bench");

/// How long one samsara-bench invocation may take before the test fails.
pub const BENCH_TIMEOUT: Duration = Duration::from_secs(600);

/// The guests the suites under test run.
const GUESTS: &[&str] = &[
    "hello",
    "intbench",
    "fpbench",
    "parsum",
    "blackscholes-test",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The `samsara` binary next to samsara-bench (where samsara-bench looks
/// for it), built with the same profile first: cargo builds only this
/// package's binary for its tests, and a `samsara` left there by an older
/// build would be measured otherwise. Fails the test, saying what to do,
/// if it cannot be built.
pub fn samsara() -> &'static Path {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = PATH.get_or_init(|| {
        let dir = Path::new(BENCH).parent().expect("the binary's directory");
        let path = dir.join(format!("samsara{}", std::env::consts::EXE_SUFFIX));
        // Into the same target directory, whatever chose it.
        let target = dir.parent().expect("the target directory");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .args(["--bin", "samsara"]);
        // The profile `cargo test` builds binaries with (also samsara's own
        // tests' samsara, which this must not replace with another build):
        // the directory is named after it, but `debug` holds `test`'s.
        match dir.file_name().and_then(|d| d.to_str()) {
            Some("debug") | None => cmd.args(["--profile", "test"]),
            Some(profile) => cmd.args(["--profile", profile]),
        };
        let built = cmd.output();
        match built {
            Ok(out) if out.status.success() && path.is_file() => Ok(path),
            Ok(out) => Err(format!(
                "`{cmd:?}` exited with {} and {} is {}:\n{}",
                out.status,
                path.display(),
                if path.is_file() { "there" } else { "missing" },
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("cannot run `{cmd:?}`: {e}")),
        }
    });
    match result {
        Ok(path) => path,
        Err(msg) => panic!(
            "the samsara binary could not be built for samsara-bench ({msg}); build it with \
             `cargo build --release --bin samsara`"
        ),
    }
}

/// The directory holding the built guests, after making sure every guest
/// the tests need is there (`make -C guests` if one is missing). Never skips.
pub fn guest_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = DIR.get_or_init(|| {
        let root = workspace_root();
        let build = root.join("guests/build");
        let missing = |dir: &Path| -> Vec<String> {
            GUESTS
                .iter()
                .filter(|g| !dir.join(format!("{g}.elf")).is_file())
                .map(|g| format!("guests/build/{g}.elf"))
                .collect()
        };
        if missing(&build).is_empty() {
            return Ok(build);
        }
        let made = Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(root.join("guests"))
            .arg("-j2")
            .output();
        let after = missing(&build);
        if after.is_empty() {
            return Ok(build);
        }
        let how = match made {
            Ok(out) => format!(
                "`make -C guests` exited with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("`make -C guests` could not be started: {e}"),
        };
        Err(format!(
            "the bundled guests are not built ({} missing) and building them failed; {how}\n\
             Install the RISC-V cross compiler and build them with ./scripts/setup.sh \
             (or ./scripts/build-guests.sh).",
            after.join(", ")
        ))
    });
    match result {
        Ok(dir) => dir,
        Err(msg) => panic!("{msg}"),
    }
}

/// The suites are CPU-bound and measure time: one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A scratch directory for this test binary, unique per call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("samsara-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// What a finished process did.
#[derive(Debug)]
pub struct Run {
    /// What was run, for messages.
    pub what: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fail unless the process exited with `code` (and did not panic).
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{}: expected exit status {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.status,
            self.stdout_str(),
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{}: panicked:\n{}",
            self.what,
            self.stderr
        );
        self
    }
}

/// Run `cmd` with stdin closed, capturing its output; fail the test if it
/// takes longer than `timeout` (the process is killed first).
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Run {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {timeout:?}; killed it\n--- stderr\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        what,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

/// Where `qemu-system-riscv64` is, if it is installed.
pub fn qemu_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-system-riscv64"))
        .find(|p| p.is_file())
}

/// Write to the real stderr, past libtest's output capture.
pub fn note(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}
