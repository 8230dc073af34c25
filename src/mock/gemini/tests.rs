//! The Gemini mock's requests and streams: the path names the model and the
//! method, chunks are whole responses, the last carries the end.

use serde_json::{Value, json};

use super::*;
use crate::config::{Thinking, ToolUse};
use crate::mock::HeadFacts;
use crate::mock::request::TurnRequest;
use crate::shape::request_rng;

fn head(path: &str, alt_sse: bool) -> HeadFacts {
    HeadFacts { path: path.to_string(), alt_sse, ..HeadFacts::default() }
}

fn parsed(body: Value, path: &str) -> TurnRequest {
    request::parse(body.to_string().as_bytes(), &head(path, true)).unwrap()
}

fn hello() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

fn chunks(records: impl Iterator<Item = Record>) -> Vec<(Value, EventKind)> {
    records
        .map(|record| {
            let text = std::str::from_utf8(&record.raw).unwrap();
            let data = text.strip_prefix("data: ").unwrap().strip_suffix("\r\n\r\n").unwrap();
            (serde_json::from_str(data).unwrap(), record.kind)
        })
        .collect()
}

#[test]
fn the_path_names_the_model_and_the_method_under_every_base() {
    assert_eq!(
        model_of("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
        Some(("gemini-2.5-flash", "streamGenerateContent"))
    );
    assert_eq!(
        model_of("/v1/models/gemini-2.5-pro:generateContent"),
        Some(("gemini-2.5-pro", "generateContent"))
    );
    assert_eq!(
        model_of(
            "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:countTokens"
        ),
        Some(("gemini-2.5-pro", "countTokens"))
    );
    assert_eq!(model_of("/v1/models/gpt-4o"), None);
    assert_eq!(model_of("/v2/models/g:generateContent"), None);
    let request = parsed(hello(), "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert!(request.stream && !request.array_stream);
    assert_eq!(request.model, "gemini-2.5-flash");
    let array = request::parse(
        hello().to_string().as_bytes(),
        &head("/v1beta/models/g:streamGenerateContent", false),
    )
    .unwrap();
    assert!(array.array_stream, "without alt=sse, a JSON array");
}

#[test]
fn a_text_stream_is_one_chunk_a_token_and_the_last_carries_the_end() {
    let request = parsed(hello(), "/v1beta/models/g:streamGenerateContent");
    let reply =
        Reply::generate(&request, 5, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap();
    let whole = message(&reply);
    let chunks = chunks(events(reply, false));
    assert_eq!(chunks.len(), 5);
    assert!(chunks.iter().all(|(_, kind)| *kind == EventKind::Content));
    let text: String = chunks
        .iter()
        .map(|(c, _)| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(json!(text), whole["candidates"][0]["content"]["parts"][0]["text"]);
    for (chunk, _) in &chunks[..4] {
        assert!(chunk["candidates"][0].get("finishReason").is_none());
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
    }
    let last = &chunks[4].0;
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 5);
    assert_eq!(last["responseId"], whole["responseId"]);
}

#[test]
fn a_function_call_comes_whole_in_one_chunk_and_thoughts_first() {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}}});
    let request = parsed(body, "/v1beta/models/g:streamGenerateContent");
    let thinking = Thinking { tokens: 6, redacted: false, reasoning_content: false };
    let reply =
        Reply::generate(&request, 5, &ToolUse::DEFAULT, &thinking, &mut request_rng(1, 0)).unwrap();
    let chunks = chunks(events(reply, false));
    assert_eq!(chunks.len(), 6 + 1);
    assert!(chunks[..6].iter().all(|(c, kind)| *kind == EventKind::Thinking
        && c["candidates"][0]["content"]["parts"][0]["thought"] == true));
    let (call, kind) = &chunks[6];
    assert_eq!(*kind, EventKind::ToolStart);
    let part = &call["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(part["name"], "get_weather");
    assert!(part["args"]["city"].is_string(), "args made from the capitalised schema");
    assert!(part.get("id").is_none(), "no invented ids");
    assert_eq!(call["candidates"][0]["finishReason"], "STOP");
    assert_eq!(call["usageMetadata"]["thoughtsTokenCount"], 6);
}

