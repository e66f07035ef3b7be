//! Expand / contract phases (`-- migrate:phase expand|contract`,
//! `-- migrate:contract-of NNNN`): `apply` holds the first pending contract
//! and reports it, `Migrator::contract(true)` and `cargo migrate up
//! --contract` apply it, `status` shows it held, on SQLite and PostgreSQL;
//! the directives' bad input is a `path:line` error with a hint.

use std::cell::RefCell;

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Event, Migration, Migrator, Phase, Script, State};
use tests::{Package, applied_versions, pg_database};

use super::lint::migrations as write_migrations;

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n";
const EXPAND: &str = "-- migrate:phase expand\nALTER TABLE users ADD COLUMN full_name TEXT;\n";
const CONTRACT: &str = "-- migrate:phase contract\n-- migrate:contract-of 0002\nALTER TABLE users DROP COLUMN name;\n";
const AFTER: &str = "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);\n";

/// 1 users, 2 expand, 3 its contract, 4 a plain migration after it.
fn migrations() -> Vec<Migration> {
    let m = |v: u64, name: &str, sql: &str| {
        Migration::new(
            v,
            name.to_owned(),
            Script::new(sql.to_owned(), format!("migrations/{v:04}_{name}.sql")),
        )
    };
    vec![
        m(1, "users", USERS),
        m(2, "add_full_name", EXPAND).with_phase(Phase::Expand),
        m(3, "drop_name", CONTRACT)
            .with_phase(Phase::Contract)
            .with_contract_of(2),
        m(4, "audit", AFTER),
    ]
}

/// The versions `apply` announced as held through `Event::Held`.
fn held_events<'a>(migrator: Migrator<'a>, seen: &'a RefCell<Vec<u64>>) -> Migrator<'a> {
    migrator.on_event(move |e| {
        if let Event::Held { migration } = e {
            seen.borrow_mut().push(migration.version());
        }
    })
}

#[test]
fn sqlite_apply_holds_the_contract_until_asked_for() {
    let migrations = migrations();
    let mut conn = Connection::open_in_memory().unwrap();
    let seen = RefCell::new(Vec::new());
    let report = held_events(Migrator::new(&migrations), &seen).apply(&mut conn).unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 2]);
    let held = report.held.clone().expect("the contract is held");
    assert_eq!(
        (held.version, held.name.as_str(), held.contract_of),
        (3, "drop_name", Some(2))
    );
    assert_eq!(*seen.borrow(), [3]);
    assert!(
        report
            .to_string()
            .contains("held 3 drop_name: a contract of 2, not applied"),
        "{report}"
    );
    assert_eq!(applied_versions(&conn), [1, 2]);
    // The old column is still there for the old code.
    conn.execute("INSERT INTO users (name, full_name) VALUES ('Ada', 'Ada Lovelace')", [])
        .unwrap();

    // Again: nothing applied, still held (the path without the write lock).
    let report = held_events(Migrator::new(&migrations), &seen).apply(&mut conn).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.held.map(|h| h.version), Some(3));
    assert_eq!(*seen.borrow(), [3, 3]);
    let status = Migrator::new(&migrations).status(&conn).unwrap();
    let states: Vec<State> = status.entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [State::Applied, State::Applied, State::Held, State::Pending]);
    assert_eq!(status.held().map(Migration::version).collect::<Vec<_>>(), [3]);
    assert_eq!(status.pending().count(), 2);
    // migrate_to past the contract holds it too.
    let report = Migrator::new(&migrations).migrate_to(&mut conn, 4).unwrap();
    assert_eq!((report.steps.len(), report.held.map(|h| h.version)), (0, Some(3)));

    let report = held_events(Migrator::new(&migrations).contract(true), &seen)
        .apply(&mut conn)
        .unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(report.held, None);
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4]);
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('users') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["id", "full_name"]);
    // Once applied, a plain apply has nothing to hold.
    let report = Migrator::new(&migrations).apply(&mut conn).unwrap();
    assert!(report.is_empty() && report.held.is_none());
}

