//! Loaded secrets: the forms each value is searched in, and the decoders that let a
//! search match meaning rather than spelling.
//!
//! A value becomes needles: itself (a trailing newline trimmed), each substantial line
//! of a multi-line value, each string leaf of a value that is a JSON document and the
//! document minified, the password of a URL value; and base64 of each, standard and
//! URL-safe, padded or not, alone or inside longer base64 ([`base64_cores`]); and the
//! ones an app holds whole, as hex
//! ([`super::hex`]). Escaped and percent-encoded forms are not needles: the
//! text is decoded instead, so every escape style matches (`\u0026`, `\/`, `\u00e9`,
//! surrogate pairs, lower-case hex, `+` for a space) at any nesting level.
//!
//! Decoding: each JSON string literal holding a `\` (or a `%XX`) is decoded into a
//! buffer with, for each decoded byte, the source offset where its escape sequence
//! starts. A needle found in the buffer maps back to whole escape sequences of the
//! event, replaced by a label with no `"` or `\` — valid at any level. A buffer that
//! still holds escapes is decoded again, up to [`MAX_DECODE_DEPTH`] levels: each level
//! is one linear pass over a buffer no longer than its source.
//!
//! Not here: where replacements go or how they keep the JSON valid (the parent
//! module), the key and token detectors.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use base64::Engine;

use super::hex::HexNeedles;
use super::{Cut, Detector, KnownSecret, Mode, Scan, MAX_DECODE_DEPTH, MIN_SECRET_LEN, REDACTED};

/// Every form of every loaded secret, searched raw and in decoded text.
pub(super) struct Needles {
    /// The fast search (leftmost, non-overlapping, with a SIMD prefilter): tells
    /// where the needles are.
    first: Option<AhoCorasick>,
    /// aho-corasick's packed searcher (Teddy) of the same needles, asked first whether a
    /// buffer holds any at all: most texts hold none, and it answers with less set-up
    /// per call than `first` through its prefilter (a text of the corpus is 185 bytes;
    /// +3.4 % for the pipeline). `None` when the needles are too many for it (or its
    /// SIMD is not there): `first` alone, as before.
    any: Option<aho_corasick::packed::Searcher>,
    /// Overlapping search, run only in windows around what `first` found: two secrets
    /// that overlap in the text are both found, and their cuts merge into one covering
    /// the union.
    every: Option<AhoCorasick>,
    /// Per needle: its label (index into the sanitizer's labels).
    labels: Vec<u32>,
    /// Per needle: it is the part of a secret's base64 that the secret alone decides
    /// inside longer base64 ([`base64_cores`]): its match takes in the one character
    /// on each side that the secret's bits share with its neighbours'.
    core: Vec<bool>,
    /// Per needle: it holds a `"`, so it cannot stand raw inside a JSON string (and
    /// would cut across structure): in JSON text it is only searched decoded.
    quoted: Vec<bool>,
    /// The needles searched raw in JSON text (those without a `"`), for
    /// [`Needles::may_stand_in`]: a check made once per set of the agent's own fields,
    /// never per event.
    raw_in_json: Vec<Box<str>>,
    longest: usize,
    /// The longest raw needle as a list of its bytes (`104, 117, …`).
    longest_list: usize,
    /// Some needle holds a space: `+` in percent-encoded text may stand for it.
    plus_space: bool,
    /// Some needle holds a `\n` (a multi-line value, whole): it never stands within one
    /// line, and a text with a line end is searched for it ([`Needles::starts`]).
    pub(super) newline: bool,
    /// With such needles, a search for the others, over many lines at once
    /// ([`Needles::starts`]); `None` without them, or with only them.
    in_line: Option<AhoCorasick>,
    /// Every needle holds a `\n`.
    all_multi_line: bool,
    /// The secrets an app may print as bytes, in hex ([`super::hex`]).
    hex: Option<HexNeedles>,
}

impl Needles {
    pub(super) fn len(&self) -> usize {
        self.labels.len()
    }

    /// The longest form searched for, hex and lists of bytes included.
    pub(super) fn longest(&self) -> usize {
        self.longest
            .max(self.longest_list)
            .max(self.hex.as_ref().map_or(0, HexNeedles::longest))
    }

    /// Whether a needle that JSON text is searched for raw could stand in `text`, or,
    /// with `any_digit`, in any text made from it by changing its ASCII digits to other
    /// digits (a template of the agent's own fields with a time in it). Linear in the
    /// text's length times the needles' total.
    pub(super) fn may_stand_in(&self, text: &[u8], any_digit: bool) -> bool {
        let fits = |t: &u8, c: &u8| match any_digit && t.is_ascii_digit() {
            true => c.is_ascii_digit(),
            false => t == c,
        };
        self.raw_in_json.iter().any(|needle| {
            let needle = needle.as_bytes();
            !needle.is_empty()
                && text
                    .windows(needle.len())
                    .any(|w| w.iter().zip(needle).all(|(t, c)| fits(t, c)))
        })
    }

