//! Drift (issue 10): `cargo migrate diff`, `--sql`, `--emit`, `schema`,
//! `--allow-drift` and drift in `status`, on real SQLite files with rows in
//! them — every hand change of the S3 story (a column added, renamed,
//! dropped; an index dropped; a trigger added; a table added; a type
//! changed by a rebuild).

use std::path::{Path, PathBuf};
use std::process::Output;

use migrate_runtime::rusqlite::Connection;
use tests::Package;

const RECRUITS_UP: &str = "CREATE TABLE recruits (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL,\n    chatname TEXT,\n    id_number TEXT\n);\nCREATE INDEX recruits_name ON recruits (name);\n";
const RECRUITS_DOWN: &str = "DROP TABLE recruits;\n";
const COHORTS_UP: &str = "CREATE TABLE cohorts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n";
const COHORTS_DOWN: &str = "DROP TABLE cohorts;\n";

/// A package with two migrations (recruits, cohorts), its `dev.db`
/// migrated, with three recruits and a cohort.
fn story() -> (Package, PathBuf) {
    let pkg = Package::new();
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\ndatabase = \"sqlite:dev.db\"\n"),
    );
    pkg.write("migrations/0001_create_recruits.up.sql", RECRUITS_UP);
    pkg.write("migrations/0001_create_recruits.down.sql", RECRUITS_DOWN);
    pkg.write("migrations/0002_create_cohorts.up.sql", COHORTS_UP);
    pkg.write("migrations/0002_create_cohorts.down.sql", COHORTS_DOWN);
    ok(&pkg, &["up"]);
    let db = pkg.path().join("dev.db");
    sql(
        &db,
        "INSERT INTO recruits (name, chatname, id_number) VALUES ('Ada', 'ada', 'A1'), ('Grace', 'grace', 'G2'), ('Linus', NULL, 'L3');\
         INSERT INTO cohorts (title) VALUES ('C25 Data Eng');",
    );
    (pkg, db)
}

/// The three hand changes of the S3 story.
const HAND_CHANGES: &str = "ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';\
     ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;\
     ALTER TABLE recruits DROP COLUMN id_number;";

fn sql(db: &Path, sql: &str) {
    Connection::open(db).unwrap().execute_batch(sql).unwrap();
}

fn run(pkg: &Package, args: &[&str]) -> Output {
    pkg.migrate().args(args).output().expect("run cargo-migrate")
}

#[track_caller]
fn expect(pkg: &Package, args: &[&str], code: i32) -> (String, String) {
    let out = run(pkg, args);
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "cargo migrate {}\n--- stdout\n{o}--- stderr\n{e}",
        args.join(" ")
    );
    (o, e)
}

#[track_caller]
fn ok(pkg: &Package, args: &[&str]) -> (String, String) {
    expect(pkg, args, 0)
}

/// `diff` with drift: exit 1, and no `error:` line (drift is a result).
#[track_caller]
fn drift(pkg: &Package, args: &[&str]) -> (String, String) {
    let (o, e) = expect(pkg, args, 1);
    assert!(!e.contains("error:"), "drift is not an error:\n{e}");
    (o, e)
}

/// A failure: exit 1, the last line of stderr `error: …`.
#[track_caller]
fn fail(pkg: &Package, args: &[&str]) -> String {
    let (_, e) = expect(pkg, args, 1);
    let last = e.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: "), "the last line is the error:\n{e}");
    last
}

/// Every user table's rows (the tracking table left out), and the schema:
/// what "the data is untouched" compares.
fn contents(db: &Path) -> String {
    let conn = Connection::open(db).unwrap();
    let mut out = String::new();
    for table in tests::user_tables(&conn) {
        if table == "_migrations" {
            continue;
        }
        out.push_str(&format!("{table}:\n"));
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, migrate_runtime::rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        let mut rows: Vec<String> = rows.map(|r| r.unwrap().join(" | ")).collect();
        rows.sort();
        for row in rows {
            out.push_str(&format!("  {row}\n"));
        }
    }
    out
}

fn schema(db: &Path) -> String {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name <> '_migrations' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("\n")
}

fn files(pkg: &Package) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pkg.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `diff` and `diff --sql` read only: the file is byte for byte the same.
#[track_caller]
fn read_only(pkg: &Package, db: &Path, args: &[&str], code: i32) -> (String, String) {
    let before = std::fs::read(db).unwrap();
    let out = expect(pkg, args, code);
    assert!(
        std::fs::read(db).unwrap() == before,
        "{args:?} changed the database file"
    );
    out
}

/// `diff --emit NAME` and what it must leave as it was: every row.
#[track_caller]
fn emit(pkg: &Package, db: &Path, args: &[&str]) -> (String, String) {
    let (rows, shape) = (contents(db), schema(db));
    let mut all = vec!["diff", "--emit"];
    all.extend_from_slice(args);
    let out = ok(pkg, &all);
    assert_eq!(contents(db), rows, "--emit changed the data");
    assert_eq!(schema(db), shape, "--emit changed the schema");
    out
}

// ---------------------------------------------------------------- diff

