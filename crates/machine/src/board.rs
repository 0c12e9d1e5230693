//! The board: QEMU `virt`'s address map, the devices on it, and the MMIO
//! dispatch that every hart's bus goes through.
//!
//! One `Board` per machine, shared by all hart threads (`&Board` is all a
//! hart needs). Nothing here is global.

use samsara_cpu::CpuEngine;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;

use samsara_cpu::bus::{AccessKind, MmioError, PageGrant};
use samsara_types::{GuestPhysAddr, HartId, PAGE_SHIFT, PAGE_SIZE};
use thiserror::Error;

use crate::clock::Clock;
use crate::devices::clint::{CLINT_SIZE, Clint};
use crate::devices::plic::{PLIC_SIZE, Plic};
use crate::devices::test_device::{ExitSignal, MachineExit, TEST_DEVICE_SIZE, TestDevice};
use crate::devices::uart::{SerialOutput, UART_IRQ, Uart};
use crate::devices::virtio::block::{BlkConfig, BlkError, CompletionSink, VirtioBlk};
use crate::devices::virtio::mmio::VirtioMmio;
use crate::devices::{DeviceError, DmaError, GuestMemory, InterruptSink, IrqLine, MmioDevice};
use crate::irq::IrqState;
use crate::loader::Htif;
use crate::ram::{GuestRam, RamError};

/// Boot ROM (reset vector, QEMU's `mrom`).
pub const BOOT_ROM_BASE: u64 = 0x1000;
/// Size of the boot ROM window.
pub const BOOT_ROM_SIZE: u64 = 0xf000;
/// SiFive test device (power off / fail / reset).
pub const TEST_DEVICE_BASE: u64 = 0x10_0000;
/// Core-local interruptor.
pub const CLINT_BASE: u64 = 0x200_0000;
/// Platform-level interrupt controller.
pub const PLIC_BASE: u64 = 0xc00_0000;
/// NS16550A UART.
pub const UART_BASE: u64 = 0x1000_0000;
/// Size of the UART window (QEMU maps 0x100).
pub const UART_SIZE: u64 = 0x100;
/// First virtio-mmio slot.
pub const VIRTIO_BASE: u64 = 0x1000_1000;
/// Distance between virtio-mmio slots.
pub const VIRTIO_STRIDE: u64 = 0x1000;
/// Number of virtio-mmio slots.
pub const VIRTIO_SLOTS: u32 = 8;
/// PLIC source of virtio slot 0 (slot i uses `VIRTIO_IRQ_BASE + i`).
pub const VIRTIO_IRQ_BASE: u32 = 1;
/// Start of RAM.
pub const RAM_BASE: u64 = 0x8000_0000;

/// Why a board cannot be built.
#[derive(Debug, Error)]
pub enum BoardError {
    /// Hart count outside 1..=8.
    #[error("{0} harts requested; samsara supports 1 to 8")]
    BadHartCount(u32),
    /// RAM could not be set up.
    #[error(transparent)]
    Ram(#[from] RamError),
    /// The disk device could not be created (its error names the image).
    #[error(transparent)]
    Disk(#[from] BlkError),
    /// The device tree could not be generated.
    #[error("cannot build the device tree: {0}")]
    Fdt(String),
}

/// What the board is made of.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// Number of harts (1..=8).
    pub harts: u32,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Disk image for the virtio block device, if any.
    pub disk: Option<PathBuf>,
    /// Open the disk image read-only.
    pub disk_readonly: bool,
    /// How the harts execute guest code.
    pub cpu: CpuEngine,
}

/// A region of the physical address map.
#[derive(Clone)]
struct Region {
    base: u64,
    size: u64,
    device: Arc<dyn MmioDevice>,
}

/// The devices' state at some moment ([`Board::snapshot_devices`]).
#[derive(Clone, Debug)]
pub struct DeviceSnapshot {
    uart: crate::devices::uart::UartSnapshot,
    plic: crate::devices::plic::PlicSnapshot,
    irq: crate::irq::IrqSnapshot,
}

/// The machine's devices and RAM. Cloning it gives another handle to the
/// same devices and RAM (every part is shared): each hart's bus holds one.
#[derive(Clone)]
pub struct Board {
    /// Guest RAM.
    pub ram: Arc<GuestRam>,
    /// Interrupt lines of every hart.
    pub irq: Arc<IrqState>,
    /// How (and whether) the guest ended the machine.
    pub exit: Arc<ExitSignal>,
    /// The console.
    pub uart: Arc<Uart>,
    /// The interrupt controller.
    pub plic: Arc<Plic>,
    /// The virtio disk, if one is attached.
    pub disk: Option<Arc<VirtioBlk>>,
    rom: Arc<Rom>,
    regions: Vec<Region>,
    /// Page of RAM holding the HTIF mailbox: accesses go through MMIO so
    /// that a store to `tohost` is seen.
    htif: Option<(u64, Arc<HtifMailbox>)>,
    harts: u32,
}

impl Board {
    /// Build the board with its devices. The UART writes to `console`.
    pub fn new(
        config: &BoardConfig,
        clock: Arc<dyn Clock>,
        console: SerialOutput,
    ) -> Result<Self, BoardError> {
        Self::with_completion_sink(config, clock, console, None)
    }

