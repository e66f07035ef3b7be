//! Drift: whether a database's schema is what its applied migrations make.
//!
//! The expected schema is the replay, into an in-memory database, of exactly
//! the migrations the database's tracking table records (not of every
//! migration the code has: pending ones are not expected yet).

use rusqlite::Connection;

use crate::model::{Difference, Filter, Model};
use crate::{Error, Migration, Migrator, Result, State};

/// What to do when a database's schema is not what its migrations made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftPolicy {
    /// Refuse to migrate, listing the differences.
    #[default]
    Error,
    /// Report the differences through the events and go on.
    Warn,
    /// Do not check.
    Off,
}

/// The schema a database should have and the one it has.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SchemaDiff {
    /// The newest applied version (`None`: nothing applied).
    pub version: Option<u64>,
    /// The schema its applied migrations make.
    pub expected: Model,
    /// The schema it has.
    pub actual: Model,
    /// How `actual` differs from `expected`; empty: no drift.
    pub differences: Vec<Difference>,
}

impl SchemaDiff {
    /// Whether the database is what its migrations made.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

impl<'m> Migrator<'m> {
    /// The schema that the migrations numbered `versions` make, replayed
    /// into a new in-memory database through this runner.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTarget`] for a version the code does not have; the
    /// replay's errors when a migration fails.
    pub fn schema_after(&self, versions: &[u64], filter: &Filter) -> Result<Model> {
        let mut subset: Vec<Migration> = Vec::with_capacity(versions.len());
        for &v in versions {
            let m = self
                .migrations()
                .iter()
                .find(|m| m.version() == v)
                .ok_or_else(|| Error::UnknownTarget {
                    target: v,
                    known: self.migrations().iter().map(Migration::version).collect(),
                })?;
            subset.push(m.clone());
        }
        subset.sort_by_key(Migration::version);
        let mut conn = Connection::open_in_memory().map_err(Error::db("opening an in-memory database"))?;
        Migrator::new(&subset)
            .table(self.table_name())
            .allow_out_of_order(true)
            .apply(&mut conn)?;
        Model::read(&conn, filter)
    }

    /// Compares `conn`'s schema with the one its applied migrations make.
    /// Changes nothing.
    ///
    /// # Errors
    ///
    /// When the history is one [`apply`](Self::apply) would refuse (an
    /// applied migration modified, or unknown to the code): the expected
    /// schema cannot be known then. [`Error::NotMigrated`] when the
    /// database has no tracking table.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script, model::Filter, rusqlite::Connection};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.sql"))];
    /// let mut conn = Connection::open_in_memory()?;
    /// let migrator = Migrator::new(&migrations);
    /// migrator.apply(&mut conn)?;
    /// conn.execute_batch("ALTER TABLE t ADD COLUMN y;")?;
    /// let diff = migrator.schema_diff(&conn, &Filter::new(migrator.table_name()))?;
    /// assert_eq!(diff.differences[0].to_string(), "table t: column y added ((no type))");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_diff(&self, conn: &Connection, filter: &Filter) -> Result<SchemaDiff> {
        if !has_table(conn, self.table_name())? {
            return Err(Error::NotMigrated {
                table: self.table_name().to_owned(),
            });
        }
        let status = self.status(conn)?;
        if !status.unknown.is_empty() {
            return Err(Error::UnknownApplied {
                versions: status.unknown.iter().map(|a| (a.version, a.name.clone())).collect(),
            });
        }
        let mut versions = Vec::new();
        for e in &status.entries {
            match e.state {
                State::Applied => versions.push(e.migration.version()),
                State::Modified => {
                    let applied = e.applied.as_ref().map(|a| (a.name.clone(), a.checksum.clone()));
                    let (applied_name, applied_checksum) = applied.unwrap_or_default();
                    let m = e.migration;
                    return Err(if applied_name == m.name() {
                        Error::Modified {
                            version: m.version(),
                            name: m.name().to_owned(),
                            file: m.up().file().to_owned(),
                            applied: applied_checksum,
                            current: m.checksum().to_string(),
                        }
                    } else {
                        Error::Renamed {
                            version: m.version(),
                            applied_name,
                            name: m.name().to_owned(),
                            file: m.up().file().to_owned(),
                        }
                    });
                }
                _ => {}
            }
        }
        let expected = self.schema_after(&versions, filter)?;
        let actual = Model::read(conn, filter)?;
        let differences = expected.diff(&actual);
        Ok(SchemaDiff {
            version: versions.last().copied(),
            expected,
            actual,
            differences,
        })
    }
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(Error::db("reading the schema"))
}
