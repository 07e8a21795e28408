//! The AWS SDK's configuration, built once ([`load`], or lazily and shared with
//! [`Shared`]) and handed to every client: region, the credentials chain (including
//! the ECS container credentials endpoint), and the endpoint from `AWS_ENDPOINT_URL`
//! (and `AWS_ENDPOINT_URL_<SERVICE>`), all as the SDK itself reads them.
//!
//! The SDK's own retries are off: each caller retries itself, under its own deadline,
//! and counts the attempts. Each caller sets its per-call limits with [`Timeouts`]:
//! reading a secret is small and has a deadline, a PutLogEvents call carries up to
//! 1 MiB.
//!
//! Before the first call, [`check_configuration`] says whether anything is configured
//! that could give the SDK credentials and a region (see [`check`]): a configuration
//! mistake stops a start at once instead of failing every attempt until a deadline.
//!
//! What it is not: a place for clients (each caller makes its own from the
//! configuration) or for credentials of its own (the SDK's default chain is the one).

use std::sync::Arc;
use std::time::Duration;

pub use aws_config::{Region, SdkConfig};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use tokio::sync::OnceCell;

pub mod check;

pub use check::{check_configuration, Imds, Problem, IMDS_PROBE_TIMEOUT};

/// Loads the SDK's default configuration, with the SDK's retries off.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

/// The configuration, loaded when a caller first needs it and shared after: the agent
/// makes one and hands it to the secret stores and the log shipper (one credentials
/// cache, one region lookup); a run that needs neither never loads it.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<OnceCell<SdkConfig>>);

impl Shared {
    /// The configuration, loaded by the first call.
    pub async fn get(&self) -> SdkConfig {
        self.0.get_or_init(load).await.clone()
    }
}

/// How long one call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for a TCP/TLS connection to the endpoint.
    pub connect: Duration,
    /// Longest wait for one attempt (one request and its answer).
    pub attempt: Duration,
}

impl Timeouts {
    /// `base` for one caller's clients: these limits, and the SDK's retries off
    /// (whatever `base` said: a test may hand in a configuration of its own).
    pub fn apply(&self, base: &SdkConfig) -> SdkConfig {
        base.to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect)
                    .operation_attempt_timeout(self.attempt)
                    .build(),
            )
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_limits_and_no_sdk_retries() {
        let base = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .retry_config(RetryConfig::standard())
            .build();
        let limits = Timeouts {
            connect: Duration::from_secs(2),
            attempt: Duration::from_secs(4),
        };
        let config = limits.apply(&base);
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let retry = config.retry_config().unwrap();
        assert_eq!(retry.max_attempts(), 1);
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(4))
        );
    }
}
