//! The timeline as one self-contained HTML page (`samsara analyze TRACE
//! timeline --html FILE`): a summary, the per-hart timeline drawn on a
//! canvas (zoom, pan, hover; the global order or each hart's instruction
//! clock), histograms of entry length and of how far back each entry's
//! view reached, the squash statistics and the log's composition. No
//! network: the styles, the script and the data are all inside the page.
//!
//! The entries are embedded as columns of numbers (sequence numbers as
//! deltas; a hart's first instructions are the running sum of its steps, so
//! they are not written): the 4-hart Linux boot's 118 000 entries make a
//! 1.2 MB page. Past [`MAX_DRAWN_ENTRIES`] the timeline merges
//! consecutive entries of a hart and says so; the histograms and tables are
//! computed here over every entry.

use std::io::{self, Write};

use samsara_trace::{Footer, Truncation};

use crate::timeline::{EVENT_KINDS, Timeline, reason_name};

/// Rectangles the timeline embeds at most: beyond this a page would weigh
/// tens of megabytes and redraw slowly.
pub const MAX_DRAWN_ENTRIES: usize = 500_000;

/// Colour of each way an entry ends, in [`Truncation::ALL`] order.
const REASON_COLORS: [&str; Truncation::ALL.len()] = [
    "#4e79a7", // size limit
    "#f28e2b", // to a device access
    "#76b7b2", // wfi
    "#e15759", // trap or interrupt
    "#79706e", // machine stopping
    "#edc948", // the device access itself
    "#b07aa1", // spinning
    "#59a14f", // page ownership
];
const DMA_COLOR: &str = "#9c755f";

/// Writes the page. `title` names the recording (its file name, say);
/// `footer` is the trace's footer, absent for a partial trace (then the
/// page has no exit and no squash statistics, and says so).
pub fn write_html(
    timeline: &Timeline,
    title: &str,
    footer: Option<&Footer>,
    out: &mut impl Write,
) -> io::Result<()> {
    write_html_drawing_at_most(timeline, title, footer, MAX_DRAWN_ENTRIES, out)
}

/// [`write_html`] with the timeline merging entries past `max_drawn`.
fn write_html_drawing_at_most(
    timeline: &Timeline,
    title: &str,
    footer: Option<&Footer>,
    max_drawn: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    let slices: usize = timeline.tracks.iter().map(|t| t.slices.len()).sum();
    let group = slices.div_ceil(max_drawn.max(1)).max(1);
    let title = html_text(title);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>samsara timeline: {title}</title>\n<style>{STYLE}</style></head>\n<body>\n"
    )?;
    write_summary(timeline, &title, footer, out)?;
    write_timeline_section(timeline, group, slices, max_drawn, out)?;
    write_histogram_section(out)?;
    write_squash_section(timeline, footer, out)?;
    write_composition_section(timeline, footer, out)?;
    out.write_all(b"<script type=\"application/json\" id=\"timeline-data\">")?;
    write_data(timeline, group, out)?;
    write!(
        out,
        "</script>\n<script>{SCRIPT}</script>\n</body></html>\n"
    )?;
    out.flush()
}

fn write_summary(
    timeline: &Timeline,
    title: &str,
    footer: Option<&Footer>,
    out: &mut impl Write,
) -> io::Result<()> {
    let harts = timeline.tracks.len();
    let instructions: u64 = timeline.tracks.iter().map(|t| t.instructions).sum();
    write!(
        out,
        "<header id=\"summary\"><h1>samsara timeline: {title}</h1>\n<p>{harts} harts · {} entries · {} instructions · ",
        thousands(timeline.entries),
        thousands(instructions),
    )?;
    match footer {
        Some(f) => {
            write!(out, "exit: <b>{}</b>", html_text(&f.exit.describe()))?;
            if f.stats.wall_ns > 0 {
                write!(out, " · recorded in {:.2} s", f.stats.wall_ns as f64 / 1e9)?;
            }
        }
        None => out.write_all(b"<b>partial trace</b> (no footer: the recording did not finish)")?,
    }
    out.write_all(
        b"</p>\n<table class=\"per-hart\"><tr><th>hart</th><th>entries</th><th>device accesses</th>\
          <th>instructions</th><th>interrupt-line changes</th><th>exclusive</th></tr>\n",
    )?;
    for (hart, t) in timeline.tracks.iter().enumerate() {
        let device = t
            .slices
            .iter()
            .filter(|s| s.3 == Truncation::DeviceOp)
            .count();
        writeln!(
            out,
            "<tr><td>hart {hart}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            thousands(t.slices.len() as u64),
            thousands(device as u64),
            thousands(t.instructions),
            thousands(t.lines.len() as u64),
            thousands(t.exclusive.len() as u64),
        )?;
    }
    out.write_all(b"</table></header>\n")
}

