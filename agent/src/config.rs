//! The agent's settings: the flags and their `DECKHAND_*` variables ([`Args`], clap:
//! `--help` and the command line), read and validated into [`Settings`] by
//! [`Settings::from_env`] from the environment under the command line
//! ([`conventions::CommandLine`]). Every bad value is reported at once, as
//! `NAME="value" is not valid: reason`, named the way the user set it (the variable, or
//! the flag). A `DECKHAND_*` variable that no setting reads (a misspelt one) is not an
//! error but a warning in [`Settings::unknown`], naming the closest setting.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
pub use conventions::logging::LogFormat;
use conventions::{parse, Checker, CommandLine, Env, Invalid, Kind};
use logship::config::{LogSettings, StdoutMode};
use nix::sys::signal::Signal;

use crate::exit;
use crate::secrets::parameter::parse_path;
use crate::secrets::plan::RedactParameters;
use crate::secrets::plan::OWN_PREFIX;
use crate::secrets::reference::parse_secret_id;
use crate::secrets::{DatabaseSettings, SecretSettings};

/// The shortest refresh interval: more often only burns GetSecretValue quota.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Variables of the agent's prefix that the test services export for the tests
/// (`scripts/services`): not settings, and not worth a warning.
const TEST_PREFIX: &str = "DECKHAND_TEST_";

/// How much of an unknown variable's name a warning shows (it is outside text).
const MAX_SHOWN_NAME_CHARS: usize = 100;

/// The documented defaults: what `--help` shows and what [`Settings::from_env`] uses.
mod default {
    pub const ENV_PARAMETERS_KEEP_CASE: &str = "false";
    pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
    pub const SECRETS_TIMEOUT: &str = "10s";
    pub const REFRESH_INTERVAL: &str = "off";
    pub const ON_ROTATE: &str = "restart";
    pub const SIGNAL_GROUP: &str = "false";
    pub const STOP_SIGNAL: &str = "SIGTERM";
    pub const STOP_TIMEOUT: &str = "25s";
    pub const STOP_DELAY: &str = "0s";
    pub const AGENT_LOG_LEVEL: &str = "info";
    pub const AGENT_LOG_FORMAT: &str = "auto";
    pub const MIGRATE_ON_START: &str = "false";
    pub const REDACT_PARAMETERS: &str = "secure";
}

/// The flags and variables, for the command line and `--help`. Values are read by
/// [`Settings::from_env`], through the environment under the command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "agent",
    version,
    about = "Resolves secret references into the app's environment, then runs the app as PID 1: forwards signals, reaps zombies, exits with the app's code.",
    after_help = "References: any variable whose value is arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]] or secretsmanager:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]] is replaced by the secret; one whose value is arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION|:LABEL] or ssm:/NAME[:VERSION|:LABEL] by the Parameter Store parameter (SecureStrings decrypted).\nExit codes: 64 usage, 69 AWS not reachable in time, 70 the agent itself failed, 78 configuration (reference, secret, key, access, required variable, migration file), 1/3/4/5 migrate's (DECKHAND_MIGRATE_ON_START), 126/127 command not runnable/found; otherwise the app's code, or 128+n for signal n."
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
        default_value = default::ENV_PARAMETERS_KEEP_CASE
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
        default_value = default::DATABASE_URL_VAR
    )]
    pub database_url_var: String,
    /// sslmode appended to the database URL (and set as PGSSLMODE): disable, prefer, require, verify-ca, verify-full.
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
        default_value = default::SECRETS_TIMEOUT
    )]
    pub secrets_timeout: String,
    /// Re-check the referenced secrets this often (e.g. 5m); off by default.
    #[arg(
        long,
        env = "DECKHAND_REFRESH_INTERVAL",
        value_name = "DURATION",
        default_value = default::REFRESH_INTERVAL
    )]
    pub refresh_interval: String,
    /// What a changed secret does: restart (the app, gracefully, with the new values), signal:SIGNAL (e.g. signal:SIGHUP), ignore (log it).
    #[arg(
        long,
        env = "DECKHAND_ON_ROTATE",
        value_name = "ACTION",
        default_value = default::ON_ROTATE
    )]
    pub on_rotate: String,
    /// Forward signals to the app's whole process group instead of the app alone.
    #[arg(
        long,
        env = "DECKHAND_SIGNAL_GROUP",
        value_name = "BOOL",
        default_value = default::SIGNAL_GROUP
    )]
    pub signal_group: String,
    /// The signal the app gets when the agent gets SIGTERM (for apps that stop on another one).
    #[arg(
        long,
        env = "DECKHAND_STOP_SIGNAL",
        value_name = "SIGNAL",
        default_value = default::STOP_SIGNAL
    )]
    pub stop_signal: String,
    /// After SIGTERM, how long the app may take to exit before its process group is killed (keep it under the task's stopTimeout, 30s by default).
    #[arg(
        long,
        env = "DECKHAND_STOP_TIMEOUT",
        value_name = "DURATION",
        default_value = default::STOP_TIMEOUT
    )]
    pub stop_timeout: String,
    /// After SIGTERM, how long /health answers 503 draining while the app keeps running and gets no signal, before it gets the stop signal (time for the load balancer to stop routing here); 0s is off. The delay plus the stop timeout must fit the task's stopTimeout.
    #[arg(
        long,
        env = "DECKHAND_STOP_DELAY",
        value_name = "DURATION",
        default_value = default::STOP_DELAY
    )]
    pub stop_delay: String,
    /// The agent's own log level on stderr: error, warn, info, debug, trace.
    #[arg(
        long,
        env = "DECKHAND_AGENT_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = default::AGENT_LOG_LEVEL
    )]
    pub agent_log_level: String,
    /// Format of the agent's own messages on stderr: json (one object per line, also shipped to CloudWatch with "source":"agent"), text, or auto (text when the app's output is copied as text, see DECKHAND_LOG_STDOUT; else json).
    #[arg(
        long,
        env = "DECKHAND_AGENT_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = default::AGENT_LOG_FORMAT
    )]
    pub agent_log_format: String,
    /// Run `migrate up` (with its lock) after the secrets and before the app; a failure stops the start with migrate's exit code. Settings: migrate's MIGRATIONS_DIR and MIGRATE_* variables.
    #[arg(
        long,
        env = "DECKHAND_MIGRATE_ON_START",
        value_name = "BOOL",
        default_value = default::MIGRATE_ON_START
    )]
    pub migrate_on_start: String,
    /// Serve healthcheck's /health in process on this address (e.g. 0.0.0.0:8080), with healthcheck's HEALTH_* settings; it reports draining from SIGTERM on.
    #[arg(long, env = "DECKHAND_HEALTH_ADDR", value_name = "ADDR")]
    pub health_addr: Option<String>,
    /// Loaded variables (comma-separated) whose values are configuration, not secrets, and are not redacted from logs (e.g. NODE_ENV,APP_URL from a whole secret or path).
    #[arg(long, env = "DECKHAND_REDACT_SKIP", value_name = "NAMES")]
    pub redact_skip: Option<String>,
    /// Which Parameter Store parameters are redacted from logs: secure (only SecureString parameters; String and StringList parameters are configuration) or all. Secrets Manager values always are.
    #[arg(
        long,
        env = "DECKHAND_REDACT_PARAMETERS",
        value_name = "WHICH",
        default_value = default::REDACT_PARAMETERS
    )]
    pub redact_parameters: String,
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
    /// From the stop signal to SIGKILL of the app's process group.
    pub stop_timeout: Duration,
    /// From SIGTERM to the stop signal (`/health` draining, the app still serving);
    /// zero: the stop signal at once.
    pub stop_delay: Duration,
}

