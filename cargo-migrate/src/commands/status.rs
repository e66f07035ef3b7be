//! `status`: which migrations a database has applied. Opens the database
//! read-only, and not at all when its file does not exist.

use std::io::Write as _;

use std::process::ExitCode;

use anyhow::Result;
use migrate_runtime::{DEFAULT_LOCK_TIMEOUT, Migrator, State};

use crate::cli::{Format, StatusArgs};
use crate::database::Mode;
use crate::exit;
use crate::messages::{note, say};
use crate::migrations;
use crate::output::{columns, json, json_opt};
use crate::settings::Settings;

/// One line of the status: a migration on disk, in the database, or both.
struct Row {
    version: u64,
    name: String,
    state: &'static str,
    applied_at: Option<String>,
    file: Option<String>,
    checksum: Option<String>,
    note: String,
}

/// `status [--format text|json] [--exit-code]`.
///
/// With `--exit-code`, a database that is not up to date exits with
/// [`exit::NOT_UP_TO_DATE`] (a result, not an error: no `error:` line).
pub fn run(settings: &Settings, args: &StatusArgs) -> Result<ExitCode> {
    let package = &settings.package;
    let database = settings.database()?;
    let found = migrations::load(package)?;
    let runtime = migrations::to_runtime(&found);
    let migrator = Migrator::new(&runtime).table(&package.config.table);
    let opened = database.open(Mode::ReadOnly, DEFAULT_LOCK_TIMEOUT)?;
    let mut rows = Vec::new();
    match &opened {
        Some(opened) => {
            let status = migrator.status(&opened.conn)?;
            for e in &status.entries {
                let m = e.migration;
                let note = match (&e.state, &e.applied) {
                    (State::Modified, Some(a)) if a.name != m.name() => {
                        format!("applied as `{}`: the migration was renamed", a.name)
                    }
                    (State::Modified, Some(_)) => "the file changed since it was applied".to_owned(),
                    _ => String::new(),
                };
                rows.push(Row {
                    version: m.version(),
                    name: m.name().to_owned(),
                    state: match e.state {
                        State::Applied => "applied",
                        State::Pending => "pending",
                        State::Modified => "modified",
                    },
                    applied_at: e.applied.as_ref().map(|a| a.applied_at.clone()),
                    file: Some(m.up().file().to_owned()),
                    checksum: Some(m.checksum().to_string()),
                    note,
                });
            }
            for a in &status.unknown {
                rows.push(Row {
                    version: a.version,
                    name: a.name.clone(),
                    state: "unknown",
                    applied_at: Some(a.applied_at.clone()),
                    file: None,
                    checksum: Some(a.checksum.clone()),
                    note: "applied, but not on disk".to_owned(),
                });
            }
            rows.sort_by_key(|r| r.version);
        }
        None => {
            note!(
                "the database file {} does not exist yet: every migration is pending (`cargo migrate up` creates it)",
                database.shown()
            );
            rows.extend(runtime.iter().map(|m| Row {
                version: m.version(),
                name: m.name().to_owned(),
                state: "pending",
                applied_at: None,
                file: Some(m.up().file().to_owned()),
                checksum: Some(m.checksum().to_string()),
                note: String::new(),
            }));
        }
    }
    let tally = |state: &str| rows.iter().filter(|r| r.state == state).count();
    let (applied, pending, modified, unknown) =
        (tally("applied"), tally("pending"), tally("modified"), tally("unknown"));
    let up_to_date = pending + modified + unknown == 0;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            if !rows.is_empty() {
                let mut table = vec![vec![
                    "VERSION".to_owned(),
                    "NAME".to_owned(),
                    "STATE".to_owned(),
                    "APPLIED AT".to_owned(),
                    "NOTE".to_owned(),
                ]];
                table.extend(rows.iter().map(|r| {
                    vec![
                        package.version(r.version),
                        r.name.clone(),
                        r.state.to_owned(),
                        r.applied_at.clone().unwrap_or_default(),
                        r.note.clone(),
                    ]
                }));
                write!(out, "{}", columns(&table))?;
            }
        }
        Format::Json => {
            let items: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{{\"version\":{},\"name\":{},\"state\":{},\"applied_at\":{},\"file\":{},\"checksum\":{}}}",
                        r.version,
                        json(&r.name),
                        json(r.state),
                        json_opt(r.applied_at.as_deref()),
                        json_opt(r.file.as_deref()),
                        json_opt(r.checksum.as_deref()),
                    )
                })
                .collect();
            writeln!(
                out,
                "{{\"database\":{},\"exists\":{},\"up_to_date\":{up_to_date},\"applied\":{applied},\"pending\":{pending},\"modified\":{modified},\"unknown\":{unknown},\"migrations\":[{}]}}",
                json(&database.shown()),
                opened.is_some(),
                items.join(",")
            )?;
        }
    }
    out.flush()?;
    let mut parts = vec![format!("{applied} applied"), format!("{pending} pending")];
    if modified > 0 {
        parts.push(format!("{modified} modified"));
    }
    if unknown > 0 {
        parts.push(format!("{unknown} unknown"));
    }
    let summary = parts.join(", ");
    if up_to_date {
        say!("{}: up to date ({summary})", database.shown());
        return Ok(ExitCode::SUCCESS);
    }
    say!("{}: {summary}", database.shown());
    if !args.exit_code {
        return Ok(ExitCode::SUCCESS);
    }
    let hint = if modified + unknown == 0 {
        "apply them with `cargo migrate up`"
    } else {
        "see the NOTE column: restore changed files, or run the build that knows the unknown migrations"
    };
    say!("not up to date (exit status {}); {hint}", exit::NOT_UP_TO_DATE);
    Ok(exit::not_up_to_date())
}
