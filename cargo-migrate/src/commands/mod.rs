//! One module per command.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Command;
use crate::settings::Settings;

mod apply;
mod baseline;
mod check;
mod dbadmin;
mod diff;
mod drift;
mod import;
mod init;
mod lint;
mod list;
mod lock;
mod new;
mod pgdrift;
mod pgsqlgen;
mod pgsquash;
mod postgres;
mod progress;
mod project;
mod renumber;
mod repair;
mod schema;
mod sqlgen;
mod squash;
mod status;

pub use lint::explain;

use progress::Progress;
use project::{Project, applied_versions, runtime_error};

/// Runs the command of `settings`.
///
/// # Errors
///
/// Whatever the command reports.
pub fn run(settings: &Settings) -> Result<ExitCode> {
    let done = match &settings.command {
        // The commands with an exit status of their own.
        Command::Status(args) => return status::run(settings, args),
        Command::Diff(args) => return diff::run(settings, args),
        Command::Schema(args) => schema::run(settings, args),
        Command::Init(args) => init::run(settings, args),
        Command::New(args) => new::run(settings, args),
        Command::List(args) => list::run(settings, args),
        Command::Up(args) => apply::up(settings, args),
        Command::Down(args) => apply::down(settings, args),
        Command::Redo(args) => apply::redo(settings, args),
        Command::Check(args) => check::run(settings, args),
        Command::Renumber(args) => renumber::run(settings, args),
        Command::Lock => lock::run(settings),
        Command::Repair(args) => repair::run(settings, args),
        Command::Squash(args) => squash::run(settings, args),
        Command::Database(args) => dbadmin::run(settings, args),
        Command::Import(args) => import::run(settings, args),
        Command::Baseline(args) => baseline::run(settings, args),
        Command::Lint(args) => return lint::run(settings, args),
    };
    done.map(|()| ExitCode::SUCCESS)
}
