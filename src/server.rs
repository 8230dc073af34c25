//! The accept loop: one task per connection, HTTP/1.1 and HTTP/2 (h2c), the
//! admin listener, config watching, and graceful shutdown. Knows nothing of SSE; every request goes to
//! [`App::handle`](crate::handler::App::handle), with the connection's
//! [`ResetHandle`] in its extensions so a `reset` fault can end the connection
//! with a real TCP RST.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use tokio_util::sync::CancellationToken;

use crate::admin::metrics::Metrics;
use crate::config::Config;
use crate::handler::{App, ResetHandle, StreamEnd};
use crate::live::{self, Live, Source, StartError};

/// Serves `config` on `listener` until `shutdown` completes (no admin
/// listener, no reload). See [`serve`].
///
/// # Errors
/// [`StartError`] when the config cannot be used (nothing is served then).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), StartError> {
    serve(Source::Fixed(Box::new(config)), listener, None, shutdown, grace).await
}

/// Serves the config from `source` on `api` (and the admin endpoints on
/// `admin`) until `shutdown` completes. Then it stops accepting, lets the
/// responses in flight finish for up to `grace`, ends every stream still
/// open at its next event boundary (with the dialect's error event), and
/// returns. The config file, if any, is watched and reloaded; `SIGHUP`
/// reloads it too. The seed is the config's, or a random one.
///
/// # Errors
/// [`StartError`] when the config cannot be used (nothing is served then).
pub async fn serve(
    source: Source,
    api: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::new());
    let live = Arc::new(Live::start(source, Arc::clone(&metrics))?);
    let seed = live.snapshot().config.seed.unwrap_or_else(rand::random);
    let end_streams = StreamEnd::new();
    let draining = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let app = Arc::new(App::new(Arc::clone(&live), metrics, seed, end_streams.clone()));
    let _watcher = match live::watch(Arc::clone(&live)) {
        Ok(watcher) => watcher,
        Err(error) => {
            warn!(%error, "cannot watch the config file; reload with SIGHUP or POST /reload");
            None
        }
    };
    #[cfg(unix)]
    if live.path().is_some() {
        reload_on_hangup(Arc::clone(&live));
    }
    if let Some(admin) = admin {
        tokio::spawn(crate::admin::serve(
            admin,
            Arc::clone(&app),
            draining.clone(),
            stop_admin.clone(),
        ));
    }
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = api.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Usually EMFILE: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%peer, %error, "could not disable Nagle");
        }
        let reset = ResetHandle::default();
        let io = ResettableIo { tcp, reset: reset.clone() };
        let app = Arc::clone(&app);
        let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let app = Arc::clone(&app);
            if request.version() != hyper::Version::HTTP_2 {
                // On HTTP/2 a failed body resets only its own stream.
                request.extensions_mut().insert(reset.clone());
            }
            // Boxed, so each connection holds a pointer to the handler's
            // state while a request is in it, not a slot the size of that
            // state for as long as it is open (5 KiB an idle stream).
            Box::pin(async move { app.handle(request).await })
        });
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(io), service).into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Clients hang up all the time; not a warning.
                debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(api);
    draining.cancel();
    info!(?grace, "shutting down: no new connections; waiting for responses in flight");
    let all_done = graceful.shutdown();
    tokio::pin!(all_done);
    if tokio::time::timeout(grace, &mut all_done).await.is_err() {
        warn!(?grace, "grace period over: ending the remaining streams at their next event");
        end_streams.end();
        if tokio::time::timeout(Duration::from_secs(2), &mut all_done).await.is_err() {
            warn!("some connections did not close; dropping them");
        }
    }
    stop_admin.cancel();
    Ok(())
}

#[cfg(unix)]
fn reload_on_hangup(live: Arc<Live>) {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    live.reload("SIGHUP").await;
                }
            });
        }
        Err(error) => warn!(%error, "cannot listen for SIGHUP; reload with POST /reload"),
    }
}

/// A client connection that closes with a TCP RST (SO_LINGER 0) instead of a
/// FIN when its [`ResetHandle`] asks for it.
struct ResettableIo {
    tcp: TcpStream,
    reset: ResetHandle,
}

impl Drop for ResettableIo {
    fn drop(&mut self) {
        if self.reset.requested()
            && let Err(error) = self.tcp.set_zero_linger()
        {
            debug!(%error, "could not set SO_LINGER 0 for a reset");
        }
    }
}

impl AsyncRead for ResettableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.requested() {
            // No FIN before the RST: the peer must see a reset, not a close.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
