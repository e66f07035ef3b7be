//! `cargo migrate new --recipe …`: the written migrations pass `check` and
//! the lint, apply on tables holding rows (rows intact, compared), the
//! rename keeps both columns in step between expand and contract,
//! duplicates in the backfill stop the first step before anything changes,
//! and bad input writes nothing; on SQLite and PostgreSQL.

use migrate_runtime::model::{Filter, Model};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, Script};
use tests::{Package, applied_versions, pg_database};

use super::database::run as cli;
use super::lint::migrations as write_migrations;

const RECRUITS_UP: &str = include_str!("../../example-app/migrations/0001_create_recruits.up.sql");
const RECRUITS_DOWN: &str = include_str!("../../example-app/migrations/0001_create_recruits.down.sql");
const BACKFILL: &str = "'recruit-' || id || '@placeholder.invalid'";

/// [`cli`], which must succeed: its standard error.
fn succeeds(pkg: &Package, url: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = cli(pkg, url, args, env);
    assert_eq!(code, 0, "cargo migrate {args:?}:\n{out}{err}");
    err
}

/// [`succeeds`] on `app.db`.
fn ok(pkg: &Package, args: &[&str]) -> String {
    succeeds(pkg, "sqlite:app.db", args, &[])
}

/// A package with `metadata` in `[package.metadata.migrate]` and the
/// migration 0001_create_recruits.
fn package(name: &str, metadata: &str, up: &str, down: &str) -> Package {
    let pkg = Package::named(name);
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\n{metadata}\n"),
    );
    first_migration(&pkg, up, down);
    pkg
}

/// A package with the example app's first migration, linted from 1.
fn recruits(name: &str) -> Package {
    package(name, "lint_from = 1", RECRUITS_UP, RECRUITS_DOWN)
}

/// Replaces the package's migrations with 0001_create_recruits.
fn first_migration(pkg: &Package, up: &str, down: &str) {
    write_migrations(
        pkg,
        &[
            ("0001_create_recruits.up.sql", up),
            ("0001_create_recruits.down.sql", down),
        ],
    );
}

/// Old code writes chat_name, new code rocketchat_user: an insert and an
/// update each, and old code clears one.
const WRITES: &str =
    "INSERT INTO recruits (first_name, surname, chat_name, id_number) VALUES ('Old', 'Code', 'old-insert', 'ID5');
UPDATE recruits SET chat_name = 'old-update' WHERE id_number = 'ID1';
INSERT INTO recruits (first_name, surname, rocketchat_user, id_number) VALUES ('New', 'Code', 'new-insert', 'ID6');
UPDATE recruits SET rocketchat_user = 'new-update' WHERE id_number = 'ID3';
UPDATE recruits SET chat_name = NULL WHERE id_number = 'ID4';";

/// What each row (by id_number) holds in both columns after [`WRITES`].
const AFTER_WRITES: [Option<&str>; 6] = [
    Some("old-update"),
    None,
    Some("new-update"),
    None,
    Some("old-insert"),
    Some("new-insert"),
];

/// `new --recipe rename-column recruits chat_name rocketchat_user`.
const RENAME_CHAT_NAME: [&str; 6] = [
    "new",
    "--recipe",
    "rename-column",
    "recruits",
    "chat_name",
    "rocketchat_user",
];

/// `new --recipe add-required-unique-column recruits personal_email_address --backfill EXPR`.
fn add_email(backfill: &str) -> [&str; 7] {
    [
        "new",
        "--recipe",
        "add-required-unique-column",
        "recruits",
        "personal_email_address",
        "--backfill",
        backfill,
    ]
}

const ROWS: &str = "INSERT INTO recruits (first_name, surname, chat_name, github_name, id_number) VALUES
    ('Ada', 'Lovelace', 'ada', 'ada-l', 'ID1'),
    ('Grace', 'Hopper', NULL, 'grace', 'ID2'),
    ('Alan', 'Turing', 'alan', NULL, 'ID3'),
    ('Joan', 'Turing', 'joan', 'jc', 'ID4');";

const COLUMNS: &str = "id, first_name, surname, chat_name, github_name, id_number, created_at";

