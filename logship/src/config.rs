//! The log pipeline's settings: flags with `DECKHAND_*`/`CLOUDWATCH_*` variables (the
//! agent flattens [`LogArgs`] into its command line), validated into [`LogSettings`]
//! against CloudWatch Logs' own rules, which the emulator does not check.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::batch::{MAX_EVENT_BYTES, MIN_EVENT_BYTES};
use crate::buffer::FullPolicy;

/// CloudWatch Logs: a group name is 1–512 characters of `a-zA-Z0-9_-/.#`.
const MAX_GROUP_NAME: usize = 512;
/// CloudWatch Logs: a stream name is 1–512 characters, without `:` or `*`.
const MAX_STREAM_NAME: usize = 512;
/// CloudWatch Logs: the retention periods PutRetentionPolicy accepts, in days.
const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Raw settings, as typed.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// CloudWatch Logs group to ship to; shipping is off without it. Created if missing.
    #[arg(long = "log-group", env = "CLOUDWATCH_LOG_GROUP")]
    pub group: Option<String>,
    /// Log stream; default PREFIX/CONTAINER/TASK_ID (as the awslogs driver names it), else HOSTNAME/START_TIME.
    #[arg(long = "log-stream", env = "CLOUDWATCH_LOG_STREAM")]
    pub stream: Option<String>,
    /// Prefix of the default stream name.
    #[arg(
        long = "log-stream-prefix",
        env = "DECKHAND_LOG_STREAM_PREFIX",
        default_value = "app"
    )]
    pub stream_prefix: String,
    /// Retention in days for a group the agent creates (1, 3, 5, 7, 14, 30, 60, 90, … 3653).
    #[arg(long = "log-retention-days", env = "CLOUDWATCH_LOG_RETENTION_DAYS")]
    pub retention_days: Option<i32>,
    /// Also write sanitized events as JSON lines to stdout: auto = when no log group is set.
    #[arg(
        long = "log-stdout",
        env = "DECKHAND_LOG_STDOUT",
        value_enum,
        default_value = "auto"
    )]
    pub stdout: StdoutMode,
    /// Join continuation lines (stack traces, tracebacks) to the event before them.
    #[arg(
        long = "log-multiline",
        env = "DECKHAND_LOG_MULTILINE",
        value_enum,
        default_value = "on"
    )]
    pub multiline: Switch,
    /// Remove ANSI colour codes from text lines.
    #[arg(
        long = "log-strip-ansi",
        env = "DECKHAND_LOG_STRIP_ANSI",
        value_enum,
        default_value = "on"
    )]
    pub strip_ansi: Switch,
    /// Add the ECS task id, container name and task definition to each event: auto = when the metadata endpoint exists.
    #[arg(
        long = "log-ecs-context",
        env = "DECKHAND_LOG_ECS_CONTEXT",
        value_enum,
        default_value = "auto"
    )]
    pub ecs_context: AutoSwitch,
    /// Largest event in bytes; longer events are split into parts (262118 for a 256 KB partition).
    #[arg(long = "log-max-event-bytes", env = "DECKHAND_LOG_MAX_EVENT_BYTES", default_value_t = MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// A partly filled batch is shipped after this long.
    #[arg(long = "log-flush", env = "DECKHAND_LOG_FLUSH", default_value = "1s", value_parser = duration)]
    pub flush: Duration,
    /// Memory for events waiting to be shipped (e.g. 64MiB, 512KiB).
    #[arg(long = "log-buffer", env = "DECKHAND_LOG_BUFFER", default_value = "64MiB", value_parser = bytes)]
    pub buffer: usize,
    /// When the buffer is full: drop-oldest (the app never waits) or block (the app waits).
    #[arg(
        long = "log-full",
        env = "DECKHAND_LOG_FULL",
        value_enum,
        default_value = "drop-oldest"
    )]
    pub full: Full,
    /// How often the agent ships its counters as an Embedded Metric Format event.
    #[arg(long = "metrics-interval", env = "DECKHAND_METRICS_INTERVAL", default_value = "60s", value_parser = duration)]
    pub metrics_interval: Duration,
    /// Write [REDACTED:NAME] (the variable's name) instead of [REDACTED] for loaded secrets.
    #[arg(
        long = "redact-name",
        env = "DECKHAND_REDACT_NAME",
        value_enum,
        default_value = "false"
    )]
    pub redact_name: Bool,
    /// Extra regular expressions to redact, comma-separated.
    #[arg(
        long = "redact-patterns",
        env = "DECKHAND_REDACT_PATTERNS",
        value_delimiter = ','
    )]
    pub redact_patterns: Vec<String>,
    /// Extra sensitive key names, comma-separated.
    #[arg(
        long = "redact-keys",
        env = "DECKHAND_REDACT_KEYS",
        value_delimiter = ','
    )]
    pub redact_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StdoutMode {
    Auto,
    Json,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutoSwitch {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bool {
    True,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Full {
    DropOldest,
    Block,
}

/// A setting that breaks a rule; the agent exits 78 with it.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not valid: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Where to ship; `None`: stdout only.
    pub group: Option<String>,
    pub stream: Option<String>,
    pub stream_prefix: String,
    pub retention_days: Option<i32>,
    pub stdout: bool,
    pub multiline: bool,
    pub strip_ansi: bool,
    pub ecs_context: AutoSwitch,
    pub max_event_bytes: usize,
    pub flush: Duration,
    pub buffer_bytes: usize,
    pub full: FullPolicy,
    pub metrics_interval: Duration,
    pub redact_name: bool,
    pub redact_patterns: Vec<String>,
    pub redact_keys: Vec<String>,
}

impl LogArgs {
    pub fn validate(&self) -> Result<LogSettings, ConfigError> {
        let bad = |name, value: &dyn ToString, reason: &str| ConfigError {
            name,
            value: value.to_string(),
            reason: reason.into(),
        };
        if let Some(g) = &self.group {
            let ok_chars = g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c));
            if g.is_empty() || g.len() > MAX_GROUP_NAME || !ok_chars {
                return Err(bad(
                    "CLOUDWATCH_LOG_GROUP",
                    g,
                    "a log group name is 1 to 512 characters of a-z, A-Z, 0-9, '_', '-', '/', '.', '#'",
                ));
            }
        }
        if self.stdout == StdoutMode::Off && self.group.is_none() {
            // Neither sink: every line would vanish, and no counter would say so.
            return Err(bad(
                "DECKHAND_LOG_STDOUT",
                &"off",
                "with no CLOUDWATCH_LOG_GROUP set, the app's output would go nowhere and every line would be discarded without being counted; set CLOUDWATCH_LOG_GROUP to ship the logs, or leave DECKHAND_LOG_STDOUT at auto or json",
            ));
        }
        if let Some(s) = &self.stream {
            check_stream("CLOUDWATCH_LOG_STREAM", s)?;
        }
        check_stream("DECKHAND_LOG_STREAM_PREFIX", &self.stream_prefix)?;
        if let Some(days) = self.retention_days {
            if !RETENTION_DAYS.contains(&days) {
                return Err(bad(
                    "CLOUDWATCH_LOG_RETENTION_DAYS",
                    &days,
                    "CloudWatch Logs accepts 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653",
                ));
            }
        }
        if !(MIN_EVENT_BYTES..=MAX_EVENT_BYTES).contains(&self.max_event_bytes) {
            return Err(bad(
                "DECKHAND_LOG_MAX_EVENT_BYTES",
                &self.max_event_bytes,
                &format!("must be between {MIN_EVENT_BYTES} and {MAX_EVENT_BYTES} (1 MB minus the 26 bytes the service adds)"),
            ));
        }
        if self.buffer < MAX_EVENT_BYTES {
            return Err(bad(
                "DECKHAND_LOG_BUFFER",
                &self.buffer,
                "must hold at least one largest event: 1MiB or more",
            ));
        }
        if self.flush.is_zero() || self.metrics_interval.is_zero() {
            return Err(bad(
                "DECKHAND_LOG_FLUSH",
                &format!("{:?}/{:?}", self.flush, self.metrics_interval),
                "DECKHAND_LOG_FLUSH and DECKHAND_METRICS_INTERVAL must be above zero",
            ));
        }
        for key in &self.redact_keys {
            if key.trim().is_empty() {
                return Err(bad(
                    "DECKHAND_REDACT_KEYS",
                    &self.redact_keys.join(","),
                    "a key name is empty",
                ));
            }
        }
        Ok(LogSettings {
            group: self.group.clone(),
            stream: self.stream.clone(),
            stream_prefix: self.stream_prefix.clone(),
            retention_days: self.retention_days,
            stdout: match self.stdout {
                StdoutMode::Auto => self.group.is_none(),
                StdoutMode::Json => true,
                StdoutMode::Off => false,
            },
            multiline: self.multiline == Switch::On,
            strip_ansi: self.strip_ansi == Switch::On,
            ecs_context: self.ecs_context,
            max_event_bytes: self.max_event_bytes,
            flush: self.flush,
            buffer_bytes: self.buffer,
            full: match self.full {
                Full::DropOldest => FullPolicy::DropOldest,
                Full::Block => FullPolicy::Block,
            },
            metrics_interval: self.metrics_interval,
            redact_name: self.redact_name == Bool::True,
            redact_patterns: self
                .redact_patterns
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect(),
            redact_keys: self
                .redact_keys
                .iter()
                .map(|k| k.trim().to_owned())
                .collect(),
        })
    }
}

