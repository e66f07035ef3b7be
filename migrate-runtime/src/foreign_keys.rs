//! The foreign-key guard: SQLite's table-rebuild procedure runs with
//! foreign keys off, so before a migration commits, the rows it may have
//! left pointing at nothing are checked, and only the violations it added
//! are refused (an old database may already hold some).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::session::Session;
use crate::{Direction, Error, Migration, Result, Script};

/// Runs a migration's script inside the open transaction, with the
/// foreign-key check SQLite's table-rebuild procedure asks for.
pub(crate) fn step_in_tx(session: &Session<'_>, m: &Migration, direction: Direction, script: &Script) -> Result<()> {
    let conn = session.conn;
    if !session.foreign_keys || !guard_needed(session, script.sql())? {
        session.run_script(m, direction, script, true)?;
        return Ok(());
    }
    session.watch_keys();
    let savepoint = |sql: &str| conn.execute_batch(sql).map_err(Error::db("checking foreign keys"));
    savepoint("SAVEPOINT migrate_foreign_keys")?;
    let touched = session.run_script(m, direction, script, true)?;
    let after = violations(session, &touched)?;
    if !after.is_empty() {
        // A database may hold violations from before; refuse only those
        // this migration adds. Count them in the state before it.
        savepoint("ROLLBACK TO migrate_foreign_keys")?;
        let tables: BTreeSet<String> = after.keys().map(|(t, _)| t.clone()).collect();
        let before = violations_in(conn, &tables)?;
        session.run_script(m, direction, script, true)?;
        for ((table, parent), rows) in after {
            let old = before.get(&(table.clone(), parent.clone())).copied().unwrap_or(0);
            if rows > old {
                return Err(Error::ForeignKey {
                    direction,
                    version: m.version(),
                    name: m.name().to_owned(),
                    file: script.file().to_owned(),
                    table,
                    parent,
                    rows: rows - old,
                });
            }
        }
    }
    savepoint("RELEASE migrate_foreign_keys")?;
    Ok(())
}

/// Whether a migration whose SQL is `sql` can leave a row pointing at
/// nothing. No, when no table has a foreign key (the connection sees only
/// `main`, and no table there has one) and `sql` cannot declare one: every
/// foreign key is declared with the keyword `REFERENCES` (SQLite's
/// documentation, "SQLite Foreign Key Support" and the `CREATE TABLE`
/// syntax), so a script without that word (in any case, anywhere: in a
/// string or a comment too) adds none, unless it writes the schema's text
/// itself (`writable_schema`, `sqlite_dbpage`) or attaches a database.
/// Then the check (its savepoint, its queries and the authorizer, which
/// SQLite calls for every action of every statement it prepares) is
/// skipped; the list of tables with keys stays right, since none gained
/// one. The first script without those words reads that list.
fn guard_needed(session: &Session<'_>, sql: &str) -> Result<bool> {
    if may_declare_keys(sql) {
        // It may also make a table with a key outside `main` (`CREATE TEMP
        // TABLE … REFERENCES …`), which the list does not cover: look at
        // the schemas again before the next script.
        session.other_schemas.set(None);
        return Ok(true);
    }
    if session.tables_with_keys.borrow().is_none() {
        let tables = tables_with_keys(session.conn)?;
        session.tables_with_keys.replace(Some(tables));
    }
    let other_schemas = match session.other_schemas.get() {
        Some(known) => known,
        None => {
            // `temp` is listed once it is in use.
            let mut others = false;
            session
                .conn
                .pragma_query(None, "database_list", |r| {
                    others |= r.get_ref(1)?.as_str()? != "main";
                    Ok(())
                })
                .map_err(Error::db("checking foreign keys"))?;
            session.other_schemas.set(Some(others));
            others
        }
    };
    let no_keys = session
        .tables_with_keys
        .borrow()
        .as_ref()
        .is_some_and(BTreeSet::is_empty);
    Ok(!no_keys || other_schemas)
}

