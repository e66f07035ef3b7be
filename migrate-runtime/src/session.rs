//! The session and transaction layer: the connection's settings for the
//! duration of a run, the write lock, and running a script statement by
//! statement.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::backend::Backend;
use crate::foreign_keys::{step_in_tx, written_table};
use crate::sql::statements;
use crate::{Direction, Error, Event, Migration, Migrator, Result, Script};
use rusqlite::fallible_iterator::FallibleIterator as _;

/// Connection settings changed for the duration of a run, restored after.
pub(crate) struct Session<'c> {
    pub(crate) conn: &'c Connection,
    pub(crate) foreign_keys: bool,
    busy_timeout: i64,
    /// Tables that have foreign keys, when known: where to look for the
    /// children of a table a migration changed. Forgotten when another
    /// connection commits (see [`Sqlite`]'s `summary`).
    pub(crate) tables_with_keys: std::cell::RefCell<Option<BTreeSet<String>>>,
    /// Whether the connection may see tables outside `main`: a `temp`
    /// schema in use or an attached database (which the list above does
    /// not cover), when known. A script run outside a transaction that
    /// says `attach` sets it.
    pub(crate) other_schemas: Cell<Option<bool>>,
    /// Whether the foreign-key guard asked for the authorizer that records
    /// written tables (the replay's is installed from the start): until a
    /// migration can break a foreign key, none is installed, since
    /// SQLite calls it for every action of every statement it prepares.
    watching: Cell<bool>,
    /// `PRAGMA data_version` when last read (see [`Sqlite`]'s `summary`).
    data_version: Cell<Option<i64>>,
    /// Whether the tracking table has the columns this release makes, in
    /// its order, when known (see `Table::own_layout`). Forgotten, as the
    /// list of tables with keys, when another connection commits.
    own_layout: Cell<Option<bool>>,
    /// The tables written by statements prepared since it was last emptied,
    /// filled by an authorizer installed once per run (installing one
    /// expires every prepared statement, so not once per migration).
    written: Arc<Mutex<BTreeSet<String>>>,
    /// The build-time replay: every database stays in memory.
    replay: bool,
    /// The database name an `ATTACH` of the replay was refused for (a URI
    /// or an expression, which could name a real file).
    refused_attach: Arc<Mutex<Option<String>>>,
    /// The replay only: the tables, views and indexes' tables whose
    /// definitions statements prepared since it was last taken may change
    /// (ASCII lower case), and whether one may change any (a virtual
    /// table, `ANALYZE`): which rows of `sqlite_schema` the next
    /// fingerprint has to read again.
    schema_touched: Arc<Mutex<SchemaTouched>>,
}

/// See [`Session::take_schema_touched`].
#[derive(Default)]
pub(crate) struct SchemaTouched {
    /// Names whose `sqlite_schema` rows (`tbl_name`) may have changed.
    pub(crate) tables: BTreeSet<String>,
    /// Any row may have changed.
    pub(crate) all: bool,
}

impl<'c> Session<'c> {
    pub(crate) fn start(conn: &'c Connection, lock_timeout: Duration) -> Result<Self> {
        Self::open(conn, lock_timeout, false)
    }

    /// [`start`](Self::start) on the build-time replay's connection, opened
    /// by [`replay_connection`]: an `ATTACH` by a URI or an expression (which
    /// could name a real file despite `SQLITE_OPEN_MEMORY`) is refused.
    pub(crate) fn start_replay(conn: &'c Connection, lock_timeout: Duration) -> Result<Self> {
        Self::open(conn, lock_timeout, true)
    }

