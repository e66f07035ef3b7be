//! The SQL that turns one PostgreSQL schema into another, from the two
//! models alone (`diff --sql` and `diff --emit` on PostgreSQL).
//!
//! PostgreSQL's `ALTER TABLE` says every change directly (PostgreSQL's
//! manual, "ALTER TABLE"): `RENAME TO`, `RENAME COLUMN`, `ADD COLUMN`,
//! `ALTER COLUMN … TYPE … USING`, `SET`/`DROP NOT NULL`, `SET`/`DROP
//! DEFAULT`, identity, `ADD`/`DROP CONSTRAINT`; so no table is rebuilt and
//! no row is copied. As on SQLite, every statement that drops something is
//! written commented out, with a line that says why, unless `allow_drop`.

use migrate_runtime::model::{Change, Column, Definition, Difference, Model, Object, Table, quote_postgres as quote};

use super::pgalter::{self, Alter};
use super::sqlgen::{Script, renamed_tables};

/// The statements of one phase, in order.
#[derive(Default)]
struct Phases {
    /// Drops of views, triggers, indexes and constraints that change.
    before: Vec<Step>,
    /// New tables.
    tables: Vec<Step>,
    /// Column changes.
    columns: Vec<Step>,
    /// Indexes, constraints, views and triggers made or made again.
    after: Vec<Step>,
    /// Comments, row-level security and policies set, on what is made.
    settings: Vec<Step>,
    /// Tables and types, functions and sequences dropped.
    last: Vec<Step>,
}

enum Step {
    Live(String),
    Comment(String),
    /// Loses something: held back without `allow_drop`.
    Drop {
        why: String,
        sql: String,
        difference: Difference,
    },
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn definition<'a>(map: &'a std::collections::BTreeMap<String, Definition>, name: &str) -> Option<&'a Definition> {
    map.values().find(|d| d.name == name)
}

/// `CONSTRAINT name CHECK (…)` → `name`.
fn constraint_name(check: &str) -> Option<&str> {
    let rest = check.strip_prefix("CONSTRAINT ")?;
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find("\" ")?;
        return Some(&rest[..end + 2]);
    }
    rest.split(' ').next()
}

/// The SQL that turns `from` into `to`.
pub(super) fn transform(from: &Model, to: &Model, allow_drop: bool) -> Script {
    let mut s = Script::default();
    let renamed = renamed_tables(from, to, &from.diff(to));
    let mut from = from.clone();
    for (old, new) in &renamed {
        if let Some(mut t) = from.tables.remove(&key(old)) {
            s.live(&format!("ALTER TABLE {} RENAME TO {}", quote(old), quote(new)));
            t.name.clone_from(new);
            from.tables.insert(key(new), t);
        }
    }
    let differences = from.diff(to);
    let mut p = Phases::default();
    let mut first = Vec::new();
    for d in &differences {
        match d.object {
            Object::Function | Object::Type | Object::Sequence | Object::Collation => {
                definition_step(d, &from, to, &mut first, &mut p);
            }
            Object::View => view_step(d, &from, to, &mut p),
            Object::Trigger => trigger_step(d, &from, to, &mut p),
            Object::Table => table_step(d, &from, to, &mut p),
            Object::Comment | Object::Policy | Object::RowSecurity | Object::Partition => {
                setting_step(d, &from, to, &mut p);
            }
            _ => {}
        }
    }
    for (k, ft) in &from.tables {
        if let Some(tt) = to.tables.get(k) {
            let mine: Vec<&Difference> = differences
                .iter()
                .filter(|d| d.table.as_deref().is_some_and(|t| key(t) == *k) && d.object != Object::Trigger)
                .collect();
            table_changes(ft, tt, &mine, &mut p);
        }
    }
    for step in first
        .into_iter()
        .chain(p.before)
        .chain(p.tables)
        .chain(p.columns)
        .chain(p.after)
        .chain(p.settings)
        .chain(p.last)
    {
        match step {
            Step::Live(sql) => s.live(&sql),
            Step::Comment(text) => s.comment(&text),
            Step::Drop { why, sql, difference } => s.drop(allow_drop, &why, &sql, &difference),
        }
    }
    s
}

