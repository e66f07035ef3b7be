//! What the commands that work on a database start from, and the
//! runtime's errors in the command line's words.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, ReplayCache, State, Status};

use super::new;
use crate::cli::RunArgs;
use crate::database::{Database, Location, Mode, Opened};
use crate::messages::{self, note};
use crate::migrations;
use crate::package::Package;
use crate::settings::Settings;

/// What the commands that work on a database (`status`, `up`, `down`,
/// `redo`) start from: the package, its migrations as the runtime applies
/// them, and the database.
pub(super) struct Project<'s> {
    pub(super) package: &'s Package,
    pub(super) database: &'s Database,
    /// The migrations on disk, oldest first.
    pub(super) migrations: Vec<Migration>,
}

impl<'s> Project<'s> {
    /// Reads the migrations (printing warnings) and checks that a database
    /// was given.
    pub(super) fn load(settings: &'s Settings) -> Result<Self> {
        let database = settings.database()?;
        let found = migrations::load(&settings.package)?;
        Ok(Self {
            package: &settings.package,
            database,
            migrations: migrations::to_runtime(&found),
        })
    }

    /// A migrator with the package's tracking table and, for the commands
    /// that change the database, the command's options.
    pub(super) fn migrator(&self, run: Option<&RunArgs>) -> Migrator<'_> {
        let config = &self.package.config;
        let mut migrator = Migrator::new(&self.migrations).table(&config.table);
        if !config.functions.is_empty() {
            // The drift replays run what the build's replay accepted.
            migrator = migrator.replay_setup(|conn| migrate_build::register_function_stubs(conn, config));
        }
        if config.store_down {
            migrator = migrator.store_down(true);
        }
        if self.database.postgres_url().is_some() {
            // The config's PostgreSQL settings, as the app's generated
            // `migrator()` applies them.
            if let Some(schema) = &config.schema {
                migrator = migrator.schema(schema);
            }
            if let Some(lock) = config.lock {
                migrator = migrator.lock(lock);
            }
        }
        match run {
            None => migrator,
            Some(run) => migrator
                .drift(
                    if run.allow_drift && self.package.config.drift == migrate_build::Drift::Error {
                        migrate_runtime::DriftPolicy::Warn
                    } else {
                        self.package.config.drift.policy()
                    },
                )
                .ignore(&self.package.config.ignore)
                .allow_out_of_order(run.allow_out_of_order)
                .allow_unknown(run.allow_unknown)
                .allow_modified(run.allow_modified)
                .lock_timeout(Duration::from_secs(run.lock_timeout)),
        }
    }

    /// The replay cache that `cargo migrate check` keeps for these
    /// migrations, which the drift replays start from (and only read):
    /// see [`Migrator::schema_diff_cached`].
    pub(super) fn replay_cache(&self) -> impl ReplayCache + use<> {
        migrate_build::replay_cache(&self.package.check_cache, &self.package.config, &self.migrations)
    }

    /// Opens the database; `None` when its file does not exist and `mode`
    /// does not create it.
    pub(super) fn open(&self, mode: Mode, lock_timeout: Duration) -> Result<Option<Opened>> {
        self.database.open(mode, lock_timeout)
    }

    /// Opens a database that must exist already, to change it (never
    /// creates one); `doing` says what for: "roll back", "redo".
    pub(super) fn open_existing(&self, lock_timeout: Duration, doing: &str) -> Result<Connection> {
        let Some(opened) = self.open(Mode::ReadWrite, lock_timeout)? else {
            bail!(
                "the database file {} does not exist, so there is nothing to {doing}; check the path (--database, DATABASE_URL or database in [package.metadata.migrate])",
                self.database.shown()
            );
        };
        self.in_memory_note();
        Ok(opened.conn)
    }

    /// Says that an in-memory database is gone when the command ends.
    pub(super) fn in_memory_note(&self) {
        if self.database.location == Location::Memory {
            note!("sqlite::memory: is an in-memory database: it is gone when this command ends");
        }
    }

    /// Says that the database file does not exist, so everything is pending.
    pub(super) fn missing_note(&self) {
        note!(
            "the database file {} does not exist yet: every migration is pending (`cargo migrate up` creates it)",
            self.database.shown()
        );
    }

    /// `0003`: a version padded to the configured width.
    pub(super) fn version(&self, version: u64) -> String {
        self.package.version(version)
    }

    /// `the database is at version 0003 add_email`, or `no migration is applied`.
    pub(super) fn describe(&self, version: u64) -> String {
        if version == 0 {
            return "no migration is applied".to_owned();
        }
        let name = self
            .migrations
            .iter()
            .find(|m| m.version() == version)
            .map(|m| format!(" {}", m.name()))
            .unwrap_or_default();
        format!("the database is at version {}{name}", self.version(version))
    }

    /// Every migration's state in the database.
    pub(super) fn status<'m>(&self, migrator: &Migrator<'m>, conn: &Connection) -> Result<Status<'m>> {
        migrator.status(conn).map_err(|e| runtime_error(e, self))
    }

    /// The newest version the database has applied (known or not), 0 for none.
    pub(super) fn top(&self, migrator: &Migrator<'_>, conn: &Connection) -> Result<u64> {
        Ok(applied_versions(&self.status(migrator, conn)?)
            .last()
            .copied()
            .unwrap_or(0))
    }

    /// Refuses, before anything runs, to roll back applied migrations whose
    /// files are not on disk (everything above `target`), or to roll back
    /// to such a one: the runtime would only say it does not know them.
    pub(super) fn refuse_missing_files(&self, status: &Status<'_>, target: u64) -> Result<()> {
        let missing: Vec<(u64, String)> = status
            .unknown
            .iter()
            .filter(|a| a.version > target || (target > 0 && a.version == target))
            .map(|a| (a.version, a.name.clone()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing_files(
            &crate::package::show(&self.package.migrations_dir()),
            &missing,
        ))
    }

    /// The newest applied migration when what was recorded is the untouched
    /// template of `new` (applied by an app, or by an older `cargo migrate
    /// up`, before its SQL was written): that did nothing, so there is
    /// nothing to roll back, and its real SQL has yet to run.
    pub(super) fn applied_template<'m>(&self, status: &Status<'m>) -> Option<&'m Migration> {
        let newest = applied_versions(status).last().copied()?;
        let entry = status.entries.iter().find(|e| e.migration.version() == newest)?;
        let applied = entry.applied.as_ref().filter(|_| entry.state == State::Modified)?;
        let template = new::template(&self.version(newest), &applied.name, migrate_build::scan::Kind::Up);
        (migrate_runtime::Checksum::parse(&applied.checksum) == Some(migrate_runtime::Checksum::of(&template)))
            .then_some(entry.migration)
    }

    /// Forgets that `m` was applied, when what was recorded is the empty
    /// template (see [`Self::applied_template`]): deletes its tracking row,
    /// so the migration is pending again.
    pub(super) fn forget_template(&self, conn: &Connection, m: &Migration, status: &Status<'_>) -> Result<()> {
        let Some(applied) = status
            .entries
            .iter()
            .find(|e| e.migration.version() == m.version())
            .and_then(|e| e.applied.as_ref())
        else {
            return Ok(());
        };
        let table = format!("\"{}\"", self.package.config.table.replace('"', "\"\""));
        let version = i64::try_from(m.version()).context("version out of range")?;
        conn.execute(
            &format!("DELETE FROM {table} WHERE version = ?1 AND checksum = ?2"),
            (version, &applied.checksum),
        )
        .with_context(|| format!("cannot update the tracking table `{}`", self.package.config.table))?;
        self.template_note(m, "applying it now with the SQL written since");
        Ok(())
    }

    /// Says that `m` was recorded while still the empty template, and `now`
    /// what becomes of it.
    pub(super) fn template_note(&self, m: &Migration, now: &str) {
        note!(
            "migration {} `{}` was recorded as applied while its up file was still the empty template of `cargo migrate new`, which changed nothing; {now}",
            self.version(m.version()),
            m.name()
        );
    }

    /// `up` never records a migration whose up file has no statement yet
    /// (the comment-only template of `new`): the SQL written later would
    /// never run, since the migration would count as applied.
    pub(super) fn refuse_unwritten<'m>(&self, migrations: impl IntoIterator<Item = &'m Migration>) -> Result<()> {
        let unwritten: Vec<&Migration> = migrations
            .into_iter()
            .filter(|m| migrate_runtime::statement_lines(m.up().sql()).is_empty())
            .collect();
        let Some(first) = unwritten.first() else {
            return Ok(());
        };
        let files = unwritten.iter().map(|m| m.up().file()).collect::<Vec<_>>().join(", ");
        bail!(
            "{files}: migration {} `{}`{} has no SQL statement yet, only comments (the template of `cargo migrate new`?); applying it would record it as applied without changing anything, and SQL written into it later would never run. Write the migration — or, if it is meant to do nothing, put `SELECT 1;` in it; nothing was applied",
            first.version(),
            first.name(),
            match unwritten.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        )
    }
}

