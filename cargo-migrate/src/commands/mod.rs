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
mod pgalter;
mod pgdrift;
mod pgsqlgen;
mod pgsquash;
mod postgres;
mod progress;
mod project;
mod recipe;
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
pub fn run(settings: &mut Settings) -> Result<ExitCode> {
    if settings.each_backend {
        // One directory per backend: `new`, `check` and `lock` do each.
        // `check` checks every directory before failing; the others stop
        // at the first failure, so `new` never leaves one directory ahead.
        let keep_going = matches!(settings.command, Command::Check(_));
        let mut failed: Option<anyhow::Error> = None;
        for config in settings.package.sets.clone() {
            settings.package.config = config;
            match run_one(settings) {
                Ok(code) if code == ExitCode::SUCCESS => {}
                Ok(code) => return Ok(code),
                Err(e) if keep_going => {
                    if let Some(earlier) = failed.replace(e) {
                        crate::messages::error(&earlier);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        return failed.map_or(Ok(ExitCode::SUCCESS), Err);
    }
    run_one(settings)
}

fn run_one(settings: &Settings) -> Result<ExitCode> {
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
