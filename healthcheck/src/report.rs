//! The JSON body of every answer and how the checks add up to one status. Its shape is
//! fixed: our users' dashboards already parse it.
//!
//! ```json
//! {"status":"healthy","timestamp":"2026-11-22T10:30:00Z","version":"1.0.1","uptime":3600,
//!  "checks":{"database":{"status":"healthy","responseTime":15},
//!            "memory":{"used":256,"total":512,"percentage":50}}}
//! ```

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The state of one check or of the whole task, best first: the worst one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    /// Working but slow or short of memory: the ALB still routes here (HTTP 200).
    Degraded,
    /// The ALB should not route here (HTTP 503).
    Unhealthy,
}

/// The result of the database or app check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub status: Status,
    /// Milliseconds the check took.
    #[serde(rename = "responseTime")]
    pub response_time: u64,
    /// Why the check failed; never holds a password or a connection string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Memory figures in MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryReading {
    pub used: u64,
    pub total: u64,
    /// `used` as a whole percentage of `total`.
    pub percentage: u64,
    /// Not in the body (its shape is fixed); it feeds the overall status.
    #[serde(skip)]
    pub status: Status,
}

/// The checks that ran; a check that is not configured is left out, not faked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReading>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<CheckResult>,
}

/// One answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    /// Present (and true) only while draining, so the ALB's failure has a visible cause.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// RFC 3339, UTC, whole seconds.
    pub timestamp: String,
    pub version: String,
    /// Seconds since the server started.
    pub uptime: u64,
    pub checks: Checks,
}

impl Checks {
    /// The worst status among the checks; healthy when there are none.
    pub fn status(&self) -> Status {
        [
            self.database.as_ref().map(|c| c.status),
            self.memory.as_ref().map(|m| m.status),
            self.app.as_ref().map(|c| c.status),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Status::Healthy)
    }
}

impl Report {
    pub fn new(
        checks: Checks,
        draining: bool,
        version: &str,
        uptime: Duration,
        now: SystemTime,
    ) -> Self {
        Report {
            status: if draining {
                Status::Unhealthy
            } else {
                checks.status()
            },
            draining,
            timestamp: humantime::format_rfc3339_seconds(now).to_string(),
            version: version.into(),
            uptime: uptime.as_secs(),
            checks,
        }
    }

    /// 200 for healthy and degraded, 503 for unhealthy.
    pub fn http_status(&self) -> hyper::StatusCode {
        match self.status {
            Status::Healthy | Status::Degraded => hyper::StatusCode::OK,
            Status::Unhealthy => hyper::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"status":"unhealthy"}"#.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status) -> CheckResult {
        CheckResult {
            status,
            response_time: 15,
            error: None,
        }
    }

    fn memory(status: Status) -> MemoryReading {
        MemoryReading {
            used: 256,
            total: 512,
            percentage: 50,
            status,
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_body_has_the_documented_shape() {
        let checks = Checks {
            database: Some(check(Status::Healthy)),
            memory: Some(memory(Status::Healthy)),
            app: None,
        };
        let report = Report::new(
            checks,
            false,
            "1.0.1",
            Duration::from_millis(3_600_900),
            at(1_795_343_400),
        );
        assert_eq!(
            String::from_utf8(report.to_json()).unwrap(),
            r#"{"status":"healthy","timestamp":"2026-11-22T10:30:00Z","version":"1.0.1","uptime":3600,"checks":{"database":{"status":"healthy","responseTime":15},"memory":{"used":256,"total":512,"percentage":50}}}"#
        );
        assert_eq!(report.http_status(), hyper::StatusCode::OK);
    }

    #[test]
    fn the_worst_check_wins() {
        let mut checks = Checks {
            database: Some(check(Status::Healthy)),
            memory: Some(memory(Status::Degraded)),
            app: Some(check(Status::Healthy)),
        };
        assert_eq!(checks.status(), Status::Degraded);
        let degraded = Report::new(checks.clone(), false, "v", Duration::ZERO, at(0));
        assert_eq!(degraded.http_status(), hyper::StatusCode::OK);

        checks.app = Some(CheckResult {
            status: Status::Unhealthy,
            response_time: 0,
            error: Some("connection refused".into()),
        });
        let report = Report::new(checks, false, "v", Duration::ZERO, at(0));
        assert_eq!(report.status, Status::Unhealthy);
        assert_eq!(report.http_status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        let json = String::from_utf8(report.to_json()).unwrap();
        assert!(
            json.contains(
                r#""app":{"status":"unhealthy","responseTime":0,"error":"connection refused"}"#
            ),
            "{json}"
        );
        assert_eq!(Checks::default().status(), Status::Healthy);
    }

    #[test]
    fn draining_is_unhealthy_and_says_so() {
        let report = Report::new(Checks::default(), true, "v", Duration::ZERO, at(0));
        assert_eq!(report.http_status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        let json = String::from_utf8(report.to_json()).unwrap();
        assert!(
            json.starts_with(r#"{"status":"unhealthy","draining":true,"#),
            "{json}"
        );
    }
}
