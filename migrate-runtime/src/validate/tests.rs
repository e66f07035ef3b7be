use super::*;
use crate::Script;

fn no_tx(version: u64, name: &str, sql: String) -> Migration {
    Migration::new(
        version,
        name.to_owned(),
        Script::new(sql, format!("migrations/{version:04}_{name}.sql")).with_no_transaction(true),
    )
}

fn sql_error(e: Error) -> (String, usize, String, &'static str) {
    let Error::Validation { mut problems } = e else {
        panic!("{e}")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    let e = problems.remove(0);
    let advice = e.advice().unwrap_or_default();
    match e {
        Error::Sql {
            file, line, message, ..
        } => (file, line, message, advice),
        other => panic!("{other}"),
    }
}

/// The replay's fingerprints read again only the rows of the tables a
/// migration touched; debug builds check each against reading the
/// whole schema, so this replay fails if a change is missed: renames
/// that rewrite other objects, views, triggers, dropped columns and
/// tables, virtual tables.
#[test]
fn incremental_fingerprints_equal_full_reads() {
    let up = |v: u64, sql: &str| Migration::new(v, format!("m{v}"), Script::new(sql.to_owned(), format!("{v}.sql")));
    let migrations = [
        up(1, "CREATE TABLE a (id INTEGER PRIMARY KEY, x);"),
        up(2, "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id REFERENCES a (id));"),
        up(
            3,
            "CREATE VIEW v AS SELECT x FROM a; CREATE TRIGGER t AFTER INSERT ON b BEGIN UPDATE a SET x = 1; END;",
        ),
        up(4, "ALTER TABLE a RENAME TO a2;"),
        up(5, "ALTER TABLE a2 RENAME COLUMN x TO y;"),
        up(6, "CREATE INDEX b_a ON b (a_id); ALTER TABLE b ADD COLUMN z;"),
        up(7, "ALTER TABLE b DROP COLUMN z;"),
        up(8, "DROP VIEW v; DROP TRIGGER t;"),
        up(9, "CREATE VIRTUAL TABLE f USING fts5(body);"),
        up(10, "DROP TABLE f; DROP INDEX b_a;"),
        up(11, "CREATE TABLE c (id INTEGER PRIMARY KEY AUTOINCREMENT);"),
    ];
    let checked = Migrator::new(&migrations).check().unwrap();
    assert_eq!(checked.fingerprints.len(), migrations.len());
}

/// Absolute names in a temporary directory, and relative names, which
/// would land in the current directory (the package's, under cargo test).
#[test]
fn attach_and_vacuum_into_never_touch_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("side.db");
    let backup = dir.path().join("backup.db");
    let relative = ["replay_side_test.db", "replay_backup_test.db"];
    let migrations = [
        no_tx(
            1,
            "archive",
            format!(
                "ATTACH DATABASE '{}' AS side;\nCREATE TABLE side.archive (x);\nINSERT INTO side.archive VALUES (1);\nDETACH DATABASE side;\n",
                side.display()
            ),
        ),
        no_tx(
            2,
            "relative",
            format!(
                "ATTACH '{}' AS rel;\nCREATE TABLE rel.t (x);\nDETACH rel;\n",
                relative[0]
            ),
        ),
        no_tx(3, "backup", format!("VACUUM INTO '{}';\n", backup.display())),
        no_tx(4, "backup_here", format!("VACUUM INTO '{}';\n", relative[1])),
    ];
    // Twice: a file left by the first would fail the second
    // ("output file already exists").
    for _ in 0..2 {
        Migrator::new(&migrations).validate().unwrap();
    }
    assert!(!side.exists() && !backup.exists());
    assert_eq!(dir.path().read_dir().unwrap().count(), 0);
    for name in relative {
        assert!(!std::path::Path::new(name).exists(), "{name} was written");
    }
}

#[test]
fn statements_on_an_attached_database_are_still_checked() {
    let migrations = [no_tx(
        1,
        "archive",
        "ATTACH 'side.db' AS side;\nCREATE TABLE side.archive (x);\nINSERT INTO side.archive (y) VALUES (1);\n"
            .to_owned(),
    )];
    let (file, line, message, _) = sql_error(Migrator::new(&migrations).validate().unwrap_err());
    assert_eq!((file.as_str(), line), ("migrations/0001_archive.sql", 3));
    assert!(message.contains("no column named y"), "{message}");
    assert!(!std::path::Path::new("side.db").exists());
}

#[test]
fn a_uri_attach_is_refused_with_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("side.db");
    for sql in [
        format!("SELECT 1;\nATTACH 'file:{}?mode=rwc' AS side;\n", target.display()),
        format!(
            "SELECT 1;\nATTACH 'file:' || '{}?mode=rwc' AS side;\n",
            target.display()
        ),
        format!("SELECT 1;\nVACUUM INTO 'file:{}?mode=rwc';\n", target.display()),
    ] {
        let migrations = [no_tx(1, "side", sql.clone())];
        let (file, line, message, advice) = sql_error(Migrator::new(&migrations).validate().unwrap_err());
        assert_eq!((file.as_str(), line), ("migrations/0001_side.sql", 2), "{sql}");
        assert!(message.contains("cannot check this one"), "{message}");
        assert!(advice.contains("plain file name"), "{advice}");
        assert!(!target.exists(), "{sql}");
    }
}

