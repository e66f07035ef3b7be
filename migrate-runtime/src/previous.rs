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
    /// not affected. SQLite only: PostgreSQL refuses it.
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

/// What a tool's tracking table says a database has applied, in that
/// tool's versions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
pub(crate) enum History {
    /// Every applied version.
    Versions(Vec<String>),
    /// This version and every one before it (golang-migrate).
    UpTo(String),
    /// The first `n` migrations (rusqlite_migration).
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

    #[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
    fn error(self, message: impl Into<String>) -> Error {
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
    #[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
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
        let texts = |sql: &str| -> Result<Vec<(String, Option<i64>)>> {
            let mut stmt = conn.prepare(sql).map_err(Error::db(format!("reading `{table}`")))?;
            let rows = stmt
                .query_map([], |r| {
                    let v: rusqlite::types::Value = r.get(0)?;
                    let text = match v {
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Text(t) => t.trim().to_owned(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        _ => String::new(),
                    };
                    Ok((text, r.get::<_, Option<i64>>(1)?))
                })
                .and_then(Iterator::collect)
                .map_err(Error::db(format!("reading `{table}`")))?;
            Ok(rows)
        };
        match self {
            // launchbadge/sqlx, sqlx-sqlite/src/migrate.rs: `_sqlx_migrations
            // (version BIGINT PRIMARY KEY, description, installed_on, success
            // BOOLEAN NOT NULL, checksum BLOB, execution_time)`; a row with
            // success = false is a migration that failed ("dirty").
            Self::Sqlx => {
                need("success")?;
                let rows = texts("SELECT version, success FROM _sqlx_migrations ORDER BY version")?;
                if let Some((v, _)) = rows.iter().find(|(_, ok)| *ok == Some(0)) {
                    return Err(self.error(format!(
                        "_sqlx_migrations records migration {v} as failed (success = false): the database may be half-migrated; repair it and re-run that migration with sqlx (`sqlx migrate run`), then import again"
                    )));
                }
                Ok(versions(rows))
            }
            // diesel-rs/diesel, diesel_migrations/src/migration/
            // setup_migration_table.sql: `version VARCHAR(50) PRIMARY KEY,
            // run_on`; the version is the directory name's prefix without
            // dashes (migrations_internals::version_from_string).
            Self::Diesel => Ok(versions(texts(
                "SELECT version, NULL FROM __diesel_schema_migrations ORDER BY version",
            )?)),
            // rust-db/refinery, refinery_core/src/traits/mod.rs: `version
            // INT4 PRIMARY KEY, name, applied_on, checksum`.
            Self::Refinery => Ok(versions(texts(
                "SELECT version, NULL FROM refinery_schema_history ORDER BY version",
            )?)),
            // amacneil/dbmate, pkg/driver/sqlite/sqlite.go: `schema_migrations
            // (version varchar(128) primary key)`, one row per applied file.
            Self::Dbmate => {
                if columns.iter().any(|c| c.eq_ignore_ascii_case("dirty")) {
                    return Err(self.error(
                        "its table `schema_migrations` has a `dirty` column: golang-migrate made it, not dbmate; use --from golang-migrate",
                    ));
                }
                Ok(versions(texts(
                    "SELECT version, NULL FROM schema_migrations ORDER BY version",
                )?))
            }
            // golang-migrate/migrate, database/sqlite3/sqlite3.go: `schema_migrations
            // (version uint64, dirty bool)` holding one row, the current version.
            Self::GolangMigrate => {
                need("dirty")?;
                let rows = texts("SELECT version, dirty FROM schema_migrations")?;
                match rows.as_slice() {
                    [] => Ok(None),
                    [(v, _)] if v == "-1" => Ok(None),
                    [(v, Some(dirty))] if *dirty != 0 => Err(self.error(format!(
                        "schema_migrations is dirty at version {v}: that migration failed halfway; repair the database by hand, mark it clean with `migrate force {v}` (or the version before it), then import again"
                    ))),
                    [(v, _)] => Ok(Some(History::UpTo(v.clone()))),
                    _ => Err(self.error(format!(
                        "schema_migrations has {} rows, golang-migrate keeps one; is it dbmate's? Then use --from dbmate",
                        rows.len()
                    ))),
                }
            }
            // pressly/goose, internal/dialect/dialectquery/sqlite3.go:
            // `goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT,
            // version_id INTEGER, is_applied INTEGER, tstamp)`; the newest row
            // of a version says whether it is applied; version 0 is the row
            // goose writes when it creates the table.
            Self::Goose => {
                need("is_applied")?;
                let rows = texts("SELECT version_id, is_applied FROM goose_db_version ORDER BY id")?;
                let mut applied: Vec<String> = Vec::new();
                for (v, is_applied) in rows {
                    applied.retain(|a| !self.same_version(a, &v));
                    if is_applied != Some(0) && !self.same_version(&v, "0") {
                        applied.push(v);
                    }
                }
                Ok((!applied.is_empty()).then_some(History::Versions(applied)))
            }
            // flyway/flyway, JdbcTableSchemaHistory and the createMetaDataTable
            // template: `installed_rank, version, description, type, script,
            // checksum, installed_by, installed_on, execution_time, success`.
            Self::Flyway => {
                need("success")?;
                need("type")?;
                let mut stmt = conn
                    .prepare("SELECT version, type, success FROM flyway_schema_history ORDER BY installed_rank")
                    .map_err(Error::db("reading `flyway_schema_history`"))?;
                let rows: Vec<(Option<String>, String, i64)> = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .and_then(Iterator::collect)
                    .map_err(Error::db("reading `flyway_schema_history`"))?;
                let mut applied: Vec<String> = Vec::new();
                for (version, kind, success) in rows {
                    let Some(v) = version else {
                        continue; // a repeatable migration, or the schema marker
                    };
                    if success == 0 {
                        return Err(self.error(format!(
                            "flyway_schema_history records migration {v} as failed (success = 0); repair the database, run `flyway repair`, then import again"
                        )));
                    }
                    match kind.as_str() {
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
}

#[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
fn versions(rows: Vec<(String, Option<i64>)>) -> Option<History> {
    (!rows.is_empty()).then(|| History::Versions(rows.into_iter().map(|(v, _)| v).collect()))
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
