//! goose: one file per migration, `<version>_<name>.sql` (timestamps or
//! sequential numbers) with `-- +goose Up` and `-- +goose Down` sections,
//! `-- +goose StatementBegin`/`StatementEnd` around statements that hold
//! semicolons, `-- +goose NO TRANSACTION` for the whole file, and `-- +goose
//! ENVSUB ON` to substitute `${VAR}` from the environment; `.go` files are
//! Go migrations; applied by version number. Learned from pressly/goose,
//! internal/sqlparser/parser.go (the annotations; the Up annotation is
//! required) and migration.go / `NumericComponent` (the version is the
//! number before the first `_`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, number, read, split_version};
use crate::package::show;

const EXPECTED: &str = "<version>_<name>.sql starting with a `-- +goose Up` annotation";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Before,
    Up,
    Down,
}

/// Reads a goose migrations directory.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    let mut found: BTreeMap<u64, Imported> = BTreeMap::new();
    for entry in entries(dir)? {
        let go = entry.name.ends_with(".go");
        if entry.is_dir || !(entry.name.ends_with(".sql") || go) {
            out.ignored.push(entry.name);
            continue;
        }
        let Some((version, rest)) = split_version(&entry.name, "_") else {
            if go {
                out.ignored.push(entry.name);
                continue;
            }
            return Err(misfit(&entry.path, "goose", EXPECTED));
        };
        if go {
            out.refuse(&entry.name, "a Go migration (code): write what it does as SQL by hand");
            continue;
        }
        let v: u64 = version.parse().map_err(|_| misfit(&entry.path, "goose", EXPECTED))?;
        let text = read(&entry.path)?;
        let mut no_tx = false;
        let mut envsub = false;
        let mut part = Part::Before;
        let (mut up, mut down) = (String::new(), String::new());
        for line in text.split_inclusive('\n') {
            // Each annotation line is dropped; StatementBegin/End only keep
            // goose from splitting a body at its semicolons, which our
            // splitter does not do inside trigger bodies and dollar quotes.
            if let Some(annotation) = line.trim().strip_prefix("-- +goose") {
                match annotation.trim().to_ascii_uppercase().as_str() {
                    "UP" => part = Part::Up,
                    "DOWN" => part = Part::Down,
                    "NO TRANSACTION" => no_tx = true,
                    "ENVSUB ON" => envsub = true,
                    _ => {}
                }
                continue;
            }
            match part {
                Part::Up => up.push_str(line),
                Part::Down => down.push_str(line),
                Part::Before if !line.trim().is_empty() && !line.trim().starts_with("--") => {
                    return Err(misfit(&entry.path, "goose", EXPECTED));
                }
                Part::Before => {}
            }
        }
        if part == Part::Before {
            return Err(misfit(&entry.path, "goose", EXPECTED));
        }
        if envsub {
            out.refuse(
                &entry.name,
                "`-- +goose ENVSUB ON` substitutes ${VAR} from the environment when goose runs it: write the values into the SQL by hand",
            );
            continue;
        }
        let mut m = Imported::new(number(version), rest.trim_end_matches(".sql"), up, entry.name.clone());
        m.up_no_transaction = no_tx;
        m.down_no_transaction = no_tx;
        let m = m.with_down(Some(down), None);
        if let Some(other) = found.insert(v, m) {
            bail!(
                "{}: goose migration {v} has two files, this one and {}; goose refuses that too: keep one, then import again; nothing was written",
                show(&entry.path),
                other.files[0]
            );
        }
    }
    out.migrations = found.into_values().collect();
    Ok(out)
}
