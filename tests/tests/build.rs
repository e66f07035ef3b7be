//! Build-time behaviour: the checks of `migrate-build` on one fixture
//! directory per failure mode (exact messages snapshotted), the generated
//! code, and real cargo builds of throw-away packages.

use std::path::{Path, PathBuf};

use migrate_build::{Config, check};
use tests::Package;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// What `check` says about a fixture: the problems, or the migrations and tables.
fn report(package: &Path) -> String {
    match check(package, &Config::default()) {
        Ok(checked) => {
            let mut out = format!("ok: {} migrations\n", checked.migrations.len());
            for w in &checked.warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            for t in &checked.tables {
                let columns: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
                out.push_str(&format!("table {} ({})\n", t.name, columns.join(", ")));
            }
            out
        }
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_fixture_gives_its_exact_report() {
    let mut names: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // Other tools' layouts, for `import` (tests/tests/import.rs).
        .filter(|n| n != "import")
        .collect();
    names.sort();
    assert!(names.len() >= 30, "{names:?}");
    for name in names {
        let text = report(&fixtures_dir().join(&name));
        insta::assert_snapshot!(format!("fixture_{name}"), text);
    }
}

#[test]
fn valid_fixture_passes_with_its_schema() {
    let text = report(&fixtures_dir().join("valid"));
    assert!(text.starts_with("ok: 3 migrations"), "{text}");
    assert!(text.contains("table users (id, name, email)"), "{text}");
}

#[test]
fn missing_directory_is_an_error() {
    let dir = tests::scratch();
    let text = report(dir.path());
    assert!(
        text.contains("migrations: cannot read the migrations directory"),
        "{text}"
    );
    assert!(text.contains("cargo migrate init"), "{text}");
}

#[test]
fn dangling_symlink_is_an_error_and_a_good_one_is_followed() {
    let dir = tests::scratch();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(dir.path().join("real.sql"), "CREATE TABLE a (x);\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.sql"), m.join("0001_a.sql")).unwrap();
    assert!(
        report(dir.path()).starts_with("ok: 1 migrations"),
        "{}",
        report(dir.path())
    );
    std::os::unix::fs::symlink(dir.path().join("gone.sql"), m.join("0002_b.sql")).unwrap();
    let text = report(dir.path());
    assert!(text.contains("migrations/0002_b.sql: cannot read"), "{text}");
}

#[test]
fn builder_writes_only_when_changed_and_emits_directives() {
    let dir = tests::scratch();
    let out = tests::scratch();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(dir.path().join("migrations/0001_a.sql"), "CREATE TABLE a (x);\n").unwrap();
    let build = || {
        let sink = SharedBuf::default();
        let built = migrate_build::Builder::new()
            .package_dir(dir.path())
            .out_dir(out.path())
            .directives(sink.clone())
            .build()
            .unwrap();
        (built, sink.text())
    };
    let (first, directives) = build();
    assert!(first.changed);
    assert_eq!(first.migrations, 1);
    assert!(
        directives.contains(&format!(
            "cargo::rerun-if-changed={}",
            dir.path().join("migrations").display()
        )),
        "{directives}"
    );
    let bytes = std::fs::read(&first.path).unwrap();
    let (second, _) = build();
    assert!(!second.changed, "same input must not rewrite the file");
    assert_eq!(std::fs::read(&second.path).unwrap(), bytes, "deterministic output");
}

#[test]
fn builder_reports_every_problem_as_cargo_errors() {
    let sink = SharedBuf::default();
    let out = tests::scratch();
    let err = migrate_build::Builder::new()
        .package_dir(fixtures_dir().join("many_problems"))
        .out_dir(out.path())
        .directives(sink.clone())
        .build()
        .unwrap_err();
    let text = sink.text();
    let errors: Vec<_> = text.lines().filter(|l| l.starts_with("cargo::error=")).collect();
    assert_eq!(
        errors.len(),
        err.problems().iter().filter(|p| p.is_error()).count(),
        "{text}"
    );
    assert!(errors.len() >= 4, "{text}");
    assert!(
        !out.path().join("migrations.rs").exists(),
        "nothing generated on failure"
    );
}

#[test]
fn generated_code_snapshot_and_rustfmt_clean() {
    let out = tests::scratch();
    let built = migrate_build::Builder::new()
        .package_dir(fixtures_dir().join("valid"))
        .out_dir(out.path())
        .directives(std::io::sink())
        .build()
        .unwrap();
    let code = std::fs::read_to_string(&built.path).unwrap();
    insta::assert_snapshot!("generated_valid", code);
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2024", "--check"])
        .arg(&built.path)
        .status();
    match status {
        Ok(s) => assert!(s.success(), "rustfmt would reformat the generated code"),
        Err(e) => tests::tool_missing("rustfmt", &e.to_string()),
    }
}

/// A `Write` whose contents the test can read after handing it over.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// ---- real cargo builds of throw-away packages ----

/// A testbox with a package name of its own. Testboxes share a target
/// directory, and cargo gives root packages with the same name the same
/// build-script output directory: a test that runs in parallel with another
/// `testbox` could compile or run the other's generated module.
fn testbox(name: &str) -> Package {
    Package::named(name)
}

fn write_users(pkg: &Package) {
    pkg.write(
        "migrations/0001_create_users.up.sql",
        "CREATE TABLE users (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL\n);\n",
    );
    pkg.write("migrations/0001_create_users.down.sql", "DROP TABLE users;\n");
}

#[test]
fn testbox_valid_set_builds_runs_and_picks_up_new_files() {
    let pkg = testbox("valid");
    write_users(&pkg);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let out = pkg.run(&["app.db"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("applied 1 create_users"), "{stdout}");
    assert!(stdout.contains("migrations: 1"), "{stdout}");

    // A file added after a build is picked up by the next build.
    pkg.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    );
    let out = pkg.run(&["app.db"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("applied 2 add_email"), "{stdout}");
    assert!(stdout.contains("migrations: 2"), "{stdout}");

    // Nothing changed: the build script does not run again.
    let out = pkg.cargo(&["build", "-v"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("build-script-build`"),
        "build script re-ran:\n{stderr}"
    );
    assert!(stderr.contains("Fresh testbox"), "{stderr}");
}

#[test]
fn testbox_sql_error_fails_the_build_with_file_and_line() {
    let pkg = testbox("sql-error");
    write_users(&pkg);
    pkg.write(
        "migrations/0002_broken.sql",
        "-- a typo on line 3\nCREATE TABLE ok (x);\nCREATE TABEL broken (y);\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok);
    assert!(
        stderr.contains("migrations/0002_broken.sql:3: up migration 2 `broken` fails: near \"TABEL\": syntax error"),
        "{stderr}"
    );
}

#[test]
fn testbox_code_naming_a_dropped_column_stops_compiling() {
    let pkg = testbox("dropped-column");
    pkg.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, nickname TEXT);\n",
    );
    let main = tests::MAIN_RS.replace(
        "fn main() {",
        "#[allow(dead_code)]\nconst USES: &str = migrations::schema::users::NICKNAME;\n\nfn main() {",
    );
    pkg.write("src/main.rs", &main);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    pkg.write(
        "migrations/0002_drop_nickname.sql",
        "ALTER TABLE users DROP COLUMN nickname;\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok, "code naming a dropped column must not compile");
    assert!(stderr.contains("NICKNAME"), "{stderr}");
}

#[test]
fn testbox_hostile_names_generate_compiling_code() {
    let pkg = testbox("hostile-names");
    pkg.write(
        "migrations/0001_self.sql",
        r#"CREATE TABLE "type" ("table" TEXT, "fn" TEXT, "1st" TEXT, "quote""d" TEXT, "back\slash" TEXT, "sp ace" TEXT, "ünï" TEXT, "" TEXT);
CREATE TABLE "Type2" (x);
CREATE TABLE "type-2" (x);
CREATE TABLE "9lives" ("*/ fn evil() {} /*" TEXT, """); panic!(""" TEXT);
"#,
    );
    pkg.write("migrations/0002_self.sql", "CREATE TABLE [self] (x);\n");
    pkg.write(
        "migrations/0003_2fa.sql",
        "CREATE TABLE \"TABLE\" (\"TABLE\" TEXT, table_ TEXT);\n",
    );
    pkg.write("migrations/0004_add_email_v3.sql", "SELECT 1;\n");
    pkg.write("migrations/0005_add_email.sql", "SELECT 1;\n");
    pkg.write("migrations/0006_add_email.sql", "SELECT 1;\n");
    let main = tests::MAIN_RS.replace(
        "fn main() {",
        "#[allow(dead_code)]\nconst N: [&str; 6] = [\n    migrations::schema::type_::sql::TABLE_,\n    migrations::schema::type_::TABLE_,\n    migrations::schema::type_::FN,\n    migrations::schema::type_::C_1ST,\n    migrations::schema::t_9lives::TABLE,\n    migrations::schema::self_::X,\n];\n\n// The variant of `0003_2fa.sql`, compiled.\n#[allow(dead_code)]\nconst V2FA: u64 = migrations::Version::V2fa.number();\n\nfn main() {",
    );
    pkg.write("src/main.rs", &main);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    // The generated module is warning-free under clippy too.
    let clippy = pkg.cargo(&["clippy", "--quiet", "--", "-D", "warnings"]);
    let clippy_err = String::from_utf8_lossy(&clippy.stderr);
    if clippy_err.contains("no such command") {
        tests::tool_missing("clippy", clippy_err.trim());
    } else {
        assert!(
            clippy.status.success(),
            "clippy warns about generated code:\n{clippy_err}"
        );
    }
    let generated = std::fs::read_dir(tests::testbox_target().join("debug/build"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("out/migrations.rs"))
        .filter(|p| p.exists())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("9lives"))
        .expect("generated file");
    let code = std::fs::read_to_string(generated).unwrap();
    assert!(code.contains("SelfV2"), "Self is not a variant name:\n{code}");
    assert!(
        code.contains("AddEmailV5") && code.contains("AddEmailV6") && code.contains("AddEmailV3"),
        "{code}"
    );
    // Input only ever appears inside string literals (doc attributes and
    // constants), never as code.
    for line in code.lines().filter(|l| l.contains("evil") || l.contains("panic!")) {
        let t = line.trim_start();
        assert!(
            t.starts_with("#[doc = \"") || (t.starts_with("pub const ") && t.contains(": &str = \"")),
            "input outside a string literal: {line}"
        );
    }
    assert!(
        code.contains("pub const FN_EVIL: &str = \"*/ fn evil() {} /*\";"),
        "{code}"
    );
}

#[test]
fn testbox_renamed_runtime_dependency_with_runtime_path() {
    let pkg = testbox("renamed-runtime");
    let manifest = pkg
        .read("Cargo.toml")
        .replace("migrate-runtime = { path", "rt = { package = \"migrate-runtime\", path");
    assert!(
        manifest.contains("rt = { package") && manifest.contains("testbox-renamed-runtime"),
        "{manifest}"
    );
    pkg.write("Cargo.toml", &manifest);
    pkg.write(
        "build.rs",
        "fn main() -> Result<(), migrate_build::Error> {\n    migrate_build::Builder::new().runtime_path(\"::rt\").build()?;\n    Ok(())\n}\n",
    );
    pkg.write("src/main.rs", tests::MAIN_RS.replace("migrate_runtime::", "rt::"));
    write_users(&pkg);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let out = pkg.run(&["app.db"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("applied 1 create_users"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn builder_refuses_a_runtime_path_that_is_not_a_path() {
    let out = tests::scratch();
    let err = migrate_build::Builder::new()
        .package_dir(fixtures_dir().join("valid"))
        .out_dir(out.path())
        .runtime_path("::rt; fn evil() {}")
        .directives(std::io::sink())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("is not a path to the runtime crate"), "{err}");
}

/// The generated module of the package at `dir`, built without cargo.
fn generate(dir: &Path) -> String {
    let out = tests::scratch();
    let built = migrate_build::Builder::new()
        .package_dir(dir)
        .out_dir(out.path())
        .directives(std::io::sink())
        .build()
        .unwrap();
    std::fs::read_to_string(built.path).unwrap()
}

/// The constant `name` in module `module` of the generated schema.
fn schema_const(code: &str, module: &str, name: &str) -> Option<String> {
    let start = code.find(&format!("    pub mod {module} {{\n"))?;
    let body = &code[start..start + code[start..].find("\n    }\n")?];
    let line = body
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("pub const {name}: &str = ")))?;
    Some(line.split(" = ").nth(1)?.trim_end_matches(';').to_owned())
}

#[test]
fn a_later_table_never_takes_an_existing_schema_name() {
    let dir = tests::scratch();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("0001_users.sql"), "CREATE TABLE user_s (full_name TEXT);\n").unwrap();
    let code = generate(dir.path());
    assert_eq!(
        schema_const(&code, "user_s", "TABLE").as_deref(),
        Some("\"user_s\""),
        "{code}"
    );
    // `user-s` sorts before `user_s`, and `full name` comes first after the rebuild.
    std::fs::write(
        m.join("0002_more.sql"),
        "CREATE TABLE \"user-s\" (x);\n\
         CREATE TABLE new_user_s (\"full name\" TEXT, full_name TEXT);\n\
         INSERT INTO new_user_s (full_name) SELECT full_name FROM user_s;\n\
         DROP TABLE user_s;\n\
         ALTER TABLE new_user_s RENAME TO user_s;\n",
    )
    .unwrap();
    std::fs::write(m.join("0003_later.sql"), "ALTER TABLE \"user-s\" ADD COLUMN y;\n").unwrap();
    let code = generate(dir.path());
    assert_eq!(
        schema_const(&code, "user_s", "TABLE").as_deref(),
        Some("\"user_s\""),
        "{code}"
    );
    assert_eq!(
        schema_const(&code, "user_s_2", "TABLE").as_deref(),
        Some("\"user-s\""),
        "{code}"
    );
    assert_eq!(
        schema_const(&code, "user_s", "FULL_NAME").as_deref(),
        Some("\"full_name\""),
        "{code}"
    );
    assert_eq!(
        schema_const(&code, "user_s", "FULL_NAME_2").as_deref(),
        Some("\"full name\""),
        "{code}"
    );
}

#[test]
fn timestamp_versions_are_one_error_that_suggests_renumber_consecutive() {
    let text = report(&fixtures_dir().join("timestamp_versions"));
    assert_eq!(
        text,
        "1 problem in the migrations:\n  error: migrations: the versions look like timestamps (`migrations/20240101120000_a.up.sql`, sqlx/diesel style); cargo-migrate numbers migrations consecutively, 1, 2, 3, … (help: run `cargo migrate renumber --consecutive` to renumber them 0001, 0002, … in their current order)\n"
    );
}

#[test]
fn foreign_keys_off_in_a_transaction_is_a_warning_at_its_line() {
    let text = report(&fixtures_dir().join("pragma_foreign_keys_off"));
    assert!(text.starts_with("ok: 3 migrations\n"), "{text}");
    let warnings: Vec<_> = text.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0]
            .starts_with("warning: migrations/0002_rebuild_child.sql:2: `PRAGMA foreign_keys = OFF` does nothing here")
            && warnings[0].contains("-- migrate:no-transaction"),
        "{text}"
    );
}

#[test]
fn refinery_names_and_upper_case_extensions_get_a_rename() {
    let text = report(&fixtures_dir().join("other_conventions"));
    for expected in [
        "migrations/U1__create_users.sql: `U1__create_users.sql` is a Flyway-style undo migration",
        "(help: rename it to `0001_create_users.down.sql`)",
        "migrations/V1__create_users.sql: `V1__create_users.sql` is a refinery/Flyway-style name: cargo-migrate names migrations {version}_{name}.sql (help: rename it to `0001_create_users.sql`)",
        "migrations/V2__b.SQL: `V2__b.SQL` has an upper-case extension: migration files end in `.sql` (help: rename it to `0002_b.sql`)",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

/// The replay's warnings (here: a down that gives a table back with its
/// columns in another order) reach `cargo build` as `cargo::warning=` at
/// the down file with their hint, and `cargo migrate check` prints the same
/// line (both call `migrate_build::check`).
#[test]
fn replay_warnings_are_build_warnings_in_build_and_check_alike() {
    const EXPECTED: &str = "migrations/0002_drop_email.down.sql:1: down migration 2 `drop_email` gives back table `users` with its columns in another order: (id, email, name) before, (id, name, email) after (help: a down that re-adds a dropped column with ALTER TABLE … ADD COLUMN puts it last;";
    let fixture = fixtures_dir().join("down_reorders_columns");
    let sink = SharedBuf::default();
    let out = tests::scratch();
    let built = migrate_build::Builder::new()
        .package_dir(&fixture)
        .out_dir(out.path())
        .directives(sink.clone())
        .build()
        .unwrap();
    assert_eq!(built.warnings.len(), 1, "{:?}", built.warnings);
    let directives = sink.text();
    let warnings: Vec<_> = directives
        .lines()
        .filter_map(|l| l.strip_prefix("cargo::warning="))
        .collect();
    assert_eq!(warnings.len(), 1, "{directives}");
    assert!(warnings[0].starts_with(EXPECTED), "{directives}");

    let pkg = testbox("reordered-down");
    for name in ["0001_users.sql", "0002_drop_email.up.sql", "0002_drop_email.down.sql"] {
        pkg.write(
            &format!("migrations/{name}"),
            std::fs::read(fixture.join("migrations").join(name)).unwrap(),
        );
    }
    // Not --quiet: it would hide the build script's warnings.
    let out = pkg.cargo(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let from_build: Vec<_> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: testbox-reordered-down@0.0.0: "))
        .collect();
    let check = pkg.migrate().arg("check").output().unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{check_err}");
    let from_check: Vec<_> = check_err.lines().filter_map(|l| l.strip_prefix("warning: ")).collect();
    assert_eq!(from_build.len(), 1, "{stderr}");
    assert!(from_build[0].starts_with(EXPECTED), "{stderr}");
    assert_eq!(from_build, from_check, "cargo build and cargo migrate check disagree");
}

/// Issue 10, start-up drift: the generated code records each migration's
/// schema fingerprint, so an app refuses a database changed by hand; the
/// config's `drift` and `ignore` reach the generated `migrator()`.
#[test]
fn testbox_drift_refuses_a_hand_changed_database_unless_configured() {
    use migrate_runtime::rusqlite::Connection;
    let pkg = testbox("drift");
    write_users(&pkg);
    let run = |db: &str| {
        let out = pkg.run(&[db]);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let hand = |db: &str, sql: &str| {
        Connection::open(pkg.path().join(db))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    };
    let (ok, out) = run("app.db");
    assert!(ok && out.contains("applied 1 create_users"), "{out}");
    let (ok, out) = run("app.db");
    assert!(ok, "a clean database starts: {out}");

    hand("app.db", "ALTER TABLE users ADD COLUMN nickname TEXT;");
    let (ok, out) = run("app.db");
    assert!(!ok, "a drifted database must be refused: {out}");
    assert!(out.contains("column nickname added"), "{out}");
    assert!(out.contains("cargo migrate diff"), "{out}");

    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\ndrift = \"warn\"\n"),
    );
    let (ok, out) = run("app.db");
    assert!(ok, "drift = \"warn\" starts: {out}");

    // A table added by hand, left out by `ignore`.
    pkg.write("Cargo.toml", format!("{manifest}\n[package.metadata.migrate]\n"));
    let (ok, out) = run("other.db");
    assert!(ok, "{out}");
    hand("other.db", "CREATE TABLE cache_pages (k TEXT PRIMARY KEY, v BLOB);");
    let (ok, out) = run("other.db");
    assert!(!ok && out.contains("cache_pages"), "{out}");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nignore = [\"cache_*\"]\n"),
    );
    let (ok, out) = run("other.db");
    assert!(ok, "ignore = [\"cache_*\"] starts: {out}");
}

/// The runtime's `__migration!` takes an optional `schema:` last; code
/// generated before it existed (no `schema:`) still compiles.
#[test]
fn migration_macro_with_and_without_a_schema_fingerprint() {
    static WITHOUT: migrate_runtime::Migration = migrate_runtime::__migration! {
        version: 1,
        name: "a",
        checksum: "0000000000000000000000000000000000000000000000000000000000000000",
        up: "CREATE TABLE a (x);",
        up_file: "migrations/0001_a.up.sql",
        up_no_transaction: false,
        down: "DROP TABLE a;",
        down_file: "migrations/0001_a.down.sql",
        down_no_transaction: false,
    };
    static WITH: migrate_runtime::Migration = migrate_runtime::__migration! {
        version: 2,
        name: "b",
        checksum: "0000000000000000000000000000000000000000000000000000000000000000",
        up: "CREATE TABLE b (x);",
        up_file: "migrations/0002_b.sql",
        up_no_transaction: false,
        schema: "ab",
    };
    assert_eq!(WITHOUT.schema_fingerprint(), None);
    assert!(WITHOUT.down().is_some());
    assert_eq!(WITH.schema_fingerprint(), Some("ab"));
    assert!(WITH.down().is_none());
}

// ---- the schema snapshot (issue 10) ----

/// A package in a scratch directory with two migrations and
/// `snapshot = "migrations/schema.sql"`.
fn snapshot_package() -> (tempfile::TempDir, Config) {
    let dir = tests::scratch();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        m.join("0002_email.sql"),
        "ALTER TABLE users ADD COLUMN email TEXT;\nCREATE INDEX users_email ON users (email);\n",
    )
    .unwrap();
    let config = Config::from_manifest_str(
        "[package]\nname = \"x\"\n[package.metadata.migrate]\nsnapshot = \"migrations/schema.sql\"\n",
        Path::new("Cargo.toml"),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn snapshot_fresh_crlf_stale_and_missing() {
    let (dir, config) = snapshot_package();
    let snapshot = dir.path().join("migrations/schema.sql");
    // Missing: an error, and nothing is written.
    let e = check(dir.path(), &config).unwrap_err();
    assert_eq!(
        e.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["migrations/schema.sql: schema snapshot is missing (help: run `cargo migrate schema --write` to create it)"]
    );
    assert!(!snapshot.exists(), "the check never writes the snapshot");

    // Fresh: what schema_snapshot returns, also with CRLF line endings; the
    // file in migrations/ is not taken for a migration.
    let text = migrate_build::schema_snapshot(dir.path(), &config).unwrap();
    assert_eq!(
        text,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);\n\nCREATE INDEX users_email ON users (email);\n"
    );
    std::fs::write(&snapshot, &text).unwrap();
    let checked = check(dir.path(), &config).unwrap();
    assert_eq!(checked.migrations.len(), 2);
    assert_eq!(checked.schema_sql, text);
    std::fs::write(&snapshot, text.replace('\n', "\r\n")).unwrap();
    check(dir.path(), &config).expect("CRLF line endings are not a difference");
    std::fs::write(&snapshot, format!("{}\n\n", text.trim_end())).unwrap();
    check(dir.path(), &config).expect("newlines at the end are not a difference");
    std::fs::write(&snapshot, text.trim_end()).unwrap();
    check(dir.path(), &config).expect("nor is a missing last newline");

    // Stale: a migration changed the schema; the first differing line is named.
    std::fs::write(
        dir.path().join("migrations/0003_age.sql"),
        "ALTER TABLE users ADD COLUMN age INTEGER;\n",
    )
    .unwrap();
    let e = check(dir.path(), &config).unwrap_err();
    let problems: Vec<_> = e.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "migrations/schema.sql:1: schema snapshot is stale: line 1 reads `…NOT NULL, email TEXT);`, the migrations make `…NOT NULL, email TEXT, age INTEGER);` (help: run `cargo migrate schema --write`)"
        ]
    );
    // schema_snapshot still answers (for `schema --write`), with the new column.
    let text = migrate_build::schema_snapshot(dir.path(), &config).unwrap();
    assert!(text.contains("email TEXT, age INTEGER)"), "{text}");
    std::fs::write(&snapshot, &text).unwrap();
    check(dir.path(), &config).unwrap();
    // A line the migrations do not make.
    std::fs::write(&snapshot, format!("{text}\nCREATE TABLE extra (x);\n")).unwrap();
    let e = check(dir.path(), &config).unwrap_err();
    assert!(
        e.to_string()
            .contains("migrations/schema.sql:5: schema snapshot is stale: line 5 `CREATE TABLE extra (x);` is not in the schema the migrations make"),
        "{e}"
    );
    // Without `snapshot`, schema.sql in migrations/ is a misnamed migration again.
    let e = check(dir.path(), &Config::default()).unwrap_err();
    assert!(e.to_string().contains("migrations/schema.sql"), "{e}");
}

