//! `up`, `down` and `redo`: the commands that change the database, all
//! through the runtime's `Migrator`.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Report, State};

use super::{Progress, applied_versions, describe_version, migrator, runtime_error};
use crate::cli::{DownArgs, RedoArgs, UpArgs};
use crate::database::{Database, Location, Mode};
use crate::messages::{note, say};
use crate::migrations;
use crate::output::{count, duration};
use crate::package::Package;
use crate::settings::Settings;

/// `up [--to V] [--dry-run]`.
pub fn up(settings: &Settings, args: &UpArgs) -> Result<()> {
    let package = &settings.package;
    let database = settings.database()?;
    let found = migrations::load(package)?;
    let runtime = migrations::to_runtime(&found);
    if let Some(to) = args.to {
        known_target(&runtime, to)?;
    }
    if args.dry_run {
        return dry_run(package, database, &runtime, args);
    }
    let timeout = Duration::from_secs(args.run.lock_timeout);
    let opened = database
        .open(Mode::Create, timeout)?
        .ok_or_else(|| anyhow!("cannot create the database `{}`", database.shown()))?;
    let mut conn = opened.conn;
    if opened.created {
        say!("created the database file {}", database.shown());
    }
    in_memory_note(database);
    let progress = Progress::new(package, database);
    let migrator = migrator(&runtime, package, &args.run).on_event(|e| progress.event(e));
    let before = top(&applied_versions(&migrator.status(&conn)?));
    if let Some(to) = args.to
        && before > to
    {
        bail!(
            "the database is at version {}, above {}: `up` only applies migrations; to roll back, run `cargo migrate down --to {to}`",
            package.version(before),
            package.version(to)
        );
    }
    if runtime.is_empty() {
        say!(
            "nothing to do: there are no migrations in {} (create one with `cargo migrate new NAME`)",
            crate::package::show(&package.migrations_dir())
        );
        return Ok(());
    }
    let result = match args.to {
        Some(to) => migrator.migrate_to(&mut conn, to),
        None => migrator.apply(&mut conn),
    };
    let report = progress.finish(result)?;
    let now = describe_version(package, &runtime, top(&applied_versions(&migrator.status(&conn)?)));
    if report.is_empty() {
        say!("nothing to do: {now}, up to date");
    } else {
        say!(
            "applied {} in {}; {now}",
            count(report.applied().count(), "migration"),
            duration(total(&report))
        );
    }
    Ok(())
}

/// `up --dry-run`: the SQL that would run, on stdout. Opens the database
/// read-only, and not at all when the file does not exist.
fn dry_run(package: &Package, database: &Database, runtime: &[Migration], args: &UpArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.run.lock_timeout);
    let migrator = migrator(runtime, package, &args.run);
    let conn = match database.open(Mode::ReadOnly, timeout)? {
        Some(opened) => opened.conn,
        None => {
            note!(
                "the database file {} does not exist yet: every migration is pending (`cargo migrate up` creates it)",
                database.shown()
            );
            Connection::open_in_memory()?
        }
    };
    let before = top(&applied_versions(&migrator.status(&conn)?));
    let limit = args.to.unwrap_or(u64::MAX);
    if before > limit {
        bail!(
            "the database is at version {}, above {}: `up` only applies migrations; to roll back, run `cargo migrate down --to {limit}`",
            package.version(before),
            package.version(limit)
        );
    }
    let pending: Vec<&Migration> = migrator
        .pending(&conn)
        .map_err(|e| runtime_error(e, database))?
        .into_iter()
        .filter(|m| m.version() <= limit)
        .collect();
    let mut out = std::io::stdout().lock();
    for m in &pending {
        let up = m.up();
        writeln!(out, "-- {} {} ({})", package.version(m.version()), m.name(), up.file())?;
        if up.no_transaction() {
            writeln!(out, "-- runs outside a transaction (-- migrate:no-transaction)")?;
        }
        writeln!(out, "{}\n", up.sql().trim_end())?;
    }
    out.flush()?;
    if pending.is_empty() {
        say!("dry run: nothing to apply, the database is up to date; nothing was changed");
    } else {
        say!(
            "dry run: would apply {}; nothing was changed",
            count(pending.len(), "migration")
        );
    }
    Ok(())
}

