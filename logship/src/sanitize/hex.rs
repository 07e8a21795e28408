//! Loaded secrets as an app prints their bytes: hex, in either case, with or without a
//! space between bytes (`toString('hex')`, `bytes.hex()`, Go's `%x` and `% x`, Node's
//! `<Buffer 68 75 …>`, Java's and .NET's upper-case helpers), and lists of the bytes
//! in decimal (a Node `Buffer` as JSON, `"data":[104,117,…]`; Rust's `{:?}` of bytes,
//! Python's `list(b)` and Java's `Arrays.toString`, `[104, 117, …]`; Go's `%v`,
//! `[104 117 …]`).
//!
//! Hex forms are digits and six letters, which every timestamp and number in a log
//! has too: searched like the other forms, behind the same SIMD prefilter, they made it
//! stop at nearly every number (the pipeline at 184 MB/s against 335 on the corpus).
//! So they are searched only inside a *run* of hex digits, spaces and commas long
//! enough to hold the shortest of them. Whether a text has such a run at all is told
//! by the card check's pass of 64-byte masks, which marks hex digits, spaces and commas
//! too ([`super::cards::find`]); most texts have none (a request id or a timestamp is
//! shorter than a secret's hex), and only a text with one is read again here, once.
//!
//! A needle spells a secret's first [`HEX_HEAD`] bytes at most: 16 bytes of a secret
//! are a piece of it, and short needles keep the automaton small for many secrets (63
//! parameters: their sanitizer built in 3.4 ms; with 50-byte needles, 9.6). Where the
//! hex goes on after such a head, as much of it as the rest of the secret's length is
//! redacted with it ([`Tails`]): a longer secret printed whole is redacted whole, and as
//! Node prints it, its first 50 bytes (`<Buffer 2d 2d … ... 14 more bytes>`). Only what
//! an app holds whole has hex needles: the value, a JSON document's string leaves, a
//! URL's password.
//!
//! Lists are not needles: each list of numbers in the same runs is decoded to the bytes
//! it spells, which are searched for every needle of [`super::secrets`] ([`lists`]).
//! Not here: the other forms ([`super::secrets`]), where replacements go.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::secrets::{automaton_kind, DFA_MAX_NEEDLE};
use super::{Cut, Detector, Scan};

/// The most bytes of a secret a needle spells; fewer than Node's
/// `buffer.INSPECT_MAX_BYTES` (50), what `console.log` shows of a `Buffer`. Its spaced
/// form (three characters a byte, less one) stays within [`DFA_MAX_NEEDLE`].
pub(super) const HEX_HEAD: usize = 16;
const _: () = assert!(3 * HEX_HEAD - 1 <= DFA_MAX_NEEDLE && HEX_HEAD < 50);

/// One needle: what it redacts to, how it spells its bytes, and what of its secret it
/// does not spell.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Needle {
    /// Index into the sanitizer's labels.
    label: u32,
    /// Whether its bytes have a space between them.
    spaced: bool,
    /// The secret's bytes after the head it spells (0 for a secret of [`HEX_HEAD`] or
    /// fewer).
    rest: usize,
}

impl Needle {
    /// Characters a byte takes after the first: two, or three with the space.
    fn unit(self) -> usize {
        if self.spaced {
            3
        } else {
            2
        }
    }
}

/// The hex forms of the loaded secrets, and what each one redacts to.
pub(super) struct HexNeedles {
    /// Every form, lower case, matched in any ASCII case; overlapping matches too.
    automaton: AhoCorasick,
    /// Per needle of the automaton.
    needles: Vec<Needle>,
    /// The shortest needle's length: no shorter run can hold one.
    shortest: usize,
    /// The longest secret's whole hex, with spaces.
    longest: usize,
}

impl HexNeedles {
    /// The needles of `secrets` (each with its label); `None` when there are none.
    pub(super) fn build(secrets: &[(String, u32)]) -> Option<HexNeedles> {
        let mut forms_seen: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut needles: Vec<Needle> = Vec::new();
        for (secret, label) in secrets {
            let bytes = secret.as_bytes();
            let head = bytes.get(..HEX_HEAD).unwrap_or(bytes);
            if head.is_empty() {
                continue;
            }
            let rest = bytes.len() - head.len();
            for (form, spaced) in forms(head).into_iter().zip([false, true]) {
                match index.get(&form) {
                    // Two secrets with one head (two keys of one kind): the longer tail.
                    Some(&i) => {
                        if let Some(n) = needles.get_mut(i) {
                            n.rest = n.rest.max(rest);
                        }
                    }
                    None => {
                        index.insert(form.clone(), forms_seen.len());
                        forms_seen.push(form);
                        needles.push(Needle {
                            label: *label,
                            spaced,
                            rest,
                        });
                    }
                }
            }
        }
        let shortest = forms_seen.iter().map(String::len).min()?;
        let longest = forms_seen
            .iter()
            .zip(&needles)
            .map(|(f, n)| f.len() + n.rest * 3)
            .max()?;
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .kind(automaton_kind(&forms_seen))
            .build(&forms_seen)
            .ok()?;
        Some(HexNeedles {
            automaton,
            needles,
            shortest,
            longest,
        })
    }

