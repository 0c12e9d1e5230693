//! `races`: plain (non-atomic) accesses by different harts to the same
//! bytes, at least one a write, that no synchronisation orders in the
//! recorded execution — happens-before with vector clocks, as FastTrack
//! and ThreadSanitizer define it, over the recording's own order (the
//! replay shows every data access to RAM, in that order).
//!
//! What synchronises (docs/analysis.md, "races"):
//! - an atomic instruction (AMO, LR, SC) on an address acquires what was
//!   released there and releases the hart's clock there (all are taken as
//!   acquire-release, whatever their `aq`/`rl` bits);
//! - a release store — a plain store that is the hart's next access after
//!   a release fence (`fence` with R or W before, W after: the `fence
//!   rw,w; sw` of a spinlock's unlock, C's release store) — releases the
//!   clock at the fence there;
//! - an acquire load — a plain load directly followed by an acquire fence
//!   (R before, R or W after: C's `lw; fence r,rw`) — acquires what was
//!   released there; other plain loads' releases are acquired by the
//!   hart's next acquire fence (C11's relaxed load then acquire fence);
//! - release stores and acquire loads are what C calls atomic: like the
//!   A extension's instructions, they synchronise and do not race;
//! - device accesses release into and acquire from one device clock; an
//!   entry whose interrupt lines changed acquires it; a device's DMA is
//!   a thread of its own that acquires it before writing and releases it
//!   after.
//!
//! Shadow memory is kept per 8-byte granule with byte masks: the last
//! write and the reads since it, each a hart's epoch and the pc.

use std::collections::BTreeMap;
use std::io::Write;

use rustc_hash::FxHashMap;
use samsara_cpu::bus::{AccessKind, Atomicity};
use samsara_engine::replay::probe::{AccessProbe, AccessSeen, Finding, ProbeConfig};
use samsara_trace::{Entry, Event, Truncation};
use serde_json::json;

/// A vector clock: one count per thread (the harts, then DMA).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Clock(Vec<u32>);

impl Clock {
    fn new(threads: usize) -> Self {
        Clock(vec![0; threads])
    }

    fn join(&mut self, other: &Clock) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = (*a).max(*b);
        }
    }
}

/// An access in the shadow memory: which thread at which of its epochs,
/// which bytes of the granule, from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Epoch {
    thread: u8,
    mask: u8,
    clock: u32,
    pc: u64,
}

impl Epoch {
    /// Whether it happened before a thread whose clock is `now`.
    fn before(&self, now: &Clock) -> bool {
        self.clock <= now.0[usize::from(self.thread)]
    }
}

/// The accesses to one granule that later ones must be ordered after:
/// the last write of each byte, and the reads of each byte since.
#[derive(Clone, Debug, Default)]
struct Granule {
    /// Disjoint masks.
    writes: Vec<Epoch>,
    /// At most one per thread.
    reads: Vec<Epoch>,
}

/// Takes `mask` out of every epoch's mask, dropping those left empty.
fn forget(epochs: &mut Vec<Epoch>, mask: u8) {
    epochs.retain_mut(|e| {
        e.mask &= !mask;
        e.mask != 0
    });
}

/// A race between two pcs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Race {
    /// The earlier access: thread (`None`: DMA), pc, write?
    pub first: (Option<u8>, u64, bool),
    /// The later one, where the race showed.
    pub second: (Option<u8>, u64, bool),
    /// An example: the later access's position, virtual and physical
    /// address and length.
    pub seq: u64,
    /// ...
    pub step: u64,
    /// ...
    pub vaddr: u64,
    /// ...
    pub paddr: u64,
    /// ...
    pub len: u64,
    /// How many times this pair raced.
    pub count: u64,
}

/// A page accessed by more than one hart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedPage {
    /// Harts that read it (bit per hart, the first 64) ...
    pub readers: u64,
    /// ... and wrote it.
    pub writers: u64,
    /// Data accesses to it.
    pub accesses: u64,
}

/// Per thread: its clock, the clock of a release fence its next access
/// follows directly, and what its plain loads since its last fence would
/// acquire.
struct Thread {
    clock: Clock,
    release_store: Option<Clock>,
    acquirable: Option<Clock>,
}

