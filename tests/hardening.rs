//! Hostile inputs, upstreams and clients, over real sockets: each test is a
//! reproduction from the hardening review (`docs/reliability.md`), and
//! asserts what sluice does now instead of panicking, buffering without bound,
//! leaking a secret or losing count.
#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};
use support::upstreams;
use support::{
    admin_request, drain, eventually, messages, metric, ms, open, send, start, start_with_admin,
    text_request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn with_headers(
    mut request: Request<Full<Bytes>>,
    headers: &[(&str, &[u8])],
) -> Request<Full<Bytes>> {
    for (name, value) in headers {
        request.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request
}

const FAST: &str = "error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\ntokens_per_response = 5\n";

fn proxy(url: &str, knobs: &str, upstream_extra: &str) -> String {
    support::proxy_config(url, &format!("{FAST}{knobs}"), upstream_extra)
}

const MESSAGE_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n";
const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

// ---- durations from every source are bounded ----

#[tokio::test]
async fn a_control_header_duration_past_the_bound_is_a_400_not_a_panic() {
    let sluice = start(&format!("{FAST}[control]\nheaders = true\n")).await;
    for inject in [
        "slow_head; duration=18446744073709551615s",
        "stall; after_tokens=1; duration=18446744073709551615s",
        "http; status=429; retry_after=18446744073709551615s",
        "slow_head; duration=1e30s",
    ] {
        let request =
            with_headers(messages(&text_request()), &[("x-sluice-inject", inject.as_bytes())]);
        let received = send(sluice.addr, request).await;
        assert_eq!(received.status, 400, "{inject}");
        let message = received.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("at most 7 days"), "{inject}: {message}");
    }
    // Still serving.
    assert_eq!(send(sluice.addr, messages(&text_request())).await.status, 200);
}

#[tokio::test]
async fn a_runtime_override_past_the_bound_is_refused_and_serving_goes_on() {
    let sluice = start_with_admin(FAST).await;
    let body = r#"{"first_token_delay": "18446744073709551615s"}"#;
    let refused = send(sluice.admin, admin_request("PUT", "/faults", body)).await;
    assert_eq!(refused.status, 400);
    let message = refused.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("first_token_delay") && message.contains("at most 7 days"),
        "{message}"
    );
    assert_eq!(send(sluice.api, messages(&text_request())).await.status, 200);
}

#[test]
fn an_environment_duration_past_the_bound_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "").unwrap();
    for value in ["1e30", "18446744073709551615s"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("check")
            .arg(&file)
            .env("FIRST_TOKEN_DELAY", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("environment variable FIRST_TOKEN_DELAY")
                && stderr.contains("at most 7 days"),
            "{stderr}"
        );
    }
}

