//! `stream_error`: HTTP 200, N tokens, then the provider's mid-stream error
//! event (Anthropic's `event: error`, OpenAI's `{"error":...}` or the
//! Responses API's `error` and `response.failed`), then the end.

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::shape::{StreamAction, StreamFault};

/// After `after_tokens` tokens, the provider's error event, then the end.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    /// Tokens released first.
    pub after_tokens: u32,
    /// `error.type`, e.g. `overloaded_error`.
    pub error_type: String,
    /// `error.message`; the provider's usual one for the type when `None`.
    pub message: Option<String>,
}

impl Kind for StreamError {
    const NAME: &'static str = "stream_error";
    const KEYS: &'static [&'static str] = &["after_tokens", "error_type", "message"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self {
            after_tokens: given.after_tokens()?,
            error_type: given.text("error_type")?.unwrap_or_else(|| "overloaded_error".into()),
            message: given.text("message")?,
        })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut params = vec![
            ("after_tokens", Param::Count(u64::from(self.after_tokens))),
            ("error_type", Param::Text(self.error_type.clone())),
        ];
        if let Some(message) = &self.message {
            params.push(("message", Param::Text(message.clone())));
        }
        params
    }

    fn on_stream(&self, stream: &OnStream<'_>) -> Option<StreamFault> {
        let message = self
            .message
            .as_deref()
            .unwrap_or_else(|| stream.dialect.stream_error_message(&self.error_type));
        let event =
            stream.dialect.error_event(&self.error_type, message, stream.request_id, stream.so_far);
        Some(StreamFault { after_tokens: self.after_tokens, action: StreamAction::EndWith(event) })
    }
}