    fn open(conn: &'c Connection, lock_timeout: Duration, replay: bool) -> Result<Self> {
        let pragma = |name: &str| {
            conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
                .map_err(Error::db(format!("reading PRAGMA {name}")))
        };
        let foreign_keys = pragma("foreign_keys")? != 0;
        let busy_timeout = pragma("busy_timeout")?;
        conn.busy_timeout(lock_timeout)
            .map_err(Error::db("setting the lock timeout"))?;
        if foreign_keys {
            // SQLite's table-rebuild procedure: foreign keys off outside the
            // transaction, checked before commit (see step_in_tx).
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(Error::db("turning foreign keys off"))?;
        }
        let session = Self {
            conn,
            foreign_keys,
            busy_timeout,
            tables_with_keys: std::cell::RefCell::new(None),
            other_schemas: Cell::new(None),
            watching: Cell::new(false),
            data_version: Cell::new(None),
            own_layout: Cell::new(None),
            written: Arc::default(),
            replay,
            refused_attach: Arc::default(),
            schema_touched: Arc::default(),
        };
        session.watch_writes();
        Ok(session)
    }

    /// Installs the authorizer (again, after something else replaced it)
    /// that records written tables, when the foreign-key guard asked for it
    /// (see [`watch_keys`](Self::watch_keys)) or on the replay, and that
    /// keeps the replay's attached databases in memory. Installing one
    /// expires every prepared statement: this happens once per run, not
    /// per migration.
    pub(crate) fn watch_writes(&self) {
        if !(self.replay || (self.foreign_keys && self.watching.get())) {
            return;
        }
        let (foreign_keys, replay) = (self.foreign_keys, self.replay);
        let sink = Arc::clone(&self.written);
        let refused = Arc::clone(&self.refused_attach);
        let touched = Arc::clone(&self.schema_touched);
        self.conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if replay && let Some(name) = attach_leaving_memory(&ctx.action) {
                if let Ok(mut slot) = refused.lock() {
                    *slot = Some(name);
                }
                return Authorization::Deny;
            }
            if replay && let Ok(mut t) = touched.lock() {
                match schema_object(&ctx.action) {
                    Some(Some(name)) => {
                        t.tables.insert(name.to_ascii_lowercase());
                    }
                    Some(None) => t.all = true,
                    None => {}
                }
            }
            if foreign_keys
                && let Some(table) = written_table(&ctx.action)
                && let Ok(mut set) = sink.lock()
            {
                set.insert(table.to_owned());
            }
            Authorization::Allow
        }));
    }

    /// The replay only: empties the record of which `sqlite_schema` rows
    /// statements prepared since the last call may have changed, and
    /// returns it. Only statements prepared while this session's
    /// authorizer was installed are recorded.
    pub(crate) fn take_schema_touched(&self) -> SchemaTouched {
        self.schema_touched
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or(SchemaTouched {
                tables: BTreeSet::new(),
                all: true,
            })
    }

    /// From now on, records the tables each statement writes (for the
    /// foreign-key guard), installing the authorizer if it is not yet.
    pub(crate) fn watch_keys(&self) {
        if !self.watching.replace(true) && !self.replay {
            self.watch_writes();
        }
    }

    /// Empties the written tables and returns what they were.
    pub(crate) fn take_written(&self) -> BTreeSet<String> {
        self.written
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Runs `script` statement by statement, so a failure names its line.
    /// Returns the tables the script wrote to, when foreign keys are checked.
    pub(crate) fn run_script(
        &self,
        m: &Migration,
        direction: Direction,
        script: &Script,
        in_transaction: bool,
    ) -> Result<BTreeSet<String>> {
        let conn = self.conn;
        let sql = script.sql();
        if !in_transaction && crate::foreign_keys::contains_word(sql, b"attach") {
            // A database attached outside a transaction stays attached.
            self.other_schemas.set(Some(true));
        }
        let run = || {
            // Statement by statement as SQLite splits the script (what
            // `execute_batch` does, stepping each once), counting them; only
            // a failure splits it again, with our splitter (which agrees
            // with SQLite's: fuzz target `statement_split_vs_sqlite`), to
            // say which statement and line failed.
            let mut batch = rusqlite::Batch::new(conn, sql);
            let mut ran = 0;
            let e = loop {
                match batch.next() {
                    Ok(None) => return Ok(()),
                    Ok(Some(mut stmt)) => {
                        if let Err(e) = stmt.raw_query().next().map(drop) {
                            break e;
                        }
                    }
                    Err(e) => break e,
                }
                ran += 1;
            };
            let all = statements(sql);
            let Some(stmt) = all.get(ran).or(all.last()).copied() else {
                return Err(self.sql_error(m, direction, script, in_transaction, &e, sql, 1));
            };
            let line = match &e {
                // Where in the statement (prepared alone, as it would be
                // first) SQLite stopped parsing.
                #[cfg(any(feature = "modern-sqlite", feature = "sqlx"))]
                rusqlite::Error::SqlInputError { .. } => match conn.prepare(stmt.text) {
                    Err(rusqlite::Error::SqlInputError { offset, .. }) => {
                        crate::sql::line_at(sql, stmt.offset + usize::try_from(offset).unwrap_or(0))
                    }
                    _ => stmt.line,
                },
                _ => stmt.line,
            };
            Err(self.sql_error(m, direction, script, in_transaction, &e, stmt.text, line))
        };
        if self.foreign_keys && in_transaction && (self.watching.get() || self.replay) {
            self.take_written();
            let result = run();
            let touched = self.take_written();
            result.map(|()| touched)
        } else {
            run().map(|()| BTreeSet::new())
        }
    }

    /// The error of `statement` (at `line`) of `m`'s `script`, which failed
    /// with `e`.
    #[allow(clippy::too_many_arguments)]
    fn sql_error(
        &self,
        m: &Migration,
        direction: Direction,
        script: &Script,
        in_transaction: bool,
        e: &rusqlite::Error,
        statement: &str,
        line: usize,
    ) -> Error {
        let refused = self.refused_attach.lock().ok().and_then(|mut slot| slot.take());
        let message = match refused {
            Some(name) => format!("ATTACH of {name}, which could open a real file: {UNCHECKABLE_ATTACH}"),
            None => crate::error::message_of(e),
        };
        Error::Sql {
            direction,
            version: m.version(),
            name: m.name().to_owned(),
            file: script.file().to_owned(),
            line,
            statement: statement.to_owned(),
            message,
            code: e.sqlite_error_code(),
            rolled_back: in_transaction,
        }
    }

    pub(crate) fn end(self) -> Result<()> {
        if (self.foreign_keys && self.watching.get()) || self.replay {
            self.conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        }
        let restore_fk = if self.foreign_keys {
            self.conn.execute_batch("PRAGMA foreign_keys = ON")
        } else {
            Ok(())
        };
        let ms = u64::try_from(self.busy_timeout).unwrap_or(0);
        self.conn
            .busy_timeout(Duration::from_millis(ms))
            .and(restore_fk)
            .map_err(Error::db("restoring the connection's settings"))
    }

    /// `BEGIN IMMEDIATE` for one batch of a backfill: waits up to the lock
    /// timeout for the write lock, without announcing it (other writers
    /// hold it for moments between batches, which is the point).
    pub(crate) fn begin_batch(&self) -> Result<Tx<'c>> {
        let start = Instant::now();
        match self.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => Ok(Tx {
                conn: self.conn,
                open: true,
            }),
            Err(e) if is_busy(&e) => Err(Error::Locked {
                waited: start.elapsed(),
            }),
            Err(e) => Err(Error::db("starting a transaction")(e)),
        }
    }

    /// `BEGIN IMMEDIATE`: takes the write lock before the history is read,
    /// waiting up to the lock timeout for another process.
    pub(crate) fn begin(&self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<Tx<'c>> {
        let conn = self.conn;
        let timeout = migrator.lock_timeout;
        let set_timeout = |d| conn.busy_timeout(d).map_err(Error::db("setting the lock timeout"));
        set_timeout(Duration::ZERO)?;
        let first = conn.execute_batch("BEGIN IMMEDIATE");
        let result = match first {
            Err(e) if is_busy(&e) => {
                migrator.notify(Event::Waiting { timeout });
                let start = Instant::now();
                set_timeout(timeout)?;
                let second = conn.execute_batch("BEGIN IMMEDIATE");
                let spent = start.elapsed();
                *waited = Some(waited.unwrap_or_default() + spent);
                match second {
                    Err(e) if is_busy(&e) => Err(Error::Locked { waited: spent }),
                    other => other.map_err(Error::db("starting a transaction")),
                }
            }
            other => other.map_err(Error::db("starting a transaction")),
        };
        set_timeout(timeout)?;
        result.map(|()| Tx { conn, open: true })
    }
}

