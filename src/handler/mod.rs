//! One request, from arrival to response.
//!
//! Every shaped request goes through [`App::admit`] at its arrival: route
//! (first match wins), profile, control headers, request numbers and the
//! seeded fault draw. Then the source runs, the mock (`mock`) or the
//! upstream ([`crate::proxy`]), and [`reply`] applies the head policy and the
//! fault:
//!
//! ```text
//! arrival ─▶ admit (route, profile, plan) ─▶ http fault? answer it
//!         ─▶ source: mock reply (instant) | upstream (SSE records)
//!         ─▶ Shaper (timing + stream fault) ─▶ head policy ─▶ client
//! ```
//!
//! `GET /__sluice/health` is answered by sluice itself in both modes. A
//! request reads the live config once, at arrival ([`Live::snapshot`]), and
//! keeps that snapshot to the end, so reloads never touch it.

mod mock;
pub mod reply;
pub mod stream_body;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::admin::metrics::{Metrics, OpenStream};
use crate::config::{Profile, parse_fault_header};
use crate::dialect::Dialect;
use crate::live::{Live, Snapshot};
use crate::mock::text::random_id;
use crate::proxy;
use crate::response::{self, Body};
use crate::route::BodyFacts;
use crate::shape::plan::request_rng;
use crate::shape::{Fault, FaultPlan, RequestClock};
use crate::sse::SseRecord;

pub use reply::{ResetHandle, shaped_response};
pub use stream_body::{BodyParts, StreamEnd};

/// Header naming the fault sluice injected into a response.
pub const FAULT_HEADER: &str = "x-sluice-fault";
/// Header naming the route that served a request.
pub const ROUTE_HEADER: &str = "x-sluice-route";
/// Request header picking a profile (when `[control] headers = true`).
pub const PROFILE_CONTROL: &str = "x-sluice-profile";
/// Request header forcing a fault (when `[control] headers = true`).
pub const INJECT_CONTROL: &str = "x-sluice-inject";
/// sluice's own request headers: read by the sluice they reach, and never
/// forwarded upstream, so a chain of sluices (a proxy in front of a mock)
/// applies a header-driven fault once, not once per hop.
pub const CONTROL_HEADERS: [&str; 2] = [PROFILE_CONTROL, INJECT_CONTROL];
/// The path sluice answers itself in both modes (Docker's health check).
pub const OWN_HEALTH_PATH: &str = "/__sluice/health";

/// Header naming the config version that served a request.
pub const CONFIG_HEADER: &str = "x-sluice-config";

/// State shared by every connection.
#[derive(Debug)]
pub struct App {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    seed: u64,
    started: Instant,
    requests: AtomicU64,
    active_controlled: Arc<AtomicUsize>,
    end_streams: StreamEnd,
}

/// What was decided for a request at its arrival.
#[derive(Debug)]
pub struct Admitted {
    /// Its number since start (0, 1, ...), the key of its random stream.
    pub number: u64,
    /// Its random stream, for whatever the source draws next.
    pub rng: ChaCha8Rng,
    /// The route that took it.
    pub route: String,
    /// The profile it gets.
    pub profile: Arc<Profile>,
    /// The fault to inject, if any.
    pub plan: FaultPlan,
    /// The id of responses sluice makes itself.
    pub request_id: String,
    /// Held while a header-driven fault is in flight.
    pub guard: Option<ControlGuard>,
    /// The config version that serves it.
    pub version: String,
    /// Counts it in `sluice_open_streams` from admission to the end of its response.
    pub open: Option<OpenStream>,
}

impl Admitted {
    /// Adds `x-sluice-route`, and `x-sluice-fault` when `fault_applies`.
    pub fn mark(&self, headers: &mut hyper::HeaderMap, fault_applies: bool) {
        if let Ok(route) = HeaderValue::from_str(&self.route) {
            headers.insert(ROUTE_HEADER, route);
        }
        if let Ok(version) = HeaderValue::from_str(&self.version) {
            headers.insert(CONFIG_HEADER, version);
        }
        if let (true, Some(fault)) = (fault_applies, &self.plan.fault)
            && let Ok(label) = HeaderValue::from_str(&fault.label())
        {
            headers.insert(FAULT_HEADER, label);
        }
    }
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

/// Counts one header-driven fault in flight; dropped when its response is done.
#[derive(Debug)]
pub struct ControlGuard(Arc<AtomicUsize>);

impl Drop for ControlGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl App {
    /// Serves the live config; `seed` keys every random draw; once
    /// `end_streams` is ended, every stream in flight ends at its next event
    /// boundary.
    pub fn new(live: Arc<Live>, metrics: Arc<Metrics>, seed: u64, end_streams: StreamEnd) -> Self {
        Self {
            live,
            metrics,
            seed,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            active_controlled: Arc::new(AtomicUsize::new(0)),
            end_streams,
        }
    }

