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
        no_transaction: false,
        broken_views: &super::broken_views(&conn, &after),
    });
    super::phase_findings(phase, &statements, findings, None)
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
        removes: None,
        rule,
        line: 1,
        message: String::new(),
    };
    let kept = super::phase_findings(
        Some(migrate_runtime::Phase::Contract),
        &statements,
        vec![finding("MS002"), finding("MS010")],
        None,
    );
    assert_eq!(kept.iter().map(|f| f.rule).collect::<Vec<_>>(), ["MS010"]);
}

#[test]
fn a_rebuild_follows_sqlites_procedure() {
    let setup = format!("{T}\nCREATE INDEX t_a ON t (a);\nCREATE TRIGGER t_b AFTER UPDATE ON t BEGIN SELECT 1; END;");
    let fine = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT, b INT);\n\
                INSERT INTO t_new (id, a, b) SELECT id, a, b FROM t;\nDROP TABLE t;\n\
                ALTER TABLE t_new RENAME TO t;\nCREATE INDEX t_a ON t (a);\n\
                CREATE TRIGGER t_b AFTER UPDATE ON t BEGIN SELECT 1; END;";
    assert_eq!(lint(&setup, fine), []);
    // No copy: every row is lost.
    let no_copy = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT, b INT);\nDROP TABLE t;\n\
                   ALTER TABLE t_new RENAME TO t;\nCREATE INDEX t_a ON t (a);\n\
                   CREATE TRIGGER t_b AFTER UPDATE ON t BEGIN SELECT 1; END;";
    assert_eq!(lint(&setup, no_copy), [("MS013", 2)]);
    // The index and the trigger are not recreated: one finding each.
    let lost = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT, b INT);\n\
                INSERT INTO t_new SELECT * FROM t;\nDROP TABLE t;\nALTER TABLE t_new RENAME TO t;";
    assert_eq!(lint(&setup, lost), [("MS013", 3), ("MS013", 3)]);
    // Dropped and created again under its own name.
    let recreated = "CREATE TEMP TABLE keep AS SELECT * FROM t;\nDROP TABLE t;\n\
                     CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INT);\nINSERT INTO t SELECT * FROM keep;";
    assert_eq!(lint(T, recreated), [("MS013", 2)]);
    // The old table renamed first.
    let renamed_first = "ALTER TABLE t RENAME TO t_old;\nCREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INT);\n\
                         INSERT INTO t SELECT * FROM t_old;\nDROP TABLE t_old;";
    assert_eq!(lint(T, renamed_first), [("MS013", 1)]);
}

/// The findings of a contract migration `up` whose expand is `expand`.
fn lint_contract(setup: &str, expand: &str, up: &str) -> Vec<(&'static str, usize)> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(setup).unwrap();
    conn.execute_batch(expand).unwrap();
    let filter = Filter::new("_migrations");
    let before = Model::read(&conn, &filter).unwrap();
    conn.execute_batch(up).unwrap();
    let after = Model::read(&conn, &filter).unwrap();
    let statements = super::sqlite_statements(up);
    let findings = all(&Input {
        statements: &statements,
        before: &before,
        after: &after,
        no_transaction: false,
        broken_views: &[],
    });
    let expand = super::Expand {
        display: "migrations/0002_expand.sql",
        statements: super::sqlite_statements(expand),
    };
    super::phase_findings(
        Some(migrate_runtime::Phase::Contract),
        &statements,
        findings,
        Some(&expand),
    )
    .into_iter()
    .map(|f| (f.rule, f.line))
    .collect()
}

