//! Configuration: the TOML file (untrusted, parsed and validated in `raw`
//! into a [`Config`]), layered with the environment and the command line.
//!
//! Layering is built-in defaults < config file < environment < flags
//! ([`layer`]). Everything is validated before use, and every error names where
//! the bad value came from (file:line:column, variable or flag), the key, the
//! value and what would be accepted. The server reads a `Config`; lower modules
//! get plain values built from it (`Timing`, the fault list), never the config.
//!
//! The knobs at the top level of the file form the default profile. Named
//! profiles (`[profiles.NAME]`) override only the knobs they name; routes
//! (`[[routes]]`, first match wins) pick a profile per request.

mod describe;
pub mod layer;
mod raw;
pub mod timeline;
pub mod value;

pub use describe::describe;
pub use timeline::{Phase, Position, Timeline, TimelineStart};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::fault::{Fault, HttpFault, Schedule, WeightedFault};
use crate::shape::{Delay, FirstOutput, Length, Overload, Timing};

/// Where a config came from, for the banner and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: built-in defaults (plus environment and flags).
    Defaults,
    /// Loaded from this file.
    File(PathBuf),
}

pub use crate::shape::head::HeadTiming;

/// The knobs that shape a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// First-token, token-interval and tool-call delays.
    pub timing: Timing,
    /// Content deltas in a mock text reply: a count, or drawn per reply.
    pub tokens_per_response: Length,
    /// Probability that a request draws one of the random faults.
    pub error_rate: f64,
    /// The faults: scheduled ones, and random ones drawn by weight.
    pub faults: Vec<WeightedFault>,
    /// How the mock uses the tools a request offers.
    pub tool_use: ToolUse,
    /// Stateful rate limits (`[rate_limits]`); inactive when it limits nothing.
    pub rate_limits: RateLimits,
    /// What the mock thinks when a request asks it to (`[thinking]`; its
    /// pace is in `timing`).
    pub thinking: Thinking,
    /// How the provider behaves under load (`[capacity]`): concurrency,
    /// queue, slowdown and prefill; inactive by default.
    pub capacity: Capacity,
}

/// `[capacity]` in a profile: a serving engine's limits, as the clients of
/// one route see them (docs/capacity.md). Every key is optional; a table
/// that sets neither `max_concurrent` nor `prefill_per_1k_tokens` changes
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Requests in service at once (from admission to the end of their
    /// response); `None` serves every request at once.
    pub max_concurrent: Option<u32>,
    /// Requests that wait for a place in service; past it they are shed.
    /// `None`: as many as `max_concurrent`.
    pub max_queue: Option<u32>,
    /// A request that waited this long in the queue is shed.
    pub queue_timeout: Duration,
    /// The delays (first token, token interval, tool call) are multiplied by
    /// a factor that rises linearly with the requests in service, from 1
    /// with one to this with `max_concurrent`.
    pub factor_at_capacity: f64,
    /// Added to the first-token delay for every 1,000 input tokens of the
    /// request's estimate (prefill time).
    pub prefill_per_1k_tokens: Duration,
    /// What a shed request gets.
    pub shed: Shed,
}

impl Capacity {
    /// No limit, no slowdown, no prefill.
    pub const OFF: Self = Self {
        max_concurrent: None,
        max_queue: None,
        queue_timeout: Duration::from_secs(60),
        factor_at_capacity: 1.0,
        prefill_per_1k_tokens: Duration::ZERO,
        shed: Shed::Overloaded,
    };

    /// Whether requests are counted into service (and maybe queued or shed).
    pub fn limits(&self) -> bool {
        self.max_concurrent.is_some()
    }

    /// The queue's length: `max_queue`, or `max_concurrent` when not given.
    pub fn queue(&self) -> u32 {
        self.max_queue.or(self.max_concurrent).unwrap_or(0)
    }
}

impl Default for Capacity {
    fn default() -> Self {
        Self::OFF
    }
}

