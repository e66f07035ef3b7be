//! `new --recipe`: the numbered migrations of a change that one migration
//! cannot make safely, written from the schema after the last migration
//! (SQLite: the in-memory replay `cargo migrate schema` prints; PostgreSQL:
//! the replay in a scratch database on `MIGRATE_CHECK_DATABASE_URL`, else
//! on the server of `--database` / `DATABASE_URL` / the config's
//! `database`; with neither, the recipe refuses, since the committed
//! snapshot is SQL text, not a model).
//!
//! - `add-required-unique-column TABLE COLUMN`: add it nullable, backfill,
//!   unique index, NOT NULL. Duplicates (and NULLs) in the backfill are
//!   found by a guard at the top of the first step, before its `ALTER
//!   TABLE`: applied on a table whose rows would collide, the first step
//!   fails and nothing has changed. On SQLite the NOT NULL step is the
//!   table rebuild of `sqlgen` (the one `diff --emit` writes), from the
//!   schema after the third step to the same schema with the column NOT
//!   NULL; on PostgreSQL, `CREATE UNIQUE INDEX CONCURRENTLY` and a
//!   validated `CHECK` before `SET NOT NULL`, each outside a transaction.
//! - `rename-column TABLE OLD NEW`: an expand (the new column, triggers
//!   that copy what either version of the code writes to the other column,
//!   the backfill) and its contract (the triggers and the old column go).
//!
//! Every error comes before anything is written, and the SQLite steps are
//! run on the replayed schema (up in order, then down in reverse) before
//! they are written.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_build::Backend;
use migrate_build::scan::Kind;
use migrate_runtime::Migrator;
use migrate_runtime::model::{Column, Index, Model, Table, quote_postgres};
use migrate_runtime::rusqlite::Connection;

use super::new::{Planned, create_all, next_version, normalize};
use super::sqlgen::{self, Side, quote};
use crate::cli::{NewArgs, Recipe};
use crate::messages::{note, say};
use crate::package::{Package, show};
use crate::settings::Settings;

/// One migration of a recipe.
struct Step {
    name: String,
    up: String,
    down: String,
}

impl Step {
    fn new(name: String, up: String, down: String) -> Self {
        Self { name, up, down }
    }
}

/// The schema after the last migration.
struct Schema {
    model: Model,
    /// What it is, for messages: "the schema after migration 0005 x (migrations)".
    what: String,
    /// SQLite: replays it (one fresh in-memory database per call).
    replay: Option<Box<dyn Fn() -> Result<Connection>>>,
}

impl Schema {
    fn table(&self, name: &str) -> Result<&Table> {
        if let Some(t) = self.model.tables.get(&name.to_ascii_lowercase()) {
            return Ok(t);
        }
        let names: Vec<&str> = self.model.tables.values().map(|t| t.name.as_str()).collect();
        let tables = if names.is_empty() {
            "it has no tables".to_owned()
        } else {
            format!("its tables are {}", names.join(", "))
        };
        bail!(
            "there is no table `{name}` in {}: {tables}; nothing was written (help: check the name, or write the migration that creates the table first)",
            self.what
        )
    }
}

fn column<'t>(table: &'t Table, name: &str) -> Option<&'t Column> {
    table.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// `new --recipe RECIPE ARGS… [--type T] [--backfill EXPR]`.
