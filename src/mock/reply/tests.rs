//! The reply's stream obeys the Messages grammar and agrees with the
//! non-streaming message built from the same reply.

use serde_json::{Value, json};

use super::*;
use crate::mock::request::{Endpoint, MessagesRequest};
use crate::shape::plan::request_rng;

fn request(extra: Value) -> MessagesRequest {
    let mut body = json!({"model": "claude-mock-1", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    MessagesRequest::parse(body.to_string().as_bytes(), Endpoint::Messages).unwrap()
}

fn weather_tools() -> Value {
    json!([
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC"]}}, "required": ["zone"]}}
    ])
}

/// (event name, parsed data, kind) of every record, checking the framing.
fn events(reply: Reply) -> Vec<(String, Value, EventKind)> {
    reply
        .into_events()
        .map(|record| {
            let text = std::str::from_utf8(&record.raw).unwrap();
            let body = text.strip_suffix("\n\n").expect("every event ends with a blank line");
            let (event_line, data_line) = body.split_once('\n').expect("two lines");
            let name = event_line.strip_prefix("event: ").unwrap().to_string();
            let data: Value =
                serde_json::from_str(data_line.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], json!(name), "type inside equals the event name");
            (name, data, record.kind)
        })
        .collect()
}

fn names(events: &[(String, Value, EventKind)]) -> Vec<&str> {
    events.iter().map(|(name, ..)| name.as_str()).collect()
}

#[test]
fn a_text_reply_streams_the_full_grammar() {
    let reply = Reply::generate(&request(json!({})), 50, &mut request_rng(1, 0)).unwrap();
    let message = reply.to_message();
    let events = events(reply);
    let mut expected = vec!["message_start", "ping", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", 50));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names(&events), expected);

    let streamed: String =
        events.iter().filter_map(|(_, data, _)| data["delta"]["text"].as_str()).collect();
    assert_eq!(json!(streamed), message["content"][0]["text"]);
    assert!(
        events
            .iter()
            .filter(|e| e.0.starts_with("content_block"))
            .all(|(_, d, _)| d["index"] == json!(0))
    );

    let start = &events[0].1["message"];
    assert_eq!(start["model"], json!("claude-mock-1"));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["id"], message["id"]);
    assert_eq!(events[events.len() - 2].1["delta"]["stop_reason"], json!("end_turn"));
    assert_eq!(events[events.len() - 2].1["usage"]["output_tokens"], json!(50));
    assert_eq!(message["usage"]["output_tokens"], json!(50));
    assert_eq!(message["stop_reason"], json!("end_turn"));

    let kinds: Vec<EventKind> = events.iter().map(|e| e.2).collect();
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Content).count(), 50);
    assert!(!kinds.contains(&EventKind::ToolStart));
}

#[test]
fn max_tokens_caps_the_reply() {
    let reply =
        Reply::generate(&request(json!({"max_tokens": 7})), 50, &mut request_rng(1, 0)).unwrap();
    assert_eq!(reply.output_tokens(), 7);
    assert_eq!(reply.stop_reason, StopReason::MaxTokens);
    assert_eq!(reply.to_message()["stop_reason"], json!("max_tokens"));
}

#[test]
fn a_tool_request_streams_a_tool_call_whose_fragments_join_to_its_input() {
    let reply =
        Reply::generate(&request(json!({"tools": weather_tools()})), 50, &mut request_rng(2, 0))
            .unwrap();
    let message = reply.to_message();
    let events = events(reply);
    let start = events.iter().find(|e| e.0 == "content_block_start").unwrap();
    assert_eq!(start.2, EventKind::ToolStart);
    assert_eq!(start.1["content_block"]["type"], json!("tool_use"));
    assert_eq!(start.1["content_block"]["name"], json!("get_weather"));
    assert_eq!(start.1["content_block"]["input"], json!({}));
    assert!(start.1["content_block"]["id"].as_str().unwrap().starts_with("toolu_"));

    let joined: String =
        events.iter().filter_map(|(_, data, _)| data["delta"]["partial_json"].as_str()).collect();
    let input: Value = serde_json::from_str(&joined).unwrap();
    assert_eq!(input, message["content"][0]["input"]);
    assert!(input["city"].is_string());
    assert_eq!(message["stop_reason"], json!("tool_use"));
    assert_eq!(events[events.len() - 2].1["delta"]["stop_reason"], json!("tool_use"));
}

#[test]
fn tool_choice_decides_which_tool_or_none() {
    let tool_name = |extra: Value| {
        let reply = Reply::generate(&request(extra), 5, &mut request_rng(3, 0)).unwrap();
        match &reply.blocks[0] {
            Block::ToolUse { name, .. } => Some(name.clone()),
            Block::Text { .. } => None,
        }
    };
    let tools = weather_tools();
    assert_eq!(tool_name(json!({"tools": tools})), Some("get_weather".into()));
    assert_eq!(
        tool_name(json!({"tools": tools, "tool_choice": {"type": "any"}})),
        Some("get_weather".into())
    );
    assert_eq!(
        tool_name(json!({"tools": tools, "tool_choice": {"type": "tool", "name": "get_time"}})),
        Some("get_time".into())
    );
    assert_eq!(tool_name(json!({"tools": tools, "tool_choice": {"type": "none"}})), None);

    let after_result = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
    ]);
    assert_eq!(
        tool_name(json!({"tools": tools, "messages": after_result})),
        None,
        "auto answers a tool result in text"
    );
    assert_eq!(
        tool_name(
            json!({"tools": tools, "messages": after_result, "tool_choice": {"type": "any"}})
        ),
        Some("get_weather".into()),
        "a forced tool is honoured even then"
    );
}

#[test]
fn tool_fragments_never_exceed_max_tokens() {
    let schema = json!([{"name": "t", "input_schema": {"type": "object", "properties": {
        "a": {"type": "string", "minLength": 200}}, "required": ["a"]}}]);
    let reply = Reply::generate(
        &request(json!({"tools": schema, "max_tokens": 4})),
        50,
        &mut request_rng(4, 0),
    )
    .unwrap();
    let Block::ToolUse { fragments, input, .. } = &reply.blocks[0] else {
        panic!("tool call expected")
    };
    assert!(fragments.len() <= 4, "{}", fragments.len());
    assert_eq!(fragments.concat(), input.to_string());
}

#[test]
fn the_same_stream_gives_the_same_reply() {
    let a = Reply::generate(&request(json!({})), 50, &mut request_rng(8, 2)).unwrap();
    let b = Reply::generate(&request(json!({})), 50, &mut request_rng(8, 2)).unwrap();
    assert_eq!(a, b);
    let c = Reply::generate(&request(json!({})), 50, &mut request_rng(8, 3)).unwrap();
    assert_ne!(a, c);
}

#[test]
fn the_fast_delta_encoding_matches_serde_json() {
    for fragment in [
        "plain",
        " with \"quotes\" and \\ backslash",
        "new\nline\ttab",
        "unicode é ✓ \u{2028}",
        "{\"a\": [1, 2]}",
    ] {
        let fast = encode_delta(3, "text_delta", "text", fragment);
        let data = json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": fragment}});
        let slow = encode_event("content_block_delta", &data.to_string(), EventKind::Content);
        assert_eq!(fast, slow, "{fragment:?}");
    }
}