/// What a request shed by `[capacity]` gets, in its API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shed {
    /// The provider's overload answer: Anthropic 529 `overloaded_error`,
    /// OpenAI 503, Gemini 503 `UNAVAILABLE`, Bedrock `ThrottlingException`.
    #[default]
    Overloaded,
    /// A 429 in each API's words.
    RateLimited,
}

impl Shed {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overloaded => "overloaded",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// `[thinking]` in a profile: the reasoning the mock streams when a request
/// asks for it (docs/timing.md, "Thinking").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    /// Thinking tokens at full effort, before the request's budget caps them.
    pub tokens: u32,
    /// Anthropic: a `redacted_thinking` block instead of a `thinking` one.
    pub redacted: bool,
    /// OpenAI Chat: stream the thinking as `reasoning_content` deltas, as
    /// vLLM, DeepSeek and other compatible servers do (the API itself
    /// streams none).
    pub reasoning_content: bool,
}

impl Thinking {
    /// 100 tokens, readable.
    pub const DEFAULT: Self = Self { tokens: 100, redacted: false, reasoning_content: false };
}

/// `[thinking]` in a profile: only the keys it names.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThinkingPatch {
    /// `tokens`.
    pub tokens: Option<u32>,
    /// `token_interval`.
    pub token_interval: Option<Delay>,
    /// `first_token_delay_before`.
    pub first_token_delay_before: Option<FirstOutput>,
    /// `redacted`.
    pub redacted: Option<bool>,
    /// `reasoning_content`.
    pub reasoning_content: Option<bool>,
}

/// `[rate_limits]` in a profile: token buckets that refill continuously,
/// like the providers' (`docs/rate-limits.md`). Each limit is optional; a
/// table that sets none limits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// Requests a minute (the request bucket's refill rate).
    pub requests_per_minute: Option<u64>,
    /// Estimated input tokens a minute (Anthropic's ITPM).
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens a minute (Anthropic's OTPM): `max_tokens` charged at
    /// admission, settled to the real count when the mock's reply ends.
    pub output_tokens_per_minute: Option<u64>,
    /// Input and output tokens together a minute (OpenAI's TPM).
    pub tokens_per_minute: Option<u64>,
    /// The request bucket's capacity (requests at once from a full bucket);
    /// `requests_per_minute` when not given.
    pub burst: Option<u64>,
    /// Whose requests share a set of buckets.
    pub key: LimitKey,
}

impl RateLimits {
    /// Whether any limit is set.
    pub fn is_active(&self) -> bool {
        self.requests_per_minute.is_some() || self.limits_tokens()
    }

    /// Whether a token limit is set (admission must read the body).
    pub fn limits_tokens(&self) -> bool {
        self.input_tokens_per_minute.is_some()
            || self.output_tokens_per_minute.is_some()
            || self.tokens_per_minute.is_some()
    }
}

/// Whose requests share a set of rate-limit buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitKey {
    /// Each API key (`x-api-key` or the bearer token, hashed) on each route.
    #[default]
    ApiKey,
    /// Each API key on each route, for each model (Google's quotas are per
    /// project and model; OpenAI's per model).
    ApiKeyAndModel,
    /// Every client of a route.
    Route,
    /// Every request sluice serves, whatever its route.
    Global,
}

impl LimitKey {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::ApiKeyAndModel => "api_key_and_model",
            Self::Route => "route",
            Self::Global => "global",
        }
    }
}

/// How the mock uses the tools a request offers (`[tool_use]`, per
/// profile): whether an `auto` request calls one, which, how many at once,
/// and for how many rounds of a conversation. The defaults are the Node
/// mock's: every `auto` request with tools calls the first one, and the
/// turn after a tool result is text.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// Probability that an `auto` request with tools calls one (`any` and
    /// a named tool always do).
    pub probability: f64,
    /// Which tool a call uses.
    pub choice: ToolPick,
    /// Consecutive tool rounds (assistant turns that called a tool, at the
    /// end of the conversation) after which an `auto` request is answered
    /// in text: 1 answers every tool result in text; 0 never calls a tool.
    pub max_rounds: u32,
    /// Tool calls in one turn (parallel tool use), unless the request sets
    /// `tool_choice.disable_parallel_tool_use`.
    pub parallel_calls: u32,
    /// Share of requests offering the web search server tool that search
    /// before they answer, in text that cites a result (0 to 1).
    pub web_search: f64,
}

