//! Extended thinking in the Messages API (`docs/protocols.md` §5):
//! the request's `thinking` read into a [`Reasoning`], the constraints the
//! API puts on it, the signature of a thinking block, and the check of the
//! thinking blocks a client sends back in its history.
//!
//! A signature is the SHA-256 of the block's text, keyed by a fixed label,
//! in base64: any sluice (a fleet's every replica, a restarted one) accepts
//! the blocks any other made, and a block whose text was changed, or made by
//! another server, is refused as the API refuses it.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::mock::request::{
    Effort, HeadFacts, InvalidRequest, Reasoning, Shown, ToolChoice, invalid, type_name,
};

/// The beta that lets a turn think again after tool results.
pub(crate) const INTERLEAVED_BETA: &str = "interleaved-thinking-2025-05-14";

/// The smallest `budget_tokens` the API takes.
const MIN_BUDGET: u64 = 1024;

/// Where the API's errors about thinking send the reader.
const DOCS: &str = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking";

/// The signature of a thinking block with this text.
pub(crate) fn signature(thinking: &str) -> String {
    let mut signer = Signer::default();
    signer.update(thinking);
    signer.finish()
}

/// A [`signature`] made as the block's text streams, a delta at a time.
#[derive(Debug, Clone)]
pub(crate) struct Signer(Sha256);

impl Default for Signer {
    fn default() -> Self {
        let mut hash = Sha256::new();
        hash.update(b"sluice thinking signature v1\n");
        Self(hash)
    }
}

impl Signer {
    /// The next piece of the text.
    pub(crate) fn update(&mut self, piece: &str) {
        self.0.update(piece.as_bytes());
    }

    /// The signature of the text so far.
    pub(crate) fn finish(self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.finalize())
    }
}

/// The `data` of a redacted thinking block: opaque, as the API's is, and
/// the same for the same reply.
pub(crate) fn redacted_data(reply_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sluice redacted thinking v1\n");
    hash.update(reply_id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hash.finalize())
}

/// The request's `thinking` (and `output_config.effort`), checked as the API
/// checks it. `tool_rounds` says whether this request goes on after tool
/// results (a turn then thinks again only when interleaved).
///
/// # Errors
/// [`InvalidRequest`] with the API's message.
pub(crate) fn parse(
    object: &Map<String, Value>,
    head: &HeadFacts,
    max_tokens: Option<u64>,
    tool_choice: &ToolChoice,
    tool_rounds: u32,
) -> Result<Option<Reasoning>, InvalidRequest> {
    let effort = match object.get("output_config").and_then(|config| config.get("effort")) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            Effort::parse(text)
                .filter(|e| matches!(e, Effort::Low | Effort::Medium | Effort::High | Effort::Max))
                .ok_or_else(|| {
                    invalid(
                        "output_config.effort",
                        "Input should be 'low', 'medium', 'high' or 'max'",
                    )
                })?,
        ),
        Some(other) => {
            return Err(invalid(
                "output_config.effort",
                format_args!("expected a string, got {}", type_name(other)),
            ));
        }
    };
    let thinking = match object.get("thinking") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(thinking)) => thinking,
        Some(other) => {
            return Err(invalid(
                "thinking",
                format_args!("expected an object, got {}", type_name(other)),
            ));
        }
    };
    let interleaved = head.beta(INTERLEAVED_BETA);
    let budget_tokens = match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => return Ok(None),
        Some("adaptive") => None,
        Some("enabled") => {
            let budget = match thinking.get("budget_tokens") {
                None | Some(Value::Null) => {
                    return Err(invalid("thinking.enabled.budget_tokens", "Field required"));
                }
                Some(value) => value.as_u64().ok_or_else(|| {
                    invalid("thinking.enabled.budget_tokens", "Input should be a valid integer")
                })?,
            };
            if budget < MIN_BUDGET {
                return Err(invalid(
                    "thinking.enabled.budget_tokens",
                    format_args!("Input should be greater than or equal to {MIN_BUDGET}"),
                ));
            }
            // With interleaved thinking the budget spans the whole turn and may pass max_tokens.
            if !interleaved && max_tokens.is_some_and(|max| budget >= max) {
                return Err(InvalidRequest(format!(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult \
                     our documentation at {DOCS}#max-tokens-and-context-window-size"
                )));
            }
            Some(budget)
        }
        other => {
            let found = other.map_or_else(|| "none".to_string(), |tag| format!("'{tag}'"));
            return Err(invalid(
                "thinking.type",
                format_args!(
                    "Input tag {found} found using 'type' does not match any of the expected \
                     tags: 'enabled', 'disabled', 'adaptive'"
                ),
            ));
        }
    };
    if matches!(tool_choice, ToolChoice::Any | ToolChoice::Tool(_)) {
        return Err(InvalidRequest(
            "Thinking may not be enabled when tool_choice forces tool use.".to_string(),
        ));
    }
    // Adaptive thinking interleaves by itself.
    let interleaved = interleaved || budget_tokens.is_none();
    Ok(Some(Reasoning {
        budget_tokens,
        effort: effort.unwrap_or(Effort::High),
        shown: Shown::Streamed,
        this_turn: tool_rounds == 0 || interleaved,
        encrypted: false,
    }))
}

