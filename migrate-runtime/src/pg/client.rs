//! The few things the PostgreSQL backend asks of a connection, for the sync
//! `postgres` crate's [`Client`](postgres::Client) and, with the feature
//! `tokio-postgres`, the async [`tokio_postgres::Client`]: one backend, one
//! apply loop, two drivers.

use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, SimpleQueryMessage};

/// A PostgreSQL connection the backend can use.
pub(crate) trait PgClient {
    /// Runs `sql` (one or more statements) as one simple query.
    async fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error>;

    /// Runs `sql` as one simple query, returning the server's messages.
    async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>;

    /// Runs one statement with parameters, returning its rows.
    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error>;

    /// Runs one statement with parameters, returning the rows it changed.
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error>;

    /// Whether the connection is lost.
    fn is_closed(&self) -> bool;

    /// Pauses the run (between tries for a lock) without blocking other
    /// tasks, where there are any.
    async fn sleep(&mut self, pause: Duration);
}

impl PgClient for postgres::Client {
    async fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        postgres::Client::batch_execute(self, sql)
    }

    async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        postgres::Client::simple_query(self, sql)
    }

    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error> {
        postgres::Client::query(self, sql, params)
    }

    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        postgres::Client::execute(self, sql, params)
    }

    fn is_closed(&self) -> bool {
        postgres::Client::is_closed(self)
    }

    async fn sleep(&mut self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

#[cfg(feature = "tokio-postgres")]
impl PgClient for tokio_postgres::Client {
    async fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        tokio_postgres::Client::batch_execute(self, sql).await
    }

    async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        tokio_postgres::Client::simple_query(self, sql).await
    }

    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error> {
        tokio_postgres::Client::query(self, sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        tokio_postgres::Client::execute(self, sql, params).await
    }

    fn is_closed(&self) -> bool {
        tokio_postgres::Client::is_closed(self)
    }

    async fn sleep(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }
}
