//! Databases migrated by the real tools (refinery and rusqlite_migration,
//! their crates as dev-dependencies) continued by ours: through the CLI
//! (`import --database`) and at start-up (`Migrator::adopt`, in a real
//! app built by cargo), with no migration run twice and the rows intact;
//! and `baseline` for a database no tool managed.

use std::path::Path;

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, Previous};
use tests::Package;

use super::import::{add_rows, copy_dir, fixture, recorded, rows, run, tracking_tables, with_fixture};

pub(crate) mod refinery_fixture {
    // The fixture, embedded by refinery's own macro as an app using it would.
    refinery::embed_migrations!("fixtures/import/refinery");
}

/// A package with `tool`'s fixture imported.
fn imported(tool: &str) -> Package {
    let pkg = Package::new();
    copy_dir(&fixture(tool), &pkg.path().join("old"));
    let (code, _, err) = run(&pkg, &["import", "--from", tool, "old"]);
    assert_eq!(code, 0, "{err}");
    pkg
}

/// A database refinery took to version 2 of the fixture, with rows.
fn refinery_db(path: &Path) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    let report = refinery_fixture::migrations::runner()
        .set_target(refinery::Target::Version(2))
        .run(&mut conn)
        .unwrap();
    assert_eq!(report.applied_migrations().len(), 2);
    add_rows(&conn);
    conn
}

/// A database rusqlite_migration took to version 2 of the fixture, with rows.
fn rusqlite_migration_db(path: &Path) -> Connection {
    let dir = fixture("rusqlite-migration");
    let sql = |m: &str| -> &'static str { String::leak(std::fs::read_to_string(dir.join(m)).unwrap()) };
    let migrations = rusqlite_migration::Migrations::new(vec![
        rusqlite_migration::M::up(sql("01-create_users/up.sql")).down(sql("01-create_users/down.sql")),
        rusqlite_migration::M::up(sql("02-add_email/up.sql")).down(sql("02-add_email/down.sql")),
        rusqlite_migration::M::up(sql("03-index_email/up.sql")),
    ]);
    let mut conn = Connection::open(path).unwrap();
    migrations.to_version(&mut conn, 2).unwrap();
    add_rows(&conn);
    conn
}

#[test]
fn databases_migrated_by_refinery_and_rusqlite_migration_continue_in_the_cli() {
    for tool in ["refinery", "rusqlite-migration"] {
        let pkg = imported(tool);
        let db = pkg.path().join("app.db");
        let conn = if tool == "refinery" {
            refinery_db(&db)
        } else {
            rusqlite_migration_db(&db)
        };
        let before = rows(&conn);
        let (code, _, err) = run(&pkg, &["import", "--from", tool, "--database", "sqlite:app.db"]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(err.contains("recorded 2 migrations as applied"), "{tool}: {err}");
        assert_eq!(recorded(&conn), [(1, -1), (2, -1)], "{tool}");
        let (code, _, err) = run(&pkg, &["up", "--database", "sqlite:app.db"]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(err.contains("applied 1 migration"), "{tool}: {err}");
        assert_eq!(rows(&conn), before, "{tool}: rows intact");
        if tool == "refinery" {
            let old: i64 = conn
                .query_row("SELECT count(*) FROM refinery_schema_history", [], |r| r.get(0))
                .unwrap();
            assert_eq!(old, 2, "refinery's history is left as it was");
        }
    }
}

/// The package's migrations and mapping, as the generated code has them.
pub(crate) fn load(pkg: &Package) -> (Vec<Migration>, Vec<(String, u64)>) {
    let config = migrate_build::Config::default();
    let loaded = migrate_build::load(pkg.path(), &config).unwrap();
    let mapping = migrate_build::imported::Imported::read(&pkg.path().join("migrations"), pkg.path())
        .unwrap()
        .unwrap();
    (
        loaded.migrations.iter().map(|f| f.to_migration()).collect(),
        mapping.pairs(),
    )
}

#[test]
fn adopt_takes_over_at_start_up_in_the_applys_transaction() {
    for tool in ["refinery", "rusqlite-migration"] {
        let previous = Previous::ALL.into_iter().find(|p| p.name() == tool).unwrap();
        let pkg = imported(tool);
        let (migrations, pairs) = load(&pkg);
        let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
        let db = pkg.path().join("app.db");
        let mut conn = if tool == "refinery" {
            refinery_db(&db)
        } else {
            rusqlite_migration_db(&db)
        };
        let before = rows(&conn);
        let migrator = || Migrator::new(&migrations).imported(&mapping).adopt(previous);
        let report = migrator().apply(&mut conn).unwrap();
        assert_eq!(report.adopted, [1, 2], "{tool}");
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3], "{tool}");
        assert!(
            report.to_string().contains("took over 2 migrations"),
            "{tool}: {report}"
        );
        assert_eq!(recorded(&conn).len(), 3, "{tool}");
        assert_eq!(rows(&conn), before, "{tool}: rows intact");
        assert!(
            migrator().apply(&mut conn).unwrap().is_empty(),
            "{tool}: the second start does nothing"
        );

        // A new database: nothing to take over, everything applies.
        let mut fresh = Connection::open_in_memory().unwrap();
        let report = migrator().apply(&mut fresh).unwrap();
        assert!(report.adopted.is_empty());
        assert_eq!(report.applied().count(), 3);

        // A database unlike its history: refused before anything runs.
        let drifted = pkg.path().join("drifted.db");
        let conn = if tool == "refinery" {
            refinery_db(&drifted)
        } else {
            rusqlite_migration_db(&drifted)
        };
        conn.execute_batch("ALTER TABLE users ADD COLUMN cohort TEXT;").unwrap();
        let mut conn = conn;
        let e = migrator().apply(&mut conn).unwrap_err().to_string();
        assert!(e.contains("table users: column cohort added"), "{tool}: {e}");
        let ours: i64 = tracking_tables(&conn);
        assert_eq!(ours, 0, "{tool}: nothing recorded, nothing applied");
    }
}

