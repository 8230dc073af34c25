//! The state every connection shares: the live config, the metrics, the
//! seed and the request counter, the rate-limit buckets and verdicts, the
//! capacity pools, the timeline's origin, the recorder, the fleet's store
//! (`[fleet]`), and the signal that ends every stream at shutdown. The server
//! makes one [`App`]; the handler answers requests with it (`App::handle`
//! is in `handler/mod.rs`); the admin endpoints read and change it. It sits
//! below both, so the admin port does not depend on the request path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::capacity::Pools;
use crate::cassette::record::Recorder;
use crate::fleet::Fleet;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::ratelimit::verdict::Verdicts;
use crate::report::Runs;

/// Where `[timeline]` offsets count from: the config's `start`, or an
/// admin call that started (`POST /timeline/start`) or stopped
/// (`DELETE /timeline`) it. The clock in `src/timeline.rs` reads it.
#[derive(Debug, Default)]
pub(crate) struct TimelineClock {
    origin: Mutex<TimelineOrigin>,
    moved: tokio::sync::Notify,
}

/// What offset 0 of the timeline is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TimelineOrigin {
    /// As `[timeline] start` says: the epoch, or not until an admin call.
    #[default]
    Config,
    /// This instant (`POST /timeline/start`).
    Started(Instant),
    /// None: the baseline is in force (`DELETE /timeline`).
    Stopped,
}

impl TimelineClock {
    /// The origin now.
    pub(crate) fn origin(&self) -> TimelineOrigin {
        self.origin.lock().map(|origin| *origin).unwrap_or_default()
    }

    /// Sets the origin and tells the clock's task.
    pub(crate) fn set(&self, origin: TimelineOrigin) {
        if let Ok(mut current) = self.origin.lock() {
            *current = origin;
        }
        self.moved.notify_one();
    }

