//! The config file as written ([`RawConfig`]: serde, `deny_unknown_fields`,
//! spans kept) and its validation into a [`Config`]. Every refusal names
//! `file:line:column`, the key, the value and the accepted form.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::timeline::{self, Phase, Timeline, TimelineStart};
use super::{
    Alpn, Api, Capacity, Config, ConfigError, Fleet, HeadTiming, LimitKey, Limits, ProfilePatch,
    RateLimits, Record, Replay, ReplayFallback, ReplayMatch, ReplayTiming, Route, RouteMatch, Shed,
    StoreUrl, ThinkingPatch, Tls, TlsCertificate, ToolPick, ToolUsePatch, Upstream, value,
};
use crate::fault::{Fault, FaultError, Given, Schedule, WeightedFault, kind_form};
use crate::shape::{Delay, FirstOutput, Length, Overload};

/// Declares the knobs of a profile once, as the file writes them, and
/// makes from that one list: [`RawConfig`] (the top level: the knobs and the
/// global settings), [`RawProfile`] (`[profiles.NAME]`: the knobs alone),
/// and [`Knobs`], the knobs borrowed from either. serde cannot flatten a
/// struct under `deny_unknown_fields`, hence a macro rather than a shared
/// field. A new knob is one line here and its arm in [`Knobs::validate`].
macro_rules! profile_knobs {
    ($($(#[$doc:meta])* $knob:ident: $raw:ty,)*) => {
        /// The file, field for field. Nothing here is trusted yet.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawConfig {
            listen: Option<Spanned<String>>,
            seed: Option<Spanned<i64>>,
            epoch: Option<Spanned<String>>,
            max_request_body: Option<Spanned<RawSize>>,
            head: Option<Spanned<String>>,
            shutdown_grace: Option<Spanned<String>>,
            models: Option<Spanned<Vec<String>>>,
            $($knob: Option<$raw>,)*
            profiles: Option<BTreeMap<String, Spanned<RawProfile>>>,
            routes: Option<Vec<Spanned<RawRoute>>>,
            control: Option<RawControl>,
            admin: Option<RawAdmin>,
            upstream: Option<Spanned<RawUpstream>>,
            tls: Option<Spanned<RawTls>>,
            record: Option<Spanned<RawRecord>>,
            replay: Option<Spanned<RawReplay>>,
            limits: Option<RawLimits>,
            watch: Option<RawWatch>,
            timeline: Option<Spanned<RawTimeline>>,
            fleet: Option<RawFleet>,
        }

        /// `[[timeline.phases]]`: when, and the knobs of the top level.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawPhase {
            name: Option<Spanned<String>>,
            at: Option<Spanned<String>>,
            ramp: Option<Spanned<String>>,
            profiles: Option<BTreeMap<String, Spanned<RawProfile>>>,
            $($knob: Option<$raw>,)*
        }

        impl RawPhase {
            fn knobs(&self) -> Knobs<'_> {
                Knobs { $($knob: &self.$knob,)* }
            }
        }

        /// `[profiles.NAME]`: the knobs of the top level, each optional.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawProfile {
            $($knob: Option<$raw>,)*
        }

        /// The knobs of a profile, borrowed from the top level or a `[profiles.*]` table.
        struct Knobs<'a> {
            $($(#[$doc])* $knob: &'a Option<$raw>,)*
        }

        impl RawConfig {
            fn knobs(&self) -> Knobs<'_> {
                Knobs { $($knob: &self.$knob,)* }
            }
        }

        impl RawProfile {
            fn knobs(&self) -> Knobs<'_> {
                Knobs { $($knob: &self.$knob,)* }
            }
        }
    };
}

profile_knobs! {
    /// `first_token_delay`: a duration or a distribution table.
    first_token_delay: Spanned<Value>,
    /// `token_interval`.
    token_interval: Spanned<Value>,
    /// `tool_call_delay`.
    tool_call_delay: Spanned<Value>,
    /// `overload`: `"catch_up"` or `"stretch"`.
    overload: Spanned<String>,
    /// `tokens_per_response`: a count or a distribution table.
    tokens_per_response: Spanned<Value>,
    /// `error_rate`, a fraction.
    error_rate: Spanned<f64>,
    /// `[[faults]]`.
    faults: Vec<Spanned<RawFault>>,
    /// `[tool_use]`.
    tool_use: RawToolUse,
    /// `[rate_limits]`.
    rate_limits: RawRateLimits,
    /// `[thinking]`.
    thinking: RawThinking,
    /// `[capacity]`.
    capacity: RawCapacity,
}

/// `[limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    header_read_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    body_read_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    max_request_head: Option<Spanned<RawSize>>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    self_signed: Option<bool>,
    names: Option<Spanned<Vec<String>>>,
    ca_out: Option<Spanned<String>>,
    alpn: Option<Spanned<Vec<String>>>,
}

/// `[fleet]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    store: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

/// `[record]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    dir: Option<Spanned<String>>,
    redact_headers: Option<Spanned<Vec<String>>>,
    redact_fields: Option<Spanned<Vec<String>>>,
    keep: Option<Spanned<Vec<String>>>,
}

/// `[replay]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    dir: Option<Spanned<String>>,
    #[serde(rename = "match")]
    matching: Option<Spanned<String>>,
    timing: Option<Spanned<String>>,
    scale: Option<Spanned<f64>>,
    fallback: Option<Spanned<String>>,
    ignore: Option<Spanned<Vec<String>>>,
}

/// `[watch]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    poll: Option<Spanned<String>>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    enabled: Option<bool>,
    listen: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
}

/// `[tool_use]`, at the top level or in a profile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolUse {
    probability: Option<Spanned<f64>>,
    choice: Option<Spanned<String>>,
    max_rounds: Option<Spanned<i64>>,
    parallel_calls: Option<Spanned<i64>>,
    web_search: Option<Spanned<f64>>,
}

/// `[thinking]`, at the top level or in a profile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThinking {
    tokens: Option<Spanned<i64>>,
    token_interval: Option<Spanned<Value>>,
    first_token_delay_before: Option<Spanned<String>>,
    redacted: Option<bool>,
    reasoning_content: Option<bool>,
}

/// `[rate_limits]`, at the top level or in a profile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    requests_per_minute: Option<Spanned<i64>>,
    input_tokens_per_minute: Option<Spanned<i64>>,
    output_tokens_per_minute: Option<Spanned<i64>>,
    tokens_per_minute: Option<Spanned<i64>>,
    burst: Option<Spanned<i64>>,
    key: Option<Spanned<String>>,
}

/// `[timeline]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeline {
    start: Option<Spanned<String>>,
    phases: Option<Vec<Spanned<RawPhase>>>,
}

