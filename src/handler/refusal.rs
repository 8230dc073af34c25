//! Every answer sluice makes itself instead of a source's: a typed
//! [`Refusal`], turned into a response in the request's dialect in one place
//! ([`Refusal::into_response`]), and the metrics [`Outcome`] of every answer.
//!
//! A refusal can come at any stage of the pipeline: before admission (the
//! body is too large or too slow, no such endpoint), at admission (a bad
//! control header), from the fault plan (an injected HTTP fault), from the
//! mock (an invalid request) or from the upstream (it failed). Whatever the
//! stage, an OpenAI path gets an OpenAI-shaped error and an Anthropic path an
//! Anthropic-shaped one (`docs/protocols.md` §2.5, §3.2).

use std::time::{Duration, SystemTime};

use hyper::header::{ALLOW, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};

use crate::config::Shed;
use crate::dialect::{Dialect, gemini};
use crate::fault::HttpFault;
use crate::proxy::UpstreamError;
use crate::ratelimit::{Limited, headers};
use crate::response::{self, Body};

/// Header marking a response that sluice made because the upstream failed.
pub(crate) const ERROR_HEADER: &str = "x-sluice-error";

/// How an answered request is counted in `sluice_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx answer with no fault applied.
    Ok,
    /// A fault was applied (an injected HTTP fault, a slow head, a stream fault).
    Fault,
    /// Refused for the client's own doing, or a 4xx from the source.
    ClientError,
    /// The upstream failed and sluice answered 502 or 504 for it.
    UpstreamError,
    /// Refused with 429 by `[rate_limits]`.
    RateLimited,
    /// Shed by `[capacity]`: no place in service or in the queue.
    Shed,
    /// A 5xx or other non-2xx from the source.
    Error,
}

impl Outcome {
    /// The outcome of a source's answer with `status` and no fault applied.
    pub(crate) fn of_status(status: StatusCode) -> Self {
        if status.is_success() {
            Self::Ok
        } else if status.is_client_error() {
            Self::ClientError
        } else {
            Self::Error
        }
    }

    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fault => "fault",
            Self::ClientError => "client_error",
            Self::UpstreamError => "upstream_error",
            Self::RateLimited => "rate_limited",
            Self::Shed => "shed",
            Self::Error => "error",
        }
    }
}

/// Why sluice answers a request itself.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The body is larger than `max_request_body` (413).
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body did not arrive whole within `[limits] body_read_timeout` (408).
    BodyTooSlow {
        /// The limit.
        timeout: Duration,
    },
    /// The body could not be read (400).
    BodyUnreadable(String),
    /// An `x-sluice-*` control header is invalid (400).
    BadControlHeader(String),
    /// The mock refuses the request as the provider would (400 naming the field).
    InvalidRequest(String),
    /// No such endpoint (404).
    NotFound(String),
    /// `[replay]`: no cassette matches the request (400 with
    /// `x-sluice-replay: unmatched`; not a 404, which agent clients read as
    /// a model that does not exist).
    NoCassette(String),
    /// The endpoint exists with other methods (405 with `allow`).
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// The methods the endpoint takes.
        allowed: &'static str,
    },
    /// The fault plan injected an HTTP error.
    Injected(HttpFault),
    /// The upstream failed before its head (502, 504, with `x-sluice-error`).
    Upstream(UpstreamError),
    /// Over a `[rate_limits]` limit (429 with `retry-after`, or with
    /// `x-should-retry: false` when it can never fit).
    RateLimited(Limited),
    /// No place in service or in the queue (`[capacity]`): the provider's
    /// overload answer, with `x-sluice-capacity: shed`.
    Shed(Shed),
}

