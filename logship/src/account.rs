//! Self-accounting: every line is captured, shipped, or counted as dropped or rejected
//! with a reason. Counters are atomics (the capture tasks and the shipper update them
//! concurrently) and are published as an Embedded Metric Format event.
//!
//! [`Progress`] reads the same counters for `/health` (the agent's `checks.logs`): how
//! long events have waited for delivery, and when events were last dropped. It only
//! samples them; the pipeline keeps no clock for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::structure::Event;

/// Namespace of the EMF metrics.
pub const METRICS_NAMESPACE: &str = "deckhand/agent";

/// What happened to the app's output so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lines read from the app's stdout and stderr.
    pub lines: AtomicU64,
    /// Events made from them (multi-line events count once), before splitting.
    pub events: AtomicU64,
    /// Extra parts created by splitting oversized events.
    pub split_parts: AtomicU64,
    /// Events the service accepted.
    pub shipped: AtomicU64,
    pub shipped_bytes: AtomicU64,
    pub rejected_too_new: AtomicU64,
    pub rejected_too_old: AtomicU64,
    pub rejected_expired: AtomicU64,
    /// Events in batches the service refused for good (an invalid parameter, an event
    /// too large, a request it cannot read): dropped so later events are not held up.
    pub rejected_invalid: AtomicU64,
    /// Events dropped because the buffer was full (drop-oldest).
    pub dropped_buffer_full: AtomicU64,
    /// Events still buffered when the stop deadline passed.
    pub dropped_at_shutdown: AtomicU64,
    /// Events not written to the agent's stdout because it was not being read fast
    /// enough and its queue was full (drop-oldest), or it was still full at the stop.
    pub dropped_stdout: AtomicU64,
    /// Lines a pipeline stage failed on (an internal error): each was replaced by an
    /// event that says how many bytes were lost.
    pub failed_lines: AtomicU64,
    /// PutLogEvents calls retried.
    pub retries: AtomicU64,
    /// PutLogEvents calls that failed because of the destination (access denied, the
    /// group missing), before being tried again later.
    pub ship_errors: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter by name, for summaries and metrics.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("lines", get(&self.lines)),
            ("events", get(&self.events)),
            ("split_parts", get(&self.split_parts)),
            ("shipped", get(&self.shipped)),
            ("shipped_bytes", get(&self.shipped_bytes)),
            ("rejected_too_new", get(&self.rejected_too_new)),
            ("rejected_too_old", get(&self.rejected_too_old)),
            ("rejected_expired", get(&self.rejected_expired)),
            ("rejected_invalid", get(&self.rejected_invalid)),
            ("dropped_buffer_full", get(&self.dropped_buffer_full)),
            ("dropped_at_shutdown", get(&self.dropped_at_shutdown)),
            ("dropped_stdout", get(&self.dropped_stdout)),
            ("failed_lines", get(&self.failed_lines)),
            ("retries", get(&self.retries)),
            ("ship_errors", get(&self.ship_errors)),
        ]
    }
}

/// What `/health` shows of the delivery to CloudWatch Logs: a snapshot, read only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogHealth {
    /// Events CloudWatch Logs accepted.
    pub shipped: u64,
    /// Events dropped on the way: the buffer was full, or still held them at the stop.
    pub dropped: u64,
    /// Events CloudWatch Logs refused (their timestamps, or a batch refused for good).
    pub rejected: u64,
    /// How long events have been waiting without delivery making progress (to the
    /// sampling interval); zero when nothing waits.
    pub lag: Duration,
    /// How long ago events were last dropped; `None` when never.
    pub last_drop: Option<Duration>,
}

/// Follows the delivery from samples of the counters and of the shipper's buffer: since
/// when events have been waiting without any being delivered, and when events were last
/// dropped.
///
/// "Waiting" starts with the first sample that sees events arrive (or still buffered)
/// while nothing was delivered, and ends with a sample that sees deliveries and an
/// empty buffer; deliveries with events still buffered restart it (the backlog moves).
/// Events taken out of the buffer but not delivered keep a wait going, but do not start
/// one: a quiet app's last events shows as lag from its next event on.
#[derive(Debug)]
pub struct Progress {
    state: Mutex<Sample>,
}

#[derive(Debug)]
struct Sample {
    /// Events handed to the pipeline so far (events and their extra parts).
    arrived: u64,
    /// Events CloudWatch Logs has answered for (accepted or refused).
    delivered: u64,
    dropped: u64,
    waiting_since: Option<Instant>,
    dropped_at: Option<Instant>,
}

