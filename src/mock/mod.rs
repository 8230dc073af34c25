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
pub(crate) mod bedrock;
pub(crate) mod gemini;
pub(crate) mod json_text;
pub(crate) mod openai;
pub(crate) mod reply;
pub(crate) mod request;
pub mod schema;
pub(crate) mod text;

pub(crate) use reply::Reply;
pub(crate) use request::{HeadFacts, InvalidRequest, TurnRequest};

use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::dialect::Dialect;
use crate::framing::Record;

/// A reply's SSE records, in order, made as they are pulled.
pub(crate) type Events = Box<dyn Iterator<Item = Record> + Send>;

/// How a generating endpoint reads its requests and writes its replies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec {
    /// Parses and validates a request body (and what its head says of the
    /// API version and betas) into a turn.
    pub(crate) parse: fn(&[u8], &HeadFacts) -> Result<TurnRequest, InvalidRequest>,
    /// A reply as its SSE stream; the request is there for what the API
    /// echoes or lets a client ask of the encoding (OpenAI's
    /// `stream_options.include_usage`, for one).
    pub(crate) events: fn(Reply, &TurnRequest) -> Events,
    /// A reply as its non-streaming JSON body.
    pub(crate) message: fn(&Reply, &TurnRequest) -> String,
    /// For an API whose last events name the stream they end (Responses'
    /// `sequence_number` and response, Chat's id and model): what a stream
    /// fault after N tokens knows of the stream it replaces the rest of.
    pub(crate) failure_at: Option<fn(&Reply, &TurnRequest, u32) -> crate::dialect::StreamSoFar>,
}

/// A JSON body made from a request body (and the request's random stream).
pub(crate) type WholeAnswer = fn(&[u8], &mut ChaCha8Rng) -> Result<String, InvalidRequest>;

/// Why an instant endpoint refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InstantError {
    /// 400, naming the field.
    Invalid(InvalidRequest),
    /// 404, naming what is missing.
    NotFound(String),
}

impl From<InvalidRequest> for InstantError {
    fn from(invalid: InvalidRequest) -> Self {
        Self::Invalid(invalid)
    }
}

/// What an instant endpoint is given.
#[derive(Debug)]
pub(crate) struct InstantRequest<'a> {
    /// The request path (for `/v1/models/{id}`).
    pub(crate) path: &'a str,
    /// The whole body (empty for a `GET`).
    pub(crate) body: &'a [u8],
    /// The config in force.
    pub(crate) config: &'a Config,
}

/// An endpoint answered at once, outside the pipeline.
pub(crate) type InstantAnswer = fn(&InstantRequest<'_>) -> Result<String, InstantError>;

/// How an endpoint is answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Serve {
    /// Through the whole pipeline: a turn planned into a reply, streamed
    /// (timing and stream faults) or sent whole when the stream would have ended.
    Generate(Codec),
    /// A whole JSON body through the exchange (routes, HTTP faults, a slow
    /// head), released after the profile's first-token delay (embeddings).
    Whole(WholeAnswer),
    /// Answered at once, outside the pipeline (`count_tokens`, the model list).
    Instant(InstantAnswer),
}

/// One endpoint of a mocked API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MockEndpoint {
    /// `"GET"` or `"POST"`.
    pub(crate) method: &'static str,
    /// The path, or with `under` the path its ids are under (`/v1/models`).
    pub(crate) path: &'static str,
    /// Whether it serves `path/{id}` rather than `path`.
    pub(crate) under: bool,
    /// A model's method in the path (Gemini's `:generateContent`, Bedrock's
    /// `/converse-stream`), `path` being how the banner names it.
    pub(crate) verb: Option<ModelMethod>,
    /// How it is answered.
    pub(crate) serve: Serve,
}

impl MockEndpoint {
    /// `POST path`.
    pub(crate) const fn post(path: &'static str, serve: Serve) -> Self {
        Self { method: "POST", path, under: false, verb: None, serve }
    }

