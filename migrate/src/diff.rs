//! The first lines where two versions of a migration file differ, for `migrate repair`
//! to show what an edit changed: the lines both versions begin and end with are
//! trimmed, and the differing middle is shown (capped) with a little context, as a
//! small unified-style diff.
//!
//! Not a general diff (no longest common subsequence): a repair is about a small edit,
//! and what matters is where it starts. The files are outside input, so the work is
//! linear in their size and the output bounded, whatever they hold. Every line is
//! shown safely: invalid UTF-8 lossily, control characters and the invisible ones that
//! reorder or hide text escaped (`\t`, `\r`, `\u{1b}`), so a file cannot write to the
//! terminal through the diff, and an edit of tabs or line endings shows.

use std::fmt;

/// Unchanged lines shown before and after the changed ones.
const CONTEXT: usize = 2;
/// Changed lines shown, removed and added together; the rest are counted.
const MAX_CHANGED: usize = 10;
/// Characters of a line shown (an escape counts as the characters it takes); a longer
/// line ends in `…`.
const MAX_LINE: usize = 160;
/// Bytes of a line decoded for showing: enough for `MAX_LINE` characters and one more,
/// whatever they are (a character is at most 4 bytes).
const MAX_LINE_BYTES: usize = MAX_LINE * 4 + 4;

/// The first differing lines of two texts, ready to print, one row per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The first line that differs, counted from 1 (the same in both texts).
    pub line: usize,
    /// `@@ line N @@`, then rows starting with ` ` (context), `-` (old), `+` (new),
    /// `\` (no newline at the end of the file) or `…` (changed lines not shown).
    pub rows: Vec<String>,
}

/// The rows, each on a line of its own.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

/// The most rows a [`Diff`] has: the header, the context on both sides, the changed
/// lines, a "no newline" mark on each side and the count of the rest.
pub const MAX_ROWS: usize = 1 + CONTEXT + MAX_CHANGED + 2 + CONTEXT + 1;

/// The most characters in a row of a [`Diff`].
pub const MAX_ROW_CHARS: usize = 1 + MAX_LINE + 1;

/// The first differing lines of `old` and `new`, or `None` when they are the same.
pub fn first_difference(old: &[u8], new: &[u8]) -> Option<Diff> {
    if old == new {
        return None;
    }
    // Whole lines (each with its `\n`) both begin with.
    let (mut start, mut line) = (0, 1);
    for (a, b) in lines(old).zip(lines(new)) {
        if a != b {
            break;
        }
        start += a.len();
        line += 1;
    }
    let (old_rest, new_rest) = (&old[start..], &new[start..]);
    // Whole lines both end with, not overlapping the lines they begin with.
    let limit = old_rest.len().min(new_rest.len());
    let same = old_rest
        .iter()
        .rev()
        .zip(new_rest.iter().rev())
        .take(limit)
        .take_while(|(a, b)| a == b)
        .count();
    let at_line_start = |text: &[u8], at: usize| at == 0 || text[at - 1] == b'\n';
    let tail = if at_line_start(old_rest, old_rest.len() - same)
        && at_line_start(new_rest, new_rest.len() - same)
    {
        same
    } else {
        // Inside the common bytes a `\n` ends a line in both texts; the tail starts
        // after the first one.
        let common = &old_rest[old_rest.len() - same..];
        common
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |at| same - at - 1)
    };
    let removed = &old_rest[..old_rest.len() - tail];
    let added = &new_rest[..new_rest.len() - tail];
    let after = &old_rest[old_rest.len() - tail..];

    let mut rows = vec![format!("@@ line {line} @@")];
    for context in last_lines(&old[..start], CONTEXT) {
        rows.push(row(' ', context));
    }
    let (removed_count, added_count) = (count_lines(removed), count_lines(added));
    let shown_removed =
        removed_count.min(MAX_CHANGED.saturating_sub(added_count.min(MAX_CHANGED / 2)));
    let shown_added = added_count.min(MAX_CHANGED - shown_removed);
    for (sign, text, shown) in [('-', removed, shown_removed), ('+', added, shown_added)] {
        for changed in lines(text).take(shown) {
            rows.push(row(sign, changed));
            if !changed.ends_with(b"\n") {
                rows.push("\\ No newline at end of file".to_owned());
            }
        }
    }
    let more = (removed_count - shown_removed) + (added_count - shown_added);
    if more > 0 {
        // The context after would follow lines that are not shown.
        rows.push(format!("… {more} more changed line(s)"));
    } else {
        for context in lines(after).take(CONTEXT) {
            rows.push(row(' ', context));
        }
    }
    Some(Diff { line, rows })
}