/// Where the pipeline stands, for telling when it has gone quiet (the agent hands
/// memory back then): `moved` grows with every line read, event made, answered or
/// dropped, and every call retried or failed; `settled` says that when events are
/// shipped, the first have been answered (or a call has failed) and none waits for an
/// answer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub moved: u64,
    pub settled: bool,
}

impl Counters {
    /// The pipeline's [`Activity`] now; `ships` says whether events go to CloudWatch
    /// Logs (without, nothing waits for an answer).
    pub fn activity(&self, ships: bool) -> Activity {
        let t = Totals::of(self);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let failed = get(&self.retries) + get(&self.ship_errors);
        let answered = t.delivered + t.dropped;
        Activity {
            moved: get(&self.lines) + t.arrived + answered + failed,
            settled: !ships || ((answered > 0 || failed > 0) && answered >= t.arrived),
        }
    }
}

/// The counters' totals that [`Progress`] follows.
struct Totals {
    arrived: u64,
    delivered: u64,
    dropped: u64,
    rejected: u64,
    shipped: u64,
}

impl Totals {
    fn of(c: &Counters) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rejected = get(&c.rejected_too_new)
            + get(&c.rejected_too_old)
            + get(&c.rejected_expired)
            + get(&c.rejected_invalid);
        let shipped = get(&c.shipped);
        Totals {
            arrived: get(&c.events) + get(&c.split_parts),
            delivered: shipped + rejected,
            dropped: get(&c.dropped_buffer_full) + get(&c.dropped_at_shutdown),
            rejected,
            shipped,
        }
    }
}