impl ToolUse {
    /// Every `auto` request with tools calls the first tool, once; a tool
    /// result is answered in text.
    pub const DEFAULT: Self = Self {
        probability: 1.0,
        choice: ToolPick::First,
        max_rounds: 1,
        parallel_calls: 1,
        web_search: 0.0,
    };
}

/// Which of the request's tools a call uses.
#[derive(Debug, Clone)]
pub enum ToolPick {
    /// The first tool listed (the Node mock's behaviour).
    First,
    /// One drawn uniformly, for each call.
    Uniform,
    /// One whose name matches the glob (drawn uniformly among them); with
    /// none matching, an `auto` request is answered in text.
    Named(glob::Pattern),
}

impl PartialEq for ToolPick {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::First, Self::First) | (Self::Uniform, Self::Uniform) => true,
            (Self::Named(a), Self::Named(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl std::fmt::Display for ToolPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::First => f.write_str("first"),
            Self::Uniform => f.write_str("uniform"),
            Self::Named(glob) => f.write_str(glob.as_str()),
        }
    }
}

/// `[tool_use]` in a profile: only the keys it names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolUsePatch {
    /// `probability`.
    pub probability: Option<f64>,
    /// `choice`.
    pub choice: Option<ToolPick>,
    /// `max_rounds`.
    pub max_rounds: Option<u32>,
    /// `parallel_calls`.
    pub parallel_calls: Option<u32>,
    /// `web_search`.
    pub web_search: Option<f64>,
}

impl ToolUsePatch {
    /// `base` with this patch's keys over it.
    pub fn over(&self, base: &ToolUse) -> ToolUse {
        ToolUse {
            probability: self.probability.unwrap_or(base.probability),
            choice: self.choice.clone().unwrap_or_else(|| base.choice.clone()),
            max_rounds: self.max_rounds.unwrap_or(base.max_rounds),
            parallel_calls: self.parallel_calls.unwrap_or(base.parallel_calls),
            web_search: self.web_search.unwrap_or(base.web_search),
        }
    }

    /// Whether it names no key.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A named profile: only the knobs it names; the rest come from the default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfilePatch {
    /// `first_token_delay`.
    pub first_token_delay: Option<Delay>,
    /// `token_interval`.
    pub token_interval: Option<Delay>,
    /// `tool_call_delay`.
    pub tool_call_delay: Option<Delay>,
    /// `overload`.
    pub overload: Option<Overload>,
    /// `tokens_per_response`.
    pub tokens_per_response: Option<Length>,
    /// `error_rate`.
    pub error_rate: Option<f64>,
    /// `faults` (replaces the default list when given).
    pub faults: Option<Vec<WeightedFault>>,
    /// `[tool_use]` keys (each over the default's).
    pub tool_use: ToolUsePatch,
    /// `[rate_limits]` (replaces the default's whole table when given).
    pub rate_limits: Option<RateLimits>,
    /// `[thinking]` keys (each over the default's).
    pub thinking: ThinkingPatch,
    /// `[capacity]` (replaces the default's whole table when given).
    pub capacity: Option<Capacity>,
}

