//! Schema introspection: what a database's tables, indexes, views and
//! triggers are, and how two schemas differ.

use rusqlite::Connection;

use crate::{Error, Result};

/// One object of the schema (a row of `sqlite_schema`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The table it belongs to (itself, for a table).
    pub table: String,
    /// The SQL that creates it (`None` for automatic indexes).
    pub sql: Option<String>,
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The declared type (`TEXT`, `INTEGER`, or empty).
    pub decl_type: String,
    /// Whether it is declared `NOT NULL`.
    pub not_null: bool,
    /// Position in the primary key (0 when not part of it).
    pub primary_key: u32,
}

impl Column {
    /// A nullable column outside the primary key, of `decl_type` (may be
    /// empty).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::schema::Column;
    ///
    /// let id = Column::new("id", "INTEGER").with_not_null(true).with_primary_key(1);
    /// assert_eq!((id.name.as_str(), id.not_null, id.primary_key), ("id", true, 1));
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>, decl_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            decl_type: decl_type.into(),
            not_null: false,
            primary_key: 0,
        }
    }

    /// Whether it is declared `NOT NULL`.
    #[must_use]
    pub fn with_not_null(mut self, not_null: bool) -> Self {
        self.not_null = not_null;
        self
    }

    /// Its position in the primary key (0: not part of it).
    #[must_use]
    pub fn with_primary_key(mut self, position: u32) -> Self {
        self.primary_key = position;
        self
    }
}

/// A table and its columns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
}

impl Table {
    /// A table with `columns`, in declaration order.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::schema::{Column, Table};
    ///
    /// let users = Table::new("users", vec![Column::new("id", "INTEGER")]);
    /// assert_eq!(users.columns.len(), 1);
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            name: name.into(),
            columns,
        }
    }
}

/// A database's schema, without SQLite's internal `sqlite_*` objects and
/// without the migrations tracking table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    objects: Vec<Object>,
}

impl Schema {
    /// Reads the schema of `conn`'s main database, leaving out `tracking_table`.
    ///
    /// # Errors
    ///
    /// When the schema cannot be read.
    pub fn read(conn: &Connection, tracking_table: &str) -> Result<Self> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                 WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name <> ?1 COLLATE NOCASE \
                 ORDER BY type, name",
            )
            .map_err(Error::db("reading the schema"))?;
        let objects = stmt
            .query_map([tracking_table], |r| {
                Ok(Object {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    table: r.get(2)?,
                    sql: r.get(3)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(Error::db("reading the schema"))?;
        Ok(Self { objects })
    }

    /// Every object, ordered by kind and name.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Describes how `after` differs from `self`, ignoring formatting and
    /// letter case in the SQL; `None` when they are the same.
    pub fn difference(&self, after: &Schema) -> Option<String> {
        let mut out = Vec::new();
        let find = |objects: &'_ [Object], o: &Object| {
            objects
                .iter()
                .find(|p| p.kind == o.kind && p.name.eq_ignore_ascii_case(&o.name))
                .cloned()
        };
        for o in &self.objects {
            match find(&after.objects, o) {
                None => out.push(format!("{} `{}` is missing", o.kind, o.name)),
                Some(p) => {
                    let (a, b) = (o.sql.as_deref().map(normalize), p.sql.as_deref().map(normalize));
                    if a != b {
                        out.push(format!(
                            "{} `{}` was `{}` and is now `{}`",
                            o.kind,
                            o.name,
                            o.sql.as_deref().unwrap_or("(automatic)"),
                            p.sql.as_deref().unwrap_or("(automatic)")
                        ));
                    }
                }
            }
        }
        for p in &after.objects {
            if find(&self.objects, p).is_none() {
                out.push(format!("{} `{}` was left behind", p.kind, p.name));
            }
        }
        (!out.is_empty()).then(|| out.join("; "))
    }

    /// The tables with their columns, ordered by name. Reads from `conn`,
    /// which must hold this schema.
    ///
    /// # Errors
    ///
    /// When the columns cannot be read.
    pub fn tables(&self, conn: &Connection) -> Result<Vec<Table>> {
        let mut stmt = conn
            .prepare(
                "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3) ORDER BY cid",
            )
            .map_err(Error::db("reading the columns"))?;
        let mut tables = Vec::new();
        for o in self.objects.iter().filter(|o| o.kind == "table") {
            let columns = stmt
                .query_map([&o.name], |r| {
                    Ok(Column {
                        name: r.get(0)?,
                        decl_type: r.get(1)?,
                        not_null: r.get(2)?,
                        primary_key: r.get(3)?,
                    })
                })
                .and_then(Iterator::collect)
                .map_err(Error::db(format!("reading the columns of `{}`", o.name)))?;
            tables.push(Table {
                name: o.name.clone(),
                columns,
            });
        }
        Ok(tables)
    }
}

/// SQL with comments dropped, white space folded, letter case folded outside
/// string literals and simple quoted names unquoted: two definitions that
/// differ only in formatting compare equal.
fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut space = false;
    let push_space = |out: &mut String, space: &mut bool| {
        if *space && !out.is_empty() && !out.ends_with(['(', ',']) {
            out.push(' ');
        }
        *space = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                space = true;
            }
            c if c.is_whitespace() => space = true,
            '\'' => {
                push_space(&mut out, &mut space);
                out.push(c);
                while let Some(c) = chars.next() {
                    out.push(c);
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            out.push(chars.next().unwrap_or('\''));
                        } else {
                            break;
                        }
                    }
                }
            }
            '"' | '`' | '[' => {
                push_space(&mut out, &mut space);
                let close = if c == '[' { ']' } else { c };
                let mut name = String::new();
                for c in chars.by_ref() {
                    if c == close {
                        break;
                    }
                    name.push(c);
                }
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push_str(&name.to_ascii_lowercase());
                } else {
                    out.push('"');
                    out.push_str(&name);
                    out.push('"');
                }
            }
            ')' | ',' => {
                space = false;
                out.push(c);
            }
            c => {
                push_space(&mut out, &mut space);
                out.push(c.to_ascii_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_ignores_formatting_only() {
        assert_eq!(
            normalize("CREATE TABLE \"users\" (\n  id INTEGER, -- the key\n  name TEXT\n)"),
            normalize("create table users (id integer,name text)")
        );
        assert_ne!(
            normalize("CREATE TABLE t (a TEXT DEFAULT 'X')"),
            normalize("CREATE TABLE t (a TEXT DEFAULT 'x')")
        );
        assert_ne!(normalize("CREATE TABLE t (a)"), normalize("CREATE TABLE t (a, b)"));
    }

    #[test]
    fn difference_names_objects() {
        let conn = Connection::open_in_memory().unwrap();
        let before = Schema::read(&conn, "_migrations").unwrap();
        conn.execute_batch("CREATE TABLE a (x); CREATE INDEX a_x ON a (x); CREATE TABLE _migrations (v)")
            .unwrap();
        let after = Schema::read(&conn, "_migrations").unwrap();
        let diff = before.difference(&after).unwrap();
        assert_eq!(diff, "index `a_x` was left behind; table `a` was left behind");
        assert_eq!(after.difference(&after), None);
        let tables = after.tables(&conn).unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].columns[0].name, "x");
    }
}
