//! Benchmark support: generated migration sets, timing helpers, the
//! build-time workload and (with the `peers` feature) the drivers of every
//! contender: cargo-migrate, plain rusqlite (the floor), refinery,
//! rusqlite_migration and sqlx.
//!
//! The harness is `src/bin/peers.rs`; `BENCHMARKS.md` at the root of the
//! repository says how to run it and what it measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Script};

#[cfg(feature = "peers")]
pub mod peers;
#[cfg(feature = "pg-peers")]
pub mod pg;

/// One generated migration: version, name, up SQL, down SQL.
pub struct Generated {
    /// The version (1-based).
    pub version: u64,
    /// The name.
    pub name: String,
    /// The up SQL.
    pub up: String,
    /// The down SQL.
    pub down: String,
}

/// `n` migrations: each creates a table; every third also adds a column to
/// the previous table and indexes it.
pub fn generate(n: usize) -> Vec<Generated> {
    (1..=n)
        .map(|i| {
            let mut up = format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);\n");
            let mut down = String::new();
            if i % 3 == 0 && i > 1 {
                let p = i - 1;
                let _ = writeln!(up, "ALTER TABLE t{p} ADD COLUMN extra{i} TEXT;");
                let _ = writeln!(up, "CREATE INDEX t{p}_extra{i} ON t{p} (extra{i});");
                let _ = writeln!(down, "DROP INDEX t{p}_extra{i};");
                let _ = writeln!(down, "ALTER TABLE t{p} DROP COLUMN extra{i};");
            }
            let _ = writeln!(down, "DROP TABLE t{i};");
            Generated {
                version: u64::try_from(i).unwrap_or(u64::MAX),
                name: format!("step_{i}"),
                up,
                down,
            }
        })
        .collect()
}

/// The file name stem cargo-migrate (and sqlx) use for `m`: `0001_step_1`.
pub fn stem(m: &Generated) -> String {
    format!("{:04}_{}", m.version, m.name)
}

/// Writes a generated set as `migrations/` files under `package`
/// (`0001_step_1.up.sql` and `0001_step_1.down.sql`, …).
pub fn write_dir(package: &Path, set: &[Generated]) {
    let dir = package.join("migrations");
    std::fs::create_dir_all(&dir).expect("create migrations/");
    for m in set {
        std::fs::write(dir.join(format!("{}.up.sql", stem(m))), &m.up).expect("write up");
        std::fs::write(dir.join(format!("{}.down.sql", stem(m))), &m.down).expect("write down");
    }
}

/// The set as cargo-migrate's runtime sees it: what the generated module's
/// `MIGRATIONS` holds (checksums are computed here once, as the generated
/// code has them as constants).
pub fn ours(set: &[Generated]) -> Vec<Migration> {
    set.iter()
        .map(|m| {
            let stem = stem(m);
            Migration::new(
                m.version,
                m.name.clone(),
                Script::new(m.up.clone(), format!("migrations/{stem}.up.sql")),
            )
            .with_down(Script::new(m.down.clone(), format!("migrations/{stem}.down.sql")))
        })
        .collect()
}

/// [`ours`] with each migration's schema fingerprint, computed by the
/// build's replay ([`migrate_runtime::Migrator::check`]) as the generated
/// module records them: with these, `apply` runs the start-up drift check.
///
/// # Panics
///
/// When the replay fails (the generated migrations are valid).
pub fn ours_with_fingerprints(set: &[Generated]) -> Vec<Migration> {
    let plain = ours(set);
    let validated = migrate_runtime::Migrator::new(&plain)
        .check()
        .expect("the generated migrations replay");
    plain
        .into_iter()
        .zip(validated.fingerprints)
        .map(|(m, (version, fingerprint))| {
            assert_eq!(m.version(), version);
            // Generated code has them as `&'static str` literals.
            m.with_schema_fingerprint(String::leak(fingerprint))
        })
        .collect()
}

/// The floor's tracking table: what plain rusqlite records per migration.
pub const FLOOR_TABLE: &str = "CREATE TABLE floor_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)";

