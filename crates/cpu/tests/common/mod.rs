//! A flat-RAM test bus and a tiny assembler shared by the integration tests.

#![allow(dead_code)]

pub mod asm;
pub mod prog;

use std::ptr::NonNull;

use samsara_cpu::bus::{AccessKind, Bus, MmioError, PageGrant};
use samsara_cpu::{Hart, StopReason};
use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr, HartId};

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
    /// RAM pages refused for now (as CREW recording does), with whether
    /// only writes are refused; `refused` says the last `ram_page` was.
    pub refuse: Vec<(u64, bool)>,
    pub refused: bool,
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
    /// Watched virtual ranges: (address, length, kind matched).
    pub watches: Vec<(u64, u64, AccessKind)>,
    /// Accesses `check_access` reported as hits: (vaddr, paddr, len, kind).
    pub hits: Vec<(u64, u64, u64, AccessKind)>,
    /// Every access shown to `check_access`: (vaddr, len, kind).
    pub checked: Vec<(u64, u64, AccessKind)>,
    /// `check_access` reports nothing (the re-execution after a hit).
    pub watch_off: bool,
    /// Breakpoints (virtual pcs), and the one to pass once.
    pub breakpoints: Vec<u64>,
    pub pass_breakpoint: Option<u64>,
    /// Every pc asked about by `breakpoint`.
    pub breakpoint_checks: Vec<u64>,
    /// A page moves to a private copy on its first grant for writing, as
    /// in a recorder's chunk (`PageGrant::moved`); later grants give the
    /// copy. The bus's RAM keeps the old contents.
    pub copy_on_write: bool,
    copies: Vec<(u64, Box<[u64; 512]>)>,
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
            refuse: Vec::new(),
            refused: false,
            mmio_pages: Vec::new(),
            htif: None,
            exit_code: None,
            console: Vec::new(),
            watches: Vec::new(),
            hits: Vec::new(),
            checked: Vec::new(),
            watch_off: false,
            breakpoints: Vec::new(),
            pass_breakpoint: None,
            breakpoint_checks: Vec::new(),
            copy_on_write: false,
            copies: Vec::new(),
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

