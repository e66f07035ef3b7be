//! Differential: `migrate_runtime::statement_lines(sql)` against SQLite's
//! own idea of where statements end.
//!
//! The runner executes a migration one statement at a time, as its splitter
//! cuts it, so a script that SQLite accepts must be cut exactly where SQLite
//! cuts it: cutting inside a statement (a trigger body, a string) would make
//! a valid migration fail, and cutting too little puts errors on the wrong
//! line.
//!
//! Input: a script (valid UTF-8 without NUL, at most 4 KiB; others are
//! skipped), or, when the first byte is NUL, a script put together from
//! [`FRAGMENTS`], one per following byte: random bytes rarely make a valid
//! `CREATE TRIGGER`, fragments often do.
//!
//! Only scripts that SQLite accepts are compared: every statement that
//! rusqlite's `Batch` iterator yields (SQLite's `sqlite3_prepare` with its
//! tail) must prepare against a small fixed schema (tables `a`, `b`, `t`,
//! `users`, view `v`). Statements are only prepared, never run.
//!
//! Checks, for such a script:
//! - the number of statements equals the number `Batch` yields (it skips
//!   empty ones, like `;;` and comments, as the splitter does);
//! - at the end of the script and after every `;`, SQLite's
//!   `sqlite3_complete` says "complete" exactly when the splitter would start
//!   a new statement at a token appended on a new line (not for scripts
//!   with a byte-order mark or a vertical tab, which `sqlite3_complete`
//!   tokenizes unlike SQLite's parser).
//!
//! With `MIGRATE_FUZZ_SKIP_KNOWN=1` in the environment, inputs that hit a
//! defect already reported (see `regressions/` and the README) are not
//! checked for it, so that a run can go on looking for new ones.
#![no_main]

use std::cell::RefCell;
use std::ffi::CString;

use libfuzzer_sys::fuzz_target;
use migrate_runtime::rusqlite::fallible_iterator::FallibleIterator;
use migrate_runtime::rusqlite::{Batch, Connection, ffi};
use migrate_runtime::statement_lines;

const SCHEMA: &str = "
CREATE TABLE a (x, y);
CREATE TABLE b (x, y);
CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, y INTEGER);
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
CREATE VIEW v AS SELECT x, y FROM a;
";

/// Pieces of SQL for the fragment mode: trigger heads and bodies, `END`
/// in its many roles (keyword, quoted name, string, comment), separators.
const FRAGMENTS: &[&str] = &[
    "CREATE TRIGGER tr AFTER INSERT ON a BEGIN ",
    "CREATE TEMP TRIGGER tt BEFORE DELETE ON b FOR EACH ROW BEGIN ",
    "CREATE TRIGGER IF NOT EXISTS tu AFTER UPDATE OF x ON t WHEN new.x > 0 BEGIN ",
    "create temporary trigger lower after insert on users begin ",
    "CREATE TRIGGER \"q;t\" INSTEAD OF INSERT ON v BEGIN ",
    "END",
    "end",
    ";",
    "; ",
    " ",
    "\n",
    "\r\n",
    "\t",
    "SELECT 1",
    "SELECT CASE WHEN 1 THEN 2 ELSE 3 END",
    "UPDATE a SET x = CASE new.x WHEN 1 THEN 'end;' END",
    "INSERT INTO b VALUES (new.x, 'it''s; END;')",
    "DELETE FROM t WHERE id = old.id",
    "SELECT RAISE(ABORT, 'no; END')",
    "-- comment; END;\n",
    "/* ; END; */",
    "CREATE TABLE c (\"end\" TEXT, [x;y] INT, `z;` INT)",
    "CREATE INDEX i ON a (x)",
    "SELECT [end] FROM (SELECT 1 AS [end])",
    "SELECT \"END\"",
    "SELECT 'END'",
    "INSERT INTO a SELECT 1, 2",
    "CREATE VIEW vv AS SELECT * FROM a",
    "DROP TABLE IF EXISTS c",
    "PRAGMA foreign_keys = ON",
    "WITH r(n) AS (SELECT 1) SELECT n FROM r",
    "BEGIN",
    "COMMIT",
    "EXPLAIN ",
    "EXPLAIN QUERY PLAN ",
    "SELECT x'00'",
    "SELECT 1 AS end_",
    "ALTER TABLE a ADD COLUMN z",
    "SELECT $v, :w, @z, ?1",
    "SELECT 'é;', \"名前\"",
];

