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
    /// Reads the schema of `conn`'s main database, leaving out `tracking_table`
    /// (and its backfill progress table, `{tracking_table}_backfill`).
    ///
    /// # Errors
    ///
    /// When the schema cannot be read.
    pub fn read(conn: &Connection, tracking_table: &str) -> Result<Self> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                 WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name <> ?1 COLLATE NOCASE \
                 AND tbl_name <> ?1 || '_backfill' COLLATE NOCASE \
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
    /// letter case in the SQL; `None` when they are the same. A table
    /// whose columns differ is described column by column (`column
    /// users.email: TEXT → INTEGER`, `column users.x missing`).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{rusqlite::Connection, schema::Schema};
    ///
    /// let conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE users (id INTEGER, email TEXT)")?;
    /// let before = Schema::read(&conn, "_migrations")?;
    /// conn.execute_batch("DROP TABLE users; CREATE TABLE users (id INTEGER, email INTEGER)")?;
    /// let after = Schema::read(&conn, "_migrations")?;
    /// assert_eq!(before.difference(&after).unwrap(), "column users.email: TEXT → INTEGER");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn difference(&self, after: &Schema) -> Option<String> {
        let c = self.compare(after);
        let all: Vec<String> = c.differences.into_iter().chain(c.reordered).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// How `after` differs from `self`: the real differences, and apart
    /// the tables whose only change is the order of their columns (a down
    /// that re-adds a dropped column with `ALTER TABLE … ADD COLUMN` puts
    /// it last).
    pub(crate) fn compare(&self, after: &Schema) -> Comparison {
        let mut out = Comparison::default();
        let find = |objects: &'_ [Object], o: &Object| {
            objects
                .iter()
                .find(|p| p.kind == o.kind && p.name.eq_ignore_ascii_case(&o.name))
                .cloned()
        };
        for o in &self.objects {
            match find(&after.objects, o) {
                None => out.differences.push(format!("{} `{}` is missing", o.kind, o.name)),
                Some(p) => {
                    let (a, b) = (o.sql.as_deref().map(normalize), p.sql.as_deref().map(normalize));
                    if a == b {
                        continue;
                    }
                    let columns = match (&o.sql, &p.sql) {
                        (Some(a), Some(b)) if o.kind == "table" => column_changes(&o.name, a, b),
                        _ => None,
                    };
                    match columns {
                        Some(Changes::Reordered(text)) => out.reordered.push(text),
                        Some(Changes::Listed(list)) => out.differences.extend(list),
                        None => out.differences.push(format!(
                            "{} `{}` was `{}` and is now `{}`",
                            o.kind,
                            o.name,
                            o.sql.as_deref().unwrap_or("(automatic)"),
                            p.sql.as_deref().unwrap_or("(automatic)")
                        )),
                    }
                }
            }
        }
        for p in &after.objects {
            if find(&self.objects, p).is_none() {
                out.differences.push(format!("{} `{}` was left behind", p.kind, p.name));
            }
        }
        out
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

/// How two schemas differ, from [`Schema::compare`].
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    /// Each real difference, described.
    pub(crate) differences: Vec<String>,
    /// Each table that only has its columns in another order, described.
    pub(crate) reordered: Vec<String>,
}

enum Changes {
    /// Same definitions in another order.
    Reordered(String),
    /// Column by column.
    Listed(Vec<String>),
}

/// A `CREATE TABLE` statement cut into the text before its list of
/// definitions, each definition (column or table constraint), and the
/// text after the list.
struct Definitions<'a> {
    head: &'a str,
    items: Vec<&'a str>,
    tail: &'a str,
}

