//! What reverse debugging stands on, on the committed 4-hart racy-counter
//! trace: incremental checkpoints restored in any order, parallel runs
//! stopped at an entry boundary, and the entry index.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use samsara_engine::guest::FileOverrides;
use samsara_engine::replay::{
    Checkpoint, EntryIndex, NoObserver, Position, ReplayConfig, ReplaySession, Stop, unique_bytes,
};

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

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// splitmix64: a fixed-seed generator, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_to(s: &mut ReplaySession, pos: Position) {
    assert_eq!(
        s.run(&mut NoObserver, pos, &never()).unwrap(),
        Stop::Reached
    );
    assert_eq!(s.position(), pos);
}

fn assert_verified_to_end(s: &mut ReplaySession) {
    assert_eq!(
        s.run(&mut NoObserver, Position::END, &never()).unwrap(),
        Stop::End
    );
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{:?} {:?}", o.mismatches, o.partial);
}

#[test]
fn checkpoints_restored_in_random_order_equal_a_fresh_replay() {
    let index = EntryIndex::build(&config().trace).unwrap();
    let entries = index.entries();
    assert!(entries > 100, "{entries} entries");
    let mut rng = Rng(14);
    // Boundaries to land on, and the state a fresh replay has there.
    let mut stops: Vec<u64> = (0..24).map(|_| 1 + rng.below(entries + 1)).collect();
    stops.push(1);
    stops.push(entries + 1);
    stops.sort_unstable();
    stops.dedup();
    let mut fresh = open();
    let expected: Vec<(Vec<u64>, String)> = stops
        .iter()
        .map(|&seq| {
            run_to(&mut fresh, Position::before(seq));
            fresh.state_digests()
        })
        .collect();
    let digests_at = |seq: u64| &expected[stops.binary_search(&seq).unwrap()];

    let mut s = open();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for &seq in stops.iter().step_by(3) {
        run_to(&mut s, Position::before(seq));
        checkpoints.push(s.checkpoint().unwrap());
    }
    for round in 0..60 {
        let c = &checkpoints[rng.below(checkpoints.len() as u64) as usize];
        let at = c.position().seq;
        s.restore(c).unwrap();
        assert_eq!(s.position(), c.position());
        assert_eq!(
            &s.state_digests(),
            digests_at(at),
            "round {round}: restored {at}"
        );
        match rng.below(4) {
            // Forward to a later boundary, maybe checkpoint there.
            0 | 1 => {
                let later: Vec<u64> = stops.iter().copied().filter(|&q| q > at).collect();
                if let Some(&q) = later.get(rng.below(later.len().max(1) as u64) as usize) {
                    if rng.below(2) == 0 {
                        run_to(&mut s, Position::before(q));
                    } else {
                        assert_eq!(s.run_parallel_until(q, &never()).unwrap(), Stop::Reached);
                    }
                    assert_eq!(
                        &s.state_digests(),
                        digests_at(q),
                        "round {round}: ran to {q}"
                    );
                    if rng.below(2) == 0 {
                        checkpoints.push(s.checkpoint().unwrap());
                    }
                }
            }
            // Part-way into an entry, then another restore must undo it.
            2 if at <= entries => {
                let steps = index.entry(at).unwrap().steps;
                run_to(
                    &mut s,
                    Position {
                        seq: at,
                        step: steps / 2,
                    },
                );
                if steps / 2 > 0 {
                    assert!(s.checkpoint().is_err());
                }
            }
            _ => {}
        }
    }
    // Shared pages count once: far less than a full copy each.
    let full = s.board().ram.size();
    let each: u64 = checkpoints.iter().map(Checkpoint::bytes).sum();
    let unique = unique_bytes(&checkpoints);
    assert!(unique < each, "{unique} unique, {each} summed");
    assert!(
        unique < full * checkpoints.len() as u64 / 4,
        "{unique} bytes"
    );
    let last = checkpoints.last().unwrap();
    s.restore(&checkpoints[0]).unwrap();
    s.restore(last).unwrap();
    assert_verified_to_end(&mut s);
}

