//! Watchpoints and side-effect-free reads on the committed 4-hart trace of
//! the racy counter (`guests/progs/racy_counter.c`, chunk strategy).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use samsara_engine::guest::FileOverrides;
use samsara_engine::replay::{
    NoObserver, Position, ReplayConfig, ReplaySession, Stop, Watch, WatchHit, WatchKind,
};
use samsara_types::{GuestPhysAddr, GuestVirtAddr};

/// `racy` in the fixture's ELF (stripped: from `auipc s1` / `addi s1` in
/// `guest_main`'s loop `ld a5,0(s1); addi a5,a5,1; sd a5,0(s1)`).
const RACY: u64 = 0x8000_5040;
/// `atomic_total`, on the same page (amoadd.d).
const ATOMIC_TOTAL: u64 = 0x8000_5000;
/// The loop's `sd a5,0(s1)`.
const LOOP_STORE: u64 = 0x8000_00f0;
/// a5, the value the loop stores.
const A5: usize = 15;

fn open() -> ReplaySession {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures");
    ReplaySession::open(&ReplayConfig {
        cpu: Default::default(),
        trace: dir.join("racy_counter-4harts.trace"),
        files: FileOverrides {
            image: Some(dir.join("racy_counter.elf")),
            ..FileOverrides::default()
        },
        serial: false,
        echo: false,
    })
    .expect("the fixture opens")
}

/// The fixture with a watch of `kind` on the counter.
fn open_watching(kind: WatchKind) -> ReplaySession {
    let mut s = open();
    s.set_watches(vec![Watch {
        addr: GuestVirtAddr(RACY),
        len: 8,
        kind,
    }]);
    s
}

fn u64_at(s: &ReplaySession, hart: usize, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    assert_eq!(s.read_virt(hart, GuestVirtAddr(addr), &mut b), 8);
    u64::from_le_bytes(b)
}

