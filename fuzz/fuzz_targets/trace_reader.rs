//! The trace reader on arbitrary bytes: see `samsara_fuzzing::trace`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| samsara_fuzzing::trace::run(data));
