//! The PostgreSQL backend on a sqlx [`PgConnection`] (features `sqlx` and
//! `postgres`): the same backend, apply loop, checks, lock and errors as
//! [`Migrator::apply_postgres`], through the app's own connection, so a sqlx
//! app on PostgreSQL needs no second connection.

use sqlx::{Connection as _, PgConnection};

use crate::{Error, Migration, Migrator, Report, Result, Status};

impl<'m> Migrator<'m> {
    /// [`apply_postgres`](Self::apply_postgres) on a sqlx `PgConnection`
    /// (features `sqlx` and `postgres`), so a sqlx app migrates through its
    /// own pool (`&mut *pool.acquire().await?`): the same backend, checks
    /// of the history, migration lock ([`lock`](Self::lock)), drift check,
    /// [`adopt`](Self::adopt), events and errors.
    ///
    /// Afterwards the connection is the app's again, whatever happened: no
    /// transaction is left open and no lock is kept (the lock is
    /// transaction-level, or released on every path). A connection inside a
    /// sqlx transaction of the app's (`&mut *tx`) is refused
    /// ([`Error::InTransaction`]): the migrations run in transactions of
    /// their own. The backend's statements are not kept in the connection's
    /// statement cache.
    ///
    /// The server's NOTICEs sent while a migration runs are not reported as
    /// [`Event::Notice`](crate::Event::Notice) on this driver: sqlx does not
    /// hand them to the app, it logs them (through `log`/`tracing`, target
    /// `sqlx::postgres::notice`; sqlx-postgres 0.9, `connection/stream.rs`).
    ///
    /// The future borrows the migrator, whose observer
    /// ([`on_event`](Self::on_event)) need not be `Send`: await it where it
    /// is made (as in `main` at start-up).
    ///
    /// # Errors
    ///
    /// As [`apply_postgres`](Self::apply_postgres): a failing statement is an
    /// [`Error::Sql`] with the file, the line and the server's message,
    /// detail and hint; other errors of the server or the connection are
    /// [`Error::Sqlx`] (where the other drivers give [`Error::Postgres`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migration, Migrator, Script};
    /// use migrate_runtime::sqlx::postgres::PgPoolOptions;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let migrations = [Migration::new(1, "create_users", Script::new(
    ///     "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
    ///     "migrations/0001_create_users.sql",
    /// ))];
    /// let pool = PgPoolOptions::new().connect("postgres://app@localhost/app").await?;
    /// let report = Migrator::new(&migrations)
    ///     .apply_sqlx_pg(&mut *pool.acquire().await?)
    ///     .await?;
    /// print!("{report}");
    /// // The app's own queries, on the same pool.
    /// migrate_runtime::sqlx::query("INSERT INTO users VALUES (1, 'ada')").execute(&pool).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn apply_sqlx_pg(&self, conn: &mut PgConnection) -> Result<Report> {
        refuse_transaction(conn)?;
        self.run_postgres(conn, None).await
    }

    /// [`migrate_to_postgres`](Self::migrate_to_postgres) on a sqlx
    /// `PgConnection`, as [`apply_sqlx_pg`](Self::apply_sqlx_pg) does
    /// `apply_postgres`.
    ///
    /// # Errors
    ///
    /// As [`migrate_to_postgres`](Self::migrate_to_postgres), with
    /// [`Error::Sqlx`] for [`Error::Postgres`].
    pub async fn migrate_to_sqlx_pg(&self, conn: &mut PgConnection, target: u64) -> Result<Report> {
        self.check_target(target)?;
        refuse_transaction(conn)?;
        self.run_postgres(conn, Some(target)).await
    }

    /// [`status_postgres`](Self::status_postgres) on a sqlx `PgConnection`.
    /// Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`status_postgres`](Self::status_postgres), with [`Error::Sqlx`]
    /// for [`Error::Postgres`].
    pub async fn status_sqlx_pg(&self, conn: &mut PgConnection) -> Result<Status<'m>> {
        self.status_pg(conn).await
    }

    /// [`pending_postgres`](Self::pending_postgres) on a sqlx
    /// `PgConnection`. Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`pending_postgres`](Self::pending_postgres), with
    /// [`Error::Sqlx`] for [`Error::Postgres`].
    pub async fn pending_sqlx_pg(&self, conn: &mut PgConnection) -> Result<Vec<&'m Migration>> {
        self.pending_pg(conn).await
    }
}

/// [`Error::InTransaction`] for a connection inside a sqlx transaction
/// (sqlx counts the transactions it began on the connection).
fn refuse_transaction(conn: &PgConnection) -> Result<()> {
    if conn.is_in_transaction() {
        return Err(Error::InTransaction);
    }
    Ok(())
}
