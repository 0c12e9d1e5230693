//! `watch [phys:]ADDR[:LEN]`: every write (with `--reads`, every access) to
//! a range of guest memory, in the recording's order — who (hart, or the
//! DMA of a device), where (position, pc, privilege) and what (the bytes
//! before and after). Memory provenance: who wrote this byte, and when.

use std::collections::BTreeMap;
use std::io::Write;

use samsara_cpu::Privilege;
use samsara_cpu::bus::{AccessKind, Atomicity};
use samsara_engine::replay::probe::{AccessProbe, Finding, ProbeConfig, ProbeRange};
use samsara_trace::Entry;
use serde_json::json;

use crate::Sinks;

/// One access to the watched bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedAccess {
    /// Entry and step of it (the access's instruction; 0 for DMA).
    pub seq: u64,
    /// ...
    pub step: u64,
    /// The hart, or `None` for a device's DMA.
    pub hart: Option<u8>,
    /// The instruction's address (0 for DMA).
    pub pc: u64,
    /// Its privilege (`None` for DMA).
    pub privilege: Option<Privilege>,
    /// What kind: `read`, `write`, `amo`, `lr`, `sc` or `dma`.
    pub kind: &'static str,
    /// First byte, virtual (as the hart translated it; DMA: physical) ...
    pub vaddr: u64,
    /// ... and physical.
    pub paddr: u64,
    /// Bytes accessed (up to 8 from a hart; DMA: those in the range).
    pub len: u64,
    /// The bytes before (little-endian; `None` for DMA).
    pub old: Option<u64>,
    /// The bytes after (DMA: the bytes written, up to 8).
    pub new: u64,
}

/// The watch analysis: accesses are written to the sinks as they are
/// seen (a hot variable is accessed millions of times), and counted.
#[derive(Clone, Debug)]
pub struct Watch {
    range: ProbeRange,
    reads: bool,
    hart: Option<u8>,
    /// Accesses listed, by hart (`None`: DMA).
    pub by_hart: BTreeMap<Option<u8>, u64>,
    /// Of them, writing (writes, AMOs, SC, DMA).
    pub writes: u64,
    /// The last writing access.
    pub last_write: Option<WatchedAccess>,
}

impl Watch {
    /// Watches `range`; with `reads` loads too; with `hart` that hart's
    /// accesses only (DMA is shown whatever `hart`).
    pub fn new(range: ProbeRange, reads: bool, hart: Option<u8>) -> Self {
        Self {
            range,
            reads,
            hart,
            by_hart: BTreeMap::new(),
            writes: 0,
            last_write: None,
        }
    }

    /// What the harts must show.
    pub fn probe(&self) -> ProbeConfig {
        ProbeConfig {
            accesses: AccessProbe::Ranges(vec![self.range]),
            loads: self.reads,
            values: true,
            ..ProbeConfig::default()
        }
    }

    /// The range, as the user gave it.
    pub fn describe(&self) -> String {
        format!(
            "{}{:#x}:{}",
            if self.range.physical { "phys:" } else { "" },
            self.range.start,
            self.range.len
        )
    }