fn definition_step(d: &Difference, from: &Model, to: &Model, first: &mut Vec<Step>, p: &mut Phases) {
    let (map_from, map_to, kind) = match d.object {
        Object::Function => (&from.functions, &to.functions, "FUNCTION"),
        Object::Type => (&from.types, &to.types, "TYPE"),
        Object::Collation => (&from.collations, &to.collations, "COLLATION"),
        _ => (&from.sequences, &to.sequences, "SEQUENCE"),
    };
    match &d.change {
        Change::Added(_) => {
            if let Some(def) = definition(map_to, &d.name) {
                first.push(Step::Live(def.sql.clone()));
            }
        }
        Change::Changed(_) if kind == "FUNCTION" => {
            // pg_get_functiondef writes CREATE OR REPLACE.
            if let Some(def) = definition(map_to, &d.name) {
                first.push(Step::Live(def.sql.clone()));
            }
        }
        Change::Changed(_) => {
            let was = definition(map_from, &d.name).map(|d| d.sql.clone()).unwrap_or_default();
            let is = definition(map_to, &d.name).map(|d| d.sql.clone()).unwrap_or_default();
            match pgalter::alter(&d.name, &was, &is, from) {
                Alter::Live { note, sql } => {
                    if let Some(note) = note {
                        first.push(Step::Comment(note));
                    }
                    first.extend(sql.into_iter().map(Step::Live));
                }
                Alter::Rebuild { why, sql } => first.push(Step::Drop {
                    why,
                    sql: sql.join(";\n"),
                    difference: d.clone(),
                }),
                Alter::Cannot(why) => first.push(Step::Comment(why)),
            }
        }
        Change::Removed => {
            let name = if kind == "FUNCTION" {
                // `touch(integer)`: the name with its argument types.
                match d.name.split_once('(') {
                    Some((base, args)) => format!("{}({args}", quote(base)),
                    None => quote(&d.name),
                }
            } else {
                quote(&d.name)
            };
            let kind =
                if kind == "FUNCTION" && definition(map_from, &d.name).is_some_and(|f| f.sql.contains(" PROCEDURE ")) {
                    "PROCEDURE"
                } else {
                    kind
                };
            p.last.push(Step::Drop {
                why: format!("drops {} {}", kind.to_ascii_lowercase(), d.name),
                sql: format!("DROP {kind} {name}"),
                difference: d.clone(),
            });
        }
        _ => {}
    }
}

/// Comments, row-level security and policies: set after what they are on
/// is made, taken away before it changes. Turning row-level security off
/// and dropping a policy show rows to roles that did not see them: held
/// back like drops.
fn setting_step(d: &Difference, from: &Model, to: &Model, p: &mut Phases) {
    let find = |m: &Model| {
        m.settings
            .values()
            .find(|s| s.object == d.object && s.name == d.name && s.table == d.table)
            .cloned()
    };
    // A new partition is made as one (`CREATE TABLE … PARTITION OF`).
    let new_table = |t: &Option<String>| t.as_deref().is_some_and(|t| !from.tables.contains_key(&key(t)));
    match (&d.change, find(from), find(to)) {
        (Change::Added(_), _, Some(new)) if d.object == Object::Partition && new_table(&new.table) => {}
        (Change::Added(_), _, Some(new)) => p.settings.push(Step::Live(new.sql)),
        (Change::Changed(_), Some(old), Some(new)) => {
            if d.object != Object::Comment {
                p.before.push(Step::Live(old.undo));
            }
            p.settings.push(Step::Live(new.sql));
        }
        (Change::Removed, Some(old), _) if d.object == Object::Comment => p.before.push(Step::Live(old.undo)),
        (Change::Removed, Some(old), _) => {
            let table = d.table.as_deref().unwrap_or_default();
            let why = if d.object == Object::Policy {
                format!(
                    "drops policy {} on {table}, which changes the rows each role sees",
                    d.name
                )
            } else if d.object == Object::Partition {
                format!(
                    "detaches partition {table} ({}): its rows stay in {table} but leave the partitioned table",
                    d.name
                )
            } else {
                format!(
                    "turns row-level security ({}) off for {table}, which shows its rows to every role it is granted to",
                    d.name
                )
            };
            p.before.push(Step::Drop {
                why,
                sql: old.undo,
                difference: d.clone(),
            });
        }
        _ => {}
    }
}

fn view_kind(sql: &str) -> &'static str {
    if sql.starts_with("CREATE MATERIALIZED VIEW") {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    }
}

