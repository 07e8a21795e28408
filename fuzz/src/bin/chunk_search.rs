//! The search for loaded secrets once per chunk of lines (`logship::capture::Vouch`):
//! any bytes, with any 0 to 3 loaded secrets, cut into lines as the capture cuts what
//! it reads; each line that ends in the chunk, valid UTF-8 (as the structure stage
//! takes the word only for such a line), is redacted as text and sanitized as an
//! event's JSON exactly as its own search would have it.
//!
//! Input: the first byte's low two bits say how many secrets there are (0 to 3); the
//! rest, split at NUL bytes, is the secrets, then the chunk.

use std::sync::Arc;

use deckhand_fuzz::{control_texts_rest, known_secrets};
use logship::capture::Vouch;
use logship::sanitize::{Config, Sanitizer};
use logship::structure::{Options, Stream, Structurer};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((_, secrets, chunk)) = control_texts_rest(data) else {
            return;
        };
        let config = Config {
            secrets: known_secrets(&secrets),
            ..Config::default()
        };
        let Ok((sanitizer, _)) = Sanitizer::new(config) else {
            return;
        };
        let sanitizer = Arc::new(sanitizer);
        let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
        structurer.redact_with(sanitizer.clone());
        let mut starts = Vec::new();
        let mut vouch = Vouch::new(&structurer, chunk, &mut starts);
        let mut at = 0;
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            let Some(line) = line.strip_suffix(b"\n") else {
                break;
            };
            let word = vouch.line(at, at + line.len());
            at += line.len() + 1;
            let Ok(text) = std::str::from_utf8(line) else {
                continue;
            };
            assert_eq!(
                sanitizer.redact_text_vouched(text, word),
                sanitizer.redact_text(text),
                "a line the chunk's search vouched for is redacted otherwise than alone"
            );
            assert_eq!(
                sanitizer.sanitize_after_vouched(text, 0, word),
                sanitizer.sanitize(text),
                "an event the chunk's search vouched for is sanitized otherwise than alone"
            );
        }
    });
}
