//! What one turn asks of the mock, whatever API it came through: the
//! dialect-neutral request that [`Reply::generate`](super::Reply::generate)
//! plans from. Each API's module (`mock::anthropic`, ...) parses its own
//! wire format into a [`TurnRequest`], refusing what the real API refuses.

use serde_json::Value;

/// The parts of a request the mock uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TurnRequest {
    /// Echoed in the reply.
    pub(crate) model: String,
    /// Upper bound on output tokens.
    pub(crate) max_tokens: u64,
    /// `stream: true`.
    pub(crate) stream: bool,
    /// Client tools (server tools such as web search are ignored).
    pub(crate) tools: Vec<Tool>,
    /// Which tool, if any, the reply must call.
    pub(crate) tool_choice: ToolChoice,
    /// Tool rounds the conversation ends with: assistant turns that called
    /// a tool, counted back from the end to the last assistant turn that
    /// did not (other messages, such as `system` reminders between them,
    /// do not count). `[tool_use] max_rounds` compares against it.
    pub(crate) tool_rounds: u32,
    /// `tool_choice.disable_parallel_tool_use`: at most one call per turn.
    pub(crate) disable_parallel_tool_use: bool,
    /// The JSON Schema of structured output (`output_config.format`, or
    /// the beta's `output_format`, of type `json_schema`): the reply's text
    /// is JSON that validates against it.
    pub(crate) output_schema: Option<OutputSchema>,
    /// A rough count (4 bytes a token), for `usage.input_tokens`.
    pub(crate) input_tokens: u64,
    /// OpenAI Chat's `stream_options.include_usage`: a last chunk with the usage.
    pub(crate) stream_usage: bool,
    /// Stop sequences (OpenAI Chat's `stop`): text ends before the first.
    pub(crate) stop: Vec<String>,
    /// Fields the API echoes in its reply as the request gave them (the
    /// Responses API's `tools`, `text`, `instructions`, ...); `Null` for none.
    pub(crate) echo: Value,
    /// What the request asks the model to think before it answers; `None`
    /// for no thinking.
    pub(crate) reasoning: Option<Reasoning>,
    /// The name of the web search server tool the request offers, if any.
    pub(crate) web_search: Option<String>,
    /// A stream as a JSON array rather than server-sent events (Gemini's
    /// `streamGenerateContent` without `alt=sse`).
    pub(crate) array_stream: bool,
}

/// Thinking a request asks for (Anthropic `thinking`, OpenAI `reasoning`
/// and `reasoning_effort`), dialect-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reasoning {
    /// The most thinking tokens (Anthropic `budget_tokens`).
    pub(crate) budget_tokens: Option<u64>,
    /// How hard to think: a share of `[thinking] tokens`.
    pub(crate) effort: Effort,
    /// How the client sees the thinking.
    pub(crate) shown: Shown,
    /// Whether this turn thinks: a turn that goes on after tool results
    /// thinks again only with interleaved thinking (Anthropic), while a
    /// new turn always does.
    pub(crate) this_turn: bool,
    /// Responses: the reasoning item carries `encrypted_content`, for the
    /// client to send back (`include: ["reasoning.encrypted_content"]`).
    pub(crate) encrypted: bool,
}

/// OpenAI's reasoning efforts, as its 400 lists them.
const OPENAI_EFFORTS: &str = "'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'";

/// An OpenAI `reasoning_effort` or `reasoning.effort` (`field`), as the API
/// checks it.
///
/// # Errors
/// [`InvalidRequest`] naming `field`, with the values the API lists.
pub(crate) fn openai_effort(value: &Value, field: &str) -> Result<Effort, InvalidRequest> {
    value.as_str().and_then(Effort::parse).ok_or_else(|| {
        invalid(
            field,
            format_args!("Invalid value: {value}. Supported values are: {OPENAI_EFFORTS}."),
        )
    })
}

