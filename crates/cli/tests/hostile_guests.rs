//! Guest isolation (issue 6): the `hostile` guest attacks its own machine —
//! wild loads, stores and fetches, atomics on devices, junk in CSRs,
//! malformed page tables, virtio rings and buffers outside RAM, looping
//! descriptor chains — and checks that each attack ends in a defined
//! exception or virtio's NEEDS_RESET (see guests/progs/hostile.c). Here it
//! runs under `run`, and under `record` + `replay` with both strategies,
//! which must verify; nothing may panic the host.

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::{Run, guest, samsara, scratch_dir, serial};

fn disk(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("disk.img");
    let sector: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, sector).expect("disk image");
    path
}

/// Every case said `ok`, and the guest counted them all.
fn assert_all_ok(run: &Run, harts: u32, how: &str) {
    run.assert_no_panic();
    let out = run.stdout_str();
    assert!(
        !out.contains("WRONG"),
        "{how}: an attack was not contained:\n{out}"
    );
    // 16 per attacking hart (wild pointers, atomics), then hart 0's 31 more.
    let cases = 16 * harts.min(2) + 31;
    assert!(
        out.contains(&format!(
            "hostile: {cases} cases on {harts} harts, 0 wrong: PASS"
        )),
        "{how}: expected {cases} cases, all ok:\n{out}\n{}",
        run.stderr
    );
    run.assert_code(0);
}

#[test]
fn hostile_guest_is_contained_under_run() {
    let dir = scratch_dir("hostile-run");
    let disk = disk(&dir);
    for harts in [1u32, 2] {
        let _one_at_a_time = serial();
        let run = samsara([
            OsString::from("run"),
            guest("hostile").into(),
            "--harts".into(),
            harts.to_string().into(),
            "--disk".into(),
            disk.clone().into(),
        ]);
        assert_all_ok(&run, harts, &format!("run, {harts} harts"));
    }
}

#[test]
fn hostile_guest_records_and_replays_verified() {
    let dir = scratch_dir("hostile-rr");
    let disk = disk(&dir);
    for strategy in ["chunk", "serial"] {
        let _one_at_a_time = serial();
        let trace = dir.join(format!("hostile-{strategy}.trace"));
        let how = format!("record --strategy {strategy}");
        let rec = samsara([
            OsString::from("record"),
            guest("hostile").into(),
            "--harts".into(),
            "2".into(),
            "--strategy".into(),
            strategy.into(),
            "--check-every".into(),
            "1".into(),
            "--disk".into(),
            disk.clone().into(),
            "-o".into(),
            trace.clone().into(),
        ]);
        assert_all_ok(&rec, 2, &how);
        let rep = samsara([OsString::from("replay"), trace.into()]);
        rep.assert_no_panic();
        assert!(
            rep.code() == Some(0) && rep.stderr.contains("VERIFIED"),
            "{how}: replay did not verify:\n{}",
            rep.stderr
        );
        assert_eq!(rep.stdout, rec.stdout, "{how}: replayed output differs");
    }
}
