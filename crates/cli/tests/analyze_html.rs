//! `samsara analyze TRACE timeline --html FILE`, checked in headless
//! Chromium (installed by scripts/setup.sh; the test fails without it):
//! the page's script builds one lane per hart, the histograms and the
//! log's composition, and a screenshot shows every hart's entries drawn in
//! its lane in the colours of how that hart's entries ended.

#[path = "../../analysis/tests/browser/mod.rs"]
mod browser;
mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{instructions_per_hart, record_with_summary, samsara, scratch_dir, serial};

const HARTS: usize = 4;

#[test]
fn the_html_timeline_of_a_four_hart_recording_draws_four_lanes_in_chromium() {
    let dir = scratch_dir("analyze-html");
    let (trace, summary) = {
        let _one_guest_at_a_time = serial();
        let (trace, summary, _) = record_with_summary(&dir, "racy_counter", HARTS);
        (trace, summary)
    };
    let instructions = instructions_per_hart(&summary);
    let page = dir.join("t.html");
    let jsonl = dir.join("t.jsonl");
    let analyzed = samsara([
        "analyze".as_ref(),
        trace.as_os_str(),
        "timeline".as_ref(),
        "--html".as_ref(),
        page.as_os_str(),
        "--jsonl".as_ref(),
        jsonl.as_os_str(),
    ]);
    analyzed.assert_code(0);
    assert!(
        analyzed.stderr.contains("replay VERIFIED"),
        "{}",
        analyzed.stderr
    );

    // What the page should show, from the same replay's JSON lines.
    let mut endings: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); HARTS];
    let (mut entries, mut dma) = (0u64, 0u64);
    for line in std::fs::read_to_string(&jsonl).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        if row.get("seq").is_none() {
            continue; // another analysis's finding
        }
        entries += 1;
        match row["hart"].as_u64() {
            Some(hart) => {
                let ended = row["ended"].as_str().unwrap().to_string();
                *endings[hart as usize].entry(ended).or_default() += 1;
            }
            None => dma += 1,
        }
    }
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
        "the page loads nothing from elsewhere"
    );

    let url = browser::file_url(&page, None);
    let dom = browser::dump_dom(&url, &dir);
    browser::assert_script_ran(&dom);
    let lanes: Vec<_> = browser::elements_with(&dom, "data-hart")
        .into_iter()
        .filter(|e| e.attr("class") == "track")
        .collect();
    assert_eq!(
        lanes
            .iter()
            .map(|l| l.attr("data-hart"))
            .collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "one lane per hart"
    );
    for (hart, lane) in lanes.iter().enumerate() {
        assert_eq!(
            u64::from(lane.number("data-entries")),
            endings[hart].values().sum::<u64>(),
            "hart {hart}'s lane holds its entries"
        );
    }
    for section in [
        "summary",
        "timeline",
        "histograms",
        "squashes",
        "composition",
    ] {
        assert!(dom.contains(&format!(" id=\"{section}\"")), "{section}");
    }
    assert!(
        dom.contains("exit: <b>guest powered off</b>"),
        "the summary names the exit"
    );
    let length = browser::elements_with(&dom, "data-showing");
    let length = length
        .iter()
        .find(|e| e.attr("id") == "length-histogram")
        .expect("the entry-length histogram");
    assert_eq!(
        u64::from(length.number("data-total")),
        entries - dma,
        "the length histogram counts every hart entry"
    );
    assert!(dom.contains("chunks squashed and run again"));
    assert!(dom.contains("id=\"entry-kinds\"") && dom.contains("id=\"event-kinds\""));

    // The global order: each hart's lane has its own endings' colours and
    // no other's, and at least one column per run of entries it could share.
    let legend = browser::legend(&dom);
    let shot = browser::screenshot(&url, &dir);
    let width = lanes[0].number("data-x1") - lanes[0].number("data-x0");
    let per_column = entries.div_ceil(u64::from(width));
    for (hart, lane) in lanes.iter().enumerate() {
        let colours = browser::lane_colours(&shot, lane, &legend);
        let own: BTreeSet<&String> = endings[hart].keys().collect();
        assert!(
            colours.keys().collect::<BTreeSet<_>>().is_subset(&own),
            "hart {hart}'s lane shows {colours:?}; its entries ended as {:?}",
            endings[hart]
        );
        let commonest = endings[hart].iter().max_by_key(|e| e.1).unwrap().0;
        assert!(
            colours.contains_key(commonest),
            "hart {hart}'s commonest ending, {commonest}, is drawn: {colours:?}"
        );
        let height = u64::from(lane.number("data-y1") - lane.number("data-y0"));
        let least = endings[hart].values().sum::<u64>().div_ceil(per_column) * height / 2;
        let drawn: u64 = colours.values().sum();
        assert!(
            drawn >= least,
            "hart {hart}'s lane has {drawn} pixels of entries, fewer than {least}"
        );
    }
    let dma_lane = browser::elements_with(&dom, "data-dma");
    let dma_colours = browser::lane_colours(&shot, &dma_lane[0], &legend);
    assert_eq!(dma_colours.contains_key("DMA"), dma > 0, "{dma_colours:?}");

    // The instruction clock: a hart's entries fill its lane in proportion
    // to the instructions it ran.
    let shot = browser::screenshot(&browser::file_url(&page, Some("clock=instructions")), &dir);
    let most = *instructions.iter().max().unwrap();
    for (hart, lane) in lanes.iter().enumerate() {
        let colours = browser::lane_colours(&shot, lane, &legend);
        let drawn: u64 = colours.values().sum();
        let height = u64::from(lane.number("data-y1") - lane.number("data-y0"));
        let full = u64::from(width) * height * instructions[hart] / most;
        assert!(
            drawn * 2 >= full && drawn <= full + 2 * height,
            "hart {hart} ran {} of {most} instructions: its lane should be ~{full} pixels of \
             entries, is {drawn}",
            instructions[hart]
        );
    }
}
