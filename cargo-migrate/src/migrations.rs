//! The migrations on disk, read through `migrate-build` (the scanner the
//! build script uses).

use anyhow::Result;
use migrate_build::scan::Found;
use migrate_runtime::Migration;

use crate::messages::{self, Problems};
use crate::package::Package;

/// Reads the package's migrations, printing warnings.
///
/// # Errors
///
/// [`Problems`] when the scan finds an error.
pub fn load(package: &Package) -> Result<Vec<Found>> {
    match migrate_build::load(&package.dir, &package.config) {
        Ok(loaded) => {
            messages::problems(&loaded.warnings);
            Ok(loaded.migrations)
        }
        Err(e) => Err(Problems::in_migrations(e)),
    }
}

/// The migrations as the runtime applies them.
pub fn to_runtime(found: &[Found]) -> Vec<Migration> {
    found.iter().map(Found::to_migration).collect()
}
