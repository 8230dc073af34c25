//! A tool call's `input`, made from the tool's JSON Schema: every required
//! property (all of them when `required` is absent), typed sample values that
//! honour `enum`, `const`, `examples`, `format`, numeric bounds and array
//! lengths, nested objects and arrays, `anyOf`/`oneOf`/`allOf`, and local
//! `$ref`s (`#/$defs/...`, as pydantic and zod emit). Deterministic for a
//! request's random stream.

use std::fmt;

use rand::{Rng, RngExt};
use serde_json::{Map, Number, Value, json};

/// Deeper than this, a value is cut short (`{}`, `[]` or a scalar), which
/// also ends self-referencing schemas.
const MAX_DEPTH: usize = 8;

/// What one input may cost: values made, bytes of output, and steps of work
/// (values, options scanned, pointer lookups). A request's schema is the
/// client's, so without a budget one small request could ask for a hundred
/// million array items or a `$ref` fan-out that never ends, and stall every
/// stream beside it (`docs/reliability.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Values (objects, arrays, scalars) in the input.
    pub values: usize,
    /// Bytes of strings and copied constants.
    pub bytes: usize,
    /// Steps of work.
    pub steps: usize,
}

impl Budget {
    /// 10,000 values, 256 KiB (more than a model's largest output), 200,000 steps.
    pub const DEFAULT: Self = Self { values: 10_000, bytes: 256 * 1024, steps: 200_000 };
}

/// A schema whose input would not fit the [`Budget`]: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an input for this schema would exceed the mock's budget ({} values, {} KiB, {} steps): at {path}, {reason}",
    Budget::DEFAULT.values,
    Budget::DEFAULT.bytes / 1024,
    Budget::DEFAULT.steps
)]
pub struct TooLarge {
    /// The schema path, such as `properties.items.items`.
    pub path: String,
    /// What ran out.
    pub reason: String,
}

/// A sample value that satisfies `schema` (as far as a mock needs to),
/// within [`Budget::DEFAULT`].
///
/// # Errors
/// [`TooLarge`] naming the schema path where the budget ran out.
pub fn sample(schema: &Value, rng: &mut impl Rng) -> Result<Value, TooLarge> {
    sample_within(schema, rng, Budget::DEFAULT)
}

/// [`sample`] with another budget.
///
/// # Errors
/// [`TooLarge`] naming the schema path where the budget ran out.
pub fn sample_within(
    schema: &Value,
    rng: &mut impl Rng,
    budget: Budget,
) -> Result<Value, TooLarge> {
    let mut sampler = Sampler { root: schema, left: budget, full: budget };
    sampler.value(schema, rng, 0, "value", &SchemaPath::Root)
}

/// Where in the schema the sampler is, as a chain of borrowed segments (no
/// allocation unless an error names it).
enum SchemaPath<'a> {
    Root,
    Key(&'a SchemaPath<'a>, &'a str),
}

impl fmt::Display for SchemaPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("the schema's root"),
            Self::Key(Self::Root, key) => f.write_str(key),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

struct Sampler<'a> {
    root: &'a Value,
    left: Budget,
    full: Budget,
}

impl<'a> Sampler<'a> {
    fn too_large(path: &SchemaPath<'_>, reason: impl Into<String>) -> TooLarge {
        TooLarge { path: path.to_string(), reason: reason.into() }
    }

    /// Spends `steps` of work.
    fn step(&mut self, steps: usize, path: &SchemaPath<'_>) -> Result<(), TooLarge> {
        self.left.steps = self.left.steps.checked_sub(steps).ok_or_else(|| {
            Self::too_large(path, "the schema takes too much work (a $ref fan-out?)")
        })?;
        Ok(())
    }

