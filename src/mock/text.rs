//! Deterministic filler text: one word per token, sentences of a few words,
//! drawn from a request's random stream so a seed replays the same text.

use rand::{Rng, RngExt};

const WORDS: &[&str] = &[
    "the",
    "stream",
    "of",
    "tokens",
    "arrives",
    "on",
    "time",
    "and",
    "every",
    "request",
    "gets",
    "a",
    "steady",
    "answer",
    "from",
    "sluice",
    "which",
    "paces",
    "each",
    "event",
    "exactly",
    "as",
    "configured",
    "so",
    "that",
    "load",
    "tests",
    "measure",
    "what",
    "users",
    "would",
    "see",
    "under",
    "real",
    "traffic",
    "with",
    "latency",
    "first",
    "token",
    "delay",
    "interval",
    "tool",
    "call",
    "model",
    "response",
    "message",
    "content",
    "block",
    "server",
    "client",
    "mock",
    "proxy",
    "fault",
    "retry",
    "budget",
    "window",
    "signal",
    "metric",
    "threshold",
    "scenario",
    "throughput",
    "percentile",
    "quickly",
    "calmly",
];

/// A base62 identifier of 24 characters, like the provider's `msg_...`,
/// `toolu_...` and `req_...` suffixes.
pub fn random_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..24).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// `count` tokens forming sentences; each token but the first starts with a
/// space, and the text ends with a full stop.
pub fn tokens(count: usize, rng: &mut impl Rng) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let mut sentence_left = 0usize;
    for i in 0..count {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        let starts_sentence = sentence_left == 0;
        if starts_sentence {
            sentence_left = rng.random_range(6..=12);
        }
        sentence_left -= 1;
        let ends_sentence = sentence_left == 0 || i + 1 == count;
        let mut token = String::with_capacity(word.len() + 2);
        if i > 0 {
            token.push(' ');
        }
        if starts_sentence {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                token.extend(first.to_uppercase());
                token.push_str(chars.as_str());
            }
        } else {
            token.push_str(word);
        }
        if ends_sentence {
            token.push('.');
            sentence_left = 0;
        }
        out.push(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::plan::request_rng;

    #[test]
    fn text_is_sentences_of_words_and_replays_for_a_seed() {
        let tokens_a = tokens(30, &mut request_rng(5, 0));
        assert_eq!(tokens_a, tokens(30, &mut request_rng(5, 0)));
        assert_ne!(tokens_a, tokens(30, &mut request_rng(5, 1)));
        assert_eq!(tokens_a.len(), 30);
        let text: String = tokens_a.concat();
        assert!(text.chars().next().unwrap().is_uppercase());
        assert!(text.ends_with('.'));
        assert!(tokens_a[1..].iter().all(|t| t.starts_with(' ')));
    }

    #[test]
    fn zero_tokens_is_empty() {
        assert!(tokens(0, &mut request_rng(0, 0)).is_empty());
    }
}
