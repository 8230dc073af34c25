//! Fuzz target: see `sluice::fuzz_checks::config_toml` for the property it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_checks::config_toml(data));
