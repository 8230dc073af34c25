//! The effective config as JSON, defaults filled in and secrets redacted: what
//! `sluice check` prints and `GET /config` returns.

use serde_json::{Map, Value, json};

use super::{
    Capacity, Config, ConfigSource, HeadTiming, Profile, ProfilePatch, RateLimits, ThinkingPatch,
};
use crate::fault::{Schedule, WeightedFault};
use crate::shape::{Delay, Length};

/// The effective settings of `config`, with `runtime` overrides shown apart.
pub fn describe(config: &Config, runtime: Option<&ProfilePatch>) -> Value {
    let mut out = Map::new();
    out.insert(
        "source".into(),
        match &config.source {
            ConfigSource::Defaults => json!("built-in defaults"),
            ConfigSource::File(path) => json!(path.display().to_string()),
        },
    );
    out.insert("listen".into(), json!(config.listen.to_string()));
    if let Some(replica) = &config.replica {
        out.insert("replica".into(), json!(replica));
    }
    if let Some(epoch) = config.epoch {
        out.insert("epoch".into(), json!(humantime::format_rfc3339_millis(epoch).to_string()));
    }
    if let Some(seed) = config.seed {
        out.insert("seed".into(), json!(seed));
    }
    out.insert("max_request_body".into(), json!(config.max_request_body));
    out.insert(
        "head".into(),
        json!(match config.head {
            HeadTiming::FirstToken => "first_token",
            HeadTiming::FirstText => "first_text",
            HeadTiming::Immediate => "immediate",
        }),
    );
    out.insert("shutdown_grace".into(), json!(format!("{:?}", config.shutdown_grace)));
    out.insert("models".into(), json!(config.models));
    if let Value::Object(profile) = profile(&config.profile) {
        out.extend(profile);
    }
    let profiles: Map<String, Value> =
        config.profiles.iter().map(|(name, patch)| (name.clone(), patch_json(patch))).collect();
    out.insert("profiles".into(), Value::Object(profiles));
    if let Some(timeline) = &config.timeline {
        let phases: Vec<Value> = timeline
            .phases
            .iter()
            .map(|phase| {
                let mut out = Map::new();
                out.insert("name".into(), json!(phase.name));
                out.insert("at".into(), json!(duration(phase.at)));
                out.insert("ramp".into(), json!(duration(phase.ramp)));
                if let Value::Object(knobs) = patch_json(&phase.patch) {
                    out.extend(knobs);
                }
                if !phase.profiles.is_empty() {
                    let profiles: Map<String, Value> = phase
                        .profiles
                        .iter()
                        .map(|(name, patch)| (name.clone(), patch_json(patch)))
                        .collect();
                    out.insert("profiles".into(), Value::Object(profiles));
                }
                Value::Object(out)
            })
            .collect();
        out.insert("timeline".into(), json!({"start": timeline.start.as_str(), "phases": phases}));
    }
    let routes: Vec<Value> = config
        .routes
        .iter()
        .map(|route| {
            let m = &route.matcher;
            let mut r = Map::new();
            r.insert("name".into(), json!(route.name));
            r.insert("profile".into(), json!(route.profile.as_deref().unwrap_or("default")));
            if let Some(p) = &m.path {
                r.insert("path".into(), json!(p.as_str()));
            }
            if let Some(method) = &m.method {
                r.insert("method".into(), json!(method.as_str()));
            }
            if !m.headers.is_empty() {
                let headers: Map<String, Value> =
                    m.headers.iter().map(|(n, p)| (n.to_string(), json!(p.as_str()))).collect();
                r.insert("headers".into(), Value::Object(headers));
            }
            if let Some(p) = &m.model {
                r.insert("model".into(), json!(p.as_str()));
            }
            if let Some(s) = m.stream {
                r.insert("stream".into(), json!(s));
            }
            if let Some(api) = m.api {
                r.insert("api".into(), json!(api.as_str()));
            }
            if let Some(t) = m.has_tools {
                r.insert("has_tools".into(), json!(t));
            }
            Value::Object(r)
        })
        .collect();
    out.insert("routes".into(), json!(routes));
    out.insert(
        "control".into(),
        json!({"headers": config.control.headers, "max_active": config.control.max_active}),
    );
    let mut admin =
        json!({"enabled": config.admin.enabled, "listen": config.admin.listen.to_string()});
    if config.admin.token.is_some() {
        admin["token"] = json!("<redacted>");
    }
    out.insert("admin".into(), admin);
    if let Some(fleet) = &config.fleet {
        // The store's URL as it displays: its password redacted.
        out.insert(
            "fleet".into(),
            json!({
                "store": fleet.store.as_ref().map(ToString::to_string),
                "namespace": fleet.namespace,
                "timeout": format!("{:?}", fleet.timeout),
            }),
        );
    }
    let limits = &config.limits;
    out.insert(
        "limits".into(),
        json!({
            "header_read_timeout": format!("{:?}", limits.header_read_timeout),
            "idle_timeout": format!("{:?}", limits.idle_timeout),
            "body_read_timeout": format!("{:?}", limits.body_read_timeout),
            "max_connections": limits.max_connections,
            "max_request_head": limits.max_request_head,
        }),
    );
    out.insert(
        "watch".into(),
        json!({"poll": config.watch.poll.map(|d| format!("{d:?}")).unwrap_or_else(|| "off (inotify)".to_string())}),
    );
    if let Some(upstream) = &config.upstream {
        let url = upstream.display_url();
        out.insert(
            "upstream".into(),
            json!({
                "url": url,
                "connect_timeout": format!("{:?}", upstream.connect_timeout),
                "header_timeout": format!("{:?}", upstream.header_timeout),
                "ca_file": upstream.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                "delay_non_sse": upstream.delay_non_sse,
                "pass_through": upstream.pass_through,
                "max_event_size": upstream.max_event_size,
                "head_hold_bytes": upstream.head_hold_bytes,
                "head_hold_time": format!("{:?}", upstream.head_hold_time),
                "max_idle_per_host": upstream.max_idle_per_host,
                "stream_idle_timeout": format!("{:?}", upstream.stream_idle_timeout),
            }),
        );
    }
    if let Some(tls) = &config.tls {
        let alpn: Vec<&str> = tls.alpn.iter().map(|a| a.id()).collect();
        let certificate = match &tls.certificate {
            super::TlsCertificate::Files { cert, key } => {
                json!({"cert": cert.display().to_string(), "key": key.display().to_string()})
            }
            super::TlsCertificate::SelfSigned { names, ca_out } => json!({
                "self_signed": true,
                "names": names,
                "ca_out": ca_out.as_ref().map(|p| p.display().to_string()),
            }),
        };
        out.insert("tls".into(), json!({"certificate": certificate, "alpn": alpn}));
    }
    if let Some(record) = &config.record {
        out.insert(
            "record".into(),
            json!({
                "dir": record.dir.display().to_string(),
                "redact_headers": record.redact_headers,
                "redact_fields": record.redact_fields,
                "keep": record.keep,
            }),
        );
    }
    if let Some(replay) = &config.replay {
        let (timing, scale) = match replay.timing {
            super::ReplayTiming::Recorded => ("recorded", None),
            super::ReplayTiming::Configured => ("configured", None),
            super::ReplayTiming::Scaled(factor) => ("scaled", Some(factor)),
        };
        let fallback = match replay.fallback {
            super::ReplayFallback::Generate => "generate",
            super::ReplayFallback::NotFound => "not_found",
        };
        out.insert(
            "replay".into(),
            json!({
                "dir": replay.dir.display().to_string(),
                "match": replay.matching.as_str(),
                "timing": timing,
                "scale": scale,
                "fallback": fallback,
                "ignore": replay.ignore,
            }),
        );
    }
    if let Some(runtime) = runtime {
        out.insert("runtime_overrides".into(), patch_json(runtime));
    }
    Value::Object(out)
}

