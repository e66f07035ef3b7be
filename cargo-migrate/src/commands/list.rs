//! `list`: the migrations on disk.

use anyhow::Result;
use migrate_build::scan::{Found, SqlFile};
use serde::Serialize;

use crate::cli::{Format, ListArgs};
use crate::messages::{count, say};
use crate::migrations;
use crate::output::table;
use crate::settings::Settings;

/// `list --format json`: one object on one line.
#[derive(Debug, Serialize)]
struct Listing<'a> {
    /// The migrations directory, as shown to the user.
    dir: &'a str,
    /// Oldest first.
    migrations: Vec<Row<'a>>,
}

/// One migration on disk.
#[derive(Debug, Serialize)]
struct Row<'a> {
    version: u64,
    name: &'a str,
    /// The up file (`.up.sql`, or `.sql` for an up-only migration).
    up: &'a str,
    /// The down file, or `null`.
    down: Option<&'a str>,
    reversible: bool,
    up_no_transaction: bool,
    down_no_transaction: bool,
    /// Rows per batch of a batched backfill (`-- migrate:batch N`), only
    /// when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    up_batch: Option<u64>,
    /// SHA-256 of the up file, hex, as the tracking table records it.
    checksum: String,
}

impl<'a> Row<'a> {
    fn of(m: &'a Found) -> Self {
        Self {
            version: m.version,
            name: &m.name,
            up: &m.up.display,
            down: m.down.as_ref().map(|d| d.display.as_str()),
            reversible: m.down.is_some(),
            up_no_transaction: m.up.no_transaction,
            down_no_transaction: m.down.as_ref().is_some_and(|d| d.no_transaction),
            up_batch: m.up.batch.map(|(rows, _)| rows),
            checksum: m.checksum().to_string(),
        }
    }
}

/// `list [--format text|json]`.
pub fn run(settings: &Settings, args: &ListArgs) -> Result<()> {
    let package = &settings.package;
    let found = migrations::load(package)?;
    let dir = crate::package::show(&package.migrations_dir());
    match args.format {
        Format::Text => {
            let file = |f: &SqlFile| {
                if let Some((rows, _)) = f.batch {
                    format!("{} (batch {rows})", f.display)
                } else if f.no_transaction {
                    format!("{} (no-transaction)", f.display)
                } else {
                    f.display.clone()
                }
            };
            let rows = found.iter().map(|m| {
                let files = std::iter::once(&m.up)
                    .chain(&m.down)
                    .map(file)
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![
                    package.version(m.version),
                    m.name.clone(),
                    if m.down.is_some() { "yes" } else { "no" }.to_owned(),
                    files,
                ]
            });
            table(&["VERSION", "NAME", "REVERSIBLE", "FILES"], rows)?;
        }
        Format::Json => crate::output::json(&Listing {
            dir: &dir,
            migrations: found.iter().map(Row::of).collect(),
        })?,
    }
    if found.is_empty() {
        say!("no migrations in {dir} yet; create one with `cargo migrate new NAME`");
    } else {
        say!("{} in {dir}", count(found.len(), "migration"));
    }
    Ok(())
}
