//! The hot standby (`record --standby`, `samsara standby`): a client
//! writes keys to the bundled key-value store (`kvstore`, 4 harts) over
//! the TCP console and reads them back; the primary is SIGKILLed at
//! random moments (fixed seed), the client reconnects to the standby, and
//! every write it saw acknowledged must be there, the guest must end as an
//! uninterrupted run does, and the standby's trace, which goes through the
//! takeover, must replay VERIFIED. Over loopback, and between the root
//! network namespace and one made with `ip netns` (joined by a veth pair).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{SAMSARA, guest, samsara, scratch_dir, serial};

/// Kill moments per network setting (bare-metal service).
const KILLS: usize = 20;

/// A service guest and how to drive it.
struct Service {
    /// What `record` boots (after `record`, before `-o`).
    boot: Vec<String>,
    /// Keys each run writes.
    keys: usize,
    /// The guest says it is ready (the banner's prefix): wait for it
    /// instead of asking (a Linux console drops input before its driver
    /// is up).
    banner: Option<&'static str>,
    /// Kill moments: this plus up to `kill_spread` after the first answer.
    kill_base: u64,
    kill_spread: u64,
    /// Environment of the primary.
    env: Vec<(String, String)>,
}

impl Service {
    /// The bundled key-value store, bare-metal, 4 harts.
    /// `samsara record` of this service into `trace`, serving its console
    /// at `console` and streaming to the standby at `standby`.
    fn primary(&self, trace: &Path, console: &str, standby: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["record".into()];
        args.extend(self.boot.iter().cloned());
        args.extend([
            "-o".into(),
            trace.display().to_string(),
            "--serial".into(),
            format!("tcp:{console}"),
            "--standby".into(),
            standby.to_string(),
        ]);
        args
    }

    fn kvstore() -> Service {
        Service {
            boot: vec![
                "--harts".into(),
                "4".into(),
                guest("kvstore").display().to_string(),
            ],
            keys: 400,
            banner: None,
            kill_base: 30,
            kill_spread: 400,
            env: Vec::new(),
        }
    }

    /// The Linux service (linux/init's `samsara.kv`): a shell loop that
    /// journals every write to its virtio disk, 4 harts.
    fn linux(disk: &Path) -> Service {
        Service {
            boot: vec![
                "--linux".into(),
                "--harts".into(),
                "4".into(),
                "--disk".into(),
                disk.display().to_string(),
                "--append".into(),
                "console=ttyS0 samsara.noload samsara.kv".into(),
            ],
            keys: 24,
            banner: Some("READY linux"),
            kill_base: 100,
            kill_spread: 2500,
            env: Vec::new(),
        }
    }
}

/// A free TCP port on this host (the test's processes bind it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where things listen: the primary's console, the standby's stream and
/// console, and the network namespace the standby runs in (if any).
#[derive(Clone)]
struct Net {
    primary_console: String,
    standby_listen: String,
    standby_console: String,
    standby_netns: Option<String>,
}

impl Net {
    fn loopback() -> Self {
        // The standby takes over the primary's very address.
        let console = format!("127.0.0.1:{}", free_port());
        Net {
            primary_console: console.clone(),
            standby_listen: format!("127.0.0.1:{}", free_port()),
            standby_console: console,
            standby_netns: None,
        }
    }
}

/// A child process killed when the test lets go of it (a failing test
/// must not leave a standby serving, nor its network namespace alive).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// `samsara standby --listen LISTEN [EXTRA…] -o TRACE`, its stderr in `log`.
fn spawn_standby(
    netns: Option<&str>,
    listen: &str,
    trace: &Path,
    extra: &[String],
    log: &Path,
) -> Proc {
    let mut args: Vec<String> = vec!["standby".into(), "--listen".into(), listen.into()];
    args.extend(extra.iter().cloned());
    args.extend(["-o".into(), trace.display().to_string()]);
    spawn(netns, &args, log)
}

fn spawn(netns: Option<&str>, args: &[String], log: &Path) -> Proc {
    spawn_env(netns, args, log, &[])
}

fn spawn_env(netns: Option<&str>, args: &[String], log: &Path, env: &[(String, String)]) -> Proc {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, SAMSARA]);
            c
        }
        None => Command::new(SAMSARA),
    };
    Proc(
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("a log file"))
            .spawn()
            .expect("starting samsara"),
    )
}

