//! Validation of a `POST /v1/messages` body, as the real API does it: the
//! first problem found is named by its field path (`messages.0.role`) in a 400
//! `invalid_request_error`. What the mock does not use (system, metadata,
//! temperature, ...) is accepted and ignored, as current and older SDKs both
//! send it. `thinking` is read by [`super::thinking`].

use serde_json::{Map, Value};

use crate::mock::request::{
    HeadFacts, InvalidRequest, OutputSchema, Tool, ToolChoice, TurnRequest, invalid, message_list,
    tool_name, tool_objects, tool_rounds, tool_schema, type_name,
};
use crate::route::rough_tokens;

/// What is required of the body: the Messages API needs `max_tokens`,
/// `count_tokens` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

/// Parses and validates a request body.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(
    body: &[u8],
    head: &HeadFacts,
    endpoint: Endpoint,
) -> Result<TurnRequest, InvalidRequest> {
    let object = crate::mock::request::body_object(body)?;
    let model = match object.get("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        Some(Value::String(_)) => return Err(invalid("model", "must not be empty")),
        Some(other) => {
            return Err(invalid(
                "model",
                format_args!("expected a string, got {}", type_name(other)),
            ));
        }
        None => return Err(invalid("model", "field required")),
    };
    let max_tokens = match (object.get("max_tokens"), endpoint) {
        (Some(value), _) => value.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            invalid("max_tokens", format_args!("expected an integer of at least 1, got {value}"))
        })?,
        (None, Endpoint::Messages) => return Err(invalid("max_tokens", "field required")),
        (None, Endpoint::CountTokens) => u64::MAX,
    };
    let tool_rounds = validate_messages(object.get("messages"))?;
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => {
            return Err(invalid(
                "stream",
                format_args!("expected a boolean, got {}", type_name(other)),
            ));
        }
    };
    let tools = parse_tools(object.get("tools"))?;
    let web_search = web_search_tool(object.get("tools"));
    let tool_choice = parse_tool_choice(object.get("tool_choice"), &tools)?;
    let disable_parallel_tool_use = object
        .get("tool_choice")
        .and_then(|choice| choice.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let output_schema = parse_output_format(&object)?;
    if head.version.as_deref().is_some_and(|version| version >= VERSION_2026_10_21) {
        refuse_what_the_new_version_removed(&object)?;
    }
    let given_max = (endpoint == Endpoint::Messages).then_some(max_tokens);
    let reasoning = super::thinking::parse(&object, head, given_max, &tool_choice, tool_rounds)?;
    if reasoning.is_some()
        && let Some(Value::Array(messages)) = object.get("messages")
    {
        super::thinking::check_history(messages, tool_rounds)?;
    }
    Ok(TurnRequest {
        model,
        max_tokens,
        stream,
        tools,
        tool_choice,
        tool_rounds,
        disable_parallel_tool_use,
        output_schema,
        input_tokens: rough_tokens(body),
        stream_usage: false,
        stop: Vec::new(),
        echo: Value::Null,
        reasoning,
        web_search,
        array_stream: false,
    })
}

/// The first API version since 2023-06-01 (`docs/protocols.md` §6): the
/// current SDKs send it, and it refuses what older versions accepted.
pub(crate) const VERSION_2026_10_21: &str = "2026-10-21";

