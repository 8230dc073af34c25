//! `slow_head`: the response head, and so everything after it, is held
//! `duration` longer. The handler adds it to the head's wait
//! (`handler::exchange`); it does nothing to the stream itself.

use std::time::Duration;

use super::{DURATION_FORM, FaultError, Given, Kind, Param};

/// The response head is held for `duration` more.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowHead {
    /// The extra wait.
    pub duration: Duration,
}

impl Kind for SlowHead {
    const NAME: &'static str = "slow_head";
    const KEYS: &'static [&'static str] = &["duration"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        Ok(Self {
            duration: Given::required("duration", given.duration("duration")?, DURATION_FORM)?,
        })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("duration", Param::Time(self.duration))]
    }
}
