//! The response side of the pipeline: the head policy ([`shaped_response`]),
//! injected HTTP faults, stream faults made concrete for a dialect, and the
//! small local answers (health, 405, 413).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::http::response::Parts;
use hyper::{Method, Response, StatusCode};

use tracing::debug;

use super::stream_body::{BodyParts, ShapedBody};
use crate::config::HeadTiming;
use crate::dialect::Dialect;
use crate::mock::text::random_id;
use crate::response::{self, Body, BoxError};
use crate::shape::{Fault, HttpFault, StreamAction, StreamFault};
use crate::sse::SseRecord;

/// Set by a response whose stream fault is a reset; the connection's I/O
/// then closes with SO_LINGER 0, which sends a TCP RST (HTTP/1.1 only: on
/// HTTP/2 the failed body resets just its stream).
#[derive(Debug, Clone, Default)]
pub struct ResetHandle(pub Arc<AtomicBool>);

impl ResetHandle {
    /// Whether a reset was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Sends `head` and streams `shaped`. With [`HeadTiming::FirstToken`] the
/// head waits until the first content event is released (or the stream ends
/// or fails first), and goes out together with it and the events before it.
/// An [`InjectedReset`](crate::shape::InjectedReset) from the stream resets the connection.
///
/// What is held meanwhile is bounded by `hold`: past its bytes or its time
/// the head goes out with what was held, and the rest of the stream follows
/// as it is released (an upstream that sends only pings, or events of a
/// kind sluice does not know, is then passed through, not buffered).
pub async fn shaped_response<S>(
    head: Parts,
    shaped: S,
    timing: HeadTiming,
    hold: HeadHold,
    parts: BodyParts,
) -> Response<Body>
where
    S: Stream<Item = Result<SseRecord, BoxError>> + Send + 'static,
{
    let mut shaped = Box::pin(shaped);
    let mut released = Vec::new();
    if timing == HeadTiming::FirstToken {
        let deadline = hold.time.map(|time| crate::shape::later(tokio::time::Instant::now(), time));
        let mut held = 0usize;
        loop {
            let next = match deadline {
                None => shaped.next().await,
                Some(deadline) => match tokio::time::timeout_at(deadline, shaped.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        debug!(?hold.time, "no first token yet: head sent without it");
                        break;
                    }
                },
            };
            let Some(item) = next else { break };
            let done = item.as_ref().map_or(true, |record| record.kind.is_content());
            held = held.saturating_add(item.as_ref().map_or(0, |record| record.raw.len()));
            released.push(item);
            if done {
                break;
            }
            if held >= hold.bytes {
                debug!(held, "no first token yet: head sent with what was held");
                break;
            }
        }
    }
    Response::from_parts(head, BodyExt::boxed_unsync(ShapedBody::new(released, shaped, parts)))
}

/// How much a held head may gather before its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadHold {
    /// Bytes of events held at most.
    pub bytes: usize,
    /// Time held at most, from when the source's head was ready; `None`: no limit.
    pub time: Option<Duration>,
}

impl HeadHold {
    /// The mock's: its own events before the first token are a few hundred
    /// bytes, and its first token comes exactly when configured.
    pub const MOCK: Self = Self { bytes: usize::MAX, time: None };

    /// An upstream's, from `[upstream] head_hold_bytes` and `head_hold_time`.
    pub fn upstream(settings: &crate::config::Upstream) -> Self {
        Self { bytes: settings.head_hold_bytes, time: Some(settings.head_hold_time) }
    }
}

/// The event that ends a stream cut short by shutdown: the dialect's error
/// event, so a client can tell it from a complete answer.
pub fn farewell(dialect: Dialect, request_id: &str) -> SseRecord {
    dialect.error_event(
        "api_error",
        "sluice is shutting down; this stream was ended early",
        request_id,
    )
}

/// The stream fault a fault becomes on a stream of `dialect`; `None` for
/// faults that act before the head.
pub fn stream_fault(fault: &Fault, dialect: Dialect, request_id: &str) -> Option<StreamFault> {
    let (after_tokens, action) = match fault {
        Fault::Http(_) | Fault::SlowHead { .. } => return None,
        Fault::StreamError { after_tokens, error_type, message } => (
            *after_tokens,
            StreamAction::ErrorEvent(dialect.error_event(error_type, message, request_id)),
        ),
        Fault::Reset { after_tokens } => (*after_tokens, StreamAction::Reset),
        Fault::Truncate { after_tokens } => (*after_tokens, StreamAction::Truncate),
        Fault::Stall { after_tokens, duration } => (*after_tokens, StreamAction::Stall(*duration)),
        Fault::Malformed { after_tokens } => (*after_tokens, StreamAction::Malformed),
    };
    Some(StreamFault { after_tokens, action })
}

