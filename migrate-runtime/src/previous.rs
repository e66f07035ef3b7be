//! Other migration tools' histories: which migrations a database migrated
//! by sqlx, diesel, refinery, dbmate, goose, golang-migrate, Flyway or
//! rusqlite_migration has applied, read from that tool's own tracking
//! table (left untouched), and mapped to our versions.
//!
//! Each reader names the source its table's shape was learned from.

#[cfg(feature = "rusqlite")]
use rusqlite::{Connection, OptionalExtension};

use crate::{Error, Result};

/// A migration tool that managed a database before this one
/// ([`Migrator::adopt`](crate::Migrator::adopt), `cargo migrate import
/// --database`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Previous {
    /// sqlx (`_sqlx_migrations`).
    Sqlx,
    /// diesel (`__diesel_schema_migrations`).
    Diesel,
    /// refinery (`refinery_schema_history`).
    Refinery,
    /// dbmate (`schema_migrations`, one row per applied version).
    Dbmate,
    /// goose (`goose_db_version`).
    Goose,
    /// golang-migrate (`schema_migrations`, one row: the current version and `dirty`).
    GolangMigrate,
    /// Flyway (`flyway_schema_history`).
    Flyway,
    /// rusqlite_migration (`PRAGMA user_version`: how many migrations are applied).
    RusqliteMigration,
}

impl<'m> crate::Migrator<'m> {
    /// Takes a database's history over from `previous` at the first run:
    /// when our tracking table is empty and `previous`'s history is not,
    /// the migrations it applied (mapped to ours through
    /// [`imported`](Self::imported), which the generated `migrator()` sets
    /// from `migrations/imported.toml`) are checked against the schema and
    /// recorded as applied without running them, in the same lock and
    /// transaction as the [`apply`](Self::apply) that follows; its table
    /// is left out of the drift check and left untouched. Later runs (our
    /// table has rows) and new databases (no history of `previous`) are
    /// not affected. On PostgreSQL the schema is compared with a replay of
    /// those migrations run inside the transaction, in a savepoint that is
    /// rolled back (a `-- migrate:no-transaction` migration cannot run
    /// there: take such a database over with `cargo migrate import
    /// --database` instead).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Previous, Script, rusqlite::Connection};
    /// let migrations = [
    ///     Migration::new(1, "a", Script::new("CREATE TABLE a (x);", "0001_a.sql")),
    ///     Migration::new(2, "b", Script::new("CREATE TABLE b (y);", "0002_b.sql")),
    /// ];
    /// // A database that rusqlite_migration took to its first migration.
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE a (x); INSERT INTO a VALUES (1); PRAGMA user_version = 1;")?;
    /// let report = Migrator::new(&migrations).adopt(Previous::RusqliteMigration).apply(&mut conn)?;
    /// assert_eq!(report.adopted, [1]);
    /// assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn adopt(mut self, previous: Previous) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The mapping from the previous tool's versions (as it records them)
    /// to ours, oldest first, for [`adopt`](Self::adopt).
    #[must_use]
    pub fn imported(mut self, mapping: &'m [(&'m str, u64)]) -> Self {
        self.imported = mapping;
        self
    }
}

impl crate::Migrator<'_> {
    /// The migrations to record, after the checks that need no schema.
    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn recordable(&self, history: &[crate::Applied], versions: &[u64]) -> Result<Vec<&crate::Migration>> {
        // The history must be one apply would accept.
        self.plan(history, None)?;
        let mut wanted: Vec<u64> = versions.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = Vec::with_capacity(wanted.len());
        for &v in &wanted {
            let m = crate::plan::find(self.migrations, v).ok_or_else(|| Error::UnknownTarget {
                target: v,
                known: self.migrations.iter().map(crate::Migration::version).collect(),
            })?;
            if history.iter().any(|a| a.version == v) {
                return Err(Error::NotRecordable {
                    version: v,
                    reason: format!("migration {v} `{}` is applied already", m.name()),
                });
            }
            out.push(m);
        }
        if let Some(top) = wanted.last().copied()
            && !self.policy.allow_out_of_order
            && let Some(below) = self
                .migrations
                .iter()
                .take_while(|m| m.version() < top)
                .find(|m| !wanted.contains(&m.version()) && !history.iter().any(|a| a.version == m.version()))
        {
            return Err(Error::NotRecordable {
                version: top,
                reason: format!(
                    "migration {} `{}` comes before it and is not applied; record it too (or apply it first), so that no migration is left behind",
                    below.version(),
                    below.name()
                ),
            });
        }
        Ok(out)
    }
}