/// How a client sees the model's thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Streamed: Anthropic `thinking` blocks, a Responses reasoning summary.
    Streamed,
    /// Present but unreadable: an Anthropic `redacted_thinking` block, a
    /// Responses reasoning item without a summary. It takes its time before
    /// the first visible output.
    Opaque,
    /// Not sent at all, only counted (Chat Completions' reasoning tokens).
    Hidden,
}

/// Reasoning effort, as the APIs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effort {
    /// OpenAI `none`: no reasoning.
    None,
    /// OpenAI `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high` (Anthropic's default).
    High,
    /// Anthropic `max`, OpenAI `xhigh`.
    Max,
}

impl Effort {
    /// Its name on the wire (OpenAI's `xhigh` is read as `Max`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "none" => Self::None,
            "minimal" => Self::Minimal,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "max" | "xhigh" => Self::Max,
            _ => return None,
        })
    }

    /// The share of `[thinking] tokens` thought at this effort
    /// (docs/timing.md, "Thinking").
    pub(crate) fn share(self) -> f64 {
        match self {
            Self::None => 0.0,
            Self::Minimal => 0.125,
            Self::Low => 0.25,
            Self::Medium => 0.5,
            Self::High | Self::Max => 1.0,
        }
    }
}

/// What a codec reads from the request's head besides its body: the API
/// version and beta features the client asked for (Anthropic's
/// `anthropic-version` and `anthropic-beta`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeadFacts {
    /// `anthropic-version`, if sent.
    pub(crate) version: Option<String>,
    /// Every `anthropic-beta` value, split at commas.
    pub(crate) betas: Vec<String>,
    /// The request path (Gemini names the model and the method in it).
    pub(crate) path: String,
    /// Whether the query asks for server-sent events (Gemini's `alt=sse`).
    pub(crate) alt_sse: bool,
}

impl HeadFacts {
    /// Reads them from `uri` and `headers`; values that are not text are skipped.
    pub(crate) fn read(uri: &hyper::Uri, headers: &hyper::HeaderMap) -> Self {
        let version =
            headers.get("anthropic-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let betas = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|beta| beta.trim().to_owned())
            .filter(|beta| !beta.is_empty())
            // A client sends a handful; a hostile one is not kept past this.
            .take(64)
            .collect();
        let alt_sse =
            uri.query().is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"));
        Self { version, betas, path: uri.path().to_owned(), alt_sse }
    }

    /// Whether the client asked for the beta feature `name`.
    pub(crate) fn beta(&self, name: &str) -> bool {
        self.betas.iter().any(|beta| beta == name)
    }
}

/// The schema structured output must follow, and the field it came in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputSchema {
    /// `output_config.format.schema` or `output_format.schema`, for errors.
    pub(crate) field: &'static str,
    /// The JSON Schema.
    pub(crate) schema: Value,
}

/// A client tool.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tool {
    /// Its name.
    pub(crate) name: String,
    /// JSON Schema of its input.
    pub(crate) input_schema: Value,
}

/// `tool_choice.type`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolChoice {
    /// The model may call a tool (the default).
    Auto,
    /// The model must call some tool.
    Any,
    /// The model must call this tool.
    Tool(String),
    /// The model must not call a tool.
    None,
}

/// A request the real API would refuse with 400; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidRequest(pub String);

/// A 400 naming `field` and what is wrong with it.
pub(crate) fn invalid(field: &str, problem: impl std::fmt::Display) -> InvalidRequest {
    InvalidRequest(format!("{field}: {problem}"))
}

