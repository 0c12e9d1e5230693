//! How each recording strategy's entries are ordered in replay.
//!
//! - `chunk`: entry `seq` of hart H starts once the write-back watermark
//!   reaches `seq - back` (everything its recorded view depended on has
//!   written back), runs on private copy-on-write pages and writes back
//!   when the watermark reaches `seq - 1`: write-backs happen in sequence
//!   order while harts overlap.
//! - `serial`: as `chunk` (every entry reaches back one), with device
//!   accesses inside chunks.
//! - `crew`: harts run on shared memory; an entry waits for its ordering
//!   edges (`Event::After`) and, for a device access, for the previous
//!   device access; it publishes how far its hart got when it ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use samsara_trace::{ChunkRecord, Event, Strategy, Truncation};

use super::Divergence;
use crate::sequencer::{Watermark, spin_briefly};

/// A strategy's replay rules, shared by the replay threads.
pub(crate) enum Policy {
    /// Copy-on-write chunks, ordered by the watermark.
    Chunk,
    /// As `Chunk`, with device accesses inside chunks.
    Serial,
    /// Shared memory, ordered by edges.
    Crew(CrewProgress),
}

impl Policy {
    pub(crate) fn new(strategy: Strategy, harts: usize) -> Self {
        match strategy {
            Strategy::Chunk => Policy::Chunk,
            Strategy::Serial => Policy::Serial,
            Strategy::Crew => Policy::Crew(CrewProgress::new(harts)),
        }
    }

    /// Entries run on shared memory (no private copies, no write-back).
    pub(crate) fn direct(&self) -> bool {
        matches!(self, Policy::Crew(_))
    }

    /// Devices are accessed inside chunks (not only in device-access entries).
    pub(crate) fn devices_in_chunks(&self) -> bool {
        matches!(self, Policy::Serial)
    }

    /// Whether entry `seq` may start now (its wait would return at once).
    pub(crate) fn ready(&self, wm: &Watermark, seq: u64, record: &ChunkRecord) -> bool {
        match self {
            Policy::Chunk | Policy::Serial => wm.get() >= seq.saturating_sub(record.back),
            Policy::Crew(progress) => progress.ready(seq, record),
        }
    }

    /// Entry `seq` may start: waits for its turn. `Ok(false)`: the replay
    /// was aborted meanwhile.
    pub(crate) fn wait_start(
        &self,
        wm: &Watermark,
        seq: u64,
        record: &ChunkRecord,
    ) -> Result<bool, Divergence> {
        match self {
            Policy::Chunk | Policy::Serial => Ok(wm.wait_for(seq - record.back)),
            Policy::Crew(progress) => progress.wait_edges(wm, seq, record),
        }
    }
}

