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
/// drift = "error"               # at start-up: "error" | "warn" | "off"
/// ignore = ["fts_*"]            # tables left out of drift and snapshot
/// snapshot = "migrations/schema.sql"  # the schema as a reviewed file
/// functions = ["normalize/1"]   # app-defined SQL functions, stubbed in the build's replay
/// lock_file = true              # keep migrations/migrate.lock (see crate::lockfile)
/// store_down = true             # keep down scripts in the tracking table, for downgrades
/// lint_from = 12                # lint migrations from this version on
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
    /// What the app does at start-up when its database's schema is not
    /// what its applied migrations make (drift).
    pub drift: Drift,
    /// Names of tables, views and triggers left out of the drift check and
    /// the schema snapshot (`*` any run of characters, `?` one, letter
    /// case ignored): FTS shadow tables, other tools' tables.
    pub ignore: Vec<String>,
    /// The schema snapshot, relative to the package: when set, the build
    /// fails unless this file holds the schema the migrations make, as
    /// [`crate::schema_snapshot`] writes it.
    pub snapshot: Option<PathBuf>,
    /// SQL functions the app registers on its connection, which the
    /// migrations call: `"name"` (any number of arguments) or `"name/N"`
    /// (exactly `N`). The build's replay registers a stub for each
    /// ([`Function`]); `Builder::replay_setup` can register the real one.
    pub functions: Vec<String>,
    /// Keep `migrate.lock` in the migrations directory: the build and
    /// `cargo migrate check` fail when it does not match the files
    /// ([`crate::lockfile`]).
    #[serde(rename = "lock_file", alias = "lock-file")]
    pub lock_file: bool,
    /// Keep each applied migration's down script in the tracking table, so
    /// an older build can roll back migrations it does not know
    /// ([`migrate_runtime::Migrator::store_down`]; SQLite and PostgreSQL).
    #[serde(rename = "store_down", alias = "store-down")]
    pub store_down: bool,
    /// The first version the build's lint checks (`crate::lint`); `None`
    /// (the default): the build does not lint, so a project that upgrades
    /// is not judged on its history. `cargo migrate init` sets it to the
    /// version the package's next migration gets.
    #[serde(rename = "lint_from", alias = "lint-from")]
    pub lint_from: Option<u64>,
}

/// One entry of `functions`: an app-defined SQL function that the build's
/// replay registers as a deterministic stub, which returns its first
/// argument (NULL when called without arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Function {
    /// The function's name, as the migrations call it (SQLite ignores its
    /// letter case).
    pub name: String,
    /// How many arguments it takes; `None`: any number.
    pub args: Option<u8>,
}

/// The most arguments an entry of `functions` may declare (SQLite's
/// default limit).
const MAX_FUNCTION_ARGS: u8 = 127;

impl Function {
    /// Parses an entry of `functions`: a name (letters, digits and `_`, not
    /// starting with a digit), then optionally `/N` with `N` from 0 to 127.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_build::config::Function;
    /// let f = Function::parse("normalize/1").unwrap();
    /// assert_eq!((f.name.as_str(), f.args), ("normalize", Some(1)));
    /// assert_eq!(Function::parse("json_patch_x").unwrap().args, None);
    /// assert!(Function::parse("bad name").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// What is wrong with the entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (name, args) = match entry.split_once('/') {
            Some((name, n)) => (name, Some(n)),
            None => (entry, None),
        };
        let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(format!("function {entry:?} is not a function name"));
        }
        let args = match args {
            None => None,
            Some(n) => match n.parse::<u8>() {
                Ok(count) if count <= MAX_FUNCTION_ARGS && n.bytes().all(|b| b.is_ascii_digit()) => Some(count),
                _ => {
                    return Err(format!(
                        "function {entry:?} has no valid argument count after `/` (0 to {MAX_FUNCTION_ARGS})"
                    ));
                }
            },
        };
        Ok(Self {
            name: name.to_owned(),
            args,
        })
    }
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

impl Backend {
    /// Its name in the manifest: `sqlite` or `postgres`.
    ///
    /// ```
    /// assert_eq!(migrate_build::Backend::Postgres.name(), "postgres");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
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

/// `drift = "error" | "warn" | "off"`: what the app does at start-up when
/// its database's schema differs from what its applied migrations make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Drift {
    /// Refuse to migrate, listing the differences (the default: a database
    /// changed by hand is found before a migration runs on it).
    #[default]
    Error,
    /// Report the differences through the migrator's events and go on.
    Warn,
    /// Do not check.
    Off,
}

