//! The OpenAI mock over real sockets on the paused clock: the same timing as
//! the Messages mock (the head with the first token, every token on its
//! deadline, a tool call after its delay), its faults in OpenAI's shapes, and
//! routes that tell the dialects apart.
#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{ms, send, start};

use support::NO_ERRORS;

fn post(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-mock", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// Each SSE event's `data` (JSON, or `[DONE]` as a string) and when the chunk
/// holding its end arrived.
fn data_events(received: &support::Received) -> Vec<(Value, Duration)> {
    let mut events = Vec::new();
    let mut pending = String::new();
    for (chunk, at) in &received.chunks {
        pending.push_str(std::str::from_utf8(chunk).unwrap());
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let value = if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(data).unwrap()
            };
            events.push((value, *at));
        }
    }
    assert!(pending.is_empty(), "the stream ended inside an event: {pending:?}");
    events
}

#[tokio::test(start_paused = true)]
async fn a_chat_stream_holds_its_head_until_the_first_token_and_paces_every_token() {
    let sluice = start(NO_ERRORS).await;
    let received = send(sluice.addr, post("/v1/chat/completions", &chat(true))).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.headers["content-type"], "text/event-stream; charset=utf-8");
    assert!(received.headers["x-request-id"].to_str().unwrap().starts_with("req_"));
    assert_eq!(received.head_at, ms(100), "time to first byte is the first-token delay");
    let events = data_events(&received);
    assert_eq!(events[0].0["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0].1, ms(100), "the role chunk goes out with the first token");
    let tokens: Vec<_> = events
        .iter()
        .filter(|(v, _)| {
            v["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty())
        })
        .collect();
    assert_eq!(tokens.len(), 50);
    for (k, (_, at)) in tokens.iter().enumerate() {
        assert_eq!(*at, ms(100 + 20 * k as u64), "token {k}");
    }
    assert_eq!(events.last().unwrap(), &(json!("[DONE]"), ms(1080)));
}

#[tokio::test(start_paused = true)]
async fn a_chat_tool_call_starts_after_first_token_plus_tool_call_delay() {
    let sluice = start(NO_ERRORS).await;
    let mut body = chat(true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let received = send(sluice.addr, post("/v1/chat/completions", &body)).await;
    assert_eq!(received.head_at, ms(600));
    let events = data_events(&received);
    let calls: Vec<_> =
        events.iter().filter(|(v, _)| v["choices"][0]["delta"]["tool_calls"].is_array()).collect();
    assert_eq!(
        calls[0].0["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(calls[0].1, ms(600));
    for (k, (_, at)) in calls[1..].iter().enumerate() {
        assert_eq!(*at, ms(620 + 20 * k as u64), "fragment {k}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_responses_stream_is_paced_like_the_others() {
    let sluice = start(NO_ERRORS).await;
    let body = json!({"model": "gpt-mock", "input": "hi", "stream": true});
    let received = send(sluice.addr, post("/v1/responses", &body)).await;
    assert_eq!(received.head_at, ms(100));
    let events = data_events(&received);
    let deltas: Vec<_> =
        events.iter().filter(|(v, _)| v["type"] == "response.output_text.delta").collect();
    assert_eq!(deltas.len(), 50);
    for (k, (_, at)) in deltas.iter().enumerate() {
        assert_eq!(*at, ms(100 + 20 * k as u64), "token {k}");
    }
    assert_eq!(events.last().unwrap().0["type"], "response.completed");
}

#[tokio::test(start_paused = true)]
async fn a_non_streaming_completion_takes_as_long_as_the_stream_would_have() {
    let sluice = start(NO_ERRORS).await;
    let received = send(sluice.addr, post("/v1/chat/completions", &chat(false))).await;
    assert_eq!(received.status, 200);
    assert_eq!(received.head_at, ms(1080));
    assert_eq!(received.json()["object"], "chat.completion");
}

#[tokio::test(start_paused = true)]
async fn embeddings_come_after_the_first_token_delay_and_take_http_faults() {
    let sluice = start(
        "error_rate = 0\nseed = 1\n[[faults]]\nkind = \"http\"\nstatus = 429\nfirst_requests = 1",
    )
    .await;
    let body = json!({"model": "e", "input": "a cat", "dimensions": 4});
    let refused = send(sluice.addr, post("/v1/embeddings", &body)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused.headers["x-sluice-fault"], "http; status=429");
    let answered = send(sluice.addr, post("/v1/embeddings", &body)).await;
    assert_eq!(answered.status, 200);
    assert_eq!(answered.head_at, ms(100));
    assert_eq!(answered.json()["data"][0]["embedding"].as_array().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn stream_faults_take_openais_shapes() {
    let fault = |kind: &str| {
        format!(
            "error_rate = 0\nseed = 1\n[[faults]]\nkind = \"{kind}\"\nafter_tokens = 2\nfirst_requests = 9"
        )
    };
    let sluice = start(&fault("stream_error")).await;
    let events = data_events(&send(sluice.addr, post("/v1/chat/completions", &chat(true))).await);
    assert_eq!(events.last().unwrap().0["error"]["type"], "server_error");
    assert!(!events.iter().any(|(v, _)| v == "[DONE]"));

    let body = json!({"model": "gpt-mock", "input": "hi", "stream": true});
    let events = data_events(&send(sluice.addr, post("/v1/responses", &body)).await);
    // As the live API fails a response: an `error` event whose fields are
    // nested under `error` (the SDKs raise on that key), then
    // `response.failed` for the same response (docs/protocols.md §3.3).
    let (error, failed) = (&events[events.len() - 2].0, &events[events.len() - 1].0);
    assert_eq!(error["type"], "error");
    assert_eq!(
        error["error"],
        json!({"type": "server_error", "code": "server_error", "message": "The server had an error while processing your request.", "param": null})
    );
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["id"], events[0].0["response"]["id"]);
    assert_eq!(failed["response"]["model"], "gpt-mock");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    // In place of the third token, with the number that token would have had.
    let numbers: Vec<u64> =
        events.iter().map(|(v, _)| v["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6, 7]);

    let sluice = start(&fault("truncate")).await;
    let events = data_events(&send(sluice.addr, post("/v1/chat/completions", &chat(true))).await);
    let tokens =
        events.iter().filter(|(v, _)| v["choices"][0]["delta"]["content"].is_string()).count();
    assert_eq!(tokens, 1 + 2, "the role chunk's empty content, then two tokens");
    assert!(
        !events.iter().any(|(v, _)| v == "[DONE]" || !v["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test(start_paused = true)]
async fn routes_can_tell_the_dialects_apart() {
    let config = "error_rate = 0\nseed = 1\n[profiles.openai]\nfirst_token_delay = \"300ms\"\n\
                  [[routes]]\nname = \"openai\"\napi = \"openai\"\nprofile = \"openai\"";
    let sluice = start(config).await;
    let openai = send(sluice.addr, post("/v1/chat/completions", &chat(true))).await;
    assert_eq!(openai.headers["x-sluice-route"], "openai");
    assert_eq!(openai.head_at, ms(300));
    let anthropic = send(
        sluice.addr,
        post("/v1/messages", &json!({"model": "m", "max_tokens": 8, "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(anthropic.headers["x-sluice-route"], "default");
    assert_eq!(anthropic.head_at, ms(100));
    let responses = send(
        sluice.addr,
        post("/v1/responses", &json!({"model": "m", "input": "hi", "stream": true})),
    )
    .await;
    assert_eq!(responses.headers["x-sluice-route"], "openai", "\"openai\" takes both OpenAI APIs");
    assert_eq!(responses.head_at, ms(300));
}

#[test]
fn a_route_api_must_be_one_sluice_knows() {
    let error =
        sluice::Config::from_toml_str("[[routes]]\nname = \"x\"\napi = \"azure\"", "t.toml")
            .unwrap_err();
    assert!(error.to_string().contains("routes.api"), "{error}");
}

#[tokio::test]
async fn the_model_list_and_bad_requests_answer_in_openais_shape() {
    let sluice = start("error_rate = 0\nmodels = [\"gpt-mock\", \"gpt-mock-mini\"]").await;
    let get = |path: &str| {
        Request::get(path).header("host", "localhost").body(Full::new(Bytes::new())).unwrap()
    };
    let list = send(sluice.addr, get("/v1/models")).await.json();
    assert_eq!(list["data"][1]["id"], "gpt-mock-mini");
    let missing = send(sluice.addr, get("/v1/models/nope")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]["message"].as_str().unwrap().contains("nope"));
    let bad = send(
        sluice.addr,
        post("/v1/chat/completions", &json!({"model": "m", "messages": [], "n": 1})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
    assert_eq!(bad.json()["error"]["message"], "messages: at least one message is required");
    let wrong_method = send(sluice.addr, get("/v1/chat/completions")).await;
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.json().get("type").is_none(), "OpenAI's shape");
}

#[tokio::test(start_paused = true)]
async fn slow_head_stall_and_malformed_act_on_openai_streams_as_on_anthropics() {
    let with =
        |fault: &str| format!("error_rate = 0\nseed = 1\n[[faults]]\n{fault}\nfirst_requests = 9");
    let sluice = start(&with("kind = \"slow_head\"\nduration = \"250ms\"")).await;
    let received = send(sluice.addr, post("/v1/chat/completions", &chat(true))).await;
    assert_eq!(received.head_at, ms(350), "the whole schedule starts 250 ms later");
    assert_eq!(received.headers["x-sluice-fault"], "slow_head; duration=250ms");

    let sluice = start(&with("kind = \"stall\"\nafter_tokens = 2\nduration = \"1s\"")).await;
    let received = send(sluice.addr, post("/v1/chat/completions", &chat(true))).await;
    let events = data_events(&received);
    let tokens: Vec<_> = events
        .iter()
        .filter(|(v, _)| {
            v["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty())
        })
        .collect();
    assert_eq!(tokens.len(), 2, "nothing after the stall");
    assert_eq!(received.chunks.last().unwrap().1, ms(120), "the second token is the last data");

    let sluice = start(&with("kind = \"malformed\"\nafter_tokens = 2")).await;
    let received = send(sluice.addr, post("/v1/chat/completions", &chat(true))).await;
    let body = String::from_utf8(received.body().to_vec()).unwrap();
    let broken: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .filter(|e| {
            let data = e.trim_start_matches("data: ").trim_start_matches("data:");
            data != "[DONE]" && serde_json::from_str::<Value>(data).is_err()
        })
        .collect();
    assert_eq!(broken.len(), 1, "one corrupted chunk: {broken:?}");
    assert!(body.ends_with("data: [DONE]\n\n"), "and the stream goes on to its end");
}
