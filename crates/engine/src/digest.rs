//! Final-state digests: BLAKE3 over all of RAM, and each hart's own digest.

use samsara_machine::machine::Machine;

/// Hex BLAKE3 of `bytes`.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// (per-hart digests, RAM BLAKE3) of a stopped machine.
pub(crate) fn machine_digests(machine: &Machine) -> (Vec<u64>, String) {
    let harts = machine.harts.iter().map(|h| h.digest()).collect();
    let ram = &machine.board.ram;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut addr = ram.base();
    let end = ram.end();
    while addr.raw() < end {
        let n = ((end - addr.raw()) as usize).min(buf.len());
        // The range is inside RAM by construction.
        if ram.read(addr, &mut buf[..n]).is_ok() {
            hasher.update(&buf[..n]);
        }
        addr = samsara_types::GuestPhysAddr(addr.raw() + n as u64);
    }
    (harts, hasher.finalize().to_hex().to_string())
}
