//! Cassettes: one recorded exchange per file (`docs/record-replay.md`).
//! Proxy mode writes them ([`record`]), the mock answers from them
//! ([`replay`]), and `sluice profile` reads their timing ([`profile`]).
//!
//! The format is JSON Lines, one file per exchange, so that a cassette can
//! be read, edited and diffed: the first line is the [`Head`] (the request,
//! redacted, and the response head with its offset), and each line after it
//! is one SSE event's exact bytes, one element of Gemini's streamed JSON
//! array, one AWS event-stream frame (readable: its headers and JSON
//! payload), or one chunk of a body that is not a stream, with its offset
//! from the request's arrival in milliseconds:
//!
//! ```text
//! {"sluice_cassette":1,"recorded_at":"…","request":{…},"response":{"status":200,"head_ms":310.2,…}}
//! {"at_ms":812.345,"sse":"event: message_start\ndata: {…}\n\n"}
//! ```
//!
//! Everything read from a cassette is bounded ([`MAX_CASSETTE_BYTES`],
//! [`MAX_EVENTS`]) and validated; a bad file is refused with its line.

pub mod profile;
pub(crate) mod record;
pub(crate) mod replay;

pub use record::RecordError;
pub use replay::ReplayError;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format's version, the head's `sluice_cassette`.
pub(crate) const FORMAT: u32 = 1;
/// The largest cassette recorded or read.
pub(crate) const MAX_CASSETTE_BYTES: usize = 16 * 1024 * 1024;
/// The most events (or body chunks) in one cassette.
pub(crate) const MAX_EVENTS: usize = 100_000;
/// JSON values in a cassette's head line: the mock's request budget and
/// room for the head's own fields and headers.
pub(crate) const MAX_HEAD_VALUES: usize = crate::mock::request::MAX_JSON_VALUES + 4_096;
/// The value a redacted header or field is replaced by.
pub(crate) const REDACTED: &str = "[redacted]";

/// Headers never written to a cassette: credentials and cookies, in every
/// form the SDKs and gateways send them.
pub(crate) const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "anthropic-api-key",
    "openai-api-key",
    "openai-organization",
    "openai-project",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
];

/// Words that make a header, query parameter or JSON field name look like a
/// secret: its value is redacted unless `[record] keep` names it. A name is
/// split into words at every character that is not a letter or digit and at
/// each lower-to-upper case change, so `x-auth-token`, `api_key`, `apiKey`
/// and `client.secret` all match, and `max_tokens` (`tokens`) does not.
const SECRET_WORDS: &[&str] = &[
    "key",
    "apikey",
    "token",
    "secret",
    "auth",
    "authorization",
    "password",
    "passwd",
    "cookie",
    "signature",
    "credential",
    "credentials",
];

/// Whether `name` looks like it holds a secret ([`SECRET_WORDS`]).
pub(crate) fn looks_secret(name: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            words.push(std::mem::take(&mut word));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    words.push(word);
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// Query parameters whose values are redacted from a recorded path.
const CREDENTIAL_PARAMS: &[&str] =
    &["key", "api_key", "api-key", "apikey", "access_token", "token"];

/// Headers that describe one transfer rather than the message, dropped too.
const TRANSFER_HEADERS: &[&str] = &["content-length", "transfer-encoding", "connection", "host"];

/// The first line of a cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Head {
    /// [`FORMAT`].
    pub(crate) sluice_cassette: u32,
    /// When it was recorded (RFC 3339), for people.
    #[serde(default)]
    pub(crate) recorded_at: String,
    /// What was asked.
    pub(crate) request: RequestPart,
    /// What came back, before the events.
    pub(crate) response: ResponsePart,
}

/// The request of a cassette, redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestPart {
    /// `POST`.
    pub(crate) method: String,
    /// The path and query, credentials in the query redacted.
    pub(crate) path: String,
    /// Lowercase names; credential headers dropped.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// The JSON body, or its text when it is not JSON.
    #[serde(default)]
    pub(crate) body: Value,
}

/// The response head of a cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResponsePart {
    /// The status code.
    pub(crate) status: u16,
    /// When the head arrived, in ms from the request.
    pub(crate) head_ms: f64,
    /// Lowercase names; cookies and transfer headers dropped.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

impl ResponsePart {
    /// Whether the body is an SSE stream.
    pub(crate) fn is_event_stream(&self) -> bool {
        self.headers.get("content-type").is_some_and(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    }
}

/// A line after the head: one event or body chunk and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Line {
    at_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sse_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// An AWS event-stream frame, readable: its string headers, in order,
    /// and its JSON payload (written only when they re-encode to the
    /// recorded bytes exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame: Option<FrameLine>,
}

