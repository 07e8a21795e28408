//! Just enough SQL lexing for two jobs: splitting a no-transaction migration into
//! statements (PostgreSQL runs a multi-statement query string as one implicit
//! transaction, which `CREATE INDEX CONCURRENTLY` refuses), and turning an error
//! position into a line number.

use std::collections::HashSet;

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
                    // The tag is `$`…`$`, so both ends are character boundaries.
                    let body = i + tag_len;
                    i = match (sql.get(i..body), sql.get(body..)) {
                        (Some(tag), Some(rest)) => {
                            rest.find(tag).map_or(bytes.len(), |n| body + n + tag_len)
                        }
                        _ => bytes.len(),
                    };
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

/// Every word of `sql` that could name an object, lower-cased (PostgreSQL folds unquoted
/// names; a quoted name is taken case-insensitively too, erring towards a match). Used
/// to tell whether a migration mentions an index.
pub fn identifiers(sql: &str) -> HashSet<String> {
    sql.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
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
    // `start` and `end` sit just after a `;` or at an end of the text: both are
    // character boundaries, so `get` always succeeds.
    let Some(text) = sql.get(start..end) else {
        return;
    };
    if has_code(text) {
        // Start the statement at its first code line, so line numbers point at it. Only
        // the blanks PostgreSQL skips are trimmed: it reads U+00A0 as part of a name.
        let trimmed = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
        out.push(Statement {
            offset: start + (text.len() - trimmed.len()),
            text: trimmed.trim_end_matches(|c: char| c.is_ascii_whitespace()),
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

/// Length of a dollar-quote opener (`$$` or `$tag$`) at `i`, if one starts there. The
/// tag follows PostgreSQL's lexer: letters, `_`, any non-ASCII byte and, after the first,
/// digits; so the opener always starts and ends on a character boundary (`$`).
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() && is_ident_byte(bytes[j]) {
        j += 1;
    }
    let tag_ok = j == i + 1 || !bytes[i + 1].is_ascii_digit();
    (j < bytes.len() && bytes[j] == b'$' && tag_ok).then_some(j + 1 - i)
}

/// A byte that continues an identifier in PostgreSQL's lexer (non-ASCII letters count).
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// True if the byte at `i` continues an identifier (so `xE'..'` is not an E-string).
fn is_ident(bytes: &[u8], i: usize) -> bool {
    i > 0 && is_ident_byte(bytes[i - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn non_ascii_dollar_tags_and_blanks() {
        assert_eq!(
            texts("select $é$ a; b $é$;\u{a0}select 2;"),
            ["select $é$ a; b $é$;", "\u{a0}select 2;"]
        );
        assert_eq!(texts("select é$$;$$ x;"), ["select é$$;", "$$ x;"]);
    }

    /// One lexical piece of generated SQL, with whether it is a top-level `;` and
    /// whether it is code (not a comment).
    #[derive(Debug, Clone)]
    struct Token {
        text: String,
        semicolon: bool,
        code: bool,
    }

    fn code(text: String) -> Token {
        Token {
            text,
            semicolon: false,
            code: true,
        }
    }

    /// Text for inside a literal or comment: anything but the listed characters, plus the
    /// characters that would split a statement if the splitter lost track.
    fn inner(excluded: &'static [char]) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => any::<char>().prop_filter("excluded", move |c| !excluded.contains(c)).prop_map(String::from),
            2 => prop::sample::select(vec![";", "--", "/", "*", "'", "\"", "$", "$$", "\n", "\\", "E"])
                .prop_filter("excluded", move |t| !t.chars().any(|c| excluded.contains(&c)))
                .prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
    }

    fn block_comment() -> impl Strategy<Value = String> {
        let leaf = inner(&['*', '/']).prop_map(|t| format!("/*{t}*/"));
        leaf.prop_recursive(2, 6, 3, |nested| {
            (inner(&['*', '/']), nested, inner(&['*', '/']))
                .prop_map(|(a, n, b)| format!("/*{a}{n}{b}*/"))
        })
    }

    fn token() -> impl Strategy<Value = Token> {
        prop_oneof![
            4 => "[A-Za-z0-9_(),.=<>+]{1,8}".prop_map(code),
            3 => Just(Token { text: ";".into(), semicolon: true, code: true }),
            2 => inner(&['\'']).prop_map(|t| code(format!("'{t}'"))),
            1 => inner(&['\'']).prop_map(|t| code(format!("'{t}''{t}'"))),
            1 => inner(&['\'', '\\']).prop_map(|t| code(format!("E'{t}\\'\\\\'"))),
            1 => inner(&['"']).prop_map(|t| code(format!("\"{t}\""))),
            2 => ("[a-z_]{0,3}", inner(&['$'])).prop_map(|(tag, t)| code(format!("${tag}${t}${tag}$"))),
            1 => Just(code("$1".into())),
            2 => inner(&['\n']).prop_map(|t| Token { text: format!("--{t}\n"), semicolon: false, code: false }),
            2 => block_comment().prop_map(|text| Token { text, semicolon: false, code: false }),
        ]
    }

    /// Tokens joined by blanks, so no two run together into another lexeme.
    fn script() -> impl Strategy<Value = (String, Vec<String>)> {
        let blank = prop::sample::select(vec![" ", "\n", "\t", " \r\n "]);
        prop::collection::vec((token(), blank), 0..16).prop_map(|tokens| {
            let mut sql = String::new();
            let mut expected = Vec::new();
            let mut piece = String::new();
            let mut has_code = false;
            for (token, blank) in tokens {
                piece.push_str(&token.text);
                has_code |= token.code && !token.semicolon;
                if token.semicolon {
                    if has_code {
                        expected.push(trim_blanks(&piece));
                    }
                    sql.push_str(&piece);
                    piece.clear();
                    has_code = false;
                }
                piece.push_str(blank);
            }
            if has_code {
                expected.push(trim_blanks(&piece));
            }
            sql.push_str(&piece);
            (sql, expected)
        })
    }

    /// The blanks PostgreSQL skips, as the splitter trims them: ASCII only, so a line
    /// comment ending in U+000B or U+00A0 keeps it (`str::trim` would not).
    fn trim_blanks(piece: &str) -> String {
        piece
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .to_owned()
    }

    /// Removes comments (line and nested block) the simple way, for checking what the
    /// splitter left between statements.
    fn without_comments(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let (mut out, mut i, mut depth) = (String::new(), 0, 0usize);
        while i < chars.len() {
            let pair = (chars[i], chars.get(i + 1).copied());
            if pair == ('/', Some('*')) {
                depth += 1;
                i += 2;
            } else if depth > 0 && pair == ('*', Some('/')) {
                depth -= 1;
                i += 2;
            } else if depth > 0 {
                i += 1;
            } else if pair == ('-', Some('-')) {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any text: no panic; each statement is the text at its offset, in order and
        /// without overlap; between statements only blanks, `;` and comments remain, so
        /// no byte of code is lost.
        #[test]
        fn any_text_splits_without_losing_code(sql in ".{0,200}") {
            let statements = split(&sql);
            let mut end = 0;
            let mut gaps = String::new();
            for s in &statements {
                prop_assert!(s.offset >= end);
                prop_assert_eq!(sql.get(s.offset..s.offset + s.text.len()), Some(s.text));
                prop_assert!(!s.text.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty());
                gaps.push_str(sql.get(end..s.offset).unwrap_or_default());
                gaps.push('\n');
                end = s.offset + s.text.len();
                let _ = line_at(&sql, s.offset);
                let _ = line_of(s.text, u32::MAX);
            }
            gaps.push_str(sql.get(end..).unwrap_or_default());
            let left = without_comments(&gaps);
            prop_assert!(
                left.chars().all(|c| c == ';' || c.is_ascii_whitespace()),
                "code outside every statement: {:?} from {:?}", left, statements
            );
        }

        /// Generated SQL with `;` inside strings, identifiers, dollar quotes and comments:
        /// the splitter cuts exactly at the top-level `;` a plain reference knows.
        #[test]
        fn splits_only_at_top_level_semicolons((sql, expected) in script()) {
            prop_assert_eq!(texts(&sql), expected);
        }
    }
}
