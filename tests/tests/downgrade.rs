//! Downgrades (issue 14): `store_down = true` keeps down scripts in the
//! tracking table, and an older build rolls back what it does not know
//! with `Migrator::allow_downgrade(true)`, keeping the data.

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Error, Migration, Migrator, Script};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use tests::Package;

/// A migration with an up and a down script.
pub(crate) fn updown(version: u64, name: &str, up: &str, down: &str) -> Migration {
    Migration::new(
        version,
        name.to_owned(),
        Script::new(up.to_owned(), format!("migrations/{version:04}_{name}.up.sql")),
    )
    .with_down(Script::new(
        down.to_owned(),
        format!("migrations/{version:04}_{name}.down.sql"),
    ))
}

fn release() -> Vec<Migration> {
    vec![
        updown(
            1,
            "create_users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
            "DROP TABLE users;",
        ),
        updown(
            2,
            "add_phone",
            "ALTER TABLE users ADD phone TEXT;\nCREATE INDEX users_phone ON users (phone);",
            "DROP INDEX users_phone;\nALTER TABLE users DROP COLUMN phone;",
        ),
        updown(
            3,
            "create_notes",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, user INTEGER REFERENCES users (id), body TEXT);",
            "DROP TABLE notes;",
        ),
    ]
}

fn columns(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('_migrations')")
        .unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn users(conn: &Connection) -> Vec<(i64, String)> {
    let mut stmt = conn.prepare("SELECT id, name FROM users ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn store_down_adds_its_column_to_a_tracking_table_made_without_it() {
    let all = release();
    let dir = tests::scratch();
    let path = dir.path().join("app.db");
    let mut conn = Connection::open(&path).unwrap();
    // The tracking table as a release without store_down makes it.
    Migrator::new(&all[..1]).apply(&mut conn).unwrap();
    assert_eq!(
        columns(&conn),
        [
            "version",
            "name",
            "checksum",
            "applied_at",
            "duration_ms",
            "schema_version",
            "history_digest"
        ]
    );
    Migrator::new(&all).store_down(true).apply(&mut conn).unwrap();
    assert_eq!(
        columns(&conn),
        [
            "version",
            "name",
            "checksum",
            "applied_at",
            "duration_ms",
            "schema_version",
            "history_digest",
            "down_sql"
        ]
    );
    let mut stmt = conn
        .prepare("SELECT version, down_sql FROM _migrations ORDER BY version")
        .unwrap();
    let rows: Vec<(i64, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(stmt);
    assert_eq!(rows[0], (1, None), "applied before: no stored down");
    assert_eq!(rows[1].1.as_deref(), all[1].down().map(Script::sql));
    assert_eq!(rows[2].1.as_deref(), Some("DROP TABLE notes;"));
    // A build without store_down reads and extends the table as before.
    let mut four = release();
    four.push(updown(4, "t4", "CREATE TABLE t4 (x);", "DROP TABLE t4;"));
    Migrator::new(&four).apply(&mut conn).unwrap();
    Migrator::new(&four).migrate_to(&mut conn, 2).unwrap();
    assert_eq!(tests::applied_versions(&conn), [1, 2]);
}

#[test]
fn an_older_build_rolls_back_what_it_does_not_know_and_keeps_the_data() {
    let all = release();
    let mut conn = Connection::open_in_memory().unwrap();
    Migrator::new(&all).store_down(true).apply(&mut conn).unwrap();
    conn.execute_batch(
        "INSERT INTO users (name, phone) VALUES ('ada', '1'), ('grace', '2');\n\
         INSERT INTO notes (user, body) VALUES (1, 'hi');",
    )
    .unwrap();
    let before = users(&conn);
    let older = &all[..1];
    // Without allow_downgrade: refused, as before.
    let e = Migrator::new(older).apply(&mut conn).unwrap_err();
    assert!(matches!(e, Error::UnknownApplied { .. }), "{e}");
    let report = Migrator::new(older).allow_downgrade(true).apply(&mut conn).unwrap();
    let rolled: Vec<u64> = report.rolled_back().map(|s| s.version).collect();
    assert_eq!(rolled, [3, 2]);
    assert_eq!(tests::applied_versions(&conn), [1]);
    assert_eq!(users(&conn), before);
    assert_eq!(tests::user_tables(&conn), ["_migrations", "users"]);
    // And the newer build applies them again.
    Migrator::new(&all).store_down(true).apply(&mut conn).unwrap();
    assert_eq!(tests::applied_versions(&conn), [1, 2, 3]);
}

#[test]
fn a_migration_applied_without_a_stored_down_is_refused_before_anything_runs() {
    let all = release();
    let mut conn = Connection::open_in_memory().unwrap();
    Migrator::new(&all[..2]).store_down(true).apply(&mut conn).unwrap();
    Migrator::new(&all).apply(&mut conn).unwrap();
    let e = Migrator::new(&all[..1])
        .allow_downgrade(true)
        .apply(&mut conn)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "migration 3 `create_notes` is applied but not in this program (its newest is 1), and the database has no stored down script for it (it was applied without store_down = true), so it cannot be rolled back here; nothing was rolled back. Roll it back with the build that has it (`cargo migrate down --to 1` at that commit)"
    );
    assert_eq!(tests::applied_versions(&conn), [1, 2, 3]);
}

// PostgreSQL: tests/tests/pg_team.rs.

/// Writes `migrations` (with their downs) into `pkg` and builds the app:
/// the newer release; then removes the last one's files and builds again:
/// the older checkout. Returns both binaries, copied into `keep`.
pub(crate) fn two_releases(pkg: &Package, migrations: &[Migration], keep: &Path) -> (PathBuf, PathBuf) {
    let stem = |m: &Migration| format!("migrations/{:04}_{}", m.version(), m.name());
    for m in migrations {
        pkg.write(&format!("{}.up.sql", stem(m)), m.up().sql());
        pkg.write(&format!("{}.down.sql", stem(m)), m.down().unwrap().sql());
    }
    let mut binaries = Vec::new();
    for release in ["newer", "older"] {
        if release == "older" {
            let last = migrations.last().unwrap();
            std::fs::remove_file(pkg.path().join(format!("{}.up.sql", stem(last)))).unwrap();
            std::fs::remove_file(pkg.path().join(format!("{}.down.sql", stem(last)))).unwrap();
        }
        let (ok, e) = pkg.build();
        assert!(ok, "{e}");
        let binary = keep.join(format!("app-{release}"));
        std::fs::copy(pkg.binary(), &binary).unwrap();
        binaries.push(binary);
    }
    let older = binaries.pop().unwrap();
    (binaries.pop().unwrap(), older)
}

/// Runs a release of the app on `database` (`ALLOW_DOWNGRADE=1` when
/// `allow`): whether it succeeded, and its stdout and stderr.
pub(crate) fn run_release(binary: &Path, database: &OsStr, allow: bool) -> (bool, String) {
    let mut cmd = std::process::Command::new(binary);
    cmd.arg(database);
    if allow {
        cmd.env("ALLOW_DOWNGRADE", "1");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The app of the downgrade testbox: `ALLOW_DOWNGRADE=1` turns the
/// downgrade on.
const MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    let path = std::env::args().nth(1).expect("a database path");
    let mut conn = migrate_runtime::rusqlite::Connection::open(&path).expect("open");
    let migrator = migrations::migrator().allow_downgrade(std::env::var_os("ALLOW_DOWNGRADE").is_some());
    match migrator.apply(&mut conn) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
"#;

#[test]
fn an_older_release_of_the_app_downgrades_a_database_its_newer_release_migrated() {
    let pkg = Package::named("downgrade");
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\nstore_down = true\n";
    pkg.write("Cargo.toml", manifest);
    pkg.write("src/main.rs", MAIN_RS);
    let keep = tests::scratch();
    let (newer, older) = two_releases(&pkg, &release(), keep.path());
    let db = keep.path().join("app.db");
    let run = |binary: &Path, allow: bool| run_release(binary, db.as_os_str(), allow);
    let (ok, out) = run(&newer, false);
    assert!(ok, "{out}");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO users (name, phone) VALUES ('ada', '1'), ('grace', '2');\n\
         INSERT INTO notes (user, body) VALUES (2, 'compilers');",
    )
    .unwrap();
    let before = users(&conn);
    drop(conn);

    // The older release, as today: refused.
    let (ok, out) = run(&older, false);
    assert!(!ok);
    assert!(
        out.contains("the database has applied a migration this program does not know: 3 `create_notes`"),
        "{out}"
    );
    // With allow_downgrade: migration 3 rolled back by its stored down.
    let (ok, out) = run(&older, true);
    assert!(ok, "{out}");
    assert!(out.contains("rolled back 3 create_notes"), "{out}");
    let conn = Connection::open(&db).unwrap();
    assert_eq!(tests::applied_versions(&conn), [1, 2]);
    assert_eq!(users(&conn), before);
    assert_eq!(tests::user_tables(&conn), ["_migrations", "users"]);
    drop(conn);
    // The newer release again: 3 is applied again.
    let (ok, out) = run(&newer, false);
    assert!(ok && out.contains("applied 3 create_notes"), "{out}");
}

#[test]
fn cargo_migrate_up_stores_downs_with_the_config_key() {
    let pkg = Package::new();
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\nstore_down = true\n";
    pkg.write("Cargo.toml", manifest);
    pkg.write("migrations/0001_a.up.sql", "CREATE TABLE a (x);\n");
    pkg.write("migrations/0001_a.down.sql", "DROP TABLE a;\n");
    pkg.write("migrations/0002_b.sql", "CREATE TABLE b (x);\n");
    let out = pkg
        .migrate()
        .args(["up", "--database", "sqlite:app.db"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, down_sql FROM _migrations ORDER BY version")
        .unwrap();
    let rows: Vec<(i64, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(1, Some("DROP TABLE a;\n".to_owned())), (2, None)]);
}
