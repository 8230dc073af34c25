//! The Converse mock's requests and streams: frames decode, each payload is
//! the event's flat member, and the stream ends with the stop and the usage.

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::HeaderValue;
use serde_json::{Value, json};

use super::*;
use crate::config::{Thinking, ToolUse};
use crate::mock::HeadFacts;
use crate::shape::request_rng;

fn parsed(body: Value, path: &str) -> crate::mock::request::TurnRequest {
    let head = HeadFacts { path: path.to_string(), ..HeadFacts::default() };
    request::parse(body.to_string().as_bytes(), &head).unwrap()
}

/// Each frame's `:event-type` and payload.
fn decoded(records: &[Record]) -> Vec<(String, Value)> {
    records
        .iter()
        .map(|record| {
            let message = read_message_from(&record.raw[..]).unwrap();
            let name = message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .map(|h| match h.value() {
                    HeaderValue::String(s) => s.as_str().to_string(),
                    _ => String::new(),
                })
                .unwrap();
            (name, serde_json::from_slice(message.payload()).unwrap())
        })
        .collect()
}

#[test]
fn a_text_stream_is_a_delta_a_token_then_the_stop_and_the_usage() {
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 100}});
    let request = parsed(body, "/model/anthropic.claude-x-v1:0/converse-stream");
    assert!(request.stream);
    assert_eq!(request.model, "anthropic.claude-x-v1:0");
    let reply =
        Reply::generate(&request, 5, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap();
    let whole = message(&reply);
    let records: Vec<Record> = events(reply.clone()).collect();
    let frames = decoded(&records);
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"messageStart"));
    assert_eq!(&names[names.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
    let text: String = frames
        .iter()
        .filter(|(n, _)| n == "contentBlockDelta")
        .map(|(_, p)| p["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(json!(text), whole["output"]["message"]["content"][0]["text"]);
    let kinds = records.iter().filter(|r| r.kind == EventKind::Content).count();
    assert_eq!(kinds, 5);
    assert_eq!(frames[frames.len() - 2].1, json!({"stopReason": "end_turn"}));
    assert_eq!(frames.last().unwrap().1["usage"]["outputTokens"], 5);
}

#[test]
fn a_tool_call_opens_its_block_and_streams_its_input() {
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "weather?"}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json":
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}],
            "toolChoice": {"any": {}}},
    });
    let request = parsed(body, "/model/m/converse-stream");
    let reply =
        Reply::generate(&request, 5, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap();
    let records: Vec<Record> = events(reply.clone()).collect();
    let frames = decoded(&records);
    let (name, start) = &frames[1];
    assert_eq!(name, "contentBlockStart");
    assert_eq!(start["start"]["toolUse"]["name"], "get_weather");
    assert!(start["start"]["toolUse"]["toolUseId"].as_str().unwrap().starts_with("tooluse_"));
    assert_eq!(records[1].kind, EventKind::ToolStart);
    let input: String = frames
        .iter()
        .filter_map(|(_, p)| p["delta"]["toolUse"]["input"].as_str().map(str::to_owned))
        .collect();
    let input: Value = serde_json::from_str(&input).unwrap();
    assert!(input["city"].is_string());
    assert_eq!(frames[frames.len() - 2].1, json!({"stopReason": "tool_use"}));
    let whole = message(&reply);
    assert_eq!(whole["output"]["message"]["content"][0]["toolUse"]["input"], input);
}

#[test]
fn bad_requests_name_the_field() {
    let head = HeadFacts { path: "/model/m/converse".to_string(), ..HeadFacts::default() };
    let refuse = |body: Value| request::parse(body.to_string().as_bytes(), &head).unwrap_err().0;
    assert!(refuse(json!({})).contains("messages"));
    assert!(
        refuse(json!({"messages": [{"role": "system", "content": []}]}))
            .contains("messages.0.role")
    );
    assert!(
        refuse(json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
            "inferenceConfig": {"maxTokens": 0}}))
        .contains("inferenceConfig.maxTokens")
    );
}
