//! The shaper on tokio's paused clock: exact release times, and each stream
//! fault firing exactly where it should.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};

use super::*;
use crate::framing::EventKind::{self, Content, Other, ToolStart};
use crate::shape::request_rng;
use crate::shape::{Overload, Timing};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn record(kind: EventKind, text: &'static str) -> Result<Record, Infallible> {
    Ok(Record { raw: Bytes::from_static(text.as_bytes()), kind })
}

fn pacer() -> Pacer {
    Pacer::new(timing(Overload::CatchUp), request_rng(0, 0))
}

fn timing(overload: Overload) -> Timing {
    Timing {
        first_token_delay: ms(100).into(),
        token_interval: ms(20).into(),
        tool_call_delay: ms(500).into(),
        overload,
        ..Timing::default()
    }
}

/// (bytes or "ERR", time) of each item, and the time the stream ended.
async fn run<S>(shaper: Shaper<S>, t0: Instant) -> (Vec<(String, Duration)>, Duration)
where
    S: Stream<Item = Result<Record, Infallible>>,
{
    let items = shaper
        .map(|item| {
            let text = match item {
                Ok(record) => String::from_utf8(record.raw.to_vec()).unwrap(),
                Err(error) => format!("ERR {error}"),
            };
            (text, t0.elapsed())
        })
        .collect()
        .await;
    (items, t0.elapsed())
}

fn expected(rows: &[(&str, u64)]) -> Vec<(String, Duration)> {
    rows.iter().map(|&(text, at)| (text.to_string(), ms(at))).collect()
}

fn text_stream() -> impl Stream<Item = Result<Record, Infallible>> {
    stream::iter([
        record(Other, "start"),
        record(Content, "a"),
        record(Other, "ping"),
        record(Content, "b"),
        record(Content, "c"),
        record(Other, "stop"),
    ])
}

fn shaped(
    fault: Option<StreamFault>,
    t0: Instant,
) -> Shaper<impl Stream<Item = Result<Record, Infallible>>> {
    Shaper::new(text_stream(), pacer(), Arrival::AtRequestStart(t0)).with_fault(fault)
}

fn after(after_tokens: u32, action: StreamAction) -> Option<StreamFault> {
    Some(StreamFault { after_tokens, action })
}

#[tokio::test(start_paused = true)]
async fn an_instant_source_is_released_on_the_exact_schedule() {
    let t0 = Instant::now();
    let (items, _) = run(shaped(None, t0), t0).await;
    let rows = [("start", 0), ("a", 100), ("ping", 100), ("b", 120), ("c", 140), ("stop", 140)];
    assert_eq!(items, expected(&rows));
}

#[tokio::test(start_paused = true)]
async fn a_tool_call_waits_first_token_plus_tool_call_delay() {
    let t0 = Instant::now();
    let source = stream::iter([
        record(Other, "start"),
        record(ToolStart, "tool"),
        record(Content, "{\"a\""),
        record(Content, ":1}"),
        record(Other, "stop"),
    ]);
    let (items, _) = run(Shaper::new(source, pacer(), Arrival::AtRequestStart(t0)), t0).await;
    let rows = [("start", 0), ("tool", 600), ("{\"a\"", 620), (":1}", 640), ("stop", 640)];
    assert_eq!(items, expected(&rows));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_started_earlier_is_not_delayed_twice() {
    // The handler took 30 ms (say, reading the body) before the shaper ran:
    // the first token still goes out 100 ms after the request arrived.
    let t0 = Instant::now();
    tokio::time::advance(ms(30)).await;
    let source = stream::iter([record(Content, "a"), record(Content, "b")]);
    let (items, _) = run(Shaper::new(source, pacer(), Arrival::AtRequestStart(t0)), t0).await;
    assert_eq!(items, expected(&[("a", 100), ("b", 120)]));
}

#[tokio::test(start_paused = true)]
async fn a_live_source_adds_the_delay_to_its_own_timing() {
    let t0 = Instant::now();
    // The source yields a token at 50 ms and one at 55 ms.
    let source = stream::iter([(50, "a"), (5, "b")]).then(|(gap, text)| async move {
        tokio::time::sleep(ms(gap)).await;
        record(Content, text)
    });
    let (items, _) = run(Shaper::new(source, pacer(), Arrival::WhenReceived), t0).await;
    assert_eq!(items, expected(&[("a", 150), ("b", 170)]));
}

#[tokio::test(start_paused = true)]
async fn errors_from_the_source_pass_through_and_end_the_stream() {
    let source = stream::iter([
        Ok(Record { raw: Bytes::from_static(b"a"), kind: Content }),
        Err("upstream reset"),
        Ok(Record { raw: Bytes::from_static(b"b"), kind: Content }),
    ]);
    let t0 = Instant::now();
    let items: Vec<_> = Shaper::new(source, pacer(), Arrival::AtRequestStart(t0)).collect().await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].as_ref().unwrap_err().to_string(), "upstream reset");
    assert_eq!(t0.elapsed(), ms(100));
}

