//! Data-plane shards: the threads the API listener's connections run on,
//! between the accept loop (`server`) and hyper.
//!
//! tokio's multi-threaded scheduler lets any worker run any task, which is
//! what a general server wants and what a paced stream does not: every token
//! is a timer wake-up, and with two workers the wake-ups cross between them
//! (the timer's dispatcher wakes a stream onto its own queue, the other
//! worker is unparked to steal it: futex and eventfd calls, and the task's
//! cache lines move core to core). At 2,000 paced streams on two cores,
//! serving them on shards cost about 6 % less CPU per event than on the
//! multi-threaded runtime (`docs/performance.md`).
//!
//! So the binary serves connections on `N` shards (one per core by default,
//! `--workers`): each a thread with a single-threaded runtime and its own
//! precise timer ([`crate::shape::PreciseTimer`]). A connection is handed to
//! the shard with the fewest open connections when it is accepted and stays
//! there: its tasks, its timer wake-ups and its socket never leave that
//! thread. The accept loop, the admin listener, reloads and signals stay on
//! the main runtime. The proxy's upstream client keeps one connection pool
//! per shard ([`current`] names the shard a thread is), so a proxied stream's
//! upstream side runs on its client's shard too. Without installed shards
//! (the library's tests) a connection is a task on the caller's runtime.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tracing::debug;

static INSTALLED: OnceLock<Shards> = OnceLock::new();

thread_local! {
    /// The index of the shard this thread is, if it is one.
    static THIS_SHARD: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The index of the shard the calling thread is, or `None` off the shards.
pub(crate) fn current() -> Option<usize> {
    THIS_SHARD.with(std::cell::Cell::get)
}

/// How many shards are installed (0 without: the library's tests).
pub(crate) fn installed_count() -> usize {
    INSTALLED.get().map_or(0, |shards| shards.shards.len())
}

/// The shard threads; see the module docs.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
}

#[derive(Debug)]
struct Shard {
    handle: Handle,
    /// Connections open on this shard.
    open: Arc<AtomicUsize>,
}

/// Decrements its shard's count of open connections when the connection ends.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shards {
    /// Starts `count` shard threads (at least one), each with its runtime and
    /// its precise timer (on Linux).
    ///
    /// # Errors
    /// When a thread, a runtime or a timer cannot be started.
    pub fn start(count: usize) -> io::Result<Self> {
        let shards = (0..count.max(1)).map(start_shard).collect::<io::Result<Vec<_>>>()?;
        Ok(Self { shards })
    }

    /// Makes the API listener of every server started from now on serve its
    /// connections on these shards (the binary does this once at start).
    pub fn install(self) {
        let _ = INSTALLED.set(self);
    }

    /// Connections open on each shard, in shard order.
    #[cfg(test)]
    pub(crate) fn open_connections(&self) -> Vec<usize> {
        self.shards.iter().map(|shard| shard.open.load(Ordering::Acquire)).collect()
    }

    /// Runs `future` on shard `index` and gives back its output.
    #[cfg(test)]
    pub(crate) async fn run_on<F>(&self, index: usize, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shard = self.shards.get(index).unwrap_or_else(|| panic!("no shard {index}"));
        shard.handle.spawn(future).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// The shard for a new connection: the one with the fewest open.
    ///
    /// Packing connections onto the first shard until it was busy (by its
    /// thread's CPU time) was tried: no cheaper per event at 2,000 paced
    /// streams on two cores, and first tokens were later at the p99.
    fn pick(&self) -> Option<&Shard> {
        self.shards.iter().min_by_key(|shard| shard.open.load(Ordering::Acquire))
    }

    /// Serves `tcp` with `serve` on the shard [`Self::pick`] chooses. The
    /// socket moves to that shard's reactor (two `epoll_ctl` calls, once per
    /// connection).
    ///
    /// `serve` is called on the shard. Calling it on the accepting thread and
    /// sending only its future was tried: idle streams measured 3 KiB more
    /// each (`scripts/bench.sh`'s idle row), though the task was smaller.
    pub(crate) fn spawn<S, F>(&self, tcp: TcpStream, serve: S)
    where
        S: FnOnce(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(shard) = self.pick() else { return };
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(error) => {
                debug!(%error, "could not move a connection to a shard");
                return;
            }
        };
        shard.open.fetch_add(1, Ordering::AcqRel);
        let open = OpenConnection(Arc::clone(&shard.open));
        shard.handle.spawn(async move {
            let _open = open;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(error) => debug!(%error, "could not register a connection on its shard"),
            }
        });
    }
}

/// Serves `tcp` with `serve`: on the installed shards, or as a task on the
/// current runtime without them.
pub(crate) fn spawn_connection<S, F>(tcp: TcpStream, serve: S)
where
    S: FnOnce(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    match INSTALLED.get() {
        Some(shards) => shards.spawn(tcp, serve),
        None => {
            tokio::spawn(serve(tcp));
        }
    }
}

fn start_shard(index: usize) -> io::Result<Shard> {
    let (ready, started) = mpsc::sync_channel::<io::Result<Handle>>(1);
    std::thread::Builder::new().name(format!("sluice-shard-{index}")).spawn(move || {
        THIS_SHARD.with(|shard| shard.set(Some(index)));
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        runtime.block_on(async move {
            #[cfg(target_os = "linux")]
            match crate::shape::PreciseTimer::start() {
                Ok(timer) => timer.install_on_this_thread(),
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            }

            let _ = ready.send(Ok(Handle::current()));
            // The shard serves what is spawned on it for the life of the process.
            std::future::pending::<()>().await;
        });
    })?;
    let handle =
        started.recv().map_err(|_| io::Error::other("a shard thread ended at start"))??;
    Ok(Shard { handle, open: Arc::new(AtomicUsize::new(0)) })
}

#[cfg(test)]
mod tests {
    //! Real threads and sockets.
    #![allow(clippy::unwrap_used, reason = "tests panic on failure")]

    use std::time::Duration;

    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    /// Waits (up to 5 s) for `open_connections` to equal `want`.
    async fn wait_for(shards: &Shards, want: &[usize]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while shards.open_connections() != want {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", shards.open_connections());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_shard_and_run_on_its_thread() {
        let shards = Shards::start(2).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ran_on, mut threads) = tokio::sync::mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            let (tcp, _) = listener.accept().await.unwrap();
            let ran_on = ran_on.clone();
            shards.spawn(tcp, move |mut tcp| async move {
                let name = std::thread::current().name().map(str::to_string);
                // Each gate made here is on the shard's own timer.
                let gate_timer = crate::shape::timer::this_thread_has_its_own_timer();
                ran_on.send((name, gate_timer)).unwrap();
                // Held until the client hangs up.
                let _ = tcp.read(&mut [0u8; 1]).await;
            });
        }
        wait_for(&shards, &[2, 2]).await;
        let mut names = Vec::new();
        for _ in 0..4 {
            let (name, own_timer) = threads.recv().await.unwrap();
            assert!(own_timer, "a shard has a timer of its own");
            names.push(name.unwrap());
        }
        names.sort();
        assert_eq!(names, ["sluice-shard-0", "sluice-shard-0", "sluice-shard-1", "sluice-shard-1"]);
        clients.truncate(1);
        wait_for(&shards, &[1, 0]).await;
        drop(clients);
        wait_for(&shards, &[0, 0]).await;
    }
}
