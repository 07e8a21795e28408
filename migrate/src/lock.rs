//! The advisory lock that makes concurrent runners take turns, and the checks that it
//! really keeps them out.
//!
//! `pg_advisory_lock` would block inside the server, and a session blocked there can
//! deadlock with another runner's `CREATE INDEX CONCURRENTLY` (flyway #1654,
//! golang-migrate #960). So we poll `pg_try_advisory_lock` with a deadline and, while
//! waiting, say who holds the lock.
//!
//! A session advisory lock belongs to one server backend. Behind a transaction-pooling
//! connection (PgBouncer `pool_mode=transaction`) or a proxy that moves statements
//! between server connections, the lock is taken on one backend and the migration may
//! run on another, and other clients' statements run on the backend that holds it: two
//! runners can both "hold" the lock, or a stranded lock blocks every task. So
//! [`take`] checks in `pg_locks` that the backend which answers is the one that took
//! the lock, and that a second connection of ours does not land on it (a transaction
//! pool hands an idle client the backend another client just used); [`Held::check`]
//! repeats the first check before each migration. A failed check is
//! [`Error::Pooled`](crate::Error::Pooled): the command stops before changing anything
//! more. This module is not a detector of poolers in general: a session-mode pool gives
//! each client a backend of its own, which is all the lock needs.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgconn::PgConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage};

use crate::error::Pooled;
use crate::session::{within, DbError, Session, GRACE};
use crate::{connect, Error, Retry};

/// The lock's two-part key, `"deck"` and `"migr"` in ASCII. Advisory locks are per
/// database, so runners against different databases never wait for each other.
const KEY: (i32, i32) = (0x6465_636b, 0x6d69_6772);
/// How often to try again (plus jitter, so twenty runners do not poll in step).
const POLL: Duration = Duration::from_millis(200);
/// How often to repeat the "waiting for …" message.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Connection retries for the second connection of the check: it is opened while we
/// hold the lock, so it must not keep the other runners waiting for long.
const PROBE_RETRY: Retry = Retry {
    retries: 1,
    wait: None,
};
/// How many times a refused run tries to unlock on the backend that holds its lock (a
/// transaction pool may send each try to another backend; PgBouncer with
/// `server_round_robin` takes its idle server connections in turn, so reaching one
/// takes as many tries as the pool has: its `default_pool_size` is 20, and a pool
/// grows while transactions overlap). Each try is one short statement; they stop at
/// the first that lands.
const UNLOCK_TRIES: usize = 64;

/// The `pg_locks` row of the migration lock in the current database, held by `pid` (an
/// SQL expression). `pg_try_advisory_lock(int4, int4)` puts the first key in `classid`,
/// the second in `objid` and 2 in `objsubid` (the `bigint` form would put its high and
/// low halves there, with `objsubid` 1). The keys are positive, so they compare with
/// the `oid` columns as they are.
fn lock_row(pid: &str) -> String {
    format!(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {pid} \
           AND classid = {} AND objid = {} AND objsubid = 2 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        KEY.0, KEY.1
    )
}

/// `pg_backend_pid()` of the backend that ran the statement, and whether that backend
/// holds the migration lock: one statement, so one backend answers both.
pub(crate) fn whoami() -> String {
    format!(
        "SELECT pg_backend_pid(), EXISTS ({})",
        lock_row("pg_backend_pid()")
    )
}

/// What is wrong, if anything, with the lock check's answer ([`whoami`]) as the simple
/// query protocol gives it, as text: `pid`, the backend that ran it, and `holds`, `t`
/// or `f`, whether that backend holds the migration lock that backend `taken_by` took.
/// `None` when it is that backend and it holds the lock; a refusal's reason otherwise,
/// values that are not a pid and a boolean included (they are named, shortened).
pub fn judge_answer(taken_by: i32, pid: Option<&str>, holds: Option<&str>) -> Option<String> {
    match (pid.and_then(|p| p.parse().ok()), holds) {
        (Some(pid), Some(h @ ("t" | "f"))) => verdict(taken_by, pid, h == "t"),
        _ => Some(format!(
            "the lock check's statement returned {} and {} where a backend pid and a boolean \
             were expected",
            quoted(pid),
            quoted(holds)
        )),
    }
}

