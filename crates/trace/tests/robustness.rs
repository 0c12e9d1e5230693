//! A real-shaped trace, then every truncation point and many corruptions of
//! it: the reader must return an error naming an offset (or, for a cut at a
//! block boundary, a partial trace) — never panic, never hang.

use samsara_trace::{
    Block, Check, ChunkRecord, DmaRecord, Entry, Event, Footer, RecordStats, RecordedExit,
    TraceError, TraceHeader, TraceReader, TraceWriter, Truncation,
};

fn header() -> TraceHeader {
    TraceHeader {
        writer: "test".into(),
        strategy: samsara_trace::Strategy::Chunk,
        harts: 4,
        ram_size: 128 << 20,
        image_path: "guest.elf".into(),
        image_len: 1234,
        image_blake3: "00".repeat(32),
        disk: None,
        chunk_size: 100_000,
        batch: Some(16 * 1024),
        check_every: 2,
        created_unix: 0,
        initial_ram_blake3: String::new(),
        ..TraceHeader::default()
    }
}

fn entries(n: u64, salt: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            if i % 17 == 5 {
                Entry::Dma(DmaRecord {
                    writes: vec![(0x8000_0000 + i * 512, vec![(i ^ salt) as u8; 100])],
                })
            } else {
                Entry::Chunk(ChunkRecord {
                    hart: (i % 4) as u8,
                    steps: 100_000 - i * 13,
                    back: 1 + i % 3,
                    reason: Truncation::ALL[(i % 7) as usize],
                    exclusive: i % 11 == 0,
                    events: if i % 3 == 0 {
                        vec![
                            Event::Lines(0x80),
                            Event::Time(1_000 + i * 77),
                            Event::MmioRead(i),
                        ]
                    } else {
                        vec![]
                    },
                    check: (i % 5 == 0).then(|| {
                        Box::new(Check {
                            hart_digest: i,
                            pc: 0x8000_0000 + i,
                            x: [i; 32],
                            pages: vec![(0x80000 + i, i * 3)],
                        })
                    }),
                })
            }
        })
        .collect()
}

fn footer(entries: u64) -> Footer {
    Footer {
        entries,
        exit: RecordedExit::Poweroff,
        steps_per_hart: vec![1, 2, 3, 4],
        hart_digests: vec![5, 6, 7, 8],
        ram_blake3: "ab".repeat(32),
        output: b"hello\n".to_vec(),
        output_len: Some(6),
        output_blake3: None,
        stats: RecordStats::default(),
    }
}

/// Writes a trace of three blocks and a footer; returns its bytes.
fn sample(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("sample.trace");
    let w = TraceWriter::create(&path, &header()).unwrap();
    w.send(1, entries(40, 1)).unwrap();
    w.send(41, entries(30, 2)).unwrap();
    w.send(71, entries(20, 3)).unwrap();
    let stats = w.finish(Some(footer(90))).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(stats.file_bytes, bytes.len() as u64);
    assert_eq!(stats.entries, 90);
    bytes
}

/// Reads everything; Ok(entries) for a complete trace.
fn read_all(path: &std::path::Path) -> Result<Vec<Entry>, TraceError> {
    let mut r = TraceReader::open(path)?;
    let mut all = Vec::new();
    let mut footer = false;
    while let Some(b) = r.next_block()? {
        match b {
            Block::Entries { entries, .. } => all.extend(entries),
            Block::Footer(_) => footer = true,
        }
    }
    assert!(footer);
    Ok(all)
}

#[test]
fn round_trip_of_a_complete_trace() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let got = read_all(&dir.path().join("sample.trace")).unwrap();
    let mut want = entries(40, 1);
    want.extend(entries(30, 2));
    want.extend(entries(20, 3));
    assert_eq!(got, want);
}

#[test]
fn every_truncation_point_is_an_error_or_a_partial_trace() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let path = dir.path().join("cut.trace");
    let mut partial = 0;
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = read_all(&path).expect_err("a truncated trace must not read as complete");
        assert!(err.to_string().contains("byte offset"), "{err}");
        assert!(
            err.offset <= len as u64,
            "offset {} beyond the {len} bytes",
            err.offset
        );
        if err.is_missing_footer() {
            partial += 1;
        }
    }
    // Cuts exactly after the header and after each of the three entry
    // blocks are partial traces (a recording killed at that moment).
    assert_eq!(partial, 4);
}

#[test]
fn flipped_bits_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let path = dir.path().join("flip.trace");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let at = (state % bytes.len() as u64) as usize;
        let bit = (state >> 40) % 8;
        let mut bad = bytes.clone();
        bad[at] ^= 1 << bit;
        std::fs::write(&path, &bad).unwrap();
        // Padding bytes of block headers are not covered by meaning, only
        // by the CRC: every single-bit flip must be detected.
        let err =
            read_all(&path).expect_err(&format!("flip of bit {bit} at byte {at} went unnoticed"));
        assert!(err.to_string().contains("byte offset"), "{err}");
    }
}