    /// The shortest hex form of a loaded secret ([`super::hex`]), when there is one: a
    /// text with no run of hex digits and spaces this long holds none.
    pub(super) fn hex_shortest(&self) -> Option<usize> {
        self.hex.as_ref().map(HexNeedles::shortest)
    }

    /// The loaded secrets printed as hex, and as lists of their bytes in decimal (each
    /// list decoded and searched for every needle), in the scan's text from its head:
    /// only inside the runs of hex digits, spaces and commas long enough to hold the
    /// shortest hex form ([`super::hex`]).
    pub(super) fn find_hex(&self, scan: &mut Scan) {
        let Some(hex) = &self.hex else {
            return;
        };
        let least = (MIN_SECRET_LEN, self.longest);
        hex.find(scan, |scan, run, at| {
            scan.work += run.len();
            super::hex::lists(run, at, least, |list| {
                self.search(&list.bytes, |a, b| list.source(a, b), false, scan);
            });
        });
    }

    /// Pushes to `starts` where each leftmost match in `buf` of the needles that fit
    /// in one line starts, in order (see [`super::Sanitizer::secret_starts`]). Every
    /// such needle counts, also those that JSON text is only searched for decoded:
    /// more lines are searched, none less. False when that search could not be built.
    pub(super) fn starts(&self, buf: &[u8], starts: &mut Vec<usize>) -> bool {
        let at = |m: aho_corasick::Match| m.start();
        match (self.newline, &self.in_line, &self.any, &self.first) {
            (true, Some(in_line), _, _) => starts.extend(in_line.find_iter(buf).map(at)),
            // None fits in a line, or the search could not be built.
            (true, None, ..) => return self.all_multi_line,
            (false, _, Some(any), _) => starts.extend(any.find_iter(buf).map(at)),
            (false, _, None, Some(first)) => starts.extend(first.find_iter(buf).map(at)),
            // Without an automaton `find_raw` finds nothing either.
            (false, _, None, None) => {}
        }
        true
    }

    /// Whether a needle that JSON text is searched for raw could stand in a text of one
    /// line that ends with `tail` and take in any of it: the needle is inside `tail`,
    /// or one of its ends (a suffix) begins `tail`. Linear in the needles' total times
    /// `tail`'s length.
    pub(super) fn may_reach_into(&self, tail: &[u8]) -> bool {
        self.raw_in_json.iter().any(|needle| {
            let needle = needle.as_bytes();
            if needle.contains(&b'\n') {
                // Not in a text of one line (see `starts`).
                return false;
            }
            !needle.is_empty() && tail.windows(needle.len()).any(|w| w == needle)
                || (1..needle.len())
                    .any(|from| needle.get(from..).is_some_and(|end| tail.starts_with(end)))
        })
    }

    /// Some needle searched raw in JSON text holds a `\`: the agent's escaping of an
    /// app's text could spell it where the text did not.
    pub(super) fn has_backslash(&self) -> bool {
        self.raw_in_json.iter().any(|n| n.contains('\\'))
    }

    /// The needles as they stand in the text, undecoded, around the scan's `skip`.
    pub(super) fn find_raw(&self, scan: &mut Scan) {
        let skip_quoted = scan.mode == Mode::Json;
        for (from, part) in scan.outside_skip() {
            if !part.is_empty() {
                self.search(
                    part.as_bytes(),
                    |a, b| (from + a, from + b),
                    skip_quoted,
                    scan,
                );
            }
        }
    }

    /// Every needle in `buf` (overlapping ones too), each match `a..b` mapped to its
    /// source range by `source(a, b)`. The fast automaton finds the leftmost matches; the
    /// overlapping one reads only windows from each of them to `longest` bytes past its
    /// end (merged when they touch), so the work stays linear: a needle overlapping a
    /// match starts inside it and ends within `longest` bytes of it.
    fn search(
        &self,
        buf: &[u8],
        source: impl Fn(usize, usize) -> (usize, usize),
        skip_quoted: bool,
        scan: &mut Scan,
    ) {
        let (Some(first), Some(every)) = (&self.first, &self.every) else {
            return;
        };
        scan.work += buf.len();
        if self.any.as_ref().is_some_and(|any| any.find(buf).is_none()) {
            return;
        }
        let mut window: Option<(usize, usize)> = None;
        let flush = |w: (usize, usize), scan: &mut Scan| {
            let Some(part) = buf.get(w.0..w.1) else {
                return;
            };
            scan.work += part.len();
            for m in every.find_overlapping_iter(part) {
                let i = m.pattern().as_usize();
                if skip_quoted && self.quoted.get(i).copied().unwrap_or(true) {
                    continue;
                }
                let (mut a, mut b) = (w.0 + m.start(), w.0 + m.end());
                if self.core.get(i).copied().unwrap_or(false) {
                    (a, b) = base64_neighbours(buf, a, b);
                }
                let (start, end) = source(a, b);
                scan.push(self.cut(i, start, end));
            }
        };
        for m in first.find_iter(buf) {
            let end = (m.end() + self.longest).min(buf.len());
            window = match window {
                Some((from, to)) if m.start() < to => Some((from, to.max(end))),
                Some(w) => {
                    flush(w, scan);
                    Some((m.start(), end))
                }
                None => Some((m.start(), end)),
            };
        }
        if let Some(w) = window {
            flush(w, scan);
        }
    }

