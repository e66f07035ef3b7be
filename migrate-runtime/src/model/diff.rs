//! How two models differ: [`Model::diff`] and its [`Difference`]s.

use std::collections::BTreeMap;
use std::fmt;

use super::{Column, ForeignKey, Generated, Index, Model, Table};

impl Model {
    /// How `actual` differs from `self` (the expected schema), grouped by
    /// table; empty when they are the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::model::{Filter, Model};
    /// use migrate_runtime::rusqlite::Connection;
    /// let conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE recruits (id INTEGER PRIMARY KEY, chatname TEXT);")?;
    /// let expected = Model::read(&conn, &Filter::new("_migrations"))?;
    /// conn.execute_batch("ALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;")?;
    /// let actual = Model::read(&conn, &Filter::new("_migrations"))?;
    /// let diff = expected.diff(&actual);
    /// assert_eq!(diff[0].to_string(), "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn diff(&self, actual: &Self) -> Vec<Difference> {
        let mut out = Vec::new();
        for (key, t) in &self.tables {
            match actual.tables.get(key) {
                None => out.push(Difference::new(Object::Table, None, &t.name, Change::Removed)),
                Some(a) => diff_table(t, a, &mut out),
            }
        }
        for (key, a) in &actual.tables {
            if !self.tables.contains_key(key) {
                out.push(Difference::new(
                    Object::Table,
                    None,
                    &a.name,
                    Change::Added(format!("{} columns", a.columns.len())),
                ));
            }
        }
        diff_named(
            &self.views,
            &actual.views,
            |v| (None, v.name.clone(), v.sql.clone()),
            Object::View,
            &mut out,
        );
        diff_named(
            &self.triggers,
            &actual.triggers,
            |t| (Some(t.table.clone()), t.name.clone(), t.sql.clone()),
            Object::Trigger,
            &mut out,
        );
        for (expected, actual, object) in [
            (&self.functions, &actual.functions, Object::Function),
            (&self.types, &actual.types, Object::Type),
            (&self.sequences, &actual.sequences, Object::Sequence),
            (&self.collations, &actual.collations, Object::Collation),
        ] {
            diff_named(
                expected,
                actual,
                |d| (None, d.name.clone(), d.sql.clone()),
                object,
                &mut out,
            );
        }
        for (key, e) in &self.settings {
            match actual.settings.get(key) {
                None => out.push(Difference::new(e.object, e.table.as_deref(), &e.name, Change::Removed)),
                Some(a) if a.sql != e.sql => out.push(Difference::new(
                    e.object,
                    e.table.as_deref(),
                    &e.name,
                    Change::Changed(format!("was `{}`, is `{}`", e.sql, a.sql)),
                )),
                Some(_) => {}
            }
        }
        for (key, a) in &actual.settings {
            if !self.settings.contains_key(key) {
                out.push(Difference::new(
                    a.object,
                    a.table.as_deref(),
                    &a.name,
                    Change::Added(a.sql.clone()),
                ));
            }
        }
        out
    }
}

fn diff_named<T>(
    expected: &BTreeMap<String, T>,
    actual: &BTreeMap<String, T>,
    facts: impl Fn(&T) -> (Option<String>, String, String),
    object: Object,
    out: &mut Vec<Difference>,
) {
    for (key, e) in expected {
        let (table, name, sql) = facts(e);
        match actual.get(key).map(&facts) {
            None => out.push(Difference::new(object, table.as_deref(), &name, Change::Removed)),
            Some((_, _, now)) if now != sql => out.push(Difference::new(
                object,
                table.as_deref(),
                &name,
                Change::Changed(format!("was `{sql}`, is `{now}`")),
            )),
            Some(_) => {}
        }
    }
    for (key, a) in actual {
        if !expected.contains_key(key) {
            let (table, name, sql) = facts(a);
            out.push(Difference::new(object, table.as_deref(), &name, Change::Added(sql)));
        }
    }
}

