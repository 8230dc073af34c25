//! The mock over real sockets: replies, exact timing (paused clock, every
//! party on the test's runtime), injected errors and bad input.

mod support;

use serde_json::{Value, json};
use support::{messages, ms, raw, send, start};

use support::NO_ERRORS;

fn text_request(stream: bool) -> Value {
    json!({"model": "claude-mock-1", "max_tokens": 1024, "stream": stream,
           "messages": [{"role": "user", "content": "Hello"}]})
}

fn tool_request(stream: bool) -> Value {
    json!({"model": "claude-mock-1", "max_tokens": 1024, "stream": stream,
           "messages": [{"role": "user", "content": "Weather in Paris?"}],
           "tools": [{"name": "get_weather", "description": "look up weather",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}]})
}

#[tokio::test(start_paused = true)]
async fn a_stream_holds_its_head_until_the_first_token_and_paces_every_token_exactly() {
    let sluice = start(NO_ERRORS).await;
    let received = send(sluice.addr, messages(&text_request(true))).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(received.headers["cache-control"], "no-cache");
    assert!(received.headers["request-id"].to_str().unwrap().starts_with("req_"));
    assert!(received.headers.get("content-length").is_none());
    assert_eq!(received.head_at, ms(100), "time to first byte is the first-token delay");

    let events = received.events();
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(&names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(&names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    let deltas: Vec<_> = events.iter().filter(|e| e.0 == "content_block_delta").collect();
    assert_eq!(deltas.len(), 50);
    for (k, (_, data, at)) in deltas.iter().enumerate() {
        assert_eq!(*at, ms(100 + 20 * k as u64), "token {k}");
        assert_eq!(data["delta"]["type"], "text_delta");
    }
    assert_eq!(events.last().unwrap().2, ms(1080), "the stream ends with its last token");
    assert_eq!(events[names.len() - 2].1["usage"]["output_tokens"], 50);
}

#[tokio::test(start_paused = true)]
async fn a_tool_call_starts_after_first_token_plus_tool_call_delay() {
    let sluice = start(NO_ERRORS).await;
    let received = send(sluice.addr, messages(&tool_request(true))).await;
    assert_eq!(received.head_at, ms(600));
    let events = received.events();
    let start = events.iter().find(|e| e.0 == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    assert_eq!(start.2, ms(600));
    let fragments: Vec<_> = events.iter().filter(|e| e.0 == "content_block_delta").collect();
    for (k, (_, _, at)) in fragments.iter().enumerate() {
        assert_eq!(*at, ms(620 + 20 * k as u64), "fragment {k}");
    }
    let joined: String =
        fragments.iter().map(|e| e.1["delta"]["partial_json"].as_str().unwrap()).collect();
    let input: Value = serde_json::from_str(&joined).unwrap();
    assert!(input["city"].is_string());
    assert!(["celsius", "fahrenheit"].contains(&input["unit"].as_str().unwrap()));
    let stop = events.iter().find(|e| e.0 == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test(start_paused = true)]
async fn a_non_streaming_reply_takes_as_long_as_the_stream_would_have() {
    let sluice = start(NO_ERRORS).await;
    let received = send(sluice.addr, messages(&text_request(false))).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.head_at, ms(1080));
    assert_eq!(received.headers["content-type"], "application/json");
    let message = received.json();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-mock-1");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 50);
    assert!(message["content"][0]["text"].as_str().unwrap().ends_with('.'));

    let tool = send(sluice.addr, messages(&tool_request(false))).await.json();
    assert_eq!(tool["stop_reason"], "tool_use");
    assert_eq!(tool["content"][0]["type"], "tool_use");
    assert!(tool["content"][0]["input"]["city"].is_string());
}

#[tokio::test(start_paused = true)]
async fn immediate_head_sends_message_start_at_once() {
    let sluice = start("error_rate = 0\nhead = \"immediate\"\ntokens_per_response = 3").await;
    let received = send(sluice.addr, messages(&text_request(true))).await;
    assert_eq!(received.head_at, ms(0));
    let events = received.events();
    assert_eq!(events[0].0, "message_start");
    assert_eq!(events[0].2, ms(0));
    let deltas: Vec<_> =
        events.iter().filter(|e| e.0 == "content_block_delta").map(|e| e.2).collect();
    assert_eq!(deltas, [ms(100), ms(120), ms(140)]);
}

#[tokio::test(start_paused = true)]
async fn max_tokens_caps_the_stream() {
    let sluice = start(NO_ERRORS).await;
    let mut request = text_request(true);
    request["max_tokens"] = json!(5);
    let events = send(sluice.addr, messages(&request)).await.events();
    assert_eq!(events.iter().filter(|e| e.0 == "content_block_delta").count(), 5);
    let stop = events.iter().find(|e| e.0 == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(stop.1["usage"]["output_tokens"], 5);
}

/// A config where every request draws the one given fault.
fn always(status: u16, extra: &str) -> String {
    format!("error_rate = 1.0\n[[faults]]\nkind = \"http\"\nstatus = {status}\n{extra}")
}

#[tokio::test]
async fn each_injected_error_has_the_providers_status_body_and_headers() {
    let cases = [
        (529, "", "overloaded_error", "Overloaded"),
        (500, "", "api_error", "Internal server error"),
        (
            429,
            "retry_after = \"2s\"",
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
        ),
        (503, "message = \"down for a bit\"", "api_error", "down for a bit"),
    ];
    for (status, extra, error_type, message) in cases {
        let sluice = start(&always(status, extra)).await;
        for stream in [true, false] {
            let received = send(sluice.addr, messages(&text_request(stream))).await;
            assert_eq!(received.status, status);
            // The fault and every parameter it was given, as x-sluice-inject takes them.
            let given = extra.replace(" = ", "=").replace('"', "");
            let label = if given.is_empty() {
                format!("http; status={status}")
            } else {
                format!("http; status={status}; {given}")
            };
            assert_eq!(received.headers["x-sluice-fault"], label.as_str());
            assert_eq!(received.headers["content-type"], "application/json");
            let body = received.json();
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], error_type);
            assert_eq!(body["error"]["message"], message);
            assert_eq!(body["request_id"], received.headers["request-id"].to_str().unwrap());
            if status == 429 {
                assert_eq!(received.headers["retry-after"], "2");
                assert_eq!(received.headers["retry-after-ms"], "2000");
            } else {
                assert!(received.headers.get("retry-after").is_none());
            }
        }
    }
}

#[tokio::test]
async fn the_default_mix_injects_only_the_documented_errors() {
    let sluice = start("error_rate = 1.0\nseed = 3").await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let received = send(sluice.addr, messages(&text_request(false))).await;
        *seen.entry(received.status.as_u16()).or_insert(0) += 1;
    }
    let statuses: Vec<u16> = seen.keys().copied().collect();
    assert_eq!(statuses, [429, 500, 529], "{seen:?}");
}

/// Method, path, body, expected status, error type and message prefix.
type BadInput = (&'static str, &'static str, &'static [u8], u16, &'static str, &'static str);

#[tokio::test]
async fn bad_input_gets_the_providers_error_naming_the_problem() {
    let sluice = start("error_rate = 0\nmax_request_body = 64").await;
    let cases: [BadInput; 9] = [
        ("POST", "/v1/messages", b"{not json", 400, "invalid_request_error", "request body is not valid JSON"),
        ("POST", "/v1/messages", br#"{"max_tokens":5,"messages":[]}"#, 400, "invalid_request_error", "model: field required"),
        ("POST", "/v1/messages", br#"{"model":"m","max_tokens":"5"}"#, 400, "invalid_request_error", "max_tokens: expected an integer"),
        ("POST", "/v1/messages", br#"{"model":"m","max_tokens":5}"#, 400, "invalid_request_error", "messages: field required"),
        ("POST", "/v1/messages", br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a very long message that is over the limit"}]}"#,
            413, "request_too_large", "request body is larger than 64 bytes; raise max_request_body"),
        ("GET", "/v1/messages", b"", 405, "invalid_request_error", "method GET is not allowed on /v1/messages; use POST"),
        ("POST", "/health", b"", 405, "invalid_request_error", "method POST is not allowed on /health; use GET"),
        ("GET", "/v1/nothing", b"", 404, "not_found_error", "no route for GET /v1/nothing"),
        ("POST", "/v1/complete", b"{}", 404, "not_found_error", "no route for POST /v1/complete"),
    ];
    for (method, path, body, status, error_type, message) in cases {
        let received = send(sluice.addr, raw(method, path, body)).await;
        assert_eq!(received.status, status, "{method} {path}");
        let json = received.json();
        assert_eq!(json["type"], "error");
        assert_eq!(json["error"]["type"], error_type, "{method} {path}");
        let got = json["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{method} {path}: {got}");
    }
    let allow = send(sluice.addr, raw("DELETE", "/v1/messages", b"")).await;
    assert_eq!(allow.headers["allow"], "POST");

    // A path the mock does not serve is refused in the shape of the API the
    // path belongs to, with the mock's endpoints named.
    let openai = send(sluice.addr, raw("POST", "/openai/v1/chat/completions", b"{}")).await;
    assert_eq!(openai.status, 404);
    let json = openai.json();
    assert!(json.get("type").is_none(), "OpenAI's shape: {json}");
    assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "no route for POST /openai/v1/chat/completions: sluice mock serves POST /v1/messages, \
             POST /v1/messages/count_tokens, POST /v1/chat/completions, "
        ),
        "{message}"
    );
    assert!(message.ends_with(" and GET /health"), "{message}");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_while_reading() {
    use futures_util::stream;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let sluice = start("error_rate = 0\nmax_request_body = 100").await;
    let chunks = stream::iter((0..10).map(|_| {
        Ok::<_, std::convert::Infallible>(Frame::data(bytes::Bytes::from(vec![b' '; 20])))
    }));
    let request = hyper::Request::post("/v1/messages")
        .header("host", "localhost")
        .body(StreamBody::new(chunks))
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn health_and_count_tokens() {
    let sluice = start(NO_ERRORS).await;
    let health = send(sluice.addr, raw("GET", "/health", b"")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));

    let body = br#"{"model":"m","messages":[{"role":"user","content":"0123456789012345678901234567890123456789"}]}"#;
    let count = send(sluice.addr, raw("POST", "/v1/messages/count_tokens?beta=true", body)).await;
    assert_eq!(count.status, 200);
    assert_eq!(count.json(), json!({"input_tokens": body.len() / 4}));
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_replies() {
    let first = start("error_rate = 0.3\nseed = 11").await;
    let second = start("error_rate = 0.3\nseed = 11").await;
    for _ in 0..8 {
        let a = send(first.addr, messages(&text_request(false))).await;
        let b = send(second.addr, messages(&text_request(false))).await;
        assert_eq!(a.status, b.status);
        assert_eq!(a.body(), b.body());
    }
}

/// The agents issue's reproduction: a tool result followed by a `system`
/// message is answered in text, not with another call of the tool.
#[tokio::test]
async fn a_tool_result_then_a_system_message_is_answered_in_text() {
    let sluice = support::start("error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n").await;
    let body = serde_json::json!({"model": "m", "max_tokens": 50,
        "tools": [{"name": "Agent", "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}}],
        "messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"prompt": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
            {"role": "system", "content": "reminder"}]});
    let message = support::send(sluice.addr, support::messages(&body)).await.json();
    assert_eq!(message["stop_reason"], "end_turn", "{message}");
    assert_eq!(message["content"][0]["type"], "text");
}

/// A 20-tool agent loop over real sockets: with `max_rounds = 3` and two
/// calls a turn, the mock calls tools for three rounds (each tool's input
/// validating against a strict schema), and the fourth request is answered
/// in text; a route picks the search tools only for its header.
#[tokio::test]
async fn a_twenty_tool_agent_loop_ends_in_text_after_max_rounds() {
    let sluice = support::start(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n\
         [tool_use]\nchoice = \"uniform\"\nmax_rounds = 3\nparallel_calls = 2\n\
         [profiles.search.tool_use]\nchoice = \"search_*\"\n\
         [[routes]]\nname = \"search\"\nheaders = { x-scenario = \"search\" }\nprofile = \"search\"\n",
    )
    .await;
    let tools: Vec<Value> = (0..20)
        .map(|i| {
            let name = if i < 2 { format!("search_{i}") } else { format!("tool_{i}") };
            serde_json::json!({"name": name, "input_schema": {"type": "object", "additionalProperties": false,
                "properties": {"query": {"type": "string", "pattern": "^[a-z]{3,8}$"}, "limit": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10}},
                "required": ["query", "limit"]}})
        })
        .collect();
    for scenario in ["any", "search"] {
        let mut messages = vec![serde_json::json!({"role": "user", "content": "hi"})];
        let mut rounds = 0;
        loop {
            let body = serde_json::json!({"model": "m", "max_tokens": 400, "tools": tools, "messages": messages});
            let mut request = support::messages(&body);
            request.headers_mut().insert("x-scenario", scenario.parse().unwrap());
            let message = support::send(sluice.addr, request).await.json();
            if message["stop_reason"] == "end_turn" {
                assert_eq!(message["content"][0]["type"], "text");
                break;
            }
            assert_eq!(message["stop_reason"], "tool_use", "{message}");
            let calls = message["content"].as_array().unwrap();
            assert_eq!(calls.len(), 2, "{message}");
            let mut results = Vec::new();
            for call in calls {
                let name = call["name"].as_str().unwrap();
                if scenario == "search" {
                    assert!(name.starts_with("search_"), "{name}");
                }
                let query = call["input"]["query"].as_str().unwrap();
                assert!((3..=8).contains(&query.len()), "{query}");
                assert!(query.bytes().all(|b| b.is_ascii_lowercase()), "{query}");
                let limit = call["input"]["limit"].as_i64().unwrap();
                assert!((1..=10).contains(&limit), "{limit}");
                results.push(serde_json::json!({"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}));
            }
            messages.push(serde_json::json!({"role": "assistant", "content": calls}));
            messages.push(serde_json::json!({"role": "user", "content": results}));
            messages.push(serde_json::json!({"role": "system", "content": "reminder"}));
            rounds += 1;
            assert!(rounds <= 3, "more rounds than max_rounds");
        }
        assert_eq!(rounds, 3, "{scenario}");
    }
}

/// A tool schema that no input satisfies is refused before anything
/// streams, with a 400 that names the tool, the schema path and why.
#[tokio::test]
async fn an_unsatisfiable_tool_schema_gets_a_400_naming_its_path() {
    let sluice = support::start("error_rate = 0\nfirst_token_delay = \"0ms\"\n").await;
    let body = serde_json::json!({"model": "m", "max_tokens": 50, "stream": true,
        "tools": [{"name": "ok", "input_schema": {"type": "object"}},
                  {"name": "bad", "input_schema": {"type": "object", "required": ["r"],
                    "properties": {"r": {"type": "number", "minimum": 5, "maximum": 1}}}}],
        "tool_choice": {"type": "tool", "name": "bad"},
        "messages": [{"role": "user", "content": "hi"}]});
    let received = support::send(sluice.addr, support::messages(&body)).await;
    assert_eq!(received.status, 400);
    let error = received.json();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(
        error["error"]["message"],
        "tools.1.input_schema: no input satisfies this schema: at properties.r, no number lies in [5, 1]"
    );
}

/// The mock's clock starts when the request is whole: a body that takes
/// 300 ms to arrive (a large prompt, or an HTTP/2 body frame sent after the
/// head) delays the first token by as much, as a real model's would be.
#[tokio::test(start_paused = true)]
async fn the_first_token_delay_runs_from_the_end_of_the_request_body() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    let sluice = start("error_rate = 0\nseed = 1\n").await;
    let body = json!({"model": "m", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let (first, rest) = body.split_at(10);
    let (first, rest) = (Bytes::from(first.to_string()), Bytes::from(rest.to_string()));
    use futures_util::StreamExt;
    let frames = futures_util::stream::iter([(ms(0), first), (ms(300), rest)]).then(
        |(delay, bytes)| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::convert::Infallible>(Frame::data(bytes))
        },
    );
    let request = hyper::Request::post("/v1/messages")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-test")
        .body(StreamBody::new(frames))
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(sluice.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let sent = tokio::time::Instant::now();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sent.elapsed(), ms(300 + 100), "the body's 300 ms, then the first-token delay");
    let _ = response.into_body().collect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reply_length_drawn_per_reply_is_capped_by_the_requests_max_tokens() {
    let toml = "seed = 3\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\n\
                tokens_per_response = { dist = \"lognormal\", p50 = 20, p99 = 200 }\n";
    let sluice = support::start(toml).await;
    let mut lengths = Vec::new();
    let mut cut = 0;
    for _ in 0..200 {
        let body = serde_json::json!({"model": "m", "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}]});
        let reply = support::send(sluice.addr, support::messages(&body)).await.json();
        let tokens = reply["usage"]["output_tokens"].as_u64().unwrap();
        assert!((1..=50).contains(&tokens), "{tokens} tokens");
        if reply["stop_reason"] == "max_tokens" {
            assert_eq!(tokens, 50, "only the cap cuts a reply");
            cut += 1;
        } else {
            assert_eq!(reply["stop_reason"], "end_turn");
        }
        lengths.push(tokens);
    }
    lengths.sort_unstable();
    // p50 20: about half the replies at most 20 tokens; P(X > 50) for this
    // log-normal is about 18 %, cut at the cap.
    assert!((80..=120).contains(&lengths.iter().filter(|&&n| n <= 20).count()), "{lengths:?}");
    assert!((20..=70).contains(&cut), "{cut} of 200 cut by max_tokens");
}
