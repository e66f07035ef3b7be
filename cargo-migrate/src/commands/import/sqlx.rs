//! sqlx: `<version>_<description>.sql` (up only), or `.up.sql` with
//! `.down.sql`, in one directory; a file whose first bytes are
//! `-- no-transaction` runs outside a transaction; applied by version
//! number. Learned from launchbadge/sqlx, sqlx-core/src/migrate/source.rs
//! (`resolve_blocking`: the name split at the first `_`, the version an
//! `i64`, `_` in the description read as spaces; `no_tx` when the SQL
//! starts with `-- no-transaction`) and migration_type.rs (the suffixes).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, read, split_version};
use crate::package::show;

const EXPECTED: &str =
    "<version>_<description>.sql, or <version>_<description>.up.sql and .down.sql, with an integer version";
const NO_TX: &str = "-- no-transaction";

/// Reads a sqlx migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    // version → (description, up file, down file)
    let mut found: BTreeMap<i64, (String, Option<String>, Option<String>)> = BTreeMap::new();
    for entry in entries(dir)? {
        if entry.is_dir || !entry.name.ends_with(".sql") {
            out.ignored.push(entry.name);
            continue;
        }
        let (version, rest) = split_version(&entry.name, "_").ok_or_else(|| misfit(&entry.path, "sqlx", EXPECTED))?;
        let version: i64 = version.parse().map_err(|_| misfit(&entry.path, "sqlx", EXPECTED))?;
        let (description, kind) = if let Some(d) = rest.strip_suffix(".up.sql") {
            (d, 'u')
        } else if let Some(d) = rest.strip_suffix(".down.sql") {
            (d, 'd')
        } else {
            (rest.trim_end_matches(".sql"), 's')
        };
        let slot = found
            .entry(version)
            .or_insert_with(|| (description.replace('_', " "), None, None));
        let taken = match kind {
            'd' => slot.2.replace(entry.name.clone()),
            _ => slot.1.replace(entry.name.clone()),
        };
        if let Some(other) = taken {
            bail!(
                "{}: sqlx migration {version} has two files, this one and {other}; sqlx refuses that too: keep one, then import again; nothing was written",
                show(&entry.path)
            );
        }
    }
    for (version, (description, up, down)) in found {
        let Some(up) = up else {
            let down = down.unwrap_or_default();
            return Err(misfit(&dir.join(&down), "sqlx", "a .down.sql next to its .up.sql"));
        };
        if down.is_some() && !up.ends_with(".up.sql") {
            return Err(misfit(
                &dir.join(&up),
                "sqlx",
                "<version>_<description>.up.sql next to a .down.sql",
            ));
        }
        let (up_sql, up_nt) = body(&read(&dir.join(&up))?);
        let mut m = Imported::new(version.to_string(), &description, up_sql, up);
        m.up_no_transaction = up_nt;
        let down_sql = match &down {
            Some(file) => {
                let (sql, nt) = body(&read(&dir.join(file))?);
                m.down_no_transaction = nt;
                Some(sql)
            }
            None => None,
        };
        out.migrations.push(m.with_down(down_sql, down));
    }
    Ok(out)
}

/// The SQL without sqlx's marker, and whether it had it.
fn body(text: &str) -> (String, bool) {
    match text.strip_prefix(NO_TX) {
        Some(rest) => (rest.split_once('\n').map_or("", |(_, r)| r).to_owned(), true),
        None => (text.to_owned(), false),
    }
}