/// The value after `racy=` in the recorded output.
fn printed_racy(output: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(output);
    let at = text.find("racy=").expect("racy= printed") + 5;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_write_watch_stops_at_every_write_of_the_counter_in_order() {
    let never = AtomicBool::new(false);
    let mut s = open_watching(WatchKind::Write);
    let mut hits = 0u64;
    let mut last: Option<WatchHit> = None;
    let mut stored = 0;
    let mut per_hart = [0u64; 4];
    loop {
        match s.run(&mut NoObserver, Position::END, &never).unwrap() {
            Stop::Watch(hit) => {
                assert_eq!(
                    (hit.addr, hit.len, hit.paddr, hit.kind, hit.watch),
                    (
                        GuestVirtAddr(RACY),
                        8,
                        GuestPhysAddr(RACY),
                        WatchKind::Write,
                        0
                    )
                );
                assert_eq!(s.position(), hit.at);
                assert_eq!(s.current_hart(), Some(hit.hart));
                assert!(last.is_none_or(|l| l.at < hit.at), "{hit:?} after {last:?}");
                // Memory holds what the previous write (in the recorded
                // order) stored, whichever hart did it and whether it is
                // written back yet (the hart's own writes are private).
                if hits > 0 {
                    assert_eq!(u64_at(&s, hit.hart, RACY), stored, "{hit:?}");
                }
                let pc = s.harts()[hit.hart].pc().raw();
                let a5 = s.harts()[hit.hart].xreg(A5);
                // Execute the store (it is not reported again) and look.
                let next = Position {
                    seq: hit.at.seq,
                    step: hit.at.step + 1,
                };
                assert_eq!(s.run(&mut NoObserver, next, &never).unwrap(), Stop::Reached);
                stored = u64_at(&s, hit.hart, RACY);
                if hits == 0 {
                    // The runtime clearing .bss on hart 0.
                    assert_eq!((hit.hart, stored), (0, 0));
                } else {
                    assert_eq!((pc, stored), (LOOP_STORE, a5), "{hit:?}");
                }
                hits += 1;
                per_hart[hit.hart] += 1;
                last = Some(hit);
            }
            Stop::End => break,
            other => panic!("{other:?}"),
        }
    }
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{:?} {:?}", o.mismatches, o.partial);
    // Every iteration of every hart wrote once (and hart 0 cleared .bss).
    assert_eq!(per_hart, [1_000_001, 1_000_000, 1_000_000, 1_000_000]);
    assert_eq!(hits, 4_000_001);
    let last = last.unwrap();
    let racy = printed_racy(&o.output);
    assert_eq!(stored, racy, "the last write (hart {})", last.hart);
    assert_eq!(u64_at(&s, 0, RACY), racy);
}

/// Runs to the next watch hit.
fn next_hit(s: &mut ReplaySession) -> WatchHit {
    match s.run(&mut NoObserver, Position::END, &AtomicBool::new(false)) {
        Ok(Stop::Watch(hit)) => hit,
        other => panic!("{other:?}"),
    }
}

/// Runs to the end (no watch may hit) and checks the replay verified.
fn finish_verified(s: &mut ReplaySession) {
    assert_eq!(
        s.run(&mut NoObserver, Position::END, &AtomicBool::new(false))
            .unwrap(),
        Stop::End
    );
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{:?} {:?}", o.mismatches, o.partial);
}

#[test]
fn reads_are_of_the_harts_view_and_change_nothing() {
    let mut s = open_watching(WatchKind::Write);
    // A hit after an earlier write by the same hart in the same entry: its
    // private copy of the page differs from shared RAM.
    let mut prev = next_hit(&mut s);
    let hit = loop {
        let hit = next_hit(&mut s);
        if hit.at.seq == prev.at.seq && hit.hart == prev.hart {
            break hit;
        }
        prev = hit;
    };
    let h = hit.hart;
    let other = (h + 1) % 4;
    let mut shared = [0u8; 8];
    s.board()
        .ram
        .read(GuestPhysAddr(RACY), &mut shared)
        .unwrap();
    let shared = u64::from_le_bytes(shared);
    let mine = u64_at(&s, h, RACY);
    assert_ne!(mine, shared, "the entry's own write is not written back");
    assert_eq!(u64_at(&s, other, RACY), shared, "other harts see RAM");

    // Bare: virtual is physical, across a page boundary too.
    for hart in [h, other] {
        let mut v = vec![0u8; 0x300];
        let mut p = vec![0u8; 0x300];
        assert_eq!(
            s.read_virt(hart, GuestVirtAddr(ATOMIC_TOTAL - 0x100), &mut v),
            0x300
        );
        assert_eq!(
            s.read_phys(hart, GuestPhysAddr(ATOMIC_TOTAL - 0x100), &mut p),
            0x300
        );
        assert_eq!(v, p);
        assert_eq!(
            u64::from_le_bytes(v[0x140..0x148].try_into().unwrap()),
            u64_at(&s, hart, RACY)
        );
    }
    // RAM ends; devices are not read.
    let end = s.board().ram.end();
    let mut buf = [0u8; 8];
    assert_eq!(s.read_phys(h, GuestPhysAddr(end - 4), &mut buf), 4);
    assert_eq!(s.read_virt(h, GuestVirtAddr(end - 4), &mut buf), 4);
    assert_eq!(s.read_phys(h, GuestPhysAddr(0x1000_0000), &mut buf), 0);
    assert_eq!(
        s.read_virt(9, GuestVirtAddr(RACY), &mut buf),
        0,
        "no such hart"
    );

    // Reading changed nothing: the replay goes on from the hit and verifies.
    assert_eq!(s.position(), hit.at);
    s.set_watches(Vec::new());
    finish_verified(&mut s);
}

#[test]
fn read_and_access_watches_and_amos() {
    let mut s = open();
    let watch = |addr, kind| Watch {
        addr: GuestVirtAddr(addr),
        len: 8,
        kind,
    };
    s.set_watches(vec![watch(RACY, WatchKind::Read)]);
    for _ in 0..20 {
        let hit = next_hit(&mut s);
        assert_eq!(hit.kind, WatchKind::Read);
        assert_eq!(s.harts()[hit.hart].pc().raw(), LOOP_STORE - 4, "the ld");
    }
    // An access watch catches the loop's ld and sd in turn.
    s.set_watches(vec![watch(RACY, WatchKind::Access)]);
    let mut kinds = Vec::new();
    for _ in 0..40 {
        let hit = next_hit(&mut s);
        kinds.push((hit.hart, hit.kind));
    }
    assert!(
        kinds
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1 == WatchKind::Read && w[1].1 == WatchKind::Write)
    );
    // The amoadd.d on atomic_total reads and writes; the second watch in
    // the list is the one reported.
    for (kind, reported) in [
        (WatchKind::Read, WatchKind::Read),
        (WatchKind::Write, WatchKind::Write),
    ] {
        s.set_watches(vec![watch(0x8000_0000, kind), watch(ATOMIC_TOTAL, kind)]);
        for _ in 0..10 {
            let hit = next_hit(&mut s);
            assert_eq!((hit.kind, hit.watch), (reported, 1));
            assert_eq!(s.harts()[hit.hart].pc().raw(), LOOP_STORE + 2, "the amoadd");
        }
    }
    // A watch next to the counter on its page (the barrier's bytes after
    // it): the loop's accesses on that page are never reported.
    s.set_watches(vec![Watch {
        addr: GuestVirtAddr(RACY + 8),
        len: 56,
        kind: WatchKind::Access,
    }]);
    loop {
        match s.run(&mut NoObserver, Position::END, &AtomicBool::new(false)) {
            Ok(Stop::Watch(hit)) => {
                let pc = s.harts()[hit.hart].pc().raw();
                assert!(!(LOOP_STORE - 4..=LOOP_STORE + 2).contains(&pc), "{hit:?}");
                assert!(hit.addr.raw() + hit.len > RACY + 8 && hit.addr.raw() < RACY + 64);
            }
            Ok(Stop::End) => break,
            other => panic!("{other:?}"),
        }
    }
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{:?} {:?}", o.mismatches, o.partial);
}

