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
//! # The tracking table
//!
//! `_migrations` by default: `version INTEGER PRIMARY KEY, name TEXT,
//! checksum TEXT` (SHA-256 of the up file, hex), `applied_at TEXT` (UTC, RFC
//! 3339) and `duration_ms INTEGER`.

mod error;
mod history;
mod migration;
mod runner;
pub mod schema;
mod sql;

pub use error::{Direction, Error, Result};
pub use history::Applied;
pub use migration::{Checksum, Migration, Script};
pub use runner::{DEFAULT_LOCK_TIMEOUT, DEFAULT_TABLE, Entry, Event, Migrator, Report, State, Status, Step};

/// The `rusqlite` this crate is built with: use it, so your connection type
/// matches.
pub use rusqlite;
