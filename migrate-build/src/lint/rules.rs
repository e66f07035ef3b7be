//! The rules: one function each, pure over a migration's statements and
//! the schema before and after it.

use migrate_runtime::model::{Model, Table};

use super::sql::{Kind, Statement};

/// What a rule looks at: one migration.
pub(crate) struct Input<'a> {
    /// The up script's statements.
    pub(crate) statements: &'a [Statement],
    /// The schema before the migration.
    pub(crate) before: &'a Model,
    /// The schema after it.
    pub(crate) after: &'a Model,
    /// Whether it runs outside a transaction (`-- migrate:no-transaction`).
    pub(crate) no_transaction: bool,
    /// The views that work before it and no longer after: (view, error).
    pub(crate) broken_views: &'a [(String, String)],
}

/// A rule that fired: its id, the line, and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The rule's id (`MS001`).
    pub(crate) rule: &'static str,
    /// 1-based line in the up script.
    pub(crate) line: usize,
    /// What it found, without the id.
    pub(crate) message: String,
    /// What it removes (MS001, MS002).
    pub(crate) removes: Option<Removed>,
}

/// What a finding of MS001 or MS002 removes: a contract's removals
/// must be superseded by its expand (`super::contract_findings`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Removed {
    /// A table.
    Table(String),
    /// A column of a table: (table, column).
    Column(String, String),
}

/// A rule: its id and the function that runs it.
pub(crate) type Check = fn(&Input<'_>) -> Vec<Finding>;

/// Every rule's function, by id (in the order of [`super::RULES`]).
pub(crate) const CHECKS: &[(&str, Check)] = &[
    ("MS001", drop_table),
    ("MS002", drop_column),
    ("MS003", rename),
    ("MS004", unique_on_existing),
    ("MS005", not_null_on_existing),
    ("MS006", check_on_existing),
    ("MS007", type_change),
    ("MS008", write_without_where),
    ("MS009", schema_and_data),
    ("MS010", dangling_foreign_key),
    ("MS013", rebuild_procedure),
];

/// Every finding of every rule on `input`, by line.
pub(crate) fn all(input: &Input<'_>) -> Vec<Finding> {
    let mut found: Vec<Finding> = CHECKS.iter().flat_map(|(_, check)| check(input)).collect();
    found.sort_by_key(|f| f.line);
    found
}

fn table<'m>(model: &'m Model, name: &str) -> Option<&'m Table> {
    model
        .tables
        .get(name)
        .or_else(|| model.tables.values().find(|t| t.name.eq_ignore_ascii_case(name)))
}

fn has_column(table: &Table, name: &str) -> bool {
    table.columns.iter().any(|c| c.name.eq_ignore_ascii_case(name))
}

impl Input<'_> {
    /// The table that `name` (of the schema before) is after the
    /// migration: the same name, or where `ALTER TABLE … RENAME TO` moved
    /// it; `None` when it is gone.
    fn after_of(&self, name: &str) -> Option<&Table> {
        if let Some(t) = table(self.after, name) {
            return Some(t);
        }
        let mut current = name.to_owned();
        for s in self.statements {
            if let Kind::RenameTable { from, to } = &s.kind
                && from.eq_ignore_ascii_case(&current)
            {
                current.clone_from(to);
            }
        }
        table(self.after, &current)
    }

    /// The tables that exist before and after, paired.
    fn kept(&self) -> impl Iterator<Item = (&Table, &Table)> {
        self.before
            .tables
            .values()
            .filter(|t| t.virtual_sql.is_none())
            .filter_map(|b| self.after_of(&b.name).map(|a| (b, a)))
    }

    /// The line of the first statement matching `pick`, else of the first
    /// statement naming `name`, else 1.
    fn line(&self, pick: impl Fn(&Statement) -> bool, name: &str) -> usize {
        self.statements
            .iter()
            .find(|s| pick(s))
            .or_else(|| self.statements.iter().find(|s| s.names(name)))
            .map_or(1, |s| s.line)
    }

    /// Whether the migration renames `table.column` with `ALTER TABLE`.
    fn renames_column(&self, table: &str, column: &str) -> bool {
        self.statements.iter().any(|s| {
            matches!(&s.kind, Kind::RenameColumn { table: t, from, .. }
                if t.eq_ignore_ascii_case(table) && from.eq_ignore_ascii_case(column))
        })
    }

    /// The line where a rebuilt table's new definition is, for a change
    /// found by comparing models: the `CREATE TABLE` naming `column`, else
    /// any statement naming `table`.
    fn definition_line(&self, table: &str, column: &str) -> usize {
        self.line(|s| s.starts(&["CREATE", "TABLE"]) && s.names(column), table)
    }
}

