//! `samsara-bench --suite standby` (issue 16): the hot standby's cost and
//! speed. Each PARSEC-like workload (`--size`, default test) at 2 and 4 harts is
//! recorded plainly and with a standby on this host (`record --standby`
//! beside `samsara standby`, guest output held under the output rule),
//! interleaved, `--repeats` times: the primary's slowdown, the stream's
//! bandwidth, how long output waited for its acknowledgement, and the
//! standby's lag behind the stream (sampled every 5 ms: entries received
//! and not yet replayed, and how long the oldest had waited). Then two
//! key-value services at 4 harts on the TCP console — bare-metal `kvstore`
//! and the Linux shell service (linux/init's `samsara.kv`, journaling to
//! its disk; after scripts/setup-linux.sh): a client's requests per second
//! without and with a standby, and failover time, from the SIGKILL of the
//! primary to the first byte the standby serves.

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
/// A service guest: what `record` boots, how many requests a run makes
/// (half writes, half reads), and the banner to wait for (a Linux console
/// drops input sent before its driver is up).
struct ServiceGuest {
    name: &'static str,
    boot: Vec<String>,
    requests: usize,
    banner: Option<&'static str>,
    env: Vec<(String, String)>,
}
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

fn standby(bench: &Bench, trace: &Path, listen: &str, console: Option<&str>) -> Result<Running> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["standby", "--listen", listen, "-o"]).arg(trace);
    if let Some(c) = console {
        cmd.args(["--serial", &format!("tcp:{c}")]);
    }
    Ok(Running(Some(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
    )))
}

/// A child process killed if the measurement that started it fails.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn finish(mut child: Running, what: &str) -> Result<String> {
    let child = child.0.take().context("no process")?;
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

/// A stand-in standby that acknowledges every frame and replays nothing:
/// what streaming and the output rule cost the primary without a replay
/// competing for this host's cores. Returns its address and a thread
/// that ends with the connection.
fn ack_only_sink() -> Result<(String, std::thread::JoinHandle<()>)> {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let handle = std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let mut hello = [0u8; 20];
        if stream.read_exact(&mut hello).is_err() || stream.write_all(&hello).is_err() {
            return;
        }
        let mut through = 0u64;
        let mut head = [0u8; 5];
        let mut payload = Vec::new();
        while stream.read_exact(&mut head).is_ok() {
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
            payload.resize(len, 0);
            if stream.read_exact(&mut payload).is_err() {
                return;
            }
            if head[0] == 1 && len >= 8 {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&payload[..8]);
                through = through.max(u64::from_le_bytes(seq));
            }
            if head[0] == 3 || stream.write_all(&through.to_le_bytes()).is_err() {
                return;
            }
        }
    });
    Ok((addr, handle))
}

/// A recording streamed to [`ack_only_sink`]: its wall time.
fn with_sink(bench: &Bench, image: &Path, harts: u32, dir: &Path) -> Result<f64> {
    let (addr, sink) = ack_only_sink()?;
    let (wall, _) = record(bench, image, harts, &dir.join("sunk.trace"), Some(&addr))?;
    let _ = sink.join();
    Ok(wall)
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
        lag_ms: standby_said
            .lines()
            .find(|l| l.contains("standby lag:"))
            .and_then(|l| after(l, "entries /"))
            .unwrap_or(f64::NAN),
        lag_max_ms: standby_said
            .lines()
            .find(|l| l.contains("standby lag:"))
            .and_then(|l| l.split(", max").nth(1))
            .and_then(|rest| after(rest, "entries /"))
            .unwrap_or(f64::NAN),
    })
}

/// A client of the key-value service: (requests per second, the time from
/// `kill` (if given, after half the requests) to the standby's first byte).
fn drive_service(
    service: &ServiceGuest,
    console: &str,
    standby_console: Option<&str>,
    kill: Option<&mut Child>,
) -> Result<(f64, Option<f64>)> {
    let requests = service.requests;
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
    match service.banner {
        Some(banner) => {
            let mut line = String::new();
            while !line.starts_with(banner) {
                line.clear();
                if conn.1.read_line(&mut line)? == 0 {
                    bail!("the console closed before {banner:?}");
                }
            }
        }
        None => ask(&mut conn, "COUNT", "COUNT")?,
    }
    let start = Instant::now();
    let mut failover = None;
    let mut kill = kill;
    for i in 0..requests {
        if i == requests / 2
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
        let key = format!("k{}", i % (requests / 2));
        if i % 2 == 0 {
            ask(&mut conn, &format!("SET {key} v{i}"), &format!("OK {key}"))?;
        } else {
            ask(&mut conn, &format!("GET {key}"), "")?;
        }
    }
    let rate = requests as f64 / start.elapsed().as_secs_f64();
    ask(&mut conn, "QUIT", "BYE")?;
    Ok((rate, failover))
}

