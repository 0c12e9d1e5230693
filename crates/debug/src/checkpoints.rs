//! Where the timeline keeps its checkpoints: densely near the current
//! position, sparsely further away (at most two per power-of-two band of
//! distance, as rr does), within a memory budget they never exceed.

use std::collections::{BTreeMap, BTreeSet};

use samsara_engine::replay::{Checkpoint, Position, unique_bytes};

/// A checkpoint and where it is.
pub struct Saved {
    pub checkpoint: Checkpoint,
    /// Steps of all harts together at the checkpoint.
    pub total: u64,
}

/// The timeline's checkpoints, by position.
pub struct Checkpoints {
    saved: BTreeMap<Position, Saved>,
    budget: u64,
}

impl Checkpoints {
    pub fn new(budget: u64) -> Self {
        Self {
            saved: BTreeMap::new(),
            budget,
        }
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.saved.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.saved.is_empty()
    }

    /// Memory they hold, in bytes: page copies shared between
    /// checkpoints (copy-on-write) count once.
    pub fn bytes(&self) -> u64 {
        unique_bytes(self.saved.values().map(|s| &s.checkpoint))
    }

    /// The memory budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Each checkpoint, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Saved> {
        self.saved.values()
    }

    /// Their positions.
    pub fn positions(&self) -> BTreeSet<Position> {
        self.saved.keys().copied().collect()
    }

    /// The latest at or before `position`.
    pub fn at_or_before(&self, position: Position) -> Option<&Checkpoint> {
        self.saved
            .range(..=position)
            .next_back()
            .map(|(_, s)| &s.checkpoint)
    }

    /// The latest strictly before `position`.
    pub fn before(&self, position: Position) -> Option<&Checkpoint> {
        self.saved
            .range(..position)
            .next_back()
            .map(|(_, s)| &s.checkpoint)
    }

    /// Steps at the latest checkpoint at or before `position` (0 if none).
    pub fn total_at_or_before(&self, position: Position) -> u64 {
        self.saved
            .range(..=position)
            .next_back()
            .map_or(0, |(_, s)| s.total)
    }

    /// Keeps `checkpoint`, taken when all harts had run `total` steps,
    /// evicting others to stay within the budget; false if it cannot fit
    /// at all (then it is dropped). The one at the recording's start is
    /// never evicted: every backward search can end there.
    pub fn insert(&mut self, checkpoint: Checkpoint, total: u64, interval: u64) -> bool {
        let position = checkpoint.position();
        if self.saved.contains_key(&position) {
            return true;
        }
        self.saved.insert(position, Saved { checkpoint, total });
        self.thin(total, interval);
        while self.bytes() > self.budget {
            if self.saved.len() <= 1 || !self.evict_one(total, interval, position) {
                self.saved.remove(&position);
                return false;
            }
        }
        true
    }

    /// Drops checkpoints so that, beyond `8 * interval` steps from `now`,
    /// each power-of-two band of distance (either side) keeps at most two:
    /// its newest and its oldest.
    fn thin(&mut self, now: u64, interval: u64) {
        let interval = interval.max(1);
        let mut bands: BTreeMap<(bool, u32), Vec<Position>> = BTreeMap::new();
        for (&position, saved) in self.saved.iter().skip(1) {
            let distance = now.abs_diff(saved.total);
            if distance < 8 * interval {
                continue;
            }
            let band = (distance / interval).ilog2();
            bands
                .entry((saved.total > now, band))
                .or_default()
                .push(position);
        }
        for positions in bands.values() {
            if positions.len() > 2 {
                for p in &positions[1..positions.len() - 1] {
                    self.saved.remove(p);
                }
            }
        }
    }

    /// Evicts the checkpoint whose loss costs least: the smallest gap it
    /// would leave, relative to its distance from `now`; never the start's
    /// nor `keep`. False if there is none to evict.
    fn evict_one(&mut self, now: u64, interval: u64, keep: Position) -> bool {
        let totals: Vec<(Position, u64)> = self.saved.iter().map(|(&p, s)| (p, s.total)).collect();
        let victim = (1..totals.len())
            .filter(|&i| totals[i].0 != keep)
            .min_by(|&a, &b| {
                let score = |i: usize| {
                    let prev = totals[i - 1].1;
                    let next = totals.get(i + 1).map_or(now.max(totals[i].1), |t| t.1);
                    let gap = next.saturating_sub(prev) as f64;
                    gap / (now.abs_diff(totals[i].1) + interval.max(1)) as f64
                };
                score(a).total_cmp(&score(b))
            })
            .map(|i| totals[i].0);
        match victim {
            Some(p) => self.saved.remove(&p).is_some(),
            None => false,
        }
    }
}
