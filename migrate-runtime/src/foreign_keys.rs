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
    if !session.foreign_keys {
        session.run_script(m, direction, script, true)?;
        return Ok(());
    }
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
        let mut all = conn
            .prepare_cached(
                "SELECT m.name FROM sqlite_schema AS m WHERE m.type = 'table' AND m.sql LIKE '%references%' \
                 AND EXISTS (SELECT 1 FROM pragma_foreign_key_list(m.name))",
            )
            .map_err(Error::db("checking foreign keys"))?;
        let names = all
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(Error::db("checking foreign keys"))?;
        *with_keys = Some(names);
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
