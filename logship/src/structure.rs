//! Lines become events: one JSON object each, with a CloudWatch timestamp.
//!
//! A line that is a JSON object stays as the app wrote it (its fields untouched; the
//! ECS context, when configured, is appended as one more field). Any other line becomes
//! `{"timestamp", "level", "stream", "message"}`, with a `level` only when the event's
//! first line states one (a level word near its start, or a crash's own first line:
//! see [`text_level`]); a line that states none gets no `level` key, or on stderr the
//! one configured (`DECKHAND_LOG_STDERR_LEVEL`): no level is ever guessed from the
//! stream. Continuation lines (indented lines, `Caused by:`, Python tracebacks, Go
//! panics, PEM blocks) join the event before them on the same
//! stream, up to [`MAX_JOINED_LINES`] lines and [`MAX_JOINED_BYTES`]. Invalid UTF-8 and
//! control characters are escaped, never dropped; ANSI colour codes are stripped unless
//! configured otherwise.
//!
//! Every line is outside input: nothing here may panic on it. Text is never sliced by
//! byte index without a boundary check, numbers from the app are range-checked before
//! any arithmetic, and the work per line is linear in its length (a continuation line
//! is looked at on its own, never together with the event it joins).
//!
//! A text event's message is redacted as plain text before it is written into the
//! event, when the capture gives the structurer a sanitizer ([`Structurer::redact_with`]):
//! the detectors see the line as the app wrote it, not escaped once more by us, as they
//! do for a line streamed past the capture's cut.
//!
//! Not here: how redaction works (`sanitize`), size limits and splitting (`batch`), JSON
//! string escaping (`json`), RFC 3339 and calendar maths (`time`).
use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use bytes_utils::{Str, StrMut};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::batch::MAX_EVENT_BYTES;
use crate::json::{
    json_string, json_string_len, push_json_string, quick_object, utf8_lossy, Checked, Quick,
    Scalar,
};
use crate::sanitize::{NoSecret, Sanitizer};
use crate::time::{epoch_number_ms, parse_rfc3339_ms, push_rfc3339, Rfc3339Writer};

/// Kept here for the callers outside this crate's `src` that still name it so (the
/// agent's diagnostics, the shipping integration tests); its home is [`crate::time`].
pub use crate::time::now_ms;

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
/// Room left in a text event for everything but its message: the timestamp, level
/// (when it has one; an event without is shorter) and stream fields (under 100 bytes)
/// and the ECS context (ECS names are at most 255 characters each, so well under 1 KiB).
const TEXT_EVENT_ROOM: usize = 2048;
/// A multi-line event takes at most this many lines. A JVM prints at most 1,024 frames
/// of a throwable (HotSpot's `MaxJavaStackTraceDepth` default), so a whole deep trace
/// with its header and a cause fits; past it, a block whose end never comes (a PEM
/// block or traceback cut short) stops swallowing every later line.
pub const MAX_JOINED_LINES: usize = 2_000;

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

/// The `level` of a text event: the words [`text_level`] reads, and the values of
/// `DECKHAND_LOG_STDERR_LEVEL`. A JSON line's own `level` is the app's, never read or
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 6] = [
        Level::Fatal,
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    /// As written in the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Fatal => "fatal",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// One log event, ready for the sanitizer.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since the epoch: the app's own time when usable, else receive time.
    pub timestamp_ms: i64,
    /// A JSON object: most share the block of memory their structurer wrote them in
    /// ([`Texts`]), so cloning one, or dropping it, copies and frees nothing.
    pub json: Str,
    /// How many bytes at the start of `json` the agent wrote from its own fixed
    /// vocabulary: a text event's `{"timestamp":"…","level":"…","stream":"…","message":`
    /// (receive time, a level name, the stream). The sanitizer looks only for loaded
    /// secrets there ([`Sanitizer::sanitize_after`]). 0 for an app's JSON line and for
    /// anything else.
    pub head: usize,
    /// Where the message ends, as a JSON string, in a text event whose message was
    /// already redacted as text ([`Structurer::redact_with`]): `head..redacted_to` is
    /// looked at by no detector, the rest for loaded secrets only
    /// ([`Sanitizer::sanitize_outside`]). The event's length when the same sanitizer
    /// also found the fields around the message clean, once for every event with
    /// them ([`Sanitizer::may_find_around`]), and of every event a structurer with a
    /// sanitizer made (it sanitizes them whole): nothing is left to look at. 0 for any
    /// other event.
    pub redacted_to: usize,
    /// An app's JSON line in which the sanitizer it is to be sanitized with found no
    /// loaded secret standing as written, searching the chunk of lines it came in
    /// ([`Sanitizer::secret_starts`]), nor could one reach into the fields the agent
    /// added: that search is not made again for the event. `None` for any other event.
    pub vouched: Option<NoSecret>,
}

impl Event {
    /// An event whose whole text is searched by every detector.
    pub fn new(timestamp_ms: i64, json: impl Into<Str>) -> Event {
        Event {
            timestamp_ms,
            json: json.into(),
            head: 0,
            redacted_to: 0,
            vouched: None,
        }
    }

    /// The event's JSON as `sanitizer` leaves it, borrowed when nothing is redacted:
    /// everything but the agent's own fields and a message already redacted as text
    /// goes through every detector. A text event's `sanitizer` is the one its
    /// structurer redacted it with ([`Structurer::sanitizer`]).
    pub fn sanitized<'a>(&'a self, sanitizer: &Sanitizer) -> Cow<'a, str> {
        sanitized(
            sanitizer,
            &self.json,
            self.head,
            self.redacted_to,
            self.vouched,
        )
    }
}

/// Names an event by its time and sizes, never its text: an app's line may hold a
/// secret until the sanitizer has seen it, and `Debug` reaches wherever an event is
/// formatted (a queue, a batch, an assertion's message).
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("timestamp_ms", &self.timestamp_ms)
            .field("bytes", &self.json.len())
            .field("head", &self.head)
            .field("redacted_to", &self.redacted_to)
            .field("vouched", &self.vouched.is_some())
            .finish_non_exhaustive()
    }
}

/// [`Event::sanitized`] of an event's parts: its text `json` and what the structurer
/// knows of it.
fn sanitized<'a>(
    sanitizer: &Sanitizer,
    json: &'a str,
    head: usize,
    redacted_to: usize,
    vouched: Option<NoSecret>,
) -> Cow<'a, str> {
    if redacted_to == json.len() && redacted_to > head {
        return Cow::Borrowed(json);
    }
    if redacted_to > head {
        sanitizer.sanitize_outside(json, head..redacted_to)
    } else {
        sanitizer.sanitize_after_vouched(json, head, vouched)
    }
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
    /// The level of a text line on stderr that states none (DECKHAND_LOG_STDERR_LEVEL);
    /// `None`: such a line has no `level` key. Never applied to stdout: a line there
    /// that states no level has none either.
    pub stderr_level: Option<Level>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            multiline: true,
            strip_ansi: true,
            context: None,
            stderr_level: None,
        }
    }
}

