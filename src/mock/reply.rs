//! The mock's answer to one request, decided up front ([`Reply::generate`]),
//! then either streamed as SSE records ([`Reply::into_events`], built lazily one
//! event at a time) or returned whole ([`Reply::to_message`]).
//!
//! The stream follows the Messages grammar of `docs/protocols.md` §2.4 exactly:
//!
//! ```text
//! message_start ping (content_block_start content_block_delta* content_block_stop)* message_delta message_stop
//! ```
//!
//! with dense block indexes from 0, one block open at a time, cumulative
//! `usage.output_tokens` in `message_delta`, and `"type"` equal to the event
//! name inside every JSON payload.

use bytes::{BufMut as _, BytesMut};
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::request::{InvalidRequest, MessagesRequest, ToolChoice};
use super::schema;
use super::text::{LazyTokens, Pieces, TokenCursor, random_id};
use crate::config::{ToolPick, ToolUse};
use crate::sse::{EventKind, SseRecord, encode_event};

/// Why the reply stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Finished its answer.
    EndTurn,
    /// Hit the request's `max_tokens`.
    MaxTokens,
    /// Called a tool.
    ToolUse,
}

impl StopReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::ToolUse => "tool_use",
        }
    }
}

/// A content block of the reply, with its output already cut into the
/// fragments its deltas will carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Text, one token per delta, made as the stream is pulled.
    Text {
        /// The tokens; concatenated they are the text.
        tokens: LazyTokens,
    },
    /// Structured output (`output_config.format`): JSON made from the
    /// requested schema, streamed as text deltas, as the real API does.
    Json {
        /// The JSON, compact.
        text: String,
        /// `text` cut into the fragments its deltas carry.
        fragments: Pieces,
    },
    /// A call of a client tool.
    ToolUse {
        /// `toolu_...`.
        id: String,
        /// The tool's name.
        name: String,
        /// The input, made from the tool's schema.
        input: Value,
        /// `input` as compact JSON, cut into `input_json_delta` fragments.
        fragments: Pieces,
    },
}

impl Block {
    /// How many deltas it streams.
    fn len(&self) -> usize {
        match self {
            Block::Text { tokens } => tokens.len(),
            Block::Json { fragments, .. } => fragments.len(),
            Block::ToolUse { fragments, .. } => fragments.len(),
        }
    }
}

/// The whole answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `msg_...`.
    pub id: String,
    /// Echoed from the request.
    pub model: String,
    /// `usage.input_tokens`.
    pub input_tokens: u64,
    /// The content blocks, in order.
    pub blocks: Vec<Block>,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

impl Reply {
    /// Decides the answer: calls of the request's tools when `tool_choice`
    /// and `tool_use` say so, else JSON from the requested output schema
    /// (structured output), else `tokens_per_response` tokens of text.
    /// `any` and a named tool always call; `auto` calls unless the
    /// conversation already ends with `tool_use.max_rounds` tool rounds, and
    /// then with `tool_use.probability`. Which tool each of the
    /// `tool_use.parallel_calls` calls uses is `tool_use.choice`. Output is
    /// capped at `max_tokens`. With the default `tool_use`, nothing more is
    /// drawn from `rng` than before these knobs existed, so seeded runs
    /// replay the same bytes.
    ///
    /// # Errors
    /// [`InvalidRequest`] naming `tools.N.input_schema` when a chosen tool's
    /// schema asks for an input past the [`schema::Budget`] or cannot be
    /// satisfied.
    pub fn generate(
        request: &MessagesRequest,
        tokens_per_response: u32,
        tool_use: &ToolUse,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self, InvalidRequest> {
        let calls = tool_calls(request, tool_use, rng);
        let max_tokens = usize::try_from(request.max_tokens).unwrap_or(usize::MAX);
        let id = format!("msg_{}", random_id(rng));
        let (blocks, stop_reason) =
            if let (true, Some(output)) = (calls.is_empty(), &request.output_schema) {
                let value = schema::sample(&output.schema, rng)
                    .map_err(|error| InvalidRequest(format!("{}: {error}", output.field)))?;
                let text = value.to_string();
                let fragments = fragments(&text, max_tokens, rng);
                (vec![Block::Json { text, fragments }], StopReason::EndTurn)
            } else if calls.is_empty() {
                let wanted = tokens_per_response as usize;
                let count = wanted.min(max_tokens);
                let stop = if count < wanted { StopReason::MaxTokens } else { StopReason::EndTurn };
                (vec![Block::Text { tokens: LazyTokens::new(count, rng) }], stop)
            } else {
                // Each call's input gets its share of max_tokens.
                let share = (max_tokens / calls.len()).max(1);
                let mut blocks = Vec::with_capacity(calls.len());
                for index in calls {
                    let tool = &request.tools[index];
                    let input = schema::sample(&tool.input_schema, rng).map_err(|error| {
                        InvalidRequest(format!("tools.{index}.input_schema: {error}"))
                    })?;
                    let fragments = fragments(&input.to_string(), share, rng);
                    blocks.push(Block::ToolUse {
                        id: format!("toolu_{}", random_id(rng)),
                        name: tool.name.clone(),
                        input,
                        fragments,
                    });
                }
                (blocks, StopReason::ToolUse)
            };
        Ok(Self {
            id,
            model: request.model.clone(),
            input_tokens: request.input_tokens,
            blocks,
            stop_reason,
        })
    }

    /// Output tokens: one per delta.
    pub fn output_tokens(&self) -> usize {
        self.blocks.iter().map(Block::len).sum()
    }

    /// The non-streaming response body (`docs/protocols.md` §2.3).
    pub fn to_message(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|block| match block {
                Block::Text { tokens } => json!({"type": "text", "text": tokens.concat()}),
                Block::Json { text, .. } => json!({"type": "text", "text": text}),
                Block::ToolUse { id, name, input, .. } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason.as_str(),
            "stop_sequence": null,
            "usage": self.usage(self.output_tokens()),
        })
    }

