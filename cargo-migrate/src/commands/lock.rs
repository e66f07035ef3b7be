//! `lock`: writes `migrations/migrate.lock` from the migration files, and
//! the lock-file bookkeeping of `new` and `renumber`.

use anyhow::{Result, bail};
use std::path::PathBuf;

use migrate_build::lockfile;
use migrate_build::scan::{Found, Kind, SqlFile};

use crate::messages::{Problems, say, warning};
use crate::package::{Package, show};
use crate::settings::Settings;

/// `lock`: the lock file for the migrations on disk, which must scan
/// without errors.
pub fn run(settings: &Settings) -> Result<()> {
    let package = &settings.package;
    let dir = package.existing_migrations_dir()?;
    let loaded = migrate_build::load(&package.dir, &package.config).map_err(Problems::in_migrations)?;
    crate::messages::problems(&loaded.warnings);
    let (path, changed) =
        lockfile::write(&dir, &loaded.migrations, package.config.width).map_err(Problems::in_migrations)?;
    let what = if changed { "wrote" } else { "unchanged:" };
    say!(
        "{what} {} ({})",
        show(&path),
        crate::messages::count(loaded.migrations.len(), "migration")
    );
    if !package.config.lock_file {
        warning!(
            "lock_file is not set in [package.metadata.migrate] of {}, so `cargo build` does not check the lock file; add lock_file = true",
            show(&package.manifest)
        );
    }
    Ok(())
}

/// After `new` wrote migration `version` `name` (`files`: each kind's path
/// and text): adds its line to the lock file, keeping the others as they
/// are (a hand edit elsewhere is still caught). A lock file that is
/// missing or does not parse is left alone, with a warning.
pub fn after_new(package: &Package, version: u64, name: &str, files: &[(Kind, PathBuf, String)]) {
    if !package.config.lock_file {
        return;
    }
    let dir = package.migrations_dir();
    let file = |kinds: &[Kind]| {
        files
            .iter()
            .find(|(k, _, _)| kinds.contains(k))
            .map(|(_, path, text)| SqlFile::new(path, show(path), text.as_str()))
    };
    let Some(up) = file(&[Kind::Up, Kind::UpOnly]) else {
        return;
    };
    let added = Found::new(version, name, up, file(&[Kind::Down]));
    let shown = show(&lockfile::path(&dir));
    match lockfile::add(&dir, &shown, std::slice::from_ref(&added), package.config.width) {
        Ok((path, false)) => say!(
            "added {version:0width$} {name} to {}",
            show(&path),
            width = package.config.width
        ),
        Ok((path, true)) => {
            say!(
                "created {} with {version:0width$} {name}",
                show(&path),
                width = package.config.width
            );
            if version > 1 {
                warning!(
                    "the older migrations are not in {} yet: run `cargo migrate lock` once this one's SQL is written",
                    show(&path)
                );
            }
        }
        Err(p) => warning!("{p}; the new migration is not in the lock file yet"),
    }
}

/// After `repair` re-stamped `repaired`: their lines in the lock file
/// take the files' checksums (their change was only cosmetic), the other
/// lines stay as they are.
pub fn after_repair(package: &Package, repaired: &[Found]) {
    if !package.config.lock_file || repaired.is_empty() {
        return;
    }
    let dir = package.migrations_dir();
    let shown = show(&lockfile::path(&dir));
    match lockfile::add(&dir, &shown, repaired, package.config.width) {
        Ok((path, _)) => say!("updated {} for the repaired migrations", show(&path)),
        Err(p) => warning!("{p}; run `cargo migrate lock` to write it"),
    }
}

/// After `renumber` renamed files: the lock file written again from the
/// files (a merge conflict in it is resolved this way).
///
/// # Errors
///
/// When the migrations do not scan or the file cannot be written.
pub fn after_renumber(package: &Package) -> Result<()> {
    if !package.config.lock_file {
        return Ok(());
    }
    let dir = package.migrations_dir();
    let loaded = match migrate_build::load(&package.dir, &package.config) {
        Ok(loaded) => loaded,
        Err(e) => {
            crate::messages::problems(e.problems());
            bail!(
                "the renamed migrations still have problems, so {} was not written again; fix them, then run `cargo migrate lock`",
                show(&lockfile::path(&dir))
            );
        }
    };
    let (path, _) = lockfile::write(&dir, &loaded.migrations, package.config.width).map_err(Problems::in_migrations)?;
    say!("wrote {} for the renumbered migrations", show(&path));
    Ok(())
}
