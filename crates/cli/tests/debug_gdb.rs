//! Reverse debugging driven by a real `gdb-multiarch` (`gdb -batch -x`)
//! against `samsara replay --gdb`: watchpoints and reverse-continue on a
//! racy guest at 4 harts, stepi / reverse-stepi on every hart, identical
//! output for identical scripts, and bad input that must not hang.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{GdbServer as Server, SAMSARA, guest, run_with_timeout, samsara, scratch_dir};

const GDB: &str = "gdb-multiarch";
const GDB_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs gdb in batch mode on `script`; its stdout and stderr, merged in
/// order (stderr goes to stdout).
fn gdb(server: &Server, elf: &Path, script: &str) -> String {
    let dir = scratch_dir("gdb-scripts");
    let path = dir.join(format!("s{:x}.gdb", fxhash(script)));
    std::fs::write(&path, script).expect("writing the gdb script");
    server.gdb_batch(&format!("file {}", elf.display()), &path, GDB_TIMEOUT)
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The racy counter recorded at 4 harts (once per test binary).
fn racy_trace() -> &'static (PathBuf, PathBuf, String) {
    static TRACE: OnceLock<(PathBuf, PathBuf, String)> = OnceLock::new();
    TRACE.get_or_init(|| {
        let dir = scratch_dir("debug-gdb");
        let trace = dir.join("racy_counter-4.trace");
        let elf = guest("racy_counter");
        let args: Vec<OsString> = vec![
            "record".into(),
            elf.clone().into(),
            "--harts".into(),
            "4".into(),
            "-o".into(),
            trace.clone().into(),
            "--perturb".into(),
            "11".into(),
        ];
        let run = samsara(args);
        run.assert_code(0);
        let output = run.stdout_str();
        (trace, elf, output)
    })
}

fn gdb_available() -> bool {
    let ok = Command::new(GDB)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{GDB} is missing: scripts/setup.sh installs it");
    ok
}

/// The recorded final value of the racy counter.
fn printed_racy(output: &str) -> u64 {
    let at = output.find("racy=").expect("the guest printed racy=");
    output[at + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number after racy=")
}

/// Values after `MARK` in gdb's output, in order.
fn marked(output: &str, mark: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(mark))
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn watchpoint_and_reverse_continue_find_the_last_writes_of_a_racy_counter() {
    gdb_available();
    let (trace, elf, output) = racy_trace();
    let racy = printed_racy(output);
    let server = Server::start(trace, &["--checkpoint-interval", "2000000"]);
    // Going backwards gdb shows the value after the write as "Old value"
    // and the one before it as "New value"; it lands just before the
    // store (it steps back over the watched access once more itself).
    let script = "\
continue
watch racy
reverse-continue
printf \"LAST thread=%d\\n\", $_thread
disable 1
stepi 2
printf \"AFTER racy=%lu\\n\", racy
reverse-stepi 2
enable 1
reverse-continue
printf \"PREV thread=%d\\n\", $_thread
";
    let out = gdb(&server, elf, script);
    assert!(out.contains("No more reverse-execution history"), "{out}");
    let olds = marked(&out, "Old value = ");
    let news = marked(&out, "New value = ");
    assert_eq!(olds.len(), 2, "{out}");
    assert_eq!(
        olds[0],
        racy.to_string(),
        "the last write stored the printed value: {out}"
    );
    assert_eq!(
        olds[1], news[0],
        "the previous write stored what the last one replaced: {out}"
    );
    assert_eq!(marked(&out, "AFTER racy="), vec![racy.to_string()], "{out}");
    // The thread gdb names is the one that stored it.
    let last = marked(&out, "LAST thread=");
    assert_eq!(last.len(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "Thread {} hit Hardware watchpoint 1: racy",
            last[0]
        )),
        "{out}"
    );
    assert_eq!(marked(&out, "PREV thread=").len(), 1, "{out}");
}