    fn usage(&self, output_tokens: usize) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        })
    }

    /// The stream of SSE records, built one event at a time as it is pulled.
    pub fn into_events(self) -> ReplyEvents {
        ReplyEvents { reply: self, step: Step::MessageStart, text: None }
    }
}

/// The indexes of the tools this turn calls, in order; empty for a text
/// answer.
fn tool_calls(request: &MessagesRequest, tool_use: &ToolUse, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let tools = &request.tools;
    if tools.is_empty() {
        return Vec::new();
    }
    let named = |pattern: &glob::Pattern| -> Vec<usize> {
        (0..tools.len()).filter(|&i| pattern.matches(&tools[i].name)).collect()
    };
    // The tools a call may use; `None` for all of them.
    let candidates: Option<Vec<usize>> = match &request.tool_choice {
        ToolChoice::None => return Vec::new(),
        ToolChoice::Tool(name) => {
            return tools.iter().position(|t| &t.name == name).into_iter().collect();
        }
        ToolChoice::Any => match &tool_use.choice {
            // `any` must call a tool: with no name matching, any will do.
            ToolPick::Named(pattern) => Some(named(pattern)).filter(|c| !c.is_empty()),
            _ => None,
        },
        ToolChoice::Auto => {
            if request.tool_rounds >= tool_use.max_rounds {
                return Vec::new();
            }
            // Drawn only when it can say no, so the default draws nothing.
            if tool_use.probability < 1.0
                && !(tool_use.probability > 0.0 && rng.random_bool(tool_use.probability))
            {
                return Vec::new();
            }
            match &tool_use.choice {
                ToolPick::Named(pattern) => {
                    let matching = named(pattern);
                    if matching.is_empty() {
                        return Vec::new();
                    }
                    Some(matching)
                }
                _ => None,
            }
        }
    };
    let count = if request.disable_parallel_tool_use { 1 } else { tool_use.parallel_calls.max(1) };
    (0..count)
        .map(|_| match (&candidates, &tool_use.choice) {
            (Some(only), _) if only.len() == 1 => only[0],
            (Some(some), _) => some[rng.random_range(0..some.len())],
            (None, ToolPick::First) => 0,
            (None, _) => rng.random_range(0..tools.len()),
        })
        .collect()
}

/// Cuts `json` into fragments of 3 to 12 characters, as the real API cuts
/// `input_json_delta`s anywhere (inside strings and escapes too), but into no
/// more than `max` fragments, so one fragment is one output token.
fn fragments(json: &str, max: usize, rng: &mut impl Rng) -> Pieces {
    // Cut on char boundaries: byte offsets of every char, and the end.
    let bounds: Vec<usize> = json.char_indices().map(|(i, _)| i).chain([json.len()]).collect();
    let chars = bounds.len() - 1;
    let cut = |sizes: &mut dyn FnMut() -> usize| {
        let mut out = Pieces::with_capacity(json.len(), chars / 3 + 1);
        let mut at = 0;
        while at < chars {
            let end = (at + sizes()).min(chars);
            out.push(&json[bounds[at]..bounds[end]]);
            at = end;
        }
        out
    };
    let out = cut(&mut || rng.random_range(3..=12));
    if out.len() > max.max(1) {
        let size = chars.div_ceil(max.max(1));
        return cut(&mut || size);
    }
    out
}

