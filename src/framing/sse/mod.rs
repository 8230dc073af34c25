//! Server-sent events, the framing of the Anthropic and OpenAI streams: the
//! mock writes its events with [`encode_event`] and [`encode_data`], the
//! proxy's [`SseSplitter`] cuts an upstream body into records, and
//! [`corrupt`] makes the `malformed` fault's broken event.
//!
//! Emission rules follow `docs/protocols.md` §1.2, which every official SDK parser
//! accepts: LF line ends, `field: value` with one space, one compact `data:`
//! line per event, a blank line after every event (the last one included), and
//! no BOM, `id:` or `retry:`.

pub(crate) mod split;

use bytes::{BufMut, Bytes, BytesMut};

pub(crate) use split::SseSplitter;

use super::{EventKind, Record};

/// Encodes `event: {name}\ndata: {json}\n\n`.
///
/// `json` must be compact JSON (no raw newlines), which `serde_json::to_string`
/// guarantees; a newline inside would split the `data:` field.
pub(crate) fn encode_event(name: &str, json: &str, kind: EventKind) -> Record {
    debug_assert!(!json.contains('\n'), "SSE data must be one line");
    let mut raw = BytesMut::with_capacity(name.len() + json.len() + 16);
    raw.put_slice(b"event: ");
    raw.put_slice(name.as_bytes());
    raw.put_slice(b"\ndata: ");
    raw.put_slice(json.as_bytes());
    raw.put_slice(b"\n\n");
    Record { raw: raw.freeze(), kind }
}

/// Encodes a data-only event, `data: {json}\n\n` (OpenAI Chat Completions).
pub(crate) fn encode_data(json: &str, kind: EventKind) -> Record {
    let mut raw = BytesMut::with_capacity(json.len() + 8);
    raw.put_slice(b"data: ");
    raw.put_slice(json.as_bytes());
    raw.put_slice(b"\n\n");
    Record { raw: raw.freeze(), kind }
}

/// The record with its JSON cut in half: the first `data:` line keeps half of
/// its value and the event ends there, as a proxy that lost bytes would send
/// it. A record without data becomes `data: {` and a blank line. The kind is
/// kept, so the corrupt event is timed like the one it replaces.
pub(crate) fn corrupt(record: &Record) -> Record {
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
    Record { raw: Bytes::from(out), kind: record.kind }
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
