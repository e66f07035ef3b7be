//! The PostgreSQL backend (feature `postgres`), on the sync `postgres`
//! crate's [`Client`].
//!
//! How a run goes:
//!
//! - The history is first read without a lock (the common start-up with
//!   nothing to do is one round trip).
//! - Each migration then runs in a transaction that first takes the
//!   migration lock, then reads the history, runs the script and records
//!   it; PostgreSQL's DDL is transactional, so a failure leaves nothing of
//!   that migration behind.
//! - The lock is `pg_advisory_xact_lock(key)` ([`Lock::Advisory`]), released
//!   by the server at commit or rollback, so no error path can leak it; or
//!   a row of a lock table taken with `SELECT … FOR UPDATE`
//!   ([`Lock::Table`]), for PostgreSQL-compatible servers without advisory
//!   locks. The key is the first 8 bytes (big-endian) of the SHA-256 of the
//!   tracking table's qualified name (`schema.table`), so two apps with
//!   their own tracking tables in one database do not wait for each other.
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

use postgres::{Client, SimpleQueryMessage};
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::history::quote;
use crate::sql::{Statement, line_at};
use crate::{Applied, Direction, Error, Event, Lock, Migration, Migrator, Report, Result, Script, Status};

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
        self.run_postgres(client, None)
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
        self.run_postgres(client, Some(target))
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
        self.check_set()?;
        let mut db = Postgres::new(client, self)?;
        let history = db.read(self)?;
        let mut status = self.status_of(&history);
        status.invalid_indexes = std::mem::take(&mut db.invalid);
        Ok(status)
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
        self.check_set()?;
        let history = Postgres::new(client, self)?.read(self)?;
        Ok(self.plan(&history, None)?.into_iter().map(|p| p.migration).collect())
    }

    fn run_postgres(&self, client: &mut Client, target: Option<u64>) -> Result<Report> {
        self.check_set()?;
        let mut db = Postgres::new(client, self)?;
        let history = db.read(self)?;
        if !db.invalid.is_empty() {
            self.notify(Event::InvalidIndexes { indexes: &db.invalid });
        }
        if !self.needs_lock(&history, target)? {
            return Ok(Report::default());
        }
        let mut report = Report::default();
        let result = db.enter().and_then(|()| self.run_locked(&mut db, target, &mut report));
        let restored = db.leave();
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
}

/// The SQLSTATE of a server error.
fn state(e: &postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

/// The server's message with its detail and hint, one line.
pub(crate) fn message_of(e: &postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; detail: {}", one_line(detail)));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; server hint: {}", one_line(hint)));
    }
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn pg(doing: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let doing = doing.into();
    move |cause| Error::Postgres { doing, cause }
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
pub(crate) struct Postgres<'c> {
    client: &'c mut Client,
    /// `"schema"."table"`, or `"table"` when no schema is set.
    table: String,
    /// The lock table (`Lock::Table`): `"schema"."table_lock"`.
    lock_table: String,
    /// This session, as the lock table's lease names it:
    /// `pid/backend_start` (`Lock::Table`).
    me: String,
    /// INVALID indexes in the migrations' schemas, found by the first
    /// read of the history.
    invalid: Vec<String>,
    /// [`Migrator::table_lock_timeout`].
    table_lock: Option<(Duration, u32)>,
    /// The schema, when one is set.
    schema: Option<String>,
    lock: Lock,
    /// The advisory-lock key, computed at the first lock.
    key: Option<i64>,
    in_transaction: bool,
    /// The connection's `search_path` before the run, restored after it.
    search_path: Option<String>,
}

impl<'c> Postgres<'c> {
    fn new(client: &'c mut Client, migrator: &Migrator<'_>) -> Result<Self> {
        let schema = migrator.schema.clone();
        let prefix = schema.as_deref().map(|s| format!("{}.", quote(s))).unwrap_or_default();
        Ok(Self {
            client,
            table: format!("{prefix}{}", quote(&migrator.table.name)),
            lock_table: format!("{prefix}{}", quote(&format!("{}_lock", migrator.table.name))),
            me: String::new(),
            invalid: Vec::new(),
            table_lock: migrator.table_lock_timeout,
            schema,
            lock: migrator.lock,
            key: None,
            in_transaction: false,
            search_path: None,
        })
    }

