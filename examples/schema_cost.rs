//! What making a tool input costs, per schema of the corpus in
//! `tests/schemas`: the mean time to sample one input (a new sampler each
//! time, as each request gets), in a release build.
//!
//!   cargo run --release --example schema_cost [ROUNDS]
//!
//! The mock pays this once per tool call or structured-output reply, before
//! the first event; it is not on the per-event path.

use std::path::Path;

use serde_json::Value;
use sluice::mock::schema;
use sluice::shape::request_rng;
use tokio::time::Instant;

fn main() -> anyhow::Result<()> {
    let rounds: u64 = std::env::args().nth(1).map_or(Ok(2000), |n| n.parse())?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas");
    let mut rows = Vec::new();
    for file in ["edge_cases.json", "pydantic.json", "zod.json"] {
        let corpus: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join(file))?)?;
        for entry in corpus {
            let name = entry["name"].as_str().unwrap_or("?").to_string();
            let started = Instant::now();
            let mut bytes = 0;
            for seed in 0..rounds {
                let value = schema::sample(&entry["schema"], &mut request_rng(seed, 0))?;
                bytes += value.to_string().len();
            }
            let micros = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
            rows.push((micros, bytes as u64 / rounds, name));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mean = rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64;
    println!("{} schemas, {rounds} inputs each: mean {mean:.1} µs per input", rows.len());
    println!("{:>10} {:>7}  schema", "µs/input", "bytes");
    for (micros, bytes, name) in rows {
        println!("{micros:>10.1} {bytes:>7}  {name}");
    }
    Ok(())
}
