//! Running one migration's SQL (up or down) inside the safety envelope: `lock_timeout`
//! and `statement_timeout` for its statements, a retry with backoff when a lock was not
//! available, and the history row written in the same transaction as the change (with
//! the migration's kept SQL text, [`crate::applied_text`]).
//!
//! A statement that fails on a working connection is a [`Failure`] (exit 1); a
//! connection lost or gone silent while the migration was in flight is a [`Lost`]
//! (exit 5) that says what became of the migration's work, and is never retried here:
//! the transaction and the migration lock went with the connection.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use conventions::Backoff;
use tokio_postgres::error::{ErrorPosition, SqlState};

use crate::applied_text::Keeping;
use crate::error::{lost_reason, Failure, Lost};
use crate::lock::{self, Held};
use crate::session::{DbError, Session};
use crate::{history, sql, Error};

/// Pauses before retrying a migration that hit `lock_timeout`: 1 s at first, doubling
/// up to 16 s.
const LOCK_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));

/// Limits for migration SQL.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    /// PostgreSQL `lock_timeout`: how long one statement may wait for a table lock.
    pub ddl_lock_timeout: Duration,
    /// PostgreSQL `statement_timeout` (zero: none).
    pub statement_timeout: Duration,
    /// Retries after a `55P03 lock_not_available` or `40P01 deadlock_detected`.
    pub lock_retries: u32,
}

/// What to do with the history table when the SQL succeeded.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    Applied {
        version: i32,
        name: &'a str,
        checksum: u64,
    },
    Reverted {
        version: i32,
    },
}

/// One migration step to run.
pub struct Step<'a> {
    pub label: &'a str,
    pub path: &'a Path,
    pub sql: &'a str,
    pub no_transaction: bool,
    pub record: Record<'a>,
    /// What becomes of the migration's kept text: written or deleted with the history
    /// row, in the same statement batch, so the two commit together.
    pub keeping: Keeping,
}

/// Runs a step once `lock` is confirmed on the backend that runs it; on failure, a
/// [`Failure`], a [`Lost`] or the lock's refusal ([`Error::Pooled`], `when`: "before
/// applying V2__b"), with everything but the list of migrations applied before it.
pub async fn run(
    client: &Session,
    step: &Step<'_>,
    envelope: &Envelope,
    lock: &Held,
    when: &str,
) -> Result<Duration, Error> {
    let started = Instant::now();
    if step.no_transaction {
        lock.check(client, when).await?;
        run_without_transaction(client, step, envelope).await?;
    } else {
        run_in_transaction(client, step, envelope, lock, when).await?;
    }
    Ok(started.elapsed())
}

fn settings(envelope: &Envelope, scope: &str) -> String {
    format!(
        "SET {scope} lock_timeout = {}; SET {scope} statement_timeout = {}",
        envelope.ddl_lock_timeout.as_millis(),
        envelope.statement_timeout.as_millis()
    )
}

impl Step<'_> {
    /// The history row's SQL, followed by the kept text's when there is any: one
    /// string, sent in one batch, so both commit or neither (in the migration's
    /// transaction, or in the implicit one of a multi-statement query).
    fn record_sql(&self) -> String {
        let (history, text) = match self.record {
            Record::Applied {
                version,
                name,
                checksum,
            } => (
                history::insert_sql(version, name, checksum),
                self.keeping.applied_sql(version, self.sql),
            ),
            Record::Reverted { version } => (
                history::delete_sql(version),
                self.keeping.reverted_sql(version),
            ),
        };
        match text {
            Some(text) => format!("{history}; {text}"),
            None => history,
        }
    }
}

impl Record<'_> {
    fn doing(&self) -> &'static str {
        match self {
            Record::Applied { .. } => "applying",
            Record::Reverted { .. } => "reverting",
        }
    }

    /// What stays true of the history when the step's work did not happen.
    fn not_done(&self, label: &str) -> String {
        match self {
            Record::Applied { .. } => format!("{label} is not recorded as applied"),
            Record::Reverted { .. } => {
                format!("{label} is not reverted and stays recorded as applied")
            }
        }
    }
}

