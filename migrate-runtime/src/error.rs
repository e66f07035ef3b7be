//! Errors of the runtime: each names what went wrong, where, and what to do next.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "rusqlite")]
use rusqlite::ErrorCode as SqliteCode;

/// Stands for SQLite's error code (the type of [`Error::Sql`]'s `code`)
/// when the runtime is built without SQLite (feature `rusqlite` off): it
/// has no value, the field is always `None`.
#[cfg(not(feature = "rusqlite"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqliteCode {}

#[cfg(feature = "rusqlite")]
use crate::session::UNCHECKABLE_ATTACH;
#[cfg(not(feature = "rusqlite"))]
const UNCHECKABLE_ATTACH: &str = "\u{0}never";

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which way a script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applying a migration.
    Up,
    /// Rolling a migration back.
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}

/// Everything that can go wrong while checking, applying or rolling back
/// migrations.
///
/// Each message is one line: what went wrong, where (file and line), and
/// what to do next. The database's own message is part of the text; it is
/// never repeated by [`std::error::Error::source`].
///
/// Its `Debug` is that same text, so `fn main() -> Result<(), Box<dyn
/// std::error::Error>>` with `?` prints the readable message rather than
/// the variant's fields (match on the variant to read them).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement of a migration failed.
    #[error("{file}:{line}: {direction} migration {version} `{name}` failed: {message}; {}", sql_hint(*.rolled_back, *.code, message))]
    Sql {
        /// Up or down.
        direction: Direction,
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// The script's file.
        file: String,
        /// 1-based line of the failing statement (or of the failing token).
        line: usize,
        /// The failing statement.
        statement: String,
        /// SQLite's message.
        message: String,
        /// SQLite's error code, when there is one.
        code: Option<SqliteCode>,
        /// Whether the migration's transaction was rolled back (false only for
        /// `-- migrate:no-transaction` scripts, whose earlier statements stay applied).
        rolled_back: bool,
    },

    /// An applied migration's file was edited after it was applied.
    #[error(
        "{file}: migration {version} `{name}` was changed after it was applied (checksum then {applied}, now {current}); restore the file as it was applied and put the change in a new migration, or allow it explicitly ({ALLOW_MODIFIED})"
    )]
    Modified {
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// The up script's file.
        file: String,
        /// Checksum recorded when it was applied.
        applied: String,
        /// Checksum of the code now.
        current: String,
    },

    /// An applied migration now has another name in the code.
    #[error(
        "{file}: migration {version} was applied as `{applied_name}` but is now called `{name}`; a renamed or renumbered migration is a different migration: restore the old name, or allow it explicitly ({ALLOW_MODIFIED})"
    )]
    Renamed {
        /// The migration's version.
        version: u64,
        /// The name recorded in the database.
        applied_name: String,
        /// The name in the code.
        name: String,
        /// The up script's file.
        file: String,
    },

    /// The database has applied migrations this program does not know.
    #[error("{}", unknown_applied(versions))]
    UnknownApplied {
        /// Version and name of each unknown applied migration.
        versions: Vec<(u64, String)>,
    },

    /// A pending migration sorts before one that is already applied.
    #[error(
        "{file}: migration {version} `{name}` is pending but migration {latest_applied} is already applied (two branches merged?); give it a number above {latest_applied} (`cargo migrate renumber`), or allow it explicitly ({ALLOW_OUT_OF_ORDER})"
    )]
    OutOfOrder {
        /// The pending migration's version.
        version: u64,
        /// The pending migration's name.
        name: String,
        /// Its up script's file.
        file: String,
        /// The newest applied version.
        latest_applied: u64,
    },

    /// Rolling back needs a down script that this migration does not have.
    #[error(
        "{file}: migration {version} `{name}` has no down script, so it cannot be rolled back; nothing was rolled back. Write a down script, or migrate to version {version} or later"
    )]
    Irreversible {
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// Its up script's file.
        file: String,
    },

    /// Rolling back a migration that only the database knows.
    #[error(
        "migration {version} `{name}` is applied but not in this program, so it cannot be rolled back; nothing was rolled back. Its file may have been deleted, or this is an older build: restore the file, or roll it back with the build that has it"
    )]
    UnknownRollback {
        /// The migration's version.
        version: u64,
        /// The name recorded in the database.
        name: String,
    },

    /// A target version that no migration has.
    #[error("there is no migration {target}; the known versions are {}", known_versions(known))]
    UnknownTarget {
        /// The requested version.
        target: u64,
        /// The versions in the code.
        known: Vec<u64>,
    },

    /// A database with no tracking table, where its migrations' schema was
    /// asked for (drift detection).
    #[error(
        "the database has no tracking table `{table}`: it was never migrated, so there is no history to compare it with; run `cargo migrate up` (or the app) first, or check the database path and the table name"
    )]
    NotMigrated {
        /// The tracking table's name.
        table: String,
    },

    /// The database's schema is not what its applied migrations make
    /// (someone changed it by hand, or another tool did).
    #[error("the database's schema is not what its applied migrations{} make (drift): {}; run `cargo migrate diff` to see the differences, then write a migration that makes them, or undo them", version.map_or_else(String::new, |v| format!(" (up to {v})")), differences.join("; "))]
    Drift {
        /// The newest applied version.
        version: Option<u64>,
        /// The differences, one line each.
        differences: Vec<String>,
    },

    /// Another process held the write lock for longer than the timeout.
    #[error("the database is locked by another process: waited {}s for its write lock; {LOCKED_HINT}", waited.as_secs_f64().round())]
    Locked {
        /// How long we waited.
        waited: Duration,
    },

    /// The connection is inside a transaction of the caller's.
    #[error(
        "the connection is inside a transaction; finish it (COMMIT or ROLLBACK) before applying migrations, which run in transactions of their own"
    )]
    InTransaction,

    /// The tracking table exists but is not ours.
    #[error(
        "the tracking table `{table}` has the wrong shape ({message}); it was probably created by another tool. Choose another table name (table = \"…\" in [package.metadata.migrate]) or move that table away"
    )]
    TrackingTable {
        /// The table's name.
        table: String,
        /// What is wrong with it.
        message: String,
    },

    /// A migration left rows that violate a foreign key it did not violate before.
    #[error("{file}: {direction} migration {version} `{name}` would leave {rows} {} in `{table}` whose foreign key to `{parent}` points at nothing; it was rolled back. {FOREIGN_KEY_HINT}", plural(*rows == 1, "row", "rows"))]
    ForeignKey {
        /// Up or down.
        direction: Direction,
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// The script's file.
        file: String,
        /// The child table with violations.
        table: String,
        /// The parent table the key points to.
        parent: String,
        /// How many rows the migration made violate the key.
        rows: u64,
    },

    /// A down script does not give back the schema before its up script.
    #[error(
        "{file}:1: down migration {version} `{name}` does not undo its up: {difference}; make the down script restore exactly the schema before the up"
    )]
    NotReversible {
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// The down script's file.
        file: String,
        /// What differs.
        difference: String,
    },

    /// A script that must run outside a transaction in a grouped run.
    #[error(
        "{file}: migration {version} `{name}` runs outside a transaction (-- migrate:no-transaction), so it cannot be part of a grouped run; apply without grouping"
    )]
    NoTransactionInGroup {
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// Its file.
        file: String,
    },

    /// The migrations given to the migrator are not a valid sequence.
    #[error("invalid migration list: {message}")]
    InvalidSet {
        /// What is wrong.
        message: String,
    },

    /// Several problems found by [`crate::Migrator::validate`].
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Validation {
        /// Each problem, in migration order.
        problems: Vec<Error>,
    },

    /// A batched backfill (`-- migrate:batch N`) that cannot run in
    /// batches: its statement is not one `UPDATE … WHERE …`, or its table
    /// has no key to walk in ranges. Nothing of it ran.
    #[error("{file}:{line}: migration {version} `{name}` cannot run in batches (-- migrate:batch): {message}; {hint}")]
    Batch {
        /// The migration's version.
        version: u64,
        /// The migration's name.
        name: String,
        /// The script's file.
        file: String,
        /// 1-based line of the statement (or of the directive).
        line: usize,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },

    /// A setting this backend cannot honour.
    #[error("{what} is not supported: {instead}")]
    Unsupported {
        /// What was asked for, and where.
        what: String,
        /// Why, and what to do instead.
        instead: &'static str,
    },

    /// Migrations that cannot be recorded as applied without running them
    /// ([`crate::Migrator::record_applied`]).
    #[error("cannot record migration {version} as applied without running it: {reason}; nothing was recorded")]
    NotRecordable {
        /// The migration's version.
        version: u64,
        /// Why, and what to do instead.
        reason: String,
    },

    /// Another tool's history that cannot be taken over
    /// ([`crate::Migrator::adopt`], `cargo migrate import --database`).
    #[error("cannot take over the history of {tool}: {message}")]
    Adopt {
        /// The tool (`sqlx`, `golang-migrate`, …).
        tool: &'static str,
        /// What is wrong with its history, and what to do.
        message: String,
    },

    /// Any other PostgreSQL error (connecting, the tracking table, the lock).
    #[cfg(feature = "postgres")]
    #[error("{doing}: {}; {}", crate::pg::message_of(cause), postgres_hint(cause))]
    Postgres {
        /// What we were doing.
        doing: String,
        /// The driver's error.
        cause: ::postgres::Error,
    },

    /// An error of sqlx's (feature `sqlx`). On SQLite: sqlx could not lend
    /// its connection (the connection's worker stopped, or the connection
    /// is closed). On PostgreSQL (`Migrator::apply_sqlx_pg`): any error
    /// outside a migration's statements, as [`Error::Postgres`] is for the
    /// other drivers (the server's message, SQLSTATE, detail and hint).
    #[cfg(feature = "sqlx")]
    #[error("{doing}: {}", sqlx_text(cause))]
    Sqlx {
        /// What we were doing.
        doing: String,
        /// sqlx's error.
        cause: sqlx::Error,
    },

    /// Any other SQLite error.
    #[cfg(feature = "rusqlite")]
    #[error("{doing}: {}{}", message_of(cause), cause.sqlite_error_code().and_then(Error::hint_for).map(|h| format!("; {h}")).unwrap_or_default())]
    Database {
        /// What we were doing.
        doing: String,
        /// The driver's error.
        cause: rusqlite::Error,
    },

    /// The first migration is a squash baseline, and the database applied
    /// only some of the migrations it replaces.
    #[error(
        "{file}: migration {version} `{name}` replaces versions {first} to {version} (a squash), and the database applied only some of them: it lacks {}; migrate it to version {version} with a build from before the squash (or `cargo migrate up --to {version}` at that commit), then use this one",
        versions_of(missing)
    )]
    SquashedPartly {
        /// The baseline's version (the last one it replaces).
        version: u64,
        /// The baseline's name.
        name: String,
        /// The baseline's file.
        file: String,
        /// The first version it replaces.
        first: u64,
        /// The replaced versions the database has not applied.
        missing: Vec<u64>,
    },

    /// The first migration is a squash baseline, and the database applied
    /// every migration it replaces, but not as the squash recorded them.
    #[error(
        "{file}: migration {version} `{name}` replaces versions {first} to {version} (a squash), but the database applied them with other names or checksums than the squash recorded (a migration changed after it was applied, or another branch's migrations); migrate it with a build from before the squash, or make the squash again from the migrations that database applied"
    )]
    SquashMismatch {
        /// The baseline's version (the last one it replaces).
        version: u64,
        /// The baseline's name.
        name: String,
        /// The baseline's file.
        file: String,
        /// The first version it replaces.
        first: u64,
    },
    /// A downgrade ([`Migrator::allow_downgrade`](crate::Migrator::allow_downgrade))
    /// met an applied migration this program does not know and whose down
    /// script the database did not store.
    #[error(
        "migration {version} `{name}` is applied but not in this program (its newest is {newest}), and the database has no stored down script for it (it was applied without store_down = true), so it cannot be rolled back here; nothing was rolled back. Roll it back with the build that has it (`cargo migrate down --to {newest}` at that commit)"
    )]
    NoStoredDown {
        /// The migration's version.
        version: u64,
        /// The name recorded in the database.
        name: String,
        /// The newest version this program knows.
        newest: u64,
    },
}

