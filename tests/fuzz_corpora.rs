//! Replays every fuzz corpus (`fuzz/corpus/<target>/`) through the check its
//! fuzz target runs (`sluice::fuzz_checks`), so CI keeps what the fuzzers
//! found without running a fuzzer. `scripts/fuzz.sh` fuzzes.
#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed > 0, "no corpus in {}", folder.display());
}

#[test]
fn sse_split() {
    replay("sse_split", sluice::fuzz_checks::sse_split);
}

#[test]
fn request() {
    replay("request", sluice::fuzz_checks::request);
}

#[test]
fn schema_sample() {
    replay("schema_sample", sluice::fuzz_checks::schema_sample);
}

#[test]
fn config_toml() {
    replay("config_toml", sluice::fuzz_checks::config_toml);
}

#[test]
fn control() {
    replay("control", sluice::fuzz_checks::control);
}

#[test]
fn values() {
    replay("values", sluice::fuzz_checks::values);
}

#[test]
fn cassette() {
    replay("cassette", sluice::fuzz_checks::cassette);
}