/// Every version the database has applied, known or not, oldest first.
pub(super) fn applied_versions(status: &Status<'_>) -> Vec<u64> {
    let mut versions: Vec<u64> = status
        .entries
        .iter()
        .filter_map(|e| e.applied.as_ref().map(|a| a.version))
        .chain(status.unknown.iter().map(|a| a.version))
        .collect();
    versions.sort_unstable();
    versions
}

/// The runtime's error in the command line's words: its flags
/// (`--allow-modified`) rather than the API's options (`allow_modified`),
/// the migrations directory rather than "this program", and the database
/// as the command shows it. Other errors pass through.
pub(super) fn runtime_error(e: migrate_runtime::Error, project: &Project<'_>) -> anyhow::Error {
    use migrate_runtime::Error;
    let dir = crate::package::show(&project.package.migrations_dir());
    match e {
        Error::Locked { waited, .. } => crate::database::locked(&project.database.shown(), waited),
        Error::Modified {
            version,
            name,
            file,
            applied,
            current,
            ..
        } => anyhow!(
            "{file}: migration {version} `{name}` was changed after it was applied (checksum then {applied}, now {current}); restore the file as it was applied and put the change in a new migration, or pass --allow-modified to go on (for the newest migration, while developing it: `cargo migrate redo --allow-modified`)"
        ),
        Error::Renamed {
            version,
            applied_name,
            name,
            file,
            ..
        } => anyhow!(
            "{file}: migration {version} was applied as `{applied_name}` but is now called `{name}`; a renamed or renumbered migration is a different migration: restore the old name, or pass --allow-modified to go on"
        ),
        Error::UnknownApplied { versions, .. } => {
            let (its, them, are) = if versions.len() == 1 {
                ("its", "it", "is")
            } else {
                ("their", "them", "are")
            };
            anyhow!(
                "the database has applied {} that {are} not in {dir}: {}; were the files deleted, or are they on another branch? Restore {its} files (or use the build that has {them}), or pass --allow-unknown to go on without {them}",
                messages::count(versions.len(), "migration"),
                list(&versions)
            )
        }
        Error::OutOfOrder {
            version,
            name,
            file,
            latest_applied,
            ..
        } => anyhow!(
            "{file}: migration {version} `{name}` is pending but migration {latest_applied} is already applied (two branches merged?); give it a number above {latest_applied} with `cargo migrate renumber`, or pass --allow-out-of-order to apply it anyway"
        ),
        Error::UnknownRollback { version, name, .. } => missing_files(&dir, &[(version, name)]),
        Error::Drift { version, differences } => anyhow!(
            "the database `{}` is not what its applied migrations{} make (drift): {}; nothing was changed. See `cargo migrate diff`; adopt the changes with `cargo migrate diff --emit NAME`, undo them (`cargo migrate diff --sql` prints the SQL), or pass --allow-drift to go on",
            project.database.shown(),
            version.map_or_else(String::new, |v| format!(" (up to {})", project.version(v))),
            differences.join("; ")
        ),
        other => other.into(),
    }
}

/// `5 `t5`, 6 `t6``.
fn list(versions: &[(u64, String)]) -> String {
    versions
        .iter()
        .map(|(v, n)| format!("{v} `{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rolling back applied migrations whose files are not on disk.
fn missing_files(dir: &str, versions: &[(u64, String)]) -> anyhow::Error {
    let (its, them) = if versions.len() == 1 {
        ("its files are", "it")
    } else {
        ("their files are", "them")
    };
    anyhow!(
        "cannot roll back {}: the database has applied {} but {its} not in {dir}, so there is no down script to run; nothing was rolled back. Restore the files (from version control, or the branch that added {them}) and run the command again",
        messages::count(versions.len(), "migration"),
        list(versions)
    )
}
