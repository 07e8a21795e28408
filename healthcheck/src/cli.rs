//! The `healthcheck` command line: subcommands, log output, exit codes. The binary is
//! glue over this and the library.
//!
//! Exit codes: `serve` 0 after draining, 1 when it cannot listen or start, 2 for a bad
//! setting; `probe` 0 healthy (2xx), 1 unhealthy (anything else), 2 for a bad setting.

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{ProbeArgs, ServeArgs};

/// Exit code: success (`serve` drained and stopped, `probe` got a 2xx).
pub const EXIT_OK: u8 = 0;
/// Exit code: `probe` found the server unhealthy, or `serve` could not run.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a flag or variable is not valid (clap uses 2 for usage errors too).
pub const EXIT_CONFIG: u8 = 2;

/// The /health server for the ALB, and a probe for the container health check.
///
/// Database: DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full),
/// else PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE PGSSLROOTCERT; with neither,
/// the database check is omitted.
#[derive(Debug, Parser)]
#[command(name = "healthcheck", version, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr: text for people, json for CloudWatch.
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
    /// Serve GET /health (readiness: database, memory, app) and /health/live (liveness).
    /// Exit codes: 0 stopped after draining (SIGTERM), 1 cannot listen, 2 bad setting.
    Serve(Box<ServeArgs>),
    /// GET a URL once: exit 0 on a 2xx answer, 1 otherwise (refused, timeout, 5xx), with
    /// one line saying why. Exit 2 for a bad setting.
    Probe(ProbeArgs),
}

/// Logs to stderr; `HEALTH_LOG` filters (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEALTH_LOG")
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
        LogFormat::Text => builder.with_target(false).init(),
    }
}
