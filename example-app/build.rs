//! Checks `migrations/` and generates the typed module that `main.rs` includes.

fn main() -> Result<(), migrate_build::Error> {
    migrate_build::build()?;
    Ok(())
}
