//! Shared helpers for the end-to-end tests: locating (and if need be
//! building) the bundled guests, running the `samsara` binary and
//! `qemu-system-riscv64` with a timeout, and parsing samsara's summary line.

#![allow(dead_code)] // each test binary uses its own subset

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The samsara binary cargo built for these tests.
pub const SAMSARA: &str = env!("CARGO_BIN_EXE_samsara");

/// Every guest the tests use; all are built by `make -C guests`.
pub const GUESTS: &[&str] = &[
    "hello",
    "parsum",
    "racy_counter",
    "racy_mp",
    "lockfree_queue",
    "spin_contend",
    "timer_irq",
    "intbench",
    "fpbench",
    "diskio",
    "fault",
    "fault_load",
    "rw_race",
    "ipi_pingpong",
    "dma_mix",
    "hammer",
    "timer_race",
    "spin_small",
    "soak",
    "hostile",
    "smc",
    "blackscholes-test",
    "bodytrack-test",
    "raytrace-test",
    "swaptions-test",
    "freqmine-test",
    "x264-test",
];

/// How long any one samsara run may take before the test fails: the
/// largest bundled guest needs ~3 s in a release build.
pub const SAMSARA_TIMEOUT: Duration = Duration::from_secs(180);

/// How long any one QEMU run may take.
pub const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The directory holding the built guests, after making sure every guest
/// the tests need is there: if one is missing, `make -C guests` builds
/// them; if that fails the test fails with a message saying what to do.
/// Never skips.
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
        let before = missing(&build);
        if before.is_empty() {
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

/// Path of a bundled guest ELF (building the guests if needed).
pub fn guest(name: &str) -> PathBuf {
    guest_dir().join(format!("{name}.elf"))
}

/// Guest runs are CPU-bound and several are timing-sensitive (spinlocks
/// with more harts than host cores), so the tests run them one at a time
/// rather than two multi-hart guests fighting over two cores.
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
    pub wall: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fail unless the process exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "{}: expected exit status {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.status,
            self.stdout_str(),
            self.stderr
        );
        self.assert_no_panic()
    }

    /// Fail if the host side panicked.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "{}: the host panicked:\n{}",
            self.what,
            self.stderr
        );
        self
    }

    /// Fail unless stdout is exactly `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) -> &Self {
        assert_eq!(
            self.stdout_str(),
            expected,
            "{}: unexpected guest output (stderr: {})",
            self.what,
            self.stderr
        );
        self
    }

    /// samsara's summary line (the last stderr line that has one).
    #[track_caller]
    pub fn summary(&self) -> Summary {
        self.stderr
            .lines()
            .rev()
            .find_map(Summary::parse)
            .unwrap_or_else(|| panic!("{}: no summary line on stderr:\n{}", self.what, self.stderr))
    }
}

/// Parsed `samsara: <ending>; instructions hart0=.. (total ..); wall .. s; .. MIPS`.
#[derive(Debug)]
pub struct Summary {
    pub ending: String,
    pub per_hart: Vec<u64>,
    pub total: u64,
}

impl Summary {
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("samsara: ")?;
        let (ending, rest) = rest.split_once("; instructions ")?;
        let (harts, rest) = rest.split_once(" (total ")?;
        let (total, _) = rest.split_once(')')?;
        let per_hart = harts
            .split_whitespace()
            .map(|h| h.split_once('=').and_then(|(_, n)| n.parse().ok()))
            .collect::<Option<Vec<u64>>>()?;
        Some(Self {
            ending: ending.to_string(),
            per_hart,
            total: total.parse().ok()?,
        })
    }
}

/// Run `cmd` with stdin closed, capturing its output; fail the test if it
/// takes longer than `timeout` (the process is killed first).
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Run {
    run_typing(cmd, timeout, None)
}

