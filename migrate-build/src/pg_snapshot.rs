//! The tables and columns of a PostgreSQL schema snapshot (`snapshot =
//! "migrations/schema.sql"`), for the generated `schema` module when no
//! server replays the migrations at build time: the committed, reviewed
//! snapshot is then the source of the column constants, and a build with a
//! check server (`MIGRATE_CHECK_DATABASE_URL`) proves it fresh.
//!
//! Only `CREATE TABLE` statements matter here. The file is what
//! [`Model::postgres_sql`](migrate_runtime::model::Model::postgres_sql)
//! writes, but it is a reviewed file that a person may edit, so this reads
//! PostgreSQL's syntax rather than our layout: quoted and bare names,
//! schema-qualified names, strings, `E''` strings and dollar quotes (the
//! lexical rules of PostgreSQL's manual, section 4.1), array types
//! (`text[]`, which the SQLite tokenizers would take for a quoted name),
//! column constraints, and table constraints (`PRIMARY KEY (…)`).

use std::path::Path;

use migrate_runtime::schema::{Column, Table};

use crate::problem::Problem;

/// One token of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word, folded to lower case as PostgreSQL folds names.
    Word(String),
    /// A quoted name, as written between the quotes (`""` undoubled).
    Name(String),
    /// A string or dollar-quoted literal, as written.
    Literal(String),
    /// Anything else: one character, or a number.
    Punct(String),
}

impl Tok {
    pub(crate) fn is(&self, word: &str) -> bool {
        matches!(self, Self::Word(w) if w == word)
    }

    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self, Self::Punct(x) if x == p)
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::Word(w) | Self::Name(w) => Some(w),
            _ => None,
        }
    }

    /// The token as it reads in a type (`character varying`, `(20)`).
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Word(w) => w.clone(),
            Self::Name(n) => format!("\"{}\"", n.replace('"', "\"\"")),
            Self::Literal(s) | Self::Punct(s) => s.clone(),
        }
    }
}

/// The tokens of a PostgreSQL statement, comments left out (also the
/// lint's, `crate::lint::pg`).
pub(crate) fn tokens(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let text = |from: usize, to: usize| chars[from..to.min(chars.len())].iter().collect::<String>();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Comments nest in PostgreSQL.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || (matches!(c, 'e' | 'E') && next == Some('\'')) {
            let from = i;
            let backslash = c != '\'';
            i += if backslash { 2 } else { 1 };
            while i < chars.len() {
                let escaped = backslash && chars[i] == '\\';
                if escaped || (chars[i] == '\'' && chars.get(i + 1) == Some(&'\'')) {
                    i += 2;
                } else if chars[i] == '\'' {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
            out.push(Tok::Literal(text(from, i)));
        } else if c == '"' {
            let mut name = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' && chars.get(i + 1) == Some(&'"') {
                    name.push('"');
                    i += 2;
                } else if chars[i] == '"' {
                    i += 1;
                    break;
                } else {
                    name.push(chars[i]);
                    i += 1;
                }
            }
            out.push(Tok::Name(name));
        } else if c == '$'
            && let Some(len) = dollar_tag(&chars[i..])
        {
            let tag = &chars[i..i + len];
            let from = i;
            i += len;
            while i < chars.len() && !chars[i..].starts_with(tag) {
                i += 1;
            }
            i = (i + len).min(chars.len());
            out.push(Tok::Literal(text(from, i)));
        } else if c.is_alphabetic() || c == '_' {
            let from = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.push(Tok::Word(text(from, i).to_lowercase()));
        } else if c.is_ascii_digit() {
            let from = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Punct(text(from, i)));
        } else {
            out.push(Tok::Punct(c.to_string()));
            i += 1;
        }
    }
    out
}

/// The length of the dollar-quote tag (`$$`, `$body$`) at the start of
/// `chars`; `None` for a parameter (`$1`) or a lone `$`.
fn dollar_tag(chars: &[char]) -> Option<usize> {
    let inner = chars[1..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count();
    let starts_with_digit = chars.get(1).is_some_and(char::is_ascii_digit);
    (chars.get(1 + inner) == Some(&'$') && !starts_with_digit).then_some(inner + 2)
}

/// Splits `toks` at the commas outside parentheses.
pub(crate) fn items(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") || t.is_punct("[") {
            depth += 1;
        } else if t.is_punct(")") || t.is_punct("]") {
            depth = depth.saturating_sub(1);
        } else if t.is_punct(",") && depth == 0 {
            out.push(&toks[from..i]);
            from = i + 1;
        }
    }
    out.push(&toks[from..]);
    out.retain(|item| !item.is_empty());
    out
}

