//! `stall`: N tokens, then nothing; the connection stays open for `duration`
//! (then closes cleanly), or until the client leaves.

use std::time::Duration;

use super::{FaultError, Given, Kind, OnStream, Param};
use crate::shape::{StreamAction, StreamFault};

/// After `after_tokens` tokens, nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// Tokens released first.
    pub after_tokens: u32,
    /// How long to stay open; `None` is until the client leaves.
    pub duration: Option<Duration>,
}

impl Kind for Stall {
    const NAME: &'static str = "stall";
    const KEYS: &'static [&'static str] = &["after_tokens", "duration"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self { after_tokens: given.after_tokens()?, duration: given.duration("duration")? })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut params = vec![("after_tokens", Param::Count(u64::from(self.after_tokens)))];
        if let Some(duration) = self.duration {
            params.push(("duration", Param::Time(duration)));
        }
        params
    }

    fn on_stream(&self, _stream: &OnStream<'_>) -> Option<StreamFault> {
        Some(StreamFault {
            after_tokens: self.after_tokens,
            action: StreamAction::Stall(self.duration),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::dialect::{Dialect, StreamSoFar};
    use crate::fault::tests::read;
    use crate::fault::{Fault, OnStream, Stall};
    use crate::shape::{StreamAction, StreamFault};

    #[test]
    fn a_stall_reads_its_keys_names_itself_and_stalls_the_stream() {
        let fault = read("stall", "after_tokens = 5\nduration = \"30s\"").unwrap();
        let stall = Stall { after_tokens: 5, duration: Some(Duration::from_secs(30)) };
        assert_eq!(fault, Fault::Stall(stall));
        assert_eq!(fault.label(), "stall; after_tokens=5; duration=30s");
        let so_far = StreamSoFar::default();
        let stream = OnStream { dialect: Dialect::Anthropic, request_id: "req_1", so_far: &so_far };
        let action = StreamAction::Stall(Some(Duration::from_secs(30)));
        assert_eq!(fault.on_stream(&stream), Some(StreamFault { after_tokens: 5, action }));
        assert_eq!(read("stall", "duration = \"8d\"").unwrap_err().key, "duration");
    }
}
