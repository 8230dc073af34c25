//! Output tokens as a proxied stream reports them, for settling its
//! `[rate_limits]` charge at the end (`docs/rate-limits.md`): the usage the
//! provider puts in its last events. Anthropic's `message_delta` (and
//! `message_start`) carry `usage.output_tokens`; a Chat Completions chunk
//! `usage.completion_tokens` (with `stream_options.include_usage`); the
//! Responses API's `response.completed` `response.usage.output_tokens`;
//! Gemini's chunks `usageMetadata.candidatesTokenCount` plus
//! `thoughtsTokenCount`, in an SSE event or an element of a JSON array;
//! Bedrock Converse's `metadata` frame `usage.outputTokens`. (A Bedrock
//! Invoke stream's usage is inside base64 and is not read: it stays charged
//! at its cap.)

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use pin_project_lite::pin_project;
use serde_json::Value;

use super::Settlement;
use crate::framing::Event;
use crate::framing::Record;
use crate::response::BoxError;

/// The output tokens an event reports, if it reports any. Events without
/// `_tokens"` (or Gemini's `candidatesTokenCount"`) in their bytes (every
/// token delta, in practice) are not parsed.
pub(crate) fn output_tokens(raw: &[u8]) -> Option<u64> {
    if memchr::memmem::find(raw, b"candidatesTokenCount\"").is_some() {
        return gemini_output_tokens(raw);
    }
    if memchr::memmem::find(raw, b"\"outputTokens\"").is_some() {
        let (_, payload) = crate::framing::event_stream::string_headers(raw)?;
        let metadata: Value = serde_json::from_slice(&payload).ok()?;
        return metadata.get("usage")?.get("outputTokens")?.as_u64();
    }
    memchr::memmem::find(raw, b"_tokens\"")?;
    let data = Event::parse(raw).data?;
    let event: Value = serde_json::from_slice(&data).ok()?;
    let usage = ["usage", "message", "response"].iter().find_map(|field| {
        let value = event.get(*field)?;
        if *field == "usage" { Some(value) } else { value.get("usage") }
    })?;
    usage.get("output_tokens").or_else(|| usage.get("completion_tokens"))?.as_u64()
}

/// A Gemini chunk's output: `candidatesTokenCount` and `thoughtsTokenCount`
/// (thoughts are billed as output), from an SSE event or an array element.
/// A chunk before the last reports the prompt alone: no output.
fn gemini_output_tokens(raw: &[u8]) -> Option<u64> {
    let event = Event::parse(raw);
    let json = match &event.data {
        Some(data) => serde_json::from_slice::<Value>(data).ok()?,
        None => serde_json::from_slice::<Value>(crate::framing::json_array::element(raw)).ok()?,
    };
    let usage = json.get("usageMetadata")?;
    let count = |field: &str| usage.get(field).and_then(Value::as_u64);
    let candidates = count("candidatesTokenCount")?;
    Some(candidates.saturating_add(count("thoughtsTokenCount").unwrap_or(0)))
}

pin_project! {
    /// A stream of records that settles its request's output tokens to the
    /// last usage it saw, when it is dropped (the stream ended or the
    /// client left). A stream that reports no usage stays charged at
    /// `max_tokens`.
    pub(crate) struct SettleOnUsage<S> {
        #[pin]
        records: S,
        settlement: Settlement,
    }
}

impl<S> SettleOnUsage<S> {
    /// Watches `records` for usage, for `settlement`.
    pub(crate) fn new(records: S, settlement: Settlement) -> Self {
        Self { records, settlement }
    }
}

impl<S> Stream for SettleOnUsage<S>
where
    S: Stream<Item = Result<Record, BoxError>>,
{
    type Item = Result<Record, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let next = this.records.poll_next(cx);
        if let Poll::Ready(Some(Ok(record))) = &next
            && let Some(tokens) = output_tokens(&record.raw)
        {
            this.settlement.produced(tokens);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_each_providers_last_events() {
        let metadata = crate::framing::event_stream::event(
            "metadata",
            br#"{"usage":{"inputTokens":3,"outputTokens":21,"totalTokens":24},"metrics":{"latencyMs":5}}"#,
        );
        assert_eq!(output_tokens(&metadata), Some(21), "a Bedrock metadata frame");
        let cases: [(&[u8], Option<u64>); 11] = [
            (
                b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":12,\"thoughtsTokenCount\":5}}\r\n\r\n",
                Some(17),
            ),
            (b",\r\n{\"candidates\":[],\"usageMetadata\":{\"candidatesTokenCount\":7}}]", Some(7)),
            (b"[{\"candidates\":[],\"usageMetadata\":{\"candidatesTokenCount\":2}}", Some(2)),
            // A chunk before the last: the prompt alone, not parsed.
            (b"data: {\"usageMetadata\":{\"promptTokenCount\":3,\"totalTokenCount\":3}}\r\n\r\n", None),
            (
                b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n",
                Some(42),
            ),
            (
                b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
                Some(1),
            ),
            (
                b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":17,\"total_tokens\":26}}\n\n",
                Some(17),
            ),
            (
                b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":8}}}\n\n",
                Some(8),
            ),
            (b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n", None),
            (b"event: content_block_delta\ndata: {\"delta\":{\"text\":\"output_tokens\\\"\"}}\n\n", None),
            (b"data: [DONE]\n\n", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(output_tokens(raw), expected, "{}", String::from_utf8_lossy(raw));
        }
    }
}
