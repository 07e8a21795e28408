//! Connecting with retries: exponential backoff with jitter, a fixed number of retries
//! or, with `--wait`, for up to a duration (a database that is still starting).

use std::time::{Duration, Instant};

use pgconn::{ConnectError, PgConfig};
use tokio_postgres::Client;

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
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let error = match db.connect().await {
            Ok(client) => return Ok(client),
            Err(ConnectError::Tls(e)) => return Err(Error::Config(e.to_string())),
            Err(e) => e,
        };
        let delay = backoff(FIRST_DELAY, MAX_DELAY, attempt);
        let again = error.is_transient()
            && match retry.wait {
                Some(wait) => started.elapsed() + delay < wait,
                None => attempt <= retry.retries,
            };
        if !again {
            return Err(Error::Unreachable {
                target: db.to_string(),
                attempts: attempt,
                reason: error.to_string(),
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
