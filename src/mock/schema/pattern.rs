//! Strings that match a JSON Schema `pattern`, for [`super`]'s sampler.
//!
//! The regex is parsed with `regex-syntax`, made readable (every class is
//! narrowed to printable ASCII when it has any: `\d` gives `0-9` as in
//! ECMA-262, not every Unicode digit; `.` gives no control characters),
//! stripped of anchors (`rand_regex` cannot generate them, and a JSON Schema
//! pattern is a search, so a full match of the rest is a match), bounded
//! (`*` and `+` repeat at most a few times), and handed to `rand_regex`.
//! Each draw is checked against the pattern itself with the `regex` crate,
//! so a lookaround-free pattern with a `\b` in the middle is still honoured
//! by drawing again. Patterns that crate cannot parse (lookahead,
//! backreferences) are reported as unsupported and the sampler ignores them.

use rand::{Rng, RngExt as _};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange};
use regex_syntax::hir::{Hir, HirKind, Repetition};

/// How deeply a pattern may nest groups and repetitions: framework patterns
/// nest a handful of levels; the limit keeps the recursion here bounded.
const NEST_LIMIT: u32 = 32;
/// Extra repeats of an unbounded `*`, `+` or `{n,}`, and the most of a
/// wide `{m,n}` used, unless a `minLength` asks for longer strings.
pub(crate) const EXTRA_REPEATS: u32 = 3;
/// The largest compiled checker; a client's pattern is untrusted input.
const CHECKER_SIZE_LIMIT: usize = 1 << 20;

/// How repetitions are narrowed: each `{m,n}` (or `*`, `+`, `{m,}`) is
/// drawn from `m' ..= m' + extra` (within `n`), where `m'` is `m` raised to
/// `floor` when the repetition allows it. Any count in a repetition's range
/// matches, so every stretch gives matching strings; they differ in length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Stretch {
    /// The least count of every repetition (capped by its maximum).
    pub(crate) floor: u32,
    /// Counts above the least.
    pub(crate) extra: u32,
}

impl Stretch {
    /// Short strings: every repetition at most a few past its minimum.
    pub(crate) const SHORT: Self = Self { floor: 0, extra: EXTRA_REPEATS };
}

/// A compiled pattern: a generator of candidate strings and the check each
/// candidate must pass.
#[derive(Debug)]
pub(crate) struct PatternStrings {
    generator: rand_regex::Regex,
    checker: regex::Regex,
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// Syntax the `regex` crate lacks (lookaround, backreferences), or a
    /// pattern past its size limit: the sampler ignores the pattern.
    Unsupported,
    /// Every match is longer than `max_bytes` (or the length overflows).
    TooLong,
}

impl PatternStrings {
    /// Compiles `pattern` with its repetitions narrowed by `stretch`,
    /// refusing one whose matches may then be longer than `max_bytes`.
    pub(crate) fn compile(
        pattern: &str,
        stretch: Stretch,
        max_bytes: usize,
    ) -> Result<Self, PatternError> {
        let hir = regex_syntax::ParserBuilder::new()
            .nest_limit(NEST_LIMIT)
            .build()
            .parse(pattern)
            .map_err(|_| PatternError::Unsupported)?;
        let readable = readable(hir, stretch);
        let max_len = readable.properties().maximum_len().ok_or(PatternError::TooLong)?;
        if max_len > max_bytes {
            return Err(PatternError::TooLong);
        }
        let checker = regex::RegexBuilder::new(pattern)
            .size_limit(CHECKER_SIZE_LIMIT)
            .nest_limit(NEST_LIMIT)
            .build()
            .map_err(|_| PatternError::Unsupported)?;
        let generator =
            rand_regex::Regex::with_hir(readable, 0).map_err(|_| PatternError::Unsupported)?;
        Ok(Self { generator, checker })
    }

    /// A string that matches, with `chars` (its length in characters)
    /// within `min..=max`, in at most `attempts` draws.
    pub(crate) fn draw(
        &self,
        rng: &mut impl Rng,
        min: usize,
        max: usize,
        attempts: usize,
    ) -> Option<String> {
        (0..attempts).find_map(|_| {
            let candidate: String = rng.sample(&self.generator);
            let chars = candidate.chars().count();
            (self.checker.is_match(&candidate) && (min..=max).contains(&chars)).then_some(candidate)
        })
    }

