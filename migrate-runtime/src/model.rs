//! The schema model: what a database's tables, columns, indexes, foreign
//! keys, CHECK constraints, views and triggers are, read from a live SQLite
//! database, compared, and fingerprinted.
//!
//! Drift detection uses it three ways: `cargo migrate diff` compares a live
//! database with the replay of its applied migrations, the runtime compares
//! a database's [`fingerprint`](Model::fingerprint) at start-up with the one
//! the build stored for its version, and `cargo migrate schema` prints it.
//!
//! Two databases built by the same statements give equal models: names of
//! tables and columns compare without letter case (as SQLite does), and SQL
//! (views, triggers, CHECK constraints, partial-index conditions, defaults)
//! is compared by its tokens, not its spacing or keyword case. SQLite's own
//! tables, FTS and other virtual tables' shadow tables, the tracking table
//! and the tables matched by the ignore patterns are left out.
//!
//! What SQLite reports through its pragmas (`pragma_table_list`,
//! `pragma_table_xinfo`, `pragma_index_list`, `pragma_index_xinfo`,
//! `pragma_foreign_key_list`; <https://sqlite.org/pragma.html>) is read from
//! them; what it keeps only in the `CREATE` statement (column collations,
//! CHECK constraints, `DEFERRABLE`, index expressions and `WHERE`) is read
//! from `sqlite_schema.sql` with a small tokenizer.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A database's schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Model {
    /// The tables, by lower-cased name.
    pub tables: BTreeMap<String, Table>,
    /// The views, by lower-cased name.
    pub views: BTreeMap<String, View>,
    /// The triggers, by lower-cased name.
    pub triggers: BTreeMap<String, Trigger>,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Table {
    /// Its name as created.
    pub name: String,
    /// `STRICT`.
    pub strict: bool,
    /// `WITHOUT ROWID`.
    pub without_rowid: bool,
    /// A virtual table (`CREATE VIRTUAL TABLE`): the module and arguments
    /// are in `sql`.
    pub virtual_sql: Option<String>,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
    /// Its indexes (also those SQLite makes for `UNIQUE` and `PRIMARY KEY`
    /// constraints), by lower-cased name; automatic ones are named after
    /// their columns, not `sqlite_autoindex_…`, so that a rebuild that
    /// renumbers them is not a difference.
    pub indexes: BTreeMap<String, Index>,
    /// Its foreign keys, sorted.
    pub foreign_keys: Vec<ForeignKey>,
    /// Its CHECK constraints (column and table ones), normalized and sorted.
    pub checks: Vec<String>,
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Column {
    /// Its name as declared.
    pub name: String,
    /// The declared type as written (`TEXT`, `VARCHAR(20)`, or empty).
    pub decl_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// The default, normalized (`None` when it has none).
    pub default: Option<String>,
    /// Position in the primary key, 1-based (0: not part of it).
    pub primary_key: u32,
    /// The collation, when not the default `BINARY`.
    pub collation: Option<String>,
    /// A generated column: `VIRTUAL` or `STORED`.
    pub generated: Option<Generated>,
    /// A hidden column of a virtual table.
    pub hidden: bool,
}

/// How a generated column is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    /// Computed when read.
    Virtual,
    /// Computed when written, and stored.
    Stored,
}

/// An index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Index {
    /// Its name as created (for automatic ones, `sqlite_autoindex_…`).
    pub name: String,
    /// `UNIQUE`.
    pub unique: bool,
    /// How it was made: `c` (`CREATE INDEX`), `u` (a `UNIQUE` constraint),
    /// `pk` (a `PRIMARY KEY` constraint).
    pub origin: String,
    /// Its key columns in order.
    pub columns: Vec<IndexColumn>,
    /// The `WHERE` of a partial index, normalized.
    pub partial: Option<String>,
}

/// One key column of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexColumn {
    /// The column's name, or the normalized expression for an expression
    /// index.
    pub column: String,
    /// Whether it is an expression rather than a column.
    pub expression: bool,
    /// `DESC`.
    pub descending: bool,
    /// The collation, when not `BINARY`.
    pub collation: Option<String>,
}

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct ForeignKey {
    /// The child columns.
    pub columns: Vec<String>,
    /// The parent table.
    pub table: String,
    /// The parent columns (empty: the parent's primary key).
    pub to: Vec<String>,
    /// `ON DELETE` action (`NO ACTION` by default).
    pub on_delete: String,
    /// `ON UPDATE` action (`NO ACTION` by default).
    pub on_update: String,
    /// `DEFERRABLE INITIALLY DEFERRED`.
    pub deferred: bool,
}

/// A view.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct View {
    /// Its name as created.
    pub name: String,
    /// Its `CREATE VIEW` statement, normalized.
    pub sql: String,
}

/// A trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trigger {
    /// Its name as created.
    pub name: String,
    /// The table (or view) it is on.
    pub table: String,
    /// Its `CREATE TRIGGER` statement, normalized.
    pub sql: String,
}

/// What to leave out when reading a model.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    tracking_table: String,
    ignore: Vec<String>,
}

impl Filter {
    /// Leaves out `tracking_table` (and SQLite's own tables, and shadow
    /// tables of virtual tables).
    #[must_use]
    pub fn new(tracking_table: &str) -> Self {
        Self {
            tracking_table: tracking_table.to_owned(),
            ignore: Vec::new(),
        }
    }