fn wait(child: &mut Proc, what: &str, log: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!(
                "{what} hung; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client of the key-value store that survives a failover: on a broken
/// connection it reconnects to the next address and asks again.
struct Client {
    addrs: Vec<String>,
    current: usize,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    /// When the connection to the primary broke, and when the standby
    /// first answered after that.
    broke: Option<Instant>,
    first_answer_after: Option<Duration>,
}

impl Client {
    fn new(addrs: Vec<String>) -> Self {
        Client {
            addrs,
            current: 0,
            conn: None,
            broke: None,
            first_answer_after: None,
        }
    }

    fn connect(&mut self) {
        let start = Instant::now();
        loop {
            let addr = &self.addrs[self.current];
            if let Ok(mut s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                if self.current > 0 {
                    // The dead primary may have passed the guest part of a
                    // line: end it (the guest answers an error, skipped).
                    let _ = s.write_all(b"\n");
                }
                let r = BufReader::new(s.try_clone().unwrap());
                self.conn = Some((s, r));
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "nothing listens on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads lines until one starts with `banner` (the first connection).
    fn wait_for(&mut self, banner: &str) {
        self.connect();
        let (_, r) = self.conn.as_mut().unwrap();
        let start = Instant::now();
        let mut line = String::new();
        loop {
            line.clear();
            let n = r
                .read_line(&mut line)
                .expect("the console, until the guest is ready");
            assert!(
                n > 0 && start.elapsed() < Duration::from_secs(300),
                "no {banner:?}"
            );
            if line.starts_with(banner) {
                return;
            }
        }
    }

    /// Sends `line` until a reply starting with `want` comes back.
    fn ask(&mut self, line: &str, want: &str) -> String {
        self.ask_any(line, &[want])
    }

    /// Sends `line` until a reply starting with one of `wants` comes back.
    fn ask_any(&mut self, line: &str, wants: &[&str]) -> String {
        loop {
            if self.conn.is_none() {
                self.connect();
            }
            let (s, r) = self.conn.as_mut().unwrap();
            let mut reply = String::new();
            let ok = s.write_all(format!("{line}\n").as_bytes()).is_ok()
                && loop {
                    reply.clear();
                    match r.read_line(&mut reply) {
                        // A line cut off by the connection's end is no answer.
                        Ok(n) if n > 0 && reply.ends_with('\n') => {
                            if wants.iter().any(|w| reply.starts_with(w)) {
                                break true;
                            }
                            // A reply to a request asked again after the
                            // failover, or the READY banner: not ours.
                        }
                        _ => break false,
                    }
                };
            if ok {
                if let (Some(broke), None) = (self.broke, self.first_answer_after) {
                    self.first_answer_after = Some(broke.elapsed());
                }
                return reply.trim_end().to_string();
            }
            // The primary is gone: on to the standby. (On loopback the
            // two share an address, and a connection the dying primary's
            // listener still took breaks in turn: asking again is right.)
            let broke = *self.broke.get_or_insert_with(Instant::now);
            assert!(
                broke.elapsed() < Duration::from_secs(60),
                "no answer to {line:?} for a minute after the primary's console broke"
            );
            self.current = (self.current + 1).min(self.addrs.len() - 1);
            self.conn = None;
        }
    }
}

/// Writes `KEYS` keys, reads every acknowledged one back, ends the guest;
/// returns its BYE line and how long the failover took, if one happened.
fn drive(client: &mut Client, tag: &str, keys: usize) -> (String, Option<Duration>) {
    let mut acked = Vec::new();
    for i in 0..keys {
        let key = format!("{tag}{i}");
        client.ask(&format!("SET {key} v{i}"), &format!("OK {key}"));
        acked.push((key, i));
    }
    for (key, i) in &acked {
        let reply = client.ask_any(
            &format!("GET {key}"),
            &[&format!("VAL {key} "), &format!("MISSING {key}")],
        );
        assert_eq!(
            reply,
            format!("VAL {key} v{i}"),
            "an acknowledged write is lost"
        );
    }
    let bye = client.ask("QUIT", "BYE");
    (bye, client.first_answer_after)
}

/// The deterministic pseudo-random kill moments (xorshift, fixed seed).
fn kill_delays(seed: u64, n: usize, base: u64, spread: u64) -> Vec<Duration> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(base + x % spread)
        })
        .collect()
}

/// One run with a standby: the primary is killed `kill_after` after the
/// client's first answer (never, with `None`). Returns the BYE line and
/// the failover time.
fn run(
    service: &Service,
    net: &Net,
    dir: &Path,
    n: usize,
    kill_after: Option<Duration>,
) -> (String, Option<Duration>) {
    let standby_trace = dir.join(format!("standby-{n}.trace"));
    let standby_log = dir.join(format!("standby-{n}.log"));
    let primary_log = dir.join(format!("primary-{n}.log"));
    let mut standby = spawn_standby(
        net.standby_netns.as_deref(),
        &net.standby_listen,
        &standby_trace,
        &[
            "--serial".into(),
            format!("tcp:{}", net.standby_console),
            "--failover-timeout".into(),
            "300".into(),
        ],
        &standby_log,
    );
    let mut args = service.primary(
        &dir.join(format!("primary-{n}.trace")),
        &net.primary_console,
        &net.standby_listen,
    );
    args.extend(["--failover-timeout".into(), "300".into()]);
    let mut primary = spawn_env(None, &args, &primary_log, &service.env);
    let mut client = Client::new(vec![
        net.primary_console.clone(),
        net.standby_console.clone(),
    ]);
    match service.banner {
        Some(banner) => client.wait_for(banner),
        None => {
            client.ask("COUNT", "COUNT");
        }
    }
    let killer = kill_after.map(|after| {
        let pid = primary.id();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    });
    let (bye, failover) = drive(&mut client, "k", service.keys);
    if let Some(k) = killer {
        k.join().unwrap();
    }
    let primary_code = wait(&mut primary, "the primary", &primary_log);
    let standby_code = wait(&mut standby, "the standby", &standby_log);
    let standby_says = std::fs::read_to_string(&standby_log).unwrap_or_default();
    assert_eq!(
        standby_code, 0,
        "run {n}: the standby failed:\n{standby_says}"
    );
    // What happened is the standby's to say: a kill that came after the
    // primary had sent its footer leaves a verified follower.
    if standby_says.contains("took over after entry") {
        assert!(
            kill_after.is_some(),
            "run {n}: a takeover without a kill:\n{standby_says}"
        );
    } else {
        assert!(
            standby_says.contains("VERIFIED"),
            "run {n}:\n{standby_says}"
        );
        if kill_after.is_none() {
            assert_eq!(primary_code, 0, "run {n}: the primary failed");
        }
    }
    // The standby's trace goes through the takeover: replay it whole.
    let replay = samsara(["replay".as_ref(), "-q".as_ref(), standby_trace.as_os_str()]);
    replay.assert_no_panic();
    assert_eq!(
        replay.code(),
        Some(0),
        "run {n}: the standby's trace does not replay VERIFIED:\n{}",
        replay.stderr
    );
    (bye, failover)
}

/// Streams `trace` to a fresh standby as a primary would (a stand-in
/// primary sending the file's bytes), lets it follow the whole recording
/// with its own disk, and returns that disk.
fn follow_trace(trace: &Path, dir: &Path, n: usize) -> Vec<u8> {
    let listen = format!("127.0.0.1:{}", free_port());
    let copy = dir.join(format!("refollowed-{n}.trace"));
    let log = dir.join(format!("refollowed-{n}.log"));
    let mut standby = spawn_standby(None, &listen, &copy, &[], &log);
    let mut stream = {
        let start = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(&listen) {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no standby");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut hello = b"SAMSARA-STANDBY\0".to_vec();
    hello.extend_from_slice(&1u32.to_le_bytes());
    stream.write_all(&hello).unwrap();
    let bytes = std::fs::read(trace).expect("the trace");
    for chunk in bytes.chunks(1 << 16) {
        let mut frame = vec![1u8];
        frame.extend_from_slice(&((chunk.len() + 8) as u32).to_le_bytes());
        frame.extend_from_slice(&0u64.to_le_bytes());
        frame.extend_from_slice(chunk);
        stream.write_all(&frame).unwrap();
    }
    stream.write_all(&[3, 0, 0, 0, 0]).unwrap();
    // Its acknowledgements are not read: the socket's buffer holds them.
    assert_eq!(wait(&mut standby, "the re-following standby", &log), 0);
    let says = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(says.contains("VERIFIED"), "{says}");
    let mut disk = copy.into_os_string();
    disk.push(".disk");
    std::fs::read(disk).expect("the re-following standby's disk")
}

fn kills(service: &Service, net: &Net, tag: &str, seed: u64, kills: usize) {
    let dir = scratch_dir(tag);
    // What an uninterrupted run ends with, for the same requests.
    let (reference, none) = run(service, net, &dir, 0, None);
    assert!(none.is_none());
    let keys = service.keys;
    assert!(
        reference.starts_with(&format!("BYE {keys} ")),
        "{reference}"
    );
    let mut failovers = Vec::new();
    let delays = kill_delays(seed, kills, service.kill_base, service.kill_spread);
    for (i, after) in delays.into_iter().enumerate() {
        let n = i + 1;
        let (bye, failover) = run(service, net, &dir, n, Some(after));
        assert_eq!(
            bye, reference,
            "run {n} (killed after {after:?}) ended otherwise than an uninterrupted run"
        );
        // A disk guest: the disk the standby took over with, and wrote on,
        // is the one the whole continued trace makes. (Not the
        // uninterrupted run's: a request asked again after the failover is
        // journaled twice.)
        let disk = dir.join(format!("standby-{n}.trace.disk"));
        if disk.exists() {
            let followed = follow_trace(&dir.join(format!("standby-{n}.trace")), &dir, n);
            assert!(
                std::fs::read(&disk).ok() == Some(followed),
                "run {n}: the disk the standby took over with is not the one its trace makes"
            );
        }
        failovers.extend(failover);
    }
    assert!(
        failovers.len() >= kills / 2,
        "only {} of {kills} kills landed while the client was busy",
        failovers.len()
    );
    let max = failovers.iter().max().unwrap();
    common::note(&format!(
        "{tag}: {} failovers, longest from the broken connection to the standby's first answer {:.0} ms",
        failovers.len(),
        max.as_secs_f64() * 1e3
    ));
}

#[test]
fn the_standby_takes_over_wherever_the_primary_is_killed_over_loopback() {
    let _guard = serial();
    kills(
        &Service::kvstore(),
        &Net::loopback(),
        "standby-loopback",
        20_261_207,
        KILLS,
    );
}

/// A network namespace with a veth pair to the root namespace: the
/// standby runs in it, the primary (and the client) outside.
struct Netns {
    name: String,
    outer: String,
    /// 10.231.N.0/24: N from the process id, so that a leftover of another
    /// run never shares the subnet.
    subnet: u32,
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id() % 100_000;
        let name = format!("samsara-sb{id}");
        let outer = format!("sbo{id}");
        let inner = format!("sbi{id}");
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("running ip");
            assert!(
                out.status.success(),
                "ip {}: {} (the standby test makes a network namespace: it runs as root)",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let subnet = id % 250;
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &outer]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name: name.clone(),
            outer: outer.clone(),
            subnet,
        };
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&[
            "addr",
            "add",
            &format!("10.231.{subnet}.1/24"),
            "dev",
            &outer,
        ]);
        ip(&["link", "set", &outer, "up"]);
        let inner_addr = format!("10.231.{subnet}.2/24");
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &inner_addr,
            "dev",
            &inner,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &inner, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting our end deletes the pair, even if something still
        // holds the namespace open.
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn the_standby_takes_over_wherever_the_primary_is_killed_across_namespaces() {
    let _guard = serial();
    let ns = Netns::create();
    let n = ns.subnet;
    let net = Net {
        primary_console: format!("10.231.{n}.1:{}", free_port()),
        standby_listen: format!("10.231.{n}.2:{}", free_port()),
        standby_console: format!("10.231.{n}.2:{}", free_port()),
        standby_netns: Some(ns.name.clone()),
    };
    kills(&Service::kvstore(), &net, "standby-netns", 7_122_026, KILLS);
}

#[test]
fn a_primary_runs_on_when_its_standby_is_killed() {
    let _guard = serial();
    let dir = scratch_dir("standby-killed");
    let net = Net::loopback();
    let standby_log = dir.join("standby.log");
    let primary_log = dir.join("primary.log");
    let mut standby = spawn_standby(
        None,
        &net.standby_listen,
        &dir.join("standby.trace"),
        &[],
        &standby_log,
    );
    let mut primary = spawn(
        None,
        &Service::kvstore().primary(
            &dir.join("primary.trace"),
            &net.primary_console,
            &net.standby_listen,
        ),
        &primary_log,
    );
    let mut client = Client::new(vec![net.primary_console.clone()]);
    client.ask("COUNT", "COUNT");
    for i in 0..50 {
        client.ask(&format!("SET a{i} {i}"), &format!("OK a{i}"));
    }
    standby.kill().expect("killing the standby");
    let _ = standby.wait();
    for i in 0..50 {
        assert_eq!(
            client.ask(&format!("GET a{i}"), "VAL"),
            format!("VAL a{i} {i}")
        );
    }
    assert!(client.ask("QUIT", "BYE").starts_with("BYE 50 "));
    assert_eq!(wait(&mut primary, "the primary", &primary_log), 0);
    let says = std::fs::read_to_string(&primary_log).unwrap_or_default();
    assert!(
        says.contains("lost the standby") && says.contains("no longer held"),
        "the primary did not say it lost its standby:\n{says}"
    );
    let replay = samsara([
        "replay".as_ref(),
        "-q".as_ref(),
        dir.join("primary.trace").as_os_str(),
    ]);
    assert_eq!(
        replay.code(),
        Some(0),
        "the primary's trace does not replay"
    );
}

#[test]
fn foreign_and_corrupt_streams_are_refused() {
    let _guard = serial();
    let dir = scratch_dir("standby-foreign");
    let listen = format!("127.0.0.1:{}", free_port());
    let log = dir.join("standby.log");
    let mut standby = spawn_standby(
        None,
        &listen,
        &dir.join("standby.trace"),
        &["--failover-timeout".into(), "300".into()],
        &log,
    );
    let connect = || {
        let start = Instant::now();
        loop {
            match TcpStream::connect(&listen) {
                Ok(s) => return s,
                Err(e) => assert!(start.elapsed() < Duration::from_secs(20), "{e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Something else entirely: refused, and the standby waits on.
    let mut web = connect();
    web.write_all(b"GET / HTTP/1.1\r\nHost: standby\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        standby.try_wait().unwrap().is_none(),
        "a foreign client ended the standby"
    );
    // The right greeting, then bytes that are no trace.
    let mut bad = connect();
    let mut hello = b"SAMSARA-STANDBY\0".to_vec();
    hello.extend_from_slice(&1u32.to_le_bytes());
    bad.write_all(&hello).unwrap();
    let mut frame = vec![1u8];
    let junk = b"this is not a samsara trace, it is a corrupt stream";
    frame.extend_from_slice(&((junk.len() + 8) as u32).to_le_bytes());
    frame.extend_from_slice(&1u64.to_le_bytes());
    frame.extend_from_slice(junk);
    bad.write_all(&frame).unwrap();
    let code = wait(&mut standby, "the standby", &log);
    let says = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        says.contains("refused a connection") && says.contains("not a samsara standby stream"),
        "the foreign client was not reported:\n{says}"
    );
    assert_ne!(code, 0, "a corrupt stream must fail the standby:\n{says}");
    assert!(
        says.contains("standby.trace")
            && !says.contains("going live")
            && !says.contains("panicked"),
        "the corrupt stream is not named, or was taken over:\n{says}"
    );
}

#[test]
fn kill_moments_are_fixed_and_spread() {
    let a = kill_delays(20_261_207, KILLS, 30, 400);
    assert_eq!(a, kill_delays(20_261_207, KILLS, 30, 400));
    let (min, max) = (a.iter().min().unwrap(), a.iter().max().unwrap());
    assert!(*max - *min > Duration::from_millis(250), "{a:?}");
}

/// A stand-in standby that speaks the protocol and acknowledges only when
/// told to: the output rule, seen from the client.
#[test]
fn console_output_waits_for_the_standbys_acknowledgement() {
    use std::io::Read;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _guard = serial();
    let dir = scratch_dir("standby-output-rule");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    let console = format!("127.0.0.1:{}", free_port());
    let log = dir.join("primary.log");
    let mut args = Service::kvstore().primary(&dir.join("primary.trace"), &console, &listen);
    args.extend(["--failover-timeout".into(), "5000".into()]);
    let mut primary = spawn(None, &args, &log);
    let (mut stream, _) = listener.accept().unwrap();
    let mut hello = [0u8; 20];
    stream.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..16], b"SAMSARA-STANDBY\0");
    stream.write_all(&hello).unwrap();
    let acking = Arc::new(AtomicBool::new(false));
    let stop_acking = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fake = {
        let (acking, stop_acking, seen) = (acking.clone(), stop_acking.clone(), seen.clone());
        let mut acks = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut through = 0u64;
            let mut head = [0u8; 5];
            while stream.read_exact(&mut head).is_ok() {
                let len = u32::from_le_bytes(head[1..5].try_into().unwrap()) as usize;
                let mut payload = vec![0u8; len];
                if stream.read_exact(&mut payload).is_err() {
                    break;
                }
                if head[0] == 1 {
                    through = through.max(u64::from_le_bytes(payload[..8].try_into().unwrap()));
                    seen.store(through, Ordering::Relaxed);
                }
                if stop_acking.load(Ordering::Relaxed) {
                    // Gone without a word: the primary must carry on.
                    let _ = acks.shutdown(std::net::Shutdown::Both);
                    break;
                }
                if acking.load(Ordering::Relaxed) {
                    let _ = acks.write_all(&through.to_le_bytes());
                }
            }
        })
    };
    let mut client = Client::new(vec![console.clone()]);
    client.connect();
    let (mut s, r) = client.conn.take().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut r = r;
    r.get_mut()
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(b"COUNT\n").unwrap();
    // The guest has booted, printed READY and answered (hundreds of
    // entries: device accesses of its output) before silence means much.
    let start = Instant::now();
    while seen.load(Ordering::Relaxed) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the guest did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut line = String::new();
    assert!(
        r.read_line(&mut line).is_err() && line.is_empty(),
        "the console spoke ({line:?}) before the standby acknowledged anything"
    );
    acking.store(true, Ordering::Relaxed);
    r.get_mut()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        line.clear();
        r.read_line(&mut line)
            .expect("the held output, once acknowledged");
        answers.push(line.trim_end().to_string());
    }
    assert_eq!(answers, ["READY 4", "COUNT 0"]);
    stop_acking.store(true, Ordering::Relaxed);
    fake.join().unwrap();
    client.conn = Some((s, r));
    assert_eq!(client.ask("SET x 1", "OK"), "OK x");
    assert!(client.ask("QUIT", "BYE").starts_with("BYE 1 "));
    assert_eq!(wait(&mut primary, "the primary", &log), 0);
    let says = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(says.contains("lost the standby"), "{says}");
}

/// A standby the primary gave up on (it fell silent: here, a stand-in
/// that never acknowledges) is told so and never goes live: no split
/// brain from a slow standby.
#[test]
fn a_dropped_standby_does_not_take_over() {
    use std::io::Read;
    let _guard = serial();
    let dir = scratch_dir("standby-dropped");
    // A real standby behind a relay that stops passing acknowledgements.
    let listen = format!("127.0.0.1:{}", free_port());
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let log = dir.join("standby.log");
    let mut standby = spawn_standby(None, &listen, &dir.join("standby.trace"), &[], &log);
    let primary_log = dir.join("primary.log");
    let console = format!("127.0.0.1:{}", free_port());
    let mut args = Service::kvstore().primary(&dir.join("primary.trace"), &console, &relay_addr);
    args.extend(["--failover-timeout".into(), "300".into()]);
    let mut primary = spawn(None, &args, &primary_log);
    let (from_primary, _) = relay.accept().unwrap();
    let to_standby = {
        let start = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(&listen) {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Primary to standby: everything. Standby to primary: the greeting only.
    let (mut a, mut b) = (
        from_primary.try_clone().unwrap(),
        to_standby.try_clone().unwrap(),
    );
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
    });
    let mut hello = [0u8; 20];
    let mut back = to_standby;
    back.read_exact(&mut hello).unwrap();
    let mut to_primary = from_primary;
    to_primary.write_all(&hello).unwrap();
    // No acknowledgement comes: the primary gives the standby up, tells
    // it, and serves on alone.
    let code = wait(&mut standby, "the standby", &log);
    let mut client = Client::new(vec![console]);
    assert_eq!(client.ask("SET a 1", "OK"), "OK a");
    assert!(client.ask("QUIT", "BYE").starts_with("BYE 1 "));
    assert_eq!(wait(&mut primary, "the primary", &primary_log), 0);
    let _ = forward.join();
    let says = std::fs::read_to_string(&log).unwrap_or_default();
    assert_ne!(code, 0, "{says}");
    assert!(
        says.contains("dropped this standby") && !says.contains("going live"),
        "{says}"
    );
    let primary_says = std::fs::read_to_string(&primary_log).unwrap_or_default();
    assert!(primary_says.contains("lost the standby"), "{primary_says}");
}

/// The standby's devices are live: every device load of these guests
/// (timer, IPIs, the UART, the PLIC) is done on its own devices and
/// checked where they can know the answer; a finished recording is then
/// VERIFIED.
#[test]
fn a_standby_follows_device_heavy_guests_with_live_devices() {
    let _guard = serial();
    let dir = scratch_dir("standby-devices");
    for (name, harts) in [("timer_irq", 2), ("ipi_pingpong", 4), ("hello", 4)] {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("{name}-standby.log"));
        let mut standby = spawn_standby(
            None,
            &listen,
            &dir.join(format!("{name}-standby.trace")),
            &[],
            &log,
        );
        let recorded = samsara([
            "record".as_ref(),
            "-q".as_ref(),
            "--harts".as_ref(),
            harts.to_string().as_ref(),
            guest(name).as_os_str(),
            "-o".as_ref(),
            dir.join(format!("{name}.trace")).as_os_str(),
            "--standby".as_ref(),
            listen.as_ref(),
        ]);
        assert_eq!(recorded.code(), Some(0), "{name}: {}", recorded.stderr);
        assert_eq!(wait(&mut standby, "the standby", &log), 0, "{name}");
        let says = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(says.contains("VERIFIED"), "{name}:\n{says}");
    }
}