fn write_timeline_section(
    timeline: &Timeline,
    group: usize,
    slices: usize,
    max_drawn: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    out.write_all(
        b"<section id=\"timeline\"><h2>Timeline</h2>\n<div class=\"controls\">clock: \
          <button type=\"button\" data-clock=\"order\" title=\"one unit per entry: the recording's interleaving\">global order</button>\
          <button type=\"button\" data-clock=\"instructions\" title=\"each hart's own instruction count\">instructions per hart</button>\
          <span class=\"sep\"></span>zoom: <button type=\"button\" id=\"zoom-in\">+</button>\
          <button type=\"button\" id=\"zoom-out\">&minus;</button><button type=\"button\" id=\"zoom-reset\">whole recording</button>\
          <span id=\"view-range\"></span></div>\n<div id=\"legend\">",
    )?;
    for (reason, color) in Truncation::ALL.iter().zip(REASON_COLORS) {
        write!(
            out,
            "<span class=\"key\" data-color=\"{color}\"><i style=\"background:{color}\"></i>{}</span>",
            reason_name(*reason)
        )?;
    }
    writeln!(
        out,
        "<span class=\"key\" data-color=\"{DMA_COLOR}\"><i style=\"background:{DMA_COLOR}\"></i>DMA</span>\
         <span class=\"key\"><i class=\"tick\"></i>interrupt-line change</span>\
         <span class=\"key\"><i class=\"excl\"></i>ran exclusively</span></div>"
    )?;
    if group > 1 {
        let drawn: usize = timeline
            .tracks
            .iter()
            .map(|t| t.slices.len().div_ceil(group))
            .sum();
        writeln!(
            out,
            "<p class=\"note\" id=\"merged-note\">This recording has {} hart entries, more than the {} \
             this page draws: the timeline merges each run of {group} consecutive entries of a hart \
             into one rectangle ({} in all), coloured by the run's commonest ending, and shows one \
             interrupt-line change, exclusive entry and DMA in {group}. The histograms and tables \
             count every entry.</p>",
            thousands(slices as u64),
            thousands(max_drawn as u64),
            thousands(drawn as u64),
        )?;
    }
    out.write_all(
        b"<p class=\"hint\">Wheel or buttons to zoom, drag to pan, hover for an entry. \
          The view is kept in the address (#clock=&hellip;&amp;from=&hellip;&amp;to=&hellip;).</p>\n\
          <div id=\"lanes\"><canvas id=\"timeline-canvas\" role=\"img\" \
          aria-label=\"the entries of each hart along the recording\"></canvas></div>\n\
          <div id=\"tooltip\" hidden></div></section>\n",
    )
}

fn write_histogram_section(out: &mut impl Write) -> io::Result<()> {
    out.write_all(
        b"<section id=\"histograms\"><h2>Entry length</h2>\n<p>Entries by instructions \
          (log<sub>2</sub> buckets: a bar counts lengths from its label to twice it), coloured by \
          how they ended.</p>\n<div class=\"histogram\" id=\"length-histogram\" data-kind=\"length\"></div>\n\
          </section>\n",
    )
}

fn write_squash_section(
    timeline: &Timeline,
    footer: Option<&Footer>,
    out: &mut impl Write,
) -> io::Result<()> {
    out.write_all(b"<section id=\"squashes\"><h2>Squashes</h2>\n")?;
    match footer {
        Some(f) => {
            let recorded: u64 = f.steps_per_hart.iter().sum();
            let wasted = if recorded + f.stats.squashed_steps > 0 {
                100.0 * f.stats.squashed_steps as f64 / (recorded + f.stats.squashed_steps) as f64
            } else {
                0.0
            };
            write!(
                out,
                "<table class=\"squash-totals\">\
                 <tr><th>chunks squashed and run again</th><td>{}</td></tr>\
                 <tr><th>instructions thrown away by squashes</th><td>{} ({wasted:.2}% of all executed)</td></tr>\
                 <tr><th>chunks run exclusively (forward-progress fallback)</th><td>{}</td></tr>\
                 </table>\n<p>The recorder counts squashes for the whole machine, not per hart: the \
                 trace holds only the chunks that committed. Per hart, the entries show which ran \
                 exclusively: ",
                thousands(f.stats.squashes),
                thousands(f.stats.squashed_steps),
                thousands(f.stats.exclusive_chunks),
            )?;
        }
        None => out.write_all(
            b"<p>A partial trace has no footer, so the recorder's squash counts are unknown. \
              Per hart, the entries show which ran exclusively: ",
        )?,
    }
    let per_hart: Vec<String> = timeline
        .tracks
        .iter()
        .enumerate()
        .map(|(hart, t)| format!("hart {hart}: {}", thousands(t.exclusive.len() as u64)))
        .collect();
    writeln!(out, "{}.</p>", per_hart.join(", "))?;
    out.write_all(
        b"<h3>View reach</h3>\n<p>How far back, in sequence numbers, each entry's view of memory \
          reached: a conflicting commit of another hart inside that window would have squashed \
          it, so long reaches are where squashes come from.</p>\n\
          <div class=\"histogram\" id=\"back-histogram\" data-kind=\"back\"></div>\n</section>\n",
    )
}