impl fmt::Debug for Error {
    /// The readable message, as [`Display`](fmt::Display): what `main`
    /// prints when it returns this error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    #[cfg(feature = "rusqlite")]
    pub(crate) fn db(doing: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let doing = doing.into();
        move |cause| Self::Database { doing, cause }
    }

    /// What to do about a failing statement ([`Error::Sql`]), e.g. "remove
    /// BEGIN/COMMIT from the script", or about the rows a migration left
    /// without their parent ([`Error::ForeignKey`]), or a lock timeout
    /// ([`Error::Locked`]): the same words the message ends with, for tools
    /// that show the hint apart. `None` for other errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = migrate_runtime::Error::Locked { waited: std::time::Duration::from_secs(60) };
    /// assert!(e.to_string().ends_with(e.advice().unwrap()));
    /// ```
    #[must_use]
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            Self::Sql { code, message, .. } => Some(sql_advice(*code, message)),
            Self::ForeignKey { .. } => Some(FOREIGN_KEY_HINT),
            Self::Locked { .. } => Some(LOCKED_HINT),
            _ => None,
        }
    }

    /// What to do about SQLite's error `code`, when there is something to
    /// say: the one table of hints for SQLite's error codes, which the
    /// runtime's messages use and tools can share (e.g. a CLI that opens
    /// the database itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Error, rusqlite::ErrorCode};
    ///
    /// assert_eq!(Error::hint_for(ErrorCode::NotADatabase), Some("this file is not an SQLite database: check the path"));
    /// assert_eq!(Error::hint_for(ErrorCode::ConstraintViolation), None);
    /// ```
    #[must_use]
    #[cfg(feature = "rusqlite")]
    pub fn hint_for(code: rusqlite::ErrorCode) -> Option<&'static str> {
        use rusqlite::ErrorCode as C;
        Some(match code {
            C::DiskFull => "the disk is full (or the database reached max_page_count): free disk space and run again",
            C::ReadOnly | C::PermissionDenied => {
                "the database is read-only: SQLite needs write access to the file and to its directory (for the journal)"
            }
            C::NotADatabase => "this file is not an SQLite database: check the path",
            C::CannotOpen => "check that the path names a file and that its directory exists and is writable",
            C::DatabaseBusy | C::DatabaseLocked => LOCKED_HINT,
            C::DatabaseCorrupt => "the database file is damaged: restore it from a backup",
            _ => return None,
        })
    }

    /// SQLite's error code behind this error, if any (for example
    /// [`rusqlite::ErrorCode::DiskFull`]).
    #[cfg(feature = "rusqlite")]
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            Self::Sql { code, .. } => *code,
            Self::Database { cause, .. } => cause.sqlite_error_code(),
            Self::Locked { .. } => Some(rusqlite::ErrorCode::DatabaseBusy),
            _ => None,
        }
    }
}