/// Like [`run_with_timeout`], but once stdout shows `typing.0` the bytes
/// `typing.1` are written to the process's stdin, which is then closed (a
/// user typing at a prompt).
pub fn run_typing(mut cmd: Command, timeout: Duration, typing: Option<(&str, &str)>) -> Run {
    use std::io::Write;
    let what = format!("{cmd:?}");
    cmd.stdin(if typing.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take();
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let out_reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    let status = loop {
        if let (Some((prompt, text)), Some(pipe)) = (typing, stdin.as_mut())
            && contains(&seen.lock().unwrap(), prompt)
        {
            let _ = pipe.write_all(text.as_bytes());
            stdin = None;
        }
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let _ = out_reader.join();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {timeout:?}; killed it\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&seen.lock().unwrap()),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    let _ = out_reader.join();
    let stdout = std::mem::take(&mut *seen.lock().unwrap());
    Run {
        what,
        status,
        stdout,
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
        wall,
    }
}

/// Run the samsara binary with these arguments.
pub fn samsara<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(SAMSARA);
    cmd.args(args);
    run_with_timeout(cmd, SAMSARA_TIMEOUT)
}

/// `samsara run GUEST --harts N` plus `extra`, one run at a time.
pub fn run_guest(name: &str, harts: u32, extra: &[&OsStr]) -> Run {
    let image = guest(name);
    let harts = harts.to_string();
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        image.as_os_str(),
        OsStr::new("--harts"),
        OsStr::new(&harts),
    ];
    args.extend_from_slice(extra);
    let _one_at_a_time = serial();
    samsara(args)
}

/// Where `qemu-system-riscv64` is, if it is installed.
pub fn qemu_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-system-riscv64"))
        .find(|p| p.is_file())
}

/// Run a guest on QEMU's `virt` board the way the guest kit documents it,
/// with a virtio-blk disk if `disk` is given.
pub fn run_qemu(qemu: &Path, name: &str, harts: u32, disk: Option<&Path>) -> Run {
    let mut cmd = Command::new(qemu);
    cmd.args(["-M", "virt", "-bios", "none", "-nographic", "-m", "128M"])
        .args(["-accel", "tcg,thread=multi"])
        .arg("-smp")
        .arg(harts.to_string())
        .arg("-kernel")
        .arg(guest(name));
    if let Some(disk) = disk {
        cmd.arg("-drive")
            .arg(format!("file={},if=none,format=raw,id=hd0", disk.display()))
            .args(["-device", "virtio-blk-device,drive=hd0"]);
    }
    let _one_at_a_time = serial();
    run_with_timeout(cmd, QEMU_TIMEOUT)
}

