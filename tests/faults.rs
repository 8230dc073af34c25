//! Every fault kind, in mock mode and in proxy mode (in front of a zero-delay
//! `sluice mock`), over real sockets on the paused clock: which events the
//! client received, when, and how the stream ended.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

mod support;

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::{Sluice, messages, ms, start};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mock,
    Proxy,
}

/// How a body ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// A complete HTTP message (possibly without its final SSE event).
    Clean,
    /// The connection was reset.
    Reset,
    /// Some other transport error.
    Broken(String),
    /// Nothing more within an hour of (paused) time.
    StillOpen,
}

#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    headers: hyper::HeaderMap,
    head_at: Duration,
    /// (event name, raw data, arrival)
    events: Vec<(String, String, Duration)>,
    end: End,
    ended_at: Duration,
}

impl Outcome {
    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.0.as_str()).collect()
    }
    fn deltas(&self) -> usize {
        self.events.iter().filter(|e| e.0 == "content_block_delta").count()
    }
}

/// Starts sluice with `knobs` (and, in proxy mode, a zero-delay mock behind it).
async fn launch(mode: Mode, knobs: &str) -> (Sluice, Option<Sluice>) {
    let base = "seed = 9\ntokens_per_response = 5\n";
    match mode {
        Mode::Mock => (start(&format!("{base}{knobs}")).await, None),
        Mode::Proxy => {
            let upstream = start(&format!(
                "{base}error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n"
            ))
            .await;
            let proxy =
                start(&format!("{base}{knobs}\n[upstream]\nurl = \"http://{}\"\n", upstream.addr))
                    .await;
            (proxy, Some(upstream))
        }
    }
}

async fn stream_through(sluice: &Sluice) -> Outcome {
    let request = json!({"model": "m", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let tcp = TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let sent = Instant::now();
    let response = sender.send_request(messages(&request)).await.unwrap();
    let head_at = sent.elapsed();
    let (parts, mut body) = response.into_parts();
    let mut events = Vec::new();
    let mut pending = String::new();
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(3600), body.frame()).await {
            Err(_) => break End::StillOpen,
            Ok(None) => break End::Clean,
            Ok(Some(Err(error))) => {
                let reset =
                    std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                        .any(|e| {
                            e.downcast_ref::<std::io::Error>()
                                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
                        });
                break if reset { End::Reset } else { End::Broken(error.to_string()) };
            }
            Ok(Some(Ok(frame))) => {
                pending.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    let mut lines = block.trim_end().lines();
                    let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_string();
                    let data = lines
                        .next()
                        .unwrap_or_default()
                        .strip_prefix("data: ")
                        .unwrap_or_default()
                        .to_string();
                    events.push((name, data, sent.elapsed()));
                }
            }
        }
    };
    Outcome {
        status: parts.status,
        headers: parts.headers,
        head_at,
        events,
        end,
        ended_at: sent.elapsed(),
    }
}

fn always(fault: &str) -> String {
    format!("error_rate = 1.0\n[[faults]]\n{fault}\n")
}

const MODES: [Mode; 2] = [Mode::Mock, Mode::Proxy];

