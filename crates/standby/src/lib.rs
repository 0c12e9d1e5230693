//! A hot standby (VMware FT's idea, for many harts): the primary streams
//! its trace, byte for byte as its writer writes it, to a standby that
//! stores it, acknowledges it and replays it as it arrives, harts in
//! parallel, with live devices. Console output the outside world sees is
//! released by the primary only once the standby has acknowledged the
//! entry that produced it (the output rule). When the stream breaks or
//! its heartbeats stop, the standby replays every complete entry it has,
//! goes live at that point in record mode (appending to its copy of the
//! trace, which may stream on to a next standby) and serves the console.
//! See `docs/standby.md`.

mod primary;
mod protocol;
mod standby;

pub use primary::{StandbyClient, StreamStats};
pub use protocol::{DEFAULT_FAILOVER_TIMEOUT, HEARTBEAT_INTERVAL, StreamError};
pub use standby::{LAG_SAMPLE, Lag, StandbyConfig, StandbyOutcome, run_standby};
