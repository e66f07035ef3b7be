//! Drift: whether a database's schema is what its applied migrations make.
//!
//! The expected schema is the replay, into an in-memory database, of exactly
//! the migrations the database's tracking table records (not of every
//! migration the code has: pending ones are not expected yet).

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;

use crate::Migrator;
#[cfg(feature = "rusqlite")]
use crate::model::{self, Filter};
use crate::model::{Difference, Model};
#[cfg(feature = "rusqlite")]
use crate::{Applied, Migration, ReplayCache};
use crate::{Error, Result, State, Status};

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

/// The versions to replay for a database's expected schema: those it has
/// applied, when every one is ours and unmodified; else the error that says
/// why its schema cannot be known.
pub(crate) fn replayable(status: &Status<'_>) -> Result<Vec<u64>> {
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
    Ok(versions)
}

impl Migrator<'_> {
    /// The migrations numbered `versions`, oldest first.
    pub(crate) fn subset(&self, versions: &[u64]) -> Result<Vec<crate::Migration>> {
        let mut subset: Vec<crate::Migration> = Vec::with_capacity(versions.len());
        for &v in versions {
            let m = crate::plan::find(self.migrations(), v).ok_or_else(|| Error::UnknownTarget {
                target: v,
                known: self.migrations().iter().map(crate::Migration::version).collect(),
            })?;
            subset.push(m.clone());
        }
        subset.sort_by_key(crate::Migration::version);
        Ok(subset)
    }

    /// Drift found by the start-up check: refused, or reported through
    /// the events, as the policy says.
    pub(crate) fn drifted(&self, version: Option<u64>, differences: &[Difference]) -> Result<()> {
        match self.drift {
            DriftPolicy::Warn => {
                self.notify(crate::Event::Drift { differences });
                Ok(())
            }
            _ => Err(Error::Drift {
                version,
                differences: differences.iter().map(ToString::to_string).collect(),
            }),
        }
    }
}

impl SchemaDiff {
    /// `actual` against `expected` at `version`.
    pub(crate) fn new(version: Option<u64>, expected: Model, actual: Model) -> Self {
        let differences = expected.diff(&actual);
        Self {
            version,
            expected,
            actual,
            differences,
        }
    }

    /// Whether the database is what its migrations made.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

#[cfg(feature = "rusqlite")]
impl<'m> Migrator<'m> {
    /// A new in-memory database holding what the migrations numbered
    /// `versions` make, replayed through this runner (for
    /// [`model::schema_sql`] or [`Model::read`]).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTarget`] for a version the code does not have; the
    /// replay's errors when a migration fails.
    pub fn replay_versions(&self, versions: &[u64]) -> Result<Connection> {
        self.replay_versions_cached(versions, &mut crate::replay_cache::NoCache)
    }

    /// [`replay_versions`](Self::replay_versions), starting from the
    /// longest verified prefix of the migrations that `cache` holds (the
    /// incremental check's, see [`check_cached`](Self::check_cached)) when
    /// that database is the one the replay from nothing makes at that
    /// point: every migration of the prefix is in `versions`, and none
    /// ran its round trip outside a transaction or may leave state on the
    /// connection. Saves nothing: the cache holds only verified prefixes.
    ///
    /// # Errors
    ///
    /// As [`replay_versions`](Self::replay_versions).
    #[doc(hidden)]
    pub fn replay_versions_cached(&self, versions: &[u64], cache: &mut dyn ReplayCache) -> Result<Connection> {
        let subset = self.subset(versions)?;
        // In memory, attached databases too, with the app's functions.
        let fresh = || -> Result<Connection> {
            let conn = crate::session::replay_connection()?;
            self.set_up_replay(&conn)?;
            Ok(conn)
        };
        let mut conn = fresh()?;
        let usable = self.replayed_as_checked(&subset);
        if usable > 0 && cache.resume(&mut conn, usable).is_some_and(|v| v.prefix > usable) {
            // Not what was asked for: from nothing.
            conn = fresh()?;
        }
        Migrator::new(&subset)
            .table(self.table_name())
            .allow_out_of_order(true)
            // A replay makes what the migrations make, contracts included.
            .contract(true)
            .drift(DriftPolicy::Off)
            .apply(&mut conn)?;
        Ok(conn)
    }

