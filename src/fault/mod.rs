//! The fault kinds, one file each: its parameters, how its keys are read
//! (from `[[faults]]`, the `x-sluice-inject` header and `PUT /faults` alike),
//! how it is named in `x-sluice-fault`, logs, the banner and `GET /config`,
//! and what it does to a stream. [`plan`] draws a request's fault at its
//! admission; the handler applies it before the head (an HTTP error, a slow
//! head) or hands the shaper its [`StreamFault`] (`crate::shape::shaper`).
//!
//! Adding a kind is a file here with a type that implements [`Kind`], and
//! one line in the `kinds!` list below; the compiler then lists every
//! `match` on [`Fault`] that must learn it (`docs/architecture.md`, "Where to
//! change what"). This module knows nothing of the config file: a kind reads
//! its keys from a [`Given`], and an error names the key ([`FaultError`]) for
//! the config to locate by line and column.

mod http;
mod malformed;
pub(crate) mod plan;
mod reset;
mod slow_head;
mod stall;
mod stop;
mod stream_error;
mod truncate;

use std::time::Duration;

use crate::dialect::{Dialect, StreamSoFar};
use crate::shape::StreamFault;

pub use http::HttpFault;
#[cfg(test)]
pub(crate) use http::STATUS_FORM;
pub use malformed::Malformed;
pub(crate) use plan::{FaultPlan, RequestClock};
pub use plan::{Schedule, WeightedFault};
pub use reset::Reset;
pub use slow_head::SlowHead;
pub use stall::Stall;
pub use stop::{Stop, StopReason};
pub use stream_error::StreamError;
pub use truncate::Truncate;

/// What a fault kind is: its name and keys, how they are read, its
/// parameters, and what it does to a stream.
pub(crate) trait Kind: Sized {
    /// Its `kind` in the config and the control header.
    const NAME: &'static str;
    /// Its own keys (besides `kind`, `weight` and a schedule).
    const KEYS: &'static [&'static str];
    /// Reads its keys; only [`Self::KEYS`] are given.
    fn read(given: &Given<'_>) -> Result<Self, FaultError>;
    /// Its parameters, in the order the control header writes them; a key
    /// left at its default is left out.
    fn params(&self) -> Vec<(&'static str, Param)>;
    /// What it does to a stream, if it acts on one (after the head).
    fn on_stream(&self, _stream: &OnStream<'_>) -> Option<StreamFault> {
        None
    }
}

/// What a stream fault needs to know of the stream it acts on.
pub(crate) struct OnStream<'a> {
    /// The stream's dialect, which shapes an error event.
    pub(crate) dialect: Dialect,
    /// The request's id, which the error event carries.
    pub(crate) request_id: &'a str,
    /// The response id and sequence the stream has used so far.
    pub(crate) so_far: &'a StreamSoFar,
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident($kind:ty),)*) => {
        /// The closed set of faults. A new kind is a new variant: the
        /// compiler then lists every `match` that must learn it.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Fault {
            $($(#[$doc])* $variant($kind),)*
        }

        impl Fault {
            /// Every kind's name, in the order of the list.
            pub(crate) const NAMES: &'static [&'static str] = &[$(<$kind as Kind>::NAME),*];

            /// The kind's name, as written in the config.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Fault::$variant(_) => <$kind as Kind>::NAME,)*
                }
            }

            /// Its parameters, in the control header's order.
            pub(crate) fn params(&self) -> Vec<(&'static str, Param)> {
                match self {
                    $(Fault::$variant(fault) => fault.params(),)*
                }
            }

            /// What it does to a stream; `None` for faults that act before the head.
            pub(crate) fn on_stream(&self, stream: &OnStream<'_>) -> Option<StreamFault> {
                match self {
                    $(Fault::$variant(fault) => fault.on_stream(stream),)*
                }
            }

            /// A fault of `kind` from its keys.
            pub(crate) fn read(kind: &str, given: &Given<'_>) -> Result<Fault, FaultError> {
                $(if kind == <$kind as Kind>::NAME {
                    given.only(kind, <$kind as Kind>::KEYS)?;
                    return <$kind as Kind>::read(given).map(Fault::$variant);
                })*
                Err(FaultError::new("kind", Some(format!("{kind:?}")), kind_form()))
            }
        }
    };
}

