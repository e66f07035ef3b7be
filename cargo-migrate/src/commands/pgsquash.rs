//! `squash --to N` on PostgreSQL: migrations 1..=N replayed in a scratch
//! database on a server (`MIGRATE_CHECK_DATABASE_URL`, else `--database`,
//! `DATABASE_URL` or the config's `database`), the baseline written from
//! the schema model of that replay ([`Model::postgres_sql`], as `cargo
//! migrate schema` prints it), then checked: replayed in another scratch
//! database, alone and with the later migrations, it must give the same
//! schema model, and the same catalog inventory.
//!
//! The inventory is what keeps a squash from losing what the model does
//! not cover: every object a migration made (`pg_describe_object` of each
//! user object the catalog's `pg_depend` knows, schemas, extensions, event
//! triggers, publications) with the properties the model leaves out
//! (comments, privileges, `UNLOGGED`, row level security, storage options,
//! partitions and inheritance, constraint and index definitions, sequence
//! settings). An object of a kind the baseline cannot write (an aggregate,
//! a table in another schema, a privilege…) is missing from the baseline's
//! replay, and the squash is refused naming it. Extensions the
//! migrations created are created first by the baseline (`CREATE
//! EXTENSION IF NOT EXISTS … WITH SCHEMA …`): their objects are theirs.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::model::{Filter, Model, quote_postgres as quote};
use migrate_runtime::postgres::{Client, Config};
use migrate_runtime::{Migration, Migrator, ScratchDatabase};

use super::pgdrift::replay_server;
use crate::database::{Database, Source};
use crate::package::Package;
use crate::settings::Settings;

/// Objects a migration made: oids at or above PostgreSQL's
/// `FirstNormalObjectId` (16384, `src/include/access/transam.h`), but the
/// members of extensions (which the extension names), and the internal
/// triggers of foreign keys and TOAST tables (named after oids).
const OBJECTS: &str = "\
WITH ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'), \
objs AS ( \
  SELECT classid, objid FROM pg_depend WHERE objid >= 16384 \
  UNION SELECT refclassid, refobjid FROM pg_depend WHERE refobjid >= 16384 \
  UNION SELECT 'pg_namespace'::regclass::oid, oid FROM pg_namespace WHERE oid >= 16384 \
  UNION SELECT 'pg_extension'::regclass::oid, oid FROM pg_extension WHERE oid >= 16384 \
  UNION SELECT 'pg_event_trigger'::regclass::oid, oid FROM pg_event_trigger \
  UNION SELECT 'pg_publication'::regclass::oid, oid FROM pg_publication) \
SELECT pg_describe_object(o.classid, o.objid, 0) FROM objs o \
WHERE (o.classid, o.objid) NOT IN (SELECT classid, objid FROM ext) \
  AND o.objid NOT IN (SELECT oid FROM pg_trigger WHERE tgisinternal) \
  AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN ext e ON e.classid = d.refclassid AND e.objid = d.refobjid \
                  WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype IN ('i', 'a'))";

