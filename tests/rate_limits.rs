//! `[rate_limits]` over real sockets on the paused clock: exact admissions
//! and headers in both dialects, output settled at the end of a reply, the
//! proxy answering over-limit requests itself, runtime changes, and the
//! verdict on patient and impatient clients.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers panic on failure")]

mod support;

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{metric, ms, send, start_with_admin, upstreams};

/// No delays, so the paused clock moves only when a test sleeps.
const INSTANT: &str = "error_rate = 0\nseed = 1\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n";

fn request(path: &str, key: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn message(stream: bool, max_tokens: u64) -> Value {
    json!({"model": "claude-test", "max_tokens": max_tokens, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn admin_json(admin: std::net::SocketAddr, method: &str, path: &str, body: &str) -> Value {
    support::admin_json(admin, method, path, body).await.1
}

/// The verdict on `key` in `GET /rate-limits`.
async fn verdict_of(admin: std::net::SocketAddr, key: &str) -> Value {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let label =
        format!("key:{}", digest[..6].iter().map(|b| format!("{b:02x}")).collect::<String>());
    let report = admin_json(admin, "GET", "/rate-limits", "").await;
    report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("{label} not in {report}"))
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_ten_then_429s_with_exact_headers_until_the_bucket_refills() {
    let toml = format!("{INSTANT}[rate_limits]\nrequests_per_minute = 60\nburst = 10\n");
    let sluice = start_with_admin(&toml).await;
    for k in 0..10u64 {
        let ok = send(sluice.api, request("/v1/messages", "sk-a", &message(false, 64))).await;
        assert_eq!(ok.status, 200, "request {k} of the burst");
        assert_eq!(ok.header("anthropic-ratelimit-requests-limit"), "60");
        assert_eq!(ok.header("anthropic-ratelimit-requests-remaining"), (9 - k).to_string());
        assert_eq!(ok.header("retry-after"), "");
        // All four families, as the API sends them; unconfigured ones never run out.
        for family in ["tokens", "input-tokens", "output-tokens"] {
            let limit = format!("anthropic-ratelimit-{family}-limit");
            let remaining = format!("anthropic-ratelimit-{family}-remaining");
            assert_eq!(ok.header(&limit), "4294967295", "{family}");
            assert_eq!(ok.header(&remaining), "4294967295", "{family}");
            assert!(ok.header(&format!("anthropic-ratelimit-{family}-reset")).ends_with('Z'));
        }
        assert_eq!(ok.header("x-sluice-rate-limited"), "");
    }
    let wall = SystemTime::now();
    let refused = send(sluice.api, request("/v1/messages", "sk-a", &message(false, 64))).await;
    assert_eq!(refused.status, 429);
    // sluice's limiter refused it, and says which bucket: not an injected fault.
    assert_eq!(refused.header("x-sluice-rate-limited"), "requests");
    assert_eq!(refused.header("x-sluice-fault"), "");
    assert_eq!(refused.header("retry-after"), "1");
    assert_eq!(refused.header("retry-after-ms"), "1000");
    assert_eq!(refused.header("x-should-retry"), "true");
    assert_eq!(refused.header("anthropic-ratelimit-requests-remaining"), "0");
    // Full again in 10 s (wall clock, rounded up to the second).
    let reset =
        humantime::parse_rfc3339(refused.header("anthropic-ratelimit-requests-reset")).unwrap();
    let in_secs = reset.duration_since(wall).unwrap_or_default().as_secs_f64();
    assert!((9.0..=11.5).contains(&in_secs), "reset in {in_secs} s");
    let body = refused.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("60 requests per minute"));
    assert_eq!(refused.header("request-id"), body["request_id"].as_str().unwrap());
    // Another key has its own bucket.
    let other = send(sluice.api, request("/v1/messages", "sk-b", &message(false, 64))).await;
    assert_eq!(other.status, 200);
    // 999 ms later: still refused, 1 ms to go; at 1 s: admitted.
    tokio::time::sleep(ms(999)).await;
    let early = send(sluice.api, request("/v1/messages", "sk-a", &message(false, 64))).await;
    assert_eq!(early.header("retry-after-ms"), "1");
    assert_eq!(early.header("x-sluice-client-verdict"), "early_retry");
    tokio::time::sleep(ms(1)).await;
    let again = send(sluice.api, request("/v1/messages", "sk-a", &message(true, 64))).await;
    assert_eq!(again.status, 200, "a streamed answer carries the headers too");
    assert_eq!(again.header("anthropic-ratelimit-requests-remaining"), "0");
    assert_eq!(metric(sluice.admin, "sluice_rate_limited_total{limit=\"requests\"}").await, 2.0);
    let outcome = "sluice_requests_total{route=\"default\",mode=\"mock\",outcome=\"rate_limited\"}";
    assert_eq!(metric(sluice.admin, outcome).await, 2.0);
}

#[tokio::test(start_paused = true)]
async fn openai_gets_its_headers_and_a_429_that_names_the_limit_the_use_and_the_wait() {
    let toml = format!(
        "{INSTANT}[rate_limits]\nrequests_per_minute = 120\nburst = 2\ntokens_per_minute = 100000\n"
    );
    let sluice = start_with_admin(&toml).await;
    let chat = json!({"model": "gpt-test", "max_completion_tokens": 100,
                      "messages": [{"role": "user", "content": "hi"}]});
    let ok = send(sluice.api, request("/v1/chat/completions", "sk-o", &chat)).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-ratelimit-limit-requests"), "120");
    assert_eq!(ok.header("x-ratelimit-remaining-requests"), "1");
    assert_eq!(ok.header("x-ratelimit-reset-requests"), "500ms");
    assert_eq!(ok.header("x-ratelimit-limit-tokens"), "100000");
    let used = 100_000 - ok.header("x-ratelimit-remaining-tokens").parse::<u64>().unwrap();
    let completion = ok.json()["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(used > 100, "input and max_completion_tokens charged: {used}");
    assert!(ok.header("anthropic-ratelimit-requests-limit").is_empty());
    send(sluice.api, request("/v1/chat/completions", "sk-o", &chat)).await;
    let refused = send(sluice.api, request("/v1/chat/completions", "sk-o", &chat)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after-ms"), "500");
    let error = &refused.json()["error"];
    assert_eq!(error["type"], "requests");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(
        error["message"],
        "Rate limit reached for gpt-test in sluice on requests per min (RPM): Limit 120, Used 2, \
         Requested 1. Please try again in 500ms."
    );
    // The first two replies settled their output to what they produced.
    tokio::time::sleep(ms(500)).await;
    let settled = send(sluice.api, request("/v1/chat/completions", "sk-o", &chat)).await;
    let remaining: u64 = settled.header("x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(100_000 - remaining < 3 * used, "settled: {remaining} left after 3 of {used} at most");
    assert!(completion < 100);
}

#[tokio::test(start_paused = true)]
async fn output_tokens_are_held_at_max_tokens_until_the_reply_ends() {
    // 50 tokens a reply, a token every 20 ms: a reply takes about a second.
    let toml = "error_rate = 0\nseed = 1\nfirst_token_delay = \"0ms\"\ntoken_interval = \"20ms\"\n\
                [rate_limits]\noutput_tokens_per_minute = 900\n";
    let sluice = start_with_admin(toml).await;
    let api = sluice.api;
    let first = tokio::spawn(async move {
        send(api, request("/v1/messages", "sk-t", &message(true, 500))).await
    });
    tokio::time::sleep(ms(100)).await;
    // While the first streams, 500 of 900 are held: a second 500 waits
    // (15 tokens a second came back meanwhile).
    let refused = send(api, request("/v1/messages", "sk-t", &message(true, 500))).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("anthropic-ratelimit-output-tokens-remaining"), "401");
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("anthropic-ratelimit-output-tokens-remaining"), "400");
    // Once it ended, the 450 of its 500 it did not produce came back.
    let second = send(api, request("/v1/messages", "sk-t", &message(true, 500))).await;
    assert_eq!(second.status, 200);
    let left: u64 = second.header("anthropic-ratelimit-output-tokens-remaining").parse().unwrap();
    assert!((350..=400).contains(&left), "{left}");
    // More than the bucket holds can never be admitted: no retry-after.
    let never = send(api, request("/v1/messages", "sk-t", &message(false, 901))).await;
    assert_eq!(never.status, 429);
    assert_eq!(never.header("x-should-retry"), "false");
    assert_eq!(never.header("retry-after"), "");
}

#[tokio::test(start_paused = true)]
async fn the_proxy_answers_an_over_limit_request_itself_and_replaces_the_upstreams_headers() {
    let upstream = upstreams::json_upstream(200, r#"{"id":"msg_1","type":"message"}"#).await;
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\n[upstream]\nurl = \"{}\"\n\
         [rate_limits]\nrequests_per_minute = 1\nkey = \"route\"\n",
        upstream.url()
    );
    let sluice = start_with_admin(&toml).await;
    let ok = send(sluice.api, request("/v1/messages", "sk-1", &message(false, 10))).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("anthropic-ratelimit-requests-limit"), "1");
    // `route`: another key shares the route's bucket.
    let refused = send(sluice.api, request("/v1/messages", "sk-2", &message(false, 10))).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "60");
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 1, "never sent");
}

#[tokio::test(start_paused = true)]
async fn an_upstreams_rate_limit_headers_pass_through_when_sluice_limits_nothing() {
    let upstream = upstreams::json_upstream(200, r#"{"id":"msg_1"}"#).await;
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\n[upstream]\nurl = \"{}\"\n",
        upstream.url()
    );
    let plain = start_with_admin(&toml).await;
    let passed = send(plain.api, request("/v1/messages", "sk-1", &message(false, 10))).await;
    assert_eq!(passed.header("anthropic-ratelimit-requests-limit"), "4000");
    assert_eq!(passed.header("anthropic-ratelimit-tokens-limit"), "400000");
    let limited =
        start_with_admin(&format!("{toml}[rate_limits]\nrequests_per_minute = 5\n")).await;
    let replaced = send(limited.api, request("/v1/messages", "sk-1", &message(false, 10))).await;
    assert_eq!(replaced.header("anthropic-ratelimit-requests-limit"), "5");
    // A family sluice does not limit keeps the upstream's figures.
    assert_eq!(replaced.header("anthropic-ratelimit-tokens-limit"), "400000");
    // One the upstream did not report either reports no limit.
    assert_eq!(replaced.header("anthropic-ratelimit-input-tokens-limit"), "4294967295");
}

#[tokio::test(start_paused = true)]
async fn limits_change_at_runtime_and_the_config_shows_them() {
    let sluice = start_with_admin(INSTANT).await;
    let free = send(sluice.api, request("/v1/messages", "sk-r", &message(false, 10))).await;
    assert_eq!(free.header("anthropic-ratelimit-requests-limit"), "", "no limits, no headers");
    let put = r#"{"rate_limits": {"requests_per_minute": 2, "burst": 1}}"#;
    assert_eq!(admin_json(sluice.admin, "PUT", "/faults", put).await["result"], "applied");
    let config = admin_json(sluice.admin, "GET", "/config", "").await;
    assert_eq!(
        config["rate_limits"],
        json!({"requests_per_minute": 2, "burst": 1, "key": "api_key"})
    );
    let first = send(sluice.api, request("/v1/messages", "sk-r", &message(false, 10))).await;
    assert_eq!(first.status, 200);
    let second = send(sluice.api, request("/v1/messages", "sk-r", &message(false, 10))).await;
    assert_eq!((second.status.as_u16(), second.header("retry-after")), (429, "30"));
    let report = admin_json(sluice.admin, "GET", "/rate-limits", "").await;
    assert_eq!(report["buckets"][0]["route"], "default");
    assert_eq!(report["buckets"][0]["requests"]["remaining"], 0);
    assert_eq!(report["buckets"][0]["requests"]["full_in_ms"], 30_000);
    // Clearing the limits and the buckets frees the key.
    admin_json(sluice.admin, "DELETE", "/faults", "").await;
    admin_json(sluice.admin, "DELETE", "/rate-limits", "").await;
    let free = send(sluice.api, request("/v1/messages", "sk-r", &message(false, 10))).await;
    assert_eq!(free.status, 200);
    let report = admin_json(sluice.admin, "GET", "/rate-limits", "").await;
    assert_eq!(report["buckets_held"], 0);
}

#[tokio::test(start_paused = true)]
async fn the_verdict_tells_a_patient_client_from_an_impatient_one() {
    let toml = format!("{INSTANT}[rate_limits]\nrequests_per_minute = 60\nburst = 1\n");
    let sluice = start_with_admin(&toml).await;
    let api = sluice.api;
    // Patient: waits the retry-after-ms it is given, twice.
    for _ in 0..2 {
        send(api, request("/v1/messages", "sk-patient", &message(false, 10))).await;
        let refused = send(api, request("/v1/messages", "sk-patient", &message(false, 10))).await;
        assert_eq!(refused.status, 429);
        let wait: u64 = refused.header("retry-after-ms").parse().unwrap();
        tokio::time::sleep(ms(wait)).await;
        let retried = send(api, request("/v1/messages", "sk-patient", &message(false, 10))).await;
        assert_eq!(retried.status, 200);
        assert_eq!(retried.header("x-sluice-client-verdict"), "");
        tokio::time::sleep(ms(1000)).await;
    }
    // Impatient: retries at once, five times, then 300 ms apart.
    send(api, request("/v1/messages", "sk-hasty", &message(false, 10))).await;
    send(api, request("/v1/messages", "sk-hasty", &message(false, 10))).await;
    let mut verdicts = Vec::new();
    for pause in [0, 0, 0, 0, 300] {
        tokio::time::sleep(ms(pause)).await;
        let retried = send(api, request("/v1/messages", "sk-hasty", &message(false, 10))).await;
        verdicts.push(retried.header("x-sluice-client-verdict").to_string());
    }
    assert_eq!(
        verdicts,
        [
            "early_retry,immediate_retry",
            "early_retry,immediate_retry",
            "early_retry,immediate_retry",
            "early_retry,immediate_retry,retry_storm",
            "early_retry",
        ]
    );
    let patient = verdict_of(sluice.admin, "sk-patient").await;
    assert_eq!(patient["early_retries"], 0);
    assert_eq!(patient["patient_retries"], 2);
    assert_eq!(patient["told_to_wait"], 2);
    let hasty = verdict_of(sluice.admin, "sk-hasty").await;
    assert_eq!(hasty["early_retries"], 5);
    assert_eq!(hasty["immediate_retries"], 4);
    assert_eq!(hasty["retry_storms"], 1);
    assert_eq!(hasty["earliest_by_ms"], 1000);
    assert_eq!(hasty["patient_retries"], 0);
    let early = "sluice_client_discipline_total{kind=\"early_retry\"}";
    assert_eq!(metric(sluice.admin, early).await, 5.0);
    let patient = "sluice_client_discipline_total{kind=\"patient_retry\"}";
    assert_eq!(metric(sluice.admin, patient).await, 2.0);
}

#[tokio::test(start_paused = true)]
async fn the_verdict_follows_injected_faults_that_say_when_or_whether_to_retry() {
    let toml = format!(
        "{INSTANT}[[faults]]\nkind = \"http\"\nstatus = 529\nretry_after = \"2s\"\nfirst_requests = 1\n"
    );
    let sluice = start_with_admin(&toml).await;
    let overloaded = send(sluice.api, request("/v1/messages", "sk-f", &message(false, 10))).await;
    assert_eq!((overloaded.status.as_u16(), overloaded.header("retry-after")), (529, "2"));
    tokio::time::sleep(ms(500)).await;
    let early = send(sluice.api, request("/v1/messages", "sk-f", &message(false, 10))).await;
    assert_eq!(early.header("x-sluice-client-verdict"), "early_retry");
    let verdict = verdict_of(sluice.admin, "sk-f").await;
    assert_eq!(verdict["early_retries"], 1);
    assert_eq!(verdict["earliest_by_ms"], 1500);
}

#[tokio::test(start_paused = true)]
async fn the_proxy_reads_the_body_to_charge_tokens_and_still_forwards_it_whole() {
    let upstream = upstreams::echo_upstream().await;
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\n[upstream]\nurl = \"{}\"\n\
         [rate_limits]\ninput_tokens_per_minute = 600\noutput_tokens_per_minute = 900\n",
        upstream.url()
    );
    let sluice = start_with_admin(&toml).await;
    let body = message(false, 100);
    let sent = send(sluice.api, request("/v1/messages", "sk-p", &body)).await;
    assert_eq!(sent.status, 200);
    let echoed = sent.json();
    assert_eq!(echoed["body"], body.to_string(), "the upstream got the body byte for byte");
    let input = (body.to_string().len() / 4) as u64;
    let left = |name: &str| sent.header(name).parse::<u64>().unwrap();
    assert_eq!(left("anthropic-ratelimit-input-tokens-remaining"), 600 - input);
    // A non-streamed answer is not settled: max_tokens stays charged.
    assert_eq!(left("anthropic-ratelimit-output-tokens-remaining"), 800);
    // A prompt bigger than the input bucket can never be admitted, and is never sent.
    let huge = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x".repeat(4000)}]});
    let never = send(sluice.api, request("/v1/messages", "sk-p", &huge)).await;
    assert_eq!((never.status.as_u16(), never.header("x-should-retry")), (429, "false"));
    assert!(never.json()["error"]["message"].as_str().unwrap().contains("input tokens"));
}

