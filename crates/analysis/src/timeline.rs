//! The recording as a picture: one track per hart, each entry a slice
//! (its length in instructions, how it ended), device accesses, interrupt
//! line changes and DMA, on two clocks — the recording's global order
//! (sequence numbers) and each hart's instruction count. Written as Chrome
//! trace events (`chrome://tracing`, Perfetto's UI), or as a web page of
//! its own ([`crate::html`]). The entries come from
//! the replay's reading of the trace (`ReplaySession::tap_entries`): the
//! replay runs in parallel and verifies while the timeline is drawn.

use std::io::Write;

use samsara_trace::{Entry, Event, Truncation};
use serde_json::{Value, json};

/// A hart's entries, in its own instruction count.
#[derive(Clone, Debug, Default)]
pub struct Track {
    /// (sequence number, first instruction, steps, how it ended).
    pub slices: Vec<(u64, u64, u64, Truncation)>,
    /// Instructions run so far.
    pub instructions: u64,
    /// Interrupt-line changes: (sequence number, instruction, new lines).
    pub lines: Vec<(u64, u64, u64)>,
    /// How far back each entry's view reached (`ChunkRecord::back`, in
    /// sequence numbers: the window in which a conflicting write would
    /// have squashed it), one per slice, in the same order.
    pub backs: Vec<u64>,
    /// Sequence numbers of the entries run with every other hart stopped.
    pub exclusive: Vec<u64>,
}

/// What the timeline gathered.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// One per hart.
    pub tracks: Vec<Track>,
    /// DMA entries: (sequence number, bytes written).
    pub dma: Vec<(u64, u64)>,
    /// Entries seen.
    pub entries: u64,
    /// Events logged inside entries, counted by kind ([`EVENT_KINDS`]).
    pub events: [u64; EVENT_KINDS.len()],
    /// Entries carrying verification digests (`--check-every`).
    pub checks: u64,
}

/// Names of the kinds of [`Event`], in the order [`Timeline::events`]
/// counts them.
pub const EVENT_KINDS: [&str; 7] = [
    "interrupt lines at entry start",
    "time CSR read",
    "device read",
    "device access fault",
    "interrupt lines after a device access",
    "ordering edge (CREW)",
    "refused page (CREW)",
];

/// Where [`Timeline::events`] counts `event`.
fn event_kind(event: &Event) -> usize {
    match event {
        Event::Lines(_) => 0,
        Event::Time(_) => 1,
        Event::MmioRead(_) => 2,
        Event::MmioFault => 3,
        Event::LinesUpdate(_) => 4,
        Event::After { .. } => 5,
        Event::Refused { .. } => 6,
    }
}

/// Names of the ways an entry ends, as the timeline shows them.
pub fn reason_name(reason: Truncation) -> &'static str {
    match reason {
        Truncation::SizeLimit => "chunk (size limit)",
        Truncation::DeviceAccess => "chunk (to a device access)",
        Truncation::Wfi => "chunk (wfi)",
        Truncation::Trap => "chunk (trap or interrupt)",
        Truncation::Stop => "chunk (machine stopping)",
        Truncation::DeviceOp => "device access",
        Truncation::Spin => "chunk (spinning)",
        Truncation::Ownership => "segment (page ownership)",
    }
}

impl Timeline {
    /// A timeline of `harts` harts.
    pub fn new(harts: usize) -> Self {
        Self {
            tracks: vec![Track::default(); harts],
            ..Self::default()
        }
    }

    /// Entry `seq`, in the recording's order.
    pub fn see(&mut self, seq: u64, entry: &Entry) {
        self.entries += 1;
        match entry {
            Entry::Chunk(c) => {
                let Some(track) = self.tracks.get_mut(usize::from(c.hart)) else {
                    return;
                };
                let start = track.instructions;
                for e in &c.events {
                    self.events[event_kind(e)] += 1;
                    if let Event::Lines(l) | Event::LinesUpdate(l) = e {
                        track.lines.push((seq, start, *l));
                    }
                }
                track.slices.push((seq, start, c.steps, c.reason));
                track.backs.push(c.back);
                if c.exclusive {
                    track.exclusive.push(seq);
                }
                self.checks += u64::from(c.check.is_some());
                track.instructions += c.steps;
            }
            Entry::Dma(d) => {
                let bytes = d.writes.iter().map(|(_, w)| w.len() as u64).sum();
                self.dma.push((seq, bytes));
            }
        }
    }

