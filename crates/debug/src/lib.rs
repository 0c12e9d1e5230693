//! Time travel over samsara recordings.
//!
//! [`timeline::Timeline`] moves a replay session forward and backward
//! along the recording's global order, with checkpoints; [`gdb`] serves it
//! to a stock gdb over the remote protocol, every hart a thread.

pub mod checkpoints;
pub mod gdb;
pub mod symbols;
pub mod timeline;

pub use timeline::{ALL_HARTS, Landing, Timeline, TimelineOptions, Why};
