//! Proxy mode over real sockets, against fake upstreams named by how they
//! behave and against `sluice mock` itself.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::json;
use support::upstreams::{self, Fake};
use support::{messages, ms, send, start};
use tokio::time::Instant;

use support::{NO_DELAYS, text_request};

/// A proxy config with no random faults: `knobs`, then the upstream.
fn proxy(url: &str, knobs: &str, upstream_extra: &str) -> String {
    support::proxy_config(url, &format!("error_rate = 0\n{knobs}"), upstream_extra)
}

/// An Anthropic stream with text and a tool call, as the real API writes it.
const STREAM: [&str; 12] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" me\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" check.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

fn stream_bytes() -> Vec<u8> {
    STREAM.concat().into_bytes()
}

/// Client bytes through a proxy with the seed's default delays (paused clock).
async fn through_proxy(fake: &Fake, upstream_extra: &str) -> support::Received {
    let sluice = start(&proxy(&fake.url(), "", upstream_extra)).await;
    send(sluice.addr, messages(&text_request())).await
}

#[tokio::test(start_paused = true)]
async fn with_no_fault_the_client_gets_the_upstreams_bytes_whatever_the_chunking() {
    let lf = stream_bytes();
    let crlf = String::from_utf8(lf.clone()).unwrap().replace('\n', "\r\n").into_bytes();
    let cr = String::from_utf8(lf.clone()).unwrap().replace('\n', "\r").into_bytes();
    let extras = format!(
        ": keep-alive comment\n\nid: 1\nretry: 10\nevent: brand_new_event\ndata: {{\"type\":\"brand_new_event\"}}\n\n{}event: ping\ndata: {{\"type\":\"ping\"}}",
        STREAM.concat()
    )
    .into_bytes();

    let cases: Vec<(&str, Fake, Vec<u8>)> = vec![
        (
            "steady, one event per chunk",
            upstreams::steady_sse_upstream(&STREAM, ms(5)).await,
            lf.clone(),
        ),
        ("CRLF, one byte per chunk", upstreams::byte_per_chunk_upstream(&crlf).await, crlf.clone()),
        (
            "lone CR, cut at odd places",
            upstreams::scripted_sse_upstream(cr.chunks(7).map(|c| (ms(1), c.to_vec())).collect())
                .await,
            cr.clone(),
        ),
        (
            "comments, id and retry, unknown events, a final event without its blank line",
            upstreams::scripted_sse_upstream(
                extras.chunks(50).map(|c| (ms(0), c.to_vec())).collect(),
            )
            .await,
            extras.clone(),
        ),
    ];
    // With the default delays every event is read; with none, the rest of
    // the stream after the first text passes through unread.
    let runs = cases.iter().flat_map(|case| [(case, ""), (case, NO_DELAYS)]);
    for ((name, fake, expected), knobs) in runs {
        let sluice = start(&proxy(&fake.url(), knobs, "")).await;
        let received = send(sluice.addr, messages(&text_request())).await;
        let name = format!("{name} {knobs:?}");
        assert_eq!(received.status, 200, "{name}");
        assert_eq!(received.body(), Bytes::from(expected.clone()), "{name}");
        assert_eq!(received.headers["x-upstream-header"], "kept", "{name}");
        assert!(received.headers.get("keep-alive").is_none(), "{name}: hop-by-hop header removed");
        assert!(
            received.headers["content-type"].to_str().unwrap().starts_with("text/event-stream")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_event_is_passed_through_in_pieces_and_intact() {
    let huge = format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
        "x".repeat(3 * 1024 * 1024)
    );
    let stream = format!("{}{huge}{}", STREAM[0], STREAM[11]).into_bytes();
    let fake = upstreams::scripted_sse_upstream(
        stream.chunks(16 * 1024).map(|c| (ms(0), c.to_vec())).collect(),
    )
    .await;
    let received = through_proxy(&fake, "max_event_size = \"64KiB\"").await;
    assert_eq!(received.body(), Bytes::from(stream));
    assert!(received.chunks.len() > 3, "passed on as it arrived, not buffered whole");
}

/// A stream whose plan has nothing to do after its first text (no fault,
/// no delay between tokens, no recording, no usage to settle) is passed on
/// unread from there: the same bytes, its first token measured, its later
/// tokens not. Any of those, or `pass_through = false`, keeps every event read.
#[tokio::test(start_paused = true)]
async fn with_nothing_planned_after_the_first_text_the_rest_passes_through_unread() {
    let no_gaps =
        "first_token_delay = \"100ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n";
    let paced =
        "first_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\ntool_call_delay = \"0ms\"\n";
    // (knobs, [upstream] extra, passed through, token gaps counted)
    let cases = [
        (no_gaps, "", 1.0, 0.0),
        (no_gaps, "pass_through = false", 0.0, 5.0),
        (paced, "", 0.0, 5.0),
    ];
    for (knobs, upstream_extra, passed, gaps) in cases {
        let fake = upstreams::steady_sse_upstream(&STREAM, ms(5)).await;
        let sluice = support::start_with_admin(&proxy(&fake.url(), knobs, upstream_extra)).await;
        let received = send(sluice.api, messages(&text_request())).await;
        let case = format!("{knobs:?} {upstream_extra:?}");
        assert_eq!(received.body(), Bytes::from(stream_bytes()), "{case}");
        assert_eq!(
            support::metric(sluice.admin, "sluice_passed_through_total").await,
            passed,
            "{case}"
        );
        let first = support::metric(sluice.admin, "sluice_first_token_delay_seconds_count").await;
        assert_eq!(first, 1.0, "{case}");
        let counted = support::metric(sluice.admin, "sluice_token_gap_seconds_count").await;
        assert_eq!(counted, gaps, "{case}");
    }
}

#[tokio::test(start_paused = true)]
async fn delays_are_added_to_the_upstreams_own_timing() {
    // Upstream schedule (ms since request): start 10, text tokens 50/55/60,
    // tool call 160, its arguments 165/170, then the end.
    let gaps = [10, 0, 40, 5, 5, 0, 100, 5, 5, 0, 0, 0];
    let chunks = STREAM.iter().zip(gaps).map(|(e, g)| (ms(g), e.as_bytes().to_vec())).collect();
    let fake = upstreams::scripted_sse_upstream(chunks).await;
    let sluice = start(&proxy(&fake.url(), "", "")).await; // 100ms / 20ms / 500ms
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.head_at, ms(150), "upstream's first token at 50 ms + 100 ms");
    let times: Vec<Duration> = received.events().iter().map(|e| e.2).collect();
    let expected = [150, 150, 150, 170, 190, 190, 710, 730, 750, 750, 750, 750].map(ms);
    assert_eq!(times, expected);
    assert_eq!(received.body(), Bytes::from(stream_bytes()));
}

#[tokio::test(start_paused = true)]
async fn a_proxy_without_delays_in_front_of_sluice_mock_is_invisible() {
    let direct = start("error_rate = 0\nseed = 5").await;
    let behind = start("error_rate = 0\nseed = 5").await;
    let proxied = start(&proxy(&format!("http://{}", behind.addr), NO_DELAYS, "")).await;
    for request in [
        text_request(),
        json!({"model": "m", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "weather?"}],
               "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    ] {
        let expected = send(direct.addr, messages(&request)).await;
        let got = send(proxied.addr, messages(&request)).await;
        assert_eq!(got.status, expected.status);
        assert_eq!(got.body(), expected.body(), "byte-identical to the mock's own reply");
        assert_eq!(got.head_at, expected.head_at, "the mock's delays, nothing added");
        let times = |r: &support::Received| r.chunks.iter().map(|c| c.1).collect::<Vec<_>>();
        if request["stream"] == true {
            assert_eq!(
                got.events().iter().map(|e| e.2).collect::<Vec<_>>(),
                expected.events().iter().map(|e| e.2).collect::<Vec<_>>()
            );
        } else {
            assert_eq!(times(&got).last(), times(&expected).last());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_injected_fault_is_answered_without_calling_the_upstream() {
    let fake = upstreams::steady_sse_upstream(&STREAM, ms(1)).await;
    let config = proxy(&fake.url(), "", "").replace(
        "error_rate = 0\n",
        "error_rate = 1.0\n[[faults]]\nkind = \"http\"\nstatus = 529\n",
    );
    // [[faults]] must come after the top-level keys and before [upstream].
    let sluice = start(&config).await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.status, 529);
    assert_eq!(received.headers["x-sluice-fault"], "http; status=529");
    assert_eq!(received.json()["error"]["type"], "overloaded_error");

    let openai = Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let received = send(sluice.addr, openai).await;
    // OpenAI never answers 529: its own overload answer is a 503.
    assert_eq!(received.status, 503);
    assert_eq!(
        received.json()["error"]["type"],
        "server_error",
        "OpenAI's shape on an OpenAI path"
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0, "no tokens spent upstream");
}

#[tokio::test(start_paused = true)]
async fn the_upstreams_own_errors_and_plain_responses_pass_through() {
    let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_up"}"#;
    let fake = upstreams::json_upstream(429, body).await;
    let received = through_proxy(&fake, "").await;
    assert_eq!(received.status, 429);
    assert_eq!(received.body(), Bytes::from_static(body.as_bytes()));
    assert_eq!(received.headers["x-upstream-header"], "kept");
    assert!(received.headers.get("x-sluice-error").is_none());
    assert_eq!(received.head_at, ms(100), "a non-SSE head waits the first-token delay");

    let fake = upstreams::json_upstream(200, r#"{"ok":true}"#).await;
    let received = through_proxy(&fake, "delay_non_sse = false").await;
    assert_eq!(received.head_at, ms(0));
    assert_eq!(received.body(), Bytes::from_static(br#"{"ok":true}"#));
}

#[tokio::test]
async fn requests_reach_the_upstream_with_their_headers_and_body() {
    let fake = upstreams::echo_upstream().await;
    let sluice = start(&proxy(&format!("{}/base", fake.url()), NO_DELAYS, "")).await;
    let request = Request::post("/v1/messages?beta=true")
        .header("host", "sluice.local")
        .header("authorization", "Bearer sk-secret")
        .header("x-api-key", "sk-secret")
        .header("anthropic-version", "2026-10-21")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .body(Full::new(Bytes::from_static(b"{\"model\":\"m\"}")))
        .unwrap();
    let echo = send(sluice.addr, request).await.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/base/v1/messages?beta=true");
    assert_eq!(echo["body"], "{\"model\":\"m\"}");
    let headers = &echo["headers"];
    assert_eq!(headers["authorization"], "Bearer sk-secret");
    assert_eq!(headers["x-api-key"], "sk-secret");
    assert_eq!(headers["anthropic-version"], "2026-10-21");
    assert_eq!(headers["host"], fake.addr.to_string());
    assert!(headers.get("x-hop").is_none(), "headers named in Connection are hop-by-hop");
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_502_naming_it_and_the_cause() {
    let port = upstreams::refused_port().await;
    let url = format!("http://{port}");
    let sluice = start(&proxy(&url, "", "")).await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.status, 502);
    assert_eq!(received.headers["x-sluice-error"], "upstream-connect");
    let body = received.json();
    assert_eq!(body["error"]["type"], "api_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("sluice cannot connect to upstream {url}: ")),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_upstream_head_gets_a_504() {
    let fake = upstreams::slow_head_upstream(Duration::from_secs(5)).await;
    let sluice = start(&proxy(&fake.url(), "", "header_timeout = \"200ms\"")).await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.status, 504);
    assert_eq!(received.head_at, ms(200));
    assert_eq!(received.headers["x-sluice-error"], "upstream-timeout");
    let message = received.json()["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        format!("upstream {} did not answer within 200ms (upstream.header_timeout)", fake.url())
    );
}

#[tokio::test]
async fn tls_to_a_plain_http_upstream_fails_as_a_connect_error() {
    let fake = upstreams::steady_sse_upstream(&STREAM, ms(0)).await;
    let sluice = start(&proxy(&format!("https://{}", fake.addr), "", "")).await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.status, 502);
    assert_eq!(received.headers["x-sluice-error"], "upstream-connect");
}

#[tokio::test]
async fn an_upstream_reset_mid_stream_breaks_the_clients_stream_too() {
    let fake = upstreams::resetting_upstream(STREAM[2]).await;
    let sluice = start(&proxy(&fake.url(), NO_DELAYS, "")).await;
    let response = support::open(sluice.addr, messages(&text_request())).await;
    assert_eq!(response.status(), 200);
    let (received, outcome) = support::drain(response.into_body()).await;
    assert_eq!(received, STREAM[2].as_bytes(), "what arrived went out");
    assert!(outcome.is_err(), "the client sees a broken stream, not a clean end");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_closes_the_upstream_stream() {
    let mut fake = upstreams::stalling_upstream(&STREAM[..3]).await;
    let sluice = start(&proxy(&fake.url(), NO_DELAYS, "")).await;
    let tcp = tokio::net::TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    let connection = tokio::spawn(connection);
    let response = sender.send_request(messages(&text_request())).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"event: message_start"));
    let left = Instant::now();
    drop(body);
    drop(sender);
    connection.abort();
    tokio::time::timeout(Duration::from_secs(5), fake.closed.recv())
        .await
        .expect("the upstream connection was not closed within 5 s");
    println!("upstream closed {:?} after the client left", left.elapsed());
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_private_ca_is_trusted_when_configured_and_only_then() {
    let tls = support::tls::TlsUpstream::start(&STREAM).await;
    let without = start(&proxy(&tls.url, NO_DELAYS, "")).await;
    let received = send(without.addr, messages(&text_request())).await;
    assert_eq!(received.status, 502);
    let message = received.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("certificate"), "{message}");

    let with =
        start(&proxy(&tls.url, NO_DELAYS, &format!("ca_file = \"{}\"", tls.ca_file.display())))
            .await;
    let received = send(with.addr, messages(&text_request())).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.body(), Bytes::from(stream_bytes()));
    assert_eq!(tls.alpn_h2.load(Ordering::SeqCst), 1, "HTTP/2 chosen by ALPN");
}

/// A refusal is shaped like the API of the request's path: an OpenAI path gets
/// OpenAI's error object (no top-level `type`, `error.type` and `error.code`),
/// an Anthropic path Anthropic's, whichever stage refused it.
#[tokio::test]
async fn refusals_on_an_openai_path_have_openais_shape() {
    let fake = upstreams::echo_upstream().await;
    // A route on the model makes the proxy read (and bound) the body.
    let knobs = "max_request_body = \"64B\"\n[control]\nheaders = true\n\n\
                 [[routes]]\nname = \"by-model\"\nmodel = \"gpt-*\"";
    let sluice = start(&proxy(&fake.url(), knobs, "")).await;
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(200)}]});
    let request = |path: &str, body: &serde_json::Value, inject: Option<&str>| {
        let mut builder = Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-test");
        if let Some(inject) = inject {
            builder = builder.header("x-sluice-inject", inject);
        }
        builder.body(Full::new(Bytes::from(body.to_string()))).unwrap()
    };
    let openai_shaped = |received: &support::Received, status: u16, error_type: &str| {
        assert_eq!(received.status, status, "{:?}", received.body());
        let body = received.json();
        assert!(body.get("type").is_none(), "no top-level type in OpenAI's shape: {body}");
        assert_eq!(body["error"]["type"], error_type, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["error"].get("code").is_some(), "{body}");
    };

    let too_large = send(sluice.addr, request("/v1/chat/completions", &big, None)).await;
    openai_shaped(&too_large, 413, "invalid_request_error");
    let too_large = send(sluice.addr, request("/v1/responses", &big, None)).await;
    openai_shaped(&too_large, 413, "invalid_request_error");
    let small = json!({"model": "gpt-4o"});
    let bad_header =
        send(sluice.addr, request("/v1/chat/completions", &small, Some("nonsense"))).await;
    openai_shaped(&bad_header, 400, "invalid_request_error");
    assert_eq!(bad_header.headers["x-sluice-route"], "by-model");

    // The same refusal on an Anthropic path keeps Anthropic's shape.
    let anthropic = send(sluice.addr, request("/v1/messages", &big, None)).await;
    assert_eq!(anthropic.status, 413);
    assert_eq!(anthropic.json()["type"], "error");
    assert_eq!(anthropic.json()["error"]["type"], "request_too_large");

    // An upstream that fails: 502 in OpenAI's shape, marked as sluice's.
    let gone = support::upstreams::refused_port().await;
    let sluice = start(&proxy(&format!("http://{gone}"), "", "")).await;
    let failed = send(sluice.addr, request("/v1/chat/completions", &small, None)).await;
    openai_shaped(&failed, 502, "server_error");
    assert_eq!(failed.headers["x-sluice-error"], "upstream-connect");
}