fn diff_table(e: &Table, a: &Table, out: &mut Vec<Difference>) {
    let table = Some(e.name.as_str());
    let mut options = Vec::new();
    if e.strict != a.strict {
        options.push(format!("STRICT {} → {}", e.strict, a.strict));
    }
    if e.without_rowid != a.without_rowid {
        options.push(format!("WITHOUT ROWID {} → {}", e.without_rowid, a.without_rowid));
    }
    if e.virtual_sql != a.virtual_sql {
        options.push("virtual table definition".to_owned());
    }
    if e.partition_by != a.partition_by {
        options.push(format!(
            "PARTITION BY {} → {}",
            e.partition_by.as_deref().unwrap_or("none"),
            a.partition_by.as_deref().unwrap_or("none")
        ));
    }
    if !options.is_empty() {
        out.push(Difference::new(
            Object::Table,
            None,
            &e.name,
            Change::Changed(options.join(", ")),
        ));
    }
    let find = |cols: &[Column], name: &str| cols.iter().position(|c| c.name.eq_ignore_ascii_case(name));
    let removed: Vec<usize> = (0..e.columns.len())
        .filter(|&i| find(&a.columns, &e.columns[i].name).is_none())
        .collect();
    let added: Vec<usize> = (0..a.columns.len())
        .filter(|&i| find(&e.columns, &a.columns[i].name).is_none())
        .collect();
    let mut renamed_to = BTreeMap::new();
    for &r in &removed {
        // A likely rename: dropped and added at the same position, same type.
        if added.contains(&r) && same_but_name(&e.columns[r], &a.columns[r]) {
            renamed_to.insert(r, r);
        }
    }
    for (i, c) in e.columns.iter().enumerate() {
        if let Some(&j) = renamed_to.get(&i) {
            out.push(Difference::new(
                Object::Column,
                table,
                &c.name,
                Change::Renamed(a.columns[j].name.clone()),
            ));
        } else if removed.contains(&i) {
            out.push(Difference::new(Object::Column, table, &c.name, Change::Removed));
        } else if let Some(j) = find(&a.columns, &c.name) {
            let changes = column_changes(c, &a.columns[j]);
            if !changes.is_empty() {
                out.push(Difference::new(
                    Object::Column,
                    table,
                    &c.name,
                    Change::Changed(changes.join(", ")),
                ));
            }
        }
    }
    for &j in &added {
        if !renamed_to.values().any(|&k| k == j) {
            let c = &a.columns[j];
            out.push(Difference::new(
                Object::Column,
                table,
                &c.name,
                Change::Added(column_definition(c)),
            ));
        }
    }
    // Indexes: by name for created ones, by definition for automatic ones.
    for (key, ix) in &e.indexes {
        match a.indexes.get(key) {
            None => out.push(Difference::new(Object::Index, table, &ix.name, Change::Removed)),
            Some(now) if index_facts(now) != index_facts(ix) => out.push(Difference::new(
                Object::Index,
                table,
                &ix.name,
                Change::Changed(format!("was {}, is {}", index_facts(ix), index_facts(now))),
            )),
            Some(_) => {}
        }
    }
    for (key, ix) in &a.indexes {
        if !e.indexes.contains_key(key) {
            out.push(Difference::new(
                Object::Index,
                table,
                &ix.name,
                Change::Added(index_facts(ix)),
            ));
        }
    }
    for fk in &e.foreign_keys {
        if !a.foreign_keys.contains(fk) {
            out.push(Difference::new(
                Object::ForeignKey,
                table,
                &fk_facts(fk),
                Change::Removed,
            ));
        }
    }
    for fk in &a.foreign_keys {
        if !e.foreign_keys.contains(fk) {
            out.push(Difference::new(
                Object::ForeignKey,
                table,
                &fk_facts(fk),
                Change::Added(String::new()),
            ));
        }
    }
    for c in &e.checks {
        if !a.checks.contains(c) {
            out.push(Difference::new(Object::Check, table, c, Change::Removed));
        }
    }
    for c in &a.checks {
        if !e.checks.contains(c) {
            out.push(Difference::new(Object::Check, table, c, Change::Added(String::new())));
        }
    }
}

