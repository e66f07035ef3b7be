//! A migrated database per test (`test_db()`): on PostgreSQL, against a
//! real server, each database is cloned from a template, independent, fully
//! migrated, and dropped with its guard — also when the test panics. (The
//! SQLite `test_db()` is exercised by the example app's own tests, by the
//! README's test, and by the runtime's unit tests.)

use migrate_runtime::postgres::{Client, NoTls};
use migrate_runtime::{Migration, Migrator, Script};

fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            1,
            "users",
            Script::new(
                "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
                "migrations/0001_users.sql",
            ),
        ),
        Migration::new(
            2,
            "admin",
            Script::new("INSERT INTO users VALUES (1, 'admin');", "migrations/0002_admin.sql"),
        ),
    ]
}

fn exists(admin: &mut Client, name: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some()
}

fn count(client: &mut Client) -> i64 {
    client.query_one("SELECT count(*) FROM users", &[]).unwrap().get(0)
}

#[test]
fn postgres_test_databases_are_independent_migrated_and_dropped_even_after_a_panic() {
    // The harness's database only proves a server is there; test_db makes
    // its own on the same server.
    let Some(db) = tests::pg_database!() else { return };
    let url = db.server().url_for("postgres");
    let mut admin = Client::connect(&url, NoTls).unwrap();
    let migrations = migrations();
    let migrator = Migrator::new(&migrations);

    let mut one = migrator.test_db_postgres(&url).unwrap();
    let mut two = migrator.test_db_postgres(&url).unwrap();
    assert_ne!(one.name(), two.name());
    one.execute("INSERT INTO users VALUES (2, 'ada')", &[]).unwrap();
    assert_eq!(
        (count(&mut one), count(&mut two)),
        (2, 1),
        "a write in one is invisible in the other"
    );
    // The full history: nothing pending, both rows recorded.
    let status = migrator.status_postgres(two.client()).unwrap();
    assert!(status.pending().next().is_none());
    assert!(status.entries.iter().all(|e| e.applied.is_some()));
    // More clients of the test database, as an app's pool would connect.
    let mut other = one.config().connect(NoTls).unwrap();
    assert_eq!(count(&mut other), 2);

    // Dropping the guard drops the database, even with a client of the
    // test still connected.
    let name = one.name().to_owned();
    assert!(exists(&mut admin, &name));
    drop(one);
    assert!(!exists(&mut admin, &name), "{name} is dropped with its guard");
    drop(other);

    // A panicking test: the guard is dropped while unwinding.
    let panicked_in = std::sync::Mutex::new(String::new());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let db = migrator.test_db_postgres(&url).unwrap();
        *panicked_in.lock().unwrap() = db.name().to_owned();
        panic!("the test fails");
    }));
    assert!(outcome.is_err());
    let name = panicked_in.into_inner().unwrap();
    assert!(name.starts_with("migrate_test_"), "{name}");
    assert!(!exists(&mut admin, &name), "{name} is dropped after the panic");

    // One template for the set, complete, no half-built one left.
    let templates: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'migrate\\_template\\_%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(templates.iter().all(|t| !t.ends_with("_building")), "{templates:?}");
    assert!(!templates.is_empty());
    drop(two);
}

#[test]
fn a_failing_migration_leaves_no_template_and_names_its_file() {
    let Some(db) = tests::pg_database!() else { return };
    let url = db.server().url_for("postgres");
    let bad = [Migration::new(
        1,
        "bad",
        Script::new(
            "CREATE TABLE t (x int);\nCREATE TABLE t (x int);",
            "migrations/0001_bad.sql",
        ),
    )];
    let e = Migrator::new(&bad).test_db_postgres(&url).unwrap_err();
    assert!(e.to_string().contains("migrations/0001_bad.sql:2"), "{e}");
    let mut admin = Client::connect(&url, NoTls).unwrap();
    // Tests running at the same time on this server build templates of
    // their own for a moment; one left behind by this failure stays.
    let started = std::time::Instant::now();
    loop {
        let building: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'migrate\\_template\\_%\\_building'",
                &[],
            )
            .unwrap()
            .get(0);
        if building == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "a template being built stayed for 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_panicking_test_in_a_child_process_drops_its_database() {
    // The real shape of a failing #[test]: the test binary runs this
    // test's body in a child, where the panic unwinds out of the test
    // function and the harness reports it.
    if let Ok(url) = std::env::var("MIGRATE_TESTDB_CHILD_URL") {
        let migrations = migrations();
        let db = Migrator::new(&migrations).test_db_postgres(&url).unwrap();
        println!("database {}", db.name());
        panic!("a failing test");
    }
    let Some(db) = tests::pg_database!() else { return };
    let url = db.server().url_for("postgres");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "testdb::a_panicking_test_in_a_child_process_drops_its_database",
            "--exact",
            "--nocapture",
        ])
        .env("MIGRATE_TESTDB_CHILD_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child's test fails: {stdout}");
    let name = stdout
        .lines()
        .find_map(|l| l.strip_prefix("database "))
        .unwrap_or_else(|| panic!("the child names its database: {stdout}"));
    let mut admin = Client::connect(&url, NoTls).unwrap();
    assert!(
        !exists(&mut admin, name),
        "{name} is dropped after the child's test panicked"
    );
}
