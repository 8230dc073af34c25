//! The built-in mock: request in, records out, instantly. It never sleeps;
//! the shaper applies every delay.
//!
//! It is organised by dialect. `request` is what a turn asks, whatever the
//! API; `reply` plans the answer (text, structured output or tool calls,
//! usage) from it, dialect-neutral; [`schema`] makes a tool's `input` from
//! its JSON Schema; `text` makes deterministic filler text. Each API is one
//! module (`anthropic`) that parses its requests into a `TurnRequest` and
//! encodes a `Reply` as its events or its message, described by a
//! `MockApi`; `APIS` lists them, and the handler routes by that list.

pub(crate) mod anthropic;
pub(crate) mod reply;
pub(crate) mod request;
pub mod schema;
pub(crate) mod text;

pub(crate) use reply::Reply;
pub(crate) use request::{InvalidRequest, TurnRequest};

use crate::dialect::Dialect;
use crate::sse::SseRecord;

/// A reply's SSE records, in order, made as they are pulled.
pub(crate) type Events = Box<dyn Iterator<Item = SseRecord> + Send>;

/// An endpoint answered at once: a request body to a JSON body.
pub(crate) type InstantAnswer = fn(&[u8]) -> Result<String, InvalidRequest>;

/// One mocked API: its endpoints, and how it reads requests and writes replies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MockApi {
    /// What the banner calls it.
    pub(crate) name: &'static str,
    /// Its wire facts (errors, event classes).
    pub(crate) dialect: Dialect,
    /// The `POST` path that generates a reply through the whole pipeline.
    pub(crate) generate: &'static str,
    /// Parses and validates a `generate` body.
    pub(crate) parse: fn(&[u8]) -> Result<TurnRequest, InvalidRequest>,
    /// A reply as its SSE stream; the request is there for what the API
    /// echoes or lets a client ask of the encoding (OpenAI's
    /// `stream_options.include_usage`, for one).
    pub(crate) events: fn(Reply, &TurnRequest) -> Events,
    /// A reply as its non-streaming JSON body.
    pub(crate) message: fn(&Reply, &TurnRequest) -> String,
    /// `POST` paths answered at once with a JSON body (no shaping).
    pub(crate) instant: &'static [(&'static str, InstantAnswer)],
}

/// Every mocked API. Adding one is a module and a line here.
pub(crate) const APIS: &[MockApi] = &[anthropic::API];

/// The banner's lines for the mock: what it mocks, where, and its endpoints.
pub(crate) fn banner_lines(host: &str) -> [String; 2] {
    let names: Vec<&str> = APIS.iter().map(|api| api.name).collect();
    let generate: Vec<String> = APIS.iter().map(|api| format!("POST {}", api.generate)).collect();
    let mut also: Vec<String> = APIS
        .iter()
        .flat_map(|api| api.instant.iter().map(|(path, _)| format!("POST {path}")))
        .collect();
    also.push("GET /health".to_string());
    let label = if generate.len() == 1 { "Endpoint" } else { "Endpoints" };
    [
        format!("[sluice] {} mock running on {host}", names.join(" and ")),
        format!("[sluice] {label}: {} (also {})", generate.join(", "), also.join(", ")),
    ]
}

/// The mock's endpoints, as a 404 names them.
pub(crate) fn endpoints() -> Vec<String> {
    APIS.iter()
        .flat_map(|api| {
            std::iter::once(api.generate).chain(api.instant.iter().map(|(path, _)| *path))
        })
        .map(|path| format!("POST {path}"))
        .collect()
}
