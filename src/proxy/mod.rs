//! The upstream side of proxy mode: the client that connects to the
//! upstream ([`UpstreamClient`]: pooled, TLS by rustls, HTTP/1.1 or HTTP/2 by
//! ALPN, timeouts, errors that name the upstream and the cause), and an
//! upstream SSE body as a source of records ([`Records`]). What forwards a
//! request and shapes its answer is `handler::proxy`, beside the mock's.

mod records;
mod upstream;

pub(crate) use records::Records;
pub use upstream::ClientError;
pub(crate) use upstream::{UpstreamClient, UpstreamError, cause_chain, strip_hop_by_hop};
