//! The JSON body of every answer and how the checks add up to one status. Its shape is
//! fixed: our users' dashboards already parse it.
//!
//! ```json
//! {"status":"healthy","timestamp":"2026-11-22T10:30:00Z","version":"1.0.1","uptime":3600,
//!  "checks":{"database":{"status":"healthy","responseTime":15},
//!            "memory":{"used":256,"total":512,"percentage":50}}}
//! ```
//!
//! Keys are only added, never changed: `migrations` and `logs` among the checks when
//! they are configured, `"status":"starting"` with a `phase` while the agent starts.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::host::Stage;

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

/// The schema version: the history table against the migration files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationsReading {
    pub status: Status,
    /// The newest applied version; `null` when none is, or when it could not be read.
    pub current: Option<i32>,
    /// The newest version among the files; `null` when there are none, or when they
    /// could not be read.
    pub latest: Option<i32>,
    /// Files not applied yet; `null` when it could not be told.
    pub pending: Option<usize>,
    /// Why the check failed, or which migrations drifted; never a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The delivery of the app's logs to CloudWatch Logs (the agent with a log group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogsReading {
    /// Healthy or degraded, never unhealthy: losing logs must not take the service down.
    pub status: Status,
    pub shipped: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Whole seconds events have been waiting for delivery to make progress.
    #[serde(rename = "lagSeconds")]
    pub lag_seconds: u64,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsReading>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsReading>,
}

/// The `status` of a whole answer: the worst check's, or `starting` while the agent
/// has not started the app yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    Healthy,
    Degraded,
    Unhealthy,
    /// Not ready yet (HTTP 503); `phase` says what it is doing.
    Starting,
}

impl From<Status> for Overall {
    fn from(status: Status) -> Self {
        match status {
            Status::Healthy => Overall::Healthy,
            Status::Degraded => Overall::Degraded,
            Status::Unhealthy => Overall::Unhealthy,
        }
    }
}

/// What the server is doing, as far as the answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The checks decide (liveness: no checks, healthy).
    Serving,
    /// The agent is still starting: 503 `starting` with the stage as `phase`.
    Starting(Stage),
    /// Going away: 503 `unhealthy` with `"draining": true`.
    Draining,
}

/// One answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Overall,
    /// Present only while starting: `migrating`, then `starting-app`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
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
            self.migrations.as_ref().map(|m| m.status),
            self.logs.as_ref().map(|l| l.status),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Status::Healthy)
    }

    /// The same checks without their error texts (`HEALTH_SHOW_DETAILS=status`): those
    /// can name the database's user, its name and the client's address.
    pub fn without_details(mut self) -> Self {
        for check in [&mut self.database, &mut self.app].into_iter().flatten() {
            check.error = None;
        }
        if let Some(migrations) = &mut self.migrations {
            migrations.error = None;
        }
        self
    }
}

impl Report {
    pub fn new(
        checks: Checks,
        mode: Mode,
        version: &str,
        uptime: Duration,
        now: SystemTime,
    ) -> Self {
        let (status, phase) = match mode {
            Mode::Serving => (checks.status().into(), None),
            Mode::Starting(stage) => (Overall::Starting, Some(stage.as_str())),
            Mode::Draining => (Overall::Unhealthy, None),
        };
        Report {
            status,
            phase,
            draining: mode == Mode::Draining,
            timestamp: humantime::format_rfc3339_seconds(now).to_string(),
            version: version.into(),
            uptime: uptime.as_secs(),
            checks,
        }
    }

    /// 200 for healthy and degraded, 503 for unhealthy and starting.
    pub fn http_status(&self) -> hyper::StatusCode {
        match self.status {
            Overall::Healthy | Overall::Degraded => hyper::StatusCode::OK,
            Overall::Unhealthy | Overall::Starting => hyper::StatusCode::SERVICE_UNAVAILABLE,
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
            ..Checks::default()
        };
        let report = Report::new(
            checks,
            Mode::Serving,
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
            ..Checks::default()
        };
        assert_eq!(checks.status(), Status::Degraded);
        let degraded = Report::new(checks.clone(), Mode::Serving, "v", Duration::ZERO, at(0));
        assert_eq!(degraded.http_status(), hyper::StatusCode::OK);

        checks.app = Some(CheckResult {
            status: Status::Unhealthy,
            response_time: 0,
            error: Some("connection refused".into()),
        });
        let report = Report::new(checks, Mode::Serving, "v", Duration::ZERO, at(0));
        assert_eq!(report.status, Overall::Unhealthy);
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
        let report = Report::new(
            Checks::default(),
            Mode::Draining,
            "v",
            Duration::ZERO,
            at(0),
        );
        assert_eq!(report.http_status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        let json = String::from_utf8(report.to_json()).unwrap();
        assert!(
            json.starts_with(r#"{"status":"unhealthy","draining":true,"#),
            "{json}"
        );
    }

    #[test]
    fn starting_is_503_with_its_phase() {
        for (stage, phase) in [
            (Stage::Migrating, "migrating"),
            (Stage::StartingApp, "starting-app"),
        ] {
            let report = Report::new(
                Checks::default(),
                Mode::Starting(stage),
                "v",
                Duration::ZERO,
                at(0),
            );
            assert_eq!(report.http_status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
            let json = String::from_utf8(report.to_json()).unwrap();
            assert!(
                json.starts_with(&format!(
                    r#"{{"status":"starting","phase":"{phase}","timestamp":"#
                )),
                "{json}"
            );
        }
    }

    fn migrations(status: Status, pending: usize, error: Option<&str>) -> MigrationsReading {
        MigrationsReading {
            status,
            current: Some(3),
            latest: Some(3 + pending as i32),
            pending: Some(pending),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn migrations_and_logs_count_towards_the_status_in_their_documented_shape() {
        let checks = Checks {
            migrations: Some(migrations(Status::Degraded, 1, None)),
            logs: Some(LogsReading {
                status: Status::Healthy,
                shipped: 120,
                dropped: 0,
                rejected: 0,
                lag_seconds: 2,
            }),
            ..Checks::default()
        };
        assert_eq!(checks.status(), Status::Degraded);
        let report = Report::new(checks, Mode::Serving, "v", Duration::ZERO, at(0));
        assert_eq!(report.http_status(), hyper::StatusCode::OK);
        let json = String::from_utf8(report.to_json()).unwrap();
        assert!(
            json.ends_with(r#""checks":{"migrations":{"status":"degraded","current":3,"latest":4,"pending":1},"logs":{"status":"healthy","shipped":120,"dropped":0,"rejected":0,"lagSeconds":2}}}"#),
            "{json}"
        );
    }

    #[test]
    fn without_details_keeps_the_shape_and_statuses_but_no_error_text() {
        let failed = CheckResult {
            status: Status::Unhealthy,
            response_time: 3,
            error: Some(r#"FATAL: password authentication failed for user "app""#.into()),
        };
        let checks = Checks {
            database: Some(failed.clone()),
            app: Some(failed),
            migrations: Some(migrations(Status::Unhealthy, 0, Some("V2__x changed"))),
            ..Checks::default()
        }
        .without_details();
        let json = serde_json::to_string(&checks).unwrap();
        assert_eq!(
            json,
            r#"{"database":{"status":"unhealthy","responseTime":3},"app":{"status":"unhealthy","responseTime":3},"migrations":{"status":"unhealthy","current":3,"latest":3,"pending":0}}"#
        );
        assert_eq!(checks.status(), Status::Unhealthy);
    }
}
