//! `cargo migrate squash --to N` (issue 14): one baseline for migrations
//! 1..=N, and an app built from the squashed set meeting databases at 0,
//! N−1, N and beyond.

use migrate_runtime::model::{Filter, Model};
use migrate_runtime::rusqlite::Connection;

use crate::team::Repo;

/// Migrations 1 to 4 (an index, a view, a foreign key, a table rebuild),
/// committed, with `lock_file = true`.
fn four() -> Repo {
    let repo = Repo::new();
    let pkg = &repo.pkg;
    pkg.write(
        "migrations/0001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    pkg.write("migrations/0001_create_users.down.sql", "DROP TABLE users;\n");
    pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD email TEXT;\nCREATE UNIQUE INDEX users_email ON users (email);\n",
    );
    pkg.write(
        "migrations/0002_add_email.down.sql",
        "DROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;\n",
    );
    pkg.write(
        "migrations/0003_create_teams.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY, owner INTEGER REFERENCES users (id) ON DELETE CASCADE);\n\
         CREATE VIEW team_owners AS SELECT t.id, u.name FROM teams t JOIN users u ON u.id = t.owner;\n\
         CREATE TRIGGER users_name_trim AFTER UPDATE OF name ON users BEGIN UPDATE users SET name = trim(name) WHERE id = new.id; END;\n",
    );
    pkg.write(
        "migrations/0004_add_phone.up.sql",
        "ALTER TABLE users ADD phone TEXT;\n",
    );
    pkg.write(
        "migrations/0004_add_phone.down.sql",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    repo.ok(&["lock"]);
    repo.commit_all("four migrations");
    repo
}

/// The names of the files in `dir`, sorted.
pub(crate) fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
}

fn model(path: &std::path::Path) -> Model {
    Model::read(&Connection::open(path).unwrap(), &Filter::new("_migrations")).unwrap()
}