#[test]
fn test_databases_hold_every_migration_contracts_included() {
    let migrations = migrations();
    let conn = Migrator::new(&migrations).test_db().unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4]);
}

#[test]
fn sqlite_grouped_apply_stops_before_the_contract_too() {
    let migrations = migrations();
    let mut conn = Connection::open_in_memory().unwrap();
    let report = Migrator::new(&migrations).grouped(true).apply(&mut conn).unwrap();
    assert_eq!(report.applied().count(), 2);
    assert_eq!(report.held.map(|h| h.version), Some(3));
}

#[test]
fn pg_apply_holds_the_contract_until_asked_for() {
    let Some(db) = pg_database!() else { return };
    let pg = |sql: &str| sql.replace("INTEGER PRIMARY KEY", "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY");
    let migrations: Vec<Migration> = migrations()
        .into_iter()
        .map(|m| {
            let mut out = Migration::new(
                m.version(),
                m.name().to_owned(),
                Script::new(pg(m.up().sql()), m.up().file().to_owned()),
            );
            if let Some(phase) = m.phase() {
                out = out.with_phase(phase);
            }
            if let Some(of) = m.contract_of() {
                out = out.with_contract_of(of);
            }
            out
        })
        .collect();
    let mut client = db.client();
    let seen = RefCell::new(Vec::new());
    let report = held_events(Migrator::new(&migrations), &seen)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(report.held.map(|h| (h.version, h.contract_of)), Some((3, Some(2))));
    let report = held_events(Migrator::new(&migrations), &seen)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!((report.steps.len(), report.held.map(|h| h.version)), (0, Some(3)));
    assert_eq!(*seen.borrow(), [3, 3]);
    let status = Migrator::new(&migrations).status_postgres(&mut client).unwrap();
    let states: Vec<State> = status.entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [State::Applied, State::Applied, State::Held, State::Pending]);
    client
        .batch_execute("INSERT INTO users (name, full_name) VALUES ('Ada', 'Ada Lovelace')")
        .unwrap();
    let report = Migrator::new(&migrations)
        .contract(true)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(report.held, None);
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(columns, ["id", "full_name"]);
    // A test database holds every migration, contracts included.
    let mut test = Migrator::new(&migrations).test_db_postgres(&db.url).unwrap();
    let versions: Vec<i64> = test
        .client()
        .query("SELECT version FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}

/// `cargo migrate ARGS` on the SQLite database `app.db`: see [`migrate_on`].
pub(crate) fn migrate(pkg: &Package, args: &[&str]) -> String {
    migrate_on(pkg, "sqlite:app.db", args)
}

/// `cargo migrate ARGS` on the database `url`: exit code, then stdout and
/// stderr, with timings (`3 ms`, `0.2 s`) and dates made stable.
fn migrate_on(pkg: &Package, url: &str, args: &[&str]) -> String {
    let out = pkg
        .migrate()
        .env("DATABASE_URL", url)
        .env_remove("MIGRATE_CHECK_DATABASE_URL")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "exit {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stable(&text)
}

/// `text` with each duration (`3 ms`, `0.2 s`) made `T` and each UTC
/// time (`2026-12-02T00:01:02.345Z`) made `DATE`.
fn stable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line.split(' ').collect();
        let mut i = 0;
        let mut kept = Vec::new();
        while i < words.len() {
            let w = words[i];
            let unit = words.get(i + 1).map(|u| u.trim_end_matches([';', ')', ',', '\n']));
            let number = w.trim_start_matches('(');
            if number.parse::<f64>().is_ok() && matches!(unit, Some("ms" | "s" | "µs")) {
                let tail = &words[i + 1][unit.map_or(0, str::len)..];
                kept.push(format!("{}T{tail}", &w[..w.len() - number.len()]));
                i += 2;
                continue;
            }
            let bare = w.trim_end_matches([' ', '\n']);
            if bare.len() >= 20
                && bare.ends_with('Z')
                && bare.as_bytes()[10] == b'T'
                && bare[..4].parse::<u32>().is_ok()
            {
                kept.push(w.replacen(bare, "DATE", 1));
            } else {
                kept.push(w.to_owned());
            }
            i += 1;
        }
        out.push_str(&kept.join(" "));
    }
    // Times inside JSON strings too.
    let mut rest = out.as_str();
    let mut done = String::new();
    while let Some(at) = rest.find("\"20") {
        let candidate = &rest[at + 1..];
        let end = candidate.find('"').unwrap_or(0);
        let time = &candidate[..end];
        done.push_str(&rest[..=at]);
        if time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T' {
            done.push_str("DATE");
            rest = &candidate[end..];
        } else {
            rest = candidate;
        }
    }
    done.push_str(rest);
    done
}