impl RawTimeline {
    /// The timeline; `profiles` are the named profiles a phase may change.
    fn validate(
        &self,
        at: &Locator<'_>,
        span: &Range<usize>,
        profiles: &BTreeMap<String, ProfilePatch>,
    ) -> Result<Timeline, ConfigError> {
        let start = at
            .check(&self.start, "timeline.start", |s| match s.as_str() {
                "epoch" => Ok(TimelineStart::Epoch),
                "admin" => Ok(TimelineStart::Admin),
                _ => Err(TIMELINE_START_FORM),
            })?
            .unwrap_or_default();
        let raw = self.phases.as_deref().unwrap_or_default();
        if raw.is_empty() || raw.len() > timeline::MAX_PHASES {
            return Err(at.error(
                span,
                "timeline.phases",
                format!("{} phases", raw.len()),
                PHASES_FORM,
            ));
        }
        let mut phases: Vec<Phase> = Vec::with_capacity(raw.len());
        for (index, spanned) in raw.iter().enumerate() {
            let phase = spanned.get_ref();
            let prefix = format!("timeline.phases.{index}.");
            let key = |name: &str| format!("{prefix}{name}");
            let Some(offset) = at.check(&phase.at, &key("at"), |s| value::duration(s))? else {
                let missing = "(missing)".to_string();
                return Err(at.error(&spanned.span(), &key("at"), missing, PHASE_AT_FORM));
            };
            let ramp =
                at.check(&phase.ramp, &key("ramp"), |s| value::duration(s))?.unwrap_or_default();
            let name = at
                .check(&phase.name, &key("name"), |name| {
                    let fine = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
                    let unique = !phases.iter().any(|p| p.name == *name);
                    if (1..=64).contains(&name.len()) && name.chars().all(fine) && unique {
                        Ok(name.clone())
                    } else {
                        Err(PHASE_NAME_FORM)
                    }
                })?
                .unwrap_or_else(|| format!("phase-{index}"));
            if let Some(previous) = phases.last() {
                let free = previous.at.saturating_add(previous.ramp);
                if offset <= previous.at || offset < free {
                    let given = phase.at.as_ref().map_or(span.clone(), Spanned::span);
                    return Err(at.error(
                        &given,
                        &key("at"),
                        format!("{offset:?}"),
                        PHASE_ORDER_FORM,
                    ));
                }
            }
            let patch = phase.knobs().validate(at, &prefix)?;
            let mut named = BTreeMap::new();
            for (profile, knobs) in phase.profiles.iter().flatten() {
                let profile_key = format!("{prefix}profiles.{profile}");
                if !profiles.contains_key(profile) {
                    let name = format!("{profile:?}");
                    return Err(at.error(&knobs.span(), &profile_key, name, PHASE_PROFILE_FORM));
                }
                let knobs = knobs.get_ref().knobs().validate(at, &format!("{profile_key}."))?;
                named.insert(profile.clone(), knobs);
            }
            phases.push(Phase { name, at: offset, ramp, patch, profiles: named });
        }
        Ok(Timeline { start, phases })
    }
}

/// `[capacity]`, at the top level or in a profile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    max_concurrent: Option<Spanned<i64>>,
    max_queue: Option<Spanned<i64>>,
    queue_timeout: Option<Spanned<String>>,
    factor_at_capacity: Option<Spanned<f64>>,
    prefill_per_1k_tokens: Option<Spanned<String>>,
    shed: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

/// One `[[faults]]` table: `kind`, `weight`, at most one schedule, and the
/// kind's own keys, which `crate::fault` reads.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct RawFault(BTreeMap<String, Spanned<Value>>);

/// The keys every fault kind takes.
const COMMON: [&str; 6] = ["kind", "weight", "first_requests", "every", "from", "until"];

/// A fault's common keys, typed.
struct CommonKeys {
    weight: Option<Spanned<i64>>,
    first_requests: Option<Spanned<i64>>,
    every: Option<Spanned<i64>>,
    from: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
}

/// One `[[routes]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Spanned<String>,
    profile: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    stream: Option<bool>,
    has_tools: Option<bool>,
    api: Option<Spanned<String>>,
}

/// `[control]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    headers: Option<bool>,
    max_active: Option<Spanned<i64>>,
}

/// `[upstream]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    header_timeout: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    delay_non_sse: Option<bool>,
    pass_through: Option<bool>,
    max_event_size: Option<Spanned<RawSize>>,
    head_hold_bytes: Option<Spanned<RawSize>>,
    head_hold_time: Option<Spanned<String>>,
    max_idle_per_host: Option<Spanned<i64>>,
    stream_idle_timeout: Option<Spanned<String>>,
}

/// Turns byte spans into `file:line:column` for error messages.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
    /// Whether spans mean anything (not for a header value).
    positions: bool,
}

impl Locator<'_> {
    fn at(&self, span: &Range<usize>) -> String {
        if !self.positions {
            return self.origin.to_string();
        }
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", self.origin)
    }

    fn error(&self, span: &Range<usize>, key: &str, value: String, expected: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.at(span),
            key: key.to_string(),
            value,
            expected: expected.to_string(),
        }
    }

    fn invalid<T: std::fmt::Debug>(
        &self,
        spanned: &Spanned<T>,
        key: &str,
        expected: &str,
    ) -> ConfigError {
        self.error(&spanned.span(), key, format!("{:?}", spanned.get_ref()), expected)
    }

    /// Applies `parse` to the value if present, locating its error.
    fn check<T: std::fmt::Debug, U>(
        &self,
        field: &Option<Spanned<T>>,
        key: &str,
        parse: impl Fn(&T) -> Result<U, &'static str>,
    ) -> Result<Option<U>, ConfigError> {
        field
            .as_ref()
            .map(|spanned| {
                parse(spanned.get_ref()).map_err(|expected| self.invalid(spanned, key, expected))
            })
            .transpose()
    }
}

pub(super) const TOKENS_FORM: &str = "a whole number from 1 to 100000";
pub(super) const ROUNDS_FORM: &str = "a whole number of rounds from 0 to 1000";
pub(super) const PARALLEL_FORM: &str = "a whole number of calls from 1 to 16";
pub(super) const CHOICE_FORM: &str =
    "\"first\", \"uniform\", or a tool name or glob such as \"search_*\"";
pub(super) const SEED_FORM: &str = "a whole number from 0 to 9223372036854775807";
pub(super) const HEAD_FORM: &str = "\"first_token\" (hold the head until the first token), \
    \"first_text\" (until the first text or tool call, after any thinking) or \"immediate\"";
pub(super) const WEIGHT_FORM: &str = "a whole number from 1 to 1000000";
pub(super) const COUNT_FORM: &str = "a whole number from 1 to 1000000000";
pub(super) const DELAY_FORM: &str = "a duration such as \"100ms\", or a distribution such as \
    { dist = \"uniform\", min = \"50ms\", max = \"150ms\" }, { dist = \"normal\", mean = \"100ms\", stddev = \"20ms\" } \
    or { dist = \"lognormal\", p50 = \"100ms\", p99 = \"400ms\" }, each at most 7 days (\"168h\")";
pub(super) const DIST_FORM: &str =
    "\"uniform\" (min, max), \"normal\" (mean, stddev) or \"lognormal\" (p50, p99)";
const API_FORM: &str =
    "\"anthropic\", \"openai\", \"openai-chat\", \"openai-responses\", \"gemini\" or \"bedrock\"";
