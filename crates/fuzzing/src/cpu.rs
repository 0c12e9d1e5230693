//! Fuzz target 2: one hart running arbitrary code in any privilege mode.
//!
//! Input layout (missing bytes read as 0):
//!
//! ```text
//! mode:u8            bits 0-1 privilege to enter (0 U, 1 S, 3 M; 2 = M),
//!                    bit 2 keep the input's PMP setup (else PMP entry 0
//!                    grants everything, so S/U code can run at all),
//!                    bit 3 device accesses are deferred (the hart stops),
//!                    bit 4 satp's PPN is taken as is (else it points into RAM)
//! csr:u64 x 17       mstatus medeleg mideleg mie mip mtvec stvec satp
//!                    mcounteren scounteren pmpcfg0 pmpaddr0 pmpaddr1 mepc
//!                    fcsr menvcfg senvcfg
//! x:u64 x 31         x1..x31 at the start of the code
//! lines:u64 time:u64 mmio:u64   the bus's interrupt lines, time, device value
//! ram:[u8]           the rest: RAM from the code page on (code, page tables,
//!                    data; RAM is 64 KiB, zero beyond the input)
//! ```
//!
//! A prologue at the start of RAM writes the CSRs with `csrw` (so the hart
//! holds only states a guest can create: WARL fields are legalised by the
//! hart itself) and enters the chosen mode with `mret`: at the input's
//! `mepc` when its bit 0 is set (wherever that points), else at the code
//! page. The hart then runs at most
//! [`STEPS`] steps. It must not panic or hang, and a second run of the same
//! input must end in the identical state (the recorder relies on harts being
//! deterministic).

use std::ptr::NonNull;

use samsara_cpu::bus::{AccessKind, Bus, MmioError, PageGrant};
use samsara_cpu::{Hart, HartState, StopReason};
use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr, HartId};

/// Guest-physical base of RAM.
pub const RAM_BASE: u64 = 0x8000_0000;
/// RAM size.
pub const RAM_SIZE: usize = 64 << 10;
/// Where the input's RAM bytes start (the page after the prologue).
pub const CODE: u64 = RAM_BASE + 0x1000;
/// The one device page: loads return the input's value, stores are dropped.
pub const MMIO_BASE: u64 = 0x1000_0000;
/// Steps run per input (after the prologue).
pub const STEPS: u64 = 4_000;

/// CSRs the prologue writes, in input order.
pub(crate) const CSRS: [u16; 17] = [
    0x300, // mstatus
    0x302, // medeleg
    0x303, // mideleg
    0x304, // mie
    0x344, // mip
    0x305, // mtvec
    0x105, // stvec
    0x180, // satp
    0x306, // mcounteren
    0x106, // scounteren
    0x3a0, // pmpcfg0
    0x3b0, // pmpaddr0
    0x3b1, // pmpaddr1
    0x341, // mepc
    0x003, // fcsr
    0x30a, // menvcfg
    0x10a, // senvcfg
];
const MSTATUS: usize = 0;
pub(crate) const MTVEC: usize = 5;
pub(crate) const STVEC: usize = 6;
pub(crate) const SATP: usize = 7;
const PMPCFG0: usize = 10;
const PMPADDR0: usize = 11;
const MEPC: usize = 13;

/// A bus with 64 KiB of RAM and one device page.
pub(crate) struct FuzzBus {
    /// RAM, as u64 words so that the hart's aligned accesses are aligned
    /// on the host too.
    pub(crate) ram: Vec<u64>,
    pub(crate) lines: u64,
    pub(crate) time: u64,
    mmio_value: u64,
    defer: bool,
}

// SAFETY: grants point into `ram`, a `Vec<u64>` (8-aligned) allocated once
// with a whole number of pages and never resized; the harts driven with a
// `FuzzBus` are dropped (or flushed) before it; one thread.
unsafe impl Bus for FuzzBus {
    fn ram_page(&mut self, page: GuestPhysPage, _kind: AccessKind) -> Option<PageGrant> {
        let addr = page.raw().checked_mul(4096)?;
        let off = usize::try_from(addr.checked_sub(RAM_BASE)?).ok()?;
        if off >= RAM_SIZE {
            return None;
        }
        let base = self.ram.as_mut_ptr().cast::<u8>();
        // SAFETY: `off` is a page offset below RAM_SIZE, inside the
        // allocation, which lives (unmoved) as long as the bus.
        let host = unsafe { base.add(off) };
        // SAFETY: a page-aligned offset into `ram` (see the impl).
        Some(unsafe { PageGrant::new(NonNull::new(host)?) })
    }

    fn mmio_read(&mut self, addr: GuestPhysAddr, _size: u8) -> Result<u64, MmioError> {
        if self.defer {
            return Err(MmioError::Deferred);
        }
        if addr.0 >> 12 != MMIO_BASE >> 12 {
            return Err(MmioError::AccessFault);
        }
        self.time = self.time.wrapping_add(1);
        Ok(self.mmio_value.rotate_left(addr.0 as u32 & 63))
    }

    fn mmio_write(&mut self, addr: GuestPhysAddr, _size: u8, value: u64) -> Result<(), MmioError> {
        if self.defer {
            return Err(MmioError::Deferred);
        }
        if addr.0 >> 12 != MMIO_BASE >> 12 {
            return Err(MmioError::AccessFault);
        }
        self.lines ^= value & 0xaaa;
        Ok(())
    }

    fn read_time(&mut self) -> u64 {
        self.time = self.time.wrapping_add(3);
        self.time
    }