/// MS001: a table of the schema before is gone after.
fn drop_table(input: &Input<'_>) -> Vec<Finding> {
    input
        .before
        .tables
        .values()
        .filter(|t| input.after_of(&t.name).is_none())
        .map(|t| Finding {
            removes: Some(Removed::Table(t.name.clone())),
            rule: "MS001",
            line: input.line(
                |s| matches!(&s.kind, Kind::DropTable(d) if d.eq_ignore_ascii_case(&t.name)),
                &t.name,
            ),
            message: format!("drops table `{}` and every row in it", t.name),
        })
        .collect()
}

/// MS002: a column of a table that stays is gone (`DROP COLUMN`, or a
/// rebuild that leaves it out), and was not renamed.
fn drop_column(input: &Input<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for (before, after) in input.kept() {
        for c in before.columns.iter().filter(|c| !c.hidden) {
            if has_column(after, &c.name)
                || input.renames_column(&before.name, &c.name)
                || input.renames_column(&after.name, &c.name)
            {
                continue;
            }
            let dropped = input
                .statements
                .iter()
                .find(|s| matches!(&s.kind, Kind::DropColumn { column, .. } if column.eq_ignore_ascii_case(&c.name)));
            let (line, message) = match dropped {
                Some(s) => (
                    s.line,
                    format!("drops column `{}.{}` and its data", before.name, c.name),
                ),
                None => (
                    input.line(
                        |s| matches!(&s.kind, Kind::DropTable(d) if d.eq_ignore_ascii_case(&before.name)),
                        &before.name,
                    ),
                    format!(
                        "rebuilds table `{}` without its column `{}`: the column's data is lost",
                        before.name, c.name
                    ),
                ),
            };
            found.push(Finding {
                removes: Some(Removed::Column(before.name.clone(), c.name.clone())),
                rule: "MS002",
                line,
                message,
            });
        }
    }
    found
}

/// MS003: `ALTER TABLE … RENAME` of a table or column that existed, under
/// a name the schema after no longer has.
fn rename(input: &Input<'_>) -> Vec<Finding> {
    input
        .statements
        .iter()
        .filter_map(|s| {
            match &s.kind {
                Kind::RenameTable { from, to }
                    if table(input.before, from).is_some() && table(input.after, from).is_none() =>
                {
                    Some(format!("renames table `{from}` to `{to}`"))
                }
                Kind::RenameColumn { table: t, from, to }
                    if table(input.before, t).is_some_and(|b| has_column(b, from)) =>
                {
                    Some(format!("renames column `{t}.{from}` to `{to}`"))
                }
                _ => None,
            }
            .map(|message| Finding {
                removes: None,
                rule: "MS003",
                line: s.line,
                message: format!("{message}: code still running against the old name breaks"),
            })
        })
        .collect()
}

/// MS004: a unique index (or UNIQUE constraint) on columns of a table
/// that existed, which the table did not have before.
fn unique_on_existing(input: &Input<'_>) -> Vec<Finding> {
    let key = |cols: &[migrate_runtime::model::IndexColumn]| -> Vec<String> {
        cols.iter().map(|c| c.column.to_ascii_lowercase()).collect()
    };
    let mut found = Vec::new();
    for (before, after) in input.kept() {
        let had: Vec<Vec<String>> = before
            .indexes
            .values()
            .filter(|i| i.unique)
            .map(|i| key(&i.columns))
            .collect();
        for index in after.indexes.values().filter(|i| i.unique) {
            let cols = key(&index.columns);
            let old_data = index
                .columns
                .iter()
                .any(|c| c.expression || has_column(before, &c.column));
            if had.contains(&cols) || !old_data {
                continue;
            }
            let shown = format!("{}({})", after.name, cols.join(", "));
            let (what, line) = if index.origin == "c" {
                (
                    format!("a unique index `{}` on `{shown}`", index.name),
                    input.line(|s| s.starts(&["CREATE"]) && s.names(&index.name), &after.name),
                )
            } else {
                let column = index.columns.first().map_or("", |c| c.column.as_str());
                (
                    format!("a UNIQUE constraint on `{shown}`"),
                    input.definition_line(&after.name, column),
                )
            };
            found.push(Finding {
            removes: None,
                rule: "MS004",
                line,
                message: format!(
                    "adds {what}, a table that may hold rows: passes on an empty database, may fail on production data (duplicates)"
                ),
            });
        }
    }
    found
}

