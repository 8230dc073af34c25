//! The reply's stream obeys the Messages grammar and agrees with the
//! non-streaming message built from the same reply.

use serde_json::{Value, json};

use super::*;
use crate::config::{Thinking, ToolPick, ToolUse};
use crate::mock::HeadFacts;
use crate::mock::reply::{Block, Reply, StopReason};
use crate::mock::request::TurnRequest;
use crate::shape::request_rng;

fn request(extra: Value) -> TurnRequest {
    let mut body = json!({"model": "claude-mock-1", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    parse(body.to_string().as_bytes(), &HeadFacts::default(), Endpoint::Messages).unwrap()
}

fn weather_tools() -> Value {
    json!([
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC"]}}, "required": ["zone"]}}
    ])
}

/// (event name, parsed data, kind) of every record, checking the framing.
fn decoded(reply: Reply) -> Vec<(String, Value, EventKind)> {
    events(reply)
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
    let reply = Reply::generate(
        &request(json!({})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(1, 0),
    )
    .unwrap();
    let message = message(&reply);
    let events = decoded(reply);
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
    let reply = Reply::generate(
        &request(json!({"max_tokens": 7})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(1, 0),
    )
    .unwrap();
    assert_eq!(reply.output_tokens(), 7);
    assert_eq!(reply.stop_reason, StopReason::MaxTokens);
    assert_eq!(message(&reply)["stop_reason"], json!("max_tokens"));
}

#[test]
fn a_tool_request_streams_a_tool_call_whose_fragments_join_to_its_input() {
    let reply = Reply::generate(
        &request(json!({"tools": weather_tools()})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(2, 0),
    )
    .unwrap();
    let message = message(&reply);
    let events = decoded(reply);
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
        let reply = Reply::generate(
            &request(extra),
            5,
            &ToolUse::DEFAULT,
            &Thinking::DEFAULT,
            &mut request_rng(3, 0),
        )
        .unwrap();
        match &reply.blocks[0] {
            Block::ToolUse { name, .. } => Some(name.clone()),
            Block::Text { .. } | Block::Json { .. } => None,
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
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
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
    let a = Reply::generate(
        &request(json!({})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(8, 2),
    )
    .unwrap();
    let b = Reply::generate(
        &request(json!({})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(8, 2),
    )
    .unwrap();
    assert_eq!(a, b);
    let c = Reply::generate(
        &request(json!({})),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(8, 3),
    )
    .unwrap();
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
        let fast =
            encode_delta(&DeltaHead::new(3, "text_delta", "text"), EventKind::Content, fragment);
        let data = json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": fragment}});
        let slow = encode_event("content_block_delta", &data.to_string(), EventKind::Content);
        assert_eq!(fast, slow, "{fragment:?}");
    }
}

#[test]
fn a_delta_is_encoded_into_a_buffer_of_exactly_its_size() {
    // A buffer 19 bytes short was reallocated mid-write on every token; one
    // with room to spare made `Bytes` allocate its shared header as well.
    for (delta_type, field) in [("text_delta", "text"), ("input_json_delta", "partial_json")] {
        for fragment in [
            "",
            " the",
            " a longer token of text",
            "\"quoted\"",
            "{\"city\": \"Paris\"}",
            "a\u{1}b\n",
        ] {
            for index in [0, 7, 123_456] {
                let head = DeltaHead::new(index, delta_type, field);
                let encoded = encode_delta(&head, EventKind::Content, fragment);
                let room = delta_capacity(&head, JsonString::new(fragment));
                assert_eq!(encoded.raw.len(), room, "{fragment:?}");
            }
        }
    }
}

/// The names of the tools a reply calls, in order.
fn calls(reply: &Reply) -> Vec<&str> {
    reply
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse { name, .. } => Some(name.as_str()),
            Block::Text { .. } | Block::Json { .. } => None,
        })
        .collect()
}

fn twenty_tools() -> Value {
    let tools: Vec<Value> = (0..20)
        .map(|i| {
            let name = if i < 3 { format!("search_{i}") } else { format!("tool_{i}") };
            json!({"name": name, "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}})
        })
        .collect();
    Value::Array(tools)
}

fn with_rounds(rounds: usize) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "hi"})];
    for round in 0..rounds {
        let id = format!("toolu_{round}");
        messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "tool_5", "input": {"q": "x"}}]}));
        messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "ok"}]}));
        messages.push(json!({"role": "system", "content": "reminder"}));
    }
    Value::Array(messages)
}