/// Whether `sql` says (ASCII case ignored) a word with which a script can
/// add a foreign key: see [`guard_needed`].
fn may_declare_keys(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // `| 0x20` is ASCII lower case for letters and maps no other byte
        // to one; each word has its own first letter.
        let word: &[u8] = match bytes[i] | 0x20 {
            b'r' => b"references",
            b'w' => b"writable_schema",
            b's' => b"sqlite_dbpage",
            b'a' => b"attach",
            _ => {
                i += 1;
                continue;
            }
        };
        if bytes
            .get(i..i + word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
        {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether `sql` holds `word` (lower case), ASCII case ignored, anywhere.
pub(crate) fn contains_word(sql: &str, word: &[u8]) -> bool {
    sql.as_bytes().windows(word.len()).any(|w| w.eq_ignore_ascii_case(word))
}

/// The tables in `main` that have foreign keys.
fn tables_with_keys(conn: &Connection) -> Result<BTreeSet<String>> {
    // A key is declared with `REFERENCES`: without that word in the
    // schema, no table has one, and the query below (whose virtual table
    // costs more to prepare than the rest) is not needed.
    let candidates = conn
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%references%'")
        .and_then(|mut s| s.exists([]))
        .map_err(Error::db("checking foreign keys"))?;
    if !candidates {
        return Ok(BTreeSet::new());
    }
    let mut all = conn
        .prepare_cached(
            "SELECT m.name FROM sqlite_schema AS m WHERE m.type = 'table' AND m.sql LIKE '%references%' \
             AND EXISTS (SELECT 1 FROM pragma_foreign_key_list(m.name))",
        )
        .map_err(Error::db("checking foreign keys"))?;
    all.query_map([], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect)
        .map_err(Error::db("checking foreign keys"))
}

/// Runs `f` with an authorizer that collects the tables `pick` names in
/// each statement SQLite prepares meanwhile (what statements touch is known
/// at prepare time, whatever they do when run).
pub(crate) fn tables_seen<T>(
    conn: &Connection,
    pick: for<'a> fn(&AuthAction<'a>) -> Option<&'a str>,
    f: impl FnOnce() -> T,
) -> (T, BTreeSet<String>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = Arc::clone(&seen);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let Some(table) = pick(&ctx.action)
            && let Ok(mut set) = sink.lock()
        {
            set.insert(table.to_owned());
        }
        Authorization::Allow
    }));
    let out = f();
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    let set = seen.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    (out, set)
}

/// The table whose rows or definition a statement changes.
pub(crate) fn written_table<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    match *action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. } => Some(table_name),
        _ => None,
    }
}

type Violations = BTreeMap<(String, String), u64>;

