//! The runtime's feature `sqlx` (feature `sqlx` of this crate, which CI
//! runs): a sqlx app migrates through its own pool's connection, on a real
//! database file or the PostgreSQL test server, and keeps using it; a
//! database sqlx's own migrator made is continued through it with
//! `adopt(Previous::Sqlx)`; and the build links one SQLite. Every test runs
//! on a current-thread tokio runtime, as an app's `main` would.

use std::path::Path;
use std::process::Command;

use migrate_runtime::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use migrate_runtime::sqlx::{self, Connection as _, SqlitePool};
use migrate_runtime::{Error, Migration, Migrator, Previous, State};

use super::adopt::load;
use super::import::{fixture, run, with_fixture};
use super::pg_adopt;
use super::pg_async::{runtime, up};

/// The app's pool on a database file (created), as a sqlx app opens it.
async fn pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}

async fn tables_named(conn: &mut sqlx::SqliteConnection, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = ?")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

fn app_migrations() -> Vec<Migration> {
    vec![
        up(
            1,
            "create_users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
        ),
        up(
            2,
            "add_email",
            "ALTER TABLE users ADD COLUMN email TEXT;\nCREATE UNIQUE INDEX users_email ON users (email);",
        ),
    ]
}

#[test]
fn a_sqlx_app_migrates_through_its_pool_and_keeps_using_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    runtime().block_on(async {
        let pool = pool(&path).await;
        let migrations = app_migrations();
        let mut conn = pool.acquire().await.unwrap();
        let report = Migrator::new(&migrations).apply_sqlx_sqlite(&mut conn).await.unwrap();
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 2]);

        // The app's own queries, on the same connection, then on another of the pool.
        sqlx::query("INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com')")
            .execute(&mut *conn)
            .await
            .unwrap();
        let duplicate = sqlx::query("INSERT INTO users (name, email) VALUES ('Eve', 'ada@example.com')")
            .execute(&mut *conn)
            .await;
        assert!(duplicate.is_err(), "migration 2's unique index is in force");
        // sqlx's busy timeout (5 s by default) is the connection's again.
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        drop(conn);
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(names, ["Ada"]);

        // A second start does nothing; status and pending agree.
        let mut conn = pool.acquire().await.unwrap();
        let migrator = Migrator::new(&migrations);
        assert!(migrator.apply_sqlx_sqlite(&mut conn).await.unwrap().is_empty());
        assert!(migrator.pending_sqlx_sqlite(&mut conn).await.unwrap().is_empty());
        let status = migrator.status_sqlx_sqlite(&mut conn).await.unwrap();
        assert!(status.entries.iter().all(|e| e.state == State::Applied));
        drop(conn);
        pool.close().await;
    });
    // The tracking table is in the file, as `apply` on rusqlite writes it.
    let conn = migrate_runtime::rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM _migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2]);
}

/// Two processes' worth of starts (threads, each with its own runtime and
/// sqlx connection to one file) at once: each migration runs once, the
/// other start waits for SQLite's write lock and finds nothing to do.
#[test]
fn concurrent_starts_through_sqlx_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let barrier = std::sync::Barrier::new(2);
    let applied: Vec<Vec<u64>> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    runtime().block_on(async {
                        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
                        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                        let migrations = app_migrations();
                        barrier.wait();
                        let report = Migrator::new(&migrations).apply_sqlx_sqlite(&mut conn).await.unwrap();
                        report.applied().map(|s| s.version).collect()
                    })
                })
            })
            .collect();
        starts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = applied.concat();
    all.sort_unstable();
    assert_eq!(all, [1, 2], "each migration applied by exactly one start: {applied:?}");
}