/// Registers of the selected thread after every one of `n` stepi, then
/// after every reverse-stepi back: gdb Python prints the mismatches.
fn step_back_script(threads: &[usize], n: usize) -> String {
    let threads: Vec<String> = threads.iter().map(|t| t.to_string()).collect();
    format!(
        "python
import gdb
NAMES = ['pc'] + ['x%d' % i for i in range(1, 32)]
def regs():
    f = gdb.selected_frame()
    return tuple(int(f.read_register(r)) & 0xffffffffffffffff for r in NAMES)
bad = 0
for t in [{threads}]:
    gdb.execute('thread %d' % t, to_string=True)
    seen = []
    for i in range({n}):
        seen.append(regs())
        gdb.execute('stepi', to_string=True)
    moved = len(set(seen))
    for i in reversed(range({n})):
        gdb.execute('reverse-stepi', to_string=True)
        if regs() != seen[i]:
            bad += 1
            if bad < 5:
                print('MISMATCH thread %d step %d: %s vs %s' % (t, i, regs()[:3], seen[i][:3]))
    print('THREAD %d steps %d distinct %d' % (t, {n}, moved))
print('BAD %d' % bad)
end
",
        threads = threads.join(", ")
    )
}

#[test]
fn stepi_then_reverse_stepi_on_every_hart_retraces_the_same_states() {
    gdb_available();
    let (trace, elf, _) = racy_trace();
    let server = Server::start(trace, &["--checkpoint-interval", "30000"]);
    let n = 1000;
    let script = format!(
        "break guest_main\ncontinue\ncontinue\ndelete\n{}",
        step_back_script(&[1, 2, 3, 4], n)
    );
    let out = gdb(&server, elf, &script);
    assert!(out.contains("BAD 0"), "{out}");
    for t in 1..=4 {
        let line = marked(&out, &format!("THREAD {t} steps {n} distinct "));
        assert_eq!(line.len(), 1, "{out}");
        let distinct: usize = line[0].parse().unwrap();
        assert!(distinct > 10, "hart {t} hardly moved: {out}");
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// gdb single-steps a RISC-V thread by a breakpoint at its next pc and a
/// resume of all threads. A hart waiting for its next entry lets the
/// others run first, through the same loop: each of their passes of that
/// pc used to go back to gdb (thousands of round trips, seconds for one
/// `stepi`). At positions of a committed recording where harts wait their
/// turn in the loop, each `stepi` takes a few resumes and moves the hart
/// by exactly one instruction.
#[test]
fn stepi_of_a_hart_waiting_for_its_turn_takes_a_few_resumes() {
    gdb_available();
    let trace = fixture("racy_counter-4harts.trace");
    let elf = fixture("racy_counter.elf");
    let image = elf.to_str().expect("a UTF-8 path");
    let server = Server::start(&trace, &["--image", image]);
    let script = r#"
python
import re
def when():
    return gdb.execute('monitor when', to_string=True)
def count(t):
    return int(re.search(r'hart %d: (\d+) instructions' % (t - 1), when()).group(1))
for seq in [104, 178, 326, 363, 437]:
    for t in range(1, 5):
        gdb.execute('monitor seek %d' % seq, to_string=True)
        gdb.execute('maintenance flush register-cache', to_string=True)
        if 'hart %d is running' % (t - 1) in when():
            continue
        gdb.execute('thread %d' % t, to_string=True)
        before = count(t)
        gdb.execute('set debug remote 1')
        out = gdb.execute('stepi', to_string=True)
        gdb.execute('set debug remote 0')
        resumes = out.count('Sending packet: $vCont')
        print('STEP %d %d resumes %d moved %d' % (seq, t, resumes, count(t) - before))
# With the scheduler locked, gdb resumes one thread: the others that the
# recording puts first still run, and gdb is told so.
gdb.execute('set scheduler-locking step')
gdb.execute('monitor seek 104', to_string=True)
gdb.execute('maintenance flush register-cache', to_string=True)
gdb.execute('thread 3', to_string=True)
print('LOCKED', gdb.execute('stepi', to_string=True).replace('\n', ' '))
end
"#;
    let out = gdb(&server, &elf, script);
    let steps = marked(&out, "STEP ");
    assert!(steps.len() >= 12, "{out}");
    for step in &steps {
        let words: Vec<&str> = step.split_whitespace().collect();
        let resumes: usize = words[3].parse().unwrap();
        assert_eq!(
            words[5], "1",
            "the hart moved by one instruction: {step}\n{out}"
        );
        // A few (how many depends on the recording's interleaving at that
        // position: the fixture of format 1 needed up to 8, that of
        // format 2 up to 9), never thousands.
        assert!(resumes <= 12, "one stepi, {resumes} resumes: {step}\n{out}");
    }
    let locked = marked(&out, "LOCKED");
    assert_eq!(locked.len(), 1, "{out}");
    assert!(
        locked[0].contains("also ran") && locked[0].contains("maintenance flush register-cache"),
        "{out}"
    );
}

#[test]
fn the_same_script_twice_prints_the_same_bytes() {
    gdb_available();
    let (trace, elf, _) = racy_trace();
    let server = Server::start(trace, &["--checkpoint-interval", "1000000"]);
    let script = "\
break guest_main
continue
continue
info threads
watch racy
continue
continue
info threads
reverse-continue
reverse-continue
info registers pc a5
monitor when
reverse-stepi
stepi
x/4i $pc
";
    let first = gdb(&server, elf, script);
    let second = gdb(&server, elf, script);
    assert!(first.contains("Hardware watchpoint"), "{first}");
    assert_eq!(first, second);
}

#[test]
fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    gdb_available();
    let (trace, elf, _) = racy_trace();
    let mut server = Server::start(trace, &["--checkpoint-interval", "1000000"]);
    // A client that speaks garbage, then leaves.
    {
        use std::io::Write;
        let mut raw = std::net::TcpStream::connect(&server.address).unwrap();
        let _ =
            raw.write_all(b"+$qSupported:zz#00$g#67\x03garbage$vCont;q#00$m0,ffffffffffffffff#00");
        std::thread::sleep(Duration::from_millis(200));
    }
    // gdb killed in the middle of a long command.
    {
        let dir = scratch_dir("gdb-scripts");
        let path = dir.join("long.gdb");
        std::fs::write(&path, "continue\nwatch racy\nreverse-continue 1000000\n").unwrap();
        let mut child = Command::new(GDB)
            .args(["-batch", "-nx"])
            .arg("-ex")
            .arg(format!("file {}", elf.display()))
            .arg("-ex")
            .arg(format!("target remote {}", server.address))
            .arg("-x")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(server.alive(), "the server died with its client");
    // Each command in Python so that an error does not end the script.
    let script = "\
python
import gdb
def attempt(cmd):
    try:
        print(gdb.execute(cmd, to_string=True).strip())
    except gdb.error as e:
        print('ERR %s: %s' % (cmd, e))
print('START')
for cmd in ['watch *(long *)0x10', 'continue', 'monitor seek 99999999', 'monitor seek nonsense',
            'monitor frobnicate', 'set var racy = 5', 'p racy', 'set var $pc = 0', 'p $pc',
            'monitor when']:
    attempt(cmd)
print('DONE')
end
";
    let out = gdb(&server, elf, script);
    assert!(out.contains("START") && out.contains("DONE"), "{out}");
    assert!(out.contains("past the recording's end"), "{out}");
    assert!(out.contains("is not a number"), "{out}");
    assert!(out.contains("unknown monitor command"), "{out}");
    assert!(out.contains("ERR set var racy = 5"), "{out}");
    assert!(out.contains("ERR set var $pc = 0"), "{out}");
    assert!(!out.contains("= 5\n"), "a write went through: {out}");
    assert!(server.alive());
    // And a fresh session starts at the recording's start.
    let out = gdb(&server, elf, "monitor when\n");
    assert!(out.contains("position: entry 1 step 0"), "{out}");
}

#[test]
fn samsara_debug_starts_gdb_on_the_recording_with_its_symbols() {
    gdb_available();
    let (trace, _, _) = racy_trace();
    let mut cmd = Command::new("sh");
    // gdb's errors go to stderr: merge them in order.
    cmd.args(["-c", "exec \"$@\" 2>&1", "sh", SAMSARA, "debug"])
        .arg(trace)
        .args([
            "--",
            "-batch",
            "-ex",
            "info threads",
            "-ex",
            "break guest_main",
        ])
        .args(["-ex", "continue", "-ex", "seek 50%", "-ex", "monitor when"]);
    let run = run_with_timeout(cmd, GDB_TIMEOUT);
    let out = run.stdout_str();
    assert_eq!(run.code(), Some(0), "{out}");
    assert!(out.contains("hart 3 M-mode"), "{out}");
    assert!(out.contains("hit Breakpoint 1"), "{out}");
    assert!(out.contains("guest_main (hart="), "symbols loaded: {out}");
    assert!(out.contains("% of "), "{out}");
}

/// One remote-protocol packet, framed and checksummed.
fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

/// Reads until a packet whose body starts with one of `prefixes` (acks,
/// console output and other packets are skipped); its body.
fn read_reply(stream: &mut std::net::TcpStream, prefixes: &[&str]) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8];
    loop {
        stream
            .read_exact(&mut byte)
            .expect("a reply before the timeout");
        buf.push(byte[0]);
        if let Some(start) = buf.iter().position(|&b| b == b'$')
            && buf.len() >= 3
            && buf[buf.len() - 3] == b'#'
        {
            // Run-length encoding: `X*n` is X and n - 29 more of it.
            let raw = &buf[start + 1..buf.len() - 3];
            let mut body = String::new();
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'*' && i + 1 < raw.len() {
                    let last = body.chars().last().unwrap_or(' ');
                    (0..raw[i + 1] - 29).for_each(|_| body.push(last));
                    i += 2;
                } else {
                    body.push(char::from(raw[i]));
                    i += 1;
                }
            }
            buf.clear();
            if prefixes.iter().any(|p| body.starts_with(p)) {
                return body;
            }
        }
    }
}

