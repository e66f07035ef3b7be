//! Downgrades: with [`Migrator::store_down`] the tracking table keeps each
//! applied migration's down script (column `down_sql`, added to an
//! existing table when missing), so that an older build of the app, which
//! does not know the newer migrations, can roll them back with
//! [`Migrator::allow_downgrade`] — the desktop app whose user installs an
//! older release. On SQLite and PostgreSQL alike: the column is added in
//! the transaction that holds the migration lock, each down is stored in
//! the transaction that records its migration, and the rollbacks run
//! through the same locked loop as every migration.

#[cfg(feature = "rusqlite")]
use rusqlite::{Connection, OptionalExtension, params};

use crate::Migrator;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
use crate::{Applied, DriftPolicy, Error, Migration, Report, Result, Script};

/// The column that holds the down scripts.
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
pub(crate) const COLUMN: &str = "down_sql";

impl Migrator<'_> {
    /// Keeps each applied migration's down script in the tracking table
    /// (column `down_sql`, added to an existing table when missing; `NULL`
    /// for a migration without one), so that an older build can roll back
    /// migrations it does not know ([`allow_downgrade`](Self::allow_downgrade)).
    /// Off by default (config `store_down = true`). On SQLite and
    /// PostgreSQL.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
    /// let v2 = [
    ///     Migration::new(1, "a", Script::new("CREATE TABLE a (x);", "0001_a.up.sql"))
    ///         .with_down(Script::new("DROP TABLE a;", "0001_a.down.sql")),
    ///     Migration::new(2, "b", Script::new("CREATE TABLE b (x);", "0002_b.up.sql"))
    ///         .with_down(Script::new("DROP TABLE b;", "0002_b.down.sql")),
    /// ];
    /// let mut conn = Connection::open_in_memory()?;
    /// Migrator::new(&v2).store_down(true).apply(&mut conn)?;
    /// // The previous release knows only migration 1.
    /// let v1 = &v2[..1];
    /// assert!(Migrator::new(v1).apply(&mut conn).is_err(), "unknown migration 2");
    /// let report = Migrator::new(v1).allow_downgrade(true).apply(&mut conn)?;
    /// assert_eq!(report.rolled_back().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn store_down(mut self, store: bool) -> Self {
        self.store_down = store;
        self
    }

    /// Before applying, rolls back the applied migrations above this
    /// build's newest one, newest first, with the down scripts the database
    /// stored for them ([`store_down`](Self::store_down)), each in its own
    /// transaction with its tracking row; then applies as usual. Without
    /// it (the default), such a database is refused
    /// ([`Error::UnknownApplied`]). An unknown migration below the newest
    /// known one (another branch's) is refused either way. On SQLite and
    /// PostgreSQL.
    ///
    /// # Errors
    ///
    /// [`Error::NoStoredDown`] when one of them was applied without a
    /// stored down script (nothing is rolled back); a failing down script
    /// as [`Error::Sql`] (the ones before it stay rolled back).
    #[must_use]
    pub fn allow_downgrade(mut self, allow: bool) -> Self {
        self.allow_downgrade = allow;
        self
    }
}

