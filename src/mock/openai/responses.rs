//! `POST /v1/responses` (`docs/protocols.md` §3.3): the request parsed into a
//! turn, and a reply encoded as its events or its response object.
//!
//! The stream, every event `event: <type>` with a `data` whose `type` equals
//! it and a `sequence_number` from 0:
//!
//! ```text
//! response.created, response.in_progress                       other
//! reasoning, when asked (output_index 0, the items after it shift by one):
//!        response.output_item.added (reasoning)                other
//!        with a summary asked for:
//!        response.reasoning_summary_part.added                 other
//!        response.reasoning_summary_text.delta × tokens        thinking
//!        response.reasoning_summary_text.done                  other
//!        response.reasoning_summary_part.done                  other
//!        response.output_item.done                             other
//! text:  response.output_item.added (message)                  other
//!        response.content_part.added                           other
//!        response.output_text.delta × tokens                   token
//!        response.output_text.done, response.content_part.done other
//!        response.output_item.done                             other
//! call:  response.output_item.added (function_call)            tool start
//!        response.function_call_arguments.delta × fragments    token
//!        response.function_call_arguments.done                 other
//!        response.output_item.done                             other
//! response.completed (the whole response, with usage)          other
//! ```

use bytes::{BufMut as _, BytesMut};
use serde_json::{Map, Value, json};

use super::{Shape, parse_format, parse_stream, parse_tool_choice, parse_tools, unix_now};
use crate::dialect::StreamSoFar;
use crate::framing::sse::encode_event;
use crate::framing::{EventKind, Record};
use crate::mock::json_text::JsonString;
use crate::mock::reply::{Block, Reply, StopReason, Thought};
use crate::mock::request::{
    Effort, HeadFacts, InvalidRequest, Reasoning, Shown, TurnRequest, body_object, invalid,
    openai_effort, optional_bool, optional_count, required_string, type_name,
};
use crate::mock::text::TokenCursor;
use crate::mock::{Codec, Events};
use crate::route::rough_tokens;

/// The Responses API's request parser and encoders.
pub(crate) const CODEC: Codec = Codec {
    parse,
    events: |reply, request| -> Events { Box::new(events(reply, request)) },
    message: |reply, request| {
        response_object(reply, request, Status::Completed, unix_now()).to_string()
    },
    failure_at: Some(failure_at),
};

/// What a stream fault after `after_tokens` tokens knows of the stream: the
/// `sequence_number` of the event it takes the place of, and the response
/// (`in_progress`, as `response.created` had it) that `response.failed`
/// ends. Run only when such a fault is planned.
fn failure_at(reply: &Reply, request: &TurnRequest, after_tokens: u32) -> StreamSoFar {
    let response = response_object(reply, request, Status::InProgress, unix_now());
    StreamSoFar {
        sequence: Some(sequence_at(reply, request, after_tokens)),
        response: Some(response),
        ..StreamSoFar::default()
    }
}

/// The `sequence_number` of the event a stream fault after `after_tokens`
/// tokens takes the place of: the next token's, or the end's when the reply
/// has no more tokens.
fn sequence_at(reply: &Reply, request: &TurnRequest, after_tokens: u32) -> u64 {
    let mut tokens = 0u32;
    let mut count = 0u64;
    for record in events(reply.clone(), request) {
        if record.kind.is_content() {
            if tokens == after_tokens {
                return count;
            }
            tokens = tokens.saturating_add(1);
        }
        count += 1;
    }
    count
}

/// The request fields a response object echoes.
const ECHOED: [&str; 10] = [
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
];

