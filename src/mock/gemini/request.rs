//! A `GenerateContentRequest` (`docs/protocols.md` §7), checked and read
//! into a [`TurnRequest`]: `contents`, `tools[].functionDeclarations`,
//! `toolConfig.functionCallingConfig`, and `generationConfig`
//! (`maxOutputTokens`, `responseSchema` or `responseJsonSchema`,
//! `thinkingConfig`, `stopSequences`, `candidateCount`). The model and the
//! method are in the path.

use serde_json::{Map, Value};

use super::model_of;
use crate::mock::request::{
    Effort, HeadFacts, InvalidRequest, OutputSchema, Reasoning, Shown, Tool, ToolChoice,
    TurnRequest, body_object, invalid, type_name,
};
use crate::route::rough_tokens;

/// `object`'s field `name` (lowerCamelCase), or its snake_case spelling:
/// Google's JSON accepts both (proto3's mapping), and the Python SDK sends
/// some fields snake_cased (`thinking_budget`).
fn field<'a>(object: &'a impl FieldSource, name: &str) -> Option<&'a Value> {
    object.field(name).or_else(|| {
        let mut snake = String::with_capacity(name.len() + 4);
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                snake.push('_');
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        object.field(&snake)
    })
}

/// Something with named fields: a JSON object, or a value that may be one.
trait FieldSource {
    fn field(&self, name: &str) -> Option<&Value>;
}

