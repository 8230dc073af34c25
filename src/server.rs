//! The accept loop: one task per connection, HTTP/1.1 and HTTP/2 (h2c), and
//! graceful shutdown. Knows nothing of SSE; every request goes to
//! [`App::handle`](crate::handler::App::handle).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::handler::App;
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
        let app = Arc::clone(&app);
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { app.handle(request).await }
        });
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(tcp), service).into_owned());
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
