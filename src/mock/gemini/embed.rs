//! `:embedContent` and `:batchEmbedContents`, and Vertex AI's `:predict`
//! (its text-embedding models): the vector of each content's text, the same
//! as the OpenAI mock gives that text (seeded by its SHA-256),
//! `outputDimensionality` long (default 3072, `gemini-embedding-001`'s; 768,
//! `text-embedding-005`'s, on `:predict`). Bounded as the OpenAI mock's: at
//! most 2,048 contents, 1 to 8,192 dimensions, 2^20 numbers in all.

use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::mock::openai::embeddings::text_vector;
use crate::mock::request::{InvalidRequest, body_object, invalid, type_name};

/// The default length of a vector.
const DEFAULT_DIMENSIONS: u64 = 3072;
/// The default length of a vector from `:predict`.
const PREDICT_DIMENSIONS: u64 = 768;
/// The most contents one batch may carry.
const MAX_CONTENTS: usize = 2048;
/// The longest vector.
const MAX_DIMENSIONS: u64 = 8192;
/// The most numbers one answer may hold.
const MAX_NUMBERS: u64 = 1 << 20;

/// `POST ...:embedContent`: `{"embedding": {"values": [...]}}`.
pub(crate) fn one(body: &[u8], _rng: &mut ChaCha8Rng) -> Result<String, InvalidRequest> {
    let object = body_object(body)?;
    let width = dimensions(&object, "", DEFAULT_DIMENSIONS)?;
    let text = content_text(object.get("content"), "content")?;
    Ok(json!({"embedding": {"values": text_vector(&text, width)}}).to_string())
}

/// `POST ...:batchEmbedContents`: `{"embeddings": [{"values": [...]}, ...]}`.
pub(crate) fn batch(body: &[u8], _rng: &mut ChaCha8Rng) -> Result<String, InvalidRequest> {
    let object = body_object(body)?;
    let requests = match object.get("requests") {
        Some(Value::Array(requests)) if !requests.is_empty() => requests,
        Some(Value::Array(_)) | None => {
            return Err(invalid("requests", "at least one request is required"));
        }
        Some(other) => {
            return Err(invalid(
                "requests",
                format_args!("expected an array, got {}", type_name(other)),
            ));
        }
    };
    if requests.len() > MAX_CONTENTS {
        return Err(invalid(
            "requests",
            format_args!("at most {MAX_CONTENTS} requests, got {}", requests.len()),
        ));
    }
    let mut total = 0u64;
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let Value::Object(request) = request else {
            return Err(invalid(&format!("requests.{i}"), "expected an object"));
        };
        let width = dimensions(request, &format!("requests.{i}."), DEFAULT_DIMENSIONS)?;
        total = total.saturating_add(width as u64);
        if total > MAX_NUMBERS {
            return Err(invalid("requests", format_args!("at most {MAX_NUMBERS} numbers in all")));
        }
        let text = content_text(request.get("content"), &format!("requests.{i}.content"))?;
        embeddings.push(json!({"values": text_vector(&text, width)}));
    }
    Ok(json!({"embeddings": embeddings}).to_string())
}

/// Vertex AI's `POST ...:predict`: `{"instances": [{"content": "..."}],
/// "parameters": {"outputDimensionality": N}}`, answered with
/// `{"predictions": [{"embeddings": {"values", "statistics"}}]}`.
pub(crate) fn predict(body: &[u8], _rng: &mut ChaCha8Rng) -> Result<String, InvalidRequest> {
    let object = body_object(body)?;
    let width = match object.get("parameters") {
        Some(Value::Object(parameters)) => {
            dimensions(parameters, "parameters.", PREDICT_DIMENSIONS)?
        }
        _ => dimensions(&Map::new(), "", PREDICT_DIMENSIONS)?,
    };
    let instances = match object.get("instances") {
        Some(Value::Array(instances)) if !instances.is_empty() => instances,
        _ => return Err(invalid("instances", "at least one instance is required")),
    };
    if instances.len() > MAX_CONTENTS {
        let count = instances.len();
        return Err(invalid("instances", format_args!("at most {MAX_CONTENTS}, got {count}")));
    }
    if (width as u64).saturating_mul(instances.len() as u64) > MAX_NUMBERS {
        return Err(invalid("instances", format_args!("at most {MAX_NUMBERS} numbers in all")));
    }
    let mut predictions = Vec::with_capacity(instances.len());
    for (i, instance) in instances.iter().enumerate() {
        let text = instance
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("instances.{i}.content"), "expected a string"))?;
        let tokens = crate::route::rough_tokens(text.as_bytes());
        predictions.push(json!({"embeddings": {
            "values": text_vector(text, width),
            "statistics": {"truncated": false, "token_count": tokens},
        }}));
    }
    Ok(json!({"predictions": predictions}).to_string())
}

/// `outputDimensionality` (or `output_dimensionality`), within bounds, else
/// `default`.
fn dimensions(
    object: &Map<String, Value>,
    prefix: &str,
    default: u64,
) -> Result<usize, InvalidRequest> {
    // Vertex AI's SDK calls put it in `embedContentConfig`.
    let config = object.get("embedContentConfig").and_then(Value::as_object);
    let given = [Some(object), config]
        .into_iter()
        .flatten()
        .find_map(|o| o.get("outputDimensionality").or_else(|| o.get("output_dimensionality")));
    let width = match given {
        None | Some(Value::Null) => default,
        Some(value) => {
            value.as_u64().filter(|n| (1..=MAX_DIMENSIONS).contains(n)).ok_or_else(|| {
                invalid(
                    &format!("{prefix}outputDimensionality"),
                    format_args!("expected 1 to {MAX_DIMENSIONS}, got {value}"),
                )
            })?
        }
    };
    usize::try_from(width).map_err(|_| invalid("outputDimensionality", "too large"))
}

/// The text of a `Content`'s parts, joined.
fn content_text(content: Option<&Value>, field: &str) -> Result<String, InvalidRequest> {
    let parts = content
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(&format!("{field}.parts"), "field required"))?;
    Ok(parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect())
}
