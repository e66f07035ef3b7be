//! `up`, `down` and `redo`: the commands that change the database, all
//! through the runtime's `Migrator`.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, Report, State};

use super::{Progress, Project, applied_versions, drift, runtime_error};
use crate::cli::{DownArgs, RedoArgs, UpArgs};
use crate::database::Mode;
use crate::messages::{count, note, say};
use crate::output::duration;
use crate::settings::Settings;

/// `up [--to V] [--dry-run]`.
pub fn up(settings: &Settings, args: &UpArgs) -> Result<()> {
    let project = Project::load(settings)?;
    if let Some(to) = args.to {
        known_target(&project.migrations, to)?;
    }
    if project.database.postgres_url().is_some() {
        return super::postgres::up(&project, args);
    }
    if args.dry_run {
        return dry_run(&project, args);
    }
    let timeout = Duration::from_secs(args.run.lock_timeout);
    let opened = project
        .open(Mode::Create, timeout)?
        .ok_or_else(|| anyhow!("cannot create the database `{}`", project.database.shown()))?;
    let mut conn = opened.conn;
    if opened.created {
        say!("created the database file {}", project.database.shown());
    }
    project.in_memory_note();
    let progress = Progress::new(&project);
    let migrator = project
        .migrator(Some(&args.run))
        .contract(args.contract)
        .on_event(|e| progress.event(e));
    let status = project.status(&migrator, &conn)?;
    if let Some(m) = project.applied_template(&status) {
        project.forget_template(&conn, m, &status)?;
    }
    only_up(&project, project.top(&migrator, &conn)?, args.to)?;
    project.refuse_unwritten(pending(&project, &migrator, &conn, args.to)?)?;
    drift::before_running(&project, &migrator, &conn, args.run.allow_drift)?;
    if project.migrations.is_empty() {
        say!(
            "nothing to do: there are no migrations in {} (create one with `cargo migrate new NAME`)",
            crate::package::show(&project.package.migrations_dir())
        );
        return Ok(());
    }
    let result = match args.to {
        Some(to) => migrator.migrate_to(&mut conn, to),
        None => migrator.apply(&mut conn),
    };
    let report = progress.finish(result)?;
    let now = project.describe(project.top(&migrator, &conn)?);
    summary(&report, &now);
    Ok(())
}

/// The last line of `up`: what it applied, or that there was nothing to
/// do; a held contract was announced as it happened ([`Progress`]).
pub(super) fn summary(report: &Report, now: &str) {
    match (report.is_empty(), &report.held) {
        (true, None) => say!("nothing to do: {now}, up to date"),
        (true, Some(_)) => say!("nothing applied: {now}; a contract is held (see above)"),
        (false, _) => say!(
            "applied {} in {}; {now}",
            count(report.applied().count(), "migration"),
            duration(total(report))
        ),
    }
}

/// `up` never rolls back: refuses a `--to` below what the database has applied.
pub(super) fn only_up(project: &Project<'_>, applied: u64, to: Option<u64>) -> Result<()> {
    if let Some(to) = to
        && applied > to
    {
        bail!(
            "the database is at version {}, above {}: `up` only applies migrations; to roll back, run `cargo migrate down --to {to}`",
            project.version(applied),
            project.version(to)
        );
    }
    Ok(())
}

/// `up --dry-run`: the SQL that would run, on stdout. Opens the database
/// read-only, and not at all when the file does not exist.
fn dry_run(project: &Project<'_>, args: &UpArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.run.lock_timeout);
    let migrator = project.migrator(Some(&args.run)).contract(args.contract);
    let conn = match project.open(Mode::ReadOnly, timeout)? {
        Some(opened) => opened.conn,
        None => {
            project.missing_note();
            Connection::open_in_memory()?
        }
    };
    only_up(project, project.top(&migrator, &conn)?, args.to)?;
    // An applied empty template that `up` would apply again (when it is the
    // only change to the history).
    let status = project.status(&migrator, &conn)?;
    let modified = status.entries.iter().filter(|e| e.state == State::Modified).count();
    let template = project.applied_template(&status).filter(|_| modified == 1);
    let mut pending = match template {
        Some(m) => {
            project.template_note(m, "`up` applies it again with the SQL written since");
            let mut pending = pending(project, &migrator.allow_modified(true), &conn, args.to)?;
            pending.insert(0, m);
            pending
        }
        None => pending(project, &migrator, &conn, args.to)?,
    };
    pending.retain(|m| m.version() <= args.to.unwrap_or(u64::MAX));
    project.refuse_unwritten(pending.iter().copied())?;
    let held = dry_run_held(project, &status);
    let mut out = std::io::stdout().lock();
    for m in &pending {
        let up = m.up();
        writeln!(out, "-- {} {} ({})", project.version(m.version()), m.name(), up.file())?;
        if let Some(how) = how_it_runs(up) {
            writeln!(out, "{how}")?;
        }
        writeln!(out, "{}\n", up.sql().trim_end())?;
    }
    out.flush()?;
    if pending.is_empty() && held.is_some() {
        say!("dry run: nothing to apply before the held contract; nothing was changed");
    } else if pending.is_empty() {
        say!("dry run: nothing to apply, the database is up to date; nothing was changed");
    } else {
        say!(
            "dry run: would apply {}; nothing was changed",
            count(pending.len(), "migration")
        );
    }
    Ok(())
}

