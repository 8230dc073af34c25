//! The one place where time and faults are applied, whatever the source.
//!
//! [`plan`] decides once per request, at arrival, whether a fault fires (pure,
//! seeded). `Pacer` is the timing rule as arithmetic on instants, and
//! `Shaper` is the only `Stream` on the data path that waits: it releases the
//! source's records on the pacer's schedule. The mock and the proxy both feed
//! it a `Stream` of `SseRecord`s, so they behave the
//! same for the same config.

pub mod delay;
pub(crate) mod head;
pub(crate) mod pacer;
pub mod plan;
pub(crate) mod shaper;
pub(crate) mod timer;

pub use delay::Delay;
pub(crate) use pacer::Pacer;
pub use pacer::{Overload, Timing};
pub use plan::{Fault, HttpFault, Schedule, WeightedFault};
pub(crate) use plan::{FaultPlan, RequestClock};
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
