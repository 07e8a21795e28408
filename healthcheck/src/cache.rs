//! A check result reused for a while, with one check in flight at a time: however many
//! requests arrive together, they share one run of the check. This is what keeps an ALB
//! (every node of which checks every target) from becoming load on the database.
//!
//! Not a general cache: it holds one value and forgets nothing but by age.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One value, its age, and the lock that makes refreshing single-flight.
pub(crate) struct Cached<T> {
    /// How long a value is reused.
    ttl: Duration,
    /// The last value. A plain mutex: it is held for a clone, never across an await.
    last: Mutex<Last<T>>,
    /// Held while a check runs; waiters queue here and then take its result.
    refresh: tokio::sync::Mutex<()>,
}

struct Last<T> {
    value: Option<(Instant, T)>,
    /// Counts completed checks, so a waiter can tell that one finished while it waited
    /// (even when `ttl` is zero and the value is already "old").
    generation: u64,
}

impl<T: Clone> Cached<T> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Cached {
            ttl,
            last: Mutex::new(Last {
                value: None,
                generation: 0,
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached value when it is fresh; otherwise runs `check` (once, for every
    /// caller waiting at the same time) and caches its result.
    pub(crate) async fn get<F, Fut>(&self, check: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let seen = match self.fresh() {
            Ok(value) => return value,
            Err(generation) => generation,
        };
        let _refreshing = self.refresh.lock().await;
        {
            let last = self.lock_last();
            if last.generation != seen {
                if let Some((_, value)) = &last.value {
                    return value.clone();
                }
            }
        }
        let value = check().await;
        let mut last = self.lock_last();
        last.value = Some((Instant::now(), value.clone()));
        last.generation += 1;
        value
    }

    /// The value if it is younger than `ttl`, else the current generation.
    fn fresh(&self) -> Result<T, u64> {
        let last = self.lock_last();
        match &last.value {
            Some((at, value)) if at.elapsed() < self.ttl => Ok(value.clone()),
            _ => Err(last.generation),
        }
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Last<T>> {
        // A panic while holding this lock cannot leave `Last` half-written (it is
        // assigned whole), so a poisoned lock is still good.
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A check that counts its runs and takes 100 ms (of paused, virtual time).
    async fn slow_check(runs: &AtomicU32) -> u32 {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        n
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_check() {
        let cache = Arc::new(Cached::new(Duration::from_secs(1)));
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (cache, runs) = (cache.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                cache.get(|| slow_check(&runs)).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 1);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_is_reused_until_it_is_older_than_the_ttl() {
        let cache = Cached::new(Duration::from_secs(1));
        let runs = AtomicU32::new(0);
        assert_eq!(cache.get(|| slow_check(&runs)).await, 1);
        tokio::time::advance(Duration::from_millis(800)).await;
        assert_eq!(cache.get(|| slow_check(&runs)).await, 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(cache.get(|| slow_check(&runs)).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_ttl_waiters_still_share_the_check_in_flight() {
        let cache = Arc::new(Cached::new(Duration::ZERO));
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, runs) = (cache.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                cache.get(|| slow_check(&runs)).await
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get(|| slow_check(&runs)).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_check_leaves_the_next_caller_to_run_one() {
        let cache = Cached::new(Duration::from_secs(1));
        let runs = AtomicU32::new(0);
        let cancelled =
            tokio::time::timeout(Duration::from_millis(10), cache.get(|| slow_check(&runs))).await;
        assert!(cancelled.is_err());
        assert_eq!(cache.get(|| slow_check(&runs)).await, 2);
    }
}
