//! [`Records`]: an upstream response body as a `Stream` of SSE records,
//! the proxy's source for the shaper. It pulls a body frame only when the
//! records of the previous one have all been taken, so a shaper that holds a
//! record back holds the upstream back too.
//!
//! An upstream that sends nothing for `[upstream] stream_idle_timeout` while
//! sluice waits on it breaks the stream, as an upstream error: time the
//! shaper spends holding a record back is not the upstream's, so only waits
//! on the body count. The timer is one per stream and re-armed only when it
//! fires, not per chunk.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper::body::Body;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tracing::warn;

use crate::framing::Record;
use crate::framing::Splitter;
use crate::response::BoxError;

pin_project! {
    /// The records of an SSE body, byte-for-byte.
    pub(crate) struct Records<B> {
        #[pin]
        body: B,
        splitter: Splitter,
        ready: VecDeque<Record>,
        ended: bool,
        idle: Duration,
        // Since when sluice has been waiting on the body, if it is.
        waiting_since: Option<Instant>,
        idle_timer: Pin<Box<Sleep>>,
    }
}

/// The upstream sent nothing for `[upstream] stream_idle_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upstream sent nothing for {0:?} ([upstream] stream_idle_timeout)")]
pub(crate) struct UpstreamIdle(pub(crate) Duration);

impl<B> Records<B> {
    /// Splits `body` with `splitter`; `idle` bounds each wait on the body.
    pub(crate) fn new(body: B, splitter: Splitter, idle: Duration) -> Self {
        Self {
            body,
            splitter,
            ready: VecDeque::new(),
            ended: false,
            idle,
            waiting_since: None,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<B> Stream for Records<B>
where
    B: Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    type Item = Result<Record, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(record) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(record)));
            }
            if *this.ended {
                return Poll::Ready(None);
            }
            match this.body.as_mut().poll_frame(cx) {
                Poll::Pending => {
                    let since = *this.waiting_since.get_or_insert_with(Instant::now);
                    while this.idle_timer.as_mut().poll(cx).is_ready() {
                        let deadline = crate::shape::later(since, *this.idle);
                        if Instant::now() >= deadline {
                            *this.ended = true;
                            let error = UpstreamIdle(*this.idle);
                            warn!(%error, "breaking the client's stream");
                            return Poll::Ready(Some(Err(Box::new(error))));
                        }
                        // Armed for an earlier wait: move it to this one's deadline.
                        this.idle_timer.as_mut().reset(deadline);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    *this.waiting_since = None;
                    if let Ok(data) = frame.into_data() {
                        this.splitter.push(data, this.ready);
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    // Faithful: what arrived goes out; the client sees the stream break.
                    *this.ended = true;
                    let error: BoxError = error.into();
                    warn!(error = %crate::proxy::cause_chain(&*error), "the upstream broke off its stream; breaking the client's too");
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    *this.ended = true;
                    this.ready.extend(this.splitter.finish());
                }
            }
        }
    }
}
