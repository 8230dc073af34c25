//! Provider dialects: the wire facts of each API that sluice must get exactly
//! right, kept apart from timing and serving. A dialect answers two questions
//! (`docs/protocols.md` §4, §2.5 and §3.2):
//!
//! - what an SSE event is for timing ([`Dialect::classify`]): a token, the
//!   start of a tool call, or anything else;
//! - what an error looks like ([`Dialect::error_body`]), so injected faults
//!   and sluice's own errors are parsed by the SDKs like the provider's.
//!
//! The dialect is chosen by the request path ([`Dialect::for_path`]).

pub(crate) mod anthropic;
pub(crate) mod bedrock;
pub(crate) mod gemini;
pub(crate) mod openai;

use crate::framing::sse::{encode_data, encode_event};
use crate::framing::{Event, EventKind, Framing, Record};

/// What a source knows of a stream that a mid-stream error ends; only the
/// Responses API's error events use it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSoFar {
    /// The `sequence_number` the error event takes.
    pub(crate) sequence: Option<u64>,
    /// The response so far (`id`, `model`, `created_at`, ...), which
    /// `response.failed` carries.
    pub(crate) response: Option<serde_json::Value>,
    /// The stream's framing: an event that ends it is written in it (a
    /// Gemini array's last element, then its `]`).
    pub(crate) framing: Framing,
    /// Bedrock Invoke: the stream's events are the model's own (Anthropic's
    /// Messages events), each in a `chunk` frame.
    pub(crate) bedrock_invoke: bool,
}

impl StreamSoFar {
    /// What is known of a stream of `dialect` in `framing` for `path`, before
    /// its first event.
    pub(crate) fn of(dialect: Dialect, framing: Framing, path: &str) -> Self {
        let bedrock_invoke = dialect == Dialect::Bedrock
            && bedrock::model_of(path).is_some_and(|(_, op)| op.starts_with("invoke"));
        Self { framing, bedrock_invoke, ..Self::default() }
    }
}

/// A provider API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Anthropic Messages (`/v1/messages`), and the default.
    Anthropic,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAiChat,
    /// OpenAI Responses (`/v1/responses`).
    OpenAiResponses,
    /// Gemini (`/v1beta/models/{model}:generateContent` and its kin, and
    /// Vertex AI's `.../publishers/google/models/...`).
    Gemini,
    /// Amazon Bedrock's runtime (`/model/{modelId}/converse-stream` and its
    /// kin).
    Bedrock,
}