    /// How many of the migrations, from the first, the check's replay
    /// leaves as a replay of `subset` from nothing does (see
    /// [`replay_versions_cached`](Self::replay_versions_cached)): the
    /// same versions in the same order, and no round trip committed
    /// outside a transaction (whose down and up ran again on the full
    /// database).
    fn replayed_as_checked(&self, subset: &[Migration]) -> usize {
        let outside_transaction = |m: &Migration| {
            m.down()
                .is_some_and(|down| down.no_transaction() || m.up().no_transaction())
        };
        let same = self
            .migrations()
            .iter()
            .zip(subset)
            .take_while(|(m, s)| m.version() == s.version() && !outside_transaction(m))
            .count();
        same.min(crate::replay_cache::resumable(self.migrations()))
    }

    /// The schema that the migrations numbered `versions` make: the
    /// [`replay_versions`](Self::replay_versions)'s model.
    ///
    /// # Errors
    ///
    /// As [`replay_versions`](Self::replay_versions).
    pub fn schema_after(&self, versions: &[u64], filter: &Filter) -> Result<Model> {
        Model::read(&self.replay_versions(versions)?, filter)
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
        self.schema_diff_cached(conn, filter, &mut crate::replay_cache::NoCache)
    }

    /// [`schema_diff`](Self::schema_diff), its replay started from what
    /// `cache` holds ([`replay_versions_cached`](Self::replay_versions_cached)).
    ///
    /// # Errors
    ///
    /// As [`schema_diff`](Self::schema_diff).
    #[doc(hidden)]
    pub fn schema_diff_cached(
        &self,
        conn: &Connection,
        filter: &Filter,
        cache: &mut dyn ReplayCache,
    ) -> Result<SchemaDiff> {
        if !has_table(conn, self.table_name())? {
            return Err(Error::NotMigrated {
                table: self.table_name().to_owned(),
            });
        }
        let versions = replayable(&self.status(conn)?)?;
        let expected = Model::read(&self.replay_versions_cached(&versions, cache)?, filter)?;
        let actual = Model::read(conn, filter)?;
        Ok(SchemaDiff::new(versions.last().copied(), expected, actual))
    }
}

#[cfg(feature = "rusqlite")]
impl Migrator<'_> {
    /// The start-up drift check: when every applied migration is one of
    /// ours, unmodified, and the newest has a recorded schema fingerprint,
    /// compares it with the database's. A different fingerprint is looked
    /// at closely (the models compared): only a real difference is drift.
    pub(crate) fn check_drift(&self, conn: &Connection, history: &[Applied]) -> Result<()> {
        if self.drift == DriftPolicy::Off {
            return Ok(());
        }
        let normalized = crate::squash::normalize(self.migrations, history);
        let history: &[Applied] = normalized.as_deref().unwrap_or(history);
        let Some(newest) = history.last() else {
            return Ok(());
        };
        let known = history
            .iter()
            .all(|a| crate::plan::find(self.migrations, a.version).is_some_and(|m| crate::plan::matches(m, a)));
        let Some(expected) = crate::plan::find(self.migrations, newest.version).and_then(Migration::schema_fingerprint)
        else {
            return Ok(());
        };
        if !known {
            return Ok(());
        }
        self.compare_fingerprint(conn, newest.version, expected)
    }

