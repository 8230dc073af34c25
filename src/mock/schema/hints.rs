//! Constraints that structured-output clients move into a schema's
//! `description`, read back as keywords before [`super`] samples the schema.
//!
//! The Messages API's strict schemas (`output_config.format`, strict tools)
//! lack keywords such as `minimum`, `pattern` or `minItems`, so the clients
//! strip them and describe them instead, for the model to follow:
//!
//! - the Vercel AI SDK appends a line `exclusive minimum: 0; pattern: ^[0-9]{5}$.`
//! - the Anthropic Python SDK appends a paragraph `{minimum: 1, maximum: 10}`.
//!
//! A model reads those; the mock does too, so the object the client then
//! validates against its original schema (zod, pydantic) passes. Only a
//! description whose last line or paragraph is wholly such a list counts,
//! and a keyword the schema states itself is never replaced.

use serde_json::{Map, Value};

/// The keywords the clients describe, as JSON Schema spells them.
const KEYWORDS: [&str; 14] = [
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "format",
];

/// How much of a schema is walked looking for hints: a request's schema is
/// bounded by the body size, this bounds the work on it.
const MAX_NODES: usize = 100_000;

/// `schema` with every described constraint added as a keyword, or `None`
/// when no description carries one (the common case: nothing is copied).
pub(crate) fn apply(schema: &Value) -> Option<Value> {
    if !has_any(schema) {
        return None;
    }
    let mut copy = schema.clone();
    let mut stack = vec![&mut copy];
    let mut visited = 0;
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > MAX_NODES {
            break;
        }
        match node {
            Value::Object(map) => {
                if let Some(hints) = map.get("description").and_then(Value::as_str).and_then(parse)
                {
                    for (key, value) in hints {
                        map.entry(key).or_insert(value);
                    }
                }
                stack.extend(map.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    Some(copy)
}

/// Whether any description in `schema` carries a hint.
fn has_any(schema: &Value) -> bool {
    let mut stack = vec![schema];
    let mut visited = 0;
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > MAX_NODES {
            return false;
        }
        match node {
            Value::Object(map) => {
                if map.get("description").and_then(Value::as_str).and_then(parse).is_some() {
                    return true;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// The constraints a description ends with, in either client's form.
pub(crate) fn parse(description: &str) -> Option<Map<String, Value>> {
    let description = description.trim_end();
    if let Some(body) = description
        .rsplit("\n\n")
        .next()
        .and_then(|last| last.strip_prefix('{'))
        .and_then(|last| last.strip_suffix('}'))
    {
        // The Python SDK: `{minimum: 1, pattern: ^a$}`, keys as in JSON Schema.
        return pairs(body, ", ", |key| KEYWORDS.iter().copied().find(|k| *k == key));
    }
    // The AI SDK: `exclusive minimum: 0; pattern: ^a$.` on the last line.
    let last = description.rsplit('\n').next()?.strip_suffix('.')?;
    pairs(last, "; ", |name| KEYWORDS.iter().copied().find(|k| spaced(k) == name))
}

/// `minLength` as the AI SDK writes it: `min length`.
fn spaced(keyword: &str) -> String {
    let mut out = String::with_capacity(keyword.len() + 2);
    for c in keyword.chars() {
        if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `key: value` pairs joined by `separator`, every key known (a value may
/// contain the separator, as a pattern may: a piece that does not start
/// with a known key belongs to the value before it).
fn pairs(
    text: &str,
    separator: &str,
    known: impl Fn(&str) -> Option<&'static str>,
) -> Option<Map<String, Value>> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for piece in text.split(separator) {
        let key = piece.split_once(": ").and_then(|(name, _)| known(name));
        match (key, piece.split_once(": "), found.last_mut()) {
            (Some(key), Some((_, value)), _) => found.push((key, value.to_string())),
            (None, _, Some((_, value))) => {
                value.push_str(separator);
                value.push_str(piece);
            }
            _ => return None,
        }
    }
    let mut out = Map::new();
    for (key, text) in found {
        out.insert(key.to_string(), value_of(key, &text)?);
    }
    (!out.is_empty()).then_some(out)
}

/// The value of `key` written as `text`.
fn value_of(key: &str, text: &str) -> Option<Value> {
    match key {
        "pattern" | "format" => Some(Value::String(text.to_string())),
        "uniqueItems" => match text {
            "true" | "True" => Some(Value::Bool(true)),
            "false" | "False" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => serde_json::from_str::<Value>(text).ok().filter(Value::is_number),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_ai_sdks_line_is_read() {
        let hints = parse("A city.\nmin length: 1; pattern: ^[0-9;]{5}$; unique items: true.");
        assert_eq!(
            hints,
            Some(
                json!({"minLength": 1, "pattern": "^[0-9;]{5}$", "uniqueItems": true})
                    .as_object()
                    .unwrap()
                    .clone()
            )
        );
        let only = parse("exclusive minimum: 0; exclusive maximum: 1.").unwrap();
        assert_eq!(Value::Object(only), json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1}));
    }

    #[test]
    fn the_python_sdks_paragraph_is_read() {
        let hints = parse("A number\n\n{minimum: 1, maximum: 10.5, pattern: ^a, b$}").unwrap();
        assert_eq!(
            Value::Object(hints),
            json!({"minimum": 1, "maximum": 10.5, "pattern": "^a, b$"})
        );
    }

    #[test]
    fn ordinary_descriptions_are_not_hints() {
        for text in [
            "The city to look up.",
            "minimum: three letters.",
            "Use a pattern: any will do.",
            "{not: json}",
            "maximum: 5",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn hints_become_keywords_without_replacing_stated_ones() {
        let schema = json!({"type": "object", "properties": {
            "n": {"type": "number", "description": "minimum: 2; maximum: 3."},
            "s": {"type": "string", "maxLength": 4, "description": "max length: 9; min length: 2."}
        }});
        let applied = apply(&schema).unwrap();
        assert_eq!(applied["properties"]["n"]["minimum"], json!(2));
        assert_eq!(applied["properties"]["n"]["maximum"], json!(3));
        assert_eq!(applied["properties"]["s"]["maxLength"], json!(4));
        assert_eq!(applied["properties"]["s"]["minLength"], json!(2));
        assert_eq!(apply(&json!({"type": "object", "description": "plain"})), None);
    }
}
