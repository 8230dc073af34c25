//! The start-up banner: where sluice listens, what it serves (the mock's
//! endpoints or the proxy's upstream), the admin port, and the effective
//! knobs, in the words of the Node mock it replaces. Printed by the binary
//! once the listeners are bound.

use std::net::SocketAddr;

use crate::config::{self, Config, ConfigSource, HeadTiming};
use crate::fault::{Fault, Schedule};
use crate::{dialect, mock, server};

/// The start-up banner, in the Node mock's words: where it listens, what it
/// serves (the mock's endpoint or the proxy's upstream), and the effective
/// knobs. `addr` is the bound address.
pub fn banner(config: &Config, addr: SocketAddr, admin: Option<SocketAddr>) -> String {
    let profile = &config.profile;
    let timing = &profile.timing;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        format!("{scheme}://localhost:{} (all interfaces)", addr.port())
    } else {
        format!("{scheme}://{addr}")
    };
    let source = match &config.source {
        ConfigSource::Defaults => "built-in defaults".to_string(),
        ConfigSource::File(path) => path.display().to_string(),
    };
    let head = match config.head {
        HeadTiming::FirstToken => "response head held until the first token",
        HeadTiming::FirstText => "response head held until the first text, after any thinking",
        HeadTiming::Immediate => "response head sent at once",
    };
    let mut lines = Vec::new();
    match &config.upstream {
        None => {
            lines.extend(mock::banner_lines(&host));
        }
        Some(upstream) => {
            lines.push(format!("[sluice] Proxy running on {host}"));
            let url = upstream.display_url();
            lines.push(format!("[sluice] Upstream: {url} (every method and path)"));
        }
    }
    match admin {
        Some(admin) => lines.push(format!(
            "[sluice] Admin: http://{admin} (GET /metrics, /config, /ready; POST /reload; PUT and DELETE /faults; GET and DELETE /rate-limits; GET /capacity; GET, POST /timeline/start and DELETE /timeline)"
        )),
        None => lines.push("[sluice] Admin: off".to_string()),
    }
    let watched =
        if matches!(config.source, ConfigSource::File(_)) { ", watched for changes" } else { "" };
    lines.push(format!("[sluice] Configuration ({source}{watched}, then environment and flags):"));
    lines.push(format!("  - First token delay: {} ({head})", timing.first_token_delay));
    lines.push(format!("  - Token interval: {}", timing.token_interval));
    if config.upstream.is_none() {
        lines.push(format!(
            "  - Tokens per response: {} (at most the request's max_tokens)",
            profile.tokens_per_response
        ));
    }
    lines.push(format!("  - Tool call delay: {}", timing.tool_call_delay));
    if config.upstream.is_none() {
        let tools = &profile.tool_use;
        lines.push(format!(
            "  - Tool use: {} tool, {}% of auto requests, {} call(s) a turn, text after {} round(s)",
            tools.choice,
            tools.probability * 100.0,
            tools.parallel_calls,
            tools.max_rounds
        ));
    }
    let thinking_pace = timing.thinking_pace();
    let delay_before = match timing.first_token_delay_before {
        crate::shape::FirstOutput::Thinking => "first token delay before it",
        crate::shape::FirstOutput::Text => "first token delay after it",
    };
    lines.push(if config.upstream.is_none() {
        format!(
            "  - Thinking (when asked): {} tokens, one every {thinking_pace}, {delay_before}{}",
            profile.thinking.tokens,
            if profile.thinking.redacted { ", redacted" } else { "" }
        )
    } else {
        format!("  - Thinking: one token every {thinking_pace}, {delay_before}")
    });
    lines.push(format!("  - Error rate: {}% ({})", profile.error_rate * 100.0, fault_mix(config)));
    if let Some(limits) = rate_limits_line(&profile.rate_limits) {
        lines.push(format!("  - Rate limits: {limits}"));
    }
    if let Some(capacity) = capacity_line(&profile.capacity) {
        lines.push(format!("  - Capacity: {capacity}"));
    }
    if let Some(timeline) = &config.timeline {
        lines.push(format!("  - Timeline: {}", timeline_line(timeline, config.epoch.is_some())));
    }
    lines.push(match (config.seed, &config.replica) {
        (Some(seed), None) => {
            format!("  - Seed: {seed} (same seed and request order, same faults and text)")
        }
        (Some(seed), Some(replica)) => format!(
            "  - Seed: {seed}, replica {replica}: draws from {} (same seed, replica and request order, same faults and text)",
            server::replica_seed(seed, Some(replica))
        ),
        (None, _) => "  - Seed: random (set seed or SLUICE_SEED to replay a run)".to_string(),
    });
    match config.fleet.as_ref().map(|fleet| (fleet, &fleet.store)) {
        Some((fleet, Some(store))) => lines.push(format!(
            "  - Fleet: rate limits, schedules, capacity, runs and live control shared through {store} (namespace {}, timeout {}; docs/fleet.md)",
            fleet.namespace,
            humantime::format_duration(fleet.timeout)
        )),
        Some((_, None)) => lines.push(
            "  - Fleet: [fleet] has no store (set store or SLUICE_FLEET_STORE): this replica keeps its own state"
                .to_string(),
        ),
        None => {}
    }
    if let Some(epoch) = config.epoch {
        lines.push(format!(
            "  - Epoch: {} (fault windows count from it)",
            humantime::format_rfc3339_millis(epoch)
        ));
    }
    if !config.routes.is_empty() || !config.profiles.is_empty() {
        let routes: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        let profiles: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        lines.push(format!(
            "  - Routes: {} (first match wins, else default); profiles: {}",
            if routes.is_empty() { "none".to_string() } else { routes.join(", ") },
            if profiles.is_empty() { "none".to_string() } else { profiles.join(", ") },
        ));
    }
    if let Some(tls) = &config.tls {
        let alpn: Vec<&str> = tls.alpn.iter().map(|a| a.id()).collect();
        let certificate = match &tls.certificate {
            config::TlsCertificate::Files { cert, .. } => {
                format!("{} (reloaded when it changes)", cert.display())
            }
            config::TlsCertificate::SelfSigned { names, ca_out } => format!(
                "self-signed for {}{}",
                names.join(", "),
                ca_out
                    .as_ref()
                    .map(|p| format!("; CA written to {}", p.display()))
                    .unwrap_or_default()
            ),
        };
        lines.push(format!("  - TLS: {certificate}; ALPN {}", alpn.join(", ")));
    }
    if let (Some(record), Some(_)) = (&config.record, &config.upstream) {
        lines.push(format!(
            "  - Recording: every exchange into {} (credentials dropped{})",
            record.dir.display(),
            if record.redact_fields.is_empty() && record.redact_headers.is_empty() {
                String::new()
            } else {
                format!(
                    "; redacted: {}",
                    [record.redact_headers.as_slice(), record.redact_fields.as_slice()]
                        .concat()
                        .join(", ")
                )
            }
        ));
    }
    if let (Some(replay), None) = (&config.replay, &config.upstream) {
        let fallback = match replay.fallback {
            config::ReplayFallback::Generate => "generated reply",
            config::ReplayFallback::NotFound => "404",
        };
        lines.push(format!(
            "  - Replay: cassettes in {}, matched by {}, {} timing; no match gets a {fallback}",
            replay.dir.display(),
            replay.matching.as_str(),
            replay.timing
        ));
    }
    if config.control.headers {
        lines.push(format!(
            "  - Control headers: on (x-sluice-profile, x-sluice-inject; at most {} at once)",
            config.control.max_active
        ));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `60 requests/min (burst 10), 40000 input tokens/min, per API key`, or
/// `None` when the default profile limits nothing.
fn rate_limits_line(limits: &config::RateLimits) -> Option<String> {
    if !limits.is_active() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(requests) = limits.requests_per_minute {
        let burst = limits.burst.map(|b| format!(" (burst {b})")).unwrap_or_default();
        parts.push(format!("{requests} requests/min{burst}"));
    }
    for (value, what) in [
        (limits.input_tokens_per_minute, "input tokens"),
        (limits.output_tokens_per_minute, "output tokens"),
        (limits.tokens_per_minute, "tokens"),
    ] {
        if let Some(value) = value {
            parts.push(format!("{value} {what}/min"));
        }
    }
    let key = match limits.key {
        config::LimitKey::ApiKey => "per API key and route",
        config::LimitKey::ApiKeyAndModel => "per API key, model and route",
        config::LimitKey::Route => "per route",
        config::LimitKey::Global => "shared by every request",
    };
    Some(format!("{}, {key}", parts.join(", ")))
}

/// `50 in service per route (queue 100, shed after 60s as overloaded),
/// delays x3 at capacity, prefill 200ms per 1k input tokens (this replica)`,
/// or `None` when `[capacity]` changes nothing.
fn capacity_line(capacity: &config::Capacity) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(max) = capacity.max_concurrent {
        parts.push(format!(
            "{max} in service per route (queue {}, shed after {} as {})",
            capacity.queue(),
            humantime::format_duration(capacity.queue_timeout),
            capacity.shed.as_str()
        ));
        if capacity.factor_at_capacity > 1.0 {
            parts.push(format!("delays x{} at capacity", capacity.factor_at_capacity));
        }
    }
    if !capacity.prefill_per_1k_tokens.is_zero() {
        parts.push(format!(
            "prefill {} per 1k input tokens",
            humantime::format_duration(capacity.prefill_per_1k_tokens)
        ));
    }
    (!parts.is_empty()).then(|| format!("{} (this replica)", parts.join(", ")))
}

