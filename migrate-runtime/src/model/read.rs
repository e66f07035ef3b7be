//! Reading a [`Table`] from a live database: its columns, indexes and
//! foreign keys from SQLite's pragmas, and what only its `CREATE`
//! statement says from the statement.

use super::*;

pub(super) fn read_table(
    conn: &Connection,
    name: &str,
    sql: &str,
    strict: bool,
    without_rowid: bool,
    is_virtual: bool,
) -> Result<Table> {
    let definition = parse_table(sql);
    let mut columns: Vec<Column> = conn
        .prepare_cached(
            "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
        )
        .and_then(|mut s| {
            s.query_map([name], |r| {
                let hidden: i64 = r.get(5)?;
                Ok(Column {
                    name: r.get(0)?,
                    decl_type: r.get(1)?,
                    not_null: r.get(2)?,
                    default: r.get::<_, Option<String>>(3)?.map(|d| normalize(&d)),
                    primary_key: r.get(4)?,
                    collation: None,
                    generated: match hidden {
                        2 => Some(Generated::Virtual),
                        3 => Some(Generated::Stored),
                        _ => None,
                    },
                    hidden: hidden == 1,
                    identity: None,
                })
            })?
            .collect()
        })
        .map_err(Error::db(format!("reading the columns of `{name}`")))?;
    for c in &mut columns {
        c.collation = definition
            .collations
            .iter()
            .find(|(col, _)| col.eq_ignore_ascii_case(&c.name))
            .map(|(_, coll)| coll.clone())
            .filter(|coll| !coll.eq_ignore_ascii_case("binary"));
    }
    let mut table = Table {
        name: name.to_owned(),
        strict,
        without_rowid,
        virtual_sql: is_virtual.then(|| normalize(sql)),
        partition_by: None,
        columns,
        indexes: BTreeMap::new(),
        foreign_keys: Vec::new(),
        checks: definition.checks.clone(),
    };
    if is_virtual {
        return Ok(table);
    }
    read_indexes(conn, &mut table)?;
    read_foreign_keys(conn, &mut table, &definition)?;
    Ok(table)
}

fn read_indexes(conn: &Connection, table: &mut Table) -> Result<()> {
    let err = || Error::db(format!("reading the indexes of `{}`", table.name));
    let list: Vec<(String, bool, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT l.name, l.\"unique\", l.origin, s.sql FROM pragma_index_list(?1) AS l \
             LEFT JOIN sqlite_schema AS s ON s.type = 'index' AND s.name = l.name ORDER BY l.name",
        )
        .and_then(|mut s| {
            s.query_map([&table.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(err())?;
    for (name, unique, origin, sql) in list {
        let key_columns: Vec<(i64, Option<String>, bool, Option<String>)> = conn
            .prepare_cached("SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
            .and_then(|mut s| {
                s.query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(err())?;
        let parsed = sql.as_deref().map(parse_index).unwrap_or_default();
        let columns = key_columns
            .into_iter()
            .enumerate()
            .map(|(i, (cid, col, desc, coll))| {
                let expression = cid == -2;
                IndexColumn {
                    column: if expression {
                        parsed.expressions.get(i).cloned().unwrap_or_default()
                    } else {
                        col.unwrap_or_default()
                    },
                    expression,
                    descending: desc,
                    collation: coll.filter(|c| !c.eq_ignore_ascii_case("binary")),
                }
            })
            .collect::<Vec<_>>();
        let index = Index {
            name: name.clone(),
            unique,
            origin: origin.clone(),
            columns,
            partial: parsed.partial,
            using: None,
            include: Vec::new(),
        };
        // Automatic indexes get numbered names that a rebuild changes.
        let key = if origin == "c" {
            name.to_ascii_lowercase()
        } else {
            format!("({origin} {})", index_facts(&index))
        };
        table.indexes.insert(key, index);
    }
    Ok(())
}

fn read_foreign_keys(conn: &Connection, table: &mut Table, definition: &Parsed) -> Result<()> {
    type Row = (i64, String, String, Option<String>, String, String);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )
        .and_then(|mut s| {
            s.query_map([&table.name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect()
        })
        .map_err(Error::db(format!("reading the foreign keys of `{}`", table.name)))?;
    let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        let fk = by_id.entry(id).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table: parent,
            to: Vec::new(),
            on_delete,
            on_update,
            deferred: false,
            name: None,
        });
        fk.columns.push(from);
        if let Some(to) = to {
            fk.to.push(to);
        }
    }
    let mut keys: Vec<ForeignKey> = by_id.into_values().collect();
    for fk in &mut keys {
        fk.deferred = definition.deferred.iter().any(|(cols, parent)| {
            parent.eq_ignore_ascii_case(&fk.table)
                && cols.len() == fk.columns.len()
                && cols.iter().zip(&fk.columns).all(|(a, b)| a.eq_ignore_ascii_case(b))
        });
    }
    keys.sort();
    table.foreign_keys = keys;
    Ok(())
}
