//! Parsers for the values a knob can take, shared by the config file, the
//! environment and the command line so that all three accept the same forms
//! and explain a bad value the same way. Each returns the accepted form as its
//! error, for the caller to place (file:line:column, variable or flag).

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// The longest duration any knob, header or admin call may set: a week.
/// Defined beside the arithmetic it keeps from overflowing (`shape`).
pub use crate::shape::MAX_DURATION;

/// What a duration may look like, for error messages.
pub(crate) use crate::shape::DURATION_FORM;
/// What a duration from the environment may look like (the seed's form).
pub(crate) const ENV_DURATION_FORM: &str = "milliseconds such as 100, or a duration such as \"100ms\" \
     or \"2s\", at most 7 days (\"168h\")";
/// What an error rate may look like.
pub(crate) const RATE_FORM: &str = "a fraction from 0 to 1, such as 0.005 for 0.5 %";
/// What an error rate from the environment or a flag may look like.
pub(crate) const RATE_TEXT_FORM: &str =
    "a fraction from 0 to 1 such as 0.005, or a percentage such as 0.5%";
/// What a listen address may look like.
pub(crate) const LISTEN_FORM: &str = "an IP address and port such as \"0.0.0.0:3456\" or \"127.0.0.1:8080\" (port 0 picks a free port)";
/// What a byte size may look like.
pub(crate) const SIZE_FORM: &str = "a size such as \"32MiB\", \"512KiB\" or a number of bytes";

/// What an upstream URL may look like.
pub(crate) const URL_FORM: &str =
    "an http:// or https:// URL such as \"https://api.anthropic.com\" or \"http://127.0.0.1:3456\"";

/// An upstream base URL: http or https, a host, an optional path prefix, no query.
pub fn upstream_url(text: &str) -> Result<hyper::Uri, &'static str> {
    let uri: hyper::Uri = text.trim().parse().map_err(|_| URL_FORM)?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.authority().is_none() || uri.query().is_some() {
        return Err(URL_FORM);
    }
    Ok(uri)
}

pub(crate) const EPOCH_FORM: &str =
    "an RFC 3339 UTC time such as \"2026-12-01T10:00:00Z\" (fractions of a second allowed)";

/// An RFC 3339 instant, `"2026-12-01T10:00:00Z"`: what fault windows count from.
///
/// # Errors
/// The accepted form, when `text` is not one.
pub fn epoch(text: &str) -> Result<std::time::SystemTime, &'static str> {
    humantime::parse_rfc3339_weak(text.trim()).map_err(|_| EPOCH_FORM)
}

/// What a fleet store may look like.
pub(crate) const STORE_FORM: &str =
    "a Redis URL such as \"redis://sluice-redis:6379\" or \"redis://:password@host:6379/0\"";

/// A fleet's store: a `redis://` URL the Redis client accepts.
///
/// # Errors
/// The accepted form, when `text` is not one.
pub fn store_url(text: &str) -> Result<super::StoreUrl, &'static str> {
    let text = text.trim();
    if !text.starts_with("redis://") || text.len() > 2048 {
        return Err(STORE_FORM);
    }
    redis::Client::open(text).map_err(|_| STORE_FORM)?;
    Ok(super::StoreUrl::new(text.to_string()))
}

/// A fleet's namespace: 1 to 64 letters, digits, `-`, `_` or `.`.
///
/// # Errors
/// The accepted form, when `text` is not one.
pub fn namespace(text: &str) -> Result<String, &'static str> {
    let ok = (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(text.to_string()) } else { Err("1 to 64 letters, digits, '-', '_' or '.'") }
}

/// A replica's name: 1 to 253 visible ASCII characters (a pod name fits).
///
/// # Errors
/// The accepted form, when `text` is not one.
pub fn replica(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 253 && text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(text.to_string())
    } else {
        Err("a name of 1 to 253 visible ASCII characters, such as the pod name \"sluice-7d9f-x2k\"")
    }
}

/// A duration such as `"100ms"`, `"1.5s"` or `"2s"`, at most [`MAX_DURATION`]
/// (`crate::shape::parse_duration`, which the fault kinds read too).
pub fn duration(text: &str) -> Result<Duration, &'static str> {
    crate::shape::parse_duration(text)
}

/// A duration from the environment: a bare number is milliseconds, as in the
/// Node mock sluice replaces (`FIRST_TOKEN_DELAY=100`).
pub fn env_duration(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    if let Ok(millis) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(millis / 1000.0)
            .ok()
            .filter(|d| *d <= MAX_DURATION)
            .ok_or(ENV_DURATION_FORM);
    }
    duration(text).map_err(|_| ENV_DURATION_FORM)
}

/// An error rate as a number.
pub(crate) fn rate(value: f64) -> Result<f64, &'static str> {
    if value.is_finite() && (0.0..=1.0).contains(&value) { Ok(value) } else { Err(RATE_FORM) }
}