/// Fargate's longest `stopTimeout` (AWS-FACTS: "at most 120 s on Fargate"; on EC2 and
/// EXTERNAL the task definition, or the container agent's `ECS_CONTAINER_STOP_TIMEOUT`,
/// may give more): on Fargate a stop delay and a stop timeout that add up to more can
/// never run to their end.
pub const FARGATE_MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// ECS's `stopTimeout` when the task definition sets none (AWS-FACTS: 30 s).
pub const ECS_DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// What the agent needs after the stop timeout: the app's leftovers
/// ([`crate::supervise::LEFTOVER_GRACE`], 2 s), the last log flush (at least 1 s) and
/// some slack — the 5 s the default stop timeout (25 s) leaves of ECS's default 30 s.
pub const FLUSH_MARGIN: Duration = Duration::from_secs(5);

/// Where the task runs, as far as the start knows: the task metadata's `LaunchType`.
/// The longest `stopTimeout` depends on it, and the settings are read before any I/O,
/// so the start ([`crate::run`]) finds it out and [`Settings::stop_budget`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchType {
    /// `FARGATE`: `stopTimeout` is at most [`FARGATE_MAX_STOP_TIMEOUT`].
    Fargate,
    /// `EC2`, `EXTERNAL` or another the metadata names (as shown in messages): the task
    /// definition's `stopTimeout`, or the container agent's `ECS_CONTAINER_STOP_TIMEOUT`
    /// when it sets none, is the limit.
    Other(String),
    /// Not known, and why: no task metadata endpoint (not on ECS), or its read failed.
    Unknown(String),
}

impl LaunchType {
    /// From the task document's `LaunchType` (outside text: shown escaped and cut).
    pub fn from_metadata(launch_type: Option<&str>) -> LaunchType {
        match launch_type {
            Some(aws::ecs::LAUNCH_TYPE_FARGATE) => LaunchType::Fargate,
            Some(other) => LaunchType::Other(shown_name(other)),
            None => LaunchType::Unknown("the task metadata names no LaunchType".to_owned()),
        }
    }
}

/// The refusal of a stop delay whose stop cannot fit Fargate's longest `stopTimeout`:
/// delay plus stop timeout over [`FARGATE_MAX_STOP_TIMEOUT`]. `Ok` without a delay: the
/// stop timeout alone is checked by no one, as before (outside ECS, `docker stop -t`
/// may give it any time). Where it applies is decided at start
/// ([`Settings::stop_budget`]).
fn check_stop_budget(delay: Duration, timeout: Duration) -> Result<(), String> {
    if delay.is_zero() || delay + timeout <= FARGATE_MAX_STOP_TIMEOUT {
        return Ok(());
    }
    let fmt = humantime::format_duration;
    Err(format!(
        "the stop delay and the stop timeout add up to {}, longer than ECS waits for a container to stop on Fargate, where this task runs (stopTimeout is at most {} on Fargate): shorten one of the two so that together they take at most {} ({} leaves {} for leftovers and the last log flush)",
        fmt(delay + timeout),
        fmt(FARGATE_MAX_STOP_TIMEOUT),
        fmt(FARGATE_MAX_STOP_TIMEOUT),
        fmt(FARGATE_MAX_STOP_TIMEOUT - FLUSH_MARGIN),
        fmt(FLUSH_MARGIN),
    ))
}

impl Supervision {
    /// The `stopTimeout` the container needs for this stop: the delay, the stop timeout
    /// and [`FLUSH_MARGIN`], in whole seconds (what a task definition takes).
    pub fn needed_stop_timeout(&self) -> Duration {
        let needed = self.stop_delay + self.stop_timeout + FLUSH_MARGIN;
        Duration::from_secs(needed.as_secs() + u64::from(needed.subsec_nanos() > 0))
    }

    /// Whether the launch type changes what the start does or says about this stop: a
    /// stop delay, and a stop that needs more than Fargate's longest `stopTimeout`.
    /// Only then does the start read the task metadata for it.
    pub fn depends_on_launch_type(&self) -> bool {
        !self.stop_delay.is_zero() && self.needed_stop_timeout() > FARGATE_MAX_STOP_TIMEOUT
    }

