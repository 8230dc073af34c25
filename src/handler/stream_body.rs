//! The body of every shaped streaming response: the last stage of the
//! pipeline, between the [`Shaper`](crate::shape::Shaper) and hyper.
//!
//! One hand-written [`Body`] rather than a chain of stream combinators,
//! because it runs once per token on every open stream. On each poll it:
//! - takes every record the shaper has released by now and sends them as one
//!   frame (one chunk, one write), so events due at the same instant (the
//!   head and first token, a proxied burst, the end of a message) cost one
//!   syscall, not one each; a record of 1 KiB or more (a proxied stream's
//!   whole read, passed through) goes as a frame of its own, uncopied;
//! - records first-token and gap metrics as records go out;
//! - ends the stream at an event boundary, with the dialect's error event,
//!   once [`StreamEnd::end`] is called (shutdown's grace period is over);
//! - turns an [`InjectedReset`] into the connection's reset switch.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::control::ControlGuard;
use crate::app::{EndWatch, StreamEnd};
use crate::capacity::Slot;
use crate::framing::Record;
use crate::listener::connection::ResetHandle;
use crate::metrics::{Metrics, OpenStream};
use crate::ratelimit::Settlement;
use crate::report::{InFlight, Run};
use crate::response::BoxError;
use crate::shape::InjectedReset;

/// Records coalesced into one frame stop growing it past this many bytes.
const MAX_FRAME: usize = 16 * 1024;

/// A record this large goes out as a frame of its own, not copied into one
/// with others: a proxied stream passed through in whole reads (hyper
/// gathers the frames of one poll into one write anyway; the joining saves
/// chunk headers on small events, and a copy of a large one costs more).
const JOIN_BELOW: usize = 1024;

/// What a [`ShapedBody`] carries besides its records.
pub(crate) struct BodyParts {
    /// The connection's reset switch, for a `reset` fault.
    pub(crate) reset: Option<ResetHandle>,
    /// Held until the body ends (a header-driven fault in flight).
    pub(crate) guard: Option<ControlGuard>,
    /// Held until the body ends (`sluice_open_streams`, counted from admission).
    pub(crate) open: Option<OpenStream>,
    /// Settles the request's output tokens when the body ends (`[rate_limits]`).
    pub(crate) settlement: Option<Settlement>,
    /// Held until the body ends (a place in service under `[capacity]`).
    pub(crate) slot: Option<Slot>,
    /// The request's run: its tokens, and a stream its client left.
    pub(crate) run: Option<Arc<Run>>,
    /// Held until the body ends (the run's requests in flight).
    pub(crate) in_flight: Option<InFlight>,
    /// Where first-token delays and token gaps are recorded.
    pub(crate) metrics: Arc<Metrics>,
    /// The request's arrival, for the first-token delay.
    pub(crate) arrival: Instant,
    /// Given when shutdown's grace period is over.
    pub(crate) end: StreamEnd,
    /// Sent last when the stream is ended that way (the dialect's error event).
    pub(crate) farewell: Farewell,
}

type Records = Pin<Box<dyn Stream<Item = Result<Record, BoxError>> + Send>>;

/// Makes the event a stream ends with at shutdown: made only then, since
/// almost no stream needs it (an error body a stream was a measurable part
/// of the proxy's cost per request).
pub(crate) type Farewell = Box<dyn FnOnce() -> Record + Send>;

/// A shaped stream as an HTTP body; see the module docs.
pub(crate) struct ShapedBody {
    /// Released before the head went out (the head waited for them).
    released: VecDeque<Result<Record, BoxError>>,
    records: Records,
    /// An error that came after records already gathered into a frame.
    failed: Option<BoxError>,
    /// Whether the poll that follows such a frame has yielded once, so that
    /// hyper writes the frame out before the error aborts the connection.
    yielded_before_fail: bool,
    watch: EndWatch,
    farewell: Option<Farewell>,
    done: bool,
    last_token: Option<Instant>,
    /// Whether a visible token (not thinking) has gone out.
    text_seen: bool,
    arrival: Instant,
    metrics: Arc<Metrics>,
    reset: Option<ResetHandle>,
    _guard: Option<ControlGuard>,
    _open: Option<OpenStream>,
    _settlement: Option<Settlement>,
    _slot: Option<Slot>,
    run: Option<Arc<Run>>,
    _in_flight: Option<InFlight>,
    /// Tokens sent.
    tokens: u32,
}