fn rows(conn: &Connection, columns: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn
        .prepare(&format!("SELECT {columns} FROM recruits ORDER BY id"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<migrate_runtime::rusqlite::types::Value>>(i))
            .map(|v| v.map(|v| v.map(|v| format!("{v:?}"))))
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Applies 0001 to `app.db` and inserts [`ROWS`]: the database's path.
fn with_rows(pkg: &Package) -> std::path::PathBuf {
    ok(pkg, &["up"]);
    let db = pkg.path().join("app.db");
    Connection::open(&db).unwrap().execute_batch(ROWS).unwrap();
    db
}

fn files(pkg: &Package) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pkg.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn sqlite_add_required_unique_column_applies_on_rows_and_matches_the_example_app() {
    let pkg = recruits("recipes-add");
    let db = with_rows(&pkg);
    let before = rows(&Connection::open(&db).unwrap(), COLUMNS);

    let (code, out, err) = cli(&pkg, "sqlite:app.db", &add_email(BACKFILL), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "migrations/0002_add_personal_email_address.up.sql\nmigrations/0002_add_personal_email_address.down.sql\n\
         migrations/0003_backfill_personal_email_address.up.sql\nmigrations/0003_backfill_personal_email_address.down.sql\n\
         migrations/0004_unique_personal_email_address.up.sql\nmigrations/0004_unique_personal_email_address.down.sql\n\
         migrations/0005_require_personal_email_address.up.sql\nmigrations/0005_require_personal_email_address.down.sql\n"
    );
    // check (replay and round trip) and the lint pass, without a finding.
    let checked = ok(&pkg, &["check"]);
    assert_eq!(checked, "checked 5 migrations in migrations: ok\n");
    let linted = ok(&pkg, &["lint"]);
    assert!(
        linted.ends_with("from version 1 (lint_from): no findings\n"),
        "{linted}"
    );

    ok(&pkg, &["up"]);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4, 5]);
    assert_eq!(rows(&conn, COLUMNS), before, "rows intact");
    let emails: Vec<String> = conn
        .prepare("SELECT personal_email_address FROM recruits ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        emails,
        (1..=4)
            .map(|i| format!("recruit-{i}@placeholder.invalid"))
            .collect::<Vec<_>>()
    );
    let err = conn
        .execute(
            "INSERT INTO recruits (first_name, surname, id_number) VALUES ('No', 'Email', 'ID9')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("NOT NULL"), "{err}");
    let err = conn
        .execute(
            "INSERT INTO recruits (first_name, surname, id_number, personal_email_address) VALUES ('Dup', 'Email', 'ID9', 'recruit-1@placeholder.invalid')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");

    // The same schema as the example app's hand-written 0002–0005.
    let example: Vec<Migration> = (1..=5)
        .map(|v| {
            let path = std::fs::read_dir(tests::workspace_dir().join("example-app/migrations"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    let n = p.file_name().unwrap().to_string_lossy().into_owned();
                    n.starts_with(&format!("{v:04}_")) && n.ends_with(".up.sql")
                })
                .unwrap();
            let sql = std::fs::read_to_string(&path).unwrap();
            Migration::new(v, format!("m{v}"), Script::new(sql, path.display().to_string()))
        })
        .collect();
    let replayed = Migrator::new(&example).replay_versions(&[1, 2, 3, 4, 5]).unwrap();
    let filter = Filter::new("_migrations");
    let theirs = Model::read(&replayed, &filter).unwrap();
    let ours = Model::read(&conn, &filter).unwrap();
    assert!(theirs.diff(&ours).is_empty(), "{:?}", theirs.diff(&ours));
    drop(conn);

    // Down to 1 with the rows: the column goes, the rows stay.
    ok(&pkg, &["down", "--to", "1"]);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1]);
    assert_eq!(rows(&conn, COLUMNS), before);
    assert_eq!(rows(&conn, "*")[0].len(), 7, "the column is gone");
}

#[test]
fn sqlite_duplicates_and_nulls_in_the_backfill_stop_the_first_step_before_anything_changes() {
    let pkg = recruits("recipes-dup");
    let db = with_rows(&pkg);
    let before = rows(&Connection::open(&db).unwrap(), "*");
    // Two Turings: lower(surname) collides.
    ok(&pkg, &add_email("lower(surname) || '@example.com'"));
    ok(&pkg, &["check"]);
    let (code, _, err) = cli(&pkg, "sqlite:app.db", &["up"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("migrations/0002_add_personal_email_address.up.sql:")
            && err.contains("CHECK constraint failed: two rows of recruits would get the same personal_email_address: make the backfill expression of step 0003 unique per row, or fix those rows, then apply again; nothing was changed"),
        "{err}"
    );
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1]);
    assert_eq!(rows(&conn, "*"), before, "nothing changed");
    drop(conn);

    // A backfill that gives NULL (github_name is NULL for Alan).
    first_migration(&pkg, RECRUITS_UP, RECRUITS_DOWN);
    ok(&pkg, &add_email("github_name || '@example.com'"));
    let (code, _, err) = cli(&pkg, "sqlite:app.db", &["up"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("CHECK constraint failed: the backfill expression of step 0003 gives NULL for a row of recruits"),
        "{err}"
    );
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1]);
    assert_eq!(rows(&conn, "*"), before, "nothing changed");
    drop(conn);

    // The rows fixed, the same steps apply.
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE recruits SET github_name = 'alan-t' WHERE id_number = 'ID3'", [])
        .unwrap();
    ok(&pkg, &["up"]);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4, 5]);
}

