//! The agent's own messages (tracing): one line each on stderr — JSON by default, text
//! with `DECKHAND_AGENT_LOG_FORMAT=text` — and, once the log pipeline runs, sanitized
//! and shipped into the app's stream with `"source": "agent"`.
//!
//! Before the secrets are loaded there is nothing to redact, and lines go to stderr as
//! they are. [`attach`] then routes every line through the log pipeline's sanitizer,
//! and queues it for the stream without ever waiting: the queue is bounded and a full
//! queue drops the copy for CloudWatch (stderr still has the line).
//!
//! No feedback loop: the shipper's own messages (`logship::ship`: retries, an access
//! problem) and the AWS SDK's are written to stderr only. Shipping them would feed
//! every failed call another event to ship.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Serializes stderr writes of whole lines.
static STDERR: Mutex<()> = Mutex::new(());

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

fn write_stderr(line: &str) {
    let _guard = STDERR.lock().unwrap_or_else(|p| p.into_inner());
    let mut err = io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
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
