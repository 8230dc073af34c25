//! Recording (`[record]`, proxy mode): each exchange the proxy forwards is
//! taped as it passes and written as one cassette when its response ends.
//!
//! The data path only appends each event's bytes (a reference count, not a
//! copy) and its offset to the exchange's [`Tape`]. When the upstream's
//! response has ended, the tape goes to the writer thread through a bounded
//! queue, without waiting: if the queue is full (the disk, or the CPU left
//! to a low-priority thread, cannot keep up) the cassette is dropped and
//! counted, and the stream is never slowed. Redaction, encoding and the file
//! write all happen on the writer, which writes to a temporary name and
//! renames, so a replaying reader never sees half a cassette.
//!
//! A cassette holds the upstream's own timing, not sluice's: the shaper pulls
//! a record only when it may release it, so a tape on the shaper's side of
//! the pipeline would stamp each event late by every delay sluice adds. A
//! recorded upstream is therefore read ahead ([`read_ahead`]) by a task of its
//! own that stamps each event as it arrives, and hands it to the shaper
//! through a buffer of at most [`READ_AHEAD_BYTES`].

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hyper::body::{Body, Frame};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tracing::warn;

use super::{
    Cassette, FORMAT, Head, MAX_CASSETTE_BYTES, MAX_EVENTS, Piece, Redaction, RequestPart,
    ResponsePart,
};
use crate::config::Record;
use crate::metrics::Metrics;
use crate::response::BoxError;
use crate::sse::SseRecord;

/// Tapes waiting for the writer; past this, new cassettes are dropped.
const QUEUE: usize = 256;

/// Starts tapes and owns the writer's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    queue: std::sync::mpsc::SyncSender<Tape>,
    redaction: Arc<Redaction>,
    metrics: Arc<Metrics>,
}

/// Why recording cannot start.
#[derive(Debug, thiserror::Error)]
#[error("[record] dir {dir}: {source}")]
pub struct RecordError {
    dir: PathBuf,
    source: std::io::Error,
}

impl Recorder {
    /// Makes `[record] dir` if missing and starts the writer thread.
    pub(crate) fn start(config: &Record, metrics: Arc<Metrics>) -> Result<Self, RecordError> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| RecordError { dir: dir.clone(), source })?;
        let redaction = Arc::new(Redaction {
            headers: config.redact_headers.clone(),
            fields: config.redact_fields.clone(),
        });
        let (queue, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let (writer_redaction, writer_metrics) = (Arc::clone(&redaction), Arc::clone(&metrics));
        let writer_dir = dir.clone();
        std::thread::Builder::new()
            .name("sluice-recorder".to_string())
            .spawn(move || write_all(receiver, &writer_dir, &writer_redaction, &writer_metrics))
            .map_err(|source| RecordError { dir, source })?;
        Ok(Self { queue, redaction, metrics })
    }

    /// A tape for a request that arrived at `arrival`: its method, path and
    /// headers, and its body (when read).
    pub(crate) fn tape(
        &self,
        head: &hyper::http::request::Parts,
        body: &[u8],
        arrival: Instant,
    ) -> Tape {
        let path = head.uri.path_and_query().map_or_else(|| head.uri.path(), |p| p.as_str());
        let request = RequestPart {
            method: head.method.to_string(),
            path: Redaction::path(path),
            headers: self.redaction.headers(&head.headers),
            body: self.redaction.body(body),
        };
        Tape {
            recorder: Some(self.clone()),
            request: Some(request),
            response: None,
            arrival,
            pieces: Vec::new(),
            bytes: 0,
            too_large: false,
        }
    }
}

/// One exchange being recorded. Dropped before [`Tape::finish`], it is
/// counted as incomplete and not written.
#[derive(Debug)]
pub(crate) struct Tape {
    recorder: Option<Recorder>,
    request: Option<RequestPart>,
    response: Option<ResponsePart>,
    arrival: Instant,
    pieces: Vec<Piece>,
    bytes: usize,
    too_large: bool,
}

impl Tape {
    /// The response head, which arrived now.
    pub(crate) fn respond(&mut self, head: &hyper::http::response::Parts) {
        let headers = self.recorder.as_ref().map(|r| r.redaction.headers(&head.headers));
        self.response = Some(ResponsePart {
            status: head.status.as_u16(),
            head_ms: super::millis(self.arrival.elapsed()),
            headers: headers.unwrap_or_default(),
        });
    }