pub fn run(settings: &Settings, recipe: Recipe, args: &NewArgs) -> Result<()> {
    let package = &settings.package;
    let words: Vec<&str> = args.name.iter().chain(&args.args).map(String::as_str).collect();
    let (usage, wanted) = match recipe {
        Recipe::AddRequiredUniqueColumn => (
            "cargo migrate new --recipe add-required-unique-column TABLE COLUMN [--type TEXT] [--backfill SQL_EXPR]",
            2,
        ),
        Recipe::RenameColumn => ("cargo migrate new --recipe rename-column TABLE OLD NEW", 3),
    };
    if words.len() != wanted {
        bail!(
            "the recipe takes {wanted} arguments, and {} {} given{}; nothing was written (help: {usage})",
            words.len(),
            if words.len() == 1 { "was" } else { "were" },
            if words.is_empty() {
                String::new()
            } else {
                format!(" ({})", words.join(" "))
            }
        );
    }
    if recipe == Recipe::RenameColumn && (args.column_type.is_some() || args.backfill.is_some()) {
        bail!(
            "--type and --backfill belong to add-required-unique-column; rename-column keeps the old column's type and copies its values; nothing was written (help: {usage})"
        );
    }
    let backend = package.config.backend();
    let schema = if backend == Backend::Postgres {
        postgres_schema(settings)?
    } else {
        sqlite_schema(package)?
    };
    let mut invocation = format!(
        "cargo migrate new --recipe {} {}",
        match recipe {
            Recipe::AddRequiredUniqueColumn => "add-required-unique-column",
            Recipe::RenameColumn => "rename-column",
        },
        words.join(" ")
    );
    if let Some(ty) = &args.column_type {
        let _ = write!(invocation, " --type {ty}");
    }
    if let Some(expr) = &args.backfill {
        let _ = write!(invocation, " --backfill \"{expr}\"");
    }
    let first = next_version(package)?;
    let steps = match recipe {
        Recipe::AddRequiredUniqueColumn => {
            let wanted = AddColumn {
                table: schema.table(words[0])?,
                column: words[1],
                ty: args.column_type.as_deref(),
                backfill: args.backfill.as_deref(),
            };
            if let Some(c) = column(wanted.table, wanted.column) {
                bail!(
                    "table `{}` has a column `{}` already, in {}; nothing was written (help: choose another name, or, to make that column required and unique, write the steps by hand)",
                    wanted.table.name,
                    c.name,
                    schema.what
                );
            }
            add_required_unique_column(package, &schema, &wanted, first, &invocation, backend)?
        }
        Recipe::RenameColumn => {
            let table = schema.table(words[0])?;
            let Some(old) = column(table, words[1]) else {
                let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                bail!(
                    "table `{}` has no column `{}` in {}: its columns are {}; nothing was written (help: check the name)",
                    table.name,
                    words[1],
                    schema.what,
                    names.join(", ")
                );
            };
            if let Some(c) = column(table, words[2]) {
                bail!(
                    "table `{}` has a column `{}` already, in {}; nothing was written (help: choose another new name)",
                    table.name,
                    c.name,
                    schema.what
                );
            }
            rename_column(package, &schema, table, old, words[2], first, &invocation, backend)?
        }
    };
    let planned: Vec<Planned> = steps
        .into_iter()
        .zip(first..)
        .map(|(step, version)| {
            Ok(Planned {
                version,
                name: normalize(&step.name, &package.migrations_dir())?,
                files: vec![(Kind::Up, step.up), (Kind::Down, step.down)],
            })
        })
        .collect::<Result<_>>()?;
    let created = create_all(package, &planned)?;
    let mut out = std::io::stdout().lock();
    for path in &created {
        writeln!(out, "{}", show(path))?;
    }
    out.flush()?;
    drop(out);
    let last = planned.last().map_or(first, |p| p.version);
    say!(
        "created migrations {} to {} from {}: read them, edit what they say to edit, then `cargo migrate check`",
        package.version(first),
        package.version(last),
        schema.what
    );
    Ok(())
}

/// The replayed schema of an SQLite package.
fn sqlite_schema(package: &Package) -> Result<Schema> {
    let found = crate::migrations::load(package)?;
    let all = crate::migrations::to_runtime(&found);
    let what = super::schema::after_last(package, all.last());
    let table = package.config.table.clone();
    let replay = move || -> Result<Connection> {
        let versions: Vec<u64> = all.iter().map(migrate_runtime::Migration::version).collect();
        Ok(Migrator::new(&all).table(&table).replay_versions(&versions)?)
    };
    let conn = replay()?;
    let model = Model::read(&conn, &super::drift::filter(package)?)?;
    Ok(Schema {
        model,
        what,
        replay: Some(Box::new(replay)),
    })
}

/// The schema of a PostgreSQL package, replayed on a server.
fn postgres_schema(settings: &Settings) -> Result<Schema> {
    let package = &settings.package;
    let url = settings
        .database_flag
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
        .or_else(|| package.config.database.clone())
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    if url.is_none() && std::env::var("MIGRATE_CHECK_DATABASE_URL").map_or(true, |u| u.is_empty()) {
        bail!(
            "the recipe reads the table from the schema after the last migration, which for PostgreSQL migrations is known only by replaying them on a server, and none was given; nothing was written (help: set MIGRATE_CHECK_DATABASE_URL=postgres://USER@HOST/postgres, a role that may CREATE DATABASE: the migrations run in a scratch database that is dropped afterwards; or pass --database URL, whose server is used the same way)"
        );
    }
    let (model, what) = super::pgdrift::schema_after_migrations(package, url.as_deref())?;
    Ok(Schema {
        model,
        what,
        replay: None,
    })
}

/// What `add-required-unique-column` was asked for.
struct AddColumn<'a> {
    table: &'a Table,
    column: &'a str,
    ty: Option<&'a str>,
    backfill: Option<&'a str>,
}

/// The column (or `rowid`) that tells the rows apart, quoted, for the
/// default backfill: `None` when the table has a composite primary key.
fn row_key(table: &Table, backend: Backend) -> Option<String> {
    let pk: Vec<&Column> = table.columns.iter().filter(|c| c.primary_key > 0).collect();
    match pk.as_slice() {
        [one] => Some(name(&one.name, backend)),
        [] if backend == Backend::Sqlite && !table.without_rowid => Some("rowid".to_owned()),
        _ => None,
    }
}

fn name(name: &str, backend: Backend) -> String {
    match backend {
        Backend::Postgres => quote_postgres(name),
        _ => quote(name),
    }
}

