//! Reading a [`Model`] from a live PostgreSQL database's catalog
//! (`pg_catalog`), in one schema.
//!
//! What the server can print it prints: column types by `format_type`,
//! defaults, index expressions and partial-index conditions by
//! `pg_get_expr`/`pg_get_indexdef`, CHECK constraints by
//! `pg_get_constraintdef`, views by `pg_get_viewdef`, triggers by
//! `pg_get_triggerdef`, functions by `pg_get_functiondef` (PostgreSQL's
//! manual, "System Information Functions"). These print from the parsed
//! object, not the text the user wrote, so two databases built by the same
//! statements compare equal whatever the spelling; no OID is kept. Names
//! of objects in the schema are unqualified; a foreign key to a table in
//! another schema names it `schema.table`.

use std::collections::BTreeMap;

use postgres::Client;

use crate::pg::client::{PgClient, PgError};

use super::{
    Column, Definition, Filter, ForeignKey, Generated, Index, IndexColumn, Model, Object, Setting, Table, Trigger, View,
};
use crate::{Error, Result};

fn pg(doing: &'static str) -> impl FnOnce(PgError) -> Error {
    move |cause| cause.into_error(doing.to_owned())
}

/// The `ON DELETE`/`ON UPDATE` action of `pg_constraint.confdeltype`.
fn action(code: &str) -> String {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .to_owned()
}

/// Whether the reader leaves `name` out: the filter's names (the
/// tracking table and its backfill progress table among them), the lock
/// table of [`Lock::Table`](crate::Lock::Table) (`{tracking}_lock`), and
/// the head table with the function of the trigger that empties it
/// (`{tracking}_head`, `{tracking}_head_clear`).
fn excluded(filter: &Filter, name: &str) -> bool {
    filter.excludes(name)
        || ["_lock", "_head", "_head_clear"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|t| t.eq_ignore_ascii_case(&filter.tracking_table))
        })
}

/// The schema a model is read from: `schema`, else the connection's
/// `current_schema()` (the first existing schema of its `search_path`).
///
/// # Errors
///
/// When the server cannot be asked.
pub(crate) async fn resolve_schema(client: &mut impl PgClient, schema: Option<&str>) -> Result<String> {
    if let Some(s) = schema {
        return Ok(s.to_owned());
    }
    let rows = client
        .query("SELECT coalesce(current_schema(), 'public')::text", &[])
        .await
        .map_err(pg("reading current_schema()"))?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or_else(|| "public".to_owned()))
}

impl Model {
    /// Reads the schema `schema` (else the connection's
    /// `current_schema()`, usually `public`) of a PostgreSQL database from
    /// its catalog: tables with their columns, primary keys, indexes,
    /// foreign keys and CHECK constraints, views (and materialized views),
    /// triggers, functions and procedures, enum and domain types,
    /// collations, sequences no column owns, comments, row-level security
    /// and policies, partition keys and bounds. Leaves out the tracking table, its lock
    /// table, what `filter` leaves out, and objects of extensions.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the catalog cannot be read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::model::{Filter, Model};
    /// use migrate_runtime::postgres::{Client, NoTls};
    /// let mut client = Client::connect("postgres://app@localhost/app", NoTls)?;
    /// let model = Model::read_postgres(&mut client, None, &Filter::new("_migrations"))?;
    /// println!("{} tables", model.tables.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_postgres(client: &mut Client, schema: Option<&str>, filter: &Filter) -> Result<Self> {
        crate::ready::now(Self::read_pg(client, schema, filter))
    }

    /// [`read_postgres`](Self::read_postgres) on either driver (the
    /// runtime's start-up check runs it on the app's connection).
    pub(crate) async fn read_pg(client: &mut impl PgClient, schema: Option<&str>, filter: &Filter) -> Result<Self> {
        let schema = resolve_schema(client, schema).await?;
        // The server prints names outside `search_path` qualified (types,
        // sequences in defaults, tables in views): read with exactly the
        // schema in it, so that what is printed does not depend on the
        // session, then restore it.
        //
        // And without JIT compilation, restored too. The planner takes a
        // set-returning function with arguments that are not constants
        // (`generate_series` over each index's columns) to return 1,000
        // rows, which puts the index query's estimated cost over
        // `jit_above_cost` (100,000 by default), and compiling it then
        // took 666 ms of its 698 ms (EXPLAIN ANALYZE, a database of 100
        // migrations, PostgreSQL 15 with JIT on): three model reads made a
        // fresh apply of 100 migrations take 2× to 3.5× the floor.
        let rows = client
            .query(
                "SELECT current_setting('search_path'), set_config('search_path', quote_ident($1), false), \
                 current_setting('jit', true), \
                 CASE WHEN current_setting('jit', true) IS NOT NULL THEN set_config('jit', 'off', false) END",
                &[&schema],
            )
            .await
            .map_err(pg("setting search_path to read the schema"))?;
        // A server without the setting (one that only speaks PostgreSQL's
        // protocol) has none to turn off or restore.
        let (old, jit): (String, Option<String>) = rows.first().map(|r| (r.get(0), r.get(2))).unwrap_or_default();
        let mut model = Self::default();
        let read = read_all(client, &schema, filter, &mut model).await;
        let restored = client
            .execute(
                "SELECT set_config('search_path', $1, false), \
                 CASE WHEN $2::text IS NOT NULL THEN set_config('jit', $2, false) END",
                &[&old, &jit],
            )
            .await
            .map(drop)
            .map_err(pg("restoring search_path"));
        read.and(restored).map(|()| model)
    }
}

