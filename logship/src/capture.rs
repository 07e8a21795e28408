//! The app-facing half of the pipeline: read one of the app's pipes to the end, split
//! it into lines at memchr speed, and send each line through structure → sanitize →
//! (stdout copy) → split → buffer.
//!
//! It never waits on CloudWatch: with the default drop-oldest buffer the only thing that
//! can slow the app is writing the agent's own stdout copy.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::account::Counters;
use crate::batch::split;
use crate::buffer::Buffer;
use crate::sanitize;
use crate::structure::{now_ms, Event, Options, Stream, Structurer};

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 64 * 1024;
/// A line longer than this is handed on in pieces, so one endless line cannot take all
/// memory; each piece still becomes an event (split further if needed), nothing is lost.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Everything the capture tasks share.
pub struct Pipeline {
    pub options: Options,
    pub sanitizer: Arc<sanitize::Current>,
    /// Where events wait for the shipper; `None` when shipping is off.
    pub buffer: Option<Arc<Buffer>>,
    /// Also write each sanitized event as a JSON line to the agent's stdout.
    pub stdout: bool,
    pub counters: Arc<Counters>,
    /// DECKHAND_LOG_MAX_EVENT_BYTES.
    pub max_event_bytes: usize,
    /// How long a multi-line event waits for more continuation lines.
    pub multiline_window: Duration,
}

impl Pipeline {
    /// Sanitizes, copies to stdout, splits and queues finished events.
    pub async fn emit(&self, events: &mut Vec<Event>) {
        self.emit_to(events, self.stdout).await;
    }

    /// [`Pipeline::emit`], with the stdout copy only when `echo` (and stdout is on).
    pub async fn emit_to(&self, events: &mut Vec<Event>, echo: bool) {
        let echo = echo && self.stdout;
        if events.is_empty() {
            return;
        }
        Counters::add(&self.counters.events, events.len() as u64);
        let mut out = Vec::new();
        let mut ready = Vec::with_capacity(events.len());
        let sanitizer = self.sanitizer.get();
        for mut event in events.drain(..) {
            if let std::borrow::Cow::Owned(clean) = sanitizer.sanitize(&event.json) {
                event.json = clean;
            }
            if echo {
                out.extend_from_slice(event.json.as_bytes());
                out.push(b'\n');
            }
            ready.push(event);
        }
        if echo {
            // A closed stdout must not stop the capture: the events still ship.
            let _ = std::io::stdout().lock().write_all(&out);
        }
        if let Some(buffer) = &self.buffer {
            let mut parts = Vec::with_capacity(ready.len());
            for event in ready {
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

/// Reads `reader` to EOF as lines of `stream`. Returns when the pipe closes.
pub async fn capture<R: AsyncRead + Unpin>(mut reader: R, stream: Stream, pipeline: Arc<Pipeline>) {
    let mut structurer = Structurer::new(stream, &pipeline.options);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut events = Vec::new();
    loop {
        let read = if structurer.has_pending() {
            match tokio::time::timeout(pipeline.multiline_window, reader.read(&mut chunk)).await {
                Ok(r) => r,
                Err(_) => {
                    structurer.flush(&mut events);
                    pipeline.emit(&mut events).await;
                    continue;
                }
            }
        } else {
            reader.read(&mut chunk).await
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = now_ms();
        let mut data = &chunk[..n];
        while let Some(i) = memchr::memchr(b'\n', data) {
            let line_end = &data[..i];
            let lines = if pending.is_empty() {
                line(&mut structurer, line_end, now, &mut events)
            } else {
                pending.extend_from_slice(line_end);
                let whole = std::mem::take(&mut pending);
                line(&mut structurer, &whole, now, &mut events)
            };
            Counters::add(&pipeline.counters.lines, lines);
            data = &data[i + 1..];
        }
        pending.extend_from_slice(data);
        if pending.len() >= MAX_LINE_BYTES {
            let piece = std::mem::take(&mut pending);
            Counters::add(
                &pipeline.counters.lines,
                line(&mut structurer, &piece, now, &mut events),
            );
        }
        structurer.flush_if_older(now, pipeline.multiline_window, &mut events);
        pipeline.emit(&mut events).await;
    }
    // A last line without a newline is still a line.
    if !pending.is_empty() {
        Counters::add(
            &pipeline.counters.lines,
            line(&mut structurer, &pending, now_ms(), &mut events),
        );
    }
    structurer.flush(&mut events);
    pipeline.emit(&mut events).await;
}

fn line(structurer: &mut Structurer, bytes: &[u8], now: i64, events: &mut Vec<Event>) -> u64 {
    structurer.push(bytes, now, events);
    1
}