fn service_primary(
    bench: &Bench,
    service: &ServiceGuest,
    dir: &Path,
    console: &str,
    standby: Option<&str>,
) -> Result<Running> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.args(["record", "-q"])
        .args(&service.boot)
        .envs(service.env.iter().map(|(k, v)| (k, v)))
        .arg("-o")
        .arg(dir.join("service.trace"))
        .args(["--serial", &format!("tcp:{console}")]);
    if let Some(addr) = standby {
        cmd.args(["--standby", addr]);
    }
    Ok(Running(Some(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    )))
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
            ("with_sink_s", "to an ack-only sink s"),
            ("sink_slowdown", "slowdown (sink)"),
            ("with_standby_s", "with standby s"),
            ("slowdown", "slowdown (standby)"),
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
            let mut sunk = Vec::new();
            let mut followed = Vec::new();
            for rep in 1..=bench.repeats {
                let measured = record(bench, &image, harts, &dir.join("plain.trace"), None)
                    .and_then(|(p, _)| {
                        let k = with_sink(bench, &image, harts, &dir)?;
                        Ok((p, k, with_standby(bench, &image, harts, &dir)?))
                    });
                match measured {
                    Ok((p, k, s)) => {
                        bench.progress(&format!(
                            "{name} at {harts} harts, {rep}/{}: record {p:.3} s, to a sink {k:.3} s, with standby {:.3} s, {:.2} Mbit/s, lag {:.1} entries / {:.2} ms",
                            bench.repeats, s.wall, s.mbit, s.lag_entries, s.lag_ms
                        ));
                        plain.push(p);
                        sunk.push(k);
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
            let (p, k, s) = (median(&plain), median(&sunk), m(|w| w.wall));
            table.push(vec![
                Cell::Text((*name).into()),
                Cell::Int(u64::from(harts)),
                Cell::Num(p, 3),
                Cell::Num(k, 3),
                Cell::Num(k / p, 2),
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

    let mut services = vec![ServiceGuest {
        name: "kvstore (bare metal)",
        boot: vec![
            "--harts".into(),
            "4".into(),
            bench.guest("kvstore")?.display().to_string(),
        ],
        requests: 400,
        banner: None,
        env: Vec::new(),
    }];
    match crate::linux::LinuxFiles::find() {
        Ok(files) => {
            // Its own copy of the disk: the service journals to it.
            let disk = dir.join("linux-disk.img");
            std::fs::copy(&files.disk, &disk)?;
            services.push(ServiceGuest {
                name: "Linux shell service (journal on virtio disk)",
                boot: vec![
                    "--linux".into(),
                    "--harts".into(),
                    "4".into(),
                    "--disk".into(),
                    disk.display().to_string(),
                    "--append".into(),
                    "console=ttyS0 samsara.noload samsara.kv".into(),
                ],
                requests: 40,
                banner: Some("READY linux"),
                env: vec![(
                    "SAMSARA_LINUX_DIR".into(),
                    samsara_machine::guest::bundled_linux_dir()
                        .display()
                        .to_string(),
                )],
            });
        }
        Err(e) => failures.push(format!("the Linux service: {e:#}")),
    }
    let mut service_table = Table::new(
        "Services at 4 harts, TCP console, one client on this host (medians)",
        &[
            ("service", "service"),
            ("requests_per_s", "requests/s, no standby"),
            ("requests_per_s_standby", "requests/s with a standby"),
            ("ratio", "ratio"),
            ("failover_median_ms", "failover median ms"),
            ("failover_max_ms", "failover max ms"),
        ],
    );
    for service in &services {
        let (mut alone, mut followed, mut failovers) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 1..=bench.repeats.max(FAILOVERS as u32) {
            let console = free_addr()?;
            let result = (|| -> Result<()> {
                if rep <= bench.repeats {
                    let mut p = service_primary(bench, service, &dir, &console, None)?;
                    alone.push(drive_service(service, &console, None, None)?.0);
                    if let Some(p) = p.0.as_mut() {
                        let _ = p.wait();
                    }
                    let listen = free_addr()?;
                    let s = standby(
                        bench,
                        &dir.join("service-standby.trace"),
                        &listen,
                        Some(&console),
                    )?;
                    let mut p = service_primary(bench, service, &dir, &console, Some(&listen))?;
                    followed.push(drive_service(service, &console, None, None)?.0);
                    if let Some(p) = p.0.as_mut() {
                        let _ = p.wait();
                    }
                    finish(s, "the service's standby")?;
                }
                if rep as usize <= FAILOVERS {
                    let listen = free_addr()?;
                    let s = standby(bench, &dir.join("failover.trace"), &listen, Some(&console))?;
                    let mut p = service_primary(bench, service, &dir, &console, Some(&listen))?;
                    let (_, failover) =
                        drive_service(service, &console, Some(&console), p.0.as_mut())?;
                    failovers.extend(failover);
                    finish(s, "the standby that took over")?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                failures.push(format!("{}, round {rep}: {e:#}", service.name));
            }
            bench.progress(&format!("{} round {rep} done", service.name));
        }
        let ms: Vec<f64> = failovers.iter().map(|s| s * 1e3).collect();
        let (a, f) = (median(&alone), median(&followed));
        service_table.push(vec![
            Cell::Text(service.name.into()),
            if alone.is_empty() {
                Cell::Missing
            } else {
                Cell::Num(a, 0)
            },
            if followed.is_empty() {
                Cell::Missing
            } else {
                Cell::Num(f, 0)
            },
            if alone.is_empty() || followed.is_empty() {
                Cell::Missing
            } else {
                Cell::Num(f / a, 2)
            },
            if ms.is_empty() {
                Cell::Missing
            } else {
                Cell::Num(median(&ms), 1)
            },
            ms.iter()
                .cloned()
                .reduce(f64::max)
                .map_or(Cell::Missing, |v| Cell::Num(v, 1)),
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
        tables: vec![table, service_table],
        notes: vec![format!(
            "Failover: SIGKILL of the primary half-way through the client's requests, to the first byte the standby serves on the same address ({FAILOVERS} kills per service)."
        )],
        targets: Vec::new(),
        failures,
    })
}