async fn read_all(client: &mut impl PgClient, schema: &str, filter: &Filter, model: &mut Model) -> Result<()> {
    read_tables(client, schema, filter, model).await?;
    read_indexes(client, schema, model).await?;
    read_constraints(client, schema, model).await?;
    read_views_and_triggers(client, schema, filter, model).await?;
    read_definitions(client, schema, filter, model).await?;
    read_settings(client, schema, filter, model).await
}

/// Not an extension's object: `pg_depend` has no `e` row for it (by
/// `classid` and `objid`, which its index covers).
const NOT_EXTENSION: &str = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

async fn read_tables(client: &mut impl PgClient, schema: &str, filter: &Filter, model: &mut Model) -> Result<()> {
    let sql = format!(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), coalesce(a.attnotnull, false), \
         pg_get_expr(d.adbin, d.adrelid, true), coalesce(a.attidentity::text, ''), coalesce(a.attgenerated::text, ''), \
         CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END, \
         coalesce(array_position(pk.conkey, a.attnum), 0)::int4, \
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p' \
         WHERE n.nspname = $1::text::name AND c.relkind IN ('r', 'p', 'f') AND {NOT_EXTENSION} \
         ORDER BY c.relname, a.attnum"
    );
    let rows = client.query(&sql, &[&schema]).await.map_err(pg("reading the tables"))?;
    for row in rows {
        let name: String = row.get(0);
        if excluded(filter, &name) {
            continue;
        }
        let table = model.tables.entry(name.to_ascii_lowercase()).or_insert_with(|| Table {
            name: name.clone(),
            strict: false,
            without_rowid: false,
            virtual_sql: None,
            partition_by: row.get(9),
            columns: Vec::new(),
            indexes: BTreeMap::new(),
            foreign_keys: Vec::new(),
            checks: Vec::new(),
        });
        let Some(column) = row.get::<Option<String>>(1) else {
            continue; // a table without columns
        };
        let generated: String = row.get(6);
        let identity: String = row.get(5);
        table.columns.push(Column {
            name: column,
            decl_type: row.get(2),
            not_null: row.get(3),
            default: row.get(4),
            primary_key: u32::try_from(row.get::<i32>(8)).unwrap_or(0),
            collation: row.get(7),
            generated: (generated == "s").then_some(Generated::Stored),
            hidden: false,
            identity: match identity.as_str() {
                "a" => Some("ALWAYS".to_owned()),
                "d" => Some("BY DEFAULT".to_owned()),
                _ => None,
            },
        });
    }
    Ok(())
}

