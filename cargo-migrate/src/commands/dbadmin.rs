//! `database create|drop|reset`: the database itself, on both backends, as
//! sqlx-cli's `sqlx database …` does. SQLite: the file (and its journal);
//! PostgreSQL: `CREATE DATABASE` / `DROP DATABASE` through the server's
//! maintenance database.
//!
//! Dropping destroys every row, so it refuses what it cannot verify: a file
//! that is not an SQLite database, a file another process has open for
//! writing, and (without `--force`) a PostgreSQL server that is not on this
//! machine.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_runtime::postgres::Client;
use migrate_runtime::postgres::config::Host;
use migrate_runtime::rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::cli::{DatabaseAction, DatabaseArgs, UpArgs};
use crate::database::{Database, Location, Mode, PgConfig};
use crate::messages::say;
use crate::settings::Settings;

/// How long `drop` waits for another process's write to the SQLite file.
const DROP_WAIT: Duration = Duration::from_secs(5);

/// Runs `database ACTION`.
pub fn run(settings: &Settings, args: &DatabaseArgs) -> Result<()> {
    let database = settings.database()?;
    match &args.action {
        DatabaseAction::Create => create(database),
        DatabaseAction::Drop(drop) => drop_database(database, drop.force),
        DatabaseAction::Reset(reset) => {
            drop_database(database, reset.force)?;
            create(database)?;
            super::apply::up(
                settings,
                &UpArgs {
                    to: None,
                    dry_run: false,
                    contract: false,
                    run: reset.run.clone(),
                },
            )
        }
    }
}

fn create(database: &Database) -> Result<()> {
    match &database.location {
        Location::Memory => Err(memory_error("create")),
        Location::File(path) => {
            if path.exists() {
                // Opening checks that it is an SQLite database.
                database.open(Mode::ReadOnly, DROP_WAIT)?;
                say!("the database file {} already exists; nothing to do", database.shown());
                return Ok(());
            }
            database.open(Mode::Create, DROP_WAIT)?;
            say!("created the database file {}", database.shown());
            Ok(())
        }
        Location::Postgres(_) => {
            let (config, name) = postgres_target(database)?;
            let mut admin = admin(database, &config, &name)?;
            if exists(&mut admin, &name)? {
                say!("the database `{name}` already exists on the server; nothing to do");
                return Ok(());
            }
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote(&name)))
                .map_err(|e| server_error(&e, &format!("cannot create the database `{name}`")))?;
            say!("created the database `{name}` ({})", database.shown());
            Ok(())
        }
    }
}

fn drop_database(database: &Database, force: bool) -> Result<()> {
    match &database.location {
        Location::Memory => Err(memory_error("drop")),
        Location::File(path) => drop_file(database, path),
        Location::Postgres(_) => {
            let (config, name) = postgres_target(database)?;
            if !force && let Some(host) = remote_host(&config) {
                bail!(
                    "refusing to drop the database `{name}` on {host}, a server that is not this machine: every row in it would be lost; if that is what you want, run it again with --force"
                );
            }
            let mut admin = admin(database, &config, &name)?;
            if !exists(&mut admin, &name)? {
                say!("the database `{name}` does not exist on the server; nothing to drop");
                return Ok(());
            }
            let with = if force { " WITH (FORCE)" } else { "" };
            admin
                .batch_execute(&format!("DROP DATABASE {}{with}", quote(&name)))
                .map_err(|e| {
                    if e.as_db_error().is_some_and(|d| d.code().code() == "55006") {
                        anyhow!(
                            "cannot drop the database `{name}`: other sessions are connected to it (an app, psql, a pool); stop them, or run it again with --force to end them; nothing was dropped"
                        )
                    } else {
                        server_error(&e, &format!("cannot drop the database `{name}`"))
                    }
                })?;
            say!("dropped the database `{name}` ({})", database.shown());
            Ok(())
        }
    }
}

