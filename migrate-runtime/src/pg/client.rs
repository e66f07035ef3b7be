//! The few things the PostgreSQL backend asks of a connection, for the sync
//! `postgres` crate's [`Client`](postgres::Client), with the feature
//! `tokio-postgres` the async [`tokio_postgres::Client`], and with the
//! feature `sqlx` sqlx's `PgConnection`: one backend, one apply loop, three
//! drivers.
//!
//! The trait speaks no driver's types: parameters are [`Param`]s, rows are
//! [`Row`]s of the few kinds of values the backend reads ([`Cell`]), a
//! simple query's answer is [`Message`]s of text, and an error is a
//! [`PgError`] that keeps the driver's own error (for [`Error::Postgres`]
//! and [`Error::Sqlx`]) and reads the server's SQLSTATE, message, detail,
//! hint and position from it.

use std::time::Duration;

use crate::Error;

/// A statement's parameter: text (or NULL), or a `bigint`.
pub(crate) enum Param<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

/// What can be a statement's parameter.
pub(crate) trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Some(self))
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Some(self))
    }
}

impl ToParam for Option<String> {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self.as_deref())
    }
}

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

/// One value of a row, of the kinds the backend reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    Bool(bool),
    Int(i64),
    Texts(Vec<String>),
}

/// What a [`Cell`] can be read as ([`Row::get`]).
pub(crate) trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl FromCell for i32 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(n) => i32::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl FromCell for Vec<String> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Texts(texts) => Some(texts.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            cell => T::from_cell(cell).map(Some),
        }
    }
}

/// A row of a statement run with parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(Vec<Cell>);

impl Row {
    /// The value of column `i` as a `T`.
    ///
    /// # Panics
    ///
    /// When the row has no column `i`, or its value is not a `T` (as
    /// tokio-postgres' `Row::get`): the backend's own statements name their
    /// columns' types, so this is a bug of the backend's.
    pub(crate) fn get<T: FromCell>(&self, i: usize) -> T {
        let cell = self.0.get(i).unwrap_or(&Cell::Null);
        T::from_cell(cell).unwrap_or_else(|| {
            panic!(
                "column {i} is {cell:?}, not a {}: a statement of migrate-runtime's PostgreSQL backend reads the wrong type",
                std::any::type_name::<T>()
            )
        })
    }
}

/// A message of a simple query's answer.
pub(crate) enum Message {
    /// A row, each value as the server's text (`None`: NULL).
    Row(Vec<Option<String>>),
    /// A statement of the query string completed.
    Complete,
}

/// The server's fields of an error (PostgreSQL's manual, "Error and Notice
/// Message Fields").
pub(crate) struct ServerError<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) hint: Option<&'a str>,
    /// The error's position in the query string, in characters from 1.
    pub(crate) position: Option<u32>,
}

/// A driver's error, kept whole for the public [`Error`].
#[derive(Debug)]
pub(crate) enum PgError {
    Postgres(tokio_postgres::Error),
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::Error),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

#[cfg(feature = "sqlx")]
impl From<sqlx::Error> for PgError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sqlx(e)
    }
}

impl PgError {
    /// The server's fields, when the server sent the error.
    pub(crate) fn server(&self) -> Option<ServerError<'_>> {
        match self {
            Self::Postgres(e) => server_of_tokio(e),
            #[cfg(feature = "sqlx")]
            Self::Sqlx(e) => server_of_sqlx(e),
        }
    }

    /// The SQLSTATE of a server error.
    pub(crate) fn code(&self) -> Option<&str> {
        self.server().map(|s| s.code)
    }

    /// Whether the connection was lost (sqlx says so by its error, not by
    /// the connection).
    pub(crate) fn lost(&self) -> bool {
        match self {
            Self::Postgres(e) => e.is_closed(),
            #[cfg(feature = "sqlx")]
            Self::Sqlx(e) => matches!(e, sqlx::Error::Io(_)),
        }
    }

    /// The public error: [`Error::Postgres`] or [`Error::Sqlx`].
    pub(crate) fn into_error(self, doing: String) -> Error {
        match self {
            Self::Postgres(cause) => Error::Postgres { doing, cause },
            #[cfg(feature = "sqlx")]
            Self::Sqlx(cause) => Error::Sqlx { doing, cause },
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(e) => e.fmt(f),
            #[cfg(feature = "sqlx")]
            Self::Sqlx(e) => e.fmt(f),
        }
    }
}

