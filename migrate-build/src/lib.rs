//! The build-script side of cargo-migrate: checks a package's
//! `migrations/` directory at `cargo build` and generates a typed Rust
//! module listing every migration.
//!
//! In `build.rs`:
//!
//! ```no_run
//! fn main() -> Result<(), migrate_build::Error> {
//!     migrate_build::build()?;
//!     Ok(())
//! }
//! ```
//!
//! and in the app:
//!
//! ```ignore
//! mod migrations {
//!     include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
//! }
//!
//! let mut conn = migrate_runtime::rusqlite::Connection::open("app.db")?;
//! migrations::apply(&mut conn)?;
//! ```
//!
//! Every problem is reported at once, as `cargo::error=path:line: message`
//! lines that fail the build: bad file names (with the rename, also for
//! refinery's `V1__name.sql` and an upper-case `.SQL`), duplicate versions,
//! gaps, versions that are timestamps, a down without an up, empty files,
//! files that are not UTF-8, unknown
//! `-- migrate:` directives, directories where files belong, SQL that does
//! not run (every migration is replayed into an in-memory SQLite database
//! through the real runner), and down migrations that do not restore the
//! schema from before their up, and — with `snapshot` set in
//! `[package.metadata.migrate]` — a schema snapshot file that is missing or
//! stale (see [`schema_snapshot`]; the build never writes it). Warnings
//! (`cargo::warning=`) do not fail it: an up with only comments, `PRAGMA
//! foreign_keys = OFF` in a migration that runs in a transaction (where
//! SQLite ignores it), a down that gives a table back with its columns in
//! another order.
//!
//! A package that keeps one migrations directory per backend
//! (`[package.metadata.migrate.sqlite]` and
//! `[package.metadata.migrate.postgres]`, see
//! [`Config::sets_from_manifest`]) gets one module for each,
//! `migrations_sqlite.rs` and `migrations_postgres.rs`, every directory
//! checked before the build fails:
//!
//! ```ignore
//! #[cfg(feature = "sqlite")]
//! mod migrations {
//!     include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));
//! }
//! #[cfg(feature = "postgres")]
//! mod migrations {
//!     include!(concat!(env!("OUT_DIR"), "/migrations_postgres.rs"));
//! }
//! ```
//!
//! The generated code records each migration's schema fingerprint, so that
//! the app refuses a database changed by hand at start-up (`drift` and
//! `ignore` in the config).

#![warn(unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};

mod cache;
mod checks;
#[doc(hidden)]
pub mod codegen;
pub mod config;
pub mod directives;
pub mod file_name;
pub mod imported;
pub mod lint;
pub mod lockfile;
pub mod naming;
mod pg_snapshot;
mod problem;
pub mod scan;
#[cfg(feature = "postgres")]
mod server;
#[doc(hidden)]
pub mod squash;
mod template;
mod validate;

#[doc(hidden)]
pub use cache::replay_cache;
pub use config::{Backend, Config, Drift};
pub use problem::{Error, Problem, Severity};
/// The rusqlite the replay runs on (with its `functions` feature), for
/// [`Builder::replay_setup`] closures.
pub use rusqlite;
pub use template::template;
pub use validate::{
    Checked, Loaded, ReplaySetup, check, check_incremental, check_with_setup, load, migrations_dir,
    register_function_stubs, schema_snapshot, snapshot_path,
};

/// The name of the generated file in the output directory.
pub const OUTPUT_FILE: &str = "migrations.rs";

/// The replay cache's directory in the output directory: the replayed
/// database after verified prefixes of the migrations, so the next build
/// replays only what changed (see `check_incremental`).
pub const CACHE_DIR: &str = "replay-cache";

/// Checks the package's migrations with its `[package.metadata.migrate]`
/// settings and writes `$OUT_DIR/migrations.rs`: `Builder::new().build()`.
///
/// # Errors
///
/// Every problem found in the migrations (also printed as `cargo::error=`
/// lines), or a failure to read the manifest or write the output.
pub fn build() -> Result<Built, Error> {
    Builder::new().build()
}

/// What [`Builder::build`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Built {
    /// The generated file.
    pub path: PathBuf,
    /// How many migrations it lists.
    pub migrations: usize,
    /// Whether the file's bytes changed (it is only written when they do).
    pub changed: bool,
    /// Warnings that did not fail the build.
    pub warnings: Vec<Problem>,
    /// How many migrations, from the first, came from the replay cache
    /// in the output directory instead of being replayed again.
    pub cached: usize,
    /// When the package keeps one migrations directory per backend
    /// ([`Config::sets_from_manifest`]): what was built for the other
    /// backends (this value describes SQLite's `migrations_sqlite.rs`, or
    /// the first backend's). Empty otherwise.
    pub more: Vec<Built>,
}