pub(super) const MODELS_FORM: &str = "a list of 1 to 1000 model ids, each 1 to 256 characters without \"/\", such as [\"gpt-4o-mini\"]";
const NAME_FORM: &str = "a non-empty name used by no other route";
pub(super) const GLOB_FORM: &str = "a glob such as \"/v1/*\" or \"claude-*-haiku*\"";
pub(super) const METHOD_FORM: &str = "an HTTP method such as \"POST\"";
pub(super) const HEADER_FORM: &str = "a header name such as \"x-scenario\"";
pub(super) const MAX_ACTIVE_FORM: &str = "a whole number from 1 to 1000000";
pub(super) const IDLE_FORM: &str = "a whole number from 0 to 100000";
pub(super) const CONNECTIONS_FORM: &str = "a whole number from 1 to 1000000";
const REQUEST_HEAD_FORM: &str = "a size from \"8KiB\" to \"1MiB\"";
pub(super) const PER_MINUTE_FORM: &str = "a whole number from 1 to 1000000000 a minute";
pub(super) const BURST_FORM: &str = "a whole number of requests from 1 to 1000000000";
pub(super) const LIMIT_KEY_FORM: &str = "\"api_key\" (each API key on each route), \"api_key_and_model\" (and each model), \"route\" or \"global\"";
const PATH_FORM: &str = "a file path";
const THINKING_TOKENS_FORM: &str = "a whole number of tokens from 0 to 100000";
const FIRST_OUTPUT_FORM: &str = "\"thinking\" (the delay comes before the first output, thinking included) or \"text\" (thinking streams from the start; the delay comes before the first text)";
const LENGTH_FORM: &str = "a whole number of tokens from 1 to 100000, or a distribution such as { dist = \"lognormal\", p50 = 200, p99 = 2000 }";
const LENGTH_DIST_FORM: &str = "a table with dist = \"uniform\" (min, max), \"normal\" (mean, stddev) or \"lognormal\" (p50, p99), each a whole number of tokens";
const TIMELINE_START_FORM: &str = "\"epoch\" (offsets count from epoch, or from sluice's start) or \"admin\" (from POST /timeline/start)";
const PHASES_FORM: &str = "1 to 100 [[timeline.phases]] tables";
const PHASE_AT_FORM: &str = "an offset such as \"60s\" (at) in every phase";
const PHASE_NAME_FORM: &str =
    "a name of 1 to 64 letters, digits, '-', '_' or '.' used by no other phase";
const PHASE_ORDER_FORM: &str =
    "an offset after the phase before's, and after the end of its ramp (at + ramp)";
const PHASE_PROFILE_FORM: &str = "the name of a [profiles.NAME] table";
const CONCURRENT_FORM: &str = "a whole number of requests from 1 to 1000000";
const QUEUE_FORM: &str = "a whole number of requests from 0 to 1000000";
const FACTOR_FORM: &str = "a factor from 1 to 100 (1: no slowdown under load)";
/// The longest prefill per 1,000 tokens: a minute (a 1M-token prompt then
/// waits 1,000 minutes, within `MAX_DURATION`'s week).
const PREFILL_MAX: Duration = Duration::from_secs(60);
const PREFILL_FORM: &str = "a duration from \"0ms\" to \"60s\" per 1,000 input tokens";
const SHED_FORM: &str = "\"overloaded\" (Anthropic 529, OpenAI and Gemini 503, Bedrock ThrottlingException) or \"rate_limited\" (a 429)";
const NEEDS_CONCURRENT_FORM: &str = "a [capacity] table that also sets max_concurrent";
const OVERLOAD_FORM: &str = "\"catch_up\" (keep the schedule: tokens after a late one go out at once) or \"stretch\" (keep every gap: the stream ends later)";
const DIR_FORM: &str = "a folder path such as \"cassettes\"";
const REDACT_HEADERS_FORM: &str = "a list of up to 100 header names such as [\"x-user-email\"]";
const REDACT_FIELDS_FORM: &str =
    "a list of up to 100 dotted JSON field paths such as [\"metadata.user_id\"]";
const REPLAY_MATCH_FORM: &str =
    "\"body\", \"last_user_message\", \"conversation\", \"model_path\" or \"round_robin\"";
const KEEP_FORM: &str = "at most 100 names of at most 256 characters";
const IGNORE_FORM: &str = "at most 32 regular expressions of at most 1,000 characters each";
const REPLAY_TIMING_FORM: &str = "\"recorded\", \"configured\" or \"scaled\" (with scale)";
const SCALE_FORM: &str = "a factor from 0.001 to 1000, with timing = \"scaled\"";
const FALLBACK_FORM: &str = "\"generate\" (the mock's own reply) or \"not_found\" (a 404)";
const NAMES_FORM: &str =
    "a list of up to 100 DNS names or IP addresses, such as [\"api.anthropic.com\"]";
const ALPN_FORM: &str = "a list of \"h2\" and \"http/1.1\", such as [\"http/1.1\"]";
const TLS_FORM: &str =
    "either cert and key (PEM files) or self_signed = true (with optional names and ca_out)";
pub(super) const POSITIVE_DURATION_FORM: &str =
    "a duration of at least 1ms such as \"10s\", at most 7 days (\"168h\")";

/// Parses and validates a whole file.
pub(super) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Syntax {
        origin: origin.to_string(),
        message: error.to_string().trim_end().to_string(),
    })?;
    raw.validate(&Locator { text, origin, positions: true })
}

impl RawConfig {
    fn validate(self, at: &Locator<'_>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(listen) = at.check(&self.listen, "listen", |s| value::listen(s))? {
            config.listen = listen;
        }
        config.seed = at.check(&self.seed, "seed", |&s| u64::try_from(s).map_err(|_| SEED_FORM))?;
        config.epoch = at.check(&self.epoch, "epoch", |s| value::epoch(s))?;
        if let Some(models) = at.check(&self.models, "models", |models| {
            let fine = |m: &String| !m.is_empty() && m.len() <= 256 && !m.contains('/');
            if !models.is_empty() && models.len() <= 1000 && models.iter().all(fine) {
                Ok(models.clone())
            } else {
                Err(MODELS_FORM)
            }
        })? {
            config.models = models;
        }
        if let Some(size) = at.check(&self.max_request_body, "max_request_body", size_of)? {
            config.max_request_body = size;
        }
        if let Some(head) = at.check(&self.head, "head", |s| match s.as_str() {
            "first_token" => Ok(HeadTiming::FirstToken),
            "first_text" => Ok(HeadTiming::FirstText),
            "immediate" => Ok(HeadTiming::Immediate),
            _ => Err(HEAD_FORM),
        })? {
            config.head = head;
        }
        if let Some(grace) =
            at.check(&self.shutdown_grace, "shutdown_grace", |s| value::duration(s))?
        {
            config.shutdown_grace = grace;
        }
        if let Some(limits) = &self.limits {
            config.limits = limits.validate(at)?;
        }
        if let Some(watch) = &self.watch {
            config.watch.poll = at.check(&watch.poll, "watch.poll", |s| positive_duration(s))?;
        }
        config.profile = self.knobs().validate(at, "")?.over(&config.profile);
        for (name, profile) in self.profiles.iter().flatten() {
            let patch = profile.get_ref().knobs().validate(at, &format!("profiles.{name}."))?;
            config.profiles.insert(name.clone(), patch);
        }
        let mut names = BTreeSet::new();
        for route in self.routes.iter().flatten() {
            let route = route.get_ref().validate(at, &config.profiles)?;
            if !names.insert(route.name.clone()) {
                let name = self
                    .routes
                    .iter()
                    .flatten()
                    .map(|r| &r.get_ref().name)
                    .filter(|n| *n.get_ref() == route.name)
                    .nth(1);
                if let Some(name) = name {
                    return Err(at.invalid(name, "routes.name", NAME_FORM));
                }
            }
            config.routes.push(route);
        }
        if let Some(control) = &self.control {
            if let Some(headers) = control.headers {
                config.control.headers = headers;
            }
            if let Some(max) = at.check(&control.max_active, "control.max_active", |&n| {
                usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or(MAX_ACTIVE_FORM)
            })? {
                config.control.max_active = max;
            }
        }
        if let Some(admin) = &self.admin {
            if let Some(enabled) = admin.enabled {
                config.admin.enabled = enabled;
            }
            if let Some(listen) = at.check(&admin.listen, "admin.listen", |s| value::listen(s))? {
                config.admin.listen = listen;
            }
            config.admin.token = at.check(&admin.token, "admin.token", |s| {
                let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
                if ok {
                    Ok(s.clone())
                } else {
                    Err("a non-empty token of visible ASCII characters")
                }
            })?;
        }
        if let Some(upstream) = &self.upstream {
            config.upstream = Some(upstream.get_ref().validate(at, upstream.span())?);
        }
        if let Some(tls) = &self.tls {
            config.tls = Some(tls.get_ref().validate(at, tls.span())?);
        }
        if let Some(record) = &self.record {
            config.record = Some(record.get_ref().validate(at, record.span())?);
        }
        if let Some(replay) = &self.replay {
            config.replay = Some(replay.get_ref().validate(at, replay.span())?);
        }
        if let Some(fleet) = &self.fleet {
            config.fleet = Some(fleet.validate(at)?);
        }
        if let Some(timeline) = &self.timeline {
            let profiles = &config.profiles;
            config.timeline = Some(timeline.get_ref().validate(at, &timeline.span(), profiles)?);
        }
        Ok(config)
    }
}

