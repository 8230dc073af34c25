//! Server-sent events as the shaper sees them: one [`SseRecord`] per event,
//! holding the exact bytes to write and a classification of what it carries.
//!
//! Both sources produce records: the mock builds them with [`encode_event`],
//! and the proxy's [`SseSplitter`] cuts them out of the upstream body. The
//! shaper reads only [`EventKind`]; it writes `raw` unchanged, so an event that
//! no fault touches reaches the client byte-for-byte as the source made it.
//!
//! Emission rules follow `docs/protocols.md` §1.2, which every official SDK parser
//! accepts: LF line ends, `field: value` with one space, one compact `data:`
//! line per event, a blank line after every event (the last one included), and
//! no BOM, `id:` or `retry:`.

pub(crate) mod split;

use bytes::{BufMut, Bytes, BytesMut};

pub(crate) use split::{Event, SseSplitter};

/// What an event means for timing. The shaper knows nothing else about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Model output: a text, thinking or tool-argument fragment. Paced by
    /// `token_interval`; the first one by `first_token_delay`.
    Content,
    /// The event that opens a tool call (Anthropic `content_block_start` of a
    /// `tool_use` block). Model output too, released `tool_call_delay` later
    /// than a plain content event would be.
    ToolStart,
    /// Everything else (message start, block stop, usage, ping, unknown).
    /// Keeps its place in the order and never overtakes the content before it.
    Other,
}

impl EventKind {
    /// Whether the event is model output, i.e. counts as a token for pacing
    /// and for "first token" (the response head is held until one is released).
    pub(crate) fn is_content(self) -> bool {
        matches!(self, Self::Content | Self::ToolStart)
    }
}

/// One SSE event: the bytes to put on the wire and its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseRecord {
    /// Exactly the bytes of the event, trailing blank line included.
    pub(crate) raw: Bytes,
    /// What the event carries, for the shaper's timing.
    pub(crate) kind: EventKind,
}

/// Encodes `event: {name}\ndata: {json}\n\n`.
///
/// `json` must be compact JSON (no raw newlines), which `serde_json::to_string`
/// guarantees; a newline inside would split the `data:` field.
pub(crate) fn encode_event(name: &str, json: &str, kind: EventKind) -> SseRecord {
    debug_assert!(!json.contains('\n'), "SSE data must be one line");
    let mut raw = BytesMut::with_capacity(name.len() + json.len() + 16);
    raw.put_slice(b"event: ");
    raw.put_slice(name.as_bytes());
    raw.put_slice(b"\ndata: ");
    raw.put_slice(json.as_bytes());
    raw.put_slice(b"\n\n");
    SseRecord { raw: raw.freeze(), kind }
}

/// Encodes a data-only event, `data: {json}\n\n` (OpenAI Chat Completions).
pub(crate) fn encode_data(json: &str, kind: EventKind) -> SseRecord {
    let mut raw = BytesMut::with_capacity(json.len() + 8);
    raw.put_slice(b"data: ");
    raw.put_slice(json.as_bytes());
    raw.put_slice(b"\n\n");
    SseRecord { raw: raw.freeze(), kind }
}

/// The record with its JSON cut in half: the first `data:` line keeps half of
/// its value and the event ends there, as a proxy that lost bytes would send
/// it. A record without data becomes `data: {` and a blank line. The kind is
/// kept, so the corrupt event is timed like the one it replaces.
pub(crate) fn corrupt(record: &SseRecord) -> SseRecord {
    let text = String::from_utf8_lossy(&record.raw);
    let mut out = String::new();
    let mut cut = false;
    for line in text.split_inclusive('\n') {
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.trim_end_matches(['\r', '\n']);
            let keep: String = value.chars().take(value.chars().count() / 2).collect();
            out.push_str("data:");
            out.push_str(&keep);
            out.push_str("\n\n");
            cut = true;
            break;
        }
        out.push_str(line);
    }
    if !cut {
        out = "data: {\n\n".to_string();
    }
    SseRecord { raw: Bytes::from(out), kind: record.kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_an_event_as_the_sdks_expect() {
        let record = encode_event("ping", r#"{"type":"ping"}"#, EventKind::Other);
        assert_eq!(&record.raw[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        assert_eq!(record.kind, EventKind::Other);
    }

    #[test]
    fn json_with_unicode_line_separators_stays_on_one_line() {
        // U+2028 is not an SSE line end; serde_json leaves it raw and that is fine.
        let json = serde_json::to_string(&serde_json::json!({"text": "a\u{2028}b\nc"})).unwrap();
        let record = encode_event("x", &json, EventKind::Content);
        let text = std::str::from_utf8(&record.raw).unwrap();
        assert_eq!(text.matches('\n').count(), 3, "two field lines and the blank line");
        assert!(text.contains("a\u{2028}b\\nc"));
    }

    #[test]
    fn only_model_output_counts_as_content() {
        assert!(EventKind::Content.is_content());
        assert!(EventKind::ToolStart.is_content());
        assert!(!EventKind::Other.is_content());
    }
}
