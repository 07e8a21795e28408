//! The part writer (an event too large for CloudWatch, cut into a part group as it
//! streams): any text, pushed in any pieces, at any size limit, becomes parts that are
//! each valid JSON within the limit, numbered 1..=n with exactly the last one marked,
//! whose data put together is the text; and every part but the last is full to the
//! character (it ends where the next character's escape would not fit). And the
//! PutLogEvents body's escaper, which writes blocks of quotes whole, writes each piece
//! as the events' escaper does.
//!
//! Input: the first two bytes set the limit (`MIN_EVENT_BYTES` plus up to 4,095); the
//! rest, split at NUL bytes, is the pieces pushed in turn.

use logship::batch::{PartWriter, MIN_EVENT_BYTES};
use logship::json::{json_char_len, json_string, json_string_len, push_json_string_bytes};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((limit, rest)) = data.split_first_chunk::<2>() else {
            return;
        };
        let max_bytes = MIN_EVENT_BYTES + usize::from(u16::from_le_bytes(*limit) & 0x0fff);
        let pieces: Vec<String> = rest
            .split(|b| *b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        for piece in &pieces {
            let mut bytes = Vec::new();
            push_json_string_bytes(&mut bytes, piece);
            assert_eq!(
                bytes,
                json_string(piece).as_bytes(),
                "the body's escape differs"
            );
        }
        let mut out = Vec::new();
        let mut writer = PartWriter::new(7, max_bytes, 1);
        let budget = writer.budget();
        for piece in &pieces {
            writer.push(piece, &mut out);
        }
        writer.finish(&mut out);
        let mut data = Vec::new();
        for (i, part) in out.iter().enumerate() {
            assert!(part.json.len() <= max_bytes, "part {i} over the limit");
            let v: serde_json::Value = serde_json::from_str(&part.json).expect("a part is JSON");
            assert_eq!(v["deckhand_part"]["index"], i + 1);
            assert_eq!(v["deckhand_part"]["last"], i + 1 == out.len());
            data.push(v["data"].as_str().expect("data is a string").to_owned());
        }
        for pair in data.windows(2) {
            let next = pair[1].chars().next().map_or(0, json_char_len);
            assert!(
                json_string_len(&pair[0]) + next > budget,
                "a part is not full"
            );
        }
        assert_eq!(data.concat(), pieces.concat());
    });
}