/// An error rate as text: `0.005` or `0.5%`.
pub fn rate_text(text: &str) -> Result<f64, &'static str> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    value.ok().and_then(|v| rate(v).ok()).ok_or(RATE_TEXT_FORM)
}

/// A listen address; `localhost` means 127.0.0.1.
pub fn listen(text: &str) -> Result<SocketAddr, &'static str> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| LISTEN_FORM)?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| LISTEN_FORM)
}

/// A byte size such as `"32MiB"` or `"1MB"`.
pub(crate) fn size(text: &str) -> Result<u64, &'static str> {
    bytesize::ByteSize::from_str(text.trim()).map(|size| size.as_u64()).map_err(|_| SIZE_FORM)
}

/// The most `[replay] ignore` patterns.
pub(crate) const MAX_IGNORE: usize = 32;

/// One `[replay] ignore` pattern, compiled: at most 1,000 characters and a
/// compiled program of at most 1 MiB, so that a config cannot make matching
/// slow or large.
///
/// # Errors
/// The pattern is too long, or not a regular expression `regex` accepts.
pub(crate) fn ignore_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.is_empty() || pattern.len() > 1000 {
        return Err("a pattern of 1 to 1,000 characters".to_string());
    }
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_take_units_and_decimals() {
        assert_eq!(duration("100ms"), Ok(ms(100)));
        assert_eq!(duration(" 2s "), Ok(ms(2000)));
        assert_eq!(duration("1m 30s"), Ok(ms(90_000)));
        assert_eq!(duration("1.5s"), Ok(ms(1500)));
        assert_eq!(duration("0ms"), Ok(ms(0)));
        for bad in ["", "100", "fast", "-1s", "1.5 parsecs", "1e400s"] {
            assert_eq!(duration(bad), Err(DURATION_FORM), "{bad:?}");
        }
    }

    #[test]
    fn durations_are_bounded_by_a_week() {
        assert_eq!(duration("168h"), Ok(MAX_DURATION));
        assert_eq!(duration("7days"), Ok(MAX_DURATION));
        for too_long in
            ["168h 1s", "169h", "18446744073709551615s", "1e30s", "99999999999999999999ms", "8d"]
        {
            assert_eq!(duration(too_long), Err(DURATION_FORM), "{too_long:?}");
        }
        assert!(DURATION_FORM.contains("at most 7 days"));
        assert_eq!(env_duration("604800000"), Ok(MAX_DURATION));
        for too_long in ["604800001", "1e30", "inf", "NaN", "18446744073709551615s"] {
            assert_eq!(env_duration(too_long), Err(ENV_DURATION_FORM), "{too_long:?}");
        }
    }

    #[test]
    fn environment_durations_are_milliseconds_when_bare() {
        assert_eq!(env_duration("100"), Ok(ms(100)));
        assert_eq!(env_duration("0.5"), Ok(Duration::from_micros(500)));
        assert_eq!(env_duration("2s"), Ok(ms(2000)));
        assert_eq!(env_duration("-5"), Err(ENV_DURATION_FORM));
        assert_eq!(env_duration("soon"), Err(ENV_DURATION_FORM));
    }

    #[test]
    fn rates_are_fractions_or_percentages() {
        assert_eq!(rate_text("0.005"), Ok(0.005));
        assert_eq!(rate_text("0.5%"), Ok(0.005));
        assert_eq!(rate_text("100%"), Ok(1.0));
        for bad in ["1.5", "-0.1", "NaN", "lots", "150%"] {
            assert_eq!(rate_text(bad), Err(RATE_TEXT_FORM), "{bad:?}");
        }
        assert_eq!(rate(f64::INFINITY), Err(RATE_FORM));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen("0.0.0.0:3456"), Ok(SocketAddr::from(([0, 0, 0, 0], 3456))));
        assert_eq!(listen("localhost:80"), Ok(SocketAddr::from(([127, 0, 0, 1], 80))));
        assert_eq!(listen("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert_eq!(listen("example.com:80"), Err(LISTEN_FORM));
        assert_eq!(listen("3456"), Err(LISTEN_FORM));
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(
            upstream_url("https://api.anthropic.com").unwrap().host(),
            Some("api.anthropic.com")
        );
        assert_eq!(upstream_url("http://127.0.0.1:3456/prefix").unwrap().path(), "/prefix");
        for bad in ["api.anthropic.com", "ftp://x", "https://", "http://x/?a=1", ""] {
            assert_eq!(upstream_url(bad), Err(URL_FORM), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("32MiB"), Ok(32 * 1024 * 1024));
        assert_eq!(size("1KB"), Ok(1000));
        assert_eq!(size("12"), Ok(12));
        assert_eq!(size("big"), Err(SIZE_FORM));
    }
}