    /// The INVALID indexes in the migrations' schemas (the schema, or the
    /// connection's `search_path`).
    fn invalid_indexes_sql(&self) -> String {
        let scope = match &self.schema {
            Some(schema) => format!("n.nspname = {}", literal(schema)),
            None => "n.nspname = ANY (current_schemas(false))".to_owned(),
        };
        format!(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid AND {scope} ORDER BY 1"
        )
    }

    /// Runs `sql` (several statements) as one simple query, returning the
    /// rows' text of each statement that returns rows.
    fn query_sets(&mut self, sql: &str) -> std::result::Result<Vec<Vec<Vec<Option<String>>>>, postgres::Error> {
        let mut sets = Vec::new();
        let mut rows = Vec::new();
        for message in self.client.simple_query(sql)? {
            match message {
                SimpleQueryMessage::Row(row) => {
                    rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
                }
                SimpleQueryMessage::CommandComplete(_) => sets.push(std::mem::take(&mut rows)),
                _ => {}
            }
        }
        Ok(sets)
    }

    /// Runs `sql` as one simple query, returning the rows' text.
    fn query(&mut self, sql: &str) -> std::result::Result<Vec<Vec<Option<String>>>, postgres::Error> {
        let mut rows = Vec::new();
        for message in self.client.simple_query(sql)? {
            if let SimpleQueryMessage::Row(row) = message {
                rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
            }
        }
        Ok(rows)
    }

    /// Before the locked part of a run: the schema's `search_path`, and
    /// the lock table.
    fn enter(&mut self) -> Result<()> {
        if let Some(schema) = self.schema.clone() {
            let rows = self.query("SHOW search_path").map_err(pg("reading search_path"))?;
            let old = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            let new = if old.is_empty() {
                quote(&schema)
            } else {
                format!("{}, {old}", quote(&schema))
            };
            self.query(&format!("SELECT set_config('search_path', {}, false)", literal(&new)))
                .map_err(pg(format!("setting search_path to schema `{schema}`")))?;
            self.search_path = Some(old);
        }
        if self.lock == Lock::Table {
            self.create_lock_table()?;
            let rows = self
                .query(
                    "SELECT pg_backend_pid()::text || '/' || coalesce((SELECT backend_start::text \
                     FROM pg_stat_activity WHERE pid = pg_backend_pid()), '')",
                )
                .map_err(pg("reading the session's id"))?;
            self.me = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
        }
        Ok(())
    }

    /// After the locked part: no transaction, no session lock, the old
    /// `search_path`.
    fn leave(&mut self) -> Result<()> {
        let ended = self.rollback();
        let restored = match self.search_path.take() {
            Some(old) => self
                .query(&format!("SELECT set_config('search_path', {}, false)", literal(&old)))
                .map(drop)
                .map_err(pg("restoring search_path")),
            None => Ok(()),
        };
        ended.and(restored)
    }