/// `down [--to V | --steps N]`.
pub fn down(settings: &Settings, args: &DownArgs) -> Result<()> {
    let package = &settings.package;
    let database = settings.database()?;
    let found = migrations::load(package)?;
    let runtime = migrations::to_runtime(&found);
    let mut conn = open_existing(database, args.run.lock_timeout, "roll back")?;
    let progress = Progress::new(package, database);
    let migrator = migrator(&runtime, package, &args.run).on_event(|e| progress.event(e));
    let applied = applied_versions(&migrator.status(&conn)?);
    let Some(&newest) = applied.last() else {
        say!("nothing to roll back: no migration is applied");
        return Ok(());
    };
    let target = match (args.to, args.steps) {
        (Some(to), _) if to > newest => bail!(
            "the database is at version {}; --to {to} is above it: `down` only rolls back; to apply, run `cargo migrate up --to {to}`",
            package.version(newest)
        ),
        (Some(to), _) => to,
        (None, steps) => {
            let steps = usize::try_from(steps.unwrap_or(1)).unwrap_or(usize::MAX);
            applied.len().checked_sub(steps + 1).map_or(0, |i| applied[i])
        }
    };
    if target == newest {
        say!("nothing to roll back: {}", describe_version(package, &runtime, newest));
        return Ok(());
    }
    let report = progress.finish(migrator.migrate_to(&mut conn, target))?;
    let now = describe_version(package, &runtime, top(&applied_versions(&migrator.status(&conn)?)));
    say!(
        "rolled back {} in {}; {now}",
        count(report.rolled_back().count(), "migration"),
        duration(total(&report))
    );
    Ok(())
}

/// `redo`: rolls back the newest applied migration and applies it again.
///
/// That migration's file may have changed since it was applied (that is
/// what the edit-test loop is for), so its checksum is not held against it;
/// a change to any other applied migration still is.
pub fn redo(settings: &Settings, args: &RedoArgs) -> Result<()> {
    let package = &settings.package;
    let database = settings.database()?;
    let found = migrations::load(package)?;
    let runtime = migrations::to_runtime(&found);
    let mut conn = open_existing(database, args.run.lock_timeout, "redo")?;
    let status = migrator(&runtime, package, &args.run).status(&conn)?;
    let applied = applied_versions(&status);
    let Some(&newest) = applied.last() else {
        bail!("nothing to redo: no migration is applied; apply the migrations with `cargo migrate up`");
    };
    let previous = applied.len().checked_sub(2).map_or(0, |i| applied[i]);
    let newest_modified = status
        .entries
        .iter()
        .any(|e| e.migration.version() == newest && e.state == State::Modified);
    let others_modified = status
        .entries
        .iter()
        .any(|e| e.migration.version() != newest && e.state == State::Modified);
    if newest_modified && !others_modified && !args.run.allow_modified {
        note!(
            "migration {} changed since it was applied; redoing it with the files as they are now",
            package.version(newest)
        );
    }
    let progress = Progress::new(package, database);
    let migrator = migrator(&runtime, package, &args.run)
        .allow_modified(args.run.allow_modified || (newest_modified && !others_modified))
        .on_event(|e| progress.event(e));
    let down = progress.finish(migrator.migrate_to(&mut conn, previous))?;
    let up = progress.finish(migrator.migrate_to(&mut conn, newest))?;
    let now = describe_version(package, &runtime, top(&applied_versions(&migrator.status(&conn)?)));
    say!(
        "redid {}: rolled back in {}, applied in {}; {now}",
        package.version(newest),
        duration(total(&down)),
        duration(total(&up))
    );
    Ok(())
}

/// Opens a database that must exist already (never creates one).
fn open_existing(database: &Database, lock_timeout: u64, doing: &str) -> Result<Connection> {
    let opened = database.open(Mode::ReadWrite, Duration::from_secs(lock_timeout))?;
    let Some(opened) = opened else {
        bail!(
            "the database file {} does not exist, so there is nothing to {doing}; check the path (--database, DATABASE_URL or database in [package.metadata.migrate])",
            database.shown()
        );
    };
    in_memory_note(database);
    Ok(opened.conn)
}

fn in_memory_note(database: &Database) {
    if database.location == Location::Memory {
        note!("sqlite::memory: is an in-memory database: it is gone when this command ends");
    }
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

fn top(versions: &[u64]) -> u64 {
    versions.last().copied().unwrap_or(0)
}

fn total(report: &Report) -> Duration {
    report.steps.iter().map(|s| s.duration).sum()
}
