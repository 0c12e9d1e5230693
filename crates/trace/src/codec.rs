//! Entry encoding into the block's streams, and back. Every read is bounds
//! checked and every length is checked against the bytes actually present,
//! so a corrupt block can produce an error but never a panic or a large
//! allocation.

use crate::{
    Check, ChunkRecord, DmaRecord, Entry, Event, STREAM_CHECKS, STREAM_COMMIT, STREAM_EVENTS,
    STREAM_IO, STREAMS, Truncation,
};

const KIND_CHUNK: u8 = 0;
const KIND_DMA: u8 = 1;
const HAS_EVENTS: u8 = 1 << 2;
const HAS_CHECK: u8 = 1 << 3;
const EXCLUSIVE: u8 = 1 << 4;
const REASON_SHIFT: u8 = 5;

const EV_LINES: u8 = 0;
const EV_TIME: u8 = 1;
const EV_MMIO_READ: u8 = 2;
const EV_MMIO_FAULT: u8 = 3;
const EV_LINES_UPDATE: u8 = 4;
const EV_AFTER: u8 = 5;
const EV_REFUSED: u8 = 6;

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encoder state: time values are delta-coded within a block.
#[derive(Default)]
pub(crate) struct Encoder {
    pub streams: [Vec<u8>; STREAMS],
    last_time: u64,
}

impl Encoder {
    pub fn push(&mut self, entry: &Entry) {
        match entry {
            Entry::Chunk(c) => self.push_chunk(c),
            Entry::Dma(d) => {
                self.streams[STREAM_COMMIT].push(KIND_DMA);
                let io = &mut self.streams[STREAM_IO];
                put_varint(io, d.writes.len() as u64);
                for (addr, data) in &d.writes {
                    put_varint(io, *addr);
                    put_varint(io, data.len() as u64);
                    io.extend_from_slice(data);
                }
            }
        }
    }

    fn push_chunk(&mut self, c: &ChunkRecord) {
        let mut tag = KIND_CHUNK | ((c.reason as u8) << REASON_SHIFT);
        if !c.events.is_empty() {
            tag |= HAS_EVENTS;
        }
        if c.check.is_some() {
            tag |= HAS_CHECK;
        }
        if c.exclusive {
            tag |= EXCLUSIVE;
        }
        let commit = &mut self.streams[STREAM_COMMIT];
        commit.push(tag);
        commit.push(c.hart);
        put_varint(commit, c.steps);
        put_varint(commit, c.back);
        if !c.events.is_empty() {
            let mut last_time = self.last_time;
            let ev = &mut self.streams[STREAM_EVENTS];
            put_varint(ev, c.events.len() as u64);
            for e in &c.events {
                match *e {
                    Event::Lines(v) => {
                        ev.push(EV_LINES);
                        put_varint(ev, v);
                    }
                    Event::Time(t) => {
                        ev.push(EV_TIME);
                        put_varint(ev, zigzag(t.wrapping_sub(last_time) as i64));
                        last_time = t;
                    }
                    Event::MmioRead(v) => {
                        ev.push(EV_MMIO_READ);
                        put_varint(ev, v);
                    }
                    Event::MmioFault => ev.push(EV_MMIO_FAULT),
                    Event::LinesUpdate(v) => {
                        ev.push(EV_LINES_UPDATE);
                        put_varint(ev, v);
                    }
                    Event::After { hart, steps, back } => {
                        ev.push(EV_AFTER);
                        ev.push(hart);
                        put_varint(ev, steps);
                        put_varint(ev, back);
                    }
                    Event::Refused { page, write } => {
                        ev.push(EV_REFUSED);
                        put_varint(ev, (page << 1) | u64::from(write));
                    }
                }
            }
            self.last_time = last_time;
        }
        if let Some(check) = &c.check {
            let out = &mut self.streams[STREAM_CHECKS];
            out.extend_from_slice(&check.hart_digest.to_le_bytes());
            put_varint(out, check.pc);
            for &x in &check.x {
                put_varint(out, x);
            }
            put_varint(out, check.pages.len() as u64);
            for &(page, hash) in &check.pages {
                put_varint(out, page);
                out.extend_from_slice(&hash.to_le_bytes());
            }
        }
    }
}