fn write_composition_section(
    timeline: &Timeline,
    footer: Option<&Footer>,
    out: &mut impl Write,
) -> io::Result<()> {
    let harts = timeline.tracks.len();
    // entries and instructions by [hart][reason]
    let mut entries = vec![[0u64; Truncation::ALL.len()]; harts];
    let mut instructions = [0u64; Truncation::ALL.len()];
    for (hart, t) in timeline.tracks.iter().enumerate() {
        for &(_, _, steps, reason) in &t.slices {
            entries[hart][reason as usize] += 1;
            instructions[reason as usize] += steps;
        }
    }
    let total = timeline.entries.max(1) as f64;
    out.write_all(
        b"<section id=\"composition\"><h2>Log composition</h2>\n<h3>Entries by kind</h3>\n\
          <div class=\"wide\"><table class=\"composition\" id=\"entry-kinds\"><tr><th>entry</th>",
    )?;
    for hart in 0..harts {
        write!(out, "<th>hart {hart}</th>")?;
    }
    out.write_all(b"<th>all</th><th>share</th><th>instructions</th></tr>\n")?;
    let share = |count: u64, color: &str| {
        let pct = 100.0 * count as f64 / total;
        format!(
            "<td class=\"share\"><span style=\"width:{:.1}px;background:{color}\"></span>{pct:.1}%</td>",
            pct.max(0.0)
        )
    };
    for (i, reason) in Truncation::ALL.iter().enumerate() {
        let all: u64 = entries.iter().map(|e| e[i]).sum();
        if all == 0 {
            continue;
        }
        write!(
            out,
            "<tr data-kind=\"{}\"><td><i style=\"background:{}\"></i>{}</td>",
            reason.name(),
            REASON_COLORS[i],
            reason_name(*reason)
        )?;
        for e in &entries {
            write!(out, "<td>{}</td>", thousands(e[i]))?;
        }
        writeln!(
            out,
            "<td>{}</td>{}<td>{}</td></tr>",
            thousands(all),
            share(all, REASON_COLORS[i]),
            thousands(instructions[i])
        )?;
    }
    let dma = timeline.dma.len() as u64;
    write!(
        out,
        "<tr data-kind=\"dma\"><td><i style=\"background:{DMA_COLOR}\"></i>DMA</td>{}<td>{}</td>{}<td></td></tr>\n\
         </table></div>\n<h3>Events inside entries</h3>\n<table class=\"composition\" id=\"event-kinds\">\
         <tr><th>event</th><th>count</th></tr>\n",
        "<td></td>".repeat(harts),
        thousands(dma),
        share(dma, DMA_COLOR),
    )?;
    for (name, count) in EVENT_KINDS.iter().zip(timeline.events) {
        writeln!(out, "<tr><td>{name}</td><td>{}</td></tr>", thousands(count))?;
    }
    write!(
        out,
        "<tr><td>verification digests (--check-every)</td><td>{}</td></tr></table>\n\
         <h3>Bytes</h3>\n<table class=\"composition\" id=\"bytes\">\
         <tr><td>written into guest memory by DMA</td><td>{}</td></tr>",
        thousands(timeline.checks),
        thousands(timeline.dma.iter().map(|d| d.1).sum()),
    )?;
    if let Some(f) = footer {
        let printed = f.output_len.unwrap_or(f.output.len() as u64);
        write!(
            out,
            "<tr><td>printed by the guest on the UART</td><td>{}</td></tr>",
            thousands(printed)
        )?;
    }
    out.write_all(b"</table></section>\n")
}

/// The JSON the script reads: per hart, columns of the drawn entries.
fn write_data(timeline: &Timeline, group: usize, out: &mut impl Write) -> io::Result<()> {
    write!(
        out,
        "{{\"entries\":{},\"group\":{group},\"reasons\":[",
        timeline.entries
    )?;
    for (i, reason) in Truncation::ALL.iter().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        write!(out, "{sep}\"{}\"", reason_name(*reason))?;
    }
    out.write_all(b"],\"colors\":[")?;
    for (i, color) in REASON_COLORS.iter().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        write!(out, "{sep}\"{color}\"")?;
    }
    write!(out, "],\"dmaColor\":\"{DMA_COLOR}\",\"tracks\":[")?;
    for (hart, t) in timeline.tracks.iter().enumerate() {
        if hart > 0 {
            out.write_all(b",")?;
        }
        let runs = || t.slices.chunks(group).zip(t.backs.chunks(group));
        out.write_all(b"{\"seq\":")?;
        write_deltas(out, runs().map(|(s, _)| s[0].0))?;
        out.write_all(b",\"steps\":")?;
        write_numbers(out, runs().map(|(s, _)| s.iter().map(|e| e.2).sum()))?;
        out.write_all(b",\"reason\":")?;
        write_numbers(out, runs().map(|(s, _)| commonest_reason(s) as u64))?;
        out.write_all(b",\"back\":")?;
        write_numbers(
            out,
            runs().map(|(_, b)| b.iter().copied().max().unwrap_or(0)),
        )?;
        if group > 1 {
            out.write_all(b",\"span\":")?;
            write_numbers(out, runs().map(|(s, _)| s[s.len() - 1].0 - s[0].0))?;
            out.write_all(b",\"count\":")?;
            write_numbers(out, runs().map(|(s, _)| s.len() as u64))?;
        }
        out.write_all(b",\"linesSeq\":")?;
        write_deltas(out, t.lines.iter().step_by(group).map(|l| l.0))?;
        out.write_all(b",\"linesAt\":")?;
        write_deltas(out, t.lines.iter().step_by(group).map(|l| l.1))?;
        out.write_all(b",\"exclusive\":")?;
        write_deltas(out, t.exclusive.iter().step_by(group).copied())?;
        out.write_all(b"}")?;
    }
    out.write_all(b"],\"dma\":{\"seq\":")?;
    write_deltas(out, timeline.dma.iter().step_by(group).map(|d| d.0))?;
    out.write_all(b",\"bytes\":")?;
    write_numbers(out, timeline.dma.iter().step_by(group).map(|d| d.1))?;
    // Histograms over every entry, per hart: [bucket][reason] for lengths.
    out.write_all(b"},\"lengthHistogram\":[")?;
    for (hart, t) in timeline.tracks.iter().enumerate() {
        let mut buckets: Vec<[u64; Truncation::ALL.len()]> = Vec::new();
        for &(_, _, steps, reason) in &t.slices {
            let b = log2_bucket(steps);
            if buckets.len() <= b {
                buckets.resize(b + 1, [0; Truncation::ALL.len()]);
            }
            buckets[b][reason as usize] += 1;
        }
        out.write_all(if hart > 0 { b",[" } else { b"[" })?;
        for (i, bucket) in buckets.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_numbers(out, bucket.iter().copied())?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"],\"backHistogram\":[")?;
    for (hart, t) in timeline.tracks.iter().enumerate() {
        let mut buckets: Vec<u64> = Vec::new();
        for &back in &t.backs {
            let b = log2_bucket(back);
            if buckets.len() <= b {
                buckets.resize(b + 1, 0);
            }
            buckets[b] += 1;
        }
        if hart > 0 {
            out.write_all(b",")?;
        }
        write_numbers(out, buckets.into_iter())?;
    }
    out.write_all(b"]}")
}

