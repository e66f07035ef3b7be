//! `diff` (with `--sql` and `--emit`) and `schema` on PostgreSQL: the live
//! schema read from `pg_catalog`, the expected one replayed into a scratch
//! database (`migrate_replay_…`, always dropped) on the check server
//! (`MIGRATE_CHECK_DATABASE_URL`) or else on the database's own server.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_runtime::model::{Filter, Model};
use migrate_runtime::postgres::{Client, Config};
use migrate_runtime::{DriftPolicy, Migration, Migrator, SchemaDiff, ScratchDatabase, Script};

use super::diff::{at, emit_name, print, undo_printed, write_and_record};
use super::drift::{applied, cannot_compare, filter};
use super::{Project, pgsqlgen};
use crate::cli::DiffArgs;
use crate::package::{Package, show};

/// The variable that names a server for replays.
const CHECK_SERVER: &str = "MIGRATE_CHECK_DATABASE_URL";

/// The server to replay on: `MIGRATE_CHECK_DATABASE_URL`, else `url`'s.
pub(super) fn replay_server(url: Option<&str>) -> Result<(Config, String)> {
    let (url, from) = match std::env::var(CHECK_SERVER).ok().filter(|u| !u.is_empty()) {
        Some(u) => (u, CHECK_SERVER.to_owned()),
        None => match url {
            Some(u) => (u.to_owned(), "the database's server".to_owned()),
            None => bail!(
                "the schema of PostgreSQL migrations is known only by running them on a server, and none was given; set {CHECK_SERVER}=postgres://USER@HOST/postgres (a role that may CREATE DATABASE: the migrations run in a scratch database that is dropped afterwards), or pass --database URL to print a live database's schema"
            ),
        },
    };
    let config = url
        .parse::<Config>()
        .map_err(|e| anyhow!("{from}: the URL is not a valid PostgreSQL URL: {e}"))?;
    Ok((config, from))
}

/// `SET search_path TO "app", public;` for a package with a `schema`: the
/// generated SQL names objects unqualified, as migrations do, and the
/// runtime puts the schema first in `search_path` while migrations run.
fn search_path(schema: Option<&str>) -> Option<String> {
    schema.map(|s| {
        format!(
            "SET search_path TO {}, public;",
            migrate_runtime::model::quote_postgres(s)
        )
    })
}

/// A runtime error of a replay, with what to do when the scratch database
/// could not be made.
pub(super) fn replay_error(e: migrate_runtime::Error, from: &str, project: Option<&Project<'_>>) -> anyhow::Error {
    match e {
        migrate_runtime::Error::Postgres { ref doing, ref cause }
            if doing.starts_with("creating the scratch database") =>
        {
            let why = cause.as_db_error().map_or_else(
                || cause.to_string(),
                |d| format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            );
            anyhow!(
                "{doing}: {why}; the migrations are replayed in a scratch database on {from}, which needs a role that may CREATE DATABASE: grant it (ALTER ROLE … CREATEDB), or set {CHECK_SERVER} to a server where you may{}",
                if project.is_some() {
                    "; nothing was compared"
                } else {
                    ""
                }
            )
        }
        e => match project {
            Some(project) => cannot_compare(e, project),
            None => e.into(),
        },
    }
}

/// `diff` on a PostgreSQL database.
pub(super) fn diff(project: &Project<'_>, args: &DiffArgs) -> Result<ExitCode> {
    let url = project.database.postgres_url().unwrap_or_default();
    let (server, from) = replay_server(Some(url))?;
    let mut client = project.database.connect()?;
    let migrator = project.migrator(None).ignore(&project.package.config.ignore);
    let filter = filter(project.package)?;
    let diff = migrator
        .schema_diff_postgres(&mut client, &server, &filter)
        .map_err(|e| replay_error(e, &from, Some(project)))?;
    if let Some(name) = &args.emit {
        return emit(project, &migrator, client, &server, &diff, name, args);
    }
    if args.sql {
        return sql(project, &diff, args.allow_drop);
    }
    print(project, &diff, args)
}

