//! `cargo migrate import` and `baseline` (issue 13): each tool's fixture,
//! in its real layout (tests/fixtures/import/<tool>/, written from that
//! tool's documentation and source, named in each converter), converted
//! in order and checked; existing databases continued from the tool's
//! tracking table (built as the tool writes it, following its source),
//! with nothing run twice and the rows intact; and the bad inputs.

use std::path::{Path, PathBuf};

use migrate_runtime::rusqlite::Connection;
use tests::{Package, workspace_dir};

/// Every tool, its fixture's source directory inside the fixture, and
/// whether `import` finds it by default (else it is passed as `old`).
const TOOLS: &[(&str, &str)] = &[
    ("sqlx", "old"),
    ("diesel", "old"),
    ("refinery", "old"),
    ("dbmate", "db/migrations"),
    ("goose", "old"),
    ("golang-migrate", "old"),
    ("flyway", "sql"),
    ("rusqlite-migration", "old"),
];

pub(crate) fn fixture(tool: &str) -> PathBuf {
    workspace_dir().join("tests/fixtures/import").join(tool)
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A package holding `tool`'s fixture where `import` reads it by default
/// (dbmate, flyway) or in `old/`; returns the package and the arguments
/// that import it.
pub(crate) fn with_fixture(tool: &str) -> (Package, Vec<String>) {
    let pkg = Package::new();
    let src = TOOLS.iter().find(|(t, _)| *t == tool).unwrap().1;
    let mut args = vec!["import".to_owned(), "--from".to_owned(), tool.to_owned()];
    if src == "old" {
        copy_dir(&fixture(tool), &pkg.path().join("old"));
        args.push("old".to_owned());
    } else {
        copy_dir(&fixture(tool), pkg.path());
    }
    // The testbox's empty migrations/ is where the import goes.
    (pkg, args)
}

/// Runs the CLI; returns (exit code, stdout, stderr).
pub(crate) fn run<S: AsRef<std::ffi::OsStr>>(pkg: &Package, args: &[S]) -> (i32, String, String) {
    let out = pkg.migrate().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// What each tool's fixture becomes: the down of migration 3 exists where
/// the tool has one, and it runs outside a transaction where the tool
/// says so; the version each tool records for migration 2.
fn expected(tool: &str) -> (bool, bool, bool, &'static str) {
    // (downs for 1 and 2, down for 3, 3 is no-transaction, source version of 2)
    match tool {
        "sqlx" => (true, true, true, "20240215093000"),
        "diesel" => (true, true, true, "20240215093000"),
        "refinery" => (false, false, false, "2"),
        "dbmate" => (true, true, true, "20240215093000"),
        "goose" => (true, true, true, "2"),
        "golang-migrate" => (true, false, false, "2"),
        "flyway" => (true, false, true, "1.1"),
        "rusqlite-migration" => (true, false, false, "2"),
        _ => unreachable!(),
    }
}

#[test]
fn every_tools_layout_is_imported_in_its_order_and_passes_check() {
    for (tool, _) in TOOLS {
        let (pkg, args) = with_fixture(tool);
        let (code, out, err) = run(&pkg, &args);
        assert_eq!(code, 0, "{tool}: {err}");
        let (downs, down3, no_tx, v2) = expected(tool);
        let mut want: Vec<String> = Vec::new();
        for (v, name, down) in [
            (1, "create_users", downs),
            (2, "add_email", downs),
            (3, "index_email", down3),
        ] {
            if down {
                want.push(format!("000{v}_{name}.down.sql"));
                want.push(format!("000{v}_{name}.up.sql"));
            } else {
                want.push(format!("000{v}_{name}.sql"));
            }
        }
        want.push("imported.toml".to_owned());
        want.sort();
        let dir = pkg.path().join("migrations");
        assert_eq!(files(&dir), want, "{tool}: {err}");
        assert_eq!(
            out.lines().count(),
            want.len(),
            "{tool}: every file written is printed: {out}"
        );
        let up3 = if down3 {
            "0003_index_email.up.sql"
        } else {
            "0003_index_email.sql"
        };
        let up3 = pkg.read(&format!("migrations/{up3}"));
        assert_eq!(up3.starts_with("-- migrate:no-transaction\n"), no_tx, "{tool}: {up3}");
        assert!(
            up3.contains("CREATE INDEX users_email ON users (email);"),
            "{tool}: {up3}"
        );
        assert!(
            !up3.contains("+goose") && !up3.contains("migrate:up") && !up3.contains("-- no-transaction\n"),
            "{tool}: the tool's markers are gone: {up3}"
        );
        let mapping = pkg.read("migrations/imported.toml");
        assert!(mapping.contains(&format!("from = \"{tool}\"")), "{mapping}");
        assert!(
            mapping.contains(&format!("version = 2\nname = \"add_email\"\nfrom_version = \"{v2}\"")),
            "{tool}: {mapping}"
        );
        assert!(err.contains(&format!("imported 3 {tool} migrations")), "{tool}: {err}");
        assert!(err.contains("checked 3 migrations: ok"), "{tool}: {err}");
        let (code, _, err) = run(&pkg, &["check"]);
        assert_eq!(code, 0, "{tool}: the build's check passes: {err}");
        let table = migrate_runtime::Previous::ALL
            .iter()
            .find(|p| p.name() == *tool)
            .unwrap()
            .table();
        if let Some(table) = table {
            assert!(
                pkg.read("Cargo.toml").contains(&format!("ignore = [\"{table}\"]")),
                "{tool}: its table is left out of drift"
            );
        }
    }
}

/// A database as `tool` leaves it after applying its first two migrations:
/// their SQL run (the converted up files, which hold the tool's SQL) and
/// the tool's tracking table filled as its source writes it.
pub(crate) fn migrated_by(pkg: &Package, tool: &str, path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    for up in ["0001_create_users", "0002_add_email"] {
        let file = if Path::new(&pkg.path().join(format!("migrations/{up}.up.sql"))).exists() {
            format!("migrations/{up}.up.sql")
        } else {
            format!("migrations/{up}.sql")
        };
        conn.execute_batch(&pkg.read(&file)).unwrap();
    }
    conn.execute_batch(
        "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com');",
    )
    .unwrap();
    let history = match tool {
        // launchbadge/sqlx, sqlx-sqlite/src/migrate.rs (ensure_migrations_table, apply).
        "sqlx" => "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
                   INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20240101120000, 'create users', TRUE, x'01', 3), (20240215093000, 'add email', TRUE, x'02', 2);",
        // diesel-rs/diesel, diesel_migrations/src/migration/setup_migration_table.sql.
        "diesel" => "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
                     INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000'), ('20240215093000');",
        // rust-db/refinery, refinery_core/src/traits/mod.rs.
        "refinery" => "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));
                       INSERT INTO refinery_schema_history VALUES (1, 'create_users', '2024-01-01T12:00:00Z', '1'), (2, 'add_email', '2024-02-15T09:30:00Z', '2');",
        // amacneil/dbmate, pkg/driver/sqlite/sqlite.go.
        "dbmate" => "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) primary key);
                     INSERT INTO schema_migrations (version) VALUES ('20240101120000'), ('20240215093000');",
        // pressly/goose, internal/dialect/dialectquery/sqlite3.go.
        "goose" => "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
                    INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1);",
        // golang-migrate/migrate, database/sqlite3/sqlite3.go.
        "golang-migrate" => "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool);
                             CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);
                             INSERT INTO schema_migrations (version, dirty) VALUES (2, false);",
        // flyway/flyway, the SQLite createMetaDataTable.sql template.
        "flyway" => "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')), execution_time INT NOT NULL, success BOOLEAN NOT NULL);
                     CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);
                     INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES
                       (1, '1', 'Create users', 'SQL', 'v1/V1__Create_users.sql', 1, 'me', 3, 1),
                       (2, '1.1', 'Add email', 'SQL', 'v1/V1_1__Add_email.sql', 2, 'me', 2, 1);",
        // cljoly/rusqlite_migration, src/lib.rs (user_version).
        "rusqlite-migration" => "PRAGMA user_version = 2;",
        _ => unreachable!(),
    };
    conn.execute_batch(history).unwrap();
    conn
}

