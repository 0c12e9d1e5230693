//! QEMU's record/replay and reverse debugging of the debug suite's kernel
//! at 1 CPU (its rr refuses `-smp` > 1): `-icount
//! shift=auto,rr=record,rrfile=F,rrsnapshot=init` with a qcow2 image that
//! holds the snapshot (no disk is attached to the guest), a replay to the
//! end, and gdb-multiarch sessions against `rr=replay,rrsnapshot=init -gdb
//! … -S`: `reverse-stepi` at a few instruction counts (`monitor
//! replay_break N` and `continue` to get there), each in its own session
//! with a time limit, and a `reverse-continue` to the last write of the
//! watched message.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::context::Bench;
use crate::debug::CMDLINE;
use crate::linux::LinuxFiles;
use crate::process::{last_lines, run_process};
use crate::report::{Cell, Table};

/// The watched text in QEMU's run: an early message's copy in the printk
/// ring buffer (QEMU's replay under gdb slows down to a crawl later in the
/// boot, see the notes), written within the first 10⁸ instructions.
const QEMU_MESSAGE: &[u8] = b"Kernel command line: console";
/// Where the reverse-continue starts (an icount).
const QEMU_RCONT_FROM: u64 = 100_000_000;

struct Qemu<'a> {
    qemu: &'a Path,
    files: &'a LinuxFiles,
    snapshot_disk: PathBuf,
    rrfile: PathBuf,
}

impl Qemu<'_> {
    fn command(&self, mode: &str) -> Command {
        let mut cmd = Command::new(self.qemu);
        cmd.args(["-M", "virt", "-nographic", "-m", "512M", "-smp", "1"])
            .arg("-bios")
            .arg(&self.files.firmware)
            .arg("-kernel")
            .arg(&self.files.kernel)
            .arg("-initrd")
            .arg(&self.files.initrd)
            .args(["-append", CMDLINE, "-net", "none", "-drive"])
            .arg(format!(
                "file={},if=none,id=rr",
                self.snapshot_disk.display()
            ))
            .arg("-icount")
            .arg(format!(
                "shift=auto,rr={mode},rrfile={},rrsnapshot=init",
                self.rrfile.display()
            ));
        cmd
    }

    /// One gdb session against a paused replay; the script's `TIMED` lines.
    fn gdb_session(&self, script: &str, limit: Duration) -> Result<Vec<(String, f64, String)>> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = self.command("replay");
        cmd.arg("-gdb")
            .arg(format!("tcp:127.0.0.1:{port}"))
            .arg("-S")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut qemu = cmd.spawn().context("cannot start QEMU")?;
        let result = run_gdb(port, script, limit);
        kill(&mut qemu);
        result
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The gdb preamble: connect, and a `timed` Python helper.
fn preamble(port: u16) -> String {
    format!(
        "set pagination off\nset confirm off\nset remotetimeout 600\nset architecture riscv:rv64\ntarget remote 127.0.0.1:{port}\n\
python\nimport time\n\
def timed(label, cmd):\n    t = time.time()\n    out = gdb.execute(cmd, to_string=True)\n    \
print('TIMED %s %.6f %s' % (label, time.time() - t, ' | '.join(out.strip().splitlines())), flush=True)\n\
def icount(label):\n    out = gdb.execute('monitor info replay', to_string=True)\n    \
print('TIMED %s 0 %s' % (label, out.strip().split()[-1]), flush=True)\nend\n"
    )
}

