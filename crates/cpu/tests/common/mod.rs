//! A flat-RAM test bus and a tiny assembler shared by the integration tests.

#![allow(dead_code)]

pub mod asm;

use std::ptr::NonNull;

use samsara_cpu::bus::{AccessKind, Bus, MmioError, PageGrant};
use samsara_cpu::{Hart, StopReason};
use samsara_types::{GuestPhysAddr, HartId};

/// Where RAM starts.
pub const RAM_BASE: u64 = 0x8000_0000;
/// A scratch MMIO device: reads return `mmio_value`, writes are logged.
pub const MMIO_BASE: u64 = 0x1000_0000;

/// RAM at `RAM_BASE` plus one MMIO page at `MMIO_BASE`.
pub struct TestBus {
    ram: Vec<u64>,
    ptr: *mut u8,
    pub size: u64,
    /// Interrupt lines reported to the hart.
    pub lines: u64,
    /// Value of the `time` CSR.
    pub time: u64,
    /// Value returned by MMIO reads.
    pub mmio_value: u64,
    /// MMIO writes seen: (address, size, value).
    pub mmio_writes: Vec<(u64, u8, u64)>,
    /// MMIO reads seen: (address, size).
    pub mmio_reads: Vec<(u64, u8)>,
    /// When set, every MMIO access is deferred.
    pub defer: bool,
    /// Every `ram_page` call: (page, kind).
    pub grants: Vec<(u64, AccessKind)>,
    /// Guest-physical pages treated as MMIO even though they are in RAM
    /// (used for `tohost`): accesses reach `mmio_read`/`mmio_write`, which
    /// read and write the RAM behind them.
    pub mmio_pages: Vec<u64>,
    /// The riscv-tests host-target interface, when running those tests.
    pub htif: Option<Htif>,
    /// Exit code written to `tohost` (0 = pass).
    pub exit_code: Option<u64>,
    /// Characters printed through HTIF.
    pub console: Vec<u8>,
}

/// Addresses of the HTIF mailboxes.
#[derive(Clone, Copy, Debug)]
pub struct Htif {
    pub tohost: u64,
    pub fromhost: Option<u64>,
}

impl TestBus {
    pub fn new(size: u64) -> TestBus {
        let mut ram = vec![0u64; (size / 8) as usize];
        let ptr = ram.as_mut_ptr().cast::<u8>();
        TestBus {
            ram,
            ptr,
            size,
            lines: 0,
            time: 0,
            mmio_value: 0,
            mmio_writes: Vec::new(),
            mmio_reads: Vec::new(),
            defer: false,
            grants: Vec::new(),
            mmio_pages: Vec::new(),
            htif: None,
            exit_code: None,
            console: Vec::new(),
        }
    }

    fn offset(&self, addr: u64, len: u64) -> usize {
        assert!(
            addr >= RAM_BASE && addr + len <= RAM_BASE + self.size,
            "{addr:#x} outside RAM"
        );
        (addr - RAM_BASE) as usize
    }

    pub fn write_bytes(&mut self, addr: u64, bytes: &[u8]) {
        let off = self.offset(addr, bytes.len() as u64);
        // SAFETY: in bounds (checked); the hart is not running.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(off), bytes.len()) };
    }

    pub fn read_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let off = self.offset(addr, len as u64);
        let mut v = vec![0u8; len];
        // SAFETY: in bounds (checked); the hart is not running.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), v.as_mut_ptr(), len) };
        v
    }

    pub fn write_u32(&mut self, addr: u64, v: u32) {
        self.write_bytes(addr, &v.to_le_bytes());
    }

    pub fn write_u64(&mut self, addr: u64, v: u64) {
        self.write_bytes(addr, &v.to_le_bytes());
    }

    pub fn read_u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.read_bytes(addr, 4).try_into().unwrap())
    }

    pub fn read_u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.read_bytes(addr, 8).try_into().unwrap())
    }

    /// Writes instruction words (4-byte each) starting at `addr`.
    pub fn load_words(&mut self, addr: u64, words: &[u32]) {
        for (k, w) in words.iter().enumerate() {
            self.write_u32(addr + 4 * k as u64, *w);
        }
    }

    /// Writes 16-bit parcels starting at `addr`.
    pub fn load_halves(&mut self, addr: u64, halves: &[u16]) {
        for (k, h) in halves.iter().enumerate() {
            self.write_bytes(addr + 2 * k as u64, &h.to_le_bytes());
        }
    }
}