    /// Also leaves out the tables, views and triggers whose names match one
    /// of `patterns` (`*` any run of characters, `?` one; letter case
    /// ignored), and the indexes and triggers of such tables.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSet`] naming a pattern that is empty or holds
    /// characters no SQLite name pattern needs (`[`, `]`, `/`).
    pub fn ignore<S: AsRef<str>>(mut self, patterns: &[S]) -> Result<Self> {
        for p in patterns {
            let p = p.as_ref();
            if p.trim().is_empty() || p.contains(['[', ']', '/']) {
                return Err(Error::InvalidSet {
                    message: format!(
                        "ignore pattern `{p}` is not valid: use a table name with `*` for any characters and `?` for one, such as \"fts_*\""
                    ),
                });
            }
            self.ignore.push(p.to_ascii_lowercase());
        }
        Ok(self)
    }

    /// Whether `name` is left out.
    pub fn excludes(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        lower.starts_with("sqlite_")
            || lower == self.tracking_table.to_ascii_lowercase()
            || self.ignore.iter().any(|p| glob(p.as_bytes(), lower.as_bytes()))
    }
}

/// `*` and `?` matching.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// A fingerprint of `conn`'s schema: a SHA-256, as 64 hex digits, of the
/// normalized `CREATE` statements in `sqlite_schema` (without what `filter`
/// leaves out; shadow tables are kept, as they follow from their virtual
/// table). One query, however many tables: cheap enough for every
/// start-up. Databases built by the same statements have the same
/// fingerprint; a different fingerprint is not always a difference in the
/// [`Model`] (a table rebuilt with another spelling of the same columns),
/// so compare the models before calling it drift.
///
/// # Errors
///
/// When the schema cannot be read.
pub fn fingerprint(conn: &Connection, filter: &Filter) -> Result<String> {
    let mut stmt = conn
        .prepare_cached("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name")
        .map_err(db_err("reading the schema"))?;
    let mut rows = stmt.query([]).map_err(db_err("reading the schema"))?;
    let mut hash = Sha256::new();
    while let Some(row) = rows.next().map_err(db_err("reading the schema"))? {
        let get = |i| row.get_ref(i).ok().and_then(|v| v.as_str().ok()).unwrap_or("");
        let (kind, name, table, sql) = (get(0), get(1), get(2), get(3));
        if filter.excludes(name) || filter.excludes(table) {
            continue;
        }
        hash.update(kind.as_bytes());
        hash.update([0]);
        hash.update(name.to_ascii_lowercase().as_bytes());
        hash.update([0]);
        hash.update(normalize(sql).as_bytes());
        hash.update([0]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn db_err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::db(what)
}

impl Model {
    /// Reads the schema of `conn`'s main database.
    ///
    /// # Errors
    ///
    /// When the schema cannot be read (not an SQLite database, I/O).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::model::{Filter, Model};
    /// let conn = migrate_runtime::rusqlite::Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);")?;
    /// let model = Model::read(&conn, &Filter::new("_migrations"))?;
    /// assert_eq!(model.tables["users"].columns[1].name, "email");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(conn: &Connection, filter: &Filter) -> Result<Self> {
        let mut model = Self::default();
        let mut objects = conn
            .prepare(
                "SELECT s.type, s.name, s.tbl_name, s.sql, coalesce(l.type, ''), coalesce(l.strict, 0), coalesce(l.wr, 0) \
                 FROM sqlite_schema AS s LEFT JOIN pragma_table_list AS l ON l.schema = 'main' AND l.name = s.name \
                 ORDER BY s.type, s.name",
            )
            .map_err(db_err("reading the schema"))?;
        type Row = (String, String, String, Option<String>, String, bool, bool);
        let rows: Vec<Row> = objects
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(db_err("reading the schema"))?;
        for (kind, name, table, sql, list_type, strict, without_rowid) in rows {
            if filter.excludes(&name) || filter.excludes(&table) || list_type == "shadow" {
                continue;
            }
            let key = name.to_ascii_lowercase();
            let sql = sql.unwrap_or_default();
            match kind.as_str() {
                "table" => {
                    let t = read_table(conn, &name, &sql, strict, without_rowid, list_type == "virtual")?;
                    model.tables.insert(key, t);
                }
                "view" => {
                    model.views.insert(
                        key,
                        View {
                            name,
                            sql: normalize(&sql),
                        },
                    );
                }
                "trigger" => {
                    model.triggers.insert(
                        key,
                        Trigger {
                            name,
                            table,
                            sql: normalize(&sql),
                        },
                    );
                }
                _ => {} // indexes are read with their tables
            }
        }
        Ok(model)
    }

    /// A canonical text of the model: one line per fact, sorted, with names
    /// lower-cased. Stable across versions of this crate (fingerprints are
    /// computed at build time and compared at run time).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (key, t) in &self.tables {
            out.push_str(&format!(
                "table {key} strict={} without_rowid={} virtual={}\n",
                t.strict,
                t.without_rowid,
                t.virtual_sql.as_deref().unwrap_or("-")
            ));
            for (i, c) in t.columns.iter().enumerate() {
                out.push_str(&format!("column {key} {i} {}\n", column_facts(c)));
            }
            for (name, ix) in &t.indexes {
                out.push_str(&format!("index {key} {name} {}\n", index_facts(ix)));
            }
            for fk in &t.foreign_keys {
                out.push_str(&format!("foreign_key {key} {}\n", fk_facts(fk)));
            }
            for check in &t.checks {
                out.push_str(&format!("check {key} {check}\n"));
            }
        }
        for (key, v) in &self.views {
            out.push_str(&format!("view {key} {}\n", v.sql));
        }
        for (key, t) in &self.triggers {
            out.push_str(&format!("trigger {key} {} {}\n", t.table.to_ascii_lowercase(), t.sql));
        }
        out
    }

    /// How `actual` differs from `self` (the expected schema), grouped by
    /// table; empty when they are the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::model::{Filter, Model};
    /// use migrate_runtime::rusqlite::Connection;
    /// let conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE recruits (id INTEGER PRIMARY KEY, chatname TEXT);")?;
    /// let expected = Model::read(&conn, &Filter::new("_migrations"))?;
    /// conn.execute_batch("ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;")?;
    /// let actual = Model::read(&conn, &Filter::new("_migrations"))?;
    /// let diff = expected.diff(&actual);
    /// assert_eq!(diff[0].to_string(), "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn diff(&self, actual: &Self) -> Vec<Difference> {
        let mut out = Vec::new();
        for (key, t) in &self.tables {
            match actual.tables.get(key) {
                None => out.push(Difference::new(Object::Table, None, &t.name, Change::Removed)),
                Some(a) => diff_table(t, a, &mut out),
            }
        }
        for (key, a) in &actual.tables {
            if !self.tables.contains_key(key) {
                out.push(Difference::new(
                    Object::Table,
                    None,
                    &a.name,
                    Change::Added(format!("{} columns", a.columns.len())),
                ));
            }
        }
        diff_named(
            &self.views,
            &actual.views,
            |v| (None, v.name.clone(), v.sql.clone()),
            Object::View,
            &mut out,
        );
        diff_named(
            &self.triggers,
            &actual.triggers,
            |t| (Some(t.table.clone()), t.name.clone(), t.sql.clone()),
            Object::Trigger,
            &mut out,
        );
        out
    }
}

