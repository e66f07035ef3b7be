//! The contenders of the fresh-apply and start-up workloads, each driven the
//! way an app would call it.
//!
//! - **ours**: `Migrator::new(&MIGRATIONS).apply(&mut conn)` (optionally
//!   `.grouped(true)`), the migrations built once, as the generated module
//!   holds them in a `static`.
//! - **refinery**: `Runner::new(&[Migration::unapplied("V1__step_1", sql),
//!   …]).run(&mut conn)`, the runner built inside the timed region, as
//!   `embed_migrations!`'s `runner()` builds it on every call.
//! - **rusqlite_migration**: `Migrations::new(vec![M::up(sql), …])
//!   .to_latest(&mut conn)`.
//! - **sqlx**: `sqlx::migrate::Migrator` resolved once from the same
//!   `migrations/` directory (as `migrate!()` embeds it at compile time), run
//!   on a `SqliteConnection` inside one current-thread tokio runtime.
//! - **floor**: plain rusqlite, see [`crate::floor_apply`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{DriftPolicy, Migration, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};

use crate::{Generated, Shape, app_query, floor_apply, ours_with_fingerprints, remove_db, write_dir};

/// Where a fresh apply runs.
#[derive(Clone, Copy, Debug)]
pub enum Place<'a> {
    /// A new database file (default journal mode, `synchronous = FULL`).
    Disk(&'a Path),
    /// A new in-memory database.
    Memory,
}

/// The contenders of the fresh-apply workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// Plain rusqlite, one transaction per migration.
    FloorPerMigration,
    /// cargo-migrate, one transaction per migration (the default).
    OursPerMigration,
    /// refinery, its default mode: each migration's SQL and its tracking
    /// row in two transactions.
    Refinery,
    /// sqlx: each migration and its row in one transaction, then an
    /// `UPDATE` of its execution time in another.
    Sqlx,
    /// Plain rusqlite, everything in one transaction.
    FloorOneTransaction,
    /// cargo-migrate with `.grouped(true)`: all pending in one transaction.
    OursGrouped,
    /// refinery with `set_grouped(true)`.
    RefineryGrouped,
    /// rusqlite_migration: all pending in one transaction (its only mode).
    RusqliteMigration,
}

impl Apply {
    /// Every contender, in the order the harness alternates them.
    pub const ALL: [Self; 8] = [
        Self::FloorPerMigration,
        Self::OursPerMigration,
        Self::Refinery,
        Self::Sqlx,
        Self::FloorOneTransaction,
        Self::OursGrouped,
        Self::RefineryGrouped,
        Self::RusqliteMigration,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::FloorPerMigration => "floor-per-migration",
            Self::OursPerMigration => "ours-per-migration",
            Self::Refinery => "refinery",
            Self::Sqlx => "sqlx",
            Self::FloorOneTransaction => "floor-one-transaction",
            Self::OursGrouped => "ours-grouped",
            Self::RefineryGrouped => "refinery-grouped",
            Self::RusqliteMigration => "rusqlite_migration",
        }
    }

    /// The floor this contender is compared with.
    pub fn floor(self) -> Self {
        match self {
            Self::FloorPerMigration | Self::OursPerMigration | Self::Refinery | Self::Sqlx => Self::FloorPerMigration,
            _ => Self::FloorOneTransaction,
        }
    }
}

/// The contenders of the start-up workload: open an up-to-date database,
/// conclude nothing is pending, (optionally) run the app's first query,
/// close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    /// Open, the app's query, close: no migration check.
    Floor,
    /// cargo-migrate: open, `apply`, query, close. The migrations carry
    /// their schema fingerprints, as generated code does, so `apply` runs
    /// the start-up drift check (on by default).
    Ours,
    /// The same with the drift check off (`.drift(DriftPolicy::Off)`).
    OursDriftOff,
    /// refinery: open, `runner().run`, query, close.
    Refinery,
    /// rusqlite_migration: open, `to_latest`, query, close.
    RusqliteMigration,
    /// sqlx: connect, `Migrator::run`, query, close.
    Sqlx,
    /// sqlx's own floor: connect, query, close (sqlx's connection costs
    /// more than rusqlite's: a worker thread and its `PRAGMA`s).
    SqlxFloor,
    /// cargo-migrate's migration call alone: open, `apply`, close (drift
    /// check on).
    OursCall,
    /// The same with the drift check off.
    OursCallDriftOff,
    /// refinery's migration call alone.
    RefineryCall,
    /// rusqlite_migration's migration call alone.
    RusqliteMigrationCall,
    /// sqlx's migration call alone.
    SqlxCall,
}

