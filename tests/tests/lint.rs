//! The lint (`MS001`…): each rule fires, is waived, refuses a waiver
//! without a reason, and reports a stale waiver, with the exact text of
//! `cargo migrate lint`; `cargo migrate check` and a real `cargo build`
//! fail on its errors and pass its warnings, and `lint_from` skips history.

use tests::Package;

/// For each rule: the migration before (the schema it changes) and the
/// migration the rule fires on.
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "MS001",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        "-- Nobody uses it any more.\nDROP TABLE users;\n",
    ),
    (
        "MS002",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nickname TEXT);\n",
        "ALTER TABLE users DROP COLUMN nickname;\n",
    ),
    (
        "MS003",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        "ALTER TABLE users RENAME COLUMN name TO full_name;\n",
    ),
    (
        "MS004",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n",
        "CREATE UNIQUE INDEX users_email ON users (email);\n",
    ),
    (
        "MS005",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n",
        "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n\
         INSERT INTO users_new SELECT id, email FROM users;\n\
         DROP TABLE users;\n\
         ALTER TABLE users_new RENAME TO users;\n",
    ),
    (
        "MS006",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER);\n",
        "CREATE TABLE items_new (id INTEGER PRIMARY KEY, price INTEGER CHECK (price >= 0));\n\
         INSERT INTO items_new SELECT id, price FROM items;\n\
         DROP TABLE items;\n\
         ALTER TABLE items_new RENAME TO items;\n",
    ),
    (
        "MS007",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price TEXT);\n",
        "CREATE TABLE items_new (id INTEGER PRIMARY KEY, price INTEGER);\n\
         INSERT INTO items_new SELECT id, price FROM items;\n\
         DROP TABLE items;\n\
         ALTER TABLE items_new RENAME TO items;\n",
    ),
    (
        "MS008",
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT);\n",
        "DELETE FROM sessions;\n",
    ),
    (
        "MS009",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        "ALTER TABLE users ADD COLUMN display_name TEXT;\n\
         UPDATE users SET display_name = name WHERE display_name IS NULL;\n",
    ),
    (
        "MS010",
        "CREATE TABLE leagues (id INTEGER PRIMARY KEY);\n",
        "CREATE TABLE players (id INTEGER PRIMARY KEY, team_id INTEGER REFERENCES teams (id));\n",
    ),
];

/// Replaces the package's migrations with `files`.
pub(crate) fn migrations(pkg: &Package, files: &[(&str, &str)]) {
    let dir = pkg.path().join("migrations");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        pkg.write(&format!("migrations/{name}"), text);
    }
}

/// `cargo migrate ARGS` in the package: exit code and standard error
/// (and standard output when there is some).
fn migrate(pkg: &Package, args: &[&str]) -> String {
    let out = pkg.migrate().args(args).output().unwrap();
    let mut text = format!("exit {}\n", out.status.code().unwrap_or(-1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.is_empty() {
        text.push_str(&stdout);
    }
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn each_rule_fires_is_waived_needs_a_reason_and_goes_stale() {
    let pkg = Package::named("lint-fixtures");
    for (id, before, up) in FIXTURES {
        let mut text = String::new();
        let waived = format!("-- migrate:allow {id} checked with the owners, see the ticket\n{up}");
        let no_reason = format!("-- migrate:allow {id}\n{up}");
        let stale = format!("-- migrate:allow {id} kept from an old draft\n{before}");
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            ("fires", vec![("0001_before.sql", before), ("0002_change.sql", up)]),
            (
                "waived",
                vec![("0001_before.sql", before), ("0002_change.sql", &waived)],
            ),
            (
                "waiver without a reason",
                vec![("0001_before.sql", before), ("0002_change.sql", &no_reason)],
            ),
            ("stale waiver", vec![("0001_before.sql", &stale)]),
        ];
        for (case, files) in cases {
            migrations(&pkg, &files);
            text.push_str(&format!("## {case}\n{}\n", migrate(&pkg, &["lint"])));
        }
        insta::assert_snapshot!(format!("lint_{id}"), text);
    }
}

#[test]
fn explain_json_and_bad_ids() {
    let pkg = Package::named("lint-explain");
    migrations(
        &pkg,
        &[("0001_before.sql", FIXTURES[1].1), ("0002_change.sql", FIXTURES[1].2)],
    );
    let mut text = migrate(&pkg, &["lint", "--format", "json"]);
    text.push_str(&migrate(&pkg, &["lint", "--explain", "ms002"]));
    text.push_str(&migrate(&pkg, &["lint", "--explain", "MS042"]));
    insta::assert_snapshot!("lint_json_and_explain", text);
}

/// `cargo migrate check` runs the lint from `lint_from` on: its errors
/// fail it with `path:line: MS00N message (help: …)`, and a version below
/// `lint_from` is not judged.
#[test]
fn check_fails_on_lint_errors_from_lint_from_on() {
    let pkg = Package::named("lint-check");
    migrations(
        &pkg,
        &[("0001_before.sql", FIXTURES[1].1), ("0002_change.sql", FIXTURES[1].2)],
    );
    // Without lint_from the build and check do not lint.
    assert!(migrate(&pkg, &["check"]).starts_with("exit 0\n"));
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nlint_from = 2\n"),
    );
    let text = migrate(&pkg, &["check"]);
    assert_eq!(
        text,
        "exit 1\nerror: migrations/0002_change.sql:1: MS002 drops column `users.nickname` and its data (help: keep the column in the new table, or add `-- migrate:allow MS002 <reason>` once no code uses it; `cargo migrate lint --explain MS002`)\nerror: 1 problem in the migrations\n"
    );
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nlint_from = 3\n"),
    );
    assert_eq!(
        migrate(&pkg, &["check"]),
        "exit 0\nchecked 2 migrations in migrations: ok\n"
    );
    // `lint` follows lint_from too.
    assert_eq!(
        migrate(&pkg, &["lint"]),
        "exit 0\nlinted 2 migrations in migrations from version 3 (lint_from): no findings\n"
    );
}

