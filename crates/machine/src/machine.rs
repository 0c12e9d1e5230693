//! A machine ready to start: the board with the image, device tree and boot
//! ROM in place, and one hart per CPU at the reset vector.
//!
//! Every execution mode (run, record, replay) starts from this same state,
//! so a recording's initial state is exactly what `run` would have used.

use samsara_cpu::CpuEngine;
use std::path::Path;
use std::sync::Arc;

use samsara_cpu::Hart;
use samsara_types::{GuestPhysAddr, GuestVirtAddr, HartId};
use thiserror::Error;

use crate::board::{BOOT_ROM_BASE, Board, BoardConfig, BoardError};
use crate::clock::Clock;
use crate::devices::uart::SerialOutput;
use crate::devices::virtio::block::CompletionSink;
use crate::loader::{LoadedImage, LoaderError, load_bytes, load_linux_image};

/// Why a machine cannot be set up.
#[derive(Debug, Error)]
pub enum MachineError {
    /// The board could not be built.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// The guest image could not be loaded.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The device tree does not fit.
    #[error("cannot place the device tree: {0}")]
    Fdt(String),
}

/// Alignment of the device tree's address, as QEMU's `riscv_compute_fdt_addr`.
const FDT_ALIGN: u64 = 2 << 20;
/// Alignment of the kernel above the firmware (QEMU's
/// `riscv_calc_kernel_start_addr` on RV64): a 2 MiB megapage.
const KERNEL_ALIGN: u64 = 2 << 20;
/// QEMU's `riscv_load_initrd`: the initrd goes at kernel + min(RAM/2, 128 MiB).
const INITRD_MAX_OFFSET: u64 = 128 << 20;

/// What `samsara run --bios FW --kernel IMAGE --initrd FILE --append ARGS`
/// boots, as QEMU's `virt` does: the firmware (OpenSBI `fw_dynamic`) at the
/// start of RAM, entered in M-mode from the boot ROM with a0 = hart id,
/// a1 = device tree, a2 = `fw_dynamic_info` naming the kernel as the next
/// stage (S-mode); the kernel Image at the first 2 MiB boundary above the
/// firmware; the initrd and the command line announced in `/chosen`.
#[derive(Clone, Debug, Default)]
pub struct LinuxBoot {
    /// Firmware: an ELF or raw binary (loaded at the start of RAM).
    pub firmware: Vec<u8>,
    /// The kernel: a RISC-V Linux Image.
    pub kernel: Vec<u8>,
    /// Where the kernel came from (named in error messages).
    pub kernel_name: String,
    /// Initial RAM disk, if any.
    pub initrd: Option<Vec<u8>>,
    /// Kernel command line (`/chosen/bootargs`).
    pub bootargs: Option<String>,
}

impl LinuxBoot {
    /// Read the firmware, kernel and initrd files.
    pub fn from_files(
        firmware: &Path,
        kernel: &Path,
        initrd: Option<&Path>,
        bootargs: Option<String>,
    ) -> Result<Self, LoaderError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| LoaderError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        Ok(Self {
            firmware: read(firmware)?,
            kernel: read(kernel)?,
            kernel_name: kernel.display().to_string(),
            initrd: initrd.map(read).transpose()?,
            bootargs,
        })
    }
}

/// Where the kernel, initrd and device tree went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxLayout {
    /// First byte of the kernel.
    pub kernel: GuestPhysAddr,
    /// The initrd as `(start, end)`.
    pub initrd: Option<(u64, u64)>,
}

/// A machine at its reset state.
pub struct Machine {
    /// Devices and RAM.
    pub board: Board,
    /// The harts, in hart-id order.
    pub harts: Vec<Hart>,
    /// What was loaded.
    pub image: LoadedImage,
    /// Guest-physical address of the device tree.
    pub fdt_addr: GuestPhysAddr,
}

impl Machine {
    /// Build a machine running `image` (an ELF or raw binary, as bytes).
    pub fn new(
        config: &BoardConfig,
        image: &[u8],
        clock: Arc<dyn Clock>,
        console: SerialOutput,
    ) -> Result<Self, MachineError> {
        Self::with_completion_sink(config, image, clock, console, None)
    }