#[test]
fn a_worker_count_out_of_range_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "").unwrap();
    for value in ["0", "1025", "70000", "many"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("check")
            .arg(&file)
            .env("SLUICE_WORKERS", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("--workers"), "{value}: {stderr}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("check")
        .arg(&file)
        .env("SLUICE_WORKERS", "1024")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---- control headers ----

#[tokio::test]
async fn a_non_ascii_inject_header_is_a_400() {
    let sluice = start(&format!("{FAST}[control]\nheaders = true\n")).await;
    let request =
        with_headers(messages(&text_request()), &[("x-sluice-inject", "réinitialiser".as_bytes())]);
    let received = send(sluice.addr, request).await;
    assert_eq!(received.status, 400);
    let message = received.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("x-sluice-inject") && message.contains("ASCII"), "{message}");
}

#[tokio::test]
async fn control_headers_are_not_forwarded_so_a_chain_injects_once() {
    // What reaches an upstream.
    let echo = upstreams::echo_upstream().await;
    let proxy_sluice = start(&proxy(&echo.url(), "[control]\nheaders = true", "")).await;
    let request = with_headers(
        messages(&text_request()),
        &[
            ("x-sluice-profile", b"nope-but-unused"),
            ("x-sluice-inject", b"malformed; after_tokens=1"),
        ],
    );
    let request = {
        // The profile must exist on this sluice: ask for none, inject only.
        let mut request = request;
        request.headers_mut().remove("x-sluice-profile");
        request
    };
    let seen = send(proxy_sluice.addr, request).await.json();
    let headers = seen["headers"].as_object().unwrap();
    assert!(!headers.keys().any(|name| name.starts_with("x-sluice-")), "{headers:?}");

    // The README's chain: proxy in front of mock, control headers on in both.
    let mock = start(&format!("{FAST}[control]\nheaders = true\n")).await;
    let chain =
        start(&proxy(&format!("http://{}", mock.addr), "[control]\nheaders = true", "")).await;
    let request = with_headers(
        messages(&text_request()),
        &[("x-sluice-inject", b"stream_error; after_tokens=2")],
    );
    let body = String::from_utf8(send(chain.addr, request).await.body().to_vec()).unwrap();
    assert_eq!(body.matches("event: error").count(), 1, "{body}");
    assert_eq!(body.matches("event: content_block_delta").count(), 2, "{body}");
}

// ---- credentials ----

#[test]
fn upstream_credentials_reach_no_body_log_or_banner() {
    use std::io::{BufRead, BufReader, Read};
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let upstream = format!("http://user:hunter2@{refused}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["proxy", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--error-rate", "0", "--upstream", &upstream])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let support::Spawned { mut child, api, admin, .. } = support::spawn_ready(command);
    // The banner is whole once sluice is ready: it is printed first.
    let mut banner = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !banner.lines().any(|line| line.starts_with("  - Seed")) {
        assert!(stdout.read_line(&mut banner).unwrap() > 0, "the banner ended early: {banner}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (body, config) = runtime.block_on(async {
        let received = send(api, messages(&text_request())).await;
        assert_eq!(received.status, 502);
        let config = send(admin, admin_request("GET", "/config", "")).await.body();
        (received.body(), config)
    });
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let _ = child.wait();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let config = String::from_utf8(config.to_vec()).unwrap();
    assert!(body.contains("<redacted>@127.0.0.1"), "{body}");
    assert!(banner.contains("<redacted>@127.0.0.1"), "{banner}");
    assert!(logs.contains("upstream failed"), "the failure is logged: {logs}");
    for (what, text) in
        [("body", &body), ("banner", &banner), ("logs", &logs), ("/config", &config)]
    {
        assert!(!text.contains("hunter2"), "the password is in the {what}: {text}");
    }
}

// ---- upstreams that misbehave before the first token ----

#[tokio::test(start_paused = true)]
async fn an_upstream_that_sends_no_token_gets_its_head_released_after_the_hold_time() {
    let fake = upstreams::stalling_upstream(&[MESSAGE_START, PING]).await;
    let sluice = start(&proxy(&fake.url(), "", "head_hold_time = \"250ms\"")).await;
    let sent = Instant::now();
    let response = open(sluice.addr, messages(&text_request())).await;
    assert_eq!(sent.elapsed(), ms(250), "the head waited exactly the hold time");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(frame, format!("{MESSAGE_START}{PING}").as_bytes(), "what was held goes with it");
}

#[tokio::test]
async fn an_upstream_that_sends_only_pings_is_passed_through_not_buffered() {
    // 4,000 pings of 35 bytes each (140 KB), then nothing more for a long time.
    let mut chunks: Vec<(Duration, Vec<u8>)> =
        (0..4000).map(|_| (Duration::ZERO, PING.as_bytes().to_vec())).collect();
    chunks.push((Duration::from_secs(600), Vec::new()));
    let fake = upstreams::scripted_sse_upstream(chunks).await;
    let sluice = start(&proxy(&fake.url(), "", "head_hold_bytes = \"16KiB\"")).await;
    let tcp = TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        sender.send_request(messages(&text_request())),
    )
    .await
    .expect("the head came before the upstream ended")
    .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0;
    while received < 4000 * PING.len() {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame()).await.unwrap();
        received += frame.unwrap().unwrap().into_data().unwrap().len();
    }
    assert_eq!(received, 4000 * PING.len(), "every ping passed, byte for byte");
}

