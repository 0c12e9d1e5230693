//! Bodies of samsara's fuzz targets.
//!
//! The libFuzzer crate in `fuzz/` (outside the workspace, so that ordinary
//! builds need no fuzzer) calls these functions; `tests/corpus.rs` runs
//! every input of the committed corpus through them in `cargo test`, so the
//! findings stay regression tests without any fuzzing tool. See
//! `docs/robustness.md`.
//!
//! Each function must return for every input: a panic or a hang is the bug
//! the fuzzer looks for.

pub mod cpu;
pub mod cpu_diff;
pub mod trace;
