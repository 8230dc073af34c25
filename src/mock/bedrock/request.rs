//! A Bedrock `Converse` / `ConverseStream` request (`docs/protocols.md` §8),
//! checked and read into a [`TurnRequest`]: `messages` (content blocks:
//! `text`, `toolUse`, `toolResult`, ...), `system`, `inferenceConfig`
//! (`maxTokens`, `stopSequences`), `toolConfig` (`tools[].toolSpec`,
//! `toolChoice`) and, for Anthropic models, `additionalModelRequestFields`
//! `thinking`. The model and the operation are in the path.

use serde_json::{Map, Value};

use crate::dialect::bedrock::model_of;
use crate::mock::request::{
    Effort, HeadFacts, InvalidRequest, Reasoning, Shown, Tool, ToolChoice, TurnRequest,
    body_object, invalid, type_name,
};
use crate::route::rough_tokens;

/// Parses and validates a Converse body; the path gives the model and
/// whether it streams.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(body: &[u8], head: &HeadFacts) -> Result<TurnRequest, InvalidRequest> {
    let object = body_object(body)?;
    let (model, operation) = model_of(&head.path)
        .map_or_else(|| ("bedrock-mock".to_string(), "converse"), |(m, o)| (m.into_owned(), o));
    let tool_rounds = validate_messages(object.get("messages"))?;
    let tools = parse_tools(object.get("toolConfig"))?;
    let tool_choice = parse_tool_choice(object.get("toolConfig"), &tools)?;
    let config = match object.get("inferenceConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(config)) => config.clone(),
        Some(other) => {
            return Err(invalid(
                "inferenceConfig",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let max_tokens = match config.get("maxTokens") {
        None | Some(Value::Null) => u64::MAX,
        Some(value) => value.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            invalid(
                "inferenceConfig.maxTokens",
                format_args!("expected a positive integer, got {value}"),
            )
        })?,
    };
    let stop = match config.get("stopSequences") {
        Some(Value::Array(stops)) => {
            stops.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    Ok(TurnRequest {
        model,
        max_tokens,
        stream: operation == "converse-stream",
        tools,
        tool_choice,
        tool_rounds,
        disable_parallel_tool_use: false,
        output_schema: None,
        input_tokens: rough_tokens(body),
        stream_usage: false,
        stop,
        echo: Value::Null,
        reasoning: parse_thinking(object.get("additionalModelRequestFields"))?,
        web_search: None,
        array_stream: false,
    })
}

/// Checks `messages`; returns the tool rounds it ends with (`assistant`
/// turns with a `toolUse` block).
fn validate_messages(messages: Option<&Value>) -> Result<u32, InvalidRequest> {
    let messages = match messages {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) | None => {
            return Err(invalid("messages", "at least one message is required"));
        }
        Some(other) => {
            return Err(invalid(
                "messages",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
    };
    for (i, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            _ => {
                return Err(invalid(
                    &format!("messages.{i}.role"),
                    "expected \"user\" or \"assistant\"",
                ));
            }
        }
        match message.get("content") {
            Some(Value::Array(blocks)) if blocks.iter().all(Value::is_object) => {}
            _ => {
                return Err(invalid(
                    &format!("messages.{i}.content"),
                    "expected an array of content blocks",
                ));
            }
        }
    }
    let calls = |message: &Value| {
        message
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| blocks.iter().any(|block| block.get("toolUse").is_some()))
    };
    let rounds = messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .take_while(|m| calls(m))
        .count();
    Ok(u32::try_from(rounds).unwrap_or(u32::MAX))
}

/// `toolConfig.tools[].toolSpec`: each `name` and `inputSchema.json`.
fn parse_tools(config: Option<&Value>) -> Result<Vec<Tool>, InvalidRequest> {
    let tools = match config.and_then(|c| c.get("tools")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => {
            return Err(invalid(
                "toolConfig.tools",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
    };
    let mut parsed = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        // A `cachePoint` entry, or another kind of tool, is not a client tool.
        let Some(spec) = tool.get("toolSpec") else { continue };
        let at = format!("toolConfig.tools.{i}.toolSpec");
        let name = match spec.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err(invalid(&format!("{at}.name"), "field required")),
        };
        let input_schema = match spec.get("inputSchema").and_then(|s| s.get("json")) {
            Some(schema @ Value::Object(_)) => schema.clone(),
            _ => return Err(invalid(&format!("{at}.inputSchema.json"), "field required")),
        };
        parsed.push(Tool { name, input_schema });
    }
    Ok(parsed)
}

/// `toolConfig.toolChoice`: `{"auto": {}}`, `{"any": {}}` or `{"tool":
/// {"name"}}`.
fn parse_tool_choice(config: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, InvalidRequest> {
    let Some(Value::Object(choice)) = config.and_then(|c| c.get("toolChoice")) else {
        return Ok(ToolChoice::Auto);
    };
    if choice.contains_key("any") {
        return Ok(ToolChoice::Any);
    }
    if let Some(tool) = choice.get("tool") {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if !tools.iter().any(|t| t.name == name) {
            return Err(invalid(
                "toolConfig.toolChoice.tool.name",
                format_args!("no tool named {name:?} in toolConfig.tools"),
            ));
        }
        return Ok(ToolChoice::Tool(name.to_string()));
    }
    Ok(ToolChoice::Auto)
}

/// An Anthropic model's `thinking` in `additionalModelRequestFields`
/// (`{"type": "enabled", "budget_tokens"}`): reasoning streams first, as
/// `reasoningContent` deltas.
fn parse_thinking(fields: Option<&Value>) -> Result<Option<Reasoning>, InvalidRequest> {
    let Some(thinking) = fields.and_then(|f| f.get("thinking")) else {
        return Ok(None);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled" | "adaptive") => {}
        Some("disabled") | None => return Ok(None),
        Some(other) => {
            return Err(invalid(
                "additionalModelRequestFields.thinking.type",
                format_args!("expected \"enabled\", \"adaptive\" or \"disabled\", got {other:?}"),
            ));
        }
    }
    let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
    Ok(Some(Reasoning {
        budget_tokens: budget,
        effort: Effort::High,
        shown: Shown::Streamed,
        this_turn: true,
        encrypted: false,
    }))
}