/// `up --dry-run`: says which contract `up` would hold, if any (none with
/// `--contract`: `status` comes from a migrator that applies them).
pub(super) fn dry_run_held<'m>(project: &Project<'_>, status: &migrate_runtime::Status<'m>) -> Option<&'m Migration> {
    let held = status.entries.iter().find(|e| e.state == State::Held)?.migration;
    note!(
        "would hold {} {}: a contract migration (-- migrate:phase contract), nor apply anything after it; {}",
        project.version(held.version()),
        held.name(),
        migrate_runtime::CONTRACT_HINT
    );
    Some(held)
}

/// What `up` would apply, up to and including `to`, after the runtime's
/// checks of the history.
fn pending<'m>(
    project: &Project<'_>,
    migrator: &Migrator<'m>,
    conn: &Connection,
    to: Option<u64>,
) -> Result<Vec<&'m Migration>> {
    let limit = to.unwrap_or(u64::MAX);
    Ok(migrator
        .pending(conn)
        .map_err(|e| runtime_error(e, project))?
        .into_iter()
        .filter(|m| m.version() <= limit)
        .collect())
}

/// `down [--to V | --steps N]`.
pub fn down(settings: &Settings, args: &DownArgs) -> Result<()> {
    let project = Project::load(settings)?;
    if project.database.postgres_url().is_some() {
        return super::postgres::down(&project, args);
    }
    let mut conn = project.open_existing(Duration::from_secs(args.run.lock_timeout), "roll back")?;
    let progress = Progress::new(&project);
    let migrator = project.migrator(Some(&args.run)).on_event(|e| progress.event(e));
    let status = project.status(&migrator, &conn)?;
    let Some(target) = down_target(&project, &status, args)? else {
        return Ok(());
    };
    drift::before_running(&project, &migrator, &conn, args.run.allow_drift)?;
    let report = progress.finish(migrator.migrate_to(&mut conn, target))?;
    let now = project.describe(project.top(&migrator, &conn)?);
    say!(
        "rolled back {} in {}; {now}",
        count(report.rolled_back().count(), "migration"),
        duration(total(&report))
    );
    Ok(())
}

