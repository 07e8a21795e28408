//! Connecting with retries: exponential backoff with jitter, a fixed number of retries
//! or, with `--wait`, for up to a duration (a database that is still starting).
//!
//! Each attempt is bounded as a whole by `connect_timeout` (`PGCONNECT_TIMEOUT`, 10 s
//! by default) per host, as libpq bounds it: tokio-postgres applies that setting to the
//! TCP connect only, and a server that accepts the connection but never answers the
//! startup (frozen, or a proxy in front of a dead one) would otherwise hold `migrate`
//! for ever.

use std::time::{Duration, Instant};

use conventions::Backoff;
use pgconn::{ConnectError, PgConfig};
use tokio_postgres::Client;

use crate::session::{within, Silent};
use crate::Error;

/// Pauses between attempts: 0.5 s at first, doubling up to 10 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

/// How persistent to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt, when `wait` is not set.
    pub retries: u32,
    /// Keep trying until this much time has passed (overrides `retries`).
    pub wait: Option<Duration>,
}

pub async fn connect(db: &PgConfig, retry: Retry) -> Result<Client, Error> {
    let started = Instant::now();
    let limit = db
        .connect_timeout
        .saturating_mul(u32::try_from(db.hosts.len().max(1)).unwrap_or(u32::MAX));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (transient, error) = match within(Some(limit), db.connect()).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(ConnectError::Tls(e))) => return Err(Error::Config(e.to_string())),
            Ok(Err(e)) => (e.is_transient(), e.to_string()),
            Err(Silent { waited }) => (
                true,
                format!(
                    "no answer within {} s: the server took the connection but did not \
                     complete the startup (connect_timeout / PGCONNECT_TIMEOUT bounds the \
                     whole attempt)",
                    waited.as_secs_f64()
                ),
            ),
        };
        let delay = BACKOFF.delay(attempt);
        let again = transient
            && match retry.wait {
                Some(wait) => started.elapsed() + delay < wait,
                None => attempt <= retry.retries,
            };
        if !again {
            return Err(Error::Unreachable {
                target: db.to_string(),
                attempts: attempt,
                reason: error,
            });
        }
        tracing::warn!(
            target_db = %db,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            error = %error,
            "connecting to {db} failed (attempt {attempt}): {error}; retrying in {:.1} s",
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}