    /// `GET path`.
    pub(crate) const fn get(path: &'static str, serve: Serve) -> Self {
        Self { method: "GET", path, under: false, verb: None, serve }
    }

    /// `GET path/{id}`.
    pub(crate) const fn get_under(path: &'static str, serve: Serve) -> Self {
        Self { method: "GET", path, under: true, verb: None, serve }
    }

    /// `POST {base}/models/{model}:{verb}`, named `path` in the banner.
    pub(crate) const fn post_model(path: &'static str, verb: &'static str, serve: Serve) -> Self {
        Self { method: "POST", path, under: false, verb: Some(ModelMethod::Gemini(verb)), serve }
    }

    /// `POST /model/{modelId}/{operation}` (Bedrock), named `path` in the banner.
    pub(crate) const fn post_bedrock(
        path: &'static str,
        operation: &'static str,
        serve: Serve,
    ) -> Self {
        Self {
            method: "POST",
            path,
            under: false,
            verb: Some(ModelMethod::Bedrock(operation)),
            serve,
        }
    }

    /// Whether it serves `path` (whatever the method).
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self.verb {
            Some(ModelMethod::Gemini(verb)) => {
                return gemini::model_of(path).is_some_and(|(_, method)| method == verb);
            }
            Some(ModelMethod::Bedrock(operation)) => {
                return crate::dialect::bedrock::model_of(path)
                    .is_some_and(|(_, op)| op == operation);
            }
            None => {}
        }
        if !self.under {
            return path == self.path;
        }
        path.strip_prefix(self.path)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    }

    /// How the banner and a 404 name it.
    pub(crate) fn label(&self) -> String {
        let suffix = if self.under { "/{id}" } else { "" };
        format!("{} {}{suffix}", self.method, self.path)
    }
}

/// A model's method named in a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ModelMethod {
    /// `{base}/models/{model}:{verb}` for each of Google's bases
    /// ([`gemini::model_of`]).
    Gemini(&'static str),
    /// `/model/{modelId}/{operation}` ([`crate::dialect::bedrock::model_of`]).
    Bedrock(&'static str),
}

/// One mocked API: what the banner calls it, its dialect, its endpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MockApi {
    /// What the banner calls it.
    pub(crate) name: &'static str,
    /// Its wire facts (errors, event classes).
    pub(crate) dialect: Dialect,
    /// Its endpoints; the first generating one is the API's main endpoint.
    pub(crate) endpoints: &'static [MockEndpoint],
}

/// Every mocked API. Adding one is a module and a line here.
pub(crate) const APIS: &[MockApi] =
    &[anthropic::API, openai::CHAT, openai::RESPONSES, gemini::API, bedrock::API];

/// The banner's lines for the mock: what it mocks, where, and its endpoints.
pub(crate) fn banner_lines(host: &str) -> [String; 2] {
    let names: Vec<&str> = APIS.iter().map(|api| api.name).collect();
    let all = || APIS.iter().flat_map(|api| api.endpoints.iter());
    let generate: Vec<String> =
        all().filter(|e| matches!(e.serve, Serve::Generate(_))).map(MockEndpoint::label).collect();
    let mut also: Vec<String> =
        all().filter(|e| !matches!(e.serve, Serve::Generate(_))).map(MockEndpoint::label).collect();
    also.push("GET /health".to_string());
    dedupe(&mut also);
    let label = if generate.len() == 1 { "Endpoint" } else { "Endpoints" };
    let mocks = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    };
    [
        format!("[sluice] {mocks} mock running on {host}"),
        format!("[sluice] {label}: {} (also {})", generate.join(", "), also.join(", ")),
    ]
}

/// The mock's endpoints, as a 404 names them.
pub(crate) fn endpoints() -> Vec<String> {
    let mut labels: Vec<String> =
        APIS.iter().flat_map(|api| api.endpoints.iter()).map(MockEndpoint::label).collect();
    dedupe(&mut labels);
    labels
}

/// Leaves the first of each label (`GET /v1/models` is two APIs' endpoint).
fn dedupe(labels: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    labels.retain(|label| seen.insert(label.clone()));
}
