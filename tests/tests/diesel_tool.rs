//! diesel as a real tool (feature `diesel`, which CI runs): a database
//! migrated by diesel_migrations' own harness (`run_pending_migrations`
//! on diesel's `SqliteConnection`, from the fixture's directories), then
//! continued by ours in the CLI (`import --database`) and at start-up
//! (`Migrator::adopt(Previous::Diesel)`), with nothing run twice and the
//! rows intact.

use std::path::Path;

use diesel::Connection as _;
use diesel_migrations::{FileBasedMigrations, MigrationHarness as _};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migrator, Previous};
use tests::Package;

use super::adopt::load;
use super::import::{add_rows, copy_dir, fixture, recorded, rows, run, with_fixture};

/// A package with the diesel fixture imported.
fn imported() -> Package {
    let (pkg, args) = with_fixture("diesel");
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 0, "{err}");
    pkg
}

/// A database diesel's migrator took to the fixture's second migration
/// (its first two directories), with rows.
fn migrated_by_diesel(pkg: &Package, path: &Path) -> Connection {
    let first_two = pkg.path().join("diesel-first-two");
    for dir in ["2024-01-01-120000_create_users", "2024-02-15-093000_add_email"] {
        copy_dir(&fixture("diesel").join(dir), &first_two.join(dir));
    }
    let mut diesel = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let ran = diesel
        .run_pending_migrations(FileBasedMigrations::from_path(&first_two).unwrap())
        .unwrap();
    assert_eq!(ran.len(), 2, "diesel applied two migrations");
    drop(diesel);
    let conn = Connection::open(path).unwrap();
    add_rows(&conn);
    conn
}

fn diesel_rows(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT version FROM __diesel_schema_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_database_migrated_by_diesel_continues_in_the_cli() {
    let pkg = imported();
    let conn = migrated_by_diesel(&pkg, &pkg.path().join("app.db"));
    let before = rows(&conn);
    let old = diesel_rows(&conn);
    assert_eq!(old, ["20240101120000", "20240215093000"], "diesel's own record");
    let (code, _, err) = run(&pkg, &["import", "--from", "diesel", "--database", "sqlite:app.db"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("took over diesel's history: recorded 2 migrations as applied"),
        "{err}"
    );
    assert_eq!(recorded(&conn), [(1, -1), (2, -1)], "recorded, not run");
    let (code, _, err) = run(&pkg, &["up", "--database", "sqlite:app.db"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    assert_eq!(rows(&conn), before, "the data is intact");
    assert_eq!(diesel_rows(&conn), old, "diesel's history is left as it was");
}

#[test]
fn adopt_takes_over_a_diesel_database_at_start_up() {
    let pkg = imported();
    let (migrations, pairs) = load(&pkg);
    let mapping: Vec<(&str, u64)> = pairs.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let mut conn = migrated_by_diesel(&pkg, &pkg.path().join("app.db"));
    let before = rows(&conn);
    let migrator = || Migrator::new(&migrations).imported(&mapping).adopt(Previous::Diesel);
    let report = migrator().apply(&mut conn).unwrap();
    assert_eq!(report.adopted, [1, 2]);
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
    assert_eq!(rows(&conn), before, "rows intact");
    assert!(
        migrator().apply(&mut conn).unwrap().is_empty(),
        "the second start does nothing"
    );
}
