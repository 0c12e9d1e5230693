//! A hart on arbitrary code and CSR setup: see `samsara_fuzzing::cpu`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| samsara_fuzzing::cpu::run(data));