/// Foreign-key violations in the tables `touched` and in the tables whose
/// keys point at them: only what a migration can have affected.
fn violations(session: &Session<'_>, touched: &BTreeSet<String>) -> Result<Violations> {
    if touched.is_empty() {
        return Ok(Violations::new());
    }
    let conn = session.conn;
    let mut tables = touched.clone();
    let mut keys = conn
        .prepare_cached("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
        .map_err(Error::db("checking foreign keys"))?;
    let mut with_keys = session.tables_with_keys.borrow_mut();
    let mut stale = false;
    if let Some(known) = with_keys.as_mut() {
        // Keep the list of tables with foreign keys up to date for the
        // tables this migration touched; a table that is gone (dropped, or
        // renamed away) means the list is rebuilt.
        for t in touched {
            let parents: Vec<String> = keys
                .query_map([t], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(Error::db("checking foreign keys"))?;
            let exists = conn
                .prepare_cached("SELECT 1 FROM pragma_table_list(?1)")
                .and_then(|mut s| s.exists([t]))
                .map_err(Error::db("checking foreign keys"))?;
            stale |= !exists;
            if parents.is_empty() {
                known.remove(t);
            } else {
                known.insert(t.clone());
            }
        }
    }
    if stale || with_keys.is_none() {
        *with_keys = Some(tables_with_keys(conn)?);
    }
    if with_keys.as_ref().is_some_and(BTreeSet::is_empty) {
        // No table has a foreign key, so none can be violated.
        return Ok(Violations::new());
    }
    for child in with_keys.iter().flatten() {
        let parents: Vec<String> = keys
            .query_map([child], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(Error::db("checking foreign keys"))?;
        if parents
            .iter()
            .any(|p| touched.iter().any(|t| t.eq_ignore_ascii_case(p)))
        {
            tables.insert(child.clone());
        }
    }
    violations_in(conn, &tables)
}

fn violations_in(conn: &Connection, tables: &BTreeSet<String>) -> Result<Violations> {
    let mut out = Violations::new();
    let mut check = conn
        .prepare_cached("SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check(?1) GROUP BY 1, 2")
        .map_err(Error::db("checking foreign keys"))?;
    for t in tables {
        let rows = check
            .query_map([t], |r| Ok(((r.get(0)?, r.get(1)?), r.get::<_, i64>(2)?)))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>);
        match rows {
            Ok(rows) => out.extend(rows.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))),
            // The table is gone in this state (it was created by the migration).
            Err(e) if e.to_string().contains("no such table") => {}
            Err(e) => return Err(Error::db("checking foreign keys")(e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::may_declare_keys;
    use crate::{Error, Migration, Migrator, Script};

    const TEMP_KEY: &str =
        "CREATE TEMP TABLE p (id INTEGER PRIMARY KEY); CREATE TEMP TABLE c (p INTEGER REFERENCES p (id));";

    /// Applies `first`, then a migration that inserts an orphan into the
    /// `temp` child table `c`: refused and rolled back.
    fn orphan_in_temp_is_refused(conn: &mut Connection, first: Migration) {
        let ms = [
            first,
            Migration::new(2, "orphan", Script::new("INSERT INTO c VALUES (7);", "0002_orphan.sql")),
        ];
        let e = Migrator::new(&ms).apply(conn).unwrap_err();
        assert!(matches!(e, Error::ForeignKey { version: 2, .. }), "{e}");
        let orphans: i64 = conn.query_row("SELECT count(*) FROM c", [], |r| r.get(0)).unwrap();
        assert_eq!(orphans, 0, "rolled back");
    }

    /// The guard is skipped only while no table has a key: one in `temp`
    /// (which the list of tables with keys does not cover) keeps it on.
    #[test]
    fn a_key_outside_main_keeps_the_guard_on() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(TEMP_KEY).unwrap();
        orphan_in_temp_is_refused(
            &mut conn,
            Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.sql")),
        );
    }

    /// A migration that makes a table with a key outside `main` (a `TEMP`
    /// one) keeps the guard on for the migrations after it.
    #[test]
    fn a_key_made_outside_main_by_a_migration_keeps_the_guard_on() {
        let mut conn = Connection::open_in_memory().unwrap();
        orphan_in_temp_is_refused(
            &mut conn,
            Migration::new(1, "temp", Script::new(TEMP_KEY, "0001_temp.sql")),
        );
    }

    #[test]
    fn words_that_can_add_a_key_are_found_in_any_case_anywhere() {
        for sql in [
            "CREATE TABLE c (p INTEGER REFERENCES p (id));",
            "create table c (p integer, foreign key (p) references p);",
            "ALTER TABLE c ADD COLUMN p INTEGER ReFeReNcEs p;",
            "PRAGMA writable_schema = ON;",
            "UPDATE sqlite_dbpage SET data = x'00';",
            "ATTACH 'other.db' AS o;",
            "-- references in a comment\nSELECT 1;",
            "references",
        ] {
            assert!(may_declare_keys(sql), "{sql}");
        }
        for sql in [
            "",
            "r",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, created_at TEXT);",
            "ALTER TABLE t RENAME TO u; CREATE INDEX i ON u (a);",
            "INSERT INTO t VALUES ('refer', 'attac', 'writable', 'sqlite_db');",
        ] {
            assert!(!may_declare_keys(sql), "{sql}");
        }
    }
}