/// tokio-postgres' [`DbError`](tokio_postgres::error::DbError) fields.
pub(crate) fn server_of_tokio(e: &tokio_postgres::Error) -> Option<ServerError<'_>> {
    let db = e.as_db_error()?;
    Some(ServerError {
        code: db.code().code(),
        message: db.message(),
        detail: db.detail(),
        hint: db.hint(),
        position: match db.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
            _ => None,
        },
    })
}

/// sqlx's [`PgDatabaseError`](sqlx::postgres::PgDatabaseError) fields.
#[cfg(feature = "sqlx")]
pub(crate) fn server_of_sqlx(e: &sqlx::Error) -> Option<ServerError<'_>> {
    let db = e
        .as_database_error()?
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    Some(ServerError {
        code: db.code(),
        message: db.message(),
        detail: db.detail(),
        hint: db.hint(),
        position: match db.position() {
            Some(sqlx::postgres::PgErrorPosition::Original(p)) => u32::try_from(p).ok(),
            _ => None,
        },
    })
}

/// A PostgreSQL connection the backend can use.
pub(crate) trait PgClient {
    /// Runs `sql` (one or more statements) as one simple query.
    async fn batch_execute(&mut self, sql: &str) -> Result<(), PgError>;

    /// Runs `sql` as one simple query, returning the server's rows (as
    /// text) and the end of each statement.
    async fn simple_query(&mut self, sql: &str) -> Result<Vec<Message>, PgError>;

    /// Runs one statement with parameters, returning its rows.
    async fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, PgError>;

    /// Runs one statement with parameters, returning the rows it changed.
    async fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, PgError>;

    /// Whether the connection is lost.
    fn is_closed(&self) -> bool;

    /// Pauses the run (between tries for a lock) without blocking other
    /// tasks, where there are any.
    async fn sleep(&mut self, pause: Duration);
}

/// tokio-postgres' parameters for `params`.
fn tokio_params<'a>(params: &'a [&'a dyn ToParam]) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + 'a>> {
    params
        .iter()
        .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync + 'a> {
            match p.to_param() {
                Param::Text(text) => Box::new(text),
                Param::Int(n) => Box::new(n),
            }
        })
        .collect()
}

/// Runs `f` with `params` as tokio-postgres' parameter slice.
fn with_tokio_params<'a, T>(
    params: &'a [&'a dyn ToParam],
    f: impl FnOnce(&[&(dyn tokio_postgres::types::ToSql + Sync)]) -> T,
) -> T {
    let owned = tokio_params(params);
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = owned.iter().map(|b| &**b as _).collect();
    f(&refs)
}

/// A tokio-postgres row as a [`Row`].
fn tokio_row(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    use tokio_postgres::types::Type;
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool)
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(|n| Cell::Int(n.into()))
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(|n| Cell::Int(n.into()))
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if matches!(*ty, Type::TEXT_ARRAY | Type::NAME_ARRAY | Type::VARCHAR_ARRAY) {
            row.try_get::<_, Option<Vec<String>>>(i)?.map(Cell::Texts)
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

/// A tokio-postgres simple query's answer as [`Message`]s.
fn tokio_messages(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Vec<Message> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(Message::Row(
                (0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect(),
            )),
            tokio_postgres::SimpleQueryMessage::CommandComplete(_) => Some(Message::Complete),
            _ => None,
        })
        .collect()
}

impl PgClient for postgres::Client {
    async fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
        Ok(postgres::Client::batch_execute(self, sql)?)
    }

    async fn simple_query(&mut self, sql: &str) -> Result<Vec<Message>, PgError> {
        Ok(tokio_messages(postgres::Client::simple_query(self, sql)?))
    }

    async fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, PgError> {
        let rows = with_tokio_params(params, |p| postgres::Client::query(self, sql, p))?;
        Ok(rows.iter().map(tokio_row).collect::<Result<_, _>>()?)
    }

    async fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, PgError> {
        Ok(with_tokio_params(params, |p| postgres::Client::execute(self, sql, p))?)
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
    async fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
        Ok(tokio_postgres::Client::batch_execute(self, sql).await?)
    }

    async fn simple_query(&mut self, sql: &str) -> Result<Vec<Message>, PgError> {
        Ok(tokio_messages(tokio_postgres::Client::simple_query(self, sql).await?))
    }

    async fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, PgError> {
        let owned = tokio_params(params);
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = owned.iter().map(|b| &**b as _).collect();
        let rows = tokio_postgres::Client::query(self, sql, &refs).await?;
        Ok(rows.iter().map(tokio_row).collect::<Result<_, _>>()?)
    }

    async fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, PgError> {
        let owned = tokio_params(params);
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = owned.iter().map(|b| &**b as _).collect();
        Ok(tokio_postgres::Client::execute(self, sql, &refs).await?)
    }

    fn is_closed(&self) -> bool {
        tokio_postgres::Client::is_closed(self)
    }

    async fn sleep(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }
}

