//! Kernel symbols for gdb: a `System.map` (`ADDR TYPE NAME` lines, as
//! `/proc/kallsyms` prints them) turned into a small symbol-only ELF64 that
//! gdb loads with `symbol-file`, so that `break schedule` works on a kernel
//! shipped without its vmlinux.
//!
//! The ELF has no contents: a `.text` section (NOBITS, alloc + exec)
//! spanning the text symbols, a `.data` section (NOBITS, alloc + write)
//! spanning the data symbols above it, and `.symtab`/`.strtab`. Text
//! symbols (`t`/`T`, and `w`/`W` inside `.text`) become `STT_FUNC`, data
//! (`d`/`D`, `b`/`B`, `r`/`R`, `v`/`V`, and `w`/`W` outside `.text`)
//! `STT_OBJECT`; lower case is a local symbol, upper case global, `w`/`W`/
//! `v`/`V` weak. A symbol's size is the distance to the next address
//! (within its section), which is what `disassemble NAME` needs. Other
//! types (absolute, undefined) and module symbols (`[name]`) are left out.

use std::fmt;

/// One line of a `System.map`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSymbol {
    pub addr: u64,
    /// The `nm` type letter.
    pub kind: u8,
    pub name: String,
}

/// Why a file is not a usable symbol map.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SymbolsError {
    #[error(
        "no symbols: expected 'ADDRESS TYPE NAME' lines (Debian's linux-image ships a stub System.map; scripts/setup-linux.sh makes a real one from /proc/kallsyms)"
    )]
    Empty,
    #[error(
        "this is Debian's stub System.map (the real one is in the -dbg package); scripts/setup-linux.sh makes one from /proc/kallsyms"
    )]
    DebianStub,
    #[error("line {line}: '{text}' is not 'ADDRESS TYPE NAME'")]
    Malformed { line: usize, text: String },
}

impl fmt::Display for MapSymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x} {} {}", self.addr, self.kind as char, self.name)
    }
}

fn is_text(kind: u8) -> bool {
    matches!(kind, b't' | b'T')
}

fn is_data(kind: u8) -> bool {
    matches!(
        kind,
        b'd' | b'D' | b'b' | b'B' | b'r' | b'R' | b'v' | b'V' | b'g' | b'G' | b's' | b'S'
    )
}

fn is_weak(kind: u8) -> bool {
    matches!(kind, b'w' | b'W' | b'v' | b'V')
}

/// Parses a `System.map` (or `/proc/kallsyms`): kernel symbols of the types
/// kept (see the module's documentation); module symbols are skipped. A
/// line that is not `ADDRESS TYPE NAME` is an error, so is a map without
/// symbols.
pub fn parse_system_map(text: &str) -> Result<Vec<MapSymbol>, SymbolsError> {
    if text.len() < 256 && text.contains("The real System.map is in") {
        return Err(SymbolsError::DebianStub);
    }
    let mut symbols = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let malformed = || SymbolsError::Malformed {
            line: i + 1,
            text: line.chars().take(80).collect(),
        };
        match fields.as_slice() {
            [] => continue,
            // A module's symbol (kallsyms): not the kernel's.
            [_, _, _, module] if module.starts_with('[') => continue,
            [addr, kind, name] if kind.len() == 1 => {
                let addr = u64::from_str_radix(addr, 16).map_err(|_| malformed())?;
                let kind = kind.as_bytes()[0];
                if !kind.is_ascii_alphabetic() {
                    return Err(malformed());
                }
                if is_text(kind) || is_data(kind) || matches!(kind, b'w' | b'W') {
                    symbols.push(MapSymbol {
                        addr,
                        kind,
                        name: (*name).to_string(),
                    });
                }
            }
            _ => return Err(malformed()),
        }
    }
    if symbols.is_empty() {
        return Err(SymbolsError::Empty);
    }
    Ok(symbols)
}

// ELF constants (the ELF64 gABI, RISC-V psABI).
const ET_EXEC: u16 = 2;
const EM_RISCV: u16 = 243;
const EF_RISCV_RVC: u32 = 0x1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;
const STB_LOCAL: u8 = 0;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const SHN_ABS: u16 = 0xfff1;
const TEXT: u16 = 1;
const DATA: u16 = 2;
const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;

