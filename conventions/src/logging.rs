//! The programs' own messages on stderr: the `LOG_FORMAT` switch (`text` for people,
//! `json` for CloudWatch) and the tracing set-up, once for every program.
//!
//! Text is `program: message`, with `error: ` or `warning: ` before the message when it
//! is one — the message says what the fields say. JSON is one object per event, its
//! fields flattened beside `timestamp`, `level`, `message` and `target`.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How a program writes its own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `program: message`, for people.
    #[default]
    Text,
    /// One JSON object per line, for CloudWatch Logs Insights.
    Json,
}

impl LogFormat {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second set-up in one process (tests) keeps the first.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.event_format(Plain { program }).try_init(),
    };
}

/// `migrate: applying V3__add_index ... ok (12 ms)`; warnings and errors say so.
struct Plain {
    program: &'static str,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        writeln!(
            w,
            "{}: {}{}",
            self.program,
            level_prefix(*event.metadata().level()),
            message.0
        )
    }
}

/// `error: `, `warning: ` or nothing, as compilers and most CLIs write it.
pub fn level_prefix(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "error: ",
        tracing::Level::WARN => "warning: ",
        _ => "",
    }
}

/// Keeps only the `message` field.
struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
