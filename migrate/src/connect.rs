//! Connecting with retries: exponential backoff with jitter, a fixed number of retries
//! or, with `--wait`, for up to a duration (a database that is still starting).
//!
//! Each attempt is bounded as a whole by `connect_timeout` (`PGCONNECT_TIMEOUT`, 10 s
//! by default) per host, as libpq bounds it: tokio-postgres applies that setting to the
//! TCP connect only, and a server that accepts the connection but never answers the
//! startup (frozen, or a proxy in front of a dead one) would otherwise hold `migrate`
//! for ever.

use std::time::{Duration, Instant};

use pgconn::{ConnectError, PgConfig};
use tokio_postgres::Client;

use crate::session::{within, Silent};
use crate::Error;

/// First pause between attempts; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How persistent to be.
#[derive(Debug, Clone, Copy)]
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
        let delay = backoff(FIRST_DELAY, MAX_DELAY, attempt);
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

/// Exponential backoff with "equal jitter": between half and all of `first·2^(n-1)`,
/// capped at `max`.
pub fn backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let full = exp.min(max);
    let half = full / 2;
    half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        for attempt in 1..20 {
            let d = backoff(Duration::from_millis(500), Duration::from_secs(10), attempt);
            let full = (Duration::from_millis(500) * (1 << (attempt - 1).min(16)))
                .min(Duration::from_secs(10));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
