//! The log delivery check (under the agent with a log group): what the log pipeline
//! reports of its delivery to CloudWatch Logs, judged against `HEALTH_LOGS_MAX_LAG`.
//!
//! It is never unhealthy: losing logs must not take the service down, so the worst it
//! reports is "degraded" (HTTP 200), for dashboards and alarms. It reads figures the
//! pipeline already keeps; it does not ship, retry or count anything itself.

use std::time::Duration;

use crate::host::LogDelivery;
use crate::report::{LogsReading, Status};

/// Degraded when delivery is more than `max_lag` behind, or events were dropped within
/// the last `max_lag`; healthy otherwise.
pub(crate) fn judge(delivery: &LogDelivery, max_lag: Duration) -> LogsReading {
    let behind = delivery.lag > max_lag;
    let dropping = delivery.last_drop.is_some_and(|ago| ago <= max_lag);
    LogsReading {
        status: if behind || dropping {
            Status::Degraded
        } else {
            Status::Healthy
        },
        shipped: delivery.shipped,
        dropped: delivery.dropped,
        rejected: delivery.rejected,
        lag_seconds: delivery.lag.as_secs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(60);

    fn delivery(lag: u64, last_drop: Option<u64>) -> LogDelivery {
        LogDelivery {
            shipped: 10,
            dropped: u64::from(last_drop.is_some()) * 5,
            rejected: 1,
            lag: Duration::from_secs(lag),
            last_drop: last_drop.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_lag_over_the_limit_is_degraded_never_unhealthy() {
        assert_eq!(judge(&delivery(0, None), MAX).status, Status::Healthy);
        assert_eq!(judge(&delivery(60, None), MAX).status, Status::Healthy);
        let behind = judge(&delivery(61, None), MAX);
        assert_eq!(behind.status, Status::Degraded);
        assert_eq!(behind.lag_seconds, 61);
        let hours = judge(&delivery(7 * 3600, Some(0)), MAX);
        assert_eq!(hours.status, Status::Degraded);
    }

    #[test]
    fn drops_count_while_they_are_recent() {
        let now = judge(&delivery(0, Some(3)), MAX);
        assert_eq!(now.status, Status::Degraded);
        assert_eq!((now.shipped, now.dropped, now.rejected), (10, 5, 1));
        // Old drops stay in the figures but no longer degrade the answer.
        let old = judge(&delivery(0, Some(61)), MAX);
        assert_eq!(old.status, Status::Healthy);
        assert_eq!(old.dropped, 5);
    }
}
