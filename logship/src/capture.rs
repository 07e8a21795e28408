//! The app-facing half of the pipeline: read one of the app's pipes to the end, split
//! it into lines at memchr speed, and send each line through structure → sanitize →
//! (stdout copy) → split → buffer. What a line would cost on its own is paid once per
//! chunk read where it can be: the search for the loaded secrets ([`Vouch`]), the
//! UTF-8 check and the look for colour codes ([`Checked`]).
//!
//! It never waits on a sink: CloudWatch and the agent's own stdout copy both sit behind
//! byte-bounded buffers, so with the default drop-oldest nothing can slow the app.
//!
//! A stage that fails on a line (a bug: no input should make one fail) loses that line
//! only: the panic is caught, the line becomes an event that says how many bytes were
//! lost, it is counted in `failed_lines`, and the capture goes on, so the app's pipe
//! stays open.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::unix::pipe;

use conventions::Backoff;

use crate::account::Counters;
use crate::batch::{split, PartWriter};
use crate::buffer::Buffer;
use crate::json::{floor_char_boundary, push_json_text, utf8_lossy};
use crate::sanitize::{self, NoSecret};
use crate::structure::{failed_event, Event, Options, Stream, Structurer};
use crate::time::{now_ms, push_rfc3339};

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long a capture of the app's pipe lets its output gather after a read that
/// emptied it ([`AppPipe`]). An app that writes a line per `write` would otherwise wake
/// the logs thread every few lines (4,000 times a second at 20 MB/s), each wake a
/// context switch and a pass through the per-read work. In a millisecond or two (the
/// timer's tick) an app writing 20 MB/s fills 20 to 40 KB of a pipe of 1 MiB, so it
/// never waits for room (a smaller pipe is never rested on: [`RESTING_PIPE`]).
const GATHER: Duration = Duration::from_millis(1);
/// A line longer than this is streamed in parts as it is read ([`LongLine`]), so one
/// endless line cannot take all memory; it is still one event, one group of parts.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Everything the capture tasks share.
pub struct Pipeline {
    pub options: Options,
    pub sanitizer: Arc<sanitize::Current>,
    /// Where events wait for the shipper; `None` when shipping is off.
    pub buffer: Option<Arc<Buffer>>,
    /// Where events wait for the agent's stdout writer; `None` when the copy is off.
    pub stdout: Option<Arc<Buffer>>,
    /// Where the app's stderr events wait for the agent's stderr writer, in text (a
    /// developer expects the app's stderr on stderr); `None`: they go with `stdout`.
    pub stderr: Option<Arc<Buffer>>,
    pub counters: Arc<Counters>,
    /// DECKHAND_LOG_MAX_EVENT_BYTES.
    pub max_event_bytes: usize,
    /// How long a multi-line event waits for more continuation lines.
    pub multiline_window: Duration,
}

impl Pipeline {
    /// Sanitizes, copies to stdout, splits and queues finished events of `stream` from
    /// `structurer`, counting the lines its redaction failed on. The sanitizer is the
    /// one the structurer redacted their messages with (a rotation takes effect with
    /// the next chunk the capture reads).
    async fn emit_from(
        &self,
        structurer: &mut Structurer,
        events: &mut Vec<Event>,
        stream: Stream,
    ) {
        Counters::add(&self.counters.failed_lines, structurer.take_failed());
        let sanitizer = structurer
            .sanitizer()
            .unwrap_or_else(|| self.sanitizer.get());
        self.emit_with(events, Some(stream), &sanitizer).await;
    }

    /// Sanitizes and queues finished events with the sanitizer in use, copied to stdout
    /// when `echo` names the stream they come from (and the copy is on); `None`: no
    /// copy (the agent's own).
    pub async fn emit_to(&self, events: &mut Vec<Event>, echo: Option<Stream>) {
        self.emit_with(events, echo, &self.sanitizer.get()).await;
    }

    /// [`Pipeline::emit_to`] with `sanitizer`.
    async fn emit_with(
        &self,
        events: &mut Vec<Event>,
        echo: Option<Stream>,
        sanitizer: &sanitize::Sanitizer,
    ) {
        if events.is_empty() {
            return;
        }
        Counters::add(&self.counters.events, events.len() as u64);
        for event in events.iter_mut() {
            let clean = catch_unwind(AssertUnwindSafe(|| match event.sanitized(sanitizer) {
                std::borrow::Cow::Owned(clean) => Some(clean),
                std::borrow::Cow::Borrowed(_) => None,
            }));
            match clean {
                Ok(Some(clean)) => {
                    *event = Event::new(event.timestamp_ms, clean);
                }
                Ok(None) => {}
                // Never ship what could not be sanitized.
                Err(_) => {
                    Counters::add(&self.counters.failed_lines, 1);
                    *event = failed_event(None, event.json.len(), event.timestamp_ms, "sanitize");
                }
            }
        }
        // Sanitized in place, and handed on whole; the caller's list starts again.
        let mut ready = std::mem::replace(events, Vec::with_capacity(events.len()));
        if let Some(stdout) = echo.and_then(|stream| self.copy_to(stream)) {
            let copies = match &self.buffer {
                Some(_) => ready.clone(),
                None => std::mem::take(&mut ready),
            };
            stdout.push_all(copies).await;
        }
        if let Some(buffer) = &self.buffer {
            // Most events fit: queued as they are.
            if ready.iter().all(|e| e.json.len() <= self.max_event_bytes) {
                buffer.push_all(ready).await;
                return;
            }
            let mut parts = Vec::with_capacity(ready.len());
            for event in ready {
                if event.json.len() <= self.max_event_bytes {
                    // Most events fit: no part group, no id.
                    parts.push(event);
                    continue;
                }
                let before = parts.len();
                parts.extend(split(event, self.max_event_bytes, fastrand::u64(..)));
                Counters::add(
                    &self.counters.split_parts,
                    (parts.len() - before - 1) as u64,
                );
            }
            buffer.push_all(parts).await;
        }
    }
}

