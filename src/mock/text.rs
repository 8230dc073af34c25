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

/// Text cut into pieces (tokens, or JSON fragments): one string and the cut
/// points, two allocations instead of one per piece. An open stream holds its
/// reply's pieces until its last token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pieces {
    text: String,
    /// Where each piece ends in `text`.
    ends: Vec<usize>,
}

impl Pieces {
    /// Room for `pieces` pieces of `bytes` bytes in all.
    pub fn with_capacity(bytes: usize, pieces: usize) -> Self {
        Self { text: String::with_capacity(bytes), ends: Vec::with_capacity(pieces) }
    }

    /// Appends a piece.
    pub fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
        self.end_piece();
    }

    /// Ends the piece that [`tokens`] wrote straight into `text`.
    fn end_piece(&mut self) {
        self.ends.push(self.text.len());
    }

    /// How many pieces.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `index`-th piece.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).and_then(|i| self.ends.get(i)).copied().unwrap_or(0);
        self.text.get(start..end)
    }

    /// Every piece, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The pieces joined: the whole text.
    pub fn concat(&self) -> &str {
        &self.text
    }
}

impl<'a> FromIterator<&'a str> for Pieces {
    fn from_iter<I: IntoIterator<Item = &'a str>>(pieces: I) -> Self {
        let mut out = Pieces::default();
        pieces.into_iter().for_each(|piece| out.push(piece));
        out
    }
}

/// `count` tokens forming sentences; each token but the first starts with a
/// space, and the text ends with a full stop.
pub fn tokens(count: usize, rng: &mut impl Rng) -> Pieces {
    let mut out = Pieces::with_capacity(count * 8, count);
    let mut sentence_left = 0usize;
    for i in 0..count {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        let starts_sentence = sentence_left == 0;
        if starts_sentence {
            sentence_left = rng.random_range(6..=12);
        }
        sentence_left -= 1;
        let ends_sentence = sentence_left == 0 || i + 1 == count;
        let token = &mut out.text;
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
        out.end_piece();
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
        let text = tokens_a.concat();
        assert!(text.chars().next().unwrap().is_uppercase());
        assert!(text.ends_with('.'));
        assert!(tokens_a.iter().skip(1).all(|t| t.starts_with(' ')));
        assert_eq!(tokens_a.iter().collect::<String>(), text, "the pieces join to the text");
        assert!(tokens_a.iter().all(|t| !t.trim().is_empty()), "no empty piece");
    }

    #[test]
    fn pieces_keep_their_bounds() {
        let pieces: Pieces = ["a", "", "bc", "é✓"].into_iter().collect();
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.iter().collect::<Vec<_>>(), ["a", "", "bc", "é✓"]);
        assert_eq!(pieces.get(3), Some("é✓"));
        assert_eq!(pieces.get(4), None);
        assert_eq!(pieces.concat(), "abcé✓");
    }

    #[test]
    fn zero_tokens_is_empty() {
        assert!(tokens(0, &mut request_rng(0, 0)).is_empty());
    }
}
