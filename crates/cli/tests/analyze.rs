//! `samsara analyze`: analyses observe a verified replay.

mod common;

use std::collections::BTreeMap;

use common::{guest, samsara, scratch_dir, serial};

/// The timeline of a 4-hart recording has 4 hart tracks whose entries sum
/// to the recorded instruction counts, on the instruction clock, and one
/// slice per entry on the global order; the replay under it verifies.
#[test]
fn the_timeline_of_a_four_hart_recording_has_four_tracks_summing_to_the_recording() {
    let _guard = serial();
    let dir = scratch_dir("analyze-timeline");
    let trace = dir.join("racy.trace");
    let recorded = samsara([
        "record".as_ref(),
        "-q".as_ref(),
        "--json".as_ref(),
        "--harts".as_ref(),
        "4".as_ref(),
        guest("racy_counter").as_os_str(),
        "-o".as_ref(),
        trace.as_os_str(),
    ]);
    assert_eq!(recorded.code(), Some(0), "{}", recorded.stderr);
    let summary: serde_json::Value = serde_json::from_str(
        recorded
            .stderr
            .lines()
            .rfind(|l| l.starts_with('{'))
            .expect("a JSON summary"),
    )
    .unwrap();
    let per_hart: Vec<u64> = summary["instructions_per_hart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let entries = summary["entries"].as_u64().unwrap();
    let events = dir.join("t.json");
    let jsonl = dir.join("t.jsonl");
    let analyzed = samsara([
        "analyze".as_ref(),
        trace.as_os_str(),
        "timeline".as_ref(),
        "--perfetto".as_ref(),
        events.as_os_str(),
        "--jsonl".as_ref(),
        jsonl.as_os_str(),
    ]);
    analyzed.assert_no_panic();
    assert_eq!(analyzed.code(), Some(0), "{}", analyzed.stderr);
    assert!(
        analyzed.stderr.contains("replay VERIFIED"),
        "{}",
        analyzed.stderr
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&events).unwrap()).unwrap();
    let mut instructions: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ordered = 0;
    for e in doc["traceEvents"].as_array().unwrap() {
        if e["ph"] != "X" {
            continue;
        }
        match e["pid"].as_u64() {
            Some(2) => {
                *instructions.entry(e["tid"].as_u64().unwrap()).or_default() +=
                    e["dur"].as_u64().unwrap()
            }
            Some(1) if e["cat"] != "dma" => ordered += 1,
            _ => {}
        }
    }
    assert_eq!(instructions.len(), 4, "one track per hart");
    assert_eq!(instructions.values().copied().collect::<Vec<_>>(), per_hart);
    assert_eq!(ordered, entries, "one slice per entry on the global order");
    let rows = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(rows.lines().count() as u64, entries);
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
}