fn same_but_name(a: &Column, b: &Column) -> bool {
    a.decl_type.eq_ignore_ascii_case(&b.decl_type)
        && a.not_null == b.not_null
        && a.primary_key == b.primary_key
        && a.generated == b.generated
        && a.default == b.default
        && a.collation == b.collation
        && a.identity == b.identity
}

fn column_changes(e: &Column, a: &Column) -> Vec<String> {
    let mut out = Vec::new();
    if !e.decl_type.eq_ignore_ascii_case(&a.decl_type) {
        out.push(format!(
            "type {} → {}",
            shown_type(&e.decl_type),
            shown_type(&a.decl_type)
        ));
    }
    if e.not_null != a.not_null {
        out.push(
            if a.not_null {
                "NOT NULL added"
            } else {
                "NOT NULL removed"
            }
            .to_owned(),
        );
    }
    if e.default != a.default {
        out.push(format!(
            "default {} → {}",
            e.default.as_deref().unwrap_or("none"),
            a.default.as_deref().unwrap_or("none")
        ));
    }
    if e.primary_key != a.primary_key {
        out.push(format!("primary key position {} → {}", e.primary_key, a.primary_key));
    }
    if e.collation != a.collation {
        out.push(format!(
            "collation {} → {}",
            e.collation.as_deref().unwrap_or("BINARY"),
            a.collation.as_deref().unwrap_or("BINARY")
        ));
    }
    if e.generated != a.generated {
        out.push(format!("generated {:?} → {:?}", e.generated, a.generated));
    }
    if e.identity != a.identity {
        out.push(format!(
            "identity {} → {}",
            e.identity.as_deref().unwrap_or("none"),
            a.identity.as_deref().unwrap_or("none")
        ));
    }
    if e.hidden != a.hidden {
        out.push(format!("hidden {} → {}", e.hidden, a.hidden));
    }
    out
}

fn shown_type(t: &str) -> &str {
    if t.is_empty() { "(none)" } else { t }
}

pub(super) fn column_facts(c: &Column) -> String {
    format!("{} {}", c.name.to_ascii_lowercase(), column_definition(c))
}

/// `TEXT NOT NULL DEFAULT 'x'`: what a column is, without its name.
fn column_definition(c: &Column) -> String {
    let mut s = if c.decl_type.is_empty() {
        "(no type)".to_owned()
    } else {
        c.decl_type.to_ascii_uppercase()
    };
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.primary_key > 0 {
        s.push_str(&format!(" PRIMARY KEY({})", c.primary_key));
    }
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {}", coll.to_ascii_uppercase()));
    }
    match c.generated {
        Some(Generated::Virtual) => s.push_str(" GENERATED VIRTUAL"),
        Some(Generated::Stored) => s.push_str(" GENERATED STORED"),
        None => {}
    }
    if c.hidden {
        s.push_str(" HIDDEN");
    }
    if let Some(identity) = &c.identity {
        s.push_str(&format!(" GENERATED {identity} AS IDENTITY"));
    }
    s
}

pub(super) fn index_facts(ix: &Index) -> String {
    let cols: Vec<String> = ix
        .columns
        .iter()
        .map(|c| {
            let mut s = c.column.to_ascii_lowercase();
            if let Some(coll) = &c.collation {
                s.push_str(&format!(" COLLATE {}", coll.to_ascii_uppercase()));
            }
            if c.descending {
                s.push_str(" DESC");
            }
            s
        })
        .collect();
    let mut s = format!("{}({})", if ix.unique { "UNIQUE " } else { "" }, cols.join(", "));
    if let Some(method) = &ix.using {
        s.push_str(&format!(" USING {method}"));
    }
    if !ix.include.is_empty() {
        s.push_str(&format!(" INCLUDE ({})", ix.include.join(", ").to_ascii_lowercase()));
    }
    if let Some(w) = &ix.partial {
        s.push_str(&format!(" WHERE {w}"));
    }
    s
}

