//! The agent's own messages (tracing): one line each on stderr — JSON, or text with
//! `DECKHAND_AGENT_LOG_FORMAT=text` or on a terminal (`auto`, decided in `config`) —
//! and, once the log pipeline runs, sanitized
//! and shipped into the app's stream with `"source": "agent"`.
//!
//! [`Diagnostics`] is where the agent's tracing subscriber sends each event, and the
//! handle to it: [`init`] installs the subscriber and returns it, and whoever starts
//! the log pipeline [`attach`](Diagnostics::attach)es it. Each event is read once into
//! a [`Record`] and rendered from it: for stderr in the chosen format (see
//! `conventions::logging` for both shapes), and for the stream always as JSON, the
//! `"source":"agent"` marker first.
//!
//! Before the secrets are loaded there is nothing to redact, and lines go to stderr as
//! they are. Once attached, every line goes through the log pipeline's sanitizer (a
//! JSON line as an event, a text line as a raw line), and the JSON copy is queued for
//! the stream without ever waiting: the queue is bounded and a full queue drops the
//! copy for CloudWatch (stderr still has the line).
//!
//! Writing never blocks the thread that logs (the supervisor's among them): lines wait
//! in a bounded queue that the `stderr` thread writes out, and a full queue (nobody is
//! reading stderr) drops the line rather than stall PID 1.
//!
//! No feedback loop: the shipper's own messages (`logship::ship`: retries, an access
//! problem) and the AWS SDK's are written to stderr only, decided by the event's
//! target. Shipping them would feed every failed call another event to ship.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use conventions::logging::{LogFormat, Record};
use logship::sanitize::Current;
use tokio::sync::{mpsc, Notify};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::{Interest, Subscriber};
use tracing::{span, Event, Level, Metadata};
use tracing_subscriber::filter::Targets;

/// How text lines start.
const PROGRAM: &str = "agent";

/// Agent messages waiting for the pipeline; beyond this they reach stderr only.
const QUEUE: usize = 1024;

/// Lines waiting for the `stderr` thread; beyond this they are dropped. The queue
/// grows as lines wait (a bounded `sync_channel` would allocate and touch all of its
/// slots at start: 128 KiB resident for the agent's whole life).
const STDERR_QUEUE: u64 = 4096;

/// Targets whose messages are never shipped (see the module doc).
const STDERR_ONLY: &[&str] = &["logship::ship", "aws_", "hyper", "h2"];

/// The crates whose messages are logged at the agent's level (targets start with them).
const OWN_CRATES: [&str; 4] = ["agent", "migrate", "healthcheck", "logship"];

/// Starts the agent's diagnostics at `level` in `format`, and returns their handle.
/// Only the agent's crates log at `level` (migrate's, when it runs on start, and the
/// healthcheck's); libraries, the AWS SDK among them, at warn, so no request or
/// response body is ever logged.
pub fn init(level: Level, format: LogFormat) -> Diagnostics {
    let diagnostics = Diagnostics::new(format, io::stderr());
    let subscriber = Lines::new(diagnostics.clone(), level, Level::WARN);
    // A second set-up in one process (tests) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
    diagnostics
}

/// The agent's subscriber: a filter by target, and each event that passes it to
/// [`Diagnostics`]. Spans are not recorded: none of the agent's crates opens one, and
/// a line carries no span context. (tracing-subscriber's `Registry`, which records
/// them, writes a 32 KiB table on its first use, at every start.)
struct Lines {
    /// By target: a fixed list, no directive to parse (an `EnvFilter` compiles its
    /// directive grammar, a regular expression, at the start).
    filter: Targets,
    max: LevelFilter,
    diagnostics: Diagnostics,
}

impl Lines {
    /// The agent's crates at `own`, every other target at `others`.
    fn new(diagnostics: Diagnostics, own: Level, others: Level) -> Lines {
        Lines {
            filter: Targets::new()
                .with_default(others)
                .with_targets(OWN_CRATES.map(|target| (target, own))),
            max: LevelFilter::from_level(own).max(LevelFilter::from_level(others)),
            diagnostics,
        }
    }
}

