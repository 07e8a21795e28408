//! The agent's own messages (tracing): one line each on stderr — JSON by default, text
//! with `DECKHAND_AGENT_LOG_FORMAT=text` — and, once the log pipeline runs, sanitized
//! and shipped into the app's stream with `"source": "agent"`.
//!
//! Before the secrets are loaded there is nothing to redact, and lines go to stderr as
//! they are. [`attach`] then routes every line through the log pipeline's sanitizer,
//! and queues it for the stream without ever waiting: the queue is bounded and a full
//! queue drops the copy for CloudWatch (stderr still has the line).
//!
//! Writing never blocks the thread that logs (the supervisor's among them): lines wait
//! in a bounded queue that the `stderr` thread writes out, and a full queue (nobody is
//! reading stderr) drops the line rather than stall PID 1.
//!
//! No feedback loop: the shipper's own messages (`logship::ship`: retries, an access
//! problem) and the AWS SDK's are written to stderr only. Shipping them would feed
//! every failed call another event to ship.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use logship::sanitize::Current;
use tokio::sync::mpsc;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Agent messages waiting for the pipeline; beyond this they reach stderr only.
const QUEUE: usize = 1024;

/// Targets whose messages are never shipped (see the module doc).
const STDERR_ONLY: &[&str] = &["logship::ship", "aws_", "hyper", "h2"];

/// Where lines go once the pipeline runs.
struct Route {
    sanitizer: Arc<Current>,
    /// `None` when nothing is shipped: sanitized lines go to stderr only.
    ship: Option<mpsc::Sender<(i64, String)>>,
    format: LogFormat,
}

static ROUTE: OnceLock<Route> = OnceLock::new();

/// Starts the agent's diagnostics at `level` in `format`. Only the agent's crates log
/// at `level` (migrate's, when it runs on start, and the healthcheck's); libraries,
/// the AWS SDK among them, at warn, so no request or response body is ever logged.
pub fn init(level: tracing::Level, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,agent={level},migrate={level},healthcheck={level},logship={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// From now on lines are sanitized; with `ship`, also queued for the stream. Returns
/// the receiving end the caller drains into the pipeline ([`forward`]).
pub fn attach(
    sanitizer: Arc<Current>,
    ship: bool,
    format: LogFormat,
) -> Option<mpsc::Receiver<(i64, String)>> {
    let (tx, rx) = if ship {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let _ = ROUTE.set(Route {
        sanitizer,
        ship: tx,
        format,
    });
    rx
}

/// Feeds queued agent messages into the pipeline (forever: the sender is static).
pub async fn forward(events: logship::AgentEvents, mut rx: mpsc::Receiver<(i64, String)>) {
    while let Some((ts, json)) = rx.recv().await {
        events.send(ts, json).await;
    }
}

/// Waits until [`forward`] has taken every queued message, or `deadline`.
pub async fn drain(deadline: tokio::time::Instant) {
    let Some(tx) = ROUTE.get().and_then(|r| r.ship.as_ref()) else {
        return;
    };
    while tx.capacity() < tx.max_capacity() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // `forward` pushes what it took before it next yields.
    tokio::task::yield_now().await;
}

/// The tracing writer: one formatted line per `write`, passed to [`emit`].
#[derive(Clone, Copy)]
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Collects one event's bytes (tracing-subscriber writes an event, then drops the
/// writer), and emits them on drop.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            emit(&self.0);
        }
    }
}

/// Lines waiting for the `stderr` thread; beyond this they are dropped.
const STDERR_QUEUE: usize = 4096;

/// The queue to the `stderr` thread (`None` if the thread could not start: then lines
/// are written directly).
static STDERR: OnceLock<Option<SyncSender<Vec<u8>>>> = OnceLock::new();
/// Lines queued and not written yet.
static STDERR_PENDING: AtomicU64 = AtomicU64::new(0);
/// Lines dropped because the queue was full.
static STDERR_DROPPED: AtomicU64 = AtomicU64::new(0);

