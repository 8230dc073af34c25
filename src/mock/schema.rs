//! A tool call's `input`, made from the tool's JSON Schema: every required
//! property (all of them when `required` is absent), typed sample values that
//! honour `enum`, `const`, `examples`, `format`, numeric bounds and array
//! lengths, nested objects and arrays, `anyOf`/`oneOf`/`allOf`, and local
//! `$ref`s (`#/$defs/...`, as pydantic and zod emit). Deterministic for a
//! request's random stream.

use rand::{Rng, RngExt};
use serde_json::{Map, Number, Value, json};

/// Deeper than this, a value is cut short (`{}`, `[]` or a scalar), which
/// also ends self-referencing schemas.
const MAX_DEPTH: usize = 8;

/// A sample value that satisfies `schema` (as far as a mock needs to).
pub fn sample(schema: &Value, rng: &mut impl Rng) -> Value {
    Sampler { root: schema }.value(schema, rng, 0, "value")
}

struct Sampler<'a> {
    root: &'a Value,
}

impl Sampler<'_> {
    fn value(&self, schema: &Value, rng: &mut impl Rng, depth: usize, name: &str) -> Value {
        let Value::Object(schema) = schema else {
            return json!(name); // `true` or a malformed schema: anything goes
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return match self.resolve(reference) {
                Some(target) if depth < MAX_DEPTH => self.value(target, rng, depth + 1, name),
                _ => Value::Object(Map::new()),
            };
        }
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && !options.is_empty()
        {
            return options[rng.random_range(0..options.len())].clone();
        }
        if let Some(Value::Array(examples)) = schema.get("examples")
            && let Some(first) = examples.first()
        {
            return first.clone();
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(options)) = schema.get(combinator) {
                let non_null =
                    options.iter().find(|o| o.get("type").and_then(Value::as_str) != Some("null"));
                if let Some(option) = non_null.or(options.first()) {
                    return self.value(option, rng, depth + 1, name);
                }
            }
        }
        match type_of(schema) {
            "object" if depth >= MAX_DEPTH => Value::Object(Map::new()),
            "object" => self.object(schema, rng, depth),
            "array" if depth >= MAX_DEPTH => Value::Array(Vec::new()),
            "array" => self.array(schema, rng, depth, name),
            "integer" => integer(schema, rng),
            "number" => number(schema, rng),
            "boolean" => Value::Bool(rng.random()),
            "null" => Value::Null,
            _ => string(schema, rng, name),
        }
    }

    fn object(&self, schema: &Map<String, Value>, rng: &mut impl Rng, depth: usize) -> Value {
        let empty = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let required: Option<Vec<&str>> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect());
        let mut out = Map::new();
        match required {
            Some(required) => {
                for name in required {
                    let property = properties.get(name).unwrap_or(&Value::Bool(true));
                    out.insert(name.to_string(), self.value(property, rng, depth + 1, name));
                }
            }
            None => {
                for (name, property) in properties {
                    out.insert(name.clone(), self.value(property, rng, depth + 1, name));
                }
            }
        }
        Value::Object(out)
    }

    fn array(
        &self,
        schema: &Map<String, Value>,
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
    ) -> Value {
        // One or two items, within minItems..=maxItems.
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
        let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(u64::MAX);
        let upper = max.min(min.max(2));
        let count = rng.random_range(min.min(upper)..=upper);
        let items = schema.get("items").unwrap_or(&Value::Bool(true));
        (0..count).map(|_| self.value(items, rng, depth + 1, name)).collect()
    }

    /// A local JSON pointer such as `#/$defs/Address`.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

/// The schema's type; with a list of types, the first that is not `null`.
fn type_of(schema: &Map<String, Value>) -> &str {
    match schema.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => {
            kinds.iter().filter_map(Value::as_str).find(|&k| k != "null").unwrap_or("null")
        }
        _ if schema.contains_key("properties") => "object",
        _ if schema.contains_key("items") => "array",
        _ => "string",
    }
}

fn bounds(schema: &Map<String, Value>, default: (f64, f64)) -> (f64, f64) {
    let get = |key: &str| schema.get(key).and_then(Value::as_f64);
    let low = get("minimum").or(get("exclusiveMinimum").map(|v| v + 1.0)).unwrap_or(default.0);
    let high =
        get("maximum").or(get("exclusiveMaximum").map(|v| v - 1.0)).unwrap_or(default.1.max(low));
    (low, high.max(low))
}

fn integer(schema: &Map<String, Value>, rng: &mut impl Rng) -> Value {
    let (low, high) = bounds(schema, (1.0, 100.0));
    let (low, high) = (low.ceil() as i64, high.floor() as i64);
    json!(rng.random_range(low..=high.max(low)))
}

