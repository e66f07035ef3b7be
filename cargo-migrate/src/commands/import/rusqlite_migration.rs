//! rusqlite_migration's directory layout (`MigrationsBuilder::
//! from_directory`): one directory per migration, `<id>-<name>/up.sql`
//! with an optional `down.sql`, ids 1, 2, 3, … without gaps; the database
//! records how many are applied in `PRAGMA user_version`. Learned from
//! cljoly/rusqlite_migration, rusqlite_migration/src/loader.rs (the id
//! before the first `-`, consecutive from 1; `up.sql` required).
//! Migrations written in code (`M::up("…")`) have no files to import:
//! write them as our files in the same order, then `import --database`
//! maps user_version N to our versions 1..N.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, read};
use crate::package::show;

const EXPECTED: &str = "a directory <id>-<name>/ holding up.sql (and down.sql), with ids 1, 2, 3, …";

/// Reads a rusqlite_migration migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    let mut found: BTreeMap<u64, Imported> = BTreeMap::new();
    for entry in entries(dir)? {
        if !entry.is_dir {
            out.ignored.push(entry.name);
            continue;
        }
        let (id, name) = entry
            .name
            .split_once('-')
            .and_then(|(id, name)| Some((id.parse::<u64>().ok().filter(|&i| i > 0)?, name)))
            .ok_or_else(|| misfit(&entry.path, "rusqlite_migration", EXPECTED))?;
        let up = entry.path.join("up.sql");
        if !up.is_file() {
            return Err(misfit(&entry.path, "rusqlite_migration", EXPECTED));
        }
        let down = entry.path.join("down.sql");
        let (down_sql, down_file) = if down.is_file() {
            (Some(read(&down)?), Some(format!("{}/down.sql", entry.name)))
        } else {
            (None, None)
        };
        let m = Imported::new(id.to_string(), name, read(&up)?, format!("{}/up.sql", entry.name))
            .with_down(down_sql, down_file);
        if let Some(other) = found.insert(id, m) {
            bail!(
                "{}: migration id {id} is also {}; rusqlite_migration refuses that too: keep one, then import again; nothing was written",
                show(&entry.path),
                other.files[0]
            );
        }
    }
    if let Some((expected, got)) = found.keys().zip(1..).find(|(id, n)| **id != *n).map(|(id, n)| (n, *id)) {
        bail!(
            "{}: migration ids must be 1, 2, 3, … without gaps (rusqlite_migration counts them), but id {expected} is missing (the next is {got}); nothing was written",
            show(dir)
        );
    }
    out.migrations = found.into_values().collect();
    Ok(out)
}
