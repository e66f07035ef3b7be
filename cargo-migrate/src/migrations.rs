//! The migrations on disk, read through `migrate-build` (the scanner the
//! build script uses), and its problems as the user sees them.

use anyhow::{Result, anyhow};
use migrate_build::Problem;
use migrate_build::scan::Found;
use migrate_runtime::Migration;

use crate::package::Package;

/// Reads the package's migrations, printing warnings.
///
/// # Errors
///
/// When the scan finds an error (each problem is printed first).
pub fn load(package: &Package) -> Result<Vec<Found>> {
    match migrate_build::load(&package.dir, &package.config) {
        Ok(loaded) => {
            print_problems(&loaded.warnings);
            Ok(loaded.migrations)
        }
        Err(e) => Err(problems_error(e)),
    }
}

/// The migrations as the runtime applies them.
pub fn to_runtime(found: &[Found]) -> Vec<Migration> {
    found.iter().map(Found::to_migration).collect()
}

/// Prints each problem on a line of its own: `error: path:line: message (help: …)`.
pub fn print_problems(problems: &[Problem]) {
    for p in problems {
        let label = if p.is_error() { "error" } else { "warning" };
        eprintln!("{label}: {p}");
    }
}

/// Prints the problems of `e` and returns the error that sums them up.
pub fn problems_error(e: migrate_build::Error) -> anyhow::Error {
    problems_error_in(e, "the migrations")
}

/// [`problems_error`], for problems found in `place`.
pub fn problems_error_in(e: migrate_build::Error, place: &str) -> anyhow::Error {
    print_problems(e.problems());
    let errors = e.problems().iter().filter(|p| p.is_error()).count();
    anyhow!(
        "{errors} {} in {place}",
        if errors == 1 { "problem" } else { "problems" }
    )
}
