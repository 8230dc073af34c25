//! Thinking before the answer, over real sockets on the paused clock: the
//! mock's thinking blocks and reasoning items, and the proxy's pacing of an
//! upstream's thinking, with time to first text = first-token delay +
//! thinking tokens × the thinking interval, exactly (docs/timing.md,
//! "Thinking").

#![allow(clippy::unwrap_used, reason = "a test panics on what it does not expect")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{messages, ms, send, start, start_with_admin};

/// 100 ms to the first token, a text token every 20 ms, 5 text tokens,
/// 30 thinking tokens at 5 ms each.
const THINKING: &str = "error_rate = 0\nseed = 1\ntokens_per_response = 5\n\
    [thinking]\ntokens = 30\ntoken_interval = \"5ms\"\n";

fn thinking_request(stream: bool) -> Value {
    json!({"model": "claude-mock-1", "max_tokens": 4096, "stream": stream,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

/// (delta type, arrival) of each content_block_delta.
fn deltas(events: &[(String, Value, Duration)]) -> Vec<(String, Duration)> {
    events
        .iter()
        .filter(|(name, ..)| name == "content_block_delta")
        .map(|(_, data, at)| (data["delta"]["type"].as_str().unwrap().to_string(), *at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_text_comes_after_the_first_token_delay_and_the_thinking_exactly() {
    let sluice = start(THINKING).await;
    let received = send(sluice.addr, messages(&thinking_request(true))).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.head_at, ms(100), "the head goes with the first thinking token");
    let events = received.events();
    let deltas = deltas(&events);
    let thinking: Vec<Duration> =
        deltas.iter().filter(|(kind, _)| kind == "thinking_delta").map(|(_, at)| *at).collect();
    let expected: Vec<Duration> = (0..30).map(|k| ms(100 + 5 * k)).collect();
    assert_eq!(thinking, expected, "each thinking token 5 ms after the one before");
    let signature = deltas.iter().position(|(kind, _)| kind == "signature_delta").unwrap();
    assert_eq!(signature, 30, "one signature, after the last thinking token");
    let text: Vec<Duration> =
        deltas.iter().filter(|(kind, _)| kind == "text_delta").map(|(_, at)| *at).collect();
    // 100 ms + 30 × 5 ms, then the text's own 20 ms.
    assert_eq!(text, [ms(250), ms(270), ms(290), ms(310), ms(330)]);
    let usage = &events[events.len() - 2].1["usage"];
    assert_eq!(usage["output_tokens"], 35, "thinking is output");
}

#[tokio::test(start_paused = true)]
async fn with_the_delay_before_text_thinking_streams_from_the_start() {
    let config = format!("{THINKING}first_token_delay_before = \"text\"\n");
    let sluice = start(&config).await;
    let received = send(sluice.addr, messages(&thinking_request(true))).await;
    assert_eq!(received.head_at, ms(0), "thinking starts at once");
    let deltas = deltas(&received.events());
    assert_eq!(deltas[0], ("thinking_delta".to_string(), ms(0)));
    assert_eq!(deltas[29], ("thinking_delta".to_string(), ms(145)));
    let first_text = deltas.iter().find(|(kind, _)| kind == "text_delta").unwrap();
    assert_eq!(first_text.1, ms(250), "the same time to first text: 30 × 5 ms + 100 ms");
}

#[tokio::test(start_paused = true)]
async fn a_whole_message_with_thinking_takes_as_long_as_its_stream() {
    let sluice = start(THINKING).await;
    let received = send(sluice.addr, messages(&thinking_request(false))).await;
    assert_eq!(received.status, 200);
    // The stream's last text token: 250 + 4 × 20 ms.
    assert_eq!(received.head_at, ms(330));
    let message = received.json();
    assert_eq!(message["content"][0]["type"], "thinking");
    assert!(message["content"][0]["signature"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(message["content"][1]["type"], "text");
}

#[tokio::test(start_paused = true)]
async fn a_chat_reasoning_model_thinks_before_its_first_chunk() {
    let sluice = start(THINKING).await;
    let body = json!({"model": "gpt-mock", "stream": true, "reasoning_effort": "medium",
        "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let received = send(sluice.addr, request).await;
    assert_eq!(received.status, 200);
    // medium: half of 30 thinking tokens, unseen, at 5 ms each.
    assert_eq!(received.head_at, ms(100 + 15 * 5), "the head waits for the first visible token");
}

#[tokio::test(start_paused = true)]
async fn the_metrics_tell_the_first_text_from_the_first_token() {
    let sluice = start_with_admin(THINKING).await;
    let _ = send(sluice.api, messages(&thinking_request(true))).await;
    let first_token = support::metric(sluice.admin, "sluice_first_token_delay_seconds_sum").await;
    let first_text = support::metric(sluice.admin, "sluice_time_to_first_text_seconds_sum").await;
    assert!((first_token - 0.100).abs() < 1e-9, "{first_token}");
    assert!((first_text - 0.250).abs() < 1e-9, "{first_text}");
}

#[tokio::test(start_paused = true)]
async fn a_proxied_thinking_stream_is_paced_by_the_thinking_interval() {
    // The upstream: sluice's own mock, at once.
    let upstream = start(
        "error_rate = 0\nseed = 1\ntokens_per_response = 3\nfirst_token_delay = \"0ms\"\n\
         token_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n[thinking]\ntokens = 4\n",
    )
    .await;
    let url = format!("http://{}", upstream.addr);
    let proxy = start(&support::proxy_config(
        &url,
        "error_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\n\
         [thinking]\ntoken_interval = \"5ms\"",
        "",
    ))
    .await;
    let received = send(proxy.addr, messages(&thinking_request(true))).await;
    let deltas = deltas(&received.events());
    let at = |kind: &str| -> Vec<Duration> {
        deltas.iter().filter(|(k, _)| k == kind).map(|(_, at)| *at).collect()
    };
    assert_eq!(at("thinking_delta"), [ms(100), ms(105), ms(110), ms(115)]);
    assert_eq!(at("text_delta"), [ms(120), ms(140), ms(160)], "100 + 4 × 5 ms, then 20 ms");
}

#[tokio::test(start_paused = true)]
async fn a_fault_after_n_tokens_counts_thinking_tokens() {
    let config = format!(
        "{THINKING}[[faults]]\nkind = \"stream_error\"\nafter_tokens = 10\nfirst_requests = 1\n\
         [[faults]]\nkind = \"truncate\"\nafter_tokens = 32\nfirst_requests = 2\n"
    );
    let sluice = start(&config).await;
    let in_thinking = send(sluice.addr, messages(&thinking_request(true))).await;
    let events = in_thinking.events();
    let thinking = deltas(&events);
    assert_eq!(thinking.len(), 10, "ten thinking tokens, then the error");
    assert!(thinking.iter().all(|(kind, _)| kind == "thinking_delta"));
    let (name, _, at) = events.last().unwrap();
    assert_eq!((name.as_str(), *at), ("error", ms(150)), "at the 11th thinking token's time");
    let in_text = send(sluice.addr, messages(&thinking_request(true))).await;
    let deltas = deltas(&in_text.events());
    let text = deltas.iter().filter(|(kind, _)| kind == "text_delta").count();
    assert_eq!(text, 2, "30 thinking tokens and 2 of text, then the cut");
}

#[tokio::test(start_paused = true)]
async fn with_the_head_held_for_the_first_text_time_to_first_byte_is_time_to_first_text() {
    let sluice = start(&format!("head = \"first_text\"\n{THINKING}")).await;
    let received = send(sluice.addr, messages(&thinking_request(true))).await;
    assert_eq!(received.head_at, ms(250), "what k6 sees as time to first byte");
    let deltas = deltas(&received.events());
    assert!(deltas[..30].iter().all(|(kind, at)| kind == "thinking_delta" && *at == ms(250)));
    let text: Vec<Duration> =
        deltas.iter().filter(|(kind, _)| kind == "text_delta").map(|(_, at)| *at).collect();
    assert_eq!(text, [ms(250), ms(270), ms(290), ms(310), ms(330)]);
    // Without thinking it is the first token, as with "first_token".
    let plain = json!({"model": "m", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(send(sluice.addr, messages(&plain)).await.head_at, ms(100));
}