impl Pipeline {
    /// The copy's queue for events of `stream`, if the copy is on.
    fn copy_to(&self, stream: Stream) -> Option<&Arc<Buffer>> {
        match stream {
            Stream::Stderr => self.stderr.as_ref().or(self.stdout.as_ref()),
            _ => self.stdout.as_ref(),
        }
    }

    /// Queues parts of a streamed line of `stream`: already sanitized and cut to size.
    async fn queue_parts(&self, parts: Vec<Event>, stream: Stream) {
        if parts.is_empty() {
            return;
        }
        if let Some(stdout) = self.copy_to(stream) {
            let copies = match &self.buffer {
                Some(_) => parts.clone(),
                None => {
                    stdout.push_all(parts).await;
                    return;
                }
            };
            stdout.push_all(copies).await;
        }
        if let Some(buffer) = &self.buffer {
            buffer.push_all(parts).await;
        }
    }
}

/// What a capture reads: a reader, and what to do when a read has emptied it.
pub trait Source: AsyncRead + Unpin {
    /// Called after a read that took less than it could (the source is empty for now);
    /// the next read follows. By default it gives the other tasks their turn.
    fn rest(&mut self) -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

impl Source for &[u8] {}
impl<T: AsRef<[u8]> + Unpin> Source for std::io::Cursor<T> {}

/// The read end of one of the app's pipes, registered with the pipeline's runtime.
///
/// After a read that emptied it, it steps out of the runtime's poll set for
/// [`GATHER`]: a pipe in an edge-triggered poll set wakes the thread for every write
/// the app makes, even while the capture waits on a timer, so a plain sleep would not
/// spare a single wake. Two system calls take it out and put it back.
pub struct AppPipe {
    /// `None` only while it rests.
    reader: Option<pipe::Receiver>,
    /// A second descriptor of the same pipe, never polled: if taking the pipe out of
    /// the poll set or putting it back failed and closed the registered descriptor, the
    /// pipe stays open through this one (the app never gets `EPIPE`) and is registered
    /// again from a copy of it.
    spare: OwnedFd,
    /// Whether the pipe is large enough to rest ([`RESTING_PIPE`]).
    rests: bool,
}

/// The smallest pipe a capture rests on: an app would have to write 128 MB/s to fill
/// it during a rest (2 ms at most). The agent widens the app's pipes to 1 MiB; where the
/// system refuses (64 KiB stays), the capture reads as soon as anything comes.
const RESTING_PIPE: usize = 256 * 1024;

impl AppPipe {
    /// Registers `fd`, the read end of a pipe, with the current runtime.
    pub fn new(fd: OwnedFd) -> std::io::Result<AppPipe> {
        use nix::fcntl::{fcntl, FcntlArg};
        let capacity = fcntl(&fd, FcntlArg::F_GETPIPE_SZ).map_or(0, |c| c as usize);
        let spare = fd.try_clone()?;
        let reader = pipe::Receiver::from_owned_fd(fd)?;
        Ok(AppPipe {
            reader: Some(reader),
            spare,
            rests: capacity >= RESTING_PIPE,
        })
    }

