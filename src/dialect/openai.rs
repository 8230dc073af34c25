//! OpenAI Chat Completions and Responses: event classes (`docs/protocols.md` §4)
//! and error bodies (§3.2).
//!
//! ```json
//! {"error":{"message":"...","type":"server_error","param":null,"code":null}}
//! ```
//! The SDKs pick the exception class from the status alone.

use serde::Deserialize;
use serde_json::json;

use crate::framing::{Event, EventKind};

/// OpenAI's message for an exhausted quota (a 429 that must not be retried).
pub(crate) const QUOTA_MESSAGE: &str = "You exceeded your current quota, please check your plan and \
     billing details. For more information on this error, read the docs: \
     https://platform.openai.com/docs/guides/error-codes/api-errors.";

/// The status OpenAI sends for an injected one: its own overload answer, 503,
/// for Anthropic's 529, a status OpenAI never sends (`docs/protocols.md` §3.5).
pub(crate) fn wire_status(status: u16) -> u16 {
    if status == 529 { 503 } else { status }
}

/// `error.type` and `error.code` the API pairs with a status.
fn error_type_and_code(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        404 => ("invalid_request_error", Some("not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

/// `error.type` and `error.code` for an error of `status`, from a fault's
/// `error_type` when it gives one, in either provider's words (the table in
/// `docs/protocols.md` §3.5); a type neither provider knows is sent as its
/// own type and code.
pub(crate) fn type_and_code(status: u16, error_type: Option<&str>) -> (&str, Option<&str>) {
    match error_type {
        None => error_type_and_code(status),
        Some("overloaded_error" | "api_error" | "server_error" | "timeout_error") => {
            ("server_error", None)
        }
        Some("rate_limit_error" | "requests" | "rate_limit_exceeded") => {
            ("requests", Some("rate_limit_exceeded"))
        }
        Some("tokens") => ("tokens", Some("rate_limit_exceeded")),
        Some("insufficient_quota" | "billing_error") => {
            ("insufficient_quota", Some("insufficient_quota"))
        }
        Some("authentication_error" | "invalid_api_key") => {
            ("invalid_request_error", Some("invalid_api_key"))
        }
        Some("not_found_error" | "model_not_found") => {
            ("invalid_request_error", Some("model_not_found"))
        }
        Some("invalid_request_error" | "permission_error" | "request_too_large") => {
            ("invalid_request_error", None)
        }
        Some(other) => (other, Some(other)),
    }
}

/// The provider's usual message for a status.
pub(crate) fn default_message_for_status(status: u16) -> &'static str {
    match status {
        401 => "Incorrect API key provided.",
        404 => "The model does not exist or you do not have access to it.",
        429 => "Rate limit reached for requests. Please try again later.",
        400..=499 => "Invalid request.",
        503 => "The server is overloaded or not ready yet.",
        _ => "The server had an error while processing your request.",
    }
}

/// The provider's usual message for an error of `status` and `kind` (its `error.type`).
pub(crate) fn default_message(status: u16, kind: &str) -> &'static str {
    match kind {
        "insufficient_quota" => QUOTA_MESSAGE,
        "server_error" if status < 500 => default_message_for_status(500),
        "requests" | "tokens" if status != 429 => default_message_for_status(429),
        _ => default_message_for_status(status),
    }
}

/// An OpenAI error body.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    let (kind, code) = error_type_and_code(status);
    error_body_typed(kind, code, message)
}

