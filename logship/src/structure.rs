//! Lines become events: one JSON object each, with a CloudWatch timestamp.
//!
//! A line that is a JSON object stays as the app wrote it (its fields untouched; the
//! ECS context, when configured, is appended as one more field). Any other line becomes
//! `{"timestamp", "level", "stream", "message"}`. Continuation lines (indented lines,
//! `Caused by:`, Python tracebacks, PEM blocks) join the event before them on the same
//! stream, up to [`MAX_JOINED_LINES`] lines and [`MAX_JOINED_BYTES`]. Invalid UTF-8 and
//! control characters are escaped, never dropped; ANSI colour codes are stripped unless
//! configured otherwise.
//!
//! Every line is outside input: nothing here may panic on it. Text is never sliced by
//! byte index without a boundary check, numbers from the app are range-checked before
//! any arithmetic, and the work per line is linear in its length (a continuation line
//! is looked at on its own, never together with the event it joins).
//!
//! Not here: redaction (`sanitize`), size limits and splitting (`batch`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::batch::MAX_EVENT_BYTES;

/// CloudWatch rejects events more than 2 hours in the future (PutLogEvents).
pub const MAX_FUTURE: Duration = Duration::from_secs(2 * 3600);
/// The oldest app timestamp an event keeps. CloudWatch accepts 14 days back, but an
/// app line stamped a day or more before it was written almost always carries a
/// record's own date (a `time` field of a replayed job, an order's `ts`), not the
/// line's: kept, it would file the line days back, out of "last hour" searches and out
/// of the 24 h that one PutLogEvents call may span with its neighbours.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A multi-line event stops taking continuation lines before its message, as written
/// in the event's JSON, passes this: the event then still fits one CloudWatch event
/// (1 MB, [`MAX_EVENT_BYTES`]) with its other fields, so joining never makes an event
/// that has to be split into parts. The next continuation line starts a new event.
pub const MAX_JOINED_BYTES: usize = MAX_EVENT_BYTES - TEXT_EVENT_ROOM;
/// Room left in a text event for everything but its message: the timestamp, level and
/// stream fields (under 100 bytes) and the ECS context (ECS names are at most 255
/// characters each, so well under 1 KiB).
const TEXT_EVENT_ROOM: usize = 2048;
/// A multi-line event takes at most this many lines. A JVM prints at most 1,024 frames
/// of a throwable (HotSpot's `MaxJavaStackTraceDepth` default), so a whole deep trace
/// with its header and a cause fits; past it, a block whose end never comes (a PEM
/// block or traceback cut short) stops swallowing every later line.
pub const MAX_JOINED_LINES: usize = 2_000;

/// The latest time [`parse_rfc3339_ms`] and [`push_rfc3339`] handle,
/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years, and every time in range
/// is far from `i64` overflow in milliseconds.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// The agent's own diagnostics.
    Agent,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Agent => "agent",
        }
    }
}

/// One log event, ready for the sanitizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since the epoch: the app's own time when usable, else receive time.
    pub timestamp_ms: i64,
    /// A JSON object.
    pub json: String,
}

/// The ECS task the events come from, added to each event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub task_id: String,
    pub container_name: String,
    /// `family:revision`.
    pub task_definition: String,
}

/// How lines are turned into events.
#[derive(Debug, Clone)]
pub struct Options {
    /// Join continuation lines to the previous event (DECKHAND_LOG_MULTILINE).
    pub multiline: bool,
    /// Remove ANSI colour codes (else they are kept, escaped).
    pub strip_ansi: bool,
    pub context: Option<Context>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            multiline: true,
            strip_ansi: true,
            context: None,
        }
    }
}

/// Turns the lines of one stream into events. One per stream: continuation lines only
/// ever join lines of their own stream.
#[derive(Debug)]
pub struct Structurer {
    stream: Stream,
    multiline: bool,
    strip_ansi: bool,
    /// `,"ecs":{…}` ready to splice in, computed once.
    context_field: String,
    pending: Option<Pending>,
}

/// A text event that continuation lines may still join.
#[derive(Debug)]
struct Pending {
    received_ms: i64,
    message: String,
    kind: Block,
    /// Lines in `message`, for [`MAX_JOINED_LINES`].
    lines: usize,
    /// `message`'s size as a JSON string (for [`MAX_JOINED_BYTES`]): measured when the
    /// first continuation line comes (most events never get one), then kept up to date
    /// line by line so the limit never needs a rescan of the message.
    json_bytes: Option<usize>,
}

impl Pending {
    fn new(received_ms: i64, text: String, kind: Block) -> Self {
        Pending {
            received_ms,
            json_bytes: None,
            message: text,
            kind,
            lines: 1,
        }
    }

