//! The reset vector at 0x1000, byte for byte what QEMU's `virt` board puts
//! there (`riscv_setup_rom_reset_vec` + `riscv_rom_copy_firmware_info` in
//! QEMU's hw/riscv/boot.c), so a guest sees the same boot protocol on both:
//!
//! ```text
//! 0x1000: auipc t0, 0          # t0 = 0x1000
//! 0x1004: addi  a2, t0, 40     # a2 = &fw_dynamic_info
//! 0x1008: csrr  a0, mhartid    # a0 = hart id
//! 0x100c: ld    a1, 32(t0)     # a1 = device tree address
//! 0x1010: ld    t0, 24(t0)     # t0 = start address
//! 0x1014: jr    t0
//! 0x1018: .dword start_addr
//! 0x1020: .dword fdt_addr
//! 0x1028: fw_dynamic_info { magic "OSBI", version 2, next_addr,
//!                           next_mode 1 (S), options 0, boot_hart 0 }
//! ```
//!
//! `fw_dynamic_info` tells OpenSBI (`fw_dynamic`) where the next stage is;
//! other firmware ignores a2. The ROM is read-only, executable memory of
//! [`BOOT_ROM_SIZE`] bytes at [`crate::board::BOOT_ROM_BASE`].

use crate::board::BOOT_ROM_SIZE;

/// Length of the ROM image in bytes.
const ROM_LEN: usize = BOOT_ROM_SIZE as usize;

/// `fw_dynamic_info.magic`: "OSBI".
pub const FW_DYNAMIC_INFO_MAGIC: u64 = 0x4942_534f;
/// `fw_dynamic_info.version` QEMU writes.
pub const FW_DYNAMIC_INFO_VERSION: u64 = 2;
/// `fw_dynamic_info.next_mode`: supervisor mode.
pub const FW_DYNAMIC_INFO_NEXT_MODE_S: u64 = 1;

/// The reset-vector instructions (QEMU's rv64 variant).
const RESET_VECTOR: [u32; 6] = [
    0x0000_0297, // auipc t0, 0
    0x0282_8613, // addi  a2, t0, 40
    0xf140_2573, // csrr  a0, mhartid
    0x0202_b583, // ld    a1, 32(t0)
    0x0182_b283, // ld    t0, 24(t0)
    0x0002_8067, // jr    t0
];

/// Offset of `fw_dynamic_info` in the ROM (after 10 words of reset vector).
pub const FW_DYNAMIC_INFO_OFFSET: usize = 40;

/// The full ROM image ([`BOOT_ROM_SIZE`] bytes, zero-padded): jump to
/// `start_addr` with a0 = hart id, a1 = `fdt_addr`, a2 = a `fw_dynamic_info`
/// pointing OpenSBI at `next_addr` in S-mode.
pub fn boot_rom(start_addr: u64, fdt_addr: u64, next_addr: u64) -> Vec<u8> {
    let mut rom = Vec::with_capacity(ROM_LEN);
    for insn in RESET_VECTOR {
        rom.extend_from_slice(&insn.to_le_bytes());
    }
    rom.extend_from_slice(&start_addr.to_le_bytes());
    rom.extend_from_slice(&fdt_addr.to_le_bytes());
    debug_assert_eq!(rom.len(), FW_DYNAMIC_INFO_OFFSET);
    for field in [
        FW_DYNAMIC_INFO_MAGIC,
        FW_DYNAMIC_INFO_VERSION,
        next_addr,
        FW_DYNAMIC_INFO_NEXT_MODE_S,
        0, // options
        0, // boot_hart
    ] {
        rom.extend_from_slice(&field.to_le_bytes());
    }
    rom.resize(ROM_LEN, 0);
    rom
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(rom: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(rom[at..at + 4].try_into().unwrap())
    }
    fn dword(rom: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(rom[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn layout_matches_qemu() {
        let rom = boot_rom(0x8000_0000, 0x8700_0000, 0x8020_0000);
        assert_eq!(rom.len(), ROM_LEN);
        assert_eq!(word(&rom, 0), 0x0000_0297);
        assert_eq!(word(&rom, 20), 0x0002_8067);
        // ld t0, 24(t0) and ld a1, 32(t0) find the two dwords.
        assert_eq!(dword(&rom, 24), 0x8000_0000);
        assert_eq!(dword(&rom, 32), 0x8700_0000);
        // addi a2, t0, 40 points at fw_dynamic_info.
        assert_eq!(word(&rom, 4) >> 20, FW_DYNAMIC_INFO_OFFSET as u32);
        let info = FW_DYNAMIC_INFO_OFFSET;
        assert_eq!(dword(&rom, info), 0x4942_534f);
        assert_eq!(dword(&rom, info + 8), 2);
        assert_eq!(dword(&rom, info + 16), 0x8020_0000);
        assert_eq!(dword(&rom, info + 24), 1);
        assert_eq!(dword(&rom, info + 32), 0);
        assert_eq!(dword(&rom, info + 40), 0);
        assert!(rom[info + 48..].iter().all(|&b| b == 0));
    }

    #[test]
    fn immediates_decode_as_documented() {
        // ld rd, imm(rs1): imm = insn[31:20]; rs1 = insn[19:15]; rd = insn[11:7].
        let ld_a1 = RESET_VECTOR[3];
        assert_eq!(ld_a1 >> 20, 32);
        assert_eq!((ld_a1 >> 7) & 0x1f, 11); // a1
        assert_eq!((ld_a1 >> 15) & 0x1f, 5); // t0
        let ld_t0 = RESET_VECTOR[4];
        assert_eq!(ld_t0 >> 20, 24);
        assert_eq!((ld_t0 >> 7) & 0x1f, 5);
        // csrr a0, mhartid (0xf14).
        assert_eq!(RESET_VECTOR[2] >> 20, 0xf14);
    }
}
