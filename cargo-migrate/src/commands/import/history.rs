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
    let found = migrations::load(package)?;
    let project = Project {
        package,
        database,
        migrations: migrations::to_runtime(&found),
    };
    let mut ignore = package.config.ignore.clone();
    ignore.extend(tool.table().map(str::to_owned));
    let migrator = project.migrator(None).ignore(&ignore).lock_timeout(timeout);
    let mut target = Target::open(&project, timeout)?;
    let old = tool.table().unwrap_or("PRAGMA user_version");
    let applied = target
        .applied(tool, mapping)
        .map_err(|e| anyhow!("{db}: {e}; nothing was recorded"))?
        .ok_or_else(|| {
            anyhow!(
                "{db} has no history of {} ({} is missing or empty), so there is nothing to take over: is --from right? For a database made without any tool, use `cargo migrate baseline --version N`; nothing was recorded",
                tool.name(),
                old
            )
        })?;
    let ours = applied_versions(&target.status(&project, &migrator)?);
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
    match target.record(&migrator, &applied) {
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
        Err(e) => Err(target.error(e, &project)),
    }
}

/// The database whose history is taken over (or baselined): an SQLite
/// file, or a PostgreSQL database with the server its replay runs on.
pub(in crate::commands) enum Target {
    Sqlite(migrate_runtime::rusqlite::Connection),
    Postgres {
        client: migrate_runtime::postgres::Client,
        /// Where the scratch database for the replay is made.
        server: Box<migrate_runtime::postgres::Config>,
        /// Which server that is, for errors.
        from: String,
    },
}

impl Target {
    /// Opens the project's database (an SQLite file that must exist).
    pub(in crate::commands) fn open(project: &Project<'_>, timeout: Duration) -> Result<Self> {
        let db = project.database.shown();
        if let Some(url) = project.database.postgres_url() {
            let (server, from) = crate::commands::pgdrift::replay_server(Some(url))?;
            return Ok(Self::Postgres {
                client: project.database.connect()?,
                server: Box::new(server),
                from,
            });
        }
        let Some(opened) = project.database.open(Mode::ReadWrite, timeout)? else {
            bail!(
                "the database file {db} does not exist, so there is no history there; check the path (--database, DATABASE_URL or database in [package.metadata.migrate])"
            );
        };
        Ok(Self::Sqlite(opened.conn))
    }

    /// What `tool` applied, in our versions.
    fn applied(&mut self, tool: Previous, mapping: &Mapping) -> migrate_runtime::Result<Option<Vec<u64>>> {
        match self {
            Self::Sqlite(conn) => tool.applied(conn, &mapping.pairs()),
            Self::Postgres { client, .. } => tool.applied_postgres(client, &mapping.pairs()),
        }
    }

    /// Every migration's state in the database.
    pub(in crate::commands) fn status<'m>(
        &mut self,
        project: &Project<'_>,
        migrator: &Migrator<'m>,
    ) -> Result<migrate_runtime::Status<'m>> {
        match self {
            Self::Sqlite(conn) => project.status(migrator, conn),
            Self::Postgres { client, .. } => migrator.status_postgres(client).map_err(|e| runtime_error(e, project)),
        }
    }

    /// Records `versions` as applied, after the checks.
    pub(in crate::commands) fn record(
        &mut self,
        migrator: &Migrator<'_>,
        versions: &[u64],
    ) -> migrate_runtime::Result<Vec<u64>> {
        match self {
            Self::Sqlite(conn) => migrator.record_applied(conn, versions),
            Self::Postgres { client, server, .. } => migrator.record_applied_postgres(client, server, versions),
        }
    }

    /// A runtime error of [`record`](Self::record) other than drift, in
    /// the command line's words.
    pub(in crate::commands) fn error(&self, e: Error, project: &Project<'_>) -> anyhow::Error {
        match (self, e) {
            (Self::Postgres { from, .. }, e @ Error::Postgres { .. }) if is_scratch(&e) => {
                anyhow!(
                    "{}; nothing was recorded",
                    crate::commands::pgdrift::replay_error(e, from, None)
                )
            }
            (_, e) => runtime_error(e, project),
        }
    }
}

/// Whether `e` is the failure to make the replay's scratch database.
fn is_scratch(e: &Error) -> bool {
    matches!(e, Error::Postgres { doing, .. } if doing.starts_with("creating the scratch database"))
}
