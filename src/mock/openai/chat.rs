//! `POST /v1/chat/completions` (`docs/protocols.md` §3.1): the request parsed
//! into a turn, and a reply encoded as its chunks or its completion.
//!
//! The stream:
//!
//! ```text
//! role chunk (delta.role; content "", or null   other: goes out with the first token
//!   when the turn starts with a tool call)
//! reasoning chunks, one thinking token each     thinking: only with [thinking]
//!   (delta.reasoning_content)                   reasoning_content = true
//! content chunks, one token each               token
//! per tool call: first fragment (id, type, name, arguments "")   tool start
//!                argument fragments (index, arguments)           token
//! finish chunk (empty delta, finish_reason)    other
//! usage chunk (choices [], usage)              other, with stream_options.include_usage
//! data: [DONE]                                 other
//! ```
//!
//! `id`, `created`, `model` and `system_fingerprint` are the same in every
//! chunk; `role` only in the first; a call's `id`, `type` and `name` only in
//! its first fragment; exactly one `finish_reason`; with
//! `stream_options.include_usage`, `"usage": null` in every chunk but the
//! last, which has `choices: []`.

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use super::{Shape, parse_format, parse_stream, parse_tool_choice, parse_tools, quoted, unix_now};
use crate::dialect::StreamSoFar;
use crate::framing::sse::encode_data;
use crate::framing::{EventKind, Record};
use crate::mock::Codec;
use crate::mock::json_text::JsonString;
use crate::mock::reply::{Block, Reply, StopReason, Thought};
use crate::mock::request::{
    HeadFacts, InvalidRequest, Reasoning, Shown, TurnRequest, body_object, invalid, message_list,
    openai_effort, optional_bool, optional_count, required_string, tool_rounds, type_name,
};
use crate::mock::text::TokenCursor;
use crate::route::rough_tokens;

/// Chat Completions' request parser and encoders.
pub(crate) const CODEC: Codec = Codec {
    parse,
    events: |reply, request| Box::new(events(reply, request)),
    message: |reply, _| message(reply).to_string(),
    failure_at: Some(failure_at),
};

/// What a fault that ends the stream after N tokens writes into its last
/// chunk so that it belongs to this stream: the id, model and time.
fn failure_at(reply: &Reply, _request: &TurnRequest, _after_tokens: u32) -> StreamSoFar {
    let response = json!({"id": format!("chatcmpl-{}", reply.id), "model": reply.model,
        "created": unix_now()});
    StreamSoFar { sequence: None, response: Some(response), ..StreamSoFar::default() }
}

/// Roles a Chat message may have.
const ROLES: [&str; 6] = ["developer", "system", "user", "assistant", "tool", "function"];

