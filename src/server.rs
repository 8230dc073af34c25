//! Serving the API: the app, the admin listener, config watching, and
//! graceful shutdown, with each accepted connection ([`crate::listener`]: the
//! door, the client IO, TLS as an adapter) served as HTTP/1.1 or HTTP/2 (h2c,
//! or by ALPN over TLS when `[tls]` is set). Knows nothing of SSE; every
//! request goes to `App::handle`, with the connection's `ResetHandle` in its
//! extensions so a `reset` fault can end the connection with a real TCP RST.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use tokio_util::sync::CancellationToken;

use crate::cassette::record::Recorder;
use crate::listener::connection::{self, ClientIo, ResetHandle, Tracked};
use crate::listener::tls::TlsListener;
use crate::listener::{Accepted, Listener, WhenFull};

use crate::app::{App, StreamEnd};
use crate::config::Config;
use crate::fleet::Fleet;
use crate::live::{self, Live, Loaded, Source, StartError};
use crate::metrics::Metrics;

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
    let first = source.load()?;
    serve_loaded(source, first, api, admin, shutdown, grace).await
}

/// [`serve`], with the config `source` already loaded (the binary loads it
/// once, to bind its listeners and print its banner, and serves that).
///
/// # Errors
/// [`StartError`] when the config cannot be used (nothing is served then).
pub async fn serve_loaded(
    source: Source,
    first: Loaded,
    api: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::new());
    let live = Arc::new(Live::start(source, first, Arc::clone(&metrics))?);
    let seed = {
        let config = &live.snapshot().config;
        replica_seed(config.seed.unwrap_or_else(rand::random), config.replica.as_deref())
    };
    let end_streams = StreamEnd::new();
    let draining = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let recorder = {
        let config = &live.snapshot().config;
        match (&config.record, &config.upstream) {
            (Some(record), Some(_)) => Some(Recorder::start(record, Arc::clone(&metrics))?),
            (Some(_), None) => {
                warn!(
                    "[record] is set but sluice is not a proxy (no upstream): nothing is recorded"
                );
                None
            }
            (None, _) => None,
        }
    };
    let fleet = {
        let config = &live.snapshot().config;
        match config.fleet.as_ref().filter(|fleet| fleet.store.is_some()) {
            Some(fleet) => Some(Arc::new(
                Fleet::new(fleet, config.replica.as_deref(), Arc::clone(&metrics))
                    .map_err(|error| StartError::Fleet(error.to_string()))?,
            )),
            None => None,
        }
    };
    let app = Arc::new(App::new(
        Arc::clone(&live),
        Arc::clone(&metrics),
        seed,
        end_streams.clone(),
        recorder,
        fleet,
    ));
    crate::fleet_sync::spawn(&app);
    let _timeline = crate::timeline::spawn(Arc::clone(&app));
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
    let tls = match &live.snapshot().config.tls {
        Some(tls) => {
            let listener = TlsListener::start(tls)?;
            listener.watch_files();
            Some(listener)
        }
        None => None,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper copies each chunk's size line, data and CRLF into one buffer and
    // sends it with one `send`, instead of a three-slice `writev`: an SSE
    // event is a few hundred bytes, the copy costs less than the slices
    // (3 % less CPU per paced event; docs/performance.md).
    builder.http1().writev(false);
    // The read buffer: at most the largest request head, and no more. Left
    // to grow, it doubled to 16 KiB on every connection, held for as long as
    // a stream stays open (docs/performance.md, "Idle open streams").
    builder.http1().max_buf_size(live.snapshot().config.limits.max_request_head);
    // What one HTTP/2 connection may hold for a client that grants a huge
    // window and never reads: at most this much per stream, times this many
    // streams (12.5 MiB). hyper's default per stream is 400 KiB, which such a
    // client turned into about 108 MiB a connection (docs/reliability.md).
    builder.http2().max_send_buf_size(H2_SEND_BUFFER).max_concurrent_streams(H2_MAX_STREAMS);
    let max_connections = live.snapshot().config.limits.max_connections;
    let mut listener =
        Listener::new(api, "API", max_connections, WhenFull::Refuse, draining.clone());
    // Accepting stops when `shutdown` completes (the loop is dropped there).
    let accepting = async {
        loop {
            let Accepted { tcp, peer, state, close, slot } = listener.accept().await;
            let reset = ResetHandle::default();
            let app = Arc::clone(&app);
            let requests = Arc::clone(&state);
            let handler_reset = reset.clone();
            let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                let h2 = request.version() == hyper::Version::HTTP_2;
                let in_flight = requests.request_started(h2);
                if !h2 {
                    // On HTTP/2 a failed body resets only its own stream.
                    request.extensions_mut().insert(handler_reset.clone());
                }
                // Boxed, so each connection holds a pointer to the handler's
                // state while a request is in it, not a slot the size of that
                // state for as long as it is open (5 KiB an idle stream).
                Box::pin(async move {
                    let response = app.handle(request).await?;
                    Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
                })
            });
            let live = Arc::clone(&live);
            let (builder, tls) = (builder.clone(), tls.clone());
            let metrics = Arc::clone(&metrics);
            crate::listener::shards::spawn_connection(tcp, move |tcp| async move {
                let limits = || live.snapshot().config.limits;
                let ended = match tls {
                    None => {
                        let io = ClientIo::new(tcp, Some(reset), Arc::clone(&state));
                        let connection = builder.serve_connection(TokioIo::new(io), service);
                        connection::watch(connection.into_owned(), state, limits, Some(close)).await
                    }
                    // TLS adapts the accepted connection on its own task. Boxed:
                    // inline, a TLS connection's state (the handshake's and
                    // rustls's) made every connection's future 7.7 KiB instead of
                    // 4.0, and an idle plain-HTTP stream 31.7 KiB instead of 26.7.
                    Some(tls) => {
                        Box::pin(async move {
                            let wrap = |tcp| ClientIo::new(tcp, Some(reset), Arc::clone(&state));
                            match tls.accept(tcp, wrap, limits().header_read_timeout).await {
                                Ok(stream) => {
                                    metrics.tls_handshake("ok");
                                    let connection =
                                        builder.serve_connection(TokioIo::new(stream), service);
                                    let connection = connection.into_owned();
                                    connection::watch(connection, state, limits, Some(close)).await
                                }
                                Err(failure) => {
                                    metrics.tls_handshake(failure.label());
                                    debug!(%peer, %failure, "TLS handshake failed");
                                    Ok(())
                                }
                            }
                        })
                        .await
                    }
                };
                if let Err(error) = ended {
                    // Clients hang up all the time; not a warning.
                    debug!(%peer, %error, "connection ended with an error");
                }
                drop(slot);
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = shutdown => {}
    }
    let closed = listener.close();
    draining.cancel();
    info!(?grace, "shutting down: no new connections; waiting for responses in flight");
    // Each connection holds its slot until it ends: all of them back means
    // every connection has finished (or been dropped).
    let all_ended = closed.all_ended();
    tokio::pin!(all_ended);
    if tokio::time::timeout(grace, &mut all_ended).await.is_err() {
        warn!(?grace, "grace period over: ending the remaining streams at their next event");
        end_streams.end();
        if tokio::time::timeout(Duration::from_secs(2), &mut all_ended).await.is_err() {
            warn!("some connections did not close; dropping them");
        }
    }
    stop_admin.cancel();
    Ok(())
}

/// Bytes an HTTP/2 stream may have queued for a client that does not read.
pub(crate) const H2_SEND_BUFFER: usize = 64 * 1024;
/// HTTP/2 streams open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub(crate) const H2_MAX_STREAMS: u32 = 200;

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

/// The seed a replica draws from: the config's, mixed with the replica's
/// name (the first 8 bytes of SHA-256 over both), so that replicas of one
/// config draw different streams and each replica's stream is reproducible.
pub fn replica_seed(seed: u64, replica: Option<&str>) -> u64 {
    use sha2::{Digest, Sha256};
    let Some(replica) = replica else { return seed };
    let digest =
        Sha256::new().chain_update(seed.to_le_bytes()).chain_update(replica.as_bytes()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}
