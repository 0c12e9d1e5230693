//! End-to-end: the `samsara` binary runs every bundled guest, and its exit
//! status and console output are checked exactly wherever the guest is
//! deterministic (and by the guest's invariants where it is not).

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{Run, run_guest};

/// Run a guest that must pass (exit 0), with `harts` harts.
#[track_caller]
fn pass(name: &str, harts: u32) -> Run {
    let run = run_guest(name, harts, &[]);
    run.assert_code(0);
    let summary = run.summary();
    assert_eq!(summary.ending, "guest powered off", "{}", run.stderr);
    assert_eq!(summary.per_hart.len(), harts as usize, "{}", run.stderr);
    run
}

#[test]
fn hello_reports_in_from_every_hart_in_order() {
    for harts in [1, 2, 4] {
        let mut expected = format!("Hello from samsara guest, {harts} harts\n");
        for h in 0..harts {
            expected += &format!("hart {h} of {harts} reporting in\n");
        }
        expected += "hello: PASS\n";
        pass("hello", harts).assert_stdout(&expected);
    }
}

#[test]
fn parsum_gives_the_same_checksum_at_1_2_and_4_harts() {
    let expected = "parsum: size=4194304 passes=16 checksum=0x000380001c000000 \
                    expect=0x000380001c000000 PASS\n";
    for harts in [1, 2, 4] {
        let run = pass("parsum", harts);
        run.assert_stdout(expected);
        // Every hart did its share of the ~352M instructions.
        let summary = run.summary();
        for (h, &n) in summary.per_hart.iter().enumerate() {
            let share = 352_000_000 / u64::from(harts);
            assert!(
                n > share * 9 / 10,
                "hart {h} of {harts} ran only {n} instructions: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn intbench_checksum() {
    pass("intbench", 1).assert_stdout(
        "intbench: crc=e949b5d1 sort=d673a7f5 matmul=16d917c3 vm=1038783 (6280703 steps)\n\
         intbench: checksum=8809eeef PASS\n",
    );
}

#[test]
fn fpbench_checksum() {
    pass("fpbench", 1).assert_stdout(
        "fpbench: nbody e0=bfc5a441459acc23 (-0.169075164) e1=bfc5a4f4cfd939e9 (-0.169096567)\n\
         fpbench: mandelbrot iters=2904641 zsum=43ab437d\n\
         fpbench: matmul trace=403043e18816c7fa fft err=3cf55a6b70953396 spec=40642279ce775c24\n\
         fpbench: checksum=8430675cca816e14 PASS\n",
    );
}

#[test]
fn lockfree_queue_delivers_every_item_once_in_order() {
    for harts in [1, 2, 4] {
        pass("lockfree_queue", harts).assert_stdout(
            "lockfree_queue: items=200000 capacity=64 consumed=200000 sum=19999900000 \
             (expect 19999900000) order_errors=0 bad=0\nlockfree_queue: PASS\n",
        );
    }
}

#[test]
fn spin_contend_keeps_mutual_exclusion() {
    // Four harts on fewer host cores used to take minutes (the FIFO ticket
    // lock handed to a descheduled thread); the guest's spin loops execute
    // `pause` and run mode yields the host CPU there, as KVM's pause-loop
    // exiting does.
    let hart_counts: &[u32] = &[1, 2, 4];
    for &harts in hart_counts {
        pass("spin_contend", harts).assert_stdout(&format!(
            "spin_contend: harts={harts} rounds=5000 increments={} (expect {}) exclusion_errors=0\n\
             spin_contend: seqlock writes=5000 torn_snapshots=0 final=ok\n\
             spin_contend: PASS\n",
            2 * harts * 5000 * 8,
            2 * harts * 5000 * 8
        ));
    }
}

#[test]
fn timer_irq_counts_every_tick_and_ipi() {
    for harts in [1, 2, 4] {
        let mut expected =
            format!("timer_irq: harts={harts} ticks=20 period=10000 ipi_rounds=50\n");
        for h in 0..harts {
            expected +=
                &format!("timer_irq: hart {h}: timer interrupts 20, ipis received 50, time ok\n");
        }
        expected += "timer_irq: PASS\n";
        pass("timer_irq", harts).assert_stdout(&expected);
    }
}

/// The numbers after `key=` in `line`.
fn field(line: &str, key: &str) -> u64 {
    let start = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + key.len()
        + 1;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key}= is not a number in {line:?}"))
}

#[test]
fn racy_counter_loses_updates_but_never_atomic_ones() {
    pass("racy_counter", 1).assert_stdout(
        "racy_counter: harts=1 iters=1000000 racy=1000000 atomic=1000000 expected=1000000 lost=0\n\
         racy_counter: PASS\n",
    );
    // More harts: the racy total depends on the interleaving; only the
    // invariants are fixed.
    for harts in [2, 4] {
        let run = pass("racy_counter", harts);
        let out = run.stdout_str();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let expected = u64::from(harts) * 1_000_000;
        assert!(lines[0].starts_with(&format!("racy_counter: harts={harts} iters=1000000 ")));
        assert_eq!(field(lines[0], "atomic"), expected, "{out}");
        assert_eq!(field(lines[0], "expected"), expected, "{out}");
        let racy = field(lines[0], "racy");
        assert!(racy > 0 && racy <= expected, "{out}");
        assert_eq!(field(lines[0], "lost"), expected - racy, "{out}");
        assert_eq!(lines[1], "racy_counter: PASS");
    }
}

#[test]
fn racy_mp_races_but_atomics_have_one_winner() {
    pass("racy_mp", 1).assert_stdout(
        "racy_mp: harts=1 mp_rounds=1000 race_rounds=1000\n\
         racy_mp: hart 0: mp_stale=0 racy_wins=1000 atomic_wins=1000\n\
         racy_mp: total mp_stale=0 racy_wins=1000 (double claims 0) atomic_wins=1000\n\
         racy_mp: PASS\n",
    );
    for harts in [2, 4] {
        let run = pass("racy_mp", harts);
        let out = run.stdout_str();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), harts as usize + 3, "{out}");
        assert_eq!(
            lines[0],
            format!("racy_mp: harts={harts} mp_rounds=1000 race_rounds=1000")
        );
        let (mut racy, mut atomic) = (0, 0);
        for h in 0..harts as usize {
            let line = lines[1 + h];
            assert!(line.starts_with(&format!("racy_mp: hart {h}: ")), "{out}");
            racy += field(line, "racy_wins");
            atomic += field(line, "atomic_wins");
        }
        let total = lines[harts as usize + 1];
        assert_eq!(field(total, "racy_wins"), racy, "{out}");
        assert_eq!(field(total, "atomic_wins"), 1000, "{out}");
        assert_eq!(atomic, 1000, "{out}");
        assert!(racy >= 1000, "{out}");
        assert_eq!(lines[harts as usize + 2], "racy_mp: PASS");
    }
}