    /// The live config.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers one request. Never fails: every problem becomes a response.
    pub async fn handle(&self, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let arrival = Instant::now();
        let snapshot = self.live.snapshot(); // once, at arrival
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mode = if snapshot.upstream.is_some() { "proxy" } else { "mock" };
        // Counts the request as `client_gone` if its client leaves (this
        // future is dropped) before it is answered.
        let mut unanswered = Unanswered { metrics: &self.metrics, mode, answered: false };
        let response = if path == OWN_HEALTH_PATH {
            unanswered.answered = true;
            return Ok(reply::health());
        } else if let Some(upstream) = &snapshot.upstream {
            proxy::forward(self, &snapshot, upstream, request, arrival).await
        } else {
            mock::serve(self, &snapshot, request, arrival).await
        };
        let headers = response.headers();
        let route = headers.get(ROUTE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("none");
        let status = response.status();
        let outcome = if headers.contains_key(FAULT_HEADER) {
            "fault"
        } else if headers.contains_key(proxy::ERROR_HEADER) {
            "upstream_error"
        } else if status.is_success() {
            "ok"
        } else if status.is_client_error() {
            "client_error"
        } else {
            "error"
        };
        unanswered.answered = true;
        self.metrics.request(route, mode, outcome);
        debug!(%method, %path, status = response.status().as_u16(), "answered");
        Ok(response)
    }

    /// Where a shaper reports how late it released each token.
    pub fn lateness_observer(&self) -> crate::shape::shaper::LatenessObserver {
        let metrics = Arc::clone(&self.metrics);
        Box::new(move |late| metrics.release_lateness(late))
    }

    /// What a stream of this request needs from the app.
    pub fn body_parts(
        &self,
        arrival: Instant,
        reset: Option<ResetHandle>,
        admitted: &mut Admitted,
        farewell: SseRecord,
    ) -> BodyParts {
        BodyParts {
            reset,
            guard: admitted.guard.take(),
            open: admitted.open.take(),
            metrics: Arc::clone(&self.metrics),
            arrival,
            end: self.end_streams.clone(),
            farewell,
        }
    }

    /// Decides everything about a request at its arrival: route, profile,
    /// control headers, numbers, and the fault. A bad control header is a
    /// 400 naming it.
    pub fn admit(
        &self,
        snapshot: &Snapshot,
        head: &Parts,
        body: Option<&BodyFacts>,
        dialect: Dialect,
    ) -> Result<Admitted, Box<Response<Body>>> {
        let route = snapshot.router.select(&head.method, head.uri.path(), &head.headers, body);
        let mut profile = Arc::clone(&route.profile);
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = request_rng(self.seed, number);
        let clock = RequestClock {
            route_request: route.next_request(),
            since_start: self.started.elapsed(),
        };
        let (forced, guard) = match self.control(snapshot, head, &mut profile) {
            Ok(control) => control,
            Err(message) => {
                let request_id = format!("req_{}", random_id(&mut rng));
                return Err(Box::new(response::error_in(
                    dialect,
                    StatusCode::BAD_REQUEST,
                    &message,
                    &request_id,
                )));
            }
        };
        let mut plan = FaultPlan::draw(profile.error_rate, &profile.faults, clock, &mut rng);
        if forced.is_some() {
            plan.fault = forced;
        }
        let request_id = format!("req_{}", random_id(&mut rng));
        let version = snapshot.version.to_string();
        Ok(Admitted {
            number,
            rng,
            route: route.name.clone(),
            profile,
            plan,
            request_id,
            guard,
            version,
            open: Some(self.metrics.stream_opened()),
        })
    }

    /// Applies the control headers, when enabled: `x-sluice-profile` swaps the
    /// profile, `x-sluice-inject` forces a fault (at most `max_active` at once).
    fn control(
        &self,
        snapshot: &Snapshot,
        head: &Parts,
        profile: &mut Arc<Profile>,
    ) -> Result<(Option<Fault>, Option<ControlGuard>), String> {
        let control = snapshot.config.control;
        if !control.headers {
            return Ok((None, None));
        }
        // A value that is not visible ASCII is refused, not ignored: a test
        // that meant to inject a fault must not pass silently without it.
        let header = |name: &str| -> Result<Option<&str>, String> {
            match head.headers.get(name) {
                None => Ok(None),
                Some(value) => value.to_str().map(|v| Some(v.trim())).map_err(|_| {
                    format!("{name}: the value must be visible ASCII, such as \"stream_error; after_tokens=3\"")
                }),
            }
        };
        if let Some(name) = header(PROFILE_CONTROL)? {
            *profile = snapshot.router.profile(name).ok_or_else(|| {
                format!("{PROFILE_CONTROL}: no profile named {name:?} in the sluice config")
            })?;
        }
        let Some(spec) = header(INJECT_CONTROL)? else {
            return Ok((None, None));
        };
        let fault = parse_fault_header(spec).map_err(|error| error.to_string())?;
        let active = self.active_controlled.fetch_add(1, Ordering::AcqRel);
        let guard = ControlGuard(Arc::clone(&self.active_controlled));
        if active >= control.max_active {
            warn!(
                max_active = control.max_active,
                "x-sluice-inject ignored: too many header-driven faults at once"
            );
            return Ok((None, None));
        }
        Ok((Some(fault), Some(guard)))
    }

    /// Counts and logs a fault that is being applied.
    pub fn record_fault(&self, admitted: &Admitted, fault: &Fault) {
        self.metrics.fault(fault.kind());
        info!(fault = %fault.label(), route = %admitted.route, request = admitted.number, config = %admitted.version, "injected fault");
    }
}

/// The extra wait of a `slow_head` fault, if that is the plan.
pub fn slow_head(plan: &FaultPlan) -> Duration {
    match plan.fault {
        Some(Fault::SlowHead { duration }) => duration,
        _ => Duration::ZERO,
    }
}