impl ProfilePatch {
    /// This patch's knobs, and `under`'s where it names none (a timeline
    /// phase's `profiles.NAME` over the file's `[profiles.NAME]`).
    pub fn or(&self, under: &ProfilePatch) -> ProfilePatch {
        let (tools, tools_under) = (&self.tool_use, &under.tool_use);
        let (thinking, thinking_under) = (&self.thinking, &under.thinking);
        ProfilePatch {
            first_token_delay: self.first_token_delay.or(under.first_token_delay),
            token_interval: self.token_interval.or(under.token_interval),
            tool_call_delay: self.tool_call_delay.or(under.tool_call_delay),
            overload: self.overload.or(under.overload),
            tokens_per_response: self.tokens_per_response.or(under.tokens_per_response),
            error_rate: self.error_rate.or(under.error_rate),
            faults: self.faults.clone().or_else(|| under.faults.clone()),
            tool_use: ToolUsePatch {
                probability: tools.probability.or(tools_under.probability),
                choice: tools.choice.clone().or_else(|| tools_under.choice.clone()),
                max_rounds: tools.max_rounds.or(tools_under.max_rounds),
                parallel_calls: tools.parallel_calls.or(tools_under.parallel_calls),
                web_search: tools.web_search.or(tools_under.web_search),
            },
            rate_limits: self.rate_limits.or(under.rate_limits),
            thinking: ThinkingPatch {
                tokens: thinking.tokens.or(thinking_under.tokens),
                token_interval: thinking.token_interval.or(thinking_under.token_interval),
                first_token_delay_before: thinking
                    .first_token_delay_before
                    .or(thinking_under.first_token_delay_before),
                redacted: thinking.redacted.or(thinking_under.redacted),
                reasoning_content: thinking.reasoning_content.or(thinking_under.reasoning_content),
            },
            capacity: self.capacity.or(under.capacity),
        }
    }

    /// `base` with this patch's knobs over it.
    pub fn over(&self, base: &Profile) -> Profile {
        Profile {
            timing: Timing {
                first_token_delay: self.first_token_delay.unwrap_or(base.timing.first_token_delay),
                token_interval: self.token_interval.unwrap_or(base.timing.token_interval),
                tool_call_delay: self.tool_call_delay.unwrap_or(base.timing.tool_call_delay),
                overload: self.overload.unwrap_or(base.timing.overload),
                thinking_interval: self.thinking.token_interval.or(base.timing.thinking_interval),
                first_token_delay_before: self
                    .thinking
                    .first_token_delay_before
                    .unwrap_or(base.timing.first_token_delay_before),
            },
            tokens_per_response: self.tokens_per_response.unwrap_or(base.tokens_per_response),
            error_rate: self.error_rate.unwrap_or(base.error_rate),
            faults: self.faults.clone().unwrap_or_else(|| base.faults.clone()),
            tool_use: self.tool_use.over(&base.tool_use),
            rate_limits: self.rate_limits.unwrap_or(base.rate_limits),
            thinking: Thinking {
                tokens: self.thinking.tokens.unwrap_or(base.thinking.tokens),
                redacted: self.thinking.redacted.unwrap_or(base.thinking.redacted),
                reasoning_content: self
                    .thinking
                    .reasoning_content
                    .unwrap_or(base.thinking.reasoning_content),
            },
            capacity: self.capacity.unwrap_or(base.capacity),
        }
    }
}

/// Which API a route takes, told by the request path (`docs/protocols.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Messages API (and any path not OpenAI's).
    Anthropic,
    /// Either OpenAI API.
    OpenAi,
    /// OpenAI Chat Completions (`.../chat/completions`).
    OpenAiChat,
    /// The OpenAI Responses API (`.../responses`).
    OpenAiResponses,
    /// The Gemini API and Vertex AI (`.../models/{model}:generateContent`).
    Gemini,
    /// Amazon Bedrock's runtime (`/model/{modelId}/converse-stream`, ...).
    Bedrock,
}

impl Api {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::OpenAiChat => "openai-chat",
            Self::OpenAiResponses => "openai-responses",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
        }
    }
}

/// Which requests a route takes. Every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    /// Path glob, e.g. `/v1/messages*`.
    pub path: Option<glob::Pattern>,
    /// Method, e.g. `POST`.
    pub method: Option<hyper::Method>,
    /// Header name and value glob, e.g. `x-scenario` = `tool_*`.
    pub headers: Vec<(hyper::header::HeaderName, glob::Pattern)>,
    /// Model glob, read from the JSON body.
    pub model: Option<glob::Pattern>,
    /// `"stream": true` in the body, or not.
    pub stream: Option<bool>,
    /// The body has a non-empty `tools` list, or not.
    pub has_tools: Option<bool>,
    /// The API of the request's path.
    pub api: Option<Api>,
}

