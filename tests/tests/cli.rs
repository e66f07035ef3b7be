//! `cargo migrate`: the real binary in throw-away packages, every command
//! and flag, the happy paths and the errors (help and error texts
//! snapshotted), and both directions of compatibility with an app that
//! applies the generated module.

use std::path::Path;
use std::process::Output;

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Migrator, Script};
use tests::Package;

const USERS_UP: &str = "CREATE TABLE users (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    username TEXT NOT NULL UNIQUE,\n    email TEXT NOT NULL UNIQUE,\n    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP\n);\n";
const USERS_DOWN: &str = "DROP TABLE users;\n";

/// The exit status of `status --exit-code` on a database that is not up to date.
const NOT_UP_TO_DATE: i32 = 3;

/// A package with `migrations/0001_create_users` and, for each further
/// name, a reversible migration creating a table of that name.
fn package(tables: &[&str]) -> Package {
    let pkg = Package::new();
    pkg.write("migrations/0001_create_users.up.sql", USERS_UP);
    pkg.write("migrations/0001_create_users.down.sql", USERS_DOWN);
    for (i, table) in tables.iter().enumerate() {
        let v = i + 2;
        pkg.write(
            &format!("migrations/{v:04}_create_{table}.up.sql"),
            format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY);\n"),
        );
        pkg.write(
            &format!("migrations/{v:04}_create_{table}.down.sql"),
            format!("DROP TABLE {table};\n"),
        );
    }
    pkg
}

