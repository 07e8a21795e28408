//! The log pipeline's settings: their flags and `DECKHAND_*`/`CLOUDWATCH_*` variables
//! ([`LogArgs`], which the agent flattens into its command line, so `--help` documents
//! them), read and validated by [`LogSettings::read`] against CloudWatch Logs' own rules,
//! which the emulator does not check. Every bad value is collected with the agent's.

use std::time::Duration;

use clap::Args;
use conventions::{parse, Checker, Env, Invalid};

use crate::batch::{MAX_EVENT_BYTES, MIN_EVENT_BYTES};
use crate::buffer::FullPolicy;
use crate::structure::Level;

/// CloudWatch Logs: a group name is 1–512 characters of `a-zA-Z0-9_-/.#`.
const MAX_GROUP_NAME: usize = 512;
/// CloudWatch Logs: a stream name is 1–512 characters, without `:` or `*`.
const MAX_STREAM_NAME: usize = 512;
/// CloudWatch Logs: the retention periods PutRetentionPolicy accepts, in days.
const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The documented defaults: what `--help` shows and what [`LogSettings::read`] uses.
mod default {
    pub const STREAM_PREFIX: &str = "app";
    pub const STDOUT: &str = "auto";
    pub const MULTILINE: &str = "on";
    pub const STRIP_ANSI: &str = "on";
    /// A stderr line that states no level gets none: the stream says nothing about
    /// how bad a line is (Go's `log`, most CLIs, write every line there).
    pub const STDERR_LEVEL: &str = "none";
    pub const ECS_CONTEXT: &str = "auto";
    pub const FLUSH: &str = "1s";
    pub const BUFFER: &str = "64MiB";
    pub const FULL: &str = "drop-oldest";
    pub const METRICS_INTERVAL: &str = "60s";
    pub const REDACT_NAME: &str = "false";
}

/// The flags and variables, for the command line and `--help`. The values are read by
/// [`LogSettings::read`] from the environment under the command line
/// ([`conventions::CommandLine`]), not from these fields.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// CloudWatch Logs group to ship to; shipping is off without it. Created if missing.
    #[arg(long = "log-group", env = "CLOUDWATCH_LOG_GROUP")]
    pub group: Option<String>,
    /// Log stream; default PREFIX/CONTAINER/TASK_ID (as the awslogs driver names it), else HOSTNAME/START_TIME.
    #[arg(long = "log-stream", env = "CLOUDWATCH_LOG_STREAM")]
    pub stream: Option<String>,
    /// Prefix of the default stream name.
    #[arg(long = "log-stream-prefix", env = "DECKHAND_LOG_STREAM_PREFIX", default_value = default::STREAM_PREFIX)]
    pub stream_prefix: String,
    /// Retention in days for a group the agent creates (1, 3, 5, 7, 14, 30, 60, 90, … 3653).
    #[arg(long = "log-retention-days", env = "CLOUDWATCH_LOG_RETENTION_DAYS")]
    pub retention_days: Option<String>,
    /// Also write the sanitized events to stdout: auto (text when stdout is a terminal and no log group is set, else json when no log group is set, else off), json, text (each event's message, the app's JSON lines as they are), off.
    #[arg(long = "log-stdout", env = "DECKHAND_LOG_STDOUT", default_value = default::STDOUT)]
    pub stdout: String,
    /// Join continuation lines (stack traces, tracebacks) to the event before them (on/off).
    #[arg(long = "log-multiline", env = "DECKHAND_LOG_MULTILINE", default_value = default::MULTILINE)]
    pub multiline: String,
    /// Remove ANSI colour codes from text lines (on/off).
    #[arg(long = "log-strip-ansi", env = "DECKHAND_LOG_STRIP_ANSI", default_value = default::STRIP_ANSI)]
    pub strip_ansi: String,
    /// Level of a text line on stderr that states none (no level word, no crash): error, warn, info, debug, trace, or none (no level key). Never applied to stdout.
    #[arg(long = "log-stderr-level", env = "DECKHAND_LOG_STDERR_LEVEL", default_value = default::STDERR_LEVEL)]
    pub stderr_level: String,
    /// Add the ECS task id, container name and task definition to each event: auto (when the metadata endpoint exists), on, off.
    #[arg(long = "log-ecs-context", env = "DECKHAND_LOG_ECS_CONTEXT", default_value = default::ECS_CONTEXT)]
    pub ecs_context: String,
    /// Largest event in bytes; longer events are split into parts (262118 for a 256 KB partition).
    #[arg(long = "log-max-event-bytes", env = "DECKHAND_LOG_MAX_EVENT_BYTES", default_value_t = MAX_EVENT_BYTES.to_string())]
    pub max_event_bytes: String,
    /// A partly filled batch is shipped after this long.
    #[arg(long = "log-flush", env = "DECKHAND_LOG_FLUSH", default_value = default::FLUSH)]
    pub flush: String,
    /// Memory for events waiting to be shipped (e.g. 64MiB, 512KiB).
    #[arg(long = "log-buffer", env = "DECKHAND_LOG_BUFFER", default_value = default::BUFFER)]
    pub buffer: String,
    /// When the buffer is full: drop-oldest (the app never waits) or block (the app waits).
    #[arg(long = "log-full", env = "DECKHAND_LOG_FULL", default_value = default::FULL)]
    pub full: String,
    /// How often the agent ships its counters as an Embedded Metric Format event.
    #[arg(long = "metrics-interval", env = "DECKHAND_METRICS_INTERVAL", default_value = default::METRICS_INTERVAL)]
    pub metrics_interval: String,
    /// Write [REDACTED:NAME] (the variable's name) instead of [REDACTED] for loaded secrets.
    #[arg(long = "redact-name", env = "DECKHAND_REDACT_NAME", default_value = default::REDACT_NAME)]
    pub redact_name: String,
    /// Extra regular expressions to redact, comma-separated.
    #[arg(long = "redact-patterns", env = "DECKHAND_REDACT_PATTERNS")]
    pub redact_patterns: Option<String>,
    /// Extra sensitive key names, comma-separated: a key whose name holds one, in any
    /// casing, has its value redacted.
    #[arg(long = "redact-keys", env = "DECKHAND_REDACT_KEYS")]
    pub redact_keys: Option<String>,
}

