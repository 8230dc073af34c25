//! sluice: a fault-injecting mock and (soon) reverse proxy for LLM streaming
//! APIs. It controls what a client sees: time to first token, token pacing,
//! tool-call delay, and how often and how requests fail.
//!
//! # Layout
//!
//! ```text
//!            ┌──────────────┐
//! request ──▶│ handler       │  route; plan = seeded draw at arrival (shape::plan)
//!            └──────┬───────┘
//!                   ▼
//!              mock::Reply        instant source: a Stream of sse::SseRecord
//!                   ▼
//!            ┌──────────────┐
//!            │ shape::Shaper │  the only thing that waits: absolute deadlines
//!            └──────┬───────┘
//!                   ▼
//!             client body         head held until the first token (default)
//! ```
//!
//! - [`config`]: TOML file, environment and flags → a validated [`Config`].
//! - [`server`]: accept loop and graceful shutdown; [`run`] is its entry point.
//! - [`handler`]: routing and the per-request pipeline above.
//! - [`mock`]: request validation and the mock's replies (never sleeps).
//! - [`shape`]: fault plan, timing rule ([`shape::Pacer`]) and [`shape::Shaper`].
//! - [`sse`]: the event record the shaper works on, and its encoding.
//! - [`dialect`]: provider wire facts (Anthropic error types and bodies).
//! - [`response`]: response body type and provider-shaped error responses.

pub mod config;
pub mod dialect;
pub mod handler;
pub mod mock;
pub mod response;
pub mod server;
pub mod shape;
pub mod sse;

use std::fmt::Write as _;
use std::net::SocketAddr;

pub use config::Config;
pub use server::run;

use config::{ConfigSource, HeadTiming};
use shape::Fault;

/// The start-up banner, in the Node mock's words: where it listens, the
/// endpoint, and the effective knobs. `addr` is the bound address.
pub fn banner(config: &Config, addr: SocketAddr) -> String {
    let profile = &config.profile;
    let timing = &profile.timing;
    let host = if addr.ip().is_unspecified() {
        format!("http://localhost:{} (all interfaces)", addr.port())
    } else {
        format!("http://{addr}")
    };
    let source = match &config.source {
        ConfigSource::Defaults => "built-in defaults".to_string(),
        ConfigSource::File(path) => path.display().to_string(),
    };
    let head = match config.head {
        HeadTiming::FirstToken => "response head held until the first token",
        HeadTiming::Immediate => "response head sent at once",
    };
    let mut out = String::new();
    let _ = writeln!(out, "[sluice] Claude API mock running on {host}");
    let _ = writeln!(
        out,
        "[sluice] Endpoint: POST /v1/messages (also POST /v1/messages/count_tokens, GET /health)"
    );
    let _ = writeln!(
        out,
        "[sluice] Configuration ({source}, then environment and flags):"
    );
    let _ = writeln!(
        out,
        "  - First token delay: {:?} ({head})",
        timing.first_token_delay
    );
    let _ = writeln!(out, "  - Token interval: {:?}", timing.token_interval);
    let _ = writeln!(
        out,
        "  - Tokens per response: {}",
        profile.tokens_per_response
    );
    let _ = writeln!(out, "  - Tool call delay: {:?}", timing.tool_call_delay);
    let _ = writeln!(
        out,
        "  - Error rate: {}% ({})",
        profile.error_rate * 100.0,
        fault_mix(config)
    );
    match config.seed {
        Some(seed) => {
            let _ = writeln!(
                out,
                "  - Seed: {seed} (same seed and request order, same faults and text)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  - Seed: random (set seed or SLUICE_SEED to replay a run)"
            );
        }
    }
    out
}

fn fault_mix(config: &Config) -> String {
    let faults = &config.profile.faults;
    let total: u32 = faults.iter().map(|f| f.weight).sum();
    let parts: Vec<String> = faults
        .iter()
        .map(|weighted| {
            let share = f64::from(weighted.weight) * 100.0 / f64::from(total.max(1));
            match &weighted.fault {
                Fault::Http(http) => {
                    let kind = dialect::anthropic::error_type_for_status(http.status);
                    let retry = http
                        .retry_after
                        .map(|after| format!(", retry-after {after:?}"))
                        .unwrap_or_default();
                    format!("{} {kind} {share:.0}%{retry}", http.status)
                }
            }
        })
        .collect();
    if parts.is_empty() {
        "no faults configured".to_string()
    } else {
        parts.join(", ")
    }
}