/// Data written while the old tool was in charge.
pub(crate) fn add_rows(conn: &Connection) {
    conn.execute_batch(
        "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com');",
    )
    .unwrap();
}

pub(crate) fn rows(conn: &Connection) -> Vec<(i64, String, String)> {
    let mut stmt = conn.prepare("SELECT id, name, email FROM users ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub(crate) fn recorded(conn: &Connection) -> Vec<(i64, i64)> {
    let mut stmt = conn
        .prepare("SELECT version, duration_ms FROM _migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn dump(conn: &Connection, table: Option<&str>) -> String {
    match table {
        None => conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap()
            .to_string(),
        Some(t) => {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = stmt.column_count();
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.join("\n")
        }
    }
}

#[test]
fn existing_databases_continue_where_each_tool_left_them() {
    for (tool, _) in TOOLS {
        let (pkg, mut args) = with_fixture(tool);
        let (code, _, err) = run(&pkg, &args);
        assert_eq!(code, 0, "{tool}: {err}");
        let db = pkg.path().join("app.db");
        let conn = migrated_by(&pkg, tool, &db);
        let before = rows(&conn);
        let table = migrate_runtime::Previous::ALL
            .iter()
            .find(|p| p.name() == *tool)
            .unwrap()
            .table();
        let old = dump(&conn, table);
        drop(conn);

        // The files are imported already: SRC is not needed again.
        args.truncate(3);
        args.extend(["--database".to_owned(), "sqlite:app.db".to_owned()]);
        let (code, _, err) = run(&pkg, &args);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(
            err.contains(&format!("took over {tool}'s history: recorded 2 migrations as applied")),
            "{tool}: {err}"
        );
        assert!(err.contains("1 migration pending"), "{tool}: {err}");
        let conn = Connection::open(&db).unwrap();
        assert_eq!(recorded(&conn), [(1, -1), (2, -1)], "{tool}: recorded, not run");
        assert_eq!(dump(&conn, table), old, "{tool}: the old history is left as it was");

        let (code, out, _) = run(&pkg, &["status", "--database", "sqlite:app.db"]);
        assert_eq!(code, 0, "{tool}");
        assert!(
            out.contains("recorded without running (import, baseline, adopt or diff --emit)"),
            "{tool}: {out}"
        );

        // Again: nothing to do.
        let (code, _, err) = run(&pkg, &args);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(err.contains("already taken over"), "{tool}: {err}");

        // Ours continues: only migration 3 runs; the rows are intact.
        let (code, _, err) = run(&pkg, &["up", "--database", "sqlite:app.db"]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(err.contains("applied 1 migration"), "{tool}: {err}");
        assert_eq!(rows(&conn), before, "{tool}: the data is intact");
        let versions: Vec<i64> = recorded(&conn).into_iter().map(|(v, _)| v).collect();
        assert_eq!(versions, [1, 2, 3], "{tool}");
        let (code, _, err) = run(&pkg, &["diff", "--database", "sqlite:app.db"]);
        assert_eq!(code, 0, "{tool}: no drift, the old table is ignored: {err}");
    }
}

#[test]
fn a_database_unlike_its_history_is_refused_with_the_differences_and_changes_nothing() {
    let (pkg, mut args) = with_fixture("sqlx");
    assert_eq!(run(&pkg, &args).0, 0);
    let db = pkg.path().join("app.db");
    let conn = migrated_by(&pkg, "sqlx", &db);
    conn.execute_batch("ALTER TABLE users ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';")
        .unwrap();
    drop(conn);
    args.extend(["--database".to_owned(), "sqlite:app.db".to_owned()]);
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("table users: column cohort added"), "{err}");
    assert!(
        err.contains("its schema is not what migrations 0001 to 0002 make, though sqlx says they are applied"),
        "{err}"
    );
    assert!(err.contains("nothing was recorded"), "{err}");
    assert!(err.trim_end().lines().last().unwrap().starts_with("error: "), "{err}");
    let conn = Connection::open(&db).unwrap();
    let ours: i64 = tracking_tables(&conn);
    assert_eq!(ours, 0, "no tracking table was left behind");
}

/// Each tool's history broken as real histories break (a failed or
/// dirty migration, an unknown version, a gap), in SQL that SQLite and
/// PostgreSQL both run, and what the refusal says.
pub(crate) const BROKEN_HISTORIES: &[(&str, &str, &str)] = &[
    (
        "sqlx",
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 20240215093000;",
        "records migration 20240215093000 as failed (success = false)",
    ),
    (
        "golang-migrate",
        "UPDATE schema_migrations SET dirty = true;",
        "schema_migrations is dirty at version 2",
    ),
    (
        "flyway",
        "UPDATE flyway_schema_history SET success = FALSE WHERE version = '1.1';",
        "`flyway repair`",
    ),
    (
        "dbmate",
        "INSERT INTO schema_migrations VALUES ('20991231000000');",
        "records migration 20991231000000, which is not among the migrations imported from dbmate",
    ),
    (
        "goose",
        "DELETE FROM goose_db_version WHERE version_id = 1;",
        "records migration 2 but not 1, which comes before it",
    ),
];

#[test]
fn failed_dirty_and_unknown_histories_are_refused_with_what_to_do() {
    for (tool, break_it, says) in BROKEN_HISTORIES {
        let (pkg, mut args) = with_fixture(tool);
        assert_eq!(run(&pkg, &args).0, 0);
        let db = pkg.path().join("app.db");
        migrated_by(&pkg, tool, &db).execute_batch(break_it).unwrap();
        args.truncate(3);
        args.extend(["--database".to_owned(), "sqlite:app.db".to_owned()]);
        let (code, _, err) = run(&pkg, &args);
        assert_eq!(code, 1, "{tool}: {err}");
        assert!(err.contains(says), "{tool}: {err}");
        assert_eq!(err.lines().count(), 1, "{tool}: one line: {err}");
        let conn = Connection::open(&db).unwrap();
        let ours: i64 = tracking_tables(&conn);
        assert_eq!(ours, 0, "{tool}: nothing recorded");
    }
}

#[test]
fn bad_sources_are_one_line_errors_and_write_nothing() {
    let pkg = Package::new();
    pkg.write("sx/create_users.sql", "CREATE TABLE users (id INTEGER);\n");
    pkg.write("dm/20240101_a.sql", "CREATE TABLE a (x);\n");
    pkg.write("gm/1_a.sql", "CREATE TABLE a (x);\n");
    pkg.write("rm/1-a/down.sql", "DROP TABLE a;\n");
    pkg.write("rm2/1-a/up.sql", "CREATE TABLE a (x);\n");
    pkg.write("rm2/3-c/up.sql", "CREATE TABLE c (x);\n");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--from", "sqlx", "sx"],
            "sx/create_users.sql: not in sqlx's layout: expected <version>_<description>.sql",
        ),
        (
            &["--from", "dbmate", "dm"],
            "dm/20240101_a.sql: not in dbmate's layout: expected <version>_<name>.sql with a `-- migrate:up` section",
        ),
        (
            &["--from", "golang-migrate", "gm"],
            "gm/1_a.sql: not in golang-migrate's layout: expected <version>_<title>.up.sql",
        ),
        (
            &["--from", "rusqlite-migration", "rm"],
            "rm/1-a: not in rusqlite_migration's layout: expected a directory <id>-<name>/ holding up.sql",
        ),
        (&["--from", "rusqlite-migration", "rm2"], "id 2 is missing"),
        (
            &["--from", "diesel", "sx"],
            "sx holds no diesel migration (only create_users.sql); is --from right?",
        ),
        (&["--from", "sqlx", "nowhere"], "nowhere is not a directory"),
        (
            &["--from", "sqlx", "migrations"],
            "is both the sqlx migrations and ours",
        ),
    ];
    for (args, says) in cases {
        let (code, out, err) = run(&pkg, &[&["import"], *args].concat());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(out.is_empty());
        assert!(
            files(&pkg.path().join("migrations")).is_empty(),
            "{args:?}: nothing written"
        );
    }
    let (code, _, err) = run(&pkg, &["import", "--from", "liquibase", "sx"]);
    assert_eq!(code, 2, "an unknown tool is a usage error: {err}");
    assert!(
        err.contains(
            "[possible values: sqlx, diesel, refinery, dbmate, goose, golang-migrate, flyway, rusqlite-migration]"
        ),
        "{err}"
    );
    assert!(!pkg.read("Cargo.toml").contains("ignore"), "the manifest is untouched");

    // A non-empty migrations directory is refused.
    pkg.write("migrations/0001_mine.sql", "CREATE TABLE mine (x);\n");
    let (code, _, err) = run(&pkg, &["import", "--from", "sqlx", "--database", "sqlite:app.db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has migrations but no imported.toml"), "{err}");
    assert!(!pkg.path().join("app.db").exists(), "no database created");
    copy_dir(&fixture("sqlx"), &pkg.path().join("old"));
    let (code, _, err) = run(&pkg, &["import", "--from", "sqlx", "old"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("migrations is not empty (it has 0001_mine.sql)"), "{err}");
    assert_eq!(files(&pkg.path().join("migrations")), ["0001_mine.sql"]);
}

#[test]
fn unconvertible_files_are_listed_and_only_partial_writes_the_rest() {
    let pkg = Package::new();
    copy_dir(&fixture("flyway"), pkg.path());
    pkg.write(
        "sql/R__users_view.sql",
        "CREATE VIEW users_view AS SELECT * FROM users;\n",
    );
    pkg.write(
        "sql/V3__seed.sql",
        "-- seed\nINSERT INTO users (name) VALUES ('${admin}');\n",
    );
    pkg.write("sql/afterMigrate.sql", "ANALYZE;\n");
    let (code, _, err) = run(&pkg, &["import", "--from", "flyway"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: sql/R__users_view.sql: cannot be converted: a repeatable migration"),
        "{err}"
    );
    assert!(
        err.contains("error: sql/V3__seed.sql: cannot be converted: line 2: placeholder ${admin}"),
        "{err}"
    );
    assert!(
        err.contains("error: sql/afterMigrate.sql: cannot be converted: a Flyway callback"),
        "{err}"
    );
    assert!(
        err.contains("3 files of sql cannot be converted (listed above); nothing was written"),
        "{err}"
    );
    assert!(files(&pkg.path().join("migrations")).is_empty());

    let (code, _, err) = run(&pkg, &["import", "--from", "flyway", "--partial"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: sql/V3__seed.sql: cannot be converted"), "{err}");
    assert!(err.contains("imported 3 flyway migrations"), "{err}");
    let mapping = pkg.read("migrations/imported.toml");
    assert!(
        mapping.contains("[[skipped]]\nfile = \"R__users_view.sql\""),
        "{mapping}"
    );

    let pkg = Package::new();
    pkg.write("old/V1__a.sql", "CREATE TABLE a (x);\n");
    pkg.write("old/V2__seed.rs", "pub fn migration() -> String { String::new() }\n");
    let (code, _, err) = run(&pkg, &["import", "--from", "refinery", "old"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("old/V2__seed.rs: cannot be converted: a Rust migration"),
        "{err}"
    );
}

#[test]
fn a_converted_set_that_fails_check_is_written_and_the_report_says_why() {
    let pkg = Package::new();
    copy_dir(&fixture("sqlx"), &pkg.path().join("old"));
    // Real projects often have a down that does not undo its up.
    pkg.write("old/20240215093000_add_email.down.sql", "SELECT 1;\n");
    let (code, out, err) = run(&pkg, &["import", "--from", "sqlx", "old"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: migrations/0002_add_email.down.sql:1: the down migration does not undo its up: column users.email left behind"),
        "{err}"
    );
    assert!(
        err.contains(
            "the 3 imported migrations were written, but 2 problems (listed above) fail `cargo migrate check`"
        ),
        "{err}"
    );
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(pkg.path().join("migrations/imported.toml").exists());
}

/// How many `_migrations` tables the database has (0: nothing recorded).
pub(crate) fn tracking_tables(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE name = '_migrations'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn files_and_a_database_in_one_command() {
    let (pkg, mut args) = with_fixture("sqlx");
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    for f in [
        "old/20240101120000_create_users.up.sql",
        "old/20240215093000_add_email.up.sql",
    ] {
        conn.execute_batch(&pkg.read(f)).unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20240101120000, 'create users', TRUE, x'01', 3), (20240215093000, 'add email', TRUE, x'02', 2);",
    )
    .unwrap();
    args.extend(["--database".to_owned(), "sqlite:app.db".to_owned()]);
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("imported 3 sqlx migrations"), "{err}");
    assert!(err.contains("took over sqlx's history: recorded 2 migrations"), "{err}");
    assert_eq!(recorded(&conn), [(1, -1), (2, -1)]);
}

#[test]
fn after_init_the_snapshot_is_no_obstacle_and_follows_the_import() {
    let (pkg, args) = with_fixture("goose");
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nsnapshot = \"migrations/schema.sql\"\n"),
    );
    pkg.write("migrations/schema.sql", "");
    let (code, _, err) = run(&pkg, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("wrote the schema snapshot migrations/schema.sql"), "{err}");
    assert!(pkg.read("migrations/schema.sql").contains("CREATE INDEX users_email"));
    let (code, _, err) = run(&pkg, &["check"]);
    assert_eq!(code, 0, "{err}");
}
