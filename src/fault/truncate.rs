//! `truncate`: N tokens, then a clean close without the stream's final event
//! (`message_stop`, `[DONE]` or `response.completed`).

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::shape::{StreamAction, StreamFault};

/// After `after_tokens` tokens, a clean end without the final event.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncate {
    /// Tokens released first.
    pub after_tokens: u32,
}

impl Kind for Truncate {
    const NAME: &'static str = "truncate";
    const KEYS: &'static [&'static str] = &["after_tokens"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self { after_tokens: given.after_tokens()? })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("after_tokens", Param::Count(u64::from(self.after_tokens)))]
    }

    fn on_stream(&self, _stream: &OnStream<'_>) -> Option<StreamFault> {
        Some(StreamFault { after_tokens: self.after_tokens, action: StreamAction::Truncate })
    }
}
