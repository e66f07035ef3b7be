//! Apply schema migrations to SQLite at start-up: in order, each in a
//! transaction together with its tracking row, refusing with a clear error
//! when the database's history and the code disagree, and safe when several
//! processes start at once.
//!
//! Apps normally use the module that `migrate-build` generates from a
//! `migrations/` directory, which builds a `static` list of [`Migration`]s and
//! calls [`Migrator::apply`]:
//!
//! ```ignore
//! mod migrations {
//!     include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
//! }
//!
//! let mut conn = migrate_runtime::rusqlite::Connection::open("app.db")?;
//! let report = migrations::apply(&mut conn)?;
//! ```
//!
//! The runner can be used on its own, too:
//!
//! ```
//! use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
//!
//! let migrations = [
//!     Migration::new(1, "create_users", Script::new(
//!         "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
//!         "migrations/0001_create_users.up.sql",
//!     ))
//!     .with_down(Script::new("DROP TABLE users;", "migrations/0001_create_users.down.sql")),
//! ];
//! let mut conn = Connection::open_in_memory()?;
//! let migrator = Migrator::new(&migrations);
//! migrator.apply(&mut conn)?;
//! assert_eq!(migrator.pending(&conn)?.len(), 0);
//! migrator.migrate_to(&mut conn, 0)?; // roll everything back
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Which SQLite
//!
//! By default SQLite is compiled into the program (the `bundled` feature,
//! rusqlite's feature of the same name), so nothing needs to be installed.
//! To link the system's SQLite instead, or SQLCipher, turn default features
//! off and choose through [`rusqlite`]'s features, in the app's
//! `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! migrate-runtime = { version = "0.1", default-features = false, features = ["rusqlite"] }
//! # SQLCipher instead of the system library:
//! # rusqlite = { version = "0.37", features = ["bundled-sqlcipher"] }
//! ```
//!
//! Cargo unifies features, so `bundled` is off only when no crate of the
//! build turns it on. A system SQLite must be 3.37 or newer (the
//! foreign-key check reads `pragma_table_list`). `migrate-build` and
//! `cargo-migrate` keep the bundled SQLite for the build-time replay.
//!
//! # PostgreSQL
//!
//! With the feature `postgres`, `Migrator::apply_postgres`,
//! `migrate_to_postgres`, `status_postgres` and `pending_postgres` do the
//! same on a `postgres::Client` (the driver is re-exported as
//! `migrate_runtime::postgres`), with [`Migrator::schema`] and
//! [`Migrator::lock`] for PostgreSQL's schemas and lock modes. With the
//! feature `tokio-postgres`, `apply_tokio_postgres` and its siblings do it
//! on an async `tokio_postgres::Client` (re-exported as
//! `migrate_runtime::tokio_postgres`), through the same backend. Without the
//! default feature `rusqlite`, no SQLite is compiled.
//!
//! # sqlx
//!
//! With the feature `sqlx` (sqlx is re-exported as `migrate_runtime::sqlx`),
//! the backends turned on also run on sqlx's connections, so a sqlx app
//! migrates through its own pool:
//!
//! - with `rusqlite`, `Migrator::apply_sqlx_sqlite`,
//!   `migrate_to_sqlx_sqlite`, `status_sqlx_sqlite` and `pending_sqlx_sqlite`
//!   run the SQLite backend on a sqlx `SqliteConnection`, on the
//!   connection's own SQLite handle: one SQLite library in the program,
//!   sqlx's;
//! - with `postgres`, `Migrator::apply_sqlx_pg`, `migrate_to_sqlx_pg`,
//!   `status_sqlx_pg` and `pending_sqlx_pg` run the PostgreSQL backend on a
//!   sqlx `PgConnection` (async). A PostgreSQL app turns default features
//!   off (`features = ["postgres", "sqlx"]`), so no SQLite is compiled; an
//!   SQLite app leaves `postgres` off, so sqlx's PostgreSQL driver is not
//!   compiled. The `postgres` crate is still compiled (the backend's other
//!   driver), but no connection of its is made.
//!
//! # The tracking table
//!
//! `_migrations` by default: `version INTEGER PRIMARY KEY, name TEXT,
//! checksum TEXT` (SHA-256 of the up file, hex), `applied_at TEXT` (UTC, RFC
//! 3339) and `duration_ms INTEGER`.