/// Turns the lines of one stream into events. One per stream: continuation lines only
/// ever join lines of their own stream.
pub struct Structurer {
    stream: Stream,
    multiline: bool,
    strip_ansi: bool,
    /// The level of an event whose first line states none: the configured stderr
    /// level on stderr, else none.
    unstated_level: Option<Level>,
    /// `,"ecs":{…}` ready to splice in, computed once.
    context_field: String,
    pending: Option<Pending>,
    /// Redacts a text event's message before it is written ([`Structurer::redact_with`]).
    sanitizer: Option<Arc<Sanitizer>>,
    /// Per level a text event can have (none first, then [`Level::ALL`]): whether the
    /// sanitizer finds nothing in the agent's own fields around the message, whatever
    /// the time; worked out on first need, once per sanitizer ([`Event::redacted_to`]).
    clean_around: [Option<bool>; Level::ALL.len() + 1],
    /// Whether no loaded secret can reach into the fields an app's JSON line is closed
    /// with (the ECS context and `}`), so that the line's [`NoSecret`] holds for its
    /// event; worked out on first need, once per sanitizer.
    clean_close: Option<bool>,
    /// Messages the sanitizer failed on (a bug), not yet counted by the caller.
    failed: u64,
    /// Writes the events' timestamps (the date worked out once per second).
    stamps: Rfc3339Writer,
    /// The message buffer of the last text event, cleared and kept for the next line
    /// (one allocation less per line); dropped when it grew past [`SPARE_MAX`].
    spare: String,
    /// Where the events' texts are written.
    texts: Texts,
    /// An event's JSON as it is put together (a text event's, or an app's JSON line
    /// with the ECS context added), cleared and kept for the next (dropped when it grew
    /// past [`SPARE_MAX`]), then sanitized and copied into [`Structurer::texts`].
    scratch: String,
}

/// Names what a structurer is doing, never what it holds: its pending event, spare
/// buffers and texts are the app's output, not yet redacted.
impl fmt::Debug for Structurer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Structurer")
            .field("stream", &self.stream)
            .field("multiline", &self.multiline)
            .field("strip_ansi", &self.strip_ansi)
            .field("pending", &self.pending.is_some())
            .field("redacting", &self.sanitizer.is_some())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The events' texts, written one after the other into blocks of [`BLOCK`] bytes: an
/// event's text is a shared, counted slice of its block, so writing one allocates
/// nothing but, every [`BLOCK`] bytes, a block, and the block is freed at once when the
/// last event in it has been shipped (or dropped). One allocation and one free per
/// event were the pipeline's largest cost after the detectors on short lines.
///
/// A block lives as long as any of its events. A structurer with a sanitizer (the
/// capture's) keeps only final texts ([`Structurer::finish`]), so a queue holds at most
/// a block at each end beyond the bytes its events count for, whatever the events; an
/// event replaced later (split into parts, or sanitized by a caller because its
/// structurer had no sanitizer) leaves its first text in the block until its neighbours
/// go.
struct Texts {
    block: StrMut,
}

/// The bytes of a block of events' texts (a few hundred events of a typical app).
const BLOCK: usize = 32 * 1024;

impl Texts {
    fn new() -> Texts {
        Texts {
            block: StrMut::new(),
        }
    }

    /// `text` as an event's text: in the block being filled, or in a new one when it
    /// has no room; a text of more than half a block that does not fit in memory of its
    /// own, so that the block's room is left for the next.
    fn keep(&mut self, text: &str) -> Str {
        let room = self.block.inner().capacity() - self.block.inner().len();
        if text.len() > room && text.len() > BLOCK / 2 {
            let mut own = block(text.len());
            own.push_str(text);
            return own.freeze();
        }
        if text.len() > room {
            self.block = block(BLOCK);
        }
        self.block.push_str(text);
        self.block.split_built().freeze()
    }
}

/// An empty block of `capacity` bytes.
fn block(capacity: usize) -> StrMut {
    // An empty buffer is valid UTF-8: the check cannot fail.
    StrMut::try_from(BytesMut::with_capacity(capacity)).unwrap_or_default()
}

/// The largest message buffer kept for the next line: a long line's buffer is not held
/// while the app is idle.
const SPARE_MAX: usize = 16 * 1024;

/// What the sanitizer made of a text event's message.
enum Redacted {
    /// No sanitizer looked at it: the event's sanitizing is left to the caller.
    NotLooked,
    /// Looked at, nothing to redact.
    Nothing,
    /// The message with its redactions.
    To(String),
}

/// A text event that continuation lines may still join.
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
    /// Every line of `message` is, byte for byte, a line the sanitizer vouched for
    /// ([`Structurer::push_vouched`]).
    vouched: Option<NoSecret>,
}

impl Pending {
    fn new(received_ms: i64, text: String, kind: Block, vouched: Option<NoSecret>) -> Self {
        Pending {
            received_ms,
            json_bytes: None,
            vouched,
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
    /// After a Go `panic: ` or `fatal error: ` line: the goroutine dump, as long as its
    /// lines look like one ([`go_trace_line`]).
    GoPanic,
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
            unstated_level: match stream {
                Stream::Stderr => options.stderr_level,
                Stream::Stdout | Stream::Agent => None,
            },
            context_field,
            pending: None,
            sanitizer: None,
            clean_around: [None; Level::ALL.len() + 1],
            clean_close: None,
            failed: 0,
            stamps: Rfc3339Writer::default(),
            spare: String::new(),
            texts: Texts::new(),
            scratch: String::new(),
        }
    }

