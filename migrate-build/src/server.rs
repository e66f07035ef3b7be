//! The build-time replay of PostgreSQL migrations on a real server
//! (`MIGRATE_CHECK_DATABASE_URL`, feature `postgres`): every migration up,
//! and each round trip (up → down → up) compared by the catalog, in a
//! scratch database that is created for the build and always dropped. A
//! killed build's scratch database is dropped by a later build.

use migrate_runtime::model::{Filter, Model};
use migrate_runtime::postgres::{self, Client};
use migrate_runtime::{DriftPolicy, Migration, Migrator, ScratchDatabase};

use crate::config::Config;
use crate::problem::Problem;

/// The environment variable that names the check server.
pub(crate) const VAR: &str = "MIGRATE_CHECK_DATABASE_URL";

/// Replays `migrations` on the server at `url`; the problems found, and
/// (when there are none) the schema after the last migration as SQL
/// ([`Model::postgres_sql`](migrate_runtime::model::Model::postgres_sql)
/// of the catalog, without the tracking table and the `ignore` patterns'
/// objects): what the `snapshot` file holds.
pub(crate) fn replay(url: &str, migrations: &[Migration], config: &Config) -> (Vec<Problem>, Option<String>) {
    let problem = |message: String| {
        vec![Problem::error(VAR, 0, message).hint(format!(
            "check the server named by {VAR}, or unset it to check without a server"
        ))]
    };
    let server = match url.parse::<postgres::Config>() {
        Ok(server) => server,
        Err(e) => return (problem(format!("the URL is not valid: {e}")), None),
    };
    // Dropped (with its database) whatever happens.
    let mut scratch = match ScratchDatabase::create(&server, "migrate_check_") {
        Ok(scratch) => scratch,
        Err(e) => {
            return (
                problem(format!("cannot make a scratch database on the check server: {e}")),
                None,
            );
        }
    };
    let problems = replay_in(scratch.client(), migrations, config);
    if problems.iter().any(Problem::is_error) {
        return (problems, None);
    }
    let schema = Filter::new(&config.table)
        .ignore(&config.ignore)
        .and_then(|filter| Model::read_postgres(scratch.client(), config.schema.as_deref(), &filter));
    match schema {
        Ok(model) => (problems, Some(model.postgres_sql())),
        Err(e) => {
            let mut problems = problems;
            problems.extend(problem(format!("cannot read the schema the migrations made: {e}")));
            (problems, None)
        }
    }
}

fn replay_in(client: &mut Client, migrations: &[Migration], config: &Config) -> Vec<Problem> {
    // A replay makes what the migrations make, contracts included.
    let mut migrator = Migrator::new(migrations)
        .table(&config.table)
        .drift(DriftPolicy::Off)
        .contract(true);
    if let Some(schema) = &config.schema {
        migrator = migrator.schema(schema);
    }
    let mut problems = Vec::new();
    let mut previous = 0;
    for m in migrations {
        let before = catalog(client, config);
        if let Err(e) = migrator.migrate_to_postgres(client, m.version()) {
            problems.push(crate::validate::sql_problem(e));
            return problems;
        }
        if let Some(down) = m.down() {
            match migrator.migrate_to_postgres(client, previous) {
                Err(e) => {
                    problems.push(crate::validate::sql_problem(e));
                    return problems;
                }
                Ok(_) => {
                    let after = catalog(client, config);
                    let missing: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
                    let left: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
                    if !missing.is_empty() || !left.is_empty() {
                        let mut what = Vec::new();
                        if !left.is_empty() {
                            what.push(format!("it leaves {}", join(&left)));
                        }
                        if !missing.is_empty() {
                            what.push(format!("it does not give back {}", join(&missing)));
                        }
                        problems.push(
                            Problem::error(
                                down.file().to_owned(),
                                1,
                                format!("the down migration does not undo its up: {}", what.join("; ")),
                            )
                            .hint("make the down script restore exactly the schema from before the up"),
                        );
                    }
                }
            }
            if let Err(e) = migrator.migrate_to_postgres(client, m.version()) {
                problems.push(crate::validate::sql_problem(e));
                return problems;
            }
        }
        previous = m.version();
    }
    problems
}

fn join(lines: &[&String]) -> String {
    lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
}

/// The user's schema objects, one line each, sorted: schemas, tables and
/// views with their columns, indexes, constraints, functions and
/// procedures, enum and domain types, extensions. Without the tracking
/// table and its schema, nor the runtime's lock and head tables.
fn catalog(client: &mut Client, config: &Config) -> Vec<String> {
    const SYSTEM: &str = "('pg_catalog', 'information_schema', 'pg_toast')";
    // The runtime's own tables: the tracking table, its lock table and its
    // head table (the head's trigger function is left out below).
    const OURS: &str = "($1::text, $1::text || '_lock', $1::text || '_head')";
    let sql = format!(
        "SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname NOT IN {SYSTEM} AND nspname NOT LIKE 'pg\\_%'
         UNION ALL SELECT format('column %s.%s.%s %s %s %s', table_schema, table_name, column_name, data_type, is_nullable, coalesce(column_default, ''))
           FROM information_schema.columns WHERE table_schema NOT IN {SYSTEM} AND table_name::text NOT IN {OURS}
         UNION ALL SELECT format('index %s.%s', schemaname, indexdef) FROM pg_indexes
           WHERE schemaname NOT IN {SYSTEM} AND tablename::text NOT IN {OURS}
         UNION ALL SELECT format('constraint %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
           FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
           WHERE n.nspname NOT IN {SYSTEM} AND c.conrelid <> 0 AND (SELECT relname::text FROM pg_class WHERE oid = c.conrelid) NOT IN {OURS}
         UNION ALL SELECT format('routine %s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname NOT IN {SYSTEM} AND p.proname::text <> $1::text || '_head_clear' \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
         UNION ALL SELECT format('type %s.%s', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname NOT IN {SYSTEM} AND t.typtype IN ('e', 'd')
         UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'"
    );
    let tracking_schema = config.schema.as_ref().map(|s| format!("schema {s}"));
    let mut lines: Vec<String> = client
        .query(&sql, &[&config.table])
        .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
        .unwrap_or_default();
    lines.retain(|l| Some(l) != tracking_schema.as_ref() && !l.starts_with("schema public"));
    lines.sort();
    lines
}