    /// Like [`Board::new`], with the disk's completions going to `sink`
    /// instead of being applied at once (the recorder sequences them).
    pub fn with_completion_sink(
        config: &BoardConfig,
        clock: Arc<dyn Clock>,
        console: SerialOutput,
        sink: Option<Arc<dyn CompletionSink>>,
    ) -> Result<Self, BoardError> {
        if !(1..=8).contains(&config.harts) {
            return Err(BoardError::BadHartCount(config.harts));
        }
        let ram = Arc::new(GuestRam::new(GuestPhysAddr(RAM_BASE), config.ram_size)?);
        let irq = Arc::new(IrqState::new(config.harts, clock));
        let exit = Arc::new(ExitSignal::new());
        let plic = Arc::new(Plic::new(irq.clone()));
        let plic_sink: Arc<dyn InterruptSink> = plic.clone();
        let uart = Arc::new(Uart::new(
            console,
            IrqLine::new(plic_sink.clone(), UART_IRQ),
        ));
        let clint = Arc::new(Clint::new(irq.clone()));
        let test = Arc::new(TestDevice::new(exit.clone()));
        let rom = Arc::new(Rom::new());

        let mut regions = vec![
            Region {
                base: BOOT_ROM_BASE,
                size: BOOT_ROM_SIZE,
                device: rom.clone(),
            },
            Region {
                base: TEST_DEVICE_BASE,
                size: TEST_DEVICE_SIZE,
                device: test,
            },
            Region {
                base: CLINT_BASE,
                size: CLINT_SIZE,
                device: clint,
            },
            Region {
                base: PLIC_BASE,
                size: PLIC_SIZE,
                device: plic.clone(),
            },
            Region {
                base: UART_BASE,
                size: UART_SIZE,
                device: uart.clone(),
            },
        ];
        let (slots, disk) = virtio_devices(config, &ram, &plic_sink, sink)?;
        for slot in slots.into_iter().enumerate() {
            regions.push(Region {
                base: VIRTIO_BASE + VIRTIO_STRIDE * slot.0 as u64,
                size: VIRTIO_STRIDE,
                device: slot.1,
            });
        }
        Ok(Self {
            ram,
            irq,
            exit,
            uart,
            plic,
            disk,
            rom,
            regions,
            htif: None,
            harts: config.harts,
        })
    }

    /// Number of harts.
    pub fn harts(&self) -> u32 {
        self.harts
    }

    /// Reads the boot ROM at physical `addr` (no side effects); the number
    /// of bytes read, 0 outside it.
    pub fn read_rom(&self, addr: u64, buf: &mut [u8]) -> usize {
        let Some(offset) = addr
            .checked_sub(BOOT_ROM_BASE)
            .filter(|&o| o < BOOT_ROM_SIZE)
        else {
            return 0;
        };
        let n = buf.len().min((BOOT_ROM_SIZE - offset) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = offset as usize + i;
            let word = self.rom.words[at / 8].load(std::sync::atomic::Ordering::Relaxed);
            *b = word.to_le_bytes()[at % 8];
        }
        n
    }

    /// Install the boot ROM's contents.
    pub fn set_boot_rom(&self, bytes: &[u8]) {
        self.rom.fill(bytes);
    }

    /// Honour the HTIF `tohost`/`fromhost` mailbox of a riscv-tests-style ELF.
    pub fn enable_htif(&mut self, htif: Htif) {
        let mailbox = Arc::new(HtifMailbox {
            htif,
            ram: self.ram.clone(),
            exit: self.exit.clone(),
        });
        self.htif = Some((htif.tohost.page(), mailbox));
    }