fn profile(profile: &Profile) -> Value {
    json!({
        "first_token_delay": delay(&profile.timing.first_token_delay),
        "token_interval": delay(&profile.timing.token_interval),
        "tool_call_delay": delay(&profile.timing.tool_call_delay),
        "overload": profile.timing.overload.as_str(),
        "tokens_per_response": length(&profile.tokens_per_response),
        "error_rate": profile.error_rate,
        "faults": faults(&profile.faults),
        "tool_use": {
            "probability": profile.tool_use.probability,
            "choice": profile.tool_use.choice.to_string(),
            "max_rounds": profile.tool_use.max_rounds,
            "parallel_calls": profile.tool_use.parallel_calls,
            "web_search": profile.tool_use.web_search,
        },
        "rate_limits": rate_limits(&profile.rate_limits),
        "capacity": capacity(&profile.capacity),
        "thinking": {
            "tokens": profile.thinking.tokens,
            "token_interval": delay(&profile.timing.thinking_pace()),
            "first_token_delay_before": profile.timing.first_token_delay_before.as_str(),
            "redacted": profile.thinking.redacted,
            "reasoning_content": profile.thinking.reasoning_content,
        },
    })
}

/// `[rate_limits]` as the file writes it: the limits set, and the key.
fn rate_limits(limits: &RateLimits) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<u64>| {
        if let Some(value) = value {
            out.insert(key.into(), json!(value));
        }
    };
    put("requests_per_minute", limits.requests_per_minute);
    put("input_tokens_per_minute", limits.input_tokens_per_minute);
    put("output_tokens_per_minute", limits.output_tokens_per_minute);
    put("tokens_per_minute", limits.tokens_per_minute);
    put("burst", limits.burst);
    if limits.is_active() {
        out.insert("key".into(), json!(limits.key.as_str()));
    }
    Value::Object(out)
}

