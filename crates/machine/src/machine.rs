//! A machine ready to start: the board with the image, device tree and boot
//! ROM in place, and one hart per CPU at the reset vector.
//!
//! Every execution mode (run, record, replay) starts from this same state,
//! so a recording's initial state is exactly what `run` would have used.

use std::path::Path;
use std::sync::Arc;

use samsara_cpu::Hart;
use samsara_types::{GuestPhysAddr, HartId};
use thiserror::Error;

use crate::board::{BOOT_ROM_BASE, Board, BoardConfig, BoardError};
use crate::clock::Clock;
use crate::devices::uart::SerialOutput;
use crate::devices::virtio::block::CompletionSink;
use crate::loader::{LoadedImage, LoaderError, load_bytes};

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

        let fdt =
            crate::fdt::build_fdt(&crate::fdt::FdtConfig::new(config.harts, board.ram.size()))
                .map_err(|e| MachineError::Fdt(e.to_string()))?;
        // Top of RAM, aligned down, like QEMU: out of the way of images
        // loaded at the bottom.
        let fdt_addr = (board.ram.end() - fdt.len() as u64) & !(FDT_ALIGN - 1);
        if fdt_addr < loaded.end || fdt_addr < board.ram.base().raw() {
            return Err(MachineError::Fdt(format!(
                "{} bytes of RAM leave no room for the device tree above the image (image ends at {:#x})",
                board.ram.size(),
                loaded.end
            )));
        }
        let fdt_addr = GuestPhysAddr(fdt_addr);
        board
            .ram
            .write(fdt_addr, &fdt)
            .map_err(|e| MachineError::Fdt(e.to_string()))?;
        board.set_boot_rom(&crate::boot_rom::boot_rom(
            loaded.entry.raw(),
            fdt_addr.raw(),
            loaded.entry.raw(),
        ));

        let harts = (0..config.harts)
            .map(|id| Hart::new(HartId(id), BOOT_ROM_BASE))
            .collect();
        Ok(Self {
            board,
            harts,
            image: loaded,
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