/// 0 for 0, else 1 + floor(log2 v): bucket b > 0 holds [2^(b-1), 2^b).
fn log2_bucket(v: u64) -> usize {
    (u64::BITS - v.leading_zeros()) as usize
}

/// How most entries of a merged run ended.
fn commonest_reason(run: &[(u64, u64, u64, Truncation)]) -> Truncation {
    let mut counts = [0usize; Truncation::ALL.len()];
    for s in run {
        counts[s.3 as usize] += 1;
    }
    let best = (0..counts.len()).max_by_key(|&i| counts[i]).unwrap_or(0);
    Truncation::ALL[best]
}

fn write_numbers(out: &mut impl Write, values: impl Iterator<Item = u64>) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{v}")?;
    }
    out.write_all(b"]")
}

/// Increasing values as their differences (the first from 0): sequence
/// numbers of one hart are a few apart, so this halves the page.
fn write_deltas(out: &mut impl Write, values: impl Iterator<Item = u64>) -> io::Result<()> {
    let mut last = 0;
    write_numbers(
        out,
        values.map(|v| {
            let d = v - last;
            last = v;
            d
        }),
    )
}

fn html_text(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// 1234567 as "1 234 567" (thin spaces), for the tables.
fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    grouped
}

const STYLE: &str = r##"
body{font:14px/1.4 system-ui,sans-serif;margin:12px 16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:18px 0 6px}h3{font-size:15px;margin:12px 0 4px}
p{margin:4px 0}table{border-collapse:collapse}td,th{padding:1px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}tr:nth-child(even) td{background:#f5f5f5}
.per-hart{font-size:13px}.wide{overflow-x:auto}
.controls button{font:inherit;margin:0 2px;padding:1px 8px}.controls button[aria-pressed=true]{background:#333;color:#fff}
.sep{display:inline-block;width:16px}#view-range{margin-left:12px;color:#555}
#legend{margin:6px 0;font-size:13px}.key{margin-right:14px;white-space:nowrap}
.key i,td i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.key i.tick{width:2px;background:#111}.key i.excl{height:3px;vertical-align:1px;background:#000}
.note{background:#fff3cd;padding:4px 8px}.hint{color:#666;font-size:12px}
#lanes{position:relative;user-select:none}#timeline-canvas{display:block;cursor:grab}
.track,.dma-track{position:absolute;left:0;right:0;pointer-events:none}
.lane-label{position:absolute;left:0;top:50%;transform:translateY(-50%);font-size:13px;font-weight:600}
#tooltip{position:fixed;z-index:2;background:#222;color:#fff;padding:4px 8px;border-radius:3px;font-size:12px;white-space:pre;pointer-events:none}
.histogram select{font:inherit}.bars{display:flex;align-items:flex-end;gap:3px;height:190px;margin-top:6px}
.bar-col{display:flex;flex-direction:column;align-items:center;justify-content:flex-end;min-width:28px;height:100%}
.bar{display:flex;flex-direction:column-reverse;width:22px}.bar div{width:100%}
.bar-count,.bar-label{font-size:10px;color:#444;white-space:nowrap}
.share span{display:inline-block;height:10px;margin-right:6px;vertical-align:-1px}
"##;

const SCRIPT: &str = r##"
"use strict";
(function () {
const body = document.body;
window.addEventListener("error", e => { body.dataset.error = String(e.message); });
try { main(); body.dataset.ready = "yes"; }
catch (e) { body.dataset.error = String(e && e.stack || e); throw e; }

function main() {
const D = JSON.parse(document.getElementById("timeline-data").textContent);
const COLORS = D.colors, R = COLORS.length, HARTS = D.tracks.length;
// Lane geometry, fixed so that a screenshot's rows are where the DOM says.
const AXIS = 26, ROW = HARTS > 16 ? 16 : 34, GAP = 6, LABEL = 80, TRACK_BG = "#ececec";
const laneTop = i => AXIS + i * (ROW + GAP);

function undelta(a) { const r = new Float64Array(a.length); let v = 0; for (let i = 0; i < a.length; i++) { v += a[i]; r[i] = v; } return r; }
const tracks = D.tracks.map((t, hart) => {
  const seq = undelta(t.seq), n = seq.length, steps = Float64Array.from(t.steps);
  const start = new Float64Array(n), seqEnd = new Float64Array(n), instrEnd = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    start[i] = acc; acc += steps[i]; instrEnd[i] = acc;
    seqEnd[i] = seq[i] + (t.span ? t.span[i] : 0) + 1;
  }
  return { hart, n, seq, seqEnd, start, instrEnd, steps, reason: Uint8Array.from(t.reason),
    back: t.back, span: t.span, count: t.count, instructions: acc,
    linesSeq: undelta(t.linesSeq), linesAt: undelta(t.linesAt), exclusive: undelta(t.exclusive) };
});
const dma = { seq: undelta(D.dma.seq), bytes: D.dma.bytes };

// Extent of each clock.
let firstSeq = Infinity, lastSeq = 0, maxInstr = 0;
for (const t of tracks) if (t.n) { firstSeq = Math.min(firstSeq, t.seq[0]); lastSeq = Math.max(lastSeq, t.seqEnd[t.n - 1]); maxInstr = Math.max(maxInstr, t.instructions); }
if (dma.seq.length) { firstSeq = Math.min(firstSeq, dma.seq[0]); lastSeq = Math.max(lastSeq, dma.seq[dma.seq.length - 1] + 1); }
if (!isFinite(firstSeq)) { firstSeq = 0; lastSeq = 1; }
const EXTENT = { order: [firstSeq, Math.max(lastSeq, firstSeq + 1)], instructions: [0, Math.max(maxInstr, 1)] };
const MIN_SPAN = { order: 4, instructions: 16 };

const view = { clock: "order", from: EXTENT.order[0], to: EXTENT.order[1] };
readHash();

// DOM: one lane element per hart and one for DMA over the canvas.
const lanes = document.getElementById("lanes"), canvas = document.getElementById("timeline-canvas");
const g = canvas.getContext("2d"), tooltip = document.getElementById("tooltip");
const section = document.getElementById("timeline");
const laneEls = [];
for (let i = 0; i <= HARTS; i++) {
  const el = document.createElement("div");
  if (i < HARTS) { el.className = "track"; el.dataset.hart = String(i); el.dataset.entries = String(tracks[i].n); }
  else { el.className = "dma-track"; el.dataset.dma = String(dma.seq.length); }
  el.style.top = laneTop(i) + "px"; el.style.height = ROW + "px";
  const label = document.createElement("span");
  label.className = "lane-label"; label.textContent = i < HARTS ? "hart " + i : "DMA";
  el.appendChild(label); lanes.appendChild(el); laneEls.push(el);
}
const HEIGHT = laneTop(HARTS + 1);
lanes.style.height = HEIGHT + "px";
let cssWidth = 0;
function resize() {
  cssWidth = Math.max(LABEL + 100, lanes.clientWidth);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * dpr); canvas.height = Math.round(HEIGHT * dpr);
  canvas.style.width = cssWidth + "px"; canvas.style.height = HEIGHT + "px";
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  // Where each lane's drawing is on the page, for whoever inspects it.
  const r = canvas.getBoundingClientRect(), x = r.left + window.scrollX, y = r.top + window.scrollY;
  laneEls.forEach((el, i) => {
    el.dataset.x0 = String(Math.round(x + LABEL)); el.dataset.x1 = String(Math.round(x + cssWidth));
    el.dataset.y0 = String(Math.round(y + laneTop(i))); el.dataset.y1 = String(Math.round(y + laneTop(i) + ROW));
  });
  draw();
}
const plotWidth = () => cssWidth - LABEL;

// First index i with a[i] > v (a non-decreasing).
function firstAbove(a, n, v) { let lo = 0, hi = n; while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] > v) hi = m; else lo = m + 1; } return lo; }
function firstAtLeast(a, n, v) { let lo = 0, hi = n; while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] >= v) hi = m; else lo = m + 1; } return lo; }

