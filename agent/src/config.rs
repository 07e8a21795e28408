//! The agent's settings, in two steps: raw values from the command line or `DECKHAND_*`
//! variables ([`Args`], clap), then the validated [`Settings`]. Every bad value is
//! reported as `NAME="value" is not valid: reason`, named the way the user set it (the
//! variable, or the flag).
//!
//! The app's own environment is not read here: [`Env`] gives it to the secrets plan.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use logship::config::LogSettings;
use nix::sys::signal::Signal;

use crate::exit;
use crate::secrets::database::SSLMODES;
use crate::secrets::parameter::parse_path;
use crate::secrets::reference::parse_secret_id;
use crate::secrets::{DatabaseSettings, SecretSettings};

/// The shortest refresh interval: more often only burns GetSecretValue quota.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the app's environment comes from: the process in production, a list in tests.
pub trait Env {
    fn vars(&self) -> Vec<(OsString, OsString)>;
}

/// The agent's own environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> Vec<(OsString, OsString)> {
        std::env::vars_os().collect()
    }
}

impl Env for Vec<(OsString, OsString)> {
    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.clone()
    }
}

impl Env for std::collections::BTreeMap<String, String> {
    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }
}

/// Raw settings, as typed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "agent",
    version,
    about = "Resolves secret references into the app's environment, then runs the app as PID 1: forwards signals, reaps zombies, exits with the app's code.",
    after_help = "References: any variable whose value is arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]] or secretsmanager:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]] is replaced by the secret; one whose value is arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION|:LABEL] or ssm:/NAME[:VERSION|:LABEL] by the Parameter Store parameter (SecureStrings decrypted).\nExit codes: 64 usage, 69 AWS not reachable in time, 78 configuration (reference, secret, key, access, required variable), 126/127 command not runnable/found; otherwise the app's code, or 128+n for signal n."
)]
pub struct Args {
    /// Secrets (names or ARNs, comma-separated) whose every top-level JSON key becomes a variable.
    #[arg(long, env = "DECKHAND_ENV_SECRETS", value_name = "IDS")]
    pub env_secrets: Option<String>,
    /// Parameter Store paths (comma-separated, e.g. /spotter-app/,/shared/?) whose every parameter, recursively, becomes a variable named by its last path segment, upper-cased, with - and . as _. A trailing ? lets a path hold nothing.
    #[arg(long, env = "DECKHAND_ENV_PARAMETERS", value_name = "PATHS")]
    pub env_parameters: Option<String>,
    /// Keep the case of the variables named after DECKHAND_ENV_PARAMETERS parameters (- and . still become _).
    #[arg(
        long,
        env = "DECKHAND_ENV_PARAMETERS_KEEP_CASE",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub env_parameters_keep_case: String,
    /// An RDS-style JSON secret (host, port, username, password, dbname) that becomes DATABASE_URL and PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
    #[arg(long, env = "DECKHAND_DATABASE_SECRET", value_name = "ID")]
    pub database_secret: Option<String>,
    /// The variable that gets the database URL.
    #[arg(
        long,
        env = "DECKHAND_DATABASE_URL_VAR",
        value_name = "NAME",
        default_value = "DATABASE_URL"
    )]
    pub database_url_var: String,
    /// sslmode appended to the database URL (and set as PGSSLMODE): disable, allow, prefer, require, verify-ca, verify-full.
    #[arg(long, env = "DECKHAND_DATABASE_SSLMODE", value_name = "MODE")]
    pub database_sslmode: Option<String>,
    /// Variables (comma-separated) that must be set and non-empty once secrets are resolved.
    #[arg(long, env = "DECKHAND_REQUIRED_ENV", value_name = "NAMES")]
    pub required_env: Option<String>,
    /// Deadline for fetching every secret at start (and at each refresh).
    #[arg(
        long,
        env = "DECKHAND_SECRETS_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub secrets_timeout: String,
    /// Re-check the referenced secrets this often (e.g. 5m); off by default.
    #[arg(
        long,
        env = "DECKHAND_REFRESH_INTERVAL",
        value_name = "DURATION",
        default_value = "off"
    )]
    pub refresh_interval: String,
    /// What a changed secret does: restart (the app, gracefully, with the new values), signal:SIGNAL (e.g. signal:SIGHUP), ignore (log it).
    #[arg(
        long,
        env = "DECKHAND_ON_ROTATE",
        value_name = "ACTION",
        default_value = "restart"
    )]
    pub on_rotate: String,
    /// Forward signals to the app's whole process group instead of the app alone.
    #[arg(
        long,
        env = "DECKHAND_SIGNAL_GROUP",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub signal_group: String,
    /// The signal the app gets when the agent gets SIGTERM (for apps that stop on another one).
    #[arg(
        long,
        env = "DECKHAND_STOP_SIGNAL",
        value_name = "SIGNAL",
        default_value = "SIGTERM"
    )]
    pub stop_signal: String,
    /// After SIGTERM, how long the app may take to exit before its process group is killed (keep it under the task's stopTimeout, 30s by default).
    #[arg(
        long,
        env = "DECKHAND_STOP_TIMEOUT",
        value_name = "DURATION",
        default_value = "25s"
    )]
    pub stop_timeout: String,
    /// The agent's own log level on stderr: error, warn, info, debug, trace.
    #[arg(
        long,
        env = "DECKHAND_AGENT_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info"
    )]
    pub agent_log_level: String,
    /// Format of the agent's own messages on stderr: json (one object per line, also shipped to CloudWatch with "source":"agent") or text.
    #[arg(
        long,
        env = "DECKHAND_AGENT_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "json"
    )]
    pub agent_log_format: String,
    /// Run `migrate up` (with its lock) after the secrets and before the app; a failure stops the start with migrate's exit code. Settings: migrate's MIGRATIONS_DIR and MIGRATE_* variables.
    #[arg(
        long,
        env = "DECKHAND_MIGRATE_ON_START",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub migrate_on_start: String,
    /// Serve healthcheck's /health in process on this address (e.g. 0.0.0.0:8080), with healthcheck's HEALTH_* settings; it reports draining from SIGTERM on.
    #[arg(long, env = "DECKHAND_HEALTH_ADDR", value_name = "ADDR")]
    pub health_addr: Option<String>,
    /// Loaded variables (comma-separated) whose values are configuration, not secrets, and are not redacted from logs (e.g. NODE_ENV,APP_URL from a whole secret or path).
    #[arg(long, env = "DECKHAND_REDACT_SKIP", value_name = "NAMES")]
    pub redact_skip: Option<String>,
    #[command(flatten)]
    pub log: logship::config::LogArgs,
    /// The app to run, and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What a changed secret does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRotate {
    Restart,
    Signal(Signal),
    Ignore,
}