impl Dialect {
    /// Its API's name, as `api` in a route match writes it.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAiChat => "openai-chat",
            Self::OpenAiResponses => "openai-responses",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
        }
    }

    /// The dialect of a request path; unknown paths are treated as Anthropic.
    pub(crate) fn for_path(path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if bedrock::model_of(path).is_some() {
            Self::Bedrock
        } else if is_gemini_path(path) {
            Self::Gemini
        } else if path.ends_with("/chat/completions") {
            Self::OpenAiChat
        } else if path.ends_with("/responses") {
            Self::OpenAiResponses
        } else {
            Self::Anthropic
        }
    }

    /// The framing of a response of this dialect to a request for `path`,
    /// with `content_type`, if it is a stream sluice can split: server-sent
    /// events whatever the dialect, or Gemini's streamed JSON array
    /// (`:streamGenerateContent` without `alt=sse`).
    pub(crate) fn stream_framing(self, path: &str, content_type: &str) -> Option<Framing> {
        Framing::of_content_type(content_type).or_else(|| {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            let array = self == Self::Gemini
                && path.ends_with(":streamGenerateContent")
                && essence.eq_ignore_ascii_case("application/json");
            array.then_some(Framing::JsonArray)
        })
    }

    /// The framing of this dialect's streams.
    pub(crate) fn framing(self) -> Framing {
        match self {
            Self::Anthropic | Self::OpenAiChat | Self::OpenAiResponses | Self::Gemini => {
                Framing::Sse
            }
            Self::Bedrock => Framing::EventStream,
        }
    }

    /// The classifier a splitter applies to each complete event.
    pub(crate) fn classifier(self) -> fn(&Event<'_>) -> EventKind {
        match self {
            Self::Anthropic => anthropic::classify,
            Self::OpenAiChat => openai::classify_chat,
            Self::OpenAiResponses => openai::classify_responses,
            Self::Gemini => gemini::classify,
            Self::Bedrock => bedrock::classify,
        }
    }

    /// An error body in the provider's shape for `status`.
    pub(crate) fn error_body(self, status: u16, message: &str, request_id: &str) -> String {
        match self {
            Self::Anthropic => {
                anthropic::error_body(anthropic::error_type_for_status(status), message, request_id)
            }
            Self::OpenAiChat | Self::OpenAiResponses => openai::error_body(status, message),
            Self::Gemini => gemini::error_body(status, message, None),
            Self::Bedrock => bedrock::error_body(message),
        }
    }

    /// Headers an error response of `status` carries besides its body:
    /// Bedrock names its exception in `x-amzn-ErrorType`, which the AWS SDKs
    /// map to their exception classes.
    pub(crate) fn error_headers(self, status: u16) -> Option<(&'static str, String)> {
        match self {
            Self::Bedrock if status >= 400 => {
                let (exception, _) = bedrock::exception_for(status, None);
                Some(("x-amzn-errortype", bedrock::error_type_header(exception)))
            }
            _ => None,
        }
    }

    /// An injected HTTP error as this provider sends it: the status (OpenAI
    /// answers Anthropic's 529 with its own 503) and the body, with
    /// `error_type` (in either provider's words) and `message` when the
    /// fault gives them, else the provider's usual ones for the status
    /// (`docs/protocols.md` §3.5). `retry_after` is the fault's wait, which
    /// Google says in the body (`RetryInfo`) where the others use headers.
    pub(crate) fn injected_error(
        self,
        status: u16,
        error_type: Option<&str>,
        message: Option<&str>,
        retry_after: Option<std::time::Duration>,
        request_id: &str,
    ) -> (u16, String) {
        match self {
            Self::Anthropic => {
                let (status, kind, usual) = anthropic::injected(status, error_type);
                (status, anthropic::error_body(kind, message.unwrap_or(usual), request_id))
            }
            Self::OpenAiChat | Self::OpenAiResponses => {
                let status = openai::wire_status(status);
                let (kind, code) = openai::type_and_code(status, error_type);
                let message = message.unwrap_or_else(|| openai::default_message(status, kind));
                (status, openai::error_body_typed(kind, code, message))
            }
            Self::Gemini => {
                let code = gemini::wire_code(status, error_type);
                let message = message.unwrap_or_else(|| gemini::default_message(code));
                (code, gemini::error_body(code, message, retry_after))
            }
            Self::Bedrock => {
                let (exception, status) = bedrock::exception_for(status, error_type);
                let message = message.unwrap_or_else(|| bedrock::default_message(exception));
                (status, bedrock::error_body(message))
            }
        }
    }

    /// The provider's mid-stream error (`docs/protocols.md` §2.4, §3.1, §3.3),
    /// sent after HTTP 200 when a `stream_error` fault fires: one record that
    /// may hold more than one event (a failed Responses stream is `error`
    /// then `response.failed`). `so_far` is what the source knows of the
    /// stream it ends.
    pub(crate) fn error_event(
        self,
        error_type: &str,
        message: &str,
        request_id: &str,
        so_far: &StreamSoFar,
    ) -> Record {
        match self {
            Self::Anthropic => {
                let (_, kind, _) = anthropic::injected(529, Some(error_type));
                let data = anthropic::error_body(kind, message, request_id);
                encode_event("error", &data, EventKind::Other)
            }
            Self::OpenAiChat => {
                let data = openai::stream_error(error_type, message);
                encode_data(&data, EventKind::Other)
            }
            Self::Gemini => {
                let code = gemini::wire_code(500, Some(error_type));
                let raw =
                    gemini::last_element(&gemini::stream_error(code, message), so_far.framing);
                Record { raw: raw.into(), kind: EventKind::Other }
            }
            Self::Bedrock => {
                let exception = bedrock::stream_exception(error_type);
                let payload = bedrock::error_body(message);
                let raw = crate::framing::event_stream::exception(exception, payload.as_bytes());
                Record { raw, kind: EventKind::Other }
            }
            Self::OpenAiResponses => {
                let raw = openai::responses_failure(
                    error_type,
                    message,
                    request_id,
                    so_far.sequence,
                    so_far.response.clone(),
                );
                Record { raw: raw.into(), kind: EventKind::Other }
            }
        }
    }

    /// The provider's usual message for a mid-stream error of `error_type`
    /// (in either provider's words), when the fault gives none.
    pub(crate) fn stream_error_message(self, error_type: &str) -> &'static str {
        match self {
            Self::Anthropic => match anthropic::injected(529, Some(error_type)) {
                (_, "overloaded_error", _) => "Overloaded",
                (_, "rate_limit_error", _) => "Rate limited",
                (_, "invalid_request_error", message) if message == anthropic::CREDIT_MESSAGE => {
                    message
                }
                _ => "Internal server error",
            },
            Self::OpenAiChat | Self::OpenAiResponses => {
                let (kind, _) = openai::type_and_code(500, Some(error_type));
                openai::default_message(500, kind)
            }
            Self::Gemini => gemini::default_message(gemini::wire_code(500, Some(error_type))),
            Self::Bedrock => {
                bedrock::default_message(bedrock::exception_for(500, Some(error_type)).0)
            }
        }
    }

    /// The provider's rate-limit headers, exhausted, resetting at `reset_at`
    /// (`reset_in` from now): RFC 3339 times for Anthropic, Go-style
    /// durations for OpenAI (`docs/protocols.md` §2.2, §3.2).
    pub(crate) fn rate_limit_headers(
        self,
        reset_at: std::time::SystemTime,
        reset_in: std::time::Duration,
    ) -> Vec<(&'static str, String)> {
        match self {
            Self::Anthropic => {
                let reset = humantime::format_rfc3339_seconds(reset_at).to_string();
                vec![
                    ("anthropic-ratelimit-requests-limit", "50".to_string()),
                    ("anthropic-ratelimit-requests-remaining", "0".to_string()),
                    ("anthropic-ratelimit-requests-reset", reset.clone()),
                    ("anthropic-ratelimit-tokens-limit", "40000".to_string()),
                    ("anthropic-ratelimit-tokens-remaining", "0".to_string()),
                    ("anthropic-ratelimit-tokens-reset", reset),
                ]
            }
            Self::OpenAiChat | Self::OpenAiResponses => {
                let reset = format!("{}s", reset_in.as_secs_f64());
                vec![
                    ("x-ratelimit-limit-requests", "500".to_string()),
                    ("x-ratelimit-remaining-requests", "0".to_string()),
                    ("x-ratelimit-reset-requests", reset.clone()),
                    ("x-ratelimit-limit-tokens", "30000".to_string()),
                    ("x-ratelimit-remaining-tokens", "0".to_string()),
                    ("x-ratelimit-reset-tokens", reset),
                ]
            }
            // Google and AWS send no rate-limit headers; their 429 body says it all.
            Self::Gemini | Self::Bedrock => Vec::new(),
        }
    }

    /// The header that carries the provider's request id (`docs/protocols.md` §2.2, §3.2).
    pub(crate) fn request_id_header(self) -> &'static str {
        match self {
            Self::Anthropic => "request-id",
            Self::OpenAiChat | Self::OpenAiResponses | Self::Gemini => "x-request-id",
            Self::Bedrock => "x-amzn-requestid",
        }
    }
}

