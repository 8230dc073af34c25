//! Replay (`[replay]`, mock mode): a [`Library`] of the cassettes in a
//! folder, read when a config is applied, and the rule that matches a
//! request to one of them. The handler (`handler::mock`) serves a match
//! through the same exchange as a generated reply, so routes, faults, rate
//! limits and live control apply on top.
//!
//! Every rule requires the request's path and its `stream` choice to be the
//! cassette's; the rule then compares the whole body, the last user
//! message, the place in the conversation, or the model, or takes any
//! cassette of the path. Several cassettes that match are served in turn.
//!
//! Agent clients put values in their requests that change every run (a
//! sub-agent's id, a tool's wall time, a fresh UUID per item, today's date),
//! so every rule compares requests with those spans replaced ([`Normalizer`]:
//! a default set, and `[replay] ignore`). When the last user message still
//! matches no cassette, the request is matched by its place in its
//! conversation instead (the first user message and how many messages came
//! before), so that a turn whose tool results differ from the recording's
//! (sub-agents that finished in another order) still finds its cassette.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use regex::Regex;
use serde_json::Value;

use super::{Cassette, REDACTED};
use crate::config::{Replay, ReplayMatch};
use crate::dialect::Dialect;
use crate::framing::{Framing, Record};

/// The most cassettes one folder may hold.
pub(crate) const MAX_CASSETTES: usize = 10_000;
/// The most bytes of cassettes read from one folder.
pub(crate) const MAX_LIBRARY_BYTES: u64 = 512 * 1024 * 1024;
/// The most JSON values in all recorded requests of a folder together: the
/// library keeps each request's body to match against, and a parsed value
/// costs tens of bytes (about 200 MiB at most).
pub(crate) const MAX_LIBRARY_VALUES: usize = 5_000_000;

/// Why a folder of cassettes cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The folder or a file cannot be read.
    #[error("[replay] {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A cassette is not valid.
    #[error("[replay] cassette {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// Past [`MAX_CASSETTES`] or [`MAX_LIBRARY_BYTES`].
    #[error(
        "[replay] {0}: more than {MAX_CASSETTES} cassettes or {MAX_LIBRARY_BYTES} bytes; split them into folders"
    )]
    TooMany(PathBuf),
    /// Past [`MAX_LIBRARY_VALUES`].
    #[error(
        "[replay] {0}: the recorded requests hold more than {MAX_LIBRARY_VALUES} JSON values \
         together (they are kept in memory to match); split them into folders"
    )]
    TooManyValues(PathBuf),
}

/// Spans that change from run to run, and what each becomes: ids (UUIDs,
/// long hex, values named `…id`), timings named `duration`, `wall time`,
/// `elapsed`, `took` or `latency`, sub-agent token counts, and dates and
/// times. `docs/record-replay.md` lists them; `[replay] ignore` adds more.
const VOLATILE: [(&str, &str); 5] = [
    (r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
    // A name starts a word, or follows an escaped line break in JSON text.
    (
        r#"(?i)(\b|\\[nrt])((?:agent|chunk|session|request|trace|run)[ _]?id)(["']?\s*[:=]\s*["']?)[A-Za-z0-9_-]+"#,
        "$1$2$3<id>",
    ),
    (
        r#"(?i)(\b|\\[nrt])(duration(?:_ms)?|wall[ _]time|elapsed(?:_ms)?|took|latency(?:_ms)?|subagent_tokens)(["']?\s*[:=]?\s*)[0-9]+(?:\.[0-9]+)?(?:\s*(?:ms|s|sec|seconds)\b)?"#,
        "$1$2$3<n>",
    ),
    (r"(\b|\\[nrt])[0-9a-f]{16,}\b", "$1<hex>"),
    (
        r"(\b|\\[nrt])[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\b",
        "$1<time>",
    ),
];

/// Replaces the spans of a request that change from run to run before it is
/// compared with a recorded one: the defaults ([`VOLATILE`]), then each
/// `[replay] ignore` pattern (a match becomes `<ignored>`).
#[derive(Debug)]
pub(crate) struct Normalizer {
    patterns: Vec<(Regex, String)>,
}

impl Normalizer {
    /// The defaults and `ignore`, compiled (each already checked by the config).
    pub(crate) fn new(ignore: &[String]) -> Self {
        let defaults = VOLATILE.iter().filter_map(|(pattern, with)| {
            crate::config::value::ignore_pattern(pattern).ok().map(|re| (re, (*with).to_string()))
        });
        let own = ignore.iter().filter_map(|pattern| {
            crate::config::value::ignore_pattern(pattern).ok().map(|re| (re, "<ignored>".into()))
        });
        Self { patterns: defaults.chain(own).collect() }
    }

    /// `text` with every volatile span replaced.
    pub(crate) fn apply(&self, text: &str) -> String {
        let mut text = std::borrow::Cow::Borrowed(text);
        for (pattern, with) in &self.patterns {
            if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(&text, with.as_str()) {
                text = std::borrow::Cow::Owned(replaced);
            }
        }
        text.into_owned()
    }
}

/// How a request found its cassette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// By the configured rule.
    ByRule,
    /// By its place in its conversation, when its last user message matched
    /// no cassette.
    ByPosition,
}

