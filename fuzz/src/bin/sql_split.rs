//! The SQL statement splitter of no-transaction migrations: no panic on any text, and
//! every statement is a piece of the input at its offset, in order, not overlapping.

use migrate::sql;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let mut end = 0;
        for statement in sql::split(text) {
            let range = statement.offset..statement.offset + statement.text.len();
            assert_eq!(
                text.get(range.clone()),
                Some(statement.text),
                "a statement is not the input's text at its offset: {statement:?}"
            );
            assert!(
                range.start >= end,
                "statements overlap or go back: {statement:?}"
            );
            end = range.end;
        }
        let _ = sql::identifiers(text);
        let _ = sql::line_at(text, text.len() / 2);
        let _ = sql::line_of(text, u32::try_from(text.len() / 2).unwrap_or(u32::MAX));
    });
}