/// MS005: a column that existed becomes NOT NULL.
fn not_null_on_existing(input: &Input<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for (before, after) in input.kept() {
        for c in after.columns.iter().filter(|c| c.not_null) {
            if before
                .columns
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(&c.name) && !b.not_null)
            {
                found.push(Finding {
            removes: None,
                    rule: "MS005",
                    line: input.definition_line(&after.name, &c.name),
                    message: format!(
                        "makes column `{}.{}` NOT NULL: passes on an empty database, may fail on production data (rows holding NULL)",
                        after.name, c.name
                    ),
                });
            }
        }
    }
    found
}

/// MS006: a CHECK constraint added to a table that existed.
fn check_on_existing(input: &Input<'_>) -> Vec<Finding> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    let mut found = Vec::new();
    for (before, after) in input.kept() {
        let had: Vec<String> = before.checks.iter().map(|c| norm(c)).collect();
        for check in after.checks.iter().filter(|c| !had.contains(&norm(c))) {
            found.push(Finding {
            removes: None,
                rule: "MS006",
                line: input.line(|s| s.starts(&["CREATE", "TABLE"]) && s.names("CHECK"), &after.name),
                message: format!(
                    "adds CHECK ({}) to table `{}`: passes on an empty database, may fail on production data (rows it rejects)",
                    check.trim(),
                    after.name
                ),
            });
        }
    }
    found
}

/// MS007: a column that stays changes its declared type.
fn type_change(input: &Input<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for (before, after) in input.kept() {
        for c in &after.columns {
            let Some(b) = before.columns.iter().find(|b| b.name.eq_ignore_ascii_case(&c.name)) else {
                continue;
            };
            if !b.decl_type.eq_ignore_ascii_case(&c.decl_type) {
                let shown = |t: &str| {
                    if t.is_empty() {
                        "no type".to_owned()
                    } else {
                        t.to_owned()
                    }
                };
                found.push(Finding {
            removes: None,
                    rule: "MS007",
                    line: input.definition_line(&after.name, &c.name),
                    message: format!(
                        "changes the type of `{}.{}` from {} to {}: passes on an empty database, may fail on production data (values the new type converts or rejects)",
                        after.name,
                        c.name,
                        shown(&b.decl_type),
                        shown(&c.decl_type)
                    ),
                });
            }
        }
    }
    found
}

/// MS008: `UPDATE` or `DELETE` without `WHERE` on a table that existed.
fn write_without_where(input: &Input<'_>) -> Vec<Finding> {
    input
        .statements
        .iter()
        .filter_map(|s| match &s.kind {
            Kind::Write {
                verb,
                table: t,
                filtered: false,
            } if table(input.before, t).is_some() => Some(Finding {
                removes: None,
                rule: "MS008",
                line: s.line,
                message: format!("`{verb}` of `{t}` has no WHERE: it changes every row of the table"),
            }),
            _ => None,
        })
        .collect()
}

/// MS009: schema changes and an `UPDATE` or `DELETE` of a table that
/// existed, in one migration.
fn schema_and_data(input: &Input<'_>) -> Vec<Finding> {
    let Some(ddl) = input.statements.iter().find(|s| s.is_ddl()) else {
        return Vec::new();
    };
    input
        .statements
        .iter()
        .find_map(|s| match &s.kind {
            Kind::Write { verb, table: t, .. } if table(input.before, t).is_some() => Some(Finding {
            removes: None,
                rule: "MS009",
                line: s.line,
                message: format!(
                    "changes the schema (line {}) and runs a bulk `{verb}` of `{t}` in one migration: the table stays locked while every row is rewritten",
                    ddl.line
                ),
            }),
            _ => None,
        })
        .into_iter()
        .collect()
}

/// The foreign keys of `model` that point at a table or column it does
/// not have: (child table, its columns, parent table, what is missing).
fn dangling(model: &Model) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for t in model.tables.values() {
        for fk in &t.foreign_keys {
            let missing = match table(model, &fk.table) {
                None => format!("table `{}`, which does not exist", fk.table),
                Some(parent) => match fk.to.iter().find(|c| !has_column(parent, c)) {
                    Some(c) => format!("column `{}.{c}`, which does not exist", parent.name),
                    None => continue,
                },
            };
            out.push((t.name.clone(), fk.columns.join(", "), fk.table.clone(), missing));
        }
    }
    out
}

/// MS010: a foreign key that points at a missing table or column after
/// the migration, and did not before.
fn dangling_foreign_key(input: &Input<'_>) -> Vec<Finding> {
    let before = dangling(input.before);
    dangling(input.after)
        .into_iter()
        .filter(|d| !before.contains(d))
        .map(|(child, columns, parent, missing)| Finding {
            removes: None,
            rule: "MS010",
            line: input.line(|s| s.is_ddl() && s.names(&parent), &child),
            message: format!("leaves the foreign key `{child}({columns})` pointing at {missing}"),
        })
        .collect()
}