/// BEGIN with the settings and the lock's check, the migration, then the history row
/// with COMMIT: three round trips per migration. The check runs inside the transaction,
/// so it asks the very backend that then runs the migration (a transaction keeps its
/// server connection even in a transaction pool).
async fn run_in_transaction(
    client: &Session,
    step: &Step<'_>,
    envelope: &Envelope,
    lock: &Held,
    when: &str,
) -> Result<(), Error> {
    let begin = format!("BEGIN; {}; {}", settings(envelope, "LOCAL"), lock::whoami());
    let finish = format!("{}; COMMIT", step.record_sql());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let answer = client.simple_query(&begin).await.map_err(Phase::Setup)?;
            if let Some(seen) = lock.judge(&answer) {
                return Ok(Some(seen));
            }
            client.batch_execute(step.sql).await.map_err(Phase::Sql)?;
            client.batch_execute(&finish).await.map_err(Phase::Record)?;
            Ok::<_, Phase>(None)
        }
        .await;
        let error = match result {
            Ok(None) => return Ok(()),
            Ok(Some(seen)) => {
                // Nothing of the migration ran: close the transaction, then give the
                // lock back where it is held.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(lock.refuse(client, when, seen).await);
            }
            Err(e) => e,
        };
        if error.inner().connection_lost() {
            let outcome = match error {
                Phase::Setup(_) | Phase::Sql(_) => open_transaction(step, error.inner()),
                Phase::Record(_) => format!(
                    "the connection was lost while committing {} together with its history \
                     row, so whether that commit happened is unknown (the change and the row \
                     commit together or not at all): run migrate status to see",
                    step.label
                ),
            };
            return Err(lost(step, error.inner(), outcome));
        }
        // Whatever failed, leave no transaction open (a no-op outside one).
        let _ = client.batch_execute("ROLLBACK").await;
        if error.retryable() && attempt <= envelope.lock_retries {
            retry_pause(step.label, attempt, envelope, error.inner()).await;
            continue;
        }
        let line = match &error {
            Phase::Sql(e) => position(e).map(|p| sql::line_of(step.sql, p)),
            _ => None,
        };
        return Err(failure(
            step,
            error.inner(),
            line,
            "its transaction was rolled back and it is not recorded as applied".into(),
        ));
    }
}

/// The outcome when the connection went while the step's transaction was open.
fn open_transaction(step: &Step<'_>, e: &DbError) -> String {
    let mut text = format!(
        "{}: its transaction was still open, and PostgreSQL rolls back an open transaction \
         when its connection drops",
        step.record.not_done(step.label)
    );
    if e.is_silent() {
        text.push_str(" (it drops when migrate exits; a frozen server notices once it resumes)");
    }
    text
}

