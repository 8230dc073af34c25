//! `GET /v1/models` and `GET /v1/models/{id}`: the models the config names
//! (`models`), in OpenAI's list shape. The mock answers whatever model a
//! request names; this list is for clients that look before they ask.

use serde_json::{Value, json};

use crate::mock::{InstantError, InstantRequest};

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "sluice"})
}

/// `GET /v1/models`.
///
/// # Errors
/// Never; the signature is the one every instant endpoint has.
pub(crate) fn list(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    let data: Vec<Value> = request.config.models.iter().map(|id| model(id)).collect();
    Ok(json!({"object": "list", "data": data}).to_string())
}

/// `GET /v1/models/{id}`.
///
/// # Errors
/// [`InstantError::NotFound`] for a model the config does not name.
pub(crate) fn one(request: &InstantRequest<'_>) -> Result<String, InstantError> {
    let id = request.path.rsplit('/').next().unwrap_or_default();
    match request.config.models.iter().find(|known| known.as_str() == id) {
        Some(id) => Ok(model(id).to_string()),
        None => Err(InstantError::NotFound(format!(
            "The model '{id}' does not exist (sluice serves the models in its config: {})",
            request.config.models.join(", ")
        ))),
    }
}
