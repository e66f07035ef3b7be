//! `diff`: is the database what its applied migrations make? With `--sql`,
//! the SQL that would bring it back; with `--emit NAME`, the migration that
//! adopts what was changed by hand, recorded as applied.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_build::scan::Kind;
use migrate_runtime::model::{Change, Difference, Model};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{DriftPolicy, Migration, Migrator, SchemaDiff, State};
use serde::Serialize;

use super::drift::{applied, compare, filter, sorted};
use super::sqlgen::{self, Side};
use super::{Project, new};
use crate::cli::{DiffArgs, Format};
use crate::database::Mode;
use crate::exit;
use crate::messages::{count, note, say, warning};
use crate::package::show;
use crate::settings::Settings;

/// `diff --format json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// The database, as shown to the user.
    database: String,
    /// The newest applied version, or `null`.
    version: Option<u64>,
    /// Whether the schema differs.
    drift: bool,
    /// Grouped by table.
    differences: Vec<Row<'a>>,
}

#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    difference: &'a Difference,
    /// The text line.
    text: String,
}

/// `diff [--format text|json] [--sql | --emit NAME [--allow-drop]]`.
pub fn run(settings: &Settings, args: &DiffArgs) -> Result<ExitCode> {
    let project = Project::load(settings)?;
    if project.database.postgres_url().is_some() {
        return super::pgdrift::diff(&project, args);
    }
    let timeout = Duration::from_secs(args.lock_timeout);
    let Some(opened) = project.open(Mode::ReadOnly, timeout)? else {
        bail!(
            "the database file {} does not exist, so there is nothing to compare; check the path (--database, DATABASE_URL or database in [package.metadata.migrate])",
            project.database.shown()
        );
    };
    let conn = opened.conn;
    let migrator = project.migrator(None);
    let diff = compare(&project, &migrator, &conn)?;
    if let Some(name) = &args.emit {
        return emit(&project, &migrator, conn, &diff, name, args);
    }
    if args.sql {
        return sql(&project, &migrator, &conn, &diff, args.allow_drop);
    }
    print(&project, &diff, args)
}

/// Prints the differences (text or JSON), the likely table renames and the
/// summary; the exit status.
pub(super) fn print(project: &Project<'_>, diff: &SchemaDiff, args: &DiffArgs) -> Result<ExitCode> {
    let lines = sorted(&diff.differences);
    match args.format {
        Format::Text => {
            let mut out = std::io::stdout().lock();
            for d in &lines {
                writeln!(out, "{d}")?;
            }
            out.flush()?;
        }
        Format::Json => crate::output::json(&Report {
            database: project.database.shown(),
            version: diff.version,
            drift: !diff.is_clean(),
            differences: lines
                .iter()
                .map(|d| Row {
                    difference: d,
                    text: d.to_string(),
                })
                .collect(),
        })?,
    }
    for (old, new) in sqlgen::renamed_tables(&diff.expected, &diff.actual, &diff.differences) {
        note!(
            "table {old} removed and table {new} added have the same columns: likely renamed (`--sql` and `--emit` write ALTER TABLE … RENAME TO)"
        );
    }
    summary(project, diff);
    Ok(exit_status(diff))
}

/// Exit status 0 without drift, 1 with.
pub(super) fn exit_status(diff: &SchemaDiff) -> ExitCode {
    if diff.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::DRIFT)
    }
}

/// `up to 0003`, for messages.
pub(super) fn at(project: &Project<'_>, diff: &SchemaDiff) -> String {
    diff.version.map_or_else(
        || "(none applied)".to_owned(),
        |v| format!("(up to {})", project.version(v)),
    )
}

fn summary(project: &Project<'_>, diff: &SchemaDiff) {
    let db = project.database.shown();
    if diff.is_clean() {
        say!(
            "{db}: no drift: its schema is what its applied migrations {} make",
            at(project, diff)
        );
    } else {
        let drops = diff.differences.iter().all(|d| d.change == Change::Removed);
        let adopt = if drops {
            "`cargo migrate diff --emit NAME --allow-drop` (they are drops)"
        } else {
            "`cargo migrate diff --emit NAME`"
        };
        say!(
            "{db}: drift: {} from what its applied migrations {} make; adopt them with {adopt}, or see the SQL that undoes them with `cargo migrate diff --sql`",
            count(diff.differences.len(), "difference"),
            at(project, diff),
        );
    }
}

