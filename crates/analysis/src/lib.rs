//! Analyses that observe a replay (never the live machine): `samsara
//! analyze TRACE ANALYSIS`. See `docs/analysis.md`.

pub mod timeline;
