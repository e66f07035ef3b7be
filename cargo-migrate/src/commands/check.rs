//! `check`: the build script's validation, the very same function.

use anyhow::Result;

use crate::messages::{self, Problems, count, say};
use crate::settings::Settings;

/// `check`: scans and replays the migrations as `cargo build` does, and
/// prints every problem, warnings included. Like the build script, it
/// keeps the replayed database after verified prefixes (in
/// `target/migrate-check-cache/<package>`), so the next check replays only
/// what changed after the longest unchanged prefix.
pub fn run(settings: &Settings) -> Result<()> {
    let package = &settings.package;
    let checked = migrate_build::check_incremental(&package.dir, &package.config, None, Some(&package.check_cache))
        .map_err(Problems::in_migrations)?;
    messages::problems(&checked.warnings);
    let mut notes = Vec::new();
    if !checked.warnings.is_empty() {
        notes.push(count(checked.warnings.len(), "warning"));
    }
    if checked.cached > 0 {
        notes.push(format!(
            "the first {} unchanged, from the check cache in {}",
            checked.cached,
            crate::package::show(&package.check_cache)
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    say!(
        "checked {} in {}: ok{notes}",
        count(checked.migrations.len(), "migration"),
        crate::package::show(&checked.dir)
    );
    Ok(())
}