#[test]
fn refusals_come_back_through_sqlx_and_leave_the_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    runtime().block_on(async {
        let pool = pool(&path).await;
        let mut conn = pool.acquire().await.unwrap();
        let migrations = app_migrations();
        Migrator::new(&migrations).apply_sqlx_sqlite(&mut conn).await.unwrap();

        // Migration 1 edited after it was applied: refused, nothing changed.
        let mut edited = app_migrations();
        edited[0] = up(
            1,
            "create_users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER);",
        );
        edited.push(up(3, "add_posts", "CREATE TABLE posts (id INTEGER PRIMARY KEY);"));
        let e = Migrator::new(&edited).apply_sqlx_sqlite(&mut conn).await.unwrap_err();
        assert!(matches!(e, Error::Modified { version: 1, .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "migrations/0001_create_users.up.sql: migration 1 `create_users` was changed after it was applied"
            ),
            "{text}"
        );
        let posts = tables_named(&mut conn, "posts").await;
        assert_eq!(posts, 0, "nothing of the run was applied");

        // A failing statement: file, line and SQLite's message, rolled back.
        let failing = [
            app_migrations().remove(0),
            app_migrations().remove(1),
            up(
                3,
                "bad",
                "CREATE TABLE posts (id INTEGER PRIMARY KEY);\nINSERT INTO missing VALUES (1);",
            ),
        ];
        let e = Migrator::new(&failing).apply_sqlx_sqlite(&mut conn).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("migrations/0003_bad.up.sql:2: up migration 3 `bad` failed: no such table: missing"),
            "{text}"
        );
        // Inside the app's own transaction: refused, as on rusqlite.
        let mut tx = conn.begin().await.unwrap();
        let e = Migrator::new(&migrations).apply_sqlx_sqlite(&mut tx).await.unwrap_err();
        assert!(matches!(e, Error::InTransaction), "{e}");
        tx.rollback().await.unwrap();

        // The connection still works, outside any transaction.
        sqlx::query("INSERT INTO users (name) VALUES ('Grace')")
            .execute(&mut *conn)
            .await
            .unwrap();
        let posts = tables_named(&mut conn, "posts").await;
        assert_eq!(posts, 0, "the failed migration was rolled back");
        drop(conn);
        pool.close().await;
    });
}

/// sqlx's own migrator (`sqlx::migrate::Migrator` from a directory, as
/// `sqlx::migrate!` and `sqlx migrate run` do) loaded with the sqlx
/// fixture's first two migrations.
async fn sqlx_migrator_of_the_first_two(scratch: &Path) -> sqlx::migrate::Migrator {
    let first_two = scratch.join("sqlx-first-two");
    std::fs::create_dir_all(&first_two).unwrap();
    for file in [
        "20240101120000_create_users.up.sql",
        "20240101120000_create_users.down.sql",
        "20240215093000_add_email.up.sql",
        "20240215093000_add_email.down.sql",
    ] {
        std::fs::copy(fixture("sqlx").join(file), first_two.join(file)).unwrap();
    }
    sqlx::migrate::Migrator::new(first_two.as_path()).await.unwrap()
}

/// The first two migrations run by sqlx's migrator on the app's pool, then
/// rows written.
async fn migrated_by_sqlx(pool: &SqlitePool, scratch: &Path) {
    sqlx_migrator_of_the_first_two(scratch).await.run(pool).await.unwrap();
    sqlx::query("INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com')")
        .execute(pool)
        .await
        .unwrap();
}

async fn users(conn: &mut sqlx::SqliteConnection) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as("SELECT id, name, email FROM users ORDER BY id")
        .fetch_all(conn)
        .await
        .unwrap()
}

#[test]
fn a_database_sqlx_migrated_is_adopted_through_the_same_connection() {
    let (pkg, args) = with_fixture("sqlx");
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 0, "{err}");
    let (migrations, pairs) = load(&pkg);
    let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    runtime().block_on(async {
        let pool = pool(&pkg.path().join("app.db")).await;
        migrated_by_sqlx(&pool, pkg.path()).await;
        let mut conn = pool.acquire().await.unwrap();
        let before = users(&mut conn).await;
        let sqlx_history: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(
            sqlx_history,
            [(20240101120000, true), (20240215093000, true)],
            "sqlx's own record"
        );

        let migrator = || Migrator::new(&migrations).imported(&mapping).adopt(Previous::Sqlx);
        let report = migrator().apply_sqlx_sqlite(&mut conn).await.unwrap();
        assert_eq!(report.adopted, [1, 2], "taken over, not run again");
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
        assert_eq!(users(&mut conn).await, before, "rows intact");
        let recorded: Vec<(i64, i64)> = sqlx::query_as("SELECT version, duration_ms FROM _migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(recorded[..2], [(1, -1), (2, -1)], "1 and 2 recorded without running");
        assert!(
            migrator().apply_sqlx_sqlite(&mut conn).await.unwrap().is_empty(),
            "the second start does nothing"
        );
        let after: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(after, sqlx_history, "sqlx's history is left as it was");
        drop(conn);
        pool.close().await;
    });
}

