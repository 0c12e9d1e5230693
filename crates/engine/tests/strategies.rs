//! Recording at library level, with a guest assembled here (no C
//! toolchain): harts increment a shared counter with plain loads and
//! stores — a data race whose outcome depends on the interleaving — then
//! hart 0 waits for every hart and powers the machine off. Each strategy
//! must commit, squash or order its entries so that replay, parallel and
//! sequential, reproduces the run exactly.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use samsara_cpu::CpuEngine;
use samsara_engine::guest::{FileOverrides, Guest};
use samsara_engine::record::{RecordConfig, RecordOutcome, Strategy, default_chunk_size, record};
use samsara_engine::replay::{
    NoObserver, Position, ReplayConfig, ReplaySession, Stop, Watch, WatchKind, replay,
};
use samsara_trace::{Block, Entry, Event, RecordedExit, TraceReader};

// RV64 encodings of the few instructions the guest needs.
const ZERO: u32 = 0;
const T0: u32 = 5;
const T1: u32 = 6;
const T2: u32 = 7;
const S0: u32 = 8;
const S1: u32 = 9;
const A5: u32 = 15;
const T3: u32 = 28;
const T4: u32 = 29;
const T5: u32 = 30;
const T6: u32 = 31;

fn i_type(imm: i32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 0, rd, 0x13)
}
fn slli(rd: u32, rs1: u32, shamt: i32) -> u32 {
    i_type(shamt, rs1, 1, rd, 0x13)
}
fn lw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 2, rd, 0x03)
}
fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((imm & 0x1f) << 7) | 0x23
}
fn lui(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x37
}
fn branch(funct3: u32, rs1: u32, rs2: u32, offset: i32) -> u32 {
    let o = offset as u32;
    ((o >> 12 & 1) << 31)
        | ((o >> 5 & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | ((o >> 1 & 0xf) << 8)
        | ((o >> 11 & 1) << 7)
        | 0x63
}
fn bne(rs1: u32, rs2: u32, offset: i32) -> u32 {
    branch(1, rs1, rs2, offset)
}
fn jal_self() -> u32 {
    0x6f // jal x0, 0
}
fn csrr_mhartid(rd: u32) -> u32 {
    (0xf14 << 20) | (2 << 12) | (rd << 7) | 0x73
}
fn amoadd_w(rd: u32, rs2: u32, rs1: u32) -> u32 {
    (0x20 << 27) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x2f
}

fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
    (rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33
}
fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 0, rd, 0x67)
}
const FENCE_I: u32 = 0x0000_100f;
const RA: u32 = 1;
const A0: u32 = 10;
const A1: u32 = 11;
const A2: u32 = 12;

/// Increments per hart: long enough (about a million instructions) for
/// the harts' loops to overlap on any host.
const ROUNDS: u32 = 50 * 4096;