    /// Text events from now on have their message redacted by `sanitizer` as plain
    /// text, before it is escaped into the event ([`Event::redacted_to`]: the
    /// sanitizer then looks only for loaded secrets in the agent's own fields around
    /// it). The capture gives the sanitizer in use with each chunk it reads, so a
    /// rotation takes effect as it does for the rest of the pipeline.
    pub fn redact_with(&mut self, sanitizer: Arc<Sanitizer>) {
        if !self
            .sanitizer
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &sanitizer))
        {
            self.clean_around = Default::default();
            self.clean_close = None;
            self.sanitizer = Some(sanitizer);
        }
    }

    /// The sanitizer text events' messages are redacted with: their events are to be
    /// sanitized with it too ([`Event::sanitized`]).
    pub fn sanitizer(&self) -> Option<Arc<Sanitizer>> {
        self.sanitizer.clone()
    }

    /// Whether the sanitizer finds nothing in the fields a text event of `level` has
    /// around its message, whatever its time ([`Sanitizer::may_find_around`]): looked
    /// at once per sanitizer and level, not per event.
    fn clean_around(&mut self, level: Option<Level>) -> bool {
        let Some(sanitizer) = &self.sanitizer else {
            return false;
        };
        let slot = level.map_or(0, |l| {
            1 + Level::ALL
                .iter()
                .position(|x| *x == l)
                .unwrap_or(Level::ALL.len())
        });
        if let Some(Some(clean)) = self.clean_around.get(slot) {
            return *clean;
        }
        let mut before = String::new();
        push_text_head(&mut before, |t| push_rfc3339(t, 0), level, self.stream);
        let after = format!("{}}}", self.context_field);
        let clean = !sanitizer.may_find_around(&before, &after);
        if let Some(verdict) = self.clean_around.get_mut(slot) {
            *verdict = Some(clean);
        }
        clean
    }

    /// How many messages the sanitizer failed on since the last call (each became an
    /// event that says so and carries none of it).
    pub fn take_failed(&mut self) -> u64 {
        std::mem::take(&mut self.failed)
    }

    /// `text` as an owned message, in the spare buffer when it is borrowed.
    fn owned(&mut self, text: Cow<'_, str>) -> String {
        match text {
            Cow::Owned(text) => text,
            Cow::Borrowed(text) => {
                let mut message = std::mem::take(&mut self.spare);
                message.clear();
                message.push_str(text);
                message
            }
        }
    }

    /// Takes one line (without its newline) received at `now_ms`; returns the events
    /// it completes (the pending one it does not continue, and itself if it cannot be
    /// continued). Empty lines produce nothing: the service rejects empty messages.
    pub fn push(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Event>) {
        self.push_vouched(line, now_ms, out, None);
    }

    /// [`Structurer::push`] of a line the sanitizer vouched for: no loaded secret
    /// stands in it as written ([`Sanitizer::secret_starts`]). That holds for the
    /// event's text only where it is the line as read (valid UTF-8, nothing stripped)
    /// and the sanitizer is still the one in use when the event is written.
    pub fn push_vouched(
        &mut self,
        line: &[u8],
        now_ms: i64,
        out: &mut Vec<Event>,
        vouched: Option<NoSecret>,
    ) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = decode(line, self.strip_ansi);
        let vouched = vouched.filter(|_| matches!(text, Cow::Borrowed(_)));
        self.push_text(text, now_ms, out, vouched);
    }

    /// [`Structurer::push_vouched`] of a line already known to be UTF-8 (its chunk was
    /// checked whole). `colour`: its chunk holds an escape byte; without one, no line
    /// of it has a colour code to strip.
    pub fn push_str_vouched(
        &mut self,
        line: &str,
        colour: bool,
        now_ms: i64,
        out: &mut Vec<Event>,
        vouched: Option<NoSecret>,
    ) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let text = match colour {
            true => without_colour(Cow::Borrowed(line), self.strip_ansi),
            false => Cow::Borrowed(line),
        };
        let vouched = vouched.filter(|_| matches!(text, Cow::Borrowed(_)));
        self.push_text(text, now_ms, out, vouched);
    }

    /// [`Structurer::push`] of a line the caller hands over: its memory becomes the
    /// event's message (when the line is valid UTF-8 and nothing is stripped) instead
    /// of being copied, which matters for a line of megabytes.
    pub fn push_owned(&mut self, mut line: Vec<u8>, now_ms: i64, out: &mut Vec<Event>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = match decode(&line, self.strip_ansi) {
            Cow::Owned(text) => text,
            // Valid as it is: this check cannot fail, and costs less than a copy.
            Cow::Borrowed(_) => String::from_utf8(line)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        };
        self.push_text(Cow::Owned(text), now_ms, out, None);
    }

    /// [`Structurer::push`] of a line already decoded.
    fn push_text(
        &mut self,
        text: Cow<'_, str>,
        now_ms: i64,
        out: &mut Vec<Event>,
        vouched: Option<NoSecret>,
    ) {
        if trim(&text).is_empty() {
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
                        // A secret of one line stands within one of them; one of
                        // several lines is looked for in the joined text whatever the
                        // word ([`Sanitizer::secret_starts`]).
                        p.vouched = p.vouched.filter(|v| Some(*v) == vouched);
                        return;
                    }
                    // Full: the line starts the next event, which stays in the block
                    // the full one was in (the rest of a PEM block or traceback still
                    // joins, now to the new event).
                    let kind = block_after(p.kind, &text);
                    self.flush(out);
                    let message = self.owned(text);
                    self.pending = Some(Pending::new(now_ms, message, kind, vouched));
                    return;
                }
            }
        }
        self.flush(out);
        if let Some(event) = self.json_event(&text, now_ms, vouched) {
            out.push(event);
            return;
        }
        let message = self.owned(text);
        let mut pending = Pending::new(now_ms, message, Block::Plain, vouched);
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

    fn json_event(&mut self, text: &str, now_ms: i64, vouched: Option<NoSecret>) -> Option<Event> {
        let trimmed = trim(text);
        if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
            return None;
        }
        // Most JSON lines are plain objects, read at once; `serde_json` decides the rest.
        let probe = match quick_object(trimmed) {
            Quick::Object(values) => Probe::of(values),
            Quick::Unsure => None,
        }
        .or_else(|| serde_json::from_str(trimmed).ok())?;
        let app_ms = probe.stamps.into_iter().flatten().find_map(stamp_ms);
        let timestamp_ms = accept_timestamp(app_ms, now_ms);
        let open = match trimmed.strip_suffix('}') {
            Some(open) if !self.context_field.is_empty() => open,
            _ => return Some(self.finish(timestamp_ms, trimmed, 0, 0, vouched)),
        };
        // `open` starts with `{` (checked above): is the object empty?
        let empty = open.get(1..).is_some_and(|inside| inside.trim().is_empty());
        // The line vouches for `open`, a part of it; the rest is the agent's.
        let vouched = if empty || !self.clean_close() {
            None
        } else {
            vouched
        };
        let mut json = std::mem::take(&mut self.scratch);
        json.clear();
        json.push_str(open);
        let field = &self.context_field;
        json.push_str(if empty {
            field.strip_prefix(',').unwrap_or(field)
        } else {
            field
        });
        json.push('}');
        let event = self.finish(timestamp_ms, &json, 0, 0, vouched);
        self.keep_scratch(json);
        Some(event)
    }

    /// Whether no loaded secret can reach into the context field and `}` that close an
    /// app's JSON line ([`Sanitizer::may_reach_into`]), once per sanitizer.
    fn clean_close(&mut self) -> bool {
        let Some(sanitizer) = &self.sanitizer else {
            return false;
        };
        *self
            .clean_close
            .get_or_insert_with(|| !sanitizer.may_reach_into(&format!("{}}}", self.context_field)))
    }

    fn text_event(&mut self, p: Pending) -> Event {
        let redacted = match &self.sanitizer {
            None => Redacted::NotLooked,
            Some(sanitizer) => {
                let redact = || sanitizer.redact_text_vouched(&p.message, p.vouched);
                match catch_unwind(AssertUnwindSafe(redact)) {
                    Ok(Cow::Borrowed(_)) => Redacted::Nothing,
                    Ok(Cow::Owned(text)) => Redacted::To(text),
                    // Never ship what could not be sanitized.
                    Err(_) => {
                        self.failed += 1;
                        return failed_event(
                            Some(self.stream),
                            p.message.len(),
                            p.received_ms,
                            "sanitize",
                        );
                    }
                }
            }
        };
        self.write_text_event(p, redacted)
    }

    /// Writes `p` as a text event, with its message as `redacted` says.
    fn write_text_event(&mut self, p: Pending, redacted: Redacted) -> Event {
        let level = text_level(&p.message, p.lines > 1).or(self.unstated_level);
        let mut json = std::mem::take(&mut self.scratch);
        json.clear();
        let stamps = &mut self.stamps;
        push_text_head(
            &mut json,
            |t| stamps.push(t, p.received_ms),
            level,
            self.stream,
        );
        let head = json.len();
        match &redacted {
            Redacted::To(text) => push_json_string(&mut json, text),
            Redacted::NotLooked | Redacted::Nothing => push_json_string(&mut json, &p.message),
        }
        let redacted_to = match redacted {
            Redacted::NotLooked => 0,
            Redacted::Nothing | Redacted::To(_) => json.len(),
        };
        json.push_str(&self.context_field);
        json.push('}');
        // The fields around the message found clean once for all events with them:
        // the whole event is done.
        let redacted_to = if redacted_to > 0 && self.clean_around(level) {
            json.len()
        } else {
            redacted_to
        };
        let event = self.finish(p.received_ms, &json, head, redacted_to, None);
        self.keep_scratch(json);
        if p.message.capacity() <= SPARE_MAX {
            self.spare = p.message;
        }
        event
    }

    /// The event of `json`, its text as written (`head`, `redacted_to` and `vouched`
    /// as in [`Event`]), with its text kept in a block ([`Texts`]). With a sanitizer,
    /// sanitized here, whole, before it is kept: a block then never holds a text its
    /// event no longer uses (a text replaced by its redaction would stay in memory as
    /// long as any event beside it, uncounted by the queues). Without one, the caller
    /// sanitizes it.
    fn finish(
        &mut self,
        timestamp_ms: i64,
        json: &str,
        head: usize,
        redacted_to: usize,
        vouched: Option<NoSecret>,
    ) -> Event {
        let done = redacted_to == json.len() && redacted_to > head;
        let Some(sanitizer) = self.sanitizer.as_ref().filter(|_| !done) else {
            return Event {
                timestamp_ms,
                json: self.texts.keep(json),
                head,
                redacted_to,
                vouched,
            };
        };
        let clean = || sanitized(sanitizer, json, head, redacted_to, vouched);
        match catch_unwind(AssertUnwindSafe(clean)) {
            Ok(Cow::Borrowed(json)) => {
                let json = self.texts.keep(json);
                Event {
                    timestamp_ms,
                    redacted_to: json.len(),
                    json,
                    head,
                    vouched: None,
                }
            }
            Ok(Cow::Owned(clean)) => {
                // The agent's fields at the start, unless a redaction reached into them.
                let same_head = json.get(..head).is_some_and(|own| clean.starts_with(own));
                let json = self.texts.keep(&clean);
                Event {
                    timestamp_ms,
                    redacted_to: json.len(),
                    json,
                    head: if same_head { head } else { 0 },
                    vouched: None,
                }
            }
            // Never ship what could not be sanitized.
            Err(_) => {
                self.failed += 1;
                failed_event(Some(self.stream), json.len(), timestamp_ms, "sanitize")
            }
        }
    }

    /// Keeps `json`, the scratch buffer given back, for the next event unless it grew
    /// past [`SPARE_MAX`].
    fn keep_scratch(&mut self, json: String) {
        if json.capacity() <= SPARE_MAX {
            self.scratch = json;
        }
    }
}

