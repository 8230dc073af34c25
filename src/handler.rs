//! One request, from arrival to response. In mock mode, route by method and
//! path, then for `POST /v1/messages` run the pipeline of DESIGN.md:
//!
//! ```text
//! arrival ─▶ plan (seeded draw) ─▶ read body ─▶ fault? answer it ─▶ validate
//!        ─▶ mock reply (instant source) ─▶ Shaper ─▶ head policy ─▶ client
//! ```
//!
//! In proxy mode every method and path goes to [`proxy::forward`], which runs
//! the same plan, shaper and head policy on the upstream's SSE stream.
//! `GET /__sluice/health` is answered by sluice itself in both modes.
//!
//! Every response on an API path is provider-shaped, errors included, so the
//! official SDKs raise the same exceptions they would against the real API.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::http::response::Parts;
use hyper::{Method, Request, Response, StatusCode};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::config::{Config, HeadTiming};
use crate::dialect::Dialect;
use crate::mock::request::Endpoint;
use crate::mock::text::random_id;
use crate::mock::{MessagesRequest, Reply};
use crate::proxy::{self, ClientError, UpstreamClient};
use crate::response::{self, Body, BoxError, REQUEST_ID};
use crate::shape::plan::request_rng;
use crate::shape::{Arrival, Fault, FaultPlan, HttpFault, Pacer, Shaper};
use crate::sse::SseRecord;

/// Header naming the fault sluice injected into a response.
pub const FAULT_HEADER: &str = "x-sluice-fault";

/// The path sluice answers itself in both modes (Docker's health check).
pub const OWN_HEALTH_PATH: &str = "/__sluice/health";

/// State shared by every connection.
#[derive(Debug)]
pub struct App {
    config: Arc<Config>,
    seed: u64,
    requests: AtomicU64,
    upstream: Option<UpstreamClient>,
}

/// What was decided for a request at its arrival.
#[derive(Debug)]
pub struct Planned {
    /// Its number since start (0, 1, ...), the key of its random stream.
    pub number: u64,
    /// Its random stream, for whatever the source draws next.
    pub rng: ChaCha8Rng,
    /// The fault to inject, if any.
    pub plan: FaultPlan,
    /// The id of responses sluice makes itself.
    pub request_id: String,
}

impl App {
    /// Serves `config` (proxy mode when it has an upstream); `seed` keys
    /// every random draw.
    ///
    /// # Errors
    /// [`ClientError`] when the upstream's TLS settings are unusable.
    pub fn new(config: Config, seed: u64) -> Result<Self, ClientError> {
        let upstream = config.upstream.as_ref().map(UpstreamClient::new).transpose()?;
        Ok(Self { config: Arc::new(config), seed, requests: AtomicU64::new(0), upstream })
    }

    /// Takes the request's number, draws its plan. Called once, at arrival.
    fn plan(&self, config: &Config) -> Planned {
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = request_rng(self.seed, number);
        let profile = &config.profile;
        let plan = FaultPlan::draw(profile.error_rate, &profile.faults, &mut rng);
        let request_id = format!("req_{}", random_id(&mut rng));
        Planned { number, rng, plan, request_id }
    }

    /// Answers one request. Never fails: every problem becomes a response.
    pub async fn handle(&self, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let arrival = Instant::now();
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        if path == OWN_HEALTH_PATH {
            return Ok(health());
        }
        if let Some(upstream) = &self.upstream {
            let config = Arc::clone(&self.config); // this request's snapshot, taken at arrival
            let planned = self.plan(&config);
            return Ok(proxy::forward(upstream, request, &config, planned, arrival).await);
        }
        let response = match (&method, path.as_str()) {
            (&Method::POST, "/v1/messages") => self.messages(request, arrival).await,
            (&Method::POST, "/v1/messages/count_tokens") => self.count_tokens(request).await,
            (&Method::GET | &Method::HEAD, "/health") => health(),
            (_, "/v1/messages" | "/v1/messages/count_tokens") => {
                method_not_allowed(&method, &path, "POST")
            }
            (_, "/health") => method_not_allowed(&method, &path, "GET"),
            _ => response::error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no route for {method} {path}: sluice mock serves POST /v1/messages, \
                     POST /v1/messages/count_tokens and GET /health"
                ),
                &other_request_id(),
            ),
        };
        debug!(%method, %path, status = response.status().as_u16(), "answered");
        Ok(response)
    }

    async fn messages(&self, request: Request<Incoming>, arrival: Instant) -> Response<Body> {
        let config = Arc::clone(&self.config); // this request's snapshot, taken at arrival
        let Planned { number, mut rng, plan, request_id } = self.plan(&config);
        let profile = &config.profile;

        let body = match read_body(request, config.max_request_body).await {
            Ok(body) => body,
            Err(response) => return response(&request_id),
        };
        if let Some(fault) = &plan.fault {
            return inject(fault, Dialect::Anthropic, number, &request_id);
        }
        let parsed = match MessagesRequest::parse(&body, Endpoint::Messages) {
            Ok(parsed) => parsed,
            Err(invalid) => {
                return response::error(StatusCode::BAD_REQUEST, &invalid.0, &request_id);
            }
        };

        let reply = Reply::generate(&parsed, profile.tokens_per_response, &mut rng);
        let message = (!parsed.stream).then(|| reply.to_message());
        let source = stream::iter(reply.into_events().map(Ok::<_, BoxError>));
        let shaped =
            Shaper::new(source, Pacer::new(profile.timing), Arrival::AtRequestStart(arrival));
        match message {
            Some(message) => {
                // A non-streaming reply takes as long as the stream would have.
                shaped.for_each(|_| async {}).await;
                response::json(StatusCode::OK, message.to_string(), &request_id)
            }
            None => {
                let mut head = Response::new(()).into_parts().0;
                let headers = &mut head.headers;
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream; charset=utf-8"),
                );
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                if let Ok(id) = HeaderValue::from_str(&request_id) {
                    headers.insert(REQUEST_ID, id);
                }
                shaped_response(head, shaped, config.head).await
            }
        }
    }

    async fn count_tokens(&self, request: Request<Incoming>) -> Response<Body> {
        let request_id = other_request_id();
        let body = match read_body(request, self.config.max_request_body).await {
            Ok(body) => body,
            Err(response) => return response(&request_id),
        };
        match MessagesRequest::parse(&body, Endpoint::CountTokens) {
            Ok(parsed) => response::json(
                StatusCode::OK,
                serde_json::json!({"input_tokens": parsed.input_tokens}).to_string(),
                &request_id,
            ),
            Err(invalid) => response::error(StatusCode::BAD_REQUEST, &invalid.0, &request_id),
        }
    }
}