/// The properties of those objects that the schema model leaves out (or
/// that tell two objects of one name apart), one line each.
const PROPERTIES: &[&str] = &[
    "SELECT 'comment on ' || pg_describe_object(classoid, objoid, objsubid) || ': ' || description \
     FROM pg_description WHERE objoid >= 16384",
    "SELECT pg_describe_object('pg_constraint'::regclass, oid, 0) || ' is ' || pg_get_constraintdef(oid) \
     FROM pg_constraint WHERE oid >= 16384",
    "SELECT pg_describe_object('pg_class'::regclass, indexrelid, 0) || ' is ' || pg_get_indexdef(indexrelid) \
     FROM pg_index WHERE indexrelid >= 16384",
    "SELECT pg_describe_object('pg_trigger'::regclass, oid, 0) || ' is ' || pg_get_triggerdef(oid) || ' enabled ' || tgenabled::text \
     FROM pg_trigger WHERE oid >= 16384 AND NOT tgisinternal",
    "SELECT pg_describe_object('pg_class'::regclass, c.oid, 0) || ' has ' || x FROM pg_class c, LATERAL (SELECT concat_ws(', ', \
       CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED' END, \
       CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END, \
       CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END, \
       CASE WHEN c.relkind IN ('r', 'p') AND c.relreplident <> 'd' THEN 'REPLICA IDENTITY ' || c.relreplident::text END, \
       CASE WHEN c.reloptions IS NOT NULL THEN 'WITH ' || c.reloptions::text END, \
       CASE WHEN c.relacl IS NOT NULL THEN 'privileges ' || c.relacl::text END, \
       CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END, \
       CASE WHEN c.relispartition THEN 'partition ' || pg_get_expr(c.relpartbound, c.oid) END) AS x) p \
     WHERE c.oid >= 16384 AND x <> ''",
    "SELECT pg_describe_object('pg_class'::regclass, attrelid, attnum) || ' has privileges ' || attacl::text \
     FROM pg_attribute WHERE attrelid >= 16384 AND attacl IS NOT NULL",
    "SELECT pg_describe_object('pg_class'::regclass, inhrelid, 0) || ' inherits from ' || pg_describe_object('pg_class'::regclass, inhparent, 0) \
     FROM pg_inherits WHERE inhrelid >= 16384",
    "SELECT pg_describe_object('pg_class'::regclass, seqrelid, 0) || ' counts ' || concat_ws(' ', format_type(seqtypid, NULL), \
       'start', seqstart, 'by', seqincrement, 'from', seqmin, 'to', seqmax, 'cache', seqcache, CASE WHEN seqcycle THEN 'cycle' END) \
     FROM pg_sequence WHERE seqrelid >= 16384",
    "SELECT pg_describe_object('pg_proc'::regclass, oid, 0) || ' has privileges ' || proacl::text FROM pg_proc WHERE oid >= 16384 AND proacl IS NOT NULL",
    "SELECT pg_describe_object('pg_type'::regclass, oid, 0) || ' has privileges ' || typacl::text FROM pg_type WHERE oid >= 16384 AND typacl IS NOT NULL",
    "SELECT pg_describe_object('pg_namespace'::regclass, oid, 0) || ' has privileges ' || nspacl::text FROM pg_namespace WHERE oid >= 16384 AND nspacl IS NOT NULL",
];

/// Every object of the database that a migration made, and the
/// properties the model leaves out, one line each (TOAST tables aside:
/// their names hold oids).
fn inventory(client: &mut Client) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for sql in std::iter::once(OBJECTS).chain(PROPERTIES.iter().copied()) {
        let rows = client.query(sql, &[]).map_err(catalog_error)?;
        for row in rows {
            let line: Option<String> = row.get(0);
            if let Some(line) = line.filter(|l| !l.contains("pg_toast")) {
                out.insert(line);
            }
        }
    }
    Ok(out)
}

