//! Headless Chromium for the HTML page's tests: the page's DOM after its
//! script ran, and a screenshot of it decoded into pixels. Shared with the
//! CLI's test (`crates/cli/tests/analyze_html.rs` includes this file).
//! Chromium is installed by scripts/setup.sh; a test needing it fails, never
//! skips, when it is missing.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The window the page is laid out in, for both the DOM and the screenshot
/// (the page's layout depends only on the width, so positions read from
/// the DOM are where the screenshot has them).
pub const WINDOW: (u32, u32) = (1200, 900);

/// A hung browser fails the test instead of stalling the suite.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary on PATH.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: the HTML page is checked in headless Chromium. \
                 Install it with ./scripts/setup.sh (or apt-get install chromium)."
            )
        })
}

/// The `file://` address of `page`, with `fragment` (after `#`) if any.
pub fn file_url(page: &Path, fragment: Option<&str>) -> String {
    let path = page.canonicalize().expect("the page exists");
    match fragment {
        Some(f) => format!("file://{}#{f}", path.display()),
        None => format!("file://{}", path.display()),
    }
}

/// Runs headless Chromium on `url` with `args`, its profile and HOME in
/// `scratch`; returns its stdout.
fn run(url: &str, scratch: &Path, args: &[String]) -> Vec<u8> {
    let profile = scratch.join("chromium-profile");
    std::fs::create_dir_all(&profile).expect("creating the browser profile directory");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        // root in CI containers: Chromium's sandbox refuses to start as root
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .env("HOME", scratch)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {TIMEOUT:?}; killed it\n{}",
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(
        status.success(),
        "{what} failed with {status}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// The page's DOM after its scripts ran, as Chromium serialises it.
pub fn dump_dom(url: &str, scratch: &Path) -> String {
    let dom = run(url, scratch, &["--dump-dom".to_string()]);
    String::from_utf8(dom).expect("the DOM is UTF-8")
}

/// An RGB screenshot of the page's first `WINDOW`.
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    rgb: Vec<u8>,
}

impl Screenshot {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y * self.width + x) as usize * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

pub fn screenshot(url: &str, scratch: &Path) -> Screenshot {
    let png = scratch.join("screenshot.png");
    let _ = std::fs::remove_file(&png);
    run(url, scratch, &[format!("--screenshot={}", png.display())]);
    let file = std::fs::File::open(&png).expect("chromium wrote the screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let frame = reader.next_frame(&mut buf).expect("decoding the PNG");
    let channels = frame.color_type.samples();
    assert!(channels >= 3, "a colour screenshot: {:?}", frame.color_type);
    let rgb = buf[..frame.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Screenshot {
        width: frame.width,
        height: frame.height,
        rgb,
    }
}

/// An element's tag and attributes, from serialised HTML.
#[derive(Debug)]
pub struct Element {
    pub tag: String,
    pub attrs: BTreeMap<String, String>,
}

impl Element {
    pub fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("{self:?} has no {name}"))
    }

    pub fn number(&self, name: &str) -> u32 {
        self.attr(name)
            .parse()
            .unwrap_or_else(|e| panic!("{self:?}: {name}: {e}"))
    }
}

/// Every start tag in `html` that has attribute `attr`. Chromium writes
/// attributes as `name="value"` with `"` escaped, which is all this parses.
pub fn elements_with(html: &str, attr: &str) -> Vec<Element> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with(['/', '!']) {
            continue;
        }
        let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut attrs = BTreeMap::new();
        while let Some(eq) = attrs_text.find('=') {
            let key = attrs_text[..eq].trim().to_string();
            let after = &attrs_text[eq + 1..];
            let Some(value) = after.strip_prefix('"') else {
                break;
            };
            let Some(end) = value.find('"') else { break };
            attrs.insert(key, unescape(&value[..end]));
            attrs_text = &value[end + 1..];
        }
        if attrs.contains_key(attr) {
            found.push(Element {
                tag: name.to_string(),
                attrs,
            });
        }
    }
    found
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The `body` attribute the page's script sets when it ran to the end, or
/// the error it hit.
pub fn assert_script_ran(dom: &str) {
    let body = elements_with(dom, "data-ready");
    let errors = elements_with(dom, "data-error");
    assert!(
        errors.is_empty(),
        "the page's script failed: {}",
        errors[0].attr("data-error")
    );
    assert_eq!(body.len(), 1, "the page's script did not finish");
}

/// Legend colours by what they stand for: `#rrggbb` -> name.
pub fn legend(dom: &str) -> BTreeMap<[u8; 3], String> {
    let mut colours = BTreeMap::new();
    let mut rest = dom;
    while let Some(at) = rest.find("data-color=\"#") {
        let hex = &rest[at + 13..at + 19];
        let rgb = [0, 2, 4].map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex colour"));
        // the key's text follows its swatch: `...</i>NAME</span>`
        let after = &rest[at..];
        let name_start = after.find("</i>").expect("a legend key's name") + 4;
        let name_end = name_start + after[name_start..].find('<').expect("the key's end");
        colours.insert(rgb, unescape(&after[name_start..name_end]));
        rest = &rest[at + 19..];
    }
    colours
}

/// One lane (`.track` with `data-hart`, or the DMA lane) as drawn in the
/// screenshot: how many of its pixels have each legend colour.
pub fn lane_colours(
    shot: &Screenshot,
    lane: &Element,
    legend: &BTreeMap<[u8; 3], String>,
) -> BTreeMap<String, u64> {
    let (x0, x1, y0, y1) = (
        lane.number("data-x0"),
        lane.number("data-x1"),
        lane.number("data-y0"),
        lane.number("data-y1"),
    );
    assert!(
        x1 <= shot.width && y1 <= shot.height && x0 < x1 && y0 < y1,
        "lane {lane:?} is not inside the {}x{} screenshot",
        shot.width,
        shot.height
    );
    let mut counts = BTreeMap::new();
    for y in y0..y1 {
        for x in x0..x1 {
            if let Some(name) = legend.get(&shot.pixel(x, y)) {
                *counts.entry(name.clone()).or_insert(0) += 1;
            }
        }
    }
    counts
}