/// `DECKHAND_LOG_ECS_CONTEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoSwitch {
    #[default]
    Auto,
    On,
    Off,
}

/// `DECKHAND_LOG_STDOUT`, decided: whether the agent copies the events to its stdout,
/// and in which shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdoutMode {
    /// No copy: the events are shipped only.
    Off,
    /// Each event as its JSON line (what a log driver reads).
    #[default]
    Json,
    /// For people at a terminal: a text event as its message, an app's JSON line as
    /// it is, an app's stderr on the agent's stderr (see [`crate::stdout`]).
    Text,
}

impl StdoutMode {
    /// What `value` (auto, json, text or off) means where stdout is or is not a
    /// terminal and a log group is or is not set. `auto`: text on a terminal (a
    /// developer's `docker run -it`), JSON lines otherwise (a log driver), none when
    /// the events are shipped.
    pub fn decide(value: &str, stdout_is_terminal: bool, has_group: bool) -> StdoutMode {
        match value {
            "json" => StdoutMode::Json,
            "text" => StdoutMode::Text,
            "off" => StdoutMode::Off,
            _ if has_group => StdoutMode::Off,
            _ if stdout_is_terminal => StdoutMode::Text,
            _ => StdoutMode::Json,
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Where to ship; `None`: stdout only.
    pub group: Option<String>,
    pub stream: Option<String>,
    pub stream_prefix: String,
    pub retention_days: Option<i32>,
    /// DECKHAND_LOG_STDOUT, with `auto` decided.
    pub stdout: StdoutMode,
    pub multiline: bool,
    pub strip_ansi: bool,
    /// DECKHAND_LOG_STDERR_LEVEL; `None`: no level for a stderr line that states none.
    pub stderr_level: Option<Level>,
    pub ecs_context: AutoSwitch,
    pub max_event_bytes: usize,
    pub flush: Duration,
    pub buffer_bytes: usize,
    pub full: FullPolicy,
    pub metrics_interval: Duration,
    pub redact_name: bool,
    /// Compiled once, here.
    pub redact_patterns: Vec<regex::Regex>,
    /// `HOSTNAME`, for the default stream name outside ECS.
    pub host: Option<String>,
    pub redact_keys: Vec<String>,
}

impl LogSettings {
    /// The settings in `env` alone (a test, or a program without the agent's others),
    /// for a stdout that is not a terminal.
    pub fn from_env(env: &impl Env) -> Result<LogSettings, Vec<conventions::Invalid>> {
        let mut c = Checker::new(env);
        let settings = LogSettings::read(&mut c, false);
        c.finish(settings)
    }

    /// Reads and validates the settings; every bad value is recorded in `c`.
    /// `stdout_is_terminal` (looked at once, when the program starts) decides what
    /// `DECKHAND_LOG_STDOUT=auto` means.
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>, stdout_is_terminal: bool) -> LogSettings {
        let group = c.optional("CLOUDWATCH_LOG_GROUP", group_name);
        let stdout = c.get("DECKHAND_LOG_STDOUT", default::STDOUT, |s| {
            parse::one_of(s, &["auto", "json", "text", "off"]).map(str::to_owned)
        });
        if stdout == "off" && group.is_none() && c.raw("CLOUDWATCH_LOG_GROUP").is_none() {
            // Neither sink: every line would vanish, and no counter would say so.
            c.check::<()>(
                "DECKHAND_LOG_STDOUT",
                "off",
                Err("with no CLOUDWATCH_LOG_GROUP set, the app's output would go nowhere and every line would be discarded without being counted; set CLOUDWATCH_LOG_GROUP to ship the logs, or leave DECKHAND_LOG_STDOUT at auto, json or text".into()),
            );
        }
        let stream = c.optional("CLOUDWATCH_LOG_STREAM", stream_name);
        let stream_prefix = c.get(
            "DECKHAND_LOG_STREAM_PREFIX",
            default::STREAM_PREFIX,
            stream_name,
        );
        let retention_days = c.optional("CLOUDWATCH_LOG_RETENTION_DAYS", |s| {
            s.parse::<i32>()
                .ok()
                .filter(|d| RETENTION_DAYS.contains(d))
                .ok_or_else(|| "CloudWatch Logs accepts 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653".to_owned())
        });
        let max_event_bytes = c.value("DECKHAND_LOG_MAX_EVENT_BYTES", MAX_EVENT_BYTES, |s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| (MIN_EVENT_BYTES..=MAX_EVENT_BYTES).contains(n))
                .ok_or_else(|| format!("must be between {MIN_EVENT_BYTES} and {MAX_EVENT_BYTES} (1 MB minus the 26 bytes the service adds)"))
        });
        let buffer_bytes = c.get("DECKHAND_LOG_BUFFER", default::BUFFER, |s| {
            parse::bytes(s).and_then(|n| {
                if n < MAX_EVENT_BYTES {
                    Err("must hold at least one largest event: 1MiB or more".into())
                } else {
                    Ok(n)
                }
            })
        });
        let full = c.get("DECKHAND_LOG_FULL", default::FULL, |s| match parse::one_of(
            s,
            &["drop-oldest", "block"],
        )? {
            "block" => Ok(FullPolicy::Block),
            _ => Ok(FullPolicy::DropOldest),
        });
        let redact_keys = redact_keys(c);
        LogSettings {
            stdout: StdoutMode::decide(&stdout, stdout_is_terminal, group.is_some()),
            group,
            stream,
            stream_prefix,
            retention_days,
            multiline: c.get("DECKHAND_LOG_MULTILINE", default::MULTILINE, parse::boolean),
            strip_ansi: c.get(
                "DECKHAND_LOG_STRIP_ANSI",
                default::STRIP_ANSI,
                parse::boolean,
            ),
            stderr_level: c.get(
                "DECKHAND_LOG_STDERR_LEVEL",
                default::STDERR_LEVEL,
                stderr_level,
            ),
            ecs_context: c.get(
                "DECKHAND_LOG_ECS_CONTEXT",
                default::ECS_CONTEXT,
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(AutoSwitch::Auto),
                    _ => parse::boolean(s)
                        .map(|on| if on { AutoSwitch::On } else { AutoSwitch::Off })
                        .map_err(|_| "must be auto, on or off".to_owned()),
                },
            ),
            max_event_bytes,
            flush: c.get(
                "DECKHAND_LOG_FLUSH",
                default::FLUSH,
                parse::positive_duration,
            ),
            buffer_bytes,
            full,
            metrics_interval: c.get(
                "DECKHAND_METRICS_INTERVAL",
                default::METRICS_INTERVAL,
                parse::positive_duration,
            ),
            redact_name: c.get("DECKHAND_REDACT_NAME", default::REDACT_NAME, parse::boolean),
            redact_patterns: redact_patterns(c),
            host: c.raw("HOSTNAME"),
            redact_keys,
        }
    }
}

