//! `samsara-bench --suite standby` (issue 16): the hot standby's cost and
//! speed. Each PARSEC-like workload (`--size`, default test) at 2 and 4 harts is
//! recorded plainly and with a standby on this host (`record --standby`
//! beside `samsara standby`, guest output held under the output rule),
//! interleaved, `--repeats` times: the primary's slowdown, the stream's
//! bandwidth, how long output waited for its acknowledgement, and the
//! standby's lag behind the stream (sampled every 5 ms: entries received
//! and not yet replayed, and how long the oldest had waited). Then the
//! key-value service (`kvstore`, 4 harts, TCP console): a client's
//! requests per second without and with a standby, and failover time, from
//! the SIGKILL of the primary to the first byte the standby serves.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use samsara_engine::summary::{RecordSummary, from_stderr};

use crate::context::Bench;
use crate::report::{Cell, Report, Table};
use crate::stats::median;
use crate::workloads::Size;

/// PARSEC-like workloads, as `guests/build/NAME-test.elf`.
const WORKLOADS: &[&str] = &[
    "blackscholes",
    "bodytrack",
    "freqmine",
    "raytrace",
    "swaptions",
    "x264",
];
/// Requests per service run (half writes, half reads).
const SERVICE_REQUESTS: usize = 400;
/// Failovers measured.
const FAILOVERS: usize = 5;

fn free_addr() -> Result<String> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// What one recording with a standby measured.
struct WithStandby {
    wall: f64,
    mbit: f64,
    held_ms: f64,
    lag_entries: f64,
    lag_ms: f64,
    lag_max_ms: f64,
}

fn standby(bench: &Bench, trace: &Path, listen: &str, console: Option<&str>) -> Result<Child> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["standby", "--listen", listen, "-o"]).arg(trace);
    if let Some(c) = console {
        cmd.args(["--serial", &format!("tcp:{c}")]);
    }
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn finish(child: Child, what: &str) -> Result<String> {
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{what} failed: {text}");
    }
    Ok(text)
}

/// The number after `key` in `text`.
fn after(text: &str, key: &str) -> Option<f64> {
    let at = text.find(key)? + key.len();
    text[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}

fn record(
    bench: &Bench,
    image: &Path,
    harts: u32,
    trace: &Path,
    standby: Option<&str>,
) -> Result<(f64, String)> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["record", "--json", "--harts", &harts.to_string()])
        .arg(image)
        .arg("-o")
        .arg(trace);
    if let Some(addr) = standby {
        cmd.args(["--standby", addr]);
    }
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("recording {} failed: {stderr}", image.display());
    }
    let summary: RecordSummary =
        from_stderr(&stderr).context("no JSON summary from samsara record")?;
    Ok((summary.wall_seconds, stderr))
}

fn with_standby(bench: &Bench, image: &Path, harts: u32, dir: &Path) -> Result<WithStandby> {
    let listen = free_addr()?;
    let follower = standby(bench, &dir.join("standby.trace"), &listen, None)?;
    let (wall, said) = record(
        bench,
        image,
        harts,
        &dir.join("primary.trace"),
        Some(&listen),
    )?;
    let standby_said = finish(follower, "the standby")?;
    if !standby_said.contains("VERIFIED") {
        bail!("the standby did not verify: {standby_said}");
    }
    Ok(WithStandby {
        wall,
        mbit: after(&said, "bytes streamed,").unwrap_or(f64::NAN),
        held_ms: after(&said, "output held at most").unwrap_or(f64::NAN),
        lag_entries: after(&standby_said, "lag: mean").unwrap_or(f64::NAN),
        lag_ms: after(&standby_said, "entries /").unwrap_or(f64::NAN),
        lag_max_ms: standby_said
            .split("max")
            .nth(1)
            .and_then(|rest| after(rest, "entries /"))
            .unwrap_or(f64::NAN),
    })
}

