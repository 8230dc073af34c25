//! `[timeline]`: a test's story as phases at offsets, each laying profile
//! knobs over the config, with ramps between numeric values
//! (docs/timeline.md).
//!
//! Everything here is pure: where a timeline stands at an offset
//! ([`Timeline::position_at`]), and what a config becomes at a position
//! ([`Timeline::apply`], called by the one layering function,
//! `layer::build`, between the flags and the runtime overrides). The clock
//! that moves the position, and the admin calls that start it, are in
//! the top-level `timeline` module (`src/timeline.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Capacity, Config, Profile, ProfilePatch, RateLimits};
use crate::shape::{Delay, Length};

/// The most phases a timeline holds.
pub const MAX_PHASES: usize = 100;

/// A ramp moves in at most this many steps...
pub const RAMP_STEPS: u32 = 50;

/// ... and at most one every this long.
pub const MIN_RAMP_STEP: Duration = Duration::from_millis(100);

/// `[timeline]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// When offset 0 is.
    pub start: TimelineStart,
    /// The phases, by `at`, strictly increasing.
    pub phases: Vec<Phase>,
}

/// When a timeline's offsets count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimelineStart {
    /// From `epoch` (shared by a fleet), or without one from sluice's start.
    #[default]
    Epoch,
    /// From `POST /timeline/start` (k6's `setup()`); the baseline until then.
    Admin,
}

impl TimelineStart {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epoch => "epoch",
            Self::Admin => "admin",
        }
    }
}

/// One `[[timeline.phases]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Sent in `x-sluice-phase`, the gauge's label and logs.
    pub name: String,
    /// When it begins, from the timeline's start.
    pub at: Duration,
    /// How long its numeric knobs take to move from the phase before's
    /// values to its own (0: at once).
    pub ramp: Duration,
    /// Knobs over the default profile (the file's, environment's and flags').
    pub patch: ProfilePatch,
    /// Knobs over named profiles (`[timeline.phases.profiles.NAME]`).
    pub profiles: BTreeMap<String, ProfilePatch>,
}

impl Phase {
    /// The length of one step of its ramp.
    pub fn step(&self) -> Duration {
        (self.ramp / RAMP_STEPS).max(MIN_RAMP_STEP)
    }

    /// The steps of its ramp: 0 without one.
    pub fn steps(&self) -> u32 {
        if self.ramp.is_zero() {
            return 0;
        }
        let step = self.step().as_nanos();
        u32::try_from(self.ramp.as_nanos().div_ceil(step)).unwrap_or(RAMP_STEPS).min(RAMP_STEPS)
    }

    /// How far along its ramp `step` is, from 0 to 1.
    fn progress(&self, step: u32) -> f64 {
        let steps = self.steps();
        if steps == 0 || step >= steps {
            return 1.0;
        }
        (self.step().as_secs_f64() * f64::from(step) / self.ramp.as_secs_f64()).min(1.0)
    }
}

/// Where a timeline stands: a phase, and the step of its ramp (its
/// `steps()` once the ramp is over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The phase's index.
    pub phase: usize,
    /// The step of its ramp.
    pub step: u32,
}

impl Timeline {
    /// Where the timeline stands `offset` after its start (`None` before its
    /// first phase), and the offset of its next change (`None` after the
    /// last phase's ramp).
    pub fn position_at(&self, offset: Duration) -> (Option<Position>, Option<Duration>) {
        let index = self.phases.iter().rposition(|phase| phase.at <= offset);
        let next_phase = |i: usize| self.phases.get(i).map(|phase| phase.at);
        let Some(index) = index else {
            return (None, next_phase(0));
        };
        let phase = &self.phases[index];
        let steps = phase.steps();
        let into = offset.saturating_sub(phase.at);
        let step_len = phase.step();
        let step = u32::try_from(into.as_nanos() / step_len.as_nanos()).unwrap_or(u32::MAX);
        if step >= steps {
            return (Some(Position { phase: index, step: steps }), next_phase(index + 1));
        }
        let next_step = phase.at.saturating_add(step_len.saturating_mul(step + 1));
        let next = match next_phase(index + 1) {
            Some(at) => next_step.min(at),
            None => next_step,
        };
        (Some(Position { phase: index, step }), Some(next))
    }