#[test]
fn wrong_magic_version_and_absurd_sizes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let path = dir.path().join("bad.trace");
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|b: &mut Vec<u8>| b[0] = b'X'), "bad magic"),
        (Box::new(|b: &mut Vec<u8>| b[16] = 9), "format version 9"),
        (
            Box::new(|b: &mut Vec<u8>| b[20..24].copy_from_slice(&u32::MAX.to_le_bytes())),
            "header length claims",
        ),
    ];
    for (mutate, needle) in cases {
        let mut bad = bytes.clone();
        mutate(&mut bad);
        std::fs::write(&path, &bad).unwrap();
        let err = read_all(&path).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    }
    // A block claiming a 200 MiB stream in a small file: refused before any allocation.
    let header_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let block = 28 + header_len;
    let mut bad = bytes.clone();
    bad[block + 28..block + 32].copy_from_slice(&(200u32 << 20).to_le_bytes());
    bad[block + 44..block + 48].copy_from_slice(&(200u32 << 20).to_le_bytes());
    std::fs::write(&path, &bad).unwrap();
    let err = read_all(&path).unwrap_err().to_string();
    assert!(
        err.contains("truncated") || err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn blocks_out_of_order_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.trace");
    let w = TraceWriter::create(&path, &header()).unwrap();
    w.send(1, entries(10, 1)).unwrap();
    w.send(20, entries(10, 1)).unwrap(); // a gap: 11..19 missing
    w.finish(Some(footer(20))).unwrap();
    let err = read_all(&path).unwrap_err().to_string();
    assert!(
        err.contains("block 1 where block 1 (first sequence number 11) was due"),
        "{err}"
    );
}

/// Reads blocks until the reader fails; `what` must not end cleanly.
fn first_error(r: &mut TraceReader, what: &str) -> TraceError {
    loop {
        match r.next_block() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("{what} ended cleanly"),
            Err(e) => return e,
        }
    }
}

/// Copies `bytes` into `path` a few at a time, as a recorder writing the
/// trace would (the file appears only after `delay`).
fn write_slowly(path: std::path::PathBuf, bytes: Vec<u8>, delay: std::time::Duration) {
    use std::io::Write;
    std::thread::sleep(delay);
    let mut f = std::fs::File::create(&path).unwrap();
    for piece in bytes.chunks(97) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
}

/// Following a trace as it is written reads what reading it whole reads,
/// however the writes cut it; the file need not exist yet.
#[test]
fn following_a_growing_trace_reads_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let path = dir.path().join("growing.trace");
    let writer = {
        let (path, bytes) = (path.clone(), bytes.clone());
        std::thread::spawn(move || write_slowly(path, bytes, std::time::Duration::from_millis(50)))
    };
    let mut r = TraceReader::follow(
        &path,
        std::time::Duration::from_secs(10),
        Default::default(),
    )
    .unwrap();
    assert_eq!(r.header().harts, 4);
    let mut got = Vec::new();
    let mut footer = None;
    while let Some(b) = r.next_block().unwrap() {
        match b {
            Block::Entries { entries, .. } => got.extend(entries),
            Block::Footer(f) => footer = Some(f),
        }
    }
    writer.join().unwrap();
    let mut want = entries(40, 1);
    want.extend(entries(30, 2));
    want.extend(entries(20, 3));
    assert_eq!(got, want);
    assert_eq!(footer.map(|f| f.entries), Some(90));
    assert_eq!(r.offset(), bytes.len() as u64);
}

/// A writer that stops in the middle of a block: after the idle time the
/// follower reports the trace truncated there, having read every complete
/// block before it.
#[test]
fn following_a_trace_whose_writer_stopped_ends_after_the_idle_time() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let whole = TraceReader::open(&dir.path().join("sample.trace")).unwrap();
    let header_end = whole.offset();
    let cut = header_end as usize + 150;
    let path = dir.path().join("stopped.trace");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let started = std::time::Instant::now();
    let mut r = TraceReader::follow(
        &path,
        std::time::Duration::from_millis(200),
        Default::default(),
    )
    .unwrap();
    let err = first_error(&mut r, "a cut trace");
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert!(err.offset <= cut as u64, "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

/// A followed file that shrinks under the reader (a new recording
/// rewriting the path) is an error, not a mix of two traces.
#[test]
fn following_a_file_that_shrinks_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample(dir.path());
    let path = dir.path().join("rewritten.trace");
    let cut = bytes.len() - 10;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let mut r =
        TraceReader::follow(&path, std::time::Duration::from_secs(5), Default::default()).unwrap();
    let truncate = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::fs::File::create(&path).unwrap();
        })
    };
    let err = first_error(&mut r, "a rewritten trace");
    truncate.join().unwrap();
    assert!(err.to_string().contains("shrank"), "{err}");
}
