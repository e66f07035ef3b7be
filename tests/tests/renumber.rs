//! `cargo migrate renumber --consecutive`: timestamp versions (sqlx,
//! diesel) made consecutive, in order, pairs kept together, and never
//! behind the back of a database that has applied them.

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, Script};
use tests::Package;

/// The sqlx-style directory of issue 8, defect 8.
fn timestamps() -> Package {
    let pkg = Package::new();
    pkg.write("migrations/20240101120000_a.up.sql", "CREATE TABLE a (x);\n");
    pkg.write("migrations/20240101120000_a.down.sql", "DROP TABLE a;\n");
    pkg.write("migrations/20240215093000_b.sql", "CREATE TABLE b (y);\n");
    pkg.write("migrations/README.md", "notes\n");
    pkg
}

fn files(pkg: &Package) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pkg.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Runs the CLI; returns (exit code, stdout, stderr).
fn run(pkg: &Package, args: &[&str]) -> (i32, String, String) {
    let out = pkg.migrate().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn consecutive_renumbers_timestamps_in_order_keeping_pairs() {
    let pkg = timestamps();
    let (code, _, e) = run(&pkg, &["check"]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("renumber --consecutive"), "{e}");

    let (code, o, e) = run(&pkg, &["renumber", "--consecutive", "--dry-run"]);
    assert_eq!(code, 0, "{e}");
    assert!(
        o.contains("would rename migrations/20240101120000_a.up.sql → migrations/0001_a.up.sql"),
        "{o}"
    );
    assert!(e.contains("nothing was renamed"), "{e}");
    assert!(files(&pkg).contains(&"20240215093000_b.sql".to_owned()));

    let (code, o, e) = run(&pkg, &["renumber", "--consecutive"]);
    assert_eq!(code, 0, "{e}");
    assert_eq!(o.lines().count(), 3, "{o}");
    assert!(
        e.contains("renumbered 2 migrations consecutively, in their current order: 20240101120000 a → 0001, 20240215093000 b → 0002"),
        "{e}"
    );
    assert_eq!(
        files(&pkg),
        ["0001_a.down.sql", "0001_a.up.sql", "0002_b.sql", "README.md"]
    );
    assert_eq!(pkg.read("migrations/0001_a.down.sql"), "DROP TABLE a;\n");
    let (code, _, e) = run(&pkg, &["check"]);
    assert_eq!(code, 0, "{e}");

    let (code, _, e) = run(&pkg, &["renumber", "--consecutive"]);
    assert_eq!(code, 0, "{e}");
    assert!(
        e.contains("nothing to renumber: the versions are already 1 to 2"),
        "{e}"
    );
}

#[test]
fn consecutive_closes_gaps_without_overwriting() {
    let pkg = Package::new();
    pkg.write("migrations/0002_a.sql", "CREATE TABLE a (x);\n");
    pkg.write("migrations/0003_b.up.sql", "CREATE TABLE b (x);\n");
    pkg.write("migrations/0003_b.down.sql", "DROP TABLE b;\n");
    pkg.write("migrations/0007_c.sql", "CREATE TABLE c (x);\n");
    let (code, _, e) = run(&pkg, &["renumber", "--consecutive"]);
    assert_eq!(code, 0, "{e}");
    assert_eq!(
        files(&pkg),
        ["0001_a.sql", "0002_b.down.sql", "0002_b.up.sql", "0003_c.sql"]
    );
    assert_eq!(pkg.read("migrations/0001_a.sql"), "CREATE TABLE a (x);\n");
}

#[test]
fn consecutive_refuses_when_the_database_applied_the_old_versions() {
    let pkg = timestamps();
    let migrations = [Migration::new(
        20_240_101_120_000,
        "a",
        Script::new("CREATE TABLE a (x);\n", "migrations/20240101120000_a.up.sql"),
    )];
    let mut conn = Connection::open(pkg.path().join("app.db")).unwrap();
    Migrator::new(&migrations).apply(&mut conn).unwrap();
    drop(conn);
    let before = files(&pkg);
    let (code, o, e) = run(&pkg, &["renumber", "--consecutive", "--database", "sqlite:app.db"]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(o.is_empty(), "{o}");
    let last = e.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{e}");
    assert!(
        last.contains("has applied 1 migration under its current versions (20240101120000 a)")
            && last.contains("nothing was renamed")
            && last.contains("tracking table"),
        "{e}"
    );
    assert_eq!(files(&pkg), before);
}
