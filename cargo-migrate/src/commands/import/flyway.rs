//! Flyway: `V<version>__<description>.sql` (versioned), `U<version>__…sql`
//! (undo: our down), `R__<description>.sql` (repeatable), found anywhere
//! under the location; versions are dotted numbers (`1`, `1.1`, `1_1` is
//! `1.1`) applied in numeric order; a `<file>.sql.conf` script config with
//! `executeInTransaction=false` runs it outside a transaction; `${name}`
//! placeholders are replaced when Flyway runs the script; files named
//! after events (`beforeMigrate.sql`, …) are callbacks. Learned from the
//! Flyway documentation (documentation.red-gate.com/fd: "Migrations",
//! "Script Configuration", "Placeholders", "Callback Events") and
//! flyway/flyway, flyway-core/.../resolver/sql/SqlMigrationResolver.java.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::source::{Converted, Imported, entries, misfit, read};
use crate::package::show;

const EXPECTED: &str = "V<version>__<description>.sql, U<version>__<description>.sql or R__<description>.sql, with a version of digits separated by . or _";

/// Flyway's callback events, which name scripts that are not migrations.
const CALLBACKS: &[&str] = &[
    "beforeMigrate",
    "beforeRepeatables",
    "beforeEachMigrate",
    "beforeEachMigrateStatement",
    "afterEachMigrateStatement",
    "afterEachMigrateStatementError",
    "afterEachMigrate",
    "afterEachMigrateError",
    "afterMigrate",
    "afterMigrateApplied",
    "afterVersioned",
    "afterMigrateError",
    "beforeUndo",
    "beforeEachUndo",
    "afterEachUndo",
    "afterUndo",
    "beforeClean",
    "afterClean",
    "beforeValidate",
    "afterValidate",
    "beforeBaseline",
    "afterBaseline",
    "beforeRepair",
    "afterRepair",
    "beforeInfo",
    "afterInfo",
    "createSchema",
    "beforeConnect",
    "afterConnect",
];

/// One versioned script: the version's numbers, as recorded, and its parts.
struct Versioned {
    recorded: String,
    description: String,
    up: Option<(String, String, bool)>,
    down: Option<(String, String, bool)>,
}

/// Reads a Flyway location, recursively.
pub fn read_dir(dir: &Path) -> Result<Converted> {
    let mut out = Converted::default();
    let mut found: BTreeMap<Vec<u128>, Versioned> = BTreeMap::new();
    walk(dir, "", &mut out, &mut found)?;
    for (_, v) in found {
        let Some((up_file, up_sql, up_nt)) = v.up else {
            let (file, ..) = v.down.unwrap_or_default();
            return Err(misfit(
                &dir.join(file),
                "Flyway",
                "an undo script next to its V script of the same version",
            ));
        };
        let mut m = Imported::new(v.recorded, &v.description, up_sql, up_file);
        m.up_no_transaction = up_nt;
        let (down_file, down_sql) = match v.down {
            Some((file, sql, nt)) => {
                m.down_no_transaction = nt;
                (Some(file), Some(sql))
            }
            None => (None, None),
        };
        out.migrations.push(m.with_down(down_sql, down_file));
    }
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Converted, found: &mut BTreeMap<Vec<u128>, Versioned>) -> Result<()> {
    for entry in entries(dir)? {
        let shown = format!("{rel}{}", entry.name);
        if entry.is_dir {
            walk(&entry.path, &format!("{shown}/"), out, found)?;
            continue;
        }
        if entry.name.ends_with(".conf") {
            continue; // read with its script
        }
        let (stem, ext) = entry.name.rsplit_once('.').unwrap_or((&entry.name, ""));
        let event = stem.split_once("__").map_or(stem, |(e, _)| e);
        if CALLBACKS.contains(&event) {
            out.refuse(&shown, format!("a Flyway callback ({event}), run around migrations rather than once: run it from the app or by hand"));
            continue;
        }
        let Some(kind) = stem.chars().next().filter(|c| matches!(c, 'V' | 'U' | 'R' | 'B')) else {
            if ext == "sql" {
                return Err(misfit(&entry.path, "Flyway", EXPECTED));
            }
            out.ignored.push(shown);
            continue;
        };
        let Some((version, description)) = stem[1..].split_once("__") else {
            if ext == "sql" {
                return Err(misfit(&entry.path, "Flyway", EXPECTED));
            }
            out.ignored.push(shown);
            continue;
        };
        if ext != "sql" {
            out.refuse(
                &shown,
                format!("a .{ext} migration, not SQL: write what it does as SQL by hand"),
            );
            continue;
        }
        match kind {
            'R' => {
                out.refuse(&shown, "a repeatable migration (run again whenever it changes): put its current SQL in a new migration, and each later change in another");
                continue;
            }
            'B' => {
                out.refuse(&shown, "a baseline migration (run only on new databases instead of the versions below it): keep the V scripts instead, or make it the first migration by hand");
                continue;
            }
            _ => {}
        }
        let parts: Option<Vec<u128>> = version.split(['.', '_']).map(|p| p.parse().ok()).collect();
        let Some(mut key) = parts.filter(|p| !p.is_empty() && !version.is_empty()) else {
            return Err(misfit(&entry.path, "Flyway", EXPECTED));
        };
        while key.len() > 1 && key.last() == Some(&0) {
            key.pop();
        }
        let sql = read(&entry.path)?;
        if let Some((line, name)) = placeholder(&sql) {
            out.refuse(&shown, format!("line {line}: placeholder ${{{name}}}, which Flyway replaces when it runs the script: write its value into the SQL by hand"));
            continue;
        }
        let conf = entry.path.with_file_name(format!("{}.conf", entry.name));
        let no_tx = conf.is_file()
            && read(&conf)?.lines().any(|l| {
                l.split_once('=')
                    .is_some_and(|(k, v)| k.trim() == "executeInTransaction" && v.trim() == "false")
            });
        let slot = found.entry(key).or_insert_with(|| Versioned {
            recorded: version.replace('_', "."),
            description: description.replace('_', " "),
            up: None,
            down: None,
        });
        let target = if kind == 'V' { &mut slot.up } else { &mut slot.down };
        if let Some((other, ..)) = target.replace((shown, sql, no_tx)) {
            bail!(
                "{}: Flyway version {version} has two {} scripts, this one and {other}; Flyway refuses that too: keep one, then import again; nothing was written",
                show(&entry.path),
                if kind == 'V' { "versioned" } else { "undo" }
            );
        }
    }
    Ok(())
}

/// The first `${name}` placeholder in `sql`: its line and name.
fn placeholder(sql: &str) -> Option<(usize, &str)> {
    sql.lines().enumerate().find_map(|(i, line)| {
        let start = line.find("${")?;
        let end = line[start..].find('}')?;
        Some((i + 1, &line[start + 2..start + end]))
    })
}