fn diff_named<T>(
    expected: &BTreeMap<String, T>,
    actual: &BTreeMap<String, T>,
    facts: impl Fn(&T) -> (Option<String>, String, String),
    object: Object,
    out: &mut Vec<Difference>,
) {
    for (key, e) in expected {
        let (table, name, sql) = facts(e);
        match actual.get(key).map(&facts) {
            None => out.push(Difference::new(object, table.as_deref(), &name, Change::Removed)),
            Some((_, _, now)) if now != sql => out.push(Difference::new(
                object,
                table.as_deref(),
                &name,
                Change::Changed(format!("was `{sql}`, is `{now}`")),
            )),
            Some(_) => {}
        }
    }
    for (key, a) in actual {
        if !expected.contains_key(key) {
            let (table, name, sql) = facts(a);
            out.push(Difference::new(object, table.as_deref(), &name, Change::Added(sql)));
        }
    }
}

fn diff_table(e: &Table, a: &Table, out: &mut Vec<Difference>) {
    let table = Some(e.name.as_str());
    let mut options = Vec::new();
    if e.strict != a.strict {
        options.push(format!("STRICT {} → {}", e.strict, a.strict));
    }
    if e.without_rowid != a.without_rowid {
        options.push(format!("WITHOUT ROWID {} → {}", e.without_rowid, a.without_rowid));
    }
    if e.virtual_sql != a.virtual_sql {
        options.push("virtual table definition".to_owned());
    }
    if !options.is_empty() {
        out.push(Difference::new(
            Object::Table,
            None,
            &e.name,
            Change::Changed(options.join(", ")),
        ));
    }
    let find = |cols: &[Column], name: &str| cols.iter().position(|c| c.name.eq_ignore_ascii_case(name));
    let removed: Vec<usize> = (0..e.columns.len())
        .filter(|&i| find(&a.columns, &e.columns[i].name).is_none())
        .collect();
    let added: Vec<usize> = (0..a.columns.len())
        .filter(|&i| find(&e.columns, &a.columns[i].name).is_none())
        .collect();
    let mut renamed_to = BTreeMap::new();
    for &r in &removed {
        // A likely rename: dropped and added at the same position, same type.
        if added.contains(&r) && same_but_name(&e.columns[r], &a.columns[r]) {
            renamed_to.insert(r, r);
        }
    }
    for (i, c) in e.columns.iter().enumerate() {
        if let Some(&j) = renamed_to.get(&i) {
            out.push(Difference::new(
                Object::Column,
                table,
                &c.name,
                Change::Renamed(a.columns[j].name.clone()),
            ));
        } else if removed.contains(&i) {
            out.push(Difference::new(Object::Column, table, &c.name, Change::Removed));
        } else if let Some(j) = find(&a.columns, &c.name) {
            let changes = column_changes(c, &a.columns[j]);
            if !changes.is_empty() {
                out.push(Difference::new(
                    Object::Column,
                    table,
                    &c.name,
                    Change::Changed(changes.join(", ")),
                ));
            }
        }
    }
    for &j in &added {
        if !renamed_to.values().any(|&k| k == j) {
            let c = &a.columns[j];
            out.push(Difference::new(
                Object::Column,
                table,
                &c.name,
                Change::Added(column_definition(c)),
            ));
        }
    }
    // Indexes: by name for created ones, by definition for automatic ones.
    for (key, ix) in &e.indexes {
        match a.indexes.get(key) {
            None => out.push(Difference::new(Object::Index, table, &ix.name, Change::Removed)),
            Some(now) if index_facts(now) != index_facts(ix) => out.push(Difference::new(
                Object::Index,
                table,
                &ix.name,
                Change::Changed(format!("was {}, is {}", index_facts(ix), index_facts(now))),
            )),
            Some(_) => {}
        }
    }
    for (key, ix) in &a.indexes {
        if !e.indexes.contains_key(key) {
            out.push(Difference::new(
                Object::Index,
                table,
                &ix.name,
                Change::Added(index_facts(ix)),
            ));
        }
    }
    for fk in &e.foreign_keys {
        if !a.foreign_keys.contains(fk) {
            out.push(Difference::new(
                Object::ForeignKey,
                table,
                &fk_facts(fk),
                Change::Removed,
            ));
        }
    }
    for fk in &a.foreign_keys {
        if !e.foreign_keys.contains(fk) {
            out.push(Difference::new(
                Object::ForeignKey,
                table,
                &fk_facts(fk),
                Change::Added(String::new()),
            ));
        }
    }
    for c in &e.checks {
        if !a.checks.contains(c) {
            out.push(Difference::new(Object::Check, table, c, Change::Removed));
        }
    }
    for c in &a.checks {
        if !e.checks.contains(c) {
            out.push(Difference::new(Object::Check, table, c, Change::Added(String::new())));
        }
    }
}