/// `diff --sql`: the SQL that turns the database back into what its
/// migrations make. Runs nothing.
fn sql(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    conn: &Connection,
    diff: &SchemaDiff,
    allow_drop: bool,
) -> Result<ExitCode> {
    let versions = applied(&project.status(migrator, conn)?);
    let expected_conn = migrator
        .replay_versions_cached(&versions, &mut project.replay_cache())
        .map_err(|e| super::runtime_error(e, project))?;
    let script = sqlgen::transform(
        Side {
            model: &diff.actual,
            conn,
            live: true,
        },
        Side {
            model: &diff.expected,
            conn: &expected_conn,
            live: false,
        },
        allow_drop,
    )?;
    let db = project.database.shown();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "-- SQL that brings {db} back to the schema of its applied migrations {}.",
        at(project, diff)
    )?;
    writeln!(
        out,
        "-- Written by `cargo migrate diff --sql`; nothing was run. Review it, back the database up, then run it:\n\
         -- `sqlite3 -bail {db} < this.sql` (-bail stops at the first error, and the transaction is not committed)."
    )?;
    if script.statements == 0 {
        if !script.sql.is_empty() {
            writeln!(out, "\n{}", script.sql.trim_end())?;
        }
    } else {
        let rebuilds = !script.rebuilt.is_empty();
        if rebuilds {
            writeln!(
                out,
                "-- It rebuilds {}: foreign keys are off while it runs (SQLite's procedure).",
                script.rebuilt.join(", ")
            )?;
            writeln!(out, "PRAGMA foreign_keys = OFF;")?;
        }
        writeln!(out, "BEGIN;\n\n{}\n", script.sql.trim_end())?;
        if rebuilds {
            writeln!(out, "PRAGMA foreign_key_check;")?;
        }
        writeln!(out, "COMMIT;")?;
        if rebuilds {
            writeln!(out, "PRAGMA foreign_keys = ON;")?;
        }
    }
    out.flush()?;
    Ok(undo_printed(&db, diff, &script))
}

/// After `--sql` printed `script`: says what it undoes, and `diff`'s exit
/// status (both backends).
pub(super) fn undo_printed(db: &str, diff: &SchemaDiff, script: &sqlgen::Script) -> ExitCode {
    if diff.is_clean() {
        say!("{db}: no drift: nothing to undo");
    } else {
        say!(
            "{db}: {}; printed {} to undo them (nothing was run){}",
            count(diff.differences.len(), "difference"),
            count(script.statements, "statement"),
            held(script)
        );
    }
    exit_status(diff)
}

/// `; 2 held back (DROP: pass --allow-drop)`.
pub(super) fn held(script: &sqlgen::Script) -> String {
    if script.held.is_empty() {
        String::new()
    } else {
        format!(
            "; {} held back, commented out (it would drop something: pass --allow-drop to write it)",
            count(script.held.len(), "change")
        )
    }
}

/// `--emit`'s checks before anything is written, on every backend: the
/// name (normalized, not taken), something to adopt, nothing pending.
/// `None`: no drift (and it said so).
pub(super) fn emit_name(
    project: &Project<'_>,
    diff: &SchemaDiff,
    raw_name: &str,
    status: &migrate_runtime::Status<'_>,
) -> Result<Option<String>> {
    let package = project.package;
    let db = project.database.shown();
    let name = new::normalize(raw_name, &package.migrations_dir())?;
    if let Some(v) = new::named(package, &name)? {
        bail!(
            "a migration called `{name}` exists already ({} {name}); give --emit another name; nothing was written",
            package.version(v)
        );
    }
    if diff.is_clean() {
        say!(
            "{db}: no drift: its schema is what its applied migrations {} make; no migration written",
            at(project, diff)
        );
        return Ok(None);
    }
    let pending: Vec<String> = status
        .entries
        .iter()
        .filter(|e| e.state == State::Pending)
        .map(|e| format!("{} {}", project.version(e.migration.version()), e.migration.name()))
        .collect();
    if !pending.is_empty() {
        bail!(
            "{db} has {} not applied yet ({}); the migration --emit writes comes after them, so it would be written against a schema they have not made yet. Apply them first (`cargo migrate up --allow-drift`), then run `cargo migrate diff --emit {name}` again; nothing was written",
            count(pending.len(), "migration"),
            pending.join(", ")
        );
    }
    Ok(Some(name))
}