#[test]
fn a_contract_drops_only_what_its_expand_superseded() {
    let drop_a = "ALTER TABLE t DROP COLUMN a;";
    // The expand added the replacement column, or a trigger on t.
    assert_eq!(lint_contract(T, "ALTER TABLE t ADD COLUMN full_a TEXT;", drop_a), []);
    assert_eq!(
        lint_contract(
            &format!("{T}\nCREATE TABLE log (x);"),
            "CREATE TRIGGER keep AFTER UPDATE OF a ON t BEGIN INSERT INTO log VALUES (new.a); END;",
            "DROP TRIGGER keep;\nALTER TABLE t DROP COLUMN a;"
        ),
        []
    );
    // An expand of another table supersedes nothing here.
    assert_eq!(
        lint_contract(
            &format!("{T}\nCREATE TABLE u (x);"),
            "ALTER TABLE u ADD COLUMN y;",
            drop_a
        ),
        [("MS012", 1)]
    );
    // A table: the expand creates its replacement and copies from it.
    let drop_t = "DROP TABLE t;";
    assert_eq!(
        lint_contract(
            T,
            "CREATE TABLE t2 (id INTEGER PRIMARY KEY, a TEXT);\nINSERT INTO t2 SELECT id, a FROM t;",
            drop_t
        ),
        []
    );
    assert_eq!(lint_contract(T, "CREATE TABLE other (x);", drop_t), [("MS012", 1)]);
}

/// The phases on PostgreSQL statements: an expand that drops or changes a
/// type is MS011; a contract dropping a column its expand did not
/// replace is MS012.
#[test]
fn phases_on_postgres_statements() {
    let run = |before: &str, up: &str, phase, expand: Option<&str>| {
        let mut schema = super::pg::Schema::default();
        super::pg::findings(&mut schema, &super::pg::statements(before), false);
        let statements = super::pg::statements(up);
        let findings = super::pg::findings(&mut schema, &statements, false);
        let shared: Vec<Statement> = statements.into_iter().map(|s| s.statement).collect();
        let expand = expand.map(|e| super::Expand {
            display: "migrations/0002_expand.sql",
            statements: super::pg::statements(e).into_iter().map(|s| s.statement).collect(),
        });
        super::phase_findings(Some(phase), &shared, findings, expand.as_ref())
            .into_iter()
            .map(|f| (f.rule, f.line))
            .collect::<Vec<_>>()
    };
    let users = "CREATE TABLE users (id bigint PRIMARY KEY, name text, age int);";
    let expand = migrate_runtime::Phase::Expand;
    let contract = migrate_runtime::Phase::Contract;
    let timeout = "SET LOCAL lock_timeout = '1s';\n";
    assert_eq!(
        run(
            users,
            &format!("{timeout}ALTER TABLE users ADD COLUMN full_name text;"),
            expand,
            None
        ),
        []
    );
    assert_eq!(
        run(
            users,
            &format!("{timeout}ALTER TABLE users ALTER COLUMN age TYPE bigint;"),
            expand,
            None
        ),
        [("MS011", 2)]
    );
    assert_eq!(
        run(
            users,
            &format!("{timeout}ALTER TABLE users DROP COLUMN name;"),
            expand,
            None
        ),
        [("MS011", 2)]
    );
    let drop_name = format!("{timeout}ALTER TABLE users DROP COLUMN name;");
    let added = "ALTER TABLE users ADD COLUMN full_name text;";
    assert_eq!(run(users, &drop_name, contract, Some(added)), []);
    let elsewhere = "CREATE TABLE audit (id bigint);";
    assert_eq!(run(users, &drop_name, contract, Some(elsewhere)), [("MS012", 2)]);
}

#[test]
fn a_rebuild_that_breaks_a_view() {
    let setup = format!("{T}\nCREATE VIEW v AS SELECT b FROM t;");
    // With the procedure, SQLite itself refuses the rename (it checks the
    // views): the build's replay reports that.
    let rebuild = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT);\nINSERT INTO t_new SELECT id, a FROM t;\n\
                   DROP TABLE t;\nALTER TABLE t_new RENAME TO t;";
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(&setup).unwrap();
    let e = conn.execute_batch(rebuild).unwrap_err();
    assert!(e.to_string().contains("error in view v"), "{e}");
    // Dropped and created again without `b`: nothing checks the view but
    // the lint.
    let recreated = "CREATE TEMP TABLE keep AS SELECT * FROM t;\nDROP TABLE t;\n\
                     CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\nINSERT INTO t SELECT id, a FROM keep;";
    assert_eq!(lint(&setup, recreated), [("MS002", 2), ("MS013", 2), ("MS013", 2)]);
}
