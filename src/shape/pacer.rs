//! The timing rule (`docs/architecture.md`, "Timing") as plain arithmetic: given
//! when a record arrived from its source and what it is, when may it go out?
//!
//! All release times are absolute instants, and each is computed from the
//! previous *release time*, not from when the previous record was actually
//! written, so pacing never drifts over a long stream, however late a wake-up.
//! A jittered delay is drawn each time it applies (the interval once per
//! token) from the request's own random stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::delay::Delay;
use super::later;
use crate::framing::EventKind;

/// The delays of one profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timing {
    /// Added to the source's own time to its first content event.
    pub first_token_delay: Delay,
    /// Spacing between consecutive content events.
    pub token_interval: Delay,
    /// Extra time before an event that opens a tool call.
    pub tool_call_delay: Delay,
    /// What a late release does to the tokens after it.
    pub overload: Overload,
    /// Spacing after a thinking token (`[thinking] token_interval`);
    /// `None` paces thinking as text, by `token_interval`.
    pub thinking_interval: Option<Delay>,
    /// Which output `first_token_delay` is held before.
    pub first_token_delay_before: FirstOutput,
}

impl Timing {
    /// The spacing after a thinking token: `thinking_interval`, or
    /// `token_interval` when it is not set.
    pub fn thinking_pace(&self) -> Delay {
        self.thinking_interval.unwrap_or(self.token_interval)
    }
}

/// The output `first_token_delay` is held before (`[thinking]
/// first_token_delay_before`; docs/timing.md, "Thinking").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstOutput {
    /// The first output event of any kind, thinking included: the delay is
    /// the model's time to its first token, and thinking comes after it.
    #[default]
    Thinking,
    /// The first visible text or tool call: thinking streams at its own pace
    /// from the start, and the delay is added after it.
    Text,
}

impl FirstOutput {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thinking => "thinking",
            Self::Text => "text",
        }
    }
}

/// What a token released late (the machine could not keep up, or the
/// client read slowly) does to the tokens after it (`overload`, per
/// profile; docs/timing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overload {
    /// Keep the schedule: each deadline counts from the previous deadline,
    /// so the tokens after a late one go out at once until the stream is back
    /// on time. The total time stays as configured, and the gaps just after a
    /// stall are shorter than `token_interval`.
    #[default]
    CatchUp,
    /// Stretch the stream: each deadline counts from when the previous token
    /// actually went out, so no gap is shorter than `token_interval` and the
    /// stream ends late by as much as it was held up.
    Stretch,
}

impl Overload {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatchUp => "catch_up",
            Self::Stretch => "stretch",
        }
    }
}

/// Delays that grow with load (`[capacity] factor_at_capacity`,
/// docs/capacity.md): each delay is multiplied, when it is drawn, by a
/// factor that rises linearly with the requests in service, from 1 with one
/// to `at_capacity` with `limit`.
#[derive(Debug, Clone)]
pub(crate) struct Slowdown {
    /// Requests in service now (the route's capacity pool keeps it).
    pub(crate) in_service: Arc<AtomicU32>,
    /// `max_concurrent`.
    pub(crate) limit: u32,
    /// `factor_at_capacity`.
    pub(crate) at_capacity: f64,
}

impl Slowdown {
    /// The factor now: `1 + (at_capacity - 1) * (n - 1) / (limit - 1)` for
    /// `n` requests in service (1 to `limit`); 1 when `limit` is 1.
    pub(crate) fn factor(&self) -> f64 {
        if self.limit <= 1 {
            return 1.0;
        }
        let n = self.in_service.load(Ordering::Relaxed).clamp(1, self.limit);
        1.0 + (self.at_capacity - 1.0) * f64::from(n - 1) / f64::from(self.limit - 1)
    }

    /// `delay` times the factor now, at most [`super::MAX_DURATION`].
    fn scale(&self, delay: Duration) -> Duration {
        let factor = self.factor();
        if factor <= 1.0 {
            return delay;
        }
        Duration::try_from_secs_f64(delay.as_secs_f64() * factor)
            .map_or(super::MAX_DURATION, |scaled| scaled.min(super::MAX_DURATION))
    }
}

/// Computes release instants for a request's records, in order.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    timing: Timing,
    rng: ChaCha8Rng,
    /// Delays that grow with the route's load, when `[capacity]` says so.
    slowdown: Option<Slowdown>,
    /// Prefill: added to the first-token delay (`[capacity] prefill_per_1k_tokens`).
    prefill: Duration,
    /// The last model output released, and whether it was thinking (the
    /// gap after it is then the thinking interval).
    last_content: Option<(Instant, EventKind)>,
    last_release: Option<Instant>,
    /// Whether `first_token_delay` has been added.
    first_delay_added: bool,
    /// Thinking the source does not stream (an OpenAI Chat reasoning model):
    /// its time, added before the first visible output.
    unseen_thinking: Duration,
}