/// `diff --emit NAME`: writes the next migration, which makes the hand
/// changes, verifies it by replay, and records it as applied.
fn emit(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    conn: Connection,
    diff: &SchemaDiff,
    raw_name: &str,
    args: &DiffArgs,
) -> Result<ExitCode> {
    let package = project.package;
    let db = project.database.shown();
    project.in_memory_note();
    let status = project.status(migrator, &conn)?;
    let Some(name) = emit_name(project, diff, raw_name, &status)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let versions = applied(&status);
    let replay = || {
        migrator
            .replay_versions_cached(&versions, &mut project.replay_cache())
            .map_err(|e| super::runtime_error(e, project))
    };
    // up: the migrations' schema → the live one.
    let expected_conn = replay()?;
    let up = sqlgen::transform(
        Side {
            model: &diff.expected,
            conn: &expected_conn,
            live: false,
        },
        Side {
            model: &diff.actual,
            conn: &conn,
            live: true,
        },
        args.allow_drop,
    )?;
    if up.statements == 0 {
        bail!(
            "every difference is a drop ({}), held back; a migration with nothing but comments would change nothing. Pass --allow-drop to write the drops; nothing was written",
            up.held.join("; ")
        );
    }
    let filter = filter(package)?;
    // Verify by replay: applied migrations + up = the live schema (but
    // what is held back); + down = the migrations' schema again.
    let scratch = replay()?;
    scratch
        .execute_batch(&up.sql)
        .map_err(|e| anyhow!("the migration --emit would write fails on a replay of the applied migrations: {e}; nothing was written. This is a bug of cargo migrate: please report it with the output of `cargo migrate diff`"))?;
    let after_up = Model::read(&scratch, &filter)?;
    let left: Vec<String> = after_up
        .diff(&diff.actual)
        .iter()
        .map(ToString::to_string)
        .filter(|d| !up.held.contains(d))
        .collect();
    if !left.is_empty() {
        bail!(
            "the migration --emit would write does not make the schema of {db} exactly (the replay still differs: {}); nothing was written. Write this migration by hand (`cargo migrate diff --sql` shows the way back)",
            left.join("; ")
        );
    }
    let down = sqlgen::transform(
        Side {
            model: &after_up,
            conn: &scratch,
            live: false,
        },
        Side {
            model: &diff.expected,
            conn: &expected_conn,
            live: false,
        },
        true,
    )?;
    scratch
        .execute_batch(&down.sql)
        .map_err(|e| anyhow!("the down script --emit would write fails on a replay: {e}; nothing was written"))?;
    let after_down = Model::read(&scratch, &filter)?;
    let undone = diff.expected.diff(&after_down);
    if !undone.is_empty() {
        bail!(
            "the down script --emit would write does not restore the migrations' schema ({}); nothing was written",
            undone.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        );
    }
    drop(scratch);

    write_and_record(
        project,
        &name,
        diff,
        &up,
        &down.sql,
        || super::schema::write_snapshot(package).map(drop),
        |version| check_and_record(project, migrator, conn, diff, version, &filter, args),
    )
}

