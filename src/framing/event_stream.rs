//! AWS's binary event stream (`application/vnd.amazon.eventstream`), the
//! framing of Amazon Bedrock's `ConverseStream` and
//! `InvokeModelWithResponseStream` (`docs/protocols.md` §8). A frame is a
//! 12-byte prelude (total length, headers length, the prelude's CRC32),
//! typed headers (`:message-type`, `:event-type` or `:exception-type`,
//! `:content-type`), a payload and the message's CRC32. Frames are read and
//! written with smithy-rs's `aws-smithy-eventstream`, which checks both CRCs.
//!
//! The splitter cuts on the prelude's total length alone, so a frame passed
//! on unchanged is the upstream's bytes; each whole frame is then decoded
//! once to classify it (a frame that does not decode, a bad CRC included,
//! is passed on as [`EventKind::Other`]). A frame longer than `max_event`
//! passes through as it arrives, unclassified; a prelude that cannot be a
//! frame's (shorter than a frame can be) ends the splitting, and every byte
//! after it passes through as it comes.

use std::borrow::Cow;

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

use super::{Event, EventKind, Record};

/// The shortest frame: its prelude and its CRC.
const MIN_FRAME: usize = 16;

/// Splits an event stream into frames; `classify` names each event frame
/// (given as an event whose name is its `:event-type` and whose data is its
/// payload).
#[derive(Debug)]
pub(crate) struct EventStreamSplitter {
    /// Bytes of the open frame (at most `max_event`).
    buf: BytesMut,
    /// Bytes of an oversized frame still to pass through.
    passing: usize,
    /// A prelude was not a frame's: everything else passes through.
    lost: bool,
    max_event: usize,
    classify: fn(&Event<'_>) -> EventKind,
}

impl EventStreamSplitter {
    /// A splitter that classifies frames with `classify` and buffers at most
    /// about `max_event` bytes of one.
    pub(crate) fn new(classify: fn(&Event<'_>) -> EventKind, max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            passing: 0,
            lost: false,
            max_event: max_event.max(1),
            classify,
        }
    }

    /// Takes the next chunk; appends every record it completes to `out`.
    pub(crate) fn push(&mut self, mut chunk: Bytes, out: &mut impl Extend<Record>) {
        while !chunk.is_empty() {
            if self.lost {
                out.extend(Some(Record { raw: chunk, kind: EventKind::Other }));
                return;
            }
            if self.passing > 0 {
                let take = self.passing.min(chunk.len());
                self.passing -= take;
                out.extend(Some(Record { raw: chunk.split_to(take), kind: EventKind::Other }));
                continue;
            }
            // The open frame's length, once its first 4 bytes are here.
            let known = self.buf.len() + chunk.len();
            if known < 4 {
                self.buf.extend_from_slice(&chunk);
                return;
            }
            let mut prefix = [0u8; 4];
            for (i, byte) in prefix.iter_mut().enumerate() {
                *byte = if i < self.buf.len() { self.buf[i] } else { chunk[i - self.buf.len()] };
            }
            let total = u32::from_be_bytes(prefix) as usize;
            if total < MIN_FRAME {
                self.lost = true;
                let held = self.buf.split().freeze();
                out.extend(
                    (!held.is_empty()).then_some(Record { raw: held, kind: EventKind::Other }),
                );
                continue;
            }
            if total > self.max_event {
                // Passed on as it comes: what is held, then the rest.
                let held = self.buf.split().freeze();
                self.passing = total - held.len();
                out.extend(
                    (!held.is_empty()).then_some(Record { raw: held, kind: EventKind::Other }),
                );
                continue;
            }
            let missing = total - self.buf.len();
            if chunk.len() < missing {
                self.buf.extend_from_slice(&chunk);
                return;
            }
            let raw = if self.buf.is_empty() {
                chunk.split_to(missing)
            } else {
                self.buf.extend_from_slice(&chunk.split_to(missing));
                self.buf.split().freeze()
            };
            let kind = frame_kind(&raw, self.classify);
            out.extend(Some(Record { raw, kind }));
        }
    }

