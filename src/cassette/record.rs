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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt as _, BodyStream, StreamBody};
use hyper::body::{Body, Frame};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tracing::warn;

use super::replay::{MAX_CASSETTES, MAX_LIBRARY_BYTES};
use super::{
    Cassette, FORMAT, Head, MAX_CASSETTE_BYTES, MAX_EVENTS, Piece, Redaction, RequestPart,
    ResponsePart,
};
use crate::config::Record as RecordSettings;
use crate::framing::Record;
use crate::metrics::Metrics;
use crate::response::BoxError;

/// Tapes waiting for the writer; past this, new cassettes are dropped.
const QUEUE: usize = 256;
/// The most bytes all tapes may hold at once, in flight and queued (request
/// bodies and events): past it, the tape that would go over is dropped
/// (`too_large`) and its bytes released, so recording never holds more.
pub(crate) const RECORDING_BUDGET: usize = 256 * 1024 * 1024;
/// The largest request body recorded: its JSON is parsed (and redacted) on
/// the writer, one at a time, where a body of numbers costs about 40 times
/// its size; a larger exchange is dropped as `too_large`.
pub(crate) const MAX_RECORDED_BODY: usize = 4 * 1024 * 1024;

/// Starts tapes and owns the writer's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    queue: std::sync::mpsc::SyncSender<Tape>,
    redaction: Arc<Redaction>,
    metrics: Arc<Metrics>,
    /// Bytes every tape holds now, against [`RECORDING_BUDGET`].
    held: Arc<AtomicUsize>,
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
    pub(crate) fn start(
        config: &RecordSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RecordError> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| RecordError { dir: dir.clone(), source })?;
        let folder =
            Folder::read(&dir).map_err(|source| RecordError { dir: dir.clone(), source })?;
        let redaction = Arc::new(Redaction {
            headers: config.redact_headers.clone(),
            fields: config.redact_fields.clone(),
            keep: config.keep.clone(),
        });
        let held = Arc::new(AtomicUsize::new(0));
        let (queue, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = Writer {
            dir: dir.clone(),
            redaction: Arc::clone(&redaction),
            metrics: Arc::clone(&metrics),
            held: Arc::clone(&held),
            folder,
            warned_full: false,
        };
        std::thread::Builder::new()
            .name("sluice-recorder".to_string())
            .spawn(move || writer.run(receiver))
            .map_err(|source| RecordError { dir, source })?;
        Ok(Self { queue, redaction, metrics, held })
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
            path: self.redaction.path(path),
            headers: self.redaction.headers(&head.headers),
            // Parsed and redacted on the writer: not on the request's path.
            body: serde_json::Value::Null,
        };
        let mut tape = Tape {
            recorder: Some(self.clone()),
            request: Some(request),
            body: Bytes::new(),
            response: None,
            arrival,
            pieces: Vec::new(),
            bytes: 0,
            too_large: false,
        };
        if body.len() > MAX_RECORDED_BODY || !tape.hold(body.len()) {
            tape.drop_contents();
        } else {
            tape.body = Bytes::copy_from_slice(body);
        }
        tape
    }
}

/// Recording as a phase of a proxied request, with one method per phase:
/// [`Recording::start`] when the request is admitted, [`Recording::head`]
/// when the upstream's head arrives, then [`Recording::events`] for an
/// event stream or [`Recording::body`] for any other body. Without
/// `[record]` every phase passes its input through untouched.
#[derive(Debug)]
pub(crate) struct Recording(Option<Tape>);

/// An event stream, recorded or as it was.
pub(crate) type RecordedEvents<S> = Either<ReadAhead<Record>, S>;

impl Recording {
    /// The request's phase: a tape of its method, path, headers and `body`
    /// (when read), if `recorder` is set.
    pub(crate) fn start(
        recorder: Option<&Recorder>,
        head: &hyper::http::request::Parts,
        body: &[u8],
        arrival: Instant,
    ) -> Self {
        Self(recorder.map(|recorder| recorder.tape(head, body, arrival)))
    }

    /// Whether nothing is recorded (no `[record]`).
    pub(crate) fn is_off(&self) -> bool {
        self.0.is_none()
    }

    /// The response head's phase: its status and headers, stamped now.
    pub(crate) fn head(&mut self, head: &hyper::http::response::Parts) {
        if let Some(tape) = &mut self.0 {
            tape.respond(head);
        }
    }

    /// Each event's phase: a recorded stream is read ahead of the shaper on
    /// a task of its own, so that each event is stamped when it arrives,
    /// before any delay sluice adds.
    pub(crate) fn events<S>(self, records: S) -> RecordedEvents<S>
    where
        S: Stream<Item = Result<Record, BoxError>> + Send + 'static,
    {
        match self.0 {
            Some(tape) => Either::Left(read_ahead(Taped::new(records, Some(tape)))),
            None => Either::Right(records),
        }
    }