    /// The Chrome trace-event document: process 1 on the global order
    /// (1 µs per entry), process 2 on instruction counts (1 µs per
    /// instruction), one thread per hart in each.
    pub fn trace_events(&self) -> Value {
        let mut bytes = Vec::new();
        self.write_trace_events(&mut bytes)
            .expect("writing to memory cannot fail");
        serde_json::from_slice(&bytes).expect("the timeline writes valid JSON")
    }

    /// Writes [`Timeline::trace_events`], streamed: a long recording has
    /// millions of events, and building them as one JSON value first took
    /// longer than the replay.
    pub fn write_trace_events(&self, out: &mut impl Write) -> std::io::Result<()> {
        let harts = self.tracks.len();
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        let mut first = true;
        let mut sep = |out: &mut dyn Write| -> std::io::Result<()> {
            if !std::mem::take(&mut first) {
                out.write_all(b",\n")?;
            }
            Ok(())
        };
        for (pid, name) in [
            (1, "global order (1 us = 1 entry)"),
            (2, "instructions (1 us = 1 instruction)"),
        ] {
            sep(out)?;
            write!(
                out,
                r#"{{"ph":"M","pid":{pid},"name":"process_name","args":{{"name":"{name}"}}}}"#
            )?;
            for hart in 0..harts {
                sep(out)?;
                write!(
                    out,
                    r#"{{"ph":"M","pid":{pid},"tid":{hart},"name":"thread_name","args":{{"name":"hart {hart}"}}}}"#
                )?;
            }
        }
        sep(out)?;
        write!(
            out,
            r#"{{"ph":"M","pid":1,"tid":{harts},"name":"thread_name","args":{{"name":"DMA"}}}}"#
        )?;
        for (hart, track) in self.tracks.iter().enumerate() {
            for &(seq, start, steps, reason) in &track.slices {
                let cat = if reason == Truncation::DeviceOp {
                    "device"
                } else {
                    "chunk"
                };
                let name = reason_name(reason);
                let args = format!(r#"{{"seq":{seq},"instructions":{steps},"ended":"{name}"}}"#);
                sep(out)?;
                write!(
                    out,
                    r#"{{"ph":"X","pid":1,"tid":{hart},"ts":{seq},"dur":1,"name":"{name}","cat":"{cat}","args":{args}}}"#
                )?;
                sep(out)?;
                write!(
                    out,
                    r#"{{"ph":"X","pid":2,"tid":{hart},"ts":{start},"dur":{steps},"name":"{name}","cat":"{cat}","args":{args}}}"#
                )?;
            }
            for &(seq, at, lines) in &track.lines {
                sep(out)?;
                write!(
                    out,
                    r#"{{"ph":"i","s":"t","pid":2,"tid":{hart},"ts":{at},"name":"interrupt lines","cat":"interrupt","args":{{"seq":{seq},"mip_lines":"{lines:#x}"}}}}"#
                )?;
            }
        }
        for &(seq, bytes) in &self.dma {
            sep(out)?;
            write!(
                out,
                r#"{{"ph":"X","pid":1,"tid":{harts},"ts":{seq},"dur":1,"name":"DMA","cat":"dma","args":{{"seq":{seq},"bytes":{bytes}}}}}"#
            )?;
        }
        out.write_all(b"\n]}\n")?;
        out.flush()
    }

    /// One line per hart and per kind of entry: the human summary.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "timeline: {} entries, {} harts, {} DMA",
            self.entries,
            self.tracks.len(),
            self.dma.len()
        )];
        for (hart, t) in self.tracks.iter().enumerate() {
            let device = t
                .slices
                .iter()
                .filter(|s| s.3 == Truncation::DeviceOp)
                .count();
            lines.push(format!(
                "  hart {hart}: {} entries ({} device accesses), {} instructions, {} interrupt-line changes",
                t.slices.len(),
                device,
                t.instructions,
                t.lines.len()
            ));
        }
        lines
    }

    /// One JSON object per entry (`--jsonl`).
    pub fn jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut rows: Vec<(u64, Value)> = Vec::new();
        for (hart, t) in self.tracks.iter().enumerate() {
            for &(seq, start, steps, reason) in &t.slices {
                rows.push((
                    seq,
                    json!({"analysis": "timeline", "seq": seq, "hart": hart,
                    "first_instruction": start, "instructions": steps,
                    "ended": reason_name(reason)}),
                ));
            }
        }
        for &(seq, bytes) in &self.dma {
            rows.push((
                seq,
                json!({"analysis": "timeline", "seq": seq, "dma_bytes": bytes}),
            ));
        }
        rows.sort_by_key(|r| r.0);
        for (_, row) in rows {
            serde_json::to_writer(&mut *out, &row)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}
