//! The agent's stdout copy of the events, as a sink like CloudWatch: events wait in a
//! bounded [`Buffer`] and a thread of its own writes them.
//!
//! Why a thread: nobody has to read the agent's stdout (the awslogs driver in blocking
//! mode while CloudWatch is slow, any full pipe). A `write(2)` that blocks there must
//! not stop the capture from draining the app's pipes — an app blocked in its own
//! `write()` cannot run its SIGTERM handler — nor anything else of the agent's. With
//! the default `drop-oldest`, a stalled stdout loses the oldest copies, counted in
//! `dropped_stdout`; with `block`, the app waits, as it asked.
//!
//! Two shapes ([`Format`]): JSON lines, for a log driver, and text, for a developer at
//! a terminal (`DECKHAND_LOG_STDOUT=text`, or `auto` on a terminal). Text is rendered
//! here, on this thread, from the events as sanitized for JSON: the same sanitizer,
//! nothing is redacted differently, and the capture's hot path does no extra work. A
//! text event (`{"timestamp",["level",]"stream","message"…}` as `structure` writes it)
//! becomes its message, decoded (a multi-line event, its lines); anything else — an
//! app's JSON line, the parts of a line too long for one event, a failed stage's notice — is
//! written as its JSON line. In text, control characters other than tab and newline
//! stay written as their JSON escapes (`\u0007`), so the app's output cannot drive the
//! terminal, except ESC when ANSI codes are kept (`DECKHAND_LOG_STRIP_ANSI=off`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::account::Counters;
use crate::buffer::{Buffer, FullPolicy};

/// Events written per `write(2)` at most.
const TAKE: usize = 1_024;
/// How often the writer looks whether it should stop while idle.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Each event as its JSON line.
    Json,
    /// Each text event as its message, anything else as its JSON line (module docs).
    Text {
        /// ESC is written as it is, so the app's colours reach the terminal (ANSI
        /// codes are kept, `DECKHAND_LOG_STRIP_ANSI=off`).
        ansi: bool,
    },
}

/// The queue and its writer thread.
#[derive(Debug)]
pub struct Stdout(Arc<Shared>);

/// What the writer thread and [`Stdout`] share.
#[derive(Debug)]
struct Shared {
    buffer: Arc<Buffer>,
    /// Events the writer took and has not written yet.
    in_flight: AtomicU64,
    /// Tells the writer to end once it is idle.
    stop: AtomicBool,
    /// Signalled by the writer after each batch, for [`Stdout::drain`].
    written: Notify,
    /// The first write that failed (a closed pipe, a full disk): why copies were lost.
    failed: std::sync::OnceLock<String>,
    counters: Arc<Counters>,
}

