//! Everything that can stop a command, each with its documented exit code.

use std::path::PathBuf;
use std::time::Duration;

use crate::source::SourceError;

/// Exit codes, as documented in the README.
pub mod exit {
    /// Done, or nothing to do.
    pub const OK: i32 = 0;
    /// A migration failed (and was rolled back, unless it ran without a transaction).
    pub const MIGRATION_FAILED: i32 = 1;
    /// Bad flags, variables or migration files.
    pub const USAGE: i32 = 2;
    /// Another runner held the lock for longer than `--lock-timeout`.
    pub const LOCK_TIMEOUT: i32 = 3;
    /// An applied migration's file changed or disappeared.
    pub const DRIFT: i32 = 4;
    /// The database could not be reached or refused the login.
    pub const UNREACHABLE: i32 = 5;
    /// `status --exit-code` only: migrations are pending.
    pub const PENDING: i32 = 6;
}

/// Why a command stopped. Messages never contain a password: connection settings are
/// shown through `PgConfig`'s password-free `Display` only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot connect to {target} after {attempts} attempt(s): {reason}")]
    Unreachable {
        target: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "the migration lock was not acquired within {timeout:?}: {holder}; \
         wait for that runner, or raise --lock-timeout (MIGRATE_LOCK_TIMEOUT)"
    )]
    LockTimeout { timeout: Duration, holder: String },
    #[error("{0}")]
    Drift(String),
    #[error("{}", failed_message(.0))]
    MigrationFailed(Box<Failure>),
    #[error("database error while {doing}: {reason}")]
    Database { doing: String, reason: String },
}

/// A migration that failed, with everything an operator needs to fix it.
#[derive(Debug)]
pub struct Failure {
    /// `V3__add_index`.
    pub label: String,
    pub path: PathBuf,
    pub sqlstate: Option<String>,
    pub message: String,
    pub line: Option<usize>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Migrations this run applied before the failure; they stay applied.
    pub applied_before: Vec<String>,
    /// What happened to the failing migration's own work.
    pub outcome: String,
}

fn failed_message(f: &Failure) -> String {
    let mut text = format!("migration {} failed", f.label);
    text.push_str(&format!(" ({}", f.path.display()));
    if let Some(line) = f.line {
        text.push_str(&format!(", line {line}"));
    }
    text.push(')');
    if let Some(code) = &f.sqlstate {
        text.push_str(&format!(": SQLSTATE {code}"));
    }
    text.push_str(&format!(": {}", f.message));
    if let Some(detail) = &f.detail {
        text.push_str(&format!(" (detail: {detail})"));
    }
    if let Some(hint) = &f.hint {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text.push_str(&format!("; {}", f.outcome));
    if f.applied_before.is_empty() {
        text.push_str("; no migration was applied in this run");
    } else {
        text.push_str(&format!(
            "; applied earlier in this run and kept: {}",
            f.applied_before.join(", ")
        ));
    }
    text
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Source(_) => exit::USAGE,
            Error::Unreachable { .. } => exit::UNREACHABLE,
            Error::LockTimeout { .. } => exit::LOCK_TIMEOUT,
            Error::Drift(_) => exit::DRIFT,
            Error::MigrationFailed(_) | Error::Database { .. } => exit::MIGRATION_FAILED,
        }
    }

    pub(crate) fn db(doing: &str, e: &tokio_postgres::Error) -> Self {
        Error::Database {
            doing: doing.into(),
            reason: pgconn::describe(e),
        }
    }
}
