//! `samsara-bench --suite debug` (issue 14): reverse debugging of a Linux
//! boot recorded at 4 harts. One invocation records the boot
//! (`samsara record`), replays it plainly (`samsara replay --json`, which
//! must verify), then drives the timeline that `samsara replay --gdb`
//! serves ([`samsara_debug::Timeline`]) in this process: forward replay
//! with checkpoints to the end, `reverse-stepi` at random positions (fixed
//! seed), `reverse-continue` to a watchpoint hit D instructions back, and
//! the checkpoints' memory. Beside it, QEMU's own record/replay of the same
//! kernel at 1 CPU, driven by gdb-multiarch ([`crate::qemu_rr`]).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use samsara_debug::{ALL_HARTS, Timeline, TimelineOptions, Why};
use samsara_engine::replay::{ReplayConfig, Watch, WatchKind};
use samsara_types::{GuestPhysAddr, GuestVirtAddr};

use crate::context::{Bench, verified_replay};
use crate::linux::LinuxFiles;
use crate::process::{last_lines, run_process};
use crate::qemu_rr;
use crate::report::{Cell, Report, Table, Target};
use crate::stats::median;

/// Harts of the recorded boot.
const HARTS: u32 = 4;
/// The kernel command line (/init's default workload, no disk).
pub(crate) const CMDLINE: &str = "console=ttyS0 earlycon=sbi";
/// Seed of the random positions.
const SEED: u64 = 0x5eed_0014;
/// The watched kernel data: the printk ring buffer's copy of this
/// message's text, written once, late in the boot.
pub(crate) const MESSAGE: &[u8] = b"Run /init as init process";
/// Where RAM starts, where OpenSBI's fw_dynamic enters the kernel, and
/// where the RV64 kernel maps its image (no KASLR seed is given).
const RAM_BASE: u64 = 0x8000_0000;
const RAM_BYTES: u64 = 512 << 20;
pub(crate) const KERNEL_PA: u64 = 0x8020_0000;
pub(crate) const KERNEL_VA: u64 = 0xffff_ffff_8000_0000;
/// The kernel image's span searched for the message (text, data, bss).
const KERNEL_SPAN: u64 = 64 << 20;

/// The targets.
const TARGET_FORWARD_RATIO: f64 = 1.15;
const TARGET_RSTEP_MEDIAN: f64 = 0.2;
const TARGET_RSTEP_MAX: f64 = 1.0;

/// What the debug suite is asked for.
pub struct DebugOptions {
    /// Fewer positions and distances, no QEMU gdb positions past the first.
    pub quick: bool,
}

/// xorshift64*: the same positions every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// Records the boot at `HARTS` harts into `trace`.
fn record(bench: &Bench, files: &LinuxFiles, trace: &Path) -> Result<()> {
    let mut cmd = Command::new(&bench.samsara);
    cmd.arg("record")
        .arg("--bios")
        .arg(&files.firmware)
        .arg("--kernel")
        .arg(&files.kernel)
        .arg("--initrd")
        .arg(&files.initrd)
        .arg("--append")
        .arg(CMDLINE)
        .args(["--mem", "512M", "--harts"])
        .arg(HARTS.to_string())
        .arg("-o")
        .arg(trace);
    let run = run_process(cmd, bench.timeout)?;
    let out = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() || !out.contains("reboot: Power down") {
        bail!(
            "{} did not power off ({}): {}",
            run.what,
            run.status,
            last_lines(&format!("{out}\n{}", run.stderr), 6)
        );
    }
    Ok(())
}