#[test]
fn a_clean_database_reports_nothing() {
    let (pkg, db) = story();
    let (o, e) = read_only(&pkg, &db, &["diff"], 0);
    assert_eq!(o, "");
    assert!(
        e.contains("dev.db: no drift: its schema is what its applied migrations (up to 0002) make"),
        "{e}"
    );
    let (o, _) = read_only(&pkg, &db, &["diff", "--format", "json"], 0);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["drift"], false);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0);
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 0);
    assert!(!o.contains("BEGIN"), "nothing to undo:\n{o}");
    let (_, e) = emit(&pkg, &db, &["nothing"]);
    assert!(e.contains("no migration written"), "{e}");
    assert_eq!(files(&pkg).len(), 4);
}

/// The S3 story: a column added, one renamed, one dropped; `diff` says
/// exactly that; `--sql` the way back; `--emit` adopts them, and then
/// `diff` reports only the drop it held back; prod, migrated with the new
/// migration, gets the changes and keeps its data.
#[test]
fn column_added_renamed_and_dropped() {
    let (pkg, db) = story();
    let prod = pkg.path().join("prod.db");
    std::fs::copy(&db, &prod).unwrap();
    sql(&db, HAND_CHANGES);

    let (o, e) = drift(&pkg, &["diff"]);
    assert_eq!(
        o,
        "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)\n\
         table recruits: column id_number removed\n\
         table recruits: column cohort added (TEXT DEFAULT 'C25 Data Eng')\n"
    );
    assert!(
        e.contains("dev.db: drift: 3 differences from what its applied migrations (up to 0002) make"),
        "{e}"
    );

    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(
        o.contains("ALTER TABLE recruits RENAME COLUMN rocketchat_user TO chatname;\n"),
        "{o}"
    );
    assert!(o.contains("ALTER TABLE recruits ADD COLUMN id_number TEXT;\n"), "{o}");
    assert!(
        o.contains(
            "-- would lose data: drops column recruits.cohort and its 3 values; held back: pass --allow-drop to write it\n\
             -- ALTER TABLE recruits DROP COLUMN cohort;\n"
        ),
        "{o}"
    );
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql", "--allow-drop"], 1);
    assert!(o.contains("\nALTER TABLE recruits DROP COLUMN cohort;\n"), "{o}");
    // The printed SQL does bring a copy back.
    let copy = pkg.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    sql(&copy, &o);
    ok(&pkg, &["diff", "--database", copy.to_str().unwrap()]);

    let (created, e) = emit(&pkg, &db, &["adopt hand changes"]);
    assert_eq!(
        created,
        "migrations/0003_adopt_hand_changes.up.sql\nmigrations/0003_adopt_hand_changes.down.sql\n"
    );
    assert!(
        e.contains("wrote migration 0003 adopt_hand_changes (3 differences) and recorded it as applied in dev.db"),
        "{e}"
    );
    assert!(
        e.contains("warning: held back (see the up file; pass --allow-drop to write it): table recruits: column id_number removed"),
        "{e}"
    );
    let up = pkg.read("migrations/0003_adopt_hand_changes.up.sql");
    assert!(
        up.contains("ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;\n"),
        "{up}"
    );
    assert!(
        up.contains("ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';\n"),
        "{up}"
    );
    assert!(up.contains("-- ALTER TABLE recruits DROP COLUMN id_number;\n"), "{up}");
    assert_eq!(tests::applied_versions(&Connection::open(&db).unwrap()), [1, 2, 3]);

    // Only the held-back drop is left.
    let (o, e) = drift(&pkg, &["diff"]);
    assert_eq!(o, "table recruits: column id_number removed\n");
    assert!(
        e.contains("adopt them with `cargo migrate diff --emit NAME --allow-drop` (they are drops)"),
        "{e}"
    );
    ok(&pkg, &["check"]);
    let (_, e) = ok(&pkg, &["status"]);
    assert!(e.contains("3 applied, 0 pending"), "{e}");

    // Prod gets the changes from the migration, and keeps every value.
    let (_, e) = ok(&pkg, &["up", "--database", prod.to_str().unwrap()]);
    assert!(e.contains("applying 0003 adopt_hand_changes"), "{e}");
    // Prod matches its migrations: it still has id_number, which they keep too.
    let (o, _) = ok(&pkg, &["diff", "--database", prod.to_str().unwrap()]);
    assert_eq!(o, "");
    let conn = Connection::open(&prod).unwrap();
    let row: (String, Option<String>, String, String) = conn
        .query_row(
            "SELECT name, rocketchat_user, id_number, cohort FROM recruits WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        ("Ada".into(), Some("ada".into()), "A1".into(), "C25 Data Eng".into())
    );
}

#[test]
fn an_index_dropped_by_hand() {
    let (pkg, db) = story();
    sql(&db, "DROP INDEX recruits_name;");
    let (o, _) = drift(&pkg, &["diff"]);
    assert_eq!(o, "table recruits: index recruits_name removed\n");
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(o.contains("\nCREATE INDEX recruits_name ON recruits (name);\n"), "{o}");
    // Held back: a DROP is written only with --allow-drop.
    let (_, e) = expect(&pkg, &["diff", "--emit", "drop index"], 1);
    assert!(e.contains("every difference is a drop"), "{e}");
    assert_eq!(files(&pkg).len(), 4, "nothing written");
    emit(&pkg, &db, &["drop index", "--allow-drop"]);
    let up = pkg.read("migrations/0003_drop_index.up.sql");
    assert!(up.contains("\nDROP INDEX recruits_name;\n"), "{up}");
    let down = pkg.read("migrations/0003_drop_index.down.sql");
    assert!(
        down.contains("CREATE INDEX recruits_name ON recruits (name);"),
        "{down}"
    );
    read_only(&pkg, &db, &["diff"], 0);
}

