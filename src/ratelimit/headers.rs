//! The providers' rate-limit headers and 429s, made from a set of buckets'
//! [`Levels`] (`docs/rate-limits.md`, `docs/protocols.md` §7):
//!
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
//!   the reset an RFC 3339 time (whole seconds, rounded up) when the bucket
//!   is full again; token counts left rounded down to the thousand, as the
//!   API rounds them, once the limit is 1,000 or more.
//! - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the
//!   reset a Go duration (`1s`, `6m0s`, `120ms`) until the bucket is full.
//!
//! The `tokens` figures are the combined bucket when `tokens_per_minute`
//! is set; otherwise the more restrictive of the input and output buckets
//! (fewer tokens left), as Anthropic reports its most restrictive limit.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use hyper::header::{HeaderName, HeaderValue};

use super::{Level, Levels, LimitKind, Limited};
use crate::dialect::Dialect;

/// A response header: name and value.
pub(crate) type Header = (HeaderName, HeaderValue);

/// The header names of one kind of limit, in one dialect.
struct Names {
    limit: HeaderName,
    remaining: HeaderName,
    reset: HeaderName,
}

const ANTHROPIC: [(LimitKind, Names); 4] = [
    (
        LimitKind::Requests,
        Names {
            limit: HeaderName::from_static("anthropic-ratelimit-requests-limit"),
            remaining: HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
            reset: HeaderName::from_static("anthropic-ratelimit-requests-reset"),
        },
    ),
    (
        LimitKind::Tokens,
        Names {
            limit: HeaderName::from_static("anthropic-ratelimit-tokens-limit"),
            remaining: HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
            reset: HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
        },
    ),
    (
        LimitKind::InputTokens,
        Names {
            limit: HeaderName::from_static("anthropic-ratelimit-input-tokens-limit"),
            remaining: HeaderName::from_static("anthropic-ratelimit-input-tokens-remaining"),
            reset: HeaderName::from_static("anthropic-ratelimit-input-tokens-reset"),
        },
    ),
    (
        LimitKind::OutputTokens,
        Names {
            limit: HeaderName::from_static("anthropic-ratelimit-output-tokens-limit"),
            remaining: HeaderName::from_static("anthropic-ratelimit-output-tokens-remaining"),
            reset: HeaderName::from_static("anthropic-ratelimit-output-tokens-reset"),
        },
    ),
];

const OPENAI: [(LimitKind, Names); 2] = [
    (
        LimitKind::Requests,
        Names {
            limit: HeaderName::from_static("x-ratelimit-limit-requests"),
            remaining: HeaderName::from_static("x-ratelimit-remaining-requests"),
            reset: HeaderName::from_static("x-ratelimit-reset-requests"),
        },
    ),
    (
        LimitKind::Tokens,
        Names {
            limit: HeaderName::from_static("x-ratelimit-limit-tokens"),
            remaining: HeaderName::from_static("x-ratelimit-remaining-tokens"),
            reset: HeaderName::from_static("x-ratelimit-reset-tokens"),
        },
    ),
];

/// `dialect`'s rate-limit headers for `levels`, the wall clock reading `now`.
pub(crate) fn headers(dialect: Dialect, levels: &Levels, now: SystemTime) -> Vec<Header> {
    let mut out = Vec::with_capacity(12);
    let mut put = |name: &HeaderName, value: Option<HeaderValue>| {
        if let Some(value) = value {
            out.push((name.clone(), value));
        }
    };
    match dialect {
        Dialect::Anthropic => {
            for (kind, names) in &ANTHROPIC {
                let Some(level) = anthropic_level_of(levels, *kind) else { continue };
                let remaining = if *kind == LimitKind::Requests {
                    level.remaining
                } else {
                    round_tokens(level.remaining, level.limit)
                };
                put(&names.limit, Some(HeaderValue::from(level.limit)));
                put(&names.remaining, Some(HeaderValue::from(remaining)));
                put(&names.reset, rfc3339_value(now, level.until_full));
            }
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            for (kind, names) in &OPENAI {
                let Some(level) = level_of(levels, *kind) else { continue };
                put(&names.limit, Some(HeaderValue::from(level.limit)));
                put(&names.remaining, Some(HeaderValue::from(level.remaining)));
                put(&names.reset, HeaderValue::from_str(&go_duration(level.until_full)).ok());
            }
        }
        // Google and AWS send no remaining-quota headers (docs/rate-limits.md).
        Dialect::Gemini | Dialect::Bedrock => {}
    }
    out
}

