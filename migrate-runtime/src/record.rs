//! Recording migrations as applied without running them: for a database
//! whose schema another tool (or a person) already made, after checking
//! that the schema is what those migrations make.

use rusqlite::Connection;

use crate::backend::Backend;
use crate::model::Model;
use crate::session::{Session, Sqlite};
use crate::{Applied, DriftPolicy, Error, Event, Migration, Migrator, Result};

impl Migrator<'_> {
    /// Records the migrations numbered `versions` as applied without
    /// running them, in one transaction under the migration lock: for a
    /// database whose schema another tool (or a person) already made.
    ///
    /// Before writing anything it checks, under the lock, that the
    /// history agrees with the code (as [`apply`](Self::apply) does),
    /// that each version is known and not applied yet, that no pending
    /// migration would be left below a recorded one (unless
    /// [`allow_out_of_order`](Self::allow_out_of_order)), and that the
    /// database's schema is exactly what the applied migrations and these
    /// make (the replay's [`Model`], leaving out the
    /// [`ignore`](Self::ignore)d tables). The [drift
    /// policy](Self::drift) decides what a different schema does:
    /// [`DriftPolicy::Error`] refuses, [`DriftPolicy::Warn`] reports it
    /// through [`Event::Drift`] and records the rows as
    /// [`Applied::FORCED`], [`DriftPolicy::Off`] does not look. Rows are
    /// otherwise recorded with `duration_ms` [`Applied::RECORDED`].
    /// Returns the versions recorded, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTarget`], [`Error::NotRecordable`], the history's
    /// errors ([`Error::Modified`], [`Error::UnknownApplied`], …),
    /// [`Error::Drift`] listing the differences; nothing is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.sql"))];
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")?; // made by another tool
    /// let migrator = Migrator::new(&migrations);
    /// assert_eq!(migrator.record_applied(&mut conn, &[1])?, vec![1]);
    /// assert!(migrator.pending(&conn)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_applied(&self, conn: &mut Connection, versions: &[u64]) -> Result<Vec<u64>> {
        self.check_set()?;
        self.check_sqlite()?;
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        let session = Session::start(conn, self.lock_timeout)?;
        let (result, ended) = {
            let mut db = Sqlite::new(&session);
            let result = self.record_locked(&mut db, session.conn, versions);
            (result, crate::ready::now(db.rollback()))
        };
        let restored = session.end();
        let recorded = result?;
        ended.and(restored).map(|()| recorded)
    }

    /// Under the lock: checks, then records. Commits on success.
    fn record_locked(&self, db: &mut Sqlite<'_, '_>, conn: &Connection, versions: &[u64]) -> Result<Vec<u64>> {
        let mut waited = None;
        crate::ready::now(db.begin(self, &mut waited))?;
        crate::ready::now(db.create_table(self))?;
        let history = crate::ready::now(db.read(self))?;
        let to_record = self.recordable(&history, versions)?;
        let forced = self.check_recorded_schema(conn, &history, &to_record)?;
        let duration = if forced { Applied::FORCED } else { Applied::RECORDED };
        for m in &to_record {
            self.table
                .insert(conn, false, m.version_i64(), m.name(), &m.checksum(), duration)?;
        }
        crate::ready::now(db.commit())?;
        Ok(to_record.iter().map(|m| m.version()).collect())
    }

    /// [`adopt`](Self::adopt), under the lock, in the open transaction:
    /// when our history is empty, records what the previous tool applied.
    pub(crate) fn adopt_locked(&self, conn: &Connection, history: &[Applied]) -> Result<Vec<u64>> {
        let Some(previous) = self.previous else {
            return Ok(Vec::new());
        };
        if !history.is_empty() {
            return Ok(Vec::new());
        }
        if self.imported.is_empty() && previous != crate::Previous::RusqliteMigration && previous.read(conn)?.is_some()
        {
            return Err(previous.no_mapping());
        }
        let Some(versions) = previous.applied(conn, self.imported)? else {
            return Ok(Vec::new());
        };
        let to_record = self.recordable(history, &versions)?;
        let forced = self.check_recorded_schema(conn, history, &to_record)?;
        let duration = if forced { Applied::FORCED } else { Applied::RECORDED };
        for m in &to_record {
            self.table
                .insert(conn, false, m.version_i64(), m.name(), &m.checksum(), duration)?;
        }
        Ok(versions)
    }

    /// Compares the live schema with the replay of the applied migrations
    /// and `to_record`, as the drift policy says. Returns whether they
    /// differ and the policy let it through.
    fn check_recorded_schema(&self, conn: &Connection, history: &[Applied], to_record: &[&Migration]) -> Result<bool> {
        if self.drift == DriftPolicy::Off || to_record.is_empty() {
            return Ok(false);
        }
        let filter = self.filter()?;
        let mut versions: Vec<u64> = history.iter().map(|a| a.version).collect();
        versions.extend(to_record.iter().map(|m| m.version()));
        versions.sort_unstable();
        let expected = self.schema_after(&versions, &filter)?;
        let actual = Model::read(conn, &filter)?;
        let differences = expected.diff(&actual);
        if differences.is_empty() {
            return Ok(false);
        }
        if self.drift == DriftPolicy::Warn {
            self.notify(Event::Drift {
                differences: &differences,
            });
            return Ok(true);
        }
        Err(Error::Drift {
            version: versions.last().copied(),
            differences: differences.iter().map(ToString::to_string).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Applied, DriftPolicy, Error, Migration, Migrator, Script};
    use rusqlite::Connection;

    fn set() -> Vec<Migration> {
        vec![
            Migration::new(1, "a", Script::new("CREATE TABLE a (x);", "0001_a.sql")),
            Migration::new(2, "b", Script::new("CREATE TABLE b (y);", "0002_b.sql")),
            Migration::new(3, "c", Script::new("CREATE TABLE c (z);", "0003_c.sql")),
        ]
    }

    fn durations(conn: &Connection) -> Vec<(i64, i64)> {
        let mut stmt = conn
            .prepare("SELECT version, duration_ms FROM _migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn records_a_checked_prefix_and_the_rest_applies_normally() {
        let ms = set();
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1);")
            .unwrap();
        let m = Migrator::new(&ms);
        assert_eq!(m.record_applied(&mut conn, &[2, 1]).unwrap(), [1, 2]);
        assert_eq!(durations(&conn), [(1, Applied::RECORDED), (2, Applied::RECORDED)]);
        assert!(
            m.status(&conn).unwrap().entries[0]
                .applied
                .as_ref()
                .unwrap()
                .recorded_only()
        );
        let report = m.apply(&mut conn).unwrap();
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
        let rows: i64 = conn.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1, "nothing ran twice");
        let e = m.record_applied(&mut conn, &[3]).unwrap_err();
        assert!(matches!(e, Error::NotRecordable { version: 3, .. }), "{e}");
    }

    #[test]
    fn refuses_a_different_schema_gaps_and_unknown_versions_changing_nothing() {
        let ms = set();
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a (x, extra);").unwrap();
        let m = Migrator::new(&ms);
        let e = m.record_applied(&mut conn, &[1]).unwrap_err();
        assert!(e.to_string().contains("table a: column extra added"), "{e}");
        let e = m.record_applied(&mut conn, &[2]).unwrap_err();
        assert!(e.to_string().contains("migration 1 `a` comes before it"), "{e}");
        let e = m.record_applied(&mut conn, &[9]).unwrap_err();
        assert!(matches!(e, Error::UnknownTarget { target: 9, .. }), "{e}");
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = '_migrations'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "nothing recorded, not even the table");
        // Forced: recorded, and the history says so.
        let seen = std::cell::Cell::new(0);
        Migrator::new(&ms)
            .drift(DriftPolicy::Warn)
            .on_event(|e| {
                if let crate::Event::Drift { differences } = e {
                    seen.set(differences.len());
                }
            })
            .record_applied(&mut conn, &[1])
            .unwrap();
        assert_eq!(seen.get(), 1);
        assert_eq!(durations(&conn), [(1, Applied::FORCED)]);
    }

    #[test]
    fn adopting_everything_commits_with_nothing_to_apply_and_later_runs_are_no_ops() {
        let ms = set();
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE a (x); CREATE TABLE b (y); CREATE TABLE c (z);
             CREATE TABLE schema_migrations (version varchar(128) primary key);
             INSERT INTO schema_migrations VALUES ('20240101'), ('20240102'), ('20240103');",
        )
        .unwrap();
        let mapping = [("20240101", 1), ("20240102", 2), ("20240103", 3)];
        let m = || Migrator::new(&ms).imported(&mapping).adopt(crate::Previous::Dbmate);
        let report = m().apply(&mut conn).unwrap();
        assert_eq!(report.adopted, [1, 2, 3]);
        assert_eq!(report.applied().count(), 0);
        assert_eq!(durations(&conn).len(), 3, "committed");
        assert!(m().apply(&mut conn).unwrap().is_empty());
        // Without the mapping, a history it cannot map is refused.
        let mut other = Connection::open_in_memory().unwrap();
        other
            .execute_batch("CREATE TABLE schema_migrations (version varchar(128) primary key); INSERT INTO schema_migrations VALUES ('1');")
            .unwrap();
        let e = Migrator::new(&ms)
            .adopt(crate::Previous::Dbmate)
            .apply(&mut other)
            .unwrap_err();
        assert!(e.to_string().contains("no mapping of its versions to ours"), "{e}");
    }
}
