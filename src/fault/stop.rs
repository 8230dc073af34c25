//! `stop`: N tokens, then the model stops early and says why, as a model
//! that refuses mid-answer or pauses a long server-side loop does: the
//! stream ends cleanly, with the provider's own end of a turn and its stop
//! reason (`docs/protocols.md` §5). Not an error: the SDKs return what came
//! with the reason, and the app must read it.

use serde_json::json;

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::dialect::Dialect;
use crate::framing::{EventKind, Record};
use crate::shape::{StreamAction, StreamFault};

/// Why the model stopped, in Anthropic's words; each API has its own
/// (`docs/protocols.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model declined to go on (a safety classifier stepped in).
    Refusal,
    /// A long server-side tool loop paused; the client sends the turn back
    /// to let it go on.
    PauseTurn,
    /// The output limit was reached.
    MaxTokens,
    /// Gemini's `RECITATION`: the answer matched a source too closely (a
    /// refusal on the other APIs).
    Recitation,
    /// Gemini's `MALFORMED_FUNCTION_CALL`: the model's call did not parse (a
    /// turn that ends without it on the other APIs).
    MalformedFunctionCall,
}

impl StopReason {
    /// Every reason, for the config's error message and the tests.
    const ALL: [Self; 5] = [
        Self::Refusal,
        Self::PauseTurn,
        Self::MaxTokens,
        Self::Recitation,
        Self::MalformedFunctionCall,
    ];

    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refusal => "refusal",
            Self::PauseTurn => "pause_turn",
            Self::MaxTokens => "max_tokens",
            Self::Recitation => "recitation",
            Self::MalformedFunctionCall => "malformed_function_call",
        }
    }

    /// Anthropic's `stop_reason` for it.
    fn anthropic_stop(self) -> &'static str {
        match self {
            Self::Refusal | Self::Recitation => "refusal",
            Self::PauseTurn => "pause_turn",
            Self::MaxTokens => "max_tokens",
            Self::MalformedFunctionCall => "end_turn",
        }
    }

    /// Chat Completions' `finish_reason` for it.
    fn chat_finish(self) -> &'static str {
        match self {
            Self::Refusal | Self::Recitation => "content_filter",
            Self::PauseTurn | Self::MalformedFunctionCall => "stop",
            Self::MaxTokens => "length",
        }
    }

    /// Gemini's `finishReason` for it.
    fn gemini_finish(self) -> &'static str {
        match self {
            Self::Refusal => "SAFETY",
            Self::PauseTurn => "STOP",
            Self::MaxTokens => "MAX_TOKENS",
            Self::Recitation => "RECITATION",
            Self::MalformedFunctionCall => "MALFORMED_FUNCTION_CALL",
        }
    }

    /// Bedrock Converse's `stopReason` for it.
    fn bedrock_stop(self) -> &'static str {
        match self {
            Self::Refusal | Self::Recitation => "content_filtered",
            Self::PauseTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::MalformedFunctionCall => "malformed_tool_use",
        }
    }

    /// The Responses API's `incomplete_details.reason`; `None` for a turn
    /// that completes.
    fn responses_incomplete(self) -> Option<&'static str> {
        match self {
            Self::Refusal | Self::Recitation => Some("content_filter"),
            Self::PauseTurn | Self::MalformedFunctionCall => None,
            Self::MaxTokens => Some("max_output_tokens"),
        }
    }
}

/// After `after_tokens` tokens, the turn ends with `stop_reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// Tokens released first.
    pub after_tokens: u32,
    /// Why the model stopped.
    pub stop_reason: StopReason,
}

/// What `stop_reason` may be.
const STOP_REASON_FORM: &str =
    "\"refusal\", \"pause_turn\", \"max_tokens\", \"recitation\" or \"malformed_function_call\"";

impl Kind for Stop {
    const NAME: &'static str = "stop";
    const KEYS: &'static [&'static str] = &["after_tokens", "stop_reason"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        let stop_reason = match given.text("stop_reason")?.as_deref() {
            None => StopReason::Refusal,
            Some(name) => StopReason::ALL
                .into_iter()
                .find(|reason| reason.as_str() == name)
                .ok_or_else(|| given.refuse("stop_reason", STOP_REASON_FORM))?,
        };
        Ok(Self { after_tokens: given.after_tokens()?, stop_reason })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut params = vec![("after_tokens", Param::Count(u64::from(self.after_tokens)))];
        if self.stop_reason != StopReason::Refusal {
            params.push(("stop_reason", Param::Text(self.stop_reason.as_str().to_string())));
        }
        params
    }

    fn on_stream(&self, stream: &OnStream<'_>) -> Option<StreamFault> {
        let end = self.end(stream);
        Some(StreamFault { after_tokens: self.after_tokens, action: StreamAction::EndWith(end) })
    }
}