/// Counts the instructions it is shown, in order.
#[derive(Default)]
struct Steps {
    count: u64,
    last: Option<Position>,
}

impl samsara_engine::replay::Observer for Steps {
    const INSTRUCTIONS: bool = true;

    fn instruction(
        &mut self,
        at: Position,
        _: samsara_types::HartId,
        _: GuestVirtAddr,
    ) -> samsara_engine::replay::Flow {
        assert!(
            self.last.is_none_or(|l| l < at),
            "{at} after {:?}",
            self.last
        );
        self.last = Some(at);
        self.count += 1;
        samsara_engine::replay::Flow::Continue
    }
}

#[test]
fn an_instruction_observer_sees_a_caught_instruction_once() {
    let mut s = open_watching(WatchKind::Access);
    let until = Position::before(40);
    let mut observer = Steps::default();
    let mut hits = 0;
    loop {
        match s
            .run(&mut observer, until, &AtomicBool::new(false))
            .unwrap()
        {
            Stop::Watch(hit) => {
                // Shown before it was caught.
                assert_eq!(observer.last, Some(hit.at));
                hits += 1;
            }
            Stop::Reached => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(hits > 1000);
    let steps: u64 = s.harts().iter().map(|h| h.steps().0).sum();
    assert_eq!(observer.count, steps);
    s.set_watches(Vec::new());
    finish_verified(&mut s);
}

/// Where an instruction observer first sees `pc` executed, `n` times.
struct PcSeen {
    pc: u64,
    seen: Vec<(Position, usize)>,
    n: usize,
}

impl samsara_engine::replay::Observer for PcSeen {
    const INSTRUCTIONS: bool = true;

    fn instruction(
        &mut self,
        at: Position,
        hart: samsara_types::HartId,
        pc: GuestVirtAddr,
    ) -> samsara_engine::replay::Flow {
        if pc.raw() == self.pc {
            self.seen.push((at, hart.0 as usize));
        }
        if self.seen.len() >= self.n {
            samsara_engine::replay::Flow::Stop
        } else {
            samsara_engine::replay::Flow::Continue
        }
    }
}

#[test]
fn breakpoints_stop_where_an_instruction_observer_sees_the_pc_and_the_replay_verifies() {
    let never = AtomicBool::new(false);
    let n = 2000;
    let mut reference = open();
    let mut seen = PcSeen {
        pc: LOOP_STORE,
        seen: Vec::new(),
        n,
    };
    reference.run(&mut seen, Position::END, &never).unwrap();
    assert_eq!(seen.seen.len(), n);

    let mut s = open();
    s.set_breakpoints(&[LOOP_STORE, 0x10]);
    let mut hits = Vec::new();
    while hits.len() < n {
        match s.run(&mut NoObserver, Position::END, &never).unwrap() {
            Stop::Breakpoint(hit) => {
                assert_eq!(hit.pc, GuestVirtAddr(LOOP_STORE));
                assert_eq!(s.position(), hit.at);
                assert_eq!(s.harts()[hit.hart].pc(), hit.pc);
                hits.push((hit.at, hit.hart));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(hits, seen.seen);
    // Watches and breakpoints together on the same store: both reported,
    // the breakpoint first, each once. The store stopped at last is passed
    // its breakpoint, not its watch.
    s.set_watches(vec![Watch {
        addr: GuestVirtAddr(RACY),
        len: 8,
        kind: WatchKind::Write,
    }]);
    let next = |s: &mut ReplaySession| s.run(&mut NoObserver, Position::END, &never).unwrap();
    let last = *hits.last().unwrap();
    assert!(matches!(next(&mut s), Stop::Watch(w) if (w.at, w.hart) == last));
    let Stop::Breakpoint(bp) = next(&mut s) else {
        panic!("a breakpoint first")
    };
    assert!(bp.at > last.0);
    assert!(matches!(next(&mut s), Stop::Watch(w) if (w.at, w.hart) == (bp.at, bp.hart)));
    assert!(matches!(next(&mut s), Stop::Breakpoint(b) if b.at > bp.at));
    s.set_watches(Vec::new());
    s.set_breakpoints(&[]);
    assert_eq!(
        s.run(&mut NoObserver, Position::END, &never).unwrap(),
        Stop::End
    );
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{:?}", o.mismatches);
}