#[test]
fn squash_keeps_every_database_working() {
    let repo = four();
    let dir = repo.pkg.path();
    // Databases made before the squash, by the CLI: at 2 (N−1), 3 (N), 4 (beyond).
    for (db, to) in [("at2.db", "2"), ("at3.db", "3"), ("at4.db", "4")] {
        repo.ok(&["up", "--to", to, "--database", &format!("sqlite:{db}")]);
    }
    let conn = Connection::open(dir.join("at3.db")).unwrap();
    conn.execute_batch("INSERT INTO users (name, email) VALUES ('ada', 'ada@example.com');")
        .unwrap();
    drop(conn);
    repo.ok(&["up", "--database", "sqlite:reference.db"]);

    let (o, e) = repo.ok(&["squash", "--to", "3"]);
    assert_eq!(o, "");
    assert!(
        e.starts_with("squashed 3 migrations (5 files) into migrations/0003_baseline.sql: databases at 0003 or later accept it as applied, a new database applies it, and one between 1 and 0002 is refused with the versions it lacks\n"),
        "{e}"
    );
    assert!(
        e.contains("wrote migrations/migrate.lock for the squashed migrations"),
        "{e}"
    );
    let baseline = repo.pkg.read("migrations/0003_baseline.sql");
    assert!(baseline.starts_with("-- migrate:squashes 1-3 "), "{baseline}");
    assert!(baseline.contains("CREATE VIEW team_owners"), "{baseline}");
    assert_eq!(
        file_names(&dir.join("migrations")),
        [
            "0003_baseline.sql",
            "0004_add_phone.down.sql",
            "0004_add_phone.up.sql",
            "migrate.lock"
        ]
    );
    let status = String::from_utf8(repo.git(&["status", "--porcelain", "migrations"]).stdout).unwrap();
    assert!(status.contains("D  migrations/0001_create_users.up.sql"), "{status}");
    assert!(status.contains("A  migrations/0003_baseline.sql"), "{status}");
    repo.ok(&["check"]);
    repo.commit_all("squash");

    // The app, built from the squashed set, meets each database.
    let (ok, e) = repo.pkg.build();
    assert!(ok, "{e}");
    let app = |db: &str| {
        let out = std::process::Command::new(repo.pkg.binary())
            .arg(dir.join(db))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // 0: a new database applies the baseline, then 4.
    let (ok, out) = app("new.db");
    assert!(ok, "{out}");
    assert!(out.contains("applied 3 baseline"), "{out}");
    assert!(out.contains("applied 4 add_phone"), "{out}");
    assert_eq!(model(&dir.join("new.db")), model(&dir.join("reference.db")));
    // N−1: refused, naming what it lacks; nothing changes.
    let before = model(&dir.join("at2.db"));
    let (ok, out) = app("at2.db");
    assert!(!ok);
    assert!(
        out.contains("error: migrations/0003_baseline.sql: migration 3 `baseline` replaces versions 1 to 3 (a squash), and the database applied only some of them: it lacks version 3;"),
        "{out}"
    );
    assert_eq!(model(&dir.join("at2.db")), before);
    // N: accepted as applied; 4 is applied on top; the rows stay.
    let (ok, out) = app("at3.db");
    assert!(ok, "{out}");
    assert!(
        out.contains("applied 4 add_phone") && !out.contains("baseline"),
        "{out}"
    );
    assert_eq!(model(&dir.join("at3.db")), model(&dir.join("reference.db")));
    let name: String = Connection::open(dir.join("at3.db"))
        .unwrap()
        .query_row("SELECT name FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "ada");
    // Beyond: nothing to do.
    let (ok, out) = app("at4.db");
    assert!(ok, "{out}");
    assert!(!out.contains("applied"), "{out}");
    // The CLI agrees.
    let (o, _) = repo.ok(&["status", "--database", "sqlite:at4.db"]);
    assert!(o.contains("0003     baseline   applied"), "{o}");
}

#[test]
fn squash_refuses_bad_targets_in_one_line() {
    let repo = four();
    let lock = repo.lock();
    for (args, expected) in [
        (
            vec!["squash", "--to", "9"],
            "error: --to 9 is beyond the newest migration, 0004 add_phone; squash up to a version on disk (`cargo migrate list`). Nothing was changed\n",
        ),
        (
            vec!["squash", "--to", "1"],
            "error: --to 1 would squash one migration into one: give a later version. Nothing was changed\n",
        ),
    ] {
        let (code, o, e) = repo.migrate(&args);
        assert_eq!((code, o.as_str(), e.as_str()), (1, "", expected));
    }
    let (_, _) = repo.ok(&["squash", "--to", "3"]);
    let (code, _, e) = repo.migrate(&["squash", "--to", "2"]);
    assert_eq!(code, 1);
    assert_eq!(
        e,
        "error: --to 2 is below the squash in migrations/0003_baseline.sql, which replaces versions 1 to 3; squash to a version above 3. Nothing was changed\n"
    );
    assert_ne!(repo.lock(), lock);
    // A baseline's directive edited by hand is a build error at its line.
    let baseline = repo.pkg.read("migrations/0003_baseline.sql");
    repo.pkg.write(
        "migrations/0003_baseline.sql",
        baseline.replacen("squashes 1-3", "squashes 1-2", 1),
    );
    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1);
    assert!(
        e.contains("migrations/0003_baseline.sql:1: `-- migrate:squashes 1-2` must replace the versions from 1 to the baseline's own version 3"),
        "{e}"
    );
    repo.pkg.write(
        "migrations/0003_baseline.sql",
        baseline.replacen("squashes 1-3", "squashes 1-3-", 1),
    );
    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1);
    assert!(
        e.contains("migrations/0003_baseline.sql:1: `-- migrate:squashes 1-3-"),
        "{e}"
    );
}

