//! The one place where time and faults are applied, whatever the source.
//!
//! The fault plan (`fault/plan.rs`) decides once per request, at arrival,
//! whether a fault fires, from the request's own stream ([`rng`]). `Pacer`
//! is the timing rule as arithmetic on instants, and
//! `Shaper` is the only `Stream` on the data path that waits: it releases the
//! source's records on the pacer's schedule. The mock and the proxy both feed
//! it a `Stream` of `Record`s, so they behave the
//! same for the same config.

pub mod delay;
pub(crate) mod head;
pub mod length;
pub(crate) mod pacer;
pub mod rng;
pub(crate) mod shaper;
pub(crate) mod timer;

pub use delay::Delay;
pub use length::Length;
pub use pacer::{FirstOutput, Overload, Timing};
pub(crate) use pacer::{Pacer, Slowdown};
pub use rng::request_rng;
pub(crate) use shaper::{Arrival, InjectedReset, Shaper, StreamAction, StreamFault};
#[cfg(target_os = "linux")]
pub use timer::PreciseTimer;

use std::time::Duration;

use tokio::time::Instant;

/// The longest duration any knob, header or admin call may set: a week.
/// Every deadline sluice computes is an instant plus a sum of such bounded
/// durations, so none of its arithmetic can overflow (`docs/reliability.md`).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `at + by`, saturating instead of panicking. Every duration sluice accepts
/// is bounded ([`MAX_DURATION`]), so
/// this never saturates in practice; it keeps a deadline computed from any
/// input from being able to panic.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).or_else(|| at.checked_add(MAX_DURATION)).unwrap_or(at)
}

/// What a duration may look like.
pub(crate) const DURATION_FORM: &str =
    "a duration such as \"100ms\", \"1.5s\" or \"2s\", at most 7 days (\"168h\")";

/// `"100ms"`, `"2s"`, `"1m 30s"`, `"1.5s"` (humantime's forms, plus
/// decimals), at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    if let Ok(parsed) = humantime::parse_duration(text) {
        return bounded(parsed).ok_or(DURATION_FORM);
    }
    // humantime has no fractions; "1.5s" and "0.25ms" are too natural to refuse.
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or(DURATION_FORM)?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| DURATION_FORM)?;
    let unit_seconds = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(DURATION_FORM),
    };
    Duration::try_from_secs_f64(number * unit_seconds).ok().and_then(bounded).ok_or(DURATION_FORM)
}

/// `duration` if it is at most [`MAX_DURATION`].
fn bounded(duration: Duration) -> Option<Duration> {
    (duration <= MAX_DURATION).then_some(duration)
}
