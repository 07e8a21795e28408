//! JSON text as the pipeline writes and checks it, without building a value: a string
//! escaped the way every event writes one ([`push_json_string`]), the size of that
//! escaped text without writing it ([`json_string_len`], [`json_char_len`]), and a
//! reading of any value that checks all of it the way `serde_json` would (`Checked`,
//! `Scalar`), and a quick reader that says yes at once to the plain objects most JSON
//! log lines are ([`quick_object`]).
//!
//! Escaping is on the hot path (the message of every text event, the data of every
//! part): SSE2 compares on x86-64 (a chunked, vectorizable scan elsewhere) and a table
//! find the few bytes that need it.
//!
//! Not here: which lines are JSON objects and what their fields mean (`structure`),
//! finding secrets inside JSON text (`sanitize` walks the text itself), cutting an
//! event into parts (`batch`).

use std::borrow::Cow;
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
///
/// The text is read 16 bytes at a time ([`special_mask`]), the last bytes as one block
/// padded with blanks; in a block that holds special bytes each is handled in turn from
/// the block's mask: the run before it is copied, then its escape; a quote or a
/// backslash is its own escape's second byte, copied with the next run. Quote-dense
/// text (an event's JSON as a PutLogEvents message, a quote every dozen bytes) goes to
/// bytes ([`push_json_string_bytes`]), which write such blocks whole.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_json_text(out, s);
    out.push('"');
}

/// Appends `s` escaped as [`push_json_string`] does, without the quotes: the inside of
/// a JSON string that is written in pieces.
pub fn push_json_text(out: &mut String, s: &str) {
    escape_into(out, s);
}

/// Appends `s` as a JSON string to bytes, as [`push_json_string`] writes it: the
/// PutLogEvents body, whose messages are events' JSON, a quote every dozen bytes. A
/// block of 16 whose special bytes are all quotes and backslashes (most of such text)
/// is written with them escaped in one pass over it, not a copy and two pushes each.
pub fn push_json_string_bytes(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Where escaped text goes: an event's `String`, or the bytes of a request body.
trait Escaped {
    fn push_str(&mut self, s: &str);
    /// Writes `s[from..to]`: into bytes as bytes, since a block written whole
    /// ([`Escaped::push_run_and_block`]) may end inside a character.
    fn push_run(&mut self, s: &str, from: usize, to: usize);
    /// Writes `run` (no special byte in it) and then `block` (whose special bytes are
    /// all quotes and backslashes, the bits of `mask`) escaped, if this output can take
    /// bytes cut anywhere ([`push_escaped_block`]); a `String` says no, its text is cut
    /// at chars.
    fn push_run_and_block(&mut self, run: &[u8], block: &[u8; BLOCK], mask: u32) -> bool;
}

impl Escaped for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    #[inline(always)]
    fn push_run(&mut self, s: &str, from: usize, to: usize) {
        String::push_str(self, &s[from..to]);
    }
    fn push_run_and_block(&mut self, _: &[u8], _: &[u8; BLOCK], _: u32) -> bool {
        false
    }
}

impl Escaped for Vec<u8> {
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    #[inline(always)]
    fn push_run(&mut self, s: &str, from: usize, to: usize) {
        self.extend_from_slice(&s.as_bytes()[from..to]);
    }
    #[inline(always)]
    fn push_run_and_block(&mut self, run: &[u8], block: &[u8; BLOCK], mask: u32) -> bool {
        self.extend_from_slice(run);
        push_escaped_block(self, block, mask);
        true
    }
}

/// The escaper of [`push_json_text`] and [`push_json_string_bytes`]: 16 bytes at a time
/// ([`special_masks`]), the runs without a special byte copied whole when one ends.
fn escape_into<O: Escaped>(out: &mut O, s: &str) {
    let bytes = s.as_bytes();
    let mut copied = 0;
    let mut base = 0;
    while let Some(block) = block_at(bytes, base) {
        let (mut mask, plain) = special_masks(block);
        if mask != 0
            && mask == plain
            && copied <= base
            && out.push_run_and_block(&bytes[copied..base], block, mask)
        {
            copied = base + BLOCK;
            mask = 0;
        }
        while mask != 0 {
            let i = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            escape_at(out, s, &mut copied, i);
        }
        base += BLOCK;
    }
    // The last bytes, fewer than 16, tested as one block padded with blanks.
    let mut mask = special_mask(&padded(bytes, base));
    while mask != 0 {
        let i = base + mask.trailing_zeros() as usize;
        mask &= mask - 1;
        escape_at(out, s, &mut copied, i);
    }
    out.push_run(s, copied, s.len());
}