    /// The pipe in the poll set again: `fd`, or a copy of the spare when it was lost.
    fn register(&self, fd: Option<OwnedFd>) -> std::io::Result<pipe::Receiver> {
        let fd = match fd {
            Some(fd) => fd,
            None => self.spare.try_clone()?,
        };
        // Unchecked: `new` checked that it is a pipe's read end, non-blocking.
        pipe::Receiver::from_owned_fd_unchecked(fd)
    }
}

impl AsyncRead for AppPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.reader.as_mut() {
            Some(reader) => Pin::new(reader).poll_read(cx, buf),
            // Only a rest dropped half-way leaves it out: that capture is over.
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Source for AppPipe {
    async fn rest(&mut self) {
        if !self.rests {
            return tokio::task::yield_now().await;
        }
        let mut fd = self
            .reader
            .take()
            .and_then(|r| r.into_nonblocking_fd().ok());
        tokio::time::sleep(GATHER).await;
        self.reader = Some(until_registered(|| self.register(fd.take())).await);
    }
}

/// How often a rest tries again to put the pipe back when the runtime refused it: from
/// one more gather, doubling up to 10 ms. Out of the poll set, the pipe still fills: an
/// app would have to write 25 MB/s to fill a [`RESTING_PIPE`] between two tries (100
/// MB/s the 1 MiB the agent asks for), and a try is one system call.
const REGISTER_AGAIN: Backoff = Backoff::new(GATHER, Duration::from_millis(10));

/// Calls `register` until it succeeds, waiting [`REGISTER_AGAIN`]'s delays between the
/// tries; returns what it gave. The runtime refuses only when it is out of memory: the
/// first refusal is a warning, the tries after it are silent (one line, not one per
/// millisecond), and the recovery is logged.
async fn until_registered<T>(mut register: impl FnMut() -> std::io::Result<T>) -> T {
    let mut failed = 0u32;
    loop {
        match register() {
            Ok(registered) => {
                if failed > 0 {
                    tracing::info!("the app's pipe is polled again, after {failed} refused tries");
                }
                return registered;
            }
            Err(e) => {
                failed = failed.saturating_add(1);
                if failed == 1 {
                    tracing::warn!(
                        "cannot put the app's pipe back in the poll set: {e}; trying again, \
                         at most every {} ms, until it succeeds. Meanwhile the pipe holds \
                         what the app writes, and the app waits once it is full: give the \
                         task more memory",
                        REGISTER_AGAIN.max.as_millis()
                    );
                }
                tokio::time::sleep(REGISTER_AGAIN.delay(failed)).await;
            }
        }
    }
}

/// Reads `reader` to EOF as lines of `stream`. Returns when the pipe closes.
pub async fn capture<R: Source>(mut reader: R, stream: Stream, pipeline: Arc<Pipeline>) {
    let mut structurer = structurer(stream, &pipeline);
    let mut pending: Vec<u8> = Vec::new();
    // Read into the vector's spare capacity: its pages are touched only as far as reads
    // fill them, so an app that prints little keeps little of it resident (and nothing
    // is zeroed before the app starts).
    let mut chunk: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut events = Vec::new();
    // The line being streamed in parts, once it grew past MAX_LINE_BYTES.
    let mut long: Option<LongLine> = None;
    // Where the loaded secrets start in a chunk ([`Vouch`]), kept between chunks.
    let mut starts: Vec<usize> = Vec::new();
    loop {
        chunk.clear();
        let read = if structurer.has_pending() {
            match tokio::time::timeout(pipeline.multiline_window, reader.read_buf(&mut chunk)).await
            {
                Ok(r) => r,
                Err(_) => {
                    structurer.flush(&mut events);
                    pipeline
                        .emit_from(&mut structurer, &mut events, stream)
                        .await;
                    continue;
                }
            }
        } else {
            reader.read_buf(&mut chunk).await
        };
        if matches!(read, Ok(0) | Err(_)) {
            break;
        }
        let now = now_ms();
        structurer.redact_with(pipeline.sanitizer.get());
        let mut data = chunk.as_slice();
        let mut vouch = Vouch::new(&structurer, data, &mut starts);
        let checked = Checked::new(data);
        // Counted once a chunk: an atomic add per line waits for the line's stores.
        let mut lines_here = 0;
        while let Some(i) = memchr::memchr(b'\n', data) {
            let line_end = &data[..i];
            let at = chunk.len() - data.len();
            let known = checked.line(at, at + i, vouch.line(at, at + i));
            if let Some(streaming) = long.take() {
                pending.extend_from_slice(line_end);
                let rest = std::mem::take(&mut pending);
                streaming.finish(&rest, &pipeline).await;
                Counters::add(&pipeline.counters.lines, 1);
            } else {
                let lines = if pending.is_empty() {
                    line(
                        &mut structurer,
                        Cow::Borrowed(line_end),
                        known,
                        now,
                        &mut events,
                        stream,
                        &pipeline,
                    )
                } else {
                    pending.extend_from_slice(line_end);
                    let whole = std::mem::take(&mut pending);
                    // Its start came in an earlier read: not vouched for.
                    line(
                        &mut structurer,
                        Cow::Owned(whole),
                        Known::default(),
                        now,
                        &mut events,
                        stream,
                        &pipeline,
                    )
                };
                lines_here += lines;
            }
            data = &data[i + 1..];
        }
        // A chunk dense with secrets left many; the next chunk's few need no more room.
        starts.clear();
        starts.shrink_to(VOUCH_STARTS);
        Counters::add(&pipeline.counters.lines, lines_here);
        pending.extend_from_slice(data);
        if pending.len() >= MAX_LINE_BYTES {
            if long.is_none() {
                // What came before goes out first: the long line follows it.
                structurer.flush(&mut events);
                pipeline
                    .emit_from(&mut structurer, &mut events, stream)
                    .await;
                long = Some(LongLine::start(stream, now, &pipeline));
            }
            if let Some(streaming) = long.as_mut() {
                streaming.push(&mut pending, &pipeline).await;
            }
        }
        structurer.flush_if_older(now, pipeline.multiline_window, &mut events);
        pipeline
            .emit_from(&mut structurer, &mut events, stream)
            .await;
        if chunk.len() < chunk.capacity() {
            // The read emptied it: let the app's output gather ([`Source::rest`]).
            reader.rest().await;
        } else {
            // The shipper, the timers and the other pipe share this thread. An app that
            // writes faster than the pipeline reads keeps the pipe (1 MiB) from ever
            // being empty, so the read would never wait and nothing else would run
            // until the app stopped: every chunk gives them their turn.
            tokio::task::yield_now().await;
        }
    }
    // A last line without a newline is still a line.
    if let Some(streaming) = long.take() {
        streaming.finish(&pending, &pipeline).await;
        Counters::add(&pipeline.counters.lines, 1);
    } else if !pending.is_empty() {
        Counters::add(
            &pipeline.counters.lines,
            line(
                &mut structurer,
                Cow::Borrowed(&pending),
                Known::default(),
                now_ms(),
                &mut events,
                stream,
                &pipeline,
            ),
        );
    }
    structurer.flush(&mut events);
    pipeline
        .emit_from(&mut structurer, &mut events, stream)
        .await;
}

/// A structurer for `stream` that redacts text events with the pipeline's sanitizer.
fn structurer(stream: Stream, pipeline: &Pipeline) -> Structurer {
    let mut structurer = Structurer::new(stream, &pipeline.options);
    structurer.redact_with(pipeline.sanitizer.get());
    structurer
}

/// Text a streamed line holds back so that a secret cannot straddle what is already
/// sent and what is still to come: the longest loaded secret, escaped (up to 6 bytes
/// per byte, `\u00XX`), within these bounds.
const MIN_HOLD_BACK: usize = 64 * 1024;
const MAX_HOLD_BACK: usize = 1024 * 1024;

/// A line longer than [`MAX_LINE_BYTES`], streamed as one part group while it is read
/// (memory stays bounded however long it is). Its event is a text event,
/// `{"timestamp","stream","message"}`; concatenating the parts' `data` gives it.
///
/// Redaction: each window of text is scanned whole, and only what lies before its
/// last [`MAX_HOLD_BACK`]-bounded stretch is sent, never cutting a redacted span; the
/// rest is scanned again with the text that follows. Unlike short lines, ANSI codes are
/// kept (escaped) and `[REDACTED:NAME]` labels read `[REDACTED]`.
struct LongLine {
    writer: PartWriter,
    /// The pipe the line comes from, for the stdout copy.
    stream: Stream,
    /// Decoded text not yet sent: the held-back stretch. Kept with its capacity, as is
    /// `escaped`: each window reuses the memory of the one before.
    carry: String,
    /// The window's text escaped as a JSON string, for the writer.
    escaped: String,
    /// Parts made so far.
    parts: u64,
}

impl LongLine {
    fn start(stream: Stream, now: i64, pipeline: &Pipeline) -> LongLine {
        let mut writer = PartWriter::new(fastrand::u64(..), pipeline.max_event_bytes, now);
        let mut header = String::with_capacity(96);
        header.push_str("{\"timestamp\":\"");
        push_rfc3339(&mut header, now);
        header.push_str("\",\"stream\":\"");
        header.push_str(stream.as_str());
        header.push_str("\",\"message\":\"");
        let mut parts = Vec::new();
        writer.push(&header, &mut parts);
        debug_assert!(parts.is_empty());
        LongLine {
            writer,
            stream,
            carry: String::new(),
            escaped: String::new(),
            parts: 0,
        }
    }

