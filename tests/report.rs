//! Runs and their reports over real sockets on the paused clock: a run's
//! exact counts, the retry timeline and verdicts after a 429, the SDK of
//! each client, a stream its client left, the page, and Server-Timing.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers panic on failure")]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};
use support::{admin_json, ms, open, send, start_with_admin};

const CONFIG: &str = r#"
seed = 1
error_rate = 0
first_token_delay = "0ms"
token_interval = "0ms"
tokens_per_response = 5

[[faults]]
kind = "http"
status = 429
retry_after = "2s"
first_requests = 1

[[faults]]
kind = "stream_error"
after_tokens = 2
every = 4

[profiles.slow]
token_interval = "1s"
faults = []

[[routes]]
name = "slow"
headers = { x-slow = "*" }
profile = "slow"
"#;

/// A streamed Messages request as the Anthropic Python SDK sends it.
fn from_python(run: Option<&str>) -> Request<Full<Bytes>> {
    from_python_with(run, None)
}

fn body() -> Value {
    json!({"model": "m", "max_tokens": 64, "stream": true,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn from_python_with(run: Option<&str>, header: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::post("/v1/messages")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-app")
        .header("user-agent", "Anthropic/Python 0.75.0")
        .header("x-stainless-lang", "python")
        .header("x-stainless-package-version", "0.75.0");
    if let Some(run) = run {
        request = request.header("x-sluice-run", run);
    }
    if let Some(header) = header {
        request = request.header(header, "1");
    }
    request.body(Full::new(Bytes::from(body().to_string()))).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_run_reports_what_sluice_did_and_what_the_client_did() {
    let sluice = start_with_admin(CONFIG).await;
    let (status, run) = admin_json(sluice.admin, "POST", "/runs", r#"{"name": "smoke"}"#).await;
    assert_eq!(
        (status, run["id"].as_str(), run["name"].as_str()),
        (201, Some("run-1"), Some("smoke"))
    );

    // Told to wait 2 s; back at once (early and immediate); then after 2 s.
    let refused = send(sluice.api, from_python(None)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.headers["server-timing"],
        "sluice-first-token;dur=0.000, sluice-interval;dur=0.000, sluice-tool-call;dur=500.000, \
         sluice-fault;desc=\"http; status=429; retry_after=2s\""
    );
    assert_eq!(send(sluice.api, from_python(None)).await.status, 200);
    tokio::time::sleep(ms(2000)).await;
    let patient = send(sluice.api, from_python(None)).await;
    assert_eq!(patient.status, 200);
    assert_eq!(
        patient.headers["server-timing"],
        "sluice-first-token;dur=0.000, sluice-interval;dur=0.000, sluice-tool-call;dur=500.000"
    );
    // The fourth breaks after two tokens; the fifth its client leaves.
    assert_eq!(send(sluice.api, from_python(None)).await.status, 200);
    let left = open(sluice.api, from_python_with(None, Some("x-slow"))).await;
    let mut stream = left.into_body();
    let _ = stream.frame().await;
    drop(stream);
    tokio::time::sleep(ms(10)).await;
    let input_tokens = u64::try_from(body().to_string().len() / 4).unwrap();

    let (status, ended) = admin_json(sluice.admin, "POST", "/runs/run-1/end", "").await;
    assert_eq!(status, 200);
    let report = &ended["report"];
    assert_eq!(report["schema"], "sluice.run-report.v1");
    assert_eq!(report["run"]["duration_s"], 2.01);
    assert_eq!(
        report["totals"],
        json!({"requests": 5, "outcomes": {"fault": 2, "ok": 3},
               "faults": {"http": 1, "stream_error": 1}, "rate_limited": {},
               "input_tokens": 5 * input_tokens, "output_tokens": 4 * 5, "abandoned_streams": 1})
    );
    assert_eq!(report["rows"][0]["route"], "default");
    assert_eq!(report["rows"][0]["api"], "anthropic");
    assert_eq!(
        report["clients"],
        json!([{"sdk": "Anthropic (python)", "version": "0.75.0", "requests": 5}])
    );
    let events = report["retries"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let client = events[0]["client"].as_str().unwrap();
    assert!(client.starts_with("key:"), "{client}");
    assert_eq!(
        events[0],
        json!({"client": client, "told_at_s": 0.0, "status": 429, "retry_after_s": 2.0,
               "next_at_s": 0.0, "verdict": "early_retry,immediate_retry"})
    );
    assert_eq!(report["retries"]["patient"], 1);
    let verdict = |rule: &str| -> Value {
        report["verdicts"].as_array().unwrap().iter().find(|v| v["rule"] == rule).unwrap().clone()
    };
    let early = verdict("no_early_retries");
    assert_eq!((early["pass"].as_bool(), early["count"].as_u64()), (Some(false), Some(1)));
    assert_eq!(early["evidence"], json!([{"client": client, "at_s": 0.0, "early_by_ms": 2000.0}]));
    assert_eq!(verdict("no_retry_storms")["pass"], true);
    assert_eq!(report["abandoned"]["after_tokens"]["1-10"], 1);
    assert_eq!(report["abandoned"]["after_seconds"]["<1"], 1, "left 10 ms in");
    // The fifth asked the same again right after the fourth broke.
    assert_eq!(report["repeated_after_break"]["by_fault"], json!({"stream_error": 1}));
    let repeat = &report["repeated_after_break"]["evidence"][0];
    assert_eq!(
        (repeat["fault"].as_str(), repeat["after_ms"].as_f64()),
        (Some("stream_error"), Some(0.0))
    );
    assert_eq!(report["timing"]["first_token_ms"]["count"], 4, "the 429 had none");
    assert_eq!(report["timing"]["trustworthy"], true);

    // After its end, requests go to the process run, or to a run they name.
    send(sluice.api, from_python(Some("run-1"))).await;
    let (_, runs) = admin_json(sluice.admin, "GET", "/runs", "").await;
    let requests: Vec<(String, u64)> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(requests, [("process".to_string(), 1), ("run-1".to_string(), 5)]);

    let page =
        send(sluice.admin, support::admin_request("GET", "/runs/run-1/report.html", "")).await;
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let page = String::from_utf8(page.body().to_vec()).unwrap();
    for needle in [
        "<svg id=\"over-time\"",
        "class=\"series ok\"",
        "class=\"fail\">FAIL",
        "id=\"retries\"",
        "Anthropic (python)",
    ] {
        assert!(page.contains(needle), "{needle} not in the page");
    }
    let (status, missing) = admin_json(sluice.admin, "GET", "/runs/run-9/report", "").await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test(start_paused = true)]
async fn a_run_may_start_with_every_bucket_full_and_every_verdict_clean() {
    let config = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\n\
                  [rate_limits]\nrequests_per_minute = 1\n";
    let sluice = start_with_admin(config).await;
    admin_json(sluice.admin, "POST", "/runs", r#"{"name": "first"}"#).await;
    assert_eq!(send(sluice.api, from_python(None)).await.status, 200);
    assert_eq!(send(sluice.api, from_python(None)).await.status, 429);
    // A run that shares the state: still refused.
    admin_json(sluice.admin, "POST", "/runs", r#"{"name": "shared"}"#).await;
    assert_eq!(send(sluice.api, from_python(None)).await.status, 429);
    let body = r#"{"name": "fresh", "reset_rate_limits": true}"#;
    let (status, run) = admin_json(sluice.admin, "POST", "/runs", body).await;
    assert_eq!((status, run["id"].as_str()), (201, Some("run-3")));
    assert_eq!(send(sluice.api, from_python(None)).await.status, 200);
    let report = admin_json(sluice.admin, "GET", "/runs/run-3/report", "").await.1;
    assert_eq!(report["totals"]["outcomes"], json!({"ok": 1}));
    assert_eq!(report["retries"]["told"], 0, "the verdicts start clean too");
    let (status, refused) =
        admin_json(sluice.admin, "POST", "/runs", r#"{"reset_rate_limits": 1}"#).await;
    assert_eq!(status, 400, "{refused}");
}

/// The run a request names is this sluice's: the header is not forwarded.
#[tokio::test]
async fn a_proxy_keeps_the_run_header_to_itself() {
    let echo = support::upstreams::echo_upstream().await;
    let sluice = support::start(&support::proxy_config(&echo.url(), "error_rate = 0", "")).await;
    let received = send(sluice.addr, from_python(Some("run-1"))).await;
    let headers = &received.json()["headers"];
    assert_eq!(headers["x-stainless-lang"], "python", "other headers go through");
    assert_eq!(headers.get("x-sluice-run"), None);
}
