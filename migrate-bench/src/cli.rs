//! The command-line workload: the real `cargo-migrate` binary run as a
//! process on a package that holds the generated migrations, each paired
//! with a floor measured in the same round.
//!
//! - **floor-build**: SQLite alone runs every up once, in memory (as in
//!   the build workload): the floor of `check`.
//! - **ours-cli-check**: `cargo-migrate migrate check --manifest-path …`
//!   with its check cache (`target/migrate-check-cache/`) removed first:
//!   a full check.
//! - **ours-cli-check-cached**: the same with the cache the previous check
//!   left: nothing changed.
//! - **floor-status**: what any `status` has to do, in process: read every
//!   migration file and every row of the tracking table.
//! - **ours-cli-status**: `cargo-migrate migrate status --manifest-path …
//!   --database sqlite:…` against a database with every migration applied,
//!   with the check cache a previous `check` left (its drift replay starts
//!   from there).
//! - **ours-cli-status-cold**: the same with the check cache removed
//!   first: the drift replay from nothing.
//!
//! The process rows include starting `cargo-migrate` and its `cargo
//! metadata --no-deps` (a fixed cost of some tens of milliseconds), which
//! the in-process floors do not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use migrate_runtime::Migrator;
use migrate_runtime::rusqlite::Connection;

use crate::{Generated, floor_build, ours, time, write_dir};

/// The contenders of the command-line workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    /// SQLite alone runs every up once, in memory.
    FloorBuild,
    /// `cargo-migrate migrate check`, no check cache.
    Check,
    /// `cargo-migrate migrate check`, the cache of this very set there.
    CheckCached,
    /// Read every migration file and every tracking row, in process.
    FloorStatus,
    /// `cargo-migrate migrate status` against an up-to-date database,
    /// the check cache there.
    Status,
    /// The same, no check cache.
    StatusCold,
}

impl Cli {
    /// Every contender, in the order the harness alternates them.
    pub const ALL: [Self; 6] = [
        Self::FloorBuild,
        Self::Check,
        Self::CheckCached,
        Self::FloorStatus,
        Self::Status,
        Self::StatusCold,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::FloorBuild => "floor-build",
            Self::Check => "ours-cli-check",
            Self::CheckCached => "ours-cli-check-cached",
            Self::FloorStatus => "floor-status",
            Self::Status => "ours-cli-status",
            Self::StatusCold => "ours-cli-status-cold",
        }
    }

    /// The floor this contender is compared with.
    pub fn floor(self) -> Self {
        match self {
            Self::FloorBuild | Self::Check | Self::CheckCached => Self::FloorBuild,
            Self::FloorStatus | Self::Status | Self::StatusCold => Self::FloorStatus,
        }
    }
}

/// A package (`Cargo.toml`, `src/lib.rs`, `migrations/`) with the
/// generated migrations, and a database file with all of them applied.
pub struct CliFixture {
    set: Vec<Generated>,
    bin: PathBuf,
    package: tempfile::TempDir,
    db: PathBuf,
}

impl CliFixture {
    /// Writes the package and applies `set` to `package/app.db`.
    ///
    /// # Panics
    ///
    /// When `bin` does not exist (build it with `cargo build --release -p
    /// cargo-migrate`), or the package cannot be written.
    pub fn new(set: Vec<Generated>, bin: PathBuf) -> Self {
        assert!(
            bin.exists(),
            "{} does not exist (help: build it with `cargo build --release -p cargo-migrate`, or give --bin PATH)",
            bin.display()
        );
        let package = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            package.path().join("Cargo.toml"),
            "[package]\nname = \"bench-app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
        )
        .expect("write Cargo.toml");
        std::fs::create_dir_all(package.path().join("src")).expect("create src/");
        std::fs::write(package.path().join("src/lib.rs"), "").expect("write src/lib.rs");
        write_dir(package.path(), &set);
        let db = package.path().join("app.db");
        let migrations = ours(&set);
        let mut conn = Connection::open(&db).expect("open");
        Migrator::new(&migrations)
            .grouped(true)
            .apply(&mut conn)
            .expect("apply");
        Self { set, bin, package, db }
    }

    fn manifest(&self) -> PathBuf {
        self.package.path().join("Cargo.toml")
    }

    /// Runs `cargo-migrate migrate ARGS…` and panics unless it succeeds.
    fn run_bin(&self, args: &[&str]) {
        let out = Command::new(&self.bin)
            .arg("migrate")
            .args(args)
            .arg("--manifest-path")
            .arg(self.manifest())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("start cargo-migrate");
        assert!(
            out.status.success(),
            "cargo-migrate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `who` once and returns its time (setup excluded).
    ///
    /// # Panics
    ///
    /// When a command fails.
    pub fn run(&self, who: Cli) -> Duration {
        let cache = self.package.path().join("target").join("migrate-check-cache");
        match who {
            Cli::FloorBuild => time(|| floor_build(&self.set)),
            Cli::Check => {
                let _ = std::fs::remove_dir_all(&cache);
                time(|| self.run_bin(&["check"]))
            }
            Cli::CheckCached => {
                if !cache.exists() {
                    self.run_bin(&["check"]);
                }
                time(|| self.run_bin(&["check"]))
            }
            Cli::FloorStatus => time(|| floor_status(&self.package.path().join("migrations"), &self.db)),
            Cli::Status | Cli::StatusCold => {
                if who == Cli::StatusCold {
                    let _ = std::fs::remove_dir_all(&cache);
                } else if !cache.exists() {
                    self.run_bin(&["check"]);
                }
                let url = format!("sqlite:{}", self.db.display());
                time(|| self.run_bin(&["status", "--database", &url]))
            }
        }
    }
}

/// The least a `status` does: read every file of `dir` and every row of
/// the tracking table of `db`.
fn floor_status(dir: &Path, db: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read migrations/")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    let bytes: usize = files
        .iter()
        .map(|f| std::fs::read(f).expect("read a migration").len())
        .sum();
    assert!(bytes > 0);
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn.prepare("SELECT * FROM _migrations").expect("prepare");
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..columns)
                .map(|i| r.get::<_, migrate_runtime::rusqlite::types::Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("query")
        .count();
    assert!(rows > 0);
}