/// Parses and validates a request body. `previous_response_id` is accepted
/// and not looked up (the mock keeps no conversations).
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(body: &[u8], _head: &HeadFacts) -> Result<TurnRequest, InvalidRequest> {
    let object = body_object(body)?;
    let model = required_string(&object, "model")?;
    let tool_rounds = validate_input(object.get("input"))?;
    match object.get("instructions") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => {
            return Err(invalid(
                "instructions",
                format_args!("expected a string, got {}", type_name(other)),
            ));
        }
    }
    let stream = parse_stream(&object)?;
    let tools = parse_tools(object.get("tools"), Shape::Responses)?;
    let tool_choice = parse_tool_choice(object.get("tool_choice"), &tools, Shape::Responses)?;
    let parallel = optional_bool(&object, "parallel_tool_calls")?.unwrap_or(true);
    let format = match object.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::Object(text)) => text.get("format"),
        Some(other) => {
            return Err(invalid(
                "text",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let output_schema =
        parse_format(format, "text.format", "text.format.schema", Shape::Responses)?;
    let max_tokens = optional_count(&object, "max_output_tokens")?.unwrap_or(u64::MAX);
    let echo: Map<String, Value> = ECHOED
        .iter()
        .filter_map(|key| object.get(*key).map(|value| ((*key).to_string(), value.clone())))
        .collect();
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
        stream_usage: false,
        stop: Vec::new(),
        echo: Value::Object(echo),
        reasoning: parse_reasoning(&object)?,
        web_search: None,
        array_stream: false,
    })
}

/// `reasoning` (`effort`, `summary`) and `include`: a reasoning item whose
/// summary streams when one is asked for, and that carries
/// `encrypted_content` when `include` asks for it.
fn parse_reasoning(object: &Map<String, Value>) -> Result<Option<Reasoning>, InvalidRequest> {
    let reasoning = match object.get("reasoning") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(reasoning)) => reasoning,
        Some(other) => {
            return Err(invalid(
                "reasoning",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let effort = match reasoning.get("effort") {
        None | Some(Value::Null) => Effort::Medium,
        Some(effort) => openai_effort(effort, "reasoning.effort")?,
    };
    let shown = match reasoning.get("summary") {
        None | Some(Value::Null) => Shown::Opaque,
        Some(Value::String(summary))
            if ["auto", "concise", "detailed"].contains(&summary.as_str()) =>
        {
            Shown::Streamed
        }
        Some(other) => {
            return Err(invalid(
                "reasoning.summary",
                format_args!(
                    "Invalid value: {other}. Supported values are: 'auto', 'concise', and 'detailed'."
                ),
            ));
        }
    };
    let encrypted = object.get("include").and_then(Value::as_array).is_some_and(|include| {
        include.iter().any(|item| item.as_str() == Some("reasoning.encrypted_content"))
    });
    Ok(Some(Reasoning { budget_tokens: None, effort, shown, this_turn: true, encrypted }))
}

/// Checks `input` (a string or a list of items); returns the tool rounds it
/// ends with: runs of `function_call` and `function_call_output` items,
/// counted back from the end to the last assistant message. With
/// `previous_response_id`, a round's calls are in the previous response and
/// only their outputs are here; those count as the round.
fn validate_input(input: Option<&Value>) -> Result<u32, InvalidRequest> {
    let items = match input {
        None | Some(Value::Null | Value::String(_)) => return Ok(0),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                "input",
                format_args!("expected a string or an array, got {}", type_name(other)),
            ));
        }
    };
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(invalid(
                &format!("input.{i}"),
                format_args!("expected an object, got {}", type_name(item)),
            ));
        }
    }
    let mut rounds = 0u32;
    let mut in_round = false;
    for item in items.iter().rev() {
        let kind = item.get("type").and_then(Value::as_str);
        let role = item.get("role").and_then(Value::as_str);
        match (kind, role) {
            (Some("function_call" | "function_call_output"), _) => {
                if !in_round {
                    rounds = rounds.saturating_add(1);
                    in_round = true;
                }
            }
            (_, Some("assistant")) => break,
            _ => in_round = false,
        }
    }
    Ok(rounds)
}

/// A response's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Completed,
}

/// The ids of a reply's output items: a text block's `msg_...`, a call's `fc_...`.
fn item_id(reply: &Reply, block: &Block) -> String {
    match block {
        Block::ToolUse { id, .. } => format!("fc_{id}"),
        Block::Text { .. } | Block::Json { .. } => format!("msg_{}", reply.id),
    }
}

/// An output item, done.
fn item(reply: &Reply, block: &Block) -> Value {
    match block {
        Block::Text { tokens, .. } => message_item(reply, block, &tokens.concat(), "completed"),
        Block::Json { fragments } => message_item(reply, block, fragments.as_str(), "completed"),
        Block::ToolUse { id, name, input, .. } => json!({
            "type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
            "name": name, "arguments": input.to_string(), "status": "completed",
        }),
    }
}

