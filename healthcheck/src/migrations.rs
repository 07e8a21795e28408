//! The schema version check (`HEALTH_MIGRATIONS_DIR`, or `MIGRATIONS_DIR`): the
//! migration files against the history table, with `migrate`'s own reading of both
//! (`migrate::status`), so `/health`, `migrate status` and `migrate up` agree on what is
//! pending and what drifted.
//!
//! It runs inside the database check's single flight and cache (`database.rs`), bounded
//! by the same timeout. It reports; it never applies, repairs or locks anything.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use migrate::{State, StatusRow};
use pgconn::PgConfig;

use crate::config::MigrationsConfig;
use crate::report::{MigrationsReading, Status};

pub(crate) struct MigrationsCheck {
    /// The database check's connection settings (and `application_name`).
    pg: PgConfig,
    /// `migrate`'s settings: the folder, and no connect retries (the check is bounded
    /// by `HEALTH_DB_TIMEOUT`, and runs again a moment later).
    settings: migrate::Settings,
    /// What pending migrations make the answer (`HEALTH_MIGRATIONS_PENDING`).
    pending: Status,
    /// `MIGRATE_ALLOW_MISSING`: a missing file is not drift.
    allow_missing: bool,
    /// The status of the last check, so changes are logged once.
    last_status: AtomicU8,
}

impl MigrationsCheck {
    pub(crate) fn new(config: &MigrationsConfig, pg: &PgConfig) -> Self {
        MigrationsCheck {
            pg: pg.clone(),
            settings: migrate::Settings {
                dir: config.dir.clone(),
                connect: migrate::Retry {
                    retries: 0,
                    wait: None,
                },
                allow_missing: config.allow_missing,
                ..migrate::Settings::default()
            },
            pending: config.pending,
            allow_missing: config.allow_missing,
            last_status: AtomicU8::new(u8::MAX),
        }
    }

    /// One reading, within `timeout` (connect, read the history, read the files).
    pub(crate) async fn check(&self, timeout: Duration) -> MigrationsReading {
        let status = migrate::status(&self.pg, &self.settings);
        let reading = match tokio::time::timeout(timeout, status).await {
            Err(_) => failed(format!(
                "no answer from the database within {} ms",
                timeout.as_millis()
            )),
            Ok(Err(e)) => failed(describe(&e)),
            Ok(Ok(rows)) => judge(&rows, self.pending, self.allow_missing),
        };
        self.log_change(&reading);
        reading
    }

    fn log_change(&self, reading: &MigrationsReading) {
        let previous = self
            .last_status
            .swap(reading.status as u8, Ordering::Relaxed);
        if previous == reading.status as u8 {
            return;
        }
        let dir = self.settings.dir.display();
        let current = reading
            .current
            .map_or_else(|| "none".to_owned(), |v| v.to_string());
        match (&reading.error, reading.pending) {
            (Some(error), _) => tracing::warn!(
                dir = %dir,
                error = %error,
                "The migrations check against {dir} fails ({error}); /health answers 503."
            ),
            (None, Some(pending)) if pending > 0 => tracing::warn!(
                dir = %dir,
                pending,
                current = reading.current,
                "{pending} migration(s) of {dir} are pending (the database is at version \
                 {current}); /health reports {}.",
                as_str(reading.status)
            ),
            _ => tracing::info!(
                dir = %dir,
                current = reading.current,
                "The database schema is up to date with {dir} (version {current})."
            ),
        }
    }
}

/// The reading of `migrate status`'s rows: drift (an applied migration whose file
/// changed, or is gone unless `allow_missing`) is unhealthy and named; pending files
/// make `pending_status`; otherwise healthy.
pub(crate) fn judge(
    rows: &[StatusRow],
    pending_status: Status,
    allow_missing: bool,
) -> MigrationsReading {
    let current = rows
        .iter()
        .filter(|r| r.state != State::Pending)
        .map(|r| r.version)
        .max();
    let latest = rows
        .iter()
        .filter(|r| r.state != State::Missing)
        .map(|r| r.version)
        .max();
    let pending = rows.iter().filter(|r| r.state == State::Pending).count();
    let drifted: Vec<String> = rows
        .iter()
        .filter_map(|r| match r.state {
            State::Modified => Some(format!(
                "{} changed after it was applied",
                migrate::source::label(r.version, &r.name)
            )),
            State::Missing if !allow_missing => Some(format!(
                "{} is applied but its file is missing",
                migrate::source::label(r.version, &r.name)
            )),
            _ => None,
        })
        .collect();
    let (status, error) = if !drifted.is_empty() {
        (
            Status::Unhealthy,
            Some(format!("drift: {}", drifted.join("; "))),
        )
    } else if pending > 0 {
        (pending_status, None)
    } else {
        (Status::Healthy, None)
    };
    MigrationsReading {
        status,
        current,
        latest,
        pending: Some(pending),
        error,
    }
}