/// The extensions of a database, as (name, schema), and the schemas made
/// after `initdb` (oid at or above 16384), as ("", name).
fn extensions_and_schemas(client: &mut Client) -> Result<BTreeSet<(String, String)>> {
    let rows = client
        .query(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
             UNION ALL SELECT '', nspname::text FROM pg_namespace WHERE oid >= 16384",
            &[],
        )
        .map_err(catalog_error)?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What the replay `before` made beyond an empty database (`empty`, from
/// the same template): the `CREATE EXTENSION` statements the baseline
/// starts with (an extension's objects are its own, not the model's), or
/// the refusal naming the schemas other than the package's (the baseline
/// holds one schema), which would otherwise make it fail to run at all.
fn extensions_sql(
    before: &mut Client,
    empty: &mut Client,
    schema: &str,
) -> Result<std::result::Result<String, Vec<String>>> {
    let template = extensions_and_schemas(empty)?;
    let made: Vec<(String, String)> = extensions_and_schemas(before)?.difference(&template).cloned().collect();
    let elsewhere: Vec<String> = made
        .iter()
        .filter(|(extension, nsp)| extension.is_empty() && nsp != schema)
        .map(|(_, nsp)| format!("schema {nsp}"))
        .collect();
    if !elsewhere.is_empty() {
        return Ok(Err(elsewhere));
    }
    let mut sql = String::new();
    for (extension, nsp) in made.iter().filter(|(e, _)| !e.is_empty()) {
        sql.push_str(&format!(
            "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n\n",
            quote(extension),
            quote(nsp)
        ));
    }
    Ok(Ok(sql))
}

fn catalog_error(e: migrate_runtime::postgres::Error) -> anyhow::Error {
    anyhow!(
        "{}",
        migrate_runtime::Error::Postgres {
            doing: "reading the scratch database's catalog".to_owned(),
            cause: e,
        }
    )
}

/// The refusal when the baseline would lose something.
fn refusal(n: u64, lost: &[String], shown: &str) -> anyhow::Error {
    const SHOWN: usize = 12;
    let list: Vec<&str> = lost.iter().take(SHOWN).map(String::as_str).collect();
    let more = lost.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    anyhow!(
        "migrations 1 to {n} make what {shown} cannot hold on PostgreSQL: {}{tail}. The baseline is written from the schema model (extensions, tables, columns, indexes, constraints, views, triggers, functions and procedures, enum and domain types, collations, sequences, comments, row-level security and policies, partitions, in the package's schema), and squashing would lose the rest, so nothing was changed. Squash to a version before the migration that makes it, or keep these migrations",
        list.join(", ")
    )
}

/// The server to replay on: `MIGRATE_CHECK_DATABASE_URL`, else the
/// PostgreSQL URL of `--database`, `DATABASE_URL` or the config's
/// `database`.
fn server(settings: &Settings) -> Result<(Config, String)> {
    let package = &settings.package;
    let flag = match &settings.database_flag {
        Some(url) => Database::parse(url, Source::Flag, &settings.cwd)?
            .postgres_url()
            .map(str::to_owned),
        None => None,
    };
    let url = flag
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .or_else(|| package.config.database.clone())
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let check = std::env::var("MIGRATE_CHECK_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    if url.is_none() && !check {
        bail!("{}", no_server());
    }
    replay_server(url.as_deref())
}

fn no_server() -> String {
    "squashing PostgreSQL migrations replays them on a server, and none was given; pass --database postgres://USER@HOST/DB or set MIGRATE_CHECK_DATABASE_URL=postgres://USER@HOST/postgres (a role that may CREATE DATABASE: the replays run in scratch databases that are dropped afterwards). Nothing was changed".to_owned()
}

/// The runner the replays use: the package's table, schema and lock.
fn migrator<'m>(package: &Package, migrations: &'m [Migration]) -> Migrator<'m> {
    let mut migrator = Migrator::new(migrations).table(&package.config.table);
    if let Some(schema) = &package.config.schema {
        migrator = migrator.schema(schema);
    }
    if let Some(lock) = package.config.lock {
        migrator = migrator.lock(lock);
    }
    migrator
}

/// One replay: its model and inventory.
struct Replayed {
    scratch: ScratchDatabase,
    model: Model,
    inventory: BTreeSet<String>,
}

fn replayed(
    package: &Package,
    migrations: &[Migration],
    to: u64,
    server: &Config,
    filter: &Filter,
    failed: impl FnOnce(migrate_runtime::Error) -> anyhow::Error,
) -> Result<Replayed> {
    let versions: Vec<u64> = migrations.iter().map(Migration::version).filter(|v| *v <= to).collect();
    let mut scratch = migrator(package, migrations)
        .replay_postgres(server, &versions)
        .map_err(failed)?;
    let model = Model::read_postgres(scratch.client(), package.config.schema.as_deref(), filter)?;
    let inventory = inventory(scratch.client())?;
    Ok(Replayed {
        scratch,
        model,
        inventory,
    })
}

