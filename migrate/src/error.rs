//! Everything that can stop a command, each with its documented exit code.

use std::path::PathBuf;
use std::time::Duration;

use conventions::exit::migrate as exit;

use crate::session::DbError;
use crate::source::SourceError;

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
    #[error("{}", lost_message(.0))]
    Lost(Box<Lost>),
    #[error("{}", pooled_message(.0))]
    Pooled(Box<Pooled>),
}

/// The migration lock does not keep other runners out: the connection is pooled per
/// transaction, or a proxy moves statements between server connections
/// (`migrate/src/lock.rs`).
#[derive(Debug)]
pub struct Pooled {
    /// "after taking the migration lock", "before applying V2__b".
    pub when: String,
    /// What the check saw: "the lock was taken by server backend pid 812, but this
    /// statement ran on pid 813".
    pub seen: String,
    /// Whether the lock was given back, and if not, how it goes (empty: never taken).
    pub lock: String,
    /// Migrations this run applied before; they stay applied.
    pub applied_before: Vec<String>,
}

fn pooled_message(p: &Pooled) -> String {
    let mut text = format!(
        "refusing to migrate: this connection has no database session of its own ({}: {}); \
         it goes through a transaction-pooling connection (e.g. PgBouncer \
         pool_mode=transaction) or a proxy that moves statements between server connections, \
         where the session advisory lock that makes runners take turns does not keep other \
         runners out; point DATABASE_URL for migrate at the database or a session-mode pool \
         (PgBouncer pool_mode=session)",
        p.when, p.seen
    );
    text.push_str(&applied_before(&p.applied_before));
    if !p.lock.is_empty() {
        text.push_str(&format!("; {}", p.lock));
    }
    text
}

/// The connection broke, or the database stopped answering, in the middle of a
/// command: unlike [`Failure`], nothing says the SQL itself was wrong.
#[derive(Debug)]
pub struct Lost {
    /// "applying V3__add_index (migrations/V3__add_index.sql)", "taking the migration lock".
    pub doing: String,
    /// What the connection did: closed, or said nothing for how long.
    pub reason: String,
    /// What became of the work in flight (empty outside a migration).
    pub outcome: String,
    /// How to find the session the server may still hold (when it stopped answering).
    pub check: Option<String>,
    /// Migrations this run applied before; they stay applied.
    pub applied_before: Vec<String>,
}

fn lost_message(l: &Lost) -> String {
    let mut text = format!("database unreachable while {}: {}", l.doing, l.reason);
    for part in [Some(&l.outcome), l.check.as_ref()].into_iter().flatten() {
        if !part.is_empty() {
            text.push_str(&format!("; {part}"));
        }
    }
    text.push_str(&applied_before(&l.applied_before));
    text.push_str("; run migrate again once the database answers");
    text
}

fn applied_before(labels: &[String]) -> String {
    if labels.is_empty() {
        "; no migration was applied in this run".into()
    } else {
        format!(
            "; applied earlier in this run and kept: {}",
            labels.join(", ")
        )
    }
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
    text.push_str(&applied_before(&f.applied_before));
    text
}

impl Error {
    /// Its code in `conventions::exit::migrate`, as documented in docs/migrate.md (exit codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            // The connection is the deployment's configuration, like DATABASE_URL.
            Error::Config(_) | Error::Source(_) | Error::Pooled(_) => exit::USAGE,
            Error::Unreachable { .. } | Error::Lost(_) => exit::UNREACHABLE,
            Error::LockTimeout { .. } => exit::LOCK_TIMEOUT,
            Error::Drift(_) => exit::DRIFT,
            Error::MigrationFailed(_) | Error::Database { .. } => exit::MIGRATION_FAILED,
        }
    }

    /// A round trip outside a migration's SQL failed: a lost connection is exit 5,
    /// anything else exit 1.
    pub(crate) fn db(doing: &str, e: &DbError) -> Self {
        if e.connection_lost() {
            Error::Lost(Box::new(Lost {
                doing: doing.into(),
                reason: lost_reason(e),
                outcome: String::new(),
                check: e.check(),
                applied_before: Vec::new(),
            }))
        } else {
            Error::Database {
                doing: doing.into(),
                reason: e.to_string(),
            }
        }
    }

    /// Records the migrations this run applied before the one that stopped it.
    pub(crate) fn after(mut self, applied: Vec<String>) -> Self {
        match &mut self {
            Error::MigrationFailed(f) => f.applied_before = applied,
            Error::Lost(l) => l.applied_before = applied,
            Error::Pooled(p) => p.applied_before = applied,
            _ => {}
        }
        self
    }
}

/// The `reason` of a [`Lost`]: the watchdog's message as it is, a broken connection
/// said as such.
pub(crate) fn lost_reason(e: &DbError) -> String {
    match e {
        DbError::Postgres(_) => format!("the connection was lost: {e}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_database_is_exit_5_with_how_to_check() {
        let silent = DbError::Silent {
            waited: Duration::from_secs(610),
            statements: 1,
            statement_timeout: Duration::from_secs(600),
            check: "to check, find its session".into(),
        };
        let e = Error::db("taking the migration lock", &silent);
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
        let e = e.after(vec!["V1__a".into()]);
        assert_eq!(
            e.to_string(),
            "database unreachable while taking the migration lock: the database stopped \
             answering: no reply within 610 s (1 statement(s) at --statement-timeout 10m \
             each, plus 10 s grace), so migrate stopped waiting; to check, find its session; \
             applied earlier in this run and kept: V1__a; run migrate again once the \
             database answers"
        );
        let skipped = Error::db("releasing the lock", &DbError::Abandoned);
        assert_eq!(skipped.exit_code(), exit::UNREACHABLE);
    }

    #[test]
    fn a_pooled_connection_is_exit_2_with_the_cause_and_the_fix() {
        let e = Error::Pooled(Box::new(Pooled {
            when: "before applying V2__b".into(),
            seen: "the lock was taken by server backend pid 812, but this statement ran on \
                   pid 813"
                .into(),
            lock: "the migration lock was released".into(),
            applied_before: Vec::new(),
        }));
        assert_eq!(e.exit_code(), exit::USAGE);
        let e = e.after(vec!["V1__a".into()]);
        assert_eq!(
            e.to_string(),
            "refusing to migrate: this connection has no database session of its own \
             (before applying V2__b: the lock was taken by server backend pid 812, but this \
             statement ran on pid 813); it goes through a transaction-pooling connection \
             (e.g. PgBouncer pool_mode=transaction) or a proxy that moves statements between \
             server connections, where the session advisory lock that makes runners take \
             turns does not keep other runners out; point DATABASE_URL for migrate at the \
             database or a session-mode pool (PgBouncer pool_mode=session); applied earlier \
             in this run and kept: V1__a; the migration lock was released"
        );
    }
}