/// The reasoning item (`done`: with its summary).
fn reasoning_item(reply: &Reply, request: &TurnRequest, done: bool) -> Option<Value> {
    let thought = reply.thought.as_ref()?;
    let summary = if done && thought.shown == Shown::Streamed {
        json!([{"type": "summary_text", "text": thought.tokens.concat()}])
    } else {
        json!([])
    };
    let mut item =
        json!({"type": "reasoning", "id": format!("rs_{}", reply.id), "summary": summary});
    if request.reasoning.is_some_and(|asked| asked.encrypted) {
        // Opaque, as the API's is; what a client sends back, not what it reads.
        item["encrypted_content"] = json!(format!("sluice-reasoning-{}", reply.id));
    }
    Some(item)
}

fn message_item(reply: &Reply, block: &Block, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": item_id(reply, block), "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    })
}

fn usage(reply: &Reply) -> Value {
    let output = reply.output_tokens() as u64;
    json!({
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reply.thinking_tokens()},
        "total_tokens": reply.input_tokens.saturating_add(output),
    })
}

/// The response object: in progress (no output yet) or completed (the
/// whole output, usage), with the request's echoed fields.
fn response_object(reply: &Reply, request: &TurnRequest, status: Status, created_at: u64) -> Value {
    let done = status == Status::Completed;
    let mut response = json!({
        "id": format!("resp_{}", reply.id),
        "object": "response",
        "created_at": created_at,
        "status": if done { "completed" } else { "in_progress" },
        "background": false,
        "error": null,
        "incomplete_details": if done && reply.stop_reason == StopReason::MaxTokens {
            json!({"reason": "max_output_tokens"})
        } else {
            Value::Null
        },
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "model": reply.model,
        "output": if done {
            let reasoning = reasoning_item(reply, request, true);
            let items = reply.blocks.iter().map(|block| item(reply, block));
            Value::Array(reasoning.into_iter().chain(items).collect())
        } else {
            json!([])
        },
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": reasoning_echo(request),
        "service_tier": "default",
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if done { usage(reply) } else { Value::Null },
        "user": null,
    });
    if let (Value::Object(response), Value::Object(echo)) = (&mut response, &request.echo) {
        for (key, value) in echo {
            if !value.is_null() {
                response.insert(key.clone(), value.clone());
            }
        }
    }
    if done && reply.stop_reason == StopReason::MaxTokens {
        response["status"] = json!("incomplete");
    }
    response
}

/// The response's `reasoning`: the effort and summary asked for.
fn reasoning_echo(request: &TurnRequest) -> Value {
    let Some(asked) = request.reasoning else {
        return json!({"effort": null, "summary": null});
    };
    let effort = match asked.effort {
        Effort::None => "none",
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
        Effort::Max => "xhigh",
    };
    let summary = if asked.shown == Shown::Streamed { json!("auto") } else { Value::Null };
    json!({"effort": effort, "summary": summary})
}

/// Where [`ResponseEvents`] is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Created,
    InProgress,
    ReasoningAdded,
    SummaryPartAdded,
    SummaryDelta(usize),
    SummaryTextDone,
    SummaryPartDone,
    ReasoningDone,
    ItemAdded(usize),
    PartAdded(usize),
    Delta(usize, usize),
    ContentDone(usize),
    PartDone(usize),
    ItemDone(usize),
    Completed,
    End,
}

/// The events of a reply, made as they are pulled.
struct ResponseEvents {
    reply: Reply,
    request: TurnRequest,
    step: Step,
    sequence: u64,
    created_at: u64,
    text: Option<(usize, TokenCursor)>,
    /// Each output item's id, made once.
    ids: Vec<String>,
}

/// The stream of events (see the module docs).
pub(crate) fn events(
    reply: Reply,
    request: &TurnRequest,
) -> impl Iterator<Item = Record> + Send + use<> {
    // The echoed fields, not the tools' schemas again: what the events need.
    let request = TurnRequest { tools: Vec::new(), ..request.clone() };
    let ids = reply.blocks.iter().map(|block| item_id(&reply, block)).collect();
    ResponseEvents {
        reply,
        request,
        step: Step::Created,
        sequence: 0,
        created_at: unix_now(),
        text: None,
        ids,
    }
}