/// Finds the ring buffer's copy of [`MESSAGE`] in the kernel image (not a
/// console buffer's, which has the "[ time] " prefix before it) and its
/// kernel virtual address, checked through a hart's translation.
fn find_message(timeline: &Timeline) -> Result<u64> {
    let session = timeline.session();
    let mut chunk = vec![0u8; 1 << 20];
    let mut found = Vec::new();
    let end = (KERNEL_PA + KERNEL_SPAN).min(RAM_BASE + RAM_BYTES);
    let mut pa = KERNEL_PA;
    while pa < end {
        let n = session.read_phys(0, GuestPhysAddr(pa), &mut chunk);
        for i in 1..n.saturating_sub(MESSAGE.len()) {
            if &chunk[i..i + MESSAGE.len()] == MESSAGE && chunk[i - 1] != b' ' {
                found.push(pa + i as u64);
            }
        }
        // Overlap the next chunk by the message's length.
        pa += (n.max(MESSAGE.len() + 1) - MESSAGE.len()) as u64;
    }
    for &pa in &found {
        let va = pa - KERNEL_PA + KERNEL_VA;
        let mut buf = vec![0u8; MESSAGE.len()];
        for hart in 0..session.harts().len() {
            if session.read_virt(hart, GuestVirtAddr(va), &mut buf) == buf.len() && buf == MESSAGE {
                return Ok(va);
            }
        }
    }
    bail!(
        "{:?} not found in the kernel image's memory at the end of the recording (candidates at {:x?})",
        String::from_utf8_lossy(MESSAGE),
        found
    )
}