impl Pacer {
    /// A pacer for one request; jittered delays are drawn from `rng`.
    pub fn new(timing: Timing, rng: ChaCha8Rng) -> Self {
        Self {
            timing,
            rng,
            last_content: None,
            last_release: None,
            first_delay_added: false,
            unseen_thinking: Duration::ZERO,
            slowdown: None,
            prefill: Duration::ZERO,
        }
    }

    /// Its delays grow with load (`slowdown`), and its first token waits
    /// `prefill` more.
    pub(crate) fn under_load(mut self, slowdown: Option<Slowdown>, prefill: Duration) -> Self {
        self.slowdown = slowdown;
        self.prefill = prefill;
        self
    }

    /// `delay` scaled by the load now, if delays grow with load.
    fn loaded(&self, delay: Duration) -> Duration {
        match &self.slowdown {
            Some(slowdown) => slowdown.scale(delay),
            None => delay,
        }
    }

    /// The source thinks `tokens` tokens it does not send: they take the time
    /// streamed thinking would (`[thinking] token_interval` each), before the
    /// first visible output.
    pub(crate) fn with_unseen_thinking(mut self, tokens: u32) -> Self {
        let interval = self.timing.thinking_pace();
        self.unseen_thinking = interval.sum(tokens, &mut self.rng);
        self
    }

    /// When the record that arrived at `arrival` may be released.
    ///
    /// - model output (thinking, text, tool start): `arrival` for the first
    ///   one, then `max(arrival, previous output's release + the interval
    ///   after it)`, where the interval after a thinking token is
    ///   `[thinking] token_interval` and after any other `token_interval`;
    ///   plus `first_token_delay` on the first output, or on the first
    ///   visible one when `first_token_delay_before = "text"`;
    ///   plus unseen thinking on the first visible one;
    /// - tool start: plus `tool_call_delay`;
    /// - other: at arrival, but never before a record released earlier, so
    ///   order is kept and nothing overtakes the content before it.
    ///
    /// Without thinking this is the rule of `docs/timing.md`: the first token
    /// at `arrival + first_token_delay`, each next one `token_interval` on.
    pub(crate) fn release_at(&mut self, arrival: Instant, kind: EventKind) -> Instant {
        let wanted = match kind {
            EventKind::Other => arrival,
            EventKind::Content | EventKind::Thinking | EventKind::ToolStart => {
                let mut paced = match self.last_content {
                    None => arrival,
                    Some((previous, previous_kind)) => {
                        let interval = match previous_kind {
                            EventKind::Thinking => self.timing.thinking_pace(),
                            _ => self.timing.token_interval,
                        };
                        let interval = interval.sample(&mut self.rng);
                        arrival.max(later(previous, self.loaded(interval)))
                    }
                };
                let delay_here = kind.is_visible()
                    || self.timing.first_token_delay_before == FirstOutput::Thinking;
                if !self.first_delay_added && delay_here {
                    let delay = self.timing.first_token_delay.sample(&mut self.rng);
                    let delay = delay.saturating_add(std::mem::take(&mut self.prefill));
                    paced = later(paced, self.loaded(delay));
                    self.first_delay_added = true;
                }
                if kind.is_visible() {
                    let unseen = std::mem::take(&mut self.unseen_thinking);
                    paced = later(paced, self.loaded(unseen));
                }
                if kind == EventKind::ToolStart {
                    let delay = self.timing.tool_call_delay.sample(&mut self.rng);
                    later(paced, self.loaded(delay))
                } else {
                    paced
                }
            }
        };
        let at = self.last_release.map_or(wanted, |last| wanted.max(last));
        if kind.is_content() {
            self.last_content = Some((at, kind));
        }
        self.last_release = Some(at);
        at
    }

    /// Whether the shaper must say when each token actually went out.
    pub(crate) fn stretches(&self) -> bool {
        self.timing.overload == Overload::Stretch
    }

