//! The migration file-name parser (`V{n}__{name}.sql`, `V{n}__{name}.down.sql`): no
//! panic on any name, and what it accepts follows the rule.

use migrate::source::{parse_file_name, Kind};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let name = String::from_utf8_lossy(data);
        match parse_file_name(&name) {
            Ok(Some(file)) => {
                let suffix = match file.kind {
                    Kind::Up => ".sql",
                    Kind::Down => ".down.sql",
                };
                assert!(file.version >= 0, "{name:?} -> {file:?}");
                assert!(!file.name.is_empty(), "{name:?} -> {file:?}");
                assert!(
                    name.starts_with('V') && name.ends_with(&format!("__{}{suffix}", file.name)),
                    "{name:?} -> {file:?}"
                );
            }
            Ok(None) => assert!(!name.ends_with(".sql"), "{name:?} was not read"),
            Err(rule) => assert!(rule.to_string().contains("V{number}__{name}.sql")),
        }
    });
}
