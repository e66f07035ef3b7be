//! SQL that turns one schema into another, for `diff --sql` (the live
//! database back to its migrations' schema) and `diff --emit` (the
//! migrations' schema into the live one, and back for the down script).
//!
//! The differences come from the runtime's model ([`Model::diff`]); the
//! `CREATE` statements from the target side's `sqlite_schema`, so an object
//! is re-created exactly as it was written. What `ALTER TABLE` can express
//! in SQLite (rename a table or a column, add a column with a constant
//! default, drop a plain column) is written as `ALTER TABLE`; the rest (a
//! type, `NOT NULL`, default, collation, primary key, `UNIQUE`, `CHECK` or
//! foreign key change) as SQLite's table rebuild
//! (<https://sqlite.org/lang_altertable.html#otheralter>): create the new
//! table, copy every row, drop the old one, rename the new one, re-create
//! its indexes and triggers, and the views that name it.
//!
//! Every `DROP` that loses something (a table, a column, an index, a
//! trigger, a view) is written commented out, with a line that says what
//! it would lose, unless `allow_drop`; a rebuild then keeps the columns it
//! would drop.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;

use anyhow::{Context as _, Result};
use migrate_runtime::model::{Change, Column, Difference, Model, Object, Table, normalize};
use migrate_runtime::rusqlite::Connection;

/// One side of a transformation: a schema and a database that has it.
#[derive(Clone, Copy)]
pub(super) struct Side<'a> {
    pub(super) model: &'a Model,
    /// A database holding this schema (its `CREATE` statements are read from it).
    pub(super) conn: &'a Connection,
    /// Whether it is the user's database, with real rows (a drop then says
    /// how many values it would lose).
    pub(super) live: bool,
}

/// The SQL that turns `from` into `to`.
#[derive(Debug, Default)]
pub(super) struct Script {
    /// Live statements, each ending with `;` and a line break, with
    /// comments; held-back statements commented out.
    pub(super) sql: String,
    /// How many live statements it has.
    pub(super) statements: usize,
    /// The differences left as they are (drops held back), as
    /// `from.diff(to)` words them.
    pub(super) held: Vec<String>,
    /// The tables it rebuilds.
    pub(super) rebuilt: Vec<String>,
}

impl Script {
    pub(super) fn comment(&mut self, text: &str) {
        for line in text.lines() {
            let _ = writeln!(self.sql, "-- {line}");
        }
    }

    pub(super) fn live(&mut self, sql: &str) {
        let sql = sql.trim().trim_end_matches(';').trim_end();
        let _ = writeln!(self.sql, "{sql};");
        self.statements += 1;
    }

    /// A statement that loses something: live with `allow_drop`, else
    /// commented out under a line that says why.
    pub(super) fn drop(&mut self, allow_drop: bool, why: &str, sql: &str, difference: &Difference) {
        if allow_drop {
            self.comment(why);
            self.live(sql);
        } else {
            self.comment(&format!("{why}; held back: pass --allow-drop to write it"));
            let sql = sql.trim().trim_end_matches(';').trim_end();
            for line in format!("{sql};").lines() {
                let _ = writeln!(self.sql, "-- {line}");
            }
            self.held.push(difference.to_string());
        }
    }

    pub(super) fn blank(&mut self) {
        if !self.sql.is_empty() && !self.sql.ends_with("\n\n") {
            self.sql.push('\n');
        }
    }
}

