//! The async API on `tokio-postgres` (feature `tokio-postgres`), against the
//! test server. Every test runs on a current-thread tokio runtime, where the
//! connection's task can only make progress while the migrator awaits: a
//! blocking call anywhere in the run would hang the test instead of passing.

use std::time::Duration;

use migrate_runtime::tokio_postgres::{self, Client, NoTls};
use migrate_runtime::{Error, Migration, Migrator, Script, State};
use tests::pg_database;

pub(crate) fn up(version: u64, name: &str, sql: &str) -> Migration {
    Migration::new(
        version,
        name.to_owned(),
        Script::new(sql.to_owned(), format!("migrations/{version:04}_{name}.up.sql")),
    )
}

fn updown(version: u64, name: &str, sql: &str, down: &str) -> Migration {
    up(version, name, sql).with_down(Script::new(
        down.to_owned(),
        format!("migrations/{version:04}_{name}.down.sql"),
    ))
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A connection whose `Connection` half runs as a task, as an app does.
async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn versions(client: &Client) -> Vec<i64> {
    client
        .query("SELECT version FROM _migrations ORDER BY version", &[])
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[test]
fn pg_async_applies_records_rolls_back_and_reports_status() {
    let Some(db) = pg_database!() else { return };
    runtime().block_on(async {
        let mut client = connect(&db.url).await;
        let ms = [
            updown(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY);", "DROP TABLE users;"),
            updown(
                2,
                "posts",
                "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\nCREATE FUNCTION n() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;",
                "DROP FUNCTION n();\nDROP TABLE posts;",
            ),
        ];
        let migrator = Migrator::new(&ms);
        assert_eq!(migrator.pending_tokio_postgres(&mut client).await.unwrap().len(), 2);
        let report = migrator.apply_tokio_postgres(&mut client).await.unwrap();
        assert_eq!(report.applied().count(), 2);
        assert_eq!(versions(&client).await, [1, 2]);
        let again = migrator.apply_tokio_postgres(&mut client).await.unwrap();
        assert!(again.is_empty(), "nothing pending the second time");
        let status = migrator.status_tokio_postgres(&mut client).await.unwrap();
        assert!(status.entries.iter().all(|e| e.state == State::Applied));

        let down = migrator.migrate_to_tokio_postgres(&mut client, 0).await.unwrap();
        assert_eq!(down.rolled_back().count(), 2);
        assert!(versions(&client).await.is_empty());
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('_migrations', '_migrations_head')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0);
    });
}

#[test]
fn pg_async_failure_rolls_back_that_migration_names_the_line_and_keeps_no_lock() {
    let Some(db) = pg_database!() else { return };
    runtime().block_on(async {
        let mut client = connect(&db.url).await;
        let ms = [
            up(1, "ok", "CREATE TABLE ok (x integer);"),
            up(
                2,
                "bad",
                "CREATE TABLE half (x integer);\nINSERT INTO half VALUES (1);\nSELECT nope FROM half;\n",
            ),
        ];
        let e = Migrator::new(&ms).apply_tokio_postgres(&mut client).await.unwrap_err();
        match &e {
            Error::Sql {
                version,
                file,
                line,
                message,
                ..
            } => {
                assert_eq!(
                    (*version, file.as_str(), *line),
                    (2, "migrations/0002_bad.up.sql", 3),
                    "{e}"
                );
                assert!(message.contains("column \"nope\" does not exist"), "{e}");
            }
            other => panic!("expected an SQL error, got {other}"),
        }
        assert_eq!(versions(&client).await, [1], "what ran before it stays applied");
        let half: i64 = client
            .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'half'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(half, 0, "the failed migration left nothing");
        // The same connection, reused: no transaction left open, and another
        // session takes the migration lock at once.
        client.batch_execute("SELECT 1").await.unwrap();
        let mut other = connect(&db.url).await;
        let fixed = [
            up(1, "ok", "CREATE TABLE ok (x integer);"),
            up(2, "bad", "CREATE TABLE half (x integer);"),
        ];
        let report = tokio::time::timeout(
            Duration::from_secs(5),
            Migrator::new(&fixed).apply_tokio_postgres(&mut other),
        )
        .await
        .expect("the lock is free")
        .unwrap();
        assert_eq!(report.applied().count(), 1);
    });
}

#[test]
fn pg_async_two_tasks_on_one_thread_start_at_once_and_each_migration_runs_once() {
    let Some(db) = pg_database!() else { return };
    runtime().block_on(async {
        let ms = [
            up(1, "slow", "SELECT pg_sleep(0.5);\nCREATE TABLE t1 (x integer);"),
            up(2, "next", "CREATE TABLE t2 (x integer);"),
            Migration::new(
                3,
                "concurrently".to_owned(),
                Script::new(
                    "CREATE INDEX CONCURRENTLY t2_x ON t2 (x);".to_owned(),
                    "migrations/0003_concurrently.sql".to_owned(),
                )
                .with_no_transaction(true),
            ),
        ];
        let (mut a, mut b) = (connect(&db.url).await, connect(&db.url).await);
        let migrator = Migrator::new(&ms);
        // One thread: while one task waits for the lock (or the server), the
        // other runs. A blocking wait would never finish.
        let (ra, rb) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(
                migrator.apply_tokio_postgres(&mut a),
                migrator.apply_tokio_postgres(&mut b)
            )
        })
        .await
        .expect("both runs finish");
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.applied().count() + rb.applied().count(),
            3,
            "each migration once: {ra:?} {rb:?}"
        );
        assert_eq!(versions(&a).await, [1, 2, 3]);
        let valid: bool = a
            .query_one(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 't2_x'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(valid);
    });
}

