//! Integer-loop throughput of one hart on a flat-RAM bus.
//!
//! `cargo run --release -p samsara-cpu --example loop_bench [million-steps]`

use std::ptr::NonNull;
use std::time::Instant;

use samsara_cpu::bus::{AccessKind, Bus, MmioError, PageGrant};
use samsara_cpu::{Hart, StopReason};
use samsara_types::{GuestPhysAddr, GuestPhysPage, GuestVirtAddr, HartId};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 1 << 20;

struct FlatBus {
    ram: Vec<u64>,
}

// SAFETY: grants point into `ram`, an 8-aligned `Vec<u64>` of whole pages,
// never resized, outliving the hart; one thread.
unsafe impl Bus for FlatBus {
    fn ram_page(&mut self, page: GuestPhysPage, _kind: AccessKind) -> Option<PageGrant> {
        let off = page.base().raw().checked_sub(RAM_BASE)? as usize;
        if off >= RAM_SIZE {
            return None;
        }
        let base = self.ram.as_mut_ptr().cast::<u8>();
        // SAFETY: `off` is inside the RAM allocation.
        let host = NonNull::new(unsafe { base.add(off) })?;
        // SAFETY: a page-aligned offset into `ram` (see the impl).
        Some(unsafe { PageGrant::new(host) })
    }
    fn mmio_read(&mut self, _: GuestPhysAddr, _: u8) -> Result<u64, MmioError> {
        Err(MmioError::AccessFault)
    }
    fn mmio_write(&mut self, _: GuestPhysAddr, _: u8, _: u64) -> Result<(), MmioError> {
        Err(MmioError::AccessFault)
    }
    fn read_time(&mut self) -> u64 {
        0
    }
    fn interrupt_lines(&mut self) -> u64 {
        0
    }
    fn hart_id(&self) -> HartId {
        HartId(0)
    }
}

/// `jal zero, -24`.
const JUMP_BACK: u32 = 0xfe9f_f06f;

fn main() {
    let millions: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let steps = millions * 1_000_000;
    // An integer loop with a load and a store per iteration (7 instructions).
    let program: [u32; 8] = [
        0x0001_0117, // auipc sp, 0x10      (sp = RAM_BASE + 0x10000)
        0x0015_0513, // loop: addi a0, a0, 1
        0x00a5_c5b3, // xor a1, a1, a0
        0x00b1_3023, // sd a1, 0(sp)
        0x0001_3603, // ld a2, 0(sp)
        0x00c6_86b3, // add a3, a3, a2
        0x0016_9713, // slli a4, a3, 1
        JUMP_BACK,   // j loop
    ];
    let mut bus = FlatBus {
        ram: vec![0; RAM_SIZE / 8],
    };
    let bytes: Vec<u8> = program.iter().flat_map(|w| w.to_le_bytes()).collect();
    for (k, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        bus.ram[k] = u64::from_le_bytes(w);
    }
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(RAM_BASE));
    let start = Instant::now();
    let stop = hart.run(&mut bus, steps);
    let elapsed = start.elapsed();
    assert_eq!(stop, StopReason::StepLimit);
    let retired = hart.retired();
    assert_eq!(
        retired,
        steps,
        "the loop must not fault (pc={:#x})",
        hart.pc()
    );
    println!(
        "{} steps in {:.3} s: {:.1} M guest instructions/s",
        steps,
        elapsed.as_secs_f64(),
        steps as f64 / elapsed.as_secs_f64() / 1e6
    );
}