fn check_stream(name: &'static str, s: &str) -> Result<(), ConfigError> {
    if s.is_empty() || s.len() > MAX_STREAM_NAME || s.contains([':', '*']) {
        return Err(ConfigError {
            name,
            value: s.into(),
            reason: "a log stream name is 1 to 512 characters, without ':' or '*'".into(),
        });
    }
    Ok(())
}

/// `500ms`, `1s`, `5m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write a duration like 500ms, 1s or 5m"))
}

/// `64MiB`, `512KiB`, `1GiB`, `10MB`, or plain bytes.
pub fn bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| "write a size like 64MiB, 512KiB or 1048576".to_owned())?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?}; write a size like 64MiB, 512KiB or 1048576"
            ))
        }
    };
    n.checked_mul(factor).ok_or_else(|| "too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogSettings, String> {
        let mut all = vec!["agent"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
        cli.logs.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert!(
            s.group.is_none() && s.stdout,
            "no group: events go to stdout"
        );
        assert_eq!(s.buffer_bytes, 64 << 20);
        assert_eq!(s.flush, Duration::from_secs(1));
        assert_eq!(s.full, FullPolicy::DropOldest);
        assert_eq!(s.max_event_bytes, MAX_EVENT_BYTES);
        let s = parse(&["--log-group", "/aws/ec2/roastify"]).unwrap();
        assert!(!s.stdout, "auto: a group means no stdout copy");
    }

    #[test]
    fn aws_rules_the_emulator_does_not_check() {
        assert!(parse(&["--log-group", "bad group!"])
            .unwrap_err()
            .contains("CLOUDWATCH_LOG_GROUP=\"bad group!\" is not valid"));
        assert!(parse(&["--log-group", &"g".repeat(513)]).is_err());
        assert!(parse(&["--log-stream", "a:b"])
            .unwrap_err()
            .contains("without ':'"));
        assert!(parse(&["--log-retention-days", "10"])
            .unwrap_err()
            .contains("CLOUDWATCH_LOG_RETENTION_DAYS"));
        assert!(parse(&["--log-retention-days", "14"]).is_ok());
        assert!(parse(&["--log-max-event-bytes", "1048576"])
            .unwrap_err()
            .contains("DECKHAND_LOG_MAX_EVENT_BYTES"));
        assert!(parse(&["--log-max-event-bytes", "262118"]).is_ok());
    }

    #[test]
    fn stdout_off_needs_a_log_group() {
        let err = parse(&["--log-stdout", "off"]).unwrap_err();
        assert!(
            err.starts_with("DECKHAND_LOG_STDOUT=\"off\" is not valid"),
            "{err}"
        );
        assert!(err.contains("set CLOUDWATCH_LOG_GROUP"), "{err}");
        assert!(err.contains("auto or json"), "{err}");
        let s = parse(&["--log-stdout", "off", "--log-group", "/app"]).unwrap();
        assert!(!s.stdout);
        assert!(parse(&["--log-stdout", "json"]).unwrap().stdout);
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(bytes("1048576").unwrap(), 1 << 20);
        assert!(bytes("lots").is_err());
        assert!(parse(&["--log-buffer", "1KiB"])
            .unwrap_err()
            .contains("DECKHAND_LOG_BUFFER"));
    }

    #[test]
    fn redaction_lists() {
        let s = parse(&[
            "--redact-keys",
            "ssn,dob",
            "--redact-patterns",
            "ORD-[0-9]{6}",
        ])
        .unwrap();
        assert_eq!(s.redact_keys, ["ssn", "dob"]);
        assert_eq!(s.redact_patterns, ["ORD-[0-9]{6}"]);
    }
}