    /// A content record scheduled earlier actually went out at `actual`:
    /// with [`Overload::Stretch`], the next token's interval counts from there.
    pub(crate) fn released(&mut self, actual: Instant) {
        if self.stretches() {
            self.last_content =
                self.last_content.map(|(scheduled, kind)| (scheduled.max(actual), kind));
            self.last_release = self.last_release.map(|scheduled| scheduled.max(actual));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::shape::request_rng;
    use EventKind::{Content, Other, Thinking, ToolStart};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timing(first: u64, interval: u64, tool: u64) -> Timing {
        Timing {
            first_token_delay: ms(first).into(),
            token_interval: ms(interval).into(),
            tool_call_delay: ms(tool).into(),
            overload: Overload::CatchUp,
            ..Timing::default()
        }
    }

    /// Offsets (ms from `t0`) at which each (arrival offset, kind) is released.
    fn schedule(timing: Timing, records: &[(u64, EventKind)]) -> Vec<u64> {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(timing, request_rng(0, 0));
        records
            .iter()
            .map(|&(arrival, kind)| {
                let at = pacer.release_at(t0 + ms(arrival), kind);
                u64::try_from((at - t0).as_millis()).unwrap()
            })
            .collect()
    }

    #[test]
    fn an_instant_source_gets_exactly_the_configured_schedule() {
        let records =
            [(0, Other), (0, Other), (0, Content), (0, Content), (0, Content), (0, Other)];
        assert_eq!(schedule(timing(100, 20, 500), &records), [0, 0, 100, 120, 140, 140]);
    }

    #[test]
    fn a_tool_start_waits_the_tool_call_delay_on_top() {
        // Tool call as the first output, then its argument fragments.
        let records = [(0, Other), (0, ToolStart), (0, Content), (0, Content)];
        assert_eq!(schedule(timing(100, 20, 500), &records), [0, 600, 620, 640]);
        // Tool call after text.
        let records = [(0, Content), (0, Content), (0, Other), (0, ToolStart), (0, Content)];
        assert_eq!(schedule(timing(100, 20, 500), &records), [100, 120, 120, 640, 660]);
    }

    #[test]
    fn a_slow_source_is_never_made_faster_and_the_delay_adds_to_its_own() {
        // Upstream takes 300 ms to its first token, then sends one every 50 ms.
        // The first goes out 100 ms late; the next follow at the 20 ms interval
        // until they have caught up with the upstream's own pace.
        let records = [
            (10, Other),
            (300, Content),
            (350, Content),
            (400, Content),
            (450, Content),
            (500, Content),
        ];
        assert_eq!(schedule(timing(100, 20, 0), &records), [10, 400, 420, 440, 460, 500]);
    }

    #[test]
    fn a_burst_from_the_source_is_spread_to_the_interval() {
        let records = [(0, Content), (1, Content), (2, Content), (200, Content)];
        assert_eq!(schedule(timing(0, 50, 0), &records), [0, 50, 100, 200]);
    }

    #[test]
    fn other_events_never_overtake_the_content_before_them() {
        let records = [(0, Content), (5, Other), (5, Content), (6, Other)];
        assert_eq!(schedule(timing(100, 20, 0), &records), [100, 100, 120, 120]);
    }

    #[test]
    fn jittered_intervals_are_drawn_per_token_and_replay() {
        let jittered = Timing {
            first_token_delay: Delay::Uniform { min: ms(50), max: ms(150) },
            token_interval: Delay::Uniform { min: ms(10), max: ms(30) },
            tool_call_delay: ms(0).into(),
            overload: Overload::CatchUp,
            ..Timing::default()
        };
        let records: Vec<_> = (0..200).map(|_| (0, Content)).collect();
        let first = schedule(jittered, &records);
        assert_eq!(first, schedule(jittered, &records), "same stream, same draws");
        assert!((50..=150).contains(&first[0]));
        let gaps: Vec<u64> = first.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (10..=30).contains(g)), "{gaps:?}");
        assert!(gaps.iter().any(|&g| g != gaps[0]), "the interval varies per token");
    }

    fn thinking_timing(before: FirstOutput) -> Timing {
        Timing {
            thinking_interval: Some(ms(5).into()),
            first_token_delay_before: before,
            ..timing(100, 20, 500)
        }
    }

    #[test]
    fn thinking_tokens_are_paced_by_their_own_interval_and_text_follows_exactly() {
        // Three thinking tokens, a signature, then text: the first text token
        // is at first_token_delay + 3 × the thinking interval.
        let records = [
            (0, Other),
            (0, Thinking),
            (0, Thinking),
            (0, Thinking),
            (0, Other),
            (0, Content),
            (0, Content),
        ];
        let before_thinking = schedule(thinking_timing(FirstOutput::Thinking), &records);
        assert_eq!(before_thinking, [0, 100, 105, 110, 110, 115, 135]);
        // The delay before the first text: thinking streams from the start.
        let before_text = schedule(thinking_timing(FirstOutput::Text), &records);
        assert_eq!(before_text, [0, 0, 5, 10, 10, 115, 135]);
        // Without a thinking interval of its own, thinking is paced as text.
        let as_text = Timing { thinking_interval: None, ..thinking_timing(FirstOutput::Thinking) };
        assert_eq!(schedule(as_text, &records), [0, 100, 120, 140, 140, 160, 180]);
    }

    #[test]
    fn unseen_thinking_takes_its_time_before_the_first_visible_output() {
        let t0 = Instant::now();
        let timing = thinking_timing(FirstOutput::Thinking);
        let mut pacer = Pacer::new(timing, request_rng(0, 0)).with_unseen_thinking(40);
        let offsets: Vec<u128> = [Other, Content, Content, ToolStart]
            .into_iter()
            .map(|kind| (pacer.release_at(t0, kind) - t0).as_millis())
            .collect();
        // 100 ms to the first token, 40 × 5 ms of thinking, then the text's pace.
        assert_eq!(offsets, [0, 300, 320, 840]);
    }

    #[test]
    fn pacing_does_not_drift_over_a_long_stream() {
        let records: Vec<_> = (0..10_000).map(|_| (0, Content)).collect();
        let released = schedule(timing(100, 20, 0), &records);
        assert_eq!(released.last(), Some(&(100 + 20 * 9_999)));
    }
}