/// The floor of a fresh apply: plain rusqlite running the same up SQL with
/// no checks, and the least bookkeeping that still records what was applied.
///
/// `BEGIN`, then (first transaction only) `CREATE TABLE floor_migrations
/// (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`, then per migration its
/// up SQL through one `execute_batch` and `INSERT INTO floor_migrations
/// (version, name) VALUES (?1, ?2)` through a cached statement; `COMMIT`
/// after each migration (`one_transaction == false`) or once at the end.
///
/// # Panics
///
/// When SQLite fails (the generated SQL is valid).
pub fn floor_apply(conn: &Connection, set: &[Generated], one_transaction: bool) {
    conn.execute_batch("BEGIN").expect("BEGIN");
    conn.execute_batch(FLOOR_TABLE).expect("create the floor's table");
    for (i, m) in set.iter().enumerate() {
        if !one_transaction && i > 0 {
            conn.execute_batch("BEGIN").expect("BEGIN");
        }
        conn.execute_batch(&m.up).expect("up");
        conn.prepare_cached("INSERT INTO floor_migrations (version, name) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute((i64::try_from(m.version).unwrap_or(i64::MAX), &m.name)))
            .expect("record");
        if !one_transaction {
            conn.execute_batch("COMMIT").expect("COMMIT");
        }
    }
    if one_transaction {
        conn.execute_batch("COMMIT").expect("COMMIT");
    }
}

/// The app's first query in the start-up workload.
pub const APP_QUERY: &str = "SELECT count(*) FROM t1";

/// Runs [`APP_QUERY`] on `conn`.
///
/// # Panics
///
/// When the table is missing.
pub fn app_query(conn: &Connection) -> i64 {
    conn.query_row(APP_QUERY, [], |r| r.get(0)).expect("the app's query")
}

/// Times `f` once.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The median of some durations.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// A fresh, unused database path in `dir` for each call (`name-1.db`,
/// `name-2.db`, …), and removal of what SQLite left next to it.
pub struct Paths {
    dir: PathBuf,
    name: String,
    next: u64,
}

impl Paths {
    /// Paths `dir/name-K.db`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            name: name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            next: 0,
        }
    }

    /// The next fresh path; the file does not exist.
    pub fn fresh(&mut self) -> PathBuf {
        self.next += 1;
        let path = self.dir.join(format!("{}-{}.db", self.name, self.next));
        remove_db(&path);
        path
    }
}

/// Removes a database file and its journal, WAL and shared-memory files.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The build-time workload's contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStep {
    /// The floor: SQLite alone runs every up once, in memory.
    Floor,
    /// `migrate_build::Builder::build` with no previous output: scan,
    /// replay, down round trips, code generation, write.
    Build,
    /// The same with the output already there and unchanged (not rewritten):
    /// what a build script re-run by cargo costs when nothing changed.
    Unchanged,
    /// Part of `Build`: reading and checking the files only.
    Scan,
    /// Part of `Build`: scan, replay and round trips, without code generation.
    Check,
}

impl BuildStep {
    /// Every step, in the order the harness alternates them.
    pub const ALL: [Self; 5] = [Self::Floor, Self::Build, Self::Unchanged, Self::Scan, Self::Check];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor-build",
            Self::Build => "ours-build",
            Self::Unchanged => "ours-build-unchanged",
            Self::Scan => "ours-scan-only",
            Self::Check => "ours-check-only",
        }
    }
}

/// A package directory with the generated migrations, and an output
/// directory, for the build-time workload.
pub struct BuildFixture {
    set: Vec<Generated>,
    package: tempfile::TempDir,
    out: tempfile::TempDir,
    config: migrate_build::Config,
}

impl BuildFixture {
    /// Writes `set` as files in a temporary package.
    ///
    /// # Panics
    ///
    /// When the temporary directories cannot be made.
    pub fn new(set: Vec<Generated>) -> Self {
        let package = tempfile::tempdir().expect("tempdir");
        write_dir(package.path(), &set);
        Self {
            set,
            package,
            out: tempfile::tempdir().expect("tempdir"),
            config: migrate_build::Config::default(),
        }
    }

    /// Runs `step` once and returns its time (setup excluded).
    ///
    /// # Panics
    ///
    /// When the build fails (the generated migrations are valid).
    pub fn run(&self, step: BuildStep) -> Duration {
        let builder = || {
            migrate_build::Builder::new()
                .package_dir(self.package.path())
                .out_dir(self.out.path())
                .directives(std::io::sink())
        };
        match step {
            BuildStep::Floor => time(|| {
                let conn = Connection::open_in_memory().expect("open");
                for m in &self.set {
                    conn.execute_batch(&m.up).expect("up");
                }
            }),
            BuildStep::Build => {
                let _ = std::fs::remove_file(self.out.path().join(migrate_build::OUTPUT_FILE));
                time(|| {
                    let built = builder().build().expect("build");
                    assert!(built.changed);
                })
            }
            BuildStep::Unchanged => {
                if !self.out.path().join(migrate_build::OUTPUT_FILE).exists() {
                    builder().build().expect("build");
                }
                time(|| {
                    let built = builder().build().expect("build");
                    assert!(!built.changed);
                })
            }
            BuildStep::Scan => time(|| {
                migrate_build::load(self.package.path(), &self.config).expect("scan");
            }),
            BuildStep::Check => time(|| {
                migrate_build::check(self.package.path(), &self.config).expect("check");
            }),
        }
    }
}
