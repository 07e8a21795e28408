//! Loaded secrets as an app prints their bytes: hex, in either case, with or without a
//! space between bytes (`toString('hex')`, `bytes.hex()`, Go's `%x` and `% x`, Node's
//! `<Buffer 68 75 …>`, Java's and .NET's upper-case helpers).
//!
//! Hex forms are digits and six letters, which every timestamp and number in a log
//! has too: searched like the other forms, behind the same SIMD prefilter, they made it
//! stop at nearly every number (the pipeline at 184 MB/s against 335 on the corpus).
//! So they are searched only inside a *run* of hex digits and spaces long enough to
//! hold the shortest of them. Whether a text has such a run at all is told by the card
//! check's pass of 64-byte masks, which marks hex digits and spaces too
//! ([`super::cards::find`]); most texts have none (a request id or a timestamp is
//! shorter than a secret's hex), and only a text with one is read again here, once.
//!
//! Only secrets an app holds whole and short are searched so ([`HEX_MAX`]): the value
//! when it is one line, a JSON document's string leaves, a URL's password. Not here:
//! the other forms ([`super::secrets`]), where replacements go.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::secrets::{automaton_kind, DFA_MAX_NEEDLE};
use super::{Cut, Detector, Scan};

/// The longest secret, in bytes, searched for as hex: its spaced form (three characters
/// a byte, less one) stays within [`DFA_MAX_NEEDLE`].
pub(super) const HEX_MAX: usize = 64;
const _: () = assert!(3 * HEX_MAX - 1 <= DFA_MAX_NEEDLE);

/// The hex forms of the loaded secrets, and what each one redacts to.
pub(super) struct HexNeedles {
    /// Every form, lower case, matched in any ASCII case; overlapping matches too.
    automaton: AhoCorasick,
    /// Per needle: its label (index into the sanitizer's labels).
    labels: Vec<u32>,
    /// The shortest needle's length: no shorter run can hold one.
    shortest: usize,
    /// The longest needle's length.
    longest: usize,
}

impl HexNeedles {
    /// The needles of `secrets` (each with its label) of at most [`HEX_MAX`] bytes;
    /// `None` when there are none.
    pub(super) fn build(secrets: &[(String, u32)]) -> Option<HexNeedles> {
        let mut needles: Vec<String> = Vec::new();
        let mut labels = Vec::new();
        for (secret, label) in secrets {
            if secret.is_empty() || secret.len() > HEX_MAX {
                continue;
            }
            for form in forms(secret) {
                if !needles.contains(&form) {
                    needles.push(form);
                    labels.push(*label);
                }
            }
        }
        let shortest = needles.iter().map(String::len).min()?;
        let longest = needles.iter().map(String::len).max()?;
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .kind(automaton_kind(&needles))
            .build(&needles)
            .ok()?;
        Some(HexNeedles {
            automaton,
            labels,
            shortest,
            longest,
        })
    }

    /// The longest needle's length: how far back a text cut into windows must hold
    /// for one ([`super::Sanitizer::longest_secret_form`]).
    pub(super) fn longest(&self) -> usize {
        self.longest
    }

    /// The shortest needle's length: a text without a run this long holds none.
    pub(super) fn shortest(&self) -> usize {
        self.shortest
    }

    /// Every needle in the runs of the scan's text from its head long enough to hold
    /// one, as cuts: each pushed as it is found, so that overlapping ones fold into one
    /// (a run of one short secret's hex over and over is a match every two bytes).
    pub(super) fn find(&self, scan: &mut Scan) {
        let head = scan.head;
        let text = scan.bytes().get(head..).unwrap_or_default();
        scan.work += 2 * text.len();
        runs(text, self.shortest, |start, end| {
            let Some(run) = text.get(start..end) else {
                return;
            };
            for m in self.automaton.find_overlapping_iter(run) {
                let label = self
                    .labels
                    .get(m.pattern().as_usize())
                    .copied()
                    .unwrap_or(0);
                let (s, e) = (head + start + m.start(), head + start + m.end());
                scan.push(Cut {
                    label,
                    ..Cut::new(s, e, Detector::Secret)
                });
            }
        });
    }
}

/// A secret's bytes as hex: lower case, and lower case with a space between bytes (the
/// search ignores case).
pub(super) fn forms(secret: &str) -> [String; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let hex = |space: bool| {
        let mut out = String::with_capacity(secret.len() * 3);
        for (i, b) in secret.bytes().enumerate() {
            if space && i > 0 {
                out.push(' ');
            }
            for nibble in [b >> 4, b & 0xf] {
                out.push(char::from(DIGITS[usize::from(nibble)]));
            }
        }
        out
    };
    [hex(false), hex(true)]
}

/// What a run is made of: hex digits in either case, and spaces.
pub(super) fn in_run(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b' '
}

/// Calls `each(start, end)` for every run of hex digits and spaces of `min` bytes or
/// more in `bytes`, in order, in one pass.
pub(super) fn runs(bytes: &[u8], min: usize, mut each: impl FnMut(usize, usize)) {
    let mut i = 0;
    while i < bytes.len() {
        let Some(k) = bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| in_run(b)))
        else {
            break;
        };
        let start = i + k;
        let end = bytes
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| !in_run(b)))
            .map_or(bytes.len(), |n| start + n);
        if end - start >= min {
            each(start, end);
        }
        i = end + 1;
    }
}

/// Texts of hex digits, spaces and other bytes, for the property tests of runs.
#[cfg(test)]
pub(super) fn hexish_text(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![
            Just(b'a'),
            Just(b'F'),
            Just(b'7'),
            Just(b' '),
            Just(b'x'),
            any::<u8>()
        ],
        0..max,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every run of `min` or more, by the definition.
    fn every_run(bytes: &[u8], min: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, &b) in bytes.iter().chain([&0u8]).enumerate() {
            match (in_run(b) && i < bytes.len(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if i - s >= min {
                        out.push((s, i));
                    }
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn forms_are_the_bytes_in_hex() {
        assert_eq!(
            forms("hunter2é"),
            [
                "68756e74657232c3a9".to_owned(),
                "68 75 6e 74 65 72 32 c3 a9".to_owned()
            ]
        );
    }

    #[test]
    fn runs_are_hex_digits_and_spaces() {
        let text = b"request abcdef0123456789abcdef now, took 12 ms; <Buffer 68 75 6e 74> ok";
        let mut found = Vec::new();
        runs(text, 12, |s, e| found.push(&text[s..e]));
        assert_eq!(
            found,
            [
                b" abcdef0123456789abcdef ".as_slice(),
                b" 68 75 6e 74".as_slice()
            ]
        );
    }

    proptest! {
        /// The runs found are every run the definition finds, whatever the text.
        #[test]
        fn runs_are_exact(text in hexish_text(600), min in 1usize..40) {
            let mut found = Vec::new();
            runs(&text, min, |s, e| found.push((s, e)));
            prop_assert_eq!(found, every_run(&text, min));
        }
    }
}
