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

/// The four cases of a rule, as `cargo migrate lint` prints them: the
/// migrations `history` then `change` (whose up the rule fires on), the
/// change waived, waived without a reason, and a waiver in the first file
/// of the history, where the rule does not fire.
fn four_cases(pkg: &Package, id: &str, history: &[(&str, &str)], change: (&str, &str)) -> String {
    let (name, up) = change;
    let waived = format!("-- migrate:allow {id} checked with the owners, see the ticket\n{up}");
    let no_reason = format!("-- migrate:allow {id}\n{up}");
    let stale = format!("-- migrate:allow {id} kept from an old draft\n{}", history[0].1);
    fn with<'a>(history: &[(&'a str, &'a str)], name: &'a str, last: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut files = history.to_vec();
        files.push((name, last));
        files
    }
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("fires", with(history, name, up)),
        ("waived", with(history, name, &waived)),
        ("waiver without a reason", with(history, name, &no_reason)),
        ("stale waiver", vec![(history[0].0, stale.as_str())]),
    ];
    let mut text = String::new();
    for (case, files) in cases {
        migrations(pkg, &files);
        text.push_str(&format!("## {case}\n{}\n", migrate(pkg, &["lint"])));
    }
    text
}

#[test]
fn each_rule_fires_is_waived_needs_a_reason_and_goes_stale() {
    let pkg = Package::named("lint-fixtures");
    for (id, before, up) in FIXTURES {
        let text = four_cases(&pkg, id, &[("0001_before.sql", before)], ("0002_change.sql", up));
        insta::assert_snapshot!(format!("lint_{id}"), text);
    }
}

/// MS012: a contract that drops a column its expand did not supersede
/// (the expand added to another table); MS013: a table rebuild that does
/// not recreate the old table's index.
#[test]
fn contract_without_expand_and_rebuild_procedure() {
    let pkg = Package::named("lint-contract");
    let history = [
        (
            "0001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nickname TEXT);\nCREATE TABLE orders (id INTEGER PRIMARY KEY);\n",
        ),
        (
            "0002_expand.sql",
            "-- migrate:phase expand\nALTER TABLE orders ADD COLUMN note TEXT;\n",
        ),
    ];
    let contract = "-- migrate:phase contract\n-- migrate:contract-of 0002\nALTER TABLE users DROP COLUMN nickname;\n";
    let text = four_cases(&pkg, "MS012", &history, ("0003_contract.sql", contract));
    insta::assert_snapshot!("lint_MS012", text);
    // The expand that adds the replacement to users supersedes it.
    let superseded = [
        history[0],
        (
            "0002_expand.sql",
            "-- migrate:phase expand\nALTER TABLE users ADD COLUMN display_name TEXT;\n",
        ),
        ("0003_contract.sql", contract),
    ];
    migrations(&pkg, &superseded);
    assert_eq!(
        migrate(&pkg, &["lint"]),
        "exit 0\nlinted 3 migrations in migrations from the first (lint_from is not set, so `cargo build` does not lint): no findings\n"
    );
    let before = [(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\nCREATE INDEX users_email ON users (email);\n",
    )];
    let rebuild = "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE);\n\
                   INSERT INTO users_new (id, email) SELECT id, email FROM users;\n\
                   DROP TABLE users;\n\
                   ALTER TABLE users_new RENAME TO users;\n";
    let text = four_cases(&pkg, "MS013", &before, ("0002_rebuild.sql", rebuild));
    insta::assert_snapshot!("lint_MS013", text);
}

/// Makes `pkg` a PostgreSQL package (no server) with `more` in its
/// `[package.metadata.migrate]`.
fn postgres(pkg: &Package, manifest: &str, more: &str) {
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n{more}"),
    );
}

/// The PostgreSQL rules, and the shared ones on PostgreSQL statements:
/// the migration before, and the one the rule fires on.
const PG_FIXTURES: &[(&str, &str, &str)] = &[
    (
        "MS002",
        "CREATE TABLE users (id bigint PRIMARY KEY, name text, nickname text);\n",
        "SET LOCAL lock_timeout = '2s';\nALTER TABLE users DROP COLUMN nickname;\n",
    ),
    (
        "MS014",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        "SET LOCAL lock_timeout = '2s';\nCREATE INDEX users_email ON users (email);\n",
    ),
    (
        "MS015",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        "SET LOCAL lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\n",
    ),
    (
        "MS016",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        "SET LOCAL lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
    ),
    (
        "MS017",
        "CREATE TABLE items (id bigint PRIMARY KEY, price integer);\n",
        "SET LOCAL lock_timeout = '2s';\nALTER TABLE items ALTER COLUMN price TYPE numeric(12, 2);\n",
    ),
    (
        "MS018",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\nCREATE TABLE players (id bigint PRIMARY KEY, team_id bigint);\n",
        "SET LOCAL lock_timeout = '2s';\nALTER TABLE players ADD CONSTRAINT players_team FOREIGN KEY (team_id) REFERENCES teams (id);\n",
    ),
    (
        "MS019",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        "ALTER TABLE users ADD COLUMN name text;\n",
    ),
];