    /// Entry `seq` with what the probe found in it (findings of other
    /// analyses' probes are sorted out here).
    pub fn see(&mut self, seq: u64, entry: &Entry, findings: &[Finding], sinks: &mut Sinks) {
        match entry {
            Entry::Chunk(c) => {
                if self.hart.is_some_and(|h| h != c.hart) {
                    return;
                }
                for f in findings {
                    let Finding::Access(a) = f else { continue };
                    if !self.range.covers(a.vaddr, a.paddr, u64::from(a.len)) {
                        continue;
                    }
                    let kind = match (a.atomic, a.kind) {
                        (Atomicity::Amo, _) => "amo",
                        (Atomicity::LoadReserved, _) => "lr",
                        (Atomicity::StoreConditional, _) => "sc",
                        (Atomicity::Plain, AccessKind::Write) => "write",
                        (Atomicity::Plain, _) => "read",
                    };
                    if a.kind != AccessKind::Write && !self.reads {
                        continue;
                    }
                    self.emit(
                        WatchedAccess {
                            seq,
                            step: a.step,
                            hart: Some(c.hart),
                            pc: a.pc,
                            privilege: Some(a.privilege),
                            kind,
                            vaddr: a.vaddr,
                            paddr: a.paddr,
                            len: u64::from(a.len),
                            old: Some(a.old),
                            new: a.new,
                        },
                        sinks,
                    );
                }
            }
            Entry::Dma(d) => {
                if !self.range.physical {
                    return;
                }
                for (addr, bytes) in &d.writes {
                    let start = (*addr).max(self.range.start);
                    let end = addr
                        .saturating_add(bytes.len() as u64)
                        .min(self.range.start.saturating_add(self.range.len));
                    if start >= end {
                        continue;
                    }
                    let from = (start - addr) as usize;
                    let shown = &bytes[from..from + ((end - start) as usize).min(8)];
                    let mut value = [0u8; 8];
                    value[..shown.len()].copy_from_slice(shown);
                    self.emit(
                        WatchedAccess {
                            seq,
                            step: 0,
                            hart: None,
                            pc: 0,
                            privilege: None,
                            kind: "dma",
                            vaddr: start,
                            paddr: start,
                            len: end - start,
                            old: None,
                            new: u64::from_le_bytes(value),
                        },
                        sinks,
                    );
                }
            }
        }
    }

    /// Counts `a` and writes it to the sinks.
    fn emit(&mut self, a: WatchedAccess, sinks: &mut Sinks) {
        *self.by_hart.entry(a.hart).or_default() += 1;
        if let Some(out) = &mut sinks.listing {
            let who = match a.hart {
                Some(h) => format!("hart {h}"),
                None => "dma".to_string(),
            };
            let privilege = a.privilege.map_or("-", privilege_name);
            let old = a
                .old
                .map_or("?".to_string(), |v| format!("{:#x}", mask(v, a.len)));
            let line = writeln!(
                out,
                "{:>10}.{:<6} {who:<7} {privilege} pc={:#x} {:<5} {:#x} ({} bytes): {old} -> {:#x}",
                a.seq,
                a.step,
                a.pc,
                a.kind,
                a.vaddr,
                a.len,
                mask(a.new, a.len)
            );
            sinks.note(line);
        }
        if let Some(out) = &mut sinks.jsonl {
            let line = json!({
                "analysis": "watch",
                "range": self.describe(),
                "seq": a.seq,
                "step": a.step,
                "hart": a.hart,
                "privilege": a.privilege.map(privilege_name),
                "pc": a.pc,
                "kind": a.kind,
                "vaddr": a.vaddr,
                "paddr": a.paddr,
                "len": a.len,
                "old": a.old.map(|v| mask(v, a.len)),
                "new": mask(a.new, a.len),
            });
            let line = writeln!(out, "{line}");
            sinks.note(line);
        }
        if a.kind != "read" {
            self.writes += 1;
            self.last_write = Some(a);
        }
    }

    /// A few lines for people.
    pub fn summary(&self) -> Vec<String> {
        let who: Vec<String> = self
            .by_hart
            .iter()
            .map(|(h, n)| match h {
                Some(h) => format!("hart {h}: {n}"),
                None => format!("dma: {n}"),
            })
            .collect();
        let total: u64 = self.by_hart.values().sum();
        let mut lines = vec![format!(
            "watch {}: {total} accesses ({} writing){}{}",
            self.describe(),
            self.writes,
            if who.is_empty() { "" } else { "; " },
            who.join(", ")
        )];
        if let Some(last) = &self.last_write {
            lines.push(format!(
                "watch {}: last written at {}.{} by {} (pc {:#x}): {:#x}",
                self.describe(),
                last.seq,
                last.step,
                last.hart.map_or("dma".into(), |h| format!("hart {h}")),
                last.pc,
                mask(last.new, last.len)
            ));
        }
        lines
    }
}

/// The low `len` bytes of `v`.
fn mask(v: u64, len: u64) -> u64 {
    if len >= 8 {
        v
    } else {
        v & ((1u64 << (8 * len)) - 1)
    }
}

/// `M`, `S` or `U`.
pub fn privilege_name(p: Privilege) -> &'static str {
    match p {
        Privilege::Machine => "M",
        Privilege::Supervisor => "S",
        Privilege::User => "U",
    }
}
