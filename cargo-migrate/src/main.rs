//! `cargo migrate`: create, check, apply, inspect and roll back SQL schema
//! migrations from the shell.
//!
//! Cargo runs `cargo-migrate migrate …`; running `cargo-migrate …` directly
//! works too. The migrations are read through `migrate-build` (the scanner
//! and checks of the build script) and applied through `migrate-runtime`
//! (the runner the app links), so the app and this tool always agree.
//!
//! Data goes to standard output; everything said to the user goes to
//! standard error through [`messages`]. The exit statuses are in [`exit`].

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod database;
mod exit;
mod git;
mod messages;
mod migrations;
mod output;
mod package;
mod postgres_env;
mod settings;
mod tls;

use cli::Cli;
use settings::Settings;

fn main() -> ExitCode {
    // Prints help, version and usage errors itself (usage errors exit 2).
    let Cli::Migrate(args) = Cli::parse_from(cli::normalize_args(std::env::args_os()));
    let format = args.format();
    messages::on_ctrl_c();
    match run(args) {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            messages::error(&e);
            if format == cli::Format::Json {
                // A script reading stdout gets a JSON document either way.
                let _ = output::json(&output::Failure::of(&e));
            }
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// Runs the command; `Ok` carries its exit status (success, or "not up to
/// date" for `status --exit-code`), `Err` is a failure.
fn run(args: cli::Migrate) -> anyhow::Result<ExitCode> {
    // Explaining a rule needs no package.
    if let cli::Command::Lint(cli::LintArgs { explain: Some(id), .. }) = &args.command {
        return commands::explain(id);
    }
    let mut settings = Settings::new(args)?;
    commands::run(&mut settings)
}
