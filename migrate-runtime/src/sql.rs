//! Splitting a script into statements, so an error can name its line.

/// One statement of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    /// The statement's text, from its first token up to and including its `;`.
    pub(crate) text: &'a str,
    /// 1-based line of the first token in the script.
    pub(crate) line: usize,
    /// Byte offset of `text` in the script.
    pub(crate) offset: usize,
}

/// Splits `sql` into statements the way SQLite's `sqlite3_complete` sees
/// them: `;` ends a statement unless it is inside a string, a quoted name, a
/// comment, or the body of a `CREATE TRIGGER` (which ends at `; END ;`).
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    // State of the statement being read.
    let mut start: Option<(usize, usize)> = None;
    // The statement's first words (as written), enough to tell a trigger.
    let mut words: [&str; 6] = [""; 6];
    let mut count = 0;
    let mut prev: [Token; 2] = [Token::Other, Token::Other];

    fn finish<'a>(sql: &'a str, out: &mut Vec<Statement<'a>>, start: Option<(usize, usize)>, end: usize) {
        if let Some((offset, line)) = start {
            out.push(Statement {
                text: &sql[offset..end],
                line,
                offset,
            });
        }
    }

    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            // SQLite's tokenizer takes a byte order mark anywhere for white space.
            0xEF if bytes[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                i += 3;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            if b == b';' {
                i += 1;
                continue;
            }
            start = Some((i, line));
            count = 0;
            prev = [Token::Other, Token::Other];
        }
        let token = match b {
            b';' => {
                i += 1;
                let mut words = &words[..count];
                let is =
                    |words: &[&str], at: usize, word: &str| words.get(at).is_some_and(|w| w.eq_ignore_ascii_case(word));
                // `EXPLAIN [QUERY PLAN]` in front does not change where it ends.
                if is(words, 0, "EXPLAIN") {
                    words = &words[if is(words, 1, "QUERY") && is(words, 2, "PLAN") {
                        3
                    } else {
                        1
                    }..];
                }
                let is_trigger = is(words, 0, "CREATE")
                    && (is(words, 1, "TRIGGER")
                        || ((is(words, 1, "TEMP") || is(words, 1, "TEMPORARY")) && is(words, 2, "TRIGGER")));
                if !is_trigger || (prev == [Token::Semicolon, Token::End]) {
                    finish(sql, &mut out, start.take(), i);
                    continue;
                }
                Token::Semicolon
            }
            b'\'' | b'"' | b'`' => {
                let quote = b;
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Token::Other
            }
            b'[' => {
                while i < bytes.len() && bytes[i] != b']' {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Token::Other
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => {
                let from = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &sql[from..i];
                if let Some(slot) = words.get_mut(count) {
                    *slot = word;
                    count += 1;
                }
                if word.eq_ignore_ascii_case("END") {
                    Token::End
                } else {
                    Token::Other
                }
            }
            _ => {
                i += 1;
                Token::Other
            }
        };
        prev = [prev[1], token];
    }
    finish(sql, &mut out, start, bytes.len());
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Semicolon,
    End,
    Other,
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    line_at_byte(text.as_bytes(), offset)
}

/// 1-based line of byte `offset` in `bytes` (bytes, so that a file that is
/// not UTF-8 can be pointed into): the one line counter of the runtime,
/// the build and the CLI.
#[doc(hidden)]
pub fn line_at_byte(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(&str, usize)> {
        statements(sql).into_iter().map(|s| (s.text, s.line)).collect()
    }

    #[test]
    fn splits_with_lines() {
        let sql =
            "-- a comment; not a statement\nCREATE TABLE a (x);\n\n  INSERT INTO a VALUES ('x;y');\n/* ; */ SELECT 1";
        assert_eq!(
            texts(sql),
            vec![
                ("CREATE TABLE a (x);", 2),
                ("INSERT INTO a VALUES ('x;y');", 4),
                ("SELECT 1", 5)
            ]
        );
    }

    #[test]
    fn quotes_and_multiline_strings() {
        let sql = "INSERT INTO \"we;ird\" VALUES ('it''s\n;');\nSELECT [a;b], `c;d`;";
        assert_eq!(
            texts(sql),
            vec![
                ("INSERT INTO \"we;ird\" VALUES ('it''s\n;');", 1),
                ("SELECT [a;b], `c;d`;", 3)
            ]
        );
    }

    #[test]
    fn trigger_bodies_end_at_end() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = CASE WHEN 1 THEN 2 END;\n  DELETE FROM b;\nEND;\nSELECT 2;";
        let got = texts(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].0.ends_with("END;"));
        assert_eq!(got[1], ("SELECT 2;", 5));
        // fuzz/regressions/statement_split_vs_sqlite/explain-create-trigger
        let explain = "EXPLAIN CREATE TRIGGER tr AFTER INSERT ON a BEGIN SELECT 1; END;";
        assert_eq!(texts(explain).len(), 1);
        let temp = "create temp trigger t after insert on a begin select 1; end; select 3";
        assert_eq!(texts(temp).len(), 2);
    }

    #[test]
    fn vertical_tab_is_white_space_as_in_sqlite() {
        // fuzz/regressions/statement_split_vs_sqlite/vertical-tab-after-space
        assert!(statements("\r\x0b").is_empty());
        // …/bom-inside-script and …/bom-before-trigger: a BOM is white space too.
        assert!(statements(";\u{feff}").is_empty());
        let trigger = "SELECT 1;\n\u{feff}CREATE TRIGGER tr AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n";
        assert_eq!(statements(trigger).len(), 2);
    }

    #[test]
    fn empty_and_comment_only() {
        assert!(statements("").is_empty());
        assert!(statements("  -- only\n/* comments */ ;; \n").is_empty());
    }

    #[test]
    fn line_at_counts_newlines() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 99), 3);
    }
}