/// Why the replay refuses an `ATTACH` it cannot keep in memory.
pub(crate) const UNCHECKABLE_ATTACH: &str =
    "the build-time replay keeps every database in memory and cannot check this one";

/// Opens the build-time replay's database in memory, with
/// `SQLITE_OPEN_MEMORY`, which every database it attaches inherits:
/// `ATTACH 'side.db'` and `VACUUM INTO 'backup.db'` then attach memory, not
/// files, so the replay never touches the file system and the statements
/// on `side.*` are still checked. Only a URI filename (`file:…?mode=rwc`)
/// or a name computed by an expression could override it; the replay's
/// session refuses those.
pub(crate) fn replay_connection() -> Result<Connection> {
    use rusqlite::OpenFlags as F;
    let flags = F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_CREATE | F::SQLITE_OPEN_MEMORY | F::SQLITE_OPEN_NO_MUTEX;
    Connection::open_in_memory_with_flags(flags).map_err(Error::db("opening an in-memory database"))
}

/// Whose `sqlite_schema` rows a statement's action may change: `Some(Some(
/// tbl_name))` for the rows of that table (or view), `Some(None)` for any
/// row, `None` for none. `ALTER TABLE … RENAME` also rewrites other
/// objects' statements that name the table or column: the replay reads the
/// whole schema again for scripts that say `rename` (see
/// `validate::touches_all`), as for `writable_schema`.
fn schema_object<'a>(action: &AuthAction<'a>) -> Option<Option<&'a str>> {
    match *action {
        AuthAction::CreateTable { table_name }
        | AuthAction::CreateTempTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::DropTempTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::CreateTempIndex { table_name, .. }
        | AuthAction::DropIndex { table_name, .. }
        | AuthAction::DropTempIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::CreateTempTrigger { table_name, .. }
        | AuthAction::DropTrigger { table_name, .. }
        | AuthAction::DropTempTrigger { table_name, .. } => Some(Some(table_name)),
        AuthAction::CreateView { view_name }
        | AuthAction::CreateTempView { view_name }
        | AuthAction::DropView { view_name }
        | AuthAction::DropTempView { view_name } => Some(Some(view_name)),
        AuthAction::CreateVtable { .. } | AuthAction::DropVtable { .. } | AuthAction::Analyze { .. } => Some(None),
        _ => None,
    }
}

