//! Spawning the measured processes (with a timeout, output captured,
//! timed from spawn to exit) and how busy the host was meanwhile.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The 1, 5 and 15 minute load averages: other work on the host skews
/// every figure, so the report says how busy the host was.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A finished process.
pub struct ProcessRun {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Spawn to exit, as seen from here.
    pub wall: Duration,
    /// Share of the host's CPU time that went to other processes (not this
    /// one, not the child) while it ran: 0 on a quiet host. `None` where
    /// /proc is not available.
    pub others_busy: Option<f64>,
}

impl ProcessRun {
    /// The run, if it exited with status 0; else an error naming it, its
    /// status and what it said on stderr.
    pub fn succeeded(self) -> anyhow::Result<Self> {
        if !self.status.success() {
            anyhow::bail!(
                "{} failed ({}): {}",
                self.what,
                self.status,
                self.stderr.trim()
            );
        }
        Ok(self)
    }
}

/// Run `cmd` (stdin closed, output captured), timing it from spawn to
/// exit; kill it and fail after `timeout`.
pub fn run_process(mut cmd: Command, timeout: Duration) -> Result<ProcessRun> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu_before = CpuSample::take();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().context("stdout pipe")?));
    let err = drain(Box::new(child.stderr.take().context("stderr pipe")?));
    // Poll rather than block so a hung run can be killed: every 200 µs at
    // first (well below the shortest run measured, QEMU's ~0.1 s), then
    // less often as the run goes on (at most every 2 ms, under 0.5% of the
    // run), so that the bench's own polling takes next to no CPU time
    // beside runs of tens of seconds.
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}; killed it");
        }
        let pause =
            (start.elapsed() / 200).clamp(Duration::from_micros(200), Duration::from_millis(2));
        std::thread::sleep(pause);
    };
    let wall = start.elapsed();
    let others_busy = cpu_before
        .zip(CpuSample::take())
        .map(|(before, after)| after.others_busy_since(&before));
    Ok(ProcessRun {
        what,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        wall,
        others_busy,
    })
}

/// CPU time counters from /proc, in clock ticks: what the whole host
/// spent busy and idle, and what this process and its reaped children
/// used. The difference between two samples tells how much of the host
/// other processes took while a measured run was going on.
#[derive(Clone, Copy, Debug)]
struct CpuSample {
    host_busy: u64,
    host_total: u64,
    ours: u64,
}

impl CpuSample {
    fn take() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice],
        // guest time being already counted in user and nice.
        let host_total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name: state is field 3, so utime,
        // stime, cutime and cstime (fields 14-17) are at 11..15.
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let ours = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        Some(Self {
            host_busy: host_total - idle,
            host_total,
            ours,
        })
    }

    /// Others' share of all CPU time between `before` and `self`.
    fn others_busy_since(&self, before: &Self) -> f64 {
        let total = self.host_total.saturating_sub(before.host_total);
        let busy = self.host_busy.saturating_sub(before.host_busy);
        let ours = self.ours.saturating_sub(before.ours);
        if total == 0 {
            return 0.0;
        }
        busy.saturating_sub(ours) as f64 / total as f64
    }
}

/// The last `n` non-empty lines of `text`, joined, for error messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
