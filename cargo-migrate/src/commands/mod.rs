//! One module per command.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Direction, Event, Migration, Migrator, Status};

use crate::cli::{Command, RunArgs};
use crate::database::{Database, Location, Mode, Opened};
use crate::messages::{self, note, say};
use crate::migrations;
use crate::package::Package;
use crate::settings::Settings;

mod apply;
mod check;
mod init;
mod list;
mod new;
mod renumber;
mod status;

/// Runs the command of `settings`.
///
/// # Errors
///
/// Whatever the command reports.
pub fn run(settings: &Settings) -> Result<ExitCode> {
    let done = match &settings.command {
        // The one command with an exit status of its own.
        Command::Status(args) => return status::run(settings, args),
        Command::Init(args) => init::run(settings, args),
        Command::New(args) => new::run(settings, args),
        Command::List(args) => list::run(settings, args),
        Command::Up(args) => apply::up(settings, args),
        Command::Down(args) => apply::down(settings, args),
        Command::Redo(args) => apply::redo(settings, args),
        Command::Check => check::run(settings),
        Command::Renumber(args) => renumber::run(settings, args),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// What the commands that work on a database (`status`, `up`, `down`,
/// `redo`) start from: the package, its migrations as the runtime applies
/// them, and the database.
struct Project<'s> {
    package: &'s Package,
    database: &'s Database,
    /// The migrations on disk, oldest first.
    migrations: Vec<Migration>,
}

impl<'s> Project<'s> {
    /// Reads the migrations (printing warnings) and checks that a database
    /// was given.
    fn load(settings: &'s Settings) -> Result<Self> {
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
    fn migrator(&self, run: Option<&RunArgs>) -> Migrator<'_> {
        let migrator = Migrator::new(&self.migrations).table(&self.package.config.table);
        match run {
            None => migrator,
            Some(run) => migrator
                .allow_out_of_order(run.allow_out_of_order)
                .allow_unknown(run.allow_unknown)
                .allow_modified(run.allow_modified)
                .lock_timeout(Duration::from_secs(run.lock_timeout)),
        }
    }

    /// Opens the database; `None` when its file does not exist and `mode`
    /// does not create it.
    fn open(&self, mode: Mode, lock_timeout: Duration) -> Result<Option<Opened>> {
        self.database.open(mode, lock_timeout)
    }

    /// Opens a database that must exist already, to change it (never
    /// creates one); `doing` says what for: "roll back", "redo".
    fn open_existing(&self, lock_timeout: Duration, doing: &str) -> Result<Connection> {
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
    fn in_memory_note(&self) {
        if self.database.location == Location::Memory {
            note!("sqlite::memory: is an in-memory database: it is gone when this command ends");
        }
    }

    /// Says that the database file does not exist, so everything is pending.
    fn missing_note(&self) {
        note!(
            "the database file {} does not exist yet: every migration is pending (`cargo migrate up` creates it)",
            self.database.shown()
        );
    }

    /// `0003`: a version padded to the configured width.
    fn version(&self, version: u64) -> String {
        self.package.version(version)
    }

    /// `the database is at version 0003 add_email`, or `no migration is applied`.
    fn describe(&self, version: u64) -> String {
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

    /// The newest version the database has applied (known or not), 0 for none.
    fn top(&self, migrator: &Migrator<'_>, conn: &Connection) -> Result<u64> {
        Ok(applied_versions(&migrator.status(conn)?).last().copied().unwrap_or(0))
    }
}

/// Every version the database has applied, known or not, oldest first.
fn applied_versions(status: &Status<'_>) -> Vec<u64> {
    let mut versions: Vec<u64> = status
        .entries
        .iter()
        .filter_map(|e| e.applied.as_ref().map(|a| a.version))
        .chain(status.unknown.iter().map(|a| a.version))
        .collect();
    versions.sort_unstable();
    versions
}

/// Prints each migration as it starts and how long it took, on stderr:
/// `applying 0001 create_users … done in 3 ms`.
struct Progress<'a> {
    project: &'a Project<'a>,
}

impl<'a> Progress<'a> {
    fn new(project: &'a Project<'a>) -> Self {
        Self { project }
    }

    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Waiting { timeout } => {
                say!(
                    "waiting up to {}s for another process's lock on the database …",
                    timeout.as_secs()
                );
            }
            Event::Started { migration, direction } => {
                let verb = match direction {
                    Direction::Up => "applying",
                    Direction::Down => "rolling back",
                };
                messages::begin_progress(format_args!(
                    "{verb} {} {}",
                    self.project.version(migration.version()),
                    migration.name()
                ));
            }
            Event::Finished { duration, .. } => {
                messages::end_progress(format_args!("done in {}", crate::output::duration(duration)));
            }
            _ => {}
        }
    }

    /// Ends a line left open by a failed migration, and words a lock
    /// timeout in the CLI's terms.
    fn finish<T>(&self, result: migrate_runtime::Result<T>) -> Result<T> {
        result.map_err(|e| {
            messages::end_progress("failed");
            runtime_error(e, self.project.database)
        })
    }
}

/// The runtime's error, with a lock timeout worded for the command line.
fn runtime_error(e: migrate_runtime::Error, database: &Database) -> anyhow::Error {
    match e {
        migrate_runtime::Error::Locked { waited } => crate::database::locked(&database.shown(), waited),
        other => other.into(),
    }
}