impl Knobs<'_> {
    /// The knobs as a patch; `prefix` (`""` or `profiles.NAME.`) names keys in errors.
    fn validate(&self, at: &Locator<'_>, prefix: &str) -> Result<ProfilePatch, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let delay = |field: &Option<Spanned<Value>>, name: &str| {
            field.as_ref().map(|value| parse_delay(at, value, &key(name))).transpose()
        };
        Ok(ProfilePatch {
            first_token_delay: delay(self.first_token_delay, "first_token_delay")?,
            token_interval: delay(self.token_interval, "token_interval")?,
            tool_call_delay: delay(self.tool_call_delay, "tool_call_delay")?,
            overload: at.check(self.overload, &key("overload"), |s| match s.as_str() {
                "catch_up" => Ok(Overload::CatchUp),
                "stretch" => Ok(Overload::Stretch),
                _ => Err(OVERLOAD_FORM),
            })?,
            tokens_per_response: self
                .tokens_per_response
                .as_ref()
                .map(|value| parse_length(at, value, &key("tokens_per_response")))
                .transpose()?,
            error_rate: at.check(self.error_rate, &key("error_rate"), |&r| value::rate(r))?,
            faults: self
                .faults
                .as_ref()
                .map(|faults| {
                    let prefix = key("faults.");
                    faults.iter().map(|f| f.get_ref().validate(at, &prefix, &f.span())).collect()
                })
                .transpose()?,
            tool_use: match self.tool_use {
                Some(tool_use) => tool_use.validate(at, &key("tool_use."))?,
                None => ToolUsePatch::default(),
            },
            rate_limits: self
                .rate_limits
                .as_ref()
                .map(|limits| limits.validate(at, &key("rate_limits.")))
                .transpose()?,
            thinking: match self.thinking {
                Some(thinking) => thinking.validate(at, &key("thinking."))?,
                None => ThinkingPatch::default(),
            },
            capacity: self
                .capacity
                .as_ref()
                .map(|capacity| capacity.validate(at, &key("capacity.")))
                .transpose()?,
        })
    }
}

impl RawCapacity {
    /// The whole table; `prefix` names its keys in errors.
    fn validate(&self, at: &Locator<'_>, prefix: &str) -> Result<Capacity, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let mut capacity = Capacity::OFF;
        capacity.max_concurrent = at.check(&self.max_concurrent, &key("max_concurrent"), |&n| {
            u32::try_from(n).ok().filter(|n| (1..=1_000_000).contains(n)).ok_or(CONCURRENT_FORM)
        })?;
        capacity.max_queue = at.check(&self.max_queue, &key("max_queue"), |&n| {
            u32::try_from(n).ok().filter(|n| *n <= 1_000_000).ok_or(QUEUE_FORM)
        })?;
        if let Some(timeout) =
            at.check(&self.queue_timeout, &key("queue_timeout"), |s| positive_duration(s))?
        {
            capacity.queue_timeout = timeout;
        }
        if let Some(factor) =
            at.check(&self.factor_at_capacity, &key("factor_at_capacity"), |&f| {
                if (1.0..=100.0).contains(&f) { Ok(f) } else { Err(FACTOR_FORM) }
            })?
        {
            capacity.factor_at_capacity = factor;
        }
        if let Some(prefill) =
            at.check(&self.prefill_per_1k_tokens, &key("prefill_per_1k_tokens"), |s| {
                value::duration(s).ok().filter(|d| *d <= PREFILL_MAX).ok_or(PREFILL_FORM)
            })?
        {
            capacity.prefill_per_1k_tokens = prefill;
        }
        if let Some(shed) = at.check(&self.shed, &key("shed"), |s| match s.as_str() {
            "overloaded" => Ok(Shed::Overloaded),
            "rate_limited" => Ok(Shed::RateLimited),
            _ => Err(SHED_FORM),
        })? {
            capacity.shed = shed;
        }
        let needs_concurrency = [
            (self.max_queue.as_ref().map(Spanned::span), "max_queue"),
            (self.queue_timeout.as_ref().map(Spanned::span), "queue_timeout"),
            (self.factor_at_capacity.as_ref().map(Spanned::span), "factor_at_capacity"),
            (self.shed.as_ref().map(Spanned::span), "shed"),
        ];
        if capacity.max_concurrent.is_none()
            && let Some((Some(span), name)) =
                needs_concurrency.into_iter().find(|(s, _)| s.is_some())
        {
            return Err(at.error(&span, &key(name), "(given)".to_string(), NEEDS_CONCURRENT_FORM));
        }
        Ok(capacity)
    }
}

impl RawThinking {
    /// The keys as a patch; `prefix` names them in errors.
    fn validate(&self, at: &Locator<'_>, prefix: &str) -> Result<ThinkingPatch, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        Ok(ThinkingPatch {
            tokens: at.check(&self.tokens, &key("tokens"), |&n| {
                u32::try_from(n).ok().filter(|n| *n <= 100_000).ok_or(THINKING_TOKENS_FORM)
            })?,
            token_interval: self
                .token_interval
                .as_ref()
                .map(|value| parse_delay(at, value, &key("token_interval")))
                .transpose()?,
            first_token_delay_before: at.check(
                &self.first_token_delay_before,
                &key("first_token_delay_before"),
                |text| match text.as_str() {
                    "thinking" => Ok(FirstOutput::Thinking),
                    "text" => Ok(FirstOutput::Text),
                    _ => Err(FIRST_OUTPUT_FORM),
                },
            )?,
            redacted: self.redacted,
            reasoning_content: self.reasoning_content,
        })
    }
}

