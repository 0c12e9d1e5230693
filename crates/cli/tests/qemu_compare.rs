//! End-to-end, side by side: every deterministic bundled guest prints
//! byte-identical output and exits with the same status on samsara and on
//! `qemu-system-riscv64 -M virt -bios none` (the reference machine).
//! Where QEMU is not installed the test says so and checks nothing; CI
//! installs QEMU, so it runs there.

mod common;

use std::ffi::OsStr;

use common::{note, qemu_binary, run_guest, run_qemu};

/// (guest, hart counts) whose output is the same on every run for a given
/// hart count. racy_counter and racy_mp depend on the interleaving with
/// more than one hart; spin_contend at 4 harts needs 4 host cores (see
/// tests/guests.rs).
const DETERMINISTIC: &[(&str, &[u32])] = &[
    ("hello", &[1, 2, 4]),
    ("parsum", &[1, 2, 4]),
    ("intbench", &[1]),
    ("fpbench", &[1]),
    ("lockfree_queue", &[1, 4]),
    ("spin_contend", &[1, 2]),
    ("timer_irq", &[1, 2, 4]),
    ("racy_counter", &[1]),
    ("racy_mp", &[1]),
    ("fault", &[1]),
    ("fault_load", &[1]),
    ("diskio", &[1, 2]),
];

#[test]
fn deterministic_guests_match_qemu_byte_for_byte() {
    let Some(qemu) = qemu_binary() else {
        note(
            "qemu_compare: qemu-system-riscv64 is not installed: skipped the QEMU comparison \
             (install it with ./scripts/setup.sh; CI does)",
        );
        return;
    };
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for &(name, hart_counts) in DETERMINISTIC {
        for &harts in hart_counts {
            let dir = common::scratch_dir("qemu");
            // diskio gets a fresh blank 1 MiB disk on each machine, and
            // the two images must end up identical too.
            let disks = (name == "diskio").then(|| {
                let (q, s) = (dir.join("qemu.img"), dir.join("samsara.img"));
                for d in [&q, &s] {
                    std::fs::write(d, vec![0u8; 1 << 20]).expect("creating a disk image");
                }
                (q, s)
            });
            let reference = run_qemu(&qemu, name, harts, disks.as_ref().map(|d| d.0.as_path()));
            let extra: Vec<&OsStr> = match &disks {
                Some((_, s)) => vec![OsStr::new("--disk"), s.as_os_str()],
                None => vec![],
            };
            let ours = run_guest(name, harts, &extra);
            ours.assert_no_panic();
            compared += 1;
            let what = format!("{name} at {harts} hart(s)");
            if ours.code() != reference.code() {
                mismatches.push(format!(
                    "{what}: exit status {:?} on samsara, {:?} on QEMU",
                    ours.code(),
                    reference.code()
                ));
            }
            if ours.stdout != reference.stdout {
                mismatches.push(format!(
                    "{what}: output differs\n--- QEMU\n{}--- samsara\n{}",
                    reference.stdout_str(),
                    ours.stdout_str()
                ));
            }
            if let Some((q, s)) = &disks {
                let (q, s) = (std::fs::read(q).unwrap(), std::fs::read(s).unwrap());
                if q != s {
                    mismatches.push(format!("{what}: the disk images differ"));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(
        mismatches.is_empty(),
        "samsara and {} disagree:\n{}",
        qemu.display(),
        mismatches.join("\n")
    );
    note(&format!(
        "qemu_compare: {compared} guest runs byte-identical on samsara and {}",
        qemu.display()
    ));
}