/// The example app's own case (issue 14: "the example app gets a test of
/// each case"): a copy of example-app (its `main.rs` and migrations 1 to
/// 5, never the real ones) squashed to 4, and the app built from the
/// squashed set meeting databases at 0, 3 (N−1), 4 (N) and 5 (beyond)
/// that the app built before the squash made.
#[test]
fn the_example_app_squashed_meets_databases_at_0_n_minus_1_n_and_beyond() {
    let app = tests::workspace_dir().join("example-app");
    let pkg = tests::Package::named("example-squash");
    let manifest = pkg.read("Cargo.toml").replacen(
        "[dependencies]\n",
        "[dependencies]\nclap = { version = \"4.5.53\", features = [\"derive\", \"env\"] }\n",
        1,
    );
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\ndir = \"migrations\"\nlint_from = 6\n"),
    );
    pkg.write("src/main.rs", std::fs::read(app.join("src/main.rs")).unwrap());
    let mut originals: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(app.join("migrations")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        pkg.write(
            &format!("migrations/{name}"),
            std::fs::read(app.join("migrations").join(&name)).unwrap(),
        );
        originals.push(name);
    }
    assert!(originals.len() >= 10, "{originals:?}");
    let keep = tests::scratch();
    let run = |binary: &std::path::Path, db: &str, args: &[&str]| {
        let out = std::process::Command::new(binary)
            .arg("--database")
            .arg(keep.path().join(db))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let migrate = |args: &[&str]| {
        let out = pkg.migrate().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        err
    };
    // Databases before the squash: at 3 and 4 by the CLI, at 5 by the app,
    // each with a recruit.
    let add = [
        "add",
        "--first-name",
        "Ada",
        "--surname",
        "Lovelace",
        "--id-number",
        "1815",
        "--email",
        "ada@example.com",
    ];
    for (db, to) in [("at3.db", "3"), ("at4.db", "4")] {
        let url = format!("sqlite:{}", keep.path().join(db).display());
        migrate(&["up", "--to", to, "--database", &url]);
    }
    let (ok, e) = pkg.build();
    assert!(ok, "{e}");
    let before_squash = keep.path().join("app-before");
    std::fs::copy(pkg.binary(), &before_squash).unwrap();
    let (ok, out) = run(&before_squash, "at5.db", &add);
    assert!(ok, "{out}");
    let conn = Connection::open(keep.path().join("at4.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO recruits (first_name, surname, id_number, personal_email_address) \
         VALUES ('Grace', 'Hopper', '1906', 'grace@example.com');",
    )
    .unwrap();
    drop(conn);
    let (ok, reference) = run(&before_squash, "reference.db", &["list"]);
    assert!(ok, "{reference}");

    let err = migrate(&["squash", "--to", "4"]);
    assert!(
        err.starts_with("squashed 4 migrations (8 files) into migrations/0004_baseline.sql"),
        "{err}"
    );
    for name in &originals {
        let squashed = !name.starts_with("0005");
        assert_eq!(!pkg.path().join("migrations").join(name).exists(), squashed, "{name}");
    }
    migrate(&["check"]);
    let (ok, e) = pkg.build();
    assert!(ok, "{e}");
    let after_squash = pkg.binary();

    // 0: a new database applies the baseline, then 5.
    let (ok, out) = run(&after_squash, "new.db", &add);
    assert!(ok, "{out}");
    assert!(
        out.contains("applied 0004 baseline") && out.contains("applied 0005 require_personal_email_address"),
        "{out}"
    );
    assert_eq!(
        model(&keep.path().join("new.db")),
        model(&keep.path().join("reference.db"))
    );
    // N−1: refused with the version it lacks; nothing changes.
    let before = model(&keep.path().join("at3.db"));
    let (ok, out) = run(&after_squash, "at3.db", &["list"]);
    assert!(!ok);
    assert!(
        out.contains("migration 4 `baseline` replaces versions 1 to 4 (a squash), and the database applied only some of them: it lacks version 4;"),
        "{out}"
    );
    assert_eq!(model(&keep.path().join("at3.db")), before);
    // N: accepted; 5 applied on top; the recruit is still there.
    let (ok, out) = run(&after_squash, "at4.db", &["list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("applied 0005 require_personal_email_address") && !out.contains("baseline"),
        "{out}"
    );
    assert!(out.contains("Grace"), "{out}");
    // Beyond: up to date, the recruit listed.
    let (ok, out) = run(&after_squash, "at5.db", &["list"]);
    assert!(ok, "{out}");
    assert!(out.contains("is up to date (version 5") && out.contains("Ada"), "{out}");
}

/// Squashing again over a squash: databases made from the original
/// migrations, from the first baseline, and new ones all meet the second
/// baseline as they should; `--to` at or below it is refused.
#[test]
fn a_squash_over_a_squash_accepts_databases_from_either_history() {
    let repo = four();
    let dir = repo.pkg.path();
    let url = |db: &str| format!("sqlite:{db}");
    // Before any squash: at 2 and at 4, from the original migrations.
    repo.ok(&["up", "--to", "2", "--database", &url("orig2.db")]);
    repo.ok(&["up", "--database", &url("orig4.db")]);
    repo.ok(&["squash", "--to", "2"]);
    repo.commit_all("first squash");
    // From the first baseline: at 3 and at 4.
    repo.ok(&["up", "--to", "3", "--database", &url("b1at3.db")]);
    repo.ok(&["up", "--database", &url("b1at4.db")]);
    repo.pkg.write(
        "migrations/0005_create_tags.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);\n",
    );
    repo.ok(&["lock"]);
    repo.commit_all("0005");

    let (_, e) = repo.ok(&["squash", "--to", "4"]);
    assert!(
        e.starts_with("squashed 3 migrations (4 files) into migrations/0004_baseline.sql"),
        "{e}"
    );
    let baseline = repo.pkg.read("migrations/0004_baseline.sql");
    let lines: Vec<&str> = baseline.lines().collect();
    assert!(lines[0].starts_with("-- migrate:squashes 1-4 "), "{baseline}");
    assert!(lines[1].starts_with("-- migrate:earlier-squash 1-2 "), "{baseline}");
    repo.ok(&["check"]);
    let (code, _, e) = repo.migrate(&["squash", "--to", "3"]);
    assert_eq!(code, 1);
    assert_eq!(
        e,
        "error: --to 3 is below the squash in migrations/0004_baseline.sql, which replaces versions 1 to 4; squash to a version above 4. Nothing was changed\n"
    );
    repo.commit_all("second squash");

    repo.ok(&["up", "--database", &url("reference.db")]);
    for db in ["orig4.db", "b1at4.db", "new.db"] {
        let (_, e) = repo.ok(&["up", "--database", &url(db)]);
        assert!(e.contains("applying 0005 create_tags … done"), "{db}: {e}");
        assert_eq!(model(&dir.join(db)), model(&dir.join("reference.db")), "{db}");
        let (o, _) = repo.ok(&["status", "--database", &url(db)]);
        let line = o.lines().find(|l| l.starts_with("0004 ")).unwrap_or_default();
        assert_eq!(
            line.split_whitespace().take(3).collect::<Vec<_>>(),
            ["0004", "baseline", "applied"],
            "{db}: {o}"
        );
    }
    for (db, lacks) in [
        ("orig2.db", "it lacks versions 3 to 4;"),
        ("b1at3.db", "it lacks version 4;"),
    ] {
        let before = model(&dir.join(db));
        let (code, _, e) = repo.migrate(&["up", "--database", &url(db)]);
        assert_eq!(code, 1, "{db}");
        assert!(
            e.contains("migration 4 `baseline` replaces versions 1 to 4 (a squash), and the database applied only some of them: ")
                && e.contains(lacks),
            "{db}: {e}"
        );
        assert_eq!(model(&dir.join(db)), before, "{db}");
    }
}
