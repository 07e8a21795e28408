//! The programs' own messages on stderr: the `LOG_FORMAT` switch (`text` for people,
//! `json` for CloudWatch), the one [`Record`] an event becomes, its two renderings, and
//! the tracing set-up, once for every program.
//!
//! An event is read once, into a [`Record`]; each format is rendered from it:
//!
//! - JSON ([`Record::json`]): one object per event, the shape tracing-subscriber's
//!   flattened JSON has (CloudWatch Logs Insights queries and the tests read it):
//!   `{"timestamp":"2026-01-02T03:04:05.123456Z","level":"INFO",<the fields in the
//!   event's order, "message" among them>,"target":"migrate::apply"}`. Numbers and
//!   booleans stay JSON numbers and booleans; `?value` and `%value` fields are strings.
//! - Text ([`Record::text`]): `program: message`, with `error: ` or `warning: ` before
//!   the message when it is one, then ` name=value` for each field whose value the
//!   message does not already quote (a message says what its fields say, and the text
//!   repeats nothing). A value with blanks, `=` or `"` is quoted as a JSON string.
//!
//! Not here: the agent's routing of its own messages into the log pipeline (the
//! agent's `diagnostics` module builds on [`Record`]).

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How a program writes its own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `program: message`, for people.
    #[default]
    Text,
    /// One JSON object per line, for CloudWatch Logs Insights.
    Json,
}

/// The variable that chooses the format of `migrate`'s and `healthcheck`'s messages.
pub const LOG_FORMAT_VAR: &str = "LOG_FORMAT";
/// Its documented default.
pub const DEFAULT_LOG_FORMAT: &str = "text";

/// `--log-format` (`LOG_FORMAT`), flattened into a program's command line; the value is
/// read with [`LogFormat::read`].
#[derive(Debug, Clone, clap::Args)]
pub struct LogFormatArg {
    /// Format of the program's messages on stderr: text for people, json for CloudWatch.
    #[arg(long, global = true, env = LOG_FORMAT_VAR, default_value = DEFAULT_LOG_FORMAT)]
    pub log_format: String,
}

impl LogFormat {
    /// `LOG_FORMAT` (or `--log-format`), `text` when unset; a bad value is recorded.
    pub fn read<E: crate::Env + ?Sized>(c: &mut crate::Checker<'_, E>) -> LogFormat {
        c.get(LOG_FORMAT_VAR, DEFAULT_LOG_FORMAT, LogFormat::parse)
    }

    /// `text` or `json`.
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be json or text".to_owned()),
        }
    }
}

/// Installs the stderr logger of `program`. `filter_var` (e.g. `MIGRATE_LOG`) holds a
/// tracing filter (`debug`, `migrate=debug`); `info` without it.
pub fn init(program: &'static str, format: LogFormat, filter_var: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(filter_var)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second set-up in one process (tests) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(StderrLayer { program, format })
        .try_init();
}

/// Writes each event to stderr as one line in `format`.
#[derive(Debug, Clone, Copy)]
pub struct StderrLayer {
    /// The name text lines start with.
    pub program: &'static str,
    /// Text or JSON (see the module doc).
    pub format: LogFormat,
}

impl<S: Subscriber> Layer<S> for StderrLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut line = Record::from_event(event).render(self.program, self.format);
        line.push('\n');
        // One write per line: lines from several threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// One event, read once from its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it was recorded: RFC 3339 in UTC with microseconds, as tracing-subscriber
    /// writes it.
    pub timestamp: String,
    /// `ERROR` to `TRACE`: the JSON `level`, the text's `error: `/`warning: `.
    pub level: Level,
    /// The module that logged it (`agent::supervise`): what filters and routes it.
    pub target: &'static str,
    /// Every field in the order the event gives them, `message` (usually the first)
    /// among them: integers, floats and booleans as such, everything else as a string.
    pub fields: Vec<(&'static str, Value)>,
}

impl Record {
    /// Reads `event`'s metadata and fields, stamped with the current time.
    pub fn from_event(event: &Event<'_>) -> Record {
        let mut timestamp = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let metadata = event.metadata();
        Record {
            timestamp,
            level: *metadata.level(),
            target: metadata.target(),
            fields: fields.0,
        }
    }

    /// The `message` field as text (empty without one).
    pub fn message(&self) -> Cow<'_, str> {
        match self.fields.iter().find(|(name, _)| *name == "message") {
            Some((_, value)) => as_text(value),
            None => Cow::Borrowed(""),
        }
    }

    /// The line in `format`, without its newline; `program` starts a text line.
    pub fn render(&self, program: &str, format: LogFormat) -> String {
        match format {
            LogFormat::Json => self.json(),
            LogFormat::Text => self.text(program),
        }
    }

    /// `{"timestamp":…,"level":…,<fields>,"target":…}` (see the module doc).
    pub fn json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push('{');
        push_key(&mut out, "timestamp");
        out.push_str(&json_string(&self.timestamp));
        push_key(&mut out, "level");
        out.push_str(&json_string(self.level.as_str()));
        for (name, value) in &self.fields {
            push_key(&mut out, name);
            out.push_str(&value.to_string());
        }
        push_key(&mut out, "target");
        out.push_str(&json_string(self.target));
        out.push('}');
        out
    }

    /// `program: [error: |warning: ]message[ name=value…]` (see the module doc).
    pub fn text(&self, program: &str) -> String {
        let message = self.message();
        let mut out = format!("{program}: {}{message}", level_prefix(self.level));
        for (name, value) in self.fields.iter().filter(|(n, _)| *n != "message") {
            let value = as_text(value);
            if message.contains(&*value) {
                continue;
            }
            if !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(name);
            out.push('=');
            let quote = value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
            if quote {
                out.push_str(&json_string(&value));
            } else {
                out.push_str(&value);
            }
        }
        out
    }
}