/// Why a stream could not be decoded (the reader adds the file offset).
#[derive(Debug)]
pub(crate) struct DecodeError {
    pub stream: usize,
    pub at: usize,
    pub what: &'static str,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    stream: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], stream: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            stream,
        }
    }

    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            stream: self.stream,
            at: self.pos,
            what,
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.err("stream ends inside an entry"))?;
        self.pos += 1;
        Ok(b)
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let end = self.pos + 8;
        let b = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.err("stream ends inside an entry"))?;
        self.pos = end;
        Ok(u64::from_le_bytes(
            b.try_into()
                .map_err(|_| self.err("stream ends inside an entry"))?,
        ))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err(self.err("varint overflows 64 bits"));
                }
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// A length that must fit in the bytes left (each item at least `min` bytes).
    fn len(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min.max(1) as u64) > left {
            return Err(self.err("length exceeds the bytes present"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err("length overflows"))?;
        let b = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.err("stream ends inside an entry"))?;
        self.pos = end;
        Ok(b)
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Decodes `count` entries from a block's decompressed streams.
pub(crate) fn decode(streams: &[Vec<u8>; STREAMS], count: u32) -> Result<Vec<Entry>, DecodeError> {
    let mut commit = Cursor::new(&streams[STREAM_COMMIT], STREAM_COMMIT);
    let mut events = Cursor::new(&streams[STREAM_EVENTS], STREAM_EVENTS);
    let mut io = Cursor::new(&streams[STREAM_IO], STREAM_IO);
    let mut checks = Cursor::new(&streams[STREAM_CHECKS], STREAM_CHECKS);
    // Each entry takes at least one commit byte: no allocation beyond that.
    if count as usize > streams[STREAM_COMMIT].len() {
        return Err(commit.err("entry count exceeds the commit stream"));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut last_time = 0u64;
    for _ in 0..count {
        let tag = commit.u8()?;
        match tag & 3 {
            KIND_DMA => {
                let n = io.len(2)?;
                let mut writes = Vec::with_capacity(n);
                for _ in 0..n {
                    let addr = io.varint()?;
                    let len = io.len(1)?;
                    writes.push((addr, io.bytes(len)?.to_vec()));
                }
                out.push(Entry::Dma(DmaRecord { writes }));
            }
            KIND_CHUNK => {
                let reason = Truncation::from_bits(tag >> REASON_SHIFT)
                    .ok_or_else(|| commit.err("unknown truncation reason"))?;
                let hart = commit.u8()?;
                let steps = commit.varint()?;
                let back = commit.varint()?;
                let mut evs = Vec::new();
                if tag & HAS_EVENTS != 0 {
                    let n = events.len(1)?;
                    evs.reserve(n);
                    for _ in 0..n {
                        let e = match events.u8()? {
                            EV_LINES => Event::Lines(events.varint()?),
                            EV_TIME => {
                                let t = last_time.wrapping_add(unzigzag(events.varint()?) as u64);
                                last_time = t;
                                Event::Time(t)
                            }
                            EV_MMIO_READ => Event::MmioRead(events.varint()?),
                            EV_MMIO_FAULT => Event::MmioFault,
                            EV_LINES_UPDATE => Event::LinesUpdate(events.varint()?),
                            EV_AFTER => Event::After {
                                hart: events.u8()?,
                                steps: events.varint()?,
                                back: events.varint()?,
                            },
                            EV_REFUSED => {
                                let v = events.varint()?;
                                Event::Refused {
                                    page: v >> 1,
                                    write: v & 1 != 0,
                                }
                            }
                            _ => return Err(events.err("unknown event kind")),
                        };
                        evs.push(e);
                    }
                }
                let check = if tag & HAS_CHECK != 0 {
                    let hart_digest = checks.u64_le()?;
                    let pc = checks.varint()?;
                    let mut x = [0u64; 32];
                    for r in &mut x {
                        *r = checks.varint()?;
                    }
                    let n = checks.len(9)?;
                    let mut pages = Vec::with_capacity(n);
                    for _ in 0..n {
                        let page = checks.varint()?;
                        pages.push((page, checks.u64_le()?));
                    }
                    Some(Box::new(Check {
                        hart_digest,
                        pc,
                        x,
                        pages,
                    }))
                } else {
                    None
                };
                out.push(Entry::Chunk(ChunkRecord {
                    hart,
                    steps,
                    back,
                    reason,
                    exclusive: tag & EXCLUSIVE != 0,
                    events: evs,
                    check,
                }));
            }
            _ => return Err(commit.err("unknown entry kind")),
        }
    }
    for c in [&commit, &events, &io, &checks] {
        if !c.done() {
            return Err(c.err("bytes left over after the block's entries"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::Chunk(ChunkRecord {
                hart: 3,
                steps: 200_000,
                back: 2,
                reason: Truncation::SizeLimit,
                exclusive: false,
                events: vec![
                    Event::Lines(0x80),
                    Event::Time(1_000_000),
                    Event::Time(999_999),
                    Event::MmioRead(u64::MAX),
                    Event::MmioFault,
                ],
                check: Some(Box::new(Check {
                    hart_digest: 7,
                    pc: 0x8000_0000,
                    x: [5; 32],
                    pages: vec![(0x80001, 9)],
                })),
            }),
            Entry::Dma(DmaRecord {
                writes: vec![(0x8000_1000, vec![1, 2, 3]), (0x8000_2000, vec![])],
            }),
            Entry::Chunk(ChunkRecord {
                hart: 0,
                steps: 1,
                back: 1,
                reason: Truncation::DeviceOp,
                exclusive: true,
                events: vec![],
                check: None,
            }),
            Entry::Chunk(ChunkRecord {
                hart: 1,
                steps: 0,
                back: 1,
                reason: Truncation::Ownership,
                exclusive: false,
                events: vec![
                    Event::Lines(0),
                    Event::After {
                        hart: 3,
                        steps: 200_000,
                        back: 3,
                    },
                    Event::Refused {
                        page: 0x80_123,
                        write: true,
                    },
                ],
                check: None,
            }),
        ]
    }

    #[test]
    fn round_trip() {
        let mut enc = Encoder::default();
        let entries = sample();
        entries.iter().for_each(|e| enc.push(e));
        assert_eq!(decode(&enc.streams, entries.len() as u32).unwrap(), entries);
    }

    #[test]
    fn wrong_count_is_an_error() {
        let mut enc = Encoder::default();
        let entries = sample();
        entries.iter().for_each(|e| enc.push(e));
        let n = entries.len() as u32;
        assert!(decode(&enc.streams, n - 1).is_err());
        assert!(decode(&enc.streams, n + 1).is_err());
    }

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor::new(&out, 0);
            prop_assert_eq!(c.varint().unwrap(), v);
            prop_assert!(c.done());
        }

        #[test]
        fn garbage_never_panics(s0 in proptest::collection::vec(any::<u8>(), 0..64), s1 in proptest::collection::vec(any::<u8>(), 0..64), n in 0u32..100) {
            let streams = [s0, s1, vec![], vec![]];
            let _ = decode(&streams, n);
        }
    }
}
