//! The line structurer: any bytes, cut into lines, become events whose text is one
//! JSON object each, and nothing panics.

use logship::structure::{Event, Options, Stream, Structurer};

/// A fixed receive time (2026-01-01T00:00:00Z), so a crash replays the same way.
const NOW_MS: i64 = 1_767_225_600_000;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
        let mut events: Vec<Event> = Vec::new();
        for (i, line) in data.split(|b| *b == b'\n').enumerate() {
            structurer.push(line, NOW_MS + i as i64, &mut events);
        }
        structurer.flush(&mut events);
        for event in &events {
            let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                serde_json::from_str(&event.json);
            assert!(
                parsed.is_ok(),
                "event is not a JSON object ({:?}): {:?}",
                parsed.err(),
                event.json
            );
        }
    });
}
