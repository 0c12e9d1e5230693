//! What a trace holds: the figures `samsara inspect` prints.

use std::collections::BTreeMap;
use std::path::Path;

use samsara_trace::{
    Block, Entry, Event, Footer, STREAMS, TraceError, TraceHeader, TraceReader, Truncation,
};

/// Summary of a trace.
#[derive(Clone, Debug)]
pub struct TraceSummary {
    /// The header.
    pub header: TraceHeader,
    /// The footer, if the trace is complete.
    pub footer: Option<Footer>,
    /// Why reading stopped early (partial or damaged trace).
    pub partial: Option<String>,
    /// File size.
    pub file_bytes: u64,
    /// Chunks per hart (device accesses included).
    pub chunks_per_hart: Vec<u64>,
    /// Instructions per hart according to the commit log.
    pub steps_per_hart: Vec<u64>,
    /// Committed chunks by truncation reason.
    pub reasons: BTreeMap<&'static str, u64>,
    /// Chunks that ran exclusively.
    pub exclusive: u64,
    /// Chunk lengths (excluding device accesses) by power-of-two bucket:
    /// bucket k counts lengths in [2^k, 2^(k+1)) (bucket 0 includes 0).
    pub length_histogram: Vec<u64>,
    /// Events by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// DMA entries and bytes.
    pub dma_entries: u64,
    /// DMA bytes.
    pub dma_bytes: u64,
    /// Uncompressed bytes per stream.
    pub raw: [u64; STREAMS],
    /// Stored bytes per stream.
    pub compressed: [u64; STREAMS],
    /// Entries.
    pub entries: u64,
}

impl TraceSummary {
    /// Total instructions recorded.
    pub fn instructions(&self) -> u64 {
        self.steps_per_hart.iter().sum()
    }
}

/// Reads a whole trace and summarises it. Damage after the header is
/// reported in `partial`, with what came before it summarised.
pub fn inspect(path: &Path) -> Result<TraceSummary, TraceError> {
    let mut reader = TraceReader::open(path)?;
    let header = reader.header().clone();
    let harts = header.harts as usize;
    let mut s = TraceSummary {
        header,
        footer: None,
        partial: None,
        file_bytes: reader.file_len(),
        chunks_per_hart: vec![0; harts],
        steps_per_hart: vec![0; harts],
        reasons: BTreeMap::new(),
        exclusive: 0,
        length_histogram: vec![0; 64],
        events: BTreeMap::new(),
        dma_entries: 0,
        dma_bytes: 0,
        raw: [0; STREAMS],
        compressed: [0; STREAMS],
        entries: 0,
    };
    for r in Truncation::ALL {
        s.reasons.insert(r.name(), 0);
    }
    loop {
        match reader.next_block() {
            Ok(None) => break,
            Ok(Some(Block::Footer(f))) => s.footer = Some(*f),
            Ok(Some(Block::Entries {
                entries,
                raw,
                compressed,
                ..
            })) => {
                for i in 0..STREAMS {
                    s.raw[i] += raw[i];
                    s.compressed[i] += compressed[i];
                }
                s.entries += entries.len() as u64;
                for e in entries {
                    match e {
                        Entry::Chunk(c) => {
                            let h = usize::from(c.hart).min(harts.saturating_sub(1));
                            s.chunks_per_hart[h] += 1;
                            s.steps_per_hart[h] += c.steps;
                            *s.reasons.entry(c.reason.name()).or_default() += 1;
                            s.exclusive += u64::from(c.exclusive);
                            if c.reason != Truncation::DeviceOp {
                                s.length_histogram[63 - c.steps.max(1).leading_zeros() as usize] +=
                                    1;
                            }
                            for ev in c.events {
                                let k = match ev {
                                    Event::Lines(_) | Event::LinesUpdate(_) => "interrupt-lines",
                                    Event::Time(_) => "time-read",
                                    Event::MmioRead(_) => "device-read",
                                    Event::MmioFault => "device-fault",
                                    Event::After { .. } => "ordering-edge",
                                    Event::Refused { .. } => "refused-page",
                                };
                                *s.events.entry(k).or_default() += 1;
                            }
                        }
                        Entry::Dma(d) => {
                            s.dma_entries += 1;
                            s.dma_bytes +=
                                d.writes.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
                        }
                    }
                }
            }
            Err(e) => {
                s.partial = Some(e.to_string());
                break;
            }
        }
    }
    while s.length_histogram.last() == Some(&0) && s.length_histogram.len() > 1 {
        s.length_histogram.pop();
    }
    Ok(s)
}