fn error_event() -> StreamAction {
    StreamAction::EndWith(Record { raw: Bytes::from_static(b"ERROR-EVENT"), kind: Other })
}

#[tokio::test(start_paused = true)]
async fn a_stream_error_replaces_the_next_token_and_ends_the_stream() {
    let t0 = Instant::now();
    let (items, ended) = run(shaped(after(1, error_event()), t0), t0).await;
    let rows = [("start", 0), ("a", 100), ("ping", 100), ("ERROR-EVENT", 120)];
    assert_eq!(items, expected(&rows));
    assert_eq!(ended, ms(120));
}

#[tokio::test(start_paused = true)]
async fn a_reset_fails_the_body_where_the_next_token_was_due() {
    let t0 = Instant::now();
    let (items, _) = run(shaped(after(2, StreamAction::Reset), t0), t0).await;
    let rows = [
        ("start", 0),
        ("a", 100),
        ("ping", 100),
        ("b", 120),
        ("ERR connection reset by sluice (injected fault)", 140),
    ];
    assert_eq!(items, expected(&rows));
}

#[tokio::test(start_paused = true)]
async fn a_truncate_ends_cleanly_without_the_rest() {
    let t0 = Instant::now();
    let (items, ended) = run(shaped(after(0, StreamAction::Truncate), t0), t0).await;
    assert_eq!(items, expected(&[("start", 0)]));
    assert_eq!(ended, ms(100));
}

#[tokio::test(start_paused = true)]
async fn a_timed_stall_sends_nothing_more_then_ends() {
    let t0 = Instant::now();
    let (items, ended) = run(shaped(after(1, StreamAction::Stall(Some(ms(5000)))), t0), t0).await;
    assert_eq!(items, expected(&[("start", 0), ("a", 100), ("ping", 100)]));
    assert_eq!(ended, ms(120 + 5000));
}

#[tokio::test(start_paused = true)]
async fn an_open_stall_never_ends_by_itself() {
    let t0 = Instant::now();
    let mut shaper = Box::pin(shaped(after(1, StreamAction::Stall(None)), t0));
    for _ in 0..3 {
        shaper.next().await;
    }
    let next = tokio::time::timeout(Duration::from_secs(3600), shaper.next()).await;
    assert!(next.is_err(), "still stalled an hour later");
}

#[tokio::test(start_paused = true)]
async fn a_malformed_token_goes_out_corrupted_and_the_stream_goes_on() {
    let t0 = Instant::now();
    let source = stream::iter([
        record(
            Content,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0}\n\n",
        ),
        record(
            Content,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0}\n\n",
        ),
        record(Other, "stop"),
    ]);
    let shaper = Shaper::new(source, pacer(), Arrival::AtRequestStart(t0))
        .with_fault(after(1, StreamAction::Malformed(crate::framing::Framing::Sse)));
    let (items, _) = run(shaper, t0).await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].0, "event: content_block_delta\ndata: {\"type\":\"content_bl\n\n");
    assert_eq!(items[1].1, ms(120));
    assert_eq!(items[2], ("stop".to_string(), ms(120)));
}

#[tokio::test(start_paused = true)]
async fn a_fault_after_more_tokens_than_the_stream_has_fires_at_its_end() {
    let t0 = Instant::now();
    let (items, _) = run(shaped(after(10, error_event()), t0), t0).await;
    assert_eq!(items.last().unwrap(), &("ERROR-EVENT".to_string(), ms(140)));
    assert_eq!(items.len(), 7);
}