/// A disk guest: the standby keeps its own copy of the disk current
/// (the guest's writes reach it during replay, each completion checked
/// against the log), and takes over with the primary's requests in flight.
/// Wherever the primary dies, the guest ends as an uninterrupted run does
/// and the standby's disk ends equal to the uninterrupted run's.
#[test]
fn a_standby_keeps_the_disk_and_takes_over_with_it() {
    let _guard = serial();
    let dir = scratch_dir("standby-disk");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    // (whether the standby took over, what the guest printed, its disk)
    let run_once = |n: usize, kill_at_bytes: Option<u64>| -> (bool, String, Vec<u8>) {
        let listen = format!("127.0.0.1:{}", free_port());
        let trace = dir.join(format!("standby-{n}.trace"));
        let log = dir.join(format!("standby-{n}.log"));
        let out = dir.join(format!("standby-{n}.out"));
        let mut standby = Proc(
            Command::new(SAMSARA)
                .args(["standby", "--listen", &listen, "-o"])
                .arg(&trace)
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let primary_trace = dir.join(format!("primary-{n}.trace"));
        let primary_log = dir.join(format!("primary-{n}.log"));
        let mut primary = Proc(
            Command::new(SAMSARA)
                .args(["record", "--cpu", "interp", "--harts", "4", "--disk"])
                .arg(&disk)
                .arg(guest("diskio"))
                .arg("-o")
                .arg(&primary_trace)
                .args(["--standby", &listen])
                .stdout(std::fs::File::create(dir.join(format!("primary-{n}.out"))).unwrap())
                .stderr(std::fs::File::create(&primary_log).unwrap())
                .spawn()
                .unwrap(),
        );
        if let Some(bytes) = kill_at_bytes {
            let start = Instant::now();
            while std::fs::metadata(&primary_trace).map_or(0, |m| m.len()) < bytes
                && primary.try_wait().unwrap().is_none()
                && start.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = primary.kill();
        }
        let _ = wait(&mut primary, "the primary", &primary_log);
        assert_eq!(wait(&mut standby, "the standby", &log), 0, "run {n}");
        let says = std::fs::read_to_string(&log).unwrap_or_default();
        let printed = std::fs::read_to_string(&out).unwrap_or_default();
        let replay = samsara(["replay".as_ref(), "-q".as_ref(), trace.as_os_str()]);
        assert_eq!(replay.code(), Some(0), "run {n}: {}\n{says}", replay.stderr);
        let mut image = trace.as_os_str().to_owned();
        image.push(".disk");
        let ended = std::fs::read(&image).expect("the standby's disk");
        if says.contains("took over") {
            (true, printed, ended)
        } else {
            assert!(says.contains("VERIFIED"), "run {n}:\n{says}");
            let printed = std::fs::read_to_string(dir.join(format!("primary-{n}.out")));
            (false, printed.unwrap_or_default(), ended)
        }
    };
    let (_, reference_output, reference_disk) = run_once(0, None);
    assert!(
        reference_output.contains("diskio: PASS"),
        "{reference_output}"
    );
    let mut took_over = 0;
    let kill_points = (1..=12u64).map(|k| k * 36_000 - 30_000);
    for (n, bytes) in kill_points.enumerate() {
        let (taken, output, ended) = run_once(n + 1, Some(bytes));
        if !taken {
            continue;
        }
        took_over += 1;
        assert!(output.contains("diskio: PASS"), "run {}: {output}", n + 1);
        assert_eq!(
            output.lines().find(|l| l.contains("checksum")),
            reference_output.lines().find(|l| l.contains("checksum")),
            "run {}",
            n + 1
        );
        assert!(
            ended == reference_disk,
            "run {}: the standby's disk differs",
            n + 1
        );
    }
    assert!(
        took_over >= 8,
        "only {took_over} of 12 kills landed during the run"
    );
}

/// The Linux service at 4 harts (a shell loop journaling every write to
/// the virtio disk): the primary killed at 3 fixed-seed moments, the
/// client fails over and finds every acknowledged write, the guest ends as
/// an uninterrupted run, the standby's trace replays VERIFIED.
/// `scripts/standby-soak.sh` runs the same at 20 moments.
#[test]
fn a_linux_service_fails_over_to_its_standby() {
    let _guard = serial();
    linux_kills(3);
}

/// [`a_linux_service_fails_over_to_its_standby`] at 20 moments (several
/// minutes: `scripts/standby-soak.sh`).
#[test]
#[ignore]
fn linux_service_soak() {
    let _guard = serial();
    linux_kills(20);
}

fn linux_kills(moments: usize) {
    let dir = common::linux_dir();
    let scratch = scratch_dir("standby-linux-disk");
    let disk = scratch.join("disk.img");
    std::fs::copy(dir.join("disk.img"), &disk).expect("copying the Linux disk");
    let mut service = Service::linux(&disk);
    service.env = vec![("SAMSARA_LINUX_DIR".into(), dir.display().to_string())];
    kills(
        &service,
        &Net::loopback(),
        "standby-linux",
        16_122_026,
        moments,
    );
}

/// A standby that took over streams to a standby of its own: the new
/// standby receives the whole trace (the first primary's part too) and,
/// when the new primary finishes, verifies all of it.
#[test]
fn a_standby_that_took_over_streams_to_the_next() {
    let _guard = serial();
    let dir = scratch_dir("standby-chain");
    let net = Net::loopback();
    let second = format!("127.0.0.1:{}", free_port());
    let second_log = dir.join("second.log");
    let mut second_standby =
        spawn_standby(None, &second, &dir.join("second.trace"), &[], &second_log);
    let first_log = dir.join("first.log");
    let mut first_standby = spawn_standby(
        None,
        &net.standby_listen,
        &dir.join("first.trace"),
        &[
            "--serial".into(),
            format!("tcp:{}", net.standby_console),
            "--standby".into(),
            second,
        ],
        &first_log,
    );
    let primary_log = dir.join("primary.log");
    let args = Service::kvstore().primary(
        &dir.join("primary.trace"),
        &net.primary_console,
        &net.standby_listen,
    );
    let mut primary = spawn(None, &args, &primary_log);
    let mut client = Client::new(vec![net.primary_console.clone(), net.standby_console]);
    client.ask("COUNT", "COUNT");
    for i in 0..50 {
        client.ask(&format!("SET a{i} {i}"), &format!("OK a{i}"));
    }
    primary.kill().expect("killing the primary");
    for i in 50..100 {
        client.ask(&format!("SET a{i} {i}"), &format!("OK a{i}"));
    }
    for i in 0..100 {
        assert_eq!(
            client.ask(&format!("GET a{i}"), &format!("VAL a{i} ")),
            format!("VAL a{i} {i}")
        );
    }
    assert!(client.ask("QUIT", "BYE").starts_with("BYE 100 "));
    assert_eq!(wait(&mut first_standby, "the first standby", &first_log), 0);
    let first_says = std::fs::read_to_string(&first_log).unwrap_or_default();
    assert!(first_says.contains("took over"), "{first_says}");
    assert_eq!(
        wait(&mut second_standby, "the second standby", &second_log),
        0
    );
    let second_says = std::fs::read_to_string(&second_log).unwrap_or_default();
    assert!(
        second_says.contains("the primary finished") && second_says.contains("VERIFIED"),
        "{second_says}"
    );
    assert_eq!(
        std::fs::read(dir.join("first.trace")).unwrap(),
        std::fs::read(dir.join("second.trace")).unwrap(),
        "the next standby's copy differs from the trace it was sent"
    );
}
