//! The serial baseline: every hart on one host thread, round-robin by
//! instruction quantum (the chunk size), as QEMU's and rr's record modes
//! work. Each quantum is a chunk of the chunk strategy's machinery that
//! runs alone (exclusive), with devices accessed inside it and memory
//! written directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use samsara_trace::Truncation;
use samsara_types::HartId;

use super::chunk::HartRecorder;

/// The serial strategy's scheduler: one host thread, harts round-robin, a
/// quantum (the chunk size) each, harts asleep in WFI skipped until one of
/// their enabled interrupt lines rises.
pub(crate) fn run_serial(workers: &mut [HartRecorder<'_>], limit_hit: &AtomicBool) {
    let mut asleep = vec![false; workers.len()];
    'outer: while !workers.first().is_none_or(HartRecorder::halted) {
        let mut ran = false;
        for (w, asleep) in workers.iter_mut().zip(asleep.iter_mut()) {
            if w.halted() {
                break 'outer;
            }
            if w.hart.steps().0 >= w.limit {
                limit_hit.store(true, Ordering::SeqCst);
                w.rec.halt.store(true, Ordering::SeqCst);
                break 'outer;
            }
            if *asleep {
                let mie = w.hart.state().csr.mie;
                if w.board.irq.lines(HartId(w.id as u32)) & mie == 0 {
                    continue;
                }
                *asleep = false;
            }
            let budget = w.chunk_size.min(w.limit - w.hart.steps().0);
            let (_, reason) = w.chunk(budget, true);
            ran = true;
            *asleep = reason == Truncation::Wfi;
        }
        if !ran {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    for w in workers.iter() {
        w.idle();
    }
}
