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
    JsonString::new(text).put(out);
}

/// A string measured for its JSON form: one scan says both how long it is
/// and whether it has anything to escape, so an encoder that sizes its buffer
/// first does not scan the text again to write it.
///
/// Encoders size an event's buffer exactly with [`JsonString::len`]: `Bytes`
/// made from a buffer with room to spare allocates a second time, for its
/// shared header, so a token's event would cost two allocations, not one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonString<'a> {
    text: &'a str,
    /// Its length as JSON, quotes included.
    len: usize,
}

impl<'a> JsonString<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let plain = text.len() + 2;
        if !text.bytes().any(needs_escape) {
            return Self { text, len: plain };
        }
        let escapes: usize = text
            .bytes()
            .map(|byte| match byte {
                b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 1,
                0..0x20 => 5,
                _ => 0,
            })
            .sum();
        Self { text, len: plain + escapes }
    }

    /// Its length as JSON, quotes included.
    pub(crate) fn len(self) -> usize {
        self.len
    }

    /// Writes it, quotes included, onto `out`.
    pub(crate) fn put<B: BufMut>(self, out: &mut B) {
        if self.len == self.text.len() + 2 {
            out.put_u8(b'"');
            out.put_slice(self.text.as_bytes());
            out.put_u8(b'"');
        } else {
            // Rare: serde_json's escaping, straight into `out` (writing
            // into memory cannot fail).
            let _ = serde_json::to_writer(out.writer(), self.text);
        }
    }
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
        assert_eq!(
            out.len(),
            JsonString::new("a token").len() + JsonString::new("say \"hi\"\\\n\t\u{1}é").len()
        );
    }

    proptest! {
        #[test]
        fn the_text_is_what_serde_json_writes(
            text in any::<String>(),
            ascii in "[ -~\\n\\t\"\\\\]{0,40}",
            control in "[\\x00-\\x1f\"\\\\a-z]{0,40}",
        ) {
            for text in [text, ascii, control] {
                let mut out = Vec::new();
                put_json_string(&mut out, &text);
                prop_assert_eq!(out.len(), JsonString::new(&text).len());
                prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
            }
        }
    }
}
