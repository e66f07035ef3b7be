//! Drift, shared by `diff`, `status`, `up`, `down` and `redo`: the
//! database's schema against the replay of exactly the migrations its
//! tracking table records (the runtime's `Migrator::schema_diff`), with
//! the errors in the command line's words. The replay starts from the
//! longest prefix that `cargo migrate check`'s replay cache holds and
//! that a replay from nothing would make too ([`Project::replay_cache`]).

use anyhow::{Result, anyhow};
use migrate_runtime::model::{Difference, Filter};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migrator, SchemaDiff, State, Status};

use super::Project;
use crate::messages::{self, warning};
use crate::package::Package;

/// The config's `ignore` patterns.
pub(super) fn ignore_patterns(package: &Package) -> Vec<String> {
    package.config.ignore.clone()
}

/// What the comparison leaves out: the tracking table and the `ignore`
/// patterns.
pub(super) fn filter(package: &Package) -> Result<Filter> {
    Filter::new(&package.config.table)
        .ignore(&ignore_patterns(package))
        .map_err(|e| {
            anyhow!(
                "{e} (in `ignore` of [package.metadata.migrate] in {})",
                crate::package::show(&package.manifest)
            )
        })
}

/// The versions the database has applied and the code has, unmodified.
pub(super) fn applied(status: &Status<'_>) -> Vec<u64> {
    status
        .entries
        .iter()
        .filter(|e| e.state == State::Applied)
        .map(|e| e.migration.version())
        .collect()
}

/// Compares the database with its applied migrations.
///
/// # Errors
///
/// One line that says what to do, when the database was never migrated or
/// its history cannot be replayed (a migration edited or renamed since it
/// was applied, or applied and not on disk).
pub(super) fn compare(project: &Project<'_>, migrator: &Migrator<'_>, conn: &Connection) -> Result<SchemaDiff> {
    let filter = filter(project.package)?;
    migrator
        .schema_diff_cached(conn, &filter, &mut project.replay_cache())
        .map_err(|e| cannot_compare(e, project))
}

pub(super) fn cannot_compare(e: migrate_runtime::Error, project: &Project<'_>) -> anyhow::Error {
    use migrate_runtime::Error;
    let db = project.database.shown();
    let dir = crate::package::show(&project.package.migrations_dir());
    match e {
        Error::NotMigrated { table } => anyhow!(
            "the database `{db}` has no tracking table `{table}`: no migration was ever applied to it, so there is no schema to compare it with; apply the migrations with `cargo migrate up`, or check the database path and `table` in [package.metadata.migrate]"
        ),
        Error::Modified {
            version, name, file, ..
        } => anyhow!(
            "{file}: migration {version} `{name}` was changed after it was applied to `{db}`, so the schema its migrations made cannot be replayed; nothing was compared. Restore the file as it was applied (from version control) and run the command again"
        ),
        Error::Renamed {
            version,
            applied_name,
            name,
            file,
            ..
        } => anyhow!(
            "{file}: migration {version} was applied to `{db}` as `{applied_name}` but is now called `{name}`, so the schema its migrations made cannot be replayed; nothing was compared. Restore the old name and run the command again"
        ),
        Error::UnknownApplied { versions, .. } => anyhow!(
            "the database `{db}` has applied {} that {} not in {dir} ({}), so the schema its migrations made cannot be replayed; nothing was compared. Restore the files (or use the branch that has them) and run the command again",
            messages::count(versions.len(), "migration"),
            if versions.len() == 1 { "is" } else { "are" },
            versions
                .iter()
                .map(|(v, n)| format!("{} `{n}`", project.version(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => super::runtime_error(other, project),
    }
}

/// The differences in display order: grouped by table (tables by name,
/// then views), one line each.
pub(super) fn sorted(differences: &[Difference]) -> Vec<&Difference> {
    let mut out: Vec<&Difference> = differences.iter().collect();
    let group = |d: &Difference| -> (u8, String) {
        match (&d.table, d.object) {
            (Some(t), _) => (0, t.to_ascii_lowercase()),
            (None, migrate_runtime::model::Object::View) => (1, d.name.to_ascii_lowercase()),
            (None, _) => (0, d.name.to_ascii_lowercase()),
        }
    };
    // Stable: within a table, the runtime's order (columns, indexes, keys).
    out.sort_by_key(|d| (group(d), d.table.is_some()));
    out
}

/// `up`, `down` and `redo` check for drift before they change anything:
/// migrations written for one schema and run on another are how data gets
/// lost. With `allow`, the differences are warnings. Histories the
/// comparison cannot replay (modified, unknown, never migrated) are left to
/// the runner's own checks and flags.
pub(super) fn before_running(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    conn: &Connection,
    allow: bool,
) -> Result<()> {
    let configured = project.package.config.drift;
    if configured == migrate_build::Drift::Off {
        return Ok(());
    }
    let allow = allow || configured == migrate_build::Drift::Warn;
    let filter = filter(project.package)?;
    let Ok(diff) = migrator.schema_diff_cached(conn, &filter, &mut project.replay_cache()) else {
        return Ok(());
    };
    if diff.is_clean() {
        return Ok(());
    }
    let at = diff
        .version
        .map_or_else(String::new, |v| format!(" (up to {})", project.version(v)));
    if allow {
        for d in sorted(&diff.differences) {
            warning!("drift: {d}");
        }
        warning!(
            "the database's schema is not what its applied migrations{at} make; going on ({})",
            if configured == migrate_build::Drift::Warn {
                "drift = \"warn\" in [package.metadata.migrate]"
            } else {
                "--allow-drift"
            }
        );
        return Ok(());
    }
    let lines: Vec<String> = sorted(&diff.differences).iter().map(ToString::to_string).collect();
    Err(anyhow!(
        "the database `{}` is not what its applied migrations{at} make (drift): {}; nothing was changed. See `cargo migrate diff`; adopt the changes with `cargo migrate diff --emit NAME`, undo them (`cargo migrate diff --sql` prints the SQL), or pass --allow-drift to go on",
        project.database.shown(),
        lines.join("; ")
    ))
}