/// The database an `ATTACH` names when it could leave memory: a URI
/// (whose `mode=` overrides `SQLITE_OPEN_MEMORY`) or an expression (SQLite
/// does not show its value).
fn attach_leaving_memory(action: &AuthAction<'_>) -> Option<String> {
    match *action {
        AuthAction::Attach { filename } if filename.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:")) => {
            Some(format!("the URI `{filename}`"))
        }
        AuthAction::Unknown {
            code: rusqlite::ffi::SQLITE_ATTACH,
            ..
        } => Some("a file name computed by an expression".to_owned()),
        _ => None,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// An open transaction, rolled back when dropped without `commit`.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            Error::db("committing")(e)
        })
    }

    pub(crate) fn rollback(&mut self) -> Result<()> {
        if std::mem::take(&mut self.open) && !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK").map_err(Error::db("rolling back"))?;
        }
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        let _ = self.rollback();
    }
}

/// The SQLite [`Backend`]: a session and its open transaction, if any
/// (rolled back when dropped).
pub(crate) struct Sqlite<'s, 'c> {
    session: &'s Session<'c>,
    tx: Option<Tx<'c>>,
    /// The summary read in the open transaction, which holds the write
    /// lock: no other connection can commit before it ends, and this
    /// connection's own commits do not change `data_version`, so it is
    /// still the summary at the end of the transaction.
    summary_in_tx: Option<i64>,
}

impl<'s, 'c> Sqlite<'s, 'c> {
    pub(crate) fn new(session: &'s Session<'c>) -> Self {
        Self {
            session,
            tx: None,
            summary_in_tx: None,
        }
    }