/// The analysis.
pub struct Races {
    harts: usize,
    threads: Vec<Thread>,
    /// Release clocks of synchronising locations (physical addresses).
    releases: FxHashMap<u64, Clock>,
    device: Clock,
    shadow: FxHashMap<u64, Granule>,
    /// Keyed by (first pc, second pc, first writes, second writes).
    races: BTreeMap<(u64, u64, bool, bool), Race>,
    sharing: Option<BTreeMap<u64, SharedPage>>,
    /// Data accesses looked at.
    pub accesses: u64,
    /// Synchronising operations seen.
    pub syncs: u64,
}

impl Races {
    /// For a recording of `harts` harts; with `sharing`, also list pages
    /// several harts access.
    pub fn new(harts: usize, sharing: bool) -> Self {
        let threads = harts + 1;
        Self {
            harts,
            threads: (0..threads)
                .map(|t| {
                    let mut clock = Clock::new(threads);
                    clock.0[t] = 1;
                    Thread {
                        clock,
                        release_store: None,
                        acquirable: None,
                    }
                })
                .collect(),
            releases: FxHashMap::default(),
            device: Clock::new(threads),
            shadow: FxHashMap::default(),
            races: BTreeMap::new(),
            sharing: sharing.then(BTreeMap::new),
            accesses: 0,
            syncs: 0,
        }
    }

    /// Every data access to RAM, and the fences.
    pub fn probe(&self) -> ProbeConfig {
        ProbeConfig {
            accesses: AccessProbe::All,
            loads: true,
            fences: true,
            ..ProbeConfig::default()
        }
    }

    fn dma_thread(&self) -> usize {
        self.harts
    }

    /// Thread `t` releases into `into` and acquires from it (an atomic
    /// access or a device access), then moves on to a new epoch.
    fn acquire_release(thread: &mut Thread, into: &mut Clock, t: usize) {
        thread.clock.join(into);
        into.join(&thread.clock);
        thread.clock.0[t] += 1;
    }

