//! Exponential backoff with "equal jitter": attempt `n` (from 1) waits between half and
//! all of `first · 2^(n-1)`, capped at `max`. Half fixed, half random, so a fleet of tasks
//! that failed together spreads out without any one of them waiting needlessly long.

use std::time::Duration;

/// A retry loop's delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The full delay before the first retry (attempt 1).
    pub first: Duration,
    /// No delay is longer.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max }
    }

    /// The delay before retry `attempt` (1 for the first retry; 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self.full(attempt);
        let half = full / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// The delay without its jitter: the most `delay(attempt)` can be.
    pub fn full(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_and_is_capped_with_jitter() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        assert_eq!(b.full(0), Duration::from_millis(500));
        assert_eq!(b.full(1), Duration::from_millis(500));
        assert_eq!(b.full(2), Duration::from_secs(1));
        assert_eq!(b.full(6), Duration::from_secs(10));
        for attempt in 0..40 {
            let d = b.delay(attempt);
            let full = b.full(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn a_huge_first_delay_saturates_instead_of_overflowing() {
        let b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.full(30), Duration::MAX);
        assert!(b.delay(30) >= Duration::MAX / 2);
    }
}