/// What to do about a PostgreSQL error outside a migration's statements.
#[cfg(feature = "postgres")]
fn postgres_hint(cause: &::postgres::Error) -> &'static str {
    postgres_hint_for(cause.as_db_error().map(|d| d.code().code()), cause.is_closed())
}

/// What to do about a PostgreSQL error with SQLSTATE `code` (`None`: not
/// the server's), on a connection that is `closed` or not.
#[cfg(feature = "postgres")]
fn postgres_hint_for(code: Option<&str>, closed: bool) -> &'static str {
    match code {
        Some("42501") => {
            "the role lacks a privilege: grant it (CREATE on the schema or database), or connect as the owner"
        }
        Some("3D000") => "the database does not exist: create it (createdb) or check the URL",
        Some("28P01" | "28000") => "authentication failed: check the user and password in the URL",
        Some(_) => "check the server's message above",
        None if closed => "the connection to the server was lost: check that it runs and run again",
        None => "check the URL and that the server runs",
    }
}

fn plural(is_one: bool, one: &'static str, many: &'static str) -> &'static str {
    if is_one { one } else { many }
}

fn unknown_applied(versions: &[(u64, String)]) -> String {
    let one = versions.len() == 1;
    let (what, files, them) = if one {
        ("a migration", "its file", "it")
    } else {
        ("migrations", "their files", "them")
    };
    format!(
        "the database has applied {what} this program does not know: {}; {files} may have been deleted, or this is an older build than the one that applied {them}: restore the {}, run the newer build, or allow it explicitly ({ALLOW_UNKNOWN})",
        list(versions),
        plural(one, "file", "files"),
    )
}

