//! `lint`: the checks of `cargo build` with the lint on, and `--explain`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use migrate_build::lint;
use serde::Serialize;

use crate::cli::{Format, LintArgs};
use crate::messages::{self, Label, Problems, count, say};
use crate::output::{self, ProblemRow};
use crate::settings::Settings;

/// `lint --explain ID`: the rule's explanation and safe alternative, on
/// standard output.
///
/// # Errors
///
/// When no rule has that id.
pub fn explain(id: &str) -> Result<ExitCode> {
    let Some(rule) = lint::rule(id) else {
        let ids: Vec<&str> = lint::RULES.iter().map(|r| r.id).collect();
        bail!("there is no lint rule {id}; the rules are {}", ids.join(", "));
    };
    print!("{}", lint::explain(rule));
    Ok(ExitCode::SUCCESS)
}

/// The `--format json` report.
#[derive(Serialize)]
struct Report {
    /// Whether no error was found.
    ok: bool,
    /// The first version linted.
    lint_from: u64,
    /// How many migrations there are.
    migrations: Option<usize>,
    /// Every finding and every other problem of the check, in order.
    problems: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    /// The rule's id, or `null` for a problem that is not a lint finding.
    rule: Option<&'static str>,
    #[serde(flatten)]
    problem: ProblemRow,
}

/// `lint`: runs the check with `lint_from` (1 when unset) and prints
/// every problem; exits 1 when one is an error.
pub fn run(settings: &Settings, args: &LintArgs) -> Result<ExitCode> {
    let package = &settings.package;
    let mut config = package.config.clone();
    let from = config.lint_from.unwrap_or(1);
    config.lint_from = Some(from);
    let checked = migrate_build::check(&package.dir, &config);
    let (problems, migrations, dir) = match &checked {
        Ok(c) => (c.warnings.clone(), Some(c.migrations.len()), Some(c.dir.clone())),
        Err(e) => (e.problems().to_vec(), None, None),
    };
    let errors = problems.iter().filter(|p| p.is_error()).count();
    if args.format == Format::Json {
        output::json(&Report {
            ok: errors == 0,
            lint_from: from,
            migrations,
            problems: problems
                .iter()
                .map(|p| Row {
                    rule: lint::rule_of(p).map(|r| r.id),
                    problem: ProblemRow::of(p),
                })
                .collect(),
        })?;
        if errors > 0 {
            messages::line(
                Some(Label::Error),
                format!("{} in the migrations", count(errors, "problem")),
            );
            return Ok(ExitCode::from(crate::exit::FAILURE));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Ok(_), Some(migrations), Some(dir)) = (checked, migrations, dir) else {
        return Err(Problems {
            problems,
            place: "the migrations",
        }
        .into());
    };
    messages::problems(&problems);
    let since = if package.config.lint_from.is_some() {
        format!("from version {from} (lint_from)")
    } else {
        "from the first (lint_from is not set, so `cargo build` does not lint)".to_owned()
    };
    let warnings = if problems.is_empty() {
        "no findings".to_owned()
    } else {
        count(problems.len(), "warning")
    };
    say!(
        "linted {} in {} {since}: {warnings}",
        count(migrations, "migration"),
        crate::package::show(&dir)
    );
    Ok(ExitCode::SUCCESS)
}
