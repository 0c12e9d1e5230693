//! What every suite measures with: the samsara binary, the guests, QEMU,
//! the host; and one run of each kind (`samsara run`, a verified `samsara
//! replay`, a QEMU run), read from samsara's `--json` summary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use samsara_engine::summary::{ReplaySummary, RunSummary, from_stderr};

use crate::BenchArgs;
use crate::process::{ProcessRun, cpu_model, last_lines, load_average, run_process};

/// What every suite measures with.
pub struct Bench {
    pub samsara: PathBuf,
    /// What `samsara --version` says ("0.1.0").
    pub samsara_version: String,
    pub guests: PathBuf,
    /// `None` when QEMU is left out or not installed.
    pub qemu: Option<PathBuf>,
    pub repeats: u32,
    pub timeout: Duration,
    pub host: Host,
    /// `--cpu` for the machine suite's `samsara run`s, if given.
    pub cpu: Option<String>,
}

/// The machine the figures were taken on.
pub struct Host {
    pub cpu: String,
    pub cpus: usize,
    pub load_before: String,
    pub qemu_version: Option<String>,
    pub why_no_qemu: Option<String>,
}

impl Bench {
    pub fn new(args: &BenchArgs, repeats: u32) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find samsara-bench itself")?;
        let samsara = find_samsara(args.samsara.as_deref(), &exe)?;
        let samsara_version = samsara_version(&samsara)?;
        // The debug suite boots Linux only: it needs no bundled guest.
        let guests = match find_guests(args.guests.as_deref(), &exe) {
            Err(_) if args.suite == crate::Suite::Debug => PathBuf::new(),
            other => other?,
        };
        let (qemu, why_no_qemu) = if args.no_qemu {
            (None, Some("left out (--no-qemu)".to_string()))
        } else {
            match find_program(&args.qemu) {
                Some(path) => (Some(path), None),
                None => (
                    None,
                    Some(format!(
                        "{} not found, so QEMU columns are empty (install qemu-system-misc)",
                        args.qemu.display()
                    )),
                ),
            }
        };
        let qemu_version = qemu.as_ref().and_then(|q| {
            let out = Command::new(q).arg("--version").output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().next().map(|l| l.trim().to_string())
        });
        let host = Host {
            cpu: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before: load_average().unwrap_or_else(|| "unknown".into()),
            qemu_version,
            why_no_qemu,
        };
        Ok(Self {
            samsara,
            samsara_version,
            guests,
            qemu,
            repeats,
            timeout: Duration::from_secs(args.timeout),
            host,
            cpu: args.cpu.clone(),
        })
    }

    /// Path of guest `name`'s ELF, which must exist.
    pub fn guest(&self, name: &str) -> Result<PathBuf> {
        let path = self.guests.join(format!("{name}.elf"));
        if !path.is_file() {
            bail!(
                "guest {} not found; build the guests with ./scripts/build-guests.sh or pass --guests DIR",
                path.display()
            );
        }
        Ok(path)
    }

    /// One `samsara run --json` of `guest` with `harts` harts: it must pass.
    pub fn samsara_run(&self, guest: &Path, harts: u32) -> Result<SamsaraRun> {
        let mut cmd = Command::new(&self.samsara);
        cmd.arg("run")
            .arg(guest)
            .arg("--harts")
            .arg(harts.to_string())
            .args(["--mem", "128M", "--json"]);
        if let Some(cpu) = &self.cpu {
            cmd.args(["--cpu", cpu]);
        }
        let run = run_process(cmd, self.timeout)?.succeeded()?;
        let summary = run_summary(&run)?;
        Ok(SamsaraRun { run, summary })
    }

    /// One QEMU run of `guest` with `harts` harts (MTTCG): it must pass.
    pub fn qemu_run(&self, qemu: &Path, guest: &Path, harts: u32) -> Result<ProcessRun> {
        let mut cmd = Command::new(qemu);
        cmd.args(["-M", "virt", "-bios", "none", "-nographic", "-m", "128M"])
            .args(["-accel", "tcg,thread=multi"])
            .arg("-smp")
            .arg(harts.to_string())
            .arg("-kernel")
            .arg(guest);
        let run = run_process(cmd, self.timeout)?.succeeded()?;
        Ok(run)
    }

    pub fn progress(&self, msg: &str) {
        eprintln!("bench: {msg}");
    }
}

