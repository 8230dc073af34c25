//! Amazon Bedrock's runtime API (`docs/protocols.md` §8): its paths, what
//! each event-stream frame is for timing, and its errors.
//!
//! A model's operation is in the path, `/model/{modelId}/{operation}`, the
//! id percent-encoded when it is an ARN. Streams are AWS event streams
//! ([`crate::framing::event_stream`]): `ConverseStream` sends one frame an
//! event, each payload the event's flat member (`contentBlockDelta`:
//! `{"contentBlockIndex", "delta"}`); `InvokeModelWithResponseStream` sends
//! `chunk` frames whose `bytes` are the base64 of the model's own stream
//! event (an Anthropic model's Messages events).
//!
//! Errors before a stream are the status, an `x-amzn-ErrorType` header
//! naming the exception and a `{"message"}` body, which the SDKs map to
//! their exception classes; in a stream, an exception frame
//! (`:message-type: exception`, `:exception-type: throttlingException`).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::framing::{Event, EventKind};

/// Bedrock's runtime operations on a model.
pub(crate) const OPERATIONS: [&str; 4] =
    ["converse", "converse-stream", "invoke", "invoke-with-response-stream"];

/// The model id (percent-decoded) and the operation a path names.
pub(crate) fn model_of(path: &str) -> Option<(Cow<'_, str>, &str)> {
    let (model, operation) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    if model.is_empty() || !OPERATIONS.contains(&operation) {
        return None;
    }
    let model = percent_encoding::percent_decode_str(model).decode_utf8().ok()?;
    Some((model, operation))
}

/// The exception Bedrock answers `status` with, and the status it sends:
/// Bedrock has no 529; overload is `ServiceUnavailableException`, 503.
pub(crate) fn exception_for(status: u16, error_type: Option<&str>) -> (&'static str, u16) {
    match (status, error_type) {
        (529, _) | (_, Some("overloaded_error")) => ("ServiceUnavailableException", 503),
        (429, _)
        | (_, Some("rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens")) => {
            ("ThrottlingException", 429)
        }
        (403, _) => ("AccessDeniedException", 403),
        (404, _) => ("ResourceNotFoundException", 404),
        (408 | 504, _) => ("ModelTimeoutException", 408),
        (424, _) => ("ModelErrorException", 424),
        (503, _) => ("ServiceUnavailableException", 503),
        (400..=499, _) | (_, Some("invalid_request_error")) => {
            ("ValidationException", if status < 400 { 400 } else { status })
        }
        _ => ("InternalServerException", if status < 500 { 500 } else { status }),
    }
}

/// Bedrock's usual message for an exception, when a fault gives none.
pub(crate) fn default_message(exception: &str) -> &'static str {
    match exception {
        "ThrottlingException" => "Too many requests, please wait before trying again.",
        "ServiceUnavailableException" => "Bedrock is unable to process your request.",
        "ValidationException" => "The provided request is not valid.",
        "AccessDeniedException" => {
            "You don't have access to the model with the specified model ID."
        }
        "ResourceNotFoundException" => {
            "Could not resolve the foundation model from the specified model identifier."
        }
        "ModelTimeoutException" => {
            "Model has timed out in processing the request. Try your request again."
        }
        "ModelErrorException" => "The model returned an error.",
        _ => "The server encountered an error processing your request.",
    }
}

/// The `x-amzn-ErrorType` value that names `exception`, as Bedrock sends it.
pub(crate) fn error_type_header(exception: &str) -> String {
    format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/")
}

/// A `chunk` frame (Invoke's stream) carrying one of the model's own events,
/// `json`, in base64; an Anthropic `message_stop` gets the invocation
/// metrics Bedrock adds to it.
pub(crate) fn chunk(json: &[u8], input_tokens: u64, output_tokens: u64) -> bytes::Bytes {
    let data = match serde_json::from_slice::<Value>(json) {
        Ok(mut stop) if stop["type"] == "message_stop" => {
            stop["amazon-bedrock-invocationMetrics"] = json!({"inputTokenCount": input_tokens,
                "outputTokenCount": output_tokens, "invocationLatency": 0, "firstByteLatency": 0});
            stop.to_string().into_bytes()
        }
        _ => json.to_vec(),
    };
    let payload = json!({"bytes": BASE64.encode(&data)}).to_string();
    crate::framing::event_stream::event("chunk", payload.as_bytes())
}

/// An error body: `{"message": ...}`.
pub(crate) fn error_body(message: &str) -> String {
    json!({"message": message}).to_string()
}

/// The exception frame's type for a mid-stream error of `error_type` (in
/// Anthropic's or OpenAI's words): the stream's own exception members.
pub(crate) fn stream_exception(error_type: &str) -> &'static str {
    match exception_for(500, Some(error_type)).0 {
        "ServiceUnavailableException" => "serviceUnavailableException",
        "ThrottlingException" => "throttlingException",
        "ValidationException" => "validationException",
        "ModelTimeoutException" => "modelTimeoutException",
        "InternalServerException" if error_type == "api_error" => "internalServerException",
        _ => "modelStreamErrorException",
    }
}

