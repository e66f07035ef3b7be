//! Splitting a PostgreSQL script into statements (no server, no driver:
//! compiled with or without the feature `postgres`), following the lexical
//! rules of PostgreSQL's documentation ("Lexical Structure", section 4.1 of
//! the manual): `--` and nested `/* … */` comments, `'…'` strings with `''`,
//! `E'…'` strings with backslash escapes, `"…"` names, `$tag$…$tag$`
//! dollar quotes, and SQL-standard function bodies (`BEGIN ATOMIC … END`,
//! section "CREATE FUNCTION"), whose inner `;` do not end the statement.
//!
//! The runner needs it for `-- migrate:no-transaction` scripts, which must
//! run one statement at a time (PostgreSQL runs a multi-statement query
//! string in one implicit transaction, where `CREATE INDEX CONCURRENTLY`
//! is refused), and to name the line of a failing statement when the
//! server reports no position.

use crate::sql::Statement;

/// Splits `sql` into statements; each includes its `;` (the last may have
/// none). Text with only white space and comments is no statement.
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    split(sql).0
}

/// A string, quoted name, comment, dollar quote or `BEGIN ATOMIC` body
/// that the script opens and never closes: its 1-based line and what it is.
pub(crate) fn unterminated(sql: &str) -> Option<(usize, &'static str)> {
    split(sql).1
}

fn split(sql: &str) -> (Vec<Statement<'_>>, Option<(usize, &'static str)>) {
    let b = sql.as_bytes();
    let mut open: Option<(usize, &'static str)> = None;
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut start: Option<(usize, usize)> = None; // offset, line of the first token
    // Words of the current statement outside quotes, for BEGIN ATOMIC.
    let mut first_words: Vec<String> = Vec::new();
    let mut prev_word = String::new();
    let mut atomic_depth = 0usize;
    let mut atomic_line = 0usize;

    while i < b.len() {
        let c = b[i];
        // White space and comments: not the start of a statement.
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let opened = line;
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            if depth > 0 {
                open = Some((opened, "a /* comment */ that is never closed"));
            }
            continue;
        }
        if start.is_none() {
            start = Some((i, line));
        }
        match c {
            b';' => {
                i += 1;
                if atomic_depth == 0 {
                    if let Some((offset, l)) = start.take() {
                        out.push(Statement {
                            text: &sql[offset..i],
                            line: l,
                            offset,
                        });
                    }
                    first_words.clear();
                    prev_word.clear();
                }
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident(b[i - 2]));
                let opened = line;
                let closed;
                (i, closed) = skip_quoted(b, i, b'\'', escapes, &mut line);
                if !closed {
                    open = Some((opened, "a 'string' that is never closed"));
                }
            }
            b'"' => {
                let opened = line;
                let closed;
                (i, closed) = skip_quoted(b, i, b'"', false, &mut line);
                if !closed {
                    open = Some((opened, "a \"quoted name\" that is never closed"));
                }
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag_len) => {
                    let tag = &b[i..i + tag_len];
                    let opened = line;
                    let mut j = i + tag_len;
                    loop {
                        if j >= b.len() {
                            open = Some((opened, "a $$ dollar quote $$ that is never closed"));
                            i = j;
                            break;
                        }
                        if b[j..].starts_with(tag) {
                            i = j + tag_len;
                            break;
                        }
                        if b[j] == b'\n' {
                            line += 1;
                        }
                        j += 1;
                    }
                }
                None => i += 1,
            },
            c if is_ident_start(c) => {
                let begin = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = sql[begin..i].to_ascii_uppercase();
                if atomic_depth > 0 {
                    match word.as_str() {
                        "CASE" => atomic_depth += 1,
                        "END" => atomic_depth -= 1,
                        _ => {}
                    }
                } else if word == "ATOMIC" && prev_word == "BEGIN" && defines_routine(&first_words) {
                    atomic_depth = 1;
                    atomic_line = line;
                }
                if first_words.len() < 6 {
                    first_words.push(word.clone());
                }
                prev_word = word;
            }
            _ => i += 1,
        }
    }
    if let Some((offset, l)) = start {
        out.push(Statement {
            text: &sql[offset..],
            line: l,
            offset,
        });
    }
    if open.is_none() && atomic_depth > 0 {
        open = Some((atomic_line, "a BEGIN ATOMIC body without its END"));
    }
    (out, open)
}

