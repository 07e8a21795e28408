//! The `healthcheck` command line: subcommands, their flags and `--help`. The values are
//! read through [`conventions::CommandLine`] by [`crate::Config::from_env`] and
//! [`crate::ProbeConfig::from_env`]; [`crate::entry`] is the glue.
//!
//! Exit codes (`conventions::exit::healthcheck`): `serve` 0 after draining, 1 when it
//! cannot listen or start, 2 for a bad setting; `probe` 0 healthy (2xx), 1 unhealthy
//! (anything else), 2 for a bad setting.

use clap::{Parser, Subcommand};

use crate::config::{ProbeArgs, ServeArgs};

/// The /health server for the ALB, and a probe for the container health check.
///
/// Database: DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full),
/// else PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE PGSSLROOTCERT; with neither,
/// the database check is omitted.
#[derive(Debug, Parser)]
#[command(
    name = "healthcheck",
    version,
    max_term_width = 100,
    after_help = "Log filter: HEALTH_LOG (e.g. debug; default info)."
)]
pub struct Cli {
    #[command(flatten)]
    pub log_format: conventions::logging::LogFormatArg,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve GET /health (readiness: database, memory, app, schema version) and
    /// /health/live (liveness).
    /// Exit codes: 0 stopped after draining (SIGTERM), 1 cannot listen, 2 bad setting.
    Serve(Box<ServeArgs>),
    /// GET a URL once: exit 0 on a 2xx answer, 1 otherwise (refused, timeout, 5xx), with
    /// one line saying why. Exit 2 for a bad setting.
    Probe(ProbeArgs),
}
