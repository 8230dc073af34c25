//! Building responses: the body type every handler returns, and the
//! provider-shaped error and JSON responses.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::dialect::Dialect;

/// Errors a response body can end with (a proxied upstream failing mid-stream).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response sluice sends.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A whole body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// A JSON response with a request id in Anthropic's header (`request-id`).
pub(crate) fn json(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    json_in(Dialect::Anthropic, status, body, request_id)
}

/// A JSON response with a request id in `dialect`'s header (`request-id` or
/// `x-request-id`).
pub(crate) fn json_in(
    dialect: Dialect,
    status: StatusCode,
    body: String,
    request_id: &str,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(dialect.request_id_header(), id);
    }
    if let Some((name, value)) = dialect.error_headers(status.as_u16())
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        headers.insert(name, value);
    }
    response
}