    /// The name of the phase at `position`.
    pub fn name(&self, position: Position) -> Option<&str> {
        self.phases.get(position.phase).map(|phase| phase.name.as_str())
    }

    /// Lays the phase at `position` over `config`'s profiles: its knobs
    /// over the default profile, and its `profiles.NAME` knobs over each
    /// named profile's. During a ramp, the default profile's numeric knobs
    /// lie between the phase before's values (the baseline's before the
    /// first phase) and this phase's ([`between`]); every other knob, and
    /// each named profile's own knobs, switch at the phase's start. A
    /// position the timeline does not have changes nothing.
    pub fn apply(&self, config: &mut Config, position: Position) {
        let Some(phase) = self.phases.get(position.phase) else {
            return;
        };
        let baseline = config.profile.clone();
        let target = phase.patch.over(&baseline);
        let progress = phase.progress(position.step);
        config.profile = if progress < 1.0 {
            let before = match position.phase.checked_sub(1).and_then(|i| self.phases.get(i)) {
                Some(previous) => previous.patch.over(&baseline),
                None => baseline,
            };
            between(&before, &target, progress)
        } else {
            target
        };
        for (name, patch) in &phase.profiles {
            let own = config.profiles.remove(name).unwrap_or_default();
            config.profiles.insert(name.clone(), patch.or(&own));
        }
    }
}

/// `to`, with its numeric knobs moved `progress` (0 to 1) of the way from
/// `from`'s: delays (of the same kind of distribution, a fixed delay
/// counting as any kind with its spread at 0), `error_rate`,
/// `tokens_per_response`, the thinking tokens, the tool-use shares, each
/// rate limit and each `[capacity]` figure set on both sides. Everything
/// else is `to`'s.
pub fn between(from: &Profile, to: &Profile, progress: f64) -> Profile {
    let t = progress.clamp(0.0, 1.0);
    let mut out = to.clone();
    let timing = &mut out.timing;
    timing.first_token_delay =
        delay_between(from.timing.first_token_delay, to.timing.first_token_delay, t);
    timing.token_interval = delay_between(from.timing.token_interval, to.timing.token_interval, t);
    timing.tool_call_delay =
        delay_between(from.timing.tool_call_delay, to.timing.tool_call_delay, t);
    if let (Some(a), Some(b)) = (from.timing.thinking_interval, to.timing.thinking_interval) {
        timing.thinking_interval = Some(delay_between(a, b, t));
    }
    out.error_rate = float_between(from.error_rate, to.error_rate, t);
    out.tokens_per_response = length_between(from.tokens_per_response, to.tokens_per_response, t);
    out.thinking.tokens = count_between(from.thinking.tokens, to.thinking.tokens, t);
    out.tool_use.probability = float_between(from.tool_use.probability, to.tool_use.probability, t);
    out.tool_use.web_search = float_between(from.tool_use.web_search, to.tool_use.web_search, t);
    out.rate_limits = limits_between(&from.rate_limits, &to.rate_limits, t);
    out.capacity = capacity_between(&from.capacity, &to.capacity, t);
    out
}

fn float_between(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

fn duration_between(a: Duration, b: Duration, t: f64) -> Duration {
    let seconds = float_between(a.as_secs_f64(), b.as_secs_f64(), t);
    // Between two accepted durations: never negative, never past the larger.
    Duration::try_from_secs_f64(seconds).unwrap_or(a.max(b)).min(a.max(b))
}

/// Rounded to the nearest whole number, between `a` and `b`.
fn count_between<T>(a: T, b: T, t: f64) -> T
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    let (a64, b64): (u64, u64) = (a.into(), b.into());
    // Both below 2^53 (at most a billion), so the f64 arithmetic is exact enough.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let value = float_between(a64 as f64, b64 as f64, t).round() as u64;
    T::try_from(value.clamp(a64.min(b64), a64.max(b64))).unwrap_or(b)
}