    /// An event or body chunk, which arrived now.
    pub(crate) fn push(&mut self, bytes: &Bytes) {
        if self.too_large {
            return;
        }
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > MAX_CASSETTE_BYTES || self.pieces.len() >= MAX_EVENTS {
            self.too_large = true;
            self.pieces = Vec::new();
            return;
        }
        self.pieces.push(Piece { at: self.arrival.elapsed(), bytes: bytes.clone() });
    }

    /// The response ended whole: queue the cassette for writing.
    pub(crate) fn finish(mut self) {
        let Some(recorder) = self.recorder.take() else { return };
        if self.too_large {
            recorder.metrics.cassette("too_large");
            return;
        }
        if recorder.queue.try_send(self).is_err() {
            recorder.metrics.cassette("queue_full");
        }
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        if let Some(recorder) = &self.recorder {
            recorder.metrics.cassette("incomplete");
        }
    }
}

/// Tapes the writer takes from the queue at once.
const BATCH: usize = 64;

/// The writer thread: the queued tapes in batches. It runs at a lower
/// priority (nice 10) than the runtime's workers, so that on a saturated
/// machine the streams keep their timing and cassettes are dropped instead.
fn write_all(
    queue: std::sync::mpsc::Receiver<Tape>,
    dir: &Path,
    redaction: &Redaction,
    metrics: &Metrics,
) {
    lower_priority();
    let mut sequence: u64 = 0;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(tape) => batch.push(tape),
                Err(_) => break,
            }
        }
        for tape in batch {
            match write_one(dir, redaction, tape, sequence) {
                Ok(()) => metrics.cassette("written"),
                Err(error) => {
                    metrics.cassette("write_failed");
                    warn!(%error, "could not write a cassette");
                }
            }
            sequence = sequence.wrapping_add(1);
        }
    }
}

/// Nice 10 for the calling thread (Linux sets niceness per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!(%error, "the cassette writer keeps its priority");
    }
}

/// Redacts, encodes and writes one tape as `NAME.jsonl`, through a temporary file.
fn write_one(
    dir: &Path,
    redaction: &Redaction,
    mut tape: Tape,
    number: u64,
) -> std::io::Result<()> {
    let (Some(request), Some(response)) = (tape.request.take(), tape.response.take()) else {
        return Ok(());
    };
    let stream = response.is_event_stream();
    let pieces = std::mem::take(&mut tape.pieces)
        .into_iter()
        .map(|piece| Piece { at: piece.at, bytes: redaction.payload(piece.bytes, stream) })
        .collect();
    let now = SystemTime::now();
    let recorded_at = humantime::format_rfc3339_millis(now).to_string();
    let model = request.body.get("model").and_then(serde_json::Value::as_str).unwrap_or("");
    let name = file_name(&recorded_at, number, model);
    let cassette =
        Cassette { head: Head { sluice_cassette: FORMAT, recorded_at, request, response }, pieces };
    let text = cassette.to_text();
    let path = dir.join(&name);
    let temporary = dir.join(format!(".{name}.partial"));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)
}

/// `2026-12-02T14-37-02.123Z-000042-claude-sonnet-4-5.jsonl`: sorts by time,
/// safe on every filesystem.
fn file_name(recorded_at: &str, number: u64, model: &str) -> String {
    let time: String = recorded_at.chars().map(|c| if c == ':' { '-' } else { c }).collect();
    let model: String = model
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    if model.is_empty() {
        format!("{time}-{number:06}.jsonl")
    } else {
        format!("{time}-{number:06}-{model}.jsonl")
    }
}

pin_project! {
    /// An SSE source whose records are taped as they pass; the tape is
    /// finished when the source ends. Without a tape it only passes them on.
    pub(crate) struct Taped<S> {
        #[pin]
        source: S,
        tape: Option<Tape>,
    }
}

impl<S> Taped<S> {
    /// Tapes `source`'s records on `tape`, if recording.
    pub(crate) fn new(source: S, tape: Option<Tape>) -> Self {
        Self { source, tape }
    }
}

