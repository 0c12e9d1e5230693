//! Reverse debugging of a Linux boot recorded at 4 harts, driven by a real
//! `gdb-multiarch` against `samsara replay --gdb` with the kernel's
//! symbols (linux/build/System.map, made by scripts/setup-linux.sh, turned
//! into a symbol-only ELF): 4 threads with their privilege modes, a
//! breakpoint on a kernel function by name, continue ×5 and
//! reverse-continue ×2 landing on hit 3's registers, kernel memory read
//! through satp, a breakpoint on the trap entry (stvec) and stepi inside
//! it, `monitor seek 50%` then reverse-stepi, continue to the end, and
//! `samsara debug` loads the symbols by itself.
//!
//! One boot without workload (`samsara.noload`, ~2.3·10⁹ instructions):
//! 40–60 s on the 2-core build host shared with other builds (record
//! 16–23 s, gdb session 20–31 s), plus one ~15 s boot by
//! scripts/setup-linux.sh the first time (System.map).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{GdbServer as Server, SAMSARA, run_with_timeout, scratch_dir, serial, workspace_root};

const GDB: &str = "gdb-multiarch";
const LIMIT: Duration = Duration::from_secs(400);

/// linux/build after scripts/setup-linux.sh (which makes System.map with
/// this very samsara); fails with the script's output if anything lacks.
fn linux_dir() -> PathBuf {
    let root = workspace_root();
    let dir = root.join("linux/build");
    let ran = Command::new("bash")
        .arg(root.join("scripts/setup-linux.sh"))
        .current_dir(&root)
        .env("SAMSARA", SAMSARA)
        .output()
        .expect("starting scripts/setup-linux.sh");
    let files = ["fw_dynamic.bin", "Image", "initramfs.cpio.gz", "System.map"];
    let missing: Vec<&str> = files
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "missing from {}: {missing:?}; scripts/setup-linux.sh exited with {}:\n{}\n{}",
        dir.display(),
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    dir
}

/// Values after `MARK` in gdb's output, in order.
fn marked(output: &str, mark: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(mark))
        .map(|s| s.trim().to_string())
        .collect()
}

/// `key=value` pairs of a marked line.
fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in '{line}'"))
        .to_string()
}

/// What a `monitor when` printed: (entry, step) and each hart's count.
fn when(block: &str) -> ((u64, u64), Vec<u64>) {
    let pos = block
        .lines()
        .find_map(|l| l.strip_prefix("position: entry "))
        .unwrap_or_else(|| panic!("no position in {block}"));
    let words: Vec<&str> = pos.split_whitespace().collect();
    let position = (words[0].parse().unwrap(), words[2].parse().unwrap());
    let counts = block
        .lines()
        .filter_map(|l| l.strip_prefix("hart "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    (position, counts)
}

/// The text between two marker lines.
fn between<'a>(out: &'a str, start: &str, end: &str) -> &'a str {
    let a = out
        .find(start)
        .unwrap_or_else(|| panic!("no {start}:\n{out}"));
    let b = out[a..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end}:\n{out}"));
    &out[a..a + b]
}

/// A gdb command printing the registers compared across hits.
fn regs(mark: &str) -> String {
    format!(
        "printf \"{mark} pc=%#lx sp=%#lx ra=%#lx a0=%#lx thread=%d\\n\", $pc, $sp, $ra, $a0, $_thread\n"
    )
}

