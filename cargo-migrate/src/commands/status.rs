//! `status`: which migrations a database has applied. Opens the database
//! read-only, and not at all when its file does not exist.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use migrate_runtime::{Checksum, Migration, Migrator, State};
use serde::Serialize;

use super::Project;
use crate::cli::{Format, StatusArgs};
use crate::database::Mode;
use crate::exit;
use crate::messages::{Problems, note, say, warning};
use crate::output::table;
use crate::settings::Settings;

/// Where a migration stands: the runtime's [`State`], and `unknown` for a
/// migration the database applied that is not on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum RowState {
    /// Applied, and the files are the ones that were applied.
    Applied,
    /// Not applied yet.
    Pending,
    /// Not applied yet: a contract migration, which `up` holds until `up
    /// --contract`.
    Held,
    /// Applied, but renamed or changed since.
    Modified,
    /// Applied, and not on disk.
    Unknown,
}

impl RowState {
    fn word(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Modified => "modified",
            Self::Unknown => "unknown",
        }
    }
}

/// Why a migration is modified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Change {
    /// Its name differs from the name it was applied with.
    Renamed,
    /// Its up file's checksum differs from the one recorded.
    Changed,
}

/// One line of the status: a migration on disk, in the database, or both.
#[derive(Debug, Serialize)]
struct Row {
    version: u64,
    /// The name on disk (for an unknown migration: the name it was applied with).
    name: String,
    state: RowState,
    /// For a modified migration: renamed, changed, or both; else empty.
    why: Vec<Change>,
    /// When it was applied (UTC, RFC 3339), or `null`.
    applied_at: Option<String>,
    /// The name it was applied with, or `null` when not applied.
    applied_name: Option<String>,
    /// The up file, or `null` for an unknown migration.
    file: Option<String>,
    /// SHA-256 of the up file on disk, or `null` for an unknown migration.
    checksum: Option<String>,
    /// The checksum recorded when it was applied, or `null` when not applied.
    applied_checksum: Option<String>,
    /// `"recorded"`: recorded as applied without running (`import
    /// --database`, `baseline`, `adopt`, `diff --emit`); `"forced"`: so,
    /// over a schema that differed (`baseline --force`); else `null`.
    recorded: Option<&'static str>,
    /// `-- migrate:phase`: `"expand"` or `"contract"`; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'static str>,
    /// For a contract: the version of the expand it completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    contract_of: Option<u64>,
}

impl Row {
    fn pending(m: &Migration) -> Self {
        Self {
            version: m.version(),
            name: m.name().to_owned(),
            state: if m.is_contract() {
                RowState::Held
            } else {
                RowState::Pending
            },
            why: Vec::new(),
            applied_at: None,
            applied_name: None,
            file: Some(m.up().file().to_owned()),
            checksum: Some(m.checksum().to_string()),
            applied_checksum: None,
            recorded: None,
            phase: m.phase().map(migrate_runtime::Phase::as_str),
            contract_of: m.contract_of(),
        }
    }

    /// The text's NOTE column (`version` shows a version as the files do).
    fn note(&self, version: impl Fn(u64) -> String) -> String {
        if self.state == RowState::Held {
            let of = self
                .contract_of
                .map(|v| format!(" of {}", version(v)))
                .unwrap_or_default();
            return format!("contract{of}: run `cargo migrate up --contract` once every instance runs the new code");
        }
        let renamed = || {
            format!(
                "applied as `{}`: the migration was renamed",
                self.applied_name.as_deref().unwrap_or("")
            )
        };
        match self.why.as_slice() {
            [Change::Renamed] => renamed(),
            [Change::Changed] => "the file changed since it was applied".to_owned(),
            [_, _] => format!("{}, and its file changed", renamed()),
            _ if self.state == RowState::Unknown => "applied, but not on disk".to_owned(),
            _ if self.recorded == Some("forced") => {
                "recorded without running, over a different schema (baseline --force)".to_owned()
            }
            _ if self.recorded.is_some() => {
                "recorded without running (import, baseline, adopt or diff --emit)".to_owned()
            }
            _ => String::new(),
        }
    }
}

