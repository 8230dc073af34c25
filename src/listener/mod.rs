//! The transport both ports share: a [`Listener`] accepts connections and
//! keeps the rules of the door (a cap on open connections with a policy for
//! when it is full, back-off and a spare fd at the open-file limit, refusals
//! answered with a whole 503), and hands each connection on with its slot and
//! its state ([`connection`]: the client IO, timeouts, the reset switch).
//! [`tls`] adapts an accepted connection to TLS on the connection's own task;
//! [`shards`] are the threads the mock's connections are served on. What is
//! served on a connection is not this module's business: the server module
//! serves the API, the admin module the admin endpoints, each with its own
//! `Listener`.

pub(crate) mod connection;
pub mod shards;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use connection::{ConnState, RateLimitedLog};

/// What a full listener does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Answer 503 with `retry-after: 1` and close (the API port: a load
    /// generator retries, and sluice's own limit must not look like a hang).
    Refuse,
    /// Close the connection idle the longest, and wait up to this long for
    /// its slot (the admin port: idle keep-alives must not lock it out);
    /// with none idle, the new connection is closed.
    ShedIdle(Duration),
}

/// One listening socket and the rules of its door.
pub(crate) struct Listener {
    tcp: TcpListener,
    /// For logs: `"API"` or `"admin"`.
    name: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    when_full: WhenFull,
    /// Cancelled to end every connection at its next boundary (shutdown).
    closing: CancellationToken,
    open: Arc<Open>,
    closed: Arc<Notify>,
    reserve: Option<std::fs::File>,
    lingering: Arc<Semaphore>,
    accept_errors: RateLimitedLog,
    refusals: RateLimitedLog,
}

/// A connection let in, with what it holds while it is open.
pub(crate) struct Accepted {
    pub(crate) tcp: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Its requests in flight and idle time, for timeouts and shedding.
    pub(crate) state: Arc<ConnState>,
    /// Cancelled when the connection should close at its next boundary.
    pub(crate) close: CancellationToken,
    /// Its place under the cap; dropped when the connection ends.
    pub(crate) slot: Slot,
}

/// A connection's place under its listener's cap (and in its list of open
/// connections): given back when dropped.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    listed: Option<(Arc<Open>, usize)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((open, key)) = self.listed.take() {
            open.remove(key);
        }
    }
}

impl Listener {
    /// A listener on `tcp` that lets at most `max` connections in at once
    /// (lowered to fit the open-file limit) and does `when_full` past that;
    /// `closing` ends its connections (a child token each, when shedding).
    pub(crate) fn new(
        tcp: TcpListener,
        name: &'static str,
        max: usize,
        when_full: WhenFull,
        closing: CancellationToken,
    ) -> Self {
        let max = connection_cap(max);
        Self {
            tcp,
            name,
            max,
            permits: Arc::new(Semaphore::new(max)),
            when_full,
            closing,
            open: Arc::new(Open::default()),
            closed: Arc::new(Notify::new()),
            reserve: spare_fd(),
            lingering: Arc::new(Semaphore::new(LINGERING)),
            accept_errors: RateLimitedLog::new(Duration::from_secs(5)),
            refusals: RateLimitedLog::new(Duration::from_secs(5)),
        }
    }

    /// The next connection with room for it. Connections past the cap are
    /// answered here by the [`WhenFull`] policy and never returned. Safe to
    /// cancel (a caller stops accepting by dropping this future).
    pub(crate) async fn accept(&mut self) -> Accepted {
        loop {
            let (tcp, peer) = match self.tcp.accept().await {
                Ok(connection) => connection,
                Err(error) => {
                    self.after_accept_error(&error).await;
                    continue;
                }
            };
            if self.reserve.is_none() {
                self.reserve = spare_fd();
            }
            if let Some(accepted) = self.admit(tcp, peer).await {
                return accepted;
            }
        }
    }