async fn run_without_transaction(
    client: &Session,
    step: &Step<'_>,
    envelope: &Envelope,
) -> Result<(), Error> {
    let statements = sql::split(step.sql);
    let total = statements.len();
    let outcome = |done: usize| {
        format!(
            "it ran without a transaction: {done} of its {total} statement(s) completed and \
             stay in effect, and it is not recorded as applied, so the next run executes the \
             whole file again; make its statements idempotent (IF NOT EXISTS)"
        )
    };
    // What to say when the connection goes before, between or after the statements.
    let lost_at = |done: usize, in_flight: Option<usize>| {
        let mut text = format!(
            "it ran without a transaction: {done} of its {total} statement(s) completed and \
             stay in effect"
        );
        if let Some(line) = in_flight {
            text.push_str(&format!(
                ", and statement {} (line {line}) was in flight: PostgreSQL cancels it when \
                 the connection drops, and a CREATE INDEX CONCURRENTLY cancelled that way \
                 leaves an INVALID index, which the next run reports",
                done + 1
            ));
        }
        format!(
            "{text}; {}, so the next run executes the whole file again",
            step.record.not_done(step.label)
        )
    };
    if let Err(e) = client.batch_execute(&settings(envelope, "SESSION")).await {
        return Err(if e.connection_lost() {
            lost(step, &e, lost_at(0, None))
        } else {
            failure(step, &e, None, outcome(0))
        });
    }
    // INVALID indexes from before: one that appears later is this migration's doing.
    let before = match invalid_indexes(client).await {
        Ok(found) => found.into_iter().map(|i| i.oid).collect(),
        Err(e) if e.connection_lost() => return Err(lost(step, &e, lost_at(0, None))),
        Err(e) => {
            reset(client).await;
            return Err(failure(step, &e, None, outcome(0)));
        }
    };
    for (done, statement) in statements.iter().enumerate() {
        let first_line = sql::line_at(step.sql, statement.offset);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match client.batch_execute(statement.text).await {
                Ok(()) => break,
                Err(e) => e,
            };
            if e.connection_lost() {
                return Err(lost(step, &e, lost_at(done, Some(first_line))));
            }
            let left = leftovers(client, &before, step.sql).await;
            // Retrying after a CREATE INDEX CONCURRENTLY left an INVALID index cannot
            // help: IF NOT EXISTS would skip it, and without it the retry fails.
            let clean = matches!(&left, Ok(l) if l.is_empty());
            if is_retryable(&e) && attempt <= envelope.lock_retries && clean {
                retry_pause(step.label, attempt, envelope, &e).await;
                continue;
            }
            let line = position(&e).map_or(first_line, |p| {
                first_line + sql::line_of(statement.text, p) - 1
            });
            reset(client).await;
            let outcome = format!("{}{}", outcome(done), leftover_advice(&left));
            return Err(failure(step, &e, Some(line), outcome));
        }
    }
    // IF NOT EXISTS skips an index that exists even when it is INVALID, so statements
    // that all succeeded do not prove the indexes are usable.
    match leftovers(client, &before, step.sql).await {
        Ok(left) if left.is_empty() => {}
        Err(e) if e.connection_lost() => return Err(lost(step, &e, lost_at(total, None))),
        left => {
            reset(client).await;
            return Err(Error::MigrationFailed(Box::new(Failure {
                label: step.label.into(),
                path: step.path.into(),
                sqlstate: None,
                message: format!(
                    "its statements completed, but {}",
                    match &left {
                        Ok(_) => "an INVALID index it creates remains (CREATE INDEX \
                                  CONCURRENTLY IF NOT EXISTS skips an existing index even when \
                                  it is INVALID)"
                            .to_owned(),
                        Err(e) => format!("checking for INVALID indexes failed: {e}"),
                    }
                ),
                line: None,
                detail: None,
                hint: None,
                applied_before: Vec::new(),
                outcome: format!("{}{}", outcome(total), leftover_advice(&left)),
            })));
        }
    }
    let recorded = client.batch_execute(&step.record_sql()).await;
    reset(client).await;
    recorded.map_err(|e| {
        if e.connection_lost() {
            lost(
                step,
                &e,
                format!(
                    "all {total} statement(s) completed and stay in effect, and the connection \
                     was lost while recording it, so whether it is recorded is unknown: run \
                     migrate status to see"
                ),
            )
        } else {
            failure(
                step,
                &e,
                None,
                format!("all {total} statement(s) completed but recording it failed; mark it applied by hand or make the file safe to re-run"),
            )
        }
    })
}

/// An index with `pg_index.indisvalid = false`.
struct InvalidIndex {
    oid: u32,
    /// `schema.name`, quoted where SQL needs it.
    qualified: String,
    /// The bare name, to look for in the migration's SQL.
    name: String,
    /// Another session is building it right now (not a leftover).
    building: bool,
}

/// Every INVALID index in the database. A failed `CREATE INDEX CONCURRENTLY` (or
/// `REINDEX CONCURRENTLY`) leaves one behind: still maintained on every write, never
/// used by a query.
async fn invalid_indexes(client: &Session) -> Result<Vec<InvalidIndex>, DbError> {
    let rows = client
        .query(
            "SELECT i.indexrelid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
                    c.relname::text, \
                    EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
                            WHERE p.index_relid = i.indexrelid) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid \
             ORDER BY 2",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(InvalidIndex {
                oid: r.try_get(0)?,
                qualified: r.try_get(1)?,
                name: r.try_get(2)?,
                building: r.try_get(3)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}