    /// `message`'s size as a JSON string, measured once.
    fn json_bytes(&mut self) -> usize {
        *self
            .json_bytes
            .get_or_insert_with(|| json_string_len(&self.message))
    }

    /// Whether one more line of `line_json_bytes` (escaped) still fits the caps.
    fn has_room(&mut self, line_json_bytes: usize) -> bool {
        // `\n` between the lines: 2 bytes.
        self.lines < MAX_JOINED_LINES
            && self
                .json_bytes()
                .saturating_add(2)
                .saturating_add(line_json_bytes)
                <= MAX_JOINED_BYTES
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Plain,
    /// After `Traceback (most recent call last):` until the exception line.
    Traceback,
    /// Inside `-----BEGIN …-----` until the matching END line.
    Pem,
}

impl Structurer {
    pub fn new(stream: Stream, options: &Options) -> Self {
        let context_field = match &options.context {
            Some(c) => format!(
                ",\"ecs\":{{\"task_id\":{},\"container_name\":{},\"task_definition\":{}}}",
                json_string(&c.task_id),
                json_string(&c.container_name),
                json_string(&c.task_definition)
            ),
            None => String::new(),
        };
        Structurer {
            stream,
            multiline: options.multiline,
            strip_ansi: options.strip_ansi,
            context_field,
            pending: None,
        }
    }

    /// Takes one line (without its newline) received at `now_ms`; returns the events
    /// it completes (the pending one it does not continue, and itself if it cannot be
    /// continued). Empty lines produce nothing: the service rejects empty messages.
    pub fn push(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Event>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = decode(line, self.strip_ansi);
        if text.trim().is_empty() {
            // A blank line may sit inside a traceback or PEM block; elsewhere it ends one.
            if let Some(p) = &mut self.pending {
                if p.kind != Block::Plain {
                    return;
                }
            }
            self.flush(out);
            return;
        }
        if self.multiline {
            if let Some(p) = &mut self.pending {
                if continues(p, &text) {
                    let line_bytes = json_string_len(&text);
                    if p.has_room(line_bytes) {
                        p.message.push('\n');
                        p.message.push_str(&text);
                        p.lines += 1;
                        p.json_bytes = Some(p.json_bytes() + 2 + line_bytes);
                        p.kind = block_after(p.kind, &text);
                        return;
                    }
                    // Full: the line starts the next event, which stays in the block
                    // the full one was in (the rest of a PEM block or traceback still
                    // joins, now to the new event).
                    let kind = block_after(p.kind, &text);
                    self.flush(out);
                    self.pending = Some(Pending::new(now_ms, text.into_owned(), kind));
                    return;
                }
            }
        }
        self.flush(out);
        if let Some(event) = self.json_event(&text, now_ms) {
            out.push(event);
            return;
        }
        let mut pending = Pending::new(now_ms, text.into_owned(), Block::Plain);
        start_block(&mut pending);
        if self.multiline {
            self.pending = Some(pending);
        } else {
            out.push(self.text_event(pending));
        }
    }

    /// Emits the pending event if it has waited since `received_ms` for at least
    /// `window`: continuation lines arrive together, so a pause ends the event.
    pub fn flush_if_older(&mut self, now_ms: i64, window: Duration, out: &mut Vec<Event>) {
        if let Some(p) = &self.pending {
            let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(p.received_ms) >= window_ms {
                self.flush(out);
            }
        }
    }

    /// Emits the pending event, if any (end of stream, shutdown).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if let Some(p) = self.pending.take() {
            out.push(self.text_event(p));
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn json_event(&self, text: &str, now_ms: i64) -> Option<Event> {
        let trimmed = text.trim();
        if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
            return None;
        }
        let probe: Probe = serde_json::from_str(trimmed).ok()?;
        let app_ms = probe.stamps.into_iter().flatten().find_map(Stamp::epoch_ms);
        let mut json = String::with_capacity(trimmed.len() + self.context_field.len());
        match trimmed.strip_suffix('}') {
            Some(open) if !self.context_field.is_empty() => {
                // `open` starts with `{` (checked above): is the object empty?
                let empty = open.get(1..).is_some_and(|inside| inside.trim().is_empty());
                json.push_str(open);
                let field = &self.context_field;
                json.push_str(if empty {
                    field.strip_prefix(',').unwrap_or(field)
                } else {
                    field
                });
                json.push('}');
            }
            _ => json.push_str(trimmed),
        }
        Some(Event {
            timestamp_ms: accept_timestamp(app_ms, now_ms),
            json,
        })
    }