    /// A warning for the start when a stop delay makes the stop longer than ECS's
    /// default `stopTimeout` allows: ECS would SIGKILL the agent before it is done (the
    /// task metadata does not tell the container its `stopTimeout`, so the agent can
    /// only ask for it). Past Fargate's longest `stopTimeout`, what it asks for depends
    /// on `launch`. `None` without a stop delay.
    pub fn stop_budget_warning(&self, launch: &LaunchType) -> Option<String> {
        let needed = self.needed_stop_timeout();
        if self.stop_delay.is_zero() || needed <= ECS_DEFAULT_STOP_TIMEOUT {
            return None;
        }
        let fmt = humantime::format_duration;
        let what = format!(
            "DECKHAND_STOP_DELAY ({}) plus DECKHAND_STOP_TIMEOUT ({}) plus {} for leftovers and the last log flush is {}, more than ECS's default stopTimeout ({})",
            fmt(self.stop_delay),
            fmt(self.stop_timeout),
            fmt(FLUSH_MARGIN),
            fmt(needed),
            fmt(ECS_DEFAULT_STOP_TIMEOUT),
        );
        let set = format!(
            "set the container's \"stopTimeout\": {} in the task definition",
            needed.as_secs()
        );
        let cut = "or ECS sends SIGKILL before the app has stopped and the logs are flushed";
        // What Fargate's cap leaves out: off Fargate there is no such cap.
        let short = needed.saturating_sub(FARGATE_MAX_STOP_TIMEOUT);
        let capped = !short.is_zero();
        Some(match launch {
            LaunchType::Fargate if capped => format!(
                "{what}: set the container's \"stopTimeout\": {} in the task definition (its maximum on Fargate), and shorten DECKHAND_STOP_DELAY or DECKHAND_STOP_TIMEOUT by {}, or the last log flush may be cut short",
                FARGATE_MAX_STOP_TIMEOUT.as_secs(),
                fmt(short),
            ),
            LaunchType::Unknown(_) if capped => format!(
                "{what}: {set} (on Fargate, where {} is its maximum, set that and shorten DECKHAND_STOP_DELAY or DECKHAND_STOP_TIMEOUT by {}), {cut}",
                FARGATE_MAX_STOP_TIMEOUT.as_secs(),
                fmt(short),
            ),
            _ => format!("{what}: {set}, {cut}"),
        })
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub secrets: SecretSettings,
    pub secrets_timeout: Duration,
    /// `None`: secrets are read once, at start.
    pub rotation: Option<RotationSettings>,
    pub supervision: Supervision,
    /// The refusal, named as the settings were given, of a stop delay plus stop timeout
    /// over [`FARGATE_MAX_STOP_TIMEOUT`]; [`Settings::stop_budget`] applies it only on
    /// Fargate, which the settings cannot know.
    pub stop_over_fargate_limit: Option<Invalid>,
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
    /// A warning for each `DECKHAND_*` variable no setting reads (misspelt, usually):
    /// it is ignored, and removed from the app's environment like every `DECKHAND_*`.
    pub unknown: Vec<String>,
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl Settings {
    /// The start's decision on the stop's length, once it knows where the task runs:
    /// over [`FARGATE_MAX_STOP_TIMEOUT`] on Fargate the refusal (exit 64); on EC2,
    /// EXTERNAL or where unknown, a warning that says which limit applies where instead
    /// (the refusal would be wrong off Fargate). Then the warnings to log: that one, and
    /// [`Supervision::stop_budget_warning`].
    pub fn stop_budget(&self, launch: &LaunchType) -> Result<Vec<String>, Invalid> {
        let mut warnings = Vec::new();
        if let Some(refusal) = &self.stop_over_fargate_limit {
            let s = &self.supervision;
            let fmt = humantime::format_duration;
            let what = format!(
                "DECKHAND_STOP_DELAY ({}) plus DECKHAND_STOP_TIMEOUT ({}) is {}, more than the {} Fargate allows for a container's stopTimeout",
                fmt(s.stop_delay),
                fmt(s.stop_timeout),
                fmt(s.stop_delay + s.stop_timeout),
                fmt(FARGATE_MAX_STOP_TIMEOUT),
            );
            const ELSEWHERE: &str = "the task definition's stopTimeout (or, when it sets none, the ECS container agent's ECS_CONTAINER_STOP_TIMEOUT) is the limit";
            warnings.push(match launch {
                LaunchType::Fargate => return Err(refusal.clone()),
                LaunchType::Other(name) => format!(
                    "{what}: the task metadata says this task runs on {name}, where {ELSEWHERE}, so the start goes on (on Fargate these settings are refused)"
                ),
                LaunchType::Unknown(why) => format!(
                    "{what}: the launch type is unknown ({why}), so the start goes on; on Fargate these settings are refused (exit 64), on EC2 and EXTERNAL {ELSEWHERE}"
                ),
            });
        }
        warnings.extend(self.supervision.stop_budget_warning(launch));
        Ok(warnings)
    }
}

/// Why the command line cannot be used.
#[derive(Debug)]
pub enum ParseError {
    /// Clap's own: unknown flag, missing COMMAND — or `--help`/`--version` (exit 0).
    Clap(clap::Error),
    /// Every bad value.
    Invalid(Vec<Invalid>),
}

impl ParseError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ParseError::Clap(e) if e.exit_code() == 0 => 0,
            ParseError::Clap(_) => exit::USAGE,
            ParseError::Invalid(errors) => {
                if errors.iter().any(|e| e.kind == Kind::Config) {
                    exit::CONFIG
                } else {
                    exit::USAGE
                }
            }
        }
    }
}

/// Parses the command line over the process's `DECKHAND_*` variables.
pub fn parse<I, T>(argv: I) -> Result<Settings, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Looked at once, here: a developer at a terminal gets text (the `auto` formats).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    read_command_line(argv, &conventions::ProcessEnv, terminal)
}

/// Parses the command line over `env`, for a stdout that is not a terminal.
pub fn parse_with<I, T>(argv: I, env: &impl Env) -> Result<Settings, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    read_command_line(argv, env, false)
}

fn read_command_line<I, T>(
    argv: I,
    env: &impl Env,
    stdout_is_terminal: bool,
) -> Result<Settings, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    match app_only(&argv, env) {
        Some(app) => Settings::read(env, app, stdout_is_terminal).map_err(ParseError::Invalid),
        None => read_with_clap(argv, env, stdout_is_terminal),
    }
}

fn read_with_clap(
    argv: Vec<OsString>,
    env: &impl Env,
    stdout_is_terminal: bool,
) -> Result<Settings, ParseError> {
    let mut command = Args::command();
    // Parsed through a borrow: `CommandLine` needs the command again, and a clone of
    // it (every flag, its help text) was a measurable part of the start.
    let matches = command
        .try_get_matches_from_mut(argv)
        .map_err(ParseError::Clap)?;
    let args = Args::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    let env = CommandLine::new(&command, &matches, env);
    Settings::read(&env, &args.command, stdout_is_terminal).map_err(ParseError::Invalid)
}

/// The prefixes of the variables behind the flags ([`Args`]).
const FLAG_VARIABLE_PREFIXES: [&str; 2] = ["DECKHAND_", "CLOUDWATCH_"];

/// The app and its arguments when the command line is the ENTRYPOINT's own form,
/// `agent -- COMMAND…` (the image's, and every example's): with no flag to parse, what
/// clap would give is the environment itself, so building clap's command (every flag,
/// its help text, its variable: a measurable part of the start) is skipped. The one
/// thing clap would refuse there is a flag's variable that is not UTF-8: then clap
/// parses, for its error.
fn app_only<'a>(argv: &'a [OsString], env: &impl Env) -> Option<&'a [OsString]> {
    let app = match argv {
        [_, dashes, app @ ..] if dashes == "--" && !app.is_empty() => app,
        _ => return None,
    };
    let not_utf8 = env.vars().into_iter().any(|(name, value)| {
        value.to_str().is_none()
            && name
                .to_str()
                .is_some_and(|n| FLAG_VARIABLE_PREFIXES.iter().any(|p| n.starts_with(p)))
    });
    (!not_utf8).then_some(app)
}

