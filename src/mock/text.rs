//! Deterministic filler text: one word per token, sentences of a few words,
//! drawn from a request's random stream so a seed replays the same text.

use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;

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

/// Text cut into pieces (tokens, or JSON fragments): one string and the cut
/// points, two allocations instead of one per piece. An open stream holds its
/// reply's pieces until its last token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pieces {
    text: String,
    /// Where each piece ends in `text` (a reply is far below 4 GiB: the
    /// schema budget bounds it to 256 KiB).
    ends: Vec<u32>,
}

impl Pieces {
    /// Room for `pieces` pieces of `bytes` bytes in all.
    pub(crate) fn with_capacity(bytes: usize, pieces: usize) -> Self {
        Self { text: String::with_capacity(bytes), ends: Vec::with_capacity(pieces) }
    }

    /// Appends a piece.
    pub(crate) fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
        self.end_piece();
    }

    /// Ends the piece that [`tokens`] wrote straight into `text`.
    fn end_piece(&mut self) {
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// How many pieces.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The `index`-th piece.
    pub(crate) fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = index.checked_sub(1).and_then(|i| self.ends.get(i)).map_or(0, |&s| s as usize);
        self.text.get(start..end)
    }

    /// Every piece, in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The pieces joined: the whole text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The same, under the name the tests compare [`LazyTokens`] by.
    #[cfg(test)]
    pub(crate) fn concat(&self) -> &str {
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
pub(crate) fn tokens(count: usize, rng: &mut impl Rng) -> Pieces {
    let mut out = Pieces::with_capacity(count * 8, count);
    let mut sentence = Sentence::default();
    for i in 0..count {
        sentence.write_token(i, count, rng, &mut out.text);
        out.end_piece();
    }
    out
}

/// Where the text is in its sentence.
#[derive(Debug, Clone, Copy, Default)]
struct Sentence {
    /// Words left in the current sentence; 0 at a sentence start.
    left: usize,
}

impl Sentence {
    /// Appends token `i` of `count` to `out`, drawing from `rng`.
    fn write_token(&mut self, i: usize, count: usize, rng: &mut impl Rng, out: &mut String) {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        let starts_sentence = self.left == 0;
        if starts_sentence {
            self.left = rng.random_range(6..=12);
        }
        self.left -= 1;
        let ends_sentence = self.left == 0 || i + 1 == count;
        if i > 0 {
            out.push(' ');
        }
        if starts_sentence {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(word);
        }
        if ends_sentence {
            out.push('.');
            self.left = 0;
        }
    }
}

/// The same `count` tokens as [`tokens`] gives for this random stream, made
/// one at a time as a stream is pulled: an open stream holds a few hundred
/// bytes of generator, not its whole reply (100,000 tokens are 1.5 MB).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LazyTokens {
    /// The stream the tokens are drawn from, at the first token.
    start: ChaCha8Rng,
    /// How many were drawn (the text's sentences end by this count).
    count: usize,
    /// How many are sent: `count`, or fewer when a stop sequence cut the text.
    shown: usize,
}

impl LazyTokens {
    /// The `count` tokens [`tokens`] would draw from `rng`; `rng` is advanced
    /// past them, as [`tokens`] would leave it.
    pub(crate) fn new(count: usize, rng: &mut ChaCha8Rng) -> Self {
        let start = rng.clone();
        // The same draws, without keeping the text.
        let mut sentence = Sentence::default();
        let mut scratch = String::with_capacity(16);
        for i in 0..count {
            scratch.clear();
            sentence.write_token(i, count, rng, &mut scratch);
        }
        Self { start, count, shown: count }
    }

    /// How many tokens.
    pub(crate) fn len(&self) -> usize {
        self.shown
    }

    /// Cuts the text before the first token with which it would contain one
    /// of `stops` (a stop sequence ends the output where it would begin, and
    /// the sequence itself is not sent; a token it starts inside is left out
    /// whole). Whether it cut.
    pub(crate) fn cut_at_stop(&mut self, stops: &[String]) -> bool {
        use aho_corasick::automaton::Automaton as _;
        use aho_corasick::{Anchored, MatchKind, nfa::contiguous::NFA};
        let stops: Vec<&String> = stops.iter().filter(|s| !s.is_empty()).collect();
        if stops.is_empty() {
            return false;
        }
        // One automaton over every stop, fed each byte once as the text is
        // made: linear in the text, however many and however long the stops
        // (a window rescanned per token was the text times the longest stop).
        let Ok(automaton) = NFA::builder().match_kind(MatchKind::Standard).build(&stops) else {
            return false;
        };
        let Ok(mut state) = automaton.start_state(Anchored::No) else { return false };
        let mut cursor = self.cursor();
        let mut kept = 0;
        while let Some(token) = cursor.next_token() {
            for &byte in token.as_bytes() {
                state = automaton.next_state(Anchored::No, state, byte);
                if automaton.is_match(state) {
                    self.shown = kept;
                    return true;
                }
            }
            kept += 1;
        }
        false
    }

