//! One module per command.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use migrate_runtime::{Direction, Event, Migration, Migrator, Status};

use crate::cli::{Command, RunArgs};
use crate::database::Database;
use crate::messages::{self, say};
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

/// A migrator over `migrations` with the package's tracking table and the
/// command's options.
fn migrator<'m>(migrations: &'m [Migration], package: &Package, run: &RunArgs) -> Migrator<'m> {
    Migrator::new(migrations)
        .table(&package.config.table)
        .allow_out_of_order(run.allow_out_of_order)
        .allow_unknown(run.allow_unknown)
        .allow_modified(run.allow_modified)
        .lock_timeout(Duration::from_secs(run.lock_timeout))
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

/// `version 0003 add_email`, or `version 0 (no migration applied)`.
fn describe_version(package: &Package, migrations: &[Migration], version: u64) -> String {
    if version == 0 {
        return "no migration is applied".to_owned();
    }
    let name = migrations
        .iter()
        .find(|m| m.version() == version)
        .map(|m| format!(" {}", m.name()))
        .unwrap_or_default();
    format!("the database is at version {}{name}", package.version(version))
}

/// Prints each migration as it starts and how long it took, on stderr:
/// `applying 0001 create_users … done in 3 ms`.
struct Progress<'a> {
    package: &'a Package,
    database: &'a Database,
}

impl<'a> Progress<'a> {
    fn new(package: &'a Package, database: &'a Database) -> Self {
        Self { package, database }
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
                    self.package.version(migration.version()),
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
            runtime_error(e, self.database)
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