/// A cassette ready to serve.
#[derive(Debug)]
pub(crate) struct Recorded {
    /// Its file name, for logs.
    pub(crate) name: String,
    /// The response status.
    pub(crate) status: StatusCode,
    /// The response headers, as recorded.
    pub(crate) headers: HeaderMap,
    /// When the head arrived, from the request.
    pub(crate) head_at: Duration,
    /// A stream: each event (or array element), classified, with its
    /// offset. Empty otherwise.
    pub(crate) events: Vec<(Duration, Record)>,
    /// Not a stream: the whole body.
    pub(crate) body: Bytes,
    /// The stream's framing: SSE, or Gemini's JSON array; `None` for a
    /// whole body.
    pub(crate) framing: Option<Framing>,
    /// The output tokens its usage reports (0 when it reports none).
    pub(crate) output_tokens: u64,
}

/// Which cassettes a request may get: its path, stream choice (and its
/// framing) and the rule's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    path: String,
    stream: Option<Framing>,
    value: String,
}

#[derive(Debug, Default)]
struct Shelf {
    /// Indexes into the library, in file-name order.
    items: Vec<usize>,
    /// The next to serve, among those that match.
    turn: AtomicUsize,
}

/// The cassettes of `[replay] dir`, indexed by the match rule.
#[derive(Debug)]
pub(crate) struct Library {
    matching: ReplayMatch,
    normalizer: Normalizer,
    cassettes: Vec<Arc<Recorded>>,
    /// The request body each cassette recorded (for `match = "body"`).
    bodies: Vec<Value>,
    shelves: HashMap<Key, Shelf>,
    /// By place in the conversation, for `last_user_message`'s second try.
    positions: HashMap<Key, Shelf>,
}

