//! The hook of an incremental build check ([`Migrator::check_cached`]):
//! the replay can start from a database that a previous run saved after a
//! verified prefix of the migrations, and saves such databases as it goes.
//! `migrate-build` keeps them in files (its `cache` module); this crate
//! only says when, and what goes with a database. The drift replays of
//! the command line ([`Migrator::replay_versions_cached`]) start from the
//! same databases, without saving any (they verify nothing).
//!
//! [`Migrator::check_cached`]: crate::Migrator::check_cached
//! [`Migrator::replay_versions_cached`]: crate::Migrator::replay_versions_cached

use rusqlite::Connection;

use crate::{Migration, Warning};

/// A database after the first `prefix` migrations, each replayed and round
/// tripped without a problem, and what the replay found in them.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// How many migrations (from the first) the database holds.
    pub prefix: usize,
    /// The warnings of those migrations, in order.
    pub warnings: Vec<Warning>,
    /// The schema fingerprint after each of them, by version.
    pub fingerprints: Vec<(u64, String)>,
}

/// Where verified prefixes are kept between runs.
#[doc(hidden)]
pub trait ReplayCache {
    /// Loads the longest verified prefix of at most `limit` migrations it
    /// holds for these migrations into `conn` (a new replay database, set
    /// up and empty) and says what it is; `None` when it has none (`conn`
    /// must then be left empty).
    fn resume(&mut self, conn: &mut Connection, limit: usize) -> Option<Verified>;

    /// Whether to [`save`](Self::save) the database after `prefix`
    /// migrations (of `total`).
    fn wants(&self, prefix: usize, total: usize) -> bool;

    /// Keeps `conn`, which holds the verified prefix `verified`.
    fn save(&mut self, conn: &Connection, verified: &Verified);
}

/// No cache: every replay starts from an empty database.
pub(crate) struct NoCache;

impl ReplayCache for NoCache {
    fn resume(&mut self, _: &mut Connection, _: usize) -> Option<Verified> {
        None
    }

    fn wants(&self, _: usize, _: usize) -> bool {
        false
    }

    fn save(&mut self, _: &Connection, _: &Verified) {}
}

/// How many migrations, from the first, a saved database can stand for: a
/// database file holds the schema and the rows, but not what a script
/// leaves on the connection that ran it (the settings of `PRAGMA`s such as
/// `foreign_keys`, `recursive_triggers` or `legacy_alter_table`, attached
/// databases, `TEMP` objects), which the migrations after it would see in a
/// replay from the start. So no prefix that holds a migration whose
/// scripts may leave such a thing is saved or resumed: a plain search of
/// the text for the words (in comments and strings too; when in doubt, the
/// replay starts earlier). `PRAGMA`s that only read, or whose value is in
/// the database file, do not count.
pub(crate) fn resumable(migrations: &[Migration]) -> usize {
    migrations
        .iter()
        .position(|m| std::iter::once(m.up()).chain(m.down()).any(|s| leaves_state(s.sql())))
        .unwrap_or(migrations.len())
}

/// Whether `sql` may leave state on its connection (see [`resumable`]).
fn leaves_state(sql: &str) -> bool {
    /// Pragmas that only read, or write the database file's header.
    const KEPT_OR_READ: &[&str] = &[
        "application_id",
        "foreign_key_check",
        "foreign_key_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "quick_check",
        "table_info",
        "table_list",
        "table_xinfo",
        "user_version",
    ];
    let mut words = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    while let Some(word) = words.next() {
        if ["attach", "temp", "temporary"]
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w))
        {
            return true;
        }
        if word.eq_ignore_ascii_case("pragma") {
            // `PRAGMA name` or `PRAGMA main.name` (other schemas are
            // attached ones, or `temp`: counted above).
            let kept = |w: Option<&str>| w.is_some_and(|w| KEPT_OR_READ.iter().any(|k| w.eq_ignore_ascii_case(k)));
            let name = match words.next() {
                Some(schema) if schema.eq_ignore_ascii_case("main") => words.next(),
                other => other,
            };
            if !kept(name) {
                return true;
            }
        }
    }
    false
}

impl Warning {
    /// A warning read back from a replay cache.
    #[doc(hidden)]
    #[must_use]
    pub fn __new(version: u64, name: String, file: String, line: usize, message: String, hint: String) -> Self {
        Self {
            version,
            name,
            file,
            line,
            message,
            hint,
        }
    }
}