/// `4 phases from POST /timeline/start: baseline at 0s, degraded at 4s
/// (ramp 2s), ...`, the first six named.
fn timeline_line(timeline: &config::Timeline, epoch: bool) -> String {
    let from = match (timeline.start, epoch) {
        (config::TimelineStart::Admin, _) => "POST /timeline/start",
        (config::TimelineStart::Epoch, true) => "the epoch",
        (config::TimelineStart::Epoch, false) => "sluice's start",
    };
    let mut phases: Vec<String> = timeline
        .phases
        .iter()
        .take(6)
        .map(|phase| {
            let ramp = if phase.ramp.is_zero() {
                String::new()
            } else {
                format!(" (ramp {})", humantime::format_duration(phase.ramp))
            };
            format!("{} at {}{ramp}", phase.name, humantime::format_duration(phase.at))
        })
        .collect();
    if timeline.phases.len() > 6 {
        phases.push(format!("and {} more", timeline.phases.len() - 6));
    }
    format!("{} phases from {from}: {}", timeline.phases.len(), phases.join(", "))
}

fn fault_mix(config: &Config) -> String {
    let faults = &config.profile.faults;
    let total: u32 =
        faults.iter().filter(|f| f.schedule == Schedule::Random).map(|f| f.weight).sum();
    let parts: Vec<String> = faults
        .iter()
        .map(|weighted| {
            let share = f64::from(weighted.weight) * 100.0 / f64::from(total.max(1));
            let when = match &weighted.schedule {
                Schedule::Random => format!(" {share:.0}%"),
                Schedule::FirstRequests(n) => format!(" on the first {n} requests"),
                Schedule::Every(n) => format!(" on every {n}th request"),
                Schedule::Window { from, until } => format!(" from {from:?} to {until:?}"),
            };
            match &weighted.fault {
                Fault::Http(http) => {
                    let kind = dialect::anthropic::error_type_for_status(http.status);
                    let retry = http
                        .retry_after
                        .map(|after| format!(", retry-after {after:?}"))
                        .unwrap_or_default();
                    format!("{} {kind}{when}{retry}", http.status)
                }
                other => format!("{}{when}", other.label()),
            }
        })
        .collect();
    if parts.is_empty() { "no faults configured".to_string() } else { parts.join(", ") }
}
