//! The Gemini API and Vertex AI (`docs/protocols.md` §7): its requests
//! parsed into a [`TurnRequest`] ([`request`]), and a [`Reply`] encoded as
//! its stream of whole `GenerateContentResponse` chunks ([`events`]) or as
//! one ([`message`]); `countTokens` and the model list answered at once.
//!
//! A model's method is in the path, for every base Google serves it under:
//!
//! ```text
//! /v1beta/models/{model}:streamGenerateContent?alt=sse     (the SDKs' stream)
//! /v1/models/{model}:generateContent
//! /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{model}:...   (Vertex AI)
//! ```
//!
//! A stream is one chunk a token: thinking (`{"text", "thought": true}`
//! parts, with `includeThoughts`), then text, or one chunk with every
//! `functionCall` part whole; the last chunk carries `finishReason` and the
//! usage totals. No `[DONE]`. Events end with `\r\n\r\n`, as Google's do.
//! Without `alt=sse` the same chunks are a JSON array, streamed.

mod embed;
pub(crate) mod request;

use serde_json::{Value, json};

use super::json_text::JsonString;
use super::reply::{Block, Reply, StopReason, Thought};
use super::request::Shown;
use super::text::TokenCursor;
use super::{Codec, InstantError, InstantRequest, MockApi, MockEndpoint, Serve};
use crate::dialect::Dialect;
pub(crate) use crate::dialect::gemini::model_of;
use crate::framing::{EventKind, Record};
use crate::route::rough_tokens;

/// The Gemini API's methods, under each base.
pub(crate) const API: MockApi = MockApi {
    name: "Gemini (the Gemini API and Vertex AI)",
    dialect: Dialect::Gemini,
    endpoints: &[
        MockEndpoint::post_model(
            "/v1beta/models/{model}:streamGenerateContent",
            "streamGenerateContent",
            Serve::Generate(CODEC),
        ),
        MockEndpoint::post_model(
            "/v1beta/models/{model}:generateContent",
            "generateContent",
            Serve::Generate(CODEC),
        ),
        MockEndpoint::post_model(
            "/v1beta/models/{model}:countTokens",
            "countTokens",
            Serve::Instant(count_tokens),
        ),
        MockEndpoint::post_model(
            "/v1beta/models/{model}:embedContent",
            "embedContent",
            Serve::Whole(embed::one),
        ),
        MockEndpoint::post_model(
            "/v1beta/models/{model}:batchEmbedContents",
            "batchEmbedContents",
            Serve::Whole(embed::batch),
        ),
        MockEndpoint::post_model(
            "/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predict",
            "predict",
            Serve::Whole(embed::predict),
        ),
        MockEndpoint::get("/v1beta/models", Serve::Instant(list_models)),
        MockEndpoint::get_under("/v1beta/models", Serve::Instant(one_model)),
        // Reached by Google's clients only: for others these are OpenAI's.
        MockEndpoint::get("/v1/models", Serve::Instant(list_models)),
        MockEndpoint::get_under("/v1/models", Serve::Instant(one_model)),
    ],
};

/// Whether a request comes from a Google client (the google-genai SDKs send
/// `x-goog-api-client`, and `x-goog-api-key` with a key).
pub(crate) fn is_google_client(headers: &hyper::HeaderMap) -> bool {
    headers.contains_key("x-goog-api-key") || headers.contains_key("x-goog-api-client")
}

const CODEC: Codec = Codec {
    parse: request::parse,
    events: |reply, request| Box::new(events(reply, request.array_stream)),
    message: |reply, _| message(reply).to_string(),
    failure_at: None,
};

/// `POST ...:countTokens`: `{"totalTokens": N}`, about 4 bytes a token.
fn count_tokens(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    super::request::body_object(request.body)?;
    Ok(json!({"totalTokens": rough_tokens(request.body)}).to_string())
}

fn model_json(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": id,
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "thinking": true,
    })
}

/// `GET /v1beta/models`: the models the config names.
fn list_models(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    let models: Vec<Value> = request.config.models.iter().map(|id| model_json(id)).collect();
    Ok(json!({"models": models}).to_string())
}

/// `GET /v1beta/models/{model}`.
fn one_model(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    let id = request.path.rsplit('/').next().unwrap_or_default();
    match request.config.models.iter().find(|known| known.as_str() == id) {
        Some(id) => Ok(model_json(id).to_string()),
        None => Err(InstantError::NotFound(format!(
            "models/{id} is not found for this API version (sluice serves the models in its \
             config: {})",
            request.config.models.join(", ")
        ))),
    }
}

