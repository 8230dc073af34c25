//! How a stream's bytes are cut into events and written back: the seam
//! between the shaper, which times and faults events whatever their wire
//! form, and a stream format. A source hands the shaper [`Record`]s (the
//! exact bytes of one event and its [`EventKind`]); the shaper writes the
//! bytes unchanged, so an event that no fault touches reaches the client
//! byte-for-byte as the source made it.
//!
//! A [`Framing`] says how an upstream body is split ([`Splitter`]), how an
//! event is read for its name and data ([`Event`], which a dialect
//! classifies), and how the `malformed` fault breaks one. Server-sent events
//! ([`sse`]) are the framing of the Anthropic, OpenAI and Gemini streams;
//! Gemini's streamed JSON array ([`json_array`]) is the second; AWS's binary
//! event stream ([`event_stream`], Bedrock's) the third. An injected error
//! event is the dialect's to write (`dialect/`), in its framing.

pub(crate) mod event_stream;
pub(crate) mod json_array;
pub(crate) mod sse;

use bytes::Bytes;

use event_stream::EventStreamSplitter;
use json_array::JsonArraySplitter;
use sse::SseSplitter;
pub(crate) use sse::split::Event;

/// What an event means for timing. The shaper knows nothing else about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Visible model output: a text or tool-argument fragment. Paced by
    /// `token_interval`; the first one by `first_token_delay`.
    Content,
    /// Reasoning the model streams before it answers (an Anthropic
    /// `thinking_delta`, a Responses reasoning-summary delta). Model output,
    /// paced by `[thinking] token_interval`; not visible text.
    Thinking,
    /// The event that opens a tool call (Anthropic `content_block_start` of a
    /// `tool_use` block). Model output too, released `tool_call_delay` later
    /// than a plain content event would be.
    ToolStart,
    /// Everything else (message start, block stop, usage, ping, unknown).
    /// Keeps its place in the order and never overtakes the content before it.
    Other,
}

impl EventKind {
    /// Whether the event is model output, thinking included, i.e. counts as a
    /// token for pacing, for "first token" (the response head is held until
    /// one is released) and for a fault's `after_tokens`.
    pub(crate) fn is_content(self) -> bool {
        matches!(self, Self::Content | Self::Thinking | Self::ToolStart)
    }

    /// Whether the event is output the app shows its user: text or a tool
    /// call, not thinking (time to first text counts to the first of these).
    pub(crate) fn is_visible(self) -> bool {
        matches!(self, Self::Content | Self::ToolStart)
    }
}

/// One event of a stream, in any framing: the bytes to put on the wire and
/// its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Exactly the bytes of the event, trailing blank line included.
    pub(crate) raw: Bytes,
    /// What the event carries, for the shaper's timing.
    pub(crate) kind: EventKind,
}

/// The stream formats sluice can split, shape and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Framing {
    /// `text/event-stream` (`docs/protocols.md` §1).
    #[default]
    Sse,
    /// A streamed JSON array (Gemini without `alt=sse`, `docs/protocols.md` §7).
    JsonArray,
    /// AWS's binary event stream (Bedrock, `docs/protocols.md` §8).
    EventStream,
}

impl Framing {
    /// Every framing, for the tests and fuzz targets that run per framing.
    pub(crate) const ALL: [Framing; 3] = [Framing::Sse, Framing::JsonArray, Framing::EventStream];