    /// The needles in the decoded contents of the text's escaped or percent-encoded
    /// parts: each JSON string literal in an event, the whole line in plain text.
    pub(super) fn find_decoded(&self, scan: &mut Scan) {
        if self.first.is_none() {
            return;
        }
        let bytes = scan.bytes();
        // Offsets are kept as u32 to halve the maps; lines are capped far below.
        if u32::try_from(bytes.len()).is_err() {
            return;
        }
        // Before the scan's head, the agent's own text: searched as it is, not decoded.
        if !self.needs_decoding(bytes.get(scan.head..).unwrap_or_default()) {
            return;
        }
        match scan.mode {
            Mode::Text => self.search_tree(scan, 0, bytes.len()),
            Mode::Json => {
                let layout = scan.layout();
                for lit in &layout.lits {
                    let (from, to) = (lit.open + 1, lit.close.min(bytes.len()));
                    if from >= to || to < scan.head {
                        continue;
                    }
                    if lit.has_escape || self.has_percent(&bytes[from..to]) {
                        self.search_tree(scan, from, to);
                    }
                }
            }
        }
    }

    fn needs_decoding(&self, bytes: &[u8]) -> bool {
        memchr::memchr2(b'\\', b'%', bytes).is_some()
            || (self.plus_space && memchr::memchr(b'+', bytes).is_some())
    }

    /// Whether `buf` holds a `%XX` (or a `+` that may be a space).
    fn has_percent(&self, buf: &[u8]) -> bool {
        if self.plus_space && memchr::memchr(b'+', buf).is_some() {
            return true;
        }
        memchr::memchr_iter(b'%', buf).any(|i| {
            buf.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        })
    }

    /// Decodes `from..to` of the scan's text level by level and searches each level.
    /// JSON unescaping nests (a document inside a string inside a string); a
    /// percent-decoded buffer is searched but not decoded further.
    ///
    /// The levels are first decoded without their maps back to the source, only to
    /// learn whether any holds a needle: a map is four bytes per decoded byte, four
    /// fifths of the memory a level takes (tens of MiB, faulted in afresh, for a line of
    /// a few MiB dense with escapes). Text rarely holds a loaded secret in escaped form;
    /// when it does, the levels are decoded again with their maps to place the cuts.
    fn search_tree(&self, scan: &mut Scan, from: usize, to: usize) {
        let Some(first) = &self.first else {
            return;
        };
        if self.decode_levels(scan, from, to, false, |d, _| first.is_match(&d.buf)) {
            self.decode_levels(scan, from, to, true, |d, scan| {
                self.search(&d.buf, |a, b| d.source(a, b), false, scan);
                false
            });
        }
    }

    /// Decodes `from..to` of the scan's text level by level (with each level's map
    /// back to the source when `mapped`) and calls `visit` on every level that differs
    /// from its source, until it returns true. Returns whether it did.
    fn decode_levels<'t>(
        &self,
        scan: &mut Scan<'t>,
        from: usize,
        to: usize,
        mapped: bool,
        mut visit: impl FnMut(&Decoded, &mut Scan<'t>) -> bool,
    ) -> bool {
        let src = &scan.bytes()[from..to];
        let at = |j: usize| (from + j) as u32;
        let mut stack: Vec<(Decoded, usize, bool)> = Vec::new();
        // Buffers of finished levels, reused: a long line's levels would otherwise
        // each fault in fresh pages.
        let mut spare: Vec<Decoded> = Vec::new();
        if has_escape(src) {
            let d = Decoded::reuse(&mut spare, mapped);
            stack.push((unescape(src, at, d), 1, false));
        }
        if self.has_percent(src) {
            let d = Decoded::reuse(&mut spare, mapped);
            stack.push((percent_decode(src, at, self.plus_space, d), 1, true));
        }
        scan.work += src.len() * stack.len();
        while let Some((d, depth, percent)) = stack.pop() {
            // Nothing decoded: the parent's search saw it all.
            if d.changed {
                if visit(&d, scan) {
                    return true;
                }
                if !percent && depth < MAX_DECODE_DEPTH {
                    // Never called on an unmapped level: the decoders ask for source
                    // offsets only when they keep a map.
                    let map = |j: usize| d.map.get(j).copied().unwrap_or(0);
                    if has_escape(&d.buf) {
                        scan.work += d.buf.len();
                        let next = unescape(&d.buf, map, Decoded::reuse(&mut spare, mapped));
                        stack.push((next, depth + 1, false));
                    }
                    if self.has_percent(&d.buf) {
                        scan.work += d.buf.len();
                        let next = percent_decode(
                            &d.buf,
                            map,
                            self.plus_space,
                            Decoded::reuse(&mut spare, mapped),
                        );
                        stack.push((next, depth + 1, true));
                    }
                }
            }
            spare.push(d);
        }
        false
    }