    fn interrupt_lines(&mut self) -> u64 {
        self.lines
    }

    fn hart_id(&self) -> HartId {
        HartId(0)
    }
}

fn u64_at(data: &[u8], at: &mut usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = data.get(*at + i).copied().unwrap_or(0);
    }
    *at += 8;
    u64::from_le_bytes(b)
}

/// `csrrw x0, csr, t0`.
fn csrw_t0(csr: u16) -> u32 {
    (u32::from(csr) << 20) | (5 << 15) | (1 << 12) | 0x73
}

/// `ld t0, off(gp)`.
fn ld_t0_gp(off: u32) -> u32 {
    (off << 20) | (3 << 15) | (3 << 12) | (5 << 7) | 0x03
}

const MRET: u32 = 0x3020_0073;

/// Where the RAM image starts in an input: after the mode byte, the CSRs,
/// x1..x31 and lines/time/mmio.
pub(crate) const IMAGE: usize = 1 + 8 * (CSRS.len() + 31 + 3);
/// Where the prologue reads the CSR values from (a RAM offset).
pub(crate) const CSR_TABLE: usize = 0x800;
/// Steps the prologue takes: 2 instructions per CSR, then mret.
pub(crate) const PROLOGUE: u64 = 2 * CSRS.len() as u64 + 1;

/// Builds the machine for `data`: the hart at the prologue, the bus.
pub(crate) fn setup(data: &[u8]) -> (Hart, FuzzBus) {
    let mode = data.first().copied().unwrap_or(0);
    let mut at = 1;
    let mut csr = [0u64; CSRS.len()];
    for v in &mut csr {
        *v = u64_at(data, &mut at);
    }
    let mut x = [0u64; 32];
    for r in x.iter_mut().skip(1) {
        *r = u64_at(data, &mut at);
    }
    let lines = u64_at(data, &mut at);
    let time = u64_at(data, &mut at);
    let mmio_value = u64_at(data, &mut at);

    let privilege = match mode & 3 {
        0 => 0u64,
        1 => 1,
        _ => 3,
    };
    csr[MSTATUS] = (csr[MSTATUS] & !(3 << 11)) | (privilege << 11);
    if mode & 4 == 0 {
        csr[PMPCFG0] = 0x1f; // entry 0: NAPOT over everything, RWX
        csr[PMPADDR0] = u64::MAX;
    }
    if mode & 16 == 0 {
        let ppn = (RAM_BASE >> 12) + (csr[SATP] & 0xf);
        csr[SATP] = (csr[SATP] & !((1 << 44) - 1)) | ppn;
    }
    if csr[MEPC] & 1 == 0 {
        csr[MEPC] = CODE;
    }

    let mut ram = vec![0u64; RAM_SIZE / 8];
    // Page 0: the CSR values at 0x800, the prologue at 0.
    let table = CSR_TABLE / 8;
    ram[table..table + CSRS.len()].copy_from_slice(&csr);
    let mut code = Vec::new();
    for (i, &c) in CSRS.iter().enumerate() {
        code.push(ld_t0_gp(8 * i as u32));
        code.push(csrw_t0(c));
    }
    code.push(MRET);
    for (i, w) in code.iter().enumerate() {
        let word = &mut ram[i / 2];
        *word |= u64::from(*w) << (32 * (i % 2));
    }
    // Page 1 on: the input.
    let image = data.get(at..).unwrap_or(&[]);
    let room = RAM_SIZE - (CODE - RAM_BASE) as usize;
    for (i, chunk) in image[..image.len().min(room)].chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        ram[(CODE - RAM_BASE) as usize / 8 + i] = u64::from_le_bytes(b);
    }

    debug_assert_eq!(at, IMAGE);
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(RAM_BASE));
    for (r, &v) in x.iter().enumerate().skip(1) {
        hart.set_xreg(r, v);
    }
    hart.set_xreg(3, RAM_BASE + CSR_TABLE as u64);
    let bus = FuzzBus {
        ram,
        lines,
        time,
        mmio_value,
        defer: mode & 8 != 0,
    };
    (hart, bus)
}

/// Runs the prologue, then the input's code, in slices like the engine's.
fn execute(data: &[u8]) -> (HartState, Vec<u64>) {
    let (mut hart, mut bus) = setup(data);
    let _ = hart.run(&mut bus, PROLOGUE);
    let end = hart.steps().0 + STEPS;
    // Every call either makes progress or stops for a reason the engine
    // would handle outside the hart (deferred device access); a WFI or a
    // pause only ends the call, so bound the calls too.
    for _ in 0..64 {
        let left = end.saturating_sub(hart.steps().0);
        if left == 0 {
            break;
        }
        match hart.run(&mut bus, left.min(4096)) {
            StopReason::StepLimit | StopReason::Wfi | StopReason::Pause => {}
            StopReason::DeviceAccess
            | StopReason::Watch
            | StopReason::Breakpoint
            | StopReason::UserSwitch => break,
        }
        if hart.steps().0 % 3 == 0 {
            hart.flush_tlb();
        }
    }
    assert!(hart.steps().0 <= end, "the hart ran past its step budget");
    (hart.snapshot(), bus.ram)
}

/// Runs one input twice; both runs must end identically.
pub fn run(data: &[u8]) {
    let (a, ram_a) = execute(data);
    let (b, ram_b) = execute(data);
    assert_eq!(a, b, "the same input ended in two different hart states");
    assert!(ram_a == ram_b, "the same input left two different RAMs");
}
