//! Every committed fuzz corpus input (and every crash the fuzzers found,
//! kept under `fuzz/regressions/`) through the fuzz targets' bodies: what
//! the fuzzers learned stays a regression test that needs no fuzzer.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    dir.canonicalize().unwrap_or(dir)
}

fn inputs(dir: &str) -> Vec<PathBuf> {
    let root = fuzz_dir();
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

#[test]
fn cpu_diff_corpus() {
    replay("cpu_diff", samsara_fuzzing::cpu_diff::run);
}

/// Writes the generated part of the `cpu_diff` seed corpus
/// (`fuzz/corpus/cpu_diff/gen-N`, see `samsara_fuzzing::cpu_diff`).
#[test]
#[ignore = "rewrites fuzz/corpus/cpu_diff/gen-*"]
fn regenerate_cpu_diff_seeds() {
    let dir = fuzz_dir().join("corpus/cpu_diff");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for n in 0..CPU_DIFF_GENERATED_SEEDS {
        let input = samsara_fuzzing::cpu_diff::seed_input(n);
        std::fs::write(dir.join(format!("gen-{n:03}")), input).expect("write a seed");
    }
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

/// Seeds of the bounded mutation runs in every `cargo test`: fixed, so
/// that CI is deterministic (the same inputs every time, given the
/// committed corpus). 1796585989192157216 is the seed of a random run that
/// found the footer-hex panic (issue 13); the input it made then is in
/// `fuzz/regressions/trace_reader/` (a seed repeats an input only against
/// the corpus of its time).
const SEEDS: [u64; 8] = [
    1796585989192157216,
    0x76e5_0b03_c566_bd54,
    0xc6b0_c569_f30f_d2a7,
    0x14f3_5b92_1d58_6858,
    0xf9b1_f67d_3bef_c68e,
    0x3d0a_daf0_a887_0d5a,
    0xc8ee_b9ab_989f_10ed,
    0x754d_4edf_9293_2948,
];

/// Mutated inputs per seed: a few seconds per target on the build host.
const TRACE_READER_RUNS: u64 = 16_000;
const CPU_RUNS: u64 = 120;
const CPU_DIFF_RUNS: u64 = 128;
/// Generated inputs in `fuzz/corpus/cpu_diff/` (`gen-000` on).
const CPU_DIFF_GENERATED_SEEDS: u64 = 48;

/// A short, bounded fuzzing run in every `cargo test` (the CI's share of
/// fuzzing; the open-ended random runs are `scripts/fuzz.sh quick`, the
/// coverage-guided ones `scripts/fuzz.sh guided`, see
/// `docs/robustness.md`): for each of [`SEEDS`], `runs` corpus inputs
/// mutated at random — bit flips, byte overwrites, insertions, deletions,
/// truncations, splices of two inputs — through the target. A failing
/// input is written to the temp dir and named; once fixed, it belongs in
/// `fuzz/regressions/<target>/`.
fn fixed_mutation_runs(dir: &str, target: fn(&[u8]), runs: u64) {
    let corpus = corpus(dir);
    let out = std::env::temp_dir();
    for seed in SEEDS {
        if let Some(failed) = mutation_run(dir, &corpus, target, seed, Budget::Runs(runs), &out) {
            panic!(
                "{dir}: a mutated input (seed {seed}) panicked; saved as {}",
                failed.display()
            );
        }
    }
    println!(
        "{dir}: {} seeds x {runs} mutated inputs, none panicked",
        SEEDS.len()
    );
}

/// The open-ended random run, `scripts/fuzz.sh quick [SECONDS]`: a random
/// seed (printed; `SAMSARA_FUZZ_SEED` repeats it) for
/// `SAMSARA_FUZZ_SECONDS` (default 60) of wall time. A failing input is
/// saved into `fuzz/regressions/<target>/`, where the corpus test replays
/// it from then on.
fn random_mutation_run(dir: &str, target: fn(&[u8])) {
    let corpus = corpus(dir);
    let seconds: f64 = std::env::var("SAMSARA_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let seed: u64 = std::env::var("SAMSARA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{dir}: random mutation run for {seconds} s, SAMSARA_FUZZ_SEED={seed}");
    let out = fuzz_dir().join("regressions").join(dir);
    std::fs::create_dir_all(&out).expect("create the regressions directory");
    let budget =
        Budget::Until(std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds));
    if let Some(failed) = mutation_run(dir, &corpus, target, seed, budget, &out) {
        panic!(
            "{dir}: a mutated input (SAMSARA_FUZZ_SEED={seed}) panicked; saved as {}",
            failed.display()
        );
    }
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    inputs(dir)
        .iter()
        .map(|p| std::fs::read(p).expect("readable corpus file"))
        .collect()
}

enum Budget {
    Runs(u64),
    Until(std::time::Instant),
}

/// Mutates corpus inputs with `seed` through `target` within `budget`;
/// the path of the first input that panicked, saved into `out`.
fn mutation_run(
    dir: &str,
    corpus: &[Vec<u8>],
    target: fn(&[u8]),
    seed: u64,
    budget: Budget,
    out: &Path,
) -> Option<PathBuf> {
    let mut rng = XorShift(seed | 1);
    let started = std::time::Instant::now();
    let mut runs = 0u64;
    while match budget {
        Budget::Runs(n) => runs < n,
        Budget::Until(t) => std::time::Instant::now() < t,
    } {
        let input = mutate(corpus, &mut rng);
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            let path = out.join(format!("seed-{seed}-run-{runs}"));
            std::fs::write(&path, &input).expect("save the failing input");
            return Some(path);
        }
        runs += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{dir}: seed {seed}: {runs} mutated inputs in {secs:.2} s ({:.0}/s), none panicked",
        runs as f64 / secs.max(1e-9)
    );
    assert!(runs > 0, "the mutation run executed nothing");
    None
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
    fixed_mutation_runs(
        "trace_reader",
        samsara_fuzzing::trace::run,
        TRACE_READER_RUNS,
    );
}

#[test]
fn cpu_mutation_run() {
    fixed_mutation_runs("cpu", samsara_fuzzing::cpu::run, CPU_RUNS);
}

/// The translator against the interpreter, block by block. Not vacuous:
/// translated code must have run in a third of the inputs (about half do)
/// and for a fifth of the steps (about a third are); on x86-64, the only
/// host with a translator.
#[test]
fn cpu_diff_mutation_run() {
    let _ = samsara_fuzzing::cpu_diff::take_stats();
    fixed_mutation_runs("cpu_diff", samsara_fuzzing::cpu_diff::run, CPU_DIFF_RUNS);
    let stats = samsara_fuzzing::cpu_diff::take_stats();
    println!("cpu_diff: {stats:?}");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(stats.inputs, SEEDS.len() as u64 * CPU_DIFF_RUNS);
        assert!(
            stats.inputs_translated * 3 > stats.inputs,
            "translated code ran in only {} of {} inputs",
            stats.inputs_translated,
            stats.inputs
        );
        assert!(
            stats.steps_translated * 5 > stats.steps,
            "only {} of {} steps ran in translated code",
            stats.steps_translated,
            stats.steps
        );
    }
}

#[test]
#[ignore = "open-ended: scripts/fuzz.sh quick [SECONDS]"]
fn trace_reader_random_mutation_run() {
    random_mutation_run("trace_reader", samsara_fuzzing::trace::run);
}

#[test]
#[ignore = "open-ended: scripts/fuzz.sh quick [SECONDS]"]
fn cpu_random_mutation_run() {
    random_mutation_run("cpu", samsara_fuzzing::cpu::run);
}

#[test]
#[ignore = "open-ended: scripts/fuzz.sh quick [SECONDS]"]
fn cpu_diff_random_mutation_run() {
    random_mutation_run("cpu_diff", samsara_fuzzing::cpu_diff::run);
}