/// Writes a text event's fields before its message, `{"timestamp":"…","level":"…",
/// "stream":"…","message":`, the time by `time` (no `level` key without a level).
fn push_text_head(
    json: &mut String,
    time: impl FnOnce(&mut String),
    level: Option<Level>,
    stream: Stream,
) {
    json.push_str("{\"timestamp\":\"");
    time(json);
    if let Some(level) = level {
        json.push_str("\",\"level\":\"");
        json.push_str(level.as_str());
    }
    json.push_str("\",\"stream\":\"");
    json.push_str(stream.as_str());
    json.push_str("\",\"message\":");
}

/// Stands in for a line a stage failed on: says what was lost, carries none of it.
pub fn failed_event(
    stream: Option<Stream>,
    lost_bytes: usize,
    timestamp_ms: i64,
    stage: &str,
) -> Event {
    let mut json = String::with_capacity(256);
    json.push_str("{\"timestamp\":\"");
    push_rfc3339(&mut json, timestamp_ms);
    json.push_str("\",\"level\":\"error\",\"source\":\"agent\",");
    if let Some(stream) = stream {
        json.push_str("\"stream\":\"");
        json.push_str(stream.as_str());
        json.push_str("\",");
    }
    json.push_str("\"message\":");
    push_json_string(
        &mut json,
        &format!("deckhand's {stage} stage failed on a line of {lost_bytes} bytes (an internal error, please report it); the line was dropped and counted in failed_lines"),
    );
    json.push_str(",\"deckhand_lost_bytes\":");
    json.push_str(&lost_bytes.to_string());
    json.push('}');
    Event::new(timestamp_ms, json)
}

/// The fields of an app's JSON line we look at: `timestamp`, `time`, `@timestamp` and
/// `ts`, in that order of preference. Deserializing it also checks that the whole line
/// is a JSON object that `serde_json` reads back (see [`Checked`]); a timestamp key
/// given twice makes the line text.
#[cfg_attr(test, derive(Debug))]
struct Probe<'a> {
    stamps: [Option<Scalar<'a>>; 4],
}