/// Checks the thinking blocks of the assistant messages in `messages`, as
/// the API does when thinking is on: each `thinking` block carries the
/// signature of its text, and a turn that goes on after tool results starts
/// with a thinking block (the client sent back the one the turn began with).
///
/// # Errors
/// [`InvalidRequest`] naming the block, with the API's message.
pub(crate) fn check_history(messages: &[Value], tool_rounds: u32) -> Result<(), InvalidRequest> {
    for (i, message) in messages.iter().enumerate() {
        if message.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        let Some(blocks) = message.get("content").and_then(Value::as_array) else { continue };
        for (j, block) in blocks.iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("thinking") {
                continue;
            }
            let text = block.get("thinking").and_then(Value::as_str);
            match (text, block.get("signature")) {
                (None, _) => {
                    return Err(invalid(
                        &format!("messages.{i}.content.{j}.thinking"),
                        "Field required",
                    ));
                }
                (_, None | Some(Value::Null)) => {
                    return Err(invalid(
                        &format!("messages.{i}.content.{j}.signature"),
                        "Field required",
                    ));
                }
                (Some(text), Some(Value::String(given))) if *given == signature(text) => {}
                _ => {
                    return Err(invalid(
                        &format!("messages.{i}.content.{j}"),
                        "Invalid `signature` in `thinking` block",
                    ));
                }
            }
        }
    }
    if tool_rounds > 0
        && let Some((i, first)) = turn_start(messages)
    {
        let kind = first.get("type").and_then(Value::as_str).unwrap_or("text");
        if kind != "thinking" && kind != "redacted_thinking" {
            return Err(invalid(
                &format!("messages.{i}.content.0.type"),
                format_args!(
                    "Expected `thinking` or `redacted_thinking`, but found `{kind}`. When \
                     `thinking` is enabled, a final `assistant` message must start with a \
                     thinking block (preceeding the lastmost set of `tool_use` and `tool_result` \
                     blocks). We recommend you include thinking blocks from previous turns. To \
                     avoid this requirement, disable `thinking`. Please consult our \
                     documentation at {DOCS}"
                ),
            ));
        }
    }
    Ok(())
}