impl Stdout {
    /// Starts the writer thread for `out` (the process's stdout in the agent; its
    /// stderr for the app's stderr, in text).
    pub fn start<W: Write + Send + 'static>(
        out: W,
        format: Format,
        capacity: usize,
        policy: FullPolicy,
        counters: Arc<Counters>,
    ) -> std::io::Result<Stdout> {
        let buffer = Arc::new(Buffer::counting(capacity, policy, counters.clone(), |c| {
            &c.dropped_stdout
        }));
        let shared = Arc::new(Shared {
            buffer,
            in_flight: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            written: Notify::new(),
            failed: std::sync::OnceLock::new(),
            counters,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_loop(out, format, &writer))?;
        Ok(Stdout(shared))
    }

    pub fn buffer(&self) -> &Arc<Buffer> {
        &self.0.buffer
    }

    /// Why a write failed, if one did (the first failure): copies lost to it are in
    /// `dropped_stdout` with those not written in time.
    pub fn write_error(&self) -> Option<&str> {
        self.0.failed.get().map(String::as_str)
    }

    /// Waits until every queued event is written, or `deadline`; what is not written
    /// then (queued, or held by a writer stuck in `write(2)`) is counted in
    /// `dropped_stdout`, and the writer ends. Woken by each batch the writer finishes,
    /// not by polling: the exit follows the last write at once.
    pub async fn drain(&self, deadline: Instant) {
        let s = &*self.0;
        while !s.buffer.is_empty() || s.in_flight.load(Ordering::Acquire) > 0 {
            // A batch finished since the look above left its permit: nothing is missed.
            if tokio::time::timeout_at(deadline, s.written.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        s.stop.store(true, Ordering::Release);
        let left = s.buffer.take(usize::MAX).len() as u64;
        let stuck = s.in_flight.load(Ordering::Acquire);
        Counters::add(&s.counters.dropped_stdout, left + stuck);
    }
}

fn write_loop<W: Write>(mut out: W, format: Format, shared: &Shared) {
    let Shared {
        buffer,
        in_flight,
        stop,
        written,
        failed,
        counters,
    } = shared;
    let mut bytes = Vec::with_capacity(64 * 1024);
    loop {
        let events = buffer.take_blocking(TAKE, IDLE_WAIT, in_flight);
        if events.is_empty() {
            if stop.load(Ordering::Acquire) {
                return;
            }
            continue;
        }
        bytes.clear();
        for event in &events {
            render(format, &event.json, &mut bytes);
        }
        // A closed stdout loses these copies: count them (the shipped ones still ship),
        // and keep why, for the report at the end.
        if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
            Counters::add(&counters.dropped_stdout, events.len() as u64);
            let _ = failed.set(e.to_string());
        }
        in_flight.store(0, Ordering::Release);
        written.notify_one();
        if stop.load(Ordering::Acquire) {
            // Counted as not written when the stop came: end without writing more.
            return;
        }
    }
}

/// Appends the line(s) `json`, an event, is written as in `format`.
fn render(format: Format, json: &str, out: &mut Vec<u8>) {
    let text = match format {
        Format::Text { ansi } => push_text_message(json, ansi, out),
        Format::Json => false,
    };
    if !text {
        out.extend_from_slice(json.as_bytes());
    }
    out.push(b'\n');
}

/// Appends the decoded message of `json` when it is a text event as `structure` writes
/// it (`{"timestamp":"…",["level":"…",]"stream":"stdout|stderr","message":"…"}`, maybe
/// with the ECS context after the message) and says so; else appends nothing. Linear
/// in the event, no allocation.
fn push_text_message(json: &str, ansi: bool, out: &mut Vec<u8>) -> bool {
    let Some(rest) = json.strip_prefix("{\"timestamp\":\"") else {
        return false;
    };
    // An RFC 3339 time has no quote or backslash: the next quote ends it.
    let Some(end) = rest.find('"') else {
        return false;
    };
    let mut rest = &rest[end..];
    if let Some(after) = rest.strip_prefix("\",\"level\":\"") {
        let word = after.bytes().take_while(u8::is_ascii_lowercase).count();
        rest = &after[word..];
    }
    let Some(message) = rest
        .strip_prefix("\",\"stream\":\"stdout\",\"message\":\"")
        .or_else(|| rest.strip_prefix("\",\"stream\":\"stderr\",\"message\":\""))
    else {
        return false;
    };
    let start = out.len();
    match decode_json_string(message, ansi, out) {
        Some(after) if after == "}" || after.starts_with(",\"ecs\":{") => true,
        _ => {
            // Not one of ours after all (an app's line of the same first fields).
            out.truncate(start);
            false
        }
    }
}

/// Decodes the JSON string whose opening quote is just before `s` into `out`, and
/// returns what follows its closing quote (`None`: not a whole, valid string). Control
/// characters but tab and newline (and ESC with `ansi`) keep their escape.
fn decode_json_string<'a>(s: &'a str, ansi: bool, out: &mut Vec<u8>) -> Option<&'a str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        let k = memchr::memchr2(b'"', b'\\', &bytes[i..])?;
        out.extend_from_slice(&bytes[i..i + k]);
        i += k;
        if bytes[i] == b'"' {
            return s.get(i + 1..);
        }
        let escape = bytes.get(i..i + 2)?;
        let plain = match escape[1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' | b'b' | b'f' => None,
            b'u' => {
                let (c, width) = decode_unicode_escape(bytes.get(i..)?)?;
                let shown = match c {
                    '\u{1b}' => ansi,
                    '\t' | '\n' => true,
                    c => !c.is_control(),
                };
                if shown {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                } else {
                    out.extend_from_slice(bytes.get(i..i + width)?);
                }
                i += width;
                continue;
            }
            _ => return None,
        };
        match plain {
            Some(b) => out.push(b),
            None => out.extend_from_slice(escape),
        }
        i += 2;
    }
}

