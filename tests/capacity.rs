//! `[capacity]` over real sockets on the paused clock: requests served in
//! waves of `max_concurrent`, the queue wait histogram, shedding in each
//! API's words, delays that grow with the requests in service, and prefill.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers panic on failure")]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{Received, drain, metric, ms, open, send, start_with_admin};
use tokio::time::Instant;

fn post(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-test")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn message(max_tokens: u64) -> Value {
    json!({"model": "claude-test", "max_tokens": max_tokens, "stream": true,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// Waits (polling the admin's gauge, without sleeping) until `series` is `value`.
async fn until_metric(admin: std::net::SocketAddr, series: &str, value: f64) {
    for _ in 0..10_000 {
        if metric(admin, series).await == value {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{series} never reached {value}");
}

/// The arrival of each content delta of a Messages stream.
fn delta_times(received: &Received) -> Vec<Duration> {
    received
        .events()
        .into_iter()
        .filter(|(name, _, _)| name == "content_block_delta")
        .map(|(_, _, at)| at)
        .collect()
}

fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|pair| pair[1] - pair[0]).collect()
}

const QUEUED: &str = "sluice_capacity_queued{route=\"default\"}";
const IN_SERVICE: &str = "sluice_capacity_in_service{route=\"default\"}";

#[tokio::test(start_paused = true)]
async fn two_hundred_requests_on_fifty_places_start_in_four_waves_and_the_next_is_shed_in_each_api()
{
    // Each request is in service for 1 s + 4 × 100 ms = 1.4 s.
    let toml = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"1s\"\ntoken_interval = \"100ms\"\n\
                tokens_per_response = 5\n[capacity]\nmax_concurrent = 50\nmax_queue = 150\n";
    let sluice = start_with_admin(toml).await;
    let start = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let api = sluice.api;
        requests.spawn(async move {
            // The head goes out with the first token.
            let response = open(api, post("/v1/messages", &message(64))).await;
            let first_token = start.elapsed();
            assert_eq!(response.status(), 200);
            drain(response.into_body()).await.1.unwrap();
            first_token
        });
    }
    until_metric(sluice.admin, QUEUED, 150.0).await;
    assert_eq!(metric(sluice.admin, IN_SERVICE).await, 50.0);
    let census = support::admin_json(sluice.admin, "GET", "/capacity", "").await.1;
    assert_eq!(census, json!({"routes": [{"route": "default", "in_service": 50, "queued": 150}]}));
    // The 201st, in each API: the queue is full.
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let bedrock = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
    let chat = json!({"model": "gpt-test", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let shed = [
        ("/v1/messages", message(64), 529, "anthropic"),
        ("/v1/chat/completions", chat, 503, "openai-chat"),
        ("/v1beta/models/gemini-test:streamGenerateContent", gemini, 503, "gemini"),
        ("/model/amazon.nova-test/converse-stream", bedrock, 429, "bedrock"),
    ];
    for (path, body, status, api) in shed {
        let refused = send(sluice.api, post(path, &body)).await;
        assert_eq!(refused.status, status, "{api}");
        assert_eq!(refused.header("x-sluice-capacity"), "shed", "{api}");
        assert_eq!(refused.header("x-sluice-fault"), "", "{api}: not a fault");
        let error = refused.json();
        match api {
            "anthropic" => assert_eq!(error["error"]["type"], "overloaded_error"),
            "openai-chat" => assert_eq!(error["error"]["type"], "server_error", "{error}"),
            "gemini" => assert_eq!(error["error"]["status"], "UNAVAILABLE"),
            _ => assert!(refused.header("x-amzn-errortype").starts_with("ThrottlingException:")),
        }
        let series = format!("sluice_capacity_shed_total{{route=\"default\",api=\"{api}\"}}");
        assert_eq!(metric(sluice.admin, &series).await, 1.0);
    }
    let mut waves = BTreeMap::<Duration, usize>::new();
    while let Some(first_token) = requests.join_next().await {
        *waves.entry(first_token.unwrap()).or_default() += 1;
    }
    let expected = BTreeMap::from([(ms(1000), 50), (ms(2400), 50), (ms(3800), 50), (ms(5200), 50)]);
    assert_eq!(waves, expected, "each wave starts as the one before it ends");
    // The queue wait histogram: 50 at once, 50 after 1.4 s, 2.8 s and 4.2 s.
    let bucket = |le: &str| format!("sluice_capacity_queue_wait_seconds_bucket{{le=\"{le}\"}}");
    for (le, count) in [("0.001", 50.0), ("1.024", 50.0), ("2.048", 100.0), ("4.096", 150.0)] {
        assert_eq!(metric(sluice.admin, &bucket(le)).await, count, "le {le}");
    }
    assert_eq!(metric(sluice.admin, &bucket("8.192")).await, 200.0);
    let sum = metric(sluice.admin, "sluice_capacity_queue_wait_seconds_sum").await;
    assert!((sum - 50.0 * (1.4 + 2.8 + 4.2)).abs() < 1e-6, "sum {sum}");
    let shed = "sluice_requests_total{route=\"default\",mode=\"mock\",outcome=\"shed\"}";
    assert_eq!(metric(sluice.admin, shed).await, 4.0);
    assert_eq!(metric(sluice.admin, IN_SERVICE).await, 0.0);
}

#[tokio::test(start_paused = true)]
async fn the_token_interval_of_the_fiftieth_stream_in_service_is_three_times_the_idle_one() {
    let toml = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\n\
                tokens_per_response = 1000\n[capacity]\nmax_concurrent = 50\nfactor_at_capacity = 3\n";
    let sluice = start_with_admin(toml).await;
    // Alone: the configured delays.
    let idle = send(sluice.api, post("/v1/messages", &message(6))).await;
    let times = delta_times(&idle);
    assert_eq!(times[0], ms(100));
    assert_eq!(gaps(&times), vec![ms(20); 5]);
    // With 49 long streams in service, the 50th's delays are 3 times as long.
    let mut background = Vec::new();
    for _ in 0..49 {
        background.push(open(sluice.api, post("/v1/messages", &message(1000))).await);
    }
    until_metric(sluice.admin, IN_SERVICE, 49.0).await;
    let loaded = send(sluice.api, post("/v1/messages", &message(6))).await;
    let times = delta_times(&loaded);
    assert_eq!(times[0], ms(300));
    assert_eq!(gaps(&times), vec![ms(60); 5]);
    drop(background);
}

#[tokio::test(start_paused = true)]
async fn a_long_prompt_waits_its_prefill_before_the_first_token() {
    let toml = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"100ms\"\ntoken_interval = \"20ms\"\n\
                tokens_per_response = 3\n[capacity]\nprefill_per_1k_tokens = \"1s\"\n";
    let sluice = start_with_admin(toml).await;
    let short = message(64);
    let mut long = message(64);
    long["messages"][0]["content"] = json!("word ".repeat(8000));
    for (body, name) in [(short, "short"), (long, "long")] {
        // The estimate is a token per 4 bytes of the body; each takes 1 ms.
        let tokens = u64::try_from(body.to_string().len() / 4).unwrap();
        let prefill = ms(tokens);
        let received = send(sluice.api, post("/v1/messages", &body)).await;
        assert_eq!(delta_times(&received)[0], ms(100) + prefill, "{name}: {tokens} tokens");
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_that_waits_its_queue_timeout_is_shed_and_a_client_that_leaves_frees_its_place() {
    let toml = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"10s\"\ntoken_interval = \"0ms\"\n\
                tokens_per_response = 1\n[capacity]\nmax_concurrent = 1\nmax_queue = 5\n\
                queue_timeout = \"2s\"\nshed = \"rate_limited\"\n";
    let sluice = start_with_admin(toml).await;
    let api = sluice.api;
    let first = tokio::spawn(async move { send(api, post("/v1/messages", &message(8))).await });
    until_metric(sluice.admin, IN_SERVICE, 1.0).await;
    // A client that gives up while queued leaves the queue.
    let leaver = tokio::spawn(async move { open(api, post("/v1/messages", &message(8))).await });
    until_metric(sluice.admin, QUEUED, 1.0).await;
    leaver.abort();
    until_metric(sluice.admin, QUEUED, 0.0).await;
    // One that stays is shed after 2 s, with a 429.
    let sent = Instant::now();
    let waited = send(api, post("/v1/messages", &message(8))).await;
    assert_eq!(sent.elapsed(), ms(2000));
    assert_eq!(waited.status, 429);
    assert_eq!(waited.json()["error"]["type"], "rate_limit_error");
    assert_eq!(waited.header("x-sluice-capacity"), "shed");
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(metric(sluice.admin, IN_SERVICE).await, 0.0);
}

/// On real time: on the paused clock, the proxy's wait on its upstream's
/// socket lets the clock jump to its idle timeout.
#[tokio::test]
async fn a_proxy_serves_one_stream_at_a_time_adds_its_prefill_and_passes_the_bytes_unchanged() {
    const RECORDS: [&str; 4] = [
        "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ];
    let fake = support::upstreams::steady_sse_upstream(&RECORDS, ms(10)).await;
    let knobs = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\n\
                 [capacity]\nmax_concurrent = 1\nprefill_per_1k_tokens = \"10s\"\n";
    let sluice = support::start(&support::proxy_config(&fake.url(), knobs, "")).await;
    let body = support::text_request();
    // 10 ms a token of the body's estimate (a token per 4 bytes).
    let prefill = ms(10 * u64::try_from(body.to_string().len() / 4).unwrap());
    let timed = |received: Received| {
        let ended = received.chunks.last().map(|(_, at)| *at).unwrap();
        (received, ended)
    };
    let (one, two) =
        tokio::join!(async { timed(send(sluice.addr, support::messages(&body)).await) }, async {
            timed(send(sluice.addr, support::messages(&body)).await)
        });
    let (first, second) = if one.0.head_at <= two.0.head_at { (one, two) } else { (two, one) };
    // The upstream's first token comes 20 ms after it is asked; the prefill
    // is added to it. The second is asked only once the first has ended.
    assert!(first.0.head_at >= ms(20) + prefill, "first head at {:?}", first.0.head_at);
    assert!(
        second.0.head_at >= first.1 + ms(20) + prefill,
        "second head at {:?}, first ended at {:?}",
        second.0.head_at,
        first.1
    );
    assert_eq!(fake.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    for (received, _) in [first, second] {
        assert_eq!(received.body(), RECORDS.concat().as_bytes(), "the upstream's bytes");
    }
}
