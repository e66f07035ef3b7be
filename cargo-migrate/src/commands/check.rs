//! `check`: the build script's validation, the very same function; with
//! `--against REF`, also a comparison with the migrations at a git ref.

use std::collections::BTreeMap;

use anyhow::Result;
use migrate_build::Problem;
use migrate_build::scan::{FileName, Kind, parse_file_name};
use migrate_runtime::Checksum;

use crate::cli::CheckArgs;
use crate::git::Git;
use crate::messages::{self, Problems, count, say};
use crate::package::Package;
use crate::settings::Settings;

/// `check [--against REF]`: scans and replays the migrations as `cargo
/// build` does, and prints every problem, warnings included. Like the
/// build script, it keeps the replayed database after verified prefixes
/// (in `target/migrate-check-cache/<package>`), so the next check replays
/// only what changed after the longest unchanged prefix.
pub fn run(settings: &Settings, args: &CheckArgs) -> Result<()> {
    let package = &settings.package;
    // The ref is looked at first: a ref that does not exist is the user's
    // one mistake, whatever the migrations say.
    let against = match &args.against {
        Some(reference) => Some((reference, against(package, reference)?)),
        None => None,
    };
    let checked = migrate_build::check_incremental(&package.dir, &package.config, None, Some(&package.check_cache));
    let (mut problems, summary, cached) = match checked {
        Ok(checked) => {
            let summary = format!(
                "checked {} in {}",
                count(checked.migrations.len(), "migration"),
                crate::package::show(&checked.dir)
            );
            (checked.warnings, Some(summary), checked.cached)
        }
        Err(e) => (e.problems().to_vec(), None, 0),
    };
    if let Some((_, found)) = &against {
        problems.extend(found.iter().cloned());
    }
    if problems.iter().any(Problem::is_error) {
        return Err(Problems {
            problems,
            place: "the migrations",
        }
        .into());
    }
    messages::problems(&problems);
    let mut notes = Vec::new();
    if !problems.is_empty() {
        notes.push(count(problems.len(), "warning"));
    }
    if cached > 0 {
        notes.push(format!(
            "the first {cached} unchanged, from the check cache in {}",
            crate::package::show(&package.check_cache)
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let compared = against
        .map(|(reference, _)| format!(", and against {reference}"))
        .unwrap_or_default();
    say!("{}{compared}: ok{notes}", summary.unwrap_or_default());
    Ok(())
}

/// A migration file in the working tree or at the ref.
struct File {
    name: FileName,
    text: String,
}

/// The problems of the working tree's migrations compared with those at
/// `reference`: a file at the ref that changed or is gone, and a new
/// migration numbered at or below the ref's newest.
fn against(package: &Package, reference: &str) -> Result<Vec<Problem>> {
    let dir = package.existing_migrations_dir()?;
    let git = Git::require(&dir, "`cargo migrate check --against`")?;
    let commit = git.commit(reference)?;
    let prefix = Git::prefix(&dir)?;
    let width = package.config.width;
    let then = files_at(&git, &commit, &prefix, width)?;
    // Where this branch forked from the ref: a file the ref added or
    // changed since is not this branch's doing.
    let fork = match git.fork_point(&commit) {
        Some(base) if base != commit => Some(files_at(&git, &base, &prefix, width)?),
        _ => None,
    };
    let at_fork = |name: &FileName| fork.as_ref().and_then(|files| files.iter().find(|f| &f.name == name));
    let mut now = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(|n| parse_file_name(n, width).ok()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&std::fs::read(entry.path())?).into_owned();
        now.push(File { name, text });
    }
    now.sort_by(|a, b| (a.name.version, &a.name.name).cmp(&(b.name.version, &b.name.name)));
    let shown_dir = migrate_build::scan::display_path(&dir, &package.dir);
    let shown = |f: &FileName| format!("{shown_dir}/{}", f.to_file_name(width));
    let mut problems = Vec::new();
    for old in &then {
        let file = shown(&old.name);
        let forked = at_fork(&old.name);
        match now.iter().find(|n| n.name == old.name) {
            // Added at the ref after this branch forked: not merged yet.
            None if fork.is_some() && forked.is_none() => {}
            None => problems.push(
                Problem::error(
                    &file,
                    0,
                    format!(
                        "migration {} {} is at {reference} but this file is gone (renamed, renumbered or deleted); databases may have applied it",
                        package.version(old.name.version),
                        old.name.name
                    ),
                )
                .hint(format!("restore it with `git checkout {reference} -- {file}`; undo a migration with a new one")),
            ),
            // Changed at the ref, not here.
            Some(new) if forked.is_some_and(|f| same(&f.text, &new.text)) => {}
            Some(new) if !same(&new.text, &old.text) => problems.push(
                Problem::error(
                    &file,
                    first_difference(&old.text, &new.text),
                    format!(
                        "migration {} {} changed since {reference}, where databases may have applied it",
                        package.version(old.name.version),
                        old.name.name
                    ),
                )
                .hint(format!(
                    "restore it with `git checkout {reference} -- {file}` and put the change in a new migration; for a change of comments or white space only, `cargo migrate repair` re-stamps databases that applied it"
                )),
            ),
            Some(_) => {}
        }
    }
    let newest = then.iter().map(|f| f.name.version).max().unwrap_or(0);
    let at_ref = |v: u64, n: &str| then.iter().any(|f| f.name.version == v && f.name.name == n);
    let mut new_ones: BTreeMap<(u64, &str), &FileName> = BTreeMap::new();
    for f in &now {
        if f.name.version <= newest && !at_ref(f.name.version, &f.name.name) {
            let key = (f.name.version, f.name.name.as_str());
            // The up file names the migration.
            if f.name.kind != Kind::Down || !new_ones.contains_key(&key) {
                new_ones.insert(key, &f.name);
            }
        }
    }
    let newest_name = then
        .iter()
        .find(|f| f.name.version == newest)
        .map(|f| f.name.name.clone())
        .unwrap_or_default();
    for name in new_ones.values() {
        problems.push(
            Problem::error(
                shown(name),
                0,
                format!(
                    "new migration {} {} is numbered at or below {} {newest_name}, the newest at {reference}: it would collide with, or be applied out of order after, the migrations merged there",
                    package.version(name.version),
                    name.name,
                    package.version(newest)
                ),
            )
            .hint(format!(
                "merge {reference} into this branch (`git merge {reference}`), then run `cargo migrate renumber --against {reference}` to move it after {}",
                package.version(newest)
            )),
        );
    }
    Ok(problems)
}

/// The migration files of the directory `prefix` at `commit`.
fn files_at(git: &Git, commit: &str, prefix: &str, width: usize) -> Result<Vec<File>> {
    let tree: Vec<_> = git
        .files_at(commit, prefix)?
        .into_iter()
        .filter_map(|f| parse_file_name(&f.name, width).ok().map(|n| (n, f)))
        .collect();
    let objects: Vec<&str> = tree.iter().map(|(_, f)| f.object.as_str()).collect();
    let blobs = git.blobs(&objects)?;
    Ok(tree
        .into_iter()
        .zip(blobs)
        .map(|((name, _), blob)| File {
            name,
            text: String::from_utf8_lossy(&blob).into_owned(),
        })
        .collect())
}

/// Whether two texts of a file are the same, as checksums see them (line
/// endings aside).
fn same(a: &str, b: &str) -> bool {
    Checksum::of(a) == Checksum::of(b)
}

/// The 1-based line where `new` first differs from `old` (line endings aside).
fn first_difference(old: &str, new: &str) -> usize {
    let (old, new) = (old.replace("\r\n", "\n"), new.replace("\r\n", "\n"));
    let mut line = 1;
    let (mut a, mut b) = (old.split('\n'), new.split('\n'));
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            _ => return line,
        }
    }
}