    /// The RAM page routed to the HTIF mailbox (MMIO), if any.
    pub fn htif_page(&self) -> Option<u64> {
        self.htif.as_ref().map(|(page, _)| *page)
    }

    /// Direct host mapping of a guest page, as the run mode's bus hands out:
    /// RAM (except the HTIF page) for any access, the boot ROM for reads and
    /// fetches. `None` sends the access to MMIO.
    #[inline]
    pub fn direct_page(&self, page: u64, kind: AccessKind) -> Option<PageGrant> {
        if let Some((htif_page, _)) = &self.htif
            && *htif_page == page
        {
            return None;
        }
        let host = match self.ram.host_page(page) {
            Some(host) => host,
            None if kind != AccessKind::Write => self.rom.host_page(page)?,
            None => return None,
        };
        // SAFETY: `host` is byte 0 of a whole 4 KiB page of guest RAM (a
        // page-aligned offset into the `GuestRam` mapping) or of the boot
        // ROM (an 8-aligned `AtomicU64` array, a whole number of pages, only
        // granted for reads and fetches). Both are allocated once for the
        // board's lifetime, never moved, resized or unmapped while it lives,
        // and every other access to them is atomic. Keeping the grant alive
        // no longer than the board is the duty of whoever drives harts with
        // it (see `Bus`): `Machine` drops its harts with its board; the
        // engine flushes harts before recycling anything it granted.
        Some(unsafe { PageGrant::new(host) })
    }

    fn region(&self, addr: u64) -> Option<(&Region, u64)> {
        self.regions
            .iter()
            .find(|r| addr >= r.base && addr - r.base < r.size)
            .map(|r| (r, addr - r.base))
    }

    /// The state of the devices a replay drives (UART, PLIC, CLINT's
    /// lines and timers): a checkpoint keeps it beside RAM and harts. The
    /// disk is not in it: a standby's disk follows the log forward only.
    pub fn snapshot_devices(&self) -> DeviceSnapshot {
        DeviceSnapshot {
            uart: self.uart.snapshot(),
            plic: self.plic.snapshot(),
            irq: self.irq.snapshot(),
        }
    }

    /// Back to `snapshot`.
    pub fn restore_devices(&self, snapshot: &DeviceSnapshot) {
        self.uart.restore(&snapshot.uart);
        self.plic.restore(&snapshot.plic);
        self.irq.restore(&snapshot.irq);
    }

