//! The rules on pairs of schemas, without a build.

use migrate_runtime::model::{Filter, Model};

use super::rules::{Input, all};
use super::sql::Statement;

/// The rule ids and lines that fire on `up` run after `setup`.
fn lint(setup: &str, up: &str) -> Vec<(&'static str, usize)> {
    lint_phase(setup, up, None)
}

/// [`lint`] of a migration in `phase`.
fn lint_phase(setup: &str, up: &str, phase: Option<migrate_runtime::Phase>) -> Vec<(&'static str, usize)> {
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
    let findings = all(&Input {
        statements: &statements,
        before: &before,
        after: &after,
    });
    super::phase_findings(phase, &statements, findings)
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

/// [`lint`] of an expand migration.
fn lint_expand(setup: &str, up: &str) -> Vec<(&'static str, usize)> {
    lint_phase(setup, up, Some(migrate_runtime::Phase::Expand))
}

#[test]
fn an_expand_may_only_add() {
    // Additions: nothing.
    let adds = "ALTER TABLE t ADD COLUMN c TEXT;\nALTER TABLE t ADD COLUMN d INT NOT NULL DEFAULT 0;\n\
                CREATE INDEX t_a ON t (a);\nCREATE VIEW v AS SELECT a FROM t;\nCREATE TABLE u (x);\n\
                CREATE TRIGGER t_c AFTER UPDATE OF a ON t BEGIN UPDATE t SET c = new.a WHERE id = new.id; END;";
    assert_eq!(lint_expand(T, adds), []);
    // Removals and changes: MS011 where they are, once per line.
    assert_eq!(lint_expand(T, "SELECT 1;\nDROP TABLE t;"), [("MS011", 2)]);
    assert_eq!(lint_expand(T, "ALTER TABLE t DROP COLUMN b;"), [("MS011", 1)]);
    assert_eq!(lint_expand(T, "ALTER TABLE t RENAME COLUMN a TO c;"), [("MS011", 1)]);
    assert_eq!(
        lint_expand(&format!("{T}\nCREATE INDEX t_b ON t (b);"), "DROP INDEX t_b;"),
        [("MS011", 1)]
    );
    assert_eq!(lint_expand(T, "DELETE FROM t WHERE a IS NULL;"), [("MS011", 1)]);
    // A rebuild that makes a column NOT NULL and changes a type.
    let rebuild = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT);\n\
                   INSERT INTO t_new SELECT id, a, b FROM t;\nDROP TABLE t;\nALTER TABLE t_new RENAME TO t;";
    let found = lint_expand(T, rebuild);
    assert!(found.iter().all(|(rule, _)| *rule == "MS011"), "{found:?}");
    assert!(
        found.contains(&("MS011", 3)) && found.contains(&("MS011", 4)),
        "{found:?}"
    );
}

#[test]
fn a_contract_may_drop_and_rename() {
    let statements = [Statement::new(1, "ALTER TABLE t DROP COLUMN b;")];
    let finding = |rule| super::rules::Finding {
        rule,
        line: 1,
        message: String::new(),
    };
    let kept = super::phase_findings(
        Some(migrate_runtime::Phase::Contract),
        &statements,
        vec![finding("MS002"), finding("MS010")],
    );
    assert_eq!(kept.iter().map(|f| f.rule).collect::<Vec<_>>(), ["MS010"]);
}