/// For `status`: the differences, when `MIGRATE_CHECK_DATABASE_URL` names
/// a server to replay the history on (a read-only command does not create
/// databases on the database's own server) and the database can be
/// compared; `None` otherwise.
pub(super) fn quiet_drift(project: &Project<'_>) -> Option<Vec<String>> {
    std::env::var(CHECK_SERVER).ok().filter(|u| !u.is_empty())?;
    let (server, _) = replay_server(None).ok()?;
    let mut client = project.database.connect().ok()?;
    let migrator = project.migrator(None).ignore(&project.package.config.ignore);
    let diff = migrator
        .schema_diff_postgres(&mut client, &server, &filter(project.package).ok()?)
        .ok()?;
    Some(
        super::drift::sorted(&diff.differences)
            .iter()
            .map(ToString::to_string)
            .collect(),
    )
}

fn sql(project: &Project<'_>, diff: &SchemaDiff, allow_drop: bool) -> Result<ExitCode> {
    let script = pgsqlgen::transform(&diff.actual, &diff.expected, allow_drop);
    let db = project.database.shown();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "-- SQL that brings {db} back to the schema of its applied migrations {}.",
        at(project, diff)
    )?;
    writeln!(
        out,
        "-- Written by `cargo migrate diff --sql`; nothing was run. Review it, back the database up, then run it:\n\
         -- `psql --single-transaction -v ON_ERROR_STOP=1 -f this.sql URL` (all or nothing)."
    )?;
    if !script.sql.is_empty() {
        if let Some(set) = search_path(project.package.config.schema.as_deref()) {
            writeln!(out, "\n{set}")?;
        }
        writeln!(out, "\n{}", script.sql.trim_end())?;
    }
    out.flush()?;
    Ok(undo_printed(&db, diff, &script))
}

/// The model of a scratch database with `versions` applied and `sql` run.
fn replay_with(
    migrator: &Migrator<'_>,
    server: &Config,
    versions: &[u64],
    filter: &Filter,
    schema: Option<&str>,
    scripts: &[&str],
) -> Result<Vec<Model>> {
    let mut scratch = migrator.replay_postgres(server, versions)?;
    if let Some(set) = search_path(schema) {
        // As the runtime runs migrations: the schema first in search_path.
        scratch.client().batch_execute(&set)?;
    }
    let mut models = Vec::new();
    for sql in scripts {
        scratch.client().batch_execute(sql).map_err(|e| {
            anyhow!(
                "{}; nothing was written. This is a bug of cargo migrate: please report it with the output of `cargo migrate diff`",
                migrate_runtime::Error::Postgres {
                    doing: "running the migration --emit would write on a replay of the applied migrations".to_owned(),
                    cause: e,
                }
            )
        })?;
        models.push(Model::read_postgres(scratch.client(), schema, filter)?);
    }
    Ok(models)
}

#[allow(clippy::too_many_lines)]
fn emit(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    client: Client,
    server: &Config,
    diff: &SchemaDiff,
    raw_name: &str,
    args: &DiffArgs,
) -> Result<ExitCode> {
    let package = project.package;
    let db = project.database.shown();
    let mut client = client;
    let status = migrator.status_postgres(&mut client)?;
    let Some(name) = emit_name(project, diff, raw_name, &status)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let versions = applied(&status);
    let up = pgsqlgen::transform(&diff.expected, &diff.actual, args.allow_drop);
    if up.statements == 0 {
        bail!(
            "every difference is a drop ({}), held back; a migration with nothing but comments would change nothing. Pass --allow-drop to write the drops; nothing was written",
            up.held.join("; ")
        );
    }
    let filter = filter(package)?;
    // Verify by replay: applied migrations + up = the live schema (but
    // what is held back); + down = the migrations' schema again.
    let after_up = replay_with(
        migrator,
        server,
        &versions,
        &filter,
        package.config.schema.as_deref(),
        &[&up.sql],
    )?
    .pop()
    .context("the replay read no schema")?;
    let left: Vec<String> = after_up
        .diff(&diff.actual)
        .iter()
        .map(ToString::to_string)
        .filter(|d| !up.held.contains(d))
        .collect();
    if !left.is_empty() {
        bail!(
            "the migration --emit would write does not make the schema of {db} exactly (the replay still differs: {}); nothing was written. Write this migration by hand (`cargo migrate diff --sql` shows the way back)",
            left.join("; ")
        );
    }
    let down = pgsqlgen::transform(&after_up, &diff.expected, true);
    let models = replay_with(
        migrator,
        server,
        &versions,
        &filter,
        package.config.schema.as_deref(),
        &[&up.sql, &down.sql],
    )?;
    let undone = diff.expected.diff(&models[1]);
    if !undone.is_empty() {
        bail!(
            "the down script --emit would write does not restore the migrations' schema ({}); nothing was written",
            undone.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        );
    }

    write_and_record(
        project,
        &name,
        diff,
        &up,
        &down.sql,
        || write_snapshot(package, Some(server)).map(drop),
        |version| record(project, migrator, &mut client, diff, version, &filter, args),
    )
}

