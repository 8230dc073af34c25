//! The splitter keeps every byte, finds every event at every cut point, and
//! stays bounded on huge events.

use proptest::prelude::*;

use super::*;
use crate::dialect::Dialect;

/// Splits `chunks`: the records completed by a blank line, then the whole
/// output with the remainder at the end (what the client receives).
fn split_parts(chunks: &[&[u8]], max_event: usize) -> (Vec<Record>, Vec<Record>) {
    let mut splitter = SseSplitter::new(Dialect::Anthropic.classifier(), max_event);
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.push(Bytes::copy_from_slice(chunk), &mut out);
    }
    let complete = out.clone();
    out.extend(splitter.finish());
    (complete, out)
}

fn split(chunks: &[&[u8]], max_event: usize) -> Vec<Record> {
    split_parts(chunks, max_event).1
}

fn joined(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(|r| r.raw.iter().copied()).collect()
}

/// (event name, data) of every event that complete records dispatch.
fn events(records: &[Record]) -> Vec<(Option<String>, String)> {
    records
        .iter()
        .map(|r| Event::parse(&r.raw))
        .filter_map(|e| {
            e.data.map(|d| (e.name.map(str::to_owned), String::from_utf8(d.into_owned()).unwrap()))
        })
        .collect()
}

/// The events of a whole stream split in `chunks`.
fn stream_events(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
    events(&split_parts(chunks, 1 << 20).0)
}

fn ev(name: Option<&str>, data: &str) -> (Option<String>, String) {
    (name.map(str::to_owned), data.to_owned())
}

const MIXED: &[u8] = b"event: a\r\ndata: 1\r\n\r\n: keep-alive\n\ndata: x\rdata: y\r\rid: 7\nretry: 50\ndata:z\n\nevent: b\ndata\n\n";

#[test]
fn the_spec_forms_are_parsed() {
    let records = split(&[MIXED], 1 << 20);
    assert_eq!(joined(&records), MIXED);
    assert_eq!(
        events(&records),
        [ev(Some("a"), "1"), ev(None, "x\ny"), ev(None, "z"), ev(Some("b"), "")]
    );
    assert_eq!(records.len(), 5, "four events and the comment");
}

#[test]
fn field_values_lose_exactly_one_leading_space() {
    let event = Event::parse(b"event:  two\ndata:  x\ndata:y\n\n");
    assert_eq!(event.name, Some(" two"));
    assert_eq!(event.data.as_deref(), Some(&b" x\ny"[..]));
}

#[test]
fn an_event_without_data_dispatches_nothing() {
    assert_eq!(Event::parse(b"event: ping\n\n").data, None);
}

#[test]
fn a_leading_bom_is_not_part_of_the_first_field() {
    let event = Event::parse("\u{feff}event: a\ndata: 1\n\n".as_bytes());
    assert_eq!(event.name, Some("a"));
}

#[test]
fn every_cut_point_gives_the_same_events_and_bytes() {
    let whole = stream_events(&[MIXED]);
    for cut in 0..=MIXED.len() {
        let chunks: [&[u8]; 2] = [&MIXED[..cut], &MIXED[cut..]];
        assert_eq!(joined(&split(&chunks, 1 << 20)), MIXED, "cut after byte {cut}");
        assert_eq!(stream_events(&chunks), whole, "cut after byte {cut}");
    }
}

#[test]
fn one_byte_at_a_time_gives_the_same_events() {
    let chunks: Vec<&[u8]> = MIXED.chunks(1).collect();
    assert_eq!(joined(&split(&chunks, 1 << 20)), MIXED);
    assert_eq!(stream_events(&chunks), stream_events(&[MIXED]));
}

#[test]
fn records_are_classified_once_complete() {
    let stream = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n";
    let records = split(&[stream], 1 << 20);
    let kinds: Vec<EventKind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [EventKind::Content, EventKind::Other]);
}

#[test]
fn a_final_event_without_its_blank_line_is_kept_verbatim() {
    let stream = b"data: 1\n\ndata: 2\n";
    let records = split(&[stream], 1 << 20);
    assert_eq!(joined(&records), stream);
    assert_eq!(records.last().unwrap().raw.as_ref(), b"data: 2\n");
    assert_eq!(
        stream_events(&[stream]),
        [ev(None, "1")],
        "the unterminated event is not dispatched"
    );
}

#[test]
fn a_huge_event_passes_through_unclassified_with_bounded_memory() {
    let big = format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
        "x".repeat(10_000)
    );
    let stream = format!("{big}event: ping\ndata: {{}}\n\n");
    let mut splitter = SseSplitter::new(Dialect::Anthropic.classifier(), 1000);
    let mut records = Vec::new();
    for chunk in stream.as_bytes().chunks(300) {
        splitter.push(Bytes::copy_from_slice(chunk), &mut records);
        assert!(splitter.buf.len() <= 1000 + 300, "buffered {} bytes", splitter.buf.len());
    }
    records.extend(splitter.finish());
    assert_eq!(joined(&records), stream.as_bytes());
    assert!(records.len() > 3, "passed on in pieces");
    assert!(records.iter().all(|r| r.kind == EventKind::Other));
    assert_eq!(
        records.last().unwrap().raw.as_ref(),
        b"event: ping\ndata: {}\n\n",
        "the next event is whole again"
    );
}

