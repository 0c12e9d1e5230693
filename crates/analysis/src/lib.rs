//! Analyses that observe a replay (never the live machine): `samsara
//! analyze TRACE ANALYSIS`. See `docs/analysis.md`.

pub mod btf;
pub mod html;
pub mod races;
pub mod symbols;
pub mod syscalls;
pub mod timeline;
pub mod watch;

use std::io::Write;

/// Where analyses write findings as they find them: one line per finding
/// for people, one JSON object per finding for tools. The first error
/// writing either is kept (the replay goes on; the command reports it).
#[derive(Default)]
pub struct Sinks {
    /// Lines for people.
    pub listing: Option<Box<dyn Write + Send>>,
    /// JSON lines.
    pub jsonl: Option<Box<dyn Write + Send>>,
    /// The first write error.
    pub error: Option<std::io::Error>,
}

impl Sinks {
    /// Keeps the first error of a write.
    pub fn note(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }
}