impl Library {
    /// Reads every `*.jsonl` file of `config.dir` (not its subfolders).
    pub(crate) fn load(config: &Replay) -> Result<Self, ReplayError> {
        let dir = &config.dir;
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|source| ReplayError::Read { path: dir.clone(), source })?;
        let mut total: u64 = 0;
        for entry in entries {
            let entry = entry.map_err(|source| ReplayError::Read { path: dir.clone(), source })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".jsonl") {
                continue;
            }
            // Only regular files, after following links: a FIFO would block
            // the read, and a link's size is its target's.
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                tracing::warn!(path = %path.display(), "not a regular file; skipped");
                continue;
            }
            total = total.saturating_add(meta.len());
            if files.len() >= MAX_CASSETTES || total > MAX_LIBRARY_BYTES {
                return Err(ReplayError::TooMany(dir.clone()));
            }
            files.push((name, path));
        }
        files.sort();
        let mut library = Self {
            matching: config.matching,
            normalizer: Normalizer::new(&config.ignore),
            cassettes: Vec::new(),
            bodies: Vec::new(),
            shelves: HashMap::new(),
            positions: HashMap::new(),
        };
        let mut values_left = MAX_LIBRARY_VALUES;
        for (name, path) in files {
            let text = read_bounded(&path)?;
            // Each head is counted (and bounded) as it is parsed; the sum is
            // bounded here.
            let (cassette, values) = Cassette::parse_counted(&text)
                .map_err(|e| ReplayError::Invalid { path: path.clone(), message: e.to_string() })?;
            values_left = values_left
                .checked_sub(values)
                .ok_or_else(|| ReplayError::TooManyValues(dir.clone()))?;
            let recorded = ready(&cassette, name)
                .map_err(|message| ReplayError::Invalid { path: path.clone(), message })?;
            library.add(&cassette, recorded);
        }
        Ok(library)
    }

    fn add(&mut self, cassette: &Cassette, recorded: Recorded) {
        let body = &cassette.head.request.body;
        let key = Key {
            path: cassette.path().to_string(),
            stream: recorded.framing,
            value: self.key_of(body),
        };
        let index = self.cassettes.len();
        if self.matching == ReplayMatch::LastUserMessage {
            let position = Key { value: self.position_of(body), ..key.clone() };
            self.positions.entry(position).or_default().items.push(index);
        }
        self.cassettes.push(Arc::new(recorded));
        self.bodies.push(body.clone());
        self.shelves.entry(key).or_default().items.push(index);
    }

    /// The rule's key of a request body.
    fn key_of(&self, body: &Value) -> String {
        match self.matching {
            ReplayMatch::Body | ReplayMatch::ModelPath => {
                body.get("model").and_then(Value::as_str).unwrap_or("").to_string()
            }
            ReplayMatch::LastUserMessage => self.normalizer.apply(&last_user_message(body)),
            ReplayMatch::Conversation => self.position_of(body),
            ReplayMatch::RoundRobin => String::new(),
        }
    }

    /// A body's place in its conversation: its first user message (with the
    /// volatile spans replaced) and how many messages or input items it has.
    fn position_of(&self, body: &Value) -> String {
        let (first, count) = conversation_place(body);
        format!("{count}#{}", self.normalizer.apply(&first))
    }

    /// How many cassettes it holds.
    pub(crate) fn len(&self) -> usize {
        self.cassettes.len()
    }

    /// The cassette for a request to `path` with `body` that asks for a
    /// stream in `stream`'s framing (or a whole answer), if one matches, and
    /// how it was found.
    pub(crate) fn find(
        &self,
        path: &str,
        stream: Option<Framing>,
        body: &[u8],
    ) -> Option<(Arc<Recorded>, Found)> {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let key = Key { path: path.to_string(), stream, value: self.key_of(&body) };
        if let Some(found) = self.shelves.get(&key).and_then(|shelf| self.serve(shelf, &body)) {
            return Some((found, Found::ByRule));
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let excerpt: String = key.value.chars().take(400).collect();
            tracing::debug!(path, ?stream, key = %excerpt, "no cassette matches by the rule");
        }
        let position = Key { value: self.position_of(&body), ..key };
        let found = self.positions.get(&position).and_then(|shelf| self.serve(shelf, &body));
        if found.is_none() && tracing::enabled!(tracing::Level::DEBUG) {
            // What was looked for, for a user finding out why nothing matched.
            let excerpt: String = position.value.chars().take(400).collect();
            tracing::debug!(path, ?stream, key = %excerpt, "no cassette matches");
        }
        Some((found?, Found::ByPosition))
    }

    /// The next of a shelf's cassettes that matches `body`, in turn.
    fn serve(&self, shelf: &Shelf, body: &Value) -> Option<Arc<Recorded>> {
        let turn = shelf.turn.fetch_add(1, Ordering::Relaxed);
        let index = if self.matching == ReplayMatch::Body {
            let matching: Vec<usize> = shelf
                .items
                .iter()
                .copied()
                .filter(|&i| {
                    self.bodies.get(i).is_some_and(|recorded| {
                        same_body(recorded, body, &|text| self.normalizer.apply(text))
                    })
                })
                .collect();
            *matching.get(turn % matching.len().max(1))?
        } else {
            *shelf.items.get(turn % shelf.items.len().max(1))?
        };
        self.cassettes.get(index).cloned()
    }
}