    fn text_event(&self, p: Pending) -> Event {
        let level = text_level(&p.message).unwrap_or(match self.stream {
            Stream::Stderr => "error",
            _ => "info",
        });
        let mut json = String::with_capacity(p.message.len() + 96 + self.context_field.len());
        json.push_str("{\"timestamp\":\"");
        push_rfc3339(&mut json, p.received_ms);
        json.push_str("\",\"level\":\"");
        json.push_str(level);
        json.push_str("\",\"stream\":\"");
        json.push_str(self.stream.as_str());
        json.push_str("\",\"message\":");
        push_json_string(&mut json, &p.message);
        json.push_str(&self.context_field);
        json.push('}');
        Event {
            timestamp_ms: p.received_ms,
            json,
        }
    }
}

/// The fields of an app's JSON line we look at: `timestamp`, `time`, `@timestamp` and
/// `ts`, in that order of preference. Deserializing it also checks that the whole line
/// is a JSON object that `serde_json` reads back (see [`Checked`]); a timestamp key
/// given twice makes the line text.
struct Probe {
    stamps: [Option<Stamp>; 4],
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut stamps: [Option<Stamp>; 4] = [None, None, None, None];
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Timestamp => 0,
                        Key::Time => 1,
                        Key::AtTimestamp => 2,
                        Key::Ts => 3,
                        Key::Other => {
                            map.next_value::<Checked>()?;
                            continue;
                        }
                    };
                    if stamps[slot].is_some() {
                        return Err(de::Error::custom("duplicate timestamp field"));
                    }
                    stamps[slot] = Some(map.next_value()?);
                }
                Ok(Probe { stamps })
            }
        }
        d.deserialize_map(ProbeVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum Key {
    #[serde(rename = "timestamp")]
    Timestamp,
    #[serde(rename = "time")]
    Time,
    #[serde(rename = "@timestamp")]
    AtTimestamp,
    #[serde(rename = "ts")]
    Ts,
    #[serde(other)]
    Other,
}

/// Any JSON value, read and dropped. Unlike [`serde::de::IgnoredAny`], which skips
/// strings and numbers without decoding them, it decodes each one, so a line that
/// `serde_json` would refuse as a value (a lone surrogate `"\ud800"`, a number out of
/// range like `1e400`) is not taken for a JSON object and is shipped as text instead.
/// Allocates nothing, and nests no deeper than `serde_json`'s recursion limit.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor { keep_text: false })
            .map(|_| Checked)
    }
}

/// A timestamp field's value: read like [`Checked`], keeping a number or a string.
enum Stamp {
    Number(f64),
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor { keep_text: true })
    }
}