/// The OpenAI mock behind a proxy without delays: the client gets the mock's
/// bytes (the `created` stamps aside, which are the clock's) at the mock's
/// times; and a proxy with the default delays paces the OpenAI stream as it
/// does the Messages one.
#[tokio::test(start_paused = true)]
async fn an_openai_stream_through_the_proxy_is_the_mocks_own_and_is_paced() {
    let direct = start("error_rate = 0\nseed = 5").await;
    let behind = start("error_rate = 0\nseed = 5").await;
    let proxied = start(&proxy(&format!("http://{}", behind.addr), NO_DELAYS, "")).await;
    let post = |path: &str, body: &serde_json::Value| {
        Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let stamps = regex::Regex::new(r#""created(_at)?":\d+"#).unwrap();
    let normal = |r: &support::Received| {
        let body = r.body();
        stamps.replace_all(std::str::from_utf8(&body).unwrap(), "\"created\":0").into_owned()
    };
    let times = |r: &support::Received| r.chunks.iter().map(|c| c.1).collect::<Vec<_>>();
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
        ),
        ("/v1/responses", json!({"model": "m", "stream": true, "input": "hi"})),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in &cases {
        let expected = send(direct.addr, post(path, body)).await;
        let got = send(proxied.addr, post(path, body)).await;
        assert_eq!(got.status, 200);
        assert_eq!(normal(&got), normal(&expected), "{path}: the mock's own bytes");
        assert_eq!(got.head_at, expected.head_at, "{path}: nothing added");
        assert_eq!(times(&got).last(), times(&expected).last(), "{path}");
    }

    let fast = start(&format!("error_rate = 0\nseed = 5\n{NO_DELAYS}")).await;
    let paced = start(&proxy(&format!("http://{}", fast.addr), "", "")).await;
    let (path, body) = &cases[0];
    let received = send(paced.addr, post(path, body)).await;
    assert_eq!(received.head_at, ms(100), "the proxy's first-token delay");
    // When each token (a non-empty content delta) arrived.
    let mut arrivals = Vec::new();
    for (chunk, at) in &received.chunks {
        let text = std::str::from_utf8(chunk).unwrap();
        let tokens = text
            .split("\n\n")
            .filter(|event| event.contains("\"content\":\"") && !event.contains("\"content\":\"\""))
            .count();
        arrivals.extend(std::iter::repeat_n(*at, tokens));
    }
    assert_eq!(arrivals.len(), 50);
    for (k, at) in arrivals.iter().enumerate() {
        assert_eq!(*at, ms(100 + 20 * k as u64), "token {k}");
    }
}

/// A client that accepts gzip (every SDK does) must still get a shaped
/// stream: sluice asks the upstream for identity, so a compressing upstream
/// streams events it can pace, not one gzip body at the end.
#[tokio::test(start_paused = true)]
async fn a_compressing_upstream_is_asked_for_identity_and_its_stream_is_shaped() {
    static RECORDS: [&str; 12] = STREAM;
    let fake = upstreams::compressing_sse_upstream(&RECORDS, ms(10)).await;
    let sluice =
        start(&proxy(&fake.url(), "first_token_delay = \"300ms\"\ntoken_interval = \"0ms\"", ""))
            .await;
    let mut request = messages(&text_request());
    request.headers_mut().insert("accept-encoding", "gzip, deflate, br".parse().unwrap());
    let received = send(sluice.addr, request).await;
    assert_eq!(received.status, 200);
    assert!(received.headers.get("content-encoding").is_none());
    assert_eq!(received.body(), Bytes::from(stream_bytes()), "the upstream's events, uncompressed");
    // The first token: the upstream's own 30 ms (third record) plus sluice's 300 ms.
    assert_eq!(received.head_at, ms(330));
}
