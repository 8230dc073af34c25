//! The OpenAI mock's requests and its streams, against the wire rules of
//! `docs/protocols.md` §3: one role, one `finish_reason`, a call's id and
//! name only in its first fragment, the usage chunk last, `[DONE]`; the
//! Responses order and sequence numbers; and the streams agree with the
//! non-streaming bodies built from the same reply.

use serde_json::{Value, json};

use super::{chat, embeddings, responses};
use crate::config::{Thinking, ToolUse};
use crate::framing::EventKind;
use crate::mock::HeadFacts;
use crate::mock::reply::Reply;
use crate::mock::request::{ToolChoice, TurnRequest};
use crate::shape::request_rng;

fn chat_request(extra: Value) -> TurnRequest {
    let mut body = json!({"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    chat::parse(body.to_string().as_bytes(), &HeadFacts::default()).unwrap()
}

fn chat_error(body: Value) -> String {
    chat::parse(body.to_string().as_bytes(), &HeadFacts::default()).unwrap_err().0
}

fn responses_request(extra: Value) -> TurnRequest {
    let mut body = json!({"model": "gpt-mock", "input": "hi"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    responses::parse(body.to_string().as_bytes(), &HeadFacts::default()).unwrap()
}

fn weather_tools_chat() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}])
}

fn weather_tools_responses() -> Value {
    json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}])
}

fn reply(request: &TurnRequest, tokens: u32) -> Reply {
    Reply::generate(request, tokens, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(7, 0))
        .unwrap()
}

/// Each chunk's JSON (or `[DONE]` as a string) and its kind.
fn chat_chunks(request: &TurnRequest, reply: Reply) -> Vec<(Value, EventKind)> {
    chat::events(reply, request)
        .map(|record| {
            let text = std::str::from_utf8(&record.raw).unwrap();
            let data = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap();
            assert!(!data.contains('\n'), "one line of data: {data}");
            let value = if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(data).unwrap()
            };
            (value, record.kind)
        })
        .collect()
}

#[test]
fn a_chat_text_stream_follows_the_chunk_rules() {
    let request = chat_request(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let reply = reply(&request, 20);
    let message = chat::message(&reply);
    let chunks = chat_chunks(&request, reply);
    assert_eq!(chunks.len(), 1 + 20 + 1 + 1 + 1, "role, 20 tokens, finish, usage, [DONE]");
    let (last, _) = chunks.last().unwrap();
    assert_eq!(last, &json!("[DONE]"));
    let objects: Vec<&Value> = chunks.iter().map(|(v, _)| v).filter(|v| v.is_object()).collect();
    let id = &objects[0]["id"];
    assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
    for chunk in &objects {
        assert_eq!(chunk["id"], *id);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["created"], objects[0]["created"]);
        assert_eq!(chunk["model"], "gpt-mock");
    }
    let roles = objects.iter().filter(|c| !c["choices"][0]["delta"]["role"].is_null()).count();
    assert_eq!(roles, 1, "role only in the first chunk");
    let finishes: Vec<&Value> = objects
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    // usage: null in every chunk but the last, which has no choices.
    let usage_chunk = objects.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 20);
    assert!(
        objects[..objects.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some())
    );
    // Kinds: the role chunk is other, each token content, the rest other.
    let kinds: Vec<EventKind> = chunks.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds[0], EventKind::Other);
    assert!(kinds[1..21].iter().all(|k| *k == EventKind::Content));
    assert!(kinds[21..].iter().all(|k| *k == EventKind::Other));
    // The stream's text is the message's.
    let streamed: String =
        objects.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(json!(streamed), message["choices"][0]["message"]["content"]);
    assert_eq!(message["object"], "chat.completion");
    assert_eq!(message["usage"]["completion_tokens"], 20);
}

#[test]
fn without_include_usage_no_chunk_carries_usage() {
    let request = chat_request(json!({"stream": true}));
    let chunks = chat_chunks(&request, reply(&request, 3));
    assert_eq!(chunks.len(), 1 + 3 + 1 + 1);
    assert!(chunks.iter().filter(|(v, _)| v.is_object()).all(|(v, _)| v.get("usage").is_none()));
}

