//! The sampler's unit tests: each construct, the budget and unsatisfiable schemas.

use std::path::Path;

use super::*;
use crate::shape::request_rng;

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
    // `next` is required all the way down: no finite input is valid, so
    // the chain is cut at the hard depth.
    let value = sample_of(json!({
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}, "required": ["next"]}},
        "$ref": "#/$defs/Node"
    }));
    assert_eq!(chain_length(&value, "next"), HARD_DEPTH);
    // Optional recursion (pydantic's `next: Optional[Node]`) ends in
    // `null` at MAX_DEPTH, and the input is valid.
    let value = sample_of(json!({
        "$defs": {"Node": {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}, "required": ["next"]}},
        "$ref": "#/$defs/Node"
    }));
    assert_eq!(chain_length(&value, "next"), MAX_DEPTH - 1);
}

fn chain_length(mut node: &Value, key: &str) -> usize {
    let mut depth = 0;
    while let Some(next) = node.get(key).filter(|n| n.is_object()) {
        node = next;
        depth += 1;
    }
    depth
}

#[test]
fn the_same_stream_gives_the_same_input() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}});
    assert_eq!(sample(&schema, &mut request_rng(9, 3)), sample(&schema, &mut request_rng(9, 3)));
}

fn try_sample(schema: &Value) -> Result<Value, SchemaError> {
    sample(schema, &mut request_rng(1, 0))
}

