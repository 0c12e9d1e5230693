//! Every committed fuzz corpus input (and every crash the fuzzers found,
//! kept under `fuzz/regressions/`) through the fuzz targets' bodies: what
//! the fuzzers learned stays a regression test that needs no fuzzer.

use std::path::{Path, PathBuf};

fn inputs(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for sub in ["corpus", "regressions"] {
        let d = root.join(sub).join(dir);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("readable corpus directory").path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 10,
        "fuzz/corpus/{dir} holds {} inputs: the corpus is missing",
        files.len()
    );
    files
}

fn replay(dir: &str, target: fn(&[u8])) {
    for p in inputs(dir) {
        let data = std::fs::read(&p).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{} panicked", p.display());
    }
}

#[test]
fn trace_reader_corpus() {
    replay("trace_reader", samsara_fuzzing::trace::run);
}

#[test]
fn cpu_corpus() {
    replay("cpu", samsara_fuzzing::cpu::run);
}

/// The framed mode rebuilds a real trace from its description, so the
/// fuzzer's mutations of a description reach the decoder, not a checksum.
#[test]
fn framed_description_rebuilds_a_readable_trace() {
    use samsara_trace::{Block, TraceReader};
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/fixtures/racy_counter-4harts.trace");
    let file = std::fs::read(&fixture).expect("fixture trace");
    let description = samsara_fuzzing::trace::describe(&file).expect("describable");
    let rebuilt = samsara_fuzzing::trace::framed(&description[1..]);
    let count = |bytes: Vec<u8>| {
        let mut r = TraceReader::from_bytes("t", bytes).expect("header reads");
        let (mut entries, mut footer) = (0, false);
        while let Some(b) = r.next_block().expect("block reads") {
            match b {
                Block::Entries { entries: e, .. } => entries += e.len(),
                Block::Footer(_) => footer = true,
            }
        }
        assert!(footer);
        entries
    };
    let original = count(file);
    assert!(original > 0);
    assert_eq!(count(rebuilt), original);
}

/// A short, bounded fuzzing run in every `cargo test` (the CI's share of
/// fuzzing; the hour-long coverage-guided runs are `cargo fuzz`, see
/// `docs/robustness.md`): corpus inputs mutated at random — bit flips,
/// byte overwrites, insertions, deletions, truncations, splices of two
/// inputs — through the target for `SAMSARA_FUZZ_SECONDS` (default 3) of
/// wall time. A failing input is written to the temp dir and named, with
/// the seed (`SAMSARA_FUZZ_SEED` repeats a run's choices).
fn mutation_run(dir: &str, target: fn(&[u8])) {
    let corpus: Vec<Vec<u8>> = inputs(dir)
        .iter()
        .map(|p| std::fs::read(p).expect("readable corpus file"))
        .collect();
    let seconds: f64 = std::env::var("SAMSARA_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let seed: u64 = std::env::var("SAMSARA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{dir}: mutation run for {seconds} s, SAMSARA_FUZZ_SEED={seed}");
    let mut rng = XorShift(seed | 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let mut runs = 0u64;
    while std::time::Instant::now() < deadline {
        let input = mutate(&corpus, &mut rng);
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            let path = std::env::temp_dir().join(format!("samsara-fuzz-{dir}-{seed}-{runs}"));
            std::fs::write(&path, &input).expect("save the failing input");
            panic!(
                "{dir}: mutated input {runs} (SAMSARA_FUZZ_SEED={seed}) panicked; saved as {}",
                path.display()
            );
        }
        runs += 1;
    }
    println!("{dir}: {runs} mutated inputs, none panicked");
    assert!(runs > 0, "the mutation run executed nothing");
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(corpus: &[Vec<u8>], rng: &mut XorShift) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            4 => data.truncate(rng.below(len + 1)),
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

#[test]
fn trace_reader_mutation_run() {
    mutation_run("trace_reader", samsara_fuzzing::trace::run);
}

#[test]
fn cpu_mutation_run() {
    mutation_run("cpu", samsara_fuzzing::cpu::run);
}