/// The lines of `text`, each with its `\n` (the last one may have none).
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|b| *b == b'\n')
}

fn count_lines(text: &[u8]) -> usize {
    let newlines = text.iter().filter(|b| **b == b'\n').count();
    newlines + usize::from(!text.is_empty() && !text.ends_with(b"\n"))
}

/// The last `n` lines of `text`, which is empty or ends with `\n`, in order.
fn last_lines(text: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    let mut start = text.len();
    let mut found = 0;
    while found < n && start > 0 {
        // Past this line's own `\n`, back to the one that ends the line before.
        start = text[..start - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        found += 1;
    }
    lines(&text[start..])
}

/// `sign` and the line, without its `\n`, decoded lossily, escaped and capped.
fn row(sign: char, line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let decoded = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE_BYTES)]);
    let mut out = String::with_capacity(MAX_ROW_CHARS);
    out.push(sign);
    let mut width = 0;
    let mut cut = line.len() > MAX_LINE_BYTES;
    for c in decoded.chars() {
        let shown = escape(c);
        let w = shown.as_ref().map_or(1, |s| s.chars().count());
        if width + w > MAX_LINE {
            cut = true;
            break;
        }
        width += w;
        match shown {
            Some(s) => out.push_str(&s),
            None => out.push(c),
        }
    }
    if cut {
        out.push('…');
    }
    out
}

/// How `c` is shown when it is not shown as itself: control characters, and the
/// invisible ones that can hide text or reorder it on screen (bidirectional controls,
/// zero-width characters, line and paragraph separators, the byte order mark).
fn escape(c: char) -> Option<String> {
    match c {
        '\t' => Some("\\t".to_owned()),
        '\r' => Some("\\r".to_owned()),
        c if c.is_control() || invisible(c) => Some(format!("\\u{{{:x}}}", u32::from(c))),
        _ => None,
    }
}