/// `finishReason` on the wire.
fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
    }
}

/// Visible output tokens (`candidatesTokenCount`): text, JSON and calls.
fn candidates_tokens(reply: &Reply) -> usize {
    reply.output_tokens() - reply.thinking_tokens()
}

/// `usageMetadata`: with the totals once `done`, else the prompt's count.
fn usage(reply: &Reply, done: bool) -> Value {
    let prompt = reply.input_tokens;
    if !done {
        return json!({"promptTokenCount": prompt, "totalTokenCount": prompt});
    }
    let candidates = candidates_tokens(reply) as u64;
    let thoughts = reply.thinking_tokens() as u64;
    let mut usage = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    });
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    usage
}

/// A `functionCall` part for each call.
fn call_parts(reply: &Reply) -> Vec<Value> {
    reply
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse { name, input, .. } => {
                Some(json!({"functionCall": {"name": name, "args": input}}))
            }
            _ => None,
        })
        .collect()
}

/// A chunk (or the whole response) with `parts`; `done` adds the finish
/// reason and the totals.
fn chunk(reply: &Reply, parts: Vec<Value>, done: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if done {
        candidate["finishReason"] = json!(finish_reason(reply.stop_reason));
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage(reply, done),
        "modelVersion": reply.model,
        "responseId": reply.id,
    })
}

/// The non-streaming `GenerateContentResponse`.
pub(crate) fn message(reply: &Reply) -> Value {
    let mut parts = Vec::new();
    if let Some(thought) = reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed) {
        parts.push(json!({"text": thought.tokens.concat(), "thought": true}));
    }
    let text: String = reply
        .blocks
        .iter()
        .map(|block| match block {
            Block::Text { tokens, .. } => tokens.concat(),
            Block::Json { fragments } => fragments.as_str().to_string(),
            Block::ToolUse { .. } => String::new(),
        })
        .collect();
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    parts.extend(call_parts(reply));
    chunk(reply, parts, true)
}

/// Where [`Events`] is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Thinking token `n`.
    Thought(usize),
    /// Token `piece` of visible block `index`.
    Token(usize, usize),
    /// Every call, in one chunk.
    Calls,
    /// A chunk with only the finish reason and totals (a reply whose last
    /// chunk could not carry them).
    Finish,
    /// The array's closing `]` (JSON array streams only).
    Close,
    Done,
}

/// A chunk of one text part, encoded once a reply with a marker for its
/// text: each token's chunk is `head`, the token as a JSON string, `tail`,
/// the same bytes [`chunk`] makes, without building its tree a token.
struct Template {
    head: Box<str>,
    tail: Box<str>,
}

impl Template {
    /// A text that no token is: where the token goes.
    const MARK: &'static str = "\u{0}sluice-token\u{0}";

    /// The template of `reply`'s not-last chunks of one `part` (a JSON
    /// object with [`Self::MARK`] as its text).
    fn of(reply: &Reply, part: Value) -> Self {
        let encoded = chunk(reply, vec![part], false).to_string();
        let mark = Value::from(Self::MARK).to_string();
        let (head, tail) = encoded.split_once(&mark).unwrap_or((&encoded, ""));
        Self { head: head.into(), tail: tail.into() }
    }

    /// The chunk of `token`, between `before` and `after` (the framing).
    fn render(&self, token: &str, before: &str, after: &str) -> bytes::Bytes {
        let token = JsonString::new(token);
        // Exactly the chunk's size (see `mock::json_text`).
        let size = before.len() + self.head.len() + token.len() + self.tail.len() + after.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(before.as_bytes());
        out.extend_from_slice(self.head.as_bytes());
        token.put(&mut out);
        out.extend_from_slice(self.tail.as_bytes());
        out.extend_from_slice(after.as_bytes());
        debug_assert_eq!(out.len(), size, "sized exactly");
        out.into()
    }
}

/// The reply's chunks, made as they are pulled.
struct Events {
    reply: Reply,
    /// A text token's chunk, and a thought token's.
    text_template: Template,
    thought_template: Template,
    step: Step,
    /// A JSON array rather than SSE.
    array: bool,
    /// Whether a chunk went out yet (the array's first has no comma).
    started: bool,
    text: Option<(usize, TokenCursor)>,
}

/// The stream of chunks (see the module docs).
pub(crate) fn events(reply: Reply, array: bool) -> impl Iterator<Item = Record> + Send {
    let text_template = Template::of(&reply, json!({"text": Template::MARK}));
    let thought_template = Template::of(&reply, json!({"text": Template::MARK, "thought": true}));
    let mut events = Events {
        reply,
        text_template,
        thought_template,
        step: Step::Done,
        array,
        started: false,
        text: None,
    };
    events.step = events.first();
    events
}

