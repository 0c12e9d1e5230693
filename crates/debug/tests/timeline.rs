//! The timeline on the committed 4-hart racy-counter trace: reverse steps
//! retrace forward steps exactly at pseudo-random positions (fixed seed),
//! landings do not depend on how checkpoints are kept, reverse-continue
//! finds the last watch hit, and the replay still verifies afterwards.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use samsara_debug::{ALL_HARTS, Landing, Timeline, TimelineOptions, Why};
use samsara_engine::guest::FileOverrides;
use samsara_engine::replay::{NoObserver, Position, ReplayConfig, Stop, Watch, WatchKind};
use samsara_types::GuestVirtAddr;

/// `racy` in the fixture's (stripped) ELF.
const RACY: u64 = 0x8000_5040;

fn config() -> ReplayConfig {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures");
    ReplayConfig {
        cpu: Default::default(),
        trace: dir.join("racy_counter-4harts.trace"),
        files: FileOverrides {
            image: Some(dir.join("racy_counter.elf")),
            ..FileOverrides::default()
        },
        serial: true,
        echo: false,
    }
}

fn open(interval: u64, memory: u64) -> Timeline {
    Timeline::open(
        &config(),
        TimelineOptions {
            checkpoint_memory: memory,
            checkpoint_interval: interval,
            parallel: true,
        },
    )
    .expect("the fixture opens")
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// Every hart's digest and step count, and the position.
fn state(t: &Timeline) -> (Position, Vec<(u64, u64)>) {
    let harts = t.session().harts();
    (
        t.position(),
        harts.iter().map(|h| (h.digest(), h.steps().0)).collect(),
    )
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn reverse_steps_retrace_forward_steps_at_random_positions() {
    let mut t = open(1 << 20, 1 << 30);
    let total = t.index().total_steps();
    let mut rng = Rng(0x7e1e_5eed);
    let mut rounds_run = 0;
    for round in 0..12 {
        // Not too near the end: every hart still has steps to take.
        let target = t.index().position_at_step(rng.below(total * 9 / 10));
        t.seek(target, &never()).unwrap();
        let hart = rng.below(4) as usize;
        let n = 1 + rng.below(300) as usize;
        let mut seen = vec![state(&t)];
        let mut ended = false;
        for _ in 0..n {
            let l = t.step(hart, ALL_HARTS, &never()).unwrap();
            if l.why == Why::End && seen.len() > 1 {
                // Past the hart's last recorded instruction (harts end at
                // different points of a recording): another round.
                ended = true;
                break;
            }
            assert_eq!((l.why, l.hart), (Why::Step, hart), "round {round}: {l:?}");
            seen.push(state(&t));
        }
        if ended {
            continue;
        }
        rounds_run += 1;
        let here = seen.pop().unwrap();
        assert_eq!(here, state(&t));
        while let Some(expected) = seen.pop() {
            let l = t.reverse_step(hart, &never()).unwrap();
            assert_eq!(l.why, Why::Step, "round {round}");
            // Other harts may stand elsewhere (the order goes back to the
            // hart's entry), but the stepping hart retraces its states.
            let got = state(&t);
            assert_eq!(
                got.1[hart],
                expected.1[hart],
                "round {round}, {} left",
                seen.len()
            );
        }
    }
    assert!(
        rounds_run >= 8,
        "only {rounds_run} of 12 rounds stepped their hart"
    );
}

#[test]
fn landings_do_not_depend_on_how_checkpoints_are_kept() {
    let run = |interval: u64, memory: u64| -> Vec<Landing> {
        let mut t = open(interval, memory);
        t.add_watch(Watch {
            addr: GuestVirtAddr(RACY),
            len: 8,
            kind: WatchKind::Write,
        });
        let mut landings = Vec::new();
        t.seek(t.index().position_at_percent(60.0), &never())
            .unwrap();
        for _ in 0..3 {
            landings.push(t.reverse_cont(&never()).unwrap());
        }
        for h in 0..4 {
            landings.push(t.reverse_step(h, &never()).unwrap());
        }
        landings.push(t.cont(ALL_HARTS, &never()).unwrap());
        landings
    };
    let dense = run(1 << 18, 1 << 30);
    // A budget of a few checkpoints' worth forces evictions.
    let tight = run(1 << 18, 3 << 20);
    let sparse = run(1 << 26, 1 << 30);
    assert_eq!(dense, tight);
    assert_eq!(dense, sparse);
    assert!(
        dense[..3]
            .iter()
            .all(|l| matches!(l.why, Why::Watch { .. }))
    );
}

#[test]
fn reverse_continue_from_the_end_finds_the_last_write_and_the_replay_still_verifies() {
    let mut t = open(1 << 22, 1 << 30);
    assert_eq!(t.cont(ALL_HARTS, &never()).unwrap().why, Why::End);
    let end = t.position();
    t.add_watch(Watch {
        addr: GuestVirtAddr(RACY),
        len: 8,
        kind: WatchKind::Write,
    });
    let last = t.reverse_cont(&never()).unwrap();
    assert!(
        matches!(
            last.why,
            Why::Watch {
                kind: WatchKind::Write,
                ..
            }
        ),
        "{last:?}"
    );
    assert!(last.position < end);
    // Execute the store: the counter then holds what the guest printed.
    let after = t.step(last.hart, ALL_HARTS, &never()).unwrap();
    assert_eq!(after.position.step, last.position.step + 1);
    let mut word = [0u8; 8];
    assert_eq!(
        t.session()
            .read_virt(last.hart, GuestVirtAddr(RACY), &mut word),
        8
    );
    let value = u64::from_le_bytes(word);
    // No write after it: going on reaches the end.
    assert_eq!(t.cont(ALL_HARTS, &never()).unwrap().why, Why::End);
    let mut session_end = [0u8; 8];
    t.session()
        .read_phys(0, samsara_types::GuestPhysAddr(RACY), &mut session_end);
    assert_eq!(u64::from_le_bytes(session_end), value);
    let outcome = t.session().outcome(Duration::ZERO);
    assert!(outcome.verified(), "{:?}", outcome.mismatches);
    let text = String::from_utf8_lossy(&outcome.output);
    assert!(text.contains(&format!("racy={value} ")), "{text}");
    // At the start history ends.
    t.seek(Position::START, &never()).unwrap();
    assert_eq!(t.reverse_cont(&never()).unwrap().why, Why::Begin);
    let _ = (NoObserver, Stop::End);
}
