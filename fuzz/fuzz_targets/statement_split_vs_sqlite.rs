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
//! skipped). Only scripts that SQLite accepts are compared: every statement
//! that rusqlite's `Batch` iterator yields (SQLite's `sqlite3_prepare` with
//! its tail) must prepare against a small fixed schema (tables `a`, `b`, `t`,
//! `users`, view `v`). Statements are only prepared, never run.
//!
//! Checks, for such a script:
//! - the number of statements equals the number `Batch` yields (it skips
//!   empty ones, like `;;` and comments, as the splitter does);
//! - at the end of the script and after every `;`, SQLite's
//!   `sqlite3_complete` says "complete" exactly when the splitter would start
//!   a new statement at a token appended on a new line.
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

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 || data.contains(&0) {
        return;
    }
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    // The runner's callers strip a leading byte-order mark (`Script::sql`,
    // the scanner), and SQLite skips one too.
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    // Known defect 4 (regressions/statement_split_vs_sqlite/bom-*): SQLite's
    // tokenizer skips a byte-order mark anywhere as white space; the
    // splitter reads it as part of a word.
    if skip_known() && sql.contains('\u{feff}') {
        return;
    }
    // Known defect 5 (regressions/statement_split_vs_sqlite/vertical-tab-*):
    // SQLite takes a vertical tab that follows white space as white space
    // (and one anywhere else as an illegal token); the splitter makes it
    // the start of a statement, which SQLite then rejects when it is run
    // alone.
    if skip_known() && sql.contains('\u{b}') {
        return;
    }
    let Some(sqlite) = CONN.with(|c| sqlite_statements(&c.borrow(), sql)) else {
        return;
    };
    let ours = statement_lines(sql);
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
        let theirs = sqlite_complete(prefix);
        assert_eq!(
            ours_complete(prefix),
            theirs,
            "{sql:?}: after {prefix:?} sqlite3_complete says {theirs}, the splitter disagrees"
        );
    }
});
