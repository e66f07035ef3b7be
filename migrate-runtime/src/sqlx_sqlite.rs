//! The SQLite backend on a sqlx [`SqliteConnection`] (feature `sqlx`): the
//! connection's own `sqlite3` handle is lent to rusqlite for the length of
//! one call, and the one SQLite backend runs on it — the same history
//! checks, lock, drift check, adoption, events and errors as
//! [`Migrator::apply`], and no second driver or SQLite library.

use rusqlite::Connection;
use sqlx::SqliteConnection;

use crate::{Error, Migration, Migrator, Report, Result, Status};

impl<'m> Migrator<'m> {
    /// [`apply`](Self::apply) on a sqlx `SqliteConnection` (features `sqlx`
    /// and `rusqlite`), so a sqlx app migrates through its own connection
    /// (a pool's, with `&mut *pool.acquire().await?`) and links one SQLite.
    ///
    /// It is [`apply`](Self::apply) itself, on the connection's `sqlite3`
    /// handle, which sqlx lends for the call (`lock_handle`): the same
    /// checks of the history, lock, drift check, [`adopt`](Self::adopt),
    /// events and errors. While it runs, sqlx's worker thread does not touch
    /// the connection, and the SQLite calls run on the calling task's thread
    /// (waiting for another process's write lock blocks it, up to
    /// [`lock_timeout`](Self::lock_timeout)); await it at start-up, before
    /// serving. Afterwards the connection is as it was: its busy timeout and
    /// `foreign_keys` are restored and no transaction is left open.
    ///
    /// The future borrows the migrator, whose observer
    /// ([`on_event`](Self::on_event)) need not be `Send`: await it where it
    /// is made (as in `main` at start-up).
    ///
    /// Hooks set through sqlx's `LockedSqliteHandle` (update, commit,
    /// rollback, progress handler) are removed by the run, as rusqlite
    /// removes its own when it lets go of a handle: set them after
    /// migrating.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply), and [`Error::Sqlx`] when sqlx cannot lend
    /// the handle (its worker thread stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script};
    /// use migrate_runtime::sqlx::{Connection, SqliteConnection};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let migrations = [Migration::new(1, "create_users", Script::new(
    ///     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    ///     "migrations/0001_create_users.sql",
    /// ))];
    /// let mut conn = SqliteConnection::connect("sqlite::memory:").await?;
    /// let report = Migrator::new(&migrations).apply_sqlx_sqlite(&mut conn).await?;
    /// assert_eq!(report.applied().count(), 1);
    /// // The app's own queries, on the same connection.
    /// migrate_runtime::sqlx::query("INSERT INTO users (name) VALUES ('ada')").execute(&mut conn).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn apply_sqlx_sqlite(&self, conn: &mut SqliteConnection) -> Result<Report> {
        with_rusqlite(conn, |c| self.apply(c)).await
    }

    /// [`migrate_to`](Self::migrate_to) on a sqlx `SqliteConnection`, as
    /// [`apply_sqlx_sqlite`](Self::apply_sqlx_sqlite) does `apply`.
    ///
    /// # Errors
    ///
    /// As [`migrate_to`](Self::migrate_to), and [`Error::Sqlx`].
    pub async fn migrate_to_sqlx_sqlite(&self, conn: &mut SqliteConnection, target: u64) -> Result<Report> {
        with_rusqlite(conn, |c| self.migrate_to(c, target)).await
    }

    /// [`status`](Self::status) on a sqlx `SqliteConnection`. Changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// As [`status`](Self::status), and [`Error::Sqlx`].
    pub async fn status_sqlx_sqlite(&self, conn: &mut SqliteConnection) -> Result<Status<'m>> {
        with_rusqlite(conn, |c| self.status(c)).await
    }

    /// [`pending`](Self::pending) on a sqlx `SqliteConnection`. Changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// As [`pending`](Self::pending), and [`Error::Sqlx`].
    pub async fn pending_sqlx_sqlite(&self, conn: &mut SqliteConnection) -> Result<Vec<&'m Migration>> {
        with_rusqlite(conn, |c| self.pending(c)).await
    }
}

/// Runs `f` on a rusqlite [`Connection`] over `conn`'s own `sqlite3`
/// handle, locked away from sqlx's worker thread for the whole call.
async fn with_rusqlite<T>(conn: &mut SqliteConnection, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
    let mut locked = conn.lock_handle().await.map_err(|cause| Error::Sqlx {
        doing: "taking the SQLite handle from the sqlx connection".to_owned(),
        cause,
    })?;
    let mut lent = lend(&mut locked)?;
    let result = f(&mut lent);
    // rusqlite lets go of the handle first (finalizing its cached
    // statements and removing its hooks), then sqlx gets it back.
    drop(lent);
    drop(locked);
    result
}

/// A rusqlite [`Connection`] that borrows the locked handle's `sqlite3`.
#[allow(unsafe_code)]
fn lend(locked: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Result<Connection> {
    let handle = locked.as_raw_handle().as_ptr();
    // SAFETY: `Connection::from_handle` needs a valid `sqlite3*` that
    // nothing else uses while the returned connection lives, and that
    // outlives it.
    // - Valid, and the same SQLite: the pointer comes from sqlx's open
    //   connection, and its type is `libsqlite3_sys::sqlite3` of the one
    //   `libsqlite3-sys` both sqlx-sqlite and rusqlite link (`links =
    //   "sqlite3"` admits one per build; this line would not compile if the
    //   two crates named different versions' types).
    // - Not used by anyone else: sqlx's `LockedSqliteHandle` (sqlx-sqlite
    //   0.9, `connection/mod.rs`) holds the worker's mutex, and "as long as
    //   this `LockedSqliteHandle` exists, it is guaranteed that the
    //   background thread is not making FFI calls on this database handle
    //   or any of its statements"; the connection is `&mut`, so no sqlx
    //   statement of the caller is running.
    // - Outlived: `with_rusqlite`, the only caller, drops the rusqlite
    //   connection before the lock, on a panic in its `f` too (`lent` is
    //   declared after `locked`, so unwinding drops it first). `from_handle` (unlike
    //   `from_handle_owned`) does not close the handle on drop (rusqlite
    //   0.37, `InnerConnection::close` returns early when not owned); the
    //   drop finalizes the statements rusqlite prepared and removes the hooks
    //   it installed, so no rusqlite statement or callback is left on the
    //   handle sqlx gets back.
    unsafe { Connection::from_handle(handle) }
        .map_err(Error::db("lending the sqlx connection's SQLite handle to rusqlite"))
}