fn list(versions: &[(u64, String)]) -> String {
    versions
        .iter()
        .map(|(v, n)| format!("{v} `{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `version 5`, `versions 5 to 7`, `versions 2, 5 and 7`.
fn versions_of(versions: &[u64]) -> String {
    match versions {
        [] => "no version".to_owned(),
        [one] => format!("version {one}"),
        [first, .., last] if versions.windows(2).all(|w| w[1] == w[0] + 1) => format!("versions {first} to {last}"),
        [rest @ .., last] => format!(
            "versions {} and {last}",
            rest.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn known_versions(known: &[u64]) -> String {
    match known {
        [] => "none (0 means before every migration)".to_owned(),
        [one] => format!("0 and {one}"),
        [first, .., last] => format!("0 (before every migration) and {first} to {last}"),
    }
}

/// The option that accepts a modified or renamed applied migration, by its
/// API name and its command-line flag.
const ALLOW_MODIFIED: &str = "`Migrator::allow_modified(true)`, or `--allow-modified` on the command line";

/// The option that accepts unknown applied migrations.
const ALLOW_UNKNOWN: &str = "`Migrator::allow_unknown(true)`, or `--allow-unknown` on the command line";

/// The option that accepts a pending migration below an applied one.
const ALLOW_OUT_OF_ORDER: &str = "`Migrator::allow_out_of_order(true)`, or `--allow-out-of-order` on the command line";

/// An [`Error::Sqlx`]'s text after what we were doing: a PostgreSQL
/// server's error as [`Error::Postgres`] says it, anything else with what
/// to do about a connection sqlx can no longer use.
#[cfg(feature = "sqlx")]
fn sqlx_text(cause: &sqlx::Error) -> String {
    #[cfg(feature = "postgres")]
    if let Some(message) = crate::pg::sqlx_message_of(cause) {
        let code = cause.as_database_error().and_then(|d| d.code());
        return format!("{message}; {}", postgres_hint_for(code.as_deref(), false));
    }
    format!("{cause}; {SQLX_HINT}")
}

/// What to do when sqlx cannot lend its connection, or lost it ([`Error::Sqlx`]).
#[cfg(feature = "sqlx")]
const SQLX_HINT: &str =
    "the sqlx connection is no longer usable; open a new one (a pool replaces it: acquire another) and apply again";

const LOCKED_HINT: &str = "make sure no other program holds a long transaction on it, or raise the lock timeout (`Migrator::lock_timeout`, or `--lock-timeout` on the command line)";

/// What to do about rows a migration left without their parent.
const FOREIGN_KEY_HINT: &str = "Delete or fix those rows in the migration, or fix the table rebuild";

fn sql_hint(rolled_back: bool, code: Option<SqliteCode>, message: &str) -> String {
    let done = if rolled_back {
        "it was rolled back, nothing of this migration is applied"
    } else {
        "it runs outside a transaction, so the statements before this one stay applied; make the script safe to run again"
    };
    format!("{done}; {}", sql_advice(code, message))
}

/// What to do about a failing statement.
fn sql_advice(code: Option<SqliteCode>, message: &str) -> &'static str {
    if let Some(hint) = code_hint(code) {
        hint
    } else if message.contains(UNCHECKABLE_ATTACH) {
        "attach by a plain file name (ATTACH 'side.db' AS side): the replay attaches it in memory, the app opens the file"
    } else if message.contains("Migrator::table_lock_timeout") {
        "another transaction holds a lock this migration needs (a long query on the table?): run it when the table is quiet, or allow more time or tries"
    } else if message.contains("VACUUM") {
        "mark the script `-- migrate:no-transaction` at its top"
    } else if message.contains("within a transaction") || message.contains("no transaction is active") {
        "remove BEGIN/COMMIT from the script: each migration already runs in a transaction (or mark it `-- migrate:no-transaction`)"
    } else {
        "fix the statement and run again"
    }
}

#[cfg(feature = "rusqlite")]
fn code_hint(code: Option<SqliteCode>) -> Option<&'static str> {
    code.and_then(Error::hint_for)
}

#[cfg(not(feature = "rusqlite"))]
fn code_hint(code: Option<SqliteCode>) -> Option<&'static str> {
    code.map(|never| match never {})
}

/// SQLite's own message, without rusqlite's decorations (the SQL text and
/// offset of an input error).
#[cfg(feature = "rusqlite")]
pub(crate) fn message_of(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        #[cfg(any(feature = "modern-sqlite", feature = "sqlx"))]
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests;

/// One example of every variant, for the `Display` snapshot. The match in
/// `variant_name` is exhaustive (this is the crate itself, so
/// `#[non_exhaustive]` does not force a wildcard): a new variant does not
/// compile until it is named there, and then fails
/// `every_variant_has_a_display_example` until it has an example here.
#[cfg(all(test, feature = "rusqlite"))]
mod display;