/// What changed in the folder since it was read, cheaply: names, sizes and
/// modification times, so that `POST /reload` picks up new cassettes.
pub(crate) fn fingerprint(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else { return String::new() };
    let mut seen: Vec<String> = entries
        .filter_map(Result::ok)
        .take(MAX_CASSETTES.saturating_add(1))
        .map(|entry| {
            let meta = entry.metadata().ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            format!("{:?} {:?} {modified:?}", entry.file_name(), meta.map(|m| m.len()))
        })
        .collect();
    seen.sort();
    seen.join("\n")
}

/// A cassette file's text, read no further than one byte past the largest
/// cassette (which [`Cassette::parse`] then refuses as too large).
pub(crate) fn read_bounded(path: &Path) -> Result<String, ReplayError> {
    use std::io::Read;
    let failed = |source| ReplayError::Read { path: path.into(), source };
    // Opened without blocking, so that a FIFO swapped in after the listing
    // cannot hang the reader; then it must be a regular file.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0),
    );
    let file = options.open(path).map_err(failed)?;
    if !file.metadata().map_err(failed)?.is_file() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut text = String::new();
    let limit = u64::try_from(super::MAX_CASSETTE_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit)
        .read_to_string(&mut text)
        .map_err(|source| ReplayError::Read { path: path.into(), source })?;
    Ok(text)
}

/// A parsed cassette as the handler serves it.
fn ready(cassette: &Cassette, name: String) -> Result<Recorded, String> {
    let response = &cassette.head.response;
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| format!("line 1: status {} is not an HTTP status", response.status))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &response.headers {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        else {
            return Err(format!("line 1: header {name:?} is not a valid HTTP header"));
        };
        headers.append(name, value);
    }
    let framing = cassette.framing();
    let classify = Dialect::for_path(cassette.path()).classifier();
    let mut events = Vec::new();
    let mut body = bytes::BytesMut::new();
    let mut output_tokens = 0;
    for piece in &cassette.pieces {
        if let Some(framing) = framing {
            let kind = framing.kind_of(&piece.bytes, classify);
            if let Some(tokens) = crate::ratelimit::usage::output_tokens(&piece.bytes) {
                output_tokens = tokens;
            }
            events.push((piece.at, Record { raw: piece.bytes.clone(), kind }));
        } else {
            body.extend_from_slice(&piece.bytes);
        }
    }
    let body = body.freeze();
    if framing.is_none() {
        output_tokens = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| {
                let usage = json.get("usage")?;
                usage.get("output_tokens").or_else(|| usage.get("completion_tokens"))?.as_u64()
            })
            .unwrap_or(0);
    }
    let head_at = super::offset(response.head_ms).unwrap_or_default();
    Ok(Recorded { name, status, headers, head_at, events, body, framing, output_tokens })
}

/// The same body, but a recorded `"[redacted]"` matches any value, key
/// order does not matter, and strings are compared `normalized`.
fn same_body(recorded: &Value, asked: &Value, normalized: &dyn Fn(&str) -> String) -> bool {
    match (recorded, asked) {
        (Value::String(s), _) if s == REDACTED => true,
        (Value::String(a), Value::String(b)) => a == b || normalized(a) == normalized(b),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|other| same_body(v, other, normalized)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_body(x, y, normalized))
        }
        _ => recorded == asked,
    }
}