impl crate::Applied {
    /// [`duration_ms`](Self::duration_ms) of a migration recorded as
    /// applied without running it (`Migrator::record_applied`): its
    /// schema was checked and found as the migration makes it.
    pub const RECORDED: i64 = -1;

    /// [`duration_ms`](Self::duration_ms) of a migration recorded as
    /// applied without running it although the schema differed from what
    /// it makes (drift policy `DriftPolicy::Warn`: `cargo migrate
    /// baseline --force`).
    pub const FORCED: i64 = -2;

    /// Whether the migration was recorded without running
    /// ([`RECORDED`](Self::RECORDED) or [`FORCED`](Self::FORCED)).
    pub fn recorded_only(&self) -> bool {
        matches!(self.duration_ms, Self::RECORDED | Self::FORCED)
    }
}

/// What a tool's tracking table says a database has applied, in that
/// tool's versions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
pub(crate) enum History {
    /// Every applied version.
    Versions(Vec<String>),
    /// This version and every one before it (golang-migrate).
    UpTo(String),
    /// The first `n` migrations (rusqlite_migration, SQLite only).
    #[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
    Count(u64),
}

impl Previous {
    /// Every tool, in the order of the docs.
    pub const ALL: [Self; 8] = [
        Self::Sqlx,
        Self::Diesel,
        Self::Refinery,
        Self::Dbmate,
        Self::Goose,
        Self::GolangMigrate,
        Self::Flyway,
        Self::RusqliteMigration,
    ];

