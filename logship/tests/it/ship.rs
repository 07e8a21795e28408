//! Shipping against the moto server the test services start, and against a small
//! PutLogEvents endpoint double for the faults moto cannot produce (throttling,
//! access denied, a batch refused as invalid).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use logship::account::Counters;
use logship::buffer::{Buffer, FullPolicy};
use logship::ship::{deliver, stop_handle, Delivery, Destination, Shipper, Summary};
use logship::structure::{now_ms, Event};
use testkit::http::{LogsDouble, Outcome, THROTTLING};
use tokio::time::Instant;

use crate::sdk;

fn delivery() -> Delivery {
    Delivery {
        flush: Duration::from_millis(200),
        metrics_interval: Duration::from_secs(3600),
        dimensions: vec![("TaskId".into(), "test".into())],
        redactions: Arc::new(Vec::new),
    }
}

fn event(i: usize, ts: i64) -> Event {
    Event::new(ts, format!("{{\"seq\":{i},\"message\":\"line {i}\"}}"))
}

/// Every message of a stream, oldest first.
async fn read_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<String> {
    let events = testkit::log_events(client, group, stream).await;
    events.into_iter().map(|(_, m)| m).collect()
}

#[tokio::test]
async fn events_arrive_in_order_across_many_calls_and_the_group_is_created() {
    let endpoint = testkit::service_var("AWS_ENDPOINT_URL");
    let config = sdk(&endpoint).await;
    let group = format!("/deckhand/test/{}", testkit::unique_name("ship"));
    let dest = Destination {
        group: group.clone(),
        stream: "app/web/task1".into(),
        retention_days: Some(7),
    };
    let counters = Arc::new(Counters::default());
    let buffer = Arc::new(Buffer::new(
        64 << 20,
        FullPolicy::DropOldest,
        counters.clone(),
    ));
    let (stop, stopped) = stop_handle();
    let task = tokio::spawn(deliver(
        Shipper::new(&config, dest),
        buffer.clone(),
        counters.clone(),
        delivery(),
        stopped,
    ));
    let start = now_ms();
    let total = 25_000;
    for i in 0..total {
        buffer.push(event(i, start + i as i64 / 100)).await;
    }
    stop.stop_by(Instant::now() + Duration::from_secs(60));
    let summary = task.await.unwrap();
    assert_eq!(summary.unshipped, 0);

    let client = aws_sdk_cloudwatchlogs::Client::new(&config);
    let messages = read_stream(&client, &group, "app/web/task1").await;
    let seqs: Vec<usize> = messages
        .iter()
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok()?["seq"].as_u64())
        .map(|s| s as usize)
        .collect();
    assert_eq!(seqs.len(), total, "none lost, none duplicated");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("\"_aws\"") && m.contains("\"shipped\"")),
        "the final metrics event is shipped"
    );
    let groups = client
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(7));
    assert!(counters.shipped.load(Ordering::Relaxed) >= total as u64);
}

/// A CloudWatch Logs endpoint double: accepts every call but PutLogEvents, which it
/// answers as `put(call_number)` says.
async fn double(put: fn(usize) -> Outcome) -> LogsDouble {
    LogsDouble::start(move |operation, n| match operation {
        "PutLogEvents" => put(n),
        _ => Outcome::Accept,
    })
    .await
}

const DENIED: &str = r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: logs:PutLogEvents"}"#;

const INVALID: &str = r#"{"__type":"InvalidParameterException","message":"Log event too large: 1048577 bytes exceeds limit of 1048576"}"#;

/// Queues `events` events and delivers them to the double until `within` has passed.
async fn deliver_to(d: &LogsDouble, events: usize, within: Duration) -> (Summary, Arc<Counters>) {
    deliver_events(d, (0..events).map(|i| event(i, now_ms())), within).await
}

/// Queues `events` and delivers them to the double until `within` has passed.
async fn deliver_events(
    d: &LogsDouble,
    events: impl IntoIterator<Item = Event>,
    within: Duration,
) -> (Summary, Arc<Counters>) {
    let config = sdk(&d.url).await;
    let counters = Arc::new(Counters::default());
    let buffer = Arc::new(Buffer::new(
        1 << 20,
        FullPolicy::DropOldest,
        counters.clone(),
    ));
    for e in events {
        buffer.push(e).await;
    }
    let (stop, stopped) = stop_handle();
    let dest = Destination {
        group: "g".into(),
        stream: "s".into(),
        retention_days: None,
    };
    stop.stop_by(Instant::now() + within);
    let summary = deliver(
        Shipper::new(&config, dest),
        buffer,
        counters.clone(),
        delivery(),
        stopped,
    )
    .await;
    (summary, counters)
}

#[tokio::test]
async fn throttling_is_retried_until_accepted() {
    let d = double(|n| {
        if n < 3 {
            Outcome::Fail(400, THROTTLING)
        } else {
            Outcome::Accept
        }
    })
    .await;
    let (summary, counters) = deliver_to(&d, 50, Duration::from_secs(30)).await;
    assert_eq!(summary.unshipped, 0);
    assert_eq!(counters.retries.load(Ordering::Relaxed), 3);
    let got = d.accepted.lock().unwrap();
    assert_eq!(got.iter().filter(|m| m.contains("\"seq\"")).count(), 50);
}

#[tokio::test]
async fn access_denied_is_not_retried_in_a_loop_and_what_is_left_is_counted() {
    let d = double(|_| Outcome::Fail(400, DENIED)).await;
    // Seconds for the first call on a loaded machine; the next try is a minute away.
    let (summary, counters) = deliver_to(&d, 20, Duration::from_secs(5)).await;
    assert_eq!(
        d.calls()
            .iter()
            .filter(|c| c.operation == "PutLogEvents")
            .count(),
        1,
        "a non-retryable error waits a minute before the next try"
    );
    assert_eq!(
        summary.unshipped, 20,
        "what could not be shipped is counted"
    );
    assert_eq!(counters.dropped_at_shutdown.load(Ordering::Relaxed), 20);
    assert_eq!(counters.ship_errors.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_batch_refused_as_invalid_is_counted_and_the_next_batches_are_shipped() {
    let d = double(|n| {
        if n == 0 {
            Outcome::Fail(400, INVALID)
        } else {
            Outcome::Accept
        }
    })
    .await;
    // One call spans at most 24 hours: ten events from two days ago and ten from now
    // make two batches, the old one first.
    let old = now_ms() - 2 * 24 * 3600 * 1000;
    let events = (0..10)
        .map(|i| event(i, old))
        .chain((10..20).map(|i| event(i, now_ms())));
    let (summary, counters) = deliver_events(&d, events, Duration::from_secs(30)).await;
    assert_eq!(
        summary.unshipped, 0,
        "nothing is left waiting behind the bad batch"
    );
    assert_eq!(
        counters.rejected_invalid.load(Ordering::Relaxed),
        10,
        "the refused batch's events are counted"
    );
    assert_eq!(
        counters.retries.load(Ordering::Relaxed),
        0,
        "a batch the service refuses as invalid is not sent again"
    );
    assert_eq!(counters.ship_errors.load(Ordering::Relaxed), 0);
    let got = d.accepted.lock().unwrap();
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok()?["seq"].as_u64())
        .collect();
    assert_eq!(
        seqs,
        (10..20).collect::<Vec<u64>>(),
        "the later batch is shipped"
    );
    assert!(
        got.iter()
            .any(|m| m.contains("\"_aws\"") && m.contains("\"rejected_invalid\":10")),
        "the final metrics carry the count: {got:?}"
    );
}