/// Write anything to the real stderr, past libtest's output capture, so a
/// note such as "QEMU not installed, skipped" is seen in a passing run.
pub fn note(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Copies the trace at `trace` to `out`, block by block, after `header`
/// has edited its header; `tamper` sees each chunk entry (its sequence
/// number, and per hart the sequence number of its last entry so far) until
/// it returns true, i.e. has changed one. Returns whether it did.
pub fn rewrite_trace(
    trace: &Path,
    out: &Path,
    header: impl FnOnce(&mut samsara_trace::TraceHeader),
    mut tamper: impl FnMut(u64, &mut samsara_trace::ChunkRecord, &[u64]) -> bool,
) -> bool {
    use samsara_trace::{Block, Entry, TraceReader, TraceWriter};
    let mut reader = TraceReader::open(trace).expect("reading the trace to rewrite");
    let mut edited = reader.header().clone();
    header(&mut edited);
    let writer = TraceWriter::create(out, &edited).expect("creating a trace");
    let mut last = vec![0u64; 256];
    let mut done = false;
    while let Some(block) = reader.next_block().expect("reading the trace to rewrite") {
        match block {
            Block::Entries {
                first_seq,
                mut entries,
                ..
            } => {
                for (i, entry) in entries.iter_mut().enumerate() {
                    let seq = first_seq + i as u64;
                    if let Entry::Chunk(c) = entry {
                        if !done {
                            done = tamper(seq, c, &last);
                        }
                        last[usize::from(c.hart)] = seq;
                    }
                }
                writer.send(first_seq, entries).expect("writing");
            }
            Block::Footer(f) => {
                writer.finish(Some(*f)).expect("finishing");
                break;
            }
        }
    }
    done
}

/// A `samsara replay --gdb 127.0.0.1:0` process; killed when dropped.
pub struct GdbServer {
    pub child: std::process::Child,
    pub address: String,
}

impl GdbServer {
    /// `gdb-multiarch -batch` on this server: `load` (e.g. `file ELF`)
    /// first, then the script at `script`; its stdout and stderr merged in
    /// order (through sh, so that gdb's errors interleave with its output).
    pub fn gdb_batch(&self, load: &str, script: &Path, timeout: Duration) -> String {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            "exec \"$@\" 2>&1",
            "sh",
            "gdb-multiarch",
            "-batch",
            "-nx",
        ])
        .args(["-ex", "set pagination off", "-ex", "set confirm off"])
        .args(["-ex", load])
        .arg("-ex")
        .arg(format!("target remote {}", self.address))
        .arg("-x")
        .arg(script);
        run_with_timeout(sh, timeout).stdout_str()
    }

    pub fn start(trace: &Path, extra: &[&str]) -> GdbServer {
        let mut child = Command::new(SAMSARA)
            .arg("replay")
            .arg(trace)
            .args(["--gdb", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting samsara replay --gdb");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut line).expect("reading the banner");
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in the banner: {line}"))
            .to_string();
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while std::io::BufRead::read_line(&mut stderr, &mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                eprint!("server: {sink}");
                sink.clear();
            }
        });
        GdbServer { child, address }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("polling the server").is_none()
    }
}

impl Drop for GdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// linux/build with fw_dynamic.bin, Image and initramfs.cpio.gz, after
/// running scripts/setup-linux.sh if any is missing.
pub fn linux_dir() -> &'static PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = DIR.get_or_init(|| {
        let root = workspace_root();
        let dir = root.join("linux/build");
        let files = ["fw_dynamic.bin", "Image", "initramfs.cpio.gz", "disk.img"];
        let missing = || -> Vec<&str> {
            files
                .iter()
                .copied()
                .filter(|f| !dir.join(f).is_file())
                .collect()
        };
        // The script is idempotent and cheap when everything is there; it
        // also rebuilds the initramfs when linux/init changed.
        // SAMSARA: the binary under test boots the kernel for System.map.
        let ran = Command::new("bash")
            .arg(root.join("scripts/setup-linux.sh"))
            .current_dir(&root)
            .env("SAMSARA", SAMSARA)
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

/// A recording of guest `name` at `harts` harts into `dir`: the trace,
/// the recorder's JSON summary and what the guest printed.
pub fn record_with_summary(
    dir: &Path,
    name: &str,
    harts: usize,
) -> (PathBuf, serde_json::Value, String) {
    let trace = dir.join(format!("{name}.trace"));
    let recorded = samsara([
        "record".as_ref(),
        "--json".as_ref(),
        "--harts".as_ref(),
        harts.to_string().as_ref(),
        guest(name).as_os_str(),
        "-o".as_ref(),
        trace.as_os_str(),
    ]);
    assert_eq!(recorded.code(), Some(0), "{}", recorded.stderr);
    let summary: serde_json::Value = serde_json::from_str(
        recorded
            .stderr
            .lines()
            .rfind(|l| l.starts_with('{'))
            .expect("a JSON summary"),
    )
    .expect("the summary is JSON");
    (trace, summary, recorded.stdout_str())
}

/// The summary's per-hart instruction counts.
pub fn instructions_per_hart(summary: &serde_json::Value) -> Vec<u64> {
    summary["instructions_per_hart"]
        .as_array()
        .expect("instructions_per_hart")
        .iter()
        .map(|v| v.as_u64().expect("a count"))
        .collect()
}