/// The build's own check of the directory with the new files, then the
/// tracking row, once the database is seen to be still what was compared:
/// through the runtime, with a stand-in of the new migration whose SQL is a
/// no-op (the database has its changes already). The runtime then records
/// the live schema with it, for the start-up check.
fn record(
    project: &Project<'_>,
    migrator: &Migrator<'_>,
    client: &mut Client,
    diff: &SchemaDiff,
    version: u64,
    filter: &Filter,
    args: &DiffArgs,
) -> Result<()> {
    let package = project.package;
    let written = super::diff::emitted(project, version)?;
    let now = Model::read_postgres(client, package.config.schema.as_deref(), filter)?;
    if now != diff.actual {
        bail!(
            "the database {} changed while the migration was being written; run `cargo migrate diff` again",
            project.database.shown()
        );
    }
    let name: &'static str = String::leak(written.name().to_owned());
    let file: &'static str = String::leak(written.up().file().to_owned());
    let stand_in = Migration::__from_static(
        version,
        name,
        Script::__from_static("SELECT 1;", file, false),
        None,
        written.checksum(),
    );
    let mut all: Vec<Migration> = migrator.migrations().to_vec();
    all.push(stand_in);
    let mut recorder = Migrator::new(&all)
        .table(&package.config.table)
        .ignore(&package.config.ignore)
        // Warn (unobserved), not Off: the drift it sees is what the new
        // migration adopts, and a policy other than Off records the schema.
        .drift(DriftPolicy::Warn)
        .lock_timeout(std::time::Duration::from_secs(args.lock_timeout));
    if let Some(schema) = &package.config.schema {
        recorder = recorder.schema(schema);
    }
    if let Some(lock) = package.config.lock {
        recorder = recorder.lock(lock);
    }
    recorder
        .migrate_to_postgres(client, version)
        .map_err(|e| super::runtime_error(e, project))?;
    Ok(())
}

/// The schema the package's migrations make, replayed on the replay
/// server ([`replay_server`], with `database` when no check server is
/// set); and what it is, for the status line.
pub(super) fn schema_after_migrations(package: &Package, database: Option<&str>) -> Result<(Model, String)> {
    let (server, from) = replay_server(database)?;
    replayed(package, &server, &from)
}

fn replayed(package: &Package, server: &Config, from: &str) -> Result<(Model, String)> {
    let found = crate::migrations::load(package)?;
    let all: Vec<Migration> = crate::migrations::to_runtime(&found);
    let versions: Vec<u64> = all.iter().map(Migration::version).collect();
    let mut migrator = Migrator::new(&all).table(&package.config.table);
    if let Some(schema) = &package.config.schema {
        migrator = migrator.schema(schema);
    }
    let filter = filter(package)?;
    let mut scratch: ScratchDatabase = migrator
        .replay_postgres(server, &versions)
        .map_err(|e| replay_error(e, from, None))?;
    let model = Model::read_postgres(scratch.client(), package.config.schema.as_deref(), &filter)?;
    let what = match all.last() {
        Some(m) => format!("{}, replayed on {from}", super::schema::after_last(package, Some(m))),
        None => super::schema::after_last(package, None),
    };
    Ok((model, what))
}

/// Writes the PostgreSQL schema snapshot (the text the build compares it
/// with when `MIGRATE_CHECK_DATABASE_URL` is set), replayed on `server`,
/// else on the replay server of the config's `database`.
pub(super) fn write_snapshot(package: &Package, server: Option<&Config>) -> Result<std::path::PathBuf> {
    let Some(path) = migrate_build::snapshot_path(&package.dir, &package.config) else {
        bail!("no snapshot configured (help: set snapshot = \"migrations/schema.sql\" in [package.metadata.migrate])");
    };
    let (model, _) = match server {
        Some(server) => replayed(package, server, "the database's server")?,
        None => schema_after_migrations(package, package.config.database.as_deref())?,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", show(parent)))?;
    }
    std::fs::write(&path, model.postgres_sql()).with_context(|| format!("cannot write {}", show(&path)))?;
    Ok(path)
}