impl Stop {
    /// The provider's end of a stopped turn, in the stream's dialect: the
    /// events after the last token, through the final one.
    fn end(&self, stream: &OnStream<'_>) -> Record {
        let reason = self.stop_reason;
        let so_far = stream.so_far.response.as_ref();
        let raw = match stream.dialect {
            Dialect::Bedrock if stream.so_far.bedrock_invoke => {
                // Invoke's end is the model's own (Anthropic's), each event in a chunk.
                use crate::dialect::bedrock::chunk;
                let delta = json!({"type": "message_delta",
                    "delta": {"stop_reason": reason.anthropic_stop(), "stop_sequence": null},
                    "usage": {"output_tokens": self.after_tokens}});
                let after = u64::from(self.after_tokens);
                let mut raw = chunk(delta.to_string().as_bytes(), 0, after).to_vec();
                raw.extend_from_slice(&chunk(br#"{"type":"message_stop"}"#, 0, after));
                return Record { raw: raw.into(), kind: EventKind::Other };
            }
            Dialect::Bedrock => {
                // Converse's end: the open block's stop, the stop reason, the usage.
                use crate::framing::event_stream::event;
                let stop = json!({"stopReason": reason.bedrock_stop()}).to_string();
                let usage = json!({"usage": {"inputTokens": 0, "outputTokens": self.after_tokens,
                    "totalTokens": self.after_tokens}, "metrics": {"latencyMs": 0}})
                .to_string();
                let mut raw = event("contentBlockStop", br#"{"contentBlockIndex":0}"#).to_vec();
                raw.extend_from_slice(&event("messageStop", stop.as_bytes()));
                raw.extend_from_slice(&event("metadata", usage.as_bytes()));
                return Record { raw: raw.into(), kind: EventKind::Other };
            }
            Dialect::Anthropic => {
                let delta = json!({"type": "message_delta",
                    "delta": {"stop_reason": reason.anthropic_stop(), "stop_sequence": null},
                    "usage": {"output_tokens": self.after_tokens}});
                format!(
                    "event: message_delta\ndata: {delta}\n\nevent: message_stop\ndata: {}\n\n",
                    json!({"type": "message_stop"})
                )
            }
            Dialect::OpenAiChat => {
                // The stream's own id and model when its source told them (the mock).
                let field = |key: &str, default: serde_json::Value| {
                    so_far.and_then(|r| r.get(key)).cloned().unwrap_or(default)
                };
                let chunk = json!({
                    "id": field("id", json!("chatcmpl-sluice")),
                    "object": "chat.completion.chunk",
                    "created": field("created", json!(0)),
                    "model": field("model", json!("")),
                    "choices": [{"index": 0, "delta": {}, "logprobs": null,
                        "finish_reason": reason.chat_finish()}],
                });
                format!("data: {chunk}\n\ndata: [DONE]\n\n")
            }
            Dialect::Gemini => {
                let chunk = json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                        "finishReason": reason.gemini_finish(), "index": 0}],
                    "usageMetadata": {"candidatesTokenCount": self.after_tokens},
                });
                crate::dialect::gemini::last_element(&chunk.to_string(), stream.so_far.framing)
            }
            Dialect::OpenAiResponses => {
                let mut response = so_far.cloned().unwrap_or_else(|| {
                    let id = stream.request_id.strip_prefix("req_").unwrap_or(stream.request_id);
                    json!({"id": format!("resp_{id}"), "object": "response", "output": []})
                });
                let name = match reason.responses_incomplete() {
                    Some(why) => {
                        response["status"] = json!("incomplete");
                        response["incomplete_details"] = json!({"reason": why});
                        "response.incomplete"
                    }
                    None => {
                        response["status"] = json!("completed");
                        "response.completed"
                    }
                };
                let mut event = json!({"type": name, "response": response});
                if let Some(sequence) = stream.so_far.sequence {
                    event["sequence_number"] = json!(sequence);
                }
                format!("event: {name}\ndata: {event}\n\n")
            }
        };
        Record { raw: raw.into(), kind: EventKind::Other }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_each_apis_words() {
        // (config, Anthropic, Chat, Gemini, Responses incomplete, Bedrock)
        let table = [
            (
                "refusal",
                "refusal",
                "content_filter",
                "SAFETY",
                Some("content_filter"),
                "content_filtered",
            ),
            ("pause_turn", "pause_turn", "stop", "STOP", None, "end_turn"),
            (
                "max_tokens",
                "max_tokens",
                "length",
                "MAX_TOKENS",
                Some("max_output_tokens"),
                "max_tokens",
            ),
            (
                "recitation",
                "refusal",
                "content_filter",
                "RECITATION",
                Some("content_filter"),
                "content_filtered",
            ),
            (
                "malformed_function_call",
                "end_turn",
                "stop",
                "MALFORMED_FUNCTION_CALL",
                None,
                "malformed_tool_use",
            ),
        ];
        assert_eq!(table.len(), StopReason::ALL.len());
        for (reason, (name, anthropic, chat, gemini, responses, bedrock)) in
            StopReason::ALL.into_iter().zip(table)
        {
            assert_eq!(reason.bedrock_stop(), bedrock, "{name}");
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.anthropic_stop(), anthropic, "{name}");
            assert_eq!(reason.chat_finish(), chat, "{name}");
            assert_eq!(reason.gemini_finish(), gemini, "{name}");
            assert_eq!(reason.responses_incomplete(), responses, "{name}");
        }
    }
}