/// A readable event-stream frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameLine {
    headers: serde_json::Map<String, Value>,
    payload: Value,
}

impl FrameLine {
    /// `bytes` as a readable frame, if it reads back byte for byte.
    fn of(bytes: &Bytes) -> Option<Self> {
        let (headers, payload) = crate::framing::event_stream::string_headers(bytes)?;
        let payload: Value = serde_json::from_slice(&payload).ok()?;
        let headers = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let line = Self { headers, payload };
        (line.bytes().ok()? == *bytes).then_some(line)
    }

    /// The frame's bytes.
    fn bytes(&self) -> Result<Bytes, &'static str> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| value.as_str().map(|v| (name.as_str(), v)))
            .collect::<Option<Vec<_>>>()
            .ok_or("a frame's header values are strings")?;
        let payload = self.payload.to_string();
        Ok(crate::framing::event_stream::with_headers(&headers, payload.as_bytes()))
    }
}

/// One event (or body chunk) and its offset from the request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    /// From the request's arrival.
    pub(crate) at: Duration,
    /// Its exact bytes.
    pub(crate) bytes: Bytes,
}

/// A whole cassette.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cassette {
    /// The first line.
    pub(crate) head: Head,
    /// SSE events, each whole, when the response is a stream; else body chunks.
    pub(crate) pieces: Vec<Piece>,
}

/// Why a cassette cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CassetteError {
    /// Past [`MAX_CASSETTE_BYTES`] or [`MAX_EVENTS`].
    #[error("too large: at most {MAX_CASSETTE_BYTES} bytes and {MAX_EVENTS} events")]
    TooLarge,
    /// A line is not what the format says.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn line_error(line: usize, message: impl Into<String>) -> CassetteError {
    CassetteError::Line { line, message: message.into() }
}

/// Milliseconds with microsecond precision, as written.
pub(crate) fn millis(at: Duration) -> f64 {
    (at.as_micros() as f64) / 1000.0
}

/// An offset read from a file: finite, not negative, at most 7 days.
/// Whole microseconds, as written, so that a cassette reads back exactly.
fn offset(ms: f64) -> Option<Duration> {
    let max_micros = crate::shape::MAX_DURATION.as_micros() as f64;
    let micros = (ms * 1000.0).round();
    if !micros.is_finite() || !(0.0..=max_micros).contains(&micros) {
        return None;
    }
    Some(Duration::from_micros(micros as u64))
}

impl Cassette {
    /// Reads a cassette's text.
    pub(crate) fn parse(text: &str) -> Result<Self, CassetteError> {
        Self::parse_counted(text).map(|(cassette, _)| cassette)
    }

    /// [`Cassette::parse`], and how many JSON values its head holds (the
    /// replay library keeps each head's request, and bounds their sum).
    pub(crate) fn parse_counted(text: &str) -> Result<(Self, usize), CassetteError> {
        if text.len() > MAX_CASSETTE_BYTES {
            return Err(CassetteError::TooLarge);
        }
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or_else(|| line_error(1, "empty: no head line"))?;
        // Counted before it is parsed: a head of millions of numbers would
        // become a tree 40 times its size, and no request the mock admits
        // could match it anyway.
        let Some(values) =
            crate::mock::request::json_values_within(first.as_bytes(), MAX_HEAD_VALUES)
        else {
            return Err(line_error(
                1,
                format!(
                    "the head holds more than {MAX_HEAD_VALUES} JSON values; the mock admits a \
                     request of at most {} (docs/reliability.md)",
                    crate::mock::request::MAX_JSON_VALUES
                ),
            ));
        };
        let head: Head = serde_json::from_str(first)
            .map_err(|e| line_error(1, format!("not a cassette head: {e}")))?;
        if head.sluice_cassette != FORMAT {
            return Err(line_error(
                1,
                format!("sluice_cassette {} is not {FORMAT}", head.sluice_cassette),
            ));
        }
        if offset(head.response.head_ms).is_none() {
            return Err(line_error(1, "head_ms must be a number of ms from 0 to 7 days"));
        }
        let stream = head.response.is_event_stream();
        let mut pieces = Vec::new();
        for (index, text) in lines {
            let number = index + 1;
            if pieces.len() >= MAX_EVENTS {
                return Err(CassetteError::TooLarge);
            }
            let line: Line =
                serde_json::from_str(text).map_err(|e| line_error(number, e.to_string()))?;
            let at = offset(line.at_ms).ok_or_else(|| {
                line_error(number, "at_ms must be a number of ms from 0 to 7 days")
            })?;
            let decode = |b64: &String| {
                BASE64.decode(b64).map_err(|e| line_error(number, format!("bad base64: {e}")))
            };
            if let Line {
                frame: Some(frame),
                sse: None,
                sse_base64: None,
                body: None,
                body_base64: None,
                ..
            } = &line
            {
                let bytes = frame.bytes().map_err(|e| line_error(number, e))?;
                pieces.push(Piece { at, bytes });
                continue;
            }
            let bytes = match (stream, &line) {
                (
                    true,
                    Line { sse: Some(s), sse_base64: None, body: None, body_base64: None, .. },
                ) => Bytes::copy_from_slice(s.as_bytes()),
                (
                    true,
                    Line { sse: None, sse_base64: Some(b), body: None, body_base64: None, .. },
                ) => Bytes::from(decode(b)?),
                (
                    false,
                    Line { sse: None, sse_base64: None, body: Some(s), body_base64: None, .. },
                ) => Bytes::copy_from_slice(s.as_bytes()),
                (
                    false,
                    Line { sse: None, sse_base64: None, body: None, body_base64: Some(b), .. },
                ) => Bytes::from(decode(b)?),
                (true, _) => {
                    return Err(line_error(number, "an event line has one of sse or sse_base64"));
                }
                (false, _) => {
                    return Err(line_error(number, "a body line has one of body or body_base64"));
                }
            };
            pieces.push(Piece { at, bytes });
        }
        Ok((Self { head, pieces }, values))
    }