/// Parses and validates a request body.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(body: &[u8], _head: &HeadFacts) -> Result<TurnRequest, InvalidRequest> {
    let object = body_object(body)?;
    let model = required_string(&object, "model")?;
    let tool_rounds = validate_messages(object.get("messages"))?;
    let stream = parse_stream(&object)?;
    if let Some(n) = optional_count(&object, "n")?
        && n != 1
    {
        return Err(invalid(
            "n",
            format_args!("the sluice mock makes one choice; n must be 1, got {n}"),
        ));
    }
    let stop = parse_stop(object.get("stop"))?;
    let stream_usage = match object.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => optional_bool(options, "include_usage")
            .map_err(|e| InvalidRequest(format!("stream_options.{}", e.0)))?
            .unwrap_or(false),
        Some(other) => {
            return Err(invalid(
                "stream_options",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let tools = parse_tools(object.get("tools"), Shape::Chat)?;
    let tool_choice = parse_tool_choice(object.get("tool_choice"), &tools, Shape::Chat)?;
    let parallel = optional_bool(&object, "parallel_tool_calls")?.unwrap_or(true);
    let output_schema = parse_format(
        object.get("response_format"),
        "response_format",
        "response_format.json_schema.schema",
        Shape::Chat,
    )?;
    // A reasoning model thinks before its first chunk and streams none of it.
    let reasoning = match object.get("reasoning_effort") {
        None | Some(Value::Null) => None,
        Some(effort) => Some(Reasoning {
            budget_tokens: None,
            effort: openai_effort(effort, "reasoning_effort")?,
            shown: Shown::Hidden,
            this_turn: true,
            encrypted: false,
        }),
    };
    let max_tokens = match optional_count(&object, "max_completion_tokens")? {
        Some(max) => max,
        None => optional_count(&object, "max_tokens")?.unwrap_or(u64::MAX),
    };
    Ok(TurnRequest {
        model,
        max_tokens,
        stream,
        tools,
        tool_choice,
        tool_rounds,
        disable_parallel_tool_use: !parallel,
        output_schema,
        input_tokens: rough_tokens(body),
        stream_usage: stream && stream_usage,
        stop,
        echo: Value::Null,
        reasoning,
        web_search: None,
        array_stream: false,
    })
}

/// Checks `messages`; returns the tool rounds the conversation ends with
/// (assistant messages with `tool_calls`).
fn validate_messages(messages: Option<&Value>) -> Result<u32, InvalidRequest> {
    let messages = message_list(
        messages,
        &ROLES,
        "\"developer\", \"system\", \"user\", \"assistant\" or \"tool\"",
    )?;
    let calls_a_tool = |message: &Value| {
        message.get("tool_calls").and_then(Value::as_array).is_some_and(|calls| !calls.is_empty())
    };
    Ok(tool_rounds(messages, calls_a_tool))
}

/// `stop`: a string, or up to 4 strings, each at most 256 bytes. The text
/// ends before the first token with which it would contain one.
fn parse_stop(stop: Option<&Value>) -> Result<Vec<String>, InvalidRequest> {
    let form = "expected a string or an array of up to 4 strings of at most 256 bytes";
    let fine = |text: &str| text.len() <= 256;
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) if fine(text) => Ok(vec![text.clone()]),
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|item| match item {
                Value::String(text) if fine(text) => Ok(text.clone()),
                other => Err(invalid("stop", format_args!("{form}, got {other}"))),
            })
            .collect(),
        Some(other) => Err(invalid("stop", format_args!("{form}, got {other}"))),
    }
}

/// `finish_reason` on the wire.
pub(crate) fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
    }
}

fn usage(reply: &Reply) -> Value {
    let completion = reply.output_tokens() as u64;
    json!({
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.input_tokens.saturating_add(completion),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reply.thinking_tokens()},
    })
}

/// The non-streaming completion (`docs/protocols.md` §3.1).
pub(crate) fn message(reply: &Reply) -> Value {
    let mut content: Option<String> = None;
    let mut calls = Vec::new();
    for block in &reply.blocks {
        match block {
            Block::Text { tokens, .. } => {
                content.get_or_insert_with(String::new).push_str(&tokens.concat())
            }
            Block::Json { fragments } => {
                content.get_or_insert_with(String::new).push_str(fragments.as_str());
            }
            Block::ToolUse { id, name, input, .. } => calls.push(json!({
                "id": format!("call_{id}"),
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
        }
    }
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if let Some(thought) = reply.thought.as_ref().filter(|t| t.shown == Shown::Streamed) {
        message["reasoning_content"] = json!(thought.tokens.concat());
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-{}", reply.id),
        "object": "chat.completion",
        "created": unix_now(),
        "model": reply.model,
        "system_fingerprint": "fp_sluice",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reply.stop_reason),
        }],
        "usage": usage(reply),
    })
}

/// Where [`ChatEvents`] is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Role,
    /// A thinking token as `reasoning_content`.
    Reasoning(usize),
    /// A block's first chunk: a tool call's opening fragment; nothing for text.
    BlockStart(usize),
    Delta(usize, usize),
    Finish,
    Usage,
    Done,
    End,
}

/// The chunks of a reply, made as they are pulled.
struct ChatEvents {
    reply: Reply,
    step: Step,
    /// `data: {"id":...,"choices":[{"index":0,"delta":` : the same in every chunk.
    head: String,
    /// `,"logprobs":null,"finish_reason":null}]` and `,"usage":null` when asked, then `}`.
    tail: &'static str,
    include_usage: bool,
    /// `created`, read once so every chunk has the same.
    created: u64,
    text: Option<(usize, TokenCursor)>,
    /// The index of each block among the tool calls (0, 1, ...).
    call_index: Vec<usize>,
}

