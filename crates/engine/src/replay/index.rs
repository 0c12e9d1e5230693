//! The entry index: who ran each entry and how far, from one read-only
//! scan of the trace (nothing executes), so that "hart h's k-th step",
//! "hart h's previous step" and "P % of the recording" are binary searches.

use std::path::Path;

use samsara_trace::{Block, Entry, TraceErrorKind, TraceReader};

use super::Position;
use crate::EngineError;

/// `owner` of a DMA entry.
const DMA: u8 = u8::MAX;

/// Per entry its hart (or DMA), per hart its entries and cumulative steps.
/// Memory: 1 byte per entry plus 12 per chunk (a `u32` sequence number
/// and a `u64` running step count in its hart's columns).
#[derive(Clone, Debug)]
pub struct EntryIndex {
    /// Entry `seq`'s hart at `seq - 1` ([`DMA`] for a DMA entry).
    owner: Vec<u8>,
    /// Per hart: sequence numbers of its entries, ascending.
    seqs: Vec<Vec<u32>>,
    /// Per hart: its step count after each of those entries.
    ends: Vec<Vec<u64>>,
}

/// One entry as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexedEntry {
    /// The hart that ran it; `None`: a DMA entry.
    pub hart: Option<usize>,
    /// Its recorded length in steps (0 for DMA): positions inside it are
    /// `Position { seq, step }` with `step` in `0..=steps`.
    pub steps: u64,
}

impl EntryIndex {
    /// Scans the trace at `path`. A damaged or unfinished trace is indexed
    /// up to where the replay would stop; only a read error of the file is
    /// an error.
    pub fn build(path: &Path) -> Result<Self, EngineError> {
        let mut reader = TraceReader::open(path)?;
        let harts = reader.header().harts as usize;
        if harts >= usize::from(DMA) {
            return Err(EngineError::Options(format!(
                "the entry index holds at most {} harts, the trace has {harts}",
                DMA - 1
            )));
        }
        let mut index = Self {
            owner: Vec::new(),
            seqs: vec![Vec::new(); harts],
            ends: vec![Vec::new(); harts],
        };
        let mut totals = vec![0u64; harts];
        loop {
            let entries = match reader.next_block() {
                Ok(Some(Block::Entries { entries, .. })) => entries,
                Ok(Some(Block::Footer(_))) => continue,
                Ok(None) => break,
                Err(e) if matches!(e.kind, TraceErrorKind::Io(_)) => return Err(e.into()),
                // Damage: the replay stops here too.
                Err(_) => break,
            };
            for entry in entries {
                let seq = index.owner.len() as u64 + 1;
                let Ok(seq32) = u32::try_from(seq) else {
                    return Err(EngineError::Options(
                        "the entry index holds at most 2^32 - 1 entries".into(),
                    ));
                };
                match entry {
                    Entry::Chunk(c) => {
                        let h = usize::from(c.hart);
                        if h >= harts {
                            // The replay reports it; the index ends here.
                            return Ok(index);
                        }
                        totals[h] += c.steps;
                        index.owner.push(c.hart);
                        index.seqs[h].push(seq32);
                        index.ends[h].push(totals[h]);
                    }
                    Entry::Dma(_) => index.owner.push(DMA),
                }
            }
        }
        for (s, e) in index.seqs.iter_mut().zip(&mut index.ends) {
            s.shrink_to_fit();
            e.shrink_to_fit();
        }
        index.owner.shrink_to_fit();
        Ok(index)
    }

    /// Entries in the trace (sequence numbers `1..=entries()`).
    pub fn entries(&self) -> u64 {
        self.owner.len() as u64
    }

    /// Harts of the recording.
    pub fn harts(&self) -> usize {
        self.seqs.len()
    }

    /// The position after the last entry: `Position::before(entries() + 1)`.
    pub fn end(&self) -> Position {
        Position::before(self.entries() + 1)
    }

    /// Steps hart `hart` executes in the whole recording.
    pub fn hart_total_steps(&self, hart: usize) -> u64 {
        self.ends
            .get(hart)
            .and_then(|e| e.last())
            .copied()
            .unwrap_or(0)
    }