/// The refusal's reason when the statement that answered ran on backend `pid`, which
/// does (`holds`) or does not hold the lock that backend `taken_by` took; `None` when
/// all is well.
fn verdict(taken_by: i32, pid: i32, holds: bool) -> Option<String> {
    if pid != taken_by {
        Some(format!(
            "the lock was taken by server backend pid {taken_by}, but this statement ran on \
             pid {pid}"
        ))
    } else if !holds {
        Some(format!(
            "server backend pid {pid} took the lock but no longer holds it: a statement on \
             that backend released it (a migration that calls pg_advisory_unlock_all() or \
             pg_advisory_unlock() with the migration lock's key, or another client's \
             statements that a pool sent there)"
        ))
    } else {
        None
    }
}

/// The first two columns of a row, as the types the statement asked for: an error, not
/// a panic, when the server sent others.
fn pair<'a, A, B>(row: &'a Row) -> Result<(A, B), tokio_postgres::Error>
where
    A: FromSql<'a>,
    B: FromSql<'a>,
{
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// A value of the server's answer for a message: in quotes, at most 40 characters (on
/// a character boundary), or NULL.
fn quoted(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_owned(),
        Some(v) => {
            let mut short: String = v.chars().take(40).collect();
            if short.len() < v.len() {
                short.push('…');
            }
            format!("{short:?}")
        }
    }
}

/// The migration lock, as taken by one server backend.
#[derive(Debug)]
pub struct Held {
    /// The backend that took the lock: every later statement must run on it.
    pid: i32,
    /// Set once the lock was given back (or given up on), so it is not unlocked twice.
    done: AtomicBool,
}

/// Takes the lock ([`acquire`]), then checks with a second connection that no other
/// client of a pool can reach the backend that holds it: how every command that takes
/// the lock takes it. Costs one more connection, for one statement.
pub async fn take(client: &Session, db: &PgConfig, timeout: Duration) -> Result<Held, Error> {
    match take_unless(client, db, timeout, || async { Ok(None::<Infallible>) }).await? {
        Turn::Held(held) => Ok(held),
        Turn::Needless(never) => match never {},
    }
}

/// How a wait for the lock ended.
pub enum Turn<T> {
    /// The lock is ours, checked as [`take`] checks it.
    Held(Held),
    /// `needless` answered while we waited: the work was done by the runner that held
    /// the lock.
    Needless(T),
}

/// As [`take`], but while another runner holds the lock, asks `needless` after each
/// pause whether there is still anything to do, and stops waiting when it answers:
/// `up` behind a runner that applies what it would have applied is done when that
/// runner commits, not after a turn of its own with the lock.
pub async fn take_unless<T, F, Fut>(
    client: &Session,
    db: &PgConfig,
    timeout: Duration,
    needless: F,
) -> Result<Turn<T>, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let held = match acquire(client, timeout, needless).await? {
        Turn::Held(held) => held,
        Turn::Needless(answer) => return Ok(Turn::Needless(answer)),
    };
    match held.alone(db).await {
        Ok(None) => Ok(Turn::Held(held)),
        Ok(Some(seen)) => Err(held
            .refuse(client, "after taking the migration lock", seen)
            .await),
        Err(e) => {
            held.release(client).await;
            Err(e)
        }
    }
}