/// The first `N` bytes of `buf` from `at`, blanks where it has fewer: the last bytes of
/// a text as one block to test (a blank is neither special nor a stop).
#[inline(always)]
fn padded<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut block = [b' '; N];
    let rest = buf.get(at..).unwrap_or_default();
    let n = rest.len().min(N);
    block[..n].copy_from_slice(&rest[..n]);
    block
}

/// Writes `block`, whose special bytes are all quotes and backslashes (the bits of
/// `mask`), with a backslash before each. The escaped block is put together on the
/// stack, each piece before a special byte copied as 16 bytes (a length known when
/// compiled, no call) and the next piece written over its excess, then appended in one
/// copy of 32.
#[inline(always)]
fn push_escaped_block(out: &mut Vec<u8>, block: &[u8; BLOCK], mut mask: u32) {
    let mut src = [0u8; 2 * BLOCK];
    src[..BLOCK].copy_from_slice(block);
    let mut buf = [0u8; 3 * BLOCK];
    let (mut from, mut len) = (0, 0);
    while mask != 0 {
        let k = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        copy_piece(&mut buf, len, &src, from);
        len += k.saturating_sub(from);
        if let Some(b) = buf.get_mut(len) {
            *b = b'\\';
        }
        len += 1;
        from = k;
    }
    copy_piece(&mut buf, len, &src, from);
    len += BLOCK.saturating_sub(from);
    // At most 32 bytes: appended as 32 (a copy of a known length) and cut back.
    let start = out.len();
    out.extend_from_slice(&buf[..2 * BLOCK]);
    out.truncate(start + len.min(2 * BLOCK));
}

/// Copies the 16 bytes of `src` from `from` to `buf` at `at`, if both have them.
#[inline(always)]
fn copy_piece(buf: &mut [u8; 3 * BLOCK], at: usize, src: &[u8; 2 * BLOCK], from: usize) {
    if let (Some(to), Some(piece)) = (buf.get_mut(at..at + BLOCK), src.get(from..from + BLOCK)) {
        to.copy_from_slice(piece);
    }
}

/// Escapes the special byte at `i` of `s` (a [`SPECIAL`] byte), after copying what
/// lies between `copied` and it; `copied` moves past what was written. A byte already
/// written (the tail of a U+FFFD) and a 0xEF that does not start U+FFFD are left for
/// the next copy.
///
/// `i` is a char boundary (a special byte is ASCII, or 0xEF, a lead byte). So is
/// `copied` into a `String`: 0, the end, a special byte's position or just past its
/// whole char; into bytes it may also be a written block's end, inside a char.
#[inline(always)]
fn escape_at<O: Escaped>(out: &mut O, s: &str, copied: &mut usize, i: usize) {
    let bytes = s.as_bytes();
    if i < *copied {
        return;
    }
    let b = bytes[i];
    let short = match b {
        // The byte itself is the escape's second: it is copied with the next run.
        b'"' | b'\\' => {
            out.push_run(s, *copied, i);
            out.push_str("\\");
            *copied = i;
            return;
        }
        b'\n' => "\\n",
        b'\r' => "\\r",
        b'\t' => "\\t",
        0xEF if bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => {
            out.push_run(s, *copied, i);
            out.push_str("\\ufffd");
            *copied = i + 3;
            return;
        }
        0xEF => return,
        _ => {
            out.push_run(s, *copied, i);
            out.push_str("\\u00");
            let hex = [HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]];
            out.push_str(std::str::from_utf8(&hex).unwrap_or("00"));
            *copied = i + 1;
            return;
        }
    };
    out.push_run(s, *copied, i);
    out.push_str(short);
    *copied = i + 1;
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

/// The bytes [`special_mask`] tests at once.
const BLOCK: usize = 16;

/// Offset of the first byte of `buf` in [`SPECIAL`]. Most text has none: whole
/// 16-byte blocks are tested at once ([`special_mask`]), then the tail one byte at a
/// time.
fn next_special(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(block) = block_at(buf, at) {
        let mask = special_mask(block);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += BLOCK;
    }
    special_from(buf, at)
}