    /// Steps of all harts in the whole recording.
    pub fn total_steps(&self) -> u64 {
        (0..self.harts()).map(|h| self.hart_total_steps(h)).sum()
    }

    /// Entry `seq`: its hart and length.
    pub fn entry(&self, seq: u64) -> Option<IndexedEntry> {
        let owner = *self.owner.get(usize::try_from(seq.checked_sub(1)?).ok()?)?;
        if owner == DMA {
            return Some(IndexedEntry {
                hart: None,
                steps: 0,
            });
        }
        let h = usize::from(owner);
        let i = self.seqs[h].binary_search(&(seq as u32)).ok()?;
        Some(IndexedEntry {
            hart: Some(h),
            steps: self.ends[h][i] - self.before(h, i),
        })
    }

    /// Hart `h`'s step count before its `i`-th entry.
    fn before(&self, h: usize, i: usize) -> u64 {
        if i == 0 { 0 } else { self.ends[h][i - 1] }
    }

    /// Hart `hart`'s step count at `pos` (as `Hart::steps` says there).
    pub fn hart_steps(&self, hart: usize, pos: Position) -> u64 {
        let Some(seqs) = self.seqs.get(hart) else {
            return 0;
        };
        let i = seqs.partition_point(|&s| u64::from(s) < pos.seq);
        let before = self.before(hart, i);
        match seqs.get(i) {
            Some(&s) if u64::from(s) == pos.seq => {
                before + pos.step.min(self.ends[hart][i] - before)
            }
            _ => before,
        }
    }

    /// Every hart's step count at `pos`.
    pub fn hart_steps_at(&self, pos: Position) -> Vec<u64> {
        (0..self.harts()).map(|h| self.hart_steps(h, pos)).collect()
    }

    /// All harts' steps together at `pos`.
    pub fn steps_at(&self, pos: Position) -> u64 {
        (0..self.harts()).map(|h| self.hart_steps(h, pos)).sum()
    }

    /// Where hart `hart` has executed exactly `k` steps and its next one
    /// (step number `k`, counting from 0) is the next the replay runs: in
    /// the entry holding that step, `step` = its steps before it. `None`
    /// if the hart executes `k` steps or fewer in the whole recording.
    pub fn position_of_hart_step(&self, hart: usize, k: u64) -> Option<Position> {
        let ends = self.ends.get(hart)?;
        let i = ends.partition_point(|&e| e <= k);
        let seq = u64::from(*self.seqs[hart].get(i)?);
        Some(Position {
            seq,
            step: k - self.before(hart, i),
        })
    }

    /// Where to land to undo hart `hart`'s last step before `pos`: the
    /// position just before that step executed (reverse-stepi). `None` if
    /// the hart has executed no step at `pos`.
    pub fn previous_step(&self, hart: usize, pos: Position) -> Option<Position> {
        let n = self.hart_steps(hart, pos);
        self.position_of_hart_step(hart, n.checked_sub(1)?)
    }

    /// Where all harts together have executed `g` steps and the next one
    /// runs (the first position with that count; [`EntryIndex::end`] if
    /// `g` is the recording's total or more).
    pub fn position_at_step(&self, g: u64) -> Position {
        // The first entry s with steps_at(before(s + 1)) > g holds step g.
        let (mut lo, mut hi) = (1u64, self.entries() + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.steps_at(Position::before(mid + 1)) <= g {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo > self.entries() {
            return self.end();
        }
        Position {
            seq: lo,
            step: g - self.steps_at(Position::before(lo)),
        }
    }

    /// The position `percent` % of the way through the recording's steps
    /// (0: the start, 100 or more: the end).
    pub fn position_at_percent(&self, percent: f64) -> Position {
        let total = self.total_steps();
        let g = (total as f64 * (percent.max(0.0) / 100.0)).floor() as u64;
        if g >= total {
            return self.end();
        }
        self.position_at_step(g)
    }

    /// Heap memory the index holds.
    pub fn bytes(&self) -> u64 {
        (self.owner.capacity()
            + self.seqs.iter().map(|s| s.capacity() * 4).sum::<usize>()
            + self.ends.iter().map(|e| e.capacity() * 8).sum::<usize>()) as u64
    }
}