/// A real `cargo build`: a lint error fails it at the file and line, a
/// lint warning is a `warning:` of the build script and the build goes on.
#[test]
fn cargo_build_fails_on_lint_errors_and_warns_on_warnings() {
    let pkg = Package::named("lint-build");
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nlint_from = 1\n"),
    );
    migrations(
        &pkg,
        &[("0001_before.sql", FIXTURES[0].1), ("0002_change.sql", FIXTURES[0].2)],
    );
    let out = pkg.cargo(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("migrations/0002_change.sql:2: MS001 drops table `users` and every row in it (help: if the data may go, add `-- migrate:allow MS001 <reason>` at the top of the file; `cargo migrate lint --explain MS001`)"),
        "{stderr}"
    );
    migrations(
        &pkg,
        &[("0001_before.sql", FIXTURES[7].1), ("0002_change.sql", FIXTURES[7].2)],
    );
    let out = pkg.cargo(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let name = pkg.name();
    assert!(
        stderr.contains(&format!("warning: {name}@0.0.0: migrations/0002_change.sql:1: MS008 `DELETE` of `sessions` has no WHERE: it changes every row of the table")),
        "{stderr}"
    );
}

/// `cargo migrate init` sets `lint_from` to the next version: what is
/// there already is history, not judged; a new package lints from 1.
#[test]
fn init_sets_lint_from_to_the_next_version() {
    let pkg = Package::bare();
    pkg.write("migrations/0001_a.sql", "CREATE TABLE a (x);\n");
    pkg.write("migrations/0002_drop_a.sql", "DROP TABLE a;\n");
    pkg.migrate().arg("init").assert().success();
    let manifest = pkg.read("Cargo.toml");
    assert!(manifest.contains("\nlint_from = 3\n"), "{manifest}");
    assert!(migrate(&pkg, &["check"]).starts_with("exit 0\n"));
    // A migration written from now on is linted.
    pkg.write(
        "migrations/0003_drop_a_again.sql",
        "CREATE TABLE c (id INTEGER PRIMARY KEY);\nALTER TABLE c RENAME TO d;\n",
    );
    pkg.write("migrations/0004_drop_d.sql", "DROP TABLE d;\n");
    // `init` turned the lock file on: files written by hand go into it.
    pkg.migrate().arg("lock").assert().success();
    let text = migrate(&pkg, &["check"]);
    assert!(
        text.contains("migrations/0004_drop_d.sql:1: MS001 drops table `d`"),
        "{text}"
    );
    let fresh = Package::bare();
    fresh.migrate().arg("init").assert().success();
    let manifest = fresh.read("Cargo.toml");
    assert!(manifest.contains("\nlint_from = 1\n"), "{manifest}");
}

/// The lint is SQLite's: a PostgreSQL package's config refuses
/// `lint_from` at its line, and `lint` says where it runs.
#[test]
fn postgres_packages_are_told_the_lint_is_sqlite_only() {
    let pkg = Package::named("lint-postgres");
    migrations(&pkg, &[("0001_a.sql", "CREATE TABLE a (x int);\n")]);
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n"),
    );
    let text = migrate(&pkg, &["lint"]);
    assert_eq!(
        text,
        "exit 1\nerror: cargo migrate lint runs on SQLite migrations only: its rules compare the schema model before and after each migration, which PostgreSQL does not have yet; `cargo migrate check` checks these migrations\n"
    );
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\nlint_from = 1\n"),
    );
    let text = migrate(&pkg, &["check"]);
    assert!(
        text.contains("Cargo.toml:17: lint_from is for SQLite for now, and these migrations are for PostgreSQL")
            && text.contains("(help: remove lint_from)"),
        "{text}"
    );
}