/// The first [`SPECIAL`] byte of `buf` at or after `at`, looked for one at a time.
fn special_from(buf: &[u8], at: usize) -> Option<usize> {
    buf.get(at..)?
        .iter()
        .position(|b| SPECIAL[*b as usize])
        .map(|k| at + k)
}

/// The [`BLOCK`] bytes of `buf` from `at`, if it has that many.
fn block_at(buf: &[u8], at: usize) -> Option<&[u8; BLOCK]> {
    buf.get(at..at.checked_add(BLOCK)?)?.try_into().ok()
}

/// Bit `k` set: byte `k` of `block` is in [`SPECIAL`]: a [`stop_mask`] byte, DEL or
/// 0xEF.
#[inline(always)]
fn special_mask(block: &[u8; BLOCK]) -> u32 {
    special_masks(block).0
}

/// [`special_mask`] of `block`, and the bits of its quotes and backslashes (the special
/// bytes escaped as a backslash and themselves). On x86-64 by SSE2 compares and
/// `movemask`; elsewhere [`mask_where`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_masks(block: &[u8; BLOCK]) -> (u32, u32) {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let [del, ef, quote, backslash] =
        [0x7f, 0xEF, b'"', b'\\'].map(|b: u8| set_splat_i8_m128i(b as i8));
    let v = load_unaligned_m128i(block);
    let hit = bitor_m128i(
        stop_hits(v),
        bitor_m128i(cmp_eq_mask_i8_m128i(v, del), cmp_eq_mask_i8_m128i(v, ef)),
    );
    let plain = bitor_m128i(
        cmp_eq_mask_i8_m128i(v, quote),
        cmp_eq_mask_i8_m128i(v, backslash),
    );
    (
        move_mask_i8_m128i(hit) as u32,
        move_mask_i8_m128i(plain) as u32,
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn special_masks(block: &[u8; BLOCK]) -> (u32, u32) {
    (
        mask_where(block, is_special),
        mask_where(block, |b| b == b'"' || b == b'\\'),
    )
}

/// Bit `k` set: byte `k` of `block` passes `test`: [`special_mask`] and [`stop_mask`]
/// in plain Rust (tested against the SSE2 ones).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn mask_where(block: &[u8; BLOCK], test: fn(u8) -> bool) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (k, &b)| mask | (u32::from(test(b)) << k))
}

/// Bit `k` set: byte `k` of `block` is a quote, a backslash or a control character
/// (where a string [`quick_object`] reads ends, or is left to `serde_json`).
fn stops(block: &[u8; 64]) -> u64 {
    let mut mask = 0;
    for (k, sixteen) in block.chunks_exact(BLOCK).enumerate() {
        if let Ok(sixteen) = <&[u8; BLOCK]>::try_from(sixteen) {
            mask |= u64::from(stop_mask(sixteen)) << (BLOCK * k);
        }
    }
    mask
}

/// [`stops`] of the last bytes of a text, fewer than 64: the blanks after them stop
/// nothing. Apart, so that the reader's calls keep a small frame.
#[cold]
#[inline(never)]
fn stops_of_tail(rest: &[u8]) -> u64 {
    stops(&padded(rest, 0))
}

/// [`stops`] of 16 bytes. On x86-64 by SSE2 compares and `movemask`; elsewhere
/// [`mask_where`].
#[cfg(target_arch = "x86_64")]
fn stop_mask(block: &[u8; BLOCK]) -> u32 {
    use safe_arch::{load_unaligned_m128i, move_mask_i8_m128i};
    move_mask_i8_m128i(stop_hits(load_unaligned_m128i(block))) as u32
}

