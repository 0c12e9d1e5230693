//! The entry log every strategy records into: the global order's sequence
//! numbers, and the entries on their way to the trace writer, cut into
//! blocks. It lives under the strategy's commit lock: taking a sequence
//! number and appending the entry happen in one critical section, so the
//! log is in sequence order.

use std::time::{Duration, Instant};

use samsara_trace::{Entry, TraceError, TraceWriter, Truncation};

/// Entries per trace block.
const BLOCK_ENTRIES: usize = 8192;
/// A block is also cut when its oldest entry is this old, so a recording
/// killed at any moment loses at most this much of its tail.
const BLOCK_MAX_AGE: Duration = Duration::from_millis(250);
/// A block is also cut once its DMA data reach this size: a disk streaming
/// at memory speed could otherwise fill a block's io stream past the
/// format's 256 MiB limit within `BLOCK_MAX_AGE`.
const BLOCK_MAX_DMA_BYTES: usize = 16 << 20;

/// Sequence numbers and the entries not yet handed to the writer.
pub(crate) struct EntryLog {
    next_seq: u64,
    /// Sequence number of the last device access (CREW: their own order).
    last_device_seq: u64,
    pending: Vec<Entry>,
    pending_first_seq: u64,
    /// When the oldest pending entry was appended.
    pending_since: Instant,
    /// DMA data bytes pending.
    pending_dma_bytes: usize,
    writer: Option<TraceWriter>,
    failure: Option<TraceError>,
    /// Entries per truncation reason (indexed by `Truncation as usize`).
    reasons: [u64; 8],
}

/// What the log holds once the recording has stopped.
pub(crate) struct ClosedLog {
    /// Entries sequenced.
    pub entries: u64,
    /// Why the writer failed, if it did.
    pub failure: Option<TraceError>,
    /// Entries per truncation reason.
    pub reasons: [u64; 8],
    /// The writer, with every entry handed to it.
    pub writer: Option<TraceWriter>,
}

impl EntryLog {
    pub(crate) fn new() -> Self {
        Self::starting_at(1)
    }

    /// A log whose first entry is `first_seq` (a takeover goes on there).
    pub(crate) fn starting_at(first_seq: u64) -> Self {
        Self {
            next_seq: first_seq,
            last_device_seq: first_seq - 1,
            pending: Vec::new(),
            pending_first_seq: first_seq,
            pending_since: Instant::now(),
            pending_dma_bytes: 0,
            writer: None,
            failure: None,
            reasons: [0; 8],
        }
    }

    pub(crate) fn set_writer(&mut self, writer: TraceWriter) {
        self.writer = Some(writer);
    }

    /// The sequence number the next entry will take.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes the next sequence number for an entry that ended for `reason`.
    pub(crate) fn sequence(&mut self, reason: Truncation) -> u64 {
        self.reasons[reason as usize] += 1;
        self.sequence_dma()
    }

    /// Takes the next sequence number for a DMA entry.
    pub(crate) fn sequence_dma(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Device access `seq` follows the previous one: how far back that is.
    pub(crate) fn device_back(&mut self, seq: u64) -> u64 {
        let back = seq - self.last_device_seq;
        self.last_device_seq = seq;
        back
    }

    /// Appends the entry with the lowest sequence number not yet appended
    /// and hands full blocks to the writer. False once the writer has
    /// failed: the recording must stop.
    #[must_use]
    pub(crate) fn append(&mut self, entry: Entry) -> bool {
        if self.pending.is_empty() {
            self.pending_since = Instant::now();
        }
        if let Entry::Dma(dma) = &entry {
            self.pending_dma_bytes += dma.writes.iter().map(|(_, data)| data.len()).sum::<usize>();
        }
        self.pending.push(entry);
        if self.pending.len() >= BLOCK_ENTRIES
            || self.pending_dma_bytes >= BLOCK_MAX_DMA_BYTES
            || self.pending_since.elapsed() >= BLOCK_MAX_AGE
        {
            return self.flush();
        }
        self.failure.is_none()
    }

    /// Hands what is pending to the writer as a block. False once the
    /// writer has failed.
    pub(crate) fn flush(&mut self) -> bool {
        self.pending_dma_bytes = 0;
        let entries = std::mem::take(&mut self.pending);
        let first = self.pending_first_seq;
        self.pending_first_seq += entries.len() as u64;
        if let Some(writer) = &self.writer
            && let Err(e) = writer.send(first, entries)
            && self.failure.is_none()
        {
            self.failure = Some(e);
        }
        self.failure.is_none()
    }

    /// Hands what is pending to the writer if its oldest entry is at
    /// least `age` old. False once the writer has failed.
    pub(crate) fn flush_if_older(&mut self, age: Duration) -> bool {
        if !self.pending.is_empty() && self.pending_since.elapsed() >= age {
            return self.flush();
        }
        self.failure.is_none()
    }

    /// Flushes and gives up the writer: the recording has stopped.
    pub(crate) fn close(&mut self) -> ClosedLog {
        let _ = self.flush();
        ClosedLog {
            entries: self.next_seq - 1,
            failure: self.failure.take(),
            reasons: self.reasons,
            writer: self.writer.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use samsara_trace::{DmaRecord, TraceHeader};

    use super::*;

    fn dma(bytes: usize) -> Entry {
        Entry::Dma(DmaRecord {
            writes: vec![(0x8000_0000, vec![0xa5; bytes])],
        })
    }

    /// DMA data cut blocks by size: a fast disk cannot overfill one block's
    /// io stream before the block is old enough to be cut.
    #[test]
    fn dma_data_cut_blocks_by_size() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("t.trace");
        let mut log = EntryLog::new();
        log.set_writer(
            TraceWriter::create(&path, &TraceHeader::default()).expect("creating a trace"),
        );
        for _ in 0..2 {
            log.sequence_dma();
        }
        assert!(log.append(dma(BLOCK_MAX_DMA_BYTES / 2)));
        assert_eq!(log.pending.len(), 1, "half a block's worth stays pending");
        assert!(log.append(dma(BLOCK_MAX_DMA_BYTES / 2)));
        assert!(
            log.pending.is_empty(),
            "a full block's worth is handed over"
        );
        assert_eq!(log.pending_first_seq, 3);
        log.sequence_dma();
        assert!(log.append(dma(1)));
        assert_eq!(log.pending.len(), 1, "the byte count starts again");
        let closed = log.close();
        assert_eq!(closed.entries, 3);
        assert!(closed.failure.is_none());
        closed
            .writer
            .expect("the writer")
            .finish(None)
            .expect("finishing the trace");
    }

    #[test]
    fn sequence_numbers_count_reasons_and_device_order() {
        let mut log = EntryLog::new();
        assert_eq!(log.sequence(Truncation::SizeLimit), 1);
        assert_eq!(log.sequence(Truncation::DeviceOp), 2);
        assert_eq!(
            log.device_back(2),
            2,
            "the first device access reaches back to 0"
        );
        assert_eq!(log.sequence_dma(), 3);
        assert_eq!(log.sequence(Truncation::DeviceOp), 4);
        assert_eq!(log.device_back(4), 2);
        let closed = log.close();
        assert_eq!(closed.entries, 4);
        assert_eq!(closed.reasons[Truncation::DeviceOp as usize], 2);
        assert_eq!(closed.reasons[Truncation::SizeLimit as usize], 1);
    }
}
