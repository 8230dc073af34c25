//! Fuzz target: see `sluice::fuzz_checks::cassette` for the property it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_checks::cassette(data));