/// The bytes of `v` that are a quote, a backslash or a control character, as a lane
/// of ones each.
#[cfg(target_arch = "x86_64")]
fn stop_hits(v: safe_arch::m128i) -> safe_arch::m128i {
    use safe_arch::{
        add_i8_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, set_splat_i8_m128i,
    };
    // `b + 0x80` as a signed byte is below `0x80 + 0x20` for a control character only.
    let [shift, control, quote, backslash] =
        [0x80, 0xA0, b'"', b'\\'].map(|b: u8| set_splat_i8_m128i(b as i8));
    bitor_m128i(
        cmp_lt_mask_i8_m128i(add_i8_m128i(v, shift), control),
        bitor_m128i(
            cmp_eq_mask_i8_m128i(v, quote),
            cmp_eq_mask_i8_m128i(v, backslash),
        ),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn stop_mask(block: &[u8; BLOCK]) -> u32 {
    mask_where(block, is_stop)
}

/// A byte a quick string stops at, as comparisons.
fn is_stop(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// [`SPECIAL`] as comparisons, for [`mask_where`].
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn is_special(b: u8) -> bool {
    is_stop(b) | (b == 0x7f) | (b == 0xEF)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
thread_local! {
    /// Bytes [`json_string_len`] has read on this thread: what the structurer's tests
    /// count to prove a joined message is never measured again line after line.
    pub(crate) static MEASURED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The length of `s` as [`push_json_string`] writes it, quotes excluded: one pass,
/// no allocation.
pub fn json_string_len(s: &str) -> usize {
    #[cfg(test)]
    MEASURED.with(|m| m.set(m.get() + s.len()));
    let bytes = s.as_bytes();
    let mut len = bytes.len();
    let mut i = 0;
    while let Some(k) = bytes.get(i..).and_then(next_special) {
        i += k;
        len += special_extra(bytes, i);
        i += 1;
    }
    len
}

/// The longest prefix of `s` whose escaped length ([`json_string_len`]) is at most
/// `room`, taken character by character: its length in bytes (a char boundary) and
/// escaped. One pass: 16 bytes at a time ([`special_mask`]) where they surely fit, a
/// character at a time only in the stretch where the room runs out.
pub fn json_prefix_within(s: &str, room: usize) -> (usize, usize) {
    let bytes = s.as_bytes();
    let (mut at, mut cost) = (0, 0);
    while let Some(block) = block_at(bytes, at) {
        let mask = special_mask(block);
        // The block up to its last char boundary (13 to 16 bytes): a U+FFFD begun in it
        // ends in it too.
        let end = floor_char_boundary(s, at + BLOCK);
        let mut stretch = end - at;
        let mut specials = mask & ((1u32 << stretch) - 1);
        while specials != 0 {
            stretch += special_extra(bytes, at + specials.trailing_zeros() as usize);
            specials &= specials - 1;
        }
        if cost + stretch > room {
            break;
        }
        cost += stretch;
        at = end;
    }
    for c in s.get(at..).unwrap_or_default().chars() {
        let len = json_char_len(c);
        if cost + len > room {
            break;
        }
        cost += len;
        at += c.len_utf8();
    }
    (at, cost)
}

/// Bytes as text, invalid UTF-8 as U+FFFD: borrowed when the bytes are valid. The check
/// is `simdutf8`'s, 32 bytes at a time where the CPU has AVX2 (std's goes a word at a
/// time); only invalid bytes take std's slower lossy decoding.
pub fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The smallest char boundary of `s` at or above `at` (its length past the end).
pub(crate) fn ceil_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The largest char boundary of `s` at or below `at`.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// What the [`SPECIAL`] byte at `i` of `bytes` adds to the escaped length beyond its
/// own byte.
fn special_extra(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 1,
        // U+FFFD (3 bytes) becomes `\ufffd` (6); other U+Fxxx stay as they are.
        0xEF if bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => 3,
        0xEF => 0,
        // Other controls and DEL: `\u00XX`.
        _ => 5,
    }
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
/// that reads one field (a timestamp) takes out of it. Any other value is `Other`. A
/// string without escapes is borrowed from the text read.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) enum Scalar<'a> {
    Number(f64),
    Text(Cow<'a, str>),
    Other,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
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
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(n))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
        Ok(if self.keep_text {
            Scalar::Text(Cow::Borrowed(s))
        } else {
            Scalar::Other
        })
    }
    fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
        Ok(if self.keep_text {
            Scalar::Text(Cow::Owned(s.to_owned()))
        } else {
            Scalar::Other
        })
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        // Keys too are decoded (a key is a string like any other).
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// What [`quick_object`] makes of a text (its `Debug` only in tests: it holds the app's
/// text).
#[derive(PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum Quick<'a> {
    /// A JSON object that `serde_json` reads too (as a map of [`Checked`] values), and
    /// the text of its top-level values for [`STAMP_KEYS`], in that order.
    Object([Option<&'a str>; 4]),
    /// Not decided here: `serde_json` reads it.
    Unsure,
}

/// The top-level keys a timestamp is read from, in order of preference.
const STAMP_KEYS: [&str; 4] = ["timestamp", "time", "@timestamp", "ts"];

/// Deeper nesting is left to `serde_json` (whose limit is 128).
const QUICK_DEPTH: usize = 64;
/// A number of at most this many characters, without an exponent, is finite as an
/// `f64` (below 10^300), so `serde_json` takes it.
const QUICK_NUMBER: usize = 300;

/// Reads `text` as a JSON object in one pass, allocating nothing, and says
/// [`Quick::Object`] only for text `serde_json` accepts too: strings without escapes or
/// control characters, numbers without an exponent, nesting up to [`QUICK_DEPTH`], a
/// timestamp key at most once. Anything else, valid or not, is [`Quick::Unsure`]: the
/// caller reads it with `serde_json`, which decides. A property test holds it to that.
pub(crate) fn quick_object(text: &str) -> Quick<'_> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        window: 0,
        stops: 0,
    };
    reader.look_from(0);
    let mut stamps = [None; 4];
    match reader.object(1, Some(&mut stamps)) {
        Some(()) if reader.at == text.len() => Quick::Object(stamps),
        _ => Quick::Unsure,
    }
}

/// [`quick_object`]'s cursor. Every method returns `None` for "unsure".
struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Where the 64 bytes of `stops` start.
    window: usize,
    /// Bit `k`: byte `window + k` is one a quick string stops at ([`stop_mask`]). A
    /// line's strings are found in a few such windows, each made once, not in a block
    /// or more per string (a key is a few bytes).
    stops: u64,
}

impl<'a> Reader<'a> {
    /// Makes the window of stops from `at` (bytes past the text's end stop nothing).
    fn look_from(&mut self, at: usize) {
        self.window = at;
        let rest = self.bytes.get(at..).unwrap_or_default();
        self.stops = match rest.get(..64).and_then(|b| <&[u8; 64]>::try_from(b).ok()) {
            Some(block) => stops(block),
            None => stops_of_tail(rest),
        };
    }

    /// The first byte at or after `i` a quick string stops at: a quote, a backslash
    /// or a control character.
    fn next_stop(&mut self, mut i: usize) -> Option<usize> {
        loop {
            let off = i.wrapping_sub(self.window);
            if off < 64 {
                let rest = self.stops >> off;
                if rest != 0 {
                    return Some(i + rest.trailing_zeros() as usize);
                }
                i = self.window + 64;
            }
            if i >= self.bytes.len() {
                return None;
            }
            self.look_from(i);
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn blanks(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// A value at `at` (blanks skipped before it), inside `depth` containers.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, None),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => None,
        }
    }

    /// A container's item: [`Reader::value`], with the strings and numbers most items
    /// are read here, without a call that cannot be inlined (`value` recurses).
    #[inline(always)]
    fn item(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.value(depth),
        }
    }

    /// The object at `at`; with `stamps`, the timestamp keys' values are noted there.
    fn object(
        &mut self,
        depth: usize,
        mut stamps: Option<&mut [Option<&'a str>; 4]>,
    ) -> Option<()> {
        if depth > QUICK_DEPTH || self.peek()? != b'{' {
            return None;
        }
        let mut more = self.open(b'}')?;
        while more {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.blanks();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.blanks();
            let start = self.at;
            self.item(depth)?;
            if let Some(stamps) = stamps.as_deref_mut() {
                // Every timestamp key starts with `t` or `@`: most keys are compared
                // with none of them.
                let maybe = matches!(key.first(), Some(b't' | b'@'));
                if let Some(slot) = STAMP_KEYS.iter().position(|k| maybe && k.as_bytes() == key) {
                    if stamps[slot].is_some() {
                        return None;
                    }
                    stamps[slot] = Some(self.text.get(start..self.at)?);
                }
            }
            more = self.next_item(b'}')?;
        }
        Some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > QUICK_DEPTH {
            return None;
        }
        let mut more = self.open(b']')?;
        while more {
            self.item(depth)?;
            more = self.next_item(b']')?;
        }
        Some(())
    }

    /// Past a container's opening bracket at `at` and the blanks after it: whether an
    /// item follows (else `close` is taken too).
    fn open(&mut self, close: u8) -> Option<bool> {
        self.at += 1;
        self.blanks();
        let empty = self.peek()? == close;
        if empty {
            self.at += 1;
        }
        Some(!empty)
    }

    /// After an item: whether another follows (`,` and blanks taken) or the container
    /// ends (`close` taken).
    fn next_item(&mut self, close: u8) -> Option<bool> {
        self.blanks();
        let b = self.peek()?;
        self.at += 1;
        match b {
            b',' => {
                self.blanks();
                Some(true)
            }
            _ if b == close => Some(false),
            _ => None,
        }
    }

    /// The string at `at` (its opening quote): its contents, when they hold no
    /// backslash and no control character.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at + 1;
        let end = self.next_stop(start)?;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.bytes.get(start..end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most [`QUICK_NUMBER`] characters.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        let plain = !matches!(self.peek(), Some(b'e' | b'E'));
        (plain && self.at - start <= QUICK_NUMBER).then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        self.bytes.get(self.at..)?.starts_with(word).then(|| {
            self.at += word.len();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timestamp string is read without a copy unless it has escapes to decode.
    #[test]
    fn a_scalar_string_is_borrowed_unless_it_has_escapes() {
        let plain: Scalar = serde_json::from_str(r#""2026-11-22T10:30:15.107Z""#).unwrap();
        assert!(matches!(
            plain,
            Scalar::Text(Cow::Borrowed("2026-11-22T10:30:15.107Z"))
        ));
        let escaped: Scalar = serde_json::from_str(r#""2026-11-22T10:30:15\u002e107Z""#).unwrap();
        assert!(matches!(&escaped, Scalar::Text(Cow::Owned(s)) if s == "2026-11-22T10:30:15.107Z"));
        let number: Scalar = serde_json::from_str("1795417380506").unwrap();
        assert_eq!(number, Scalar::Number(1_795_417_380_506.0));
    }

    #[test]
    fn the_vectorized_stop_test_is_the_bytes_test() {
        // Every byte value at every place of a block, beside every other.
        for b in 0..=255u8 {
            for c in [b'a', b'"', b'\\', 0xEF, 0x7f, 0x1f, 0x20, 0x80] {
                for n in 0..BLOCK {
                    let mut block = [c; BLOCK];
                    block[n] = b;
                    assert_eq!(
                        stop_mask(&block),
                        mask_where(&block, is_stop),
                        "{b:#x} at {n}"
                    );
                }
            }
        }
    }

    /// A string is read to its closing quote wherever it starts and ends with respect
    /// to the windows of stops, and a backslash or control character anywhere in it
    /// leaves the text to `serde_json`.
    #[test]
    fn strings_are_read_across_the_windows() {
        for pad in 0..70 {
            for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200] {
                let value = "x".repeat(len);
                let text = format!("{{\"{}\":\"{value}\",\"time\":\"t\"}}", "k".repeat(pad));
                let Quick::Object(stamps) = quick_object(&text) else {
                    panic!("{text}");
                };
                assert_eq!(stamps[1], Some("\"t\""), "{text}");
                for at in [0, len / 2, len.saturating_sub(1)]
                    .into_iter()
                    .filter(|&a| a < len)
                {
                    for stop in ["\\", "\u{1}"] {
                        let mut bad = value.clone();
                        bad.replace_range(at..at + 1, stop);
                        let text = format!("{{\"{}\":\"{bad}\"}}", "k".repeat(pad));
                        assert!(matches!(quick_object(&text), Quick::Unsure), "{text:?}");
                    }
                }
            }
        }
        // An unterminated string, its end in the last window.
        assert!(matches!(quick_object("{\"a\":\"xyz"), Quick::Unsure));
        assert!(matches!(
            quick_object(&format!("{{\"a\":\"{}", "x".repeat(100))),
            Quick::Unsure
        ));
    }

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
        // Every byte value at every offset of the first chunks and the tail.
        for b in 0..=255u8 {
            for n in 0..40 {
                let mut buf = vec![b'a'; 45];
                buf[n] = b;
                let want = SPECIAL[b as usize].then_some(n);
                assert_eq!(next_special(&buf), want, "{b:#x} at {n}");
            }
        }
        // Every byte value at every place of a block, beside every other.
        for b in 0..=255u8 {
            for c in [b'a', b'"', 0xEF, 0x1f, 0x20, 0x7e, 0x80] {
                for n in 0..BLOCK {
                    let mut block = [c; BLOCK];
                    block[n] = b;
                    let want = (0..BLOCK)
                        .filter(|&k| SPECIAL[block[k] as usize])
                        .fold(0u32, |m, k| m | 1 << k);
                    assert_eq!(special_mask(&block), want, "{b:#x} at {n} among {c:#x}");
                    assert_eq!(
                        mask_where(&block, is_special),
                        want,
                        "{b:#x} at {n} among {c:#x}, portable"
                    );
                    let plain = (0..BLOCK)
                        .filter(|&k| matches!(block[k], b'"' | b'\\'))
                        .fold(0u32, |m, k| m | 1 << k);
                    assert_eq!(
                        special_masks(&block),
                        (want, plain),
                        "{b:#x} at {n} among {c:#x}, quotes and backslashes"
                    );
                }
            }
        }
    }

    #[test]
    fn the_quick_reader_reads_plain_objects_and_leaves_the_rest() {
        let line = r#"{"level": "info", "time": "2026-11-22T10:30:02.677Z", "msg": "order user", "reqId": "3eabedcbbaa80dd4", "latencyMs": 168, "n": -0.5, "tags": [true, null, {"a": []}]}"#;
        assert_eq!(
            quick_object(line),
            Quick::Object([None, Some(r#""2026-11-22T10:30:02.677Z""#), None, None])
        );
        assert_eq!(
            quick_object(r#"{"ts":1795417380506,"@timestamp":{"x":1}}"#),
            Quick::Object([None, None, Some("{\"x\":1}"), Some("1795417380506")])
        );
        for unsure in [
            r#"{"msg":"a \"quoted\" word"}"#,
            r#"{"n":1e3}"#,
            r#"{"n":01}"#,
            r#"{"a":1,}"#,
            r#"{"ts":1,"ts":2}"#,
            r#"{"a":1}{"b":2}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":tru}"#,
            r#"{"a" 1}"#,
            r#"{"a":"unterminated}"#,
        ] {
            assert_eq!(quick_object(unsure), Quick::Unsure, "{unsure}");
        }
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(QUICK_DEPTH),
            "]".repeat(QUICK_DEPTH)
        );
        assert_eq!(quick_object(&deep), Quick::Unsure);
        let long = format!("{{\"n\":{}}}", "9".repeat(QUICK_NUMBER + 1));
        assert_eq!(quick_object(&long), Quick::Unsure);
    }

    /// What [`push_json_string`] writes, a character at a time.
    fn escaped_by_chars(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{fffd}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any text, dense with the bytes that need a look (quotes and backslashes as
        /// in an event's JSON, controls, U+FFFD and other U+Fxxx, multi-byte
        /// characters across the 16-byte blocks): written as a character-at-a-time
        /// escaper writes it, read back by serde_json as itself, as long as
        /// `json_string_len` says.
        #[test]
        fn push_json_string_is_the_escape_of_each_character(
            s in "([\"\\\\a-z\u{0}-\u{1f}\u{7f}\u{fffd}\u{f000}\u{ffff}é✓{}:,]|\\PC){0,80}",
        ) {
            let mut out = String::from("x");
            push_json_string(&mut out, &s);
            proptest::prop_assert_eq!(&out[1..], escaped_by_chars(&s));
            let back: String = serde_json::from_str(&out[1..])
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}: {out}")))?;
            proptest::prop_assert_eq!(&back, &s);
            proptest::prop_assert_eq!(json_string_len(&s) + 2, out.len() - 1);
            // The body's escaper, which writes whole blocks of quotes, writes the same.
            let mut bytes = b"x".to_vec();
            push_json_string_bytes(&mut bytes, &s);
            proptest::prop_assert_eq!(bytes, out.as_bytes());
        }

        /// The longest prefix that fits a room is the one taken character by
        /// character, for any text and room (plain runs across many blocks, escape-dense
        /// stretches, multi-byte characters and U+FFFD across block ends).
        #[test]
        fn the_prefix_within_a_room_is_taken_character_by_character(
            s in "([\"\\\\a-z\u{0}-\u{1f}\u{7f}\u{fffd}\u{f000}é✓]|\\PC|[a-z]{16,40}){0,60}",
            room_per_mille in 0usize..1_200,
        ) {
            let room = json_string_len(&s) * room_per_mille / 1_000;
            let (mut at, mut cost) = (0, 0);
            for c in s.chars() {
                if cost + json_char_len(c) > room {
                    break;
                }
                cost += json_char_len(c);
                at += c.len_utf8();
            }
            proptest::prop_assert_eq!(json_prefix_within(&s, room), (at, cost));
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
