//! PutLogEvents batches that honour every limit of the real service — including the
//! ones the emulator does not enforce (10,000 events, 1,048,576 bytes, 1 MB per event,
//! 24 h span) — and splitting of events too large for one.
//!
//! Not here: when to flush (the shipping loop decides) and the calls themselves.

use std::time::Duration;

use crate::structure::{push_json_string, Event};

/// PutLogEvents: at most 10,000 events per call.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// PutLogEvents: at most 1,048,576 bytes per call, counting each message's UTF-8 bytes
/// plus [`EVENT_OVERHEAD_BYTES`].
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// PutLogEvents: every event counts 26 bytes on top of its message.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// PutLogEvents: an event is at most 1 MB (since April 2025; 256 KB before). Capped so
/// that one largest event plus its overhead still fits a call.
pub const MAX_EVENT_BYTES: usize = MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES;
/// The smallest event size limit we accept: a part must hold its wrapper and some data.
pub const MIN_EVENT_BYTES: usize = 1024;
/// PutLogEvents: the events of one call may span at most 24 hours.
pub const MAX_BATCH_SPAN: Duration = Duration::from_secs(24 * 3600);

/// One PutLogEvents call's worth of events, in chronological order.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    /// Bytes as the service counts them (messages + 26 per event).
    pub bytes: usize,
}

/// The size the service charges an event.
pub fn event_bytes(event: &Event) -> usize {
    event.json.len() + EVENT_OVERHEAD_BYTES
}

/// Collects events into batches. Events may arrive slightly out of order (two
/// streams, app timestamps); each batch is sorted (stably) when it closes.
#[derive(Debug, Default)]
pub struct Batcher {
    current: Batch,
    oldest: i64,
    newest: i64,
}

impl Batcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event no larger than [`MAX_EVENT_BYTES`] (use [`split`] first). Returns
    /// the batch it closed to make room, if it had to.
    pub fn push(&mut self, event: Event) -> Option<Batch> {
        let size = event_bytes(&event);
        debug_assert!(size <= MAX_BATCH_BYTES, "split events before batching");
        let ts = event.timestamp_ms;
        let full = !self.current.events.is_empty()
            && (self.current.events.len() == MAX_BATCH_EVENTS
                || self.current.bytes + size > MAX_BATCH_BYTES
                || ts.max(self.newest) - ts.min(self.oldest) > MAX_BATCH_SPAN.as_millis() as i64);
        let closed = if full { self.take() } else { None };
        if self.current.events.is_empty() {
            self.oldest = ts;
            self.newest = ts;
        }
        self.oldest = self.oldest.min(ts);
        self.newest = self.newest.max(ts);
        self.current.bytes += size;
        self.current.events.push(event);
        closed
    }

    /// Closes the current batch, if it holds anything.
    pub fn take(&mut self) -> Option<Batch> {
        if self.current.events.is_empty() {
            return None;
        }
        let mut batch = std::mem::take(&mut self.current);
        batch.events.sort_by_key(|e| e.timestamp_ms);
        Some(batch)
    }

    pub fn len(&self) -> usize {
        self.current.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.events.is_empty()
    }
}

/// Cuts an event larger than `max_bytes` into parts, each a valid JSON object no
/// larger than `max_bytes`:
/// `{"deckhand_part":{"id":"…","index":1,"count":3},"data":"…"}`.
/// Concatenating the `data` strings in index order gives the original event's JSON.
/// An event that fits is returned as it is.
pub fn split(event: Event, max_bytes: usize, id: u64) -> Vec<Event> {
    if event.json.len() <= max_bytes {
        return vec![event];
    }
    // Room for data: the limit minus the wrapper with the widest index and count.
    let wrapper = part_json(id, MAX_PARTS, MAX_PARTS, "").len();
    let budget = max_bytes.saturating_sub(wrapper).max(1);
    let mut cuts = vec![0];
    let mut used = 0;
    for (i, c) in event.json.char_indices() {
        let cost = escaped_len(c);
        if used + cost > budget {
            cuts.push(i);
            used = 0;
        }
        used += cost;
    }
    cuts.push(event.json.len());
    let count = cuts.len() - 1;
    cuts.windows(2)
        .enumerate()
        .map(|(n, w)| Event {
            timestamp_ms: event.timestamp_ms,
            json: part_json(id, n + 1, count, &event.json[w[0]..w[1]]),
        })
        .collect()
}

/// An upper bound on parts per event (a 1 GB line at 1 KB parts), used to size the
/// wrapper.
const MAX_PARTS: usize = 9_999_999;

fn part_json(id: u64, index: usize, count: usize, data: &str) -> String {
    let mut json = String::with_capacity(data.len() + 96);
    json.push_str("{\"deckhand_part\":{\"id\":\"");
    json.push_str(&format!("{id:016x}"));
    json.push_str(&format!(
        "\",\"index\":{index},\"count\":{count}}},\"data\":"
    ));
    push_json_string(&mut json, data);
    json.push('}');
    json
}