impl RawRateLimits {
    /// The whole table; `prefix` names its keys in errors.
    fn validate(&self, at: &Locator<'_>, prefix: &str) -> Result<RateLimits, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let per_minute = |field: &Option<Spanned<i64>>, name: &str| {
            at.check(field, &key(name), |&n| {
                u64::try_from(n)
                    .ok()
                    .filter(|n| (1..=1_000_000_000).contains(n))
                    .ok_or(PER_MINUTE_FORM)
            })
        };
        Ok(RateLimits {
            requests_per_minute: per_minute(&self.requests_per_minute, "requests_per_minute")?,
            input_tokens_per_minute: per_minute(
                &self.input_tokens_per_minute,
                "input_tokens_per_minute",
            )?,
            output_tokens_per_minute: per_minute(
                &self.output_tokens_per_minute,
                "output_tokens_per_minute",
            )?,
            tokens_per_minute: per_minute(&self.tokens_per_minute, "tokens_per_minute")?,
            burst: at.check(&self.burst, &key("burst"), |&n| {
                u64::try_from(n).ok().filter(|n| (1..=1_000_000_000).contains(n)).ok_or(BURST_FORM)
            })?,
            key: at
                .check(&self.key, &key("key"), |text| match text.as_str() {
                    "api_key" => Ok(LimitKey::ApiKey),
                    "api_key_and_model" => Ok(LimitKey::ApiKeyAndModel),
                    "route" => Ok(LimitKey::Route),
                    "global" => Ok(LimitKey::Global),
                    _ => Err(LIMIT_KEY_FORM),
                })?
                .unwrap_or_default(),
        })
    }
}

impl RawToolUse {
    /// The keys as a patch; `prefix` names them in errors.
    fn validate(&self, at: &Locator<'_>, prefix: &str) -> Result<ToolUsePatch, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        Ok(ToolUsePatch {
            probability: at.check(&self.probability, &key("probability"), |&p| value::rate(p))?,
            choice: at.check(&self.choice, &key("choice"), |text| tool_pick(text))?,
            max_rounds: at.check(&self.max_rounds, &key("max_rounds"), |&n| {
                u32::try_from(n).ok().filter(|n| *n <= 1000).ok_or(ROUNDS_FORM)
            })?,
            parallel_calls: at.check(&self.parallel_calls, &key("parallel_calls"), |&n| {
                u32::try_from(n).ok().filter(|n| (1..=16).contains(n)).ok_or(PARALLEL_FORM)
            })?,
            web_search: at.check(&self.web_search, &key("web_search"), |&p| value::rate(p))?,
        })
    }
}

/// `"first"`, `"uniform"`, or a tool name or glob.
fn tool_pick(text: &str) -> Result<ToolPick, &'static str> {
    match text {
        "first" => Ok(ToolPick::First),
        "uniform" => Ok(ToolPick::Uniform),
        "" => Err(CHOICE_FORM),
        glob => glob::Pattern::new(glob).map(ToolPick::Named).map_err(|_| CHOICE_FORM),
    }
}

/// Builds a distribution from its two parameters, or says what is wrong.
type DelayBuilder = fn(Duration, Duration) -> Result<Delay, &'static str>;

/// A delay: a duration string, or a `{ dist = ... }` table.
fn parse_delay(at: &Locator<'_>, value: &Spanned<Value>, key: &str) -> Result<Delay, ConfigError> {
    let span = value.span();
    let refuse = |expected: &str| at.error(&span, key, value.get_ref().to_string(), expected);
    let table = match value.get_ref() {
        Value::String(text) => {
            return value::duration(text).map(Delay::Fixed).map_err(|_| refuse(DELAY_FORM));
        }
        Value::Table(table) => table,
        _ => return Err(refuse(DELAY_FORM)),
    };
    let dist = table.get("dist").and_then(Value::as_str).ok_or_else(|| refuse(DIST_FORM))?;
    let (names, build): (&[&str; 2], DelayBuilder) = match dist {
        "uniform" => (&["min", "max"], |min, max| {
            if max < min { Err("max at least min") } else { Ok(Delay::Uniform { min, max }) }
        }),
        "normal" => (&["mean", "stddev"], |mean, stddev| Ok(Delay::Normal { mean, stddev })),
        "lognormal" => (&["p50", "p99"], |p50, p99| {
            if p99 < p50 { Err("p99 at least p50") } else { Ok(Delay::LogNormal { p50, p99 }) }
        }),
        _ => return Err(refuse(DIST_FORM)),
    };
    if let Some(extra) = table.keys().find(|k| *k != "dist" && !names.contains(&k.as_str())) {
        return Err(at.error(
            &span,
            &format!("{key}.{extra}"),
            table[extra].to_string(),
            &format!("only dist, {} and {} for a {dist} delay", names[0], names[1]),
        ));
    }
    let field = |name: &str| -> Result<Duration, ConfigError> {
        let text = table.get(name).and_then(Value::as_str);
        text.and_then(|t| value::duration(t).ok()).ok_or_else(|| {
            let shown = table.get(name).map_or_else(|| "(missing)".to_string(), Value::to_string);
            at.error(&span, &format!("{key}.{name}"), shown, value::DURATION_FORM)
        })
    };
    build(field(names[0])?, field(names[1])?).map_err(refuse)
}

/// A reply length: a whole number, or a `{ dist = ... }` table of counts.
fn parse_length(
    at: &Locator<'_>,
    value: &Spanned<Value>,
    key: &str,
) -> Result<Length, ConfigError> {
    let span = value.span();
    let refuse = |expected: &str| at.error(&span, key, value.get_ref().to_string(), expected);
    let table = match value.get_ref() {
        Value::Integer(n) => return tokens_per_response(*n).map(Length::Fixed).map_err(refuse),
        Value::Table(table) => table,
        _ => return Err(refuse(LENGTH_FORM)),
    };
    let dist = table.get("dist").and_then(Value::as_str).ok_or_else(|| refuse(LENGTH_DIST_FORM))?;
    let names: [&str; 2] = match dist {
        "uniform" => ["min", "max"],
        "normal" => ["mean", "stddev"],
        "lognormal" => ["p50", "p99"],
        _ => return Err(refuse(LENGTH_DIST_FORM)),
    };
    if let Some(extra) = table.keys().find(|k| *k != "dist" && !names.contains(&k.as_str())) {
        return Err(at.error(
            &span,
            &format!("{key}.{extra}"),
            table[extra].to_string(),
            &format!("only dist, {} and {} for a {dist} length", names[0], names[1]),
        ));
    }
    let field = |name: &str| -> Result<u32, ConfigError> {
        let count = table.get(name).and_then(Value::as_integer);
        let fits =
            |n: &u32| if name == "stddev" { *n <= 100_000 } else { (1..=100_000).contains(n) };
        count.and_then(|n| u32::try_from(n).ok()).filter(fits).ok_or_else(|| {
            let shown = table.get(name).map_or_else(|| "(missing)".to_string(), Value::to_string);
            at.error(&span, &format!("{key}.{name}"), shown, TOKENS_FORM)
        })
    };
    let (first, second) = (field(names[0])?, field(names[1])?);
    match dist {
        "uniform" if second < first => Err(refuse("max at least min")),
        "uniform" => Ok(Length::Uniform { min: first, max: second }),
        "normal" => Ok(Length::Normal { mean: first, stddev: second }),
        _ if second < first => Err(refuse("p99 at least p50")),
        _ => Ok(Length::LogNormal { p50: first, p99: second }),
    }
}

