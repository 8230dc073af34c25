//! sluice: a fault-injecting mock and reverse proxy for LLM streaming APIs.
//! It controls what a client sees: time to first token, token pacing,
//! tool-call delay, and how often and how requests fail; and it can be
//! changed while a load test runs.
//!
//! The public API is what the binary, the tests and the examples use:
//! [`Config`] and its layers ([`config`]), a [`Source`] of configs, and
//! [`serve`] / [`run`] to serve one. Everything else is internal; the design
//! is in `docs/architecture.md`, and the wire facts it relies on in
//! `docs/protocols.md`.
//!
//! # Layout
//!
//! ```text
//!            ┌───────────────────────┐
//! request ──▶│ handler::Exchange      │  snapshot of the live config; route → profile;
//!            └──────────┬────────────┘  seeded fault plan (shape::plan), once, at arrival
//!          ┌────────────┴─────────────┐
//!          ▼                          ▼
//!   mock::<api> reply           proxy: upstream body → framing::Splitter → dialect classify
//!   (instant source)            (live source)          both: a Stream of framing::Record
//!          └────────────┬─────────────┘
//!                       ▼
//!            ┌───────────────────────┐
//!            │ shape::Shaper          │  waits on absolute deadlines (shape::timer::Gate,
//!            └──────────┬────────────┘  sub-ms timerfd); applies the stream fault
//!                       ▼
//!       shape::head, handler::stream_body   head held until the first token (default);
//!                                           events due together go out as one chunk
//! ```
//!
//! Modules, from the entry points to the leaves (the import graph has no
//! cycle, which `tests/module_graph.rs` checks; imports do not all point down
//! this list):
//!
//! - `server`: serving the API, the admin listener, graceful shutdown;
//!   [`serve`] and [`run`].
//! - [`listener`]: the transport both ports share: the `Listener` (the cap
//!   and what happens past it, the open-file limit), a connection's I/O and
//!   bounds (`connection`), TLS as an adapter ([`listener::tls`], `[tls]`,
//!   `docs/tls.md`), and the threads connections are served on
//!   ([`listener::shards`]).
//! - `admin`: admin endpoints (`/metrics`, `/config`, `/reload`, `/faults`).
//! - `app`: the state every connection shares, and the signal that ends
//!   every stream at shutdown; below the handler and the admin port.
//! - `banner`: the start-up banner ([`banner`]).
//! - `handler`: one request: admission, the exchange (the fault protocol of both
//!   modes), typed refusals, the mock's and the proxy's paths, the streamed body.
//! - `mock`: the mock by API (`mock::anthropic`), a dialect-neutral reply plan,
//!   tool inputs from JSON Schema ([`mock::schema`]). Never sleeps.
//! - `proxy`: the upstream client, and an upstream SSE body as records.
//! - [`cassette`]: record and replay (`docs/record-replay.md`): the cassette
//!   format, the proxy's recorder, the mock's library, `sluice profile`.
//! - [`live`]: the config in force (snapshots, versions), reload and file watching.
//! - `route`: routes and profiles, first match wins.
//! - `ratelimit`: `[rate_limits]` buckets, the providers' rate-limit headers,
//!   and the verdict on client discipline (`docs/rate-limits.md`).
//! - `metrics`: Prometheus metrics.
//! - [`fault`]: the fault kinds, one file each, and the draw of a request's
//!   fault at admission.
//! - [`shape`]: each request's random stream, delays, the timing rule, the
//!   shaper, the head's release, and the precise timer. Every wait on the
//!   data path is here.
//! - `dialect`: provider wire facts (Anthropic, OpenAI): event classes, errors.
//! - `framing`: the event record, and how a stream format is split and
//!   written (`framing::sse`: server-sent events, their encoders and the
//!   verbatim splitter).
//! - [`config`]: TOML file, environment and flags → a validated [`Config`].
//! - `response`: the response body type and dialect-shaped error responses.

pub(crate) mod admin;
pub(crate) mod app;
mod banner;
#[doc(hidden)]
pub mod bench_hooks;
pub(crate) mod capacity;
pub mod cassette;
pub mod config;
pub(crate) mod dialect;
pub mod fault;
pub(crate) mod fleet;
pub(crate) mod fleet_sync;
pub(crate) mod framing;
#[doc(hidden)]
pub mod fuzz_checks;
pub(crate) mod handler;
pub mod listener;
pub mod live;
pub(crate) mod metrics;
pub mod mock;
pub(crate) mod proxy;
pub(crate) mod ratelimit;
pub(crate) mod report;
pub(crate) mod response;
pub(crate) mod route;
pub mod server;
pub mod shape;
pub(crate) mod timeline;

pub use banner::banner;
pub use config::Config;
pub use live::{Loaded, Source, StartError};
pub use proxy::ClientError;
pub use server::{run, serve};