#[derive(Deserialize)]
struct Delta {
    delta: Option<DeltaBody>,
}

#[derive(Deserialize)]
struct DeltaBody {
    text: Option<String>,
    #[serde(rename = "toolUse")]
    tool_use: Option<Value>,
    #[serde(rename = "reasoningContent")]
    reasoning: Option<Reasoning>,
}

#[derive(Deserialize)]
struct Reasoning {
    text: Option<String>,
}

#[derive(Deserialize)]
struct Start {
    start: Option<StartBody>,
}

#[derive(Deserialize)]
struct StartBody {
    #[serde(rename = "toolUse")]
    tool_use: Option<Value>,
}

#[derive(Deserialize)]
struct Chunk {
    bytes: Option<String>,
}

/// Timing class of a frame (its `:event-type` as the name, its payload as
/// the data): a `contentBlockDelta` with text or tool input is a token, with
/// reasoning text a thinking token; a `contentBlockStart` of a `toolUse`
/// starts a call; an Invoke `chunk` is classified as the model's own event
/// it carries (an Anthropic model's); the rest is other.
pub(crate) fn classify(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    match event.name {
        Some("contentBlockDelta") => {
            let Ok(Delta { delta: Some(delta) }) = serde_json::from_slice::<Delta>(data) else {
                return EventKind::Other;
            };
            if delta.text.is_some_and(|t| !t.is_empty()) || delta.tool_use.is_some() {
                EventKind::Content
            } else if delta.reasoning.and_then(|r| r.text).is_some_and(|t| !t.is_empty()) {
                EventKind::Thinking
            } else {
                EventKind::Other
            }
        }
        Some("contentBlockStart") => match serde_json::from_slice::<Start>(data) {
            Ok(Start { start: Some(StartBody { tool_use: Some(_) }) }) => EventKind::ToolStart,
            _ => EventKind::Other,
        },
        Some("chunk") => {
            let Ok(Chunk { bytes: Some(encoded) }) = serde_json::from_slice::<Chunk>(data) else {
                return EventKind::Other;
            };
            let Ok(inner) = BASE64.decode(encoded) else {
                return EventKind::Other;
            };
            super::anthropic::classify(&Event { name: None, data: Some(Cow::Owned(inner)) })
        }
        _ => EventKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, data: &str) -> EventKind {
        classify(&Event { name: Some(name), data: Some(Cow::Borrowed(data.as_bytes())) })
    }

    #[test]
    fn frames_are_classified() {
        assert_eq!(
            kind("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            EventKind::Content
        );
        assert_eq!(
            kind(
                "contentBlockDelta",
                r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\""}}}"#
            ),
            EventKind::Content
        );
        assert_eq!(
            kind(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hm"}}}"#
            ),
            EventKind::Thinking
        );
        assert_eq!(
            kind(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"s"}}}"#
            ),
            EventKind::Other
        );
        assert_eq!(
            kind(
                "contentBlockStart",
                r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#
            ),
            EventKind::ToolStart
        );
        assert_eq!(kind("messageStart", r#"{"role":"assistant"}"#), EventKind::Other);
        assert_eq!(kind("messageStop", r#"{"stopReason":"end_turn"}"#), EventKind::Other);
        let inner =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        let chunk = json!({"bytes": BASE64.encode(inner)}).to_string();
        assert_eq!(kind("chunk", &chunk), EventKind::Content);
        assert_eq!(kind("chunk", r#"{"bytes":"not base64!"}"#), EventKind::Other);
    }

    #[test]
    fn the_path_names_the_model_and_the_operation() {
        assert_eq!(
            model_of("/model/anthropic.claude-sonnet-4-5-v1:0/converse-stream"),
            Some((Cow::Borrowed("anthropic.claude-sonnet-4-5-v1:0"), "converse-stream"))
        );
        let arn = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.claude/invoke";
        let (model, operation) = model_of(arn).unwrap();
        assert_eq!(model, "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude");
        assert_eq!(operation, "invoke");
        assert_eq!(model_of("/model/m/other"), None);
        assert_eq!(model_of("/v1/messages"), None);
    }

    #[test]
    fn errors_have_bedrocks_exceptions() {
        assert_eq!(exception_for(529, None), ("ServiceUnavailableException", 503));
        assert_eq!(exception_for(429, None), ("ThrottlingException", 429));
        assert_eq!(exception_for(500, Some("rate_limit_error")), ("ThrottlingException", 429));
        assert_eq!(exception_for(400, None), ("ValidationException", 400));
        assert_eq!(exception_for(500, None), ("InternalServerException", 500));
        assert_eq!(stream_exception("overloaded_error"), "serviceUnavailableException");
        assert_eq!(stream_exception("rate_limit_error"), "throttlingException");
        assert_eq!(stream_exception("api_error"), "internalServerException");
        assert_eq!(
            error_type_header("ThrottlingException"),
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
    }
}