/// At most this many names in `DECKHAND_REDACT_KEYS`. Each becomes one to a few trigger
/// words (its joined spellings, `apiKey` for `api_key`; the automaton matches each in
/// any ASCII casing) in the automaton every line is walked through, built
/// before the app starts: a list without bounds would make that build, and its memory,
/// as large as the list. A key is redacted when its name holds any of them anywhere, so
/// a common part (`ssn`, `card`) covers a family of keys.
pub const MAX_REDACT_KEYS: usize = 64;
/// The longest name `DECKHAND_REDACT_KEYS` takes, in bytes.
pub const MAX_REDACT_KEY_BYTES: usize = 64;

/// `DECKHAND_REDACT_KEYS`: extra sensitive key names, within [`MAX_REDACT_KEYS`] and
/// [`MAX_REDACT_KEY_BYTES`].
fn redact_keys<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Vec<String> {
    let Some(raw) = c.raw("DECKHAND_REDACT_KEYS") else {
        return Vec::new();
    };
    let keys = parse::list(&raw);
    let name = c.origin("DECKHAND_REDACT_KEYS");
    if keys.len() > MAX_REDACT_KEYS {
        c.push(
            Invalid::new(
                name.clone(),
                format!("{},… ({} names)", keys[..3].join(","), keys.len()),
                format!(
                    "at most {MAX_REDACT_KEYS} key names; a key is redacted when its name \
                     holds one anywhere, so a shared part (`ssn`, `card`) covers every key \
                     that has it"
                ),
            )
            .config(),
        );
    }
    for key in keys.iter().filter(|k| k.len() > MAX_REDACT_KEY_BYTES) {
        let shown: String = key.chars().take(40).collect();
        c.push(
            Invalid::new(
                name.clone(),
                format!("{shown}…"),
                format!(
                    "a key name of {} bytes; at most {MAX_REDACT_KEY_BYTES}: give the \
                     part of the key that marks it sensitive",
                    key.len()
                ),
            )
            .config(),
        );
    }
    keys
}

