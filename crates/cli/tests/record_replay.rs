//! Determinism, end to end: guests whose outcome depends on the
//! interleaving are recorded many times at 2 and 4 harts with host-side
//! perturbation (random delays and chunk sizes), and every recording must
//! replay — in parallel, serially, and twice — to the identical output,
//! exit and final state digest. Across recordings the racy outcomes must
//! actually differ, or the test would prove nothing. Every other recording
//! is made with the block translator (`--cpu jit`) and replayed with the
//! interpreter, and the others the other way round: a trace does not
//! depend on the engine.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{Run, guest, rewrite_trace, samsara, scratch_dir, serial};

/// Recordings per guest and hart count.
const RECORDINGS: u64 = 4;
/// Disk image size for the guests that use virtio-blk.
const DISK_BYTES: u64 = 1 << 20;

struct Recorded {
    output: String,
    trace: std::path::PathBuf,
}

fn record(
    name: &str,
    harts: u32,
    seed: u64,
    dir: &Path,
    disk: Option<&Path>,
    cpu: &str,
) -> Recorded {
    let trace = dir.join(format!("{name}-{harts}-{seed}.trace"));
    let mut args: Vec<OsString> = vec![
        "record".into(),
        "--cpu".into(),
        cpu.into(),
        guest(name).into(),
        "--harts".into(),
        harts.to_string().into(),
        "-o".into(),
        trace.clone().into(),
        "--perturb".into(),
        seed.to_string().into(),
        "--check-every".into(),
        "3".into(),
    ];
    if let Some(disk) = disk {
        args.push("--disk".into());
        args.push(disk.into());
    }
    let run = samsara(&args);
    run.assert_no_panic().assert_code(0);
    assert!(
        run.stderr.contains("samsara: recorded"),
        "no record summary:\n{}",
        run.stderr
    );
    Recorded {
        output: run.stdout_str(),
        trace,
    }
}

fn replay(trace: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<OsString> = vec!["replay".into(), trace.into()];
    args.extend(extra.iter().map(OsString::from));
    let run = samsara(&args);
    run.assert_no_panic();
    run
}

fn assert_verified(run: &Run, recorded: &Recorded, how: &str) {
    assert_eq!(
        run.code(),
        Some(0),
        "{how} replay of {} failed:\n{}",
        recorded.trace.display(),
        run.stderr
    );
    assert!(
        run.stderr.contains("VERIFIED"),
        "{how} replay did not verify:\n{}",
        run.stderr
    );
    assert_eq!(
        run.stdout_str(),
        recorded.output,
        "{how} replay printed something else"
    );
}

/// Records `name` several times and checks every replay; returns the set
/// of distinct outputs seen.
fn check_guest(name: &str, harts: u32, disk: bool) -> BTreeSet<String> {
    let _guard = serial();
    let dir = scratch_dir(&format!("rr-{name}-{harts}"));
    let image = disk.then(|| {
        let path = dir.join("disk.img");
        std::fs::write(&path, vec![0u8; DISK_BYTES as usize]).expect("creating a disk image");
        path
    });
    let mut outputs = BTreeSet::new();
    for seed in 1..=RECORDINGS {
        let before = image
            .as_ref()
            .map(|p| std::fs::read(p).expect("reading the disk image"));
        // Odd recordings translated, replayed interpreted; even ones the
        // other way round.
        let (cpu, other) = if seed % 2 == 1 {
            ("jit", "interp")
        } else {
            ("interp", "jit")
        };
        let recorded = record(
            name,
            harts,
            seed * 7919 + u64::from(harts),
            &dir,
            image.as_deref(),
            cpu,
        );
        if let (Some(p), Some(before)) = (&image, before) {
            assert_eq!(
                std::fs::read(p).expect("reading the disk image"),
                before,
                "recording modified the user's disk image"
            );
        }
        assert_verified(
            &replay(&recorded.trace, &["--cpu", other]),
            &recorded,
            &format!("parallel ({other}, recorded with {cpu})"),
        );
        if seed == 1 {
            assert_verified(&replay(&recorded.trace, &["--serial"]), &recorded, "serial");
            assert_verified(
                &replay(&recorded.trace, &["--cpu", cpu]),
                &recorded,
                "second parallel (the recording's engine)",
            );
        }
        outputs.insert(recorded.output);
    }
    outputs
}