const FILES: &[(&str, &str)] = &[
    ("0001_users.sql", USERS),
    ("0002_add_full_name.sql", EXPAND),
    ("0003_drop_name.sql", CONTRACT),
    ("0004_audit.sql", AFTER),
];

#[test]
fn cli_up_holds_status_shows_up_contract_applies() {
    let pkg = Package::named("phases-cli");
    write_migrations(&pkg, FILES);
    let mut text = String::new();
    for args in [
        &["up"][..],
        &["status"],
        &["status", "--format", "json"],
        &["up", "--dry-run"],
        &["up", "--dry-run", "--contract"],
        &["up", "--contract"],
        &["status"],
    ] {
        text.push_str(&format!(
            "$ cargo migrate {}\n{}\n",
            args.join(" "),
            migrate(&pkg, args)
        ));
    }
    insta::assert_snapshot!("phases_cli", text);
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4]);
}

#[test]
fn bad_phase_directives_are_path_line_errors_with_a_hint() {
    let pkg = Package::named("phases-bad");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown phase word",
            "0002_add_full_name.sql",
            "-- migrate:phase expnad\nALTER TABLE users ADD COLUMN full_name TEXT;\n",
        ),
        (
            "contract-of without phase contract",
            "0002_add_full_name.sql",
            "-- migrate:phase expand\n-- migrate:contract-of 0001\nALTER TABLE users ADD COLUMN full_name TEXT;\n",
        ),
        (
            "phase contract without contract-of",
            "0003_drop_name.sql",
            "-- migrate:phase contract\nALTER TABLE users DROP COLUMN name;\n",
        ),
        (
            "a contract of a version that does not exist",
            "0003_drop_name.sql",
            "-- migrate:phase contract\n-- migrate:contract-of 0009\nALTER TABLE users DROP COLUMN name;\n",
        ),
        (
            "a contract of a version that is not an expand",
            "0003_drop_name.sql",
            "-- migrate:phase contract\n-- migrate:contract-of 0001\nALTER TABLE users DROP COLUMN name;\n",
        ),
        (
            "a contract of a later version",
            "0003_drop_name.sql",
            "-- migrate:phase contract\n-- migrate:contract-of 0004\nALTER TABLE users DROP COLUMN name;\n",
        ),
        (
            "a phase in a down file",
            "0002_add_full_name.down.sql",
            "-- migrate:phase expand\nALTER TABLE users DROP COLUMN full_name;\n",
        ),
    ];
    let mut text = String::new();
    for (case, file, sql) in cases {
        let mut files: Vec<(&str, &str)> = FILES.to_vec();
        if file.ends_with(".down.sql") {
            files[1].0 = "0002_add_full_name.up.sql";
            files.push((file, sql));
        } else {
            let at = files.iter().position(|(f, _)| f == file).unwrap();
            files[at].1 = sql;
        }
        if *case == "a contract of a later version" {
            files[3].1 = "-- migrate:phase expand\nCREATE TABLE audit (id INTEGER PRIMARY KEY);\n";
        }
        write_migrations(&pkg, &files);
        text.push_str(&format!("## {case}\n{}\n", migrate(&pkg, &["check"])));
    }
    insta::assert_snapshot!("phases_bad_input", text);
}