/// The racy counter for `harts` harts, `rounds` increments each.
fn racy_counter(harts: u32, rounds: u32) -> Vec<u8> {
    assert!(rounds.is_multiple_of(4096) && rounds < 1 << 31);
    let code = [
        csrr_mhartid(T0),
        lui(S0, 0x8001),
        slli(S0, S0, 4),              // s0: the counter, 0x8001_0000
        addi(T4, S0, 64),             // t4: harts done
        addi(S1, ZERO, harts as i32), // s1: harts
        lui(T1, rounds >> 12),
        // loop: a plain read-modify-write, racing with the other harts
        lw(T2, S0, 0),
        addi(T2, T2, 1),
        sw(T2, S0, 0),
        addi(T1, T1, -1),
        bne(T1, ZERO, -16),
        addi(T3, ZERO, 1),
        amoadd_w(ZERO, T3, T4),
        bne(T0, ZERO, 28), // other harts park
        // hart 0 waits for everyone, then powers off
        lw(T5, T4, 0),
        bne(T5, S1, -4),
        lui(T6, 0x100),
        lui(A5, 0x5),
        addi(A5, A5, 0x555),
        sw(A5, T6, 0),
        jal_self(), // park
    ];
    code.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The last value hart 0 writes into the shared code cell.
const CELL_VALUES: i32 = 48;

/// Cross-modifying code for `harts` harts: hart 0 rewrites the code cell
/// at 0x8000_1000 (`addi a0, zero, k; ret`) with k = 1..=CELL_VALUES, a
/// delay loop between writes; the other harts call the cell in a loop
/// (with `fence.i`, as the ISA asks of a hart that wants others' code),
/// summing what it returns until it returns the last value, then store
/// their sums at 0x8001_0080 + 8·hartid. When each reader sees each new
/// value depends on the interleaving; a reader that never saw new code
/// would never finish.
fn code_rewriter(harts: u32) -> Vec<u8> {
    let code = [
        csrr_mhartid(T0),
        lui(S0, 0x8001),
        slli(S0, S0, 4),  // s0: data, 0x8001_0000
        addi(T4, S0, 64), // t4: readers done
        lui(T6, 0x8000),
        addi(T6, T6, 0x100),
        slli(T6, T6, 4),                  // t6: the cell, 0x8000_1000
        addi(S1, ZERO, harts as i32 - 1), // s1: readers
        addi(A2, ZERO, CELL_VALUES),
        bne(T0, ZERO, 72), // readers go on at 27
        // 10: the writer
        addi(T1, ZERO, 1),
        addi(T2, A2, 1),
        slli(T3, T1, 20), // 12: "addi a0, zero, k"
        addi(T3, T3, 0x513),
        sw(T3, T6, 0),
        lui(T5, 1),
        addi(T5, T5, -1), // 16: delay
        bne(T5, ZERO, -4),
        addi(T1, T1, 1),
        bne(T1, T2, -28),
        lw(T5, T4, 0), // 20: wait for the readers
        bne(T5, S1, -4),
        lui(T6, 0x100),
        lui(A5, 0x5),
        addi(A5, A5, 0x555),
        sw(A5, T6, 0), // power off
        jal_self(),
        // 27: a reader
        addi(A1, ZERO, 0),
        FENCE_I, // 28
        jalr(RA, T6, 0),
        add(A1, A1, A0),
        bne(A0, A2, -12),
        slli(T3, T0, 3),
        add(T3, T3, S0),
        sw(A1, T3, 128),
        addi(T3, ZERO, 1),
        amoadd_w(ZERO, T3, T4),
        jal_self(),
    ];
    let mut image: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    image.resize(0x1000, 0);
    for w in [addi(A0, ZERO, 0), jalr(ZERO, RA, 0)] {
        image.extend(w.to_le_bytes());
    }
    image
}

fn record_it(
    dir: &Path,
    strategy: Strategy,
    harts: u32,
    seed: u64,
) -> (std::path::PathBuf, RecordOutcome) {
    record_rounds(dir, strategy, harts, seed, ROUNDS)
}

/// As [`record_it`], `rounds` increments per hart.
fn record_rounds(
    dir: &Path,
    strategy: Strategy,
    harts: u32,
    seed: u64,
    rounds: u32,
) -> (std::path::PathBuf, RecordOutcome) {
    let image = dir.join(format!("racy-{rounds}.bin"));
    std::fs::write(&image, racy_counter(harts, rounds)).unwrap();
    let trace = dir.join(format!("{strategy}-{harts}-{seed}-{rounds}.trace"));
    let config = RecordConfig {
        cpu: Default::default(),
        strategy,
        guest: Guest::Image(image),
        trace: trace.clone(),
        harts,
        ram_size: 16 << 20,
        disk: None,
        disk_readonly: false,
        chunk_size: match strategy {
            // Small chunks: many commits and conflicts in a short run.
            Strategy::Chunk => 5_000,
            _ => default_chunk_size(strategy).min(3_000),
        },
        max_instructions: Some(50_000_000),
        timeout: Some(Duration::from_secs(60)),
        check_every: 1,
        perturb: Some(seed),
        echo: false,
        stdin: false,
        console: None,
        standby: None,
    };
    let outcome = record(&config, &AtomicBool::new(false)).expect("recording");
    assert_eq!(
        outcome.footer.exit,
        RecordedExit::Poweroff,
        "{strategy} {harts} harts"
    );
    (trace, outcome)
}

fn replay_config(trace: &Path) -> ReplayConfig {
    replay_with(trace, CpuEngine::default())
}

fn replay_with(trace: &Path, cpu: CpuEngine) -> ReplayConfig {
    ReplayConfig {
        cpu,
        trace: trace.to_path_buf(),
        files: FileOverrides::default(),
        serial: false,
        echo: false,
    }
}

/// The counter's final value, read from RAM at the end of a sequential replay.
fn replayed_counter(trace: &Path) -> u32 {
    let mut s = ReplaySession::open(&replay_config(trace)).unwrap();
    s.run(&mut NoObserver, Position::END, &AtomicBool::new(false))
        .unwrap();
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{}: {:?}", trace.display(), o.mismatches);
    let mut word = [0u8; 4];
    s.board()
        .ram
        .read(samsara_types::GuestPhysAddr(0x8001_0000), &mut word)
        .unwrap();
    u32::from_le_bytes(word)
}

fn entries(trace: &Path) -> Vec<Entry> {
    let mut r = TraceReader::open(trace).unwrap();
    let mut all = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        if let Block::Entries { entries, .. } = b {
            all.extend(entries);
        }
    }
    all
}