impl Drop for ShapedBody {
    /// A body dropped before its end: its client left the stream.
    fn drop(&mut self) {
        if let (false, Some(run)) = (self.done, &self.run) {
            run.abandoned(self.tokens, self.arrival.elapsed());
        }
    }
}

impl std::fmt::Debug for BodyParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyParts").field("arrival", &self.arrival).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShapedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapedBody").field("done", &self.done).finish_non_exhaustive()
    }
}

impl ShapedBody {
    /// The body of `records`, after the ones `released` before the head.
    pub(crate) fn new(
        released: Vec<Result<Record, BoxError>>,
        records: Records,
        parts: BodyParts,
    ) -> Self {
        let BodyParts {
            reset,
            guard,
            open,
            settlement,
            slot,
            run,
            in_flight,
            metrics,
            arrival,
            end,
            farewell,
        } = parts;
        Self {
            released: released.into(),
            records,
            failed: None,
            yielded_before_fail: false,
            watch: EndWatch::new(end),
            farewell: Some(farewell),
            done: false,
            last_token: None,
            text_seen: false,
            arrival,
            metrics,
            reset,
            _guard: guard,
            _open: open,
            _settlement: settlement,
            _slot: slot,
            run,
            _in_flight: in_flight,
            tokens: 0,
        }
    }

    /// The next released record, if one is ready now.
    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Record, BoxError>>> {
        match self.released.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            None => self.records.as_mut().poll_next(cx),
        }
    }

    /// Records a token's metrics. `now` is read once per frame: the records
    /// of one frame go out together (and reading the clock is not free in a VM).
    fn count(&mut self, record: &Record, now: &mut Option<Instant>) {
        if record.kind.is_content() {
            let now = *now.get_or_insert_with(Instant::now);
            self.tokens = self.tokens.saturating_add(1);
            match self.last_token {
                None => {
                    let first = now.saturating_duration_since(self.arrival);
                    self.metrics.first_token(first);
                    if let Some(run) = &self.run {
                        run.token(Some(first), None);
                    }
                }
                Some(previous) => {
                    let gap = now.saturating_duration_since(previous);
                    self.metrics.token_gap(gap);
                    if let Some(run) = &self.run {
                        run.token(None, Some(gap));
                    }
                }
            }
            self.last_token = Some(now);
            if record.kind.is_visible() && !self.text_seen {
                self.text_seen = true;
                self.metrics.first_text(now.saturating_duration_since(self.arrival));
            }
        }
    }

    /// Shutdown: the stream ends here, on an event boundary, with its farewell.
    fn farewell(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        Poll::Ready(self.farewell.take().map(|farewell| Ok(Frame::data(farewell().raw))))
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        if error.is::<InjectedReset>()
            && let Some(reset) = &self.reset
        {
            reset.0.store(true, Ordering::Release);
        }
        Poll::Ready(Some(Err(error)))
    }
}

/// Joins the gathered events into one frame's bytes; a single event is sent
/// as it is, without a copy.
fn join(first: Bytes, rest: Vec<Bytes>) -> Bytes {
    if rest.is_empty() {
        return first;
    }
    let mut joined =
        BytesMut::with_capacity(first.len() + rest.iter().map(Bytes::len).sum::<usize>());
    joined.extend_from_slice(&first);
    rest.iter().for_each(|bytes| joined.extend_from_slice(bytes));
    joined.freeze()
}