/// [`rfc3339_reset`] as a header value. The last one made on this thread
/// is kept: every bucket of every request in the same second shares it,
/// and formatting a time is most of what the headers cost.
fn rfc3339_value(now: SystemTime, wait: Duration) -> Option<HeaderValue> {
    thread_local! {
        static LAST: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    }
    let at = now.checked_add(wait).unwrap_or(now);
    let second = seconds_up(at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, value)) = last.as_ref()
            && *cached == second
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_str(&rfc3339_reset(now, wait)).ok()?;
        *last = Some((second, value.clone()));
        Some(value)
    })
}

/// The level reported for `kind`: for `tokens` without a combined limit,
/// the input or output bucket with fewer tokens left.
fn level_of(levels: &Levels, kind: LimitKind) -> Option<Level> {
    if kind != LimitKind::Tokens {
        return levels.get(kind);
    }
    levels.get(LimitKind::Tokens).or_else(|| {
        [levels.get(LimitKind::InputTokens), levels.get(LimitKind::OutputTokens)]
            .into_iter()
            .flatten()
            .min_by_key(|level| level.remaining)
    })
}

/// What an Anthropic family reports: its own bucket; for input or output
/// tokens without one, the combined `tokens` bucket they draw from.
fn anthropic_level_of(levels: &Levels, kind: LimitKind) -> Option<Level> {
    match kind {
        LimitKind::Tokens | LimitKind::Requests => level_of(levels, kind),
        LimitKind::InputTokens | LimitKind::OutputTokens => {
            levels.get(kind).or_else(|| levels.get(LimitKind::Tokens))
        }
    }
}

/// The level a family reports when nothing configures it: a bucket that
/// never runs out (limit and remaining 4,294,967,295, full now;
/// `docs/rate-limits.md`).
const UNLIMITED: Level =
    Level { limit: u32::MAX as u64, remaining: u32::MAX as u64, until_full: Duration::ZERO };

/// Completes `headers` (a response sluice limits) with every Anthropic family
/// it lacks, as the API sends all four on every response: a family no bucket
/// configures and no upstream reported is [`UNLIMITED`].
pub(crate) fn complete(dialect: Dialect, headers: &mut hyper::HeaderMap, now: SystemTime) {
    if dialect != Dialect::Anthropic {
        return;
    }
    for (_, names) in &ANTHROPIC {
        if headers.contains_key(&names.limit) {
            continue;
        }
        headers.insert(names.limit.clone(), HeaderValue::from(UNLIMITED.limit));
        headers.insert(names.remaining.clone(), HeaderValue::from(UNLIMITED.remaining));
        if let Some(reset) = rfc3339_value(now, UNLIMITED.until_full) {
            headers.insert(names.reset.clone(), reset);
        }
    }
}

/// Anthropic rounds token counts left down to the thousand (never
/// promising tokens that are not there); small test limits stay exact.
fn round_tokens(remaining: u64, limit: u64) -> u64 {
    if limit >= 1000 { remaining - remaining % 1000 } else { remaining }
}

/// `now + wait`, rounded up to the whole second, as RFC 3339 UTC.
pub(crate) fn rfc3339_reset(now: SystemTime, wait: Duration) -> String {
    let at = now.checked_add(wait).unwrap_or(now);
    let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let whole = Duration::from_secs(seconds_up(since_epoch));
    let at = SystemTime::UNIX_EPOCH.checked_add(whole).unwrap_or(at);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Whole seconds, rounded up: `retry-after` never tells a client to come
/// back before the bucket admits it.
pub(crate) fn seconds_up(wait: Duration) -> u64 {
    wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0))
}

/// Whole milliseconds, rounded up (`retry-after-ms`).
pub(crate) fn millis_up(wait: Duration) -> u64 {
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    millis.saturating_add(u64::from(!wait.subsec_nanos().is_multiple_of(1_000_000)))
}