fn same_but_name(a: &Column, b: &Column) -> bool {
    a.decl_type.eq_ignore_ascii_case(&b.decl_type)
        && a.not_null == b.not_null
        && a.primary_key == b.primary_key
        && a.generated == b.generated
        && a.default == b.default
        && a.collation == b.collation
}

fn column_changes(e: &Column, a: &Column) -> Vec<String> {
    let mut out = Vec::new();
    if !e.decl_type.eq_ignore_ascii_case(&a.decl_type) {
        out.push(format!(
            "type {} → {}",
            shown_type(&e.decl_type),
            shown_type(&a.decl_type)
        ));
    }
    if e.not_null != a.not_null {
        out.push(
            if a.not_null {
                "NOT NULL added"
            } else {
                "NOT NULL removed"
            }
            .to_owned(),
        );
    }
    if e.default != a.default {
        out.push(format!(
            "default {} → {}",
            e.default.as_deref().unwrap_or("none"),
            a.default.as_deref().unwrap_or("none")
        ));
    }
    if e.primary_key != a.primary_key {
        out.push(format!("primary key position {} → {}", e.primary_key, a.primary_key));
    }
    if e.collation != a.collation {
        out.push(format!(
            "collation {} → {}",
            e.collation.as_deref().unwrap_or("BINARY"),
            a.collation.as_deref().unwrap_or("BINARY")
        ));
    }
    if e.generated != a.generated {
        out.push(format!("generated {:?} → {:?}", e.generated, a.generated));
    }
    if e.hidden != a.hidden {
        out.push(format!("hidden {} → {}", e.hidden, a.hidden));
    }
    out
}

fn shown_type(t: &str) -> &str {
    if t.is_empty() { "(none)" } else { t }
}

fn column_facts(c: &Column) -> String {
    format!("{} {}", c.name.to_ascii_lowercase(), column_definition(c))
}

/// `TEXT NOT NULL DEFAULT 'x'`: what a column is, without its name.
fn column_definition(c: &Column) -> String {
    let mut s = if c.decl_type.is_empty() {
        "(no type)".to_owned()
    } else {
        c.decl_type.to_ascii_uppercase()
    };
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.primary_key > 0 {
        s.push_str(&format!(" PRIMARY KEY({})", c.primary_key));
    }
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {}", coll.to_ascii_uppercase()));
    }
    match c.generated {
        Some(Generated::Virtual) => s.push_str(" GENERATED VIRTUAL"),
        Some(Generated::Stored) => s.push_str(" GENERATED STORED"),
        None => {}
    }
    if c.hidden {
        s.push_str(" HIDDEN");
    }
    s
}

fn index_facts(ix: &Index) -> String {
    let cols: Vec<String> = ix
        .columns
        .iter()
        .map(|c| {
            let mut s = c.column.to_ascii_lowercase();
            if let Some(coll) = &c.collation {
                s.push_str(&format!(" COLLATE {}", coll.to_ascii_uppercase()));
            }
            if c.descending {
                s.push_str(" DESC");
            }
            s
        })
        .collect();
    let mut s = format!("{}({})", if ix.unique { "UNIQUE " } else { "" }, cols.join(", "));
    if let Some(w) = &ix.partial {
        s.push_str(&format!(" WHERE {w}"));
    }
    s
}

fn fk_facts(fk: &ForeignKey) -> String {
    let mut s = format!(
        "({}) REFERENCES {}({})",
        fk.columns.join(", ").to_ascii_lowercase(),
        fk.table.to_ascii_lowercase(),
        fk.to.join(", ").to_ascii_lowercase()
    );
    if fk.on_delete != "NO ACTION" {
        s.push_str(&format!(" ON DELETE {}", fk.on_delete));
    }
    if fk.on_update != "NO ACTION" {
        s.push_str(&format!(" ON UPDATE {}", fk.on_update));
    }
    if fk.deferred {
        s.push_str(" DEFERRABLE INITIALLY DEFERRED");
    }
    s
}

/// What kind of object a [`Difference`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    /// A table.
    Table,
    /// A column.
    Column,
    /// An index.
    Index,
    /// A foreign key.
    ForeignKey,
    /// A CHECK constraint.
    Check,
    /// A view.
    View,
    /// A trigger.
    Trigger,
}