// An axis label precise to the tick step: 60.05k, 60.001M.
function axisLabel(v, step) {
  const a = Math.abs(v);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]])
    if (a >= d && a >= 10000) return (v / d).toFixed(Math.max(0, Math.ceil(-Math.log10(step / d) - 1e-9))) + s;
  return String(v);
}
function fmt(v) {
  const a = Math.abs(v);
  if (a < 10000) return String(Math.round(v * 100) / 100);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]])
    if (a >= d) return String(+(v / d).toPrecision(4)) + s;
  return String(v);
}
function niceStep(span, px) {
  const raw = span / Math.max(1, px / 110), p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function draw() {
  const W = plotWidth(), k = W / (view.to - view.from);
  g.clearRect(0, 0, cssWidth, HEIGHT);
  g.font = "11px system-ui, sans-serif"; g.textBaseline = "middle";
  // axis
  g.fillStyle = "#555"; g.fillText(view.clock === "order" ? "seq" : "instr.", 0, AXIS / 2);
  const step = niceStep(view.to - view.from, W);
  for (let v = Math.ceil(view.from / step) * step; v <= view.to; v += step) {
    const x = LABEL + Math.round((v - view.from) * k);
    g.fillStyle = "#999"; g.fillRect(x, AXIS - 6, 1, 6);
    g.fillStyle = "#333"; if (x + 50 < cssWidth) g.fillText(axisLabel(v, step), x + 3, AXIS / 2);
  }
  const order = view.clock === "order";
  tracks.forEach((t, i) => drawTrack(t, laneTop(i), order, W, k));
  drawDma(laneTop(HARTS), order, W, k);
  document.getElementById("view-range").textContent =
    (order ? "sequence numbers " : "instructions ") + fmt(view.from) + " \u2013 " + fmt(view.to);
  section.dataset.clock = view.clock; section.dataset.from = String(view.from); section.dataset.to = String(view.to);
  for (const b of document.querySelectorAll("button[data-clock]")) b.setAttribute("aria-pressed", String(b.dataset.clock === view.clock));
  writeHash();
}

// Entries wider than 2 px are rectangles of their colour; narrower ones
// that share a pixel column stack it by their endings' proportions, so a
// zoomed-out view still shows what the recording is made of.
function drawTrack(t, y, order, W, k) {
  g.fillStyle = TRACK_BG; g.fillRect(LABEL, y, W, ROW);
  const pos = order ? t.seq : t.start, end = order ? t.seqEnd : t.instrEnd;
  const counts = new Float64Array(R);
  let col = -1, pending = 0;
  function flush() {
    if (!pending) return;
    let top = 0, seen = 0;
    for (let r = 0; r < R; r++) if (counts[r]) {
      seen += counts[r];
      const bottom = Math.round(ROW * seen / pending);
      if (bottom > top) { g.fillStyle = COLORS[r]; g.fillRect(LABEL + col, y + top, 1, bottom - top); }
      top = bottom; counts[r] = 0;
    }
    pending = 0;
  }
  for (let i = firstAbove(end, t.n, view.from); i < t.n; i++) {
    const x0 = (pos[i] - view.from) * k;
    if (x0 >= W) break;
    const x1 = (end[i] - view.from) * k;
    if (x1 - x0 >= 2) {
      flush();
      const a = Math.max(0, Math.floor(x0)), b = Math.min(W, Math.floor(x1));
      // a 1 px gap between wide neighbours shows where one entry ends
      g.fillStyle = COLORS[t.reason[i]]; g.fillRect(LABEL + a, y, Math.max(1, b - a - (b - a >= 4 ? 1 : 0)), ROW);
      col = -1;
    } else {
      const c = Math.min(W - 1, Math.max(0, Math.floor(x0)));
      if (c !== col) { flush(); col = c; }
      counts[t.reason[i]] += 1; pending += 1;
    }
  }
  flush();
  // interrupt-line changes: ticks along the top
  const lines = order ? t.linesSeq : t.linesAt;
  g.fillStyle = "#111";
  for (let i = firstAtLeast(lines, lines.length, view.from); i < lines.length && lines[i] <= view.to; i++)
    g.fillRect(LABEL + Math.min(W - 1, Math.floor((lines[i] - view.from) * k)), y, 1, 4);
  // exclusive entries: a bar along the bottom
  for (const s of t.exclusive) {
    const i = firstAbove(t.seq, t.n, s) - 1;
    if (i < 0) continue;
    const x0 = (pos[i] - view.from) * k, x1 = (end[i] - view.from) * k;
    if (x1 < 0 || x0 >= W) continue;
    const a = Math.max(0, Math.floor(x0));
    g.fillStyle = "#000"; g.fillRect(LABEL + a, y + ROW - 3, Math.max(1, Math.min(W, Math.floor(x1)) - a), 3);
  }
}

function drawDma(y, order, W, k) {
  g.fillStyle = TRACK_BG; g.fillRect(LABEL, y, W, ROW);
  if (!order) {
    g.fillStyle = "#777"; g.fillText("DMA has no instruction count: it is drawn on the global order only", LABEL + 6, y + ROW / 2);
    return;
  }
  g.fillStyle = D.dmaColor;
  const s = dma.seq;
  for (let i = firstAbove(s, s.length, view.from - 1); i < s.length; i++) {
    const x0 = (s[i] - view.from) * k;
    if (x0 >= W) break;
    const a = Math.max(0, Math.floor(x0)), b = Math.min(W, Math.floor(x0 + k));
    g.fillRect(LABEL + a, y, Math.max(1, b - a - (b - a >= 4 ? 1 : 0)), ROW);
  }
  if (!s.length) { g.fillStyle = "#777"; g.fillText("no DMA in this recording", LABEL + 6, y + ROW / 2); }
}

// --- the view: zoom, pan, clock, address ---
function setView(from, to) {
  const [lo, hi] = EXTENT[view.clock];
  let span = Math.min(hi - lo, Math.max(MIN_SPAN[view.clock], to - from));
  from = Math.max(lo, Math.min(from, hi - span));
  view.from = from; view.to = from + span;
  draw();
}
function zoomAt(v, factor) { const span = (view.to - view.from) * factor; setView(v - (v - view.from) * factor, v - (v - view.from) * factor + span); }
function setClock(clock) { view.clock = clock; setView(EXTENT[clock][0], EXTENT[clock][1]); }
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("clock") in EXTENT) view.clock = p.get("clock");
  const [lo, hi] = EXTENT[view.clock];
  const from = Number(p.get("from")), to = Number(p.get("to"));
  view.from = lo; view.to = hi;
  if (p.has("from") && p.has("to") && isFinite(from) && isFinite(to) && to > from) {
    const span = Math.min(hi - lo, Math.max(MIN_SPAN[view.clock], to - from));
    view.from = Math.max(lo, Math.min(from, hi - span)); view.to = view.from + span;
  }
}
// Once the view settles: browsers throttle (Safari: throw on) frequent
// history updates, and a wheel spin makes dozens a second.
let hashTimer = 0;
function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    try { history.replaceState(null, "", "#clock=" + view.clock + "&from=" + Math.round(view.from) + "&to=" + Math.round(view.to)); }
    catch (e) { /* the address is a convenience */ }
  }, 250);
}
for (const b of document.querySelectorAll("button[data-clock]")) b.addEventListener("click", () => setClock(b.dataset.clock));
const mid = () => (view.from + view.to) / 2;
document.getElementById("zoom-in").addEventListener("click", () => zoomAt(mid(), 0.5));
document.getElementById("zoom-out").addEventListener("click", () => zoomAt(mid(), 2));
document.getElementById("zoom-reset").addEventListener("click", () => setView(EXTENT[view.clock][0], EXTENT[view.clock][1]));
const valueAt = clientX => view.from + (clientX - canvas.getBoundingClientRect().left - LABEL) * (view.to - view.from) / plotWidth();
canvas.addEventListener("wheel", ev => {
  ev.preventDefault();
  const x = ev.clientX - canvas.getBoundingClientRect().left;
  zoomAt(x < LABEL ? mid() : valueAt(ev.clientX), Math.exp(Math.max(-3, Math.min(3, ev.deltaY * 0.0015))));
}, { passive: false });
let drag = null;
canvas.addEventListener("mousedown", ev => { drag = { x: ev.clientX, from: view.from, to: view.to }; canvas.style.cursor = "grabbing"; tooltip.hidden = true; });
window.addEventListener("mouseup", () => { drag = null; canvas.style.cursor = ""; });
window.addEventListener("mousemove", ev => {
  if (!drag) return;
  const shift = (ev.clientX - drag.x) * (drag.to - drag.from) / plotWidth();
  setView(drag.from - shift, drag.to - shift);
});

