//! Reading a request body whole, within its bounds: `max_request_body` bytes
//! and `[limits] body_read_timeout`. The mock reads every body; the proxy only
//! when a route must look inside it to choose.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
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
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let declared = declared.and_then(|length| usize::try_from(length).ok());
    tokio::time::timeout(timeout, gather(body, declared, limit))
        .await
        .unwrap_or(Err(Refusal::BodyTooSlow { timeout }))
}

/// The body's bytes in one buffer, each frame copied in as it arrives and
/// then dropped, so that a large body is held once, not as its frames and
/// then their copy (2x). A body of one frame is not copied at all. The
/// buffer is sized by `content-length` (already within the limit): pages
/// that are never written cost no memory, so a client that declares a large
/// body and sends little costs what it sent.
async fn gather(
    mut body: Incoming,
    declared: Option<usize>,
    limit: usize,
) -> Result<Bytes, Refusal> {
    let too_large = || Refusal::BodyTooLarge { limit: u64::try_from(limit).unwrap_or(u64::MAX) };
    let unreadable = |error: hyper::Error| {
        Refusal::BodyUnreadable(format!("could not read the request body: {error}"))
    };
    let mut first: Option<Bytes> = None;
    let mut whole: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(unreadable)?.into_data() else { continue };
        let held = whole.as_ref().map_or(0, BytesMut::len) + first.as_ref().map_or(0, Bytes::len);
        if held.saturating_add(data.len()) > limit {
            return Err(too_large());
        }
        match (&mut whole, first.take()) {
            (Some(whole), _) => whole.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let capacity = declared.unwrap_or(0).max(earlier.len() + data.len());
                let mut buffer = BytesMut::with_capacity(capacity);
                buffer.extend_from_slice(&earlier);
                buffer.extend_from_slice(&data);
                whole = Some(buffer);
            }
        }
    }
    Ok(match (whole, first) {
        (Some(whole), _) => whole.freeze(),
        (None, first) => first.unwrap_or_default(),
    })
}
