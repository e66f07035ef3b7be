//! The model's unit tests: read, compare, fingerprint.

use super::*;
use rusqlite::Connection;

fn model(sql: &str) -> Model {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(sql).unwrap();
    Model::read(&conn, &Filter::new("_migrations")).unwrap()
}

fn diff(before: &str, change: &str) -> Vec<String> {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(before).unwrap();
    let filter = Filter::new("_migrations");
    let expected = Model::read(&conn, &filter).unwrap();
    conn.execute_batch(change).unwrap();
    let actual = Model::read(&conn, &filter).unwrap();
    expected.diff(&actual).iter().map(ToString::to_string).collect()
}

const RECRUITS: &str = "CREATE TABLE recruits (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL COLLATE NOCASE,\n  chatname TEXT,\n  id_number TEXT UNIQUE,\n  CHECK (length(name) > 0)\n);\n\
    CREATE INDEX recruits_name ON recruits (name DESC) WHERE name <> '';\n\
    CREATE TABLE notes (id INTEGER PRIMARY KEY, recruit INTEGER REFERENCES recruits (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, body TEXT);\n\
    CREATE VIEW named AS SELECT id, name FROM recruits;\n\
    CREATE TRIGGER notes_touch AFTER INSERT ON notes BEGIN SELECT 1; END;\n";

#[test]
fn reads_what_the_pragmas_and_the_sql_say() {
    let m = model(RECRUITS);
    let r = &m.tables["recruits"];
    assert_eq!(r.columns.len(), 4);
    assert_eq!(r.columns[1].collation.as_deref(), Some("nocase"));
    assert!(r.columns[1].not_null);
    assert_eq!(r.columns[0].primary_key, 1);
    assert_eq!(r.checks, vec!["length(name) > 0"]);
    let ix = &r.indexes["recruits_name"];
    assert_eq!(ix.partial.as_deref(), Some("name <> ''"));
    assert!(ix.columns[0].descending);
    assert!(
        r.indexes
            .values()
            .any(|i| i.origin == "u" && i.columns[0].column == "id_number")
    );
    let fk = &m.tables["notes"].foreign_keys[0];
    assert_eq!(
        (fk.table.as_str(), fk.on_delete.as_str(), fk.deferred),
        ("recruits", "CASCADE", true)
    );
    assert_eq!(
        m.views["named"].sql,
        "create view named as select id, name from recruits"
    );
    assert_eq!(m.triggers["notes_touch"].table, "notes");
}

#[test]
fn the_same_statements_spelled_differently_give_equal_models() {
    let a = model(RECRUITS);
    let b = model(
        &RECRUITS
            .replace("CREATE TABLE recruits (", "create   table \"recruits\"(")
            .replace("SELECT id, name", "select  id ,name")
            .replace("(name DESC)", "( \"name\"  desc )"),
    );
    assert_eq!(a, b);
    assert_eq!(a.canonical(), b.canonical());
    assert!(a.diff(&b).is_empty());
}

#[test]
fn the_three_hand_changes_of_the_drift_story() {
    let got = diff(
        RECRUITS,
        "ALTER TABLE recruits ADD COLUMN cohort TEXT DEFAULT 'C25 Data Eng';\n\
         ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;\n\
         CREATE TABLE r2 (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, rocketchat_user TEXT, cohort TEXT DEFAULT 'C25 Data Eng', CHECK (length(name) > 0));\n\
         INSERT INTO r2 SELECT id, name, rocketchat_user, cohort FROM recruits;\n\
         DROP VIEW named; DROP TABLE recruits; ALTER TABLE r2 RENAME TO recruits;\n\
         CREATE VIEW named AS SELECT id, name FROM recruits;\n\
         CREATE INDEX recruits_name ON recruits (name DESC) WHERE name <> '';",
    );
    assert_eq!(
        got,
        vec![
            "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)",
            "table recruits: column id_number removed",
            "table recruits: column cohort added (TEXT DEFAULT 'C25 Data Eng')",
            "table recruits: index sqlite_autoindex_recruits_1 removed",
        ]
    );
}

#[test]
fn every_kind_of_difference_is_named() {
    let got = diff(
        RECRUITS,
        "DROP INDEX recruits_name; CREATE TABLE extra (x); \
         CREATE TRIGGER t2 AFTER DELETE ON notes BEGIN SELECT 2; END; DROP VIEW named; \
         CREATE VIEW named AS SELECT id FROM recruits;",
    );
    assert_eq!(
        got,
        vec![
            "table recruits: index recruits_name removed",
            "table extra added (1 columns)",
            "view named changed: was `create view named as select id, name from recruits`, is `create view named as select id from recruits`",
            "table notes: trigger t2 added (create trigger t2 after delete on notes begin select 2; end)",
        ]
    );
}