/// `redo`: rolls back the newest applied migration and applies it again.
///
/// When that migration changed since it was applied (the edit-test loop),
/// its down script is the new one, which may not undo what the old up
/// did: `redo` refuses unless `--allow-modified` says the new down is fine,
/// and then runs the current down, the current up, and records the new
/// checksum. A change to any other applied migration is refused as always.
pub fn redo(settings: &Settings, args: &RedoArgs) -> Result<()> {
    let project = Project::load(settings)?;
    if project.database.postgres_url().is_some() {
        return super::postgres::redo(&project, args);
    }
    let mut conn = project.open_existing(Duration::from_secs(args.run.lock_timeout), "redo")?;
    let status = project.status(&project.migrator(Some(&args.run)), &conn)?;
    let applied = applied_versions(&status);
    let Some(&newest) = applied.last() else {
        bail!("nothing to redo: no migration is applied; apply the migrations with `cargo migrate up`");
    };
    let previous = applied.len().checked_sub(2).map_or(0, |i| applied[i]);
    project.refuse_missing_files(&status, previous)?;
    let entry = status.entries.iter().find(|e| e.migration.version() == newest);
    if let Some(entry) = entry {
        project.refuse_unwritten([entry.migration])?;
    }
    drift::before_running(
        &project,
        &project.migrator(Some(&args.run)),
        &conn,
        args.run.allow_drift,
    )?;
    if let Some(m) = project.applied_template(&status) {
        // What was applied did nothing: nothing to roll back.
        project.forget_template(&conn, m, &status)?;
        let progress = Progress::new(&project);
        // Applies again what was applied, a contract included.
        let migrator = project
            .migrator(Some(&args.run))
            .contract(true)
            .on_event(|e| progress.event(e));
        let up = progress.finish(migrator.migrate_to(&mut conn, newest))?;
        let now = project.describe(project.top(&migrator, &conn)?);
        say!(
            "redid {}: applied in {}; {now}",
            project.version(newest),
            duration(total(&up))
        );
        return Ok(());
    }
    if let Some(entry) = entry.filter(|e| e.state == State::Modified) {
        let m = entry.migration;
        if !args.run.allow_modified {
            bail!(
                "{}: migration {} `{}` changed since it was applied, so `redo` would run its new down script against what its old up script did, which it may not undo; nothing was changed. If the new down does undo the applied version (say, it drops the table both versions create), run `cargo migrate redo --allow-modified`: it runs the current down, then the current up, and records the new checksum. Otherwise put the applied version of the file back (`git stash`), run `cargo migrate down`, bring the edit back and run `cargo migrate up`",
                m.up().file(),
                project.version(newest),
                m.name()
            );
        }
        note!(
            "migration {} changed since it was applied; redoing it with the files as they are now (--allow-modified)",
            project.version(newest)
        );
    }
    let progress = Progress::new(&project);
    // Applies again what was applied, a contract included.
    let migrator = project
        .migrator(Some(&args.run))
        .contract(true)
        .on_event(|e| progress.event(e));
    let down = progress.finish(migrator.migrate_to(&mut conn, previous))?;
    let up = progress.finish(migrator.migrate_to(&mut conn, newest))?;
    let now = project.describe(project.top(&migrator, &conn)?);
    say!(
        "redid {}: rolled back in {}, applied in {}; {now}",
        project.version(newest),
        duration(total(&down)),
        duration(total(&up))
    );
    Ok(())
}

/// The runtime's error for a version no migration has (0 is fine: before every migration).
fn known_target(migrations: &[Migration], target: u64) -> Result<()> {
    if target == 0 || migrations.iter().any(|m| m.version() == target) {
        return Ok(());
    }
    Err(migrate_runtime::Error::UnknownTarget {
        target,
        known: migrations.iter().map(Migration::version).collect(),
    }
    .into())
}

pub(super) fn total(report: &Report) -> Duration {
    report.steps.iter().map(|s| s.duration).sum()
}

/// Where `down` goes from `status`: `--to V`, or `--steps N` (1) applied
/// migrations back; `None`, said, when there is nothing to roll back.
/// Refuses when a migration to roll back has no files on disk. Shared by
/// both backends.
pub(super) fn down_target(
    project: &Project<'_>,
    status: &migrate_runtime::Status<'_>,
    args: &DownArgs,
) -> Result<Option<u64>> {
    let applied = applied_versions(status);
    let Some(&newest) = applied.last() else {
        say!("nothing to roll back: no migration is applied");
        return Ok(None);
    };
    let target = match (args.to, args.steps) {
        (Some(to), _) if to > newest => bail!(
            "the database is at version {}; --to {to} is above it: `down` only rolls back; to apply, run `cargo migrate up --to {to}`",
            project.version(newest)
        ),
        (Some(to), _) => to,
        (None, steps) => {
            let steps = usize::try_from(steps.unwrap_or(1)).unwrap_or(usize::MAX);
            applied.len().checked_sub(steps + 1).map_or(0, |i| applied[i])
        }
    };
    if target == newest {
        say!("nothing to roll back: {}", project.describe(newest));
        return Ok(None);
    }
    project.refuse_missing_files(status, target)?;
    Ok(Some(target))
}

/// The dry run's comment on how a script runs, when not in one
/// transaction: in batches (`-- migrate:batch N`) or outside a
/// transaction (`-- migrate:no-transaction`).
pub(super) fn how_it_runs(script: &migrate_runtime::Script) -> Option<String> {
    match script.batch() {
        Some(rows) => Some(format!(
            "-- runs in batches of {rows} rows, one transaction each, resumable (-- migrate:batch {rows})"
        )),
        None => script
            .no_transaction()
            .then(|| "-- runs outside a transaction (-- migrate:no-transaction)".to_owned()),
    }
}
