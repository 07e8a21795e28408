//! Just enough SQL lexing for two jobs: splitting a no-transaction migration into
//! statements (PostgreSQL runs a multi-statement query string as one implicit
//! transaction, which `CREATE INDEX CONCURRENTLY` refuses), and turning an error
//! position into a line number.

/// One statement of a file: where it starts (byte offset) and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    pub offset: usize,
    pub text: &'a str,
}

/// Splits at top-level `;`, respecting quotes, `E''` escapes, quoted identifiers,
/// dollar quotes and (nested) comments. Pieces holding only comments and blanks are
/// left out.
pub fn split(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'E' | b'e') && !is_ident(bytes, i - 1);
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i + 1, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = memchr_from(bytes, i, b'\n').map_or(bytes.len(), |n| n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => match dollar_tag(bytes, i) {
                Some(tag_len) => {
                    let tag = &sql[i..i + tag_len];
                    i = sql[i + tag_len..]
                        .find(tag)
                        .map_or(bytes.len(), |n| i + tag_len + n + tag_len);
                }
                None => i += 1,
            },
            b';' => {
                push(&mut out, sql, start, i + 1);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(&mut out, sql, start, bytes.len());
    out
}

/// The 1-based line of a 1-based character position, as PostgreSQL reports it.
pub fn line_of(sql: &str, position: u32) -> usize {
    1 + sql
        .chars()
        .take(position.saturating_sub(1) as usize)
        .filter(|c| *c == '\n')
        .count()
}

/// The 1-based line at which byte `offset` sits.
pub fn line_at(sql: &str, offset: usize) -> usize {
    1 + sql.as_bytes()[..offset.min(sql.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

fn push<'a>(out: &mut Vec<Statement<'a>>, sql: &'a str, start: usize, end: usize) {
    let text = &sql[start..end];
    if has_code(text) {
        // Start the statement at its first code line, so line numbers point at it.
        let lead = text.len() - text.trim_start().len();
        out.push(Statement {
            offset: start + lead,
            text: text.trim(),
        });
    }
}

/// True if anything but blanks, comments and `;` remains.
fn has_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = memchr_from(bytes, i, b'\n').map_or(bytes.len(), |n| n + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            b';' => i += 1,
            b if b.is_ascii_whitespace() => i += 1,
            _ => return true,
        }
    }
    false
}

fn memchr_from(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|b| *b == needle)
        .map(|n| from + n)
}

fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Length of a dollar-quote opener (`$$` or `$tag$`) at `i`, if one starts there.
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
        j += 1;
    }
    let tag_ok = j == i + 1 || !bytes[i + 1].is_ascii_digit();
    (j < bytes.len() && bytes[j] == b'$' && tag_ok).then_some(j + 1 - i)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True if the byte at `i` continues an identifier (so `xE'..'` is not an E-string).
fn is_ident(bytes: &[u8], i: usize) -> bool {
    i > 0 && is_ident_byte(bytes[i - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_plain_statements() {
        assert_eq!(
            texts("create table a(x int);\n\ncreate index concurrently i on a(x);\n"),
            [
                "create table a(x int);",
                "create index concurrently i on a(x);"
            ]
        );
    }

    #[test]
    fn semicolons_inside_literals_comments_and_bodies_do_not_split() {
        let sql = "insert into t values ('a;b', 'it''s;');\n\
                   -- a comment; with a semicolon\n\
                   /* block; /* nested; */ still; */\n\
                   select \"we;ird\" from t;\n\
                   create function f() returns int as $body$ select 1; $body$ language sql;\n\
                   select $$x;y$$;\n\
                   select E'\\';' ;";
        assert_eq!(split(sql).len(), 5, "{:#?}", split(sql));
    }

    #[test]
    fn comment_only_pieces_are_dropped_and_offsets_point_at_code() {
        let sql = "-- deckhand:no-transaction\n-- why\ncreate index concurrently i on t(x);\n-- trailing\n";
        let stmts = split(sql);
        assert_eq!(stmts.len(), 1);
        assert_eq!(
            line_at(sql, stmts[0].offset),
            1,
            "comments lead the statement text"
        );
        assert!(stmts[0].text.ends_with("on t(x);"));
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(texts("prepare p as select $1; select 2;").len(), 2);
    }

    #[test]
    fn line_numbers_from_positions() {
        let sql = "select 1;\nselect 2;\nselect bogus(;";
        assert_eq!(line_of(sql, 1), 1);
        assert_eq!(line_of(sql, 11), 2);
        assert_eq!(line_of(sql, 25), 3);
    }
}
