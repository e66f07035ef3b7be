//! The PostgreSQL backend (feature `postgres`), on the sync `postgres`
//! crate's [`Client`].
//!
//! How a run goes:
//!
//! - The history is first read without a lock (the common start-up with
//!   nothing to do is one round trip).
//! - Each migration then runs in a transaction that first takes the
//!   migration lock, then checks the history (below), runs the script and
//!   records it; PostgreSQL's DDL is transactional, so a failure leaves
//!   nothing of that migration behind.
//! - The lock is `pg_advisory_xact_lock(key)` ([`Lock::Advisory`]), released
//!   by the server at commit or rollback, so no error path can leak it; or
//!   a row of a lock table taken with `SELECT … FOR UPDATE`
//!   ([`Lock::Table`]), for PostgreSQL-compatible servers without advisory
//!   locks. The key is the first 8 bytes (big-endian) of the SHA-256 of the
//!   tracking table's qualified name (`schema.table`), so two apps with
//!   their own tracking tables in one database do not wait for each other.
//! - The history is read under the lock once per run; each later
//!   transaction reads only its summary ([`Postgres::summary_sql`]), in
//!   the round trip that takes the lock, and reads the history again only
//!   when that is not what this run's last recorded migration left.
//! - A transactional script is sent whole, as one simple query (one round
//!   trip however many statements); the server reports an error's position
//!   as a character index in that text, which gives the line. Only when a
//!   statement fails without a position (a constraint violated while it
//!   runs), the script is run again one statement at a time inside a
//!   savepoint, to find which one: a cost paid only on failure.
//! - A `-- migrate:no-transaction` script runs one statement at a time in
//!   autocommit (a multi-statement query string runs in one implicit
//!   transaction, where `CREATE INDEX CONCURRENTLY` is refused), under the
//!   session-level `pg_advisory_lock(key)`, released on every path.
//!   PostgreSQL's manual ("Advisory Lock Functions") says a session that
//!   holds an advisory lock gets it again at once, at session or
//!   transaction level, which lets the run keep the lock from the
//!   transaction before the script to the one that records it.

use std::time::{Duration, Instant};

use client::{PgClient, PgError};
use postgres::Client;
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::history::quote;
use crate::sql::{Statement, line_at};
use crate::{Applied, Direction, Error, Event, Lock, Migration, Migrator, Notice, Report, Result, Script, Status};

use crate::pgsql::{self as split, statements};