async fn read_indexes(client: &mut impl PgClient, schema: &str, model: &mut Model) -> Result<()> {
    // One row per key column, with the INCLUDE columns; the backing indexes
    // of exclusion constraints are the constraints' (read with them); a
    // partition's indexes that are partitions of its parent's follow from
    // those (attaching the partition makes them). A key
    // column's collation is kept when it is not the one the column (or the
    // expression's type) has.
    let sql = "SELECT t.relname::text, i.relname::text, x.indisunique, x.indisprimary, coalesce(k.contype::text, ''), \
         am.amname::text, pg_get_expr(x.indpred, x.indrelid, true), \
         pg_get_indexdef(x.indexrelid, s.k, true), x.indkey[s.k - 1] = 0, (x.indoption[s.k - 1] & 1) = 1, \
         CASE WHEN x.indcollation[s.k - 1] NOT IN (0, coalesce(ta.attcollation, ity.typcollation)) THEN co.collname::text END, \
         array(SELECT pg_get_indexdef(x.indexrelid, j, true) FROM generate_series(x.indnkeyatts + 1, x.indnatts) AS j ORDER BY j) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam \
         LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x') \
         CROSS JOIN LATERAL generate_series(1, x.indnkeyatts::int4) AS s(k) \
         LEFT JOIN pg_attribute ta ON ta.attrelid = x.indrelid AND ta.attnum = x.indkey[s.k - 1] AND x.indkey[s.k - 1] <> 0 \
         LEFT JOIN pg_attribute ia ON ia.attrelid = x.indexrelid AND ia.attnum = s.k \
         LEFT JOIN pg_type ity ON ity.oid = ia.atttypid \
         LEFT JOIN pg_collation co ON co.oid = x.indcollation[s.k - 1] \
         WHERE n.nspname = $1::text::name AND coalesce(k.contype, 'c') <> 'x' AND NOT i.relispartition \
         ORDER BY t.relname, i.relname, s.k";
    let rows = client.query(sql, &[&schema]).await.map_err(pg("reading the indexes"))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = model.tables.get_mut(&table.to_ascii_lowercase()) else {
            continue;
        };
        let name: String = row.get(1);
        let method: String = row.get(5);
        let index = t.indexes.entry(name.to_ascii_lowercase()).or_insert_with(|| Index {
            name: name.clone(),
            unique: row.get(2),
            origin: if row.get::<bool>(3) {
                "pk"
            } else if row.get::<String>(4) == "u" {
                "u"
            } else {
                "c"
            }
            .to_owned(),
            columns: Vec::new(),
            partial: row.get(6),
            using: (method != "btree").then_some(method),
            include: row.get(11),
        });
        index.columns.push(IndexColumn {
            column: row.get(7),
            expression: row.get(8),
            descending: row.get(9),
            collation: row.get(10),
        });
    }
    Ok(())
}

async fn read_constraints(client: &mut impl PgClient, schema: &str, model: &mut Model) -> Result<()> {
    // Foreign keys and CHECK/EXCLUDE constraints defined on the table
    // itself (not cloned from a partitioned parent).
    let sql = "SELECT t.relname::text, k.contype::text, 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true), \
         array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(n, o) \
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o), \
         CASE WHEN fn.nspname = $1::text::name THEN f.relname::text ELSE fn.nspname::text || '.' || f.relname::text END, \
         array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(n, o) \
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o), \
         k.confdeltype::text, k.confupdtype::text, k.condeferrable AND k.condeferred, k.conname::text \
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         LEFT JOIN pg_class f ON f.oid = k.confrelid LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace \
         WHERE n.nspname = $1::text::name AND k.contype IN ('f', 'c', 'x') AND k.conislocal AND k.conparentid = 0 \
         ORDER BY t.relname, k.conname";
    let rows = client
        .query(sql, &[&schema])
        .await
        .map_err(pg("reading the constraints"))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = model.tables.get_mut(&table.to_ascii_lowercase()) else {
            continue;
        };
        let kind: String = row.get(1);
        if kind == "f" {
            t.foreign_keys.push(ForeignKey {
                columns: row.get(3),
                table: row.get::<Option<String>>(4).unwrap_or_default(),
                to: row.get(5),
                on_delete: action(&row.get::<String>(6)),
                on_update: action(&row.get::<String>(7)),
                deferred: row.get(8),
                name: Some(row.get(9)),
            });
        } else {
            t.checks.push(row.get(2));
        }
    }
    for t in model.tables.values_mut() {
        t.foreign_keys.sort();
        t.checks.sort();
    }
    Ok(())
}

