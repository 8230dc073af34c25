//! The Anthropic Messages API (`docs/protocols.md` §2): its requests parsed
//! into a [`TurnRequest`](super::request::TurnRequest) ([`request`]), and a
//! [`Reply`] encoded as its SSE stream ([`events`]) or its message
//! ([`message`]).
//!
//! The stream follows the Messages grammar of `docs/protocols.md` §2.4 exactly:
//!
//! ```text
//! message_start ping (content_block_start content_block_delta* content_block_stop)* message_delta message_stop
//! ```
//!
//! with dense block indexes from 0, one block open at a time, cumulative
//! `usage.output_tokens` in `message_delta`, and `"type"` equal to the event
//! name inside every JSON payload. A reply that thinks opens with a
//! `thinking` block (its `thinking_delta`s, then one `signature_delta`) or a
//! whole `redacted_thinking` block, at index 0 ([`thinking`]).

pub(crate) mod request;
pub(crate) mod thinking;

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use super::json_text::{JsonString, put_escaped, put_json_string};
use super::reply::{Block, Citation, Reply, SearchResult, StopReason, Thought, WebSearch};
use super::request::Shown;
use super::text::TokenCursor;
use super::{Codec, HeadFacts, InstantError, InstantRequest, MockApi, MockEndpoint, Serve};
use crate::dialect::Dialect;
use crate::framing::sse::encode_event;
use crate::framing::{EventKind, Record};
pub(crate) use request::{Endpoint, parse};

/// The mock of the Messages API: `POST /v1/messages`, and
/// `POST /v1/messages/count_tokens` answered at once.
pub(crate) const API: MockApi = MockApi {
    name: "Claude API",
    dialect: Dialect::Anthropic,
    endpoints: &[
        MockEndpoint::post("/v1/messages", Serve::Generate(CODEC)),
        MockEndpoint::post("/v1/messages/count_tokens", Serve::Instant(count_tokens)),
    ],
};