/// `samsara-bench --suite debug`.
pub fn debug_suite(bench: &Bench, options: &DebugOptions) -> Result<Report> {
    let files = LinuxFiles::find()?;
    let scratch = std::env::temp_dir().join(format!("samsara-bench-debug-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let result = measure(bench, options, &files, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure(
    bench: &Bench,
    options: &DebugOptions,
    files: &LinuxFiles,
    scratch: &Path,
) -> Result<Report> {
    let never = AtomicBool::new(false);
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut targets = Vec::new();
    let trace = scratch.join("linux4.trace");
    bench.progress(&format!("recording the Linux boot at {HARTS} harts"));
    let started = Instant::now();
    record(bench, files, &trace)?;
    let record_s = secs(started);

    bench.progress("plain replay (samsara replay --json)");
    let (plain1_s, plain_run) = verified_replay(bench, &trace, false)?;
    let plain_process_s = plain_run.wall.as_secs_f64();

    bench.progress("timeline: open, then continue to the end (no breakpoints)");
    let config = ReplayConfig {
        cpu: Default::default(),
        trace: trace.clone(),
        files: Default::default(),
        serial: false,
        echo: false,
    };
    let topts = TimelineOptions::default();
    let started = Instant::now();
    let mut tl = Timeline::open(&config, topts).context("Timeline::open")?;
    let open_s = secs(started);
    let total = tl.index().total_steps();
    let entries = tl.index().entries();
    let started = Instant::now();
    let landing = tl.cont(ALL_HARTS, &never)?;
    let cont_s = secs(started);
    if landing.why != Why::End {
        failures.push(format!(
            "continue without breakpoints stopped at {} ({:?}), not the end",
            landing.position, landing.why
        ));
    }
    let after_cont = (tl.checkpoints().len(), tl.checkpoints().bytes());
    // Where the time goes: the same continue with no checkpoint past the
    // first (one parallel run to the end, no stop at checkpoint boundaries).
    bench.progress("timeline: continue to the end without checkpoints");
    let bare_options = TimelineOptions {
        checkpoint_interval: u64::MAX / 4,
        ..topts
    };
    let mut bare = Timeline::open(&config, bare_options)?;
    let started = Instant::now();
    bare.cont(ALL_HARTS, &never)?;
    let bare_s = secs(started);
    drop(bare);
    bench.progress("plain replay again (samsara replay --json)");
    let (plain2_s, _) = verified_replay(bench, &trace, false)?;
    let plain_s = median(&[plain1_s, plain2_s]);
    let forward_ratio = cont_s / plain_s;
    let mut forward = Table::new(
        format!(
            "Forward replay of the Linux boot ({HARTS} harts, {total} instructions, {entries} entries): under the debugger vs plain"
        ),
        &[
            ("what", "what"),
            ("seconds", "s"),
            ("over_plain", "/ plain replay (mean of the two)"),
        ],
    );
    forward.push(vec![
        Cell::Text("samsara record (process, for scale)".into()),
        Cell::num(record_s, 2),
        Cell::Missing,
    ]);
    forward.push(vec![
        Cell::Text("samsara replay: plain, verified (its summary), before the timeline".into()),
        Cell::num(plain1_s, 2),
        Cell::num(plain1_s / plain_s, 2),
    ]);
    forward.push(vec![
        Cell::Text("samsara replay: plain, verified (its summary), after the timeline".into()),
        Cell::num(plain2_s, 2),
        Cell::num(plain2_s / plain_s, 2),
    ]);
    forward.push(vec![
        Cell::Text("samsara replay (process, spawn to exit)".into()),
        Cell::num(plain_process_s, 2),
        Cell::num(plain_process_s / plain_s, 2),
    ]);
    forward.push(vec![
        Cell::Text("Timeline::open (entry index, first checkpoint)".into()),
        Cell::num(open_s, 2),
        Cell::num(open_s / plain_s, 2),
    ]);
    forward.push(vec![
        Cell::Text(format!(
            "Timeline::cont to the end (parallel, checkpoint every {} instr., {} MiB budget): {} checkpoints, {:.1} MiB",
            topts.checkpoint_interval,
            topts.checkpoint_memory >> 20,
            after_cont.0,
            after_cont.1 as f64 / (1 << 20) as f64
        )),
        Cell::num(cont_s, 2),
        Cell::num(forward_ratio, 3),
    ]);
    forward.push(vec![
        Cell::Text(
            "Timeline::cont to the end, no checkpoint after the first (interval 2^62)".into(),
        ),
        Cell::num(bare_s, 2),
        Cell::num(bare_s / plain_s, 3),
    ]);
    forward.push(vec![
        Cell::Text("open + cont".into()),
        Cell::num(open_s + cont_s, 2),
        Cell::num((open_s + cont_s) / plain_s, 3),
    ]);
    targets.push(Target {
        what: "forward replay under the debugger / plain replay".into(),
        goal: format!("≤ {TARGET_FORWARD_RATIO:.2}x"),
        measured: format!("{forward_ratio:.3}x"),
        met: forward_ratio <= TARGET_FORWARD_RATIO,
    });

    // The watched message, found at the end (where the session stands).
    let watch_va = find_message(&tl);

    // reverse-stepi at random positions, in ascending order (each seek
    // goes forward from the last landing).
    let count = if options.quick { 5 } else { 20 };
    let mut rng = Rng(SEED);
    let mut steps: Vec<u64> = (0..count)
        .map(|_| total / 100 + rng.next() % (total - total / 100))
        .collect();
    steps.sort_unstable();
    let mut rstep = Table::new(
        "reverse-stepi at random positions (Timeline API; only the reverse step timed)",
        &[
            ("n", "#"),
            ("percent", "position %"),
            ("hart", "hart"),
            ("seek_s", "seek there s"),
            ("replayed", "instructions replayed from the checkpoint"),
            ("rstep_s", "reverse-stepi s"),
        ],
    );
    let mut latencies = Vec::new();
    for (n, &step) in steps.iter().enumerate() {
        bench.progress(&format!(
            "reverse-stepi {}/{count} at instruction {step}",
            n + 1
        ));
        let started = Instant::now();
        let landing = tl.seek(tl.index().position_at_step(step), &never)?;
        let seek_s = secs(started);
        let hart = landing.hart;
        let target = tl.index().previous_step(hart, landing.position);
        let replayed = target.map(|t| {
            tl.index()
                .steps_at(t)
                .saturating_sub(tl.checkpoints().total_at_or_before(t))
        });
        let started = Instant::now();
        let back = tl.reverse_step(hart, &never)?;
        let rstep_s = secs(started);
        if let Some(t) = target
            && (back.position != t || back.why != Why::Step)
        {
            failures.push(format!(
                "reverse-stepi from {} on hart {hart} landed at {} ({:?}), not {t}",
                landing.position, back.position, back.why
            ));
        }
        latencies.push(rstep_s);
        rstep.push(vec![
            Cell::Int(n as u64 + 1),
            Cell::num(100.0 * step as f64 / total as f64, 1),
            Cell::Int(hart as u64),
            Cell::num(seek_s, 2),
            replayed.map_or(Cell::Missing, Cell::Int),
            Cell::num(rstep_s, 3),
        ]);
    }
    let rs_median = median(&latencies);
    let rs_max = latencies.iter().copied().fold(0.0, f64::max);
    rstep.push(vec![
        Cell::Text("median".into()),
        Cell::Missing,
        Cell::Missing,
        Cell::Missing,
        Cell::Missing,
        Cell::num(rs_median, 3),
    ]);
    rstep.push(vec![
        Cell::Text("max".into()),
        Cell::Missing,
        Cell::Missing,
        Cell::Missing,
        Cell::Missing,
        Cell::num(rs_max, 3),
    ]);
    targets.push(Target {
        what: format!("reverse-stepi median ({count} positions)"),
        goal: format!("≤ {TARGET_RSTEP_MEDIAN} s"),
        measured: format!("{rs_median:.3} s"),
        met: rs_median <= TARGET_RSTEP_MEDIAN,
    });
    targets.push(Target {
        what: format!("reverse-stepi max ({count} positions)"),
        goal: format!("≤ {TARGET_RSTEP_MAX} s"),
        measured: format!("{rs_max:.3} s"),
        met: rs_max <= TARGET_RSTEP_MAX,
    });

    // reverse-continue to the watchpoint hit.
    let mut rcont = Table::new(
        "reverse-continue to a watchpoint hit D instructions back (Timeline API)",
        &[
            ("from", "from"),
            ("d", "D (instructions)"),
            ("replayed", "forward: instructions replayed"),
            ("forward_s", "forward replay of D s"),
            ("plain_share_s", "plain replay, D's share s"),
            ("rcont_s", "reverse-continue s"),
            ("ratio", "reverse / forward"),
            ("goal_s", "target: 2 × forward + 1 s"),
            ("met", "met"),
        ],
    );
    let mut hit_note = None;
    let mut fresh_memory = Vec::new();
    match &watch_va {
        Err(e) => failures.push(format!("watchpoint: {e:#}")),
        Ok(va) => {
            let va = *va;
            tl.add_watch(Watch {
                addr: GuestVirtAddr(va),
                len: 8,
                kind: WatchKind::Write,
            });
            bench.progress("reverse-continue from the end to the last write of the watched bytes");
            let end = tl.seek(tl.index().end(), &never)?.position;
            let started = Instant::now();
            let hit = tl.reverse_cont(&never)?;
            let search_s = secs(started);
            if !matches!(hit.why, Why::Watch { .. }) {
                failures.push(format!(
                    "reverse-continue from the end found no write to {va:#x}: {:?} at {}",
                    hit.why, hit.position
                ));
            } else {
                let h = tl.index().steps_at(hit.position);
                let to_end = total - h;
                hit_note = Some(format!(
                    "Watched: 8 bytes at {va:#x}, the printk ring buffer's copy of \"{}\" (kernel image VA = PA − {KERNEL_PA:#x} + {KERNEL_VA:#x}, checked through a hart's satp). Its last write is at {} (instruction {h} of {total}, {:.1} %, hart {}); from the end ({end}) the first reverse-continue took {search_s:.2} s over {to_end} instructions.",
                    String::from_utf8_lossy(MESSAGE),
                    hit.position,
                    100.0 * h as f64 / total as f64,
                    hit.hart
                ));
                let distances: &[u64] = if options.quick {
                    &[10_000_000, 100_000_000]
                } else {
                    &[10_000_000, 100_000_000, 1_000_000_000]
                };
                let mut rows: Vec<(String, u64)> = distances
                    .iter()
                    .filter(|&&d| d < to_end)
                    .map(|&d| ("hit + D".to_string(), d))
                    .collect();
                if !options.quick {
                    rows.push(("the end".into(), to_end));
                }
                // The first search, over the continue's checkpoints; its
                // forward peer is the plain (parallel) replay's share.
                let share = to_end as f64 * plain_s / total as f64;
                rcont.push(vec![
                    Cell::Text("the end, after the continue (its checkpoints)".into()),
                    Cell::Int(to_end),
                    Cell::Missing,
                    Cell::Missing,
                    Cell::num(share, 2),
                    Cell::num(search_s, 2),
                    Cell::num(search_s / share, 2),
                    Cell::num(2.0 * share + 1.0, 2),
                    Cell::Text(
                        if search_s <= 2.0 * share + 1.0 {
                            "yes"
                        } else {
                            "NO"
                        }
                        .into(),
                    ),
                ]);
                let watch = Watch {
                    addr: GuestVirtAddr(va),
                    len: 8,
                    kind: WatchKind::Write,
                };
                for (from, d) in rows {
                    bench.progress(&format!("reverse-continue over D = {d}"));
                    // A timeline that has only run forward from the start,
                    // as a debugging session that goes forward from the hit
                    // does: the forward run is a real replay of D.
                    let mut fresh = Timeline::open(&config, topts)?;
                    fresh.add_watch(watch);
                    fresh.seek(hit.position, &never)?;
                    let there = if d == to_end {
                        fresh.index().end()
                    } else {
                        fresh.index().position_at_step(h + d)
                    };
                    let replayed = fresh.index().steps_at(there)
                        - fresh.checkpoints().total_at_or_before(hit.position);
                    let started = Instant::now();
                    fresh.seek(there, &never)?;
                    let forward_s = secs(started);
                    let started = Instant::now();
                    let back = fresh.reverse_cont(&never)?;
                    let rcont_s = secs(started);
                    if back.position != hit.position {
                        failures.push(format!(
                            "reverse-continue from {there} landed at {} ({:?}), not at the hit {}",
                            back.position, back.why, hit.position
                        ));
                    }
                    fresh_memory.push((d, fresh.checkpoints().len(), fresh.checkpoints().bytes()));
                    drop(fresh);
                    let goal = 2.0 * forward_s + 1.0;
                    rcont.push(vec![
                        Cell::Text(from),
                        Cell::Int(d),
                        Cell::Int(replayed),
                        Cell::num(forward_s, 2),
                        Cell::num(d as f64 * plain_s / total as f64, 2),
                        Cell::num(rcont_s, 2),
                        Cell::num(rcont_s / forward_s, 2),
                        Cell::num(goal, 2),
                        Cell::Text(if rcont_s <= goal { "yes" } else { "NO" }.into()),
                    ]);
                    targets.push(Target {
                        what: format!("reverse-continue over D = {d}"),
                        goal: format!("≤ 2 × {forward_s:.2} + 1 s"),
                        measured: format!("{rcont_s:.2} s"),
                        met: rcont_s <= goal,
                    });
                }
            }
        }
    }

    let mut memory = Table::new(
        "Checkpoint memory",
        &[
            ("when", "when"),
            ("count", "checkpoints"),
            ("mib", "MiB (shared pages once)"),
            ("budget_mib", "budget MiB"),
        ],
    );
    let budget = tl.checkpoints().budget() >> 20;
    memory.push(vec![
        Cell::Text("after continue to the end".into()),
        Cell::Int(after_cont.0 as u64),
        Cell::num(after_cont.1 as f64 / (1 << 20) as f64, 1),
        Cell::Int(budget),
    ]);
    memory.push(vec![
        Cell::Text("after all of the above".into()),
        Cell::Int(tl.checkpoints().len() as u64),
        Cell::num(tl.checkpoints().bytes() as f64 / (1 << 20) as f64, 1),
        Cell::Int(budget),
    ]);
    drop(tl);
    for (d, count, bytes) in fresh_memory {
        memory.push(vec![
            Cell::Text(format!(
                "fresh timeline after the reverse-continue over D = {d}"
            )),
            Cell::Int(count as u64),
            Cell::num(bytes as f64 / (1 << 20) as f64, 1),
            Cell::Int(budget),
        ]);
    }

    let mut tables = vec![forward, rstep, rcont, memory];
    bench.progress("reverse-stepi through gdb-multiarch against samsara replay --gdb");
    match through_gdb(bench, &trace, &steps, total, options.quick) {
        Ok((reverse, forward, target)) => {
            tables.push(reverse);
            tables.push(forward);
            targets.extend(target);
        }
        Err(e) => failures.push(format!("reverse-stepi through gdb: {e:#}")),
    }
    if let Some(note) = hit_note {
        notes.push(note);
    }
    notes.push(format!(
        "Everything after the recording runs in this process on one trace: the plain replay is a `samsara replay --json` process (its own first-instruction-to-end time), the rest drives `samsara_debug::Timeline` (what `samsara replay --gdb` serves) with default options. reverse-stepi positions: {count} instruction counts drawn with a fixed seed ({SEED:#x}) between 1 % and the end, visited in ascending order; each is reached by a seek (timed apart), then only `reverse_step` of the hart there is timed. \"instructions replayed\": from the checkpoint the reverse step restores to the instruction it lands before. reverse-continue: each row opens a fresh timeline with the watch set and seeks to the hit (untimed: a forward run from the start, checkpointing), then times the seek to D instructions after it (the timeline's sequential forward run from the last checkpoint at or before the hit: \"instructions replayed\"), then times reverse-continue from there, which must land on the hit. \"plain replay, D's share\": D × plain replay s / instructions, the parallel replay's rate."
    ));
    match &bench.qemu {
        Some(qemu) => {
            let near = watch_va.as_ref().ok().copied();
            let (table, qnotes) =
                qemu_rr::measure(bench, qemu, files, scratch, near, options.quick);
            tables.push(table);
            notes.extend(qnotes);
        }
        None => notes.push(format!(
            "QEMU: {}",
            bench.host.why_no_qemu.clone().unwrap_or_default()
        )),
    }
    let host = &bench.host;
    let setup = vec![
        (
            "host".to_string(),
            format!(
                "{} ({} CPUs), load before: {}",
                host.cpu, host.cpus, host.load_before
            ),
        ),
        ("samsara".into(), format!("{}", bench.samsara.display())),
        (
            "linux".into(),
            format!(
                "{} + {} + {}, --append \"{CMDLINE}\", --mem 512M, {HARTS} harts, recorded with the chunk strategy",
                files.firmware.display(),
                files.kernel.display(),
                files.initrd.display()
            ),
        ),
        (
            "gdb".into(),
            "gdb-multiarch sessions run with `set remotetimeout 600`: at gdb's default of 2 s, a `monitor seek` that replays for longer makes gdb NACK the late reply, which samsara's gdbstub does not retransmit, and the session is lost".into(),
        ),
        (
            "load after".into(),
            crate::process::load_average().unwrap_or_default(),
        ),
    ];
    Ok(Report {
        suite: "debug",
        repeats: 1,
        setup,
        tables: std::mem::take(&mut tables),
        notes,
        targets,
        failures,
    })
}

/// `reverse-stepi` through a real gdb-multiarch session against `samsara
/// replay TRACE --gdb 127.0.0.1:0` (default checkpoint options): `continue`
/// to the end, then at each position `monitor seek P%` and a timed
/// `reverse-stepi`, then a timed `stepi` of each hart in turn (gdb's
/// software single step: a breakpoint at the next pc and a resume of all).
fn through_gdb(
    bench: &Bench,
    trace: &Path,
    steps: &[u64],
    total: u64,
    quick: bool,
) -> Result<(Table, Table, Vec<Target>)> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut server = Command::new(&bench.samsara)
        .arg("replay")
        .arg(trace)
        .args(["--gdb", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start samsara replay --gdb")?;
    let mut stderr = BufReader::new(server.stderr.take().context("stderr")?);
    let mut banner = String::new();
    stderr.read_line(&mut banner)?;
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let port = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("127.0.0.1:"))
        .and_then(|p| p.parse::<u16>().ok());
    let Some(port) = port else {
        let _ = server.kill();
        let _ = server.wait();
        bail!("no address in samsara's banner: {banner}");
    };
    let mut script = String::from("python timed('cont', 'continue')\n");
    for (n, &step) in steps.iter().enumerate() {
        let percent = 100.0 * step as f64 / total as f64;
        script.push_str(&format!(
            "python timed('seek{n}', 'monitor seek {percent:.4}%')\npython timed('rsi{n}', 'reverse-stepi')\n"
        ));
        for thread in 1..=HARTS {
            script.push_str(&format!(
                "python gdb.execute('thread {thread}', to_string=True)\npython timed('si{n}_{thread}', 'stepi')\n"
            ));
        }
    }
    let limit = std::time::Duration::from_secs(if quick { 300 } else { 600 });
    let lines = qemu_rr::run_gdb(port, &script, limit);
    let _ = server.kill();
    let _ = server.wait();
    let lines = lines?;
    let mut table = Table::new(
        "reverse-stepi through gdb-multiarch (samsara replay --gdb; the same positions)",
        &[
            ("what", "what"),
            ("percent", "position %"),
            ("seconds", "s"),
        ],
    );
    if let Some(l) = qemu_rr::find(&lines, "cont") {
        table.push(vec![
            Cell::Text("continue to the end (no breakpoints)".into()),
            Cell::Missing,
            Cell::num(l.1, 2),
        ]);
    }
    let mut latencies = Vec::new();
    for (n, &step) in steps.iter().enumerate() {
        let percent = 100.0 * step as f64 / total as f64;
        let seek = qemu_rr::find(&lines, &format!("seek{n}"));
        let rsi = qemu_rr::find(&lines, &format!("rsi{n}"));
        if let Some(r) = rsi {
            latencies.push(r.1);
        }
        table.push(vec![
            Cell::Text(format!("monitor seek, then reverse-stepi #{}", n + 1)),
            Cell::num(percent, 1),
            rsi.map_or(Cell::Missing, |r| Cell::num(r.1, 3)),
        ]);
        if seek.is_none() || rsi.is_none() {
            bail!(
                "gdb did not get through position {} ({percent:.1} %)",
                n + 1
            );
        }
    }
    let mut columns = vec![("position".to_string(), "position %".to_string())];
    columns.extend((0..HARTS).map(|h| (format!("stepi_hart{h}_s"), format!("stepi hart {h} s"))));
    let mut forward = Table::with_columns(
        "stepi of each hart in turn through gdb-multiarch, after each reverse-stepi above",
        columns,
    );
    let mut stepis = Vec::new();
    for (n, &step) in steps.iter().enumerate() {
        let percent = 100.0 * step as f64 / total as f64;
        let mut row = vec![Cell::Text(format!("{percent:.1}"))];
        for thread in 1..=HARTS {
            let si = qemu_rr::find(&lines, &format!("si{n}_{thread}"));
            stepis.extend(si.map(|l| l.1));
            row.push(si.map_or(Cell::Missing, |l| Cell::num(l.1, 3)));
        }
        forward.push(row);
    }
    let si_median = median(&stepis);
    let si_max = stepis.iter().copied().fold(0.0, f64::max);
    for (what, value) in [
        ("median (all harts)", si_median),
        ("max (all harts)", si_max),
    ] {
        let mut row = vec![Cell::Text(what.into()), Cell::num(value, 3)];
        row.extend((1..HARTS).map(|_| Cell::Missing));
        forward.push(row);
    }
    let med = median(&latencies);
    let max = latencies.iter().copied().fold(0.0, f64::max);
    table.push(vec![
        Cell::Text("reverse-stepi median".into()),
        Cell::Missing,
        Cell::num(med, 3),
    ]);
    table.push(vec![
        Cell::Text("reverse-stepi max".into()),
        Cell::Missing,
        Cell::num(max, 3),
    ]);
    let targets = vec![
        Target {
            what: "stepi max through gdb (any hart)".into(),
            goal: format!("≤ {TARGET_RSTEP_MAX} s"),
            measured: format!("{si_max:.3} s"),
            met: si_max <= TARGET_RSTEP_MAX,
        },
        Target {
            what: "reverse-stepi median through gdb".into(),
            goal: format!("≤ {TARGET_RSTEP_MEDIAN} s"),
            measured: format!("{med:.3} s"),
            met: med <= TARGET_RSTEP_MEDIAN,
        },
        Target {
            what: "reverse-stepi max through gdb".into(),
            goal: format!("≤ {TARGET_RSTEP_MAX} s"),
            measured: format!("{max:.3} s"),
            met: max <= TARGET_RSTEP_MAX,
        },
    ];
    Ok((table, forward, targets))
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn positions_are_the_same_every_run() {
        let draw = || {
            let mut rng = Rng(super::SEED);
            (0..20).map(|_| rng.next() % 1000).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        // Not degenerate: the positions spread.
        let mut distinct = a.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 15, "{a:?}");
    }
}