#[test]
fn exclusive_bounds_and_multiples_hold_for_every_draw() {
    // pydantic's Field(gt=0, lt=1), draft 4's boolean form, integers, multiples.
    let cases = [
        (json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}), 0.0, 1.0, true),
        (
            json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 0.01, "exclusiveMaximum": true}),
            0.0,
            0.01,
            true,
        ),
        (json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}), 0.0, 3.0, true),
        (json!({"type": "integer", "minimum": 500}), 500.0, 600.0, false),
        (json!({"type": "number", "maximum": -50}), -150.0, -50.0, false),
    ];
    for (schema, low, high, open) in cases {
        for seed in 0..200 {
            let value = sample(&schema, &mut request_rng(seed, 1)).unwrap().as_f64().unwrap();
            let ok = if open { value > low && value < high } else { value >= low && value <= high };
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
    assert_eq!(error.path(), "properties.ids");
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
    assert!(error.path().starts_with("#/$defs/Node.properties.p0"), "{}", error.path());
    assert!(error.reason().contains("too many values"), "{error}");
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
    assert_eq!(error.path(), "properties.note");
    assert!(error.reason().contains("at least 500000 characters"), "{error}");
}

#[test]
fn the_budget_bounds_bytes_across_many_strings() {
    // 5,000 strings of 100 characters: 500 KB, over the 256 KiB budget.
    let schema = json!({"type": "array", "minItems": 5000, "maxItems": 5000, "items": {"type": "string", "minLength": 100}});
    let error = sample(&schema, &mut request_rng(1, 0)).unwrap_err();
    assert_eq!(error.path(), "items");
    assert!(error.reason().contains("minLength"), "{error}");
    // 5,000 strings of 40: 200 KB, under the budget; 10,000 of 40 are over it.
    let within = json!({"type": "array", "minItems": 5000, "maxItems": 5000, "items": {"type": "string", "minLength": 40}});
    assert!(sample(&within, &mut request_rng(1, 0)).is_ok());
    let over = json!({"type": "array", "minItems": 8000, "maxItems": 8000, "items": {"type": "string", "minLength": 40}});
    let error = sample(&over, &mut request_rng(1, 0)).unwrap_err();
    assert_eq!(error.path(), "items", "the string that no longer fits: {error}");
}

/// The schema property: for every schema of the corpus in `tests/schemas`
/// (hand-written edge cases, and what pydantic, zod and the Vercel AI
/// SDK emit, also in the strict form the Anthropic SDK and the AI SDK send
/// for structured output) and 200 seeds, the input validates against its
/// schema (for a strict form, the original) with the `jsonschema` crate,
/// formats included.
#[test]
fn corpus_inputs_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas");
    let mut checked = 0;
    for file in ["edge_cases.json", "pydantic.json", "zod.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let corpus: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert!(corpus.len() >= 10, "{file}: {} schemas", corpus.len());
        for entry in corpus {
            let (name, schema) = (&entry["name"], &entry["schema"]);
            // A schema a client rewrote for strict mode is judged by the
            // original it came from.
            let judge = entry.get("validate_against").unwrap_or(schema);
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(judge)
                .unwrap_or_else(|e| unreachable!("{file} {name}: not a schema: {e}"));
            for seed in 0..200 {
                let value = sample(schema, &mut request_rng(seed, 7))
                    .unwrap_or_else(|e| unreachable!("{file} {name} seed {seed}: {e}"));
                let errors: Vec<String> =
                    validator.iter_errors(&value).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{file} {name} seed {seed}: {value}: {errors:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 200 * 70, "{checked}");
}

#[test]
fn patterns_prefix_items_and_unique_items_are_honoured() {
    for seed in 0..200 {
        let mut rng = request_rng(seed, 5);
        let zip = sample(&json!({"type": "string", "pattern": "^[0-9]{5}$"}), &mut rng).unwrap();
        let zip = zip.as_str().unwrap();
        assert!(zip.len() == 5 && zip.bytes().all(|b| b.is_ascii_digit()), "{zip}");
        let tuple = sample(
            &json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}),
            &mut rng,
        )
        .unwrap();
        let tuple = tuple.as_array().unwrap();
        assert_eq!(tuple.len(), 2);
        assert!(tuple[0].is_string() && tuple[1].is_i64(), "{tuple:?}");
        let set = sample(
            &json!({"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": true}),
            &mut rng,
        )
        .unwrap();
        let mut set: Vec<i64> = set.as_array().unwrap().iter().filter_map(Value::as_i64).collect();
        set.sort_unstable();
        assert_eq!(set, [1, 2, 3]);
    }
}

#[test]
fn unsatisfiable_schemas_are_refused_with_their_path() {
    let cases = [
        (
            json!({"type": "object", "properties": {"r": {"type": "number", "minimum": 5, "maximum": 1}}, "required": ["r"]}),
            "properties.r",
            "no number lies in [5, 1]",
        ),
        (
            json!({"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2}),
            "the schema's root",
            "no integer lies in (1, 2)",
        ),
        (
            json!({"type": "integer", "minimum": 1, "maximum": 4, "multipleOf": 5}),
            "the schema's root",
            "no multiple of 5 lies in [1, 4]",
        ),
        (
            json!({"type": "string", "minLength": 5, "maxLength": 2}),
            "the schema's root",
            "minLength 5 is above maxLength 2",
        ),
        (
            json!({"properties": {"tags": {"type": "array", "minItems": 3, "maxItems": 1}}, "required": ["tags"]}),
            "properties.tags",
            "minItems 3 is above maxItems 1",
        ),
        (
            json!({"type": "array", "items": {"type": "boolean"}, "minItems": 3, "uniqueItems": true}),
            "the schema's root",
            "uniqueItems: only 2 distinct items could be drawn, minItems is 3",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"], "additionalProperties": false}),
            "properties.b",
            "property \"b\" is needed, but additionalProperties is false",
        ),
        (
            json!({"properties": {"u": {"enum": [1, 2], "allOf": [{"enum": [3]}]}}, "required": ["u"]}),
            "properties.u.enum",
            "no value is allowed",
        ),
        (
            json!({"allOf": [{"type": "string"}, {"type": "integer"}]}),
            "the schema's root",
            "the types its parts allow do not overlap",
        ),
        (
            json!({"type": "object", "properties": {"never": false}, "required": ["never"]}),
            "properties.never",
            "the schema is `false`",
        ),
        (
            json!({"type": "array", "prefixItems": [{"type": "integer"}], "items": false, "minItems": 2}),
            "the schema's root",
            "at least 2 items are needed, but at most 1 are allowed",
        ),
        (
            json!({"type": "string", "pattern": "^[0-9]{5}$", "maxLength": 3}),
            "pattern",
            "no string of 0 to 3 characters matching \"^[0-9]{5}$\" was found",
        ),
        (
            json!({"not": {}}),
            "the schema's root",
            "every value drawn matches the schema under `not`",
        ),
    ];
    for (schema, path, reason) in cases {
        let error = try_sample(&schema).unwrap_err();
        assert!(matches!(error, SchemaError::Unsatisfiable { .. }), "{schema}: {error}");
        assert_eq!((error.path(), error.reason()), (path, reason), "{schema}");
    }
}

#[test]
fn many_costly_patterns_run_out_of_budget() {
    // Each pattern is distinct, so each would be compiled: past 50 the
    // budget refuses the schema instead of spending CPU on regexes.
    let properties: Map<String, Value> = (0..200)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"type": "string", "pattern": format!("^(\\w{{50}}){{{}}}$", i % 50 + 1)}),
            )
        })
        .collect();
    let names: Vec<&String> = properties.keys().collect();
    let schema = json!({"type": "object", "properties": properties, "required": names});
    let error = try_sample(&schema).unwrap_err();
    assert!(matches!(error, SchemaError::TooLarge { .. }), "{error}");
    assert!(error.reason().contains("too much work"), "{error}");
}