    fn cut(&self, needle: usize, start: usize, end: usize) -> Cut {
        Cut {
            label: self.labels.get(needle).copied().unwrap_or(0),
            ..Cut::new(start, end, Detector::Secret)
        }
    }
}

/// A decoded buffer and where each of its bytes came from.
pub(super) struct Decoded {
    pub(super) buf: Vec<u8>,
    /// `map[i]`: the source offset where the escape sequence that produced byte `i`
    /// starts; `map[buf.len()]` is the source's end. Units are contiguous in the source,
    /// so one ends where the next begins. Empty when the level is decoded unmapped.
    pub(super) map: Vec<u32>,
    /// The map is kept.
    mapped: bool,
    /// Something was decoded: the buffer differs from its source.
    pub(super) changed: bool,
}

impl Decoded {
    /// An empty buffer, from `spare` when there is one, keeping its map if `mapped`.
    fn reuse(spare: &mut Vec<Decoded>, mapped: bool) -> Decoded {
        let mut d = spare.pop().unwrap_or(Decoded {
            buf: Vec::new(),
            map: Vec::new(),
            mapped,
            changed: false,
        });
        d.buf.clear();
        d.map.clear();
        d.mapped = mapped;
        d.changed = false;
        d
    }

    /// `at(i)` when the map is kept (the decoders' source offsets cost nothing
    /// otherwise).
    fn at(&self, at: &impl Fn(usize) -> u32, i: usize) -> u32 {
        if self.mapped {
            at(i)
        } else {
            0
        }
    }

    /// Appends `b`, decoded from the unit at source offset `from`.
    fn push(&mut self, b: u8, from: u32) {
        self.buf.push(b);
        if self.mapped {
            self.map.push(from);
        }
    }

    /// Appends `run`, bytes copied as they stand from source offsets `at(i..)`.
    fn copy(&mut self, run: &[u8], i: usize, at: impl Fn(usize) -> u32) {
        self.buf.extend_from_slice(run);
        if self.mapped {
            self.map.extend((i..i + run.len()).map(at));
        }
    }

    /// Room for decoding `n` source bytes (a unit never decodes longer than itself).
    fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
        if self.mapped {
            self.map.reserve(n + 1);
        }
    }

    /// Closes the map with the source's end, `at(n)`.
    fn end(&mut self, at: &impl Fn(usize) -> u32, n: usize) {
        if self.mapped {
            self.map.push(at(n));
        }
    }

    /// The source range of decoded bytes `a..b`: from the start of the first one's
    /// escape to the end of the last one's (a unit yields at most 4 bytes).
    pub(super) fn source(&self, a: usize, b: usize) -> (usize, usize) {
        let start = self.map.get(a).copied().unwrap_or(0);
        let last = self.map.get(b.saturating_sub(1)).copied().unwrap_or(start);
        let mut k = b;
        while k < self.buf.len() && self.map[k] == last {
            k += 1;
        }
        let end = self.map.get(k).copied().unwrap_or(last);
        (start as usize, (end as usize).max(start as usize))
    }
}

/// Undoes JSON string escapes: `\" \\ \/ \b \f \n \r \t \uXXXX` (surrogate pairs
/// joined, a lone surrogate becomes U+FFFD). Anything else — a backslash before another
/// byte, a truncated `\u12` — is kept as it stands. `at(j)` is the source offset of
/// byte `j` of `src` (`at(src.len())` its end).
pub(super) fn unescape(src: &[u8], at: impl Fn(usize) -> u32, mut d: Decoded) -> Decoded {
    d.reserve(src.len());
    let mut i = 0;
    while i < src.len() {
        // Plain runs are copied whole; only escapes are looked at one by one.
        let run = next_backslash(&src[i..]);
        if run > 0 {
            d.copy(&src[i..i + run], i, &at);
            i += run;
            continue;
        }
        let from = d.at(&at, i);
        let simple = match src.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            d.changed = true;
            d.push(c, from);
            i += 2;
            continue;
        }
        let Some(unit) = hex4(src, i) else {
            d.push(b'\\', from);
            i += 1;
            continue;
        };
        d.changed = true;
        i += 6;
        let c = if (0xD800..0xDC00).contains(&unit) {
            match hex4(src, i) {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    i += 6;
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                }
                _ => None,
            }
        } else {
            char::from_u32(unit)
        };
        let mut utf8 = [0u8; 4];
        for b in c
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .encode_utf8(&mut utf8)
            .bytes()
        {
            d.push(b, from);
        }
    }
    d.end(&at, src.len());
    d
}