    /// Takes the bytes read so far (leaving an incomplete UTF-8 character at their end
    /// for the next read) and sends what can be sent.
    async fn push(&mut self, bytes: &mut Vec<u8>, pipeline: &Pipeline) {
        let complete = bytes.len() - incomplete_utf8_tail(bytes);
        self.carry.push_str(&utf8_lossy(&bytes[..complete]));
        bytes.drain(..complete);
        let sanitizer = pipeline.sanitizer.get();
        let hold = (sanitizer.longest_secret_form().saturating_mul(6) + 64)
            .clamp(MIN_HOLD_BACK, MAX_HOLD_BACK);
        let window = &self.carry;
        let spans = redaction_spans(&sanitizer, window, pipeline);
        let mut cut = floor_char_boundary(window, window.len().saturating_sub(hold));
        // Never send half of a redacted span: send all of it now.
        if let Some(span) = spans.iter().find(|s| s.start < cut && cut < s.end) {
            cut = span.end;
        }
        let mut out = Vec::new();
        write_redacted(
            &mut self.writer,
            window,
            0..cut,
            &spans,
            &mut self.escaped,
            &mut out,
        );
        self.carry.drain(..cut);
        self.queue(out, pipeline).await;
    }

    /// The line ended with `rest`: sends everything and marks the last part.
    async fn finish(mut self, rest: &[u8], pipeline: &Pipeline) {
        self.carry.push_str(&utf8_lossy(rest));
        let window = &self.carry;
        let sanitizer = pipeline.sanitizer.get();
        let spans = redaction_spans(&sanitizer, window, pipeline);
        let mut out = Vec::new();
        write_redacted(
            &mut self.writer,
            window,
            0..window.len(),
            &spans,
            &mut self.escaped,
            &mut out,
        );
        self.writer.push("\"}", &mut out);
        let LongLine {
            writer,
            parts,
            stream,
            ..
        } = self;
        writer.finish(&mut out);
        let total = parts + out.len() as u64;
        Counters::add(&pipeline.counters.events, 1);
        Counters::add(&pipeline.counters.split_parts, total.saturating_sub(1));
        pipeline.queue_parts(out, stream).await;
    }