impl Progress {
    /// Starts following from what `counters` hold now.
    pub fn new(counters: &Counters) -> Self {
        let t = Totals::of(counters);
        Progress {
            state: Mutex::new(Sample {
                arrived: t.arrived,
                delivered: t.delivered,
                dropped: t.dropped,
                waiting_since: None,
                dropped_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sample> {
        // Every update assigns whole fields: a poisoned lock still holds a good sample.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One sample at `now`, with `buffered` events in the shipper's buffer.
    pub fn observe(&self, counters: &Counters, buffered: usize, now: Instant) {
        let t = Totals::of(counters);
        let mut s = self.lock();
        let arrived = t.arrived > s.arrived;
        let delivered = t.delivered > s.delivered;
        if t.dropped > s.dropped {
            s.dropped_at = Some(now);
        }
        s.waiting_since = if delivered {
            (buffered > 0).then_some(now)
        } else if arrived || buffered > 0 {
            Some(s.waiting_since.unwrap_or(now))
        } else {
            s.waiting_since
        };
        s.arrived = t.arrived;
        s.delivered = t.delivered;
        s.dropped = t.dropped;
    }

    /// The figures now, with the wait and the last drop as of the last sample.
    pub fn health(&self, counters: &Counters, now: Instant) -> LogHealth {
        let t = Totals::of(counters);
        let s = self.lock();
        LogHealth {
            shipped: t.shipped,
            dropped: t.dropped,
            rejected: t.rejected,
            lag: s
                .waiting_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
            last_drop: s.dropped_at.map(|at| now.saturating_duration_since(at)),
        }
    }
}

/// A read-only view of the delivery, for `/health`: cheap to clone, and to read from
/// any thread (atomics and one short lock).
#[derive(Debug, Clone)]
pub struct DeliveryHealth {
    pub(crate) progress: Arc<Progress>,
    pub(crate) counters: Arc<Counters>,
}

impl DeliveryHealth {
    pub fn snapshot(&self) -> LogHealth {
        self.progress.health(&self.counters, Instant::now())
    }
}

/// An Embedded Metric Format event: a root `_aws` object declaring the metrics, and
/// the values as root members. `redactions` are the sanitizer's counts by detector.
pub fn emf_event(
    counters: &Counters,
    redactions: &[(&'static str, u64)],
    dimensions: &[(&str, &str)],
    now_ms: i64,
) -> Event {
    let mut root = Map::new();
    let mut metrics = Vec::new();
    for (name, value) in counters.snapshot() {
        let unit = if name == "shipped_bytes" {
            "Bytes"
        } else {
            "Count"
        };
        metrics.push(json!({"Name": name, "Unit": unit}));
        root.insert(name.into(), json!(value));
    }
    for (detector, value) in redactions {
        let name = format!("redacted_{detector}");
        metrics.push(json!({"Name": name, "Unit": "Count"}));
        root.insert(name, json!(value));
    }
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    let dims: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    root.insert("source".into(), json!("agent"));
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [dims],
                "Metrics": metrics,
            }]
        }),
    );
    Event::new(now_ms, Value::Object(root).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_moves_with_the_pipeline_and_settles_once_every_event_is_answered() {
        let c = Counters::default();
        // Not shipping: nothing waits for an answer.
        assert_eq!(
            c.activity(false),
            Activity {
                moved: 0,
                settled: true
            }
        );
        // Shipping, nothing answered yet: the first round is still to come.
        assert!(!c.activity(true).settled);
        Counters::add(&c.lines, 3);
        Counters::add(&c.events, 2);
        let read = c.activity(true);
        assert_eq!(read.moved, 5);
        assert!(!read.settled);
        Counters::add(&c.shipped, 1);
        assert!(
            !c.activity(true).settled,
            "one of two events is still waiting"
        );
        Counters::add(&c.rejected_too_old, 1);
        let answered = c.activity(true);
        assert!(answered.settled);
        assert_eq!(answered.moved, 7);
        // A call that failed also ends the first round, but not the wait of what it
        // carried.
        let failing = Counters::default();
        Counters::add(&failing.ship_errors, 1);
        assert!(failing.activity(true).settled);
        Counters::add(&failing.events, 1);
        assert!(!failing.activity(true).settled);
        Counters::add(&failing.dropped_buffer_full, 1);
        assert!(failing.activity(true).settled);
    }

    #[test]
    fn emf_declares_every_value_it_carries() {
        let c = Counters::default();
        Counters::add(&c.shipped, 7);
        Counters::add(&c.rejected_invalid, 3);
        let e = emf_event(&c, &[("card", 2)], &[("TaskId", "abc")], 1_000);
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["shipped"], 7);
        assert_eq!(v["rejected_invalid"], 3);
        assert_eq!(v["redacted_card"], 2);
        assert_eq!(v["TaskId"], "abc");
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], METRICS_NAMESPACE);
        assert_eq!(decl["Dimensions"][0][0], "TaskId");
        for m in decl["Metrics"].as_array().unwrap() {
            assert!(v.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
        }
        assert_eq!(v["_aws"]["Timestamp"], 1_000);
    }

    fn secs(start: Instant, n: u64) -> Instant {
        start + Duration::from_secs(n)
    }

    #[test]
    fn lag_grows_while_nothing_is_delivered_and_ends_when_all_is() {
        let c = Counters::default();
        let p = Progress::new(&c);
        let t0 = Instant::now();
        p.observe(&c, 0, t0);
        assert_eq!(
            p.health(&c, secs(t0, 5)).lag,
            Duration::ZERO,
            "nothing waits"
        );

        Counters::add(&c.events, 3);
        p.observe(&c, 3, secs(t0, 1));
        Counters::add(&c.events, 2);
        p.observe(&c, 0, secs(t0, 2)); // taken into a batch, not delivered
        p.observe(&c, 0, secs(t0, 3)); // still not
        let h = p.health(&c, secs(t0, 10));
        assert_eq!(h.lag, Duration::from_secs(9));
        assert_eq!((h.shipped, h.dropped, h.rejected), (0, 0, 0));

        Counters::add(&c.shipped, 4);
        Counters::add(&c.rejected_invalid, 1);
        p.observe(&c, 0, secs(t0, 11));
        let h = p.health(&c, secs(t0, 12));
        assert_eq!(h.lag, Duration::ZERO);
        assert_eq!((h.shipped, h.rejected), (4, 1));
    }

    #[test]
    fn a_moving_backlog_restarts_the_wait() {
        let c = Counters::default();
        let p = Progress::new(&c);
        let t0 = Instant::now();
        Counters::add(&c.events, 100);
        p.observe(&c, 100, t0);
        Counters::add(&c.shipped, 50);
        p.observe(&c, 50, secs(t0, 4));
        assert_eq!(p.health(&c, secs(t0, 5)).lag, Duration::from_secs(1));
    }

    #[test]
    fn drops_are_counted_and_dated() {
        let c = Counters::default();
        let p = Progress::new(&c);
        let t0 = Instant::now();
        p.observe(&c, 0, t0);
        assert_eq!(p.health(&c, t0).last_drop, None);
        Counters::add(&c.dropped_buffer_full, 7);
        p.observe(&c, 10, secs(t0, 2));
        Counters::add(&c.shipped, 10);
        p.observe(&c, 0, secs(t0, 3));
        let h = p.health(&c, secs(t0, 30));
        assert_eq!(h.dropped, 7);
        assert_eq!(h.last_drop, Some(Duration::from_secs(28)));
        assert_eq!(h.lag, Duration::ZERO);
    }
}