    /// The stream ended: a frame left open, as one unclassified record (an
    /// SDK reports it; passing it on keeps the bytes identical).
    pub(crate) fn finish(&mut self) -> Option<Record> {
        (!self.buf.is_empty())
            .then(|| Record { raw: self.buf.split().freeze(), kind: EventKind::Other })
    }
}

/// A whole frame's kind by `classify`: an event frame is its `:event-type`
/// and payload; an exception, an error or a frame that does not decode is
/// [`EventKind::Other`].
pub(crate) fn frame_kind(raw: &[u8], classify: fn(&Event<'_>) -> EventKind) -> EventKind {
    let Ok(message) = read_message_from(raw) else {
        return EventKind::Other;
    };
    if header(&message, ":message-type") != Some("event") {
        return EventKind::Other;
    }
    let name = header(&message, ":event-type");
    classify(&Event { name, data: Some(Cow::Borrowed(message.payload())) })
}

/// A string header's value.
fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    let found = message.headers().iter().find(|h| h.name().as_str() == name)?;
    match found.value() {
        HeaderValue::String(value) => Some(value.as_str()),
        _ => None,
    }
}

/// An event frame: `:event-type`, `:content-type: application/json` and
/// `:message-type: event`, in the order Bedrock sends them.
pub(crate) fn event(event_type: &str, payload: &[u8]) -> Bytes {
    encode(
        vec![
            Header::new(":event-type", HeaderValue::String(event_type.to_string().into())),
            Header::new(":content-type", HeaderValue::String("application/json".into())),
            Header::new(":message-type", HeaderValue::String("event".into())),
        ],
        payload,
    )
}

/// An exception frame: `:exception-type`, `:content-type` and
/// `:message-type: exception`, with a `{"message": ...}` payload.
pub(crate) fn exception(exception_type: &str, payload: &[u8]) -> Bytes {
    encode(
        vec![
            Header::new(":exception-type", HeaderValue::String(exception_type.to_string().into())),
            Header::new(":content-type", HeaderValue::String("application/json".into())),
            Header::new(":message-type", HeaderValue::String("exception".into())),
        ],
        payload,
    )
}

/// A frame of string headers, in the order given, and `payload`.
pub(crate) fn with_headers(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new((*name).to_string(), HeaderValue::String((*value).to_string().into()))
        })
        .collect();
    encode(headers, payload)
}