#[test]
fn sqlite_rename_column_keeps_both_columns_in_step_until_the_contract() {
    let pkg = recruits("recipes-rename");
    let db = with_rows(&pkg);
    let before = rows(&Connection::open(&db).unwrap(), COLUMNS);
    // An index on the old column: the expand copies it onto the new one.
    pkg.write(
        "migrations/0002_index_chat_name.up.sql",
        "CREATE INDEX recruits_chat_name ON recruits (chat_name);\n",
    );
    pkg.write(
        "migrations/0002_index_chat_name.down.sql",
        "DROP INDEX recruits_chat_name;\n",
    );
    let indexes = |conn: &Connection| -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    ok(&pkg, &RENAME_CHAT_NAME);
    assert_eq!(
        files(&pkg)[4..],
        [
            "0003_rename_chat_name_to_rocketchat_user_expand.down.sql",
            "0003_rename_chat_name_to_rocketchat_user_expand.up.sql",
            "0004_rename_chat_name_to_rocketchat_user_contract.down.sql",
            "0004_rename_chat_name_to_rocketchat_user_contract.up.sql",
        ]
    );
    let checked = ok(&pkg, &["check"]);
    assert!(
        checked.ends_with("checked 4 migrations in migrations: ok (1 warning)\n"),
        "{checked}"
    );
    assert!(checked.contains("with its columns in another order"), "{checked}");
    let up = ok(&pkg, &["up"]);
    assert!(
        up.contains("note: held 0004 rename_chat_name_to_rocketchat_user_contract"),
        "{up}"
    );
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3]);
    assert_eq!(rows(&conn, COLUMNS), before, "rows intact");
    assert_eq!(indexes(&conn), ["recruits_chat_name", "recruits_rocketchat_user"]);
    conn.execute_batch(WRITES).unwrap();
    let both = rows(&conn, "id_number, chat_name, rocketchat_user");
    let text = |s: &str| {
        Some(format!(
            "{:?}",
            migrate_runtime::rusqlite::types::Value::Text(s.to_owned())
        ))
    };
    let want: Vec<Vec<Option<String>>> = AFTER_WRITES
        .iter()
        .zip(1..)
        .map(|(v, id)| vec![text(&format!("ID{id}")), v.and_then(text), v.and_then(text)])
        .collect();
    assert_eq!(both, want);
    drop(conn);

    ok(&pkg, &["up", "--contract"]);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4]);
    assert_eq!(indexes(&conn), ["recruits_rocketchat_user"]);
    let after = rows(&conn, "id_number, rocketchat_user");
    assert_eq!(
        after,
        want.iter()
            .map(|r| vec![r[0].clone(), r[2].clone()])
            .collect::<Vec<_>>()
    );
    assert!(
        conn.prepare("SELECT chat_name FROM recruits").is_err(),
        "the old column is gone"
    );
    drop(conn);
    // The contract's down gives the old column back, filled.
    ok(&pkg, &["down"]);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(rows(&conn, "id_number, chat_name, rocketchat_user"), want);
    assert_eq!(indexes(&conn), ["recruits_chat_name", "recruits_rocketchat_user"]);
}