/// Takes the lock, or fails with [`Error::LockTimeout`] naming the holder, or stops
/// when `needless` answers after a pause; then checks that the backend which answers
/// holds it (else [`Error::Pooled`]).
async fn acquire<T, F, Fut>(
    client: &Session,
    timeout: Duration,
    mut needless: F,
) -> Result<Turn<T>, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        if last_report.is_some() {
            if let Some(answer) = needless().await? {
                return Ok(Turn::Needless(answer));
            }
        }
        let row = match client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2), pg_backend_pid()",
                &[(&KEY.0, Type::INT4), (&KEY.1, Type::INT4)],
            )
            .await
        {
            Ok(row) => row,
            Err(e) => {
                return Err(statement_moved(&e).map_or_else(
                    || Error::db("taking the migration lock", &e),
                    |seen| pooled("while taking the migration lock", seen, String::new()),
                ))
            }
        };
        let (got, pid): (bool, i32) =
            pair(&row).map_err(|e| Error::db("taking the migration lock", &DbError::from(e)))?;
        if got {
            if last_report.is_some() {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "acquired the migration lock after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            let held = Held {
                pid,
                done: AtomicBool::new(false),
            };
            held.check(client, "after taking the migration lock")
                .await?;
            return Ok(Turn::Held(held));
        }
        let holder = holder(client).await?;
        if last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            tracing::warn!(
                holder = %holder,
                waited_ms = started.elapsed().as_millis() as u64,
                "waiting for the migration lock, held by {holder}"
            );
            last_report = Some(Instant::now());
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::LockTimeout { timeout, holder });
        }
        let jitter = Duration::from_millis(fastrand::u64(0..=POLL.as_millis() as u64));
        tokio::time::sleep((POLL + jitter).min(left)).await;
    }
}

impl Held {
    /// Checks that the statement runs on the backend that took the lock and that it
    /// still holds it; `up` and `down` call it before each migration that runs without
    /// a transaction (one in a transaction asks in the round trip of its `BEGIN`,
    /// [`Held::judge`]). On failure, gives the lock back as well as it can and returns
    /// [`Error::Pooled`] (`when`: "before applying V2__b").
    pub async fn check(&self, client: &Session, when: &str) -> Result<(), Error> {
        let seen = match client.query_one(&whoami(), &[]).await {
            Ok(row) => {
                let (pid, holds) = pair(&row).map_err(|e| Error::db(when, &DbError::from(e)))?;
                match verdict(self.pid, pid, holds) {
                    Some(seen) => seen,
                    None => return Ok(()),
                }
            }
            Err(e) => match statement_moved(&e) {
                Some(seen) => seen,
                None => return Err(Error::db(when, &e)),
            },
        };
        Err(self.refuse(client, when, seen).await)
    }

    /// What is wrong, if anything, with the answer to [`whoami`] asked as the last
    /// statement of a simple query (a migration's `BEGIN` and settings): its one row
    /// ([`judge_answer`]), or none, which is refused as well.
    pub(crate) fn judge(&self, answer: &[SimpleQueryMessage]) -> Option<String> {
        let row = answer.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        match row.map(|row| (row.try_get(0), row.try_get(1), row.len())) {
            Some((Ok(pid), Ok(holds), _)) => judge_answer(self.pid, pid, holds),
            Some((_, _, columns)) => Some(format!(
                "the lock check's statement returned {columns} column(s) where 2 were expected"
            )),
            None => Some("the lock check's statement returned no row".to_owned()),
        }
    }

    /// Gives the lock back: unlocks only on the backend that took it, so a statement
    /// that a pool sent elsewhere never releases another runner's lock (ending the
    /// session releases it too).
    pub async fn release(&self, client: &Session) {
        if self.done.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Err(e) = client.batch_execute(&self.unlock()).await {
            tracing::debug!(error = %e, "could not release the migration lock ({e}); the session end will");
        }
    }

