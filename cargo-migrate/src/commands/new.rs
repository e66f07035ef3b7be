//! `new NAME`: the next numbered migration files, from a short template.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use heck::ToSnakeCase;
use migrate_build::scan::{FileName, Kind, parse_file_name};

use crate::cli::NewArgs;
use crate::messages::{say, warning};
use crate::package::{Package, show};
use crate::settings::Settings;

/// The longest name `new` accepts, so file names stay well under the
/// limits of file systems.
const MAX_NAME: usize = 100;

/// `new NAME [--no-down]`, or `new --recipe RECIPE ARGS…`.
pub fn run(settings: &Settings, args: &NewArgs) -> Result<()> {
    if let Some(recipe) = args.recipe {
        return super::recipe::run(settings, recipe, args);
    }
    let package = &settings.package;
    let raw = args.name.as_deref().unwrap_or_default();
    if !args.args.is_empty() {
        bail!(
            "`new` takes one NAME, and {} words were given; quote a name of several words (help: cargo migrate new \"{raw} {}\"), or pass --recipe for a recipe's arguments",
            args.args.len() + 1,
            args.args.join(" ")
        );
    }
    let name = normalize(raw, &package.migrations_dir())?;
    let kinds: &[Kind] = if args.no_down {
        &[Kind::UpOnly]
    } else {
        &[Kind::Up, Kind::Down]
    };
    let (version, created) = create(package, &name, kinds, |version, kind| template(version, &name, kind))?;
    let mut out = std::io::stdout().lock();
    for path in &created {
        writeln!(out, "{}", show(path))?;
    }
    out.flush()?;
    let what = if args.no_down {
        "write its SQL (it has no down script, so it cannot be rolled back)"
    } else {
        "write its SQL in the .up.sql file, and the SQL that undoes it in the .down.sql file"
    };
    say!("created migration {} {name}: {what}", package.version(version));
    Ok(())
}

/// The next migration's version in the package's migrations directory.
///
/// # Errors
///
/// When the directory is missing or the next version is out of range.
pub fn next_version(package: &Package) -> Result<u64> {
    let dir = package.existing_migrations_dir()?;
    let latest = existing(package, &dir)?.iter().map(|(v, _)| *v).max().unwrap_or(0);
    latest
        .checked_add(1)
        .filter(|&v| i64::try_from(v).is_ok())
        .context("the next version would be above the largest SQLite integer; renumber the migrations")
}

/// Whether a migration in the package's directory is called `name`: its version.
///
/// # Errors
///
/// When the directory cannot be read.
pub fn named(package: &Package, name: &str) -> Result<Option<u64>> {
    let dir = package.existing_migrations_dir()?;
    Ok(existing(package, &dir)?
        .into_iter()
        .find(|(_, n)| n == name)
        .map(|(v, _)| v))
}

/// Writes the next migration called `name` (already normalized): one file
/// per kind, with `text(version, kind)`, never overwriting one and leaving
/// nothing half made. Returns its version and the paths.
///
/// # Errors
///
/// When the directory is missing or a file cannot be written.
pub fn create(
    package: &Package,
    name: &str,
    kinds: &[Kind],
    text: impl Fn(&str, Kind) -> String,
) -> Result<(u64, Vec<PathBuf>)> {
    let version = next_version(package)?;
    let files = kinds
        .iter()
        .map(|&kind| (kind, text(&package.version(version), kind)))
        .collect();
    let created = create_all(
        package,
        &[Planned {
            version,
            name: name.to_owned(),
            files,
        }],
    )?;
    Ok((version, created))
}

/// One migration to write: its version, name (normalized) and files.
pub struct Planned {
    /// The version (the next ones: see [`next_version`]).
    pub version: u64,
    /// The name, normalized.
    pub name: String,
    /// Each file's kind and text.
    pub files: Vec<(Kind, String)>,
}