/// What version 2026-10-21 refuses (`docs/protocols.md` §6): the sampling
/// parameters, `document` blocks in assistant messages, and citations on
/// user text.
fn refuse_what_the_new_version_removed(object: &Map<String, Value>) -> Result<(), InvalidRequest> {
    for field in ["temperature", "top_p", "top_k"] {
        if object.get(field).is_some_and(|value| !value.is_null()) {
            return Err(InvalidRequest(format!("`{field}` is deprecated for this model.")));
        }
    }
    let Some(Value::Array(messages)) = object.get("messages") else { return Ok(()) };
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        let Some(Value::Array(blocks)) = message.get("content") else { continue };
        for (j, block) in blocks.iter().enumerate() {
            let kind = block.get("type").and_then(Value::as_str);
            if role == Some("assistant") && kind == Some("document") {
                return Err(invalid(
                    &format!("messages.{i}.content.{j}"),
                    format_args!(
                        "`document` blocks are not accepted in `assistant` messages with \
                         anthropic-version {VERSION_2026_10_21}"
                    ),
                ));
            }
            let cited =
                block.get("citations").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
            if role == Some("user") && kind == Some("text") && cited {
                return Err(invalid(
                    &format!("messages.{i}.content.{j}.citations"),
                    format_args!(
                        "`citations` must be empty on `text` blocks in `user` messages with \
                         anthropic-version {VERSION_2026_10_21}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks `messages`; returns the tool rounds the conversation ends with.
fn validate_messages(messages: Option<&Value>) -> Result<u32, InvalidRequest> {
    let messages = message_list(
        messages,
        &["user", "assistant", "system"],
        "\"user\", \"assistant\" or \"system\"",
    )?;
    for (i, message) in messages.iter().enumerate() {
        match message.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (j, block) in blocks.iter().enumerate() {
                    if !block.get("type").is_some_and(Value::is_string) {
                        return Err(invalid(
                            &format!("messages.{i}.content.{j}.type"),
                            "field required",
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(invalid(
                    &format!("messages.{i}.content"),
                    format_args!(
                        "expected a string or an array of content blocks, got {}",
                        type_name(other)
                    ),
                ));
            }
            None => return Err(invalid(&format!("messages.{i}.content"), "field required")),
        }
    }
    let calls_a_tool = |m: &Value| {
        m.get("content").and_then(Value::as_array).is_some_and(|blocks| {
            blocks.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        })
    };
    Ok(tool_rounds(messages, calls_a_tool))
}

/// `output_config.format` (or the beta's top-level `output_format`):
/// `{"type": "json_schema", "schema": {...}}`.
fn parse_output_format(
    object: &Map<String, Value>,
) -> Result<Option<OutputSchema>, InvalidRequest> {
    let (field, format) = match (object.get("output_config"), object.get("output_format")) {
        (Some(Value::Object(config)), _) if config.get("format").is_some_and(|f| !f.is_null()) => {
            ("output_config.format", &config["format"])
        }
        (
            Some(config @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_))),
            _,
        ) => {
            return Err(invalid(
                "output_config",
                format_args!("expected an object, got {}", type_name(config)),
            ));
        }
        (_, Some(format)) if !format.is_null() => ("output_format", format),
        _ => return Ok(None),
    };
    let Value::Object(format) = format else {
        return Err(invalid(field, format_args!("expected an object, got {}", type_name(format))));
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {}
        _ => {
            return Err(invalid(
                &format!("{field}.type"),
                format_args!(
                    "expected \"json_schema\", got {}",
                    format.get("type").unwrap_or(&Value::Null)
                ),
            ));
        }
    }
    let field = if field == "output_format" {
        "output_format.schema"
    } else {
        "output_config.format.schema"
    };
    match format.get("schema") {
        Some(schema @ Value::Object(_)) => Ok(Some(OutputSchema { field, schema: schema.clone() })),
        Some(other) => Err(invalid(
            field,
            format_args!("expected a JSON Schema object, got {}", type_name(other)),
        )),
        None => Err(invalid(field, "field required")),
    }
}

fn parse_tools(tools: Option<&Value>) -> Result<Vec<Tool>, InvalidRequest> {
    let mut parsed = Vec::new();
    for (i, tool) in tool_objects(tools)? {
        let prefix = format!("tools.{i}");
        let name = tool_name(tool, &prefix)?;
        if is_server_tool(tool) {
            continue; // e.g. {"type": "web_search_20250305"}: run by the provider, never returned as tool_use
        }
        let input_schema = tool_schema(tool, "input_schema", &prefix, None)?;
        parsed.push(Tool { name, input_schema });
    }
    Ok(parsed)
}

/// The name of the web search server tool offered (`{"type":
/// "web_search_20250305", "name": "web_search"}`), if one is.
fn web_search_tool(tools: Option<&Value>) -> Option<String> {
    tools?.as_array()?.iter().find_map(|tool| {
        let kind = tool.get("type")?.as_str()?;
        kind.starts_with("web_search")
            .then(|| tool.get("name").and_then(Value::as_str).unwrap_or("web_search").to_string())
    })
}

fn is_server_tool(tool: &Map<String, Value>) -> bool {
    tool.get("type").and_then(Value::as_str).is_some_and(|kind| kind != "custom")
}

fn parse_tool_choice(choice: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, InvalidRequest> {
    let choice = match choice {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::Object(choice)) => choice,
        Some(other) => {
            return Err(invalid(
                "tool_choice",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Any),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid("tool_choice.name", "field required when type is \"tool\"")
            })?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(invalid(
                    "tool_choice.name",
                    format_args!("no tool named {name:?} in tools"),
                ));
            }
            Ok(ToolChoice::Tool(name.to_string()))
        }
        _ => Err(invalid(
            "tool_choice.type",
            format_args!(
                "expected \"auto\", \"any\", \"tool\" or \"none\", got {}",
                choice.get("type").unwrap_or(&Value::Null)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_value(body: Value) -> Result<TurnRequest, String> {
        parse(body.to_string().as_bytes(), &HeadFacts::default(), Endpoint::Messages)
            .map_err(|e| e.0)
    }

    fn minimal() -> Value {
        json!({"model": "claude-mock-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut body = minimal();
        body[key] = value;
        body
    }

    fn without(key: &str) -> Value {
        let mut body = minimal();
        body.as_object_mut().unwrap().remove(key);
        body
    }

    #[test]
    fn a_minimal_request_is_accepted() {
        let request = parse_value(minimal()).unwrap();
        assert_eq!(request.model, "claude-mock-1");
        assert_eq!(request.max_tokens, 64);
        assert!(!request.stream);
        assert_eq!(request.tool_choice, ToolChoice::Auto);
        assert_eq!(request.tool_rounds, 0);
        assert!(!request.disable_parallel_tool_use);
    }

    #[test]
    fn fields_the_mock_ignores_are_accepted() {
        let mut body = minimal();
        body["system"] =
            json!([{"type": "text", "text": "be terse", "cache_control": {"type": "ephemeral"}}]);
        body["temperature"] = json!(0.2);
        body["metadata"] = json!({"user_id": "u"});
        body["messages"] = json!([{"role": "system", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]);
        assert!(parse_value(body).is_ok());
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (without("model"), "model: field required"),
            (with("model", json!(5)), "model: expected a string, got a number"),
            (with("model", json!("")), "model: must not be empty"),
            (without("max_tokens"), "max_tokens: field required"),
            (
                with("max_tokens", json!("64")),
                "max_tokens: expected an integer of at least 1, got \"64\"",
            ),
            (with("max_tokens", json!(0)), "max_tokens: expected an integer of at least 1, got 0"),
            (
                with("max_tokens", json!(1.5)),
                "max_tokens: expected an integer of at least 1, got 1.5",
            ),
            (without("messages"), "messages: field required"),
            (with("messages", json!("hi")), "messages: expected an array, got a string"),
            (with("messages", json!([])), "messages: at least one message is required"),
            (with("messages", json!([5])), "messages.0: expected an object, got a number"),
            (with("messages", json!([{"content": "x"}])), "messages.0.role: field required"),
            (
                with("messages", json!([{"role": "bot", "content": "x"}])),
                "messages.0.role: expected \"user\", \"assistant\" or \"system\", got \"bot\"",
            ),
            (with("messages", json!([{"role": "user"}])), "messages.0.content: field required"),
            (
                with("messages", json!([{"role": "user", "content": 1}])),
                "messages.0.content: expected a string or an array of content blocks, got a number",
            ),
            (
                with("messages", json!([{"role": "user", "content": [{}]}])),
                "messages.0.content.0.type: field required",
            ),
            (with("stream", json!("yes")), "stream: expected a boolean, got a string"),
            (with("tools", json!({})), "tools: expected an array, got an object"),
            (with("tools", json!([{"input_schema": {}}])), "tools.0.name: field required"),
            (with("tools", json!([{"name": "t"}])), "tools.0.input_schema: field required"),
            (
                with("tools", json!([{"name": "t", "input_schema": "x"}])),
                "tools.0.input_schema: expected a JSON Schema object, got a string",
            ),
            (
                with("output_config", json!({"format": {"type": "json_object"}})),
                "output_config.format.type: expected \"json_schema\", got \"json_object\"",
            ),
            (
                with("output_config", json!({"format": {"type": "json_schema"}})),
                "output_config.format.schema: field required",
            ),
            (
                with("output_format", json!({"type": "json_schema", "schema": true})),
                "output_format.schema: expected a JSON Schema object, got a boolean",
            ),
            (with("output_config", json!(5)), "output_config: expected an object, got a number"),
            (
                with("tool_choice", json!({"type": "sometimes"})),
                "tool_choice.type: expected \"auto\", \"any\", \"tool\" or \"none\", got \"sometimes\"",
            ),
            (
                with("tool_choice", json!({"type": "tool"})),
                "tool_choice.name: field required when type is \"tool\"",
            ),
            (
                with("tool_choice", json!({"type": "tool", "name": "nope"})),
                "tool_choice.name: no tool named \"nope\" in tools",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_value(body.clone()), Err(expected.to_string()), "{body}");
        }
    }

    #[test]
    fn invalid_json_and_non_objects_are_named() {
        let error =
            parse(b"{\"model\": ", &HeadFacts::default(), Endpoint::Messages).unwrap_err().0;
        assert!(error.starts_with("request body is not valid JSON: EOF while parsing"), "{error}");
        let error = parse(b"[1]", &HeadFacts::default(), Endpoint::Messages).unwrap_err().0;
        assert_eq!(error, "request body must be a JSON object, got an array");
    }

    #[test]
    fn count_tokens_does_not_need_max_tokens() {
        let body = without("max_tokens").to_string();
        assert!(parse(body.as_bytes(), &HeadFacts::default(), Endpoint::CountTokens).is_ok());
    }

    #[test]
    fn tools_and_choices() {
        let tools = json!([
            {"type": "web_search_20250305", "name": "web_search"},
            {"name": "get_weather", "input_schema": {"type": "object"}},
            {"type": "custom", "name": "lookup", "input_schema": {"type": "object"}}
        ]);
        let mut body = with("tools", tools);
        body["tool_choice"] = json!({"type": "tool", "name": "lookup"});
        let request = parse_value(body).unwrap();
        let names: Vec<_> = request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "lookup"], "server tools are not the mock's to call");
        assert_eq!(request.tool_choice, ToolChoice::Tool("lookup".into()));
    }

    #[test]
    fn a_tool_result_turn_is_recognised() {
        let body = with(
            "messages",
            json!([
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
            ]),
        );
        assert_eq!(parse_value(body).unwrap().tool_rounds, 1);
    }

    #[test]
    fn a_tool_result_followed_by_other_messages_is_still_the_turn_after_it() {
        let tool_use = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"prompt": "x"}}]});
        let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]});
        let hi = json!({"role": "user", "content": "hi"});
        let system = json!({"role": "system", "content": "reminder"});
        let rounds = |messages: Value| parse_value(with("messages", messages)).unwrap().tool_rounds;
        // The agent clients' shape: [user, system, assistant(tool_use), user(tool_result), system].
        assert_eq!(rounds(json!([hi, system, tool_use, result, system])), 1);
        assert_eq!(
            rounds(json!([hi, tool_use, result, {"role": "user", "content": "and then?"}])),
            1
        );
        // Three rounds in a row, with reminders between them.
        assert_eq!(
            rounds(json!([
                hi, tool_use, result, system, tool_use, result, tool_use, result, system
            ])),
            3
        );
        // A tool result answered already (an assistant turn after it): a new turn.
        let reply = json!({"role": "assistant", "content": "It is done."});
        assert_eq!(
            rounds(json!([hi, tool_use, result, reply, {"role": "user", "content": "again"}])),
            0
        );
        assert_eq!(rounds(json!([hi, system])), 0);
    }

    #[test]
    fn an_output_format_is_read_and_effort_alone_is_not_one() {
        let schema = json!({"type": "object"});
        let request = parse_value(with(
            "output_config",
            json!({"effort": "low", "format": {"type": "json_schema", "schema": schema}}),
        ))
        .unwrap();
        let expected = OutputSchema { field: "output_config.format.schema", schema };
        assert_eq!(request.output_schema, Some(expected));
        let request = parse_value(with("output_config", json!({"effort": "high"}))).unwrap();
        assert_eq!(request.output_schema, None);
    }

    #[test]
    fn version_2026_10_21_refuses_what_it_removed_and_2023_06_01_does_not() {
        let new = HeadFacts {
            version: Some("2026-10-21".into()),
            betas: Vec::new(),
            ..HeadFacts::default()
        };
        let old = HeadFacts {
            version: Some("2023-06-01".into()),
            betas: Vec::new(),
            ..HeadFacts::default()
        };
        let parse_with = |head: &HeadFacts, body: Value| {
            parse(body.to_string().as_bytes(), head, Endpoint::Messages)
                .map(|_| ())
                .map_err(|e| e.0)
        };
        for field in ["temperature", "top_p", "top_k"] {
            let body = with(field, json!(0.5));
            assert_eq!(parse_with(&old, body.clone()), Ok(()));
            assert_eq!(parse_with(&HeadFacts::default(), body.clone()), Ok(()));
            assert_eq!(
                parse_with(&new, body),
                Err(format!("`{field}` is deprecated for this model."))
            );
        }
        let document = with(
            "messages",
            json!([
                {"role": "user", "content": "summarise"},
                {"role": "assistant", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]},
                {"role": "user", "content": "go on"}
            ]),
        );
        assert_eq!(parse_with(&old, document.clone()), Ok(()));
        let error = parse_with(&new, document).unwrap_err();
        assert!(error.starts_with("messages.1.content.0: `document` blocks"), "{error}");
        let cited = with(
            "messages",
            json!([{"role": "user", "content": [
            {"type": "text", "text": "x", "citations": [{"type": "char_location", "cited_text": "x"}]}]}]),
        );
        assert_eq!(parse_with(&old, cited.clone()), Ok(()));
        let error = parse_with(&new, cited).unwrap_err();
        assert!(error.starts_with("messages.0.content.0.citations:"), "{error}");
        let uncited = with(
            "messages",
            json!([{"role": "user", "content": [
            {"type": "text", "text": "x", "citations": []}]}]),
        );
        assert_eq!(parse_with(&new, uncited), Ok(()));
    }

    #[test]
    fn parallel_tool_use_can_be_disabled() {
        let mut body = with("tools", json!([{"name": "t", "input_schema": {"type": "object"}}]));
        body["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
        assert!(parse_value(body).unwrap().disable_parallel_tool_use);
    }
}