#[test]
fn a_real_app_adopts_sqlx_history_on_its_first_start() {
    // The generated migrator() carries imported.toml's mapping; the app
    // only names the tool.
    let pkg = Package::new();
    copy_dir(&fixture("sqlx"), &pkg.path().join("old"));
    let (code, _, err) = run(&pkg, &["import", "--from", "sqlx", "old"]);
    assert_eq!(code, 0, "{err}");
    pkg.write(
        "src/main.rs",
        tests::MAIN_RS.replace(
            "migrations::apply(&mut conn)",
            "migrations::migrator().adopt(migrate_runtime::Previous::Sqlx).apply(&mut conn)",
        ),
    );
    let (ok, err) = pkg.build();
    assert!(ok, "{err}");
    // As sqlx leaves it (launchbadge/sqlx, sqlx-sqlite/src/migrate.rs).
    let db = pkg.path().join("app.db");
    let conn = super::import::migrated_by(&pkg, "sqlx", &db);
    let before = rows(&conn);
    let out = pkg.run(&["app.db"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("took over 2 migrations"), "{stdout}");
    assert!(stdout.contains("applied 3 index_email"), "{stdout}");
    let out = pkg.run(&["app.db"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nothing to do"), "{stdout}");
    assert_eq!(rows(&conn), before);
    assert_eq!(recorded(&conn).iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2, 3]);
    let generated = std::fs::read_dir(tests::testbox_target().join("debug/build"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&pkg.name()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("out/migrations.rs")).ok())
        .next()
        .unwrap();
    assert!(
        generated.contains("pub const IMPORTED: &[(&str, u64)] = &[") && generated.contains(".imported(IMPORTED)"),
        "{generated}"
    );
}

#[test]
fn adopt_on_postgresql_refuses_what_it_cannot_take_over_and_changes_nothing() {
    let Some(db) = tests::postgres::database("adopt_on_postgresql") else {
        return;
    };
    let mut client = db.client();
    // A database sqlx took to its first migration (sqlx-postgres/src/migrate.rs).
    client
        .batch_execute(
            "CREATE TABLE t (x integer);
             CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 't', TRUE, '\\x01', 1);",
        )
        .unwrap();
    let script = |sql: &str, file: &str| migrate_runtime::Script::new(sql.to_owned(), file.to_owned());
    let ms = [
        Migration::new(1, "t", script("CREATE TABLE t (x integer);", "0001_t.sql")),
        Migration::new(2, "u", script("CREATE TABLE u (y integer);", "0002_u.sql")),
    ];
    let mapping = [("1", 1)];
    let tables = |client: &mut migrate_runtime::postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename IN ('u', '_migrations')",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let refused = |m: Migrator<'_>, client: &mut migrate_runtime::postgres::Client| {
        m.apply_postgres(client).unwrap_err().to_string()
    };

    let e = refused(Migrator::new(&ms).adopt(Previous::Sqlx), &mut client);
    assert!(e.contains("has no mapping of its versions to ours"), "{e}");
    let e = refused(Migrator::new(&ms).adopt(Previous::RusqliteMigration), &mut client);
    assert!(e.contains("which a PostgreSQL database does not have"), "{e}");
    let no_tx = [
        Migration::new(
            1,
            "t",
            script("CREATE TABLE t (x integer);", "0001_t.sql").with_no_transaction(true),
        ),
        ms[1].clone(),
    ];
    let e = refused(
        Migrator::new(&no_tx).imported(&mapping).adopt(Previous::Sqlx),
        &mut client,
    );
    assert!(
        e.contains("is `-- migrate:no-transaction`") && e.contains("cargo migrate import --from sqlx --database URL"),
        "{e}"
    );
    assert_eq!(tables(&mut client), 0, "nothing ran, nothing recorded");

    let report = Migrator::new(&ms)
        .imported(&mapping)
        .adopt(Previous::Sqlx)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.adopted, [1]);
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
    assert_eq!(tables(&mut client), 2);
}

