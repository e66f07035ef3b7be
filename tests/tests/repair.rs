//! `cargo migrate repair` (issue 14): a comment-only edit of an applied
//! migration is re-stamped and recorded, a changed statement is refused at
//! its line, on SQLite and PostgreSQL; the applied text comes from git.

use migrate_runtime::rusqlite::Connection;
use tests::pg_database;

use crate::team::Repo;

/// A repository with two committed migrations, applied to `app.db`.
fn applied() -> Repo {
    let repo = Repo::new();
    let manifest = repo.pkg.read("Cargo.toml") + "database = \"sqlite:app.db\"\n";
    repo.pkg.write("Cargo.toml", manifest);
    repo.add(
        "create users",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        "DROP TABLE users;\n",
    );
    repo.add(
        "add email",
        "ALTER TABLE users ADD email TEXT;\n",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    repo.commit_all("two migrations");
    repo.ok(&["up"]);
    repo
}

/// `(version, checksum, repaired)` of each row of `_migrations`.
fn rows(path: &std::path::Path) -> Vec<(i64, String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let has = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('_migrations') WHERE name = 'repaired'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let sql = if has == 1 {
        "SELECT version, checksum, repaired FROM _migrations ORDER BY version"
    } else {
        "SELECT version, checksum, NULL FROM _migrations ORDER BY version"
    };
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const REFORMATTED: &str =
    "-- The app's users.\ncreate table users (\n    id INTEGER PRIMARY KEY, -- the key\n    name TEXT\n);\n";

#[test]
fn repair_accepts_a_comment_only_edit_and_records_it() {
    let repo = applied();
    let db = repo.pkg.path().join("app.db");
    let before = rows(&db);
    repo.pkg.write("migrations/0001_create_users.up.sql", REFORMATTED);
    let (code, _, e) = repo.migrate(&["up"]);
    assert_eq!(code, 1);
    assert!(e.contains("was changed after it was applied"), "{e}");

    let (_, e) = repo.ok(&["repair", "--dry-run"]);
    assert!(
        e.starts_with(
            "would repair 0001 create_users: same statements, only comments or white space changed; checksum "
        ),
        "{e}"
    );
    assert!(e.ends_with("dry run: nothing was changed\n"), "{e}");
    assert_eq!(rows(&db), before);

    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1, "the lock file sees the edit: {e}");
    let (_, e) = repo.ok(&["repair"]);
    assert!(e.starts_with("repaired 0001 create_users: same statements"), "{e}");
    assert!(
        e.contains("updated migrations/migrate.lock for the repaired migrations"),
        "{e}"
    );
    repo.ok(&["check"]);
    let after = rows(&db);
    let new = migrate_runtime::Checksum::of(REFORMATTED).to_string();
    assert_eq!(after[0].1, new);
    let record = after[0].2.clone().expect("the repair is recorded");
    let (old, time) = record.split_once(' ').unwrap();
    assert_eq!(old, before[0].1);
    assert!(time.ends_with('Z') && time.len() == 24, "{record}");
    assert_eq!(after[1], (2, before[1].1.clone(), None));

    // The runtime and the CLI accept the database again, and go on.
    let (o, _) = repo.ok(&["status"]);
    assert!(o.contains("applied") && !o.contains("modified"), "{o}");
    repo.add(
        "add phone",
        "ALTER TABLE users ADD phone TEXT;\n",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    repo.ok(&["up"]);
    assert_eq!(rows(&db).len(), 3);
    let (_, e) = repo.ok(&["repair"]);
    assert_eq!(
        e,
        "nothing to repair: the 3 migrations app.db applied match their files\n"
    );
}

#[test]
fn repair_refuses_a_changed_statement_naming_it() {
    let repo = applied();
    let db = repo.pkg.path().join("app.db");
    let before = rows(&db);
    repo.pkg.write(
        "migrations/0002_add_email.up.sql",
        "-- Emails.\nALTER TABLE users ADD email TEXT NOT NULL DEFAULT '';\n",
    );
    let (code, o, e) = repo.migrate(&["repair"]);
    assert_eq!((code, o.as_str()), (1, ""));
    assert_eq!(
        e,
        "error: migrations/0002_add_email.up.sql:2: migration 0002 add_email changed more than comments and white space since it was applied: statement 1 differs (now `ALTER TABLE users ADD email TEXT NOT NULL DEFAULT '';`, applied `ALTER TABLE users ADD email TEXT;`); restore the applied text and put the change in a new migration. Nothing was repaired\n"
    );
    // Also when another migration could be repaired: all or nothing.
    repo.pkg.write("migrations/0001_create_users.up.sql", REFORMATTED);
    let (code, _, _) = repo.migrate(&["repair"]);
    assert_eq!(code, 1);
    assert_eq!(rows(&db), before);
}

#[test]
fn repair_needs_a_migrated_database_and_the_applied_text() {
    let repo = applied();
    let (code, _, e) = repo.migrate(&["repair", "--database", "sqlite:none.db"]);
    assert_eq!(code, 1);
    assert_eq!(
        e,
        "error: the database file none.db does not exist, so there is nothing to repair; check the path (--database, DATABASE_URL or database in [package.metadata.migrate])\n"
    );
    assert!(!repo.pkg.path().join("none.db").exists());
    Connection::open(repo.pkg.path().join("other.db"))
        .unwrap()
        .execute_batch("CREATE TABLE notes (x);")
        .unwrap();
    let (code, _, e) = repo.migrate(&["repair", "--database", "sqlite:other.db"]);
    assert_eq!(code, 1);
    assert!(
        e.starts_with("error: other.db has no applied migration (its tracking table `_migrations` is missing or empty), so there is nothing to repair;"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");

    // Applied from a text git never saw: nothing to compare with.
    repo.pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD email TEXT; -- x\n",
    );
    repo.ok(&["redo", "--allow-modified"]);
    repo.pkg.write(
        "migrations/0002_add_email.up.sql",
        "ALTER TABLE users ADD email TEXT;\n",
    );
    let (code, _, e) = repo.migrate(&["repair"]);
    assert_eq!(code, 1);
    assert!(
        e.starts_with("error: migrations/0002_add_email.up.sql: the text the database applied (checksum "),
        "{e}"
    );
    assert!(e.contains("is not in the file's git history (1 version)"), "{e}");
}

#[test]
fn repair_on_postgres() {
    let Some(db) = pg_database!() else { return };
    let repo = Repo::new();
    repo.add(
        "create users",
        "CREATE TABLE \"Users\" (id bigint PRIMARY KEY, name text);\n",
        "DROP TABLE \"Users\";\n",
    );
    repo.add(
        "add fn",
        "CREATE FUNCTION hello() RETURNS text AS $$ SELECT 'hi  there' $$ LANGUAGE sql;\n",
        "DROP FUNCTION hello();\n",
    );
    repo.commit_all("two migrations");
    let url = db.url.as_str();
    repo.ok(&["up", "--database", url]);
    // Cosmetic: comments and layout, outside the dollar quote.
    repo.pkg.write(
        "migrations/0001_create_users.up.sql",
        "-- Users.\nCREATE TABLE \"Users\" (\n  id bigint PRIMARY KEY,\n  name text\n);\n",
    );
    repo.pkg.write(
        "migrations/0002_add_fn.up.sql",
        "-- Says hi.\nCREATE FUNCTION hello() RETURNS text AS $$ SELECT 'hi  there' $$ LANGUAGE sql;\n",
    );
    let (_, e) = repo.ok(&["repair", "--database", url]);
    assert!(e.contains("repaired 0001 create_users"), "{e}");
    assert!(e.contains("repaired 0002 add_fn"), "{e}");
    let mut client = db.client();
    let rows = client
        .query("SELECT version, repaired FROM _migrations ORDER BY version", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let repaired: String = row.get(1);
        assert_eq!(repaired.split(' ').next().unwrap().len(), 64, "{repaired}");
    }
    let (o, _) = repo.ok(&["status", "--database", url]);
    assert!(!o.contains("modified"), "{o}");
    // The letter case of a quoted name matters on PostgreSQL, and so does
    // white space inside a dollar-quoted body.
    repo.commit_all("reformatted");
    repo.pkg.write(
        "migrations/0002_add_fn.up.sql",
        "CREATE FUNCTION hello() RETURNS text AS $$ SELECT 'hi there' $$ LANGUAGE sql;\n",
    );
    let (code, _, e) = repo.migrate(&["repair", "--database", url]);
    assert_eq!(code, 1, "{e}");
    assert!(
        e.contains("migrations/0002_add_fn.up.sql:1: migration 0002 add_fn changed more than comments"),
        "{e}"
    );
}