/// The guest directory: `--guests`, else `guests/build` under the current
/// directory, else under the checkout holding this binary
/// (`target/<profile>/samsara-bench`).
fn find_guests(given: Option<&Path>, exe: &Path) -> Result<PathBuf> {
    if let Some(dir) = given {
        if !dir.is_dir() {
            bail!("--guests {}: not a directory", dir.display());
        }
        return Ok(dir.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("guests/build")];
    if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
        candidates.push(root.join("guests/build"));
    }
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .with_context(|| {
            format!(
                "no guest directory (looked for {}); build the guests with ./scripts/build-guests.sh \
                 or pass --guests DIR",
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `program` as given if it has a directory part, else looked up on PATH.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A `samsara run` and its summary.
pub struct SamsaraRun {
    pub run: ProcessRun,
    pub summary: RunSummary,
}

/// The JSON summary of a finished `samsara run --json`.
pub fn run_summary(run: &ProcessRun) -> Result<RunSummary> {
    from_stderr(&run.stderr)
        .with_context(|| format!("{}: no JSON summary in {:?}", run.what, run.stderr))
}

/// `samsara replay TRACE --json` (`--serial`), which must verify: its own
/// wall time (from its summary) and the process.
pub fn verified_replay(bench: &Bench, trace: &Path, serial: bool) -> Result<(f64, ProcessRun)> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.arg("replay").arg(trace).arg("--json");
    if serial {
        cmd.arg("--serial");
    }
    let (summary, run) = run_verified_replay(bench, cmd)?;
    Ok((summary.wall_seconds, run))
}

/// Runs `cmd`, a `samsara replay ... --json`, which must verify: its
/// summary and the process.
pub fn run_verified_replay(bench: &Bench, cmd: Command) -> Result<(ReplaySummary, ProcessRun)> {
    let run = run_process(cmd, bench.timeout)?;
    let summary: Option<ReplaySummary> = from_stderr(&run.stderr);
    match summary {
        Some(s) if s.verified && run.status.success() => Ok((s, run)),
        Some(s) => bail!(
            "{} did not verify ({}): {}",
            run.what,
            run.status,
            if s.mismatches.is_empty() {
                s.partial.unwrap_or_else(|| "no mismatch reported".into())
            } else {
                s.mismatches.join(" / ")
            }
        ),
        None => bail!(
            "{} printed no JSON summary ({}): {}",
            run.what,
            run.status,
            last_lines(&run.stderr, 8)
        ),
    }
}

/// The samsara binary: `--samsara`, else `samsara` next to this program.
fn find_samsara(given: Option<&Path>, exe: &Path) -> Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!(
                "--samsara {}: no such file (build it with `cargo build --release --bin samsara`)",
                path.display()
            );
        }
        return Ok(path.to_path_buf());
    }
    let path = exe.with_file_name(format!("samsara{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "the samsara binary is not at {} (looked next to samsara-bench); build it with \
             `cargo build --release --bin samsara`, or pass --samsara PATH",
            path.display()
        );
    }
    Ok(path)
}

/// The version `samsara --version` prints ("samsara 0.1.0" gives "0.1.0").
fn samsara_version(samsara: &Path) -> Result<String> {
    let out = Command::new(samsara)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", samsara.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["samsara", version] if out.status.success() => Ok(version.to_string()),
        _ => bail!(
            "{} --version said {:?}: is it samsara?",
            samsara.display(),
            text.trim()
        ),
    }
}