#[test]
fn a_trigger_added_by_hand() {
    let (pkg, db) = story();
    sql(
        &db,
        "CREATE TRIGGER recruits_no_blank_name BEFORE INSERT ON recruits WHEN NEW.name = '' \
         BEGIN SELECT RAISE(ABORT, 'blank name'); END;",
    );
    let (o, _) = drift(&pkg, &["diff"]);
    assert!(
        o.starts_with("table recruits: trigger recruits_no_blank_name added ("),
        "{o}"
    );
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(o.contains("-- DROP TRIGGER recruits_no_blank_name;"), "{o}");
    emit(&pkg, &db, &["no blank names"]);
    let up = pkg.read("migrations/0003_no_blank_names.up.sql");
    assert!(
        up.contains("CREATE TRIGGER recruits_no_blank_name BEFORE INSERT"),
        "{up}"
    );
    let (o, e) = read_only(&pkg, &db, &["diff"], 0);
    assert_eq!(o, "", "{e}");
}

#[test]
fn a_table_added_by_hand() {
    let (pkg, db) = story();
    sql(
        &db,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, recruit_id INTEGER REFERENCES recruits (id), body TEXT NOT NULL);\
         CREATE INDEX notes_recruit ON notes (recruit_id);\
         INSERT INTO notes (recruit_id, body) VALUES (1, 'met at the fair');",
    );
    let (o, _) = drift(&pkg, &["diff"]);
    assert_eq!(o, "table notes added (3 columns)\n");
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(
        o.contains("-- would lose data: drops table notes and its 1 row; held back: pass --allow-drop to write it\n-- DROP TABLE notes;"),
        "{o}"
    );
    emit(&pkg, &db, &["add notes"]);
    let up = pkg.read("migrations/0003_add_notes.up.sql");
    assert!(up.contains("CREATE TABLE notes (id INTEGER PRIMARY KEY, recruit_id INTEGER REFERENCES recruits (id), body TEXT NOT NULL);"), "{up}");
    assert!(up.contains("CREATE INDEX notes_recruit ON notes (recruit_id);"), "{up}");
    let down = pkg.read("migrations/0003_add_notes.down.sql");
    assert!(down.contains("\nDROP TABLE notes;\n"), "{down}");
    read_only(&pkg, &db, &["diff"], 0);
}

/// A type changed by hand, with SQLite's table rebuild: `--sql` and
/// `--emit` both rebuild, copying every row.
#[test]
fn a_type_changed_by_a_rebuild() {
    let (pkg, db) = story();
    sql(
        &db,
        "CREATE TABLE new_cohorts (id INTEGER PRIMARY KEY, title TEXT NOT NULL COLLATE NOCASE, starts INTEGER NOT NULL DEFAULT 0);\
         INSERT INTO new_cohorts (id, title) SELECT id, title FROM cohorts;\
         DROP TABLE cohorts; ALTER TABLE new_cohorts RENAME TO cohorts;",
    );
    let (o, _) = drift(&pkg, &["diff"]);
    assert_eq!(
        o,
        "table cohorts: column title changed: collation BINARY → nocase\n\
         table cohorts: column starts added (INTEGER NOT NULL DEFAULT 0)\n"
    );
    // Now a type change, on the table with an index.
    sql(
        &db,
        "CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT NOT NULL, chatname TEXT, id_number INTEGER);\
         INSERT INTO r SELECT * FROM recruits; DROP TABLE recruits; ALTER TABLE r RENAME TO recruits;\
         CREATE INDEX recruits_name ON recruits (name);",
    );
    let (o, _) = drift(&pkg, &["diff"]);
    assert!(
        o.contains("table recruits: column id_number changed: type TEXT → INTEGER\n"),
        "{o}"
    );
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(o.contains("PRAGMA foreign_keys = OFF;"), "{o}");
    assert!(
        o.contains("CREATE TABLE new_recruits (\n    id INTEGER PRIMARY KEY,"),
        "{o}"
    );
    assert!(
        o.contains("INSERT INTO new_recruits (id, name, chatname, id_number) SELECT id, name, chatname, id_number FROM recruits;\nDROP TABLE recruits;\nALTER TABLE new_recruits RENAME TO recruits;\nCREATE INDEX recruits_name ON recruits (name);"),
        "{o}"
    );
    // Without --allow-drop, the rebuild of cohorts keeps the column added by hand.
    assert!(
        o.contains("-- would lose data: the rebuild keeps column cohorts.starts; pass --allow-drop to drop it"),
        "{o}"
    );
    assert!(
        o.contains("title TEXT NOT NULL, starts INTEGER NOT NULL DEFAULT 0);"),
        "{o}"
    );
    // The printed SQL brings a copy back, rows and all.
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql", "--allow-drop"], 1);
    let copy = pkg.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    sql(&copy, &o);
    ok(&pkg, &["diff", "--database", copy.to_str().unwrap()]);
    assert_eq!(
        contents(&copy),
        contents(&db).replace(" | Integer(0)", ""),
        "every row copied, but the dropped column's values"
    );

    emit(&pkg, &db, &["adopt rebuilds"]);
    let up = pkg.read("migrations/0003_adopt_rebuilds.up.sql");
    assert!(
        up.contains("-- rebuild table recruits (column id_number changed: type TEXT → INTEGER)"),
        "{up}"
    );
    assert!(up.contains("-- rebuild table cohorts ("), "{up}");
    read_only(&pkg, &db, &["diff"], 0);
    ok(&pkg, &["check"]);
}