    /// The longest secret's whole hex, with spaces: how far back a text cut into
    /// windows must hold for one ([`super::Sanitizer::longest_secret_form`]).
    pub(super) fn longest(&self) -> usize {
        self.longest
    }

    /// The shortest needle's length: a text without a run this long holds none.
    pub(super) fn shortest(&self) -> usize {
        self.shortest
    }

    /// Every needle in the runs of the scan's text from its head long enough to hold
    /// one, with the tail of a longer secret after it, as cuts: each pushed as it is
    /// found, so that overlapping ones fold into one (a run of one short secret's hex
    /// over and over is a match every two bytes).
    ///
    /// Each run is then handed to `also` with its offset in the scan's text (where the
    /// lists of bytes are searched: [`lists`]).
    pub(super) fn find(&self, scan: &mut Scan, mut also: impl FnMut(&mut Scan, &[u8], usize)) {
        let head = scan.head;
        let text = scan.bytes().get(head..).unwrap_or_default();
        scan.work += 2 * text.len();
        runs(text, self.shortest, |start, end| {
            let Some(run) = text.get(start..end) else {
                return;
            };
            let mut tails = Tails::default();
            for m in self.automaton.find_overlapping_iter(run) {
                let needle = self
                    .needles
                    .get(m.pattern().as_usize())
                    .copied()
                    .unwrap_or_default();
                let tail = tails.after(run, m.end(), needle);
                let (s, e) = (head + start + m.start(), head + start + m.end() + tail);
                scan.push(Cut {
                    label: needle.label,
                    ..Cut::new(s, e, Detector::Secret)
                });
            }
            scan.work += tails.reads;
            also(scan, run, head + start);
        });
    }
}

/// How far a longer secret's hex goes on after its head's match: bytes in the needle's
/// form (two hex digits, after a space when spaced), up to the secret's rest.
///
/// The automaton reports matches in the order of their ends, so each stretch of bytes
/// is read once: it is remembered per unit and phase (its start modulo the unit), and a
/// later match that ends inside it, in the same phase, ends where it ends. Linear in the
/// run, however many matches (a run of one secret's head repeated matches at every
/// byte).
#[derive(Default)]
struct Tails {
    /// Per unit and phase (`[2, 2, 3, 3, 3]`): from where a stretch was read, and where
    /// its bytes stop.
    known: [(usize, usize); 5],
    /// Bytes read, for the linearity test.
    reads: usize,
}

impl Tails {
    /// The length of the tail after a match of `needle` ending at `at` in `run`.
    fn after(&mut self, run: &[u8], at: usize, needle: Needle) -> usize {
        if needle.rest == 0 {
            return 0;
        }
        let unit = needle.unit();
        let slot = if needle.spaced { 2 + at % 3 } else { at % 2 };
        let Some(known) = self.known.get_mut(slot) else {
            return 0;
        };
        let stop = if known.0 <= at && at < known.1 {
            known.1
        } else {
            let mut i = at;
            while is_byte(run, i, needle.spaced) {
                i += unit;
            }
            self.reads += i - at + unit;
            *known = (at, i);
            i
        };
        ((stop - at) / unit).min(needle.rest) * unit
    }
}

/// The fewest bytes of a list handed over at once ([`lists`]).
const LIST_WINDOW: usize = 4096;

/// A list of decimal numbers from 0 to 255 in a text, as the bytes it spells: a Node
/// `Buffer` in JSON (`104,117,…`), Rust's `{:?}` of bytes, Python's `list(b)` and
/// Java's `Arrays.toString` (`104, 117, …`), Go's `%v` (`104 117 …`).
pub(super) struct List {
    /// The bytes.
    pub(super) bytes: Vec<u8>,
    /// Per byte: where its number starts and ends in the text.
    spans: Vec<(usize, usize)>,
}

impl List {
    /// Hands the list to `each` when it has `min` bytes or more, and keeps its last
    /// `keep` bytes.
    fn hand_over(&mut self, min: usize, keep: usize, each: &mut impl FnMut(&List)) {
        if self.bytes.len() >= min {
            each(self);
        }
        let done = self.bytes.len() - keep.min(self.bytes.len());
        self.bytes.drain(..done);
        self.spans.drain(..done);
    }

