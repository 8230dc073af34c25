//! [`SseSplitter`]: cuts an upstream SSE byte stream into [`Record`]s while
//! keeping every byte, so that records passed on unchanged re-join into
//! exactly the bytes the upstream sent, whatever its chunking. Sans-io: bytes
//! in, records out.
//!
//! WHATWG "event stream interpretation": lines end with CRLF, a lone LF or a
//! lone CR, mixed freely; a blank line dispatches the event. A record is cut
//! right after the line end of a blank line, its CRLF whole (Google writes
//! `\r\n\r\n`). A CRLF may be split across two reads: a record that ends
//! with a CR at the end of a read goes on at once, and when the LF comes it
//! is a record of its own ([`EventKind::Other`]), so that a fault that
//! replaces or drops the next event still sends it: the bytes stay the
//! upstream's up to the fault.
//!
//! Memory is bounded: an event that grows past `max_event` bytes is passed on
//! as it arrives, unclassified ([`EventKind::Other`]), until its blank line.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use memchr::memchr2;

use crate::framing::{EventKind, Record};

/// Splits bytes into records; `classify` names each complete event.
#[derive(Debug)]
pub(crate) struct SseSplitter {
    /// Bytes of the open record, all scanned.
    buf: BytesMut,
    /// Length of the current line so far; 0 at a line start.
    line_len: usize,
    /// The last byte scanned was a CR: an LF right after it belongs to it.
    pending_cr: bool,
    /// That CR ended the last record (it was the last byte of a read).
    cr_closed_record: bool,
    /// The open event outgrew `max_event` and is being passed through.
    oversized: bool,
    /// Each read becomes one record, cut at its last event boundary
    /// ([`Self::pass_through_after_first_text`]).
    whole_reads: bool,
    /// Switch to whole reads after the first visible event.
    after_first_text: bool,
    max_event: usize,
    classify: fn(&Event<'_>) -> EventKind,
}

impl SseSplitter {
    /// A splitter that classifies events with `classify` and buffers at most
    /// about `max_event` bytes of one event.
    pub(crate) fn new(classify: fn(&Event<'_>) -> EventKind, max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            line_len: 0,
            pending_cr: false,
            cr_closed_record: false,
            oversized: false,
            whole_reads: false,
            after_first_text: false,
            max_event: max_event.max(1),
            classify,
        }
    }

    /// After the first visible event (text or a tool call), cuts each read
    /// at its last event boundary instead of at every one: one unclassified
    /// record a read (or none), so the rest of a stream that no longer needs
    /// its events read passes through at the cost of finding a read's last
    /// blank line, from its end (`handler::proxy`). The read that holds that event is cut so too,
    /// after it: an upstream that sends a whole reply in one read has all
    /// but its first events passed through unread. Records still end on
    /// event boundaries, so a farewell event appended after one is whole.
    pub(crate) fn pass_through_after_first_text(&mut self) {
        self.after_first_text = true;
    }

    /// Takes the next chunk; appends every record it completes to `out`.
    ///
    /// A record that lies whole inside `chunk` is a slice of it, not a copy;
    /// only an event cut across chunks is gathered in the splitter's buffer.
    pub(crate) fn push(&mut self, chunk: Bytes, out: &mut impl Extend<Record>) {
        // `chunk[start..]` is not yet in a record nor in `buf`.
        let mut start = 0;
        let mut at = 0;
        while !self.whole_reads {
            let Some(cut) = self.next_cut(&chunk, &mut at) else { break };
            match cut {
                Cut::CrlfRest => {
                    // The rest of the CRLF that closed the last record.
                    let raw = chunk.slice(start..at);
                    out.extend(Some(Record { raw, kind: EventKind::Other }));
                }
                Cut::Event => {
                    let raw = self.bytes_to(&chunk, start, at);
                    let record = self.record(raw);
                    if self.after_first_text && record.kind.is_visible() {
                        self.whole_reads = true;
                    }
                    out.extend(Some(record));
                    self.oversized = false;
                }
            }
            start = at;
        }
        if self.whole_reads {
            // From here on: one record, to the read's last boundary.
            if let Some(cut) = self.last_cut(chunk.get(start..).unwrap_or_default()) {
                let cut = start + cut;
                let raw = self.bytes_to(&chunk, start, cut);
                out.extend(Some(Record { raw, kind: EventKind::Other }));
                self.oversized = false;
                start = cut;
            }
        } else if at < chunk.len() {
            self.line_len += chunk.len() - at;
            self.pending_cr = false;
            self.cr_closed_record = false;
        }
        self.buf.extend_from_slice(&chunk[start..]);
        if !self.buf.is_empty() && (self.oversized || self.buf.len() > self.max_event) {
            self.oversized = true;
            let raw = self.buf.split().freeze();
            out.extend(Some(self.record(raw)));
        }
    }

    /// The bytes of a record ending at `chunk[end]`: what the buffer holds
    /// of it, then `chunk[start..end]`; a slice of `chunk`, not a copy, when
    /// the buffer is empty.
    fn bytes_to(&mut self, chunk: &Bytes, start: usize, end: usize) -> Bytes {
        if self.buf.is_empty() {
            chunk.slice(start..end)
        } else {
            self.buf.extend_from_slice(&chunk[start..end]);
            self.buf.split().freeze()
        }
    }

