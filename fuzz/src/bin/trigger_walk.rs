//! The walk of the trigger automaton (`logship::sanitize`): over any bytes, with the
//! built-in trigger words and with up to three extra key names taken from the input, the
//! walk in lanes, from the AVX2 prefilter's marks for every piece, and as it chooses
//! between them, reports the matches a walk of one byte at a time reports, in the same
//! order and states. A missed mark would be a trigger word not seen: a key's value or a
//! token shipped.
//!
//! Input: the first byte's low two bits say how many extra key names there are (0 to
//! 3); the rest, split at NUL bytes, is the names (within the settings' limit of
//! `MAX_REDACT_KEY_BYTES` each, as the agent takes them), then the text.

use deckhand_fuzz::control_texts_rest;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((_, keys, text)) = control_texts_rest(data) else {
            return;
        };
        // Key names the settings refuse never reach the automaton (a 34 KB name made its
        // build take seconds: that is why the settings cap them).
        if keys
            .iter()
            .any(|k| k.len() > logship::config::MAX_REDACT_KEY_BYTES)
        {
            return;
        }
        // `None`: key names the sanitizer refuses (as the agent's start does).
        if let Some(agree) = logship::sanitize::walks_agree(text, &keys) {
            assert!(agree, "the walks differ over {text:?} with {keys:?}");
        }
    });
}