#[cfg(any(feature = "rusqlite", feature = "postgres"))]
impl Migrator<'_> {
    /// The applied migrations above this build's newest, newest last, as
    /// migrations whose down is the script `down_of` gives for a version
    /// (stored in the tracking table); `Ok(None)` when there are none.
    ///
    /// # Errors
    ///
    /// [`Error::NoStoredDown`] for the first without a stored down.
    pub(crate) fn stored_downs(
        &self,
        history: &[Applied],
        mut down_of: impl FnMut(u64) -> Result<Option<String>>,
    ) -> Result<Option<Vec<Migration>>> {
        let newest = self.newest();
        let above: Vec<&Applied> = history.iter().filter(|a| a.version > newest).collect();
        if above.is_empty() {
            return Ok(None);
        }
        let mut stored = Vec::with_capacity(above.len());
        for a in above {
            let Some(down) = down_of(a.version)? else {
                return Err(Error::NoStoredDown {
                    version: a.version,
                    name: a.name.clone(),
                    newest,
                });
            };
            let file = format!("{}.{COLUMN} of migration {}", self.table.name, a.version);
            let no_transaction = down
                .lines()
                .map(str::trim)
                .take_while(|l| l.is_empty() || l.starts_with("--"))
                .any(|l| l == "-- migrate:no-transaction");
            // Its up is not known here: the stored down is what runs.
            stored.push(
                Migration::new(a.version, a.name.clone(), Script::new(String::new(), file.clone()))
                    .with_down(Script::new(down, file).with_no_transaction(no_transaction)),
            );
        }
        Ok(Some(stored))
    }

    /// This build's newest version (0 without migrations).
    pub(crate) fn newest(&self) -> u64 {
        self.migrations.last().map_or(0, Migration::version)
    }

    /// The runner that rolls back `stored` ([`stored_downs`](Self::stored_downs))
    /// in this one's tracking table, schema and lock, to this build's newest.
    pub(crate) fn rollback_runner<'s>(&self, stored: &'s [Migration]) -> Migrator<'s> {
        let mut runner = Migrator::new(stored)
            .table(&self.table.name)
            .allow_unknown(true)
            .allow_modified(true)
            .drift(DriftPolicy::Off)
            .lock_timeout(self.lock_timeout);
        runner.schema.clone_from(&self.schema);
        runner.lock = self.lock;
        runner.table_lock_timeout = self.table_lock_timeout;
        runner
    }
}

#[cfg(any(feature = "rusqlite", feature = "postgres"))]
impl Report {
    /// This report followed by `later`'s steps, wait and held contract.
    pub(crate) fn then(mut self, later: Self) -> Self {
        self.steps.extend(later.steps);
        self.adopted.extend(later.adopted);
        self.held = later.held;
        self.waited = match (self.waited, later.waited) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self
    }
}

#[cfg(feature = "rusqlite")]
use crate::history::quote;

#[cfg(feature = "rusqlite")]
impl Migrator<'_> {
    /// Adds the `down_sql` column to the tracking table when it is missing:
    /// a database made by a release without `store_down`.
    pub(crate) fn ensure_down_column(&self, conn: &Connection) -> Result<()> {
        if has_column(conn, &self.table.name)? {
            return Ok(());
        }
        conn.execute_batch(&format!(
            "ALTER TABLE {} ADD COLUMN {COLUMN} TEXT",
            quote(&self.table.name)
        ))
        .map_err(Error::db(format!(
            "adding the column {COLUMN} to `{}`",
            self.table.name
        )))
    }

    /// Stores `m`'s down script in its tracking row, just recorded.
    pub(crate) fn record_down(&self, conn: &Connection, m: &Migration) -> Result<()> {
        conn.prepare_cached(&format!(
            "UPDATE {} SET {COLUMN} = ?1 WHERE version = ?2",
            quote(&self.table.name)
        ))
        .and_then(|mut s| s.execute(params![m.down().map(Script::sql), m.version_i64()]))
        .map(drop)
        .map_err(Error::db(format!(
            "storing the down script of migration {}",
            m.version()
        )))
    }

    /// The downgrade before a run: rolls back the applied migrations above
    /// the newest known one with their stored down scripts.
    pub(crate) fn downgrade(&self, conn: &mut Connection) -> Result<Report> {
        let history = self.table.read(conn)?;
        let column = has_column(conn, &self.table.name)?;
        let sql = format!("SELECT {COLUMN} FROM {} WHERE version = ?1", quote(&self.table.name));
        let stored = self.stored_downs(&history, |version| {
            if !column {
                return Ok(None);
            }
            conn.query_row(&sql, params![i64::try_from(version).unwrap_or(i64::MAX)], |r| r.get(0))
                .optional()
                .map(Option::flatten)
                .map_err(Error::db(format!("reading the tracking table `{}`", self.table.name)))
        })?;
        match stored {
            Some(stored) => self.rollback_runner(&stored).run_plain(conn, Some(self.newest())),
            None => Ok(Report::default()),
        }
    }
}

/// Whether the tracking table has the `down_sql` column.
#[cfg(feature = "rusqlite")]
fn has_column(conn: &Connection, table: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, COLUMN],
        |r| r.get(0),
    )
    .map_err(Error::db(format!("reading the columns of `{table}`")))
}