const CODEC: Codec = Codec {
    parse: |body, head| parse(body, head, Endpoint::Messages),
    events: |reply, _| Box::new(events(reply)),
    message: |reply, _| message(reply).to_string(),
    failure_at: None,
};

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`.
fn count_tokens(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    let parsed = parse(request.body, &HeadFacts::default(), Endpoint::CountTokens)?;
    Ok(json!({"input_tokens": parsed.input_tokens}).to_string())
}

/// The stream of SSE records, built one event at a time as it is pulled.
pub(crate) fn events(reply: Reply) -> impl Iterator<Item = Record> + Send {
    Events { reply, step: Step::MessageStart, text: None, signer: None, head: None }
}

/// `stop_reason` on the wire.
pub(crate) fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ToolUse => "tool_use",
    }
}

/// The non-streaming response body (`docs/protocols.md` §2.3).
pub(crate) fn message(reply: &Reply) -> Value {
    let thought = reply.thought.as_ref().map(|thought| thought_block(reply, thought, true));
    let search = reply.search.iter().flat_map(|search| {
        let call = json!({"type": "server_tool_use", "id": format!("srvtoolu_{}", search.id),
            "name": search.name, "input": search.input});
        [call, search_result_block(search)]
    });
    let content: Vec<Value> = thought
        .into_iter()
        .chain(search)
        .chain(reply.blocks.iter().map(|block| match block {
            Block::Text { tokens, citation: None } => {
                json!({"type": "text", "text": tokens.concat()})
            }
            Block::Text { tokens, citation: Some(citation) } => json!({"type": "text",
                "text": tokens.concat(), "citations": [citation_json(citation)]}),
            Block::Json { fragments } => json!({"type": "text", "text": fragments.as_str()}),
            Block::ToolUse { id, name, input, .. } => {
                json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": name, "input": input})
            }
        }))
        .collect();
    json!({
        "id": format!("msg_{}", reply.id),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason(reply.stop_reason),
        "stop_sequence": null,
        "usage": usage(reply, reply.output_tokens()),
    })
}

/// A thinking block whole (`whole`: the non-streamed message), or as its
/// `content_block_start` opens it (empty text and signature).
fn thought_block(reply: &Reply, thought: &Thought, whole: bool) -> Value {
    match thought.shown {
        Shown::Streamed if whole => {
            let text = thought.tokens.concat();
            json!({"type": "thinking", "thinking": text, "signature": thinking::signature(&text)})
        }
        Shown::Streamed => json!({"type": "thinking", "thinking": "", "signature": ""}),
        Shown::Opaque | Shown::Hidden => {
            json!({"type": "redacted_thinking", "data": thinking::redacted_data(&reply.id)})
        }
    }
}

/// A search's results, whole, as the `web_search_tool_result` block.
fn search_result_block(search: &WebSearch) -> Value {
    let results: Vec<Value> = search.results.iter().map(search_result).collect();
    json!({"type": "web_search_tool_result", "tool_use_id": format!("srvtoolu_{}", search.id),
        "content": results})
}

fn search_result(result: &SearchResult) -> Value {
    json!({"type": "web_search_result", "url": result.url, "title": result.title,
        "encrypted_content": opaque(&result.url), "page_age": null})
}

fn citation_json(citation: &Citation) -> Value {
    json!({"type": "web_search_result_location", "url": citation.source.url,
        "title": citation.source.title, "encrypted_index": opaque(&citation.cited_text),
        "cited_text": citation.cited_text})
}

/// Opaque base64, as the API's encrypted fields are, and stable for `seed`.
fn opaque(seed: &str) -> String {
    thinking::redacted_data(seed)
}

fn usage(reply: &Reply, output_tokens: usize) -> Value {
    let mut usage = json!({
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    });
    if reply.search.is_some() {
        usage["server_tool_use"] = json!({"web_search_requests": 1});
    }
    usage
}

/// What every delta of one block starts with, up to its fragment:
/// `event: content_block_delta`, then
/// `data: {"type":"content_block_delta","index":I,"delta":{"type":"T","F":`.
/// Made once a block rather than once a token (a token's event is then
/// three copies into one buffer).
#[derive(Debug)]
struct DeltaHead {
    index: usize,
    delta_type: &'static str,
    bytes: Vec<u8>,
}

impl DeltaHead {
    fn new(index: usize, delta_type: &'static str, field: &str) -> Self {
        let mut bytes = Vec::with_capacity(120 + delta_type.len() + field.len());
        bytes.put_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        bytes.put_slice(itoa::Buffer::new().format(index).as_bytes());
        bytes.put_slice(b",\"delta\":{\"type\":\"");
        bytes.put_slice(delta_type.as_bytes());
        bytes.put_slice(b"\",\"");
        bytes.put_slice(field.as_bytes());
        bytes.put_slice(b"\":");
        Self { index, delta_type, bytes }
    }
}

/// The head of block `index`'s `delta_type` deltas: `cache`'s, or made anew
/// (and kept) when `cache` holds another block's or another type's.
fn delta_head<'a>(
    cache: &'a mut Option<DeltaHead>,
    index: usize,
    delta_type: &'static str,
    field: &str,
) -> &'a DeltaHead {
    if cache.as_ref().is_some_and(|head| head.index != index || head.delta_type != delta_type) {
        *cache = None;
    }
    cache.get_or_insert_with(|| DeltaHead::new(index, delta_type, field))
}

/// The length of a delta event after `head`, exactly (see
/// `mock::json_text`): the fragment as a JSON string, then `}}` and the
/// blank line.
fn delta_capacity(head: &DeltaHead, fragment: JsonString<'_>) -> usize {
    head.bytes.len() + fragment.len() + 4
}

/// A `content_block_delta` event, encoded without building a JSON value:
/// `{"type":"content_block_delta","index":I,"delta":{"type":T,"F":"…"}}`.
fn encode_delta(head: &DeltaHead, kind: EventKind, fragment: &str) -> Record {
    let fragment = JsonString::new(fragment);
    let size = delta_capacity(head, fragment);
    let mut raw = BytesMut::with_capacity(size);
    raw.put_slice(&head.bytes);
    fragment.put(&mut raw);
    raw.put_slice(b"}}\n\n");
    debug_assert_eq!(raw.len(), size, "sized exactly");
    Record { raw: raw.freeze(), kind }
}

/// The events of every reply whose JSON is fixed but for a block's index.
/// Built with `json!` they cost about 10,000 instructions each (an ordered
/// map, its keys, then the text); written directly, a few hundred. The bytes
/// are the same (tested against `json!`'s).
#[derive(Debug, Clone, Copy)]
enum FixedEvent {
    Ping,
    TextBlockStart(usize),
    BlockStop(usize),
    MessageStop,
}

fn fixed_event(event: FixedEvent) -> Record {
    let name = match event {
        FixedEvent::Ping => "ping",
        FixedEvent::TextBlockStart(_) => "content_block_start",
        FixedEvent::BlockStop(_) => "content_block_stop",
        FixedEvent::MessageStop => "message_stop",
    };
    let mut raw = event_head(name, 96);
    match event {
        FixedEvent::Ping => raw.put_slice(br#"{"type":"ping"}"#),
        FixedEvent::MessageStop => raw.put_slice(br#"{"type":"message_stop"}"#),
        FixedEvent::TextBlockStart(index) => {
            raw.put_slice(br#"{"type":"content_block_start","index":"#);
            raw.put_slice(itoa::Buffer::new().format(index).as_bytes());
            raw.put_slice(br#","content_block":{"type":"text","text":""}}"#);
        }
        FixedEvent::BlockStop(index) => {
            raw.put_slice(br#"{"type":"content_block_stop","index":"#);
            raw.put_slice(itoa::Buffer::new().format(index).as_bytes());
            raw.put_u8(b'}');
        }
    }
    raw.put_slice(b"\n\n");
    Record { raw: raw.freeze(), kind: EventKind::Other }
}

/// `message_start`, written directly (once a reply, but as costly as a
/// dozen tokens when built with `json!`): the message with no content yet,
/// its usage as [`usage`] makes it with one output token.
fn message_start(reply: &Reply) -> Record {
    let mut raw = event_head("message_start", 320 + reply.id.len() + reply.model.len());
    raw.put_slice(br#"{"type":"message_start","message":{"id":"msg_"#);
    put_escaped(&mut raw, &reply.id);
    raw.put_slice(br#"","type":"message","role":"assistant","model":"#);
    put_json_string(&mut raw, &reply.model);
    raw.put_slice(
        br#","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":"#,
    );
    raw.put_slice(itoa::Buffer::new().format(reply.input_tokens).as_bytes());
    raw.put_slice(
        br#","cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1"#,
    );
    put_search_usage(&mut raw, reply);
    raw.put_slice(b"}}}\n\n");
    Record { raw: raw.freeze(), kind: EventKind::Other }
}

/// `message_delta`, written directly: the stop reason, the output tokens
/// (all of them: the stream is over), and the searches made.
fn message_delta(reply: &Reply) -> Record {
    let mut raw = event_head("message_delta", 160);
    raw.put_slice(br#"{"type":"message_delta","delta":{"stop_reason":""#);
    raw.put_slice(stop_reason(reply.stop_reason).as_bytes());
    raw.put_slice(br#"","stop_sequence":null},"usage":{"output_tokens":"#);
    raw.put_slice(itoa::Buffer::new().format(reply.output_tokens()).as_bytes());
    put_search_usage(&mut raw, reply);
    raw.put_slice(b"}}\n\n");
    Record { raw: raw.freeze(), kind: EventKind::Other }
}

/// A usage's count of searches, when the reply searched.
fn put_search_usage(raw: &mut BytesMut, reply: &Reply) {
    if reply.search.is_some() {
        raw.put_slice(br#","server_tool_use":{"web_search_requests":1}"#);
    }
}

/// An SSE event's buffer with its name line and `data: ` written, room for
/// `data` more bytes.
fn event_head(name: &str, data: usize) -> BytesMut {
    let mut raw = BytesMut::with_capacity(16 + name.len() + data);
    raw.put_slice(b"event: ");
    raw.put_slice(name.as_bytes());
    raw.put_slice(b"\ndata: ");
    raw
}

/// Where [`Events`] is in the grammar.
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
/// `stream::iter` and costs nothing until pulled. Indexes are the wire's:
/// with a thought, block 0 is its thinking block and visible block `i` is
/// at `i + 1`.
#[derive(Debug)]
pub(crate) struct Events {
    reply: Reply,
    step: Step,
    /// The text or thinking block being streamed, and the cursor making its tokens.
    text: Option<(usize, TokenCursor)>,
    /// The signature of the thinking streamed so far.
    signer: Option<thinking::Signer>,
    /// The current block's delta head.
    head: Option<DeltaHead>,
}

/// What is at wire index `index` of `reply`: its thought, its search's call
/// and results, then its visible blocks.
fn block_at(reply: &Reply, index: usize) -> Option<WireBlock<'_>> {
    let thought = usize::from(reply.thought.is_some());
    match (index.checked_sub(before_visible(reply)), &reply.search) {
        (Some(visible), _) => reply.blocks.get(visible).map(WireBlock::Visible),
        (None, _) if index < thought => reply.thought.as_deref().map(WireBlock::Thought),
        (None, Some(search)) if index == thought => Some(WireBlock::SearchCall(search)),
        (None, Some(search)) => Some(WireBlock::SearchResults(search)),
        (None, None) => None,
    }
}

/// Wire blocks before the visible ones: 1 for a thought, 2 for a search.
fn before_visible(reply: &Reply) -> usize {
    usize::from(reply.thought.is_some()) + 2 * usize::from(reply.search.is_some())
}

/// What is at a wire index.
enum WireBlock<'a> {
    Thought(&'a Thought),
    SearchCall(&'a WebSearch),
    SearchResults(&'a WebSearch),
    Visible(&'a Block),
}

impl Events {
    /// Blocks before the visible ones.
    fn thoughts(&self) -> usize {
        before_visible(&self.reply)
    }

    fn block(&self, index: usize) -> Option<WireBlock<'_>> {
        block_at(&self.reply, index)
    }

    /// Deltas of the block at `index`: a thinking block's tokens and its
    /// signature; none for a redacted one, which comes whole.
    fn deltas(&self, index: usize) -> usize {
        match self.block(index) {
            Some(WireBlock::Thought(thought)) if thought.shown == Shown::Streamed => {
                thought.len() + 1
            }
            Some(WireBlock::Thought(_) | WireBlock::SearchResults(_)) | None => 0,
            Some(WireBlock::SearchCall(search)) => search.fragments.len(),
            // A cited text opens with its citation.
            Some(WireBlock::Visible(block @ Block::Text { citation: Some(_), .. })) => {
                block.len() + 1
            }
            Some(WireBlock::Visible(block)) => block.len(),
        }
    }

    fn after_block(&self, index: usize) -> Step {
        if index + 1 < self.thoughts() + self.reply.blocks.len() {
            Step::BlockStart(index + 1)
        } else {
            Step::MessageDelta
        }
    }

    fn after_delta(&self, index: usize, piece: usize) -> Step {
        if piece < self.deltas(index) { Step::Delta(index, piece) } else { Step::BlockStop(index) }
    }

    /// The next token of `tokens`, the text or thinking of the block at
    /// `index`: a field of the events' own, so that the reply stays borrowed
    /// while the cursor moves (no copy of the generator per token).
    fn next_token<'a>(
        text: &'a mut Option<(usize, TokenCursor)>,
        index: usize,
        tokens: &super::text::LazyTokens,
    ) -> Option<&'a str> {
        if text.as_ref().is_none_or(|(at, _)| *at != index) {
            *text = Some((index, tokens.cursor()));
        }
        let (_, cursor) = text.as_mut()?;
        cursor.next_token()
    }

    fn record(&mut self, step: Step) -> Option<Record> {
        let reply = &self.reply;
        let (name, payload, kind) = match step {
            Step::MessageStart => return Some(message_start(reply)),
            Step::Ping => return Some(fixed_event(FixedEvent::Ping)),
            Step::BlockStart(index) => {
                let (block, kind) = match self.block(index)? {
                    WireBlock::Thought(thought) => {
                        (thought_block(reply, thought, false), EventKind::Other)
                    }
                    WireBlock::SearchCall(search) => (
                        json!({"type": "server_tool_use", "id": format!("srvtoolu_{}", search.id),
                            "name": search.name, "input": {}}),
                        EventKind::ToolStart,
                    ),
                    WireBlock::SearchResults(search) => {
                        (search_result_block(search), EventKind::Other)
                    }
                    WireBlock::Visible(Block::Text { .. } | Block::Json { .. }) => {
                        // The usual block (one or more a reply): written directly.
                        return Some(fixed_event(FixedEvent::TextBlockStart(index)));
                    }
                    WireBlock::Visible(Block::ToolUse { id, name, .. }) => (
                        json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": name, "input": {}}),
                        EventKind::ToolStart,
                    ),
                };
                let payload =
                    json!({"type": "content_block_start", "index": index, "content_block": block});
                ("content_block_start", payload, kind)
            }
            Step::Delta(index, piece) => {
                // The hot path (one per token): written straight into one buffer.
                let content = EventKind::Content;
                return match block_at(reply, index)? {
                    WireBlock::Thought(thought) if piece < thought.len() => {
                        let token = Self::next_token(&mut self.text, index, &thought.tokens)?;
                        self.signer.get_or_insert_default().update(token);
                        let kind = EventKind::Thinking;
                        let head = delta_head(&mut self.head, index, "thinking_delta", "thinking");
                        Some(encode_delta(head, kind, token))
                    }
                    WireBlock::Thought(_) => {
                        let signature = self.signer.take().unwrap_or_default().finish();
                        let kind = EventKind::Other;
                        let head =
                            delta_head(&mut self.head, index, "signature_delta", "signature");
                        Some(encode_delta(head, kind, &signature))
                    }
                    WireBlock::SearchCall(search) => {
                        let head =
                            delta_head(&mut self.head, index, "input_json_delta", "partial_json");
                        Some(encode_delta(head, content, search.fragments.get(piece)?))
                    }
                    WireBlock::SearchResults(_) => None,
                    WireBlock::Visible(Block::Text { citation: Some(citation), .. })
                        if piece == 0 =>
                    {
                        let delta = json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "citations_delta", "citation": citation_json(citation)}});
                        let data = delta.to_string();
                        Some(encode_event("content_block_delta", &data, EventKind::Other))
                    }
                    WireBlock::Visible(Block::Text { tokens, .. }) => {
                        let token = Self::next_token(&mut self.text, index, tokens)?;
                        let head = delta_head(&mut self.head, index, "text_delta", "text");
                        Some(encode_delta(head, content, token))
                    }
                    WireBlock::Visible(Block::Json { fragments, .. }) => {
                        let head = delta_head(&mut self.head, index, "text_delta", "text");
                        Some(encode_delta(head, content, fragments.get(piece)?))
                    }
                    WireBlock::Visible(Block::ToolUse { fragments, .. }) => {
                        let head =
                            delta_head(&mut self.head, index, "input_json_delta", "partial_json");
                        Some(encode_delta(head, content, fragments.get(piece)?))
                    }
                };
            }
            Step::BlockStop(index) => {
                return Some(fixed_event(FixedEvent::BlockStop(index)));
            }
            Step::MessageDelta => return Some(message_delta(reply)),
            Step::MessageStop => return Some(fixed_event(FixedEvent::MessageStop)),
            Step::Done => return None,
        };
        Some(encode_event(name, &payload.to_string(), kind))
    }
}

impl Iterator for Events {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let step = self.step;
        self.step = match step {
            Step::MessageStart => Step::Ping,
            Step::Ping if self.thoughts() + self.reply.blocks.len() == 0 => Step::MessageDelta,
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