    /// Whether `text` matches (for values that come from elsewhere, such as
    /// `examples`).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.checker.is_match(text)
    }
}

/// `hir` with classes narrowed to printable ASCII where they have any,
/// anchors and word boundaries removed, and repetitions narrowed by `stretch`.
fn readable(hir: Hir, stretch: Stretch) -> Hir {
    match hir.into_kind() {
        HirKind::Empty | HirKind::Look(_) => Hir::empty(),
        HirKind::Literal(literal) => Hir::literal(literal.0),
        HirKind::Class(Class::Unicode(class)) => {
            let mut ascii = ClassUnicode::new([ClassUnicodeRange::new(' ', '~')]);
            ascii.intersect(&class);
            let class = if ascii.ranges().is_empty() { class } else { ascii };
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut ascii = ClassBytes::new([ClassBytesRange::new(b' ', b'~')]);
            ascii.intersect(&class);
            let class = if ascii.ranges().is_empty() { class } else { ascii };
            Hir::class(Class::Bytes(class))
        }
        HirKind::Repetition(repetition) => {
            let cap = repetition.max.unwrap_or(u32::MAX);
            let least = repetition.min.max(stretch.floor.min(cap));
            Hir::repetition(Repetition {
                min: least,
                max: Some(least.saturating_add(stretch.extra).min(cap)),
                greedy: repetition.greedy,
                sub: Box::new(readable(*repetition.sub, stretch)),
            })
        }
        HirKind::Capture(capture) => readable(*capture.sub, stretch),
        HirKind::Concat(parts) => {
            Hir::concat(parts.into_iter().map(|part| readable(part, stretch)).collect())
        }
        HirKind::Alternation(options) => {
            Hir::alternation(options.into_iter().map(|option| readable(option, stretch)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::plan::request_rng;

    fn draws(pattern: &str) -> Vec<String> {
        let strings = PatternStrings::compile(pattern, Stretch::SHORT, 4096).unwrap();
        (0..200)
            .map(|seed| strings.draw(&mut request_rng(seed, 0), 0, usize::MAX, 16).unwrap())
            .collect()
    }

    #[test]
    fn anchored_patterns_give_full_matches_in_ascii() {
        for zip in draws("^[0-9]{5}$") {
            assert!(zip.len() == 5 && zip.bytes().all(|b| b.is_ascii_digit()), "{zip}");
        }
        for code in draws(r"^\d{3}-\w{2,4}$") {
            assert!(code.is_ascii(), "{code}");
            let (digits, word) = code.split_once('-').unwrap();
            assert!(digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()), "{code}");
            assert!((2..=4).contains(&word.len()), "{code}");
        }
    }

    #[test]
    fn unbounded_repeats_are_short_and_dots_printable() {
        for text in draws("^a.+z$") {
            assert!(text.starts_with('a') && text.ends_with('z'), "{text}");
            assert!(text.len() <= 2 + 1 + EXTRA_REPEATS as usize, "{text}");
            assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
        }
    }

    #[test]
    fn a_word_boundary_inside_is_honoured_by_drawing_again() {
        let strings =
            PatternStrings::compile(r"^[a-z ]{2}\b[a-z]{2}$", Stretch::SHORT, 4096).unwrap();
        let found = (0..50).filter_map(|seed| strings.draw(&mut request_rng(seed, 0), 0, 99, 64));
        for text in found {
            assert!(strings.is_match(&text), "{text}");
        }
    }

    #[test]
    fn unsupported_and_overlong_patterns_are_named() {
        assert_eq!(
            PatternStrings::compile("^(?=a)a$", Stretch::SHORT, 4096).unwrap_err(),
            PatternError::Unsupported
        );
        assert_eq!(
            PatternStrings::compile("a{5000}", Stretch::SHORT, 4096).unwrap_err(),
            PatternError::TooLong
        );
        // Nested counts whose product overflows are refused, not multiplied.
        let nested = "((((a{1000}){1000}){1000}){1000}){1000}";
        assert_eq!(
            PatternStrings::compile(nested, Stretch::SHORT, 4096).unwrap_err(),
            PatternError::TooLong
        );
    }
}