#[test]
fn without_alt_sse_the_chunks_are_a_json_array() {
    let request = request::parse(
        hello().to_string().as_bytes(),
        &head("/v1beta/models/g:streamGenerateContent", false),
    )
    .unwrap();
    let reply =
        Reply::generate(&request, 3, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap();
    let raw: String =
        events(reply, true).map(|r| String::from_utf8(r.raw.to_vec()).unwrap()).collect();
    let array: Vec<Value> = serde_json::from_str(&raw).unwrap();
    assert_eq!(array.len(), 3);
    assert!(raw.starts_with("[{") && raw.ends_with("}]") && raw.contains("},\r\n{"));
}

#[test]
fn bad_requests_are_named() {
    let error = |body: Value| {
        request::parse(
            body.to_string().as_bytes(),
            &head("/v1beta/models/g:generateContent", false),
        )
        .unwrap_err()
        .0
    };
    assert_eq!(error(json!({})), "contents: at least one content is required");
    assert_eq!(
        error(json!({"contents": [{"role": "bot", "parts": []}]})),
        "contents.0.role: expected \"user\" or \"model\", got \"bot\""
    );
    assert_eq!(error(json!({"contents": [{"role": "user"}]})), "contents.0.parts: field required");
    let mut candidates = hello();
    candidates["generationConfig"] = json!({"candidateCount": 2});
    assert!(error(candidates).starts_with("generationConfig.candidateCount:"));
}

#[test]
fn vertex_predict_embeds_each_instance_within_bounds() {
    let mut rng = request_rng(1, 0);
    let body = json!({"instances": [{"content": "a cat"}, {"content": "a cat"}],
        "parameters": {"outputDimensionality": 4}});
    let answer: Value =
        serde_json::from_str(&embed::predict(body.to_string().as_bytes(), &mut rng).unwrap())
            .unwrap();
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    assert_eq!(predictions[0]["embeddings"]["values"].as_array().unwrap().len(), 4);
    assert_eq!(predictions[0], predictions[1]);
    assert_eq!(predictions[0]["embeddings"]["statistics"]["truncated"], false);
    // Without parameters, text-embedding-005's 768.
    let plain = json!({"instances": [{"content": "x"}]}).to_string();
    let answer: Value =
        serde_json::from_str(&embed::predict(plain.as_bytes(), &mut rng).unwrap()).unwrap();
    assert_eq!(answer["predictions"][0]["embeddings"]["values"].as_array().unwrap().len(), 768);
    // 2,048 instances of 8,192 numbers is over the 2^20 budget.
    let many: Vec<Value> = (0..2048).map(|_| json!({"content": "x"})).collect();
    let huge = json!({"instances": many, "parameters": {"outputDimensionality": 8192}});
    assert!(embed::predict(huge.to_string().as_bytes(), &mut rng).is_err());
    assert!(embed::predict(br#"{"instances": [{"content": 3}]}"#, &mut rng).is_err());
}

mod templates {
    use proptest::prelude::*;

    use super::*;

    fn reply() -> Reply {
        let request = parsed(hello(), "/v1beta/models/g:streamGenerateContent");
        Reply::generate(&request, 5, &ToolUse::DEFAULT, &Thinking::DEFAULT, &mut request_rng(1, 0))
            .unwrap()
    }

    proptest! {
        /// A token's chunk from the template is byte for byte the chunk
        /// built as a tree, whatever the token holds (quotes, controls,
        /// any Unicode, the marker's own text).
        #[test]
        fn a_templated_chunk_is_the_built_chunk(token in "(\\PC|[\"\\\\\u{0}-\u{1f}]|sluice-token){0,12}") {
            let reply = reply();
            let text = Template::of(&reply, json!({"text": Template::MARK}));
            let built = chunk(&reply, vec![json!({"text": token})], false).to_string();
            prop_assert_eq!(&text.render(&token, "", "")[..], built.as_bytes());
            let thought = Template::of(&reply, json!({"text": Template::MARK, "thought": true}));
            let built = chunk(&reply, vec![json!({"text": token, "thought": true})], false);
            let framed = format!("data: {built}\r\n\r\n");
            prop_assert_eq!(&thought.render(&token, "data: ", "\r\n\r\n")[..], framed.as_bytes());
        }
    }
}
