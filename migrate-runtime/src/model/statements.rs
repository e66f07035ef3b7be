//! Whether two texts of a migration run the same statements: what
//! `cargo migrate repair` asks before it re-stamps an applied migration
//! whose file changed only in comments or white space.

use super::parse::{Tok, tokens_folding};
use crate::sql::Statement;

/// The SQL dialect of a script, for [`first_changed_statement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite: names are compared without letter case, quoted or not.
    Sqlite,
    /// PostgreSQL: quoted names keep their letter case; a statement with a
    /// dollar quote (`$$`, `$tag$`) or a backslash (an `E'…'` string) is
    /// compared by its exact text, as its body is not tokenized here.
    Postgres,
}

/// The first statement that differs between two texts of a migration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangedStatement {
    /// Its 1-based number among the statements.
    pub number: usize,
    /// Its line in the old text (0: the old text has no such statement).
    pub old_line: usize,
    /// Its line in the new text (0: the new text has no such statement).
    pub new_line: usize,
    /// Its old text (empty when there is none).
    pub old: String,
    /// Its new text (empty when there is none).
    pub new: String,
}

/// `None` when `old` and `new` run the same statements — the same tokens
/// once comments, white space and the letter case of keywords and unquoted
/// names are set aside, and the same `-- migrate:` directives — else the
/// first statement that differs (a changed directive counts as its own
/// line, number 0). Statements are split as the runner splits them, and
/// tokenized by the schema model's tokenizer; string literals compare
/// exactly.
///
/// # Examples
///
/// ```
/// use migrate_runtime::model::{Dialect, first_changed_statement};
/// let old = "CREATE TABLE t (id INTEGER);\n";
/// let new = "-- The table of t.\ncreate table t (\n    id INTEGER\n);\n";
/// assert_eq!(first_changed_statement(old, new, Dialect::Sqlite), None);
/// let changed = first_changed_statement(old, "CREATE TABLE t (id TEXT);", Dialect::Sqlite).unwrap();
/// assert_eq!((changed.number, changed.new_line), (1, 1));
/// ```
#[must_use]
pub fn first_changed_statement(old: &str, new: &str, dialect: Dialect) -> Option<ChangedStatement> {
    if let Some(changed) = changed_directive(old, new) {
        return Some(changed);
    }
    let split = |sql| match dialect {
        Dialect::Sqlite => crate::sql::statements(sql),
        Dialect::Postgres => crate::pgsql::statements(sql),
    };
    let (a, b) = (split(old), split(new));
    let empty = Statement {
        text: "",
        line: 0,
        offset: 0,
    };
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).unwrap_or(&empty), b.get(i).unwrap_or(&empty));
        if !same(x.text, y.text, dialect) {
            return Some(ChangedStatement {
                number: i + 1,
                old_line: x.line,
                new_line: y.line,
                old: x.text.trim().to_owned(),
                new: y.text.trim().to_owned(),
            });
        }
    }
    None
}

fn same(a: &str, b: &str, dialect: Dialect) -> bool {
    let opaque = |s: &str| s.contains('$') || s.contains('\\');
    if dialect == Dialect::Postgres && (opaque(a) || opaque(b)) {
        return a.trim() == b.trim();
    }
    let fold = dialect == Dialect::Sqlite;
    let toks = |s| -> Vec<Tok> {
        let mut t = tokens_folding(s, fold);
        // The `;` that ends a statement is optional on the last one.
        if t.last().is_some_and(|l| l.text() == ";") {
            t.pop();
        }
        t
    };
    toks(a) == toks(b)
}

/// The `-- migrate:` directives of a text, with their lines.
fn directives(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim();
            l.starts_with("-- migrate:").then_some((i + 1, l))
        })
        .collect()
}

fn changed_directive(old: &str, new: &str) -> Option<ChangedStatement> {
    let (a, b) = (directives(old), directives(new));
    if a.iter().map(|d| d.1).eq(b.iter().map(|d| d.1)) {
        return None;
    }
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x.1 != y.1)
        .unwrap_or(a.len().min(b.len()));
    let (x, y) = (a.get(at), b.get(at));
    Some(ChangedStatement {
        number: 0,
        old_line: x.map_or(0, |d| d.0),
        new_line: y.map_or(0, |d| d.0),
        old: x.map(|d| d.1.to_owned()).unwrap_or_default(),
        new: y.map(|d| d.1.to_owned()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosmetic_changes_are_the_same_statements() {
        let old = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nCREATE INDEX users_name ON users (name);\n";
        for new in [
            "-- Users.\nCREATE TABLE users (\n  id INTEGER PRIMARY KEY, -- the key\n  name TEXT\n);\n\n/* by name */\nCREATE INDEX users_name ON users (name);",
            "create table USERS (id integer primary key, name text);\r\ncreate index users_name on users(name);\r\n",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);CREATE INDEX users_name ON users (name)",
        ] {
            assert_eq!(first_changed_statement(old, new, Dialect::Sqlite), None, "{new}");
        }
    }

    #[test]
    fn real_changes_name_the_first_statement() {
        let old = "CREATE TABLE t (a TEXT);\nINSERT INTO t VALUES ('x y');\n";
        let cases = [
            ("CREATE TABLE t (a TEXT);\nINSERT INTO t VALUES ('x  y');\n", 2, 2),
            ("CREATE TABLE t (a INTEGER);\nINSERT INTO t VALUES ('x y');\n", 1, 1),
            ("CREATE TABLE t (a TEXT);\n", 2, 0),
            (
                "CREATE TABLE t (a TEXT);\nINSERT INTO t VALUES ('x y');\n\nDROP TABLE t;\n",
                3,
                4,
            ),
            ("CREATE TABLE t (a TEXT);\n-- INSERT INTO t VALUES ('x y');\n", 2, 0),
        ];
        for (new, number, new_line) in cases {
            let c = first_changed_statement(old, new, Dialect::Sqlite).expect(new);
            assert_eq!((c.number, c.new_line), (number, new_line), "{new}");
        }
        // A directive is not a comment.
        let c = first_changed_statement(old, &format!("-- migrate:no-transaction\n{old}"), Dialect::Sqlite).unwrap();
        assert_eq!(
            (c.number, c.new_line, c.new.as_str()),
            (0, 1, "-- migrate:no-transaction")
        );
    }

    #[test]
    fn postgres_keeps_quoted_case_and_dollar_bodies() {
        let pg = Dialect::Postgres;
        assert!(
            first_changed_statement(
                "CREATE TABLE \"Users\" (id int);",
                "CREATE TABLE \"users\" (id int);",
                pg
            )
            .is_some()
        );
        assert!(
            first_changed_statement(
                "CREATE TABLE \"Users\" (id int);",
                "CREATE TABLE \"users\" (id int);",
                Dialect::Sqlite
            )
            .is_none()
        );
        // Quoting a name is not cosmetic: `"order"` and `order` differ.
        assert!(first_changed_statement("SELECT \"x\";", "SELECT x;", Dialect::Sqlite).is_some());
        let f = "CREATE FUNCTION f() RETURNS text AS $$ SELECT 'it''s  here' $$ LANGUAGE sql;";
        assert!(first_changed_statement(f, &f.replace("  here", " here"), pg).is_some());
        assert!(first_changed_statement(f, &format!("-- f\n{f}\n"), pg).is_none());
        assert!(first_changed_statement("SELECT E'a\\'  b';", "SELECT E'a\\' b';", pg).is_some());
    }
}