/// Whether a statement starting with `words` creates a function or a
/// procedure (the only statements with `BEGIN ATOMIC` bodies).
fn defines_routine(words: &[String]) -> bool {
    let mut w = words.iter().map(String::as_str);
    if w.next() != Some("CREATE") {
        return false;
    }
    let mut next = w.next();
    if next == Some("OR") {
        w.next(); // REPLACE
        next = w.next();
    }
    matches!(next, Some("FUNCTION" | "PROCEDURE"))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Skips a quoted string or name starting at `i` (its opening quote);
/// returns the index after its closing quote, and whether there was one.
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash_escapes: bool, line: &mut usize) -> (usize, bool) {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            c if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return (i + 1, true);
                }
            }
            c => {
                if c == b'\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    (b.len(), false)
}

/// The length of the dollar-quote tag (`$$`, `$body$`) starting at `i`;
/// `None` for a positional parameter (`$1`) or a lone `$`.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < b.len() && (is_ident_start(b[j]) || b[j].is_ascii_digit()) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

/// The byte offset in `text` of PostgreSQL's error position `position`
/// (1-based, counted in characters).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn byte_offset(text: &str, position: u32) -> usize {
    let index = usize::try_from(position.saturating_sub(1)).unwrap_or(usize::MAX);
    text.char_indices().nth(index).map_or(text.len(), |(o, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(&str, usize)> {
        statements(sql).into_iter().map(|s| (s.text, s.line)).collect()
    }

    #[test]
    fn splits_on_semicolons_with_lines() {
        assert_eq!(
            texts("CREATE TABLE a (x int);\n\n-- c; not a statement\nSELECT 1;"),
            vec![("CREATE TABLE a (x int);", 1), ("SELECT 1;", 4)]
        );
        assert_eq!(texts("SELECT 1"), vec![("SELECT 1", 1)]);
        assert!(texts(" -- only a comment;\n/* ; */ ").is_empty());
    }

    #[test]
    fn strings_names_and_escapes() {
        assert_eq!(texts("SELECT 'a;''b';SELECT 2;").len(), 2);
        assert_eq!(texts(r"SELECT E'it\'s; here';SELECT 2;").len(), 2);
        // Outside E'' a backslash is an ordinary character.
        assert_eq!(texts(r"SELECT 'C:\';SELECT 2;").len(), 2);
        assert_eq!(texts("SELECT 1 AS \"a;\"\"b\";SELECT 2;").len(), 2);
        // `e` ending a name does not start an E'' string.
        assert_eq!(texts(r"SELECT name'\';SELECT 2;").len(), 2);
    }

    #[test]
    fn nested_comments() {
        assert_eq!(
            texts("/* outer /* inner; */ still; */ SELECT 1;\nSELECT 2;"),
            vec![("SELECT 1;", 1), ("SELECT 2;", 2)]
        );
    }

    #[test]
    fn dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT f();";
        assert_eq!(texts(sql).len(), 2);
        assert_eq!(texts(sql)[1].1, 6);
        let tagged = "DO $body$ BEGIN PERFORM '$$;'; END $body$;\nSELECT 2;";
        assert_eq!(
            texts(tagged),
            vec![("DO $body$ BEGIN PERFORM '$$;'; END $body$;", 1), ("SELECT 2;", 2)]
        );
        // Parameters and `$` inside names are not quotes.
        assert_eq!(texts("PREPARE p AS SELECT $1;SELECT a$b$ FROM t;SELECT 3;").len(), 3);
    }

    #[test]
    fn begin_atomic_bodies() {
        let sql = "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;\n  SELECT 1;\nEND;\nSELECT add(1, 2);";
        assert_eq!(texts(sql).len(), 2, "{:?}", texts(sql));
        assert_eq!(texts(sql)[1], ("SELECT add(1, 2);", 6));
        // A transaction's BEGIN is not a body.
        assert_eq!(texts("BEGIN;\nSELECT 1;\nCOMMIT;").len(), 3);
    }

    #[test]
    fn unterminated_constructs_name_their_line() {
        assert_eq!(
            unterminated("SELECT 1;\nSELECT 'a;\n"),
            Some((2, "a 'string' that is never closed"))
        );
        assert_eq!(
            unterminated("SELECT 1;\n/* a /* b */\nSELECT 2;"),
            Some((2, "a /* comment */ that is never closed"))
        );
        assert_eq!(
            unterminated("\n\nDO $x$ BEGIN END $y$;"),
            Some((3, "a $$ dollar quote $$ that is never closed"))
        );
        assert_eq!(
            unterminated("SELECT \"a;"),
            Some((1, "a \"quoted name\" that is never closed"))
        );
        assert_eq!(
            unterminated("CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n"),
            Some((2, "a BEGIN ATOMIC body without its END"))
        );
        assert_eq!(unterminated("SELECT E'\\'';\nSELECT $$a$$;"), None);
    }

    #[test]
    fn positions_are_characters() {
        assert_eq!(byte_offset("SELECT 'é', x", 13), "SELECT 'é', ".len());
        assert_eq!(byte_offset("ab", 99), 2);
    }
}
