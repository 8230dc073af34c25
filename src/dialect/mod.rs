//! Provider dialects: the wire facts of each API that sluice must get exactly
//! right, kept apart from timing and serving.
//!
//! Today there is one, [`anthropic`] (Messages API). The OpenAI dialect joins
//! it with the proxy work; both answer the same questions (which error type
//! goes with a status, what an error body looks like), so the server and the
//! shaper never spell a provider's JSON themselves.

pub mod anthropic;
