//! Configuration: the TOML file (untrusted [`RawConfig`], validated into
//! [`Config`]), layered with the environment and the command line.
//!
//! Layering is built-in defaults < config file < environment < flags
//! ([`layer`]). Everything is validated before use, and every error names where
//! the bad value came from (file:line:column, variable or flag), the key, the
//! value and what would be accepted. The server reads a `Config`; lower modules
//! get plain values built from it (`Timing`, the fault list), never the config.

pub mod layer;
pub mod value;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::shape::{Fault, HttpFault, Timing, WeightedFault};

/// Where a config came from, for the banner and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: built-in defaults (plus environment and flags).
    Defaults,
    /// Loaded from this file.
    File(PathBuf),
}

/// When the response head of a stream is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadTiming {
    /// Held until the first content event is released, so a client that sees
    /// only time to first byte (k6's `timings.waiting`) measures the
    /// first-token delay. The default.
    FirstToken,
    /// Sent at once, with the non-content preamble (`message_start`).
    Immediate,
}

/// The knobs that shape a response. One profile today; routes will pick
/// among named ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// First-token, token-interval and tool-call delays.
    pub timing: Timing,
    /// Content deltas in a mock text reply.
    pub tokens_per_response: u32,
    /// Probability that a request draws a fault from `faults`.
    pub error_rate: f64,
    /// The weighted faults drawn from.
    pub faults: Vec<WeightedFault>,
}

/// Where proxy mode sends requests, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Base URL; the request's path and query are appended to its path.
    pub url: hyper::Uri,
    /// Limit on opening a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Limit on waiting for the upstream's response head.
    pub header_timeout: Duration,
    /// PEM file of extra root certificates (a private CA), added to the public roots.
    pub ca_file: Option<PathBuf>,
    /// Hold the head of a non-SSE response for `first_token_delay` too.
    pub delay_non_sse: bool,
    /// An SSE event larger than this is passed on as it arrives, unclassified.
    pub max_event_size: usize,
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
    /// Largest request body accepted; larger gets 413.
    pub max_request_body: u64,
    /// When a stream's head is sent.
    pub head: HeadTiming,
    /// The knobs applied to every request.
    pub profile: Profile,
    /// Proxy mode's upstream; `None` serves the built-in mock.
    pub upstream: Option<Upstream>,
    /// Where this config came from.
    pub source: ConfigSource,
}

/// The seed mock's error mix, documented in the README and `config/sluice.toml`.
pub fn default_faults() -> Vec<WeightedFault> {
    let http = |status, weight, retry_after| WeightedFault {
        weight,
        fault: Fault::Http(HttpFault { status, retry_after, message: None }),
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
            max_request_body: 32 * 1024 * 1024,
            head: HeadTiming::FirstToken,
            profile: Profile {
                timing: Timing {
                    first_token_delay: Duration::from_millis(100),
                    token_interval: Duration::from_millis(20),
                    tool_call_delay: Duration::from_millis(500),
                },
                tokens_per_response: 50,
                error_rate: 0.005,
                faults: default_faults(),
            },
            upstream: None,
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
        key: &'static str,
        /// The value as given.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
}

impl Config {
    /// Reads and validates the file at `path` (no environment, no flags).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, and for a bad value its line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut config = Self::from_toml_str(&text, &path.display().to_string())?;
        config.source = ConfigSource::File(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates TOML text; `origin` names it in errors. No I/O.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] or [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Syntax {
            origin: origin.to_string(),
            message: error.to_string().trim_end().to_string(),
        })?;
        raw.validate(&Locator { text, origin })
    }
}

/// The file, field for field. Nothing here is trusted yet; spans locate errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    seed: Option<Spanned<i64>>,
    max_request_body: Option<Spanned<RawSize>>,
    head: Option<Spanned<String>>,
    first_token_delay: Option<Spanned<String>>,
    token_interval: Option<Spanned<String>>,
    tool_call_delay: Option<Spanned<String>>,
    tokens_per_response: Option<Spanned<i64>>,
    error_rate: Option<Spanned<f64>>,
    faults: Option<Vec<Spanned<RawFault>>>,
    upstream: Option<Spanned<RawUpstream>>,
}

/// The `[upstream]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    header_timeout: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    delay_non_sse: Option<bool>,
    max_event_size: Option<Spanned<RawSize>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

/// One `[[faults]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: Spanned<String>,
    weight: Option<Spanned<i64>>,
    status: Option<Spanned<i64>>,
    retry_after: Option<Spanned<String>>,
    message: Option<String>,
}