    async fn queue(&mut self, parts: Vec<Event>, pipeline: &Pipeline) {
        self.parts += parts.len() as u64;
        pipeline.queue_parts(parts, self.stream).await;
    }
}

/// The sanitizer's spans of `text`; a failure (a bug) redacts the whole window rather
/// than send what could not be checked.
fn redaction_spans(
    sanitizer: &crate::sanitize::Sanitizer,
    text: &str,
    pipeline: &Pipeline,
) -> Vec<std::ops::Range<usize>> {
    catch_unwind(AssertUnwindSafe(|| sanitizer.text_spans(text))).unwrap_or_else(|_| {
        Counters::add(&pipeline.counters.failed_lines, 1);
        std::iter::once(0..text.len()).collect()
    })
}

/// Writes `text[range]` JSON-escaped into `writer`, each span replaced by the label:
/// the pieces are escaped into one text (in `escaped`, cleared first) and pushed once,
/// however many spans there are.
fn write_redacted(
    writer: &mut PartWriter,
    text: &str,
    range: std::ops::Range<usize>,
    spans: &[std::ops::Range<usize>],
    escaped: &mut String,
    out: &mut Vec<Event>,
) {
    escaped.clear();
    escaped.reserve(range.len());
    let mut at = range.start;
    for span in spans
        .iter()
        .filter(|s| s.start >= range.start && s.end <= range.end)
    {
        push_json_text(escaped, text.get(at..span.start).unwrap_or_default());
        // The label needs no escape.
        escaped.push_str(REDACTED);
        at = span.end;
    }
    push_json_text(escaped, text.get(at..range.end).unwrap_or_default());
    writer.push(escaped, out);
}

const REDACTED: &str = "[REDACTED]";

/// How many bytes at the end of `b` begin a UTF-8 character that is not complete yet.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let byte = b[b.len() - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let need = match byte {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// The lines of `chunk` that end in it, without the last line end: what the passes
/// over a chunk read ([`Vouch`], [`Checked`]); the rest waits for the next read.
fn whole_lines(chunk: &[u8]) -> Option<&[u8]> {
    memchr::memrchr(b'\n', chunk).and_then(|end| chunk.get(..end))
}

/// The room for secret starts kept between chunks ([`Vouch`]).
const VOUCH_STARTS: usize = 1024;

/// The lines of one chunk the sanitizer vouched for: it searched the chunk for the
/// loaded secrets once ([`Sanitizer::secret_starts`]), and a line in which no match
/// starts holds none as written, so its own search is not made (it cost a set-up per
/// line, about a tenth of a short line's time; one search of 64 KiB costs little more
/// than its bytes).
///
/// [`Sanitizer::secret_starts`]: sanitize::Sanitizer::secret_starts
pub struct Vouch<'a> {
    /// Where matches start, in order, from the next line's on.
    starts: &'a [usize],
    /// `None`: no line is vouched for (no sanitizer yet, or it cannot vouch).
    word: Option<NoSecret>,
}

impl<'a> Vouch<'a> {
    /// Searches the lines of `chunk` that end in it with the structurer's sanitizer,
    /// into `starts`.
    pub fn new(structurer: &Structurer, chunk: &[u8], starts: &'a mut Vec<usize>) -> Vouch<'a> {
        starts.clear();
        let word = match (structurer.sanitizer(), whole_lines(chunk)) {
            (Some(sanitizer), Some(lines)) => sanitizer.secret_starts(lines, starts),
            _ => None,
        };
        Vouch { starts, word }
    }

    /// The sanitizer's word for the line at `from..to` of the chunk; lines are asked
    /// for in order, each once.
    pub fn line(&mut self, from: usize, to: usize) -> Option<NoSecret> {
        let word = self.word?;
        let mut clean = true;
        while let Some((&start, rest)) = self.starts.split_first() {
            if start >= to {
                break;
            }
            clean &= start < from;
            self.starts = rest;
        }
        clean.then_some(word)
    }
}

/// What one pass over a chunk's lines found, besides the secrets ([`Vouch`]): whether
/// they are UTF-8 and hold an escape byte at all. Each line is then not checked for
/// either on its own (a check of a few dozen bytes costs its set-up).
struct Checked<'a> {
    /// The chunk's lines that end in it, when they are UTF-8.
    text: Option<&'a str>,
    /// They hold an escape byte (a colour code to strip, maybe).
    colour: bool,
}

impl<'a> Checked<'a> {
    fn new(chunk: &'a [u8]) -> Checked<'a> {
        let text = whole_lines(chunk).and_then(|lines| simdutf8::basic::from_utf8(lines).ok());
        Checked {
            text,
            colour: text.is_some_and(|t| memchr::memchr(0x1b, t.as_bytes()).is_some()),
        }
    }

    /// What is known of the line at `from..to` of the chunk, with the sanitizer's word.
    fn line(&self, from: usize, to: usize, vouched: Option<NoSecret>) -> Known<'a> {
        Known {
            text: self.text.and_then(|t| t.get(from..to)),
            colour: self.colour,
            vouched,
        }
    }
}

/// What the passes over its chunk found of one line ([`Checked`], [`Vouch`]).
#[derive(Default)]
struct Known<'a> {
    /// The line, when its chunk is UTF-8.
    text: Option<&'a str>,
    colour: bool,
    vouched: Option<NoSecret>,
}