    /// Spends one value and `bytes` of output.
    fn spend(&mut self, bytes: usize, path: &SchemaPath<'_>) -> Result<(), TooLarge> {
        self.step(1, path)?;
        self.left.values = self.left.values.checked_sub(1).ok_or_else(|| {
            Self::too_large(path, "too many values (nested arrays or a $ref fan-out?)")
        })?;
        self.left.bytes = self
            .left
            .bytes
            .checked_sub(bytes)
            .ok_or_else(|| Self::too_large(path, "too many bytes of output"))?;
        Ok(())
    }

    /// A copy of `value` from the schema (`const`, `enum`, `examples`), paid for.
    fn copy(&mut self, value: &Value, path: &SchemaPath<'_>) -> Result<Value, TooLarge> {
        let mut stack = vec![value];
        while let Some(next) = stack.pop() {
            let bytes = match next {
                Value::String(text) => text.len(),
                Value::Array(items) => {
                    stack.extend(items);
                    0
                }
                Value::Object(map) => {
                    stack.extend(map.values());
                    map.keys().map(String::len).sum()
                }
                _ => 8,
            };
            self.spend(bytes, path)?;
        }
        Ok(value.clone())
    }

    /// Optional properties (no `required` list) are filled while less than
    /// half the budget is spent; after that a value gets only what it must have.
    fn can_afford_optional(&self) -> bool {
        self.left.values * 2 > self.full.values && self.left.bytes * 2 > self.full.bytes
    }

    fn value(
        &mut self,
        schema: &Value,
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, TooLarge> {
        let Value::Object(schema) = schema else {
            self.spend(name.len(), path)?;
            return Ok(json!(name)); // `true` or a malformed schema: anything goes
        };
        self.step(1, path)?;
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            self.step(reference.len(), path)?;
            let here = SchemaPath::Key(path, reference);
            return match self.resolve(reference) {
                Some(target) if depth < MAX_DEPTH => {
                    self.value(target, rng, depth + 1, name, &here)
                }
                _ => {
                    self.spend(0, path)?;
                    Ok(Value::Object(Map::new()))
                }
            };
        }
        if let Some(constant) = schema.get("const") {
            return self.copy(constant, &SchemaPath::Key(path, "const"));
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && !options.is_empty()
        {
            let chosen = &options[rng.random_range(0..options.len())];
            return self.copy(chosen, &SchemaPath::Key(path, "enum"));
        }
        if let Some(Value::Array(examples)) = schema.get("examples")
            && let Some(first) = examples.first()
        {
            return self.copy(first, &SchemaPath::Key(path, "examples"));
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(options)) = schema.get(combinator) {
                let here = SchemaPath::Key(path, combinator);
                let non_null = options
                    .iter()
                    .position(|o| o.get("type").and_then(Value::as_str) != Some("null"));
                self.step(non_null.map_or(options.len(), |at| at + 1), &here)?;
                if let Some(option) = non_null.map(|at| &options[at]).or(options.first()) {
                    return self.value(option, rng, depth + 1, name, &here);
                }
            }
        }
        match type_of(schema) {
            "object" if depth >= MAX_DEPTH => {
                self.spend(0, path)?;
                Ok(Value::Object(Map::new()))
            }
            "object" => self.object(schema, rng, depth, path),
            "array" if depth >= MAX_DEPTH => {
                self.spend(0, path)?;
                Ok(Value::Array(Vec::new()))
            }
            "array" => self.array(schema, rng, depth, name, path),
            "integer" => self.spend(8, path).map(|()| integer(schema, rng)),
            "number" => self.spend(8, path).map(|()| number(schema, rng)),
            "boolean" => self.spend(1, path).map(|()| Value::Bool(rng.random())),
            "null" => self.spend(1, path).map(|()| Value::Null),
            _ => self.string(schema, rng, name, path),
        }
    }

