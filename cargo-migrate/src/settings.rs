//! The validated settings every command works from: the package, its
//! config, and the database, resolved once from the raw arguments.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

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
        let package = Package::resolve(args.manifest_path.as_deref(), args.package.as_deref(), &cwd)?;
        let database = if uses_database(&args.command) {
            database(args.database.as_deref(), &package, &cwd)?
        } else {
            None
        };
        Ok(Self {
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
    let env = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    let (url, source, base) = if let Some(url) = flag {
        (url.to_owned(), Source::Flag, cwd.to_owned())
    } else if let Some(url) = env {
        (url, Source::Env, cwd.to_owned())
    } else if let Some((url, dir)) = dotenv_url(&[cwd, &package.dir])? {
        (url, Source::DotEnv, dir)
    } else if let Some(url) = &package.config.database {
        (url.clone(), Source::Config, package.dir.clone())
    } else {
        return Ok(None);
    };
    Database::parse(&url, source, &base).map(Some)
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