    /// The fast path's check: every migration is applied and unmodified.
    pub(crate) fn check_drift_all_applied(&self, conn: &Connection) -> Result<()> {
        match self.migrations.last().filter(|_| self.drift_applies()) {
            Some(m) => match m.schema_fingerprint() {
                Some(expected) => self.compare_fingerprint(conn, m.version(), expected),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Whether a start-up with every migration applied has a schema to
    /// check: the drift check is on and the build recorded the newest
    /// migration's schema.
    pub(crate) fn drift_applies(&self) -> bool {
        self.drift != DriftPolicy::Off && self.migrations.last().is_some_and(|m| m.schema_fingerprint().is_some())
    }

    /// After the newest migration ran (in its transaction): when the
    /// schema is the one the build recorded for it, stamps its row with
    /// SQLite's schema cookie, so that later start-ups skip reading the
    /// schema while the cookie stays the same.
    pub(crate) fn stamp_if_verified(&self, conn: &Connection, m: &Migration) -> Result<()> {
        let newest = self.migrations.last().is_some_and(|last| last.version() == m.version());
        let Some(expected) = m
            .schema_fingerprint()
            .filter(|_| newest && self.drift != DriftPolicy::Off)
        else {
            return Ok(());
        };
        if model::fingerprint(conn, &self.filter()?)? == expected {
            self.table.stamp(conn, m.version_i64())?;
        }
        Ok(())
    }

    fn compare_fingerprint(&self, conn: &Connection, version: u64, expected: &str) -> Result<()> {
        // Nothing in the schema changed since the runtime verified it.
        if self.table.schema_unchanged(conn, version) {
            return Ok(());
        }
        let filter = self.filter()?;
        if model::fingerprint(conn, &filter)? == expected {
            return Ok(());
        }
        let diff = self.schema_diff(conn, &filter)?;
        if diff.is_clean() {
            return Ok(());
        }
        self.drifted(diff.version, &diff.differences)
    }
}

#[cfg(feature = "rusqlite")]
fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(Error::db("reading the schema"))
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::{Event, Script};

    /// Migrations with the fingerprints the build records, as generated code has them.
    fn recorded(migrations: &[Migration]) -> Vec<Migration> {
        let validated = Migrator::new(migrations).check().unwrap();
        migrations
            .iter()
            .zip(&validated.fingerprints)
            .map(|(m, (v, fp))| {
                assert_eq!(m.version(), *v);
                m.clone().with_schema_fingerprint(String::leak(fp.clone()))
            })
            .collect()
    }

    fn story() -> Vec<Migration> {
        recorded(&[
            Migration::new(
                1,
                "recruits",
                Script::new(
                    "CREATE TABLE recruits (id INTEGER PRIMARY KEY, name TEXT NOT NULL, chatname TEXT, id_number TEXT);\n\
                     INSERT INTO recruits (name, chatname, id_number) VALUES ('Ada', 'ada', 'A1');",
                    "0001_recruits.sql",
                ),
            ),
            Migration::new(
                2,
                "index",
                Script::new("CREATE INDEX recruits_name ON recruits (name);", "0002_index.sql"),
            ),
            Migration::new(
                3,
                "notes",
                Script::new(
                    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
                    "0003_notes.sql",
                ),
            ),
        ])
    }

    #[test]
    fn the_build_records_one_fingerprint_per_migration() {
        let ms = story();
        assert!(ms.iter().all(|m| m.schema_fingerprint().is_some_and(|f| f.len() == 64)));
        assert_ne!(ms[0].schema_fingerprint(), ms[1].schema_fingerprint());
    }

    #[test]
    fn a_clean_database_starts_and_a_drifted_one_is_refused_with_its_differences() {
        let ms = story();
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms).apply(&mut conn).unwrap();
        assert!(
            Migrator::new(&ms).apply(&mut conn).unwrap().is_empty(),
            "clean: nothing to do, no error"
        );
        conn.execute_batch(
            "ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';\
             ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;\
             ALTER TABLE recruits DROP COLUMN id_number;",
        )
        .unwrap();
        let e = Migrator::new(&ms).apply(&mut conn).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("not what its applied migrations (up to 3) make (drift)"),
            "{text}"
        );
        assert!(
            text.contains("table recruits: column chatname renamed to rocketchat_user"),
            "{text}"
        );
        assert!(text.contains("table recruits: column id_number removed"), "{text}");
        assert!(text.contains("table recruits: column cohort added"), "{text}");
        assert!(text.contains("cargo migrate diff"), "{text}");
        // Warn: goes on, and says so through the events.
        let seen = RefCell::new(Vec::new());
        Migrator::new(&ms)
            .drift(DriftPolicy::Warn)
            .on_event(|e| {
                if let Event::Drift { differences } = e {
                    seen.borrow_mut().extend(differences.iter().map(ToString::to_string));
                }
            })
            .apply(&mut conn)
            .unwrap();
        assert_eq!(seen.borrow().len(), 3, "{:?}", seen.borrow());
        Migrator::new(&ms).drift(DriftPolicy::Off).apply(&mut conn).unwrap();
        // Data untouched throughout.
        let n: i64 = conn
            .query_row("SELECT count(*) FROM recruits WHERE rocketchat_user = 'ada'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    fn stamp(conn: &Connection, version: i64) -> Option<i64> {
        // None too when the column was never added (nothing was stamped).
        conn.query_row(
            "SELECT schema_version FROM _migrations WHERE version = ?1",
            [version],
            |r| r.get(0),
        )
        .ok()
        .flatten()
    }

    #[test]
    fn the_newest_migration_is_stamped_with_the_schema_cookie_only_when_its_schema_was_verified() {
        let ms = story();
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms).apply(&mut conn).unwrap();
        let cookie: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(stamp(&conn, 3), Some(cookie), "the newest row holds the cookie");
        assert_eq!(stamp(&conn, 2), None, "older rows are not stamped");
        assert!(Migrator::new(&ms).table.schema_unchanged(&conn, 3));
        // Any change to the schema changes the cookie: the check reads the
        // schema again and finds the drift.
        conn.execute_batch("CREATE INDEX notes_body ON notes (body);").unwrap();
        assert!(!Migrator::new(&ms).table.schema_unchanged(&conn, 3));
        let e = Migrator::new(&ms).apply(&mut conn).unwrap_err();
        assert!(e.to_string().contains("table notes: index notes_body added"), "{e}");

        // A database that held a table of its own before: the schema after
        // the newest migration is not the recorded one, so no stamp.
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE mine (x);").unwrap();
        Migrator::new(&ms).drift(DriftPolicy::Warn).apply(&mut conn).unwrap();
        assert_eq!(stamp(&conn, 3), None);
        // With the check off nothing is verified, so nothing is stamped.
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms).drift(DriftPolicy::Off).apply(&mut conn).unwrap();
        assert_eq!(stamp(&conn, 3), None);
    }

    #[test]
    fn a_tracking_table_of_an_older_release_gets_the_stamp_column_with_its_next_migration() {
        let ms = story();
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms[..2]).apply(&mut conn).unwrap();
        // As an older release left it: no schema_version column.
        conn.execute_batch("ALTER TABLE _migrations DROP COLUMN schema_version;")
            .unwrap();
        assert!(
            Migrator::new(&ms[..2]).apply(&mut conn).unwrap().is_empty(),
            "checked the slow way"
        );
        conn.execute_batch("DROP INDEX recruits_name;").unwrap();
        let e = Migrator::new(&ms[..2]).apply(&mut conn).unwrap_err();
        assert!(e.to_string().contains("index recruits_name removed"), "{e}");
        conn.execute_batch("CREATE INDEX recruits_name ON recruits (name);")
            .unwrap();
        Migrator::new(&ms).apply(&mut conn).unwrap();
        let cookie: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(stamp(&conn, 3), Some(cookie));
    }

    #[test]
    fn drift_is_refused_before_pending_migrations_run() {
        let ms = story();
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms[..2]).apply(&mut conn).unwrap();
        conn.execute_batch("DROP INDEX recruits_name;").unwrap();
        let e = Migrator::new(&ms).apply(&mut conn).unwrap_err();
        assert!(e.to_string().contains("up to 2"), "{e}");
        assert!(
            e.to_string().contains("table recruits: index recruits_name removed"),
            "{e}"
        );
        let notes: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'notes'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(notes, 0, "migration 3 did not run");
    }

    #[test]
    fn another_spelling_of_the_same_schema_and_ignored_tables_are_not_drift() {
        let ms = story();
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms).apply(&mut conn).unwrap();
        // Rebuilt with other spacing and quoting: the fingerprint differs, the model does not.
        conn.execute_batch(
            "CREATE TABLE \"notes_new\"(  id INTEGER   PRIMARY KEY,body TEXT);\
             DROP TABLE notes; ALTER TABLE notes_new RENAME TO notes;\
             CREATE TABLE cache_pages (k, v);",
        )
        .unwrap();
        assert!(
            Migrator::new(&ms).apply(&mut conn).is_err(),
            "cache_pages is drift unless ignored"
        );
        Migrator::new(&ms).ignore(&["cache_*"]).apply(&mut conn).unwrap();
        let e = Migrator::new(&ms).ignore(&["[x"]).apply(&mut conn).unwrap_err();
        assert!(e.to_string().contains("ignore pattern `[x` is not valid"), "{e}");
    }

    #[test]
    fn schema_diff_refuses_what_it_cannot_compare() {
        let ms = story();
        let conn = Connection::open_in_memory().unwrap();
        let m = Migrator::new(&ms);
        let e = m.schema_diff(&conn, &m.filter().unwrap()).unwrap_err();
        assert!(e.to_string().contains("has no tracking table `_migrations`"), "{e}");
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms).apply(&mut conn).unwrap();
        let e = Migrator::new(&ms[..1])
            .schema_diff(&conn, &m.filter().unwrap())
            .unwrap_err();
        assert!(matches!(e, Error::UnknownApplied { .. }), "{e}");
        assert!(m.schema_diff(&conn, &m.filter().unwrap()).unwrap().is_clean());
    }
}