#[cfg(feature = "sqlx")]
mod sqlx_pg {
    use std::time::Duration;

    use sqlx::postgres::{PgArguments, PgConnection, PgRow};
    use sqlx::{AssertSqlSafe, Either, Row as _, TypeInfo as _};

    use super::{Cell, Message, Param, PgClient, PgError, Row, ToParam};

    /// `sql` with `params` bound, not kept as a prepared statement (a
    /// migration changes the schema under the app's cached statements; ours
    /// need not add to them).
    fn bound(sql: &str, params: &[&dyn ToParam]) -> sqlx::query::Query<'static, sqlx::Postgres, PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(false);
        for p in params {
            query = match p.to_param() {
                Param::Text(text) => query.bind(text.map(str::to_owned)),
                Param::Int(n) => query.bind(n),
            };
        }
        query
    }

    /// A sqlx row (binary values, typed) as a [`Row`].
    fn row_of(row: &PgRow) -> Result<Row, PgError> {
        let mut cells = Vec::with_capacity(row.len());
        for (i, column) in sqlx::Row::columns(row).iter().enumerate() {
            let name = sqlx::Column::type_info(column).name();
            let cell = match name {
                "BOOL" => row.try_get::<Option<bool>, _>(i)?.map(Cell::Bool),
                "INT2" => row.try_get::<Option<i16>, _>(i)?.map(|n| Cell::Int(n.into())),
                "INT4" => row.try_get::<Option<i32>, _>(i)?.map(|n| Cell::Int(n.into())),
                "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Cell::Int),
                "TEXT[]" | "NAME[]" | "VARCHAR[]" => row.try_get::<Option<Vec<String>>, _>(i)?.map(Cell::Texts),
                _ => row.try_get::<Option<String>, _>(i)?.map(Cell::Text),
            };
            cells.push(cell.unwrap_or(Cell::Null));
        }
        Ok(Row(cells))
    }

    /// A simple query's row: every value is the server's text (the simple
    /// protocol sends text), read without sqlx's type check.
    fn text_row(row: &PgRow) -> Result<Vec<Option<String>>, PgError> {
        (0..row.len())
            .map(|i| row.try_get_unchecked::<Option<String>, _>(i).map_err(PgError::from))
            .collect()
    }

    impl PgClient for PgConnection {
        async fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
            // `raw_sql`: the simple query protocol, several statements in
            // one round trip (sqlx's `raw_sql` docs).
            sqlx::Executor::execute(&mut *self, sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))).await?;
            Ok(())
        }

        async fn simple_query(&mut self, sql: &str) -> Result<Vec<Message>, PgError> {
            let mut stream = sqlx::Executor::fetch_many(&mut *self, sqlx::raw_sql(AssertSqlSafe(sql.to_owned())));
            let mut messages = Vec::new();
            while let Some(next) = std::future::poll_fn(|cx| futures_core::Stream::poll_next(stream.as_mut(), cx)).await
            {
                messages.push(match next? {
                    Either::Left(_) => Message::Complete,
                    Either::Right(row) => Message::Row(text_row(&row)?),
                });
            }
            Ok(messages)
        }

        async fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, PgError> {
            let rows = bound(sql, params).fetch_all(&mut *self).await?;
            rows.iter().map(row_of).collect()
        }

        async fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, PgError> {
            Ok(bound(sql, params).execute(&mut *self).await?.rows_affected())
        }

        fn is_closed(&self) -> bool {
            // sqlx does not say; a lost connection's ROLLBACK fails with an
            // I/O error, which `rollback` reports.
            false
        }

        async fn sleep(&mut self, pause: Duration) {
            // sqlx's own timer: tokio's, or async-io's, as the app's sqlx
            // runtime is.
            sqlx_core::rt::sleep(pause).await;
        }
    }
}