kinds! {
    /// Answer with an HTTP error and a provider-shaped body.
    Http(HttpFault),
    /// After N tokens, the provider's mid-stream error event, then the end.
    StreamError(StreamError),
    /// After N tokens, the connection is reset (TCP RST).
    Reset(Reset),
    /// After N tokens, a clean end without the final event.
    Truncate(Truncate),
    /// After N tokens, nothing more, for a while or until the client leaves.
    Stall(Stall),
    /// The response head (and so everything) is held longer.
    SlowHead(SlowHead),
    /// The token after N tokens is sent corrupted; the stream goes on.
    Malformed(Malformed),
    /// After N tokens, the turn ends early with a stop reason (`refusal`).
    Stop(Stop),
}

/// What `kind` may be.
impl Fault {
    /// Whether it breaks a stream after its head (a client may ask again):
    /// `stream_error`, `reset`, `truncate`, `stall`, `malformed`.
    pub fn breaks_stream(&self) -> bool {
        !matches!(self, Self::Http(_) | Self::SlowHead(_) | Self::Stop(_))
    }
}

pub(crate) fn kind_form() -> String {
    let names: Vec<String> = Fault::NAMES.iter().map(|name| format!("{name:?}")).collect();
    format!("one of {}", names.join(", "))
}

impl Fault {
    /// How the fault is named in the `x-sluice-fault` header and in logs: the
    /// kind and every parameter it was given, in the `kind; key=value` form
    /// the `x-sluice-inject` header accepts, so that a test can tell one
    /// injected fault from another and send it again, e.g.
    /// `http; status=429; retry_after=2s; should_retry=false` or
    /// `stall; after_tokens=5; duration=30s`. Text that the header form
    /// cannot carry (a `;`, or anything but printable ASCII) is left out.
    pub fn label(&self) -> String {
        let mut label = self.kind().to_string();
        for (key, param) in self.params() {
            if let Some(value) = param.header_form() {
                label.push_str(&format!("; {key}={value}"));
            }
        }
        label
    }

    /// Its parameters as JSON, for `GET /config`.
    pub(crate) fn describe(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.params().into_iter().map(|(key, param)| (key, param.json())).collect()
    }
}

/// A parameter's value, as a kind reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// A whole number.
    Count(u64),
    /// Text.
    Text(String),
    /// A yes or no.
    Flag(bool),
    /// A duration.
    Time(Duration),
}

impl Param {
    /// As written after `key=` in the control header; `None` for text the
    /// header cannot carry.
    fn header_form(&self) -> Option<String> {
        match self {
            Param::Count(n) => Some(n.to_string()),
            Param::Flag(b) => Some(b.to_string()),
            Param::Time(d) => Some(format!("{d:?}")),
            Param::Text(text) => {
                let fits = !text.is_empty()
                    && !text.contains(';')
                    && text.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
                fits.then(|| text.clone())
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Param::Count(n) => serde_json::json!(n),
            Param::Text(text) => serde_json::json!(text),
            Param::Flag(b) => serde_json::json!(b),
            Param::Time(d) => serde_json::json!(format!("{d:?}")),
        }
    }
}

/// Why a fault's keys were refused: the key, what was given (`None` when it
/// is missing), and what it may be. The config adds where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultError {
    /// The key.
    pub(crate) key: String,
    /// The value given, as written; `None` when the key is missing.
    pub(crate) given: Option<String>,
    /// What it may be.
    pub(crate) expected: String,
}

impl FaultError {
    fn new(key: &str, given: Option<String>, expected: impl Into<String>) -> Self {
        Self { key: key.to_string(), given, expected: expected.into() }
    }
}

/// What `after_tokens` may be.
const AFTER_TOKENS_FORM: &str = "a whole number of tokens from 0 to 1000000";
pub(crate) use crate::shape::DURATION_FORM;

/// A fault's keys as given, by name (without `kind`, `weight` or a schedule).
pub(crate) struct Given<'a> {
    keys: Vec<(&'a str, &'a toml::Value)>,
}

impl<'a> Given<'a> {
    /// The keys, in any order.
    pub(crate) fn new(keys: impl IntoIterator<Item = (&'a str, &'a toml::Value)>) -> Self {
        Self { keys: keys.into_iter().collect() }
    }