    /// Entry `seq` with the probe's findings.
    pub fn see(&mut self, seq: u64, entry: &Entry, findings: &[Finding]) {
        match entry {
            Entry::Chunk(c) => {
                let t = usize::from(c.hart);
                if t >= self.harts {
                    return;
                }
                let lines_changed = c
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Lines(_) | Event::LinesUpdate(_)));
                if lines_changed {
                    self.threads[t].clock.join(&self.device);
                }
                for (k, f) in findings.iter().enumerate() {
                    match f {
                        Finding::Access(a) => {
                            let acquire_load = matches!(
                                findings.get(k + 1),
                                Some(Finding::Fence(next)) if acquires(next.pred, next.succ)
                            );
                            self.access(seq, t, a, acquire_load);
                        }
                        Finding::Fence(f) => self.fence(t, f.pred, f.succ),
                        Finding::Switch(_) => {}
                    }
                }
                // A device access: an entry of its own under the chunk
                // strategy; inside chunks under the serial one, where the
                // log shows only the loads (and line updates) of devices.
                let device = c.reason == Truncation::DeviceOp
                    || c.events.iter().any(|e| {
                        matches!(
                            e,
                            Event::MmioRead(_) | Event::MmioFault | Event::LinesUpdate(_)
                        )
                    });
                if device {
                    self.syncs += 1;
                    Self::acquire_release(&mut self.threads[t], &mut self.device, t);
                }
            }
            Entry::Dma(d) => {
                let t = self.dma_thread();
                self.threads[t].clock.join(&self.device);
                for (addr, bytes) in &d.writes {
                    let mut at = *addr;
                    let end = addr.saturating_add(bytes.len() as u64);
                    while at < end {
                        let granule_end = (at | 7).saturating_add(1);
                        let len = granule_end.min(end) - at;
                        self.plain(seq, 0, t, at, at, len, true, 0);
                        at += len;
                    }
                }
                self.syncs += 1;
                Self::acquire_release(&mut self.threads[t], &mut self.device, t);
            }
        }
    }

    fn fence(&mut self, t: usize, pred: u8, succ: u8) {
        let release = releases(pred, succ);
        self.syncs += u64::from(release);
        let thread = &mut self.threads[t];
        if acquires(pred, succ)
            && let Some(acquired) = thread.acquirable.take()
        {
            thread.clock.join(&acquired);
        }
        thread.release_store = None;
        if release {
            thread.release_store = Some(thread.clock.clone());
            thread.clock.0[t] += 1;
        }
    }

    /// Access `a` by thread `t`; `acquire_load`: a load the hart's next
    /// step, an acquire fence, makes an acquire.
    fn access(&mut self, seq: u64, t: usize, a: &AccessSeen, acquire_load: bool) {
        self.accesses += 1;
        let write = a.kind == AccessKind::Write;
        let acquire_load = acquire_load && !write;
        if let Some(sharing) = &mut self.sharing {
            let page = sharing.entry(a.paddr >> 12).or_default();
            page.accesses += 1;
            if write {
                page.writers |= 1u64.checked_shl(t as u32).unwrap_or(0);
            } else {
                page.readers |= 1u64.checked_shl(t as u32).unwrap_or(0);
            }
        }
        let threads = self.threads.len();
        // Only the access right after a release fence is a release store.
        let fence_clock = self.threads[t].release_store.take();
        if a.atomic != Atomicity::Plain {
            self.syncs += 1;
            let into = self
                .releases
                .entry(a.paddr)
                .or_insert_with(|| Clock::new(threads));
            Self::acquire_release(&mut self.threads[t], into, t);
            return;
        }
        if write && let Some(released) = fence_clock {
            self.syncs += 1;
            self.releases
                .entry(a.paddr)
                .or_insert_with(|| Clock::new(threads))
                .join(&released);
            return;
        }
        if !write && let Some(released) = self.releases.get(&a.paddr) {
            if acquire_load {
                self.syncs += 1;
                self.threads[t].clock.join(released);
                return;
            }
            self.threads[t]
                .acquirable
                .get_or_insert_with(|| Clock::new(threads))
                .join(released);
        } else if acquire_load {
            // An acquire load of what no release wrote: it synchronises
            // with nothing, and as an atomic it races with nothing.
            return;
        }
        let (mut at, end) = (a.paddr, a.paddr.saturating_add(u64::from(a.len)));
        while at < end {
            let granule_end = (at | 7).saturating_add(1);
            let len = granule_end.min(end) - at;
            let vaddr = a.vaddr + (at - a.paddr);
            self.plain(seq, a.step, t, vaddr, at, len, write, a.pc);
            at += len;
        }
    }

    /// A plain access by thread `t` within one granule.
    #[allow(clippy::too_many_arguments)]
    fn plain(
        &mut self,
        seq: u64,
        step: u64,
        t: usize,
        vaddr: u64,
        paddr: u64,
        len: u64,
        write: bool,
        pc: u64,
    ) {
        let shift = paddr & 7;
        let mask = (((1u16 << len) - 1) << shift) as u8;
        let now = &self.threads[t].clock;
        let me = Epoch {
            thread: t as u8,
            mask,
            clock: now.0[t],
            pc,
        };
        let granule = self.shadow.entry(paddr >> 3).or_default();
        let unordered =
            |e: &Epoch| usize::from(e.thread) != t && e.mask & mask != 0 && !e.before(now);
        let mut raced: Vec<(Epoch, bool)> = Vec::new();
        raced.extend(
            granule
                .writes
                .iter()
                .filter(|w| unordered(w))
                .map(|w| (*w, true)),
        );
        if write {
            raced.extend(
                granule
                    .reads
                    .iter()
                    .filter(|r| unordered(r))
                    .map(|r| (*r, false)),
            );
            // These bytes' earlier accesses are ordered before this write
            // or reported: later ones need only be checked against it.
            forget(&mut granule.writes, mask);
            forget(&mut granule.reads, mask);
            granule.writes.push(me);
        } else {
            // The hart's earlier reads of these bytes are ordered before
            // this one: it replaces them; its reads of other bytes keep
            // their own epoch and pc.
            granule.reads.retain_mut(|r| {
                if usize::from(r.thread) == t {
                    r.mask &= !mask;
                }
                r.mask != 0
            });
            granule.reads.push(me);
        }
        let thread_of = |t: u8| (usize::from(t) < self.harts).then_some(t);
        for (earlier, earlier_wrote) in raced {
            let key = (earlier.pc, pc, earlier_wrote, write);
            self.races
                .entry(key)
                .and_modify(|r| r.count += 1)
                .or_insert(Race {
                    first: (thread_of(earlier.thread), earlier.pc, earlier_wrote),
                    second: (thread_of(t as u8), pc, write),
                    seq,
                    step,
                    vaddr,
                    paddr,
                    len,
                    count: 1,
                });
        }
    }

    /// The races found, one per pair of pcs and kinds, most frequent first.
    pub fn races(&self) -> Vec<&Race> {
        let mut races: Vec<&Race> = self.races.values().collect();
        races.sort_by(|a, b| b.count.cmp(&a.count).then(a.seq.cmp(&b.seq)));
        races
    }

    /// Pages accessed by more than one hart, by accesses (with `--sharing`).
    pub fn shared_pages(&self) -> Vec<(u64, &SharedPage)> {
        let Some(sharing) = &self.sharing else {
            return Vec::new();
        };
        let mut pages: Vec<(u64, &SharedPage)> = sharing
            .iter()
            .filter(|(_, p)| (p.readers | p.writers).count_ones() > 1)
            .map(|(&page, p)| (page << 12, p))
            .collect();
        pages.sort_by(|a, b| b.1.accesses.cmp(&a.1.accesses).then(a.0.cmp(&b.0)));
        pages
    }

    /// Lines for people: each race with `describe` naming its pcs and
    /// addresses (a symbol, when the caller knows one).
    pub fn listing(
        &self,
        out: &mut impl Write,
        describe: &dyn Fn(u64) -> String,
    ) -> std::io::Result<()> {
        let side = |(thread, pc, wrote): (Option<u8>, u64, bool)| {
            let who = thread.map_or("dma".to_string(), |h| format!("hart {h}"));
            let what = if wrote { "write" } else { "read" };
            if thread.is_some() {
                format!("{what} by {who} at {}", describe(pc))
            } else {
                format!("{what} by {who}")
            }
        };
        for r in self.races() {
            writeln!(
                out,
                "race: {} / {}: {} bytes at {} (phys {:#x}); {} times, e.g. at {}.{}",
                side(r.first),
                side(r.second),
                r.len,
                describe(r.vaddr),
                r.paddr,
                r.count,
                r.seq,
                r.step
            )?;
        }
        for (page, p) in self.shared_pages() {
            writeln!(
                out,
                "shared page {page:#x}: {} accesses; read by harts {}, written by harts {}",
                p.accesses,
                harts_of(p.readers),
                harts_of(p.writers)
            )?;
        }
        Ok(())
    }

    /// A few lines for people.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "races: {} racing pairs of pcs ({} racing accesses) among {} data accesses and {} synchronising operations",
            self.races.len(),
            self.races.values().map(|r| r.count).sum::<u64>(),
            self.accesses,
            self.syncs
        )];
        if self.sharing.is_some() {
            lines.push(format!(
                "races: {} pages shared between harts",
                self.shared_pages().len()
            ));
        }
        lines
    }

    /// One JSON object per race (and per shared page).
    pub fn jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        let side = |(thread, pc, wrote): (Option<u8>, u64, bool)| json!({"hart": thread, "pc": pc, "kind": if wrote { "write" } else { "read" }});
        for r in self.races() {
            let line = json!({
                "analysis": "races",
                "first": side(r.first),
                "second": side(r.second),
                "seq": r.seq,
                "step": r.step,
                "vaddr": r.vaddr,
                "paddr": r.paddr,
                "len": r.len,
                "count": r.count,
            });
            writeln!(out, "{line}")?;
        }
        for (page, p) in self.shared_pages() {
            let line = json!({
                "analysis": "sharing",
                "page": page,
                "accesses": p.accesses,
                "readers": bits(p.readers),
                "writers": bits(p.writers),
            });
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// A fence that orders earlier loads before later accesses.
fn acquires(pred: u8, succ: u8) -> bool {
    const R: u8 = 2;
    const W: u8 = 1;
    pred & R != 0 && succ & (R | W) != 0
}

/// A fence that orders earlier accesses before later stores.
fn releases(pred: u8, succ: u8) -> bool {
    const R: u8 = 2;
    const W: u8 = 1;
    pred & (R | W) != 0 && succ & W != 0
}

fn bits(mask: u64) -> Vec<u32> {
    (0..64).filter(|b| mask & (1 << b) != 0).collect()
}

fn harts_of(mask: u64) -> String {
    let list: Vec<String> = bits(mask).iter().map(u32::to_string).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(",")
    }
}