/// MS013: a table rebuild that leaves SQLite's procedure
/// (<https://www.sqlite.org/lang_altertable.html>, section "Making Other
/// Kinds Of Table Schema Changes": create the new table, copy the rows
/// with INSERT … SELECT, drop the old table, rename the new one to the
/// old name, in one transaction; recreate the indexes and triggers, keep
/// the views working). A rebuild is a table of the schema before that is
/// dropped and exists again after, or renamed away and created again.
fn rebuild_procedure(input: &Input<'_>) -> Vec<Finding> {
    let statements = input.statements;
    let mut found = Vec::new();
    let mut push = |line: usize, message: String| {
        found.push(Finding {
            rule: "MS013",
            line,
            message,
            removes: None,
        });
    };
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut rebuilt: Vec<(String, usize)> = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let later = &statements[i + 1..];
        let earlier = &statements[..i];
        match &s.kind {
            Kind::DropTable(x) if table(input.before, x).is_some() && table(input.after, x).is_some() => {
                let new_table = later.iter().find_map(|r| match &r.kind {
                    Kind::RenameTable { from, to } if same(to, x) => Some((from.clone(), r.line)),
                    _ => None,
                });
                let Some((new, _)) = new_table else {
                    if later
                        .iter()
                        .any(|c| c.starts(&["CREATE"]) && c.created().is_some_and(|t| same(&t, x)))
                    {
                        push(
                            s.line,
                            format!(
                                "rebuilds table `{x}` out of order: it drops `{x}` and creates it again, where SQLite's procedure creates the new table under another name, copies the rows into it, drops `{x}`, then renames the new table to `{x}`"
                            ),
                        );
                        rebuilt.push((x.clone(), s.line));
                    }
                    continue;
                };
                let created_first = earlier.iter().any(|c| c.created().is_some_and(|t| same(&t, &new)));
                if !created_first {
                    push(
                        s.line,
                        format!(
                            "rebuilds table `{x}` without creating the new table `{new}` before `DROP TABLE {x}`: the procedure creates it first, to copy the rows into"
                        ),
                    );
                } else if !earlier
                    .iter()
                    .any(|c| c.starts(&["INSERT"]) && c.names(&new) && c.names(x))
                {
                    push(
                        s.line,
                        format!(
                            "rebuilds table `{x}` without copying its rows: no `INSERT INTO {new} SELECT … FROM {x}` comes before `DROP TABLE {x}`, so every row is lost"
                        ),
                    );
                }
                rebuilt.push((x.clone(), s.line));
            }
            Kind::RenameTable { from: x, to: old }
                if table(input.before, x).is_some()
                    && table(input.after, x).is_some()
                    && later
                        .iter()
                        .any(|d| matches!(&d.kind, Kind::DropTable(t) if same(t, old))) =>
            {
                push(
                    s.line,
                    format!(
                        "rebuilds table `{x}` by renaming it to `{old}` first: SQLite then moves the foreign keys, triggers and views that name `{x}` onto `{old}`, which the migration drops; the procedure creates the new table under another name and renames it to `{x}` after dropping the old one"
                    ),
                );
                rebuilt.push((x.clone(), s.line));
            }
            _ => {}
        }
    }
    for (x, line) in &rebuilt {
        if input.no_transaction && !statements.iter().any(|s| s.starts(&["BEGIN"])) {
            push(
                *line,
                format!(
                    "rebuilds table `{x}` outside a transaction (`-- migrate:no-transaction`): a failure half-way leaves it dropped or half-copied"
                ),
            );
        }
        let (Some(before), Some(after)) = (table(input.before, x), table(input.after, x)) else {
            continue;
        };
        for index in before.indexes.values().filter(|i| i.origin == "c") {
            if !after.indexes.keys().any(|k| same(k, &index.name)) {
                push(
                    *line,
                    format!(
                        "rebuilds table `{x}` without recreating its index `{}` (DROP TABLE dropped it): CREATE INDEX it again after the rename",
                        index.name
                    ),
                );
            }
        }
        for trigger in input.before.triggers.values().filter(|t| same(&t.table, x)) {
            if !input.after.triggers.keys().any(|k| same(k, &trigger.name)) {
                push(
                    *line,
                    format!(
                        "rebuilds table `{x}` without recreating its trigger `{}` (DROP TABLE dropped it): CREATE TRIGGER it again after the rename",
                        trigger.name
                    ),
                );
            }
        }
    }
    if let Some((x, line)) = rebuilt.first() {
        for (view, error) in input.broken_views {
            push(
                *line,
                format!(
                    "after the rebuild of `{x}`, view `{view}` no longer works ({error}): drop it before the rebuild and create it again after"
                ),
            );
        }
    }
    found
}