async fn read_views_and_triggers(
    client: &mut impl PgClient,
    schema: &str,
    filter: &Filter,
    model: &mut Model,
) -> Result<()> {
    let sql = format!(
        "SELECT c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1::text::name AND c.relkind IN ('v', 'm') AND {NOT_EXTENSION} ORDER BY c.relname"
    );
    for row in client.query(&sql, &[&schema]).await.map_err(pg("reading the views"))? {
        let name: String = row.get(0);
        if excluded(filter, &name) {
            continue;
        }
        let kind = if row.get(1) { "MATERIALIZED VIEW" } else { "VIEW" };
        let definition: String = row.get(2);
        let sql = format!(
            "CREATE {kind} {} AS\n{}",
            quote(&name),
            definition.trim_end().trim_end_matches(';')
        );
        model.views.insert(name.to_ascii_lowercase(), View { name, sql });
    }
    let sql = "SELECT g.tgname::text, c.relname::text, pg_get_triggerdef(g.oid, true) \
         FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1::text::name AND NOT g.tgisinternal AND g.tgparentid = 0 ORDER BY g.tgname";
    for row in client
        .query(sql, &[&schema])
        .await
        .map_err(pg("reading the triggers"))?
    {
        let (name, table): (String, String) = (row.get(0), row.get(1));
        if excluded(filter, &name) || excluded(filter, &table) {
            continue;
        }
        // Trigger names are unique per table, not per schema.
        let key = format!("{} on {}", name.to_ascii_lowercase(), table.to_ascii_lowercase());
        model.triggers.insert(
            key,
            Trigger {
                name,
                table,
                sql: row.get(2),
            },
        );
    }
    Ok(())
}

async fn read_definitions(client: &mut impl PgClient, schema: &str, filter: &Filter, model: &mut Model) -> Result<()> {
    let not_extension = NOT_EXTENSION
        .replace("c.oid", "p.oid")
        .replace("'pg_class'", "'pg_proc'");
    let sql = format!(
        "SELECT p.proname::text, p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
         pg_get_functiondef(p.oid) \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1::text::name AND p.prokind IN ('f', 'p') AND {not_extension} ORDER BY 2"
    );
    for row in client
        .query(&sql, &[&schema])
        .await
        .map_err(pg("reading the functions"))?
    {
        let (base, name): (String, String) = (row.get(0), row.get(1));
        if excluded(filter, &base) {
            continue;
        }
        let sql: String = row.get(2);
        let sql = sql.trim_end().to_owned();
        model
            .functions
            .insert(name.to_ascii_lowercase(), Definition { name, sql });
    }
    let not_extension = NOT_EXTENSION
        .replace("c.oid", "t.oid")
        .replace("'pg_class'", "'pg_type'");
    let sql = format!(
        "SELECT t.typname::text, CASE t.typtype \
           WHEN 'e' THEN format('CREATE TYPE %I AS ENUM (%s)', t.typname, \
             (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)) \
           ELSE format('CREATE DOMAIN %I AS %s', t.typname, format_type(t.typbasetype, t.typtypmod)) \
             || CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END \
             || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END \
             || coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true), '' ORDER BY k.conname) \
                          FROM pg_constraint k WHERE k.contypid = t.oid), '') END \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE n.nspname = $1::text::name AND t.typtype IN ('e', 'd') AND {not_extension} ORDER BY 1"
    );
    for row in client.query(&sql, &[&schema]).await.map_err(pg("reading the types"))? {
        let name: String = row.get(0);
        if excluded(filter, &name) {
            continue;
        }
        model
            .types
            .insert(name.to_ascii_lowercase(), Definition { name, sql: row.get(1) });
    }
    // Collations, as `CREATE COLLATION` takes them; the ICU locale is
    // `colliculocale` in PostgreSQL 15 and 16, `colllocale` from 17 on:
    // read by name from the row as JSON, which has either.
    let not_extension = NOT_EXTENSION
        .replace("c.oid", "co.oid")
        .replace("'pg_class'", "'pg_collation'");
    let sql = format!(
        "SELECT co.collname::text, format('CREATE COLLATION %I (%s)', co.collname, concat_ws(', ', \
           'provider = ' || CASE co.collprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END, \
           CASE WHEN co.collprovider = 'c' THEN 'lc_collate = ' || quote_literal(co.collcollate) END, \
           CASE WHEN co.collprovider = 'c' THEN 'lc_ctype = ' || quote_literal(co.collctype) END, \
           CASE WHEN co.collprovider <> 'c' THEN 'locale = ' || \
             quote_literal(coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale')) END, \
           'rules = ' || quote_literal(to_jsonb(co) ->> 'collicurules'), \
           CASE WHEN NOT co.collisdeterministic THEN 'deterministic = false' END)) \
         FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace \
         WHERE n.nspname = $1::text::name AND {not_extension} ORDER BY 1"
    );
    for row in client
        .query(&sql, &[&schema])
        .await
        .map_err(pg("reading the collations"))?
    {
        let name: String = row.get(0);
        model
            .collations
            .insert(name.to_ascii_lowercase(), Definition { name, sql: row.get(1) });
    }
    // Sequences that no column owns (`serial` and identity columns own theirs).
    let sql = format!(
        "SELECT c.relname::text, format('CREATE SEQUENCE %I AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s', \
           c.relname, format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, \
           CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid \
         WHERE n.nspname = $1::text::name AND c.relkind = 'S' AND {NOT_EXTENSION} \
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass \
                         AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')) \
         ORDER BY 1"
    );
    for row in client
        .query(&sql, &[&schema])
        .await
        .map_err(pg("reading the sequences"))?
    {
        let name: String = row.get(0);
        if excluded(filter, &name) {
            continue;
        }
        model
            .sequences
            .insert(name.to_ascii_lowercase(), Definition { name, sql: row.get(1) });
    }
    Ok(())
}