#[test]
fn the_default_tool_use_calls_the_first_tool_once_and_answers_a_result_in_text() {
    let tools = twenty_tools();
    for seed in 0..50 {
        let reply = Reply::generate(
            &request(json!({"tools": tools, "messages": with_rounds(0)})),
            5,
            &ToolUse::DEFAULT,
            &Thinking::DEFAULT,
            &mut request_rng(seed, 0),
        )
        .unwrap();
        assert_eq!(calls(&reply), ["search_0"]);
        let reply = Reply::generate(
            &request(json!({"tools": tools, "messages": with_rounds(1)})),
            5,
            &ToolUse::DEFAULT,
            &Thinking::DEFAULT,
            &mut request_rng(seed, 0),
        )
        .unwrap();
        assert!(calls(&reply).is_empty());
    }
}

#[test]
fn max_rounds_ends_an_agent_loop_in_text() {
    let tool_use = ToolUse { max_rounds: 3, choice: ToolPick::Uniform, ..ToolUse::DEFAULT };
    let tools = twenty_tools();
    for rounds in 0..6 {
        let reply = Reply::generate(
            &request(json!({"tools": tools, "messages": with_rounds(rounds)})),
            5,
            &tool_use,
            &Thinking::DEFAULT,
            &mut request_rng(1, rounds as u64),
        )
        .unwrap();
        assert_eq!(calls(&reply).len(), usize::from(rounds < 3), "after {rounds} rounds");
        let stop = if rounds < 3 { StopReason::ToolUse } else { StopReason::EndTurn };
        assert_eq!(reply.stop_reason, stop);
    }
    // max_rounds = 0: auto never calls; a forced choice still does.
    let never = ToolUse { max_rounds: 0, ..ToolUse::DEFAULT };
    let generate = |extra: Value| {
        Reply::generate(&request(extra), 5, &never, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap()
    };
    assert!(calls(&generate(json!({"tools": tools}))).is_empty());
    assert_eq!(
        calls(&generate(json!({"tools": tools, "tool_choice": {"type": "any"}}))),
        ["search_0"]
    );
}

#[test]
fn probability_uniform_and_glob_choices_are_seeded_draws() {
    let tools = twenty_tools();
    let draw = |tool_use: &ToolUse, seed: u64| {
        let reply = Reply::generate(
            &request(json!({"tools": tools})),
            5,
            tool_use,
            &Thinking::DEFAULT,
            &mut request_rng(seed, 0),
        )
        .unwrap();
        calls(&reply).iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // probability 0.3 over 1,000 seeds: 300 expected, within 5 standard deviations.
    let sometimes = ToolUse { probability: 0.3, ..ToolUse::DEFAULT };
    let called = (0..1000).filter(|&seed| !draw(&sometimes, seed).is_empty()).count();
    assert!((228..=372).contains(&called), "{called}");
    assert_eq!(draw(&sometimes, 7), draw(&sometimes, 7), "the same seed, the same choice");

    let uniform = ToolUse { choice: ToolPick::Uniform, ..ToolUse::DEFAULT };
    let distinct: std::collections::BTreeSet<String> =
        (0..400).flat_map(|seed| draw(&uniform, seed)).collect();
    assert_eq!(distinct.len(), 20, "every tool is drawn");

    let search = ToolUse {
        choice: ToolPick::Named(glob::Pattern::new("search_*").unwrap()),
        ..ToolUse::DEFAULT
    };
    let drawn: std::collections::BTreeSet<String> =
        (0..200).flat_map(|seed| draw(&search, seed)).collect();
    assert_eq!(drawn.into_iter().collect::<Vec<_>>(), ["search_0", "search_1", "search_2"]);
    let nothing = ToolUse {
        choice: ToolPick::Named(glob::Pattern::new("missing").unwrap()),
        ..ToolUse::DEFAULT
    };
    assert!(draw(&nothing, 1).is_empty(), "auto with no tool matching answers in text");
}

#[test]
fn parallel_calls_stream_one_block_each() {
    let tool_use = ToolUse { parallel_calls: 3, choice: ToolPick::Uniform, ..ToolUse::DEFAULT };
    let reply = Reply::generate(
        &request(json!({"tools": weather_tools()})),
        5,
        &tool_use,
        &Thinking::DEFAULT,
        &mut request_rng(5, 0),
    )
    .unwrap();
    assert_eq!(calls(&reply).len(), 3);
    let message = message(&reply);
    let events = decoded(reply);
    let starts: Vec<&Value> =
        events.iter().filter(|e| e.0 == "content_block_start").map(|e| &e.1).collect();
    assert_eq!(starts.len(), 3);
    let ids: std::collections::BTreeSet<&str> =
        starts.iter().map(|s| s["content_block"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each call has its own id");
    for (index, start) in starts.iter().enumerate() {
        assert_eq!(start["index"], json!(index));
        let joined: String = events
            .iter()
            .filter(|e| e.1["index"] == json!(index))
            .filter_map(|e| e.1["delta"]["partial_json"].as_str())
            .collect();
        let input: Value = serde_json::from_str(&joined).unwrap();
        assert_eq!(input, message["content"][index]["input"]);
    }
    // disable_parallel_tool_use: one call.
    let reply = Reply::generate(
        &request(json!({"tools": weather_tools(), "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}})),
        5,
        &tool_use,
        &Thinking::DEFAULT,
        &mut request_rng(5, 0),
    )
    .unwrap();
    assert_eq!(calls(&reply).len(), 1);
}

#[test]
fn structured_output_is_json_of_the_schema_streamed_as_text() {
    let schema = json!({"type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}},
        "required": ["city", "zip", "confidence"]});
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (seed, extra) in [
        (1, json!({"output_config": {"format": {"type": "json_schema", "schema": schema}}})),
        (2, json!({"output_format": {"type": "json_schema", "schema": schema}})),
    ] {
        let reply = Reply::generate(
            &request(extra),
            50,
            &ToolUse::DEFAULT,
            &Thinking::DEFAULT,
            &mut request_rng(seed, 0),
        )
        .unwrap();
        assert_eq!(reply.stop_reason, StopReason::EndTurn);
        let message = message(&reply);
        let text = message["content"][0]["text"].as_str().unwrap().to_string();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(validator.is_valid(&value), "{value}");
        let events = decoded(reply);
        let streamed: String =
            events.iter().filter_map(|(_, data, _)| data["delta"]["text"].as_str()).collect();
        assert_eq!(streamed, text);
        assert!(events.iter().filter(|e| e.0 == "content_block_delta").count() > 1);
    }
    // A tool the request forces is called even with an output format.
    let forced = json!({"output_config": {"format": {"type": "json_schema", "schema": schema}},
        "tools": weather_tools(), "tool_choice": {"type": "any"}});
    let reply = Reply::generate(
        &request(forced),
        50,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(3, 0),
    )
    .unwrap();
    assert_eq!(calls(&reply), ["get_weather"]);
}

fn thinking_reply(extra: Value, thinking: &Thinking, seed: u64) -> Reply {
    let mut asked =
        json!({"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048}});
    for (key, value) in extra.as_object().unwrap() {
        asked[key] = value.clone();
    }
    Reply::generate(&request(asked), 5, &ToolUse::DEFAULT, thinking, &mut request_rng(seed, 0))
        .unwrap()
}

#[test]
fn a_thinking_reply_opens_with_a_signed_thinking_block() {
    let thinking = Thinking { tokens: 12, redacted: false, reasoning_content: false };
    let reply = thinking_reply(json!({}), &thinking, 4);
    let message = message(&reply);
    let events = decoded(reply);
    let mut expected = vec!["message_start", "ping", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", 12 + 1));
    expected.extend(["content_block_stop", "content_block_start"]);
    expected.extend(std::iter::repeat_n("content_block_delta", 5));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names(&events), expected);
    assert_eq!(
        events[2].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let thinking_deltas: Vec<_> =
        events.iter().filter(|(_, d, _)| d["delta"]["type"] == "thinking_delta").collect();
    assert_eq!(thinking_deltas.len(), 12);
    assert!(
        thinking_deltas.iter().all(|(_, d, kind)| d["index"] == 0 && *kind == EventKind::Thinking)
    );
    let streamed: String =
        thinking_deltas.iter().map(|(_, d, _)| d["delta"]["thinking"].as_str().unwrap()).collect();
    let signature = &events[3 + 12].1["delta"];
    assert_eq!(
        signature["type"], "signature_delta",
        "one signature, after the last thinking delta"
    );
    assert_eq!(signature["signature"], json!(thinking::signature(&streamed)));
    assert_eq!(events[3 + 12].2, EventKind::Other, "a signature is not a token");
    assert_eq!(events[17].1["index"], 1, "the text block comes second");
    assert_eq!(
        message["content"][0],
        json!({"type": "thinking", "thinking": streamed, "signature": thinking::signature(&streamed)})
    );
    assert_eq!(message["content"][1]["type"], "text");
    assert_eq!(message["usage"]["output_tokens"], json!(12 + 5), "thinking counts as output");
    assert_eq!(events[events.len() - 2].1["usage"]["output_tokens"], json!(17));
}

#[test]
fn a_redacted_thought_comes_whole_and_thinking_is_capped_by_budget_and_effort() {
    let redacted = Thinking { tokens: 12, redacted: true, reasoning_content: false };
    let reply = thinking_reply(json!({}), &redacted, 4);
    assert_eq!(reply.thought.as_ref().unwrap().unseen(), 12, "its time is spent unseen");
    let message = message(&reply);
    let events = decoded(reply);
    assert_eq!(
        &names(&events)[..5],
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_stop",
            "content_block_start"
        ]
    );
    let block = &events[2].1["content_block"];
    assert_eq!(block["type"], "redacted_thinking");
    assert_eq!(block["data"], message["content"][0]["data"]);
    assert!(!events.iter().any(|(_, _, kind)| *kind == EventKind::Thinking));

    let many = Thinking { tokens: 100_000, redacted: false, reasoning_content: false };
    assert_eq!(
        thinking_reply(json!({}), &many, 1).thinking_tokens(),
        2048,
        "at most budget_tokens"
    );
    let adaptive = |effort: &str| {
        let asked = json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}});
        thinking_reply(
            asked,
            &Thinking { tokens: 400, redacted: false, reasoning_content: false },
            1,
        )
        .thinking_tokens()
    };
    assert_eq!(
        [adaptive("low"), adaptive("medium"), adaptive("high"), adaptive("max")],
        [100, 200, 400, 400]
    );
    // max_tokens bounds thinking and text together: text keeps at least one.
    let asked = json!({"max_tokens": 3000, "thinking": {"type": "enabled", "budget_tokens": 2999}});
    let reply = thinking_reply(asked, &many, 1);
    assert_eq!((reply.thinking_tokens(), reply.output_tokens()), (2999, 3000));
    assert_eq!(reply.stop_reason, StopReason::MaxTokens);
}

#[test]
fn a_turn_after_tool_results_thinks_again_only_when_interleaved() {
    let thinking = Thinking { tokens: 8, redacted: false, reasoning_content: false };
    let first = thinking_reply(
        json!({"tools": weather_tools(), "tool_choice": {"type": "auto"}}),
        &thinking,
        2,
    );
    let message = message(&first);
    assert_eq!(message["content"][0]["type"], "thinking");
    assert_eq!(message["content"][1]["type"], "tool_use");
    let id = message["content"][1]["id"].clone();
    let history = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "18C"}]}
    ]);
    let body = json!({"model": "m", "max_tokens": 4096, "messages": history, "tools": weather_tools(),
        "thinking": {"type": "enabled", "budget_tokens": 2048}});
    let parse_with = |betas: &[&str]| {
        let head = HeadFacts {
            version: None,
            betas: betas.iter().map(|b| (*b).to_string()).collect(),
            ..HeadFacts::default()
        };
        parse(body.to_string().as_bytes(), &head, Endpoint::Messages)
    };
    let plain = parse_with(&[]).expect("the signed history is accepted");
    assert!(!plain.reasoning.unwrap().this_turn);
    let after =
        Reply::generate(&plain, 5, &ToolUse::DEFAULT, &thinking, &mut request_rng(2, 1)).unwrap();
    assert!(after.thought.is_none(), "no new thinking block");
    let interleaved = parse_with(&[thinking::INTERLEAVED_BETA]).unwrap();
    let after =
        Reply::generate(&interleaved, 5, &ToolUse::DEFAULT, &thinking, &mut request_rng(2, 1))
            .unwrap();
    assert_eq!(after.thinking_tokens(), 8, "interleaved: thinking after the tool result");
}

proptest::proptest! {
    /// Whatever the thinking, budget, tools and lengths, the stream keeps the
    /// grammar: dense indexes from 0, the thought first, one signature that
    /// signs the streamed thinking just before its block stops, and usage and
    /// the non-streamed message agree with what streamed.
    #[test]
    fn a_thinking_stream_keeps_the_grammar_and_agrees_with_its_message(
        seed in 0u64..10_000,
        thinking_tokens in 0u32..300,
        redacted in proptest::bool::ANY,
        budget in 1024u64..4000,
        headroom in 1u64..3000,
        with_tools in proptest::bool::ANY,
        text_tokens in 1u32..120,
    ) {
        let mut asked = json!({"max_tokens": budget + headroom,
            "thinking": {"type": "enabled", "budget_tokens": budget}});
        if with_tools {
            asked["tools"] = weather_tools();
        }
        let thinking = Thinking { tokens: thinking_tokens, redacted, reasoning_content: false };
        let reply = Reply::generate(&request(asked), text_tokens, &ToolUse::DEFAULT, &thinking, &mut request_rng(seed, 0)).unwrap();
        let expected_thinking = usize::try_from(thinking_tokens).unwrap();
        proptest::prop_assert_eq!(reply.thinking_tokens(), expected_thinking);
        let message = message(&reply);
        let output_tokens = reply.output_tokens();
        let events = decoded(reply);
        let mut open: Option<u64> = None;
        let mut next_index = 0u64;
        let mut thinking_text = String::new();
        let mut signatures = Vec::new();
        let mut last_delta_type = String::new();
        let mut content_deltas = 0usize;
        for (name, data, _) in &events {
            match name.as_str() {
                "content_block_start" => {
                    proptest::prop_assert!(open.is_none(), "one block open at a time");
                    proptest::prop_assert_eq!(data["index"].as_u64(), Some(next_index));
                    open = Some(next_index);
                    next_index += 1;
                }
                "content_block_delta" => {
                    proptest::prop_assert_eq!(data["index"].as_u64(), open);
                    let kind = data["delta"]["type"].as_str().unwrap().to_string();
                    match kind.as_str() {
                        "thinking_delta" => thinking_text.push_str(data["delta"]["thinking"].as_str().unwrap()),
                        "signature_delta" => signatures.push(data["delta"]["signature"].as_str().unwrap().to_string()),
                        _ => content_deltas += 1,
                    }
                    last_delta_type = kind;
                }
                "content_block_stop" => {
                    proptest::prop_assert_eq!(data["index"].as_u64(), open);
                    if open == Some(0) && !redacted {
                        proptest::prop_assert_eq!(&last_delta_type, "signature_delta", "the signature ends the thinking block");
                    }
                    open = None;
                }
                _ => {}
            }
        }
        proptest::prop_assert_eq!(&message["content"][0]["type"], if redacted { "redacted_thinking" } else { "thinking" });
        if redacted {
            proptest::prop_assert!(signatures.is_empty() && thinking_text.is_empty());
        } else {
            proptest::prop_assert_eq!(signatures.clone(), vec![thinking::signature(&thinking_text)]);
            proptest::prop_assert_eq!(&message["content"][0]["thinking"], &json!(thinking_text));
            proptest::prop_assert_eq!(&message["content"][0]["signature"], &json!(signatures[0]));
        }
        proptest::prop_assert_eq!(output_tokens, expected_thinking + content_deltas);
        proptest::prop_assert_eq!(&events[events.len() - 2].1["usage"]["output_tokens"], &json!(output_tokens));
        proptest::prop_assert_eq!(&message["usage"]["output_tokens"], &json!(output_tokens));
    }
}

fn searching() -> ToolUse {
    ToolUse { web_search: 1.0, ..ToolUse::DEFAULT }
}

#[test]
fn a_request_offering_web_search_gets_a_search_its_results_and_cited_text() {
    let asked =
        json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]});
    let reply = Reply::generate(
        &request(asked.clone()),
        6,
        &searching(),
        &Thinking::DEFAULT,
        &mut request_rng(5, 0),
    )
    .unwrap();
    let query_fragments = reply.search.as_ref().unwrap().fragments.len();
    let message = message(&reply);
    let events = decoded(reply);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "content_block_start")
        .map(|e| &e.1["content_block"])
        .collect();
    assert_eq!(starts[0]["type"], "server_tool_use");
    assert!(starts[0]["id"].as_str().unwrap().starts_with("srvtoolu_"));
    assert_eq!(starts[0]["name"], "web_search");
    assert_eq!(starts[1]["type"], "web_search_tool_result");
    assert_eq!(starts[1]["tool_use_id"], starts[0]["id"]);
    assert_eq!(starts[1]["content"].as_array().unwrap().len(), 3);
    assert_eq!(starts[2]["type"], "text");
    let kinds: Vec<EventKind> =
        events.iter().filter(|e| e.0 == "content_block_start").map(|e| e.2).collect();
    assert_eq!(kinds, [EventKind::ToolStart, EventKind::Other, EventKind::Other]);
    let query: String = events
        .iter()
        .filter(|e| e.1["index"] == 0 && e.1["delta"]["type"] == "input_json_delta")
        .map(|e| e.1["delta"]["partial_json"].as_str().unwrap())
        .collect();
    let query: Value = serde_json::from_str(&query).unwrap();
    assert_eq!(query, message["content"][0]["input"]);
    let text_deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e.1["index"] == 2 && e.0 == "content_block_delta")
        .map(|e| &e.1["delta"])
        .collect();
    assert_eq!(text_deltas[0]["type"], "citations_delta", "the citation opens the text");
    assert_eq!(text_deltas[0]["citation"], message["content"][2]["citations"][0]);
    assert_eq!(text_deltas[0]["citation"]["url"], starts[1]["content"][0]["url"]);
    assert_eq!(text_deltas.len(), 1 + 6);
    let usage = &events[events.len() - 2].1["usage"];
    assert_eq!(usage["server_tool_use"]["web_search_requests"], 1);
    assert_eq!(usage["output_tokens"], json!(query_fragments + 6));
    assert_eq!(message["usage"]["server_tool_use"], usage["server_tool_use"]);
    // Off by default, and with none offered.
    let plain = Reply::generate(
        &request(asked),
        6,
        &ToolUse::DEFAULT,
        &Thinking::DEFAULT,
        &mut request_rng(5, 0),
    )
    .unwrap();
    assert!(plain.search.is_none());
    let none = Reply::generate(
        &request(json!({})),
        6,
        &searching(),
        &Thinking::DEFAULT,
        &mut request_rng(5, 0),
    )
    .unwrap();
    assert!(none.search.is_none());
}

