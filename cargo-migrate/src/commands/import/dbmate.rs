//! dbmate: one file per migration, `<version>_<name>.sql`, holding
//! `-- migrate:up` and optionally `-- migrate:down` sections; an option
//! `transaction:false` after a marker runs that section outside a
//! transaction; applied in file name order; the version (the digits, as
//! text) is what `schema_migrations` records. Learned from amacneil/dbmate,
//! pkg/dbmate/migration.go (`parseMigrationContents`: the up block is
//! required; options after the marker) and pkg/dbmate/db.go (the file
//! pattern `^(\d+)_.*\.sql$`).

use std::path::Path;

use anyhow::Result;

use super::source::{Converted, Imported, entries, misfit, read, sections, split_version};
use crate::package::show;

const EXPECTED: &str = "<version>_<name>.sql with a `-- migrate:up` section (and `-- migrate:down`)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Before,
    Up(bool),
    Down(bool),
}

/// Reads a dbmate migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    for entry in entries(dir)? {
        if entry.is_dir || !entry.name.ends_with(".sql") {
            out.ignored.push(entry.name);
            continue;
        }
        let (version, rest) = split_version(&entry.name, "_").ok_or_else(|| misfit(&entry.path, "dbmate", EXPECTED))?;
        let text = read(&entry.path)?;
        let parts = sections(&text, Part::Before, |line| {
            let rest = line.strip_prefix("--")?.trim_start().strip_prefix("migrate:")?;
            let (word, options) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let in_tx = !options.split_whitespace().any(|o| o == "transaction:false");
            match word {
                "up" => Some(Part::Up(in_tx)),
                "down" => Some(Part::Down(in_tx)),
                _ => None,
            }
        });
        let up = parts.iter().find(|(p, _)| matches!(p, Part::Up(_)));
        let Some((Part::Up(up_tx), up_sql)) = up else {
            return Err(misfit(&entry.path, "dbmate", EXPECTED));
        };
        if let Some(line) = sql_before_up(&text) {
            anyhow::bail!(
                "{}:{line}: SQL before `-- migrate:up`, which dbmate does not run; move it into the up section, then import again; nothing was written",
                show(&entry.path)
            );
        }
        let description = rest.trim_end_matches(".sql");
        let mut m = Imported::new(version, description, up_sql.clone(), entry.name.clone());
        m.up_no_transaction = !up_tx;
        let down = parts.iter().find_map(|(p, sql)| match p {
            Part::Down(tx) => Some((*tx, sql.clone())),
            _ => None,
        });
        m.down_no_transaction = down.as_ref().is_some_and(|(tx, _)| !tx);
        out.migrations.push(m.with_down(down.map(|(_, sql)| sql), None));
    }
    Ok(out)
}

/// The line of the first SQL before the up marker, if any.
fn sql_before_up(text: &str) -> Option<usize> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("--") && line.contains("migrate:up") {
            return None;
        }
        if !line.is_empty() && !line.starts_with("--") {
            return Some(i + 1);
        }
    }
    None
}