/// Whether `buf` holds an escape [`unescape`] decodes (`\u00` followed by no hex is
/// not one: such a buffer needs no other level).
fn has_escape(buf: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', buf).any(|i| match buf.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => hex4(buf, i).is_some(),
        _ => false,
    })
}

/// Offset of the first `\` in `buf` (its length when none). Escapes often come close
/// together (`\"key\":\"value\"`): a short look by hand first, memchr for long runs.
fn next_backslash(buf: &[u8]) -> usize {
    const NEAR: usize = 16;
    let near = buf.len().min(NEAR);
    if let Some(k) = buf[..near].iter().position(|b| *b == b'\\') {
        return k;
    }
    memchr::memchr(b'\\', &buf[near..]).map_or(buf.len(), |k| near + k)
}

/// The code unit of a `\uXXXX` starting at `i`.
fn hex4(src: &[u8], i: usize) -> Option<u32> {
    if src.get(i..i + 2) != Some(b"\\u") {
        return None;
    }
    src.get(i + 2..i + 6)?
        .iter()
        .try_fold(0u32, |n, b| Some(n * 16 + hex_digit(*b)?))
}

fn hex_digit(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

/// Undoes percent-encoding (`%XX` in either case; `+` as a space when `plus`).
pub(super) fn percent_decode(
    src: &[u8],
    at: impl Fn(usize) -> u32,
    plus: bool,
    mut d: Decoded,
) -> Decoded {
    d.reserve(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        let hex = match src.get(i + 1..i + 3) {
            Some(&[h, l]) => hex_digit(h)
                .zip(hex_digit(l))
                .map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (b, hex) {
            (b'%', Some(x)) => {
                d.changed = true;
                d.push(x, d.at(&at, i));
                i += 3;
            }
            (b'+', _) if plus => {
                d.changed = true;
                d.push(b' ', d.at(&at, i));
                i += 1;
            }
            _ => {
                d.push(b, d.at(&at, i));
                i += 1;
            }
        }
    }
    d.end(&at, src.len());
    d
}

/// Builds the needles from the loaded secrets. Returns them, the labels (index 0 is
/// `[REDACTED]`), and the names of secrets too short to redact.
pub(super) fn build(
    secrets: &[KnownSecret],
    redact_name: bool,
) -> (Needles, Vec<String>, Vec<String>) {
    let mut labels = vec![REDACTED.to_owned()];
    let mut skipped: Vec<String> = Vec::new();
    let mut needles: Vec<String> = Vec::new();
    let mut needle_labels: Vec<u32> = Vec::new();
    let mut needle_cores: Vec<bool> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut hex_secrets: Vec<(String, u32)> = Vec::new();
    for secret in secrets {
        let value = trim_newline(&secret.value);
        if value.chars().count() < MIN_SECRET_LEN {
            if !value.is_empty() && !skipped.contains(&secret.name) {
                skipped.push(secret.name.clone());
            }
            continue;
        }
        let label = if redact_name {
            let l = label_for(&secret.name);
            match labels.iter().position(|x| *x == l) {
                Some(i) => i as u32,
                None => {
                    labels.push(l);
                    (labels.len() - 1) as u32
                }
            }
        } else {
            0
        };
        let (parts, short_password) = parts(value);
        if short_password && !skipped.contains(&secret.name) {
            skipped.push(secret.name.clone());
        }
        let mut forms: Vec<String> = Vec::new();
        let mut cores: Vec<String> = Vec::new();
        for part in &parts {
            forms.push(part.clone());
            cores.extend(base64_cores(part));
        }
        hex_secrets.extend(held_whole(value).into_iter().map(|w| (w, label)));
        if value != secret.value {
            // The value as stored, newline and all, in case the app encodes it so.
            cores.extend(base64_cores(&secret.value));
        }
        let forms = forms.into_iter().map(|f| (f, false));
        for (form, core) in forms.chain(cores.into_iter().map(|c| (c, true))) {
            if form.len() >= MIN_SECRET_LEN && !index.contains_key(&form) {
                index.insert(form.clone(), needles.len());
                needles.push(form);
                needle_labels.push(label);
                needle_cores.push(core);
            }
        }
    }
    let kind = automaton_kind(&needles);
    let automaton = |match_kind| {
        (!needles.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(match_kind)
                    .kind(kind)
                    .build(&needles)
                    .ok()
            })
            .flatten()
    };
    let (first, every) = (
        automaton(MatchKind::LeftmostLongest),
        automaton(MatchKind::Standard),
    );
    let longest_list = needles
        .iter()
        .zip(&needle_cores)
        .filter(|(_, core)| !**core)
        .map(|(n, _)| n.bytes().map(|b| b.to_string().len() + 2).sum::<usize>())
        .max()
        .map_or(0, |l| l.saturating_sub(2));
    let any = (!needles.is_empty())
        .then(|| {
            aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(&needles)
                .build()
        })
        .flatten();
    let built = Needles {
        first,
        any,
        every,
        labels: needle_labels,
        core: needle_cores,
        quoted: needles.iter().map(|n| n.contains('"')).collect(),
        raw_in_json: needles
            .iter()
            .filter(|n| !n.contains('"'))
            .map(|n| n.as_str().into())
            .collect(),
        longest: needles.iter().map(String::len).max().unwrap_or(0),
        longest_list,
        plus_space: needles.iter().any(|n| n.contains(' ')),
        newline: needles.iter().any(|n| n.contains('\n')),
        in_line: needles
            .iter()
            .any(|n| n.contains('\n'))
            .then(|| {
                let in_line: Vec<&String> = needles.iter().filter(|n| !n.contains('\n')).collect();
                (!in_line.is_empty())
                    .then(|| {
                        AhoCorasickBuilder::new()
                            .match_kind(MatchKind::LeftmostFirst)
                            .kind(automaton_kind(&needles))
                            .build(in_line)
                            .ok()
                    })
                    .flatten()
            })
            .flatten(),
        all_multi_line: needles.iter().all(|n| n.contains('\n')),
        hex: HexNeedles::build(&hex_secrets),
    };
    (built, labels, skipped)
}

/// Needles of at most this many bytes in all, none longer than [`DFA_MAX_NEEDLE`], may
/// be searched with a DFA (aho-corasick's own choice for up to 100 patterns); others
/// always with a contiguous NFA.
///
/// aho-corasick builds its DFA by following failure links for every state and byte
/// class, and a failure chain can be as long as a needle: a long needle that repeats
/// itself (a run of one character, the base64 of zeros) makes the build quadratic. A 60
/// KB secret of one repeated character took two minutes of CPU, in release, before the
/// app started; 16 KB, eight seconds. And the DFA's memory is the needles' length times
/// the alphabet times 4 bytes: 150 MB for 300 KB of needles. The NFA builds in linear
/// time and memory (60 KB of one character: 5 ms, 1.7 MB). Behind the prefilter (up to
/// 64 needles) both search alike; past it the DFA searches about twice as fast, which
/// is why the usual secrets, even a few dozen of them, keep it. Within these bounds the
/// worst build (needles of one repeated character, 8 KiB of them) takes about 0.08 s for
/// each of the two automatons.
pub(super) const DFA_MAX_BYTES: usize = 8 << 10;
pub(super) const DFA_MAX_NEEDLE: usize = 256;

/// The automaton for `needles` (see [`DFA_MAX_BYTES`]): `None` lets aho-corasick choose.
pub(super) fn automaton_kind(needles: &[String]) -> Option<AhoCorasickKind> {
    let total: usize = needles.iter().map(String::len).sum();
    let longest = needles.iter().map(String::len).max().unwrap_or(0);
    (total > DFA_MAX_BYTES || longest > DFA_MAX_NEEDLE).then_some(AhoCorasickKind::ContiguousNFA)
}

/// `[REDACTED:NAME]`, with every byte of the name outside `[A-Za-z0-9_.-]` replaced by
/// `_`: the label is inserted into JSON strings at any nesting level unescaped.
pub(super) fn label_for(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("[REDACTED:{safe}]")
}

/// A value read from a file ends in a newline the app never prints.
fn trim_newline(value: &str) -> &str {
    value.trim_end_matches(['\n', '\r'])
}

/// The secrets a value holds: itself, its substantial lines, a JSON document's string
/// leaves and minified forms, a URL's password. The flag: a URL password too short to
/// redact.
fn parts(value: &str) -> (Vec<String>, bool) {
    let mut parts = vec![value.to_owned()];
    if value.contains('\n') {
        for line in value.lines() {
            let line = line.trim();
            if substantial(line) {
                parts.push(line.to_owned());
            }
        }
    }
    let trimmed = value.trim();
    if trimmed.starts_with(['{', '[']) {
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(trimmed) {
            let mut leaves = Vec::new();
            string_leaves(&doc, &mut leaves);
            parts.extend(leaves);
            let minified = minify(trimmed, false);
            parts.push(minify(trimmed, true));
            parts.push(minified);
        }
    }
    let mut short = false;
    let mut passwords = Vec::new();
    for part in &parts {
        if let Some(pw) = url_password(part) {
            if pw.chars().count() < MIN_SECRET_LEN {
                short = true;
            } else {
                passwords.push(pw);
            }
        }
    }
    parts.extend(passwords);
    parts.retain(|p| p.chars().count() >= MIN_SECRET_LEN);
    parts.sort();
    parts.dedup();
    (parts, short)
}

/// The secrets a value holds that an app keeps whole in memory and may print as bytes
/// ([`super::hex`]): the value, a JSON document's string leaves, a URL's password; of
/// [`MIN_SECRET_LEN`] characters or more. Not the lines of a multi-line value (a PEM
/// key's) on their own: apps do not print those as bytes, and each would be two more
/// needles.
fn held_whole(value: &str) -> Vec<String> {
    let mut whole = vec![value.to_owned()];
    let trimmed = value.trim();
    if trimmed.starts_with(['{', '[']) {
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(trimmed) {
            string_leaves(&doc, &mut whole);
        }
    }
    let passwords: Vec<String> = whole.iter().filter_map(|w| url_password(w)).collect();
    whole.extend(passwords);
    whole.retain(|w| w.chars().count() >= MIN_SECRET_LEN);
    whole.sort();
    whole.dedup();
    whole
}

/// A line of a multi-line value worth redacting on its own: long enough, and not only
/// punctuation (`},`, `-----`).
fn substantial(line: &str) -> bool {
    line.chars().count() >= MIN_SECRET_LEN && line.chars().any(char::is_alphanumeric)
}

fn string_leaves(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.chars().count() >= MIN_SECRET_LEN => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| string_leaves(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| string_leaves(i, out)),
        _ => {}
    }
}