fn stderr_queue() -> Option<&'static SyncSender<Vec<u8>>> {
    STDERR
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(STDERR_QUEUE);
            std::thread::Builder::new()
                .name("stderr".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut err = io::stderr();
                    for line in rx {
                        let _ = err.write_all(&line);
                        STDERR_PENDING.fetch_sub(1, Ordering::AcqRel);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Waits (up to `wait`) until the queued lines are written: the last words before the
/// agent exits. Returns how many lines were dropped because stderr was not read.
pub fn flush_stderr(wait: Duration) -> u64 {
    let until = Instant::now() + wait;
    while STDERR_PENDING.load(Ordering::Acquire) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    STDERR_DROPPED.load(Ordering::Relaxed)
}

/// The panic hook: where and on which thread, never the message. A panic message can
/// quote the text being processed (a slicing error shows the string), and that text
/// is the app's output or a secret. The capture stage catches panics per line and
/// counts them; this only keeps their text out of stderr.
pub fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let thread = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    let at = info
        .location()
        .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
    let message = format!(
        "internal error in thread {thread}{at} (its details are withheld: they may quote the app's output); please report it"
    );
    let line =
        serde_json::json!({ "level": "ERROR", "target": "agent::panic", "message": message });
    write_stderr(&line.to_string());
}

fn emit(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\n');
    let Some(route) = ROUTE.get() else {
        write_stderr(text);
        return;
    };
    match route.format {
        LogFormat::Json => {
            let sanitizer = route.sanitizer.get();
            let clean = sanitizer.sanitize(text);
            write_stderr(&clean);
            if let Some(tx) = route.ship.as_ref().filter(|_| shippable(&clean)) {
                let _ = tx.try_send((logship::structure::now_ms(), with_source(&clean)));
            }
        }
        LogFormat::Text => {
            // The sanitizer reads JSON: the text line travels as a message field.
            let wrapped = serde_json::json!({ "source": "agent", "message": text }).to_string();
            let clean = route.sanitizer.get().sanitize(&wrapped).into_owned();
            let message = serde_json::from_str::<serde_json::Value>(&clean)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "[REDACTED]".to_owned());
            write_stderr(&message);
            // tracing's text lines: `TIMESTAMP LEVEL TARGET: message`.
            let target = text.split_whitespace().nth(2).unwrap_or("");
            if let Some(tx) = route.ship.as_ref().filter(|_| shippable_target(target)) {
                let _ = tx.try_send((logship::structure::now_ms(), clean));
            }
        }
    }
}

/// Queues a line for stderr without ever waiting.
fn write_stderr(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let Some(tx) = stderr_queue() else {
        let _ = io::stderr().write_all(&bytes);
        return;
    };
    STDERR_PENDING.fetch_add(1, Ordering::AcqRel);
    if tx.try_send(bytes).is_err() {
        STDERR_PENDING.fetch_sub(1, Ordering::AcqRel);
        STDERR_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a JSON line's `target` may be shipped.
fn shippable(json: &str) -> bool {
    let target = json
        .find("\"target\":\"")
        .map(|i| &json[i + 10..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    shippable_target(target)
}

fn shippable_target(target: &str) -> bool {
    !STDERR_ONLY.iter().any(|t| target.starts_with(t))
}

/// `{"source":"agent",…}`: the marker that tells agent events from the app's.
fn with_source(json: &str) -> String {
    match json.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => r#"{"source":"agent"}"#.to_owned(),
        Some(rest) => format!(r#"{{"source":"agent",{rest}"#),
        None => serde_json::json!({ "source": "agent", "message": json }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_marker_is_the_first_field() {
        assert_eq!(
            with_source(r#"{"level":"INFO","message":"x"}"#),
            r#"{"source":"agent","level":"INFO","message":"x"}"#
        );
        assert_eq!(with_source("{}"), r#"{"source":"agent"}"#);
        let odd: serde_json::Value = serde_json::from_str(&with_source("not json")).unwrap();
        assert_eq!(odd["message"], "not json");
    }

    #[test]
    fn the_shippers_own_messages_stay_on_stderr() {
        assert!(!shippable(
            r#"{"level":"WARN","target":"logship::ship","message":"retrying"}"#
        ));
        assert!(!shippable(
            r#"{"level":"WARN","target":"aws_smithy_runtime::client","message":"x"}"#
        ));
        assert!(shippable(
            r#"{"level":"INFO","target":"agent::supervise","message":"the app exited"}"#
        ));
        assert!(shippable(
            r#"{"level":"INFO","target":"migrate::apply","message":"applied V1"}"#
        ));
    }
}