impl<'m> Migrator<'m> {
    /// [`apply`](Self::apply) on PostgreSQL: applies every pending
    /// migration, each in its own transaction together with its tracking
    /// row (or all in one with [`grouped`](Self::grouped)), under the
    /// migration lock ([`lock`](Self::lock)), in the tracking table of
    /// [`schema`](Self::schema) when one is set.
    ///
    /// The connection is usable afterwards, whatever happened: no
    /// transaction is left open and no lock is kept.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply); a failing statement is an [`Error::Sql`]
    /// with the file, the line and the server's message, detail and hint;
    /// other server errors are [`Error::Postgres`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migration, Migrator, Script, postgres::{Client, NoTls}};
    ///
    /// let migrations = [Migration::new(1, "create_users", Script::new(
    ///     "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
    ///     "migrations/0001_create_users.sql",
    /// ))];
    /// let mut client = Client::connect("postgres://app@localhost/app", NoTls)?;
    /// let report = Migrator::new(&migrations).apply_postgres(&mut client)?;
    /// print!("{report}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_postgres(&self, client: &mut Client) -> Result<Report> {
        crate::ready::now(self.run_postgres(client, None))
    }

    /// [`migrate_to`](Self::migrate_to) on PostgreSQL: up or down to
    /// `target` (`0`: everything rolled back).
    ///
    /// # Errors
    ///
    /// As [`apply_postgres`](Self::apply_postgres) and
    /// [`migrate_to`](Self::migrate_to).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use migrate_runtime::{Migrator, postgres::{Client, NoTls}};
    /// # let migrations = [];
    /// let mut client = Client::connect("host=/run/postgresql dbname=app", NoTls)?;
    /// Migrator::new(&migrations).migrate_to_postgres(&mut client, 0)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate_to_postgres(&self, client: &mut Client, target: u64) -> Result<Report> {
        self.check_target(target)?;
        crate::ready::now(self.run_postgres(client, Some(target)))
    }

    /// [`status`](Self::status) on PostgreSQL. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the tracking table cannot be read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use migrate_runtime::{Migrator, postgres::{Client, NoTls}};
    /// # let migrations = [];
    /// let mut client = Client::connect("host=/run/postgresql dbname=app", NoTls)?;
    /// let status = Migrator::new(&migrations).status_postgres(&mut client)?;
    /// println!("{} pending", status.pending().count());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status_postgres(&self, client: &mut Client) -> Result<Status<'m>> {
        crate::ready::now(self.status_pg(client))
    }

    /// [`pending`](Self::pending) on PostgreSQL. Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`apply_postgres`](Self::apply_postgres)'s checks.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use migrate_runtime::{Migrator, postgres::{Client, NoTls}};
    /// # let migrations = [];
    /// let mut client = Client::connect("host=/run/postgresql dbname=app", NoTls)?;
    /// let pending = Migrator::new(&migrations).pending_postgres(&mut client)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending_postgres(&self, client: &mut Client) -> Result<Vec<&'m Migration>> {
        crate::ready::now(self.pending_pg(client))
    }

    /// [`forget_history_digest`](Self::forget_history_digest) on
    /// PostgreSQL, on a client or in the caller's transaction: for a tool
    /// that rewrites a tracking row in place (`cargo migrate repair`), so
    /// that the next start-up reads and verifies every row again.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the table cannot be written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use migrate_runtime::{Migrator, postgres::{Client, NoTls}};
    /// # let migrations = [];
    /// let mut client = Client::connect("host=/run/postgresql dbname=app", NoTls)?;
    /// let mut tx = client.transaction()?;
    /// // … rewrite a row's checksum …
    /// Migrator::new(&migrations).forget_history_digest_postgres(&mut tx)?;
    /// tx.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget_history_digest_postgres(&self, client: &mut impl postgres::GenericClient) -> Result<()> {
        let table = self.qualified_table();
        let column = session::DIGEST_COLUMN;
        client
            .batch_execute(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} bytea;\n\
                 UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL"
            ))
            .map_err(pg(format!("clearing the history digests in {table}")))
    }

    /// [`apply_postgres`](Self::apply_postgres) on the async
    /// `tokio-postgres` driver (feature `tokio-postgres`): the same
    /// backend, rules, lock and errors; it awaits the server instead of
    /// blocking the thread, and pauses between lock tries with tokio's
    /// timer. The connection's `Connection` half must be running (spawned),
    /// as always with tokio-postgres.
    ///
    /// The future borrows the migrator, whose observer
    /// ([`on_event`](Self::on_event)) need not be `Send`: await it where it
    /// is made (as in `main` at start-up).
    ///
    /// # Errors
    ///
    /// As [`apply_postgres`](Self::apply_postgres).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migration, Migrator, Script, tokio_postgres::NoTls};
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// let migrations = [Migration::new(1, "create_users", Script::new(
    ///     "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
    ///     "migrations/0001_create_users.sql",
    /// ))];
    /// let (mut client, connection) =
    ///     migrate_runtime::tokio_postgres::connect("postgres://app@localhost/app", NoTls).await?;
    /// tokio::spawn(connection);
    /// let report = Migrator::new(&migrations).apply_tokio_postgres(&mut client).await?;
    /// print!("{report}");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio-postgres")]
    pub async fn apply_tokio_postgres(&self, client: &mut tokio_postgres::Client) -> Result<Report> {
        self.run_postgres(client, None).await
    }

    /// [`migrate_to_postgres`](Self::migrate_to_postgres) on the async
    /// driver (feature `tokio-postgres`).
    ///
    /// # Errors
    ///
    /// As [`migrate_to_postgres`](Self::migrate_to_postgres).
    #[cfg(feature = "tokio-postgres")]
    pub async fn migrate_to_tokio_postgres(&self, client: &mut tokio_postgres::Client, target: u64) -> Result<Report> {
        self.check_target(target)?;
        self.run_postgres(client, Some(target)).await
    }

    /// [`status_postgres`](Self::status_postgres) on the async driver
    /// (feature `tokio-postgres`). Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`status_postgres`](Self::status_postgres).
    #[cfg(feature = "tokio-postgres")]
    pub async fn status_tokio_postgres(&self, client: &mut tokio_postgres::Client) -> Result<Status<'m>> {
        self.status_pg(client).await
    }

    /// [`pending_postgres`](Self::pending_postgres) on the async driver
    /// (feature `tokio-postgres`). Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`pending_postgres`](Self::pending_postgres).
    #[cfg(feature = "tokio-postgres")]
    pub async fn pending_tokio_postgres(&self, client: &mut tokio_postgres::Client) -> Result<Vec<&'m Migration>> {
        self.pending_pg(client).await
    }

    /// The one implementation of `status` on either driver.
    async fn status_pg(&self, client: &mut impl PgClient) -> Result<Status<'m>> {
        self.check_set()?;
        let mut db = Postgres::new(client, self)?;
        let history = db.read(self).await?;
        let mut status = self.status_of(&history);
        status.invalid_indexes = std::mem::take(&mut db.invalid);
        Ok(status)
    }

    /// The one implementation of `pending` on either driver.
    async fn pending_pg(&self, client: &mut impl PgClient) -> Result<Vec<&'m Migration>> {
        self.check_set()?;
        let history = Postgres::new(client, self)?.read(self).await?;
        Ok(self.plan(&history, None)?.into_iter().map(|p| p.migration).collect())
    }

    /// The one implementation of `apply` and `migrate_to` on either
    /// driver: first the downgrade ([`allow_downgrade`](Self::allow_downgrade)).
    async fn run_postgres(&self, client: &mut impl PgClient, target: Option<u64>) -> Result<Report> {
        if !self.allow_downgrade {
            return self.run_postgres_plain(client, target).await;
        }
        self.check_set()?;
        let report = self.downgrade_pg(client).await?;
        Ok(report.then(self.run_postgres_plain(client, target).await?))
    }

    /// [`run_postgres`](Self::run_postgres) without the downgrade.
    async fn run_postgres_plain(&self, client: &mut impl PgClient, target: Option<u64>) -> Result<Report> {
        self.check_set()?;
        let mut db = Postgres::new(client, self)?;
        db.try_exact = target.is_none();
        let history = db.read(self).await?;
        if !db.invalid.is_empty() {
            self.notify(Event::InvalidIndexes { indexes: &db.invalid });
        }
        if db.history_exact {
            // Every migration applied, exactly as the code has them.
            db.check_schema_at(self, self.migrations.last().map(Migration::version), true)
                .await?;
            return Ok(Report::default());
        }
        if !self.needs_lock(&history, target)? {
            db.check_schema(self, &history, true).await?;
            return self.idle_report(&history, target);
        }
        let mut report = Report::default();
        let result = match db.enter().await {
            Ok(()) => match self.run_locked(&mut db, target, &mut report).await {
                Ok(()) if report.steps.is_empty() => Ok(()),
                Ok(()) => db.record_schema(self, &mut report.waited).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let restored = db.leave().await;
        result.and(restored).map(|()| report)
    }
}

/// SQLSTATEs this module tells apart (PostgreSQL's manual, "PostgreSQL
/// Error Codes").
mod sqlstate {
    pub(super) const UNDEFINED_TABLE: &str = "42P01";
    pub(super) const INVALID_SCHEMA_NAME: &str = "3F000";
    pub(super) const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub(super) const UNIQUE_VIOLATION: &str = "23505";
    pub(super) const DUPLICATE_TABLE: &str = "42P07";
    pub(super) const DUPLICATE_SCHEMA: &str = "42P06";
    pub(super) const UNDEFINED_COLUMN: &str = "42703";
    pub(super) const INSUFFICIENT_PRIVILEGE: &str = "42501";
}

/// The SQLSTATE of a server error.
fn state(e: &PgError) -> Option<&str> {
    e.code()
}

/// The server's message with its detail and hint, one line.
pub(crate) fn message_of(e: &tokio_postgres::Error) -> String {
    server_message(client::server_of_tokio(e)).unwrap_or_else(|| e.to_string())
}

/// [`message_of`] for sqlx's error (feature `sqlx`).
#[cfg(feature = "sqlx")]
pub(crate) fn sqlx_message_of(e: &sqlx::Error) -> Option<String> {
    server_message(client::server_of_sqlx(e))
}

/// [`message_of`] for either driver's error.
fn message_of_any(e: &PgError) -> String {
    server_message(e.server()).unwrap_or_else(|| e.to_string())
}

/// A server error's message, SQLSTATE, detail and hint, one line.
fn server_message(server: Option<client::ServerError<'_>>) -> Option<String> {
    let db = server?;
    let mut text = format!("{} (SQLSTATE {})", db.message, db.code);
    if let Some(detail) = db.detail {
        text.push_str(&format!("; detail: {}", one_line(detail)));
    }
    if let Some(hint) = db.hint {
        text.push_str(&format!("; server hint: {}", one_line(hint)));
    }
    Some(text)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn pg<E: Into<PgError>>(doing: impl Into<String>) -> impl FnOnce(E) -> Error {
    let doing = doing.into();
    move |cause| cause.into().into_error(doing)
}

/// A quoted SQL string literal (standard-conforming: only `'` is special;
/// the `E` form would also need backslashes doubled, and is not used).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A duration in whole milliseconds, at least 1 (PostgreSQL reads
/// `lock_timeout = 0` as "no timeout").
fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

/// The advisory-lock key of a tracking table: the first 8 bytes of the
/// SHA-256 of its qualified name, big-endian.
pub(crate) fn lock_key(qualified: &str) -> i64 {
    let digest = Sha256::digest(qualified.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The PostgreSQL [`Backend`]: the client, the tracking table's names, and
/// whether a transaction is open.
pub(crate) struct Postgres<'c, C: PgClient = Client> {
    client: &'c mut C,
    /// `"schema"."table"`, or `"table"` when no schema is set.
    table: String,
    /// The lock table (`Lock::Table`): `"schema"."table_lock"`.
    lock_table: String,
    /// The head table (see [`session::HEAD_SUFFIX`]):
    /// `"schema"."table_head"`.
    head_table: String,
    /// Whether `startup_stats` were read from the head table (then the
    /// start-up that finds the schema unchanged keeps them there).
    stats_in_head: bool,
    /// This session, as the lock table's lease names it:
    /// `pid/backend_start` (`Lock::Table`).
    me: String,
    /// INVALID indexes in the migrations' schemas, found by the first
    /// read of the history.
    invalid: Vec<String>,
    /// Whether the first read may answer "exactly the code's history"
    /// from the digest instead of reading the rows: only for the start-up
    /// of an `apply` (status, pending and `migrate_to` need the rows).
    try_exact: bool,
    /// Whether the first read found the history to be exactly the code's
    /// by the newest row's digest (then it read no rows).
    history_exact: bool,
    /// The catalogs' statistics as recorded with the code's newest version
    /// and as they are now, read by the first read when it found the
    /// history exact (for the start-up drift check).
    startup_stats: Option<(Option<String>, String)>,
    /// [`Migrator::table_lock_timeout`].
    table_lock: Option<(Duration, u32)>,
    /// The schema, when one is set.
    schema: Option<String>,
    lock: Lock,
    /// The advisory-lock key, computed at the first lock.
    key: Option<i64>,
    /// [`Migrator::store_down`]: the tracking table keeps down scripts.
    store_down: bool,
    in_transaction: bool,
    /// Whether this run made sure the tracking table exists (then the
    /// lock's round trip also reads the history's [`summary`](Postgres::summary_sql)).
    tracked: bool,
    /// The history's summary as last read in the open transaction: by the
    /// statement that took the lock, then by the one that recorded a
    /// migration. `None`: not read (the history is then read again).
    summary: Option<Vec<Option<String>>>,
    /// Whether the last script's round trip also recorded it (see
    /// [`run_whole`](Postgres::run_whole)): its `record` has nothing left
    /// to do.
    recorded: bool,
    /// [`Migrator::notices_from`]'s forwarder.
    notices: Option<notice::NoticeForwarder>,
    /// The connection's `search_path` before the run, restored after it.
    search_path: Option<String>,
}

fn sql_error(
    m: &Migration,
    direction: Direction,
    script: &Script,
    line: usize,
    statement: String,
    e: &PgError,
    rolled_back: bool,
) -> Error {
    Error::Sql {
        direction,
        version: m.version(),
        name: m.name().to_owned(),
        file: script.file().to_owned(),
        line,
        statement,
        message: message_of_any(e),
        code: None,
        rolled_back,
    }
}

mod adopt;
mod backend;
mod backfill;
pub(crate) mod client;
mod downgrade;
mod drift;
pub(crate) mod notice;
#[cfg(feature = "sqlx")]
mod on_sqlx;
pub(crate) mod scratch;
mod session;
mod testing;
pub use testing::TestDatabase;

#[cfg(feature = "tokio-postgres")]
pub use notice::NoticeForwarder;
pub use notice::forward_notices;

#[cfg(test)]
mod tests;