    /// At the open-file limit the connection waits in the backlog; the spare
    /// fd lets it be answered with the documented 503 instead (then the spare
    /// is taken again). Then waits for a connection to close (or 100 ms)
    /// instead of spinning.
    async fn after_accept_error(&mut self, error: &std::io::Error) {
        if at_fd_limit(error)
            && let Some(spare) = self.reserve.take()
        {
            drop(spare);
            let one = tokio::time::timeout(Duration::from_millis(10), self.tcp.accept());
            if let Ok(Ok((tcp, _))) = one.await {
                refuse(tcp, &self.lingering);
            }
            self.reserve = spare_fd();
        }
        if let Some(count) = self.accept_errors.hit() {
            warn!(%error, count, listener = self.name, "accept failed: at the open-file limit? \
                idle and half-sent connections close after [limits] idle_timeout \
                and header_read_timeout");
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), self.closed.notified()).await;
        // A freed fd goes to the spare first, so the next client at the
        // limit can be refused too.
        if self.reserve.is_none() {
            self.reserve = spare_fd();
        }
    }

    /// Lets `tcp` in if there is room (or room is made), else answers it by
    /// the [`WhenFull`] policy.
    async fn admit(&mut self, tcp: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let permit = match (Arc::clone(&self.permits).try_acquire_owned(), self.when_full) {
            (Ok(permit), _) => Some(permit),
            (Err(_), WhenFull::ShedIdle(wait)) if self.open.shed_idle() => {
                let freed = Arc::clone(&self.permits).acquire_owned();
                tokio::time::timeout(wait, freed).await.ok().and_then(Result::ok)
            }
            (Err(_), _) => None,
        };
        let Some(permit) = permit else {
            let count = self.refusals.hit();
            match self.when_full {
                WhenFull::Refuse => {
                    if let Some(count) = count {
                        warn!(
                            max_connections = self.max,
                            count, "connection refused with 503: at [limits] max_connections"
                        );
                    }
                    refuse(tcp, &self.lingering);
                }
                WhenFull::ShedIdle(_) => {
                    if let Some(count) = count {
                        warn!(
                            count,
                            max = self.max,
                            listener = self.name,
                            "connection refused: too many open, none idle"
                        );
                    }
                    drop(tcp);
                }
            }
            return None;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%peer, %error, "could not disable Nagle");
        }
        let state = ConnState::new(Arc::clone(&self.closed));
        let (close, listed) = match self.when_full {
            WhenFull::Refuse => (self.closing.clone(), None),
            WhenFull::ShedIdle(_) => {
                let close = self.closing.child_token();
                let key = self.open.add(Arc::clone(&state), close.clone());
                (close, key.map(|key| (Arc::clone(&self.open), key)))
            }
        };
        Some(Accepted { tcp, peer, state, close, slot: Slot { _permit: permit, listed } })
    }

    /// Stops accepting; what is left waits for the open connections.
    pub(crate) fn close(self) -> Closed {
        Closed { permits: self.permits, max: self.max }
    }
}

/// A listener that no longer accepts.
pub(crate) struct Closed {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Closed {
    /// Completes when every connection it let in has ended (each holds its
    /// slot until then).
    pub(crate) async fn all_ended(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

/// The connections open now, so that an idle one can be shed for a new one.
#[derive(Debug, Default)]
struct Open {
    connections: std::sync::Mutex<slab::Slab<(Arc<ConnState>, CancellationToken)>>,
}

impl Open {
    fn add(&self, state: Arc<ConnState>, close: CancellationToken) -> Option<usize> {
        self.connections.lock().ok().map(|mut open| open.insert((state, close)))
    }

    fn remove(&self, key: usize) {
        if let Ok(mut open) = self.connections.lock() {
            open.try_remove(key);
        }
    }

    /// Closes the connection idle the longest (none in flight), if any.
    fn shed_idle(&self) -> bool {
        let Ok(open) = self.connections.lock() else { return false };
        let idlest = open
            .iter()
            .filter_map(|(_, (state, close))| {
                let idle = state.idle_since()?;
                Some((state.opened() + Duration::from_nanos(idle), close))
            })
            .filter(|(_, close)| !close.is_cancelled())
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, close)) => {
                close.cancel();
                true
            }
            None => false,
        }
    }
}

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