/// `status --format json`: one object on one line.
#[derive(Debug, Serialize)]
struct Report {
    /// The database, as shown to the user.
    database: String,
    /// Whether its file exists (`false`: every migration is pending).
    exists: bool,
    /// Nothing pending, held, modified or unknown.
    up_to_date: bool,
    applied: usize,
    pending: usize,
    /// Contract migrations not applied, which `up` holds (rows in state
    /// `held`); absent when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    held: usize,
    modified: usize,
    unknown: usize,
    /// By version.
    migrations: Vec<Row>,
    /// How the schema differs from what the applied migrations make (see
    /// `cargo migrate diff`), one line each; `null` when it cannot be
    /// compared (no database, nothing applied, a modified or unknown
    /// migration).
    drift: Option<Vec<String>>,
}

/// Whether `n` is 0 (serde's `skip_serializing_if`).
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// How a row was recorded without running, if it was.
fn recorded(a: &migrate_runtime::Applied) -> Option<&'static str> {
    match a.duration_ms {
        migrate_runtime::Applied::FORCED => Some("forced"),
        migrate_runtime::Applied::RECORDED => Some("recorded"),
        _ => None,
    }
}

/// `status [--format text|json] [--exit-code]`.
///
/// With `--exit-code`, a database that is not up to date exits with
/// [`exit::NOT_UP_TO_DATE`] (a result, not an error: no `error:` line).
pub fn run(settings: &Settings, args: &StatusArgs) -> Result<ExitCode> {
    let project = match Project::load(settings) {
        Ok(project) => project,
        Err(e) if e.is::<Problems>() => {
            // The files cannot be compared, but what the database applied
            // is still worth seeing (the problems follow, from `main`).
            if args.format == Format::Text {
                history_only(settings, Duration::from_secs(args.lock_timeout))?;
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let (package, database) = (project.package, project.database);
    let migrator = project.migrator(None);
    let mut drift = None;
    let status = if database.postgres_url().is_some() {
        let status = super::postgres::status(&project, &migrator)?;
        drift = super::pgdrift::quiet_drift(&project);
        Some(status)
    } else {
        match project.open(Mode::ReadOnly, Duration::from_secs(args.lock_timeout))? {
            Some(opened) => {
                // The replay of what is applied, when the history can be replayed.
                if let Ok(filter) = super::drift::filter(package)
                    && let Ok(diff) = migrator.schema_diff_cached(&opened.conn, &filter, &mut project.replay_cache())
                {
                    drift = Some(
                        super::drift::sorted(&diff.differences)
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>(),
                    );
                }
                Some(project.status(&migrator, &opened.conn)?)
            }
            None => None,
        }
    };
    let exists = status.is_some();
    let mut rows = Vec::new();
    match &status {
        Some(status) => {
            for e in &status.entries {
                let m = e.migration;
                let mut row = Row::pending(m);
                if let Some(a) = &e.applied {
                    row.state = match e.state {
                        State::Modified => RowState::Modified,
                        _ => RowState::Applied,
                    };
                    if row.state == RowState::Modified {
                        if a.name != m.name() {
                            row.why.push(Change::Renamed);
                        }
                        if Checksum::parse(&a.checksum) != Some(m.checksum()) {
                            row.why.push(Change::Changed);
                        }
                    }
                    row.applied_at = Some(a.applied_at.clone());
                    row.applied_name = Some(a.name.clone());
                    row.applied_checksum = Some(a.checksum.clone());
                    row.recorded = recorded(a);
                }
                rows.push(row);
            }
            for a in &status.unknown {
                rows.push(Row {
                    version: a.version,
                    name: a.name.clone(),
                    state: RowState::Unknown,
                    why: Vec::new(),
                    applied_at: Some(a.applied_at.clone()),
                    applied_name: Some(a.name.clone()),
                    file: None,
                    checksum: None,
                    applied_checksum: Some(a.checksum.clone()),
                    recorded: recorded(a),
                    phase: None,
                    contract_of: None,
                });
            }
            rows.sort_by_key(|r| r.version);
        }
        None => {
            project.missing_note();
            rows.extend(project.migrations.iter().map(Row::pending));
        }
    }
    let tally = |state: RowState| rows.iter().filter(|r| r.state == state).count();
    let (applied, pending, held, modified, unknown) = (
        tally(RowState::Applied),
        tally(RowState::Pending),
        tally(RowState::Held),
        tally(RowState::Modified),
        tally(RowState::Unknown),
    );
    let up_to_date = pending + held + modified + unknown == 0;
    match args.format {
        Format::Text => {
            let lines = rows.iter().map(|r| {
                vec![
                    package.version(r.version),
                    r.name.clone(),
                    r.state.word().to_owned(),
                    r.applied_at.clone().unwrap_or_default(),
                    r.note(|v| package.version(v)),
                ]
            });
            table(&["VERSION", "NAME", "STATE", "APPLIED AT", "NOTE"], lines)?;
        }
        Format::Json => crate::output::json(&Report {
            database: database.shown(),
            exists,
            up_to_date,
            applied,
            pending,
            held,
            modified,
            unknown,
            migrations: rows,
            drift: drift.clone(),
        })?,
    }
    let drifted = drift.as_ref().is_some_and(|d| !d.is_empty());
    if drifted && args.format == Format::Text {
        for d in drift.iter().flatten() {
            warning!("drift: {d}");
        }
    }
    let mut parts = vec![format!("{applied} applied"), format!("{pending} pending")];
    if held > 0 {
        parts.push(format!("{held} held (contract)"));
    }
    if modified > 0 {
        parts.push(format!("{modified} modified"));
    }
    if unknown > 0 {
        parts.push(format!("{unknown} unknown"));
    }
    if let Some(d) = drift.as_ref().filter(|d| !d.is_empty()) {
        parts.push(format!(
            "drift: {} (see `cargo migrate diff`)",
            crate::messages::count(d.len(), "difference")
        ));
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
    let hint = if modified + unknown == 0 && held > 0 {
        "apply them with `cargo migrate up`, and the held contracts with `cargo migrate up --contract`"
    } else if modified + unknown == 0 {
        "apply them with `cargo migrate up`"
    } else {
        "see the NOTE column: restore changed files, or run the build that knows the unknown migrations"
    };
    say!("not up to date (exit status {}); {hint}", exit::NOT_UP_TO_DATE);
    Ok(exit::not_up_to_date())
}

/// The database's tracking table alone, for when the migrations directory
/// has problems and cannot be compared with it.
fn history_only(settings: &Settings, lock_timeout: Duration) -> Result<()> {
    let database = settings.database()?;
    // With no migrations, every applied one is "unknown": the whole history.
    let migrator = Migrator::new(&[]).table(&settings.package.config.table);
    let history = if database.postgres_url().is_some() {
        migrator.status_postgres(&mut database.connect()?)?.unknown
    } else {
        let Some(opened) = database.open(Mode::ReadOnly, lock_timeout)? else {
            note!("the database file {} does not exist yet", database.shown());
            return Ok(());
        };
        migrator.status(&opened.conn)?.unknown
    };
    let lines = history.iter().map(|a| {
        vec![
            settings.package.version(a.version),
            a.name.clone(),
            RowState::Applied.word().to_owned(),
            a.applied_at.clone(),
        ]
    });
    table(&["VERSION", "NAME", "STATE", "APPLIED AT"], lines)?;
    say!(
        "{}: {} applied, by its tracking table; not compared with the files, whose problems follow",
        database.shown(),
        history.len()
    );
    Ok(())
}
