//! The block translator against the interpreter, block by block: see
//! `samsara_fuzzing::cpu_diff`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| samsara_fuzzing::cpu_diff::run(data));