/// A reply length `t` of the way from `a` to `b`, as [`delay_between`]
/// moves a delay.
fn length_between(a: Length, b: Length, t: f64) -> Length {
    let c = |x: u32, y: u32| count_between(x, y, t);
    match (a, b) {
        (Length::Fixed(x), Length::Fixed(y)) => Length::Fixed(c(x, y)),
        (Length::Uniform { min: a0, max: a1 }, Length::Uniform { min: b0, max: b1 }) => {
            Length::Uniform { min: c(a0, b0), max: c(a1, b1) }
        }
        (Length::Fixed(x), Length::Uniform { min, max }) => {
            Length::Uniform { min: c(x, min), max: c(x, max) }
        }
        (Length::Uniform { min, max }, Length::Fixed(y)) => {
            Length::Uniform { min: c(min, y), max: c(max, y) }
        }
        (Length::Normal { mean: a0, stddev: a1 }, Length::Normal { mean: b0, stddev: b1 }) => {
            Length::Normal { mean: c(a0, b0), stddev: c(a1, b1) }
        }
        (Length::LogNormal { p50: a0, p99: a1 }, Length::LogNormal { p50: b0, p99: b1 }) => {
            Length::LogNormal { p50: c(a0, b0), p99: c(a1, b1) }
        }
        (Length::Fixed(x), Length::LogNormal { p50, p99 }) => {
            Length::LogNormal { p50: c(x, p50), p99: c(x, p99) }
        }
        (Length::LogNormal { p50, p99 }, Length::Fixed(y)) => {
            Length::LogNormal { p50: c(p50, y), p99: c(p99, y) }
        }
        (_, b) => b,
    }
}

fn option_between<T>(a: Option<T>, b: Option<T>, t: f64) -> Option<T>
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    match (a, b) {
        (Some(a), Some(b)) => Some(count_between(a, b, t)),
        _ => b,
    }
}

fn limits_between(a: &RateLimits, b: &RateLimits, t: f64) -> RateLimits {
    RateLimits {
        requests_per_minute: option_between(a.requests_per_minute, b.requests_per_minute, t),
        input_tokens_per_minute: option_between(
            a.input_tokens_per_minute,
            b.input_tokens_per_minute,
            t,
        ),
        output_tokens_per_minute: option_between(
            a.output_tokens_per_minute,
            b.output_tokens_per_minute,
            t,
        ),
        tokens_per_minute: option_between(a.tokens_per_minute, b.tokens_per_minute, t),
        burst: option_between(a.burst, b.burst, t),
        key: b.key,
    }
}

fn capacity_between(a: &Capacity, b: &Capacity, t: f64) -> Capacity {
    Capacity {
        max_concurrent: option_between(a.max_concurrent, b.max_concurrent, t),
        max_queue: option_between(a.max_queue, b.max_queue, t),
        queue_timeout: duration_between(a.queue_timeout, b.queue_timeout, t),
        factor_at_capacity: float_between(a.factor_at_capacity, b.factor_at_capacity, t),
        prefill_per_1k_tokens: duration_between(
            a.prefill_per_1k_tokens,
            b.prefill_per_1k_tokens,
            t,
        ),
        shed: b.shed,
    }
}

