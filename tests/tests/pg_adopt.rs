//! Adoption on PostgreSQL (issue 13), against a real server: a database
//! migrated by refinery's own postgres driver, and databases holding each
//! other tool's PostgreSQL tracking table (written as that tool's source
//! writes it, named at each), taken over by `cargo migrate import
//! --database` and at start-up (`Migrator::adopt`), with nothing run twice
//! and the rows intact; histories and schemas that do not fit refused with
//! what to do; `baseline` on a hand-made database.

use migrate_runtime::postgres::Client;
use migrate_runtime::{Migrator, Previous};
use tests::{Package, pg_database};

use super::adopt::{load, refinery_fixture};
use super::import::{BROKEN_HISTORIES, run, with_fixture};

/// A package for PostgreSQL with `tool`'s fixture imported.
pub(crate) fn imported(tool: &str) -> Package {
    let (pkg, args) = with_fixture(tool);
    postgres_backend(&pkg);
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 0, "{tool}: {err}");
    pkg
}

fn postgres_backend(pkg: &Package) {
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n"),
    );
}

pub(crate) fn add_rows(client: &mut Client) {
    client
        .batch_execute(
            "INSERT INTO users (id, name, email) VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com');",
        )
        .unwrap();
}

pub(crate) fn rows(client: &mut Client) -> Vec<(i32, String, String)> {
    client
        .query("SELECT id, name, email FROM users ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Our tracking rows: (version, duration_ms); empty when there is no table.
pub(crate) fn recorded(client: &mut Client) -> Vec<(i64, i64)> {
    let exists: bool = client
        .query_one("SELECT to_regclass('_migrations') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if !exists {
        return Vec::new();
    }
    client
        .query("SELECT version, duration_ms FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn count(client: &mut Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

/// refinery's own runner (postgres driver) takes `client`'s database to
/// version 2 of the fixture; then rows are added.
fn migrated_by_refinery(client: &mut Client) {
    let report = refinery_fixture::migrations::runner()
        .set_target(refinery::Target::Version(2))
        .run(client)
        .unwrap();
    assert_eq!(report.applied_migrations().len(), 2);
    add_rows(client);
}

#[test]
fn pg_a_database_migrated_by_refinery_continues_in_the_cli() {
    let Some(db) = pg_database!() else { return };
    let pkg = imported("refinery");
    let mut client = db.client();
    migrated_by_refinery(&mut client);
    let before = rows(&mut client);
    let url = db.url.as_str();

    let (code, _, err) = run(&pkg, &["import", "--from", "refinery", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("took over refinery's history: recorded 2 migrations as applied"),
        "{err}"
    );
    assert!(err.contains("1 migration pending"), "{err}");
    assert_eq!(recorded(&mut client), [(1, -1), (2, -1)], "recorded, not run");
    assert_eq!(
        count(&mut client, "refinery_schema_history"),
        2,
        "refinery's history is left as it was"
    );

    let (code, out, err) = run(&pkg, &["status", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recorded without running"), "{out}");

    let (code, _, err) = run(&pkg, &["import", "--from", "refinery", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already taken over"), "{err}");

    let (code, _, err) = run(&pkg, &["up", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    assert_eq!(rows(&mut client), before, "the data is intact");
    let versions: Vec<i64> = recorded(&mut client).into_iter().map(|(v, _)| v).collect();
    assert_eq!(versions, [1, 2, 3]);
    let (code, _, err) = run(&pkg, &["diff", "--database", url]);
    assert_eq!(code, 0, "no drift, refinery's table is ignored: {err}");
}

#[test]
fn pg_a_schema_unlike_the_replay_is_refused_with_the_difference_and_nothing_recorded() {
    let Some(db) = pg_database!() else { return };
    let pkg = imported("refinery");
    let mut client = db.client();
    migrated_by_refinery(&mut client);
    client
        .batch_execute("ALTER TABLE users ADD COLUMN cohort text")
        .unwrap();
    let (code, _, err) = run(&pkg, &["import", "--from", "refinery", "--database", &db.url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("table users: column cohort added"), "{err}");
    assert!(
        err.contains("its schema is not what migrations 0001 to 0002 make, though refinery says they are applied"),
        "{err}"
    );
    assert!(err.trim_end().lines().last().unwrap().starts_with("error: "), "{err}");
    assert!(recorded(&mut client).is_empty(), "no tracking table was left behind");
}

#[test]
fn pg_adopt_takes_over_refinery_at_start_up_in_the_applys_transaction() {
    let Some(db) = pg_database!() else { return };
    let pkg = imported("refinery");
    let (migrations, pairs) = load(&pkg);
    let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let migrator = || {
        Migrator::new(&migrations)
            .imported(&mapping)
            .ignore(&["refinery_schema_history"])
            .adopt(Previous::Refinery)
    };
    let mut client = db.client();
    migrated_by_refinery(&mut client);
    let before = rows(&mut client);
    let report = migrator().apply_postgres(&mut client).unwrap();
    assert_eq!(report.adopted, [1, 2]);
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
    assert!(report.to_string().contains("took over 2 migrations"), "{report}");
    assert_eq!(
        recorded(&mut client).iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(rows(&mut client), before, "rows intact");
    let scratch: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'migrate_adopt_replay'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(scratch, 0, "the replay's schema was rolled back");
    assert!(
        migrator().apply_postgres(&mut client).unwrap().is_empty(),
        "the second start does nothing"
    );

    // A new database: nothing to take over, everything applies.
    let Some(fresh) = pg_database!() else { return };
    let report = migrator().apply_postgres(&mut fresh.client()).unwrap();
    assert!(report.adopted.is_empty());
    assert_eq!(report.applied().count(), 3);

    // A database unlike its history: refused before anything runs.
    let Some(drifted) = pg_database!() else { return };
    let mut client = drifted.client();
    migrated_by_refinery(&mut client);
    client
        .batch_execute("ALTER TABLE users ADD COLUMN cohort text")
        .unwrap();
    let e = migrator().apply_postgres(&mut client).unwrap_err().to_string();
    assert!(e.contains("table users: column cohort added"), "{e}");
    assert!(recorded(&mut client).is_empty(), "nothing recorded, nothing applied");
    assert!(client.is_valid(std::time::Duration::from_secs(5)).is_ok());
}

/// The fixture's first two migrations run on `client` as `tool` ran them,
/// and its PostgreSQL tracking table filled as its source writes it.
fn migrated_by(pkg: &Package, tool: &str, client: &mut Client) {
    if tool == "goose" {
        // The goose fixture's second migration holds an SQLite trigger;
        // on PostgreSQL its converted file is the column alone.
        pkg.write(
            "migrations/0002_add_email.up.sql",
            "ALTER TABLE users ADD COLUMN email TEXT;\n",
        );
        pkg.write(
            "migrations/0002_add_email.down.sql",
            "ALTER TABLE users DROP COLUMN email;\n",
        );
    }
    for up in ["0001_create_users", "0002_add_email"] {
        let file = if pkg.path().join(format!("migrations/{up}.up.sql")).exists() {
            format!("migrations/{up}.up.sql")
        } else {
            format!("migrations/{up}.sql")
        };
        client.batch_execute(&pkg.read(&file)).unwrap();
    }
    add_rows(client);
    let history = match tool {
        // launchbadge/sqlx, sqlx-postgres/src/migrate.rs (ensure_migrations_table, apply).
        "sqlx" => "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
                   INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20240101120000, 'create users', TRUE, '\\x01', 3), (20240215093000, 'add email', TRUE, '\\x02', 2);",
        // diesel-rs/diesel, diesel_migrations/src/migration/setup_migration_table.sql.
        "diesel" => "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
                     INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000'), ('20240215093000');",
        // amacneil/dbmate, pkg/driver/postgres/postgres.go (CreateMigrationsTable).
        "dbmate" => "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY);
                     INSERT INTO schema_migrations (version) VALUES ('20240101120000'), ('20240215093000');",
        // pressly/goose, internal/dialect/dialectquery/postgres.go (CreateTable).
        "goose" => "CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now());
                    INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true);",
        // golang-migrate/migrate, database/postgres/postgres.go (ensureVersionTable, SetVersion).
        "golang-migrate" => "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
                             INSERT INTO schema_migrations (version, dirty) VALUES (2, false);",
        // flyway/flyway, the PostgreSQL createMetaDataTable.sql template.
        "flyway" => "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL, version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(), execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL);
                     ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank);
                     CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);
                     INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES
                       (1, '1', 'Create users', 'SQL', 'v1/V1__Create_users.sql', 1, 'me', 3, true),
                       (2, '1.1', 'Add email', 'SQL', 'v1/V1_1__Add_email.sql', 2, 'me', 2, true);",
        _ => unreachable!(),
    };
    client.batch_execute(history).unwrap();
}

#[test]
fn pg_every_tools_tracking_table_is_taken_over_and_failed_histories_are_refused() {
    for tool in ["sqlx", "diesel", "dbmate", "goose", "golang-migrate", "flyway"] {
        let Some(db) = pg_database!() else { return };
        let pkg = imported(tool);
        let mut client = db.client();
        migrated_by(&pkg, tool, &mut client);
        let before = rows(&mut client);
        let (code, _, err) = run(&pkg, &["import", "--from", tool, "--database", &db.url]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(
            err.contains(&format!("took over {tool}'s history: recorded 2 migrations as applied")),
            "{tool}: {err}"
        );
        assert_eq!(recorded(&mut client), [(1, -1), (2, -1)], "{tool}");
        let (code, _, err) = run(&pkg, &["up", "--database", &db.url]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(err.contains("applied 1 migration"), "{tool}: {err}");
        assert_eq!(rows(&mut client), before, "{tool}: the data is intact");
    }

    for (tool, break_it, says) in BROKEN_HISTORIES {
        let Some(db) = pg_database!() else { return };
        let pkg = imported(tool);
        let mut client = db.client();
        migrated_by(&pkg, tool, &mut client);
        client.batch_execute(break_it).unwrap();
        let (code, _, err) = run(&pkg, &["import", "--from", tool, "--database", &db.url]);
        assert_eq!(code, 1, "{tool}: {err}");
        assert!(err.contains(says), "{tool}: {err}");
        assert_eq!(err.lines().count(), 1, "{tool}: one line: {err}");
        assert!(recorded(&mut client).is_empty(), "{tool}: nothing recorded");
    }
}

#[test]
fn pg_baseline_records_a_hand_made_database_only_when_its_schema_matches() {
    let Some(db) = pg_database!() else { return };
    let pkg = Package::new();
    postgres_backend(&pkg);
    pkg.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    pkg.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    );
    pkg.write(
        "migrations/0003_index_email.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
    let url = db.url.as_str();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
             INSERT INTO users VALUES (1, 'Ada', 'ada@example.com');",
        )
        .unwrap();
    let (code, _, err) = run(&pkg, &["baseline", "--version", "1", "--database", url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("table users: column email added"), "{err}");
    assert!(err.contains("its schema is not what migration 0001 makes"), "{err}");
    assert!(recorded(&mut client).is_empty(), "nothing recorded");

    let (code, _, err) = run(&pkg, &["baseline", "--version", "2", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("recorded 2 migrations as applied (0001 to 0002), without running them; its schema is exactly what they make"),
        "{err}"
    );
    assert_eq!(recorded(&mut client), [(1, -1), (2, -1)]);

    let (code, _, err) = run(&pkg, &["baseline", "--version", "2", "--database", url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already has migrations recorded"), "{err}");

    let (code, _, err) = run(&pkg, &["up", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    assert_eq!(count(&mut client, "users"), 1, "the row is intact");
}