// SAFETY: grants point into the bus's RAM allocation (8-aligned, whole
// pages, never resized, freed only when the bus is dropped, after the
// tests' harts are done with it); one thread.
unsafe impl Bus for TestBus {
    fn ram_page(&mut self, page: GuestPhysPage, kind: AccessKind) -> Option<PageGrant> {
        let page = page.raw();
        self.grants.push((page, kind));
        self.refused = self
            .refuse
            .iter()
            .any(|&(p, writes_only)| p == page && (!writes_only || kind == AccessKind::Write));
        if self.refused {
            return None;
        }
        let addr = page << 12;
        if addr < RAM_BASE || addr >= RAM_BASE + self.size || self.mmio_pages.contains(&page) {
            return None;
        }
        let off = (addr - RAM_BASE) as usize;
        // SAFETY: in bounds of the RAM allocation.
        let host = NonNull::new(unsafe { self.ptr.add(off) }).unwrap();
        if self.copy_on_write {
            if let Some((_, copy)) = self.copies.iter_mut().find(|(p, _)| *p == page) {
                // SAFETY: a boxed page of the bus's, freed only with it.
                return Some(unsafe { PageGrant::new(NonNull::from(&mut **copy).cast()) });
            }
            if kind == AccessKind::Write {
                let mut copy = Box::new([0u64; 512]);
                // SAFETY: `host` is a whole page of RAM; one thread.
                unsafe {
                    std::ptr::copy_nonoverlapping(host.as_ptr().cast(), copy.as_mut_ptr(), 512)
                };
                let at = NonNull::from(&mut *copy).cast();
                self.copies.push((page, copy));
                // SAFETY: as above.
                return Some(unsafe { PageGrant::moved(at, host) });
            }
        }
        // SAFETY: a page-aligned offset into the RAM allocation (see the impl).
        Some(unsafe { PageGrant::new(host) })
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

    fn ram_refused(&mut self) -> bool {
        self.refused
    }

    fn interrupt_lines(&mut self) -> u64 {
        self.lines
    }

    fn hart_id(&self) -> HartId {
        HartId(0)
    }

    fn watching(&self) -> bool {
        !self.watches.is_empty()
    }

    fn breakpoint(&mut self, pc: GuestVirtAddr) -> samsara_cpu::bus::FetchBreakpoint {
        use samsara_cpu::bus::FetchBreakpoint;
        self.breakpoint_checks.push(pc.raw());
        if !self.breakpoints.contains(&pc.raw()) {
            FetchBreakpoint::None
        } else if self.pass_breakpoint == Some(pc.raw()) {
            FetchBreakpoint::Pass
        } else {
            FetchBreakpoint::Stop
        }
    }

    fn watched_page(&self, vaddr: GuestVirtAddr, _paddr: GuestPhysAddr, _kind: AccessKind) -> bool {
        let page = vaddr.raw() >> 12;
        self.watches
            .iter()
            .any(|&(a, len, _)| a >> 12 <= page && page <= (a + len - 1) >> 12)
    }

    fn check_access(&mut self, access: &samsara_cpu::bus::DataAccess) -> bool {
        let (v, len, kind) = (access.vaddr.raw(), access.len, access.kind);
        self.checked.push((v, len, kind));
        if self.watch_off {
            return false;
        }
        let hit = self
            .watches
            .iter()
            .any(|&(a, l, k)| k == kind && a < v + len && v < a + l);
        if hit {
            self.hits.push((v, access.paddr.0, len, kind));
        }
        hit
    }
}

/// A hart at `RAM_BASE` and a 1 MiB bus holding `program` there.
pub fn setup(program: &[u32]) -> (Hart, TestBus) {
    let mut bus = TestBus::new(1 << 20);
    bus.load_words(RAM_BASE, program);
    (Hart::new(HartId(0), GuestVirtAddr(RAM_BASE)), bus)
}

/// Runs `steps` steps and asserts the budget was what stopped it.
pub fn run_steps(hart: &mut Hart, bus: &mut TestBus, steps: u64) {
    assert_eq!(hart.run(bus, steps), StopReason::StepLimit);
}

/// RAM size used by [`Vm`].
pub const VM_RAM: u64 = 4 << 20;

/// A hart plus a [`TestBus`] running a program assembled with [`asm::Asm`].
pub struct Vm {
    pub hart: Hart,
    pub bus: TestBus,
}

impl Vm {
    /// Loads `a` (at its base) into a fresh `VM_RAM` bus; the hart starts
    /// in M-mode at `a.base`.
    pub fn new(a: &asm::Asm) -> Vm {
        Vm::with_ram(a, VM_RAM)
    }

    /// As [`Vm::new`] with `ram` bytes of RAM.
    pub fn with_ram(a: &asm::Asm, ram: u64) -> Vm {
        let mut bus = TestBus::new(ram);
        bus.write_bytes(a.base, &a.finish());
        Vm {
            hart: Hart::new(HartId(0), GuestVirtAddr(a.base)),
            bus,
        }
    }

    /// Edits the architectural state (through snapshot/restore).
    pub fn edit(&mut self, f: impl FnOnce(&mut samsara_cpu::HartState)) {
        let mut s = self.hart.snapshot();
        f(&mut s);
        self.hart.restore(&s);
    }

    /// Runs one step at a time until pc reaches `pc`; panics after
    /// `limit` steps. Returns the steps taken.
    pub fn run_to(&mut self, pc: u64, limit: u64) -> u64 {
        let start = self.hart.steps().0;
        while self.hart.pc().raw() != pc {
            let taken = self.hart.steps().0 - start;
            if taken >= limit {
                let c = &self.hart.state().csr;
                panic!(
                    "pc {pc:#x} not reached after {taken} steps: pc={:#x} priv={:?} \
                     mcause={:#x} mepc={:#x} mtval={:#x} scause={:#x} sepc={:#x} stval={:#x}",
                    self.hart.pc().raw(),
                    self.hart.privilege(),
                    c.mcause,
                    c.mepc,
                    c.mtval,
                    c.scause,
                    c.sepc,
                    c.stval
                );
            }
            self.hart.run(&mut self.bus, 1);
        }
        self.hart.steps().0 - start
    }

