//! The one place where time and faults are applied, whatever the source.
//!
//! [`plan`] decides once per request, at arrival, whether a fault fires (pure,
//! seeded). [`Pacer`] is the timing rule as arithmetic on instants, and
//! [`Shaper`] is the only `Stream` on the data path that waits: it releases the
//! source's records on the pacer's schedule. The mock and the proxy both feed
//! it a `Stream` of [`SseRecord`](crate::sse::SseRecord)s, so they behave the
//! same for the same config.

pub mod delay;
pub mod pacer;
pub mod plan;
pub mod shaper;
pub mod timer;

pub use delay::Delay;
pub use pacer::{Pacer, Timing};
pub use plan::{Fault, FaultPlan, HttpFault, RequestClock, Schedule, WeightedFault};
pub use shaper::{Arrival, InjectedReset, Shaper, StreamAction, StreamFault};
pub use timer::Gate;
#[cfg(target_os = "linux")]
pub use timer::PreciseTimer;