#[cfg(test)]
mod tests {
    use samsara_cpu::Privilege;
    use samsara_engine::replay::probe::FenceSeen;
    use samsara_trace::{ChunkRecord, DmaRecord};

    use super::*;

    const DATA: u64 = 0x8000_1000;
    const FLAG: u64 = 0x8000_2000;
    const LOCK: u64 = 0x8000_3000;

    fn access(paddr: u64, len: u8, kind: AccessKind, atomic: Atomicity, pc: u64) -> Finding {
        Finding::Access(AccessSeen {
            step: 0,
            pc,
            privilege: Privilege::Machine,
            vaddr: paddr,
            paddr,
            len,
            kind,
            atomic,
            old: 0,
            new: 0,
        })
    }
    fn load(paddr: u64, pc: u64) -> Finding {
        access(paddr, 8, AccessKind::Read, Atomicity::Plain, pc)
    }
    fn store(paddr: u64, pc: u64) -> Finding {
        access(paddr, 8, AccessKind::Write, Atomicity::Plain, pc)
    }
    fn amoswap(paddr: u64) -> Finding {
        access(paddr, 4, AccessKind::Write, Atomicity::Amo, 0x99)
    }
    fn fence(pred: u8, succ: u8) -> Finding {
        Finding::Fence(FenceSeen {
            step: 0,
            pred,
            succ,
        })
    }
    const RW: u8 = 3;
    const R: u8 = 2;
    const W: u8 = 1;