#[test]
fn a_linux_boot_at_four_harts_reverse_debugs_in_gdb_by_kernel_symbol() {
    let ok = Command::new(GDB)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{GDB} is missing: scripts/setup.sh installs it");
    let dir = linux_dir();
    let work = scratch_dir("debug-linux");
    let trace = work.join("boot.trace");
    let _one_at_a_time = serial();

    // Record: the boot without the workload, at 4 harts.
    let started = Instant::now();
    let mut rec = Command::new(SAMSARA);
    rec.args(["record", "--linux", "--harts", "4", "--timeout", "300"])
        .args(["--append", "console=ttyS0 earlycon=sbi samsara.noload"])
        .arg("-o")
        .arg(&trace)
        .env("SAMSARA_LINUX_DIR", &dir);
    let rec = run_with_timeout(rec, LIMIT);
    assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
    assert!(
        rec.stderr.contains("recorded 4 harts: guest powered off"),
        "{}",
        rec.stderr
    );
    let recorded = started.elapsed();

    // The symbols, as `samsara debug` makes them.
    let map = std::fs::read_to_string(dir.join("System.map")).expect("reading System.map");
    let elf = work.join("kernel-symbols.elf");
    std::fs::write(
        &elf,
        samsara_debug::symbols::system_map_to_elf(&map).expect("System.map parses"),
    )
    .expect("writing the symbol ELF");

    let hit = regs("HIT");
    let back = regs("BACK");
    let mut script = format!(
        "info threads\nbreak _printk\n{}reverse-continue\n{back}reverse-continue\n{back}",
        format!("continue\n{hit}").repeat(5)
    );
    script.push_str(
        "\
x/s &linux_banner
python
a = int(gdb.parse_and_eval('(long)&schedule')) & 0xffffffffffffffff
print('SCHEDULE %x %s' % (a, gdb.selected_inferior().read_memory(a, 32).tobytes().hex()))
end
delete
break handle_exception
continue
printf \"TRAP pc=%#lx stvec=%#lx scause=%#lx priv=%d thread=%d\\n\", $pc, $stvec, $scause, $priv, $_thread
stepi
printf \"INSIDE \"
info symbol $pc
stepi
printf \"INSIDE \"
info symbol $pc
stepi
printf \"INSIDE \"
info symbol $pc
delete
echo SEEK-START\\n
monitor seek 50%
maintenance flush register-cache
printf \"SEEK-END thread=%d\\n\", $_thread
reverse-stepi
echo RSTEP-START\\n
monitor when
echo RSTEP-END\\n
python
import gdb
checked = 0
for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
    t.switch()
    pc = int(gdb.parse_and_eval('$pc')) & 0xffffffffffffffff
    if int(gdb.parse_and_eval('$priv')) == 3 and int(gdb.parse_and_eval('$satp')) != 0:
        mem = gdb.selected_inferior().read_memory(pc, 4).tobytes().hex()
        phys = gdb.execute('monitor phys %#x 4' % pc, to_string=True)
        print('MMODE %s %s' % (mem, ''.join(phys.split(':', 1)[1].split())))
        checked += 1
print('MMODE-CHECKED %d' % checked)
end
delete
continue
",
    );
    let server = Server::start(&trace, &[]);
    let path = work.join("session.gdb");
    std::fs::write(&path, &script).expect("writing the gdb script");
    let started = Instant::now();
    let out = server.gdb_batch(&format!("symbol-file {}", elf.display()), &path, LIMIT);
    let session = started.elapsed();
    drop(server);

    // 4 threads, each a hart with its privilege mode (M: in OpenSBI at the start).
    for hart in 0..4 {
        let needle = format!("Thread 1.{} (hart {hart} M-mode, 0 instructions", hart + 1);
        assert!(out.contains(&needle), "no '{needle}':\n{out}");
    }
    // Five hits of _printk, then back twice: hit 3's registers exactly.
    let hits = marked(&out, "HIT");
    let backs = marked(&out, "BACK");
    assert_eq!(hits.len(), 5, "{out}");
    assert_eq!(backs.len(), 2, "{out}");
    assert_eq!(backs[0], hits[3], "first reverse-continue: hit 4\n{out}");
    assert_eq!(backs[1], hits[2], "second reverse-continue: hit 3\n{out}");
    assert!(
        hits.iter().all(|h| field(h, "pc") == field(&hits[0], "pc")),
        "{out}"
    );
    let distinct: std::collections::BTreeSet<String> =
        hits.iter().map(|h| field(h, "a0")).collect();
    assert!(distinct.len() >= 4, "the hits are different calls: {out}");
    assert_eq!(
        out.matches("hit Breakpoint 1, ").count(),
        7,
        "every stop a breakpoint hit: {out}"
    );
    // Kernel virtual memory through satp, found by symbol.
    assert!(out.contains("<linux_banner>:\t\"Linux version 6."), "{out}");
    // System.map fits the kernel that ran: the code at `schedule` in the
    // recording (read through satp) is the Image's at the same offset from
    // its link address.
    let schedule = marked(&out, "SCHEDULE ");
    assert_eq!(schedule.len(), 1, "{out}");
    let (addr, bytes) = schedule[0].split_once(' ').expect("address and bytes");
    let offset = u64::from_str_radix(addr, 16).unwrap() - 0xffff_ffff_8000_0000;
    let image = std::fs::read(dir.join("Image")).expect("reading the Image");
    let expected: String = image[offset as usize..offset as usize + 32]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(bytes, expected, "{out}");
    // The trap entry: the breakpoint is where stvec points, in S-mode,
    // and stepi goes on inside the handler.
    let trap = marked(&out, "TRAP");
    assert_eq!(trap.len(), 1, "{out}");
    assert_eq!(field(&trap[0], "pc"), field(&trap[0], "stvec"), "{out}");
    assert_eq!(field(&trap[0], "priv"), "1", "{out}");
    let inside = marked(&out, "INSIDE");
    assert_eq!(inside.len(), 3, "{out}");
    for (i, line) in inside.iter().enumerate() {
        assert!(
            line.starts_with("handle_exception + ") && line.ends_with("in section .text"),
            "stepi {i} left handle_exception: {line}\n{out}"
        );
    }
    assert_ne!(inside[0], inside[2], "{out}");
    // monitor seek 50%, then reverse-stepi: one instruction of the
    // selected hart back, no hart further on.
    let seek = between(&out, "SEEK-START", "SEEK-END");
    assert!(seek.contains("(50.00% of "), "{seek}");
    let (at_seek, counts_seek) = when(seek);
    let thread: usize = field(&marked(&out, "SEEK-END")[0], "thread")
        .parse()
        .unwrap();
    let (at_back, counts_back) = when(between(&out, "RSTEP-START", "RSTEP-END"));
    assert_eq!(counts_seek.len(), 4, "{seek}");
    assert!(at_back < at_seek, "{out}");
    let hart = thread - 1;
    assert_eq!(counts_back[hart], counts_seek[hart] - 1, "{out}");
    for h in 0..4 {
        assert!(counts_back[h] <= counts_seek[h], "hart {h}: {out}");
    }
    // An M-mode hart (in OpenSBI; its satp the kernel's) shows physical
    // memory at its pc, as it fetches it.
    for line in marked(&out, "MMODE ") {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 2, "{out}");
        assert_eq!(
            words[0], words[1],
            "gdb's view differs from physical memory: {out}"
        );
    }
    eprintln!(
        "debug_linux: M-mode harts checked at 50%: {:?}",
        marked(&out, "MMODE-CHECKED")
    );
    // And on to the end of the recording.
    assert!(out.contains("No more reverse-execution history"), "{out}");
    assert!(!out.contains("Remote communication error"), "{out}");

    // `samsara debug` finds System.map next to the recorded kernel itself.
    let mut debug = Command::new(SAMSARA);
    debug
        .arg("debug")
        .arg(&trace)
        .args(["--", "-batch", "-nx", "-ex", "info address schedule"])
        .stdin(Stdio::null());
    let debug = run_with_timeout(debug, LIMIT);
    assert!(
        debug.stderr.contains("kernel symbols from") && debug.stderr.contains("System.map"),
        "{}",
        debug.stderr
    );
    let said = format!("{}{}", debug.stdout_str(), debug.stderr);
    assert!(
        said.contains("Symbol \"schedule\" is at 0xffffffff"),
        "{said}"
    );

    // (The debugger opens the trace read-only; that Linux recordings replay
    // VERIFIED is linux.rs's, so the suite does not pay for it twice.)
    eprintln!(
        "debug_linux: recorded in {:.1} s, gdb session {:.1} s",
        recorded.as_secs_f64(),
        session.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&work);
}
