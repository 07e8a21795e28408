//! Self-accounting: every line is captured, shipped, or counted as dropped or rejected
//! with a reason. Counters are atomics (the capture tasks and the shipper update them
//! concurrently) and are published as an Embedded Metric Format event.

use std::sync::atomic::{AtomicU64, Ordering};

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
    Event {
        timestamp_ms: now_ms,
        json: Value::Object(root).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
