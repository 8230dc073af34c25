//! Gemini over real sockets on the paused clock: the mock's stream in both
//! framings (server-sent events with `alt=sse`, a JSON array without), and
//! the proxy pacing a Gemini upstream's stream in both, byte for byte.

#![allow(clippy::unwrap_used, reason = "a test panics on what it does not expect")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{Received, ms, send, start};

const QUICK: &str = "error_rate = 0\nseed = 5\ntokens_per_response = 4\n";
const NO_DELAYS: &str =
    "first_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n";

fn ask(path: &str) -> Request<Full<Bytes>> {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-goog-api-key", "test-key")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Each chunk's JSON and when it arrived, from an SSE body. Line ends are
/// read as the SSE spec (and the google-genai parsers) read them: CRLF, LF
/// or a lone CR. (A fault that replaces an event cut between its CR and LF
/// leaves the CR alone; that is still a line end.)
fn sse_chunks(received: &Received) -> Vec<(Value, Duration)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for (chunk, at) in &received.chunks {
        pending.push_str(std::str::from_utf8(chunk).unwrap());
        pending = pending.replace("\r\n", "\n").replace('\r', "\n");
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if event.trim().is_empty() {
                continue; // a CR and its LF in two reads
            }
            let data = event.trim().strip_prefix("data: ").unwrap();
            out.push((serde_json::from_str(data).unwrap(), *at));
        }
    }
    assert!(pending.is_empty(), "{pending:?}");
    out
}

