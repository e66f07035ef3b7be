//! The per-test database workload: what a test pays to get a migrated
//! database of its own.
//!
//! - **ours-test-db**: `Migrator::test_db()` (what the generated
//!   `test_db()` calls), the app's query, close. The template is applied
//!   by the warm-up round, so every timed call is a copy.
//! - **ours-fresh-apply**: a test without it: open in memory, `apply`,
//!   the app's query, close. The floor of the table: `test_db` is
//!   measured as a fraction of it.
//! - **sqlx-test-fixture**: what `#[sqlx::test]` does per test on SQLite
//!   (sqlx-sqlite 0.9 `src/testing/mod.rs`: a new file under
//!   `target/sqlx/test-dbs/`, `create_if_missing`, then the migrator runs
//!   into it): connect to a new file, `Migrator::run`, the query, close.
//!   The attribute itself needs a test harness, so the harness drives the
//!   same steps.
//! - **sqlx-fresh-memory**: sqlx's migrator into `sqlite::memory:`, the
//!   query, close: the cheapest thing a sqlx user can do per test.
//! - **floor-open-query**: open a database file that is already migrated,
//!   the query, close: no copy at all, but SQLite reads and parses the
//!   whole schema on a new connection's first statement, which every way
//!   of getting a database pays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrate_runtime::Migrator;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::app_query;
use crate::peers::{Fixture, Place};

/// The contenders of the per-test database workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestDb {
    /// Open in memory, `apply`, query, close.
    OursFreshApply,
    /// `Migrator::test_db()`, query, close.
    OursTestDb,
    /// `#[sqlx::test]`'s steps: a new file, the migrator, query, close.
    SqlxTestFixture,
    /// sqlx's migrator into a new in-memory database, query, close.
    SqlxFreshMemory,
    /// Open a migrated file, query, close.
    FloorOpenQuery,
}

impl TestDb {
    /// Every contender, in the order the harness alternates them.
    pub const ALL: [Self; 5] = [
        Self::OursFreshApply,
        Self::OursTestDb,
        Self::SqlxTestFixture,
        Self::SqlxFreshMemory,
        Self::FloorOpenQuery,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::OursFreshApply => "ours-fresh-apply",
            Self::OursTestDb => "ours-test-db",
            Self::SqlxTestFixture => "sqlx-test-fixture",
            Self::SqlxFreshMemory => "sqlx-fresh-memory",
            Self::FloorOpenQuery => "floor-open-query",
        }
    }
}

impl Fixture {
    /// One test's database from `who`, with the app's query on it: the
    /// time of making it, querying and closing it. `path` is where
    /// [`TestDb::SqlxTestFixture`] puts its file (it must not exist);
    /// `ready` is a migrated database file for [`TestDb::FloorOpenQuery`]
    /// (see [`Fixture::ready_database`]).
    ///
    /// # Panics
    ///
    /// When the tool fails.
    pub fn test_db(&self, who: TestDb, path: &Path, ready: &Path) -> Duration {
        if who == TestDb::OursTestDb {
            // The template, made once per process (here, not timed).
            drop(Migrator::new(&self.ours).test_db().expect("test_db"));
        }
        let start = crate::Clock::start();
        self.timed_test_db(who, path, ready);
        start.elapsed()
    }

    /// The timed part of [`test_db`](Self::test_db), on its own for
    /// callgrind's `--toggle-collect='*timed_test_db*'`.
    #[inline(never)]
    fn timed_test_db(&self, who: TestDb, path: &Path, ready: &Path) {
        match who {
            TestDb::FloorOpenQuery => {
                let conn = Self::open(Place::Disk(ready));
                assert_eq!(app_query(&conn), 0);
            }
            TestDb::OursFreshApply => {
                let mut conn = Self::open(Place::Memory);
                Migrator::new(&self.ours).apply(&mut conn).expect("ours");
                assert_eq!(app_query(&conn), 0);
            }
            TestDb::OursTestDb => {
                let conn = Migrator::new(&self.ours).test_db().expect("test_db");
                assert_eq!(app_query(&conn), 0);
            }
            TestDb::SqlxTestFixture | TestDb::SqlxFreshMemory => {
                let place = if who == TestDb::SqlxTestFixture {
                    Place::Disk(path)
                } else {
                    Place::Memory
                };
                self.rt.block_on(async {
                    let mut conn = Self::sqlx_options(place).connect().await.expect("sqlx connect");
                    self.sqlx.run(&mut conn).await.expect("sqlx migrate");
                    crate::peers::sqlx_app_query(&mut conn).await;
                    conn.close().await.expect("sqlx close");
                });
            }
        }
    }

    /// A database file in `dir` with every migration applied, for
    /// [`TestDb::FloorOpenQuery`].
    ///
    /// # Panics
    ///
    /// When the apply fails.
    pub fn ready_database(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("testdb-ready-{}.db", self.ours.len()));
        crate::remove_db(&path);
        self.apply(crate::peers::Apply::OursGrouped, Place::Disk(&path));
        path
    }
}