/// A `.delta` event, written straight into one buffer of exactly its size
/// (one per token; see `mock::json_text`).
fn delta_event(
    kind: &str,
    item_id: &str,
    output_index: usize,
    text_part: bool,
    fragment: &str,
    sequence: u64,
) -> Record {
    let fragment = JsonString::new(fragment);
    const CONTENT_INDEX: &[u8] = b",\"content_index\":0";
    const LOGPROBS: &[u8] = b",\"logprobs\":[]";
    let (mut output_index_text, mut sequence_text) = (itoa::Buffer::new(), itoa::Buffer::new());
    let output_index = output_index_text.format(output_index);
    let sequence = sequence_text.format(sequence);
    let parts: [&[u8]; 9] = [
        b"event: ",
        kind.as_bytes(),
        b"\ndata: {\"type\":\"",
        kind.as_bytes(),
        b"\",\"item_id\":\"",
        item_id.as_bytes(),
        b"\",\"output_index\":",
        output_index.as_bytes(),
        if text_part { CONTENT_INDEX } else { b"" },
    ];
    let tail: [&[u8]; 4] = [
        if text_part { LOGPROBS } else { b"" },
        b",\"sequence_number\":",
        sequence.as_bytes(),
        b"}\n\n",
    ];
    let size = parts.iter().chain(&tail).map(|part| part.len()).sum::<usize>()
        + b",\"delta\":".len()
        + fragment.len();
    let mut raw = BytesMut::with_capacity(size);
    parts.iter().for_each(|part| raw.put_slice(part));
    raw.put_slice(b",\"delta\":");
    fragment.put(&mut raw);
    tail.iter().for_each(|part| raw.put_slice(part));
    debug_assert_eq!(raw.len(), size, "sized exactly");
    Record { raw: raw.freeze(), kind: EventKind::Content }
}

/// A `response.reasoning_summary_text.delta` event (one per thinking token),
/// into a buffer of exactly its size.
fn summary_delta(item_id: &str, fragment: &str, sequence: u64) -> Record {
    let fragment = JsonString::new(fragment);
    const HEAD: &[u8] = b"event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"item_id\":\"";
    const BEFORE_DELTA: &[u8] = b"\",\"output_index\":0,\"summary_index\":0,\"delta\":";
    let mut sequence_text = itoa::Buffer::new();
    let sequence = sequence_text.format(sequence);
    let size = HEAD.len()
        + item_id.len()
        + BEFORE_DELTA.len()
        + fragment.len()
        + b",\"sequence_number\":".len()
        + sequence.len()
        + 3;
    let mut raw = BytesMut::with_capacity(size);
    raw.put_slice(HEAD);
    raw.put_slice(item_id.as_bytes());
    raw.put_slice(BEFORE_DELTA);
    fragment.put(&mut raw);
    raw.put_slice(b",\"sequence_number\":");
    raw.put_slice(sequence.as_bytes());
    raw.put_slice(b"}\n\n");
    debug_assert_eq!(raw.len(), size, "sized exactly");
    Record { raw: raw.freeze(), kind: EventKind::Thinking }
}

impl ResponseEvents {
    fn is_call(&self, index: usize) -> bool {
        matches!(self.reply.blocks.get(index), Some(Block::ToolUse { .. }))
    }

    fn after_item(&self, index: usize) -> Step {
        if index + 1 < self.reply.blocks.len() {
            Step::ItemAdded(index + 1)
        } else {
            Step::Completed
        }
    }

    fn after_delta(&self, index: usize, piece: usize) -> Step {
        let count = self.reply.blocks.get(index).map_or(0, Block::len);
        if piece < count { Step::Delta(index, piece) } else { Step::ContentDone(index) }
    }

    /// An event whose `data` is `payload` with its `type` and `sequence_number`.
    fn event(&self, kind: &str, mut payload: Value, event_kind: EventKind) -> Record {
        if let Value::Object(object) = &mut payload {
            object.insert("type".to_string(), json!(kind));
            object.insert("sequence_number".to_string(), json!(self.sequence));
        }
        encode_event(kind, &payload.to_string(), event_kind)
    }