impl Subscriber for Lines {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter
            .would_enable(metadata.target(), metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        self.diagnostics.emit(&Record::from_event(event));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// The agent's diagnostics: where the subscriber sends each event, and the handle that
/// attaches them to the log pipeline and flushes them at the exit. Clones share
/// everything.
#[derive(Clone)]
pub struct Diagnostics(Arc<Shared>);

struct Shared {
    /// The format of stderr lines (the stream always gets JSON).
    format: LogFormat,
    /// Set once by [`Diagnostics::attach`]: from then on lines are sanitized.
    route: OnceLock<Route>,
    /// Every line, sanitized or not, goes out through here.
    stderr: StderrQueue,
    /// Signalled by [`Diagnostics::forward`] after each line it pushed, for
    /// [`Diagnostics::drain`].
    forwarded: Arc<Notify>,
}

/// Where lines go once the pipeline runs.
struct Route {
    /// The log pipeline's, replaced as a whole when a rotation loads more secrets.
    sanitizer: Arc<Current>,
    /// `None` when nothing is shipped: sanitized lines go to stderr only.
    ship: Option<mpsc::Sender<(i64, String)>>,
}

impl Diagnostics {
    /// Lines in `format`, written to `out` by a thread of their own.
    fn new(format: LogFormat, out: impl Write + Send + 'static) -> Diagnostics {
        Diagnostics(Arc::new(Shared {
            format,
            route: OnceLock::new(),
            stderr: StderrQueue::start(out),
            forwarded: Arc::default(),
        }))
    }

    /// From now on lines are sanitized; with `ship`, also queued for the stream.
    /// Returns the receiving end the caller drains into the pipeline ([`Diagnostics::forward`]).
    /// Only the first call attaches.
    pub fn attach(
        &self,
        sanitizer: Arc<Current>,
        ship: bool,
    ) -> Option<mpsc::Receiver<(i64, String)>> {
        let (tx, rx) = if ship {
            let (tx, rx) = mpsc::channel(QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.0
            .route
            .set(Route {
                sanitizer,
                ship: tx,
            })
            .ok()?;
        rx
    }

    /// Waits until [`Diagnostics::forward`] has taken every queued message, or `deadline`.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        let Some(tx) = self.0.route.get().and_then(|r| r.ship.as_ref()) else {
            return;
        };
        while tx.capacity() < tx.max_capacity() {
            // A line pushed since the look above left its permit: nothing is missed.
            if tokio::time::timeout_at(deadline, self.0.forwarded.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        // `forward` pushes what it took before it next yields.
        tokio::task::yield_now().await;
    }

    /// Waits (up to `wait`) until the queued lines are written: the last words before
    /// the agent exits. Returns how many lines were dropped because stderr was not read.
    pub fn flush_stderr(&self, wait: Duration) -> u64 {
        self.0.stderr.flush(wait)
    }

    /// [`report_panic`] through the stderr queue: a panicking thread does not wait for
    /// a stderr nobody reads either.
    pub fn report_panic(&self, info: &std::panic::PanicHookInfo<'_>) {
        self.0.stderr.write(panic_line(info));
    }

    /// One event: to stderr, and once attached sanitized, and queued for the stream
    /// unless its target is [`STDERR_ONLY`].
    fn emit(&self, record: &Record) {
        let shared = &*self.0;
        let Some(route) = shared.route.get() else {
            shared.stderr.write(record.render(PROGRAM, shared.format));
            return;
        };
        let sanitizer = route.sanitizer.get();
        let ship = route.ship.as_ref().filter(|_| shippable(record.target));
        let send = |clean: &str| {
            if let Some(tx) = ship {
                let _ = tx.try_send((logship::structure::now_ms(), with_source(clean)));
            }
        };
        match shared.format {
            LogFormat::Json => {
                let json = record.json();
                let clean = sanitizer.sanitize(&json);
                send(&clean);
                shared.stderr.write(clean.into_owned());
            }
            LogFormat::Text => {
                let text = record.text(PROGRAM);
                shared
                    .stderr
                    .write(sanitizer.redact_text(&text).into_owned());
                if ship.is_some() {
                    send(&sanitizer.sanitize(&record.json()));
                }
            }
        }
    }
}

impl Diagnostics {
    /// Feeds the queued agent messages of `rx` ([`Diagnostics::attach`]'s) into the
    /// pipeline until the diagnostics are dropped, waking [`Diagnostics::drain`] after
    /// each.
    pub fn forward(
        &self,
        events: logship::AgentEvents,
        mut rx: mpsc::Receiver<(i64, String)>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // Only the signal: holding the diagnostics would hold the queue's sender, and
        // the queue would never end.
        let forwarded = self.0.forwarded.clone();
        async move {
            while let Some((ts, json)) = rx.recv().await {
                events.send(ts, json).await;
                forwarded.notify_one();
            }
        }
    }
}

/// The panic hook: where and on which thread, never the message. A panic message can
/// quote the text being processed (a slicing error shows the string), and that text
/// is the app's output or a secret. The capture stage catches panics per line and
/// counts them; this only keeps their text out of stderr. Writes straight to stderr:
/// the hook until [`init`] (then [`Diagnostics::report_panic`]).
pub fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let mut line = panic_line(info);
    line.push('\n');
    let _ = io::stderr().write_all(line.as_bytes());
}

fn panic_line(info: &std::panic::PanicHookInfo<'_>) -> String {
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
    serde_json::json!({ "level": "ERROR", "target": "agent::panic", "message": message })
        .to_string()
}

/// The bounded queue to the `stderr` thread.
struct StderrQueue {
    /// `None` if the thread could not start: then lines are written directly.
    tx: Option<Sender<Vec<u8>>>,
    /// Lines queued and not written yet, and the exit's wait for them.
    pending: Arc<Pending>,
    /// Lines dropped because the queue was full.
    dropped: AtomicU64,
}

/// The lines queued and not written yet. [`StderrQueue::flush`] waits on `written` for
/// the count to reach zero; the thread signals it only when a flush waits, so a line
/// costs no more than an atomic decrement.
#[derive(Default)]
struct Pending {
    count: AtomicU64,
    flushing: AtomicBool,
    lock: Mutex<()>,
    written: Condvar,
}

impl Pending {
    /// A line was written (or given up on).
    fn done(&self) {
        // SeqCst on both sides (here and in `wait`): either this sees `flushing`, or
        // the flush sees the count this left.
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 && self.flushing.load(Ordering::SeqCst) {
            // Taken after the flush sleeps (it holds the lock until then), so the
            // signal cannot come between its look at the count and its sleep.
            drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
            self.written.notify_all();
        }
    }

    /// Waits up to `wait` for the count to reach zero.
    fn wait(&self, wait: Duration) {
        self.flushing.store(true, Ordering::SeqCst);
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .written
            .wait_timeout_while(guard, wait, |_| self.count.load(Ordering::SeqCst) > 0);
    }
}

impl StderrQueue {
    /// Starts the thread that writes the queued lines to `out`; it ends when the queue
    /// is dropped.
    fn start(mut out: impl Write + Send + 'static) -> StderrQueue {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let pending = Arc::new(Pending::default());
        let written = pending.clone();
        let tx = std::thread::Builder::new()
            .name("stderr".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for line in rx {
                    let _ = out.write_all(&line);
                    written.done();
                }
            })
            .ok()
            .map(|_| tx);
        StderrQueue {
            tx,
            pending,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a line without ever waiting.
    fn write(&self, line: String) {
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let Some(tx) = &self.tx else {
            let _ = io::stderr().write_all(&bytes);
            return;
        };
        let waiting = self.pending.count.fetch_add(1, Ordering::SeqCst);
        if waiting >= STDERR_QUEUE || tx.send(bytes).is_err() {
            self.pending.done();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to `wait`) until the queued lines are written; returns how many were
    /// dropped. Woken by the last line written, not by polling: the exit follows it at
    /// once.
    fn flush(&self, wait: Duration) -> u64 {
        self.pending.wait(wait);
        self.dropped.load(Ordering::Relaxed)
    }
}

fn shippable(target: &str) -> bool {
    !STDERR_ONLY.iter().any(|t| target.starts_with(t))
}

/// `{"source":"agent",…}`: the marker that tells agent events from the app's, put
/// first into a JSON object rendered by [`Record::json`] (the sanitizer keeps its
/// opening brace).
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
    use logship::sanitize::{Config, KnownSecret, Sanitizer};

    const SECRET: &str = "s3cr3t-value-42";

    /// What the `stderr` thread wrote.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Out {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// The exit's flush returns once the last queued line is written: the line wakes
    /// it (a missed wake-up would hold it for its whole wait, an hour here).
    #[test]
    fn the_flush_returns_when_the_last_line_is_written() {
        /// Writes only once the gate's sender is dropped.
        struct Gated(std::sync::mpsc::Receiver<()>, Out);
        impl Write for Gated {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                self.1.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (gate, gated) = std::sync::mpsc::channel();
        let out = Out::default();
        let queue = Arc::new(StderrQueue::start(Gated(gated, out.clone())));
        queue.write("one".into());
        queue.write("two".into());
        let flush = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.flush(Duration::from_secs(3600)))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !queue.pending.flushing.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the flush never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!flush.is_finished(), "two lines wait for the gate");
        drop(gate);
        while !flush.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the last line written did not wake the flush"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(flush.join().unwrap(), 0);
        assert_eq!(out.lines(), ["one", "two"]);
    }

    fn sanitizer() -> Arc<Current> {
        let config = Config {
            secrets: vec![KnownSecret::new("API_KEY", SECRET)],
            ..Config::default()
        };
        let (s, _) = Sanitizer::new(config.clone()).unwrap();
        Arc::new(Current::new(s, config))
    }

    /// Diagnostics in `format` writing to an [`Out`], attached (shipping) when `attach`.
    fn diagnostics(
        format: LogFormat,
        attach: bool,
    ) -> (Diagnostics, Out, Option<mpsc::Receiver<(i64, String)>>) {
        let out = Out::default();
        let d = Diagnostics::new(format, out.clone());
        let rx = if attach {
            d.attach(sanitizer(), true)
        } else {
            None
        };
        (d, out, rx)
    }

    fn log(d: &Diagnostics, f: impl FnOnce()) {
        let subscriber = Lines::new(d.clone(), Level::TRACE, Level::TRACE);
        tracing::subscriber::with_default(subscriber, f);
        assert_eq!(d.flush_stderr(Duration::from_secs(5)), 0);
    }

    /// The queued copies, parsed, and as queued.
    fn shipped(rx: &mut mpsc::Receiver<(i64, String)>) -> Vec<(serde_json::Value, String)> {
        let mut events = Vec::new();
        while let Ok((ts, json)) = rx.try_recv() {
            assert!(ts > 0);
            events.push((serde_json::from_str(&json).expect(&json), json));
        }
        events
    }

    #[test]
    fn the_agents_crates_log_at_its_level_and_every_other_target_at_warn() {
        let (d, out, _) = diagnostics(LogFormat::Json, false);
        let subscriber = Lines::new(d.clone(), Level::DEBUG, Level::WARN);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "agent::supervise", "own debug");
            tracing::trace!(target: "agent::supervise", "own trace");
            tracing::debug!(target: "logship::ship", "pipeline debug");
            tracing::info!(target: "aws_smithy_runtime::client", "library info");
            tracing::warn!(target: "hyper_util::client", "library warn");
            // A library's span is entered and left without being recorded.
            let span = tracing::warn_span!(target: "h2", "a library span");
            let _in = span.enter();
            tracing::error!(target: "migrate::run", "inside a span");
        });
        assert_eq!(d.flush_stderr(Duration::from_secs(5)), 0);
        let messages: Vec<String> = out
            .lines()
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "\"own debug\"",
                "\"pipeline debug\"",
                "\"library warn\"",
                "\"inside a span\""
            ]
        );
    }

    #[test]
    fn a_secret_in_a_field_is_redacted_on_stderr_and_in_the_shipped_copy() {
        for format in [LogFormat::Json, LogFormat::Text] {
            let (d, out, rx) = diagnostics(format, true);
            log(&d, || tracing::warn!(key = SECRET, "the key is {SECRET}"));
            let lines = out.lines();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(!lines[0].contains(SECRET), "{lines:?}");
            assert!(lines[0].contains("[REDACTED]"), "{lines:?}");
            let events = shipped(&mut rx.unwrap());
            assert_eq!(events.len(), 1);
            let (e, raw) = &events[0];
            assert!(!raw.contains(SECRET), "{raw}");
            assert_eq!(e["source"], "agent");
            assert_eq!(e["level"], "WARN");
            assert_eq!(e["key"], "[REDACTED]");
            assert_eq!(e["target"], "agent::diagnostics::tests");
            match format {
                LogFormat::Json => {
                    // stderr has no marker; the stream's copy is the same line with it.
                    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
                    assert!(line.get("source").is_none());
                    assert_eq!(*raw, with_source(&lines[0]));
                }
                LogFormat::Text => {
                    assert_eq!(lines[0], "agent: warning: the key is [REDACTED]");
                }
            }
        }
    }

    #[test]
    fn a_message_with_quotes_and_newlines_ships_as_valid_json() {
        let (d, out, rx) = diagnostics(LogFormat::Json, true);
        let nasty = "say \"hi\"\nthen\t\\bye";
        log(&d, || tracing::info!(what = %nasty, "{nasty}"));
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "one line, the newline escaped: {lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["message"], nasty);
        let events = shipped(&mut rx.unwrap());
        assert_eq!(events[0].0["message"], nasty);
        assert_eq!(events[0].0["what"], nasty);
    }

    #[test]
    fn the_shippers_and_the_sdks_messages_stay_on_stderr() {
        let (d, out, rx) = diagnostics(LogFormat::Json, true);
        log(&d, || {
            tracing::warn!(target: "logship::ship", "retrying");
            tracing::warn!(target: "aws_smithy_runtime::client", "x");
            tracing::warn!(target: "hyper::proto", "x");
            tracing::info!(target: "migrate::apply", "applied V1");
            tracing::info!(target: "agent::supervise", "the app exited");
        });
        assert_eq!(out.lines().len(), 5);
        let targets: Vec<serde_json::Value> = shipped(&mut rx.unwrap())
            .iter()
            .map(|(e, _)| e["target"].clone())
            .collect();
        assert_eq!(targets, ["migrate::apply", "agent::supervise"]);
    }

    #[test]
    fn before_attach_lines_go_to_stderr_as_they_are() {
        let (d, out, _) = diagnostics(LogFormat::Text, false);
        log(&d, || tracing::error!(code = 78, "not started: {SECRET}"));
        assert_eq!(
            out.lines(),
            [format!("agent: error: not started: {SECRET} code=78")]
        );
        // Attached without shipping: sanitized, nothing queued.
        assert!(d.attach(sanitizer(), false).is_none());
        assert!(
            d.attach(sanitizer(), true).is_none(),
            "only the first attaches"
        );
        log(&d, || tracing::info!("again {SECRET}"));
        assert_eq!(out.lines()[1], "agent: again [REDACTED]");
    }

    #[test]
    fn a_full_shipping_queue_drops_the_copy_not_the_line() {
        let (d, out, rx) = diagnostics(LogFormat::Json, true);
        log(&d, || {
            for i in 0..QUEUE + 10 {
                tracing::info!(i, "line");
            }
        });
        assert_eq!(out.lines().len(), QUEUE + 10);
        assert_eq!(shipped(&mut rx.unwrap()).len(), QUEUE);
    }

    #[test]
    fn a_stderr_that_is_not_read_drops_lines_past_the_queue_and_counts_them() {
        /// Holds its first write until the gate opens.
        struct Stuck(Arc<Mutex<()>>, Out);
        impl Write for Stuck {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                drop(self.0.lock().unwrap());
                self.1.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let out = Out::default();
        let queue = StderrQueue::start(Stuck(gate.clone(), out.clone()));
        let lines = STDERR_QUEUE + 25;
        for i in 0..lines {
            queue.write(format!("line {i}"));
        }
        // The thread holds one line in its write, still counted as waiting.
        assert_eq!(queue.pending.count.load(Ordering::SeqCst), STDERR_QUEUE);
        drop(held);
        assert_eq!(queue.flush(Duration::from_secs(30)), 25);
        let written = out.lines();
        assert_eq!(written.len() as u64, STDERR_QUEUE);
        assert_eq!(written[0], "line 0");
        assert_eq!(
            written.last().unwrap(),
            &format!("line {}", STDERR_QUEUE - 1)
        );
    }

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
}