impl Refusal {
    /// How it is counted.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Injected(_) => Outcome::Fault,
            Self::Upstream(_) => Outcome::UpstreamError,
            Self::RateLimited(_) => Outcome::RateLimited,
            Self::Shed(_) => Outcome::Shed,
            Self::BodyTooLarge { .. }
            | Self::BodyTooSlow { .. }
            | Self::BodyUnreadable(_)
            | Self::BadControlHeader(_)
            | Self::InvalidRequest(_)
            | Self::NotFound(_)
            | Self::NoCassette(_)
            | Self::MethodNotAllowed { .. } => Outcome::ClientError,
        }
    }

    /// The response: the error body in `form`'s dialect, its status, and
    /// what headers the kind of refusal carries.
    pub(crate) fn into_response(
        self,
        form: impl Into<ErrorForm>,
        request_id: &str,
    ) -> Response<Body> {
        let form = form.into();
        let dialect = form.dialect;
        let error = |status: StatusCode, message: &str| {
            let body = form.wrap(dialect.error_body(status.as_u16(), message, request_id));
            response::json_in(dialect, status, body, request_id)
        };
        match self {
            Self::BodyTooLarge { limit } => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body is larger than {limit} bytes; raise max_request_body in the sluice config to accept it"
                ),
            ),
            Self::BodyTooSlow { timeout } => error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {timeout:?} ([limits] body_read_timeout)"
                ),
            ),
            Self::BodyUnreadable(message)
            | Self::BadControlHeader(message)
            | Self::InvalidRequest(message) => error(StatusCode::BAD_REQUEST, &message),
            Self::NotFound(message) => error(StatusCode::NOT_FOUND, &message),
            Self::NoCassette(message) => {
                let mut response = error(StatusCode::BAD_REQUEST, &message);
                response.headers_mut().insert(REPLAY_HEADER, HeaderValue::from_static("unmatched"));
                response
            }
            Self::MethodNotAllowed { method, path, allowed } => {
                let mut response = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &format!("method {method} is not allowed on {path}; use {allowed}"),
                );
                response.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
                response
            }
            Self::Injected(fault) => http_fault(&fault, form, request_id),
            Self::Upstream(failure) => {
                let mut response = error(failure.status(), &failure.to_string());
                response
                    .headers_mut()
                    .insert(ERROR_HEADER, HeaderValue::from_static(failure.marker()));
                response
            }
            Self::RateLimited(limited) => rate_limited(&limited, form, request_id),
            Self::Shed(shed) => {
                let mut response = http_fault(&shed_answer(shed, dialect), form, request_id);
                response.headers_mut().insert(CAPACITY_HEADER, HeaderValue::from_static("shed"));
                response
            }
        }
    }
}

/// How a request's errors are written: in its dialect, and for Vertex AI's
/// streams inside a one-element array ([`gemini::errors_in_array`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorForm {
    pub(crate) dialect: Dialect,
    pub(crate) in_array: bool,
}

impl ErrorForm {
    /// The form of errors on `path` in `dialect`.
    pub(crate) fn of(dialect: Dialect, path: &str) -> Self {
        Self { dialect, in_array: dialect == Dialect::Gemini && gemini::errors_in_array(path) }
    }

    fn wrap(self, body: String) -> String {
        if self.in_array { gemini::in_array(&body) } else { body }
    }
}

impl From<Dialect> for ErrorForm {
    fn from(dialect: Dialect) -> Self {
        Self { dialect, in_array: false }
    }
}

/// On a replayed answer (`[replay]`): `unmatched` when no cassette matched.
pub(crate) const REPLAY_HEADER: &str = "x-sluice-replay";

/// On a 429 from sluice's `[rate_limits]`: which bucket refused it
/// (`requests`, `tokens`, `input_tokens` or `output_tokens`).
pub(crate) const RATE_LIMITED_HEADER: &str = "x-sluice-rate-limited";

/// On an answer `[capacity]` made: `shed`.
pub(crate) const CAPACITY_HEADER: &str = "x-sluice-capacity";

/// What a shed request gets, as the injected fault that would answer the
/// same: the provider's own words and status for overload (Anthropic 529
/// `overloaded_error`, OpenAI and Gemini 503, Bedrock's
/// `ThrottlingException`), or its 429.
fn shed_answer(shed: Shed, dialect: Dialect) -> HttpFault {
    let status = match (shed, dialect) {
        // Bedrock throttles a model at capacity (429 is its
        // `ThrottlingException`); its 503 is for outages.
        (Shed::Overloaded, Dialect::Bedrock) | (Shed::RateLimited, _) => 429,
        // Each dialect's own overload: 529 becomes OpenAI's and Gemini's 503.
        (Shed::Overloaded, _) => 529,
    };
    HttpFault::plain(status)
}