/// `DECKHAND_REFRESH_INTERVAL` and `DECKHAND_ON_ROTATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationSettings {
    pub interval: Duration,
    pub on_rotate: OnRotate,
}

/// How the app is run and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// Sent instead of SIGTERM.
    pub stop_signal: Signal,
    /// Signals go to the app's process group.
    pub signal_group: bool,
    /// From SIGTERM to SIGKILL of the app's process group.
    pub stop_timeout: Duration,
}

/// The format of the agent's own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub secrets: SecretSettings,
    pub secrets_timeout: Duration,
    /// `None`: secrets are read once, at start.
    pub rotation: Option<RotationSettings>,
    pub supervision: Supervision,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    /// Run `migrate up` before the app.
    pub migrate_on_start: bool,
    /// Serve `/health` in process here.
    pub health_addr: Option<SocketAddr>,
    /// The app's output: capture, sanitize, ship.
    pub logs: LogSettings,
    /// Loaded variables whose values the sanitizer leaves alone.
    pub redact_skip: Vec<String>,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// A bad value: `NAME="value" is not valid: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not valid: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
    /// [`exit::USAGE`] for agent options, [`exit::CONFIG`] for secret ids.
    pub exit_code: u8,
}

/// Why the command line cannot be used.
#[derive(Debug)]
pub enum ParseError {
    /// Clap's own: unknown flag, missing COMMAND — or `--help`/`--version` (exit 0).
    Clap(clap::Error),
    Invalid(Vec<ConfigError>),
}