/// The INVALID indexes a no-transaction migration must not be recorded with: those that
/// appeared since `before`, and those its SQL names (an earlier run's leftover, which
/// `IF NOT EXISTS` would skip). Indexes another session is building are not leftovers.
async fn leftovers(
    client: &Session,
    before: &BTreeSet<u32>,
    sql: &str,
) -> Result<Vec<String>, DbError> {
    let named = sql::identifiers(sql);
    Ok(invalid_indexes(client)
        .await?
        .into_iter()
        .filter(|i| !i.building)
        .filter(|i| !before.contains(&i.oid) || named.contains(&i.name.to_lowercase()))
        .map(|i| i.qualified)
        .collect())
}

/// What to add to a failure's outcome about INVALID indexes.
fn leftover_advice(left: &Result<Vec<String>, DbError>) -> String {
    match left {
        Ok(left) if left.is_empty() => String::new(),
        Ok(left) => format!(
            "; it leaves INVALID index(es) {} (a failed CREATE INDEX CONCURRENTLY leaves one, \
             and IF NOT EXISTS would skip it on the next run): run {} then run migrate again",
            left.join(", "),
            left.iter()
                .map(|name| format!("DROP INDEX CONCURRENTLY {name};"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Err(e) => format!(
            "; checking for INVALID indexes it may leave failed ({e}): look for them with \
             SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid, and drop each \
             with DROP INDEX CONCURRENTLY"
        ),
    }
}

async fn reset(client: &Session) {
    let _ = client
        .batch_execute("RESET lock_timeout; RESET statement_timeout")
        .await;
}

async fn retry_pause(label: &str, attempt: u32, envelope: &Envelope, e: &DbError) {
    let delay = LOCK_RETRY.delay(attempt);
    tracing::warn!(
        migration = label,
        attempt,
        retries = envelope.lock_retries,
        retry_in_ms = delay.as_millis() as u64,
        "{label}: {e}; retrying in {:.1} s (retry {attempt} of {})",
        delay.as_secs_f64(),
        envelope.lock_retries
    );
    tokio::time::sleep(delay).await;
}

/// Where a failure happened inside a transactional step.
enum Phase {
    Setup(DbError),
    Sql(DbError),
    Record(DbError),
}

impl Phase {
    fn inner(&self) -> &DbError {
        match self {
            Phase::Setup(e) | Phase::Sql(e) | Phase::Record(e) => e,
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Phase::Sql(e) if is_retryable(e))
    }
}

/// Lock waits that ran out, and deadlocks: another session was in the way, and trying
/// again later may well succeed.
fn is_retryable(e: &DbError) -> bool {
    matches!(e.postgres().and_then(|e| e.code()), Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

fn position(e: &DbError) -> Option<u32> {
    match e.postgres()?.as_db_error()?.position()? {
        ErrorPosition::Original(p) => Some(*p),
        ErrorPosition::Internal { .. } => None,
    }
}

/// A statement failed on a working connection (exit 1).
fn failure(step: &Step<'_>, e: &DbError, line: Option<usize>, outcome: String) -> Error {
    let db = e.postgres().and_then(|e| e.as_db_error());
    Error::MigrationFailed(Box::new(Failure {
        label: step.label.into(),
        path: step.path.into(),
        sqlstate: db.map(|d| d.code().code().to_owned()),
        message: db.map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        line,
        detail: db.and_then(|d| d.detail()).map(str::to_owned),
        hint: db.and_then(|d| d.hint()).map(str::to_owned),
        applied_before: Vec::new(),
        outcome,
    }))
}

/// The connection went, or went silent, while the step was in flight (exit 5).
fn lost(step: &Step<'_>, e: &DbError, outcome: String) -> Error {
    Error::Lost(Box::new(Lost {
        doing: format!(
            "{} {} ({})",
            step.record.doing(),
            step.label,
            step.path.display()
        ),
        reason: lost_reason(e),
        outcome,
        check: e.check(),
        applied_before: Vec::new(),
    }))
}