#[test]
fn type_changes_and_constraints() {
    let got = diff(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, p INTEGER);",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0 CHECK (v >= 0), p INTEGER REFERENCES a (id));\n\
         DROP TABLE a; ALTER TABLE b RENAME TO a;",
    );
    assert_eq!(
        got,
        vec![
            "table a: column v changed: type TEXT → INTEGER, NOT NULL added, default none → 0",
            "table a: foreign key (p) REFERENCES a(id) added",
            "table a: check v >= 0 added",
        ]
    );
}

#[test]
fn the_tracking_table_internal_shadow_and_ignored_tables_are_left_out() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE _migrations (version INTEGER PRIMARY KEY);\
         CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);\
         CREATE VIRTUAL TABLE fts_docs USING fts5(body);\
         CREATE TABLE other_tool_history (x);",
    )
    .unwrap();
    let filter = Filter::new("_migrations").ignore(&["other_*"]).unwrap();
    let m = Model::read(&conn, &filter).unwrap();
    let names: Vec<&str> = m.tables.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["fts_docs", "t"]);
    assert!(m.tables["fts_docs"].virtual_sql.is_some());
    let e = Filter::new("_migrations").ignore(&["[a]"]).unwrap_err();
    assert!(e.to_string().contains("ignore pattern `[a]` is not valid"), "{e}");
}

#[test]
fn strict_without_rowid_generated_and_expression_indexes() {
    let m = model(
        "CREATE TABLE k (a TEXT PRIMARY KEY, b INTEGER, c INTEGER GENERATED ALWAYS AS (b * 2) STORED) STRICT, WITHOUT ROWID;\
         CREATE UNIQUE INDEX k_lower ON k (lower(a) COLLATE NOCASE, b);",
    );
    let k = &m.tables["k"];
    assert!(k.strict && k.without_rowid);
    assert_eq!(k.columns[2].generated, Some(Generated::Stored));
    let ix = &k.indexes["k_lower"];
    assert!(ix.unique && ix.columns[0].expression);
    assert_eq!(ix.columns[0].column, "lower(a)");
    assert_eq!(ix.columns[0].collation.as_deref(), Some("NOCASE"));
}

#[test]
fn fingerprints_follow_the_statements() {
    let fp = |sql: &str| {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        fingerprint(&conn, &Filter::new("_migrations")).unwrap()
    };
    let a = fp(RECRUITS);
    assert_eq!(a.len(), 64);
    assert_eq!(a, fp(RECRUITS), "same statements, same fingerprint");
    assert_eq!(
        a,
        fp(&format!(
            "{RECRUITS} CREATE TABLE _migrations (version INTEGER PRIMARY KEY);"
        ))
    );
    assert_ne!(a, fp(&format!("{RECRUITS} ALTER TABLE notes ADD COLUMN cohort TEXT;")));
}

#[test]
fn glob_patterns() {
    assert!(glob(b"fts_*", b"fts_docs_data"));
    assert!(glob(b"t?", b"t1"));
    assert!(!glob(b"t?", b"t12"));
    assert!(glob(b"*", b""));
}

/// Random sequences of schema changes: valid statements made from a list of
/// choices, so proptest can shrink them.
mod sequences {
    use proptest::prelude::*;

    use super::*;
    use crate::{Migration, Migrator, Script};

    #[derive(Clone, Debug)]
    struct Shape {
        tables: Vec<(String, Vec<String>)>,
        /// Added columns that nothing else names, so `DROP COLUMN` works.
        droppable: Vec<String>,
        next: usize,
    }