fn view_step(d: &Difference, from: &Model, to: &Model, p: &mut Phases) {
    let k = key(&d.name);
    match &d.change {
        Change::Added(_) => {
            if let Some(v) = to.views.get(&k) {
                p.after.push(Step::Live(v.sql.clone()));
            }
        }
        Change::Changed(_) => {
            if let (Some(old), Some(new)) = (from.views.get(&k), to.views.get(&k)) {
                p.before
                    .push(Step::Live(format!("DROP {} {}", view_kind(&old.sql), quote(&old.name))));
                p.after.push(Step::Live(new.sql.clone()));
            }
        }
        Change::Removed => {
            if let Some(old) = from.views.get(&k) {
                p.before.push(Step::Drop {
                    why: format!("drops view {}", old.name),
                    sql: format!("DROP {} {}", view_kind(&old.sql), quote(&old.name)),
                    difference: d.clone(),
                });
            }
        }
        _ => {}
    }
}

fn trigger_step(d: &Difference, from: &Model, to: &Model, p: &mut Phases) {
    let table = d.table.clone().unwrap_or_default();
    let find = |m: &Model| {
        m.triggers
            .values()
            .find(|t| t.name == d.name && t.table.eq_ignore_ascii_case(&table))
            .cloned()
    };
    let drop_sql = format!("DROP TRIGGER {} ON {}", quote(&d.name), quote(&table));
    match &d.change {
        Change::Added(_) => {
            if let Some(t) = find(to) {
                p.after.push(Step::Live(t.sql));
            }
        }
        Change::Changed(_) => {
            if let Some(t) = find(to) {
                p.before.push(Step::Live(drop_sql));
                p.after.push(Step::Live(t.sql));
            }
        }
        Change::Removed if find(from).is_some() => p.before.push(Step::Drop {
            why: format!("drops trigger {} on {table}", d.name),
            sql: drop_sql,
            difference: d.clone(),
        }),
        _ => {}
    }
}

fn table_step(d: &Difference, from: &Model, to: &Model, p: &mut Phases) {
    match &d.change {
        Change::Added(_) => {
            let Some(t) = to.tables.get(&key(&d.name)) else {
                return;
            };
            p.tables.push(Step::Live(to.postgres_create_table(t)));
            for ix in t.indexes.values().filter(|ix| ix.origin == "c") {
                p.after.push(Step::Live(ix.postgres_create(&t.name)));
            }
            for fk in &t.foreign_keys {
                p.after.push(Step::Live(format!(
                    "ALTER TABLE {} ADD {}",
                    quote(&t.name),
                    fk.postgres_definition()
                )));
            }
        }
        Change::Removed => {
            if let Some(t) = from.tables.get(&key(&d.name)) {
                p.last.push(Step::Drop {
                    why: format!("drops table {} and every row in it", t.name),
                    sql: format!("DROP TABLE {}", quote(&t.name)),
                    difference: d.clone(),
                });
            }
        }
        _ => {}
    }
}

/// `CONSTRAINT name PRIMARY KEY (a, b)` or `… UNIQUE (…)`.
fn constraint(ix: &migrate_runtime::model::Index) -> String {
    let kind = if ix.origin == "pk" { "PRIMARY KEY" } else { "UNIQUE" };
    format!(
        "CONSTRAINT {} {kind} ({}){}",
        quote(&ix.name),
        ix.postgres_columns(),
        ix.postgres_include()
    )
}