#![warn(unreachable_pub)]
// Built with no backend at all, only the types and the plan are of use.
#![cfg_attr(
    not(any(feature = "rusqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

// The feature `sqlx` runs the backends turned on over sqlx's connections;
// without one it would compile to nothing usable.
#[cfg(all(feature = "sqlx", not(feature = "rusqlite"), not(feature = "postgres")))]
compile_error!(
    "migrate-runtime's feature `sqlx` applies migrations on sqlx's connections of the backends turned on, and none is: add \"postgres\" to the features for a `PgConnection` (`Migrator::apply_sqlx_pg`), or \"rusqlite\" for a `SqliteConnection` (`Migrator::apply_sqlx_sqlite`)"
);

mod apply;
mod backend;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
mod backfill;
mod downgrade;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
mod drift;
mod error;
#[cfg(feature = "rusqlite")]
mod foreign_keys;
mod history;
mod migration;
mod migrator;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
pub mod model;
#[cfg(feature = "postgres")]
mod pg;
mod pgsql;
mod plan;
mod ready;
#[cfg(feature = "rusqlite")]
mod replay_cache;
mod report;
#[cfg(feature = "rusqlite")]
pub mod schema;
#[cfg(feature = "rusqlite")]
mod scratch;
#[cfg(feature = "rusqlite")]
mod session;
mod sql;
#[cfg(all(feature = "sqlx", feature = "rusqlite"))]
mod sqlx_sqlite;
mod squash;
#[doc(hidden)]
pub use sql::line_at_byte;
mod previous;
#[cfg(feature = "rusqlite")]
mod record;
mod testing;
#[cfg(feature = "rusqlite")]
mod validate;

#[cfg(any(feature = "rusqlite", feature = "postgres"))]
pub use backfill::{Backfill, NotBatchable};
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
pub use drift::{DriftPolicy, SchemaDiff};
#[cfg(not(feature = "rusqlite"))]
pub use error::SqliteCode;
pub use error::{Direction, Error, Result};
pub use history::Applied;
#[doc(hidden)]
pub use history::digest_of;
pub use migration::{Checksum, Migration, Phase, Script};
pub use migrator::{DEFAULT_LOCK_TIMEOUT, DEFAULT_TABLE, Lock, Migrator};
#[cfg(feature = "tokio-postgres")]
pub use pg::NoticeForwarder;
#[cfg(feature = "postgres")]
pub use pg::TestDatabase;
#[cfg(feature = "postgres")]
pub use pg::forward_notices;
pub use previous::Previous;
#[cfg(feature = "rusqlite")]
#[doc(hidden)]
pub use replay_cache::{ReplayCache, Verified};
pub use report::{CONTRACT_HINT, Entry, Event, Held, Notice, Report, State, Status, Step};
pub use squash::{EarlierSquash, Squash};
#[cfg(feature = "rusqlite")]
pub use validate::{Validated, Warning};

/// The 1-based line of each statement in `sql`, as the runner splits it
/// (`;` outside strings, quoted names, comments and trigger bodies).
///
/// # Examples
///
/// ```
/// assert_eq!(migrate_runtime::statement_lines("SELECT 1;\n\nSELECT ';';"), vec![1, 3]);
/// ```
pub fn statement_lines(sql: &str) -> Vec<usize> {
    sql::statements(sql).iter().map(|s| s.line).collect()
}

/// Each statement of `sql` with its 1-based line, as the runner splits it
/// ([`statement_lines`]): the statements the build's lint looks at.
///
/// # Examples
///
/// ```
/// let sql = "CREATE TABLE t (x);\nDELETE FROM t;";
/// assert_eq!(migrate_runtime::statements(sql), vec![(1, "CREATE TABLE t (x);"), (2, "DELETE FROM t;")]);
/// ```
pub fn statements(sql: &str) -> Vec<(usize, &str)> {
    sql::statements(sql).iter().map(|s| (s.line, s.text)).collect()
}

/// The 1-based line of each statement of a PostgreSQL script, as the
/// PostgreSQL backend splits it (`;` outside strings, `E''` strings, quoted
/// names, nested comments, `$tag$` dollar quotes and `BEGIN ATOMIC`
/// bodies); or the line and kind of a construct the script opens and
/// never closes. Needs no server and no feature: `migrate-build` checks
/// PostgreSQL migrations with it.
///
/// # Errors
///
/// The line where an unterminated string, quoted name, comment, dollar
/// quote or `BEGIN ATOMIC` body starts, and what it is.
///
/// # Examples
///
/// ```
/// let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT f();";
/// assert_eq!(migrate_runtime::postgres_statement_lines(sql), Ok(vec![1, 2]));
/// assert!(migrate_runtime::postgres_statement_lines("SELECT 'oops;").is_err());
/// ```
pub fn postgres_statement_lines(sql: &str) -> std::result::Result<Vec<usize>, (usize, &'static str)> {
    postgres_statements(sql).map(|all| all.iter().map(|(line, _)| *line).collect())
}

/// Each statement of a PostgreSQL script with its 1-based line, split as
/// [`postgres_statement_lines`] splits it.
///
/// # Errors
///
/// As [`postgres_statement_lines`].
///
/// # Examples
///
/// ```
/// let sql = "CREATE TABLE t (x text DEFAULT ';');\nDROP TABLE t;";
/// let all = migrate_runtime::postgres_statements(sql).unwrap();
/// assert_eq!(all, vec![(1, "CREATE TABLE t (x text DEFAULT ';');"), (2, "DROP TABLE t;")]);
/// ```
pub fn postgres_statements(sql: &str) -> std::result::Result<Vec<(usize, &str)>, (usize, &'static str)> {
    match pgsql::unterminated(sql) {
        Some(open) => Err(open),
        None => Ok(pgsql::statements(sql).iter().map(|s| (s.line, s.text)).collect()),
    }
}

/// The `rusqlite` this crate is built with: use it, so your connection type
/// matches.
#[cfg(feature = "rusqlite")]
pub use rusqlite;

/// The `postgres` crate (the sync driver) this crate is built with
/// (feature `postgres`): use it, so your `Client` type matches.
#[cfg(feature = "postgres")]
pub use ::postgres;
#[cfg(feature = "postgres")]
pub use pg::scratch::ScratchDatabase;

/// The sqlx this crate is built with (feature `sqlx`): use it, or the same
/// version, so your `SqliteConnection` or `PgConnection` type is the one
/// `Migrator::apply_sqlx_sqlite` or `Migrator::apply_sqlx_pg` takes.
#[cfg(feature = "sqlx")]
pub use ::sqlx;

/// The async `tokio-postgres` driver this crate is built with (feature
/// `tokio-postgres`): use it, so your `Client` type matches.
#[cfg(feature = "tokio-postgres")]
pub use ::tokio_postgres;

/// Builds a `static` [`Migration`]; used by the code `migrate-build`
/// generates, not meant to be written by hand. `schema:` (optional, last)
/// is the [fingerprint](model::fingerprint) of the schema right after the
/// migration, for the start-up drift check; `phase:` and `contract_of:`
/// (optional, after it) carry `-- migrate:phase` and `-- migrate:contract-of`;
/// `up_batch:` (optional) carries `-- migrate:batch N`.
#[doc(hidden)]
#[macro_export]
macro_rules! __migration {
    (
        version: $version:expr,
        name: $name:expr,
        checksum: $checksum:expr,
        up: $up:expr,
        up_file: $up_file:expr,
        up_no_transaction: $up_nt:expr,
        $(up_batch: $batch:expr,)?
        $(down: $down:expr, down_file: $down_file:expr, down_no_transaction: $down_nt:expr,)?
        $(schema: $schema:expr,)?
        $(phase: $phase:ident, $(contract_of: $of:expr,)?)?
    ) => {
        $crate::__migration!(
            @phase
            $crate::__migration!(
                @build
                $version,
                $name,
                $crate::Script::__from_static($up, $up_file, $up_nt)$(.with_batch($batch))?,
                $crate::__migration!(@down $($down, $down_file, $down_nt)?),
                $crate::Checksum::from_hex($checksum);
                $($schema)?
            );
            $($phase $(, $of)?)?
        )
    };
    (@phase $m:expr;) => {
        $m
    };
    (@phase $m:expr; $phase:ident) => {
        $m.with_phase($crate::Phase::$phase)
    };
    (@phase $m:expr; $phase:ident, $of:expr) => {
        $m.with_phase($crate::Phase::$phase).with_contract_of($of)
    };
    (@build $version:expr, $name:expr, $up:expr, $down:expr, $checksum:expr;) => {
        $crate::Migration::__from_static($version, $name, $up, $down, $checksum)
    };
    (@build $version:expr, $name:expr, $up:expr, $down:expr, $checksum:expr; $schema:expr) => {
        $crate::Migration::__from_static_with_schema($version, $name, $up, $down, $checksum, $schema)
    };
    (@down) => {
        ::core::option::Option::None
    };
    (@down $down:expr, $down_file:expr, $down_nt:expr) => {
        ::core::option::Option::Some($crate::Script::__from_static($down, $down_file, $down_nt))
    };
}

/// Expands to its input when this crate has its feature `tokio-postgres`,
/// else to nothing: the generated module's async functions use it, since
/// the module is compiled in the app, where `cfg(feature = …)` would name
/// the app's features, not this crate's.
#[cfg(feature = "tokio-postgres")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_tokio_postgres {
    ($($item:tt)*) => {
        $($item)*
    };
}

/// Expands to its input when this crate has its feature `tokio-postgres`,
/// else to nothing (this build: nothing).
#[cfg(not(feature = "tokio-postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_tokio_postgres {
    ($($item:tt)*) => {};
}
