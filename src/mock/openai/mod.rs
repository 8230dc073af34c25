//! The OpenAI APIs (`docs/protocols.md` §3): Chat Completions ([`chat`]),
//! Responses ([`responses`]), embeddings ([`embeddings`]) and the model list
//! ([`models`]). What the Chat and Responses requests share is here: their
//! function tools, `tool_choice`, JSON output formats, and the ids and time
//! stamps of their replies.

pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod models;
pub(crate) mod responses;

use serde_json::{Map, Value};

use super::request::{
    InvalidRequest, OutputSchema, Tool, ToolChoice, invalid, tool_name, tool_objects, tool_schema,
    type_name,
};
use super::{MockApi, MockEndpoint, Serve};
use crate::dialect::Dialect;

/// Chat Completions, the model list and embeddings.
pub(crate) const CHAT: MockApi = MockApi {
    name: "OpenAI Chat Completions",
    dialect: Dialect::OpenAiChat,
    endpoints: &[
        MockEndpoint::post("/v1/chat/completions", Serve::Generate(chat::CODEC)),
        MockEndpoint::post("/v1/embeddings", Serve::Whole(embeddings::answer)),
        MockEndpoint::get("/v1/models", Serve::Instant(models::list)),
        MockEndpoint::get_under("/v1/models", Serve::Instant(models::one)),
    ],
};

/// The Responses API.
pub(crate) const RESPONSES: MockApi = MockApi {
    name: "OpenAI Responses",
    dialect: Dialect::OpenAiResponses,
    endpoints: &[MockEndpoint::post("/v1/responses", Serve::Generate(responses::CODEC))],
};

/// Seconds since the Unix epoch, for `created` and `created_at`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Which shape a tool takes: Chat nests the function
/// (`{"type": "function", "function": {"name", "parameters"}}`), Responses
/// does not (`{"type": "function", "name", "parameters"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Chat Completions.
    Chat,
    /// Responses.
    Responses,
}

/// `tools`: the function tools, with their `parameters` schemas. Tools of
/// other types (`web_search`, `file_search`, ...) run on the provider's side
/// and never come back as calls, so they are accepted and left out.
pub(crate) fn parse_tools(
    tools: Option<&Value>,
    shape: Shape,
) -> Result<Vec<Tool>, InvalidRequest> {
    let mut parsed = Vec::new();
    for (i, tool) in tool_objects(tools)? {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(_) => continue,
            None => return Err(invalid(&format!("tools.{i}.type"), "field required")),
        }
        let (function, prefix) = match shape {
            Shape::Chat => match tool.get("function") {
                Some(Value::Object(function)) => (function, format!("tools.{i}.function")),
                Some(other) => {
                    return Err(invalid(
                        &format!("tools.{i}.function"),
                        format_args!("expected an object, got {}", type_name(other)),
                    ));
                }
                None => return Err(invalid(&format!("tools.{i}.function"), "field required")),
            },
            Shape::Responses => (tool, format!("tools.{i}")),
        };
        let name = tool_name(function, &prefix)?;
        // A function without parameters takes an empty object.
        let empty = serde_json::json!({"type": "object", "properties": {}});
        let input_schema = tool_schema(function, "parameters", &prefix, Some(empty))?;
        parsed.push(Tool { name, input_schema });
    }
    Ok(parsed)
}

/// `tool_choice`: `"none"`, `"auto"`, `"required"`, or one named function.
pub(crate) fn parse_tool_choice(
    choice: Option<&Value>,
    tools: &[Tool],
    shape: Shape,
) -> Result<ToolChoice, InvalidRequest> {
    let named = |name: Option<&str>, field: &str| -> Result<ToolChoice, InvalidRequest> {
        let name =
            name.ok_or_else(|| invalid(field, "field required when type is \"function\""))?;
        if !tools.iter().any(|tool| tool.name == name) {
            return Err(invalid(field, format_args!("no function named {name:?} in tools")));
        }
        Ok(ToolChoice::Tool(name.to_string()))
    };
    match choice {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Any),
            "none" => Ok(ToolChoice::None),
            other => Err(invalid(
                "tool_choice",
                format_args!(
                    "expected \"none\", \"auto\", \"required\" or an object, got {other:?}"
                ),
            )),
        },
        Some(Value::Object(choice)) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => match shape {
                Shape::Chat => named(
                    choice.get("function").and_then(|f| f.get("name")).and_then(Value::as_str),
                    "tool_choice.function.name",
                ),
                Shape::Responses => {
                    named(choice.get("name").and_then(Value::as_str), "tool_choice.name")
                }
            },
            other => Err(invalid(
                "tool_choice.type",
                format_args!(
                    "the sluice mock takes \"function\" here (or a string: \"none\", \"auto\", \"required\"), got {}",
                    other.map_or("nothing".to_string(), |t| format!("{t:?}"))
                ),
            )),
        },
        Some(other) => Err(invalid(
            "tool_choice",
            format_args!("expected a string or an object, got {}", type_name(other)),
        )),
    }
}

/// A JSON output format: `{"type": "json_schema", ...}` gives its schema,
/// `{"type": "json_object"}` any object, `{"type": "text"}` none. Chat nests
/// the schema (`json_schema.schema`), Responses does not (`schema`); `field`
/// names the format in errors. The generated document always validates
/// against the schema, so `strict` holds whichever way it is set.
pub(crate) fn parse_format(
    format: Option<&Value>,
    field: &'static str,
    schema_field: &'static str,
    shape: Shape,
) -> Result<Option<OutputSchema>, InvalidRequest> {
    let format = match format {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(format)) => format,
        Some(other) => {
            return Err(invalid(
                field,
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(OutputSchema {
            field: schema_field,
            schema: serde_json::json!({"type": "object"}),
        })),
        Some("json_schema") => {
            let holder: &Map<String, Value> = match shape {
                Shape::Chat => match format.get("json_schema") {
                    Some(Value::Object(inner)) => inner,
                    _ => {
                        return Err(invalid(
                            &format!("{field}.json_schema"),
                            "field required (an object with name and schema)",
                        ));
                    }
                },
                Shape::Responses => format,
            };
            match holder.get("schema") {
                Some(schema @ Value::Object(_)) => {
                    Ok(Some(OutputSchema { field: schema_field, schema: schema.clone() }))
                }
                Some(other) => Err(invalid(
                    schema_field,
                    format_args!("expected a JSON Schema object, got {}", type_name(other)),
                )),
                None => Err(invalid(schema_field, "field required")),
            }
        }
        other => Err(invalid(
            &format!("{field}.type"),
            format_args!(
                "expected \"text\", \"json_object\" or \"json_schema\", got {}",
                other.map_or("nothing".to_string(), |t| format!("{t:?}"))
            ),
        )),
    }
}

/// `stream`, optional.
pub(crate) fn parse_stream(object: &Map<String, Value>) -> Result<bool, InvalidRequest> {
    Ok(super::request::optional_bool(object, "stream")?.unwrap_or(false))
}

/// JSON text of a string (quoted and escaped).
pub(crate) fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests;