/// The first assistant message of the turn the conversation ends in (after
/// the last user message that is not only tool results), and its first block.
fn turn_start(messages: &[Value]) -> Option<(usize, &Value)> {
    let only_results = |message: &Value| {
        message.get("content").and_then(Value::as_array).is_some_and(|blocks| {
            !blocks.is_empty()
                && blocks
                    .iter()
                    .all(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
    };
    let asked = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user") && !only_results(m));
    let from = asked.map_or(0, |at| at + 1);
    let (offset, message) = messages
        .get(from..)?
        .iter()
        .enumerate()
        .find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("assistant"))?;
    let first = match message.get("content") {
        Some(Value::Array(blocks)) => blocks.first()?,
        // A string is one text block.
        _ => &Value::Null,
    };
    Some((from + offset, first))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_signature_is_stable_and_changes_with_the_text() {
        assert_eq!(signature("Let me think."), signature("Let me think."));
        assert_ne!(signature("Let me think."), signature("Let me think!"));
        let decoded = base64::engine::general_purpose::STANDARD.decode(signature("x")).unwrap();
        assert_eq!(decoded.len(), 32);
    }

    fn thinking_block(text: &str) -> Value {
        json!({"type": "thinking", "thinking": text, "signature": signature(text)})
    }

    #[test]
    fn signed_blocks_pass_and_a_changed_or_missing_signature_is_named() {
        let tool_use = json!({"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}});
        let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]});
        let history = |block: Value| {
            vec![
                json!({"role": "user", "content": "weather?"}),
                json!({"role": "assistant", "content": [block, tool_use]}),
                result.clone(),
            ]
        };
        assert_eq!(check_history(&history(thinking_block("Hmm.")), 1), Ok(()));
        let changed =
            json!({"type": "thinking", "thinking": "Hmm!", "signature": signature("Hmm.")});
        assert_eq!(
            check_history(&history(changed), 1),
            Err(InvalidRequest(
                "messages.1.content.0: Invalid `signature` in `thinking` block".into()
            ))
        );
        let unsigned = json!({"type": "thinking", "thinking": "Hmm."});
        assert_eq!(
            check_history(&history(unsigned), 1),
            Err(InvalidRequest("messages.1.content.0.signature: Field required".into()))
        );
        let redacted = json!({"type": "redacted_thinking", "data": "abc"});
        assert_eq!(check_history(&history(redacted), 1), Ok(()));
        let dropped = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": [tool_use]}),
            result,
        ];
        let error = check_history(&dropped, 1).unwrap_err().0;
        assert!(
            error.starts_with(
                "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`."
            ),
            "{error}"
        );
        // A new question: the turn before it needs no thinking block.
        let mut asked_again = dropped.clone();
        asked_again.push(json!({"role": "assistant", "content": "It is 18C."}));
        asked_again.push(json!({"role": "user", "content": "and tomorrow?"}));
        assert_eq!(check_history(&asked_again, 0), Ok(()));
    }

    fn parsed(
        thinking: Value,
        max_tokens: u64,
        betas: &[&str],
    ) -> Result<Option<Reasoning>, String> {
        let mut object = Map::new();
        object.insert("thinking".into(), thinking);
        let head = HeadFacts {
            version: None,
            betas: betas.iter().map(|b| (*b).to_string()).collect(),
            ..HeadFacts::default()
        };
        parse(&object, &head, Some(max_tokens), &ToolChoice::Auto, 0).map_err(|e| e.0)
    }

    #[test]
    fn the_constraints_are_answered_as_the_api_answers_them() {
        let enabled = |budget: u64| json!({"type": "enabled", "budget_tokens": budget});
        assert_eq!(
            parsed(enabled(1000), 4096, &[]),
            Err("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                .into())
        );
        let error = parsed(enabled(4096), 4096, &[]).unwrap_err();
        assert!(
            error.starts_with("`max_tokens` must be greater than `thinking.budget_tokens`."),
            "{error}"
        );
        assert!(
            parsed(enabled(8192), 4096, &[INTERLEAVED_BETA]).is_ok(),
            "interleaved may pass max_tokens"
        );
        assert_eq!(
            parsed(json!({"type": "enabled"}), 4096, &[]),
            Err("thinking.enabled.budget_tokens: Field required".into())
        );
        assert_eq!(parsed(json!({"type": "disabled"}), 4096, &[]), Ok(None));
        let error = parsed(json!({"type": "sometimes"}), 4096, &[]).unwrap_err();
        assert!(error.starts_with("thinking.type: Input tag 'sometimes' found"), "{error}");
        let reasoning = parsed(enabled(2048), 4096, &[]).unwrap().unwrap();
        assert_eq!(reasoning.budget_tokens, Some(2048));
        assert_eq!(reasoning.effort, Effort::High);
        let mut object = Map::new();
        object.insert("thinking".into(), json!({"type": "adaptive"}));
        let forced = ToolChoice::Tool("w".into());
        assert_eq!(
            parse(&object, &HeadFacts::default(), Some(100), &forced, 0).map_err(|e| e.0),
            Err("Thinking may not be enabled when tool_choice forces tool use.".into())
        );
        object.insert("output_config".into(), json!({"effort": "low"}));
        let adaptive = parse(&object, &HeadFacts::default(), Some(100), &ToolChoice::Auto, 2);
        let adaptive = adaptive.unwrap().unwrap();
        assert_eq!((adaptive.effort, adaptive.budget_tokens), (Effort::Low, None));
        assert!(adaptive.this_turn, "adaptive thinking interleaves: it thinks after tool results");
        let manual = parsed(enabled(2048), 4096, &[]).unwrap().unwrap();
        assert!(manual.this_turn);
        let mut object = Map::new();
        object.insert("thinking".into(), enabled(2048));
        let after_tools = parse(&object, &HeadFacts::default(), Some(4096), &ToolChoice::Auto, 1);
        assert!(!after_tools.unwrap().unwrap().this_turn, "no new thinking after tool results");
    }
}