    /// The cassette's text: the head, then one line a piece.
    pub(crate) fn to_text(&self) -> String {
        let mut out = serde_json::to_string(&self.head).unwrap_or_default();
        out.push('\n');
        let stream = self.head.response.is_event_stream();
        let frames = self.framing() == Some(crate::framing::Framing::EventStream);
        for piece in &self.pieces {
            let mut line = Line { at_ms: millis(piece.at), ..Line::default() };
            let frame = frames.then(|| FrameLine::of(&piece.bytes)).flatten();
            match (std::str::from_utf8(&piece.bytes), stream) {
                _ if frame.is_some() => line.frame = frame,
                (Ok(text), true) => line.sse = Some(text.to_string()),
                (Ok(text), false) => line.body = Some(text.to_string()),
                (Err(_), true) => line.sse_base64 = Some(BASE64.encode(&piece.bytes)),
                (Err(_), false) => line.body_base64 = Some(BASE64.encode(&piece.bytes)),
            }
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The model the request named, if any: in its body, or in a Gemini
    /// path.
    pub(crate) fn model(&self) -> Option<&str> {
        let in_body = self.head.request.body.get("model").and_then(Value::as_str);
        in_body.or_else(|| crate::dialect::gemini::model_of(self.path()).map(|(model, _)| model))
    }

    /// The framing of the recorded response when it is a stream: SSE by its
    /// content type, or Gemini's JSON array by its path; `None` for a whole
    /// body.
    pub(crate) fn framing(&self) -> Option<crate::framing::Framing> {
        let content_type = self.head.response.headers.get("content-type")?;
        crate::dialect::Dialect::for_path(self.path()).stream_framing(self.path(), content_type)
    }

    /// The request path without its query.
    pub(crate) fn path(&self) -> &str {
        let path = &self.head.request.path;
        path.split('?').next().unwrap_or(path)
    }
}

/// What to keep out of a cassette beyond the credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Redaction {
    /// Lowercase header names whose values are replaced.
    pub(crate) headers: Vec<String>,
    /// Dotted JSON paths whose values are replaced.
    pub(crate) fields: Vec<String>,
    /// Lowercase names that look like secrets but are kept.
    pub(crate) keep: Vec<String>,
}

impl Redaction {
    /// The headers as a cassette keeps them: credentials, cookies and
    /// transfer headers dropped, listed ones replaced, repeats joined.
    pub(crate) fn headers(&self, headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
        let mut kept: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_str();
            if CREDENTIAL_HEADERS.contains(&name) || TRANSFER_HEADERS.contains(&name) {
                continue;
            }
            let value = if self.headers.iter().any(|h| h == name) || self.secret(name) {
                REDACTED.to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            kept.entry(name.to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        kept
    }

    /// Whether a header, parameter or field of this name is a secret here:
    /// it looks like one and `keep` does not name it.
    fn secret(&self, name: &str) -> bool {
        looks_secret(name) && !self.keep.iter().any(|kept| kept.eq_ignore_ascii_case(name))
    }

    /// The path with credential query parameters' values replaced: the
    /// credential names, and any that looks like a secret, compared once
    /// percent-decoded (`api%5Fkey`), in parameters separated by `&` or `;`.
    pub(crate) fn path(&self, path_and_query: &str) -> String {
        let Some((path, query)) = path_and_query.split_once('?') else {
            return path_and_query.to_string();
        };
        let mut out = String::with_capacity(path_and_query.len());
        out.push_str(path);
        out.push('?');
        for param in query.split_inclusive(['&', ';']) {
            let (param, separator) = match param.strip_suffix(['&', ';']) {
                Some(stripped) => (stripped, &param[stripped.len()..]),
                None => (param, ""),
            };
            match param.split_once('=') {
                Some((name, _)) => {
                    let decoded = percent_decoded(name).to_ascii_lowercase();
                    if CREDENTIAL_PARAMS.contains(&decoded.as_str()) || self.secret(&decoded) {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(REDACTED);
                    } else {
                        out.push_str(param);
                    }
                }
                None => out.push_str(param),
            }
            out.push_str(separator);
        }
        out
    }

    /// A request body as a cassette keeps it: JSON with the listed fields
    /// and every field that looks like a secret replaced, or the text when
    /// it is not JSON.
    pub(crate) fn body(&self, body: &[u8]) -> Value {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut json) => {
                self.json(&mut json);
                self.secrets(&mut json);
                json
            }
            Err(_) if body.is_empty() => Value::Null,
            Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
        }
    }

