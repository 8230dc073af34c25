//! A streamed JSON array, the framing of Gemini's `streamGenerateContent`
//! without `alt=sse` (`docs/protocols.md` §7): `[`, elements separated by
//! `,` and white space, `]`. Each element is a record, with the bytes before
//! it (`[`, or `,` and the line end) in front, so that records passed on
//! unchanged re-join into exactly the bytes the upstream sent, whatever the
//! chunking; the closing `]` and anything after it is a last record.
//! Sans-io: bytes in, records out.
//!
//! The splitter only counts brackets outside strings; it never parses. An
//! element that grows past `max_event` bytes is passed on as it arrives,
//! unclassified ([`EventKind::Other`]), as the SSE splitter does.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use super::{Event, EventKind, Record};

/// Splits a streamed JSON array into records; `classify` names each element
/// (given as an event whose data is the element).
#[derive(Debug)]
pub(crate) struct JsonArraySplitter {
    /// Bytes of the open record.
    buf: BytesMut,
    /// Brackets open: 1 inside the array, 2 and more inside an element.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The open element outgrew `max_event` and is being passed through.
    oversized: bool,
    max_event: usize,
    classify: fn(&Event<'_>) -> EventKind,
}

impl JsonArraySplitter {
    /// A splitter that classifies elements with `classify` and buffers at
    /// most about `max_event` bytes of one.
    pub(crate) fn new(classify: fn(&Event<'_>) -> EventKind, max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            oversized: false,
            max_event: max_event.max(1),
            classify,
        }
    }

    /// Takes the next chunk; appends every record it completes to `out`.
    pub(crate) fn push(&mut self, chunk: Bytes, out: &mut impl Extend<Record>) {
        let mut start = 0;
        for (at, &byte) in chunk.iter().enumerate() {
            let ends = self.scan(byte);
            if ends {
                self.buf.extend_from_slice(&chunk[start..=at]);
                start = at + 1;
                let raw = self.buf.split().freeze();
                let kind = if self.oversized { EventKind::Other } else { self.kind_of(&raw) };
                self.oversized = false;
                out.extend([Record { raw, kind }]);
            }
        }
        self.buf.extend_from_slice(&chunk[start..]);
        if self.buf.len() > self.max_event {
            // Too long to hold: what has come goes on, unclassified.
            self.oversized = true;
            let raw = self.buf.split().freeze();
            out.extend([Record { raw, kind: EventKind::Other }]);
        }
    }

    /// At the end of the body: the bytes after the last record, if any.
    pub(crate) fn finish(&mut self) -> Option<Record> {
        (!self.buf.is_empty())
            .then(|| Record { raw: self.buf.split().freeze(), kind: EventKind::Other })
    }

    /// Moves the state past `byte`; whether it ends a record (the last byte
    /// of an element, or the array's `]`).
    fn scan(&mut self, byte: u8) -> bool {
        if self.in_string {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                false
            }
            b'[' | b'{' => {
                self.depth = self.depth.saturating_add(1);
                false
            }
            b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                // An element closes at the array's level; the array closes at 0.
                self.depth <= 1
            }
            _ => false,
        }
    }

    /// An element record's kind.
    fn kind_of(&self, raw: &Bytes) -> EventKind {
        element_kind(raw, self.classify)
    }
}

/// An element record's JSON: without the `[` or `,` and white space before
/// it, nor the array's `]` after the last.
pub(crate) fn element(raw: &[u8]) -> &[u8] {
    let element = raw
        .iter()
        .position(|b| !matches!(b, b'[' | b',' | b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(&raw[..0], |at| &raw[at..]);
    element.strip_suffix(b"]").unwrap_or(element)
}

/// An element record's kind by `classify`: its JSON, without what comes
/// before it.
pub(crate) fn element_kind(raw: &[u8], classify: fn(&Event<'_>) -> EventKind) -> EventKind {
    let element = element(raw);
    if element.first() != Some(&b'{') {
        return EventKind::Other;
    }
    classify(&Event { name: None, data: Some(Cow::Borrowed(element)) })
}

/// `record` broken as the `malformed` fault sends it: its element cut in
/// half (the separator before it kept), timed like the record it replaces.
pub(crate) fn corrupt(record: &Record) -> Record {
    let keep = record.raw.len() / 2;
    Record { raw: record.raw.slice(..keep.max(1).min(record.raw.len())), kind: record.kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(event: &Event<'_>) -> EventKind {
        match event.data.as_deref() {
            Some(data) if data.windows(4).any(|w| w == b"text") => EventKind::Content,
            _ => EventKind::Other,
        }
    }

    fn split(chunks: &[&[u8]]) -> Vec<Record> {
        let mut splitter = JsonArraySplitter::new(kind, 1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(Bytes::copy_from_slice(chunk), &mut out);
        }
        out.extend(splitter.finish());
        out
    }

    const STREAM: &[u8] =
        b"[{\"text\":\"a ] } [ {\\\"\"},\r\n{\"n\":[1,2]}\r\n,{\"text\":\"b\"}]\n";

    #[test]
    fn every_element_is_a_record_and_every_byte_is_kept_at_every_cut() {
        let whole = split(&[STREAM]);
        let raws: Vec<&[u8]> = whole.iter().map(|r| &r.raw[..]).collect();
        assert_eq!(
            raws,
            [
                &b"[{\"text\":\"a ] } [ {\\\"\"}"[..],
                b",\r\n{\"n\":[1,2]}",
                b"\r\n,{\"text\":\"b\"}",
                b"]",
                b"\n",
            ]
        );
        let kinds: Vec<EventKind> = whole.iter().map(|r| r.kind).collect();
        use EventKind::{Content, Other};
        assert_eq!(kinds, [Content, Other, Content, Other, Other]);
        for cut in 0..STREAM.len() {
            let (a, b) = STREAM.split_at(cut);
            let records = split(&[a, b]);
            let joined: Vec<u8> = records.iter().flat_map(|r| r.raw.iter().copied()).collect();
            assert_eq!(joined, STREAM, "cut at {cut}");
            let kinds: Vec<EventKind> = records.iter().map(|r| r.kind).collect();
            assert_eq!(&kinds[..3], [Content, Other, Content], "cut at {cut}");
        }
    }

    #[test]
    fn an_element_past_the_bound_passes_through_unclassified() {
        let mut splitter = JsonArraySplitter::new(kind, 8);
        let mut out = Vec::new();
        splitter.push(Bytes::from_static(b"[{\"text\":\"long long"), &mut out);
        splitter.push(Bytes::from_static(b" long\"},{\"text\":\"b\"}]"), &mut out);
        let joined: Vec<u8> = out.iter().flat_map(|r| r.raw.iter().copied()).collect();
        assert_eq!(joined, b"[{\"text\":\"long long long\"},{\"text\":\"b\"}]");
        let kinds: Vec<EventKind> = out.iter().map(|r| r.kind).collect();
        use EventKind::{Content, Other};
        assert_eq!(kinds, [Other, Other, Content, Other], "the long one unclassified, then on");
    }
}