fn size_of(raw: &RawSize) -> Result<u64, &'static str> {
    match raw {
        RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| value::SIZE_FORM),
        RawSize::Text(text) => value::size(text),
    }
}

/// Tokens per response: at least one, so that every reply has a first token.
pub(super) fn tokens_per_response(n: i64) -> Result<u32, &'static str> {
    u32::try_from(n).ok().filter(|n| (1..=100_000).contains(n)).ok_or(TOKENS_FORM)
}

impl RawFault {
    /// The fault, its weight and schedule; `table` is where the table is,
    /// for a missing `kind`.
    fn validate(
        &self,
        at: &Locator<'_>,
        prefix: &str,
        table: &Range<usize>,
    ) -> Result<WeightedFault, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let (kind, kind_span) = match self.0.get("kind") {
            Some(kind) => match kind.get_ref().as_str() {
                Some(name) => (name, kind.span()),
                None => {
                    let given = kind.get_ref().to_string();
                    return Err(at.error(&kind.span(), &key("kind"), given, &kind_form()));
                }
            },
            None => {
                return Err(at.error(table, &key("kind"), "(missing)".to_string(), &kind_form()));
            }
        };
        let common = self.common(at, prefix)?;
        let own = self.0.iter().filter(|(name, _)| !COMMON.contains(&name.as_str()));
        let given = Given::new(own.map(|(name, value)| (name.as_str(), value.get_ref())));
        let fault = Fault::read(kind, &given).map_err(|error: FaultError| {
            let span = self.0.get(&error.key).map_or(kind_span.clone(), Spanned::span);
            let value = error.given.unwrap_or_else(|| "(missing)".to_string());
            at.error(&span, &key(&error.key), value, &error.expected)
        })?;
        let weight = at
            .check(&common.weight, &key("weight"), |&w| {
                u32::try_from(w).ok().filter(|w| (1..=1_000_000).contains(w)).ok_or(WEIGHT_FORM)
            })?
            .unwrap_or(1);
        Ok(WeightedFault { weight, fault, schedule: common.schedule(at, prefix, &kind_span)? })
    }

    /// `weight` and the schedule keys, each of its type.
    fn common(&self, at: &Locator<'_>, prefix: &str) -> Result<CommonKeys, ConfigError> {
        // A present key of the wrong type is refused where it stands.
        let refuse = |value: &Spanned<Value>, name: &str, expected: &str| {
            at.invalid(value, &format!("{prefix}{name}"), expected)
        };
        let integer = |name: &str, expected: &str| match self.0.get(name) {
            None => Ok(None),
            Some(value) => match value.get_ref().as_integer() {
                Some(n) => Ok(Some(Spanned::new(value.span(), n))),
                None => Err(refuse(value, name, expected)),
            },
        };
        let text = |name: &str| match self.0.get(name) {
            None => Ok(None),
            Some(value) => match value.get_ref().as_str() {
                Some(s) => Ok(Some(Spanned::new(value.span(), s.to_string()))),
                None => Err(refuse(value, name, value::DURATION_FORM)),
            },
        };
        Ok(CommonKeys {
            weight: integer("weight", WEIGHT_FORM)?,
            first_requests: integer("first_requests", COUNT_FORM)?,
            every: integer("every", COUNT_FORM)?,
            from: text("from")?,
            until: text("until")?,
        })
    }
}

impl CommonKeys {
    fn schedule(
        &self,
        at: &Locator<'_>,
        prefix: &str,
        kind_span: &Range<usize>,
    ) -> Result<Schedule, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let count = |field: &Option<Spanned<i64>>, name: &str| {
            at.check(field, &key(name), |&n| {
                u64::try_from(n).ok().filter(|n| (1..=1_000_000_000).contains(n)).ok_or(COUNT_FORM)
            })
        };
        let first = count(&self.first_requests, "first_requests")?;
        let every = count(&self.every, "every")?;
        let from = at.check(&self.from, &key("from"), |s| value::duration(s))?;
        let until = at.check(&self.until, &key("until"), |s| value::duration(s))?;
        let schedules = usize::from(first.is_some())
            + usize::from(every.is_some())
            + usize::from(from.is_some() || until.is_some());
        if schedules > 1 {
            let expected = "one schedule per fault: first_requests, every, or a from/until window";
            return Err(at.error(kind_span, &key("schedule"), "(several)".to_string(), expected));
        }
        Ok(match (first, every, from, until) {
            (Some(n), ..) => Schedule::FirstRequests(n),
            (_, Some(n), ..) => Schedule::Every(n),
            (_, _, None, None) => Schedule::Random,
            (_, _, from, until) => {
                let from = from.unwrap_or(Duration::ZERO);
                let until = until.unwrap_or(Duration::MAX);
                if until <= from {
                    let span = self.until.as_ref().map_or(kind_span.clone(), Spanned::span);
                    return Err(at.error(
                        &span,
                        &key("until"),
                        format!("{until:?}"),
                        "a time after from",
                    ));
                }
                Schedule::Window { from, until }
            }
        })
    }
}

impl RawRoute {
    fn validate(
        &self,
        at: &Locator<'_>,
        profiles: &BTreeMap<String, ProfilePatch>,
    ) -> Result<Route, ConfigError> {
        let name = self.name.get_ref().trim();
        if name.is_empty() {
            return Err(at.invalid(&self.name, "routes.name", NAME_FORM));
        }
        let glob = |field: &Option<Spanned<String>>, key: &str| {
            at.check(field, key, |s| glob::Pattern::new(s).map_err(|_| GLOB_FORM))
        };
        let mut matcher = RouteMatch {
            path: glob(&self.path, "routes.path")?,
            method: at.check(&self.method, "routes.method", |s| {
                hyper::Method::from_bytes(s.to_ascii_uppercase().as_bytes())
                    .map_err(|_| METHOD_FORM)
            })?,
            headers: Vec::new(),
            model: glob(&self.model, "routes.model")?,
            stream: self.stream,
            has_tools: self.has_tools,
            api: at.check(&self.api, "routes.api", |api| match api.as_str() {
                "anthropic" => Ok(Api::Anthropic),
                "openai" => Ok(Api::OpenAi),
                "openai-chat" => Ok(Api::OpenAiChat),
                "openai-responses" => Ok(Api::OpenAiResponses),
                "gemini" => Ok(Api::Gemini),
                "bedrock" => Ok(Api::Bedrock),
                _ => Err(API_FORM),
            })?,
        };
        for (header, pattern) in self.headers.iter().flatten() {
            let name = hyper::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                at.error(&pattern.span(), "routes.headers", format!("{header:?}"), HEADER_FORM)
            })?;
            let pattern = glob::Pattern::new(pattern.get_ref())
                .map_err(|_| at.invalid(pattern, &format!("routes.headers.{header}"), GLOB_FORM))?;
            matcher.headers.push((name, pattern));
        }
        let profile = match &self.profile {
            Some(profile) if !profiles.contains_key(profile.get_ref()) => {
                let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
                let expected = if known.is_empty() {
                    "the name of a [profiles.NAME] table (none is defined)".to_string()
                } else {
                    format!("one of the profiles: {}", known.join(", "))
                };
                return Err(at.error(
                    &profile.span(),
                    "routes.profile",
                    format!("{:?}", profile.get_ref()),
                    &expected,
                ));
            }
            Some(profile) => Some(profile.get_ref().clone()),
            None => None,
        };
        Ok(Route { name: name.to_string(), matcher, profile })
    }
}

