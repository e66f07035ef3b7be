//! `schema`: the schema after the last migration (a replay of every
//! migration, in memory), or of a live database with `--database`, as SQL,
//! JSON (the runtime's model) or a Mermaid `erDiagram`.

use std::io::Write as _;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use migrate_runtime::model::{self, Model};
use migrate_runtime::{Migration, Migrator};

use super::drift::filter;
use crate::cli::{SchemaArgs, SchemaFormat};
use crate::database::{Database, Mode, Source};
use crate::messages::{Problems, say};
use crate::migrations;
use crate::package::Package;
use crate::settings::Settings;

/// `schema [--database URL] [--format sql|json|mermaid] [--write]`.
pub fn run(settings: &Settings, args: &SchemaArgs) -> Result<()> {
    let package = &settings.package;
    let filter = filter(package)?;
    if args.write {
        if settings.database_flag.is_some() {
            bail!(
                "--write writes the schema the migrations make, not a database's; drop --database (`cargo migrate schema --database URL` prints a live database's schema)"
            );
        }
        let path = if package.config.backend() == migrate_build::Backend::Postgres {
            super::pgdrift::write_snapshot(package, None)?
        } else {
            write_snapshot(package)?
        };
        say!(
            "wrote {}: the schema the migrations make, as `cargo build` compares it",
            crate::package::show(&path)
        );
        return Ok(());
    }
    let (conn, source) = match &settings.database_flag {
        Some(url) => {
            let database = Database::parse(url, Source::Flag, &settings.cwd)?;
            if database.postgres_url().is_some() {
                let mut client = database.connect()?;
                let model = Model::read_postgres(&mut client, package.config.schema.as_deref(), &filter)?;
                return print(&model, args.format, &format!("the schema of {}", database.shown()));
            }
            let Some(opened) = database.open(Mode::ReadOnly, Duration::from_secs(5))? else {
                bail!(
                    "the database file {} does not exist; check the path given to --database",
                    database.shown()
                );
            };
            (opened.conn, format!("the schema of {}", database.shown()))
        }
        None if package.config.backend() == migrate_build::Backend::Postgres => {
            let database = std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .or_else(|| package.config.database.clone())
                .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
            let (model, what) = super::pgdrift::schema_after_migrations(package, database.as_deref())?;
            return print(&model, args.format, &what);
        }
        None => {
            let found = migrations::load(package)?;
            let all: Vec<Migration> = migrations::to_runtime(&found);
            let versions: Vec<u64> = all.iter().map(Migration::version).collect();
            let conn = Migrator::new(&all)
                .table(&package.config.table)
                .replay_versions(&versions)?;
            (conn, after_last(package, all.last()))
        }
    };
    let text = match args.format {
        SchemaFormat::Sql => model::schema_sql(&conn, &filter)?,
        SchemaFormat::Json => format!("{}\n", serde_json::to_string(&Model::read(&conn, &filter)?)?),
        SchemaFormat::Mermaid => Model::read(&conn, &filter)?.mermaid(),
    };
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")?;
    out.flush()?;
    say!("{source}");
    Ok(())
}

/// What the schema after the migrations is, for messages: "the schema
/// after migration 0005 add_email (migrations)", or the empty schema.
pub(super) fn after_last(package: &Package, last: Option<&Migration>) -> String {
    let dir = crate::package::show(&package.migrations_dir());
    match last {
        Some(m) => format!(
            "the schema after migration {} {} ({dir})",
            package.version(m.version()),
            m.name()
        ),
        None => format!("the empty schema: there are no migrations in {dir}"),
    }
}

/// Prints a PostgreSQL model in `format`, and `what` it is to stderr.
fn print(model: &Model, format: SchemaFormat, what: &str) -> Result<()> {
    let text = match format {
        SchemaFormat::Sql => model.postgres_sql(),
        SchemaFormat::Json => format!("{}\n", serde_json::to_string(model)?),
        SchemaFormat::Mermaid => model.mermaid(),
    };
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")?;
    out.flush()?;
    say!("{what}");
    Ok(())
}

/// Writes the schema snapshot (config `snapshot`) with exactly the text the
/// build compares it with (`migrate_build::schema_snapshot`); returns its path.
///
/// # Errors
///
/// When no snapshot is configured, the migrations have problems, or the
/// file cannot be written.
pub(super) fn write_snapshot(package: &Package) -> Result<PathBuf> {
    let Some(path) = migrate_build::snapshot_path(&package.dir, &package.config) else {
        bail!("no snapshot configured (help: set snapshot = \"migrations/schema.sql\" in [package.metadata.migrate])");
    };
    let text = migrate_build::schema_snapshot(&package.dir, &package.config).map_err(Problems::in_migrations)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", crate::package::show(parent)))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", crate::package::show(&path)))?;
    Ok(path)
}
