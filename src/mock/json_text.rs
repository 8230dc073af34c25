//! JSON string text written straight into an event's buffer, for the mock's
//! encoders (`anthropic`, `openai`, `gemini`), which write each event's JSON
//! by hand rather than build a `serde_json::Value` (a value costs an ordered
//! map and its keys per event; see docs/performance.md).
//!
//! The escaping is `serde_json`'s (a property test holds them equal): only
//! `"`, `\` and control characters are escaped. A model's token almost never
//! has one, so such text is copied whole after one scan.

use bytes::BufMut;

/// Whether `byte` must be escaped inside a JSON string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// `text` as a JSON string, quotes included, onto `out`.
pub(crate) fn put_json_string<B: BufMut>(out: &mut B, text: &str) {
    out.put_u8(b'"');
    put_escaped(out, text);
    out.put_u8(b'"');
}

/// `text` escaped as the inside of a JSON string (no quotes), onto `out`.
pub(crate) fn put_escaped<B: BufMut>(out: &mut B, text: &str) {
    if !text.bytes().any(needs_escape) {
        out.put_slice(text.as_bytes());
        return;
    }
    // Rare: serde_json's escaping, quotes stripped. Writing a string into
    // memory cannot fail.
    let mut quoted = Vec::with_capacity(text.len() + 8);
    let _ = serde_json::to_writer(&mut quoted, text);
    out.put_slice(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on failure")]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_text_is_copied_and_specials_are_escaped() {
        let mut out = Vec::new();
        put_json_string(&mut out, "a token");
        put_json_string(&mut out, "say \"hi\"\\\n\t\u{1}é");
        assert_eq!(out, r#""a token""say \"hi\"\\\n\t\u0001é""#.as_bytes());
    }

    proptest! {
        #[test]
        fn the_text_is_what_serde_json_writes(text in any::<String>(), ascii in "[ -~\\n\\t\"\\\\]{0,40}") {
            for text in [text, ascii] {
                let mut out = Vec::new();
                put_json_string(&mut out, &text);
                prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
            }
        }
    }
}
