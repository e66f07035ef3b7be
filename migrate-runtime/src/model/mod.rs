//! The schema model: what a database's tables, columns, indexes, foreign
//! keys, CHECK constraints, views and triggers are, read from a live SQLite
//! database, compared, and fingerprinted.
//!
//! Drift detection uses it three ways: `cargo migrate diff` compares a live
//! database with the replay of its applied migrations, the runtime compares
//! a database's [`fingerprint`] at start-up with the one
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

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;
#[cfg(feature = "rusqlite")]
use sha2::{Digest, Sha256};

use crate::{Error, Result};

mod diff;
mod parse;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
mod pg_render;
#[cfg(feature = "rusqlite")]
mod read;
mod record;
mod render;
mod statements;
#[cfg(all(test, feature = "rusqlite"))]
mod tests;

pub use diff::{Change, Difference, Object};
use diff::{column_facts, fk_facts, index_facts};
#[doc(hidden)]
pub use parse::closing_quote;
pub use parse::normalize;
#[cfg(feature = "rusqlite")]
use parse::{Definition as Parsed, parse_index, parse_table};
#[cfg(feature = "postgres")]
pub use pg_render::quote_postgres;
#[cfg(feature = "rusqlite")]
use read::read_table;
#[cfg(feature = "rusqlite")]
pub use render::schema_sql;
pub use statements::{ChangedStatement, Dialect, first_changed_statement};

/// A database's schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Model {
    /// The tables, by lower-cased name.
    pub tables: BTreeMap<String, Table>,
    /// The views, by lower-cased name.
    pub views: BTreeMap<String, View>,
    /// The triggers, by lower-cased name.
    pub triggers: BTreeMap<String, Trigger>,
    /// PostgreSQL: the functions and procedures, by lower-cased
    /// `name(argument types)`; their `CREATE` statement as the server
    /// writes it (`pg_get_functiondef`). Empty on SQLite.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub functions: BTreeMap<String, Definition>,
    /// PostgreSQL: enum and domain types, by lower-cased name. Empty on
    /// SQLite.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub types: BTreeMap<String, Definition>,
    /// PostgreSQL: sequences that no column owns (those of `serial` and
    /// identity columns follow from their column), by lower-cased name.
    /// Empty on SQLite.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub sequences: BTreeMap<String, Definition>,
    /// PostgreSQL: collations made by `CREATE COLLATION`, by lower-cased
    /// name (their provider, locale and determinism). Empty on SQLite.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub collations: BTreeMap<String, Definition>,
    /// PostgreSQL: what statements of their own set on the objects above:
    /// comments (`COMMENT ON`), row-level security (`ALTER TABLE … ENABLE`
    /// / `FORCE ROW LEVEL SECURITY`) and its policies (`CREATE POLICY`),
    /// partitions' bounds (`ALTER TABLE … ATTACH PARTITION … FOR VALUES`),
    /// by lower-cased key (`comment on column recruits.name`,
    /// `policy own_rows on recruits`, `partition of events on
    /// events_2024`). Empty on SQLite.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub settings: BTreeMap<String, Setting>,
}

/// A property of a schema object that a statement of its own sets
/// (PostgreSQL's comments, row-level security and policies): the
/// statement that sets it and the one that takes it away.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Setting {
    /// What kind: [`Object::Comment`], [`Object::Policy`],
    /// [`Object::RowSecurity`] or [`Object::Partition`].
    pub object: Object,
    /// The table it belongs to, when it belongs to one.
    pub table: Option<String>,
    /// What it is on, in words: `on column recruits.name`, `own_rows`,
    /// `enabled`.
    pub name: String,
    /// The statement that sets it, as the server prints its parts.
    pub sql: String,
    /// The statement that takes it away (`COMMENT ON … IS NULL`, `DROP
    /// POLICY …`, `ALTER TABLE … DISABLE ROW LEVEL SECURITY`).
    pub undo: String,
}