// --- hover ---
canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
canvas.addEventListener("mousemove", ev => {
  if (drag) return;
  const r = canvas.getBoundingClientRect(), x = ev.clientX - r.left - LABEL, y = ev.clientY - r.top - AXIS;
  const lane = Math.floor(y / (ROW + GAP));
  const hit = x >= 0 && y >= 0 && y - lane * (ROW + GAP) < ROW ? describe(lane, valueAt(ev.clientX), 3 * (view.to - view.from) / plotWidth()) : null;
  if (!hit) { tooltip.hidden = true; return; }
  tooltip.textContent = hit.text; tooltip.dataset.hart = hit.hart; tooltip.dataset.seq = hit.seq;
  tooltip.hidden = false;
  tooltip.style.left = Math.min(ev.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4) + "px";
  tooltip.style.top = (ev.clientY + 16) + "px";
});
// The entry under value v of `lane` (or within tol of it).
function describe(lane, v, tol) {
  const order = view.clock === "order";
  if (lane === HARTS) {
    if (!order) return null;
    const s = dma.seq, i = firstAbove(s, s.length, v) - 1;
    if (i < 0 || v - s[i] > 1 + tol) return null;
    return { hart: "dma", seq: s[i], text: "seq " + s[i] + " \u00b7 DMA\n" + dma.bytes[i] + " bytes written into guest memory" };
  }
  const t = tracks[lane];
  if (!t) return null;
  const pos = order ? t.seq : t.start, end = order ? t.seqEnd : t.instrEnd;
  let i = firstAbove(end, t.n, v);
  if (!(i < t.n && pos[i] <= v)) {
    const before = i - 1, after = i;
    const db = before >= 0 ? v - end[before] : Infinity, da = after < t.n ? pos[after] - v : Infinity;
    i = db <= da ? before : after;
    if (Math.min(db, da) > tol) return null;
  }
  const count = t.count ? t.count[i] : 1, name = D.reasons[t.reason[i]];
  const lines = [];
  if (count > 1) lines.push("seq " + t.seq[i] + "\u2013" + (t.seq[i] + t.span[i]) + " \u00b7 hart " + lane + " \u00b7 " + count + " entries merged");
  else lines.push("seq " + t.seq[i] + " \u00b7 hart " + lane);
  lines.push(t.steps[i].toLocaleString("en") + " instructions (hart's instructions " + t.start[i].toLocaleString("en") + "\u2013" + t.instrEnd[i].toLocaleString("en") + ")");
  lines.push((count > 1 ? "mostly ended: " : "ended: ") + name);
  lines.push("view reached back " + t.back[i] + (count > 1 ? " sequence numbers at most" : " sequence numbers"));
  const ex = firstAbove(t.exclusive, t.exclusive.length, t.seq[i] + (t.span ? t.span[i] : 0)) - 1;
  if (ex >= 0 && t.exclusive[ex] >= t.seq[i]) lines.push("ran exclusively");
  return { hart: String(lane), seq: t.seq[i], text: lines.join("\n") };
}