#[tokio::test(start_paused = true)]
async fn the_mock_streams_chunks_on_schedule_in_both_framings() {
    let sluice = start(QUICK).await;
    let sse =
        send(sluice.addr, ask("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
            .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream; charset=utf-8");
    let chunks = sse_chunks(&sse);
    let times: Vec<Duration> = chunks.iter().map(|(_, at)| *at).collect();
    assert_eq!(times, [ms(100), ms(120), ms(140), ms(160)]);
    assert_eq!(chunks[3].0["candidates"][0]["finishReason"], "STOP");

    let array =
        send(sluice.addr, ask("/v1beta/models/gemini-2.5-flash:streamGenerateContent")).await;
    assert_eq!(array.headers["content-type"], "application/json; charset=UTF-8");
    let parsed: Vec<Value> = serde_json::from_slice(&array.body()).unwrap();
    assert_eq!(parsed.len(), 4);
    let arrivals: Vec<Duration> = array.chunks.iter().map(|(_, at)| *at).collect();
    assert_eq!(arrivals.first(), Some(&ms(100)));
    assert_eq!(arrivals.last(), Some(&ms(160)), "the closing bracket goes with the last chunk");
}

/// A Gemini stream's chunks, as the API writes them.
fn gemini_chunks() -> Vec<String> {
    let chunk = |text: &str, done: bool| {
        let mut candidate =
            json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if done {
            candidate["finishReason"] = json!("STOP");
        }
        json!({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"})
        .to_string()
    };
    vec![chunk("One", false), chunk(" two", false), chunk(" \"three]}\"", false), chunk(".", true)]
}

#[tokio::test(start_paused = true)]
async fn the_proxy_paces_a_gemini_stream_in_both_framings_and_keeps_every_byte() {
    let chunks = gemini_chunks();
    let array = format!("[{}]", chunks.join(",\r\n"));
    let sse: String = chunks.iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
    let upstreams = [
        (
            "/v1beta/models/g:streamGenerateContent",
            support::upstreams::json_array_upstream(array.as_bytes(), 7).await,
            array.clone(),
        ),
        (
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            support::upstreams::scripted_sse_upstream(
                sse.as_bytes().chunks(7).map(|c| (Duration::ZERO, c.to_vec())).collect(),
            )
            .await,
            sse.clone(),
        ),
    ];
    for (path, upstream, sent) in upstreams {
        let url = upstream.url();
        let paced = start(&support::proxy_config(&url, "error_rate = 0\n", "")).await;
        let received = send(paced.addr, ask(path)).await;
        assert_eq!(received.status, 200, "{path}");
        assert_eq!(received.body(), sent.as_bytes(), "{path}: paced, yet every byte as sent");
        let arrivals: Vec<Duration> = received.chunks.iter().map(|(_, at)| *at).collect();
        assert_eq!(arrivals.first(), Some(&ms(100)), "{path}");
        assert_eq!(arrivals.last(), Some(&ms(160)), "{path}: 100 ms, then 20 ms a chunk");
        let passing =
            start(&support::proxy_config(&url, &format!("error_rate = 0\n{NO_DELAYS}"), "")).await;
        assert_eq!(send(passing.addr, ask(path)).await.body(), sent.as_bytes(), "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_fault_in_a_proxied_gemini_stream_comes_in_googles_shape() {
    let chunks = gemini_chunks();
    let sse: String = chunks.iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
    let upstream =
        support::upstreams::scripted_sse_upstream(vec![(Duration::ZERO, sse.into_bytes())]).await;
    let knobs = "error_rate = 1.0\n[[faults]]\nkind = \"stream_error\"\nafter_tokens = 2\n";
    let proxy = start(&support::proxy_config(&upstream.url(), knobs, "")).await;
    let received = send(proxy.addr, ask("/v1beta/models/g:streamGenerateContent?alt=sse")).await;
    let chunks = sse_chunks(&received);
    assert_eq!(chunks.len(), 3, "two chunks, then the error");
    let error = &chunks[2].0["error"];
    assert_eq!(
        (error["code"].as_u64(), error["status"].as_str()),
        (Some(503), Some("UNAVAILABLE"))
    );
}

#[tokio::test(start_paused = true)]
async fn faults_end_an_array_stream_as_a_whole_array() {
    let config = format!(
        "{QUICK}error_rate = 1.0\n[[faults]]\nkind = \"stream_error\"\nafter_tokens = 2\nfirst_requests = 1\n\
         [[faults]]\nkind = \"stop\"\nafter_tokens = 1\nfirst_requests = 2\n"
    );
    let sluice = start(&config.replace("error_rate = 0\n", "")).await;
    let failed = send(sluice.addr, ask("/v1beta/models/g:streamGenerateContent")).await;
    let elements: Vec<Value> = serde_json::from_slice(&failed.body()).unwrap();
    assert_eq!(elements.len(), 3, "two chunks and the error, a whole array");
    assert_eq!(elements[2]["error"]["status"], "UNAVAILABLE");
    let stopped = send(sluice.addr, ask("/v1beta/models/g:streamGenerateContent")).await;
    let elements: Vec<Value> = serde_json::from_slice(&stopped.body()).unwrap();
    assert_eq!(elements.len(), 2);
    assert_eq!(
        elements[1]["candidates"][0]["finishReason"], "SAFETY",
        "a refusal in Gemini's words"
    );
}

/// Each stream fault through the proxy, in both framings: what the client
/// reads is the upstream's first chunks byte for byte, then the fault in
/// Google's form; only the faults that end the turn close the array.
#[tokio::test(start_paused = true)]
async fn each_stream_fault_in_a_proxied_gemini_stream_in_both_framings() {
    let chunks = gemini_chunks();
    let array = format!("[{}]", chunks.join(",\r\n"));
    let sse: String = chunks.iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
    let kept_sse: String = chunks[..2].iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
    let kept_array = format!("[{},\r\n{}", chunks[0], chunks[1]);
    for fault in ["truncate", "malformed", "stop", "stream_error"] {
        let knobs = format!("error_rate = 1.0\n[[faults]]\nkind = \"{fault}\"\nafter_tokens = 2\n");
        // Server-sent events.
        let upstream = support::upstreams::scripted_sse_upstream(
            sse.as_bytes().chunks(5).map(|c| (Duration::ZERO, c.to_vec())).collect(),
        )
        .await;
        let proxy = start(&support::proxy_config(&upstream.url(), &knobs, "")).await;
        let path = "/v1beta/models/g:streamGenerateContent?alt=sse";
        let body = send(proxy.addr, ask(path)).await.body();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(&kept_sse), "{fault}: {text}");
        let rest = &text[kept_sse.len()..];
        match fault {
            "truncate" => assert_eq!(rest, "", "{fault}"),
            "malformed" => {
                let data = rest.split("\r\n\r\n").next().unwrap().strip_prefix("data: ").unwrap();
                assert!(serde_json::from_str::<Value>(data).is_err(), "{fault}: cut in half");
            }
            _ => {
                let data = rest.strip_prefix("data: ").unwrap().strip_suffix("\r\n\r\n").unwrap();
                let last: Value = serde_json::from_str(data).unwrap();
                let said = if fault == "stop" {
                    last["candidates"][0]["finishReason"].clone()
                } else {
                    last["error"]["status"].clone()
                };
                let expected = if fault == "stop" { "SAFETY" } else { "UNAVAILABLE" };
                assert_eq!(said, expected, "{fault}");
            }
        }
        // The JSON array.
        let upstream = support::upstreams::json_array_upstream(array.as_bytes(), 5).await;
        let proxy = start(&support::proxy_config(&upstream.url(), &knobs, "")).await;
        let body = send(proxy.addr, ask("/v1beta/models/g:streamGenerateContent")).await.body();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(&kept_array), "{fault}: {text}");
        let whole = serde_json::from_str::<Vec<Value>>(text);
        match fault {
            "truncate" => assert_eq!(text, kept_array, "{fault}: unterminated"),
            "malformed" => assert!(whole.is_err(), "{fault}"),
            _ => assert_eq!(whole.unwrap().len(), 3, "{fault}: a whole array"),
        }
    }
}

/// An injected error before a Vertex AI stream comes in a one-element
/// array, in the proxy as in the mock; the Gemini API's is a plain object.
#[tokio::test(start_paused = true)]
async fn an_injected_error_on_a_vertex_stream_comes_in_an_array() {
    let upstream = support::upstreams::json_array_upstream(b"[]", 5).await;
    let knobs = "error_rate = 1.0\n[[faults]]\nkind = \"http\"\nstatus = 529\n";
    let proxy = start(&support::proxy_config(&upstream.url(), knobs, "")).await;
    let mock = start(&format!("{QUICK}{knobs}").replace("error_rate = 0\n", "")).await;
    let vertex = "/v1/projects/p/locations/us-central1/publishers/google/models/g";
    for addr in [proxy.addr, mock.addr] {
        let wrapped = send(addr, ask(&format!("{vertex}:streamGenerateContent?alt=sse"))).await;
        assert_eq!(wrapped.status, 503);
        let body: Value = wrapped.json();
        assert_eq!(body[0]["error"]["status"], "UNAVAILABLE");
        assert_eq!(body.as_array().map(Vec::len), Some(1));
        let plain = send(addr, ask(&format!("{vertex}:generateContent"))).await.json();
        assert_eq!(plain["error"]["code"], 503);
        let gemini_api = send(addr, ask("/v1beta/models/g:streamGenerateContent")).await.json();
        assert_eq!(gemini_api["error"]["code"], 503);
    }
}