impl Drift {
    /// The runtime's policy.
    #[must_use]
    pub fn policy(self) -> migrate_runtime::DriftPolicy {
        match self {
            Self::Error => migrate_runtime::DriftPolicy::Error,
            Self::Warn => migrate_runtime::DriftPolicy::Warn,
            Self::Off => migrate_runtime::DriftPolicy::Off,
        }
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
            drift: Drift::default(),
            ignore: Vec::new(),
            snapshot: None,
            functions: Vec::new(),
            lock_file: false,
            store_down: false,
            lint_from: None,
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

    /// The entries of `functions`, parsed (entries that do not parse are
    /// left out: [`from_manifest`](Self::from_manifest) refuses them).
    #[must_use]
    pub fn function_stubs(&self) -> Vec<Function> {
        self.functions.iter().filter_map(|f| Function::parse(f).ok()).collect()
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
    /// As [`from_manifest`](Self::from_manifest), and when the package
    /// keeps one migrations directory per backend (read those with
    /// [`sets_from_manifest`](Self::sets_from_manifest)).
    pub fn from_manifest_str(text: &str, manifest: &Path) -> Result<Self, Error> {
        let mut sets = Self::sets_from_manifest_str(text, manifest)?;
        if sets.len() > 1 {
            let line = header_line(text, "[package.metadata.migrate.").unwrap_or(0);
            return Err(Error::new(vec![
                Problem::error(
                    manifest,
                    line,
                    "this package keeps one migrations directory per backend ([package.metadata.migrate.sqlite] and [package.metadata.migrate.postgres])",
                )
                .hint("read every backend's settings with Config::sets_from_manifest, or choose one with Builder::config"),
            ]));
        }
        Ok(sets.remove(0))
    }

    /// The settings of each migrations directory of the package: one
    /// [`Config`] when `[package.metadata.migrate]` describes one
    /// directory (the usual case), or one per backend when the package
    /// keeps a directory for each — as an app that runs on SQLite and on
    /// PostgreSQL does (vaultwarden keeps `migrations/sqlite` and
    /// `migrations/postgresql`):
    ///
    /// ```toml
    /// [package.metadata.migrate]         # keys shared by both
    /// lock_file = true
    ///
    /// [package.metadata.migrate.sqlite]  # dir defaults to "migrations/sqlite"
    /// database = "sqlite:data/app.db"
    ///
    /// [package.metadata.migrate.postgres]
    /// dir = "migrations/postgresql"      # defaults to "migrations/postgres"
    /// schema = "app"
    /// ```
    ///
    /// A backend's table sets its own keys over the shared ones; its
    /// `backend` is its name. SQLite's comes first.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_build::{Backend, Config};
    /// use std::path::Path;
    ///
    /// let text = "[package.metadata.migrate]\ntable = \"schema_history\"\n\
    ///             [package.metadata.migrate.sqlite]\n\
    ///             [package.metadata.migrate.postgres]\ndir = \"migrations/postgresql\"\n";
    /// let sets = Config::sets_from_manifest_str(text, Path::new("Cargo.toml")).unwrap();
    /// assert_eq!(sets.len(), 2);
    /// assert_eq!((sets[0].backend(), sets[0].dir.as_path()), (Backend::Sqlite, Path::new("migrations/sqlite")));
    /// assert_eq!((sets[1].backend(), sets[1].dir.as_path()), (Backend::Postgres, Path::new("migrations/postgresql")));
    /// assert_eq!(sets[1].table, "schema_history");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_manifest`](Self::from_manifest), for each directory's
    /// settings; and when two backends name the same directory.
    pub fn sets_from_manifest_str(text: &str, manifest: &Path) -> Result<Vec<Self>, Error> {
        // A manifest that does not parse is reported by the one-directory
        // reading, with its line.
        let section: Option<toml::Table> = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("package")?.get("metadata")?.get("migrate")?.as_table().cloned());
        let section = section.unwrap_or_default();
        let backends: Vec<(Backend, &str)> = [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")]
            .into_iter()
            .filter(|(_, key)| section.get(*key).is_some_and(toml::Value::is_table))
            .collect();
        if backends.is_empty() {
            return Self::one_from_manifest_str(text, manifest).map(|c| vec![c]);
        }
        let mut shared = section.clone();
        shared.remove("sqlite");
        shared.remove("postgres");
        let mut sets: Vec<Self> = Vec::new();
        for (backend, key) in backends {
            let header = format!("[package.metadata.migrate.{key}]");
            let line = header_line(text, &header)
                .or_else(|| header_line(text, "[package.metadata.migrate]"))
                .unwrap_or(0);
            let bad =
                |message: String, hint: &str| Error::new(vec![Problem::error(manifest, line, message).hint(hint)]);
            let Some(own) = section.get(key).and_then(toml::Value::as_table) else {
                continue;
            };
            if own.contains_key("backend") || shared.contains_key("backend") {
                return Err(bad(
                    format!("`backend` is set where {header} names the backend already"),
                    "remove `backend`: each of [package.metadata.migrate.sqlite] and [package.metadata.migrate.postgres] holds the settings of that backend's migrations",
                ));
            }
            let mut merged = shared.clone();
            merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
            merged.insert("backend".to_owned(), toml::Value::String(key.to_owned()));
            merged
                .entry("dir")
                .or_insert_with(|| toml::Value::String(format!("migrations/{key}")));
            let config: Self = toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("invalid {header}: {}", e.message()), KEYS_HINT))?;
            let config = config.validated(text, manifest, line)?;
            if let Some(other) = sets.iter().find(|c| c.dir == config.dir) {
                return Err(bad(
                    format!(
                        "{header}: dir {:?} is the {} migrations' directory too",
                        config.dir.display().to_string(),
                        other.backend().name()
                    ),
                    "give each backend a directory of its own, e.g. dir = \"migrations/sqlite\" and dir = \"migrations/postgres\"",
                ));
            }
            debug_assert_eq!(config.backend(), backend);
            sets.push(config);
        }
        Ok(sets)
    }