// --- histograms ---
function bucketLabel(b) { return b === 0 ? "0" : fmt(Math.pow(2, b - 1)); }
function bucketRange(b) { return b <= 1 ? String(b) : Math.pow(2, b - 1).toLocaleString("en") + "\u2013" + (Math.pow(2, b) - 1).toLocaleString("en"); }
// perHart[h][bucket] is a count, or per reason an array of counts
function histogram(el, perHart, stacked, unit) {
  const select = document.createElement("select");
  select.innerHTML = '<option value="all">all harts</option>' + perHart.map((_, h) => '<option value="' + h + '">hart ' + h + "</option>").join("");
  const label = document.createElement("label"); label.append("show: ", select);
  const bars = document.createElement("div"); bars.className = "bars";
  el.append(label, bars);
  const layers = stacked ? R : 1;
  function render() {
    const chosen = select.value === "all" ? perHart : [perHart[Number(select.value)]];
    const n = Math.max(0, ...chosen.map(h => h.length));
    const sum = []; // sum[bucket][layer]
    for (let b = 0; b < n; b++) {
      const row = new Array(layers).fill(0);
      for (const h of chosen) if (h[b] !== undefined) for (let l = 0; l < layers; l++) row[l] += stacked ? h[b][l] : h[b];
      sum.push(row);
    }
    const totals = sum.map(row => row.reduce((a, c) => a + c, 0)), max = Math.max(1, ...totals);
    bars.replaceChildren();
    el.dataset.showing = select.value; el.dataset.total = String(totals.reduce((a, c) => a + c, 0));
    sum.forEach((row, b) => {
      const colEl = document.createElement("div"); colEl.className = "bar-col"; colEl.dataset.bucket = String(b); colEl.dataset.count = String(totals[b]);
      colEl.title = bucketRange(b) + " " + unit + ": " + totals[b].toLocaleString("en") +
        (stacked ? row.map((c, l) => c ? "\n  " + D.reasons[l] + ": " + c.toLocaleString("en") : "").join("") : "");
      const count = document.createElement("span"); count.className = "bar-count"; count.textContent = totals[b] ? fmt(totals[b]) : "";
      const bar = document.createElement("div"); bar.className = "bar";
      row.forEach((c, l) => {
        if (!c) return;
        const seg = document.createElement("div");
        seg.style.height = Math.max(1, 150 * c / max) + "px"; seg.style.background = stacked ? COLORS[l] : "#4e79a7";
        bar.appendChild(seg);
      });
      const name = document.createElement("span"); name.className = "bar-label"; name.textContent = bucketLabel(b);
      colEl.append(count, bar, name); bars.appendChild(colEl);
    });
  }
  select.addEventListener("change", render);
  render();
}
histogram(document.getElementById("length-histogram"), D.lengthHistogram, true, "instructions");
histogram(document.getElementById("back-histogram"), D.backHistogram, false, "sequence numbers back");