/// The names in a parenthesized list at the start of `toks`: `("a", b)`.
fn name_list(toks: &[Tok]) -> Vec<String> {
    let Some(end) = toks.iter().position(|t| t.is_punct(")")) else {
        return Vec::new();
    };
    toks.get(1..end)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.name().map(str::to_owned))
        .collect()
}

/// The words that start a table constraint rather than a column.
const TABLE_CONSTRAINTS: &[&str] = &["constraint", "check", "primary", "unique", "foreign", "exclude", "like"];

/// The words that end a column's type and start its constraints.
pub(crate) const COLUMN_CONSTRAINTS: &[&str] = &[
    "collate",
    "default",
    "generated",
    "not",
    "null",
    "constraint",
    "check",
    "primary",
    "unique",
    "references",
    "compression",
    "storage",
];

/// The table a `CREATE TABLE` statement makes; `None` for other
/// statements and for tables without a column list (`PARTITION OF`,
/// `AS SELECT`, `OF type`).
pub(crate) fn create_table(toks: &[Tok]) -> Option<Table> {
    let mut i = 0;
    let mut next = |word: &str| {
        let found = toks.get(i).is_some_and(|t| t.is(word));
        if found {
            i += 1;
        }
        found
    };
    if !next("create") {
        return None;
    }
    for modifier in ["global", "local", "temporary", "temp", "unlogged"] {
        next(modifier);
    }
    if !next("table") {
        return None;
    }
    if next("if") {
        next("not");
        next("exists");
    }
    let mut name = toks.get(i)?.name()?.to_owned();
    i += 1;
    while toks.get(i).is_some_and(|t| t.is_punct(".")) {
        name = toks.get(i + 1)?.name()?.to_owned();
        i += 2;
    }
    if !toks.get(i)?.is_punct("(") {
        return None;
    }
    let body_start = i + 1;
    let mut depth = 1usize;
    let mut end = body_start;
    while end < toks.len() {
        if toks[end].is_punct("(") {
            depth += 1;
        } else if toks[end].is_punct(")") {
            depth -= 1;
            if depth == 0 {
                break;
            }
        }
        end += 1;
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Vec<String> = Vec::new();
    for item in items(&toks[body_start..end]) {
        let first = &item[0];
        if TABLE_CONSTRAINTS.iter().any(|w| first.is(w)) {
            if let Some(at) = item.iter().position(|t| t.is("primary"))
                && item.get(at + 1).is_some_and(|t| t.is("key"))
            {
                primary_key = name_list(&item[at + 2..]);
            }
            continue;
        }
        let Some(column) = first.name() else { continue };
        let rest = &item[1..];
        let type_end = rest
            .iter()
            .position(|t| COLUMN_CONSTRAINTS.iter().any(|w| t.is(w)))
            .unwrap_or(rest.len());
        let decl_type = type_text(&rest[..type_end]);
        let constraints = &rest[type_end..];
        let pairs = || constraints.windows(2);
        let not_null = pairs().any(|w| w[0].is("not") && w[1].is("null"));
        let inline_key = pairs().any(|w| w[0].is("primary") && w[1].is("key"));
        let mut col = Column::new(column, decl_type).with_not_null(not_null || inline_key);
        if inline_key {
            col.primary_key = 1;
        }
        columns.push(col);
    }
    for (position, key) in primary_key.iter().enumerate() {
        if let Some(col) = columns.iter_mut().find(|c| &c.name == key) {
            col.primary_key = u32::try_from(position + 1).unwrap_or(u32::MAX);
            col.not_null = true;
        }
    }
    Some(Table::new(name, columns))
}

/// A type's tokens as PostgreSQL prints it: `character varying(20)`,
/// `numeric(10,2)`, `text[]`, `timestamp with time zone`.
pub(crate) fn type_text(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        let text = t.text();
        let tight = out.is_empty()
            || matches!(text.as_str(), "(" | ")" | "," | "[" | "]" | ".")
            || out.ends_with(['(', '[', '.', ',']);
        if !tight {
            out.push(' ');
        }
        out.push_str(&text);
    }
    out
}