/// A schema object known by its name and the statement that creates it
/// (PostgreSQL's functions, types and sequences).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Definition {
    /// Its name as created (for a function, with its argument types).
    pub name: String,
    /// Its `CREATE` statement, as the server writes it.
    pub sql: String,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// PostgreSQL: a partitioned table's `PARTITION BY …` (its partitions
    /// are tables of their own, each with a [`Setting`] that attaches it).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub partition_by: Option<String>,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
    /// Its indexes (also those SQLite makes for `UNIQUE` and `PRIMARY KEY`
    /// constraints), by lower-cased name; automatic ones are named after
    /// their columns, not `sqlite_autoindex_…`, so that a rebuild that
    /// renumbers them is not a difference.
    pub indexes: BTreeMap<String, Index>,
    /// Its foreign keys, sorted.
    pub foreign_keys: Vec<ForeignKey>,
    /// Its CHECK constraints (column and table ones), normalized and sorted
    /// (on PostgreSQL, as `CONSTRAINT name CHECK (…)`, and `EXCLUDE`
    /// constraints too).
    pub checks: Vec<String>,
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// PostgreSQL: an identity column, `ALWAYS` or `BY DEFAULT`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub identity: Option<String>,
}

/// How a generated column is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum Generated {
    /// Computed when read.
    Virtual,
    /// Computed when written, and stored.
    Stored,
}

/// An index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// PostgreSQL: the index method when not `btree` (`gin`, `gist`, …).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub using: Option<String>,
    /// PostgreSQL: the non-key columns of `INCLUDE (…)`, in order.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub include: Vec<String>,
}

/// One key column of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// PostgreSQL: the constraint's name (SQLite keeps none).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub name: Option<String>,
}

/// A view.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct View {
    /// Its name as created.
    pub name: String,
    /// Its `CREATE VIEW` statement, normalized.
    pub sql: String,
}

/// A trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

    #[cfg(feature = "rusqlite")]
    /// [`excludes`](Self::excludes) for a name as SQLite's bytes, without
    /// allocating unless there are ignore patterns (then `text` makes it a
    /// string).
    fn excludes_bytes(&self, name: &[u8], text: impl Fn(&[u8]) -> String) -> bool {
        name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"sqlite_"))
            || name.eq_ignore_ascii_case(self.tracking_table.as_bytes())
            || crate::backfill::is_progress_table(name, &self.tracking_table)
            || (!self.ignore.is_empty() && self.excludes(&text(name)))
    }

    /// Whether `name` is left out.
    pub fn excludes(&self, name: &str) -> bool {
        // No allocation unless there are patterns: the start-up drift
        // check asks this of every object in the schema.
        name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
            || name.eq_ignore_ascii_case(&self.tracking_table)
            || crate::backfill::is_progress_table(name.as_bytes(), &self.tracking_table)
            || (!self.ignore.is_empty() && {
                let lower = name.to_ascii_lowercase();
                self.ignore.iter().any(|p| glob(p.as_bytes(), lower.as_bytes()))
            })
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

#[cfg(feature = "rusqlite")]
/// A fingerprint of `conn`'s schema, as 64 hex digits: the `CREATE`
/// statements in `sqlite_schema` as SQLite keeps them (without what
/// `filter` leaves out; shadow tables are kept, as they follow from their
/// virtual table), each hashed on its own, and a SHA-256 of those hashes
/// in sorted order, so the order of the rows does not count (a `VACUUM`,
/// an index dropped and made again). One query, no sorting in SQLite, no
/// allocation per row: cheap enough for every start-up (BENCHMARKS.md).
///
/// Databases built by the same statements have the same fingerprint. A
/// different fingerprint is not always a difference in the [`Model`] (a
/// table rebuilt with another spelling of the same columns), so compare
/// the models before calling it drift, as the runtime does.
///
/// # Errors
///
/// When the schema cannot be read.
pub fn fingerprint(conn: &Connection, filter: &Filter) -> Result<String> {
    // The statement says what the object is and its name (SQLite rewrites
    // it on a rename), so it alone is hashed. Without ignore patterns the
    // tracking table (and what is on it) is left out by the query, and
    // only names are looked at here; with them, each name is matched.
    let with_patterns = !filter.ignore.is_empty();
    let query = if with_patterns {
        "SELECT name, sql, tbl_name FROM sqlite_schema WHERE sql IS NOT NULL"
    } else {
        "SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND tbl_name <> ?1 COLLATE NOCASE \
         AND tbl_name <> ?1 || '_backfill' COLLATE NOCASE"
    };
    let mut stmt = conn.prepare_cached(query).map_err(db_err("reading the schema"))?;
    let mut rows = if with_patterns {
        stmt.query([])
    } else {
        stmt.query([&filter.tracking_table])
    }
    .map_err(db_err("reading the schema"))?;
    let mut hashes: Vec<u64> = Vec::new();
    while let Some(row) = rows.next().map_err(db_err("reading the schema"))? {
        let get = |i| row.get_ref(i).ok().and_then(|v| v.as_bytes().ok()).unwrap_or_default();
        let name = get(0);
        let excluded = if with_patterns {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            filter.excludes_bytes(name, text) || filter.excludes_bytes(get(2), text)
        } else {
            // SQLite allows no index or trigger on its own tables.
            name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"sqlite_"))
        };
        if excluded {
            continue;
        }
        let mut h = RowHash::default();
        h.write(get(1));
        hashes.push(h.finish());
    }
    Ok(digest(hashes))
}