fn table_changes(ft: &Table, tt: &Table, differences: &[&Difference], p: &mut Phases) {
    let table = quote(&tt.name);
    let column = |t: &Table, name: &str| t.columns.iter().find(|c| c.name == name).cloned();
    let mut fk_removed = ft.foreign_keys.iter().filter(|fk| !tt.foreign_keys.contains(fk));
    for d in differences {
        match (d.object, &d.change) {
            (Object::Column, Change::Renamed(new)) => p.columns.push(Step::Live(format!(
                "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                quote(&d.name),
                quote(new)
            ))),
            (Object::Column, Change::Added(_)) => {
                if let Some(c) = column(tt, &d.name) {
                    p.columns.push(Step::Live(format!(
                        "ALTER TABLE {table} ADD COLUMN {}",
                        c.postgres_definition()
                    )));
                }
            }
            (Object::Column, Change::Removed) => p.columns.push(Step::Drop {
                why: format!("drops column {}.{} and its data", tt.name, d.name),
                sql: format!("ALTER TABLE {table} DROP COLUMN {}", quote(&d.name)),
                difference: (*d).clone(),
            }),
            (Object::Column, Change::Changed(_)) => {
                if let (Some(fc), Some(tc)) = (column(ft, &d.name), column(tt, &d.name)) {
                    alter_column(&table, &fc, &tc, p);
                }
            }
            (Object::Index, change) => {
                let old = ft.indexes.values().find(|ix| ix.name == d.name);
                let new = tt.indexes.values().find(|ix| ix.name == d.name);
                let drop_sql = |ix: &migrate_runtime::model::Index| {
                    if ix.origin == "c" {
                        format!("DROP INDEX IF EXISTS {}", quote(&ix.name))
                    } else {
                        format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}", quote(&ix.name))
                    }
                };
                let create_sql = |ix: &migrate_runtime::model::Index| {
                    if ix.origin == "c" {
                        ix.postgres_create(&tt.name)
                    } else {
                        format!("ALTER TABLE {table} ADD {}", constraint(ix))
                    }
                };
                match (change, old, new) {
                    (Change::Removed, Some(old), _) => p.before.push(Step::Drop {
                        why: format!("drops index {} of {}", old.name, tt.name),
                        sql: drop_sql(old),
                        difference: (*d).clone(),
                    }),
                    (Change::Added(_), _, Some(new)) => p.after.push(Step::Live(create_sql(new))),
                    (Change::Changed(_), Some(old), Some(new)) => {
                        p.before.push(Step::Live(drop_sql(old)));
                        p.after.push(Step::Live(create_sql(new)));
                    }
                    _ => {}
                }
            }
            (Object::ForeignKey, Change::Removed) => {
                if let Some(fk) = fk_removed.next() {
                    let name = fk.name.as_deref().map(quote).unwrap_or_default();
                    p.before.push(Step::Drop {
                        why: format!("drops a foreign key of {}", tt.name),
                        sql: format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"),
                        difference: (*d).clone(),
                    });
                }
            }
            (Object::Check, Change::Removed) => {
                let name = constraint_name(&d.name).unwrap_or_default();
                p.before.push(Step::Drop {
                    why: format!("drops a constraint of {}", tt.name),
                    sql: format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"),
                    difference: (*d).clone(),
                });
            }
            (Object::Check, Change::Added(_)) => {
                p.after.push(Step::Live(format!("ALTER TABLE {table} ADD {}", d.name)))
            }
            _ => {}
        }
    }
    for fk in tt.foreign_keys.iter().filter(|fk| !ft.foreign_keys.contains(fk)) {
        p.after.push(Step::Live(format!(
            "ALTER TABLE {table} ADD {}",
            fk.postgres_definition()
        )));
    }
}

fn alter_column(table: &str, fc: &Column, tc: &Column, p: &mut Phases) {
    let col = quote(&tc.name);
    let alter = |what: String| Step::Live(format!("ALTER TABLE {table} ALTER COLUMN {col} {what}"));
    if fc.generated != tc.generated {
        p.columns.push(Step::Comment(format!(
            "column {col} of {table}: a generated column changed, which this cannot write for you: was `{}`, is `{}`",
            fc.postgres_definition(),
            tc.postgres_definition()
        )));
        return;
    }
    if fc.decl_type != tc.decl_type || fc.collation != tc.collation {
        let collate = tc
            .collation
            .as_deref()
            .map(|c| format!(" COLLATE {}", quote(c)))
            .unwrap_or_default();
        p.columns.push(alter(format!(
            "TYPE {}{collate} USING {col}::{}",
            tc.decl_type, tc.decl_type
        )));
    }
    if fc.default != tc.default && tc.generated.is_none() {
        p.columns.push(match &tc.default {
            Some(d) => alter(format!("SET DEFAULT {d}")),
            None => alter("DROP DEFAULT".to_owned()),
        });
    }
    match (&fc.identity, &tc.identity) {
        (None, Some(i)) => p.columns.push(alter(format!("ADD GENERATED {i} AS IDENTITY"))),
        (Some(_), None) => p.columns.push(alter("DROP IDENTITY".to_owned())),
        (Some(a), Some(b)) if a != b => p.columns.push(alter(format!("SET GENERATED {b}"))),
        _ => {}
    }
    if fc.not_null != tc.not_null {
        p.columns.push(alter(
            if tc.not_null { "SET NOT NULL" } else { "DROP NOT NULL" }.to_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::constraint_name;

    #[test]
    fn constraint_names_are_read_from_checks() {
        assert_eq!(constraint_name("CONSTRAINT t_x_check CHECK (x > 0)"), Some("t_x_check"));
        assert_eq!(constraint_name("CONSTRAINT \"a b\" CHECK (x > 0)"), Some("\"a b\""));
        assert_eq!(constraint_name("CHECK (x > 0)"), None);
    }
}