    /// A body that is not an event stream, recorded frame by frame (read
    /// ahead too), or as it was.
    pub(crate) fn body<B>(self, body: B) -> crate::response::Body
    where
        B: Body<Data = Bytes, Error = BoxError> + Send + 'static,
    {
        match self.0 {
            Some(tape) => {
                let frames = read_ahead(BodyStream::new(TapedBody::new(body, tape)));
                StreamBody::new(frames).boxed_unsync()
            }
            None => body.boxed_unsync(),
        }
    }
}

/// One exchange being recorded. Dropped before [`Tape::finish`], it is
/// counted as incomplete and not written.
#[derive(Debug)]
pub(crate) struct Tape {
    recorder: Option<Recorder>,
    request: Option<RequestPart>,
    /// The request body as it came; parsed and redacted by the writer.
    body: Bytes,
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
        let over = self.bytes.saturating_add(bytes.len()) > MAX_CASSETTE_BYTES
            || self.pieces.len() >= MAX_EVENTS;
        if over || !self.hold(bytes.len()) {
            self.drop_contents();
            return;
        }
        self.pieces.push(Piece { at: self.arrival.elapsed(), bytes: bytes.clone() });
    }

    /// Counts `more` bytes against the recording budget; `false` (counting
    /// nothing) when they do not fit.
    fn hold(&mut self, more: usize) -> bool {
        let Some(recorder) = &self.recorder else { return false };
        let fits = recorder
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|total| *total <= RECORDING_BUDGET)
            })
            .is_ok();
        if fits {
            self.bytes = self.bytes.saturating_add(more);
        }
        fits
    }

    /// Marks the tape too large and gives its bytes back at once.
    fn drop_contents(&mut self) {
        self.too_large = true;
        self.pieces = Vec::new();
        self.body = Bytes::new();
        self.release();
    }

    /// Gives back the bytes it holds against the budget.
    fn release(&mut self) {
        if let Some(recorder) = &self.recorder {
            recorder.held.fetch_sub(std::mem::take(&mut self.bytes), Ordering::AcqRel);
        }
    }

    /// The response ended whole: queue the cassette for writing.
    pub(crate) fn finish(mut self) {
        let Some(recorder) = self.recorder.clone() else { return };
        if self.too_large {
            self.recorder = None;
            recorder.metrics.cassette("too_large");
            return;
        }
        match recorder.queue.try_send(self) {
            Ok(()) => {}
            Err(
                std::sync::mpsc::TrySendError::Full(mut tape)
                | std::sync::mpsc::TrySendError::Disconnected(mut tape),
            ) => {
                tape.release();
                tape.recorder = None;
                recorder.metrics.cassette("queue_full");
            }
        }
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        self.release();
        if let Some(recorder) = &self.recorder {
            recorder.metrics.cassette("incomplete");
        }
    }
}

/// Tapes the writer takes from the queue at once.
const BATCH: usize = 64;

/// What the folder holds, against what replay accepts ([`MAX_CASSETTES`],
/// [`MAX_LIBRARY_BYTES`]): recording stops there.
#[derive(Debug)]
struct Folder {
    files: usize,
    bytes: u64,
}

impl Folder {
    /// Counts the cassettes in `dir`, and removes the temporary files a
    /// writer that died (a crash, a full disk) left behind.
    fn read(dir: &Path) -> std::io::Result<Self> {
        let mut folder = Self { files: 0, bytes: 0 };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            } else if name.ends_with(".jsonl") {
                // What replay reads: regular files, after following links.
                let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
                if meta.is_file() {
                    folder.files += 1;
                    folder.bytes = folder.bytes.saturating_add(meta.len());
                }
            }
        }
        Ok(folder)
    }

    /// Whether a cassette of `size` bytes still fits.
    fn fits(&self, size: usize) -> bool {
        self.files < MAX_CASSETTES && self.bytes.saturating_add(size as u64) <= MAX_LIBRARY_BYTES
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    redaction: Arc<Redaction>,
    metrics: Arc<Metrics>,
    held: Arc<AtomicUsize>,
    folder: Folder,
    warned_full: bool,
}

