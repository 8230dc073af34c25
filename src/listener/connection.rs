//! Client connections, for both listeners: their I/O ([`ClientIo`]) and
//! their bounds; the stage between an accept loop and hyper.
//!
//! hyper's HTTP/1 server has one timer for "read the next request head",
//! which also runs while a keep-alive connection sits idle, so it cannot tell
//! a slow client from an idle one; HTTP/2 has neither. So each connection
//! keeps a little state of its own ([`ConnState`]): requests in flight (from
//! the head to the end of the response body, [`Tracked`]), when it went idle,
//! and when bytes of a new head began to arrive. A watchdog beside the
//! connection ([`watch`]) closes it when
//! - a request head began and is not complete within `header_read_timeout`
//!   (a half-sent head holds an fd and a buffer for nothing), or
//! - no request has been in flight for `idle_timeout`.
//!
//! A response that is still streaming (however long its first token takes)
//! is in flight, so neither limit touches it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::config::Limits;

/// Set by a response whose stream fault is a reset; the connection's I/O
/// then closes with SO_LINGER 0, which sends a TCP RST (HTTP/1.1 only: on
/// HTTP/2 the failed body resets just its stream).
#[derive(Debug, Clone, Default)]
pub(crate) struct ResetHandle(pub(crate) Arc<AtomicBool>);

impl ResetHandle {
    /// Whether a reset was asked for.
    pub(crate) fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the watchdog knows of one connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    opened: Instant,
    /// Requests whose response has not ended.
    in_flight: AtomicUsize,
    /// When the last request in flight ended (ns since `opened`).
    idle_since: AtomicU64,
    /// When bytes of a request head began to arrive with nothing in flight
    /// (ns since `opened`, plus one; 0 when no head is pending).
    head_started: AtomicU64,
    /// HTTP/2: bytes between requests are frames (pings, settings), not heads.
    h2: AtomicBool,
    /// Told when the connection ends (the accept loop waits on it at the fd limit).
    closed: Arc<Notify>,
    /// Wakes the watchdog when a head begins: its deadline moves closer.
    head_began: Notify,
}

impl ConnState {
    pub(crate) fn new(closed: Arc<Notify>) -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            closed,
            head_began: Notify::new(),
        })
    }

    fn since_opened(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Bytes arrived from the client (called by the connection's I/O).
    pub(crate) fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Relaxed)
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(self.since_opened().saturating_add(1), Ordering::Release);
            self.head_began.notify_one();
        }
    }

    /// A request head is complete: it is in flight until the guard drops.
    pub(crate) fn request_started(self: &Arc<Self>, h2: bool) -> InFlight {
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        InFlight(Arc::clone(self))
    }

    /// When it went idle (ns since it opened), if no request is in flight or
    /// on its way: a connection that can be shed without cutting anything.
    pub(crate) fn idle_since(&self) -> Option<u64> {
        let idle = self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0;
        idle.then(|| self.idle_since.load(Ordering::Acquire))
    }

    /// When it opened.
    pub(crate) fn opened(&self) -> Instant {
        self.opened
    }

    /// Why the connection must close now, if it must; else when to look again.
    fn check(&self, limits: &Limits) -> Result<Instant, &'static str> {
        let at = |nanos: u64| self.opened + Duration::from_nanos(nanos);
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Ok(now + limits.idle_timeout);
        }
        let head = self.head_started.load(Ordering::Acquire);
        let deadline = if head > 0 {
            (
                at(head - 1) + limits.header_read_timeout,
                "request head not complete within [limits] header_read_timeout",
            )
        } else {
            (
                at(self.idle_since.load(Ordering::Acquire)) + limits.idle_timeout,
                "idle for [limits] idle_timeout",
            )
        };
        if now >= deadline.0 { Err(deadline.1) } else { Ok(deadline.0) }
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        self.closed.notify_one();
    }
}

/// One request in flight; its end (the response body's end, or the request
/// dropped unanswered) starts the idle clock.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.0;
        state.idle_since.store(state.since_opened(), Ordering::Release);
        state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it ends.
