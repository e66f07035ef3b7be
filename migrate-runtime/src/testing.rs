//! A migrated database per test (`Migrator::test_db`; PostgreSQL's is in
//! `pg::testing`): the migrations
//! are applied once per process into an in-memory template, and each test
//! gets a copy of it, never a replay.
//!
//! The copy is the template's database image, serialized once and handed
//! to each new connection with `sqlite3_deserialize`: one `memcpy`, and
//! SQLite reads only the pages a test touches. The online backup API,
//! which writes every page through the new connection's page cache, cost
//! 8.4 M instructions per copy at 1,000 tables, 29 % of a `test_db()` and
//! its first query (callgrind). rusqlite binds `sqlite3_deserialize` only
//! with its `modern_sqlite` bindings (our `bundled`, `modern-sqlite` and
//! `sqlx` turn them on); with an older system SQLite's bindings the copy
//! is made with the backup API.

#[cfg(feature = "rusqlite")]
use std::collections::HashMap;
#[cfg(feature = "rusqlite")]
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::Migrator;
#[cfg(feature = "rusqlite")]
use crate::{Error, Result};

/// The templates of this process, by [`Migrator::template_key`]: one per
/// migration set, applied once.
#[cfg(feature = "rusqlite")]
type Templates = Mutex<HashMap<[u8; 32], Arc<Template>>>;

#[cfg(feature = "rusqlite")]
fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(Templates::default)
}

/// A migrated template: its database image, which tests copy at once
/// without a lock.
#[cfg(all(feature = "rusqlite", any(feature = "modern-sqlite", feature = "sqlx")))]
struct Template(Vec<u8>);

#[cfg(all(feature = "rusqlite", any(feature = "modern-sqlite", feature = "sqlx")))]
impl Template {
    fn new(conn: Connection) -> Result<Self> {
        let image = conn
            .serialize(rusqlite::MAIN_DB)
            .map_err(Error::db("serializing the test template"))?;
        Ok(Self(image.to_vec()))
    }

    /// A new in-memory database holding a copy of the template's image.
    /// `sqlite3_deserialize` gives it SQLite's in-memory file (`memdb`),
    /// growable and freed on close, with its journal kept in memory as a
    /// `:memory:` database keeps it (tested).
    fn copy(&self) -> Result<Connection> {
        let mut conn = Connection::open_in_memory().map_err(Error::db("opening an in-memory test database"))?;
        conn.deserialize_read_exact(rusqlite::MAIN_DB, self.0.as_slice(), self.0.len(), false)
            .map_err(Error::db("copying the test template"))?;
        Ok(conn)
    }
}

/// A migrated template: the template's connection, copied page by page
/// with the backup API, under its lock.
#[cfg(all(feature = "rusqlite", not(any(feature = "modern-sqlite", feature = "sqlx"))))]
struct Template(Mutex<Connection>);

#[cfg(all(feature = "rusqlite", not(any(feature = "modern-sqlite", feature = "sqlx"))))]
impl Template {
    fn new(conn: Connection) -> Result<Self> {
        Ok(Self(Mutex::new(conn)))
    }

    /// A new in-memory database holding a copy of the template's pages.
    fn copy(&self) -> Result<Connection> {
        let template = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut conn = Connection::open_in_memory().map_err(Error::db("opening an in-memory test database"))?;
        {
            let backup =
                rusqlite::backup::Backup::new(&template, &mut conn).map_err(Error::db("copying the test template"))?;
            // -1: every page in one step; the template is locked meanwhile.
            backup.step(-1).map_err(Error::db("copying the test template"))?;
        }
        Ok(conn)
    }
}

#[cfg(feature = "rusqlite")]
impl Migrator<'_> {
    /// A new in-memory database holding every migration, as [`apply`]
    /// leaves a new database: the schema after the last migration and the
    /// tracking table's rows. For tests: each call returns a database of
    /// its own (a write in one is invisible in the others), and
    /// [`status`](Self::status) or `apply` on it finds nothing pending.
    ///
    /// The migrations are applied once per process, into a template whose
    /// database image each further call copies (`sqlite3_deserialize`),
    /// so a test pays for a copy of the bytes, not for the migrations.
    /// Like any database in SQLite's memory file, a copy grows to at most
    /// 1 GiB (`SQLITE_MEMDB_DEFAULT_MAXSIZE`). Connection settings are not
    /// copied: turn `foreign_keys` on, register functions, as the app does
    /// on its connections.
    ///
    /// The generated module's `test_db()` calls this with the package's
    /// settings.
    ///
    /// [`apply`]: Self::apply
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script};
    ///
    /// let migrations = [Migration::new(1, "users", Script::new(
    ///     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    ///     "migrations/0001_users.sql",
    /// ))];
    /// let migrator = Migrator::new(&migrations);
    /// let a = migrator.test_db()?;
    /// let b = migrator.test_db()?;
    /// a.execute("INSERT INTO users (name) VALUES ('ada')", [])?;
    /// let count = |c: &migrate_runtime::rusqlite::Connection| {
    ///     c.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
    /// };
    /// assert_eq!((count(&a)?, count(&b)?), (1, 0));
    /// assert!(migrator.pending(&b)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A migration that fails (as [`apply`] reports it; the next call
    /// tries again), or SQLite failing to open or copy an in-memory
    /// database.
    pub fn test_db(&self) -> Result<Connection> {
        self.template()?.copy()
    }

    /// This migration set's template, applied now if this process has none.
    fn template(&self) -> Result<Arc<Template>> {
        let key = self.template_key();
        if let Some(found) = templates().lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(Arc::clone(found));
        }
        // Applied outside the map's lock, so tests of other migration sets
        // do not wait; two threads may both apply, and the first one kept
        // wins (the same migrations give the same database).
        let mut conn = Connection::open_in_memory().map_err(Error::db("opening the in-memory test template"))?;
        // Every migration: contracts too (Migrator::contract).
        self.applying_contracts().apply(&mut conn)?;
        let template = Template::new(conn)?;
        let mut map = templates().lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(map.entry(key).or_insert_with(|| Arc::new(template))))
    }
}

