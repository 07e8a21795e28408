//! PutLogEvents batches that honour every limit of the real service — including the
//! ones the emulator does not enforce (10,000 events, 1,048,576 bytes, 1 MB per event,
//! 24 h span) — and splitting of events too large for one into part groups that
//! reassemble, whole events ([`split`]) or streamed ones ([`PartWriter`]).
//!
//! Not here: when to flush (the shipping loop decides) and the calls themselves.

use std::time::Duration;

use crate::json::{json_prefix_within, push_json_text};
use crate::structure::Event;

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
            // Nothing came since the last batch (the shipper's flush of a quiet app):
            // the room made for it goes back, not held while the app is idle.
            self.current.events = Vec::new();
            return None;
        }
        // The next batch room for as many events as this one had: a full batch's
        // list grown one doubling at a time is a dozen copies of it (a few percent of
        // the pipeline on short lines); an idle app's small batches keep it small.
        let next = Batch {
            events: Vec::with_capacity(self.current.events.len()),
            bytes: 0,
        };
        let mut batch = std::mem::replace(&mut self.current, next);
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

/// Cuts an event larger than `max_bytes` into a part group (see [`PartWriter`]).
/// An event that fits is returned as it is.
pub fn split(event: Event, max_bytes: usize, id: u64) -> Vec<Event> {
    if event.json.len() <= max_bytes {
        return vec![event];
    }
    let mut parts = Vec::new();
    let mut writer = PartWriter::new(id, max_bytes, event.timestamp_ms);
    writer.push(&event.json, &mut parts);
    writer.finish(&mut parts);
    parts
}

/// Writes the text of one event too large for a CloudWatch event as a part group, as
/// it arrives: the caller need not hold the whole event, nor know its size up front (a
/// line of any length is streamed through one writer). Each part is a valid JSON
/// object no larger than `max_bytes`:
///
/// `{"deckhand_part":{"id":"<16 hex>","index":N,"last":false},"data":"…"}`
///
/// Every part of a group has the same `id` and timestamp; `index` counts from 1;
/// the final part alone has `"last":true`. Concatenating the `data` strings in index
/// order gives exactly the text pushed. Parts are cut only between characters.
///
/// Text is escaped once, straight into the part it fills: a part begins as its
/// wrapper with `"last":false`, which the final part turns to `true` when it is known.
/// To know it even when the text ends exactly where a part fills up, the most recent
/// full part is held back until more text (or [`PartWriter::finish`]) arrives: at most
/// two parts' worth of text is held.
#[derive(Debug)]
pub struct PartWriter {
    id: u64,
    timestamp_ms: i64,
    /// Room for `data` in one part, escaped: `max_bytes` minus the widest wrapper.
    budget: usize,
    /// Parts begun so far.
    begun: u64,
    /// A full part, not emitted until we know whether it is the last.
    held: Option<Part>,
    /// The part being filled, if one is begun.
    filling: Option<Part>,
}

/// A part's JSON as it is written: its wrapper and the data escaped so far.
struct Part {
    json: String,
    /// Where the wrapper's `false` (of `"last":false`) begins.
    last_at: usize,
    /// Bytes of escaped data in `json`.
    data_bytes: usize,
}

/// Sizes only: the data is a long line of the app's, which may not have been
/// sanitized yet.
impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("bytes", &self.json.len())
            .field("data_bytes", &self.data_bytes)
            .finish_non_exhaustive()
    }
}

impl PartWriter {
    /// A writer of parts of at most `max_bytes` (raised to [`MIN_EVENT_BYTES`] if below:
    /// a part must hold its wrapper and some data), all stamped `timestamp_ms`.
    pub fn new(id: u64, max_bytes: usize, timestamp_ms: i64) -> Self {
        let max_bytes = max_bytes.max(MIN_EVENT_BYTES);
        PartWriter {
            id,
            timestamp_ms,
            budget: max_bytes - WIDEST_WRAPPER.len(),
            begun: 0,
            held: None,
            filling: None,
        }
    }

    /// Appends `json_fragment` (the next piece of the event's JSON text) and emits into
    /// `out` every part that it fills, except the most recent one (see above). A part
    /// is filled character by character: it ends before the first character whose
    /// escaped form does not fit. That is measured a block at a time
    /// ([`json_prefix_within`]), one pass over the text whatever it holds, and the
    /// measured prefix is escaped into the part.
    pub fn push(&mut self, json_fragment: &str, out: &mut Vec<Event>) {
        let mut rest = json_fragment;
        while !rest.is_empty() {
            let part = match &mut self.filling {
                Some(part) => part,
                None => {
                    self.begun += 1;
                    self.filling.insert(Part::begin(self.id, self.begun))
                }
            };
            let (take, cost) = json_prefix_within(rest, self.budget - part.data_bytes);
            // Its closing `"}` too, so that a full part needs no second allocation.
            part.json.reserve(cost + 2);
            let before = part.json.len();
            push_json_text(&mut part.json, &rest[..take]);
            debug_assert_eq!(part.json.len() - before, cost);
            part.data_bytes += cost;
            rest = &rest[take..];
            if !rest.is_empty() {
                // A part just begun always takes some (the budget's assertion below).
                self.rotate(out);
            }
        }
    }