/// Quotes a name when it needs it (not a plain identifier, or a keyword).
pub(super) fn quote(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abort",
        "action",
        "add",
        "after",
        "all",
        "alter",
        "and",
        "as",
        "asc",
        "before",
        "begin",
        "between",
        "by",
        "cascade",
        "case",
        "check",
        "collate",
        "column",
        "commit",
        "constraint",
        "create",
        "cross",
        "current",
        "default",
        "delete",
        "desc",
        "distinct",
        "drop",
        "else",
        "end",
        "escape",
        "except",
        "exists",
        "foreign",
        "from",
        "full",
        "group",
        "having",
        "if",
        "in",
        "index",
        "inner",
        "insert",
        "intersect",
        "into",
        "is",
        "join",
        "key",
        "left",
        "like",
        "limit",
        "match",
        "natural",
        "no",
        "not",
        "null",
        "of",
        "offset",
        "on",
        "or",
        "order",
        "outer",
        "primary",
        "references",
        "rename",
        "replace",
        "right",
        "rollback",
        "select",
        "set",
        "table",
        "temp",
        "then",
        "to",
        "transaction",
        "trigger",
        "union",
        "unique",
        "update",
        "using",
        "values",
        "view",
        "when",
        "where",
        "with",
        "without",
    ];
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain && !KEYWORDS.contains(&name.to_ascii_lowercase().as_str()) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The `CREATE` statement of the object `name` of `kind` in `conn`.
pub(super) fn create_sql(conn: &Connection, kind: &str, name: &str) -> Result<String> {
    conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = ?1 AND name = ?2 COLLATE NOCASE AND sql IS NOT NULL",
        [kind, name],
        |r| r.get::<_, String>(0),
    )
    .with_context(|| format!("cannot read the CREATE statement of {kind} `{name}`"))
}

/// The `CREATE INDEX` statements (not automatic indexes) and the `CREATE
/// TRIGGER` statements on `table` in `conn`, in creation order.
fn dependents(conn: &Connection, table: &str) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT type, name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') \
         AND tbl_name = ?1 COLLATE NOCASE AND sql IS NOT NULL ORDER BY CASE type WHEN 'index' THEN 0 ELSE 1 END, rowid",
    )?;
    let rows = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The top-level items of a `CREATE TABLE`'s parentheses (columns and