/// A request id for responses outside the seeded pipeline.
fn other_request_id() -> String {
    format!("req_{}", random_id(&mut rand::rng()))
}

/// Sends `head` and streams `shaped`. With [`HeadTiming::FirstToken`] the
/// head waits until the first content event is released (or the stream ends
/// or fails first), and goes out together with it and the events before it.
pub async fn shaped_response<S>(head: Parts, shaped: S, timing: HeadTiming) -> Response<Body>
where
    S: Stream<Item = Result<SseRecord, BoxError>> + Send + 'static,
{
    let mut shaped = Box::pin(shaped);
    let mut released = Vec::new();
    if timing == HeadTiming::FirstToken {
        while let Some(item) = shaped.next().await {
            let done = item.as_ref().map_or(true, |record| record.kind.is_content());
            released.push(item);
            if done {
                break;
            }
        }
    }
    let frames = stream::iter(released).chain(shaped).map_ok(|record| Frame::data(record.raw));
    Response::from_parts(head, BodyExt::boxed_unsync(StreamBody::new(frames)))
}

/// Answers with an injected fault, logged with its request number.
pub fn inject(fault: &Fault, dialect: Dialect, number: u64, request_id: &str) -> Response<Body> {
    let label = fault.label();
    info!(fault = %label, request = number, "injected fault");
    match fault {
        Fault::Http(http) => http_fault(http, &label, dialect, request_id),
    }
}

type Refusal = Box<dyn FnOnce(&str) -> Response<Body> + Send>;

/// Reads the whole body, refusing one over `limit` bytes (413) before or while
/// reading it.
async fn read_body(request: Request<Incoming>, limit: u64) -> Result<Bytes, Refusal> {
    let too_large = move |request_id: &str| {
        response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body is larger than {limit} bytes; raise max_request_body in the sluice config to accept it"
            ),
            request_id,
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Box::new(too_large));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(request.into_body(), limit_usize).collect().await {
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

/// The response of an injected HTTP fault: provider body, `retry-after`
/// headers when configured, and the `x-sluice-fault` marker.
fn http_fault(
    fault: &HttpFault,
    label: &str,
    dialect: Dialect,
    request_id: &str,
) -> Response<Body> {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = fault.message.as_deref().unwrap_or_else(|| dialect.default_message(fault.status));
    let body = dialect.error_body(fault.status, message, request_id);
    let mut response = response::json(status, body, request_id);
    let headers = response.headers_mut();
    if let Ok(label) = HeaderValue::from_str(label) {
        headers.insert(FAULT_HEADER, label);
    }
    if let Some(after) = fault.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(after)));
        headers.insert(
            "retry-after-ms",
            HeaderValue::from(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    response
}

/// `retry-after` is whole seconds: round up, so a client never retries early.
fn retry_after_seconds(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

fn health() -> Response<Body> {
    response::json(StatusCode::OK, r#"{"status":"ok"}"#.to_string(), &other_request_id())
}

fn method_not_allowed(method: &Method, path: &str, allowed: &'static str) -> Response<Body> {
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

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn a_fault_is_marked_and_carries_retry_headers() {
        let fault = HttpFault {
            status: 429,
            retry_after: Some(Duration::from_millis(1500)),
            message: None,
        };
        let response = http_fault(&fault, "http; status=429", Dialect::Anthropic, "req_1");
        assert_eq!(response.status(), 429);
        let headers = response.headers();
        assert_eq!(headers[FAULT_HEADER], "http; status=429");
        assert_eq!(headers[RETRY_AFTER], "2");
        assert_eq!(headers["retry-after-ms"], "1500");
        assert_eq!(headers[REQUEST_ID], "req_1");
    }
}
