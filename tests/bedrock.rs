//! Amazon Bedrock over real sockets on the paused clock: the Converse mock's
//! event stream, and the proxy pacing and faulting a Bedrock upstream's
//! frames, passing the ones it does not touch byte for byte.

#![allow(clippy::unwrap_used, reason = "a test panics on what it does not expect")]

mod support;

use std::time::Duration;

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::HeaderValue;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{Received, ms, send, start};

const QUICK: &str = "error_rate = 0\nseed = 5\ntokens_per_response = 4\n";
const NO_DELAYS: &str =
    "first_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n";
const STREAM: &str = "/model/anthropic.claude-x-v1:0/converse-stream";

fn ask(path: &str) -> Request<Full<Bytes>> {
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Each frame's type (`:event-type`, or `:exception-type`), its payload and
/// when its last byte arrived.
fn frames(received: &Received) -> Vec<(String, Value, Duration)> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for (chunk, at) in &received.chunks {
        pending.extend_from_slice(chunk);
        while pending.len() >= 4 {
            let total = u32::from_be_bytes(pending[..4].try_into().unwrap()) as usize;
            if pending.len() < total {
                break;
            }
            let frame: Vec<u8> = pending.drain(..total).collect();
            let message = read_message_from(&frame[..]).unwrap();
            let name = message
                .headers()
                .iter()
                .find(|h| matches!(h.name().as_str(), ":event-type" | ":exception-type"))
                .map(|h| match h.value() {
                    HeaderValue::String(s) => s.as_str().to_string(),
                    _ => String::new(),
                })
                .unwrap();
            let payload = serde_json::from_slice(message.payload()).unwrap_or(Value::Null);
            out.push((name, payload, *at));
        }
    }
    assert!(pending.is_empty(), "{} bytes of a frame left", pending.len());
    out
}

#[tokio::test(start_paused = true)]
async fn the_mock_streams_frames_on_schedule() {
    let sluice = start(QUICK).await;
    let received = send(sluice.addr, ask(STREAM)).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.headers["content-type"], "application/vnd.amazon.eventstream");
    let frames = frames(&received);
    let deltas: Vec<Duration> =
        frames.iter().filter(|(n, ..)| n == "contentBlockDelta").map(|(.., at)| *at).collect();
    assert_eq!(deltas, [100, 120, 140, 160].map(ms), "100 ms, then 20 ms a token");
    let names: Vec<&str> = frames.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(names[names.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
}

/// The proxy in front of a Bedrock upstream (the mock, with no delays):
/// paced to the profile, yet every byte as the upstream sent it; with no
/// delays, the same bytes.
#[tokio::test(start_paused = true)]
async fn the_proxy_paces_a_bedrock_stream_and_keeps_every_byte() {
    let direct = start(&format!("{QUICK}{NO_DELAYS}")).await;
    let expected = send(direct.addr, ask(STREAM)).await.body();
    let upstream = start(&format!("{QUICK}{NO_DELAYS}")).await;
    let url = format!("http://{}", upstream.addr);
    let paced = start(&support::proxy_config(&url, "error_rate = 0\n", "")).await;
    let received = send(paced.addr, ask(STREAM)).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.body(), expected, "paced, yet every byte as sent");
    let deltas: Vec<Duration> = frames(&received)
        .iter()
        .filter(|(n, ..)| n == "contentBlockDelta")
        .map(|(.., at)| *at)
        .collect();
    assert_eq!(deltas, [100, 120, 140, 160].map(ms));
}

/// Each stream fault through the proxy, in Bedrock's form.
#[tokio::test(start_paused = true)]
async fn each_stream_fault_in_a_proxied_bedrock_stream() {
    let upstream = start(&format!("{QUICK}{NO_DELAYS}")).await;
    let url = format!("http://{}", upstream.addr);
    for fault in ["stream_error", "stop", "truncate", "malformed"] {
        let knobs = format!("error_rate = 1.0\n[[faults]]\nkind = \"{fault}\"\nafter_tokens = 2\n");
        let proxy = start(&support::proxy_config(&url, &knobs, "")).await;
        let received = send(proxy.addr, ask(STREAM)).await;
        if fault == "malformed" {
            // A whole frame, CRCs right, its JSON cut: the rest goes on.
            let body = received.body();
            let mut at = 0;
            let mut broken = 0;
            while at + 4 <= body.len() {
                let total = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
                let message = read_message_from(&body[at..at + total]).unwrap();
                broken += usize::from(serde_json::from_slice::<Value>(message.payload()).is_err());
                at += total;
            }
            assert_eq!((at, broken), (body.len(), 1), "{fault}");
            continue;
        }
        let frames = frames(&received);
        let names: Vec<&str> = frames.iter().map(|(n, ..)| n.as_str()).collect();
        let deltas = names.iter().filter(|n| **n == "contentBlockDelta").count();
        assert_eq!(deltas, 2, "{fault}: {names:?}");
        match fault {
            "stream_error" => {
                assert_eq!(names.last(), Some(&"serviceUnavailableException"));
                let (.., payload, _) = frames.last().unwrap();
                assert_eq!(payload["message"], "Bedrock is unable to process your request.");
            }
            "stop" => {
                assert_eq!(
                    names[names.len() - 3..],
                    ["contentBlockStop", "messageStop", "metadata"]
                );
                assert_eq!(frames[frames.len() - 2].1["stopReason"], "content_filtered");
            }
            _ => assert_eq!(names.last(), Some(&"contentBlockDelta"), "{fault}: cut after"),
        }
    }
}

/// An injected HTTP fault before the stream: Bedrock's status, its
/// `x-amzn-ErrorType` and `{"message"}`.
#[tokio::test(start_paused = true)]
async fn an_injected_error_names_its_exception() {
    let sluice = start(
        &format!("{QUICK}{NO_DELAYS}[[faults]]\nkind = \"http\"\nstatus = 529\n")
            .replace("error_rate = 0\n", "error_rate = 1.0\n"),
    )
    .await;
    let refused = send(sluice.addr, ask(STREAM)).await;
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.headers["x-amzn-errortype"],
        "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    );
    assert_eq!(refused.json(), json!({"message": "Bedrock is unable to process your request."}));
    assert!(refused.headers.contains_key("x-amzn-requestid"));
}

/// An upstream whose reads cut frames anywhere (7 bytes a chunk, and 1):
/// paced, every frame still reaches the client byte for byte.
#[tokio::test(start_paused = true)]
async fn awkward_chunking_across_frames_keeps_every_byte() {
    let direct = start(&format!("{QUICK}{NO_DELAYS}")).await;
    let stream = send(direct.addr, ask(STREAM)).await.body();
    for size in [7, 1] {
        let upstream = support::upstreams::event_stream_upstream(&stream, size).await;
        let proxy = start(&support::proxy_config(&upstream.url(), "error_rate = 0\n", "")).await;
        let received = send(proxy.addr, ask(STREAM)).await;
        assert_eq!(received.body(), stream, "{size} bytes a read");
        let deltas: Vec<Duration> = frames(&received)
            .iter()
            .filter(|(n, ..)| n == "contentBlockDelta")
            .map(|(.., at)| *at)
            .collect();
        assert_eq!(deltas, [100, 120, 140, 160].map(ms), "{size} bytes a read");
    }
}