/// The tables (in name order, as the build's replay lists them) that the
/// PostgreSQL schema snapshot `text` creates; `shown` names the file in
/// problems.
///
/// # Errors
///
/// A problem naming the line of a string, quoted name, comment or dollar
/// quote the file opens and never closes.
pub(crate) fn tables(text: &str, shown: &str) -> Result<Vec<Table>, Problem> {
    let statements = migrate_runtime::postgres_statements(text).map_err(|(line, what)| {
        Problem::error(shown, line, format!("the schema snapshot has {what}"))
            .hint("run `cargo migrate schema --write` to write the snapshot again")
    })?;
    let mut tables: Vec<Table> = statements
        .iter()
        .filter_map(|(_, statement)| create_table(&tokens(statement)))
        .collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// [`tables`] of the snapshot file at `path`.
///
/// # Errors
///
/// When the file cannot be read (missing included), or as [`tables`].
pub(crate) fn read_tables(path: &Path, shown: &str) -> Result<Vec<Table>, Problem> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "the schema snapshot is missing".to_owned()
        } else {
            format!("cannot read the schema snapshot: {e}")
        };
        Problem::error(shown, 0, format!("{what}; the generated `schema` module of PostgreSQL migrations is read from it when no check server replays them"))
            .hint("run `cargo migrate schema --write` (it replays the migrations on the server of --database or MIGRATE_CHECK_DATABASE_URL) and commit the file")
    })?;
    tables(&text.replace("\r\n", "\n"), shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(t: &Table) -> Vec<(&str, &str, bool, u32)> {
        t.columns
            .iter()
            .map(|c| (c.name.as_str(), c.decl_type.as_str(), c.not_null, c.primary_key))
            .collect()
    }

    #[test]
    fn reads_the_tables_of_a_rendered_snapshot() {
        let sql = "CREATE TYPE \"mood\" AS ENUM ('ok', 'sad');\n\n\
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END; $$;\n\n\
            CREATE TABLE \"users\" (\n    \"id\" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,\n    \
            \"Full Name\" character varying(20) COLLATE \"C\" DEFAULT 'a;b' NOT NULL,\n    \
            \"tags\" text[] DEFAULT '{}'::text[],\n    \"price\" numeric(10,2),\n    \
            \"at\" timestamp with time zone DEFAULT now() NOT NULL,\n    \
            CONSTRAINT \"users_pkey\" PRIMARY KEY (\"id\"),\n    CHECK ((price > (0)::numeric))\n);\n\n\
            CREATE TABLE \"a\" (\n    \"x\" integer\n);\n\n\
            CREATE INDEX \"users_at\" ON \"users\" (\"at\");\n";
        let tables = tables(sql, "schema.sql").unwrap();
        assert_eq!(
            tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "users"]
        );
        assert_eq!(
            columns(&tables[1]),
            [
                ("id", "bigint", true, 1),
                ("Full Name", "character varying(20)", true, 0),
                ("tags", "text[]", false, 0),
                ("price", "numeric(10,2)", false, 0),
                ("at", "timestamp with time zone", true, 0),
            ]
        );
    }

    #[test]
    fn reads_hand_written_tables_too() {
        let sql = "create table if not exists app.Notes (id serial primary key, \"body\" text not null, \
            owner int references users (id), unique (body, owner));\n\
            CREATE TABLE part_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";
        let tables = tables(sql, "schema.sql").unwrap();
        assert_eq!(tables.len(), 1, "a partition has no column list of its own");
        assert_eq!(tables[0].name, "notes", "bare names fold to lower case");
        assert_eq!(
            columns(&tables[0]),
            [
                ("id", "serial", true, 1),
                ("body", "text", true, 0),
                ("owner", "int", false, 0)
            ]
        );
    }

    #[test]
    fn an_unclosed_string_names_its_line() {
        let e = tables(
            "CREATE TABLE t (x text);\nCREATE TABLE u (y text DEFAULT 'oops);\n",
            "migrations/schema.sql",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("migrations/schema.sql:2: "), "{e}");
        assert!(e.to_string().contains("never closed"), "{e}");
    }

    #[test]
    fn a_missing_file_says_how_to_write_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_tables(&dir.path().join("schema.sql"), "migrations/schema.sql").unwrap_err();
        assert!(e.to_string().contains("the schema snapshot is missing"), "{e}");
        assert!(e.to_string().contains("cargo migrate schema --write"), "{e}");
    }
}