#[test]
fn a_chat_tool_call_streams_its_id_and_name_once_and_arguments_that_parse() {
    let request = chat_request(
        json!({"stream": true, "tools": weather_tools_chat(), "tool_choice": "required"}),
    );
    assert_eq!(request.tool_choice, ToolChoice::Any);
    let reply = reply(&request, 20);
    let message = chat::message(&reply);
    let chunks = chat_chunks(&request, reply);
    let objects: Vec<&Value> = chunks.iter().map(|(v, _)| v).filter(|v| v.is_object()).collect();
    let fragments: Vec<&Value> =
        objects.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert!(fragments.len() >= 2);
    assert!(fragments[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(fragments[0]["type"], "function");
    assert_eq!(fragments[0]["function"]["name"], "get_weather");
    assert_eq!(fragments[0]["function"]["arguments"], "");
    for later in &fragments[1..] {
        assert_eq!(later["index"], 0);
        assert!(later.get("id").is_none() && later.get("type").is_none());
        assert!(later["function"].get("name").is_none());
    }
    let arguments: String =
        fragments.iter().filter_map(|f| f["function"]["arguments"].as_str()).collect();
    let parsed: Value = serde_json::from_str(&arguments).unwrap();
    assert!(parsed["city"].is_string());
    // A turn that starts with a call opens with `content: null`, as the live
    // API does and as the non-streamed message has it, not an empty string.
    assert_eq!(
        objects[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null, "refusal": null})
    );
    let kinds: Vec<EventKind> = chunks.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds[1], EventKind::ToolStart, "the opening fragment starts the call");
    let finishes: Vec<&Value> = objects
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")]);
    let call = &message["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], json!(arguments));
    assert_eq!(call["id"], fragments[0]["id"]);
    assert!(message["choices"][0]["message"]["content"].is_null());
}

#[test]
fn chat_requests_are_checked_like_the_api() {
    let base = || json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };
    assert_eq!(chat_error(json!({"messages": []})), "model: field required");
    assert_eq!(chat_error(json!({"model": "m"})), "messages: field required");
    assert!(chat_error(with("n", json!(2))).starts_with("n: the sluice mock makes one choice"));
    assert!(chat_error(with("stop", json!([1]))).starts_with("stop:"));
    assert!(chat_error(with("tool_choice", json!("sometimes"))).starts_with("tool_choice:"));
    assert!(
        chat_error(with("tool_choice", json!({"type": "function", "function": {"name": "nope"}})))
            .starts_with("tool_choice.function.name: no function named")
    );
    assert!(
        chat_error(with("response_format", json!({"type": "xml"})))
            .starts_with("response_format.type")
    );
    assert!(
        chat_error(with("messages", json!([{"role": "robot", "content": "x"}])))
            .starts_with("messages.0.role")
    );
    // max_completion_tokens wins over the older max_tokens.
    let request = chat_request(json!({"max_completion_tokens": 5, "max_tokens": 9}));
    assert_eq!(request.max_tokens, 5);
    assert_eq!(chat_request(json!({"max_tokens": 9})).max_tokens, 9);
    let capped = reply(&chat_request(json!({"max_completion_tokens": 5})), 50);
    assert_eq!(chat::message(&capped)["choices"][0]["finish_reason"], "length");
    // A structured output schema: the content validates.
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"], "additionalProperties": false});
    let request = chat_request(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}}}),
    );
    let content = chat::message(&reply(&request, 50))["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed: Value = serde_json::from_str(&content).unwrap();
    assert!(jsonschema::is_valid(&schema, &parsed), "{parsed}");
    // Tool rounds: assistant messages with tool_calls at the end.
    let rounds = chat_request(json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]}));
    assert_eq!(rounds.tool_rounds, 1);
    assert!(chat_request(json!({"parallel_tool_calls": false})).disable_parallel_tool_use);
}

/// Each event's name, JSON and kind.
fn responses_events(request: &TurnRequest, reply: Reply) -> Vec<(String, Value, EventKind)> {
    responses::events(reply, request)
        .map(|record| {
            let text = std::str::from_utf8(&record.raw).unwrap();
            let body = text.strip_suffix("\n\n").unwrap();
            let (event, data) = body.split_once('\n').unwrap();
            let name = event.strip_prefix("event: ").unwrap().to_string();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], json!(name), "type equals the event name");
            (name, data, record.kind)
        })
        .collect()
}

