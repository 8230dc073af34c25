//! `POST /v1/embeddings`: deterministic vectors, so a RAG pipeline can be
//! load-tested end to end. A text's vector is seeded from the text itself
//! (SHA-256), not from the request's random stream: the same text gets the
//! same vector in every request, run and seed, as a real model gives it, and
//! a vector store filled in one run is searched with the same vectors in the
//! next. Vectors are unit length, so cosine similarity and dot product agree.
//!
//! `input` is a string, an array of strings, an array of token ids, or an
//! array of such arrays; `dimensions` (default 1536) sets the length;
//! `encoding_format` is `float` (the default) or `base64` (little-endian
//! `f32`s, as the SDKs decode it). What one request may ask is bounded: at
//! most 2,048 inputs of at most 8,192 tokens each (the API's limits), 1 to
//! 8,192 dimensions, and 2^20 numbers in all.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::mock::request::{
    InvalidRequest, body_object, invalid, optional_count, required_string, type_name,
};

/// The default vector length (OpenAI's `text-embedding-3-small`).
pub(crate) const DEFAULT_DIMENSIONS: u64 = 1536;
/// The most inputs one request may carry (the API's own limit).
const MAX_INPUTS: usize = 2048;
/// The most tokens one input may hold (the API's context for embeddings).
const MAX_INPUT_TOKENS: usize = 8192;
/// The longest vector.
const MAX_DIMENSIONS: u64 = 8192;
/// The most numbers one response may hold (inputs × dimensions): 4 MiB of
/// `f32`, about 20 MiB of JSON.
const MAX_NUMBERS: u64 = 1 << 20;

/// The answer to one embeddings request.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field, or a request past the bounds.
pub(crate) fn answer(body: &[u8], _rng: &mut ChaCha8Rng) -> Result<String, InvalidRequest> {
    let object = body_object(body)?;
    let model = required_string(&object, "model")?;
    let inputs = inputs(object.get("input"))?;
    let dimensions = optional_count(&object, "dimensions")?.unwrap_or(DEFAULT_DIMENSIONS);
    if dimensions > MAX_DIMENSIONS {
        return Err(invalid(
            "dimensions",
            format_args!("at most {MAX_DIMENSIONS} in the sluice mock, got {dimensions}"),
        ));
    }
    let numbers = dimensions.saturating_mul(inputs.len() as u64);
    if numbers > MAX_NUMBERS {
        return Err(invalid(
            "input",
            format_args!(
                "{} inputs of {dimensions} dimensions is {numbers} numbers; the sluice mock answers at most {MAX_NUMBERS} per request",
                inputs.len()
            ),
        ));
    }
    let base64 = match object.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format_args!("expected \"float\" or \"base64\", got {other}"),
            ));
        }
    };
    let width = usize::try_from(dimensions).unwrap_or(usize::MAX);
    let mut prompt_tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            prompt_tokens = prompt_tokens.saturating_add(input.tokens);
            let vector = vector_from_seed(input.seed, width);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(BASE64.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
    .to_string())
}

/// One input: the seed of its vector (the SHA-256 of its text, or of its
/// token ids), and its rough token count.
struct Input {
    seed: [u8; 32],
    tokens: u64,
}

fn inputs(input: Option<&Value>) -> Result<Vec<Input>, InvalidRequest> {
    let text = |text: &str| Input {
        seed: Sha256::digest(text.as_bytes()).into(),
        tokens: (text.len() as u64 / 4).max(1),
    };
    // Hashed as they are read: one input of many ids costs no copy of them.
    let token_ids = |ids: &[Value], field: &str| -> Result<Input, InvalidRequest> {
        if ids.len() > MAX_INPUT_TOKENS {
            return Err(invalid(
                field,
                format_args!(
                    "this model's maximum context length is {MAX_INPUT_TOKENS} tokens, however \
                     you requested {} tokens",
                    ids.len()
                ),
            ));
        }
        let mut seed = Sha256::new();
        seed.update(b"tokens:");
        for id in ids {
            let id = id.as_u64().ok_or_else(|| {
                invalid(field, format_args!("expected token ids (whole numbers), got {id}"))
            })?;
            seed.update(id.to_le_bytes());
        }
        Ok(Input { seed: seed.finalize().into(), tokens: ids.len().max(1) as u64 })
    };
    let items = match input {
        Some(Value::String(single)) => return Ok(vec![text(single)]),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(invalid("input", "must not be empty"));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                "input",
                format_args!("expected a string or an array, got {}", type_name(other)),
            ));
        }
        None => return Err(invalid("input", "field required")),
    };
    // An array of numbers is one input of token ids, whatever its length.
    if items.iter().all(Value::is_number) {
        return Ok(vec![token_ids(items, "input")?]);
    }
    if items.len() > MAX_INPUTS {
        return Err(invalid(
            "input",
            format_args!("at most {MAX_INPUTS} inputs per request, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(single) => Ok(text(single)),
            Value::Array(ids) => token_ids(ids, &format!("input.{i}")),
            other => Err(invalid(
                &format!("input.{i}"),
                format_args!(
                    "expected a string or an array of token ids, got {}",
                    type_name(other)
                ),
            )),
        })
        .collect()
}

/// The unit vector of `text`, `width` numbers: the same text gets the same
/// vector whatever API asks (Gemini's `embedContent` too).
pub(crate) fn text_vector(text: &str, width: usize) -> Vec<f32> {
    vector_from_seed(Sha256::digest(text.as_bytes()).into(), width)
}

/// A unit vector of `width` numbers, the same for the same seed.
fn vector_from_seed(seed: [u8; 32], width: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::from_seed(seed);
    let raw: Vec<f64> = (0..width).map(|_| StandardNormal.sample(&mut rng)).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    raw.iter().map(|x| (x * scale) as f32).collect()
}
