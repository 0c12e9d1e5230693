//! What analyses and debuggers see of a replay.
//!
//! A [`ReplaySession`](super::ReplaySession) is generic over its observer:
//! with [`NoObserver`] every hook is an empty inline function and harts run
//! in whole batches, so a plain replay pays nothing for the hook. An
//! observer that asks for instructions ([`Observer::INSTRUCTIONS`]) makes
//! harts step one instruction per call; one that asks for pages
//! ([`Observer::PAGES`]) sees each page a hart touches in an entry, through
//! the TLB's slow path (every entry starts with an empty TLB), after the
//! run call that touched it.

use samsara_cpu::bus::AccessKind;
use samsara_trace::{ChunkRecord, DmaRecord};
use samsara_types::{GuestVirtAddr, HartId};

use super::Position;

/// Whether the replay goes on after a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop the session's `run` here (it returns `Stop::Observer`).
    Stop,
}

/// An entry of the recording's global order, as an observer sees it.
#[derive(Clone, Copy, Debug)]
pub enum EntryView<'a> {
    /// A chunk (or device access, or CREW segment) of one hart; its events
    /// are the inputs it consumes, in order.
    Chunk(&'a ChunkRecord),
    /// DMA completion: memory the device wrote.
    Dma(&'a DmaRecord),
}

/// Hooks called during a sequential replay, in the recording's global order.
/// Every hook has a no-op default.
pub trait Observer {
    /// Call [`Observer::instruction`] before every step.
    const INSTRUCTIONS: bool = false;
    /// Call [`Observer::page`] for every page first touched in an entry.
    const PAGES: bool = false;

    /// Entry `at.seq` is about to start (`at.step` is 0).
    #[inline(always)]
    fn entry_start(&mut self, _at: Position, _entry: EntryView<'_>) -> Flow {
        Flow::Continue
    }

    /// Hart `hart` is about to execute the step at `pc`, the `at.step`-th
    /// of entry `at.seq` (only with [`Observer::INSTRUCTIONS`]). Stopping
    /// leaves it unexecuted: the session's position is `at`.
    #[inline(always)]
    fn instruction(&mut self, _at: Position, _hart: HartId, _pc: GuestVirtAddr) -> Flow {
        Flow::Continue
    }

    /// Hart `hart` touched guest-physical page `page` (a page number) for
    /// `kind`, first in its entry (only with [`Observer::PAGES`]); `at` is
    /// where the run call that touched it ended.
    #[inline(always)]
    fn page(&mut self, _at: Position, _hart: HartId, _page: u64, _kind: AccessKind) -> Flow {
        Flow::Continue
    }

    /// Entry `at.seq` has finished (written back, retired).
    #[inline(always)]
    fn entry_end(&mut self, _at: Position, _entry: EntryView<'_>) -> Flow {
        Flow::Continue
    }
}

/// The observer of a plain replay: sees nothing, costs nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