/// The async path's NOTICEs: a connection driven by a `NoticeForwarder`
/// (spawned instead of the connection itself) reports a migration's
/// `RAISE NOTICE` / `RAISE WARNING`, transactional or not, failed or not,
/// as `Event::Notice` of that migration; nothing outside migrations.
#[test]
fn pg_async_notices_of_a_migration_reach_the_events_through_a_forwarder() {
    use std::sync::Mutex;

    use migrate_runtime::{Event, NoticeForwarder};
    let Some(db) = pg_database!() else { return };
    runtime().block_on(async {
        let notices = NoticeForwarder::new();
        let (mut client, connection) = tokio_postgres::connect(&db.url, NoTls).await.expect("connect");
        let driven = tokio::spawn(notices.drive(connection));
        // Said before any migration runs: dropped.
        client
            .batch_execute("DO $$ BEGIN RAISE NOTICE 'before'; END $$")
            .await
            .unwrap();
        let ms = [
            up(
                1,
                "backfill",
                "CREATE TABLE t (x integer);\nDO $$ BEGIN RAISE NOTICE 'backfilled % rows', 3 USING HINT = 'none left'; END $$;\n",
            ),
            Migration::new(
                2,
                "index".to_owned(),
                Script::new(
                    "DO $$ BEGIN RAISE WARNING 'slow on big tables'; END $$;\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n"
                        .to_owned(),
                    "migrations/0002_index.sql".to_owned(),
                )
                .with_no_transaction(true),
            ),
            up(3, "fails", "DO $$ BEGIN RAISE NOTICE 'about to fail'; END $$;\nSELECT nope;\n"),
        ];
        // (version, severity, message, hint) of each notice.
        type Seen = Vec<(u64, String, String, Option<String>)>;
        let seen: Mutex<Seen> = Mutex::new(Vec::new());
        let result = Migrator::new(&ms)
            .notices_from(&notices)
            .on_event(|e| {
                if let Event::Notice { migration, notice, .. } = e {
                    seen.lock().unwrap().push((
                        migration.version(),
                        notice.severity.clone(),
                        notice.message.clone(),
                        notice.hint.clone(),
                    ));
                }
            })
            .apply_tokio_postgres(&mut client)
            .await;
        assert!(matches!(result, Err(Error::Sql { version: 3, .. })), "{result:?}");
        assert_eq!(
            seen.into_inner().unwrap(),
            [
                (1, "NOTICE".to_owned(), "backfilled 3 rows".to_owned(), Some("none left".to_owned())),
                (2, "WARNING".to_owned(), "slow on big tables".to_owned(), None),
                (3, "NOTICE".to_owned(), "about to fail".to_owned(), None),
            ]
        );
        assert_eq!(versions(&client).await, [1, 2]);

        // Said between migrations: not carried into the next run's events.
        client
            .batch_execute("DO $$ BEGIN RAISE NOTICE 'app query'; END $$")
            .await
            .unwrap();
        let fixed = [ms[0].clone(), ms[1].clone(), up(3, "fixed", "SELECT 1;")];
        let seen = Mutex::new(Vec::new());
        Migrator::new(&fixed)
            .notices_from(&notices)
            .on_event(|e| {
                if let Event::Notice { notice, .. } = e {
                    seen.lock().unwrap().push(notice.message.clone());
                }
            })
            .apply_tokio_postgres(&mut client)
            .await
            .unwrap();
        assert_eq!(seen.into_inner().unwrap(), Vec::<String>::new());

        // The driven connection ends as `connection.await` would.
        drop(client);
        driven.await.expect("the task").expect("a clean end");
    });
}

