//! JSON text as the pipeline writes and checks it, without building a value: a string
//! escaped the way every event writes one ([`push_json_string`]), the size of that
//! escaped text without writing it ([`json_string_len`], [`json_char_len`]), and a
//! reading of any value that checks all of it the way `serde_json` would (`Checked`,
//! `Scalar`).
//!
//! Escaping is on the hot path (the message of every text event, the data of every
//! part): a table and a chunked, vectorizable scan find the few bytes that need it.
//!
//! Not here: which lines are JSON objects and what their fields mean (`structure`),
//! finding secrets inside JSON text (`sanitize` walks the text itself), cutting an
//! event into parts (`batch`).

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// `s` as a JSON string, quotes included (see [`push_json_string`]).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` as a JSON string. Control characters (NUL included) become `\u00XX`,
/// U+FFFD (what invalid UTF-8 was turned into) becomes `\ufffd`, so both stay visible.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(k) = next_special(&bytes[i..]) {
        i += k;
        let b = bytes[i];
        let (escape, width): (Option<&str>, usize) = match b {
            b'"' => (Some("\\\""), 1),
            b'\\' => (Some("\\\\"), 1),
            b'\n' => (Some("\\n"), 1),
            b'\r' => (Some("\\r"), 1),
            b'\t' => (Some("\\t"), 1),
            0xEF if bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => (Some("\\ufffd"), 3),
            0xEF => {
                i += 1;
                continue;
            }
            _ => (None, 1),
        };
        // `start` and `i` are char boundaries: each is 0, the end, or the position of
        // a special byte (ASCII, or 0xEF, a lead byte) or just past its whole char.
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        i += width;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Bytes that need a look when writing a JSON string: quote, backslash, controls, DEL,
/// and 0xEF (the first byte of U+FFFD).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xEF] = true;
    t
};

/// Offset of the first byte of `buf` in [`SPECIAL`]. Most text has none: whole chunks
/// are passed over with a branch-free test (which the compiler vectorizes), then the
/// byte is looked for one at a time.
fn next_special(buf: &[u8]) -> Option<usize> {
    const CHUNK: usize = 16;
    let mut at = 0;
    for chunk in buf.chunks_exact(CHUNK) {
        if chunk.iter().fold(false, |any, &b| any | is_special(b)) {
            break;
        }
        at += CHUNK;
    }
    buf[at..]
        .iter()
        .position(|b| SPECIAL[*b as usize])
        .map(|k| at + k)
}

/// [`SPECIAL`] as comparisons, for the vectorized test of [`next_special`].
fn is_special(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\') | (b == 0x7f) | (b == 0xEF)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The length of `s` as [`push_json_string`] writes it, quotes excluded: one pass,
/// no allocation.
pub fn json_string_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = bytes.len();
    let mut i = 0;
    while let Some(k) = bytes.get(i..).and_then(next_special) {
        i += k;
        len += match bytes[i] {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 1,
            // U+FFFD (3 bytes) becomes `\ufffd` (6); other U+Fxxx stay as they are.
            0xEF if bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => 3,
            0xEF => 0,
            // Other controls and DEL: `\u00XX`.
            _ => 5,
        };
        i += 1;
    }
    len
}

/// The length of `c` as [`push_json_string`] writes it.
pub fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' => 2,
        '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{fffd}' => 6,
        c => c.len_utf8(),
    }
}

/// Any JSON value, read and dropped. Unlike [`serde::de::IgnoredAny`], which skips
/// strings and numbers without decoding them, it decodes each one, so a line that
/// `serde_json` would refuse as a value (a lone surrogate `"\ud800"`, a number out of
/// range like `1e400`) is not taken for a JSON object and is shipped as text instead.
/// Allocates nothing, and nests no deeper than `serde_json`'s recursion limit.
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor { keep_text: false })
            .map(|_| Checked)
    }
}

/// A value read like [`Checked`], kept when it is a number or a string: what a caller
/// that reads one field (a timestamp) takes out of it. Any other value is `Other`.
pub(crate) enum Scalar {
    Number(f64),
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor { keep_text: true })
    }
}

/// Visits any value, checking all of it (see [`Checked`]).
struct ValueVisitor {
    /// Copy a string out (for a [`Scalar`]), else drop it.
    keep_text: bool,
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
        Ok(if self.keep_text {
            Scalar::Text(s.to_owned())
        } else {
            Scalar::Other
        })
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        // Keys too are decoded (a key is a string like any other).
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vectorized_special_test_is_the_table() {
        for b in 0..=255u8 {
            assert_eq!(is_special(b), SPECIAL[b as usize], "{b:#x}");
        }
        for n in 0..40 {
            let mut s = "a".repeat(n);
            assert_eq!(next_special(s.as_bytes()), None);
            s.push('"');
            s.push_str(&"b".repeat(20));
            assert_eq!(next_special(s.as_bytes()), Some(n));
        }
    }

    #[test]
    fn json_string_len_is_what_push_json_string_writes() {
        for s in [
            "",
            "plain",
            "quote \" back \\ nl \n cr \r tab \t",
            "nul \0 bell \u{7} del \u{7f}",
            "replacement \u{fffd} and \u{f000} and \u{ffff} and é",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(json_string_len(s) + 2, out.len(), "{s:?}");
            let chars: usize = s.chars().map(json_char_len).sum();
            assert_eq!(chars + 2, out.len(), "{s:?}");
        }
    }
}