/// `'…'` with quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `-- text` lines, wrapped at about 76 columns.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("--");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 76 && line.len() > 2 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("--");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A name not used by any table, index, trigger or view of `model`.
fn free_name(model: &Model, wanted: &str) -> String {
    let taken = |n: &str| {
        let k = n.to_ascii_lowercase();
        model.tables.contains_key(&k)
            || model.views.contains_key(&k)
            || model.triggers.contains_key(&k)
            || model
                .tables
                .values()
                .any(|t| t.indexes.keys().any(|i| i.eq_ignore_ascii_case(n)))
    };
    let mut name = wanted.to_owned();
    let mut n = 2;
    while taken(&name) {
        name = format!("{wanted}_{n}");
        n += 1;
    }
    name
}

#[allow(clippy::too_many_lines)]
fn add_required_unique_column(
    package: &Package,
    schema: &Schema,
    wanted: &AddColumn<'_>,
    first: u64,
    invocation: &str,
    backend: Backend,
) -> Result<Vec<Step>> {
    let table = wanted.table;
    let v = |i: u64| package.version(first + i);
    let pg = backend == Backend::Postgres;
    let t = name(&table.name, backend);
    let c = name(wanted.column, backend);
    let ty = wanted.ty.unwrap_or(if pg { "text" } else { "TEXT" });
    let (backfill, placeholder) = match wanted.backfill {
        Some(expr) => (expr.trim().to_owned(), false),
        None => {
            let Some(key) = row_key(table, backend) else {
                bail!(
                    "table `{}` has no single-column primary key to make a placeholder value unique per row from; nothing was written (help: pass --backfill SQL_EXPR, an expression over the table's columns that gives each row its own value)",
                    table.name
                );
            };
            (format!("{} || {key}", literal(&format!("{}-", wanted.column))), true)
        }
    };
    if let Some(replay) = &schema.replay {
        replay()?
            .prepare(&format!("SELECT ({backfill}) FROM {t} LIMIT 0"))
            .map_err(|e| {
                anyhow!(
                    "the backfill expression `{backfill}` does not run on table `{}` in {}: {}; nothing was written (help: an SQL expression over the table's columns that gives each row its own value, e.g. --backfill \"'user-' || id || '@example.invalid'\")",
                    table.name,
                    schema.what,
                    sqlite_message(&e)
                )
            })?;
    }
    let index = free_name(&schema.model, &format!("{}_{}", table.name, wanted.column));
    let ix = name(&index, backend);
    let guard_doc = format!(
        "Guard: before anything changes, stop when the backfill of step {} would give two rows the same value (the unique index of step {} would fail) or a row NULL (the NOT NULL of step {} would), after the earlier steps had changed the table.",
        v(1),
        v(2),
        v(3)
    );
    let edit = if placeholder {
        format!(
            " The expression is a placeholder unique per row: replace it (here, in the guard of step {} and in the down script) with the real values, or run the recipe again with --backfill.",
            v(0)
        )
    } else {
        String::new()
    };
    let header = |i: u64, what: &str| comment(&format!("Step {} of 4 of `{invocation}`: {what}", i + 1));
    let dup_msg = format!(
        "two rows of {} would get the same {}: make the backfill expression of step {} unique per row, or fix those rows, then apply again; nothing was changed",
        table.name,
        wanted.column,
        v(1)
    );
    let null_msg = format!(
        "the backfill expression of step {} gives NULL for a row of {}: make it give every row a value, then apply again; nothing was changed",
        v(1),
        table.name
    );
    // Step 1: the guard, then the nullable column.
    let mut up1 = header(0, "add the column, nullable, so old and new code both work.");
    up1.push_str(&comment(&guard_doc));
    if pg {
        up1.push_str(&lock_timeout(false));
        // A DO block can raise an error with a message of its own
        // (PostgreSQL docs, "DO" and PL/pgSQL "Errors and Messages").
        let _ = write!(
            up1,
            "DO $guard$\nDECLARE\n    shared bigint;\n    missing bigint;\nBEGIN\n    \
             SELECT count(*) INTO shared FROM (SELECT 1 FROM {t} GROUP BY ({backfill}) HAVING count(*) > 1) AS d;\n    \
             SELECT count(*) INTO missing FROM {t} WHERE ({backfill}) IS NULL;\n    \
             IF shared > 0 THEN\n        RAISE EXCEPTION '%', {} USING DETAIL = shared || ' values would be shared';\n    END IF;\n    \
             IF missing > 0 THEN\n        RAISE EXCEPTION '%', {} USING DETAIL = missing || ' rows would get NULL';\n    END IF;\n\
             END\n$guard$;\n",
            literal(&dup_msg),
            literal(&null_msg)
        );
    } else {
        // SQLite has no statement that raises an error outside a trigger;
        // a CHECK constraint whose name is the message does (SQLite says
        // "CHECK constraint failed: <name>"). TEMP: nothing is left in the
        // schema, and the table goes with the transaction.
        let _ = write!(
            up1,
            "CREATE TEMP TABLE migrate_recipe_guard (\n    \
             duplicates INTEGER CONSTRAINT {} CHECK (duplicates = 0),\n    \
             nulls INTEGER CONSTRAINT {} CHECK (nulls = 0)\n);\n\
             INSERT INTO temp.migrate_recipe_guard (duplicates, nulls)\nSELECT\n    \
             (SELECT count(*) FROM (SELECT 1 FROM {t} GROUP BY ({backfill}) HAVING count(*) > 1)),\n    \
             (SELECT count(*) FROM {t} WHERE ({backfill}) IS NULL);\n\
             DROP TABLE temp.migrate_recipe_guard;\n",
            quote_always(&dup_msg),
            quote_always(&null_msg)
        );
    }
    let _ = writeln!(up1, "ALTER TABLE {t} ADD COLUMN {c} {ty};");
    let down1 = format!("ALTER TABLE {t} DROP COLUMN {c};\n");
    // Step 2: the backfill.
    let mut up2 = header(1, "give every existing row a value.");
    up2.push_str(&comment(&format!(
        "Only rows without one: values that new code wrote since step {} stay.{edit}",
        v(0)
    )));
    let _ = writeln!(up2, "UPDATE {t}\nSET {c} = {backfill}\nWHERE {c} IS NULL;");
    let mut down2 = comment("Undo only what the backfill wrote; values written since stay.");
    let _ = writeln!(down2, "UPDATE {t}\nSET {c} = NULL\nWHERE {c} = {backfill};");
    // Step 3: the unique index.
    let mut up3 = String::new();
    let mut down3 = String::new();
    if pg {
        up3.push_str("-- migrate:no-transaction\n");
        down3.push_str("-- migrate:no-transaction\n");
    }
    let _ = writeln!(
        up3,
        "-- migrate:allow MS004 the guard of step {} checked that the backfill of step {} gives every row its own value",
        v(0),
        v(1)
    );
    up3.push_str(&header(2, "make the column unique."));
    up3.push_str(&comment(
        "Fails, and changes nothing, if two rows share a value (written since the backfill): fix the data first.",
    ));
    if pg {
        up3.push_str(&comment(
            "CONCURRENTLY builds the index without blocking writes, and cannot run in a transaction (PostgreSQL docs, CREATE INDEX, \"Building Indexes Concurrently\"). A failed build leaves an INVALID index behind: the DROP makes this script safe to run again.",
        ));
        let _ = writeln!(
            up3,
            "DROP INDEX CONCURRENTLY IF EXISTS {ix};\nCREATE UNIQUE INDEX CONCURRENTLY {ix} ON {t} ({c});"
        );
        let _ = writeln!(down3, "DROP INDEX CONCURRENTLY IF EXISTS {ix};");
    } else {
        let _ = writeln!(up3, "CREATE UNIQUE INDEX {ix} ON {t} ({c});");
        let _ = writeln!(down3, "DROP INDEX {ix};");
    }
    // Step 4: NOT NULL.
    let mut up4 = String::new();
    let mut down4 = String::new();
    if pg {
        let check = name(
            &free_name(
                &schema.model,
                &format!("{}_{}_not_null_check", table.name, wanted.column),
            ),
            backend,
        );
        up4.push_str("-- migrate:no-transaction\n");
        up4.push_str(&header(3, "make the column NOT NULL."));
        up4.push_str(&comment(
            "Each statement commits on its own. SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock, unless a valid CHECK constraint proves that no row holds NULL; a CHECK added NOT VALID is quick, and VALIDATE CONSTRAINT scans the table holding only a SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on (PostgreSQL docs, ALTER TABLE: SET NOT NULL, ADD table_constraint NOT VALID, VALIDATE CONSTRAINT). The first DROP makes the script safe to run again.",
        ));
        up4.push_str(&lock_timeout(true));
        let _ = writeln!(
            up4,
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check};\n\
             ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID;\n\
             ALTER TABLE {t} VALIDATE CONSTRAINT {check};\n\
             ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;\n\
             ALTER TABLE {t} DROP CONSTRAINT {check};"
        );
        let _ = writeln!(down4, "ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL;");
    } else {
        let replay = schema.replay.as_ref().context("an SQLite schema replays")?;
        let (from, to) = (replay()?, replay()?);
        for (i, sql) in [&up1, &up2, &up3].into_iter().enumerate() {
            for conn in [&from, &to] {
                conn.execute_batch(sql)
                    .map_err(|e| step_failed(&schema.what, &v(i as u64), &sqlite_message(&e)))?;
            }
        }
        require(&to, &table.name, wanted.column)?;
        let filter = migrate_runtime::model::Filter::new(&package.config.table);
        let (from_model, to_model) = (Model::read(&from, &filter)?, Model::read(&to, &filter)?);
        let side = |model, conn| Side {
            model,
            conn,
            live: false,
        };
        let there = sqlgen::transform(side(&from_model, &from), side(&to_model, &to), false)?;
        let back = sqlgen::transform(side(&to_model, &to), side(&from_model, &from), false)?;
        let _ = writeln!(
            up4,
            "-- migrate:allow MS005 the backfill of step {} gave every row a value, and the guard of step {} checked that it gives no NULL",
            v(1),
            v(0)
        );
        up4.push_str(&header(3, "make the column NOT NULL."));
        up4.push_str(&comment(
            "SQLite's ALTER TABLE cannot add NOT NULL to a column, so the table is rebuilt following SQLite's procedure (https://sqlite.org/lang_altertable.html#otheralter): new table, copy, drop, rename, indexes, triggers and views re-created, in this migration's transaction. The runner turns foreign keys off around it and runs PRAGMA foreign_key_check before it commits.",
        ));
        let _ = writeln!(up4, "{}", there.sql.trim_end());
        down4.push_str(&comment("The same rebuild, back to the nullable column."));
        let _ = writeln!(down4, "{}", back.sql.trim_end());
    }
    let steps = vec![
        Step::new(format!("add {}", wanted.column), up1, down1),
        Step::new(format!("backfill {}", wanted.column), up2, down2),
        Step::new(format!("unique {}", wanted.column), up3, down3),
        Step::new(format!("require {}", wanted.column), up4, down4),
    ];
    if let Some(replay) = &schema.replay {
        round_trip(replay, &steps, schema, first, package, true)?;
    }
    if placeholder {
        note!(
            "the backfill ({backfill}) is a placeholder unique per row: edit it in steps {}, {} and {}'s down, or pass --backfill SQL_EXPR",
            v(0),
            v(1),
            v(1)
        );
    }
    Ok(steps)
}