/// A comma-separated list of ids, each parsed by `parse`.
fn ids<T>(v: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse)
        .collect()
}

impl Settings {
    /// Reads every setting from `env`; `command` is the app and its arguments. Stdout
    /// is taken not to be a terminal.
    pub fn from_env(env: &impl Env, command: &[OsString]) -> Result<Settings, Vec<Invalid>> {
        Settings::read(env, command, false)
    }

    /// [`Settings::from_env`]; `stdout_is_terminal` decides what the `auto` formats
    /// (`DECKHAND_LOG_STDOUT`, `DECKHAND_AGENT_LOG_FORMAT`) mean.
    pub fn read(
        env: &impl Env,
        command: &[OsString],
        stdout_is_terminal: bool,
    ) -> Result<Settings, Vec<Invalid>> {
        let unknown = unknown_settings(env);
        let mut c = Checker::new(env);
        let env_secrets = c.raw("DECKHAND_ENV_SECRETS").and_then(|v| {
            let parsed = ids(&v, parse_secret_id);
            c.check_config("DECKHAND_ENV_SECRETS", &v, parsed)
        });
        let env_parameters = c.raw("DECKHAND_ENV_PARAMETERS").and_then(|v| {
            let parsed = ids(&v, parse_path);
            c.check_config("DECKHAND_ENV_PARAMETERS", &v, parsed)
        });
        let keep_case = c.get(
            "DECKHAND_ENV_PARAMETERS_KEEP_CASE",
            default::ENV_PARAMETERS_KEEP_CASE,
            parse::boolean,
        );
        let redact_parameters = c.get(
            "DECKHAND_REDACT_PARAMETERS",
            default::REDACT_PARAMETERS,
            RedactParameters::parse,
        );
        let url_var = c.get(
            "DECKHAND_DATABASE_URL_VAR",
            default::DATABASE_URL_VAR,
            parse::variable_name,
        );
        // pgconn's own grammar, so a mode that passes here also connects.
        let sslmode = c.optional("DECKHAND_DATABASE_SSLMODE", |v| {
            pgconn::SslMode::from_str(v).map(|_| v.to_owned())
        });
        let database = c.raw("DECKHAND_DATABASE_SECRET").and_then(|v| {
            let key = c.check_config("DECKHAND_DATABASE_SECRET", &v, parse_secret_id(&v))?;
            Some(DatabaseSettings {
                key,
                url_var: url_var.clone(),
                sslmode: sslmode.clone(),
            })
        });
        let required = c
            .optional("DECKHAND_REQUIRED_ENV", |v| {
                parse::list(v)
                    .iter()
                    .map(|n| parse::variable_name(n))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        let secrets_timeout = c.get(
            "DECKHAND_SECRETS_TIMEOUT",
            default::SECRETS_TIMEOUT,
            parse::positive_duration,
        );
        let interval = c.get(
            "DECKHAND_REFRESH_INTERVAL",
            default::REFRESH_INTERVAL,
            |v| match parse::optional_duration(v)? {
                Some(d) if d < MIN_REFRESH_INTERVAL => Err(format!(
                    "must be at least {} (or off)",
                    humantime::format_duration(MIN_REFRESH_INTERVAL)
                )),
                other => Ok(other),
            },
        );
        let on_rotate = c
            .optional("DECKHAND_ON_ROTATE", on_rotate)
            .or_else(|| on_rotate(default::ON_ROTATE).ok());
        let signal_group = c.get(
            "DECKHAND_SIGNAL_GROUP",
            default::SIGNAL_GROUP,
            parse::boolean,
        );
        let stop_signal = c
            .optional("DECKHAND_STOP_SIGNAL", signal)
            .or_else(|| signal(default::STOP_SIGNAL).ok());
        let stop_timeout = c.get(
            "DECKHAND_STOP_TIMEOUT",
            default::STOP_TIMEOUT,
            parse::duration,
        );
        let stop_delay = c.get("DECKHAND_STOP_DELAY", default::STOP_DELAY, parse::duration);
        let stop_over_fargate_limit =
            check_stop_budget(stop_delay, stop_timeout)
                .err()
                .map(|reason| {
                    let timeout = c.raw("DECKHAND_STOP_TIMEOUT");
                    let reason = format!(
                        "with {}={:?} {reason}",
                        c.origin("DECKHAND_STOP_TIMEOUT"),
                        timeout.as_deref().unwrap_or(default::STOP_TIMEOUT)
                    );
                    Invalid::new(
                        c.origin("DECKHAND_STOP_DELAY"),
                        c.raw("DECKHAND_STOP_DELAY").unwrap_or_default(),
                        reason,
                    )
                });
        let log_level = c.get("DECKHAND_AGENT_LOG_LEVEL", default::AGENT_LOG_LEVEL, |v| {
            tracing::Level::from_str(v)
                .map(Some)
                .map_err(|_| "must be one of error, warn, info, debug, trace".to_owned())
        });
        let log_format = c.get(
            "DECKHAND_AGENT_LOG_FORMAT",
            default::AGENT_LOG_FORMAT,
            |v| match v.trim() {
                "auto" => Ok(None),
                _ => LogFormat::parse(v)
                    .map(Some)
                    .map_err(|_| "must be auto, json or text".to_owned()),
            },
        );
        let migrate_on_start = c.get(
            "DECKHAND_MIGRATE_ON_START",
            default::MIGRATE_ON_START,
            parse::boolean,
        );
        let health_addr = c.optional("DECKHAND_HEALTH_ADDR", parse::socket_addr);
        let logs = LogSettings::read(&mut c, stdout_is_terminal);
        // auto: text for people when the app's output is shown to them as text.
        let log_format = log_format.unwrap_or(match logs.stdout {
            StdoutMode::Text => LogFormat::Text,
            _ => LogFormat::Json,
        });
        let redact_skip = c
            .raw("DECKHAND_REDACT_SKIP")
            .map(|v| parse::list(&v))
            .unwrap_or_default();
        let (Some(on_rotate), Some(stop_signal), Some(log_level)) =
            (on_rotate, stop_signal, log_level)
        else {
            // Unreachable in practice: each is `None` only with its error recorded.
            return Err(c.finish(()).err().unwrap_or_default());
        };
        let (program, rest) = command
            .split_first()
            .map(|(p, r)| (p.clone(), r.to_vec()))
            .unwrap_or_default();
        c.finish(Settings {
            secrets: SecretSettings {
                env_secrets: env_secrets.unwrap_or_default(),
                database,
                required,
                env_parameters: env_parameters.unwrap_or_default(),
                keep_case,
                redact_parameters,
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
                stop_delay,
            },
            stop_over_fargate_limit,
            log_level,
            log_format,
            migrate_on_start,
            health_addr,
            logs,
            redact_skip,
            unknown,
            program,
            args: rest,
        })
    }
}

/// Every `DECKHAND_*` variable a setting reads: the variables of the flags, the log
/// pipeline's included (the agent reads no other).
pub fn known_variables() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|a| a.get_env()?.to_str())
        .filter(|name| name.starts_with(OWN_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// A warning for each `DECKHAND_*` variable of `env` that no setting reads, in name
/// order, with the closest setting when one is close:
/// `DECKHAND_<NAME> is not a deckhand setting (did you mean DECKHAND_<SETTING>?); …`.
fn unknown_settings(env: &impl Env) -> Vec<String> {
    let mut unknown: Vec<String> = env
        .vars()
        .into_iter()
        .filter_map(|(name, _)| name.to_str().map(str::to_owned))
        .filter(|name| name.starts_with(OWN_PREFIX) && !name.starts_with(TEST_PREFIX))
        .collect();
    if unknown.is_empty() {
        // Without a `DECKHAND_*` variable there is nothing to look up: the start does
        // not build clap's command a second time for it.
        return Vec::new();
    }
    let known = known_variables();
    unknown.retain(|name| !known.contains(name));
    unknown.sort();
    unknown.dedup();
    unknown
        .iter()
        .map(|name| {
            // Compared without the prefix every name shares, so the distance is that of
            // the part the user chose.
            let suffix = &name[OWN_PREFIX.len()..];
            let closest = conventions::suggest::closest(
                suffix,
                known.iter().map(|k| &k[OWN_PREFIX.len()..]),
            );
            let shown = shown_name(name);
            match closest {
                Some(k) => format!(
                    "{shown} is not a deckhand setting (did you mean {OWN_PREFIX}{k}?); it is ignored and not passed to the app"
                ),
                None => format!(
                    "{shown} is not a deckhand setting; it is ignored and not passed to the app (agent --help lists the settings)"
                ),
            }
        })
        .collect()
}

/// An outside name as a warning shows it: control characters escaped, at most
/// [`MAX_SHOWN_NAME_CHARS`] characters.
fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(MAX_SHOWN_NAME_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().count() > MAX_SHOWN_NAME_CHARS {
        shown.push('…');
    }
    shown
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The command line over an empty environment: the machine's own variables do not
    /// leak into the test.
    fn parse(argv: impl IntoIterator<Item = &'static str>) -> Result<Settings, ParseError> {
        parse_with(argv, &std::collections::BTreeMap::<String, String>::new())
    }

    fn parse_ok(argv: &[&'static str]) -> Settings {
        parse(argv.iter().copied()).unwrap()
    }

    fn parse_err(argv: &[&'static str]) -> ParseError {
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
    fn only_the_entrypoint_form_skips_clap() {
        let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        let none = BTreeMap::<String, String>::new();
        let form = argv(&["agent", "--", "node", "--port", "3000"]);
        assert_eq!(app_only(&form, &none), Some(&form[2..]));
        for other in [
            &["agent", "--"][..],
            &["agent"],
            &["agent", "node", "--port"],
            &["agent", "--stop-timeout", "5s", "--", "node"],
            &["agent", "--help"],
            &["agent", "--version", "--", "node"],
        ] {
            assert_eq!(app_only(&argv(other), &none), None, "{other:?}");
        }
        // A flag's variable that is not UTF-8 goes to clap, for clap's error; any other
        // variable is not clap's business.
        use std::os::unix::ffi::OsStringExt;
        let not_utf8 = || OsString::from_vec(vec![b'5', 0xff, b's']);
        for (name, skips) in [
            ("DECKHAND_STOP_TIMEOUT", false),
            ("CLOUDWATCH_LOG_GROUP", false),
            ("APP_BLOB", true),
        ] {
            let env: Vec<(OsString, OsString)> = vec![(name.into(), not_utf8())];
            assert_eq!(app_only(&form, &env).is_some(), skips, "{name}");
        }
    }

    /// What makes skipping clap safe: every flag's variable has one of the prefixes
    /// [`app_only`] checks, and clap takes any UTF-8 value of it (a `String`); nothing
    /// but the command is positional.
    #[test]
    fn clap_refuses_no_utf8_value_of_a_flag() {
        let command = Args::command();
        let string = clap::builder::ValueParser::string().type_id();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "command" {
                assert!(arg.is_positional());
                continue;
            }
            if matches!(id, "help" | "version") {
                continue;
            }
            assert!(!arg.is_positional(), "{id}");
            assert!(!arg.is_required_set(), "{id}");
            let var = arg.get_env().and_then(|v| v.to_str()).unwrap_or_default();
            assert!(
                FLAG_VARIABLE_PREFIXES.iter().any(|p| var.starts_with(p)),
                "--{id}'s variable {var:?} has no prefix that app_only checks"
            );
            assert_eq!(arg.get_value_parser().type_id(), string, "--{id}");
        }
    }

    proptest::proptest! {
        /// Any command line and any variables (non-UTF-8 bytes, NULs, `--` anywhere)
        /// give an answer, never a panic: the app is everything after a leading `--`
        /// when there is something after it and no flag's variable is not UTF-8.
        #[test]
        fn any_command_line_and_variables_give_an_answer(
            args in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b"--".to_vec()),
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
                ],
                0..5,
            ),
            vars in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::prelude::Just(b"DECKHAND_STOP_TIMEOUT".to_vec()),
                        proptest::prelude::Just(b"CLOUDWATCH_LOG_GROUP".to_vec()),
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
                    ],
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
                ),
                0..4,
            ),
        ) {
            use std::os::unix::ffi::OsStringExt;
            let mut argv = vec![OsString::from("agent")];
            argv.extend(args.into_iter().map(OsString::from_vec));
            let env: Vec<(OsString, OsString)> = vars
                .into_iter()
                .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
                .collect();
            let flag_not_utf8 = env.iter().any(|(k, v)| {
                v.to_str().is_none()
                    && k.to_str().is_some_and(|k| {
                        k.starts_with("DECKHAND_") || k.starts_with("CLOUDWATCH_")
                    })
            });
            let expected = (argv.len() > 2 && argv[1] == "--" && !flag_not_utf8)
                .then(|| &argv[2..]);
            proptest::prop_assert_eq!(app_only(&argv, &env), expected);
        }

