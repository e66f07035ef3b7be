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
        Command::Status(_) | Command::Up(_) | Command::Down(_) | Command::Redo(_) | Command::Renumber(_) => true,
        Command::Init(_) | Command::New(_) | Command::List(_) | Command::Check => false,
    }
}

/// Relative paths on the command line and in the environment are relative
/// to the current directory, like every path given to a command; in the
/// manifest they are relative to the package, like `dir`.
fn database(flag: Option<&str>, package: &Package, cwd: &Path) -> Result<Option<Database>> {
    let env = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    let (url, source, base) = if let Some(url) = flag {
        (url.to_owned(), Source::Flag, cwd)
    } else if let Some(url) = env {
        (url, Source::Env, cwd)
    } else if let Some(url) = &package.config.database {
        (url.clone(), Source::Config, package.dir.as_path())
    } else {
        return Ok(None);
    };
    Database::parse(&url, source, base).map(Some)
}