    fn object(
        &mut self,
        schema: &Map<String, Value>,
        rng: &mut impl Rng,
        depth: usize,
        path: &SchemaPath<'_>,
    ) -> Result<Value, TooLarge> {
        self.spend(0, path)?;
        let empty = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let here = SchemaPath::Key(path, "properties");
        let mut out = Map::new();
        match schema.get("required").and_then(Value::as_array) {
            Some(required) => {
                for name in required.iter().filter_map(Value::as_str) {
                    let property = properties.get(name).unwrap_or(&Value::Bool(true));
                    self.spend(name.len(), &here)?;
                    let value =
                        self.value(property, rng, depth + 1, name, &SchemaPath::Key(&here, name))?;
                    out.insert(name.to_string(), value);
                }
            }
            None => {
                for (name, property) in properties {
                    if !self.can_afford_optional() {
                        break;
                    }
                    self.spend(name.len(), &here)?;
                    let value =
                        self.value(property, rng, depth + 1, name, &SchemaPath::Key(&here, name))?;
                    out.insert(name.clone(), value);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn array(
        &mut self,
        schema: &Map<String, Value>,
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, TooLarge> {
        self.spend(0, path)?;
        // One or two items, within minItems..=maxItems.
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
        let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(u64::MAX);
        let upper = max.min(min.max(2));
        let count = rng.random_range(min.min(upper)..=upper);
        // Refused before a single item is made: the count alone is too many.
        if usize::try_from(count).map_or(true, |count| count > self.left.values) {
            return Err(Self::too_large(path, format!("{count} items (minItems {min})")));
        }
        let items = schema.get("items").unwrap_or(&Value::Bool(true));
        let here = SchemaPath::Key(path, "items");
        (0..count).map(|_| self.value(items, rng, depth + 1, name, &here)).collect()
    }

    fn string(
        &mut self,
        schema: &Map<String, Value>,
        rng: &mut impl Rng,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, TooLarge> {
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let min = usize::try_from(min).unwrap_or(usize::MAX);
        // Each char is at least a byte: a minLength past the bytes left cannot fit.
        if min > self.left.bytes {
            return Err(Self::too_large(
                path,
                format!("a string of at least {min} characters (minLength)"),
            ));
        }
        let text = string(schema, rng, name, min);
        self.spend(text.len(), path)?;
        Ok(Value::String(text))
    }

    /// A local JSON pointer such as `#/$defs/Address`.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
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

/// One end of a numeric range.
#[derive(Debug, Clone, Copy)]
struct Bound {
    value: f64,
    exclusive: bool,
}

/// The lower or upper bound of a number, in every spelling: `minimum`,
/// `exclusiveMinimum` as a number (draft 6 and later, pydantic's `gt`), or
/// as a boolean beside `minimum` (draft 4). Given both, the tighter.
fn bound(
    schema: &Map<String, Value>,
    inclusive: &str,
    exclusive: &str,
    lower: bool,
) -> Option<Bound> {
    let plain = schema.get(inclusive).and_then(Value::as_f64);
    let strict = match schema.get(exclusive) {
        Some(Value::Bool(true)) => plain.map(|value| Bound { value, exclusive: true }),
        Some(other) => other.as_f64().map(|value| Bound { value, exclusive: true }),
        None => None,
    };
    let plain = plain.map(|value| Bound { value, exclusive: false });
    match (plain, strict) {
        (Some(p), Some(s)) => {
            let strict_is_tighter = if lower { s.value >= p.value } else { s.value <= p.value };
            Some(if strict_is_tighter { s } else { p })
        }
        (one, other) => other.or(one),
    }
}

/// The range of a number: its bounds, or `default` around what is given.
fn range(schema: &Map<String, Value>, default: (f64, f64)) -> (Bound, Bound) {
    let low = bound(schema, "minimum", "exclusiveMinimum", true);
    let high = bound(schema, "maximum", "exclusiveMaximum", false);
    let width = default.1 - default.0;
    let low = low.unwrap_or(Bound {
        value: high.map_or(default.0, |h| default.0.min(h.value - width)),
        exclusive: false,
    });
    let high = high.unwrap_or(Bound { value: default.1.max(low.value + width), exclusive: false });
    (low, high)
}

fn integer(schema: &Map<String, Value>, rng: &mut impl Rng) -> Value {
    let (low, high) = range(schema, (1.0, 100.0));
    // The least integer allowed above `low`, the greatest below `high`.
    let low = if low.exclusive { low.value.floor() + 1.0 } else { low.value.ceil() };
    let high = if high.exclusive { high.value.ceil() - 1.0 } else { high.value.floor() };
    let step =
        schema.get("multipleOf").and_then(Value::as_f64).filter(|m| *m >= 1.0 && m.fract() == 0.0);
    let (low, high) = (low as i64, (high as i64).max(low as i64));
    match step.map(|m| m as i64) {
        Some(m) => {
            let (first, last) =
                (low.div_euclid(m) + i64::from(low.rem_euclid(m) != 0), high.div_euclid(m));
            json!(rng.random_range(first..=last.max(first)).saturating_mul(m))
        }
        None => json!(rng.random_range(low..=high)),
    }
}

fn number(schema: &Map<String, Value>, rng: &mut impl Rng) -> Value {
    let (low, high) = range(schema, (0.0, 100.0));
    let inside = |v: f64| {
        (if low.exclusive { v > low.value } else { v >= low.value })
            && (if high.exclusive { v < high.value } else { v <= high.value })
    };
    let (a, b) = (low.value, high.value.max(low.value));
    let drawn = a + (b - a) * rng.random::<f64>();
    let value = match schema.get("multipleOf").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        Some(m) => {
            let (first, last) = ((a / m).ceil(), (b / m).floor());
            let k = (first + ((last - first).max(0.0) * rng.random::<f64>()).round()).max(first);
            [k * m, (k + 1.0) * m, (k - 1.0) * m].into_iter().find(|v| inside(*v)).unwrap_or(k * m)
        }
        None => {
            // Two decimals read well; an open bound may need more.
            let rounded = (drawn * 100.0).round() / 100.0;
            [rounded, drawn, (a + b) / 2.0].into_iter().find(|v| inside(*v)).unwrap_or(drawn)
        }
    };
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A string of at least `min` characters (padded with `x`, in linear time)
/// and at most `maxLength`.
fn string(schema: &Map<String, Value>, rng: &mut impl Rng, name: &str, min: usize) -> String {
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
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let mut text: String = text.chars().take(max).collect();
    let count = text.chars().count();
    if count < min {
        text.extend(std::iter::repeat_n('x', min - count));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::plan::request_rng;

    fn sample_of(schema: Value) -> Value {
        sample(&schema, &mut request_rng(1, 0)).unwrap()
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

    fn try_sample(schema: &Value) -> Result<Value, TooLarge> {
        sample(schema, &mut request_rng(1, 0))
    }

    #[test]
    fn exclusive_bounds_and_multiples_hold_for_every_draw() {
        // pydantic's Field(gt=0, lt=1), draft 4's boolean form, integers, multiples.
        let cases = [
            (
                json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
                0.0,
                1.0,
                true,
            ),
            (
                json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 0.01, "exclusiveMaximum": true}),
                0.0,
                0.01,
                true,
            ),
            (
                json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}),
                0.0,
                3.0,
                true,
            ),
            (json!({"type": "integer", "minimum": 500}), 500.0, 600.0, false),
            (json!({"type": "number", "maximum": -50}), -150.0, -50.0, false),
        ];
        for (schema, low, high, open) in cases {
            for seed in 0..200 {
                let value = sample(&schema, &mut request_rng(seed, 1)).unwrap().as_f64().unwrap();
                let ok =
                    if open { value > low && value < high } else { value >= low && value <= high };
                assert!(ok, "{schema}: {value}");
            }
        }
        for seed in 0..200 {
            let even = sample(
                &json!({"type": "integer", "minimum": 1, "maximum": 20, "multipleOf": 4}),
                &mut request_rng(seed, 2),
            )
            .unwrap();
            let even = even.as_i64().unwrap();
            assert!(even % 4 == 0 && (4..=20).contains(&even), "{even}");
            let step = sample(
                &json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "multipleOf": 0.25}),
                &mut request_rng(seed, 3),
            )
            .unwrap();
            let step = step.as_f64().unwrap();
            assert!(step > 0.0 && step <= 1.0 && (step / 0.25).fract() == 0.0, "{step}");
        }
    }

    #[test]
    fn a_huge_min_items_is_refused_before_any_item_is_made() {
        let schema = json!({"type": "object", "properties": {"ids": {"type": "array", "minItems": 100_000_000u64, "items": {"type": "integer"}}}, "required": ["ids"]});
        let result = try_sample(&schema);
        let error = result.unwrap_err();
        assert_eq!(error.path, "properties.ids");
        assert!(error.to_string().contains("100000000 items (minItems 100000000)"), "{error}");
    }

    #[test]
    fn a_ref_fan_out_runs_out_of_budget_instead_of_memory() {
        // Each level refers to itself 40 times, all required: 40^8 values unbounded.
        let names: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        let properties: Map<String, Value> =
            names.iter().map(|n| (n.clone(), json!({"$ref": "#/$defs/Node"}))).collect();
        let schema = json!({
            "$defs": {"Node": {"type": "object", "properties": properties, "required": names}},
            "$ref": "#/$defs/Node"
        });
        let result = try_sample(&schema);
        let error = result.unwrap_err();
        assert!(error.path.starts_with("#/$defs/Node.properties.p0"), "{}", error.path);
        assert!(error.reason.contains("too many values"), "{error}");
    }

    #[test]
    fn an_optional_fan_out_degrades_to_what_is_required() {
        // No `required`: every property is optional, so the input stops
        // growing at half the budget instead of failing.
        let properties: Map<String, Value> =
            (0..40).map(|i| (format!("p{i}"), json!({"$ref": "#/$defs/Node"}))).collect();
        let schema = json!({"$defs": {"Node": {"type": "object", "properties": properties}}, "$ref": "#/$defs/Node"});
        let value = sample_of(schema);
        let size = value.to_string().len();
        assert!(size < Budget::DEFAULT.bytes * 4, "{size}");
    }

    #[test]
    fn padding_is_linear_and_a_min_length_past_the_budget_is_refused() {
        let fits = json!({"type": "string", "minLength": 200_000});
        assert_eq!(sample_of(fits).as_str().unwrap().len(), 200_000);
        let result = try_sample(
            &json!({"type": "object", "properties": {"note": {"type": "string", "minLength": 500_000}}}),
        );
        let error = result.unwrap_err();
        assert_eq!(error.path, "properties.note");
        assert!(error.reason.contains("at least 500000 characters"), "{error}");
    }

    #[test]
    fn the_budget_bounds_bytes_across_many_strings() {
        // 5,000 strings of 100 characters: 500 KB, over the 256 KiB budget.
        let schema = json!({"type": "array", "minItems": 5000, "maxItems": 5000, "items": {"type": "string", "minLength": 100}});
        let error = sample(&schema, &mut request_rng(1, 0)).unwrap_err();
        assert_eq!(error.path, "items");
        assert!(error.reason.contains("minLength"), "{error}");
        // 5,000 strings of 40: 200 KB, under the budget; 10,000 of 40 are over it.
        let within = json!({"type": "array", "minItems": 5000, "maxItems": 5000, "items": {"type": "string", "minLength": 40}});
        assert!(sample(&within, &mut request_rng(1, 0)).is_ok());
        let over = json!({"type": "array", "minItems": 8000, "maxItems": 8000, "items": {"type": "string", "minLength": 40}});
        let error = sample(&over, &mut request_rng(1, 0)).unwrap_err();
        assert_eq!(error.path, "items", "the string that no longer fits: {error}");
    }
}