/// CREW: how far each hart, and the devices, have got.
pub(crate) struct CrewProgress {
    /// Per hart: the sequence number of its last finished entry and its
    /// instruction count then.
    done: Vec<(AtomicU64, AtomicU64)>,
    /// Sequence number of the last device access performed.
    device_done: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

/// [`CrewProgress`] at some moment, to go back to.
#[derive(Clone, Debug)]
pub(crate) struct CrewSaved {
    done: Vec<(u64, u64)>,
    device_done: u64,
}

impl CrewProgress {
    fn new(harts: usize) -> Self {
        Self {
            done: (0..harts)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            device_done: AtomicU64::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Waits until the entry's ordering edges (and, for a device access,
    /// every earlier device access) are satisfied; the dispatcher has
    /// checked they can be ([`CrewOrder::admit`]).
    fn wait_edges(
        &self,
        wm: &Watermark,
        seq: u64,
        record: &ChunkRecord,
    ) -> Result<bool, Divergence> {
        let ready = || self.ready(seq, record);
        if !spin_briefly(ready) {
            let mut guard = self.lock.lock();
            while !ready() {
                if wm.is_aborted() {
                    return Ok(false);
                }
                self.cv.wait_for(&mut guard, Duration::from_millis(20));
            }
        }
        // The hart waited for has executed at least the instructions the
        // recording says it had when it gave the page up.
        for e in &record.events {
            if let Event::After { hart, steps, .. } = *e {
                let reached = self.done[usize::from(hart)].1.load(Ordering::Acquire);
                if reached < steps {
                    return Err(Divergence::OrderingEdge {
                        hart,
                        steps,
                        reached,
                    });
                }
            }
        }
        Ok(true)
    }

    /// Whether the entry's ordering edges (and, for a device access, every
    /// earlier device access) are satisfied.
    fn ready(&self, seq: u64, record: &ChunkRecord) -> bool {
        let edges = record.events.iter().all(|e| match *e {
            Event::After { hart, back, .. } => {
                self.done[usize::from(hart)].0.load(Ordering::Acquire) >= seq - back
            }
            _ => true,
        });
        edges
            && (record.reason != Truncation::DeviceOp
                || self.device_done.load(Ordering::Acquire) == seq - record.back)
    }

    /// Hart `hart` has finished entry `seq` at instruction count `steps`.
    pub(crate) fn publish(&self, hart: usize, steps: u64, seq: u64, device: bool) {
        self.done[hart].1.store(steps, Ordering::Release);
        self.done[hart].0.store(seq, Ordering::Release);
        if device {
            self.device_done.store(seq, Ordering::Release);
        }
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }

    pub(crate) fn save(&self) -> CrewSaved {
        CrewSaved {
            done: self
                .done
                .iter()
                .map(|(s, n)| (s.load(Ordering::Acquire), n.load(Ordering::Acquire)))
                .collect(),
            device_done: self.device_done.load(Ordering::Acquire),
        }
    }

    pub(crate) fn restore(&self, saved: &CrewSaved) {
        for ((s, n), &(seq, steps)) in self.done.iter().zip(&saved.done) {
            s.store(seq, Ordering::Release);
            n.store(steps, Ordering::Release);
        }
        self.device_done.store(saved.device_done, Ordering::Release);
    }
}

/// What the dispatcher has handed out so far, to refuse an entry that no
/// replay could run. Every strategy: a chunk names a hart of the machine
/// and reaches back to an existing entry. CREW: each hart runs its entries
/// in sequence order, so if every wait of an entry is on something handed
/// out before it, the lowest unfinished entry can always run and replay
/// cannot deadlock (a malformed trace would otherwise wait forever).
#[derive(Clone, Debug)]
pub(crate) struct Admission {
    crew: bool,
    /// Per hart: the sequence number of its last entry handed out.
    last: Vec<u64>,
    /// The last device-access entry handed out (0: none yet).
    last_device: u64,
}

impl Admission {
    pub(crate) fn new(strategy: Strategy, harts: usize) -> Self {
        Self {
            crew: strategy == Strategy::Crew,
            last: vec![0; harts],
            last_device: 0,
        }
    }

    /// Checks chunk `seq` and records it as handed out.
    pub(crate) fn admit(&mut self, seq: u64, record: &ChunkRecord) -> Result<(), String> {
        let harts = self.last.len();
        if usize::from(record.hart) >= harts || record.back == 0 || record.back > seq {
            return Err(format!(
                "chunk of hart {} reaching back {} is impossible in a {harts}-hart trace",
                record.hart, record.back
            ));
        }
        if self.crew {
            self.admit_crew(seq, record)?;
        }
        self.last[usize::from(record.hart)] = seq;
        Ok(())
    }

    fn admit_crew(&mut self, seq: u64, record: &ChunkRecord) -> Result<(), String> {
        for e in &record.events {
            if let Event::After { hart, back, .. } = *e {
                let target = seq.saturating_sub(back);
                let last = self.last.get(usize::from(hart)).copied().unwrap_or(0);
                if back == 0 || back >= seq || last < target {
                    return Err(format!(
                        "ordering edge to hart {hart}'s entry {target}: that hart has no entry from {target} on before this one"
                    ));
                }
            }
        }
        if record.reason == Truncation::DeviceOp {
            if seq - record.back != self.last_device {
                return Err(format!(
                    "device access ordered after entry {}, but the device access before it is entry {}",
                    seq - record.back,
                    self.last_device
                ));
            }
            self.last_device = seq;
        }
        Ok(())
    }
}