#[test]
fn ctrl_c_interrupts_a_long_continue_and_the_session_goes_on() {
    use std::io::Write;
    let (trace, _, _) = racy_trace();
    let server = Server::start(trace, &[]);
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(b"+").unwrap();
    stream
        .write_all(&packet("qSupported:multiprocess+"))
        .unwrap();
    read_reply(&mut stream, &["PacketSize"]);
    stream.write_all(b"+").unwrap();
    // A watch nothing writes keeps the continue sequential and long (the
    // whole recording); Ctrl-C (0x03) arrives once it has started (sent
    // with it, it would stop it before its first entry).
    stream.write_all(&packet("Z2,10,8")).unwrap();
    assert_eq!(read_reply(&mut stream, &["OK", "E"]), "OK");
    stream.write_all(b"+").unwrap();
    stream.write_all(&packet("vCont;c")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(b"\x03").unwrap();
    let stop = read_reply(&mut stream, &["T", "S"]);
    assert!(stop.starts_with("T02"), "a SIGINT stop: {stop}");
    stream.write_all(b"+").unwrap();
    // The session goes on: where are we, and continue to the end.
    stream.write_all(&packet("qRcmd,7768656e")).unwrap(); // "when"
    let mut when = String::new();
    loop {
        let reply = read_reply(&mut stream, &["O", "OK"]);
        stream.write_all(b"+").unwrap();
        if reply == "OK" {
            break;
        }
        let hex = &reply[1..];
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        when.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(when.contains("position: entry"), "{when}");
    assert!(
        !when.contains("position: entry 1 step 0 "),
        "it ran a little: {when}"
    );
    stream.write_all(&packet("z2,10,8")).unwrap();
    read_reply(&mut stream, &["OK"]);
    stream.write_all(b"+").unwrap();
    stream.write_all(&packet("vCont;c")).unwrap();
    let end = read_reply(&mut stream, &["T", "S"]);
    assert!(end.contains("replaylog:end"), "{end}");
}

/// dma_mix at 2 harts with a disk: a watch on a DMA buffer's first word
/// stops before the DMA entry that fills it as well as before the harts'
/// own stores, and reverse-continue from the end finds the same hits in
/// the opposite order.
#[test]
fn watches_see_dma_writes_and_reverse_continue_retraces_every_hit() {
    use samsara_debug::{ALL_HARTS, Timeline, TimelineOptions, Why};
    use samsara_engine::guest::FileOverrides;
    use samsara_engine::replay::{Position, ReplayConfig, Watch, WatchKind};
    use samsara_trace::{Block, Entry, TraceReader};
    use samsara_types::GuestVirtAddr;
    use std::sync::atomic::AtomicBool;

    let dir = scratch_dir("debug-dma");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let trace = dir.join("dma_mix-2.trace");
    let run = samsara([
        OsString::from("record"),
        guest("dma_mix").into(),
        "--harts".into(),
        "2".into(),
        "--disk".into(),
        disk.into(),
        "-o".into(),
        trace.clone().into(),
        "--quiet".into(),
    ]);
    run.assert_code(0);
    // The first DMA entry: its sequence number and first written address.
    let mut reader = TraceReader::open(&trace).unwrap();
    let (mut seq, mut dma) = (0u64, None);
    'scan: while let Some(block) = reader.next_block().unwrap() {
        if let Block::Entries { entries, .. } = block {
            for e in entries {
                seq += 1;
                if let Entry::Dma(d) = e {
                    dma = Some((seq, d.writes[0].0));
                    break 'scan;
                }
            }
        }
    }
    let (dma_seq, addr) = dma.expect("dma_mix does DMA");
    let config = ReplayConfig {
        cpu: Default::default(),
        trace,
        files: FileOverrides::default(),
        serial: true,
        echo: false,
    };
    let options = TimelineOptions {
        checkpoint_interval: 1 << 20,
        ..TimelineOptions::default()
    };
    let mut t = Timeline::open(&config, options).unwrap();
    t.add_watch(Watch {
        addr: GuestVirtAddr(addr),
        len: 8,
        kind: WatchKind::Write,
    });
    let never = AtomicBool::new(false);
    let mut forward = Vec::new();
    loop {
        let l = t.cont(ALL_HARTS, &never).unwrap();
        if l.why == Why::End {
            break;
        }
        assert!(matches!(l.why, Why::Watch { .. }), "{l:?}");
        forward.push(l.position);
        assert!(forward.len() < 2000, "too many hits");
    }
    assert!(
        forward.contains(&Position::before(dma_seq)),
        "the DMA entry {dma_seq} writing {addr:#x} was not reported: {forward:?}"
    );
    let mut backward = Vec::new();
    loop {
        let l = t.reverse_cont(&never).unwrap();
        if l.why == Why::Begin {
            break;
        }
        backward.push(l.position);
    }
    backward.reverse();
    assert_eq!(forward, backward);
}

#[test]
fn reverse_step_next_and_finish_work_at_source_level() {
    gdb_available();
    let (trace, elf, _) = racy_trace();
    let server = Server::start(trace, &["--checkpoint-interval", "100000"]);
    let script = "\
break barrier_wait
continue
delete
info symbol $pc
reverse-finish
info symbol $pc
step
info symbol $pc
finish
info symbol $pc
reverse-step
info symbol $pc
reverse-next
info symbol $pc
";
    let out = gdb(&server, elf, script);
    let symbols: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" in section .text"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    // In the callee, back at the call, into it again, out of it, back into
    // it from after the call (barrier_wait tail-calls barrier_episode), and
    // back over a line there.
    assert_eq!(
        symbols,
        [
            "barrier_wait",
            "guest_main",
            "barrier_wait",
            "guest_main",
            "barrier_episode",
            "barrier_episode"
        ],
        "{out}"
    );
    assert!(
        out.contains("start.c:120") && out.contains("119\t"),
        "{out}"
    );
    assert!(!out.contains("Error") && !out.contains("error"), "{out}");
}