    /// The tool's name as users write it: `sqlx`, `golang-migrate`, …
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(migrate_runtime::Previous::GolangMigrate.name(), "golang-migrate");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlx => "sqlx",
            Self::Diesel => "diesel",
            Self::Refinery => "refinery",
            Self::Dbmate => "dbmate",
            Self::Goose => "goose",
            Self::GolangMigrate => "golang-migrate",
            Self::Flyway => "flyway",
            Self::RusqliteMigration => "rusqlite-migration",
        }
    }

    /// The tool's tracking table (`None` for rusqlite_migration, which
    /// keeps a count in `PRAGMA user_version`). Leave it out of the drift
    /// check (`ignore`): it stays in the database, untouched.
    #[must_use]
    pub fn table(self) -> Option<&'static str> {
        match self {
            Self::Sqlx => Some("_sqlx_migrations"),
            Self::Diesel => Some("__diesel_schema_migrations"),
            Self::Refinery => Some("refinery_schema_history"),
            Self::Dbmate | Self::GolangMigrate => Some("schema_migrations"),
            Self::Goose => Some("goose_db_version"),
            Self::Flyway => Some("flyway_schema_history"),
            Self::RusqliteMigration => None,
        }
    }

    /// Whether two of the tool's version strings name one migration:
    /// Flyway compares dotted numbers part by part (`1.1` = `1.01`,
    /// `1` = `1.0`); the tools with integer versions compare numbers
    /// (`00001` = `1`); dbmate and diesel compare text.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::Previous;
    /// assert!(Previous::Flyway.same_version("1.1", "1.01"));
    /// assert!(Previous::Goose.same_version("00003", "3"));
    /// assert!(!Previous::Dbmate.same_version("001", "1"));
    /// ```
    #[must_use]
    pub fn same_version(self, a: &str, b: &str) -> bool {
        match self {
            // Flyway's MigrationVersion: parts split on `.`, compared as
            // numbers, missing trailing parts read as 0 (flyway/flyway,
            // flyway-core/src/main/java/org/flywaydb/core/api/MigrationVersion.java).
            Self::Flyway => {
                let parts = |s: &str| {
                    let mut p: Vec<String> = s
                        .split(['.', '_'])
                        .map(|d| d.trim_start_matches('0').to_owned())
                        .collect();
                    while p.last().is_some_and(String::is_empty) {
                        p.pop();
                    }
                    p
                };
                parts(a) == parts(b)
            }
            Self::Dbmate | Self::Diesel => a == b,
            _ => match (a.parse::<i128>(), b.parse::<i128>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            },
        }
    }

    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn error(self, message: impl Into<String>) -> Error {
        Error::Adopt {
            tool: self.name(),
            message: message.into(),
        }
    }

    /// Our versions that this tool has applied to `conn`'s database, by
    /// its tracking table: `imported` maps each of its versions (as it
    /// records them) to ours, oldest first (`migrations/imported.toml`;
    /// for rusqlite_migration it may be empty: its migration `n` is our
    /// version `n`). `None` when the tool left no history there (no
    /// tracking table, or nothing applied). Changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Adopt`] when the history records a failed or half-done
    /// migration (sqlx's `success = false`, golang-migrate's `dirty`,
    /// Flyway's `success = false`), a version `imported` does not have,
    /// a gap (a later migration applied, an earlier one not), or a table
    /// of another shape.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Previous, rusqlite::Connection};
    /// let conn = Connection::open_in_memory()?;
    /// conn.execute_batch("PRAGMA user_version = 2;")?;
    /// let none: &[(&str, u64)] = &[];
    /// assert_eq!(Previous::RusqliteMigration.applied(&conn, none)?, Some(vec![1, 2]));
    /// assert_eq!(Previous::Sqlx.applied(&conn, none)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "rusqlite")]
    pub fn applied<S: AsRef<str>>(self, conn: &Connection, imported: &[(S, u64)]) -> Result<Option<Vec<u64>>> {
        match self.read(conn)? {
            None => Ok(None),
            Some(history) => self.resolve(&history, imported).map(Some),
        }
    }

    /// Maps `history` to our versions through `imported`.
    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn resolve<S: AsRef<str>>(self, history: &History, imported: &[(S, u64)]) -> Result<Vec<u64>> {
        let table = self.table().unwrap_or("PRAGMA user_version");
        let position = |v: &str| imported.iter().position(|(s, _)| self.same_version(s.as_ref(), v));
        let unknown = |v: &str| {
            self.error(format!(
                "{table} records migration {v}, which is not among the migrations imported from {} ({} of them); import the whole directory this database was migrated with (`cargo migrate import --from {}`), then try again",
                self.name(),
                imported.len(),
                self.name()
            ))
        };
        let count = match history {
            History::Count(n) if imported.is_empty() => return Ok((1..=*n).collect()),
            History::Count(n) => {
                let n = usize::try_from(*n).unwrap_or(usize::MAX);
                if n > imported.len() {
                    return Err(self.error(format!(
                        "PRAGMA user_version says {n} migrations are applied, but only {} were imported; import every migration this database was migrated with",
                        imported.len()
                    )));
                }
                n
            }
            History::UpTo(v) => position(v).ok_or_else(|| unknown(v))? + 1,
            History::Versions(versions) => {
                let mut at = Vec::with_capacity(versions.len());
                for v in versions {
                    at.push(position(v).ok_or_else(|| unknown(v))?);
                }
                at.sort_unstable();
                at.dedup();
                // Applied must be the first k imported: a gap would run an
                // old migration after newer ones.
                if let Some(gap) = (0..at.len()).find(|&i| at[i] != i) {
                    let (missing, later) = (imported[gap].0.as_ref(), imported[at[gap]].0.as_ref());
                    return Err(self.error(format!(
                        "{table} records migration {later} but not {missing}, which comes before it; apply {missing} with {} first (or remove it from the imported migrations if it was never meant to run), then try again",
                        self.name()
                    )));
                }
                at.len()
            }
        };
        Ok(imported[..count].iter().map(|(_, ours)| *ours).collect())
    }
}

