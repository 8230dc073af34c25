//! Amazon Bedrock's runtime (`docs/protocols.md` §8): Converse, a request
//! parsed into a [`TurnRequest`] ([`request`]) and a [`Reply`] encoded as the
//! `ConverseStream` event stream ([`events`]) or as one `Converse` response
//! ([`message`]); and Invoke for Anthropic models ([`invoke`]).
//!
//! ```text
//! POST /model/{modelId}/converse-stream               (application/vnd.amazon.eventstream)
//! POST /model/{modelId}/converse                      (application/json)
//! POST /model/{modelId}/invoke-with-response-stream   (Messages events in chunk frames)
//! POST /model/{modelId}/invoke                        (the Messages response)
//! ```
//!
//! A stream is one frame an event, each payload the event's flat member:
//! `messageStart`, then per content block its deltas (a `toolUse` block
//! opens with `contentBlockStart`; text and reasoning do not) and
//! `contentBlockStop`, then `messageStop` with the stop reason and
//! `metadata` with the usage. A reply's frames are made when the request
//! is admitted (about 100 bytes a token).

pub(crate) mod invoke;
pub(crate) mod request;

use serde_json::{Value, json};

use super::anthropic::thinking::signature;
use super::reply::{Block, Reply, StopReason};
use super::request::Shown;
use super::{Codec, MockApi, MockEndpoint, Serve};
use crate::dialect::Dialect;
use crate::framing::event_stream::event;
use crate::framing::{EventKind, Record};

/// The Converse API's operations.
pub(crate) const API: MockApi = MockApi {
    name: "Amazon Bedrock",
    dialect: Dialect::Bedrock,
    endpoints: &[
        MockEndpoint::post_bedrock("/model/{modelId}/converse-stream", "converse-stream", CODEC),
        MockEndpoint::post_bedrock("/model/{modelId}/converse", "converse", CODEC),
        MockEndpoint::post_bedrock(
            "/model/{modelId}/invoke-with-response-stream",
            "invoke-with-response-stream",
            INVOKE,
        ),
        MockEndpoint::post_bedrock("/model/{modelId}/invoke", "invoke", INVOKE),
    ],
};

/// Invoke, for Anthropic models: the Messages API in Bedrock's wrapping.
const INVOKE: Serve = Serve::Generate(Codec {
    parse: invoke::parse,
    events: |reply, _| Box::new(invoke::events(reply)),
    message: |reply, _| super::anthropic::message(reply).to_string(),
    failure_at: None,
});

const CODEC: Serve = Serve::Generate(Codec {
    parse: request::parse,
    events: |reply, _| Box::new(events(&reply).into_iter()),
    message: |reply, _| message(reply).to_string(),
    failure_at: None,
});

/// `stopReason` on the wire.
fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
    }
}

/// `usage`.
fn usage(reply: &Reply) -> Value {
    let output = reply.output_tokens() as u64;
    json!({"inputTokens": reply.input_tokens, "outputTokens": output,
        "totalTokens": reply.input_tokens + output})
}

/// A block's text, whole (text or structured output).
fn block_text(block: &Block) -> Option<String> {
    match block {
        Block::Text { tokens, .. } => Some(tokens.concat()),
        Block::Json { fragments } => Some(fragments.as_str().to_string()),
        Block::ToolUse { .. } => None,
    }
}

/// A tool use id as Bedrock writes it.
fn tool_use_id(id: &str) -> String {
    format!("tooluse_{id}")
}

/// The non-streaming `Converse` response.
pub(crate) fn message(reply: &Reply) -> Value {
    let mut content = Vec::new();
    if let Some(thought) = reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed) {
        let text = thought.tokens.concat();
        let signature = signature(&text);
        content.push(
            json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}}),
        );
    }
    for block in &reply.blocks {
        match block {
            Block::ToolUse { id, name, input, .. } => content.push(
                json!({"toolUse": {"toolUseId": tool_use_id(id), "name": name, "input": input}}),
            ),
            other => {
                if let Some(text) = block_text(other) {
                    content.push(json!({"text": text}));
                }
            }
        }
    }
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(reply.stop_reason),
        "usage": usage(reply),
        "metrics": {"latencyMs": 0},
    })
}

fn frame(name: &str, payload: &Value, kind: EventKind) -> Record {
    Record { raw: event(name, payload.to_string().as_bytes()), kind }
}

/// The `ConverseStream` frames of `reply` (see the module docs).
pub(crate) fn events(reply: &Reply) -> Vec<Record> {
    let mut out = vec![frame("messageStart", &json!({"role": "assistant"}), EventKind::Other)];
    let mut index = 0u32;
    let stop = |index: u32| json!({"contentBlockIndex": index});
    if let Some(thought) =
        reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed && t.len() > 0)
    {
        let mut cursor = thought.tokens.cursor();
        while let Some(token) = cursor.next_token() {
            let delta = json!({"contentBlockIndex": index,
                "delta": {"reasoningContent": {"text": token}}});
            out.push(frame("contentBlockDelta", &delta, EventKind::Thinking));
        }
        let signed = json!({"contentBlockIndex": index,
            "delta": {"reasoningContent": {"signature": signature(&thought.tokens.concat())}}});
        out.push(frame("contentBlockDelta", &signed, EventKind::Other));
        out.push(frame("contentBlockStop", &stop(index), EventKind::Other));
        index += 1;
    }
    for block in &reply.blocks {
        match block {
            Block::Text { tokens, .. } => {
                let mut cursor = tokens.cursor();
                while let Some(token) = cursor.next_token() {
                    let delta = json!({"contentBlockIndex": index, "delta": {"text": token}});
                    out.push(frame("contentBlockDelta", &delta, EventKind::Content));
                }
            }
            Block::Json { fragments } => {
                for piece in fragments.iter() {
                    let delta = json!({"contentBlockIndex": index, "delta": {"text": piece}});
                    out.push(frame("contentBlockDelta", &delta, EventKind::Content));
                }
            }
            Block::ToolUse { id, name, fragments, .. } => {
                let start = json!({"contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": tool_use_id(id), "name": name}}});
                out.push(frame("contentBlockStart", &start, EventKind::ToolStart));
                for piece in fragments.iter() {
                    let delta = json!({"contentBlockIndex": index,
                        "delta": {"toolUse": {"input": piece}}});
                    out.push(frame("contentBlockDelta", &delta, EventKind::Content));
                }
            }
        }
        out.push(frame("contentBlockStop", &stop(index), EventKind::Other));
        index += 1;
    }
    let stop_event = json!({"stopReason": stop_reason(reply.stop_reason)});
    out.push(frame("messageStop", &stop_event, EventKind::Other));
    let metadata = json!({"usage": usage(reply), "metrics": {"latencyMs": 0}});
    out.push(frame("metadata", &metadata, EventKind::Other));
    out
}

#[cfg(test)]
mod tests;