thread_local! {
    static CONN: RefCell<Connection> = RefCell::new({
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(SCHEMA).expect("schema");
        conn
    });
}

/// How many statements SQLite's parser finds, or `None` if one does not
/// prepare.
fn sqlite_statements(conn: &Connection, sql: &str) -> Option<usize> {
    let mut batch = Batch::new(conn, sql);
    let mut n = 0;
    loop {
        match batch.next() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return Some(n),
            Err(_) => return None,
        }
    }
}

fn sqlite_complete(sql: &str) -> bool {
    let c = CString::new(sql).expect("no NUL");
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

/// Whether the splitter sees `prefix` as ending between statements: a token
/// on a new line after it starts a statement of its own.
fn ours_complete(prefix: &str) -> bool {
    let n = statement_lines(prefix).len();
    statement_lines(&format!("{prefix}\nX")).len() == n + 1
}

fn skip_known() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("MIGRATE_FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

/// `MIGRATE_FUZZ_DEBUG=1`: say which inputs SQLite accepted, to see how
/// much of a corpus is compared.
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("MIGRATE_FUZZ_DEBUG").is_some_and(|v| v == "1"))
}

fuzz_target!(|data: &[u8]| {
    let assembled;
    let sql = if let Some((0, picks)) = data.split_first() {
        assembled = picks
            .iter()
            .map(|&b| FRAGMENTS[usize::from(b) % FRAGMENTS.len()])
            .collect::<String>();
        assembled.as_str()
    } else {
        let Ok(sql) = std::str::from_utf8(data) else {
            return;
        };
        sql
    };
    if sql.len() > 4096 || sql.contains('\0') {
        return;
    }
    // The runner's callers strip a leading byte-order mark (`Script::sql`,
    // the scanner), and SQLite skips one too.
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    // Known defect (regressions/statement_split_vs_sqlite/explain-create-trigger):
    // `EXPLAIN [QUERY PLAN] CREATE TRIGGER …` is a trigger to SQLite, whose
    // body runs to `END`; the splitter only knows a trigger by its first
    // words, so it cuts the body at its first `;`.
    if skip_known() && {
        let upper = sql.to_ascii_uppercase();
        upper.contains("EXPLAIN") && upper.contains("TRIGGER")
    } {
        return;
    }
    let Some(sqlite) = CONN.with(|c| sqlite_statements(&c.borrow(), sql)) else {
        return;
    };
    let ours = statement_lines(sql);
    if debug() {
        eprintln!("compared: {} statements", ours.len());
    }
    assert_eq!(
        ours.len(),
        sqlite,
        "{sql:?}: the splitter finds {} statements (at lines {ours:?}), SQLite {sqlite}",
        ours.len()
    );
    let ends = sql
        .char_indices()
        .filter(|&(_, c)| c == ';')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(sql.len()));
    for end in ends {
        let prefix = &sql[..end];
        if statement_lines(prefix).is_empty() {
            // Nothing but comments and `;` so far: sqlite3_complete says
            // "complete" after a lone `;` and the splitter has no statement
            // to end; not comparable.
            continue;
        }
        if sql.contains(['\u{feff}', '\u{b}']) {
            // sqlite3_complete has a tokenizer of its own, which reads a
            // byte-order mark as part of a name and a vertical tab as a
            // symbol, where SQLite's parser (and so the runner) skips both as
            // white space: not an oracle for these.
            break;
        }
        let theirs = sqlite_complete(prefix);
        assert_eq!(
            ours_complete(prefix),
            theirs,
            "{sql:?}: after {prefix:?} sqlite3_complete says {theirs}, the splitter disagrees"
        );
    }
});
