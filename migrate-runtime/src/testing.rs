//! A migrated database per test (`Migrator::test_db`; PostgreSQL's is in
//! `pg::testing`): the migrations
//! are applied once per process into an in-memory template, and each test
//! gets a copy of it made with SQLite's online backup API (a copy of the
//! template's pages), never a replay.
//!
//! The backup API rather than `sqlite3_serialize`/`sqlite3_deserialize`:
//! rusqlite's `serialize` feature turns on `modern_sqlite` (the bundled
//! SQLite's bindings), which an app linking its system SQLite may not want,
//! and copying a serialized image back without `unsafe` costs an extra
//! copy; `backup` is plain Rust over functions every SQLite has.

#[cfg(feature = "rusqlite")]
use std::collections::HashMap;
#[cfg(feature = "rusqlite")]
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;
#[cfg(feature = "rusqlite")]
use rusqlite::backup::Backup;
use sha2::{Digest, Sha256};

use crate::Migrator;
#[cfg(feature = "rusqlite")]
use crate::{Error, Result};

/// The templates of this process, by [`Migrator::template_key`]: one per
/// migration set, applied once.
#[cfg(feature = "rusqlite")]
type Templates = Mutex<HashMap<[u8; 32], Arc<Mutex<Connection>>>>;

#[cfg(feature = "rusqlite")]
fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(Templates::default)
}

#[cfg(feature = "rusqlite")]
impl Migrator<'_> {
    /// A new in-memory database holding every migration, as [`apply`]
    /// leaves a new database: the schema after the last migration and the
    /// tracking table's rows. For tests: each call returns a database of
    /// its own (a write in one is invisible in the others), and
    /// [`status`](Self::status) or `apply` on it finds nothing pending.
    ///
    /// The migrations are applied once per process, into a template that
    /// each further call copies with SQLite's backup API, so a test pays
    /// for a copy of the pages, not for the migrations. Connection
    /// settings are not copied: turn `foreign_keys` on, register functions,
    /// as the app does on its connections.
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
        let template = self.template()?;
        let template = template.lock().unwrap_or_else(PoisonError::into_inner);
        let mut conn = Connection::open_in_memory().map_err(Error::db("opening an in-memory test database"))?;
        {
            let backup = Backup::new(&template, &mut conn).map_err(Error::db("copying the test template"))?;
            // -1: every page in one step; the template is locked meanwhile.
            backup.step(-1).map_err(Error::db("copying the test template"))?;
        }
        Ok(conn)
    }

    /// This migration set's template, applied now if this process has none.
    fn template(&self) -> Result<Arc<Mutex<Connection>>> {
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
        let mut map = templates().lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(map.entry(key).or_insert_with(|| Arc::new(Mutex::new(conn)))))
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
