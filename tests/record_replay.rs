//! Record and replay over real sockets: `sluice mock` with jittered timing
//! recorded through the proxy, then replayed by the mock; hand-written
//! cassettes replayed on the paused clock (exact offsets, scaled, configured,
//! a fault on top); redaction of every credential form; `sluice profile`
//! recovering known distributions.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod support;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use rand::SeedableRng;
use rand_distr::Distribution;
use serde_json::{Value, json};
use support::{Received, eventually, ms, send, start};

/// The jittered mock the proxy records from.
const JITTERY_MOCK: &str = r#"
error_rate = 0
seed = 7
first_token_delay = { dist = "lognormal", p50 = "40ms", p99 = "90ms" }
token_interval = { dist = "uniform", min = "3ms", max = "12ms" }
tool_call_delay = "25ms"
tokens_per_response = 12
"#;

/// No random faults and no delays.
const NO_DELAYS: &str = concat!(
    "error_rate = 0\n",
    "first_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n"
);

fn post(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-ant-api03-SECRET-x-api-key")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// One request of each dialect and kind, each with its own last user message.
fn requests() -> Vec<(&'static str, Value)> {
    let weather = json!([{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let chat_tool = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    vec![
        (
            "/v1/messages",
            json!({"model": "claude-x", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "text, streamed"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "claude-x", "max_tokens": 64, "stream": true, "tools": weather, "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "a tool call, streamed"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "not streamed"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-x", "stream": true, "messages": [{"role": "user", "content": "chat, streamed"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-x", "stream": true, "tools": chat_tool, "tool_choice": "required", "messages": [{"role": "user", "content": "chat tool call"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-x", "messages": [{"role": "user", "content": "chat, not streamed"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "gpt-x", "stream": true, "input": "responses, streamed"}),
        ),
    ]
}

/// The jittery mock, and a proxy in front of it that records into `dir`.
async fn recording_proxy(dir: &Path) -> (support::Sluice, support::Sluice) {
    let upstream = start(JITTERY_MOCK).await;
    let proxy = start(&format!(
        "{NO_DELAYS}[record]\ndir = \"{}\"\n[upstream]\nurl = \"http://{}\"\n",
        dir.display(),
        upstream.addr
    ))
    .await;
    (upstream, proxy)
}

/// A mock replaying `dir` by last user message at the recorded offsets.
async fn replaying_mock(dir: &Path) -> support::Sluice {
    start(&format!(
        "{NO_DELAYS}[replay]\ndir = \"{}\"\nmatch = \"last_user_message\"\ntiming = \"recorded\"\n",
        dir.display()
    ))
    .await
}

fn cassettes(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| name.ends_with(".jsonl") && !name.starts_with('.'))
        .map(|(name, path)| (name, std::fs::read_to_string(path).unwrap()))
        .collect();
    found.sort();
    found
}

/// The last user message of one of `requests()`.
fn last_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| m["content"].as_str().unwrap().to_string())
        .unwrap_or_else(|| body["input"].as_str().unwrap().to_string())
}

/// Each event's offset in a cassette (ms), by the request's last user message.
fn recorded_offsets(text: &str) -> (String, Vec<f64>) {
    let mut lines = text.lines();
    let head: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let message = last_message(&head["request"]["body"]);
    let offsets =
        lines.map(|l| serde_json::from_str::<Value>(l).unwrap()["at_ms"].as_f64().unwrap());
    (message, offsets.collect())
}

/// When each SSE event of a response arrived: the chunk holding its end.
fn event_arrivals(received: &Received) -> Vec<Duration> {
    let mut arrivals = Vec::new();
    let mut pending = 0usize;
    for (chunk, at) in &received.chunks {
        let mut text = std::str::from_utf8(chunk).unwrap();
        while let Some(end) = text.find("\n\n") {
            arrivals.push(*at);
            text = &text[end + 2..];
        }
        pending += text.len();
    }
    assert_eq!(pending, 0, "the stream ended inside an event");
    arrivals
}

#[tokio::test(start_paused = true)]
async fn recorded_streams_replay_byte_identical_at_their_recorded_offsets_in_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, proxy) = recording_proxy(dir.path()).await;
    let mut through_proxy = Vec::new();
    for (path, body) in requests() {
        let received = send(proxy.addr, post(path, &body)).await;
        assert_eq!(received.status, 200, "{path} {body}");
        through_proxy.push(received);
    }
    let recorded = written(dir.path(), requests().len());

    let replay = replaying_mock(dir.path()).await;
    // Each event as the client saw it through the proxy while recording, and
    // as it sees it replayed: both one hop from sluice, so the same transit.
    let mut errors = Vec::new();
    for ((path, body), proxied) in requests().into_iter().zip(&through_proxy) {
        let replayed = send(replay.addr, post(path, &body)).await;
        assert_eq!(replayed.status, 200, "{path} {body}");
        assert_eq!(replayed.body(), proxied.body(), "{path} {body}: replayed bytes differ");
        if body["stream"] != json!(true) {
            continue;
        }
        let message = last_message(&body);
        let (_, offsets) = recorded
            .iter()
            .map(|(_, text)| recorded_offsets(text))
            .find(|(m, _)| *m == message)
            .unwrap();
        let (seen, again) = (event_arrivals(proxied), event_arrivals(&replayed));
        assert_eq!(again.len(), offsets.len(), "{path}: one event a cassette line");
        assert_eq!(seen.len(), again.len(), "{path}");
        for (seen, again) in seen.iter().zip(&again) {
            errors.push(if seen > again { *seen - *again } else { *again - *seen });
        }
    }
    // On the paused clock every event goes out exactly when it did through the proxy.
    assert!(errors.len() >= 40, "{} events compared", errors.len());
    assert!(errors.iter().all(Duration::is_zero), "replayed vs proxied: {errors:?}");
}

/// Writes a cassette by hand, as a user would edit one.
fn write_cassette(dir: &Path, name: &str, message: &str, events: &[(f64, &str)]) {
    let head = json!({
        "sluice_cassette": 1,
        "request": {"method": "POST", "path": "/v1/messages", "headers": {}, "body": {"model": "claude-x", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": message}]}},
        "response": {"status": 200, "head_ms": 5.0, "headers": {"content-type": "text/event-stream", "request-id": "req_recorded"}}
    });
    let mut text = format!("{head}\n");
    for (at, sse) in events {
        text.push_str(&format!("{}\n", json!({"at_ms": at, "sse": sse})));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

fn delta(text: &str) -> String {
    format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
    )
}

fn hand_written(dir: &Path) {
    let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_r\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
    let block = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    let (a, b, c) = (delta("Hel"), delta("lo"), delta("!"));
    let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    write_cassette(
        dir,
        "hello.jsonl",
        "hello",
        &[(10.0, start), (10.5, block), (250.0, &a), (262.0, &b), (300.0, &c), (301.0, stop)],
    );
}

fn hello() -> Value {
    json!({"model": "claude-x", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(start_paused = true)]
async fn a_replay_goes_out_at_exactly_the_recorded_offsets_or_scaled_or_on_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    hand_written(dir.path());
    let replay = |timing: &str| {
        format!(
            "error_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\n[replay]\ndir = \"{}\"\n{timing}\n",
            dir.path().display()
        )
    };
    let recorded = start(&replay("timing = \"recorded\"")).await;
    let received = send(recorded.addr, post("/v1/messages", &hello())).await;
    assert_eq!(received.headers["request-id"], "req_recorded");
    // The head waits for the first token, as the mock's does; then each event at its offset.
    assert_eq!(received.head_at, ms(250));
    let at: Vec<Duration> = event_arrivals(&received);
    let expected =
        [250.0, 250.0, 250.0, 262.0, 300.0, 301.0].map(|m| Duration::from_secs_f64(m / 1000.0));
    assert_eq!(at, expected);

    let scaled = start(&replay("timing = \"scaled\"\nscale = 2.0")).await;
    let received = send(scaled.addr, post("/v1/messages", &hello())).await;
    let expected =
        [500.0, 500.0, 500.0, 524.0, 600.0, 602.0].map(|m| Duration::from_secs_f64(m / 1000.0));
    assert_eq!(event_arrivals(&received), expected);

    let configured = start(&replay("timing = \"configured\"")).await;
    let received = send(configured.addr, post("/v1/messages", &hello())).await;
    let expected = [100, 100, 100, 120, 140, 140].map(ms);
    assert_eq!(event_arrivals(&received), expected);
    assert_eq!(received.body(), send(recorded.addr, post("/v1/messages", &hello())).await.body());
}

#[tokio::test(start_paused = true)]
async fn faults_apply_on_top_of_a_replay_and_an_unmatched_request_gets_a_clear_404_or_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    hand_written(dir.path());
    let base = format!(
        "error_rate = 0\n[control]\nheaders = true\n[replay]\ndir = \"{}\"\n",
        dir.path().display()
    );
    let sluice = start(&base).await;
    let mut request = post("/v1/messages", &hello());
    request.headers_mut().insert("x-sluice-inject", "truncate; after_tokens=2".parse().unwrap());
    let received = send(sluice.addr, request).await;
    assert_eq!(received.headers["x-sluice-fault"], "truncate; after_tokens=2");
    let body = String::from_utf8(received.body().to_vec()).unwrap();
    assert!(body.contains("\"Hel\"") && body.contains("\"lo\""), "{body}");
    assert!(!body.contains("\"!\"") && !body.contains("message_stop"), "{body}");
    // Cut where the third token was due: 300 ms.
    assert_eq!(received.chunks.last().map(|(_, at)| *at), Some(ms(262)));

    let other = json!({"model": "claude-x", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "never recorded"}]});
    let missing = send(sluice.addr, post("/v1/messages", &other)).await;
    // Not a 404, which agent clients read as a model that does not exist.
    assert_eq!(missing.status, 400);
    assert_eq!(missing.headers["x-sluice-replay"], "unmatched");
    let error = missing.json();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("sluice replay: no recorded exchange matches this request")
            && message.contains("last user message"),
        "{message}"
    );

    let generating = start(&format!("{base}fallback = \"generate\"\n")).await;
    let generated = send(generating.addr, post("/v1/messages", &other)).await;
    assert_eq!(generated.status, 200);
    assert!(generated.events().iter().any(|(name, _, _)| name == "content_block_delta"));
}

#[tokio::test]
async fn no_credential_in_any_header_form_and_no_listed_field_reaches_a_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start(NO_DELAYS).await;
    let proxy = start(&format!(
        "{NO_DELAYS}[record]\ndir = \"{}\"\nredact_headers = [\"x-user-email\"]\nredact_fields = [\"metadata.user_id\", \"message.id\"]\n[upstream]\nurl = \"http://{}\"\n",
        dir.path().display(),
        upstream.addr
    ))
    .await;
    let forms: [(&str, &str); 11] = [
        ("x-api-key", "sk-ant-api03-SECRET1"),
        ("authorization", "Bearer sk-proj-SECRET2"),
        ("api-key", "SECRET3"),
        ("x-goog-api-key", "SECRET4"),
        ("proxy-authorization", "Basic U0VDUkVUNQ=="),
        ("cookie", "session=SECRET6"),
        ("x-user-email", "someone-SECRET7@example.com"),
        // Forms the fixed list missed, caught by their names.
        ("anthropic-api-key", "SECRET13"),
        ("openai-api-key", "SECRET14"),
        ("x-auth-token", "SECRET15"),
        ("openai-organization", "org-SECRET16"),
    ];
    let body = json!({"model": "claude-x", "max_tokens": 8, "stream": true, "api_key": "SECRET12", "metadata": {"user_id": "SECRET8"}, "messages": [{"role": "user", "content": "hi"}]});
    for (name, value) in forms {
        let request = Request::post("/v1/messages?key=SECRET9&api%5Fkey=SECRET10&x=1;key=SECRET11")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .header(name, value)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        assert_eq!(send(proxy.addr, request).await.status, 200);
    }
    let found = eventually("eleven cassettes", || async {
        let found = cassettes(dir.path());
        (found.len() == 11).then_some(found)
    })
    .await;
    for (name, text) in &found {
        assert!(!text.contains("SECRET"), "{name} holds a secret:\n{text}");
        assert!(text.contains("\"metadata\":{\"user_id\":\"[redacted]\"}"), "{name}");
        // The stream's own `id` fields are redacted too.
        assert!(text.contains(r#"\"id\":\"[redacted]\""#), "{name}");
    }
    assert!(found.iter().any(|(_, text)| text.contains("\"x-user-email\":\"[redacted]\"")));
}

/// Waits on the real clock (the writer is a thread, not a task) until `dir`
/// holds `count` cassettes.
fn written(dir: &Path, count: usize) -> Vec<(String, String)> {
    // At most 60 s: 3,000 looks 20 ms apart.
    for _ in 0..3000 {
        let found = cassettes(dir);
        if found.len() >= count {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} of {count} cassettes after 60 s", cassettes(dir).len());
}

/// The proxy's own delays are sluice's, not the upstream's: a cassette holds
/// the offsets at which the upstream sent each event, however long the
/// proxy then held it back, and `sluice profile` recovers the upstream's
/// timing from such cassettes.
#[tokio::test(start_paused = true)]
async fn a_cassette_holds_the_upstreams_timing_not_the_delays_the_proxy_adds() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start(
        "error_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\ntokens_per_response = 5\n",
    )
    .await;
    let proxy = start(&format!(
        "error_rate = 0\nfirst_token_delay = \"300ms\"\ntoken_interval = \"50ms\"\n[record]\ndir = \"{}\"\n[upstream]\nurl = \"http://{}\"\n",
        dir.path().display(),
        upstream.addr
    ))
    .await;
    let received = send(proxy.addr, post("/v1/messages", &hello())).await;
    let tokens: Vec<Duration> = received
        .events()
        .into_iter()
        .filter(|(name, _, _)| name == "content_block_delta")
        .map(|(_, _, at)| at)
        .collect();
    // The client sees the proxy's delays on top of the upstream's: the first
    // token 100 + 300 ms after the request, then one every 50 ms (the
    // upstream's 20 ms gaps are shorter than the proxy's own).
    assert_eq!(tokens, [400, 450, 500, 550, 600].map(ms));

    let found = written(dir.path(), 1);
    let (_, offsets) = recorded_offsets(&found[0].1);
    let content: Vec<f64> = found[0]
        .1
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["sse"].as_str().unwrap().starts_with("event: content_block_delta"))
        .map(|line| line["at_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(content, [100.0, 120.0, 140.0, 160.0, 180.0], "every offset: {offsets:?}");
    // Nothing was recorded later than the upstream sent its last event.
    assert!(offsets.iter().all(|at| *at <= 180.0), "{offsets:?}");

    // 200 more, and the profile is the upstream's 100 / 20 ms.
    for _ in 0..200 {
        assert_eq!(send(proxy.addr, post("/v1/messages", &hello())).await.status, 200);
    }
    written(dir.path(), 201);
    let report = sluice::cassette::profile::report(dir.path()).unwrap();
    let config = sluice::Config::from_toml_str(&report, "profile.toml").unwrap();
    let profile = &config.profiles["claude-x"];
    let p50 = |delay: Option<sluice::shape::Delay>| match delay {
        Some(sluice::shape::Delay::LogNormal { p50, .. }) => p50.as_secs_f64() * 1000.0,
        Some(sluice::shape::Delay::Fixed(fixed)) => fixed.as_secs_f64() * 1000.0,
        other => panic!("{other:?}\n{report}"),
    };
    let (first, gap) = (p50(profile.first_token_delay), p50(profile.token_interval));
    assert!((first / 100.0 - 1.0).abs() <= 0.03, "first token {first} ms\n{report}");
    assert!((gap / 20.0 - 1.0).abs() <= 0.03, "gap {gap} ms\n{report}");
}

#[test]
fn sluice_profile_recovers_known_distributions_and_writes_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    // Log-normal by p50 and p99: sigma = ln(p99 / p50) / z(0.99).
    let lognormal = |p50: f64, p99: f64| {
        rand_distr::LogNormal::new(p50.ln(), (p99 / p50).ln() / 2.326_347_874).unwrap()
    };
    let (first, gap) = (lognormal(800.0, 2000.0), lognormal(20.0, 60.0));
    for n in 0..2000 {
        let mut at = first.sample(&mut rng);
        let mut events =
            vec![(0.5, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n".to_string())];
        for _ in 0..10 {
            events.push((at, delta("x")));
            at += gap.sample(&mut rng);
        }
        let head = json!({
            "sluice_cassette": 1,
            "request": {"method": "POST", "path": "/v1/messages", "body": {"model": "claude-x", "stream": true}},
            "response": {"status": 200, "head_ms": 0.5, "headers": {"content-type": "text/event-stream"}}
        });
        let mut text = format!("{head}\n");
        for (at, sse) in events {
            text.push_str(&format!("{}\n", json!({"at_ms": at, "sse": sse})));
        }
        std::fs::write(dir.path().join(format!("{n:05}.jsonl")), text).unwrap();
    }
    let report = sluice::cassette::profile::report(dir.path()).unwrap();
    eprintln!("{report}");
    let config = sluice::Config::from_toml_str(&report, "profile.toml").unwrap();
    let profile = &config.profiles["claude-x"];
    let within = |got: Option<sluice::shape::Delay>, p50: f64, p99: f64| match got {
        Some(sluice::shape::Delay::LogNormal { p50: got50, p99: got99 }) => {
            let (got50, got99) = (got50.as_secs_f64() * 1000.0, got99.as_secs_f64() * 1000.0);
            assert!((got50 / p50 - 1.0).abs() < 0.10, "p50 {got50} ms, not within 10 % of {p50}");
            assert!((got99 / p99 - 1.0).abs() < 0.10, "p99 {got99} ms, not within 10 % of {p99}");
        }
        other => panic!("not a log-normal: {other:?}"),
    };
    within(profile.first_token_delay, 800.0, 2000.0);
    within(profile.token_interval, 20.0, 60.0);
    assert_eq!(profile.tokens_per_response, Some(sluice::shape::Length::Fixed(10)));
    assert_eq!(config.routes[0].profile.as_deref(), Some("claude-x"));
}

fn gemini(path: &str, message: &str) -> Request<Full<Bytes>> {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": message}]}]});
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-goog-api-key", "AIza-SECRET-goog-key")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Gemini's streams in both framings (server-sent events, and the JSON
/// array without `alt=sse`) and a whole answer: recorded through the proxy,
/// replayed byte for byte at the recorded offsets, each to a request that
/// asks for its framing; the key in the query is not written.
#[tokio::test(start_paused = true)]
async fn gemini_streams_replay_byte_identical_in_both_framings() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, proxy) = recording_proxy(dir.path()).await;
    let base = "/v1beta/models/gemini-2.5-flash";
    let asked = [
        (format!("{base}:streamGenerateContent?alt=sse&key=AIza-SECRET-query"), "in sse"),
        (format!("{base}:streamGenerateContent"), "in an array"),
        (format!("{base}:generateContent"), "whole"),
    ];
    let mut proxied = Vec::new();
    for (path, message) in &asked {
        let received = send(proxy.addr, gemini(path, message)).await;
        assert_eq!(received.status, 200, "{path}");
        proxied.push(received);
    }
    let recorded = written(dir.path(), asked.len());
    for (_, text) in &recorded {
        assert!(!text.contains("SECRET"), "no key in a cassette: {text}");
    }
    let replay = replaying_mock(dir.path()).await;
    for ((path, message), through_proxy) in asked.iter().zip(&proxied) {
        let replayed = send(replay.addr, gemini(path, message)).await;
        assert_eq!(replayed.status, 200, "{path}");
        assert_eq!(replayed.body(), through_proxy.body(), "{path}: replayed bytes differ");
        let last = |r: &Received| r.chunks.last().map(|(_, at)| *at);
        assert_eq!(last(&replayed), last(through_proxy), "{path}: the last byte's offset");
        if path.contains("stream") {
            assert!(replayed.chunks.len() > 3, "{path}: streamed, not whole");
        }
    }
    // The array's message asked for in SSE: no cassette of that framing.
    let sse = format!("{base}:streamGenerateContent?alt=sse");
    let unmatched = send(replay.addr, gemini(&sse, "in an array")).await;
    assert_eq!(unmatched.status, 400);
    assert_eq!(unmatched.headers["x-sluice-replay"], "unmatched");
}

/// A Bedrock stream (AWS's binary event stream) is recorded frame by frame
/// in a readable form (`frame`: its headers and JSON payload), and replayed
/// byte for byte; the SigV4 authorization is not written.
#[tokio::test(start_paused = true)]
async fn bedrock_frames_are_recorded_readable_and_replay_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, proxy) = recording_proxy(dir.path()).await;
    let ask = |text: &str| {
        let body = json!({"messages": [{"role": "user", "content": [{"text": text}]}]});
        Request::post("/model/anthropic.claude-x-v1%3A0/converse-stream")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID-SECRET/x, Signature=SECRET")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let proxied = send(proxy.addr, ask("frames, please")).await;
    assert_eq!(proxied.status, 200);
    let [(_, text)] = &written(dir.path(), 1)[..] else { panic!("one cassette") };
    assert!(!text.contains("SECRET"), "{text}");
    let lines: Vec<Value> =
        text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 5);
    for line in &lines {
        let frame = &line["frame"];
        assert_eq!(frame["headers"][":message-type"], "event", "{line}");
        assert!(frame["payload"].is_object(), "{line}");
    }
    assert_eq!(lines[0]["frame"]["headers"][":event-type"], "messageStart");
    assert_eq!(lines[0]["frame"]["payload"], json!({"role": "assistant"}));
    let replay = replaying_mock(dir.path()).await;
    let replayed = send(replay.addr, ask("frames, please")).await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.body(), proxied.body(), "replayed bytes differ");
}