/// The race is real: the recordings did not all print the same thing.
fn assert_varies(name: &str, harts: u32, outputs: &BTreeSet<String>) {
    assert!(
        outputs.len() > 1,
        "{name} at {harts} harts printed the same outcome in all {RECORDINGS} recordings:\n{outputs:?}"
    );
}

#[test]
fn racy_counter_replays_exactly_and_races() {
    for harts in [2, 4] {
        let outs = check_guest("racy_counter", harts, false);
        assert_varies("racy_counter", harts, &outs);
    }
}

/// Code rewritten on every hart, the first touch of its page in a chunk
/// being the store: a replayed entry that writes shared memory must still
/// drop the code the hart cached from the page, as the recording did
/// (which wrote a private copy at a new address). One hart too: there
/// every replayed entry writes shared memory.
#[test]
fn self_modifying_code_replays_exactly_and_races() {
    check_guest("smc", 1, false);
    for harts in [2, 4] {
        let outs = check_guest("smc", harts, false);
        assert_varies("smc", harts, &outs);
    }
}

/// `replay --follow` replays a trace while `record` writes it: started
/// before the recorder, it verifies what the recording recorded. When the
/// recorder is killed, it replays every complete entry and, once the file
/// has stopped growing, reports the trace partial (status 3).
#[test]
fn a_trace_replays_while_it_is_recorded() {
    let _guard = serial();
    let dir = scratch_dir("follow");
    let follow = |trace: PathBuf, idle: &'static str| {
        std::thread::spawn(move || {
            let args: Vec<OsString> = vec![
                "replay".into(),
                "--follow".into(),
                "--follow-idle".into(),
                idle.into(),
                trace.into(),
            ];
            samsara(&args)
        })
    };
    // The path `record` below writes.
    let follower = follow(dir.join("racy_counter-4-1.trace"), "10");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let recorded = record("racy_counter", 4, 1, &dir, None, "jit");
    let followed = follower.join().expect("the follower thread");
    followed.assert_no_panic();
    assert_verified(&followed, &recorded, "followed");

    let trace = dir.join("killed.trace");
    let mut recorder = std::process::Command::new(common::SAMSARA)
        .args(["record", "--cpu", "interp", "-o"])
        .arg(&trace)
        .arg(guest("fpbench"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting samsara record");
    // Killed once it has written its header and run a while (however slow
    // the host is to start it).
    let start = std::time::Instant::now();
    while std::fs::metadata(&trace).map_or(0, |m| m.len()) == 0
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let follower = follow(trace.clone(), "1");
    std::thread::sleep(std::time::Duration::from_millis(300));
    recorder.kill().expect("killing the recorder");
    let _ = recorder.wait();
    let followed = follower.join().expect("the follower thread");
    followed.assert_no_panic();
    assert_eq!(followed.code(), Some(3), "{}", followed.stderr);
    assert!(
        followed.stderr.contains("partial trace") && followed.stderr.contains("had not grown"),
        "{}",
        followed.stderr
    );
    assert!(
        followed
            .stderr
            .contains("replayed and checked every complete entry"),
        "{}",
        followed.stderr
    );
}

#[test]
fn racy_message_passing_replays_exactly() {
    for harts in [2, 4] {
        check_guest("racy_mp", harts, false);
    }
}

#[test]
fn lock_free_queue_replays_exactly() {
    for harts in [2, 4] {
        check_guest("lockfree_queue", harts, false);
    }
}

#[test]
fn contended_spinlocks_replay_exactly() {
    for harts in [2, 4] {
        check_guest("spin_contend", harts, false);
    }
}

#[test]
fn reader_writer_race_on_one_page_replays_exactly_and_races() {
    for harts in [2, 4] {
        let outs = check_guest("rw_race", harts, false);
        assert_varies("rw_race", harts, &outs);
    }
}

#[test]
fn ipis_between_harts_replay_exactly_and_race() {
    for harts in [2, 4] {
        let outs = check_guest("ipi_pingpong", harts, false);
        if harts == 4 {
            assert_varies("ipi_pingpong", harts, &outs);
        }
    }
}

#[test]
fn timer_interrupts_replay_exactly() {
    for harts in [2, 4] {
        check_guest("timer_irq", harts, false);
        let outs = check_guest("timer_race", harts, false);
        assert_varies("timer_race", harts, &outs);
    }
}

#[test]
fn disk_dma_beside_computation_replays_exactly_and_races() {
    for harts in [2, 4] {
        let outs = check_guest("dma_mix", harts, true);
        assert_varies("dma_mix", harts, &outs);
    }
}

#[test]
fn one_hammered_page_always_records_to_completion() {
    // Every chunk of every hart writes the same page: forward progress
    // depends on squash-and-shrink and the exclusive fallback.
    for harts in [2, 4] {
        let outs = check_guest("hammer", harts, false);
        assert_varies("hammer", harts, &outs);
    }
}

#[test]
fn a_trace_from_another_image_is_refused() {
    let _guard = serial();
    let dir = scratch_dir("rr-wrong-image");
    let recorded = record("hello", 2, 1, &dir, None, "interp");
    let run = replay(
        &recorded.trace,
        &["--image", guest("parsum").to_str().expect("utf-8 path")],
    );
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("does not match the trace"),
        "{}",
        run.stderr
    );
}

