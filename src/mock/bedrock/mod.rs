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
//! `metadata` with the usage. Each frame is made when it is pulled.

pub(crate) mod invoke;
pub(crate) mod request;

use serde_json::{Value, json};

use super::anthropic::thinking::signature;
use super::reply::{Block, Reply, StopReason};
use super::request::Shown;
use super::text::TokenCursor;
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
    events: |reply, _| Box::new(events(reply)),
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

/// Where [`Events`] is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Start,
    /// The next thinking token.
    Thought,
    /// The thinking block's signature, then its stop.
    Signature,
    ThoughtStop,
    /// Block `index` of the reply, at `piece`; a tool call's start first.
    Block {
        index: usize,
        piece: usize,
        started: bool,
    },
    BlockStop(usize),
    MessageStop,
    Metadata,
    Done,
}

/// The `ConverseStream` frames of a reply (see the module docs), each made
/// when it is pulled: an open stream holds its reply, not its frames.
struct Events {
    reply: Reply,
    step: Step,
    /// The text being streamed (the thinking, or a text block).
    cursor: Option<TokenCursor>,
    /// Wire index of the reply's first block: 1 after a thinking block.
    first_index: usize,
}

/// The `ConverseStream` frames of `reply`.
pub(crate) fn events(reply: Reply) -> impl Iterator<Item = Record> + Send {
    let thinks = streamed_thought(&reply).is_some();
    Events { reply, step: Step::Start, cursor: None, first_index: usize::from(thinks) }
}

fn streamed_thought(reply: &Reply) -> Option<&super::reply::Thought> {
    reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed && t.len() > 0)
}

impl Events {
    fn block_step(&self, index: usize) -> Step {
        if index < self.reply.blocks.len() {
            Step::Block { index, piece: 0, started: false }
        } else {
            Step::MessageStop
        }
    }

    /// The frame of the current step, moving on; `None` once done.
    fn make(&mut self) -> Option<Record> {
        loop {
            match self.step {
                Step::Start => {
                    self.step =
                        if self.first_index == 1 { Step::Thought } else { self.block_step(0) };
                    return Some(frame(
                        "messageStart",
                        &json!({"role": "assistant"}),
                        EventKind::Other,
                    ));
                }
                Step::Thought => {
                    let thought = streamed_thought(&self.reply)?;
                    let cursor = self.cursor.get_or_insert_with(|| thought.tokens.cursor());
                    if let Some(token) = cursor.next_token() {
                        let delta = json!({"contentBlockIndex": 0,
                            "delta": {"reasoningContent": {"text": token}}});
                        return Some(frame("contentBlockDelta", &delta, EventKind::Thinking));
                    }
                    self.cursor = None;
                    self.step = Step::Signature;
                }
                Step::Signature => {
                    let thought = streamed_thought(&self.reply)?;
                    let signed = json!({"contentBlockIndex": 0, "delta": {"reasoningContent":
                        {"signature": signature(&thought.tokens.concat())}}});
                    self.step = Step::ThoughtStop;
                    return Some(frame("contentBlockDelta", &signed, EventKind::Other));
                }
                Step::ThoughtStop => {
                    self.step = self.block_step(0);
                    return Some(frame(
                        "contentBlockStop",
                        &json!({"contentBlockIndex": 0}),
                        EventKind::Other,
                    ));
                }
                Step::Block { index, piece, started } => {
                    let at = index + self.first_index;
                    let next = Step::Block { index, piece: piece + 1, started: true };
                    match self.reply.blocks.get(index)? {
                        Block::Text { tokens, .. } => {
                            let cursor = self.cursor.get_or_insert_with(|| tokens.cursor());
                            if let Some(token) = cursor.next_token() {
                                let delta =
                                    json!({"contentBlockIndex": at, "delta": {"text": token}});
                                return Some(frame(
                                    "contentBlockDelta",
                                    &delta,
                                    EventKind::Content,
                                ));
                            }
                            self.cursor = None;
                        }
                        Block::Json { fragments } => {
                            if let Some(piece) = fragments.get(piece) {
                                let delta =
                                    json!({"contentBlockIndex": at, "delta": {"text": piece}});
                                self.step = next;
                                return Some(frame(
                                    "contentBlockDelta",
                                    &delta,
                                    EventKind::Content,
                                ));
                            }
                        }
                        Block::ToolUse { id, name, fragments, .. } => {
                            if !started {
                                let start = json!({"contentBlockIndex": at,
                                    "start": {"toolUse": {"toolUseId": tool_use_id(id), "name": name}}});
                                self.step = Step::Block { index, piece, started: true };
                                return Some(frame(
                                    "contentBlockStart",
                                    &start,
                                    EventKind::ToolStart,
                                ));
                            }
                            if let Some(piece) = fragments.get(piece) {
                                let delta = json!({"contentBlockIndex": at,
                                    "delta": {"toolUse": {"input": piece}}});
                                self.step = next;
                                return Some(frame(
                                    "contentBlockDelta",
                                    &delta,
                                    EventKind::Content,
                                ));
                            }
                        }
                    }
                    self.step = Step::BlockStop(index);
                }
                Step::BlockStop(index) => {
                    self.step = self.block_step(index + 1);
                    let stop = json!({"contentBlockIndex": index + self.first_index});
                    return Some(frame("contentBlockStop", &stop, EventKind::Other));
                }
                Step::MessageStop => {
                    self.step = Step::Metadata;
                    let stop = json!({"stopReason": stop_reason(self.reply.stop_reason)});
                    return Some(frame("messageStop", &stop, EventKind::Other));
                }
                Step::Metadata => {
                    self.step = Step::Done;
                    let metadata =
                        json!({"usage": usage(&self.reply), "metrics": {"latencyMs": 0}});
                    return Some(frame("metadata", &metadata, EventKind::Other));
                }
                Step::Done => return None,
            }
        }
    }
}

impl Iterator for Events {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let record = self.make();
        if record.is_none() {
            self.step = Step::Done;
        }
        record
    }
}

#[cfg(test)]
mod tests;