#[test]
fn a_responses_stream_keeps_the_order_and_numbers_its_events() {
    let request = responses_request(json!({"stream": true, "instructions": "Be terse."}));
    let reply = reply(&request, 10);
    let whole: Value = serde_json::from_str(&(responses::CODEC.message)(&reply, &request)).unwrap();
    let events = responses_events(&request, reply);
    let names: Vec<&str> = events.iter().map(|(n, ..)| n.as_str()).collect();
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", 10));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, expected);
    for (i, (_, data, _)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], json!(i));
    }
    let id = &events[0].1["response"]["id"];
    assert!(id.as_str().unwrap().starts_with("resp_"));
    assert_eq!(events.last().unwrap().1["response"]["id"], *id);
    assert_eq!(events[0].1["response"]["instructions"], "Be terse.");
    let deltas: String = events.iter().filter_map(|(_, d, _)| d["delta"].as_str()).collect();
    assert_eq!(events[14].1["text"], json!(deltas));
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["content"][0]["text"], json!(deltas));
    assert_eq!(completed["usage"]["output_tokens"], 10);
    assert_eq!(whole["output"], completed["output"]);
    let kinds: Vec<EventKind> = events.iter().map(|(.., k)| *k).collect();
    assert!(kinds[4..14].iter().all(|k| *k == EventKind::Content));
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Content).count(), 10);
}

#[test]
fn a_responses_function_call_streams_arguments_that_parse() {
    let request = responses_request(
        json!({"stream": true, "tools": weather_tools_responses(), "tool_choice": "required"}),
    );
    let reply = reply(&request, 20);
    let events = responses_events(&request, reply);
    let added = &events[2];
    assert_eq!(added.0, "response.output_item.added");
    assert_eq!(added.1["item"]["type"], "function_call");
    assert_eq!(added.1["item"]["name"], "get_weather");
    assert_eq!(added.2, EventKind::ToolStart);
    let arguments: String = events
        .iter()
        .filter(|(n, ..)| n == "response.function_call_arguments.delta")
        .filter_map(|(_, d, _)| d["delta"].as_str())
        .collect();
    let done = events.iter().find(|(n, ..)| n == "response.function_call_arguments.done").unwrap();
    assert_eq!(done.1["arguments"], json!(arguments));
    assert!(serde_json::from_str::<Value>(&arguments).unwrap()["city"].is_string());
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["output"][0]["call_id"], added.1["item"]["call_id"]);
    assert_eq!(completed["tools"], weather_tools_responses(), "the request's tools are echoed");
}