impl<S> Stream for Taped<S>
where
    S: Stream<Item = Result<SseRecord, BoxError>>,
{
    type Item = Result<SseRecord, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let polled = this.source.poll_next(cx);
        if let Some(tape) = this.tape {
            match &polled {
                Poll::Ready(Some(Ok(record))) => tape.push(&record.raw),
                Poll::Ready(None) => {
                    if let Some(tape) = this.tape.take() {
                        tape.finish();
                    }
                }
                Poll::Ready(Some(Err(_))) => *this.tape = None, // incomplete
                Poll::Pending => {}
            }
        }
        polled
    }
}

/// The most bytes of a recorded upstream read ahead of the shaper; past it,
/// the upstream waits (backpressure), as it does without recording.
pub(crate) const READ_AHEAD_BYTES: usize = 1024 * 1024;

/// Something a read-ahead buffer holds, and how many bytes of it count.
pub(crate) trait Weighed {
    /// Its bytes, at least one so that a buffer of empty items is bounded too.
    fn weight(&self) -> usize;
}

impl Weighed for SseRecord {
    fn weight(&self) -> usize {
        self.raw.len().max(1)
    }
}

impl Weighed for Frame<Bytes> {
    fn weight(&self) -> usize {
        self.data_ref().map_or(1, |data| data.len().max(1))
    }
}

/// Drives `source` on a task of its own, so that it is read (and taped) as
/// the upstream sends it, not as the shaper takes it. What it has read waits
/// in a buffer of at most [`READ_AHEAD_BYTES`] (one item larger than that
/// waits alone). Dropping the returned stream (the client left) ends the task
/// and drops `source`, which closes the upstream's stream.
pub(crate) fn read_ahead<S, T>(source: S) -> ReadAhead<T>
where
    S: Stream<Item = Result<T, BoxError>> + Send + 'static,
    T: Weighed + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(1024);
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    tokio::spawn(async move {
        let mut source = std::pin::pin!(source);
        loop {
            let item = tokio::select! {
                item = source.next() => item,
                () = sender.closed() => return,
            };
            let Some(item) = item else { return };
            let failed = item.is_err();
            let permit = match &item {
                Ok(value) => {
                    let weight = value.weight().min(READ_AHEAD_BYTES);
                    let weight = u32::try_from(weight).unwrap_or(u32::MAX);
                    let acquired = tokio::select! {
                        acquired = Arc::clone(&budget).acquire_many_owned(weight) => acquired,
                        () = sender.closed() => return,
                    };
                    acquired.ok()
                }
                Err(_) => None,
            };
            if sender.send((item, permit)).await.is_err() || failed {
                return;
            }
        }
    });
    ReadAhead { receiver }
}

/// The items a [`read_ahead`] task has read, in order.
#[derive(Debug)]
pub(crate) struct ReadAhead<T> {
    receiver: mpsc::Receiver<(Result<T, BoxError>, Option<OwnedSemaphorePermit>)>,
}

impl<T> Stream for ReadAhead<T> {
    type Item = Result<T, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The permit is dropped here: the bytes leave the buffer.
        self.receiver.poll_recv(cx).map(|next| next.map(|(item, _permit)| item))
    }
}

pin_project! {
    /// A body (not a stream of events) taped chunk by chunk.
    pub(crate) struct TapedBody<B> {
        #[pin]
        body: B,
        tape: Option<Tape>,
    }
}

impl<B> TapedBody<B> {
    /// Tapes `body`'s data on `tape`.
    pub(crate) fn new(body: B, tape: Tape) -> Self {
        Self { body, tape: Some(tape) }
    }
}

impl<B> Body for TapedBody<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.body.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(tape), Some(data)) = (this.tape.as_mut(), frame.data_ref()) {
                    tape.push(data);
                }
                // hyper polls no further once a body says it has ended.
                if this.body.is_end_stream()
                    && let Some(tape) = this.tape.take()
                {
                    tape.finish();
                }
            }
            Poll::Ready(None) => {
                if let Some(tape) = this.tape.take() {
                    tape.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => *this.tape = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_time_and_keep_only_safe_characters() {
        assert_eq!(
            file_name("2026-12-02T14:37:02.123Z", 42, "claude/../sonnet 4"),
            "2026-12-02T14-37-02.123Z-000042-claude..sonnet4.jsonl"
        );
        assert_eq!(
            file_name("2026-12-02T14:37:02.123Z", 7, ""),
            "2026-12-02T14-37-02.123Z-000007.jsonl"
        );
    }
}
