//! The session and transaction layer: the connection's settings for the
//! duration of a run, the write lock, and running a script statement by
//! statement.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::backend::Backend;
use crate::foreign_keys::{step_in_tx, written_table};
use crate::sql::statements;
use crate::{Direction, Error, Event, Migration, Migrator, Result, Script};

/// Connection settings changed for the duration of a run, restored after.
pub(crate) struct Session<'c> {
    pub(crate) conn: &'c Connection,
    pub(crate) foreign_keys: bool,
    busy_timeout: i64,
    /// Tables that have foreign keys, when known: where to look for the
    /// children of a table a migration changed.
    pub(crate) tables_with_keys: std::cell::RefCell<Option<BTreeSet<String>>>,
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
            written: Arc::default(),
            replay,
            refused_attach: Arc::default(),
            schema_touched: Arc::default(),
        };
        session.watch_writes();
        Ok(session)
    }

    /// Installs the authorizer (again, after something else replaced it)
    /// that records written tables, when foreign keys are checked, and that
    /// keeps the replay's attached databases in memory.
    pub(crate) fn watch_writes(&self) {
        if !self.foreign_keys && !self.replay {
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
        let run = || {
            for stmt in statements(sql) {
                if let Err(e) = conn.execute_batch(stmt.text) {
                    let line = match &e {
                        #[cfg(any(feature = "modern-sqlite", feature = "sqlx"))]
                        rusqlite::Error::SqlInputError { offset, .. } => {
                            crate::sql::line_at(sql, stmt.offset + usize::try_from(*offset).unwrap_or(0))
                        }
                        _ => stmt.line,
                    };
                    let refused = self.refused_attach.lock().ok().and_then(|mut slot| slot.take());
                    let message = match refused {
                        Some(name) => format!("ATTACH of {name}, which could open a real file: {UNCHECKABLE_ATTACH}"),
                        None => crate::error::message_of(&e),
                    };
                    return Err(Error::Sql {
                        direction,
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: script.file().to_owned(),
                        line,
                        statement: stmt.text.to_owned(),
                        message,
                        code: e.sqlite_error_code(),
                        rolled_back: in_transaction,
                    });
                }
            }
            Ok(())
        };
        if self.foreign_keys && in_transaction {
            self.take_written();
            let result = run();
            let touched = self.take_written();
            result.map(|()| touched)
        } else {
            run().map(|()| BTreeSet::new())
        }
    }

    pub(crate) fn end(self) -> Result<()> {
        if self.foreign_keys || self.replay {
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
}

impl<'s, 'c> Sqlite<'s, 'c> {
    pub(crate) fn new(session: &'s Session<'c>) -> Self {
        Self { session, tx: None }
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
        match self.tx.take() {
            Some(mut tx) => tx.commit(),
            None => Ok(()),
        }
    }

    async fn rollback(&mut self) -> Result<()> {
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
        migrator.table.summary(self.session.conn).map(Some)
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

    async fn run_in_transaction(&mut self, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
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
                migrator.table.insert(
                    conn,
                    m.version_i64(),
                    m.name(),
                    &m.checksum().to_string(),
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