/// The stream of chunks (see the module docs).
pub(crate) fn events(
    reply: Reply,
    request: &TurnRequest,
) -> impl Iterator<Item = Record> + Send + use<> {
    let created = unix_now();
    let head = format!(
        "{{\"id\":\"chatcmpl-{}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},\"system_fingerprint\":\"fp_sluice\",\"choices\":[{{\"index\":0,\"delta\":",
        reply.id,
        quoted(&reply.model)
    );
    let tail = if request.stream_usage {
        ",\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}"
    } else {
        ",\"logprobs\":null,\"finish_reason\":null}]}"
    };
    let mut calls = 0;
    let call_index = reply
        .blocks
        .iter()
        .map(|block| {
            let index = calls;
            if matches!(block, Block::ToolUse { .. }) {
                calls += 1;
            }
            index
        })
        .collect();
    ChatEvents {
        reply,
        step: Step::Role,
        head,
        tail,
        include_usage: request.stream_usage,
        created,
        text: None,
        call_index,
    }
}

/// What a delta chunk carries.
#[derive(Debug, Clone, Copy)]
enum Delta {
    /// `{"content": "..."}`.
    Content,
    /// `{"tool_calls": [{"index": N, "function": {"arguments": "..."}}]}`.
    Arguments(usize),
    /// `{"reasoning_content": "..."}`.
    Reasoning,
}

/// `data: HEAD {delta} TAIL\n\n`, the fragment escaped as JSON in place,
/// into a buffer of exactly its size (see `mock::json_text`).
fn delta_chunk(head: &str, tail: &str, delta: Delta, fragment: &str) -> Record {
    let fragment = JsonString::new(fragment);
    let mut index = itoa::Buffer::new();
    let (open, index, after_index, close): (&[u8], &str, &[u8], &[u8]) = match delta {
        Delta::Content => (b"{\"content\":", "", b"", b"}"),
        Delta::Reasoning => (b"{\"reasoning_content\":", "", b"", b"}"),
        Delta::Arguments(at) => (
            b"{\"tool_calls\":[{\"index\":",
            index.format(at),
            b",\"function\":{\"arguments\":",
            b"}}]}",
        ),
    };
    let size = 6
        + head.len()
        + open.len()
        + index.len()
        + after_index.len()
        + fragment.len()
        + close.len()
        + tail.len()
        + 2;
    let mut raw = BytesMut::with_capacity(size);
    raw.put_slice(b"data: ");
    raw.put_slice(head.as_bytes());
    raw.put_slice(open);
    raw.put_slice(index.as_bytes());
    raw.put_slice(after_index);
    fragment.put(&mut raw);
    raw.put_slice(close);
    raw.put_slice(tail.as_bytes());
    raw.put_slice(b"\n\n");
    debug_assert_eq!(raw.len(), size, "sized exactly");
    let kind =
        if matches!(delta, Delta::Reasoning) { EventKind::Thinking } else { EventKind::Content };
    Record { raw: raw.freeze(), kind }
}

impl ChatEvents {
    /// `data: HEAD delta TAIL\n\n`.
    fn chunk(&self, delta: &str, kind: EventKind) -> Record {
        let mut raw =
            BytesMut::with_capacity(6 + self.head.len() + delta.len() + self.tail.len() + 2);
        raw.put_slice(b"data: ");
        raw.put_slice(self.head.as_bytes());
        raw.put_slice(delta.as_bytes());
        raw.put_slice(self.tail.as_bytes());
        raw.put_slice(b"\n\n");
        Record { raw: raw.freeze(), kind }
    }