    /// Told when the origin is set.
    pub(crate) fn moved(&self) -> &tokio::sync::Notify {
        &self.moved
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct App {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    seed: u64,
    started: Instant,
    requests: AtomicU64,
    active_controlled: Arc<AtomicUsize>,
    end_streams: StreamEnd,
    limiter: Arc<Limiter>,
    verdicts: Verdicts,
    /// Each route's `[capacity]` places and queue, kept across reloads.
    pools: Pools,
    /// Where `[timeline]` offsets count from.
    timeline: TimelineClock,
    /// The runs and what each recorded (`GET /runs/{id}/report`).
    runs: Runs,
    /// `[record]`: tapes each proxied exchange, when set.
    recorder: Option<Recorder>,
    /// The last `GET /rate-limits` report and when it was made; held while
    /// one is made, so concurrent pollers wait for it instead of each
    /// walking every bucket set.
    rate_limit_report: tokio::sync::Mutex<Option<(Instant, Arc<serde_json::Value>)>>,
    /// `[fleet]`: the store shared with the other replicas, when set.
    fleet: Option<Arc<Fleet>>,
}

impl App {
    /// Serves the live config; `seed` keys every random draw; once
    /// `end_streams` is ended, every stream in flight ends at its next event
    /// boundary; `recorder` records proxied exchanges.
    pub(crate) fn new(
        live: Arc<Live>,
        metrics: Arc<Metrics>,
        seed: u64,
        end_streams: StreamEnd,
        recorder: Option<Recorder>,
        fleet: Option<Arc<Fleet>>,
    ) -> Self {
        Self {
            live,
            metrics,
            seed,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            active_controlled: Arc::new(AtomicUsize::new(0)),
            end_streams,
            limiter: Arc::new(Limiter::default()),
            verdicts: Verdicts::default(),
            pools: Pools::default(),
            timeline: TimelineClock::default(),
            runs: Runs::default(),
            recorder,
            rate_limit_report: tokio::sync::Mutex::new(None),
            fleet,
        }
    }

    /// The cache of the admin's rate-limit report.
    pub(crate) fn rate_limit_report(
        &self,
    ) -> &tokio::sync::Mutex<Option<(Instant, Arc<serde_json::Value>)>> {
        &self.rate_limit_report
    }

    /// The recorder, when `[record]` is set (proxy mode).
    pub(crate) fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// The fleet, when `[fleet]` is set.
    pub(crate) fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref()
    }

    /// The fleet, when `[fleet]` is set and its store answered last time:
    /// what the request path asks.
    pub(crate) fn fleet_up(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref().filter(|fleet| fleet.is_up())
    }

    /// The live config.
    pub(crate) fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The next request's number (0, 1, ...).
    pub(crate) fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// The seed of every request's random stream.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Where fault windows stand now: time since `epoch` (wall clock, shared
    /// by a fleet), `None` before it; without an epoch, time since start.
    pub(crate) fn window_clock(&self, epoch: Option<std::time::SystemTime>) -> Option<Duration> {
        match epoch {
            Some(epoch) => std::time::SystemTime::now().duration_since(epoch).ok(),
            None => Some(self.started.elapsed()),
        }
    }

    /// Header-driven faults in flight.
    pub(crate) fn active_controlled(&self) -> &Arc<AtomicUsize> {
        &self.active_controlled
    }

    /// The runs.
    pub(crate) fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Where `[timeline]` offsets count from.
    pub(crate) fn timeline(&self) -> &TimelineClock {
        &self.timeline
    }

    /// Each route's `[capacity]` pool.
    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Every `[rate_limits]` bucket, kept across reloads.
    pub(crate) fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// What each client did after being told to wait.
    pub(crate) fn verdicts(&self) -> &Verdicts {
        &self.verdicts
    }

    /// The signal that ends every stream at shutdown.
    pub(crate) fn stream_end(&self) -> &StreamEnd {
        &self.end_streams
    }
}

/// Ends every open stream at its next event boundary when [`end`](Self::end)
/// is called. Cheap on the hot path: a stream checks one atomic per poll and
/// registers its waker once, not per event (a `CancellationToken` takes a
/// lock shared by every stream on each check).
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamEnd(Arc<EndState>);

#[derive(Debug, Default)]
struct EndState {
    ended: AtomicBool,
    waiting: Mutex<Slab<Waker>>,
}

impl StreamEnd {
    /// A signal not yet given.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Ends every stream at its next event boundary, waking the idle ones.
    pub(crate) fn end(&self) {
        self.0.ended.store(true, Ordering::Release);
        let wakers: Vec<Waker> = match self.0.waiting.lock() {
            Ok(mut waiting) => waiting.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Streams registered to be woken at the end (for tests: none stays).
    #[cfg(test)]
    pub(crate) fn registered(&self) -> usize {
        self.0.waiting.lock().map_or(0, |waiting| waiting.len())
    }

    /// Whether [`end`](Self::end) was called.
    pub(crate) fn is_ended(&self) -> bool {
        self.0.ended.load(Ordering::Acquire)
    }

    /// Resolves once [`end`](Self::end) is called: a head still held then
    /// goes out at once, so its stream gets the same clean end as the others.
    pub(crate) async fn ended(&self) {
        let mut watch = EndWatch { end: self.clone(), registered: None };
        std::future::poll_fn(|cx| {
            if watch.poll_ended(cx) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        })
        .await;
    }
}

/// One stream's registration with a [`StreamEnd`].
#[derive(Debug)]
pub(crate) struct EndWatch {
    end: StreamEnd,
    /// The slab key and the waker registered under it.
    registered: Option<(usize, Waker)>,
}

impl EndWatch {
    /// A stream's watch on `end`, not registered yet.
    pub(crate) fn new(end: StreamEnd) -> Self {
        Self { end, registered: None }
    }

    /// Whether [`StreamEnd::end`] was called (without registering).
    pub(crate) fn is_ended(&self) -> bool {
        self.end.is_ended()
    }

    /// Whether the stream must end; otherwise makes sure `cx` is woken when it must.
    pub(crate) fn poll_ended(&mut self, cx: &Context<'_>) -> bool {
        if self.end.is_ended() {
            return true;
        }
        if self.registered.as_ref().is_some_and(|(_, waker)| waker.will_wake(cx.waker())) {
            return false;
        }
        if let Ok(mut waiting) = self.end.0.waiting.lock() {
            if let Some((key, _)) = self.registered.take() {
                waiting.try_remove(key);
            }
            let key = waiting.insert(cx.waker().clone());
            self.registered = Some((key, cx.waker().clone()));
        }
        // `end` may have run between the check above and the registration.
        self.end.is_ended()
    }
}

impl Drop for EndWatch {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take()
            && let Ok(mut waiting) = self.end.0.waiting.lock()
        {
            waiting.try_remove(key);
        }
    }
}
