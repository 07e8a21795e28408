//! The advisory lock that makes concurrent runners take turns.
//!
//! `pg_advisory_lock` would block inside the server, and a session blocked there can
//! deadlock with another runner's `CREATE INDEX CONCURRENTLY` (flyway #1654,
//! golang-migrate #960). So we poll `pg_try_advisory_lock` with a deadline and, while
//! waiting, say who holds the lock.

use std::time::{Duration, Instant};

use crate::session::Session;
use crate::Error;

/// The lock's two-part key, `"deck"` and `"migr"` in ASCII. Advisory locks are per
/// database, so runners against different databases never wait for each other.
const KEY: (i32, i32) = (0x6465_636b, 0x6d69_6772);
/// How often to try again (plus jitter, so twenty runners do not poll in step).
const POLL: Duration = Duration::from_millis(200);
/// How often to repeat the "waiting for …" message.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Takes the lock, or fails with [`Error::LockTimeout`] naming the holder.
pub async fn acquire(client: &Session, timeout: Duration) -> Result<(), Error> {
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&KEY.0, &KEY.1])
            .await
            .map_err(|e| Error::db("taking the migration lock", &e))?
            .get(0);
        if got {
            if last_report.is_some() {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "acquired the migration lock after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(());
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

/// Releases the lock (ending the session releases it too).
pub async fn release(client: &Session) {
    if let Err(e) = client
        .query_one("SELECT pg_advisory_unlock($1, $2)", &[&KEY.0, &KEY.1])
        .await
    {
        tracing::debug!(error = %e, "could not release the migration lock ({e}); the session end will");
    }
}

/// "pid 4242 (application_name=deckhand-migrate/ip-10-0-1-5, client 10.0.1.5, connected
/// since 2026-11-23T10:00:00Z, state active)".
async fn holder(client: &Session) -> Result<String, Error> {
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), \
                coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'an unknown time'), \
                coalesce(a.state, 'unknown') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
           AND l.classid = {} AND l.objid = {} AND l.objsubid = 2 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        KEY.0, KEY.1
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
