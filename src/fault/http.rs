//! `http`: an HTTP error answered instead of the response, before any head
//! is sent (in proxy mode the upstream is never called). The handler answers
//! it in the request's dialect (`crate::dialect`); it does nothing to a stream.

use std::time::Duration;

use super::{FaultError, Given, Kind, Param};

/// What `status` may be.
pub(crate) const STATUS_FORM: &str =
    "an HTTP error status from 400 to 599, such as 429, 500 or 529";
/// What `error_type` may be.
const ERROR_TYPE_FORM: &str = "an error type of lowercase letters and _, such as \
    \"insufficient_quota\" or \"overloaded_error\"";

/// An HTTP error answered instead of the response (before any head is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFault {
    /// Status code, e.g. 529.
    pub status: u16,
    /// Sent as `retry-after` (whole seconds, rounded up) and `retry-after-ms`.
    pub retry_after: Option<Duration>,
    /// `error.message`; the provider's usual text for the status when `None`.
    pub message: Option<String>,
    /// Sent as `x-should-retry`, which the SDKs obey over the status.
    pub should_retry: Option<bool>,
    /// Send the provider's rate-limit headers, exhausted.
    pub rate_limit_headers: bool,
    /// The error's `type` (and OpenAI's `code`), such as `insufficient_quota`;
    /// the provider's usual type for the status when `None`.
    pub error_type: Option<String>,
}

impl HttpFault {
    /// `status` in the provider's usual words, with no other header.
    pub fn plain(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            message: None,
            should_retry: None,
            rate_limit_headers: false,
            error_type: None,
        }
    }
}

impl Kind for HttpFault {
    const NAME: &'static str = "http";
    const KEYS: &'static [&'static str] =
        &["status", "retry_after", "message", "should_retry", "rate_limit_headers", "error_type"];

    fn read(given: &Given<'_>) -> Result<Self, FaultError> {
        let status = given.count("status", 400..=599, STATUS_FORM)?;
        let error_type = given.text("error_type")?;
        if let Some(error_type) = &error_type {
            let fine = !error_type.is_empty()
                && error_type.len() <= 64
                && error_type.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !fine {
                return Err(given.refuse("error_type", ERROR_TYPE_FORM));
            }
        }
        Ok(Self {
            status: Given::required(
                "status",
                status.and_then(|s| u16::try_from(s).ok()),
                STATUS_FORM,
            )?,
            retry_after: given.duration("retry_after")?,
            message: given.text("message")?,
            should_retry: given.flag("should_retry")?,
            rate_limit_headers: given.flag("rate_limit_headers")?.unwrap_or(false),
            error_type,
        })
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut params = vec![("status", Param::Count(u64::from(self.status)))];
        if let Some(error_type) = &self.error_type {
            params.push(("error_type", Param::Text(error_type.clone())));
        }
        if let Some(after) = self.retry_after {
            params.push(("retry_after", Param::Time(after)));
        }
        if let Some(should_retry) = self.should_retry {
            params.push(("should_retry", Param::Flag(should_retry)));
        }
        if self.rate_limit_headers {
            params.push(("rate_limit_headers", Param::Flag(true)));
        }
        if let Some(message) = &self.message {
            params.push(("message", Param::Text(message.clone())));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::tests::read;
    use crate::fault::{Fault, HttpFault};

    #[test]
    fn an_http_fault_needs_a_status_from_400_to_599_and_a_lowercase_type() {
        assert_eq!(read("http", "").unwrap_err().key, "status");
        assert_eq!(read("http", "status = 302").unwrap_err().key, "status");
        assert_eq!(
            read("http", "status = 429\nerror_type = \"Bad\"").unwrap_err().key,
            "error_type"
        );
        let Fault::Http(HttpFault { status, error_type, .. }) =
            read("http", "status = 402\nerror_type = \"insufficient_quota\"").unwrap()
        else {
            panic!("not http");
        };
        assert_eq!((status, error_type.as_deref()), (402, Some("insufficient_quota")));
    }
}