fn replays_exactly(trace: &Path, recorded: &RecordOutcome) -> u32 {
    let o = replay(&replay_config(trace), &AtomicBool::new(false)).unwrap();
    assert!(o.verified(), "{}: {:?}", trace.display(), o.mismatches);
    assert_eq!(o.ram_blake3, recorded.footer.ram_blake3);
    replayed_counter(trace)
}

#[test]
fn chunks_commit_squash_and_replay_the_race() {
    let dir = tempfile::tempdir().unwrap();
    let mut squashes = 0;
    for seed in 1..=4 {
        let (trace, rec) = record_it(dir.path(), Strategy::Chunk, 4, seed);
        squashes += rec.footer.stats.squashes;
        // Registers carry a loaded value across a chunk boundary (perturbed
        // sizes put boundaries anywhere in the loop), so updates are lost
        // as on hardware; which ones, the replay must reproduce.
        let counter = replays_exactly(&trace, &rec);
        assert!(counter <= 4 * ROUNDS);
    }
    assert!(squashes > 0, "four harts on one counter never conflicted");
}

/// Harts see code another hart rewrote, in record and replay, with
/// translated code kept across chunk starts (`CodeWatch`, chunk strategy)
/// and `fence.i` dropping nothing there; the recording replays exactly
/// on both engines.
#[test]
fn code_rewritten_by_another_hart_is_seen_and_replays_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("rewriter.bin");
    std::fs::write(&image, code_rewriter(4)).unwrap();
    let mut saw_values_change = false;
    for (strategy, seed) in [
        (Strategy::Chunk, 1),
        (Strategy::Chunk, 2),
        (Strategy::Serial, 3),
    ] {
        let trace = dir.path().join(format!("rewriter-{strategy}-{seed}.trace"));
        let config = RecordConfig {
            cpu: CpuEngine::Translator,
            strategy,
            guest: Guest::Image(image.clone()),
            trace: trace.clone(),
            harts: 4,
            ram_size: 16 << 20,
            disk: None,
            disk_readonly: false,
            chunk_size: 5_000,
            max_instructions: Some(50_000_000),
            timeout: Some(Duration::from_secs(60)),
            check_every: 1,
            perturb: Some(seed),
            echo: false,
            stdin: false,
            console: None,
            standby: None,
        };
        let rec = record(&config, &AtomicBool::new(false)).expect("recording");
        assert_eq!(
            rec.footer.exit,
            RecordedExit::Poweroff,
            "{strategy}: a reader never saw the last value"
        );
        let mut sums = Vec::new();
        for cpu in [CpuEngine::Translator, CpuEngine::Interpreter] {
            let o = replay(&replay_with(&trace, cpu), &AtomicBool::new(false)).unwrap();
            assert!(o.verified(), "{strategy} {cpu:?}: {:?}", o.mismatches);
            assert_eq!(o.ram_blake3, rec.footer.ram_blake3, "{strategy} {cpu:?}");
            let mut s = ReplaySession::open(&replay_with(&trace, cpu)).unwrap();
            s.run(&mut NoObserver, Position::END, &AtomicBool::new(false))
                .unwrap();
            let mut word = [0u8; 4];
            sums.push(
                (1..4u64)
                    .map(|h| {
                        s.board()
                            .ram
                            .read(samsara_types::GuestPhysAddr(0x8001_0080 + 8 * h), &mut word)
                            .unwrap();
                        u32::from_le_bytes(word)
                    })
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            sums[0], sums[1],
            "{strategy}: the engines replayed other sums"
        );
        // Each reader returned the last value (a reader whose host thread
        // started late may have seen only that one).
        assert!(
            sums[0].iter().all(|&s| s >= CELL_VALUES as u32),
            "{strategy}: {sums:?}"
        );
        saw_values_change |= sums[0].iter().any(|&s| s > CELL_VALUES as u32);
    }
    assert!(saw_values_change, "no reader saw the code change under it");
}