fn invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0xE0000..=0xE0FFF
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn diff(old: &str, new: &str) -> String {
        first_difference(old.as_bytes(), new.as_bytes())
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_same_text_has_no_diff() {
        assert_eq!(first_difference(b"", b""), None);
        assert_eq!(first_difference(b"a\nb\n", b"a\nb\n"), None);
    }

    #[test]
    fn an_added_comment_with_context() {
        let old = "CREATE TABLE a(\n    id int\n);\nCREATE INDEX ON a(id);\n";
        let new = "CREATE TABLE a(\n    id int\n);\n-- for the lookups\nCREATE INDEX ON a(id);\n";
        assert_eq!(
            diff(old, new),
            "@@ line 4 @@\n     id int\n );\n+-- for the lookups\n CREATE INDEX ON a(id);\n"
        );
        let d = first_difference(old.as_bytes(), new.as_bytes()).unwrap();
        assert_eq!(d.line, 4);
    }

    #[test]
    fn a_changed_line_is_removed_then_added() {
        assert_eq!(
            diff("a\nb\nc\nd\ne\nf\n", "a\nb\nc\nD\ne\nf\n"),
            "@@ line 4 @@\n b\n c\n-d\n+D\n e\n f\n"
        );
        assert_eq!(diff("a\n", ""), "@@ line 1 @@\n-a\n");
        assert_eq!(
            diff("", "a"),
            "@@ line 1 @@\n+a\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn a_newline_at_the_end_is_an_edit_of_the_last_line() {
        assert_eq!(
            diff("a\nb", "a\nb\n"),
            "@@ line 2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }

    #[test]
    fn invisible_edits_are_made_visible_and_nothing_reaches_the_terminal() {
        assert_eq!(
            diff("a\n\tb\n", "a\r\n    b\n"),
            "@@ line 1 @@\n-a\n-\\tb\n+a\\r\n+    b\n"
        );
        let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}evil\u{feff}\u{85}";
        let shown = diff("x\n", &format!("{hostile}\n"));
        assert_eq!(
            shown,
            "@@ line 1 @@\n-x\n+\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{202e}evil\\u{feff}\\u{85}\n"
        );
    }

    #[test]
    fn invalid_utf8_is_shown_lossily() {
        let d = first_difference(b"ok\n", b"\xff\xfe ok\xc3\n").unwrap();
        assert_eq!(
            d.rows,
            ["@@ line 1 @@", "-ok", "+\u{fffd}\u{fffd} ok\u{fffd}"]
        );
    }

    #[test]
    fn long_lines_and_many_changed_lines_are_capped() {
        let long = "x".repeat(10_000);
        let d = first_difference(b"a\n", format!("{long}é\n").as_bytes()).unwrap();
        assert_eq!(d.rows[2], format!("+{}…", "x".repeat(MAX_LINE)));
        // An escape is not cut in half.
        let tabs = format!("{}\t", "y".repeat(MAX_LINE - 1));
        let d = first_difference(b"", tabs.as_bytes()).unwrap();
        assert_eq!(d.rows[1], format!("+{}…", "y".repeat(MAX_LINE - 1)));

        let old: String = (0..100).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..100).map(|i| format!("new {i}\n")).collect();
        let d = first_difference(old.as_bytes(), new.as_bytes()).unwrap();
        let shown: Vec<&str> = d.rows.iter().map(String::as_str).collect();
        assert_eq!(
            shown,
            [
                "@@ line 1 @@",
                "-old 0",
                "-old 1",
                "-old 2",
                "-old 3",
                "-old 4",
                "+new 0",
                "+new 1",
                "+new 2",
                "+new 3",
                "+new 4",
                "… 190 more changed line(s)"
            ]
        );
        let d = first_difference(b"a\nz\n", format!("a\n{new}z\n").as_bytes()).unwrap();
        assert_eq!(d.rows.len(), 1 + 1 + MAX_CHANGED + 1);
        assert_eq!(d.rows.last().unwrap(), "… 90 more changed line(s)");
    }

    /// A large hostile file is linear work: one changed line in 200,000, and a line of
    /// 4 MB without a newline (a quadratic diff would not finish).
    #[test]
    fn large_files_take_linear_work() {
        let mut old: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut new = old.clone();
        new[1_000_000] = b'#';
        let d = first_difference(&old, &new).unwrap();
        assert!(d.rows.len() <= MAX_ROWS);
        let long = vec![b'a'; 4 << 20];
        old.extend_from_slice(&long);
        new.extend_from_slice(&long);
        new.push(b'b');
        let d = first_difference(&old, &new).unwrap();
        assert!(d.rows.iter().all(|r| r.chars().count() <= MAX_ROW_CHARS));
    }

    /// The first line that differs, the slow and obvious way.
    fn first_differing_line(old: &[u8], new: &[u8]) -> usize {
        let a: Vec<&[u8]> = lines(old).collect();
        let b: Vec<&[u8]> = lines(new).collect();
        a.iter().zip(&b).take_while(|(x, y)| x == y).count() + 1
    }

    /// Texts whose lines repeat often, so that common beginnings and ends are likely.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            Just(b"a".to_vec()),
            Just(b"b".to_vec()),
            Just(b"\tc\r".to_vec()),
            Just("é\u{1b}".as_bytes().to_vec()),
            Just(b"\xff".to_vec()),
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 0..8),
        ];
        (prop::collection::vec(line, 0..30), any::<bool>()).prop_map(|(lines, end)| {
            let mut text = lines.join(&b'\n');
            if end {
                text.push(b'\n');
            }
            text
        })
    }

    proptest! {
        #[test]
        fn the_diff_is_bounded_safe_and_starts_at_the_first_differing_line(
            old in text(),
            new in text(),
        ) {
            let Some(d) = first_difference(&old, &new) else {
                prop_assert_eq!(&old, &new);
                return Ok(());
            };
            prop_assert_ne!(&old, &new);
            prop_assert_eq!(d.line, first_differing_line(&old, &new));
            prop_assert_eq!(&d.rows[0], &format!("@@ line {} @@", d.line));
            prop_assert!(d.rows.len() <= MAX_ROWS, "{:?}", d.rows);
            for row in &d.rows {
                prop_assert!(row.chars().count() <= MAX_ROW_CHARS, "{row:?}");
                prop_assert!(!row.chars().any(|c| c.is_control() || invisible(c)), "{row:?}");
            }
            // The first changed row is that line: removed from the old text, or, when
            // the new one only adds lines there, added by the new one.
            let changed = d.rows.iter().find(|r| r.starts_with('-') || r.starts_with('+'));
            let changed = changed.expect("a changed row");
            let removed = lines(&old).nth(d.line - 1).map(|l| row('-', l));
            let added = lines(&new).nth(d.line - 1).map(|l| row('+', l));
            prop_assert!(
                Some(changed) == removed.as_ref() || Some(changed) == added.as_ref(),
                "{changed:?} is neither {removed:?} nor {added:?}"
            );
        }

        #[test]
        fn any_bytes_are_handled(
            old in prop::collection::vec(any::<u8>(), 0..300),
            new in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            if let Some(d) = first_difference(&old, &new) {
                prop_assert!(d.rows.len() <= MAX_ROWS);
                prop_assert_eq!(d.line, first_differing_line(&old, &new));
            }
        }
    }
}