#[tokio::test]
async fn an_upstream_that_breaks_before_the_first_token_passes_on_what_it_sent() {
    let fake = upstreams::resetting_upstream(MESSAGE_START).await;
    let sluice = start(&proxy(&fake.url(), "", "")).await;
    let response = open(sluice.addr, messages(&text_request())).await;
    assert_eq!(response.status(), 200, "the upstream's head");
    let (received, outcome) = drain(response.into_body()).await;
    assert_eq!(received, MESSAGE_START.as_bytes(), "what arrived went out");
    assert!(outcome.is_err(), "then the stream breaks, as upstream");
}

#[tokio::test]
async fn an_upstream_101_is_answered_as_an_upstream_protocol_error() {
    let fake = upstreams::upgrading_upstream().await;
    let sluice = start(&proxy(&fake.url(), "", "")).await;
    let received =
        tokio::time::timeout(Duration::from_secs(10), send(sluice.addr, messages(&text_request())))
            .await
            .unwrap();
    assert_eq!(received.status, 502);
    assert_eq!(received.headers["x-sluice-error"], "upstream-request");
    let message = received.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("101 Switching Protocols"), "{message}");
}

// ---- metrics count every request ----

#[tokio::test]
async fn clients_that_leave_before_the_head_are_counted_and_open_from_admission() {
    let sluice = start_with_admin(
        &FAST.replace("first_token_delay = \"0ms\"", "first_token_delay = \"30s\""),
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let tcp = TcpStream::connect(sluice.api).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
        let connection = tokio::spawn(connection);
        let pending =
            tokio::spawn(async move { sender.send_request(messages(&text_request())).await });
        clients.push((connection, pending));
    }
    eventually("20 streams open while their heads are held", || async {
        (metric(sluice.admin, "sluice_open_streams").await == 20.0).then_some(())
    })
    .await;
    for (connection, pending) in clients {
        pending.abort();
        connection.abort();
    }
    let gone = r#"sluice_requests_total{route="none",mode="mock",outcome="client_gone"}"#;
    eventually("20 requests counted as client_gone", || async {
        (metric(sluice.admin, gone).await == 20.0).then_some(())
    })
    .await;
    eventually("no stream open", || async {
        (metric(sluice.admin, "sluice_open_streams").await == 0.0).then_some(())
    })
    .await;
}

// ---- tool schemas that would amplify ----

fn tool_request(input_schema: Value) -> Value {
    json!({"model": "m", "max_tokens": 64, "stream": true,
        "tools": [{"name": "t", "input_schema": input_schema}],
        "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplifying_tool_schemas_are_refused_and_a_stream_beside_them_stays_on_time() {
    let sluice = start(
        "error_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"5ms\"\ntokens_per_response = 5\n",
    )
    .await;
    let names: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    let fan_out: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.clone(), json!({"$ref": "#/$defs/Node"}))).collect();
    let hostile = [
        json!({"type": "object", "properties": {"ids": {"type": "array", "minItems": 100_000_000u64, "items": {"type": "integer"}}}}),
        json!({"$defs": {"Node": {"type": "object", "properties": fan_out, "required": names}}, "$ref": "#/$defs/Node"}),
        json!({"type": "object", "properties": {"note": {"type": "string", "minLength": 500_000}}}),
    ];
    let addr = sluice.addr;
    let attackers: Vec<_> = (0..30)
        .map(|i| {
            let schema = hostile[i % hostile.len()].clone();
            tokio::spawn(async move { send(addr, messages(&tool_request(schema))).await })
        })
        .collect();
    let canary = send(addr, messages(&text_request())).await;
    for attacker in attackers {
        let received = attacker.await.unwrap();
        assert_eq!(received.status, 400);
        let message = received.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with("tools.0.input_schema: an input for this schema would exceed"),
            "{message}"
        );
    }
    assert_eq!(canary.status, 200);
    // Real sockets on a shared machine, a debug build: 100 ms, within a loose
    // bound (scripts/bench.sh-style figures are in the closing note).
    // (Before the budget, the canary waited seconds behind the schema work.)
    assert!(canary.head_at >= ms(100) && canary.head_at < ms(1000), "{:?}", canary.head_at);
}