    /// The run's session.
    pub(crate) fn session(&self) -> &'s Session<'c> {
        self.session
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &'c Connection {
        self.session.conn
    }
}

impl Backend for Sqlite<'_, '_> {
    type Summary = i64;

    async fn begin(&mut self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<()> {
        self.rollback().await?;
        self.tx = Some(self.session.begin(migrator, waited)?);
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.summary_in_tx = None;
        match self.tx.take() {
            Some(mut tx) => tx.commit(),
            None => Ok(()),
        }
    }

    async fn rollback(&mut self) -> Result<()> {
        self.summary_in_tx = None;
        match self.tx.take() {
            Some(mut tx) => tx.rollback(),
            None => Ok(()),
        }
    }

    async fn create_table(&mut self, migrator: &Migrator<'_>) -> Result<()> {
        migrator.table.create(self.session.conn)?;
        if migrator.store_down {
            migrator.ensure_down_column(self.session.conn)?;
        }
        Ok(())
    }

    async fn summary(&mut self, migrator: &Migrator<'_>) -> Result<Option<Self::Summary>> {
        if let Some(summary) = self.summary_in_tx.filter(|_| self.tx.is_some()) {
            return Ok(Some(summary));
        }
        let summary = migrator.table.summary(self.session.conn)?;
        if self.tx.is_some() {
            self.summary_in_tx = Some(summary);
        }
        if self
            .session
            .data_version
            .replace(Some(summary))
            .is_some_and(|seen| seen != summary)
        {
            // Another connection committed: its schema may have tables
            // with foreign keys this run has not seen.
            self.session.tables_with_keys.replace(None);
            self.session.own_layout.set(None);
        }
        Ok(Some(summary))
    }

    async fn read(&mut self, migrator: &Migrator<'_>) -> Result<Vec<crate::Applied>> {
        migrator.table.read(self.session.conn)
    }

    async fn check_drift(&mut self, migrator: &Migrator<'_>, history: &[crate::Applied]) -> Result<()> {
        migrator.check_drift(self.session.conn, history)
    }

    async fn adopt(&mut self, migrator: &Migrator<'_>, history: &[crate::Applied]) -> Result<Vec<u64>> {
        migrator.adopt_locked(self.session.conn, history)
    }

    async fn run_in_transaction(
        &mut self,
        _migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        step_in_tx(self.session, m, direction, script)
    }

    async fn run_outside_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()> {
        // SQLite has no lock that outlives a transaction: release it
        // (committing the tracking table, when this run created it), run,
        // then lock again to record.
        self.commit().await?;
        match script.batch() {
            Some(size) => crate::backfill::run(self, migrator, m, script, size).await?,
            None => {
                self.session.run_script(m, direction, script, false)?;
            }
        }
        self.begin(migrator, waited).await
    }

    async fn record(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        duration: Duration,
    ) -> Result<()> {
        let conn = self.session.conn;
        match direction {
            // A batched backfill another process shared and recorded first.
            Direction::Up if m.up().batch().is_some() && crate::backfill::recorded(conn, migrator, m)? => Ok(()),
            Direction::Up => {
                let own_layout = match self.session.own_layout.get() {
                    Some(known) => known,
                    None => {
                        let own = migrator.table.own_layout(conn);
                        self.session.own_layout.set(Some(own));
                        own
                    }
                };
                migrator.table.insert(
                    conn,
                    own_layout,
                    m.version_i64(),
                    m.name(),
                    &m.checksum(),
                    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
                )?;
                if migrator.store_down {
                    migrator.record_down(conn, m)?;
                }
                if m.up().batch().is_some() {
                    crate::backfill::forget(conn, migrator, m)?;
                }
                // Before the schema stamp: adding the digest's column to an
                // older release's table changes SQLite's schema cookie.
                migrator.stamp_history_digest(conn, m)?;
                migrator.stamp_if_verified(conn, m)
            }
            Direction::Down => migrator.table.delete(conn, m.version_i64()),
        }
    }
}