/// An OpenAI error body with a given `type` and `code`.
pub(crate) fn error_body_typed(kind: &str, code: Option<&str>, message: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// The data of a mid-stream Chat Completions error (`docs/protocols.md` §3.1).
pub(crate) fn stream_error(error_type: &str, message: &str) -> String {
    let (kind, code) = type_and_code(500, Some(error_type));
    error_body_typed(kind, code, message)
}

/// A failed Responses stream (`docs/protocols.md` §3.3): the `error` event
/// with its fields nested under `error`, as the live API sends it and as
/// both SDKs require to raise, then `response.failed` with the response's
/// `status: "failed"` and its `error`, which clients that follow the
/// lifecycle (Codex, LangChain) act on. `response` is the response so far
/// when the source knows it (the mock); an upstream's is not read, so a
/// proxied stream's `response.failed` names a response of sluice's own.
pub(crate) fn responses_failure(
    error_type: &str,
    message: &str,
    request_id: &str,
    sequence: Option<u64>,
    response: Option<serde_json::Value>,
) -> String {
    let (kind, code) = type_and_code(500, Some(error_type));
    let mut error = json!({"type": "error",
        "error": {"type": kind, "code": code.unwrap_or(kind), "message": message, "param": null}});
    let failed_code =
        if code == Some("rate_limit_exceeded") { "rate_limit_exceeded" } else { "server_error" };
    let mut response = response.unwrap_or_else(|| {
        let id = request_id.strip_prefix("req_").unwrap_or(request_id);
        json!({"id": format!("resp_{id}"), "object": "response", "output": []})
    });
    response["status"] = json!("failed");
    response["error"] = json!({"code": failed_code, "message": message});
    let mut failed = json!({"type": "response.failed", "response": response});
    if let Some(sequence) = sequence {
        error["sequence_number"] = json!(sequence);
        failed["sequence_number"] = json!(sequence.saturating_add(1));
    }
    format!("event: error\ndata: {error}\n\nevent: response.failed\ndata: {failed}\n\n")
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    id: Option<String>,
}

/// Chat Completions: a chunk opening a tool call (it carries the call's `id`)
/// starts a tool call; one with content, refusal or tool arguments is a
/// token; one with only reasoning (`reasoning_content`, as vLLM and other
/// compatible servers stream it) is a thinking token; role-only, finish,
/// usage, `[DONE]` and comments are other.
pub(crate) fn classify_chat(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    let Ok(chunk) = serde_json::from_slice::<ChatChunk>(data) else {
        return EventKind::Other; // [DONE], an error object, anything else
    };
    let mut kind = EventKind::Other;
    for delta in chunk.choices.iter().filter_map(|c| c.delta.as_ref()) {
        if delta.tool_calls.iter().any(|call| call.id.is_some()) {
            return EventKind::ToolStart;
        }
        let given = |text: &Option<String>| text.as_deref().is_some_and(|t| !t.is_empty());
        if given(&delta.content) || given(&delta.refusal) || !delta.tool_calls.is_empty() {
            kind = EventKind::Content;
        } else if given(&delta.reasoning_content) && kind == EventKind::Other {
            kind = EventKind::Thinking;
        }
    }
    kind
}

#[derive(Deserialize)]
struct ResponsesEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    item: Option<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Responses: every `*.delta` is a token, a reasoning one
/// (`response.reasoning_summary_text.delta`, `response.reasoning_text.delta`)
/// a thinking token; an output item that is a function or custom tool call
/// starts a tool call.
pub(crate) fn classify_responses(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    let name = event.name.map(str::to_owned);
    let parsed = serde_json::from_slice::<ResponsesEvent>(data).ok();
    let kind = name.or_else(|| parsed.as_ref().and_then(|p| p.kind.clone())).unwrap_or_default();
    if kind.starts_with("response.reasoning") && kind.ends_with(".delta") {
        return EventKind::Thinking;
    }
    if kind.ends_with(".delta") {
        return EventKind::Content;
    }
    let item = parsed.and_then(|p| p.item).and_then(|i| i.kind).unwrap_or_default();
    if kind == "response.output_item.added"
        && matches!(item.as_str(), "function_call" | "custom_tool_call")
    {
        return EventKind::ToolStart;
    }
    EventKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(data: &str) -> EventKind {
        classify_chat(&Event::parse(format!("data: {data}\n\n").as_bytes()))
    }

    #[test]
    fn chat_chunks_are_classified() {
        let table = [
            (
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
                EventKind::Other,
            ),
            (r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, EventKind::Content),
            (
                r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
                EventKind::Thinking,
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
                EventKind::ToolStart,
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a"}}]}}]}"#,
                EventKind::Content,
            ),
            (r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#, EventKind::Other),
            (r#"{"choices":[],"usage":{"prompt_tokens":1}}"#, EventKind::Other),
            (r#"{"error":{"message":"boom","type":"server_error"}}"#, EventKind::Other),
            ("[DONE]", EventKind::Other),
        ];
        for (data, expected) in table {
            assert_eq!(chat(data), expected, "{data}");
        }
    }

    #[test]
    fn responses_events_are_classified() {
        let kind = |name: &str, data: &str| {
            classify_responses(&Event::parse(format!("event: {name}\ndata: {data}\n\n").as_bytes()))
        };
        assert_eq!(kind("response.created", r#"{"type":"response.created"}"#), EventKind::Other);
        assert_eq!(
            kind(
                "response.output_text.delta",
                r#"{"type":"response.output_text.delta","delta":"Hi"}"#
            ),
            EventKind::Content
        );
        assert_eq!(
            kind(
                "response.output_item.added",
                r#"{"type":"response.output_item.added","item":{"type":"function_call"}}"#
            ),
            EventKind::ToolStart
        );
        assert_eq!(
            kind(
                "response.output_item.added",
                r#"{"type":"response.output_item.added","item":{"type":"message"}}"#
            ),
            EventKind::Other
        );
        assert_eq!(
            kind("response.function_call_arguments.delta", r#"{"delta":"{"}"#),
            EventKind::Content
        );
        assert_eq!(
            kind("response.completed", r#"{"type":"response.completed"}"#),
            EventKind::Other
        );
        assert_eq!(
            kind("response.reasoning_summary_text.delta", r#"{"delta":"hm"}"#),
            EventKind::Thinking
        );
    }

    #[test]
    fn error_bodies_have_the_openai_shape() {
        let body: serde_json::Value = serde_json::from_str(&error_body(429, "slow down")).unwrap();
        assert_eq!(
            body,
            json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        );
        let body: serde_json::Value = serde_json::from_str(&error_body(500, "x")).unwrap();
        assert_eq!(body["error"]["type"], "server_error");
    }
}