        /// Any stop delay and stop timeout, up to a number of any size in any unit, is
        /// refused as a setting or added up and judged against every launch type: never
        /// a panic (`18446744073709551615s` overflowed the sum).
        #[test]
        fn any_stop_lengths_are_refused_or_add_up(
            lengths in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::prelude::any::<u64>(),
                        (0..1u64 << 40),
                        // Where a sum of two overflows.
                        proptest::strategy::Strategy::prop_map(0..64u64, |k| u64::MAX - k),
                        proptest::strategy::Strategy::prop_map(0..64u64, |k| (u64::MAX >> 1) + k),
                    ],
                    0..8usize,
                ),
                2,
            ),
        ) {
            let units = ["ns", "ms", "s", "m", "h", "d", "w", "y"];
            let text = |(n, unit): (u64, usize)| format!("{n}{}", units[unit]);
            let env: std::collections::BTreeMap<String, String> = [
                ("DECKHAND_STOP_DELAY".to_owned(), text(lengths[0])),
                ("DECKHAND_STOP_TIMEOUT".to_owned(), text(lengths[1])),
            ]
            .into();
            if let Ok(s) = parse_with(["agent", "true"], &env) {
                let needed = s.supervision.needed_stop_timeout();
                proptest::prop_assert!(needed >= s.supervision.stop_timeout);
                let _ = s.supervision.depends_on_launch_type();
                for launch in [
                    LaunchType::Fargate,
                    LaunchType::from_metadata(Some("EC2")),
                    LaunchType::Unknown("not read".to_owned()),
                ] {
                    let _ = s.stop_budget(&launch);
                }
            }
        }
    }

    #[test]
    fn the_entrypoint_form_reads_what_clap_reads() {
        let argv: Vec<OsString> = ["agent", "--", "sh", "-c", "exit 0"]
            .iter()
            .map(OsString::from)
            .collect();
        let envs: [&[(&str, &str)]; 4] = [
            &[],
            &[
                ("DECKHAND_STOP_TIMEOUT", "3s"),
                ("DECKHAND_LOG_STDOUT", "json"),
            ],
            &[
                ("DECKHAND_STOP_TIMEOUT", "soon"),
                ("DECKHAND_ON_ROTATE", "x"),
            ],
            &[
                ("DECKHAND_STOP_TIMOUT", "3s"),
                ("CLOUDWATCH_LOG_GROUP", "/ecs/app"),
            ],
        ];
        for pairs in envs {
            let env: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let skipped = read_command_line(argv.clone(), &env, false);
            let clapped = read_with_clap(argv.clone(), &env, false);
            assert_eq!(format!("{skipped:?}"), format!("{clapped:?}"), "{pairs:?}");
        }
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
        assert!(errors.iter().all(|e| e.kind == Kind::Usage));
    }

    #[test]
    fn the_documented_defaults_are_the_ones_read() {
        let documented = conventions::env::documented_defaults(&Args::command());
        let command = [OsString::from("true")];
        let from_docs = Settings::from_env(&documented, &command).unwrap();
        let empty = std::collections::BTreeMap::<String, String>::new();
        let from_nothing = Settings::from_env(&empty, &command).unwrap();
        assert_eq!(format!("{from_docs:?}"), format!("{from_nothing:?}"));
    }

    #[test]
    fn settings_come_from_the_variables_and_a_flag_wins() {
        let env: std::collections::BTreeMap<String, String> = [
            ("DECKHAND_STOP_TIMEOUT".to_owned(), "3s".to_owned()),
            ("DECKHAND_SIGNAL_GROUP".to_owned(), "yes".to_owned()),
            ("DECKHAND_SECRETS_TIMEOUT".to_owned(), "soon".to_owned()),
        ]
        .into();
        let ParseError::Invalid(errors) =
            parse_with(["agent", "--stop-timeout", "later", "true"], &env).unwrap_err()
        else {
            panic!("expected invalid values");
        };
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("DECKHAND_SECRETS_TIMEOUT=\"soon\""),
            "{text:?}"
        );
        assert!(text[1].starts_with("--stop-timeout=\"later\""), "{text:?}");
        let env: std::collections::BTreeMap<String, String> =
            [("DECKHAND_SIGNAL_GROUP".to_owned(), "yes".to_owned())].into();
        let s = parse_with(["agent", "--stop-timeout", "3s", "true"], &env).unwrap();
        assert!(s.supervision.signal_group);
        assert_eq!(s.supervision.stop_timeout, Duration::from_secs(3));
    }

    #[test]
    fn an_sslmode_pgconn_refuses_is_refused_here_too() {
        // `allow` passed this check once and then failed in pgconn.
        let e = parse_err(&["agent", "--database-sslmode", "allow", "true"]);
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(parse(["agent", "--database-sslmode", "verify-full", "true"]).is_ok());
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
    fn which_parameters_are_redacted() {
        let secure = parse_ok(&["agent", "true"]).secrets.redact_parameters;
        assert_eq!(secure, RedactParameters::Secure);
        let all = parse_ok(&["agent", "--redact-parameters", "ALL", "true"]);
        assert_eq!(all.secrets.redact_parameters, RedactParameters::All);
        let ParseError::Invalid(errors) =
            parse_err(&["agent", "--redact-parameters", "none", "true"])
        else {
            panic!("expected invalid values");
        };
        assert_eq!(
            errors[0].to_string(),
            "--redact-parameters=\"none\" is not valid: must be secure (only SecureString parameters are redacted) or all"
        );
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

    fn unknown_in(vars: &[(&str, &str)]) -> Vec<String> {
        let env: std::collections::BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_env(&env, &[OsString::from("true")])
            .unwrap()
            .unknown
    }

    #[test]
    fn an_unknown_setting_is_named_with_the_closest_known_one() {
        let unknown = unknown_in(&[
            ("DECKHAND_ENV_SECRET", "app/env"),
            ("DECKHAND_STOP_TIMEOUT", "5s"),
            ("DECKHAND_LOG_FLUSHH", "1s"),
            ("DECKHAND_env_secrets", "x"),
            ("DECKHAND_WHATEVER_THIS_IS", "x"),
            ("DECKHAND_TEST_PG_CA", "/ca.pem"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            unknown,
            [
                "DECKHAND_ENV_SECRET is not a deckhand setting (did you mean DECKHAND_ENV_SECRETS?); it is ignored and not passed to the app",
                "DECKHAND_LOG_FLUSHH is not a deckhand setting (did you mean DECKHAND_LOG_FLUSH?); it is ignored and not passed to the app",
                "DECKHAND_WHATEVER_THIS_IS is not a deckhand setting; it is ignored and not passed to the app (agent --help lists the settings)",
                "DECKHAND_env_secrets is not a deckhand setting (did you mean DECKHAND_ENV_SECRETS?); it is ignored and not passed to the app",
            ]
        );
        assert!(unknown_in(&[("DECKHAND_STOP_TIMEOUT", "5s")]).is_empty());
        let long = format!("DECKHAND_{}\u{7}", "X".repeat(500));
        let shown = &unknown_in(&[(long.as_str(), "x")])[0];
        assert!(shown.starts_with("DECKHAND_XXX"), "{shown}");
        assert!(shown.contains("XX… is not"), "{shown}");
    }

    #[test]
    fn every_deckhand_variable_the_sources_name_is_known() {
        // The agent's and the log pipeline's sources: a variable read anywhere in them
        // and missing from the flags would be reported as unknown.
        let known = known_variables();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in [
            "agent/src",
            "agent/src/secrets",
            "logship/src",
            "logship/src/sanitize",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 10, "{files:?}");
        let mut missing = std::collections::BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // What the agent reads, not what tests make up.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (at, _) in code.match_indices(OWN_PREFIX) {
                let name: String = code[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                // `DECKHAND_` alone is the prefix; `DECKHAND_LOG_` a family in prose.
                if name.ends_with('_') || name.starts_with(TEST_PREFIX) {
                    continue;
                }
                if !known.contains(&name) {
                    missing.insert(format!("{name} ({})", file.display()));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
    }

    /// The refusal a stop over Fargate's limit gets on Fargate, as the settings name it.
    fn refusal(argv: &[&'static str]) -> Invalid {
        let s = parse_ok(argv);
        s.stop_budget(&LaunchType::Fargate).unwrap_err()
    }

    #[test]
    fn a_stop_delay_that_cannot_fit_fargates_stop_timeout_is_refused_on_fargate() {
        let s = parse_ok(&["agent", "true"]);
        assert_eq!(s.supervision.stop_delay, Duration::ZERO);
        assert_eq!(s.stop_over_fargate_limit, None);
        let s = parse_ok(&["agent", "--stop-delay", "95s", "true"]);
        assert_eq!(s.supervision.stop_delay, Duration::from_secs(95));
        assert_eq!(s.stop_over_fargate_limit, None);
        assert!(s.stop_budget(&LaunchType::Fargate).is_ok());

        // The settings cannot know the launch type: they are read, the start decides.
        let argv = ["agent", "--stop-delay", "100s", "true"];
        let e = refusal(&argv);
        assert_eq!(
            ParseError::Invalid(vec![e.clone()]).exit_code(),
            exit::USAGE
        );
        assert_eq!(
            e.to_string(),
            "--stop-delay=\"100s\" is not valid: with DECKHAND_STOP_TIMEOUT=\"25s\" the stop delay and the stop timeout add up to 2m 5s, longer than ECS waits for a container to stop on Fargate, where this task runs (stopTimeout is at most 2m on Fargate): shorten one of the two so that together they take at most 2m (1m 55s leaves 5s for leftovers and the last log flush)"
        );

        let env: std::collections::BTreeMap<String, String> = [
            ("DECKHAND_STOP_DELAY".to_owned(), "1m".to_owned()),
            ("DECKHAND_STOP_TIMEOUT".to_owned(), "61s".to_owned()),
        ]
        .into();
        let s = parse_with(["agent", "true"], &env).unwrap();
        let e = s.stop_budget(&LaunchType::Fargate).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "DECKHAND_STOP_DELAY=\"1m\" is not valid: with DECKHAND_STOP_TIMEOUT=\"61s\" the stop delay and the stop timeout add up to 2m 1s"
            ),
            "{e}"
        );
        // Without a delay the stop timeout alone is not checked (outside ECS it may be
        // anything `docker stop -t` gives).
        let s = parse_ok(&["agent", "--stop-timeout", "10m", "true"]);
        assert_eq!(s.stop_budget(&LaunchType::Fargate), Ok(vec![]));
        let e = parse_err(&["agent", "--stop-delay", "soon", "true"]);
        assert_eq!(e.exit_code(), exit::USAGE);
    }

    /// `18446744073709551615s` (or any stop of more than about 584 billion years) made
    /// the start panic adding the stop delay, the stop timeout and the flush margin: a
    /// duration past the limit every setting has is a usage error.
    #[test]
    fn a_stop_too_long_to_add_up_is_refused_not_a_panic() {
        for name in ["DECKHAND_STOP_TIMEOUT", "DECKHAND_STOP_DELAY"] {
            let env: std::collections::BTreeMap<String, String> =
                [(name.to_owned(), "18446744073709551615s".to_owned())].into();
            let e = parse_with(["agent", "true"], &env).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE);
            let ParseError::Invalid(errors) = e else {
                panic!("not a setting's error")
            };
            assert!(
                errors[0].to_string().starts_with(&format!(
                    "{name}=\"18446744073709551615s\" is not valid: must be at most 365 days"
                )),
                "{}",
                errors[0]
            );
        }
        // The longest of both still adds up, and says what it needs.
        let s = parse_ok(&[
            "agent",
            "--stop-delay",
            "365d",
            "--stop-timeout",
            "365d",
            "true",
        ]);
        assert!(s.supervision.needed_stop_timeout() > Duration::from_secs(2 * 365 * 86_400));
        assert!(s.stop_budget(&LaunchType::Fargate).is_err());
    }

    #[test]
    fn off_fargate_a_stop_over_fargates_limit_is_a_warning_naming_where_which_limit_applies() {
        let s = parse_ok(&["agent", "--stop-delay", "100s", "true"]);
        assert!(s.supervision.depends_on_launch_type());
        let ec2 = s
            .stop_budget(&LaunchType::from_metadata(Some("EC2")))
            .unwrap();
        assert_eq!(
            ec2,
            [
                "DECKHAND_STOP_DELAY (1m 40s) plus DECKHAND_STOP_TIMEOUT (25s) is 2m 5s, more than the 2m Fargate allows for a container's stopTimeout: the task metadata says this task runs on EC2, where the task definition's stopTimeout (or, when it sets none, the ECS container agent's ECS_CONTAINER_STOP_TIMEOUT) is the limit, so the start goes on (on Fargate these settings are refused)",
                // The over-30 s warning stays, asking for what the stop needs.
                "DECKHAND_STOP_DELAY (1m 40s) plus DECKHAND_STOP_TIMEOUT (25s) plus 5s for leftovers and the last log flush is 2m 10s, more than ECS's default stopTimeout (30s): set the container's \"stopTimeout\": 130 in the task definition, or ECS sends SIGKILL before the app has stopped and the logs are flushed",
            ]
        );
        let external = s
            .stop_budget(&LaunchType::from_metadata(Some("EXTERNAL")))
            .unwrap();
        assert!(
            external[0].contains("runs on EXTERNAL, where"),
            "{external:?}"
        );

        let unknown = LaunchType::Unknown("ECS_CONTAINER_METADATA_URI_V4 is not set".into());
        let warnings = s.stop_budget(&unknown).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].ends_with("is 2m 5s, more than the 2m Fargate allows for a container's stopTimeout: the launch type is unknown (ECS_CONTAINER_METADATA_URI_V4 is not set), so the start goes on; on Fargate these settings are refused (exit 64), on EC2 and EXTERNAL the task definition's stopTimeout (or, when it sets none, the ECS container agent's ECS_CONTAINER_STOP_TIMEOUT) is the limit"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].ends_with("set the container's \"stopTimeout\": 130 in the task definition (on Fargate, where 120 is its maximum, set that and shorten DECKHAND_STOP_DELAY or DECKHAND_STOP_TIMEOUT by 10s), or ECS sends SIGKILL before the app has stopped and the logs are flushed"),
            "{warnings:?}"
        );
        // A task document without a launch type is as unknown.
        assert!(matches!(
            LaunchType::from_metadata(None),
            LaunchType::Unknown(_)
        ));
        // The metadata's text is outside input: shown escaped.
        assert_eq!(
            LaunchType::from_metadata(Some("EC2\u{1b}[31m")),
            LaunchType::Other("EC2\\u{1b}[31m".to_owned())
        );
        // Under Fargate's limit the launch type changes nothing, and is not read.
        let s = parse_ok(&["agent", "--stop-delay", "5s", "true"]);
        assert!(!s.supervision.depends_on_launch_type());
        assert!(!parse_ok(&["agent", "true"])
            .supervision
            .depends_on_launch_type());
        for launch in [
            LaunchType::Fargate,
            LaunchType::Other("EC2".into()),
            unknown,
        ] {
            assert_eq!(
                s.stop_budget(&launch).unwrap(),
                s.supervision
                    .stop_budget_warning(&LaunchType::Fargate)
                    .into_iter()
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_stop_longer_than_ecs_default_stop_timeout_is_a_warning_naming_the_fix() {
        let warning = |delay: u64, timeout: u64| {
            Supervision {
                stop_signal: Signal::SIGTERM,
                signal_group: false,
                stop_timeout: Duration::from_secs(timeout),
                stop_delay: Duration::from_secs(delay),
            }
            .stop_budget_warning(&LaunchType::Fargate)
        };
        // No delay: the stop is what it always was.
        assert_eq!(warning(0, 25), None);
        assert_eq!(warning(0, 100), None);
        // 2 + 20 + 5 fits ECS's default 30 s.
        assert_eq!(warning(2, 20), None);
        assert_eq!(warning(5, 20), None);
        assert_eq!(
            warning(5, 25).as_deref(),
            Some("DECKHAND_STOP_DELAY (5s) plus DECKHAND_STOP_TIMEOUT (25s) plus 5s for leftovers and the last log flush is 35s, more than ECS's default stopTimeout (30s): set the container's \"stopTimeout\": 35 in the task definition, or ECS sends SIGKILL before the app has stopped and the logs are flushed")
        );
        // Accepted on Fargate (95 + 25 = 120), but the flush margin no longer fits.
        let short = warning(95, 25).unwrap();
        assert!(
            short.ends_with("set the container's \"stopTimeout\": 120 in the task definition (its maximum on Fargate), and shorten DECKHAND_STOP_DELAY or DECKHAND_STOP_TIMEOUT by 5s, or the last log flush may be cut short"),
            "{short}"
        );
        let fraction = Supervision {
            stop_delay: Duration::from_millis(2500),
            ..parse_ok(&["agent", "true"]).supervision
        };
        assert_eq!(fraction.needed_stop_timeout(), Duration::from_secs(33));
    }

    #[test]
    fn on_a_terminal_the_agent_speaks_text_unless_told() {
        let read = |vars: &[(&str, &str)], terminal: bool| {
            let env: std::collections::BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Settings::read(&env, &[OsString::from("true")], terminal).unwrap()
        };
        let tty = read(&[], true);
        assert_eq!(tty.logs.stdout, StdoutMode::Text);
        assert_eq!(tty.log_format, LogFormat::Text);
        let piped = read(&[], false);
        assert_eq!(piped.logs.stdout, StdoutMode::Json);
        assert_eq!(piped.log_format, LogFormat::Json);
        // Shipping: no stdout copy, the agent's messages for CloudWatch.
        let shipped = read(&[("CLOUDWATCH_LOG_GROUP", "/app")], true);
        assert_eq!(shipped.logs.stdout, StdoutMode::Off);
        assert_eq!(shipped.log_format, LogFormat::Json);
        let forced = read(&[("DECKHAND_LOG_STDOUT", "json")], true);
        assert_eq!(forced.logs.stdout, StdoutMode::Json);
        assert_eq!(forced.log_format, LogFormat::Json);
        let explicit = read(&[("DECKHAND_AGENT_LOG_FORMAT", "json")], true);
        assert_eq!(explicit.logs.stdout, StdoutMode::Text);
        assert_eq!(explicit.log_format, LogFormat::Json);
        let text = read(&[("DECKHAND_LOG_STDOUT", "text")], false);
        assert_eq!(text.log_format, LogFormat::Text);
        let env = std::collections::BTreeMap::from([(
            "DECKHAND_AGENT_LOG_FORMAT".to_owned(),
            "yaml".to_owned(),
        )]);
        let errors = Settings::from_env(&env, &[OsString::from("true")]).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "DECKHAND_AGENT_LOG_FORMAT=\"yaml\" is not valid: must be auto, json or text"
        );
    }

    #[test]
    fn small_parsers() {
        assert_eq!(signal("15"), Ok(Signal::SIGTERM));
        assert_eq!(signal("sigusr1"), Ok(Signal::SIGUSR1));
        assert!(signal("SIGFOO").is_err());
        assert_eq!(on_rotate("ignore"), Ok(OnRotate::Ignore));
    }
}