    /// The whole text (for a non-streaming reply).
    pub(crate) fn concat(&self) -> String {
        let mut text = String::with_capacity(self.shown * 8);
        let mut cursor = self.cursor();
        while let Some(token) = cursor.next_token() {
            text.push_str(token);
        }
        text
    }

    /// A cursor over the tokens, in order.
    pub(crate) fn cursor(&self) -> TokenCursor {
        TokenCursor {
            rng: self.start.clone(),
            next: 0,
            count: self.count,
            shown: self.shown,
            sentence: Sentence::default(),
            token: String::new(),
        }
    }
}

/// Makes [`LazyTokens`]' tokens one at a time.
#[derive(Debug, Clone)]
pub(crate) struct TokenCursor {
    rng: ChaCha8Rng,
    next: usize,
    count: usize,
    shown: usize,
    sentence: Sentence,
    token: String,
}

impl TokenCursor {
    /// The next token, or `None` after the last.
    pub(crate) fn next_token(&mut self) -> Option<&str> {
        if self.next >= self.shown {
            return None;
        }
        self.token.clear();
        self.sentence.write_token(self.next, self.count, &mut self.rng, &mut self.token);
        self.next += 1;
        Some(&self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::request_rng;

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

    /// The first token with which the text contains a stop, found the
    /// plain way: the text rebuilt and searched after every token.
    fn cut_by_search(lazy: &LazyTokens, stops: &[String]) -> Option<usize> {
        let mut text = String::new();
        let mut cursor = lazy.cursor();
        let mut kept = 0;
        while let Some(token) = cursor.next_token() {
            text.push_str(token);
            if stops.iter().any(|stop| !stop.is_empty() && text.contains(stop.as_str())) {
                return Some(kept);
            }
            kept += 1;
        }
        None
    }

    proptest::proptest! {
        /// Stops cut where a search of the whole text says, whichever
        /// stops: words of the text, pieces across tokens, strangers.
        #[test]
        fn a_stop_cuts_where_searching_the_text_finds_it(
            seed in 0u64..1000,
            count in 1usize..400,
            picks in proptest::collection::vec((0usize..2000, 1usize..24), 0..4),
            stranger in "[a-z .]{0,6}",
        ) {
            let lazy = LazyTokens::new(count, &mut request_rng(seed, 0));
            let text = lazy.concat();
            let mut stops: Vec<String> = picks
                .iter()
                .filter_map(|&(at, len)| {
                    let at = at % text.len().max(1);
                    text.get(at..(at + len).min(text.len())).map(str::to_string)
                })
                .collect();
            stops.push(stranger);
            let mut cut = lazy.clone();
            let cuts = cut.cut_at_stop(&stops);
            let expected = cut_by_search(&lazy, &stops);
            proptest::prop_assert_eq!(cuts, expected.is_some());
            proptest::prop_assert_eq!(cut.len(), expected.unwrap_or(count));
        }
    }

    #[test]
    fn lazy_tokens_are_the_same_tokens_and_leave_the_stream_where_tokens_does() {
        for count in [0, 1, 7, 300] {
            let mut eager_rng = request_rng(5, 9);
            let eager = tokens(count, &mut eager_rng);
            let mut lazy_rng = request_rng(5, 9);
            let lazy = LazyTokens::new(count, &mut lazy_rng);
            assert_eq!(lazy_rng, eager_rng, "the stream moves on as far");
            assert_eq!(lazy.len(), count);
            assert_eq!(lazy.concat(), eager.concat());
            let mut cursor = lazy.cursor();
            let mut made = Vec::new();
            while let Some(token) = cursor.next_token() {
                made.push(token.to_string());
            }
            assert_eq!(made, eager.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn zero_tokens_is_empty() {
        assert_eq!(tokens(0, &mut request_rng(0, 0)).len(), 0);
    }
}