/// `--emit`'s last part, on every backend: writes the migration pair (through
/// `new`), refreshes the snapshot when the package has one (`snapshot`),
/// and records the migration (`record`, given its version); on an error,
/// removes the files and restores the snapshot. Prints the paths and what
/// was done.
pub(super) fn write_and_record(
    project: &Project<'_>,
    name: &str,
    diff: &SchemaDiff,
    up: &sqlgen::Script,
    down_sql: &str,
    snapshot: impl FnOnce() -> Result<()>,
    record: impl FnOnce(u64) -> Result<()>,
) -> Result<ExitCode> {
    let package = project.package;
    let db = project.database.shown();
    let header_up = |version: &str| {
        format!(
            "-- Migration {version} {name}: adopts the changes made by hand to {db}\n\
             -- (written by `cargo migrate diff --emit`, and recorded as applied there,\n\
             -- since that database has them already).\n\n"
        )
    };
    let (version, paths) = new::create(package, name, &[Kind::Up, Kind::Down], |v, kind| match kind {
        Kind::Down => format!("-- Undoes migration {v} {name} (written by `cargo migrate diff --emit`).\n\n{down_sql}"),
        _ => format!("{}{}", header_up(v), up.sql),
    })?;
    let remove = || {
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
    };
    // The schema snapshot, when the package has one, follows the new
    // migration (the build's check compares it).
    let saved =
        migrate_build::snapshot_path(&package.dir, &package.config).map(|path| (std::fs::read(&path).ok(), path));
    let recorded = match &saved {
        Some(_) => snapshot(),
        None => Ok(()),
    }
    .and_then(|()| record(version));
    if let Err(e) = recorded {
        remove();
        if let Some((old, path)) = &saved {
            let _ = match old {
                Some(text) => std::fs::write(path, text),
                None => std::fs::remove_file(path),
            };
        }
        return Err(e.context("nothing was written or recorded"));
    }
    let mut out = std::io::stdout().lock();
    for path in &paths {
        writeln!(out, "{}", show(path))?;
    }
    if let Some((_, path)) = &saved {
        writeln!(out, "{}", show(path))?;
    }
    out.flush()?;
    for h in &up.held {
        warning!("held back (see the up file; pass --allow-drop to write it): {h}");
    }
    say!(
        "wrote migration {} {name} ({}) and recorded it as applied in {db}, which has those changes already; other databases get them when they apply it{}",
        package.version(version),
        count(diff.differences.len(), "difference"),
        if up.held.is_empty() {
            String::new()
        } else {
            format!(
                "; `cargo migrate diff` still reports the {} held back",
                count(up.held.len(), "drop")
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The build's own check of the directory with the new files, then the
/// tracking row, once the database is seen to be still what was compared.
///
/// The row is written by the runtime's `Migrator::record_applied`, in its
/// transaction and under its lock, without running the migration: its SQL
/// must not run on this database (it has the changes, and a rebuild or a
/// DROP would touch its data). Its schema check is off: `emit` compared
/// the database with the replay itself, allowing for held-back drops.
/// The migration `--emit` wrote (version `version`), as `cargo migrate
/// check` reads it: refused when the whole set does not pass the check.
pub(super) fn emitted(project: &Project<'_>, version: u64) -> Result<migrate_runtime::Migration> {
    let package = project.package;
    let checked = migrate_build::check(&package.dir, &package.config).map_err(|e| {
        let problems: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
        anyhow!(
            "the migration --emit wrote does not pass `cargo migrate check`: {}",
            problems.join("; ")
        )
    })?;
    let found = checked
        .migrations
        .iter()
        .find(|f| f.version == version)
        .context("the new migration is not among the migrations `cargo migrate check` read")?;
    Ok(found.to_migration())
}

fn check_and_record(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    conn: Connection,
    diff: &SchemaDiff,
    version: u64,
    filter: &migrate_runtime::model::Filter,
    args: &DiffArgs,
) -> Result<()> {
    let package = project.package;
    let written = emitted(project, version)?;
    drop(conn);
    let mut conn = project
        .open(Mode::ReadWrite, Duration::from_secs(args.lock_timeout))?
        .with_context(|| format!("the database file {} is gone", project.database.shown()))?
        .conn;
    let now = Model::read(&conn, filter)?;
    if now != diff.actual {
        bail!(
            "the database {} changed while the migration was being written; run `cargo migrate diff` again",
            project.database.shown()
        );
    }
    let mut all: Vec<Migration> = migrator.migrations().to_vec();
    all.push(written);
    Migrator::new(&all)
        .table(&package.config.table)
        .drift(DriftPolicy::Off)
        .lock_timeout(Duration::from_secs(args.lock_timeout))
        .record_applied(&mut conn, &[version])
        .map_err(|e| super::runtime_error(e, project))?;
    Ok(())
}