/// A `[rate_limits]` 429 in the provider's words (`docs/rate-limits.md`):
/// `retry-after` (whole seconds) and `retry-after-ms`, both rounded up, when
/// the buckets will admit the request; `x-should-retry: false` when they
/// never can. The caller adds the rate-limit headers.
fn rate_limited(limited: &Limited, form: ErrorForm, request_id: &str) -> Response<Body> {
    let dialect = form.dialect;
    let (error_type, message) = headers::refusal_message(dialect, limited);
    let body = match dialect {
        Dialect::Anthropic => {
            crate::dialect::anthropic::error_body(error_type, &message, request_id)
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => crate::dialect::openai::error_body_typed(
            error_type,
            Some("rate_limit_exceeded"),
            &message,
        ),
        Dialect::Gemini => {
            let wait = limited.wait.map(|wait| Duration::from_millis(headers::millis_up(wait)));
            gemini::error_body(429, &message, wait)
        }
        Dialect::Bedrock => crate::dialect::bedrock::error_body(&message),
    };
    let body = form.wrap(body);
    let mut response = response::json_in(dialect, StatusCode::TOO_MANY_REQUESTS, body, request_id);
    let headers = response.headers_mut();
    // sluice's own limiter refused it, not an injected fault and not the
    // upstream: the bucket that did, by its config name.
    headers.insert(RATE_LIMITED_HEADER, HeaderValue::from_static(limited.kind.label()));
    match limited.wait {
        Some(wait) => {
            headers.insert(RETRY_AFTER, HeaderValue::from(headers::seconds_up(wait)));
            headers.insert("retry-after-ms", HeaderValue::from(headers::millis_up(wait)));
            headers.insert("x-should-retry", HeaderValue::from_static("true"));
        }
        None => {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
    }
    response
}

/// The response of an injected HTTP fault: the dialect's body, `retry-after`
/// and `retry-after-ms`, `x-should-retry` and rate-limit headers as configured.
/// The caller adds the `x-sluice-fault` marker.
fn http_fault(fault: &HttpFault, form: ErrorForm, request_id: &str) -> Response<Body> {
    let dialect = form.dialect;
    let (status, body) = dialect.injected_error(
        fault.status,
        fault.error_type.as_deref(),
        fault.message.as_deref(),
        fault.retry_after,
        request_id,
    );
    let body = form.wrap(body);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = response::json_in(dialect, status, body, request_id);
    let headers = response.headers_mut();
    if let Some(after) = fault.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(headers::seconds_up(after)));
        headers.insert("retry-after-ms", HeaderValue::from(headers::millis_up(after)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_fault_carries_the_configured_headers() {
        let fault = HttpFault {
            status: 429,
            retry_after: Some(Duration::from_millis(1500)),
            message: None,
            should_retry: Some(false),
            rate_limit_headers: true,
            error_type: None,
        };
        let response = Refusal::Injected(fault.clone()).into_response(Dialect::Anthropic, "req_1");
        assert_eq!(response.status(), 429);
        let headers = response.headers();
        assert_eq!(headers[RETRY_AFTER], "2");
        assert_eq!(headers["retry-after-ms"], "1500");
        assert_eq!(headers["x-should-retry"], "false");
        assert_eq!(headers["request-id"], "req_1");
        assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
        assert!(headers["anthropic-ratelimit-requests-reset"].to_str().unwrap().ends_with('Z'));

        let openai = Refusal::Injected(fault.clone()).into_response(Dialect::OpenAiChat, "req_1");
        assert_eq!(openai.headers()["x-ratelimit-remaining-requests"], "0");
        assert_eq!(openai.headers()["x-ratelimit-reset-requests"], "1.5s");
        assert_eq!(openai.headers()["x-request-id"], "req_1");

        // A configured error type replaces the status's usual one.
        let quota = HttpFault { error_type: Some("insufficient_quota".into()), ..fault };
        let body = futures_executor_block(
            Refusal::Injected(quota.clone()).into_response(Dialect::OpenAiChat, "req_1"),
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "insufficient_quota");
        assert_eq!(body["error"]["code"], "insufficient_quota");
        // OpenAI's quota wording, not its rate limit's.
        assert_eq!(body["error"]["message"], crate::dialect::openai::QUOTA_MESSAGE);
        // Anthropic has no quota 429: it answers an exhausted balance with a 400.
        let response = Refusal::Injected(quota).into_response(Dialect::Anthropic, "r");
        assert_eq!(response.status(), 400);
        let body: serde_json::Value =
            serde_json::from_slice(&futures_executor_block(response)).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], crate::dialect::anthropic::CREDIT_MESSAGE);
    }

    /// Every status/type pair an injected fault sends is one its provider
    /// sends (the table in `docs/protocols.md` §3.5): OpenAI never answers
    /// 529 (it overloads with a 503 and `server_error`), and a type in one
    /// provider's words is sent in the other's.
    #[test]
    fn an_injected_error_is_sent_as_its_provider_sends_it() {
        let fault = |status: u16, error_type: Option<&str>| HttpFault {
            status,
            retry_after: None,
            message: None,
            should_retry: None,
            rate_limit_headers: false,
            error_type: error_type.map(str::to_string),
        };
        let answer = |fault: HttpFault, dialect: Dialect| {
            let response = Refusal::Injected(fault).into_response(dialect, "req_1");
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&futures_executor_block(response)).unwrap();
            (status, body)
        };
        let openai = |status, error_type| {
            let (status, body) = answer(fault(status, error_type), Dialect::OpenAiChat);
            let error = &body["error"];
            (status, error["type"].clone(), error["code"].clone(), error["message"].clone())
        };
        let text = |s: &str| serde_json::Value::String(s.to_string());
        let null = serde_json::Value::Null;
        let overloaded = text("The server is overloaded or not ready yet.");
        let table = [
            ((529, None), (503, text("server_error"), null.clone(), overloaded.clone())),
            (
                (529, Some("overloaded_error")),
                (503, text("server_error"), null.clone(), overloaded.clone()),
            ),
            (
                (500, Some("api_error")),
                (
                    500,
                    text("server_error"),
                    null.clone(),
                    text("The server had an error while processing your request."),
                ),
            ),
            (
                (429, Some("rate_limit_error")),
                (
                    429,
                    text("requests"),
                    text("rate_limit_exceeded"),
                    text("Rate limit reached for requests. Please try again later."),
                ),
            ),
            (
                (401, Some("authentication_error")),
                (
                    401,
                    text("invalid_request_error"),
                    text("invalid_api_key"),
                    text("Incorrect API key provided."),
                ),
            ),
        ];
        for ((status, error_type), expected) in table {
            assert_eq!(openai(status, error_type), expected, "{status} {error_type:?}");
        }
        let anthropic = |status, error_type| {
            let (status, body) = answer(fault(status, error_type), Dialect::Anthropic);
            (status, body["error"]["type"].clone())
        };
        assert_eq!(anthropic(529, None), (529, text("overloaded_error")));
        assert_eq!(anthropic(529, Some("server_error")), (529, text("overloaded_error")));
        assert_eq!(anthropic(500, Some("server_error")), (500, text("api_error")));
        assert_eq!(anthropic(429, Some("tokens")), (429, text("rate_limit_error")));
    }

    /// Each refusal's status, outcome and error shape, in both dialects.
    #[test]
    fn every_refusal_has_its_status_outcome_and_the_dialects_shape() {
        let cases = [
            (Refusal::BodyTooLarge { limit: 10 }, 413, Outcome::ClientError),
            (Refusal::BodyTooSlow { timeout: Duration::from_secs(1) }, 408, Outcome::ClientError),
            (Refusal::BodyUnreadable("x".into()), 400, Outcome::ClientError),
            (Refusal::BadControlHeader("x".into()), 400, Outcome::ClientError),
            (Refusal::InvalidRequest("x".into()), 400, Outcome::ClientError),
            (Refusal::NotFound("x".into()), 404, Outcome::ClientError),
            (Refusal::NoCassette("x".into()), 400, Outcome::ClientError),
            (
                Refusal::MethodNotAllowed {
                    method: Method::GET,
                    path: "/v1/messages".into(),
                    allowed: "POST",
                },
                405,
                Outcome::ClientError,
            ),
            (
                Refusal::Upstream(UpstreamError::Connect {
                    upstream: "http://up".into(),
                    cause: "refused".into(),
                }),
                502,
                Outcome::UpstreamError,
            ),
        ];
        for (refusal, status, outcome) in cases {
            assert_eq!(refusal.outcome(), outcome, "{refusal:?}");
            let label = format!("{refusal:?}");
            let anthropic = refusal.into_response(Dialect::Anthropic, "req_1");
            assert_eq!(anthropic.status(), status, "{label}");
        }
        let openai = Refusal::BodyTooLarge { limit: 10 }.into_response(Dialect::OpenAiChat, "r");
        let anthropic = Refusal::BodyTooLarge { limit: 10 }.into_response(Dialect::Anthropic, "r");
        let body = |response: Response<Body>| {
            let bytes = futures_executor_block(response);
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        let openai = body(openai);
        assert_eq!(openai["error"]["type"], "invalid_request_error", "{openai}");
        assert!(openai.get("type").is_none(), "OpenAI's shape has no top-level type: {openai}");
        let anthropic = body(anthropic);
        assert_eq!(anthropic["type"], "error", "{anthropic}");
        assert_eq!(anthropic["error"]["type"], "request_too_large", "{anthropic}");
    }

    fn futures_executor_block(response: Response<Body>) -> bytes::Bytes {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(response.into_body().collect()).unwrap().to_bytes()
    }
}
