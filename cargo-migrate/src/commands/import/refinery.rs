//! refinery: `V<n>__<name>.sql` (versioned) and `U<n>__<name>.sql`
//! (unversioned: refinery lets them run out of order; here they keep
//! their place by number), found anywhere under the directory; `.rs` files
//! of the same pattern are Rust migrations; applied by version number; no
//! down migrations. Learned from rust-db/refinery,
//! refinery_core/src/util.rs (`find_migration_files`, the stem pattern
//! `^([U|V])(\d+(?:\.\d+)?)__(\w+)`) and runner.rs (versions are integers,
//! sorted).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, number, read};
use crate::package::show;

const EXPECTED: &str =
    "V<version>__<name>.sql or U<version>__<name>.sql, with an integer version and a name of letters, digits and _";

/// Reads a refinery migrations directory, recursively.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    let mut found: BTreeMap<u64, Imported> = BTreeMap::new();
    walk(dir, "", &mut out, &mut found)?;
    out.migrations = found.into_values().collect();
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Converted, found: &mut BTreeMap<u64, Imported>) -> Result<()> {
    for entry in entries(dir)? {
        let shown = format!("{rel}{}", entry.name);
        if entry.is_dir {
            walk(&entry.path, &format!("{shown}/"), out, found)?;
            continue;
        }
        let (stem, ext) = entry.name.rsplit_once('.').unwrap_or((&entry.name, ""));
        if ext != "sql" && ext != "rs" || entry.name == "mod.rs" {
            out.ignored.push(shown);
            continue;
        }
        let parsed = stem
            .strip_prefix(['V', 'U'])
            .and_then(|s| s.split_once("__"))
            .filter(|(v, n)| {
                !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && !n.is_empty()
                    && n.chars().all(|c| c.is_alphanumeric() || c == '_')
            });
        let Some((version, name)) = parsed else {
            if ext == "rs" {
                out.ignored.push(shown);
                continue;
            }
            return Err(misfit(&entry.path, "refinery", EXPECTED));
        };
        if ext == "rs" {
            out.refuse(
                &shown,
                "a Rust migration (code that returns SQL): write the SQL it returns into a .sql migration by hand",
            );
            continue;
        }
        let v: u64 = version.parse().map_err(|_| misfit(&entry.path, "refinery", EXPECTED))?;
        let m = Imported::new(number(version), name, read(&entry.path)?, shown);
        if let Some(other) = found.insert(v, m) {
            bail!(
                "{}: refinery migration {v} has two files, this one and {}; refinery refuses that too: keep one, then import again; nothing was written",
                show(&entry.path),
                other.files[0]
            );
        }
    }
    Ok(())
}
