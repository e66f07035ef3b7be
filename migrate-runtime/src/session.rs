//! The session and transaction layer: the connection's settings for the
//! duration of a run, the write lock, and running a script statement by
//! statement.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthContext, Authorization};

use crate::foreign_keys::written_table;
use crate::sql::{line_at, statements};
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
}

impl<'c> Session<'c> {
    pub(crate) fn start(conn: &'c Connection, lock_timeout: Duration) -> Result<Self> {
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
        };
        session.watch_writes();
        Ok(session)
    }

    /// Installs the authorizer that records written tables (again, after
    /// something else replaced it), when foreign keys are checked.
    pub(crate) fn watch_writes(&self) {
        if !self.foreign_keys {
            return;
        }
        let sink = Arc::clone(&self.written);
        self.conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if let Some(table) = written_table(&ctx.action)
                && let Ok(mut set) = sink.lock()
            {
                set.insert(table.to_owned());
            }
            Authorization::Allow
        }));
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
                        rusqlite::Error::SqlInputError { offset, .. } => {
                            line_at(sql, stmt.offset + usize::try_from(*offset).unwrap_or(0))
                        }
                        _ => stmt.line,
                    };
                    return Err(Error::Sql {
                        direction,
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: script.file().to_owned(),
                        line,
                        statement: stmt.text.to_owned(),
                        message: crate::error::message_of(&e),
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
        if self.foreign_keys {
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
