//! A package that keeps one migrations directory per backend, as an app
//! that runs on SQLite and on PostgreSQL does (vaultwarden keeps
//! `migrations/sqlite` and `migrations/postgresql`): the build checks both
//! and generates a module for each, `cargo migrate new` and `check` work on
//! both, and the other commands work on the backend of the database they
//! are given.

use std::process::Command;

use tests::pg_database;

const MAIN_RS: &str = r#"mod sqlite {
    include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));
}
mod pg {
    include!(concat!(env!("OUT_DIR"), "/migrations_postgres.rs"));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (kind, target) = (args.next().expect("kind"), args.next().expect("target"));
    let report = if kind == "sqlite" {
        let mut conn = migrate_runtime::rusqlite::Connection::open(&target).expect("open");
        sqlite::apply(&mut conn)
    } else {
        use migrate_runtime::postgres::{Client, NoTls};
        let mut client = Client::connect(&target, NoTls).expect("connect");
        pg::apply(&mut client)
    };
    match report {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    println!("columns: {} / {}", sqlite::schema::users::EMAIL, pg::schema::users::EMAIL);
}
"#;

fn package() -> tests::Package {
    let pkg = tests::Package::named("two-backends");
    let ws = tests::workspace_dir();
    pkg.write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"testbox-two-backends\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dependencies]\n\
             migrate-runtime = {{ path = {:?}, features = [\"postgres\"] }}\n\n\
             [build-dependencies]\nmigrate-build = {{ path = {:?} }}\n\n\
             [package.metadata.migrate]\nlock_file = true\n\n\
             [package.metadata.migrate.sqlite]\n\n\
             [package.metadata.migrate.postgres]\ndir = \"migrations/postgresql\"\nsnapshot = \"migrations/postgresql/schema.sql\"\n",
            ws.join("migrate-runtime").display().to_string(),
            ws.join("migrate-build").display().to_string(),
        ),
    );
    pkg.write("src/main.rs", MAIN_RS);
    for dir in ["migrations/sqlite", "migrations/postgresql"] {
        std::fs::create_dir_all(pkg.path().join(dir)).unwrap();
    }
    pkg
}

fn migrate(pkg: &tests::Package, args: &[&str]) -> (i32, String, String) {
    let out = pkg
        .migrate()
        .args(args)
        .env_remove("MIGRATE_CHECK_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_directory_per_backend_is_built_created_checked_and_applied_each_on_its_own_database() {
    let Some(db) = pg_database!() else { return };
    let pkg = package();

    // `new` writes the migration in both directories (and both lock files).
    let (code, out, err) = migrate(&pkg, &["new", "create_users"]);
    assert_eq!(code, 0, "{err}");
    for file in [
        "migrations/sqlite/0001_create_users.up.sql",
        "migrations/postgresql/0001_create_users.up.sql",
    ] {
        assert!(pkg.path().join(file).exists(), "{file}: {out}{err}");
        assert!(format!("{out}{err}").contains(file), "{out}{err}");
    }
    pkg.write(
        "migrations/sqlite/0001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
    );
    pkg.write("migrations/sqlite/0001_create_users.down.sql", "DROP TABLE users;\n");
    pkg.write(
        "migrations/postgresql/0001_create_users.up.sql",
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);\n",
    );
    pkg.write(
        "migrations/postgresql/0001_create_users.down.sql",
        "DROP TABLE users;\n",
    );
    let (code, _, err) = migrate(&pkg, &["lock"]);
    assert_eq!(code, 0, "{err}");
    let check = [("MIGRATE_CHECK_DATABASE_URL", db.url.as_str())];
    let out = pkg
        .migrate()
        .args(["schema", "--write", "--backend", "postgres"])
        .envs(check)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The build checks both directories and writes a module for each.
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let exe = pkg.binary();
    let app = |kind: &str, target: &str| {
        let out = Command::new(&exe).args([kind, target]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sqlite_db = pkg.path().join("app.db");
    let out = app("sqlite", sqlite_db.to_str().unwrap());
    assert!(out.contains("applied 1 create_users"), "{out}");
    assert!(out.contains("columns: email / email"), "{out}");
    let out = app("postgres", &db.url);
    assert!(out.contains("applied 1 create_users"), "{out}");

    // A command on a database works on that database's migrations; with
    // none, it says how to choose.
    let (code, _, err) = migrate(&pkg, &["status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "this package keeps migrations for sqlite (migrations/sqlite) and postgres (migrations/postgresql); choose which with --backend sqlite|postgres"
        ),
        "{err}"
    );
    let (code, out, err) = migrate(&pkg, &["status", "--database", "sqlite:app.db"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0001") && out.contains("applied"), "{out}");
    let (code, out, err) = migrate(&pkg, &["status", "--database", &db.url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0001") && out.contains("applied"), "{out}");

    // A second migration for PostgreSQL only, with a dollar quote left
    // open: `check` and the build name the file; SQLite's still pass.
    pkg.write(
        "migrations/postgresql/0002_touch.sql",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN NEW;\nEND;\n",
    );
    let (code, _, err) = migrate(&pkg, &["check"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("migrations/postgresql/0002_touch.sql:1: a $$ dollar quote $$ that is never closed"),
        "{err}"
    );
    let (code, _, err) = migrate(&pkg, &["check", "--backend", "sqlite"]);
    assert_eq!(code, 0, "{err}");
    let (ok, stderr) = pkg.build();
    assert!(!ok);
    assert!(stderr.contains("migrations/postgresql/0002_touch.sql:1:"), "{stderr}");
    let (code, _, err) = migrate(&pkg, &["status", "--backend", "mysql"]);
    assert_eq!(code, 2, "{err}");
    // PostgreSQL's migrations are never run on an SQLite file, nor the
    // other way round.
    let before = std::fs::read(&sqlite_db).unwrap();
    let (code, _, err) = migrate(&pkg, &["up", "--backend", "postgres", "--database", "sqlite:app.db"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "error: the database app.db is an SQLite database, and the migrations in migrations/postgresql are for PostgreSQL (give a PostgreSQL database, or choose its migrations with --backend sqlite); nothing was done"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&sqlite_db).unwrap(), before);
    let (code, _, err) = migrate(&pkg, &["status", "--backend", "sqlite", "--database", &db.url]);
    assert_eq!(code, 1);
    assert!(err.contains("is a PostgreSQL database, and the migrations in migrations/sqlite are for SQLite"), "{err}");
}