#[test]
fn inspect_reports_chunks_events_and_streams() {
    let _guard = serial();
    let dir = scratch_dir("rr-inspect");
    let recorded = record("timer_race", 4, 3, &dir, None, "jit");
    let text = samsara([OsString::from("inspect"), recorded.trace.clone().into()]);
    text.assert_no_panic().assert_code(0);
    let out = text.stdout_str();
    for needle in [
        "status: complete",
        "hart 3:",
        "truncation:",
        "time-read",
        "stream commit",
        "bytes per million instructions",
        "squashes",
    ] {
        assert!(
            out.contains(needle),
            "inspect output lacks {needle:?}:\n{out}"
        );
    }
    let json = samsara([
        OsString::from("inspect"),
        recorded.trace.into(),
        "--json".into(),
    ]);
    json.assert_code(0);
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("inspect --json prints JSON");
    assert_eq!(value["complete"], true);
    assert_eq!(value["chunks_per_hart"].as_array().map(Vec::len), Some(4));
}

#[test]
fn the_serial_strategy_records_and_replays_exactly() {
    let _guard = serial();
    let dir = scratch_dir("rr-serial");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_BYTES as usize]).expect("creating a disk image");
    for name in [
        "racy_counter",
        "ipi_pingpong",
        "timer_irq",
        "timer_race",
        "dma_mix",
        "hammer",
    ] {
        let trace = dir.join(format!("{name}-serial.trace"));
        let mut args: Vec<OsString> = vec![
            "record".into(),
            guest(name).into(),
            "--harts".into(),
            "4".into(),
            "--strategy".into(),
            "serial".into(),
            "-o".into(),
            trace.clone().into(),
            "--check-every".into(),
            "2".into(),
        ];
        if name == "dma_mix" {
            args.push("--disk".into());
            args.push(disk.clone().into());
        }
        let run = samsara(&args);
        run.assert_no_panic().assert_code(0);
        let recorded = Recorded {
            output: run.stdout_str(),
            trace,
        };
        assert_verified(&replay(&recorded.trace, &[]), &recorded, "serial-strategy");
    }
}

