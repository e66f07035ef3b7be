//! The narrow seam between the backend-neutral runner (the plan and the
//! apply loop in `apply.rs`) and a database: begin a transaction under the
//! migration lock, read and change the tracking table, run a script.
//! SQLite implements it in `session.rs`, PostgreSQL in `postgres/`.

use std::time::Duration;

use crate::{Applied, Direction, Migration, Migrator, Notice, Result, Script};

/// One database, for the duration of one run of the migrator.
///
/// Its methods are `async` so that one apply loop serves both kinds of
/// driver: a blocking one (rusqlite, the sync `postgres` crate) returns
/// ready futures, which [`crate::ready::now`] completes in one poll, and
/// `tokio-postgres` awaits the server.
pub(crate) trait Backend {
    /// What [`summary`](Self::summary) returns: compared for equality only.
    type Summary: PartialEq;

    /// Begins a transaction and takes the migration lock inside it, before
    /// any history is read, waiting up to the migrator's lock timeout (and
    /// adding the time waited to `waited`).
    async fn begin(&mut self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<()>;

    /// Commits the open transaction (which releases the lock).
    async fn commit(&mut self) -> Result<()>;

    /// Rolls the open transaction back, if there is one.
    async fn rollback(&mut self) -> Result<()>;

    /// Creates the tracking table when it is missing, in the open transaction.
    async fn create_table(&mut self, migrator: &Migrator<'_>) -> Result<()>;

    /// A cheap token that changes when another process changed the
    /// history. Asked right after [`begin`](Self::begin) (the history
    /// then, under the lock) and right after [`record`](Self::record)
    /// (the history as this run left it, to compare with the next
    /// transaction's). `None` when the backend has none at that moment:
    /// the history is then read again.
    async fn summary(&mut self, migrator: &Migrator<'_>) -> Result<Option<Self::Summary>>;

    /// Every applied migration, oldest first.
    async fn read(&mut self, migrator: &Migrator<'_>) -> Result<Vec<Applied>>;

    /// Under the lock, before anything runs: refuses (or reports) a schema
    /// that is not what the applied migrations in `history` made, as the
    /// migrator's drift policy says. By default a backend does not check.
    async fn check_drift(&mut self, _migrator: &Migrator<'_>, _history: &[Applied]) -> Result<()> {
        Ok(())
    }

    /// Under the lock, before the history is planned: takes over the
    /// history of the tool [`Migrator::adopt`] names when ours is empty,
    /// recording its applied migrations without running them. Returns the
    /// versions recorded. Backends that cannot refuse it.
    async fn adopt(&mut self, migrator: &Migrator<'_>, _history: &[Applied]) -> Result<Vec<u64>> {
        match migrator.previous {
            None => Ok(Vec::new()),
            Some(p) => Err(crate::Error::Unsupported {
                what: format!("Migrator::adopt(Previous::{p:?}) on this backend"),
                instead: "taking over another tool's history is done on SQLite and PostgreSQL; take it over with `cargo migrate import --database URL` before the app starts",
            }),
        }
    }

    /// Runs a script inside the open transaction. A backend may record it
    /// in the same round trip (PostgreSQL does): then its
    /// [`record`](Self::record) for this step has nothing left to do.
    async fn run_in_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()>;

    /// Runs a `-- migrate:no-transaction` script: ends the open
    /// transaction, runs the script outside one, and begins (and locks)
    /// again, so the caller records it in a transaction as usual.
    async fn run_outside_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()>;

    /// The server's messages while the last script ran, oldest first
    /// (PostgreSQL's NOTICEs; other backends have none).
    fn notices(&mut self) -> Vec<Notice> {
        Vec::new()
    }

    /// Records that `m` ran in `direction`: inserts (up) or deletes (down)
    /// its tracking row, in the open transaction.
    async fn record(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        duration: Duration,
    ) -> Result<()>;
}
