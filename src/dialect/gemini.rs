//! The Gemini API (generativelanguage and Vertex AI, `docs/protocols.md` §7):
//! event classes and error bodies.
//!
//! Every error has Google's shape, so the google-genai SDKs raise their own
//! `APIError` with the code and status they would get from the real API:
//!
//! ```json
//! {"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED","details":[...]}}
//! ```

use serde::Deserialize;
use serde_json::{Value, json};

use crate::framing::{Event, EventKind, Framing};

/// The `error.status` Google pairs with an HTTP code.
pub(crate) fn status_for_code(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        413 => "INVALID_ARGUMENT",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        408 | 504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Google's usual message for a code, when a fault gives none.
pub(crate) fn default_message(code: u16) -> &'static str {
    match code {
        400 => "Request contains an invalid argument.",
        401 => "API key not valid. Please pass a valid API key.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        408 | 504 => "Deadline expired before operation could complete.",
        _ => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
    }
}

/// The code an injected error takes on a Gemini route: Google has no 529,
/// and answers overload with 503 `UNAVAILABLE`. `error_type`, in Anthropic's
/// or OpenAI's words, picks the code when the status does not say more.
pub(crate) fn wire_code(status: u16, error_type: Option<&str>) -> u16 {
    match (status, error_type) {
        (529, _) | (_, Some("overloaded_error")) => 503,
        (_, Some("rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens")) => 429,
        (_, Some("invalid_request_error")) if status < 400 => 400,
        _ => status,
    }
}

/// An error body: `{"error": {"code", "message", "status"}}`, and for a 429
/// the quota and retry details Google sends (`google.rpc.QuotaFailure`,
/// `google.rpc.RetryInfo` with `retryDelay` when a wait is known).
pub(crate) fn error_body(
    code: u16,
    message: &str,
    retry_after: Option<std::time::Duration>,
) -> String {
    let mut error = json!({"code": code, "message": message, "status": status_for_code(code)});
    if code == 429 {
        let mut details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
        })];
        if let Some(wait) = retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0);
            details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{seconds}s")}));
            error["message"] = json!(format!("{message} Please retry in {seconds:.1}s."));
        }
        error["details"] = Value::Array(details);
    }
    json!({"error": error}).to_string()
}

/// The model and the method a path names, under any of Google's bases
/// (`/v1beta`, `/v1`, or Vertex AI's `.../publishers/google`).
pub(crate) fn model_of(path: &str) -> Option<(&str, &str)> {
    let (base, rest) = path.rsplit_once("/models/")?;
    let known_base = matches!(base, "/v1beta" | "/v1" | "/v1alpha")
        || (base.starts_with("/v1") && base.ends_with("/publishers/google"));
    let (model, method) = rest.rsplit_once(':')?;
    (known_base && !model.is_empty() && !model.contains('/') && !method.is_empty())
        .then_some((model, method))
}

/// Whether Google answers errors on `path` as a one-element JSON array:
/// Vertex AI does for `streamGenerateContent` (`[{"error": {...}}]`,
/// `docs/protocols.md` §7), in either framing; the Gemini API never does.
pub(crate) fn errors_in_array(path: &str) -> bool {
    model_of(path).is_some_and(|(_, method)| method == "streamGenerateContent")
        && path.contains("/projects/")
}

/// `body` (an error object) as Vertex AI sends a stream's errors.
pub(crate) fn in_array(body: &str) -> String {
    format!("[{body}]")
}

/// The mid-stream error: a `data:` line whose payload is the error object,
/// which the SDKs raise as `APIError` (`docs/protocols.md` §7).
pub(crate) fn stream_error(code: u16, message: &str) -> String {
    error_body(code, message, None)
}

/// `json` as the last event of a stream in `framing`: an SSE event (with
/// CRLF pairs, as Google's), or the array's last element and its `]`.
/// (Google never sends an AWS event stream; that framing gets the SSE form.)
pub(crate) fn last_element(json: &str, framing: Framing) -> String {
    match framing {
        Framing::Sse | Framing::EventStream => format!("data: {json}\r\n\r\n"),
        Framing::JsonArray => format!(",\r\n{json}]"),
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
}

#[derive(Deserialize)]
struct Candidate {
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(rename = "functionCall")]
    function_call: Option<Value>,
}

/// Timing class of a chunk (each a whole `GenerateContentResponse`): one
/// with a `functionCall` part starts a tool call; one with visible text is a
/// token; one with only `thought` text is a thinking token; the rest (usage
/// alone, an error object, anything else) is other.
pub(crate) fn classify(event: &Event<'_>) -> EventKind {
    let Some(data) = event.data.as_deref() else {
        return EventKind::Other;
    };
    let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
        return EventKind::Other;
    };
    let parts = chunk.candidates.iter().filter_map(|c| c.content.as_ref()).flat_map(|c| &c.parts);
    let mut kind = EventKind::Other;
    for part in parts {
        if part.function_call.is_some() {
            return EventKind::ToolStart;
        }
        match part.text.as_deref() {
            Some(text) if !text.is_empty() && !part.thought => kind = EventKind::Content,
            Some(text) if !text.is_empty() && kind == EventKind::Other => {
                kind = EventKind::Thinking;
            }
            _ => {}
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(data: &str) -> EventKind {
        classify(&Event::parse(format!("data: {data}\n\n").as_bytes()))
    }

    #[test]
    fn chunks_are_classified() {
        let text = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}]}"#;
        let thought = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hm","thought":true}]}}]}"#;
        let call = r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}}]}"#;
        let usage = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP"}],"usageMetadata":{"totalTokenCount":3}}"#;
        let error = r#"{"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}"#;
        assert_eq!(kind(text), EventKind::Content);
        assert_eq!(kind(thought), EventKind::Thinking);
        assert_eq!(kind(call), EventKind::ToolStart);
        assert_eq!(kind(usage), EventKind::Other);
        assert_eq!(kind(error), EventKind::Other);
    }

    #[test]
    fn a_429_carries_quota_and_retry_details() {
        let body: Value = serde_json::from_str(&error_body(
            429,
            "Quota exceeded.",
            Some(std::time::Duration::from_millis(1500)),
        ))
        .unwrap();
        let error = &body["error"];
        assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(error["message"], "Quota exceeded. Please retry in 2.0s.");
        assert_eq!(error["details"][1]["retryDelay"], "2s");
        assert_eq!(wire_code(529, None), 503);
        assert_eq!(wire_code(500, Some("overloaded_error")), 503);
        assert_eq!(status_for_code(503), "UNAVAILABLE");
    }

    #[test]
    fn vertex_streams_answer_errors_in_an_array() {
        let vertex =
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash";
        assert!(errors_in_array(&format!("{vertex}:streamGenerateContent")));
        assert!(errors_in_array(&format!("/v1beta1{}:streamGenerateContent", &vertex[3..])));
        assert!(!errors_in_array(&format!("{vertex}:generateContent")));
        assert!(!errors_in_array("/v1beta/models/gemini-2.5-flash:streamGenerateContent"));
        assert_eq!(in_array(r#"{"error":{}}"#), r#"[{"error":{}}]"#);
    }
}