/// The `main.rs` of an async testbox: applies the generated module with
/// `apply_async` (or, given `down`, goes down to version 1 with
/// `migrate_to_async`) on `DATABASE_URL`, on a tokio runtime.
const ASYNC_MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    use migrate_runtime::tokio_postgres::{self, NoTls};
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let result = runtime.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        match std::env::args().nth(1).as_deref() {
            Some("down") => migrations::migrate_to_async(&mut client, migrations::Version::Users).await,
            _ => migrations::apply_async(&mut client).await,
        }
    });
    match result {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
"#;

/// An app on tokio with the runtime's `tokio-postgres` feature only: the
/// generated module has `apply_async` and `migrate_to_async` on
/// `tokio_postgres::Client` (with `postgres` only it compiles without
/// them: the PostgreSQL testbox of `postgres.rs`).
#[test]
fn pg_async_testbox_the_generated_module_applies_and_migrates_on_tokio_postgres() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::postgres(
        "testbox-async",
        r#""tokio-postgres""#,
        r#"tokio = { version = "1", default-features = false, features = ["rt"] }"#,
        "",
    );
    pkg.write("src/main.rs", ASYNC_MAIN_RS);
    pkg.write(
        "migrations/0001_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    pkg.write("migrations/0001_users.down.sql", "DROP TABLE users;\n");
    pkg.write(
        "migrations/0002_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n",
    );
    pkg.write("migrations/0002_posts.down.sql", "DROP TABLE posts;\n");
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");

    let exe = tests::testbox_target().join("debug").join("testbox-async");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&exe)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = run(&[]);
    assert!(
        first.contains("applied 1 users") && first.contains("applied 2 posts"),
        "{first}"
    );
    let mut client = db.client();
    let versions = |client: &mut migrate_runtime::postgres::Client| -> Vec<i64> {
        client
            .query("SELECT version FROM _migrations ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(versions(&mut client), [1, 2]);
    assert!(run(&[]).contains("nothing to do"));
    let down = run(&["down"]);
    assert!(down.contains("rolled back 2 posts"), "{down}");
    assert_eq!(versions(&mut client), [1]);
}

/// `store_down` and `allow_downgrade` on the async driver: the same
/// backend, the stored downs written and run (the no-transaction one
/// outside a transaction), the rows kept.
#[test]
fn pg_async_an_older_build_downgrades_with_the_stored_downs() {
    let Some(db) = pg_database!() else { return };
    runtime().block_on(async {
        let mut client = connect(&db.url).await;
        let ms = [
            updown(
                1,
                "users",
                "CREATE TABLE users (id bigint PRIMARY KEY, name text);",
                "DROP TABLE users;",
            ),
            updown(
                2,
                "phone",
                "ALTER TABLE users ADD phone text;",
                "ALTER TABLE users DROP COLUMN phone;",
            ),
            Migration::new(
                3,
                "users_name",
                Script::new(
                    "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_name ON users (name);",
                    "migrations/0003_users_name.up.sql",
                )
                .with_no_transaction(true),
            )
            .with_down(
                Script::new(
                    "-- migrate:no-transaction\nDROP INDEX CONCURRENTLY users_name;",
                    "migrations/0003_users_name.down.sql",
                )
                .with_no_transaction(true),
            ),
        ];
        Migrator::new(&ms)
            .store_down(true)
            .apply_tokio_postgres(&mut client)
            .await
            .unwrap();
        client
            .batch_execute("INSERT INTO users (id, name, phone) VALUES (1, 'ada', '1')")
            .await
            .unwrap();
        let report = Migrator::new(&ms[..1])
            .allow_downgrade(true)
            .apply_tokio_postgres(&mut client)
            .await
            .unwrap();
        assert_eq!(report.rolled_back().map(|s| s.version).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(versions(&client).await, [1]);
        let name: String = client.query_one("SELECT name FROM users", &[]).await.unwrap().get(0);
        assert_eq!(name, "ada");
        let index: Option<String> = client
            .query_one("SELECT to_regclass('users_name')::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(index, None);
    });
}