    fn chunk(hart: u8, reason: Truncation, events: Vec<Event>) -> Entry {
        Entry::Chunk(ChunkRecord {
            hart,
            steps: 1,
            back: 0,
            reason,
            exclusive: false,
            events,
            check: None,
        })
    }

    /// Runs `entries` (hart or DMA, findings) through the analysis; the
    /// races as (first pc, second pc).
    fn races(entries: Vec<(Entry, Vec<Finding>)>) -> Vec<(u64, u64)> {
        let mut analysis = Races::new(2, false);
        for (seq, (entry, findings)) in entries.iter().enumerate() {
            analysis.see(seq as u64 + 1, entry, findings);
        }
        analysis
            .races()
            .iter()
            .map(|r| (r.first.1, r.second.1))
            .collect()
    }

    fn on(hart: u8, findings: Vec<Finding>) -> (Entry, Vec<Finding>) {
        (chunk(hart, Truncation::SizeLimit, vec![]), findings)
    }

    #[test]
    fn unordered_plain_accesses_race_and_ordered_ones_do_not() {
        // Write/write and write/read by two harts, no synchronisation.
        assert_eq!(
            races(vec![
                on(0, vec![store(DATA, 1)]),
                on(1, vec![store(DATA, 2)])
            ]),
            vec![(1, 2)]
        );
        assert_eq!(
            races(vec![
                on(0, vec![load(DATA, 1)]),
                on(1, vec![store(DATA, 2)])
            ]),
            vec![(1, 2)]
        );
        // A store followed by a fence is still a plain store.
        assert_eq!(
            races(vec![
                on(0, vec![store(DATA, 1), fence(RW, RW)]),
                on(1, vec![store(DATA, 2)])
            ]),
            vec![(1, 2)]
        );
        // Reads do not race with reads, nor a hart with itself.
        assert!(races(vec![on(0, vec![load(DATA, 1)]), on(1, vec![load(DATA, 2)])]).is_empty());
        assert!(
            races(vec![
                on(0, vec![store(DATA, 1)]),
                on(0, vec![load(DATA, 2)])
            ])
            .is_empty()
        );
    }

    #[test]
    fn bytes_of_one_granule_are_told_apart() {
        let byte = |paddr, kind, pc| access(paddr, 1, kind, Atomicity::Plain, pc);
        // Different bytes of one 8-byte granule: no race.
        assert!(
            races(vec![
                on(0, vec![byte(DATA, AccessKind::Write, 1)]),
                on(1, vec![byte(DATA + 4, AccessKind::Write, 2)]),
            ])
            .is_empty()
        );
        // A write of byte 0 by hart 0 does not hide hart 1's read of byte
        // 4 from hart 0's later write of byte 4.
        assert_eq!(
            races(vec![
                on(1, vec![byte(DATA + 4, AccessKind::Read, 7)]),
                on(0, vec![byte(DATA, AccessKind::Write, 1)]),
                on(0, vec![byte(DATA + 4, AccessKind::Write, 2)]),
            ]),
            vec![(7, 2)]
        );
    }

