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

    /// Stops reading events after the first visible one (text or a tool
    /// call): each read from then on is one record, cut at its last event
    /// boundary (SSE only; `false` when this framing keeps splitting every
    /// event).
    pub(crate) fn pass_through_after_first_text(&mut self) -> bool {
        match self {
            Self::Sse(splitter) => {
                splitter.pass_through_after_first_text();
                true
            }
            Self::JsonArray(_) | Self::EventStream(_) => false,
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

    /// Passing through after the first text, an SSE splitter still gives
    /// back exactly its bytes and finds the first text; every record after
    /// it is unclassified, ends on an event boundary, and there is at most
    /// one a read. At every pair of cut points.
    #[test]
    fn sse_pass_through_keeps_every_byte_and_cuts_only_at_event_boundaries() {
        let (stream, dialect) = sample(Framing::Sse);
        let stream = [stream.as_slice(), b"event: ping\ndata: {}\r\n\r\n", &stream].concat();
        // Boundaries: after each blank line.
        let mut reference = Framing::Sse.splitter(dialect.classifier(), 1 << 20);
        let mut events = Vec::new();
        reference.push(Bytes::copy_from_slice(&stream), &mut events);
        let boundaries: Vec<usize> = events
            .iter()
            .scan(0, |end, event| {
                *end += event.raw.len();
                Some(*end)
            })
            .collect();
        for first in 0..=stream.len() {
            for second in first..=stream.len() {
                let mut splitter = Framing::Sse.splitter(dialect.classifier(), 1 << 20);
                assert!(splitter.pass_through_after_first_text());
                let mut records = Vec::new();
                let mut after_text = 0;
                for read in [&stream[..first], &stream[first..second], &stream[second..]] {
                    let before = records.len();
                    splitter.push(Bytes::copy_from_slice(read), &mut records);
                    let text = records.iter().position(|r: &Record| r.kind.is_content());
                    if text.is_some_and(|at| at < before) {
                        after_text += records.len() - before;
                    }
                }
                records.extend(splitter.finish());
                let joined: Vec<u8> = records.iter().flat_map(|r| r.raw.to_vec()).collect();
                assert_eq!(joined, stream, "cuts at {first}, {second}");
                let text = records.iter().position(|r| r.kind.is_content());
                let Some(text) = text else { panic!("no text found (cuts at {first}, {second})") };
                assert!(after_text <= 2, "{after_text} records in two reads");
                let mut end = records[..=text].iter().map(|r| r.raw.len()).sum::<usize>();
                for record in &records[text + 1..] {
                    assert_eq!(record.kind, EventKind::Other, "cuts at {first}, {second}");
                    end += record.raw.len();
                    // A read that ends between a blank line's CR and its LF
                    // is cut after the CR: the blank line has ended there.
                    let before_lf =
                        stream.get(end) == Some(&b'\n') && boundaries.contains(&(end + 1));
                    assert!(
                        boundaries.contains(&end) || before_lf,
                        "a record ends at {end}, inside an event (cuts at {first}, {second})"
                    );
                }
            }
        }
        // JSON arrays and AWS event streams keep splitting every event.
        for framing in [Framing::JsonArray, Framing::EventStream] {
            let mut splitter = framing.splitter(dialect.classifier(), 1 << 20);
            assert!(!splitter.pass_through_after_first_text());
        }
    }

    proptest::proptest! {
        /// SSE streams made of event lines, comments, data and every kind of
        /// line end, cut into reads of every size: passing through after the
        /// first text keeps every byte, and cuts only where reading every
        /// event cuts (`fuzz_checks::sse_split` checks both).
        #[test]
        fn sse_pass_through_cuts_where_reading_every_event_cuts(
            seed in 0u8..=255,
            pieces in proptest::collection::vec(0usize..9, 0..60),
        ) {
            const PIECES: [&str; 9] = [
                "event: content_block_delta\n",
                "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
                "data: {\"type\":\"ping\"}",
                ": a comment",
                "\n",
                "\r\n",
                "\r",
                "\n\n",
                "\r\n\r\n",
            ];
            let stream: Vec<u8> = pieces.iter().flat_map(|&i| PIECES[i].bytes()).collect();
            // The seed's top bit turns pass-through on; its rest sets the read sizes.
            crate::fuzz_checks::sse_split(&[&[seed | 0x80][..], &stream].concat());
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
