//! The rules on pairs of schemas, without a build.

use migrate_runtime::model::{Filter, Model};

use super::rules::{Input, all};
use super::sql::Statement;

/// The rule ids and lines that fire on `up` run after `setup`.
fn lint(setup: &str, up: &str) -> Vec<(&'static str, usize)> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(setup).unwrap();
    let filter = Filter::new("_migrations");
    let before = Model::read(&conn, &filter).unwrap();
    conn.execute_batch(up).unwrap();
    let after = Model::read(&conn, &filter).unwrap();
    let statements: Vec<Statement> = migrate_runtime::statements(up)
        .into_iter()
        .map(|(line, text)| Statement::new(line, text))
        .collect();
    all(&Input {
        statements: &statements,
        before: &before,
        after: &after,
    })
    .into_iter()
    .map(|f| (f.rule, f.line))
    .collect()
}

const T: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INT);";

#[test]
fn each_rule_fires_where_it_should() {
    assert_eq!(lint(T, "SELECT 1;\nDROP TABLE t;"), [("MS001", 2)]);
    assert_eq!(lint(T, "ALTER TABLE t DROP COLUMN b;"), [("MS002", 1)]);
    assert_eq!(lint(T, "ALTER TABLE t RENAME TO u;"), [("MS003", 1)]);
    assert_eq!(lint(T, "ALTER TABLE t RENAME COLUMN a TO c;"), [("MS003", 1)]);
    assert_eq!(lint(T, "CREATE UNIQUE INDEX t_a ON t (a);"), [("MS004", 1)]);
    assert_eq!(lint(T, "DELETE FROM t;"), [("MS008", 1)]);
    assert_eq!(
        lint(T, "ALTER TABLE t ADD COLUMN c;\nUPDATE t SET c = a WHERE c IS NULL;"),
        [("MS009", 2)]
    );
    assert_eq!(
        lint(
            &format!("{T}\nCREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p_id REFERENCES p(id));"),
            "DROP TABLE p;"
        ),
        [("MS001", 1), ("MS010", 1)]
    );
}

#[test]
fn a_rebuild_is_judged_by_what_it_changes() {
    let rebuild = |columns: &str, select: &str| {
        format!(
            "CREATE TABLE t_new ({columns});\nINSERT INTO t_new SELECT {select} FROM t;\nDROP TABLE t;\nALTER TABLE t_new RENAME TO t;"
        )
    };
    // The same columns: nothing fires.
    assert_eq!(lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT, b INT", "*")), []);
    assert_eq!(
        lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT", "id, a")),
        [("MS002", 3)]
    );
    assert_eq!(
        lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT NOT NULL, b INT", "*")),
        [("MS005", 1)]
    );
    assert_eq!(
        lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT UNIQUE, b INT", "*")),
        [("MS004", 1)]
    );
    assert_eq!(
        lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT, b TEXT", "*")),
        [("MS007", 1)]
    );
    assert_eq!(
        lint(T, &rebuild("id INTEGER PRIMARY KEY, a TEXT, b INT CHECK (b > 0)", "*")),
        [("MS006", 1)]
    );
}

#[test]
fn new_tables_and_filtered_writes_are_quiet() {
    assert_eq!(lint("", "CREATE TABLE n (x NOT NULL UNIQUE);\nDELETE FROM n;"), []);
    assert_eq!(lint(T, "UPDATE t SET a = 'x' WHERE a IS NULL;"), []);
    assert_eq!(
        lint(T, "ALTER TABLE t ADD COLUMN c TEXT;\nCREATE UNIQUE INDEX t_c ON t (c);"),
        []
    );
}