/// `DECKHAND_REDACT_PATTERNS`, compiled; a pattern that does not compile is a
/// configuration error naming it.
fn redact_patterns<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Vec<regex::Regex> {
    let patterns = c
        .raw("DECKHAND_REDACT_PATTERNS")
        .map(|v| parse::list(&v))
        .unwrap_or_default();
    match crate::sanitize::compile_patterns(&patterns) {
        Ok(compiled) => compiled,
        Err(mut e) => {
            e.name = c.origin("DECKHAND_REDACT_PATTERNS");
            c.push(e);
            Vec::new()
        }
    }
}

/// `DECKHAND_LOG_STDERR_LEVEL`: a level of the events' vocabulary but `fatal` (a line
/// that says nothing is no crash), or `none`.
fn stderr_level(s: &str) -> Result<Option<Level>, String> {
    let name = parse::one_of(s, &["error", "warn", "info", "debug", "trace", "none"])?;
    Ok(Level::ALL.into_iter().find(|l| l.as_str() == name))
}

fn group_name(g: &str) -> Result<String, String> {
    let ok_chars = g
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c));
    if g.is_empty() || g.len() > MAX_GROUP_NAME || !ok_chars {
        Err(
            "a log group name is 1 to 512 characters of a-z, A-Z, 0-9, '_', '-', '/', '.', '#'"
                .into(),
        )
    } else {
        Ok(g.to_owned())
    }
}

