//! [`SseRecords`]: an upstream response body as a `Stream` of SSE records,
//! the proxy's source for the shaper. It pulls a body frame only when the
//! records of the previous one have all been taken, so a shaper that holds a
//! record back holds the upstream back too.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use hyper::body::Body;
use pin_project_lite::pin_project;
use tracing::warn;

use crate::response::BoxError;
use crate::sse::{SseRecord, SseSplitter};

pin_project! {
    /// The records of an SSE body, byte-for-byte.
    pub struct SseRecords<B> {
        #[pin]
        body: B,
        splitter: SseSplitter,
        ready: VecDeque<SseRecord>,
        ended: bool,
    }
}

impl<B> SseRecords<B> {
    /// Splits `body` with `splitter`.
    pub fn new(body: B, splitter: SseSplitter) -> Self {
        Self { body, splitter, ready: VecDeque::new(), ended: false }
    }
}

impl<B> Stream for SseRecords<B>
where
    B: Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    type Item = Result<SseRecord, BoxError>;

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
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
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