#[test]
fn serial_quanta_replay_the_race() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=2 {
        let (trace, rec) = record_it(dir.path(), Strategy::Serial, 3, seed);
        assert!(
            entries(&trace)
                .iter()
                .all(|e| !matches!(e, Entry::Chunk(c) if c.back != 1)),
            "serial entries never overlap"
        );
        let counter = replays_exactly(&trace, &rec);
        assert!(counter <= 3 * ROUNDS);
    }
}

#[test]
fn crew_orders_every_transfer_and_replays_the_race() {
    let dir = tempfile::tempdir().unwrap();
    let mut lost_updates = false;
    for seed in 1..=4 {
        let (trace, rec) = record_it(dir.path(), Strategy::Crew, 4, seed);
        let edges = entries(&trace)
            .iter()
            .map(|e| match e {
                Entry::Chunk(c) => c
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::After { .. }))
                    .count(),
                Entry::Dma(_) => 0,
            })
            .sum::<usize>();
        assert!(
            edges > 0,
            "the counter's page moved between harts without an edge"
        );
        let counter = replays_exactly(&trace, &rec);
        lost_updates |= counter < 4 * ROUNDS;
    }
    // CREW lets harts truly race on shared memory: updates get lost (the
    // replay reproduces exactly which).
    assert!(lost_updates, "four racing harts never lost an update");
}