impl<'a> Definitions<'a> {
    /// `None` when `sql` has no parenthesized list (`CREATE TABLE … AS
    /// SELECT`, virtual tables).
    fn parse(sql: &'a str) -> Option<Self> {
        let bytes = sql.as_bytes();
        let (mut depth, mut i, mut open, mut start) = (0usize, 0, None, 0);
        let mut items = Vec::new();
        while i < bytes.len() {
            match bytes[i] {
                q @ (b'\'' | b'"' | b'`') => {
                    i += 1;
                    while i < bytes.len() {
                        if bytes[i] == q {
                            if bytes.get(i + 1) == Some(&q) {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        i += 1;
                    }
                }
                b'[' => {
                    while i < bytes.len() && bytes[i] != b']' {
                        i += 1;
                    }
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                        i += 1;
                    }
                    i += 1;
                }
                b'(' => {
                    if depth == 0 {
                        open = Some(i);
                        start = i + 1;
                    }
                    depth += 1;
                }
                b',' if depth == 1 => {
                    items.push(sql.get(start..i)?.trim());
                    start = i + 1;
                }
                b')' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        items.push(sql.get(start..i)?.trim());
                        return Some(Self {
                            head: sql.get(..open?)?,
                            items,
                            tail: sql.get(i + 1..)?,
                        });
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// Whether a definition is a table constraint rather than a column.
fn is_constraint(normalized: &str) -> bool {
    let first = normalized.split([' ', '(']).next().unwrap_or("");
    matches!(first, "constraint" | "primary" | "unique" | "check" | "foreign")
}

/// A column definition's name (unquoted) and the rest, white space folded.
fn split_column(item: &str) -> (String, String) {
    let item = item.trim();
    let (name, rest) = match item.chars().next() {
        Some(q @ ('"' | '`' | '[')) => {
            let close = if q == '[' { ']' } else { q };
            let end = item[1..].find(close).map_or(item.len(), |e| e + 1);
            (item[1..end].to_owned(), item.get(end + 1..).unwrap_or(""))
        }
        _ => {
            let end = item.find(char::is_whitespace).unwrap_or(item.len());
            (item[..end].to_owned(), &item[end..])
        }
    };
    (name, rest.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The difference of two definitions of `table`, column by column; `None`
/// when they cannot be compared that way (the text around the list
/// differs, or there is no list).
fn column_changes(table: &str, before: &str, after: &str) -> Option<Changes> {
    let (a, b) = (Definitions::parse(before)?, Definitions::parse(after)?);
    if normalize(a.head) != normalize(b.head) || normalize(a.tail) != normalize(b.tail) {
        return None;
    }
    let norm = |d: &Definitions<'_>| d.items.iter().map(|i| normalize(i)).collect::<Vec<_>>();
    let (na, nb) = (norm(&a), norm(&b));
    let columns = |d: &Definitions<'_>, n: &[String]| {
        d.items
            .iter()
            .zip(n)
            .filter(|(_, n)| !is_constraint(n))
            .map(|(i, n)| {
                let (name, rest) = split_column(i);
                (name, rest, n.clone())
            })
            .collect::<Vec<_>>()
    };
    let (ca, cb) = (columns(&a, &na), columns(&b, &nb));
    let (mut sa, mut sb) = (na.clone(), nb.clone());
    sa.sort();
    sb.sort();
    if sa == sb {
        let names = |c: &[(String, String, String)]| c.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(", ");
        return Some(Changes::Reordered(format!(
            "table `{table}` with its columns in another order: ({}) before, ({}) after",
            names(&ca),
            names(&cb)
        )));
    }
    let same_name = |x: &str, y: &str| x.eq_ignore_ascii_case(y);
    let mut list = Vec::new();
    for (name, rest, n) in &ca {
        match cb.iter().find(|c| same_name(&c.0, name)) {
            None => list.push(format!("column {table}.{name} missing")),
            Some((_, rest_b, n_b)) if split_column(n).1 != split_column(n_b).1 => {
                let shown = |r: &str| {
                    if r.is_empty() {
                        "(no type)".to_owned()
                    } else {
                        r.to_owned()
                    }
                };
                list.push(format!("column {table}.{name}: {} → {}", shown(rest), shown(rest_b)));
            }
            Some(_) => {}
        }
    }
    for (name, ..) in &cb {
        if !ca.iter().any(|c| same_name(&c.0, name)) {
            list.push(format!("column {table}.{name} left behind"));
        }
    }
    let constraints = |n: &[String]| n.iter().filter(|n| is_constraint(n)).cloned().collect::<Vec<_>>();
    let (ka, kb) = (constraints(&na), constraints(&nb));
    for k in &ka {
        if !kb.contains(k) {
            list.push(format!("table `{table}`: constraint `{k}` missing"));
        }
    }
    for k in &kb {
        if !ka.contains(k) {
            list.push(format!("table `{table}`: constraint `{k}` left behind"));
        }
    }
    if list.is_empty() {
        // Same columns and constraints, but, say, one of them twice.
        return None;
    }
    Some(Changes::Listed(list))
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
mod tests;
