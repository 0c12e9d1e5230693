//! Loading a guest image into RAM: an RV64 ELF executable, or a raw binary.
//!
//! An ELF is loaded by its program headers' physical addresses (as QEMU's
//! `-kernel` does for `-bios none`), after checking that it really is a
//! 64-bit little-endian RISC-V image whose segments all fit in RAM. A file
//! that is not an ELF is a raw binary placed at the start of RAM.
//! If the ELF defines the HTIF symbols `tohost`/`fromhost` (riscv-tests do),
//! the loader reports their addresses so the board can honour them.

use std::path::Path;

use goblin::elf::{Elf, header, program_header};
use samsara_types::GuestPhysAddr;
use thiserror::Error;

use crate::ram::{GuestRam, RamError};

/// Why an image cannot be loaded.
#[derive(Debug, Error)]
pub enum LoaderError {
    /// The image file cannot be read. The host error is the `source()`, not
    /// part of this message, so a report that prints the error chain
    /// (`anyhow`'s `{:#}`) names it once.
    #[error("cannot read guest image {path}")]
    Io {
        /// The image path.
        path: String,
        /// The host error.
        source: std::io::Error,
    },
    /// The file starts like an ELF but cannot be parsed.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// The ELF is for another architecture.
    #[error("ELF is for machine {machine} ({name}), not RISC-V (243)")]
    NotRiscv {
        /// `e_machine` from the header.
        machine: u16,
        /// Its name according to the ELF tables.
        name: &'static str,
    },
    /// A 32-bit ELF.
    #[error("ELF is 32-bit (ELFCLASS32); samsara runs RV64 guests only")]
    Not64Bit,
    /// A big-endian ELF.
    #[error("ELF is big-endian; RISC-V guests are little-endian")]
    BigEndian,
    /// Not an executable.
    #[error("ELF type {0} is not an executable (ET_EXEC)")]
    NotExecutable(u16),
    /// Nothing to load.
    #[error("ELF has no loadable segments")]
    NoLoadableSegments,
    /// A segment lies (partly) outside guest RAM.
    #[error(
        "ELF segment {index} at physical {addr}, {size:#x} bytes, lies outside RAM {ram_base}..{ram_end:#x}"
    )]
    SegmentOutsideRam {
        /// Program header index.
        index: usize,
        /// Physical load address.
        addr: GuestPhysAddr,
        /// Memory size of the segment.
        size: u64,
        /// First byte of RAM.
        ram_base: GuestPhysAddr,
        /// One past the end of RAM.
        ram_end: u64,
    },
    /// A segment's file range lies outside the file.
    #[error(
        "ELF segment {index} claims file bytes {offset:#x}+{size:#x} beyond the file's {file_len:#x} bytes"
    )]
    SegmentOutsideFile {
        /// Program header index.
        index: usize,
        /// File offset.
        offset: u64,
        /// File size of the segment.
        size: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// The entry point is not in RAM.
    #[error("ELF entry point {0} is outside RAM")]
    EntryOutsideRam(GuestPhysAddr),
    /// A raw binary larger than RAM.
    #[error("raw image of {size:#x} bytes does not fit in {ram:#x} bytes of RAM")]
    RawTooLarge {
        /// Image size.
        size: u64,
        /// RAM size.
        ram: u64,
    },
    /// Empty file.
    #[error("guest image is empty")]
    Empty,
    /// Writing the image into RAM failed.
    #[error(transparent)]
    Ram(#[from] RamError),
    /// A `--kernel` file that is not a RISC-V Linux kernel Image.
    #[error("{path} is not a RISC-V Linux kernel Image: {reason}")]
    NotLinuxImage {
        /// The file (or a description of where the bytes came from).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something does not fit in RAM next to the rest of the boot images.
    #[error(
        "{what} ({size:#x} bytes at {addr}) does not fit in RAM {ram_base}..{ram_end:#x}; use a larger --mem"
    )]
    DoesNotFit {
        /// Which image.
        what: &'static str,
        /// Where it would go.
        addr: GuestPhysAddr,
        /// How many bytes it needs.
        size: u64,
        /// First byte of RAM.
        ram_base: GuestPhysAddr,
        /// One past the end of RAM.
        ram_end: u64,
    },
}

/// HTIF mailbox addresses found in the ELF's symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Htif {
    /// Address of `tohost`.
    pub tohost: GuestPhysAddr,
    /// Address of `fromhost`, if present.
    pub fromhost: Option<GuestPhysAddr>,
}

