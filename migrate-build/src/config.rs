//! `[package.metadata.migrate]` in the package's `Cargo.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrate_runtime::Lock;
use serde::{Deserialize, Deserializer};

use crate::problem::{Error, Problem};

/// The package's migration settings. Every key is optional.
///
/// ```toml
/// [package.metadata.migrate]
/// dir = "migrations"            # relative to the package
/// database = "sqlite:app.db"    # default for CLI commands
/// table = "_migrations"         # tracking table
/// width = 4                     # zero-padding of new versions
/// backend = "postgres"          # "sqlite" or "postgres"; inferred from `database`
/// schema = "app"                # PostgreSQL: schema of the tracking table and the migrations
/// lock = "advisory"             # PostgreSQL: "advisory" or "table"
/// lock_timeout = "60s"          # how long to wait for another process's migration lock
/// ```
///
/// New keys will come (`#[non_exhaustive]`): start from
/// [`Config::default`] and set fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The migrations directory, relative to the package.
    pub dir: PathBuf,
    /// The database the CLI uses when neither `--database` nor
    /// `DATABASE_URL` is given.
    pub database: Option<String>,
    /// The tracking table.
    pub table: String,
    /// How many digits new versions get (zero-padded).
    pub width: usize,
    /// The database the migrations are written for; `None`: inferred
    /// from `database` (see [`Config::backend`]).
    pub backend: Option<Backend>,
    /// PostgreSQL: the schema of the tracking table (created if missing),
    /// first in `search_path` while migrations run
    /// ([`migrate_runtime::Migrator::schema`]).
    pub schema: Option<String>,
    /// PostgreSQL: how concurrent runs exclude each other, `"advisory"`
    /// (the default) or `"table"` ([`migrate_runtime::Migrator::lock`]).
    #[serde(deserialize_with = "lock")]
    pub lock: Option<Lock>,
    /// How long a run waits for another process's migration lock
    /// (`"500ms"`, `"60s"`, `"2m"`; [`migrate_runtime::Migrator::lock_timeout`]).
    #[serde(deserialize_with = "duration", rename = "lock_timeout", alias = "lock-timeout")]
    pub lock_timeout: Option<Duration>,
}

/// The database a package's migrations are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite: the build replays every migration in memory.
    Sqlite,
    /// PostgreSQL: the build checks what needs no server.
    #[serde(alias = "postgresql")]
    Postgres,
}

fn lock<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lock>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
}

/// `"500ms"`, `"60s"`, `"2m"` (a whole number and a unit).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad =
        || format!("`{text}` is not a duration: write a whole number and a unit, as \"500ms\", \"60s\" or \"2m\"");
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(bad()),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("migrations"),
            database: None,
            table: migrate_runtime::DEFAULT_TABLE.to_owned(),
            width: 4,
            backend: None,
            schema: None,
            lock: None,
            lock_timeout: None,
        }
    }
}

