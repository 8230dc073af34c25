//! When a response head goes out: the last of the waits, after the
//! [`Shaper`](super::Shaper)'s. The exchange (`handler::exchange`) holds a head
//! until its release time ([`hold_until`]: a `slow_head` fault, the proxy's
//! delay before a non-SSE body), then, with [`HeadTiming::FirstToken`], until
//! the first token is released ([`gather_first_token`]), so that a client that
//! measures time to first byte sees the first-token delay.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use tracing::debug;

use crate::framing::Record;
use crate::response::BoxError;

/// When the response head of a stream is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadTiming {
    /// Held until the first content event is released, so a client that sees
    /// only time to first byte (k6's `timings.waiting`) measures the
    /// first-token delay. The default.
    FirstToken,
    /// Held until the first visible token (text or a tool call), thinking
    /// held with it: a client that sees only time to first byte measures
    /// the time to first text of a reasoning model (docs/timing.md,
    /// "Thinking"). Without thinking, the same as `FirstToken`.
    FirstText,
    /// Sent at once, with the non-content preamble (`message_start`).
    Immediate,
}

/// The most a head held for the first text gathers of thinking before it
/// goes out anyway (docs/reliability.md): 100,000 thinking tokens would be
/// some 12 MB of events.
const MAX_HELD_THINKING: usize = 1024 * 1024;

/// How much a held head may gather before its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadHold {
    /// Bytes of events held at most.
    pub(crate) bytes: usize,
    /// Time held at most, from when the source's head was ready; `None`: no limit.
    pub(crate) time: Option<Duration>,
}

impl HeadHold {
    /// The mock's: its own events before the first token are a few hundred
    /// bytes, and its first token comes exactly when configured.
    pub(crate) const MOCK: Self = Self { bytes: usize::MAX, time: None };

    /// An upstream's, from `[upstream] head_hold_bytes` and `head_hold_time`.
    pub(crate) fn upstream(bytes: usize, time: Duration) -> Self {
        Self { bytes, time: Some(time) }
    }
}

/// Waits until a head may go out, or until `stop` (shutdown) comes first.
pub(crate) async fn hold_until(release: Instant, stop: impl Future<Output = ()>) {
    // Already due (no first-token delay, or it passed while the upstream
    // answered): no timer to set.
    if release <= Instant::now() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep_until(release) => {}
        () = stop => {}
    }
}

/// The records released before the head goes out: with
/// [`HeadTiming::FirstToken`], everything up to and including the first
/// content event (or the stream's end or error); with
/// [`HeadTiming::FirstText`], up to the first visible one, at most
/// [`MAX_HELD_THINKING`] bytes; with [`HeadTiming::Immediate`], nothing.
///
/// What is held meanwhile is bounded by `hold`: past its bytes or its time
/// the head goes out with what was held, and the rest of the stream follows
/// as it is released (an upstream that sends only pings, or events of a kind
/// sluice does not know, is then passed through, not buffered).
pub(crate) async fn gather_first_token<S>(
    shaped: &mut S,
    timing: HeadTiming,
    hold: HeadHold,
    stop: impl Future<Output = ()>,
) -> Vec<Result<Record, BoxError>>
where
    S: Stream<Item = Result<Record, BoxError>> + Unpin,
{
    let mut released = Vec::new();
    let bytes = match timing {
        HeadTiming::Immediate => return released,
        HeadTiming::FirstToken => hold.bytes,
        HeadTiming::FirstText => hold.bytes.min(MAX_HELD_THINKING),
    };
    let deadline = hold.time.map(|time| super::later(Instant::now(), time));
    let mut held = 0usize;
    let mut stop = std::pin::pin!(stop);
    // One timer for the whole hold, not one per record: each would be put in
    // tokio's timer wheel and taken out again.
    let mut timer = std::pin::pin!(deadline.map(tokio::time::sleep_until));
    loop {
        let timer_fired = async {
            match timer.as_mut().as_pin_mut() {
                Some(timer) => timer.await,
                None => std::future::pending().await,
            }
        };
        // A record that is ready goes first, as it did inside a timeout.
        let next = tokio::select! {
            biased;
            next = shaped.next() => next,
            () = timer_fired => {
                debug!(?hold.time, "no first token yet: head sent without it");
                break;
            }
            // Shutdown: the head goes out with what was gathered.
            () = &mut stop => break,
        };
        let Some(item) = next else { break };
        let done = item.as_ref().map_or(true, |record| match timing {
            HeadTiming::FirstText => record.kind.is_visible(),
            HeadTiming::FirstToken | HeadTiming::Immediate => record.kind.is_content(),
        });
        held = held.saturating_add(item.as_ref().map_or(0, |record| record.raw.len()));
        released.push(item);
        if done {
            break;
        }
        if held >= bytes {
            debug!(held, "no first token yet: head sent with what was held");
            break;
        }
    }
    released
}