#[cfg(feature = "rusqlite")]
/// The fingerprint of row hashes: SHA-256 of them, sorted, as hex.
fn digest(mut hashes: Vec<u64>) -> String {
    hashes.sort_unstable();
    let mut sha = Sha256::new();
    for h in hashes {
        sha.update(h.to_le_bytes());
    }
    let mut hex = String::with_capacity(64);
    for b in sha.finalize() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

#[cfg(feature = "rusqlite")]
/// The rows of a schema, by rowid, kept by the build's replay between
/// migrations: [`FingerprintCache::fingerprint`] reads again only the rows
/// of the tables a migration touched (by rowid) and the rows added since
/// (rowids above the largest known: SQLite gives a new row the largest
/// rowid plus one, so a lower one is one a dropped, touched table freed),
/// instead of every row of `sqlite_schema` after every migration, which
/// made the replay quadratic in the number of migrations.
#[derive(Default)]
pub(crate) struct FingerprintCache {
    /// rowid → (`tbl_name` in ASCII lower case, the row's hash unless the
    /// fingerprint leaves it out).
    rows: BTreeMap<i64, (Vec<u8>, Option<u64>)>,
    filled: bool,
}

#[cfg(feature = "rusqlite")]
impl FingerprintCache {
    /// [`fingerprint`] of `conn`'s schema, reading only the rows of the
    /// tables in `touched` (ASCII lower case) and the new rows when the
    /// cache holds the rest, else (`touched` is `None`, or the first time)
    /// every row. The caller vouches that no row of another table changed
    /// since the last call, and that the rowids of `sqlite_schema` were not
    /// renumbered (`VACUUM`).
    pub(crate) fn fingerprint(
        &mut self,
        conn: &Connection,
        filter: &Filter,
        touched: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<String> {
        let entry = |row: &rusqlite::Row<'_>| {
            let get = |i| row.get_ref(i).ok().and_then(|v| v.as_bytes().ok()).unwrap_or_default();
            let (name, table) = (get(1), get(3));
            let sql = row.get_ref(2).ok().and_then(|v| v.as_bytes().ok());
            let hash = sql.filter(|_| !row_excluded(filter, name, table)).map(|sql| {
                let mut h = RowHash::default();
                h.write(sql);
                h.finish()
            });
            (table.to_ascii_lowercase(), hash)
        };
        let mut after = conn
            .prepare_cached("SELECT rowid, name, sql, tbl_name FROM sqlite_schema WHERE rowid > ?1")
            .map_err(db_err("reading the schema"))?;
        let from = match touched {
            Some(tables) if self.filled => {
                let again: Vec<i64> = self
                    .rows
                    .iter()
                    .filter(|(_, (t, _))| tables.iter().any(|n| n.as_bytes() == t.as_slice()))
                    .map(|(r, _)| *r)
                    .collect();
                let mut one = conn
                    .prepare_cached("SELECT rowid, name, sql, tbl_name FROM sqlite_schema WHERE rowid = ?1")
                    .map_err(db_err("reading the schema"))?;
                for rowid in again {
                    let mut rows = one.query([rowid]).map_err(db_err("reading the schema"))?;
                    match rows.next().map_err(db_err("reading the schema"))? {
                        Some(row) => {
                            self.rows.insert(rowid, entry(row));
                        }
                        None => {
                            self.rows.remove(&rowid);
                        }
                    }
                }
                self.rows.last_key_value().map_or(i64::MIN, |(r, _)| *r)
            }
            _ => {
                self.rows.clear();
                self.filled = true;
                i64::MIN
            }
        };
        let mut rows = after.query([from]).map_err(db_err("reading the schema"))?;
        while let Some(row) = rows.next().map_err(db_err("reading the schema"))? {
            let rowid: i64 = row.get(0).map_err(db_err("reading the schema"))?;
            self.rows.insert(rowid, entry(row));
        }
        let hex = digest(self.rows.values().filter_map(|(_, h)| *h).collect());
        #[cfg(debug_assertions)]
        {
            // Tests run in debug: every incremental fingerprint is checked
            // against reading the whole schema.
            let full = fingerprint(conn, filter)?;
            assert_eq!(
                hex, full,
                "incremental schema fingerprint differs (touched: {touched:?})"
            );
        }
        Ok(hex)
    }
}

#[cfg(feature = "rusqlite")]
/// Whether [`fingerprint`] leaves out the row of object `name` on table
/// `table`.
fn row_excluded(filter: &Filter, name: &[u8], table: &[u8]) -> bool {
    if filter.ignore.is_empty() {
        // SQLite allows no index or trigger on its own tables.
        table.eq_ignore_ascii_case(filter.tracking_table.as_bytes())
            || crate::backfill::is_progress_table(table, &filter.tracking_table)
            || name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"sqlite_"))
    } else {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        filter.excludes_bytes(name, text) || filter.excludes_bytes(table, text)
    }
}