#[test]
fn bad_input_is_an_error_with_a_hint_and_writes_nothing() {
    let pkg = recruits("recipes-bad");
    let before = files(&pkg);
    let cases: &[&[&str]] = &[
        &["new", "--recipe", "add-required-unique-column", "recruit", "email"],
        &["new", "--recipe", "add-required-unique-column", "recruits", "surname"],
        &["new", "--recipe", "add-required-unique-column", "recruits"],
        &[
            "new",
            "--recipe",
            "add-required-unique-column",
            "recruits",
            "email",
            "--backfill",
            "nosuch || 'x'",
        ],
        &[
            "new",
            "--recipe",
            "rename-column",
            "recruits",
            "chatname",
            "rocketchat_user",
        ],
        &["new", "--recipe", "rename-column", "recruits", "chat_name", "surname"],
        &[
            "new",
            "--recipe",
            "rename-column",
            "recruits",
            "id_number",
            "national_id",
        ],
        &[
            "new",
            "--recipe",
            "rename-column",
            "recruits",
            "chat_name",
            "x",
            "--type",
            "TEXT",
        ],
        &["new", "--recipe", "rename-column", "recruits", "chat_name", "a", "b"],
        &["new", "--recipe", "drop-everything", "recruits"],
        &["new", "recruits", "x"],
    ];
    let mut text = String::new();
    for args in cases {
        let (code, out, err) = cli(&pkg, "sqlite:app.db", args, &[]);
        text.push_str(&format!(
            "$ cargo migrate {}\nexit {code}\n{out}{err}\n",
            args.join(" ")
        ));
        assert_eq!(files(&pkg), before, "nothing written: {args:?}");
    }
    insta::assert_snapshot!("recipes_bad_input", text);
}

const PG_RECRUITS: &str = "CREATE TABLE recruits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_name text NOT NULL,
    surname text NOT NULL,
    chat_name text,
    id_number text NOT NULL UNIQUE
);
CREATE INDEX recruits_chat_name ON recruits (chat_name);
";
const PG_ROWS: &str = "INSERT INTO recruits (first_name, surname, chat_name, id_number) VALUES
    ('Ada', 'Lovelace', 'ada', 'ID1'), ('Grace', 'Hopper', NULL, 'ID2'),
    ('Alan', 'Turing', 'alan', 'ID3'), ('Joan', 'Turing', 'joan', 'ID4')";

fn pg_package(name: &str) -> Package {
    package(name, "backend = \"postgres\"", PG_RECRUITS, "DROP TABLE recruits;\n")
}

fn pg_rows(client: &mut migrate_runtime::postgres::Client, columns: &str) -> Vec<Vec<Option<String>>> {
    client
        .query(&format!("SELECT {columns} FROM recruits ORDER BY id_number"), &[])
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect()
}