    /// The statement that choice `c` makes from `shape`, which it updates.
    fn statement(shape: &mut Shape, c: u8) -> String {
        shape.next += 1;
        let n = shape.next;
        if shape.tables.is_empty() || c.is_multiple_of(9) {
            let cols = vec![format!("c{n}"), format!("d{n}")];
            shape.tables.push((format!("t{n}"), cols.clone()));
            let strict = if c.is_multiple_of(2) { " STRICT" } else { "" };
            return format!(
                "CREATE TABLE t{n} (id INTEGER PRIMARY KEY, c{n} TEXT NOT NULL DEFAULT 'x' COLLATE NOCASE, d{n} INTEGER CHECK (d{n} >= 0)){strict};"
            );
        }
        let ti = usize::from(c) % shape.tables.len();
        let (table, cols) = shape.tables[ti].clone();
        match c % 9 {
            1 => {
                shape.tables[ti].1.push(format!("e{n}"));
                shape.droppable.push(format!("e{n}"));
                format!("ALTER TABLE {table} ADD COLUMN e{n} INTEGER DEFAULT {n};")
            }
            2 if !cols.is_empty() => {
                let old = cols[usize::from(c) % cols.len()].clone();
                let i = shape.tables[ti].1.iter().position(|x| *x == old).unwrap_or(0);
                shape.tables[ti].1[i] = format!("r{n}");
                if let Some(d) = shape.droppable.iter_mut().find(|d| **d == old) {
                    *d = format!("r{n}");
                }
                format!("ALTER TABLE {table} RENAME COLUMN {old} TO r{n};")
            }
            3 if cols.iter().any(|c| shape.droppable.contains(c)) => {
                let old = cols
                    .iter()
                    .find(|c| shape.droppable.contains(c))
                    .cloned()
                    .unwrap_or_default();
                shape.tables[ti].1.retain(|c| *c != old);
                shape.droppable.retain(|c| *c != old);
                format!("ALTER TABLE {table} DROP COLUMN {old};")
            }
            4 if !cols.is_empty() => {
                let col = &cols[usize::from(c) % cols.len()];
                shape.droppable.retain(|c| c != col);
                format!("CREATE INDEX IF NOT EXISTS i_{col} ON {table} ({col} DESC) WHERE {col} IS NOT NULL;")
            }
            5 => {
                shape.tables[ti].0 = format!("m{n}");
                format!("ALTER TABLE {table} RENAME TO m{n};")
            }
            6 => format!("CREATE TRIGGER IF NOT EXISTS g_{table} AFTER INSERT ON {table} BEGIN SELECT 1; END;"),
            7 => format!(
                "CREATE TABLE k{n} (id INTEGER PRIMARY KEY, p INTEGER REFERENCES {table} (id) ON DELETE CASCADE);"
            ),
            _ => format!("INSERT INTO {table} DEFAULT VALUES;"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// A database file changed statement by statement, and the in-memory
        /// replay of the same statements as migrations, give equal models
        /// and equal fingerprints.
        #[test]
        fn a_live_database_and_the_replay_of_its_statements_agree(choices in proptest::collection::vec(any::<u8>(), 1..24)) {
            let mut shape = Shape { tables: Vec::new(), droppable: Vec::new(), next: 0 };
            let statements: Vec<String> = choices.iter().map(|&c| statement(&mut shape, c)).collect();
            let dir = tempfile::tempdir().unwrap();
            let live = Connection::open(dir.path().join("live.db")).unwrap();
            live.execute_batch("PRAGMA synchronous = OFF").unwrap();
            for s in &statements {
                live.execute_batch(s).unwrap();
            }
            let migrations: Vec<Migration> = statements
                .iter()
                .enumerate()
                .map(|(i, s)| Migration::new(u64::try_from(i).unwrap() + 1, "step", Script::new(s.clone(), "step.sql")))
                .collect();
            let mut replay = Connection::open_in_memory().unwrap();
            Migrator::new(&migrations).apply(&mut replay).unwrap();
            let filter = Filter::new("_migrations");
            let (a, b) = (Model::read(&live, &filter).unwrap(), Model::read(&replay, &filter).unwrap());
            prop_assert_eq!(a.diff(&b), Vec::new());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(fingerprint(&live, &filter).unwrap(), fingerprint(&replay, &filter).unwrap());
        }
    }
}

/// The allocation-free normalizer the fingerprint uses gives exactly what
/// the token-based definition gives.
#[test]
fn normalize_into_matches_the_token_definition() {
    let cases = [
        RECRUITS,
        "CREATE TABLE \"Users\" ( \"id\" INTEGER PRIMARY KEY , [Name] TEXT, `x``y` BLOB, \"a\"\"b\" TEXT, \"9x\" INT, \"\" TEXT);",
        "create  table t(a -- comment\n, b /* block */ , c DEFAULT 'It''s', d DEFAULT .5e3, e DEFAULT 0X1F, f CHECK (a<=b AND b<>c OR a->>'$'));",
        "CREATE VIEW v AS SELECT t.a, t.\"B\" FROM main.t WHERE a || 'x' = 'y';;",
        "CREATE TRIGGER tr AFTER UPDATE ON t BEGIN UPDATE t SET a = a + 1; END;",
        "CREATE TABLE ünï (Ärger TEXT, \"ÄRGER2\" TEXT, \"\u{212a}elvin\" TEXT);",
        ";",
        "; ;",
        "",
        "  ",
        "'unterminated",
        "\"unterminated",
        "[unterminated",
        "/* unterminated",
        "x = -1 - -2",
        "SELECT $a, ?1, :b, @c FROM t",
    ];
    for sql in cases {
        assert_eq!(normalize(sql), parse::normalize_by_tokens(sql), "{sql:?}");
    }
}

proptest::proptest! {
    #[test]
    fn normalize_into_matches_the_token_definition_on_any_text(sql in "[ a-zA-Z0-9_'\"`\\[\\]().,;*/<>=!|-]{0,40}|\\PC{0,30}") {
        proptest::prop_assert_eq!(normalize(&sql), parse::normalize_by_tokens(&sql));
    }
}

#[test]
fn fingerprint_sees_every_change_but_not_the_order_of_rows() {
    let conn = Connection::open_in_memory().unwrap();
    let filter = Filter::new("_MIGRATIONS");
    conn.execute_batch("CREATE TABLE t (x); CREATE INDEX t_x ON t (x); CREATE TABLE _migrations (v);")
        .unwrap();
    let first = fingerprint(&conn, &filter).unwrap();
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // The tracking table and SQLite's own tables do not count.
    conn.execute_batch("INSERT INTO _migrations VALUES (1); ANALYZE;")
        .unwrap();
    assert_eq!(fingerprint(&conn, &filter).unwrap(), first);
    // The same objects made in another order: the same fingerprint.
    let other = Connection::open_in_memory().unwrap();
    other
        .execute_batch("CREATE TABLE _migrations (v); CREATE TABLE t (x); CREATE INDEX t_x ON t (x);")
        .unwrap();
    assert_eq!(fingerprint(&other, &filter).unwrap(), first);
    // Any change to a statement, a name or the set of objects: another one.
    let mut seen = std::collections::BTreeSet::from([first]);
    for change in [
        "ALTER TABLE t ADD COLUMN y",
        "DROP INDEX t_x",
        "CREATE INDEX t_y ON t (y)",
        "CREATE VIEW v AS SELECT x FROM t",
        "ALTER TABLE t RENAME COLUMN y TO z",
        "ALTER TABLE t RENAME TO u",
    ] {
        conn.execute_batch(change).unwrap();
        assert!(seen.insert(fingerprint(&conn, &filter).unwrap()), "{change}");
    }
    // Ignored tables, and their indexes, do not count.
    let ignoring = Filter::new("_migrations").ignore(&["cache_*"]).unwrap();
    let before = fingerprint(&conn, &ignoring).unwrap();
    conn.execute_batch("CREATE TABLE Cache_Pages (k); CREATE INDEX cp_k ON cache_pages (k);")
        .unwrap();
    assert_eq!(fingerprint(&conn, &ignoring).unwrap(), before);
    assert_ne!(fingerprint(&conn, &filter).unwrap(), before);
}

#[test]
fn row_hashes_differ_in_any_one_byte() {
    let base = b"CREATE TABLE recruits (id INTEGER PRIMARY KEY, name TEXT NOT NULL)".to_vec();
    let hash = |bytes: &[u8]| {
        let mut h = RowHash::default();
        h.write(b"table");
        h.write(bytes);
        h.finish()
    };
    let mut seen = std::collections::BTreeSet::from([hash(&base)]);
    for i in 0..base.len() {
        let mut changed = base.clone();
        changed[i] ^= 0x20;
        assert!(seen.insert(hash(&changed)), "byte {i}");
    }
    assert!(seen.insert(hash(&base[..base.len() - 1])), "shorter");
}

#[test]
fn schema_sql_leaves_out_shadow_tables_and_keeps_the_order() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE b (x);\
         CREATE VIRTUAL TABLE fts_docs USING fts5(body);\
         CREATE INDEX b_x ON b (x);\
         CREATE TABLE a (y);",
    )
    .unwrap();
    let sql = super::schema_sql(&conn, &Filter::new("_migrations")).unwrap();
    assert_eq!(
        sql,
        "CREATE TABLE b (x);\n\nCREATE VIRTUAL TABLE fts_docs USING fts5(body);\n\nCREATE TABLE a (y);\n\nCREATE INDEX b_x ON b (x);\n"
    );
}