impl PartialEq for RouteMatch {
    fn eq(&self, other: &Self) -> bool {
        let pattern = |p: &Option<glob::Pattern>| p.as_ref().map(|p| p.as_str().to_owned());
        let headers = |m: &Self| {
            m.headers.iter().map(|(n, p)| (n.clone(), p.as_str().to_owned())).collect::<Vec<_>>()
        };
        pattern(&self.path) == pattern(&other.path)
            && self.method == other.method
            && headers(self) == headers(other)
            && pattern(&self.model) == pattern(&other.model)
            && self.stream == other.stream
            && self.has_tools == other.has_tools
            && self.api == other.api
    }
}

impl RouteMatch {
    /// Whether matching needs the request body (model, stream, tools).
    pub fn needs_body(&self) -> bool {
        self.model.is_some() || self.stream.is_some() || self.has_tools.is_some()
    }
}

/// A route: a name, the requests it takes, and the profile they get.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Named in `x-sluice-route` and in logs.
    pub name: String,
    /// Which requests.
    pub matcher: RouteMatch,
    /// The profile; `None` is the default profile.
    pub profile: Option<String>,
}

/// Per-request control headers (`x-sluice-profile`, `x-sluice-inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// Whether the headers are obeyed (off by default).
    pub headers: bool,
    /// At most this many header-driven faults at once; more are ignored.
    pub max_active: usize,
}

/// The admin listener: health, metrics, config, reload, runtime overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Whether it listens at all.
    pub enabled: bool,
    /// Its address; loopback by default, as it can change the faults.
    pub listen: SocketAddr,
    /// If set, every admin request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for Admin {
    fn default() -> Self {
        Self { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9090)), token: None }
    }
}

/// `[fleet]`: rate limits, schedules, runs and live control shared by every
/// replica through one store (docs/fleet.md). Read at start; a change needs
/// a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The store (`SLUICE_FLEET_STORE`): a `redis://` URL. Without one
    /// (a file that leaves it to the environment, which did not set it)
    /// there is no fleet state.
    pub store: Option<StoreUrl>,
    /// Prefix of every key and channel, so that fleets can share one store.
    pub namespace: String,
    /// The longest any store call may take; past it the replica goes on
    /// with its own state (docs/fleet.md, "When the store is down or slow").
    pub timeout: Duration,
}

impl Fleet {
    /// A fleet on `store` with the default namespace and timeout.
    #[must_use]
    pub fn new(store: StoreUrl) -> Self {
        Self {
            store: Some(store),
            namespace: "sluice".to_string(),
            timeout: Duration::from_millis(250),
        }
    }
}

/// A store's URL, which may hold a password: shown (`Display`, `Debug`)
/// with the password replaced, so it never reaches a log, the banner or
/// `GET /config`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// Wraps an already validated URL (`value::store_url`).
    pub(crate) fn new(url: String) -> Self {
        Self(url)
    }

    /// The URL itself, password included: only for connecting.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // redis://[user][:password]@host:port/db: everything before the last
        // '@' of the authority is a credential.
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => write!(f, "{scheme}://<redacted>@{}", &rest[at + 1..]),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// The bounds on client connections, both listeners (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection that started a request head must finish it within this.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// A request body that sluice reads must arrive whole within this (else 408).
    pub body_read_timeout: Duration,
    /// At most this many client connections at once (the API listener; read at start).
    pub max_connections: usize,
    /// The largest HTTP/1.1 request head (request line and headers) of the
    /// API listener, and the size of each connection's read buffer (read at
    /// start). hyper's default let the buffer grow to 16 KiB for every
    /// connection; a stream open for a long time holds it.
    pub max_request_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_request_head: 8 * 1024,
        }
    }
}

/// How the config file is watched (`[watch]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watch {
    /// Poll the file at this interval instead of relying on inotify (network
    /// filesystems, some container mounts). Read at start.
    pub poll: Option<Duration>,
}

