//! Proxy mode: every request goes to the upstream, and what comes back is
//! shaped on its way to the client, through the same [`Exchange`] as the
//! mock's replies.
//!
//! ```text
//! request ─▶ Exchange::begin ─▶ HTTP fault? answered (the upstream is never called)
//!         ─▶ upstream (crate::proxy: pooled, TLS, h1/h2) ─▶ head
//!             events: body ─▶ Records (split by its framing, classified)
//!                    ─▶ Recording::events (taped and read ahead on a task,
//!                    when [record]) ─▶ [usage watch, when [rate_limits]
//!                    settle output] ─▶ Exchange::stream
//!             other: body passed through (Recording::body); Exchange::whole
//!                    holds the head first_token_delay (configurable)
//! ```
//!
//! Recording is a phase beside the others ([`Recording`]: start, head,
//! events or body), a no-op without `[record]`.
//!
//! Bodies stream both ways without buffering. An event no fault touches is
//! written byte-for-byte, so with no fault planned the client receives
//! exactly the upstream's bytes. Dropping the client's response (it left)
//! drops the upstream response, which closes or resets the upstream stream.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response};
use tokio::time::Instant;
use tracing::warn;

use super::control::CONTROL_HEADERS;
use super::exchange::{Answer, Delivery, Exchange};
use super::refusal::{ErrorForm, Refusal};
use super::request_body::read_body;
use crate::cassette::record::Recording;
use crate::dialect::{Dialect, StreamSoFar};
use crate::live::Snapshot;
use crate::proxy::{Records, UpstreamClient, UpstreamError, strip_hop_by_hop};
use crate::ratelimit::usage::SettleOnUsage;
use crate::route::BodyFacts;
use crate::shape::head::HeadHold;

/// Sends `request` to the upstream and shapes the answer by the profile and
/// fault decided at its arrival.
pub(crate) async fn forward(
    app: &super::App,
    snapshot: &Snapshot,
    upstream: &UpstreamClient,
    request: Request<Incoming>,
    arrival: Instant,
) -> Answer {
    let path = request.uri().path().to_owned();
    let dialect = Dialect::for_path(&path);
    let (mut head, body) = request.into_parts();
    let recorder = app.recorder();
    // The body streams through untouched unless a route must read it to
    // choose, or it is recorded.
    let (body, facts, read) = if snapshot.router.needs_body() || recorder.is_some() {
        match read_body(body, &head.headers, &snapshot.config).await {
            Ok(bytes) => {
                let facts = BodyFacts::read_request(&path, &bytes);
                let whole = Full::new(bytes.clone()).map_err(|never| match never {}).boxed_unsync();
                (whole, Some(facts), bytes)
            }
            Err(refusal) => return Answer::unrouted(refusal, ErrorForm::of(dialect, &path)),
        }
    } else {
        (body.map_err(Into::into).boxed_unsync(), None, bytes::Bytes::new())
    };
    // The stages' futures are boxed: inline, their states did not share
    // space, and this future was 10 KiB, copied whole when it was boxed.
    let begun =
        Box::pin(Exchange::begin(app, snapshot, &head, facts.as_ref(), dialect, arrival)).await;
    let mut exchange = match begun {
        Ok(exchange) => match Box::pin(exchange.enter_service()).await {
            Ok(exchange) => exchange,
            Err(answer) => return *answer,
        },
        Err(answer) => return *answer,
    };
    // sluice's own headers stay here: the run a request names is this sluice's.
    // (One pass over the names first: most requests carry none of them.)
    if head.headers.keys().any(|name| name.as_str().starts_with("x-sluice-")) {
        for name in CONTROL_HEADERS.into_iter().chain([crate::report::RUN_HEADER]) {
            head.headers.remove(name);
        }
    }
    let mut recording = Recording::start(recorder, &head, &read, arrival);
    let sent = upstream.send(Request::from_parts(head, body)).await;
    let response = match sent.and_then(|response| refuse_upgrade(upstream, response)) {
        Ok(response) => response,
        Err(failure) => return exchange.refuse(Refusal::Upstream(failure)),
    };
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    head.version = hyper::Version::default();
    recording.head(&head);
    let settings = upstream.settings();
    let framing = head
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|content_type| dialect.stream_framing(&path, content_type));
    let event_stream = framing.is_some();
    let compressed = head
        .headers
        .get(CONTENT_ENCODING)
        .is_some_and(|encoding| !encoding.as_bytes().eq_ignore_ascii_case(b"identity"));
    if compressed && event_stream {
        warn!(
            upstream = upstream.label(),
            "the upstream compressed an event stream although sluice asked for identity; it is \
             passed through whole, without its delays and faults"
        );
    }
    if let (Some(framing), false) = (framing, compressed) {
        head.headers.remove(CONTENT_LENGTH);
        let mut splitter = framing.splitter(dialect.classifier(), settings.max_event_size);
        // Nothing to do after the first text: the rest passes through unread.
        if settings.pass_through
            && recording.is_off()
            && exchange.plans_nothing_after_first_text()
            && splitter.pass_through_after_first_text()
        {
            app.metrics().passed_through();
        }
        let records = Records::new(body, splitter, settings.stream_idle_timeout);
        let records = recording.events(records);
        let hold = HeadHold::upstream(settings.head_hold_bytes, settings.head_hold_time);
        let so_far = StreamSoFar::of(dialect, framing, &path);
        // An upstream's events are not counted: its error event carries no sequence number.
        if let Some(settlement) = exchange.take_settlement() {
            // Output is settled to the usage the stream reports at its end.
            let records = SettleOnUsage::new(records, settlement);
            return Box::pin(exchange.stream(head, records, Delivery::Live, hold, so_far)).await;
        }
        return Box::pin(exchange.stream(head, records, Delivery::Live, hold, so_far)).await;
    }
    // Added to the upstream's own time to its head, as for a first token.
    let (profile, rng) = exchange.profile_and_rng();
    let delay = if settings.delay_non_sse {
        profile.timing.first_token_delay.sample(rng).saturating_add(exchange.prefill())
    } else {
        Duration::ZERO
    };
    exchange.whole(head, recording.body(body.map_err(Into::into)), delay).await
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