    fn get(&self, key: &str) -> Option<&'a toml::Value> {
        self.keys.iter().find(|(name, _)| *name == key).map(|(_, value)| *value)
    }

    fn refuse(&self, key: &str, expected: impl Into<String>) -> FaultError {
        FaultError::new(key, self.get(key).map(ToString::to_string), expected)
    }

    /// Refuses a key that `kind` does not take.
    fn only(&self, kind: &str, keys: &[&str]) -> Result<(), FaultError> {
        match self.keys.iter().find(|(name, _)| !keys.contains(name)) {
            None => Ok(()),
            Some((name, _)) => Err(FaultError::new(
                name,
                Some("(given)".to_string()),
                format!("no {name} for kind {kind:?}; it takes {}", keys.join(", ")),
            )),
        }
    }

    /// A whole number at `key` within `range`.
    fn count(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        form: &str,
    ) -> Result<Option<u64>, FaultError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let number = value.as_integer().and_then(|n| u64::try_from(n).ok());
        number.filter(|n| range.contains(n)).map(Some).ok_or_else(|| self.refuse(key, form))
    }

    /// `after_tokens`: 0 when not given.
    fn after_tokens(&self) -> Result<u32, FaultError> {
        let n = self.count("after_tokens", 0..=1_000_000, AFTER_TOKENS_FORM)?;
        Ok(n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
    }

    /// A duration at `key`, such as `"30s"`.
    fn duration(&self, key: &str) -> Result<Option<Duration>, FaultError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        // `parse_duration` bounds it to `MAX_DURATION`.
        let parsed = value.as_str().and_then(|text| crate::shape::parse_duration(text).ok());
        parsed.map(Some).ok_or_else(|| self.refuse(key, DURATION_FORM))
    }

    /// Text at `key`.
    fn text(&self, key: &str) -> Result<Option<String>, FaultError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        value.as_str().map(|s| Some(s.to_string())).ok_or_else(|| self.refuse(key, "text"))
    }

    /// `true` or `false` at `key`.
    fn flag(&self, key: &str) -> Result<Option<bool>, FaultError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        value.as_bool().map(Some).ok_or_else(|| self.refuse(key, "true or false"))
    }

    /// `value`, or the error for a missing `key`.
    fn required<T>(key: &str, value: Option<T>, form: &str) -> Result<T, FaultError> {
        value.ok_or_else(|| FaultError::new(key, None, form))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fault from `kind` and `key = value` TOML lines.
    pub(crate) fn read(kind: &str, toml_keys: &str) -> Result<Fault, FaultError> {
        let table: toml::Table = toml::from_str(toml_keys).unwrap();
        Fault::read(kind, &Given::new(table.iter().map(|(k, v)| (k.as_str(), v))))
    }

    #[test]
    fn every_kind_reads_back_from_its_label() {
        let faults = [
            read("http", "status = 429\nretry_after = \"2s\"\nshould_retry = false").unwrap(),
            read("stream_error", "after_tokens = 3\nmessage = \"busy\"").unwrap(),
            read("reset", "after_tokens = 2").unwrap(),
            read("truncate", "").unwrap(),
            read("stall", "after_tokens = 5\nduration = \"30s\"").unwrap(),
            read("slow_head", "duration = \"1.5s\"").unwrap(),
            read("malformed", "after_tokens = 1").unwrap(),
        ];
        for fault in faults {
            let label = fault.label();
            let mut parts = label.split("; ");
            let kind = parts.next().unwrap();
            let toml_keys: String = parts
                .map(|part| {
                    let (key, value) = part.split_once('=').unwrap();
                    let value =
                        if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
                            value.to_string()
                        } else {
                            format!("{value:?}")
                        };
                    format!("{key} = {value}\n")
                })
                .collect();
            assert_eq!(read(kind, &toml_keys).unwrap(), fault, "{label}");
        }
    }

    #[test]
    fn a_key_another_kind_takes_is_refused_by_name() {
        let error = read("reset", "duration = \"1s\"").unwrap_err();
        assert_eq!(error.key, "duration");
        assert_eq!(error.expected, "no duration for kind \"reset\"; it takes after_tokens");
        let error = read("slow_head", "").unwrap_err();
        assert_eq!((error.key.as_str(), error.given), ("duration", None));
        let error = read("teleport", "").unwrap_err();
        assert!(error.expected.starts_with("one of \"http\", \"stream_error\""), "{error:?}");
    }
}