#[test]
fn run_parallel_until_stops_at_the_boundary_and_hands_over() {
    let entries = EntryIndex::build(&config().trace).unwrap().entries();
    let ks = [2, entries / 3, entries / 2, entries - 1];
    let mut seq_session = open();
    let mut par = open();
    for &k in &ks {
        run_to(&mut seq_session, Position::before(k));
        assert_eq!(par.run_parallel_until(k, &never()).unwrap(), Stop::Reached);
        assert_eq!(par.position(), Position::before(k));
        assert_eq!(par.state_digests(), seq_session.state_digests(), "at {k}");
        let steps: Vec<u64> = par.harts().iter().map(|h| h.steps().0).collect();
        let expected: Vec<u64> = seq_session.harts().iter().map(|h| h.steps().0).collect();
        assert_eq!(steps, expected);
    }
    // Already there: nothing runs.
    assert_eq!(
        par.run_parallel_until(ks[0], &never()).unwrap(),
        Stop::Reached
    );
    // A checkpoint after the parallel run restores like one after the
    // sequential run, in the other session too.
    let a = par.checkpoint().unwrap();
    let b = seq_session.checkpoint().unwrap();
    let at_k = par.state_digests();
    par.restore(&a).unwrap();
    assert_eq!(par.state_digests(), at_k);
    seq_session.restore(&b).unwrap();
    assert_eq!(seq_session.state_digests(), at_k);
    // Sequential from here to the end verifies.
    let mid = Position {
        seq: ks[3],
        step: 1,
    };
    run_to(&mut par, mid);
    assert_verified_to_end(&mut par);
    // From mid-entry, a parallel run finishes the entry first.
    par.restore(&a).unwrap();
    run_to(&mut par, mid);
    assert_eq!(
        par.run_parallel_until(u64::MAX, &never()).unwrap(),
        Stop::End
    );
    assert!(par.outcome(Duration::ZERO).verified());
    // Interrupted: between entries, consistent, and goes on.
    let mut s = open();
    assert_eq!(
        s.run_parallel_until(entries / 2, &AtomicBool::new(true))
            .unwrap(),
        Stop::Interrupted
    );
    assert_eq!(s.position(), Position::START);
    s.run_parallel(&never()).unwrap();
    assert!(s.outcome(Duration::ZERO).verified());
}

#[test]
fn the_entry_index_counts_steps_as_the_harts_do() {
    let mut s = open();
    let index = s.build_index().unwrap();
    assert_eq!(index.harts(), 4);
    let mut rng = Rng(7);
    let mut positions: Vec<Position> = (0..40)
        .map(|_| {
            let seq = 1 + rng.below(index.entries());
            let steps = index.entry(seq).unwrap().steps;
            let step = match rng.below(3) {
                0 => 0,
                1 => steps,
                _ => rng.below(steps + 1),
            };
            Position { seq, step }
        })
        .collect();
    positions.sort_unstable();
    positions.dedup();
    for &pos in &positions {
        run_to(&mut s, pos);
        let steps: Vec<u64> = s.harts().iter().map(|h| h.steps().0).collect();
        assert_eq!(index.hart_steps_at(pos), steps, "at {pos}");
        // The hart running the entry: its step there, and the one before.
        if let Some(h) = index.entry(pos.seq).unwrap().hart
            && pos.step < index.entry(pos.seq).unwrap().steps
        {
            assert_eq!(index.position_of_hart_step(h, steps[h]), Some(pos));
        }
        for (h, &n) in steps.iter().enumerate() {
            let Some(back) = index.previous_step(h, pos) else {
                assert_eq!(n, 0);
                continue;
            };
            assert!(back < pos);
            assert_eq!(index.hart_steps(h, back), n - 1);
            assert_eq!(index.entry(back.seq).unwrap().hart, Some(h));
            assert!(back.step < index.entry(back.seq).unwrap().steps);
        }
    }
    assert_verified_to_end(&mut s);
    let o = s.outcome(Duration::ZERO);
    for (h, &n) in o.steps_per_hart.iter().enumerate() {
        assert_eq!(index.hart_total_steps(h), n);
        assert_eq!(index.position_of_hart_step(h, n), None);
    }
    assert_eq!(index.total_steps(), o.steps_per_hart.iter().sum::<u64>());
    assert_eq!(index.hart_steps_at(index.end()), o.steps_per_hart);
    assert_eq!(index.position_at_percent(0.0), index.position_at_step(0));
    assert_eq!(index.steps_at(index.position_at_step(0)), 0);
    let half = index.position_at_percent(50.0);
    assert_eq!(index.steps_at(half), index.total_steps() / 2);
    assert_eq!(index.position_at_percent(100.0), index.end());
    assert!(index.bytes() < index.entries() * 16 + 1024);
}