#[tokio::test(start_paused = true)]
async fn lateness_is_zero_on_schedule_and_measured_against_it_when_the_source_is_late() {
    use std::sync::{Arc, Mutex};

    let t0 = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observe = |seen: &Arc<Mutex<Vec<Duration>>>| -> LatenessObserver {
        let seen = Arc::clone(seen);
        Box::new(move |late| seen.lock().unwrap().push(late))
    };
    let on_time = shaped(None, t0).with_lateness(observe(&seen));
    run(on_time, t0).await;
    assert_eq!(*seen.lock().unwrap(), [ms(0), ms(0), ms(0)], "three tokens, each exact");

    // A source that only has its tokens at 150 ms: the first was due at 100
    // ms, the second at 120; both go out at 150.
    seen.lock().unwrap().clear();
    let t0 = Instant::now();
    let late_source = stream::once(async { tokio::time::sleep(ms(150)).await })
        .flat_map(|()| stream::iter([record(Content, "a"), record(Content, "b")]));
    let late = Shaper::new(late_source, pacer(), Arrival::AtRequestStart(t0))
        .with_lateness(observe(&seen));
    let (items, _) = run(late, t0).await;
    assert_eq!(items, expected(&[("a", 150), ("b", 150)]));
    assert_eq!(*seen.lock().unwrap(), [ms(50), ms(30)]);
}

#[tokio::test(start_paused = true)]
async fn a_recording_is_released_at_its_offsets_and_a_fault_still_fires() {
    let t0 = Instant::now();
    let offsets = || vec![ms(0), ms(312), ms(313), ms(340), ms(900), ms(901)];
    let recorded = |fault| {
        let pacer = Pacer::new(Timing::default(), request_rng(0, 0));
        let arrival = Arrival::Recorded { start: t0, offsets: offsets().into_iter() };
        Shaper::new(text_stream(), pacer, arrival).with_fault(fault)
    };
    let (items, _) = run(recorded(None), t0).await;
    let rows = [("start", 0), ("a", 312), ("ping", 313), ("b", 340), ("c", 900), ("stop", 901)];
    assert_eq!(items, expected(&rows));

    let t0 = Instant::now();
    let pacer = Pacer::new(Timing::default(), request_rng(0, 0));
    let arrival = Arrival::Recorded { start: t0, offsets: offsets().into_iter() };
    let shaper =
        Shaper::new(text_stream(), pacer, arrival).with_fault(after(2, StreamAction::Truncate));
    let (items, end) = run(shaper, t0).await;
    assert_eq!(items, expected(&[("start", 0), ("a", 312), ("ping", 313), ("b", 340)]));
    // The truncation happens where the third token would have gone out.
    assert_eq!(end, ms(900));
}

/// Releases `count` tokens of an instant source, the consumer reading token
/// `stall_after` and then nothing for `stall`; returns when each came.
async fn stalled(
    overload: Overload,
    count: usize,
    stall_after: usize,
    stall: Duration,
) -> Vec<Duration> {
    let t0 = Instant::now();
    let source = stream::iter((0..count).map(|_| record(Content, "t")));
    let mut shaper = Box::pin(Shaper::new(
        source,
        Pacer::new(timing(overload), request_rng(0, 0)),
        Arrival::AtRequestStart(t0),
    ));
    let mut at = Vec::new();
    while let Some(item) = shaper.next().await {
        item.unwrap();
        at.push(t0.elapsed());
        if at.len() == stall_after {
            tokio::time::sleep(stall).await;
        }
    }
    at
}

#[tokio::test(start_paused = true)]
async fn catch_up_keeps_the_schedule_after_a_stall_and_bursts_to_it() {
    // The consumer (a slow client, a busy machine) holds the stream 70 ms
    // after the first token: the tokens due meanwhile go out at once, then
    // the schedule goes on as configured. Total time as configured.
    let at = stalled(Overload::CatchUp, 6, 1, ms(70)).await;
    assert_eq!(at, [100, 170, 170, 170, 180, 200].map(ms));
}

#[tokio::test(start_paused = true)]
async fn stretch_keeps_every_gap_after_a_stall_and_ends_later() {
    // The same stall: every gap stays at least token_interval, counted from
    // when the previous token actually went out; the stream ends 50 ms later.
    let at = stalled(Overload::Stretch, 6, 1, ms(70)).await;
    assert_eq!(at, [100, 170, 190, 210, 230, 250].map(ms));
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|gap| *gap >= ms(20)), "{gaps:?}");
    // Without a stall, the two are the same schedule.
    assert_eq!(
        stalled(Overload::Stretch, 4, 0, ms(0)).await,
        stalled(Overload::CatchUp, 4, 0, ms(0)).await
    );
}