/// Where proxy mode sends requests, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Base URL; the request's path and query are appended to its path.
    pub url: hyper::Uri,
    /// Limit on opening a TCP connection.
    pub connect_timeout: Duration,
    /// Limit on waiting for the upstream's response head.
    pub header_timeout: Duration,
    /// PEM file of extra root certificates (a private CA), added to the public roots.
    pub ca_file: Option<PathBuf>,
    /// Hold the head of a non-SSE response for `first_token_delay` too.
    pub delay_non_sse: bool,
    /// An SSE event larger than this is passed on as it arrives, unclassified.
    pub max_event_size: usize,
    /// While the head waits for the first token, at most this many bytes of
    /// other events are held; past it the head goes out and the stream passes.
    pub head_hold_bytes: usize,
    /// ... and for at most this long.
    pub head_hold_time: Duration,
    /// Idle pooled connections kept per upstream host.
    pub max_idle_per_host: usize,
    /// An SSE stream whose upstream sends nothing for this long is broken.
    pub stream_idle_timeout: Duration,
    /// After the first visible token, an SSE stream whose plan has nothing
    /// left to do passes through unread (its later tokens are not counted).
    pub pass_through: bool,
}

impl Upstream {
    /// An upstream at `url` with the default settings.
    pub fn new(url: hyper::Uri) -> Self {
        Self {
            url,
            connect_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(600),
            ca_file: None,
            delay_non_sse: true,
            max_event_size: 1024 * 1024,
            head_hold_bytes: 1024 * 1024,
            head_hold_time: Duration::from_secs(60),
            max_idle_per_host: 256,
            stream_idle_timeout: Duration::from_secs(300),
            pass_through: true,
        }
    }

    /// The URL as it may be shown (banner, logs, error bodies, `/config`):
    /// any credentials in it are replaced by `<redacted>`.
    pub fn display_url(&self) -> String {
        let url = self.url.to_string();
        let url = url.trim_end_matches('/');
        match self.url.authority().map(|a| a.as_str()) {
            Some(authority) if authority.contains('@') => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
                url.replacen(authority, &format!("<redacted>@{host}"), 1)
            }
            _ => url.to_string(),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address of the API listener.
    pub listen: SocketAddr,
    /// Seed of every random draw; `None` picks one at start (and logs it).
    pub seed: Option<u64>,
    /// This replica's stable name in a fleet (`SLUICE_REPLICA`, `--replica`,
    /// the pod name): mixed into the seed, so that replicas draw different
    /// streams, each reproducible. Read at start.
    pub replica: Option<String>,
    /// The instant fault windows (`from`/`until`) count from, shared by a
    /// fleet (`epoch`, `SLUICE_EPOCH`); `None` counts from the process start.
    pub epoch: Option<std::time::SystemTime>,
    /// Largest request body accepted; larger gets 413.
    pub max_request_body: u64,
    /// When a stream's head is sent.
    pub head: HeadTiming,
    /// On shutdown, how long responses in flight may take to finish before
    /// the remaining streams are ended at their next event.
    pub shutdown_grace: Duration,
    /// The models `GET /v1/models` lists (the mock answers any model a
    /// request names).
    pub models: Vec<String>,
    /// The default profile: the top-level knobs.
    pub profile: Profile,
    /// Named profiles, by name.
    pub profiles: BTreeMap<String, ProfilePatch>,
    /// Routes, in order; first match wins; no match is the default profile.
    pub routes: Vec<Route>,
    /// Per-request control headers.
    pub control: Control,
    /// The admin listener.
    pub admin: Admin,
    /// Proxy mode's upstream; `None` serves the built-in mock.
    pub upstream: Option<Upstream>,
    /// TLS on the API listener (`[tls]`); `None` serves plain HTTP.
    pub tls: Option<Tls>,
    /// Proxy mode writes every exchange as a cassette (`[record]`).
    pub record: Option<Record>,
    /// The mock answers from cassettes (`[replay]`).
    pub replay: Option<Replay>,
    /// Bounds on client connections.
    pub limits: Limits,
    /// How the config file is watched.
    pub watch: Watch,
    /// The test's story: phases of knobs at offsets (`[timeline]`).
    pub timeline: Option<Timeline>,
    /// State shared by a fleet of replicas through a store (`[fleet]`).
    pub fleet: Option<Fleet>,
    /// Where this config came from.
    pub source: ConfigSource,
}

/// `[tls]`: the API listener speaks TLS, with HTTP/2 and HTTP/1.1 by ALPN
/// (`docs/tls.md`). Read at start; the certificate files are watched and
/// reloaded while serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Where the certificate comes from.
    pub certificate: TlsCertificate,
    /// The protocols offered by ALPN, in order of preference.
    pub alpn: Vec<Alpn>,
}

