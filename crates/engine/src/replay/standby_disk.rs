//! A standby's disk: its own copy of the primary's initial image, driven
//! by the guest's own device writes during replay. The device does the
//! host I/O of every request (so guest writes reach the copy); each
//! completion waits here until the log's DMA entry for it comes, is checked
//! against it and applied to the device (its used-ring and interrupt
//! state), while RAM takes the logged bytes. At a takeover, completions the
//! log never got go to the recorder, which sequences them as its own.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use samsara_machine::devices::virtio::block::{Completion, CompletionSink, VirtioBlk};
use samsara_machine::ram::GuestRam;
use samsara_trace::DmaRecord;

use crate::record::CapturingMemory;

/// How long a DMA entry waits for the standby's own device to complete the
/// request: host I/O on the standby's disk, not guest time.
const COMPLETION_WAIT: Duration = Duration::from_secs(30);

/// The standby disk's completion sink.
#[derive(Default)]
pub struct StandbyDisk {
    state: Mutex<SinkState>,
    arrived: Condvar,
}

#[derive(Default)]
struct SinkState {
    waiting: VecDeque<Completion>,
    live: Option<Arc<dyn CompletionSink>>,
}

impl std::fmt::Debug for StandbyDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyDisk")
            .field("waiting", &self.state.lock().waiting.len())
            .finish_non_exhaustive()
    }
}

impl CompletionSink for StandbyDisk {
    fn submit(&self, completion: Completion) {
        let mut state = self.state.lock();
        match &state.live {
            Some(live) => {
                let live = live.clone();
                drop(state);
                live.submit(completion);
            }
            None => {
                state.waiting.push_back(completion);
                self.arrived.notify_all();
            }
        }
    }
}

impl StandbyDisk {
    /// A sink with nothing waiting, not live.
    pub fn new() -> Self {
        Self::default()
    }

    /// The replay reached DMA entry `dma`: the device's next completion,
    /// applied to the device and checked against the entry (RAM itself
    /// takes the entry's bytes, as in any replay).
    pub(crate) fn confirm(
        &self,
        device: &VirtioBlk,
        ram: &Arc<GuestRam>,
        dma: &DmaRecord,
    ) -> Result<(), String> {
        let deadline = Instant::now() + COMPLETION_WAIT;
        let mut state = self.state.lock();
        let completion = loop {
            if let Some(c) = state.waiting.pop_front() {
                break c;
            }
            if self.arrived.wait_until(&mut state, deadline).timed_out() {
                return Err(format!(
                    "the standby's disk completed no request for this DMA entry in {} s",
                    COMPLETION_WAIT.as_secs()
                ));
            }
        };
        drop(state);
        let seen = CapturingMemory::observing(ram.clone());
        device.apply_completion(completion, &seen);
        let writes = seen.writes.into_inner();
        if writes != dma.writes {
            let at = writes
                .iter()
                .zip(&dma.writes)
                .position(|(a, b)| a != b)
                .unwrap_or(writes.len().min(dma.writes.len()));
            return Err(format!(
                "the standby's disk completed a request otherwise than the primary's \
                 (write {at} of {} logged, {} made here): its image is not the primary's",
                dma.writes.len(),
                writes.len()
            ));
        }
        Ok(())
    }

    /// Going live: completions the log never got, and every later one, go
    /// to `recorder` (in order).
    pub(crate) fn go_live(&self, recorder: Arc<dyn CompletionSink>) {
        // Under the lock: a completion the device finishes meanwhile must
        // queue behind these, not overtake them.
        let mut state = self.state.lock();
        for completion in state.waiting.drain(..) {
            recorder.submit(completion);
        }
        state.live = Some(recorder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsara_types::GuestPhysAddr;

    fn completion(head: u16) -> Completion {
        Completion {
            epoch: 0,
            queue: 0,
            head,
            writes: Vec::new(),
            status_addr: GuestPhysAddr(0x8000_0000),
            status: 0,
            used_len: 1,
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<u16>>);

    impl CompletionSink for Recorder {
        fn submit(&self, completion: Completion) {
            self.0.lock().push(completion.head);
        }
    }

    /// Requests the standby's device completed that the primary's log never
    /// confirmed are the new recording's, in order, ahead of later ones.
    #[test]
    fn unconfirmed_completions_go_to_the_recorder_in_order() {
        let disk = StandbyDisk::new();
        disk.submit(completion(3));
        disk.submit(completion(7));
        let recorder = Arc::new(Recorder::default());
        disk.go_live(recorder.clone());
        disk.submit(completion(9));
        assert_eq!(*recorder.0.lock(), [3, 7, 9]);
    }
}