proptest! {
    /// `last_cut`, which looks for a read's last blank line from its end,
    /// finds the cut that `next_cut` finds last from the start, and leaves
    /// the same line state, from any state the last read left.
    #[test]
    fn the_last_cut_from_the_end_is_the_last_cut_from_the_start(
        read in prop::collection::vec(prop::sample::select(b"\r\n\r\na:".to_vec()), 0..24),
        open_line in any::<bool>(),
        after_cr in any::<bool>(),
        cr_closed in any::<bool>(),
    ) {
        let mut forward = SseSplitter::new(Dialect::Anthropic.classifier(), 1 << 20);
        forward.line_len = usize::from(open_line && !after_cr);
        forward.pending_cr = after_cr;
        forward.cr_closed_record = after_cr && cr_closed;
        let mut backward = SseSplitter::new(Dialect::Anthropic.classifier(), 1 << 20);
        (backward.line_len, backward.pending_cr, backward.cr_closed_record) =
            (forward.line_len, forward.pending_cr, forward.cr_closed_record);

        let mut at = 0;
        let mut last = None;
        while forward.next_cut(&read, &mut at).is_some() {
            last = Some(at);
        }
        if at < read.len() {
            forward.line_len += read.len() - at;
            forward.pending_cr = false;
            forward.cr_closed_record = false;
        }
        prop_assert_eq!(backward.last_cut(&read), last);
        let state = |s: &SseSplitter| (s.line_len == 0, s.pending_cr, s.cr_closed_record);
        prop_assert_eq!(state(&backward), state(&forward));
    }

    #[test]
    fn any_chunking_rejoins_to_the_input_and_gives_the_same_events(
        events_text in prop::collection::vec(("[a-z_]{0,8}", "[ -~]{0,20}", 0usize..4), 0..12),
        cuts in prop::collection::vec(0usize..400, 0..12),
    ) {
        let endings = ["\n", "\r\n", "\r", "\n"];
        let mut stream = Vec::new();
        for (name, data, ending) in &events_text {
            let eol = endings[*ending];
            if !name.is_empty() {
                stream.extend_from_slice(format!("event: {name}{eol}").as_bytes());
            }
            stream.extend_from_slice(format!("data: {data}{eol}{eol}").as_bytes());
        }
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut previous = 0;
        for point in points {
            chunks.push(&stream[previous..point]);
            previous = point;
        }
        chunks.push(&stream[previous..]);
        prop_assert_eq!(joined(&split(&chunks, 1 << 20)), stream.clone());
        prop_assert_eq!(stream_events(&chunks), stream_events(&[&stream]));
    }
}

#[test]
fn whole_events_are_slices_of_their_chunk_and_only_a_cut_one_is_copied() {
    let mut splitter = SseSplitter::new(Dialect::Anthropic.classifier(), 64 * 1024);
    let chunk = Bytes::from_static(b"data: 1\n\ndata: 2\n\ndata: 3");
    let inside = |record: &Record| {
        let range = chunk.as_ptr_range();
        range.contains(&record.raw.as_ptr())
    };
    let mut records = Vec::new();
    splitter.push(chunk.clone(), &mut records);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(inside), "no copy of whole events");
    splitter.push(Bytes::from_static(b"\n\n"), &mut records);
    assert_eq!(records[2].raw, "data: 3\n\n");
    assert!(!inside(&records[2]), "the event cut across chunks is gathered");
}

#[test]
fn a_crlf_blank_line_stays_with_its_event_and_a_split_one_leaves_its_lf_alone() {
    let google = b"data: {\"a\":1}\r\n\r\ndata: {\"a\":2}\r\n\r\n";
    let raws: Vec<Bytes> = split(&[google], 1024).into_iter().map(|r| r.raw).collect();
    assert_eq!(raws, ["data: {\"a\":1}\r\n\r\n", "data: {\"a\":2}\r\n\r\n"]);
    // Cut between the blank line's CR and LF: the event goes on at once, and
    // the LF, when it comes, is a record of its own, not part of the next event.
    let cut = split(&[b"data: 1\r\n\r", b"\ndata: 2\r\n\r\n"], 1024);
    let raws: Vec<&[u8]> = cut.iter().map(|r| &r.raw[..]).collect();
    assert_eq!(raws, [&b"data: 1\r\n\r"[..], b"\n", b"data: 2\r\n\r\n"]);
    assert_eq!(cut[1].kind, EventKind::Other);
    // A lone CR ending a record with no LF after it: nothing is made of the next event's first byte.
    let lone = split(&[b"data: 1\r\r", b"data: 2\r\r"], 1024);
    let raws: Vec<&[u8]> = lone.iter().map(|r| &r.raw[..]).collect();
    assert_eq!(raws, [&b"data: 1\r\r"[..], b"data: 2\r\r"]);
}