    /// The summary's tokens, when it streams one.
    fn summary_len(&self) -> Option<usize> {
        self.reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed).map(Thought::len)
    }

    fn after_summary_delta(&self, piece: usize) -> Step {
        if self.summary_len().is_some_and(|len| piece < len) {
            Step::SummaryDelta(piece)
        } else {
            Step::SummaryTextDone
        }
    }

    /// The first step after `response.in_progress`.
    fn after_start(&self) -> Step {
        match (&self.reply.thought, self.reply.blocks.is_empty()) {
            (Some(_), _) => Step::ReasoningAdded,
            (None, true) => Step::Completed,
            (None, false) => Step::ItemAdded(0),
        }
    }

    /// A reasoning event of `kind` on output item 0, with `fields`.
    fn reasoning_event(&self, kind: &str, fields: Value) -> Record {
        let mut payload = json!({"item_id": format!("rs_{}", self.reply.id), "output_index": 0, "summary_index": 0});
        if let (Value::Object(payload), Value::Object(fields)) = (&mut payload, fields) {
            payload.extend(fields);
        }
        self.event(kind, payload, EventKind::Other)
    }

    fn record(&mut self, step: Step) -> Option<Record> {
        let reply = &self.reply;
        // Output index of visible item `index`: after the reasoning item.
        let offset = usize::from(reply.thought.is_some());
        let record = match step {
            Step::ReasoningAdded => {
                let item = reasoning_item(reply, &self.request, false)?;
                self.event(
                    "response.output_item.added",
                    json!({"output_index": 0, "item": item}),
                    EventKind::Other,
                )
            }
            Step::SummaryPartAdded => self.reasoning_event(
                "response.reasoning_summary_part.added",
                json!({"part": {"type": "summary_text", "text": ""}}),
            ),
            Step::SummaryDelta(_) => {
                let thought = reply.thought.as_ref()?;
                if self.text.as_ref().is_none_or(|(at, _)| *at != usize::MAX) {
                    self.text = Some((usize::MAX, thought.tokens.cursor()));
                }
                let id = format!("rs_{}", reply.id);
                let sequence = self.sequence;
                let (_, cursor) = self.text.as_mut()?;
                let token = cursor.next_token()?;
                summary_delta(&id, token, sequence)
            }
            Step::SummaryTextDone => {
                let text = reply.thought.as_ref()?.tokens.concat();
                self.reasoning_event("response.reasoning_summary_text.done", json!({"text": text}))
            }
            Step::SummaryPartDone => {
                let text = reply.thought.as_ref()?.tokens.concat();
                self.reasoning_event(
                    "response.reasoning_summary_part.done",
                    json!({"part": {"type": "summary_text", "text": text}}),
                )
            }
            Step::ReasoningDone => {
                let item = reasoning_item(reply, &self.request, true)?;
                self.event(
                    "response.output_item.done",
                    json!({"output_index": 0, "item": item}),
                    EventKind::Other,
                )
            }
            Step::Created | Step::InProgress => {
                let kind =
                    if step == Step::Created { "response.created" } else { "response.in_progress" };
                let response =
                    response_object(reply, &self.request, Status::InProgress, self.created_at);
                self.event(kind, json!({"response": response}), EventKind::Other)
            }
            Step::ItemAdded(index) => {
                let block = reply.blocks.get(index)?;
                let (item, kind) = match block {
                    Block::ToolUse { id, name, .. } => (
                        json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
                            "name": name, "arguments": "", "status": "in_progress"}),
                        EventKind::ToolStart,
                    ),
                    Block::Text { .. } | Block::Json { .. } => (
                        json!({"type": "message", "id": item_id(reply, block), "status": "in_progress",
                            "role": "assistant", "content": []}),
                        EventKind::Other,
                    ),
                };
                self.event(
                    "response.output_item.added",
                    json!({"output_index": index + offset, "item": item}),
                    kind,
                )
            }
            Step::PartAdded(index) => {
                let block = reply.blocks.get(index)?;
                let payload = json!({"item_id": item_id(reply, block), "output_index": index + offset, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}});
                self.event("response.content_part.added", payload, EventKind::Other)
            }
            Step::Delta(index, piece) => {
                let block = reply.blocks.get(index)?;
                let id = self.ids.get(index)?;
                let sequence = self.sequence;
                match block {
                    Block::Text { tokens, .. } => {
                        if self.text.as_ref().is_none_or(|(at, _)| *at != index) {
                            self.text = Some((index, tokens.cursor()));
                        }
                        let (_, cursor) = self.text.as_mut()?;
                        let token = cursor.next_token()?;
                        delta_event(
                            "response.output_text.delta",
                            id,
                            index + offset,
                            true,
                            token,
                            sequence,
                        )
                    }
                    Block::Json { fragments, .. } => delta_event(
                        "response.output_text.delta",
                        id,
                        index + offset,
                        true,
                        fragments.get(piece)?,
                        sequence,
                    ),
                    Block::ToolUse { fragments, .. } => delta_event(
                        "response.function_call_arguments.delta",
                        id,
                        index + offset,
                        false,
                        fragments.get(piece)?,
                        sequence,
                    ),
                }
            }
            Step::ContentDone(index) => {
                let block = reply.blocks.get(index)?;
                let id = item_id(reply, block);
                match block {
                    Block::ToolUse { input, .. } => self.event(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index + offset, "arguments": input.to_string()}),
                        EventKind::Other,
                    ),
                    Block::Text { tokens, .. } => {
                        let text = tokens.concat();
                        self.event(
                            "response.output_text.done",
                            json!({"item_id": id, "output_index": index + offset, "content_index": 0, "text": text, "logprobs": []}),
                            EventKind::Other,
                        )
                    }
                    Block::Json { fragments } => self.event(
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index + offset, "content_index": 0, "text": fragments.as_str(), "logprobs": []}),
                        EventKind::Other,
                    ),
                }
            }
            Step::PartDone(index) => {
                let block = reply.blocks.get(index)?;
                let text = match block {
                    Block::Text { tokens, .. } => tokens.concat(),
                    Block::Json { fragments } => fragments.as_str().to_string(),
                    Block::ToolUse { .. } => return None,
                };
                let payload = json!({"item_id": item_id(reply, block), "output_index": index + offset, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}});
                self.event("response.content_part.done", payload, EventKind::Other)
            }
            Step::ItemDone(index) => {
                let item = item(reply, reply.blocks.get(index)?);
                self.event(
                    "response.output_item.done",
                    json!({"output_index": index + offset, "item": item}),
                    EventKind::Other,
                )
            }
            Step::Completed => {
                let response =
                    response_object(reply, &self.request, Status::Completed, self.created_at);
                let kind = if reply.stop_reason == StopReason::MaxTokens {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                self.event(kind, json!({"response": response}), EventKind::Other)
            }
            Step::End => return None,
        };
        self.sequence = self.sequence.saturating_add(1);
        Some(record)
    }
}