window.addEventListener("resize", resize);
resize();
}
})();
"##;

#[cfg(test)]
mod tests {
    use samsara_trace::{ChunkRecord, Entry};

    use super::*;

    fn chunk(hart: u8, steps: u64, reason: Truncation) -> Entry {
        Entry::Chunk(ChunkRecord {
            hart,
            steps,
            back: 2,
            reason,
            exclusive: false,
            events: Vec::new(),
            check: None,
        })
    }

    fn page(timeline: &Timeline, title: &str, max_drawn: usize) -> String {
        let mut out = Vec::new();
        write_html_drawing_at_most(timeline, title, None, max_drawn, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The data block is JSON whose columns hold every entry, and a title
    /// cannot end the script or inject markup.
    #[test]
    fn the_page_embeds_every_entry_as_json_and_escapes_the_title() {
        let mut timeline = Timeline::new(2);
        for seq in 1..=10 {
            timeline.see(
                seq,
                &chunk((seq % 2) as u8, seq * 100, Truncation::SizeLimit),
            );
        }
        let html = page(&timeline, "</script><b>x", MAX_DRAWN_ENTRIES);
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("&lt;/script&gt;&lt;b&gt;x"));
        let data = data_of(&html);
        assert_eq!(data["group"], 1);
        let hart1 = &data["tracks"][1];
        assert_eq!(hart1["seq"], serde_json::json!([1, 2, 2, 2, 2]));
        assert_eq!(hart1["steps"], serde_json::json!([100, 300, 500, 700, 900]));
        assert!(hart1.get("span").is_none());
        assert!(!html.contains("merged-note"));
    }

    /// Past the cap, runs of a hart's entries merge; the page says so and
    /// the merged runs keep the instructions and sequence ranges.
    #[test]
    fn a_recording_past_the_cap_is_merged_and_the_page_says_so() {
        let mut timeline = Timeline::new(1);
        for seq in 1..=10 {
            let reason = if seq == 3 {
                Truncation::DeviceOp
            } else {
                Truncation::SizeLimit
            };
            timeline.see(seq, &chunk(0, 10, reason));
        }
        let html = page(&timeline, "t", 4);
        assert!(html.contains("id=\"merged-note\""));
        let data = data_of(&html);
        assert_eq!(data["group"], 3);
        let hart0 = &data["tracks"][0];
        assert_eq!(hart0["seq"], serde_json::json!([1, 3, 3, 3]));
        assert_eq!(hart0["span"], serde_json::json!([2, 2, 2, 0]));
        assert_eq!(hart0["count"], serde_json::json!([3, 3, 3, 1]));
        assert_eq!(hart0["steps"], serde_json::json!([30, 30, 30, 10]));
        assert_eq!(hart0["reason"][0], Truncation::SizeLimit as u64);
        // the histogram still counts all 10 entries: 9 + 1 of 10 instructions
        let bucket = &data["lengthHistogram"][0][log2_bucket(10)];
        assert_eq!(bucket[Truncation::SizeLimit as usize], 9);
        assert_eq!(bucket[Truncation::DeviceOp as usize], 1);
    }

    fn data_of(html: &str) -> serde_json::Value {
        let start = html.find("id=\"timeline-data\">").unwrap() + "id=\"timeline-data\">".len();
        let len = html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..start + len]).unwrap()
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234567), "1\u{202f}234\u{202f}567");
    }
}
