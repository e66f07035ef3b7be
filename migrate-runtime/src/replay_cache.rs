//! The hook of an incremental build check ([`Migrator::check_cached`]):
//! the replay can start from a database that a previous run saved after a
//! verified prefix of the migrations, and saves such databases as it goes.
//! `migrate-build` keeps them in files (its `cache` module); this crate
//! only says when, and what goes with a database.

use rusqlite::Connection;

use crate::Warning;

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
    /// Loads the longest verified prefix it holds for these migrations
    /// into `conn` (a new replay database, set up and empty) and says what
    /// it is; `None` when it has none (`conn` must then be left empty).
    fn resume(&mut self, conn: &mut Connection) -> Option<Verified>;

    /// Whether to [`save`](Self::save) the database after `prefix`
    /// migrations (of `total`).
    fn wants(&self, prefix: usize, total: usize) -> bool;

    /// Keeps `conn`, which holds the verified prefix `verified`.
    fn save(&mut self, conn: &Connection, verified: &Verified);
}

/// No cache: every replay starts from an empty database.
pub(crate) struct NoCache;

impl ReplayCache for NoCache {
    fn resume(&mut self, _: &mut Connection) -> Option<Verified> {
        None
    }

    fn wants(&self, _: usize, _: usize) -> bool {
        false
    }

    fn save(&mut self, _: &Connection, _: &Verified) {}
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
