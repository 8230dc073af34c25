//! `reset`: N tokens, then the connection is reset with a real TCP RST
//! (SO_LINGER 0), or the stream with RST_STREAM on HTTP/2.

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::shape::{StreamAction, StreamFault};

/// After `after_tokens` tokens, the connection is reset.
#[derive(Debug, Clone, PartialEq)]
pub struct Reset {
    /// Tokens released first.
    pub after_tokens: u32,
}

impl Kind for Reset {
    const NAME: &'static str = "reset";
    const KEYS: &'static [&'static str] = &["after_tokens"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self { after_tokens: given.after_tokens()? })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("after_tokens", Param::Count(u64::from(self.after_tokens)))]
    }

    fn on_stream(&self, _stream: &OnStream<'_>) -> Option<StreamFault> {
        Some(StreamFault { after_tokens: self.after_tokens, action: StreamAction::Reset })
    }
}