    /// Room for the data of one part, escaped: the limit less the widest header.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Emits what is left, the final part with `"last":true`. Emits nothing if nothing
    /// was ever pushed.
    pub fn finish(mut self, out: &mut Vec<Event>) {
        let last = match self.filling.take() {
            Some(filling) => {
                if let Some(held) = self.held.take() {
                    self.emit(held, false, out);
                }
                filling
            }
            None => match self.held.take() {
                Some(held) => held,
                None => return,
            },
        };
        self.emit(last, true, out);
    }

    /// The part being filled is full: it becomes the held one, the one held before
    /// it is emitted (it was not the last).
    fn rotate(&mut self, out: &mut Vec<Event>) {
        if let Some(previous) = std::mem::replace(&mut self.held, self.filling.take()) {
            self.emit(previous, false, out);
        }
    }

    fn emit(&self, mut part: Part, last: bool, out: &mut Vec<Event>) {
        if last {
            part.json
                .replace_range(part.last_at..part.last_at + "false".len(), "true");
        }
        part.json.push_str("\"}");
        debug_assert!(part.json.len() <= self.budget + WIDEST_WRAPPER.len());
        out.push(Event::new(self.timestamp_ms, part.json));
    }
}

impl Part {
    /// Part `index` of group `id`: its wrapper up to the data's opening quote.
    fn begin(id: u64, index: u64) -> Part {
        use std::fmt::Write;
        let mut json = String::with_capacity(WIDEST_WRAPPER.len());
        let _ = write!(
            json,
            "{{\"deckhand_part\":{{\"id\":\"{id:016x}\",\"index\":{index},\"last\":"
        );
        let last_at = json.len();
        json.push_str("false},\"data\":\"");
        Part {
            json,
            last_at,
            data_bytes: 0,
        }
    }
}

// The smallest budget holds any one character (6 bytes escaped at most), so
// `PartWriter::push` makes progress after every part it fills.
const _: () = assert!(MIN_EVENT_BYTES - WIDEST_WRAPPER.len() >= 6);