/// The response of an injected HTTP fault: the dialect's body, `retry-after`
/// and `retry-after-ms`, `x-should-retry` and rate-limit headers as configured.
/// The caller adds the `x-sluice-fault` marker.
pub fn http_fault(fault: &HttpFault, dialect: Dialect, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = fault.message.as_deref().unwrap_or_else(|| dialect.default_message(fault.status));
    let mut response = response::error_in(dialect, status, message, request_id);
    let headers = response.headers_mut();
    if let Some(after) = fault.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(after)));
        headers.insert(
            "retry-after-ms",
            HeaderValue::from(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    if let Some(should_retry) = fault.should_retry {
        headers.insert(
            "x-should-retry",
            HeaderValue::from_static(if should_retry { "true" } else { "false" }),
        );
    }
    if fault.rate_limit_headers {
        let reset_in = fault.retry_after.unwrap_or(Duration::from_secs(60));
        insert_all(headers, dialect.rate_limit_headers(SystemTime::now() + reset_in, reset_in));
    }
    response
}

fn insert_all(headers: &mut HeaderMap, pairs: Vec<(&'static str, String)>) {
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// `retry-after` is whole seconds: round up, so a client never retries early.
pub fn retry_after_seconds(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

/// A refusal that still needs its request id.
pub type Refusal = Box<dyn FnOnce(&str) -> Response<Body> + Send>;

/// Reads the whole body, refusing one over `max_request_body` bytes (413)
/// before or while reading it, or one that has not arrived whole within
/// `[limits] body_read_timeout` (408: a client that trickles its body, or
/// stops sending it, must not hold a request open forever).
///
/// # Errors
/// A [`Refusal`]: 413 over the limit, 408 too slow, 400 when the body cannot be read.
pub async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    config: &crate::config::Config,
) -> Result<Bytes, Refusal> {
    let limit = config.max_request_body;
    let timeout = config.limits.body_read_timeout;
    let too_large = move |request_id: &str| {
        response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body is larger than {limit} bytes; raise max_request_body in the sluice config to accept it"
            ),
            request_id,
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Box::new(too_large));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let collected = match tokio::time::timeout(timeout, Limited::new(body, limit_usize).collect())
        .await
    {
        Ok(collected) => collected,
        Err(_) => {
            return Err(Box::new(move |request_id: &str| {
                response::error(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the request body did not arrive within {timeout:?} ([limits] body_read_timeout)"
                    ),
                    request_id,
                )
            }));
        }
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Box::new(too_large)),
        Err(error) => {
            let message = format!("could not read the request body: {error}");
            Err(Box::new(move |request_id: &str| {
                response::error(StatusCode::BAD_REQUEST, &message, request_id)
            }))
        }
    }
}

/// A request id for responses outside the seeded pipeline.
pub fn other_request_id() -> String {
    format!("req_{}", random_id(&mut rand::rng()))
}

/// `{"status":"ok"}`.
pub fn health() -> Response<Body> {
    response::json(StatusCode::OK, r#"{"status":"ok"}"#.to_string(), &other_request_id())
}

/// 405 with `allow`.
pub fn method_not_allowed(method: &Method, path: &str, allowed: &'static str) -> Response<Body> {
    let mut response = response::error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method {method} is not allowed on {path}; use {allowed}"),
        &other_request_id(),
    );
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::REQUEST_ID;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn an_http_fault_carries_the_configured_headers() {
        let fault = HttpFault {
            status: 429,
            retry_after: Some(Duration::from_millis(1500)),
            message: None,
            should_retry: Some(false),
            rate_limit_headers: true,
        };
        let response = http_fault(&fault, Dialect::Anthropic, "req_1");
        assert_eq!(response.status(), 429);
        let headers = response.headers();
        assert_eq!(headers[RETRY_AFTER], "2");
        assert_eq!(headers["retry-after-ms"], "1500");
        assert_eq!(headers["x-should-retry"], "false");
        assert_eq!(headers[REQUEST_ID], "req_1");
        assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
        assert!(headers["anthropic-ratelimit-requests-reset"].to_str().unwrap().ends_with('Z'));

        let openai = http_fault(&fault, Dialect::OpenAiChat, "req_1");
        assert_eq!(openai.headers()["x-ratelimit-remaining-requests"], "0");
        assert_eq!(openai.headers()["x-ratelimit-reset-requests"], "1.5s");
    }
}