/// Runs gdb-multiarch on `script` (after the preamble) for at most
/// `limit`; the `TIMED label seconds rest` lines it printed.
pub(crate) fn run_gdb(
    port: u16,
    script: &str,
    limit: Duration,
) -> Result<Vec<(String, f64, String)>> {
    let file = std::env::temp_dir().join(format!("samsara-bench-gdb-{port}.gdb"));
    std::fs::write(&file, format!("{}{script}", preamble(port)))?;
    // Give QEMU a moment to listen.
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("QEMU's gdb port {port} never opened");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut gdb = Command::new("gdb-multiarch")
        .args(["-batch", "-nx", "-x"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start gdb-multiarch")?;
    let mut stdout = gdb.stdout.take().context("gdb stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut timed_out = false;
    loop {
        if gdb.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > limit {
            timed_out = true;
            kill(&mut gdb);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = reader.join().unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let lines = parse_timed(&text);
    if timed_out {
        let done: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
        bail!(
            "gdb session did not finish within {} s (done: {done:?}); last output: {}",
            limit.as_secs(),
            last_lines(&text, 3)
        );
    }
    Ok(lines)
}

/// The `TIMED label seconds rest` lines of gdb's output.
fn parse_timed(text: &str) -> Vec<(String, f64, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("TIMED ")?;
            let mut parts = rest.splitn(3, ' ');
            let label = parts.next()?.to_string();
            let secs = parts.next()?.parse().ok()?;
            Some((label, secs, parts.next().unwrap_or("").to_string()))
        })
        .collect()
}

pub(crate) fn find<'a>(
    lines: &'a [(String, f64, String)],
    label: &str,
) -> Option<&'a (String, f64, String)> {
    lines.iter().find(|l| l.0 == label)
}

/// The QEMU table and its notes. Failures become notes that quote the
/// command and what QEMU or gdb said.
pub fn measure(
    bench: &Bench,
    qemu: &Path,
    files: &LinuxFiles,
    scratch: &Path,
    watch_near: Option<u64>,
    quick: bool,
) -> (Table, Vec<String>) {
    let mut table = Table::new(
        "QEMU record/replay of the same kernel at 1 CPU, reverse debugging through gdb-multiarch",
        &[
            ("what", "what"),
            ("instructions", "icount"),
            ("seconds", "s"),
        ],
    );
    let mut notes = Vec::new();
    if let Err(e) = measure_into(
        bench, qemu, files, scratch, watch_near, quick, &mut table, &mut notes,
    ) {
        notes.push(format!("QEMU: {e:#}"));
    }
    (table, notes)
}

#[allow(clippy::too_many_arguments)]
fn measure_into(
    bench: &Bench,
    qemu: &Path,
    files: &LinuxFiles,
    scratch: &Path,
    watch_near: Option<u64>,
    quick: bool,
    table: &mut Table,
    notes: &mut Vec<String>,
) -> Result<()> {
    let q = Qemu {
        qemu,
        files,
        snapshot_disk: scratch.join("rr-snapshots.qcow2"),
        rrfile: scratch.join("qemu.rr"),
    };
    let mut create = Command::new("qemu-img");
    create
        .args(["create", "-f", "qcow2"])
        .arg(&q.snapshot_disk)
        .arg("1G");
    let made = run_process(create, bench.timeout).context(
        "qemu-img (package qemu-utils) is needed for the qcow2 image holding QEMU's rr snapshot",
    )?;
    if !made.status.success() {
        bail!("{} failed: {}", made.what, last_lines(&made.stderr, 3));
    }
    let check = |run: &crate::process::ProcessRun| -> Result<()> {
        let out = String::from_utf8_lossy(&run.stdout);
        if !run.status.success() || !out.contains("reboot: Power down") {
            bail!(
                "{} did not power off ({}): {}",
                run.what,
                run.status,
                last_lines(&format!("{out}\n{}", run.stderr), 4)
            );
        }
        Ok(())
    };
    bench.progress("QEMU: record at 1 CPU");
    let record = run_process(q.command("record"), bench.timeout)?;
    check(&record)?;
    table.push(vec![
        Cell::Text("record (process, rr=record)".into()),
        Cell::Missing,
        Cell::num(record.wall.as_secs_f64(), 2),
    ]);
    bench.progress("QEMU: replay to the end");
    let replay = run_process(q.command("replay"), bench.timeout)?;
    check(&replay)?;
    table.push(vec![
        Cell::Text("replay to the end (process, rr=replay, no gdb)".into()),
        Cell::Missing,
        Cell::num(replay.wall.as_secs_f64(), 2),
    ]);

    let limit = Duration::from_secs(if quick { 30 } else { 60 });
    let positions: &[u64] = if quick {
        &[20_000_000, 100_000_000]
    } else {
        &[20_000_000, 100_000_000, 300_000_000]
    };
    for &n in positions {
        bench.progress(&format!("QEMU: gdb reverse-stepi at icount {n}"));
        let script = format!(
            "python timed('break', 'monitor replay_break {n}')\npython timed('forward', 'continue')\npython icount('at')\npython timed('rsi', 'reverse-stepi')\npython icount('back')\n"
        );
        match q.gdb_session(&script, limit) {
            Ok(lines) => {
                let forward = find(&lines, "forward").map(|l| l.1);
                let at = find(&lines, "at").and_then(|l| l.2.parse::<u64>().ok());
                let rsi = find(&lines, "rsi").map(|l| l.1);
                let back = find(&lines, "back").map(|l| l.2.clone());
                table.push(vec![
                    Cell::Text(format!("gdb: replay_break + continue to icount {n}")),
                    at.map_or(Cell::Missing, Cell::Int),
                    forward.map_or(Cell::Missing, |s| Cell::num(s, 2)),
                ]);
                table.push(vec![
                    Cell::Text(format!(
                        "gdb: reverse-stepi there (landed at icount {})",
                        back.unwrap_or_else(|| "?".into())
                    )),
                    at.map_or(Cell::Missing, Cell::Int),
                    rsi.map_or(Cell::Missing, |s| Cell::num(s, 3)),
                ]);
            }
            Err(e) => {
                table.push(vec![
                    Cell::Text(format!(
                        "gdb: reverse-stepi at icount {n}: not finished in {} s",
                        limit.as_secs()
                    )),
                    Cell::Int(n),
                    Cell::Missing,
                ]);
                notes.push(format!("QEMU reverse-stepi at icount {n}: {e:#}"));
            }
        }
    }

    // reverse-continue to the last write of an early message's bytes,
    // found near where samsara's run has the kernel's ring buffer (the
    // same kernel image: __log_buf is at the same address).
    if let Some(va) = watch_near {
        bench.progress("QEMU: gdb reverse-continue to the watched message");
        let start = (va & !0xf_ffff).saturating_sub(0x10_0000);
        let needle: String = QEMU_MESSAGE.iter().map(|b| format!("\\x{b:02x}")).collect();
        let script = format!(
            "python\n\
def locate():\n    inf = gdb.selected_inferior()\n    start = {start}\n    end = start + 0x300000\n    \
while start < end:\n        a = inf.search_memory(start, end - start, b'{needle}')\n        \
if a is None:\n            return None\n        \
if bytes(inf.read_memory(a - 1, 1)) != b' ':\n            return a\n        start = a + 1\n    return None\n\
end\n\
python timed('break', 'monitor replay_break {late}')\npython timed('forward', 'continue')\npython icount('at')\n\
python\naddr = locate()\nprint('TIMED addr 0 %s' % (hex(addr) if addr is not None else None), flush=True)\n\
if addr is not None:\n    gdb.execute('watch *(long *)%d' % addr)\n    timed('rcont', 'reverse-continue')\n    icount('hit')\nend\n",
            late = QEMU_RCONT_FROM,
        );
        match q.gdb_session(&script, limit * 2) {
            Ok(lines) => {
                let at = find(&lines, "at").and_then(|l| l.2.parse::<u64>().ok());
                let hit = find(&lines, "hit").and_then(|l| l.2.parse::<u64>().ok());
                let addr = find(&lines, "addr").map(|l| l.2.clone());
                table.push(vec![
                    Cell::Text(
                        "gdb: replay_break + continue to the reverse-continue's start".into(),
                    ),
                    at.map_or(Cell::Missing, Cell::Int),
                    find(&lines, "forward").map_or(Cell::Missing, |l| Cell::num(l.1, 2)),
                ]);
                table.push(vec![
                    Cell::Text(format!(
                        "gdb: reverse-continue to the last write of the message's first 8 bytes (at {}), D = {}",
                        addr.unwrap_or_else(|| "?".into()),
                        at.zip(hit).map_or("?".into(), |(a, h)| a.saturating_sub(h).to_string())
                    )),
                    hit.map_or(Cell::Missing, Cell::Int),
                    find(&lines, "rcont").map_or(Cell::Missing, |l| Cell::num(l.1, 2)),
                ]);
            }
            Err(e) => {
                table.push(vec![
                    Cell::Text(format!(
                        "gdb: reverse-continue to the watched message: not finished in {} s",
                        (limit * 2).as_secs()
                    )),
                    Cell::Missing,
                    Cell::Missing,
                ]);
                notes.push(format!("QEMU reverse-continue: {e:#}"));
            }
        }
    }
    notes.push(format!(
        "QEMU: {} -M virt -m 512M -smp 1 (same firmware, kernel, initrd and command line; -net none; no guest disk) -icount shift=auto,rr=record|replay,rrfile=F,rrsnapshot=init, the snapshot kept in an empty qcow2 image (-drive file=…,if=none,id=rr); gdb sessions: rr=replay -gdb tcp:127.0.0.1:PORT -S, gdb-multiarch -batch, times taken by gdb's Python around each command. QEMU has one snapshot (at the start), so each reverse command replays from there.",
        qemu.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_lines_are_parsed_and_the_rest_ignored() {
        let text = "0x1000 in ?? ()\nTIMED rsi 0.250000 0xffffffff8051a92e in ?? ()\nTIMED at 0 100000000\nTIMED bad x\n";
        let lines = parse_timed(text);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "rsi");
        assert!((lines[0].1 - 0.25).abs() < 1e-9);
        assert_eq!(lines[0].2, "0xffffffff8051a92e in ?? ()");
        assert_eq!(find(&lines, "at").map(|l| l.2.as_str()), Some("100000000"));
        assert!(find(&lines, "bad").is_none());
    }
}
