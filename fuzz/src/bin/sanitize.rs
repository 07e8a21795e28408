//! The sanitizer: any line, with any 0 to 3 loaded secrets, sanitizes without a
//! panic; valid JSON stays valid JSON; and no loaded secret is left in the output
//! verbatim, neither in the decoded text of any JSON string nor in a bare token (a
//! number), nor as hex where it stands in the text (whole, or Node's `Buffer` head) or as
//! a list of its bytes, nor its base64 at any offset inside longer base64.
//!
//! Input: the first byte's low two bits say how many secrets there are (0 to 3), its
//! third bit sets `redact_name`, its fourth adds nine `DECKHAND_REDACT_PATTERNS` (as
//! many as make them one set); the rest, split at NUL bytes, is the secrets, then
//! the line. The line is sanitized as the structure stage makes it into events (a text
//! event is searched for trigger words after the agent's own fields, `Event::head`),
//! once as the event is and once with its message redacted as text first
//! (`Structurer::redact_with`, as the capture does: its own fields searched, or found
//! clean once for every event with them), and also as it is when it is a JSON
//! object.

use std::cell::RefCell;
use std::sync::Arc;

use deckhand_fuzz::{
    control_texts_rest, json_bare_tokens, json_strings, known_secrets, unredacted_pieces,
};
use logship::sanitize::{Config, Sanitizer, MIN_SECRET_LEN};
use logship::structure::{Event, Options, Stream, Structurer};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((control, secrets, rest)) = control_texts_rest(data) else {
            return;
        };
        let line = String::from_utf8_lossy(rest).into_owned();
        let config = Config {
            secrets: known_secrets(&secrets),
            redact_name: control & 0b100 != 0,
            extra_patterns: if control & 0b1000 != 0 {
                patterns()
            } else {
                Vec::new()
            },
            ..Config::default()
        };
        let (sanitizer, skipped) = built(config, &secrets);
        // The sanitizer's rule (too short: reported by name, not redacted), read
        // conservatively: surrounding whitespace does not count.
        let checked: Vec<&str> = secrets
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                !skipped.contains(&format!("S{i}")) && v.trim().chars().count() >= MIN_SECRET_LEN
            })
            .map(|(_, v)| v.as_str())
            .collect();

        let events = structured(&line, None);
        let redacted = structured(&line, Some(sanitizer.clone()));
        assert_eq!(events.len(), redacted.len(), "{line:?}");
        for (event, twin) in events.iter().zip(&redacted) {
            // The agent's own fields are no secret of the app's.
            let own = event.json.get(..event.head).unwrap_or_default();
            let wrapped: Vec<&str> = checked
                .iter()
                .copied()
                .filter(|s| !own.contains(*s) && !"\"}".contains(*s))
                .collect();
            check(&event.json, &event.sanitized(&sanitizer), &wrapped);
            // The same event with its message redacted as text first, as the capture
            // makes it.
            check(&twin.json, &twin.sanitized(&sanitizer), &wrapped);
        }
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line).is_ok() {
            check(&line, &sanitizer.sanitize(&line), &checked);
        }
    });
}

/// `line` through the structure stage, its text events' messages redacted by
/// `sanitizer` when one is given.
fn structured(line: &str, sanitizer: Option<Arc<Sanitizer>>) -> Vec<Event> {
    let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
    if let Some(sanitizer) = sanitizer {
        structurer.redact_with(sanitizer);
    }
    let mut events = Vec::new();
    structurer.push(line.as_bytes(), 1_795_000_000_000, &mut events);
    structurer.flush(&mut events);
    assert_eq!(structurer.take_failed(), 0, "{line:?}");
    events
}

/// Nine patterns, of the kinds users write (literal prefixes, classes, alternations,
/// a case-insensitive one, one that can match empty text nowhere).
fn patterns() -> Vec<regex::Regex> {
    let texts = [
        r"ORD-[0-9]{6}",
        r"acct_[a-z]{4}\b",
        r"(?i)internal-[0-9]+",
        r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
        r"(foo|bar)baz",
        r"x{2,}y",
        r"[A-Z]{2}[0-9]{2}[A-Z0-9]{4}",
        r"\d+\.\d+\.\d+\.\d+",
        r"(?s)BEGIN.*?END",
    ];
    logship::sanitize::compile_patterns(&texts.map(String::from)).expect("they compile")
}

/// The last sanitizer built, with the secrets, `redact_name` and patterns it was built
/// from.
type Built = (Vec<String>, (bool, bool), Arc<Sanitizer>, Vec<String>);

thread_local! {
    static LAST: RefCell<Option<Built>> = const { RefCell::new(None) };
}

/// The sanitizer for `config`, and the names it skipped. Building one compiles its
/// automata (milliseconds); most inputs AFL tries change the line, not the secrets, so
/// the last one is reused when the secrets are the same.
fn built(config: Config, secrets: &[String]) -> (Arc<Sanitizer>, Vec<String>) {
    LAST.with_borrow_mut(|last| {
        let flags = (config.redact_name, !config.extra_patterns.is_empty());
        if let Some((s, f, sanitizer, skipped)) = last.as_ref() {
            if s == secrets && *f == flags {
                return (sanitizer.clone(), skipped.clone());
            }
        }
        let (sanitizer, skipped) = Sanitizer::new(config).expect("no patterns were configured");
        let sanitizer = Arc::new(sanitizer);
        *last = Some((secrets.to_vec(), flags, sanitizer.clone(), skipped.clone()));
        (sanitizer, skipped)
    })
}