    /// Runs one step at a time until pc is one of `pcs`; returns its index.
    pub fn run_to_any(&mut self, pcs: &[u64], limit: u64) -> usize {
        for _ in 0..limit {
            if let Some(k) = pcs.iter().position(|&p| p == self.hart.pc().raw()) {
                return k;
            }
            self.hart.run(&mut self.bus, 1);
        }
        if let Some(k) = pcs.iter().position(|&p| p == self.hart.pc().raw()) {
            return k;
        }
        let c = &self.hart.state().csr;
        panic!(
            "none of {pcs:x?} reached: pc={:#x} mcause={:#x} mepc={:#x}",
            self.hart.pc().raw(),
            c.mcause,
            c.mepc
        );
    }

    /// Integer register.
    pub fn x(&self, r: u32) -> u64 {
        self.hart.xreg(r as usize)
    }

    /// FP register (raw bits).
    pub fn f(&self, r: u32) -> u64 {
        self.hart.freg(r as usize)
    }

    /// The CSR file.
    pub fn csr(&self) -> &samsara_cpu::CsrFile {
        &self.hart.state().csr
    }
}

/// PMP entry 0 granting RWX on all of memory to S and U.
pub fn pmp_allow_all(s: &mut samsara_cpu::HartState) {
    s.csr.pmpaddr[0] = u64::MAX >> 10;
    s.csr.pmpcfg[0] = 0x1f;
}

/// PTE bits.
pub mod pte {
    pub const V: u64 = 1 << 0;
    pub const R: u64 = 1 << 1;
    pub const W: u64 = 1 << 2;
    pub const X: u64 = 1 << 3;
    pub const U: u64 = 1 << 4;
    pub const G: u64 = 1 << 5;
    pub const A: u64 = 1 << 6;
    pub const D: u64 = 1 << 7;
}

/// A page-table builder writing straight into a [`TestBus`].
pub struct PageTable {
    /// Physical address of the root table.
    pub root: u64,
    /// 3 (Sv39) or 4 (Sv48).
    pub levels: u32,
    next: u64,
}

impl PageTable {
    /// An empty table whose root (and further tables) are allocated from
    /// `area` upwards (must be page-aligned, zeroed RAM).
    pub fn new(levels: u32, area: u64) -> PageTable {
        PageTable {
            root: area,
            levels,
            next: area + 4096,
        }
    }

    /// The satp value selecting this table (ASID 0).
    pub fn satp(&self) -> u64 {
        let mode = if self.levels == 3 { 8u64 } else { 9 };
        (mode << 60) | (self.root >> 12)
    }

    /// Address of the PTE mapping `va` at `level` (0 = 4 KiB page,
    /// 1 = 2 MiB, 2 = 1 GiB, 3 = 512 GiB), creating intermediate tables.
    pub fn pte_addr(&mut self, bus: &mut TestBus, va: u64, level: u32) -> u64 {
        let mut table = self.root;
        let mut l = self.levels - 1;
        loop {
            let index = (va >> (12 + 9 * l)) & 0x1ff;
            let addr = table + index * 8;
            if l == level {
                return addr;
            }
            let pte = bus.read_u64(addr);
            if pte & pte::V == 0 {
                let t = self.next;
                self.next += 4096;
                bus.write_u64(addr, ((t >> 12) << 10) | pte::V);
                table = t;
            } else {
                table = (pte >> 10) << 12;
            }
            l -= 1;
        }
    }

    /// Maps `va` to `pa` at `level` with PTE `flags`; returns the PTE address.
    pub fn map(&mut self, bus: &mut TestBus, va: u64, pa: u64, level: u32, flags: u64) -> u64 {
        let addr = self.pte_addr(bus, va, level);
        bus.write_u64(addr, ((pa >> 12) << 10) | flags);
        addr
    }
}