fn stream_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > MAX_STREAM_NAME || s.contains([':', '*']) {
        Err("a log stream name is 1 to 512 characters, without ':' or '*'".into())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};
    use conventions::CommandLine;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogSettings, String> {
        let mut all = vec!["agent"];
        all.extend_from_slice(args);
        let command = Cli::command();
        let matches = command
            .clone()
            .try_get_matches_from(all)
            .map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let env = CommandLine::new(&command, &matches, BTreeMap::<String, String>::new());
        let mut c = Checker::new(&env);
        let settings = LogSettings::read(&mut c, false);
        c.finish(settings).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert!(
            s.group.is_none() && s.stdout == StdoutMode::Json,
            "no group: events go to stdout"
        );
        assert_eq!(s.buffer_bytes, 64 << 20);
        assert_eq!(s.flush, Duration::from_secs(1));
        assert_eq!(s.full, FullPolicy::DropOldest);
        assert_eq!(s.max_event_bytes, MAX_EVENT_BYTES);
        assert_eq!(s.metrics_interval, Duration::from_secs(60));
        assert!(s.multiline && s.strip_ansi && !s.redact_name);
        assert_eq!(s.ecs_context, AutoSwitch::Auto);
        assert_eq!(s.stderr_level, None, "no level is invented for stderr");
        assert_eq!(s.stream_prefix, "app");
        let s = parse(&["--log-group", "/aws/ec2/roastify"]).unwrap();
        assert_eq!(
            s.stdout,
            StdoutMode::Off,
            "auto: a group means no stdout copy"
        );
    }

    #[test]
    fn the_documented_defaults_are_the_ones_read() {
        let documented = conventions::env::documented_defaults(&Cli::command());
        let mut c = Checker::new(&documented);
        let from_docs = LogSettings::read(&mut c, false);
        let from_docs = c.finish(from_docs).unwrap();
        let empty = BTreeMap::<String, String>::new();
        let mut c = Checker::new(&empty);
        let from_nothing = LogSettings::read(&mut c, false);
        assert_eq!(
            format!("{from_docs:?}"),
            format!("{:?}", c.finish(from_nothing).unwrap())
        );
    }

    #[test]
    fn aws_rules_the_emulator_does_not_check() {
        assert!(parse(&["--log-group", "bad group!"])
            .unwrap_err()
            .contains("--log-group=\"bad group!\" is not valid"));
        assert!(parse(&["--log-group", &"g".repeat(513)]).is_err());
        assert!(parse(&["--log-stream", "a:b"])
            .unwrap_err()
            .contains("without ':'"));
        assert!(parse(&["--log-retention-days", "10"])
            .unwrap_err()
            .contains("--log-retention-days"));
        assert!(parse(&["--log-retention-days", "14"]).is_ok());
        assert!(parse(&["--log-max-event-bytes", "1048576"])
            .unwrap_err()
            .contains("--log-max-event-bytes"));
        assert!(parse(&["--log-max-event-bytes", "262118"]).is_ok());
        assert!(parse(&["--log-max-event-bytes", "abc"])
            .unwrap_err()
            .starts_with("--log-max-event-bytes=\"abc\" is not valid: must be between"));
    }

    #[test]
    fn every_bad_value_is_reported() {
        let err = parse(&[
            "--log-flush",
            "0s",
            "--log-full",
            "wait",
            "--log-multiline",
            "maybe",
        ])
        .unwrap_err();
        assert_eq!(err.lines().count(), 3, "{err}");
        assert!(err.contains("--log-full=\"wait\" is not valid: must be one of drop-oldest, block"));
    }

    #[test]
    fn stdout_off_needs_a_log_group() {
        let err = parse(&["--log-stdout", "off"]).unwrap_err();
        assert!(
            err.starts_with("--log-stdout=\"off\" is not valid"),
            "{err}"
        );
        assert!(err.contains("set CLOUDWATCH_LOG_GROUP"), "{err}");
        assert!(err.contains("auto, json or text"), "{err}");
        let s = parse(&["--log-stdout", "off", "--log-group", "/app"]).unwrap();
        assert_eq!(s.stdout, StdoutMode::Off);
        assert_eq!(
            parse(&["--log-stdout", "json"]).unwrap().stdout,
            StdoutMode::Json
        );
        assert_eq!(
            parse(&["--log-stdout", "text"]).unwrap().stdout,
            StdoutMode::Text,
            "text can be chosen without a terminal"
        );
        assert!(parse(&["--log-stdout", "yaml"])
            .unwrap_err()
            .contains("must be one of auto, json, text, off"));
    }

    #[test]
    fn auto_is_text_on_a_terminal_without_a_group() {
        use StdoutMode::*;
        // (value, stdout is a terminal, a group is set) → mode
        let cases = [
            ("auto", true, false, Text),
            ("auto", true, true, Off),
            ("auto", false, false, Json),
            ("auto", false, true, Off),
            ("json", true, false, Json),
            ("json", true, true, Json),
            ("text", false, false, Text),
            ("text", false, true, Text),
            ("off", true, true, Off),
        ];
        for (value, terminal, group, mode) in cases {
            assert_eq!(
                StdoutMode::decide(value, terminal, group),
                mode,
                "{value} terminal={terminal} group={group}"
            );
        }
        // Read with the terminal passed in, as the agent does once at start.
        let env = BTreeMap::from([("DECKHAND_LOG_STDOUT".to_owned(), "auto".to_owned())]);
        let mut c = Checker::new(&env);
        let s = LogSettings::read(&mut c, true);
        assert_eq!(c.finish(s).unwrap().stdout, Text);
    }

    #[test]
    fn switches_take_the_one_boolean_grammar() {
        assert!(!parse(&["--log-multiline", "off"]).unwrap().multiline);
        assert!(!parse(&["--log-multiline", "false"]).unwrap().multiline);
        assert!(parse(&["--redact-name", "on"]).unwrap().redact_name);
        assert_eq!(
            parse(&["--log-ecs-context", "off"]).unwrap().ecs_context,
            AutoSwitch::Off
        );
        assert!(parse(&["--log-ecs-context", "sometimes"]).is_err());
    }

    #[test]
    fn stderr_level_values() {
        assert_eq!(
            parse(&["--log-stderr-level", "info"]).unwrap().stderr_level,
            Some(Level::Info)
        );
        assert_eq!(
            parse(&["--log-stderr-level", "error"])
                .unwrap()
                .stderr_level,
            Some(Level::Error)
        );
        assert_eq!(
            parse(&["--log-stderr-level", "none"]).unwrap().stderr_level,
            None
        );
        let err = parse(&["--log-stderr-level", "fatal"]).unwrap_err();
        assert_eq!(
            err,
            "--log-stderr-level=\"fatal\" is not valid: must be one of error, warn, info, debug, trace, none"
        );
    }

    #[test]
    fn sizes() {
        assert!(parse(&["--log-buffer", "1KiB"])
            .unwrap_err()
            .contains("--log-buffer"));
        assert_eq!(
            parse(&["--log-buffer", "2MiB"]).unwrap().buffer_bytes,
            2 << 20
        );
    }

    #[test]
    fn redaction_lists() {
        let s = parse(&[
            "--redact-keys",
            "ssn, dob",
            "--redact-patterns",
            "ORD-[0-9]{6}",
        ])
        .unwrap();
        assert_eq!(s.redact_keys, ["ssn", "dob"]);
        let patterns: Vec<&str> = s.redact_patterns.iter().map(|r| r.as_str()).collect();
        assert_eq!(patterns, ["ORD-[0-9]{6}"]);
        // Bounded: how many names, and how long each.
        let many = (0..=MAX_REDACT_KEYS)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>();
        let err = parse(&["--redact-keys", &many.join(",")]).unwrap_err();
        assert!(
            err.contains("--redact-keys") && err.contains("at most 64 key names"),
            "{err}"
        );
        parse(&["--redact-keys", &many[1..].join(",")]).unwrap();
        let long = "k".repeat(MAX_REDACT_KEY_BYTES + 1);
        let err = parse(&["--redact-keys", &format!("ssn,{long}")]).unwrap_err();
        assert!(err.contains("a key name of 65 bytes; at most 64"), "{err}");
        assert!(
            !err.contains(&long),
            "the whole name is not repeated: {err}"
        );
        parse(&["--redact-keys", &long[1..]]).unwrap();
        let err = parse(&["--redact-patterns", "(unclosed"]).unwrap_err();
        assert!(
            err.starts_with("--redact-patterns=\"(unclosed\" is not valid"),
            "{err}"
        );
    }
}