    /// Replaces the listed fields of `json` in place.
    pub(crate) fn json(&self, json: &mut Value) {
        for field in &self.fields {
            let mut parts = field.split('.').peekable();
            let mut at = &mut *json;
            while let Some(part) = parts.next() {
                let next = match at {
                    Value::Object(map) => map.get_mut(part),
                    Value::Array(items) => {
                        part.parse::<usize>().ok().and_then(|i| items.get_mut(i))
                    }
                    _ => None,
                };
                let Some(next) = next else { break };
                if parts.peek().is_none() {
                    *next = Value::String(REDACTED.to_string());
                    break;
                }
                at = next;
            }
        }
    }

    /// Replaces the value of every field at any depth whose name looks like
    /// a secret. A JSON schema's `properties` names fields, not values, so
    /// its entries are walked but not replaced.
    fn secrets(&self, json: &mut Value) {
        match json {
            Value::Object(map) => {
                for (name, value) in map.iter_mut() {
                    if self.secret(name) {
                        *value = Value::String(REDACTED.to_string());
                    } else if name == "properties"
                        && let Value::Object(properties) = value
                    {
                        properties.values_mut().for_each(|schema| self.secrets(schema));
                    } else {
                        self.secrets(value);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.secrets(item)),
            _ => {}
        }
    }

    /// Whether any JSON field is listed (then response bodies are parsed too).
    pub(crate) fn has_fields(&self) -> bool {
        !self.fields.is_empty()
    }

    /// An SSE event or body with the listed fields of its JSON replaced;
    /// bytes that are not JSON (or name no listed field) stay as they are.
    pub(crate) fn payload(&self, bytes: Bytes, stream: bool) -> Bytes {
        if !self.has_fields() {
            return bytes;
        }
        let leaves: Vec<&str> = self.fields.iter().filter_map(|f| f.rsplit('.').next()).collect();
        if !leaves.iter().any(|leaf| memchr::memmem::find(&bytes, leaf.as_bytes()).is_some()) {
            return bytes;
        }
        if !stream {
            let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) else { return bytes };
            self.json(&mut json);
            return serde_json::to_vec(&json).map(Bytes::from).unwrap_or(bytes);
        }
        // Each `data:` line that is JSON, in place; other lines as they were.
        let Ok(text) = std::str::from_utf8(&bytes) else { return bytes };
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let content = line.strip_suffix('\n').unwrap_or(line);
            let content = content.strip_suffix('\r').unwrap_or(content);
            let end = line.get(content.len()..).unwrap_or("");
            let redacted = content.strip_prefix("data:").and_then(|data| {
                let mut json = serde_json::from_str::<Value>(data.trim_start()).ok()?;
                self.json(&mut json);
                Some(format!("data: {}", serde_json::to_string(&json).ok()?))
            });
            out.push_str(redacted.as_deref().unwrap_or(content));
            out.push_str(end);
        }
        Bytes::from(out)
    }
}

/// `text` with `%XX` escapes (and `+`) decoded, invalid ones left as they are.
fn percent_decoded(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests;