/// Bytes `c` takes inside a JSON string written by [`push_json_string`].
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' => 2,
        '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{fffd}' => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: i64, size: usize) -> Event {
        let json = format!("{{\"m\":\"{}\"}}", "x".repeat(size.saturating_sub(8)));
        assert_eq!(json.len(), size.max(8));
        Event {
            timestamp_ms: ts,
            json,
        }
    }

    fn drain(b: &mut Batcher, events: impl IntoIterator<Item = Event>) -> Vec<Batch> {
        let mut out: Vec<Batch> = events.into_iter().filter_map(|e| b.push(e)).collect();
        out.extend(b.take());
        out
    }

    #[test]
    fn at_most_10000_events_per_call() {
        let batches = drain(&mut Batcher::new(), (0..25_000).map(|i| event(i, 10)));
        let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, [10_000, 10_000, 5_000]);
    }

    #[test]
    fn at_most_1048576_bytes_per_call_counting_26_per_event() {
        // 1,000 events of 1,024 + 26 bytes: 998 fit (1,047,900), the 999th would not.
        let batches = drain(&mut Batcher::new(), (0..1_000).map(|i| event(i, 1_024)));
        assert_eq!(batches[0].events.len(), 998);
        for b in &batches {
            let counted: usize = b.events.iter().map(event_bytes).sum();
            assert_eq!(counted, b.bytes);
            assert!(b.bytes <= MAX_BATCH_BYTES, "{}", b.bytes);
        }
        assert_eq!(batches.iter().map(|b| b.events.len()).sum::<usize>(), 1_000);
    }

    #[test]
    fn a_largest_event_fits_a_call_alone() {
        let batches = drain(
            &mut Batcher::new(),
            [event(1, 10), event(2, MAX_EVENT_BYTES), event(3, 10)],
        );
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[1].bytes, MAX_BATCH_BYTES);
    }

    #[test]
    fn events_are_sorted_stably_within_a_call() {
        let mut b = Batcher::new();
        for (ts, tag) in [(5, "a"), (3, "b"), (5, "c"), (1, "d")] {
            b.push(Event {
                timestamp_ms: ts,
                json: format!("{{\"t\":\"{tag}\"}}"),
            });
        }
        let order: Vec<String> = b
            .take()
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.json)
            .collect();
        assert_eq!(
            order,
            [
                "{\"t\":\"d\"}",
                "{\"t\":\"b\"}",
                "{\"t\":\"a\"}",
                "{\"t\":\"c\"}"
            ]
        );
    }

    #[test]
    fn a_call_spans_at_most_24_hours() {
        let day = MAX_BATCH_SPAN.as_millis() as i64;
        let batches = drain(
            &mut Batcher::new(),
            [
                event(0, 10),
                event(day, 10),
                event(day + 1, 10),
                event(5, 10),
            ],
        );
        for b in &batches {
            let span = b.events.last().unwrap().timestamp_ms - b.events[0].timestamp_ms;
            assert!(span <= day, "span {span}");
        }
        // [0, day] spans exactly 24 h; day + 1 opens a new call, which 5 can join.
        assert_eq!(batches.len(), 2);
    }

    #[test]
    fn oversized_event_splits_into_valid_ordered_parts() {
        let original = format!(
            "{{\"msg\":\"{}\\\"quoted\\\" {}\"}}",
            "é".repeat(3_000),
            "z".repeat(5_000)
        );
        let e = Event {
            timestamp_ms: 42,
            json: original.clone(),
        };
        let parts = split(e, 2_048, 0xabc);
        assert!(parts.len() > 5);
        let mut rebuilt = String::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.json.len() <= 2_048, "part {i} is {} bytes", p.json.len());
            assert_eq!(p.timestamp_ms, 42);
            let v: serde_json::Value =
                serde_json::from_str(&p.json).expect("each part is valid JSON");
            assert_eq!(v["deckhand_part"]["id"], "0000000000000abc");
            assert_eq!(v["deckhand_part"]["index"], i + 1);
            assert_eq!(v["deckhand_part"]["count"], parts.len());
            rebuilt.push_str(v["data"].as_str().unwrap());
        }
        assert_eq!(rebuilt, original);
    }

    #[test]
    fn small_events_are_not_split() {
        let e = event(1, 100);
        assert_eq!(split(e.clone(), 1_024, 1), vec![e]);
    }

    #[test]
    fn three_megabyte_event_splits_under_the_default_limit() {
        let e = event(7, 3 * 1024 * 1024);
        let parts = split(e, MAX_EVENT_BYTES, 9);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.json.len() <= MAX_EVENT_BYTES));
    }
}
