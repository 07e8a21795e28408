//! `healthcheck probe`: one GET for a container health check in an image with no shell
//! and no curl (`["CMD", "/usr/local/bin/healthcheck", "probe"]`). Healthy means a 2xx
//! answer within the timeout; anything else is unhealthy, with one line saying why.

use std::time::Instant;

use crate::config::ProbeConfig;

/// The verdict and the line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub healthy: bool,
    pub message: String,
}

impl ProbeOutcome {
    /// 0 when healthy, 1 otherwise: what Docker and ECS expect of a health check command.
    pub fn exit_code(&self) -> u8 {
        if self.healthy {
            0
        } else {
            1
        }
    }
}

/// GETs the configured URL once.
pub async fn probe(config: &ProbeConfig) -> ProbeOutcome {
    let started = Instant::now();
    match aws::http::get(&config.url, config.timeout).await {
        Ok((status, _)) => {
            let healthy = status.is_success();
            ProbeOutcome {
                healthy,
                message: format!(
                    "{}: HTTP {} from {} in {} ms",
                    if healthy { "healthy" } else { "unhealthy" },
                    status,
                    config.url,
                    started.elapsed().as_millis()
                ),
            }
        }
        Err(error) => ProbeOutcome {
            healthy: false,
            message: format!("unhealthy: {} ({error})", config.url),
        },
    }
}