    /// The check with a second connection: its statement must not run on the backend
    /// that holds our lock. A direct connection or a session pool gives it a backend of
    /// its own; a transaction pool hands it an idle one, first of all the one our last
    /// statement just gave back (PgBouncer reuses the most recently used). `Ok(Some)`
    /// says what was seen when it did.
    async fn alone(&self, db: &PgConfig) -> Result<Option<String>, Error> {
        const DOING: &str =
            "checking with a second connection that the lock's session is not shared";
        let probe = connect::connect(db, PROBE_RETRY)
            .await
            .map_err(|e| match e {
                Error::Unreachable {
                    target,
                    attempts,
                    reason,
                } => Error::Unreachable {
                    target,
                    attempts,
                    reason: format!("{reason} (while {DOING})"),
                },
                e => e,
            })?;
        let row = match within(Some(GRACE), probe.query_typed_one(&whoami(), &[])).await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => {
                let e = DbError::Postgres(e);
                return match statement_moved(&e) {
                    Some(seen) => Ok(Some(seen)),
                    None => Err(Error::db(DOING, &e)),
                };
            }
            Err(_) => {
                return Err(Error::Unreachable {
                    target: db.to_string(),
                    attempts: 1,
                    reason: format!("no answer within {} s while {DOING}", GRACE.as_secs()),
                })
            }
        };
        let (pid, holds): (i32, bool) =
            pair(&row).map_err(|e| Error::db(DOING, &DbError::from(e)))?;
        Ok((pid == self.pid || holds).then(|| {
            format!(
                "a second connection of migrate ran its statement on server backend pid \
                 {pid}, the one that holds the lock"
            )
        }))
    }

    /// Stops the command: gives the lock back on its backend if a statement still gets
    /// there, and says whether it did.
    pub(crate) async fn refuse(&self, client: &Session, when: &str, seen: String) -> Error {
        let mut released = false;
        if !self.done.swap(true, Ordering::Relaxed) {
            for _ in 0..UNLOCK_TRIES {
                match client.batch_execute(&self.unlock()).await {
                    Ok(()) => {
                        released = true;
                        break;
                    }
                    Err(e) if e.connection_lost() => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "could not release the migration lock ({e})")
                    }
                }
            }
            // Any backend can tell whether that one still holds it.
            let gone = format!(
                "DO $$ BEGIN IF EXISTS ({}) THEN RAISE EXCEPTION 'still held'; END IF; END $$",
                lock_row(&self.pid.to_string())
            );
            released = released || client.batch_execute(&gone).await.is_ok();
        }
        let lock = if released {
            "the migration lock was released".to_owned()
        } else {
            format!(
                "the migration lock may stay held by server backend pid {pid} until the \
                 pooler closes that server connection (PgBouncer server_idle_timeout, \
                 server_lifetime) or it is ended directly on the database with \
                 SELECT pg_terminate_backend({pid})",
                pid = self.pid
            )
        };
        pooled(when, seen, lock)
    }

    /// Unlocks when the statement runs on the backend that took the lock, else fails.
    /// One message of the simple query protocol: a pool that moves statements cannot
    /// split it (a prepared statement's parse and execution can land on two backends).
    fn unlock(&self) -> String {
        format!(
            "DO $$ BEGIN IF pg_backend_pid() <> {pid} THEN RAISE EXCEPTION 'backend %, not \
             backend {pid}, which holds the migration lock', pg_backend_pid(); END IF; \
             PERFORM pg_advisory_unlock({}, {}); END $$",
            KEY.0,
            KEY.1,
            pid = self.pid
        )
    }
}

fn pooled(when: &str, seen: String, lock: String) -> Error {
    Error::Pooled(Box::new(Pooled {
        when: when.to_owned(),
        seen,
        lock,
        applied_before: Vec::new(),
    }))
}

/// A prepared statement that vanished between the messages of one query (SQLSTATE
/// 26000), or one left on the backend by another client (42P05: tokio-postgres names
/// them `s0`, `s1`, … per connection): the server connection changed under the client,
/// the way a transaction pool that does not track prepared statements (PgBouncer before
/// 1.21) shows itself.
fn statement_moved(e: &DbError) -> Option<String> {
    let DbError::Postgres(pg) = e else {
        return None;
    };
    let what = match pg.code()? {
        c if *c == SqlState::INVALID_SQL_STATEMENT_NAME => {
            "a prepared statement vanished between two messages of one query"
        }
        c if *c == SqlState::DUPLICATE_PSTATEMENT => {
            "the server already had a prepared statement of another client under this name"
        }
        _ => return None,
    };
    Some(format!("{what} ({})", pgconn::describe(pg)))
}

