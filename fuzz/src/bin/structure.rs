//! The line structurer: any bytes, cut into lines, become events whose text is one
//! JSON object each, and nothing panics; each line handed over (`push_owned`, as the
//! capture hands over a line longer than one read) gives the same events as it lent.

use logship::structure::{Event, Options, Stream, Structurer};

/// A fixed receive time (2026-01-01T00:00:00Z), so a crash replays the same way.
const NOW_MS: i64 = 1_767_225_600_000;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
        let mut owner = Structurer::new(Stream::Stdout, &Options::default());
        let mut events: Vec<Event> = Vec::new();
        let mut owned: Vec<Event> = Vec::new();
        for (i, line) in data.split(|b| *b == b'\n').enumerate() {
            structurer.push(line, NOW_MS + i as i64, &mut events);
            owner.push_owned(line.to_vec(), NOW_MS + i as i64, &mut owned);
        }
        structurer.flush(&mut events);
        owner.flush(&mut owned);
        assert!(
            events
                .iter()
                .map(|e| &e.json)
                .eq(owned.iter().map(|e| &e.json)),
            "a line handed over gave other events than the line lent"
        );
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
