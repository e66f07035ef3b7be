//! `import --database URL`: takes a database's history over from the
//! other tool's tracking table: maps what it applied to our versions,
//! checks that the schema is what those migrations make, and records them
//! in our tracking table in one transaction (the runtime's
//! `Migrator::record_applied`), running nothing. The old table stays.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::{Error, Migrator, Previous};

use crate::cli::ImportArgs;
use crate::commands::{Project, applied_versions, runtime_error};
use crate::database::{Database, Mode};
use crate::messages::{count, say};
use crate::migrations;
use crate::settings::Settings;
use migrate_build::imported::Imported as Mapping;

/// Takes over `database`'s history from `tool`.
pub(super) fn take_over(
    settings: &Settings,
    args: &ImportArgs,
    tool: Previous,
    mapping: &Mapping,
    database: &Database,
) -> Result<()> {
    let package = &settings.package;
    let db = database.shown();
    let timeout = Duration::from_secs(args.lock_timeout);
    let Some(opened) = database.open(Mode::ReadWrite, timeout)? else {
        bail!(
            "the database file {db} does not exist, so there is no history to take over; check the path given to --database"
        );
    };
    let mut conn = opened.conn;
    let found = migrations::load(package)?;
    let project = Project {
        package,
        database,
        migrations: migrations::to_runtime(&found),
    };
    let mut ignore = package.config.ignore.clone();
    ignore.extend(tool.table().map(str::to_owned));
    let migrator = Migrator::new(&project.migrations)
        .table(&package.config.table)
        .ignore(&ignore)
        .lock_timeout(timeout);
    let old = tool.table().unwrap_or("PRAGMA user_version");
    let applied = tool
        .applied(&conn, &mapping.pairs())
        .map_err(|e| anyhow!("{db}: {e}; nothing was recorded"))?
        .ok_or_else(|| {
            anyhow!(
                "{db} has no history of {} ({} is missing or empty), so there is nothing to take over: is --from right? For a database made without any tool, use `cargo migrate baseline --version N`; nothing was recorded",
                tool.name(),
                old
            )
        })?;
    let ours = applied_versions(&project.status(&migrator, &conn)?);
    if !ours.is_empty() {
        if ours == applied {
            say!(
                "{db}: already taken over: `{}` records the {} that {} had applied; nothing to do",
                package.config.table,
                count(ours.len(), "migration"),
                tool.name()
            );
            return Ok(());
        }
        bail!(
            "{db} already has migrations recorded in `{}` (up to {}), which is not what {} applied (up to {}); it was migrated by this tool since: nothing was recorded. Check `cargo migrate status`",
            package.config.table,
            ours.last().map_or_else(String::new, |v| package.version(*v)),
            tool.name(),
            applied.last().map_or_else(String::new, |v| package.version(*v)),
        );
    }
    match migrator.record_applied(&mut conn, &applied) {
        Ok(recorded) => {
            let last = recorded.last().copied().unwrap_or(0);
            let pending = project.migrations.iter().filter(|m| m.version() > last).count();
            say!(
                "{db}: took over {}'s history: recorded {} as applied in `{}` ({}), without running them; its schema is what they make. {old} is left as it was",
                tool.name(),
                count(recorded.len(), "migration"),
                package.config.table,
                crate::commands::baseline::span(package, recorded.first().copied().unwrap_or(0), last),
            );
            if pending > 0 {
                say!(
                    "{} pending: `cargo migrate up --database {}` (or the app) applies {}",
                    count(pending, "migration"),
                    db,
                    if pending == 1 { "it" } else { "them" }
                );
            }
            Ok(())
        }
        Err(Error::Drift { differences, version }) => {
            for d in &differences {
                say!("  {d}");
            }
            Err(anyhow!(
                "{db}: its schema is not what {}, though {} says they are applied: {} (listed above); nothing was recorded. Make the schema match (or fix the imported migrations), then import again",
                crate::commands::baseline::migrations_make(package, 1, version.unwrap_or(1)),
                tool.name(),
                count(differences.len(), "difference")
            ))
        }
        Err(e) => Err(runtime_error(e, &project)),
    }
}