/// Where the API listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCertificate {
    /// PEM files: the chain (leaf first) and its private key.
    Files {
        /// `cert`.
        cert: PathBuf,
        /// `key`.
        key: PathBuf,
    },
    /// A CA and a leaf made at start for `names` (`localhost` and
    /// `127.0.0.1` always among them); the CA's PEM is written to `ca_out`
    /// so that clients can trust it.
    SelfSigned {
        /// DNS names and IP addresses the leaf is valid for.
        names: Vec<String>,
        /// Where the CA certificate is written, if anywhere.
        ca_out: Option<PathBuf>,
    },
}

/// `[record]`: proxy mode writes every exchange that passes through it as
/// one cassette file (`docs/record-replay.md`). Read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The folder cassettes are written to (made if missing).
    pub dir: PathBuf,
    /// Headers whose values are replaced by `[redacted]`, lowercase; the
    /// credential headers are dropped whatever this says.
    pub redact_headers: Vec<String>,
    /// JSON body fields (dotted paths such as `metadata.user_id`) whose
    /// values are replaced by `"[redacted]"`, in requests and responses.
    pub redact_fields: Vec<String>,
    /// Header, query and field names, lowercase, that look like secrets
    /// (`key`, `token`, ...) but are kept (`docs/record-replay.md`).
    pub keep: Vec<String>,
}

/// `[replay]`: the mock answers from recorded cassettes
/// (`docs/record-replay.md`). Reloaded with the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The folder cassettes are read from.
    pub dir: PathBuf,
    /// How a request finds its cassette.
    pub matching: ReplayMatch,
    /// When a replayed event goes out.
    pub timing: ReplayTiming,
    /// What a request no cassette matches gets.
    pub fallback: ReplayFallback,
    /// Regular expressions for spans that change from run to run (ids,
    /// timings) and are ignored when a request is matched, on top of the
    /// defaults (`docs/record-replay.md`).
    pub ignore: Vec<String>,
}

/// How a request is matched to a cassette. Every rule also requires the
/// same path and the same `stream` choice; several cassettes that match
/// are served in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMatch {
    /// The same JSON body (redacted fields aside; key order does not matter).
    Body,
    /// The same last user message.
    LastUserMessage,
    /// The same model.
    ModelPath,
    /// Any cassette of the path, in turn.
    RoundRobin,
    /// The same place in the same conversation: the first user message and
    /// the number of messages before this turn.
    Conversation,
}

impl ReplayMatch {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::LastUserMessage => "last_user_message",
            Self::ModelPath => "model_path",
            Self::RoundRobin => "round_robin",
            Self::Conversation => "conversation",
        }
    }
}

/// When a replayed event goes out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplayTiming {
    /// At its recorded offset from the request (the profile's delays do not apply).
    Recorded,
    /// On the profile's delays, as a generated reply.
    Configured,
    /// At its recorded offset times this factor.
    Scaled(f64),
}

impl std::fmt::Display for ReplayTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Recorded => f.write_str("recorded"),
            Self::Configured => f.write_str("configured"),
            Self::Scaled(factor) => write!(f, "scaled x{factor}"),
        }
    }
}

/// What a request no cassette matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFallback {
    /// The mock's generated reply.
    Generate,
    /// A 404 in the API's error shape that says no cassette matched.
    NotFound,
}