#[test]
fn rusqlite_migration_in_code_maps_user_version_n_to_our_first_n() {
    // Migrations written in code (`M::up("…")`): the user writes them as
    // our files in the same order; there is no imported.toml.
    let pkg = Package::new();
    let dir = fixture("rusqlite-migration");
    for (ours, theirs) in [
        ("0001_create_users.up.sql", "01-create_users/up.sql"),
        ("0001_create_users.down.sql", "01-create_users/down.sql"),
        ("0002_add_email.up.sql", "02-add_email/up.sql"),
        ("0002_add_email.down.sql", "02-add_email/down.sql"),
        ("0003_index_email.sql", "03-index_email/up.sql"),
    ] {
        pkg.write(&format!("migrations/{ours}"), std::fs::read(dir.join(theirs)).unwrap());
    }
    let conn = rusqlite_migration_db(&pkg.path().join("app.db"));
    let before = rows(&conn);
    let (code, _, err) = run(
        &pkg,
        &["import", "--from", "rusqlite-migration", "--database", "sqlite:app.db"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("taking rusqlite_migration's migration n to be our version n"),
        "{err}"
    );
    assert!(err.contains("recorded 2 migrations as applied"), "{err}");
    let (code, _, err) = run(&pkg, &["up", "--database", "sqlite:app.db"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(recorded(&conn).len(), 3);
    assert_eq!(rows(&conn), before);
}

#[test]
fn baseline_records_a_hand_made_database_only_when_its_schema_matches() {
    let (pkg, args) = with_fixture("golang-migrate");
    assert_eq!(run(&pkg, &args).0, 0);
    let db = pkg.path().join("hand.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
         INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com');",
    )
    .unwrap();
    let (code, _, err) = run(&pkg, &["baseline", "--version", "1", "--database", "sqlite:hand.db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("  table users: column email added (TEXT)"), "{err}");
    assert!(err.contains("its schema is not what migration 0001 makes"), "{err}");
    assert!(recorded_or_none(&conn).is_empty());

    let (code, _, err) = run(&pkg, &["baseline", "--version", "2", "--database", "sqlite:hand.db"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("recorded 2 migrations as applied (0001 to 0002), without running them"),
        "{err}"
    );
    assert_eq!(recorded(&conn), [(1, -1), (2, -1)]);
    let (code, _, err) = run(&pkg, &["baseline", "--version", "2", "--database", "sqlite:hand.db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already has migrations recorded"), "{err}");
    let (code, _, err) = run(&pkg, &["up", "--database", "sqlite:hand.db"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows(&conn), [(1, "Ada".to_owned(), "ada@example.com".to_owned())]);

    // --force records anyway, and says so in the history.
    let forced = pkg.path().join("forced.db");
    Connection::open(&forced)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
        .unwrap();
    let (code, _, err) = run(
        &pkg,
        &[
            "baseline",
            "--version",
            "2",
            "--force",
            "--database",
            "sqlite:forced.db",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: table users: column email removed"), "{err}");
    assert!(err.contains("--force recorded them anyway"), "{err}");
    assert_eq!(recorded(&Connection::open(&forced).unwrap()), [(1, -2), (2, -2)]);
    let (code, _, err) = run(&pkg, &["baseline", "--version", "9", "--database", "sqlite:forced.db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("there is no migration 9"), "{err}");
}

fn recorded_or_none(conn: &Connection) -> Vec<(i64, i64)> {
    let exists: i64 = tracking_tables(conn);
    if exists == 0 { Vec::new() } else { recorded(conn) }
}