/// The PARSEC-like workloads (test size): each records and replays verified
/// under every strategy (chunk, serial, crew — crew with host-side random
/// delays) at 2 and 4 harts, and prints the same checksum as a native run.
#[test]
fn parsec_workloads_record_and_replay_under_every_strategy() {
    let _guard = serial();
    let dir = scratch_dir("rr-parsec");
    for name in [
        "blackscholes",
        "bodytrack",
        "raytrace",
        "swaptions",
        "freqmine",
        "x264",
    ] {
        let image = format!("{name}-test");
        let native = samsara([
            OsString::from("run"),
            guest(&image).into(),
            "--harts".into(),
            "2".into(),
        ]);
        native.assert_no_panic().assert_code(0);
        for harts in [2u32, 4] {
            for strategy in ["chunk", "serial", "crew"] {
                let trace = dir.join(format!("{name}-{harts}-{strategy}.trace"));
                let mut args: Vec<OsString> = vec![
                    "record".into(),
                    guest(&image).into(),
                    "--harts".into(),
                    harts.to_string().into(),
                    "--strategy".into(),
                    strategy.into(),
                    "-o".into(),
                    trace.clone().into(),
                ];
                if strategy == "crew" {
                    // Host-side random delays: other transfer points each run.
                    args.extend(["--perturb".into(), u64::from(harts).to_string().into()]);
                }
                let run = samsara(&args);
                run.assert_no_panic().assert_code(0);
                assert_eq!(
                    run.stdout_str(),
                    native.stdout_str(),
                    "{name}: the checksum differs from a native run"
                );
                let recorded = Recorded {
                    output: run.stdout_str(),
                    trace,
                };
                assert_verified(&replay(&recorded.trace, &[]), &recorded, strategy);
            }
        }
    }
}

/// Serial strategy, one hart: the interrupt lines change after the k-th of
/// several device accesses in one quantum (timer_irq programs mtimecmp
/// between UART writes). Replay takes a `LinesUpdate` after any access it
/// follows; the recorder marks earlier quiet accesses so it cannot be taken
/// too early (it was: the replayed hart slept in a WFI the recording had
/// passed).
#[test]
fn serial_strategy_logs_line_changes_unambiguously() {
    let _guard = serial();
    let dir = scratch_dir("rr-serial-lines");
    for name in ["timer_irq", "fault"] {
        let trace = dir.join(format!("{name}-serial-1.trace"));
        let run = samsara([
            OsString::from("record"),
            guest(name).into(),
            "--strategy".into(),
            "serial".into(),
            "-o".into(),
            trace.clone().into(),
        ]);
        run.assert_no_panic();
        let recorded = Recorded {
            output: run.stdout_str(),
            trace,
        };
        let replayed = replay(&recorded.trace, &[]);
        assert!(
            replayed.stderr.contains("VERIFIED"),
            "{name}: serial-strategy replay at one hart:\n{}",
            replayed.stderr
        );
        assert_eq!(
            replayed.stdout_str(),
            recorded.output,
            "{name}: output differs"
        );
    }
}

/// The CREW baseline on the racy guests: several perturbed recordings per
/// guest at 2 and 4 harts, every one replayed in parallel to the identical
/// output and final state (the first also serially and a second time), the
/// races real (racy_counter's outcome varies), and the ownership transfers
/// in the log as ordering edges.
#[test]
fn the_crew_strategy_records_racy_guests_and_replays_them_exactly() {
    let _guard = serial();
    let dir = scratch_dir("rr-crew");
    // racy_counter's outcome must vary across its recordings: three of
    // them; two of each other guest (the baseline's sharing-heavy guests
    // take seconds each).
    let rounds = |name: &str| if name == "racy_counter" { 3 } else { 2 };
    for name in [
        "racy_counter",
        "hammer",
        "lockfree_queue",
        "rw_race",
        "ipi_pingpong",
        "timer_race",
    ] {
        for harts in [2u32, 4] {
            let mut outputs = BTreeSet::new();
            for round in 0..rounds(name) {
                let trace = dir.join(format!("{name}-{harts}-{round}.trace"));
                let run = samsara([
                    OsString::from("record"),
                    guest(name).into(),
                    "--harts".into(),
                    harts.to_string().into(),
                    "--strategy".into(),
                    "crew".into(),
                    "--perturb".into(),
                    (round * 7919 + u64::from(harts)).to_string().into(),
                    "--check-every".into(),
                    "3".into(),
                    "-o".into(),
                    trace.clone().into(),
                ]);
                run.assert_no_panic().assert_code(0);
                let recorded = Recorded {
                    output: run.stdout_str(),
                    trace,
                };
                assert_verified(&replay(&recorded.trace, &[]), &recorded, "crew");
                if round == 0 {
                    assert_verified(
                        &replay(&recorded.trace, &["--serial"]),
                        &recorded,
                        "crew, serial",
                    );
                    assert_verified(
                        &replay(&recorded.trace, &[]),
                        &recorded,
                        "crew, second parallel",
                    );
                }
                outputs.insert(recorded.output);
            }
            if name == "racy_counter" && harts == 4 {
                assert!(
                    outputs.len() > 1,
                    "racy_counter under crew printed one outcome in 3 recordings: {outputs:?}"
                );
            }
        }
    }
    // Ownership transfers are logged: the log holds ordering edges.
    let trace = dir.join("racy_counter-4-0.trace");
    let json = samsara([OsString::from("inspect"), trace.into(), "--json".into()]);
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("inspect --json prints JSON");
    assert!(
        value["events"]["ordering-edge"].as_u64().unwrap_or(0) > 0,
        "{value}"
    );
}