impl Startup {
    /// Every contender, in the order the harness alternates them.
    pub const ALL: [Self; 12] = [
        Self::Floor,
        Self::Ours,
        Self::OursDriftOff,
        Self::Refinery,
        Self::RusqliteMigration,
        Self::Sqlx,
        Self::SqlxFloor,
        Self::OursCall,
        Self::OursCallDriftOff,
        Self::RefineryCall,
        Self::RusqliteMigrationCall,
        Self::SqlxCall,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor-open-query-close",
            Self::Ours => "ours+query",
            Self::OursDriftOff => "ours+query-drift-off",
            Self::Refinery => "refinery+query",
            Self::RusqliteMigration => "rusqlite_migration+query",
            Self::Sqlx => "sqlx+query",
            Self::SqlxFloor => "sqlx-open-query-close",
            Self::OursCall => "ours-call",
            Self::OursCallDriftOff => "ours-call-drift-off",
            Self::RefineryCall => "refinery-call",
            Self::RusqliteMigrationCall => "rusqlite_migration-call",
            Self::SqlxCall => "sqlx-call",
        }
    }

    /// Which up-to-date database it opens (as [`Fixture::startup_databases`]
    /// names them).
    fn database(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Ours | Self::OursDriftOff | Self::OursCall | Self::OursCallDriftOff => "ours",
            Self::Refinery | Self::RefineryCall => "refinery",
            Self::RusqliteMigration | Self::RusqliteMigrationCall => "rusqlite_migration",
            Self::Sqlx | Self::SqlxFloor | Self::SqlxCall => "sqlx",
        }
    }

    fn query(self) -> bool {
        matches!(
            self,
            Self::Floor
                | Self::Ours
                | Self::OursDriftOff
                | Self::Refinery
                | Self::RusqliteMigration
                | Self::Sqlx
                | Self::SqlxFloor
        )
    }
}

/// One migration set in every contender's form, and the runtime sqlx needs.
pub struct Fixture {
    set: Vec<Generated>,
    pub(crate) ours: Vec<Migration>,
    /// [`crate::code_digest`] of `ours`, as the generated module has it.
    digest: u128,
    refinery: Vec<(String, String)>,
    pub(crate) sqlx: sqlx::migrate::Migrator,
    pub(crate) rt: tokio::runtime::Runtime,
    _package: tempfile::TempDir,
}

impl Fixture {
    /// `n` generated migrations of `shape`, written to a temporary
    /// `migrations/` directory for sqlx to read once.
    ///
    /// # Panics
    ///
    /// When the directory or the runtime cannot be made.
    pub fn new(shape: Shape, n: usize) -> Self {
        let set = shape.generate(n);
        let package = tempfile::tempdir().expect("tempdir");
        write_dir(package.path(), &set);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sqlx = rt
            .block_on(sqlx::migrate::Migrator::new(package.path().join("migrations")))
            .expect("sqlx reads the migrations");
        assert_eq!(sqlx.iter().filter(|m| m.migration_type.is_up_migration()).count(), n);
        let ours = ours_with_fingerprints(&set);
        Self {
            digest: crate::code_digest(&ours),
            ours,
            refinery: set
                .iter()
                .map(|m| (format!("V{}__{}", m.version, m.name), m.up.clone()))
                .collect(),
            set,
            sqlx,
            rt,
            _package: package,
        }
    }

    /// refinery's runner, built as `embed_migrations!`'s `runner()` does.
    fn refinery_runner(&self) -> refinery::Runner {
        let migrations: Vec<refinery::Migration> = self
            .refinery
            .iter()
            .map(|(name, sql)| refinery::Migration::unapplied(name, sql).expect("refinery migration"))
            .collect();
        refinery::Runner::new(&migrations)
    }

    pub(crate) fn open(place: Place<'_>) -> Connection {
        match place {
            Place::Disk(path) => Connection::open(path),
            Place::Memory => Connection::open_in_memory(),
        }
        .expect("open")
    }

    pub(crate) fn sqlx_options(place: Place<'_>) -> SqliteConnectOptions {
        match place {
            Place::Disk(path) => SqliteConnectOptions::new().filename(path).create_if_missing(true),
            Place::Memory => SqliteConnectOptions::from_str("sqlite::memory:").expect("sqlx options"),
        }
    }

    /// Applies every migration with `tool` to a new database at `place` and
    /// returns the time of open + migrate + close.
    ///
    /// # Panics
    ///
    /// When the tool fails.
    pub fn apply(&self, tool: Apply, place: Place<'_>) -> Duration {
        if tool == Apply::Sqlx {
            let start = crate::Clock::start();
            self.rt.block_on(async {
                let mut conn = Self::sqlx_options(place).connect().await.expect("sqlx connect");
                self.sqlx.run(&mut conn).await.expect("sqlx migrate");
                conn.close().await.expect("sqlx close");
            });
            return start.elapsed();
        }
        let start = crate::Clock::start();
        let mut conn = Self::open(place);
        match tool {
            Apply::FloorPerMigration => floor_apply(&conn, &self.set, false),
            Apply::FloorOneTransaction => floor_apply(&conn, &self.set, true),
            Apply::OursPerMigration => {
                Migrator::new(&self.ours).apply(&mut conn).expect("ours");
            }
            Apply::OursGrouped => {
                Migrator::new(&self.ours).grouped(true).apply(&mut conn).expect("ours");
            }
            Apply::Refinery => {
                self.refinery_runner().run(&mut conn).expect("refinery");
            }
            Apply::RefineryGrouped => {
                self.refinery_runner()
                    .set_grouped(true)
                    .run(&mut conn)
                    .expect("refinery");
            }
            Apply::RusqliteMigration => {
                let ms = rusqlite_migration::Migrations::new(
                    self.set.iter().map(|m| rusqlite_migration::M::up(&m.up)).collect(),
                );
                ms.to_latest(&mut conn).expect("rusqlite_migration");
            }
            Apply::Sqlx => unreachable!("handled above"),
        }
        drop(conn);
        start.elapsed()
    }