/// Watches in replay stop at every write of the counter, in the recorded
/// order, whatever the strategy's bus does with pages (private copies for
/// chunks and serial quanta, shared RAM for CREW); the replay verifies.
#[test]
fn a_write_watch_sees_every_store_under_every_strategy() {
    const COUNTER: u64 = 0x8001_0000;
    let dir = tempfile::tempdir().unwrap();
    for strategy in [Strategy::Chunk, Strategy::Serial, Strategy::Crew] {
        let (trace, _) = record_rounds(dir.path(), strategy, 3, 1, 4096);
        let mut s = ReplaySession::open(&replay_config(&trace)).unwrap();
        s.set_watches(vec![Watch {
            addr: samsara_types::GuestVirtAddr(COUNTER),
            len: 4,
            kind: WatchKind::Write,
        }]);
        let read = |s: &ReplaySession, hart| {
            let mut w = [0u8; 4];
            assert_eq!(
                s.read_virt(hart, samsara_types::GuestVirtAddr(COUNTER), &mut w),
                4
            );
            u32::from_le_bytes(w)
        };
        let never = AtomicBool::new(false);
        let mut per_hart = [0u32; 3];
        let mut last: Option<Position> = None;
        let mut stored = 0;
        loop {
            match s.run(&mut NoObserver, Position::END, &never).unwrap() {
                Stop::Watch(hit) => {
                    assert!(last.is_none_or(|l| l < hit.at), "{strategy}: {hit:?}");
                    last = Some(hit.at);
                    assert_eq!(read(&s, hit.hart), stored, "{strategy}: {hit:?}");
                    let t2 = s.harts()[hit.hart].xreg(T2 as usize) as u32;
                    let next = Position {
                        seq: hit.at.seq,
                        step: hit.at.step + 1,
                    };
                    assert_eq!(s.run(&mut NoObserver, next, &never).unwrap(), Stop::Reached);
                    stored = read(&s, hit.hart);
                    assert_eq!(stored, t2, "{strategy}: {hit:?}");
                    per_hart[hit.hart] += 1;
                }
                Stop::End => break,
                other => panic!("{strategy}: {other:?}"),
            }
        }
        assert_eq!(per_hart, [4096; 3], "{strategy}");
        let o = s.outcome(Duration::ZERO);
        assert!(o.verified(), "{strategy}: {:?}", o.mismatches);
        assert_eq!(stored, replayed_counter(&trace), "{strategy}");
    }
}

/// Checkpoints taken at entry boundaries (after sequential and parallel
/// runs), restored in a fixed pseudo-random order, give the hart digests
/// and RAM hash a fresh sequential replay has there, whichever way the
/// strategy writes RAM (write-back of private pages, CREW's direct writes).
fn checkpoints_restore_exactly(trace: &Path) {
    use samsara_engine::replay::Stop;
    let stop = AtomicBool::new(false);
    let n = entries(trace).len() as u64;
    let mut x: u64 = 0x5eed;
    let mut rand = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut stops: Vec<u64> = (0..8).map(|_| 1 + rand(n)).collect();
    stops.sort_unstable();
    stops.dedup();
    let mut fresh = ReplaySession::open(&replay_config(trace)).unwrap();
    let expected: Vec<_> = stops
        .iter()
        .map(|&q| {
            fresh
                .run(&mut NoObserver, Position::before(q), &stop)
                .unwrap();
            fresh.state_digests()
        })
        .collect();
    let mut s = ReplaySession::open(&replay_config(trace)).unwrap();
    let mut checkpoints = Vec::new();
    for (i, &q) in stops.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(s.run_parallel_until(q, &stop).unwrap(), Stop::Reached);
        } else {
            s.run(&mut NoObserver, Position::before(q), &stop).unwrap();
        }
        assert_eq!(
            s.state_digests(),
            expected[i],
            "{}: at {q}",
            trace.display()
        );
        checkpoints.push(s.checkpoint().unwrap());
    }
    for _ in 0..12 {
        let i = rand(stops.len() as u64) as usize;
        s.restore(&checkpoints[i]).unwrap();
        assert_eq!(s.state_digests(), expected[i], "restored {}", stops[i]);
        if i + 1 < stops.len() {
            let j = i + 1 + rand((stops.len() - i - 1) as u64) as usize;
            assert_eq!(
                s.run_parallel_until(stops[j], &stop).unwrap(),
                Stop::Reached
            );
            assert_eq!(s.state_digests(), expected[j], "ran to {}", stops[j]);
        }
    }
    s.restore(&checkpoints[0]).unwrap();
    s.run_parallel(&stop).unwrap();
    let o = s.outcome(Duration::ZERO);
    assert!(o.verified(), "{}: {:?}", trace.display(), o.mismatches);
}

#[test]
fn checkpoints_restore_exactly_under_every_strategy() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in [Strategy::Chunk, Strategy::Serial, Strategy::Crew] {
        let (trace, _) = record_it(dir.path(), strategy, 3, 1);
        checkpoints_restore_exactly(&trace);
    }
}