const DISK_SIZE: usize = 1 << 20;
const DISKIO_OUTPUT: &str = "diskio: capacity=2048 sectors blocks=32 block_size=4096\n\
    diskio: io_errors=0 verify_errors=0 irq_completions=yes checksum=dbc4b488\n\
    diskio: PASS\n";

fn splitmix64(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What diskio writes to 4 KiB block `b`: its `fill()` pattern.
fn diskio_block(b: u64) -> Vec<u8> {
    let mut s = 0xd15c_0000 + b;
    (0..4096 / 8)
        .flat_map(|_| splitmix64(&mut s).to_le_bytes())
        .collect()
}

fn blank_disk(dir: &Path) -> std::path::PathBuf {
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_SIZE]).expect("creating the disk image");
    disk
}

#[test]
fn diskio_writes_the_expected_blocks_to_the_disk_image() {
    for harts in [1, 4] {
        let dir = common::scratch_dir("diskio");
        let disk = blank_disk(&dir);
        let run = run_guest("diskio", harts, &[OsStr::new("--disk"), disk.as_os_str()]);
        run.assert_code(0).assert_stdout(DISKIO_OUTPUT);
        let data = std::fs::read(&disk).expect("reading the disk image back");
        assert_eq!(data.len(), DISK_SIZE, "the disk image changed size");
        for b in 0..32u64 {
            let at = b as usize * 4096;
            assert!(
                data[at..at + 4096] == diskio_block(b)[..],
                "{harts} harts: block {b} of the disk image does not hold the guest's pattern"
            );
        }
        assert!(
            data[32 * 4096..].iter().all(|&x| x == 0),
            "{harts} harts: the guest wrote past its 32 blocks"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn diskio_without_a_disk_or_with_a_read_only_one_fails_cleanly() {
    let run = run_guest("diskio", 1, &[]);
    run.assert_code(2)
        .assert_stdout("virtio-blk: no virtio block device in any virtio-mmio slot\n");
    assert!(
        run.stderr.contains("guest reported failure (code 2)"),
        "{}",
        run.stderr
    );

    let dir = common::scratch_dir("diskio-ro");
    let disk = blank_disk(&dir);
    let run = run_guest(
        "diskio",
        1,
        &[
            OsStr::new("--disk"),
            disk.as_os_str(),
            OsStr::new("--disk-readonly"),
        ],
    );
    // Every write fails with an I/O error: the guest's status 3.
    run.assert_code(3);
    let out = run.stdout_str();
    assert!(
        out.contains("io_errors=32 ") && out.ends_with("diskio: FAIL\n"),
        "{out}"
    );
    let data = std::fs::read(&disk).expect("reading the disk image back");
    assert!(
        data.iter().all(|&x| x == 0),
        "a read-only disk image was modified"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn guest_exceptions_are_guest_failures_not_host_crashes() {
    let cases = [
        (
            "fault",
            102,
            "fault: now executing an illegal instruction, expect exit 102\n\n\
             *** guest trap on hart 0: exception 2 (illegal instruction) epc=0x80000160 \
             tval=0xc0001073 -> exit 102\n",
        ),
        (
            "fault_load",
            105,
            "fault: now loading from 0x0 without a hook, expect exit 105\n\n\
             *** guest trap on hart 0: exception 5 (load access fault) epc=0x80000162 \
             tval=0x0 -> exit 105\n",
        ),
    ];
    for (name, code, tail) in cases {
        for harts in [1, 2] {
            let run = run_guest(name, harts, &[]);
            run.assert_code(code).assert_stdout(&format!(
                "fault: recoverable load fault: calls=1 cause=5 tval=0x0\n{tail}"
            ));
            assert_eq!(
                run.summary().ending,
                format!("guest reported failure (code {code})")
            );
        }
    }
}

#[test]
fn max_instructions_stops_the_run_with_status_124() {
    for harts in [1, 2] {
        let run = run_guest(
            "parsum",
            harts,
            &[OsStr::new("--max-instructions"), OsStr::new("1000000")],
        );
        run.assert_code(124);
        let summary = run.summary();
        assert_eq!(
            summary.ending, "stopped at the instruction limit (1000000 per hart)",
            "{}",
            run.stderr
        );
        // The limit is per hart and no hart runs past it.
        assert!(
            summary.per_hart.iter().all(|&n| n <= 1_000_000),
            "{}",
            run.stderr
        );
        assert!(summary.per_hart.contains(&1_000_000), "{}", run.stderr);
        // The guest was cut off before it could print its result.
        assert!(run.stdout.is_empty(), "{}", run.stdout_str());
    }
}
