//! The one connection a command works through, with a client-side watchdog on every
//! round trip.
//!
//! PostgreSQL's `statement_timeout` bounds a statement only while the server can still
//! answer. A frozen server (a paused VM, a storage stall, a network path that drops
//! packets while the TCP connection stays up) answers nothing, not even the timeout's
//! error, and tokio-postgres would wait for ever. So every round trip (each migration's
//! SQL, the lock polling, the history reads and writes) goes through [`Session`], which
//! gives it what the server-side limit allows plus [`GRACE`], then declares the database
//! unreachable. The same bound, through [`within`], caps a connection attempt whose
//! startup never completes.
//!
//! Not a pool and not a reconnect: a lost session ends the command (exit 5), because
//! the open transaction and the advisory lock went with it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, SimpleQueryMessage};

use crate::sql;

/// How much longer than `statement_timeout` allows a round trip may take before the
/// watchdog gives up. The server's own limit should always fire first, because its
/// error is precise (SQLSTATE 57014, the transaction rolled back); the grace covers what
/// comes on top of it: the cancellation reaching a statement that checks for interrupts
/// only now and then, a `COMMIT` waiting for its WAL flush, and the error's way back over
/// a slow network. Ten seconds is far above those on a healthy server and short next to
/// how long a frozen one would otherwise hold a deploy.
pub const GRACE: Duration = Duration::from_secs(10);

/// A round trip that got no answer within its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    pub waited: Duration,
}

/// Runs `work` for at most `limit` (`None`: no limit). The one timeout mechanism of
/// the crate: the session's round trips and the connection attempts both use it.
pub async fn within<T>(
    limit: Option<Duration>,
    work: impl Future<Output = T>,
) -> Result<T, Silent> {
    match limit {
        None => Ok(work.await),
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Silent { waited: limit }),
    }
}

/// Why a round trip failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server answered with an error, or the connection broke (tokio-postgres's
    /// own error).
    #[error("{}", pgconn::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No answer within the watchdog's bound.
    #[error(
        "the database stopped answering: no reply within {} s ({statements} statement(s) at \
         --statement-timeout {} each, plus {} s grace), so migrate stopped waiting",
        .waited.as_secs(),
        humantime::format_duration(*.statement_timeout),
        GRACE.as_secs()
    )]
    Silent {
        waited: Duration,
        statements: usize,
        statement_timeout: Duration,
        /// How an operator finds the session the server may still hold.
        check: String,
    },
    /// Not sent: an earlier round trip on this connection went unanswered, and an answer
    /// to it could still arrive and be taken for this one's.
    #[error("not sent: the database stopped answering an earlier request on this connection")]
    Abandoned,
}

impl DbError {
    /// True when the connection is gone or unusable, as opposed to a statement that
    /// failed on a working connection: the caller stops with exit 5 instead of exit 1.
    pub fn connection_lost(&self) -> bool {
        match self {
            DbError::Silent { .. } | DbError::Abandoned => true,
            DbError::Postgres(e) => match e.code() {
                // 08: connection exception; 57P01-57P03: the server is shutting down,
                // restarting (crash recovery) or not accepting connections.
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
                None => e.is_closed() || caused_by_io(e),
            },
        }
    }

    /// The server's error, when there is one.
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            DbError::Postgres(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_silent(&self) -> bool {
        matches!(self, DbError::Silent { .. })
    }

    /// How to find the session the server may still hold, when it stopped answering.
    pub fn check(&self) -> Option<String> {
        match self {
            DbError::Silent { check, .. } => Some(check.clone()),
            _ => None,
        }
    }
}

fn caused_by_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A connection whose every round trip is bounded by the statements it carries times
/// `statement_timeout`, plus [`GRACE`].
pub struct Session {
    client: Client,
    /// The `statement_timeout` migration SQL runs with; zero turns the watchdog off
    /// together with the server-side limit ("no limit" means no limit).
    statement_timeout: Duration,
    /// The query that finds this session in `pg_stat_activity`, for the message when
    /// the server stops answering.
    check: String,
    /// Set once a round trip went unanswered: later ones fail at once (their answers
    /// could be mixed up with the abandoned one's), so cleanup such as `ROLLBACK` or
    /// releasing the lock does not wait a second time.
    abandoned: AtomicBool,
}

impl Session {
    pub fn new(
        client: Client,
        statement_timeout: Duration,
        application_name: Option<&str>,
    ) -> Self {
        let check = match application_name {
            Some(name) => format!(
                "to check, find its session with SELECT pid, state, xact_start, query FROM \
                 pg_stat_activity WHERE application_name = '{}', and end one that lingers with \
                 SELECT pg_terminate_backend(pid)",
                name.replace('\'', "''")
            ),
            None => "to check, find its session in pg_stat_activity (SELECT pid, state, \
                     xact_start, client_addr, query FROM pg_stat_activity), and end one that \
                     lingers with SELECT pg_terminate_backend(pid)"
                .to_owned(),
        };
        Session {
            client,
            statement_timeout,
            check,
            abandoned: AtomicBool::new(false),
        }
    }

