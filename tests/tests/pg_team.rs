//! The team workflow of issue 14 on PostgreSQL, against a real server:
//! `cargo migrate squash --to N` (replayed in scratch databases, refused
//! naming what the baseline cannot hold), the squashed set meeting
//! databases at 0, N−1, N and beyond, and `store_down` /
//! `allow_downgrade` (the column added to an existing tracking table, an
//! older build rolling back what it does not know, the rows kept).

use migrate_runtime::model::{Filter, Model};
use migrate_runtime::postgres::Client;
use migrate_runtime::{Error, Migration, Migrator, Script};
use tests::pg_database;

use super::downgrade::{run_release, two_releases, updown};

/// Runs the CLI in `pkg` with `DATABASE_URL` unset and the server of
/// `check` (if any) as `MIGRATE_CHECK_DATABASE_URL`.
fn cli(pkg: &tests::Package, check: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = pkg.migrate();
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATE_CHECK_DATABASE_URL");
    if let Some(url) = check {
        cmd.env("MIGRATE_CHECK_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(pkg: &tests::Package, check: Option<&str>, args: &[&str]) -> String {
    let (code, out, err) = cli(pkg, check, args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    err
}

/// A PostgreSQL package with migrations 1 to 4: an extension and a column
/// of its type, a serial key, an index, an enum type, a function with its trigger, a view, a foreign key, an
/// identity column, then a column added.
fn four() -> tests::Package {
    let pkg = tests::Package::new();
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n"),
    );
    pkg.write(
        "migrations/0001_create_users.up.sql",
        "CREATE EXTENSION IF NOT EXISTS citext;\n\
         CREATE TYPE mood AS ENUM ('ok', 'happy');\n\
         CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, nick citext, mood mood NOT NULL DEFAULT 'ok');\n",
    );
    pkg.write(
        "migrations/0001_create_users.down.sql",
        "DROP TABLE users;\nDROP TYPE mood;\nDROP EXTENSION citext;\n",
    );
    pkg.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD email text;\nCREATE UNIQUE INDEX users_email ON users (lower(email));\n",
    );
    pkg.write(
        "migrations/0003_create_teams.sql",
        "CREATE TABLE teams (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner integer NOT NULL REFERENCES users (id) ON DELETE CASCADE, \
         CONSTRAINT teams_owner_positive CHECK (owner > 0));\n\
         CREATE VIEW team_owners AS SELECT t.id, u.name FROM teams t JOIN users u ON u.id = t.owner;\n\
         CREATE FUNCTION trim_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := btrim(NEW.name); RETURN NEW; END $$;\n\
         CREATE TRIGGER users_trim BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION trim_name();\n",
    );
    pkg.write(
        "migrations/0004_add_phone.up.sql",
        "ALTER TABLE users ADD phone text;\n",
    );
    pkg.write(
        "migrations/0004_add_phone.down.sql",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    pkg
}

fn model(client: &mut Client) -> Model {
    Model::read_postgres(client, None, &Filter::new("_migrations")).unwrap()
}

fn versions(client: &mut Client) -> Vec<i64> {
    client
        .query("SELECT version FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn pg_squash_keeps_every_database_working() {
    let (Some(at2), Some(at3), Some(at4), Some(new), Some(reference)) = (
        pg_database!(),
        pg_database!(),
        pg_database!(),
        pg_database!(),
        pg_database!(),
    ) else {
        return;
    };
    let pkg = four();
    for (db, to) in [(&at2, "2"), (&at3, "3"), (&at4, "4")] {
        ok(&pkg, None, &["up", "--to", to, "--database", &db.url]);
    }
    ok(&pkg, None, &["up", "--database", &reference.url]);
    at3.client()
        .batch_execute("INSERT INTO users (name, email) VALUES ('  ada ', 'ada@example.com');")
        .unwrap();

    // Without a server: refused, nothing changed.
    let (code, _, err) = cli(&pkg, None, &["squash", "--to", "3"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: squashing PostgreSQL migrations replays them on a server, and none was given;"),
        "{err}"
    );
    assert!(pkg.path().join("migrations/0001_create_users.up.sql").exists());

    let err = ok(&pkg, None, &["squash", "--to", "3", "--database", &reference.url]);
    assert!(
        err.starts_with("squashed 3 migrations (4 files) into migrations/0003_baseline.sql: databases at 0003 or later accept it as applied"),
        "{err}"
    );
    let baseline = pkg.read("migrations/0003_baseline.sql");
    assert!(baseline.starts_with("-- migrate:squashes 1-3 "), "{baseline}");
    for part in [
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;",
        "CREATE TYPE mood AS ENUM ('ok', 'happy');",
        "CREATE SEQUENCE users_id_seq AS integer;",
        "CREATE OR REPLACE FUNCTION public.trim_name()",
        "CREATE VIEW team_owners",
        "CREATE TRIGGER users_trim",
    ] {
        assert!(baseline.contains(part), "{part}: {baseline}");
    }
    assert_eq!(
        super::squash::file_names(&pkg.path().join("migrations")),
        ["0003_baseline.sql", "0004_add_phone.down.sql", "0004_add_phone.up.sql"]
    );

    // 0: a new database applies the baseline, then 4: the same schema.
    let err = ok(&pkg, None, &["up", "--database", &new.url]);
    assert!(err.contains("applying 0003 baseline … done"), "{err}");
    assert!(err.contains("applying 0004 add_phone … done"), "{err}");
    assert_eq!(model(&mut new.client()), model(&mut reference.client()));
    // The baseline's trigger and identity work as the originals did.
    let mut client = new.client();
    client
        .batch_execute("INSERT INTO users (name) VALUES (' grace  '); INSERT INTO teams (owner) VALUES (1);")
        .unwrap();
    let name: String = client.query_one("SELECT name FROM users", &[]).unwrap().get(0);
    assert_eq!(name, "grace");
    // N−1: refused, naming what it lacks; nothing changes.
    let before = model(&mut at2.client());
    let (code, _, err) = cli(&pkg, None, &["up", "--database", &at2.url]);
    assert_eq!(code, 1);
    assert!(
        err.contains("migration 3 `baseline` replaces versions 1 to 3 (a squash), and the database applied only some of them: it lacks version 3;"),
        "{err}"
    );
    assert_eq!(model(&mut at2.client()), before);
    assert_eq!(versions(&mut at2.client()), [1, 2]);
    // N: accepted as applied; 4 on top; the rows stay.
    let err = ok(&pkg, None, &["up", "--database", &at3.url]);
    assert!(
        err.contains("applying 0004 add_phone … done") && !err.contains("applying 0003"),
        "{err}"
    );
    assert_eq!(model(&mut at3.client()), model(&mut reference.client()));
    let name: String = at3.client().query_one("SELECT name FROM users", &[]).unwrap().get(0);
    assert_eq!(name, "ada");
    // Beyond: nothing to do, and the status says the baseline is applied.
    let err = ok(&pkg, None, &["up", "--database", &at4.url]);
    assert!(err.contains("nothing to do"), "{err}");
    let (code, out, err) = cli(&pkg, None, &["status", "--database", &at4.url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0003     baseline   applied"), "{out}");

    // Squashed again, to 4: the database made from the originals (at4) and
    // the one made from the first baseline (new) both accept it.
    pkg.write(
        "migrations/0005_create_tags.sql",
        "CREATE TABLE tags (id int PRIMARY KEY);\n",
    );
    let check = at4.server().url_for("postgres");
    let err = ok(&pkg, Some(&check), &["squash", "--to", "4"]);
    assert!(
        err.starts_with("squashed 2 migrations (3 files) into migrations/0004_baseline.sql"),
        "{err}"
    );
    let baseline = pkg.read("migrations/0004_baseline.sql");
    assert!(
        baseline
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("-- migrate:earlier-squash 1-3 "),
        "{baseline}"
    );
    for db in [&at4, &new] {
        let err = ok(&pkg, None, &["up", "--database", &db.url]);
        assert!(
            err.contains("applying 0005 create_tags … done") && !err.contains("baseline"),
            "{err}"
        );
    }
    assert_eq!(model(&mut at4.client()), model(&mut new.client()));
    let (code, _, err) = cli(&pkg, None, &["up", "--database", &at2.url]);
    assert_eq!(code, 1);
    assert!(err.contains("it lacks versions 3 to 4;"), "{err}");
}

#[test]
fn pg_squash_refuses_what_the_baseline_cannot_hold_naming_it() {
    let Some(db) = pg_database!() else { return };
    let check = db.server().url_for("postgres");
    // Comments, row-level security and policies are in the schema model:
    // the baseline writes them (and its replay's inventory matches).
    for (extra, written) in [
        (
            "COMMENT ON TABLE users IS 'the people';\n",
            "\nCOMMENT ON TABLE users IS 'the people';\n",
        ),
        (
            "ALTER TABLE users ENABLE ROW LEVEL SECURITY;\nCREATE POLICY own ON users USING (name = current_user);\n",
            "\nCREATE POLICY own ON users AS PERMISSIVE FOR ALL TO PUBLIC USING (name = CURRENT_USER);\n\n\
             ALTER TABLE users ENABLE ROW LEVEL SECURITY;\n",
        ),
    ] {
        let pkg = four();
        pkg.write(
            "migrations/0002_add_email.sql",
            pkg.read("migrations/0002_add_email.sql") + extra,
        );
        let (code, _, err) = cli(&pkg, Some(&check), &["squash", "--to", "3"]);
        assert_eq!(code, 0, "{err}");
        let baseline = pkg.read("migrations/0003_baseline.sql");
        assert!(baseline.contains(written), "{baseline}");
    }
    for (extra, expected) in [
        (
            "CREATE AGGREGATE longest (text) (SFUNC = greatest_text, STYPE = text);\n",
            "function longest(text)",
        ),
        (
            "CREATE SCHEMA audit;\nCREATE TABLE audit.log (id int);\n",
            "schema audit",
        ),
    ] {
        let pkg = four();
        let sql = if extra.contains("AGGREGATE") {
            format!(
                "CREATE FUNCTION greatest_text(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN length(b) > length(coalesce(a, '''')) THEN b ELSE a END';\n{extra}"
            )
        } else {
            extra.to_owned()
        };
        pkg.write(
            "migrations/0002_add_email.sql",
            pkg.read("migrations/0002_add_email.sql") + &sql,
        );
        let (code, out, err) = cli(&pkg, Some(&check), &["squash", "--to", "3"]);
        assert_eq!((code, out.as_str()), (1, ""), "{err}");
        assert!(
            err.starts_with(
                "error: migrations 1 to 3 make what migrations/0003_baseline.sql cannot hold on PostgreSQL: "
            ),
            "{err}"
        );
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(err.contains("so nothing was changed"), "{err}");
        assert!(!pkg.path().join("migrations/0003_baseline.sql").exists());
        assert!(pkg.path().join("migrations/0001_create_users.up.sql").exists());
    }
}

fn release() -> Vec<Migration> {
    vec![
        updown(
            1,
            "create_users",
            "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);",
            "DROP TABLE users;",
        ),
        updown(
            2,
            "add_phone",
            "ALTER TABLE users ADD phone text;\nCREATE INDEX users_phone ON users (phone);",
            "DROP INDEX users_phone;\nALTER TABLE users DROP COLUMN phone;",
        ),
        updown(
            3,
            "create_notes",
            "CREATE TABLE notes (id serial PRIMARY KEY, author integer REFERENCES users (id), body text);",
            "-- migrate:no-transaction\nDROP TABLE notes;",
        ),
    ]
}

fn tracking_columns(client: &mut Client) -> Vec<String> {
    client
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = '_migrations' ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn users(client: &mut Client) -> Vec<(i32, String)> {
    client
        .query("SELECT id, name FROM users ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn pg_store_down_adds_its_column_and_an_older_build_downgrades_keeping_the_rows() {
    let Some(db) = pg_database!() else { return };
    let all = release();
    let mut client = db.client();
    // The tracking table as a release without store_down makes it.
    Migrator::new(&all[..1]).apply_postgres(&mut client).unwrap();
    let before = tracking_columns(&mut client);
    assert!(!before.contains(&"down_sql".to_owned()), "{before:?}");
    Migrator::new(&all)
        .store_down(true)
        .apply_postgres(&mut client)
        .unwrap();
    let after = tracking_columns(&mut client);
    assert_eq!(after[..before.len()], before[..]);
    assert!(after.contains(&"down_sql".to_owned()), "{after:?}");
    let rows: Vec<(i64, Option<String>)> = client
        .query("SELECT version, down_sql FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows[0], (1, None), "applied before: no stored down");
    assert_eq!(rows[1].1.as_deref(), all[1].down().map(Script::sql));
    assert_eq!(
        rows[2].1.as_deref(),
        Some("-- migrate:no-transaction\nDROP TABLE notes;")
    );

    client
        .batch_execute(
            "INSERT INTO users (name, phone) VALUES ('ada', '1'), ('grace', '2');\n\
             INSERT INTO notes (author, body) VALUES (2, 'compilers');",
        )
        .unwrap();
    let kept = users(&mut client);
    let older = &all[..1];
    // Without allow_downgrade: refused, as before.
    let e = Migrator::new(older).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(e, Error::UnknownApplied { .. }), "{e}");
    let report = Migrator::new(older)
        .allow_downgrade(true)
        .apply_postgres(&mut client)
        .unwrap();
    let rolled: Vec<u64> = report.rolled_back().map(|s| s.version).collect();
    assert_eq!(rolled, [3, 2]);
    assert_eq!(versions(&mut client), [1]);
    assert_eq!(users(&mut client), kept);
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["_migrations", "_migrations_head", "users"]);
    let phone: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(phone, 0);
    // The connection is usable, and the newer build applies them again.
    Migrator::new(&all)
        .store_down(true)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(versions(&mut client), [1, 2, 3]);
    assert_eq!(users(&mut client), kept);
}

#[test]
fn pg_a_migration_applied_without_a_stored_down_is_refused_before_anything_runs() {
    let Some(db) = pg_database!() else { return };
    let all = release();
    let mut client = db.client();
    Migrator::new(&all[..2])
        .store_down(true)
        .apply_postgres(&mut client)
        .unwrap();
    Migrator::new(&all).apply_postgres(&mut client).unwrap();
    let e = Migrator::new(&all[..1])
        .allow_downgrade(true)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "migration 3 `create_notes` is applied but not in this program (its newest is 1), and the database has no stored down script for it (it was applied without store_down = true), so it cannot be rolled back here; nothing was rolled back. Roll it back with the build that has it (`cargo migrate down --to 1` at that commit)"
    );
    assert_eq!(versions(&mut client), [1, 2, 3]);
    // A table without the column at all: the same refusal.
    let other = pg_database!().unwrap();
    let mut client = other.client();
    Migrator::new(&all).apply_postgres(&mut client).unwrap();
    let e = Migrator::new(&all[..2])
        .allow_downgrade(true)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(matches!(e, Error::NoStoredDown { version: 3, .. }), "{e}");
    assert_eq!(versions(&mut client), [1, 2, 3]);
}

#[test]
fn pg_cargo_migrate_up_stores_downs_with_the_config_key() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::new();
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\nstore_down = true\n"),
    );
    pkg.write("migrations/0001_a.up.sql", "CREATE TABLE a (x int);\n");
    pkg.write("migrations/0001_a.down.sql", "DROP TABLE a;\n");
    pkg.write("migrations/0002_b.sql", "CREATE TABLE b (x int);\n");
    ok(&pkg, None, &["check"]);
    ok(&pkg, None, &["up", "--database", &db.url]);
    let rows: Vec<(i64, Option<String>)> = db
        .client()
        .query("SELECT version, down_sql FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, Some("DROP TABLE a;\n".to_owned())), (2, None)]);
}

/// The app of the PostgreSQL downgrade testbox: applies its migrations to
/// the database at the URL of its first argument; `ALLOW_DOWNGRADE=1`
/// turns the downgrade on.
const PG_MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    let url = std::env::args().nth(1).expect("a database URL");
    let mut client = migrate_runtime::postgres::Client::connect(&url, migrate_runtime::postgres::NoTls).expect("connect");
    let migrator = migrations::migrator().allow_downgrade(std::env::var_os("ALLOW_DOWNGRADE").is_some());
    match migrator.apply_postgres(&mut client) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
"#;

/// Issue 14's downgrade on PostgreSQL: the app built from a newer checkout
/// (store_down = true) migrates the database; the app built from the older
/// checkout of the same package rolls back what it does not know with the
/// stored down, keeping the rows.
#[test]
fn pg_an_older_release_of_the_app_downgrades_a_database_its_newer_release_migrated() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::named("pg-downgrade");
    let manifest = pkg.read("Cargo.toml").replacen(
        "migrate-runtime = { path = ",
        "migrate-runtime = { features = [\"postgres\"], path = ",
        1,
    );
    assert!(manifest.contains("features = [\"postgres\"]"), "{manifest}");
    pkg.write(
        "Cargo.toml",
        manifest + "\n[package.metadata.migrate]\nbackend = \"postgres\"\nstore_down = true\n",
    );
    pkg.write("src/main.rs", PG_MAIN_RS);
    let keep = tests::scratch();
    let (newer, older) = two_releases(&pkg, &release(), keep.path());
    let url = std::ffi::OsString::from(&db.url);
    let run = |binary: &std::path::Path, allow: bool| run_release(binary, &url, allow);
    let (ok, out) = run(&newer, false);
    assert!(ok, "{out}");
    let mut client = db.client();
    client
        .batch_execute(
            "INSERT INTO users (name, phone) VALUES ('ada', '1'), ('grace', '2');\n\
             INSERT INTO notes (author, body) VALUES (2, 'compilers');",
        )
        .unwrap();
    let before = users(&mut client);

    // The older release, as today: refused, nothing changed.
    let (ok, out) = run(&older, false);
    assert!(!ok);
    assert!(
        out.contains("the database has applied a migration this program does not know: 3 `create_notes`"),
        "{out}"
    );
    assert_eq!(versions(&mut client), [1, 2, 3]);
    // With allow_downgrade: migration 3 rolled back by its stored down.
    let (ok, out) = run(&older, true);
    assert!(ok, "{out}");
    assert!(out.contains("rolled back 3 create_notes"), "{out}");
    assert_eq!(versions(&mut client), [1, 2]);
    assert_eq!(users(&mut client), before);
    let notes: Option<String> = client
        .query_one("SELECT to_regclass('notes')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(notes, None);
    // The newer release again: 3 is applied again.
    let (ok, out) = run(&newer, false);
    assert!(ok && out.contains("applied 3 create_notes"), "{out}");
}