/// Whether `path` is the Gemini API's or Vertex AI's: a model's method
/// (`.../models/{model}:generateContent`), or the `v1beta` model list.
fn is_gemini_path(path: &str) -> bool {
    const METHODS: [&str; 6] = [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
        "embedContent",
        "batchEmbedContents",
        "predict",
    ];
    // A model id may hold a `:` (an OpenAI fine-tune's does): the method is after the last.
    let method = path.rsplit_once('/').and_then(|(_, last)| last.rsplit_once(':'));
    let model_method = path.contains("/models/")
        && method.is_some_and(|(model, method)| !model.is_empty() && METHODS.contains(&method));
    model_method || path == "/v1beta/models" || path.starts_with("/v1beta/models/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_picks_the_dialect() {
        assert_eq!(Dialect::for_path("/v1/messages"), Dialect::Anthropic);
        assert_eq!(Dialect::for_path("/v1/chat/completions"), Dialect::OpenAiChat);
        assert_eq!(Dialect::for_path("/openai/v1/chat/completions/"), Dialect::OpenAiChat);
        assert_eq!(Dialect::for_path("/v1/responses"), Dialect::OpenAiResponses);
        assert_eq!(Dialect::for_path("/anything"), Dialect::Anthropic);
        let gemini = [
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "/v1/models/gemini-2.5-flash:generateContent",
            "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
            "/v1beta/models",
            "/v1beta/models/gemini-2.5-flash",
        ];
        for path in gemini {
            assert_eq!(Dialect::for_path(path), Dialect::Gemini, "{path}");
        }
        assert_eq!(Dialect::for_path("/v1/models"), Dialect::Anthropic, "OpenAI's model list");
    }
}
