//! `list`: the migrations on disk.

use std::io::Write as _;

use anyhow::Result;
use migrate_build::scan::SqlFile;

use crate::cli::{Format, ListArgs};
use crate::messages::say;
use crate::migrations;
use crate::output::{columns, count, json, json_opt};
use crate::settings::Settings;

/// `list [--format text|json]`.
pub fn run(settings: &Settings, args: &ListArgs) -> Result<()> {
    let package = &settings.package;
    let found = migrations::load(package)?;
    let dir = crate::package::show(&package.migrations_dir());
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            if !found.is_empty() {
                let file = |f: &SqlFile| {
                    if f.no_transaction {
                        format!("{} (no-transaction)", f.display)
                    } else {
                        f.display.clone()
                    }
                };
                let mut table = vec![vec![
                    "VERSION".to_owned(),
                    "NAME".to_owned(),
                    "REVERSIBLE".to_owned(),
                    "FILES".to_owned(),
                ]];
                table.extend(found.iter().map(|m| {
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
                }));
                write!(out, "{}", columns(&table))?;
            }
        }
        Format::Json => {
            let items: Vec<String> = found
                .iter()
                .map(|m| {
                    format!(
                        "{{\"version\":{},\"name\":{},\"up\":{},\"down\":{},\"reversible\":{},\"up_no_transaction\":{},\"down_no_transaction\":{},\"checksum\":{}}}",
                        m.version,
                        json(&m.name),
                        json(&m.up.display),
                        json_opt(m.down.as_ref().map(|d| d.display.as_str())),
                        m.down.is_some(),
                        m.up.no_transaction,
                        m.down.as_ref().is_some_and(|d| d.no_transaction),
                        json(&m.checksum().to_string()),
                    )
                })
                .collect();
            writeln!(out, "{{\"dir\":{},\"migrations\":[{}]}}", json(&dir), items.join(","))?;
        }
    }
    out.flush()?;
    if found.is_empty() {
        say!("no migrations in {dir} yet; create one with `cargo migrate new NAME`");
    } else {
        say!("{} in {dir}", count(found.len(), "migration"));
    }
    Ok(())
}