/// The comments on the schema's objects, with the table each belongs to
/// (`$1`: the schema): `(kind, table, object as SQL names it, comment as
/// a literal)`. Kinds as `COMMENT ON` takes them (PostgreSQL's manual,
/// "COMMENT"); objects of extensions left out.
const COMMENTS: &str = "\
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1::text::name), \
objects(classoid, objoid, objsubid, kind, tbl, target) AS ( \
 SELECT 'pg_class'::regclass, c.oid, 0, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
   WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END, \
   CASE WHEN c.relkind IN ('r', 'p', 'f') THEN c.relname::text END, quote_ident(c.relname) \
   FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') \
 UNION ALL SELECT 'pg_class'::regclass, c.oid, a.attnum, 'column', CASE WHEN c.relkind IN ('r', 'p', 'f') THEN c.relname::text END, \
   quote_ident(c.relname) || '.' || quote_ident(a.attname) \
   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
   WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'f', 'v', 'm') \
 UNION ALL SELECT 'pg_class'::regclass, i.oid, 0, 'index', t.relname::text, quote_ident(i.relname) \
   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
   WHERE t.relnamespace = (SELECT oid FROM ns) \
 UNION ALL SELECT 'pg_proc'::regclass, p.oid, 0, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, NULL, \
   quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' \
   FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns) AND p.prokind IN ('f', 'p') \
 UNION ALL SELECT 'pg_type'::regclass, t.oid, 0, CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, NULL, quote_ident(t.typname) \
   FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typtype IN ('e', 'd') \
 UNION ALL SELECT 'pg_constraint'::regclass, k.oid, 0, 'constraint', t.relname::text, quote_ident(k.conname) || ' ON ' || quote_ident(t.relname) \
   FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid WHERE k.connamespace = (SELECT oid FROM ns) \
 UNION ALL SELECT 'pg_constraint'::regclass, k.oid, 0, 'constraint', NULL, quote_ident(k.conname) || ' ON DOMAIN ' || quote_ident(y.typname) \
   FROM pg_constraint k JOIN pg_type y ON y.oid = k.contypid WHERE k.connamespace = (SELECT oid FROM ns) \
 UNION ALL SELECT 'pg_trigger'::regclass, g.oid, 0, 'trigger', t.relname::text, quote_ident(g.tgname) || ' ON ' || quote_ident(t.relname) \
   FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid WHERE t.relnamespace = (SELECT oid FROM ns) AND NOT g.tgisinternal \
 UNION ALL SELECT 'pg_policy'::regclass, o.oid, 0, 'policy', t.relname::text, quote_ident(o.polname) || ' ON ' || quote_ident(t.relname) \
   FROM pg_policy o JOIN pg_class t ON t.oid = o.polrelid WHERE t.relnamespace = (SELECT oid FROM ns)) \
SELECT o.kind, o.tbl, o.target, quote_literal(d.description) \
FROM objects o JOIN pg_description d ON d.classoid = o.classoid AND d.objoid = o.objoid AND d.objsubid = o.objsubid \
WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = o.classoid AND e.objid = o.objoid AND e.deptype = 'e') \
ORDER BY 1, 3";

/// Row-level security and its policies (`$1`: the schema): `(table,
/// enabled, forced, policy name, CREATE POLICY)`, one row per table that
/// has row-level security on or a policy. The policy's roles as names
/// (`PUBLIC` for all).
const POLICIES: &str = "\
SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, o.polname::text, \
  CASE WHEN o.oid IS NOT NULL THEN format('CREATE POLICY %I ON %I AS %s FOR %s TO %s', o.polname, c.relname, \
    CASE WHEN o.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, \
    CASE o.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
    coalesce((SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY 1) \
              FROM unnest(o.polroles) AS r), 'PUBLIC')) \
  || coalesce(' USING (' || pg_get_expr(o.polqual, o.polrelid, true) || ')', '') \
  || coalesce(' WITH CHECK (' || pg_get_expr(o.polwithcheck, o.polrelid, true) || ')', '') END \
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_policy o ON o.polrelid = c.oid \
WHERE n.nspname = $1::text::name AND c.relkind IN ('r', 'p') \
  AND (c.relrowsecurity OR c.relforcerowsecurity OR o.oid IS NOT NULL) \
