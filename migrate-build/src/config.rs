//! `[package.metadata.migrate]` in the package's `Cargo.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::problem::{Error, Problem};

/// The package's migration settings. Every key is optional.
///
/// ```toml
/// [package.metadata.migrate]
/// dir = "migrations"            # relative to the package
/// database = "sqlite:app.db"    # default for CLI commands
/// table = "_migrations"         # tracking table
/// width = 4                     # zero-padding of new versions
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("migrations"),
            database: None,
            table: migrate_runtime::DEFAULT_TABLE.to_owned(),
            width: 4,
        }
    }
}

impl Config {
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
                .hint("the keys are dir (string), database (string), table (string) and width (integer)"),
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
    fn bad_width() {
        let e = parse("[package.metadata.migrate]\nwidth = 0\n").unwrap_err();
        assert!(e.to_string().contains("width = 0 is out of range"), "{e}");
    }
}