#[test]
fn pg_add_required_unique_column_applies_on_rows_and_stops_on_duplicates() {
    let Some(db) = pg_database!() else { return };
    let pkg = pg_package("recipes-pg-add");
    let check = [("MIGRATE_CHECK_DATABASE_URL", db.url.as_str())];
    let pg_ok = |args: &[&str], env: &[(&str, &str)]| succeeds(&pkg, &db.url, args, env);
    pg_ok(&["up"], &[]);
    let mut client = db.client();
    client.batch_execute(PG_ROWS).unwrap();
    let columns = "id::text, first_name, surname, chat_name, id_number";
    let before = pg_rows(&mut client, columns);
    // Two Turings: the guard stops the first step.
    pg_ok(&add_email("lower(surname) || '@example.com'"), &[]);
    let up3 = pkg.read("migrations/0004_unique_personal_email_address.up.sql");
    assert!(
        up3.starts_with("-- migrate:no-transaction\n") && up3.contains("CREATE UNIQUE INDEX CONCURRENTLY"),
        "{up3}"
    );
    let up4 = pkg.read("migrations/0005_require_personal_email_address.up.sql");
    assert!(
        up4.contains("NOT VALID;\n") && up4.contains("VALIDATE CONSTRAINT"),
        "{up4}"
    );
    pg_ok(&["check"], &check);
    let (code, _, err) = cli(&pkg, &db.url, &["up"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("two rows of recruits would get the same personal_email_address"),
        "{err}"
    );
    assert_eq!(pg_rows(&mut client, columns), before, "nothing changed");
    let has_column = |client: &mut migrate_runtime::postgres::Client| -> bool {
        client
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'recruits' AND column_name = 'personal_email_address'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 1
    };
    assert!(!has_column(&mut client));

    // A unique backfill: all four apply; rows intact; NOT NULL and unique.
    first_migration(&pkg, PG_RECRUITS, "DROP TABLE recruits;\n");
    pg_ok(&add_email("'recruit-' || id || '@placeholder.invalid'"), &[]);
    pg_ok(&["check"], &check);
    let linted = pg_ok(&["lint"], &[]);
    assert!(linted.ends_with("no findings\n"), "{linted}");
    pg_ok(&["up"], &[]);
    assert_eq!(pg_rows(&mut client, columns), before, "rows intact");
    let nullable: String = client
        .query_one(
            "SELECT is_nullable::text FROM information_schema.columns WHERE table_name = 'recruits' AND column_name = 'personal_email_address'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(nullable, "NO");
    let err = client
        .batch_execute(
            "INSERT INTO recruits (first_name, surname, id_number, personal_email_address) VALUES ('D', 'E', 'ID9', 'recruit-1@placeholder.invalid')",
        )
        .unwrap_err();
    assert!(format!("{err:?}").contains("unique"), "{err:?}");
    pg_ok(&["down", "--to", "1"], &[]);
    assert!(!has_column(&mut client));
    assert_eq!(pg_rows(&mut client, columns), before, "rows intact after down");
}

#[test]
fn pg_rename_column_keeps_both_columns_in_step_until_the_contract() {
    let Some(db) = pg_database!() else { return };
    let pkg = pg_package("recipes-pg-rename");
    let pg_ok = |args: &[&str], env: &[(&str, &str)]| succeeds(&pkg, &db.url, args, env);
    pg_ok(&["up"], &[]);
    let mut client = db.client();
    client.batch_execute(PG_ROWS).unwrap();
    pg_ok(&RENAME_CHAT_NAME, &[]);
    pg_ok(&["check"], &[("MIGRATE_CHECK_DATABASE_URL", db.url.as_str())]);
    let linted = pg_ok(&["lint"], &[]);
    assert!(linted.ends_with("no findings\n"), "{linted}");
    let index = pkg.read("migrations/0003_index_rocketchat_user.up.sql");
    assert!(
        index.starts_with("-- migrate:no-transaction\n")
            && index.contains("CREATE INDEX CONCURRENTLY recruits_rocketchat_user ON recruits (rocketchat_user);"),
        "{index}"
    );
    let up = pg_ok(&["up"], &[]);
    assert!(up.contains("note: held 0004"), "{up}");
    let pg_indexes = |client: &mut migrate_runtime::postgres::Client| -> Vec<String> {
        client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = 'recruits' AND indexname LIKE '%chat%' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(
        pg_indexes(&mut client),
        ["recruits_chat_name", "recruits_rocketchat_user"]
    );
    client.batch_execute(WRITES).unwrap();
    let want: Vec<Vec<Option<String>>> = AFTER_WRITES
        .iter()
        .map(|v| vec![v.map(str::to_owned), v.map(str::to_owned)])
        .collect();
    assert_eq!(pg_rows(&mut client, "chat_name, rocketchat_user"), want);
    pg_ok(&["up", "--contract"], &[]);
    let after = pg_rows(&mut client, "rocketchat_user");
    assert_eq!(after, want.iter().map(|r| vec![r[1].clone()]).collect::<Vec<_>>());
    assert_eq!(pg_indexes(&mut client), ["recruits_rocketchat_user"]);
    pg_ok(&["down"], &[]);
    assert_eq!(pg_rows(&mut client, "chat_name, rocketchat_user"), want);
    assert_eq!(
        pg_indexes(&mut client),
        ["recruits_chat_name", "recruits_rocketchat_user"]
    );

    // A NOT NULL column: the BEFORE trigger fills it before PostgreSQL
    // checks NOT NULL, so new code may leave it out.
    pg_ok(&["up", "--contract"], &[]);
    pg_ok(
        &["new", "--recipe", "rename-column", "recruits", "surname", "family_name"],
        &[],
    );
    pg_ok(&["check"], &[("MIGRATE_CHECK_DATABASE_URL", db.url.as_str())]);
    pg_ok(&["up"], &[]);
    client
        .batch_execute("INSERT INTO recruits (first_name, family_name, id_number) VALUES ('Only', 'New', 'ID7')")
        .unwrap();
    let names = pg_rows(&mut client, "surname, family_name");
    assert_eq!(names.len(), 7);
    assert!(names.iter().all(|r| r[0].is_some() && r[0] == r[1]), "{names:?}");
    pg_ok(&["up", "--contract"], &[]);
    pg_ok(&["down"], &[]);
    assert_eq!(pg_rows(&mut client, "surname, family_name"), names);
    let nullable: String = client
        .query_one(
            "SELECT is_nullable::text FROM information_schema.columns WHERE table_name = 'recruits' AND column_name = 'surname'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(nullable, "NO", "the contract's down makes it NOT NULL again");
}