fn failed(error: String) -> MigrationsReading {
    MigrationsReading {
        status: Status::Unhealthy,
        current: None,
        latest: None,
        pending: None,
        error: Some(error),
    }
}

/// One line for a failure, without the connection string that migrate's own message
/// for an unreachable database starts with.
fn describe(error: &migrate::Error) -> String {
    match error {
        migrate::Error::Unreachable { reason, .. } => format!("cannot connect: {reason}"),
        other => other.to_string(),
    }
}

fn as_str(status: Status) -> &'static str {
    match status {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Unhealthy => "unhealthy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i32, state: State) -> StatusRow {
        StatusRow {
            version,
            name: format!("step{version}"),
            applied_on: (state != State::Pending).then(|| "2026-11-23T10:00:00Z".into()),
            state,
        }
    }

    #[test]
    fn up_to_date_is_healthy_with_the_version() {
        let rows = [row(1, State::Applied), row(2, State::Applied)];
        let reading = judge(&rows, Status::Degraded, false);
        assert_eq!(reading.status, Status::Healthy);
        assert_eq!(
            (reading.current, reading.latest, reading.pending),
            (Some(2), Some(2), Some(0))
        );
        assert!(reading.error.is_none());
    }

    #[test]
    fn pending_migrations_are_as_configured() {
        let rows = [
            row(1, State::Applied),
            row(2, State::Pending),
            row(3, State::Pending),
        ];
        let degraded = judge(&rows, Status::Degraded, false);
        assert_eq!(degraded.status, Status::Degraded);
        assert_eq!(
            (degraded.current, degraded.latest, degraded.pending),
            (Some(1), Some(3), Some(2))
        );
        assert_eq!(
            judge(&rows, Status::Unhealthy, false).status,
            Status::Unhealthy
        );
        // A fresh database: nothing applied yet.
        let fresh = judge(&[row(1, State::Pending)], Status::Degraded, false);
        assert_eq!((fresh.current, fresh.latest), (None, Some(1)));
    }

    #[test]
    fn drift_is_unhealthy_and_named() {
        let rows = [
            row(1, State::Modified),
            row(2, State::Applied),
            row(3, State::Pending),
        ];
        let modified = judge(&rows, Status::Degraded, false);
        assert_eq!(modified.status, Status::Unhealthy);
        assert_eq!(
            modified.error.as_deref(),
            Some("drift: V1__step1 changed after it was applied")
        );
        assert_eq!(modified.pending, Some(1));

        let rows = [row(1, State::Missing), row(2, State::Applied)];
        let missing = judge(&rows, Status::Degraded, false);
        assert_eq!(missing.status, Status::Unhealthy);
        assert!(missing
            .error
            .unwrap()
            .contains("V1__step1 is applied but its file is missing"));
        assert_eq!((missing.current, missing.latest), (Some(2), Some(2)));
        // MIGRATE_ALLOW_MISSING: migrate up goes on, so the check does too.
        assert_eq!(judge(&rows, Status::Degraded, true).status, Status::Healthy);
    }

    #[test]
    fn a_failure_reads_as_unknown_figures() {
        let reading = failed("cannot connect: refused".into());
        assert_eq!(reading.status, Status::Unhealthy);
        assert_eq!(
            (reading.current, reading.latest, reading.pending),
            (None, None, None)
        );
        let json = serde_json::to_string(&reading).unwrap();
        assert_eq!(
            json,
            r#"{"status":"unhealthy","current":null,"latest":null,"pending":null,"error":"cannot connect: refused"}"#
        );
    }
}
