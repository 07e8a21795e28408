//! What the fuzz targets share: turning AFL's bytes into text, and the checks that a
//! piece of output does not hold a secret.
//!
//! Each target is a binary in `src/bin/` whose `main` is `afl::fuzz!`; `scripts/fuzz`
//! builds and runs them. A property that fails panics, which AFL records as a crash.

#![forbid(unsafe_code)]

/// The input as the targets with texts of their own read it: the first byte (its low
/// two bits: how many texts, 0 to 3), then that many texts split at NUL bytes (lossy
/// UTF-8), then the rest of the bytes. `None` for an empty input.
pub fn control_texts_rest(data: &[u8]) -> Option<(u8, Vec<String>, &[u8])> {
    let (&control, rest) = data.split_first()?;
    let count = usize::from(control & 0b11);
    let mut parts = rest.splitn(count + 1, |b| *b == 0);
    let texts: Vec<String> = parts
        .by_ref()
        .take(count)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    Some((control, texts, parts.next().unwrap_or_default()))
}

/// The input's texts as loaded secrets, named `S0`, `S1`, … in order.
pub fn known_secrets(texts: &[String]) -> Vec<logship::sanitize::KnownSecret> {
    texts
        .iter()
        .enumerate()
        .map(|(i, v)| logship::sanitize::KnownSecret::new(format!("S{i}"), v.as_str()))
        .collect()
}

/// The windows of `len` characters of `text` (by characters, not bytes).
pub fn windows(text: &str, len: usize) -> Vec<&str> {
    let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    bounds.push(text.len());
    (0..bounds.len().saturating_sub(len))
        .map(|i| &text[bounds[i]..bounds[i + len]])
        .collect()
}

/// Every string of a JSON value, keys included, decoded.
pub fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                json_strings(v, out);
            }
        }
        _ => {}
    }
}

/// The tokens of JSON text that are outside its strings: numbers and `true`/`false`/
/// `null` (the text must be valid JSON).
pub fn json_bare_tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut start = None;
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let bare = !(c == '"' || c.is_whitespace() || "{}[]:,".contains(c));
        match (bare, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                tokens.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
        in_string = c == '"';
    }
    if let Some(s) = start {
        tokens.push(&text[s..]);
    }
    tokens
}

/// `text` cut at every redaction marker (`[REDACTED]`, `[REDACTED:NAME]`): a secret
/// found inside one piece was in the input, not made up by a marker next to other text.
pub fn unredacted_pieces(text: &str) -> Vec<&str> {
    const MARKER: &str = "[REDACTED";
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARKER) {
        pieces.push(&rest[..at]);
        let after = &rest[at + MARKER.len()..];
        rest = match after.find(']') {
            Some(end) if end <= 128 => &after[end + 1..],
            _ => after,
        };
    }
    pieces.push(rest);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_by_character() {
        assert_eq!(windows("abcdé", 4), ["abcd", "bcdé"]);
        assert!(windows("abc", 4).is_empty());
        assert_eq!(windows("abcd", 4), ["abcd"]);
    }

    #[test]
    fn bare_tokens_skip_strings() {
        let text = r#"{"a\"1": 123456, "b": [true, -1.5e3], "c": "x 99"}"#;
        assert_eq!(json_bare_tokens(text), ["123456", "true", "-1.5e3"]);
    }

    #[test]
    fn pieces_are_cut_at_markers() {
        assert_eq!(
            unredacted_pieces("a[REDACTED]b[REDACTED:S0]c"),
            ["a", "b", "c"]
        );
    }
}