impl Body for ShapedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.failed.is_some() {
            // hyper polls the body again right after buffering a frame; an
            // error then would drop that frame unsent (a stream that broke
            // before its first token would reach the client as an empty
            // reply). Yield once, so the frame is flushed, then fail.
            if !this.yielded_before_fail {
                this.yielded_before_fail = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if let Some(error) = this.failed.take() {
                return this.fail(error);
            }
        }
        if this.watch.is_ended() {
            return this.farewell();
        }
        let mut first: Option<Bytes> = None;
        let mut rest = Vec::new();
        let mut size = 0;
        let mut now = None;
        while size < MAX_FRAME {
            match this.poll_record(cx) {
                Poll::Ready(Some(Ok(record)))
                    if first.is_some() && record.raw.len() >= JOIN_BELOW =>
                {
                    // The next frame's, whole (it is counted then).
                    this.released.push_front(Ok(record));
                    break;
                }
                Poll::Ready(Some(Ok(record))) => {
                    let alone = record.raw.len() >= JOIN_BELOW;
                    this.count(&record, &mut now);
                    size += record.raw.len();
                    match first {
                        None => first = Some(record.raw),
                        Some(_) => rest.push(record.raw),
                    }
                    if alone {
                        break;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    if first.is_none() {
                        return this.fail(error);
                    }
                    this.failed = Some(error);
                    break;
                }
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => {
                    if first.is_none() && this.watch.poll_ended(cx) {
                        return this.farewell();
                    }
                    break;
                }
            }
        }
        match first {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(join(first, rest))))),
            None if this.done => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.failed.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    //! The body on tokio's paused clock: what goes out in which frame, when.

    use std::time::Duration;

    use futures_util::stream;
    use http_body_util::BodyExt as _;

    use super::*;
    use crate::framing::EventKind::{self, Content, Other};
    use crate::shape::request_rng;
    use crate::shape::{Arrival, Pacer, Shaper, StreamAction, StreamFault, Timing};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(kind: EventKind, text: &'static str) -> Result<Record, BoxError> {
        Ok(Record { raw: Bytes::from_static(text.as_bytes()), kind })
    }

    /// `start a b c stop end` shaped with 100 ms to the first token, 20 ms between.
    fn shaped(fault: Option<StreamFault>) -> Records {
        let source = stream::iter([
            record(Other, "start "),
            record(Content, "a "),
            record(Content, "b "),
            record(Content, "c "),
            record(Other, "stop "),
            record(Other, "end "),
        ]);
        let timing = Timing {
            first_token_delay: ms(100).into(),
            token_interval: ms(20).into(),
            ..Timing::default()
        };
        let pacer = Pacer::new(timing, request_rng(0, 0));
        Box::pin(
            Shaper::new(source, pacer, Arrival::AtRequestStart(Instant::now())).with_fault(fault),
        )
    }

    fn body(records: Records, end: &StreamEnd) -> (ShapedBody, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let parts = BodyParts {
            reset: Some(ResetHandle::default()),
            guard: None,
            open: Some(metrics.stream_opened()),
            settlement: None,
            slot: None,
            run: None,
            in_flight: None,
            metrics: Arc::clone(&metrics),
            arrival: Instant::now(),
            end: end.clone(),
            farewell: Box::new(|| Record { raw: Bytes::from_static(b"farewell"), kind: Other }),
        };
        (ShapedBody::new(Vec::new(), records, parts), metrics)
    }

    /// Each frame's text (or "ERR ...") and the ms it came at; then the ms the body ended.
    async fn frames(mut body: ShapedBody) -> (Vec<(String, u64)>, u64) {
        let t0 = Instant::now();
        let at = || u64::try_from(t0.elapsed().as_millis()).unwrap();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let text = match frame {
                Ok(frame) => String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap(),
                Err(error) => format!("ERR {error}"),
            };
            out.push((text, at()));
        }
        (out, at())
    }

    fn rows(rows: &[(&str, u64)]) -> Vec<(String, u64)> {
        rows.iter().map(|&(text, at)| (text.to_string(), at)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_due_together_go_out_as_one_frame() {
        let (body, _) = body(shaped(None), &StreamEnd::new());
        let (frames, ended) = frames(body).await;
        assert_eq!(frames, rows(&[("start ", 0), ("a ", 100), ("b ", 120), ("c stop end ", 140)]));
        assert_eq!(ended, 140);
    }

    /// A record of `JOIN_BELOW` bytes or more (a proxied stream's whole read)
    /// goes out as a frame of its own, the very bytes it came in, while the
    /// small ones around it are still joined.
    #[tokio::test(start_paused = true)]
    async fn a_large_record_goes_out_alone_and_uncopied() {
        let large = Bytes::from(vec![b'x'; JOIN_BELOW]);
        let source = stream::iter([
            record(Other, "start "),
            record(Content, "a "),
            Ok(Record { raw: large.clone(), kind: Other }),
            record(Other, "stop "),
            record(Other, "end "),
        ]);
        let pacer = Pacer::new(Timing::default(), request_rng(0, 0));
        let records = Shaper::new(source, pacer, Arrival::AtRequestStart(Instant::now()));
        let (mut body, _) = body(Box::pin(records), &StreamEnd::new());
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert_eq!(frames[0], "start a ");
        assert_eq!(frames[1].as_ptr(), large.as_ptr(), "the record's own bytes");
        assert_eq!(frames[2], "stop end ");
    }

    #[tokio::test(start_paused = true)]
    async fn the_events_released_before_the_head_lead_the_first_frame() {
        let parts = BodyParts {
            reset: None,
            guard: None,
            open: None,
            settlement: None,
            slot: None,
            run: None,
            in_flight: None,
            metrics: Arc::new(Metrics::new()),
            arrival: Instant::now(),
            end: StreamEnd::new(),
            farewell: Box::new(|| Record { raw: Bytes::new(), kind: Other }),
        };
        let released = vec![record(Other, "head "), record(Content, "first ")];
        let body = ShapedBody::new(released, shaped(None), parts);
        let (frames, _) = frames(body).await;
        assert_eq!(frames[0], ("head first start ".to_string(), 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_after_events_comes_after_them_and_a_reset_sets_the_switch() {
        let fault = StreamFault { after_tokens: 2, action: StreamAction::Reset };
        let (body, _) = body(shaped(Some(fault)), &StreamEnd::new());
        let reset = body.reset.clone().unwrap();
        let (frames, _) = frames(body).await;
        assert_eq!(
            frames,
            rows(&[
                ("start ", 0),
                ("a ", 100),
                ("b ", 120),
                ("ERR connection reset by sluice (injected fault)", 140)
            ])
        );
        assert!(reset.requested());
    }

    #[tokio::test(start_paused = true)]
    async fn ending_the_streams_sends_the_farewell_at_once_and_ends_them() {
        let end = StreamEnd::new();
        let (first, _) = body(shaped(None), &end);
        let (second, _) = body(shaped(None), &end);
        let ender = end.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ms(110)).await;
            ender.end();
        });
        let ((first, ended_first), (second, ended_second)) =
            tokio::join!(frames(first), frames(second));
        let expected = rows(&[("start ", 0), ("a ", 100), ("farewell", 110)]);
        assert_eq!((first, ended_first), (expected.clone(), 110));
        assert_eq!((second, ended_second), (expected, 110));
        assert_eq!(end.registered(), 0, "nothing stays registered");
    }

    #[tokio::test(start_paused = true)]
    async fn the_metrics_see_the_first_token_and_each_gap() {
        let (body, metrics) = body(shaped(None), &StreamEnd::new());
        frames(body).await;
        let text = metrics.encode();
        assert!(text.contains("sluice_first_token_delay_seconds_count 1"), "{text}");
        assert!(text.contains("sluice_token_gap_seconds_count 2"), "{text}");
    }
}