#[cfg(feature = "rusqlite")]
/// A fast 64-bit hash of one row's fields, stable across platforms and
/// versions of Rust (the build computes fingerprints, the app compares
/// them): eight bytes at a time, multiply and rotate, each field's length
/// mixed in, and an avalanche at the end. Each step is a bijection of the
/// state, so two rows that differ in one place never hash alike. Not meant
/// to resist an adversary: it tells a hand-changed schema from the one the
/// migrations make.
#[derive(Default)]
struct RowHash(u64);

#[cfg(feature = "rusqlite")]
impl RowHash {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(Self::K);
    }

    fn write(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    /// splitmix64's finalizer.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(feature = "rusqlite")]
const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(feature = "rusqlite")]
fn db_err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::db(what)
}

#[cfg(feature = "rusqlite")]
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
                // `pragma_table_list` once, materialized: joined directly,
                // SQLite runs the pragma over every table for each row of
                // the schema, which grows with the square of the tables.
                "WITH l AS MATERIALIZED (SELECT name, type, strict, wr FROM pragma_table_list WHERE schema = 'main') \
                 SELECT s.type, s.name, s.tbl_name, s.sql, coalesce(l.type, ''), coalesce(l.strict, 0), coalesce(l.wr, 0) \
                 FROM sqlite_schema AS s LEFT JOIN l ON l.name = s.name \
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
}

impl Model {
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
        for (kind, map) in [
            ("function", &self.functions),
            ("type", &self.types),
            ("sequence", &self.sequences),
        ] {
            for (key, d) in map {
                out.push_str(&format!("{kind} {key} {}\n", d.sql));
            }
        }
        out
    }
}