#[test]
fn the_crew_strategy_refuses_a_disk_clearly() {
    let _guard = serial();
    let dir = scratch_dir("rr-crew-disk");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_BYTES as usize]).expect("creating a disk image");
    let run = samsara([
        OsString::from("record"),
        guest("dma_mix").into(),
        "--harts".into(),
        "2".into(),
        "--strategy".into(),
        "crew".into(),
        "--disk".into(),
        disk.into(),
        "-o".into(),
        dir.join("x.trace").into(),
    ]);
    run.assert_no_panic().assert_code(2);
    assert!(
        run.stderr.contains("crew strategy does not record DMA"),
        "{}",
        run.stderr
    );
}

/// A crew trace whose waits could never be satisfied — a device access
/// ordered after an entry that is no device access, an ordering edge to a
/// hart with no entry there — is refused when replay reaches it, with the
/// entry named; replay does not wait forever.
#[test]
fn a_crew_trace_with_impossible_waits_is_refused_not_waited_on() {
    use samsara_trace::{Event, Truncation};
    let _guard = serial();
    let dir = scratch_dir("rr-crew-bad-edges");
    let trace = dir.join("ipi.trace");
    let run = samsara([
        OsString::from("record"),
        guest("ipi_pingpong").into(),
        "--harts".into(),
        "4".into(),
        "--strategy".into(),
        "crew".into(),
        "-o".into(),
        trace.clone().into(),
    ]);
    run.assert_no_panic().assert_code(0);
    // Replay of `tampered` must stop with status 2, naming entry `seq` and `what`.
    let assert_refused = |tampered: PathBuf, seq: u64, what: &str| {
        let run = samsara([OsString::from("replay"), tampered.into()]);
        run.assert_no_panic().assert_code(2);
        assert!(
            run.stderr.contains(&format!("entry {seq}")) && run.stderr.contains(what),
            "{}",
            run.stderr
        );
    };

    // A device access that names the entry before it (not a device access).
    let device = dir.join("device.trace");
    let mut device_seq = 0;
    assert!(rewrite_trace(
        &trace,
        &device,
        |_| {},
        |seq, c, _| {
            if c.reason == Truncation::DeviceOp && c.back > 1 && seq > 100 {
                c.back = 1;
                device_seq = seq;
                return true;
            }
            false
        }
    ));
    assert_refused(device, device_seq, "device access ordered after entry");

    // An edge to a hart at an entry that hart does not reach before this one.
    let edge = dir.join("edge.trace");
    let mut edge_seq = 0;
    assert!(rewrite_trace(
        &trace,
        &edge,
        |_| {},
        |seq, c, last| {
            for e in &mut c.events {
                if let Event::After { hart, back, .. } = e
                    && seq > 100
                    && last[usize::from(*hart)] + 1 < seq
                {
                    *back = seq - (last[usize::from(*hart)] + 1);
                    edge_seq = seq;
                    return true;
                }
            }
            false
        }
    ));
    assert_refused(edge, edge_seq, "ordering edge");
}
