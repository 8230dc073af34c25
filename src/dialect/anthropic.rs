//! Anthropic Messages API: event classes (`docs/protocols.md` §4), error types and
//! error bodies (§2.5).
//!
//! Every error sluice sends on an Anthropic route, whether it answers a bad
//! request or is an injected fault, has the provider's shape, so the official
//! SDKs raise the same exception class they would raise against the real API:
//!
//! ```json
//! {"type":"error","error":{"type":"rate_limit_error","message":"..."},"request_id":"req_..."}
//! ```

use std::sync::LazyLock;

use memchr::memmem;
use serde::Deserialize;
use serde_json::json;

use crate::framing::{Event, EventKind};

/// The `error.type` the real API pairs with an HTTP status. The SDKs choose
/// the exception class from the status; the type is what users read.
pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        405 => "invalid_request_error",
        408 | 504 => "timeout_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The message the real API sends with an injected status, when the config
/// gives none.
pub(crate) fn default_message_for_status(status: u16) -> &'static str {
    match status {
        400 => "Invalid request",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource",
        404 => "Not found",
        408 | 504 => "Request timed out",
        409 => "Conflict",
        413 => "Request exceeds the maximum allowed number of bytes",
        429 => "Number of requests has exceeded your rate limit",
        529 => "Overloaded",
        _ => "Internal server error",
    }
}

/// What the API sends when a balance is exhausted: a 400, never a 429.
pub(crate) const CREDIT_MESSAGE: &str = "Your credit balance is too low to access the Anthropic \
     API. Please go to Plans & Billing to upgrade or purchase credits.";

/// The status, `error.type` and usual message of an injected error of
/// `status`, from a fault's `error_type` when it gives one, in either
/// provider's words (the table in `docs/protocols.md` §3.5). Anthropic has no
/// quota 429: OpenAI's `insufficient_quota` becomes what the API answers when
/// credit runs out, a 400.
pub(crate) fn injected(status: u16, error_type: Option<&str>) -> (u16, &str, &'static str) {
    let usual = default_message_for_status(status);
    match error_type {
        None => (status, error_type_for_status(status), usual),
        Some("insufficient_quota" | "billing_error") => {
            (400, "invalid_request_error", CREDIT_MESSAGE)
        }
        Some("server_error") if status == 529 => (status, "overloaded_error", usual),
        Some("server_error") => (status, "api_error", usual),
        Some("requests" | "tokens" | "rate_limit_exceeded") => (status, "rate_limit_error", usual),
        Some("invalid_api_key") => (status, "authentication_error", usual),
        Some("model_not_found") => (status, "not_found_error", usual),
        Some(other) => (status, other, usual),
    }
}

/// The JSON body of an error response.
pub(crate) fn error_body(error_type: &str, message: &str, request_id: &str) -> String {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_providers_error_types() {
        let table = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ];
        for (status, expected) in table {
            assert_eq!(error_type_for_status(status), expected, "status {status}");
        }
    }

    #[test]
    fn error_body_has_the_provider_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&error_body("overloaded_error", "Overloaded", "req_1")).unwrap();
        assert_eq!(
            body,
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"})
        );
    }
}

