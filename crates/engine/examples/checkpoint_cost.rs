//! What incremental checkpoints cost on a trace, against a full copy of RAM
//! (what a checkpoint was before): bytes and time to take, time to restore.
//!   cargo run --release -p samsara-engine --example checkpoint_cost -- TRACE [CHECKPOINTS]
//! Checkpoints are taken at CHECKPOINTS (default 20) evenly spaced entry
//! boundaries, reached with `run_parallel_until`.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use samsara_engine::guest::FileOverrides;
use samsara_engine::replay::{EntryIndex, ReplayConfig, ReplaySession, Stop, unique_bytes};

fn main() {
    let mut args = std::env::args().skip(1);
    let trace = std::path::PathBuf::from(args.next().expect("usage: checkpoint_cost TRACE [N]"));
    let n: u64 = args.next().map_or(20, |a| a.parse().expect("N"));
    let config = ReplayConfig {
        cpu: Default::default(),
        trace: trace.clone(),
        files: FileOverrides::default(),
        serial: false,
        echo: false,
    };
    let t = Instant::now();
    let index = EntryIndex::build(&trace).expect("index");
    println!(
        "index: {} entries, {} steps, {} bytes, built in {:.3} s",
        index.entries(),
        index.total_steps(),
        index.bytes(),
        t.elapsed().as_secs_f64()
    );
    // The same replay in one parallel run, for the cost of N stops.
    let mut one = ReplaySession::open(&config).expect("open");
    let t = Instant::now();
    one.run_parallel(&AtomicBool::new(false)).expect("replay");
    let whole = t.elapsed();
    drop(one);
    let mut s = ReplaySession::open(&config).expect("open");
    let ram = s.board().ram.clone();
    let size = ram.size();
    let stop = AtomicBool::new(false);
    let mut full = vec![0u8; size as usize];
    let (mut take, mut copy) = (Duration::ZERO, Duration::ZERO);
    let mut checkpoints = Vec::new();
    let mut running = Duration::ZERO;
    for i in 0..n {
        let seq = 1 + index.entries() * i / n;
        let t = Instant::now();
        let r = s.run_parallel_until(seq, &stop).expect("replay");
        running += t.elapsed();
        assert_eq!(r, Stop::Reached);
        let before = unique_bytes(&checkpoints);
        let t = Instant::now();
        let c = s.checkpoint().expect("checkpoint");
        let dt = t.elapsed();
        let t = Instant::now();
        ram.read(ram.base(), &mut full).expect("read");
        let dfull = t.elapsed();
        if i > 0 {
            take += dt;
            copy += dfull;
        }
        checkpoints.push(c);
        let added = unique_bytes(&checkpoints) - before;
        println!(
            "checkpoint at entry {seq}: +{} KiB in {:.3} ms (full copy {} KiB in {:.3} ms)",
            added / 1024,
            dt.as_secs_f64() * 1e3,
            size / 1024,
            dfull.as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    assert_eq!(
        s.run_parallel_until(u64::MAX, &stop).expect("replay"),
        Stop::End
    );
    running += t.elapsed();
    println!(
        "replay in {n} parallel runs between the checkpoints: {:.3} s; in one: {:.3} s",
        running.as_secs_f64(),
        whole.as_secs_f64()
    );
    let unique = unique_bytes(&checkpoints);
    println!(
        "{} checkpoints: {} KiB unique (sum of each: {} KiB; full copies: {} KiB); \
         taking the incremental ones: {:.3} ms, full copies: {:.3} ms; replay {:.3} s",
        checkpoints.len(),
        unique / 1024,
        checkpoints.iter().map(|c| c.bytes()).sum::<u64>() / 1024,
        size * n / 1024,
        take.as_secs_f64() * 1e3,
        copy.as_secs_f64() * 1e3,
        running.as_secs_f64()
    );
    // Restores, newest to oldest and back: only differing pages are written.
    let (mut restore, mut write_all) = (Duration::ZERO, Duration::ZERO);
    let order: Vec<usize> = (0..checkpoints.len())
        .rev()
        .chain(0..checkpoints.len())
        .collect();
    for &i in &order {
        let t = Instant::now();
        s.restore(&checkpoints[i]).expect("restore");
        restore += t.elapsed();
    }
    // Restored checkpoints replay to a verified end (in a mixed order).
    for i in [checkpoints.len() / 2, 0, checkpoints.len() - 1, 1] {
        s.restore(&checkpoints[i]).expect("restore");
        s.run_parallel(&stop).expect("replay");
        let o = s.outcome(Duration::ZERO);
        assert!(o.verified(), "from checkpoint {i}: {:?}", o.mismatches);
    }
    println!("verified to the end from 4 restored checkpoints");
    // What restoring was: all of RAM written each time (after this, the
    // session's RAM is no longer what its checkpoints know).
    for _ in &order {
        let t = Instant::now();
        ram.write(ram.base(), &full).expect("write");
        write_all += t.elapsed();
    }
    println!(
        "{} restores: {:.3} ms (full RAM writes: {:.3} ms)",
        order.len(),
        restore.as_secs_f64() * 1e3,
        write_all.as_secs_f64() * 1e3
    );
}
