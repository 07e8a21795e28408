//! `migrate repair`'s diff of an applied migration's kept text against its edited file:
//! no panic on any two inputs, the output bounded, nothing printed unescaped, and the
//! reported line the first one that differs.

use migrate::diff;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        // The first byte says where the old text ends (as a share of the rest), then old, new.
        let Some((&cut, rest)) = data.split_first() else {
            return;
        };
        let (old, new) = rest.split_at(rest.len() * usize::from(cut) / 255);
        let Some(found) = diff::first_difference(old, new) else {
            assert_eq!(old, new, "no difference reported between different texts");
            return;
        };
        assert_ne!(old, new, "a difference reported between equal texts");
        assert!(
            found.rows.len() <= diff::MAX_ROWS,
            "too many rows: {found:?}"
        );
        for row in &found.rows {
            assert!(
                row.chars().count() <= diff::MAX_ROW_CHARS,
                "a row too long: {row:?}"
            );
            assert!(
                !row.chars().any(|c| c.is_control()),
                "a control character printed as itself: {row:?}"
            );
        }
        let first_differing = old
            .split_inclusive(|b| *b == b'\n')
            .zip(new.split_inclusive(|b| *b == b'\n'))
            .take_while(|(a, b)| a == b)
            .count()
            + 1;
        assert_eq!(found.line, first_differing, "wrong first line: {found:?}");
    });
}