#[test]
fn testbox_snapshot_fails_the_build_when_stale_and_passes_when_fresh() {
    let pkg = testbox("snapshot");
    write_users(&pkg);
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nsnapshot = \"migrations/schema.sql\"\n"),
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok, "a missing snapshot fails the build");
    assert!(
        stderr.contains(
            "migrations/schema.sql: schema snapshot is missing (help: run `cargo migrate schema --write` to create it)"
        ),
        "{stderr}"
    );
    assert!(
        !pkg.path().join("migrations/schema.sql").exists(),
        "the build never writes it"
    );
    let config = Config::from_manifest(&pkg.path().join("Cargo.toml")).unwrap();
    pkg.write(
        "migrations/schema.sql",
        migrate_build::schema_snapshot(pkg.path(), &config).unwrap(),
    );
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    // A new migration without the snapshot updated: the build reruns and fails.
    pkg.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok);
    assert!(
        stderr.contains(
            "migrations/schema.sql:4: schema snapshot is stale: line 4 reads `);`, the migrations make `, email TEXT);`"
        ) && stderr.contains("(help: run `cargo migrate schema --write`)"),
        "{stderr}"
    );
    // `cargo migrate check` says the same.
    let check = pkg.migrate().arg("check").output().unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{check_err}");
    assert!(
        check_err.contains("migrations/schema.sql:4: schema snapshot is stale"),
        "{check_err}"
    );
    // Updated: passes; editing only the snapshot also reruns the build.
    let fresh = migrate_build::schema_snapshot(pkg.path(), &config).unwrap();
    pkg.write("migrations/schema.sql", &fresh);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    pkg.write("migrations/schema.sql", format!("{fresh}-- edited\n"));
    let (ok, _) = pkg.build();
    assert!(!ok, "an edit of the snapshot alone reruns the check");
}