/// Writes `migrations`, all or none: never overwrites a file, and removes
/// what it wrote when one cannot be written. Returns the paths.
///
/// # Errors
///
/// When the directory is missing or a file cannot be written.
pub fn create_all(package: &Package, migrations: &[Planned]) -> Result<Vec<PathBuf>> {
    let dir = package.existing_migrations_dir()?;
    for m in migrations {
        if let Some(v) = named(package, &m.name)? {
            warning!(
                "migration {} is also called `{}`; both are kept (the generated Version enum tells them apart)",
                package.version(v),
                m.name
            );
        }
    }
    let mut created: Vec<PathBuf> = Vec::new();
    let mut written = Vec::new();
    for m in migrations {
        let mut files = Vec::new();
        for (kind, contents) in &m.files {
            let file = FileName {
                version: m.version,
                name: m.name.clone(),
                kind: *kind,
            };
            let path = dir.join(file.to_file_name(package.config.width));
            if let Err(e) = create_new(&path, contents) {
                // Leave nothing half made.
                for p in &created {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
            created.push(path.clone());
            files.push((*kind, path, contents.clone()));
        }
        written.push((m, files));
    }
    for (m, files) in &written {
        super::lock::after_new(package, m.version, &m.name, files);
    }
    Ok(created)
}

/// The name in snake_case (`"Create Users Table"` → `create_users_table`),
/// or an error when it cannot be a migration name.
pub fn normalize(raw: &str, dir: &Path) -> Result<String> {
    if raw.contains(['/', '\\']) {
        bail!(
            "the name `{raw}` contains a path separator; a migration name is a few words such as \"add email to users\", and the file always goes in {}",
            show(dir)
        );
    }
    let name = raw.trim().to_snake_case();
    if name.is_empty() {
        bail!("the name `{raw}` has no letters or digits; give a few words such as \"add email to users\"");
    }
    if !migrate_build::file_name::is_name(&name) {
        bail!(
            "the name `{raw}` becomes `{name}`, which has characters other than a-z, 0-9 and _; use ASCII letters and digits"
        );
    }
    if name.len() > MAX_NAME {
        bail!(
            "the name `{raw}` is {} characters long; keep it under {MAX_NAME} (it is part of the file name)",
            name.len()
        );
    }
    Ok(name)
}

/// The versions and names of the migrations in `dir`. When the scan finds
/// problems (say, two files with one version after a merge), the numbering
/// still works from the file names, with a warning.
fn existing(package: &Package, dir: &Path) -> Result<Vec<(u64, String)>> {
    match migrate_build::load(&package.dir, &package.config) {
        Ok(loaded) => Ok(loaded.migrations.into_iter().map(|f| (f.version, f.name)).collect()),
        Err(e) => {
            let errors = e.problems().iter().filter(|p| p.is_error()).count();
            warning!(
                "the migrations have {} (see `cargo migrate check`); numbering after the highest version on disk",
                crate::output::count(errors, "problem")
            );
            let mut out = Vec::new();
            for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", show(dir)))? {
                let entry = entry.with_context(|| format!("cannot read {}", show(dir)))?;
                if let Some(f) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| parse_file_name(n, package.config.width).ok())
                {
                    out.push((f.version, f.name));
                }
            }
            Ok(out)
        }
    }
}

/// Writes a new file; never overwrites one.
pub(super) fn create_new(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", show(path)))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", show(path)))
}

/// The template: comments only; an untouched one is a build error, so
/// that no migration is recorded before its SQL is written.
pub use migrate_build::template;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let dir = Path::new("migrations");
        assert_eq!(normalize("Create Users Table", dir).unwrap(), "create_users_table");
        assert_eq!(normalize("addEmail", dir).unwrap(), "add_email");
        assert_eq!(normalize("add-email, phone!", dir).unwrap(), "add_email_phone");
        assert_eq!(normalize("2fa", dir).unwrap(), "2fa");
        assert!(normalize("../../evil", dir).is_err());
        assert!(normalize("/etc/passwd", dir).is_err());
        assert!(normalize("..", dir).is_err());
        assert!(normalize("   ", dir).is_err());
        assert!(normalize("!!!", dir).is_err());
        assert!(normalize("café", dir).is_err());
    }

    #[test]
    fn templates_are_comments_only() {
        for kind in [Kind::Up, Kind::Down, Kind::UpOnly] {
            let text = template("0001", "x", kind);
            assert!(migrate_runtime::statement_lines(&text).is_empty(), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with("-- migrate:")),
                "no directive: {text}"
            );
        }
    }
}