    /// The text a match `a..b` of the bytes stands in: its numbers, from the first's
    /// start to the last's end.
    pub(super) fn source(&self, a: usize, b: usize) -> (usize, usize) {
        let start = self.spans.get(a).map_or(0, |s| s.0);
        let end = b
            .checked_sub(1)
            .and_then(|last| self.spans.get(last))
            .map_or(start, |s| s.1);
        (start, end.max(start))
    }
}

/// Calls `each` for every list of `min` numbers or more in `run` (from `offset` in the
/// scan's text): numbers of one to three digits up to 255 without a leading zero, one
/// after another with `,`, `, ` or a space between them. One pass.
///
/// A long list is handed over in windows of [`LIST_WINDOW`] bytes or more, each after
/// the first beginning with the last `keep` bytes of the one before (the longest
/// needle: none is cut in two), so that a line of numbers holds no more than a window.
pub(super) fn lists(
    run: &[u8],
    offset: usize,
    (min, keep): (usize, usize),
    mut each: impl FnMut(&List),
) {
    let window = keep.saturating_mul(2).max(LIST_WINDOW);
    let mut list = List {
        bytes: Vec::new(),
        spans: Vec::new(),
    };
    // Where a number goes on the list: right after a separator that follows one.
    let mut next: Option<usize> = None;
    let mut i = 0;
    while i < run.len() {
        let rest = run.get(i..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if next != Some(i) {
            list.hand_over(min, 0, &mut each);
        }
        next = None;
        if digits == 0 {
            i += 1;
            continue;
        }
        let value = rest
            .iter()
            .take(digits.min(4))
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        i += digits;
        // As apps print bytes: no leading zero.
        if digits > 3 || value > 255 || (digits > 1 && rest.first() == Some(&b'0')) {
            continue;
        }
        let at = offset + i;
        list.bytes.push(value as u8);
        list.spans.push((at - digits, at));
        if list.bytes.len() >= window {
            list.hand_over(min, keep, &mut each);
        }
        next = match run.get(i..) {
            Some([b',', b' ', d, ..]) if d.is_ascii_digit() => Some(i + 2),
            Some([b',' | b' ', d, ..]) if d.is_ascii_digit() => Some(i + 1),
            _ => None,
        };
        if let Some(n) = next {
            i = n;
        }
    }
    list.hand_over(min, 0, &mut each);
}

/// Whether `run` holds one byte in hex at `i` (after a space when `spaced`).
fn is_byte(run: &[u8], i: usize, spaced: bool) -> bool {
    match (spaced, run.get(i..)) {
        (false, Some([h, l, ..])) => h.is_ascii_hexdigit() && l.is_ascii_hexdigit(),
        (true, Some([b' ', h, l, ..])) => h.is_ascii_hexdigit() && l.is_ascii_hexdigit(),
        _ => false,
    }
}

/// Bytes as hex: lower case, and lower case with a space between bytes (the search
/// ignores case).
pub(super) fn forms(bytes: &[u8]) -> [String; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let hex = |space: bool| {
        let mut out = String::with_capacity(bytes.len() * 3);
        for (i, b) in bytes.iter().enumerate() {
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

/// What a run is made of: hex digits in either case, spaces and commas.
pub(super) fn in_run(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b' ' || b == b','
}

/// Calls `each(start, end)` for every run of hex digits, spaces and commas of `min`
/// bytes or more in `bytes`, in order, in one pass.
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
            Just(b','),
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
            forms("hunter2é".as_bytes()),
            [
                "68756e74657232c3a9".to_owned(),
                "68 75 6e 74 65 72 32 c3 a9".to_owned()
            ]
        );
    }

    #[test]
    fn runs_are_hex_digits_spaces_and_commas() {
        let text = b"request abcdef0123456789abcdef now, took 12 ms; <Buffer 68 75 6e 74> ok \
            {\"data\":[104,117,110,116,101,114]}";
        let mut found = Vec::new();
        runs(text, 12, |s, e| found.push(&text[s..e]));
        assert_eq!(
            found,
            [
                b" abcdef0123456789abcdef ".as_slice(),
                b" 68 75 6e 74".as_slice(),
                b"104,117,110,116,101,114".as_slice()
            ]
        );
    }

    /// The lists in `text`, as their bytes and the text each spans.
    fn lists_of(text: &[u8], min: usize) -> Vec<(Vec<u8>, &[u8])> {
        let mut found = Vec::new();
        lists(text, 0, (min, 0), |l| {
            let (s, e) = l.source(0, l.bytes.len());
            found.push((l.bytes.clone(), &text[s..e]));
        });
        found
    }

    #[test]
    fn lists_are_the_numbers_of_bytes_with_their_separators() {
        let text = b"[104,117,110] [104, 117, 110] [104 117 110] [1 2,3, 4]";
        let want: [&[u8]; 4] = [
            b"104,117,110",
            b"104, 117, 110",
            b"104 117 110",
            b"1 2,3, 4",
        ];
        let found = lists_of(text, 3);
        assert_eq!(found.len(), 4, "{found:?}");
        for ((bytes, span), want) in found.iter().zip(want) {
            assert_eq!(*span, want);
            assert!(bytes == b"hun" || bytes == &[1, 2, 3, 4]);
        }
        // A number over 255, of four digits, or two separators end a list; a short one
        // is not reported.
        let found = lists_of(b"1,2,3,256,4,5,6,7 0104,1,2,3,4  5,6", 3);
        let spans: Vec<&[u8]> = found.iter().map(|(_, s)| *s).collect();
        assert_eq!(spans, [b"1,2,3".as_slice(), b"4,5,6,7", b"1,2,3,4"]);
    }

    /// The tail after a match, by its definition: bytes in the needle's form from the
    /// match's end, as many as there are, at most the rest.
    fn tail_by_definition(run: &[u8], at: usize, needle: Needle) -> usize {
        let hex = |i: usize| run.get(i).is_some_and(u8::is_ascii_hexdigit);
        let mut bytes = 0;
        let mut i = at;
        while bytes < needle.rest {
            let space = needle.spaced && run.get(i) == Some(&b' ');
            let d = usize::from(needle.spaced);
            if (needle.spaced && !space) || !hex(i + d) || !hex(i + d + 1) {
                break;
            }
            bytes += 1;
            i += needle.unit();
        }
        bytes * needle.unit()
    }

    #[test]
    fn a_longer_secrets_tail_is_its_bytes_only() {
        let run = b"6162 63 64 65ff";
        let spaced = |rest| Needle {
            spaced: true,
            rest,
            ..Needle::default()
        };
        assert_eq!(Tails::default().after(run, 4, spaced(9)), 9);
        assert_eq!(Tails::default().after(run, 4, spaced(2)), 6);
        assert_eq!(Tails::default().after(run, 4, spaced(0)), 0);
        let together = Needle {
            rest: 9,
            ..Needle::default()
        };
        assert_eq!(Tails::default().after(run, 0, together), 4);
        assert_eq!(Tails::default().after(run, 3, together), 0);
        assert_eq!(Tails::default().after(run, 13, together), 2);
    }

    proptest! {
        /// Whatever the text, every list found is numbers of its bytes in order, each
        /// from 0 to 255 and one separator apart; and a list written between other
        /// words is found whole.
        #[test]
        fn lists_are_exact(
            text in hexish_text(300),
            bytes in proptest::collection::vec(any::<u8>(), 6..40),
            sep in prop_oneof![Just(","), Just(", "), Just(" ")],
        ) {
            let mut found = Vec::new();
            lists(&text, 0, (2, 0), |l| found.push((l.bytes.clone(), l.spans.clone())));
            for (values, spans) in &found {
                prop_assert_eq!(values.len(), spans.len());
                for (v, &(s, e)) in values.iter().zip(spans) {
                    let number = v.to_string();
                    prop_assert_eq!(&text[s..e], number.as_bytes());
                }
                for pair in spans.windows(2) {
                    let between = &text[pair[0].1..pair[1].0];
                    prop_assert!(matches!(between, b"," | b", " | b" "), "{:?}", between);
                }
            }
            let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
            let line = format!("key=[{}] end", numbers.join(sep));
            let found = lists_of(line.as_bytes(), 6);
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(&found[0].0, &bytes);
        }

        /// The tails found for matches in the order of their ends are every tail the
        /// definition finds, whatever the text, however the needles mix.
        #[test]
        fn tails_are_exact(
            run in hexish_text(300),
            mut ends in proptest::collection::vec(0usize..320, 0..40),
            needles in proptest::collection::vec((any::<bool>(), 0usize..40), 40),
        ) {
            ends.sort_unstable();
            let mut tails = Tails::default();
            for (at, (spaced, rest)) in ends.into_iter().zip(needles) {
                let needle = Needle { spaced, rest, ..Needle::default() };
                prop_assert_eq!(
                    tails.after(&run, at, needle),
                    tail_by_definition(&run, at, needle)
                );
            }
        }

        /// The runs found are every run the definition finds, whatever the text.
        #[test]
        fn runs_are_exact(text in hexish_text(600), min in 1usize..40) {
            let mut found = Vec::new();
            runs(&text, min, |s, e| found.push((s, e)));
            prop_assert_eq!(found, every_run(&text, min));
        }
    }
}