impl Iterator for ResponseEvents {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let step = self.step;
        self.step = match step {
            Step::Created => Step::InProgress,
            Step::InProgress => self.after_start(),
            Step::ReasoningAdded if self.summary_len().is_some() => Step::SummaryPartAdded,
            Step::ReasoningAdded | Step::SummaryPartDone => Step::ReasoningDone,
            Step::SummaryPartAdded => self.after_summary_delta(0),
            Step::SummaryDelta(piece) => self.after_summary_delta(piece + 1),
            Step::SummaryTextDone => Step::SummaryPartDone,
            Step::ReasoningDone if self.reply.blocks.is_empty() => Step::Completed,
            Step::ReasoningDone => Step::ItemAdded(0),
            Step::ItemAdded(index) if self.is_call(index) => self.after_delta(index, 0),
            Step::ItemAdded(index) => Step::PartAdded(index),
            Step::PartAdded(index) => self.after_delta(index, 0),
            Step::Delta(index, piece) => self.after_delta(index, piece + 1),
            Step::ContentDone(index) if self.is_call(index) => Step::ItemDone(index),
            Step::ContentDone(index) => Step::PartDone(index),
            Step::PartDone(index) => Step::ItemDone(index),
            Step::ItemDone(index) => self.after_item(index),
            Step::Completed | Step::End => Step::End,
        };
        let record = self.record(step);
        if record.is_none() {
            self.step = Step::End;
        }
        record
    }
}
