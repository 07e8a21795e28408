//! The database check: `SELECT 1` through a one-connection pool, bounded by a timeout,
//! cached and single-flight (see [`crate::cache`]).
//!
//! It answers "can this task reach its database right now"; with a migrations folder
//! configured, the same single flight also reads the schema version (`migrations.rs`).
//! It does not check replication or pool sizes of the app.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio::time::{timeout_at, Instant};

use crate::cache::Cached;
use crate::config::{DatabaseConfig, MigrationsConfig};
use crate::migrations::MigrationsCheck;
use crate::report::{CheckResult, MigrationsReading, Status};

/// The query. The comment makes it easy to find in `pg_stat_statements` and in logs.
pub(crate) const QUERY: &str = "/* deckhand-healthcheck */ SELECT 1";

/// One connection is enough: checks are single-flight, so there is never a second
/// query to run at the same time.
const POOL_SIZE: usize = 1;

/// Why the check could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    // Not a `source`: pgconn's message already ends with its cause, and `{:#}` would
    // print that cause a second time.
    #[error("the database TLS settings are not usable: {0}")]
    Tls(pgconn::TlsError),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

pub(crate) struct DatabaseCheck {
    /// Keeps the one connection open between checks, and reopens it when it broke.
    pool: Pool,
    /// Bound on getting a connection plus the query.
    timeout: Duration,
    /// Slower than this is degraded.
    slow: Duration,
    /// Makes the check single-flight and reuses its result for `HEALTH_DB_CACHE`.
    cache: Cached<Readings>,
    /// The schema version, read in the same flight; `None` without a migrations folder.
    migrations: Option<MigrationsCheck>,
    /// Scrubbed out of every error text, in case a driver ever echoes it.
    password: Option<pgconn::Password>,
    /// The status of the last check, so state changes are logged once, not every second.
    last_status: AtomicU8,
    /// The server as a URL without the password, for logs.
    target: String,
}

/// What one flight of the database check found.
#[derive(Debug, Clone)]
pub(crate) struct Readings {
    pub(crate) database: CheckResult,
    pub(crate) migrations: Option<MigrationsReading>,
}

impl DatabaseCheck {
    pub(crate) fn new(
        config: &DatabaseConfig,
        migrations: Option<&MigrationsConfig>,
    ) -> Result<Self, SetupError> {
        let manager = Manager::from_config(
            config.pg.tokio_config(),
            config.pg.tls().map_err(SetupError::Tls)?,
            ManagerConfig {
                // The check query itself tells whether the connection still works.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| SetupError::Pool(e.to_string()))?;
        Ok(DatabaseCheck {
            pool,
            timeout: config.timeout,
            slow: config.slow,
            cache: Cached::new(config.cache),
            migrations: migrations.map(|m| MigrationsCheck::new(m, &config.pg)),
            password: config.pg.password.clone(),
            last_status: AtomicU8::new(u8::MAX),
            target: config.pg.to_string(),
        })
    }

    /// The target as a URL without the password.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// The cached result, or a fresh one when it is older than the cache interval: the
    /// database, and the schema version when configured, checked at the same time.
    pub(crate) async fn check(&self) -> Readings {
        self.cache
            .get(|| async {
                let migrations = async {
                    match &self.migrations {
                        Some(check) => Some(check.check(self.timeout).await),
                        None => None,
                    }
                };
                let (database, mut migrations) = tokio::join!(self.query(), migrations);
                self.log_change(&database);
                if let Some(reading) = &mut migrations {
                    reading.error = reading.error.take().map(|e| self.scrub(e));
                }
                Readings {
                    database,
                    migrations,
                }
            })
            .await
    }

    async fn query(&self) -> CheckResult {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let millis = self.timeout.as_millis();
        let outcome: Result<(), String> = match timeout_at(deadline, self.pool.get()).await {
            Err(_) => Err(format!("no connection within {millis} ms")),
            Ok(Err(e)) => Err(pool_error(&e)),
            Ok(Ok(client)) => match timeout_at(deadline, client.simple_query(QUERY)).await {
                Err(_) => {
                    // A connection that hung once is not trusted again.
                    drop(Object::take(client));
                    Err(format!("no answer to SELECT 1 within {millis} ms"))
                }
                Ok(Err(e)) => {
                    drop(Object::take(client));
                    Err(pgconn::describe(&e))
                }
                Ok(Ok(_)) => Ok(()),
            },
        };
        let elapsed = started.elapsed();
        let response_time = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => CheckResult {
                status: if elapsed > self.slow {
                    Status::Degraded
                } else {
                    Status::Healthy
                },
                response_time,
                error: None,
            },
            Err(text) => CheckResult {
                status: Status::Unhealthy,
                response_time,
                error: Some(self.scrub(text)),
            },
        }
    }

    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "[redacted]"),
            _ => text,
        }
    }

    fn log_change(&self, result: &CheckResult) {
        let previous = self
            .last_status
            .swap(result.status as u8, Ordering::Relaxed);
        if previous == result.status as u8 {
            return;
        }
        let error = result.error.as_deref().unwrap_or("");
        match result.status {
            Status::Healthy => tracing::info!(
                database = %self.target,
                response_ms = result.response_time,
                "The database check of {} is healthy ({} ms).",
                self.target,
                result.response_time
            ),
            Status::Degraded => tracing::warn!(
                database = %self.target,
                response_ms = result.response_time,
                "The database {} answers slowly ({} ms); /health reports degraded.",
                self.target,
                result.response_time
            ),
            Status::Unhealthy => tracing::warn!(
                database = %self.target,
                error,
                "The database check of {} failed ({error}); /health answers 503.",
                self.target
            ),
        }
    }
}

/// One line for a pool error, without connection settings.
fn pool_error(error: &PoolError) -> String {
    match error {
        PoolError::Backend(e) => pgconn::describe(e),
        PoolError::Timeout(_) => "timed out waiting for a connection".into(),
        PoolError::Closed => "the connection pool is closed".into(),
        other => other.to_string(),
    }
}