/// On a PostgreSQL package, without a server: each PostgreSQL rule fires,
/// is waived, refuses a waiver without a reason, and goes stale.
#[test]
fn pg_each_rule_fires_is_waived_needs_a_reason_and_goes_stale() {
    let pkg = Package::named("lint-pg-fixtures");
    let manifest = pkg.read("Cargo.toml");
    postgres(&pkg, &manifest, "");
    for (id, before, up) in PG_FIXTURES {
        let text = four_cases(&pkg, id, &[("0001_before.sql", before)], ("0002_change.sql", up));
        insta::assert_snapshot!(format!("lint_pg_{id}"), text);
    }
}

/// The safe ways on PostgreSQL pass: the index built concurrently
/// outside a transaction, the NOT NULL through a validated CHECK, the
/// foreign key NOT VALID then validated, a stable default, a widened
/// varchar, each with a lock_timeout.
#[test]
fn pg_the_safe_ways_pass() {
    let pkg = Package::named("lint-pg-safe");
    let manifest = pkg.read("Cargo.toml");
    postgres(&pkg, &manifest, "lint_from = 1\n");
    migrations(
        &pkg,
        &[
            (
                "0001_users.sql",
                "CREATE TABLE teams (id bigint PRIMARY KEY);\nCREATE TABLE users (id bigint PRIMARY KEY, email varchar(80), team_id bigint);\nCREATE INDEX users_team ON users (team_id);\n",
            ),
            (
                "0002_email_index.sql",
                "-- migrate:no-transaction\nSET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
            ),
            (
                "0003_email_not_null_check.sql",
                "SET LOCAL lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users ADD CONSTRAINT users_team FOREIGN KEY (team_id) REFERENCES teams (id) NOT VALID;\n",
            ),
            (
                "0004_validate.sql",
                "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\nALTER TABLE users VALIDATE CONSTRAINT users_team;\n",
            ),
            (
                "0005_email_not_null.sql",
                "SET LOCAL lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_nn;\nALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\nALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n",
            ),
        ],
    );
    assert_eq!(
        migrate(&pkg, &["check"]),
        "exit 0\nchecked 5 migrations in migrations: ok\n"
    );
    assert_eq!(
        migrate(&pkg, &["lint"]),
        "exit 0\nlinted 5 migrations in migrations from version 1 (lint_from): no findings\n"
    );
}

/// On PostgreSQL, `check` (no server) fails on a lint error with its file
/// and line, from `lint_from` on; a contract that drops what its expand
/// did not supersede is one; and a real `cargo build` of a PostgreSQL
/// app fails on it too, and shows a warning as a build-script warning.
#[test]
fn pg_check_and_cargo_build_fail_on_lint_errors() {
    let pkg = Package::postgres("lint-pg-build", r#""postgres""#, "", "lint_from = 2\n");
    migrations(
        &pkg,
        &[
            (
                "0001_users.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, name text, nickname text);\nCREATE TABLE orders (id bigint PRIMARY KEY);\nDROP TABLE orders;\n",
            ),
            (
                "0002_expand.sql",
                "-- migrate:phase expand\nCREATE TABLE audit (id bigint PRIMARY KEY);\n",
            ),
            (
                "0003_contract.sql",
                "-- migrate:phase contract\n-- migrate:contract-of 0002\nSET LOCAL lock_timeout = '2s';\nALTER TABLE users DROP COLUMN nickname;\n",
            ),
        ],
    );
    let expected = "migrations/0003_contract.sql:4: MS012 contract without expand: drops column `users.nickname` and its data, which its expand migrations/0002_expand.sql does not supersede (it adds no column to `users` and no trigger on it)";
    let text = migrate(&pkg, &["check"]);
    assert!(text.starts_with("exit 1\n") && text.contains(expected), "{text}");
    // 0001 drops a table, but it is below lint_from: history, not judged.
    assert!(!text.contains("0001_users.sql"), "{text}");
    let (ok, stderr) = pkg.build();
    assert!(!ok, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    // A warning does not fail the build; it shows as the build script's.
    migrations(
        &pkg,
        &[
            (
                "0001_users.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
            ),
            (
                "0002_index.sql",
                "SET LOCAL lock_timeout = '2s';\nCREATE INDEX users_email ON users (email);\n",
            ),
        ],
    );
    let out = pkg.cargo(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: lint-pg-build@0.0.0: migrations/0002_index.sql:2: MS014 creates an index on `users` without CONCURRENTLY"),
        "{stderr}"
    );
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