    /// A device load by `hart`.
    pub fn mmio_read(&self, hart: HartId, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError> {
        if let Some((page, mailbox)) = &self.htif
            && addr.page() == *page
        {
            return mailbox.read(addr, size).map_err(|_| MmioError::AccessFault);
        }
        let (region, offset) = self.region(addr.raw()).ok_or(MmioError::AccessFault)?;
        region
            .device
            .read(hart, offset, size)
            .map_err(|_| MmioError::AccessFault)
    }

    /// Replay with live devices: the device load the recording says
    /// returned `recorded` (see [`MmioDevice::replay_read`]). `Ok(Some(answer))`:
    /// the device, in its own state, answers otherwise.
    pub fn mmio_replay_read(
        &self,
        hart: HartId,
        addr: GuestPhysAddr,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, MmioError> {
        if let Some((page, mailbox)) = &self.htif
            && addr.page() == *page
        {
            let answer = mailbox
                .read(addr, size)
                .map_err(|_| MmioError::AccessFault)?;
            return Ok((answer != recorded).then_some(answer));
        }
        let (region, offset) = self.region(addr.raw()).ok_or(MmioError::AccessFault)?;
        region
            .device
            .replay_read(hart, offset, size, recorded)
            .map_err(|_| MmioError::AccessFault)
    }

    /// A device store by `hart`.
    pub fn mmio_write(
        &self,
        hart: HartId,
        addr: GuestPhysAddr,
        size: u8,
        value: u64,
    ) -> Result<(), MmioError> {
        if let Some((page, mailbox)) = &self.htif
            && addr.page() == *page
        {
            return mailbox
                .write(addr, size, value)
                .map_err(|_| MmioError::AccessFault);
        }
        let (region, offset) = self.region(addr.raw()).ok_or(MmioError::AccessFault)?;
        region
            .device
            .write(hart, offset, size, value)
            .map_err(|_| MmioError::AccessFault)
    }
}

/// Slot of the disk: QEMU fills virtio-mmio slots from the top, so its
/// first device sits in the last slot; we do the same so guests see the
/// same device tree on both.
const DISK_SLOT: u32 = VIRTIO_SLOTS - 1;

/// The devices in the eight virtio-mmio slots (empty slots answer the probe
/// with device id 0, as QEMU's do).
type VirtioSlots = (Vec<Arc<dyn MmioDevice>>, Option<Arc<VirtioBlk>>);

fn virtio_devices(
    config: &BoardConfig,
    ram: &Arc<GuestRam>,
    plic: &Arc<dyn InterruptSink>,
    sink: Option<Arc<dyn CompletionSink>>,
) -> Result<VirtioSlots, BoardError> {
    let mut slots: Vec<Arc<dyn MmioDevice>> = Vec::new();
    let mut disk_device = None;
    for slot in 0..VIRTIO_SLOTS {
        let device: Arc<dyn MmioDevice> = match &config.disk {
            Some(path) if slot == DISK_SLOT => {
                let mut blk = BlkConfig::new(path.clone());
                blk.read_only = config.disk_readonly;
                let mem: Arc<dyn GuestMemory> = ram.clone();
                let disk = match &sink {
                    Some(sink) => VirtioBlk::with_sink(&blk, mem, sink.clone()),
                    None => VirtioBlk::new(&blk, mem),
                }?;
                disk_device = Some(disk.clone());
                let line = IrqLine::new(plic.clone(), VIRTIO_IRQ_BASE + slot);
                Arc::new(VirtioMmio::new(disk, line))
            }
            _ => Arc::new(VirtioMmio::empty()),
        };
        slots.push(device);
    }
    Ok((slots, disk_device))
}

impl GuestMemory for GuestRam {
    fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        GuestRam::read(self, addr, buf).map_err(|_| DmaError::OutOfRange {
            addr,
            len: buf.len() as u64,
        })
    }

    fn write(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), DmaError> {
        GuestRam::write(self, addr, data).map_err(|_| DmaError::OutOfRange {
            addr,
            len: data.len() as u64,
        })
    }
}

/// The boot ROM: read-only, executable. Backed by `u64`s so that every
/// page is 8-byte aligned on the host (harts access it with atomics).
struct Rom {
    words: Box<[std::sync::atomic::AtomicU64]>,
}

impl Rom {
    fn new() -> Self {
        let words = (0..BOOT_ROM_SIZE / 8)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        Self { words }
    }

