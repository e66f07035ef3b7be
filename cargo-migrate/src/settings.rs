//! The validated settings every command works from: the package, its
//! config, and the database, resolved once from the raw arguments.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::cli::{Command, Migrate};
use crate::database::{Database, Source};
use crate::package::Package;

/// Everything a command needs, checked.
#[derive(Debug)]
pub struct Settings {
    /// The package whose migrations to use.
    pub package: Package,
    /// The database, when one was given and the command uses it.
    pub database: Option<Database>,
    /// `--database` as given (`init` writes it to the config).
    pub database_flag: Option<String>,
    /// The current directory, which relative paths on the command line start from.
    pub cwd: PathBuf,
    /// The command and its own options.
    pub command: Command,
    /// Whether the command runs once for each backend's migrations (`new`,
    /// `check` and `lock` in a package with one directory per backend,
    /// without `--backend`).
    pub each_backend: bool,
}

impl Settings {
    /// Resolves the package and, for the commands that use one, the database
    /// (`--database`, else `DATABASE_URL`, else the config's `database`).
    ///
    /// # Errors
    ///
    /// When the package cannot be found or its config is invalid, or the
    /// database URL is invalid.
    pub fn new(args: Migrate) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let mut package = Package::resolve(args.manifest_path.as_deref(), args.package.as_deref(), &cwd)?;
        let every = every_backend(&args.command);
        if let Some(backend) = args.backend {
            package.select(backend.backend())?;
        } else if package.per_backend() && !every {
            // The database says which migrations: a PostgreSQL URL,
            // PostgreSQL's. Without one, nothing is guessed.
            match url(args.database.as_deref(), &package, &cwd, false)? {
                Some((url, source, base)) => {
                    let backend = if Database::parse(&url, source, &base)?.postgres_url().is_some() {
                        migrate_build::Backend::Postgres
                    } else {
                        migrate_build::Backend::Sqlite
                    };
                    package.select(backend)?;
                }
                None => bail!(
                    "this package keeps migrations for {}; choose which with --backend sqlite|postgres, or give a database with --database URL",
                    package.describe_sets()
                ),
            }
        }
        let database = if uses_database(&args.command) {
            database(args.database.as_deref(), &package, &cwd)?
        } else {
            None
        };
        if let Some(db) = &database {
            refuse_other_backend(db, &package)?;
        }
        Ok(Self {
            each_backend: package.per_backend() && args.backend.is_none() && every,
            package,
            database,
            database_flag: args.database,
            command: args.command,
            cwd,
        })
    }

    /// The database, or an error that says how to give one.
    ///
    /// # Errors
    ///
    /// When no database was given.
    pub fn database(&self) -> Result<&Database> {
        self.database.as_ref().ok_or_else(|| {
            anyhow!(
                "no database given; pass --database URL (e.g. --database sqlite:app.db), set DATABASE_URL, or set database = \"sqlite:app.db\" in [package.metadata.migrate] of {}",
                crate::package::show(&self.package.manifest)
            )
        })
    }
}

/// Refuses a database of the other kind than the migrations are written
/// for (PostgreSQL migrations on an SQLite file, or the other way round),
/// when the package says which they are (`backend`, a `database` in the
/// config, or one directory per backend): a script valid in both dialects
/// would otherwise be applied to the wrong database.
fn refuse_other_backend(db: &Database, package: &Package) -> Result<()> {
    use migrate_build::Backend;
    let config = &package.config;
    if config.backend.is_none() && config.database.is_none() {
        return Ok(());
    }
    let kind = if db.postgres_url().is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    if kind == config.backend() {
        return Ok(());
    }
    let title = |b: Backend| if b == Backend::Postgres { "PostgreSQL" } else { "SQLite" };
    let dir = crate::package::show(&package.migrations_dir());
    let hint = if package.per_backend() {
        format!(
            "give a {} database, or choose its migrations with --backend {}",
            title(config.backend()),
            kind.name()
        )
    } else {
        format!(
            "give a {} database, or set backend = \"{}\" in [package.metadata.migrate] if these migrations are for {}",
            title(config.backend()),
            kind.name(),
            title(kind)
        )
    };
    bail!(
        "the database {} is {}, and the migrations in {dir} are for {} ({hint}); nothing was done",
        db.shown(),
        if kind == Backend::Postgres { "a PostgreSQL database" } else { "an SQLite database" },
        title(config.backend())
    )
}

/// The commands that work on every migrations directory of a package
/// that keeps one per backend, unless `--backend` chooses one: what a
/// developer does to the migrations themselves, not to a database.
fn every_backend(command: &Command) -> bool {
    matches!(command, Command::New(_) | Command::Check(_) | Command::Lock)
}

fn uses_database(command: &Command) -> bool {
    match command {
        Command::Status(_)
        | Command::Up(_)
        | Command::Down(_)
        | Command::Redo(_)
        | Command::Renumber(_)
        | Command::Diff(_)
        | Command::Repair(_)
        | Command::Database(_)
        | Command::Baseline(_) => true,
        // `schema` reads a live database only when --database says so.
        // `import` converts a database's history only when --database says so.
        Command::Init(_)
        | Command::New(_)
        | Command::List(_)
        | Command::Check(_)
        | Command::Schema(_)
        | Command::Import(_) => false,
        Command::Lock | Command::Squash(_) => false,
        Command::Lint(_) => false,
    }
}

/// The database URL: `--database`, else `DATABASE_URL` in the environment,
/// else in a `.env` file (the current directory's, else the package's, as
/// sqlx-cli and diesel_cli read it), else the config's `database`.
///
/// Relative paths on the command line and in the environment are relative
/// to the current directory, like every path given to a command; in a file
/// (the manifest, a `.env`) they are relative to that file's directory.
fn database(flag: Option<&str>, package: &Package, cwd: &Path) -> Result<Option<Database>> {
    match url(flag, package, cwd, true)? {
        Some((url, source, base)) => Database::parse(&url, source, &base).map(Some),
        None => Ok(None),
    }
}

/// The database URL [`database`] parses, where it came from, and the
/// directory a relative path in it starts from; the config's `database`
/// only `with_config`.
fn url(
    flag: Option<&str>,
    package: &Package,
    cwd: &Path,
    with_config: bool,
) -> Result<Option<(String, Source, PathBuf)>> {
    let env = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    Ok(if let Some(url) = flag {
        Some((url.to_owned(), Source::Flag, cwd.to_owned()))
    } else if let Some(url) = env {
        Some((url, Source::Env, cwd.to_owned()))
    } else if let Some((url, dir)) = dotenv_url(&[cwd, &package.dir])? {
        Some((url, Source::DotEnv, dir))
    } else {
        package
            .config
            .database
            .as_ref()
            .filter(|_| with_config)
            .map(|url| (url.clone(), Source::Config, package.dir.clone()))
    })
}

/// `DATABASE_URL` from the first `.env` file in `dirs` that sets it, and
/// that file's directory.
fn dotenv_url(dirs: &[&Path]) -> Result<Option<(String, PathBuf)>> {
    for dir in dirs {
        let path = dir.join(".env");
        if !path.is_file() {
            continue;
        }
        let shown = crate::package::show(&path);
        let entries = dotenvy::from_path_iter(&path).with_context(|| format!("cannot read {shown}"))?;
        for entry in entries {
            let (key, value) = entry.with_context(|| {
                format!("cannot read {shown}: it is not a valid .env file; fix it, or pass --database URL")
            })?;
            if key == "DATABASE_URL" && !value.is_empty() {
                return Ok(Some((value, dir.to_path_buf())));
            }
        }
    }
    Ok(None)
}
