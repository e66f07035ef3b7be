//! The runtime's feature `sqlx` (feature `sqlx` of this crate, which CI
//! runs): a sqlx app migrates through its own pool's connection, on a real
//! database file, and keeps using it; a database sqlx's own migrator made
//! is continued through it with `adopt(Previous::Sqlx)` (on PostgreSQL, by
//! the PostgreSQL backend); and the build links one SQLite. Every test runs on a current-thread tokio runtime, as
//! an app's `main` would.

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

/// On PostgreSQL, where the runtime has no API on sqlx's `PgConnection`
/// (its feature `sqlx` is SQLite's): a database sqlx's own migrator took
/// to its second migration is continued at start-up by the PostgreSQL
/// backend with `adopt(Previous::Sqlx)`, reading sqlx's real
/// `_sqlx_migrations` (BYTEA checksums, TIMESTAMPTZ), nothing run twice.
#[test]
fn pg_a_database_sqlx_migrated_is_adopted_at_start_up() {
    let Some(db) = tests::pg_database!() else { return };
    let pkg = super::pg_adopt::imported("sqlx");
    let (migrations, pairs) = load(&pkg);
    let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    runtime().block_on(async {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
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
    let report = migrator().apply_postgres(&mut client).unwrap();
    assert_eq!(report.adopted, [1, 2], "taken over, not run again");
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
    assert_eq!(pg_adopt::recorded(&mut client)[..2], [(1, -1), (2, -1)]);
    assert_eq!(pg_adopt::rows(&mut client), before, "rows intact");
    assert!(
        migrator().apply_postgres(&mut client).unwrap().is_empty(),
        "the second start does nothing"
    );
    assert_eq!(sqlx_history(&mut client), old, "sqlx's history is left as it was");
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

/// The README's sqlx example is `migrate-runtime/examples/sqlx.rs`, which
/// CI compiles (clippy `-p migrate-runtime --all-targets --features sqlx`).
#[test]
fn the_readme_sqlx_example_is_the_compiled_example() {
    let readme = std::fs::read_to_string(tests::workspace_dir().join("README.md")).unwrap();
    let example = std::fs::read_to_string(tests::workspace_dir().join("migrate-runtime/examples/sqlx.rs")).unwrap();
    let after = readme
        .find("(`migrate-runtime/examples/sqlx.rs`)")
        .map(|at| &readme[at..])
        .expect("the README names the example");
    let block = after
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    assert_eq!(block, example, "README.md and migrate-runtime/examples/sqlx.rs differ");
}