#[test]
fn json_output_parses() {
    let (pkg, db) = story();
    sql(&db, HAND_CHANGES);
    let (o, _) = drift(&pkg, &["diff", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["database"], "dev.db");
    assert_eq!(v["version"], 2);
    assert_eq!(v["drift"], true);
    let d = &v["differences"][0];
    assert_eq!(d["object"], "column");
    assert_eq!(d["table"], "recruits");
    assert_eq!(d["name"], "chatname");
    assert_eq!(d["change"], "renamed");
    assert_eq!(d["detail"], "rocketchat_user");
    assert_eq!(
        d["text"],
        "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)"
    );
    assert_eq!(v["differences"][2]["change"], "added");
    // status --format json carries the drift too.
    let (o, _) = ok(&pkg, &["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["drift"].as_array().unwrap().len(), 3, "{v}");
    // An error in JSON is JSON.
    let out = run(&pkg, &["diff", "--format", "json", "--database", "nope.db"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("does not exist"),
        "{v}"
    );
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let (pkg, db) = story();
    sql(&db, HAND_CHANGES);
    let before = std::fs::read(&db).unwrap();
    let mut errors = Vec::new();
    std::fs::write(pkg.path().join("not.db"), "hello, not a database\n").unwrap();
    errors.push(fail(&pkg, &["diff", "--database", "not.db"]));
    errors.push(fail(&pkg, &["diff", "--database", "missing.db"]));
    errors.push(fail(
        &pkg,
        &["diff", "--database", "postgres://alice:s3cret@127.0.0.1:1/db"],
    ));
    sql(&pkg.path().join("fresh.db"), "CREATE TABLE t (x);");
    errors.push(fail(&pkg, &["diff", "--database", "fresh.db"]));
    errors.push(fail(&pkg, &["diff", "--emit", "create recruits"]));
    // A history the runtime would refuse.
    pkg.write(
        "migrations/0002_create_cohorts.up.sql",
        format!("{COHORTS_UP}-- edited\n"),
    );
    errors.push(fail(&pkg, &["diff"]));
    errors.push(fail(&pkg, &["diff", "--emit", "adopt"]));
    pkg.write("migrations/0002_create_cohorts.up.sql", COHORTS_UP);
    std::fs::rename(
        pkg.path().join("migrations/0002_create_cohorts.up.sql"),
        pkg.path().join("0002.up.sql.away"),
    )
    .unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0002_create_cohorts.down.sql")).unwrap();
    errors.push(fail(&pkg, &["diff"]));
    assert!(std::fs::read(&db).unwrap() == before, "the database is unchanged");
    assert_eq!(files(&pkg).len(), 2, "no file written");
    let text = errors.join("\n").replace(&*pkg.path().to_string_lossy(), "<pkg>");
    insta::assert_snapshot!("diff_errors", text);
}

#[test]
fn emit_refuses_when_migrations_are_pending() {
    let (pkg, db) = story();
    sql(&db, HAND_CHANGES);
    pkg.write("migrations/0003_later.up.sql", "CREATE TABLE later (x);\n");
    let e = fail(&pkg, &["diff", "--emit", "adopt"]);
    assert!(e.contains("dev.db has 1 migration not applied yet (0003 later)"), "{e}");
    assert!(e.contains("`cargo migrate up --allow-drift`"), "{e}");
    assert_eq!(files(&pkg).len(), 5);
}

// ---------------------------------------------------------------- up, down, redo, status

#[test]
fn up_down_and_redo_refuse_a_drifted_database_unless_allow_drift() {
    let (pkg, db) = story();
    pkg.write("migrations/0003_later.up.sql", "CREATE TABLE later (x);\n");
    pkg.write("migrations/0003_later.down.sql", "DROP TABLE later;\n");
    sql(&db, HAND_CHANGES);
    let rows = contents(&db);
    for args in [&["up"][..], &["down"], &["redo"]] {
        let e = fail(&pkg, args);
        assert!(
            e.contains("error: the database `dev.db` is not what its applied migrations (up to 0002) make (drift): table recruits: column chatname renamed to rocketchat_user"),
            "{e}"
        );
        assert!(e.contains("or pass --allow-drift to go on"), "{e}");
        assert_eq!(tests::applied_versions(&Connection::open(&db).unwrap()), [1, 2]);
    }
    let (_, e) = ok(&pkg, &["up", "--allow-drift"]);
    assert!(
        e.contains("warning: drift: table recruits: column id_number removed\n"),
        "{e}"
    );
    assert!(e.contains("applying 0003 later … done"), "{e}");
    assert_eq!(contents(&db).replace("later:\n", ""), rows, "the data is untouched");
    let (_, e) = ok(&pkg, &["status"]);
    assert!(e.contains("warning: drift: table recruits: column cohort added"), "{e}");
    assert!(e.contains("drift: 3 differences (see `cargo migrate diff`)"), "{e}");
    ok(&pkg, &["down", "--allow-drift"]);
    ok(&pkg, &["redo", "--allow-drift"]);
}

// ---------------------------------------------------------------- schema

fn example_app() -> String {
    tests::workspace_dir()
        .join("example-app/Cargo.toml")
        .display()
        .to_string()
}

#[test]
fn schema_of_the_example_app_as_mermaid() {
    let pkg = Package::bare();
    let (o, e) = ok(
        &pkg,
        &["schema", "--format", "mermaid", "--manifest-path", &example_app()],
    );
    assert!(o.starts_with("erDiagram\n"), "{o}");
    assert!(
        e.contains("the schema after migration 0005 require_personal_email_address"),
        "{e}"
    );
    insta::assert_snapshot!("schema_example_app_mermaid", o);
}

#[test]
fn schema_as_sql_and_json_from_the_migrations_or_a_database() {
    let (pkg, db) = story();
    let (o, _) = ok(&pkg, &["schema"]);
    assert_eq!(
        o,
        format!(
            "{}\n\nCREATE TABLE cohorts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n\nCREATE INDEX recruits_name ON recruits (name);\n",
            RECRUITS_UP.lines().take(6).collect::<Vec<_>>().join("\n")
        )
    );
    // The SQL recreates the schema: no drift against a database made from it.
    let made = pkg.path().join("made.db");
    sql(&made, &o);
    let (o, _) = ok(&pkg, &["schema", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["tables"]["recruits"]["columns"][2]["name"], "chatname");
    // A live database's schema, with --database.
    sql(&db, HAND_CHANGES);
    let (o, _) = ok(&pkg, &["schema", "--database", "dev.db"]);
    assert!(o.contains("rocketchat_user"), "{o}");
    let (o, _) = ok(&pkg, &["schema"]);
    assert!(
        !o.contains("rocketchat_user"),
        "without --database: the migrations' schema\n{o}"
    );
    let e = fail(&pkg, &["schema", "--write"]);
    assert_eq!(
        e,
        "error: no snapshot configured (help: set snapshot = \"migrations/schema.sql\" in [package.metadata.migrate])"
    );
}

// ---------------------------------------------------------------- every kind of hand change

/// Hand changes of every kind the model knows. For each: `diff` sees it;
/// `--sql --allow-drop` run on a copy brings the copy back (no drift);
/// `--emit --allow-drop` adopts it (no drift, `check` passes, the data is
/// untouched); `--emit` alone leaves exactly the held-back drops.
#[test]
fn every_kind_of_hand_change_is_undone_by_sql_and_adopted_by_emit() {
    let cases: &[(&str, &str)] = &[
        (
            "column added",
            "ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';",
        ),
        (
            "column renamed",
            "ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;",
        ),
        ("column dropped", "ALTER TABLE recruits DROP COLUMN id_number;"),
        ("index dropped", "DROP INDEX recruits_name;"),
        (
            "index added",
            "CREATE UNIQUE INDEX recruits_id_number ON recruits (id_number) WHERE id_number IS NOT NULL;",
        ),
        (
            "expression index",
            "CREATE INDEX recruits_lower_name ON recruits (lower(name));",
        ),
        (
            "index changed",
            "DROP INDEX recruits_name; CREATE INDEX recruits_name ON recruits (name DESC, id);",
        ),
        (
            "trigger added",
            "CREATE TRIGGER recruits_touch AFTER UPDATE ON recruits BEGIN UPDATE cohorts SET title = title; END;",
        ),
        ("view added", "CREATE VIEW named AS SELECT id, name FROM recruits;"),
        (
            "table added",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, recruit_id INTEGER REFERENCES recruits (id) ON DELETE CASCADE, body TEXT); INSERT INTO notes VALUES (1, 1, 'x');",
        ),
        ("table dropped", "DROP TABLE cohorts;"),
        ("table renamed", "ALTER TABLE cohorts RENAME TO intakes;"),
        (
            "type changed",
            "CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT NOT NULL, chatname TEXT, id_number INTEGER);\
             INSERT INTO r SELECT * FROM recruits; DROP TABLE recruits; ALTER TABLE r RENAME TO recruits;\
             CREATE INDEX recruits_name ON recruits (name);",
        ),
        (
            "not null, unique, check and foreign key added",
            "CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (name <> ''), chatname TEXT NOT NULL DEFAULT '', id_number TEXT, cohort_id INTEGER REFERENCES cohorts (id));\
             INSERT INTO r (id, name, chatname, id_number) SELECT id, name, coalesce(chatname, ''), id_number FROM recruits;\
             DROP TABLE recruits; ALTER TABLE r RENAME TO recruits; CREATE INDEX recruits_name ON recruits (name);",
        ),
        (
            "strict, with a view on it",
            "CREATE VIEW titles AS SELECT title FROM cohorts;\
             CREATE TABLE c (id INTEGER PRIMARY KEY, title TEXT NOT NULL) STRICT; INSERT INTO c SELECT * FROM cohorts;\
             DROP VIEW titles; DROP TABLE cohorts; ALTER TABLE c RENAME TO cohorts;\
             CREATE VIEW titles AS SELECT title FROM cohorts;",
        ),
        (
            "rebuilt, with a trigger added on it and one elsewhere naming it",
            "CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT NOT NULL, chatname TEXT, id_number INTEGER);\
             INSERT INTO r SELECT * FROM recruits; DROP TABLE recruits; ALTER TABLE r RENAME TO recruits;\
             CREATE INDEX recruits_name ON recruits (name);\
             CREATE TRIGGER recruits_touch AFTER UPDATE ON recruits BEGIN SELECT 1; END;\
             CREATE TRIGGER cohorts_count AFTER INSERT ON cohorts BEGIN UPDATE recruits SET name = name WHERE 0; END;",
        ),
        (
            "virtual table added",
            "CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('hello');",
        ),
        (
            "generated column added",
            "ALTER TABLE recruits ADD COLUMN upper_name TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL;",
        ),
        (
            "without rowid table added",
            "CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID; INSERT INTO tags VALUES ('a', 1);",
        ),
        ("S3, all three", HAND_CHANGES),
    ];
    let mut failures = Vec::new();
    for (what, change) in cases {
        let (pkg, db) = story();
        sql(&db, change);
        let mut check = |ok: bool, message: String| {
            if !ok {
                failures.push(format!("{what}: {message}"));
            }
            ok
        };
        let out = run(&pkg, &["diff"]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if !check(
            out.status.code() == Some(1) && !listed.is_empty(),
            format!("diff sees it: {listed}"),
        ) {
            continue;
        }
        // --sql --allow-drop on a copy: back to the migrations' schema.
        let out = run(&pkg, &["diff", "--sql", "--allow-drop"]);
        let script = String::from_utf8_lossy(&out.stdout).into_owned();
        let copy = pkg.path().join("copy.db");
        std::fs::copy(&db, &copy).unwrap();
        let ran = Connection::open(&copy).unwrap().execute_batch(&script);
        if check(ran.is_ok(), format!("--sql runs: {ran:?}\n{script}")) {
            let out = run(&pkg, &["diff", "--database", copy.to_str().unwrap()]);
            check(
                out.status.code() == Some(0),
                format!(
                    "after --sql: {}{}\n{script}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        // --sql alone runs too, and leaves only what it held back (added by hand).
        let out = run(&pkg, &["diff", "--sql"]);
        let script = String::from_utf8_lossy(&out.stdout).into_owned();
        std::fs::copy(&db, &copy).unwrap();
        let ran = Connection::open(&copy).unwrap().execute_batch(&script);
        if check(ran.is_ok(), format!("--sql runs: {ran:?}\n{script}")) {
            let out = run(&pkg, &["diff", "--database", copy.to_str().unwrap()]);
            let left = String::from_utf8_lossy(&out.stdout).into_owned();
            check(
                left.lines().all(|l| l.contains(" added")),
                format!("after --sql, only what was added by hand is left: {left}\n{script}"),
            );
        }
        // --emit without --allow-drop: only held-back drops are left.
        let rows = contents(&db);
        let held = pkg.path().join("held.db");
        std::fs::copy(&db, &held).unwrap();
        let out = run(&pkg, &["diff", "--emit", "adopt", "--database", held.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() == Some(0) {
            let out = run(&pkg, &["diff", "--database", held.to_str().unwrap()]);
            let left = String::from_utf8_lossy(&out.stdout).into_owned();
            check(
                left.lines().all(|l| l.ends_with(" removed")),
                format!("after --emit, only drops are left: {left}"),
            );
            check(contents(&held) == rows, "--emit left the data alone".to_owned());
            for f in files(&pkg).iter().filter(|f| f.starts_with("0003_")) {
                std::fs::remove_file(pkg.path().join("migrations").join(f)).unwrap();
            }
        } else {
            check(said.contains("every difference is a drop"), format!("--emit: {said}"));
        }
        // --emit --allow-drop: adopted exactly.
        let out = run(&pkg, &["diff", "--emit", "adopt", "--allow-drop"]);
        if !check(
            out.status.code() == Some(0),
            format!("--emit --allow-drop: {}", String::from_utf8_lossy(&out.stderr)),
        ) {
            continue;
        }
        check(
            contents(&db) == rows,
            "--emit --allow-drop left the data alone".to_owned(),
        );
        let out = run(&pkg, &["diff"]);
        check(
            out.status.code() == Some(0),
            format!("after --emit --allow-drop: {}", String::from_utf8_lossy(&out.stdout)),
        );
        let out = run(&pkg, &["check"]);
        check(
            out.status.code() == Some(0),
            format!(
                "check: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                pkg.read("migrations/0003_adopt.up.sql")
            ),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_table_renamed_by_hand_is_named_a_likely_rename() {
    let (pkg, db) = story();
    sql(&db, "ALTER TABLE cohorts RENAME TO intakes;");
    let (o, e) = drift(&pkg, &["diff"]);
    assert_eq!(o, "table cohorts removed\ntable intakes added (2 columns)\n");
    assert!(
        e.contains("note: table cohorts removed and table intakes added have the same columns: likely renamed"),
        "{e}"
    );
    let (o, _) = read_only(&pkg, &db, &["diff", "--sql"], 1);
    assert!(o.contains("\nALTER TABLE intakes RENAME TO cohorts;\n"), "{o}");
    emit(&pkg, &db, &["rename cohorts"]);
    let up = pkg.read("migrations/0003_rename_cohorts.up.sql");
    assert!(up.contains("\nALTER TABLE cohorts RENAME TO intakes;\n"), "{up}");
    read_only(&pkg, &db, &["diff"], 0);
}

/// `ignore`, `snapshot` and `drift` in [package.metadata.migrate].
#[test]
fn the_config_keys_ignore_snapshot_and_drift() {
    let (pkg, db) = story();
    let manifest = pkg.read("Cargo.toml");
    let config = |extra: &str| {
        pkg.write(
            "Cargo.toml",
            manifest.replace(
                "database = \"sqlite:dev.db\"\n",
                &format!("database = \"sqlite:dev.db\"\n{extra}"),
            ),
        );
    };
    sql(&db, "CREATE TABLE cache_pages (k, v); CREATE TABLE notes (x);");
    let (o, _) = drift(&pkg, &["diff"]);
    assert_eq!(
        o,
        "table cache_pages added (2 columns)\ntable notes added (1 columns)\n"
    );
    config("ignore = [\"cache_*\"]\n");
    let (o, _) = drift(&pkg, &["diff"]);
    assert_eq!(o, "table notes added (1 columns)\n", "cache_pages is ignored");

    // drift = "warn": up goes on with warnings; "off": no check at all.
    pkg.write("migrations/0003_later.up.sql", "CREATE TABLE later (x);\n");
    pkg.write("migrations/0003_later.down.sql", "DROP TABLE later;\n");
    fail(&pkg, &["up"]);
    config("ignore = [\"cache_*\"]\ndrift = \"warn\"\n");
    let (_, e) = ok(&pkg, &["up"]);
    assert!(e.contains("warning: drift: table notes added"), "{e}");
    assert!(
        e.contains("going on (drift = \"warn\" in [package.metadata.migrate])"),
        "{e}"
    );
    config("ignore = [\"cache_*\"]\ndrift = \"off\"\n");
    let (_, e) = ok(&pkg, &["down"]);
    assert!(!e.contains("drift"), "{e}");
    ok(&pkg, &["up"]);

    // snapshot: schema --write writes what the build compares; --emit keeps it up to date.
    config("ignore = [\"cache_*\"]\nsnapshot = \"migrations/schema.sql\"\n");
    let e = fail(&pkg, &["check"]);
    assert!(e.contains("problem"), "the snapshot is missing: {e}");
    let (_, e) = ok(&pkg, &["schema", "--write"]);
    assert!(e.contains("wrote migrations/schema.sql"), "{e}");
    ok(&pkg, &["check"]);
    let (printed, _) = ok(&pkg, &["schema"]);
    assert_eq!(pkg.read("migrations/schema.sql"), printed);
    let (created, _) = emit(&pkg, &db, &["add notes"]);
    assert_eq!(
        created,
        "migrations/0004_add_notes.up.sql\nmigrations/0004_add_notes.down.sql\nmigrations/schema.sql\n"
    );
    assert!(pkg.read("migrations/schema.sql").contains("CREATE TABLE notes (x);"));
    ok(&pkg, &["check"]);
    read_only(&pkg, &db, &["diff"], 0);

    // An ignore pattern that is not valid: one line, nothing compared.
    config("ignore = [\"[x\"]\n");
    let (_, e) = expect(&pkg, &["diff"], 1);
    assert!(e.contains("ignore"), "{e}");
}

// ------------------------------------------------- the check's cache

/// Everything `status`, `diff` and `up` (its drift check) say about the
/// database: exit status, stdout and stderr of each.
fn drift_outputs(pkg: &Package) -> Vec<(Option<i32>, String, String)> {
    let commands: [&[&str]; 7] = [
        &["status"],
        &["status", "--format", "json"],
        &["diff"],
        &["diff", "--format", "json"],
        &["diff", "--sql"],
        &["diff", "--sql", "--allow-drop"],
        &["up"],
    ];
    commands
        .iter()
        .map(|args| {
            let out = run(pkg, args);
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

#[test]
fn status_and_diff_say_the_same_with_no_check_cache_a_warm_one_and_a_damaged_one() {
    let (pkg, db) = story();
    // 30 more migrations of every kind, with rows, so that the check keeps
    // prefixes (every 2nd of 32) and the replay of the applied ones
    // can start from one.
    for i in 3..=32 {
        let (up, down) = match i % 5 {
            0 => (
                format!("ALTER TABLE recruits ADD COLUMN c{i} TEXT DEFAULT 'v{i}';\n"),
                Some(format!("ALTER TABLE recruits DROP COLUMN c{i};\n")),
            ),
            1 => (
                format!("CREATE INDEX cohorts_i{i} ON cohorts (title, id);\n"),
                Some(format!("DROP INDEX cohorts_i{i};\n")),
            ),
            2 => (format!("INSERT INTO cohorts (title) VALUES ('C{i}');\n"), None),
            3 => (
                format!("CREATE VIEW v{i} AS SELECT id, title FROM cohorts WHERE id > {i};\n"),
                Some(format!("DROP VIEW v{i};\n")),
            ),
            _ => (
                format!(
                    "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0));\n\
                     CREATE TRIGGER t{i}_audit AFTER INSERT ON t{i} BEGIN UPDATE cohorts SET title = title WHERE id = NEW.n; END;\n"
                ),
                Some(format!("DROP TABLE t{i};\n")),
            ),
        };
        match down {
            Some(down) => {
                pkg.write(&format!("migrations/{i:04}_m{i}.up.sql"), up);
                pkg.write(&format!("migrations/{i:04}_m{i}.down.sql"), down);
            }
            None => pkg.write(&format!("migrations/{i:04}_m{i}.sql"), up),
        }
    }
    // Applied up to 29 of 32; then changed by hand (drift).
    ok(&pkg, &["up", "--to", "29"]);
    sql(&db, HAND_CHANGES);
    sql(
        &db,
        "DROP INDEX cohorts_i11; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    );
    let cache = pkg.path().join("target/migrate-check-cache").join(pkg.name());
    let files = || -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cache)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    };

    let before = std::fs::read(&db).unwrap();
    let cold = drift_outputs(&pkg);
    assert!(files().is_empty(), "status and diff write no cache: {:?}", files());
    // What the replay finds is in there: drift, the SQL back, and `up`
    // refusing to run on the drifted database.
    assert_eq!(cold[0].0, Some(0), "{:?}", cold[0]);
    assert!(cold[0].2.contains("drift: 5 differences"), "{}", cold[0].2);
    assert_eq!(cold[2].0, Some(1), "{:?}", cold[2]);
    assert!(cold[2].1.contains("index cohorts_i11"), "{}", cold[2].1);
    assert!(cold[4].1.contains("CREATE INDEX cohorts_i11"), "{}", cold[4].1);
    assert!(cold[6].2.contains("(drift)"), "{}", cold[6].2);

    // `check` keeps the replayed database every 2nd migration: the
    // commands start from the longest applied prefix, and say the same.
    ok(&pkg, &["check"]);
    let kept = files();
    assert_eq!(kept.len(), 16, "{kept:?}");
    assert_eq!(drift_outputs(&pkg), cold, "with the check's cache");

    // Every file damaged: each one the commands look at (the prefixes up
    // to the 29 applied) is found out, deleted and not trusted; those of
    // 30 and 32 migrations are never looked at.
    for file in &kept {
        std::fs::write(file, b"not a replay cache").unwrap();
    }
    assert_eq!(drift_outputs(&pkg), cold, "with a damaged cache");
    assert_eq!(files().len(), 2, "the damaged files were deleted: {:?}", files());
    // Files swapped (each valid, but for another prefix): not taken either.
    ok(&pkg, &["check"]);
    let kept = files();
    let bytes: Vec<Vec<u8>> = kept.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for (file, other) in kept.iter().zip(bytes.iter().cycle().skip(1)) {
        std::fs::write(file, other).unwrap();
    }
    assert_eq!(drift_outputs(&pkg), cold, "with files of other prefixes");
    assert_eq!(files().len(), 2, "{:?}", files());
    // The next check writes them again.
    ok(&pkg, &["check"]);
    assert_eq!(files().len(), 16);
    assert_eq!(drift_outputs(&pkg), cold, "with the cache written again");
    assert!(std::fs::read(&db).unwrap() == before, "nothing changed the database");
}

/// Migrations that call a function of the app's (`functions` in the
/// config): the drift replays of `status` and `diff` register its stub,
/// as `check` does, so they compare the database instead of failing.
#[test]
fn status_and_diff_replay_migrations_that_call_the_apps_functions() {
    use migrate_runtime::rusqlite::functions::FunctionFlags;
    let pkg = Package::new();
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!(
            "{manifest}\n[package.metadata.migrate]\ndatabase = \"sqlite:dev.db\"\nfunctions = [\"normalize/1\"]\n"
        ),
    );
    pkg.write(
        "migrations/0001_names.sql",
        "CREATE TABLE names (n TEXT NOT NULL);\nINSERT INTO names VALUES (normalize(' Ada '));\n",
    );
    pkg.write("migrations/0002_more.sql", "CREATE TABLE more (x);\n");
    // The app applies them, its function registered.
    let migrations = [
        migrate_runtime::Migration::new(
            1,
            "names",
            migrate_runtime::Script::new(pkg.read("migrations/0001_names.sql"), "migrations/0001_names.sql"),
        ),
        migrate_runtime::Migration::new(
            2,
            "more",
            migrate_runtime::Script::new(pkg.read("migrations/0002_more.sql"), "migrations/0002_more.sql"),
        ),
    ];
    let db = pkg.path().join("dev.db");
    let mut conn = Connection::open(&db).unwrap();
    conn.create_scalar_function("normalize", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        Ok(ctx.get::<String>(0)?.trim().to_lowercase())
    })
    .unwrap();
    migrate_runtime::Migrator::new(&migrations).apply(&mut conn).unwrap();
    drop(conn);

    let (json, _) = ok(&pkg, &["status", "--format", "json"]);
    assert!(json.contains("\"drift\":[]"), "compared, no drift: {json}");
    let (_, text) = ok(&pkg, &["diff"]);
    assert!(text.contains("no drift"), "{text}");
    sql(&db, "CREATE INDEX names_n ON names (n);");
    let (_, text) = ok(&pkg, &["status"]);
    assert!(text.contains("drift: table names: index names_n added"), "{text}");
}