fn number(schema: &Map<String, Value>, rng: &mut impl Rng) -> Value {
    let (low, high) = bounds(schema, (0.0, 100.0));
    let value = low + (high - low) * rng.random::<f64>();
    let rounded = (value * 100.0).round() / 100.0;
    Number::from_f64(rounded.clamp(low, high)).map_or(Value::Null, Value::Number)
}

fn string(schema: &Map<String, Value>, rng: &mut impl Rng, name: &str) -> Value {
    let text = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-11-27T10:15:30Z".to_string(),
        Some("date") => "2026-11-27".to_string(),
        Some("time") => "10:15:30Z".to_string(),
        Some("email") => "user@example.com".to_string(),
        Some("uri" | "url") => "https://example.com/resource".to_string(),
        Some("uuid") => {
            let bits: u128 = rng.random();
            let hex = format!("{bits:032x}");
            format!(
                "{}-{}-4{}-a{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[13..16],
                &hex[17..20],
                &hex[20..32]
            )
        }
        _ => format!("sample {name} {}", rng.random_range(1..1000)),
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
    let mut text: String = text.chars().take(max).collect();
    while text.chars().count() < min {
        text.push('x');
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::plan::request_rng;

    fn sample_of(schema: Value) -> Value {
        sample(&schema, &mut request_rng(1, 0))
    }

    #[test]
    fn required_properties_get_typed_values() {
        let value = sample_of(json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "celsius": {"type": "boolean"},
                "ratio": {"type": "number", "minimum": 0.5, "maximum": 0.75},
                "optional": {"type": "string"}
            },
            "required": ["city", "days", "celsius", "ratio"]
        }));
        let object = value.as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["celsius", "city", "days", "ratio"]);
        assert!(object["city"].as_str().unwrap().starts_with("sample city "));
        assert!((1..=7).contains(&object["days"].as_i64().unwrap()));
        assert!(object["celsius"].is_boolean());
        let ratio = object["ratio"].as_f64().unwrap();
        assert!((0.5..=0.75).contains(&ratio), "{ratio}");
    }

    #[test]
    fn without_required_every_property_is_filled() {
        let value = sample_of(json!({"properties": {"a": {"type": "integer"}, "b": {}}}));
        assert_eq!(value.as_object().unwrap().len(), 2);
    }

    #[test]
    fn enums_consts_examples_and_formats_are_honoured() {
        let value = sample_of(json!({
            "type": "object",
            "properties": {
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "version": {"const": 2},
                "query": {"type": "string", "examples": ["weather in Paris"]},
                "when": {"type": "string", "format": "date-time"},
                "id": {"type": "string", "format": "uuid"},
                "code": {"type": "string", "maxLength": 3},
                "long": {"type": "string", "minLength": 40}
            }
        }));
        assert!(["celsius", "fahrenheit"].contains(&value["unit"].as_str().unwrap()));
        assert_eq!(value["version"], json!(2));
        assert_eq!(value["query"], json!("weather in Paris"));
        assert_eq!(value["when"], json!("2026-11-27T10:15:30Z"));
        assert_eq!(value["id"].as_str().unwrap().len(), 36);
        assert_eq!(value["code"].as_str().unwrap().chars().count(), 3);
        assert!(value["long"].as_str().unwrap().chars().count() >= 40);
    }

    #[test]
    fn nested_objects_arrays_refs_and_unions() {
        let value = sample_of(json!({
            "type": "object",
            "$defs": {"Address": {"type": "object", "properties": {"street": {"type": "string"}}, "required": ["street"]}},
            "properties": {
                "home": {"$ref": "#/$defs/Address"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                "nickname": {"anyOf": [{"type": "null"}, {"type": "string"}]},
                "age": {"type": ["null", "integer"]},
                "stops": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}
            }
        }));
        assert!(value["home"]["street"].is_string());
        assert_eq!(value["tags"].as_array().unwrap().len(), 2);
        assert!(value["nickname"].is_string());
        assert!(value["age"].is_i64());
        let stops = value["stops"].as_array().unwrap();
        assert!((1..=2).contains(&stops.len()));
        assert!(stops.iter().all(|s| s["n"].is_i64()));
    }

    #[test]
    fn self_referencing_schemas_end() {
        let value = sample_of(json!({
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}, "required": ["next"]}},
            "$ref": "#/$defs/Node"
        }));
        let mut depth = 0;
        let mut node = &value;
        while let Some(next) = node.get("next") {
            node = next;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH, "{depth}");
    }

    #[test]
    fn the_same_stream_gives_the_same_input() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}});
        assert_eq!(
            sample(&schema, &mut request_rng(9, 3)),
            sample(&schema, &mut request_rng(9, 3))
        );
    }
}