/// A part's JSON around empty data, at its widest: any id is 16 hex digits, an index
/// at most 20 digits (u64), and `false` is longer than `true`.
const WIDEST_WRAPPER: &str = r#"{"deckhand_part":{"id":"0123456789abcdef","index":18446744073709551615,"last":false},"data":""}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{json_char_len, json_string_len};

    fn event(ts: i64, size: usize) -> Event {
        let json = format!("{{\"m\":\"{}\"}}", "x".repeat(size.saturating_sub(8)));
        assert_eq!(json.len(), size.max(8));
        Event::new(ts, json)
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

    /// A batch's list is made once at the size of the one before (no doubling while it
    /// fills), small again after a small batch, and freed by a flush with nothing in it.
    #[test]
    fn the_next_batch_has_room_for_as_many_as_the_last() {
        let mut b = Batcher::new();
        let full = drain(&mut b, (0..10_000).map(|i| event(i, 10)));
        assert_eq!(full.len(), 1);
        assert!(b.current.events.capacity() >= 10_000);
        let before = b.current.events.as_ptr();
        for i in 0..10_000 {
            assert!(b.push(event(i, 10)).is_none());
        }
        assert_eq!(b.current.events.as_ptr(), before, "moved while it filled");
        assert_eq!(b.take().map(|batch| batch.events.len()), Some(10_000));
        drain(&mut b, (0..3).map(|i| event(i, 10)));
        assert!(b.current.events.capacity() < 100);
        // A full batch, then a flush with nothing new: the room goes back.
        drain(&mut b, (0..10_000).map(|i| event(i, 10)));
        assert!(b.current.events.capacity() >= 10_000);
        assert!(b.take().is_none());
        assert_eq!(b.current.events.capacity(), 0);
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
            b.push(Event::new(ts, format!("{{\"t\":\"{tag}\"}}")));
        }
        let order: Vec<String> = b
            .take()
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.json.to_string())
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
        let e = Event::new(42, original.clone());
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
            assert_eq!(v["deckhand_part"]["last"], i + 1 == parts.len());
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

    /// Checks a part group and returns its data, concatenated.
    fn reassemble(parts: &[Event], max_bytes: usize, id: u64, ts: i64) -> String {
        let mut whole = String::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.json.len() <= max_bytes,
                "part {i} is {} bytes",
                p.json.len()
            );
            assert_eq!(p.timestamp_ms, ts);
            let v: serde_json::Value = serde_json::from_str(&p.json).expect("valid JSON");
            let head = v["deckhand_part"].as_object().expect("a part header");
            assert_eq!(head["id"], format!("{id:016x}"));
            assert_eq!(head["index"], i + 1);
            assert_eq!(
                head["last"],
                i + 1 == parts.len(),
                "only the final part is last"
            );
            assert_eq!(head.len(), 3, "{}", p.json);
            whole.push_str(v["data"].as_str().expect("data is a string"));
        }
        whole
    }

    #[test]
    fn streamed_parts_reassemble_and_mark_the_last() {
        let mut out = Vec::new();
        let mut w = PartWriter::new(7, 1_024, 99);
        let mut pushed = String::new();
        for i in 0..500 {
            let piece = format!("{{\"n\":{i},\"s\":\"é\\\"\u{1}\"}}");
            pushed.push_str(&piece);
            w.push(&piece, &mut out);
        }
        let before_finish = out.len();
        w.finish(&mut out);
        assert!(out.len() > before_finish, "the held part comes at finish");
        assert_eq!(reassemble(&out, 1_024, 7, 99), pushed);
    }

    #[test]
    fn text_ending_exactly_at_a_full_part_still_has_a_last_part() {
        let budget = 1_024 - WIDEST_WRAPPER.len();
        for total in [budget, 2 * budget, 3 * budget] {
            let text = "x".repeat(total);
            let mut out = Vec::new();
            let mut w = PartWriter::new(1, 1_024, 0);
            w.push(&text, &mut out);
            // A full part is emitted only once the next one has text: the final one is
            // still filling, the one before it held.
            assert_eq!(out.len(), (total / budget).saturating_sub(2));
            w.finish(&mut out);
            assert_eq!(out.len(), total / budget);
            assert_eq!(reassemble(&out, 1_024, 1, 0), text);
        }
    }

    #[test]
    fn nothing_pushed_emits_nothing() {
        let mut out = Vec::new();
        PartWriter::new(1, 1_024, 0).finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_limit_below_the_minimum_is_raised() {
        let mut out = Vec::new();
        let mut w = PartWriter::new(1, 10, 0);
        w.push(&"y".repeat(5_000), &mut out);
        w.finish(&mut out);
        assert_eq!(reassemble(&out, MIN_EVENT_BYTES, 1, 0).len(), 5_000);
    }

    #[test]
    fn split_and_the_streaming_writer_agree() {
        let e = event(3, 10_000);
        let parts = split(e.clone(), 2_048, 5);
        let mut streamed = Vec::new();
        let mut w = PartWriter::new(5, 2_048, 3);
        for chunk in e.json.as_bytes().chunks(333) {
            w.push(std::str::from_utf8(chunk).unwrap(), &mut streamed);
        }
        w.finish(&mut streamed);
        assert_eq!(parts, streamed);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text, pushed in any pieces, at any limit: valid parts within the limit,
        /// indices 1..=n, exactly one last, and the data is the text.
        #[test]
        fn any_fragments_reassemble(
            fragments in proptest::collection::vec("(?s).{0,300}", 0..40),
            max_bytes in MIN_EVENT_BYTES..4_096usize,
            id: u64,
            ts: i64,
        ) {
            let mut out = Vec::new();
            let mut w = PartWriter::new(id, max_bytes, ts);
            for f in &fragments {
                w.push(f, &mut out);
            }
            w.finish(&mut out);
            let pushed: String = fragments.concat();
            if pushed.is_empty() {
                proptest::prop_assert!(out.is_empty());
            } else {
                let lasts = out.iter().filter(|p| p.json.contains("\"last\":true},")).count();
                proptest::prop_assert_eq!(lasts, 1);
                proptest::prop_assert_eq!(reassemble(&out, max_bytes, id, ts), pushed);
            }
        }

        /// Parts are filled character by character, however the text is pushed: each
        /// part but the last holds as much as fits, and ends where the next character
        /// would not (the escape-dense text makes the stretches fall back to halves and
        /// to single characters).
        #[test]
        fn every_part_but_the_last_is_full_to_the_character(
            fragments in proptest::collection::vec(
                proptest::prop_oneof!["(?s).{0,700}", "[\"\\\\\u{0}-\u{1f}\u{7f}a\u{fffd}\u{e9}\u{1F600}]{0,700}"],
                0..30,
            ),
            max_bytes in MIN_EVENT_BYTES..2_048usize,
        ) {
            let mut out = Vec::new();
            let mut w = PartWriter::new(1, max_bytes, 0);
            let budget = w.budget;
            for f in &fragments {
                w.push(f, &mut out);
            }
            w.finish(&mut out);
            let data: Vec<String> = out
                .iter()
                .map(|p| {
                    let v: serde_json::Value = serde_json::from_str(&p.json).unwrap();
                    v["data"].as_str().unwrap().to_owned()
                })
                .collect();
            for pair in data.windows(2) {
                let len = json_string_len(&pair[0]);
                let next = pair[1].chars().next().map_or(0, json_char_len);
                proptest::prop_assert!(len <= budget);
                proptest::prop_assert!(len + next > budget, "{} + {} fits {}", len, next, budget);
            }
            proptest::prop_assert_eq!(data.concat(), fragments.concat());
        }
    }
}