pub(super) fn fk_facts(fk: &ForeignKey) -> String {
    let mut s = format!(
        "({}) REFERENCES {}({})",
        fk.columns.join(", ").to_ascii_lowercase(),
        fk.table.to_ascii_lowercase(),
        fk.to.join(", ").to_ascii_lowercase()
    );
    if fk.on_delete != "NO ACTION" {
        s.push_str(&format!(" ON DELETE {}", fk.on_delete));
    }
    if fk.on_update != "NO ACTION" {
        s.push_str(&format!(" ON UPDATE {}", fk.on_update));
    }
    if fk.deferred {
        s.push_str(" DEFERRABLE INITIALLY DEFERRED");
    }
    s
}

/// What kind of object a [`Difference`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Object {
    /// A table.
    Table,
    /// A column.
    Column,
    /// An index.
    Index,
    /// A foreign key.
    ForeignKey,
    /// A CHECK constraint.
    Check,
    /// A view.
    View,
    /// A trigger.
    Trigger,
    /// A function or procedure (PostgreSQL).
    Function,
    /// An enum or domain type (PostgreSQL).
    Type,
    /// A sequence no column owns (PostgreSQL).
    Sequence,
    /// A collation made by `CREATE COLLATION` (PostgreSQL).
    Collation,
    /// A comment (`COMMENT ON`, PostgreSQL).
    Comment,
    /// A row-level security policy (PostgreSQL).
    Policy,
    /// Row-level security turned on for a table (PostgreSQL).
    RowSecurity,
    /// A table attached as a partition of another, with its bounds
    /// (PostgreSQL).
    Partition,
}

impl Object {
    /// The object's kind in words: `table`, `column`, `foreign key`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Column => "column",
            Self::Index => "index",
            Self::ForeignKey => "foreign key",
            Self::Check => "check",
            Self::View => "view",
            Self::Trigger => "trigger",
            Self::Function => "function",
            Self::Type => "type",
            Self::Sequence => "sequence",
            Self::Collation => "collation",
            Self::Comment => "comment",
            Self::Policy => "policy",
            Self::RowSecurity => "row-level security",
            Self::Partition => "partition",
        }
    }
}

/// How an object differs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case", tag = "change", content = "detail")
)]
#[non_exhaustive]
pub enum Change {
    /// In the actual schema only; what it is.
    Added(String),
    /// In the expected schema only.
    Removed,
    /// In both, differently: how.
    Changed(String),
    /// A column dropped and another added at the same position with the
    /// same type: likely renamed to this name.
    Renamed(String),
}

/// One difference between an expected and an actual schema.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Difference {
    /// What kind of object.
    pub object: Object,
    /// The table it belongs to (`None` for tables and views).
    pub table: Option<String>,
    /// Its name (for foreign keys and checks, their definition).
    pub name: String,
    /// How it differs.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub change: Change,
}

impl Difference {
    fn new(object: Object, table: Option<&str>, name: &str, change: Change) -> Self {
        Self {
            object,
            table: table.map(str::to_owned),
            name: name.to_owned(),
            change,
        }
    }
}

impl fmt::Display for Difference {
    /// `table recruits: column cohort added (cohort TEXT)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.table {
            write!(f, "table {t}: ")?;
        }
        let what = self.object.as_str();
        let name = &self.name;
        match &self.change {
            Change::Added(detail) if detail.is_empty() => write!(f, "{what} {name} added"),
            Change::Added(detail) => write!(f, "{what} {name} added ({detail})"),
            Change::Removed => write!(f, "{what} {name} removed"),
            Change::Changed(how) => write!(f, "{what} {name} changed: {how}"),
            Change::Renamed(to) => write!(f, "{what} {name} renamed to {to} (likely: same type and position)"),
        }
    }
}
