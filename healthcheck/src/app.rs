//! The optional app check: the ALB should not route to a task whose app has not started
//! listening yet (some apps take 20–30 s to start). Either a GET that must answer 2xx, or
//! a TCP connection to a port on 127.0.0.1 that must be accepted.
//!
//! It does not judge the app's answers beyond the status code.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cache::Cached;
use crate::config::{AppConfig, AppTarget};
use crate::report::{CheckResult, Status};

/// How long an app check result is reused: the ALB's request rate should not become
/// the app's.
const CACHE: Duration = Duration::from_secs(1);

pub(crate) struct AppCheck {
    target: AppTarget,
    /// Bound on the GET or the connect.
    timeout: Duration,
    /// Makes the check single-flight and reuses its result for [`CACHE`].
    cache: Cached<CheckResult>,
}

impl AppCheck {
    pub(crate) fn new(config: &AppConfig) -> Self {
        AppCheck {
            target: config.target.clone(),
            timeout: config.timeout,
            cache: Cached::new(CACHE),
        }
    }

    pub(crate) async fn check(&self) -> CheckResult {
        self.cache.get(|| self.run()).await
    }

    async fn run(&self) -> CheckResult {
        let started = Instant::now();
        let outcome = match &self.target {
            AppTarget::Url(uri) => match aws::http::get(uri, self.timeout).await {
                Ok((status, _)) if status.is_success() => Ok(()),
                Ok((status, _)) => Err(format!("the app answered HTTP {status}")),
                Err(e) => Err(format!("the app did not answer: {e}")),
            },
            AppTarget::Port(port) => {
                let connect = TcpStream::connect((Ipv4Addr::LOCALHOST, *port));
                match tokio::time::timeout(self.timeout, connect).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!(
                        "nothing accepts connections on 127.0.0.1:{port}: {e}"
                    )),
                    Err(_) => Err(format!(
                        "127.0.0.1:{port} did not accept a connection within {} ms",
                        self.timeout.as_millis()
                    )),
                }
            }
        };
        let response_time = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => CheckResult {
                status: Status::Healthy,
                response_time,
                error: None,
            },
            Err(error) => CheckResult {
                status: Status::Unhealthy,
                response_time,
                error: Some(error),
            },
        }
    }
}