/// A client of the key-value service: (requests per second, the time from
/// `kill` (if given, after half the requests) to the standby's first byte).
fn drive_service(
    console: &str,
    standby_console: Option<&str>,
    kill: Option<&mut Child>,
) -> Result<(f64, Option<f64>)> {
    let connect = |addr: &str| -> Result<(TcpStream, BufReader<TcpStream>)> {
        let start = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                let r = BufReader::new(s.try_clone()?);
                return Ok((s, r));
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("nothing listens on {addr}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let ask =
        |conn: &mut (TcpStream, BufReader<TcpStream>), line: &str, want: &str| -> Result<()> {
            conn.0.write_all(format!("{line}\n").as_bytes())?;
            let mut reply = String::new();
            loop {
                reply.clear();
                if conn.1.read_line(&mut reply)? == 0 {
                    bail!("the console closed");
                }
                if reply.starts_with(want) {
                    return Ok(());
                }
            }
        };
    let mut conn = connect(console)?;
    ask(&mut conn, "COUNT", "COUNT")?;
    let start = Instant::now();
    let mut failover = None;
    let mut kill = kill;
    for i in 0..SERVICE_REQUESTS {
        if i == SERVICE_REQUESTS / 2
            && let Some(primary) = kill.take()
        {
            let killed = Instant::now();
            primary.kill()?;
            let _ = primary.wait();
            let addr = standby_console.unwrap_or(console);
            // The first byte the standby serves: the answer to a fresh line.
            loop {
                if let Ok(mut c) = connect(addr) {
                    c.0.write_all(b"\nCOUNT\n")?;
                    let mut byte = [0u8; 1];
                    if std::io::Read::read(&mut c.1, &mut byte).unwrap_or(0) == 1 {
                        failover = Some(killed.elapsed().as_secs_f64());
                        conn = c;
                        break;
                    }
                }
                if killed.elapsed() > Duration::from_secs(30) {
                    bail!("the standby never answered");
                }
            }
        }
        let key = format!("k{}", i % (SERVICE_REQUESTS / 2));
        if i % 2 == 0 {
            ask(&mut conn, &format!("SET {key} v{i}"), &format!("OK {key}"))?;
        } else {
            ask(&mut conn, &format!("GET {key}"), "")?;
        }
    }
    let rate = SERVICE_REQUESTS as f64 / start.elapsed().as_secs_f64();
    ask(&mut conn, "QUIT", "BYE")?;
    Ok((rate, failover))
}

fn service_primary(
    bench: &Bench,
    image: &Path,
    dir: &Path,
    console: &str,
    standby: Option<&str>,
) -> Result<Child> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["record", "-q", "--harts", "4"])
        .arg(image)
        .arg("-o")
        .arg(dir.join("service.trace"))
        .args(["--serial", &format!("tcp:{console}")]);
    if let Some(addr) = standby {
        cmd.args(["--standby", addr]);
    }
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// `samsara-bench --suite standby`.
pub fn standby_suite(bench: &Bench, size: Size) -> Result<Report> {
    let dir = std::env::temp_dir().join(format!("samsara-bench-standby-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut table = Table::new(
        "Recording with a hot standby on the same host (medians; output rule on)",
        &[
            ("workload", "workload"),
            ("harts", "harts"),
            ("record_s", "record s"),
            ("with_standby_s", "with standby s"),
            ("slowdown", "slowdown"),
            ("stream_mbit_s", "stream Mbit/s"),
            ("output_held_max_ms", "output held max ms"),
            ("lag_mean_entries", "lag mean entries"),
            ("lag_mean_ms", "lag mean ms"),
            ("lag_max_ms", "lag max ms"),
        ],
    );
    let mut failures = Vec::new();
    for name in WORKLOADS {
        let image = bench.guest(&format!("{name}-{}", size.name()))?;
        for harts in [2u32, 4] {
            let mut plain = Vec::new();
            let mut followed = Vec::new();
            for rep in 1..=bench.repeats {
                let measured = record(bench, &image, harts, &dir.join("plain.trace"), None)
                    .and_then(|(p, _)| Ok((p, with_standby(bench, &image, harts, &dir)?)));
                match measured {
                    Ok((p, s)) => {
                        bench.progress(&format!(
                            "{name} at {harts} harts, {rep}/{}: record {p:.3} s, with standby {:.3} s, {:.2} Mbit/s, lag {:.1} entries / {:.2} ms",
                            bench.repeats, s.wall, s.mbit, s.lag_entries, s.lag_ms
                        ));
                        plain.push(p);
                        followed.push(s);
                    }
                    Err(e) => failures.push(format!("{name} at {harts} harts: {e:#}")),
                }
            }
            if followed.is_empty() {
                continue;
            }
            let m =
                |f: fn(&WithStandby) -> f64| median(&followed.iter().map(f).collect::<Vec<_>>());
            let (p, s) = (median(&plain), m(|w| w.wall));
            table.push(vec![
                Cell::Text((*name).into()),
                Cell::Int(u64::from(harts)),
                Cell::Num(p, 3),
                Cell::Num(s, 3),
                Cell::Num(s / p, 2),
                Cell::Num(m(|w| w.mbit), 3),
                Cell::Num(m(|w| w.held_ms), 1),
                Cell::Num(m(|w| w.lag_entries), 1),
                Cell::Num(m(|w| w.lag_ms), 2),
                Cell::Num(m(|w| w.lag_max_ms), 1),
            ]);
        }
    }

    let image = bench.guest("kvstore")?;
    let mut service = Table::new(
        "Key-value service (kvstore, 4 harts, TCP console, one client on this host)",
        &[
            ("setting", "setting"),
            ("requests_per_s", "requests/s"),
            ("failover_median_ms", "failover median ms"),
            ("failover_max_ms", "failover max ms"),
        ],
    );
    let (mut alone, mut followed, mut failovers) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=bench.repeats.max(FAILOVERS as u32) {
        let console = free_addr()?;
        let result = (|| -> Result<()> {
            if rep <= bench.repeats {
                let mut p = service_primary(bench, &image, &dir, &console, None)?;
                alone.push(drive_service(&console, None, None)?.0);
                let _ = p.wait();
                let listen = free_addr()?;
                let s = standby(
                    bench,
                    &dir.join("service-standby.trace"),
                    &listen,
                    Some(&console),
                )?;
                let mut p = service_primary(bench, &image, &dir, &console, Some(&listen))?;
                followed.push(drive_service(&console, None, None)?.0);
                let _ = p.wait();
                finish(s, "the service's standby")?;
            }
            if rep as usize <= FAILOVERS {
                let listen = free_addr()?;
                let s = standby(bench, &dir.join("failover.trace"), &listen, Some(&console))?;
                let mut p = service_primary(bench, &image, &dir, &console, Some(&listen))?;
                let (_, failover) = drive_service(&console, Some(&console), Some(&mut p))?;
                failovers.extend(failover);
                finish(s, "the standby that took over")?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(format!("kvstore service, round {rep}: {e:#}"));
        }
        bench.progress(&format!("kvstore service round {rep} done"));
    }
    let ms = |v: &[f64]| v.iter().map(|s| s * 1e3).collect::<Vec<_>>();
    if !alone.is_empty() {
        service.push(vec![
            Cell::Text("record, no standby".into()),
            Cell::Num(median(&alone), 0),
            Cell::Missing,
            Cell::Missing,
        ]);
    }
    if !followed.is_empty() {
        service.push(vec![
            Cell::Text("record with a standby (output rule)".into()),
            Cell::Num(median(&followed), 0),
            if failovers.is_empty() {
                Cell::Missing
            } else {
                Cell::Num(median(&ms(&failovers)), 1)
            },
            failovers
                .iter()
                .cloned()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                .map_or(Cell::Missing, |v| Cell::Num(v * 1e3, 1)),
        ]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let host = &bench.host;
    Ok(Report {
        suite: "standby",
        repeats: bench.repeats,
        setup: vec![
            ("host".into(), format!("{}, {} CPUs", host.cpu, host.cpus)),
            ("load average before".into(), host.load_before.clone()),
            ("samsara".into(), bench.samsara_version.clone()),
            ("size".into(), size.name().into()),
            (
                "setting".into(),
                "primary and standby on this host over loopback: they share its cores".into(),
            ),
        ],
        tables: vec![table, service],
        notes: vec![format!(
            "Failover: SIGKILL of the primary after {} of {SERVICE_REQUESTS} requests to the first byte the standby serves on the same address ({FAILOVERS} kills).",
            SERVICE_REQUESTS / 2
        )],
        targets: Vec::new(),
        failures,
    })
}
