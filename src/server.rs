//! The accept loop: one task per connection, HTTP/1.1 and HTTP/2 (h2c), and
//! graceful shutdown. Knows nothing of SSE; every request goes to
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

use crate::config::Config;
use crate::handler::{App, ResetHandle};
use crate::proxy::ClientError;

/// Serves `config` on `listener` until `shutdown` completes, then gives the
/// responses in flight up to `grace` to finish. The caller binds (tests use
/// port 0) and chooses the signal. The seed is `config.seed`, or a random one.
///
/// # Errors
/// [`ClientError`] when proxy mode's TLS settings are unusable (nothing is
/// served then).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), ClientError> {
    let seed = config.seed.unwrap_or_else(rand::random);
    let app = Arc::new(App::new(config, seed)?);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
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
            async move { app.handle(request).await }
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
    drop(listener);
    info!(?grace, "shutting down: no new connections; waiting for responses in flight");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!(?grace, "grace period over; the remaining streams are dropped");
    }
    Ok(())
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
