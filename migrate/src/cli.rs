//! The `migrate` command line: flags (each with an environment variable), output for
//! people and for CloudWatch, and the mapping of results to exit codes.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pgconn::{PgConfig, ProcessEnv};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::{exit, Error, Retry, Settings, State};

/// `application_name` prefix; `HOSTNAME` (the task's host name on ECS) is appended.
const APPLICATION_NAME: &str = "deckhand-migrate";
/// PostgreSQL truncates `application_name` to NAMEDATALEN - 1 bytes.
const MAX_APPLICATION_NAME: usize = 63;

/// Versioned SQL migrations for PostgreSQL, applied exactly once even when many tasks
/// start together.
///
/// Connection: DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full&sslrootcert=/path/ca.pem),
/// else PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE PGSSLROOTCERT.
///
/// Exit codes: 0 done or nothing to do, 1 a migration failed, 2 usage error, 3 lock not
/// acquired in time, 4 drift (modified or missing migrations), 5 database unreachable,
/// 6 pending (status --exit-code only).
#[derive(Debug, Parser)]
#[command(name = "migrate", version, max_term_width = 100)]
pub struct Cli {
    /// Output format of progress and errors on stderr: text for people, json for CloudWatch.
    #[arg(
        long,
        global = true,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, in version order, under the migration lock.
    Up {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        envelope: EnvelopeArgs,
        /// Apply up to and including this version only.
        #[arg(long, env = "MIGRATE_TARGET")]
        target: Option<i32>,
        /// Apply a pending migration that is older than the newest applied one.
        #[arg(long, env = "MIGRATE_OUT_OF_ORDER")]
        out_of_order: bool,
    },
    /// Show every migration: version, name, applied_on, state (applied, pending, modified, missing).
    Status {
        #[command(flatten)]
        common: Common,
        /// Print JSON instead of a table.
        #[arg(long, env = "MIGRATE_STATUS_JSON")]
        json: bool,
        /// Exit 6 when migrations are pending and 4 on drift, instead of 0.
        #[arg(long, env = "MIGRATE_STATUS_EXIT_CODE")]
        exit_code: bool,
    },
    /// Show what `up` would apply, with the first lines of each file; applies nothing.
    Plan {
        #[command(flatten)]
        common: Common,
        /// Plan up to and including this version only.
        #[arg(long, env = "MIGRATE_TARGET")]
        target: Option<i32>,
        /// Plan a pending migration that is older than the newest applied one.
        #[arg(long, env = "MIGRATE_OUT_OF_ORDER")]
        out_of_order: bool,
    },
    /// Revert the newest N applied migrations with their V<N>__<NAME>.down.sql files.
    Down {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        envelope: EnvelopeArgs,
        /// How many applied migrations to revert, newest first.
        #[arg(long, env = "MIGRATE_STEPS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
    },
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Folder with the V<N>__<NAME>.sql files (searched recursively).
    #[arg(long, env = "MIGRATIONS_DIR", default_value = "./migrations")]
    pub dir: PathBuf,
    /// Connection retries after the first attempt (exponential backoff with jitter).
    #[arg(long, env = "MIGRATE_CONNECT_RETRIES", default_value_t = 3)]
    pub connect_retries: u32,
    /// Keep retrying the connection for up to this long (e.g. 2m), instead of a number of retries.
    #[arg(long, env = "MIGRATE_WAIT", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Carry on when an applied migration's file is missing (it is reported as a warning).
    #[arg(long, env = "MIGRATE_ALLOW_MISSING")]
    pub allow_missing: bool,
}

/// Limits for migration SQL.
#[derive(Debug, Args)]
pub struct EnvelopeArgs {
    /// How long to wait for another runner holding the migration lock.
    #[arg(long, env = "MIGRATE_LOCK_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub lock_timeout: Duration,
    /// PostgreSQL lock_timeout for migration SQL: how long a statement may queue for a table lock.
    #[arg(long, env = "MIGRATE_DDL_LOCK_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub ddl_lock_timeout: Duration,
    /// PostgreSQL statement_timeout for migration SQL; 0s turns it off.
    #[arg(long, env = "MIGRATE_STATEMENT_TIMEOUT", default_value = "10m", value_parser = duration)]
    pub statement_timeout: Duration,
    /// Retries (with backoff) of a migration that failed on lock_timeout (55P03) or a deadlock (40P01).
    #[arg(long, env = "MIGRATE_LOCK_RETRIES", default_value_t = 3)]
    pub lock_retries: u32,
}

/// Parses `500ms`, `10s`, `5m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write a duration like 500ms, 10s or 5m"))
}

/// The settings `migrate up` uses, from `MIGRATIONS_DIR` and the `MIGRATE_*` variables
/// alone (the agent's `DECKHAND_MIGRATE_ON_START` runs `up` with them).
pub fn up_settings_from_env() -> Result<Settings, clap::Error> {
    let cli = Cli::try_parse_from(["migrate", "up"])?;
    let Command::Up {
        common,
        envelope,
        target,
        out_of_order,
    } = cli.command
    else {
        return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
    };
    Ok(Settings {
        target,
        out_of_order,
        ..settings(common, Some(envelope))
    })
}

/// Runs the parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    match execute(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(exit_code = e.exit_code(), "{e}");
            e.exit_code()
        }
    }
}