    /// Like [`Machine::new`], with the disk's completions going to `sink`
    /// (see [`Board::with_completion_sink`]).
    pub fn with_completion_sink(
        config: &BoardConfig,
        image: &[u8],
        clock: Arc<dyn Clock>,
        console: SerialOutput,
        sink: Option<Arc<dyn CompletionSink>>,
    ) -> Result<Self, MachineError> {
        let mut board = Board::with_completion_sink(config, clock, console, sink)?;
        let loaded = load_bytes(image, &board.ram)?;
        if let Some(htif) = loaded.htif {
            board.enable_htif(htif);
        }
        let fdt_config = crate::fdt::FdtConfig::new(config.harts, board.ram.size());
        let entry = loaded.entry.raw();
        let end = loaded.end;
        Self::finish(config, board, loaded, &fdt_config, end, entry)
    }

    /// Build a machine that boots Linux as QEMU's `virt` does (see
    /// [`LinuxBoot`]); `sink` as in [`Machine::with_completion_sink`].
    pub fn boot_linux(
        config: &BoardConfig,
        boot: &LinuxBoot,
        clock: Arc<dyn Clock>,
        console: SerialOutput,
        sink: Option<Arc<dyn CompletionSink>>,
    ) -> Result<(Self, LinuxLayout), MachineError> {
        // Check the kernel before building anything: a wrong file is the
        // likeliest mistake and deserves the first word.
        crate::loader::parse_linux_image(&boot.kernel, &boot.kernel_name)?;
        let board = Board::with_completion_sink(config, clock, console, sink)?;
        let firmware = load_bytes(&boot.firmware, &board.ram)?;
        let ram = &board.ram;
        let kernel_addr = GuestPhysAddr(firmware.end.next_multiple_of(KERNEL_ALIGN));
        let kernel = load_linux_image(&boot.kernel, &boot.kernel_name, kernel_addr, ram)?;
        let mut end = kernel.end;
        let initrd = match &boot.initrd {
            Some(bytes) => {
                let offset = (ram.size() / 2).min(INITRD_MAX_OFFSET);
                let start = (kernel_addr.raw() + offset)
                    .max(kernel.end)
                    .next_multiple_of(samsara_types::PAGE_SIZE);
                let len = bytes.len() as u64;
                if !ram.contains(GuestPhysAddr(start), len) {
                    return Err(LoaderError::DoesNotFit {
                        what: "the initrd",
                        addr: GuestPhysAddr(start),
                        size: len,
                        ram_base: ram.base(),
                        ram_end: ram.end(),
                    }
                    .into());
                }
                ram.write(GuestPhysAddr(start), bytes)
                    .map_err(LoaderError::from)?;
                end = start + len;
                Some((start, start + len))
            }
            None => None,
        };
        let mut fdt_config = crate::fdt::FdtConfig::new(config.harts, ram.size());
        fdt_config.bootargs = boot.bootargs.clone();
        fdt_config.initrd = initrd;
        // `image` describes the firmware: the boot ROM jumps there.
        let machine = Self::finish(config, board, firmware, &fdt_config, end, kernel_addr.raw())?;
        let layout = LinuxLayout {
            kernel: kernel_addr,
            initrd,
        };
        Ok((machine, layout))
    }

    /// Place the device tree above `end`, fill the boot ROM (jump to
    /// `image.entry`, next stage `next_addr`) and create the harts.
    fn finish(
        config: &BoardConfig,
        board: Board,
        image: LoadedImage,
        fdt_config: &crate::fdt::FdtConfig,
        end: u64,
        next_addr: u64,
    ) -> Result<Self, MachineError> {
        let fdt =
            crate::fdt::build_fdt(fdt_config).map_err(|e| MachineError::Fdt(e.to_string()))?;
        // Top of RAM, aligned down, like QEMU: out of the way of images
        // loaded at the bottom.
        let fdt_addr = (board.ram.end() - fdt.len() as u64) & !(FDT_ALIGN - 1);
        if fdt_addr < end || fdt_addr < board.ram.base().raw() {
            return Err(MachineError::Fdt(format!(
                "{} bytes of RAM leave no room for the device tree above the images (they end at {end:#x}); use a larger --mem",
                board.ram.size(),
            )));
        }
        let fdt_addr = GuestPhysAddr(fdt_addr);
        board
            .ram
            .write(fdt_addr, &fdt)
            .map_err(|e| MachineError::Fdt(e.to_string()))?;
        board.set_boot_rom(&crate::boot_rom::boot_rom(
            image.entry.raw(),
            fdt_addr.raw(),
            next_addr,
        ));

        let mut harts: Vec<Hart> = (0..config.harts)
            .map(|id| {
                let mut hart = Hart::new(HartId(id), GuestVirtAddr(BOOT_ROM_BASE));
                hart.set_translator(config.cpu == CpuEngine::Translator);
                hart
            })
            .collect();
        if let Some((first, rest)) = harts.split_first_mut() {
            for hart in rest {
                hart.share_translator_heat(first);
            }
        }
        Ok(Self {
            board,
            harts,
            image,
            fdt_addr,
        })
    }