/// Timing class of an Anthropic event (`docs/protocols.md` §4): text and
/// tool-argument deltas are tokens, thinking deltas thinking tokens; opening a `tool_use` (or server tool)
/// block starts a tool call; everything else, unknown events included, is
/// other. Only deltas and block starts have their JSON read.
pub(crate) fn classify(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    let name = match event.name {
        Some(name) => name,
        None => return classify_by_type(data),
    };
    match name {
        "content_block_delta" => {
            // The fast path for the real API's compact JSON (one per token on
            // every proxied stream). With the quotes unescaped, these bytes can
            // only be JSON structure, never the inside of a string.
            static DELTA_TYPE: LazyLock<memmem::Finder<'static>> =
                LazyLock::new(|| memmem::Finder::new(br#""delta":{"type":""#));
            let delta = DELTA_TYPE.find(data).map(|at| &data[at + DELTA_TYPE.needle().len()..]);
            match delta {
                Some(kind) if kind.starts_with(b"text_delta\"") => EventKind::Content,
                Some(kind) if kind.starts_with(b"input_json_delta\"") => EventKind::Content,
                Some(kind) if kind.starts_with(b"thinking_delta\"") => EventKind::Thinking,
                _ => classify_by_type(data),
            }
        }
        "content_block_start" => classify_block_start(data),
        _ => EventKind::Other,
    }
}

/// A `content_block_start`: a tool call starts, or another block. The fast
/// path reads the block's type from the real API's compact form (once per
/// block on every proxied stream), `{"type":"content_block_start","index":N,
/// "content_block":{"type":"…"`, and only when the data starts exactly so:
/// then the type read is the top-level block's. Anything else is parsed.
/// Like the delta's fast path, it does not check the rest is valid JSON.
fn classify_block_start(data: &[u8]) -> EventKind {
    const HEAD: &[u8] = br#"{"type":"content_block_start","index":"#;
    const BLOCK: &[u8] = br#","content_block":{"type":""#;
    let block_type = data.strip_prefix(HEAD).and_then(|rest| {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        rest.get(digits..).filter(|_| digits > 0)?.strip_prefix(BLOCK)
    });
    let Some(block_type) = block_type else {
        return classify_by_type(data);
    };
    let is =
        |name: &[u8]| block_type.strip_prefix(name).is_some_and(|rest| rest.first() == Some(&b'"'));
    if is(b"tool_use") || is(b"server_tool_use") || is(b"mcp_tool_use") {
        EventKind::ToolStart
    } else if is(b"text") || is(b"thinking") || is(b"redacted_thinking") {
        EventKind::Other
    } else {
        classify_by_type(data)
    }
}

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: Option<String>,
    delta: Option<Typed>,
    content_block: Option<Typed>,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn classify_by_type(data: &[u8]) -> EventKind {
    let Ok(peek) = serde_json::from_slice::<Peek>(data) else {
        return EventKind::Other;
    };
    let inner = |typed: Option<Typed>| typed.and_then(|t| t.kind).unwrap_or_default();
    match peek.kind.as_deref() {
        Some("content_block_delta") => match inner(peek.delta).as_str() {
            "text_delta" | "input_json_delta" => EventKind::Content,
            "thinking_delta" => EventKind::Thinking,
            _ => EventKind::Other,
        },
        Some("content_block_start") => match inner(peek.content_block).as_str() {
            "tool_use" | "server_tool_use" | "mcp_tool_use" => EventKind::ToolStart,
            _ => EventKind::Other,
        },
        _ => EventKind::Other,
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;
    use crate::framing::Event;
    use proptest::prelude::*;

    proptest! {
        /// The fast path for a block's start gives what parsing gives, for
        /// every block type (known, unknown, prefixes of known ones, with
        /// escapes), index, key order and nesting of the same keys.
        #[test]
        fn a_block_start_is_classified_as_parsing_would(
            block_type in prop_oneof![
                Just("tool_use".to_string()), Just("server_tool_use".to_string()),
                Just("mcp_tool_use".to_string()), Just("text".to_string()),
                Just("thinking".to_string()), Just("redacted_thinking".to_string()),
                Just("tool_use_x".to_string()), Just("tool".to_string()),
                Just("te\\\"xt".to_string()), "[a-z_\"\\\\]{0,12}",
            ],
            index in prop_oneof![Just(String::new()), "[0-9]{1,4}", Just("-1".to_string())],
            order in 0..4usize,
        ) {
            let block = format!(r#"{{"type":"{block_type}","input":{{"content_block":{{"type":"text"}}}}}}"#);
            let data = match order {
                0 => format!(r#"{{"type":"content_block_start","index":{index},"content_block":{block}}}"#),
                1 => format!(r#"{{"index":{index},"type":"content_block_start","content_block":{block}}}"#),
                2 => format!(r#"{{"type":"content_block_start","index":{index},"content_block":{{"input":{{"content_block":{{"type":"tool_use"}}}},"type":"{block_type}"}}}}"#),
                _ => format!(r#"{{"type":"content_block_start","index":{index}, "content_block":{block}}}"#),
            };
            // Valid JSON only: the fast path does not validate what follows the type.
            prop_assume!(serde_json::from_str::<serde_json::Value>(&data).is_ok());
            prop_assert_eq!(classify_block_start(data.as_bytes()), classify_by_type(data.as_bytes()), "{}", data);
        }
    }

    fn kind(raw: &str) -> EventKind {
        classify(&Event::parse(raw.as_bytes()))
    }

    #[test]
    fn every_event_of_a_stream_is_classified() {
        let table = [
            (r#"{"type":"message_start","message":{}}"#, "message_start", EventKind::Other),
            (r#"{"type":"ping"}"#, "ping", EventKind::Other),
            (
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                "content_block_start",
                EventKind::Other,
            ),
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
                "content_block_delta",
                EventKind::Content,
            ),
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"h"}}"#,
                "content_block_delta",
                EventKind::Thinking,
            ),
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#,
                "content_block_delta",
                EventKind::Other,
            ),
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta"}}"#,
                "content_block_delta",
                EventKind::Other,
            ),
            (
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}"#,
                "content_block_start",
                EventKind::ToolStart,
            ),
            (
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use"}}"#,
                "content_block_start",
                EventKind::ToolStart,
            ),
            (
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
                "content_block_delta",
                EventKind::Content,
            ),
            (r#"{"type":"content_block_stop","index":1}"#, "content_block_stop", EventKind::Other),
            (
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
                "message_delta",
                EventKind::Other,
            ),
            (r#"{"type":"message_stop"}"#, "message_stop", EventKind::Other),
            (
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "error",
                EventKind::Other,
            ),
            (r#"{"type":"brand_new_event"}"#, "brand_new_event", EventKind::Other),
            ("not json", "content_block_delta", EventKind::Other),
            // The fast path's bytes inside a string are escaped, so they do not match.
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"\"delta\":{\"type\":\"text_delta\""}}"#,
                "content_block_delta",
                EventKind::Other,
            ),
            // Not compact: the slow path still knows a token.
            (
                r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}"#,
                "content_block_delta",
                EventKind::Content,
            ),
        ];
        for (data, name, expected) in table {
            assert_eq!(
                kind(&format!("event: {name}\ndata: {data}\n\n")),
                expected,
                "{name} {data}"
            );
        }
    }

    #[test]
    fn nameless_events_and_events_without_data() {
        let delta =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(kind(&format!("data: {delta}\n\n")), EventKind::Content);
        assert_eq!(kind("event: content_block_delta\n\n"), EventKind::Other);
        assert_eq!(kind(": keep-alive\n\n"), EventKind::Other);
    }
}
