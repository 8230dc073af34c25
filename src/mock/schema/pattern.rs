//! Strings that match a JSON Schema `pattern`, for [`super`]'s sampler.
//!
//! A [`Generator`] parses the regex with `regex-syntax`, makes it readable
//! (every class is narrowed to printable ASCII when it has any: `\d` gives
//! `0-9` as in ECMA-262, not every Unicode digit; `.` gives no control
//! characters), strips anchors (`rand_regex` cannot generate them, and a
//! JSON Schema pattern is a search, so a full match of the rest is a
//! match), narrows repetitions ([`Stretch`]), and hands it to `rand_regex`.
//! A [`Checker`] is the pattern itself, compiled by the `regex` crate with
//! ECMA-262's ASCII `\d`, `\w` and `\b` (Unicode only when the pattern
//! needs it, such as `\p{Greek}`); each draw must pass it, so a `\b` in the
//! middle is still honoured by drawing again. Patterns that crate cannot
//! compile (lookaround, backreferences, past its size limit) are
//! unsupported, and the sampler ignores them.

use rand::{Rng, RngExt as _};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange};
use regex_syntax::hir::{Hir, HirKind, Repetition};

/// How deeply a pattern may nest groups and repetitions: framework patterns
/// nest a handful of levels; the limit keeps the recursion here bounded.
const NEST_LIMIT: u32 = 32;
/// Extra repeats of an unbounded `*`, `+` or `{n,}`, and the most of a
/// wide `{m,n}` used, unless a `minLength` asks for longer strings.
pub(crate) const EXTRA_REPEATS: u32 = 3;
/// The largest compiled checker: a client's pattern is untrusted input,
/// and failing at this size takes about 3 ms.
const CHECKER_SIZE_LIMIT: usize = 256 * 1024;

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

/// Whether a string matches a pattern, as JSON Schema means it (a search).
#[derive(Debug)]
pub(crate) struct Checker(regex::bytes::Regex);

impl Checker {
    /// The pattern compiled with ASCII classes, or with Unicode ones when
    /// it names a Unicode class; `None` when it cannot be compiled.
    pub(crate) fn compile(pattern: &str) -> Option<Self> {
        [false, true].into_iter().find_map(|unicode| {
            regex::bytes::RegexBuilder::new(pattern)
                .unicode(unicode)
                .size_limit(CHECKER_SIZE_LIMIT)
                .nest_limit(NEST_LIMIT)
                .build()
                .ok()
                .map(Self)
        })
    }

    /// Whether `text` contains a match.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text.as_bytes())
    }
}

/// Candidate strings for a pattern.
#[derive(Debug)]
pub(crate) struct Generator(rand_regex::Regex);

/// Why a pattern cannot be generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// Syntax `regex-syntax` lacks (lookaround, backreferences): the
    /// sampler ignores the pattern.
    Unsupported,
    /// A match may be longer than `max_bytes` (or its length overflows).
    TooLong,
}

impl Generator {
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
        rand_regex::Regex::with_hir(readable, 0).map(Self).map_err(|_| PatternError::Unsupported)
    }

    /// One candidate (which the pattern's [`Checker`] must still pass).
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> String {
        rng.sample(&self.0)
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
        let generator = Generator::compile(pattern, Stretch::SHORT, 4096).unwrap();
        let checker = Checker::compile(pattern).unwrap();
        (0..200)
            .map(|seed| {
                let text = generator.draw(&mut request_rng(seed, 0));
                assert!(checker.is_match(&text), "{pattern}: {text:?}");
                text
            })
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
    fn a_stretch_lengthens_every_repetition() {
        let generator =
            Generator::compile("^[a-f]*$", Stretch { floor: 40, extra: 2 }, 4096).unwrap();
        for seed in 0..50 {
            let text = generator.draw(&mut request_rng(seed, 0));
            assert!((40..=42).contains(&text.len()), "{text}");
        }
        // A floor past a repetition's maximum stops at the maximum.
        let generator =
            Generator::compile("^x{2,5}$", Stretch { floor: 40, extra: 2 }, 4096).unwrap();
        assert_eq!(generator.draw(&mut request_rng(1, 0)), "xxxxx");
    }

    #[test]
    fn checkers_follow_ecma_classes() {
        let digits = Checker::compile(r"^\d+$").unwrap();
        assert!(digits.is_match("0123"));
        assert!(!digits.is_match("١٢"), "ECMA-262's \\d is ASCII");
        let greek = Checker::compile(r"^\p{Greek}+$").unwrap();
        assert!(greek.is_match("αβ") && !greek.is_match("ab"));
        // A Unicode \w repeated 1,000 times is past the size limit; the ASCII one is not.
        assert!(Checker::compile(r"^\w{1000}$").is_some());
        assert!(Checker::compile("^(?=a)a$").is_none(), "lookahead");
    }

    #[test]
    fn unsupported_and_overlong_patterns_are_named() {
        let compile = |p: &str| Generator::compile(p, Stretch::SHORT, 4096).map(|_| ());
        assert_eq!(compile("^(?=a)a$"), Err(PatternError::Unsupported));
        assert_eq!(compile("a{5000}"), Err(PatternError::TooLong));
        // Nested counts whose product overflows are refused, not multiplied.
        assert_eq!(compile("((((a{1000}){1000}){1000}){1000}){1000}"), Err(PatternError::TooLong));
    }
}
