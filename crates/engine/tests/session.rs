//! The replay session on a committed 4-hart trace of the racy counter
//! (no C toolchain needed): positions, observers, stops part-way through
//! entries, checkpoints, and that every way of getting to the end verifies.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use samsara_cpu::bus::AccessKind;
use samsara_engine::guest::FileOverrides;
use samsara_engine::replay::{
    EntryView, Flow, NoObserver, Observer, Position, ReplayConfig, ReplayOutcome, ReplaySession,
    Stop,
};
use samsara_trace::{Entry, TraceReader};
use samsara_types::{GuestVirtAddr, HartId};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/fixtures")
        .join(name)
}

fn config() -> ReplayConfig {
    ReplayConfig {
        cpu: Default::default(),
        trace: fixture("racy_counter-4harts.trace"),
        files: FileOverrides {
            image: Some(fixture("racy_counter.elf")),
            ..FileOverrides::default()
        },
        serial: false,
        echo: false,
    }
}

fn open() -> ReplaySession {
    ReplaySession::open(&config()).expect("the fixture opens")
}

/// Recorded length of every chunk, by sequence number (0 for DMA).
fn entry_steps() -> Vec<u64> {
    let mut reader = TraceReader::open(&config().trace).unwrap();
    let mut steps = vec![0];
    while let Some(block) = reader.next_block().unwrap() {
        if let samsara_trace::Block::Entries { entries, .. } = block {
            for e in entries {
                steps.push(match e {
                    Entry::Chunk(c) => c.steps,
                    Entry::Dma(_) => 0,
                });
            }
        }
    }
    steps
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

fn assert_verified(o: &ReplayOutcome) {
    assert!(
        o.verified(),
        "not verified: {:?} {:?}",
        o.mismatches,
        o.partial
    );
    assert!(o.output_len > 0);
}

fn finish(session: &mut ReplaySession) -> ReplayOutcome {
    assert_eq!(
        session
            .run(&mut NoObserver, Position::END, &never())
            .unwrap(),
        Stop::End
    );
    session.outcome(Duration::ZERO)
}

#[test]
fn sequential_and_parallel_runs_verify_alike() {
    let mut a = open();
    assert_eq!(a.position(), Position::START);
    let seq = finish(&mut a);
    assert_verified(&seq);
    let mut b = open();
    b.run_parallel(&never()).unwrap();
    let par = b.outcome(Duration::ZERO);
    assert_verified(&par);
    assert_eq!(seq.ram_blake3, par.ram_blake3);
    assert_eq!(seq.entries, par.entries);
}

#[test]
fn stops_part_way_through_an_entry_and_goes_on() {
    let steps = entry_steps();
    // A chunk long enough to be cut inside a run batch and across one.
    let seq = (1..steps.len())
        .find(|&s| steps[s] > 40_000)
        .expect("a long chunk") as u64;
    let mut s = open();
    for step in [1, 17, 16 * 1024 + 3, 20_000] {
        let at = Position { seq, step };
        assert_eq!(s.run(&mut NoObserver, at, &never()).unwrap(), Stop::Reached);
        assert_eq!(s.position(), at);
    }
    let hart = s.current_hart().expect("an entry in progress");
    let before = s.harts()[hart].steps().0;
    s.run(&mut NoObserver, Position::before(seq + 1), &never())
        .unwrap();
    assert_eq!(s.position(), Position::before(seq + 1));
    assert_eq!(
        s.harts()[hart].steps().0,
        before + steps[seq as usize] - 20_000
    );
    // The rest in parallel.
    s.run_parallel(&never()).unwrap();
    assert_verified(&s.outcome(Duration::ZERO));
}

/// Counts steps and entries; stops after `stop_every` steps.
#[derive(Default)]
struct Counter {
    steps: u64,
    starts: u64,
    ends: u64,
    stop_every: u64,
    last: Option<Position>,
}

impl Observer for Counter {
    const INSTRUCTIONS: bool = true;

    fn entry_start(&mut self, at: Position, _: EntryView<'_>) -> Flow {
        assert_eq!(at.step, 0);
        self.starts += 1;
        Flow::Continue
    }

    fn instruction(&mut self, at: Position, _: HartId, _: GuestVirtAddr) -> Flow {
        // Each step is shown once, in order, even across stops.
        assert!(
            self.last.is_none_or(|l| l < at),
            "{at} after {:?}",
            self.last
        );
        self.last = Some(at);
        self.steps += 1;
        if self.stop_every > 0 && self.steps.is_multiple_of(self.stop_every) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn entry_end(&mut self, _: Position, _: EntryView<'_>) -> Flow {
        self.ends += 1;
        Flow::Continue
    }
}

#[test]
fn an_instruction_observer_sees_every_step_once_and_can_stop_anywhere() {
    let steps = entry_steps();
    let until = Position::before(60);
    let expected: u64 = steps[1..60].iter().sum();
    let mut s = open();
    let mut counter = Counter {
        stop_every: 7_919,
        ..Counter::default()
    };
    let mut stops = 0;
    loop {
        match s.run(&mut counter, until, &never()).unwrap() {
            Stop::Observer => {
                stops += 1;
                let at = s.position();
                assert_eq!(
                    Some(at),
                    counter.last,
                    "stopped before the step it was shown"
                );
            }
            Stop::Reached => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(stops > 10);
    assert_eq!(counter.steps, expected);
    assert_eq!(counter.starts, 59);
    assert_eq!(counter.ends, 59);
    assert_verified(&finish(&mut s));
}

/// Pages touched, by kind.
#[derive(Default)]
struct Pages {
    writes: u64,
    fetches: u64,
}

impl Observer for Pages {
    const PAGES: bool = true;

    fn page(&mut self, _: Position, _: HartId, page: u64, kind: AccessKind) -> Flow {
        assert!(page >= 0x80000, "RAM starts at 0x8000_0000: page {page:#x}");
        match kind {
            AccessKind::Write => self.writes += 1,
            AccessKind::Execute => self.fetches += 1,
            AccessKind::Read => {}
        }
        Flow::Continue
    }
}

#[test]
fn a_page_observer_sees_first_touches_and_the_replay_still_verifies() {
    let mut s = open();
    let mut pages = Pages::default();
    assert_eq!(
        s.run(&mut pages, Position::END, &never()).unwrap(),
        Stop::End
    );
    let entries = entry_steps().len() as u64 - 1;
    // Every chunk fetches its code and the counter is written all along.
    assert!(pages.fetches >= entries / 2, "{} fetches", pages.fetches);
    assert!(pages.writes > 100, "{} writes", pages.writes);
    assert_verified(&s.outcome(Duration::ZERO));
}

#[test]
fn restoring_while_an_entry_is_part_way_through_leaves_no_trace_of_it() {
    let steps = entry_steps();
    // The longest entry: its hart has written private pages half-way.
    let (seq, len) = steps
        .iter()
        .enumerate()
        .max_by_key(|&(_, &n)| n)
        .map(|(i, &n)| (i as u64, n))
        .unwrap();
    let mid = Position { seq, step: len / 2 };
    let mut s = open();
    s.run(&mut NoObserver, Position::before(seq - 1), &never())
        .unwrap();
    let before = s.checkpoint().unwrap();
    s.run(&mut NoObserver, mid, &never()).unwrap();
    let hart = s.current_hart().unwrap();
    let digest = s.harts()[hart].digest();
    let mut page = vec![0u8; 4096];
    let racy_page = 0x8000_5000;
    s.read_phys(hart, samsara_types::GuestPhysAddr(racy_page), &mut page);
    for _ in 0..2 {
        s.restore(&before).unwrap();
        s.run(&mut NoObserver, mid, &never()).unwrap();
        assert_eq!(s.harts()[hart].digest(), digest);
        let mut again = vec![0u8; 4096];
        s.read_phys(hart, samsara_types::GuestPhysAddr(racy_page), &mut again);
        assert_eq!(again, page, "the entry's own writes, as the first time");
    }
    assert_verified(&finish(&mut s));
}

#[test]
fn checkpoints_restore_the_same_future() {
    let mut s = open();
    s.run(&mut NoObserver, Position::before(200), &never())
        .unwrap();
    let early = s.checkpoint().unwrap();
    assert_eq!(early.position(), Position::before(200));
    s.run(&mut NoObserver, Position { seq: 500, step: 5 }, &never())
        .unwrap();
    assert!(s.checkpoint().is_err(), "part-way through an entry");
    s.run(&mut NoObserver, Position::before(700), &never())
        .unwrap();
    let late = s.checkpoint().unwrap();
    let first = finish(&mut s);
    assert_verified(&first);
    // Back, forward again (in parallel this time), back to the later one.
    s.restore(&early).unwrap();
    assert_eq!(s.position(), Position::before(200));
    s.run_parallel(&never()).unwrap();
    let second = s.outcome(Duration::ZERO);
    assert_verified(&second);
    s.restore(&late).unwrap();
    let third = finish(&mut s);
    assert_verified(&third);
    for o in [&second, &third] {
        assert_eq!(o.ram_blake3, first.ram_blake3);
        assert_eq!(o.hart_digests, first.hart_digests);
        assert_eq!(o.output, first.output);
        assert_eq!(o.entries, first.entries);
    }
}

#[test]
fn an_interrupted_run_says_where() {
    let mut s = open();
    let stop = AtomicBool::new(true);
    assert_eq!(
        s.run(&mut NoObserver, Position::END, &stop).unwrap(),
        Stop::Interrupted
    );
    let o = s.outcome(Duration::ZERO);
    assert!(!o.verified());
    assert_eq!(o.partial.as_deref(), Some("interrupted after entry 0"));
}
