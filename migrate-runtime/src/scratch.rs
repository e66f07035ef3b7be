//! The scratch database of a round trip: only the tables a migration's
//! scripts name, copied from the replay's database with their rows,
//! indexes and triggers.

use std::collections::BTreeSet;

use rusqlite::Connection;
use rusqlite::hooks::AuthAction;
use rusqlite::types::Value;

use crate::Script;
use crate::sql::statements;

/// The tables (and views) that `scripts` name, found by preparing each
/// statement against `conn` without running it. Statements that cannot be
/// prepared yet (they name a table an earlier statement creates) are skipped:
/// what they name does not exist before the migration.
pub(crate) fn tables_named(conn: &Connection, scripts: &[&Script]) -> BTreeSet<String> {
    let prepare_all = || {
        for script in scripts {
            for stmt in statements(script.sql()) {
                let _ = conn.prepare(stmt.text);
            }
        }
    };
    crate::foreign_keys::tables_seen(conn, table_of, prepare_all).1
}

fn table_of<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    match *action {
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::DropTable { table_name }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::DropIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::DropTrigger { table_name, .. }
        | AuthAction::Analyze { table_name } => Some(table_name),
        AuthAction::DropView { view_name } => Some(view_name),
        _ => None,
    }
}

/// Copies `names` (tables with their rows, indexes and triggers; views)
/// from `main` into `scratch`.
pub(crate) fn copy_tables(
    main: &Connection,
    scratch: &Connection,
    names: &BTreeSet<String>,
    tracking: &str,
) -> rusqlite::Result<()> {
    let mut objects: Vec<(String, String, String)> = Vec::new();
    let mut stmt =
        main.prepare_cached("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ?1 COLLATE NOCASE")?;
    let internal = |n: &str| n.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"));
    for name in names
        .iter()
        .filter(|n| !n.eq_ignore_ascii_case(tracking) && !internal(n))
    {
        let rows = stmt.query_map([name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, object, sql) = row?;
            if let Some(sql) = sql.filter(|_| !internal(&object)) {
                objects.push((kind, object, sql));
            }
        }
    }
    let rank = |kind: &str| match kind {
        "table" => 0,
        "view" => 1,
        _ => 2,
    };
    objects.sort_by_key(|(kind, ..)| rank(kind));
    scratch.execute_batch("BEGIN")?;
    for (kind, name, sql) in &objects {
        scratch.execute_batch(sql)?;
        if kind == "table" {
            copy_rows(main, scratch, name)?;
        }
    }
    scratch.execute_batch("COMMIT")
}

fn copy_rows(main: &Connection, scratch: &Connection, table: &str) -> rusqlite::Result<()> {
    let quoted = crate::history::quote(table);
    let mut select = main.prepare(&format!("SELECT * FROM {quoted}"))?;
    let n = select.column_count();
    if n == 0 {
        return Ok(());
    }
    let placeholders = vec!["?"; n].join(", ");
    let mut insert = scratch.prepare(&format!("INSERT INTO {quoted} VALUES ({placeholders})"))?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..n)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}
