//! Anthropic Messages API: error types and error bodies (`protocols.md` §2.5).
//!
//! Every error sluice sends on an Anthropic route, whether it answers a bad
//! request or is an injected fault, has the provider's shape, so the official
//! SDKs raise the same exception class they would raise against the real API:
//!
//! ```json
//! {"type":"error","error":{"type":"rate_limit_error","message":"..."},"request_id":"req_..."}
//! ```

use serde_json::json;

/// The `error.type` the real API pairs with an HTTP status. The SDKs choose
/// the exception class from the status; the type is what users read.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        405 => "invalid_request_error",
        408 | 504 => "timeout_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The message the real API sends with an injected status, when the config
/// gives none.
pub fn default_message_for_status(status: u16) -> &'static str {
    match status {
        400 => "Invalid request",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource",
        404 => "Not found",
        408 | 504 => "Request timed out",
        409 => "Conflict",
        413 => "Request exceeds the maximum allowed number of bytes",
        429 => "Number of requests has exceeded your rate limit",
        529 => "Overloaded",
        _ => "Internal server error",
    }
}

/// The JSON body of an error response.
pub fn error_body(error_type: &str, message: &str, request_id: &str) -> String {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_providers_error_types() {
        let table = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ];
        for (status, expected) in table {
            assert_eq!(error_type_for_status(status), expected, "status {status}");
        }
    }

    #[test]
    fn error_body_has_the_provider_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&error_body("overloaded_error", "Overloaded", "req_1")).unwrap();
        assert_eq!(
            body,
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"})
        );
    }
}