impl Previous {
    /// The query that reads the tool's history from its table, which has
    /// `columns`: the same text on SQLite and PostgreSQL (`CAST(… AS
    /// TEXT)`, booleans as `CASE WHEN … THEN 1 ELSE 0 END`), whose rows
    /// [`interpret`](Self::interpret) reads. Refuses a table of another
    /// shape.
    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn history_sql(self, columns: &[String]) -> Result<&'static str> {
        let table = self.table().unwrap_or_default();
        let need = |col: &str| {
            if columns.iter().any(|c| c.eq_ignore_ascii_case(col)) {
                Ok(())
            } else {
                Err(self.error(format!(
                    "its table `{table}` has no column `{col}` (it has {}), so another tool made it; check --from",
                    columns.join(", ")
                )))
            }
        };
        Ok(match self {
            // launchbadge/sqlx, sqlx-sqlite/src/migrate.rs and
            // sqlx-postgres/src/migrate.rs: `_sqlx_migrations (version
            // BIGINT PRIMARY KEY, description, installed_on, success BOOLEAN
            // NOT NULL, checksum, execution_time)`; a row with success =
            // false is a migration that failed ("dirty").
            Self::Sqlx => {
                need("success")?;
                "SELECT CAST(version AS TEXT), CASE WHEN success THEN 1 ELSE 0 END FROM _sqlx_migrations ORDER BY version"
            }
            // diesel-rs/diesel, diesel_migrations/src/migration/
            // setup_migration_table.sql: `version VARCHAR(50) PRIMARY KEY,
            // run_on`; the version is the directory name's prefix without
            // dashes (migrations_internals::version_from_string).
            Self::Diesel => "SELECT CAST(version AS TEXT) FROM __diesel_schema_migrations ORDER BY version",
            // rust-db/refinery, refinery_core/src/traits/mod.rs: `version
            // INT4 PRIMARY KEY, name, applied_on, checksum`.
            Self::Refinery => "SELECT CAST(version AS TEXT) FROM refinery_schema_history ORDER BY version",
            // amacneil/dbmate, pkg/driver/sqlite/sqlite.go and
            // pkg/driver/postgres/postgres.go: `schema_migrations (version
            // varchar(128) primary key)`, one row per applied file.
            Self::Dbmate => {
                if columns.iter().any(|c| c.eq_ignore_ascii_case("dirty")) {
                    return Err(self.error(
                        "its table `schema_migrations` has a `dirty` column: golang-migrate made it, not dbmate; use --from golang-migrate",
                    ));
                }
                "SELECT CAST(version AS TEXT) FROM schema_migrations ORDER BY version"
            }
            // golang-migrate/migrate, database/sqlite3/sqlite3.go and
            // database/postgres/postgres.go: `schema_migrations (version
            // bigint, dirty boolean)` holding one row, the current version.
            Self::GolangMigrate => {
                need("dirty")?;
                "SELECT CAST(version AS TEXT), CASE WHEN dirty THEN 1 ELSE 0 END FROM schema_migrations"
            }
            // pressly/goose, internal/dialect/dialectquery/sqlite3.go and
            // postgres.go: `goose_db_version (id, version_id, is_applied,
            // tstamp)`; the newest row of a version says whether it is
            // applied; version 0 is the row goose writes when it creates
            // the table.
            Self::Goose => {
                need("is_applied")?;
                "SELECT CAST(version_id AS TEXT), CASE WHEN is_applied THEN 1 ELSE 0 END FROM goose_db_version ORDER BY id"
            }
            // flyway/flyway, JdbcTableSchemaHistory and the createMetaDataTable
            // templates: `installed_rank, version, description, type, script,
            // checksum, installed_by, installed_on, execution_time, success`.
            Self::Flyway => {
                need("success")?;
                need("type")?;
                "SELECT CAST(version AS TEXT), type, CASE WHEN success THEN 1 ELSE 0 END FROM flyway_schema_history ORDER BY installed_rank"
            }
            Self::RusqliteMigration => {
                return Err(self
                    .error("rusqlite_migration keeps no table, only SQLite's PRAGMA user_version; is --from right?"));
            }
        })
    }

    /// The history in the rows [`history_sql`](Self::history_sql) read
    /// (each cell as text); `None` when nothing is applied.
    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn interpret(self, rows: Vec<Vec<Option<String>>>) -> Result<Option<History>> {
        let rows: Vec<(String, Vec<String>)> = rows
            .into_iter()
            .map(|r| {
                let mut cells = r
                    .into_iter()
                    .map(|c| c.map(|t| t.trim().to_owned()).unwrap_or_default());
                (cells.next().unwrap_or_default(), cells.collect())
            })
            .collect();
        let flag = |rest: &[String], i: usize| rest.get(i).is_some_and(|f| f == "1");
        let versions = |rows: Vec<(String, Vec<String>)>| {
            (!rows.is_empty()).then(|| History::Versions(rows.into_iter().map(|(v, _)| v).collect()))
        };
        match self {
            Self::Sqlx => {
                if let Some((v, _)) = rows.iter().find(|(_, rest)| !flag(rest, 0)) {
                    return Err(self.error(format!(
                        "_sqlx_migrations records migration {v} as failed (success = false): the database may be half-migrated; repair it and re-run that migration with sqlx (`sqlx migrate run`), then import again"
                    )));
                }
                Ok(versions(rows))
            }
            Self::Diesel | Self::Refinery | Self::Dbmate => Ok(versions(rows)),
            Self::GolangMigrate => match rows.as_slice() {
                [] => Ok(None),
                [(v, _)] if v == "-1" => Ok(None),
                [(v, rest)] if flag(rest, 0) => Err(self.error(format!(
                    "schema_migrations is dirty at version {v}: that migration failed halfway; repair the database by hand, mark it clean with `migrate force {v}` (or the version before it), then import again"
                ))),
                [(v, _)] => Ok(Some(History::UpTo(v.clone()))),
                _ => Err(self.error(format!(
                    "schema_migrations has {} rows, golang-migrate keeps one; is it dbmate's? Then use --from dbmate",
                    rows.len()
                ))),
            },
            Self::Goose => {
                let mut applied: Vec<String> = Vec::new();
                for (v, rest) in rows {
                    applied.retain(|a| !self.same_version(a, &v));
                    if flag(&rest, 0) && !self.same_version(&v, "0") {
                        applied.push(v);
                    }
                }
                Ok((!applied.is_empty()).then_some(History::Versions(applied)))
            }
            Self::Flyway => {
                let mut applied: Vec<String> = Vec::new();
                for (v, rest) in rows {
                    if v.is_empty() {
                        continue; // a repeatable migration, or the schema marker
                    }
                    if !flag(&rest, 1) {
                        return Err(self.error(format!(
                            "flyway_schema_history records migration {v} as failed (success = 0); repair the database, run `flyway repair`, then import again"
                        )));
                    }
                    match rest.first().map(String::as_str).unwrap_or_default() {
                        "UNDO_SQL" | "UNDO_JDBC" | "DELETE" => applied.retain(|a| !self.same_version(a, &v)),
                        "BASELINE" => {
                            return Err(self.error(format!(
                                "flyway_schema_history has a baseline at version {v} (`flyway baseline`), which this import does not take over; run `cargo migrate baseline --version N` with our version of {v} instead"
                            )));
                        }
                        _ => applied.push(v),
                    }
                }
                Ok((!applied.is_empty()).then_some(History::Versions(applied)))
            }
            Self::RusqliteMigration => Ok(None),
        }
    }

    /// The error when a migrator that adopts has no mapping of the tool's
    /// versions to ours.
    #[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn no_mapping(self) -> Error {
        self.error(
            "this migrator has no mapping of its versions to ours: run `cargo migrate import` (it writes migrations/imported.toml, which the generated migrator() passes to Migrator::imported)",
        )
    }
}

