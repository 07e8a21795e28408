//! Sensitive keys: the value after a key whose name holds a sensitive stem
//! (`password`, `token`, `api_key`, …) in a JSON object at any depth, and in
//! `key=value` / `key: value` text (HTTP header lines like `X-Api-Key: abc` included);
//! and the AWS secret key after a `secret_access_key`-like key.
//!
//! Each stem is a trigger word of the parent's automaton, which matches it in any ASCII
//! casing (`password`, `PASSWORD`, `PassWord`); a stem of several parts is also
//! spelled joined the ways apps join it (`api_key` as `apiKey`, `ApiKey`, `Api-Key`:
//! [`case_variants`]). The automaton is as fast in any casing (a letter's two cases are
//! one byte class of its table).
//!
//! Every look from a hit is bounded by the scan's cursors: backwards no further than
//! what earlier hits looked at, forwards over the key and its value once; a later hit
//! inside them is skipped. Not here: secrets known by value, token shapes.

use super::{escaped_before, string_end, Cut, Detector, Mode, Scan, Trigger, REDACTED};

/// Sensitive key stems (matched anywhere in a key).
pub(super) const KEY_STEMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "session",
    "private_key",
    "private-key",
    "privatekey",
    "credential",
];

/// The trigger words for the built-in stems and the configured ones.
pub(super) fn key_words(extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for stem in KEY_STEMS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        for w in case_variants(stem) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// `word` as given, lower, Capitalized, UPPER; for a stem of several parts
/// (`api_key`) also Title-Case (`Api_Key`, so `X-Api-Key`), camelCase (`apiKey`) and
/// PascalCase (`ApiKey`).
pub(super) fn case_variants(word: &str) -> Vec<String> {
    let capitalize = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    let lower = word.to_lowercase();
    let mut out = vec![
        word.to_owned(),
        lower.clone(),
        capitalize(&lower),
        word.to_uppercase(),
    ];
    let split: Vec<&str> = lower.split(['_', '-']).filter(|p| !p.is_empty()).collect();
    if split.len() > 1 {
        for sep in ["_", "-"] {
            if lower.contains(sep) {
                let title: Vec<String> = split.iter().map(|p| capitalize(p)).collect();
                out.push(title.join(sep));
            }
        }
        let pascal: String = split.iter().map(|p| capitalize(p)).collect();
        let mut camel = split[0].to_owned();
        camel.extend(split[1..].iter().map(|p| capitalize(p)));
        out.push(pascal);
        out.push(camel);
    }
    let mut seen = Vec::new();
    out.retain(|w| {
        !w.is_empty() && !seen.contains(w) && {
            seen.push(w.clone());
            true
        }
    });
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn skip_blanks(bytes: &[u8], mut k: usize) -> usize {
    while k < bytes.len() && matches!(bytes[k], b' ' | b'\t') {
        k += 1;
    }
    k
}

/// A sensitive stem found at `s..e`: a JSON key's value, an assignment's value, or a
/// word in prose ("reset your password"), told apart by the bytes around it.
pub(super) fn at_key(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let floor = scan.floor(Trigger::Key);
    let mut i = s;
    while i > floor && is_key_byte(bytes[i - 1]) {
        i -= 1;
    }
    let mut j = e;
    while j < bytes.len() && is_key_byte(bytes[j]) {
        j += 1;
    }
    scan.work += j - i;
    scan.seen[Trigger::Key.slot()] = j;
    // A structural key: `"…key…"` (quotes not escaped) then `:`.
    if i > 0
        && bytes[i - 1] == b'"'
        && !escaped_before(bytes, i - 1, floor)
        && bytes.get(j) == Some(&b'"')
    {
        let k = skip_blanks(bytes, j + 1);
        if bytes.get(k) == Some(&b':') {
            let at = skip_blanks(bytes, k + 1);
            scan.work += at - j;
            json_value(scan, at);
        }
        return;
    }
    let Some(mut k) = assignment_at(bytes, j) else {
        return;
    };
    // `arn:aws:secretsmanager:REGION:…:secret:NAME` names a secret, it is not one.
    if in_arn(bytes, i, floor) {
        // The rest of the ARN holds `:secret:` again: it is looked at once.
        let mut end = k;
        while end < bytes.len() && !is_value_end(bytes[end]) {
            end += 1;
        }
        scan.work += end - k;
        scan.seen[Trigger::Key.slot()] = end;
        return;
    }
    k = skip_blanks(bytes, k + 1);
    // A quoted value: `password=\"…\"` inside an event's JSON string, `password="…"` in
    // plain text (there a bare `"` is not the end of a JSON string).
    if bytes.get(k) == Some(&b'\\') && bytes.get(k + 1) == Some(&b'"') {
        k += 2;
    } else if scan.mode == Mode::Text && bytes.get(k) == Some(&b'"') {
        k += 1;
    }
    let mut end = k;
    while end < bytes.len() && !is_value_end(bytes[end]) {
        end += 1;
    }
    scan.work += end - j;
    scan.seen[Trigger::Key.slot()] = end;
    let value = &bytes[k..end];
    // "Authorization: Bearer …" is the bearer detector's.
    if value.is_empty()
        || value.eq_ignore_ascii_case(b"bearer")
        || value.eq_ignore_ascii_case(b"basic")
        || value == REDACTED.as_bytes()
    {
        return;
    }
    scan.push(Cut::new(k, end, Detector::SensitiveKey));
    scan.taken(end);
}

/// Where an unquoted value in text ends.
fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\\' | b',' | b';' | b'&')
}

/// The JSON value starting at `at` after a sensitive key: a string's contents, or a
/// whole number/literal/object/array (replaced by the string `"[REDACTED]"`).
fn json_value(scan: &mut Scan, at: usize) {
    let bytes = scan.bytes();
    let Some(&first) = bytes.get(at) else { return };
    let (start, end, whole) = match first {
        b'"' => {
            let end = string_end(bytes, at + 1);
            scan.work += end - at;
            scan.seen[Trigger::Key.slot()] = end;
            if end == at + 1 {
                return; // an empty string hides nothing
            }
            (at + 1, end, false)
        }
        b'{' | b'[' => {
            let end = container_end(bytes, at);
            scan.work += end - at;
            (at, end, true)
        }
        _ => {
            let mut end = at;
            while end < bytes.len()
                && !matches!(bytes[end], b',' | b'}' | b']')
                && !bytes[end].is_ascii_whitespace()
            {
                end += 1;
            }
            scan.work += end - at;
            if &bytes[at..end] == b"null" || end == at {
                return;
            }
            (at, end, true)
        }
    };
    scan.push(Cut {
        whole,
        ..Cut::new(start, end, Detector::SensitiveKey)
    });
    scan.taken(end);
}

/// One past the bracket closing the object or array at `at`.
fn container_end(bytes: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Whether the key starting at `i` is inside an ARN (`arn:PARTITION:…`): the token
/// around it, up to a space, a quote or `=`, starts with `arn:`. Looks back no further
/// than `floor`.
fn in_arn(bytes: &[u8], i: usize, floor: usize) -> bool {
    let from = floor.min(i);
    let start = bytes[from..i]
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\\' | b'='))
        .map_or(from, |p| from + p + 1);
    bytes[start..i].starts_with(b"arn:")
}

/// Length of an AWS secret access key.
const AWS_SECRET_LEN: usize = 40;

/// Where a key that ends at `k` is assigned a value: an optional `\"` (a key inside an
/// escaped JSON document), blanks, then `=` or `:`. Its position, if there is one.
fn assignment_at(bytes: &[u8], k: usize) -> Option<usize> {
    let mut k = k;
    if bytes.get(k) == Some(&b'\\') && bytes.get(k + 1) == Some(&b'"') {
        k += 2;
    }
    k = skip_blanks(bytes, k);
    matches!(bytes.get(k), Some(b'=' | b':')).then_some(k)
}

/// `access_key` found at `s..e`: when it ends a `secret_access_key`-like key, the 40
/// characters of the value after `=` / `:` are an AWS secret key.
pub(super) fn at_aws_secret(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let before = |n: usize| s.checked_sub(n).and_then(|p| bytes.get(p..s));
    let secret_before = before(7).is_some_and(|b| b.eq_ignore_ascii_case(b"secret_"))
        || before(6).is_some_and(|b| b.eq_ignore_ascii_case(b"secret"));
    if !secret_before {
        return;
    }
    let Some(k) = assignment_at(bytes, e) else {
        return;
    };
    let mut k = skip_blanks(bytes, k + 1);
    if bytes.get(k) == Some(&b'\\') && bytes.get(k + 1) == Some(&b'"') {
        k += 2;
    }
    scan.work += k - s;
    scan.seen[Trigger::AwsSecret.slot()] = k;
    let end = k + AWS_SECRET_LEN;
    let key_shaped = bytes.get(k..end).is_some_and(|v| {
        v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=".contains(b))
    });
    if key_shaped {
        scan.push(Cut::new(k, end, Detector::AwsSecretKey));
        scan.taken(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_cover_header_and_camel_spellings() {
        let words = key_words(&[]);
        for w in [
            "Api-Key",
            "API-KEY",
            "api-key",
            "ApiKey",
            "apiKey",
            "PrivateKey",
            "privateKey",
            "private_key",
            "Secret",
            "Token",
            "TOKEN",
        ] {
            assert!(words.contains(&w.to_owned()), "{w}");
        }
        // Other casings are not spelled out: the automaton matches every word in any
        // ASCII casing (`sensitive_keys_in_any_casing` in the sanitizer's tests).
        assert!(!words.contains(&"PassWord".to_owned()));
    }
}
