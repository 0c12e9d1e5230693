//! The timeline's HTML page in headless Chromium, on a synthetic 4-hart
//! recording whose harts each end their entries in their own ways: the
//! script builds one lane per hart, the screenshot has each hart's colours
//! in its lane (and only there), and hovering, zooming, panning, the clock
//! toggle and the histogram's hart choice work.

mod browser;

use std::collections::BTreeSet;
use std::path::PathBuf;

use samsara_analysis::html::write_html;
use samsara_analysis::timeline::{Timeline, reason_name};
use samsara_trace::{ChunkRecord, DmaRecord, Entry, Event, Truncation};

const HARTS: usize = 4;
const ENTRIES: u64 = 2000;

/// How hart `hart`'s `n`th entry ends: each hart its own pair of ways.
fn reason(hart: usize, n: u64) -> Truncation {
    let (common, rare) = [
        (Truncation::SizeLimit, Truncation::DeviceOp),
        (Truncation::Trap, Truncation::DeviceAccess),
        (Truncation::Spin, Truncation::Ownership),
        (Truncation::Wfi, Truncation::Stop),
    ][hart];
    if n % 5 == 4 { rare } else { common }
}

/// Sequence number `seq` is DMA every 50, else hart `seq % 4`'s entry.
fn recording() -> Timeline {
    let mut timeline = Timeline::new(HARTS);
    let mut per_hart = [0u64; HARTS];
    for seq in 1..=ENTRIES {
        let entry = if seq % 50 == 0 {
            Entry::Dma(DmaRecord {
                writes: vec![(0x8000_0000, vec![0; 512])],
            })
        } else {
            let hart = (seq % HARTS as u64) as usize;
            let n = per_hart[hart];
            per_hart[hart] += 1;
            Entry::Chunk(ChunkRecord {
                hart: hart as u8,
                steps: 1 + (n * 37 + hart as u64 * 1000) % 5000,
                back: n % 9,
                reason: reason(hart, n),
                exclusive: n % 97 == 3,
                events: if n % 11 == 0 {
                    vec![Event::Lines(0x200), Event::Time(n)]
                } else {
                    Vec::new()
                },
                check: None,
            })
        };
        timeline.see(seq, &entry);
    }
    timeline
}