impl ParseError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ParseError::Clap(e) if e.exit_code() == 0 => 0,
            ParseError::Clap(_) => exit::USAGE,
            ParseError::Invalid(errors) => {
                if errors.iter().any(|e| e.exit_code == exit::CONFIG) {
                    exit::CONFIG
                } else {
                    exit::USAGE
                }
            }
        }
    }
}

/// Parses and validates the command line (and the `DECKHAND_*` variables).
pub fn parse<I, T>(argv: I) -> Result<Settings, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Args::command()
        .try_get_matches_from(argv)
        .map_err(ParseError::Clap)?;
    let args = Args::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    Settings::from_args(&args, &matches).map_err(ParseError::Invalid)
}

/// Collects every bad value, so one run shows them all.
struct Checker<'m> {
    matches: &'m ArgMatches,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    /// The name the user wrote: the variable when the value came from it, else the flag.
    fn name(&self, id: &str) -> String {
        let arg = Args::command();
        let arg = arg.get_arguments().find(|a| a.get_id() == id);
        match (self.matches.value_source(id), arg) {
            (Some(ValueSource::CommandLine), Some(a)) => {
                format!("--{}", a.get_long().unwrap_or(id))
            }
            (_, Some(a)) => a
                .get_env()
                .map_or_else(|| id.to_owned(), |e| e.to_string_lossy().into_owned()),
            _ => id.to_owned(),
        }
    }

    fn check<T>(
        &mut self,
        id: &str,
        value: &str,
        exit_code: u8,
        parsed: Result<T, String>,
    ) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors.push(ConfigError {
                    name: self.name(id),
                    value: value.to_owned(),
                    reason,
                    exit_code,
                });
                None
            }
        }
    }
}

impl Checker<'_> {
    /// The log pipeline's settings; a redaction pattern that does not compile is a
    /// configuration error (78) naming it.
    fn log_settings(&mut self, args: &logship::config::LogArgs) -> Option<LogSettings> {
        let settings = match args.validate() {
            Ok(s) => s,
            Err(e) => {
                self.errors.push(ConfigError {
                    name: e.name.to_owned(),
                    value: e.value,
                    reason: e.reason,
                    exit_code: exit::USAGE,
                });
                return None;
            }
        };
        if let Err(e) = logship::sanitize::compile_patterns(&settings.redact_patterns) {
            self.errors.push(ConfigError {
                name: self.name("redact_patterns"),
                value: e.pattern,
                reason: format!(
                    "{}; write a regular expression in Rust regex syntax",
                    e.reason
                ),
                exit_code: exit::CONFIG,
            });
            return None;
        }
        Some(settings)
    }
}

impl Settings {
    pub fn from_args(args: &Args, matches: &ArgMatches) -> Result<Settings, Vec<ConfigError>> {
        let mut c = Checker {
            matches,
            errors: Vec::new(),
        };
        let present = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };

        let env_secrets = present(&args.env_secrets)
            .map(|v| {
                let keys: Result<Vec<_>, String> = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(parse_secret_id)
                    .collect();
                c.check("env_secrets", &v, exit::CONFIG, keys)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let env_parameters = present(&args.env_parameters)
            .map(|v| {
                let paths: Result<Vec<_>, String> = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(parse_path)
                    .collect();
                c.check("env_parameters", &v, exit::CONFIG, paths)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        // A bad value is in `c.errors`, which the final check below refuses.
        let keep_case = c
            .check(
                "env_parameters_keep_case",
                &args.env_parameters_keep_case,
                exit::USAGE,
                boolean(&args.env_parameters_keep_case),
            )
            .unwrap_or_default();
        let url_var = c.check(
            "database_url_var",
            &args.database_url_var,
            exit::USAGE,
            variable_name(&args.database_url_var).map(|()| args.database_url_var.clone()),
        );
        let sslmode = present(&args.database_sslmode).and_then(|v| {
            let ok = if SSLMODES.contains(&v.as_str()) {
                Ok(v.clone())
            } else {
                Err(format!("must be one of {}", SSLMODES.join(", ")))
            };
            c.check("database_sslmode", &v, exit::USAGE, ok)
        });
        let database = present(&args.database_secret).and_then(|v| {
            let key = c.check("database_secret", &v, exit::CONFIG, parse_secret_id(&v))?;
            Some(DatabaseSettings {
                key,
                url_var: url_var.clone()?,
                sslmode: sslmode.clone(),
            })
        });
        let required = present(&args.required_env)
            .map(|v| {
                let names: Result<Vec<String>, String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| variable_name(n).map(|()| n.to_owned()))
                    .collect();
                c.check("required_env", &v, exit::USAGE, names)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let secrets_timeout = c.check(
            "secrets_timeout",
            &args.secrets_timeout,
            exit::USAGE,
            duration(&args.secrets_timeout).and_then(|d| {
                if d.is_zero() {
                    Err("must be more than 0 (e.g. 10s)".into())
                } else {
                    Ok(d)
                }
            }),
        );
        let interval = c.check(
            "refresh_interval",
            &args.refresh_interval,
            exit::USAGE,
            optional_duration(&args.refresh_interval).and_then(|d| match d {
                Some(d) if d < MIN_REFRESH_INTERVAL => Err(format!(
                    "must be at least {} (or off)",
                    humantime::format_duration(MIN_REFRESH_INTERVAL)
                )),
                other => Ok(other),
            }),
        );
        let on_rotate = c.check(
            "on_rotate",
            &args.on_rotate,
            exit::USAGE,
            on_rotate(&args.on_rotate),
        );
        let signal_group = c.check(
            "signal_group",
            &args.signal_group,
            exit::USAGE,
            boolean(&args.signal_group),
        );
        let stop_signal = c.check(
            "stop_signal",
            &args.stop_signal,
            exit::USAGE,
            signal(&args.stop_signal),
        );
        let stop_timeout = c.check(
            "stop_timeout",
            &args.stop_timeout,
            exit::USAGE,
            duration(&args.stop_timeout),
        );
        let log_level = c.check(
            "agent_log_level",
            &args.agent_log_level,
            exit::USAGE,
            tracing::Level::from_str(&args.agent_log_level)
                .map_err(|_| "must be one of error, warn, info, debug, trace".to_owned()),
        );
        let log_format = c.check(
            "agent_log_format",
            &args.agent_log_format,
            exit::USAGE,
            match args.agent_log_format.trim() {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                _ => Err("must be json or text".to_owned()),
            },
        );
        let migrate_on_start = c.check(
            "migrate_on_start",
            &args.migrate_on_start,
            exit::USAGE,
            boolean(&args.migrate_on_start),
        );
        let health_addr = present(&args.health_addr).and_then(|v| {
            let addr = v.parse::<SocketAddr>().map_err(|_| {
                "must be an IP address and a port, like 0.0.0.0:8080 (a host name is not accepted)"
                    .to_owned()
            });
            c.check("health_addr", &v, exit::USAGE, addr)
        });
        let logs = c.log_settings(&args.log);
        let redact_skip: Vec<String> = present(&args.redact_skip)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let errors = std::mem::take(&mut c.errors);
        match (
            url_var,
            secrets_timeout,
            interval,
            on_rotate,
            signal_group,
            stop_signal,
            stop_timeout,
            log_level,
            log_format,
            migrate_on_start,
            logs,
        ) {
            (
                Some(_),
                Some(secrets_timeout),
                Some(interval),
                Some(on_rotate),
                Some(signal_group),
                Some(stop_signal),
                Some(stop_timeout),
                Some(log_level),
                Some(log_format),
                Some(migrate_on_start),
                Some(logs),
            ) if errors.is_empty() => {
                let (program, rest) = args
                    .command
                    .split_first()
                    .map(|(p, r)| (p.clone(), r.to_vec()))
                    .unwrap_or_default();
                Ok(Settings {
                    secrets: SecretSettings {
                        env_secrets,
                        database,
                        required,
                        env_parameters,
                        keep_case,
                    },
                    secrets_timeout,
                    rotation: interval.map(|interval| RotationSettings {
                        interval,
                        on_rotate,
                    }),
                    supervision: Supervision {
                        stop_signal,
                        signal_group,
                        stop_timeout,
                    },
                    log_level,
                    log_format,
                    migrate_on_start,
                    health_addr,
                    logs,
                    redact_skip,
                    program,
                    args: rest,
                })
            }
            _ => Err(errors),
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}; write a duration like 500ms, 10s or 5m"))
}

fn optional_duration(s: &str) -> Result<Option<Duration>, String> {
    match s.trim() {
        "" | "off" | "0" => Ok(None),
        other => duration(other).map(|d| Some(d).filter(|d| !d.is_zero())),
    }
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// `SIGHUP`, `HUP`, `sighup` or a number.
pub fn signal(s: &str) -> Result<Signal, String> {
    let s = s.trim();
    let parsed = match s.parse::<i32>() {
        Ok(n) => Signal::try_from(n).ok(),
        Err(_) => {
            let upper = s.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&name).ok()
        }
    };
    parsed.ok_or_else(|| "not a signal; write a name like SIGTERM, SIGQUIT or SIGHUP".into())
}

fn on_rotate(s: &str) -> Result<OnRotate, String> {
    const RULE: &str = "must be restart, ignore, or signal:SIGNAL (e.g. signal:SIGHUP)";
    match s.trim() {
        "restart" => Ok(OnRotate::Restart),
        "ignore" => Ok(OnRotate::Ignore),
        other => match other.strip_prefix("signal:") {
            Some(sig) => signal(sig)
                .map(OnRotate::Signal)
                .map_err(|e| format!("{RULE}: {e}")),
            None => Err(RULE.into()),
        },
    }
}

fn variable_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.contains('=') || n.contains('\0') || n.contains(char::is_whitespace) {
        Err(format!("{n:?} is not a variable name"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(argv: &[&str]) -> Settings {
        parse(argv.iter().copied()).unwrap()
    }

    fn parse_err(argv: &[&str]) -> ParseError {
        parse(argv.iter().copied()).unwrap_err()
    }

    #[test]
    fn defaults() {
        let s = parse_ok(&["agent", "--", "node", "dist/index.js", "--port", "3000"]);
        assert_eq!(s.program, "node");
        assert_eq!(s.args, ["dist/index.js", "--port", "3000"]);
        assert_eq!(s.secrets_timeout, Duration::from_secs(10));
        assert_eq!(s.supervision.stop_timeout, Duration::from_secs(25));
        assert_eq!(s.supervision.stop_signal, Signal::SIGTERM);
        assert!(!s.supervision.signal_group);
        assert_eq!(s.rotation, None);
        assert!(s.secrets.database.is_none());
    }

    #[test]
    fn every_option() {
        let s = parse_ok(&[
            "agent",
            "--env-secrets",
            "streamline/app-env, arn:aws:secretsmanager:us-west-2:1:secret:b",
            "--database-secret",
            "prod/db",
            "--database-url-var",
            "POSTGRES_URL",
            "--database-sslmode",
            "verify-full",
            "--required-env",
            "A, B",
            "--secrets-timeout",
            "3s",
            "--refresh-interval",
            "5m",
            "--on-rotate",
            "signal:hup",
            "--signal-group",
            "true",
            "--stop-signal",
            "QUIT",
            "--stop-timeout",
            "500ms",
            "sh",
            "-c",
            "exit 0",
        ]);
        assert_eq!(s.secrets.env_secrets.len(), 2);
        let db = s.secrets.database.unwrap();
        assert_eq!(db.url_var, "POSTGRES_URL");
        assert_eq!(db.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(s.secrets.required, ["A", "B"]);
        assert_eq!(
            s.rotation,
            Some(RotationSettings {
                interval: Duration::from_secs(300),
                on_rotate: OnRotate::Signal(Signal::SIGHUP)
            })
        );
        assert!(s.supervision.signal_group);
        assert_eq!(s.supervision.stop_signal, Signal::SIGQUIT);
        assert_eq!(s.supervision.stop_timeout, Duration::from_millis(500));
        assert_eq!(s.args, ["-c", "exit 0"]);
        let without_separator = parse_ok(&["agent", "node", "--port", "3000", "--stop-timeout"]);
        assert_eq!(without_separator.args, ["--port", "3000", "--stop-timeout"]);
    }

    #[test]
    fn bad_values_are_all_reported_in_the_house_format() {
        let ParseError::Invalid(errors) = parse_err(&[
            "agent",
            "--stop-timeout",
            "soon",
            "--on-rotate",
            "reboot",
            "--stop-signal",
            "SIGNOPE",
            "--database-sslmode",
            "maybe",
            "true",
        ]) else {
            panic!("expected invalid values");
        };
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 4, "{text:?}");
        assert!(
            text[0].starts_with("--database-sslmode=\"maybe\" is not valid: must be one of"),
            "{text:?}"
        );
        assert!(text
            .iter()
            .any(|t| t.starts_with("--stop-timeout=\"soon\" is not valid:")));
        assert!(text
            .iter()
            .any(|t| t.contains("restart, ignore, or signal:SIGNAL")));
        assert!(errors.iter().all(|e| e.exit_code == exit::USAGE));
    }

    #[test]
    fn a_bad_secret_id_is_a_configuration_error() {
        let e = parse_err(&["agent", "--env-secrets", "a,secretsmanager:b:KEY", "true"]);
        assert_eq!(e.exit_code(), exit::CONFIG);
    }

    #[test]
    fn parameter_paths_and_their_case() {
        let s = parse_ok(&[
            "agent",
            "--env-parameters",
            "/spotter-app/, ssm:/shared/?,arn:aws:ssm:us-west-2:1:parameter/west",
            "--env-parameters-keep-case",
            "true",
            "true",
        ]);
        let paths: Vec<(String, bool)> = s
            .secrets
            .env_parameters
            .iter()
            .map(|p| (p.key.to_string(), p.optional))
            .collect();
        assert_eq!(
            paths,
            [
                ("/spotter-app/".to_owned(), false),
                ("/shared/".to_owned(), true),
                ("/west/".to_owned(), false)
            ]
        );
        assert!(s.secrets.keep_case);
        assert!(!parse_ok(&["agent", "true"]).secrets.keep_case);

        let e = parse_err(&["agent", "--env-parameters", "spotter-app/", "true"]);
        assert_eq!(e.exit_code(), exit::CONFIG);
        let ParseError::Invalid(errors) = e else {
            panic!("expected invalid values");
        };
        assert!(
            errors[0]
                .to_string()
                .starts_with("--env-parameters=\"spotter-app/\" is not valid: \"spotter-app/\" does not start with '/'"),
            "{errors:?}"
        );
        let e = parse_err(&["agent", "--env-parameters-keep-case", "maybe", "true"]);
        assert_eq!(e.exit_code(), exit::USAGE);
    }

    #[test]
    fn a_missing_command_is_a_usage_error() {
        assert_eq!(parse_err(&["agent"]).exit_code(), exit::USAGE);
        assert_eq!(
            parse_err(&["agent", "--bogus", "x"]).exit_code(),
            exit::USAGE
        );
        assert_eq!(parse_err(&["agent", "--help"]).exit_code(), 0);
    }

    #[test]
    fn small_parsers() {
        assert_eq!(signal("15"), Ok(Signal::SIGTERM));
        assert_eq!(signal("sigusr1"), Ok(Signal::SIGUSR1));
        assert!(signal("SIGFOO").is_err());
        assert_eq!(optional_duration("off"), Ok(None));
        assert_eq!(optional_duration("0"), Ok(None));
        assert_eq!(optional_duration("1m"), Ok(Some(Duration::from_secs(60))));
        assert_eq!(boolean("TRUE"), Ok(true));
        assert!(boolean("maybe").is_err());
        assert_eq!(on_rotate("ignore"), Ok(OnRotate::Ignore));
    }
}