/// PostgreSQL: the `SET` that bounds how long a statement waits for its
/// table lock (lint MS019), with why; `LOCAL` inside a transaction, for
/// the session in a `-- migrate:no-transaction` script (the runner
/// restores the setting after it).
fn lock_timeout(no_transaction: bool) -> String {
    format!(
        "{}SET {}lock_timeout = '2s';\n",
        comment(
            "Wait at most 2 s for each table lock: behind a long query the statement fails instead of queueing the app's queries behind it; apply again later."
        ),
        if no_transaction { "" } else { "LOCAL " }
    )
}

/// `"text"`: an SQLite name, always quoted (for a constraint named by its message).
fn quote_always(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// SQLite's own message of `e`, without the statement.
fn sqlite_message(e: &migrate_runtime::rusqlite::Error) -> String {
    use migrate_runtime::rusqlite::Error as E;
    match e {
        E::SqlInputError { msg, .. } | E::SqliteFailure(_, Some(msg)) => msg.clone(),
        e => e.to_string(),
    }
}

fn step_failed(what: &str, version: &str, message: &str) -> anyhow::Error {
    anyhow!(
        "the recipe's migration {version} fails on {what}: {message}; nothing was written (help: check the arguments: names, --type and --backfill)"
    )
}

/// Makes `table.column` NOT NULL in the scratch database `conn` by
/// editing its `CREATE TABLE` text in `sqlite_schema` (the target side of
/// the rebuild; the rebuild itself is what the migration does).
fn require(conn: &Connection, table: &str, column: &str) -> Result<()> {
    let create = sqlgen::create_sql(conn, "table", table)?;
    let (_, items) = sqlgen::table_items(&create).context("cannot read the columns of the CREATE TABLE statement")?;
    let item = items
        .iter()
        .find(|r| {
            let text = &create[(*r).clone()];
            !sqlgen::is_constraint(text) && sqlgen::first_name(text).eq_ignore_ascii_case(column)
        })
        .with_context(|| format!("cannot find column {column} in the CREATE TABLE statement of {table}"))?;
    let end = item.start + create[item.clone()].trim_end().len();
    let mut sql = create.clone();
    sql.insert_str(end, " NOT NULL");
    let version: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    // SQLite documents editing sqlite_schema under writable_schema for
    // changes that do not touch stored rows; this database is a scratch.
    conn.execute_batch("PRAGMA writable_schema = ON")?;
    conn.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
        [&sql, table],
    )?;
    conn.execute_batch(&format!(
        "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF",
        version + 1
    ))?;
    Ok(())
}