impl Events {
    fn streamed_thought(&self) -> Option<&Thought> {
        self.reply.thought.as_deref().filter(|t| t.shown == Shown::Streamed && t.len() > 0)
    }

    fn first(&self) -> Step {
        if self.streamed_thought().is_some() { Step::Thought(0) } else { self.answer() }
    }

    /// The first step of the answer: a reply is calls, or one block of text
    /// or JSON (`Reply::generate`); one whose text a stop sequence emptied
    /// ends with a chunk of its own.
    fn answer(&self) -> Step {
        match self.reply.blocks.first() {
            Some(Block::ToolUse { .. }) => Step::Calls,
            Some(block) if block.len() > 0 => Step::Token(0, 0),
            _ => Step::Finish,
        }
    }

    fn end(&self) -> Step {
        if self.array { Step::Close } else { Step::Done }
    }

    /// What follows `step`.
    fn after(&self, step: Step) -> Step {
        match step {
            Step::Thought(n) if n + 1 < self.streamed_thought().map_or(0, Thought::len) => {
                Step::Thought(n + 1)
            }
            Step::Thought(_) => self.answer(),
            Step::Token(index, piece) if piece + 1 < self.token_count(index) => {
                Step::Token(index, piece + 1)
            }
            Step::Token(..) | Step::Calls | Step::Finish => self.end(),
            Step::Close | Step::Done => Step::Done,
        }
    }

    fn token_count(&self, index: usize) -> usize {
        self.reply.blocks.get(index).map_or(0, Block::len)
    }

    /// A chunk as a record: SSE, or an element of the array.
    fn record(&mut self, value: &Value, kind: EventKind) -> Record {
        let (before, after) = framing(self.array, &mut self.started);
        Record { raw: format!("{before}{value}{after}").into(), kind }
    }

    fn make(&mut self, step: Step) -> Option<Record> {
        match step {
            Step::Thought(_) => {
                let thought = self.reply.thought.as_deref()?;
                if self.text.as_ref().is_none_or(|(at, _)| *at != usize::MAX) {
                    self.text = Some((usize::MAX, thought.tokens.cursor()));
                }
                let token = self.text.as_mut()?.1.next_token()?;
                let (before, after) = framing(self.array, &mut self.started);
                let raw = self.thought_template.render(token, before, after);
                Some(Record { raw, kind: EventKind::Thinking })
            }
            Step::Token(index, piece) => {
                let last = piece + 1 >= self.token_count(index);
                let block = self.reply.blocks.get(index)?;
                let token = match block {
                    Block::Text { tokens, .. } => {
                        if self.text.as_ref().is_none_or(|(at, _)| *at != index) {
                            self.text = Some((index, tokens.cursor()));
                        }
                        self.text.as_mut()?.1.next_token()?
                    }
                    Block::Json { fragments } => fragments.get(piece)?,
                    Block::ToolUse { .. } => return None,
                };
                if last {
                    let value = chunk(&self.reply, vec![json!({"text": token})], true);
                    return Some(self.record(&value, EventKind::Content));
                }
                let (before, after) = framing(self.array, &mut self.started);
                let raw = self.text_template.render(token, before, after);
                Some(Record { raw, kind: EventKind::Content })
            }
            Step::Calls => {
                let value = chunk(&self.reply, call_parts(&self.reply), true);
                Some(self.record(&value, EventKind::ToolStart))
            }
            Step::Finish => {
                let value = chunk(&self.reply, vec![json!({"text": ""})], true);
                Some(self.record(&value, EventKind::Other))
            }
            Step::Close => Some(Record { raw: "]".into(), kind: EventKind::Other }),
            Step::Done => None,
        }
    }
}

/// What goes before and after the next chunk: SSE's `data:` and blank
/// line, or the array's `[` (the first chunk, then `started`) or `,` and a
/// line end.
fn framing(array: bool, started: &mut bool) -> (&'static str, &'static str) {
    let around = match (array, *started) {
        (false, _) => ("data: ", "\r\n\r\n"),
        (true, false) => ("[", ""),
        (true, true) => (",\r\n", ""),
    };
    *started = true;
    around
}

impl Iterator for Events {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let step = self.step;
        self.step = self.after(step);
        let record = self.make(step);
        if record.is_none() {
            self.step = Step::Done;
        }
        record
    }
}

#[cfg(test)]
mod tests;