/// `[capacity]` as the file writes it: every key when `max_concurrent`
/// is set, else the prefill alone (`{}` when it changes nothing).
fn capacity(capacity: &Capacity) -> Value {
    let mut out = Map::new();
    if let Some(max) = capacity.max_concurrent {
        out.insert("max_concurrent".into(), json!(max));
        out.insert("max_queue".into(), json!(capacity.queue()));
        out.insert("queue_timeout".into(), json!(duration(capacity.queue_timeout)));
        out.insert("factor_at_capacity".into(), json!(capacity.factor_at_capacity));
        out.insert("shed".into(), json!(capacity.shed.as_str()));
    }
    if !capacity.prefill_per_1k_tokens.is_zero() {
        let prefill = duration(capacity.prefill_per_1k_tokens);
        out.insert("prefill_per_1k_tokens".into(), json!(prefill));
    }
    Value::Object(out)
}

fn patch_json(patch: &ProfilePatch) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.into(), value);
        }
    };
    put("first_token_delay", patch.first_token_delay.as_ref().map(delay));
    put("token_interval", patch.token_interval.as_ref().map(delay));
    put("tool_call_delay", patch.tool_call_delay.as_ref().map(delay));
    put("overload", patch.overload.map(|o| json!(o.as_str())));
    put("tokens_per_response", patch.tokens_per_response.as_ref().map(length));
    put("error_rate", patch.error_rate.map(|r| json!(r)));
    put("faults", patch.faults.as_deref().map(faults));
    let tool_use = &patch.tool_use;
    if !tool_use.is_empty() {
        let mut keys = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                keys.insert(key.into(), value);
            }
        };
        put("probability", tool_use.probability.map(|p| json!(p)));
        put("choice", tool_use.choice.as_ref().map(|c| json!(c.to_string())));
        put("max_rounds", tool_use.max_rounds.map(|n| json!(n)));
        put("parallel_calls", tool_use.parallel_calls.map(|n| json!(n)));
        put("web_search", tool_use.web_search.map(|p| json!(p)));
        out.insert("tool_use".into(), Value::Object(keys));
    }
    if let Some(limits) = &patch.rate_limits {
        out.insert("rate_limits".into(), rate_limits(limits));
    }
    if let Some(table) = &patch.capacity {
        out.insert("capacity".into(), capacity(table));
    }
    let thinking = &patch.thinking;
    if *thinking != ThinkingPatch::default() {
        let mut keys = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                keys.insert(key.into(), value);
            }
        };
        put("tokens", thinking.tokens.map(|n| json!(n)));
        put("token_interval", thinking.token_interval.as_ref().map(delay));
        put(
            "first_token_delay_before",
            thinking.first_token_delay_before.map(|f| json!(f.as_str())),
        );
        put("redacted", thinking.redacted.map(|r| json!(r)));
        put("reasoning_content", thinking.reasoning_content.map(|r| json!(r)));
        out.insert("thinking".into(), Value::Object(keys));
    }
    Value::Object(out)
}

/// A reply length as the file writes it: a count, or a distribution table.
fn length(length: &Length) -> Value {
    match *length {
        Length::Fixed(count) => json!(count),
        Length::Uniform { min, max } => json!({"dist": "uniform", "min": min, "max": max}),
        Length::Normal { mean, stddev } => {
            json!({"dist": "normal", "mean": mean, "stddev": stddev})
        }
        Length::LogNormal { p50, p99 } => json!({"dist": "lognormal", "p50": p50, "p99": p99}),
    }
}

/// A duration as `/config` writes every one (`100ms`, `1.5s`).
fn duration(duration: std::time::Duration) -> String {
    format!("{duration:?}")
}

fn delay(delay: &Delay) -> Value {
    let d = |d: &std::time::Duration| json!(format!("{d:?}"));
    match delay {
        Delay::Fixed(x) => d(x),
        Delay::Uniform { min, max } => json!({"dist": "uniform", "min": d(min), "max": d(max)}),
        Delay::Normal { mean, stddev } => {
            json!({"dist": "normal", "mean": d(mean), "stddev": d(stddev)})
        }
        Delay::LogNormal { p50, p99 } => json!({"dist": "lognormal", "p50": d(p50), "p99": d(p99)}),
    }
}

fn faults(faults: &[WeightedFault]) -> Value {
    faults
        .iter()
        .map(|f| {
            let mut out = Map::new();
            out.insert("kind".into(), json!(f.fault.kind()));
            out.insert("weight".into(), json!(f.weight));
            match &f.schedule {
                Schedule::Random => {}
                Schedule::FirstRequests(n) => {
                    out.insert("first_requests".into(), json!(n));
                }
                Schedule::Every(n) => {
                    out.insert("every".into(), json!(n));
                }
                Schedule::Window { from, until } => {
                    out.insert("from".into(), json!(format!("{from:?}")));
                    if *until != std::time::Duration::MAX {
                        out.insert("until".into(), json!(format!("{until:?}")));
                    }
                }
            }
            for (key, value) in f.fault.describe() {
                out.insert(key.into(), value);
            }
            Value::Object(out)
        })
        .collect()
}
