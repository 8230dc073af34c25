//! `malformed`: the token after N tokens goes out with its JSON cut in half;
//! the stream then goes on, as after a corrupting middlebox.

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::shape::{StreamAction, StreamFault};

/// The token after `after_tokens` tokens is sent corrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    /// Tokens released first.
    pub after_tokens: u32,
}

impl Kind for Malformed {
    const NAME: &'static str = "malformed";
    const KEYS: &'static [&'static str] = &["after_tokens"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self { after_tokens: given.after_tokens()? })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("after_tokens", Param::Count(u64::from(self.after_tokens)))]
    }

    fn on_stream(&self, stream: &OnStream<'_>) -> Option<StreamFault> {
        let action = StreamAction::Malformed(stream.dialect.framing());
        Some(StreamFault { after_tokens: self.after_tokens, action })
    }
}