/// `n` as the page's tooltips write it: 12,345.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "samsara-analysis-html-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Chromium's DOM of the page has one lane per hart made by its script,
/// the histograms and the composition; its screenshot draws each hart's
/// entries in that hart's lane, in that hart's colours only.
#[test]
fn chromium_draws_one_lane_per_hart_in_its_own_colours() {
    let dir = scratch("lanes");
    let timeline = recording();
    let page = dir.join("timeline.html");
    let mut html = Vec::new();
    write_html(&timeline, "synthetic <4 harts>", None, &mut html).unwrap();
    std::fs::write(&page, &html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page is self-contained"
    );

    let url = browser::file_url(&page, None);
    let dom = browser::dump_dom(&url, &dir);
    browser::assert_script_ran(&dom);
    assert!(dom.contains("samsara timeline: synthetic &lt;4 harts&gt;"));
    let lanes = browser::elements_with(&dom, "data-hart");
    let lanes: Vec<_> = lanes.iter().filter(|e| e.tag == "div").collect();
    assert_eq!(
        lanes
            .iter()
            .map(|l| l.attr("data-hart"))
            .collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    for (hart, lane) in lanes.iter().enumerate() {
        assert_eq!(lane.attr("class"), "track");
        assert_eq!(
            lane.number("data-entries") as usize,
            timeline.tracks[hart].slices.len()
        );
    }
    for section in ["histograms", "squashes", "composition"] {
        assert!(
            dom.contains(&format!("<section id=\"{section}\"")),
            "{section}"
        );
    }
    let bars = browser::elements_with(&dom, "data-bucket");
    assert!(bars.len() > 10, "the histograms have bars: {bars:?}");
    assert!(dom.contains("no footer"), "a footerless page says so");

    let shot = browser::screenshot(&url, &dir);
    let legend = browser::legend(&dom);
    assert_eq!(legend.len(), Truncation::ALL.len() + 1, "{legend:?}");
    for (hart, lane) in lanes.iter().enumerate() {
        let colours = browser::lane_colours(&shot, lane, &legend);
        let own: BTreeSet<String> = Truncation::ALL
            .iter()
            .filter(|r| (0..5).any(|n| reason(hart, n) == **r))
            .map(|r| reason_name(*r).to_string())
            .collect();
        let seen: BTreeSet<String> = colours.keys().cloned().collect();
        assert!(
            seen.is_subset(&own),
            "hart {hart}'s lane shows {colours:?}, but it only ends entries as {own:?}"
        );
        let area = (lane.number("data-x1") - lane.number("data-x0"))
            * (lane.number("data-y1") - lane.number("data-y0"));
        let drawn: u64 = colours.values().sum();
        assert!(
            drawn * 5 > u64::from(area),
            "hart {hart}'s lane is barely drawn: {drawn} of {area} pixels ({colours:?})"
        );
        assert!(
            colours.contains_key(reason_name(reason(hart, 0))),
            "hart {hart}'s commonest ending is drawn: {colours:?}"
        );
        // just below the lane is the gap before the next: nothing drawn
        let gap = lane.number("data-y1") + 2;
        let x0 = lane.number("data-x0");
        let stray = (x0..lane.number("data-x1"))
            .filter(|&x| legend.contains_key(&shot.pixel(x, gap)))
            .count();
        assert_eq!(stray, 0, "hart {hart}: entries drawn outside the lane");
    }
    let dma = browser::elements_with(&dom, "data-dma");
    assert_eq!(dma.len(), 1);
    let dma_colours = browser::lane_colours(&shot, &dma[0], &legend);
    assert_eq!(
        dma_colours.keys().collect::<Vec<_>>(),
        ["DMA"],
        "the DMA lane draws the DMA entries"
    );
}

/// Events dispatched on the page do what a user's would: hovering names the
/// entry under the pointer (and nothing between entries), the wheel zooms,
/// dragging pans, the clock toggles, the histogram shows one hart.
#[test]
fn hover_zoom_pan_and_clock_work_in_chromium() {
    let dir = scratch("interaction");
    let timeline = recording();
    let mut html = Vec::new();
    write_html(&timeline, "interaction", None, &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    // Runs after the page's own script; reports into body's data-probe.
    let probe = r##"<script>
(function () {
  const out = {};
  const canvas = document.getElementById("timeline-canvas"), section = document.getElementById("timeline");
  const tooltip = document.getElementById("tooltip");
  // the middle of `hart`'s lane at fraction f of its width
  function at(hart, f) {
    const l = document.querySelector('.track[data-hart="' + hart + '"]');
    const x0 = +l.dataset.x0, x1 = +l.dataset.x1;
    return { clientX: x0 + f * (x1 - x0) - scrollX, clientY: (+l.dataset.y0 + +l.dataset.y1) / 2 - scrollY, bubbles: true };
  }
  const view = () => [section.dataset.clock, +section.dataset.from, +section.dataset.to];
  out.initial = view();
  // seq 102 is hart 2's, centred at (102.5 - 100) / 8 of the view 100..108
  canvas.dispatchEvent(new MouseEvent("mousemove", at(2, 2.5 / 8)));
  out.hover = tooltip.hidden ? null : tooltip.textContent;
  canvas.dispatchEvent(new MouseEvent("mousemove", at(1, 2.5 / 8)));
  out.hoverElsewhere = tooltip.hidden ? null : tooltip.textContent;
  canvas.dispatchEvent(new WheelEvent("wheel", Object.assign(at(0, 0.5), { deltaY: 400, cancelable: true })));
  out.zoomedOut = view();
  canvas.dispatchEvent(new MouseEvent("mousedown", at(0, 0.5)));
  window.dispatchEvent(new MouseEvent("mousemove", at(0, 0.25)));
  window.dispatchEvent(new MouseEvent("mouseup", at(0, 0.25)));
  out.panned = view();
  document.querySelector('button[data-clock="instructions"]').click();
  out.instructions = view();
  const select = document.querySelector("#length-histogram select");
  select.value = "3"; select.dispatchEvent(new Event("change"));
  out.histogram = [document.getElementById("length-histogram").dataset.showing, +document.getElementById("length-histogram").dataset.total];
  document.body.dataset.probe = JSON.stringify(out);
})();
</script></body>"##;
    let page = dir.join("probe.html");
    std::fs::write(&page, html.replace("</body>", probe)).unwrap();
    let dom = browser::dump_dom(
        &browser::file_url(&page, Some("clock=order&from=100&to=108")),
        &dir,
    );
    browser::assert_script_ran(&dom);
    let probe = browser::elements_with(&dom, "data-probe");
    assert_eq!(probe.len(), 1, "the probe ran");
    let out: serde_json::Value = serde_json::from_str(probe[0].attr("data-probe")).unwrap();
    let view = |key: &str| -> (String, f64, f64) {
        let v = &out[key];
        (
            v[0].as_str().unwrap().to_string(),
            v[1].as_f64().unwrap(),
            v[2].as_f64().unwrap(),
        )
    };
    assert_eq!(
        view("initial"),
        ("order".into(), 100.0, 108.0),
        "the view in the address"
    );
    let hover = out["hover"].as_str().expect("hovering an entry shows it");
    assert!(hover.starts_with("seq 102 \u{b7} hart 2\n"), "{hover}");
    let &(_, _, steps, ended) = timeline.tracks[2]
        .slices
        .iter()
        .find(|s| s.0 == 102)
        .unwrap();
    assert!(
        hover.contains(&format!("{} instructions", grouped(steps))),
        "{hover}"
    );
    assert!(
        hover.contains(&format!("ended: {}", reason_name(ended))),
        "{hover}"
    );
    assert_eq!(
        out["hoverElsewhere"],
        serde_json::Value::Null,
        "hart 1 has no entry there"
    );
    let (_, from, to) = view("zoomedOut");
    assert!(
        to - from > 12.0 && from < 100.0,
        "the wheel zoomed out: {from}..{to}"
    );
    let (_, panned_from, panned_to) = view("panned");
    assert!(
        panned_from > from && (panned_to - panned_from - (to - from)).abs() < 1e-6,
        "dragging left moved the view right: {from}..{to} -> {panned_from}..{panned_to}"
    );
    let most: u64 = timeline
        .tracks
        .iter()
        .map(|t| t.instructions)
        .max()
        .unwrap();
    assert_eq!(
        view("instructions"),
        ("instructions".into(), 0.0, most as f64)
    );
    assert_eq!(
        out["histogram"],
        serde_json::json!(["3", timeline.tracks[3].slices.len()])
    );
}