/// A duration as Go prints one, to the millisecond (rounded up): `0s`,
/// `120ms`, `1s`, `16.782s`, `6m0s`, `1h2m3.5s`.
pub(crate) fn go_duration(wait: Duration) -> String {
    let millis = millis_up(wait);
    if millis == 0 {
        return "0s".to_string();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let hours = millis / 3_600_000;
    let minutes = millis / 60_000 % 60;
    let seconds = millis / 1000 % 60;
    let fraction = millis % 1000;
    let mut seconds = if fraction == 0 {
        seconds.to_string()
    } else {
        format!("{seconds}.{fraction:03}").trim_end_matches('0').to_string()
    };
    seconds.push('s');
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

/// The 429's error type, its OpenAI code, and its message, as the
/// provider words them.
pub(crate) fn refusal_message(dialect: Dialect, limited: &Limited) -> (&'static str, String) {
    let wait = limited.wait.map(go_duration);
    match dialect {
        Dialect::Bedrock => {
            // Bedrock's own words for any of its quotas.
            let message = "Too many requests, please wait before trying again. (sluice \
                           [rate_limits])"
                .to_string();
            ("ThrottlingException", message)
        }
        Dialect::Gemini => {
            let what = match limited.kind {
                LimitKind::Requests => "requests per minute",
                LimitKind::InputTokens => "input tokens per minute",
                LimitKind::OutputTokens => "output tokens per minute",
                LimitKind::Tokens => "tokens per minute",
            };
            let model = limited.model.as_deref().unwrap_or("the model");
            let message = format!(
                "You exceeded your current quota of {what} for {model} (sluice [rate_limits]: \
                 limit {}, requested {}).",
                limited.limit, limited.requested
            );
            ("RESOURCE_EXHAUSTED", message)
        }
        Dialect::Anthropic => {
            let what = match limited.kind {
                LimitKind::Requests => "requests",
                LimitKind::InputTokens => "input tokens",
                LimitKind::OutputTokens => "output tokens",
                LimitKind::Tokens => "tokens",
            };
            let message = match wait {
                Some(wait) => format!(
                    "This request would exceed the rate limit of {} {what} per minute \
                     (sluice [rate_limits]). Please try again in {wait}; the response \
                     headers show the current usage.",
                    limited.limit
                ),
                None => format!(
                    "This request asks for {} {what}, more than the rate limit of {} {what} \
                     per minute allows at once (sluice [rate_limits]). Please reduce the \
                     prompt length or the maximum tokens requested.",
                    limited.requested, limited.limit
                ),
            };
            ("rate_limit_error", message)
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            let (kind, what) = match limited.kind {
                LimitKind::Requests => ("requests", "requests per min (RPM)"),
                LimitKind::InputTokens => ("tokens", "input tokens per min (ITPM)"),
                LimitKind::OutputTokens => ("tokens", "output tokens per min (OTPM)"),
                LimitKind::Tokens => ("tokens", "tokens per min (TPM)"),
            };
            let model = limited.model.as_deref().unwrap_or("the model");
            let tail = match wait {
                Some(wait) => format!("Please try again in {wait}."),
                None => "This request can never fit: reduce its tokens.".to_string(),
            };
            let message = format!(
                "Rate limit reached for {model} in sluice on {what}: Limit {}, Used {}, \
                 Requested {}. {tail}",
                limited.limit, limited.used, limited.requested
            );
            (kind, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(120)), "120ms");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(16_782)), "16.782s");
        assert_eq!(go_duration(ms(1_500)), "1.5s");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(179_560)), "2m59.56s");
        assert_eq!(go_duration(ms(3_723_500)), "1h2m3.5s");
    }

    #[test]
    fn waits_round_up() {
        assert_eq!(seconds_up(Duration::from_millis(1)), 1);
        assert_eq!(seconds_up(Duration::from_secs(2)), 2);
        assert_eq!(millis_up(Duration::from_nanos(1_000_001)), 2);
        assert_eq!(millis_up(Duration::from_millis(7)), 7);
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(rfc3339_reset(epoch, Duration::from_millis(1)), "2027-01-15T08:00:01Z");
        assert_eq!(rfc3339_reset(epoch, Duration::ZERO), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn tokens_report_the_most_restrictive_bucket_without_a_combined_one() {
        let level =
            |limit, remaining| Some(Level { limit, remaining, until_full: Duration::from_secs(1) });
        let levels = Levels([level(50, 49), level(80_000, 78_500), level(8_000, 7_999), None]);
        let epoch = SystemTime::UNIX_EPOCH;
        let got = headers(Dialect::Anthropic, &levels, epoch);
        let get = |name: &str| {
            got.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_str().unwrap_or("").to_string())
        };
        assert_eq!(get("anthropic-ratelimit-requests-remaining").as_deref(), Some("49"));
        assert_eq!(get("anthropic-ratelimit-input-tokens-remaining").as_deref(), Some("78000"));
        assert_eq!(get("anthropic-ratelimit-tokens-limit").as_deref(), Some("8000"));
        assert_eq!(get("anthropic-ratelimit-tokens-remaining").as_deref(), Some("7000"));
        assert_eq!(
            get("anthropic-ratelimit-requests-reset").as_deref(),
            Some("1970-01-01T00:00:01Z")
        );
        assert_eq!(got.len(), 12);
        let openai = headers(Dialect::OpenAiChat, &levels, epoch);
        let names: Vec<&str> = openai.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens"
            ]
        );
        assert_eq!(openai[4].1, "7999", "OpenAI's counts are exact");
    }
}