/// A database sqlx's own migrator took to its second migration, then rows
/// written; continued at start-up through the app's own sqlx
/// `PgConnection` with `adopt(Previous::Sqlx)`, reading sqlx's real
/// `_sqlx_migrations` (BYTEA checksums, TIMESTAMPTZ): nothing run twice,
/// rows intact, sqlx's history left as it was.
#[test]
fn pg_a_database_sqlx_migrated_is_adopted_through_the_same_connection() {
    let Some(db) = tests::pg_database!() else { return };
    let pkg = super::pg_adopt::imported("sqlx");
    let (migrations, pairs) = load(&pkg);
    let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let pool = || async { sqlx::PgPool::connect(&db.url).await.unwrap() };
    runtime().block_on(async {
        let pool = pool().await;
        sqlx_migrator_of_the_first_two(pkg.path())
            .await
            .run(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let mut client = db.client();
    pg_adopt::add_rows(&mut client);
    let before = pg_adopt::rows(&mut client);
    let sqlx_history = |client: &mut migrate_runtime::postgres::Client| -> Vec<(i64, bool)> {
        client
            .query("SELECT version, success FROM _sqlx_migrations ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let old = sqlx_history(&mut client);
    assert_eq!(
        old,
        [(20240101120000, true), (20240215093000, true)],
        "sqlx's own record"
    );
    let migrator = || {
        Migrator::new(&migrations)
            .imported(&mapping)
            .ignore(&["_sqlx_migrations"])
            .adopt(Previous::Sqlx)
    };
    runtime().block_on(async {
        let pool = pool().await;
        let mut conn = pool.acquire().await.unwrap();
        let report = migrator().apply_sqlx_pg(&mut conn).await.unwrap();
        assert_eq!(report.adopted, [1, 2], "taken over, not run again");
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
        assert!(
            migrator().apply_sqlx_pg(&mut conn).await.unwrap().is_empty(),
            "the second start does nothing"
        );
        drop(conn);
        pool.close().await;
    });
    assert_eq!(pg_adopt::recorded(&mut client)[..2], [(1, -1), (2, -1)]);
    assert_eq!(pg_adopt::rows(&mut client), before, "rows intact");
    assert_eq!(sqlx_history(&mut client), old, "sqlx's history is left as it was");
}

/// PostgreSQL migrations of the app: an index with INCLUDE and a foreign
/// key, so the recorded schema (read through the sqlx connection) has
/// booleans, integers and text arrays.
fn pg_app_migrations() -> Vec<Migration> {
    vec![
        up(
            1,
            "create_users",
            "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);",
        ),
        up(
            2,
            "add_email",
            "ALTER TABLE users ADD COLUMN email text;\nCREATE UNIQUE INDEX users_email ON users (email) INCLUDE (name);\n\
             CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE);",
        ),
    ]
}

async fn pg_versions(conn: &mut sqlx::PgConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _migrations ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// `f` on a thread of its own: the sync driver runs a runtime of its own,
/// which cannot start on a thread that drives the test's.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

async fn advisory_locks_held(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[test]
fn pg_a_sqlx_app_migrates_through_its_pool_and_keeps_using_it() {
    let Some(db) = tests::pg_database!() else { return };
    runtime().block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url)
            .await
            .unwrap();
        let migrations = pg_app_migrations();
        let migrator = Migrator::new(&migrations);
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(migrator.pending_sqlx_pg(&mut conn).await.unwrap().len(), 2);
        let report = migrator.apply_sqlx_pg(&mut conn).await.unwrap();
        assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 2]);

        // The app's own queries, on the same connection, then on the pool.
        sqlx::query("INSERT INTO users (name, email) VALUES ($1, $2)")
            .bind("Ada")
            .bind("ada@example.com")
            .execute(&mut *conn)
            .await
            .unwrap();
        let duplicate = sqlx::query("INSERT INTO users (name, email) VALUES ('Eve', 'ada@example.com')")
            .execute(&mut *conn)
            .await;
        assert!(duplicate.is_err(), "migration 2's unique index is in force");
        assert_eq!(advisory_locks_held(&mut conn).await, 0, "no lock kept");
        let open: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(open, "\"$user\", public", "the session's settings are the app's again");
        drop(conn);
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(names, ["Ada"]);

        // A second start does nothing (the schema recorded by the first is
        // the live one); status and pending agree.
        let mut conn = pool.acquire().await.unwrap();
        assert!(migrator.apply_sqlx_pg(&mut conn).await.unwrap().is_empty());
        assert!(migrator.pending_sqlx_pg(&mut conn).await.unwrap().is_empty());
        let status = migrator.status_sqlx_pg(&mut conn).await.unwrap();
        assert!(status.entries.iter().all(|e| e.state == State::Applied));
        assert_eq!(pg_versions(&mut conn).await, [1, 2]);

        // A change behind the migrations' back is drift, read through sqlx.
        sqlx::query("ALTER TABLE posts ADD COLUMN title text")
            .execute(&mut *conn)
            .await
            .unwrap();
        let e = migrator.apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(matches!(e, Error::Drift { version: Some(2), .. }), "{e}");
        assert!(e.to_string().contains("title"), "{e}");
        sqlx::query("ALTER TABLE posts DROP COLUMN title")
            .execute(&mut *conn)
            .await
            .unwrap();

        // Down to 0 and up again, through the same connection.
        let rollbackable: Vec<Migration> = pg_app_migrations()
            .into_iter()
            .zip([
                "DROP TABLE users;",
                "DROP TABLE posts;\nDROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;",
            ])
            .map(|(m, down)| {
                let file = format!("migrations/{:04}_{}.down.sql", m.version(), m.name());
                m.with_down(migrate_runtime::Script::new(down.to_owned(), file))
            })
            .collect();
        let report = Migrator::new(&rollbackable)
            .migrate_to_sqlx_pg(&mut conn, 0)
            .await
            .unwrap();
        assert_eq!(report.rolled_back().count(), 2);
        assert!(pg_versions(&mut conn).await.is_empty());
        drop(conn);
        pool.close().await;
    });
}

#[test]
fn pg_refusals_and_failures_come_back_through_sqlx_and_leave_the_connection_usable() {
    let Some(db) = tests::pg_database!() else { return };
    runtime().block_on(async {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let migrations = pg_app_migrations();
        Migrator::new(&migrations).apply_sqlx_pg(&mut conn).await.unwrap();

        // Migration 1 edited after it was applied: refused, nothing changed.
        let mut edited = pg_app_migrations();
        edited[0] = up(
            1,
            "create_users",
            "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, age int);",
        );
        edited.push(up(3, "add_tags", "CREATE TABLE tags (id bigint PRIMARY KEY);"));
        let e = Migrator::new(&edited).apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(matches!(e, Error::Modified { version: 1, .. }), "{e}");
        assert!(
            e.to_string().starts_with(
                "migrations/0001_create_users.up.sql: migration 1 `create_users` was changed after it was applied"
            ),
            "{e}"
        );
        assert_eq!(pg_versions(&mut conn).await, [1, 2]);

        // A failing statement: the server's position gives the line.
        let mut failing = pg_app_migrations();
        failing.push(up(
            3,
            "bad",
            "CREATE TABLE tags (id bigint PRIMARY KEY);\nINSERT INTO tags VALUES (1);\n\nSELECT nope FROM tags;\n",
        ));
        let e = Migrator::new(&failing).apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(
            e.to_string().starts_with(
                "migrations/0003_bad.up.sql:4: up migration 3 `bad` failed: column \"nope\" does not exist (SQLSTATE 42703)"
            ),
            "{e}"
        );
        assert!(e.to_string().contains("it was rolled back"), "{e}");
        assert!(matches!(e, Error::Sql { version: 3, line: 4, .. }), "{e:?}");
        // The same error as on the sync driver, word for word (its own
        // thread: the sync driver runs a runtime of its own).
        let sync = off_runtime(|| Migrator::new(&failing).apply_postgres(&mut db.client()).unwrap_err());
        assert_eq!(e.to_string(), sync.to_string());

        // Without a position (a constraint violated while a statement
        // runs): the statement found one at a time, with the server's detail.
        failing[2] = up(
            3,
            "dup",
            "CREATE TABLE tags (id bigint PRIMARY KEY);\nINSERT INTO tags VALUES (1);\n-- a comment\nINSERT INTO tags\n  VALUES (1);\n",
        );
        let e = Migrator::new(&failing).apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(
            e.to_string().starts_with("migrations/0003_dup.up.sql:4: up migration 3 `dup` failed: duplicate key value violates unique constraint \"tags_pkey\" (SQLSTATE 23505); detail: Key (id)=(1) already exists."),
            "{e}"
        );

        // A no-transaction migration failing outside a transaction, under
        // the session-level lock: released on this path too.
        failing[2] = Migration::new(
            3,
            "bad_index".to_owned(),
            migrate_runtime::Script::new(
                "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_name ON users (name);\nCREATE INDEX CONCURRENTLY users_z ON users (z);\n".to_owned(),
                "migrations/0003_bad_index.up.sql".to_owned(),
            )
            .with_no_transaction(true),
        );
        let e = Migrator::new(&failing).apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(
            e.to_string().starts_with(
                "migrations/0003_bad_index.up.sql:3: up migration 3 `bad_index` failed: column \"z\" does not exist"
            ),
            "{e}"
        );

        // The reused connection keeps no lock and no transaction: another
        // connection takes the lock at once, and this one goes on working.
        assert_eq!(advisory_locks_held(&mut conn).await, 0, "no lock kept after the failures");
        assert!(off_runtime(|| super::postgres::lock_is_free(&db, "_migrations")));
        sqlx::query("INSERT INTO users (name) VALUES ('Grace')")
            .execute(&mut *conn)
            .await
            .unwrap();
        let tags: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'tags'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(tags, 0, "the failed migrations were rolled back");
        assert_eq!(pg_versions(&mut conn).await, [1, 2]);

        // Inside the app's own transaction: refused, nothing run.
        let mut tx = conn.begin().await.unwrap();
        let e = Migrator::new(&edited).apply_sqlx_pg(&mut tx).await.unwrap_err();
        assert!(matches!(e, Error::InTransaction), "{e}");
        tx.rollback().await.unwrap();

        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        drop(conn);
        pool.close().await;
    });
}

/// A server error outside the migrations' statements (a role that may not
/// create the tracking table) is [`Error::Sqlx`], worded as the sync
/// driver's [`Error::Postgres`]: what we were doing, the server's message
/// and SQLSTATE, and what to do.
#[test]
fn pg_a_server_error_outside_the_scripts_is_worded_as_on_the_other_drivers() {
    let Some(db) = tests::pg_database!() else { return };
    let Some((url, role)) = super::postgres::unprivileged_url(&db) else {
        return;
    };
    let migrations = pg_app_migrations();
    let mut client = migrate_runtime::postgres::Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
    let sync = Migrator::new(&migrations).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(sync, Error::Postgres { .. }), "{sync:?}");
    runtime().block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let e = Migrator::new(&migrations).apply_sqlx_pg(&mut conn).await.unwrap_err();
        assert!(matches!(e, Error::Sqlx { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("creating the tracking table \"_migrations\": permission denied for schema public (SQLSTATE 42501); the role lacks a privilege"),
            "{e}"
        );
        assert_eq!(e.to_string(), sync.to_string(), "worded as on the sync driver");
        sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    });
    drop(client);
    super::postgres::drop_role(&mut db.client(), &role);
}

/// Two processes' worth of starts (threads, each with its own runtime and
/// sqlx connection to one database) at once: each migration runs once.
#[test]
fn pg_concurrent_starts_through_sqlx_apply_each_migration_once() {
    let Some(db) = tests::pg_database!() else { return };
    let barrier = std::sync::Barrier::new(3);
    let applied: Vec<Vec<u64>> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    runtime().block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                        let mut migrations = pg_app_migrations();
                        migrations.push(up(3, "slow", "SELECT pg_sleep(0.2);\nCREATE TABLE tags (id bigint);"));
                        barrier.wait();
                        let report = Migrator::new(&migrations).apply_sqlx_pg(&mut conn).await.unwrap();
                        report.applied().map(|s| s.version).collect()
                    })
                })
            })
            .collect();
        starts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = applied.concat();
    all.sort_unstable();
    assert_eq!(
        all,
        [1, 2, 3],
        "each migration applied by exactly one start: {applied:?}"
    );
}

