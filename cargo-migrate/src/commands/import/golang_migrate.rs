//! golang-migrate: `<version>_<title>.up.<ext>` with an optional
//! `<version>_<title>.down.<ext>`; applied by version number; the
//! database records only the current version (and `dirty`). It has no
//! per-file no-transaction marker (the SQLite driver's `x-no-tx-wrap` URL
//! option is for the whole run). Learned from golang-migrate/migrate,
//! source/parse.go (the pattern `^([0-9]+)_(.*)\.(down|up)\.(.*)$`) and
//! MIGRATIONS.md.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, number, read, split_version};
use crate::package::show;

const EXPECTED: &str = "<version>_<title>.up.sql and optionally <version>_<title>.down.sql";

/// Reads a golang-migrate migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    // version → (title, up file, down file)
    let mut found: BTreeMap<u64, (String, Option<String>, Option<String>)> = BTreeMap::new();
    for entry in entries(dir)? {
        if entry.is_dir {
            out.ignored.push(entry.name);
            continue;
        }
        let parsed = split_version(&entry.name, "_").and_then(|(v, rest)| {
            let (stem, ext) = rest.rsplit_once('.')?;
            let (title, direction) = stem.rsplit_once('.')?;
            matches!(direction, "up" | "down").then_some((v, title, direction, ext))
        });
        let Some((version, title, direction, ext)) = parsed else {
            if entry.name.ends_with(".sql") {
                return Err(misfit(&entry.path, "golang-migrate", EXPECTED));
            }
            out.ignored.push(entry.name);
            continue;
        };
        if ext != "sql" {
            out.refuse(
                &entry.name,
                format!("a .{ext} migration, not SQL: write it as SQL by hand"),
            );
            continue;
        }
        let v: u64 = version
            .parse()
            .map_err(|_| misfit(&entry.path, "golang-migrate", EXPECTED))?;
        let slot = found.entry(v).or_insert_with(|| (title.to_owned(), None, None));
        let taken = if direction == "up" {
            slot.1.replace(entry.name.clone())
        } else {
            slot.2.replace(entry.name.clone())
        };
        if let Some(other) = taken {
            bail!(
                "{}: golang-migrate migration {v} has two {direction} files, this one and {other}; keep one, then import again; nothing was written",
                show(&entry.path)
            );
        }
    }
    for (v, (title, up, down)) in found {
        let Some(up) = up else {
            return Err(misfit(
                &dir.join(down.unwrap_or_default()),
                "golang-migrate",
                "a .down.sql next to its .up.sql",
            ));
        };
        let m = Imported::new(number(&v.to_string()), &title, read(&dir.join(&up))?, up);
        let down_sql = down.as_ref().map(|d| read(&dir.join(d))).transpose()?;
        out.migrations.push(m.with_down(down_sql, down));
    }
    Ok(out)
}