#[tokio::test(start_paused = true)]
async fn the_proxy_settles_a_streams_output_to_the_usage_it_reports() {
    // The upstream is sluice's own mock: its message_delta reports 50 output tokens.
    let upstream = start_with_admin(INSTANT).await;
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\n\
         [upstream]\nurl = \"http://{}\"\n[rate_limits]\noutput_tokens_per_minute = 900\n",
        upstream.api
    );
    let sluice = start_with_admin(&toml).await;
    let first = send(sluice.api, request("/v1/messages", "sk-s", &message(true, 500))).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("anthropic-ratelimit-output-tokens-remaining"), "400");
    let usage = first.events().iter().find(|(name, _, _)| name == "message_delta").unwrap().1["usage"]
        ["output_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(usage, 50);
    // The stream reported 50: 450 of the 500 came back when it ended.
    let second = send(sluice.api, request("/v1/messages", "sk-s", &message(true, 500))).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("anthropic-ratelimit-output-tokens-remaining"), "350");
}

/// With many bucket sets, `GET /rate-limits` is made at most once a second
/// however many pollers ask (each report walks every set), and made again
/// after that.
#[tokio::test(start_paused = true)]
async fn a_large_rate_limit_report_is_made_at_most_once_a_second() {
    let sluice =
        start_with_admin(&format!("{INSTANT}[rate_limits]\nrequests_per_minute = 60\n")).await;
    for n in 0..1001 {
        let key = format!("sk-{n}");
        send(sluice.api, request("/v1/messages", &key, &message(false, 1))).await;
    }
    let first = admin_json(sluice.admin, "GET", "/rate-limits", "").await;
    assert_eq!(first["buckets_held"], 1001);
    send(sluice.api, request("/v1/messages", "sk-new", &message(false, 1))).await;
    let again = admin_json(sluice.admin, "GET", "/rate-limits", "").await;
    assert_eq!(again["buckets_held"], 1001, "the same report, within the second");
    tokio::time::sleep(ms(1000)).await;
    let later = admin_json(sluice.admin, "GET", "/rate-limits", "").await;
    assert_eq!(later["buckets_held"], 1002);
    assert_eq!(later["admitted_untracked"], 0);
}