/// Visits any value, checking all of it (see [`Checked`]).
struct ValueVisitor {
    /// Copy a string out (for a timestamp), else drop it.
    keep_text: bool,
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Stamp;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Stamp, E> {
        Ok(Stamp::Other)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Stamp, E> {
        Ok(Stamp::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Stamp, E> {
        Ok(Stamp::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Stamp, E> {
        Ok(Stamp::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Stamp, E> {
        Ok(if self.keep_text {
            Stamp::Text(s.to_owned())
        } else {
            Stamp::Other
        })
    }
    fn visit_unit<E>(self) -> Result<Stamp, E> {
        Ok(Stamp::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stamp, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Stamp::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Stamp, A::Error> {
        // Keys too are decoded (a key is a string like any other).
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Stamp::Other)
    }
}

impl Stamp {
    fn epoch_ms(self) -> Option<i64> {
        match self {
            Stamp::Number(n) => epoch_number_ms(n),
            Stamp::Text(s) => {
                parse_rfc3339_ms(&s).or_else(|| s.parse().ok().and_then(epoch_number_ms))
            }
            Stamp::Other => None,
        }
    }
}

/// Epoch seconds or milliseconds (or micro/nanoseconds), told apart by magnitude.
/// Anything not finite, not positive, or past [`MAX_TIME_MS`] is no timestamp.
fn epoch_number_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    // Checked in f64 before the cast: `as` would saturate 1e300 to i64::MAX, a
    // "timestamp" that overflows the first sum it takes part in.
    (ms <= MAX_TIME_MS as f64).then_some(ms as i64)
}

/// The app's timestamp when the service would accept it, else the receive time.
pub fn accept_timestamp(app_ms: Option<i64>, now_ms: i64) -> i64 {
    let future = i64::try_from(MAX_FUTURE.as_millis()).unwrap_or(i64::MAX);
    let age = i64::try_from(MAX_AGE.as_millis()).unwrap_or(i64::MAX);
    match app_ms {
        Some(t) if t <= now_ms.saturating_add(future) && t >= now_ms.saturating_sub(age) => t,
        _ => now_ms,
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether `line` continues the pending event. Looks at `line` only (never at the
/// message so far), so joining stays linear however long the event grows.
fn continues(p: &Pending, line: &str) -> bool {
    match p.kind {
        Block::Pem | Block::Traceback => true,
        Block::Plain => {
            line.starts_with([' ', '\t'])
                || line.starts_with("Caused by:")
                || line.starts_with("at ")
                || line.starts_with("...")
                || line.starts_with("-----END")
        }
    }
}

/// Whether the first line of an event opens a block. Called once per event, when the
/// message is that one line.
fn start_block(p: &mut Pending) {
    let t = p.message.trim_start();
    if t.starts_with("Traceback (most recent call last):") {
        p.kind = Block::Traceback;
    } else if t.starts_with("-----BEGIN ") && !t.contains("-----END ") {
        p.kind = Block::Pem;
    }
}

/// The block a pending event is in after `line` joined it: a block ends on its last
/// line, the exception line of a traceback (the first line that is not indented) or a
/// PEM END line. Looks at `line` only.
fn block_after(kind: Block, line: &str) -> Block {
    match kind {
        Block::Pem if line.trim_start().starts_with("-----END ") => Block::Plain,
        Block::Traceback
            if !line.starts_with([' ', '\t'])
                && !line.starts_with("During handling")
                && !line.starts_with("The above exception")
                && !line.starts_with("Traceback") =>
        {
            Block::Plain
        }
        kind => kind,
    }
}

/// A level word near the start of a text line (`ERROR`, `[warn]`, `level=debug`).
fn text_level(message: &str) -> Option<&'static str> {
    const LEVELS: [(&str, &str); 9] = [
        ("FATAL", "fatal"),
        ("CRITICAL", "fatal"),
        ("ERROR", "error"),
        ("WARNING", "warn"),
        ("WARN", "warn"),
        ("INFO", "info"),
        ("DEBUG", "debug"),
        ("TRACE", "trace"),
        ("PANIC", "fatal"),
    ];
    let head = &message.as_bytes()[..message.len().min(64)];
    for word in head.split(|b| !b.is_ascii_alphabetic()) {
        if word.len() < 4 || word.len() > 8 {
            continue;
        }
        for (name, level) in LEVELS {
            if word.eq_ignore_ascii_case(name.as_bytes())
                && (word == name.as_bytes() || word.iter().all(u8::is_ascii_lowercase))
            {
                return Some(level);
            }
        }
    }
    None
}

/// Bytes to text: invalid UTF-8 becomes U+FFFD, ANSI escape sequences go (optionally).
fn decode(line: &[u8], strip_ansi: bool) -> std::borrow::Cow<'_, str> {
    let text = match std::str::from_utf8(line) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    };
    if strip_ansi && text.contains('\u{1b}') {
        std::borrow::Cow::Owned(strip_ansi_codes(&text))
    } else {
        text
    }
}

/// Removes CSI sequences (`ESC [ … final`) and two-byte escapes.
fn strip_ansi_codes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: until BEL or ESC \.
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                        if c == '\u{1b}' {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

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

/// Appends `2026-11-22T10:30:00.123Z`. A time outside 1970..=9999 (never a receive
/// time) is clamped into it, so the text is always RFC 3339 that
/// [`parse_rfc3339_ms`] reads back.
pub fn push_rfc3339(out: &mut String, ms: i64) {
    let ms = ms.clamp(0, MAX_TIME_MS);
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Written by hand rather than with `write!`: once per text event, and the
    // formatting machinery cost more than the rest of the event's structuring. Every
    // field is in range after the clamp (years 1970..=9999).
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, n: i64| {
        let mut n = n;
        for k in (at..at + width).rev() {
            buf[k] = b'0' + n.rem_euclid(10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 3, millis);
    // Digits and ASCII punctuation only: always UTF-8.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Parses RFC 3339 / ISO 8601 date-times (`T` or space, fraction optional, `Z` or
/// `±HH:MM`/`±HHMM`); a time without zone is taken as UTC. Works on bytes only and
/// checks every field's range (years 0000–9999, the day within its month, offsets
/// up to ±23:59), so any text gives a time or `None`, never a panic or an overflow.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let num = |from: usize, len: usize| digits(b.get(from..from.checked_add(len)?)?);
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, se) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    // `se` 60: a leap second, as RFC 3339 allows.
    if !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b".,") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let fraction = b.get(start..i)?;
        if fraction.is_empty() {
            return None;
        }
        // The first three digits, padded: ".5" is 500 ms, ".123456" 123 ms.
        for k in 0..3 {
            millis = millis * 10 + fraction.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
    }
    let offset_s = match b.get(i..)? {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    // Every field is range-checked above: the sum stays within ±400,000 years of
    // milliseconds, far from i64's limits.
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + millis)
}

/// The value of ASCII decimal digits (at most 4 here); `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

/// Days in month `m` (1–12) of year `y`, proleptic Gregorian.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
/// Callers pass a checked date (year 0–9999), so no step can overflow.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18

    fn run(stream: Stream, options: &Options, lines: &[&[u8]]) -> Vec<Event> {
        let mut s = Structurer::new(stream, options);
        let mut out = Vec::new();
        for line in lines {
            s.push(line, NOW, &mut out);
        }
        s.flush(&mut out);
        out
    }

    fn parsed(e: &Event) -> serde_json::Value {
        serde_json::from_str(&e.json).unwrap_or_else(|err| panic!("{err}: {}", e.json))
    }

    #[test]
    fn text_line_becomes_an_object() {
        let out = run(
            Stream::Stdout,
            &Options::default(),
            &[b"2026-11-22 10:30:01 WARN [http] slow upstream"],
        );
        let v = parsed(&out[0]);
        assert_eq!(
            v["message"],
            "2026-11-22 10:30:01 WARN [http] slow upstream"
        );
        assert_eq!(v["level"], "warn");
        assert_eq!(v["stream"], "stdout");
        assert_eq!(
            parse_rfc3339_ms(v["timestamp"].as_str().unwrap()),
            Some(NOW)
        );
        assert_eq!(out[0].timestamp_ms, NOW);
    }

    #[test]
    fn json_line_is_kept_as_written_with_its_timestamp() {
        let line = br#"{"level":"info","time":"2026-11-18T08:00:00.250Z","msg":"hi","n":1}"#;
        let out = run(Stream::Stdout, &Options::default(), &[line]);
        assert_eq!(out[0].json.as_bytes(), line);
        assert_eq!(
            out[0].timestamp_ms,
            parse_rfc3339_ms("2026-11-18T08:00:00.250Z").unwrap()
        );
    }

    #[test]
    fn epoch_seconds_and_millis() {
        for (field, expect) in [
            (format!("{{\"ts\":{}}}", NOW / 1000 - 60), NOW - 60_000),
            (format!("{{\"timestamp\":{}}}", NOW - 5), NOW - 5),
            (format!("{{\"@timestamp\":\"{}\"}}", NOW - 7), NOW - 7),
            (format!("{{\"ts\":{}.5}}", NOW / 1000 - 1), NOW - 500),
        ] {
            let out = run(Stream::Stdout, &Options::default(), &[field.as_bytes()]);
            assert_eq!(out[0].timestamp_ms, expect, "{field}");
        }
    }

    #[test]
    fn timestamps_outside_the_accepted_window_get_receive_time() {
        let recent = NOW - 23 * 3600 * 1000;
        assert_eq!(accept_timestamp(Some(recent), NOW), recent);
        assert_eq!(accept_timestamp(Some(NOW - 3 * 24 * 3600 * 1000), NOW), NOW);
        assert_eq!(
            accept_timestamp(Some(NOW - 15 * 24 * 3600 * 1000), NOW),
            NOW
        );
        assert_eq!(accept_timestamp(Some(NOW + 3 * 3600 * 1000), NOW), NOW);
        assert_eq!(
            accept_timestamp(Some(NOW + 3600 * 1000), NOW),
            NOW + 3600 * 1000
        );
    }

    #[test]
    fn context_is_appended() {
        let opts = Options {
            context: Some(Context {
                task_id: "abc123".into(),
                container_name: "web".into(),
                task_definition: "web:7".into(),
            }),
            ..Options::default()
        };
        let out = run(Stream::Stderr, &opts, &[b"{\"a\":1}", b"{}", b"plain"]);
        for e in &out {
            assert_eq!(parsed(e)["ecs"]["task_definition"], "web:7", "{}", e.json);
        }
        assert_eq!(parsed(&out[0])["a"], 1);
        assert_eq!(
            parsed(&out[2])["level"],
            "error",
            "unlabelled stderr text is an error"
        );
    }

    #[test]
    fn stack_traces_join_their_event() {
        let lines: &[&[u8]] = &[
            b"Error: connection reset",
            b"    at Socket.onread (node:net:1:12)",
            b"    at TCP.onStreamRead (node:internal:190:23)",
            b"next line",
            b"java.lang.IllegalStateException: boom",
            b"\tat com.example.A.run(A.java:10)",
            b"Caused by: java.io.IOException: eof",
            b"\t... 3 more",
        ];
        let out = run(Stream::Stdout, &Options::default(), lines);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert!(parsed(&out[0])["message"]
            .as_str()
            .unwrap()
            .ends_with("(node:internal:190:23)"));
        assert_eq!(
            parsed(&out[2])["message"].as_str().unwrap().lines().count(),
            4
        );
    }

    #[test]
    fn python_traceback_is_one_event() {
        let lines: &[&[u8]] = &[
            b"Traceback (most recent call last):",
            b"  File \"app.py\", line 3, in <module>",
            b"    main()",
            b"ValueError: bad value",
            b"after",
        ];
        let out = run(Stream::Stderr, &Options::default(), lines);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(parsed(&out[0])["message"]
            .as_str()
            .unwrap()
            .ends_with("ValueError: bad value"));
    }

    #[test]
    fn pem_block_is_one_event() {
        let lines: &[&[u8]] = &[
            b"-----BEGIN RSA PRIVATE KEY-----",
            b"MIIEowIBAAKCAQEA",
            b"abcdef==",
            b"-----END RSA PRIVATE KEY-----",
            b"done",
        ];
        let out = run(Stream::Stdout, &Options::default(), lines);
        assert_eq!(out.len(), 2, "{out:#?}");
    }

    #[test]
    fn multiline_off_keeps_lines_apart() {
        let opts = Options {
            multiline: false,
            ..Options::default()
        };
        let out = run(Stream::Stdout, &opts, &[b"a", b"  b"]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn empty_lines_are_never_events() {
        let out = run(Stream::Stdout, &Options::default(), &[b"", b"   ", b"\r"]);
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_utf8_nul_and_controls_are_escaped_not_dropped() {
        let out = run(
            Stream::Stdout,
            &Options::default(),
            &[b"bad \xff\xfe byte, nul \x00 bell \x07 end"],
        );
        assert!(
            out[0]
                .json
                .contains("bad \\ufffd\\ufffd byte, nul \\u0000 bell \\u0007 end"),
            "{}",
            out[0].json
        );
        assert_eq!(
            parsed(&out[0])["message"],
            "bad \u{fffd}\u{fffd} byte, nul \u{0} bell \u{7} end"
        );
    }

    #[test]
    fn ansi_colours_are_stripped_or_kept() {
        let line = b"\x1b[31mred\x1b[0m text";
        let out = run(Stream::Stdout, &Options::default(), &[line]);
        assert_eq!(parsed(&out[0])["message"], "red text");
        let keep = Options {
            strip_ansi: false,
            ..Options::default()
        };
        let out = run(Stream::Stdout, &keep, &[line]);
        assert_eq!(parsed(&out[0])["message"], "\u{1b}[31mred\u{1b}[0m text");
    }

    #[test]
    fn broken_json_is_shipped_as_text() {
        let out = run(Stream::Stdout, &Options::default(), &[b"{\"a\": 1,"]);
        assert_eq!(parsed(&out[0])["message"], "{\"a\": 1,");
    }

    #[test]
    fn pause_ends_a_pending_event() {
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        s.push(b"first", NOW, &mut out);
        s.flush_if_older(NOW + 10, Duration::from_millis(100), &mut out);
        assert!(out.is_empty());
        s.flush_if_older(NOW + 100, Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let mut s = String::new();
        push_rfc3339(&mut s, NOW + 123);
        assert_eq!(parse_rfc3339_ms(&s), Some(NOW + 123));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_rfc3339_ms("2026-02-30Tnope"), None);
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(951_868_800_000)
        );
    }

    #[test]
    fn level_words() {
        assert_eq!(text_level("[error] x"), Some("error"));
        assert_eq!(text_level("ERROR x"), Some("error"));
        assert_eq!(text_level("informal errors"), None);
        assert_eq!(text_level("Info x"), None);
    }

    #[test]
    fn hostile_timestamps_never_panic_and_fall_back_to_receive_time() {
        let lines: &[&[u8]] = &[
            "{\"time\":\"2026-11-22T10:30:0é\"}".as_bytes(),
            "{\"time\":\"2026-11-22T10:30:00é\"}".as_bytes(),
            "{\"time\":\"é026-11-22T10:30:00Z\"}".as_bytes(),
            "{\"time\":\"2026-11-22T10:30:00.é\"}".as_bytes(),
            "{\"time\":\"2026-11-22T10:30:00+é1:00\"}".as_bytes(),
            "{\"time\":\"2026-11-22T10:30:00+0é:0\"}".as_bytes(),
            b"{\"ts\":1e300}",
            b"{\"ts\":-1e300}",
            b"{\"ts\":-5}",
            b"{\"ts\":\"1e308\"}",
            b"{\"ts\":\"NaN\"}",
            b"{\"ts\":\"inf\"}",
            b"{\"ts\":18446744073709551615}",
            b"{\"time\":\"9999-12-31T23:59:59.999-23:59\"}",
            b"{\"time\":\"0000-01-01T00:00:00+23:59\"}",
            b"{\"time\":[[[[\"2026-11-22T10:30:00Z\"]]]]}",
        ];
        for line in lines {
            let out = run(Stream::Stdout, &Options::default(), &[line]);
            assert_eq!(out.len(), 1, "{}", String::from_utf8_lossy(line));
            assert_eq!(out[0].timestamp_ms, NOW, "{}", out[0].json);
            parsed(&out[0]);
        }
    }

    #[test]
    fn json_that_serde_json_refuses_as_a_value_is_text() {
        // Each is syntactically close enough to pass a skimming parser, but is not a
        // value serde_json (or a downstream reader) would accept.
        for line in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":["\udc00"]}"#,
            r#"{"\ud800":1}"#,
        ] {
            let out = run(Stream::Stdout, &Options::default(), &[line.as_bytes()]);
            assert_eq!(parsed(&out[0])["message"], line);
        }
        let ok = r#"{"a":"\ud83d\ude00","b":[1,{"c":null}],"d":-0.5e3}"#;
        let out = run(Stream::Stdout, &Options::default(), &[ok.as_bytes()]);
        assert_eq!(out[0].json, ok);
    }

    #[test]
    fn duplicated_timestamp_key_makes_the_line_text() {
        let line = br#"{"ts":1,"ts":2}"#;
        let out = run(Stream::Stdout, &Options::default(), &[line]);
        assert_eq!(parsed(&out[0])["message"], r#"{"ts":1,"ts":2}"#);
    }

    #[test]
    fn rfc3339_rejects_impossible_dates_and_bad_offsets() {
        for s in [
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+05:60",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+5:00",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
        assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_some());
        assert_eq!(parse_rfc3339_ms("1900-02-29T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339_ms("1970-01-01T05:30:00+0530"),
            Some(0),
            "an offset without colon"
        );
        assert_eq!(
            parse_rfc3339_ms("1970-01-01t00:00:00.123456789z"),
            Some(123)
        );
        assert_eq!(
            parse_rfc3339_ms("9999-12-31T23:59:59.999Z"),
            Some(MAX_TIME_MS)
        );
    }

    #[test]
    fn times_outside_the_years_rfc3339_can_write_are_clamped() {
        for (ms, expect) in [
            (i64::MIN, "1970-01-01T00:00:00.000Z"),
            (-1, "1970-01-01T00:00:00.000Z"),
            (i64::MAX, "9999-12-31T23:59:59.999Z"),
        ] {
            let mut s = String::new();
            push_rfc3339(&mut s, ms);
            assert_eq!(s, expect);
        }
        assert_eq!(accept_timestamp(Some(i64::MAX), i64::MAX), i64::MAX);
        assert_eq!(accept_timestamp(Some(i64::MIN), i64::MIN), i64::MIN);
        assert_eq!(accept_timestamp(Some(0), i64::MAX), i64::MAX);
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

    #[test]
    fn a_joined_event_stops_at_the_line_cap() {
        let mut lines: Vec<Vec<u8>> = vec![b"Error: deep".to_vec()];
        for i in 0..MAX_JOINED_LINES + 10 {
            lines.push(format!("    at frame{i} (a.js:1:1)").into_bytes());
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let out = run(Stream::Stdout, &Options::default(), &refs);
        assert_eq!(out.len(), 2);
        let first = parsed(&out[0])["message"].as_str().unwrap().to_owned();
        assert_eq!(first.lines().count(), MAX_JOINED_LINES);
        let second = parsed(&out[1])["message"].as_str().unwrap().to_owned();
        assert_eq!(second.lines().count(), 11);
        assert!(second.starts_with(&format!("    at frame{} ", MAX_JOINED_LINES - 1)));
    }

    #[test]
    fn a_joined_event_stops_before_it_would_need_splitting() {
        // Lines of quotes: each byte is 2 in JSON, so the cap counts escaped size.
        let line = format!("  {}", "\"".repeat(100_000));
        let mut lines: Vec<&[u8]> = vec![b"head"];
        lines.extend(std::iter::repeat_n(line.as_bytes(), 12));
        let out = run(Stream::Stdout, &Options::default(), &lines);
        assert!(out.len() >= 2, "{} events", out.len());
        let mut total_lines = 0;
        for e in &out {
            assert!(
                e.json.len() <= MAX_EVENT_BYTES,
                "a joined event of {} bytes would be split",
                e.json.len()
            );
            total_lines += parsed(e)["message"].as_str().unwrap().lines().count();
        }
        assert_eq!(total_lines, 13, "no line lost");
    }

    #[test]
    fn a_block_cut_by_the_cap_goes_on_in_the_next_event() {
        let mut lines: Vec<Vec<u8>> = vec![b"-----BEGIN CERTIFICATE-----".to_vec()];
        for _ in 0..MAX_JOINED_LINES + 5 {
            lines.push(b"MIIEowIBAAKCAQEA".to_vec());
        }
        lines.push(b"-----END CERTIFICATE-----".to_vec());
        lines.push(b"after".to_vec());
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let out = run(Stream::Stdout, &Options::default(), &refs);
        assert_eq!(
            out.len(),
            3,
            "the rest of the block is one event, then 'after'"
        );
        assert_eq!(parsed(&out[2])["message"], "after");
    }

    #[test]
    fn a_line_over_the_cap_is_an_event_of_its_own() {
        let big = "x".repeat(MAX_JOINED_BYTES + 10);
        let lines: &[&[u8]] = &[big.as_bytes(), b"  continued"];
        let out = run(Stream::Stdout, &Options::default(), lines);
        assert_eq!(out.len(), 2);
        assert_eq!(parsed(&out[1])["message"], "  continued");
    }

    #[test]
    fn joining_is_linear() {
        // 1,999 continuation lines of 500 bytes (about 1 MB): with a rescan of the
        // message per line this is ~1 GB of work and takes seconds even in release.
        let line = format!("  {}", "y".repeat(498));
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        s.push(b"head", NOW, &mut out);
        for _ in 0..1_999 {
            s.push(line.as_bytes(), NOW, &mut out);
        }
        s.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Lines of every shape the structurer tells apart, and raw bytes.
        fn line() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..120),
                "(?s).{0,80}".prop_map(String::into_bytes),
                "(?s).{0,40}".prop_map(|s| format!("{{\"time\":{}}}", json_string(&s)).into_bytes()),
                "(?s).{0,40}".prop_map(|s| format!("{{\"time\":\"{s}\"}}").into_bytes()),
                any::<f64>().prop_map(|n| format!("{{\"ts\":{n}}}").into_bytes()),
                "[ \t]{0,3}(at |Caused by:|\\.\\.\\.|-----BEGIN |-----END |Traceback \\(most recent call last\\):|\\{|\\})?[ -~é\u{1b}\\[\\]0-9;m]{0,30}"
                    .prop_map(String::into_bytes),
                "\\{[\"a-z:,0-9\\[\\]{}\\\\u ]{0,40}\\}".prop_map(String::into_bytes),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any lines, in any mode: no panic; every event a JSON object with a
            /// message; at most one event per non-blank line.
            #[test]
            fn any_lines_become_valid_events(
                lines in proptest::collection::vec(line(), 0..24),
                multiline: bool,
                strip_ansi: bool,
                context: bool,
            ) {
                let options = Options {
                    multiline,
                    strip_ansi,
                    context: context.then(|| Context {
                        task_id: "t\"1".into(),
                        container_name: "web".into(),
                        task_definition: "web:7".into(),
                    }),
                };
                let mut s = Structurer::new(Stream::Stderr, &options);
                let mut out = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    s.push(l, NOW + i as i64, &mut out);
                }
                s.flush(&mut out);
                let non_blank = lines
                    .iter()
                    .filter(|l| !String::from_utf8_lossy(l).trim().is_empty())
                    .count();
                prop_assert!(out.len() <= non_blank, "{} events from {} lines", out.len(), non_blank);
                for e in &out {
                    let v: serde_json::Value = serde_json::from_str(&e.json)
                        .map_err(|err| TestCaseError::fail(format!("{err}: {}", e.json)))?;
                    prop_assert!(v.is_object(), "{}", e.json);
                    prop_assert!(!e.json.trim().is_empty());
                    if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
                        prop_assert!(!m.trim().is_empty(), "{}", e.json);
                    }
                    if context {
                        prop_assert_eq!(&v["ecs"]["task_definition"], "web:7");
                    }
                }
            }

            #[test]
            fn any_text_parses_or_not_without_panic(s in "(?s).{0,40}") {
                let _ = parse_rfc3339_ms(&s);
            }

            #[test]
            fn near_dates_parse_or_not_without_panic(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9é]{0,4})?([Zz]|[+-][0-9é]{2}:?[0-9]{2})?.{0,2}") {
                if let Some(ms) = parse_rfc3339_ms(&s) {
                    // Within 0000..=9999 and its offsets.
                    prop_assert!((-62_200_000_000_000..=MAX_TIME_MS + 86_400_000).contains(&ms));
                }
            }

            #[test]
            fn rfc3339_round_trips(ms in 0..=MAX_TIME_MS) {
                let mut s = String::new();
                push_rfc3339(&mut s, ms);
                prop_assert_eq!(parse_rfc3339_ms(&s), Some(ms), "{}", s);
            }

            #[test]
            fn any_epoch_number_is_checked(n: f64) {
                if let Some(ms) = epoch_number_ms(n) {
                    prop_assert!((0..=MAX_TIME_MS).contains(&ms));
                }
                let _ = accept_timestamp(epoch_number_ms(n), NOW);
            }
        }
    }
}