impl FieldSource for Map<String, Value> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl FieldSource for Value {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// Parses and validates a request body; the path gives the model and whether
/// it streams.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(body: &[u8], head: &HeadFacts) -> Result<TurnRequest, InvalidRequest> {
    let object = body_object(body)?;
    let (model, method) = model_of(&head.path).unwrap_or(("gemini-mock", "generateContent"));
    let stream = method == "streamGenerateContent";
    let tool_rounds = validate_contents(object.get("contents"))?;
    let tools = parse_tools(object.get("tools"))?;
    let tool_choice = parse_tool_config(field(&object, "toolConfig"), &tools)?;
    let config = match field(&object, "generationConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(config)) => config.clone(),
        Some(other) => {
            return Err(invalid(
                "generationConfig",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let max_tokens = match field(&config, "maxOutputTokens") {
        None | Some(Value::Null) => u64::MAX,
        Some(value) => value.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            invalid(
                "generationConfig.maxOutputTokens",
                format_args!("expected a positive integer, got {value}"),
            )
        })?,
    };
    if let Some(count) = field(&config, "candidateCount").and_then(Value::as_u64)
        && count != 1
    {
        return Err(invalid(
            "generationConfig.candidateCount",
            format_args!(
                "the sluice mock makes one candidate; candidateCount must be 1, got {count}"
            ),
        ));
    }
    let stop = match field(&config, "stopSequences") {
        Some(Value::Array(stops)) => {
            stops.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    Ok(TurnRequest {
        model: model.to_string(),
        max_tokens,
        stream,
        tools,
        tool_choice,
        tool_rounds,
        disable_parallel_tool_use: false,
        output_schema: parse_output_schema(&config)?,
        input_tokens: rough_tokens(body),
        stream_usage: false,
        stop,
        echo: Value::Null,
        reasoning: parse_thinking(&config)?,
        web_search: None,
        array_stream: stream && !head.alt_sse,
    })
}

/// Checks `contents`; returns the tool rounds it ends with (`model` turns
/// with a `functionCall`, each answered by a `functionResponse`).
fn validate_contents(contents: Option<&Value>) -> Result<u32, InvalidRequest> {
    let contents = match contents {
        Some(Value::Array(contents)) if !contents.is_empty() => contents,
        Some(Value::Array(_)) | None => {
            return Err(invalid("contents", "at least one content is required"));
        }
        Some(other) => {
            return Err(invalid(
                "contents",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
    };
    for (i, content) in contents.iter().enumerate() {
        let Value::Object(content) = content else {
            return Err(invalid(
                &format!("contents.{i}"),
                format_args!("expected an object, got {}", type_name(content)),
            ));
        };
        match content.get("role") {
            None | Some(Value::Null) => {}
            Some(Value::String(role)) if role == "user" || role == "model" => {}
            Some(other) => {
                return Err(invalid(
                    &format!("contents.{i}.role"),
                    format_args!("expected \"user\" or \"model\", got {other}"),
                ));
            }
        }
        match content.get("parts") {
            Some(Value::Array(parts)) if parts.iter().all(Value::is_object) => {}
            Some(Value::Array(_)) => {
                return Err(invalid(&format!("contents.{i}.parts"), "each part must be an object"));
            }
            None => return Err(invalid(&format!("contents.{i}.parts"), "field required")),
            Some(other) => {
                return Err(invalid(
                    &format!("contents.{i}.parts"),
                    format_args!("expected an array, got {}", type_name(other)),
                ));
            }
        }
    }
    let calls = |content: &Value| {
        content
            .get("parts")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.iter().any(|part| field(part, "functionCall").is_some()))
    };
    let rounds = contents
        .iter()
        .rev()
        .filter(|c| c.get("role").and_then(Value::as_str) == Some("model"))
        .take_while(|c| calls(c))
        .count();
    Ok(u32::try_from(rounds).unwrap_or(u32::MAX))
}

/// `tools[].functionDeclarations`: each `name` and its `parameters` (an
/// OpenAPI schema, its types in capitals) or `parametersJsonSchema`. Other
/// tools (`googleSearch`, `codeExecution`, ...) run on Google's side and
/// are left out.
fn parse_tools(tools: Option<&Value>) -> Result<Vec<Tool>, InvalidRequest> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => {
            return Err(invalid(
                "tools",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
    };
    let mut parsed = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let Some(declarations) = field(tool, "functionDeclarations") else { continue };
        let Value::Array(declarations) = declarations else {
            return Err(invalid(
                &format!("tools.{i}.functionDeclarations"),
                format_args!("expected an array, got {}", type_name(declarations)),
            ));
        };
        for (j, declaration) in declarations.iter().enumerate() {
            let at = format!("tools.{i}.functionDeclarations.{j}");
            let name = match declaration.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name.clone(),
                _ => return Err(invalid(&format!("{at}.name"), "field required")),
            };
            let input_schema =
                match (field(declaration, "parametersJsonSchema"), declaration.get("parameters")) {
                    (Some(schema @ Value::Object(_)), _) => schema.clone(),
                    (_, Some(schema @ Value::Object(_))) => json_schema_of(schema),
                    (None | Some(Value::Null), None | Some(Value::Null)) => {
                        serde_json::json!({"type": "object", "properties": {}})
                    }
                    (Some(other), _) | (_, Some(other)) => {
                        return Err(invalid(
                            &format!("{at}.parameters"),
                            format_args!("expected a schema object, got {}", type_name(other)),
                        ));
                    }
                };
            parsed.push(Tool { name, input_schema });
        }
    }
    Ok(parsed)
}

/// An OpenAPI-subset schema as Google writes it (`"type": "OBJECT"`), as
/// JSON Schema: its types in lower case, everywhere.
fn json_schema_of(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("type", Value::String(kind)) => {
                        (key.clone(), Value::String(kind.to_lowercase()))
                    }
                    _ => (key.clone(), json_schema_of(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_schema_of).collect()),
        other => other.clone(),
    }
}

/// `toolConfig.functionCallingConfig`: `mode` (`AUTO`, `ANY`, `NONE`,
/// `VALIDATED`) and `allowedFunctionNames` (one name with `ANY` forces it).
fn parse_tool_config(config: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, InvalidRequest> {
    let Some(calling) = config.and_then(|c| field(c, "functionCallingConfig")) else {
        return Ok(ToolChoice::Auto);
    };
    let allowed: Vec<&str> = field(calling, "allowedFunctionNames")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match calling.get("mode").and_then(Value::as_str).unwrap_or("AUTO") {
        "AUTO" | "VALIDATED" | "MODE_UNSPECIFIED" => Ok(ToolChoice::Auto),
        "NONE" => Ok(ToolChoice::None),
        "ANY" => match allowed.as_slice() {
            [name] if tools.iter().any(|t| t.name == *name) => {
                Ok(ToolChoice::Tool((*name).to_string()))
            }
            [name] => Err(invalid(
                "toolConfig.functionCallingConfig.allowedFunctionNames",
                format_args!("no function declaration named {name:?}"),
            )),
            _ => Ok(ToolChoice::Any),
        },
        other => Err(invalid(
            "toolConfig.functionCallingConfig.mode",
            format_args!("expected AUTO, ANY, NONE or VALIDATED, got {other:?}"),
        )),
    }
}

/// `responseJsonSchema`, or `responseSchema` (Google's OpenAPI subset), when
/// `responseMimeType` is JSON: the text is JSON that validates against it.
fn parse_output_schema(
    config: &Map<String, Value>,
) -> Result<Option<OutputSchema>, InvalidRequest> {
    let json_wanted =
        field(config, "responseMimeType").and_then(Value::as_str) == Some("application/json");
    match (field(config, "responseJsonSchema"), field(config, "responseSchema")) {
        (Some(schema @ Value::Object(_)), _) => Ok(Some(OutputSchema {
            field: "generationConfig.responseJsonSchema",
            schema: schema.clone(),
        })),
        (_, Some(schema @ Value::Object(_))) => Ok(Some(OutputSchema {
            field: "generationConfig.responseSchema",
            schema: json_schema_of(schema),
        })),
        (None | Some(Value::Null), None | Some(Value::Null)) if json_wanted => {
            Ok(Some(OutputSchema {
                field: "generationConfig.responseMimeType",
                schema: serde_json::json!({"type": "object"}),
            }))
        }
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(None),
        (Some(other), _) | (_, Some(other)) => Err(invalid(
            "generationConfig.responseSchema",
            format_args!("expected a schema object, got {}", type_name(other)),
        )),
    }
}

/// `thinkingConfig`: `thinkingBudget` (0 is off, -1 dynamic), or Gemini 3's
/// `thinkingLevel`, and `includeThoughts` (thought parts stream; else the
/// thinking is unseen and only counted).
fn parse_thinking(config: &Map<String, Value>) -> Result<Option<Reasoning>, InvalidRequest> {
    let Some(thinking) = field(config, "thinkingConfig").filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    let Value::Object(thinking) = thinking else {
        return Err(invalid(
            "generationConfig.thinkingConfig",
            format_args!("expected an object, got {}", type_name(thinking)),
        ));
    };
    let budget = match field(thinking, "thinkingBudget") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64() {
            Some(0) => return Ok(None),
            Some(-1) => None,
            Some(n) if n > 0 => u64::try_from(n).ok(),
            _ => {
                return Err(invalid(
                    "generationConfig.thinkingConfig.thinkingBudget",
                    format_args!("expected -1, 0 or a positive integer, got {value}"),
                ));
            }
        },
    };
    let effort = match field(thinking, "thinkingLevel").and_then(Value::as_str) {
        Some(level) => Effort::parse(&level.to_lowercase()).unwrap_or(Effort::High),
        None => Effort::High,
    };
    let shown = if field(thinking, "includeThoughts").and_then(Value::as_bool) == Some(true) {
        Shown::Streamed
    } else {
        Shown::Hidden
    };
    Ok(Some(Reasoning { budget_tokens: budget, effort, shown, this_turn: true, encrypted: false }))
}