#[cfg(feature = "rusqlite")]
impl Previous {
    /// Reads the tool's history; `None` when it left none.
    pub(crate) fn read(self, conn: &Connection) -> Result<Option<History>> {
        if self == Self::RusqliteMigration {
            // rusqlite_migration counts applied migrations in user_version
            // (cljoly/rusqlite_migration, rusqlite_migration/src/lib.rs:
            // `user_version` read and set by `Migrations::to_latest`).
            let n: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(Error::db("reading PRAGMA user_version"))?;
            let n = u64::try_from(n).map_err(|_| self.error(format!("PRAGMA user_version is {n}, below 0")))?;
            return Ok((n > 0).then_some(History::Count(n)));
        }
        let table = self.table().unwrap_or_default();
        let columns = columns(conn, table)?;
        if columns.is_empty() {
            return Ok(None);
        }
        let sql = self.history_sql(&columns)?;
        let mut stmt = conn.prepare(sql).map_err(Error::db(format!("reading `{table}`")))?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..width)
                    .map(|i| {
                        Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                            rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                            rusqlite::types::Value::Text(t) => Some(t),
                            rusqlite::types::Value::Real(f) => Some(f.to_string()),
                            _ => None,
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .and_then(Iterator::collect)
            .map_err(Error::db(format!("reading `{table}`")))?;
        self.interpret(rows)
    }
}

/// The columns of `table`, empty when it does not exist.
#[cfg(feature = "rusqlite")]
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [table],
            |_| Ok(()),
        )
        .optional()
        .map_err(Error::db("reading the schema"))?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(Error::db(format!("reading the columns of `{table}`")))?;
    stmt.query_map([table], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(Error::db(format!("reading the columns of `{table}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[&str]) -> Vec<(String, u64)> {
        pairs.iter().zip(1..).map(|(s, v)| ((*s).to_owned(), v)).collect()
    }

    #[test]
    fn histories_map_to_a_prefix_of_ours() {
        let imported = map(&["20240101", "20240102", "20240103"]);
        let p = Previous::Sqlx;
        let h = |v: &[&str]| History::Versions(v.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(p.resolve(&h(&["20240102", "20240101"]), &imported).unwrap(), [1, 2]);
        let e = p.resolve(&h(&["20240101", "20240103"]), &imported).unwrap_err();
        assert!(
            e.to_string().contains("records migration 20240103 but not 20240102"),
            "{e}"
        );
        let e = p.resolve(&h(&["20991231"]), &imported).unwrap_err();
        assert!(
            e.to_string().contains("records migration 20991231, which is not among"),
            "{e}"
        );
        let g = Previous::GolangMigrate;
        assert_eq!(g.resolve(&History::UpTo("20240102".into()), &imported).unwrap(), [1, 2]);
        let r = Previous::RusqliteMigration;
        assert_eq!(r.resolve(&History::Count(3), &imported).unwrap(), [1, 2, 3]);
        assert!(r.resolve(&History::Count(4), &imported).is_err());
    }

    #[cfg(feature = "rusqlite")]
    #[test]
    fn failed_and_dirty_histories_are_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, success BOOLEAN NOT NULL);
             INSERT INTO _sqlx_migrations VALUES (1, 'a', 1), (2, 'b', 0);
             CREATE TABLE schema_migrations (version uint64, dirty bool);
             INSERT INTO schema_migrations VALUES (2, 1);",
        )
        .unwrap();
        let e = Previous::Sqlx.read(&conn).unwrap_err().to_string();
        assert!(e.contains("migration 2 as failed (success = false)"), "{e}");
        let e = Previous::GolangMigrate.read(&conn).unwrap_err().to_string();
        assert!(e.contains("dirty at version 2") && e.contains("migrate force 2"), "{e}");
        let e = Previous::Dbmate.read(&conn).unwrap_err().to_string();
        assert!(e.contains("use --from golang-migrate"), "{e}");
        assert_eq!(Previous::Goose.read(&conn).unwrap(), None);
    }

    #[cfg(feature = "rusqlite")]
    #[test]
    fn goose_keeps_the_newest_row_of_each_version() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP);
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (3, 1), (3, 0);",
        )
        .unwrap();
        assert_eq!(
            Previous::Goose.read(&conn).unwrap(),
            Some(History::Versions(vec!["1".into(), "2".into()]))
        );
    }
}