/// Deletes an SQLite database file and its journal, WAL and shared-memory
/// files, after checking that it is a database no one is writing.
fn drop_file(database: &Database, path: &Path) -> Result<()> {
    if !path.exists() {
        say!("the database file {} does not exist; nothing to drop", database.shown());
        return Ok(());
    }
    // Opening checks that it is an SQLite database (and not a directory
    // or some other file given by mistake).
    let opened = database
        .open(Mode::ReadWrite, DROP_WAIT)?
        .ok_or_else(|| anyhow!("the database file {} disappeared", database.shown()))?;
    let mut conn: Connection = opened.conn;
    match conn.transaction_with_behavior(TransactionBehavior::Exclusive) {
        Ok(tx) => tx.rollback()?,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            bail!(
                "cannot drop the database {}: another process has it open and is writing to it (an app, `cargo migrate up`); stop it and run this again; nothing was deleted",
                database.shown()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot lock the database {}", database.shown())),
    }
    drop(conn);
    let mut removed = Vec::new();
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        match std::fs::remove_file(file) {
            Ok(()) => removed.push(crate::package::show(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!(
                "cannot delete {}: {e}; check the permissions of the file and its directory",
                crate::package::show(file)
            ),
        }
    }
    say!("dropped the database: deleted {}", removed.join(", "));
    Ok(())
}

fn memory_error(action: &str) -> anyhow::Error {
    anyhow!(
        "cannot {action} `sqlite::memory:`: an in-memory database lives only as long as one command; give a file (--database sqlite:app.db)"
    )
}

/// The connection settings and the name of the database to create or
/// drop.
fn postgres_target(database: &Database) -> Result<(PgConfig, String)> {
    let config = database.postgres_config()?;
    let name = config.config.get_dbname().map(str::to_owned).ok_or_else(|| {
        anyhow!(
            "the database URL `{}` names no database; write postgres://USER@HOST/DATABASE",
            database.shown()
        )
    })?;
    Ok((config, name))
}

/// A connection to the server's maintenance database (`postgres`, else
/// `template1`, as `createdb` does), never to `name` itself.
fn admin(database: &Database, config: &PgConfig, name: &str) -> Result<Client> {
    let mut tried = Vec::new();
    for maintenance in ["postgres", "template1"].into_iter().filter(|m| *m != name) {
        let mut admin = config.clone();
        admin.config.dbname(maintenance);
        match database.connect_with(&admin) {
            Ok(client) => return Ok(client),
            Err(e) => tried.push(e),
        }
    }
    Err(tried
        .into_iter()
        .next()
        .unwrap_or_else(|| anyhow!("no maintenance database to connect to")))
}

fn exists(admin: &mut Client, name: &str) -> Result<bool> {
    let row = admin
        .query_opt("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", &[&name])
        .map_err(|e| server_error(&e, "cannot read the server's list of databases"))?;
    Ok(row.is_some())
}

/// The first host of `config` that is not this machine, as shown in
/// messages; `None` when every host is local (a unix socket, `localhost`,
/// a loopback address).
fn remote_host(config: &PgConfig) -> Option<String> {
    config.config.get_hosts().iter().find_map(|host| match host {
        Host::Unix(_) => None,
        Host::Tcp(name) => {
            let local = name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            (!local).then(|| format!("host `{name}`"))
        }
    })
}

/// A server error as one line: what failed, the server's message, and
/// what to do for the usual causes.
fn server_error(e: &migrate_runtime::postgres::Error, what: &str) -> anyhow::Error {
    let Some(db) = e.as_db_error() else {
        return anyhow!("{what}: {e}; check that the server is still running");
    };
    let hint = match db.code().code() {
        "42501" => {
            "the user needs the CREATEDB privilege (ALTER ROLE … CREATEDB, as a superuser) or to own the database"
        }
        "42P04" => "it exists already",
        _ => "see the server's message",
    };
    anyhow!("{what}: {}; {hint}", db.message())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
