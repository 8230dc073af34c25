//! The accept loop: one task per connection, HTTP/1.1 and HTTP/2 (h2c, or
//! by ALPN over TLS when `[tls]` is set: the handshake is made on the
//! connection's task, `crate::tls`), the admin listener, config watching, and
//! graceful shutdown. Knows nothing of SSE; every request goes to
//! `App::handle`, with the connection's `ResetHandle` in its extensions so a
//! `reset` fault can end the connection with a real TCP RST.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::cassette::record::Recorder;
use crate::connection::{self, ClientIo, ConnState, RateLimitedLog, Tracked};

use crate::config::Config;
use crate::connection::ResetHandle;
use crate::handler::{App, StreamEnd};
use crate::live::{self, Live, Loaded, Source, StartError};
use crate::metrics::Metrics;
use crate::tls::TlsListener;

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
    let app = Arc::new(App::new(
        Arc::clone(&live),
        Arc::clone(&metrics),
        seed,
        end_streams.clone(),
        recorder,
    ));
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
    // What one HTTP/2 connection may hold for a client that grants a huge
    // window and never reads: at most this much per stream, times this many
    // streams (12.5 MiB). hyper's default per stream is 400 KiB, which such a
    // client turned into about 108 MiB a connection (docs/reliability.md).
    builder.http2().max_send_buf_size(H2_SEND_BUFFER).max_concurrent_streams(H2_MAX_STREAMS);
    let max_connections = connection_cap(live.snapshot().config.limits.max_connections);
    let permits = Arc::new(Semaphore::new(max_connections));
    let lingering = Arc::new(Semaphore::new(LINGERING));
    let mut reserve = spare_fd();
    let closed = Arc::new(Notify::new());
    let mut accept_errors = RateLimitedLog::new(Duration::from_secs(5));
    let mut refusals = RateLimitedLog::new(Duration::from_secs(5));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = api.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // At the open-file limit the connection waits in the
                    // backlog; the spare fd lets it be answered with the
                    // documented 503 instead (then the spare is taken again).
                    if at_fd_limit(&error) && let Some(spare) = reserve.take() {
                        drop(spare);
                        let one = tokio::time::timeout(Duration::from_millis(10), api.accept());
                        if let Ok(Ok((tcp, _))) = one.await {
                            refuse(tcp, &lingering);
                        }
                        reserve = spare_fd();
                    }
                    // Wait for a connection to close (or 100 ms), then accept
                    // again, instead of spinning.
                    if let Some(count) = accept_errors.hit() {
                        warn!(%error, count, "accept failed: at the open-file limit? \
                            idle and half-sent connections close after [limits] idle_timeout \
                            and header_read_timeout");
                    }
                    tokio::select! {
                        () = closed.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = &mut shutdown => break,
                    }
                    // A freed fd goes to the spare first, so the next
                    // client at the limit can be refused too.
                    if reserve.is_none() {
                        reserve = spare_fd();
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if reserve.is_none() {
            reserve = spare_fd();
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if let Some(count) = refusals.hit() {
                warn!(
                    max_connections,
                    count, "connection refused with 503: at [limits] max_connections"
                );
            }
            refuse(tcp, &lingering);
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%peer, %error, "could not disable Nagle");
        }
        let reset = ResetHandle::default();
        let state = ConnState::new(Arc::clone(&closed));
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
        let (builder, drain, tls) = (builder.clone(), draining.clone(), tls.clone());
        let metrics = Arc::clone(&metrics);
        // The proxy stays on the multi-threaded runtime: its upstream pool is
        // shared, so on shards a pooled connection's task would live on the
        // shard that opened it and every proxied stream could cross threads
        // (first tokens at 4,000 proxied streams were 4x later at the p99).
        let on_shards = live.snapshot().config.upstream.is_none();
        crate::shards::spawn_connection(on_shards, tcp, move |tcp| async move {
            let limits = || live.snapshot().config.limits;
            let ended = match tls {
                None => {
                    let io = ClientIo::new(tcp, Some(reset), Arc::clone(&state));
                    let connection = builder.serve_connection(TokioIo::new(io), service);
                    connection::watch(connection.into_owned(), state, limits, Some(drain)).await
                }
                // Boxed: inline, a TLS connection's state (the handshake's and
                // rustls's) made every connection's future 7.7 KiB instead of
                // 4.0, and an idle plain-HTTP stream 31.7 KiB instead of 26.7.
                Some(tls) => {
                    Box::pin(async move {
                        let wrap = |tcp| ClientIo::new(tcp, Some(reset), Arc::clone(&state));
                        let timeout = limits().header_read_timeout;
                        match tls.accept(tcp, wrap, timeout).await {
                            Ok(stream) => {
                                metrics.tls_handshake("ok");
                                let connection =
                                    builder.serve_connection(TokioIo::new(stream), service);
                                let connection = connection.into_owned();
                                connection::watch(connection, state, limits, Some(drain)).await
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
            drop(permit);
        });
    }
    drop(api);
    draining.cancel();
    info!(?grace, "shutting down: no new connections; waiting for responses in flight");
    // Each connection holds a permit until it ends: all of them back means
    // every connection has finished (or been dropped).
    let all_permits = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let all_done = permits.acquire_many(all_permits);
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

/// Bytes an HTTP/2 stream may have queued for a client that does not read.
pub(crate) const H2_SEND_BUFFER: usize = 64 * 1024;
/// HTTP/2 streams open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub(crate) const H2_MAX_STREAMS: u32 = 200;

/// A file descriptor kept open to be given up at the open-file limit, so
/// that one waiting connection can be accepted and refused with a 503.
fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Whether `error` is the process or system running out of file descriptors.
fn at_fd_limit(error: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        matches!(Errno::from_io_error(error), Some(Errno::MFILE | Errno::NFILE))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = error;
        false
    }
}

/// Refused connections whose request is read and dropped after the 503, at
/// most, and for how long and how much each.
const LINGERING: usize = 32;
const LINGER_TIME: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 64 * 1024;

/// Answers a connection over the cap with a 503 (a non-blocking write into
/// a fresh socket's buffer) and closes it. Closing a socket whose request is
/// still unread sends a TCP reset, which can reach the client before it has
/// read the 503 (a POST's body is usually there already): so the write side
/// is shut first and what the client sent is read and dropped, for at most
/// [`LINGER_TIME`] and [`LINGER_BYTES`], by at most [`LINGERING`] refusals
/// at once (past that, the socket is closed at once).
fn refuse(tcp: TcpStream, lingering: &Arc<Semaphore>) {
    const BODY: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"sluice is at [limits] max_connections; retry later"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.try_write(response.as_bytes());
    let Ok(permit) = Arc::clone(lingering).try_acquire_owned() else { return };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tcp;
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        let drain = async {
            while left > 0 {
                match tcp.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => left = left.saturating_sub(read),
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        drop(permit);
    });
}

/// `wanted`, lowered to what the open-file limit leaves room for (a few
/// dozen fds are kept for listeners, the upstream pool, the config and logs).
fn connection_cap(wanted: usize) -> usize {
    const RESERVED: u64 = 64;
    #[cfg(target_os = "linux")]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(limit) = limit {
            let room = usize::try_from(limit.saturating_sub(RESERVED).max(1)).unwrap_or(usize::MAX);
            if room < wanted {
                info!(
                    wanted,
                    open_file_limit = limit,
                    cap = room,
                    "[limits] max_connections lowered to fit the open-file limit"
                );
                return room;
            }
        }
    }
    wanted
}

/// Raises the soft limit on open files to the hard limit, so that thousands
/// of streams do not run into a default of 1,024. Returns the limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            if let Err(error) = setrlimit(Resource::Nofile, limit) {
                debug!(%error, "could not raise the open-file limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(target_os = "linux"))]
    None
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