fn file(version: u64, name: &str, kind: &str, sql: &str) -> Script {
    Script::new(sql.to_owned(), format!("migrations/{version:04}_{name}{kind}.sql"))
}

fn up_only(version: u64, name: &str, sql: &str) -> Migration {
    Migration::new(version, name.to_owned(), file(version, name, "", sql))
}

fn updown(version: u64, name: &str, up: &str, down: &str) -> Migration {
    Migration::new(version, name.to_owned(), file(version, name, ".up", up))
        .with_down(file(version, name, ".down", down))
}

fn problems(result: Result<Validated>) -> Vec<String> {
    match result {
        Err(Error::Validation { problems }) => problems.iter().map(ToString::to_string).collect(),
        other => panic!("{other:?}"),
    }
}

/// Issue 8, defect 2: the down of 0002 does not undo its up; 0003 is
/// right for the state after the plain up of 0002 and must pass.
#[test]
fn a_rejected_down_does_not_poison_the_migrations_after_it() {
    for no_transaction in [false, true] {
        let mut b = updown(2, "b", "DROP TABLE t;", "ALTER TABLE tmp RENAME TO t;");
        if no_transaction {
            let down = b.down().unwrap().clone().with_no_transaction(true);
            b = b.with_down(down);
        }
        let migrations = [
            up_only(1, "a", "CREATE TABLE t (x); CREATE TABLE tmp (x);"),
            b,
            up_only(3, "c", "ALTER TABLE tmp RENAME TO t;"),
            up_only(4, "d", "INSERT INTO t VALUES (1);"),
        ];
        let found = problems(Migrator::new(&migrations).check());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("migrations/0002_b.down.sql:1: down migration 2 `b` does not undo its up"),
            "{found:#?}"
        );
    }
}

#[test]
fn a_failing_down_or_second_up_does_not_poison_either() {
    let migrations = [
        up_only(1, "a", "CREATE TABLE t (x);"),
        // The down fails half way: its first statement must not stay.
        updown(2, "b", "CREATE TABLE u (x);", "DROP TABLE t; DROP TABLE nope;"),
        // Up cannot run again after down: u is left behind.
        updown(3, "c", "CREATE TABLE v (x); CREATE TABLE u2 (x);", "DROP TABLE v;"),
        up_only(
            4,
            "d",
            "INSERT INTO t VALUES (1); INSERT INTO u VALUES (1); INSERT INTO v VALUES (1);",
        ),
    ];
    let found = problems(Migrator::new(&migrations).check());
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].contains("0002_b.down.sql") && found[0].contains("no such table: nope"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("0003_c.down.sql") && found[1].contains("table `u2` was left behind"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("0003_c.up.sql") && found[2].contains("after its down script ran"),
        "{found:#?}"
    );
}

/// Issue 8: a down that re-adds a dropped column gives it back last.
#[test]
fn column_order_alone_is_a_warning_that_names_the_table() {
    let migrations = [
        up_only(
            1,
            "users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);",
        ),
        updown(
            2,
            "drop_email",
            "ALTER TABLE users DROP COLUMN email;",
            "ALTER TABLE users ADD COLUMN email TEXT;",
        ),
        up_only(3, "more", "INSERT INTO users (id, name) VALUES (1, 'x');"),
    ];
    let checked = Migrator::new(&migrations).check().unwrap();
    assert_eq!(checked.warnings.len(), 1);
    let w = checked.warnings[0].to_string();
    assert!(
        w.starts_with(
            "migrations/0002_drop_email.down.sql:1: down migration 2 `drop_email` gives back table `users` \
             with its columns in another order: (id, email, name) before, (id, name, email) after; a down that re-adds"
        ),
        "{w}"
    );
    // validate() accepts it too, and the final schema is the plain up's.
    let schema = Migrator::new(&migrations).validate().unwrap();
    let sql = schema.objects()[0].sql.as_deref().unwrap_or_default();
    assert!(!sql.contains("email"), "{sql}");
}

#[test]
fn a_real_column_difference_is_told_column_by_column() {
    let migrations = [
        up_only(
            1,
            "users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, x BLOB);",
        ),
        updown(
            2,
            "drop_email",
            "ALTER TABLE users DROP COLUMN email;",
            "ALTER TABLE users ADD COLUMN email INTEGER; ALTER TABLE users DROP COLUMN x;",
        ),
    ];
    let found = problems(Migrator::new(&migrations).check());
    assert_eq!(
        found,
        [
            "migrations/0002_drop_email.down.sql:1: down migration 2 `drop_email` does not undo its up: \
          column users.email: TEXT → INTEGER; column users.x missing; make the down script restore exactly the schema before the up"
        ]
    );
}