/// Runs `cargo-migrate migrate ARGS` in the package.
fn migrate(pkg: &Package, args: &[&str]) -> Output {
    pkg.migrate().args(args).output().expect("run cargo-migrate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and checks the exit code, returning (stdout, stderr).
#[track_caller]
fn expect(pkg: &Package, args: &[&str], code: i32) -> (String, String) {
    let out = migrate(pkg, args);
    let (o, e) = (stdout(&out), stderr(&out));
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

/// The error of a failing command: its stderr, which must end in one `error:` line.
#[track_caller]
fn fail(pkg: &Package, args: &[&str]) -> String {
    let (_, e) = expect(pkg, args, 1);
    assert!(
        e.lines().last().is_some_and(|l| l.starts_with("error: ")),
        "the last line is the error:\n{e}"
    );
    e
}

fn tables(db: &Path) -> Vec<String> {
    tests::user_tables(&Connection::open(db).unwrap())
}

fn applied(db: &Path) -> Vec<i64> {
    tests::applied_versions(&Connection::open(db).unwrap())
}

fn files(pkg: &Package) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pkg.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- help and usage

#[test]
fn help_texts() {
    let pkg = Package::bare();
    let (main, _) = ok(&pkg, &["--help"]);
    insta::assert_snapshot!("help", main);
    for command in [
        "init", "new", "list", "status", "up", "down", "redo", "check", "renumber", "diff", "schema", "import",
        "baseline", "lint",
    ] {
        let (text, _) = ok(&pkg, &[command, "--help"]);
        insta::assert_snapshot!(format!("help_{command}"), text);
    }
}

#[test]
fn usage_errors_exit_2() {
    let pkg = Package::new();
    let (_, e) = expect(&pkg, &["down", "--to", "0", "--steps", "1"], 2);
    assert!(e.contains("cannot be used with"), "{e}");
    expect(&pkg, &["frobnicate"], 2);
    expect(&pkg, &["down", "--steps", "0"], 2);
    expect(&pkg, &["status", "--format", "xml"], 2);
    expect(&pkg, &["new"], 2);
    expect(&pkg, &["diff", "--allow-drop"], 2);
    expect(&pkg, &["diff", "--sql", "--emit", "x"], 2);
    expect(&pkg, &["schema", "--format", "png"], 2);
    let (o, _) = ok(&pkg, &["--version"]);
    assert!(o.contains(env!("CARGO_PKG_VERSION")), "{o}");
}

#[test]
fn runs_directly_without_the_cargo_argument() {
    let pkg = package(&[]);
    let out = assert_cmd::Command::new(tests::bin("cargo-migrate"))
        .args(["list"])
        .current_dir(pkg.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("create_users"), "{}", stdout(&out));
}

// ---------------------------------------------------------------- the README session

/// A new user's session, as the README tells it: init, new, write the
/// table, up, up again, status, down; and the package builds and runs.
#[test]
fn new_user_session() {
    let pkg = Package::bare();
    // A manifest without our dependencies, as a new user has.
    pkg.write(
        "Cargo.toml",
        "[package]\nname = \"testbox\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n",
    );

    let (snippet, said) = ok(&pkg, &["init"]);
    assert!(said.contains("created migrations/"), "{said}");
    assert!(
        said.contains("created migrations/schema.sql: the schema the migrations make"),
        "{said}"
    );
    assert!(said.contains("created build.rs"), "{said}");
    assert!(said.contains("added migrate-runtime to [dependencies]"), "{said}");
    assert!(said.contains("added migrate-build to [build-dependencies]"), "{said}");
    assert!(
        snippet.contains("include!(concat!(env!(\"OUT_DIR\"), \"/migrations.rs\"));"),
        "{snippet}"
    );
    assert!(snippet.contains("migrations::apply(&mut conn)?;"), "{snippet}");
    assert!(pkg.path().join("migrations").is_dir());
    let manifest = pkg.read("Cargo.toml");
    assert!(manifest.contains("database = \"sqlite:app.db\""), "{manifest}");
    // The build script's SQLite is compiled optimized (issue 8, rough edges).
    assert!(
        manifest.contains("\n[profile.dev.package.libsqlite3-sys]\nopt-level = 2\n"),
        "{manifest}"
    );
    assert!(
        said.contains("Cargo.toml: added [profile.dev.package.libsqlite3-sys] opt-level = 2"),
        "{said}"
    );

    // The app as init tells the user to write it.
    let main = snippet
        .lines()
        .skip_while(|l| !l.starts_with("mod migrations"))
        .collect::<Vec<_>>()
        .join("\n");
    pkg.write("src/main.rs", format!("{main}\n"));
    let (built, err) = pkg.build();
    assert!(built, "the package builds after init:\n{err}");

    let (created, said) = ok(&pkg, &["new", "create users table"]);
    assert_eq!(
        created,
        "migrations/0001_create_users_table.up.sql\nmigrations/0001_create_users_table.down.sql\n"
    );
    assert!(said.contains("created migration 0001 create_users_table"), "{said}");
    pkg.write("migrations/0001_create_users_table.up.sql", USERS_UP);
    pkg.write("migrations/0001_create_users_table.down.sql", USERS_DOWN);

    let db = pkg.path().join("app.db");
    let (_, said) = ok(&pkg, &["up"]);
    assert!(said.contains("created the database file app.db"), "{said}");
    assert!(said.contains("applying 0001 create_users_table … done in"), "{said}");
    assert!(
        said.contains("applied 1 migration in") && said.contains("the database is at version 0001 create_users_table"),
        "{said}"
    );
    assert_eq!(tables(&db), ["_migrations", "users"]);

    let (_, said) = ok(&pkg, &["up"]);
    assert!(
        said.contains("nothing to do: the database is at version 0001 create_users_table, up to date"),
        "{said}"
    );

    let (status, said) = ok(&pkg, &["status"]);
    assert!(
        status.starts_with("VERSION  NAME                STATE    APPLIED AT"),
        "{status}"
    );
    assert!(status.contains("0001     create_users_table  applied  20"), "{status}");
    assert!(said.contains("app.db: up to date (1 applied, 0 pending)"), "{said}");

    let (_, said) = ok(&pkg, &["down"]);
    assert!(
        said.contains("rolling back 0001 create_users_table … done in"),
        "{said}"
    );
    assert!(said.contains("rolled back 1 migration in"), "{said}");
    assert!(said.contains("no migration is applied"), "{said}");
    assert_eq!(tables(&db), ["_migrations"]);

    // init turned the schema snapshot on: the build checks it, and
    // `schema --write` brings it up to date with the new migration.
    let (built, err) = pkg.build();
    assert!(!built && err.contains("schema snapshot is stale"), "{err}");
    let (_, said) = ok(&pkg, &["schema", "--write"]);
    assert!(said.contains("wrote migrations/schema.sql"), "{said}");
    assert!(pkg.read("migrations/schema.sql").starts_with("CREATE TABLE users ("));

    // The app applies the same migration to its own database.
    let run = pkg.run(&[]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(tables(&db), ["_migrations", "users"]);
}

// ---------------------------------------------------------------- init

#[test]
fn init_keeps_the_manifest_formatting_and_is_harmless_twice() {
    let pkg = Package::bare();
    let manifest = "# my app\n[package]\nname = \"testbox\"   # the name\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n\n[dependencies]\nanyhow = \"1\"  # errors\n";
    pkg.write("Cargo.toml", manifest);
    ok(&pkg, &["init"]);
    let after = pkg.read("Cargo.toml");
    // Every line is kept, comments and spacing included, in its order.
    let mut kept = after.lines();
    for line in manifest.lines() {
        assert!(kept.any(|l| l == line), "lost {line:?}:\n{after}");
    }
    let runtime = tests::workspace_dir().join("migrate-runtime");
    assert!(
        after.contains(&format!("migrate-runtime = {{ path = \"{}\" }}", runtime.display())),
        "{after}"
    );
    assert!(
        after.contains("[build-dependencies]\nmigrate-build = { path = "),
        "{after}"
    );
    assert!(
        after.contains("[package.metadata.migrate]\ndir = \"migrations\"\ndatabase = \"sqlite:app.db\"\n"),
        "{after}"
    );
    let build_rs = pkg.read("build.rs");
    assert!(build_rs.contains("migrate_build::build()?"), "{build_rs}");

    let (_, said) = ok(&pkg, &["init"]);
    assert_eq!(pkg.read("Cargo.toml"), after, "a second init changes nothing");
    assert_eq!(pkg.read("build.rs"), build_rs);
    assert!(said.contains("migrations exists"), "{said}");
    assert!(said.contains("build.rs already calls migrate_build"), "{said}");
    assert!(said.contains("migrate-runtime is already in [dependencies]"), "{said}");
    assert!(said.contains("[package.metadata.migrate] exists"), "{said}");
    assert!(said.contains("[profile.dev.package.libsqlite3-sys] exists"), "{said}");
}

#[test]
fn init_leaves_an_existing_build_script_alone() {
    let pkg = Package::bare();
    let build_rs = "fn main() {\n    println!(\"cargo::rerun-if-changed=build.rs\");\n}\n";
    pkg.write("build.rs", build_rs);
    let (o, e) = ok(&pkg, &["init", "--database", "sqlite:data.db"]);
    assert_eq!(pkg.read("build.rs"), build_rs);
    assert!(e.contains("build.rs exists, so it was left as it is"), "{e}");
    assert!(
        o.contains("migrate_build::build().expect(\"invalid migrations\");"),
        "{o}"
    );
    assert!(o.contains("Connection::open(\"data.db\")"), "{o}");
    // Package::bare has both dependencies already: not added twice.
    let manifest = pkg.read("Cargo.toml");
    let entries = |krate: &str| manifest.lines().filter(|l| l.starts_with(krate)).count();
    assert_eq!(entries("migrate-runtime"), 1, "{manifest}");
    assert_eq!(entries("migrate-build"), 1, "{manifest}");
    assert!(manifest.contains("database = \"sqlite:data.db\""), "{manifest}");
}

#[test]
fn init_path_points_the_dependencies_elsewhere() {
    let pkg = Package::bare();
    pkg.write(
        "Cargo.toml",
        "[package]\nname = \"testbox\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    let e = fail(&pkg, &["init", "--path", "/nonexistent/checkout"]);
    assert!(
        e.contains("--path /nonexistent/checkout has no migrate-runtime/Cargo.toml"),
        "{e}"
    );
    assert!(!pkg.path().join("build.rs").exists(), "nothing was done");
    let ws = tests::workspace_dir();
    ok(&pkg, &["init", "--path", ws.to_str().unwrap()]);
    assert!(pkg.read("Cargo.toml").contains("migrate-build = { path = "));
    // A PostgreSQL URL with a password is not written into Cargo.toml.
    let e = fail(&pkg, &["init", "--database", "postgres://alice:s3cret@x/y"]);
    assert!(e.contains("has a password") && !e.contains("s3cret"), "{e}");
    // A new package with a PostgreSQL database: the runtime's `postgres`
    // feature, and the PostgreSQL start-up code.
    let pg = Package::bare();
    pg.write(
        "Cargo.toml",
        "[package]\nname = \"testbox\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    let (o, _) = ok(
        &pg,
        &["init", "--path", ws.to_str().unwrap(), "--database", "postgres://x/y"],
    );
    assert!(
        o.contains("migrations::migrator().apply_postgres(&mut client)?;"),
        "{o}"
    );
    let manifest = pg.read("Cargo.toml");
    assert!(manifest.contains("features = [\"postgres\"]"), "{manifest}");
    assert!(manifest.contains("database = \"postgres://x/y\""), "{manifest}");
    // The lint runs on PostgreSQL too (no server needed): from the first.
    assert!(manifest.contains("\nlint_from = 1\n"), "{manifest}");
}

#[test]
fn init_in_a_workspace_uses_its_workspace_dependencies() {
    let ws = tests::scratch();
    let runtime = tests::workspace_dir().join("migrate-runtime");
    let build = tests::workspace_dir().join("migrate-build");
    std::fs::write(
        ws.path().join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [\"app\"]\nresolver = \"3\"\n\n[workspace.dependencies]\nmigrate-runtime = {{ path = {:?} }}\nmigrate-build = {{ path = {:?} }}\n",
            runtime.display().to_string(),
            build.display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.path().join("app/src")).unwrap();
    std::fs::write(
        ws.path().join("app/Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(ws.path().join("app/src/main.rs"), "fn main() {}\n").unwrap();
    let out = assert_cmd::Command::new(tests::bin("cargo-migrate"))
        .args(["migrate", "init", "-p", "app"])
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(ws.path().join("app/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[dependencies]\nmigrate-runtime = { workspace = true }\n"),
        "{manifest}"
    );
    assert!(
        manifest.contains("[build-dependencies]\nmigrate-build = { workspace = true }\n"),
        "{manifest}"
    );
    assert!(ws.path().join("app/migrations").is_dir());
    assert!(ws.path().join("app/build.rs").is_file());
    // Cargo reads profiles from the workspace's root manifest only.
    assert!(!manifest.contains("[profile"), "{manifest}");
    let root = std::fs::read_to_string(ws.path().join("Cargo.toml")).unwrap();
    assert!(
        root.ends_with("\n[profile.dev.package.libsqlite3-sys]\nopt-level = 2\n"),
        "{root}"
    );
    assert!(
        stderr(&out).contains("Cargo.toml: added [profile.dev.package.libsqlite3-sys] opt-level = 2"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------- new

#[test]
fn new_numbers_after_the_highest_version() {
    let pkg = Package::new();
    let (o, _) = ok(&pkg, &["new", "Create Users Table"]);
    assert_eq!(
        o,
        "migrations/0001_create_users_table.up.sql\nmigrations/0001_create_users_table.down.sql\n"
    );
    let up = pkg.read("migrations/0001_create_users_table.up.sql");
    assert!(up.starts_with("-- Migration 0001 create_users_table"), "{up}");
    for v in 2..=9 {
        pkg.write(&format!("migrations/{v:04}_m{v}.sql"), "SELECT 1;\n");
    }
    let (o, _) = ok(&pkg, &["new", "addEmail", "--no-down"]);
    assert_eq!(o, "migrations/0010_add_email.sql\n");
    let (o, e) = ok(&pkg, &["new", "add email"]);
    assert_eq!(
        o,
        "migrations/0011_add_email.up.sql\nmigrations/0011_add_email.down.sql\n"
    );
    assert!(e.contains("warning: migration 0010 is also called `add_email`"), "{e}");
    // Untouched templates are errors for the build: their SQL is not written.
    let e = fail(&pkg, &["check"]);
    assert!(
        e.contains(
            "error: migrations/0011_add_email.up.sql:1: the up migration is still the template of `cargo migrate new`"
        ),
        "{e}"
    );
    // Edited to other comments only, a file is a warning (an intended no-op?).
    pkg.write("migrations/0010_add_email.sql", "-- nothing to do here\n");
    pkg.write("migrations/0011_add_email.up.sql", "SELECT 1;\n");
    pkg.write("migrations/0011_add_email.down.sql", "SELECT 1;\n");
    pkg.write(
        "migrations/0001_create_users_table.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    );
    pkg.write("migrations/0001_create_users_table.down.sql", "DROP TABLE users;\n");
    let (_, e) = ok(&pkg, &["check"]);
    assert!(
        e.contains("warning: migrations/0010_add_email.sql:1: the up migration has only comments"),
        "{e}"
    );
}

#[test]
fn new_uses_the_configured_width_and_dir() {
    let pkg = Package::new();
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndir = \"db/migrations\"\nwidth = 6\n";
    pkg.write("Cargo.toml", manifest);
    std::fs::create_dir_all(pkg.path().join("db/migrations")).unwrap();
    let (o, _) = ok(&pkg, &["new", "x"]);
    assert_eq!(o, "db/migrations/000001_x.up.sql\ndb/migrations/000001_x.down.sql\n");
}

#[test]
fn new_refuses_names_that_are_not_names() {
    let pkg = Package::new();
    let mut errors = Vec::new();
    for name in ["../../evil", "/etc/passwd", "   ", "!!!", "..", "héllo wörld"] {
        let e = fail(&pkg, &["new", name]);
        errors.push(format!("{name:?}: {}", e.trim_end()));
    }
    assert!(files(&pkg).is_empty(), "nothing written: {:?}", files(&pkg));
    assert!(!pkg.path().join("../evil.up.sql").exists());
    insta::assert_snapshot!("new_bad_names", errors.join("\n"));
}

#[test]
fn new_after_a_merge_still_numbers_but_warns() {
    let pkg = package(&["a"]);
    pkg.write("migrations/0002_create_b.up.sql", "CREATE TABLE b (x);\n");
    let (o, e) = ok(&pkg, &["new", "next"]);
    assert!(o.starts_with("migrations/0003_next.up.sql"), "{o}");
    assert!(
        e.contains("warning: the migrations have 1 problem (see `cargo migrate check`)"),
        "{e}"
    );
}

#[test]
fn new_never_touches_existing_files() {
    let pkg = Package::new();
    // A stray down file (an error for the build) still counts for the numbering.
    pkg.write("migrations/0001_x.down.sql", "-- mine\n");
    let (o, e) = ok(&pkg, &["new", "x"]);
    assert_eq!(o, "migrations/0002_x.up.sql\nmigrations/0002_x.down.sql\n");
    assert!(e.contains("warning: the migrations have 1 problem"), "{e}");
    assert_eq!(pkg.read("migrations/0001_x.down.sql"), "-- mine\n");
}

#[test]
fn missing_migrations_directory() {
    let pkg = Package::bare();
    let e = fail(&pkg, &["new", "x"]);
    assert!(
        e.contains("the migrations directory migrations does not exist; create it with `cargo migrate init`"),
        "{e}"
    );
    let e = fail(&pkg, &["list"]);
    assert!(
        e.contains("error: migrations: cannot read the migrations directory"),
        "{e}"
    );
    assert!(e.contains("cargo migrate init"), "{e}");
    assert!(e.ends_with("error: 1 problem in the migrations\n"), "{e}");
    let e = fail(&pkg, &["up", "--database", "sqlite:app.db"]);
    assert!(e.contains("cannot read the migrations directory"), "{e}");
    assert!(!pkg.path().join("app.db").exists(), "no database made for nothing");
    fail(&pkg, &["check"]);
    fail(&pkg, &["renumber"]);
}

// ---------------------------------------------------------------- list

#[test]
fn list_text_and_json() {
    let pkg = package(&["teams"]);
    pkg.write("migrations/0003_vacuum.sql", "-- migrate:no-transaction\nVACUUM;\n");
    let (o, e) = ok(&pkg, &["list"]);
    insta::assert_snapshot!("list", o);
    assert_eq!(e, "3 migrations in migrations\n");
    let (o, _) = ok(&pkg, &["list", "--format", "json"]);
    assert_eq!(o.lines().count(), 1, "one line: {o}");
    insta::assert_snapshot!("list_json", pretty(&o));

    let empty = Package::new();
    let (o, e) = ok(&empty, &["list"]);
    assert_eq!(o, "");
    assert!(e.contains("no migrations in migrations yet"), "{e}");
    let (o, _) = ok(&empty, &["list", "--format", "json"]);
    assert_eq!(o, "{\"dir\":\"migrations\",\"migrations\":[]}\n");
}

// ---------------------------------------------------------------- status

#[test]
fn status_shows_applied_pending_modified_and_unknown() {
    let pkg = package(&["teams", "tags"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--to", "2", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2]);
    let (o, e) = ok(&pkg, &["status", "--database", "app.db"]);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 4, "{o}");
    assert!(lines[1].starts_with("0001     create_users  applied  20"), "{o}");
    assert!(lines[3].starts_with("0003     create_tags   pending"), "{o}");
    assert_eq!(e, "app.db: 2 applied, 1 pending\n");

    // Not up to date is a result, not a failure: its own exit status, no `error:` line.
    let (_, e) = expect(&pkg, &["status", "--database", "app.db", "--exit-code"], NOT_UP_TO_DATE);
    assert_eq!(
        e,
        "app.db: 2 applied, 1 pending\nnot up to date (exit status 3); apply them with `cargo migrate up`\n"
    );

    let (o, _) = ok(&pkg, &["status", "--database", "app.db", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(json["up_to_date"], false);
    assert_eq!((json["applied"].as_u64(), json["pending"].as_u64()), (Some(2), Some(1)));
    assert_eq!(json["migrations"][0]["state"], "applied");
    assert_eq!(json["migrations"][2]["state"], "pending");
    assert_eq!(json["migrations"][2]["file"], "migrations/0003_create_tags.up.sql");

    // Modified: an applied file edited. Unknown: an applied file deleted.
    pkg.write("migrations/0001_create_users.up.sql", format!("{USERS_UP}-- edited\n"));
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.up.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.down.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0002_create_teams.up.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0002_create_teams.down.sql")).unwrap();
    let (o, e) = ok(&pkg, &["status", "--database", "app.db"]);
    assert!(o.contains("0001     create_users  modified  20"), "{o}");
    assert!(o.contains("the file changed since it was applied"), "{o}");
    assert!(o.contains("0002     create_teams  unknown   20"), "{o}");
    assert!(o.contains("applied, but not on disk"), "{o}");
    assert_eq!(e, "app.db: 0 applied, 0 pending, 1 modified, 1 unknown\n");
    let (_, e) = expect(&pkg, &["status", "--database", "app.db", "--exit-code"], NOT_UP_TO_DATE);
    assert!(e.contains("not up to date (exit status 3); see the NOTE column"), "{e}");
    assert!(!e.contains("error:"), "{e}");
}

/// `--format json` output, pretty and with the times of day replaced, for a snapshot.
fn pretty(json: &str) -> String {
    fn redact(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k == "applied_at" && v.is_string() {
                        *v = "[time]".into();
                    } else {
                        redact(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    redact(&mut v);
    serde_json::to_string_pretty(&v).unwrap()
}

/// The JSON of every state, and of a modified migration's reasons with both checksums.
#[test]
fn status_json_shape() {
    let pkg = package(&["teams", "tags", "labels", "notes", "extra"]);
    ok(&pkg, &["up", "--database", "app.db"]);
    // 0002 changed, 0003 renamed, 0004 renamed and changed, 0005 pending
    // (rolled back by hand), 0006 deleted (unknown).
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY, x);\n",
    );
    let mv = |from: &str, to: &str| {
        for kind in ["up", "down"] {
            std::fs::rename(
                pkg.path().join(format!("migrations/{from}.{kind}.sql")),
                pkg.path().join(format!("migrations/{to}.{kind}.sql")),
            )
            .unwrap();
        }
    };
    mv("0003_create_tags", "0003_make_tags");
    mv("0004_create_labels", "0004_make_labels");
    pkg.write(
        "migrations/0004_make_labels.up.sql",
        "CREATE TABLE labels (id INTEGER PRIMARY KEY, y);\n",
    );
    Connection::open(pkg.path().join("app.db"))
        .unwrap()
        .execute_batch("DROP TABLE notes; DELETE FROM _migrations WHERE version = 5;")
        .unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0006_create_extra.up.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0006_create_extra.down.sql")).unwrap();
    let (o, _) = ok(&pkg, &["status", "--database", "app.db", "--format", "json"]);
    assert_eq!(o.lines().count(), 1, "one line: {o}");
    insta::assert_snapshot!("status_json", pretty(&o));
    let (o, _) = ok(&pkg, &["status", "--database", "app.db"]);
    assert!(o.contains("0003     make_tags     modified  20"), "{o}");
    assert!(
        o.contains("applied as `create_tags`: the migration was renamed\n"),
        "{o}"
    );
    assert!(
        o.contains("applied as `create_labels`: the migration was renamed, and its file changed\n"),
        "{o}"
    );
}

/// With `--format json` a failure is a JSON document on stdout too (and the
/// `error:` line on stderr), the problems of the migrations included.
#[test]
fn errors_are_json_with_format_json() {
    let pkg = package(&["teams"]);
    let out = migrate(
        &pkg,
        &["status", "--format", "json", "--database", "mysql://localhost/x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: unknown database URL scheme"),
        "{}",
        stderr(&out)
    );
    let mut texts = vec![pretty(&stdout(&out))];
    pkg.write("migrations/0002_dup.sql", "CREATE TABLE dup (x);\n");
    pkg.write("migrations/3-bad.sql", "SELECT 1;\n");
    for args in [
        &["list", "--format", "json"][..],
        &["status", "--format", "json", "--database", "app.db"],
    ] {
        let out = migrate(&pkg, args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out).lines().count(), 1, "one line: {}", stdout(&out));
        texts.push(pretty(&stdout(&out)));
    }
    assert_eq!(texts[1], texts[2], "the same problems, whatever the command");
    insta::assert_snapshot!("errors_json", texts[..2].join("\n"));
    // Without --format json, stdout stays empty.
    let out = migrate(&pkg, &["list"]);
    assert_eq!(stdout(&out), "");
}

/// Issue 8, rough edges: with a duplicate version on disk (a merge),
/// `status` prints the directory's problems and what the database applied.
#[test]
fn status_with_a_broken_directory_still_shows_the_database() {
    let pkg = package(&["teams"]);
    ok(&pkg, &["up", "--database", "app.db"]);
    pkg.write("migrations/0002_add_phone.sql", "CREATE TABLE phones (x);\n");
    let (o, e) = expect(&pkg, &["status", "--database", "app.db"], 1);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 3, "{o}");
    assert!(lines[1].starts_with("0001     create_users  applied  20"), "{o}");
    assert!(lines[2].starts_with("0002     create_teams  applied  20"), "{o}");
    assert!(
        e.starts_with("app.db: 2 applied, by its tracking table; not compared with the files, whose problems follow\nerror: migrations/0002_create_teams.up.sql: duplicate version 2: `migrations/0002_add_phone.sql` and"),
        "{e}"
    );
    assert!(e.ends_with("error: 1 problem in the migrations\n"), "{e}");
}

#[test]
fn status_exit_code_is_0_when_up_to_date() {
    let pkg = package(&[]);
    ok(&pkg, &["up", "--database", "app.db"]);
    let (_, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
    assert_eq!(e, "app.db: up to date (1 applied, 0 pending)\n");
}

#[test]
fn status_of_a_missing_database_does_not_create_it() {
    let pkg = package(&["teams"]);
    let (o, e) = ok(&pkg, &["status", "--database", "sqlite:missing.db"]);
    assert!(
        e.contains("note: the database file missing.db does not exist yet: every migration is pending"),
        "{e}"
    );
    assert!(o.contains("0001     create_users  pending"), "{o}");
    assert!(o.contains("0002     create_teams  pending"), "{o}");
    assert!(!pkg.path().join("missing.db").exists());
    let (o, _) = ok(&pkg, &["status", "--database", "missing.db", "--format", "json"]);
    assert!(o.contains("\"exists\":false"), "{o}");
    assert!(!pkg.path().join("missing.db").exists());
    expect(
        &pkg,
        &["status", "--database", "missing.db", "--exit-code"],
        NOT_UP_TO_DATE,
    );
    // A failure is still 1, so CI tells "run `cargo migrate up`" from "broken".
    fail(&pkg, &["status", "--database", "mysql://x", "--exit-code"]);
}

// ---------------------------------------------------------------- up

#[test]
fn up_dry_run_changes_nothing() {
    let pkg = package(&["teams"]);
    let db = pkg.path().join("app.db");
    let (o, e) = ok(&pkg, &["up", "--dry-run", "--database", "app.db"]);
    assert!(
        o.starts_with("-- 0001 create_users (migrations/0001_create_users.up.sql)\nCREATE TABLE users ("),
        "{o}"
    );
    assert!(
        o.contains(
            "-- 0002 create_teams (migrations/0002_create_teams.up.sql)\nCREATE TABLE teams (id INTEGER PRIMARY KEY);\n"
        ),
        "{o}"
    );
    assert!(
        e.contains("dry run: would apply 2 migrations; nothing was changed"),
        "{e}"
    );
    assert!(!db.exists(), "a dry run does not create the database");

    ok(&pkg, &["up", "--to", "1", "--database", "app.db"]);
    let before = std::fs::read(&db).unwrap();
    let (o, e) = ok(&pkg, &["up", "--dry-run", "--database", "app.db"]);
    assert!(o.starts_with("-- 0002 create_teams"), "only what is pending: {o}");
    assert!(e.contains("would apply 1 migration;"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let (o, _) = ok(&pkg, &["up", "--dry-run", "--to", "1", "--database", "app.db"]);
    assert_eq!(o, "");
}

#[test]
fn up_to_a_version_and_its_errors() {
    let pkg = package(&["teams", "tags"]);
    let db = pkg.path().join("app.db");
    let (_, e) = ok(&pkg, &["up", "--to", "2", "--database", "app.db"]);
    assert!(e.contains("applied 2 migrations in"), "{e}");
    assert_eq!(applied(&db), [1, 2]);
    let e = fail(&pkg, &["up", "--to", "1", "--database", "app.db"]);
    assert!(e.contains("the database is at version 0002, above 0001: `up` only applies migrations; to roll back, run `cargo migrate down --to 1`"), "{e}");
    let e = fail(&pkg, &["up", "--to", "7", "--database", "app.db"]);
    assert!(e.contains("there is no migration 7"), "{e}");
    assert_eq!(applied(&db), [1, 2]);
    ok(&pkg, &["up", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2, 3]);
}

#[test]
fn up_reports_a_failing_statement_with_file_and_line() {
    let pkg = package(&["teams"]);
    pkg.write(
        "migrations/0003_broken.up.sql",
        "CREATE TABLE ok_table (x);\n\nINSERT INTO nope VALUES (1);\n",
    );
    let (_, e) = expect(&pkg, &["up", "--database", "app.db"], 1);
    assert!(e.contains("applying 0003 broken … failed\n"), "{e}");
    assert!(e.contains("error: migrations/0003_broken.up.sql:3: up migration 3 `broken` failed: no such table: nope; it was rolled back"), "{e}");
    assert_eq!(
        applied(&pkg.path().join("app.db")),
        [1, 2],
        "what was applied before stays"
    );
}

#[test]
fn up_into_memory_and_nested_paths() {
    let pkg = package(&[]);
    let (_, e) = ok(&pkg, &["up", "--database", "sqlite::memory:"]);
    assert!(e.contains("in-memory database"), "{e}");
    assert!(e.contains("applied 1 migration"), "{e}");
    let (_, e) = ok(&pkg, &["up", "--database", "sqlite://data.db"]);
    assert!(e.contains("created the database file data.db"), "{e}");
    let e = fail(&pkg, &["up", "--database", "sqlite:no/such/dir/app.db"]);
    assert!(e.contains("the directory `no/such/dir` does not exist"), "{e}");
}

#[test]
fn up_history_checks_and_their_overrides() {
    let pkg = package(&["teams", "tags"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    // Out of order: 2 pending below the applied 3.
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("DROP TABLE teams; DELETE FROM _migrations WHERE version = 2;")
            .unwrap();
    }
    let e = fail(&pkg, &["up", "--database", "app.db"]);
    assert!(
        e.contains("migration 2 `create_teams` is pending but migration 3 is already applied"),
        "{e}"
    );
    let (_, e) = ok(&pkg, &["up", "--database", "app.db", "--allow-out-of-order"]);
    assert!(e.contains("applying 0002 create_teams"), "{e}");
    assert_eq!(applied(&db), [1, 2, 3]);

    // Modified.
    pkg.write("migrations/0001_create_users.up.sql", format!("{USERS_UP}-- edited\n"));
    let e = fail(&pkg, &["up", "--database", "app.db"]);
    assert!(e.contains("was changed after it was applied"), "{e}");
    ok(&pkg, &["up", "--database", "app.db", "--allow-modified"]);
    pkg.write("migrations/0001_create_users.up.sql", USERS_UP);

    // Unknown: the newest migration's files are gone.
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.up.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.down.sql")).unwrap();
    let e = fail(&pkg, &["up", "--database", "app.db"]);
    assert!(
        e.contains(
            "the database has applied 1 migration that is not in migrations: 3 `create_tags`; were the files deleted"
        ),
        "{e}"
    );
    let (_, e) = ok(&pkg, &["up", "--database", "app.db", "--allow-unknown"]);
    assert!(e.contains("nothing to do"), "{e}");
}

// ---------------------------------------------------------------- down and redo

#[test]
fn down_one_step_n_steps_and_to_zero() {
    let pkg = package(&["teams", "tags", "labels"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    let (_, e) = ok(&pkg, &["down", "--database", "app.db"]);
    assert!(e.contains("rolling back 0004 create_labels … done in"), "{e}");
    assert!(e.contains("rolled back 1 migration in"), "{e}");
    assert!(e.contains("the database is at version 0003 create_tags"), "{e}");
    assert_eq!(applied(&db), [1, 2, 3]);
    assert!(!tables(&db).contains(&"labels".to_owned()));
    ok(&pkg, &["down", "--steps", "2", "--database", "app.db"]);
    assert_eq!(applied(&db), [1]);
    ok(&pkg, &["up", "--database", "app.db"]);
    ok(&pkg, &["down", "--to", "2", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2]);
    let e = fail(&pkg, &["down", "--to", "3", "--database", "app.db"]);
    assert!(e.contains("--to 3 is above it"), "{e}");
    let (_, e) = ok(&pkg, &["down", "--to", "0", "--database", "app.db"]);
    assert!(e.contains("rolled back 2 migrations in"), "{e}");
    assert!(e.contains("no migration is applied"), "{e}");
    assert!(applied(&db).is_empty());
    assert_eq!(tables(&db), ["_migrations"]);
    let (_, e) = ok(&pkg, &["down", "--database", "app.db"]);
    assert_eq!(e, "nothing to roll back: no migration is applied\n");
    ok(&pkg, &["up", "--database", "app.db"]);
    ok(&pkg, &["down", "--steps", "99", "--database", "app.db"]);
    assert!(applied(&db).is_empty());
}

#[test]
fn down_refuses_an_irreversible_migration_before_touching_anything() {
    let pkg = package(&["teams"]);
    pkg.write("migrations/0003_backfill.sql", "INSERT INTO teams (id) VALUES (1);\n");
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    let e = fail(&pkg, &["down", "--to", "0", "--database", "app.db"]);
    assert!(e.contains("migrations/0003_backfill.sql: migration 3 `backfill` has no down script, so it cannot be rolled back; nothing was rolled back"), "{e}");
    assert_eq!(applied(&db), [1, 2, 3]);
}

#[test]
fn down_and_redo_need_an_existing_database() {
    let pkg = package(&[]);
    let e = fail(&pkg, &["down", "--database", "gone.db"]);
    assert!(
        e.contains("the database file gone.db does not exist, so there is nothing to roll back"),
        "{e}"
    );
    let e = fail(&pkg, &["redo", "--database", "gone.db"]);
    assert!(e.contains("nothing to redo"), "{e}");
    assert!(!pkg.path().join("gone.db").exists());
}

#[test]
fn redo_runs_the_newest_down_and_up_again_with_its_new_text() {
    let pkg = package(&["teams"]);
    let db = pkg.path().join("app.db");
    let e = fail(&pkg, &["redo", "--database", "sqlite::memory:"]);
    assert!(e.contains("nothing to redo: no migration is applied"), "{e}");
    ok(&pkg, &["up", "--database", "app.db"]);
    // The edit-test loop: change the newest migration, redo it.
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY, title TEXT);\n",
    );
    let e = fail(&pkg, &["redo", "--database", "app.db"]);
    assert!(
        e.contains("`redo` would run its new down script against what its old up script did"),
        "{e}"
    );
    let (_, e) = ok(&pkg, &["redo", "--database", "app.db", "--allow-modified"]);
    assert!(e.contains("note: migration 0002 changed since it was applied"), "{e}");
    assert!(e.contains("rolling back 0002 create_teams … done in"), "{e}");
    assert!(e.contains("applying 0002 create_teams … done in"), "{e}");
    assert!(e.contains("redid 0002: rolled back in"), "{e}");
    let conn = Connection::open(&db).unwrap();
    let columns: i64 = conn
        .query_row("SELECT count(*) FROM pragma_table_info('teams')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(columns, 2);
    drop(conn);
    let (_, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
    assert!(e.contains("up to date"), "{e}");
    // A change to an older migration is still refused.
    pkg.write("migrations/0001_create_users.up.sql", format!("{USERS_UP}-- edited\n"));
    let e = fail(&pkg, &["redo", "--database", "app.db"]);
    assert!(
        e.contains("migration 1 `create_users` was changed after it was applied"),
        "{e}"
    );
}

/// Issue 8, defect 10: the CLI's errors name its flags, not the API's
/// options, and say what a missing file means.
#[test]
fn history_errors_name_the_cli_flags() {
    let pkg = package(&["teams", "tags"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    let mut texts = Vec::new();
    // Modified, then renamed.
    pkg.write("migrations/0001_create_users.up.sql", format!("{USERS_UP}-- edited\n"));
    texts.push(fail(&pkg, &["up", "--database", "app.db"]));
    pkg.write("migrations/0001_create_users.up.sql", USERS_UP);
    for kind in ["up", "down"] {
        std::fs::rename(
            pkg.path().join(format!("migrations/0002_create_teams.{kind}.sql")),
            pkg.path().join(format!("migrations/0002_make_teams.{kind}.sql")),
        )
        .unwrap();
    }
    texts.push(fail(&pkg, &["up", "--database", "app.db"]));
    for kind in ["up", "down"] {
        std::fs::rename(
            pkg.path().join(format!("migrations/0002_make_teams.{kind}.sql")),
            pkg.path().join(format!("migrations/0002_create_teams.{kind}.sql")),
        )
        .unwrap();
    }
    // Out of order.
    Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE teams; DELETE FROM _migrations WHERE version = 2;")
        .unwrap();
    texts.push(fail(&pkg, &["up", "--database", "app.db"]));
    ok(&pkg, &["up", "--database", "app.db", "--allow-out-of-order"]);
    // Unknown: the newest migration's files are gone.
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.up.sql")).unwrap();
    std::fs::remove_file(pkg.path().join("migrations/0003_create_tags.down.sql")).unwrap();
    texts.push(fail(&pkg, &["up", "--database", "app.db"]));
    let all = texts.join("");
    for flag in ["--allow-modified", "--allow-out-of-order", "--allow-unknown"] {
        assert!(all.contains(flag), "{flag}: {all}");
    }
    for option in [
        "(allow_modified)",
        "(allow_unknown)",
        "(allow_out_of_order)",
        "this program",
        "newer build",
    ] {
        assert!(!all.contains(option), "{option}: {all}");
    }
    insta::assert_snapshot!("history_errors", all);
}

/// Issue 8, defect 10: `down` when the newest applied migrations' files are
/// not on disk names them and says what to do, instead of "there is no
/// migration 6".
#[test]
fn down_names_the_applied_migrations_whose_files_are_missing() {
    let pkg = package(&["teams", "tags", "labels"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    for file in ["0003_create_tags", "0004_create_labels"] {
        std::fs::remove_file(pkg.path().join(format!("migrations/{file}.up.sql"))).unwrap();
        std::fs::remove_file(pkg.path().join(format!("migrations/{file}.down.sql"))).unwrap();
    }
    for args in [
        &["down", "--database", "app.db"][..],
        &["down", "--steps", "2", "--database", "app.db"],
        &["down", "--to", "1", "--database", "app.db"],
        &["redo", "--database", "app.db"],
    ] {
        let e = fail(&pkg, args);
        assert!(!e.contains("there is no migration"), "{args:?}: {e}");
        assert!(
            e.contains("but their files are not in migrations") || e.contains("but its files are not in migrations"),
            "{args:?}: {e}"
        );
        assert!(e.contains("Restore the files"), "{args:?}: {e}");
    }
    let e = fail(&pkg, &["down", "--steps", "2", "--database", "app.db"]);
    assert!(
        e.ends_with("error: cannot roll back 2 migrations: the database has applied 3 `create_tags`, 4 `create_labels` but their files are not in migrations, so there is no down script to run; nothing was rolled back. Restore the files (from version control, or the branch that added them) and run the command again\n"),
        "{e}"
    );
    assert_eq!(applied(&db), [1, 2, 3, 4], "nothing was rolled back");
}

/// Issue 8, defect 3: `up` never records a migration whose up file is
/// still the comment-only template of `new`.
#[test]
fn up_refuses_a_migration_whose_up_file_has_no_sql_yet() {
    let pkg = package(&[]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    ok(&pkg, &["new", "create teams"]);
    // The untouched template: an error of the scan, as in `cargo build`.
    let e = fail(&pkg, &["up", "--database", "app.db"]);
    assert!(
        e.contains("error: migrations/0002_create_teams.up.sql:1: the up migration is still the template of `cargo migrate new` (help: write the migration's SQL"),
        "{e}"
    );
    // Edited, but still only comments: `up` refuses too.
    pkg.write("migrations/0002_create_teams.up.sql", "-- teams, to do\n");
    pkg.write("migrations/0002_create_teams.down.sql", "-- later\n");
    let e = fail(&pkg, &["up", "--database", "app.db"]);
    assert!(
        e.ends_with("error: migrations/0002_create_teams.up.sql: migration 2 `create_teams` has no SQL statement yet, only comments (the template of `cargo migrate new`?); applying it would record it as applied without changing anything, and SQL written into it later would never run. Write the migration — or, if it is meant to do nothing, put `SELECT 1;` in it; nothing was applied\n"),
        "{e}"
    );
    let e = fail(&pkg, &["up", "--dry-run", "--database", "app.db"]);
    assert!(e.contains("has no SQL statement yet"), "{e}");
    assert_eq!(applied(&db), [1]);
    // Written: the edit loop goes on.
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);\n",
    );
    pkg.write("migrations/0002_create_teams.down.sql", "DROP TABLE teams;\n");
    ok(&pkg, &["up", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2]);
    // An intended no-op says so with a statement.
    ok(&pkg, &["new", "nothing", "--no-down"]);
    pkg.write("migrations/0003_nothing.sql", "-- on purpose\nSELECT 1;\n");
    ok(&pkg, &["up", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2, 3]);
}

/// Issue 8, defect 3: a template that an app (or an older `cargo migrate
/// up`) recorded as applied before its SQL was written is applied again
/// with its SQL by `up` and by `redo`, instead of being stuck as "modified".
#[test]
fn an_applied_empty_template_runs_its_sql_once_written() {
    for command in ["up", "redo"] {
        let pkg = package(&[]);
        let db = pkg.path().join("app.db");
        ok(&pkg, &["new", "create teams"]);
        // An app built by an older version (whose build let an untouched
        // template through) applied it at start-up.
        let files = ["0001_create_users.up.sql", "0002_create_teams.up.sql"].map(|f| {
            let path = format!("migrations/{f}");
            Script::new(pkg.read(&path), path)
        });
        let [users, teams] = files;
        let old_build = [
            Migration::new(1, "create_users", users),
            Migration::new(2, "create_teams", teams),
        ];
        let mut conn = Connection::open(&db).unwrap();
        Migrator::new(&old_build).apply(&mut conn).unwrap();
        drop(conn);
        assert_eq!(applied(&db), [1, 2]);
        pkg.write(
            "migrations/0002_create_teams.up.sql",
            "CREATE TABLE teams (id INTEGER PRIMARY KEY);\n",
        );
        pkg.write("migrations/0002_create_teams.down.sql", "DROP TABLE teams;\n");
        if command == "up" {
            let (o, e) = ok(&pkg, &["up", "--dry-run", "--database", "app.db"]);
            assert_eq!(
                o,
                "-- 0002 create_teams (migrations/0002_create_teams.up.sql)\nCREATE TABLE teams (id INTEGER PRIMARY KEY);\n\n"
            );
            assert!(e.contains("`up` applies it again with the SQL written since"), "{e}");
            assert_eq!(applied(&db), [1, 2]);
        }
        let (_, e) = ok(&pkg, &[command, "--database", "app.db"]);
        assert!(
            e.contains("note: migration 0002 `create_teams` was recorded as applied while its up file was still the empty template of `cargo migrate new`, which changed nothing; applying it now with the SQL written since"),
            "{command}: {e}"
        );
        assert!(!e.contains("rolling back"), "{command}: nothing to roll back: {e}");
        assert_eq!(tables(&db), ["_migrations", "teams", "users"], "{command}");
        let (_, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
        assert!(e.contains("up to date (2 applied, 0 pending)"), "{command}: {e}");
    }
}

/// Issue 8, defect 3: the edit loop `new` → write → `up` → edit → `redo`.
/// The new down may not undo the old up, so `redo` refuses and says what to
/// do; `--allow-modified` runs the current down and up, and records the new
/// checksum.
#[test]
fn redo_of_an_edited_migration_needs_allow_modified() {
    let pkg = package(&[]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["new", "create teams"]);
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);\n",
    );
    pkg.write("migrations/0002_create_teams.down.sql", "DROP TABLE teams;\n");
    ok(&pkg, &["up", "--database", "app.db"]);
    // The edit: a new column, and a down that drops it first (it would fail on the old table).
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);\nCREATE INDEX teams_id ON teams (id);\n",
    );
    pkg.write(
        "migrations/0002_create_teams.down.sql",
        "DROP INDEX teams_id;\nDROP TABLE teams;\n",
    );
    let e = fail(&pkg, &["redo", "--database", "app.db"]);
    assert!(
        e.ends_with("error: migrations/0002_create_teams.up.sql: migration 0002 `create_teams` changed since it was applied, so `redo` would run its new down script against what its old up script did, which it may not undo; nothing was changed. If the new down does undo the applied version (say, it drops the table both versions create), run `cargo migrate redo --allow-modified`: it runs the current down, then the current up, and records the new checksum. Otherwise put the applied version of the file back (`git stash`), run `cargo migrate down`, bring the edit back and run `cargo migrate up`\n"),
        "{e}"
    );
    // The way the message gives: the old files back, down, the edit again, up.
    let (new_up, new_down) = (
        pkg.read("migrations/0002_create_teams.up.sql"),
        pkg.read("migrations/0002_create_teams.down.sql"),
    );
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);\n",
    );
    pkg.write("migrations/0002_create_teams.down.sql", "DROP TABLE teams;\n");
    ok(&pkg, &["down", "--database", "app.db"]);
    pkg.write("migrations/0002_create_teams.up.sql", &new_up);
    pkg.write("migrations/0002_create_teams.down.sql", &new_down);
    ok(&pkg, &["up", "--database", "app.db"]);
    // Another edit whose down does undo the applied version: --allow-modified.
    pkg.write(
        "migrations/0002_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT);\nCREATE INDEX teams_id ON teams (id);\n",
    );
    let (_, e) = ok(&pkg, &["redo", "--database", "app.db", "--allow-modified"]);
    assert!(e.contains("rolling back 0002 create_teams … done in"), "{e}");
    assert!(e.contains("applying 0002 create_teams … done in"), "{e}");
    let (_, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
    assert!(e.contains("up to date"), "the new checksum is recorded: {e}");
    assert_eq!(applied(&db), [1, 2]);
}

// ---------------------------------------------------------------- check

#[test]
fn check_ok_with_warnings() {
    let pkg = package(&["teams"]);
    let (o, e) = ok(&pkg, &["check"]);
    assert_eq!(o, "");
    assert_eq!(e, "checked 2 migrations in migrations: ok\n");
    pkg.write("migrations/0003_noop.sql", "-- nothing yet\n");
    let (_, e) = ok(&pkg, &["check"]);
    // The first two come from the replay cache the first check left.
    let (line, cache) = e
        .split_once(" from the check cache in target/migrate-check-cache/")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(
        line,
        "warning: migrations/0003_noop.sql:1: the up migration has only comments, so it does nothing (help: a forgotten template? write its SQL; if the no-op is intended, ignore this)\nchecked 3 migrations in migrations: ok (1 warning; the first 2 unchanged,"
    );
    assert_eq!(cache, format!("{})\n", pkg.name()));
}

#[test]
fn check_reports_every_problem_like_the_build() {
    let pkg = package(&["teams"]);
    pkg.write("migrations/0003_bad_down.up.sql", "CREATE TABLE IF NOT EXISTS u (x);\n");
    pkg.write("migrations/0003_bad_down.down.sql", "SELECT 1;\n");
    pkg.write("migrations/0004_broken.up.sql", "CREATE TABLE t (x);\nSELEC 1;\n");
    pkg.write("migrations/0004_broken.down.sql", "DROP TABLE t;\n");
    pkg.write("migrations/0005_noop.sql", "-- nothing yet\n");
    let e = fail(&pkg, &["check"]);
    insta::assert_snapshot!("check_problems", e);
    // The build fails on the same problems.
    let (built, build_err) = pkg.build();
    assert!(!built);
    assert!(build_err.contains("migrations/0004_broken.up.sql:2"), "{build_err}");
    assert!(build_err.contains("migrations/0003_bad_down.down.sql:1"), "{build_err}");
    // A bad file name stops the scan before the replay.
    pkg.write("migrations/6-oops.sql", "SELECT 1;\n");
    let e = fail(&pkg, &["check"]);
    assert!(
        e.contains("error: migrations/6-oops.sql: `6-oops.sql` does not start with a version and `_`"),
        "{e}"
    );
}

#[test]
fn check_names_both_files_of_a_duplicate_version() {
    let pkg = package(&["teams"]);
    pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN x TEXT;\n",
    );
    let e = fail(&pkg, &["check"]);
    assert!(
        e.contains("duplicate version 2: `migrations/0002_add_email.up.sql` and `migrations/0002_create_teams.up.sql`")
            && e.contains("cargo migrate renumber"),
        "{e}"
    );
}

// ---------------------------------------------------------------- renumber

/// Two branches both added version 2: `0002_create_teams` was merged
/// first and is applied, `0002_add_email` (and `0003_add_phone` after it)
/// came from the other branch.
fn merged() -> Package {
    let pkg = package(&["teams"]);
    pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN email2 TEXT;\n",
    );
    pkg.write(
        "migrations/0002_add_email.down.sql",
        "ALTER TABLE users DROP COLUMN email2;\n",
    );
    pkg.write(
        "migrations/0003_add_phone.sql",
        "ALTER TABLE users ADD COLUMN phone TEXT;\n",
    );
    pkg
}

#[test]
fn renumber_with_a_database_never_moves_what_it_applied() {
    let pkg = package(&["teams"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    // The other branch arrives; its files are even older on disk, but the
    // database decides.
    pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN email2 TEXT;\n",
    );
    pkg.write(
        "migrations/0002_add_email.down.sql",
        "ALTER TABLE users DROP COLUMN email2;\n",
    );
    pkg.write(
        "migrations/0003_add_phone.sql",
        "ALTER TABLE users ADD COLUMN phone TEXT;\n",
    );
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for f in ["0002_add_email.up.sql", "0002_add_email.down.sql", "0003_add_phone.sql"] {
        std::fs::File::options()
            .write(true)
            .open(pkg.path().join("migrations").join(f))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fail(&pkg, &["check"]);

    let (o, e) = ok(&pkg, &["renumber", "--dry-run", "--database", "app.db"]);
    assert!(
        o.contains("would rename migrations/0002_add_email.up.sql → migrations/0003_add_email.up.sql"),
        "{o}"
    );
    assert!(e.contains("nothing was renamed"), "{e}");
    assert!(pkg.path().join("migrations/0002_add_email.up.sql").exists());

    let (o, e) = ok(&pkg, &["renumber", "--database", "app.db"]);
    assert_eq!(
        o,
        "renamed migrations/0003_add_phone.sql → migrations/0004_add_phone.sql\n\
         renamed migrations/0002_add_email.up.sql → migrations/0003_add_email.up.sql\n\
         renamed migrations/0002_add_email.down.sql → migrations/0003_add_email.down.sql\n"
    );
    assert!(
        e.contains(
            "moved 2 migrations (not applied in app.db) to the end: 0002 add_email → 0003, 0003 add_phone → 0004"
        ),
        "{e}"
    );
    assert_eq!(
        files(&pkg),
        [
            "0001_create_users.down.sql",
            "0001_create_users.up.sql",
            "0002_create_teams.down.sql",
            "0002_create_teams.up.sql",
            "0003_add_email.down.sql",
            "0003_add_email.up.sql",
            "0004_add_phone.sql"
        ]
    );
    ok(&pkg, &["check"]);
    ok(&pkg, &["up", "--database", "app.db"]);
    assert_eq!(applied(&db), [1, 2, 3, 4]);
    let (_, e) = ok(&pkg, &["renumber", "--database", "app.db"]);
    assert!(e.contains("nothing to renumber"), "{e}");
}

#[test]
fn renumber_moves_a_pending_migration_below_an_applied_one() {
    // Branch A (0002, 0003) is applied; branch B's 0002 is not.
    let pkg = package(&["teams", "tags"]);
    ok(&pkg, &["up", "--database", "app.db"]);
    pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN email2 TEXT;\n",
    );
    let (_, e) = ok(&pkg, &["renumber", "--database", "app.db"]);
    assert!(e.contains("0002 add_email → 0004"), "{e}");
    ok(&pkg, &["up", "--database", "app.db"]);
    assert_eq!(applied(&pkg.path().join("app.db")), [1, 2, 3, 4]);
}

#[test]
fn renumber_refuses_when_it_would_leave_a_gap() {
    let pkg = package(&["teams", "tags"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("DROP TABLE teams; DELETE FROM _migrations WHERE version = 2;")
            .unwrap();
    }
    let before = files(&pkg);
    let e = fail(&pkg, &["renumber", "--database", "app.db"]);
    assert!(
        e.contains("moving 0002 create_teams to the end would leave version 0002 empty, below applied version 0003"),
        "{e}"
    );
    assert!(e.contains("--allow-out-of-order"), "{e}");
    assert_eq!(files(&pkg), before);
}

#[test]
fn renumber_without_a_database_moves_the_newer_file_by_git_history() {
    let pkg = merged();
    let git = |args: &[&str], date: &str| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(pkg.path())
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    git(&["init", "-q"], "2020-01-01T00:00:00Z");
    // add_email was committed before create_teams: create_teams is the newer.
    git(
        &[
            "add",
            "migrations/0001_create_users.up.sql",
            "migrations/0001_create_users.down.sql",
        ],
        "2020-01-01T00:00:00Z",
    );
    git(&["commit", "-qm", "users"], "2020-01-01T00:00:00Z");
    git(
        &[
            "add",
            "migrations/0002_add_email.up.sql",
            "migrations/0002_add_email.down.sql",
            "migrations/0003_add_phone.sql",
        ],
        "2020-01-02T00:00:00Z",
    );
    git(&["commit", "-qm", "email"], "2020-01-02T00:00:00Z");
    git(&["add", "."], "2020-01-03T00:00:00Z");
    git(&["commit", "-qm", "teams"], "2020-01-03T00:00:00Z");

    let (o, e) = ok(&pkg, &["renumber"]);
    assert_eq!(
        o,
        "renamed migrations/0002_create_teams.up.sql → migrations/0004_create_teams.up.sql (git mv)\n\
         renamed migrations/0002_create_teams.down.sql → migrations/0004_create_teams.down.sql (git mv)\n"
    );
    assert!(
        e.contains(
            "moved 1 migration (added later, by git history or file times) to the end: 0002 create_teams → 0004"
        ),
        "{e}"
    );
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain", "migrations"])
        .current_dir(pkg.path())
        .output()
        .unwrap();
    let status = stdout(&status);
    assert!(
        status.contains("R  migrations/0002_create_teams.up.sql -> migrations/0004_create_teams.up.sql"),
        "{status}"
    );
    ok(&pkg, &["check"]);
}

#[test]
fn renumber_without_git_uses_file_times_and_a_missing_config_database() {
    let pkg = merged();
    // The config names a database that does not exist: decide by file times.
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndatabase = \"sqlite:none.db\"\n";
    pkg.write("Cargo.toml", manifest);
    let t = |secs| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    for (f, secs) in [
        ("0002_create_teams.up.sql", 2_000),
        ("0002_create_teams.down.sql", 2_000),
        ("0002_add_email.up.sql", 1_000),
        ("0002_add_email.down.sql", 1_000),
        ("0003_add_phone.sql", 1_500),
    ] {
        std::fs::File::options()
            .write(true)
            .open(pkg.path().join("migrations").join(f))
            .unwrap()
            .set_modified(t(secs))
            .unwrap();
    }
    let (o, e) = ok(&pkg, &["renumber"]);
    assert!(
        e.contains(
            "note: the database file none.db does not exist; deciding which migrations are newer by git history"
        ),
        "{e}"
    );
    assert!(
        o.contains("renamed migrations/0002_create_teams.up.sql → migrations/0004_create_teams.up.sql\n"),
        "{o}"
    );
    assert!(!pkg.path().join("none.db").exists());
    ok(&pkg, &["check"]);
    // An explicit database must exist.
    let e = fail(&pkg, &["renumber", "--database", "nope.db"]);
    assert!(e.contains("the database file nope.db does not exist"), "{e}");
}

// ---------------------------------------------------------------- databases

#[test]
fn database_errors() {
    let pkg = package(&[]);
    pkg.write("garbage.db", b"this is not a database, just some bytes that are long enough to look like a header................................................".repeat(10));
    std::fs::create_dir(pkg.path().join("adir")).unwrap();
    let mut texts = Vec::new();
    for args in [
        &["status"][..],
        &["status", "--database", "mysql://localhost/app"],
        // A server that is not there; a URL the driver rejects.
        &["status", "--database", "postgres://127.0.0.1:1/app"],
        &["up", "--database", "postgresql://localhost:port/app"],
        &["up", "--database", "sqlite:"],
        &["up", "--database", "sqlite:app.db?cache=shared"],
        &["up", "--database", "sqlite:app.db?mode=ro"],
        &["up", "--database", "sqlite:app%.db"],
        &["up", "--database", "garbage.db"],
        &["status", "--database", "sqlite:garbage.db"],
        &["up", "--database", "adir"],
    ] {
        let e = fail(&pkg, args);
        texts.push(format!("$ cargo migrate {}\n{}", args.join(" "), e));
    }
    insta::assert_snapshot!("database_errors", texts.join("\n"));
    assert!(!pkg.path().join("app.db").exists());
}

/// Issue 8, defect 5: a password in a database URL is never printed, by any
/// command, wherever the URL came from.
#[test]
fn passwords_in_database_urls_are_redacted() {
    let pkg = package(&[]);
    let urls = [
        "postgres://alice:s3cret@db.example/app",
        "mysql://alice:s3cret@db.example/app",
        "postgresql://db.example/app?user=alice&password=s3cret",
        "sqlite:app.db?password=s3cret",
    ];
    let commands: [&[&str]; 7] = [
        &["status"],
        &["up"],
        &["up", "--dry-run"],
        &["down"],
        &["redo"],
        &["renumber"],
        &["init"],
    ];
    for url in urls {
        for command in commands {
            // From the flag, and from DATABASE_URL.
            let from_flag = pkg.migrate().args(command).args(["--database", url]).output().unwrap();
            let from_env = pkg.migrate().args(command).env("DATABASE_URL", url).output().unwrap();
            for (out, from) in [(from_flag, "--database"), (from_env, "DATABASE_URL")] {
                let all = format!("{}{}", stdout(&out), stderr(&out));
                if command != ["init"] || from == "--database" {
                    assert_eq!(out.status.code(), Some(1), "{command:?} {from} {url}: {all}");
                    assert!(all.contains("***"), "{command:?} {from} {url}: {all}");
                }
                assert!(!all.contains("s3cret"), "{command:?} {from} {url}: {all}");
            }
        }
    }
    // From the config (`init` above wrote one: start again).
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\ndatabase = \"postgres://alice:s3cret@db.example/app\"\n"),
    );
    let e = fail(&pkg, &["status"]);
    assert!(e.contains("`postgres://alice:***@db.example/app`"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// Issue 8, rough edges: percent-escapes in `sqlite:` URLs are decoded, and
/// sqlx's `?mode=` is honoured.
#[test]
fn sqlite_urls_decode_escapes_and_honour_mode() {
    let pkg = package(&[]);
    let (_, e) = ok(&pkg, &["up", "--database", "sqlite:my%20app.db"]);
    assert!(e.contains("created the database file my app.db"), "{e}");
    assert_eq!(applied(&pkg.path().join("my app.db")), [1]);
    let (o, _) = ok(&pkg, &["status", "--database", "sqlite:my%20app.db?mode=ro"]);
    assert!(o.contains("create_users  applied"), "{o}");
    let e = fail(&pkg, &["down", "--database", "sqlite:my%20app.db?mode=ro"]);
    assert!(
        e.contains("is opened read-only by its URL's ?mode=ro, and this command changes it"),
        "{e}"
    );
    assert_eq!(applied(&pkg.path().join("my app.db")), [1]);
    let e = fail(&pkg, &["up", "--database", "sqlite:rw.db?mode=rw"]);
    assert!(
        e.contains("the database file rw.db does not exist, and its URL's ?mode=rw"),
        "{e}"
    );
    assert!(!pkg.path().join("rw.db").exists());
    ok(&pkg, &["up", "--database", "sqlite:rw.db?mode=rwc"]);
    ok(&pkg, &["down", "--database", "sqlite:rw.db?mode=rw"]);
    let (_, e) = ok(&pkg, &["up", "--database", "sqlite:x.db?mode=memory"]);
    assert!(e.contains("in-memory database"), "{e}");
    assert!(!pkg.path().join("x.db").exists());
}

/// Issue 8, rough edges: `DATABASE_URL` is read from a `.env` file (the
/// current directory's, else the package's) after the environment and
/// before the config; a relative path in it is relative to the file.
#[test]
fn database_url_from_a_dotenv_file() {
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndatabase = \"sqlite:config.db\"\n";
    pkg.write("Cargo.toml", manifest);
    pkg.write(".env", "# local settings\nOTHER=1\nDATABASE_URL=sqlite:dotenv.db\n");
    std::fs::create_dir(pkg.path().join("src/sub")).unwrap();
    let run = |dir: &str, args: &[&str], env: Option<&str>| {
        let mut cmd = pkg.migrate();
        cmd.args(args).current_dir(pkg.path().join(dir));
        if let Some(url) = env {
            cmd.env("DATABASE_URL", url);
        }
        cmd.output().unwrap()
    };
    let out = run("src/sub", &["up"], None);
    assert!(stderr(&out).contains("created the database file"), "{}", stderr(&out));
    assert!(pkg.path().join("dotenv.db").exists(), "relative to the .env file");
    assert!(!pkg.path().join("config.db").exists());
    let out = run(".", &["up"], Some("sqlite:env.db"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pkg.path().join("env.db").exists(), "the environment wins");
    // A .env in the current directory comes first.
    pkg.write("src/sub/.env", "DATABASE_URL=sqlite:here.db\n");
    let out = run("src/sub", &["up"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pkg.path().join("src/sub/here.db").exists());
    // Errors say where the URL came from; a broken .env is an error.
    pkg.write(".env", "DATABASE_URL=mysql://x/y\n");
    let e = fail(&pkg, &["status"]);
    assert!(e.contains("(from DATABASE_URL in .env)"), "{e}");
    pkg.write(".env", "DATABASE_URL='unterminated\n");
    let e = fail(&pkg, &["status"]);
    assert!(e.contains("cannot read .env: it is not a valid .env file"), "{e}");
    std::fs::remove_file(pkg.path().join(".env")).unwrap();
    ok(&pkg, &["up"]);
    assert!(pkg.path().join("config.db").exists(), "then the config");
}

#[test]
fn database_comes_from_the_flag_then_the_environment_then_the_config() {
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndatabase = \"sqlite:config.db\"\n";
    pkg.write("Cargo.toml", manifest);
    ok(&pkg, &["up"]);
    assert!(pkg.path().join("config.db").exists());
    let out = pkg
        .migrate()
        .args(["up"])
        .env("DATABASE_URL", "sqlite:env.db")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("created the database file env.db"),
        "{}",
        stderr(&out)
    );
    let out = pkg
        .migrate()
        .args(["up", "--database", "flag.db"])
        .env("DATABASE_URL", "postgres://ignored")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("created the database file flag.db"),
        "{}",
        stderr(&out)
    );
    // Commands without a database do not mind a DATABASE_URL they cannot use.
    let out = pkg
        .migrate()
        .args(["list"])
        .env("DATABASE_URL", "postgres://x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn config_database_is_relative_to_the_package_flag_to_the_current_directory() {
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndatabase = \"sqlite:config.db\"\n";
    pkg.write("Cargo.toml", manifest);
    std::fs::create_dir(pkg.path().join("src/sub")).unwrap();
    let run = |args: &[&str]| {
        pkg.migrate()
            .args(args)
            .current_dir(pkg.path().join("src/sub"))
            .output()
            .unwrap()
    };
    let out = run(&["up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pkg.path().join("config.db").exists());
    let out = run(&["up", "--database", "here.db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pkg.path().join("src/sub/here.db").exists());
}

#[test]
fn locked_database_times_out_with_a_clear_error() {
    let pkg = package(&[]);
    let db = pkg.path().join("app.db");
    let holder = Connection::open(&db).unwrap();
    holder
        .execute_batch("CREATE TABLE x (y); BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);")
        .unwrap();
    let start = std::time::Instant::now();
    let e = fail(&pkg, &["up", "--lock-timeout", "1", "--database", "app.db"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        e.contains("error: the database `app.db` is locked by another process: waited 1s for it; make sure no other program holds a long transaction on it, or raise --lock-timeout"),
        "{e}"
    );
    holder.execute_batch("COMMIT").unwrap();
    ok(&pkg, &["up", "--lock-timeout", "1", "--database", "app.db"]);
}

/// Reads `pipe` up to and including the first `end` (or to its end), as it comes.
fn read_until(pipe: &mut impl std::io::Read, end: &str) -> String {
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while !said.ends_with(end.as_bytes()) && pipe.read(&mut byte).unwrap() == 1 {
        said.push(byte[0]);
    }
    String::from_utf8(said).unwrap()
}

/// Issue 8, defect 4: after a process was killed in the middle of a write,
/// `status` (which opens read-only) rolls the hot journal back instead of
/// blaming the permissions.
#[test]
fn status_after_a_crash_during_a_write_rolls_the_journal_back() {
    use std::io::BufRead as _;
    let pkg = package(&["teams"]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    let mut writer = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-worker"))
        .args(["--interrupted-write", db.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(writer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "writing\n");
    writer.kill().unwrap(); // SIGKILL
    writer.wait().unwrap();
    let journal = pkg.path().join("app.db-journal");
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "the kill left a hot journal"
    );

    let (o, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
    assert!(o.contains("0002     create_teams  applied"), "{o}");
    assert!(
        e.contains("note: a write to app.db was interrupted (a process crashed or was killed while writing it); SQLite rolled it back from app.db-journal"),
        "{e}"
    );
    assert!(e.contains("up to date"), "{e}");
    assert!(!journal.exists(), "the journal is gone");
    let rows: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM interrupted", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the interrupted write was rolled back");
}

/// Issue 8, defect 9: `status` reads while another process holds a write
/// transaction; when a writer holds the exclusive lock it says at once that
/// it waits, accepts the --lock-timeout it suggests, and goes on when the
/// writer is done.
#[test]
fn status_does_not_wait_for_a_writer_and_says_when_it_must() {
    let pkg = package(&[]);
    let db = pkg.path().join("app.db");
    ok(&pkg, &["up", "--database", "app.db"]);
    let holder = Connection::open(&db).unwrap();

    // A write in progress (not committing yet): readers are not blocked.
    holder
        .execute_batch("CREATE TABLE x (y); BEGIN IMMEDIATE; INSERT INTO x VALUES (1);")
        .unwrap();
    let start = std::time::Instant::now();
    let (_, e) = ok(&pkg, &["status", "--database", "app.db"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(4), "no wait: {e}");
    assert!(!e.contains("waiting"), "{e}");
    holder.execute_batch("COMMIT").unwrap();

    // An exclusive lock: wait, say so at once, go on when it is released.
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO x VALUES (2);")
        .unwrap();
    let mut child = std::process::Command::new(tests::bin("cargo-migrate"))
        .args(["migrate", "status", "--database", "app.db", "--lock-timeout", "60"])
        .current_dir(pkg.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let said = read_until(child.stderr.as_mut().unwrap(), "\n");
    assert_eq!(
        said,
        "note: app.db is locked by another process that is writing to it; waiting up to 60s for the write to finish (--lock-timeout SECS) …\n"
    );
    holder.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(stdout(&out).contains("create_users  applied"), "{}", stdout(&out));

    // Held for longer than --lock-timeout: the error suggests the option status takes.
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO x VALUES (3);")
        .unwrap();
    let start = std::time::Instant::now();
    let e = fail(&pkg, &["status", "--database", "app.db", "--lock-timeout", "1"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    assert!(e.contains("waiting up to 1s"), "{e}");
    assert!(
        e.contains("error: the database `app.db` is locked by another process: waited 1s for it; make sure no other program holds a long transaction on it, or raise --lock-timeout"),
        "{e}"
    );
    holder.execute_batch("COMMIT").unwrap();
}

// ---------------------------------------------------------------- packages and workspaces

#[test]
fn finds_the_package_in_a_workspace() {
    let ws = tests::scratch();
    let write = |rel: &str, text: &str| {
        let p = ws.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"api\", \"worker\"]\nresolver = \"3\"\n",
    );
    for name in ["api", "worker"] {
        write(
            &format!("{name}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n"),
        );
        write(&format!("{name}/src/main.rs"), "fn main() {}\n");
        write(&format!("{name}/migrations/0001_{name}.sql"), "CREATE TABLE t (x);\n");
    }
    let run = |dir: &Path, args: &[&str]| {
        assert_cmd::Command::new(tests::bin("cargo-migrate"))
            .arg("migrate")
            .args(args)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(ws.path(), &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the current directory is in a workspace but not in one of its packages; choose one with -p NAME: api, worker"),
        "{}",
        stderr(&out)
    );
    let out = run(ws.path(), &["list", "-p", "worker"]);
    assert!(stdout(&out).contains("0001     worker"), "{}", stderr(&out));
    let out = run(&ws.path().join("api/src"), &["list"]);
    assert!(stdout(&out).contains("0001     api"), "{}", stderr(&out));
    let out = run(ws.path(), &["list", "--manifest-path", "worker/Cargo.toml"]);
    assert!(stdout(&out).contains("0001     worker"), "{}", stderr(&out));
    let out = run(ws.path(), &["list", "-p", "nope"]);
    assert!(
        stderr(&out).contains("-p nope: there is no package `nope` in the workspace; its packages are: api, worker"),
        "{}",
        stderr(&out)
    );
    let out = run(ws.path(), &["list", "--manifest-path", "missing/Cargo.toml"]);
    assert!(
        stderr(&out).contains("--manifest-path missing/Cargo.toml: no such file"),
        "{}",
        stderr(&out)
    );
    // Outside any package (the scratch directories are inside this workspace).
    let outside = tempfile::tempdir().unwrap();
    let out = run(outside.path(), &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: cannot read the package: could not find `Cargo.toml`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_invalid_config_is_reported_with_its_line() {
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ndirr = \"m\"\n";
    pkg.write("Cargo.toml", manifest);
    let e = fail(&pkg, &["list"]);
    assert!(e.contains("unknown field `dirr`"), "{e}");
    assert!(e.ends_with("error: 1 problem in [package.metadata.migrate]\n"), "{e}");
}

// ---------------------------------------------------------------- the app and the CLI agree

#[test]
fn a_database_migrated_by_the_cli_is_up_to_date_for_the_app() {
    let pkg = package(&["teams"]);
    ok(&pkg, &["up", "--database", "app.db"]);
    let out = pkg.run(&["app.db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

#[test]
fn a_database_migrated_by_the_app_is_up_to_date_for_the_cli() {
    let pkg = package(&["teams"]);
    let out = pkg.run(&["app.db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("applied 2 create_teams"), "{}", stdout(&out));
    let (o, e) = ok(&pkg, &["status", "--database", "app.db", "--exit-code"]);
    assert!(
        o.contains("create_users  applied") && o.contains("create_teams  applied"),
        "{o}"
    );
    assert!(e.contains("up to date (2 applied, 0 pending)"), "{e}");
    let (_, e) = ok(&pkg, &["up", "--database", "app.db"]);
    assert!(e.contains("nothing to do"), "{e}");
    ok(&pkg, &["down", "--database", "app.db"]);
    let out = pkg.run(&["app.db"]);
    assert!(stdout(&out).contains("applied 2 create_teams"), "{}", stdout(&out));
}

#[test]
fn a_custom_tracking_table_is_shared_too() {
    let pkg = package(&[]);
    let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\ntable = \"schema_history\"\n";
    pkg.write("Cargo.toml", manifest);
    ok(&pkg, &["up", "--database", "app.db"]);
    assert!(tables(&pkg.path().join("app.db")).contains(&"schema_history".to_owned()));
    let out = pkg.run(&["app.db"]);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

// ---------------------------------------------------------------- output

#[test]
fn a_closed_pipe_is_not_an_error() {
    let pkg = package(&["a", "b", "c", "d"]);
    let mut child = std::process::Command::new(tests::bin("cargo-migrate"))
        .args(["migrate", "up", "--dry-run", "--database", "app.db"])
        .current_dir(pkg.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn a_closed_stderr_is_not_a_crash() {
    let pkg = package(&["a", "b"]);
    for args in [
        &["up", "--database", "app.db"][..],
        &["list"],
        &["status", "--database", "nope://x"],
    ] {
        let mut child = std::process::Command::new(tests::bin("cargo-migrate"))
            .arg("migrate")
            .args(args)
            .current_dir(pkg.path())
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let out = child.wait_with_output().unwrap();
        // 0 or 1 as the command goes, never a panic (101) over a message nobody reads.
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {:?}", out.status);
    }
    assert_eq!(applied(&pkg.path().join("app.db")), [1, 2, 3]);
}

/// A migration that runs for seconds: it counts `rows` rows made by a
/// recursive query (about 6 million a second on our CI machines), and keeps
/// only the count, so its time is CPU, not disk.
fn slow_package(rows: u64) -> Package {
    let pkg = package(&[]);
    pkg.write(
        "migrations/0002_slow.sql",
        format!(
            "CREATE TABLE big AS SELECT count(*) AS n FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) SELECT x FROM c);\n"
        ),
    );
    pkg
}

/// Issue 8, rough edges: on a terminal a long migration shows its elapsed
/// time, rewritten in place; piped, the line is written once.
#[test]
fn a_long_migration_shows_its_elapsed_time_on_a_terminal_only() {
    // Long enough to pass the one-second tick on a machine several times
    // faster than ours (6 million rows once took 921 ms in CI).
    let pkg = slow_package(20_000_000);
    let said = in_terminal(&pkg, "up --database tty.db", true);
    assert!(
        said.contains("applying 0002 slow … \rapplying 0002 slow … 1 s"),
        "{said:?}"
    );
    assert!(said.contains("\rapplying 0002 slow … done in "), "{said:?}");
    assert_eq!(applied(&pkg.path().join("tty.db")), [1, 2]);

    let (_, e) = ok(&pkg, &["up", "--database", "piped.db"]);
    assert!(!e.contains('\r'), "{e:?}");
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines[2].starts_with("applying 0002 slow … done in "), "{e}");
    assert_eq!(e.matches("applying 0002 slow").count(), 1, "{e}");
}

/// Issue 8, rough edges: Ctrl-C during a migration says that it was not
/// committed, and the next command finds it pending.
#[test]
fn ctrl_c_says_the_migration_was_rolled_back() {
    use std::io::Read as _;
    let pkg = slow_package(1_000_000_000);
    let mut child = std::process::Command::new(tests::bin("cargo-migrate"))
        .args(["migrate", "up", "--database", "app.db"])
        .current_dir(pkg.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let mut said = read_until(&mut pipe, "applying 0002 slow … ").into_bytes();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    pipe.read_to_end(&mut said).unwrap();
    let status = child.wait().unwrap();
    let said = String::from_utf8(said).unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.ends_with("applying 0002 slow … interrupted\ninterrupted (Ctrl-C) while applying migration 0002 slow: its transaction was not committed, so it is not applied (SQLite rolls it back; the next command that opens the database finishes that). The migrations before it are unchanged\n"),
        "{said}"
    );
    let (o, _) = ok(&pkg, &["status", "--database", "app.db"]);
    assert!(o.contains("0002     slow          pending"), "{o}");
    assert_eq!(tables(&pkg.path().join("app.db")), ["_migrations", "users"]);
}

/// Runs `cargo-migrate migrate ARGS` in a pseudo-terminal (util-linux
/// `script`), with or without `NO_COLOR`, and returns what the terminal got.
fn in_terminal(pkg: &Package, args: &str, no_color: bool) -> String {
    let command = format!("{} migrate {args}", tests::bin("cargo-migrate").display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .current_dir(pkg.path())
        .env_remove("DATABASE_URL")
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd
        .output()
        .expect("`script` (util-linux) runs the test in a pseudo-terminal");
    stdout(&out)
}

/// Our own messages are plain text even on a terminal; clap's help and
/// usage errors are styled there, unless NO_COLOR is set. (Issue 9: the
/// old version of this test ran in a pipe with NO_COLOR set, so it could
/// not fail; on a terminal without NO_COLOR, clap's help does use escape
/// codes, which shows that this one can.)
#[test]
fn output_is_plain_text() {
    let pkg = package(&["teams"]);
    for args in [
        "status --database mysql://x",
        "up --database app.db",
        "status --database app.db",
        "list",
    ] {
        let said = in_terminal(&pkg, args, false);
        assert!(said.contains("0001") || said.contains("error:"), "{args}: {said:?}");
        assert!(!said.contains('\u{1b}'), "no escape codes: {args}: {said:?}");
    }
    for args in ["--help", "status --help", "up --dtabase x"] {
        assert!(!in_terminal(&pkg, args, true).contains('\u{1b}'), "NO_COLOR: {args}");
    }
    assert!(
        in_terminal(&pkg, "--help", false).contains('\u{1b}'),
        "without NO_COLOR, clap styles its help on a terminal"
    );
}
