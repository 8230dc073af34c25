//! OpenAI Chat Completions and Responses: event classes (`docs/protocols.md` §4)
//! and error bodies (§3.2).
//!
//! ```json
//! {"error":{"message":"...","type":"server_error","param":null,"code":null}}
//! ```
//! The SDKs pick the exception class from the status alone.

use serde::Deserialize;
use serde_json::json;

use crate::sse::{Event, EventKind};

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

/// The provider's usual message for a status.
pub(crate) fn default_message_for_status(status: u16) -> &'static str {
    match status {
        401 => "Incorrect API key provided.",
        404 => "The model does not exist or you do not have access to it.",
        429 => "Rate limit reached for requests. Please try again later.",
        400..=499 => "Invalid request.",
        503 => "The engine is currently overloaded, please try again later.",
        _ => "The server had an error while processing your request.",
    }
}

/// An OpenAI error body.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    let (kind, code) = error_type_and_code(status);
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// An OpenAI error body with a given `type` and `code`.
pub(crate) fn error_body_typed(kind: &str, code: &str, message: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// OpenAI's word for a provider error type given in Anthropic's terms.
pub(crate) fn stream_error_type(error_type: &str) -> &str {
    match error_type {
        "overloaded_error" | "api_error" => "server_error",
        other => other,
    }
}

/// The data of a mid-stream Chat Completions error (`docs/protocols.md` §3.1).
pub(crate) fn stream_error(error_type: &str, message: &str) -> String {
    json!({"error": {"message": message, "type": stream_error_type(error_type), "param": null, "code": null}})
        .to_string()
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
/// starts a tool call; one with content, reasoning, refusal or tool
/// arguments is a token; role-only, finish, usage, `[DONE]` and comments are
/// other.
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
        let has_text = [&delta.content, &delta.reasoning_content, &delta.refusal]
            .iter()
            .any(|text| text.as_deref().is_some_and(|t| !t.is_empty()));
        if has_text || !delta.tool_calls.is_empty() {
            kind = EventKind::Content;
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

/// Responses: every `*.delta` is a token; an output item that is a function
/// or custom tool call starts a tool call.
pub(crate) fn classify_responses(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    let name = event.name.map(str::to_owned);
    let parsed = serde_json::from_slice::<ResponsesEvent>(data).ok();
    let kind = name.or_else(|| parsed.as_ref().and_then(|p| p.kind.clone())).unwrap_or_default();
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
            (r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#, EventKind::Content),
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