impl Migrator<'_> {
    /// What makes two test templates the same database: the tracking
    /// table, the schema and the history's digest (every migration's
    /// version, name and checksum of the up script, the only one applied;
    /// the build's digest when the generated module carries it). Hashing
    /// the migrations themselves here cost every `test_db` call 2.7 M
    /// instructions at 1,000 migrations, a quarter of the call
    /// (callgrind).
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub(crate) fn template_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.table.name.as_bytes());
        hasher.update([0]);
        if let Some(schema) = &self.schema {
            hasher.update(schema.as_bytes());
        }
        hasher.update([0]);
        hasher.update(self.code_digest());
        hasher.finalize().into()
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use crate::{Migration, Migrator, Script};

    fn set() -> Vec<Migration> {
        vec![
            Migration::new(1, "a", Script::new("CREATE TABLE a (x);", "0001_a.sql")),
            Migration::new(
                2,
                "b",
                Script::new("CREATE TABLE b (y); INSERT INTO b VALUES (1);", "0002_b.sql"),
            ),
        ]
    }

    #[test]
    fn copies_are_independent_and_fully_migrated() {
        let migrations = set();
        let migrator = Migrator::new(&migrations);
        let one = migrator.test_db().unwrap();
        one.execute_batch("INSERT INTO a VALUES (1); DROP TABLE b;").unwrap();
        let two = migrator.test_db().unwrap();
        let count = |table: &str| two.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0));
        assert_eq!(count("a").unwrap(), 0);
        assert_eq!(count("b").unwrap(), 1, "rows the migrations insert are there");
        let status = migrator.status(&two).unwrap();
        assert!(status.pending().next().is_none());
        assert!(status.entries.iter().all(|e| e.applied.is_some()));
        assert_eq!(status.entries.len(), 2);
    }

    #[test]
    fn a_copy_keeps_its_journal_in_memory_rolls_back_and_grows() {
        let migrations = set();
        let mut db = Migrator::new(&migrations).test_db().unwrap();
        let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "memory");
        let count = |db: &rusqlite::Connection| db.query_row("SELECT count(*) FROM a", [], |r| r.get::<_, i64>(0));
        // Far more than the template's pages: the copy must grow.
        let fill = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
                    INSERT INTO a SELECT randomblob(1000) FROM n;";
        let tx = db.transaction().unwrap();
        tx.execute_batch(fill).unwrap();
        tx.rollback().unwrap();
        assert_eq!(count(&db).unwrap(), 0);
        db.execute_batch(fill).unwrap();
        assert_eq!(count(&db).unwrap(), 5000);
        assert_eq!(
            db.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "ok"
        );
        assert_eq!(count(&Migrator::new(&migrations).test_db().unwrap()).unwrap(), 0);
    }

    #[test]
    fn another_set_gets_another_template() {
        let migrations = set();
        let fewer = &migrations[..1];
        let db = Migrator::new(fewer).test_db().unwrap();
        assert!(db.prepare("SELECT * FROM b").is_err());
        assert_ne!(
            Migrator::new(fewer).template_key(),
            Migrator::new(&migrations).template_key()
        );
        assert_ne!(
            Migrator::new(&migrations).table("other").template_key(),
            Migrator::new(&migrations).template_key()
        );
    }

    #[test]
    fn a_failing_migration_is_an_error_every_time() {
        let migrations = [Migration::new(1, "bad", Script::new("CREATE TABLE;", "0001_bad.sql"))];
        for _ in 0..2 {
            let e = Migrator::new(&migrations).test_db().unwrap_err();
            assert!(e.to_string().contains("0001_bad.sql"), "{e}");
        }
    }
}