/// A real build: the generated module carries the phases, and the app's
/// `apply` (the generated `migrations::apply`) holds the contract.
#[test]
fn the_generated_module_holds_the_contract_at_start_up() {
    let pkg = Package::named("phases-build");
    write_migrations(&pkg, FILES);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let out = std::process::Command::new(pkg.binary())
        .arg(pkg.path().join("app.db"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("applied 2 add_full_name ("), "{stdout}");
    assert!(
        stdout.contains("held 3 drop_name: a contract of 2, not applied (once every running instance has the new code, run `cargo migrate up --contract` (Migrator::contract(true)))"),
        "{stdout}"
    );
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2]);
    drop(conn);
    assert!(migrate(&pkg, &["up", "--contract"]).starts_with("exit 0\n"));
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    assert_eq!(applied_versions(&conn), [1, 2, 3, 4]);
}

/// The lint (SQLite): an expand migration that removes or changes is an
/// MS011 error at its line, which fails `check`; a waiver with a reason
/// silences it; a contract's drop needs no waiver (its contract-of is
/// the reason); `--explain MS011` says what to do instead.
#[test]
fn lint_an_expand_that_does_not_only_add() {
    let pkg = Package::named("phases-lint");
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nlint_from = 1\n"),
    );
    let bad_expand = "-- migrate:phase expand\nALTER TABLE users ADD COLUMN full_name TEXT;\nDELETE FROM users WHERE name = '';\nDROP TABLE IF EXISTS audit_old;\n";
    let mut files = FILES.to_vec();
    files[1].1 = bad_expand;
    write_migrations(&pkg, &files);
    let mut text = String::new();
    text.push_str(&format!("$ cargo migrate lint\n{}\n", migrate(&pkg, &["lint"])));
    text.push_str(&format!("$ cargo migrate check\n{}\n", migrate(&pkg, &["check"])));
    let waived = format!("-- migrate:allow MS011 the old code never reads name since 2.3\n{bad_expand}");
    files[1].1 = &waived;
    write_migrations(&pkg, &files);
    text.push_str(&format!(
        "$ cargo migrate check (waived)\n{}\n",
        migrate(&pkg, &["check"])
    ));
    write_migrations(&pkg, FILES);
    text.push_str(&format!(
        "$ cargo migrate lint (a good expand)\n{}\n",
        migrate(&pkg, &["lint"])
    ));
    text.push_str(&format!(
        "$ cargo migrate lint --explain MS011\n{}",
        migrate(&pkg, &["lint", "--explain", "MS011"])
    ));
    insta::assert_snapshot!("phases_lint", text);
}

/// `cargo migrate up` on PostgreSQL holds the contract, `status` shows it,
/// `up --contract` applies it.
#[test]
fn pg_cli_up_holds_status_shows_up_contract_applies() {
    let Some(db) = pg_database!() else { return };
    let pkg = Package::named("phases-pg-cli");
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n"),
    );
    write_migrations(&pkg, FILES);
    let run = |args: &[&str]| migrate_on(&pkg, &db.url, args);
    let dry = run(&["up", "--dry-run"]);
    assert!(
        dry.contains("note: would hold 0003 drop_name: a contract migration")
            && dry.contains("dry run: would apply 2 migrations; nothing was changed"),
        "{dry}"
    );
    let up = run(&["up"]);
    assert!(up.starts_with("exit 0\n"), "{up}");
    assert!(
        up.contains("note: held 0003 drop_name: a contract migration of 0002 (-- migrate:phase contract), not applied, nor anything after it;"),
        "{up}"
    );
    let status = run(&["status"]);
    assert!(
        status.contains("0003     drop_name      held ") && status.contains("2 applied, 1 pending, 1 held (contract)"),
        "{status}"
    );
    let contract = run(&["up", "--contract"]);
    assert!(
        contract.contains("applied 2 migrations in T; the database is at version 0004 audit"),
        "{contract}"
    );
    let status = run(&["status"]);
    assert!(status.contains("up to date (4 applied, 0 pending)"), "{status}");
}