/// A delay `t` of the way from `a` to `b`: each parameter of the same kind
/// of distribution moves; a fixed delay is any kind with no spread; two
/// different kinds of distribution switch to `b` at once.
fn delay_between(a: Delay, b: Delay, t: f64) -> Delay {
    let d = |x: Duration, y: Duration| duration_between(x, y, t);
    match (a, b) {
        (Delay::Fixed(x), Delay::Fixed(y)) => Delay::Fixed(d(x, y)),
        (Delay::Uniform { min: a0, max: a1 }, Delay::Uniform { min: b0, max: b1 }) => {
            Delay::Uniform { min: d(a0, b0), max: d(a1, b1) }
        }
        (Delay::Fixed(x), Delay::Uniform { min, max }) => {
            Delay::Uniform { min: d(x, min), max: d(x, max) }
        }
        (Delay::Uniform { min, max }, Delay::Fixed(y)) => {
            Delay::Uniform { min: d(min, y), max: d(max, y) }
        }
        (Delay::Normal { mean: a0, stddev: a1 }, Delay::Normal { mean: b0, stddev: b1 }) => {
            Delay::Normal { mean: d(a0, b0), stddev: d(a1, b1) }
        }
        (Delay::Fixed(x), Delay::Normal { mean, stddev }) => {
            Delay::Normal { mean: d(x, mean), stddev: d(Duration::ZERO, stddev) }
        }
        (Delay::Normal { mean, stddev }, Delay::Fixed(y)) => {
            Delay::Normal { mean: d(mean, y), stddev: d(stddev, Duration::ZERO) }
        }
        (Delay::LogNormal { p50: a0, p99: a1 }, Delay::LogNormal { p50: b0, p99: b1 }) => {
            Delay::LogNormal { p50: d(a0, b0), p99: d(a1, b1) }
        }
        (Delay::Fixed(x), Delay::LogNormal { p50, p99 }) => {
            Delay::LogNormal { p50: d(x, p50), p99: d(x, p99) }
        }
        (Delay::LogNormal { p50, p99 }, Delay::Fixed(y)) => {
            Delay::LogNormal { p50: d(p50, y), p99: d(p99, y) }
        }
        (_, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Positions only move forward, the next change is after now, and
        /// nothing changes before it.
        #[test]
        fn positions_move_forward_and_hold_until_the_next_change(
            gaps in proptest::collection::vec((1u64..100_000, 0u64..100_000), 1..8),
            a in 0u64..1_000_000, b in 0u64..1_000_000,
        ) {
            let mut at = 0;
            let mut phases = Vec::new();
            for (index, (gap, ramp)) in gaps.into_iter().enumerate() {
                let ramp = ramp.min(gap.saturating_sub(1));
                phases.push(phase(&format!("p{index}"), at, ramp, Some(index as u64)));
                at += gap;
            }
            let timeline = Timeline { start: TimelineStart::Epoch, phases };
            let key = |p: Option<Position>| p.map(|p| (p.phase, p.step));
            let (early, late) = (a.min(b), a.max(b));
            let (first, next) = timeline.position_at(ms(early));
            prop_assert!(key(first) <= key(timeline.position_at(ms(late)).0));
            if let Some(next) = next {
                prop_assert!(next > ms(early));
                let just_before = next - Duration::from_nanos(1);
                prop_assert_eq!(timeline.position_at(just_before).0, first);
                prop_assert_ne!(timeline.position_at(next).0, first);
            }
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn phase(name: &str, at: u64, ramp: u64, first_token_delay: Option<u64>) -> Phase {
        Phase {
            name: name.to_string(),
            at: ms(at),
            ramp: ms(ramp),
            patch: ProfilePatch {
                first_token_delay: first_token_delay.map(|d| Delay::Fixed(ms(d))),
                ..ProfilePatch::default()
            },
            profiles: BTreeMap::new(),
        }
    }

    fn story() -> Timeline {
        Timeline {
            start: TimelineStart::Epoch,
            phases: vec![
                phase("baseline", 1000, 0, None),
                phase("degraded", 60_000, 30_000, Some(800)),
                phase("recovery", 150_000, 20_000, None),
            ],
        }
    }

    #[test]
    fn a_position_and_its_next_change_at_each_offset() {
        let timeline = story();
        let at = |offset| timeline.position_at(ms(offset));
        let position = |phase, step| Some(Position { phase, step });
        assert_eq!(at(0), (None, Some(ms(1000))));
        assert_eq!(at(1000), (position(0, 0), Some(ms(60_000))));
        // A 30 s ramp: 50 steps of 600 ms.
        assert_eq!(at(60_000), (position(1, 0), Some(ms(60_600))));
        assert_eq!(at(60_599), (position(1, 0), Some(ms(60_600))));
        assert_eq!(at(75_000), (position(1, 25), Some(ms(75_600))));
        assert_eq!(at(90_000), (position(1, 50), Some(ms(150_000))));
        // A 20 s ramp: 50 steps of 400 ms, then nothing changes again.
        assert_eq!(at(169_600), (position(2, 49), Some(ms(170_000))));
        assert_eq!(at(170_000), (position(2, 50), None));
        assert_eq!(at(u64::MAX / 2), (position(2, 50), None));
    }

    #[test]
    fn a_short_ramp_steps_every_100ms_and_a_step_never_passes_the_next_phase() {
        let short = phase("short", 0, 250, Some(10));
        assert_eq!((short.step(), short.steps()), (ms(100), 3));
        let timeline =
            Timeline { start: TimelineStart::Admin, phases: vec![short, phase("b", 250, 0, None)] };
        assert_eq!(
            timeline.position_at(ms(200)),
            (Some(Position { phase: 0, step: 2 }), Some(ms(250)))
        );
    }

    #[test]
    fn a_ramp_moves_the_default_profiles_numbers_and_switches_the_rest() {
        let mut config = Config::default();
        config.profile.error_rate = 0.0;
        let timeline = story();
        let first_token = |position| {
            let mut config = config.clone();
            timeline.apply(&mut config, position);
            config.profile.timing.first_token_delay
        };
        // Degrading over 30 s from 100 ms to 800 ms.
        assert_eq!(first_token(Position { phase: 1, step: 0 }), ms(100).into());
        assert_eq!(first_token(Position { phase: 1, step: 25 }), ms(450).into());
        assert_eq!(first_token(Position { phase: 1, step: 50 }), ms(800).into());
        // Recovering to the baseline's 100 ms.
        assert_eq!(first_token(Position { phase: 2, step: 10 }), ms(660).into());
        assert_eq!(first_token(Position { phase: 2, step: 50 }), ms(100).into());
        assert_eq!(first_token(Position { phase: 9, step: 0 }), ms(100).into(), "no such phase");
    }

    #[test]
    fn numbers_between_two_profiles_round_and_stay_within_their_ends() {
        let mut from = Config::default().profile;
        let mut to = from.clone();
        from.tokens_per_response = Length::Fixed(10);
        to.tokens_per_response = Length::Fixed(13);
        from.rate_limits.requests_per_minute = Some(600);
        to.rate_limits.requests_per_minute = Some(60);
        to.capacity =
            Capacity { max_concurrent: Some(10), factor_at_capacity: 3.0, ..Capacity::OFF };
        from.timing.token_interval = Delay::Uniform { min: ms(10), max: ms(30) };
        to.timing.token_interval = Delay::Fixed(ms(20));
        let half = between(&from, &to, 0.5);
        assert_eq!(half.tokens_per_response, Length::Fixed(12), "11.5 rounds up");
        assert_eq!(half.rate_limits.requests_per_minute, Some(330));
        // A limit set on one side only switches at once.
        assert_eq!(half.capacity.max_concurrent, Some(10));
        assert_eq!(half.capacity.factor_at_capacity, 2.0);
        assert_eq!(half.timing.token_interval, Delay::Uniform { min: ms(15), max: ms(25) });
        let clamped = between(&from, &to, 7.0).tokens_per_response;
        assert_eq!(clamped, Length::Fixed(13), "progress is clamped");
    }
}
