//! Running one migration's SQL (up or down) inside the safety envelope: `lock_timeout`
//! and `statement_timeout` for its statements, a retry with backoff when a lock was not
//! available, and the history row written in the same transaction as the change.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::Client;

use crate::connect::backoff;
use crate::error::Failure;
use crate::{history, sql};

/// First pause before retrying a migration that hit `lock_timeout`.
const LOCK_RETRY_FIRST: Duration = Duration::from_secs(1);
const LOCK_RETRY_MAX: Duration = Duration::from_secs(16);

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
}

/// Runs a step; on failure, everything the caller needs for [`Failure`] except the
/// list of migrations applied before it.
pub async fn run(
    client: &Client,
    step: &Step<'_>,
    envelope: &Envelope,
) -> Result<Duration, Failure> {
    let started = Instant::now();
    if step.no_transaction {
        run_without_transaction(client, step, envelope).await?;
    } else {
        run_in_transaction(client, step, envelope).await?;
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

impl Record<'_> {
    fn sql(&self) -> String {
        match *self {
            Record::Applied {
                version,
                name,
                checksum,
            } => history::insert_sql(version, name, checksum),
            Record::Reverted { version } => history::delete_sql(version),
        }
    }
}

/// BEGIN with the settings, the migration, then the history row with COMMIT: three
/// round trips per migration.
async fn run_in_transaction(
    client: &Client,
    step: &Step<'_>,
    envelope: &Envelope,
) -> Result<(), Failure> {
    let begin = format!("BEGIN; {}", settings(envelope, "LOCAL"));
    let finish = format!("{}; COMMIT", step.record.sql());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            client.batch_execute(&begin).await.map_err(Phase::Setup)?;
            client.batch_execute(step.sql).await.map_err(Phase::Sql)?;
            client.batch_execute(&finish).await.map_err(Phase::Record)
        }
        .await;
        let error = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
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

async fn run_without_transaction(
    client: &Client,
    step: &Step<'_>,
    envelope: &Envelope,
) -> Result<(), Failure> {
    let statements = sql::split(step.sql);
    let total = statements.len();
    let outcome = |done: usize| {
        format!(
            "it ran without a transaction: {done} of its {total} statement(s) completed and \
             stay in effect, and it is not recorded as applied, so the next run executes the \
             whole file again; make its statements idempotent (IF NOT EXISTS)"
        )
    };
    client
        .batch_execute(&settings(envelope, "SESSION"))
        .await
        .map_err(|e| failure(step, &e, None, outcome(0)))?;
    // INVALID indexes from before: one that appears later is this migration's doing.
    let before = match invalid_indexes(client).await {
        Ok(found) => found.into_iter().map(|i| i.oid).collect(),
        Err(e) => {
            reset(client).await;
            return Err(failure(step, &e, None, outcome(0)));
        }
    };
    for (done, statement) in statements.iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match client.batch_execute(statement.text).await {
                Ok(()) => break,
                Err(e) => e,
            };
            let left = leftovers(client, &before, step.sql).await;
            // Retrying after a CREATE INDEX CONCURRENTLY left an INVALID index cannot
            // help: IF NOT EXISTS would skip it, and without it the retry fails.
            let clean = matches!(&left, Ok(l) if l.is_empty());
            if is_retryable(&e) && attempt <= envelope.lock_retries && clean {
                retry_pause(step.label, attempt, envelope, &e).await;
                continue;
            }
            let first_line = sql::line_at(step.sql, statement.offset);
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
        left => {
            reset(client).await;
            return Err(Failure {
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
                        Err(e) => format!(
                            "checking for INVALID indexes failed: {}",
                            pgconn::describe(e)
                        ),
                    }
                ),
                line: None,
                detail: None,
                hint: None,
                applied_before: Vec::new(),
                outcome: format!("{}{}", outcome(total), leftover_advice(&left)),
            });
        }
    }
    let recorded = client.batch_execute(&step.record.sql()).await;
    reset(client).await;
    recorded.map_err(|e| {
        failure(
            step,
            &e,
            None,
            format!("all {total} statement(s) completed but recording it failed; mark it applied by hand or make the file safe to re-run"),
        )
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
async fn invalid_indexes(client: &Client) -> Result<Vec<InvalidIndex>, tokio_postgres::Error> {
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
        .collect()
}

/// The INVALID indexes a no-transaction migration must not be recorded with: those that
/// appeared since `before`, and those its SQL names (an earlier run's leftover, which
/// `IF NOT EXISTS` would skip). Indexes another session is building are not leftovers.
async fn leftovers(
    client: &Client,
    before: &BTreeSet<u32>,
    sql: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
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
fn leftover_advice(left: &Result<Vec<String>, tokio_postgres::Error>) -> String {
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
            "; checking for INVALID indexes it may leave failed ({}): look for them with \
             SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid, and drop each \
             with DROP INDEX CONCURRENTLY",
            pgconn::describe(e)
        ),
    }
}

async fn reset(client: &Client) {
    let _ = client
        .batch_execute("RESET lock_timeout; RESET statement_timeout")
        .await;
}

async fn retry_pause(label: &str, attempt: u32, envelope: &Envelope, e: &tokio_postgres::Error) {
    let delay = backoff(LOCK_RETRY_FIRST, LOCK_RETRY_MAX, attempt);
    tracing::warn!(
        migration = label,
        attempt,
        retries = envelope.lock_retries,
        retry_in_ms = delay.as_millis() as u64,
        "{label}: {}; retrying in {:.1} s (retry {attempt} of {})",
        pgconn::describe(e),
        delay.as_secs_f64(),
        envelope.lock_retries
    );
    tokio::time::sleep(delay).await;
}

/// Where a failure happened inside a transactional step.
enum Phase {
    Setup(tokio_postgres::Error),
    Sql(tokio_postgres::Error),
    Record(tokio_postgres::Error),
}

impl Phase {
    fn inner(&self) -> &tokio_postgres::Error {
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
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

fn position(e: &tokio_postgres::Error) -> Option<u32> {
    match e.as_db_error()?.position()? {
        ErrorPosition::Original(p) => Some(*p),
        ErrorPosition::Internal { .. } => None,
    }
}

fn failure(
    step: &Step<'_>,
    e: &tokio_postgres::Error,
    line: Option<usize>,
    outcome: String,
) -> Failure {
    let db = e.as_db_error();
    Failure {
        label: step.label.into(),
        path: step.path.into(),
        sqlstate: e.code().map(|c| c.code().to_owned()),
        message: db.map_or_else(|| pgconn::describe(e), |d| d.message().to_owned()),
        line,
        detail: db.and_then(|d| d.detail()).map(str::to_owned),
        hint: db.and_then(|d| d.hint()).map(str::to_owned),
        applied_before: Vec::new(),
        outcome,
    }
}