/// A protocol offered by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`.
    H2,
    /// `http/1.1`.
    Http11,
}

impl Alpn {
    /// Its ALPN identifier.
    pub fn id(self) -> &'static str {
        match self {
            Self::H2 => "h2",
            Self::Http11 => "http/1.1",
        }
    }
}

/// The Node mock's error mix, documented in the README and `config/sluice.toml`.
pub fn default_faults() -> Vec<WeightedFault> {
    let http = |status, weight, retry_after| WeightedFault {
        weight,
        fault: Fault::Http(HttpFault { retry_after, ..HttpFault::plain(status) }),
        schedule: Schedule::Random,
    };
    vec![http(529, 4, None), http(500, 3, None), http(429, 3, Some(Duration::from_secs(1)))]
}

impl Default for Config {
    /// The Node mock's defaults: port 3456, 100 ms to the first token, a token
    /// every 20 ms, 50 tokens, 500 ms before a tool call, 0.5 % errors.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 3456)),
            seed: None,
            replica: None,
            epoch: None,
            max_request_body: 32 * 1024 * 1024,
            head: HeadTiming::FirstToken,
            // Below `docker stop`'s 10 s, so sluice ends its streams itself and
            // exits 0 before the platform kills it (docs: "Shutdown").
            shutdown_grace: Duration::from_secs(8),
            models: vec!["sluice-mock".to_string()],
            profile: Profile {
                timing: Timing {
                    first_token_delay: Duration::from_millis(100).into(),
                    token_interval: Duration::from_millis(20).into(),
                    tool_call_delay: Duration::from_millis(500).into(),
                    overload: Overload::CatchUp,
                    thinking_interval: None,
                    first_token_delay_before: FirstOutput::Thinking,
                },
                tokens_per_response: Length::Fixed(50),
                error_rate: 0.005,
                faults: default_faults(),
                tool_use: ToolUse::DEFAULT,
                rate_limits: RateLimits::default(),
                thinking: Thinking::DEFAULT,
                capacity: Capacity::OFF,
            },
            profiles: BTreeMap::new(),
            routes: Vec::new(),
            control: Control { headers: false, max_active: 64 },
            admin: Admin::default(),
            upstream: None,
            tls: None,
            record: None,
            replay: None,
            limits: Limits::default(),
            watch: Watch::default(),
            timeline: None,
            fleet: None,
            source: ConfigSource::Defaults,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key or a value of the wrong type. toml's
    /// message already carries line, column, a caret and the valid keys.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// toml's message.
        message: String,
    },
    /// A value of the right type that is not allowed.
    #[error("{origin}: invalid {key} {value}: expected {expected}")]
    Invalid {
        /// Where: `file:line:column`, `environment variable NAME` or `flag --name`.
        origin: String,
        /// The knob.
        key: String,
        /// The value as given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in errors. No I/O.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] or [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        raw::parse(text, origin)
    }

    /// The profile called `name`, resolved over the default profile.
    pub fn profile_named(&self, name: &str) -> Option<Profile> {
        self.profiles.get(name).map(|patch| patch.over(&self.profile))
    }
}

/// Parses runtime overrides (`PUT /faults`): a JSON object with the knobs of
/// a profile (`first_token_delay`, `token_interval`, `tool_call_delay`,
/// `tokens_per_response`, `error_rate`, `faults`, `tool_use`), in the file's forms.
///
/// # Errors
/// [`ConfigError`] naming the knob.
pub(crate) fn parse_runtime_patch(json: &str) -> Result<ProfilePatch, ConfigError> {
    raw::patch_from_json(json)
}

/// Parses one fault written as a header value, `kind; key=value; ...`, e.g.
/// `stream_error; after_tokens=3` or `http; status=429; retry_after=2s`, with
/// the same keys and checks as a `[[faults]]` table.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the header.
pub(crate) fn parse_fault_header(value: &str) -> Result<Fault, ConfigError> {
    raw::fault_from_header(value)
}

#[cfg(test)]
mod tests;