#[tokio::test(start_paused = true)]
async fn stream_error_sends_the_providers_error_event_after_n_tokens() {
    for mode in MODES {
        let (sluice, _upstream) =
            launch(mode, &always("kind = \"stream_error\"\nafter_tokens = 2")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.status, 200, "{mode:?}");
        assert_eq!(
            out.headers["x-sluice-fault"],
            "stream_error; after_tokens=2; error_type=overloaded_error"
        );
        assert_eq!(out.headers["x-sluice-route"], "default");
        assert_eq!(out.deltas(), 2, "{mode:?}");
        let (name, data, at) = out.events.last().unwrap();
        assert_eq!(name, "error", "{mode:?}");
        let error: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));
        assert_eq!(*at, ms(140), "{mode:?}: where the third token was due");
        assert_eq!(out.end, End::Clean, "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn reset_resets_the_connection_after_n_tokens() {
    for mode in MODES {
        let (sluice, _upstream) = launch(mode, &always("kind = \"reset\"\nafter_tokens = 3")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.headers["x-sluice-fault"], "reset; after_tokens=3");
        assert_eq!(out.deltas(), 3, "{mode:?}");
        assert_eq!(out.end, End::Reset, "{mode:?}: a TCP RST, not a clean close");
        assert_eq!(out.ended_at, ms(160), "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn truncate_closes_cleanly_without_the_final_event() {
    for mode in MODES {
        let (sluice, _upstream) =
            launch(mode, &always("kind = \"truncate\"\nafter_tokens = 4")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.deltas(), 4, "{mode:?}");
        assert!(!out.names().contains(&"message_stop"), "{mode:?}");
        assert!(!out.names().contains(&"message_delta"), "{mode:?}");
        assert_eq!(out.end, End::Clean, "{mode:?}");
        assert_eq!(out.ended_at, ms(180), "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_turn_early_with_its_stop_reason() {
    for mode in MODES {
        let (sluice, _upstream) = launch(mode, &always("kind = \"stop\"\nafter_tokens = 3")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.status, 200, "{mode:?}");
        assert_eq!(out.headers["x-sluice-fault"], "stop; after_tokens=3");
        assert_eq!(out.deltas(), 3, "{mode:?}");
        let names = out.names();
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"], "{mode:?}");
        let (_, data, at) = &out.events[out.events.len() - 2];
        let delta: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "refusal", "{mode:?}");
        assert_eq!(delta["usage"]["output_tokens"], 3, "{mode:?}");
        assert_eq!(*at, ms(160), "{mode:?}: where the fourth token was due");
        assert_eq!(out.end, End::Clean, "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn stall_stops_sending_and_holds_the_connection() {
    for mode in MODES {
        let (sluice, _upstream) =
            launch(mode, &always("kind = \"stall\"\nafter_tokens = 1\nduration = \"30s\"")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.deltas(), 1, "{mode:?}");
        assert_eq!(out.events.last().unwrap().2, ms(100));
        assert_eq!(out.end, End::Clean, "{mode:?}: closed after the stall");
        assert_eq!(out.ended_at, ms(120 + 30_000), "{mode:?}");

        let (sluice, _upstream) = launch(mode, &always("kind = \"stall\"\nafter_tokens = 1")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.deltas(), 1, "{mode:?}");
        assert_eq!(out.end, End::StillOpen, "{mode:?}: open until the client leaves");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_head_holds_everything_back() {
    for mode in MODES {
        let (sluice, _upstream) =
            launch(mode, &always("kind = \"slow_head\"\nduration = \"2s\"")).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.headers["x-sluice-fault"], "slow_head; duration=2s");
        assert_eq!(out.head_at, ms(2100), "{mode:?}");
        let deltas: Vec<Duration> =
            out.events.iter().filter(|e| e.0 == "content_block_delta").map(|e| e.2).collect();
        assert_eq!(deltas, [2100, 2120, 2140, 2160, 2180].map(ms), "{mode:?}");
        assert_eq!(out.names().last(), Some(&"message_stop"));
    }
}

#[tokio::test(start_paused = true)]
async fn malformed_corrupts_one_token_and_the_stream_goes_on() {
    for mode in MODES {
        let (sluice, _upstream) =
            launch(mode, &always("kind = \"malformed\"\nafter_tokens = 1")).await;
        let out = stream_through(&sluice).await;
        let deltas: Vec<&(String, String, Duration)> =
            out.events.iter().filter(|e| e.0 == "content_block_delta").collect();
        assert_eq!(deltas.len(), 5, "{mode:?}");
        let parses = |data: &str| serde_json::from_str::<serde_json::Value>(data).is_ok();
        let broken: Vec<usize> =
            deltas.iter().enumerate().filter(|(_, e)| !parses(&e.1)).map(|(i, _)| i).collect();
        assert_eq!(broken, [1], "{mode:?}: only the second token is corrupt");
        assert_eq!(out.names().last(), Some(&"message_stop"), "{mode:?}");
        assert_eq!(out.end, End::Clean);
    }
}

#[tokio::test(start_paused = true)]
async fn http_faults_carry_retry_and_rate_limit_headers() {
    for mode in MODES {
        let fault = "kind = \"http\"\nstatus = 429\nretry_after = \"3s\"\nshould_retry = true\nrate_limit_headers = true";
        let (sluice, _upstream) = launch(mode, &always(fault)).await;
        let out = stream_through(&sluice).await;
        assert_eq!(out.status, 429, "{mode:?}");
        assert_eq!(out.head_at, ms(0), "an HTTP error is answered at once");
        let h = &out.headers;
        assert_eq!(
            (&h["retry-after"], &h["retry-after-ms"], &h["x-should-retry"]),
            (&"3".parse().unwrap(), &"3000".parse().unwrap(), &"true".parse().unwrap())
        );
        assert_eq!(h["anthropic-ratelimit-requests-remaining"], "0");
    }
}

#[tokio::test(start_paused = true)]
async fn schedules_pick_exactly_the_requests_they_name() {
    for mode in MODES {
        let faults = "error_rate = 0\n[[faults]]\nkind = \"http\"\nstatus = 529\nfirst_requests = 2\n\
                      [[faults]]\nkind = \"http\"\nstatus = 500\nevery = 3\n";
        let (sluice, _upstream) = launch(mode, faults).await;
        let mut statuses = Vec::new();
        for _ in 0..7 {
            statuses.push(stream_through(&sluice).await.status.as_u16());
        }
        assert_eq!(statuses, [529, 529, 500, 200, 200, 500, 200], "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_window_fails_requests_only_inside_it() {
    let faults = "error_rate = 0\n[[faults]]\nkind = \"http\"\nstatus = 503\nfrom = \"30s\"\nuntil = \"40s\"\n";
    let (sluice, _upstream) = launch(Mode::Mock, faults).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    for at in [0, 29, 30, 35, 39, 40, 50] {
        tokio::time::sleep_until(started + Duration::from_secs(at)).await;
        seen.push((at, stream_through(&sluice).await.status.as_u16()));
    }
    assert_eq!(seen, [(0, 200), (29, 200), (30, 503), (35, 503), (39, 503), (40, 200), (50, 200)]);
}

const SCENARIOS: &str = r#"
error_rate = 0

[profiles.broken]
[[profiles.broken.faults]]
kind = "truncate"
after_tokens = 1
first_requests = 1000

[profiles.slow]
first_token_delay = "1s"

[[routes]]
name = "broken"
headers = { x-scenario = "broken" }
profile = "broken"

[[routes]]
name = "tools"
has_tools = true
profile = "slow"

[control]
headers = true
max_active = 1
"#;

async fn send_with(sluice: &Sluice, headers: &[(&str, &str)], tools: bool) -> Outcome {
    let mut body = json!({"model": "m", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    if tools {
        body["tools"] = json!([{"name": "t", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]);
    }
    let mut request = messages(&body);
    for (name, value) in headers {
        request.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let tcp = TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let sent = Instant::now();
    let response = sender.send_request(request).await.unwrap();
    let head_at = sent.elapsed();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let events = String::from_utf8_lossy(&bytes)
        .split("\n\n")
        .filter_map(|block| {
            block
                .lines()
                .next()?
                .strip_prefix("event: ")
                .map(|n| (n.to_string(), String::new(), head_at))
        })
        .collect();
    Outcome {
        status: parts.status,
        headers: parts.headers,
        head_at,
        events,
        end: End::Clean,
        ended_at: sent.elapsed(),
    }
}

#[tokio::test(start_paused = true)]
async fn routes_pick_profiles_by_header_and_body_and_name_themselves() {
    for mode in MODES {
        let (sluice, _upstream) = launch(mode, SCENARIOS).await;
        let broken = send_with(&sluice, &[("x-scenario", "broken")], false).await;
        assert_eq!(broken.headers["x-sluice-route"], "broken", "{mode:?}");
        assert_eq!(broken.headers["x-sluice-fault"], "truncate; after_tokens=1");
        assert!(!broken.names().contains(&"message_stop"));

        let tools = send_with(&sluice, &[], true).await;
        assert_eq!(tools.headers["x-sluice-route"], "tools", "{mode:?}");
        assert_eq!(tools.head_at, ms(1500), "{mode:?}: 1 s first token + 500 ms tool call");
        assert!(tools.headers.get("x-sluice-fault").is_none());

        let plain = send_with(&sluice, &[], false).await;
        assert_eq!(plain.headers["x-sluice-route"], "default", "{mode:?}");
        assert_eq!(plain.head_at, ms(100));
    }
}

#[tokio::test(start_paused = true)]
async fn control_headers_pick_a_profile_or_force_a_fault() {
    for mode in MODES {
        let (sluice, _upstream) = launch(mode, SCENARIOS).await;
        let slow = send_with(&sluice, &[("x-sluice-profile", "slow")], false).await;
        assert_eq!(slow.head_at, ms(1000), "{mode:?}");

        let forced = send_with(&sluice, &[("x-sluice-inject", "http; status=418")], false).await;
        assert_eq!(forced.status, 418, "{mode:?}");
        assert_eq!(forced.headers["x-sluice-fault"], "http; status=418");

        let bad = send_with(&sluice, &[("x-sluice-inject", "http; status=99")], false).await;
        assert_eq!(bad.status, 400, "{mode:?}: a bad control header is refused, naming it");
        let unknown = send_with(&sluice, &[("x-sluice-profile", "nope")], false).await;
        assert_eq!(unknown.status, 400);
    }
}

#[tokio::test(start_paused = true)]
async fn control_headers_are_ignored_unless_enabled() {
    let (sluice, _upstream) = launch(Mode::Mock, "error_rate = 0").await;
    let out = send_with(
        &sluice,
        &[("x-sluice-inject", "http; status=500"), ("x-sluice-profile", "nope")],
        false,
    )
    .await;
    assert_eq!(out.status, 200);
}