impl Config {
    /// The database the migrations are written for: `backend`, else
    /// PostgreSQL when `database` is a `postgres://` or `postgresql://`
    /// URL, else SQLite.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_build::{Backend, Config};
    /// let mut config = Config::default();
    /// assert_eq!(config.backend(), Backend::Sqlite);
    /// config.database = Some("postgres://app@localhost/app".into());
    /// assert_eq!(config.backend(), Backend::Postgres);
    /// ```
    #[must_use]
    pub fn backend(&self) -> Backend {
        if let Some(backend) = self.backend {
            return backend;
        }
        let url = self.database.as_deref().unwrap_or_default().to_ascii_lowercase();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// Reads `[package.metadata.migrate]` from a `Cargo.toml`; the defaults
    /// when the section is absent.
    ///
    /// # Errors
    ///
    /// When the manifest cannot be read or parsed, or the section has an
    /// unknown key or a value of the wrong type (with its line).
    pub fn from_manifest(manifest: &Path) -> Result<Self, Error> {
        let text =
            std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, "cannot read the manifest", &e))?;
        Self::from_manifest_str(&text, manifest)
    }

    /// [`from_manifest`](Self::from_manifest) for a manifest's text;
    /// `manifest` is only used in messages.
    ///
    /// # Errors
    ///
    /// As [`from_manifest`](Self::from_manifest).
    pub fn from_manifest_str(text: &str, manifest: &Path) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Manifest {
            package: Option<Package>,
        }
        #[derive(Deserialize)]
        struct Package {
            metadata: Option<Metadata>,
        }
        #[derive(Deserialize)]
        struct Metadata {
            migrate: Option<Config>,
        }
        let manifest_value: Manifest = toml::from_str(text).map_err(|e| {
            let lines = text.lines().count().max(1);
            let line = e
                .span()
                .map_or(0, |s| crate::line_at(text.as_bytes(), s.start).min(lines));
            Error::new(vec![
                Problem::error(
                    manifest,
                    line,
                    format!("invalid [package.metadata.migrate]: {}", e.message()),
                )
                .hint("the keys are dir, database, table, backend (\"sqlite\" or \"postgres\"), schema, lock (\"advisory\" or \"table\"), lock_timeout (\"60s\") — strings — and width (integer)"),
            ])
        })?;
        let config = manifest_value
            .package
            .and_then(|p| p.metadata)
            .and_then(|m| m.migrate)
            .unwrap_or_default();
        let bad = |message: String| {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("[package.metadata.migrate]"))
                .map_or(0, |i| i + 1);
            Err(Error::new(vec![Problem::error(manifest, line, message)]))
        };
        if !(1..=19).contains(&config.width) {
            return bad(format!(
                "width = {} is out of range (help: versions are zero-padded to 1 to 19 digits; the default is 4)",
                config.width
            ));
        }
        if config.backend() == Backend::Sqlite {
            if let Some(schema) = &config.schema {
                return bad(format!(
                    "schema = {schema:?} is for PostgreSQL, and these migrations are for SQLite (help: remove it, or set backend = \"postgres\")"
                ));
            }
            if config.lock == Some(Lock::Table) {
                return bad(
                    "lock = \"table\" is for PostgreSQL, and these migrations are for SQLite (help: remove it; SQLite always uses its write lock)".to_owned(),
                );
            }
        }
        if config.table.trim().is_empty() {
            return bad("table is empty (help: name the tracking table, e.g. table = \"_migrations\")".to_owned());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::from_manifest_str(text, Path::new("Cargo.toml"))
    }

    #[test]
    fn defaults_without_section() {
        assert_eq!(parse("[package]\nname = \"x\"\n").unwrap(), Config::default());
    }

    #[test]
    fn reads_every_key() {
        let c = parse("[package]\nname = \"x\"\n[package.metadata.migrate]\ndir = \"db/m\"\ndatabase = \"sqlite:a.db\"\ntable = \"schema_history\"\nwidth = 6\n").unwrap();
        assert_eq!(c.dir, PathBuf::from("db/m"));
        assert_eq!(c.database.as_deref(), Some("sqlite:a.db"));
        assert_eq!(c.table, "schema_history");
        assert_eq!(c.width, 6);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let e = parse("[package]\nname = \"x\"\n[package.metadata.migrate]\ndirr = \"m\"\n").unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.line, 4, "{p}");
        assert!(p.message.contains("unknown field `dirr`"), "{p}");
    }

    #[test]
    fn error_lines_stay_inside_the_file() {
        // fuzz/regressions/config/error-line-past-the-end
        let e = parse("\"\"\"\n").unwrap_err();
        assert_eq!(e.problems()[0].line, 1);
    }

    #[test]
    fn postgres_keys() {
        let c = parse("[package.metadata.migrate]\ndatabase = \"postgresql://h/db\"\nschema = \"app\"\nlock = \"table\"\nlock_timeout = \"500ms\"\n").unwrap();
        assert_eq!(c.backend(), Backend::Postgres);
        assert_eq!(c.schema.as_deref(), Some("app"));
        assert_eq!(c.lock, Some(Lock::Table));
        assert_eq!(c.lock_timeout, Some(Duration::from_millis(500)));
        let c = parse("[package.metadata.migrate]\nbackend = \"postgres\"\nlock_timeout = \"2m\"\n").unwrap();
        assert_eq!(c.backend(), Backend::Postgres);
        assert_eq!(c.lock_timeout, Some(Duration::from_secs(120)));
        let e = parse("[package.metadata.migrate]\nlock = \"row\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown lock mode `row`"), "{e}");
        let e = parse("[package.metadata.migrate]\nlock_timeout = \"5 seconds\"\n").unwrap_err();
        assert!(e.to_string().contains("is not a duration"), "{e}");
        let e = parse("[package.metadata.migrate]\nschema = \"app\"\n").unwrap_err();
        assert!(e.to_string().contains("schema = \"app\" is for PostgreSQL"), "{e}");
        let e = parse("[package.metadata.migrate]\nbackend = \"mysql\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant `mysql`"), "{e}");
    }

    #[test]
    fn bad_width() {
        let e = parse("[package.metadata.migrate]\nwidth = 0\n").unwrap_err();
        assert!(e.to_string().contains("width = 0 is out of range"), "{e}");
    }
}