    fn fill(&self, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(8).take(self.words.len()).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.words[i].store(u64::from_le_bytes(w), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn host_page(&self, page: u64) -> Option<NonNull<u8>> {
        let addr = page << PAGE_SHIFT;
        if addr < BOOT_ROM_BASE || addr - BOOT_ROM_BASE >= BOOT_ROM_SIZE {
            return None;
        }
        let word = ((addr - BOOT_ROM_BASE) / 8) as usize;
        // From the slice's pointer, not the word's: the hart reads the
        // whole page through it.
        NonNull::new(self.words[word..].as_ptr().cast::<u8>().cast_mut())
    }
}

impl MmioDevice for Rom {
    fn read(&self, _hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        let bad = DeviceError::BadAccess { offset, size };
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(u64::from(size)) {
            return Err(bad);
        }
        let word = self.words.get((offset / 8) as usize).ok_or(bad)?;
        let value = word.load(std::sync::atomic::Ordering::Relaxed) >> ((offset % 8) * 8);
        Ok(match size {
            8 => value,
            s => value & ((1u64 << (u32::from(s) * 8)) - 1),
        })
    }

    fn write(&self, _hart: HartId, offset: u64, size: u8, _value: u64) -> Result<(), DeviceError> {
        Err(DeviceError::BadAccess { offset, size })
    }
}

/// The HTIF mailbox of riscv-tests: a store to `tohost` of `code << 1 | 1`
/// ends the run (code 0 = pass); an even non-zero value points at a
/// syscall block (only `write` is honoured, as the tests' `printf` needs).
struct HtifMailbox {
    htif: Htif,
    ram: Arc<GuestRam>,
    exit: Arc<ExitSignal>,
}

const HTIF_SYS_WRITE: u64 = 64;

impl HtifMailbox {
    fn read(&self, addr: GuestPhysAddr, size: u8) -> Result<u64, RamError> {
        let mut buf = [0u8; 8];
        self.ram.read(addr, &mut buf[..usize::from(size)])?;
        Ok(u64::from_le_bytes(buf))
    }

    fn write(&self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), RamError> {
        self.ram
            .write(addr, &value.to_le_bytes()[..usize::from(size)])?;
        let tohost = self.htif.tohost;
        if addr.raw() + u64::from(size) > tohost.raw() && addr.raw() < tohost.raw() + 8 {
            let command = self.read(tohost, 8)?;
            if command & 1 == 1 {
                let code = command >> 1;
                self.exit.set(if code == 0 {
                    MachineExit::Poweroff
                } else {
                    MachineExit::Fail(u16::try_from(code).unwrap_or(u16::MAX))
                });
            } else if command != 0 {
                self.syscall(GuestPhysAddr(command))?;
                self.ram.write(tohost, &[0; 8])?;
                if let Some(fromhost) = self.htif.fromhost {
                    self.ram.write(fromhost, &1u64.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    fn syscall(&self, block: GuestPhysAddr) -> Result<(), RamError> {
        let mut words = [0u8; 32];
        self.ram.read(block, &mut words)?;
        let word =
            |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let result = if word(0) == HTIF_SYS_WRITE {
            let len = word(3).min(PAGE_SIZE * 16);
            let mut text = vec![0u8; len as usize];
            self.ram.read(GuestPhysAddr(word(2)), &mut text)?;
            use std::io::Write;
            let _ = std::io::stdout().write_all(&text);
            len
        } else {
            u64::MAX // -1: unsupported call
        };
        self.ram.write(block, &result.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Checkpoints take the devices a replay drives: the UART's registers
    /// and queue, the PLIC's configuration and claims, each hart's timer
    /// and levels; restoring puts back the interrupt lines too.
    #[test]
    fn device_state_snapshots_and_restores() {
        let config = BoardConfig {
            cpu: Default::default(),
            harts: 2,
            ram_size: 1 << 20,
            disk: None,
            disk_readonly: false,
        };
        let board = Board::new(
            &config,
            Arc::new(ManualClock::new(0)),
            Box::new(std::io::sink()),
        )
        .expect("a board");
        let h1 = HartId(1);
        let w = |addr: u64, size: u8, value: u64| {
            board
                .mmio_write(h1, GuestPhysAddr(addr), size, value)
                .expect("a device write")
        };
        let r = |addr: u64, size: u8| board.mmio_read(h1, GuestPhysAddr(addr), size).unwrap();
        let (msip1, mtimecmp1) = (CLINT_BASE + 4, CLINT_BASE + 0x4008);
        let (prio10, enable_ctx2) = (PLIC_BASE + 40, PLIC_BASE + 0x2000 + 2 * 0x80);
        w(mtimecmp1, 8, 1000);
        w(prio10, 4, 3);
        let before = board.snapshot_devices();
        let lines_before = board.irq.lines(h1);
        w(msip1, 4, 1);
        w(mtimecmp1, 8, 5);
        w(prio10, 4, 1);
        w(enable_ctx2, 4, 1 << 10);
        w(UART_BASE + 7, 1, 0x5a);
        board.uart.push_input(b"x");
        assert_ne!(board.irq.lines(h1), lines_before);
        board.restore_devices(&before);
        assert_eq!(board.irq.lines(h1), lines_before);
        assert_eq!(r(mtimecmp1, 8), 1000);
        assert_eq!(r(prio10, 4), 3);
        assert_eq!(r(enable_ctx2, 4), 0);
        assert_eq!(r(UART_BASE + 7, 1), 0);
        assert_eq!(board.uart.pending_input(), 0);
    }

    #[test]
    fn a_missing_disk_image_is_named_once_with_its_cause() {
        let config = BoardConfig {
            cpu: Default::default(),
            harts: 1,
            ram_size: 1 << 20,
            disk: Some(PathBuf::from("/nonexistent/disk.img")),
            disk_readonly: false,
        };
        let Err(e) = Board::new(
            &config,
            Arc::new(ManualClock::new(0)),
            Box::new(std::io::sink()),
        ) else {
            panic!("a board with a missing disk image was built");
        };
        assert_eq!(
            e.to_string(),
            "cannot open disk image /nonexistent/disk.img"
        );
        let source = std::error::Error::source(&e).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