/// `cargo tree` of the runtime with `sqlx` and no bundled SQLite of its
/// own, the SQLite coming from sqlx's `sqlite-bundled` as in a sqlx app:
/// one `libsqlite3-sys`, reached from both rusqlite and sqlx-sqlite.
#[test]
fn one_libsqlite3_sys_with_the_sqlx_feature() {
    let out = Command::new(env!("CARGO"))
        .current_dir(tests::workspace_dir())
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "migrate-runtime",
            "--no-default-features",
            "--features",
            "rusqlite,sqlx,sqlx/sqlite-bundled",
            "-e",
            "normal",
            "-i",
            "libsqlite3-sys",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let roots: Vec<&str> = text.lines().filter(|l| l.starts_with("libsqlite3-sys ")).collect();
    assert_eq!(roots.len(), 1, "one libsqlite3-sys:\n{text}");
    assert!(
        text.contains("── rusqlite v") && text.contains("── sqlx-sqlite v"),
        "both drivers on it:\n{text}"
    );
}

/// The README's sqlx examples are `migrate-runtime/examples/sqlx.rs` and
/// `sqlx_pg.rs`, which CI compiles (clippy `-p migrate-runtime
/// --all-targets` with `sqlx`, and with `postgres,sqlx`).
#[test]
fn the_readme_sqlx_examples_are_the_compiled_examples() {
    let readme = std::fs::read_to_string(tests::workspace_dir().join("README.md")).unwrap();
    for name in ["sqlx.rs", "sqlx_pg.rs"] {
        let path = format!("migrate-runtime/examples/{name}");
        let example = std::fs::read_to_string(tests::workspace_dir().join(&path)).unwrap();
        let after = readme
            .find(&format!("(`{path}`)"))
            .map(|at| &readme[at..])
            .expect("the README names the example");
        let block = after
            .split("```rust\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        assert_eq!(block, example, "README.md and {path} differ");
    }
}

/// `cargo tree` of the runtime as each kind of sqlx app builds it: an
/// SQLite app (`sqlx` with the default `rusqlite`) compiles no PostgreSQL
/// driver of sqlx's, a PostgreSQL app (`postgres,sqlx`, no default
/// features) no SQLite at all.
#[test]
fn each_sqlx_build_compiles_only_its_backends_driver() {
    let tree = |features: &[&str], package: &str| {
        let out = Command::new(env!("CARGO"))
            .current_dir(tests::workspace_dir())
            .args([
                "tree",
                "--locked",
                "--offline",
                "-p",
                "migrate-runtime",
                "-e",
                "normal",
                "-i",
                package,
            ])
            .args(features)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (out, err) = tree(&["--features", "sqlx"], "sqlx-postgres");
    assert!(
        out.is_empty() && err.contains("did not match any packages"),
        "{out}{err}"
    );
    let pg_only = ["--no-default-features", "--features", "postgres,sqlx"];
    let (out, err) = tree(&pg_only, "sqlx-postgres");
    assert!(out.starts_with("sqlx-postgres v"), "{out}{err}");
    for sqlite in ["sqlx-sqlite", "libsqlite3-sys"] {
        let (out, err) = tree(&pg_only, sqlite);
        assert!(
            !out.contains(sqlite),
            "{sqlite} in a PostgreSQL-only build:\n{out}{err}"
        );
    }
}
