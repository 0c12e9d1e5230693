//! Final-state digests (BLAKE3 over all of RAM, each hart's own digest) and
//! the guest output they are compared with.

use samsara_machine::devices::uart::SharedOutput;
use samsara_machine::machine::Machine;

/// The console of a recorded or replayed machine: keeps every byte the
/// guest prints (the trace holds it; replay compares it) and optionally
/// copies it to stdout.
pub(crate) struct Console {
    /// Copy to stdout as well.
    pub echo: bool,
    /// Everything printed.
    pub capture: SharedOutput,
}

impl std::io::Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(buf);
            let _ = out.flush();
        }
        self.capture.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hex BLAKE3 of `bytes`.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// (per-hart digests, RAM BLAKE3) of a stopped machine.
pub(crate) fn machine_digests(machine: &Machine) -> (Vec<u64>, String) {
    let harts = machine.harts.iter().map(|h| h.digest()).collect();
    (harts, ram_blake3(machine))
}

/// BLAKE3 of all of a machine's RAM, hex.
pub(crate) fn ram_blake3(machine: &Machine) -> String {
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
    hasher.finalize().to_hex().to_string()
}