impl Object {
    /// The object's kind in words: `table`, `column`, `foreign key`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Column => "column",
            Self::Index => "index",
            Self::ForeignKey => "foreign key",
            Self::Check => "check",
            Self::View => "view",
            Self::Trigger => "trigger",
        }
    }
}

/// How an object differs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// In the actual schema only; what it is.
    Added(String),
    /// In the expected schema only.
    Removed,
    /// In both, differently: how.
    Changed(String),
    /// A column dropped and another added at the same position with the
    /// same type: likely renamed to this name.
    Renamed(String),
}

/// One difference between an expected and an actual schema.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Difference {
    /// What kind of object.
    pub object: Object,
    /// The table it belongs to (`None` for tables and views).
    pub table: Option<String>,
    /// Its name (for foreign keys and checks, their definition).
    pub name: String,
    /// How it differs.
    pub change: Change,
}

impl Difference {
    fn new(object: Object, table: Option<&str>, name: &str, change: Change) -> Self {
        Self {
            object,
            table: table.map(str::to_owned),
            name: name.to_owned(),
            change,
        }
    }
}

impl fmt::Display for Difference {
    /// `table recruits: column cohort added (cohort TEXT)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.table {
            write!(f, "table {t}: ")?;
        }
        let what = self.object.as_str();
        let name = &self.name;
        match &self.change {
            Change::Added(detail) if detail.is_empty() => write!(f, "{what} {name} added"),
            Change::Added(detail) => write!(f, "{what} {name} added ({detail})"),
            Change::Removed => write!(f, "{what} {name} removed"),
            Change::Changed(how) => write!(f, "{what} {name} changed: {how}"),
            Change::Renamed(to) => write!(f, "{what} {name} renamed to {to} (likely: same type and position)"),
        }
    }
}

fn read_table(
    conn: &Connection,
    name: &str,
    sql: &str,
    strict: bool,
    without_rowid: bool,
    is_virtual: bool,
) -> Result<Table> {
    let definition = parse_table(sql);
    let mut columns: Vec<Column> = conn
        .prepare_cached(
            "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
        )
        .and_then(|mut s| {
            s.query_map([name], |r| {
                let hidden: i64 = r.get(5)?;
                Ok(Column {
                    name: r.get(0)?,
                    decl_type: r.get(1)?,
                    not_null: r.get(2)?,
                    default: r.get::<_, Option<String>>(3)?.map(|d| normalize(&d)),
                    primary_key: r.get(4)?,
                    collation: None,
                    generated: match hidden {
                        2 => Some(Generated::Virtual),
                        3 => Some(Generated::Stored),
                        _ => None,
                    },
                    hidden: hidden == 1,
                })
            })?
            .collect()
        })
        .map_err(Error::db(format!("reading the columns of `{name}`")))?;
    for c in &mut columns {
        c.collation = definition
            .collations
            .iter()
            .find(|(col, _)| col.eq_ignore_ascii_case(&c.name))
            .map(|(_, coll)| coll.clone())
            .filter(|coll| !coll.eq_ignore_ascii_case("binary"));
    }
    let mut table = Table {
        name: name.to_owned(),
        strict,
        without_rowid,
        virtual_sql: is_virtual.then(|| normalize(sql)),
        columns,
        indexes: BTreeMap::new(),
        foreign_keys: Vec::new(),
        checks: definition.checks.clone(),
    };
    if is_virtual {
        return Ok(table);
    }
    read_indexes(conn, &mut table)?;
    read_foreign_keys(conn, &mut table, &definition)?;
    Ok(table)
}

