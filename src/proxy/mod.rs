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

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Request, Response};
use tokio::time::Instant;
use tracing::warn;

pub use records::SseRecords;
pub use upstream::{ClientError, UpstreamClient, UpstreamError, cause_chain, strip_hop_by_hop};

use crate::config::Config;
use crate::dialect::Dialect;
use crate::handler::{Planned, inject, shaped_response};
use crate::response::{self, Body};
use crate::shape::{Arrival, Pacer, Shaper};
use crate::sse::SseSplitter;

/// Header marking a response that sluice made because the upstream failed.
pub const ERROR_HEADER: &str = "x-sluice-error";

/// Sends `request` to the upstream and shapes the answer by `config`'s
/// profile and `planned`'s fault.
pub async fn forward(
    upstream: &UpstreamClient,
    request: Request<Incoming>,
    config: &Config,
    planned: Planned,
    arrival: Instant,
) -> Response<Body> {
    let dialect = Dialect::for_path(request.uri().path());
    if let Some(fault) = &planned.plan.fault {
        return inject(fault, dialect, planned.number, &planned.request_id);
    }
    let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
    let response = match upstream.send(request).await {
        Ok(response) => response,
        Err(error) => {
            warn!(request = planned.number, %error, "upstream failed");
            return upstream_error(&error, dialect, &planned.request_id);
        }
    };
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    head.version = hyper::Version::default();
    let timing = config.profile.timing;
    let settings = upstream.settings();
    if is_event_stream(&head.headers) {
        head.headers.remove(CONTENT_LENGTH);
        let splitter = SseSplitter::new(dialect.classifier(), settings.max_event_size);
        let shaped =
            Shaper::new(SseRecords::new(body, splitter), Pacer::new(timing), Arrival::WhenReceived);
        return shaped_response(head, shaped, config.head).await;
    }
    if settings.delay_non_sse && timing.first_token_delay > Duration::ZERO {
        // Added to the upstream's own time to its head, as for a first token.
        tokio::time::sleep(timing.first_token_delay).await;
    }
    let _ = arrival;
    Response::from_parts(head, body.map_err(Into::into).boxed_unsync())
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
