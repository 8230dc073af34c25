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

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

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

/// The longest match a generator may make: an input's whole byte budget.
const MAX_MATCH_BYTES: usize = super::Budget::DEFAULT.bytes;

/// Compiled patterns kept across requests: a load test sends the same
/// schemas again and again, and compiling a framework's email pattern costs
/// far more than drawing from it. Past this many, the cache starts over.
const CACHE_ENTRIES: usize = 512;

type Cache<K, V> = LazyLock<Mutex<HashMap<K, V>>>;

static CHECKERS: Cache<String, Option<Arc<Checker>>> = LazyLock::new(Default::default);
static GENERATORS: Cache<(String, Stretch), Result<Arc<Generator>, PatternError>> =
    LazyLock::new(Default::default);

/// `key`'s value from `cache`, made by `make` (outside the lock) when absent.
fn cached<K: Hash + Eq, V: Clone>(cache: &Cache<K, V>, key: K, make: impl FnOnce() -> V) -> V {
    // A panic elsewhere cannot leave a half-written entry: the map is
    // only ever read, cleared or given whole entries.
    let lock = || cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(value) = lock().get(&key) {
        return value.clone();
    }
    let value = make();
    let mut map = lock();
    if map.len() >= CACHE_ENTRIES {
        map.clear();
    }
    map.insert(key, value.clone());
    value
}

/// `pattern`'s checker, compiled once per process; `None` when unusable.
pub(crate) fn checker(pattern: &str) -> Option<Arc<Checker>> {
    cached(&CHECKERS, pattern.to_string(), || Checker::compile(pattern).map(Arc::new))
}

/// `pattern`'s generator for `stretch`, compiled once per process.
pub(crate) fn generator(pattern: &str, stretch: Stretch) -> Result<Arc<Generator>, PatternError> {
    cached(&GENERATORS, (pattern.to_string(), stretch), || {
        Generator::compile(pattern, stretch).map(Arc::new)
    })
}

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
pub(crate) struct Generator {
    regex: rand_regex::Regex,
    /// The longest candidate, in bytes.
    pub(crate) max_len: usize,
}

/// Why a pattern cannot be generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// Syntax `regex-syntax` lacks (lookaround, backreferences): the
    /// sampler ignores the pattern.
    Unsupported,
    /// A match may be longer than [`MAX_MATCH_BYTES`].
    TooLong,
}

impl Generator {
    /// Compiles `pattern` with its repetitions narrowed by `stretch`. The
    /// caller checks [`Generator::max_len`] before drawing: a draw
    /// allocates that much.
    pub(crate) fn compile(pattern: &str, stretch: Stretch) -> Result<Self, PatternError> {
        let hir = regex_syntax::ParserBuilder::new()
            .nest_limit(NEST_LIMIT)
            .build()
            .parse(pattern)
            .map_err(|_| PatternError::Unsupported)?;
        let readable = readable(hir, stretch);
        // Checked before rand_regex sees it: it multiplies lengths
        // unchecked and expands repeated literals in memory.
        let max_len = readable.properties().maximum_len().ok_or(PatternError::TooLong)?;
        if max_len > MAX_MATCH_BYTES {
            return Err(PatternError::TooLong);
        }
        let regex =
            rand_regex::Regex::with_hir(readable, 0).map_err(|_| PatternError::Unsupported)?;
        Ok(Self { regex, max_len })
    }

    /// One candidate (which the pattern's [`Checker`] must still pass).
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> String {
        rng.sample(&self.regex)
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
    use crate::shape::request_rng;

    fn draws(pattern: &str) -> Vec<String> {
        let generator = Generator::compile(pattern, Stretch::SHORT).unwrap();
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
        let generator = Generator::compile("^[a-f]*$", Stretch { floor: 40, extra: 2 }).unwrap();
        for seed in 0..50 {
            let text = generator.draw(&mut request_rng(seed, 0));
            assert!((40..=42).contains(&text.len()), "{text}");
        }
        // A floor past a repetition's maximum stops at the maximum.
        let generator = Generator::compile("^x{2,5}$", Stretch { floor: 40, extra: 2 }).unwrap();
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
        let compile = |p: &str| Generator::compile(p, Stretch::SHORT).map(|g| g.max_len);
        assert_eq!(compile("^(?=a)a$"), Err(PatternError::Unsupported));
        assert_eq!(compile("a{5000}"), Ok(5000));
        assert_eq!(compile("a{300000}"), Err(PatternError::TooLong));
        // Nested counts whose product overflows are refused, not multiplied.
        assert_eq!(compile("((((a{1000}){1000}){1000}){1000}){1000}"), Err(PatternError::TooLong));
    }
}