    /// [`sets_from_manifest_str`](Self::sets_from_manifest_str) of the
    /// manifest at `manifest`.
    ///
    /// # Errors
    ///
    /// As [`sets_from_manifest_str`](Self::sets_from_manifest_str), and
    /// when the manifest cannot be read.
    pub fn sets_from_manifest(manifest: &Path) -> Result<Vec<Self>, Error> {
        let text =
            std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, "cannot read the manifest", &e))?;
        Self::sets_from_manifest_str(&text, manifest)
    }

    /// The settings of a package with one migrations directory.
    fn one_from_manifest_str(text: &str, manifest: &Path) -> Result<Self, Error> {
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
                .hint(KEYS_HINT),
            ])
        })?;
        let config = manifest_value
            .package
            .and_then(|p| p.metadata)
            .and_then(|m| m.migrate)
            .unwrap_or_default();
        let section = header_line(text, "[package.metadata.migrate]").unwrap_or(0);
        config.validated(text, manifest, section)
    }

    /// `self`, checked: what the types of the keys do not say. `section`
    /// is the line of the keys' table in `text`, for messages.
    fn validated(self, text: &str, manifest: &Path, section: usize) -> Result<Self, Error> {
        let config = self;
        let bad = |message: String| Err(Error::new(vec![Problem::error(manifest, section, message)]));
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
        if let Some(bad_pattern) = config
            .ignore
            .iter()
            .find(|p| migrate_runtime::model::Filter::new(&config.table).ignore(&[p]).is_err())
        {
            let line = key_line(text, section, "ignore", Some(bad_pattern));
            return Err(Error::new(vec![
                Problem::error(manifest, line, format!("ignore pattern {bad_pattern:?} is not valid")).hint(
                    "a pattern is a table name with `*` for any run of characters and `?` for one, such as \"fts_*\"",
                ),
            ]));
        }
        for entry in &config.functions {
            if let Err(message) = Function::parse(entry) {
                let line = key_line(text, section, "functions", Some(entry));
                return Err(Error::new(vec![Problem::error(manifest, line, message).hint(
                    "write the function's SQL name, optionally with its number of arguments: \"normalize/1\", \"json_patch_x\" (any number)",
                )]));
            }
        }
        if config.snapshot.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            let line = key_line(text, section, "snapshot", None);
            return Err(Error::new(vec![
                Problem::error(manifest, line, "snapshot is empty")
                    .hint("name the schema file relative to the package, e.g. snapshot = \"migrations/schema.sql\", or remove the key"),
            ]));
        }
        Ok(config)
    }
}

