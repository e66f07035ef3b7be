//! `baseline --version N [--force]`: a database made without migrations
//! (by hand, or by a tool with no history) is checked against the replay
//! of migrations 1..N, and they are recorded as applied, running nothing
//! (the runtime's `Migrator::record_applied`; on PostgreSQL
//! `record_applied_postgres`, which replays them in a scratch database).

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::{DriftPolicy, Error, Event};

use super::import::Target;
use super::{Project, runtime_error};
use crate::cli::BaselineArgs;
use crate::messages::{count, say, warning};
use crate::settings::Settings;

/// `baseline`.
pub fn run(settings: &Settings, args: &BaselineArgs) -> Result<()> {
    let project = Project::load(settings)?;
    let db = project.database.shown();
    let package = project.package;
    let timeout = Duration::from_secs(args.lock_timeout);
    let mut target = Target::open(&project, timeout)?;
    let versions: Vec<u64> = project
        .migrations
        .iter()
        .map(migrate_runtime::Migration::version)
        .filter(|&v| v <= args.version)
        .collect();
    if !project.migrations.iter().any(|m| m.version() == args.version) {
        return Err(runtime_error(
            Error::UnknownTarget {
                target: args.version,
                known: project
                    .migrations
                    .iter()
                    .map(migrate_runtime::Migration::version)
                    .collect(),
            },
            &project,
        ));
    }
    let drifted = std::cell::Cell::new(false);
    let migrator = project
        .migrator(None)
        .ignore(&package.config.ignore)
        .lock_timeout(timeout)
        .drift(if args.force {
            DriftPolicy::Warn
        } else {
            DriftPolicy::Error
        })
        .on_event(|e| {
            if let Event::Drift { differences } = e {
                drifted.set(true);
                for d in *differences {
                    warning!("{d}");
                }
            }
        });
    let status = target.status(&project, &migrator)?;
    if let Some(top) = super::applied_versions(&status).last() {
        bail!(
            "{db} already has migrations recorded in `{}` (up to {}): baseline is for a database that no migration was recorded in; see `cargo migrate status`; nothing was recorded",
            package.config.table,
            package.version(*top)
        );
    }
    match target.record(&migrator, &versions) {
        Ok(recorded) => {
            let forced = drifted.get();
            say!(
                "{db}: recorded {} as applied ({}), without running them; {}",
                count(recorded.len(), "migration"),
                span(package, recorded.first().copied().unwrap_or(0), args.version),
                if forced {
                    "its schema differs from what they make (the warnings above): --force recorded them anyway, and the history says so (duration_ms = -2)"
                } else {
                    "its schema is exactly what they make"
                }
            );
            Ok(())
        }
        Err(Error::Drift { differences, .. }) => {
            for d in &differences {
                say!("  {d}");
            }
            Err(anyhow!(
                "{db}: its schema is not what {}: {} (listed above); nothing was recorded. Make the schema match, pick the --version it matches, or pass --force to record anyway",
                migrations_make(package, versions.first().copied().unwrap_or(1), args.version),
                count(differences.len(), "difference")
            ))
        }
        Err(e) => Err(target.error(e, &project)),
    }
}

/// `0001 to 0003`, or `0001` for one version.
pub(super) fn span(package: &crate::package::Package, first: u64, last: u64) -> String {
    if first == last {
        package.version(first)
    } else {
        format!("{} to {}", package.version(first), package.version(last))
    }
}

/// `migrations 0001 to 0003 make`, or `migration 0001 makes`.
pub(super) fn migrations_make(package: &crate::package::Package, first: u64, last: u64) -> String {
    if first == last {
        format!("migration {} makes", package.version(first))
    } else {
        format!("migrations {} make", span(package, first, last))
    }
}
