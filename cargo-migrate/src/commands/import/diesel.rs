//! diesel: one directory per migration, `<version>_<name>/up.sql` with
//! `down.sql`, and an optional `metadata.toml` whose `run_in_transaction =
//! false` runs both outside a transaction; applied in the order of the
//! version, which diesel records as the directory name's part before the
//! first `_` with its dashes removed (`2024-01-01-120000` →
//! `20240101120000`). Learned from diesel-rs/diesel,
//! diesel_migrations/src/file_based_migrations.rs (directories with an
//! `up.sql`; files beside them ignored; `metadata.toml`) and
//! diesel_migrations/migrations_internals (`version_from_string`).

use std::path::Path;

use anyhow::{Context as _, Result};

use super::source::{Converted, Imported, entries, misfit, read};
use crate::package::show;

const EXPECTED: &str = "a directory <version>_<name>/ holding up.sql (and down.sql)";

/// Reads a diesel migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    for entry in entries(dir)? {
        if !entry.is_dir {
            out.ignored.push(entry.name);
            continue;
        }
        let up_path = entry.path.join("up.sql");
        if !up_path.is_file() {
            return Err(misfit(&entry.path, "diesel", EXPECTED));
        }
        let (prefix, description) = entry.name.split_once('_').unwrap_or((&entry.name, ""));
        let version = prefix.replace('-', "");
        let mut m = Imported::new(version, description, read(&up_path)?, format!("{}/up.sql", entry.name));
        let down_path = entry.path.join("down.sql");
        let (down, down_file) = if down_path.is_file() {
            (Some(read(&down_path)?), Some(format!("{}/down.sql", entry.name)))
        } else {
            (None, None)
        };
        let metadata = entry.path.join("metadata.toml");
        if metadata.is_file() {
            let text = read(&metadata)?;
            let doc: toml_edit::DocumentMut = text
                .parse()
                .with_context(|| format!("{}: not valid TOML; fix it, then import again", show(&metadata)))?;
            let in_tx = doc
                .get("run_in_transaction")
                .and_then(toml_edit::Item::as_bool)
                .unwrap_or(true);
            m.up_no_transaction = !in_tx;
            m.down_no_transaction = !in_tx;
            m.files.push(format!("{}/metadata.toml", entry.name));
        }
        out.migrations.push(m.with_down(down, down_file));
    }
    // MigrationVersion orders by its text.
    out.migrations.sort_by(|a, b| a.source_version.cmp(&b.source_version));
    Ok(out)
}