/// "pid 4242 (application_name=deckhand-migrate/ip-10-0-1-5, client 10.0.1.5, connected
/// since 2026-11-23T10:00:00Z, state active)".
async fn holder(client: &Session) -> Result<String, Error> {
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), \
                coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'an unknown time'), \
                coalesce(a.state, 'unknown') \
         FROM pg_stat_activity a WHERE EXISTS ({})",
        lock_row("a.pid")
    );
    Ok(match client.query_opt(&sql, &[]).await {
        Ok(Some(row)) => {
            let text = |i: usize| {
                row.try_get::<_, String>(i)
                    .unwrap_or_else(|_| "unknown".into())
            };
            format!(
                "pid {} (application_name={}, client {}, connected since {}, state {})",
                row.try_get::<_, i32>(0).unwrap_or_default(),
                text(1),
                text(2),
                text(3),
                text(4),
            )
        }
        Ok(None) => "another session (it released the lock meanwhile)".into(),
        Err(e) if e.connection_lost() => {
            return Err(Error::db("waiting for the migration lock", &e))
        }
        Err(e) => format!("another session (could not read pg_stat_activity: {e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_lock_checks_answer_as_text_is_judged() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("812"), Some("t"), None),
            (
                Some("813"),
                Some("t"),
                Some("taken by server backend pid 812, but this statement ran on pid 813"),
            ),
            (
                Some("812"),
                Some("f"),
                Some("server backend pid 812 took the lock but no longer holds it"),
            ),
            (
                Some("812"),
                Some("true"),
                Some("returned \"812\" and \"true\" where"),
            ),
            (Some(" 812"), Some("t"), Some("returned \" 812\" and \"t\"")),
            (
                Some("99999999999"),
                Some("t"),
                Some("returned \"99999999999\""),
            ),
            (None, Some("t"), Some("returned NULL and \"t\"")),
            (Some("812"), None, Some("returned \"812\" and NULL")),
        ];
        for &(pid, holds, want) in cases {
            let got = judge_answer(812, pid, holds);
            match want {
                None => assert_eq!(got, None, "{pid:?} {holds:?}"),
                Some(part) => {
                    let got = got.unwrap_or_default();
                    assert!(got.contains(part), "{pid:?} {holds:?}: {got}");
                }
            }
        }
        // A long value is shortened on a character boundary.
        let long = "é".repeat(100);
        let said = judge_answer(812, Some(&long), Some("t")).unwrap_or_default();
        assert!(said.contains(&format!("\"{}…\"", "é".repeat(40))), "{said}");
        assert!(!said.contains(&"é".repeat(41)), "{said}");
    }

    proptest! {
        #[test]
        fn any_answer_is_accepted_only_from_the_lock_holder_holding_it(
            taken_by in any::<i32>(),
            pid in proptest::option::of(prop_oneof![
                any::<i32>().prop_map(|p| p.to_string()),
                ".{0,80}",
            ]),
            holds in proptest::option::of(prop_oneof![Just("t".to_owned()), Just("f".to_owned()), ".{0,80}"]),
            same in any::<bool>(),
        ) {
            let pid = if same { Some(taken_by.to_string()) } else { pid };
            let got = judge_answer(taken_by, pid.as_deref(), holds.as_deref());
            let fine = pid.as_deref().and_then(|p| p.parse::<i32>().ok()) == Some(taken_by)
                && holds.as_deref() == Some("t");
            prop_assert_eq!(got.is_none(), fine, "{:?}", got);
            if let Some(said) = got {
                // Each value is named by at most 40 of its characters, escaped.
                prop_assert!(said.len() < 1_200, "{}", said);
            }
        }
    }
}
