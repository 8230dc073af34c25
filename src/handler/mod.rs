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

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::debug;

pub(crate) use crate::app::App;
use crate::metrics::Metrics;
use crate::report::{Answered, Key, Run};
use crate::response::{self, Body};

/// Header naming the fault sluice injected into a response.
pub(crate) const FAULT_HEADER: &str = "x-sluice-fault";
/// Header naming the route that served a request.
pub(crate) const ROUTE_HEADER: &str = "x-sluice-route";
/// The path sluice answers itself in both modes (Docker's health check).
pub(crate) const OWN_HEALTH_PATH: &str = "/__sluice/health";

/// Header naming the config version that served a request.
pub(crate) const CONFIG_HEADER: &str = "x-sluice-config";

/// A request not answered yet: counted as `client_gone` if dropped so.
struct Unanswered<'a> {
    metrics: &'a Metrics,
    run: Arc<Run>,
    mode: &'static str,
    answered: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.metrics.request("none", self.mode, "client_gone");
            let answered = Answered { outcome: "client_gone", ..Answered::default() };
            self.run.answered(Key::none(), &answered, Instant::now());
        }
    }
}

impl App {
    /// Answers one request. Never fails: every problem becomes a response.
    pub(crate) async fn handle(
        &self,
        mut request: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let arrival = Instant::now();
        let snapshot = self.live().snapshot(); // once, at arrival
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mode = if snapshot.upstream.is_some() { "proxy" } else { "mock" };
        // Its run, for every stage that records into it.
        let run = self.runs().for_request(request.headers());
        request.extensions_mut().insert(Arc::clone(&run));
        // Counts the request as `client_gone` if its client leaves (this
        // future is dropped) before it is answered.
        let mut unanswered =
            Unanswered { metrics: self.metrics(), run: Arc::clone(&run), mode, answered: false };
        let mut answer = if path == OWN_HEALTH_PATH {
            unanswered.answered = true;
            return Ok(health());
        } else if let Some(upstream) = &snapshot.upstream {
            // Each mode's future boxed: inline, both made this future 21 KiB,
            // copied whole into the connection's box for every request (a
            // twentieth of the proxy's CPU per pass-through stream).
            Box::pin(proxy::forward(self, &snapshot, upstream, request, arrival)).await
        } else {
            Box::pin(mock::serve(self, &snapshot, request)).await
        };
        unanswered.answered = true;
        let route = answer.route.take().unwrap_or_else(|| "none".to_string());
        self.metrics().request(&route, mode, answer.outcome.label());
        let key = Key {
            route,
            api: answer.report.api,
            phase: answer.report.phase.as_deref().map(str::to_string),
        };
        let answered = Answered { outcome: answer.outcome.label(), ..answer.report.answered };
        run.answered(key, &answered, Instant::now());
        debug!(%method, %path, status = answer.response.status().as_u16(), "answered");
        Ok(answer.response)
    }
}

/// `{"status":"ok"}`.
pub(crate) fn health() -> Response<Body> {
    response::json(StatusCode::OK, r#"{"status":"ok"}"#.to_string(), &exchange::other_request_id())
}