impl<'a> Probe<'a> {
    /// The probe of a line [`quick_object`] read: each timestamp value read as
    /// `serde_json` reads it in the whole line. A string is its text between the
    /// quotes: the quick reader takes none with an escape or a control character.
    fn of(values: [Option<&'a str>; 4]) -> Option<Probe<'a>> {
        let mut stamps: [Option<Scalar>; 4] = [None, None, None, None];
        for (stamp, value) in stamps.iter_mut().zip(values) {
            if let Some(value) = value {
                let plain = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                *stamp = Some(match plain {
                    Some(text) => Scalar::Text(Cow::Borrowed(text)),
                    None => serde_json::from_str(value).ok()?,
                });
            }
        }
        Some(Probe { stamps })
    }
}

impl<'de> Deserialize<'de> for Probe<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = Probe<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'de>, A::Error> {
                let mut stamps: [Option<Scalar>; 4] = [None, None, None, None];
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
/// A timestamp field's value in epoch milliseconds: a number, or a string holding
/// RFC 3339 or a number.
fn stamp_ms(value: Scalar) -> Option<i64> {
    match value {
        Scalar::Number(n) => epoch_number_ms(n),
        Scalar::Text(s) => {
            parse_rfc3339_ms(&s).or_else(|| s.parse().ok().and_then(epoch_number_ms))
        }
        Scalar::Other => None,
    }
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
/// Whether `line` continues the pending event. Looks at `line` only (never at the
/// message so far), so joining stays linear however long the event grows.
fn continues(p: &Pending, line: &str) -> bool {
    match p.kind {
        Block::Pem | Block::Traceback => true,
        Block::GoPanic => go_trace_line(line),
        Block::Plain => {
            line.starts_with([' ', '\t'])
                || line.starts_with("Caused by:")
                || line.starts_with("at ")
                || line.starts_with("...")
                || line.starts_with("-----END")
        }
    }
}

/// `text` without the white space around it ([`str::trim`]), at the cost of two byte
/// compares when its first and last bytes are visible ASCII (most lines: `trim` reads a
/// character at each end and tests it against Unicode's white space).
fn trim(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    let bytes = text.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// Whether the first line of an event opens a block. Called once per event, when the
/// message is that one line.
fn start_block(p: &mut Pending) {
    let t = p.message.trim_start();
    // The first byte before any comparison: most lines start a block of none.
    p.kind = match (t.as_bytes().first(), p.message.as_bytes().first()) {
        (Some(b'T'), _) if t.starts_with("Traceback (most recent call last):") => Block::Traceback,
        (Some(b'-'), _) if t.starts_with("-----BEGIN ") && !t.contains("-----END ") => Block::Pem,
        // Go's runtime writes these at the start of the line, then a blank line and
        // the goroutines.
        (_, Some(b'p')) if p.message.starts_with("panic: ") => Block::GoPanic,
        (_, Some(b'f')) if p.message.starts_with("fatal error: ") => Block::GoPanic,
        _ => p.kind,
    };
}

/// The block a pending event is in after `line` joined it: a block ends on its last
/// line, the exception line of a traceback (the first line that is not indented) or a
/// PEM END line. A Go panic has no last line (the program is gone): it ends at the
/// first line that is not part of a goroutine dump, which [`continues`] does not join.
/// Looks at `line` only.
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

/// Whether `line` belongs to the goroutine dump after a Go `panic:` or `fatal error:`
/// line: `goroutine 1 [running]:`, a frame's function (`main.main()`,
/// `main.(*Server).handle(0xc000010000, {0x4b0f3a, 0x3})`: no space before its first
/// `(`, and a `)` at the end), the indented file line under it, `created by …`,
/// `[signal SIGSEGV: …]`, `runtime stack:`, a repeated `panic: …`. The blank lines
/// between them are skipped by [`Structurer::push`]. Looks at `line` only.
fn go_trace_line(line: &str) -> bool {
    const STARTS: [&str; 7] = [
        "goroutine ",
        "created by ",
        "[signal ",
        "runtime stack:",
        "panic: ",
        "fatal error: ",
        "...",
    ];
    line.starts_with([' ', '\t'])
        || STARTS.iter().any(|s| line.starts_with(s))
        || (line.ends_with(')')
            && line
                .split_once('(')
                .is_some_and(|(function, _)| !function.is_empty() && !function.contains(' ')))
}

/// A level word counts within this many bytes of an event's first line ("near its
/// start").
const LEVEL_WORD_SPAN: usize = 64;
/// The longest exception name [`exception_line`] reads: the JVM's long ones
/// (`org.springframework.beans.factory.UnsatisfiedDependencyException`) are under 70.
const MAX_EXCEPTION_NAME: usize = 256;

/// The level an event's first line states, if it states one; `None` otherwise, and
/// the caller invents none. In this order:
/// - the first line of a crash, an error: Python's `Traceback (most recent call
///   last):`, the JVM's `Exception in thread "main" …`, an exception's name at the very
///   start of the line (`ValueError: bad value`, Node's `Error: boom`,
///   `java.lang.IllegalStateException: boom`: [`exception_line`]);
/// - a level word in the first 64 bytes (`ERROR`, `[warn]`, `level=debug`, git's
///   `fatal:`, Go's `panic:` and `fatal error:`), all upper or all lower case.
///
/// Only a bounded start of the first line is read (continuation lines never change an
/// event's level: a Python traceback's is its first line's), and nothing is allocated.
///
/// `lines`: the message may hold line ends (one of one line is not searched for one).
fn text_level(message: &str, lines: bool) -> Option<Level> {
    let line = message.trim_start_matches([' ', '\t']).as_bytes();
    // Enough for every check below: the longest exception name read, and its `: `.
    let head = &line[..line.len().min(MAX_EXCEPTION_NAME + 2)];
    let head = match lines {
        true => memchr::memchr(b'\n', head).map_or(head, |end| &head[..end]),
        false => head,
    };
    // The first byte before either comparison: most lines start with neither.
    let crash = match head.first() {
        Some(b'T') => head.starts_with(b"Traceback (most recent call last):"),
        Some(b'E') => head.starts_with(b"Exception in thread \""),
        _ => false,
    };
    if crash || exception_line(head) {
        return Some(Level::Error);
    }
    level_word(&head[..head.len().min(LEVEL_WORD_SPAN)])
}

/// `ValueError: bad value`, `Error: boom`, `java.lang.IllegalStateException: boom`, or
/// `java.lang.NullPointerException` alone: a name of ASCII letters, digits, `_`, `$`
/// and `.` that starts with a letter and ends in `Error` or `Exception` (as written in
/// class names), opening the line, followed by `:` and a space or tab, or by the
/// line's end. Prose does not pass: `Error handling is on`, `Errors: 0`,
/// `error: x` (that one is a level word).
fn exception_line(line: &[u8]) -> bool {
    let limit = line.len().min(MAX_EXCEPTION_NAME + 1);
    let name_len = line[..limit]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.')))
        .unwrap_or(limit);
    if name_len > MAX_EXCEPTION_NAME {
        return false;
    }
    let (name, rest) = line.split_at(name_len);
    name.first().is_some_and(u8::is_ascii_alphabetic)
        && (name.ends_with(b"Error") || name.ends_with(b"Exception"))
        && matches!(rest, [] | [b':'] | [b':', b' ' | b'\t', ..])
}

/// A level word (`ERROR`, `[warn]`, `level=debug`) in `head`: its first run of ASCII
/// letters that is one of the level names, in capitals or in lower case.
fn level_word(head: &[u8]) -> Option<Level> {
    let mut rest = head;
    while let Some(start) = rest.iter().position(u8::is_ascii_alphabetic) {
        let word = &rest[start..];
        let len = word
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(word.len());
        if let Some(level) = level_of(&word[..len]) {
            return Some(level);
        }
        rest = &word[len..];
    }
    None
}

/// The level `word` names, as written in capitals or in lower case. Each name has its
/// own length and first letter, so one comparison settles a word (a line's head is
/// read on every text line).
fn level_of(word: &[u8]) -> Option<Level> {
    let (name, level) = match (word.len(), word.first()? | 0x20) {
        (4, b'w') => ("WARN", Level::Warn),
        (4, b'i') => ("INFO", Level::Info),
        (5, b'f') => ("FATAL", Level::Fatal),
        (5, b'e') => ("ERROR", Level::Error),
        (5, b'd') => ("DEBUG", Level::Debug),
        (5, b't') => ("TRACE", Level::Trace),
        (5, b'p') => ("PANIC", Level::Fatal),
        (7, b'w') => ("WARNING", Level::Warn),
        (8, b'c') => ("CRITICAL", Level::Fatal),
        _ => return None,
    };
    // `name` is in capitals: as written, or all in lower case (no `memcmp` call for
    // a word of a few bytes).
    let named = word.eq_ignore_ascii_case(name.as_bytes())
        && (word.iter().all(u8::is_ascii_uppercase) || word.iter().all(u8::is_ascii_lowercase));
    named.then_some(level)
}

/// Bytes to text: invalid UTF-8 becomes U+FFFD ([`utf8_lossy`]), ANSI escape sequences
/// go (optionally).
fn decode(line: &[u8], strip_ansi: bool) -> Cow<'_, str> {
    without_colour(utf8_lossy(line), strip_ansi)
}

/// `text` without its ANSI escape sequences, when `strip_ansi`.
fn without_colour(text: Cow<'_, str>, strip_ansi: bool) -> Cow<'_, str> {
    // memchr's vectorized search: `str::contains` looks for a char a word at a time.
    if strip_ansi && memchr::memchr(0x1b, text.as_bytes()).is_some() {
        Cow::Owned(strip_ansi_codes(&text))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of `message`, which may hold line ends.
    fn level(message: &str) -> Option<Level> {
        text_level(message, true)
    }

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

    /// A text event's `head` ends where the message starts, and holds only the agent's
    /// own fields; an app's JSON line has none.
    #[test]
    fn a_text_events_head_is_the_agents_own_fields() {
        let multiline = Options {
            multiline: true,
            stderr_level: Some(Level::Error),
            ..Options::default()
        };
        for (stream, options, lines) in [
            (
                Stream::Stdout,
                Options::default(),
                vec![&b"ERROR token=abc"[..]],
            ),
            (
                Stream::Stdout,
                Options::default(),
                vec![&b"no level here"[..]],
            ),
            (
                Stream::Stderr,
                multiline.clone(),
                vec![&b"Traceback (most recent call last):"[..], b"  File \"x\""],
            ),
            (Stream::Stderr, multiline, vec![&b"\"quoted\": 1"[..]]),
        ] {
            let out = run(stream, &options, &lines);
            let e = &out[0];
            let (head, message) = e.json.split_at(e.head);
            assert!(head.ends_with(",\"message\":"), "{}", e.json);
            assert!(message.starts_with('"'), "{}", e.json);
            let mut fields = parsed(&Event::new(0, format!("{}\"\"}}", head)))
                .as_object()
                .cloned()
                .unwrap_or_default();
            fields.remove("message");
            let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            assert!(
                keys.iter()
                    .all(|k| ["timestamp", "level", "stream"].contains(k)),
                "{keys:?}"
            );
            assert_eq!(fields["stream"], stream.as_str());
        }
        let json = run(
            Stream::Stdout,
            &Options::default(),
            &[br#"{"msg":"token=abc"}"#],
        );
        assert_eq!(json[0].head, 0);
    }

    /// Each text line's message buffer is reused for the next line: nothing of one
    /// message is left in the next, and a long line's buffer is not kept.
    #[test]
    fn the_reused_message_buffer_holds_only_its_own_line() {
        let long = "x".repeat(SPARE_MAX * 2);
        let lines: [&[u8]; 5] = [
            b"first line, longer",
            b"b",
            long.as_bytes(),
            b"c",
            b"\x1b[31mred\x1b[0m",
        ];
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        for line in lines {
            s.push(line, NOW, &mut out);
            assert!(s.spare.capacity() <= SPARE_MAX);
        }
        s.flush(&mut out);
        let messages: Vec<String> = out
            .iter()
            .map(|e| parsed(e)["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            messages,
            ["first line, longer", "b", long.as_str(), "c", "red"]
        );
    }

    /// Events' texts are written one after the other into shared blocks: each event
    /// holds only its own text, a text longer than half a block takes memory of its own
    /// and leaves the block's room to the next, and a full block is followed by a new
    /// one.
    #[test]
    fn texts_share_blocks_and_hold_only_their_own_bytes() {
        let long = "y".repeat(BLOCK);
        let filler = format!("{{\"f\":\"{}\"}}", "z".repeat(BLOCK / 3));
        let lines: Vec<&[u8]> = vec![
            b"a first line",
            br#"{"msg":"json"}"#,
            long.as_bytes(),
            br#"{"m":1}"#,
            filler.as_bytes(),
            filler.as_bytes(),
            filler.as_bytes(),
            br#"{"m":2}"#,
        ];
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        for line in &lines {
            s.push(line, NOW, &mut out);
        }
        s.flush(&mut out);
        assert_eq!(out.len(), lines.len());
        assert_eq!(parsed(&out[0])["message"], "a first line");
        assert_eq!(out[1].json, r#"{"msg":"json"}"#);
        assert_eq!(parsed(&out[2])["message"], long.as_str());
        assert_eq!(out[3].json, r#"{"m":1}"#);
        assert_eq!(out[7].json, r#"{"m":2}"#);
        let end = |e: &Event| e.json.as_ptr() as usize + e.json.len();
        let start = |e: &Event| e.json.as_ptr() as usize;
        // One after the other in one block; the long text elsewhere.
        assert_eq!(end(&out[0]), start(&out[1]));
        assert_eq!(end(&out[1]), start(&out[3]));
        assert_ne!(end(&out[1]), start(&out[2]));
        assert_eq!(end(&out[3]), start(&out[4]));
        assert_eq!(end(&out[4]), start(&out[5]));
        // Three fillers of a third of a block do not fit one: the third starts anew.
        assert_ne!(end(&out[5]), start(&out[6]));
        assert_eq!(end(&out[6]), start(&out[7]));
        // The texts outlive their structurer and each other.
        drop(s);
        let last = out.pop();
        out.truncate(1);
        assert_eq!(parsed(&out[0])["message"], "a first line");
        assert_eq!(last.map(|e| e.json), Some(r#"{"m":2}"#.into()));
    }

    /// A structurer's `Debug` names its state, never the app's text it holds (a
    /// pending event, the spare buffers), which is not redacted yet.
    #[test]
    fn debug_shows_no_text_held() {
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        for line in [
            &b"Traceback (most recent call last):"[..],
            b"  password=hunter2-debug-me",
        ] {
            s.push(line, NOW, &mut out);
        }
        assert!(s.has_pending());
        let shown = format!("{s:?}");
        assert!(shown.contains("pending: true"), "{shown}");
        for piece in ["hunter2", "Traceback", "password"] {
            assert!(!shown.contains(piece), "{shown}");
        }
    }

    #[test]
    fn an_events_debug_shows_its_sizes_not_its_text() {
        // Without a sanitizer: the text as the app wrote it, as an event of the
        // agent's own is before the capture sanitizes it.
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        s.push(b"password=hunter2-debug-me", NOW, &mut out);
        s.push(br#"{"msg":"token hunter2-debug-me"}"#, NOW, &mut out);
        s.flush(&mut out);
        assert_eq!(out.len(), 2);
        let batch = crate::batch::Batch {
            events: out.clone(),
            bytes: 0,
        };
        for shown in [format!("{out:?}"), format!("{batch:?}")] {
            assert!(
                shown.contains(&format!("bytes: {}", out[0].json.len())),
                "{shown}"
            );
            for piece in ["hunter2", "password", "token", "msg"] {
                assert!(!shown.contains(piece), "{shown}");
            }
        }
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
        assert_eq!(parsed(&out[2])["stream"], "stderr");
        assert_eq!(
            parsed(&out[2]).get("level"),
            None,
            "stderr text that states no level gets none"
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
    fn level_words() {
        assert_eq!(level("[error] x"), Some(Level::Error));
        assert_eq!(level("ERROR x"), Some(Level::Error));
        assert_eq!(level("informal errors"), None);
        assert_eq!(level("Info x"), None);
        assert_eq!(level("level=debug msg=x"), Some(Level::Debug));
        assert_eq!(level("fatal: not a git repository"), Some(Level::Fatal));
        assert_eq!(level("FATAL db gone"), Some(Level::Fatal));
        assert_eq!(level("migrate: warning: slow"), Some(Level::Warn));
        assert_eq!(level("migrate: applying V1__init"), None);
    }

    /// The level of the first line only: what a continuation line says is not the
    /// event's level.
    #[test]
    fn only_the_first_line_states_the_level() {
        assert_eq!(level("done\n  error count: 0"), None);
        assert_eq!(level("  WARN indented"), Some(Level::Warn));
    }

    #[test]
    fn crash_announcements_are_errors() {
        for line in [
            "Traceback (most recent call last):",
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "Error: boom",
            "Error",
            "TypeError: Cannot read properties of undefined (reading 'x')",
            "ValueError: invalid literal for int() with base 10: 'debug'",
            "java.lang.IllegalStateException: boom",
            "java.lang.NullPointerException",
            "com.example.Outer$InnerException: x",
            "org.postgresql.util.PSQLException:\tFATAL: x",
        ] {
            assert_eq!(level(line), Some(Level::Error), "{line}");
        }
    }

    #[test]
    fn prose_that_starts_like_an_exception_is_not_one() {
        for line in [
            "Error handling is on",
            "Errors: 0",
            "Exceptions: none",
            "Exception handling done",
            "NoSuchThing: x",
            "3Error: x",
            ".Error: x",
            "Error:x",
            "the Error: x",
            "Tracebacks are kept",
        ] {
            assert_eq!(level(line), None, "{line}");
        }
        let long = format!("{}Exception: x", "a".repeat(MAX_EXCEPTION_NAME));
        assert_eq!(level(&long), None, "a name past the bound is not read");
    }

    /// The events of `lines` on stderr, as JSON, with `options`.
    fn stderr_events(options: &Options, lines: &[&str]) -> Vec<serde_json::Value> {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        run(Stream::Stderr, options, &lines)
            .iter()
            .map(parsed)
            .collect()
    }

    #[test]
    fn go_log_output_on_stderr_has_no_level() {
        let out = stderr_events(
            &Options::default(),
            &["2026/11/18 08:00:00 listening on :8080"],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["stream"], "stderr");
        assert_eq!(out[0]["message"], "2026/11/18 08:00:00 listening on :8080");
        assert!(out[0].get("level").is_none(), "{}", out[0]);
        assert_eq!(
            out[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["message", "stream", "timestamp"]
        );
    }

    #[test]
    fn stdout_text_without_a_level_word_has_no_level_whatever_the_setting() {
        let options = Options {
            stderr_level: Some(Level::Info),
            ..Options::default()
        };
        let out = run(Stream::Stdout, &options, &[b"server started"]);
        assert!(parsed(&out[0]).get("level").is_none(), "{}", out[0].json);
        let mut stamp = String::new();
        crate::time::push_rfc3339(&mut stamp, NOW);
        assert_eq!(
            out[0].json,
            format!("{{\"timestamp\":\"{stamp}\",\"stream\":\"stdout\",\"message\":\"server started\"}}")
        );
    }

    #[test]
    fn go_panic_is_one_fatal_event() {
        let lines = [
            "panic: runtime error: index out of range [3] with length 3",
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/app/main.go:8 +0x1d",
            "created by main.start in goroutine 1",
            "\t/app/main.go:5 +0x25",
            "exit status 2",
        ];
        let out = stderr_events(&Options::default(), &lines);
        assert_eq!(out.len(), 2, "{out:#?}");
        // Go's runtime: a panic ends the program. The level word `panic` has always
        // read as `fatal`, the same as `FATAL`.
        assert_eq!(out[0]["level"], "fatal");
        assert_eq!(out[0]["message"].as_str().unwrap().lines().count(), 6);
        assert!(out[1].get("level").is_none(), "{}", out[1]);
        let out = stderr_events(
            &Options::default(),
            &[
                "fatal error: all goroutines are asleep - deadlock!",
                "",
                "goroutine 1 [chan receive]:",
                "main.(*Server).wait(0xc000010000, {0x4b0f3a, 0x3})",
                "\t/app/main.go:12 +0x2d",
            ],
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0]["level"], "fatal");
    }

    #[test]
    fn python_traceback_is_one_error_event() {
        let out = stderr_events(
            &Options::default(),
            &[
                "Traceback (most recent call last):",
                "  File \"/app/main.py\", line 3, in <module>",
                "    main()",
                "ValueError: bad value",
                "after",
            ],
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0]["level"], "error");
        assert!(out[1].get("level").is_none());
    }

    #[test]
    fn node_error_with_its_stack_is_one_error_event() {
        let out = stderr_events(
            &Options::default(),
            &[
                "Error: boom",
                "    at Object.<anonymous> (/app/index.js:1:7)",
                "    at Module._compile (node:internal/modules/cjs/loader:1554:14)",
            ],
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0]["level"], "error");
    }

    #[test]
    fn java_exception_with_its_stack_is_one_error_event() {
        let out = stderr_events(
            &Options::default(),
            &[
                "Exception in thread \"main\" java.lang.IllegalStateException: boom",
                "\tat com.example.App.main(App.java:5)",
                "Caused by: java.io.IOException: eof",
                "\t... 1 more",
                "java.lang.NullPointerException: x",
                "\tat com.example.App.run(App.java:9)",
            ],
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0]["level"], "error");
        assert_eq!(out[1]["level"], "error");
    }

    #[test]
    fn a_stated_level_is_kept() {
        let out = stderr_events(&Options::default(), &["[warn] x"]);
        assert_eq!(out[0]["level"], "warn");
        let info = Options {
            stderr_level: Some(Level::Info),
            ..Options::default()
        };
        let out = stderr_events(&info, &["[warn] x", "ERROR y"]);
        assert_eq!(
            out[0]["level"], "warn",
            "the setting never overrides a stated level"
        );
        assert_eq!(out[1]["level"], "error");
    }

    #[test]
    fn the_stderr_level_setting_fills_in_for_stderr_lines_that_state_none() {
        let info = Options {
            stderr_level: Some(Level::Info),
            ..Options::default()
        };
        let out = stderr_events(&info, &["2026/11/18 08:00:00 listening on :8080"]);
        assert_eq!(out[0]["level"], "info");
        let error = Options {
            stderr_level: Some(Level::Error),
            ..Options::default()
        };
        let out = stderr_events(&error, &["plain"]);
        assert_eq!(out[0]["level"], "error", "the old behaviour, on request");
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
    fn extreme_times_are_judged_without_overflow() {
        assert_eq!(accept_timestamp(Some(i64::MAX), i64::MAX), i64::MAX);
        assert_eq!(accept_timestamp(Some(i64::MIN), i64::MIN), i64::MIN);
        assert_eq!(accept_timestamp(Some(0), i64::MAX), i64::MAX);
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
        // 1,999 continuation lines of 500 bytes (about 1 MB): each line's escaped size
        // is measured once, and the message once when the first continuation comes. A
        // rescan of the message per line would read about 1 GB.
        let line = format!("  {}", "y".repeat(498));
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        let before = crate::json::MEASURED.with(std::cell::Cell::get);
        s.push(b"head", NOW, &mut out);
        for _ in 0..1_999 {
            s.push(line.as_bytes(), NOW, &mut out);
        }
        s.flush(&mut out);
        let measured = crate::json::MEASURED.with(std::cell::Cell::get) - before;
        assert_eq!(out.len(), 1);
        let joined = out[0].json.len();
        assert!(joined >= 1_999 * 500, "{joined}");
        assert!(
            measured <= 3 * joined,
            "{measured} bytes measured for an event of {joined}"
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
                "(panic: |fatal error: |goroutine |Exception in thread \"|[A-Za-z.$_]{0,12}(Error|Exception)(: )?|\\[?(ERROR|warn|Info|debug|TRACE|fatal)\\]?:? )?[ -~é\t()]{0,30}"
                    .prop_map(String::into_bytes),
            ]
        }

        /// Whether an event is one the structurer wrote from text (not an app's JSON
        /// object): its own key order, and nothing but its own keys.
        fn is_text_event(json: &str, v: &serde_json::Value) -> bool {
            json.starts_with("{\"timestamp\":\"")
                && v.as_object().is_some_and(|o| {
                    o.contains_key("stream")
                        && o.keys().all(|k| {
                            ["timestamp", "level", "stream", "message", "ecs"].contains(&k.as_str())
                        })
                })
        }

        /// The level a text event must carry: the one its first line states, else
        /// the configured one on stderr, else none.
        fn expected_level(
            message: &str,
            stream: Stream,
            stderr_level: Option<Level>,
        ) -> Option<&'static str> {
            level(message)
                .or(if stream == Stream::Stderr {
                    stderr_level
                } else {
                    None
                })
                .map(Level::as_str)
        }

        fn level_setting() -> impl Strategy<Value = Option<Level>> {
            prop_oneof![
                Just(None),
                proptest::sample::select(Level::ALL.to_vec()).prop_map(Some)
            ]
        }

        /// The level word as first written: every word against every name.
        fn level_word_by_every_name(head: &[u8]) -> Option<Level> {
            const LEVELS: [(&str, Level); 9] = [
                ("FATAL", Level::Fatal),
                ("CRITICAL", Level::Fatal),
                ("ERROR", Level::Error),
                ("WARNING", Level::Warn),
                ("WARN", Level::Warn),
                ("INFO", Level::Info),
                ("DEBUG", Level::Debug),
                ("TRACE", Level::Trace),
                ("PANIC", Level::Fatal),
            ];
            head.split(|b| !b.is_ascii_alphabetic()).find_map(|word| {
                LEVELS.iter().find_map(|&(name, level)| {
                    (word.eq_ignore_ascii_case(name.as_bytes())
                        && (word == name.as_bytes() || word.iter().all(u8::is_ascii_lowercase)))
                    .then_some(level)
                })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The level word found by length and first letter is the one every name
            /// tried against every word finds: level names in any casing among other
            /// words and bytes, and any bytes.
            #[test]
            fn the_level_word_is_the_first_name_in_capitals_or_lower_case(
                head in prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..80),
                    "([ \\[\\]=:0-9.é-]{0,3}(?i:fatal|critical|error|warning|warn|info|debug|trace|panic|panics|in|war|x){0,1}){0,8}"
                        .prop_map(String::into_bytes),
                ]
            ) {
                prop_assert_eq!(level_word(&head), level_word_by_every_name(&head));
            }
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
                stderr: bool,
                stderr_level in level_setting(),
            ) {
                let options = Options {
                    multiline,
                    strip_ansi,
                    context: context.then(|| Context {
                        task_id: "t\"1".into(),
                        container_name: "web".into(),
                        task_definition: "web:7".into(),
                    }),
                    stderr_level,
                };
                let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
                let mut s = Structurer::new(stream, &options);
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
                    if is_text_event(&e.json, &v) {
                        // A text event's level: one of the vocabulary, and only the
                        // one stated or configured.
                        let level = v.get("level").map(|l| l.as_str());
                        if let Some(level) = level {
                            prop_assert!(
                                level.is_some_and(|l| Level::ALL.iter().any(|k| k.as_str() == l)),
                                "{}", e.json
                            );
                        }
                        let message = v["message"].as_str().unwrap_or_default();
                        prop_assert_eq!(
                            level.flatten(),
                            expected_level(message, stream, stderr_level),
                            "{}", e.json
                        );
                    }
                }
            }

            /// A line handed over gives exactly the events the same line lent does,
            /// a trailing `\r`, invalid UTF-8 and ANSI codes included.
            #[test]
            fn a_line_handed_over_is_structured_as_one_lent(
                lines in proptest::collection::vec((line(), any::<bool>()), 1..12),
                multiline: bool,
                strip_ansi: bool,
            ) {
                let options = Options { multiline, strip_ansi, ..Options::default() };
                let (mut lent, mut owned) = (
                    Structurer::new(Stream::Stdout, &options),
                    Structurer::new(Stream::Stdout, &options),
                );
                let (mut from_lent, mut from_owned) = (Vec::new(), Vec::new());
                for (i, (mut line, cr)) in lines.into_iter().enumerate() {
                    if cr {
                        line.push(b'\r');
                    }
                    let now = 1_700_000_000_000 + i as i64;
                    lent.push(&line, now, &mut from_lent);
                    owned.push_owned(line, now, &mut from_owned);
                }
                lent.flush(&mut from_lent);
                owned.flush(&mut from_owned);
                let json = |events: &[Event]| events.iter().map(|e| e.json.clone()).collect::<Vec<_>>();
                prop_assert_eq!(json(&from_lent), json(&from_owned));
            }

            /// Any single line on stderr: never a panic, a level only from the
            /// vocabulary.
            #[test]
            fn any_line_gets_a_level_of_the_vocabulary_or_none(line in line(), stderr_level in level_setting()) {
                let options = Options { stderr_level, ..Options::default() };
                let out = run(Stream::Stderr, &options, &[line.as_slice()]);
                for e in &out {
                    let v: serde_json::Value = serde_json::from_str(&e.json)
                        .map_err(|err| TestCaseError::fail(format!("{err}: {}", e.json)))?;
                    if is_text_event(&e.json, &v) {
                        if let Some(level) = v.get("level") {
                            prop_assert!(
                                Level::ALL.iter().any(|k| level == k.as_str()),
                                "{}", e.json
                            );
                        }
                    }
                }
            }

            #[test]
            fn any_epoch_number_is_accepted_or_not_without_panic(n: f64) {
                let _ = accept_timestamp(epoch_number_ms(n), NOW);
            }
        }

        /// JSON text of every kind `quick_object` reads or leaves to `serde_json`:
        /// nested values, escapes, exponents, control characters, timestamp keys (twice
        /// too), then one byte inserted, removed or replaced somewhere.
        fn object_text() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                Just("false".to_owned()),
                "-?(0|[1-9][0-9]{0,22}|00)(\\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?",
                "\"[a-z é\\\\\"\u{1}\u{7f}\u{fffd}\u{f000}]{0,10}\"",
                // Long enough to cross the reader's windows of 64 bytes inside it.
                "\"[a-z é\u{7f}\u{f000}]{40,150}([\\\\\"\u{1}][a-z]{0,20})?\"",
                "\"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,3})?Z\"",
            ];
            let key = prop_oneof![
                Just("\"timestamp\"".to_owned()),
                Just("\"time\"".to_owned()),
                Just("\"@timestamp\"".to_owned()),
                Just("\"ts\"".to_owned()),
                Just("\"t\\u0073\"".to_owned()),
                "\"[a-z]{0,4}\"",
            ];
            let value = leaf.prop_recursive(4, 24, 4, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    proptest::collection::vec(("\"[a-z]{0,3}\"", inner), 0..4).prop_map(|kv| {
                        let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", kv.join(","))
                    }),
                ]
            });
            let object =
                proptest::collection::vec((key, value, "[ \t\n]{0,1}"), 0..5).prop_map(|kv| {
                    let kv: Vec<String> = kv
                        .iter()
                        .map(|(k, v, w)| format!("{k}{w}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", kv.join(","))
                });
            let edit = proptest::option::of((
                any::<prop::sample::Index>(),
                0..3u8,
                prop::sample::select(vec![
                    '"', '\\', ',', ':', '{', '}', '[', ']', ' ', '0', '1', 'e', '-', '.', 'n',
                    '\n', '\u{1}', 'é',
                ]),
            ));
            (object, edit).prop_map(|(mut text, edit)| {
                if let Some((at, how, c)) = edit {
                    let bounds: Vec<usize> = (0..=text.len())
                        .filter(|&i| text.is_char_boundary(i))
                        .collect();
                    let i = bounds[at.index(bounds.len())];
                    match how {
                        0 => text.insert(i, c),
                        _ if i < text.len() => {
                            let removed = text.remove(i);
                            if how == 2 && removed != c {
                                text.insert(i, c);
                            }
                        }
                        _ => {}
                    }
                }
                text
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

            /// What `quick_object` takes as an object, `serde_json` takes too, with the
            /// same timestamp values; and it takes most plain objects itself.
            #[test]
            fn the_quick_reader_says_yes_only_where_serde_json_does(text in object_text()) {
                let serde: Option<Probe> = serde_json::from_str(&text).ok();
                match quick_object(&text) {
                    Quick::Object(values) => {
                        let quick = Probe::of(values);
                        prop_assert!(serde.is_some(), "serde_json refuses {text:?}");
                        prop_assert!(quick.is_some(), "{text:?}");
                        prop_assert_eq!(quick.map(|p| p.stamps), serde.map(|p| p.stamps), "{:?}", text);
                    }
                    Quick::Unsure => {
                        let exponent = text.as_bytes().windows(2).any(|w| w[0].is_ascii_digit() && matches!(w[1], b'e' | b'E'));
                        let plain = !exponent && !text.contains(['\\', '\u{1}']) && !text.contains("00") && text.trim() == text;
                        prop_assert!(serde.is_none() || !plain, "a plain object left to serde_json: {text:?}");
                    }
                }
            }

            /// The quick look at a line's ends trims as `str::trim` does.
            #[test]
            fn trim_is_str_trim(text in "[ \t\n\u{a0}\u{2003}\u{3000}a{}é\u{0}]{0,12}") {
                prop_assert_eq!(trim(&text), text.trim());
            }

            #[test]
            fn the_quick_reader_takes_any_text(text in "(?s).{0,200}") {
                let _ = quick_object(&text);
            }
        }
    }
}