/// A `content_block_delta` event, encoded without building a JSON value:
/// `{"type":"content_block_delta","index":I,"delta":{"type":T,"F":"…"}}`.
fn encode_delta(index: usize, delta_type: &str, field: &str, fragment: &str) -> SseRecord {
    let mut raw = BytesMut::with_capacity(96 + fragment.len() + fragment.len() / 4);
    raw.put_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    raw.put_slice(itoa::Buffer::new().format(index).as_bytes());
    raw.put_slice(b",\"delta\":{\"type\":\"");
    raw.put_slice(delta_type.as_bytes());
    raw.put_slice(b"\",\"");
    raw.put_slice(field.as_bytes());
    raw.put_slice(b"\":");
    // Infallible into memory; escapes the fragment as JSON.
    let _ = serde_json::to_writer((&mut raw).writer(), fragment);
    raw.put_slice(b"}}\n\n");
    SseRecord { raw: raw.freeze(), kind: EventKind::Content }
}

/// Where [`ReplyEvents`] is in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    MessageStart,
    Ping,
    BlockStart(usize),
    Delta(usize, usize),
    BlockStop(usize),
    MessageDelta,
    MessageStop,
    Done,
}

/// The reply's SSE records, in order; an `Iterator`, so the mock's source is
/// `stream::iter` and costs nothing until pulled.
#[derive(Debug)]
pub struct ReplyEvents {
    reply: Reply,
    step: Step,
    /// The text block being streamed, and the cursor making its tokens.
    text: Option<(usize, TokenCursor)>,
}

impl ReplyEvents {
    fn after_block(&self, index: usize) -> Step {
        if index + 1 < self.reply.blocks.len() {
            Step::BlockStart(index + 1)
        } else {
            Step::MessageDelta
        }
    }

    fn after_delta(&self, index: usize, piece: usize) -> Step {
        let count = self.reply.blocks.get(index).map_or(0, Block::len);
        if piece < count { Step::Delta(index, piece) } else { Step::BlockStop(index) }
    }

    fn record(&mut self, step: Step) -> Option<SseRecord> {
        let reply = &self.reply;
        let (name, payload, kind) = match step {
            Step::MessageStart => (
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": reply.id, "type": "message", "role": "assistant", "model": reply.model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": reply.usage(1),
                }}),
                EventKind::Other,
            ),
            Step::Ping => ("ping", json!({"type": "ping"}), EventKind::Other),
            Step::BlockStart(index) => {
                let (block, kind) = match reply.blocks.get(index)? {
                    Block::Text { .. } | Block::Json { .. } => {
                        (json!({"type": "text", "text": ""}), EventKind::Other)
                    }
                    Block::ToolUse { id, name, .. } => (
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                        EventKind::ToolStart,
                    ),
                };
                let payload =
                    json!({"type": "content_block_start", "index": index, "content_block": block});
                ("content_block_start", payload, kind)
            }
            Step::Delta(index, piece) => {
                // The hot path (one per token): written straight into one buffer.
                return match reply.blocks.get(index)? {
                    Block::Text { tokens } => {
                        if self.text.as_ref().is_none_or(|(at, _)| *at != index) {
                            self.text = Some((index, tokens.cursor()));
                        }
                        let (_, cursor) = self.text.as_mut()?;
                        Some(encode_delta(index, "text_delta", "text", cursor.next_token()?))
                    }
                    Block::Json { fragments, .. } => {
                        Some(encode_delta(index, "text_delta", "text", fragments.get(piece)?))
                    }
                    Block::ToolUse { fragments, .. } => Some(encode_delta(
                        index,
                        "input_json_delta",
                        "partial_json",
                        fragments.get(piece)?,
                    )),
                };
            }
            Step::BlockStop(index) => (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
                EventKind::Other,
            ),
            Step::MessageDelta => (
                "message_delta",
                json!({"type": "message_delta",
                    "delta": {"stop_reason": reply.stop_reason.as_str(), "stop_sequence": null},
                    "usage": {"output_tokens": reply.output_tokens()}}),
                EventKind::Other,
            ),
            Step::MessageStop => {
                ("message_stop", json!({"type": "message_stop"}), EventKind::Other)
            }
            Step::Done => return None,
        };
        Some(encode_event(name, &payload.to_string(), kind))
    }
}

impl Iterator for ReplyEvents {
    type Item = SseRecord;

    fn next(&mut self) -> Option<SseRecord> {
        let step = self.step;
        self.step = match step {
            Step::MessageStart => Step::Ping,
            Step::Ping if self.reply.blocks.is_empty() => Step::MessageDelta,
            Step::Ping => Step::BlockStart(0),
            Step::BlockStart(index) => self.after_delta(index, 0),
            Step::Delta(index, piece) => self.after_delta(index, piece + 1),
            Step::BlockStop(index) => self.after_block(index),
            Step::MessageDelta => Step::MessageStop,
            Step::MessageStop | Step::Done => Step::Done,
        };
        let record = self.record(step);
        if record.is_none() {
            self.step = Step::Done;
        }
        record
    }
}

#[cfg(test)]
mod tests;