/// Structures one line of `stream`, with what the passes over its chunk found of it; a
/// failure loses that line only (see the module docs). A line gathered across reads is
/// handed over when it is longer than one read: its memory becomes its event's message.
fn line(
    structurer: &mut Structurer,
    bytes: Cow<'_, [u8]>,
    known: Known<'_>,
    now: i64,
    events: &mut Vec<Event>,
    stream: Stream,
    pipeline: &Pipeline,
) -> u64 {
    let len = bytes.len();
    let pushed = catch_unwind(AssertUnwindSafe(|| match (bytes, known.text) {
        (Cow::Owned(bytes), _) if bytes.len() > READ_CHUNK => {
            structurer.push_owned(bytes, now, events)
        }
        (_, Some(text)) => {
            structurer.push_str_vouched(text, known.colour, now, events, known.vouched)
        }
        (bytes, None) => structurer.push_vouched(&bytes, now, events, known.vouched),
    }));
    if pushed.is_err() {
        // Its state may be half-updated: start afresh (a pending multi-line event it
        // held is lost with the line, and counted with it).
        Counters::add(&pipeline.counters.failed_lines, structurer.take_failed());
        *structurer = self::structurer(stream, pipeline);
        Counters::add(&pipeline.counters.failed_lines, 1);
        events.push(failed_event(Some(stream), len, now, "structure"));
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Counters;
    use crate::buffer::FullPolicy;
    use crate::sanitize::{Config, Current, KnownSecret, Sanitizer};

    fn pipeline(secrets: &[&str]) -> (Arc<Pipeline>, Arc<Buffer>) {
        let config = Config {
            secrets: secrets.iter().map(|s| KnownSecret::new("S", *s)).collect(),
            ..Config::default()
        };
        let sanitizer = Sanitizer::new(config.clone()).unwrap().0;
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(256 << 20, FullPolicy::Block, counters.clone()));
        let pipeline = Arc::new(Pipeline {
            options: Options::default(),
            sanitizer: Arc::new(Current::new(sanitizer, config)),
            buffer: Some(buffer.clone()),
            stdout: None,
            stderr: None,
            counters,
            max_event_bytes: crate::batch::MAX_EVENT_BYTES,
            multiline_window: Duration::from_millis(50),
        });
        (pipeline, buffer)
    }

    /// A pipe of `capacity` bytes: its read end for [`AppPipe`], its write end as a
    /// blocking file.
    fn pipe_of(capacity: i32) -> (AppPipe, std::fs::File) {
        use nix::fcntl::{fcntl, FcntlArg};
        let (tx, rx) = pipe::pipe().unwrap();
        let rx = rx.into_nonblocking_fd().unwrap();
        fcntl(&rx, FcntlArg::F_SETPIPE_SZ(capacity)).unwrap();
        let reader = AppPipe::new(rx).unwrap();
        (reader, std::fs::File::from(tx.into_blocking_fd().unwrap()))
    }

    /// A pipe as the agent makes them (1 MiB): one the capture rests on.
    fn app_pipe() -> (AppPipe, std::fs::File) {
        let (reader, writer) = pipe_of(1 << 20);
        assert!(reader.rests);
        (reader, writer)
    }

    #[tokio::test]
    async fn a_pipe_the_system_would_not_widen_is_never_out_of_the_poll_set() {
        let (mut reader, mut writer) = pipe_of(64 * 1024);
        assert!(!reader.rests);
        reader.rest().await;
        assert!(reader.reader.is_some());
        std::io::Write::write_all(&mut writer, b"x").unwrap();
        assert_eq!(to_the_end(reader, writer).await, "x");
    }

    /// What is left in the pipe once the app closed it.
    async fn to_the_end(mut reader: AppPipe, writer: std::fs::File) -> String {
        drop(writer);
        let mut got = String::new();
        reader.read_to_string(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn a_pipe_read_between_rests_gives_every_line_in_order() {
        let (pipeline, shipped) = pipeline(&[]);
        let (reader, mut writer) = app_pipe();
        let lines: Vec<String> = (0..5_000).map(|i| format!("line {i:05}")).collect();
        let expected = lines.clone();
        // One write per line, as most apps log: the capture empties the pipe and rests
        // again and again while they come.
        let app = std::thread::spawn(move || {
            use std::io::Write;
            for line in lines {
                writer.write_all(format!("{line}\n").as_bytes()).unwrap();
            }
        });
        capture(reader, Stream::Stdout, pipeline.clone()).await;
        app.join().unwrap();
        let messages: Vec<String> = shipped
            .take(usize::MAX)
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.json).unwrap()["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(messages, expected);
    }

    #[tokio::test]
    async fn a_rest_puts_the_pipe_back_and_the_end_is_still_seen() {
        let (mut reader, mut writer) = app_pipe();
        for i in 0..3 {
            use std::io::Write;
            reader.rest().await;
            assert!(reader.reader.is_some(), "rest {i} left the pipe out");
            writer.write_all(format!("{i}\n").as_bytes()).unwrap();
            let mut line = [0u8; 2];
            reader.read_exact(&mut line).await.unwrap();
            assert_eq!(line, [b'0' + i, b'\n']);
        }
        drop(writer);
        reader.rest().await;
        assert_eq!(
            reader.read(&mut [0u8; 8]).await.unwrap(),
            0,
            "the app closed it"
        );
    }

    /// A runtime that refuses the pipe `refusals` times: the tries it takes, and how long
    /// they took on tokio's paused clock.
    async fn registered_after(refusals: u32) -> (u32, Duration) {
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let value = until_registered(|| {
            tries += 1;
            if tries <= refusals {
                Err(std::io::Error::from(std::io::ErrorKind::OutOfMemory))
            } else {
                Ok(tries)
            }
        })
        .await;
        assert_eq!(value, tries, "the value of the try that succeeded");
        (tries, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_pipe_the_runtime_takes_at_once_is_registered_without_a_wait() {
        assert_eq!(registered_after(0).await, (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_pipe_is_tried_again_with_a_growing_delay_up_to_its_cap() {
        let refusals = 20;
        let (tries, waited) = registered_after(refusals).await;
        assert_eq!(tries, refusals + 1);
        // Each wait is between half and all of the backoff's delay: not a try every
        // millisecond, and never longer than the cap allows.
        let least: Duration = (1..=refusals).map(|n| REGISTER_AGAIN.full(n) / 2).sum();
        let most: Duration = (1..=refusals).map(|n| REGISTER_AGAIN.full(n)).sum();
        assert!(least > GATHER * refusals * 2, "{least:?}");
        assert!(
            waited >= least && waited <= most + Duration::from_millis(refusals as u64),
            "{waited:?}"
        );
        assert_eq!(REGISTER_AGAIN.full(refusals), REGISTER_AGAIN.max);
    }

    #[tokio::test]
    async fn a_pipe_whose_polled_descriptor_was_lost_stays_open_and_is_polled_again() {
        use std::io::Write;
        let (mut reader, mut writer) = app_pipe();
        // As if taking it out of the poll set had closed it.
        drop(reader.reader.take());
        // The spare keeps the pipe open: the app's write does not fail with EPIPE.
        writer.write_all(b"still open\n").unwrap();
        reader.reader = Some(reader.register(None).unwrap());
        assert_eq!(to_the_end(reader, writer).await, "still open\n");
    }

    #[tokio::test]
    async fn in_text_the_app_s_stderr_goes_to_the_stderr_copy() {
        let (pipeline, shipped) = pipeline(&[]);
        let counters = pipeline.counters.clone();
        let copy = || Arc::new(Buffer::new(1 << 20, FullPolicy::Block, counters.clone()));
        let (stdout, stderr) = (copy(), copy());
        let pipeline = Arc::new(Pipeline {
            options: Options::default(),
            sanitizer: pipeline.sanitizer.clone(),
            buffer: Some(shipped.clone()),
            stdout: Some(stdout.clone()),
            stderr: Some(stderr.clone()),
            counters,
            max_event_bytes: pipeline.max_event_bytes,
            multiline_window: pipeline.multiline_window,
        });
        capture(&b"out\n"[..], Stream::Stdout, pipeline.clone()).await;
        capture(&b"err\n"[..], Stream::Stderr, pipeline.clone()).await;
        let message = |e: &Event| {
            serde_json::from_str::<serde_json::Value>(&e.json).unwrap()["message"].clone()
        };
        assert_eq!(
            stdout
                .take(usize::MAX)
                .iter()
                .map(message)
                .collect::<Vec<_>>(),
            ["out"]
        );
        assert_eq!(
            stderr
                .take(usize::MAX)
                .iter()
                .map(message)
                .collect::<Vec<_>>(),
            ["err"]
        );
        assert_eq!(shipped.take(usize::MAX).len(), 2, "both are shipped");
    }

    #[test]
    fn utf8_tails_and_boundaries() {
        assert_eq!(incomplete_utf8_tail(b"abc"), 0);
        assert_eq!(incomplete_utf8_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&"✓".as_bytes()[..2]), 2);
        assert_eq!(incomplete_utf8_tail(&"😀".as_bytes()[..3]), 3);
        assert_eq!(incomplete_utf8_tail(b"\xff"), 0, "invalid, not incomplete");
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(floor_char_boundary("aé", 9), 3);
    }

    #[test]
    fn a_failed_line_becomes_an_event_that_carries_none_of_it() {
        let e = failed_event(Some(Stream::Stderr), 1234, 1_000, "structure");
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["deckhand_lost_bytes"], 1234);
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["level"], "error");
    }

    #[tokio::test]
    async fn a_line_past_the_cut_is_one_group_and_a_secret_across_it_is_redacted() {
        let secret = "Sëcret-across-the-cut";
        let (pipeline, buffer) = pipeline(&[secret]);
        // Two-byte characters up to just before the cut, the secret across it.
        let mut line = "é".repeat((MAX_LINE_BYTES - 7) / 2);
        line.push_str(secret);
        line.push_str(&"z".repeat(1_500_000));
        let mut input = line.clone().into_bytes();
        input.extend_from_slice(b"\nnext line\n");
        capture(
            std::io::Cursor::new(input),
            Stream::Stdout,
            pipeline.clone(),
        )
        .await;
        let events = buffer.take(usize::MAX);
        let parts: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .filter(|v: &serde_json::Value| v.get("deckhand_part").is_some())
            .collect();
        assert!(parts.len() > 8, "{}", parts.len());
        assert!(parts
            .iter()
            .all(|p| p["deckhand_part"]["id"] == parts[0]["deckhand_part"]["id"]));
        let whole: String = parts.iter().map(|p| p["data"].as_str().unwrap()).collect();
        let event: serde_json::Value = serde_json::from_str(&whole).unwrap();
        let message = event["message"].as_str().unwrap();
        assert_eq!(message, line.replace(secret, "[REDACTED]"));
        assert_eq!(event["stream"], "stdout");
        let last: serde_json::Value = serde_json::from_str(&events.last().unwrap().json).unwrap();
        assert_eq!(
            last["message"], "next line",
            "the next line follows the group"
        );
        let lines = pipeline
            .counters
            .lines
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(lines, 2);
    }

    /// One line of [`a_chunk_read_at_once_becomes_the_events_of_its_lines_one_by_one`]:
    /// text around a loaded secret (ASCII), its base64, a piece of it or it split by a
    /// colour code, maybe an app's JSON
    /// object, a continuation line, coloured, with a byte that is not UTF-8, or `\r`.
    fn odd_line(
        secrets: &[String],
        (before, which, how, after): (&str, usize, usize, &str),
    ) -> Vec<u8> {
        use base64::Engine;
        let secret = secrets
            .get(which % secrets.len())
            .cloned()
            .unwrap_or_default();
        let form = match how % 4 {
            0 => secret,
            1 => base64::engine::general_purpose::STANDARD.encode(&secret),
            2 => secret.chars().skip(1).collect(),
            // Whole only once the colour code is stripped.
            _ => {
                let half = secret.len() / 2;
                format!("{}\x1b[1m{}", &secret[..half], &secret[half..])
            }
        };
        let text = format!("{before}{form}{after}");
        match how / 4 {
            0 => format!("{{\"msg\":{}}}", crate::json::json_string(&text)).into_bytes(),
            1 => format!("    at {text}").into_bytes(),
            2 => format!("\x1b[31m{text}\x1b[0m").into_bytes(),
            3 => [text.as_bytes(), b"\xff"].concat(),
            4 => format!("{text}\r").into_bytes(),
            _ => text.into_bytes(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The capture looks for the loaded secrets once per chunk it reads (see
        /// [`Vouch`]): its events are those of the same lines pushed one by one and
        /// each searched whole, whatever the lines: text or JSON, joined into one event
        /// or not, not UTF-8, coloured, a secret in the task's own context or of two
        /// lines.
        #[test]
        fn a_chunk_read_at_once_becomes_the_events_of_its_lines_one_by_one(
            // A secret of two lines, the second a continuation line's.
            secrets in proptest::collection::vec("[ -~]{6,20}|[ -~]{3,10}\n    [ -~]{3,10}", 1..=3),
            lines in proptest::collection::vec(("[ -~]{0,12}", 0usize..3, 0usize..24, "[ -~]{0,12}"), 1..10),
            container_is_secret in proptest::prelude::any::<bool>(),
        ) {
            let input: Vec<Vec<u8>> = lines
                .iter()
                .map(|(b, w, h, a)| odd_line(&secrets, (b, *w, *h, a)))
                .collect();
            let options = Options {
                context: Some(crate::structure::Context {
                    task_id: "task-1".into(),
                    container_name: if container_is_secret { secrets[0].clone() } else { "web".into() },
                    task_definition: "app:3".into(),
                }),
                ..Options::default()
            };
            let (pipeline, buffer) = pipeline(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
            let pipeline = Arc::new(Pipeline {
                options: options.clone(),
                sanitizer: pipeline.sanitizer.clone(),
                buffer: Some(buffer.clone()),
                stdout: None,
                stderr: None,
                counters: pipeline.counters.clone(),
                max_event_bytes: pipeline.max_event_bytes,
                multiline_window: Duration::from_secs(60),
            });
            let sanitizer = pipeline.sanitizer.get();
            let chunk = input.join(&b'\n') ;
            let chunk = [chunk.as_slice(), b"\n"].concat();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(capture(&chunk[..], Stream::Stdout, pipeline.clone()));
            // The receive time is the only difference allowed.
            let untimed = |json: &str| match json.strip_prefix("{\"timestamp\":\"") {
                Some(rest) => rest.split_once('"').map_or(json.to_owned(), |(_, r)| r.to_owned()),
                None => json.to_owned(),
            };
            let captured: Vec<String> = buffer.take(usize::MAX).iter().map(|e| untimed(&e.json)).collect();
            let mut structurer = Structurer::new(Stream::Stdout, &options);
            structurer.redact_with(sanitizer.clone());
            let mut events = Vec::new();
            // A line of `input` may hold a secret's line end.
            for line in chunk[..chunk.len() - 1].split(|b| *b == b'\n') {
                structurer.push(line, 1, &mut events);
            }
            structurer.flush(&mut events);
            let alone: Vec<String> = events.iter().map(|e| untimed(&e.sanitized(&sanitizer))).collect();
            proptest::prop_assert_eq!(captured, alone);
        }
    }
}