/// `\uXXXX` (or a surrogate pair, `\uD83D\uDE00`) at the start of `b`: the character and
/// the bytes it took. A lone surrogate becomes U+FFFD.
fn decode_unicode_escape(b: &[u8]) -> Option<(char, usize)> {
    let hex = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let first = hex(2)?;
    if (0xD800..0xDC00).contains(&first) && b.get(6..8) == Some(b"\\u") {
        if let Some(second) = hex(8).filter(|s| (0xDC00..0xE000).contains(s)) {
            let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            return Some((char::from_u32(c)?, 12));
        }
    }
    Some((char::from_u32(first).unwrap_or('\u{fffd}'), 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::{Event, Stream};
    use std::sync::Mutex;

    /// A writer that blocks until released, then records what it got.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(n: usize) -> Event {
        Event::new(n as i64, format!("{{\"n\":{n}}}"))
    }

    /// `lines` captured from `stream` as the pipeline makes them (structured, then
    /// sanitized with `secret` loaded), rendered as text.
    fn as_text(stream: Stream, lines: &[&str], secret: &str, ansi: bool) -> String {
        use crate::sanitize::{Config, KnownSecret, Sanitizer};
        use crate::structure::{Options, Structurer};
        let config = Config {
            secrets: vec![KnownSecret::new("API_TOKEN", secret)],
            ..Config::default()
        };
        let sanitizer = Sanitizer::new(config).unwrap().0;
        let options = Options {
            strip_ansi: !ansi,
            ..Options::default()
        };
        let mut structurer = Structurer::new(stream, &options);
        let mut events = Vec::new();
        for line in lines {
            structurer.push(line.as_bytes(), 1_000, &mut events);
        }
        structurer.flush(&mut events);
        let mut out = Vec::new();
        for e in &events {
            render(
                Format::Text { ansi },
                &sanitizer.sanitize(&e.json),
                &mut out,
            );
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_the_message_and_a_json_line_as_it_is() {
        let json_line = r#"{"level":"info","msg":"ready","port":8080}"#;
        let out = as_text(
            Stream::Stdout,
            &["plain \"quoted\" line ✓ 😀", json_line, "ERROR: boom"],
            "s3cr3t-v4lue",
            false,
        );
        assert_eq!(
            out,
            format!("plain \"quoted\" line ✓ 😀\n{json_line}\nERROR: boom\n")
        );
    }

    #[test]
    fn a_multi_line_event_is_its_lines() {
        let out = as_text(
            Stream::Stderr,
            &[
                "Traceback (most recent call last):",
                "  File \"app.py\", line 1, in <module>",
                "ValueError: bad\tvalue",
            ],
            "s3cr3t-v4lue",
            false,
        );
        assert_eq!(
            out,
            "Traceback (most recent call last):\n  File \"app.py\", line 1, in <module>\nValueError: bad\tvalue\n"
        );
    }

    #[test]
    fn text_is_sanitized_as_json_is() {
        let secret = "s3cr3t-v4lue";
        let out = as_text(
            Stream::Stdout,
            &[
                &format!("token={secret} sent"),
                &format!(r#"{{"msg":"login","token":"{secret}"}}"#),
            ],
            secret,
            false,
        );
        assert!(!out.contains(secret), "{out}");
        assert!(out.starts_with("token=[REDACTED] sent\n"), "{out}");
    }

    #[test]
    fn control_characters_stay_escaped_but_kept_colours() {
        let line = "\x1b[31mred\x1b[0m bell\x07 \x1b]0;title\x07";
        // Stripped (the default): what is left of ESC and BEL cannot reach the terminal.
        let stripped = as_text(Stream::Stdout, &[line], "s3cr3t-v4lue", false);
        assert!(!stripped.contains(['\x1b', '\x07']), "{stripped:?}");
        assert!(stripped.starts_with("red bell\\u0007"), "{stripped:?}");
        // Kept: the colours reach the terminal, BEL still does not.
        let kept = as_text(Stream::Stdout, &[line], "s3cr3t-v4lue", true);
        assert!(
            kept.starts_with("\x1b[31mred\x1b[0m bell\\u0007"),
            "{kept:?}"
        );
    }

    #[test]
    fn what_only_looks_like_a_text_event_is_written_as_json() {
        for json in [
            r#"{"timestamp":"2026-01-01T00:00:00Z","stream":"stdout","message":"hi","user":"bob"}"#,
            r#"{"timestamp":"2026-01-01T00:00:00Z","stream":"stdout","message":"unterminated"#,
            r#"{"timestamp":"2026-01-01T00:00:00Z","stream":"stdout","message":"bad \x"}"#,
            r#"{"deckhand_part":{"id":"1","index":0,"last":false},"data":"{\"timestamp\""}"#,
        ] {
            let mut out = Vec::new();
            render(Format::Text { ansi: false }, json, &mut out);
            assert_eq!(out, format!("{json}\n").into_bytes());
        }
        let mut out = Vec::new();
        render(
            Format::Text { ansi: false },
            r#"{"timestamp":"2026-01-01T00:00:00Z","level":"warn","stream":"stderr","message":"a\ud83d\ude00\u00e9\/"}"#,
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), "a😀é/\n");
    }

    /// A JSON writer to `out` with a buffer of `capacity` bytes, dropping the oldest,
    /// and its counters.
    fn json_to<W: Write + Send + 'static>(out: W, capacity: usize) -> (Stdout, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let stdout = Stdout::start(
            out,
            Format::Json,
            capacity,
            FullPolicy::DropOldest,
            counters.clone(),
        )
        .unwrap();
        (stdout, counters)
    }

    #[tokio::test]
    async fn a_stalled_stdout_never_blocks_producers_and_drops_are_counted() {
        let gate = Gate::default();
        let (out, counters) = json_to(gate.clone(), 100 * 40);
        // The writer is stuck in write(): 10,000 events still go through push_all at once.
        let pushed = tokio::time::timeout(Duration::from_secs(5), async {
            for n in 0..10_000 {
                out.buffer().push_all(vec![event(n)]).await;
            }
        })
        .await;
        assert!(pushed.is_ok(), "producers never wait on a stalled stdout");
        let dropped = counters.dropped_stdout.load(Ordering::Relaxed);
        assert!(dropped > 9_000, "{dropped}");
        // Released, the newest events come out.
        {
            let (lock, cv) = &*gate.open;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        out.drain(Instant::now() + Duration::from_secs(10)).await;
        let written = String::from_utf8(gate.got.lock().unwrap().clone()).unwrap();
        assert!(written.ends_with("{\"n\":9999}\n"), "{written}");
        let lines = written.lines().count() as u64;
        assert_eq!(
            lines + counters.dropped_stdout.load(Ordering::Relaxed),
            10_000
        );
    }

    /// The drain ends once the last batch is written: the writer wakes it (a missed
    /// wake-up would hold it until its deadline, an hour here).
    #[tokio::test]
    async fn the_drain_ends_when_the_last_batch_is_written() {
        let gate = Gate::default();
        let (out, counters) = json_to(gate.clone(), 1 << 20);
        let out = Arc::new(out);
        out.buffer().push_all((0..50).map(event).collect()).await;
        let drain = {
            let out = out.clone();
            tokio::spawn(async move { out.drain(Instant::now() + Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        assert!(!drain.is_finished(), "the writer is held at the gate");
        {
            let (lock, cv) = &*gate.open;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !drain.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the last batch written did not wake the drain"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drain.await.unwrap();
        let written = String::from_utf8(gate.got.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 50);
        assert_eq!(counters.dropped_stdout.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn what_cannot_be_written_by_the_deadline_is_counted() {
        let (out, counters) = json_to(Gate::default(), 1 << 20);
        out.buffer().push_all((0..50).map(event).collect()).await;
        out.drain(Instant::now() + Duration::from_millis(50)).await;
        // Queued or held by the stuck writer: every one is counted as not written.
        assert_eq!(counters.dropped_stdout.load(Ordering::Relaxed), 50);
        assert!(out.buffer().is_empty());
        assert_eq!(out.write_error(), None, "nothing failed: it was slow");
    }

    /// A stdout whose reader went away.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_closed_stdout_is_counted_and_said() {
        let (out, counters) = json_to(Closed, 1 << 20);
        out.buffer().push_all((0..50).map(event).collect()).await;
        out.drain(Instant::now() + Duration::from_secs(30)).await;
        assert_eq!(counters.dropped_stdout.load(Ordering::Relaxed), 50);
        assert_eq!(out.write_error(), Some("broken pipe"));
    }
}