/// Migrations that call a SQL function the app registers on its
/// connection: the build's replay cannot run them until `functions` names
/// the function (a stub is registered), and `cargo migrate check`, which
/// shares the checks, agrees.
#[test]
fn testbox_app_defined_function_needs_the_functions_key() {
    let pkg = testbox("functions");
    write_users(&pkg);
    pkg.write(
        "migrations/0002_normalize_names.sql",
        "UPDATE users SET name = normalize(name);\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "migrations/0002_normalize_names.sql:1: up migration 2 `normalize_names` fails: no such function: normalize"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("list it in `functions`"), "{stderr}");
    let out = pkg.migrate().arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("no such function: normalize"), "{text}");

    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!(
            "{manifest}\n[package.metadata.migrate]\nfunctions = [\"normalize/1\", \"bin2b64/1\", \"json_patch_x\"]\n"
        ),
    );
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let out = pkg.migrate().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A bad entry is a config error at its line.
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nfunctions = [\n  \"normalize/x\",\n]\n"),
    );
    let out = pkg.migrate().arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Cargo.toml:"), "{text}");
    assert!(
        text.contains("function \"normalize/x\" has no valid argument count"),
        "{text}"
    );
}

/// `functions` stubs return their first argument; `Builder::replay_setup`
/// registers a real implementation instead, which the replay then runs.
#[test]
fn functions_stub_and_builder_replay_setup() {
    let dir = tests::scratch();
    let out = tests::scratch();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/0001_a.sql"),
        "CREATE TABLE a (x TEXT NOT NULL);\nINSERT INTO a VALUES (normalize(' Hi '));\n",
    )
    .unwrap();
    // The CHECK holds only for the real normalize, not for the stub.
    std::fs::write(
        dir.path().join("migrations/0002_b.sql"),
        "CREATE TABLE b (y CHECK (y = 'hi'));\nINSERT INTO b SELECT x FROM a;\n",
    )
    .unwrap();
    let builder = || {
        migrate_build::Builder::new()
            .package_dir(dir.path())
            .out_dir(out.path())
            .directives(std::io::sink())
    };
    let e = builder().build().unwrap_err();
    assert!(e.to_string().contains("no such function: normalize"), "{e}");
    let mut config = Config::default();
    config.functions = vec!["normalize/1".to_owned()];
    let e = builder().config(config.clone()).build().unwrap_err();
    assert!(
        e.to_string().contains("CHECK constraint failed"),
        "the stub returns its argument unchanged: {e}"
    );
    builder()
        .config(config)
        .replay_setup(|conn| {
            use migrate_build::rusqlite::functions::FunctionFlags;
            conn.create_scalar_function(
                "normalize",
                1,
                FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
                |ctx| Ok(ctx.get::<String>(0)?.trim().to_lowercase()),
            )
        })
        .build()
        .unwrap();
    // Without the key, the Builder's function alone is enough.
    builder()
        .replay_setup(|conn| {
            conn.create_scalar_function(
                "normalize",
                1,
                migrate_build::rusqlite::functions::FunctionFlags::SQLITE_UTF8,
                |ctx| Ok(ctx.get::<String>(0)?.trim().to_lowercase()),
            )
        })
        .build()
        .unwrap();
}