/// The JSON text without whitespace outside strings (keys kept in their order), or
/// with Python's `json.dumps` spacing (`", "` and `": "`) when `spaced`.
fn minify(doc: &str, spaced: bool) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut in_string = false;
    let mut escape = false;
    for c in doc.chars() {
        if in_string {
            out.push(c);
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            c if c.is_whitespace() => {}
            ',' | ':' if spaced => {
                out.push(c);
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// The password of `scheme://user:password@host…` (percent-decoded), when there is one.
pub(super) fn url_password(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (_user, password) = userinfo.split_once(':')?;
    let decoded = percent_encoding::percent_decode_str(password)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!decoded.is_empty()).then_some(decoded)
}

/// A secret's base64 (standard and URL-safe, padded or not), alone or inside longer
/// base64 (`AUTH PLAIN` of `\0user\0password` in an SMTP client's debug log, a
/// document encoded whole): at each of the three offsets a byte can start at, the
/// characters its bytes alone decide. A base64 character holds six bits, so the one
/// before such a part and the one after hold bits of the secret's first and last byte
/// with their neighbours' (or padding): a match takes them in
/// ([`base64_neighbours`]). A value over [`DFA_MAX_NEEDLE`] bytes (a document, a key)
/// only from a byte that starts three: what stands inside longer base64 at any offset
/// is a password or a token, and three offsets of a 64 KB document were 650 KB of
/// needles (a sanitizer that took 0.67 s to build instead of 0.3).
fn base64_cores(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut cores: Vec<String> = Vec::new();
    let shifts = if value.len() <= DFA_MAX_NEEDLE { 3 } else { 1 };
    for shift in 0..shifts {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(value.as_bytes());
        // The characters whose six bits all fall within the secret's bytes.
        let (first, last) = ((8 * shift).div_ceil(6), 8 * bytes.len() / 6);
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if let Some(core) = encoded.get(first..last) {
                if !cores.iter().any(|c| c == core) {
                    cores.push(core.to_owned());
                }
            }
        }
    }
    cores
}

/// `a..b` with the base64 character before it and the one after it (and the padding
/// after that) where `buf` has them: the characters a secret's bits share.
fn base64_neighbours(buf: &[u8], a: usize, b: usize) -> (usize, usize) {
    let base64 = |i: usize| {
        buf.get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"+/-_".contains(c))
    };
    let a = if a > 0 && base64(a - 1) { a - 1 } else { a };
    let mut b = if base64(b) { b + 1 } else { b };
    for _ in 0..2 {
        if buf.get(b) == Some(&b'=') {
            b += 1;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> (String, Vec<u32>) {
        let d = unescape(
            s.as_bytes(),
            |j| j as u32,
            Decoded::reuse(&mut Vec::new(), true),
        );
        (String::from_utf8_lossy(&d.buf).into_owned(), d.map)
    }

    #[test]
    fn unescape_every_style_and_maps_back() {
        let (text, map) = decode(r#"Pa\u0026ss\u003cword\u003e123\/x \"q\" \u00e9 \ud83d\ude00"#);
        assert_eq!(text, "Pa&ss<word>123/x \"q\" é 😀");
        // `&` came from `\u0026` at source offset 2.
        assert_eq!(map[2], 2);
        let d = unescape(
            br"ab\u0026cd",
            |j| j as u32,
            Decoded::reuse(&mut Vec::new(), true),
        );
        assert_eq!(d.source(1, 4), (1, 9));
        assert_eq!(d.source(2, 3), (2, 8));
    }

    #[test]
    fn unescape_never_panics_on_broken_escapes() {
        for s in [
            r"\",
            r"\u12",
            r"\ud800",
            r"\ud800\u0041",
            r"\udc00x",
            r"\x\y",
            "\\é",
            r"\u12é4",
        ] {
            let d = unescape(
                s.as_bytes(),
                |j| j as u32,
                Decoded::reuse(&mut Vec::new(), true),
            );
            assert_eq!(d.map.len(), d.buf.len() + 1, "{s}");
            for a in 0..d.buf.len() {
                for b in a + 1..=d.buf.len() {
                    let (s0, e0) = d.source(a, b);
                    assert!(s0 <= e0 && e0 <= s.len(), "{s}");
                }
            }
        }
        assert_eq!(decode(r"\ud800x").0, "\u{fffd}x");
        assert_eq!(decode(r"\u12").0, r"\u12");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512, failure_persistence: None, ..Default::default()
        })]

        /// The first, unmapped pass decodes exactly what the mapped one does.
        #[test]
        fn an_unmapped_level_decodes_as_a_mapped_one(
            s in r#"([a-z%+ ]|\\[u"\\/bfnrtx]|\\u[0-9a-fA-FdD]{0,4}|%[0-9a-fA-F]{0,2}){0,40}"#
        ) {
            for percent in [false, true] {
                let [mapped, unmapped] = [true, false].map(|keep| {
                    let d = Decoded::reuse(&mut Vec::new(), keep);
                    if percent {
                        percent_decode(s.as_bytes(), |j| j as u32, true, d)
                    } else {
                        unescape(s.as_bytes(), |j| j as u32, d)
                    }
                });
                proptest::prop_assert_eq!(&mapped.buf, &unmapped.buf);
                proptest::prop_assert_eq!(mapped.changed, unmapped.changed);
                proptest::prop_assert_eq!(mapped.map.len(), mapped.buf.len() + 1);
                proptest::prop_assert!(unmapped.map.is_empty());
            }
        }
    }

    #[test]
    fn percent_decoding_both_cases_and_plus() {
        let d = percent_decode(
            b"a%2fb%2Fc+d%zz%4",
            |j| j as u32,
            true,
            Decoded::reuse(&mut Vec::new(), true),
        );
        assert_eq!(d.buf, b"a/b/c d%zz%4");
        let d = percent_decode(
            b"c+d",
            |j| j as u32,
            false,
            Decoded::reuse(&mut Vec::new(), true),
        );
        assert_eq!(d.buf, b"c+d");
    }

    #[test]
    fn loaded_values_become_their_parts() {
        let (p, short) = parts("line-one-secret\n  line-two-secret \n},\n");
        assert!(!short);
        assert!(p.contains(&"line-one-secret".to_owned()));
        assert!(p.contains(&"line-two-secret".to_owned()));
        assert!(!p.iter().any(|x| x == "},"));
        let doc =
            "{\n  \"user\": \"svc\",\n  \"password\": \"Xy7-long-pass\",\n  \"port\": 5432\n}";
        let (p, _) = parts(doc);
        for want in [
            "Xy7-long-pass",
            r#"{"user":"svc","password":"Xy7-long-pass","port":5432}"#,
            r#"{"user": "svc", "password": "Xy7-long-pass", "port": 5432}"#,
            r#""password": "Xy7-long-pass","#,
        ] {
            assert!(p.contains(&want.to_owned()), "{want} in {p:?}");
        }
        assert!(
            !p.contains(&"svc".to_owned()),
            "short leaves are not secrets"
        );
        let (_, short) = parts("postgres://app:abc@db/x");
        assert!(short);
    }

    #[test]
    fn labels_are_safe_in_json() {
        assert_eq!(label_for("DB_URL.v-2"), "[REDACTED:DB_URL.v-2]");
        assert_eq!(label_for("a\"b\\c d✓"), "[REDACTED:a_b_c_d_]");
    }

    /// A secret of 60 KB of one character made aho-corasick's DFA build quadratic (two
    /// minutes of CPU before the app started): long needles get the NFA, the usual
    /// ones keep the DFA.
    #[test]
    fn long_needles_are_searched_by_an_nfa() {
        let kinds = |secrets: &[KnownSecret]| {
            let (needles, _, _) = build(secrets, false);
            [needles.first, needles.every].map(|a| a.as_ref().map(AhoCorasick::kind))
        };
        let small = KnownSecret::new("DB", "correct-horse-battery-staple");
        assert_eq!(
            kinds(std::slice::from_ref(&small)),
            [Some(AhoCorasickKind::DFA); 2]
        );
        let long = KnownSecret::new("BIG", "x".repeat(60_000));
        assert_eq!(
            kinds(&[small, long]),
            [Some(AhoCorasickKind::ContiguousNFA); 2]
        );
        let needles = |count: usize, len: usize| vec!["n".repeat(len); count];
        assert_eq!(automaton_kind(&needles(32, DFA_MAX_NEEDLE)), None);
        assert_eq!(
            automaton_kind(&needles(1, DFA_MAX_NEEDLE + 1)),
            Some(AhoCorasickKind::ContiguousNFA)
        );
        assert_eq!(
            automaton_kind(&needles(33, DFA_MAX_NEEDLE)),
            Some(AhoCorasickKind::ContiguousNFA)
        );
    }
}