#[test]
fn the_fixed_events_are_written_as_json_would_write_them() {
    for index in [0usize, 7, 12_345, usize::MAX] {
        let cases = [
            ("ping", FixedEvent::Ping, json!({"type": "ping"})),
            ("message_stop", FixedEvent::MessageStop, json!({"type": "message_stop"})),
            (
                "content_block_start",
                FixedEvent::TextBlockStart(index),
                json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_stop",
                FixedEvent::BlockStop(index),
                json!({"type": "content_block_stop", "index": index}),
            ),
        ];
        for (name, fixed, value) in cases {
            let expected = encode_event(name, &value.to_string(), EventKind::Other);
            let written = fixed_event(fixed);
            assert_eq!(written.raw, expected.raw, "{name} at {index}");
            assert_eq!(written.kind, EventKind::Other);
        }
    }
}

/// `message_start` and `message_delta` as `json!` builds them (as the mock
/// built them before they were written directly).
fn start_and_delta_by_json(reply: &Reply) -> [Record; 2] {
    let start = json!({"type": "message_start", "message": {
        "id": format!("msg_{}", reply.id), "type": "message", "role": "assistant", "model": reply.model,
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(reply, 1),
    }});
    let mut usage = json!({"output_tokens": reply.output_tokens()});
    if reply.search.is_some() {
        usage["server_tool_use"] = json!({"web_search_requests": 1});
    }
    let delta = json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason(reply.stop_reason), "stop_sequence": null},
        "usage": usage});
    [
        encode_event("message_start", &start.to_string(), EventKind::Other),
        encode_event("message_delta", &delta.to_string(), EventKind::Other),
    ]
}