impl TestBus {
    /// Reacts to a store into the HTIF mailbox page.
    fn htif_write(&mut self, addr: u64) {
        let Some(htif) = self.htif else { return };
        if addr & !7 != htif.tohost {
            return;
        }
        let value = self.read_u64(htif.tohost);
        if value == 0 {
            return;
        }
        if value & 1 == 1 {
            self.exit_code = Some(value >> 1);
            return;
        }
        if value >> 48 == 0x0101 {
            // Device 1 (console), command 1 (putchar).
            self.console.push(value as u8);
        } else if let Some(block) =
            Some(value).filter(|&p| p >= RAM_BASE && p + 32 <= RAM_BASE + self.size)
        {
            // A magic_mem syscall block: [which, arg0, arg1, arg2].
            let which = self.read_u64(block);
            if which == 64 {
                let (buf, len) = (self.read_u64(block + 16), self.read_u64(block + 24));
                if buf >= RAM_BASE && buf + len <= RAM_BASE + self.size {
                    let text = self.read_bytes(buf, len as usize);
                    self.console.extend_from_slice(&text);
                }
            } else if which == 93 {
                self.exit_code = Some(self.read_u64(block + 8));
            }
            self.write_u64(block, 0);
        }
        self.write_u64(htif.tohost, 0);
        if let Some(fromhost) = htif.fromhost {
            self.write_u64(fromhost, 1);
        }
    }
}

impl Bus for TestBus {
    fn ram_page(&mut self, page: u64, kind: AccessKind) -> Option<PageGrant> {
        self.grants.push((page, kind));
        let addr = page << 12;
        if addr < RAM_BASE || addr >= RAM_BASE + self.size || self.mmio_pages.contains(&page) {
            return None;
        }
        let off = (addr - RAM_BASE) as usize;
        // SAFETY: in bounds of the RAM allocation.
        let host = unsafe { self.ptr.add(off) };
        Some(PageGrant {
            host: NonNull::new(host).unwrap(),
            remapped: false,
        })
    }

    fn mmio_read(&mut self, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError> {
        if self.defer {
            return Err(MmioError::Deferred);
        }
        if self.mmio_pages.contains(&(addr.0 >> 12)) {
            let mut bytes = [0u8; 8];
            bytes[..usize::from(size)].copy_from_slice(&self.read_bytes(addr.0, usize::from(size)));
            return Ok(u64::from_le_bytes(bytes));
        }
        if addr.0 >> 12 != MMIO_BASE >> 12 {
            return Err(MmioError::AccessFault);
        }
        self.mmio_reads.push((addr.0, size));
        Ok(self.mmio_value)
    }

    fn mmio_write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), MmioError> {
        if self.defer {
            return Err(MmioError::Deferred);
        }
        if self.mmio_pages.contains(&(addr.0 >> 12)) {
            let bytes = value.to_le_bytes();
            self.write_bytes(addr.0, &bytes[..usize::from(size)]);
            self.htif_write(addr.0);
            return Ok(());
        }
        if addr.0 >> 12 != MMIO_BASE >> 12 {
            return Err(MmioError::AccessFault);
        }
        self.mmio_writes.push((addr.0, size, value));
        Ok(())
    }

    fn read_time(&mut self) -> u64 {
        self.time
    }

    fn interrupt_lines(&mut self) -> u64 {
        self.lines
    }

    fn hart_id(&self) -> HartId {
        HartId(0)
    }
}

/// A hart at `RAM_BASE` and a 1 MiB bus holding `program` there.
pub fn setup(program: &[u32]) -> (Hart, TestBus) {
    let mut bus = TestBus::new(1 << 20);
    bus.load_words(RAM_BASE, program);
    (Hart::new(HartId(0), RAM_BASE), bus)
}

/// Runs `steps` steps and asserts the budget was what stopped it.
pub fn run_steps(hart: &mut Hart, bus: &mut TestBus, steps: u64) {
    assert_eq!(hart.run(bus, steps), StopReason::StepLimit);
}