    #[test]
    fn a_harts_reads_of_other_bytes_keep_their_own_order() {
        // Hart 0 reads `a` (bytes 0-3) under the lock, unlocks, then reads
        // `b` (bytes 4-7); hart 1 takes the lock and writes `a`: ordered.
        let word = |paddr, kind, pc| access(paddr, 4, kind, Atomicity::Plain, pc);
        assert!(
            races(vec![
                on(
                    0,
                    vec![
                        amoswap(LOCK),
                        word(DATA, AccessKind::Read, 1),
                        fence(RW, W),
                        store(LOCK, 0x50),
                        word(DATA + 4, AccessKind::Read, 2),
                    ]
                ),
                on(1, vec![amoswap(LOCK), word(DATA, AccessKind::Write, 3)]),
            ])
            .is_empty()
        );
    }

    #[test]
    fn only_an_acquire_fence_ends_what_loads_may_acquire() {
        // A relaxed load, a pause and a store fence, then the acquire.
        let producer = on(0, vec![store(DATA, 1), fence(RW, W), store(FLAG, 2)]);
        let consumer = on(
            1,
            vec![
                load(FLAG, 3),
                fence(W, 0),
                fence(W, W),
                load(FLAG + 8, 5),
                fence(R, RW),
                load(DATA, 4),
            ],
        );
        assert!(races(vec![producer, consumer]).is_empty());
    }

    #[test]
    fn a_spinlock_orders_its_critical_sections() {
        let critical = |hart: u8, pc| {
            on(
                hart,
                vec![
                    amoswap(LOCK),
                    load(DATA, pc),
                    store(DATA, pc + 1),
                    // spin_unlock: fence rw,w; sw zero.
                    fence(RW, W),
                    store(LOCK, 0x50),
                ],
            )
        };
        let both = || vec![critical(0, 1), critical(1, 3)];
        assert!(races(both()).is_empty());
        // Without the unlock's fence the store is plain: the data races.
        let mut unfenced = both();
        unfenced[0].1.remove(3);
        assert!(races(unfenced).contains(&(2, 3)));
    }

    #[test]
    fn release_stores_and_acquire_loads_pass_messages_without_racing() {
        let producer = on(0, vec![store(DATA, 1), fence(RW, W), store(FLAG, 2)]);
        let consumer = on(1, vec![load(FLAG, 3), fence(R, RW), load(DATA, 4)]);
        assert!(races(vec![producer.clone(), consumer.clone()]).is_empty());
        // Without fences (racy message passing) data and flag race.
        let producer = on(0, vec![store(DATA, 1), store(FLAG, 2)]);
        let consumer = on(1, vec![load(FLAG, 3), load(DATA, 4)]);
        let found = races(vec![producer, consumer]);
        assert!(
            found.contains(&(1, 4)) && found.contains(&(2, 3)),
            "{found:?}"
        );
        // A relaxed load and a later acquire fence synchronise too (the
        // flag's store, a release, races with no load).
        let producer = on(0, vec![store(DATA, 1), fence(RW, W), store(FLAG, 2)]);
        let consumer = on(
            1,
            vec![
                load(FLAG, 3),
                load(FLAG + 8, 5),
                fence(R, RW),
                load(DATA, 4),
            ],
        );
        assert!(races(vec![producer, consumer]).is_empty());
    }

    #[test]
    fn devices_and_dma_order_harts() {
        // Hart 0 writes, then rings a device (an IPI); hart 1 sees its
        // interrupt line change, then reads.
        let ring = (chunk(0, Truncation::DeviceOp, vec![]), vec![]);
        let woken = |findings| {
            (
                chunk(1, Truncation::SizeLimit, vec![Event::Lines(8)]),
                findings,
            )
        };
        assert!(
            races(vec![
                on(0, vec![store(DATA, 1)]),
                ring.clone(),
                woken(vec![load(DATA, 2)])
            ])
            .is_empty()
        );
        assert_eq!(
            races(vec![
                on(0, vec![store(DATA, 1)]),
                ring,
                on(1, vec![load(DATA, 2)])
            ]),
            vec![(1, 2)]
        );
        // DMA after a device request, read after the completion interrupt.
        let dma = (
            Entry::Dma(DmaRecord {
                writes: vec![(DATA, vec![0; 8])],
            }),
            vec![],
        );
        let request = (chunk(1, Truncation::DeviceOp, vec![]), vec![]);
        assert!(
            races(vec![
                on(1, vec![load(DATA, 2)]),
                request.clone(),
                dma.clone(),
                woken(vec![load(DATA, 3)])
            ])
            .is_empty()
        );
        // A read the completion does not order races with the DMA.
        let found = races(vec![request, dma, on(0, vec![load(DATA, 4)])]);
        assert_eq!(found, vec![(0, 4)]);
    }
}