fn read_indexes(conn: &Connection, table: &mut Table) -> Result<()> {
    let err = || Error::db(format!("reading the indexes of `{}`", table.name));
    let list: Vec<(String, bool, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT l.name, l.\"unique\", l.origin, s.sql FROM pragma_index_list(?1) AS l \
             LEFT JOIN sqlite_schema AS s ON s.type = 'index' AND s.name = l.name ORDER BY l.name",
        )
        .and_then(|mut s| {
            s.query_map([&table.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(err())?;
    for (name, unique, origin, sql) in list {
        let key_columns: Vec<(i64, Option<String>, bool, Option<String>)> = conn
            .prepare_cached("SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
            .and_then(|mut s| {
                s.query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(err())?;
        let parsed = sql.as_deref().map(parse_index).unwrap_or_default();
        let columns = key_columns
            .into_iter()
            .enumerate()
            .map(|(i, (cid, col, desc, coll))| {
                let expression = cid == -2;
                IndexColumn {
                    column: if expression {
                        parsed.expressions.get(i).cloned().unwrap_or_default()
                    } else {
                        col.unwrap_or_default()
                    },
                    expression,
                    descending: desc,
                    collation: coll.filter(|c| !c.eq_ignore_ascii_case("binary")),
                }
            })
            .collect::<Vec<_>>();
        let index = Index {
            name: name.clone(),
            unique,
            origin: origin.clone(),
            columns,
            partial: parsed.partial,
        };
        // Automatic indexes get numbered names that a rebuild changes.
        let key = if origin == "c" {
            name.to_ascii_lowercase()
        } else {
            format!("({origin} {})", index_facts(&index))
        };
        table.indexes.insert(key, index);
    }
    Ok(())
}

fn read_foreign_keys(conn: &Connection, table: &mut Table, definition: &Definition) -> Result<()> {
    type Row = (i64, String, String, Option<String>, String, String);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )
        .and_then(|mut s| {
            s.query_map([&table.name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect()
        })
        .map_err(Error::db(format!("reading the foreign keys of `{}`", table.name)))?;
    let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        let fk = by_id.entry(id).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table: parent,
            to: Vec::new(),
            on_delete,
            on_update,
            deferred: false,
        });
        fk.columns.push(from);
        if let Some(to) = to {
            fk.to.push(to);
        }
    }
    let mut keys: Vec<ForeignKey> = by_id.into_values().collect();
    for fk in &mut keys {
        fk.deferred = definition.deferred.iter().any(|(cols, parent)| {
            parent.eq_ignore_ascii_case(&fk.table)
                && cols.len() == fk.columns.len()
                && cols.iter().zip(&fk.columns).all(|(a, b)| a.eq_ignore_ascii_case(b))
        });
    }
    keys.sort();
    table.foreign_keys = keys;
    Ok(())
}

// ---- a small tokenizer for what only the CREATE statements say ----

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A keyword or unquoted name, lower-cased.
    Word(String),
    /// A quoted name, its content lower-cased.
    Quoted(String),
    /// A string literal, as written (quotes included).
    Str(String),
    /// Anything else: numbers, operators, parentheses, commas.
    Punct(String),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Self::Word(w) => w.clone(),
            Self::Quoted(q) => format!("\"{}\"", q.replace('"', "\"\"")),
            Self::Str(s) | Self::Punct(s) => s.clone(),
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self, Self::Word(x) if x == w)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self, Self::Punct(x) if x == p)
    }

    /// A name, whether quoted or not.
    fn name(&self) -> Option<&str> {
        match self {
            Self::Word(w) | Self::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

fn tokens(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'\x0b' {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if matches!(c, b'\'' | b'"' | b'`' | b'[') {
            let close = if c == b'[' { b']' } else { c };
            let from = i;
            i += 1;
            while i < b.len() {
                if b[i] == close {
                    if close != b']' && b.get(i + 1) == Some(&close) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            let end = (i + 1).min(b.len());
            let inner = &sql[from + 1..i.min(b.len())];
            i = end;
            if c == b'\'' {
                out.push(Tok::Str(sql[from..end].to_owned()));
            } else {
                let content = match c {
                    b'"' => inner.replace("\"\"", "\""),
                    b'`' => inner.replace("``", "`"),
                    _ => inner.to_owned(),
                };
                out.push(Tok::Quoted(content.to_lowercase()));
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Tok::Word(sql[from..i].to_lowercase()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Punct(sql[from..i].to_ascii_lowercase()));
        } else {
            let two = sql.get(i..i + 2).unwrap_or("");
            let len = if matches!(two, "<=" | ">=" | "<>" | "!=" | "==" | "||" | "<<" | ">>" | "->") {
                2
            } else {
                sql[i..].chars().next().map_or(1, char::len_utf8)
            };
            out.push(Tok::Punct(sql[i..i + len].to_owned()));
            i += len;
        }
    }
    out
}

fn join(toks: &[Tok]) -> String {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        let text = t.text();
        let tight = i == 0
            || t.is(")")
            || t.is(",")
            || t.is(";")
            || t.is(".")
            || t.is("(")
            || toks[i - 1].is("(")
            || toks[i - 1].is(".");
        if !tight {
            s.push(' ');
        }
        s.push_str(&text);
    }
    s
}

/// `sql` with its spacing, comments, keyword case and name quoting made
/// uniform, so two spellings of one statement compare equal. String
/// literals are kept as written.
pub fn normalize(sql: &str) -> String {
    let mut toks = tokens(sql);
    if toks.last().is_some_and(|t| t.is(";")) {
        toks.pop();
    }
    // Quoting a plain name does not change it.
    for t in &mut toks {
        if let Tok::Quoted(q) = t
            && !q.is_empty()
            && q.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            && !q.as_bytes()[0].is_ascii_digit()
        {
            *t = Tok::Word(q.clone());
        }
    }
    join(&toks)
}

/// Splits `toks` at top-level commas.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (i, t) in toks.iter().enumerate() {
        if t.is("(") {
            depth += 1;
        } else if t.is(")") {
            depth = depth.saturating_sub(1);
        } else if t.is(",") && depth == 0 {
            parts.push(&toks[from..i]);
            from = i + 1;
        }
    }
    parts.push(&toks[from..]);
    parts
}

/// The index of the `)` that closes the `(` at `open`.
fn closing(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is("(") {
            depth += 1;
        } else if t.is(")") {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    toks.len()
}

/// What a `CREATE TABLE` says that the pragmas do not.
#[derive(Debug, Default)]
struct Definition {
    /// (column, collation).
    collations: Vec<(String, String)>,
    /// CHECK constraints, normalized, sorted.
    checks: Vec<String>,
    /// Deferred foreign keys: (child columns, parent table).
    deferred: Vec<(Vec<String>, String)>,
}

const CONSTRAINT_START: [&str; 5] = ["constraint", "primary", "unique", "check", "foreign"];

fn parse_table(sql: &str) -> Definition {
    let toks = tokens(sql);
    let mut def = Definition::default();
    let Some(open) = toks.iter().position(|t| t.is("(")) else {
        return def;
    };
    let body = &toks[open + 1..closing(&toks, open).min(toks.len())];
    for part in split_commas(body) {
        let Some(first) = part.first() else { continue };
        let is_column = !matches!(first, Tok::Word(w) if CONSTRAINT_START.contains(&w.as_str()));
        let column = if is_column {
            first.name().map(str::to_owned)
        } else {
            None
        };
        let mut i = 0;
        while i < part.len() {
            let t = &part[i];
            if t.is_word("collate")
                && let (Some(col), Some(name)) = (&column, part.get(i + 1).and_then(Tok::name))
            {
                def.collations.push((col.clone(), name.to_owned()));
            }
            if t.is_word("check") && part.get(i + 1).is_some_and(|t| t.is("(")) {
                let end = closing(part, i + 1).min(part.len().saturating_sub(1));
                def.checks.push(normalize_toks(&part[i + 2..end]));
                i = end;
            }
            if t.is_word("references")
                && let Some(parent) = part.get(i + 1).and_then(Tok::name)
            {
                let rest = &part[i + 2..];
                let deferred = rest
                    .windows(3)
                    .any(|w| w[0].is_word("deferrable") && w[1].is_word("initially") && w[2].is_word("deferred"));
                let not_deferrable = rest
                    .windows(2)
                    .any(|w| w[0].is_word("not") && w[1].is_word("deferrable"));
                if deferred && !not_deferrable {
                    let cols = if let Some(col) = &column {
                        vec![col.clone()]
                    } else {
                        // FOREIGN KEY (a, b) REFERENCES …
                        part.iter()
                            .position(|t| t.is("("))
                            .map(|o| {
                                part[o + 1..closing(part, o).min(part.len())]
                                    .iter()
                                    .filter_map(|t| t.name().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    def.deferred.push((cols, parent.to_owned()));
                }
            }
            i += 1;
        }
    }
    def.checks.sort();
    def
}

fn normalize_toks(toks: &[Tok]) -> String {
    let text: Vec<String> = toks.iter().map(Tok::text).collect();
    normalize(&text.join(" "))
}

/// What a `CREATE INDEX` says that the pragmas do not.
#[derive(Debug, Default)]
struct IndexDefinition {
    /// Each key's text, normalized, without `ASC`/`DESC`/`COLLATE`.
    expressions: Vec<String>,
    /// The `WHERE` condition, normalized.
    partial: Option<String>,
}

fn parse_index(sql: &str) -> IndexDefinition {
    let toks = tokens(sql);
    let Some(on) = toks.iter().position(|t| t.is_word("on")) else {
        return IndexDefinition::default();
    };
    let Some(open) = toks.iter().skip(on).position(|t| t.is("(")).map(|p| p + on) else {
        return IndexDefinition::default();
    };
    let close = closing(&toks, open);
    let expressions = split_commas(&toks[open + 1..close.min(toks.len())])
        .into_iter()
        .map(|mut part| {
            while let Some((last, rest)) = part.split_last() {
                if last.is_word("asc") || last.is_word("desc") {
                    part = rest;
                } else if rest.last().is_some_and(|t| t.is_word("collate")) {
                    part = &rest[..rest.len() - 1];
                } else {
                    break;
                }
            }
            normalize_toks(part)
        })
        .collect();
    let partial = toks
        .get(close + 1)
        .filter(|t| t.is_word("where"))
        .map(|_| normalize_toks(&toks[close + 2..]));
    IndexDefinition { expressions, partial }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sql: &str) -> Model {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        Model::read(&conn, &Filter::new("_migrations")).unwrap()
    }

    fn diff(before: &str, change: &str) -> Vec<String> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(before).unwrap();
        let filter = Filter::new("_migrations");
        let expected = Model::read(&conn, &filter).unwrap();
        conn.execute_batch(change).unwrap();
        let actual = Model::read(&conn, &filter).unwrap();
        expected.diff(&actual).iter().map(ToString::to_string).collect()
    }

    const RECRUITS: &str = "CREATE TABLE recruits (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL COLLATE NOCASE,\n  chatname TEXT,\n  id_number TEXT UNIQUE,\n  CHECK (length(name) > 0)\n);\n\
        CREATE INDEX recruits_name ON recruits (name DESC) WHERE name <> '';\n\
        CREATE TABLE notes (id INTEGER PRIMARY KEY, recruit INTEGER REFERENCES recruits (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, body TEXT);\n\
        CREATE VIEW named AS SELECT id, name FROM recruits;\n\
        CREATE TRIGGER notes_touch AFTER INSERT ON notes BEGIN SELECT 1; END;\n";

    #[test]
    fn reads_what_the_pragmas_and_the_sql_say() {
        let m = model(RECRUITS);
        let r = &m.tables["recruits"];
        assert_eq!(r.columns.len(), 4);
        assert_eq!(r.columns[1].collation.as_deref(), Some("nocase"));
        assert!(r.columns[1].not_null);
        assert_eq!(r.columns[0].primary_key, 1);
        assert_eq!(r.checks, vec!["length(name) > 0"]);
        let ix = &r.indexes["recruits_name"];
        assert_eq!(ix.partial.as_deref(), Some("name <> ''"));
        assert!(ix.columns[0].descending);
        assert!(
            r.indexes
                .values()
                .any(|i| i.origin == "u" && i.columns[0].column == "id_number")
        );
        let fk = &m.tables["notes"].foreign_keys[0];
        assert_eq!(
            (fk.table.as_str(), fk.on_delete.as_str(), fk.deferred),
            ("recruits", "CASCADE", true)
        );
        assert_eq!(
            m.views["named"].sql,
            "create view named as select id, name from recruits"
        );
        assert_eq!(m.triggers["notes_touch"].table, "notes");
    }

    #[test]
    fn the_same_statements_spelled_differently_give_equal_models() {
        let a = model(RECRUITS);
        let b = model(
            &RECRUITS
                .replace("CREATE TABLE recruits (", "create   table \"recruits\"(")
                .replace("SELECT id, name", "select  id ,name")
                .replace("(name DESC)", "( \"name\"  desc )"),
        );
        assert_eq!(a, b);
        assert_eq!(a.canonical(), b.canonical());
        assert!(a.diff(&b).is_empty());
    }

    #[test]
    fn the_three_hand_changes_of_the_drift_story() {
        let got = diff(
            RECRUITS,
            "ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';\n\
             ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;\n\
             CREATE TABLE r2 (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, rocketchat_user TEXT, cohort TEXT DEFAULT 'C25 Data Eng', CHECK (length(name) > 0));\n\
             INSERT INTO r2 SELECT id, name, rocketchat_user, cohort FROM recruits;\n\
             DROP VIEW named; DROP TABLE recruits; ALTER TABLE r2 RENAME TO recruits;\n\
             CREATE VIEW named AS SELECT id, name FROM recruits;\n\
             CREATE INDEX recruits_name ON recruits (name DESC) WHERE name <> '';",
        );
        assert_eq!(
            got,
            vec![
                "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)",
                "table recruits: column id_number removed",
                "table recruits: column cohort added (TEXT DEFAULT 'C25 Data Eng')",
                "table recruits: index sqlite_autoindex_recruits_1 removed",
            ]
        );
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let got = diff(
            RECRUITS,
            "DROP INDEX recruits_name; CREATE TABLE extra (x); \
             CREATE TRIGGER t2 AFTER DELETE ON notes BEGIN SELECT 2; END; DROP VIEW named; \
             CREATE VIEW named AS SELECT id FROM recruits;",
        );
        assert_eq!(
            got,
            vec![
                "table recruits: index recruits_name removed",
                "table extra added (1 columns)",
                "view named changed: was `create view named as select id, name from recruits`, is `create view named as select id from recruits`",
                "table notes: trigger t2 added (create trigger t2 after delete on notes begin select 2; end)",
            ]
        );
    }

    #[test]
    fn type_changes_and_constraints() {
        let got = diff(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, p INTEGER);",
            "CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0 CHECK (v >= 0), p INTEGER REFERENCES a (id));\n\
             DROP TABLE a; ALTER TABLE b RENAME TO a;",
        );
        assert_eq!(
            got,
            vec![
                "table a: column v changed: type TEXT → INTEGER, NOT NULL added, default none → 0",
                "table a: foreign key (p) REFERENCES a(id) added",
                "table a: check v >= 0 added",
            ]
        );
    }

    #[test]
    fn the_tracking_table_internal_shadow_and_ignored_tables_are_left_out() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE _migrations (version INTEGER PRIMARY KEY);\
             CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);\
             CREATE VIRTUAL TABLE fts_docs USING fts5(body);\
             CREATE TABLE other_tool_history (x);",
        )
        .unwrap();
        let filter = Filter::new("_migrations").ignore(&["other_*"]).unwrap();
        let m = Model::read(&conn, &filter).unwrap();
        let names: Vec<&str> = m.tables.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["fts_docs", "t"]);
        assert!(m.tables["fts_docs"].virtual_sql.is_some());
        let e = Filter::new("_migrations").ignore(&["[a]"]).unwrap_err();
        assert!(e.to_string().contains("ignore pattern `[a]` is not valid"), "{e}");
    }

    #[test]
    fn strict_without_rowid_generated_and_expression_indexes() {
        let m = model(
            "CREATE TABLE k (a TEXT PRIMARY KEY, b INTEGER, c INTEGER GENERATED ALWAYS AS (b * 2) STORED) STRICT, WITHOUT ROWID;\
             CREATE UNIQUE INDEX k_lower ON k (lower(a) COLLATE NOCASE, b);",
        );
        let k = &m.tables["k"];
        assert!(k.strict && k.without_rowid);
        assert_eq!(k.columns[2].generated, Some(Generated::Stored));
        let ix = &k.indexes["k_lower"];
        assert!(ix.unique && ix.columns[0].expression);
        assert_eq!(ix.columns[0].column, "lower(a)");
        assert_eq!(ix.columns[0].collation.as_deref(), Some("NOCASE"));
    }

    #[test]
    fn fingerprints_follow_the_statements() {
        let fp = |sql: &str| {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(sql).unwrap();
            fingerprint(&conn, &Filter::new("_migrations")).unwrap()
        };
        let a = fp(RECRUITS);
        assert_eq!(a.len(), 64);
        assert_eq!(a, fp(RECRUITS), "same statements, same fingerprint");
        assert_eq!(
            a,
            fp(&format!(
                "{RECRUITS} CREATE TABLE _migrations (version INTEGER PRIMARY KEY);"
            ))
        );
        assert_ne!(a, fp(&format!("{RECRUITS} ALTER TABLE notes ADD COLUMN cohort TEXT;")));
    }

    #[test]
    fn glob_patterns() {
        assert!(glob(b"fts_*", b"fts_docs_data"));
        assert!(glob(b"t?", b"t1"));
        assert!(!glob(b"t?", b"t12"));
        assert!(glob(b"*", b""));
    }
}
