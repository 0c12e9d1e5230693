//! A trace recorded on another machine (committed with its guest image;
//! re-recorded when the format moved to version 2)
//! replays here, and a replay that goes wrong is reported at the first
//! chunk that differs, with hart, entry, instruction count and registers.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use common::{rewrite_trace, samsara, scratch_dir, serial};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn a_trace_recorded_elsewhere_replays_here_verified() {
    let _guard = serial();
    let run = samsara([
        OsString::from("replay"),
        fixture("racy_counter-4harts.trace").into(),
        "--image".into(),
        fixture("racy_counter.elf").into(),
    ]);
    run.assert_no_panic().assert_code(0);
    assert!(run.stderr.contains("VERIFIED"), "{}", run.stderr);
    // The racy total of that particular recording, reproduced.
    assert!(
        run.stdout_str().contains("racy=2341646 "),
        "{}",
        run.stdout_str()
    );
}

#[test]
fn a_divergence_is_reported_at_the_first_chunk_that_differs() {
    let _guard = serial();
    let dir = scratch_dir("diverge");
    let out = dir.join("tampered.trace");
    let mut tampered_seq = None;
    rewrite_trace(
        &fixture("racy_counter-4harts.trace"),
        &out,
        |_| {},
        |seq, c, _| {
            if seq > 200 && c.check.is_some() && c.steps > 10 {
                c.steps -= 1;
                tampered_seq = Some((seq, c.hart));
                return true;
            }
            false
        },
    );
    let (seq, hart) = tampered_seq.expect("the fixture has checked chunks");
    let run = samsara([
        OsString::from("replay"),
        out.into(),
        "--image".into(),
        fixture("racy_counter.elf").into(),
    ]);
    run.assert_no_panic().assert_code(2);
    let expected = format!("replay diverged at entry {seq} (hart {hart},");
    assert!(
        run.stderr.contains(&expected),
        "expected {expected:?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pc ") && run.stderr.contains("recorded"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_machine_that_starts_elsewhere_is_refused() {
    let _guard = serial();
    let dir = scratch_dir("initial-state");
    let out = dir.join("other-machine.trace");
    rewrite_trace(
        &fixture("racy_counter-4harts.trace"),
        &out,
        |header| {
            assert!(
                !header.initial_ram_blake3.is_empty(),
                "the fixture records its initial state"
            );
            header.initial_ram_blake3 = "00".repeat(32);
        },
        |_, _, _| false,
    );
    let run = samsara([
        OsString::from("replay"),
        out.into(),
        "--image".into(),
        fixture("racy_counter.elf").into(),
    ]);
    run.assert_no_panic().assert_code(2);
    assert!(
        run.stderr.contains("different initial machine state"),
        "{}",
        run.stderr
    );
}
