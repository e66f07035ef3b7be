//! A migrated PostgreSQL database per test ([`Migrator::test_db_postgres`]):
//! a template database is migrated once, and each test gets a database
//! cloned from it with `CREATE DATABASE … TEMPLATE`, dropped by the
//! [`TestDatabase`] guard.
//!
//! The template is named after the migration set
//! (`migrate_template_<16 hex digits>`), built under a temporary name and
//! renamed when complete, under an advisory lock: test processes running
//! at once build it once, a later run (the same migrations) reuses it, and
//! one interrupted half-way is never taken for a template.

use std::collections::HashSet;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use postgres::{Client, Config, NoTls};

use super::pg;
use crate::history::quote;
use crate::{Migrator, Result};

/// A database of one test, cloned from the migrated template: use it
/// through [`client`](Self::client) (or `*db`, a [`Client`]), or connect
/// more clients with [`config`](Self::config). Dropping it drops the
/// database (`DROP DATABASE … WITH (FORCE)`, PostgreSQL 13 or later), also
/// when the test panics.
pub struct TestDatabase {
    client: Option<Client>,
    name: String,
    config: Config,
    admin: Config,
}

impl TestDatabase {
    /// The connection to the test database.
    pub fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("the client lives as long as the guard")
    }

    /// The test database's name (`migrate_test_…`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection settings of the test database (those of the URL,
    /// with its name), for the app's own clients or pool.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Deref for TestDatabase {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("the client lives as long as the guard")
    }
}

impl DerefMut for TestDatabase {
    fn deref_mut(&mut self) -> &mut Client {
        self.client()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Our own connection first; FORCE ends any the test left open.
        drop(self.client.take());
        let dropped = self.admin.connect(NoTls).and_then(|mut admin| {
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&self.name)))
        });
        if let Err(e) = dropped {
            // Drop cannot fail; a database left behind is worth a line.
            eprintln!(
                "warning: could not drop the test database {}: {}; help: drop it by hand (DROP DATABASE {} WITH (FORCE))",
                self.name,
                super::message_of(&e),
                quote(&self.name)
            );
        }
    }
}

impl Migrator<'_> {
    /// [`test_db`](Self::test_db) on PostgreSQL: a new database on the
    /// server of `url`, holding every migration as
    /// [`apply_postgres`](Self::apply_postgres) leaves a new database.
    /// Each call returns a database of its own, cloned (`CREATE DATABASE
    /// … TEMPLATE`) from a template database that holds the migrations;
    /// the returned guard drops it.
    ///
    /// `url` names a database the user can connect to (`postgres`, say);
    /// the user needs the `CREATEDB` privilege. The template
    /// (`migrate_template_<digest of the migrations>`) is made the first
    /// time and stays on the server for the next run; one is made for
    /// each set of migrations, so drop the old ones now and then. Plain
    /// connections only (no TLS).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migration, Migrator, Script};
    ///
    /// let migrations = [Migration::new(1, "users", Script::new(
    ///     "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
    ///     "migrations/0001_users.sql",
    /// ))];
    /// let mut db = Migrator::new(&migrations).test_db_postgres("postgres://postgres@localhost/postgres")?;
    /// db.execute("INSERT INTO users VALUES (1, 'ada')", &[])?;
    /// // The database is dropped here.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A URL that does not parse or connect, a migration that fails (as
    /// [`apply_postgres`](Self::apply_postgres) reports it), or the server
    /// refusing to create the database ([`Error::Postgres`](crate::Error::Postgres)).
    pub fn test_db_postgres(&self, url: &str) -> Result<TestDatabase> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin: Config = url.parse().map_err(pg("reading the test server's URL"))?;
        let template = self.postgres_template(url, &admin)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "migrate_test_{}_{}_{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = admin.connect(NoTls).map_err(pg("connecting to the test server"))?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote(&name),
                quote(&template)
            ))
            .map_err(pg(format!("creating the test database {name} from {template}")))?;
        let mut config = admin.clone();
        config.dbname(&name);
        let guard = TestDatabase {
            client: None,
            name,
            config,
            admin,
        };
        // From here the guard drops the database, whatever happens.
        let connected = guard.config.connect(NoTls);
        let mut guard = guard;
        guard.client = Some(connected.map_err(pg(format!("connecting to the test database {}", guard.name)))?);
        Ok(guard)
    }

    /// The template database of this migration set on `url`'s server,
    /// made now if it is not there.
    fn postgres_template(&self, url: &str, admin: &Config) -> Result<String> {
        static KNOWN: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
        let key = self.template_key();
        let hex: String = key[..8].iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("migrate_template_{hex}");
        let known = KNOWN.get_or_init(Mutex::default);
        let entry = (url.to_owned(), name.clone());
        if known.lock().unwrap_or_else(PoisonError::into_inner).contains(&entry) {
            return Ok(name);
        }
        let mut client = admin.connect(NoTls).map_err(pg("connecting to the test server"))?;
        let lock_key = i64::from_be_bytes(key[8..16].try_into().expect("8 bytes"));
        client
            .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
            .map_err(pg("locking the test template"))?;
        let made = self.make_template(&mut client, admin, &name);
        // The lock is the session's: released now, or when it ends.
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&lock_key]);
        made?;
        known.lock().unwrap_or_else(PoisonError::into_inner).insert(entry);
        Ok(name)
    }

    /// Makes the template `name` unless it exists: migrated under a
    /// temporary name, renamed when complete.
    fn make_template(&self, client: &mut Client, admin: &Config, name: &str) -> Result<()> {
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .map_err(pg("looking for the test template"))?
            .is_some();
        if exists {
            return Ok(());
        }
        let building = format!("{name}_building");
        let drop_building = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&building));
        client
            .batch_execute(&drop_building)
            .and_then(|()| client.batch_execute(&format!("CREATE DATABASE {}", quote(&building))))
            .map_err(pg(format!("creating the test template {building}")))?;
        let mut config = admin.clone();
        config.dbname(&building);
        let applied = config
            .connect(NoTls)
            .map_err(pg(format!("connecting to the test template {building}")))
            // Every migration: contracts too (Migrator::contract).
            .and_then(|mut template| self.applying_contracts().apply_postgres(&mut template).map(drop));
        if let Err(e) = applied {
            let _ = client.batch_execute(&drop_building);
            return Err(e);
        }
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote(&building),
                quote(name)
            ))
            .map_err(pg(format!("renaming the test template {building} to {name}")))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Migration, Migrator, Script};

    #[test]
    fn a_bad_url_is_an_error() {
        let migrations = [Migration::new(
            1,
            "a",
            Script::new("CREATE TABLE a (x int);", "0001_a.sql"),
        )];
        let e = Migrator::new(&migrations)
            .test_db_postgres("postgres://[::1")
            .unwrap_err();
        assert!(e.to_string().contains("reading the test server's URL"), "{e}");
    }
}