/// The request body as a JSON object.
///
/// # Errors
/// [`InvalidRequest`] when it is not JSON, or not an object.
pub(crate) fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, InvalidRequest> {
    // A parsed tree costs about 40 bytes a value: a 31 MiB body of numbers
    // was 1.2 GB and 3 s of CPU. Counted first, without building anything.
    if over_value_budget(body) {
        return Err(InvalidRequest(over_budget_message()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| InvalidRequest(format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(InvalidRequest(format!(
            "request body must be a JSON object, got {}",
            type_name(&other)
        ))),
    }
}

/// A required non-empty string field.
///
/// # Errors
/// [`InvalidRequest`] naming `field`.
pub(crate) fn required_string(object: &JsonObject, field: &str) -> Result<String, InvalidRequest> {
    match object.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        Some(other) => {
            Err(invalid(field, format_args!("expected a string, got {}", type_name(other))))
        }
        None => Err(invalid(field, "field required")),
    }
}

/// An optional boolean field (`null` is absent).
///
/// # Errors
/// [`InvalidRequest`] naming `field`.
pub(crate) fn optional_bool(
    object: &JsonObject,
    field: &str,
) -> Result<Option<bool>, InvalidRequest> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(other) => {
            Err(invalid(field, format_args!("expected a boolean, got {}", type_name(other))))
        }
    }
}

/// An optional whole number of at least 1 (`null` is absent).
///
/// # Errors
/// [`InvalidRequest`] naming `field`.
pub(crate) fn optional_count(
    object: &JsonObject,
    field: &str,
) -> Result<Option<u64>, InvalidRequest> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().filter(|&n| n >= 1).map(Some).ok_or_else(|| {
            invalid(field, format_args!("expected an integer of at least 1, got {value}"))
        }),
    }
}

/// `messages`: a non-empty array of objects, each with a `role` among
/// `roles` (`roles_text` lists them in the error).
///
/// # Errors
/// [`InvalidRequest`] naming the first bad message or role.
pub(crate) fn message_list<'a>(
    messages: Option<&'a Value>,
    roles: &[&str],
    roles_text: &str,
) -> Result<&'a [Value], InvalidRequest> {
    let messages = match messages {
        Some(Value::Array(messages)) => messages,
        Some(other) => {
            return Err(invalid(
                "messages",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
        None => return Err(invalid("messages", "field required")),
    };
    if messages.is_empty() {
        return Err(invalid("messages", "at least one message is required"));
    }
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(invalid(
                &format!("messages.{i}"),
                format_args!("expected an object, got {}", type_name(message)),
            ));
        };
        match message.get("role") {
            Some(Value::String(role)) if roles.contains(&role.as_str()) => {}
            Some(other) => {
                return Err(invalid(
                    &format!("messages.{i}.role"),
                    format_args!("expected {roles_text}, got {other}"),
                ));
            }
            None => return Err(invalid(&format!("messages.{i}.role"), "field required")),
        }
    }
    Ok(messages)
}

/// The tool rounds a conversation ends with: assistant messages that
/// `called` a tool, counted back from the end to the last assistant message
/// that did not. Counted from the conversation, not from its last element:
/// agent clients put `system` messages (and more) after a tool result, and a
/// mock that missed it would call the tool again and again.
pub(crate) fn tool_rounds(messages: &[Value], called: impl Fn(&Value) -> bool) -> u32 {
    let rounds = messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .take_while(|m| called(m))
        .count();
    u32::try_from(rounds).unwrap_or(u32::MAX)
}

/// A JSON object, as a request's tools are.
type JsonObject = serde_json::Map<String, Value>;

/// The objects of a request's `tools` array, with their index: the part of
/// tool parsing every API shares. An absent or `null` list is empty.
pub(crate) fn tool_objects(
    tools: Option<&Value>,
) -> Result<Vec<(usize, &JsonObject)>, InvalidRequest> {
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
    let mut objects = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let Value::Object(tool) = tool else {
            return Err(invalid(
                &format!("tools.{i}"),
                format_args!("expected an object, got {}", type_name(tool)),
            ));
        };
        objects.push((i, tool));
    }
    Ok(objects)
}

