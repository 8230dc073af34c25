//! The `[rate_limits]` limiter's cost per request, on its own: hashing the
//! key, charging its buckets, the headers of their levels and the
//! settlement, at 1, 10,000 and 100,000 keys, on one thread and on two
//! (contention on the sharded map). Run by `scripts/bench.sh`.
//!
//!   cargo run --release --example limiter_cost
#![allow(clippy::unwrap_used, reason = "a bench tool")]

fn main() {
    const REQUESTS: usize = 1_000_000;
    // Warm up (allocator, page faults), then time.
    sluice::bench_hooks::rate_limit_admissions(10_000, REQUESTS / 10, 1);
    println!("| keys | threads | ns per request | requests/s |");
    println!("|---:|---:|---:|---:|");
    for keys in [1, 10_000, 100_000] {
        for threads in [1, 2] {
            let wall = sluice::bench_hooks::rate_limit_admissions(keys, REQUESTS, threads);
            let total = (REQUESTS * threads) as f64;
            // Per request on one core: wall time × threads / requests.
            let ns = wall.as_secs_f64() * 1e9 * threads as f64 / total;
            println!("| {keys} | {threads} | {ns:.0} | {:.0} |", total / wall.as_secs_f64());
        }
    }
}
