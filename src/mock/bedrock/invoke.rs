//! Bedrock's `InvokeModel` and `InvokeModelWithResponseStream` for
//! Anthropic models (`docs/protocols.md` §8): the body is a Messages request
//! with an `anthropic_version` (`"bedrock-2023-05-31"`) and no `model` or
//! `stream` (the path says both); the answer is the Messages API's own, whole, or each of its
//! stream events in a `chunk` frame whose `bytes` are the event's JSON in
//! base64. The last event (`message_stop`) carries Bedrock's
//! `amazon-bedrock-invocationMetrics`.

use serde_json::Value;

use crate::dialect::bedrock::model_of;
use crate::framing::{Event, Record};
use crate::mock::anthropic;
use crate::mock::reply::Reply;
use crate::mock::request::{HeadFacts, InvalidRequest, TurnRequest, body_object, invalid};

/// Parses an Invoke body as the Messages request it is: the model and
/// whether it streams come from the path.
///
/// # Errors
/// [`InvalidRequest`] naming the first bad field.
pub(crate) fn parse(body: &[u8], head: &HeadFacts) -> Result<TurnRequest, InvalidRequest> {
    let mut object = body_object(body)?;
    let (model, operation) = model_of(&head.path)
        .map_or_else(|| ("bedrock-mock".to_string(), "invoke"), |(m, o)| (m.into_owned(), o));
    // `bedrock-2023-05-31` in the documentation; the Python SDK's
    // `AnthropicBedrock` sends its own API version (`2026-10-21` in 2.14.0).
    match object.remove("anthropic_version") {
        Some(Value::String(version)) if !version.is_empty() => {}
        Some(other) => {
            return Err(invalid(
                "anthropic_version",
                format_args!("expected a version such as \"bedrock-2023-05-31\", got {other}"),
            ));
        }
        None => return Err(invalid("anthropic_version", "field required")),
    }
    object.insert("model".to_string(), Value::String(model));
    object.insert("stream".to_string(), Value::Bool(operation == "invoke-with-response-stream"));
    let messages = serde_json::to_vec(&object).map_err(|e| invalid("body", e))?;
    anthropic::parse(&messages, head, anthropic::Endpoint::Messages)
}

/// The Messages stream's events, each in a `chunk` frame.
pub(crate) fn events(reply: Reply) -> impl Iterator<Item = Record> + Send {
    let input = reply.input_tokens;
    let output = reply.output_tokens() as u64;
    anthropic::events(reply).map(move |record| {
        let data = Event::parse(&record.raw).data.map(|d| d.into_owned()).unwrap_or_default();
        Record { raw: crate::dialect::bedrock::chunk(&data, input, output), kind: record.kind }
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde_json::json;

    use super::*;
    use crate::config::{Thinking, ToolUse};
    use crate::framing::EventKind;
    use crate::shape::request_rng;

    #[test]
    fn a_chunk_carries_a_messages_event_and_the_last_the_metrics() {
        let head = HeadFacts {
            path: "/model/anthropic.claude-x-v1:0/invoke-with-response-stream".to_string(),
            ..HeadFacts::default()
        };
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]});
        let request = parse(body.to_string().as_bytes(), &head).unwrap();
        assert!(request.stream);
        assert_eq!(request.model, "anthropic.claude-x-v1:0");
        let reply = Reply::generate(
            &request,
            3,
            &ToolUse::DEFAULT,
            &Thinking::DEFAULT,
            &mut request_rng(1, 0),
        )
        .unwrap();
        let records: Vec<Record> = events(reply).collect();
        let contents: Vec<&Record> =
            records.iter().filter(|r| r.kind == EventKind::Content).collect();
        assert_eq!(contents.len(), 3);
        for record in contents {
            // The proxy's classifier reads the same class from the frame.
            let kind = crate::framing::event_stream::frame_kind(
                &record.raw,
                crate::dialect::bedrock::classify,
            );
            assert_eq!(kind, EventKind::Content);
        }
        let last =
            aws_smithy_eventstream::frame::read_message_from(&records.last().unwrap().raw[..])
                .unwrap();
        let chunk: Value = serde_json::from_slice(last.payload()).unwrap();
        let inner: Value =
            serde_json::from_slice(&BASE64.decode(chunk["bytes"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(inner["type"], "message_stop");
        assert_eq!(inner["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 3);
        let missing = json!({"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
        assert!(
            parse(missing.to_string().as_bytes(), &head)
                .unwrap_err()
                .0
                .contains("anthropic_version")
        );
    }
}