    /// A round trip carrying `statements` statements, each of which the server lets
    /// run for `statement_timeout` (PostgreSQL 13+ times each statement of a
    /// multi-statement query on its own).
    pub async fn round_trip<'s, T, F>(
        &'s self,
        statements: usize,
        call: impl FnOnce(&'s Client) -> F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>> + 's,
    {
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(DbError::Abandoned);
        }
        let statements = statements.max(1);
        let limit = (!self.statement_timeout.is_zero()).then(|| {
            self.statement_timeout
                .saturating_mul(u32::try_from(statements).unwrap_or(u32::MAX))
                .saturating_add(GRACE)
        });
        match within(limit, call(&self.client)).await {
            Ok(result) => result.map_err(DbError::Postgres),
            Err(Silent { waited }) => {
                self.abandoned.store(true, Ordering::Relaxed);
                Err(DbError::Silent {
                    waited,
                    statements,
                    statement_timeout: self.statement_timeout,
                    check: self.check.clone(),
                })
            }
        }
    }

    /// Runs SQL text with the simple query protocol; the bound counts its statements.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), DbError> {
        self.round_trip(sql::split(sql).len(), |c| c.batch_execute(sql))
            .await
    }

    /// Runs SQL text with the simple query protocol and returns what the server sent:
    /// the rows of its statements that return rows, among the other messages.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, DbError> {
        self.round_trip(sql::split(sql).len(), |c| c.simple_query(sql))
            .await
    }

    /// One statement, with each parameter's type given, in one round trip: parse,
    /// bind, describe and execute go out together under one `Sync`, as an unnamed
    /// statement. No named statement is left on the server (nothing for a pool to lose
    /// between two messages), and a query costs one round trip rather than the two of
    /// tokio-postgres's `query` with SQL text (prepare, then execute; the statement's
    /// close goes out with the next request).
    pub async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        self.round_trip(1, |c| c.query_typed(sql, params)).await
    }

    pub async fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        self.round_trip(1, |c| c.query_typed_one(sql, params)).await
    }

    pub async fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        self.round_trip(1, |c| c.query_typed_opt(sql, params)).await
    }
}

/// A query parameter and its PostgreSQL type ([`Session::query`]).
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn within_passes_results_and_bounds_the_wait() {
        assert_eq!(within(None, async { 7 }).await, Ok(7));
        assert_eq!(
            within(Some(Duration::from_secs(5)), async { 7 }).await,
            Ok(7)
        );
        let limit = Duration::from_millis(20);
        let silent = within(Some(limit), std::future::pending::<()>()).await;
        assert_eq!(silent, Err(Silent { waited: limit }));
    }

    #[test]
    fn silence_says_how_the_bound_came_about_and_how_to_check() {
        let e = DbError::Silent {
            waited: Duration::from_secs(14),
            statements: 2,
            statement_timeout: Duration::from_secs(2),
            check: "to check, look".into(),
        };
        assert!(e.connection_lost());
        assert_eq!(
            e.to_string(),
            "the database stopped answering: no reply within 14 s (2 statement(s) at \
             --statement-timeout 2s each, plus 10 s grace), so migrate stopped waiting"
        );
        assert_eq!(e.check().as_deref(), Some("to check, look"));
    }
}