    fn create_schema_sql(&self) -> String {
        self.schema
            .as_deref()
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote(s)))
            .unwrap_or_default()
    }

    /// The lock table and its one row, in autocommit. Two processes
    /// creating it at once can collide in the catalog (`IF NOT EXISTS` is
    /// not atomic), so that is retried.
    fn create_lock_table(&mut self) -> Result<()> {
        let sql = format!(
            "{}CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, holder text, since timestamptz);\n\
             INSERT INTO {} (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
            self.create_schema_sql(),
            self.lock_table,
            self.lock_table
        );
        let mut tries = 0;
        loop {
            match self.query(&sql) {
                Ok(_) => return Ok(()),
                Err(e)
                    if tries < 5
                        && matches!(
                            state(&e),
                            Some(sqlstate::UNIQUE_VIOLATION | sqlstate::DUPLICATE_TABLE | sqlstate::DUPLICATE_SCHEMA)
                        ) =>
                {
                    tries += 1;
                }
                Err(e) => return Err(pg(format!("creating the lock table {}", self.lock_table))(e)),
            }
        }
    }

    /// The advisory-lock key: from the qualified tracking table, the
    /// schema being `current_schema()` when none is set.
    fn key(&mut self, migrator: &Migrator<'_>) -> Result<i64> {
        if let Some(key) = self.key {
            return Ok(key);
        }
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let rows = self
                    .query("SELECT coalesce(current_schema(), 'public')")
                    .map_err(pg("reading current_schema()"))?;
                rows.first()
                    .and_then(|r| r.first().cloned().flatten())
                    .unwrap_or_default()
            }
        };
        let key = lock_key(&format!("{schema}.{}", migrator.table.name));
        self.key = Some(key);
        Ok(key)
    }

    /// The statement that takes the lock (`wait`: up to lock_timeout;
    /// else at once or not at all). Its row, when it got the lock: `t`,
    /// and whether the lease of [`Lock::Table`] is held by another session
    /// that still exists (`t`/`f`). No row, or `f` first: not got.
    fn lock_sql(&self, key: i64, wait: bool) -> String {
        match (self.lock, wait) {
            (Lock::Advisory, false) => format!("SELECT pg_try_advisory_xact_lock({key}), false"),
            (Lock::Advisory, true) => {
                format!("SELECT true, false FROM (SELECT pg_advisory_xact_lock({key})) AS locked")
            }
            (Lock::Table, wait) => format!(
                "SELECT true, l.holder IS NOT NULL AND l.holder <> {me} AND EXISTS (\
                 SELECT 1 FROM pg_stat_activity a WHERE a.pid::text = split_part(l.holder, '/', 1) \
                 AND (a.backend_start IS NULL OR a.backend_start::text = split_part(l.holder, '/', 2))) \
                 FROM {table} AS l WHERE l.id = 1 FOR UPDATE OF l{skip}",
                me = literal(&self.me),
                table = self.lock_table,
                skip = if wait { "" } else { " SKIP LOCKED" },
            ),
        }
    }

    /// Begins a transaction and takes the lock in it, waiting up to
    /// `timeout`. Returns whether the lock table's lease is held by another
    /// live session (then the caller waits and tries again).
    fn lock_once(
        &mut self,
        migrator: &Migrator<'_>,
        timeout: Duration,
        waited: &mut Option<Duration>,
        announced: &mut bool,
    ) -> Result<bool> {
        self.rollback()?;
        let key = self.key(migrator)?;
        let first = format!(
            "BEGIN;\nSELECT current_setting('lock_timeout');\n{}",
            self.lock_sql(key, false)
        );
        self.in_transaction = true;
        let rows = self.query(&first).map_err(pg("starting a transaction"))?;
        let cell = |rows: &[Vec<Option<String>>], row: usize, col: usize| {
            rows.get(row).and_then(|r| r.get(col).cloned().flatten())
        };
        let old_timeout = cell(&rows, 0, 0).unwrap_or_default();
        if cell(&rows, 1, 0).as_deref() == Some("t") {
            return Ok(cell(&rows, 1, 1).as_deref() == Some("t"));
        }
        if !std::mem::replace(announced, true) {
            migrator.notify(Event::Waiting {
                timeout: migrator.lock_timeout,
            });
        }
        let start = Instant::now();
        // lock_timeout 0 would mean "wait for ever".
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        let wait = format!(
            "SET LOCAL lock_timeout = {ms};\n{};\nSELECT set_config('lock_timeout', {}, true)",
            self.lock_sql(key, true),
            literal(&old_timeout)
        );
        let result = self.query(&wait);
        let spent = start.elapsed();
        *waited = Some(waited.unwrap_or_default() + spent);
        match result {
            Ok(rows) => Ok(cell(&rows, 0, 1).as_deref() == Some("t")),
            Err(e) if state(&e) == Some(sqlstate::LOCK_NOT_AVAILABLE) => {
                self.rollback()?;
                Err(Error::Locked { waited: spent })
            }
            Err(e) => Err(pg("waiting for the migration lock")(e)),
        }
    }

    /// Runs `script` as one query inside the open transaction; on failure,
    /// names the line.
    fn run_whole(&mut self, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
        // The savepoint is sent with the script (no extra round trip): when
        // the server gives no position, the script is run again from it,
        // one statement at a time, to find the failing one.
        let mut prefix = "SAVEPOINT migrate_script;\n".to_owned();
        if let Some((timeout, _)) = self.table_lock {
            prefix.push_str(&format!("SET LOCAL lock_timeout = {};\n", millis(timeout)));
        }
        let prefix_lines = prefix.matches('\n').count();
        let sql = script.sql();
        let text = format!("{prefix}{sql}");
        let mut tries = 0;
        let e = loop {
            tries += 1;
            match self.client.batch_execute(&text) {
                Ok(()) => return Ok(()),
                Err(e) if self.retry_lock_timeout(&e, tries) => {
                    self.client
                        .batch_execute("ROLLBACK TO SAVEPOINT migrate_script")
                        .map_err(pg("rolling back to retry"))?;
                }
                Err(e) => break e,
            }
        };
        let position = e.as_db_error().and_then(|d| match d.position() {
            Some(postgres::error::ErrorPosition::Original(p)) => Some(*p),
            _ => None,
        });
        let line = match position {
            Some(p) => line_at(&text, split::byte_offset(&text, p))
                .saturating_sub(prefix_lines)
                .max(1),
            None => self.find_failing_line(sql).unwrap_or(1),
        };
        let statement = statements(sql)
            .into_iter()
            .rfind(|s| s.line <= line)
            .map(|s| s.text.to_owned())
            .unwrap_or_default();
        let mut error = sql_error(m, direction, script, line, statement, &e, true);
        self.name_lock_timeout(&mut error, &e, tries);
        Err(error)
    }

    /// Whether `e` is a lock timeout to try again after (the `tries`th
    /// try failed): then pauses first, longer each time.
    fn retry_lock_timeout(&self, e: &postgres::Error, tries: u32) -> bool {
        let Some((_, retries)) = self.table_lock else {
            return false;
        };
        if state(e) != Some(sqlstate::LOCK_NOT_AVAILABLE) || tries > retries {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100) * tries.min(20));
        true
    }

    /// Says, in a lock timeout's message, how long and how often it waited.
    fn name_lock_timeout(&self, error: &mut Error, e: &postgres::Error, tries: u32) {
        if let (Some((timeout, _)), Error::Sql { message, .. }) = (self.table_lock, error)
            && state(e) == Some(sqlstate::LOCK_NOT_AVAILABLE)
        {
            message.push_str(&format!(
                "; a lock timeout: tried {tries} {}, waiting {} ms each time (Migrator::table_lock_timeout)",
                if tries == 1 { "time" } else { "times" },
                millis(timeout)
            ));
        }
    }

    /// After a failure without a position: back to the savepoint, then one
    /// statement at a time until one fails. Its line.
    fn find_failing_line(&mut self, sql: &str) -> Option<usize> {
        self.client.batch_execute("ROLLBACK TO SAVEPOINT migrate_script").ok()?;
        if let Some((timeout, _)) = self.table_lock {
            // Rolled back with the savepoint.
            let set = format!("SET LOCAL lock_timeout = {}", millis(timeout));
            self.client.batch_execute(&set).ok()?;
        }
        statements(sql)
            .into_iter()
            .find(|s| self.client.batch_execute(s.text).is_err())
            .map(|s| s.line)
    }

    /// After a statement outside a transaction failed: the INVALID indexes
    /// it may have left (a failed `CREATE INDEX CONCURRENTLY` does), named
    /// in the message with what to do.
    fn name_invalid_indexes(&mut self, error: &mut Error) {
        let Error::Sql { statement, message, .. } = error else {
            return;
        };
        if !statement.to_ascii_uppercase().contains("CONCURRENTLY") {
            return;
        }
        let sql = self.invalid_indexes_sql();
        let Ok(rows) = self.query(&sql) else {
            return;
        };
        let names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        if !names.is_empty() {
            message.push_str(&format!(
                "; it left {} INVALID: drop {} with DROP INDEX CONCURRENTLY before running again",
                names.join(", "),
                if names.len() == 1 { "it" } else { "them" }
            ));
        }
    }

    /// [`Lock::Table`]'s way to keep others out while a no-transaction
    /// script runs: a row lock lasts one transaction, so the lock row
    /// records this session as the holder of a lease (committed), which
    /// others wait for as long as this session exists; it is cleared with
    /// the tracking row, or at once on failure. A killed holder's lease is
    /// ignored (its session is gone from `pg_stat_activity`).
    fn run_under_lease(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()> {
        let set = format!(
            "UPDATE {} SET holder = {}, since = now() WHERE id = 1",
            self.lock_table,
            literal(&self.me)
        );
        self.query(&set).map_err(pg("taking the lock table's lease"))?;
        let ran = self
            .commit()
            .and_then(|()| self.run_each(m, direction, script))
            .and_then(|()| self.begin(migrator, waited));
        let clear = format!(
            "UPDATE {} SET holder = NULL, since = NULL WHERE id = 1 AND holder = {}",
            self.lock_table,
            literal(&self.me)
        );
        // In the transaction that records the migration, or on its own.
        if ran.is_err() {
            let _ = self.rollback();
        }
        let cleared = self
            .query(&clear)
            .map(drop)
            .map_err(pg("releasing the lock table's lease"));
        ran.and(cleared)
    }

    /// Runs `script` one statement at a time, in autocommit.
    fn run_each(&mut self, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
        let Some((timeout, _)) = self.table_lock else {
            return self.run_each_statement(m, direction, script);
        };
        // Outside a transaction, for the session: set, then restored on
        // every path.
        let rows = self
            .query(&format!(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', '{}', false)",
                millis(timeout)
            ))
            .map_err(pg("setting lock_timeout"))?;
        let old = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default();
        let ran = self.run_each_statement(m, direction, script);
        let restored = self
            .query(&format!("SELECT set_config('lock_timeout', {}, false)", literal(&old)))
            .map(drop)
            .map_err(pg("restoring lock_timeout"));
        ran.and(restored)
    }

    fn run_each_statement(&mut self, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
        let sql = script.sql();
        for Statement { text, line, offset } in statements(sql) {
            let mut tries = 0;
            let result = loop {
                tries += 1;
                match self.client.batch_execute(text) {
                    Err(e) if self.retry_lock_timeout(&e, tries) => {}
                    other => break other,
                }
            };
            if let Err(e) = result {
                let line = match e.as_db_error().and_then(|d| d.position()) {
                    Some(postgres::error::ErrorPosition::Original(p)) => {
                        line_at(sql, offset + split::byte_offset(text, *p))
                    }
                    _ => line,
                };
                let mut error = sql_error(m, direction, script, line, text.to_owned(), &e, false);
                self.name_lock_timeout(&mut error, &e, tries);
                self.name_invalid_indexes(&mut error);
                return Err(error);
            }
        }
        Ok(())
    }

    fn record_sql(&self, m: &Migration, direction: Direction, duration: Duration) -> String {
        match direction {
            Direction::Up => format!(
                "INSERT INTO {} (version, name, checksum, applied_at, duration_ms) \
                 VALUES ({}, {}, '{}', clock_timestamp(), {})",
                self.table,
                m.version_i64(),
                literal(m.name()),
                m.checksum(),
                i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
            ),
            Direction::Down => format!("DELETE FROM {} WHERE version = {}", self.table, m.version_i64()),
        }
    }
}