    /// The framing of a response with `content_type`, if sluice can split it.
    pub(crate) fn of_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/vnd.amazon.eventstream") {
            return Some(Self::EventStream);
        }
        essence.eq_ignore_ascii_case("text/event-stream").then_some(Self::Sse)
    }

    /// The `content-type` a stream in this framing is sent with.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Sse => "text/event-stream; charset=utf-8",
            Self::JsonArray => "application/json; charset=UTF-8",
            Self::EventStream => "application/vnd.amazon.eventstream",
        }
    }

    /// The kind of one whole record of this framing (an SSE event, or an
    /// array element with the bytes before it), as its splitter names it.
    pub(crate) fn kind_of(self, raw: &Bytes, classify: fn(&Event<'_>) -> EventKind) -> EventKind {
        match self {
            Self::Sse => classify(&Event::parse(raw)),
            Self::JsonArray => json_array::element_kind(raw, classify),
            Self::EventStream => event_stream::frame_kind(raw, classify),
        }
    }

    /// A splitter for a body in this framing, whose events `classify` names,
    /// buffering at most about `max_event` bytes of one event.
    pub(crate) fn splitter(
        self,
        classify: fn(&Event<'_>) -> EventKind,
        max_event: usize,
    ) -> Splitter {
        match self {
            Self::Sse => Splitter::Sse(SseSplitter::new(classify, max_event)),
            Self::JsonArray => Splitter::JsonArray(JsonArraySplitter::new(classify, max_event)),
            Self::EventStream => {
                Splitter::EventStream(EventStreamSplitter::new(classify, max_event))
            }
        }
    }

    /// `record` broken as the `malformed` fault sends it: its payload cut in
    /// half, timed like the event it replaces.
    pub(crate) fn corrupt(self, record: &Record) -> Record {
        match self {
            Self::Sse => sse::corrupt(record),
            Self::JsonArray => json_array::corrupt(record),
            Self::EventStream => event_stream::corrupt(record),
        }
    }
}

/// Cuts a body into [`Record`]s, keeping every byte: records passed on
/// unchanged re-join into exactly the bytes that came in, whatever the
/// chunking. Sans-io: bytes in, records out.
#[derive(Debug)]
pub(crate) enum Splitter {
    /// Server-sent events.
    Sse(SseSplitter),
    /// A streamed JSON array.
    JsonArray(JsonArraySplitter),
    /// AWS's binary event stream.
    EventStream(EventStreamSplitter),
}

impl Splitter {
    /// Takes the next chunk; appends every record it completes to `out`.
    pub(crate) fn push(&mut self, chunk: Bytes, out: &mut impl Extend<Record>) {
        match self {
            Self::Sse(splitter) => splitter.push(chunk, out),
            Self::JsonArray(splitter) => splitter.push(chunk, out),
            Self::EventStream(splitter) => splitter.push(chunk, out),
        }
    }

    /// At the end of the body: the bytes of an event left open, if any.
    pub(crate) fn finish(&mut self) -> Option<Record> {
        match self {
            Self::Sse(splitter) => splitter.finish(),
            Self::JsonArray(splitter) => splitter.finish(),
            Self::EventStream(splitter) => splitter.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream in `framing`, as an upstream writes it, and its dialect.
    fn sample(framing: Framing) -> (Vec<u8>, crate::dialect::Dialect) {
        use crate::dialect::Dialect;
        let (stream, dialect): (&[u8], Dialect) = match framing {
            Framing::EventStream => {
                let frames = [
                    event_stream::event("messageStart", br#"{"role":"assistant"}"#),
                    event_stream::event("contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
                    event_stream::event("messageStop", br#"{"stopReason":"end_turn"}"#),
                ];
                return (frames.concat(), Dialect::Bedrock);
            }
            Framing::JsonArray => (b"[{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi\"}]},\"index\":0}]}\r\n,{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"totalTokenCount\":3}}]", Dialect::Gemini),
            Framing::Sse => (b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n: a comment\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", Dialect::Anthropic),
        };
        (stream.to_vec(), dialect)
    }

    /// Every framing's splitter gives back exactly the bytes it was given,
    /// cut anywhere, and finds the same content events at every cut.
    #[test]
    fn every_framing_splits_byte_for_byte_at_every_cut_point() {
        for framing in Framing::ALL {
            let (stream, dialect) = sample(framing);
            let classify = dialect.classifier();
            let mut contents = None;
            for cut in 0..=stream.len() {
                let mut splitter = framing.splitter(classify, 1 << 20);
                let mut records = Vec::new();
                splitter.push(Bytes::copy_from_slice(&stream[..cut]), &mut records);
                splitter.push(Bytes::copy_from_slice(&stream[cut..]), &mut records);
                records.extend(splitter.finish());
                let joined: Vec<u8> = records.iter().flat_map(|r| r.raw.to_vec()).collect();
                assert_eq!(joined, stream, "{framing:?} cut at {cut}");
                let content = records.iter().filter(|r| r.kind.is_content()).count();
                assert_eq!(*contents.get_or_insert(content), content, "{framing:?} cut at {cut}");
            }
            assert_eq!(contents, Some(1), "{framing:?}");
        }
    }

    #[test]
    fn the_content_type_names_the_framing() {
        assert_eq!(Framing::of_content_type("text/event-stream"), Some(Framing::Sse));
        assert_eq!(
            Framing::of_content_type("Text/Event-Stream; charset=utf-8"),
            Some(Framing::Sse)
        );
        assert_eq!(Framing::of_content_type("application/json"), None);
        assert_eq!(
            Framing::of_content_type("application/vnd.amazon.eventstream"),
            Some(Framing::EventStream)
        );
    }
}