#[test]
fn responses_requests_count_rounds_and_take_a_text_format() {
    let rounds = responses_request(json!({"input": [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]}));
    assert_eq!(rounds.tool_rounds, 1);
    let follow_up = responses_request(json!({"previous_response_id": "resp_1", "input": [
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]}));
    assert_eq!(follow_up.tool_rounds, 1);
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": false});
    let request = responses_request(
        json!({"text": {"format": {"type": "json_schema", "name": "x", "schema": schema, "strict": true}}}),
    );
    assert_eq!(request.output_schema.as_ref().unwrap().schema, schema);
    let error =
        responses::parse(br#"{"model": "m", "input": 3}"#, &HeadFacts::default()).unwrap_err().0;
    assert!(error.starts_with("input: expected a string or an array"), "{error}");
}

#[test]
fn embeddings_are_deterministic_unit_vectors_within_bounds() {
    let mut rng = request_rng(0, 0);
    let answer = |body: Value, rng: &mut _| {
        embeddings::answer(body.to_string().as_bytes(), rng)
            .map(|json| serde_json::from_str::<Value>(&json).unwrap())
    };
    let one = answer(json!({"model": "e", "input": ["a cat", "a dog"], "dimensions": 8}), &mut rng)
        .unwrap();
    let again =
        answer(json!({"model": "e", "input": "a cat", "dimensions": 8}), &mut request_rng(9, 9))
            .unwrap();
    assert_eq!(
        one["data"][0]["embedding"], again["data"][0]["embedding"],
        "same text, same vector"
    );
    assert_ne!(one["data"][0]["embedding"], one["data"][1]["embedding"]);
    let vector: Vec<f64> = serde_json::from_value(one["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 8);
    let norm: f64 = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    let base64 = answer(
        json!({"model": "e", "input": "a cat", "dimensions": 8, "encoding_format": "base64"}),
        &mut rng,
    )
    .unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> =
        bytes.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let floats: Vec<f32> = serde_json::from_value(again["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(decoded, floats);
    let default = answer(json!({"model": "e", "input": "x"}), &mut rng).unwrap();
    assert_eq!(default["data"][0]["embedding"].as_array().unwrap().len(), 1536);
    let too_many =
        answer(json!({"model": "e", "input": vec!["x"; 2000], "dimensions": 1024}), &mut rng);
    assert!(too_many.unwrap_err().0.contains("at most 1048576"));
    assert!(answer(json!({"model": "e", "input": []}), &mut rng).is_err());
    assert!(answer(json!({"model": "e", "input": "x", "dimensions": 9000}), &mut rng).is_err());
    let tokens =
        answer(json!({"model": "e", "input": [1, 2, 3], "dimensions": 4}), &mut rng).unwrap();
    assert_eq!(tokens["data"].as_array().unwrap().len(), 1);
    // One input of 3,000 token ids is one input, not 3,000: within the API's limits.
    let ids: Vec<u64> = (0..3000).collect();
    let long = answer(json!({"model": "e", "input": ids, "dimensions": 4}), &mut rng).unwrap();
    assert_eq!(long["data"].as_array().unwrap().len(), 1);
    assert_eq!(long["usage"]["prompt_tokens"], 3000);
    let same = answer(json!({"model": "e", "input": [ids], "dimensions": 4}), &mut rng).unwrap();
    assert_eq!(same["data"][0]["embedding"], long["data"][0]["embedding"]);
    // Past the model's context, refused as the API refuses it.
    let ids: Vec<u64> = (0..8193).collect();
    let refused = answer(json!({"model": "e", "input": ids, "dimensions": 4}), &mut rng);
    assert!(refused.unwrap_err().0.contains("maximum context length is 8192 tokens"));
}

#[test]
fn a_stop_sequence_ends_the_text_before_it() {
    let full_request = chat_request(json!({}));
    let full = chat::message(&reply(&full_request, 30))["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // A word from the middle of the text, as a client's stop sequence.
    let word = full.split(' ').nth(12).unwrap().trim_end_matches('.').to_lowercase();
    let request = chat_request(json!({"stop": [word.clone(), "never-there"]}));
    let cut = chat::message(&reply(&request, 30));
    let content = cut["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(full.starts_with(content), "the same text, cut: {content:?}");
    assert!(!content.contains(word.as_str()), "{content:?} holds {word:?}");
    let at = full.find(word.as_str()).unwrap();
    assert!(at >= content.len() && at < content.len() + 16, "cut within the token that starts it");
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
    assert!(cut["usage"]["completion_tokens"].as_u64().unwrap() < 30);
    // The stream carries the same cut text.
    let streamed: String = chat_chunks(&request, reply(&request, 30))
        .iter()
        .filter_map(|(v, _)| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(streamed, content);
    assert!(chat_error(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "x".repeat(300)})).starts_with("stop:"));
}

fn thinking_reply(request: &TurnRequest, tokens: u32) -> Reply {
    let thinking = Thinking { tokens: 40, redacted: false, reasoning_content: false };
    Reply::generate(request, tokens, &ToolUse::DEFAULT, &thinking, &mut request_rng(7, 0)).unwrap()
}

#[test]
fn a_chat_reasoning_effort_thinks_unseen_and_counts_its_tokens() {
    let request = chat_request(json!({"stream": true, "reasoning_effort": "low",
        "stream_options": {"include_usage": true}}));
    let reply = thinking_reply(&request, 6);
    assert_eq!(reply.thinking_tokens(), 10, "a quarter of 40 at low effort");
    assert_eq!(reply.thought.as_ref().unwrap().unseen(), 10, "nothing of it streams");
    let message = chat::message(&reply);
    assert_eq!(message["usage"]["completion_tokens"], 16);
    assert_eq!(message["usage"]["completion_tokens_details"]["reasoning_tokens"], 10);
    let chunks = chat_chunks(&request, reply);
    assert_eq!(chunks.len(), 1 + 6 + 1 + 1 + 1, "the same chunks as without reasoning");
    assert_eq!(
        chunks[chunks.len() - 2].0["usage"]["completion_tokens_details"]["reasoning_tokens"],
        10
    );
    assert_eq!(
        chat_error(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "huge"})
        ),
        "reasoning_effort: Invalid value: \"huge\". Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'."
    );
}

#[test]
fn a_responses_reasoning_summary_streams_first_and_shifts_the_items() {
    let request = responses_request(json!({"stream": true,
        "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"]}));
    let reply = thinking_reply(&request, 4);
    assert_eq!(reply.thinking_tokens(), 20);
    let completed: Value =
        serde_json::from_str(&(responses::CODEC.message)(&reply, &request)).unwrap();
    let events = responses_events(&request, reply);
    let names: Vec<&str> = events.iter().map(|(n, ..)| n.as_str()).collect();
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.reasoning_summary_text.delta", 20));
    expected.extend([
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
    ]);
    expected.extend(std::iter::repeat_n("response.output_text.delta", 4));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, expected);
    let deltas: Vec<_> =
        events.iter().filter(|(n, ..)| n.ends_with("summary_text.delta")).collect();
    assert!(deltas.iter().all(|(_, d, kind)| *kind == EventKind::Thinking
        && d["output_index"] == 0
        && d["summary_index"] == 0));
    let summary: String = deltas.iter().map(|(_, d, _)| d["delta"].as_str().unwrap()).collect();
    let done = &events[4 + 20].1;
    assert_eq!(done["text"], json!(summary));
    let text_added = &events[4 + 20 + 3].1;
    assert_eq!(text_added["output_index"], 1, "the message is output item 1");
    let output = &completed["output"];
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"][0]["text"], json!(summary));
    assert!(output[0]["encrypted_content"].is_string());
    assert_eq!(output[1]["type"], "message");
    assert_eq!(completed["usage"]["output_tokens_details"]["reasoning_tokens"], 20);
    assert_eq!(completed["reasoning"], json!({"effort": "medium", "summary": "auto"}));
    // Without a summary the item comes and goes with nothing in it; its time is unseen.
    let opaque = responses_request(json!({"stream": true, "reasoning": {"effort": "high"}}));
    let reply = thinking_reply(&opaque, 4);
    assert_eq!(reply.thought.as_ref().unwrap().unseen(), 40);
    let events = responses_events(&opaque, reply);
    assert_eq!(events[2].1["item"], events[3].1["item"]);
    assert_eq!(events[3].1["item"]["summary"], json!([]));
    assert!(events[3].1["item"].get("encrypted_content").is_none());
}

#[test]
fn with_reasoning_content_on_chat_streams_its_thinking_first() {
    let request = chat_request(json!({"stream": true, "reasoning_effort": "high"}));
    let thinking = Thinking { tokens: 5, redacted: false, reasoning_content: true };
    let reply =
        Reply::generate(&request, 3, &ToolUse::DEFAULT, &thinking, &mut request_rng(7, 0)).unwrap();
    let message = chat::message(&reply);
    let chunks = chat_chunks(&request, reply);
    assert_eq!(chunks.len(), 1 + 5 + 3 + 1 + 1, "role, 5 reasoning, 3 text, finish, [DONE]");
    let reasoning: String = chunks[1..6]
        .iter()
        .map(|(chunk, kind)| {
            assert_eq!(*kind, EventKind::Thinking);
            assert!(chunk["choices"][0]["delta"].get("content").is_none());
            chunk["choices"][0]["delta"]["reasoning_content"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(chunks[6..9].iter().all(|(_, kind)| *kind == EventKind::Content));
    assert_eq!(message["choices"][0]["message"]["reasoning_content"], json!(reasoning));
    assert_eq!(message["usage"]["completion_tokens_details"]["reasoning_tokens"], 5);
}
