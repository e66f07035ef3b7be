//! `status`, `up`, `down` and `redo` on a PostgreSQL database, through the
//! runtime's PostgreSQL backend (`Migrator::apply_postgres` and friends).
//! The same checks and messages as on SQLite, without what only SQLite
//! needs (files to create, journals, in-memory databases).

use std::io::Write as _;

use anyhow::{Result, bail};
use migrate_runtime::postgres::Client;
use migrate_runtime::{Migrator, State, Status};

use super::apply::{down_target, only_up, total};
use super::{Progress, Project, applied_versions, runtime_error};
use crate::cli::{DownArgs, RedoArgs, UpArgs};
use crate::messages::{count, note, say};
use crate::output::duration;

/// Every migration's state in the database. Changes nothing.
pub(super) fn status<'m>(project: &Project<'_>, migrator: &Migrator<'m>) -> Result<Status<'m>> {
    let mut client = project.database.connect()?;
    let status = migrator
        .status_postgres(&mut client)
        .map_err(|e| runtime_error(e, project))?;
    invalid_indexes_note(&status.invalid_indexes);
    Ok(status)
}

fn invalid_indexes_note(indexes: &[String]) {
    if !indexes.is_empty() {
        note!(
            "{} INVALID (a CREATE INDEX CONCURRENTLY failed or was interrupted, or one is being built right now): it takes writes but answers no query; drop it with DROP INDEX CONCURRENTLY and build it again",
            indexes.join(", ")
        );
    }
}

fn top(project: &Project<'_>, migrator: &Migrator<'_>, client: &mut Client) -> Result<u64> {
    let status = migrator
        .status_postgres(client)
        .map_err(|e| runtime_error(e, project))?;
    Ok(applied_versions(&status).last().copied().unwrap_or(0))
}

/// `up [--to V] [--dry-run]`.
pub(super) fn up(project: &Project<'_>, args: &UpArgs) -> Result<()> {
    let mut client = project.database.connect()?;
    let progress = Progress::new(project);
    let migrator = project
        .migrator(Some(&args.run))
        .contract(args.contract)
        .on_event(|e| progress.event(e));
    only_up(project, top(project, &migrator, &mut client)?, args.to)?;
    let limit = args.to.unwrap_or(u64::MAX);
    let pending: Vec<_> = migrator
        .pending_postgres(&mut client)
        .map_err(|e| runtime_error(e, project))?
        .into_iter()
        .filter(|m| m.version() <= limit)
        .collect();
    project.refuse_unwritten(pending.iter().copied())?;
    if args.dry_run {
        let status = migrator
            .status_postgres(&mut client)
            .map_err(|e| runtime_error(e, project))?;
        super::apply::dry_run_held(project, &status);
        let mut out = std::io::stdout().lock();
        for m in &pending {
            let up = m.up();
            writeln!(out, "-- {} {} ({})", project.version(m.version()), m.name(), up.file())?;
            if let Some(how) = super::apply::how_it_runs(up) {
                writeln!(out, "{how}")?;
            }
            writeln!(out, "{}\n", up.sql().trim_end())?;
        }
        out.flush()?;
        say!(
            "dry run: would apply {}; nothing was changed",
            count(pending.len(), "migration")
        );
        return Ok(());
    }
    if project.migrations.is_empty() {
        say!(
            "nothing to do: there are no migrations in {} (create one with `cargo migrate new NAME`)",
            crate::package::show(&project.package.migrations_dir())
        );
        return Ok(());
    }
    let result = match args.to {
        Some(to) => migrator.migrate_to_postgres(&mut client, to),
        None => migrator.apply_postgres(&mut client),
    };
    let report = progress.finish(result)?;
    let now = project.describe(top(project, &migrator, &mut client)?);
    super::apply::summary(&report, &now);
    Ok(())
}

/// `down [--to V | --steps N]`.
pub(super) fn down(project: &Project<'_>, args: &DownArgs) -> Result<()> {
    let mut client = project.database.connect()?;
    let progress = Progress::new(project);
    let migrator = project.migrator(Some(&args.run)).on_event(|e| progress.event(e));
    let status = migrator
        .status_postgres(&mut client)
        .map_err(|e| runtime_error(e, project))?;
    let Some(target) = down_target(project, &status, args)? else {
        return Ok(());
    };
    let report = progress.finish(migrator.migrate_to_postgres(&mut client, target))?;
    let now = project.describe(top(project, &migrator, &mut client)?);
    say!(
        "rolled back {} in {}; {now}",
        count(report.rolled_back().count(), "migration"),
        duration(total(&report))
    );
    Ok(())
}

/// `redo`: rolls back the newest applied migration and applies it again
/// (with `--allow-modified`, the files as they are now).
pub(super) fn redo(project: &Project<'_>, args: &RedoArgs) -> Result<()> {
    let mut client = project.database.connect()?;
    let status = project
        .migrator(Some(&args.run))
        .status_postgres(&mut client)
        .map_err(|e| runtime_error(e, project))?;
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
    if let Some(entry) = entry.filter(|e| e.state == State::Modified) {
        let m = entry.migration;
        if !args.run.allow_modified {
            bail!(
                "{}: migration {} `{}` changed since it was applied, so `redo` would run its new down script against what its old up script did, which it may not undo; nothing was changed. If the new down does undo the applied version, run `cargo migrate redo --allow-modified`; otherwise put the applied version of the file back, run `cargo migrate down`, bring the edit back and run `cargo migrate up`",
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
    let progress = Progress::new(project);
    // Applies again what was applied, a contract included.
    let migrator = project
        .migrator(Some(&args.run))
        .contract(true)
        .on_event(|e| progress.event(e));
    let down = progress.finish(migrator.migrate_to_postgres(&mut client, previous))?;
    let up = progress.finish(migrator.migrate_to_postgres(&mut client, newest))?;
    let now = project.describe(top(project, &migrator, &mut client)?);
    say!(
        "redid {}: rolled back in {}, applied in {}; {now}",
        project.version(newest),
        duration(total(&down)),
        duration(total(&up))
    );
    Ok(())
}
