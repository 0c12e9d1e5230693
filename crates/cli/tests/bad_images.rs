//! End-to-end: images samsara must refuse are refused with an error that
//! names the problem, a non-zero status and no panic.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{Run, samsara};

/// `samsara run IMAGE` plus `extra`, expected to be refused before the
/// guest starts: status 2, nothing on stdout, one `samsara: error:` line
/// containing every string in `needles`.
#[track_caller]
fn refused(image: &Path, extra: &[&str], needles: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["run".as_ref(), image.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    let run = samsara(args);
    run.assert_code(2);
    assert!(
        run.stdout.is_empty(),
        "refused image produced output: {}",
        run.stdout_str()
    );
    assert!(
        run.stderr.starts_with("samsara: error: "),
        "{}: {}",
        run.what,
        run.stderr
    );
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{}: the error does not say {needle:?}: {}",
            run.what,
            run.stderr
        );
    }
    run
}

/// A minimal ELF with one PT_LOAD of `payload` at `paddr`; `class` 2 is
/// ELF64, 1 is ELF32 (header laid out for its class).
fn elf(class: u8, machine: u16, paddr: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF");
    f.extend_from_slice(&[class, 1, 1, 0]);
    f.resize(16, 0);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    if class == 2 {
        let (ehsize, phentsize) = (64u16, 56u16);
        let offset = u64::from(ehsize + phentsize);
        f.extend_from_slice(&paddr.to_le_bytes()); // entry
        f.extend_from_slice(&64u64.to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes()); // flags
        for half in [ehsize, phentsize, 1, 0, 0, 0] {
            f.extend_from_slice(&half.to_le_bytes());
        }
        f.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        f.extend_from_slice(&5u32.to_le_bytes()); // R+X
        for word in [
            offset,
            paddr,
            paddr,
            payload.len() as u64,
            payload.len() as u64,
            0x1000,
        ] {
            f.extend_from_slice(&word.to_le_bytes());
        }
    } else {
        let (ehsize, phentsize) = (52u16, 32u16);
        let offset = u32::from(ehsize + phentsize);
        let paddr = paddr as u32;
        f.extend_from_slice(&paddr.to_le_bytes()); // entry
        f.extend_from_slice(&52u32.to_le_bytes()); // phoff
        f.extend_from_slice(&0u32.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes()); // flags
        for half in [ehsize, phentsize, 1, 0, 0, 0] {
            f.extend_from_slice(&half.to_le_bytes());
        }
        for word in [
            1u32,
            offset,
            paddr,
            paddr,
            payload.len() as u32,
            payload.len() as u32,
            5,
            0x1000,
        ] {
            f.extend_from_slice(&word.to_le_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

const EM_RISCV: u16 = 243;
/// `wfi` and two `nop`s; never run, since every image here is refused.
const PAYLOAD: [u8; 8] = [0x73, 0x00, 0x50, 0x10, 0x01, 0x00, 0x01, 0x00];

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a test image");
    path
}

#[test]
fn a_host_executable_is_not_a_riscv_guest() {
    // The samsara binary itself: an ELF for the host's machine, always there.
    refused(
        Path::new(common::SAMSARA),
        &[],
        &["ELF is for machine", "not RISC-V"],
    );
    let bin_true = Path::new("/bin/true");
    if bin_true.is_file() {
        refused(bin_true, &[], &["not RISC-V"]);
    }
}

#[test]
fn a_32_bit_elf_is_refused() {
    let dir = common::scratch_dir("elf32");
    let image = write(&dir, "rv32.elf", &elf(1, EM_RISCV, 0x8000_0000, &PAYLOAD));
    refused(&image, &[], &["32-bit", "RV64"]);
}

#[test]
fn a_big_endian_elf_is_refused() {
    let dir = common::scratch_dir("elfbe");
    let mut bytes = elf(2, EM_RISCV, 0x8000_0000, &PAYLOAD);
    bytes[5] = 2; // ELFDATA2MSB
    let image = write(&dir, "be.elf", &bytes);
    refused(&image, &[], &["big-endian"]);
}

#[test]
fn an_elf_segment_outside_ram_is_refused() {
    let dir = common::scratch_dir("elfout");
    // Below RAM (0x4000_0000 is nothing on virt).
    let image = write(&dir, "low.elf", &elf(2, EM_RISCV, 0x4000_0000, &PAYLOAD));
    refused(&image, &[], &["segment", "0x40000000", "outside RAM"]);
    // Past the end of a 128 MiB RAM.
    let image = write(&dir, "high.elf", &elf(2, EM_RISCV, 0x8800_0000, &PAYLOAD));
    refused(&image, &[], &["segment", "0x88000000", "outside RAM"]);
    // A real guest whose 16 MiB of bss does not fit in 8 MiB of RAM.
    refused(
        &common::guest("parsum"),
        &["--mem", "8M"],
        &["segment", "outside RAM", "0x80800000"],
    );
}

#[test]
fn a_missing_file_is_refused_naming_it() {
    let path = common::scratch_dir("missing").join("no-such-guest.elf");
    let run = refused(
        &path,
        &[],
        &[
            "cannot read guest image",
            "no-such-guest.elf",
            "No such file",
        ],
    );
    assert_eq!(
        run.stderr.matches("No such file").count(),
        1,
        "the host error is repeated: {}",
        run.stderr
    );
}

#[test]
fn an_empty_file_is_refused() {
    let dir = common::scratch_dir("empty");
    let image = write(&dir, "empty.bin", &[]);
    refused(&image, &[], &["empty"]);
}

#[test]
fn bad_arguments_are_refused_by_the_parser() {
    let hello = common::guest("hello");
    for (args, needle) in [
        (vec!["--harts", "0"], "--harts"),
        (vec!["--harts", "9"], "--harts"),
        (vec!["--mem", "12Q"], "size suffix"),
    ] {
        let mut all: Vec<&OsStr> = vec!["run".as_ref(), hello.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        let run = samsara(all);
        run.assert_code(2);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
    }
}