    /// The streamed thinking's tokens (none unless it streams).
    fn reasoning_len(&self) -> usize {
        self.reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed).map_or(0, Thought::len)
    }

    /// After the reasoning chunk `piece`: the next one, or the answer.
    fn after_reasoning(&self, piece: usize) -> Step {
        if piece < self.reasoning_len() {
            Step::Reasoning(piece)
        } else if self.reply.blocks.is_empty() {
            Step::Finish
        } else {
            Step::BlockStart(0)
        }
    }

    fn after_block(&self, index: usize) -> Step {
        if index + 1 < self.reply.blocks.len() { Step::BlockStart(index + 1) } else { Step::Finish }
    }

    fn after_delta(&self, index: usize, piece: usize) -> Step {
        let count = self.reply.blocks.get(index).map_or(0, Block::len);
        if piece < count { Step::Delta(index, piece) } else { self.after_block(index) }
    }

    fn record(&mut self, step: Step) -> Option<Record> {
        match step {
            // The live API opens a turn that starts with a tool call with
            // `content: null` (an empty string makes `@ai-sdk/openai` open an
            // empty text part in every tool step).
            Step::Role => Some(match self.reply.blocks.first() {
                Some(Block::ToolUse { .. }) => self.chunk(
                    r#"{"role":"assistant","content":null,"refusal":null}"#,
                    EventKind::Other,
                ),
                _ => self
                    .chunk(r#"{"role":"assistant","content":"","refusal":null}"#, EventKind::Other),
            }),
            Step::BlockStart(index) => match self.reply.blocks.get(index)? {
                Block::ToolUse { id, name, .. } => {
                    let delta = format!(
                        "{{\"tool_calls\":[{{\"index\":{},\"id\":\"call_{id}\",\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
                        self.call_index.get(index).copied().unwrap_or(0),
                        quoted(name)
                    );
                    Some(self.chunk(&delta, EventKind::ToolStart))
                }
                // Text has no opening chunk: its first token is its first chunk.
                Block::Text { .. } | Block::Json { .. } => self.next(),
            },
            Step::Reasoning(_) => {
                let tokens = self.reply.thought.as_ref()?.tokens.clone();
                if self.text.as_ref().is_none_or(|(at, _)| *at != usize::MAX) {
                    self.text = Some((usize::MAX, tokens.cursor()));
                }
                let (head, tail) = (self.head.as_str(), self.tail);
                let (_, cursor) = self.text.as_mut()?;
                Some(delta_chunk(head, tail, Delta::Reasoning, cursor.next_token()?))
            }
            Step::Delta(index, piece) => {
                let call = self.call_index.get(index).copied().unwrap_or(0);
                let (head, tail) = (self.head.as_str(), self.tail);
                // The hot path (one per token): written straight into one buffer.
                match self.reply.blocks.get(index)? {
                    Block::Text { tokens, .. } => {
                        if self.text.as_ref().is_none_or(|(at, _)| *at != index) {
                            self.text = Some((index, tokens.cursor()));
                        }
                        let (_, cursor) = self.text.as_mut()?;
                        Some(delta_chunk(head, tail, Delta::Content, cursor.next_token()?))
                    }
                    Block::Json { fragments, .. } => {
                        Some(delta_chunk(head, tail, Delta::Content, fragments.get(piece)?))
                    }
                    Block::ToolUse { fragments, .. } => {
                        Some(delta_chunk(head, tail, Delta::Arguments(call), fragments.get(piece)?))
                    }
                }
            }
            Step::Finish => {
                let reason = finish_reason(self.reply.stop_reason);
                let tail = self.tail.replacen(
                    "\"finish_reason\":null",
                    &format!("\"finish_reason\":\"{reason}\""),
                    1,
                );
                let mut raw = BytesMut::new();
                raw.put_slice(b"data: ");
                raw.put_slice(self.head.as_bytes());
                raw.put_slice(b"{}");
                raw.put_slice(tail.as_bytes());
                raw.put_slice(b"\n\n");
                Some(Record { raw: raw.freeze(), kind: EventKind::Other })
            }
            Step::Usage => {
                let chunk = json!({
                    "id": format!("chatcmpl-{}", self.reply.id),
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.reply.model,
                    "system_fingerprint": "fp_sluice",
                    "choices": [],
                    "usage": usage(&self.reply),
                });
                Some(encode_data(&chunk.to_string(), EventKind::Other))
            }
            Step::Done => Some(encode_data("[DONE]", EventKind::Other)),
            Step::End => None,
        }
    }
}

impl Iterator for ChatEvents {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let step = self.step;
        self.step = match step {
            Step::Role => self.after_reasoning(0),
            Step::Reasoning(piece) => self.after_reasoning(piece + 1),
            Step::BlockStart(index) => self.after_delta(index, 0),
            Step::Delta(index, piece) => self.after_delta(index, piece + 1),
            Step::Finish if self.include_usage => Step::Usage,
            Step::Finish | Step::Usage => Step::Done,
            Step::Done | Step::End => Step::End,
        };
        let record = self.record(step);
        if record.is_none() {
            self.step = Step::End;
        }
        record
    }
}