/// A body's first user message (compact JSON with sorted keys, empty when
/// there is none) and how many messages or input items it has.
fn conversation_place(body: &Value) -> (String, usize) {
    let first_user = |items: &Vec<Value>| {
        items
            .iter()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .map(canonical)
            .unwrap_or_default()
    };
    let first_user_parts = |contents: &Vec<Value>| {
        contents
            .iter()
            .find(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
            .and_then(|c| c.get("parts"))
            .map(canonical)
            .unwrap_or_default()
    };
    match (body.get("messages"), body.get("input"), body.get("contents")) {
        (Some(Value::Array(messages)), _, _) => (first_user(messages), messages.len()),
        (_, Some(input @ Value::String(_)), _) => (canonical(input), 1),
        (_, Some(Value::Array(items)), _) => (first_user(items), items.len()),
        (_, _, Some(Value::Array(contents))) => (first_user_parts(contents), contents.len()),
        _ => (String::new(), 0),
    }
}

/// The last thing the client said: the content of the last user message of
/// a Messages or Chat Completions body, or its last tool result (a Chat
/// `role: "tool"` message, or a Responses `function_call_output` item,
/// whole, so its call id counts); a Responses `input` string. As compact
/// JSON with sorted keys; empty when there is none. In an agent loop each
/// turn ends with a new user message or tool result, so each turn has its
/// own key.
pub(crate) fn last_user_message(body: &Value) -> String {
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_owned);
    let said = |m: &Value| -> Option<Value> {
        match (role(m).as_deref(), m.get("type").and_then(Value::as_str)) {
            (Some("user"), _) => m.get("content").cloned(),
            (Some("tool"), _) | (None, Some("function_call_output")) => Some(m.clone()),
            _ => None,
        }
    };
    // Gemini: a `contents` entry with role `user` (or none), its parts whole
    // (a function's response is a user part too).
    let gemini_said = |c: &Value| -> Option<Value> {
        (c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
            .then(|| c.get("parts").cloned())
            .flatten()
    };
    let content = match (body.get("messages"), body.get("input"), body.get("contents")) {
        (Some(Value::Array(messages)), _, _) => messages.iter().rev().find_map(said),
        (_, Some(input @ Value::String(_)), _) => Some(input.clone()),
        (_, Some(Value::Array(items)), _) => items.iter().rev().find_map(said),
        (_, _, Some(Value::Array(contents))) => contents.iter().rev().find_map(gemini_said),
        _ => None,
    };
    content.map(|c| canonical(&c)).unwrap_or_default()
}

/// Compact JSON with object keys sorted, so key order does not matter.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .filter_map(|k| map.get(k).map(|v| (k.clone(), sorted(v))))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_last_user_message_is_found_in_every_dialect_and_key_order_does_not_matter() {
        let messages = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
            {"role": "assistant", "content": "tail"}
        ]});
        assert_eq!(last_user_message(&messages), r#"[{"text":"second","type":"text"}]"#);
        assert_eq!(last_user_message(&json!({"input": "hello"})), r#""hello""#);
        let items = json!({"input": [{"role": "user", "content": "a"}, {"type": "function_call_output", "output": "x", "call_id": "c1"}]});
        assert_eq!(
            last_user_message(&items),
            r#"{"call_id":"c1","output":"x","type":"function_call_output"}"#
        );
        let chat = json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}
        ]});
        assert_eq!(
            last_user_message(&chat),
            r#"{"content":"18 C","role":"tool","tool_call_id":"call_1"}"#
        );
        assert_eq!(last_user_message(&json!({"model": "m"})), "");
        let gemini = json!({"contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]},
        ]});
        assert_eq!(
            last_user_message(&gemini),
            r#"[{"functionResponse":{"name":"f","response":{"ok":1}}}]"#
        );
        assert_eq!(conversation_place(&gemini), (r#"[{"text":"first"}]"#.to_string(), 3));
    }

    /// What agent CLIs put in a request that changes every run, from real
    /// requests: Claude Code's sub-agent result and Codex's shell output.
    #[test]
    fn volatile_spans_of_agent_clients_are_replaced_and_the_rest_kept() {
        let normalizer = Normalizer::new(&[]);
        let claude = "agentId: a0a9bf081f3182063 (use SendMessage with to: 'a0a9bf081f3182063', \
                      summary: '<5-10 word recap>')\n<usage>subagent_tokens: 11963\ntool_uses: 1\n\
                      duration_ms: 11150</usage>";
        assert_eq!(
            normalizer.apply(claude),
            "agentId: <id> (use SendMessage with to: '<hex>', summary: '<5-10 word recap>')\n\
             <usage>subagent_tokens: <n>\ntool_uses: 1\nduration_ms: <n></usage>"
        );
        let codex = r#"{"call_id":"call_iZzmPpeK7iJpHL3xDsFZPQ1n","id":"fco_01a24c8d-d1b9-7f73-9bbd-4ac1b011c570","output":"Chunk ID: fbac8f\nWall time: 0.0000 seconds\nProcess exited with code 127\n"}"#;
        assert_eq!(
            normalizer.apply(codex),
            r#"{"call_id":"call_iZzmPpeK7iJpHL3xDsFZPQ1n","id":"fco_<uuid>","output":"Chunk ID: <id>\nWall time: <n>\nProcess exited with code 127\n"}"#
        );
        assert_eq!(
            normalizer.apply("Today's date is 2026-12-06. At 2026-12-06T18:11:31.877Z, took 12ms"),
            "Today's date is <time>. At <time>, took <n>"
        );
        // What a turn is about stays: words, small numbers, exit codes.
        let kept = "list the files in /tmp/work; 3 files, exit code 0, port 8080";
        assert_eq!(normalizer.apply(kept), kept);
        let own = Normalizer::new(&[r"build #[0-9]+".to_string()]);
        assert_eq!(own.apply("see build #4411 now"), "see <ignored> now");
        // After an escaped line break in JSON text too.
        assert_eq!(normalizer.apply(r"a\n2026-12-06\nffffffffffffffff1"), r"a\n<time>\n<hex>");
    }

    /// A turn whose last user message matches no cassette (its tool results
    /// differ from the recording's) is matched by its place in its
    /// conversation: the same first user message and as many messages.
    #[test]
    fn a_turn_that_matches_no_last_message_is_found_by_its_place_in_the_conversation() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, messages: Value| {
            let head = json!({"sluice_cassette": 1, "request": {"method": "POST", "path": "/v1/messages",
                "body": {"model": "m", "stream": false, "messages": messages}},
                "response": {"status": 200, "head_ms": 1.0, "headers": {"content-type": "application/json"}}});
            let piece = json!({"at_ms": 2.0, "body": format!("{{\"name\":\"{name}\"}}")});
            std::fs::write(dir.path().join(format!("{name}.jsonl")), format!("{head}\n{piece}\n"))
                .unwrap();
        };
        let tool_result = |text: &str| json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": text}]});
        let first = json!({"role": "user", "content": "say hi"});
        let call = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {}}]});
        write("turn1", json!([first]));
        write("turn2", json!([first, call, tool_result("the sub-agent said A")]));
        let config = Replay {
            dir: dir.path().to_path_buf(),
            matching: ReplayMatch::LastUserMessage,
            timing: crate::config::ReplayTiming::Recorded,
            fallback: crate::config::ReplayFallback::NotFound,
            ignore: Vec::new(),
        };
        let library = Library::load(&config).unwrap();
        let ask = |messages: Value| {
            let body = json!({"model": "m", "messages": messages}).to_string();
            let found = library.find("/v1/messages", None, body.as_bytes());
            found.map(|(r, found)| (r.name.clone(), found))
        };
        assert_eq!(ask(json!([first])), Some(("turn1.jsonl".into(), Found::ByRule)));
        let same = json!([first, call, tool_result("the sub-agent said A")]);
        assert_eq!(ask(same), Some(("turn2.jsonl".into(), Found::ByRule)));
        let other = json!([first, call, tool_result("the sub-agent said B")]);
        assert_eq!(ask(other), Some(("turn2.jsonl".into(), Found::ByPosition)));
        let elsewhere =
            json!([{"role": "user", "content": "something else"}, call, tool_result("x")]);
        assert_eq!(ask(elsewhere), None);
    }

    fn replay_of(dir: &Path) -> Replay {
        Replay {
            dir: dir.to_path_buf(),
            matching: ReplayMatch::LastUserMessage,
            timing: crate::config::ReplayTiming::Recorded,
            fallback: crate::config::ReplayFallback::NotFound,
            ignore: Vec::new(),
        }
    }

    /// A FIFO named like a cassette would block a reader forever: only
    /// regular files are read, in the library and in `sluice profile`.
    #[test]
    fn a_fifo_in_the_folder_is_skipped_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let head = json!({"sluice_cassette": 1, "request": {"method": "POST", "path": "/v1/messages",
            "body": {"model": "m", "stream": false, "messages": [{"role": "user", "content": "hi"}]}},
            "response": {"status": 200, "head_ms": 1.0, "headers": {"content-type": "application/json"}}});
        std::fs::write(
            dir.path().join("real.jsonl"),
            format!("{head}\n{{\"at_ms\":2.0,\"body\":\"{{}}\"}}\n"),
        )
        .unwrap();
        let fifo = dir.path().join("x.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let library = Library::load(&replay_of(dir.path())).unwrap();
        assert_eq!(library.len(), 1);
        assert!(crate::cassette::profile::report(dir.path()).is_ok());
        assert!(read_bounded(&fifo).is_err(), "opened without blocking, and refused");
    }

    /// The folder's bound counts what links point at: many links to one
    /// large cassette are refused before any is read.
    #[test]
    fn the_folders_bound_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.data");
        std::fs::File::create(&target).unwrap().set_len(15 * 1024 * 1024).unwrap();
        for n in 0..40 {
            std::os::unix::fs::symlink(&target, dir.path().join(format!("{n}.jsonl"))).unwrap();
        }
        match Library::load(&replay_of(dir.path())) {
            Err(ReplayError::TooMany(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    /// A head line of millions of numbers (15 MiB, under the byte bound)
    /// is refused before it is parsed, and so is a folder whose recorded
    /// requests together pass the library's value budget.
    #[test]
    fn heads_are_bounded_in_json_values_one_by_one_and_together() {
        fn cassette(numbers: usize) -> String {
            let zeros = vec!["0"; numbers].join(",");
            format!(
                "{{\"sluice_cassette\":1,\"request\":{{\"method\":\"POST\",\"path\":\"/v1/messages\",\
                 \"body\":{{\"model\":\"m\",\"stream\":false,\"metadata\":[{zeros}],\
                 \"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}}},\"response\":{{\"status\":200,\
                 \"head_ms\":1.0,\"headers\":{{\"content-type\":\"application/json\"}}}}}}\n\
                 {{\"at_ms\":2.0,\"body\":\"{{}}\"}}\n"
            )
        }
        let big = cassette(7_500_000);
        assert!(big.len() < crate::cassette::MAX_CASSETTE_BYTES);
        let refused = Cassette::parse(&big).unwrap_err().to_string();
        assert!(refused.contains("more than 254096 JSON values"), "{refused}");
        let alone = tempfile::tempdir().unwrap();
        std::fs::write(alone.path().join("big.jsonl"), &big).unwrap();
        let refused = Library::load(&replay_of(alone.path())).unwrap_err().to_string();
        assert!(refused.contains("big.jsonl: line 1: the head holds more than"), "{refused}");
        assert!(Cassette::parse(&cassette(240_000)).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let under = cassette(240_000);
        for n in 0..(MAX_LIBRARY_VALUES / 240_000) {
            std::fs::write(dir.path().join(format!("{n:02}.jsonl")), &under).unwrap();
        }
        assert_eq!(Library::load(&replay_of(dir.path())).unwrap().len(), 20);
        std::fs::write(dir.path().join("99.jsonl"), &under).unwrap();
        match Library::load(&replay_of(dir.path())) {
            Err(ReplayError::TooManyValues(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_recorded_redaction_matches_any_value_and_nothing_else_differs() {
        let recorded = json!({"model": "m", "metadata": {"user_id": REDACTED}, "n": [1, 2]});
        let plain = |text: &str| text.to_string();
        assert!(same_body(
            &recorded,
            &json!({"n": [1, 2], "metadata": {"user_id": "u-1"}, "model": "m"}),
            &plain
        ));
        assert!(!same_body(
            &recorded,
            &json!({"n": [1, 3], "metadata": {"user_id": "u-1"}, "model": "m"}),
            &plain
        ));
        assert!(!same_body(
            &recorded,
            &json!({"n": [1, 2], "metadata": {"user_id": "u-1"}, "model": "m", "x": 1}),
            &plain
        ));
    }
}
