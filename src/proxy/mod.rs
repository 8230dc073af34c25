//! Proxy mode: every request goes to the upstream, and what comes back is
//! shaped on its way to the client.
//!
//! ```text
//! request ─▶ plan ─▶ fault? answer it (the upstream is never called)
//!         ─▶ upstream (pooled, TLS, h1/h2) ─▶ head
//!             SSE:   body ─▶ SseRecords (split, classify) ─▶ Shaper ─▶ head policy ─▶ client
//!             other: body passed through; head held first_token_delay (configurable)
//! ```
//!
//! Bodies stream both ways without buffering. An event no fault touches is
//! written byte-for-byte, so with no fault planned the client receives
//! exactly the upstream's bytes. Dropping the client's response (it left)
//! drops the upstream response, which closes or resets the upstream stream.

mod records;
mod upstream;

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Request, Response};
use tokio::time::Instant;
use tracing::warn;

pub use records::SseRecords;
pub use upstream::{ClientError, UpstreamClient, UpstreamError, cause_chain, strip_hop_by_hop};

use crate::dialect::Dialect;
use crate::handler::reply::{
    HeadHold, farewell, http_fault, other_request_id, read_body, stream_fault,
};
use crate::handler::{App, CONTROL_HEADERS, ResetHandle, shaped_response, slow_head};
use crate::live::Snapshot;
use crate::response::{self, Body};
use crate::route::BodyFacts;
use crate::shape::{Arrival, Fault, Pacer, Shaper};
use crate::sse::SseSplitter;

/// Header marking a response that sluice made because the upstream failed.
pub const ERROR_HEADER: &str = "x-sluice-error";

/// Sends `request` to the upstream and shapes the answer by the profile and
/// fault that [`App::admit`] decided at its arrival.
pub async fn forward(
    app: &App,
    snapshot: &Snapshot,
    upstream: &UpstreamClient,
    request: Request<Incoming>,
    arrival: Instant,
) -> Response<Body> {
    let reset = request.extensions().get::<ResetHandle>().cloned();
    let dialect = Dialect::for_path(request.uri().path());
    let (mut head, body) = request.into_parts();
    // The body streams through untouched unless a route must read it to choose.
    let (body, facts) = if snapshot.router.needs_body() {
        match read_body(body, &head.headers, &snapshot.config).await {
            Ok(bytes) => {
                let facts = BodyFacts::read(&bytes);
                (Full::new(bytes).map_err(|never| match never {}).boxed_unsync(), Some(facts))
            }
            Err(refusal) => return refusal(&other_request_id()),
        }
    } else {
        (body.map_err(Into::into).boxed_unsync(), None)
    };
    let mut admitted = match app.admit(snapshot, &head, facts.as_ref(), dialect) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    if let Some(fault @ Fault::Http(http)) = &admitted.plan.fault {
        // Answered here: the upstream is never called, no tokens are spent.
        app.record_fault(&admitted, fault);
        let mut response = http_fault(http, dialect, &admitted.request_id);
        admitted.mark(response.headers_mut(), true);
        return response;
    }
    for name in CONTROL_HEADERS {
        head.headers.remove(name);
    }
    let sent = upstream.send(Request::from_parts(head, body)).await;
    let response = match sent.and_then(|response| refuse_upgrade(upstream, response)) {
        Ok(response) => response,
        Err(error) => {
            warn!(request = admitted.number, %error, "upstream failed");
            app.metrics().upstream_error(error.marker());
            let mut response = upstream_error(&error, dialect, &admitted.request_id);
            admitted.mark(response.headers_mut(), false);
            return response;
        }
    };
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    head.version = hyper::Version::default();
    let wait = slow_head(&admitted.plan);
    let settings = upstream.settings();
    let timing = admitted.profile.timing;
    if is_event_stream(&head.headers) {
        head.headers.remove(CONTENT_LENGTH);
        let stream_fault = admitted
            .plan
            .fault
            .as_ref()
            .and_then(|f| stream_fault(f, dialect, &admitted.request_id));
        let applies = wait > Duration::ZERO || stream_fault.is_some();
        if let (true, Some(fault)) = (applies, &admitted.plan.fault) {
            app.record_fault(&admitted, fault);
        }
        admitted.mark(&mut head.headers, applies);
        // A slow head: the upstream's events wait in the socket meanwhile.
        tokio::time::sleep(wait).await;
        let splitter = SseSplitter::new(dialect.classifier(), settings.max_event_size);
        let pacer = Pacer::new(timing, admitted.rng.clone());
        let shaped = Shaper::new(
            SseRecords::new(body, splitter, settings.stream_idle_timeout),
            pacer,
            Arrival::WhenReceived,
        )
        .with_fault(stream_fault)
        .with_lateness(app.lateness_observer());
        let goodbye = farewell(dialect, &admitted.request_id);
        let parts = app.body_parts(arrival, reset, &mut admitted, goodbye);
        let hold = HeadHold::upstream(settings);
        return shaped_response(head, shaped, snapshot.config.head, hold, parts).await;
    }
    // Not a stream: only the head can be held (stream faults do not apply).
    let applies = wait > Duration::ZERO;
    if let (true, Some(fault)) = (applies, &admitted.plan.fault) {
        app.record_fault(&admitted, fault);
    }
    admitted.mark(&mut head.headers, applies);
    let delay = if settings.delay_non_sse {
        timing.first_token_delay.sample(&mut admitted.rng)
    } else {
        Duration::ZERO
    };
    // Added to the upstream's own time to its head, as for a first token.
    tokio::time::sleep(wait + delay).await;
    Response::from_parts(head, body.map_err(Into::into).boxed_unsync())
}

/// A `101 Switching Protocols` answer is an upstream protocol error: the
/// proxy forwards HTTP messages, not upgraded connections (WebSocket), and
/// passing a 101 on without its upgrade would leave the client hanging.
fn refuse_upgrade(
    upstream: &UpstreamClient,
    response: Response<Incoming>,
) -> Result<Response<Incoming>, UpstreamError> {
    if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
        return Err(UpstreamError::Request {
            upstream: upstream.label().to_string(),
            cause: "it answered 101 Switching Protocols; sluice does not proxy protocol \
                    upgrades (WebSocket)"
                .to_string(),
        });
    }
    Ok(response)
}

/// `text/event-stream`, with or without parameters.
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// The client's view of an upstream failure: 502 or 504, a provider-shaped
/// body naming the upstream and the cause, and `x-sluice-error`.
fn upstream_error(error: &UpstreamError, dialect: Dialect, request_id: &str) -> Response<Body> {
    let status = error.status();
    let body = dialect.error_body(status.as_u16(), &error.to_string(), request_id);
    let mut response = response::json(status, body, request_id);
    response.headers_mut().insert(ERROR_HEADER, HeaderValue::from_static(error.marker()));
    response
}