/// A duration that must not be zero (a timeout or an interval).
fn positive_duration(text: &str) -> Result<Duration, &'static str> {
    value::duration(text)
        .ok()
        .filter(|d| *d >= Duration::from_millis(1))
        .ok_or(POSITIVE_DURATION_FORM)
}

impl RawLimits {
    fn validate(&self, at: &Locator<'_>) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        let timeout = |s: &String| positive_duration(s);
        if let Some(d) =
            at.check(&self.header_read_timeout, "limits.header_read_timeout", timeout)?
        {
            limits.header_read_timeout = d;
        }
        if let Some(d) = at.check(&self.idle_timeout, "limits.idle_timeout", timeout)? {
            limits.idle_timeout = d;
        }
        if let Some(d) = at.check(&self.body_read_timeout, "limits.body_read_timeout", timeout)? {
            limits.body_read_timeout = d;
        }
        if let Some(n) = at.check(&self.max_connections, "limits.max_connections", |&n| {
            usize::try_from(n).ok().filter(|n| (1..=1_000_000).contains(n)).ok_or(CONNECTIONS_FORM)
        })? {
            limits.max_connections = n;
        }
        let head_size = |raw: &RawSize| {
            size_of(raw)
                .ok()
                .filter(|n| (8 * 1024..=1024 * 1024).contains(n))
                .ok_or(REQUEST_HEAD_FORM)
        };
        if let Some(n) = at.check(&self.max_request_head, "limits.max_request_head", head_size)? {
            limits.max_request_head = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(limits)
    }
}

impl RawUpstream {
    fn validate(&self, at: &Locator<'_>, table: Range<usize>) -> Result<Upstream, ConfigError> {
        let url =
            at.check(&self.url, "upstream.url", |s| value::upstream_url(s))?.ok_or_else(|| {
                at.error(&table, "upstream.url", "(missing)".to_string(), value::URL_FORM)
            })?;
        let mut upstream = Upstream::new(url);
        let duration = |s: &String| value::duration(s);
        if let Some(d) = at.check(&self.connect_timeout, "upstream.connect_timeout", duration)? {
            upstream.connect_timeout = d;
        }
        if let Some(d) = at.check(&self.header_timeout, "upstream.header_timeout", duration)? {
            upstream.header_timeout = d;
        }
        upstream.ca_file = self.ca_file.as_ref().map(|path| PathBuf::from(path.get_ref()));
        if let Some(delay) = self.delay_non_sse {
            upstream.delay_non_sse = delay;
        }
        if let Some(pass_through) = self.pass_through {
            upstream.pass_through = pass_through;
        }
        if let Some(size) = at.check(&self.max_event_size, "upstream.max_event_size", size_of)? {
            upstream.max_event_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        if let Some(size) = at.check(&self.head_hold_bytes, "upstream.head_hold_bytes", size_of)? {
            upstream.head_hold_bytes = usize::try_from(size).unwrap_or(usize::MAX);
        }
        if let Some(d) = at.check(&self.head_hold_time, "upstream.head_hold_time", duration)? {
            upstream.head_hold_time = d;
        }
        if let Some(n) = at.check(&self.max_idle_per_host, "upstream.max_idle_per_host", |&n| {
            usize::try_from(n).ok().filter(|&n| n <= 100_000).ok_or(IDLE_FORM)
        })? {
            upstream.max_idle_per_host = n;
        }
        let timeout = |s: &String| positive_duration(s);
        if let Some(d) =
            at.check(&self.stream_idle_timeout, "upstream.stream_idle_timeout", timeout)?
        {
            upstream.stream_idle_timeout = d;
        }
        Ok(upstream)
    }
}

impl RawTls {
    fn validate(&self, at: &Locator<'_>, table: Range<usize>) -> Result<Tls, ConfigError> {
        let path =
            |field: &Option<Spanned<String>>, key: &str| {
                at.check(field, key, |s| {
                    if s.is_empty() { Err(PATH_FORM) } else { Ok(PathBuf::from(s)) }
                })
            };
        let cert = path(&self.cert, "tls.cert")?;
        let key = path(&self.key, "tls.key")?;
        let ca_out = path(&self.ca_out, "tls.ca_out")?;
        let names = at
            .check(&self.names, "tls.names", |names| {
                let fine = |n: &String| {
                    !n.is_empty() && n.len() <= 253 && n.bytes().all(|b| b.is_ascii_graphic())
                };
                if names.len() <= 100 && names.iter().all(fine) {
                    Ok(names.clone())
                } else {
                    Err(NAMES_FORM)
                }
            })?
            .unwrap_or_default();
        let alpn = at
            .check(&self.alpn, "tls.alpn", |ids| {
                let mut alpn = Vec::new();
                for id in ids {
                    let protocol = match id.as_str() {
                        "h2" => Alpn::H2,
                        "http/1.1" => Alpn::Http11,
                        _ => return Err(ALPN_FORM),
                    };
                    if !alpn.contains(&protocol) {
                        alpn.push(protocol);
                    }
                }
                if alpn.is_empty() { Err(ALPN_FORM) } else { Ok(alpn) }
            })?
            .unwrap_or_else(|| vec![Alpn::H2, Alpn::Http11]);
        let certificate = match (cert, key, self.self_signed.unwrap_or(false)) {
            (Some(cert), Some(key), false) => TlsCertificate::Files { cert, key },
            (None, None, true) => {
                let mut all = vec!["localhost".to_string(), "127.0.0.1".to_string()];
                for name in names {
                    if !all.contains(&name) {
                        all.push(name);
                    }
                }
                TlsCertificate::SelfSigned { names: all, ca_out }
            }
            _ => return Err(at.error(&table, "tls", "the table".to_string(), TLS_FORM)),
        };
        Ok(Tls { certificate, alpn })
    }
}

/// The folder of `[record]` or `[replay]`, which must be given.
fn required_dir(
    at: &Locator<'_>,
    dir: &Option<Spanned<String>>,
    table: &Range<usize>,
    key: &str,
) -> Result<PathBuf, ConfigError> {
    at.check(dir, key, |s| if s.is_empty() { Err(DIR_FORM) } else { Ok(PathBuf::from(s)) })?
        .ok_or_else(|| at.error(table, key, "nothing".to_string(), DIR_FORM))
}

impl RawRecord {
    fn validate(&self, at: &Locator<'_>, table: Range<usize>) -> Result<Record, ConfigError> {
        let dir = required_dir(at, &self.dir, &table, "record.dir")?;
        let redact_headers = at
            .check(&self.redact_headers, "record.redact_headers", |names| {
                let mut lower = Vec::new();
                for name in names {
                    if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(REDACT_HEADERS_FORM);
                    }
                    lower.push(name.to_ascii_lowercase());
                }
                if lower.len() <= 100 { Ok(lower) } else { Err(REDACT_HEADERS_FORM) }
            })?
            .unwrap_or_default();
        let redact_fields = at
            .check(&self.redact_fields, "record.redact_fields", |fields| {
                let fine = |f: &String| {
                    !f.is_empty() && f.len() <= 256 && f.split('.').all(|part| !part.is_empty())
                };
                if fields.len() <= 100 && fields.iter().all(fine) {
                    Ok(fields.clone())
                } else {
                    Err(REDACT_FIELDS_FORM)
                }
            })?
            .unwrap_or_default();
        let keep = at
            .check(&self.keep, "record.keep", |names| {
                let fine = |n: &String| !n.is_empty() && n.len() <= 256;
                if names.len() <= 100 && names.iter().all(fine) {
                    Ok(names.iter().map(|n| n.to_ascii_lowercase()).collect())
                } else {
                    Err(KEEP_FORM)
                }
            })?
            .unwrap_or_default();
        Ok(Record { dir, redact_headers, redact_fields, keep })
    }
}

impl RawFleet {
    fn validate(&self, at: &Locator<'_>) -> Result<Fleet, ConfigError> {
        let store = at.check(&self.store, "fleet.store", |s| value::store_url(s))?;
        let mut fleet = Fleet { store, ..Fleet::new(StoreUrl::new(String::new())) };
        if let Some(namespace) =
            at.check(&self.namespace, "fleet.namespace", |s| value::namespace(s))?
        {
            fleet.namespace = namespace;
        }
        if let Some(timeout) = at.check(&self.timeout, "fleet.timeout", |s| {
            value::duration(s)
                .ok()
                .filter(|d| (Duration::from_millis(1)..=Duration::from_secs(10)).contains(d))
                .ok_or("a duration from 1ms to 10s, such as \"250ms\"")
        })? {
            fleet.timeout = timeout;
        }
        Ok(fleet)
    }
}

impl RawReplay {
    fn validate(&self, at: &Locator<'_>, table: Range<usize>) -> Result<Replay, ConfigError> {
        let dir = required_dir(at, &self.dir, &table, "replay.dir")?;
        let matching = at
            .check(&self.matching, "replay.match", |s| match s.as_str() {
                "body" => Ok(ReplayMatch::Body),
                "last_user_message" => Ok(ReplayMatch::LastUserMessage),
                "model_path" => Ok(ReplayMatch::ModelPath),
                "round_robin" => Ok(ReplayMatch::RoundRobin),
                "conversation" => Ok(ReplayMatch::Conversation),
                _ => Err(REPLAY_MATCH_FORM),
            })?
            .unwrap_or(ReplayMatch::LastUserMessage);
        let scale = at.check(&self.scale, "replay.scale", |f| {
            if f.is_finite() && (0.001..=1000.0).contains(f) { Ok(*f) } else { Err(SCALE_FORM) }
        })?;
        let timing = at
            .check(&self.timing, "replay.timing", |s| match (s.as_str(), scale) {
                ("recorded", None) => Ok(ReplayTiming::Recorded),
                ("configured", None) => Ok(ReplayTiming::Configured),
                ("scaled", Some(factor)) => Ok(ReplayTiming::Scaled(factor)),
                _ => Err(REPLAY_TIMING_FORM),
            })?
            .unwrap_or(ReplayTiming::Recorded);
        if let (Some(spanned), false) = (&self.scale, matches!(timing, ReplayTiming::Scaled(_))) {
            return Err(at.invalid(spanned, "replay.scale", SCALE_FORM));
        }
        let fallback = at
            .check(&self.fallback, "replay.fallback", |s| match s.as_str() {
                "generate" => Ok(ReplayFallback::Generate),
                "not_found" => Ok(ReplayFallback::NotFound),
                _ => Err(FALLBACK_FORM),
            })?
            .unwrap_or(ReplayFallback::NotFound);
        let ignore = at
            .check(&self.ignore, "replay.ignore", |patterns| {
                let fine = patterns.len() <= value::MAX_IGNORE
                    && patterns.iter().all(|p| value::ignore_pattern(p).is_ok());
                if fine { Ok(patterns.clone()) } else { Err(IGNORE_FORM) }
            })?
            .unwrap_or_default();
        Ok(Replay { dir, matching, timing, fallback, ignore })
    }
}

/// A fault from a header value, `kind; key=value; ...`.
pub(super) fn fault_from_header(header: &str) -> Result<Fault, ConfigError> {
    const ORIGIN: &str = "header x-sluice-inject";
    let mut parts = header.split(';').map(str::trim).filter(|p| !p.is_empty());
    let kind = parts.next().unwrap_or_default();
    let mut toml = format!("kind = {}\n", Value::String(kind.to_string()));
    for part in parts {
        let Some((name, raw)) = part.split_once('=') else {
            return Err(ConfigError::Invalid {
                origin: ORIGIN.to_string(),
                key: "x-sluice-inject".to_string(),
                value: format!("{header:?}"),
                expected: "kind; key=value; ..., e.g. \"stream_error; after_tokens=3\"".to_string(),
            });
        };
        let raw = raw.trim();
        let value = if raw.parse::<i64>().is_ok() || raw == "true" || raw == "false" {
            raw.to_string()
        } else {
            Value::String(raw.to_string()).to_string()
        };
        toml.push_str(&format!("{} = {value}\n", Value::String(name.trim().to_string())));
    }
    let fault: RawFault = toml::from_str(&toml).map_err(|error| ConfigError::Syntax {
        origin: ORIGIN.to_string(),
        message: error.message().to_string(),
    })?;
    let at = Locator { text: &toml, origin: ORIGIN, positions: false };
    Ok(fault.validate(&at, "", &(0..0))?.fault)
}

/// Runtime overrides from a JSON object, with the same checks as a profile.
pub(super) fn patch_from_json(json: &str) -> Result<ProfilePatch, ConfigError> {
    const ORIGIN: &str = "PUT /faults body";
    let syntax = |message: String| ConfigError::Syntax { origin: ORIGIN.to_string(), message };
    let value: Value = serde_json::from_str(json)
        .map_err(|e| syntax(format!("not a JSON object of knobs: {e}")))?;
    if !value.is_table() {
        return Err(syntax(
            "expected a JSON object of knobs, e.g. {\"error_rate\": 0.1}".to_string(),
        ));
    }
    let text = toml::to_string(&value).map_err(|e| syntax(e.to_string()))?;
    let raw: RawProfile = toml::from_str(&text).map_err(|e| syntax(e.message().to_string()))?;
    let at = Locator { text: &text, origin: ORIGIN, positions: false };
    raw.knobs().validate(&at, "")
}