/// What was loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// Where the boot ROM jumps.
    pub entry: GuestPhysAddr,
    /// Highest guest-physical address written, exclusive.
    pub end: u64,
    /// HTIF mailbox, when the ELF defines `tohost`.
    pub htif: Option<Htif>,
    /// Whether the image was an ELF (false: raw binary).
    pub is_elf: bool,
}

/// The header of a RISC-V Linux kernel Image
/// (Documentation/arch/riscv/boot-image-header.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxImageHeader {
    /// `text_offset`: where the Image wants to sit, relative to RAM's start.
    pub text_offset: u64,
    /// `image_size`: bytes the kernel occupies once running (with its BSS).
    pub image_size: u64,
}

/// Offset of the `magic2` field ("RSC\x05") in the Image header.
const IMAGE_MAGIC2_OFFSET: usize = 0x38;
/// Offset of the deprecated `magic` field ("RISCV\0\0\0").
const IMAGE_MAGIC_OFFSET: usize = 0x30;
/// Size of the Image header.
const IMAGE_HEADER_LEN: usize = 0x40;

/// Check that `bytes` is a RISC-V Linux kernel Image and read its header.
/// `path` only names the file in the error.
pub fn parse_linux_image(bytes: &[u8], path: &str) -> Result<LinuxImageHeader, LoaderError> {
    let refuse = |reason: String| LoaderError::NotLinuxImage {
        path: path.to_owned(),
        reason,
    };
    if bytes.starts_with(b"\x1f\x8b") {
        return Err(refuse(
            "it is gzip-compressed (an Image.gz or vmlinuz); decompress it first".into(),
        ));
    }
    if bytes.starts_with(b"\x7fELF") {
        return Err(refuse(
            "it is an ELF file; pass the raw Image (arch/riscv/boot/Image, Debian's /boot/vmlinux-*)"
                .into(),
        ));
    }
    if bytes.len() < IMAGE_HEADER_LEN {
        return Err(refuse(format!(
            "{} bytes is shorter than the 64-byte Image header",
            bytes.len()
        )));
    }
    let magic2 = &bytes[IMAGE_MAGIC2_OFFSET..IMAGE_MAGIC2_OFFSET + 4];
    let magic = &bytes[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 8];
    if magic2 != b"RSC\x05" && magic != b"RISCV\0\0\0" {
        let what = if bytes.len() > 0x206 && &bytes[0x202..0x206] == b"HdrS" {
            "it looks like an x86 bzImage".to_owned()
        } else if bytes.len() > 0x3c && &bytes[0x38..0x3c] == b"ARM\x64" {
            "it is an arm64 Image".to_owned()
        } else {
            format!("no \"RSC\\x05\" magic at offset 0x38 (found {magic2:02x?})")
        };
        return Err(refuse(what));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let header = LinuxImageHeader {
        text_offset: word(0x08),
        image_size: word(0x10),
    };
    if header.image_size != 0 && header.image_size < bytes.len() as u64 {
        return Err(refuse(format!(
            "its header claims {:#x} bytes, less than the file's {:#x}",
            header.image_size,
            bytes.len()
        )));
    }
    Ok(header)
}

/// Load a RISC-V Linux kernel Image at `addr` (QEMU puts it at the first
/// 2 MiB boundary above the firmware). The whole `image_size` of the header
/// (text, data and BSS) must fit in RAM; the BSS part is zeroed.
pub fn load_linux_image(
    bytes: &[u8],
    path: &str,
    addr: GuestPhysAddr,
    ram: &GuestRam,
) -> Result<LoadedImage, LoaderError> {
    let header = parse_linux_image(bytes, path)?;
    let size = header.image_size.max(bytes.len() as u64);
    if !ram.contains(addr, size) {
        return Err(LoaderError::DoesNotFit {
            what: "the kernel",
            addr,
            size,
            ram_base: ram.base(),
            ram_end: ram.end(),
        });
    }
    ram.write(addr, bytes)?;
    ram.zero(
        GuestPhysAddr(addr.raw() + bytes.len() as u64),
        size - bytes.len() as u64,
    )?;
    Ok(LoadedImage {
        entry: addr,
        end: addr.raw() + size,
        htif: None,
        is_elf: false,
    })
}

/// Read an image file and load it into `ram`.
pub fn load_file(path: &Path, ram: &GuestRam) -> Result<LoadedImage, LoaderError> {
    let bytes = std::fs::read(path).map_err(|source| LoaderError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_bytes(&bytes, ram)
}

/// Load an image held in memory into `ram`.
pub fn load_bytes(bytes: &[u8], ram: &GuestRam) -> Result<LoadedImage, LoaderError> {
    if bytes.is_empty() {
        return Err(LoaderError::Empty);
    }
    if bytes.starts_with(b"\x7fELF") {
        load_elf(bytes, ram)
    } else {
        load_raw(bytes, ram)
    }
}

fn load_raw(bytes: &[u8], ram: &GuestRam) -> Result<LoadedImage, LoaderError> {
    let size = bytes.len() as u64;
    if size > ram.size() {
        return Err(LoaderError::RawTooLarge {
            size,
            ram: ram.size(),
        });
    }
    ram.write(ram.base(), bytes)?;
    Ok(LoadedImage {
        entry: ram.base(),
        end: ram.base().raw() + size,
        htif: None,
        is_elf: false,
    })
}

fn load_elf(bytes: &[u8], ram: &GuestRam) -> Result<LoadedImage, LoaderError> {
    // Check the identification bytes ourselves first: goblin would happily
    // parse a 32-bit or big-endian file, and the message should say why we refuse.
    if bytes.len() < header::SIZEOF_IDENT {
        return Err(LoaderError::Malformed(
            "file shorter than the ELF identification".into(),
        ));
    }
    match bytes[header::EI_CLASS] {
        header::ELFCLASS64 => {}
        header::ELFCLASS32 => return Err(LoaderError::Not64Bit),
        other => return Err(LoaderError::Malformed(format!("unknown ELF class {other}"))),
    }
    if bytes[header::EI_DATA] == header::ELFDATA2MSB {
        return Err(LoaderError::BigEndian);
    }
    let elf = Elf::parse(bytes).map_err(|e| LoaderError::Malformed(e.to_string()))?;
    if elf.header.e_machine != header::EM_RISCV {
        return Err(LoaderError::NotRiscv {
            machine: elf.header.e_machine,
            name: header::machine_to_str(elf.header.e_machine),
        });
    }
    if elf.header.e_type != header::ET_EXEC {
        return Err(LoaderError::NotExecutable(elf.header.e_type));
    }

    let mut end = 0u64;
    let mut loaded_any = false;
    for (index, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != program_header::PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        let addr = GuestPhysAddr(ph.p_paddr);
        if ph.p_filesz > ph.p_memsz || !ram.contains(addr, ph.p_memsz) {
            return Err(LoaderError::SegmentOutsideRam {
                index,
                addr,
                size: ph.p_memsz,
                ram_base: ram.base(),
                ram_end: ram.end(),
            });
        }
        let file_end = ph.p_offset.checked_add(ph.p_filesz);
        if file_end.is_none_or(|e| e > bytes.len() as u64) {
            return Err(LoaderError::SegmentOutsideFile {
                index,
                offset: ph.p_offset,
                size: ph.p_filesz,
                file_len: bytes.len() as u64,
            });
        }
        let data = &bytes[ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize];
        ram.write(addr, data)?;
        ram.zero(
            GuestPhysAddr(addr.raw() + ph.p_filesz),
            ph.p_memsz - ph.p_filesz,
        )?;
        end = end.max(addr.raw() + ph.p_memsz);
        loaded_any = true;
    }
    if !loaded_any {
        return Err(LoaderError::NoLoadableSegments);
    }
    let entry = GuestPhysAddr(elf.entry);
    if !ram.contains(entry, 2) {
        return Err(LoaderError::EntryOutsideRam(entry));
    }

    let symbol = |name: &str| {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| GuestPhysAddr(s.st_value))
    };
    let htif = symbol("tohost").map(|tohost| Htif {
        tohost,
        fromhost: symbol("fromhost"),
    });
    Ok(LoadedImage {
        entry,
        end,
        htif,
        is_elf: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram() -> GuestRam {
        GuestRam::new(GuestPhysAddr(0x8000_0000), 0x10000).unwrap()
    }

    /// A minimal ELF64 header + one PT_LOAD, built by hand.
    fn elf(class: u8, data: u8, machine: u16, paddr: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = class;
        f[5] = data;
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&paddr.to_le_bytes()); // entry
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = &mut f[64..120];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[4..8].copy_from_slice(&5u32.to_le_bytes());
        ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // offset
        ph[16..24].copy_from_slice(&paddr.to_le_bytes());
        ph[24..32].copy_from_slice(&paddr.to_le_bytes());
        ph[32..40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&(payload.len() as u64 + 16).to_le_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn loads_a_riscv_elf_by_physical_address() {
        let ram = ram();
        let image = elf(2, 1, 243, 0x8000_1000, &[0x13, 0, 0, 0]);
        let loaded = load_bytes(&image, &ram).unwrap();
        assert_eq!(loaded.entry, GuestPhysAddr(0x8000_1000));
        assert_eq!(loaded.end, 0x8000_1000 + 20);
        let mut word = [0u8; 4];
        ram.read(GuestPhysAddr(0x8000_1000), &mut word).unwrap();
        assert_eq!(word, [0x13, 0, 0, 0]);
    }

    #[test]
    fn refuses_foreign_elves_with_a_reason() {
        let ram = ram();
        let x86 = elf(2, 1, 62, 0x8000_0000, &[0; 4]);
        let err = load_bytes(&x86, &ram).unwrap_err().to_string();
        assert!(err.contains("not RISC-V") && err.contains("62"), "{err}");
        let elf32 = elf(1, 1, 243, 0x8000_0000, &[0; 4]);
        assert!(matches!(
            load_bytes(&elf32, &ram),
            Err(LoaderError::Not64Bit)
        ));
        let be = elf(2, 2, 243, 0x8000_0000, &[0; 4]);
        assert!(matches!(load_bytes(&be, &ram), Err(LoaderError::BigEndian)));
        let outside = elf(2, 1, 243, 0x4000_0000, &[0; 4]);
        let err = load_bytes(&outside, &ram).unwrap_err();
        assert!(
            matches!(err, LoaderError::SegmentOutsideRam { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("outside RAM"));
        let mut truncated = elf(2, 1, 243, 0x8000_0000, &[0; 4]);
        truncated.truncate(100);
        assert!(load_bytes(&truncated, &ram).is_err());
    }

    #[test]
    fn a_missing_file_names_the_path_and_the_host_error_once() {
        let err = load_file(Path::new("/nonexistent/guest.elf"), &ram()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read guest image /nonexistent/guest.elf"
        );
        let source = std::error::Error::source(&err).expect("the io::Error is the source");
        assert!(source.to_string().contains("No such file"), "{source}");
    }

    /// A fake RISC-V Image: header with `image_size`, then `len` bytes.
    pub(crate) fn linux_image(len: usize, image_size: u64) -> Vec<u8> {
        let mut image = vec![0u8; len.max(64)];
        image[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        image[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
        image[0x38..0x3c].copy_from_slice(b"RSC\x05");
        image
    }

    #[test]
    fn linux_images_are_checked_and_their_bss_zeroed() {
        let ram = GuestRam::new(GuestPhysAddr(0x8000_0000), 0x40000).unwrap();
        ram.write(GuestPhysAddr(0x8001_1000), &[0xff; 16]).unwrap();
        let image = linux_image(0x1000, 0x2000);
        let loaded = load_linux_image(&image, "Image", GuestPhysAddr(0x8001_0000), &ram).unwrap();
        assert_eq!(loaded.entry, GuestPhysAddr(0x8001_0000));
        assert_eq!(loaded.end, 0x8001_2000);
        let mut bss = [1u8; 16];
        ram.read(GuestPhysAddr(0x8001_1000), &mut bss).unwrap();
        assert_eq!(bss, [0; 16]);
        // image_size beyond RAM: refused, with the advice.
        let big = linux_image(0x1000, 0x10_0000);
        let err = load_linux_image(&big, "Image", GuestPhysAddr(0x8001_0000), &ram).unwrap_err();
        assert!(err.to_string().contains("--mem"), "{err}");
    }

    #[test]
    fn wrong_kernels_are_named_for_what_they_are() {
        let reason = |bytes: &[u8]| parse_linux_image(bytes, "k").unwrap_err().to_string();
        assert!(reason(b"\x1f\x8b\x08\0rest").contains("gzip"));
        assert!(reason(&elf(2, 1, 243, 0x8000_0000, &[0; 4])).contains("ELF"));
        assert!(reason(b"short").contains("shorter"));
        let mut arm = vec![0u8; 0x100];
        arm[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert!(reason(&arm).contains("arm64"));
        assert!(reason(&[0u8; 0x100]).contains("RSC"));
        assert!(parse_linux_image(&linux_image(0x100, 0x100), "k").is_ok());
    }

    #[test]
    fn raw_binaries_go_to_the_start_of_ram() {
        let ram = ram();
        let loaded = load_bytes(&[1, 2, 3, 4], &ram).unwrap();
        assert_eq!(loaded.entry, GuestPhysAddr(0x8000_0000));
        assert!(!loaded.is_elf);
        assert!(matches!(
            load_bytes(&vec![1u8; 0x20000], &ram),
            Err(LoaderError::RawTooLarge { .. })
        ));
        assert!(matches!(load_bytes(&[], &ram), Err(LoaderError::Empty)));
    }
}
