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
    let mut s = open();
    s.set_watches(vec![Watch {
        addr: GuestVirtAddr(RACY),
        len: 8,
        kind: WatchKind::Write,
    }]);
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