    /// Up-to-date databases for the start-up workload, one per tool that
    /// one of `who` needs, in `dir` (`startup-ours-1000.db`, …). With `reuse`, a file already there
    /// is kept (a stale one makes [`startup`](Self::startup) panic, as it
    /// finds something pending), which saves the setup under a profiler.
    ///
    /// # Panics
    ///
    /// When a tool fails.
    pub fn startup_databases(&self, dir: &Path, reuse: bool, who: &[Startup]) -> StartupDatabases {
        let make = |name: &str, tool: Apply| {
            let path = dir.join(format!("startup-{name}-{}.db", self.set.len()));
            if !(reuse && path.exists()) && who.iter().any(|w| w.database() == name) {
                remove_db(&path);
                self.apply(tool, Place::Disk(&path));
            }
            path
        };
        StartupDatabases {
            floor: make("floor", Apply::FloorOneTransaction),
            ours: make("ours", Apply::OursGrouped),
            refinery: make("refinery", Apply::RefineryGrouped),
            rusqlite_migration: make("rusqlite_migration", Apply::RusqliteMigration),
            sqlx: make("sqlx", Apply::Sqlx),
        }
    }

    /// One start-up of `who` against its up-to-date database: the time of
    /// open + migrate (nothing pending) + the app's query (if any) + close.
    ///
    /// # Panics
    ///
    /// When the tool fails or finds something pending.
    pub fn startup(&self, who: Startup, dbs: &StartupDatabases) -> Duration {
        let query = who.query();
        match who {
            Startup::Sqlx | Startup::SqlxCall | Startup::SqlxFloor => {
                let start = crate::Clock::start();
                self.rt.block_on(async {
                    let mut conn: SqliteConnection = Self::sqlx_options(Place::Disk(&dbs.sqlx))
                        .create_if_missing(false)
                        .connect()
                        .await
                        .expect("sqlx connect");
                    if who != Startup::SqlxFloor {
                        self.sqlx.run(&mut conn).await.expect("sqlx migrate");
                    }
                    if query {
                        sqlx_app_query(&mut conn).await;
                    }
                    conn.close().await.expect("sqlx close");
                });
                start.elapsed()
            }
            _ => {
                let path = match who {
                    Startup::Floor => &dbs.floor,
                    Startup::Ours | Startup::OursCall | Startup::OursDriftOff | Startup::OursCallDriftOff => &dbs.ours,
                    Startup::Refinery | Startup::RefineryCall => &dbs.refinery,
                    _ => &dbs.rusqlite_migration,
                };
                let start = crate::Clock::start();
                let mut conn = Self::open(Place::Disk(path));
                match who {
                    Startup::Ours | Startup::OursCall => {
                        let report = Migrator::new(&self.ours)
                            .__code_digest(self.digest)
                            .apply(&mut conn)
                            .expect("ours");
                        assert!(report.is_empty());
                    }
                    Startup::OursDriftOff | Startup::OursCallDriftOff => {
                        let report = Migrator::new(&self.ours)
                            .__code_digest(self.digest)
                            .drift(DriftPolicy::Off)
                            .apply(&mut conn)
                            .expect("ours");
                        assert!(report.is_empty());
                    }
                    Startup::Refinery | Startup::RefineryCall => {
                        let report = self.refinery_runner().run(&mut conn).expect("refinery");
                        assert!(report.applied_migrations().is_empty());
                    }
                    Startup::RusqliteMigration | Startup::RusqliteMigrationCall => {
                        let ms = rusqlite_migration::Migrations::new(
                            self.set.iter().map(|m| rusqlite_migration::M::up(&m.up)).collect(),
                        );
                        ms.to_latest(&mut conn).expect("rusqlite_migration");
                    }
                    _ => {}
                }
                if query {
                    assert_eq!(app_query(&conn), 0);
                }
                drop(conn);
                start.elapsed()
            }
        }
    }
}

/// Runs [`crate::APP_QUERY`] on a sqlx connection; the table is empty.
///
/// # Panics
///
/// When the query fails or finds rows.
pub(crate) async fn sqlx_app_query(conn: &mut SqliteConnection) {
    let n: i64 = sqlx::query_scalar(crate::APP_QUERY)
        .fetch_one(conn)
        .await
        .expect("the app's query");
    assert_eq!(n, 0);
}

/// One up-to-date database per tool, for the start-up workload.
pub struct StartupDatabases {
    floor: PathBuf,
    ours: PathBuf,
    refinery: PathBuf,
    rusqlite_migration: PathBuf,
    sqlx: PathBuf,
}