/// A tool's non-empty `name`, in `object`; `prefix` names `object` in errors.
pub(crate) fn tool_name(object: &JsonObject, prefix: &str) -> Result<String, InvalidRequest> {
    match object.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        Some(other) => Err(invalid(
            &format!("{prefix}.name"),
            format_args!("expected a non-empty string, got {other}"),
        )),
        None => Err(invalid(&format!("{prefix}.name"), "field required")),
    }
}

/// A tool's JSON Schema object at `key` in `object`; when it is absent,
/// `absent` (or an error when there is none: the field is required).
pub(crate) fn tool_schema(
    object: &JsonObject,
    key: &str,
    prefix: &str,
    absent: Option<Value>,
) -> Result<Value, InvalidRequest> {
    match (object.get(key), absent) {
        (Some(schema @ Value::Object(_)), _) => Ok(schema.clone()),
        (None | Some(Value::Null), Some(absent)) => Ok(absent),
        (None, None) => Err(invalid(&format!("{prefix}.{key}"), "field required")),
        (Some(other), _) => Err(invalid(
            &format!("{prefix}.{key}"),
            format_args!("expected a JSON Schema object, got {}", type_name(other)),
        )),
    }
}

/// How a JSON value's type is named in errors.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The most JSON values (numbers, strings, items, objects...) a request body
/// the mock parses may hold: its parsed tree then stays near 10 MB.
pub(crate) const MAX_JSON_VALUES: usize = 250_000;

/// Why a body over [`MAX_JSON_VALUES`] is refused.
pub(crate) fn over_budget_message() -> String {
    format!(
        "request body holds more than {MAX_JSON_VALUES} JSON values; the sluice mock reads at \
         most that many (docs/reliability.md)"
    )
}

/// Whether `body` holds more than [`MAX_JSON_VALUES`] JSON values, counted
/// by walking it without building anything and stopping at the budget. A
/// body that is not JSON is not over: the parse that follows says why.
pub(crate) fn over_value_budget(body: &[u8]) -> bool {
    json_values_within(body, MAX_JSON_VALUES).is_none()
}

/// How many JSON values `json` holds, or `None` past `budget` (counted
/// without building anything, stopping at the budget). Text that is not
/// JSON counts what was read before the error.
pub(crate) fn json_values_within(json: &[u8], budget: usize) -> Option<usize> {
    use serde::de::DeserializeSeed as _;
    let left = std::cell::Cell::new(budget);
    let mut reader = serde_json::Deserializer::from_slice(json);
    let counted = Count(&left).deserialize(&mut reader);
    if counted.is_err() && left.get() == 0 {
        return None;
    }
    Some(budget - left.get())
}

/// A JSON walk that counts each value against a budget, and fails when the
/// budget is spent.
struct Count<'a>(&'a std::cell::Cell<usize>);

impl Count<'_> {
    fn tick<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom("over the value budget")),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, json: D) -> Result<(), D::Error> {
        json.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        self.tick()?;
        while items.next_element_seed(Count(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        self.tick()?;
        while fields.next_key::<serde::de::IgnoredAny>()?.is_some() {
            fields.next_value_seed(Count(self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn a_body_past_the_value_budget_is_refused_before_it_is_parsed() {
        let numbers = |n: usize| format!("{{\"model\":\"m\",\"x\":[{}0]}}", "0,".repeat(n - 1));
        // The object, "model", the array: three values besides the numbers.
        assert!(!over_value_budget(numbers(MAX_JSON_VALUES - 3).as_bytes()));
        assert!(over_value_budget(numbers(MAX_JSON_VALUES - 2).as_bytes()));
        let error = body_object(numbers(MAX_JSON_VALUES).as_bytes()).unwrap_err();
        assert!(
            error.0.starts_with("request body holds more than 250000 JSON values"),
            "{}",
            error.0
        );
        assert!(!over_value_budget(b"not json"), "the parse says what is wrong");
        assert!(body_object(b"not json").unwrap_err().0.contains("not valid JSON"));
        let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(!over_value_budget(nested.as_bytes()));
    }
}
