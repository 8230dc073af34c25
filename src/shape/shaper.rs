//! [`Shaper`]: the `Stream` that releases a source's records on the pacer's
//! schedule. The only thing on the data path that waits.
//!
//! It holds at most one record. While that record waits for its release time
//! the source is not polled, so a proxied upstream is slowed by backpressure
//! rather than buffered, and dropping the shaper (the client left) drops the
//! source at once. No task, no channel.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::pacer::Pacer;
use crate::sse::SseRecord;

/// When a record counts as having arrived from its source.
#[derive(Debug, Clone, Copy)]
pub enum Arrival {
    /// The source is instant (the mock): every record is taken to arrive at
    /// the request's arrival, so the configured schedule is exactly what the
    /// client sees, however long the source itself took.
    AtRequestStart(Instant),
    /// The source takes real time (an upstream): a record arrives when the
    /// shaper receives it.
    WhenReceived,
}

pin_project! {
    /// Releases records on `pacer`'s schedule.
    pub struct Shaper<S> {
        #[pin]
        source: S,
        #[pin]
        gate: Sleep,
        held: Option<SseRecord>,
        pacer: Pacer,
        arrival: Arrival,
    }
}

impl<S> Shaper<S> {
    /// Shapes `source` with `pacer`.
    pub fn new(source: S, pacer: Pacer, arrival: Arrival) -> Self {
        Self { source, gate: tokio::time::sleep_until(Instant::now()), held: None, pacer, arrival }
    }
}

impl<S, E> Stream for Shaper<S>
where
    S: Stream<Item = Result<SseRecord, E>>,
{
    type Item = Result<SseRecord, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if this.held.is_none() {
            let record = match ready!(this.source.as_mut().poll_next(cx)) {
                Some(Ok(record)) => record,
                other => return Poll::Ready(other),
            };
            let now = Instant::now();
            let arrived = match *this.arrival {
                Arrival::AtRequestStart(start) => start,
                Arrival::WhenReceived => now,
            };
            let at = this.pacer.release_at(arrived, record.kind);
            if at <= now {
                // Due already: skip the timer entirely.
                return Poll::Ready(Some(Ok(record)));
            }
            this.gate.as_mut().reset(at);
            *this.held = Some(record);
        }
        ready!(this.gate.as_mut().poll(cx));
        Poll::Ready(this.held.take().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::{StreamExt, stream};

    use super::*;
    use crate::shape::Timing;
    use crate::sse::EventKind::{self, Content, Other, ToolStart};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(kind: EventKind, text: &'static str) -> Result<SseRecord, Infallible> {
        Ok(SseRecord { raw: Bytes::from_static(text.as_bytes()), kind })
    }

    fn seed_timing() -> Timing {
        Timing { first_token_delay: ms(100), token_interval: ms(20), tool_call_delay: ms(500) }
    }

    async fn released_at<S>(shaper: Shaper<S>, t0: Instant) -> Vec<(Bytes, Duration)>
    where
        S: Stream<Item = Result<SseRecord, Infallible>>,
    {
        shaper.map(|r| (r.unwrap().raw, t0.elapsed())).collect().await
    }

    fn expected(rows: &[(&'static str, u64)]) -> Vec<(Bytes, Duration)> {
        rows.iter().map(|&(text, at)| (Bytes::from_static(text.as_bytes()), ms(at))).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_instant_source_is_released_on_the_exact_schedule() {
        let t0 = Instant::now();
        let source = stream::iter([
            record(Other, "start"),
            record(Content, "a"),
            record(Other, "ping"),
            record(Content, "b"),
            record(Content, "c"),
            record(Other, "stop"),
        ]);
        let shaper = Shaper::new(source, Pacer::new(seed_timing()), Arrival::AtRequestStart(t0));
        assert_eq!(
            released_at(shaper, t0).await,
            expected(&[
                ("start", 0),
                ("a", 100),
                ("ping", 100),
                ("b", 120),
                ("c", 140),
                ("stop", 140)
            ])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_tool_call_waits_first_token_plus_tool_call_delay() {
        let t0 = Instant::now();
        let source = stream::iter([
            record(Other, "start"),
            record(ToolStart, "tool"),
            record(Content, "{\"a\""),
            record(Content, ":1}"),
            record(Other, "stop"),
        ]);
        let shaper = Shaper::new(source, Pacer::new(seed_timing()), Arrival::AtRequestStart(t0));
        assert_eq!(
            released_at(shaper, t0).await,
            expected(&[("start", 0), ("tool", 600), ("{\"a\"", 620), (":1}", 640), ("stop", 640)])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_started_earlier_is_not_delayed_twice() {
        // The handler took 30 ms (say, reading the body) before the shaper ran:
        // the first token still goes out 100 ms after the request arrived.
        let t0 = Instant::now();
        tokio::time::advance(ms(30)).await;
        let source = stream::iter([record(Content, "a"), record(Content, "b")]);
        let shaper = Shaper::new(source, Pacer::new(seed_timing()), Arrival::AtRequestStart(t0));
        assert_eq!(released_at(shaper, t0).await, expected(&[("a", 100), ("b", 120)]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_source_adds_the_delay_to_its_own_timing() {
        let t0 = Instant::now();
        // The source yields a token at 50 ms and one at 55 ms.
        let source = stream::iter([(50, "a"), (5, "b")]).then(|(gap, text)| async move {
            tokio::time::sleep(ms(gap)).await;
            record(Content, text)
        });
        let shaper = Shaper::new(source, Pacer::new(seed_timing()), Arrival::WhenReceived);
        assert_eq!(released_at(shaper, t0).await, expected(&[("a", 150), ("b", 170)]));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_from_the_source_pass_through() {
        let source = stream::iter([
            Ok(SseRecord { raw: Bytes::from_static(b"a"), kind: Content }),
            Err("upstream reset"),
        ]);
        let t0 = Instant::now();
        let items: Vec<_> =
            Shaper::new(source, Pacer::new(seed_timing()), Arrival::AtRequestStart(t0))
                .collect()
                .await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Err("upstream reset"));
        assert_eq!(t0.elapsed(), ms(100));
    }
}