#[derive(Debug)]
pub(crate) struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        Self { inner, _in_flight: in_flight }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Runs `connection` until it ends, or until its state says it must close
/// (then it is dropped, which closes the socket). `limits` is read at each
/// look, so a reload applies to open connections too. Once `drain` is
/// cancelled the connection is shut down gracefully: the response in flight
/// finishes, and HTTP/2 says GOAWAY.
///
/// The watchdog's own futures (its deadline, the head notification, the
/// drain) are polled only when one of them woke, not each time the
/// connection does: a paced stream wakes its task once a token, and polling
/// the three beside it each time (a lock in each `Notified`) cost about 4 %
/// of sluice's CPU per event (`docs/performance.md`).
pub(crate) async fn watch<C, E>(
    connection: C,
    state: Arc<ConnState>,
    limits: impl Fn() -> Limits,
    drain: Option<CancellationToken>,
) -> Result<(), E>
where
    C: GracefulConnection<Error = E>,
{
    tokio::pin!(connection);
    let side = Arc::new(SideWake::default());
    let side_waker = Waker::from(Arc::clone(&side));
    let mut draining = false;
    loop {
        let next = match state.check(&limits()) {
            Ok(next) => next,
            Err(why) => {
                debug!(why, "closing a client connection");
                return Ok(());
            }
        };
        let deadline = tokio::time::sleep_until(next);
        let head_began = state.head_began.notified();
        let watch_drain = drain.as_ref().filter(|_| !draining);
        let drained = async move {
            match watch_drain {
                Some(drain) => drain.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline, head_began, drained);
        // Fresh futures: poll each once, so that they register.
        side.woken.store(true, Ordering::Release);
        let woke = std::future::poll_fn(|cx| {
            if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                return Poll::Ready(Some(ended));
            }
            side.task.register(cx.waker());
            if !side.woken.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            let mut side_cx = Context::from_waker(&side_waker);
            if drained.as_mut().poll(&mut side_cx).is_ready() {
                return Poll::Ready(None);
            }
            if deadline.as_mut().poll(&mut side_cx).is_ready()
                || head_began.as_mut().poll(&mut side_cx).is_ready()
            {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match woke {
            Some(ended) => return ended,
            None if !draining && drain.as_ref().is_some_and(CancellationToken::is_cancelled) => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            None => {}
        }
    }
}

/// Wakes the watchdog's task for one of its own futures, and says so.
#[derive(Debug, Default)]
struct SideWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A client connection: it closes with a TCP RST (SO_LINGER 0) instead of a
/// FIN when its [`ResetHandle`] asks for it, and tells its [`ConnState`]
/// when bytes arrive.
pub(crate) struct ClientIo {
    tcp: TcpStream,
    reset: Option<ResetHandle>,
    state: Arc<ConnState>,
}

impl ClientIo {
    /// `tcp`, with the reset switch of its requests (the API listener) or none (admin).
    pub(crate) fn new(tcp: TcpStream, reset: Option<ResetHandle>, state: Arc<ConnState>) -> Self {
        Self { tcp, reset, state }
    }

    fn reset_requested(&self) -> bool {
        self.reset.as_ref().is_some_and(ResetHandle::requested)
    }

    /// Writes with `send` or `sendmsg` rather than tokio's `write` and
    /// `writev`: a socket's `writev` goes through the VFS layer
    /// (`vfs_writev`, `fdget_pos`, `rw_verify_area`, `sock_write_iter`),
    /// about 0.5 µs of kernel time per token write that `sendmsg` skips
    /// (`scripts/profile.sh`; `docs/performance.md`). Readiness is tokio's,
    /// as in its own `poll_write`.
    #[cfg(target_os = "linux")]
    fn send_when_writable(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut(&TcpStream) -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            match self
                .tcp
                .try_io(tokio::io::Interest::WRITABLE, || send(&self.tcp).map_err(io::Error::from))
            {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                sent => return Poll::Ready(sent),
            }
        }
    }
}

impl Drop for ClientIo {
    fn drop(&mut self) {
        if self.reset_requested()
            && let Err(error) = self.tcp.set_zero_linger()
        {
            debug!(%error, "could not set SO_LINGER 0 for a reset");
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        return self.send_when_writable(cx, |tcp| {
            rustix::net::send(tcp, buf, rustix::net::SendFlags::NOSIGNAL)
        });
        #[cfg(not(target_os = "linux"))]
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset_requested() {
            // No FIN before the RST: the peer must see a reset, not a close.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        return self.send_when_writable(cx, |tcp| {
            let mut control = rustix::net::SendAncillaryBuffer::default();
            rustix::net::sendmsg(tcp, bufs, &mut control, rustix::net::SendFlags::NOSIGNAL)
        });
        #[cfg(not(target_os = "linux"))]
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Logs at most one line per `every`, with how many events it stands for.
#[derive(Debug)]
pub(crate) struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub(crate) fn new(every: Duration) -> Self {
        Self { every, last: None, suppressed: 0 }
    }

    /// Counts an event; returns how many it stands for when one should be
    /// logged now (1 plus those suppressed since the last line).
    pub(crate) fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(1000),
            body_read_timeout: Duration::from_millis(1000),
            max_connections: 10,
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_after_the_idle_timeout_and_a_half_head_sooner() {
        let state = ConnState::new(Arc::default());
        assert!(state.check(&limits()).is_ok());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(state.check(&limits()).is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(state.check(&limits()), Err("idle for [limits] idle_timeout"));

        let state = ConnState::new(Arc::default());
        tokio::time::advance(Duration::from_millis(500)).await;
        state.bytes_read();
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(state.check(&limits()).is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            state.check(&limits()),
            Err("request head not complete within [limits] header_read_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_the_connection_and_its_end_starts_the_idle_clock() {
        let state = ConnState::new(Arc::default());
        state.bytes_read();
        let in_flight = state.request_started(false);
        state.bytes_read(); // the request's body: not a new head
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(state.check(&limits()).is_ok(), "a long stream is never idle");
        drop(in_flight);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(state.check(&limits()).is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(state.check(&limits()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn logs_are_rate_limited_and_count_what_they_stand_for() {
        let mut log = RateLimitedLog::new(Duration::from_secs(5));
        assert_eq!(log.hit(), Some(1));
        assert_eq!(log.hit(), None);
        assert_eq!(log.hit(), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(log.hit(), Some(3));
    }
}
