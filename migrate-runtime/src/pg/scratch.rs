//! Throw-away databases on a PostgreSQL server, for replays: the build's
//! check (`MIGRATE_CHECK_DATABASE_URL`) and `cargo migrate diff`/`schema`
//! replay migrations into one and compare catalogs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, Config, NoTls};

use crate::{Error, Result};

/// Scratch databases older than this are a killed process's: dropped.
const STALE_SECS: u64 = 3600;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database created on a PostgreSQL server for a replay, with a
/// connection to it; dropped (`DROP DATABASE … WITH (FORCE)`) when this
/// value is, whatever happened. It is named `{prefix}{epoch seconds}_{pid}_{n}`;
/// creating one also drops the scratch databases with the same prefix that
/// processes killed an hour ago or more left behind.
///
/// The role needs `CREATEDB`.
///
/// # Examples
///
/// ```no_run
/// use migrate_runtime::ScratchDatabase;
/// let server: migrate_runtime::postgres::Config = "postgres://admin@localhost/postgres".parse()?;
/// let mut scratch = ScratchDatabase::create(&server, "myapp_scratch_")?;
/// scratch.client().batch_execute("CREATE TABLE t (x int)")?;
/// drop(scratch); // the database is gone
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ScratchDatabase {
    admin: Client,
    name: String,
    client: Option<Client>,
}

impl std::fmt::Debug for ScratchDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn pg(doing: String) -> impl FnOnce(postgres::Error) -> Error {
    move |cause| Error::Postgres { doing, cause }
}

impl ScratchDatabase {
    /// Creates a database with a new name starting with `prefix` (lower
    /// case letters, digits and `_`) on the server `server` points at
    /// (connecting as its user, to its database), and connects to it.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the server cannot be reached, the database
    /// cannot be created (no `CREATEDB`), or connected to.
    pub fn create(server: &Config, prefix: &str) -> Result<Self> {
        let mut admin = server
            .connect(NoTls)
            .map_err(pg("connecting to the server for a scratch database".to_owned()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        drop_stale(&mut admin, prefix, now);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{now}_{}_{n}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(pg(format!("creating the scratch database {name}")))?;
        let mut scratch = Self {
            admin,
            name,
            client: None,
        };
        let client = server
            .clone()
            .dbname(&scratch.name)
            .connect(NoTls)
            .map_err(pg(format!("connecting to the scratch database {}", scratch.name)))?;
        scratch.client = Some(client);
        Ok(scratch)
    }

    /// The connection to the scratch database.
    pub fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("connected in create")
    }

    /// The scratch database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        drop(self.client.take());
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
    }
}

/// Drops the scratch databases of processes that started an hour ago or
/// more and did not drop theirs (killed).
fn drop_stale(admin: &mut Client, prefix: &str, now: u64) {
    let Ok(rows) = admin.query(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname::text, $1)",
        &[&prefix],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix(prefix)
            .and_then(|r| r.split('_').next())
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| now.saturating_sub(t) >= STALE_SECS) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}