struct Section {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

fn push_shdr(out: &mut Vec<u8>, s: &Section) {
    out.extend_from_slice(&s.name.to_le_bytes());
    out.extend_from_slice(&s.kind.to_le_bytes());
    out.extend_from_slice(&s.flags.to_le_bytes());
    out.extend_from_slice(&s.addr.to_le_bytes());
    out.extend_from_slice(&s.offset.to_le_bytes());
    out.extend_from_slice(&s.size.to_le_bytes());
    out.extend_from_slice(&s.link.to_le_bytes());
    out.extend_from_slice(&s.info.to_le_bytes());
    out.extend_from_slice(&s.align.to_le_bytes());
    out.extend_from_slice(&s.entsize.to_le_bytes());
}

/// `[start, end)` of the symbols `keep` accepts, the end one past the last
/// (at least 4 bytes: an instruction or a word).
fn span(symbols: &[MapSymbol], keep: impl Fn(&MapSymbol) -> bool) -> Option<(u64, u64)> {
    let mut it = symbols.iter().filter(|s| keep(s)).map(|s| s.addr);
    let first = it.next()?;
    let (lo, hi) = it.fold((first, first), |(lo, hi), a| (lo.min(a), hi.max(a)));
    Some((lo, hi.saturating_add(4)))
}

/// A symbol-only ELF64 for RISC-V holding `symbols` (see the module's
/// documentation), for gdb's `symbol-file`.
pub fn symbol_elf(symbols: &[MapSymbol]) -> Vec<u8> {
    let mut sorted: Vec<&MapSymbol> = symbols.iter().collect();
    sorted.sort_by_key(|s| s.addr);
    let owned: Vec<MapSymbol> = sorted.iter().map(|s| (*s).clone()).collect();
    let text = span(&owned, |s| is_text(s.kind));
    // Data above the text (rodata, data, bss); anything below stays absolute.
    let data = span(&owned, |s| {
        is_data(s.kind) && text.is_none_or(|(_, end)| s.addr >= end)
    });
    let section_of = |addr: u64| -> (u16, u64) {
        match (text, data) {
            (Some((lo, hi)), _) if (lo..hi).contains(&addr) => (TEXT, hi),
            (_, Some((lo, hi))) if (lo..hi).contains(&addr) => (DATA, hi),
            _ => (SHN_ABS, addr),
        }
    };

    // Symbols: locals first (sh_info is the first non-local's index).
    let mut strtab = vec![0u8];
    let mut locals = Vec::new();
    let mut globals = Vec::new();
    for (i, s) in owned.iter().enumerate() {
        let (shndx, section_end) = section_of(s.addr);
        let in_text = shndx == TEXT;
        let kind = if is_text(s.kind) || (matches!(s.kind, b'w' | b'W') && in_text) {
            STT_FUNC
        } else {
            STT_OBJECT
        };
        let bind = if is_weak(s.kind) {
            STB_WEAK
        } else if s.kind.is_ascii_uppercase() {
            STB_GLOBAL
        } else {
            STB_LOCAL
        };
        // Up to the next higher address, within the section.
        let next = owned[i + 1..]
            .iter()
            .map(|n| n.addr)
            .find(|&a| a > s.addr)
            .unwrap_or(section_end);
        let size = if shndx == SHN_ABS {
            0
        } else {
            next.min(section_end).saturating_sub(s.addr)
        };
        let name = strtab.len() as u32;
        strtab.extend_from_slice(s.name.as_bytes());
        strtab.push(0);
        let mut sym = Vec::with_capacity(SYM_SIZE);
        sym.extend_from_slice(&name.to_le_bytes());
        sym.push((bind << 4) | kind);
        sym.push(0); // st_other: default visibility
        sym.extend_from_slice(&shndx.to_le_bytes());
        sym.extend_from_slice(&s.addr.to_le_bytes());
        sym.extend_from_slice(&size.to_le_bytes());
        if bind == STB_LOCAL {
            locals.push(sym);
        } else {
            globals.push(sym);
        }
    }
    let first_global = 1 + locals.len() as u32;
    let mut symtab = vec![0u8; SYM_SIZE]; // the null symbol
    for sym in locals.into_iter().chain(globals) {
        symtab.extend_from_slice(&sym);
    }

    let mut shstrtab = vec![0u8];
    let mut name = |n: &str| {
        let at = shstrtab.len() as u32;
        shstrtab.extend_from_slice(n.as_bytes());
        shstrtab.push(0);
        at
    };
    let names = [
        name(".text"),
        name(".data"),
        name(".symtab"),
        name(".strtab"),
        name(".shstrtab"),
    ];

    let symtab_off = EHDR_SIZE as u64;
    let strtab_off = symtab_off + symtab.len() as u64;
    let shstrtab_off = strtab_off + strtab.len() as u64;
    let shoff = (shstrtab_off + shstrtab.len() as u64).next_multiple_of(8);
    let (text_lo, text_hi) = text.unwrap_or((0, 0));
    let (data_lo, data_hi) = data.unwrap_or((text_hi, text_hi));
    let sections = [
        Section {
            name: names[0],
            kind: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_EXECINSTR,
            addr: text_lo,
            offset: symtab_off,
            size: text_hi - text_lo,
            link: 0,
            info: 0,
            align: 2,
            entsize: 0,
        },
        Section {
            name: names[1],
            kind: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_WRITE,
            addr: data_lo,
            offset: symtab_off,
            size: data_hi - data_lo,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Section {
            name: names[2],
            kind: SHT_SYMTAB,
            flags: 0,
            addr: 0,
            offset: symtab_off,
            size: symtab.len() as u64,
            link: 4,
            info: first_global,
            align: 8,
            entsize: SYM_SIZE as u64,
        },
        Section {
            name: names[3],
            kind: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: strtab_off,
            size: strtab.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Section {
            name: names[4],
            kind: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: shstrtab_off,
            size: shstrtab.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
    ];

    let mut out = Vec::with_capacity(shoff as usize + SHDR_SIZE * (sections.len() + 1));
    // e_ident: ELF64, little-endian, version 1, System V ABI.
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&ET_EXEC.to_le_bytes());
    out.extend_from_slice(&EM_RISCV.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&text_lo.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff: no program headers
    out.extend_from_slice(&shoff.to_le_bytes());
    // Compressed instructions, soft-float ABI (lp64), as the kernel.
    out.extend_from_slice(&EF_RISCV_RVC.to_le_bytes());
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
    out.extend_from_slice(&5u16.to_le_bytes()); // e_shstrndx
    debug_assert_eq!(out.len(), EHDR_SIZE);
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(&shstrtab);
    out.resize(shoff as usize, 0);
    out.extend_from_slice(&[0; SHDR_SIZE]); // the null section
    for s in &sections {
        push_shdr(&mut out, s);
    }
    out
}

/// [`parse_system_map`] then [`symbol_elf`].
pub fn system_map_to_elf(text: &str) -> Result<Vec<u8>, SymbolsError> {
    Ok(symbol_elf(&parse_system_map(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use goblin::elf::Elf;
    use goblin::elf::sym;

    const MAP: &str = "\
ffffffff80000000 T _start
ffffffff80002000 T _stext
ffffffff80002010 t local_helper
ffffffff80a78d78 T schedule
ffffffff80a78e00 W weak_fn
ffffffff80a81240 T handle_exception
ffffffff80a815a0 T _etext
ffffffff81149320 D linux_banner
ffffffff81200000 r some_rodata
ffffffff81e6c000 B _end
0000000000000000 A absolute_thing
ffffffffc0000000 t virtio_probe\t[virtio_blk]
";

    #[test]
    fn parses_kernel_symbols_and_skips_modules_and_absolutes() {
        let syms = parse_system_map(MAP).unwrap();
        assert_eq!(syms.len(), 10);
        assert_eq!(
            syms[3],
            MapSymbol {
                addr: 0xffff_ffff_80a7_8d78,
                kind: b'T',
                name: "schedule".into()
            }
        );
        assert!(syms.iter().all(|s| s.name != "virtio_probe"));
    }

    #[test]
    fn debians_stub_and_garbage_are_refused() {
        let stub =
            "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        assert_eq!(parse_system_map(stub), Err(SymbolsError::DebianStub));
        assert!(matches!(
            parse_system_map("ffffffff80000000 T two words\n"),
            Err(SymbolsError::Malformed { line: 1, .. })
        ));
        assert_eq!(parse_system_map("\n\n"), Err(SymbolsError::Empty));
        assert!(parse_system_map("xyz T foo\n").is_err());
    }

    #[test]
    fn the_elf_parses_with_functions_in_text_and_objects_in_data() {
        let bytes = system_map_to_elf(MAP).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.header.e_machine, goblin::elf::header::EM_RISCV);
        assert!(elf.is_64 && elf.little_endian);
        let section = |name: &str| {
            elf.section_headers
                .iter()
                .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let text = section(".text");
        assert_eq!(text.sh_type, SHT_NOBITS);
        assert_eq!(text.sh_flags, SHF_ALLOC | SHF_EXECINSTR);
        assert_eq!(text.sh_addr, 0xffff_ffff_8000_0000);
        assert_eq!(text.sh_addr + text.sh_size, 0xffff_ffff_80a8_15a4);
        let data = section(".data");
        assert_eq!(data.sh_addr, 0xffff_ffff_8114_9320);
        let find = |name: &str| {
            elf.syms
                .iter()
                .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
                .unwrap_or_else(|| panic!("no symbol {name}"))
        };
        let schedule = find("schedule");
        assert_eq!(schedule.st_value, 0xffff_ffff_80a7_8d78);
        assert_eq!(schedule.st_type(), sym::STT_FUNC);
        assert_eq!(schedule.st_bind(), sym::STB_GLOBAL);
        assert_eq!(schedule.st_size, 0x88, "up to weak_fn");
        assert_eq!(schedule.st_shndx, usize::from(TEXT));
        let helper = find("local_helper");
        assert_eq!(helper.st_bind(), sym::STB_LOCAL);
        assert_eq!(find("weak_fn").st_bind(), sym::STB_WEAK);
        assert_eq!(find("weak_fn").st_type(), sym::STT_FUNC);
        let banner = find("linux_banner");
        assert_eq!(banner.st_type(), sym::STT_OBJECT);
        assert_eq!(banner.st_shndx, usize::from(DATA));
        assert_eq!(find("some_rodata").st_bind(), sym::STB_LOCAL);
        // Locals come first: sh_info is the first global's index.
        let symtab = section(".symtab");
        let first_global = symtab.sh_info as usize;
        for (i, s) in elf.syms.iter().enumerate().skip(1) {
            assert_eq!(
                s.st_bind() == sym::STB_LOCAL,
                i < first_global,
                "symbol {i}"
            );
        }
    }

    /// gdb-multiarch itself loads the ELF: functions break by name, data
    /// has its address, an address inside a function names it.
    #[test]
    fn gdb_loads_the_elf_and_finds_symbols_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernel-syms.elf");
        std::fs::write(&path, system_map_to_elf(MAP).unwrap()).unwrap();
        let out = std::process::Command::new("gdb-multiarch")
            .args(["-batch", "-nx"])
            .arg("-ex")
            .arg(format!("symbol-file {}", path.display()))
            .args([
                "-ex",
                "info address schedule",
                "-ex",
                "info symbol 0xffffffff80a78d80",
                "-ex",
                "info address linux_banner",
                "-ex",
                "break schedule",
            ])
            .output()
            .expect("gdb-multiarch (scripts/setup.sh installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(
                "Symbol \"schedule\" is at 0xffffffff80a78d78 in a file compiled without debugging"
            ),
            "{text}"
        );
        assert!(text.contains("schedule + 8 in section .text"), "{text}");
        assert!(
            text.contains("Symbol \"linux_banner\" is at 0xffffffff81149320 in a file compiled without debugging"),
            "{text}"
        );
        assert!(
            text.contains("Breakpoint 1 at 0xffffffff80a78d78"),
            "{text}"
        );
    }
}