/// The baseline's text (`text` of the schema's SQL) for migrations
/// `runtime[..=last]`, checked, and the tables that hold rows after them.
pub(super) fn baseline(
    settings: &Settings,
    runtime: &[Migration],
    last: usize,
    shown: &str,
    text: impl Fn(&str) -> String,
) -> Result<(String, Vec<String>)> {
    let package = &settings.package;
    let schema = package.config.schema.as_deref();
    let n = runtime[last].version();
    let (server, from) = server(settings)?;
    let filter = Filter::new(&package.config.table);
    let mut before = replayed(package, runtime, n, &server, &filter, |e| {
        anyhow!("cannot replay migrations 1 to {n} on {from} (run `cargo migrate check`): {e}; nothing was changed")
    })?;
    let mut empty = ScratchDatabase::create(&server, "migrate_replay_")?;
    let target = match schema {
        Some(s) => s.to_owned(),
        None => before
            .scratch
            .client()
            .query_one("SELECT coalesce(current_schema(), 'public')::text", &[])
            .map_err(catalog_error)?
            .get(0),
    };
    let extensions = match extensions_sql(before.scratch.client(), empty.client(), &target)? {
        Ok(sql) => sql,
        Err(elsewhere) => return Err(refusal(n, &elsewhere, shown)),
    };
    drop(empty);
    let text = text(&format!("{extensions}{}", before.model.postgres_sql()));
    let squashed = super::squash::squashed(runtime, last, &text, shown);
    let alone = replayed(package, &squashed, n, &server, &filter, |e| {
        anyhow!(
            "the baseline written from the schema model does not run on PostgreSQL ({e}); migrations 1 to {n} make something it cannot write, or this is a bug of `cargo migrate squash`. Nothing was changed"
        )
    })?;
    same(n, shown, &before, &alone, &format!("of migrations 1 to {n}"))?;
    let newest = runtime.last().map_or(n, Migration::version);
    if newest > n {
        let all = replayed(package, runtime, newest, &server, &filter, |e| {
            anyhow!("cannot replay every migration on {from} (run `cargo migrate check`): {e}; nothing was changed")
        })?;
        let on_top = replayed(package, &squashed, newest, &server, &filter, |e| {
            anyhow!("the migrations after {n} do not run on the baseline ({e}); nothing was changed")
        })?;
        same(n, shown, &all, &on_top, "of every migration")?;
    }
    let rows = tables_with_rows(before.scratch.client(), &before.model, schema);
    Ok((text, rows))
}

/// Refuses a baseline whose replay differs from the migrations'.
fn same(n: u64, shown: &str, expected: &Replayed, actual: &Replayed, what: &str) -> Result<()> {
    let mut differences: Vec<String> = expected
        .model
        .diff(&actual.model)
        .iter()
        .map(ToString::to_string)
        .collect();
    if differences.is_empty() {
        let lost: Vec<String> = expected.inventory.difference(&actual.inventory).cloned().collect();
        if !lost.is_empty() {
            return Err(refusal(n, &lost, shown));
        }
        differences.extend(
            actual
                .inventory
                .difference(&expected.inventory)
                .map(|line| format!("{line} (only in the baseline)")),
        );
    }
    if !differences.is_empty() {
        bail!(
            "the baseline would not give the schema {what} ({}); this is a bug in `cargo migrate squash`: nothing was changed",
            differences.join("; ")
        );
    }
    Ok(())
}

/// The tables that hold rows after the replay.
fn tables_with_rows(client: &mut Client, model: &Model, schema: Option<&str>) -> Vec<String> {
    let prefix = schema.map(|s| format!("{}.", quote(s))).unwrap_or_default();
    model
        .tables
        .values()
        .filter(|t| {
            client
                .query_one(
                    &format!("SELECT EXISTS (SELECT 1 FROM {prefix}{})", quote(&t.name)),
                    &[],
                )
                .is_ok_and(|r| r.get::<_, bool>(0))
        })
        .map(|t| t.name.clone())
        .collect()
}