/// Settings for checking migrations and generating the module.
///
/// # Examples
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), migrate_build::Error> {
///     migrate_build::Builder::new().dir("db/migrations").build()?;
///     Ok(())
/// }
/// ```
pub struct Builder {
    dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    package_dir: Option<PathBuf>,
    config: Option<Config>,
    runtime_path: String,
    directives: Box<dyn Write>,
    replay_setup: Option<Box<ReplaySetup>>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("dir", &self.dir)
            .field("out_dir", &self.out_dir)
            .field("package_dir", &self.package_dir)
            .field("config", &self.config)
            .field("runtime_path", &self.runtime_path)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Defaults: the package is `CARGO_MANIFEST_DIR`, its settings come
    /// from its `Cargo.toml`, output goes to `OUT_DIR`, and cargo
    /// directives to standard output.
    #[must_use]
    pub fn new() -> Self {
        Self {
            dir: None,
            out_dir: None,
            package_dir: None,
            config: None,
            runtime_path: codegen::DEFAULT_RUNTIME_PATH.to_owned(),
            directives: Box::new(std::io::stdout()),
            replay_setup: None,
        }
    }

    /// The migrations directory, relative to the package (overrides the
    /// manifest's `dir`).
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Where to write `migrations.rs` (default: `OUT_DIR`).
    #[must_use]
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The package directory (default: `CARGO_MANIFEST_DIR`).
    #[must_use]
    pub fn package_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.package_dir = Some(dir.into());
        self
    }

    /// Uses these settings instead of reading the manifest.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The path of the runtime crate in the generated code (default
    /// `::migrate_runtime`), for an app that renamed the dependency
    /// (`rt = { package = "migrate-runtime", … }` → `"::rt"`) or re-exports
    /// it (`"crate::deps::migrate_runtime"`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs of an app whose Cargo.toml says
    /// // `rt = { package = "migrate-runtime", version = "0.1" }`
    /// fn main() -> Result<(), migrate_build::Error> {
    ///     migrate_build::Builder::new().runtime_path("::rt").build()?;
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn runtime_path(mut self, path: impl Into<String>) -> Self {
        self.runtime_path = path.into();
        self
    }

    /// Where `cargo::` directives are written (default: standard output,
    /// where cargo reads them). Tests pass a buffer.
    #[must_use]
    pub fn directives(mut self, out: impl Write + 'static) -> Self {
        self.directives = Box::new(out);
        self
    }

    /// Runs `setup` on every database of the build's replay, after the
    /// stubs of `functions` in `[package.metadata.migrate]`: register there
    /// the real implementation of a SQL function the migrations call
    /// (the one the app registers on its connection), so the replay
    /// computes what the app will.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // build.rs
    /// use migrate_build::rusqlite::functions::FunctionFlags;
    ///
    /// fn main() -> Result<(), migrate_build::Error> {
    ///     migrate_build::Builder::new()
    ///         .replay_setup(|conn| {
    ///             conn.create_scalar_function("normalize", 1, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
    ///                 Ok(ctx.get::<String>(0)?.trim().to_lowercase())
    ///             })
    ///         })
    ///         .build()?;
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn replay_setup(mut self, setup: impl Fn(&rusqlite::Connection) -> rusqlite::Result<()> + 'static) -> Self {
        self.replay_setup = Some(Box::new(setup));
        self
    }

    /// Checks the migrations and writes the generated module.
    ///
    /// # Errors
    ///
    /// Every problem found in the migrations (each also written as a
    /// `cargo::error=` directive), or a failure to read the manifest or to
    /// write the output.
    pub fn build(mut self) -> Result<Built, Error> {
        let runtime_path = std::mem::take(&mut self.runtime_path);
        if !codegen::is_runtime_path(&runtime_path) {
            let problems = vec![
                Problem::error(
                    "build.rs",
                    0,
                    format!("`{runtime_path}` is not a path to the runtime crate"),
                )
                .hint("give Builder::runtime_path a Rust path such as \"::migrate_runtime\" or \"crate::deps::rt\""),
            ];
            self.report(&problems);
            return Err(Error::new(problems));
        }
        let package_dir = match self.package_dir.take() {
            Some(d) => d,
            None => env_path("CARGO_MANIFEST_DIR")?,
        };
        let manifest = package_dir.join("Cargo.toml");
        let mut sets = match self.config.take() {
            Some(c) => vec![c],
            None if manifest.exists() => {
                Config::sets_from_manifest(&manifest).inspect_err(|e| self.report(e.problems()))?
            }
            None => vec![Config::default()],
        };
        let out_dir = match self.out_dir.take() {
            Some(d) => d,
            None => env_path("OUT_DIR")?,
        };
        if let [config] = sets.as_mut_slice() {
            if let Some(dir) = self.dir.take() {
                config.dir = dir;
            }
            let config = config.clone();
            return self.build_one(
                &package_dir,
                &manifest,
                config,
                &out_dir.join(OUTPUT_FILE),
                &runtime_path,
            );
        }
        if self.dir.is_some() {
            let problems = vec![
                Problem::error(
                    "build.rs",
                    0,
                    "Builder::dir names one migrations directory, and this package keeps one per backend ([package.metadata.migrate.sqlite] and [package.metadata.migrate.postgres])",
                )
                .hint("drop Builder::dir and set `dir` in each backend's table, or choose one with Builder::config"),
            ];
            self.report(&problems);
            return Err(Error::new(problems));
        }
        // One module per backend; every backend is checked before failing.
        let (mut built, mut problems) = (Vec::new(), Vec::new());
        for config in sets {
            let path = out_dir.join(format!("migrations_{}.rs", config.backend().name()));
            match self.build_one(&package_dir, &manifest, config, &path, &runtime_path) {
                Ok(b) => built.push(b),
                Err(e) => problems.extend_from_slice(e.problems()),
            }
        }
        if !problems.is_empty() {
            return Err(Error::new(problems));
        }
        let mut first = built.remove(0);
        first.more = built;
        Ok(first)
    }

    /// Checks the migrations of `config` and writes their module to `path`.
    fn build_one(
        &mut self,
        package_dir: &Path,
        manifest: &Path,
        config: Config,
        path: &Path,
        runtime_path: &str,
    ) -> Result<Built, Error> {
        let out_dir = path.parent().unwrap_or(path);
        let dir = migrations_dir(package_dir, &config);
        self.emit(&format!("rerun-if-changed={}", dir.display()));
        if manifest.exists() {
            self.emit(&format!("rerun-if-changed={}", manifest.display()));
        }
        if config.backend() == Backend::Postgres {
            self.emit("rerun-if-env-changed=MIGRATE_CHECK_DATABASE_URL");
        }
        if let Some(snapshot) = snapshot_path(package_dir, &config) {
            self.emit(&format!("rerun-if-changed={}", snapshot.display()));
        }
        let cache_dir = out_dir.join(CACHE_DIR);
        let checked = check_incremental(package_dir, &config, self.replay_setup.as_deref(), Some(&cache_dir))
            .inspect_err(|e| self.report(e.problems()))?;
        self.report(&checked.warnings);
        // Not a directive: cargo keeps the line in the build script's
        // `output` file and shows it with `cargo build -vv`.
        if config.backend() != Backend::Postgres {
            let _ = writeln!(
                self.directives,
                "migrate-build: checked {} migrations, replayed {} (the first {} from the replay cache in {})",
                checked.migrations.len(),
                checked.migrations.len() - checked.cached,
                checked.cached,
                cache_dir.display()
            );
        }
        let imported = imported::Imported::read(&dir, package_dir)
            .inspect_err(|e| self.report(e.problems()))?
            .map(|i| i.pairs())
            .unwrap_or_default();
        let source = codegen::generate(&codegen::Input {
            migrations: &checked.migrations,
            tables: &checked.tables,
            ages: &checked.ages,
            tracking_table: &config.table,
            package_dir,
            dir_display: &scan::display_path(&dir, package_dir),
            runtime_path,
            backend: config.backend(),
            schema: config.schema.as_deref(),
            lock: config.lock,
            lock_timeout: config.lock_timeout,
            fingerprints: &checked.fingerprints,
            drift: config.drift,
            ignore: &config.ignore,
            store_down: config.store_down,
            imported: &imported,
        });
        let changed = write_if_changed(path, source.as_bytes())?;
        Ok(Built {
            path: path.to_owned(),
            migrations: checked.migrations.len(),
            changed,
            warnings: checked.warnings,
            cached: checked.cached,
            more: Vec::new(),
        })
    }

    fn emit(&mut self, directive: &str) {
        // A build script whose stdout is gone cannot report anything; the
        // returned error still says what went wrong.
        let _ = writeln!(self.directives, "cargo::{directive}");
    }

    fn report(&mut self, problems: &[Problem]) {
        for p in problems {
            let kind = if p.is_error() { "error" } else { "warning" };
            self.emit(&format!("{kind}={p}"));
        }
    }
}

fn env_path(var: &str) -> Result<PathBuf, Error> {
    std::env::var_os(var).map(PathBuf::from).ok_or_else(|| {
        Error::new(vec![
            Problem::error("build.rs", 0, format!("the environment variable {var} is not set"))
                .hint("run migrate_build from a build script under cargo, or set the directory on the Builder"),
        ])
    })
}

/// Writes `bytes` to `path` unless it already holds exactly them, so an
/// unchanged input causes no rebuild. Returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "cannot create the output directory", &e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, "cannot write the generated module", &e))?;
    Ok(true)
}

/// 1-based line of byte `offset` in `text`: the runtime's line counter.
pub(crate) use migrate_runtime::line_at_byte as line_at;