// ---- connections: timeouts, cap, fd limit ----

/// Reads until the peer closes; how long that took. At most 5 s.
async fn time_to_close(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => unreachable!("the connection was not closed within 5 s"),
        }
    }
}

const LIMITS: &str = "[limits]\nheader_read_timeout = \"200ms\"\nidle_timeout = \"400ms\"\n";

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_read_timeout() {
    let sluice = start(&format!("{FAST}{LIMITS}")).await;
    let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
    tcp.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let took = time_to_close(&mut tcp).await;
    assert!(took >= ms(200) && took < ms(2000), "{took:?}");
}

/// A request head past `[limits] max_request_head` (8 KiB by default) gets
/// 431; a larger bound lets the same head through.
#[tokio::test]
async fn a_request_head_past_max_request_head_gets_a_431() {
    let head = |size: usize| {
        format!("GET /__sluice/health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(size))
    };
    for (config, size, status) in [
        (String::from(FAST), 7 * 1024, "200"),
        (String::from(FAST), 9 * 1024, "431"),
        (format!("{FAST}[limits]\nmax_request_head = \"16KiB\"\n"), 9 * 1024, "200"),
    ] {
        let sluice = start(&config).await;
        let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
        tcp.write_all(head(size).as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).await.unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(line.starts_with(&format!("HTTP/1.1 {status}")), "{size} bytes: {line:?}");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let sluice = start(&format!("{FAST}{LIMITS}")).await;
    let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
    tcp.write_all(b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    // Idle now: not the header timeout (200 ms), the idle one (400 ms).
    let took = time_to_close(&mut tcp).await;
    assert!(took >= ms(390) && took < ms(2500), "{took:?}");
}

#[tokio::test]
async fn a_stream_waiting_longer_than_the_idle_timeout_is_not_cut() {
    let config = FAST.replace("first_token_delay = \"0ms\"", "first_token_delay = \"700ms\"");
    let sluice = start(&format!("{config}{LIMITS}")).await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.status, 200);
    assert!(received.head_at >= ms(700));
    assert_eq!(received.events().last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn past_max_connections_a_new_one_gets_a_503_and_a_freed_slot_is_reused() {
    let sluice = start(&format!("{FAST}[limits]\nmax_connections = 3\n")).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
        // A full request, so the connection is surely accepted and counted.
        tcp.write_all(b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        assert!(tcp.read(&mut buf).await.unwrap() > 0);
        held.push(tcp);
    }
    let mut extra = TcpStream::connect(sluice.addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    drop(held.pop());
    eventually("a freed slot serves again", || async {
        let mut tcp = TcpStream::connect(sluice.addr).await.ok()?;
        tcp.write_all(b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    })
    .await;
}

/// A refused client that already sent a POST with its body reads the whole
/// 503, not a TCP reset (closing a socket with its request unread resets it).
#[tokio::test]
async fn a_refused_post_gets_the_whole_503_not_a_reset() {
    let sluice = start(&format!("{FAST}[limits]\nmax_connections = 1\n")).await;
    let mut held = TcpStream::connect(sluice.addr).await.unwrap();
    held.write_all(b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(held.read(&mut buf).await.unwrap() > 0);
    let body = format!(
        "{{\"model\":\"m\",\"max_tokens\":8,\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(8000)
    );
    let post = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    for attempt in 0..5 {
        let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
        tcp.write_all(post.as_bytes()).await.unwrap();
        // Give the refusal time to be written and the socket closed.
        tokio::time::sleep(ms(50)).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
            .await
            .unwrap();
        assert!(read.is_ok(), "attempt {attempt}: {read:?} after {} bytes", answer.len());
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"), "{answer}");
        assert!(answer.ends_with("retry later\"}}"), "the whole body: {answer}");
    }
}

/// Starts the binary under `sh -c "ulimit ...; exec sluice ..."`, ready.
fn spawn_with_ulimit(ulimit: &str, config: &std::path::Path) -> support::Spawned {
    spawn_with_ulimit_and(ulimit, &[std::ffi::OsStr::new("--config"), config.as_os_str()])
}

/// The same, with `args` after `mock --listen ... --admin-listen ...`.
fn spawn_with_ulimit_and(ulimit: &str, args: &[&std::ffi::OsStr]) -> support::Spawned {
    let script = format!(
        "{ulimit}; exec \"$0\" mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \"$@\""
    );
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", &script, env!("CARGO_BIN_EXE_sluice")])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    support::spawn_ready(command)
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.toml");
    std::fs::write(&config, FAST).unwrap();
    let support::Spawned { mut child, .. } =
        spawn_with_ulimit("ulimit -S -n 100 && ulimit -H -n 4096", &config);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}

#[test]
fn at_the_fd_limit_half_heads_are_shed_and_new_clients_are_served() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.toml");
    std::fs::write(&config, format!("{FAST}[limits]\nheader_read_timeout = \"300ms\"\n")).unwrap();
    // 128 fds: sluice caps itself at 64 connections (it keeps 64 fds spare).
    let support::Spawned { mut child, api, .. } = spawn_with_ulimit("ulimit -n 128", &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let served_at = runtime.block_on(async {
        let mut half_heads = Vec::new();
        for _ in 0..200 {
            if let Ok(mut tcp) = TcpStream::connect(api).await {
                let _ = tcp.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n").await;
                half_heads.push(tcp);
            }
        }
        let started = Instant::now();
        eventually("a new client served while 200 half-heads were sent", || async {
            let mut tcp = TcpStream::connect(api).await.ok()?;
            let request = b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
            tcp.write_all(request).await.ok()?;
            let mut answer = Vec::new();
            let read = tcp.read_to_end(&mut answer);
            tokio::time::timeout(Duration::from_secs(2), read).await.ok()?.ok()?;
            answer.starts_with(b"HTTP/1.1 200").then_some(())
        })
        .await;
        drop(half_heads);
        started.elapsed()
    });
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let _ = child.wait();
    assert!(served_at < Duration::from_secs(5), "{served_at:?}");
    let warnings = logs.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 6, "rate-limited warnings, not a flood: {logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

/// At the open-file limit a new client still gets the documented 503, not a
/// connection left in the backlog: the spare fd is given up to answer it.
/// `prlimit` lowers the running process's limit to the fds it holds, so the
/// next `accept` fails with `EMFILE`.
///
/// The limit is set at the lowest free fd *number*. A hole below a
/// listener's spare (`/dev/null`) would leave the spare above the limit, so
/// that giving it up frees no usable slot (seen: limit 23, spare at fd 24;
/// under CPU load the test then failed 5 times in 25): idle connections
/// fill the holes first, as a process that reaches its limit by count has
/// its spare below it.
#[test]
fn at_emfile_a_waiting_client_is_answered_with_a_503() {
    use std::io::{Read, Write};
    // Flags, not a file: a watched file is opened now and then, and an fd
    // opened for a moment races with the limit this test sets.
    let flags = ["--error-rate", "0", "--first-token-delay", "0ms", "--token-interval", "0ms"];
    let flags: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
    let support::Spawned { mut child, api, .. } = spawn_with_ulimit_and("true", &flags);
    let pid = child.id().to_string();
    let ask = || {
        let mut tcp = std::net::TcpStream::connect(api).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let request = b"GET /__sluice/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        tcp.write_all(request).unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).map(|_| String::from_utf8_lossy(&answer).into_owned())
    };
    // Served once, so the accept loop (and its spare fd) is running.
    assert!(ask().unwrap().starts_with("HTTP/1.1 200"));
    // Wait until sluice has closed that connection's socket, so the count
    // below is of the fds it keeps.
    let port = format!("{:04X}", api.port());
    let connections = || {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
        let open = table.lines().skip(1).filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].rsplit(':').next().unwrap();
            local_port == port && fields[3] != "0A" && fields[9] != "0"
        });
        open.count()
    };
    let wait_until_closed = |fillers: usize| {
        let mut tries = 0;
        while connections() > fillers {
            tries += 1;
            assert!(tries < 1_000, "the served connection never closed");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // The limit bounds fd numbers, not their count: set it at the lowest
    // free number, so that no new fd can be made. A file sluice had open for
    // a moment when the fds were listed (the config watcher reads the file)
    // leaves a number free, and the client is then served: list again.
    let mut first = None;
    // Idle connections that fill the holes among sluice's fd numbers: a
    // limit at the lowest free number must sit above every fd it holds,
    // its listeners' spares included, as a process that reaches its limit
    // by count does.
    let mut fillers = Vec::new();
    for _ in 0..20 {
        wait_until_closed(fillers.len());
        let held: std::collections::BTreeSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        let highest = held.iter().copied().max().unwrap_or(0);
        let holes = (0..highest).filter(|fd| !held.contains(fd)).count();
        if holes > 0 {
            for _ in 0..holes {
                fillers.push(std::net::TcpStream::connect(api).unwrap());
            }
            // Until sluice has accepted them (each takes the lowest free number).
            let accepted =
                |want: usize| std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() >= want;
            let mut tries = 0;
            while !accepted(held.len() + holes) {
                tries += 1;
                assert!(tries < 1_000, "sluice never accepted the idle connections");
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let lowest_free = (0..).find(|fd| !held.contains(fd)).unwrap();
        let limit = format!("--nofile={lowest_free}:{lowest_free}");
        let lowered = std::process::Command::new("prlimit").args(["--pid", &pid, &limit]).status();
        assert!(lowered.unwrap().success());
        let answer = ask();
        if !answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")) {
            first = Some(answer);
            break;
        }
    }
    let answers = [first.expect("the limit was never reached in 20 tries"), ask()];
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let _ = child.wait();
    let [first, second] = answers.map(|answer| {
        answer.unwrap_or_else(|error| panic!("no answer at the limit: {error}\n{logs}"))
    });
    assert!(first.starts_with("HTTP/1.1 503"), "{first}\n{logs}");
    // The refusal's fd is free again once it closes: the next client is
    // served, or refused again if the spare was taken back first.
    assert!(second.starts_with("HTTP/1.1 200") || second.starts_with("HTTP/1.1 503"), "{second}");
    assert!(logs.contains("accept failed: at the open-file limit"), "{logs}");
}

/// A client IO that stops reading when told: the client grants a huge
/// window, then leaves every byte the server sends in the socket.
struct StopsReading {
    tcp: TcpStream,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for StopsReading {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StopsReading {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// HTTP/2 clients that grant a 2^31 window, open 200 fast streams each and
/// never read: what sluice holds for them is bounded per stream (64 KiB, not
/// hyper's 400 KiB), and it is given back to the system once they leave.
#[test]
fn non_reading_http2_clients_hold_a_bounded_buffer_that_is_returned_after() {
    const CLIENTS: usize = 4;
    const STREAMS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.toml");
    let endless = "error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\n\
        tokens_per_response = 100000\n";
    std::fs::write(&config, endless).unwrap();
    let support::Spawned { mut child, api, .. } = spawn_with_ulimit("true", &config);
    let pid = child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let before = rss_kib(pid);
    let (peak, after) = runtime.block_on(async {
        let mut held = Vec::new();
        for _ in 0..CLIENTS {
            let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let io = StopsReading {
                tcp: TcpStream::connect(api).await.unwrap(),
                stopped: stopped.clone(),
            };
            let window = (1 << 31) - 1;
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .initial_stream_window_size(window)
                    .initial_connection_window_size(window)
                    .handshake(hyper_util::rt::TokioIo::new(io))
                    .await
                    .unwrap();
            let driver = tokio::spawn(connection);
            let heads = (0..STREAMS).map(|_| {
                let mut sender = sender.clone();
                async move {
                    let mut request = messages(&json!({"model": "m", "max_tokens": 100_000,
                        "stream": true, "messages": [{"role": "user", "content": "hi"}]}));
                    *request.version_mut() = hyper::Version::HTTP_2;
                    *request.uri_mut() = format!("http://{api}/v1/messages").parse().unwrap();
                    sender.send_request(request).await.unwrap()
                }
            });
            let responses = futures_util::future::join_all(heads).await;
            stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            held.push((sender, driver, responses));
        }
        // Sample while the server writes into the stalled streams.
        let mut peak = 0;
        for _ in 0..20 {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(ms(100)).await;
        }
        for (_, driver, _) in &held {
            driver.abort();
        }
        drop(held);
        // jemalloc's background thread returns the pages after its decay
        // time (10 s); wait for it with a deadline.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut after = rss_kib(pid);
        while after > before + (peak - before) / 4 && Instant::now() < deadline {
            tokio::time::sleep(ms(250)).await;
            after = rss_kib(pid);
        }
        println!("returned in {:?}", Instant::now() + Duration::from_secs(60) - deadline);
        (peak, after)
    });
    let _ = child.kill();
    let _ = child.wait();
    let grew = peak.saturating_sub(before);
    println!("RSS before {before} KiB, peak {peak} KiB (+{grew}), after {after} KiB");
    // 64 KiB of events a stream costs about twice that (each event is a
    // frame of its own): 129 KiB a stream measured, 101 MiB for the 800.
    // hyper's default (400 KiB) measured 559 KiB a stream, 437 MiB.
    let bound = (CLIENTS * STREAMS * 160) as u64;
    assert!(grew <= bound, "grew {grew} KiB, bound {bound} KiB");
    assert!(grew >= 8 * 1024, "the clients were not held: grew {grew} KiB");
    assert!(
        after <= before + grew / 4,
        "not returned: before {before}, peak {peak}, after {after}"
    );
}

// ---- logs ----

/// Runs the binary with `args` until it is ready, then stops it; its stderr.
fn logs_of(args: &[&str]) -> String {
    use std::io::Read;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["mock", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "sluice=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let support::Spawned { mut child, .. } = support::spawn_ready(command);
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let _ = child.wait();
    logs
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal_and_json_on_request() {
    let text = logs_of(&[]);
    assert!(text.contains("shutting down"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI codes in logs written to a pipe: {text:?}");
    let json = logs_of(&["--log-format", "json"]);
    let lines: Vec<&str> = json.lines().collect();
    assert!(lines.len() >= 2, "{json}");
    for line in lines {
        let parsed: Value = serde_json::from_str(line).unwrap();
        assert!(parsed["level"].is_string() && parsed["fields"].is_object(), "{line}");
    }
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_408() {
    let sluice = start(&format!("{FAST}[limits]\nbody_read_timeout = \"300ms\"\n")).await;
    let mut tcp = TcpStream::connect(sluice.addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\"")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n =
        tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_read_timeout"), "{answer}");
    let took = started.elapsed();
    assert!(took >= ms(300) && took < ms(3000), "{took:?}");
}

const TOKEN: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";

#[tokio::test(start_paused = true)]
async fn an_upstream_that_goes_silent_mid_stream_is_broken_off_after_the_idle_timeout() {
    let fake = upstreams::stalling_upstream(&[MESSAGE_START, TOKEN]).await;
    let sluice = start(&proxy(&fake.url(), "", "stream_idle_timeout = \"5s\"")).await;
    let sent = Instant::now();
    let response = open(sluice.addr, messages(&text_request())).await;
    let (received, outcome) = drain(response.into_body()).await;
    assert_eq!(received, format!("{MESSAGE_START}{TOKEN}").as_bytes());
    assert!(outcome.is_err(), "a broken stream, not a clean end");
    assert_eq!(sent.elapsed(), Duration::from_secs(5), "5 s of silence, exactly");
}

#[tokio::test(start_paused = true)]
async fn time_the_shaper_holds_a_record_is_not_upstream_silence() {
    let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let fake = upstreams::steady_sse_upstream(&[MESSAGE_START, TOKEN, TOKEN, stop], ms(1)).await;
    let knobs = "first_token_delay = \"10s\"\ntoken_interval = \"8s\"";
    let sluice = start(&format!(
        "error_rate = 0\n{knobs}\n[upstream]\nurl = \"{}\"\nstream_idle_timeout = \"5s\"\n",
        fake.url()
    ))
    .await;
    let received = send(sluice.addr, messages(&text_request())).await;
    assert_eq!(received.body(), format!("{MESSAGE_START}{TOKEN}{TOKEN}{stop}").as_bytes());
}

/// Reads one HTTP/1.1 response head (and its short body) from `tcp`, or
/// `None` when the connection closes first.
async fn one_response(tcp: &mut TcpStream) -> Option<String> {
    let mut buffer = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        let read = tcp.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        got.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= head_end + 4 + length {
                return Some(text);
            }
        }
    }
}

/// 64 idle keep-alive connections (the admin's cap) do not lock the admin
/// port out: the longest-idle one is shed for a new one, which is answered.
#[tokio::test]
async fn idle_keep_alive_connections_do_not_lock_the_admin_port_out() {
    let sluice = start_with_admin("error_rate = 0").await;
    let mut idle = Vec::new();
    for _ in 0..64 {
        let mut tcp = TcpStream::connect(sluice.admin).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let answer = one_response(&mut tcp).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        idle.push(tcp); // kept open, idle
    }
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(sluice.admin).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), one_response(&mut tcp))
            .await
            .expect("answered, not left waiting");
        assert!(
            answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")),
            "a new admin client is served"
        );
    }
    // The ones shed were idle; they were closed, not cut mid-answer.
    let mut closed = 0;
    for tcp in &mut idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(ms(20), tcp.read(&mut byte)).await {
            closed += 1;
        }
    }
    assert!((1..=3).contains(&closed), "{closed} idle connections shed");
}

// ---- command line ----

fn help_of(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Each subcommand's `--help` lists its own flags: `cert` and `profile` none
/// of the server's, `check` its file one way only, and the fleet flags name
/// their variables.
#[test]
fn each_subcommands_help_shows_its_own_flags() {
    let cert = help_of(&["cert", "--help"]);
    assert!(cert.contains("--names") && cert.contains("--out"), "{cert}");
    for foreign in ["--tokens-per-response", "--upstream", "--listen", "--config"] {
        assert!(!cert.contains(foreign), "cert lists {foreign}: {cert}");
    }
    let profile = help_of(&["profile", "--help"]);
    assert!(!profile.contains("--listen") && !profile.contains("--config"), "{profile}");
    let check = help_of(&["check", "--help"]);
    assert!(check.contains("<FILE>") && !check.contains("--config"), "{check}");
    let health = help_of(&["health", "--help"]);
    assert!(health.contains("--listen") && !health.contains("--error-rate"), "{health}");
    for serving in [&["mock", "--help"][..], &["proxy", "--help"], &["--help"]] {
        let help = help_of(serving);
        assert!(help.contains("[env: SLUICE_REPLICA="), "{serving:?}: {help}");
        assert!(help.contains("[env: SLUICE_EPOCH="), "{serving:?}: {help}");
        assert!(help.contains("--first-token-delay"), "{serving:?}: {help}");
    }
}

/// A flag works before the subcommand and after it; after wins.
#[test]
fn serving_flags_go_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.toml");
    std::fs::write(&config, FAST).unwrap();
    let check = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env_remove("SLUICE_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let path = config.to_str().unwrap();
    let before = check(&["--error-rate", "0.25", "check", path]);
    let after = check(&["check", path, "--error-rate", "0.5"]);
    let both = check(&["--error-rate", "0.25", "check", path, "--error-rate", "0.75"]);
    let rate = |settings: &Value| settings["error_rate"].as_f64();
    assert_eq!((rate(&before), rate(&after), rate(&both)), (Some(0.25), Some(0.5), Some(0.75)));
}
