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