impl Writer {
    /// The queued tapes in batches. It runs at a lower priority (nice 10)
    /// than the runtime's workers, so that on a saturated machine the
    /// streams keep their timing and cassettes are dropped instead.
    fn run(mut self, queue: std::sync::mpsc::Receiver<Tape>) {
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
                let result = self.write(tape, sequence);
                self.metrics.cassette(result);
                sequence = sequence.wrapping_add(1);
            }
        }
    }

    /// Writes one tape, and gives its bytes back to the budget: its result.
    fn write(&mut self, mut tape: Tape, number: u64) -> &'static str {
        let held = std::mem::take(&mut tape.bytes);
        tape.recorder = None;
        let text = encode(&self.redaction, &mut tape, number);
        drop(tape);
        self.held.fetch_sub(held, Ordering::AcqRel);
        let Some((name, text)) = text else { return "incomplete" };
        if !self.folder.fits(text.len()) {
            if !self.warned_full {
                self.warned_full = true;
                warn!(
                    dir = %self.dir.display(),
                    "the recording folder holds what replay accepts ({MAX_CASSETTES} cassettes, \
                     {MAX_LIBRARY_BYTES} bytes); no more cassettes are written to it"
                );
            }
            return "folder_full";
        }
        match write_file(&self.dir, &name, &text) {
            Ok(()) => {
                self.folder.files += 1;
                self.folder.bytes = self.folder.bytes.saturating_add(text.len() as u64);
                "written"
            }
            Err(error) => {
                warn!(%error, "could not write a cassette");
                "write_failed"
            }
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

/// Redacts and encodes one tape: its file name and text.
fn encode(redaction: &Redaction, tape: &mut Tape, number: u64) -> Option<(String, String)> {
    let (Some(mut request), Some(response)) = (tape.request.take(), tape.response.take()) else {
        return None;
    };
    request.body = redaction.body(&std::mem::take(&mut tape.body));
    let stream = response.is_event_stream();
    let pieces = std::mem::take(&mut tape.pieces)
        .into_iter()
        .map(|piece| Piece { at: piece.at, bytes: redaction.payload(piece.bytes, stream) })
        .collect();
    let recorded_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let model = request.body.get("model").and_then(serde_json::Value::as_str).unwrap_or("");
    let name = file_name(&recorded_at, number, model);
    let cassette =
        Cassette { head: Head { sluice_cassette: FORMAT, recorded_at, request, response }, pieces };
    Some((name, cassette.to_text()))
}

/// Writes `text` as `NAME` in `dir` through a temporary file, which a failed
/// write (a full disk) removes.
fn write_file(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.partial"));
    let written =
        std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
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
    S: Stream<Item = Result<Record, BoxError>>,
{
    type Item = Result<Record, BoxError>;

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

impl Weighed for Record {
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
fn read_ahead<S, T>(source: S) -> ReadAhead<T>
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
    fn a_failed_write_leaves_no_temporary_file_and_a_start_removes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder that is not empty: the rename fails.
        std::fs::create_dir_all(dir.path().join("x.jsonl").join("inside")).unwrap();
        assert!(write_file(dir.path(), "x.jsonl", "{}\n").is_err());
        assert!(!dir.path().join(".x.jsonl.partial").exists());
        std::fs::write(dir.path().join(".y.jsonl.partial"), "half").unwrap();
        std::fs::write(dir.path().join("z.jsonl"), "{}").unwrap();
        let folder = Folder::read(dir.path()).unwrap();
        assert!(!dir.path().join(".y.jsonl.partial").exists(), "left by a writer that died");
        assert_eq!((folder.files, folder.bytes), (1, 2));
    }

    #[test]
    fn the_folder_takes_no_more_than_replay_accepts() {
        let almost = Folder { files: MAX_CASSETTES - 1, bytes: 0 };
        assert!(almost.fits(100));
        assert!(!Folder { files: MAX_CASSETTES, bytes: 0 }.fits(1));
        assert!(!Folder { files: 0, bytes: MAX_LIBRARY_BYTES - 10 }.fits(11));
    }

    /// Every tape's bytes count against one budget: past it a tape is
    /// dropped and its bytes given back, and a finished or dropped tape
    /// gives back what it held.
    #[tokio::test]
    async fn all_tapes_together_hold_no_more_than_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let config = RecordSettings {
            dir: dir.path().to_path_buf(),
            redact_headers: vec![],
            redact_fields: vec![],
            keep: vec![],
        };
        let metrics = Arc::new(Metrics::default());
        let recorder = Recorder::start(&config, Arc::clone(&metrics)).unwrap();
        let head = hyper::Request::post("/v1/messages").body(()).unwrap().into_parts().0;
        let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
        let mut tapes: Vec<Tape> =
            (0..17).map(|_| recorder.tape(&head, b"{}", Instant::now())).collect();
        // 17 tapes of 15 MiB each (each within a cassette's 16 MiB) hold
        // 255 MiB of the 256; two more MiB do not fit.
        for tape in &mut tapes {
            for _ in 0..15 {
                tape.push(&chunk);
            }
        }
        let held = recorder.held.load(Ordering::Acquire);
        assert_eq!(held, 255 * 1024 * 1024 + 17 * 2);
        assert!(tapes.iter().all(|t| !t.too_large));
        let mut extra = recorder.tape(&head, b"{}", Instant::now());
        for _ in 0..2 {
            extra.push(&chunk);
        }
        assert!(extra.too_large, "over the budget, the tape is dropped");
        drop(extra);
        drop(tapes);
        assert_eq!(recorder.held.load(Ordering::Acquire), 0, "every byte given back");
        // A body past the largest recorded is never copied.
        let big = vec![b' '; MAX_RECORDED_BODY + 1];
        let tape = recorder.tape(&head, &big, Instant::now());
        assert!(tape.too_large);
        assert_eq!(recorder.held.load(Ordering::Acquire), 0);
    }

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