ORDER BY 1, 4";

/// The partitions in the schema (`$1`): `(partition, parent, bound)`.
const PARTITIONS: &str = "\
SELECT c.relname::text, CASE WHEN pn.nspname = $1::text::name THEN quote_ident(p.relname) \
  ELSE quote_ident(pn.nspname) || '.' || quote_ident(p.relname) END, pg_get_expr(c.relpartbound, c.oid, true) \
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_inherits h ON h.inhrelid = c.oid \
JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace \
WHERE n.nspname = $1::text::name AND c.relispartition AND c.relkind IN ('r', 'p', 'f') ORDER BY 1";

/// Comments, row-level security, policies and partitions' bounds
/// ([`Model::settings`]).
async fn read_settings(client: &mut impl PgClient, schema: &str, filter: &Filter, model: &mut Model) -> Result<()> {
    let mut add = |object: Object, table: Option<String>, name: String, sql: String, undo: String| {
        let key = match (object, &table) {
            (Object::Comment, _) | (_, None) => format!("{} {name}", object.as_str()),
            (_, Some(t)) => format!("{} {name} on {t}", object.as_str()),
        };
        model.settings.insert(
            key.to_ascii_lowercase(),
            Setting {
                object,
                table,
                name,
                sql,
                undo,
            },
        );
    };
    for row in client
        .query(COMMENTS, &[&schema])
        .await
        .map_err(pg("reading the comments"))?
    {
        let (kind, table, target, text): (String, Option<String>, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if table.as_deref().is_some_and(|t| excluded(filter, t)) || excluded(filter, target.trim_matches('"')) {
            continue;
        }
        let on = format!("{} {target}", kind.to_ascii_uppercase());
        add(
            Object::Comment,
            table,
            format!("on {kind} {target}"),
            format!("COMMENT ON {on} IS {text}"),
            format!("COMMENT ON {on} IS NULL"),
        );
    }
    let mut seen = None;
    for row in client
        .query(POLICIES, &[&schema])
        .await
        .map_err(pg("reading the row-level security policies"))?
    {
        let table: String = row.get(0);
        if excluded(filter, &table) {
            continue;
        }
        let t = quote(&table);
        if seen.as_ref() != Some(&table) {
            seen = Some(table.clone());
            for (on, what, word) in [
                (row.get::<bool>(1), "enabled", "ENABLE"),
                (row.get(2), "forced", "FORCE"),
            ] {
                if on {
                    let undo = if word == "ENABLE" { "DISABLE" } else { "NO FORCE" };
                    add(
                        Object::RowSecurity,
                        Some(table.clone()),
                        what.to_owned(),
                        format!("ALTER TABLE {t} {word} ROW LEVEL SECURITY"),
                        format!("ALTER TABLE {t} {undo} ROW LEVEL SECURITY"),
                    );
                }
            }
        }
        if let (Some(name), Some(sql)) = (row.get::<Option<String>>(3), row.get::<Option<String>>(4)) {
            let undo = format!("DROP POLICY {} ON {t}", quote(&name));
            add(Object::Policy, Some(table.clone()), name, sql, undo);
        }
    }
    for row in client
        .query(PARTITIONS, &[&schema])
        .await
        .map_err(pg("reading the partitions"))?
    {
        let (table, parent, bound): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if excluded(filter, &table) {
            continue;
        }
        let t = quote(&table);
        add(
            Object::Partition,
            Some(table),
            format!("of {parent}"),
            format!("ALTER TABLE {parent} ATTACH PARTITION {t} {bound}"),
            format!("ALTER TABLE {parent} DETACH PARTITION {t}"),
        );
    }
    Ok(())
}

/// `name`, double-quoted when PostgreSQL would not read it back as
/// written (not lower case letters, digits and `_`, or starting with a
/// digit). Keywords are not looked up: quoting one is always correct.
pub(crate) fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Words PostgreSQL reserves that are also likely names of tables and
/// columns (the manual's appendix "SQL Key Words", reserved in
/// PostgreSQL): quoted.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];