/// Checks one event (a JSON object) as the sanitizer left it, `out`.
fn check(event: &str, out: &str, secrets: &[&str]) {
    let parsed: serde_json::Value = match serde_json::from_str(out) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        other => panic!("valid JSON in, not a JSON object out ({other:?}): {event:?} -> {out:?}"),
    };
    let mut strings = Vec::new();
    json_strings(&parsed, &mut strings);
    let texts = strings
        .iter()
        .map(String::as_str)
        .chain(json_bare_tokens(out));
    for text in texts {
        for piece in unredacted_pieces(text) {
            if let Some(secret) = secrets.iter().find(|s| piece.contains(**s)) {
                panic!("a loaded secret survived: {secret:?} in {piece:?}; {event:?} -> {out:?}");
            }
        }
    }
    // Each form below where it stands in the text ([`survivor`]), of each secret as
    // the sanitizer holds it (a trailing newline trimmed), and of its first 50 bytes
    // (Node prints no more of a `Buffer`; the needles spell the first 16).
    let held: Vec<(&str, &[u8])> = secrets
        .iter()
        .map(|s| {
            let s = s.trim_end_matches(['\n', '\r']);
            (s, s.as_bytes().get(..50).unwrap_or(s.as_bytes()))
        })
        .collect();
    // As hex, in either case: whole, and its head with a space between bytes.
    let hexed: Vec<String> = held
        .iter()
        .flat_map(|(s, head)| {
            let spaced: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
            [
                s.bytes().map(|b| format!("{b:02x}")).collect(),
                spaced.join(" "),
            ]
        })
        .collect();
    // Its base64 inside longer base64, at any of the three offsets (only at the first
    // for one over 256 bytes): the characters its bytes alone decide.
    let cores: Vec<String> = held
        .iter()
        .flat_map(|&(s, _)| {
            (0..if s.len() <= 256 { 3 } else { 1 })
                .flat_map(move |shift| [base64_core(s, shift, false), base64_core(s, shift, true)])
        })
        .filter(|c| c.len() >= 6)
        .collect();
    // As a list of its bytes in decimal (a Node `Buffer` in JSON, Rust's `{:?}`, Go's
    // `%v`), not glued to a longer number.
    let lists: Vec<String> = held
        .iter()
        .flat_map(|(s, _)| {
            let numbers: Vec<String> = s.bytes().map(|b| b.to_string()).collect();
            [numbers.join(","), numbers.join(", "), numbers.join(" ")]
        })
        .collect();
    for (how, forms, fold_case, whole_numbers) in [
        ("in base64", &cores, false, false),
        ("as a list of its bytes", &lists, false, true),
        ("as hex", &hexed, true, false),
    ] {
        if let Some((form, piece)) = survivor(out, forms, fold_case, whole_numbers) {
            panic!("a loaded secret survived {how}: {form:?} in {piece:?}; {event:?} -> {out:?}");
        }
    }
}

/// The base64 characters (standard or URL-safe) that `secret`'s bytes alone decide when
/// `shift` bytes (0 to 2) come before it.
fn base64_core(secret: &str, shift: usize, url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut bits = vec![false; 8 * shift];
    for b in secret.bytes() {
        bits.extend((0..8).rev().map(|i| b >> i & 1 == 1));
    }
    let first = (8 * shift).div_ceil(6);
    bits.chunks_exact(6)
        .skip(first)
        .map(|c| {
            let v = c.iter().fold(0usize, |v, &bit| v << 1 | usize::from(bit));
            char::from(alphabet[v])
        })
        .collect()
}

/// The first of `forms` standing in an unredacted piece of `out` (case folded with
/// `fold_case`) where an app wrote it: not where an escape sequence's digits spell part
/// of it (an app's control byte before hex digits, `\u0016` then `8756…`, as the agent
/// escaped it; the app's own text held no such hex) or a JSON escape decodes to it, and
/// with `whole_numbers` not glued to a longer number.
fn survivor<'f>(
    out: &str,
    forms: &'f [String],
    fold_case: bool,
    whole_numbers: bool,
) -> Option<(&'f str, String)> {
    for piece in unredacted_pieces(out) {
        let piece = if fold_case {
            piece.to_ascii_lowercase()
        } else {
            piece.to_owned()
        };
        let bytes = piece.as_bytes();
        for form in forms {
            for (at, _) in piece.match_indices(form.as_str()) {
                let digit =
                    |i: Option<usize>| i.and_then(|i| bytes.get(i)).is_some_and(u8::is_ascii_digit);
                let glued = digit(at.checked_sub(1)) || digit(Some(at + form.len()));
                let near = bytes
                    .get(at.saturating_sub(5)..at + form.len())
                    .unwrap_or_default();
                if !(near.contains(&b'\\') || whole_numbers && glued) {
                    return Some((form, piece));
                }
            }
        }
    }
    None
}
