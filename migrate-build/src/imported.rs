//! `migrations/imported.toml`: which migration of another tool each of
//! ours is. `cargo migrate import` writes it; `cargo migrate import
//! --database` reads it to take a database's history over, and the build
//! puts it in the generated `migrator()` (`Migrator::imported`), so that
//! `migrator().adopt(Previous::Sqlx)` can do the same at start-up.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::problem::{Error, Problem};

/// The file's name, in the migrations directory.
pub const FILE: &str = "imported.toml";

/// One migration: ours, and the other tool's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// Our version.
    pub version: u64,
    /// Our name.
    pub name: String,
    /// The version as the other tool records it in its tracking table.
    pub from_version: String,
    /// Its files in the source directory.
    #[serde(default)]
    pub files: Vec<String>,
}

impl Entry {
    /// Our migration `version` `name`, the tool's `from_version`, from `files`.
    #[must_use]
    pub fn new(version: u64, name: impl Into<String>, from_version: impl Into<String>, files: Vec<String>) -> Self {
        Self {
            version,
            name: name.into(),
            from_version: from_version.into(),
            files,
        }
    }
}

/// A file left out by `import --partial`, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The file, in the source directory.
    pub file: String,
    /// Why it could not be converted.
    pub why: String,
}

impl Skipped {
    /// `file`, left out because `why`.
    #[must_use]
    pub fn new(file: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            why: why.into(),
        }
    }
}

/// The whole file.
///
/// # Examples
///
/// ```
/// use migrate_build::imported::{Entry, Imported};
/// let m = Imported::new("sqlx", "old", vec![Entry::new(1, "create_users", "20240101120000", vec![])]);
/// let back: Imported = Imported::parse(&m.to_toml(), "imported.toml")?;
/// assert_eq!(back.pairs(), [("20240101120000".to_owned(), 1)]);
/// # Ok::<(), migrate_build::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Imported {
    /// The tool (`sqlx`, `golang-migrate`, …).
    pub from: String,
    /// The source directory, as given to `import`.
    #[serde(default)]
    pub source: String,
    /// Oldest first.
    #[serde(default, rename = "migration")]
    pub migrations: Vec<Entry>,
    /// Files left out (`--partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl Imported {
    /// The mapping from `from`'s `source` directory.
    #[must_use]
    pub fn new(from: impl Into<String>, source: impl Into<String>, migrations: Vec<Entry>) -> Self {
        Self {
            from: from.into(),
            source: source.into(),
            migrations,
            skipped: Vec::new(),
        }
    }

    /// `(the tool's version, ours)`, oldest first: what
    /// `Previous::applied` and `Migrator::imported` take.
    #[must_use]
    pub fn pairs(&self) -> Vec<(String, u64)> {
        self.migrations
            .iter()
            .map(|e| (e.from_version.clone(), e.version))
            .collect()
    }

    /// The file's text, with a comment saying what it is.
    #[must_use]
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `cargo migrate import --from {0}`: which migration of {0} each of ours is.\n\
             # `cargo migrate import --from {0} --database URL` and `migrator().adopt(…)` read it\n\
             # to take over a database's history; keep it in version control.\n{body}",
            self.from
        )
    }

    /// Parses the file's text; `shown` names it in errors.
    ///
    /// # Errors
    ///
    /// Text that is not this file's TOML, or versions out of order.
    pub fn parse(text: &str, shown: &str) -> Result<Self, Error> {
        let bad = |message: String| {
            Error::new(vec![Problem::error(shown, 0, message).hint(
                "it is written by `cargo migrate import`: restore it from version control, or import again into an empty directory",
            )])
        };
        let imported: Self = toml::from_str(text).map_err(|e| bad(format!("not a valid {FILE}: {}", e.message())))?;
        if let Some(w) = imported.migrations.windows(2).find(|w| w[0].version >= w[1].version) {
            return Err(bad(format!(
                "migration {} comes after {}: versions must be ascending",
                w[1].version, w[0].version
            )));
        }
        Ok(imported)
    }

    /// Reads `dir/imported.toml`; `None` when there is none.
    ///
    /// # Errors
    ///
    /// An unreadable or invalid file.
    pub fn read(dir: &Path, package_dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(FILE);
        let shown = crate::scan::display_path(&path, package_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &shown).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::new(vec![Problem::error(
                shown,
                0,
                format!("cannot read it: {e}"),
            )])),
        }
    }
}