/// table constraints) as byte ranges, and the range of the parentheses.
pub(super) fn table_items(sql: &str) -> Option<(Range<usize>, Vec<Range<usize>>)> {
    let b = sql.as_bytes();
    let (mut i, mut depth, mut open, mut start) = (0, 0usize, None, 0);
    let mut items = Vec::new();
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' | b'[' => {
                i = migrate_runtime::model::closing_quote(b, i);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'(' => {
                depth += 1;
                if depth == 1 {
                    open = Some(i);
                    start = i + 1;
                }
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    items.push(start..i);
                    return Some((open?..i + 1, items));
                }
            }
            b',' if depth == 1 => {
                items.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The first name of an item (a column's name), unquoted.
pub(super) fn first_name(item: &str) -> String {
    let item = item.trim_start();
    let mut chars = item.chars();
    match chars.next() {
        Some(q @ ('"' | '`' | '[')) => {
            let close = if q == '[' { ']' } else { q };
            let rest = &item[1..];
            let mut out = String::new();
            let mut it = rest.chars().peekable();
            while let Some(c) = it.next() {
                if c == close {
                    if close != ']' && it.peek() == Some(&close) {
                        out.push(c);
                        it.next();
                        continue;
                    }
                    break;
                }
                out.push(c);
            }
            out
        }
        _ => item
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            .collect(),
    }
}

pub(super) fn is_constraint(item: &str) -> bool {
    let word = first_name(item).to_ascii_lowercase();
    let quoted = item.trim_start().starts_with(['"', '`', '[']);
    !quoted && matches!(word.as_str(), "constraint" | "primary" | "unique" | "check" | "foreign")
}

/// The definition of column `name` as written in `create` (`cohort TEXT
/// DEFAULT 'x'`), else one made from the model.
fn column_definition(create: &str, column: &Column) -> String {
    if let Some((_, items)) = table_items(create) {
        for r in items {
            let item = &create[r];
            if !is_constraint(item) && first_name(item).eq_ignore_ascii_case(&column.name) {
                return item.trim().to_owned();
            }
        }
    }
    let mut s = quote(&column.name);
    if !column.decl_type.is_empty() {
        let _ = write!(s, " {}", column.decl_type);
    }
    if column.not_null {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &column.default {
        let _ = write!(s, " DEFAULT {d}");
    }
    if let Some(c) = &column.collation {
        let _ = write!(s, " COLLATE {c}");
    }
    s
}

/// Whether `sql` names `name` (as a word, letter case ignored).
fn mentions(sql: &str, name: &str) -> bool {
    let sql = normalize(sql).to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    sql.match_indices(&name).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// How one table that both sides have changes.
#[derive(Default)]
struct TableChange {
    /// Column renames, old → new name.
    renames: Vec<(String, String)>,
    /// Columns to add (in `to`).
    added: Vec<Column>,
    /// Columns to drop (in `from`), with their difference.
    removed: Vec<(Column, Difference)>,
    /// Indexes (created ones) to drop (in `from`), with their difference; `true`: it is re-created.
    drop_indexes: Vec<(String, Difference, bool)>,
    /// Indexes (created ones) to create (in `to`).
    create_indexes: Vec<String>,
    /// Why the table must be rebuilt (empty: `ALTER TABLE` does).
    rebuild: Vec<String>,
    /// Why dropping a column needs a rebuild.
    drop_rebuild: Vec<String>,
}

/// The SQL that turns `from` into `to`.
pub(super) fn transform(from: Side<'_>, to: Side<'_>, allow_drop: bool) -> Result<Script> {
    let mut s = Script::default();
    let mut differences = from.model.diff(to.model);

    let renamed_tables = renamed_tables(from.model, to.model, &differences);
    let mut from_model: Model = from.model.clone();
    if !renamed_tables.is_empty() {
        for (old, new) in &renamed_tables {
            if let Some(mut t) = from_model.tables.remove(&key(old)) {
                t.name.clone_from(new);
                from_model.tables.insert(key(new), t);
            }
        }
        differences = from_model.diff(to.model);
    }
    // The name each table has in `from`'s database.
    let old_name = |name: &str| -> String {
        renamed_tables
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map_or_else(|| name.to_owned(), |(o, _)| o.clone())
    };

    // What changes, table by table.
    let mut changes: BTreeMap<String, TableChange> = BTreeMap::new();
    let mut new_tables = Vec::new();
    let mut gone_tables = Vec::new();
    let mut views: Vec<&Difference> = Vec::new();
    let mut triggers: Vec<&Difference> = Vec::new();
    for d in &differences {
        match (d.object, &d.table) {
            (Object::Table, _) => match &d.change {
                Change::Added(_) => new_tables.push(d),
                Change::Removed => gone_tables.push(d),
                Change::Changed(how) => changes
                    .entry(key(&d.name))
                    .or_default()
                    .rebuild
                    .push(format!("table {how}")),
                Change::Renamed(_) => {}
                _ => {}
            },
            (Object::View, _) => views.push(d),
            (Object::Trigger, _) => triggers.push(d),
            (_, Some(table)) => {
                let (Some(ft), Some(tt)) = (from_model.tables.get(&key(table)), to.model.tables.get(&key(table)))
                else {
                    continue;
                };
                let c = changes.entry(key(table)).or_default();
                table_difference(d, ft, tt, c);
            }
            (_, None) => {}
        }
    }
    // Which tables are rebuilt; a rebuild only for a drop waits for --allow-drop.
    let mut rebuilt: BTreeSet<String> = BTreeSet::new();
    for (k, c) in &changes {
        if !c.rebuild.is_empty() || (allow_drop && !c.drop_rebuild.is_empty()) {
            rebuilt.insert(k.clone());
        }
    }

    // Views and triggers that name a rebuilt or renamed table are dropped
    // first and re-created from `to` at the end.
    let touched: Vec<String> = rebuilt
        .iter()
        .cloned()
        .chain(renamed_tables.iter().map(|(o, _)| key(o)))
        .collect();
    let mut recreate_views: BTreeSet<String> = BTreeSet::new();
    let mut recreate_triggers: BTreeSet<String> = BTreeSet::new();

    // Held-back views and triggers that a rebuild would break or take
    // with it: re-created as they are, from `from`.
    let mut keep: Vec<String> = Vec::new();
    // 1. Views: removed, changed, or naming a rebuilt table (SQLite's
    // procedure drops those and re-creates them after the rebuild).
    for (k, v) in &from.model.views {
        let difference = views.iter().find(|d| key(&d.name) == *k);
        let touches = touched.iter().any(|t| mentions(&v.sql, t));
        match difference.map(|d| &d.change) {
            Some(Change::Removed) => {
                let d = difference.expect("found");
                if touches && !allow_drop {
                    s.comment(&format!(
                        "view {} is dropped and re-created as it is around the rebuild (held back: pass --allow-drop to drop it)",
                        v.name
                    ));
                    s.live(&format!("DROP VIEW {}", quote(&v.name)));
                    keep.push(create_sql(from.conn, "view", &v.name)?);
                    s.held.push(d.to_string());
                } else {
                    s.drop(
                        allow_drop,
                        &format!("drops view {}", v.name),
                        &format!("DROP VIEW {}", quote(&v.name)),
                        d,
                    );
                }
            }
            Some(Change::Changed(_)) => {
                s.live(&format!("DROP VIEW {}", quote(&v.name)));
                recreate_views.insert(k.clone());
            }
            _ if touches && to.model.views.contains_key(k) => {
                s.live(&format!("DROP VIEW {}", quote(&v.name)));
                recreate_views.insert(k.clone());
            }
            _ => {}
        }
    }
    recreate_views.extend(
        views
            .iter()
            .filter(|d| matches!(d.change, Change::Added(_)))
            .map(|d| key(&d.name)),
    );
    // 2. Triggers: removed, changed, or on or naming a rebuilt table.
    for (k, t) in &from.model.triggers {
        let difference = triggers.iter().find(|d| key(&d.name) == *k);
        let on_rebuilt = rebuilt.contains(&key(&t.table));
        let touches = touched.iter().any(|tb| mentions(&t.sql, tb));
        match difference.map(|d| &d.change) {
            Some(Change::Removed) => {
                let d = difference.expect("found");
                if (on_rebuilt || touches) && !allow_drop {
                    s.comment(&format!(
                        "trigger {} is re-created as it is after the rebuild (held back: pass --allow-drop to drop it)",
                        t.name
                    ));
                    if !on_rebuilt {
                        s.live(&format!("DROP TRIGGER {}", quote(&t.name)));
                    }
                    keep.push(create_sql(from.conn, "trigger", &t.name)?);
                    s.held.push(d.to_string());
                } else if on_rebuilt {
                    s.comment(&format!("drops trigger {} (with its table)", t.name));
                } else {
                    s.drop(
                        allow_drop,
                        &format!("drops trigger {} on {}", t.name, t.table),
                        &format!("DROP TRIGGER {}", quote(&t.name)),
                        d,
                    );
                }
            }
            Some(Change::Changed(_)) => {
                if !on_rebuilt {
                    s.live(&format!("DROP TRIGGER {}", quote(&t.name)));
                }
                recreate_triggers.insert(k.clone());
            }
            _ if on_rebuilt => {
                recreate_triggers.insert(k.clone());
            }
            _ if touches && to.model.triggers.contains_key(k) => {
                s.live(&format!("DROP TRIGGER {}", quote(&t.name)));
                recreate_triggers.insert(k.clone());
            }
            _ => {}
        }
    }
    recreate_triggers.extend(
        triggers
            .iter()
            .filter(|d| matches!(d.change, Change::Added(_)))
            .map(|d| key(&d.name)),
    );
    // 3. Indexes dropped or changed, on tables kept as they are.
    for (k, c) in &changes {
        if rebuilt.contains(k) {
            continue;
        }
        for (name, d, recreated) in &c.drop_indexes {
            if *recreated {
                s.live(&format!("DROP INDEX {}", quote(name)));
            } else {
                s.drop(
                    allow_drop,
                    &format!("drops index {name} (no data is lost)"),
                    &format!("DROP INDEX {}", quote(name)),
                    d,
                );
            }
        }
    }
    s.blank();
    // 4. Tables renamed.
    for (old, new) in &renamed_tables {
        s.comment(&format!("table {old} renamed to {new} (likely: same columns)"));
        s.live(&format!("ALTER TABLE {} RENAME TO {}", quote(old), quote(new)));
    }
    // 5. Tables both sides have.
    for (k, c) in &changes {
        let (Some(ft), Some(tt)) = (from_model.tables.get(k), to.model.tables.get(k)) else {
            continue;
        };
        if rebuilt.contains(k) {
            rebuild(&mut s, from, to, ft, tt, c, allow_drop, &old_name)?;
            continue;
        }
        let table = quote(&tt.name);
        for (old, new) in &c.renames {
            s.live(&format!(
                "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                quote(old),
                quote(new)
            ));
        }
        if !c.added.is_empty() {
            let create = create_sql(to.conn, "table", &tt.name)?;
            for col in &c.added {
                if from.live {
                    s.comment(&format!(
                        "column {}.{} comes back without its values (they went with the column); restore them from a backup",
                        tt.name, col.name
                    ));
                }
                s.live(&format!(
                    "ALTER TABLE {table} ADD COLUMN {}",
                    column_definition(&create, col)
                ));
            }
        }
        for (col, d) in &c.removed {
            let mut why = format!("would lose data: drops column {}.{}", tt.name, col.name);
            if from.live {
                let n: i64 = from
                    .conn
                    .query_row(
                        &format!("SELECT count({}) FROM {}", quote(&col.name), quote(&ft.name)),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let _ = write!(
                    why,
                    " and its {}",
                    crate::messages::count(usize::try_from(n).unwrap_or(0), "value")
                );
            }
            if !c.drop_rebuild.is_empty() {
                let _ = write!(why, ", which needs a table rebuild ({})", c.drop_rebuild.join(", "));
                s.drop(
                    false,
                    &why,
                    &format!("-- rebuild {} without column {}", tt.name, col.name),
                    d,
                );
            } else {
                s.drop(
                    allow_drop,
                    &why,
                    &format!("ALTER TABLE {table} DROP COLUMN {}", quote(&col.name)),
                    d,
                );
            }
        }
        for name in &c.create_indexes {
            s.live(&create_sql(to.conn, "index", name)?);
        }
    }
    // 6. Tables added.
    for d in &new_tables {
        let Some(t) = to.model.tables.get(&key(&d.name)) else {
            continue;
        };
        s.blank();
        if from.live {
            s.comment(&format!(
                "table {} comes back empty (its rows went with it); restore them from a backup",
                t.name
            ));
        } else {
            s.comment(&format!("table {} added", t.name));
        }
        s.live(&create_sql(to.conn, "table", &t.name)?);
        for (kind, _, sql) in dependents(to.conn, &t.name)? {
            if kind == "index" {
                s.live(&sql);
            }
        }
    }
    // 7. Tables removed.
    for d in &gone_tables {
        let Some(t) = from_model.tables.get(&key(&d.name)) else {
            continue;
        };
        let mut why = format!("would lose data: drops table {}", t.name);
        if from.live {
            let n: i64 = from
                .conn
                .query_row(&format!("SELECT count(*) FROM {}", quote(&t.name)), [], |r| r.get(0))
                .unwrap_or(0);
            let _ = write!(
                why,
                " and its {}",
                crate::messages::count(usize::try_from(n).unwrap_or(0), "row")
            );
        }
        s.blank();
        s.drop(allow_drop, &why, &format!("DROP TABLE {}", quote(&t.name)), d);
    }
    // 8. Views and triggers, from `to`.
    let mut tail = Vec::new();
    for k in &recreate_views {
        if let Some(v) = to.model.views.get(k) {
            tail.push(create_sql(to.conn, "view", &v.name)?);
        }
    }
    for k in &recreate_triggers {
        if let Some(t) = to.model.triggers.get(k) {
            tail.push(create_sql(to.conn, "trigger", &t.name)?);
        }
    }
    tail.extend(keep);
    if !tail.is_empty() {
        s.blank();
        for sql in tail {
            s.live(&sql);
        }
    }
    s.rebuilt = rebuilt
        .iter()
        .filter_map(|k| to.model.tables.get(k).map(|t| t.name.clone()))
        .collect();
    while s.sql.ends_with("\n\n") {
        s.sql.pop();
    }
    Ok(s)
}

/// Tables likely renamed: one only in `from` and one only in `to`, with the
/// same columns, foreign keys and CHECK constraints. `(old, new)` names.
pub(super) fn renamed_tables(from: &Model, to: &Model, differences: &[Difference]) -> Vec<(String, String)> {
    let mut renamed: Vec<(String, String)> = Vec::new();
    let removed = differences
        .iter()
        .filter(|d| d.object == Object::Table && d.change == Change::Removed)
        .filter_map(|d| from.tables.get(&key(&d.name)));
    for old in removed {
        let candidate = differences
            .iter()
            .filter(|d| d.object == Object::Table && matches!(d.change, Change::Added(_)))
            .filter_map(|d| to.tables.get(&key(&d.name)))
            .find(|new| {
                new.columns == old.columns
                    && new.foreign_keys == old.foreign_keys
                    && new.checks == old.checks
                    && !renamed.iter().any(|(_, n)| n.eq_ignore_ascii_case(&new.name))
            });
        if let Some(new) = candidate {
            renamed.push((old.name.clone(), new.name.clone()));
        }
    }
    renamed
}

/// Sorts one difference of a table both sides have into `c`.
fn table_difference(d: &Difference, ft: &Table, tt: &Table, c: &mut TableChange) {
    let col = |t: &Table, name: &str| t.columns.iter().find(|x| x.name.eq_ignore_ascii_case(name)).cloned();
    match (d.object, &d.change) {
        (Object::Column, Change::Renamed(to)) => c.renames.push((d.name.clone(), to.clone())),
        (Object::Column, Change::Added(_)) => {
            if let Some(column) = col(tt, &d.name) {
                let default = column.default.as_deref().unwrap_or("");
                let constant_default =
                    !(default.starts_with('(') || default.to_ascii_lowercase().starts_with("current_"));
                if column.primary_key > 0 {
                    c.rebuild
                        .push(format!("column {} added to the primary key", column.name));
                } else if column.generated.is_some() {
                    c.rebuild.push(format!("generated column {} added", column.name));
                } else if column.not_null && column.default.is_none() {
                    c.rebuild
                        .push(format!("column {} added NOT NULL without a default", column.name));
                } else if !constant_default {
                    c.rebuild.push(format!(
                        "column {} added with a default that is not a constant",
                        column.name
                    ));
                }
                c.added.push(column);
            }
        }
        (Object::Column, Change::Removed) => {
            if let Some(column) = col(ft, &d.name) {
                let name = column.name.to_ascii_lowercase();
                if column.primary_key > 0 {
                    c.drop_rebuild
                        .push(format!("{} is part of the primary key", column.name));
                } else if ft
                    .indexes
                    .values()
                    .any(|ix| ix.origin != "c" && ix.columns.iter().any(|k| k.column.eq_ignore_ascii_case(&name)))
                {
                    c.drop_rebuild.push(format!("{} is UNIQUE", column.name));
                } else if ft
                    .foreign_keys
                    .iter()
                    .any(|fk| fk.columns.iter().any(|k| k.eq_ignore_ascii_case(&name)))
                {
                    c.drop_rebuild.push(format!("{} has a foreign key", column.name));
                } else if ft.checks.iter().any(|check| mentions(check, &name)) {
                    c.drop_rebuild.push(format!("{} is in a CHECK constraint", column.name));
                }
                c.removed.push((column, d.clone()));
            }
        }
        (Object::Column, Change::Changed(how)) => c.rebuild.push(format!("column {} changed: {how}", d.name)),
        (Object::Index, change) => {
            let from_ix = ft.indexes.values().find(|ix| ix.name == d.name);
            let to_ix = tt.indexes.values().find(|ix| ix.name == d.name);
            let automatic = from_ix.or(to_ix).is_some_and(|ix| ix.origin != "c");
            if automatic {
                c.rebuild
                    .push(format!("UNIQUE or PRIMARY KEY constraint {}", d.change_word()));
                return;
            }
            match change {
                Change::Added(_) => c.create_indexes.push(d.name.clone()),
                Change::Removed => c.drop_indexes.push((d.name.clone(), d.clone(), false)),
                _ => {
                    c.drop_indexes.push((d.name.clone(), d.clone(), true));
                    c.create_indexes.push(d.name.clone());
                }
            }
        }
        (Object::ForeignKey, _) => c.rebuild.push(format!("foreign key {} {}", d.name, d.change_word())),
        (Object::Check, _) => c.rebuild.push(format!("CHECK ({}) {}", d.name, d.change_word())),
        _ => c.rebuild.push(d.to_string()),
    }
}

trait ChangeWord {
    fn change_word(&self) -> &'static str;
}

impl ChangeWord for Difference {
    fn change_word(&self) -> &'static str {
        match self.change {
            Change::Added(_) => "added",
            Change::Removed => "removed",
            Change::Renamed(_) => "renamed",
            _ => "changed",
        }
    }
}

/// SQLite's table rebuild: `ft` (in `from`) becomes `tt` (in `to`),
/// every row copied. Without `allow_drop`, the columns it would drop are
/// kept (appended to the new table).
#[allow(clippy::too_many_arguments)]
fn rebuild(
    s: &mut Script,
    from: Side<'_>,
    to: Side<'_>,
    ft: &Table,
    tt: &Table,
    c: &TableChange,
    allow_drop: bool,
    old_name: &dyn Fn(&str) -> String,
) -> Result<()> {
    let create = create_sql(to.conn, "table", &tt.name)?;
    let from_create = create_sql(from.conn, "table", &old_name(&ft.name))?;
    let mut temp = format!("new_{}", tt.name);
    while from.model.tables.contains_key(&key(&temp)) || to.model.tables.contains_key(&key(&temp)) {
        temp.insert(0, '_');
    }
    let (parens, items) = table_items(&create).context("cannot read the columns of the CREATE TABLE statement")?;
    // The columns a drop would lose, kept unless --allow-drop.
    let kept: Vec<&(Column, Difference)> = if allow_drop {
        Vec::new()
    } else {
        c.removed.iter().collect()
    };
    let mut body = create[parens.start..].to_owned();
    if !kept.is_empty() {
        let last_column = items.iter().rev().find(|r| !is_constraint(&create[(*r).clone()]));
        let at = last_column.map_or(parens.start + 1, |r| r.end) - parens.start;
        let extra: Vec<String> = kept
            .iter()
            .map(|(col, _)| column_definition(&from_create, col))
            .collect();
        body.insert_str(at, &format!(", {}", extra.join(", ")));
    }
    s.blank();
    let mut why = c.rebuild.clone();
    if allow_drop {
        why.extend(c.removed.iter().map(|(col, _)| format!("column {} dropped", col.name)));
    }
    s.comment(&format!(
        "rebuild table {} ({}): SQLite's ALTER TABLE cannot do this; https://sqlite.org/lang_altertable.html#otheralter",
        tt.name,
        why.join("; ")
    ));
    for (col, d) in &kept {
        s.comment(&format!(
            "would lose data: the rebuild keeps column {}.{}; pass --allow-drop to drop it",
            tt.name, col.name
        ));
        s.held.push(d.to_string());
    }
    s.live(&format!(
        "CREATE TABLE {} {}",
        quote(&temp),
        body.trim_end().trim_end_matches(';')
    ));
    // Copy what both have: same name, renamed, or kept.
    let mut targets = Vec::new();
    let mut sources = Vec::new();
    for col in tt.columns.iter().filter(|x| x.generated.is_none() && !x.hidden) {
        let source = c
            .renames
            .iter()
            .find(|(_, new)| new.eq_ignore_ascii_case(&col.name))
            .map(|(old, _)| old.clone())
            .or_else(|| {
                ft.columns
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(&col.name) && x.generated.is_none())
                    .map(|x| x.name.clone())
            });
        if let Some(source) = source {
            targets.push(quote(&col.name));
            sources.push(quote(&source));
        } else if col.not_null && col.default.is_none() && col.primary_key == 0 {
            s.comment(&format!(
                "column {} is NOT NULL without a default: the copy fails when {} has rows; give it a value in the SELECT",
                col.name, ft.name
            ));
        }
    }
    for (col, _) in &kept {
        targets.push(quote(&col.name));
        sources.push(quote(&col.name));
    }
    for col in tt.columns.iter().filter(|x| !x.hidden) {
        if let Some(fc) = ft.columns.iter().find(|x| x.name.eq_ignore_ascii_case(&col.name))
            && fc.not_null != col.not_null
            && col.not_null
        {
            s.comment(&format!(
                "column {} becomes NOT NULL: the copy fails when a row has NULL in it; fill those first",
                col.name
            ));
        }
    }
    s.live(&format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        quote(&temp),
        targets.join(", "),
        sources.join(", "),
        quote(&ft.name)
    ));
    s.live(&format!("DROP TABLE {}", quote(&ft.name)));
    s.live(&format!("ALTER TABLE {} RENAME TO {}", quote(&temp), quote(&tt.name)));
    for (kind, _, sql) in dependents(to.conn, &tt.name)? {
        if kind == "index" {
            s.live(&sql);
        }
    }
    // Indexes only `from` has went with the old table: re-created unless --allow-drop.
    for (name, d, recreated) in &c.drop_indexes {
        if *recreated {
            continue;
        }
        if allow_drop {
            s.comment(&format!("index {name} is not re-created (--allow-drop)"));
        } else {
            s.comment(&format!(
                "index {name} is re-created as it was (held back: pass --allow-drop to drop it)"
            ));
            s.live(&create_sql(from.conn, "index", name)?);
            s.held.push(d.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_a_create_table() {
        let sql = "CREATE TABLE \"a(b\" (id INTEGER PRIMARY KEY, \"x,y\" TEXT DEFAULT 'a,b', n NUMERIC(10, 2), CHECK (n > 0)) STRICT";
        let (parens, items) = table_items(sql).unwrap();
        assert!(sql[parens.clone()].starts_with("(id"));
        assert!(sql[parens].ends_with("0))"));
        let texts: Vec<&str> = items.iter().map(|r| sql[r.clone()].trim()).collect();
        assert_eq!(
            texts,
            [
                "id INTEGER PRIMARY KEY",
                "\"x,y\" TEXT DEFAULT 'a,b'",
                "n NUMERIC(10, 2)",
                "CHECK (n > 0)"
            ]
        );
        assert_eq!(first_name(texts[1]), "x,y");
        assert!(is_constraint(texts[3]));
        assert!(!is_constraint(texts[0]));
    }

    #[test]
    fn quoting_and_mentions() {
        assert_eq!(quote("recruits"), "recruits");
        assert_eq!(quote("order"), "\"order\"");
        assert_eq!(quote("a b"), "\"a b\"");
        assert!(mentions("CREATE VIEW v AS SELECT * FROM Recruits", "recruits"));
        assert!(!mentions("CREATE VIEW v AS SELECT * FROM recruits_old", "recruits"));
    }
}
