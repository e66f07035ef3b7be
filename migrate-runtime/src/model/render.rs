//! The schema as SQL that recreates it, and as a Mermaid `erDiagram`.

use std::fmt::Write as _;

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;

use super::Model;
#[cfg(feature = "rusqlite")]
use super::{Filter, db_err};
#[cfg(feature = "rusqlite")]
use crate::Result;

#[cfg(feature = "rusqlite")]
/// `conn`'s schema as SQL that recreates it, without an external `sqlite3`
/// binary: the `CREATE` statements SQLite keeps, tables first, then
/// indexes, views and triggers, each group in the order they were created,
/// each statement ending with `;` and a blank line. Automatic indexes and
/// the shadow tables of virtual tables are left out (their table makes
/// them), as is what `filter` leaves out.
///
/// # Errors
///
/// When the schema cannot be read.
///
/// # Examples
///
/// ```
/// use migrate_runtime::model::{Filter, schema_sql};
/// let conn = migrate_runtime::rusqlite::Connection::open_in_memory()?;
/// conn.execute_batch("CREATE TABLE t (x);  CREATE INDEX t_x ON t (x);")?;
/// assert_eq!(schema_sql(&conn, &Filter::new("_migrations"))?, "CREATE TABLE t (x);\n\nCREATE INDEX t_x ON t (x);\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn schema_sql(conn: &Connection, filter: &Filter) -> Result<String> {
    let mut stmt = conn
        .prepare(
            // The shadow tables are listed once (a subquery SQLite
            // materializes): a join on `pragma_table_list` ran the pragma
            // once per row of the schema, which at 1,000 migrations cost
            // more than the whole build-time replay.
            "SELECT s.name, s.tbl_name, s.sql FROM sqlite_schema AS s \
             WHERE s.sql IS NOT NULL \
             AND s.name NOT IN (SELECT l.name FROM pragma_table_list AS l WHERE l.schema = 'main' AND l.type = 'shadow') \
             ORDER BY CASE s.type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, s.rowid",
        )
        .map_err(db_err("reading the schema"))?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(Iterator::collect)
        .map_err(db_err("reading the schema"))?;
    let mut out = String::new();
    for (name, table, sql) in rows {
        if filter.excludes(&name) || filter.excludes(&table) {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let sql = sql.trim_end();
        out.push_str(sql);
        if !sql.ends_with(';') {
            out.push(';');
        }
        out.push('\n');
    }
    Ok(out)
}

impl Model {
    /// The schema as a Mermaid `erDiagram`: each table with its columns
    /// (type, `PK`, `FK`), each foreign key a relationship from the parent
    /// to the child (`||--o{`). GitHub renders it in a ```` ```mermaid ````
    /// block.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::model::{Filter, Model};
    /// let conn = migrate_runtime::rusqlite::Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (a_id INTEGER REFERENCES a (id));")?;
    /// let text = Model::read(&conn, &Filter::new("_migrations"))?.mermaid();
    /// assert!(text.contains("a ||--o{ b : \"a_id\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mermaid(&self) -> String {
        let mut out = String::from("erDiagram\n");
        for t in self.tables.values() {
            let _ = writeln!(out, "    {} {{", mermaid_name(&t.name));
            for c in t.columns.iter().filter(|c| !c.hidden) {
                let ty = if c.decl_type.is_empty() {
                    "ANY".to_owned()
                } else {
                    mermaid_name(&c.decl_type.to_ascii_uppercase())
                };
                let mut keys = Vec::new();
                if c.primary_key > 0 {
                    keys.push("PK");
                }
                if t.foreign_keys
                    .iter()
                    .any(|fk| fk.columns.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
                {
                    keys.push("FK");
                }
                let _ = write!(out, "        {ty} {}", mermaid_name(&c.name));
                if !keys.is_empty() {
                    let _ = write!(out, " {}", keys.join(", "));
                }
                if c.not_null && c.primary_key == 0 {
                    let _ = write!(out, " \"NOT NULL\"");
                }
                out.push('\n');
            }
            out.push_str("    }\n");
        }
        for t in self.tables.values() {
            for fk in &t.foreign_keys {
                let _ = writeln!(
                    out,
                    "    {} ||--o{{ {} : \"{}\"",
                    mermaid_name(&fk.table),
                    mermaid_name(&t.name),
                    fk.columns.join(", ").replace('"', "'")
                );
            }
        }
        out
    }
}

/// A name Mermaid accepts unquoted: letters, digits, `_` and `-`; anything
/// else becomes `_`.
fn mermaid_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".to_owned() } else { s }
}