async fn execute(command: Command) -> Result<i32, Error> {
    let db = database()?;
    match command {
        Command::Up {
            common,
            envelope,
            target,
            out_of_order,
        } => {
            let settings = Settings {
                target,
                out_of_order,
                ..settings(common, Some(envelope))
            };
            let report = crate::up(&db, &settings).await?;
            if !report.applied.is_empty() {
                let total: u64 = report.applied.iter().map(|d| d.millis).sum();
                tracing::info!(
                    applied = report.applied.len(),
                    current = report.current,
                    "applied {} migration(s) in {total} ms; the database is at version {}",
                    report.applied.len(),
                    report.current.map_or("none".into(), |v| v.to_string())
                );
            }
            Ok(exit::OK)
        }
        Command::Down {
            common,
            envelope,
            steps,
        } => {
            let reverted = crate::down(&db, &settings(common, Some(envelope)), steps).await?;
            if !reverted.is_empty() {
                tracing::info!(
                    reverted = reverted.len(),
                    "reverted {} migration(s)",
                    reverted.len()
                );
            }
            Ok(exit::OK)
        }
        Command::Status {
            common,
            json,
            exit_code,
        } => {
            let rows = crate::status(&db, &settings(common, None)).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                let _ = write!(out, "{}", Table(&rows));
            }
            let drift = rows
                .iter()
                .any(|r| matches!(r.state, State::Modified | State::Missing));
            let pending = rows.iter().any(|r| r.state == State::Pending);
            Ok(match (exit_code, drift, pending) {
                (true, true, _) => exit::DRIFT,
                (true, false, true) => exit::PENDING,
                _ => exit::OK,
            })
        }
        Command::Plan {
            common,
            target,
            out_of_order,
        } => {
            let settings = Settings {
                target,
                out_of_order,
                ..settings(common, None)
            };
            let todo = crate::plan(&db, &settings).await?;
            let mut out = std::io::stdout().lock();
            if todo.is_empty() {
                let _ = writeln!(out, "nothing to apply");
            }
            for f in &todo {
                let mode = if f.no_transaction {
                    ", no transaction"
                } else {
                    ""
                };
                let _ = writeln!(out, "{} ({}{mode})", f.label(), f.path.display());
                for line in f.sql.lines().filter(|l| !l.trim().is_empty()).take(5) {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Ok(exit::OK)
        }
    }
}

fn settings(common: Common, envelope: Option<EnvelopeArgs>) -> Settings {
    let defaults = Settings::default();
    let mut s = Settings {
        dir: common.dir,
        connect: Retry {
            retries: common.connect_retries,
            wait: common.wait,
        },
        allow_missing: common.allow_missing,
        ..defaults
    };
    if let Some(e) = envelope {
        s.lock_timeout = e.lock_timeout;
        s.ddl_lock_timeout = e.ddl_lock_timeout;
        s.statement_timeout = e.statement_timeout;
        s.lock_retries = e.lock_retries;
    }
    s
}

/// The connection settings, with an `application_name` that names this runner.
fn database() -> Result<PgConfig, Error> {
    let db = PgConfig::from_env(&ProcessEnv)
        .map_err(|e| Error::Config(e.to_string()))?
        .ok_or_else(|| {
            Error::Config(
                "no database configured: set DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB) \
                 or PGHOST, PGUSER, PGPASSWORD and PGDATABASE"
                    .into(),
            )
        })?;
    for param in &db.ignored_params {
        tracing::warn!(parameter = %param, "a DATABASE_URL parameter is not used by migrate and is ignored: {param}");
    }
    let mut name = match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => format!("{APPLICATION_NAME}/{host}"),
        _ => APPLICATION_NAME.to_owned(),
    };
    if name.len() > MAX_APPLICATION_NAME {
        let mut cut = MAX_APPLICATION_NAME;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    Ok(db.with_default_application_name(&name))
}

/// The `status` table.
struct Table<'a>(&'a [crate::StatusRow]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no migrations found and none applied");
        }
        let name_w = self
            .0
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let on_w = self
            .0
            .iter()
            .filter_map(|r| r.applied_on.as_ref().map(String::len))
            .max()
            .unwrap_or(10)
            .max(10);
        writeln!(
            f,
            "{:>7}  {:<name_w$}  {:<on_w$}  STATE",
            "VERSION", "NAME", "APPLIED ON"
        )?;
        for r in self.0 {
            writeln!(
                f,
                "{:>7}  {:<name_w$}  {:<on_w$}  {}",
                r.version,
                r.name,
                r.applied_on.as_deref().unwrap_or("-"),
                r.state.as_str()
            )?;
        }
        Ok(())
    }
}

/// Installs the stderr logger: `migrate: message` lines for people, or one JSON object
/// per event (with its fields) for CloudWatch.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIGRATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.event_format(Plain).init(),
    }
}

/// `migrate: applying V3__add_index ... ok (12 ms)`; warnings and errors say so.
struct Plain;

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
        let level = *event.metadata().level();
        let prefix = if level == tracing::Level::ERROR {
            "error: "
        } else if level == tracing::Level::WARN {
            "warning: "
        } else {
            ""
        };
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        writeln!(w, "migrate: {prefix}{}", message.0)
    }
}

/// Keeps only the `message` field: the text already says what the fields say.
struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_humane() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert!(duration("5 parsecs").unwrap_err().contains("like 500ms"));
    }

    #[test]
    fn every_flag_has_an_env_var() {
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_env().is_some(),
                    "{} --{id} has no env var",
                    sub.get_name()
                );
            }
        }
    }
}
