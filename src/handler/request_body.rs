//! Reading a request body whole, within its bounds: `max_request_body` bytes
//! and `[limits] body_read_timeout`. The mock reads every body; the proxy only
//! when a route must look inside it to choose.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderMap};

use super::refusal::Refusal;
use crate::config::Config;

/// Reads the whole body, refusing one over `max_request_body` bytes (413)
/// before or while reading it, or one that has not arrived whole within
/// `[limits] body_read_timeout` (408: a client that trickles its body, or
/// stops sending it, must not hold a request open forever).
///
/// # Errors
/// [`Refusal::BodyTooLarge`], [`Refusal::BodyTooSlow`], or
/// [`Refusal::BodyUnreadable`] when the body cannot be read.
pub(crate) async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    config: &Config,
) -> Result<Bytes, Refusal> {
    let limit = config.max_request_body;
    let timeout = config.limits.body_read_timeout;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Refusal::BodyTooLarge { limit });
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let Ok(collected) =
        tokio::time::timeout(timeout, Limited::new(body, limit_usize).collect()).await
    else {
        return Err(Refusal::BodyTooSlow { timeout });
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Refusal::BodyTooLarge { limit })
        }
        Err(error) => {
            Err(Refusal::BodyUnreadable(format!("could not read the request body: {error}")))
        }
    }
}
