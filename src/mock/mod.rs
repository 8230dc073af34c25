//! The built-in mock of the Anthropic Messages API: request in, records out,
//! instantly. It never sleeps; the shaper applies every delay.
//!
//! [`request`] validates the JSON body the way the real API does (400 naming
//! the field); [`reply`] decides the answer (text or a tool call) and turns it
//! into SSE records or a non-streaming message; [`schema`] makes a tool's
//! `input` from its JSON Schema; [`text`] makes deterministic filler text.

pub mod reply;
pub mod request;
pub mod schema;
pub mod text;

pub use reply::Reply;
pub use request::{InvalidRequest, MessagesRequest, ToolChoice};
