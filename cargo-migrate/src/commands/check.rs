//! `check`: the build script's validation, the very same function.

use anyhow::Result;

use crate::messages::{self, Problems, count, say};
use crate::settings::Settings;

/// `check`: scans and replays the migrations as `cargo build` does, and
/// prints every problem, warnings included.
pub fn run(settings: &Settings) -> Result<()> {
    let package = &settings.package;
    let checked = migrate_build::check(&package.dir, &package.config).map_err(Problems::in_migrations)?;
    messages::problems(&checked.warnings);
    let warnings = if checked.warnings.is_empty() {
        String::new()
    } else {
        format!(" ({})", count(checked.warnings.len(), "warning"))
    };
    say!(
        "checked {} in {}: ok{warnings}",
        count(checked.migrations.len(), "migration"),
        crate::package::show(&checked.dir)
    );
    Ok(())
}