    /// Build a machine from an image file.
    pub fn from_file(
        config: &BoardConfig,
        image: &Path,
        clock: Arc<dyn Clock>,
        console: SerialOutput,
    ) -> Result<Self, MachineError> {
        let bytes = std::fs::read(image).map_err(|source| LoaderError::Io {
            path: image.display().to_string(),
            source,
        })?;
        Self::new(config, &bytes, clock, console)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::RAM_BASE;
    use crate::clock::ManualClock;
    use crate::devices::uart::SharedOutput;

    fn fake_image(len: usize, image_size: u64) -> Vec<u8> {
        let mut image = vec![0u8; len];
        image[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        image[0x38..0x3c].copy_from_slice(b"RSC\x05");
        image
    }

    fn config(ram_size: u64) -> BoardConfig {
        BoardConfig {
            cpu: Default::default(),
            harts: 2,
            ram_size,
            disk: None,
            disk_readonly: false,
        }
    }

    #[test]
    fn linux_boot_layout_follows_qemu() {
        let boot = LinuxBoot {
            firmware: vec![0x13; 0x4_1000],
            kernel: fake_image(0x1000, 0x10_0000),
            kernel_name: "Image".into(),
            initrd: Some(vec![7; 0x1234]),
            bootargs: Some("console=ttyS0".into()),
        };
        let (machine, layout) = Machine::boot_linux(
            &config(64 << 20),
            &boot,
            Arc::new(ManualClock::new(0)),
            Box::new(SharedOutput::new()),
            None,
        )
        .unwrap();
        // Firmware at RAM, kernel at the next 2 MiB, initrd at kernel + RAM/2.
        assert_eq!(machine.image.entry, GuestPhysAddr(RAM_BASE));
        assert_eq!(layout.kernel, GuestPhysAddr(RAM_BASE + 0x20_0000));
        let initrd = layout.initrd.unwrap();
        assert_eq!(
            initrd,
            (
                RAM_BASE + 0x20_0000 + (32 << 20),
                RAM_BASE + 0x20_0000 + (32 << 20) + 0x1234
            )
        );
        // The boot ROM jumps to the firmware with fw_dynamic_info naming the kernel.
        let rom = |offset: u64| {
            machine
                .board
                .mmio_read(HartId(0), GuestPhysAddr(BOOT_ROM_BASE + offset), 8)
                .unwrap()
        };
        assert_eq!(rom(24), RAM_BASE);
        assert_eq!(rom(32), machine.fdt_addr.raw());
        assert_eq!(rom(40 + 16), layout.kernel.raw());
        // The device tree announces the command line and the initrd.
        let mut blob = vec![0u8; 0x4000];
        machine.board.ram.read(machine.fdt_addr, &mut blob).unwrap();
        let tree = fdt::Fdt::new(&blob).unwrap();
        assert_eq!(tree.chosen().bootargs(), Some("console=ttyS0"));
        let chosen = tree.find_node("/chosen").unwrap();
        let start = chosen
            .property("linux,initrd-start")
            .unwrap()
            .as_usize()
            .unwrap();
        assert_eq!(start as u64, initrd.0);
    }

    #[test]
    fn linux_boot_refuses_what_does_not_fit_or_is_no_kernel() {
        let boot = |kernel: Vec<u8>, ram: u64| {
            let boot = LinuxBoot {
                firmware: vec![0x13; 0x1000],
                kernel,
                kernel_name: "vmlinuz".into(),
                initrd: None,
                bootargs: None,
            };
            Machine::boot_linux(
                &config(ram),
                &boot,
                Arc::new(ManualClock::new(0)),
                Box::new(SharedOutput::new()),
                None,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        let err = boot(b"\x1f\x8b\x08 compressed".to_vec(), 16 << 20);
        assert!(
            err.contains("vmlinuz is not a RISC-V Linux kernel Image"),
            "{err}"
        );
        let err = boot(fake_image(0x1000, 32 << 20), 16 << 20);
        assert!(err.contains("the kernel") && err.contains("--mem"), "{err}");
    }
}