/// A frame's headers, when every one is a string, and its payload.
pub(crate) fn string_headers(raw: &[u8]) -> Option<(Vec<(String, String)>, Bytes)> {
    let message = read_message_from(raw).ok()?;
    let headers = message
        .headers()
        .iter()
        .map(|h| match h.value() {
            HeaderValue::String(value) => {
                Some((h.name().as_str().to_string(), value.as_str().to_string()))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((headers, message.payload().clone()))
}

/// A frame's length when every header is a string: the prelude (total
/// length, headers' length, its CRC: 12 bytes), each header (a 1-byte name
/// length, the name, the type byte and a 2-byte value length, the value),
/// the payload and the message CRC (4 bytes).
fn frame_len(headers: &[Header], payload: usize) -> Option<usize> {
    let headers: Option<usize> = headers
        .iter()
        .map(|header| match header.value() {
            HeaderValue::String(value) => {
                Some(4 + header.name().as_str().len() + value.as_str().len())
            }
            _ => None,
        })
        .sum();
    Some(12 + headers? + payload + 4)
}

fn encode(headers: Vec<Header>, payload: &[u8]) -> Bytes {
    // Sized exactly, as the mock's SSE encoders are (`mock::json_text`):
    // `Bytes` from a buffer with room to spare allocates its shared header
    // too, and this runs once a token on a Bedrock stream.
    let size = frame_len(&headers, payload.len());
    let message = Message::new_from_parts(headers, Bytes::copy_from_slice(payload));
    let mut out = Vec::with_capacity(size.unwrap_or(payload.len() + 96));
    // Writing fails only past 16 MiB of headers or payload, which sluice never
    // makes; the frame is then empty, which a client reports as a bad frame.
    if write_message_to(&message, &mut out).is_err() {
        out.clear();
    }
    debug_assert!(size.is_none_or(|size| out.is_empty() || out.len() == size), "sized exactly");
    out.into()
}

/// `record` broken as the `malformed` fault sends it: the same headers, its
/// payload (JSON) cut in half, in a frame whose CRCs are right, so the
/// client's JSON parser, not its frame check, meets it. A frame that does
/// not decode is cut in half as bytes.
pub(crate) fn corrupt(record: &Record) -> Record {
    let raw = match read_message_from(&record.raw[..]) {
        Ok(message) => {
            let payload = message.payload();
            let half = payload.slice(..payload.len() / 2);
            encode(message.headers().to_vec(), &half)
        }
        Err(_) => record.raw.slice(..(record.raw.len() / 2).max(1).min(record.raw.len())),
    };
    Record { raw, kind: record.kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(event: &Event<'_>) -> EventKind {
        match event.name {
            Some("contentBlockDelta") => EventKind::Content,
            Some("contentBlockStart") => EventKind::ToolStart,
            _ => EventKind::Other,
        }
    }

    /// Each builder's frame is exactly as long as `frame_len` says (the
    /// debug assertion in `encode` checks the buffer; this runs it over
    /// header and payload sizes), and as its prelude says.
    #[test]
    fn frames_are_built_in_buffers_of_exactly_their_size() {
        let long = "é".repeat(300);
        for payload in [&b""[..], b"{}", &[b'x'; 70_000][..]] {
            let built = [
                event("contentBlockDelta", payload),
                exception("throttlingException", payload),
                with_headers(&[(":event-type", "chunk"), ("x-long", &long)], payload),
            ];
            for frame in built {
                let total = u32::from_be_bytes(frame[..4].try_into().unwrap());
                assert_eq!(total as usize, frame.len());
            }
        }
        let headers = vec![Header::new(":event-type", HeaderValue::String("chunk".into()))];
        assert_eq!(frame_len(&headers, 10), Some(12 + (1 + 11 + 1 + 2 + 5) + 10 + 4));
        let other = vec![Header::new(":flag", HeaderValue::Bool(true))];
        assert_eq!(frame_len(&other, 10), None);
    }

    fn frames() -> Vec<Bytes> {
        vec![
            event("messageStart", br#"{"role":"assistant"}"#),
            event("contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            event(
                "contentBlockStart",
                br#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
            ),
            exception("throttlingException", br#"{"message":"slow down"}"#),
        ]
    }

    #[test]
    fn every_cut_point_gives_the_same_frames_and_bytes() {
        let frames = frames();
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        for cut in 0..=stream.len() {
            for step in [1, 3, 7, 64] {
                let mut splitter = EventStreamSplitter::new(by_name, 1 << 20);
                let mut out = Vec::new();
                let (head, tail) = stream.split_at(cut);
                for part in head.chunks(step).chain(tail.chunks(step)) {
                    splitter.push(Bytes::copy_from_slice(part), &mut out);
                }
                out.extend(splitter.finish());
                let raws: Vec<&[u8]> = out.iter().map(|r| &r.raw[..]).collect();
                let expected: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                assert_eq!(raws, expected, "cut at {cut}, step {step}");
                let kinds: Vec<EventKind> = out.iter().map(|r| r.kind).collect();
                assert_eq!(
                    kinds,
                    [EventKind::Other, EventKind::Content, EventKind::ToolStart, EventKind::Other]
                );
            }
        }
    }

    #[test]
    fn a_huge_frame_passes_through_and_a_bad_prelude_ends_the_splitting() {
        let frames = frames();
        let mut splitter = EventStreamSplitter::new(by_name, 40);
        let mut out = Vec::new();
        for frame in &frames {
            splitter.push(frame.clone(), &mut out);
        }
        let joined: Vec<u8> = out.iter().flat_map(|r| r.raw.iter().copied()).collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(joined, stream);
        assert!(out.iter().all(|r| r.kind == EventKind::Other), "each frame is over 40 bytes");

        let mut splitter = EventStreamSplitter::new(by_name, 1 << 20);
        let mut out = Vec::new();
        splitter.push(Bytes::from_static(b"\0\0\0\x05garbage"), &mut out);
        splitter.push(frames[1].clone(), &mut out);
        let joined: Vec<u8> = out.iter().flat_map(|r| r.raw.iter().copied()).collect();
        assert_eq!(&joined[..11], b"\0\0\0\x05garbage");
        assert_eq!(joined.len(), 11 + frames[1].len(), "every byte passes through");
        assert!(out.iter().all(|r| r.kind == EventKind::Other));
    }

    #[test]
    fn a_bad_crc_is_other_and_malformed_keeps_a_valid_frame_with_half_its_payload() {
        let mut bad = frames()[1].to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(frame_kind(&bad, by_name), EventKind::Other);
        let record = Record { raw: frames()[1].clone(), kind: EventKind::Content };
        let broken = corrupt(&record);
        let message = read_message_from(&broken.raw[..]).unwrap();
        assert_eq!(header(&message, ":event-type"), Some("contentBlockDelta"));
        assert!(serde_json::from_slice::<serde_json::Value>(message.payload()).is_err());
    }
}