/// Turns byte spans into `file:line:column` for error messages.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Locator<'_> {
    fn at(&self, span: &Range<usize>) -> String {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", self.origin)
    }

    fn invalid<T: std::fmt::Debug>(
        &self,
        spanned: &Spanned<T>,
        key: &'static str,
        expected: &'static str,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: self.at(&spanned.span()),
            key,
            value: format!("{:?}", spanned.get_ref()),
            expected,
        }
    }

    /// Applies `parse` to the value if present, locating its error.
    fn check<T: std::fmt::Debug, U>(
        &self,
        field: &Option<Spanned<T>>,
        key: &'static str,
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

const TOKENS_FORM: &str = "a whole number from 1 to 100000";
const SEED_FORM: &str = "a whole number from 0 to 9223372036854775807";
const HEAD_FORM: &str = "\"first_token\" (hold the head until the first token) or \"immediate\"";
const KIND_FORM: &str = "\"http\" (more kinds are planned)";
const STATUS_FORM: &str = "an HTTP error status from 400 to 599, such as 429, 500 or 529";
const WEIGHT_FORM: &str = "a whole number from 1 to 1000000";

impl RawConfig {
    fn validate(self, at: &Locator<'_>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(listen) = at.check(&self.listen, "listen", |s| value::listen(s))? {
            config.listen = listen;
        }
        config.seed = at.check(&self.seed, "seed", |&s| u64::try_from(s).map_err(|_| SEED_FORM))?;
        if let Some(size) =
            at.check(&self.max_request_body, "max_request_body", |raw| match raw {
                RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| value::SIZE_FORM),
                RawSize::Text(text) => value::size(text),
            })?
        {
            config.max_request_body = size;
        }
        if let Some(head) = at.check(&self.head, "head", |s| match s.as_str() {
            "first_token" => Ok(HeadTiming::FirstToken),
            "immediate" => Ok(HeadTiming::Immediate),
            _ => Err(HEAD_FORM),
        })? {
            config.head = head;
        }
        let profile = &mut config.profile;
        let duration = |s: &String| value::duration(s);
        if let Some(d) = at.check(&self.first_token_delay, "first_token_delay", duration)? {
            profile.timing.first_token_delay = d;
        }
        if let Some(d) = at.check(&self.token_interval, "token_interval", duration)? {
            profile.timing.token_interval = d;
        }
        if let Some(d) = at.check(&self.tool_call_delay, "tool_call_delay", duration)? {
            profile.timing.tool_call_delay = d;
        }
        if let Some(n) =
            at.check(&self.tokens_per_response, "tokens_per_response", |&n| tokens_per_response(n))?
        {
            profile.tokens_per_response = n;
        }
        if let Some(r) = at.check(&self.error_rate, "error_rate", |&r| value::rate(r))? {
            profile.error_rate = r;
        }
        if let Some(faults) = self.faults {
            profile.faults = faults
                .iter()
                .map(|fault| fault.get_ref().validate(at))
                .collect::<Result<_, _>>()?;
        }
        if let Some(upstream) = &self.upstream {
            config.upstream = Some(upstream.get_ref().validate(at, upstream.span())?);
        }
        Ok(config)
    }
}

fn size_of(raw: &RawSize) -> Result<u64, &'static str> {
    match raw {
        RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| value::SIZE_FORM),
        RawSize::Text(text) => value::size(text),
    }
}

impl RawUpstream {
    fn validate(&self, at: &Locator<'_>, table: Range<usize>) -> Result<Upstream, ConfigError> {
        let url =
            at.check(&self.url, "upstream.url", |s| value::upstream_url(s))?.ok_or_else(|| {
                ConfigError::Invalid {
                    origin: at.at(&table),
                    key: "upstream.url",
                    value: "(missing)".to_string(),
                    expected: value::URL_FORM,
                }
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
        if let Some(size) = at.check(&self.max_event_size, "upstream.max_event_size", size_of)? {
            upstream.max_event_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        Ok(upstream)
    }
}

/// Tokens per response: at least one, so that every reply has a first token.
pub(crate) fn tokens_per_response(n: i64) -> Result<u32, &'static str> {
    u32::try_from(n).ok().filter(|n| (1..=100_000).contains(n)).ok_or(TOKENS_FORM)
}

impl RawFault {
    fn validate(&self, at: &Locator<'_>) -> Result<WeightedFault, ConfigError> {
        if self.kind.get_ref() != "http" {
            return Err(at.invalid(&self.kind, "faults.kind", KIND_FORM));
        }
        let weight = at
            .check(&self.weight, "faults.weight", |&w| {
                u32::try_from(w).ok().filter(|w| (1..=1_000_000).contains(w)).ok_or(WEIGHT_FORM)
            })?
            .unwrap_or(1);
        let status = match &self.status {
            Some(status) => u16::try_from(*status.get_ref())
                .ok()
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| at.invalid(status, "faults.status", STATUS_FORM))?,
            None => {
                return Err(ConfigError::Invalid {
                    origin: at.at(&self.kind.span()),
                    key: "faults.status",
                    value: "(missing)".to_string(),
                    expected: STATUS_FORM,
                });
            }
        };
        let retry_after =
            at.check(&self.retry_after, "faults.retry_after", |s| value::duration(s))?;
        Ok(WeightedFault {
            weight,
            fault: Fault::Http(HttpFault { status, retry_after, message: self.message.clone() }),
        })
    }
}

#[cfg(test)]
mod tests;