/// Runs every step up, in order, then down, in reverse, on a fresh replay:
/// each must run, and with `compare` the schema must come back as it was.
fn round_trip(
    replay: &dyn Fn() -> Result<Connection>,
    steps: &[Step],
    schema: &Schema,
    first: u64,
    package: &Package,
    compare: bool,
) -> Result<()> {
    let conn = replay()?;
    let run = |i: usize, sql: &str, direction: &str| {
        conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; BEGIN; {sql}\nCOMMIT;"))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                step_failed(
                    &schema.what,
                    &format!("{} ({direction})", package.version(first + i as u64)),
                    &sqlite_message(&e),
                )
            })
    };
    for (i, s) in steps.iter().enumerate() {
        run(i, &s.up, "up")?;
    }
    for (i, s) in steps.iter().enumerate().rev() {
        run(i, &s.down, "down")?;
    }
    if !compare {
        return Ok(());
    }
    let filter = migrate_runtime::model::Filter::new(&package.config.table);
    let after = Model::read(&conn, &filter)?;
    if let Some(d) = schema.model.diff(&after).first() {
        bail!(
            "the recipe's down migrations do not give back {}: {d}; nothing was written (help: this is a bug of the recipe; please report it)",
            schema.what
        );
    }
    Ok(())
}

/// Why `rename-column` cannot do a column, if it cannot.
fn refuse_rename(table: &Table, old: &Column, backend: Backend) -> Option<String> {
    let lower = old.name.to_ascii_lowercase();
    if old.primary_key > 0 {
        return Some("is (part of) the primary key".to_owned());
    }
    if old.generated.is_some() || old.identity.is_some() {
        return Some("is generated".to_owned());
    }
    if old.default.is_some() {
        return Some("has a DEFAULT: an insert by new code would store the default in it, not the new column's value, and the triggers could not tell".to_owned());
    }
    if old.not_null && backend == Backend::Sqlite {
        return Some("is NOT NULL: SQLite checks it before a trigger could copy the new column's value into it, so inserts by new code would fail".to_owned());
    }
    if let Some(ix) = table
        .indexes
        .values()
        .find(|ix| ix.origin != "c" && ix.columns.iter().any(|k| k.column.eq_ignore_ascii_case(&lower)))
    {
        return Some(format!("is in a UNIQUE or PRIMARY KEY constraint ({})", ix.name));
    }
    if let Some(ix) = table.indexes.values().find(|ix| {
        ix.origin == "c"
            && ix.columns.iter().any(|k| k.column.eq_ignore_ascii_case(&lower))
            && (ix.partial.is_some() || ix.columns.iter().any(|k| k.expression))
    }) {
        return Some(format!("is in index {}, which is partial or on an expression", ix.name));
    }
    if table
        .foreign_keys
        .iter()
        .any(|fk| fk.columns.iter().any(|k| k.eq_ignore_ascii_case(&lower)))
    {
        return Some("has a foreign key".to_owned());
    }
    if table.checks.iter().any(|c| c.to_ascii_lowercase().contains(&lower)) {
        return Some("is in a CHECK constraint".to_owned());
    }
    None
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON table (columns)` for a
/// plain index, with column `from` named `to`.
fn index_sql(
    table: &Table,
    ix: &Index,
    ix_name: &str,
    (from, to): (&str, &str),
    concurrently: bool,
    backend: Backend,
) -> String {
    let columns: Vec<String> = ix
        .columns
        .iter()
        .map(|k| {
            let col = if k.column.eq_ignore_ascii_case(from) {
                to
            } else {
                &k.column
            };
            let mut s = name(col, backend);
            if let Some(coll) = &k.collation {
                let _ = write!(s, " COLLATE {}", name(coll, backend));
            }
            if k.descending {
                s.push_str(" DESC");
            }
            s
        })
        .collect();
    let using = match (&ix.using, backend) {
        (Some(u), Backend::Postgres) if !u.eq_ignore_ascii_case("btree") => format!(" USING {u}"),
        _ => String::new(),
    };
    format!(
        "CREATE {}INDEX {}{} ON {}{using} ({});",
        if ix.unique { "UNIQUE " } else { "" },
        if concurrently { "CONCURRENTLY " } else { "" },
        name(ix_name, backend),
        name(&table.name, backend),
        columns.join(", ")
    )
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn rename_column(
    package: &Package,
    schema: &Schema,
    table: &Table,
    old: &Column,
    new: &str,
    first: u64,
    invocation: &str,
    backend: Backend,
) -> Result<Vec<Step>> {
    if let Some(why) = refuse_rename(table, old, backend) {
        bail!(
            "column `{}.{}` {why}; the rename-column recipe does not handle that, nothing was written (help: rename it with `ALTER TABLE {} RENAME COLUMN {} TO {new}` in a migration applied while no old code runs, or change it by hand in an expand and a contract)",
            table.name,
            old.name,
            table.name,
            old.name
        );
    }
    let pg = backend == Backend::Postgres;
    let v = |i: u64| package.version(first + i);
    let t = name(&table.name, backend);
    let o = name(&old.name, backend);
    let n = name(new, backend);
    let mut definition = format!("{n} {}", old.decl_type);
    if let Some(coll) = &old.collation {
        let _ = write!(definition, " COLLATE {}", name(coll, backend));
    }
    let old_definition = {
        let mut d = format!("{o} {}", old.decl_type);
        if let Some(coll) = &old.collation {
            let _ = write!(d, " COLLATE {}", name(coll, backend));
        }
        d
    };
    // The plain indexes on the old column, and their copies on the new one.
    let lower = old.name.to_ascii_lowercase();
    let old_indexes: Vec<&Index> = table
        .indexes
        .values()
        .filter(|ix| ix.origin == "c" && ix.columns.iter().any(|k| k.column.eq_ignore_ascii_case(&lower)))
        .collect();
    let copies: Vec<(String, String)> = old_indexes
        .iter()
        .map(|ix| {
            let wanted = if ix.name.to_ascii_lowercase().contains(&lower) {
                let at = ix.name.to_ascii_lowercase().find(&lower).unwrap_or(0);
                format!("{}{new}{}", &ix.name[..at], &ix.name[at + lower.len()..])
            } else {
                format!("{}_{new}", ix.name)
            };
            let copy = free_name(&schema.model, &wanted);
            let sql = index_sql(table, ix, &copy, (&old.name, new), pg, backend);
            (copy, sql)
        })
        .collect();
    let sync = free_name(&schema.model, &format!("{}_sync_{new}", table.name));
    let (triggers_up, triggers_down) = if pg {
        let f = name(&sync, backend);
        let up = format!(
            "-- One trigger function keeps both columns in step (PL/pgSQL; a BEFORE\n\
             -- trigger sets the row's values before NOT NULL and the like are checked).\n\
             CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $sync$\n\
             BEGIN\n    \
             IF TG_OP = 'INSERT' THEN\n        \
             IF NEW.{n} IS NULL THEN\n            NEW.{n} := NEW.{o};\n        \
             ELSIF NEW.{o} IS NULL THEN\n            NEW.{o} := NEW.{n};\n        \
             END IF;\n    \
             ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} AND NEW.{n} IS NOT DISTINCT FROM OLD.{n} THEN\n        \
             NEW.{n} := NEW.{o};\n    \
             ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} AND NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN\n        \
             NEW.{o} := NEW.{n};\n    \
             END IF;\n    \
             RETURN NEW;\n\
             END\n$sync$;\n\
             CREATE TRIGGER {f} BEFORE INSERT OR UPDATE ON {t}\nFOR EACH ROW EXECUTE FUNCTION {f}();\n"
        );
        let down = format!("DROP TRIGGER {f} ON {t};\nDROP FUNCTION {f}();\n");
        (up, down)
    } else {
        let key = if table.without_rowid {
            table
                .columns
                .iter()
                .filter(|c| c.primary_key > 0)
                .map(|c| format!("{0} = NEW.{0}", quote(&c.name)))
                .collect::<Vec<_>>()
                .join(" AND ")
        } else {
            "rowid = NEW.rowid".to_owned()
        };
        let insert = quote(&free_name(&schema.model, &format!("{sync}_insert")));
        let from_old = quote(&free_name(&schema.model, &format!("{sync}_from_{}", old.name)));
        let to_old = quote(&free_name(&schema.model, &format!("{sync}_to_{}", old.name)));
        let up = format!(
            "-- An insert that gives only one of them: the other gets its value.\n\
             CREATE TRIGGER {insert} AFTER INSERT ON {t}\n\
             WHEN NEW.{n} IS NULL OR NEW.{o} IS NULL\nBEGIN\n    \
             UPDATE {t} SET {n} = coalesce(NEW.{n}, NEW.{o}), {o} = coalesce(NEW.{o}, NEW.{n}) WHERE {key};\nEND;\n\
             -- An update of one: the other follows (the WHEN stops the echo).\n\
             CREATE TRIGGER {from_old} AFTER UPDATE OF {o} ON {t}\n\
             WHEN NEW.{n} IS NOT NEW.{o}\nBEGIN\n    \
             UPDATE {t} SET {n} = NEW.{o} WHERE {key};\nEND;\n\
             CREATE TRIGGER {to_old} AFTER UPDATE OF {n} ON {t}\n\
             WHEN NEW.{o} IS NOT NEW.{n}\nBEGIN\n    \
             UPDATE {t} SET {o} = NEW.{n} WHERE {key};\nEND;\n"
        );
        let down = format!("DROP TRIGGER {to_old};\nDROP TRIGGER {from_old};\nDROP TRIGGER {insert};\n");
        (up, down)
    };
    let backfill = format!("UPDATE {t} SET {n} = {o} WHERE {n} IS NULL AND {o} IS NOT NULL;\n");
    // On PostgreSQL the index copies are built CONCURRENTLY, outside a
    // transaction: a migration of their own between expand and contract.
    let index_step = pg && !copies.is_empty();
    let contract = v(if index_step { 2 } else { 1 });
    // The expand.
    let mut up1 = String::from("-- migrate:phase expand\n");
    up1.push_str("-- migrate:allow MS009 the backfill writes only the column this migration adds, row by row as the triggers would\n");
    up1.push_str(&comment(&format!(
        "The expand of `{invocation}`: old code reads and writes {}, new code {new}; until the contract ({}) runs, the triggers copy what either writes into the other column. Deploy the new code after this migration; the contract waits for `cargo migrate up --contract`.",
        old.name,
        contract
    )));
    if pg {
        up1.push_str(&lock_timeout(false));
    }
    let _ = writeln!(up1, "ALTER TABLE {t} ADD COLUMN {definition};");
    up1.push_str(&triggers_up);
    up1.push_str("-- Backfill: the rows from before.\n");
    up1.push_str(&backfill);
    let mut down1 = String::new();
    let mut steps = Vec::new();
    if index_step {
        let mut up = String::from("-- migrate:no-transaction\n");
        up.push_str(&comment(&format!(
            "Part of the expand {} of `{invocation}`: the indexes on {} again, on {new}. CONCURRENTLY builds them without blocking writes, and cannot run in a transaction (PostgreSQL docs, CREATE INDEX, \"Building Indexes Concurrently\"). A failed build leaves an INVALID index behind: each DROP makes this script safe to run again.",
            v(0),
            old.name
        )));
        let mut down = String::from("-- migrate:no-transaction\n");
        for (copy, sql) in &copies {
            let copy = name(copy, backend);
            let _ = writeln!(up, "DROP INDEX CONCURRENTLY IF EXISTS {copy};\n{sql}");
            let _ = writeln!(down, "DROP INDEX CONCURRENTLY IF EXISTS {copy};");
        }
        steps.push(Step::new(format!("index {new}"), up, down));
    } else if !copies.is_empty() {
        up1.push_str(&comment(&format!("The indexes on {} again, on {new}.", old.name)));
        for (copy, sql) in &copies {
            let _ = writeln!(up1, "{sql}");
            let _ = writeln!(down1, "DROP INDEX {};", name(copy, backend));
        }
    }
    down1.push_str(&triggers_down);
    let _ = writeln!(down1, "ALTER TABLE {t} DROP COLUMN {n};");
    // The contract.
    let mut up2 = format!("-- migrate:phase contract\n-- migrate:contract-of {}\n", v(0));
    up2.push_str(&comment(&format!(
        "The contract of `{invocation}`: apply it once every running instance has the new code (`cargo migrate up --contract`); the old column and its values go."
    )));
    if pg {
        up2.push_str(&lock_timeout(false));
    }
    up2.push_str(&triggers_down);
    if !pg {
        for ix in &old_indexes {
            let _ = writeln!(up2, "DROP INDEX {};", name(&ix.name, backend));
        }
    }
    let _ = writeln!(up2, "ALTER TABLE {t} DROP COLUMN {o};");
    let mut down2 = comment(&format!(
        "The old column back, filled from {new}, with its indexes and the triggers."
    ));
    let _ = writeln!(down2, "ALTER TABLE {t} ADD COLUMN {old_definition};");
    let _ = writeln!(down2, "UPDATE {t} SET {o} = {n} WHERE {o} IS NULL AND {n} IS NOT NULL;");
    if old.not_null {
        let _ = writeln!(down2, "ALTER TABLE {t} ALTER COLUMN {o} SET NOT NULL;");
    }
    for ix in &old_indexes {
        let _ = writeln!(down2, "{}", index_sql(table, ix, &ix.name, ("", ""), false, backend));
    }
    down2.push_str(&triggers_up);
    steps.insert(0, Step::new(format!("rename {} to {new} expand", old.name), up1, down1));
    steps.push(Step::new(format!("rename {} to {new} contract", old.name), up2, down2));
    if let Some(replay) = &schema.replay {
        // No comparison at the end: the contract's down gives the old
        // column back at the end of the table (`check` warns about the order).
        round_trip(replay, &steps, schema, first, package, false)?;
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_wrap_and_stay_comments() {
        let text = comment(&"word ".repeat(40));
        assert!(text.lines().count() > 2, "{text}");
        assert!(text.lines().all(|l| l.starts_with("-- ") && l.len() <= 80), "{text}");
        assert_eq!(comment("one line"), "-- one line\n");
    }

    #[test]
    fn an_index_copied_onto_the_new_column() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (name TEXT, age INTEGER);
             CREATE UNIQUE INDEX users_name_age ON users (name COLLATE NOCASE, age DESC);",
        )
        .unwrap();
        let model = Model::read(&conn, &migrate_runtime::model::Filter::new("_migrations")).unwrap();
        let table = &model.tables["users"];
        let ix = &table.indexes["users_name_age"];
        assert_eq!(
            index_sql(
                table,
                ix,
                "users_full_name_age",
                ("name", "full_name"),
                false,
                Backend::Sqlite
            ),
            "CREATE UNIQUE INDEX users_full_name_age ON users (full_name COLLATE NOCASE, age DESC);"
        );
        assert_eq!(
            index_sql(table, ix, "users_name_age", ("", ""), true, Backend::Postgres),
            "CREATE UNIQUE INDEX CONCURRENTLY users_name_age ON users (name COLLATE \"NOCASE\", age DESC);"
        );
    }
}