/// The 1-based line of the table header `header` (a prefix of the line,
/// spaces before it aside).
fn header_line(text: &str, header: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(header))
        .map(|i| i + 1)
}

/// The keys and their types, for a manifest that does not parse.
const KEYS_HINT: &str = "the keys are dir, database, table, backend (\"sqlite\" or \"postgres\"), schema, \
     lock (\"advisory\" or \"table\"), lock_timeout (\"60s\"), drift (\"error\", \"warn\" or \"off\"), snapshot — strings — \
     width and lint_from (integers), lock_file and store_down (true or false), ignore and functions (\"normalize/1\") — arrays of strings";

/// The 1-based line, at or after the section's line, of `key` — or of the
/// string `value` when given and found (a pattern in a multi-line array);
/// the section's line when neither is found.
fn key_line(text: &str, section: usize, key: &str, value: Option<&str>) -> usize {
    let after = || text.lines().enumerate().skip(section.saturating_sub(1));
    let key_at = after()
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i);
    let value_at = value.and_then(|v| {
        let (double, single) = (format!("{v:?}"), format!("'{v}'"));
        after()
            .skip_while(|(i, _)| key_at.is_some_and(|k| *i < k))
            .find(|(_, l)| l.contains(&double) || l.contains(&single))
            .map(|(i, _)| i)
    });
    value_at.or(key_at).map_or(section, |i| i + 1)
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
    fn drift_ignore_and_snapshot() {
        let c = parse("[package.metadata.migrate]\ndrift = \"warn\"\nignore = [\"fts_*\", \"cache_?\"]\nsnapshot = \"migrations/schema.sql\"\n").unwrap();
        assert_eq!(c.drift, Drift::Warn);
        assert_eq!(c.drift.policy(), migrate_runtime::DriftPolicy::Warn);
        assert_eq!(c.ignore, ["fts_*", "cache_?"]);
        assert_eq!(c.snapshot.as_deref(), Some(Path::new("migrations/schema.sql")));
        let d = Config::default();
        assert_eq!((d.drift, d.ignore.len(), d.snapshot), (Drift::Error, 0, None));
        assert_eq!(
            parse("[package.metadata.migrate]\ndrift = \"off\"\n").unwrap().drift,
            Drift::Off
        );
    }

    #[test]
    fn unknown_drift_value_is_an_error_at_its_line() {
        let e = parse("[package]\nname = \"x\"\n[package.metadata.migrate]\ndrift = \"warning\"\n").unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.line, 4, "{p}");
        assert!(p.message.contains("unknown variant `warning`"), "{p}");
        assert!(
            p.hint
                .as_deref()
                .unwrap_or_default()
                .contains("drift (\"error\", \"warn\" or \"off\")"),
            "{p}"
        );
    }

    #[test]
    fn invalid_ignore_pattern_is_an_error_at_its_line_with_a_hint() {
        let e = parse(
            "[package]\nname = \"x\"\n\n[package.metadata.migrate]\ntable = \"t\"\nignore = [\n  \"fts_*\",\n  \"[abc]\",\n]\n",
        )
        .unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(
            p.to_string(),
            "Cargo.toml:8: ignore pattern \"[abc]\" is not valid (help: a pattern is a table name with `*` for any run of characters and `?` for one, such as \"fts_*\")"
        );
        let e = parse("[package.metadata.migrate]\nignore = [\"\"]\n").unwrap_err();
        assert_eq!(e.problems()[0].line, 2, "{e}");
        let e = parse("[package.metadata.migrate]\nsnapshot = \"\"\n").unwrap_err();
        assert_eq!(
            e.problems()[0].to_string().split(" (help").next(),
            Some("Cargo.toml:2: snapshot is empty")
        );
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
        // The drift check and the snapshot work on PostgreSQL too.
        let c = parse("[package.metadata.migrate]\nbackend = \"postgres\"\ndrift = \"warn\"\nignore = [\"x\"]\nsnapshot = \"s.sql\"\n")
            .unwrap();
        assert_eq!((c.drift, c.ignore.len(), c.snapshot.is_some()), (Drift::Warn, 1, true));
        let e = parse("[package.metadata.migrate]\nbackend = \"mysql\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant `mysql`"), "{e}");
    }

    #[test]
    fn functions_entries() {
        let c = parse(
            "[package.metadata.migrate]\nfunctions = [\"normalize/1\", \"BIN2B64/1\", \"json_patch_x\", \"now/0\"]\n",
        )
        .unwrap();
        let stubs: Vec<_> = c.function_stubs().into_iter().map(|f| (f.name, f.args)).collect();
        assert_eq!(
            stubs,
            [
                ("normalize".to_owned(), Some(1)),
                ("BIN2B64".to_owned(), Some(1)),
                ("json_patch_x".to_owned(), None),
                ("now".to_owned(), Some(0)),
            ]
        );
        for (bad, what) in [
            ("normalize/", "no valid argument count"),
            ("normalize/+1", "no valid argument count"),
            ("normalize/200", "no valid argument count"),
            ("bad name", "is not a function name"),
            ("1st", "is not a function name"),
            ("", "is not a function name"),
            ("a/1/2", "no valid argument count"),
        ] {
            let e = parse(&format!(
                "[package]\nname = \"x\"\n[package.metadata.migrate]\nfunctions = [\n  \"ok\",\n  {bad:?},\n]\n"
            ))
            .unwrap_err();
            let p = &e.problems()[0];
            assert_eq!(p.line, 6, "{bad:?}: {p}");
            assert!(p.message.contains(what), "{bad:?}: {p}");
            assert!(p.hint.as_deref().unwrap_or_default().contains("normalize/1"), "{p}");
        }
    }

    #[test]
    fn bad_width() {
        let e = parse("[package.metadata.migrate]\nwidth = 0\n").unwrap_err();
        assert!(e.to_string().contains("width = 0 is out of range"), "{e}");
    }

    fn sets(text: &str) -> Result<Vec<Config>, Error> {
        Config::sets_from_manifest_str(text, Path::new("Cargo.toml"))
    }

    #[test]
    fn one_directory_per_backend() {
        let text = "[package]\nname = \"x\"\n[package.metadata.migrate]\ntable = \"h\"\nlock_file = true\n\
                    [package.metadata.migrate.postgres]\ndir = \"db/pg\"\nschema = \"app\"\n\
                    [package.metadata.migrate.sqlite]\ndatabase = \"sqlite:a.db\"\ntable = \"own\"\n";
        let all = sets(text).unwrap();
        assert_eq!(
            all.iter().map(Config::backend).collect::<Vec<_>>(),
            [Backend::Sqlite, Backend::Postgres]
        );
        assert_eq!(all[0].dir, Path::new("migrations/sqlite"));
        assert_eq!(
            (all[0].table.as_str(), all[0].database.as_deref()),
            ("own", Some("sqlite:a.db"))
        );
        assert_eq!((all[1].dir.as_path(), all[1].table.as_str()), (Path::new("db/pg"), "h"));
        assert_eq!(all[1].schema.as_deref(), Some("app"));
        assert!(all[0].lock_file && all[1].lock_file, "shared keys reach both");
        let e = parse(text).unwrap_err();
        assert!(e.to_string().contains("one migrations directory per backend"), "{e}");
        assert_eq!(sets("[package.metadata.migrate]\ndir = \"m\"\n").unwrap().len(), 1);
    }

    #[test]
    fn one_directory_per_backend_bad_input() {
        for (text, line, what) in [
            (
                "[package.metadata.migrate.sqlite]\nschema = \"app\"\n",
                1,
                "is for PostgreSQL, and these migrations are for SQLite",
            ),
            (
                "[package.metadata.migrate]\ndir = \"m\"\n[package.metadata.migrate.sqlite]\n[package.metadata.migrate.postgres]\n",
                4,
                "is the sqlite migrations' directory too",
            ),
            (
                "[package.metadata.migrate.postgres]\nbackend = \"sqlite\"\n",
                1,
                "`backend` is set where",
            ),
            (
                "[package.metadata.migrate.postgres]\nwidht = 3\n",
                1,
                "unknown field `widht`",
            ),
        ] {
            let e = sets(text).unwrap_err();
            let p = &e.problems()[0];
            assert!(p.message.contains(what), "{text}: {p}");
            assert_eq!(p.line, line, "{text}: {p}");
        }
    }
}