    /// Where the last record of `read` ends (after its last blank line), found
    /// from its end: [`Self::next_cut`] would find the same place, line by
    /// line from the start. Leaves the line state as at the end of `read`.
    fn last_cut(&mut self, read: &[u8]) -> Option<usize> {
        let last = *read.last()?;
        // The read starts with the LF of a CRLF whose CR ended the last one.
        let continues = self.pending_cr && read.first() == Some(&b'\n');
        let mut cut = None;
        let mut end = read.len();
        while let Some(at) = memchr::memrchr2(b'\r', b'\n', read.get(..end).unwrap_or_default()) {
            // The line end that finishes at `at`: a CRLF, or a lone CR or LF.
            let crlf = read.get(at) == Some(&b'\n') && at > 0 && read.get(at - 1) == Some(&b'\r');
            let begins = if crlf { at - 1 } else { at };
            if begins == 0 && continues {
                // That CRLF's LF: a record of its own if its CR closed one.
                if self.cr_closed_record {
                    cut = Some(1);
                }
                break;
            }
            // A blank line: its line end follows another, or opens the read
            // on an empty line.
            let blank = match begins.checked_sub(1) {
                Some(before) => matches!(read.get(before), Some(b'\r' | b'\n')),
                None => self.line_len == 0,
            };
            if blank {
                // A lone CR whose LF is the next byte ends with it (the CRLF
                // case above), so the cut is right after this line end.
                cut = Some(at + 1);
                break;
            }
            end = begins;
        }
        self.pending_cr = last == b'\r';
        self.cr_closed_record = self.pending_cr && cut == Some(read.len());
        self.line_len = usize::from(!matches!(last, b'\r' | b'\n'));
        cut
    }

    /// Scans `chunk` from `at` to the next place a record ends, and leaves
    /// `at` just after it; `None` when the chunk has no more.
    fn next_cut(&mut self, chunk: &[u8], at: &mut usize) -> Option<Cut> {
        while let Some(offset) = memchr2(b'\r', b'\n', chunk.get(*at..).unwrap_or_default()) {
            let end = *at + offset;
            if end > *at {
                self.line_len += end - *at;
                self.pending_cr = false;
                self.cr_closed_record = false;
            }
            let byte = chunk.get(end).copied();
            *at = end + 1;
            if byte == Some(b'\n') && self.pending_cr {
                self.pending_cr = false; // the LF of a CRLF: the line already ended
                if std::mem::take(&mut self.cr_closed_record) {
                    return Some(Cut::CrlfRest);
                }
                continue;
            }
            self.cr_closed_record = false;
            self.pending_cr = byte == Some(b'\r');
            let blank = self.line_len == 0;
            self.line_len = 0;
            if blank {
                if self.pending_cr && chunk.get(*at) == Some(&b'\n') {
                    // The blank line's CRLF is whole in this read: the record keeps it.
                    *at += 1;
                    self.pending_cr = false;
                }
                self.cr_closed_record = self.pending_cr;
                return Some(Cut::Event);
            }
        }
        None
    }

    /// The stream ended: whatever is left, an event without its blank line,
    /// as one unclassified record (the SDKs drop such an event; passing it
    /// on keeps the bytes identical).
    pub(crate) fn finish(&mut self) -> Option<Record> {
        if self.buf.is_empty() {
            return None;
        }
        Some(Record { raw: self.buf.split().freeze(), kind: EventKind::Other })
    }

    /// `raw` as a record; an event that is being passed through for its
    /// size stays unclassified.
    fn record(&self, raw: Bytes) -> Record {
        let kind =
            if self.oversized { EventKind::Other } else { (self.classify)(&Event::parse(&raw)) };
        Record { raw, kind }
    }
}

/// Where [`SseSplitter::next_cut`] found a record's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// After an event's blank line.
    Event,
    /// After the LF of a CRLF whose CR ended the last read's last record.
    CrlfRest,
}

/// The fields of one event that matter for classification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Event<'a> {
    /// The `event:` field, if any.
    pub(crate) name: Option<&'a str>,
    /// The `data:` lines joined with `\n`; `None` when there was no data line
    /// (the spec then dispatches nothing).
    pub(crate) data: Option<Cow<'a, [u8]>>,
}

impl<'a> Event<'a> {
    /// Parses a record's fields as the spec says: comments skipped, the field
    /// name before the first colon, one leading space stripped from the value,
    /// a line without a colon is a field with an empty value.
    pub(crate) fn parse(raw: &'a [u8]) -> Self {
        let raw = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
        let mut event = Event::default();
        let mut rest = raw;
        while !rest.is_empty() {
            let end = memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
            let line = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            if line.is_empty() || line[0] == b':' {
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match field {
                b"event" => {
                    if let Ok(name) = std::str::from_utf8(value) {
                        event.name = Some(name);
                    }
                }
                // Borrowed in the usual case of one data line; joined only
                // when there are more. Left as bytes: the JSON parser checks
                // what it reads, and the fast paths need not.
                b"data" => match &mut event.data {
                    None => event.data = Some(Cow::Borrowed(value)),
                    Some(data) => {
                        let joined = data.to_mut();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                    }
                },
                _ => {}
            }
        }
        event
    }
}

#[cfg(test)]
mod tests;