fn sql_error(
    m: &Migration,
    direction: Direction,
    script: &Script,
    line: usize,
    statement: String,
    e: &postgres::Error,
    rolled_back: bool,
) -> Error {
    Error::Sql {
        direction,
        version: m.version(),
        name: m.name().to_owned(),
        file: script.file().to_owned(),
        line,
        statement,
        message: message_of(e),
        code: None,
        rolled_back,
    }
}

impl Backend for Postgres<'_> {
    fn begin(&mut self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<()> {
        let start = Instant::now();
        let timeout = migrator.lock_timeout;
        let mut announced = false;
        loop {
            let remaining = timeout.saturating_sub(start.elapsed());
            let leased = self.lock_once(migrator, remaining, waited, &mut announced)?;
            if !leased {
                return Ok(());
            }
            // Lock::Table: another live session runs a no-transaction
            // script under the lease; wait for it to clear.
            self.rollback()?;
            if start.elapsed() >= timeout {
                return Err(Error::Locked {
                    waited: start.elapsed(),
                });
            }
            let pause = Duration::from_millis(50).min(remaining);
            std::thread::sleep(pause);
            *waited = Some(waited.unwrap_or_default() + pause);
        }
    }

    fn commit(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        self.client.batch_execute("COMMIT").map_err(pg("committing"))
    }

    fn rollback(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        match self.client.batch_execute("ROLLBACK") {
            // A lost connection has no transaction left to roll back.
            Err(_) if self.client.is_closed() => Ok(()),
            other => other.map_err(pg("rolling back")),
        }
    }

    fn create_table(&mut self, _migrator: &Migrator<'_>) -> Result<()> {
        let sql = format!(
            "{}CREATE TABLE IF NOT EXISTS {} (\n    \
             version bigint PRIMARY KEY,\n    \
             name text NOT NULL,\n    \
             checksum text NOT NULL,\n    \
             applied_at timestamptz NOT NULL,\n    \
             duration_ms bigint NOT NULL\n)",
            self.create_schema_sql(),
            self.table
        );
        self.client
            .batch_execute(&sql)
            .map_err(pg(format!("creating the tracking table {}", self.table)))
    }

    fn summary(&mut self, _migrator: &Migrator<'_>) -> Result<Option<(i64, Option<u64>)>> {
        // Reading the whole history is one round trip too.
        Ok(None)
    }

    fn read(&mut self, migrator: &Migrator<'_>) -> Result<Vec<Applied>> {
        let sql = format!(
            "SELECT version, name, checksum, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), duration_ms \
             FROM {} ORDER BY version",
            self.table
        );
        // The first read also looks for INVALID indexes, in the same round trip.
        let first = !self.in_transaction;
        let sql = if first {
            format!("{sql};\n{}", self.invalid_indexes_sql())
        } else {
            sql
        };
        let rows = match self.query_sets(&sql) {
            Ok(mut sets) => {
                if first && let Some(invalid) = sets.get_mut(1) {
                    self.invalid = invalid
                        .drain(..)
                        .filter_map(|r| r.into_iter().next().flatten())
                        .collect();
                }
                sets.into_iter().next().unwrap_or_default()
            }
            Err(e)
                if !self.in_transaction
                    && matches!(
                        state(&e),
                        Some(sqlstate::UNDEFINED_TABLE | sqlstate::INVALID_SCHEMA_NAME)
                    ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42703") => {
                return Err(Error::TrackingTable {
                    table: migrator.table.name.clone(),
                    message: message_of(&e),
                });
            }
            Err(e) => return Err(pg(format!("reading the tracking table {}", self.table))(e)),
        };
        let shape = |message: String| Error::TrackingTable {
            table: migrator.table.name.clone(),
            message,
        };
        rows.into_iter()
            .map(|row| {
                let [
                    Some(version),
                    Some(name),
                    Some(checksum),
                    Some(applied_at),
                    Some(duration),
                ] = <[Option<String>; 5]>::try_from(row).map_err(|_| shape("a row has the wrong columns".into()))?
                else {
                    return Err(shape("a row has a NULL".into()));
                };
                let version = version
                    .parse::<u64>()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| shape(format!("a row has version {version}, but versions start at 1")))?;
                Ok(Applied {
                    version,
                    name,
                    checksum,
                    applied_at,
                    duration_ms: duration.parse().unwrap_or(0),
                })
            })
            .collect()
    }

    fn run_in_transaction(&mut self, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
        self.run_whole(m, direction, script)
    }

    fn run_outside_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()> {
        if self.lock == Lock::Table {
            return self.run_under_lease(migrator, m, direction, script, waited);
        }
        let key = self.key(migrator)?;
        // Taken at once: this session holds the transaction-level lock.
        self.query(&format!("SELECT pg_advisory_lock({key})"))
            .map_err(pg("taking the session's migration lock"))?;
        let ran = self
            .commit()
            .and_then(|()| self.run_each(m, direction, script))
            .and_then(|()| self.begin(migrator, waited));
        let unlocked = self
            .query(&format!("SELECT pg_advisory_unlock({key})"))
            .map(drop)
            .map_err(pg("releasing the session's migration lock"));
        ran.and(unlocked)
    }

    fn record(
        &mut self,
        _migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        duration: Duration,
    ) -> Result<()> {
        let sql = self.record_sql(m, direction, duration);
        self.client
            .batch_execute(&sql)
            .map_err(pg(format!("recording migration {} in {}", m.version(), self.table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema_and_table() {
        let a = lock_key("public._migrations");
        assert_eq!(a, lock_key("public._migrations"));
        assert_ne!(a, lock_key("app._migrations"));
        assert_ne!(a, lock_key("public.other"));
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
