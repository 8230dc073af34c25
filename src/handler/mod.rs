//! One request, from arrival to response.
//!
//! [`App::handle`] takes a snapshot of the live config at the request's
//! arrival and hands the request to its mode: [`mock`] or [`proxy`]. Both
//! build an [`exchange::Exchange`], which admits the request (route,
//! profile, control headers, seeded fault plan), answers an injected HTTP
//! fault or a [`refusal::Refusal`] in the request's dialect, or shapes the
//! source's records and holds the head:
//!
//! ```text
//! arrival ─▶ Exchange::begin (route, profile, plan) ─▶ http fault? answer it
//!         ─▶ source: mock reply (instant) | upstream (SSE records)
//!         ─▶ Exchange::stream: Shaper (timing + stream fault) ─▶ head held ─▶ ShapedBody
//! ```
//!
//! Each mode returns an [`exchange::Answer`], whose outcome is counted here.
//! `GET /__sluice/health` is answered by sluice itself in both modes. A
//! request reads the live config once, at arrival ([`Live::snapshot`]), and
//! keeps that snapshot to the end, so reloads never touch it.
//!
//! Within the handler, imports between files point one way: `mock` and
//! `proxy` use `exchange`, `refusal` and `request_body`; `exchange` uses
//! `control`, `refusal` and `stream_body`; each may use [`App`] and the header
//! names from this file, which only dispatches to `mock` and `proxy`.

mod control;
pub(crate) mod exchange;
mod mock;
mod proxy;
pub(crate) mod refusal;
mod request_body;
pub(crate) mod stream_body;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::debug;

use crate::cassette::record::Recorder;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::ratelimit::verdict::Verdicts;
use crate::response::{self, Body};

pub(crate) use stream_body::StreamEnd;

/// Header naming the fault sluice injected into a response.
pub(crate) const FAULT_HEADER: &str = "x-sluice-fault";
/// Header naming the route that served a request.
pub(crate) const ROUTE_HEADER: &str = "x-sluice-route";
/// The path sluice answers itself in both modes (Docker's health check).
pub(crate) const OWN_HEALTH_PATH: &str = "/__sluice/health";

/// Header naming the config version that served a request.
pub(crate) const CONFIG_HEADER: &str = "x-sluice-config";

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
    /// `[record]`: tapes each proxied exchange, when set.
    recorder: Option<Recorder>,
    /// The last `GET /rate-limits` report and when it was made; held while
    /// one is made, so concurrent pollers wait for it instead of each
    /// walking every bucket set.
    rate_limit_report: tokio::sync::Mutex<Option<(Instant, Arc<serde_json::Value>)>>,
}

/// A request not answered yet: counted as `client_gone` if dropped so.
struct Unanswered<'a> {
    metrics: &'a Metrics,
    mode: &'static str,
    answered: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.metrics.request("none", self.mode, "client_gone");
        }
    }
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
            recorder,
            rate_limit_report: tokio::sync::Mutex::new(None),
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

    /// The live config.
    pub(crate) fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers one request. Never fails: every problem becomes a response.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let arrival = Instant::now();
        let snapshot = self.live.snapshot(); // once, at arrival
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mode = if snapshot.upstream.is_some() { "proxy" } else { "mock" };
        // Counts the request as `client_gone` if its client leaves (this
        // future is dropped) before it is answered.
        let mut unanswered = Unanswered { metrics: &self.metrics, mode, answered: false };
        let answer = if path == OWN_HEALTH_PATH {
            unanswered.answered = true;
            return Ok(health());
        } else if let Some(upstream) = &snapshot.upstream {
            proxy::forward(self, &snapshot, upstream, request, arrival).await
        } else {
            mock::serve(self, &snapshot, request).await
        };
        unanswered.answered = true;
        let route = answer.route.as_deref().unwrap_or("none");
        self.metrics.request(route, mode, answer.outcome.label());
        debug!(%method, %path, status = answer.response.status().as_u16(), "answered");
        Ok(answer.response)
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

/// `{"status":"ok"}`.
pub(crate) fn health() -> Response<Body> {
    response::json(StatusCode::OK, r#"{"status":"ok"}"#.to_string(), &exchange::other_request_id())
}
