//! `cargo migrate`: create, check, apply, inspect and roll back SQL schema
//! migrations from the shell.
//!
//! Cargo runs `cargo-migrate migrate …`; running `cargo-migrate …` directly
//! works too. The migrations are read through `migrate-build` (the scanner
//! and checks of the build script) and applied through `migrate-runtime`
//! (the runner the app links), so the app and this tool always agree.
//!
//! Data goes to standard output, messages and `error: …` lines to standard
//! error. The exit status is 0 on success, 1 on an error, 2 on a usage
//! error (clap's own).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod database;
mod migrations;
mod output;
mod package;
mod settings;

use cli::Cli;
use settings::Settings;

fn main() -> ExitCode {
    // Prints help, version and usage errors itself (usage errors exit 2).
    let Cli::Migrate(args) = Cli::parse_from(cli::normalize_args(std::env::args_os()));
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per error: the message carries the hint.
            let message = format!("{e:#}").replace('\n', "; ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: cli::Migrate) -> anyhow::Result<()> {
    let settings = Settings::new(args)?;
    commands::run(&settings)
}