#[test]
fn message_start_and_delta_are_written_as_json_would_write_them() {
    let web_search =
        json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]});
    let cases = [
        (json!({}), ToolUse::DEFAULT),
        (json!({"model": "claude \"quoted\"\n\u{1}é"}), ToolUse::DEFAULT),
        (json!({"tools": weather_tools()}), ToolUse { probability: 1.0, ..ToolUse::DEFAULT }),
        (web_search, searching()),
        (json!({"max_tokens": 3}), ToolUse::DEFAULT),
    ];
    let mut searched = 0;
    for (seed, (extra, tools)) in (0u64..).zip(cases) {
        let reply = Reply::generate(
            &request(extra),
            50,
            &tools,
            &Thinking::DEFAULT,
            &mut request_rng(seed, 0),
        )
        .unwrap();
        searched += usize::from(reply.search.is_some());
        let records: Vec<Record> = events(reply.clone()).collect();
        let [start, delta] = start_and_delta_by_json(&reply);
        assert_eq!(records.first().unwrap().raw, start.raw, "message_start, case {seed}");
        assert_eq!(records[records.len() - 2].raw, delta.raw, "message_delta, case {seed}");
        assert_eq!(records.first().unwrap().kind, EventKind::Other);
    }
    assert_eq!(searched, 1, "one case searched");
}