/// `error: `, `warning: ` or nothing, as compilers and most CLIs write it.
pub fn level_prefix(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        _ => "",
    }
}

/// A string as it is, anything else as its JSON text.
fn as_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// `"name":`, after a comma unless it is the first entry.
fn push_key(out: &mut String, name: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    out.push_str(&json_string(name));
    out.push(':');
}

/// `s` as a JSON string, escaped by serde_json as tracing-subscriber's JSON is.
fn json_string(s: &str) -> String {
    // Serializing a `str` cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// Collects an event's fields as tracing-subscriber's JSON visitor does: the types
/// tracing records natively as JSON values, the rest through `Debug` (which is
/// `Display` for `%value` and for the message).
struct Fields(Vec<(&'static str, Value)>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name(), Value::String(format!("{value:?}"))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_switch() {
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(" text "), Ok(LogFormat::Text));
        assert_eq!(
            LogFormat::parse("yaml").unwrap_err(),
            "must be json or text"
        );
        assert_eq!(level_prefix(tracing::Level::WARN), "warning: ");
    }

    /// Keeps the records of the events logged in `f`.
    fn records(f: impl FnOnce()) -> Vec<Record> {
        struct Keep(Arc<Mutex<Vec<Record>>>);
        impl<S: Subscriber> Layer<S> for Keep {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                self.0.lock().unwrap().push(Record::from_event(event));
            }
        }
        let kept = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Keep(kept.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let kept = kept.lock().unwrap();
        kept.clone()
    }

    #[test]
    fn json_has_tracing_subscribers_flattened_shape() {
        let r = records(|| {
            tracing::info!(
                migration = "V1__a",
                version = 1,
                ok = true,
                ratio = 0.5,
                "applied V1__a"
            );
        });
        let line = r[0].json();
        let rest = line.strip_prefix(r#"{"timestamp":""#).expect(&line);
        let (timestamp, rest) = rest.split_once('"').unwrap();
        assert_eq!(
            rest,
            r#","level":"INFO","message":"applied V1__a","migration":"V1__a","version":1,"ok":true,"ratio":0.5,"target":"conventions::logging::tests"}"#
        );
        // 2026-01-02T03:04:05.123456Z
        assert_eq!(timestamp.len(), 27, "{timestamp}");
        assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
    }

    /// The same event through tracing-subscriber's own flattened JSON, for comparison.
    fn tracing_subscribers_json(f: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf(Arc::new(Mutex::new(Vec::new())));
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// `line` without its timestamp's value.
    fn untimed(line: &str) -> String {
        let (head, rest) = line.split_once(r#""timestamp":""#).unwrap();
        let (_, tail) = rest.split_once('"').unwrap();
        format!("{head}{tail}")
    }

    #[test]
    fn json_is_byte_for_byte_tracing_subscribers() {
        let log = || {
            let err = std::io::Error::other("disk \"full\"");
            tracing::error!(
                big = u64::MAX,
                neg = -3i64,
                wide = 1u128 << 100,
                nan = f64::NAN,
                error = &err as &dyn std::error::Error,
                shown = %"a\tb",
                debugged = ?Some("x"),
                target = "a field named target",
                "line one\nline \"two\" é {}",
                7
            );
            tracing::info!("no fields");
        };
        let theirs = tracing_subscribers_json(log);
        let ours: Vec<String> = records(log).iter().map(Record::json).collect();
        let theirs: Vec<String> = theirs.lines().map(untimed).collect();
        let ours: Vec<String> = ours.iter().map(|l| untimed(l)).collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn json_is_valid_whatever_the_message_holds() {
        let nasty = "a \"quoted\"\nsecond line\t\\ é \u{1}";
        let r = records(|| tracing::warn!(path = %nasty, list = ?["x"], "{nasty}"));
        let v: Value = serde_json::from_str(&r[0].json()).unwrap();
        assert_eq!(v["message"], nasty);
        assert_eq!(v["path"], nasty);
        assert_eq!(v["list"], r#"["x"]"#);
        assert_eq!(v["level"], "WARN");
        assert!(!r[0].json().contains('\n'));
    }

    #[test]
    fn text_says_the_level_and_only_the_fields_the_message_does_not() {
        let r = records(|| {
            tracing::info!(
                migration = "V3__idx",
                duration_ms = 12,
                "applying V3__idx ... ok (12 ms)"
            );
            tracing::error!(exit_code = 78, "the app was not started");
            tracing::warn!(group = "a b", empty = "", quote = "x\"y", "cannot ship");
            tracing::debug!(pid = 7, "started the app");
        });
        let lines: Vec<String> = r.iter().map(|r| r.text("agent")).collect();
        assert_eq!(
            lines,
            [
                "agent: applying V3__idx ... ok (12 ms)",
                "agent: error: the app was not started exit_code=78",
                r#"agent: warning: cannot ship group="a b" quote="x\"y""#,
                "agent: started the app pid=7",
            ]
        );
        assert_eq!(r[1].render("agent", LogFormat::Text), lines[1]);
        assert_eq!(r[1].render("agent", LogFormat::Json), r[1].json());
    }

    #[test]
    fn an_event_without_a_message() {
        let r = records(|| tracing::info!(answer = 42));
        assert_eq!(r[0].message(), "");
        assert_eq!(r[0].text("p"), "p: answer=42");
        assert!(!r[0].json().contains("message"));
    }
}
